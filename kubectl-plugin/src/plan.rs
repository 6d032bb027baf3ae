//! `kubectl pravega plan NAME --to VERSION`: a dry run that changes nothing. The verdict comes
//! from the version rules the webhook applies ([`pravega_crds::validate_update`]), the pods and
//! their order from the operator's planner ([`planner::replacement_order`]), the template changes
//! from the image contract table ([`pravega_crds::contract`]). [`report`] is pure.

use std::fmt::Write as _;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;
use pravega_crds::contract::{BookieJvmVariables, ImageContract, contract};
use pravega_crds::duration::{format_duration, parse_duration};
use pravega_crds::names::{WorkloadKind, component_of};
use pravega_crds::types::DEFAULT_UPGRADE_TIMEOUT;
use pravega_crds::{Component, Decision, PravegaCluster, SafetyCheck, validate_update};
use pravega_operator::planner::{self, Observation};
use serde::Serialize;

use crate::render::{Style, human_duration, table};
use crate::status::title;

/// Everything `plan` shows; `-o json` prints it as is.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanReport {
    /// Namespace of the cluster.
    pub namespace: String,
    /// Name of the cluster.
    pub name: String,
    /// The version the cluster runs (`status.currentVersion`, else `spec.version`).
    pub from: String,
    /// The version asked for.
    pub to: String,
    /// What the version rules say.
    pub verdict: Verdict,
    /// Pods replaced, in order.
    pub replacements: Vec<Step>,
    /// Per component, what its pod template changes.
    pub changes: Vec<ComponentChange>,
    /// The checks that gate each step.
    pub gates: Vec<String>,
    /// How long it may take.
    pub estimate: Option<PlanEstimate>,
}

/// The version rules' answer, as the webhook would give it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Verdict {
    /// The change would be admitted.
    pub allowed: bool,
    /// The reason of a denial (`Downgrade`, `UpgradeInProgress`, ...).
    pub reason: Option<String>,
    /// The webhook's message for a denial.
    pub message: Option<String>,
    /// Warnings `kubectl` would print.
    pub warnings: Vec<String>,
}

/// One pod replacement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Step {
    /// `bookkeeper`, `controller` or `segmentstore`.
    pub component: String,
    /// The pod.
    pub pod: String,
    /// The version it runs now.
    pub from_version: Option<String>,
    /// `operator` (deleted one at a time) or `deployment` (the Deployment's rolling update).
    pub by: String,
}

/// What one component's pod template changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ComponentChange {
    /// `bookkeeper`, `controller` or `segmentstore`.
    pub component: String,
    /// Image now.
    pub image_from: String,
    /// Image after.
    pub image_to: String,
    /// What the new image's contract changes (release, Java, variables, health API...).
    pub contract: Vec<String>,
}

/// The duration estimate.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanEstimate {
    /// Seconds.
    pub seconds: u64,
    /// Mean seconds one pod of this cluster took from creation to Ready.
    pub seconds_per_pod: f64,
    /// How many pods that mean was taken over.
    pub sampled_pods: usize,
}

