//! Rules on the parts of a spec that the schema cannot check: values the images would refuse at
//! start, combinations that cannot work, and settings that must never change once a cluster
//! holds data. The webhook applies them at admission and the operator before it builds
//! anything, so a bad value gets the same message from both.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{PersistentVolumeClaimSpec, ResourceRequirements};

use crate::contract::{self, NEWEST_SUPPORTED, OLDEST_SUPPORTED};
use crate::duration::parse_duration;
use crate::jvm::{
    cache_size_option, effective_resources, jvm_field, jvm_flags, memory_of, refused_flag,
    resources_field,
};
use crate::names::Component;
use crate::quantity::{Bytes, parse_quantity};
use crate::types::{PravegaClusterSpec, Tier2};
use crate::version::{DenyReason, parse_version, shorten};

/// A refusal: why, and a message a person can act on.
pub type Refusal = (DenyReason, String);

fn invalid(message: String) -> Refusal {
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

fn check_resources(spec: &PravegaClusterSpec, c: Component) -> Result<(), Refusal> {
    let r: &ResourceRequirements = effective_resources(spec, c);
    for (part, map) in [("requests", &r.requests), ("limits", &r.limits)] {
        for (name, q) in map.iter().flatten() {
            parse_quantity(&q.0)
                .map_err(|e| invalid(format!("{}.{part}.{name}: {e}", resources_field(c))))?;
        }
    }
    Ok(())
}

/// The memory limit of a component's container, when it has one.
fn memory_limit(spec: &PravegaClusterSpec, c: Component) -> Option<u64> {
    let r = effective_resources(spec, c);
    let q = r.limits.as_ref()?.get("memory")?;
    crate::quantity::parse_memory(&q.0).ok()
}

fn component_name(c: Component) -> &'static str {
    match c {
        Component::Bookkeeper => "bookie",
        Component::Controller => "Controller",
        Component::SegmentStore => "Segment Store",
    }
}

fn java_of(spec: &PravegaClusterSpec, c: Component) -> u8 {
    let row = contract::contract(&spec.version);
    match c {
        Component::Bookkeeper => row.bookie.java,
        _ => row.pravega.java,
    }
}

fn check_jvm(spec: &PravegaClusterSpec, c: Component) -> Result<(), Refusal> {
    let flags = jvm_flags(spec, c);
    let field = jvm_field(c);
    let java = java_of(spec, c);
    if let Some(flag) = refused_flag(&flags, java) {
        return Err(invalid(format!(
            "{field}: {} images of version {} run Java {java}, which refuses {flag} (\"Unrecognized VM option\") and would not start; remove it or add -XX:+IgnoreUnrecognizedVMOptions",
            component_name(c),
            shorten(&spec.version),
        )));
    }
    let (heap, direct) =
        memory_of(&flags).map_err(|(flag, e)| invalid(format!("{field}: {flag}: {e}")))?;
    let Some(limit) = memory_limit(spec, c) else {
        return Ok(());
    };
    let limit_field = format!("{}.limits.memory", resources_field(c));
    if let Some(heap) = heap {
        if heap >= limit {
            return Err(invalid(format!(
                "{field}: the {} heap (-Xmx, {}) must be smaller than the container's memory limit ({limit_field}, {}); lower -Xmx or raise the limit",
                component_name(c),
                Bytes(heap),
                Bytes(limit)
            )));
        }
        if let Some(direct) = direct
            && heap.saturating_add(direct) > limit
        {
            return Err(invalid(format!(
                "{field}: the {} heap (-Xmx, {}) and direct memory (-XX:MaxDirectMemorySize, {}) add up to more than the container's memory limit ({limit_field}, {})",
                component_name(c),
                Bytes(heap),
                Bytes(direct),
                Bytes(limit)
            )));
        }
    }
    Ok(())
}

