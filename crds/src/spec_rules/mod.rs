//! Rules on the parts of a spec that the schema cannot check: values the images would refuse at
//! start, combinations that cannot work, and settings that must never change once a cluster
//! holds data. The webhook applies them at admission and the operator before it builds
//! anything, so a bad value gets the same message from both.

use crate::contract::{self, NEWEST_SUPPORTED, OLDEST_SUPPORTED};
use crate::duration::parse_duration;
use crate::jvm::{cache_size_option, jvm_flags, memory_of};
use crate::names::Component;
use crate::quantity::Bytes;
use crate::types::{PravegaClusterSpec, Tier2};
use crate::version::{DenyReason, parse_version, shorten};

mod fixed;
mod sizing;

pub use fixed::{FIXED_SETTINGS_KEY, FixedSettings, check_change, check_fixed, fixed_settings};
use sizing::{check_cache, check_jvm, check_resources};

/// A refusal: why, and a message a person can act on.
pub type Refusal = (DenyReason, String);

pub(super) fn invalid(message: String) -> Refusal {
    (DenyReason::InvalidSpec, message)
}

/// Checks a whole spec. `Ok` carries the warnings to show (fields accepted but not honoured,
/// settings an image ignores); `Err` the first rule broken.
pub fn check_spec(spec: &PravegaClusterSpec) -> Result<Vec<String>, Refusal> {
    parse_version(&spec.version).map_err(|e| (DenyReason::InvalidVersion, e.to_string()))?;
    check_basics(spec)?;
    for c in Component::UPGRADE_ORDER {
        check_resources(spec, c)?;
        check_jvm(spec, c)?;
    }
    check_options(spec)?;
    check_cache(spec)?;
    check_tier2(spec)?;
    check_service_accounts(spec)?;
    Ok(warnings(spec))
}

/// Most bookies a cluster may ask for (also the schema's maximum).
pub const MAX_BOOKIES: i32 = 100;
/// Most Controllers a cluster may ask for.
pub const MAX_CONTROLLERS: i32 = 20;
/// Most Segment Stores a cluster may ask for.
pub const MAX_SEGMENT_STORES: i32 = 100;
/// Shortest `spec.upgrade.timeout`: shorter ones fail upgrades before a pod can start.
pub const MIN_UPGRADE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// Longest cluster name: `<name>-pravega-segmentstore` plus `-` and a revision hash of up to 10
/// characters is the `controller-revision-hash` label of its pods, at most 63 characters.
pub const MAX_CLUSTER_NAME: usize = 63 - "-pravega-segmentstore".len() - 11;

/// The rules for a cluster's name (`metadata.name`, set once at CREATE).
pub fn check_cluster_name(name: &str) -> Result<(), Refusal> {
    if name.len() > MAX_CLUSTER_NAME {
        return Err(invalid(format!(
            "metadata.name {:?} is {} characters; a PravegaCluster name can have at most {MAX_CLUSTER_NAME}, because its Segment Store StatefulSet <name>-pravega-segmentstore plus a revision hash labels every pod (at most 63 characters)",
            shorten(name),
            name.len()
        )));
    }
    Ok(())
}

/// Whether `value` is a valid label value (the version is one, on every pod).
fn is_label_value(value: &str) -> bool {
    value.len() <= 63
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && value
            .bytes()
            .next()
            .is_none_or(|b| b.is_ascii_alphanumeric())
        && value
            .bytes()
            .last()
            .is_none_or(|b| b.is_ascii_alphanumeric())
}

