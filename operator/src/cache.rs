//! What the reconcile loop reads: the watch caches (reflector stores) of every kind it owns or
//! watches, and the expectations that keep it from deciding on a cache that has not yet seen
//! its own last writes.
//!
//! A reconcile reads nothing from the API server in steady state: the PravegaCluster, its
//! workloads, ConfigMaps, Services, PodDisruptionBudgets and pods all come from the caches that
//! the watches behind the `Controller` keep. The price of a cache is staleness: right after the
//! operator wrote a status, applied a workload or deleted a pod, the cache may still show the
//! object as it was. So each write is remembered ([`PendingWrites`], the way ECK does it) and a
//! reconcile of that cluster waits (the watch event that brings the write also triggers the
//! next reconcile) until the cache shows every remembered write, or the expectation expires.
//! The writes are kept in the cluster's [`crate::record::ClusterRecord`].

use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::ResourceExt;
use kube::runtime::reflector::{ObjectRef, Store};
use pravega_crds::PravegaCluster;
use pravega_crds::names::LABEL_INSTANCE;

/// How long a write may stay unseen by the cache before the reconcile goes on anyway (a write
/// whose object was deleted right after is never seen).
pub const EXPECTATION_TTL: Duration = Duration::from_secs(30);

/// The reflector stores the reconcile reads from.
#[derive(Clone)]
pub struct Caches {
    /// PravegaClusters.
    pub clusters: Store<PravegaCluster>,
    /// The clusters' StatefulSets.
    pub stateful_sets: Store<StatefulSet>,
    /// The clusters' Deployments.
    pub deployments: Store<Deployment>,
    /// The clusters' Services.
    pub services: Store<Service>,
    /// The clusters' ConfigMaps.
    pub config_maps: Store<ConfigMap>,
    /// The clusters' PodDisruptionBudgets.
    pub pod_disruption_budgets: Store<PodDisruptionBudget>,
    /// The clusters' pods.
    pub pods: Store<Pod>,
    /// True once every store holds its first complete list ([`Caches::watch_readiness`]).
    pub ready: tokio::sync::watch::Receiver<bool>,
}

impl Caches {
    /// Waits, as the one waiter on each store (a store's readiness wakes a single waiter only),
    /// until every store holds its first complete list, then says so on `ready`. False if a
    /// watch ended first.
    pub async fn watch_readiness(&self, ready: tokio::sync::watch::Sender<bool>) -> bool {
        let (a, b, c, d, e, f, g) = tokio::join!(
            self.clusters.wait_until_ready(),
            self.stateful_sets.wait_until_ready(),
            self.deployments.wait_until_ready(),
            self.services.wait_until_ready(),
            self.config_maps.wait_until_ready(),
            self.pod_disruption_budgets.wait_until_ready(),
            self.pods.wait_until_ready(),
        );
        let ok =
            a.is_ok() && b.is_ok() && c.is_ok() && d.is_ok() && e.is_ok() && f.is_ok() && g.is_ok();
        if ok {
            ready.send_replace(true);
        }
        ok
    }

    /// Resolves once every store holds its first complete list (any number of waiters); false
    /// if that can no longer happen.
    pub async fn wait_until_ready(&self) -> bool {
        self.ready.clone().wait_for(|r| *r).await.is_ok()
    }

    /// The pods of cluster `name` in `ns` (its instance label).
    pub fn cluster_pods(&self, ns: &str, name: &str) -> Vec<Pod> {
        self.pods
            .state_filter(|p| {
                p.metadata.namespace.as_deref() == Some(ns)
                    && p.labels().get(LABEL_INSTANCE).map(String::as_str) == Some(name)
            })
            .into_iter()
            .map(|p| (*p).clone())
            .collect()
    }
}

/// Gets `name` in `ns` from `store`.
pub fn cached<K>(store: &Store<K>, ns: &str, name: &str) -> Option<K>
where
    K: kube::Resource<DynamicType = ()> + Clone + 'static,
{
    store
        .get(&ObjectRef::new(name).within(ns))
        .map(|k| (*k).clone())
}

