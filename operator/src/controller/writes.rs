//! The reconcile's writes: server-side apply of the owned objects (none when converged), the
//! status, and Events, each only while this replica leads.

use k8s_openapi::api::core::v1::ObjectReference;
use kube::api::{Patch, PatchParams};
use kube::runtime::events::{Event, EventType, Recorder};
use kube::{Api, Resource, ResourceExt};
use pravega_crds::names::MANAGER;
use pravega_crds::{PravegaCluster, PravegaClusterStatus, event_actions, event_reasons};
use tracing::{info, warn};

use crate::cache::{Write, cached};
use crate::record::ClusterKey;
use crate::status;

use super::converged::{Owned, is_converged, stamp};
use super::{Context, Error, Outcome};

/// Longest Event note the API server accepts (events.k8s.io/v1 `note`: 1 kB).
const MAX_EVENT_NOTE: usize = 1024;

/// `note` cut to fit an Event, at a character boundary, with an ellipsis when cut.
pub fn event_note(note: String) -> String {
    if note.len() <= MAX_EVENT_NOTE {
        return note;
    }
    let mut end = MAX_EVENT_NOTE - '…'.len_utf8();
    while !note.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &note[..end])
}

impl Context {
    /// `Err` when this replica must not write (see [`Leadership`](crate::leader::Leadership)).
    pub(super) fn may_write(&self) -> Result<(), Error> {
        self.leadership.check().map_err(Error::NotLeader)
    }

    /// Publishes an Event about `cluster`, optionally related to another object. Every call
    /// creates a new Event: a `Recorder`'s own aggregation keys on reason and action only and
    /// would show the first note for later, different ones (e.g. two different scalings), so
    /// callers publish only on a change instead.
    pub(super) async fn publish(
        &self,
        cluster: &PravegaCluster,
        type_: EventType,
        reason: &str,
        action: &str,
        note: String,
        related: Option<ObjectReference>,
    ) {
        let event = Event {
            type_,
            reason: reason.to_owned(),
            note: Some(event_note(note)),
            action: action.to_owned(),
            secondary: related,
        };
        if let Err(e) = self.may_write() {
            warn!(error = %e, reason, "not publishing an Event");
            return;
        }
        let recorder = Recorder::new(self.client.clone(), self.reporter.clone());
        if let Err(e) = recorder.publish(&event, &cluster.object_ref(&())).await {
            warn!(error = %e, reason, "publishing an Event failed");
        }
    }

    /// Applies `desired` (server-side apply, field manager `pravega-operator`, forced) unless
    /// `observed` already matches it.
    pub(super) async fn apply<K: Owned>(
        &self,
        cluster: &ClusterKey,
        mut desired: K,
        observed: Option<&K>,
    ) -> Result<Outcome, Error> {
        let ns = cluster.namespace.as_str();
        stamp(&mut desired)?;
        if observed.is_some_and(|o| is_converged(&desired, o)) {
            return Ok(Outcome::Unchanged);
        }
        self.may_write()?;
        let name = desired.name_any();
        let kind = K::kind(&());
        let api: Api<K> = Api::namespaced(self.client.clone(), ns);
        let applied = api
            .patch(
                &name,
                &PatchParams::apply(MANAGER).force(),
                &Patch::Apply(&desired),
            )
            .await
            .map_err(Error::kube(format!("applying {kind} {ns}/{name}")))?;
        self.metrics.count_write("apply", &kind);
        if let Some(rv) = applied.resource_version() {
            self.records.with(cluster, |r| {
                r.pending.expect(Write::Object {
                    key: format!("{kind}/{name}"),
                    resource_version: rv,
                })
            });
        }
        Ok(if observed.is_some() {
            Outcome::Updated
        } else {
            Outcome::Created
        })
    }

    /// Applies `desired` unless its cached twin already matches it.
    pub(super) async fn apply_cached<K: Owned>(
        &self,
        cluster: &ClusterKey,
        desired: K,
    ) -> Result<Outcome, Error> {
        let observed = cached(
            K::store(&self.caches),
            &cluster.namespace,
            &desired.name_any(),
        );
        self.apply(cluster, desired, observed.as_ref()).await
    }

    /// Applies a workload and reports creation and scaling as Events.
    pub(super) async fn apply_workload<K: Owned>(
        &self,
        cluster: &PravegaCluster,
        key: &ClusterKey,
        desired: K,
        observed: Option<&K>,
    ) -> Result<(), Error> {
        let ns = key.namespace.as_str();
        let name = desired.name_any();
        let kind = K::kind(&());
        let related = Some(desired.object_ref(&()));
        let (from, to) = (observed.and_then(Owned::replicas), desired.replicas());
        match self.apply(key, desired, observed).await? {
            Outcome::Created => {
                info!("created {kind} {ns}/{name}");
                self.publish(
                    cluster,
                    EventType::Normal,
                    event_reasons::CREATED,
                    event_actions::CREATE,
                    format!("Created {kind} {name} with {} replicas", to.unwrap_or(0)),
                    related,
                )
                .await;
            }
            Outcome::Updated if from != to => {
                let (from, to) = (from.unwrap_or(0), to.unwrap_or(0));
                info!("scaled {kind} {ns}/{name} from {from} to {to} replicas");
                self.publish(
                    cluster,
                    EventType::Normal,
                    event_reasons::SCALED,
                    event_actions::SCALE,
                    format!("Scaled {kind} {name} from {from} to {to} replicas"),
                    related,
                )
                .await;
            }
            Outcome::Updated => info!("updated {kind} {ns}/{name}"),
            Outcome::Unchanged => {}
        }
        Ok(())
    }

    /// Writes `status` to the status subresource (merge patch of the fields that changed) when it
    /// differs from `before`.
    pub(super) async fn write_status(
        &self,
        key: &ClusterKey,
        before: &PravegaClusterStatus,
        after: &PravegaClusterStatus,
    ) -> Result<bool, Error> {
        let (ns, name) = (key.namespace.as_str(), key.name.as_str());
        let to_json = |s: &PravegaClusterStatus| {
            serde_json::to_value(s).map_err(|source| Error::Serialize {
                what: format!("status of PravegaCluster {ns}/{name}"),
                source,
            })
        };
        let Some(diff) = status::merge_patch(&to_json(before)?, &to_json(after)?) else {
            return Ok(false);
        };
        self.may_write()?;
        let api: Api<PravegaCluster> = Api::namespaced(self.client.clone(), ns);
        let written = api
            .patch_status(
                name,
                &PatchParams::default(),
                &Patch::Merge(serde_json::json!({ "status": diff })),
            )
            .await
            .map_err(Error::kube(format!(
                "writing the status of PravegaCluster {ns}/{name}"
            )))?;
        self.metrics.count_write("patch_status", "PravegaCluster");
        if let Some(rv) = written.resource_version() {
            self.records.with(key, |r| {
                r.pending.expect(Write::Object {
                    key: format!("PravegaCluster/{name}"),
                    resource_version: rv,
                })
            });
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_notes_fit_the_api_servers_limit() {
        let short = "x".repeat(10);
        assert_eq!(event_note(short.clone()), short);
        let long = "é".repeat(2000);
        let cut = event_note(long);
        assert!(cut.len() <= 1024 && cut.ends_with('…'), "{}", cut.len());
    }
}
