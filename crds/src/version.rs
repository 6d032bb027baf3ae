//! The version rules: one pure decision over (old object, new object), shared by the webhook
//! (which answers `kubectl apply` at once) and the operator (which re-checks them and refuses
//! unsafe changes itself when the webhook is absent).
//!
//! Decisions use the *old* object's status: it is what the operator has observed and acted on.

use std::cmp::Ordering;
use std::fmt;

use semver::Version;

use crate::facts::StatusFacts;
use crate::spec_rules::{check_change, check_spec};
use crate::types::PravegaClusterSpec;

/// Longest version string accepted (an image tag is at most 128 characters).
pub const MAX_VERSION_LEN: usize = 128;

/// How an invalid version is shown in messages: at most this many characters of it.
const SHOWN_INPUT_LEN: usize = 64;

/// Why a version string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VersionError {
    /// The string is empty.
    #[error("spec.version is empty; use a semantic version such as \"0.5.0\" or \"0.5.0-1\"")]
    Empty,
    /// The string is longer than an image tag may be.
    #[error(
        "spec.version is {len} characters long; an image tag has at most {MAX_VERSION_LEN}, use a semantic version such as \"0.5.0\""
    )]
    TooLong {
        /// Length of the input.
        len: usize,
    },
    /// The string does not parse as semantic version 2.0.0.
    #[error(
        "spec.version \"{shown}\" is not a valid semantic version ({cause}); use MAJOR.MINOR.PATCH with an optional pre-release, e.g. \"0.5.0\" or \"0.5.0-1\"{hint}"
    )]
    NotSemver {
        /// The input, shortened for display.
        shown: String,
        /// What the parser said.
        cause: String,
        /// A hint for a common mistake, or "".
        hint: &'static str,
    },
    /// Build metadata (`+...`) cannot be part of an image tag.
    #[error(
        "spec.version \"{shown}\" has build metadata (\"+{build}\"), which an image tag cannot contain; use \"{without}\" or a pre-release such as \"{without}-1\""
    )]
    BuildMetadata {
        /// The input, shortened for display.
        shown: String,
        /// The build metadata.
        build: String,
        /// The version without it.
        without: String,
    },
}

pub(crate) fn shorten(input: &str) -> String {
    if input.chars().count() <= SHOWN_INPUT_LEN {
        input.to_owned()
    } else {
        let mut s: String = input.chars().take(SHOWN_INPUT_LEN).collect();
        s.push('…');
        s
    }
}

/// Parses `spec.version` as semantic version 2.0.0, the way the operator uses it: as the image
/// tag of every component. A leading `v` and build metadata are refused with a hint.
pub fn parse_version(input: &str) -> Result<Version, VersionError> {
    if input.is_empty() {
        return Err(VersionError::Empty);
    }
    let len = input.chars().count();
    if len > MAX_VERSION_LEN {
        return Err(VersionError::TooLong { len });
    }
    match Version::parse(input) {
        Ok(v) if !v.build.is_empty() => Err(VersionError::BuildMetadata {
            shown: shorten(input),
            build: v.build.to_string(),
            without: Version {
                build: semver::BuildMetadata::EMPTY,
                ..v.clone()
            }
            .to_string(),
        }),
        Ok(v) => Ok(v),
        Err(e) => {
            let hint = if input.starts_with(['v', 'V']) && Version::parse(&input[1..]).is_ok() {
                " (drop the leading \"v\")"
            } else if input.trim() != input {
                " (remove the surrounding spaces)"
            } else {
                ""
            };
            Err(VersionError::NotSemver {
                shown: shorten(input),
                cause: e.to_string(),
                hint,
            })
        }
    }
}

