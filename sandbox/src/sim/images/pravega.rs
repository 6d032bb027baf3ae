//! The `pravega/pravega` image: the Controller and the Segment Store (tier 2, direct memory).

use super::jvm::{java_opts, java11_refusal, jvm_size, last_value};
use super::{DEFAULT_CACHE_SIZE, DEFAULT_CLUSTER_NAME, Outcome, Start, Version, v};
use std::collections::{BTreeMap, HashSet};

pub(super) fn controller(version: Version, env: &BTreeMap<String, String>) -> Outcome {
    // Java 11 from 0.9 (docker/pravega/Dockerfile@v0.9.0 is FROM openjdk:11).
    if version >= v(0, 9)
        && let Some(message) = java11_refusal(&java_opts(env))
    {
        return Outcome::Crash {
            exit_code: 1,
            message,
        };
    }
    Outcome::Run
}

fn is_set(env: &BTreeMap<String, String>, name: &str) -> bool {
    env.get(name).is_some_and(|v| !v.is_empty())
}

fn missing<'a>(env: &BTreeMap<String, String>, names: &[&'a str]) -> Vec<&'a str> {
    names.iter().copied().filter(|n| !is_set(env, n)).collect()
}

fn never_ready(message: String) -> Outcome {
    Outcome::NeverReady { message }
}

/// What the image's scripts do before starting the JVM: a script waiting forever for a
/// variable keeps the Segment Store from ever starting.
fn tier2_wait(version: Version, env: &BTreeMap<String, String>) -> Option<Outcome> {
    let storage = env.get("TIER2_STORAGE").map(String::as_str).unwrap_or("");
    let waiting_for = match storage {
        // MOUNT_IN_CONTAINER=true: the script mounts NFS_SERVER itself and loops until it is
        // set (init_tier2.sh@v0.5.0..v0.13.0, entrypoint.sh@v0.4.0).
        "FILESYSTEM" if env.get("MOUNT_IN_CONTAINER").map(String::as_str) == Some("true") => {
            missing(env, &["NFS_SERVER"])
        }
        // entrypoint.sh@v0.4.0 and init_tier2.sh@v0.5.0..v0.6.x loop until these are set.
        "EXTENDEDS3" if version < v(0, 7) => missing(
            env,
            &[
                "EXTENDEDS3_ACCESS_KEY_ID",
                "EXTENDEDS3_SECRET_KEY",
                "EXTENDEDS3_URI",
                "EXTENDEDS3_BUCKET",
            ],
        ),
        // init_tier2.sh@v0.7.0..v0.13.0 loops until the configuration URI and bucket are set.
        "EXTENDEDS3" => missing(env, &["EXTENDEDS3_CONFIGURI", "EXTENDEDS3_BUCKET"]),
        _ => Vec::new(),
    };
    (!waiting_for.is_empty()).then(|| {
        never_ready(format!(
            "tier 2 unreachable: TIER2_STORAGE is {storage} but {} {} not set (the image's init_tier2.sh waits until {})",
            waiting_for.join(", "),
            if waiting_for.len() == 1 { "is" } else { "are" },
            if waiting_for.len() == 1 { "it is" } else { "they are" },
        ))
    })
}

/// Whether the Segment Store reaches its tier 2 once started.
fn tier2_reachable(
    version: Version,
    env: &BTreeMap<String, String>,
    mounts: &[String],
) -> Option<Outcome> {
    let storage = env.get("TIER2_STORAGE").map(String::as_str).unwrap_or("");
    match storage {
        // The scripts add no pravegaservice.storageImplementation for an empty value
        // (add_system_property skips empty values, docker/pravega/scripts/common.sh@v0.5.0),
        // and ServiceConfig's default is HDFS, at hdfs.hdfsUrl's default localhost:9000
        // (ServiceConfig.java and HDFSStorageConfig.java@v0.4.0..v0.13.0;
        // init_tier2.sh@v0.5.0..v0.13.0, entrypoint.sh@v0.4.0).
        "" => Some(never_ready(
            "tier 2 unreachable: TIER2_STORAGE is empty, so the Segment Store uses HDFS at localhost:9000"
                .to_owned(),
        )),
        "FILESYSTEM" => {
            if env.get("MOUNT_IN_CONTAINER").map(String::as_str) == Some("true") {
                // Mounted by the script itself (NFS_MOUNT defaults to /fs/).
                return None;
            }
            // filesystem.root = NFS_MOUNT, which must be a mounted (shared) volume.
            let Some(root) = env.get("NFS_MOUNT").filter(|m| !m.is_empty()) else {
                return Some(never_ready(
                    "tier 2 unreachable: TIER2_STORAGE is FILESYSTEM but NFS_MOUNT is not set, so filesystem.root is not a mounted volume"
                        .to_owned(),
                ));
            };
            let norm = |p: &str| p.trim_end_matches('/').to_owned();
            if mounts.iter().any(|m| norm(m) == norm(root)) {
                None
            } else {
                Some(never_ready(format!(
                    "tier 2 unreachable: TIER2_STORAGE is FILESYSTEM but no volume is mounted at NFS_MOUNT ({root})"
                )))
            }
        }
        // hdfs.hdfsUrl = HDFS_URL; empty leaves the default, localhost:9000.
        "HDFS" if !is_set(env, "HDFS_URL") => Some(never_ready(
            "tier 2 unreachable: TIER2_STORAGE is HDFS but HDFS_URL is not set, so the Segment Store uses HDFS at localhost:9000"
                .to_owned(),
        )),
        // init_tier2.sh@v0.7.0..v0.13.0 (add_system_property_ecs_config_uri) appends
        // `identity=$EXTENDEDS3_ACCESS_KEY_ID&secretKey=$EXTENDEDS3_SECRET_KEY` to a
        // configuration URI without `identity`: without them ECS refuses the Segment Store.
        "EXTENDEDS3" if version >= v(0, 7) => {
            let uri = env
                .get("EXTENDEDS3_CONFIGURI")
                .map(String::as_str)
                .unwrap_or("");
            let absent = missing(env, &["EXTENDEDS3_ACCESS_KEY_ID", "EXTENDEDS3_SECRET_KEY"]);
            (!uri.contains("identity") && !absent.is_empty()).then(|| {
                never_ready(format!(
                    "tier 2 unreachable: TIER2_STORAGE is EXTENDEDS3 but {} {} not set, so the ECS configuration URI carries no credentials",
                    absent.join(", "),
                    if absent.len() == 1 { "is" } else { "are" },
                ))
            })
        }
        _ => None,
    }
}

