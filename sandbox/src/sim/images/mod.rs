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

mod bookie;
mod http;
mod jvm;
mod pravega;
#[cfg(test)]
mod tests;

use bookie::{BOOKIE_JVM_VARIABLES, bkenv_lines, bookie};
pub(crate) use bookie::{PodHost, bookie_id};
pub(crate) use http::{HttpApi, HttpServer, http_server};
use jvm::{java_opts, last_value};
use pravega::{controller, segment_store};

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

/// Whether `image` is a modelled bookie.
pub(crate) fn is_bookie(image: &str) -> bool {
    let (repo, tag) = repository_and_tag(image);
    repo == "bookkeeper" && tag.and_then(parse_version).is_some()
}
