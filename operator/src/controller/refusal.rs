//! Specs the operator refuses to act on: one the shared rules refuse (when no webhook stopped
//! it), and a new cluster whose volumes hold data of a newer version; and the version recorded
//! on the volumes.

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Patch, PatchParams};
use kube::runtime::events::EventType;
use kube::{Api, ResourceExt};
use pravega_crds::names::{ALLOW_OLDER_VERSION_KEY, VOLUME_VERSION_KEY};
use pravega_crds::spec_rules::{
    FIXED_SETTINGS_KEY, check_cluster_name, check_fixed, fixed_settings,
};
use pravega_crds::version::{parse_version, precedence};
use pravega_crds::{Decision, DenyReason, PravegaCluster, event_actions, reasons};
use tracing::warn;

use crate::error_condition::{self, Finding, Shown};
use crate::record::ClusterKey;
use crate::resources;
use crate::status;

use super::{Context, Error, Snapshot};

/// Why the shared rules refuse the cluster's spec, if they do: the rules for a whole spec, then
/// the settings that must not change, compared with those recorded on the Segment Store
/// StatefulSet when it was last applied (what the webhook compares with the old object).
fn refusal(
    cluster: &PravegaCluster,
    segmentstore: Option<&StatefulSet>,
) -> Option<(DenyReason, String)> {
    if let Err(refused) = check_cluster_name(&cluster.name_any()) {
        return Some(refused);
    }
    if let Decision::Deny { reason, message } = pravega_crds::validate_create(&cluster.spec) {
        return Some((reason, message));
    }
    let recorded = segmentstore
        .and_then(|s| s.metadata.annotations.as_ref())
        .and_then(|a| a.get(FIXED_SETTINGS_KEY))
        .and_then(|json| serde_json::from_str(json).ok())?;
    check_fixed(&recorded, &fixed_settings(&cluster.spec)).err()
}

/// The claims of `cluster` that hold data written by a newer version than `spec.version`, with
/// that version, read from their annotation. Only asked before the cluster's workloads are first
/// created (`workloads_exist` false): once they are, the pods are on those volumes already, and
/// later the version rules forbid downgrades. So the claims are read once, not every reconcile.
async fn newer_data(
    ctx: &Context,
    cluster: &PravegaCluster,
    ns: &str,
    workloads_exist: bool,
) -> Result<Option<String>, Error> {
    let allowed = cluster
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(ALLOW_OLDER_VERSION_KEY))
        .is_some_and(|v| v == "true");
    let Ok(desired) = parse_version(&cluster.spec.version) else {
        return Ok(None);
    };
    if allowed
        || workloads_exist
        || cluster
            .status
            .as_ref()
            .and_then(|s| s.current_version.as_ref())
            .is_some()
    {
        return Ok(None);
    }
    let api: Api<PersistentVolumeClaim> = Api::namespaced(ctx.client.clone(), ns);
    let mut newer = Vec::new();
    for claim in resources::claim_names(&cluster.name_any(), &cluster.spec) {
        let pvc = api.get_opt(&claim).await.map_err(Error::kube(format!(
            "reading PersistentVolumeClaim {ns}/{claim}"
        )))?;
        let recorded = pvc
            .as_ref()
            .and_then(|p| p.metadata.annotations.as_ref())
            .and_then(|a| a.get(VOLUME_VERSION_KEY));
        if let Some(recorded) = recorded
            && let Ok(v) = parse_version(recorded)
            && precedence(&v, &desired).is_gt()
        {
            newer.push(format!("{claim} ({recorded})"));
        }
    }
    if newer.is_empty() {
        return Ok(None);
    }
    Ok(Some(format!(
        "the volumes of this cluster hold data written by a newer version: {}; starting {} on them would downgrade that data. Set spec.version to the newest of those versions or higher, or annotate the PravegaCluster with {ALLOW_OLDER_VERSION_KEY}=true to start anyway",
        newer.join(", "),
        cluster.spec.version
    )))
}

