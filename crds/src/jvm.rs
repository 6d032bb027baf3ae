//! JVM sizing of the three components: the options the operator gives each JVM (defaults
//! derived from the container's memory, overridden flag by flag by the spec's JVM options), and
//! what they add up to, so that the admission rules and the workload builders agree.
//!
//! Defaults, from the container's memory limit L (its memory request when there is no limit):
//! - Controller: `-Xmx` L/2.
//! - Segment Store: `-Xmx` L/4, `-XX:MaxDirectMemorySize` L/2, and, on images whose cache lives
//!   in direct memory (0.7+), a cache size of half the direct memory unless `options` sets one.
//! - Bookie: `-Xms` and `-Xmx` L/4, `-XX:MaxDirectMemorySize` L/2.
//! - Every component: `-XX:+ExitOnOutOfMemoryError`, so that a JVM out of memory is restarted.
//!
//! Upstream's operator 0.4.x gave `-Xms` only (no `-Xmx`) and flags that Java 11 images refuse
//! (`-XX:+UseCGroupMemoryLimitForHeap`, `pkg/controller/pravega/*.go@v0.4.5`); these defaults
//! work on every image from 0.4 to 0.13.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ResourceRequirements;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use crate::contract::{ImageContract, contract};
use crate::names::Component;
use crate::quantity::{MIB, SizeError, parse_jvm_size, parse_memory};
use crate::types::PravegaClusterSpec;

/// Flag added to every JVM by default.
pub const EXIT_ON_OOM: &str = "-XX:+ExitOnOutOfMemoryError";

/// Upstream's default resources (`pkg/apis/pravega/v1alpha1/{bookkeeper,pravega}.go@v0.4.5`):
/// `(cpu request, memory request, cpu limit, memory limit)`.
pub fn default_resources(component: Component) -> ResourceRequirements {
    let (cpu_req, mem_req, cpu_lim, mem_lim) = match component {
        Component::Bookkeeper => ("500m", "1Gi", "1", "2Gi"),
        Component::Controller => ("250m", "512Mi", "500m", "1Gi"),
        Component::SegmentStore => ("500m", "1Gi", "1", "2Gi"),
    };
    let pair = |cpu: &str, mem: &str| {
        BTreeMap::from([
            ("cpu".to_owned(), Quantity(cpu.to_owned())),
            ("memory".to_owned(), Quantity(mem.to_owned())),
        ])
    };
    ResourceRequirements {
        requests: Some(pair(cpu_req, mem_req)),
        limits: Some(pair(cpu_lim, mem_lim)),
        ..ResourceRequirements::default()
    }
}

/// The field of a component's resources in the spec.
pub fn resources_field(component: Component) -> &'static str {
    match component {
        Component::Bookkeeper => "spec.bookkeeper.resources",
        Component::Controller => "spec.pravega.controllerResources",
        Component::SegmentStore => "spec.pravega.segmentStoreResources",
    }
}

/// The field of a component's JVM options in the spec.
pub fn jvm_field(component: Component) -> &'static str {
    match component {
        Component::Bookkeeper => "spec.bookkeeper.bookkeeperJVMOptions",
        Component::Controller => "spec.pravega.controllerjvmOptions",
        Component::SegmentStore => "spec.pravega.segmentStoreJVMOptions",
    }
}

/// [`default_resources`] of each component, in upgrade order, built once.
static DEFAULT_RESOURCES: std::sync::LazyLock<[ResourceRequirements; 3]> =
    std::sync::LazyLock::new(|| Component::UPGRADE_ORDER.map(default_resources));

/// The resources of a component's container: the spec's, or upstream's defaults.
pub fn effective_resources(
    spec: &PravegaClusterSpec,
    component: Component,
) -> &ResourceRequirements {
    let given = match component {
        Component::Bookkeeper => spec.bookkeeper.resources.as_deref(),
        Component::Controller => spec.pravega.controller_resources.as_deref(),
        Component::SegmentStore => spec.pravega.segment_store_resources.as_deref(),
    };
    given.unwrap_or_else(|| {
        let index = Component::UPGRADE_ORDER
            .iter()
            .position(|c| *c == component)
            .unwrap_or(0);
        &DEFAULT_RESOURCES[index]
    })
}