/// The resourceVersion of `name` in `ns` as `store` has it (no copy of the object).
fn rv_of<K>(store: &Store<K>, ns: &str, name: &str) -> Option<String>
where
    K: kube::Resource<DynamicType = ()> + Clone + 'static,
{
    store
        .get(&ObjectRef::new(name).within(ns))
        .and_then(|o| o.meta().resource_version.clone())
}

/// A write the cache must show before the next decision ([`PendingWrites`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Write {
    /// An object was created or changed: the cache must show this resourceVersion or a later
    /// one.
    Object {
        /// `Kind/name`.
        key: String,
        /// The resourceVersion the API server answered.
        resource_version: String,
    },
    /// A pod was deleted: the cache must show it gone or terminating.
    PodDeleted {
        /// The pod's name.
        name: String,
        /// The deleted pod's uid.
        uid: String,
    },
}

/// True when resourceVersion `seen` is `wanted` or later. Resource versions are opaque; the
/// API server's are etcd revisions, which grow, so numbers are compared as numbers; anything
/// else counts only when equal.
pub fn caught_up(seen: &str, wanted: &str) -> bool {
    if seen == wanted {
        return true;
    }
    match (seen.parse::<u64>(), wanted.parse::<u64>()) {
        (Ok(s), Ok(w)) => s >= w,
        _ => false,
    }
}

/// What the cache shows of a remembered write's object.
pub trait CacheView {
    /// The resourceVersion of object `key` (`Kind/name`), if cached.
    fn resource_version(&self, key: &str) -> Option<String>;
    /// The pod named `name`: its uid and whether it is being deleted.
    fn pod(&self, name: &str) -> Option<(String, bool)>;
}

/// The first remembered write the cache does not show yet, described for the log.
pub fn unseen(writes: &[Write], cache: &impl CacheView) -> Option<String> {
    writes.iter().find_map(|w| match w {
        Write::Object {
            key,
            resource_version,
        } => {
            let seen = cache.resource_version(key);
            let ok = seen
                .as_deref()
                .is_some_and(|s| caught_up(s, resource_version));
            (!ok).then(|| format!("{key} at resourceVersion {resource_version}"))
        }
        Write::PodDeleted { name, uid } => {
            let still_there = cache
                .pod(name)
                .is_some_and(|(u, deleting)| &u == uid && !deleting);
            still_there.then(|| format!("the deletion of pod {name}"))
        }
    })
}

/// A cluster's writes that its caches may not show yet.
#[derive(Debug, Default)]
pub struct PendingWrites {
    writes: Vec<Write>,
    since: Option<Instant>,
}

impl PendingWrites {
    /// Remembers `write` (replacing an earlier one to the same object or pod).
    pub fn expect(&mut self, write: Write) {
        self.writes.retain(|w| !same_target(w, &write));
        self.writes.push(write);
        self.since = Some(Instant::now());
    }

    /// What the caches do not show yet (`None` when they are up to date, or the writes expired;
    /// they are then forgotten).
    pub fn unmet(&mut self, cache: &impl CacheView) -> Option<String> {
        if self.writes.is_empty() {
            return None;
        }
        let missing = unseen(&self.writes, cache);
        let expired = self.since.is_none_or(|t| t.elapsed() >= EXPECTATION_TTL);
        if missing.is_none() || expired {
            self.writes.clear();
            self.since = None;
            return None;
        }
        missing
    }
}

fn same_target(a: &Write, b: &Write) -> bool {
    match (a, b) {
        (Write::Object { key: x, .. }, Write::Object { key: y, .. }) => x == y,
        (Write::PodDeleted { uid: x, .. }, Write::PodDeleted { uid: y, .. }) => x == y,
        _ => false,
    }
}

/// The caches of one cluster's namespace, as [`CacheView`].
pub struct NamespaceView<'c> {
    /// The caches.
    pub caches: &'c Caches,
    /// The namespace.
    pub namespace: &'c str,
}