/// How the contract of the BookKeeper image changes from `a` to `b`.
pub fn bookie_contract_changes(a: &ImageContract, b: &ImageContract) -> Vec<String> {
    let (a, b) = (&a.bookie, &b.bookie);
    let mut out = Vec::new();
    if a.bookkeeper_release != b.bookkeeper_release {
        out.push(format!(
            "Apache BookKeeper {} -> {}",
            a.bookkeeper_release, b.bookkeeper_release
        ));
    }
    if a.java != b.java {
        out.push(format!("Java {} -> {}", a.java, b.java));
    }
    if a.config_from_env != b.config_from_env {
        out.push(if b.config_from_env {
            "spec.bookkeeper.options reach bk_server.conf (BK_<key> variables)".to_owned()
        } else {
            "spec.bookkeeper.options are no longer read (no BK_<key> variables)".to_owned()
        });
    }
    if a.autorecovery_switch != b.autorecovery_switch {
        out.push(format!(
            "auto-recovery switch {} -> {}",
            a.autorecovery_switch, b.autorecovery_switch
        ));
    }
    if a.jvm_variables != b.jvm_variables {
        let name = |v: BookieJvmVariables| match v {
            BookieJvmVariables::ExtraOnly => "BOOKIE_EXTRA_OPTS only",
            BookieJvmVariables::Split => {
                "BOOKIE_MEM_OPTS / BOOKIE_GC_OPTS / BOOKIE_GC_LOGGING_OPTS / BOOKIE_EXTRA_OPTS"
            }
        };
        out.push(format!(
            "JVM options in {} -> {}",
            name(a.jvm_variables),
            name(b.jvm_variables)
        ));
    }
    if a.aborts_on_unrunnable_env_line != b.aborts_on_unrunnable_env_line
        && b.aborts_on_unrunnable_env_line
    {
        out.push("bin/bookkeeper runs under `set -e`".to_owned());
    }
    let admin = |c: &pravega_crds::contract::BookieContract| match c.http_admin {
        None => "none",
        Some(h) if h.state_api => {
            "with the bookie state API (readiness via /api/v1/bookie/is_ready)"
        }
        Some(_) => "without the bookie state API",
    };
    if a.http_admin != b.http_admin {
        out.push(format!("HTTP admin server: {} -> {}", admin(a), admin(b)));
    }
    out
}

/// How the contract of the Pravega image changes from `a` to `b` for `component` (the
/// Controller or the Segment Store).
pub fn pravega_contract_changes(
    component: Component,
    a: &ImageContract,
    b: &ImageContract,
) -> Vec<String> {
    let (a, b) = (&a.pravega, &b.pravega);
    let mut out = Vec::new();
    if a.java != b.java {
        out.push(format!("Java {} -> {}", a.java, b.java));
    }
    if a.legacy_property_names != b.legacy_property_names {
        out.push(if b.legacy_property_names {
            "configuration keys back to their pre-0.8 names".to_owned()
        } else {
            "configuration keys get their 0.8 names (the old ones still work and win)".to_owned()
        });
    }
    if a.health != b.health {
        out.push(match b.health {
            Some(h) => format!("health API {} and {}", h.readiness_path, h.liveness_path),
            None => "no health API".to_owned(),
        });
    }
    if component == Component::SegmentStore {
        if a.cache_size_property != b.cache_size_property
            || a.cache_size_default != b.cache_size_default
            || a.cache_in_direct_memory != b.cache_in_direct_memory
        {
            let gib = |bytes: u64| bytes / (1024 * 1024 * 1024);
            out.push(format!(
                "cache {} ({} GiB{}) -> {} ({} GiB{})",
                a.cache_size_property,
                gib(a.cache_size_default),
                if a.cache_in_direct_memory {
                    ", direct memory"
                } else {
                    ", on disk"
                },
                b.cache_size_property,
                gib(b.cache_size_default),
                if b.cache_in_direct_memory {
                    ", direct memory"
                } else {
                    ", on disk"
                },
            ));
        }
        if !a.checks_direct_memory_at_start && b.checks_direct_memory_at_start {
            out.push(
                "exits at start unless -XX:MaxDirectMemorySize exceeds the cache size".to_owned(),
            );
        }
        if a.ecs != b.ecs {
            out.push("ECS tier 2 configured through EXTENDEDS3_CONFIGURI".to_owned());
        }
    }
    out
}

/// Mean seconds from creation to Ready over the pods that are Ready, and how many.
pub fn startup_time(pods: &[Pod]) -> Option<(f64, usize)> {
    let samples: Vec<f64> = pods
        .iter()
        .filter_map(|p| {
            let created = p.metadata.creation_timestamp.as_ref()?.0;
            let ready = pravega_operator::pods::ready_since(p)?;
            let ms = ready.as_millisecond() - created.as_millisecond();
            (ms >= 0).then(|| ms as f64 / 1000.0)
        })
        .collect();
    if samples.is_empty() {
        return None;
    }
    let n = samples.len();
    Some((samples.iter().sum::<f64>() / n as f64, n))
}

