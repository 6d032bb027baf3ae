//! `kubectl pravega status`: what a cluster runs, how far its upgrade is, what holds it, how long
//! it has taken and may still take, and its last Events. [`report`] is a pure function of what was
//! read; [`render`] draws it.

use std::fmt::Write as _;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::jiff::Timestamp;
use pravega_crds::types::ComponentProgress;
use pravega_crds::{Component, ConditionType, PravegaCluster, reasons};
use pravega_operator::planner::{self, Observation};
use serde::Serialize;
use serde_json::Value;

use crate::render::{Style, bar, human_duration, table};

/// How many Events `status` shows.
pub const EVENTS_SHOWN: usize = 5;

/// Everything `status` shows; `-o json` prints it as is.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusReport {
    /// Namespace of the cluster.
    pub namespace: String,
    /// Name of the cluster.
    pub name: String,
    /// `status.currentVersion`: what every member ran when last agreed.
    pub version: Option<String>,
    /// `spec.version`.
    pub desired_version: String,
    /// `status.targetVersion`, while a version change is in flight.
    pub target_version: Option<String>,
    /// One word: `Ready`, `Upgrading`, `Paused`, `RollingBack`, `Restarting`, `Failed`,
    /// `Deploying` or `NotReady`.
    pub state: String,
    /// The version the component counts below are measured against.
    pub progress_version: String,
    /// Per component, in upgrade order: pods updated, Ready, and desired.
    pub components: Vec<ComponentLine>,
    /// What holds the upgrade now, if anything.
    pub blocker: Option<Blocker>,
    /// The `Error` condition, when it is True.
    pub error: Option<Blocker>,
    /// `status.upgrade.startedAt`, while a version change is in flight.
    pub started_at: Option<String>,
    /// Seconds since `startedAt`.
    pub elapsed_seconds: Option<u64>,
    /// Time left, from this upgrade's observed pace.
    pub estimate: Option<Estimate>,
    /// The last Events about the cluster, oldest first.
    pub events: Vec<EventLine>,
}

/// Progress of one component.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ComponentLine {
    /// `bookkeeper`, `controller` or `segmentstore`.
    pub component: String,
    /// `BookKeeper`, `Controller` or `Segment Store`.
    pub title: String,
    /// Pods at the version measured against.
    pub updated: i32,
    /// Pods Ready.
    pub ready: i32,
    /// Desired pods.
    pub target: i32,
}

/// A reason and message, with when it started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Blocker {
    /// CamelCase reason.
    pub reason: String,
    /// What a person reads.
    pub message: String,
    /// Since when (RFC 3339), when known.
    pub since: Option<String>,
    /// Where it was read: `status.upgrade.blockedBy` or the name of a condition.
    pub source: String,
}

/// An estimate of the time an upgrade still needs.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Estimate {
    /// Seconds left.
    pub remaining_seconds: u64,
    /// Mean seconds per pod so far.
    pub seconds_per_pod: f64,
    /// Pods at the new version.
    pub pods_done: i32,
    /// Pods still to move.
    pub pods_left: i32,
}

/// One Event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EventLine {
    /// `Normal` or `Warning`.
    #[serde(rename = "type")]
    pub type_: String,
    /// CamelCase reason.
    pub reason: String,
    /// The Event's note.
    pub message: String,
    /// When it was last seen (RFC 3339).
    pub time: Option<String>,
    /// Seconds since then.
    pub age_seconds: Option<u64>,
}

/// The display name of a component.
pub fn title(c: Component) -> &'static str {
    match c {
        Component::Bookkeeper => "BookKeeper",
        Component::Controller => "Controller",
        Component::SegmentStore => "Segment Store",
    }
}

/// The time left for an upgrade that took `elapsed` to move `done` of `total` pods, at the pace
/// observed so far (the mean time per moved pod). `None` until a first pod has moved.
pub fn estimate(elapsed: Duration, done: i32, total: i32) -> Option<Estimate> {
    if done <= 0 || total <= 0 {
        return None;
    }
    let done = done.min(total);
    let left = total - done;
    let per_pod = elapsed.as_secs_f64() / f64::from(done);
    let remaining = (per_pod * f64::from(left)).round();
    Some(Estimate {
        // Non-negative and bounded by elapsed * total.
        remaining_seconds: remaining as u64,
        seconds_per_pod: (per_pod * 10.0).round() / 10.0,
        pods_done: done,
        pods_left: left,
    })
}

fn seconds_between(from: Timestamp, to: Timestamp) -> u64 {
    u64::try_from(
        to.as_millisecond()
            .saturating_sub(from.as_millisecond())
            .max(0)
            / 1000,
    )
    .unwrap_or(0)
}