/// The memory the JVM may use: the memory limit, else the memory request. `Err` names the
/// quantity that does not parse.
pub fn memory_budget(resources: &ResourceRequirements) -> Result<Option<u64>, (String, SizeError)> {
    for (part, map) in [
        ("limits", resources.limits.as_ref()),
        ("requests", resources.requests.as_ref()),
    ] {
        if let Some(q) = map.and_then(|m| m.get("memory")) {
            return parse_memory(&q.0)
                .map(Some)
                .map_err(|e| (format!("{part}.memory"), e));
        }
    }
    Ok(None)
}

/// What identifies a JVM flag for overriding: `-Xmx`, `-Xms`, `-Xss`,
/// `-XX:MaxDirectMemorySize`, `-XX:UseG1GC` (for `-XX:+UseG1GC` and `-XX:-UseG1GC`),
/// `-Dname`; any other flag is its own key. Borrowed from the flag (no allocation); it displays
/// as written here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlagKey<'a> {
    /// `-Xmx`, `-XX:`, `-D`, or `""` for a flag that is its own key.
    pub kind: &'static str,
    /// The option's name (`MaxDirectMemorySize`, `log.level`), or the whole flag.
    pub name: &'a str,
}

impl std::fmt::Display for FlagKey<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}{}", self.kind, self.name)
    }
}

/// The [`FlagKey`] of `flag`.
pub fn flag_key(flag: &str) -> FlagKey<'_> {
    for short in ["-Xmx", "-Xms", "-Xss", "-Xmn"] {
        if flag.starts_with(short) {
            return FlagKey {
                kind: short,
                name: "",
            };
        }
    }
    if let Some(rest) = flag.strip_prefix("-XX:") {
        let rest = rest.trim_start_matches(['+', '-']);
        let name = rest.split('=').next().unwrap_or(rest);
        return FlagKey { kind: "-XX:", name };
    }
    if let Some(rest) = flag.strip_prefix("-D") {
        let name = rest.split('=').next().unwrap_or(rest);
        return FlagKey { kind: "-D", name };
    }
    FlagKey {
        kind: "",
        name: flag,
    }
}

/// `defaults`, each replaced by the user's flag with the same [`flag_key`], then the user's other
/// flags in their order.
pub fn merge_flags(defaults: &[String], user: &[String]) -> Vec<String> {
    let user_keys: Vec<FlagKey<'_>> = user.iter().map(|f| flag_key(f)).collect();
    let mut out: Vec<String> = defaults
        .iter()
        .filter(|d| !user_keys.contains(&flag_key(d)))
        .cloned()
        .collect();
    out.extend(user.iter().filter(|f| !f.trim().is_empty()).cloned());
    out
}

fn mib(bytes: u64) -> u64 {
    (bytes / MIB).max(1)
}

/// The operator's default JVM flags for a component given its memory budget.
pub fn default_flags(component: Component, budget: Option<u64>) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(l) = budget {
        match component {
            Component::Controller => out.push(format!("-Xmx{}m", mib(l / 2))),
            Component::SegmentStore => {
                out.push(format!("-Xmx{}m", mib(l / 4)));
                out.push(format!("-XX:MaxDirectMemorySize={}m", mib(l / 2)));
            }
            Component::Bookkeeper => {
                out.push(format!("-Xms{}m", mib(l / 4)));
                out.push(format!("-Xmx{}m", mib(l / 4)));
                out.push(format!("-XX:MaxDirectMemorySize={}m", mib(l / 2)));
            }
        }
    }
    if component != Component::Bookkeeper {
        out.push(EXIT_ON_OOM.to_owned());
    }
    out
}

/// The JVM options of a bookie, by `bin/bookkeeper` variable.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BookieJvm {
    /// `BOOKIE_MEM_OPTS`.
    pub memory: Vec<String>,
    /// `BOOKIE_GC_OPTS` (empty: BookKeeper's default).
    pub gc: Vec<String>,
    /// `BOOKIE_GC_LOGGING_OPTS` (empty: BookKeeper's default).
    pub gc_logging: Vec<String>,
    /// `BOOKIE_EXTRA_OPTS`.
    pub extra: Vec<String>,
}