/// Semantic version precedence (SemVer 2.0.0 §11): major, minor, patch, then pre-release, where a
/// pre-release is lower than its release (`0.5.0-1` < `0.5.0`). Build metadata is ignored.
pub fn precedence(a: &Version, b: &Version) -> Ordering {
    (a.major, a.minor, a.patch)
        .cmp(&(b.major, b.minor, b.patch))
        .then_with(|| match (a.pre.is_empty(), b.pre.is_empty()) {
            (true, true) => Ordering::Equal,
            (true, false) => Ordering::Greater,
            (false, true) => Ordering::Less,
            (false, false) => a.pre.cmp(&b.pre),
        })
}

/// Why a change was denied. Stable identifiers for metrics, Events and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DenyReason {
    /// `spec.version` is not a usable semantic version.
    InvalidVersion,
    /// `spec.version` is lower than `status.currentVersion`.
    Downgrade,
    /// A version change while `Upgrading` is True.
    UpgradeInProgress,
    /// A version change while `RollbackInProgress` is True.
    RollbackInProgress,
    /// Another part of the spec is not usable.
    InvalidSpec,
}

impl DenyReason {
    /// CamelCase name, as used in metrics labels and Event reasons.
    pub fn as_str(self) -> &'static str {
        match self {
            DenyReason::InvalidVersion => "InvalidVersion",
            DenyReason::Downgrade => "Downgrade",
            DenyReason::UpgradeInProgress => "UpgradeInProgress",
            DenyReason::RollbackInProgress => "RollbackInProgress",
            DenyReason::InvalidSpec => "InvalidSpec",
        }
    }
}

impl fmt::Display for DenyReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The outcome of the rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// The change may go ahead; `warnings` are shown to the user by kubectl.
    Allow {
        /// Human-readable warnings (e.g. "this rolls the cluster back").
        warnings: Vec<String>,
    },
    /// The change is refused.
    Deny {
        /// Stable reason.
        reason: DenyReason,
        /// A message a person can act on: what was asked, why not, what is allowed now.
        message: String,
    },
}

impl Decision {
    fn allow() -> Self {
        Decision::Allow {
            warnings: Vec::new(),
        }
    }

    fn allow_with(warning: String) -> Self {
        Decision::Allow {
            warnings: vec![warning],
        }
    }

    fn deny(reason: DenyReason, message: impl Into<String>) -> Self {
        Decision::Deny {
            reason,
            message: message.into(),
        }
    }

    /// True for `Allow`.
    pub fn is_allowed(&self) -> bool {
        matches!(self, Decision::Allow { .. })
    }

    /// The message of a denial, if denied.
    pub fn message(&self) -> Option<&str> {
        match self {
            Decision::Deny { message, .. } => Some(message),
            Decision::Allow { .. } => None,
        }
    }

    /// The reason of a denial, if denied.
    pub fn reason(&self) -> Option<DenyReason> {
        match self {
            Decision::Deny { reason, .. } => Some(*reason),
            Decision::Allow { .. } => None,
        }
    }
}

/// The rules for a new `PravegaCluster` (admission CREATE): the whole spec is checked
/// ([`check_spec`]); an allowed spec may carry warnings.
pub fn validate_create(new: &PravegaClusterSpec) -> Decision {
    match check_spec(new) {
        Ok(warnings) => Decision::Allow { warnings },
        Err((reason, message)) => Decision::deny(reason, message),
    }
}

