//! What the real `pravega/pravega` and `pravega/bookkeeper` images do with what a pod gives
//! them, where they would refuse it: an independent model of each image version's contract,
//! written from the upstream sources cited next to each fact (and deliberately not from the
//! operator's own tables, so that an operator regression shows in the sandbox).
//!
//! [`play`] is pure: from the image reference, the container's arguments, its resolved
//! environment, its memory limit, its volume mounts and the cluster names under which bookies
//! currently run in the pod's namespace, it tells whether the container runs normally, crashes
//! at start ([`Outcome::Crash`]) or runs without ever becoming ready
//! ([`Outcome::NeverReady`]). Only these containers are modelled (everything else runs):
//!
//! - a bookie: an image whose repository's last path component is `bookkeeper`;
//! - a Pravega Controller or Segment Store: repository `…/pravega` with `args[0]` `controller`
//!   or `segmentstore`;
//!
//! and only with a tag `MAJOR.MINOR.PATCH[-pre]`, read as the Pravega version. The contract
//! depends on `MAJOR.MINOR` only (`0.5.0-1` is a 0.5 image).

use std::collections::{BTreeMap, HashSet};

/// What a container does when it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// It runs (and becomes ready as any simulated container does).
    Run,
    /// It exits at once, with this code and message, every time it is started.
    Crash { exit_code: i32, message: String },
    /// It keeps running but its readiness probe never succeeds.
    NeverReady { message: String },
}

/// What a container is started with.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Start<'a> {
    /// The image reference (`[registry/]repo[:tag][@digest]`).
    pub image: &'a str,
    /// The container's `args`.
    pub args: &'a [String],
    /// The environment as the kubelet resolved it (`envFrom`, then `env`).
    pub env: &'a BTreeMap<String, String>,
    /// `resources.limits.memory`, in bytes.
    pub memory_limit: Option<u64>,
    /// The `mountPath` of each of the container's volume mounts.
    pub mounts: &'a [String],
}

/// The part of a Pravega version the image contracts depend on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Version {
    major: u64,
    minor: u64,
}

const fn v(major: u64, minor: u64) -> Version {
    Version { major, minor }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Bookie,
    Controller,
    SegmentStore,
}

/// The cluster name a bookie registers under, and the Segment Store looks for, when none is
/// given (docker/bookkeeper/entrypoint.sh@v0.4.0..v0.13.0 `PRAVEGA_CLUSTER_NAME`;
/// ServiceConfig.java@v0.4.0..v0.13.0 `pravegaservice.clusterName`).
pub(crate) const DEFAULT_CLUSTER_NAME: &str = "pravega-cluster";

/// The Segment Store's default cache size, 4 GiB (ServiceConfig.java@v0.11.0
/// `cache.size.max`).
const DEFAULT_CACHE_SIZE: u64 = 4 * 1024 * 1024 * 1024;