/// Whether `repository` is an image repository (`[host[:port]/]path`, path components in lower
/// case), as the container runtime parses image references.
pub fn is_repository(repository: &str) -> bool {
    let mut parts: Vec<&str> = repository.split('/').collect();
    if parts.len() > 1 {
        let first = parts[0];
        if first.contains(['.', ':']) || first == "localhost" {
            let (host, port) = first.split_once(':').unwrap_or((first, ""));
            let host_ok = !host.is_empty()
                && host.split('.').all(|l| {
                    !l.is_empty()
                        && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                        && !l.starts_with('-')
                        && !l.ends_with('-')
                });
            let port_ok = port.is_empty() || port.parse::<u16>().is_ok();
            if !host_ok || !port_ok || (first.contains(':') && port.is_empty()) {
                return false;
            }
            parts.remove(0);
        }
    }
    !parts.is_empty()
        && parts.iter().all(|c| {
            // [a-z0-9]+ ((\.|_|__|-+)[a-z0-9]+)*
            let bytes = c.as_bytes();
            if bytes.is_empty()
                || !bytes[0].is_ascii_lowercase() && !bytes[0].is_ascii_digit()
                || !bytes[bytes.len() - 1].is_ascii_lowercase()
                    && !bytes[bytes.len() - 1].is_ascii_digit()
            {
                return false;
            }
            let mut i = 0;
            while i < bytes.len() {
                let b = bytes[i];
                if b.is_ascii_lowercase() || b.is_ascii_digit() {
                    i += 1;
                    continue;
                }
                let sep_len = match b {
                    b'.' => 1,
                    b'_' if bytes.get(i + 1) == Some(&b'_') => 2,
                    b'_' => 1,
                    b'-' => bytes[i..].iter().take_while(|x| **x == b'-').count(),
                    _ => return false,
                };
                i += sep_len;
                if bytes
                    .get(i)
                    .is_none_or(|n| !n.is_ascii_lowercase() && !n.is_ascii_digit())
                {
                    return false;
                }
            }
            true
        })
        && repository.len() <= 255
}

/// Checks a ZooKeeper connection string: `host:port[,host:port...][/chroot]`.
fn check_zookeeper_uri(uri: &str) -> Result<(), String> {
    let (hosts, chroot) = match uri.find('/') {
        Some(i) => (&uri[..i], Some(&uri[i..])),
        None => (uri, None),
    };
    if let Some(path) = chroot
        && (path.len() < 2 || path.ends_with('/') || path.contains(char::is_whitespace))
    {
        return Err(format!(
            "the chroot path {:?} is not a ZooKeeper path",
            shorten(path)
        ));
    }
    for server in hosts.split(',') {
        let Some((host, port)) = server.rsplit_once(':') else {
            return Err(format!("{:?} has no port", shorten(server)));
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty()
            || !host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b':' | b'_'))
        {
            return Err(format!("{:?} is not a host name or address", shorten(host)));
        }
        if port.parse::<u16>().map_or(true, |p| p == 0) {
            return Err(format!("{:?} is not a port", shorten(port)));
        }
    }
    Ok(())
}

fn check_basics(spec: &PravegaClusterSpec) -> Result<(), Refusal> {
    if !is_label_value(&spec.version) {
        return Err((
            DenyReason::InvalidVersion,
            format!(
                "spec.version {:?} is {} characters long or has characters a label value cannot hold; every pod carries the version as a label (at most 63 characters: letters, digits, '-', '_', '.', starting and ending with a letter or digit)",
                shorten(&spec.version),
                spec.version.len()
            ),
        ));
    }
    let replicas = [
        (
            "spec.bookkeeper.replicas",
            spec.bookkeeper.replicas,
            MAX_BOOKIES,
        ),
        (
            "spec.pravega.controllerReplicas",
            spec.pravega.controller_replicas,
            MAX_CONTROLLERS,
        ),
        (
            "spec.pravega.segmentStoreReplicas",
            spec.pravega.segment_store_replicas,
            MAX_SEGMENT_STORES,
        ),
    ];
    for (field, value, max) in replicas {
        if value < 1 {
            return Err(invalid(format!(
                "{field} is {value}; a Pravega cluster needs at least 1"
            )));
        }
        if value > max {
            return Err(invalid(format!(
                "{field} is {value}; this operator manages at most {max}"
            )));
        }
    }
    if spec.zookeeper_uri.trim().is_empty() {
        return Err(invalid(
            "spec.zookeeperUri is empty; set it to the ZooKeeper client address, e.g. \"zookeeper-client:2181\"".to_owned(),
        ));
    }
    check_zookeeper_uri(&spec.zookeeper_uri).map_err(|why| {
        invalid(format!(
            "spec.zookeeperUri {:?} is not a ZooKeeper connection string host:port[,host:port...][/path]: {why}",
            shorten(&spec.zookeeper_uri)
        ))
    })?;
    let timeout = parse_duration(&spec.upgrade.timeout)
        .map_err(|e| invalid(format!("spec.upgrade.timeout: {e}")))?;
    if timeout < MIN_UPGRADE_TIMEOUT {
        return Err(invalid(format!(
            "spec.upgrade.timeout {} is too short: a replaced pod needs time to start; use at least {}s",
            shorten(&spec.upgrade.timeout),
            MIN_UPGRADE_TIMEOUT.as_secs()
        )));
    }
    if let Some(soak) = &spec.upgrade.pod_stabilization {
        let d = parse_duration(soak)
            .map_err(|e| invalid(format!("spec.upgrade.podStabilization: {e}")))?;
        // The soak time is waiting without progress: as long as the timeout, it fails every
        // upgrade at its first pod.
        if d >= timeout {
            return Err(invalid(format!(
                "spec.upgrade.podStabilization {} must be shorter than spec.upgrade.timeout {}: the upgrade fails when it makes no progress for the timeout",
                shorten(soak),
                shorten(&spec.upgrade.timeout)
            )));
        }
    }
    for (field, repository) in [
        (
            "spec.bookkeeper.image.repository",
            &spec.bookkeeper.image.repository,
        ),
        (
            "spec.pravega.image.repository",
            &spec.pravega.image.repository,
        ),
    ] {
        let last = repository.rsplit('/').next().unwrap_or_default();
        if repository.is_empty() || last.contains([':', '@']) {
            return Err(invalid(format!(
                "{field} \"{}\" must be a repository without a tag or digest (the tag is always spec.version), e.g. \"pravega/pravega\"",
                shorten(repository)
            )));
        }
        if !is_repository(repository) {
            return Err(invalid(format!(
                "{field} \"{}\" is not a valid image repository: path components are lower case letters and digits separated by '.', '_', '__' or '-', after an optional registry host[:port], e.g. \"pravega/pravega\" or \"registry.example.com:5000/pravega/pravega\"",
                shorten(repository)
            )));
        }
    }
    Ok(())
}