/// The rules for a change to an existing `PravegaCluster` (admission UPDATE), decided with what
/// the old object's status says.
///
/// An unchanged spec is always allowed, so that an object stored before a rule existed can
/// still be edited elsewhere (labels, annotations). Otherwise the new spec must pass
/// [`check_spec`] (an unchanged, already invalid version is not this change's fault), must not
/// change what holds data ([`check_change`]), and a new version must be allowed by
/// [`validate_version_change`].
pub fn validate_update(
    old: &PravegaClusterSpec,
    old_status: Option<StatusFacts<'_>>,
    new: &PravegaClusterSpec,
) -> Decision {
    if old == new {
        return Decision::allow();
    }
    let warnings = match check_spec(new) {
        Ok(warnings) => warnings,
        Err((DenyReason::InvalidVersion, _)) if old.version == new.version => Vec::new(),
        Err((reason, message)) => return Decision::deny(reason, message),
    };
    if let Err((reason, message)) = check_change(old, new) {
        return Decision::deny(reason, message);
    }
    let decision = if old.version == new.version {
        Decision::allow()
    } else {
        validate_version_change_paused(old_status, &new.version, new.upgrade.paused)
    };
    match decision {
        Decision::Allow { warnings: mut w } => {
            if old.version != new.version {
                let from = old_status
                    .and_then(|s| s.current_version)
                    .unwrap_or(&old.version);
                w.extend(version_jump_warnings(from, &new.version));
            }
            w.extend(warnings);
            w.extend(scale_warnings(old, old_status, new));
            Decision::Allow { warnings: w }
        }
        deny => deny,
    }
}

/// Warnings for a version change that the rules allow but that deserves a second look: a jump
/// of more than one minor version at once (`0.4.x` to `0.6.x`), a change of major version, or a
/// pre-release target (`0.5.0-rc1`). `from` is the version the cluster runs
/// (`status.currentVersion`), `to` the new `spec.version`. Nothing is said when either does not
/// parse (the rules refuse or ignore those), when `to` is not above `from` (a rollback or a
/// cancelled upgrade, which go back to a version that ran), or when they are equal.
///
/// Shown by the webhook as admission warnings (`kubectl apply` prints `Warning: ...`) and by
/// `kubectl pravega plan`.
pub fn version_jump_warnings(from: &str, to: &str) -> Vec<String> {
    let (Ok(from_v), Ok(to_v)) = (parse_version(from), parse_version(to)) else {
        return Vec::new();
    };
    if precedence(&to_v, &from_v) != Ordering::Greater {
        return Vec::new();
    }
    let mut out = Vec::new();
    if to_v.major != from_v.major {
        out.push(format!(
            "spec.version goes from {from} to {to}, a new major version: read the release notes of every version in between; upgrades are tested one minor version at a time"
        ));
    } else if to_v.minor > from_v.minor + 1 {
        let skipped: Vec<String> = (from_v.minor + 1..to_v.minor)
            .map(|m| format!("{}.{m}", from_v.major))
            .collect();
        out.push(format!(
            "spec.version goes from {from} to {to}, skipping {}: upgrades are tested one minor version at a time; consider upgrading to {} first",
            skipped.join(", "),
            skipped.first().map(String::as_str).unwrap_or_default()
        ));
    }
    if !to_v.pre.is_empty() {
        out.push(format!(
            "spec.version {to} is a pre-release of {}.{}.{} (\"-{}\"): check that its images are a build you mean to run",
            to_v.major, to_v.minor, to_v.patch, to_v.pre
        ));
    }
    out
}