/// The checks that gate each step.
fn gates(cluster: &PravegaCluster) -> Vec<String> {
    let timeout = parse_duration(&cluster.spec.upgrade.timeout)
        .or_else(|_| parse_duration(DEFAULT_UPGRADE_TIMEOUT))
        .map(format_duration)
        .unwrap_or_else(|_| cluster.spec.upgrade.timeout.clone());
    let mut out = vec![
        "replacement Ready: the next pod is deleted only once the replaced one is Ready again and no pod of the component is terminating or missing".to_owned(),
        "Controller rollout complete: updated, ready and available replicas equal the desired count (maxUnavailable 0)".to_owned(),
        "no faulty pod at the new version (CrashLoopBackOff, ImagePullBackOff, ErrImagePull, InvalidImageName), else the upgrade stops with UpgradeFailed".to_owned(),
        format!("progress within spec.upgrade.timeout ({timeout}), else the upgrade stops with UpgradeFailed"),
        "spec.upgrade.paused is false (kubectl pravega pause holds the upgrade before the next pod)".to_owned(),
    ];
    let upgrade = &cluster.spec.upgrade;
    if let Some(soak) = &upgrade.pod_stabilization {
        out.push(format!(
            "soak time: each replacement stays Ready for {soak} before the next restart (spec.upgrade.podStabilization)"
        ));
    }
    if let Some(n) = upgrade.pause_after_pods {
        out.push(format!(
            "canary hold after {n} replaced pod(s) (spec.upgrade.pauseAfterPods)"
        ));
    }
    for check in upgrade.checks() {
        let what = match check {
            SafetyCheck::MembersStable => "before any restart, every other member is Ready",
            SafetyCheck::NoUnderReplicatedLedgers => {
                "before a bookie restart, BookKeeper lists no under-replicated ledgers (images 0.5+)"
            }
            SafetyCheck::BookiesWritable => {
                "before a bookie restart, every bookie is read-write (images 0.5+)"
            }
            SafetyCheck::PravegaHealthy => {
                "before a Controller or Segment Store restart, the others report ready on Pravega's health API (images 0.10+)"
            }
        };
        out.push(format!(
            "safety check {check}: {what} (spec.upgrade.safetyChecks)"
        ));
    }
    out
}

/// Builds the plan for moving `cluster` (with its `pods`) to `to`.
pub fn report(cluster: &PravegaCluster, pods: &[Pod], to: &str, now: Timestamp) -> PlanReport {
    let status = cluster.status.as_ref();
    let from = status
        .and_then(|s| s.current_version.clone())
        .unwrap_or_else(|| cluster.spec.version.clone());
    let mut new_spec = cluster.spec.clone();
    new_spec.version = to.to_owned();
    let verdict = match validate_update(&cluster.spec, status.map(|s| s.facts()), &new_spec) {
        Decision::Allow { warnings } => Verdict {
            allowed: true,
            reason: None,
            message: None,
            warnings,
        },
        Decision::Deny { reason, message } => Verdict {
            allowed: false,
            reason: Some(reason.as_str().to_owned()),
            message: Some(message),
            warnings: Vec::new(),
        },
    };
    let mut out = PlanReport {
        namespace: cluster.metadata.namespace.clone().unwrap_or_default(),
        name: cluster.metadata.name.clone().unwrap_or_default(),
        from: from.clone(),
        to: to.to_owned(),
        verdict,
        replacements: Vec::new(),
        changes: Vec::new(),
        gates: Vec::new(),
        estimate: None,
    };
    if !out.verdict.allowed {
        return out;
    }
    let observation = Observation {
        cluster,
        bookkeeper: None,
        controller: None,
        segmentstore: None,
        pods,
        now,
        checks: None,
    };
    out.replacements = planner::replacement_order(&observation, to)
        .into_iter()
        .map(|r| Step {
            component: r.component.as_str().to_owned(),
            pod: r.pod,
            from_version: r.from_version,
            by: match r.by {
                WorkloadKind::StatefulSet => "operator".to_owned(),
                WorkloadKind::Deployment => "deployment".to_owned(),
            },
        })
        .collect();
    let (a, b) = (contract(&from), contract(to));
    out.changes = Component::UPGRADE_ORDER
        .into_iter()
        .map(|c| ComponentChange {
            component: c.as_str().to_owned(),
            image_from: c.image(&cluster.spec, &from),
            image_to: c.image(&cluster.spec, to),
            contract: match c {
                Component::Bookkeeper => bookie_contract_changes(a, b),
                Component::Controller | Component::SegmentStore => {
                    pravega_contract_changes(c, a, b)
                }
            },
        })
        .filter(|c| c.image_from != c.image_to || !c.contract.is_empty())
        .collect();
    out.gates = gates(cluster);
    let members: Vec<Pod> = pods
        .iter()
        .filter(|p| {
            p.metadata
                .labels
                .as_ref()
                .is_some_and(|l| component_of(l).is_some())
        })
        .cloned()
        .collect();
    out.estimate = startup_time(&members).map(|(per_pod, sampled)| PlanEstimate {
        seconds: (per_pod * out.replacements.len() as f64).round() as u64,
        seconds_per_pod: (per_pod * 10.0).round() / 10.0,
        sampled_pods: sampled,
    });
    out
}

