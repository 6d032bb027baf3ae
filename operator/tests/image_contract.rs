//! What each image version will see: the sample cluster rendered at versions on both sides of
//! every row boundary of the image contract, with each container's environment resolved the way
//! a kubelet resolves it (the ConfigMap through `envFrom`, then `env`, which wins).

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{Container, PodTemplateSpec};
use pravega_crds::{Component, PravegaCluster, check_change, check_spec};
use pravega_operator::resources::{DesiredObjects, desired_objects};
use proptest::prelude::*;
use serde_json::json;

const SAMPLE: &str = include_str!("../../deploy/sample/pravegacluster.yaml");

fn sample() -> PravegaCluster {
    let mut c: PravegaCluster =
        serde_saphyr::from_str(SAMPLE).unwrap_or_else(|e| panic!("sample: {e}"));
    c.metadata.namespace = Some("prod".into());
    c.metadata.uid = Some("uid-1".into());
    c
}

fn render(c: &PravegaCluster, version: &str) -> DesiredObjects {
    desired_objects(c, |_| version.to_owned()).unwrap_or_else(|e| panic!("{e}"))
}

fn template(d: &DesiredObjects, component: Component) -> &PodTemplateSpec {
    match component {
        Component::Controller => &d.deployments[0].spec.as_ref().expect("spec").template,
        Component::Bookkeeper => &d.stateful_sets[0].spec.as_ref().expect("spec").template,
        Component::SegmentStore => &d.stateful_sets[1].spec.as_ref().expect("spec").template,
    }
}

fn container(d: &DesiredObjects, component: Component) -> &Container {
    &template(d, component)
        .spec
        .as_ref()
        .expect("pod spec")
        .containers[0]
}

/// The environment the container starts with.
fn seen(d: &DesiredObjects, component: Component) -> BTreeMap<String, String> {
    let c = container(d, component);
    let mut out = BTreeMap::new();
    for from in c.env_from.iter().flatten() {
        if let Some(cm) = &from.config_map_ref {
            let data = d
                .config_maps
                .iter()
                .find(|m| m.metadata.name.as_deref() == Some(cm.name.as_str()))
                .and_then(|m| m.data.clone())
                .unwrap_or_else(|| panic!("ConfigMap {} is not among the objects", cm.name));
            out.extend(data);
        }
    }
    for e in c.env.iter().flatten() {
        let value = match (&e.value, &e.value_from) {
            (Some(v), _) => v.clone(),
            (None, Some(from)) => format!(
                "<{}>",
                from.field_ref
                    .as_ref()
                    .map(|f| f.field_path.as_str())
                    .unwrap_or("?")
            ),
            _ => String::new(),
        };
        out.insert(e.name.clone(), value);
    }
    out
}

