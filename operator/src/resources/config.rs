//! The ConfigMap of each component: the settings every image version of it reads alike.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ConfigMap;
use pravega_crds::Tier2;
use pravega_crds::names::Component;

use super::{
    BOOKIE_DIRS, CONTROLLER_GRPC_PORT, CONTROLLER_REST_PORT, Owner, TIER2_MOUNT, bookie_addresses,
    controller_url,
};

/// The data of a component's ConfigMap, turned into environment variables by `envFrom`: what
/// every image version of the component reads alike.
fn config_data(owner: &Owner<'_>, component: Component) -> BTreeMap<String, String> {
    let spec = owner.spec;
    let zk = spec.zookeeper_uri.clone();
    let mut data = BTreeMap::from([("ZK_URL".to_owned(), zk.clone())]);
    let mut put = |k: &str, v: String| {
        data.insert(k.to_owned(), v);
    };
    match component {
        Component::Bookkeeper => {
            // docker/bookkeeper/entrypoint.sh@v0.4.0..v0.13.0: ledgers under
            // /pravega/$PRAVEGA_CLUSTER_NAME/bookkeeper/ledgers.
            put("PRAVEGA_CLUSTER_NAME", owner.name.to_owned());
            // docker/bookkeeper/wait_for in every image: waits for each host:port listed.
            put("WAIT_FOR", zk);
            // apply-config-from-env.py (0.5+) writes BK_<key> into bk_server.conf; the 0.4
            // entrypoint uses these directories itself.
            for (name, path) in BOOKIE_DIRS {
                let key = match name {
                    "ledger" => "BK_ledgerDirectories",
                    "journal" => "BK_journalDirectories",
                    _ => "BK_indexDirectories",
                };
                put(key, path.to_owned());
            }
            if spec.bookkeeper.auto_recovery {
                // lostBookieRecoveryDelay defaults to 0 (ServerConfiguration@release-4.9.2):
                // every restart of our own would start re-replication. Upstream operator 0.4.5
                // sets 60 s (pkg/controller/pravega/bookie.go@v0.4.5).
                put("BK_lostBookieRecoveryDelay", "60".to_owned());
            }
            // Options from the spec win over the defaults above.
            for (k, v) in &spec.bookkeeper.options {
                put(&format!("BK_{k}"), v.clone());
            }
        }
        Component::Controller => {
            // controller.config.properties@v0.5.0..v0.13.0 (application.conf@v0.4.0) reads
            // CLUSTER_NAME, CONTROLLER_SERVER_PORT and REST_SERVER_PORT from the environment.
            put("CLUSTER_NAME", owner.name.to_owned());
            put("WAIT_FOR", zk);
            put("CONTROLLER_SERVER_PORT", CONTROLLER_GRPC_PORT.to_string());
            put("REST_SERVER_PORT", CONTROLLER_REST_PORT.to_string());
        }
        Component::SegmentStore => {
            // init_segmentstore.sh: CONTROLLER_URL becomes autoScale.controller(.connect)Uri.
            put(
                "CONTROLLER_URL",
                controller_url(owner.name, owner.namespace),
            );
            // Upstream operator 0.4.5 makes the Segment Store wait for the first bookies.
            put(
                "WAIT_FOR",
                bookie_addresses(owner.name, owner.namespace, spec.bookkeeper.replicas).join(","),
            );
            // init_tier2.sh (entrypoint.sh in 0.4): with TIER2_STORAGE empty the Segment Store
            // falls back to HDFS at localhost:9000 (ServiceConfig storageImplementation default).
            match spec.pravega.tier2() {
                Tier2::Filesystem(_) => {
                    put("TIER2_STORAGE", "FILESYSTEM".to_owned());
                    put("NFS_MOUNT", TIER2_MOUNT.to_owned());
                }
                Tier2::Hdfs(hdfs) => {
                    put("TIER2_STORAGE", "HDFS".to_owned());
                    put("HDFS_URL", hdfs.uri.clone());
                    put("HDFS_ROOT", hdfs.root.clone());
                    put("HDFS_REPLICATION", hdfs.replication_factor.to_string());
                }
                Tier2::Ecs(ecs) => {
                    put("TIER2_STORAGE", "EXTENDEDS3".to_owned());
                    put("EXTENDEDS3_BUCKET", ecs.bucket.clone());
                }
            }
        }
    }
    data
}

pub(super) fn config_map(owner: &Owner<'_>, component: Component) -> ConfigMap {
    ConfigMap {
        metadata: owner.meta(component, component.config_map_name(owner.name)),
        data: Some(config_data(owner, component)),
        ..ConfigMap::default()
    }
}