fn check_options(spec: &PravegaClusterSpec) -> Result<(), Refusal> {
    // JAVA_OPTS is split on white space by the images' start scripts (the `bin/` scripts of the
    // Gradle application plugin), so `-Dkey=a b` would pass `b` to Java as a class name.
    for (k, v) in &spec.pravega.options {
        if k.is_empty() || k.contains(char::is_whitespace) || v.contains(char::is_whitespace) {
            return Err(invalid(format!(
                "spec.pravega.options[{}]: keys and values go to the JVM as -D<key>=<value> in JAVA_OPTS, which the image splits on white space; remove the spaces",
                shorten(k)
            )));
        }
    }
    // apply-config-from-env.py writes BK_<key> unquoted into conf/bkenv.sh for the BOOKIE_*
    // variables; with white space, bash runs the second word as a command and (4.9+, `set -e`)
    // the bookie does not start.
    for (k, v) in &spec.bookkeeper.options {
        if k.starts_with("BOOKIE_") && v.contains(char::is_whitespace) {
            return Err(invalid(format!(
                "spec.bookkeeper.options[{}]: the bookkeeper image writes this into conf/bkenv.sh unquoted, and a value with spaces stops the bookie from starting; put JVM flags in spec.bookkeeper.bookkeeperJVMOptions",
                shorten(k)
            )));
        }
    }
    Ok(())
}

