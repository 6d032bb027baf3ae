//! In-memory object storage with a global `resourceVersion` and a bounded watch-event history.

use crate::resources::Registry;
use serde_json::{Value, json};
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

/// Identifies a stored object. Objects of one group/resource are stored once (custom resources
/// in their CRD's storage version, whatever version they are served in), so the version is not
/// part of the key.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjKey {
    /// API group.
    pub group: String,
    /// Plural resource.
    pub resource: String,
    /// Namespace (`""` for cluster-scoped).
    pub namespace: String,
    /// Name.
    pub name: String,
}

/// Watch event type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    /// Created.
    Added,
    /// Changed.
    Modified,
    /// Removed.
    Deleted,
}

impl EventType {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One change, as kept in the history window.
#[derive(Debug, Clone)]
pub struct Change {
    /// The resourceVersion of the change.
    pub rv: u64,
    /// Which object.
    pub key: ObjKey,
    /// What happened.
    pub kind: EventType,
    /// The object after the change (the last state for deletions).
    pub object: Arc<Value>,
    /// The object before a modification.
    pub prev: Option<Arc<Value>>,
}

/// Everything guarded by the store lock.
#[derive(Debug)]
pub struct State {
    /// The last resourceVersion handed out.
    pub rv: u64,
    /// Live objects.
    pub objects: BTreeMap<ObjKey, Arc<Value>>,
    /// Recent changes, oldest first.
    pub history: VecDeque<Arc<Change>>,
    /// Maximum number of changes kept.
    pub history_limit: usize,
    /// The resourceVersion before the oldest change still in the history: a watch from an
    /// older version gets `410 Gone`.
    pub compacted_rv: u64,
    /// Served resources.
    pub registry: Registry,
}

/// The outcome of asking for changes after a resourceVersion.
#[derive(Debug)]
pub enum Since {
    /// These changes (possibly none).
    Changes(Vec<Arc<Change>>),
    /// The version is older than the history window.
    Expired,
}

impl State {
    /// A fresh store.
    pub fn new(history_limit: usize) -> Self {
        State {
            rv: 1,
            objects: BTreeMap::new(),
            history: VecDeque::new(),
            history_limit: history_limit.max(1),
            compacted_rv: 0,
            registry: Registry::default(),
        }
    }

    fn record(
        &mut self,
        key: ObjKey,
        kind: EventType,
        object: Arc<Value>,
        prev: Option<Arc<Value>>,
    ) {
        self.history.push_back(Arc::new(Change {
            rv: self.rv,
            key,
            kind,
            object,
            prev,
        }));
        while self.history.len() > self.history_limit {
            if let Some(c) = self.history.pop_front() {
                self.compacted_rv = c.rv;
            }
        }
    }

    fn stamp(&mut self, obj: &mut Value) {
        self.rv += 1;
        crate::util::meta_mut(obj).insert("resourceVersion".into(), json!(self.rv.to_string()));
    }

    /// Stores a new object (sets its resourceVersion).
    pub fn insert(&mut self, key: ObjKey, mut obj: Value) -> Arc<Value> {
        self.stamp(&mut obj);
        let obj = Arc::new(obj);
        self.objects.insert(key.clone(), obj.clone());
        self.record(key, EventType::Added, obj.clone(), None);
        obj
    }

    /// Replaces a stored object (sets its resourceVersion).
    pub fn replace(&mut self, key: ObjKey, mut obj: Value) -> Arc<Value> {
        self.stamp(&mut obj);
        let obj = Arc::new(obj);
        let prev = self.objects.insert(key.clone(), obj.clone());
        self.record(key, EventType::Modified, obj.clone(), prev);
        obj
    }

    /// Removes an object; the DELETED event carries a new resourceVersion.
    pub fn remove(&mut self, key: &ObjKey) -> Option<Arc<Value>> {
        let old = self.objects.remove(key)?;
        let mut obj = (*old).clone();
        self.stamp(&mut obj);
        let obj = Arc::new(obj);
        self.record(key.clone(), EventType::Deleted, obj.clone(), None);
        Some(obj)
    }

    /// Changes after `rv`, or `Expired` if the window no longer covers them.
    pub fn since(&self, rv: u64) -> Since {
        if rv < self.compacted_rv {
            return Since::Expired;
        }
        let start = self.history.partition_point(|c| c.rv <= rv);
        Since::Changes(self.history.iter().skip(start).cloned().collect())
    }

    /// Objects of one resource (optionally one namespace), in key order.
    pub fn list(&self, group: &str, resource: &str, namespace: Option<&str>) -> Vec<Arc<Value>> {
        let lo = ObjKey {
            group: group.to_string(),
            resource: resource.to_string(),
            namespace: namespace.unwrap_or_default().to_string(),
            name: String::new(),
        };
        self.objects
            .range(lo..)
            .take_while(|(k, _)| {
                k.group == group
                    && k.resource == resource
                    && namespace.is_none_or(|ns| k.namespace == ns)
            })
            .map(|(_, v)| v.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Replaying the changes after any still-covered version onto the objects as they were
        /// then gives the current objects; versions strictly increase.
        #[test]
        fn history_replays_to_the_current_state(ops in proptest::collection::vec((0u8..3, 0u8..4), 1..60), limit in 1usize..30) {
            let mut s = State::new(limit);
            let mut snapshots = vec![(s.rv, s.objects.clone())];
            for (op, n) in ops {
                let k = key(&format!("o{n}"));
                match (op, s.objects.contains_key(&k)) {
                    (0, false) => { s.insert(k, json!({"metadata": {"name": format!("o{n}")}})); }
                    (1, true) | (0, true) => { s.replace(k, json!({"metadata": {"name": format!("o{n}")}, "data": {"rv": s.rv.to_string()}})); }
                    (_, true) => { s.remove(&k); }
                    _ => continue,
                }
                snapshots.push((s.rv, s.objects.clone()));
            }
            for (rv, objs) in snapshots {
                match s.since(rv) {
                    Since::Expired => prop_assert!(rv < s.compacted_rv),
                    Since::Changes(changes) => {
                        let mut replay = objs.clone();
                        let mut last = rv;
                        for c in changes {
                            prop_assert!(c.rv > last);
                            last = c.rv;
                            match c.kind {
                                EventType::Deleted => { replay.remove(&c.key); }
                                _ => { replay.insert(c.key.clone(), c.object.clone()); }
                            }
                        }
                        prop_assert_eq!(&replay, &s.objects);
                    }
                }
            }
        }
    }

    fn key(name: &str) -> ObjKey {
        ObjKey {
            group: String::new(),
            resource: "configmaps".into(),
            namespace: "default".into(),
            name: name.into(),
        }
    }

    #[test]
    fn versions_increase_and_history_is_bounded() {
        let mut s = State::new(3);
        let a = s.insert(key("a"), json!({"metadata": {"name": "a"}}));
        let rv_a: u64 = a["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        for i in 0..5 {
            s.replace(
                key("a"),
                json!({"metadata": {"name": "a"}, "data": {"i": i.to_string()}}),
            );
        }
        assert!(matches!(s.since(rv_a), Since::Expired));
        match s.since(s.rv - 1) {
            Since::Changes(c) => {
                assert_eq!(c.len(), 1);
                assert_eq!(c[0].kind, EventType::Modified);
            }
            Since::Expired => panic!("recent version expired"),
        }
        let gone = s.remove(&key("a")).unwrap();
        assert_eq!(gone["metadata"]["resourceVersion"], json!(s.rv.to_string()));
        assert!(s.list("", "configmaps", Some("default")).is_empty());
    }
}
