use super::*;
use k8s_openapi::api::core::v1::{Container, PersistentVolumeClaimSpec, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use pravega_crds::names::{LABEL_INSTANCE, LABEL_NAME};
use proptest::prelude::*;

fn cluster(spec: serde_json::Value) -> PravegaCluster {
    let spec: PravegaClusterSpec = serde_json::from_value(spec).unwrap();
    let mut c = PravegaCluster::new("example", spec);
    c.metadata.namespace = Some("prod".into());
    c.metadata.uid = Some("0000-uid".into());
    c
}

fn sample() -> PravegaCluster {
    cluster(serde_json::json!({
        "version": "0.4.0",
        "zookeeperUri": "zk-client:2181",
        "bookkeeper": {"replicas": 3, "image": {"repository": "pravega/bookkeeper", "pullPolicy": "IfNotPresent"},
                       "options": {"journalMaxGroupWaitMSec": "1"}},
        "pravega": {"controllerReplicas": 1, "segmentStoreReplicas": 3,
                    "image": {"repository": "pravega/pravega", "pullPolicy": "IfNotPresent"},
                    "options": {"pravegaservice.containerCount": "4", "a.b": "c"},
                    "segmentStoreResources": {"limits": {"memory": "2Gi"}}}
    }))
}

fn versions(bk: &'static str, ctl: &'static str, ss: &'static str) -> impl Fn(Component) -> String {
    move |c| match c {
        Component::Bookkeeper => bk.to_owned(),
        Component::Controller => ctl.to_owned(),
        Component::SegmentStore => ss.to_owned(),
    }
}

fn build(c: &PravegaCluster) -> DesiredObjects {
    desired_objects(c, versions("0.4.0", "0.4.0", "0.4.0")).unwrap()
}

fn sts<'a>(d: &'a DesiredObjects, name: &str) -> &'a StatefulSet {
    d.stateful_sets
        .iter()
        .find(|s| s.metadata.name.as_deref() == Some(name))
        .unwrap()
}

fn only_container(t: &PodTemplateSpec) -> &Container {
    let spec = t.spec.as_ref().unwrap();
    assert_eq!(spec.containers.len(), 1);
    &spec.containers[0]
}

/// The containers of the bookie, Controller and Segment Store pods, in that order.
fn containers(d: &DesiredObjects) -> [&Container; 3] {
    let template = |s: &'static str| &sts(d, s).spec.as_ref().unwrap().template;
    [
        only_container(template("example-bookie")),
        only_container(&d.deployments[0].spec.as_ref().unwrap().template),
        only_container(template("example-pravega-segmentstore")),
    ]
}

#[test]
fn names_match_the_guide() {
    let d = build(&sample());
    let names = |it: Vec<Option<String>>| it.into_iter().map(|n| n.unwrap()).collect::<Vec<_>>();
    assert_eq!(
        names(
            d.stateful_sets
                .iter()
                .map(|s| s.metadata.name.clone())
                .collect()
        ),
        ["example-bookie", "example-pravega-segmentstore"]
    );
    assert_eq!(
        names(
            d.deployments
                .iter()
                .map(|s| s.metadata.name.clone())
                .collect()
        ),
        ["example-pravega-controller"]
    );
    assert_eq!(
        names(d.services.iter().map(|s| s.metadata.name.clone()).collect()),
        [
            "example-bookie-headless",
            "example-pravega-controller",
            "example-pravega-segmentstore-headless"
        ]
    );
    assert_eq!(
        names(
            d.config_maps
                .iter()
                .map(|s| s.metadata.name.clone())
                .collect()
        ),
        [
            "example-bookie-configmap",
            "example-pravega-controller-configmap",
            "example-pravega-segmentstore-configmap"
        ]
    );
    assert_eq!(
        names(
            d.pod_disruption_budgets
                .iter()
                .map(|s| s.metadata.name.clone())
                .collect()
        ),
        [
            "example-bookie",
            "example-pravega-controller",
            "example-pravega-segmentstore"
        ]
    );
    assert_eq!(d.len(), 12);
}