/// The plan as text.
pub fn render(p: &PlanReport, style: Style) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} {}/{}: {} -> {} (dry run: nothing is changed)",
        style.bold("Plan for PravegaCluster"),
        p.namespace,
        p.name,
        p.from,
        p.to
    );
    out.push('\n');
    if !p.verdict.allowed {
        let _ = writeln!(
            out,
            "Version rules:  {} ({})",
            style.red("denied"),
            p.verdict.reason.as_deref().unwrap_or("Denied")
        );
        let _ = writeln!(
            out,
            "  {}",
            p.verdict.message.as_deref().unwrap_or_default()
        );
        return out;
    }
    let _ = writeln!(out, "Version rules:  {}", style.green("allowed"));
    for w in &p.verdict.warnings {
        let _ = writeln!(out, "  {} {w}", style.yellow("Warning:"));
    }
    out.push('\n');
    if p.replacements.is_empty() {
        out.push_str("Pods replaced:  none (every pod already runs this version)\n");
    } else {
        let _ = writeln!(out, "Pods replaced, in order ({}):", p.replacements.len());
        let mut rows = vec![vec![
            "  STEP".to_owned(),
            "COMPONENT".to_owned(),
            "POD".to_owned(),
            "FROM".to_owned(),
            "BY".to_owned(),
        ]];
        for (i, s) in p.replacements.iter().enumerate() {
            let component = Component::from_name(&s.component)
                .map(title)
                .unwrap_or(s.component.as_str());
            rows.push(vec![
                format!("  {}", i + 1),
                component.to_owned(),
                s.pod.clone(),
                s.from_version.clone().unwrap_or_else(|| "-".to_owned()),
                if s.by == "deployment" {
                    "Deployment rolling update".to_owned()
                } else {
                    "operator: delete, then wait until Ready".to_owned()
                },
            ]);
        }
        out.push_str(&table(&rows));
    }
    if !p.changes.is_empty() {
        out.push_str("\nTemplate changes:\n");
        for c in &p.changes {
            let name = Component::from_name(&c.component)
                .map(title)
                .unwrap_or(c.component.as_str());
            let _ = writeln!(out, "  {name}:");
            let _ = writeln!(out, "    image {} -> {}", c.image_from, c.image_to);
            for line in &c.contract {
                let _ = writeln!(out, "    {line}");
            }
        }
    }
    if !p.gates.is_empty() {
        out.push_str("\nChecks gating each step:\n");
        for g in &p.gates {
            let _ = writeln!(out, "  - {g}");
        }
    }
    out.push('\n');
    match &p.estimate {
        Some(e) if !p.replacements.is_empty() => {
            let _ = writeln!(
                out,
                "Estimated duration: about {} ({} pods at {}s each: the mean time {} pods of this cluster took from creation to Ready)",
                human_duration(Duration::from_secs(e.seconds)),
                p.replacements.len(),
                e.seconds_per_pod,
                e.sampled_pods
            );
        }
        Some(_) => out.push_str("Estimated duration: nothing to replace\n"),
        None => out.push_str(
            "Estimated duration: unknown (no Ready pod of this cluster to measure start-up time on)\n",
        ),
    }
    out
}
