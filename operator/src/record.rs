//! What the operator remembers about each cluster between reconciles: one typed record per
//! cluster, in memory only (a restarted operator starts afresh, which is safe: everything that
//! decides an upgrade is in the cluster's status and objects).

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;

use kube::ResourceExt;
use pravega_crds::PravegaCluster;

use crate::cache::PendingWrites;

/// A PravegaCluster's identity.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClusterKey {
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
}

impl ClusterKey {
    /// The key of `cluster`.
    pub fn of(cluster: &PravegaCluster) -> Self {
        Self {
            namespace: cluster.namespace().unwrap_or_default(),
            name: cluster.name_any(),
        }
    }
}

impl fmt::Display for ClusterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// What the operator remembers about one cluster.
#[derive(Debug, Default)]
pub struct ClusterRecord {
    /// Consecutive failed reconciles, for the retry backoff.
    pub failures: u32,
    /// The reconcile failure last published as an Event (retries of it publish none).
    pub reported_failure: Option<String>,
    /// The spec refusal last published as an Event while an upgrade failure is the `Error`
    /// shown.
    pub reported_refusal: Option<String>,
    /// This operator's writes that the caches may not show yet.
    pub pending: PendingWrites,
    /// The `spec.version` for which the cluster's volume claims were last found to hold no newer
    /// data (so that a cluster that cannot deploy yet does not read them on every retry).
    pub claims_checked: Option<String>,
}

/// The records of every cluster.
#[derive(Debug, Default)]
pub struct Records {
    map: Mutex<HashMap<ClusterKey, ClusterRecord>>,
}

impl Records {
    /// Runs `f` on the record of `key` (created empty when absent).
    pub fn with<R>(&self, key: &ClusterKey, f: impl FnOnce(&mut ClusterRecord) -> R) -> R {
        let mut map = self
            .map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(map.entry(key.clone()).or_default())
    }

    /// Forgets `key` (the cluster is gone).
    pub fn forget(&self, key: &ClusterKey) {
        self.map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(key);
    }

    /// How many clusters are remembered.
    pub fn len(&self) -> usize {
        self.map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len()
    }

    /// True when no cluster is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