fn check_cache(spec: &PravegaClusterSpec) -> Result<(), Refusal> {
    let Some((key, value)) = cache_size_option(spec) else {
        return Ok(());
    };
    let cache: u64 = value.trim().parse().map_err(|_| {
        invalid(format!(
            "spec.pravega.options[{key}] is {:?}; it must be a number of bytes, e.g. \"1073741824\" for 1Gi",
            shorten(value)
        ))
    })?;
    let row = contract::contract(&spec.version);
    if !row.pravega.checks_direct_memory_at_start {
        return Ok(());
    }
    let flags = jvm_flags(spec, Component::SegmentStore);
    let Ok((heap, direct)) = memory_of(&flags) else {
        return Ok(());
    };
    // ServiceStarter.validateConfig (0.11+) uses -Xmx when MaxDirectMemorySize is unset.
    let Some(direct) = direct.or(heap) else {
        return Ok(());
    };
    if direct <= cache {
        return Err(invalid(format!(
            "spec.pravega.options[{key}]: Segment Stores from 0.11 refuse to start unless -XX:MaxDirectMemorySize ({}) exceeds the cache size ({}); lower the cache or raise -XX:MaxDirectMemorySize in spec.pravega.segmentStoreJVMOptions",
            Bytes(direct),
            Bytes(cache)
        )));
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

/// The settings of a spec that must never change once a cluster exists: the segment container
/// count (data is partitioned by it), the kind of tier 2 (the data lives there), and the volume
/// claim templates (StatefulSets cannot change them, and the bookies' data is on those volumes).
/// The webhook compares those of the old and new spec; the operator compares the new spec's
/// with those it recorded on the Segment Store StatefulSet when it last applied it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FixedSettings {
    /// The Segment Store's and the Controller's container counts (the legacy key wins, as
    /// Pravega reads them; the images' shipped default is 4).
    pub container_counts: BTreeMap<String, String>,
    /// `filesystem`, `ecs` or `hdfs`.
    pub tier2: String,
    /// Volume claim templates by field.
    pub claim_templates: BTreeMap<String, Option<PersistentVolumeClaimSpec>>,
}

/// Annotation on the Segment Store StatefulSet: the [`FixedSettings`] it was applied with.
pub const FIXED_SETTINGS_KEY: &str = "pravega.pravega.io/fixed-settings";

/// The container-count settings: how they are named in messages, and the keys the Segment
/// Store or the Controller reads (the legacy key first: it wins when both are set).
const CONTAINER_COUNTS: [(&str, [&str; 2]); 2] = [
    (
        "pravegaservice.containerCount / pravegaservice.container.count",
        [
            "pravegaservice.containerCount",
            "pravegaservice.container.count",
        ],
    ),
    (
        "controller.containerCount / controller.container.count",
        ["controller.containerCount", "controller.container.count"],
    ),
];

/// The container count a spec gives, or the images' shipped default of 4.
fn container_count<'a>(spec: &'a PravegaClusterSpec, keys: [&str; 2]) -> &'a str {
    keys.iter()
        .find_map(|k| spec.pravega.options.get(*k))
        .map(|v| v.trim())
        .unwrap_or("4")
}