#[test]
fn every_object_is_owned_labelled_and_namespaced() {
    let d = build(&sample());
    let mut metas: Vec<&ObjectMeta> = Vec::new();
    metas.extend(d.config_maps.iter().map(|o| &o.metadata));
    metas.extend(d.services.iter().map(|o| &o.metadata));
    metas.extend(d.stateful_sets.iter().map(|o| &o.metadata));
    metas.extend(d.deployments.iter().map(|o| &o.metadata));
    metas.extend(d.pod_disruption_budgets.iter().map(|o| &o.metadata));
    for m in metas {
        assert_eq!(m.namespace.as_deref(), Some("prod"));
        let owners = m.owner_references.as_ref().unwrap();
        assert_eq!(owners.len(), 1);
        let o = &owners[0];
        assert_eq!(o.kind, "PravegaCluster");
        assert_eq!(o.api_version, "pravega.pravega.io/v1beta1");
        assert_eq!(o.name, "example");
        assert_eq!(o.uid, "0000-uid");
        assert_eq!(o.controller, Some(true));
        assert_eq!(o.block_owner_deletion, Some(true));
        let labels = m.labels.as_ref().unwrap();
        assert_eq!(
            labels.get(LABEL_NAME).map(String::as_str),
            Some("pravega-cluster")
        );
        assert_eq!(
            labels.get(LABEL_INSTANCE).map(String::as_str),
            Some("example")
        );
        assert_eq!(
            labels.get(LABEL_MANAGED_BY).map(String::as_str),
            Some("pravega-operator")
        );
        assert!(names::component_of(labels).is_some());
    }
}

#[test]
fn a_cluster_without_uid_cannot_be_built() {
    let mut c = sample();
    c.metadata.uid = None;
    assert_eq!(
        desired_objects(&c, |_| "0.4.0".into()),
        Err(BuildError::MissingMetadata("metadata.uid"))
    );
}

#[test]
fn statefulsets_use_on_delete_and_leave_claim_retention_to_the_default() {
    let d = build(&sample());
    for s in &d.stateful_sets {
        let spec = s.spec.as_ref().unwrap();
        assert_eq!(
            spec.update_strategy.as_ref().unwrap().type_.as_deref(),
            Some("OnDelete")
        );
        // Retain is the API server's default; the field is not sent (not served before 1.23).
        assert_eq!(spec.persistent_volume_claim_retention_policy, None);
        assert_eq!(spec.pod_management_policy.as_deref(), Some("Parallel"));
    }
    let bk = sts(&d, "example-bookie").spec.as_ref().unwrap();
    assert_eq!(bk.replicas, Some(3));
    assert_eq!(bk.service_name.as_deref(), Some("example-bookie-headless"));
    let ss = sts(&d, "example-pravega-segmentstore")
        .spec
        .as_ref()
        .unwrap();
    assert_eq!(ss.replicas, Some(3));
    assert_eq!(
        ss.service_name.as_deref(),
        Some("example-pravega-segmentstore-headless")
    );
}

#[test]
fn selectors_match_pod_labels_and_stay_stable_across_versions() {
    let c = sample();
    let old = build(&c);
    let new = desired_objects(&c, versions("0.5.0", "0.5.0", "0.5.0")).unwrap();
    for (a, b) in old.stateful_sets.iter().zip(&new.stateful_sets) {
        let (a, b) = (a.spec.as_ref().unwrap(), b.spec.as_ref().unwrap());
        assert_eq!(a.selector, b.selector);
        let sel = a.selector.match_labels.as_ref().unwrap();
        let labels = a
            .template
            .metadata
            .as_ref()
            .unwrap()
            .labels
            .as_ref()
            .unwrap();
        for (k, v) in sel {
            assert_eq!(labels.get(k), Some(v));
        }
    }
    let d = old.deployments[0].spec.as_ref().unwrap();
    let sel = d.selector.match_labels.as_ref().unwrap();
    assert_eq!(sel, &Component::Controller.selector_labels("example"));
}

