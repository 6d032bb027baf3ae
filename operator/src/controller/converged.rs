//! Whether an applied object needs a write: every desired object is stamped with a hash of its
//! content, and a workload is compared on what others are likely to change behind the operator's
//! back.

use std::fmt::Debug;

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{ConfigMap, PodTemplateSpec, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::runtime::reflector::Store;
use kube::{Resource, ResourceExt};
use pravega_crds::names;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::cache::Caches;

use super::Error;

/// Annotation on every applied object: a hash of the desired object, so that a converged
/// object is recognised without a write.
pub const DESIRED_HASH_KEY: &str = "pravega.pravega.io/desired-hash";

/// Objects the operator applies.
pub trait Owned:
    Resource<DynamicType = (), Scope = NamespaceResourceScope>
    + Clone
    + Serialize
    + DeserializeOwned
    + Debug
    + Send
    + Sync
    + 'static
{
    /// Desired/observed replicas, for workloads.
    fn replicas(&self) -> Option<i32> {
        None
    }

    /// The pod template, for workloads.
    fn template(&self) -> Option<&PodTemplateSpec> {
        None
    }

    /// The watch cache of this kind.
    fn store(caches: &Caches) -> &Store<Self>;
}

impl Owned for ConfigMap {
    fn store(caches: &Caches) -> &Store<Self> {
        &caches.config_maps
    }
}
impl Owned for Service {
    fn store(caches: &Caches) -> &Store<Self> {
        &caches.services
    }
}
impl Owned for PodDisruptionBudget {
    fn store(caches: &Caches) -> &Store<Self> {
        &caches.pod_disruption_budgets
    }
}
impl Owned for StatefulSet {
    fn store(caches: &Caches) -> &Store<Self> {
        &caches.stateful_sets
    }

    fn replicas(&self) -> Option<i32> {
        self.spec.as_ref().and_then(|s| s.replicas)
    }

    fn template(&self) -> Option<&PodTemplateSpec> {
        self.spec.as_ref().map(|s| &s.template)
    }
}
impl Owned for Deployment {
    fn store(caches: &Caches) -> &Store<Self> {
        &caches.deployments
    }

    fn replicas(&self) -> Option<i32> {
        self.spec.as_ref().and_then(|s| s.replicas)
    }

    fn template(&self) -> Option<&PodTemplateSpec> {
        self.spec.as_ref().map(|s| &s.template)
    }
}

/// The fields of a workload that others are most likely to change behind the operator's back
/// (`kubectl scale`, `kubectl set image`, a label edit): replicas, container images and the
/// template's version label.
fn workload_fingerprint<K: Owned>(obj: &K) -> (Option<i32>, Vec<Option<String>>, Option<String>) {
    let template = obj.template();
    let images = template
        .and_then(|t| t.spec.as_ref())
        .map(|s| s.containers.iter().map(|c| c.image.clone()).collect())
        .unwrap_or_default();
    let version = template
        .and_then(|t| t.metadata.as_ref())
        .and_then(|m| m.labels.as_ref())
        .and_then(|l| l.get(names::VERSION_KEY).cloned());
    (obj.replicas(), images, version)
}

/// FNV-1a (64 bit): a hash that is stable across builds and platforms.
pub fn stable_hash(bytes: &[u8]) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{hash:016x}")
}

/// Stamps `desired` with the hash of its content (without the stamp) and returns the hash.
pub fn stamp<K: Owned>(desired: &mut K) -> Result<String, Error> {
    desired.annotations_mut().remove(DESIRED_HASH_KEY);
    let bytes = serde_json::to_vec(&desired).map_err(|source| Error::Serialize {
        what: format!("{} {}", K::kind(&()), desired.name_any()),
        source,
    })?;
    let hash = stable_hash(&bytes);
    desired
        .annotations_mut()
        .insert(DESIRED_HASH_KEY.to_owned(), hash.clone());
    Ok(hash)
}

/// True when `observed` needs no write to become `desired` (already stamped): the hash of the
/// desired content matches, and nobody changed the replicas, images or version label of a
/// workload behind the operator's back.
pub fn is_converged<K: Owned>(desired: &K, observed: &K) -> bool {
    let want = desired.annotations().get(DESIRED_HASH_KEY);
    want.is_some()
        && observed.annotations().get(DESIRED_HASH_KEY) == want
        && workload_fingerprint(observed) == workload_fingerprint(desired)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    use pravega_crds::PravegaCluster;

    fn cluster() -> PravegaCluster {
        let spec = serde_json::from_value(serde_json::json!({"version": "0.4.0"})).unwrap();
        let mut c = PravegaCluster::new("example", spec);
        c.metadata.namespace = Some("default".into());
        c.metadata.uid = Some("uid-1".into());
        c
    }

    fn bookie(cluster: &PravegaCluster) -> StatefulSet {
        resources::desired_objects(cluster, |_| "0.4.0".into())
            .unwrap()
            .stateful_sets
            .remove(0)
    }

    #[test]
    fn stamped_object_is_converged_with_itself_and_with_server_additions() {
        let c = cluster();
        let mut desired = bookie(&c);
        let hash = stamp(&mut desired).unwrap();
        assert_eq!(hash.len(), 16);
        let mut observed = desired.clone();
        observed.metadata.resource_version = Some("42".into());
        observed.metadata.uid = Some("x".into());
        assert!(is_converged(&desired, &observed));
        // Stamping again gives the same hash.
        let mut again = desired.clone();
        assert_eq!(stamp(&mut again).unwrap(), hash);
    }

    #[test]
    fn changed_spec_or_drifted_replicas_are_not_converged() {
        let mut c = cluster();
        let mut desired = bookie(&c);
        stamp(&mut desired).unwrap();
        let mut scaled_by_hand = desired.clone();
        if let Some(s) = scaled_by_hand.spec.as_mut() {
            s.replicas = Some(1);
        }
        assert!(!is_converged(&desired, &scaled_by_hand));
        let mut image_set_by_hand = desired.clone();
        if let Some(s) = image_set_by_hand.spec.as_mut()
            && let Some(p) = s.template.spec.as_mut()
        {
            p.containers[0].image = Some("someone/else:1".into());
        }
        assert!(!is_converged(&desired, &image_set_by_hand));

        c.spec.bookkeeper.replicas = 4;
        let mut desired4 = bookie(&c);
        stamp(&mut desired4).unwrap();
        assert!(!is_converged(&desired4, &desired));

        let mut newer = cluster();
        newer.spec.version = "0.5.0".into();
        let mut desired5 = resources::desired_objects(&newer, |_| "0.5.0".into())
            .unwrap()
            .stateful_sets
            .remove(0);
        stamp(&mut desired5).unwrap();
        assert!(!is_converged(&desired5, &desired));
    }

    #[test]
    fn unstamped_observed_objects_are_not_converged() {
        let c = cluster();
        let mut desired = bookie(&c);
        let observed = desired.clone();
        stamp(&mut desired).unwrap();
        assert!(!is_converged(&desired, &observed));
        let cm = ConfigMap {
            metadata: ObjectMeta::default(),
            ..ConfigMap::default()
        };
        assert!(
            !is_converged(&cm, &cm),
            "a desired object without a stamp is never converged"
        );
    }

    #[test]
    fn stable_hash_is_fnv1a() {
        assert_eq!(stable_hash(b""), "cbf29ce484222325");
        assert_eq!(stable_hash(b"a"), "af63dc4c8601ec8c");
    }
}