impl BookieJvm {
    /// Every flag, in the order `bin/bookkeeper` passes them.
    pub fn all(&self) -> Vec<String> {
        let mut out = self.memory.clone();
        out.extend(self.gc.iter().cloned());
        out.extend(self.gc_logging.iter().cloned());
        out.extend(self.extra.iter().cloned());
        out
    }
}

/// The bookie's JVM options: the spec's `bookkeeperJVMOptions` over the defaults.
pub fn bookie_jvm(spec: &PravegaClusterSpec) -> BookieJvm {
    let budget = memory_budget(effective_resources(spec, Component::Bookkeeper))
        .ok()
        .flatten();
    let given = &spec.bookkeeper.jvm_options;
    let mut memory = merge_flags(
        &default_flags(Component::Bookkeeper, budget),
        &given.memory_opts,
    );
    if !given
        .extra_opts
        .iter()
        .any(|f| flag_key(f) == flag_key(EXIT_ON_OOM))
        && !memory.iter().any(|f| flag_key(f) == flag_key(EXIT_ON_OOM))
    {
        memory.push(EXIT_ON_OOM.to_owned());
    }
    BookieJvm {
        memory,
        gc: given.gc_opts.clone(),
        gc_logging: given.gc_logging_opts.clone(),
        extra: given.extra_opts.clone(),
    }
}

/// The JVM flags of the Controller or the Segment Store (not the `-D` properties).
pub fn pravega_jvm(spec: &PravegaClusterSpec, component: Component) -> Vec<String> {
    let budget = memory_budget(effective_resources(spec, component))
        .ok()
        .flatten();
    let user = match component {
        Component::Controller => &spec.pravega.controller_jvm_options,
        _ => &spec.pravega.segment_store_jvm_options,
    };
    merge_flags(&default_flags(component, budget), user)
}

/// Every JVM flag of a component (for the bookie, all four variables together).
pub fn jvm_flags(spec: &PravegaClusterSpec, component: Component) -> Vec<String> {
    match component {
        Component::Bookkeeper => bookie_jvm(spec).all(),
        _ => pravega_jvm(spec, component),
    }
}

/// The heap and direct memory maxima a list of flags sets (the last flag of a kind wins, as
/// in the JVM). `Err` names the flag whose size does not parse.
pub fn memory_of(flags: &[String]) -> Result<(Option<u64>, Option<u64>), (String, SizeError)> {
    let mut heap = None;
    let mut direct = None;
    for f in flags {
        if let Some(v) = f.strip_prefix("-Xmx") {
            heap = Some(parse_jvm_size(v).map_err(|e| (f.clone(), e))?);
        } else if let Some(v) = f.strip_prefix("-XX:MaxDirectMemorySize=") {
            direct = Some(parse_jvm_size(v).map_err(|e| (f.clone(), e))?);
        }
    }
    Ok((heap, direct))
}

/// The Segment Store's cache-size property of `version`'s image and the value the spec gives
/// it: the legacy name (`pravegaservice.cacheMaxSize`) wins over the new one, as Pravega reads
/// them (`TypedProperties.java@v0.8.0`).
pub fn cache_size_option(spec: &PravegaClusterSpec) -> Option<(&'static str, &str)> {
    [
        "pravegaservice.cacheMaxSize",
        "pravegaservice.cache.size.max",
    ]
    .into_iter()
    .find_map(|k| spec.pravega.options.get(k).map(|v| (k, v.as_str())))
}

/// The cache size the operator sets when the spec sets none: half the Segment Store's direct
/// memory, on images whose cache lives in direct memory (0.7+). `None` when the spec sets one,
/// the image keeps its cache elsewhere, or the direct memory is unknown.
pub fn default_cache_size(spec: &PravegaClusterSpec, version: &str) -> Option<(&'static str, u64)> {
    let c: &ImageContract = contract(version);
    if !c.pravega.cache_in_direct_memory || cache_size_option(spec).is_some() {
        return None;
    }
    let (heap, direct) = memory_of(&pravega_jvm(spec, Component::SegmentStore)).ok()?;
    let direct = direct.or(heap)?;
    Some((
        c.pravega.cache_size_property,
        (direct / 2 / MIB).max(1) * MIB,
    ))
}