#[test]
fn bookie_claim_templates_default_to_10gi_and_follow_the_spec() {
    let d = build(&sample());
    let bk = sts(&d, "example-bookie").spec.as_ref().unwrap();
    let claims = bk.volume_claim_templates.as_ref().unwrap();
    let names: Vec<_> = claims
        .iter()
        .map(|c| c.metadata.name.clone().unwrap())
        .collect();
    assert_eq!(names, ["ledger", "journal", "index"]);
    for c in claims {
        let spec = c.spec.as_ref().unwrap();
        assert_eq!(
            spec.access_modes.as_deref(),
            Some(&["ReadWriteOnce".to_owned()][..])
        );
        let req = spec.resources.as_ref().unwrap().requests.as_ref().unwrap();
        assert_eq!(req.get("storage"), Some(&Quantity("10Gi".into())));
    }
    let mounts = only_container(&bk.template).volume_mounts.as_ref().unwrap();
    let mounted: Vec<_> = mounts
        .iter()
        .map(|m| (m.name.as_str(), m.mount_path.as_str()))
        .collect();
    assert_eq!(
        mounted,
        [
            ("ledger", "/bk/ledgers"),
            ("journal", "/bk/journal"),
            ("index", "/bk/index")
        ]
    );

    let mut custom = sample();
    custom.spec.bookkeeper.storage.journal_volume_claim_template =
        Some(Box::new(PersistentVolumeClaimSpec {
            storage_class_name: Some("fast".into()),
            ..PersistentVolumeClaimSpec::default()
        }));
    let d = build(&custom);
    let claims = sts(&d, "example-bookie")
        .spec
        .as_ref()
        .unwrap()
        .volume_claim_templates
        .clone()
        .unwrap();
    assert_eq!(
        claims[1]
            .spec
            .as_ref()
            .unwrap()
            .storage_class_name
            .as_deref(),
        Some("fast")
    );
    assert_eq!(claims[0].spec.as_ref().unwrap().storage_class_name, None);
}

#[test]
fn segmentstore_has_a_cache_claim_and_mounts_a_filesystem_tier2() {
    let d = build(&sample());
    let ss = sts(&d, "example-pravega-segmentstore")
        .spec
        .as_ref()
        .unwrap();
    let claims = ss.volume_claim_templates.as_ref().unwrap();
    assert_eq!(claims.len(), 1);
    assert_eq!(claims[0].metadata.name.as_deref(), Some("cache"));
    let req = claims[0]
        .spec
        .as_ref()
        .unwrap()
        .resources
        .as_ref()
        .unwrap()
        .requests
        .as_ref()
        .unwrap();
    assert_eq!(req.get("storage"), Some(&Quantity("20Gi".into())));
    let c = only_container(&ss.template);
    assert_eq!(
        c.resources
            .as_ref()
            .unwrap()
            .limits
            .as_ref()
            .unwrap()
            .get("memory"),
        Some(&Quantity("2Gi".into()))
    );

    // No tier2 in the spec: the filesystem claim pravega-tier2, as upstream defaults.
    let d = build(&sample());
    let ss = sts(&d, "example-pravega-segmentstore")
        .spec
        .as_ref()
        .unwrap();
    let vols = ss.template.spec.as_ref().unwrap().volumes.as_ref().unwrap();
    assert_eq!(
        vols[0]
            .persistent_volume_claim
            .as_ref()
            .map(|p| p.claim_name.as_str()),
        Some("pravega-tier2")
    );
    assert!(
        only_container(&ss.template)
            .volume_mounts
            .as_ref()
            .unwrap()
            .iter()
            .any(|m| m.name == "tier2")
    );
    let cm = &d.config_maps[2];
    assert_eq!(
        cm.data
            .as_ref()
            .unwrap()
            .get("TIER2_STORAGE")
            .map(String::as_str),
        Some("FILESYSTEM")
    );
}

#[test]
fn images_follow_each_components_version_and_the_pull_policy() {
    let c = sample();
    let d = desired_objects(&c, versions("0.5.0-1", "0.4.0", "0.4.0")).unwrap();
    let [bk, ctl, ss] = containers(&d);
    assert_eq!(bk.image.as_deref(), Some("pravega/bookkeeper:0.5.0-1"));
    assert_eq!(bk.image_pull_policy.as_deref(), Some("IfNotPresent"));
    assert_eq!(ctl.image.as_deref(), Some("pravega/pravega:0.4.0"));
    assert_eq!(ctl.args.as_deref(), Some(&["controller".to_owned()][..]));
    assert_eq!(ss.image.as_deref(), Some("pravega/pravega:0.4.0"));
    assert_eq!(ss.args.as_deref(), Some(&["segmentstore".to_owned()][..]));

    let t = sts(&d, "example-bookie")
        .spec
        .as_ref()
        .unwrap()
        .template
        .metadata
        .clone()
        .unwrap();
    assert_eq!(
        t.labels.unwrap().get(VERSION_KEY).map(String::as_str),
        Some("0.5.0-1")
    );
    assert_eq!(
        t.annotations.unwrap().get(VERSION_KEY).map(String::as_str),
        Some("0.5.0-1")
    );
}