/// Segment Store from 0.11: `ServiceStarter.validateConfig` (ServiceStarter.java@v0.11.0,
/// commit 1ac1a7ac) exits with code 1 unless MaxDirectMemorySize > the cache size.
fn direct_memory_check(flags: &[&str], memory_limit: Option<u64>) -> Option<Outcome> {
    // MaxDirectMemorySize 0 (unset) means the maximum heap; the maximum heap is -Xmx, else the
    // JVM's default on Java 11 in a container: MaxRAMPercentage (25%) of the memory limit.
    let xmx = last_value(flags, "-Xmx").and_then(jvm_size).or_else(|| {
        let limit = memory_limit?;
        let percent = last_value(flags, "-XX:MaxRAMPercentage=")
            .and_then(|p| p.parse::<f64>().ok())
            .filter(|p| p.is_finite() && *p > 0.0 && *p <= 100.0)
            .unwrap_or(25.0);
        Some((limit as f64 * percent / 100.0) as u64)
    });
    let direct = match last_value(flags, "-XX:MaxDirectMemorySize=").and_then(jvm_size) {
        Some(0) | None => xmx?,
        Some(d) => d,
    };
    // ServiceConfig@v0.11.0: `cache.size.max`, whose legacy name `cacheMaxSize` wins when
    // both are given; default 4 GiB.
    let property = |name: &str| {
        last_value(flags, &format!("-Dpravegaservice.{name}="))
            .and_then(|v| v.trim().parse::<u64>().ok())
    };
    let cache = property("cacheMaxSize")
        .or_else(|| property("cache.size.max"))
        .unwrap_or(DEFAULT_CACHE_SIZE);
    (direct <= cache).then(|| Outcome::Crash {
        exit_code: 1,
        message: format!(
            "Cache size ({cache} B) configured is more than the JVM MaxDirectMemory({direct} B) value"
        ),
    })
}

pub(super) fn segment_store(
    version: Version,
    start: &Start<'_>,
    bookies: &HashSet<String>,
) -> Outcome {
    let env = start.env;
    // 1. The scripts, before java: waiting forever for a tier 2 variable.
    if let Some(waiting) = tier2_wait(version, env) {
        return waiting;
    }
    let flags = java_opts(env);
    // 2. The JVM: Java 11 from 0.9 (docker/pravega/Dockerfile@v0.9.0 is FROM openjdk:11).
    if version >= v(0, 9)
        && let Some(message) = java11_refusal(&flags)
    {
        return Outcome::Crash {
            exit_code: 1,
            message,
        };
    }
    // 3. ServiceStarter.main validates the memory settings from 0.11.
    if version >= v(0, 11)
        && let Some(crash) = direct_memory_check(&flags, start.memory_limit)
    {
        return crash;
    }
    // 4. Tier 2.
    if let Some(unreachable) = tier2_reachable(version, env, start.mounts) {
        return unreachable;
    }
    // 5. Tier 1: the bookies registered under the Segment Store's cluster name, which is only
    // the JVM property pravegaservice.clusterName (ServiceConfig.java@v0.4.0..v0.13.0, default
    // pravega-cluster; the CLUSTER_NAME variable is the Controller's), the last one given
    // winning; the bookies' ledgers live under /pravega/<cluster>/bookkeeper/ledgers.
    let cluster =
        last_value(&flags, "-Dpravegaservice.clusterName=").unwrap_or(DEFAULT_CLUSTER_NAME);
    if !bookies.contains(cluster) {
        return never_ready(format!(
            "no bookies registered under /pravega/{cluster}/bookkeeper/ledgers/available (the Segment Store's cluster name comes from -Dpravegaservice.clusterName in JAVA_OPTS)"
        ));
    }
    Outcome::Run
}