fn java_opts(env: &BTreeMap<String, String>) -> Vec<String> {
    env.get("JAVA_OPTS")
        .map(|o| o.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default()
}

fn has(flags: &[String], flag: &str) -> bool {
    flags.iter().any(|f| f == flag)
}

const VERSIONS: [&str; 10] = [
    "0.4.0", "0.5.0", "0.6.0", "0.7.0", "0.8.0", "0.9.0", "0.10.0", "0.11.0", "0.12.0", "0.13.0",
];

#[test]
fn the_sample_passes_the_rules_at_every_supported_version() {
    let c = sample();
    for v in VERSIONS {
        let mut spec = c.spec.clone();
        spec.version = v.to_owned();
        assert_eq!(check_spec(&spec), Ok(vec![]), "{v}");
    }
}

#[test]
fn every_segment_store_finds_its_bookies_and_its_tier2() {
    let c = sample();
    for v in ["0.4.0", "0.5.0", "0.7.0", "0.11.0", "0.13.0"] {
        let d = render(&c, v);
        let ss = seen(&d, Component::SegmentStore);
        let opts = java_opts(&ss);
        // ServiceConfig.CLUSTER_NAME: the only place the Segment Store reads its cluster name.
        assert_eq!(
            opts.last().map(String::as_str),
            Some("-Dpravegaservice.clusterName=example"),
            "{v}: {opts:?}"
        );
        let bk = seen(&d, Component::Bookkeeper);
        assert_eq!(bk["PRAVEGA_CLUSTER_NAME"], "example", "{v}");
        assert_eq!(seen(&d, Component::Controller)["CLUSTER_NAME"], "example");
        // Tier 2: the sample's filesystem claim, mounted where NFS_MOUNT says.
        assert_eq!(ss["TIER2_STORAGE"], "FILESYSTEM", "{v}");
        assert_eq!(ss["NFS_MOUNT"], "/mnt/tier2");
        let pod = template(&d, Component::SegmentStore)
            .spec
            .as_ref()
            .expect("pod");
        let claim = pod
            .volumes
            .iter()
            .flatten()
            .find(|v| v.name == "tier2")
            .expect("tier2 volume");
        assert_eq!(
            claim
                .persistent_volume_claim
                .as_ref()
                .map(|p| p.claim_name.as_str()),
            Some("pravega-tier2")
        );
        let mounts = container(&d, Component::SegmentStore)
            .volume_mounts
            .clone()
            .unwrap_or_default();
        assert!(
            mounts
                .iter()
                .any(|m| m.name == "tier2" && m.mount_path == "/mnt/tier2")
        );
        // Upstream waits for the bookies before starting a Segment Store.
        assert_eq!(
            ss["WAIT_FOR"],
            "example-bookie-0.example-bookie-headless.prod:3181,example-bookie-1.example-bookie-headless.prod:3181,example-bookie-2.example-bookie-headless.prod:3181"
        );
        assert_eq!(
            ss["CONTROLLER_URL"],
            "tcp://example-pravega-controller.prod:9090"
        );
        assert_eq!(ss["POD_NAME"], "<metadata.name>");
    }
}

#[test]
fn bookies_get_their_options_the_way_each_image_reads_them() {
    let c = sample();
    let d = render(&c, "0.4.0");
    let bk = seen(&d, Component::Bookkeeper);
    // entrypoint.sh@v0.4.0: only BK_AUTORECOVERY switches auto-recovery on; BookKeeper 4.5 reads
    // only BOOKIE_EXTRA_OPTS.
    assert_eq!(bk["BK_AUTORECOVERY"], "true");
    assert!(!bk.contains_key("BK_autoRecoveryDaemonEnabled"));
    assert!(!bk.contains_key("BOOKIE_MEM_OPTS"));
    assert!(bk["BOOKIE_EXTRA_OPTS"].contains("-Xmx"), "{bk:?}");
    assert_eq!(bk["BK_useHostNameAsBookieID"], "false");
    assert!(!bk.contains_key("BK_httpServerEnabled"));

    for v in ["0.5.0", "0.7.0", "0.11.0", "0.13.0"] {
        let d = render(&c, v);
        let bk = seen(&d, Component::Bookkeeper);
        assert_eq!(bk["BK_autoRecoveryDaemonEnabled"], "true", "{v}");
        assert!(!bk.contains_key("BK_AUTORECOVERY"), "{v}");
        assert_eq!(bk["BK_lostBookieRecoveryDelay"], "60");
        assert_eq!(bk["BK_useHostNameAsBookieID"], "true");
        assert_eq!(bk["BK_httpServerEnabled"], "true");
        assert_eq!(bk["BK_httpServerPort"], "8000");
        // The JVM options are plain variables: a BK_BOOKIE_* one with spaces would be written
        // unquoted into bkenv.sh and stop bookies from 0.7 (set -e in bin/bookkeeper).
        assert!(
            bk.keys().all(|k| !k.starts_with("BK_BOOKIE_")),
            "{v}: {bk:?}"
        );
        assert_eq!(
            bk["BOOKIE_MEM_OPTS"],
            "-Xms512m -Xmx512m -XX:MaxDirectMemorySize=1024m -XX:+ExitOnOutOfMemoryError"
        );
        // The sample's GC options, in their own variable.
        assert_eq!(bk["BOOKIE_GC_OPTS"], "-XX:+UseG1GC -XX:MaxGCPauseMillis=10");
        assert_eq!(bk["PRAVEGA_CLUSTER_NAME"], "example");
        assert_eq!(bk["BK_journalDirectories"], "/bk/journal");
    }
}

#[test]
fn bookie_probes_start_no_jvm_where_the_image_can_answer_over_http() {
    let c = sample();
    for (v, http) in [
        ("0.5.0", false),
        ("0.8.0", false),
        ("0.9.0", true),
        ("0.13.0", true),
    ] {
        let d = render(&c, v);
        let bk = container(&d, Component::Bookkeeper);
        let ready = bk.readiness_probe.as_ref().expect("readiness");
        assert_eq!(
            ready.http_get.as_ref().and_then(|h| h.path.as_deref()),
            http.then_some("/api/v1/bookie/is_ready"),
            "{v}"
        );
        assert_eq!(ready.exec.is_some(), !http, "{v}");
        let live = bk.liveness_probe.as_ref().expect("liveness");
        assert!(live.tcp_socket.is_some() && live.exec.is_none(), "{v}");
    }
}

#[test]
fn segment_store_memory_follows_each_images_rules() {
    let c = sample();
    let opts = |v: &str| java_opts(&seen(&render(&c, v), Component::SegmentStore));
    // The sample gives 4Gi and -Xmx1g; the operator adds direct memory (half the limit) and,
    // where the cache is in direct memory (0.7+), a cache of half of that under the version's
    // property name.
    for v in ["0.4.0", "0.5.0"] {
        let o = opts(v);
        assert!(
            has(&o, "-Xmx1g") && has(&o, "-XX:MaxDirectMemorySize=2048m"),
            "{v}: {o:?}"
        );
        assert!(
            o.iter()
                .all(|f| !f.contains("cacheMaxSize") && !f.contains("cache.size.max"))
        );
    }
    assert!(has(
        &opts("0.7.0"),
        "-Dpravegaservice.cacheMaxSize=1073741824"
    ));
    for v in ["0.11.0", "0.13.0"] {
        let o = opts(v);
        assert!(
            has(&o, "-Dpravegaservice.cache.size.max=1073741824"),
            "{v}: {o:?}"
        );
        // The health API (0.10+) binds localhost unless told otherwise.
        assert!(has(&o, "-Dpravegaservice.rest.listener.host=0.0.0.0"));
    }
    assert!(
        !opts("0.9.0")
            .iter()
            .any(|f| f.contains("rest.listener.host"))
    );
    // The sample's options reach both JVMs.
    let ctl = java_opts(&seen(&render(&c, "0.7.0"), Component::Controller));
    assert!(has(&ctl, "-Dpravegaservice.containerCount=4"), "{ctl:?}");
    assert!(has(&ctl, "-Xmx512m"));
}

#[test]
fn pods_are_sized_spread_and_ported_for_real_nodes() {
    let d = render(&sample(), "0.7.0");
    for c in Component::UPGRADE_ORDER {
        let t = template(&d, c);
        let pod = t.spec.as_ref().expect("pod");
        let resources = container(&d, c).resources.clone().expect("resources");
        assert!(
            resources.requests.is_some() && resources.limits.is_some(),
            "{c:?}"
        );
        let anti = pod
            .affinity
            .as_ref()
            .and_then(|a| a.pod_anti_affinity.as_ref())
            .and_then(|a| {
                a.preferred_during_scheduling_ignored_during_execution
                    .as_ref()
            })
            .expect("anti-affinity");
        assert_eq!(anti[0].weight, 100);
        assert_eq!(
            anti[0].pod_affinity_term.topology_key,
            "kubernetes.io/hostname"
        );
        for p in container(&d, c).ports.iter().flatten() {
            assert_eq!(p.protocol.as_deref(), Some("TCP"));
        }
    }
}

/// The StatefulSet fields the API server refuses to change.
fn immutable(s: &StatefulSet) -> serde_json::Value {
    let spec = s.spec.as_ref().expect("spec");
    json!({
        "selector": spec.selector,
        "serviceName": spec.service_name,
        "podManagementPolicy": spec.pod_management_policy,
        "volumeClaimTemplates": spec.volume_claim_templates,
    })
}

#[test]
fn upgrades_between_adjacent_versions_never_touch_immutable_statefulset_fields() {
    let c = sample();
    for pair in VERSIONS.windows(2) {
        let (a, b) = (render(&c, pair[0]), render(&c, pair[1]));
        for (x, y) in a.stateful_sets.iter().zip(&b.stateful_sets) {
            assert_eq!(immutable(x), immutable(y), "{} -> {}", pair[0], pair[1]);
        }
    }
}

proptest! {
    /// Any spec edit the rules allow leaves the immutable StatefulSet fields as they were.
    #[test]
    fn allowed_spec_edits_never_touch_immutable_statefulset_fields(
        bookies in 1i32..6,
        stores in 1i32..6,
        heap in prop_oneof![Just("-Xmx512m"), Just("-Xmx1g")],
        claim in prop_oneof![Just("pravega-tier2"), Just("other-tier2")],
        ledger in proptest::option::of(Just(json!({"resources": {"requests": {"storage": "50Gi"}}}))),
        tolerate in any::<bool>(),
    ) {
        let old = sample();
        let mut new = old.clone();
        new.spec.bookkeeper.replicas = bookies;
        new.spec.pravega.segment_store_replicas = stores;
        new.spec.pravega.segment_store_jvm_options = vec![heap.to_owned()];
        let tier2 = json!({"filesystem": {"persistentVolumeClaim": {"claimName": claim}}});
        new.spec.pravega.tier2 = serde_json::from_value(tier2).ok();
        new.spec.bookkeeper.storage.ledger_volume_claim_template =
            ledger.and_then(|l| serde_json::from_value(l).ok());
        if tolerate {
            new.spec.bookkeeper.tolerations =
                serde_json::from_value(json!([{"key": "dedicated", "operator": "Exists"}])).unwrap_or_default();
        }
        prop_assume!(check_spec(&new.spec).is_ok() && check_change(&old.spec, &new.spec).is_ok());
        let (a, b) = (render(&old, "0.7.0"), render(&new, "0.7.0"));
        for (x, y) in a.stateful_sets.iter().zip(&b.stateful_sets) {
            prop_assert_eq!(immutable(x), immutable(y));
        }
    }
}