/// The volume claim templates of a spec, by field.
fn claim_templates(
    spec: &PravegaClusterSpec,
) -> [(&'static str, Option<&PersistentVolumeClaimSpec>); 4] {
    let s = &spec.bookkeeper.storage;
    [
        (
            "spec.bookkeeper.storage.ledgerVolumeClaimTemplate",
            s.ledger_volume_claim_template.as_deref(),
        ),
        (
            "spec.bookkeeper.storage.journalVolumeClaimTemplate",
            s.journal_volume_claim_template.as_deref(),
        ),
        (
            "spec.bookkeeper.storage.indexVolumeClaimTemplate",
            s.index_volume_claim_template.as_deref(),
        ),
        (
            "spec.pravega.cacheVolumeClaimTemplate",
            spec.pravega.cache_volume_claim_template.as_deref(),
        ),
    ]
}

/// The [`FixedSettings`] of a spec.
pub fn fixed_settings(spec: &PravegaClusterSpec) -> FixedSettings {
    FixedSettings {
        container_counts: CONTAINER_COUNTS
            .iter()
            .map(|(label, keys)| ((*label).to_owned(), container_count(spec, *keys).to_owned()))
            .collect(),
        tier2: spec.pravega.tier2().kind().field().to_owned(),
        claim_templates: claim_templates(spec)
            .into_iter()
            .map(|(field, t)| (field.to_owned(), t.cloned()))
            .collect(),
    }
}

fn count_changed(keys: &str, was: &str, is: &str) -> Refusal {
    invalid(format!(
        "spec.pravega.options: the segment container count ({keys}) cannot change once the cluster exists (it is {}; the request makes it {}); Pravega's data is partitioned by it",
        shorten(was),
        shorten(is)
    ))
}

fn tier2_changed(was: &str, is: &str) -> Refusal {
    invalid(format!(
        "spec.pravega.tier2: the kind of tier 2 storage cannot change once the cluster exists (it is {was}; the request makes it {is}); the cluster's data lives there"
    ))
}

fn claim_changed(field: &str) -> Refusal {
    invalid(format!(
        "{field} cannot change once the cluster exists: StatefulSets cannot change their volume claim templates, and existing volumes keep their size and class; create a new cluster to use other volumes"
    ))
}

/// Refuses a change of [`FixedSettings`], naming the setting (the operator's check, against
/// what it recorded when it last applied the workloads).
pub fn check_fixed(before: &FixedSettings, after: &FixedSettings) -> Result<(), Refusal> {
    for (keys, was) in &before.container_counts {
        let is = after.container_counts.get(keys);
        if is != Some(was) {
            return Err(count_changed(
                keys,
                was,
                is.map(String::as_str).unwrap_or("unset"),
            ));
        }
    }
    if before.tier2 != after.tier2 {
        return Err(tier2_changed(&before.tier2, &after.tier2));
    }
    for (field, template) in &before.claim_templates {
        if after.claim_templates.get(field) != Some(template) {
            return Err(claim_changed(field));
        }
    }
    Ok(())
}

/// The same rule between two specs (admission UPDATE), reading them in place.
pub fn check_change(old: &PravegaClusterSpec, new: &PravegaClusterSpec) -> Result<(), Refusal> {
    for (label, keys) in CONTAINER_COUNTS {
        let (was, is) = (container_count(old, keys), container_count(new, keys));
        if was != is {
            return Err(count_changed(label, was, is));
        }
    }
    let (was, is) = (old.pravega.tier2().kind(), new.pravega.tier2().kind());
    if was != is {
        return Err(tier2_changed(was.field(), is.field()));
    }
    for ((field, before), (_, after)) in claim_templates(old).into_iter().zip(claim_templates(new))
    {
        if before != after {
            return Err(claim_changed(field));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(v: serde_json::Value) -> PravegaClusterSpec {
        serde_json::from_value(v).unwrap()
    }

    fn refused(v: serde_json::Value) -> String {
        match check_spec(&spec(v)) {
            Err((_, m)) => m,
            Ok(w) => panic!("allowed with warnings {w:?}"),
        }
    }

    #[test]
    fn the_defaults_pass_at_every_supported_version() {
        for v in [
            "0.4.0", "0.5.0", "0.6.0", "0.7.0", "0.8.0", "0.9.0", "0.10.0", "0.11.0", "0.13.0",
        ] {
            assert_eq!(check_spec(&spec(json!({"version": v}))), Ok(vec![]), "{v}");
        }
    }

    #[test]
    fn heaps_must_fit_the_memory_limit() {
        let m =
            refused(json!({"version": "0.7.0", "pravega": {"segmentStoreJVMOptions": ["-Xmx4g"]}}));
        assert!(m.contains("spec.pravega.segmentStoreJVMOptions: the Segment Store heap (-Xmx, 4Gi) must be smaller than the container's memory limit (spec.pravega.segmentStoreResources.limits.memory, 2Gi)"), "{m}");
        let m = refused(
            json!({"version": "0.7.0", "bookkeeper": {"bookkeeperJVMOptions": {"memoryOpts": ["-Xmx1g", "-XX:MaxDirectMemorySize=1536m"]}}}),
        );
        assert!(m.contains("add up to more than"), "{m}");
        let m =
            refused(json!({"version": "0.7.0", "pravega": {"controllerjvmOptions": ["-Xmx1gb"]}}));
        assert!(
            m.contains("spec.pravega.controllerjvmOptions: -Xmx1gb"),
            "{m}"
        );
    }

    #[test]
    fn direct_memory_must_exceed_the_cache_from_0_11() {
        let s = json!({"version": "0.11.0", "pravega": {
            "segmentStoreResources": {"limits": {"memory": "8Gi"}},
            "segmentStoreJVMOptions": ["-Xmx2g", "-XX:MaxDirectMemorySize=4g"],
            "options": {"pravegaservice.cache.size.max": "4294967296"}}});
        let m = refused(s.clone());
        assert!(m.contains("exceeds the cache size (4Gi)"), "{m}");
        let mut older = s;
        older["version"] = json!("0.10.0");
        let w = check_spec(&spec(older)).unwrap();
        assert!(
            w[0].contains("does not fit the Segment Store's direct memory"),
            "{w:?}"
        );
        let m = refused(
            json!({"version": "0.11.0", "pravega": {"options": {"pravegaservice.cacheMaxSize": "1g"}}}),
        );
        assert!(m.contains("must be a number of bytes"), "{m}");
    }

    #[test]
    fn java_11_images_refuse_removed_flags() {
        let s = json!({"version": "0.9.0", "pravega": {"controllerjvmOptions": ["-XX:+UseCGroupMemoryLimitForHeap"]}});
        let m = refused(s.clone());
        assert!(
            m.contains("run Java 11, which refuses -XX:+UseCGroupMemoryLimitForHeap"),
            "{m}"
        );
        let mut old = s;
        old["version"] = json!("0.8.0");
        assert!(check_spec(&spec(old)).is_ok());
    }

    #[test]
    fn tier2_needs_what_its_kind_needs() {
        let m = refused(
            json!({"version": "0.5.0", "pravega": {"tier2": {"ecs": {"uri": "http://ecs:9020", "bucket": "b"}}}}),
        );
        assert!(m.contains("ecs.credentials is required"), "{m}");
        let m = refused(
            json!({"version": "0.5.0", "pravega": {"tier2": {"filesystem": {"persistentVolumeClaim": {"claimName": "Bad_Name"}}}}}),
        );
        assert!(
            m.contains("claimName \"Bad_Name\" is not a valid object name"),
            "{m}"
        );
        let m = refused(
            json!({"version": "0.5.0", "pravega": {"tier2": {"filesystem": {}, "hdfs": {"uri": "hdfs://x"}}}}),
        );
        assert!(m.contains("sets filesystem and hdfs"), "{m}");
        let m = refused(
            json!({"version": "0.5.0", "pravega": {"segmentStoreResources": {"limits": {"cpu": "banana"}}}}),
        );
        assert!(m.contains("spec.pravega.segmentStoreResources.limits.cpu: \"banana\" is not a Kubernetes quantity"), "{m}");
    }

    #[test]
    fn options_that_a_start_script_would_split_are_refused() {
        let m = refused(json!({"version": "0.7.0", "pravega": {"options": {"a.b": "x y"}}}));
        assert!(
            m.starts_with("spec.pravega.options[a.b]: keys and values go to the JVM"),
            "{m}"
        );
        let m = refused(
            json!({"version": "0.7.0", "bookkeeper": {"options": {"BOOKIE_EXTRA_OPTS": "-Xms1g -Xmx1g"}}}),
        );
        assert!(m.contains("bookkeeperJVMOptions"), "{m}");
        assert!(check_spec(&spec(json!({"version": "0.7.0", "bookkeeper": {"options": {"BOOKIE_EXTRA_OPTS": "-Xmx1g"}}}))).is_ok());
    }

    #[test]
    fn values_that_pass_the_schema_but_break_later_are_refused() {
        let long = "0.5.0-".to_owned() + &"a".repeat(60);
        let (reason, m) = check_spec(&spec(json!({"version": long}))).unwrap_err();
        assert_eq!(reason, DenyReason::InvalidVersion);
        assert!(m.contains("66 characters long"), "{m}");
        let m = refused(
            json!({"version": "0.5.0", "bookkeeper": {"image": {"repository": "Pravega/BookKeeper"}}}),
        );
        assert!(m.contains("is not a valid image repository"), "{m}");
        for ok in [
            "pravega/pravega",
            "registry.example.com:5000/pravega/pravega",
            "localhost/a__b",
            "a-b.c/d--e",
        ] {
            assert!(is_repository(ok), "{ok}");
        }
        for bad in [
            "Pravega/BookKeeper",
            "a//b",
            "-a",
            "a-",
            "host:notaport/x",
            "a b",
        ] {
            assert!(!is_repository(bad), "{bad}");
        }
        let m = refused(json!({"version": "0.5.0", "zookeeperUri": "a\nb"}));
        assert!(m.contains("is not a ZooKeeper connection string"), "{m}");
        for ok in [
            "zk:2181",
            "zk-0.zk:2181,zk-1.zk:2181/pravega",
            "10.0.0.1:2181",
            "[::1]:2181",
        ] {
            assert_eq!(check_zookeeper_uri(ok), Ok(()), "{ok}");
        }
        for bad in ["zk", "zk:0", "zk:99999", ":2181", "zk:2181/", "a b:2181"] {
            assert!(check_zookeeper_uri(bad).is_err(), "{bad}");
        }
        let m = refused(json!({"version": "0.5.0", "upgrade": {"timeout": "0s"}}));
        assert!(m.contains("too short"), "{m}");
        let m = refused(
            json!({"version": "0.5.0", "upgrade": {"timeout": "1m", "podStabilization": "60s"}}),
        );
        assert!(
            m.contains(
                "spec.upgrade.podStabilization 60s must be shorter than spec.upgrade.timeout 1m"
            ),
            "{m}"
        );
        let m = refused(json!({"version": "0.5.0", "upgrade": {"podStabilization": "soon"}}));
        assert!(m.contains("spec.upgrade.podStabilization:"), "{m}");
        let m = refused(json!({"version": "0.5.0", "bookkeeper": {"replicas": 1000000}}));
        assert!(
            m.contains("spec.bookkeeper.replicas is 1000000; this operator manages at most 100"),
            "{m}"
        );
        assert_eq!(MAX_CLUSTER_NAME, 31);
        assert!(check_cluster_name(&"a".repeat(31)).is_ok());
        let (_, m) = check_cluster_name(&"a".repeat(32)).unwrap_err();
        assert!(
            m.contains("is 32 characters; a PravegaCluster name can have at most 31"),
            "{m}"
        );
    }

    #[test]
    fn fields_not_honoured_yet_warn() {
        let w = check_spec(&spec(json!({"version": "0.4.0",
            "externalAccess": {"enabled": true, "type": "LoadBalancer"},
            "tls": {"static": {"controllerSecret": "c"}},
            "bookkeeper": {"image": {"repository": "pravega/bookkeeper", "tag": "0.3.0"}, "options": {"a": "b"}}}))).unwrap();
        assert_eq!(w.len(), 4, "{w:?}");
        assert!(w[0].starts_with("spec.externalAccess is accepted but not honoured yet"));
        assert!(w[2].contains("spec.bookkeeper.image.tag 0.3.0 is ignored"));
        assert!(w[3].contains("ignored by pravega/bookkeeper 0.4 images"));
        let w = check_spec(&spec(json!({"version": "0.14.0"}))).unwrap();
        assert!(
            w[0].contains("outside the versions this operator knows (0.4 to 0.13)"),
            "{w:?}"
        );
    }

    #[test]
    fn settings_that_hold_data_never_change() {
        let old = spec(json!({"version": "0.5.0"}));
        let same_count = spec(
            json!({"version": "0.5.0", "pravega": {"options": {"pravegaservice.containerCount": "4"}}}),
        );
        assert_eq!(check_change(&old, &same_count), Ok(()));
        let more = spec(
            json!({"version": "0.5.0", "pravega": {"options": {"controller.container.count": "8"}}}),
        );
        let (_, m) = check_change(&old, &more).unwrap_err();
        assert!(m.contains("controller.containerCount / controller.container.count) cannot change once the cluster exists (it is 4; the request makes it 8)"), "{m}");
        let hdfs = spec(
            json!({"version": "0.5.0", "pravega": {"tier2": {"hdfs": {"uri": "hdfs://nn:8020"}}}}),
        );
        let (_, m) = check_change(&old, &hdfs).unwrap_err();
        assert!(
            m.contains("(it is filesystem; the request makes it hdfs)"),
            "{m}"
        );
        let explicit_default =
            spec(json!({"version": "0.5.0", "pravega": {"tier2": {"filesystem": {}}}}));
        assert_eq!(check_change(&old, &explicit_default), Ok(()));
        let bigger = spec(
            json!({"version": "0.5.0", "bookkeeper": {"storage": {"ledgerVolumeClaimTemplate": {"resources": {"requests": {"storage": "50Gi"}}}}}}),
        );
        let (_, m) = check_change(&old, &bigger).unwrap_err();
        assert!(
            m.starts_with("spec.bookkeeper.storage.ledgerVolumeClaimTemplate cannot change"),
            "{m}"
        );
        // The webhook's check (two specs) and the operator's (recorded settings) agree.
        for new in [&same_count, &more, &hdfs, &explicit_default, &bigger] {
            assert_eq!(
                check_change(&old, new),
                check_fixed(&fixed_settings(&old), &fixed_settings(new))
            );
        }
    }
}