fn event_time(e: &Event) -> Option<Timestamp> {
    e.series
        .as_ref()
        .map(|s| s.last_observed_time.0)
        .or_else(|| e.event_time.as_ref().map(|t| t.0))
        .or_else(|| e.deprecated_last_timestamp.as_ref().map(|t| t.0))
        .or_else(|| e.metadata.creation_timestamp.as_ref().map(|t| t.0))
}

/// The last [`EVENTS_SHOWN`] of `events`, oldest first.
pub fn last_events(events: &[Event], now: Timestamp) -> Vec<EventLine> {
    let mut timed: Vec<(Option<Timestamp>, &Event)> =
        events.iter().map(|e| (event_time(e), e)).collect();
    timed.sort_by_key(|(t, _)| *t);
    let skip = timed.len().saturating_sub(EVENTS_SHOWN);
    timed
        .into_iter()
        .skip(skip)
        .map(|(t, e)| EventLine {
            type_: e.type_.clone().unwrap_or_else(|| "Normal".to_owned()),
            reason: e.reason.clone().unwrap_or_default(),
            message: e.note.clone().unwrap_or_default(),
            time: t.map(|t| t.to_string()),
            age_seconds: t.map(|t| seconds_between(t, now)),
        })
        .collect()
}

/// `status.upgrade.blockedBy` (`{reason, message, since}`), read from the raw object: a field
/// that newer operators write; absent otherwise.
fn blocked_by(raw: &Value) -> Option<Blocker> {
    let b = raw.pointer("/status/upgrade/blockedBy")?;
    let reason = b.get("reason")?.as_str()?.to_owned();
    Some(Blocker {
        reason,
        message: b
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        since: b.get("since").and_then(Value::as_str).map(str::to_owned),
        source: "status.upgrade.blockedBy".to_owned(),
    })
}

/// Builds the report from the cluster as read (`raw`, and decoded as `cluster`), its pods and
/// Events, at `now`.
pub fn report(
    raw: &Value,
    cluster: &PravegaCluster,
    pods: &[Pod],
    events: &[Event],
    now: Timestamp,
) -> StatusReport {
    let status = cluster.status.clone().unwrap_or_default();
    let in_flight = status.is_condition_true(ConditionType::Upgrading)
        || status.is_condition_true(ConditionType::RollbackInProgress);
    let upgrade = status.upgrade.as_ref();
    let progress_version = upgrade
        .filter(|_| in_flight)
        .and_then(|u| u.to_version.clone())
        .unwrap_or_else(|| cluster.spec.version.clone());
    let observation = Observation {
        cluster,
        bookkeeper: None,
        controller: None,
        segmentstore: None,
        pods,
        now,
        checks: None,
    };
    let progress: Vec<ComponentProgress> = planner::progress(&observation, &progress_version);
    let components: Vec<ComponentLine> = Component::UPGRADE_ORDER
        .into_iter()
        .zip(&progress)
        .map(|(c, p)| ComponentLine {
            component: c.as_str().to_owned(),
            title: title(c).to_owned(),
            updated: p.updated,
            ready: p.ready,
            target: p.target,
        })
        .collect();

    let failed = [
        reasons::UPGRADE_FAILED,
        reasons::ROLLBACK_FAILED,
        reasons::RESTART_FAILED,
    ]
    .iter()
    .any(|r| status.has_error_reason(r));
    let upgrading = status.condition(ConditionType::Upgrading);
    let state = if status.is_condition_true(ConditionType::RollbackInProgress) {
        "RollingBack"
    } else if failed {
        "Failed"
    } else if let Some(c) = upgrading.filter(|c| c.is_true()) {
        match c.reason() {
            reasons::PAUSED => "Paused",
            reasons::ROLLING_RESTART => "Restarting",
            _ => "Upgrading",
        }
    } else if status.current_version.is_none() {
        "Deploying"
    } else if status.is_condition_true(ConditionType::Ready) {
        "Ready"
    } else {
        "NotReady"
    };

    let error = status
        .condition(ConditionType::Error)
        .filter(|c| c.is_true())
        .map(|c| Blocker {
            reason: c.reason().to_owned(),
            message: c.message().to_owned(),
            since: c.last_transition_time.as_ref().map(|t| t.0.to_string()),
            source: "Error condition".to_owned(),
        });
    let blocker = blocked_by(raw).or_else(|| {
        let c = [ConditionType::RollbackInProgress, ConditionType::Upgrading]
            .into_iter()
            .filter_map(|t| status.condition(t))
            .find(|c| c.is_true())?;
        Some(Blocker {
            reason: c.reason().to_owned(),
            message: c.message().to_owned(),
            since: c.last_transition_time.as_ref().map(|t| t.0.to_string()),
            source: format!("{} condition", c.type_.as_str()),
        })
    });

    let started = upgrade
        .filter(|_| in_flight)
        .and_then(|u| u.started_at.as_ref())
        .map(|t| t.0);
    let elapsed_seconds = started.map(|t| seconds_between(t, now));
    let estimate = elapsed_seconds.and_then(|secs| {
        let done: i32 = components.iter().map(|c| c.updated.min(c.target)).sum();
        let total: i32 = components.iter().map(|c| c.target).sum();
        estimate(Duration::from_secs(secs), done, total)
    });

    StatusReport {
        namespace: cluster.metadata.namespace.clone().unwrap_or_default(),
        name: cluster.metadata.name.clone().unwrap_or_default(),
        version: status.current_version.clone(),
        desired_version: cluster.spec.version.clone(),
        target_version: status.target_version.clone(),
        state: state.to_owned(),
        progress_version,
        components,
        blocker,
        error,
        started_at: started.map(|t| t.to_string()),
        elapsed_seconds,
        estimate,
        events: last_events(events, now),
    }
}

