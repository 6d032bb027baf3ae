//! The Kubernetes permissions the operator uses, in one table. The RBAC manifests in `deploy/`
//! are checked against it: every rule here must be granted, and nothing more.

/// One RBAC rule: `verbs` on `resource` of `api_group` (`""` is the core group).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RbacRule {
    /// API group, `""` for the core group.
    pub api_group: &'static str,
    /// Resource (plural), with `/subresource` where it applies.
    pub resource: &'static str,
    /// Verbs the operator uses.
    pub verbs: &'static [&'static str],
    /// True only for the leader-election Lease: granted by a Role in the operator's own
    /// namespace rather than by the ClusterRole.
    pub namespaced_lease: bool,
}

const fn rule(
    api_group: &'static str,
    resource: &'static str,
    verbs: &'static [&'static str],
) -> RbacRule {
    RbacRule {
        api_group,
        resource,
        verbs,
        namespaced_lease: false,
    }
}

/// Verbs on the objects a cluster owns: read (`get` when observing, `list`/`watch` for the
/// controller's watches) and server-side apply, which is a `patch` that `create`s the object when
/// it does not exist yet. Owned objects are deleted by the garbage collector, never by the
/// operator.
const OWNED: &[&str] = &["get", "list", "watch", "create", "patch"];

/// Every permission the operator needs.
pub const RBAC_RULES: &[RbacRule] = &[
    // Watched by the controller (list + watch) and read fresh at the start of each reconcile
    // (get); never modified.
    rule(
        "pravega.pravega.io",
        "pravegaclusters",
        &["get", "list", "watch"],
    ),
    // Status is written with merge patches on the status subresource.
    rule("pravega.pravega.io", "pravegaclusters/status", &["patch"]),
    rule("apps", "statefulsets", OWNED),
    rule("apps", "deployments", OWNED),
    rule("", "services", OWNED),
    rule("", "configmaps", OWNED),
    rule("policy", "poddisruptionbudgets", OWNED),
    // Listed when observing a cluster, watched for readiness changes, deleted one at a time
    // (with preconditions) during an upgrade of a StatefulSet component.
    rule("", "pods", &["list", "watch", "delete"]),
    // The volumes of bookies and Segment Stores: read before a cluster's first deployment (data
    // of a newer version refuses it) and annotated with the highest version that ran on them.
    rule("", "persistentvolumeclaims", &["get", "patch"]),
    // Events about PravegaClusters (a repeated Event is patched into a series).
    rule("events.k8s.io", "events", &["create", "patch"]),
    // Leader election (`--leader-elect`), in the operator's namespace only.
    RbacRule {
        api_group: "coordination.k8s.io",
        resource: "leases",
        verbs: &["get", "create", "update"],
        namespaced_lease: true,
    },
];

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn rules_are_unique_and_only_the_lease_is_namespaced() {
        let mut seen = HashSet::new();
        for r in RBAC_RULES {
            assert!(seen.insert((r.api_group, r.resource)), "duplicate {r:?}");
            assert!(!r.verbs.is_empty());
            assert_eq!(r.namespaced_lease, r.resource == "leases", "{r:?}");
        }
    }

    #[test]
    fn server_side_apply_can_create_owned_objects() {
        for resource in [
            "statefulsets",
            "deployments",
            "services",
            "configmaps",
            "poddisruptionbudgets",
        ] {
            let r = RBAC_RULES.iter().find(|r| r.resource == resource).unwrap();
            for verb in ["get", "create", "patch", "list", "watch"] {
                assert!(r.verbs.contains(&verb), "{resource} lacks {verb}");
            }
            assert!(
                !r.verbs.contains(&"delete"),
                "{resource}: the garbage collector deletes owned objects"
            );
        }
    }
}
