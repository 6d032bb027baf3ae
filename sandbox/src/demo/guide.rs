//! The walk through the user guide: each chapter's commands and what it expects to see.

use super::table::{describe_status, table_header, table_row};
use super::{
    DemoError, DemoOptions, NAME, NAMESPACE, SAMPLE, Story, WEBHOOK_NAME, io, kube_err, step_err,
};
use crate::sim::{FailureMode, Simulation};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kube::Client;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use pravega_crds::{Component, ConditionType, PravegaCluster, reasons};
use regex::Regex;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use tokio::process::Command;

/// The `kubectl pravega` plugin, run against the sandbox.
pub(super) struct Plugin<'a> {
    pub(super) bin: &'a Path,
    pub(super) kubeconfig: &'a Path,
}

impl Plugin<'_> {
    /// Runs `kubectl pravega ARGS` (the plugin binary kubectl would run) and returns its output.
    async fn run(&self, args: &[&str], step: &str) -> Result<String, DemoError> {
        let out = Command::new(self.bin)
            .args(args)
            .env("KUBECONFIG", self.kubeconfig)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .output()
            .await
            .map_err(io(format!("running {}", self.bin.display())))?;
        if !out.status.success() {
            return Err(step_err(
                step,
                format!(
                    "kubectl pravega {} failed: {}",
                    args.join(" "),
                    String::from_utf8_lossy(&out.stderr).trim()
                ),
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

pub(super) async fn walk_through_the_guide(
    story: &mut Story,
    client: &Client,
    sim: &Simulation,
    opts: &DemoOptions,
    plugin: &Plugin<'_>,
) -> Result<(), DemoError> {
    let api: Api<PravegaCluster> = Api::namespaced(client.clone(), NAMESPACE);
    let timeout = opts.step_timeout;

    // 1. Create the cluster at 0.4.0 and wait until every member is ready.
    story.chapter(
        "Create the cluster `example` at 0.4.0 (3 bookies, 1 controller, 3 segment stores)",
    );
    story.cmd("kubectl create -f - <<< 'PersistentVolumeClaim pravega-tier2, ReadWriteMany, 50Gi'");
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), NAMESPACE);
    let tier2: PersistentVolumeClaim = serde_json::from_value(serde_json::json!({
        "metadata": {"name": pravega_crds::DEFAULT_TIER2_CLAIM},
        "spec": {"accessModes": ["ReadWriteMany"], "resources": {"requests": {"storage": "50Gi"}}}
    }))
    .map_err(|e| step_err("create", format!("the tier 2 claim: {e}")))?;
    claims
        .create(&PostParams::default(), &tier2)
        .await
        .map_err(kube_err("creating the tier 2 claim"))?;
    story.ok("persistentvolumeclaim/pravega-tier2 created (the sample's filesystem tier 2)");
    story.cmd("kubectl apply -f deploy/sample/pravegacluster.yaml");
    let sample: PravegaCluster = serde_saphyr::from_str(SAMPLE)
        .map_err(|e| step_err("create", format!("the sample does not parse: {e}")))?;
    api.create(&PostParams::default(), &sample)
        .await
        .map_err(kube_err("creating PravegaCluster example"))?;
    story.ok("pravegacluster.pravega.pravega.io/example created");
    story.cmd("kubectl get PravegaCluster -w");
    let pk = watch_until(story, &api, timeout, "create", |pk| {
        let s = pk.status.as_ref()?;
        (s.current_version.as_deref() == Some("0.4.0") && s.replicas == 7 && s.ready_replicas == 7)
            .then_some(())
    })
    .await?;
    expect_pods_at(client, &pk, "0.4.0", "create").await?;
    story.ok("7 of 7 members ready at 0.4.0");
    show_what_the_segment_store_got(story, client).await?;

    // 2. Upgrade to 0.5.0 the way the guide does it.
    story.chapter(
        "Upgrade to 0.5.0 (BookKeeper, then Controller, then Segment Store, one pod at a time)",
    );
    // BookKeeper has ledgers to re-replicate: the operator's safety check will hold the upgrade
    // once a bookie serves the admin API that reports them (0.5.0; 0.4.0 has none).
    story
        .cmd("kubectl annotate pod example-bookie-2 sandbox.pravega.io/under-replicated-ledgers=2");
    annotate_pod(client, "example-bookie-2", Some("2")).await?;
    story.say("(the sandbox's bookies now report 2 under-replicated ledgers on their admin API)");
    story.cmd(r#"kubectl patch PravegaCluster example --type='json' -p='[{"op": "replace", "path": "/spec/version", "value": "0.5.0"}]'"#);
    set_version(&api, "0.5.0")
        .await
        .map_err(|e| step_err("upgrade", format!("the change to 0.5.0 was refused: {e}")))?;
    story.ok("pravegacluster.pravega.pravega.io/example patched");
    story.cmd("kubectl get PravegaCluster -w");
    watch_until(story, &api, timeout, "upgrade", |pk| {
        let s = pk.status.as_ref()?;
        s.is_condition_true(ConditionType::Upgrading).then_some(())
    })
    .await?;

    // 3. A change while the upgrade is in flight is refused by the webhook at once.
    story.chapter("Change the version again while the upgrade is in progress");
    story.cmd(r#"kubectl patch PravegaCluster example --type='json' -p='[{"op": "replace", "path": "/spec/version", "value": "0.6.0"}]'"#);
    expect_denied(
        story,
        &api,
        "0.6.0",
        "mid-upgrade change",
        "while the cluster is upgrading from 0.4.0 to 0.5.0",
    )
    .await?;

    // 3b. The upgrade waits on a safety check, says why, and goes on once it passes.
    story.chapter("The upgrade waits for BookKeeper to re-replicate its ledgers");
    story.cmd("kubectl get PravegaCluster example -o jsonpath='{.status.upgrade.blockedBy}'");
    let blocked_by = |pk: &PravegaCluster| {
        let b = pk.status.as_ref()?.upgrade.as_ref()?.blocked_by.as_ref()?;
        (b.reason == "SafetyCheckFailed").then(|| format!("{}: {}", b.reason, b.message))
    };
    let pk = watch_until(story, &api, timeout, "safety check", |pk| {
        blocked_by(pk).map(|_| ())
    })
    .await?;
    story.row(&blocked_by(&pk).unwrap_or_default());
    story.cmd("kubectl pravega status example");
    let status = plugin.run(&["status", "example"], "safety check").await?;
    story.block(status.trim_end());
    if !status.contains("NoUnderReplicatedLedgers") {
        return Err(step_err(
            "safety check",
            "kubectl pravega status does not name the blocking check",
        ));
    }
    story.ok("example-bookie-1 is not restarted while BookKeeper reports under-replicated ledgers");
    story.cmd("kubectl annotate pod example-bookie-2 sandbox.pravega.io/under-replicated-ledgers-");
    annotate_pod(client, "example-bookie-2", None).await?;
    story.say("(re-replication done: the pod's change wakes the operator, which goes on at once)");

    story.cmd("kubectl get PravegaCluster -w");
    let pk = watch_until(story, &api, timeout, "upgrade", |pk| {
        let s = pk.status.as_ref()?;
        (s.current_version.as_deref() == Some("0.5.0")
            && s.target_version.is_none()
            && !s.is_condition_true(ConditionType::Upgrading)
            && s.ready_replicas == 7)
            .then_some(())
    })
    .await?;
    let history = pk
        .status
        .as_ref()
        .map(|s| s.version_history.clone())
        .unwrap_or_default();
    if history != ["0.4.0", "0.5.0"] {
        return Err(step_err(
            "upgrade",
            format!("status.versionHistory is {history:?}, expected [0.4.0, 0.5.0]"),
        ));
    }
    expect_pods_at(client, &pk, "0.5.0", "upgrade").await?;
    story.ok("upgrade complete: every member runs 0.5.0; versionHistory [0.4.0, 0.5.0]");

    // 4. A downgrade is refused.
    story.chapter("Try to downgrade to 0.4.0");
    story.cmd(r#"kubectl patch PravegaCluster example --type='json' -p='[{"op": "replace", "path": "/spec/version", "value": "0.4.0"}]'"#);
    expect_denied(
        story,
        &api,
        "0.4.0",
        "downgrade",
        "downgrading the cluster from 0.5.0 to 0.4.0 is not supported",
    )
    .await?;

    // 5. An upgrade to a broken image fails and stops with a clear Error condition.
    story.chapter("Upgrade to 0.6.0, whose BookKeeper image crashes on start");
    let broken = Regex::new(r"^pravega/bookkeeper:0\.6\.0$")
        .map_err(|e| step_err("failed upgrade", format!("bad pattern: {e}")))?;
    sim.fail_image(broken, FailureMode::CrashLoop);
    story.say("(the sandbox makes every container of image pravega/bookkeeper:0.6.0 crash-loop)");
    story.cmd(r#"kubectl patch PravegaCluster example --type='json' -p='[{"op": "replace", "path": "/spec/version", "value": "0.6.0"}]'"#);
    set_version(&api, "0.6.0").await.map_err(|e| {
        step_err(
            "failed upgrade",
            format!("the change to 0.6.0 was refused: {e}"),
        )
    })?;
    story.cmd("kubectl get PravegaCluster -w");
    let expected = "failed to sync bookkeeper version. pod example-bookie-0 is restarting";
    let pk = watch_until(story, &api, timeout, "failed upgrade", |pk| {
        let s = pk.status.as_ref()?;
        s.has_error_reason(reasons::UPGRADE_FAILED).then_some(())
    })
    .await?;
    let status = pk.status.clone().unwrap_or_default();
    let error = status
        .condition(ConditionType::Error)
        .map(|c| c.message().to_owned())
        .unwrap_or_default();
    if error != expected {
        return Err(step_err(
            "failed upgrade",
            format!("Error message is {error:?}, expected {expected:?}"),
        ));
    }
    if status.is_condition_true(ConditionType::Upgrading) {
        return Err(step_err(
            "failed upgrade",
            "Upgrading is still True after the failure",
        ));
    }
    if !status
        .members
        .unready
        .iter()
        .any(|m| m == "example-bookie-0")
    {
        return Err(step_err(
            "failed upgrade",
            format!(
                "example-bookie-0 is not listed unready: {:?}",
                status.members
            ),
        ));
    }
    expect_untouched_after_bookkeeper(client, "0.5.0").await?;
    story.cmd("kubectl describe PravegaCluster example");
    story.block(&describe_status(&pk));
    story.ok("the upgrade stopped at the first broken bookie; Controller and Segment Store were not touched");

    // 6. Roll back by setting the version back to status.currentVersion.
    story.chapter("Roll back to 0.5.0");
    story.cmd(r#"kubectl patch PravegaCluster example --type='json' -p='[{"op": "replace", "path": "/spec/version", "value": "0.5.0"}]'"#);
    set_version(&api, "0.5.0").await.map_err(|e| {
        step_err(
            "rollback",
            format!("the rollback to 0.5.0 was refused: {e}"),
        )
    })?;
    story.ok("pravegacluster.pravega.pravega.io/example patched");
    story.cmd("kubectl get PravegaCluster -w");
    let pk = watch_until(story, &api, timeout, "rollback", |pk| {
        let s = pk.status.as_ref()?;
        (s.current_version.as_deref() == Some("0.5.0")
            && s.target_version.is_none()
            && !s.is_condition_true(ConditionType::RollbackInProgress)
            && !s.is_condition_true(ConditionType::Error)
            && s.ready_replicas == 7)
            .then_some(())
    })
    .await?;
    expect_pods_at(client, &pk, "0.5.0", "rollback").await?;
    story.ok("rolled back: 7 of 7 members ready at 0.5.0, Error cleared");
    Ok(())
}

/// Sets `spec.version` with a merge patch (what `kubectl patch` sends, in another format).
/// Sets (or, with `None`, removes) the sandbox's under-replicated-ledgers fault on a pod.
async fn annotate_pod(client: &Client, pod: &str, ledgers: Option<&str>) -> Result<(), DemoError> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), NAMESPACE);
    let patch = serde_json::json!({"metadata": {"annotations": {
        crate::sim::UNDER_REPLICATED_LEDGERS: ledgers
    }}});
    pods.patch(pod, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(kube_err(format!("annotating pod {pod}")))?;
    Ok(())
}

async fn set_version(api: &Api<PravegaCluster>, version: &str) -> Result<(), kube::Error> {
    let patch = serde_json::json!({ "spec": { "version": version } });
    api.patch(NAME, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    Ok(())
}

async fn expect_denied(
    story: &mut Story,
    api: &Api<PravegaCluster>,
    version: &str,
    step: &str,
    contains: &str,
) -> Result<(), DemoError> {
    let before = api.get(NAME).await.map_err(kube_err("reading example"))?;
    match set_version(api, version).await {
        Ok(_) => Err(step_err(
            step,
            format!("the change to {version} was accepted"),
        )),
        Err(kube::Error::Api(status)) => {
            let expected_prefix =
                format!("admission webhook \"{WEBHOOK_NAME}\" denied the request: ");
            if status.code != 403
                || !status.message.starts_with(&expected_prefix)
                || !status.message.contains(contains)
            {
                return Err(step_err(
                    step,
                    format!(
                        "expected a 403 from the webhook containing {contains:?}, got {}: {}",
                        status.code, status.message
                    ),
                ));
            }
            story.denied(format!("Error from server (Forbidden): {}", status.message));
            let after = api.get(NAME).await.map_err(kube_err("reading example"))?;
            if after.spec.version != before.spec.version {
                return Err(step_err(step, "the denied change was stored anyway"));
            }
            story.ok(format!(
                "refused; spec.version stays {}",
                after.spec.version
            ));
            Ok(())
        }
        Err(e) => Err(step_err(
            step,
            format!("expected a denial from the webhook, got: {e}"),
        )),
    }
}

/// Watches `example`, printing a `kubectl get PravegaCluster` row whenever it changes, until
/// `done` returns `Some`.
async fn watch_until<F>(
    story: &mut Story,
    api: &Api<PravegaCluster>,
    timeout: Duration,
    step: &str,
    done: F,
) -> Result<PravegaCluster, DemoError>
where
    F: Fn(&PravegaCluster) -> Option<()>,
{
    let config = watcher::Config::default().fields(&format!("metadata.name={NAME}"));
    let mut stream = watcher(api.clone(), config).applied_objects().boxed();
    let deadline = tokio::time::Instant::now() + timeout;
    let mut last_row = String::new();
    story.row(&table_header());
    loop {
        let next = tokio::time::timeout_at(deadline, stream.try_next()).await;
        match next {
            Err(_) => {
                return Err(step_err(
                    step,
                    format!(
                        "not reached within {}s (last seen: {})",
                        timeout.as_secs(),
                        last_row.trim()
                    ),
                ));
            }
            Ok(Err(e)) => return Err(step_err(step, format!("watching example: {e}"))),
            Ok(Ok(None)) => return Err(step_err(step, "the watch ended")),
            Ok(Ok(Some(pk))) => {
                let row = table_row(&pk);
                if row != last_row {
                    story.row(&row);
                    last_row = row;
                }
                if done(&pk).is_some() {
                    return Ok(pk);
                }
            }
        }
    }
}

/// Every member pod runs `version` (by its image) and is Ready.
/// Prints the Segment Store's start-up settings as the image reads them: its JVM options (sized
/// from the memory limit, with the cluster name it finds its bookies by) and its tier 2.
async fn show_what_the_segment_store_got(story: &Story, client: &Client) -> Result<(), DemoError> {
    let pod = format!("{NAME}-pravega-segmentstore-0");
    story.cmd(&format!(
        "kubectl get pod {pod} -o jsonpath='{{.spec.containers[0].env[?(@.name==\"JAVA_OPTS\")].value}}'"
    ));
    let pods: Api<Pod> = Api::namespaced(client.clone(), NAMESPACE);
    let got = pods
        .get(&pod)
        .await
        .map_err(kube_err("reading a Segment Store pod"))?;
    let container = got.spec.as_ref().and_then(|s| s.containers.first());
    let java_opts = container
        .and_then(|c| c.env.as_ref())
        .and_then(|env| env.iter().find(|e| e.name == "JAVA_OPTS"))
        .and_then(|e| e.value.clone())
        .unwrap_or_default();
    if !java_opts.contains(&format!("-Dpravegaservice.clusterName={NAME}")) {
        return Err(step_err(
            "create",
            format!("the Segment Store's JAVA_OPTS lack its cluster name: {java_opts}"),
        ));
    }
    story.say(&java_opts);
    let claim = got
        .spec
        .as_ref()
        .and_then(|s| s.volumes.as_ref())
        .and_then(|v| v.iter().find(|v| v.name == "tier2"))
        .and_then(|v| v.persistent_volume_claim.as_ref())
        .map(|c| c.claim_name.clone())
        .unwrap_or_default();
    story.ok(format!(
        "tier 2: FILESYSTEM on claim {claim}, mounted at /mnt/tier2"
    ));
    Ok(())
}

async fn expect_pods_at(
    client: &Client,
    pk: &PravegaCluster,
    version: &str,
    step: &str,
) -> Result<(), DemoError> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), NAMESPACE);
    let list = pods
        .list(&ListParams::default().labels(&pravega_crds::names::cluster_selector(NAME)))
        .await
        .map_err(kube_err("listing pods"))?;
    let mut live = 0;
    for pod in list
        .items
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
    {
        live += 1;
        let name = pod.metadata.name.clone().unwrap_or_default();
        let images: Vec<String> = pod
            .spec
            .iter()
            .flat_map(|s| s.containers.iter().filter_map(|c| c.image.clone()))
            .collect();
        if !images.iter().all(|i| i.ends_with(&format!(":{version}"))) {
            return Err(step_err(
                step,
                format!("pod {name} runs {images:?}, expected version {version}"),
            ));
        }
    }
    let desired = pk.status.as_ref().map(|s| s.replicas).unwrap_or_default();
    if live != desired as usize {
        return Err(step_err(
            step,
            format!("{live} member pods exist, expected {desired}"),
        ));
    }
    Ok(())
}

/// After a BookKeeper failure, the Controller and Segment Store templates still carry `version`.
async fn expect_untouched_after_bookkeeper(
    client: &Client,
    version: &str,
) -> Result<(), DemoError> {
    let step = "failed upgrade";
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), NAMESPACE);
    let statefulsets: Api<StatefulSet> = Api::namespaced(client.clone(), NAMESPACE);
    let controller = deployments
        .get(&Component::Controller.workload_name(NAME))
        .await
        .map_err(kube_err("reading the controller Deployment"))?;
    let segmentstore = statefulsets
        .get(&Component::SegmentStore.workload_name(NAME))
        .await
        .map_err(kube_err("reading the segment store StatefulSet"))?;
    let images = |spec: Option<&k8s_openapi::api::core::v1::PodSpec>| -> Vec<String> {
        spec.map(|s| {
            s.containers
                .iter()
                .filter_map(|c| c.image.clone())
                .collect()
        })
        .unwrap_or_default()
    };
    let c = images(
        controller
            .spec
            .as_ref()
            .and_then(|s| s.template.spec.as_ref()),
    );
    let s = images(
        segmentstore
            .spec
            .as_ref()
            .and_then(|s| s.template.spec.as_ref()),
    );
    for (what, imgs) in [("controller", c), ("segment store", s)] {
        if !imgs.iter().all(|i| i.ends_with(&format!(":{version}"))) {
            return Err(step_err(
                step,
                format!("the {what} template was changed to {imgs:?}"),
            ));
        }
    }
    Ok(())
}