impl StatusReport {
    /// The report without what changes with the clock alone (ages, elapsed time, the
    /// estimate): two reports with the same key show the same state.
    pub fn state_key(&self) -> StatusReport {
        let mut key = self.clone();
        key.elapsed_seconds = None;
        key.estimate = None;
        for e in &mut key.events {
            e.age_seconds = None;
        }
        key
    }
}

fn paint_state(style: Style, state: &str) -> String {
    match state {
        "Ready" => style.green(state),
        "Failed" => style.red(state),
        "Paused" | "NotReady" => style.yellow(state),
        _ => style.bold(state),
    }
}

/// The report as text.
pub fn render(r: &StatusReport, style: Style) -> String {
    let mut out = String::new();
    let dash = "-".to_owned();
    let _ = writeln!(
        out,
        "{} {}/{}",
        style.bold("PravegaCluster"),
        r.namespace,
        r.name
    );
    let _ = writeln!(
        out,
        "Version:          {}",
        r.version.as_ref().unwrap_or(&dash)
    );
    let _ = writeln!(out, "Desired version:  {}", r.desired_version);
    let _ = writeln!(out, "State:            {}", paint_state(style, &r.state));
    if let Some(secs) = r.elapsed_seconds {
        let _ = writeln!(
            out,
            "Elapsed:          {} (since {})",
            human_duration(Duration::from_secs(secs)),
            r.started_at.as_ref().unwrap_or(&dash)
        );
        let eta = match &r.estimate {
            Some(e) if e.pods_left == 0 => "finishing".to_owned(),
            Some(e) => format!(
                "about {} ({} pods left at {}s per pod so far)",
                human_duration(Duration::from_secs(e.remaining_seconds)),
                e.pods_left,
                e.seconds_per_pod
            ),
            None => "unknown until a first pod is replaced".to_owned(),
        };
        let _ = writeln!(out, "Time left:        {eta}");
    }
    out.push('\n');
    let mut rows = vec![vec![
        "COMPONENT".to_owned(),
        format!("AT {}", r.progress_version),
        "UPDATED".to_owned(),
        "READY".to_owned(),
        "TARGET".to_owned(),
    ]];
    for c in &r.components {
        let updated = format!("{}/{}", c.updated, c.target);
        rows.push(vec![
            c.title.clone(),
            bar(c.updated, c.target, 20),
            updated,
            format!("{}/{}", c.ready, c.target),
            c.target.to_string(),
        ]);
    }
    out.push_str(&table(&rows));
    if let Some(b) = &r.blocker {
        let _ = writeln!(
            out,
            "\nBlocked by:       {}: {}{}",
            style.yellow(&b.reason),
            b.message,
            b.since
                .as_ref()
                .map(|s| format!(" (since {s})"))
                .unwrap_or_default()
        );
    }
    if let Some(e) = &r.error {
        let _ = writeln!(
            out,
            "\nError:            {}: {}",
            style.red(&e.reason),
            e.message
        );
    }
    out.push('\n');
    if r.events.is_empty() {
        out.push_str("Events:           <none>\n");
    } else {
        out.push_str("Events:\n");
        let mut rows = vec![vec![
            "  TYPE".to_owned(),
            "REASON".to_owned(),
            "AGE".to_owned(),
            "MESSAGE".to_owned(),
        ]];
        for e in &r.events {
            rows.push(vec![
                format!("  {}", e.type_),
                e.reason.clone(),
                e.age_seconds
                    .map(|s| human_duration(Duration::from_secs(s)))
                    .unwrap_or_else(|| "-".to_owned()),
                e.message.clone(),
            ]);
        }
        out.push_str(&table(&rows));
    }
    out
}