impl CacheView for NamespaceView<'_> {
    fn resource_version(&self, key: &str) -> Option<String> {
        let (kind, name) = key.split_once('/')?;
        let c = self.caches;
        match kind {
            "PravegaCluster" => rv_of(&c.clusters, self.namespace, name),
            "StatefulSet" => rv_of(&c.stateful_sets, self.namespace, name),
            "Deployment" => rv_of(&c.deployments, self.namespace, name),
            "Service" => rv_of(&c.services, self.namespace, name),
            "ConfigMap" => rv_of(&c.config_maps, self.namespace, name),
            "PodDisruptionBudget" => rv_of(&c.pod_disruption_budgets, self.namespace, name),
            _ => None,
        }
    }

    fn pod(&self, name: &str) -> Option<(String, bool)> {
        let pod = self
            .caches
            .pods
            .get(&ObjectRef::new(name).within(self.namespace))?;
        Some((
            pod.metadata.uid.clone().unwrap_or_default(),
            pod.metadata.deletion_timestamp.is_some(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[derive(Default)]
    struct Fake {
        rvs: HashMap<String, String>,
        pods: HashMap<String, (String, bool)>,
    }

    impl CacheView for Fake {
        fn resource_version(&self, key: &str) -> Option<String> {
            self.rvs.get(key).cloned()
        }
        fn pod(&self, name: &str) -> Option<(String, bool)> {
            self.pods.get(name).cloned()
        }
    }

    fn object(key: &str, rv: &str) -> Write {
        Write::Object {
            key: key.into(),
            resource_version: rv.into(),
        }
    }

    #[test]
    fn resource_versions_compare_as_revisions() {
        assert!(caught_up("12", "12"));
        assert!(caught_up("13", "12"));
        assert!(!caught_up("9", "12"));
        assert!(caught_up("abc", "abc"));
        assert!(!caught_up("abd", "abc"));
    }

    #[test]
    fn a_write_is_met_once_the_cache_shows_it() {
        let mut cache = Fake::default();
        let writes = [object("PravegaCluster/example", "20")];
        cache
            .rvs
            .insert("PravegaCluster/example".into(), "19".into());
        assert_eq!(
            unseen(&writes, &cache).as_deref(),
            Some("PravegaCluster/example at resourceVersion 20")
        );
        cache
            .rvs
            .insert("PravegaCluster/example".into(), "21".into());
        assert_eq!(unseen(&writes, &cache), None);
    }

    #[test]
    fn a_deleted_pod_is_met_once_gone_terminating_or_replaced() {
        let mut cache = Fake::default();
        let writes = [Write::PodDeleted {
            name: "example-bookie-0".into(),
            uid: "u1".into(),
        }];
        cache
            .pods
            .insert("example-bookie-0".into(), ("u1".into(), false));
        assert!(unseen(&writes, &cache).is_some());
        cache
            .pods
            .insert("example-bookie-0".into(), ("u1".into(), true));
        assert_eq!(unseen(&writes, &cache), None);
        cache
            .pods
            .insert("example-bookie-0".into(), ("u2".into(), false));
        assert_eq!(unseen(&writes, &cache), None);
        cache.pods.clear();
        assert_eq!(unseen(&writes, &cache), None);
    }

    #[test]
    fn pending_writes_are_forgotten_once_met() {
        let mut pending = PendingWrites::default();
        let mut cache = Fake::default();
        assert!(pending.unmet(&cache).is_none());
        pending.expect(object("StatefulSet/a-bookie", "5"));
        pending.expect(object("StatefulSet/a-bookie", "7"));
        cache.rvs.insert("StatefulSet/a-bookie".into(), "6".into());
        // The later write to the same object replaced the earlier one.
        assert!(pending.unmet(&cache).is_some());
        cache.rvs.insert("StatefulSet/a-bookie".into(), "7".into());
        assert!(pending.unmet(&cache).is_none());
        cache.rvs.insert("StatefulSet/a-bookie".into(), "1".into());
        assert!(pending.unmet(&cache).is_none(), "met writes are forgotten");
    }
}