/// Whether `name` is a DNS-1123 subdomain (the names of PVCs, Secrets, ServiceAccounts).
pub fn is_dns_subdomain(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

fn check_name(field: &str, name: &str) -> Result<(), Refusal> {
    if is_dns_subdomain(name) {
        Ok(())
    } else {
        Err(invalid(format!(
            "{field} {:?} is not a valid object name: lower case letters, digits, '-' and '.', starting and ending with a letter or digit, at most 253 characters",
            shorten(name)
        )))
    }
}

fn check_tier2(spec: &PravegaClusterSpec) -> Result<(), Refusal> {
    if let Some(t) = &spec.pravega.tier2 {
        let kinds = t.kinds();
        if kinds.len() > 1 {
            let names: Vec<&str> = kinds.iter().map(|k| k.field()).collect();
            return Err(invalid(format!(
                "spec.pravega.tier2 sets {}; set exactly one kind of tier 2 storage",
                names.join(" and ")
            )));
        }
    }
    match spec.pravega.tier2() {
        Tier2::Filesystem(claim) => check_name(
            "spec.pravega.tier2.filesystem.persistentVolumeClaim.claimName",
            &claim.claim_name,
        ),
        Tier2::Ecs(ecs) => {
            if ecs.credentials.trim().is_empty() {
                return Err(invalid(
                    "spec.pravega.tier2.ecs.credentials is required: the name of a Secret with the keys ACCESS_KEY_ID and SECRET_KEY".to_owned(),
                ));
            }
            check_name("spec.pravega.tier2.ecs.credentials", &ecs.credentials)?;
            if ecs.bucket.trim().is_empty() {
                return Err(invalid(
                    "spec.pravega.tier2.ecs.bucket is required".to_owned(),
                ));
            }
            if ecs.endpoint().is_none_or(|u| u.trim().is_empty()) {
                return Err(invalid(
                    "spec.pravega.tier2.ecs needs the ECS endpoint: set uri (or configUri)"
                        .to_owned(),
                ));
            }
            Ok(())
        }
        Tier2::Hdfs(hdfs) => {
            if hdfs.uri.trim().is_empty() {
                return Err(invalid(
                    "spec.pravega.tier2.hdfs.uri is required, e.g. \"hdfs://namenode:8020\""
                        .to_owned(),
                ));
            }
            if hdfs.replication_factor < 1 {
                return Err(invalid(format!(
                    "spec.pravega.tier2.hdfs.replicationFactor is {}; it must be at least 1",
                    hdfs.replication_factor
                )));
            }
            Ok(())
        }
    }
}

fn check_service_accounts(spec: &PravegaClusterSpec) -> Result<(), Refusal> {
    for (field, name) in [
        (
            "spec.bookkeeper.serviceAccountName",
            &spec.bookkeeper.service_account_name,
        ),
        (
            "spec.pravega.controllerServiceAccountName",
            &spec.pravega.controller_service_account_name,
        ),
        (
            "spec.pravega.segmentStoreServiceAccountName",
            &spec.pravega.segment_store_service_account_name,
        ),
    ] {
        if let Some(name) = name {
            check_name(field, name)?;
        }
    }
    Ok(())
}

/// What admission shows alongside an allowed spec.
fn warnings(spec: &PravegaClusterSpec) -> Vec<String> {
    let mut out = Vec::new();
    if !contract::is_supported(&spec.version) {
        let row = contract::contract(&spec.version);
        out.push(format!(
            "spec.version {} is outside the versions this operator knows ({}.{} to {}.{}); its pods are built as for {}",
            shorten(&spec.version),
            OLDEST_SUPPORTED.0,
            OLDEST_SUPPORTED.1,
            NEWEST_SUPPORTED.0,
            NEWEST_SUPPORTED.1,
            row.range
        ));
    }
    let not_yet = |field: &str| {
        format!(
            "{field} is accepted but not honoured yet by this operator; the cluster is built without it"
        )
    };
    if spec.external_access.as_ref().is_some_and(|e| e.enabled) {
        out.push(not_yet("spec.externalAccess"));
    }
    if spec.tls.as_ref().is_some_and(|t| t.is_set()) {
        out.push(not_yet("spec.tls"));
    }
    if spec.authentication.as_ref().is_some_and(|a| a.enabled) {
        out.push(not_yet("spec.authentication"));
    }
    let p = &spec.pravega;
    if p.controller_ext_service_type.is_some()
        || p.segment_store_ext_service_type.is_some()
        || !p.controller_svc_annotations.is_empty()
        || !p.segment_store_svc_annotations.is_empty()
    {
        out.push(not_yet(
            "spec.pravega.{controller,segmentStore}{ExtServiceType,SvcAnnotations}",
        ));
    }
    for (field, tag) in [
        ("spec.bookkeeper.image.tag", &spec.bookkeeper.image.tag),
        ("spec.pravega.image.tag", &p.image.tag),
    ] {
        if let Some(tag) = tag
            && !tag.is_empty()
            && *tag != spec.version
        {
            out.push(format!(
                "{field} {} is ignored: the image tag is always spec.version ({})",
                shorten(tag),
                shorten(&spec.version)
            ));
        }
    }
    let row = contract::contract(&spec.version);
    if !row.bookie.config_from_env && !spec.bookkeeper.options.is_empty() {
        out.push(format!(
            "spec.bookkeeper.options are ignored by pravega/bookkeeper {} images, which read no BK_* variables (apply-config-from-env arrived in 0.5)",
            row.range
        ));
    }
    if row.pravega.cache_in_direct_memory
        && !row.pravega.checks_direct_memory_at_start
        && let Some((key, value)) = cache_size_option(spec)
        && let Ok(cache) = value.trim().parse::<u64>()
        && let Ok((heap, direct)) = memory_of(&jvm_flags(spec, Component::SegmentStore))
        && let Some(direct) = direct.or(heap)
        && direct <= cache
    {
        out.push(format!(
            "spec.pravega.options[{key}] ({}) does not fit the Segment Store's direct memory ({}); the cache will run out of memory when it fills, and Pravega 0.11+ refuses to start with it",
            Bytes(cache),
            Bytes(direct)
        ));
    }
    out
}

#[cfg(test)]
mod tests;