/// `MAJOR.MINOR.PATCH[-pre]`.
fn parse_version(tag: &str) -> Option<Version> {
    let (core, pre) = match tag.split_once('-') {
        Some((core, pre)) => (core, Some(pre)),
        None => (tag, None),
    };
    if let Some(pre) = pre
        && (pre.is_empty()
            || !pre
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-'))
    {
        return None;
    }
    let mut parts = core.split('.');
    let mut number = || {
        let p = parts.next()?;
        if p.is_empty() || !p.chars().all(|c| c.is_ascii_digit()) {
            return None;
        }
        p.parse::<u64>().ok()
    };
    let (major, minor, _patch) = (number()?, number()?, number()?);
    if parts.next().is_some() {
        return None;
    }
    Some(v(major, minor))
}

/// The last path component of the repository and the tag of an image reference.
fn repository_and_tag(image: &str) -> (&str, Option<&str>) {
    let name = image.split('@').next().unwrap_or(image);
    let slash = name.rfind('/').map(|i| i + 1).unwrap_or(0);
    let last = &name[slash..];
    match last.split_once(':') {
        Some((repo, tag)) => (repo, Some(tag)),
        None => (last, None),
    }
}

/// Which modelled container this is, at which version.
fn identify(image: &str, args: &[String]) -> Option<(Role, Version)> {
    let (repo, tag) = repository_and_tag(image);
    let version = parse_version(tag?)?;
    let role = match repo {
        "bookkeeper" => Role::Bookie,
        "pravega" => match args.first().map(String::as_str) {
            Some("segmentstore") => Role::SegmentStore,
            Some("controller") => Role::Controller,
            _ => return None,
        },
        _ => return None,
    };
    Some((role, version))
}

/// The cluster name under which a bookie container registers, if `image` is a modelled bookie:
/// `/pravega/$PRAVEGA_CLUSTER_NAME/bookkeeper/ledgers/available`, with
/// `PRAVEGA_CLUSTER_NAME=${PRAVEGA_CLUSTER_NAME:-"pravega-cluster"}` (so empty means the
/// default) (pravega/pravega docker/bookkeeper/entrypoint.sh@v0.4.0..v0.13.0).
pub(crate) fn bookie_cluster(image: &str, env: &BTreeMap<String, String>) -> Option<String> {
    let (repo, tag) = repository_and_tag(image);
    parse_version(tag?)?;
    (repo == "bookkeeper").then(|| {
        env.get("PRAVEGA_CLUSTER_NAME")
            .filter(|n| !n.is_empty())
            .cloned()
            .unwrap_or_else(|| DEFAULT_CLUSTER_NAME.to_owned())
    })
}

/// What the container does when started; `bookies` are the cluster names under which bookies
/// run (registered and ready) in the pod's namespace.
pub(crate) fn play(start: &Start<'_>, bookies: &HashSet<String>) -> Outcome {
    match identify(start.image, start.args) {
        None => Outcome::Run,
        Some((Role::Bookie, version)) => bookie(version, start.env),
        Some((Role::Controller, version)) => controller(version, start.env),
        Some((Role::SegmentStore, version)) => segment_store(version, start, bookies),
    }
}

/// The line a simulated container's log starts with.
pub(crate) fn starting_line(image: &str, args: &[String]) -> String {
    format!("starting {image} with args [{}]", args.join(" "))
}

/// What a container writes to its log when it starts: [`starting_line`], then, for the
/// modelled images, the settings they resolve from the environment that decide what they do: a
/// bookie's cluster name (the registration path) and its JVM option variables (`BOOKIE_*_OPTS`
/// and the `BK_BOOKIE_*_OPTS` that conf/bkenv.sh takes from 0.5), a Controller's `JAVA_OPTS`,
/// a Segment Store's `JAVA_OPTS`, cluster name and `TIER2_STORAGE`.
pub(crate) fn start_log(start: &Start<'_>) -> Vec<String> {
    let env = start.env;
    let mut lines = vec![starting_line(start.image, start.args)];
    let value = |name: &str| env.get(name).map(String::as_str).unwrap_or_default();
    match identify(start.image, start.args) {
        None => {}
        Some((Role::Bookie, version)) => {
            let cluster =
                bookie_cluster(start.image, env).unwrap_or_else(|| DEFAULT_CLUSTER_NAME.to_owned());
            lines.push(format!(
                "PRAVEGA_CLUSTER_NAME={cluster} (registering under /pravega/{cluster}/bookkeeper/ledgers/available)"
            ));
            for name in BOOKIE_JVM_VARIABLES {
                lines.push(format!("{name}={}", value(name)));
            }
            if version >= v(0, 5) {
                // apply-config-from-env.py says what it writes into conf/bkenv.sh.
                for (_, key, val) in bkenv_lines(env) {
                    lines.push(format!(
                        "[/opt/bookkeeper/conf/bkenv.sh] Applying config {key} = {val}"
                    ));
                }
            }
        }
        Some((Role::Controller, _)) => lines.push(format!("JAVA_OPTS={}", value("JAVA_OPTS"))),
        Some((Role::SegmentStore, _)) => {
            let flags = java_opts(env);
            let cluster =
                last_value(&flags, "-Dpravegaservice.clusterName=").unwrap_or(DEFAULT_CLUSTER_NAME);
            lines.push(format!("JAVA_OPTS={}", value("JAVA_OPTS")));
            lines.push(format!("pravegaservice.clusterName={cluster}"));
            lines.push(format!("TIER2_STORAGE={}", value("TIER2_STORAGE")));
        }
    }
    lines
}

// ---------------------------------------------------------------------------------------------
// Bookies.

/// The keys of conf/bkenv.sh and their lines, identical in apache/bookkeeper
/// conf/bkenv.sh@release-4.7.3, @release-4.9.2, @release-4.11.1 and @release-4.14.1, the bases
/// of the 0.5 to 0.13 bookie images (docker/bookkeeper/Dockerfile@v0.5.0..v0.13.0). The lines
/// are commented out (`# KEY=`); apply-config-from-env.py uncomments and replaces a line in
/// place, so the key stays on its line.
const BKENV_KEYS: [(&str, u32); 17] = [
    ("BOOKIE_CONF", 29),
    ("BOOKIE_ZK_CONF", 32),
    ("BOOKIE_EXTRA_OPTS", 35),
    ("BOOKIE_EXTRA_CLASSPATH", 38),
    ("BOOKIE_PID_DIR", 41),
    ("BOOKIE_STOP_TIMEOUT", 44),
    ("BOOKIE_LOG_CONF", 57),
    ("BOOKIE_LOG_DIR", 60),
    ("BOOKIE_LOG_FILE", 63),
    ("BOOKIE_ROOT_LOGGER", 66),
    ("BOOKIE_MAX_HEAP_MEMORY", 72),
    ("BOOKIE_MIN_HEAP_MEMORY", 73),
    ("BOOKIE_MAX_DIRECT_MEMORY", 74),
    ("BOOKIE_MEM_OPTS", 75),
    ("BOOKIE_GC_OPTS", 78),
    ("BOOKIE_GC_LOGGING_OPTS", 81),
    ("BOOKIE_PERF_OPTS", 84),
];

/// The variables bin/common.sh puts on the bookie's java command line (apache/bookkeeper
/// bin/common.sh@release-4.9.2).
const BOOKIE_JVM_VARIABLES: [&str; 4] = [
    "BOOKIE_MEM_OPTS",
    "BOOKIE_GC_OPTS",
    "BOOKIE_GC_LOGGING_OPTS",
    "BOOKIE_EXTRA_OPTS",
];

/// Splits a line as bash does into words, removing quotes. `None` for an unterminated quote.
fn shell_words(line: &str) -> Option<Vec<(String, bool)>> {
    // Each word, and whether its first `=` (if any) was unquoted after a valid name, i.e.
    // whether bash reads it as an assignment.
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut assignment = false;
    let mut quoted_before_eq = false;
    let mut chars = line.chars().peekable();
    let mut end_word = |word: &mut String, in_word: &mut bool, assignment: &mut bool| {
        if *in_word {
            words.push((std::mem::take(word), *assignment));
        }
        *in_word = false;
        *assignment = false;
    };
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' | '\n' => {
                end_word(&mut word, &mut in_word, &mut assignment);
                quoted_before_eq = false;
            }
            '\'' => {
                in_word = true;
                quoted_before_eq |= !word.contains('=');
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => word.push(c),
                        None => return None,
                    }
                }
            }
            '"' => {
                in_word = true;
                quoted_before_eq |= !word.contains('=');
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\' | '$' | '`')) => word.push(c),
                            Some(c) => {
                                word.push('\\');
                                word.push(c);
                            }
                            None => return None,
                        },
                        Some(c) => word.push(c),
                        None => return None,
                    }
                }
            }
            '\\' => {
                in_word = true;
                quoted_before_eq |= !word.contains('=');
                if let Some(c) = chars.next()
                    && c != '\n'
                {
                    word.push(c);
                }
            }
            '=' if in_word && !word.contains('=') && !quoted_before_eq && is_name(&word) => {
                assignment = true;
                word.push(c);
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    end_word(&mut word, &mut in_word, &mut assignment);
    Some(words)
}

fn is_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// What bash does with the line `KEY=value` that apply-config-from-env.py writes: the command
/// it tries to run (a word after the assignments), or the value it assigns.
enum BkenvLine {
    Assigns(String),
    Runs(String),
    Unparsed,
}

fn bkenv_line(key: &str, value: &str) -> BkenvLine {
    let Some(words) = shell_words(&format!("{key}={value}")) else {
        return BkenvLine::Unparsed;
    };
    let mut words = words.into_iter();
    let assigned = match words.next() {
        Some((w, true)) => w
            .split_once('=')
            .map(|(_, v)| v.to_owned())
            .unwrap_or_default(),
        _ => return BkenvLine::Unparsed,
    };
    match words.find(|(_, is_assignment)| !is_assignment) {
        Some((command, _)) => BkenvLine::Runs(command),
        None => BkenvLine::Assigns(assigned),
    }
}

/// The `BK_BOOKIE_*` variables apply-config-from-env.py writes into conf/bkenv.sh (apache/
/// bookkeeper docker/scripts/apply-config-from-env.py@release-4.7.3..release-4.14.1: every
/// variable `BK_<key>` whose key is in a file of conf/ replaces that key's line with
/// `<key>=<value>`, unquoted), in the order bash reads them. Keys not in bkenv.sh are taken as
/// if they were (after the known ones), to be safe.
fn bkenv_lines(env: &BTreeMap<String, String>) -> Vec<(Option<u32>, &str, &str)> {
    let mut lines: Vec<(Option<u32>, &str, &str)> = env
        .iter()
        .filter_map(|(name, value)| {
            let key = name.strip_prefix("BK_")?;
            key.starts_with("BOOKIE_").then(|| {
                let line = BKENV_KEYS.iter().find(|(k, _)| *k == key).map(|(_, l)| *l);
                (line, key, value.as_str())
            })
        })
        .collect();
    lines.sort_by_key(|(line, key, _)| (line.unwrap_or(u32::MAX), *key));
    lines
}

fn bookie(version: Version, env: &BTreeMap<String, String>) -> Outcome {
    // From 0.5 the image runs apply-config-from-env.py (docker/bookkeeper/Dockerfile@v0.5.0
    // FROM apache/bookkeeper:4.7.3); the 0.4 image (BookKeeper 4.5.0) has no such script and
    // ignores BK_* variables (docker/bookkeeper/entrypoint.sh@v0.4.0).
    let mut jvm_vars: BTreeMap<&str, String> = BOOKIE_JVM_VARIABLES
        .iter()
        .filter_map(|k| env.get(*k).map(|v| (*k, v.clone())))
        .collect();
    if version >= v(0, 5) {
        for (line, key, value) in bkenv_lines(env) {
            match bkenv_line(key, value) {
                BkenvLine::Runs(command) => {
                    // bin/bookkeeper sources conf/bkenv.sh; from BookKeeper 4.9 it runs under
                    // `set -e` (apache/bookkeeper bin/bookkeeper@release-4.9.0), so the failed
                    // command aborts the bookie; the 0.7 image is FROM apache/bookkeeper:4.9.2
                    // (docker/bookkeeper/Dockerfile@v0.7.0). 0.5 and 0.6 are FROM 4.7.3, whose
                    // bin/bookkeeper has no `set -e`: the line fails and the bookie starts
                    // (without that variable).
                    if version >= v(0, 7) {
                        let at = line.map(|l| format!("line {l}: ")).unwrap_or_default();
                        return Outcome::Crash {
                            exit_code: 127,
                            message: format!(
                                "/opt/bookkeeper/conf/bkenv.sh: {at}{command}: command not found"
                            ),
                        };
                    }
                }
                // Sourced after the environment is read: the variable takes this value.
                BkenvLine::Assigns(assigned) => {
                    if let Some(name) = BOOKIE_JVM_VARIABLES.iter().find(|n| **n == key) {
                        jvm_vars.insert(name, assigned);
                    }
                }
                BkenvLine::Unparsed => {}
            }
        }
    }
    // Java 11 from 0.9 (docker/bookkeeper/entrypoint.sh@v0.9.0 runs java-11); bin/common.sh
    // puts these variables, unquoted, on the java command line.
    if version >= v(0, 9) {
        let flags: Vec<&str> = BOOKIE_JVM_VARIABLES
            .iter()
            .filter_map(|k| jvm_vars.get(k))
            .flat_map(|v| v.split_whitespace())
            .collect();
        if let Some(message) = java11_refusal(&flags) {
            return Outcome::Crash {
                exit_code: 1,
                message,
            };
        }
    }
    Outcome::Run
}

// ---------------------------------------------------------------------------------------------
// JVM.

/// Flags Java 11 no longer knows (JDK 9 removed the GC logging flags in favour of unified
/// logging, JDK 11 removed UseCGroupMemoryLimitForHeap).
const REMOVED_IN_JAVA_11: [&str; 10] = [
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

/// Why a Java 11 JVM refuses to start with `flags`: the first flag it does not know, unless
/// `-XX:+IgnoreUnrecognizedVMOptions` is among them. The JVM names the option as given after
/// `-XX:`, without its sign (hotspot arguments.cpp `Unrecognized VM option '%s'`).
fn java11_refusal(flags: &[&str]) -> Option<String> {
    if flags.contains(&"-XX:+IgnoreUnrecognizedVMOptions") {
        return None;
    }
    flags.iter().find_map(|flag| {
        let option = flag.strip_prefix("-XX:")?;
        let name = option.strip_prefix(['+', '-']).unwrap_or(option);
        let bare = name.split('=').next().unwrap_or(name);
        REMOVED_IN_JAVA_11.contains(&bare).then(|| {
            format!(
                "Unrecognized VM option '{name}'\nError: Could not create the Java Virtual Machine."
            )
        })
    })
}

/// A JVM size: digits with an optional `k`, `m`, `g` or `t` suffix (either case).
fn jvm_size(s: &str) -> Option<u64> {
    let (digits, unit) = match s.char_indices().last()? {
        (i, c) if c.is_ascii_alphabetic() => (&s[..i], Some(c.to_ascii_lowercase())),
        _ => (s, None),
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    let shift = match unit {
        None => 0,
        Some('k') => 10,
        Some('m') => 20,
        Some('g') => 30,
        Some('t') => 40,
        Some(_) => return None,
    };
    n.checked_mul(1u64 << shift)
}

/// The value of the last `<prefix><value>` among `flags` (the JVM keeps the last one).
fn last_value<'a>(flags: &[&'a str], prefix: &str) -> Option<&'a str> {
    flags.iter().rev().find_map(|f| f.strip_prefix(prefix))
}

/// `JAVA_OPTS` as the pravega image's scripts pass it to java: unquoted, so split on
/// whitespace (docker/pravega/scripts/entrypoint.sh@v0.5.0..v0.13.0).
fn java_opts(env: &BTreeMap<String, String>) -> Vec<&str> {
    env.get("JAVA_OPTS")
        .map(|o| o.split_whitespace().collect())
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// Pravega.

fn controller(version: Version, env: &BTreeMap<String, String>) -> Outcome {
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

fn segment_store(version: Version, start: &Start<'_>, bookies: &HashSet<String>) -> Outcome {
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

// ---------------------------------------------------------------------------------------------
// HTTP servers reachable on the pod's IP.
//
// Whether an image version has an HTTP server at all is read from the project's image contract
// table (`pravega_crds::contract`: `BookieContract::http_admin`, `PravegaContract::health`), the
// shared record of what each image version ships; what the container's settings make of it
// (enabled or not, port, bound address) is modelled here, from the sources cited.

/// An HTTP server a running modelled container serves on the pod's IP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HttpServer {
    pub port: u16,
    pub api: HttpApi,
}

/// Which API an [`HttpServer`] serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HttpApi {
    /// BookKeeper's admin API (`HttpRouter`); `state_api`: `bookie/state` and `bookie/is_ready`
    /// (BookKeeper 4.10+).
    BookieAdmin { state_api: bool },
    /// Pravega's health API (0.10+) of a Controller or a Segment Store.
    PravegaHealth { component: &'static str },
}

/// `BK_httpServerPort`'s default (ServerConfiguration.java@release-4.14.1 `httpServerPort`,
/// default 8080; the same since 4.6.0).
const BOOKIE_HTTP_DEFAULT_PORT: u16 = 8080;
/// The Controller's REST port when `REST_SERVER_PORT` is empty (controller Config.java@v0.10.0
/// `REST_SERVER_PORT`, read from `controller.rest.serverPort`, default 9091).
const CONTROLLER_REST_DEFAULT_PORT: u16 = 9091;
/// The Segment Store's REST properties next to `rest.listener.host` (ServiceConfig.java@v0.10.0:
/// `rest.listener.port` 6061, `rest.listener.enable` true).
const SEGMENT_STORE_REST_PORT_PROPERTY: &str = "pravegaservice.rest.listener.port";
const SEGMENT_STORE_REST_ENABLE_PROPERTY: &str = "pravegaservice.rest.listener.enable";
/// A bookie's port when `BK_bookiePort` is empty (ServerConfiguration.java@release-4.14.1
/// `bookiePort`, default 3181).
const BOOKIE_DEFAULT_PORT: u16 = 3181;

/// A port number as a variable or property gives it.
fn port(name: &str, value: &str) -> Result<u16, String> {
    value
        .trim()
        .parse::<u16>()
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| format!("{name}={value:?} is not a port number"))
}

/// The HTTP server the container runs on the pod's IP, if any; an error names a setting that
/// keeps it from serving (e.g. a port that is not a number).
pub(crate) fn http_server(start: &Start<'_>) -> Result<Option<HttpServer>, String> {
    let Some((role, _)) = identify(start.image, start.args) else {
        return Ok(None);
    };
    let (_, tag) = repository_and_tag(start.image);
    let row = pravega_crds::contract::contract(tag.unwrap_or_default());
    let env = start.env;
    let value = |name: &str| env.get(name).map(String::as_str).unwrap_or("").trim();
    match role {
        Role::Bookie => {
            // The admin server exists from BookKeeper 4.6 (none in the 0.4 image's 4.5.0); it is
            // switched on by bk_server.conf's httpServerEnabled, which BK_httpServerEnabled reaches
            // only through apply-config-from-env.py (0.5+ images).
            let Some(admin) = row.bookie.http_admin else {
                return Ok(None);
            };
            if !row.bookie.config_from_env
                || !value("BK_httpServerEnabled").eq_ignore_ascii_case("true")
            {
                return Ok(None);
            }
            let port = match value("BK_httpServerPort") {
                "" => BOOKIE_HTTP_DEFAULT_PORT,
                p => port("BK_httpServerPort", p)?,
            };
            Ok(Some(HttpServer {
                port,
                api: HttpApi::BookieAdmin {
                    state_api: admin.state_api,
                },
            }))
        }
        Role::Controller => {
            if row.pravega.health.is_none() {
                return Ok(None);
            }
            // The Controller's REST server binds REST_SERVER_IP, 0.0.0.0 unless set.
            let port = match value("REST_SERVER_PORT") {
                "" => CONTROLLER_REST_DEFAULT_PORT,
                p => port("REST_SERVER_PORT", p)?,
            };
            Ok(Some(HttpServer {
                port,
                api: HttpApi::PravegaHealth {
                    component: "controller",
                },
            }))
        }
        Role::SegmentStore => {
            let Some(health) = row.pravega.health else {
                return Ok(None);
            };
            let flags = java_opts(env);
            let property = |name: &str| last_value(&flags, &format!("-D{name}="));
            if property(SEGMENT_STORE_REST_ENABLE_PROPERTY)
                .is_some_and(|v| v.eq_ignore_ascii_case("false"))
            {
                return Ok(None);
            }
            // rest.listener.host defaults to localhost: only reachable from inside the pod.
            if property(health.segment_store_host_property) != Some("0.0.0.0") {
                return Ok(None);
            }
            let port = match property(SEGMENT_STORE_REST_PORT_PROPERTY) {
                Some(p) => port(SEGMENT_STORE_REST_PORT_PROPERTY, p)?,
                None => u16::try_from(health.segment_store_port).unwrap_or(6061),
            };
            Ok(Some(HttpServer {
                port,
                api: HttpApi::PravegaHealth {
                    component: "segmentstore",
                },
            }))
        }
    }
}

/// Where a pod is found on the network, for a bookie's id.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PodHost<'a> {
    pub name: &'a str,
    pub namespace: &'a str,
    pub hostname: Option<&'a str>,
    pub subdomain: Option<&'a str>,
    pub pod_ip: Option<&'a str>,
}

/// Whether `image` is a modelled bookie.
pub(crate) fn is_bookie(image: &str) -> bool {
    let (repo, tag) = repository_and_tag(image);
    repo == "bookkeeper" && tag.and_then(parse_version).is_some()
}

/// The id under which a bookie registers (what `list_bookies` shows): `BK_advertisedAddress`
/// when set, else with `BK_useHostNameAsBookieID=true` the pod's canonical host name (its FQDN
/// `<hostname>.<subdomain>.<namespace>.svc.cluster.local` when the pod has a subdomain, as a
/// StatefulSet's pods do; `useShortHostName` is false by default), else its IP; then
/// `:<bookiePort>` (Bookie.getBookieAddress@release-4.9.2, BookieImpl.getBookieAddress
/// @release-4.14.1; `bookieId`, 4.12+, is not modelled).
pub(crate) fn bookie_id(env: &BTreeMap<String, String>, host: &PodHost<'_>) -> String {
    let value = |name: &str| env.get(name).map(String::as_str).unwrap_or("").trim();
    let port = port("BK_bookiePort", value("BK_bookiePort")).unwrap_or(BOOKIE_DEFAULT_PORT);
    let address = match value("BK_advertisedAddress") {
        "" if value("BK_useHostNameAsBookieID").eq_ignore_ascii_case("true") => {
            let hostname = host.hostname.filter(|h| !h.is_empty()).unwrap_or(host.name);
            match host.subdomain.filter(|s| !s.is_empty()) {
                Some(sub) => format!("{hostname}.{sub}.{}.svc.cluster.local", host.namespace),
                None => hostname.to_owned(),
            }
        }
        "" => host.pod_ip.unwrap_or_default().to_owned(),
        advertised => advertised.to_owned(),
    };
    format!("{address}:{port}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> BTreeMap<String, String> {
        vars.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    fn bookies(names: &[&str]) -> HashSet<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    fn run(image: &str, a: &[&str], vars: &[(&str, &str)]) -> Outcome {
        run_with(image, a, vars, None, &[], &["pravega-cluster"])
    }

    fn run_with(
        image: &str,
        a: &[&str],
        vars: &[(&str, &str)],
        memory_limit: Option<u64>,
        mounts: &[&str],
        registered: &[&str],
    ) -> Outcome {
        let a = args(a);
        let e = env(vars);
        let m = args(mounts);
        play(
            &Start {
                image,
                args: &a,
                env: &e,
                memory_limit,
                mounts: &m,
            },
            &bookies(registered),
        )
    }

    fn crash_message(o: Outcome) -> (i32, String) {
        match o {
            Outcome::Crash { exit_code, message } => (exit_code, message),
            other => panic!("expected a crash, got {other:?}"),
        }
    }

    fn unready_message(o: Outcome) -> String {
        match o {
            Outcome::NeverReady { message } => message,
            other => panic!("expected never ready, got {other:?}"),
        }
    }

    /// A Segment Store environment that passes every check (filesystem tier 2).
    const FS: [(&str, &str); 2] = [("TIER2_STORAGE", "FILESYSTEM"), ("NFS_MOUNT", "/mnt/tier2")];

    fn ss(version: &str, extra: &[(&str, &str)], limit: Option<u64>) -> Outcome {
        let mut vars: Vec<(&str, &str)> = FS.to_vec();
        vars.extend_from_slice(extra);
        run_with(
            &format!("pravega/pravega:{version}"),
            &["segmentstore"],
            &vars,
            limit,
            &["/mnt/tier2"],
            &["pravega-cluster"],
        )
    }

    fn log(image: &str, a: &[&str], vars: &[(&str, &str)]) -> Vec<String> {
        let (a, e) = (args(a), env(vars));
        start_log(&Start {
            image,
            args: &a,
            env: &e,
            memory_limit: None,
            mounts: &[],
        })
    }

    #[test]
    fn start_logs_show_the_resolved_settings() {
        assert_eq!(
            log("busybox:1.36", &["sleep", "3600"], &[]),
            ["starting busybox:1.36 with args [sleep 3600]"]
        );
        assert_eq!(
            log(
                "pravega/pravega:0.9.0",
                &["segmentstore"],
                &[
                    ("JAVA_OPTS", "-Xmx1g -Dpravegaservice.clusterName=example"),
                    ("TIER2_STORAGE", "FILESYSTEM")
                ]
            ),
            [
                "starting pravega/pravega:0.9.0 with args [segmentstore]",
                "JAVA_OPTS=-Xmx1g -Dpravegaservice.clusterName=example",
                "pravegaservice.clusterName=example",
                "TIER2_STORAGE=FILESYSTEM",
            ]
        );
        assert_eq!(
            log(
                "pravega/bookkeeper:0.7.0",
                &[],
                &[
                    ("PRAVEGA_CLUSTER_NAME", "example"),
                    ("BOOKIE_MEM_OPTS", "-Xms1g"),
                    ("BK_BOOKIE_EXTRA_OPTS", "-Xms1g -Xmx1g"),
                ]
            ),
            [
                "starting pravega/bookkeeper:0.7.0 with args []",
                "PRAVEGA_CLUSTER_NAME=example (registering under /pravega/example/bookkeeper/ledgers/available)",
                "BOOKIE_MEM_OPTS=-Xms1g",
                "BOOKIE_GC_OPTS=",
                "BOOKIE_GC_LOGGING_OPTS=",
                "BOOKIE_EXTRA_OPTS=",
                "[/opt/bookkeeper/conf/bkenv.sh] Applying config BOOKIE_EXTRA_OPTS = -Xms1g -Xmx1g",
            ]
        );
        assert_eq!(
            log(
                "pravega/bookkeeper:0.4.0",
                &[],
                &[("BK_BOOKIE_EXTRA_OPTS", "x")]
            )[1],
            "PRAVEGA_CLUSTER_NAME=pravega-cluster (registering under /pravega/pravega-cluster/bookkeeper/ledgers/available)"
        );
        assert_eq!(
            log(
                "pravega/bookkeeper:0.4.0",
                &[],
                &[("BK_BOOKIE_EXTRA_OPTS", "x")]
            )
            .len(),
            6
        );
    }

    #[test]
    fn only_semver_tagged_bookies_and_pravega_components_are_modelled() {
        assert_eq!(parse_version("0.5.0-1"), Some(v(0, 5)));
        assert_eq!(parse_version("0.13.0"), Some(v(0, 13)));
        assert_eq!(parse_version("0.7.0-rc1.2"), Some(v(0, 7)));
        for bad in [
            "latest",
            "0.5",
            "0.5.0.1",
            "0.5.x",
            "0.5.0-",
            "v0.5.0",
            "0.5.0-a_b",
        ] {
            assert_eq!(parse_version(bad), None, "{bad}");
        }
        let a = args(&["segmentstore"]);
        assert_eq!(
            identify("pravega/pravega:0.9.0", &a),
            Some((Role::SegmentStore, v(0, 9)))
        );
        assert_eq!(
            identify("registry.local:5000/org/pravega:0.9.0@sha256:abc", &a),
            Some((Role::SegmentStore, v(0, 9)))
        );
        assert_eq!(
            identify("pravega/pravega:0.9.0", &args(&["controller"])),
            Some((Role::Controller, v(0, 9)))
        );
        assert_eq!(identify("pravega/pravega:0.9.0", &[]), None);
        assert_eq!(identify("pravega/pravega:latest", &a), None);
        assert_eq!(identify("pravega/pravega", &a), None);
        assert_eq!(identify("pravega/pravega-operator:0.9.0", &a), None);
        assert_eq!(
            identify("pravega/bookkeeper:0.5.0-1", &[]),
            Some((Role::Bookie, v(0, 5)))
        );
        assert_eq!(identify("nginx:1.0.0", &a), None);
        // Unmodelled containers run, whatever they are given.
        assert_eq!(run("pravega/pravega:0.5.0", &[], &[]), Outcome::Run);
        assert_eq!(
            run("pravega/pravega:latest", &["segmentstore"], &[]),
            Outcome::Run
        );
    }

    #[test]
    fn bookies_register_under_pravega_cluster_name() {
        let e = env(&[("PRAVEGA_CLUSTER_NAME", "example")]);
        assert_eq!(
            bookie_cluster("pravega/bookkeeper:0.4.0", &e).as_deref(),
            Some("example")
        );
        let empty = env(&[("PRAVEGA_CLUSTER_NAME", "")]);
        assert_eq!(
            bookie_cluster("pravega/bookkeeper:0.13.0", &empty).as_deref(),
            Some("pravega-cluster")
        );
        assert_eq!(
            bookie_cluster("pravega/bookkeeper:0.13.0", &env(&[])).as_deref(),
            Some("pravega-cluster")
        );
        assert_eq!(bookie_cluster("pravega/bookkeeper:latest", &e), None);
        assert_eq!(bookie_cluster("pravega/pravega:0.5.0", &e), None);
    }

    #[test]
    fn bkenv_values_with_whitespace_abort_bookies_from_0_7() {
        let vars = [("BK_BOOKIE_EXTRA_OPTS", "-Xms1g -Xmx1g")];
        let (code, message) = crash_message(run("pravega/bookkeeper:0.7.0", &[], &vars));
        assert_eq!(code, 127);
        assert_eq!(
            message,
            "/opt/bookkeeper/conf/bkenv.sh: line 35: -Xmx1g: command not found"
        );
        // 0.5 and 0.6 (BookKeeper 4.7.3, no `set -e`): not fatal. 0.4: BK_* ignored.
        for version in ["0.4.0", "0.5.0-1", "0.6.0"] {
            assert_eq!(
                run(&format!("pravega/bookkeeper:{version}"), &[], &vars),
                Outcome::Run,
                "{version}"
            );
        }
        // The first failing line of the file is reported; unknown BOOKIE_* keys are taken as
        // keys too.
        let (_, message) = crash_message(run(
            "pravega/bookkeeper:0.13.0-1",
            &[],
            &[
                ("BK_BOOKIE_GC_OPTS", "-XX:+UseG1GC -XX:MaxGCPauseMillis=10"),
                ("BK_BOOKIE_CONF", "/a /b"),
                ("BK_BOOKIE_WHATEVER", "x y"),
            ],
        ));
        assert_eq!(
            message,
            "/opt/bookkeeper/conf/bkenv.sh: line 29: /b: command not found"
        );
        let (_, message) = crash_message(run(
            "pravega/bookkeeper:0.8.0",
            &[],
            &[("BK_BOOKIE_WHATEVER", "x y")],
        ));
        assert_eq!(
            message,
            "/opt/bookkeeper/conf/bkenv.sh: y: command not found"
        );
        // Leading whitespace: the first word is the command.
        let (_, message) = crash_message(run(
            "pravega/bookkeeper:0.7.0",
            &[],
            &[("BK_BOOKIE_EXTRA_OPTS", " -Xmx1g")],
        ));
        assert!(
            message.ends_with(": -Xmx1g: command not found"),
            "{message}"
        );
        // Single words, quoted values, further assignments and other BK_ keys are fine.
        for ok in [
            ("BK_BOOKIE_EXTRA_OPTS", "-Xmx1g"),
            ("BK_BOOKIE_EXTRA_OPTS", "\"-Xms1g -Xmx1g\""),
            ("BK_BOOKIE_EXTRA_OPTS", "'-Xms1g -Xmx1g'"),
            ("BK_BOOKIE_EXTRA_OPTS", "-Xmx1g\\ -Xms1g"),
            ("BK_BOOKIE_EXTRA_OPTS", "-Xmx1g OTHER=1"),
            ("BK_journalDirectories", "/a /b"),
            ("BOOKIE_EXTRA_OPTS", "-Xms1g -Xmx1g"),
        ] {
            assert_eq!(
                run("pravega/bookkeeper:0.7.0", &[], &[ok]),
                Outcome::Run,
                "{ok:?}"
            );
        }
    }

    #[test]
    fn shell_words_follow_bash_quoting() {
        let words = shell_words("K=\"a b\" c 'd e'f X=1 \"Y\"=2").unwrap();
        assert_eq!(
            words,
            vec![
                ("K=a b".to_string(), true),
                ("c".to_string(), false),
                ("d ef".to_string(), false),
                ("X=1".to_string(), true),
                ("Y=2".to_string(), false),
            ]
        );
        assert_eq!(shell_words("K='a"), None);
    }

    #[test]
    fn java_11_images_refuse_removed_jvm_flags() {
        let refused = |o: Outcome| crash_message(o);
        // Pravega: JAVA_OPTS, from 0.9.
        let opts = [("JAVA_OPTS", "-Xmx1g -XX:+UseCGroupMemoryLimitForHeap")];
        assert_eq!(
            refused(run("pravega/pravega:0.9.0", &["controller"], &opts)),
            (
                1,
                "Unrecognized VM option 'UseCGroupMemoryLimitForHeap'\nError: Could not create the Java Virtual Machine."
                    .to_owned()
            )
        );
        assert_eq!(
            run("pravega/pravega:0.8.0", &["controller"], &opts),
            Outcome::Run
        );
        let (_, m) = refused(ss("0.9.0", &opts, None));
        assert!(m.starts_with("Unrecognized VM option 'UseCGroupMemoryLimitForHeap'"));
        assert_eq!(ss("0.8.0", &opts, None), Outcome::Run);
        // -XX:+IgnoreUnrecognizedVMOptions anywhere lets it start.
        let ignoring = [(
            "JAVA_OPTS",
            "-XX:+UseCGroupMemoryLimitForHeap -XX:+IgnoreUnrecognizedVMOptions",
        )];
        assert_eq!(
            run("pravega/pravega:0.9.0", &["controller"], &ignoring),
            Outcome::Run
        );
        // Valued flags are named with their value; the sign does not matter.
        let (_, m) = refused(run(
            "pravega/pravega:0.10.0",
            &["controller"],
            &[(
                "JAVA_OPTS",
                "-XX:-PrintGCDateStamps -XX:NumberOfGCLogFiles=5",
            )],
        ));
        assert!(
            m.starts_with("Unrecognized VM option 'PrintGCDateStamps'"),
            "{m}"
        );
        let (_, m) = refused(run(
            "pravega/pravega:0.10.0",
            &["controller"],
            &[("JAVA_OPTS", "-XX:GCLogFileSize=64m")],
        ));
        assert!(
            m.starts_with("Unrecognized VM option 'GCLogFileSize=64m'"),
            "{m}"
        );
        assert_eq!(
            run(
                "pravega/pravega:0.10.0",
                &["controller"],
                &[("JAVA_OPTS", "-XX:+UseG1GC -XX:+PrintGCDetails")]
            ),
            Outcome::Run
        );

        // Bookies: the four BOOKIE_*_OPTS variables, from 0.9.
        for var in BOOKIE_JVM_VARIABLES {
            let vars = [(var, "-XX:+PrintGCDateStamps")];
            let (code, m) = refused(run("pravega/bookkeeper:0.9.0", &[], &vars));
            assert_eq!(code, 1);
            assert!(
                m.starts_with("Unrecognized VM option 'PrintGCDateStamps'"),
                "{m}"
            );
            assert_eq!(run("pravega/bookkeeper:0.8.1", &[], &vars), Outcome::Run);
        }
        assert_eq!(
            run(
                "pravega/bookkeeper:0.9.0",
                &[],
                &[(
                    "BOOKIE_GC_OPTS",
                    "-XX:+UseGCLogFileRotation -XX:+IgnoreUnrecognizedVMOptions"
                )]
            ),
            Outcome::Run
        );
        // A single-word BK_BOOKIE_GC_OPTS replaces BOOKIE_GC_OPTS (bkenv.sh is sourced).
        let (_, m) = refused(run(
            "pravega/bookkeeper:0.9.0",
            &[],
            &[("BK_BOOKIE_GC_OPTS", "-XX:+PrintHeapAtGC")],
        ));
        assert!(
            m.starts_with("Unrecognized VM option 'PrintHeapAtGC'"),
            "{m}"
        );
        assert_eq!(
            run(
                "pravega/bookkeeper:0.9.0",
                &[],
                &[
                    ("BOOKIE_GC_OPTS", "-XX:+PrintHeapAtGC"),
                    ("BK_BOOKIE_GC_OPTS", "-XX:+UseG1GC")
                ]
            ),
            Outcome::Run
        );
    }

    #[test]
    fn segment_store_cluster_name_comes_only_from_the_jvm_property() {
        let fs = FS.to_vec();
        let example = |extra: &[(&str, &str)]| {
            let mut vars = fs.clone();
            vars.extend_from_slice(extra);
            run_with(
                "pravega/pravega:0.5.0",
                &["segmentstore"],
                &vars,
                None,
                &["/mnt/tier2"],
                &["example"],
            )
        };
        // CLUSTER_NAME is not read: the default cluster name has no bookies.
        let m = unready_message(example(&[("CLUSTER_NAME", "example")]));
        assert_eq!(
            m,
            "no bookies registered under /pravega/pravega-cluster/bookkeeper/ledgers/available (the Segment Store's cluster name comes from -Dpravegaservice.clusterName in JAVA_OPTS)"
        );
        assert_eq!(
            example(&[("JAVA_OPTS", "-Xmx1g -Dpravegaservice.clusterName=example")]),
            Outcome::Run
        );
        // The last occurrence wins.
        let m = unready_message(example(&[(
            "JAVA_OPTS",
            "-Dpravegaservice.clusterName=example -Dpravegaservice.clusterName=other",
        )]));
        assert!(m.contains("/pravega/other/"), "{m}");
        // No bookies at all.
        let vars = fs.clone();
        let o = run_with(
            "pravega/pravega:0.13.0",
            &["segmentstore"],
            &vars,
            None,
            &["/mnt/tier2"],
            &[],
        );
        assert!(unready_message(o).starts_with("no bookies registered"));
        // The default cluster name matches bookies without PRAVEGA_CLUSTER_NAME.
        assert_eq!(ss("0.4.0", &[], None), Outcome::Run);
    }

    #[test]
    fn segment_store_needs_a_reachable_tier_2() {
        let ss_with = |version: &str, vars: &[(&str, &str)], mounts: &[&str]| {
            run_with(
                &format!("pravega/pravega:{version}"),
                &["segmentstore"],
                vars,
                None,
                mounts,
                &["pravega-cluster"],
            )
        };
        for version in ["0.4.0", "0.5.0", "0.13.0"] {
            assert_eq!(
                unready_message(ss_with(version, &[], &[])),
                "tier 2 unreachable: TIER2_STORAGE is empty, so the Segment Store uses HDFS at localhost:9000"
            );
            assert_eq!(
                unready_message(ss_with(version, &[("TIER2_STORAGE", "")], &[])),
                "tier 2 unreachable: TIER2_STORAGE is empty, so the Segment Store uses HDFS at localhost:9000"
            );
        }
        // FILESYSTEM: NFS_MOUNT and a volume mounted there.
        let m = unready_message(ss_with("0.5.0", &[("TIER2_STORAGE", "FILESYSTEM")], &[]));
        assert!(m.contains("NFS_MOUNT is not set"), "{m}");
        let m = unready_message(ss_with("0.5.0", &FS, &["/tmp/pravega/cache"]));
        assert_eq!(
            m,
            "tier 2 unreachable: TIER2_STORAGE is FILESYSTEM but no volume is mounted at NFS_MOUNT (/mnt/tier2)"
        );
        assert_eq!(ss_with("0.5.0", &FS, &["/mnt/tier2/"]), Outcome::Run);
        // ...unless the script mounts NFS itself, which waits for NFS_SERVER.
        let in_container = [
            ("TIER2_STORAGE", "FILESYSTEM"),
            ("MOUNT_IN_CONTAINER", "true"),
        ];
        let m = unready_message(ss_with("0.5.0", &in_container, &[]));
        assert!(m.contains("NFS_SERVER is not set"), "{m}");
        let mut served = in_container.to_vec();
        served.push(("NFS_SERVER", "nfs:/export"));
        assert_eq!(ss_with("0.5.0", &served, &[]), Outcome::Run);
        // HDFS needs HDFS_URL.
        let m = unready_message(ss_with("0.6.0", &[("TIER2_STORAGE", "HDFS")], &[]));
        assert!(m.contains("HDFS_URL is not set"), "{m}");
        assert_eq!(
            ss_with(
                "0.6.0",
                &[("TIER2_STORAGE", "HDFS"), ("HDFS_URL", "hdfs://nn:8020")],
                &[]
            ),
            Outcome::Run
        );
    }

    #[test]
    fn extended_s3_variables_change_at_0_7() {
        let ss_with = |version: &str, vars: &[(&str, &str)]| {
            let mut all = vec![("TIER2_STORAGE", "EXTENDEDS3"), ("EXTENDEDS3_BUCKET", "b")];
            all.extend_from_slice(vars);
            run_with(
                &format!("pravega/pravega:{version}"),
                &["segmentstore"],
                &all,
                None,
                &[],
                &["pravega-cluster"],
            )
        };
        let creds = [
            ("EXTENDEDS3_ACCESS_KEY_ID", "id"),
            ("EXTENDEDS3_SECRET_KEY", "secret"),
        ];
        let mut old = creds.to_vec();
        old.push(("EXTENDEDS3_URI", "http://ecs:9020"));
        let mut new = creds.to_vec();
        new.push(("EXTENDEDS3_CONFIGURI", "http://ecs:9020?namespace=ns"));
        // 0.4 to 0.6: EXTENDEDS3_URI.
        for version in ["0.4.0", "0.6.0"] {
            assert_eq!(ss_with(version, &old), Outcome::Run, "{version}");
            let m = unready_message(ss_with(version, &new));
            assert!(m.contains("EXTENDEDS3_URI is not set"), "{m}");
            let m = unready_message(ss_with(version, &old[2..]));
            assert!(
                m.contains("EXTENDEDS3_ACCESS_KEY_ID, EXTENDEDS3_SECRET_KEY are not set"),
                "{m}"
            );
        }
        // 0.7 on: EXTENDEDS3_CONFIGURI, and credentials unless the URI carries them.
        for version in ["0.7.0", "0.13.0"] {
            assert_eq!(ss_with(version, &new), Outcome::Run, "{version}");
            let m = unready_message(ss_with(version, &old));
            assert!(m.contains("EXTENDEDS3_CONFIGURI is not set"), "{m}");
            let m = unready_message(ss_with(version, &new[1..]));
            assert!(m.contains("EXTENDEDS3_ACCESS_KEY_ID is not set"), "{m}");
            assert_eq!(
                ss_with(
                    version,
                    &[(
                        "EXTENDEDS3_CONFIGURI",
                        "http://ecs:9020?identity=id&secretKey=s"
                    )]
                ),
                Outcome::Run
            );
        }
        let m = unready_message(run_with(
            "pravega/pravega:0.7.0",
            &["segmentstore"],
            &[("TIER2_STORAGE", "EXTENDEDS3")],
            None,
            &[],
            &["pravega-cluster"],
        ));
        assert!(
            m.contains("EXTENDEDS3_CONFIGURI, EXTENDEDS3_BUCKET are not set"),
            "{m}"
        );
    }

    #[test]
    fn segment_store_from_0_11_needs_more_direct_memory_than_cache() {
        const GIB: u64 = 1024 * 1024 * 1024;
        let crash = |o: Outcome| crash_message(o);
        // Default cache (4 GiB) with 2g of direct memory.
        let small = [("JAVA_OPTS", "-Xmx1g -XX:MaxDirectMemorySize=2g")];
        assert_eq!(
            crash(ss("0.11.0", &small, None)),
            (
                1,
                "Cache size (4294967296 B) configured is more than the JVM MaxDirectMemory(2147483648 B) value"
                    .to_owned()
            )
        );
        assert_eq!(ss("0.10.0", &small, None), Outcome::Run);
        // A cache smaller than the direct memory passes; equal does not.
        let sized = |cache: &str| {
            format!("-Xmx1g -XX:MaxDirectMemorySize=2G -Dpravegaservice.cache.size.max={cache}")
        };
        let ok = sized("1073741824");
        assert_eq!(ss("0.11.0", &[("JAVA_OPTS", &ok)], None), Outcome::Run);
        let equal = sized("2147483648");
        assert!(matches!(
            ss("0.13.0", &[("JAVA_OPTS", &equal)], None),
            Outcome::Crash { .. }
        ));
        // The legacy name wins.
        let legacy = format!(
            "{} -Dpravegaservice.cacheMaxSize=4294967296",
            sized("1073741824")
        );
        let (_, m) = crash(ss("0.11.0", &[("JAVA_OPTS", &legacy)], None));
        assert!(m.starts_with("Cache size (4294967296 B)"), "{m}");
        // Without MaxDirectMemorySize: -Xmx; without either, a quarter of the memory limit.
        assert_eq!(
            ss("0.11.0", &[("JAVA_OPTS", "-Xmx8g")], Some(GIB)),
            Outcome::Run
        );
        let (_, m) = crash(ss("0.11.0", &[("JAVA_OPTS", "-Xmx4096m")], None));
        assert!(m.ends_with("MaxDirectMemory(4294967296 B) value"), "{m}");
        let (_, m) = crash(ss("0.11.0", &[], Some(8 * GIB)));
        assert!(m.ends_with("MaxDirectMemory(2147483648 B) value"), "{m}");
        assert_eq!(ss("0.11.0", &[], Some(32 * GIB)), Outcome::Run);
        assert_eq!(
            ss(
                "0.11.0",
                &[("JAVA_OPTS", "-XX:MaxRAMPercentage=75")],
                Some(8 * GIB)
            ),
            Outcome::Run
        );
        // No limit and nothing set: not checked.
        assert_eq!(ss("0.11.0", &[], None), Outcome::Run);
        // Sizes.
        assert_eq!(jvm_size("512"), Some(512));
        assert_eq!(jvm_size("2k"), Some(2048));
        assert_eq!(jvm_size("3M"), Some(3 << 20));
        assert_eq!(jvm_size("1t"), Some(1 << 40));
        assert_eq!(jvm_size("1x"), None);
        assert_eq!(jvm_size("g"), None);
        assert_eq!(jvm_size("99999999999999999999g"), None);
    }

    #[test]
    fn segment_store_checks_come_in_start_order() {
        // A script waiting for tier 2 variables never starts the JVM.
        let o = run_with(
            "pravega/pravega:0.11.0",
            &["segmentstore"],
            &[
                ("TIER2_STORAGE", "EXTENDEDS3"),
                ("JAVA_OPTS", "-XX:+PrintGCDateStamps"),
            ],
            None,
            &[],
            &[],
        );
        assert!(unready_message(o).contains("EXTENDEDS3_CONFIGURI"));
        // A JVM refusal comes before the memory check, which comes before tier 2 and bookies.
        let o = run_with(
            "pravega/pravega:0.11.0",
            &["segmentstore"],
            &[(
                "JAVA_OPTS",
                "-XX:+PrintGCDateStamps -XX:MaxDirectMemorySize=1g",
            )],
            None,
            &[],
            &[],
        );
        assert!(crash_message(o).1.starts_with("Unrecognized VM option"));
        let o = run_with(
            "pravega/pravega:0.11.0",
            &["segmentstore"],
            &[("JAVA_OPTS", "-XX:MaxDirectMemorySize=1g")],
            None,
            &[],
            &[],
        );
        assert!(crash_message(o).1.starts_with("Cache size"));
        let o = run_with(
            "pravega/pravega:0.11.0",
            &["segmentstore"],
            &[],
            None,
            &[],
            &[],
        );
        assert!(unready_message(o).starts_with("tier 2 unreachable"));
    }

    fn server(
        image: &str,
        a: &[&str],
        vars: &[(&str, &str)],
    ) -> Result<Option<HttpServer>, String> {
        let (a, e) = (args(a), env(vars));
        http_server(&Start {
            image,
            args: &a,
            env: &e,
            memory_limit: None,
            mounts: &[],
        })
    }

    #[test]
    fn http_servers_follow_the_image_version_and_settings() {
        let on = [
            ("BK_httpServerEnabled", "true"),
            ("BK_httpServerPort", "8000"),
        ];
        // BookKeeper 4.5 (0.4) has no admin server; 4.7 and 4.9 no state API; 4.10+ both.
        assert_eq!(server("pravega/bookkeeper:0.4.0", &[], &on), Ok(None));
        for (version, state_api) in [
            ("0.5.0", false),
            ("0.8.0", false),
            ("0.9.0", true),
            ("0.13.0", true),
        ] {
            assert_eq!(
                server(&format!("pravega/bookkeeper:{version}"), &[], &on),
                Ok(Some(HttpServer {
                    port: 8000,
                    api: HttpApi::BookieAdmin { state_api }
                })),
                "{version}"
            );
        }
        assert_eq!(server("pravega/bookkeeper:0.9.0", &[], &[]), Ok(None));
        assert_eq!(
            server(
                "pravega/bookkeeper:0.9.0",
                &[],
                &[("BK_httpServerEnabled", "true")]
            )
            .map(|s| s.map(|s| s.port)),
            Ok(Some(8080))
        );
        assert!(
            server(
                "pravega/bookkeeper:0.9.0",
                &[],
                &[
                    ("BK_httpServerEnabled", "true"),
                    ("BK_httpServerPort", "http")
                ]
            )
            .is_err()
        );

        // The health API from 0.10: the Controller on REST_SERVER_PORT (default 9091).
        let controller = ["controller"];
        assert_eq!(
            server(
                "pravega/pravega:0.9.0",
                &controller,
                &[("REST_SERVER_PORT", "10080")]
            ),
            Ok(None)
        );
        let health = |component| HttpApi::PravegaHealth { component };
        assert_eq!(
            server(
                "pravega/pravega:0.10.0",
                &controller,
                &[("REST_SERVER_PORT", "10080")]
            ),
            Ok(Some(HttpServer {
                port: 10080,
                api: health("controller")
            }))
        );
        assert_eq!(
            server("pravega/pravega:0.10.0", &controller, &[]).map(|s| s.map(|s| s.port)),
            Ok(Some(9091))
        );
        // The Segment Store only when its REST server binds every address.
        let ss = ["segmentstore"];
        assert_eq!(
            server("pravega/pravega:0.11.0", &ss, &[("JAVA_OPTS", "-Xmx1g")]),
            Ok(None)
        );
        let open = [("JAVA_OPTS", "-Dpravegaservice.rest.listener.host=0.0.0.0")];
        assert_eq!(
            server("pravega/pravega:0.11.0", &ss, &open),
            Ok(Some(HttpServer {
                port: 6061,
                api: health("segmentstore")
            }))
        );
        assert_eq!(server("pravega/pravega:0.9.0", &ss, &open), Ok(None));
        assert_eq!(
            server(
                "pravega/pravega:0.11.0",
                &ss,
                &[(
                    "JAVA_OPTS",
                    "-Dpravegaservice.rest.listener.host=0.0.0.0 -Dpravegaservice.rest.listener.host=localhost"
                )]
            ),
            Ok(None)
        );
        assert_eq!(
            server(
                "pravega/pravega:0.11.0",
                &ss,
                &[(
                    "JAVA_OPTS",
                    "-Dpravegaservice.rest.listener.host=0.0.0.0 -Dpravegaservice.rest.listener.enable=false"
                )]
            ),
            Ok(None)
        );
    }

    #[test]
    fn bookie_ids_are_host_names_or_ips() {
        let host = PodHost {
            name: "c-bookie-0",
            namespace: "ns",
            hostname: Some("c-bookie-0"),
            subdomain: Some("c-bookie-headless"),
            pod_ip: Some("127.9.0.2"),
        };
        assert_eq!(
            bookie_id(&env(&[("BK_useHostNameAsBookieID", "true")]), &host),
            "c-bookie-0.c-bookie-headless.ns.svc.cluster.local:3181"
        );
        assert_eq!(
            bookie_id(
                &env(&[
                    ("BK_useHostNameAsBookieID", "false"),
                    ("BK_bookiePort", "3182")
                ]),
                &host
            ),
            "127.9.0.2:3182"
        );
        assert_eq!(
            bookie_id(&env(&[("BK_advertisedAddress", "bk.example")]), &host),
            "bk.example:3181"
        );
        assert!(is_bookie("pravega/bookkeeper:0.9.0") && !is_bookie("pravega/bookkeeper:latest"));
    }
}