/// Flags that a Java 9+ runtime refuses to start with ("Unrecognized VM option"): the GC logging
/// flags replaced by `-Xlog` in Java 9 and the cgroup flag removed in Java 11.
pub const REMOVED_IN_JAVA_11: [&str; 10] = [
    "UseCGroupMemoryLimitForHeap",
    "PrintGCDateStamps",
    "PrintGCTimeStamps",
    "PrintGCApplicationStoppedTime",
    "PrintGCApplicationConcurrentTime",
    "PrintTenuringDistribution",
    "PrintHeapAtGC",
    "UseGCLogFileRotation",
    "NumberOfGCLogFiles",
    "GCLogFileSize",
];

/// The first flag of `flags` that a Java `java` runtime refuses, unless
/// `-XX:+IgnoreUnrecognizedVMOptions` is among them.
pub fn refused_flag(flags: &[String], java: u8) -> Option<&str> {
    if java < 11
        || flags
            .iter()
            .any(|f| f == "-XX:+IgnoreUnrecognizedVMOptions")
    {
        return None;
    }
    flags.iter().map(String::as_str).find(|f| {
        let key = flag_key(f);
        key.kind == "-XX:" && REMOVED_IN_JAVA_11.contains(&key.name)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quantity::GIB;

    fn spec(json: serde_json::Value) -> PravegaClusterSpec {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn flags_override_by_key() {
        let defaults: Vec<String> = ["-Xmx512m", "-XX:MaxDirectMemorySize=1024m", "-XX:+UseG1GC"]
            .map(String::from)
            .to_vec();
        let user: Vec<String> = ["-Xmx1g", "-XX:-UseG1GC", "-Dx=1"]
            .map(String::from)
            .to_vec();
        assert_eq!(
            merge_flags(&defaults, &user),
            [
                "-XX:MaxDirectMemorySize=1024m",
                "-Xmx1g",
                "-XX:-UseG1GC",
                "-Dx=1"
            ]
        );
        assert_eq!(
            flag_key("-XX:MaxDirectMemorySize=2g").to_string(),
            "-XX:MaxDirectMemorySize"
        );
        assert_eq!(flag_key("-Dlog.level=DEBUG").to_string(), "-Dlog.level");
    }

    #[test]
    fn defaults_follow_the_memory_limit() {
        let s = spec(serde_json::json!({"version": "0.11.0"}));
        assert_eq!(
            pravega_jvm(&s, Component::SegmentStore),
            ["-Xmx512m", "-XX:MaxDirectMemorySize=1024m", EXIT_ON_OOM]
        );
        assert_eq!(
            pravega_jvm(&s, Component::Controller),
            ["-Xmx512m", EXIT_ON_OOM]
        );
        assert_eq!(
            bookie_jvm(&s).memory,
            [
                "-Xms512m",
                "-Xmx512m",
                "-XX:MaxDirectMemorySize=1024m",
                EXIT_ON_OOM
            ]
        );
        assert_eq!(
            default_cache_size(&s, "0.11.0"),
            Some(("pravegaservice.cache.size.max", 512 * MIB))
        );
        assert_eq!(
            default_cache_size(&s, "0.7.0"),
            Some(("pravegaservice.cacheMaxSize", 512 * MIB))
        );
        assert_eq!(default_cache_size(&s, "0.6.0"), None);

        let big = spec(serde_json::json!({"version": "0.11.0", "pravega": {
            "segmentStoreResources": {"limits": {"memory": "16Gi"}},
            "segmentStoreJVMOptions": ["-Xmx4g"],
            "options": {"pravegaservice.cache.size.max": "1073741824"}}}));
        assert_eq!(
            memory_of(&pravega_jvm(&big, Component::SegmentStore)),
            Ok((Some(4 * GIB), Some(8 * GIB)))
        );
        assert_eq!(default_cache_size(&big, "0.11.0"), None);
    }

    #[test]
    fn java_11_refuses_the_removed_flags() {
        let flags: Vec<String> = ["-Xmx1g", "-XX:+UseCGroupMemoryLimitForHeap"]
            .map(String::from)
            .to_vec();
        assert_eq!(refused_flag(&flags, 8), None);
        assert_eq!(
            refused_flag(&flags, 11),
            Some("-XX:+UseCGroupMemoryLimitForHeap")
        );
        let mut ignoring = flags.clone();
        ignoring.push("-XX:+IgnoreUnrecognizedVMOptions".into());
        assert_eq!(refused_flag(&ignoring, 11), None);
    }
}