/// Records `version` on every claim of the cluster whose annotation is missing or older.
pub(super) async fn record_volume_version(
    ctx: &Context,
    cluster: &PravegaCluster,
    ns: &str,
    version: &str,
) -> Result<(), Error> {
    let Ok(this) = parse_version(version) else {
        return Ok(());
    };
    let api: Api<PersistentVolumeClaim> = Api::namespaced(ctx.client.clone(), ns);
    for claim in resources::claim_names(&cluster.name_any(), &cluster.spec) {
        let Some(pvc) = api.get_opt(&claim).await.map_err(Error::kube(format!(
            "reading PersistentVolumeClaim {ns}/{claim}"
        )))?
        else {
            continue;
        };
        let recorded = pvc
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(VOLUME_VERSION_KEY))
            .and_then(|v| parse_version(v).ok());
        if recorded.is_some_and(|r| !precedence(&this, &r).is_gt()) {
            continue;
        }
        ctx.may_write()?;
        api.patch(
            &claim,
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({
                "metadata": {"annotations": {VOLUME_VERSION_KEY: version}}
            })),
        )
        .await
        .map_err(Error::kube(format!(
            "recording version {version} on PersistentVolumeClaim {ns}/{claim}"
        )))?;
        ctx.metrics.count_write("patch", "PersistentVolumeClaim");
    }
    Ok(())
}

/// Why the operator changes nothing for this spec: the `Error` reason and the message.
pub(super) struct Refused {
    reason: &'static str,
    detail: &'static str,
    message: String,
}

/// Decide, part 1: a spec the shared rules refuse (when no webhook stopped it) changes nothing;
/// nor does a new cluster whose volumes hold data of a newer version.
pub(super) async fn refused(
    ctx: &Context,
    cluster: &PravegaCluster,
    key: &ClusterKey,
    snapshot: &Snapshot,
) -> Result<Option<Refused>, Error> {
    if let Some((reason, message)) = refusal(cluster, snapshot.segmentstore.as_ref()) {
        return Ok(Some(Refused {
            reason: reasons::INVALID_SPEC,
            detail: reason.as_str(),
            message,
        }));
    }
    let version = &cluster.spec.version;
    let checked = ctx
        .records
        .with(key, |r| r.claims_checked.as_ref() == Some(version));
    let workloads_exist =
        checked || snapshot.bookkeeper.is_some() || snapshot.segmentstore.is_some();
    let newer = newer_data(ctx, cluster, &key.namespace, workloads_exist).await?;
    if newer.is_none() {
        ctx.records
            .with(key, |r| r.claims_checked = Some(version.clone()));
    }
    Ok(newer.map(|message| Refused {
        reason: reasons::DATA_FROM_NEWER_VERSION,
        detail: reasons::DATA_FROM_NEWER_VERSION,
        message,
    }))
}

/// Report, for a refused spec: the `Error` condition (or, while an upgrade failure shows there,
/// an Event only), once per distinct refusal.
pub(super) async fn report_refusal(
    ctx: &Context,
    cluster: &PravegaCluster,
    key: &ClusterKey,
    refused: &Refused,
    now: &Time,
) -> Result<(), Error> {
    let before = cluster.status.clone().unwrap_or_default();
    let mut after = before.clone();
    let finding = Finding::Refused {
        reason: refused.reason,
        message: &refused.message,
    };
    let changed = match error_condition::record(&mut after, finding, now) {
        Shown::Condition { changed } => changed,
        Shown::EventOnly => ctx.records.with(key, |r| {
            r.reported_refusal.replace(refused.message.clone()).as_ref() != Some(&refused.message)
        }),
    };
    after.observed_generation = cluster.metadata.generation;
    if changed {
        warn!(
            "refusing the spec of PravegaCluster {key} ({}): {}",
            refused.detail, refused.message
        );
        ctx.publish(
            cluster,
            EventType::Warning,
            refused.reason,
            event_actions::VALIDATE,
            refused.message.clone(),
            None,
        )
        .await;
    }
    status::set_ready(&mut after, &cluster.spec.version, now);
    ctx.write_status(key, &before, &after).await?;
    ctx.metrics
        .set_cluster(&key.namespace, &key.name, &cluster.spec, &after);
    Ok(())
}