#[test]
fn ports_carry_their_protocol_and_services_match_them() {
    let d = build(&sample());
    let ports_of = |c: &Container| {
        c.ports
            .as_ref()
            .unwrap()
            .iter()
            .map(|p| (p.container_port, p.protocol.clone().unwrap()))
            .collect::<Vec<_>>()
    };
    let tcp = |p: i32| (p, "TCP".to_owned());
    let [bk, ctl, ss] = containers(&d);
    assert_eq!(ports_of(bk), [tcp(3181)]);
    assert_eq!(ports_of(ctl), [tcp(10080), tcp(9090)]);
    assert_eq!(ports_of(ss), [tcp(12345)]);
    let svc_ports = |i: usize| {
        d.services[i]
            .spec
            .as_ref()
            .unwrap()
            .ports
            .as_ref()
            .unwrap()
            .iter()
            .map(|p| p.port)
            .collect::<Vec<_>>()
    };
    assert_eq!(svc_ports(0), [3181]);
    assert_eq!(svc_ports(1), [10080, 9090]);
    assert_eq!(svc_ports(2), [12345]);
    assert_eq!(
        d.services[0].spec.as_ref().unwrap().cluster_ip.as_deref(),
        Some("None")
    );
    assert_eq!(d.services[1].spec.as_ref().unwrap().cluster_ip, None);
}

#[test]
fn a_config_change_changes_the_pod_template() {
    let c = sample();
    let before = build(&c);
    let mut edited = c.clone();
    edited
        .spec
        .bookkeeper
        .options
        .insert("journalMaxGroupWaitMSec".into(), "2".into());
    let after = build(&edited);
    let hash = |d: &DesiredObjects, i: usize| {
        d.stateful_sets[i]
            .spec
            .as_ref()
            .unwrap()
            .template
            .metadata
            .as_ref()
            .unwrap()
            .annotations
            .as_ref()
            .unwrap()
            .get(CONFIG_HASH_KEY)
            .cloned()
            .unwrap()
    };
    assert_ne!(hash(&before, 0), hash(&after, 0));
    assert_eq!(hash(&before, 1), hash(&after, 1));
}

#[test]
fn controller_rolls_without_losing_capacity() {
    let mut c = sample();
    c.spec.upgrade.timeout = "2m".into();
    let d = build(&c);
    let spec = d.deployments[0].spec.as_ref().unwrap();
    let strategy = spec.strategy.as_ref().unwrap();
    assert_eq!(strategy.type_.as_deref(), Some("RollingUpdate"));
    let ru = strategy.rolling_update.as_ref().unwrap();
    assert_eq!(ru.max_unavailable, Some(IntOrString::Int(0)));
    assert_eq!(ru.max_surge, Some(IntOrString::Int(1)));
    assert_eq!(spec.progress_deadline_seconds, Some(120));
    assert_eq!(spec.replicas, Some(1));
}

#[test]
fn pdbs_allow_one_member_down() {
    let d = build(&sample());
    for (pdb, c) in d
        .pod_disruption_budgets
        .iter()
        .zip(Component::UPGRADE_ORDER)
    {
        let spec = pdb.spec.as_ref().unwrap();
        assert_eq!(spec.max_unavailable, Some(IntOrString::Int(1)));
        assert_eq!(
            spec.selector.as_ref().unwrap().match_labels.as_ref(),
            Some(&c.selector_labels("example"))
        );
    }
}

proptest! {
    #[test]
    fn replicas_and_versions_flow_into_the_workloads(
        bookies in 1i32..10, controllers in 1i32..5, stores in 1i32..10,
        v in "[0-9]\\.[0-9]\\.[0-9](-[0-9])?",
    ) {
        let mut c = sample();
        c.spec.bookkeeper.replicas = bookies;
        c.spec.pravega.controller_replicas = controllers;
        c.spec.pravega.segment_store_replicas = stores;
        let d = desired_objects(&c, |_| v.clone()).unwrap();
        prop_assert_eq!(d.stateful_sets[0].spec.as_ref().unwrap().replicas, Some(bookies));
        prop_assert_eq!(d.deployments[0].spec.as_ref().unwrap().replicas, Some(controllers));
        prop_assert_eq!(d.stateful_sets[1].spec.as_ref().unwrap().replicas, Some(stores));
        let image = only_container(&d.stateful_sets[1].spec.as_ref().unwrap().template).image.clone();
        prop_assert_eq!(image, Some(format!("pravega/pravega:{v}")));
    }
}