/// Warnings for replica changes that are allowed but seldom meant: a large jump at once, fewer
/// bookies than the ensemble a ledger is written to, or a scale-up of bookies or Segment Stores
/// after a failed upgrade (new pods start from the failed version's template).
fn scale_warnings(
    old: &PravegaClusterSpec,
    old_status: Option<StatusFacts<'_>>,
    new: &PravegaClusterSpec,
) -> Vec<String> {
    let mut out = Vec::new();
    let pairs = [
        (
            "spec.bookkeeper.replicas",
            old.bookkeeper.replicas,
            new.bookkeeper.replicas,
        ),
        (
            "spec.pravega.controllerReplicas",
            old.pravega.controller_replicas,
            new.pravega.controller_replicas,
        ),
        (
            "spec.pravega.segmentStoreReplicas",
            old.pravega.segment_store_replicas,
            new.pravega.segment_store_replicas,
        ),
    ];
    for (field, before, after) in pairs {
        if after > before.saturating_mul(2) && after - before > 5 {
            out.push(format!(
                "{field} goes from {before} to {after} at once; every new pod (and its volumes) is created immediately"
            ));
        }
    }
    // BookKeeperConfig (pravega segmentstore/storage/impl): bookkeeper.ensemble.size, legacy
    // bookkeeper.bkEnsembleSize, default 3.
    let ensemble = ["bookkeeper.bkEnsembleSize", "bookkeeper.ensemble.size"]
        .iter()
        .find_map(|k| new.pravega.options.get(*k))
        .and_then(|v| v.trim().parse::<i32>().ok())
        .unwrap_or(3);
    if new.bookkeeper.replicas < ensemble && new.bookkeeper.replicas < old.bookkeeper.replicas {
        out.push(format!(
            "spec.bookkeeper.replicas {} is below the BookKeeper ensemble size {ensemble}: the Segment Stores cannot write new ledgers until there are {ensemble} bookies",
            new.bookkeeper.replicas
        ));
    }
    if old_status.is_some_and(|s| s.upgrade_failed)
        && (new.bookkeeper.replicas > old.bookkeeper.replicas
            || new.pravega.segment_store_replicas > old.pravega.segment_store_replicas)
    {
        out.push(
            "the last upgrade failed: new bookies and Segment Stores start at status.currentVersion, the last version that worked; roll back or forward before relying on them".to_owned(),
        );
    }
    out
}

/// The rules for moving a cluster whose observed status says `status` to `desired` (which must
/// differ from the version it was asked for before). Used by the webhook through
/// [`validate_update`] and by the operator before it starts a version change.
pub fn validate_version_change(status: Option<StatusFacts<'_>>, desired: &str) -> Decision {
    validate_version_change_paused(status, desired, false)
}

/// [`validate_version_change`] for a spec whose upgrade is `paused`: a paused upgrade may be
/// cancelled by setting `spec.version` back to `status.currentVersion`.
pub fn validate_version_change_paused(
    status: Option<StatusFacts<'_>>,
    desired: &str,
    paused: bool,
) -> Decision {
    let desired_version = match parse_version(desired) {
        Ok(v) => v,
        Err(e) => return Decision::deny(DenyReason::InvalidVersion, e.to_string()),
    };
    let Some(status) = status else {
        // Nothing deployed yet: any valid version will do.
        return Decision::allow();
    };
    let current = status.current_version;
    let target = status.target_version;
    let in_flight = |verb: &str| match (current, target) {
        (Some(c), Some(t)) => format!("{verb} from {c} to {t}"),
        (None, Some(t)) => format!("{verb} to {t}"),
        _ => verb.to_owned(),
    };

    if status.rolling_back {
        return Decision::deny(
            DenyReason::RollbackInProgress,
            format!(
                "cannot change spec.version to {desired} while the cluster is {}; wait until the rollback completes or fails (kubectl describe PravegaCluster shows its progress)",
                in_flight("rolling back")
            ),
        );
    }
    if status.upgrading && paused && current == Some(desired) {
        return Decision::allow_with(format!(
            "cancelling the paused upgrade{}: pods not yet replaced keep {desired}; components already moved are rolled back to {desired} in reverse order once spec.upgrade.paused is false",
            target.map(|t| format!(" to {t}")).unwrap_or_default()
        ));
    }
    if status.upgrading {
        let keep = target
            .map(|t| format!("; spec.version must stay {t}"))
            .unwrap_or_default();
        return Decision::deny(
            DenyReason::UpgradeInProgress,
            format!(
                "cannot change spec.version to {desired} while the cluster is {}; wait until the upgrade completes or fails{keep}",
                in_flight("upgrading")
            ),
        );
    }

    let Some(current) = current else {
        return Decision::allow();
    };
    let current_version = match parse_version(current) {
        Ok(v) => v,
        // A status written by someone else: nothing to compare against, let the operator judge.
        Err(_) => return Decision::allow(),
    };
    let failed = status.upgrade_failed;
    match precedence(&desired_version, &current_version) {
        Ordering::Less => Decision::deny(
            DenyReason::Downgrade,
            format!(
                "downgrading the cluster from {current} to {desired} is not supported; spec.version must be {current} or higher{}",
                if failed {
                    format!(" (set it to {current} to roll back the failed upgrade)")
                } else {
                    String::new()
                }
            ),
        ),
        Ordering::Equal if failed => Decision::allow_with(format!(
            "rolling back the failed upgrade{}: the operator restores {current} on the components that were changed, in reverse order",
            target.map(|t| format!(" to {t}")).unwrap_or_default()
        )),
        Ordering::Greater if failed && target == Some(desired) => Decision::allow_with(format!(
            "retrying the upgrade from {current} to {desired} that failed before; check status.conditions for what stopped it"
        )),
        _ => Decision::allow(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_jump_of_more_than_one_minor_version_is_warned_about() {
        let w = version_jump_warnings("0.4.0", "0.6.0");
        assert_eq!(
            w,
            vec![
                "spec.version goes from 0.4.0 to 0.6.0, skipping 0.5: upgrades are tested one minor version at a time; consider upgrading to 0.5 first"
                    .to_owned()
            ]
        );
        let w = version_jump_warnings("0.4.3", "0.7.1");
        assert_eq!(w.len(), 1);
        assert!(w[0].contains("skipping 0.5, 0.6"), "{w:?}");
        assert!(w[0].contains("upgrading to 0.5 first"), "{w:?}");
        let w = version_jump_warnings("0.13.0", "1.0.0");
        assert!(w[0].contains("a new major version"), "{w:?}");
    }

    #[test]
    fn one_minor_version_or_a_patch_is_not_warned_about() {
        for (from, to) in [
            ("0.4.0", "0.5.0"),
            ("0.4.0", "0.4.1"),
            ("0.4.0", "0.5.9"),
            ("0.5.0-1", "0.5.0"),
        ] {
            assert_eq!(
                version_jump_warnings(from, to),
                Vec::<String>::new(),
                "{from} -> {to}"
            );
        }
    }

    #[test]
    fn a_pre_release_target_is_warned_about() {
        let w = version_jump_warnings("0.4.0", "0.5.0-rc1");
        assert_eq!(
            w,
            vec![
                "spec.version 0.5.0-rc1 is a pre-release of 0.5.0 (\"-rc1\"): check that its images are a build you mean to run"
                    .to_owned()
            ]
        );
        // Both at once.
        assert_eq!(version_jump_warnings("0.4.0", "0.6.0-1").len(), 2);
    }

    #[test]
    fn going_back_or_unparsable_versions_get_no_jump_warning() {
        assert!(version_jump_warnings("0.6.0", "0.4.0").is_empty());
        assert!(version_jump_warnings("0.5.0-1", "0.5.0-1").is_empty());
        assert!(version_jump_warnings("0.6.0", "0.5.0-1").is_empty());
        assert!(version_jump_warnings("latest", "0.6.0").is_empty());
        assert!(version_jump_warnings("0.4.0", "v0.6.0").is_empty());
    }

    #[test]
    fn precedence_follows_semver() {
        let v = |s: &str| Version::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"));
        assert_eq!(precedence(&v("0.5.0-1"), &v("0.5.0")), Ordering::Less);
        assert_eq!(
            precedence(&v("0.5.0-alpha"), &v("0.5.0-alpha.1")),
            Ordering::Less
        );
        assert_eq!(precedence(&v("0.5.0-2"), &v("0.5.0-10")), Ordering::Less);
        assert_eq!(precedence(&v("0.5.0+a"), &v("0.5.0+b")), Ordering::Equal);
        assert_eq!(precedence(&v("1.0.0"), &v("0.9.9")), Ordering::Greater);
    }
}
