//! The pod status a kubelet reports, and the events it records on the way.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{
    ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStateWaiting,
    ContainerStatus, HostIP, Pod, PodCondition, PodIP, PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::{Client, ResourceExt};
use serde_json::{Value, json};

use super::super::events;
use super::super::images;
use super::super::pod_http::ContainerNet;
use super::super::util::earliest;
use super::nodes::host_ip;
use super::run_state::{
    ContainerRun, Exit, KubeletConfig, Run, crash_backoff, crash_schedule, pull_schedule,
};
use super::{PodRun, add};

/// What the pod's network needs to know of its containers: whether each runs and is
/// ready (as `status` reports it), what it serves, and, for a bookie, its id.
pub(super) fn containers_net(pod: &Pod, run: &PodRun, status: &Value) -> Vec<ContainerNet> {
    let spec = pod.spec.as_ref();
    let ns = pod.namespace().unwrap_or_default();
    let name = pod.name_any();
    let host = images::PodHost {
        name: &name,
        namespace: &ns,
        hostname: spec.and_then(|s| s.hostname.as_deref()),
        subdomain: spec.and_then(|s| s.subdomain.as_deref()),
        pod_ip: run.pod_ip.as_deref(),
    };
    let statuses = status
        .get("containerStatuses")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    run.containers
        .iter()
        .map(|c| {
            let running = matches!(c.run, Run::Running { .. });
            let ready = statuses
                .iter()
                .find(|s| s.get("name").and_then(Value::as_str) == Some(c.name.as_str()))
                .and_then(|s| s.get("ready"))
                .and_then(Value::as_bool)
                .unwrap_or(false);
            let container_spec =
                spec.and_then(|s| s.containers.iter().find(|sc| sc.name == c.name));
            let args = container_spec
                .and_then(|sc| sc.args.as_deref())
                .unwrap_or_default();
            let env = match &c.env {
                Some(Ok(env)) => Some(env),
                _ => None,
            };
            let server = env.filter(|_| running).and_then(|env| {
                images::http_server(&images::Start {
                    image: &c.image,
                    args,
                    env,
                    memory_limit: None,
                    mounts: &[],
                })
                .transpose()
            });
            let bookie = images::is_bookie(&c.image);
            ContainerNet {
                name: c.name.clone(),
                running,
                ready,
                server,
                bookie,
                bookie_id: env
                    .filter(|_| bookie)
                    .map(|env| images::bookie_id(env, &host)),
            }
        })
        .collect()
}

pub(super) fn run_kind(run: &Run) -> &'static str {
    match run {
        Run::Pending => "pending",
        Run::Running { .. } => "running",
        Run::CrashLoop { .. } => "crashing",
        Run::ImagePull { .. } => "pulling",
        Run::ConfigError { .. } => "config",
        Run::InvalidImage => "invalid",
    }
}

/// The events a kubelet reports when a container enters a state.
pub(super) fn container_events(client: &Client, pod: &Pod, c: &ContainerRun) {
    let emit = |warning: bool, reason: &str, message: String| {
        events::emit(
            client,
            events::reference(pod),
            warning,
            reason,
            message,
            "kubelet",
        );
    };
    let (name, image) = (&c.name, &c.image);
    let pulled = || {
        emit(
            false,
            "Pulled",
            format!("Container image {image:?} already present on machine"),
        );
    };
    match &c.run {
        Run::Pending => {}
        Run::ConfigError { message } => {
            pulled();
            emit(true, "Failed", format!("Error: {message}"));
        }
        Run::Running { .. } => {
            pulled();
            emit(false, "Created", format!("Created container: {name}"));
            emit(false, "Started", format!("Started container {name}"));
        }
        Run::CrashLoop { .. } => {
            let pod_id = format!(
                "{}_{}({})",
                pod.name_any(),
                pod.namespace().unwrap_or_default(),
                pod.uid().unwrap_or_default()
            );
            emit(
                true,
                "BackOff",
                format!("Back-off restarting failed container {name} in pod {pod_id}"),
            );
        }
        Run::ImagePull { .. } => {
            emit(false, "Pulling", format!("Pulling image {image:?}"));
            emit(
                true,
                "Failed",
                format!("Failed to pull image {image:?}: not found"),
            );
            emit(true, "Failed", "Error: ErrImagePull".into());
        }
        Run::InvalidImage => {
            emit(
                true,
                "InspectFailed",
                format!(
                    "Failed to apply default image tag {image:?}: couldn't parse image name {image:?}: invalid reference format"
                ),
            );
            emit(true, "Failed", "Error: InvalidImageName".into());
        }
    }
}

pub(super) fn crashed(started: &Time, finished: &Time, exit: &Exit) -> ContainerStateTerminated {
    ContainerStateTerminated {
        exit_code: exit.code,
        reason: Some("Error".into()),
        message: exit.message.clone(),
        started_at: Some(started.clone()),
        finished_at: Some(finished.clone()),
        ..Default::default()
    }
}

/// Keeps a condition's previous transition time when its status did not change.
pub(super) fn pod_condition(
    type_: &str,
    ok: bool,
    reason: Option<&str>,
    message: Option<String>,
    prev: Option<&Value>,
    now: &Time,
) -> PodCondition {
    let status = if ok { "True" } else { "False" };
    let previous = prev
        .and_then(|p| p.get("conditions"))
        .and_then(|c| c.as_array())
        .and_then(|c| {
            c.iter()
                .find(|c| c.get("type").and_then(|t| t.as_str()) == Some(type_))
        })
        .filter(|c| c.get("status").and_then(|s| s.as_str()) == Some(status))
        .and_then(|c| c.get("lastTransitionTime").cloned())
        .and_then(|t| serde_json::from_value::<Time>(t).ok());
    PodCondition {
        type_: type_.into(),
        status: status.into(),
        reason: reason.map(str::to_string),
        message,
        last_transition_time: Some(previous.unwrap_or_else(|| now.clone())),
        last_probe_time: None,
        observed_generation: None,
    }
}

pub(super) fn unschedulable_status(pod: &Pod, nodes: usize, now: &Time) -> Value {
    let prev = pod
        .status
        .as_ref()
        .and_then(|s| serde_json::to_value(s).ok());
    let message = format!(
        "0/{nodes} nodes are available: {nodes} Insufficient cpu. preemption: 0/{nodes} nodes are available: {nodes} No preemption victims found for incoming pod."
    );
    let status = PodStatus {
        phase: Some("Pending".into()),
        conditions: Some(vec![pod_condition(
            "PodScheduled",
            false,
            Some("Unschedulable"),
            Some(message),
            prev.as_ref(),
            now,
        )]),
        qos_class: Some("BestEffort".into()),
        ..Default::default()
    };
    serde_json::to_value(status).unwrap_or(Value::Null)
}

pub(super) fn terminated_status(pod: &Pod, now: &Time) -> Value {
    let mut status = pod.status.clone().unwrap_or_default();
    if let Some(cs) = status.container_statuses.as_mut() {
        for c in cs.iter_mut() {
            let started = c
                .state
                .as_ref()
                .and_then(|s| s.running.as_ref())
                .and_then(|r| r.started_at.clone());
            c.state = Some(ContainerState {
                terminated: Some(ContainerStateTerminated {
                    exit_code: 0,
                    reason: Some("Completed".into()),
                    started_at: started,
                    finished_at: Some(now.clone()),
                    container_id: c.container_id.clone(),
                    ..Default::default()
                }),
                ..Default::default()
            });
            c.ready = false;
            c.started = Some(false);
        }
    }
    if let Some(conds) = status.conditions.as_mut() {
        for c in conds.iter_mut() {
            if (c.type_ == "Ready" || c.type_ == "ContainersReady") && c.status == "True" {
                c.status = "False".into();
                c.reason = Some("PodCompleted".into());
                c.last_transition_time = Some(now.clone());
            }
        }
    }
    json!({ "containerStatuses": status.container_statuses, "conditions": status.conditions })
}

/// The status of a scheduled, running pod, and when it next changes.
#[allow(clippy::too_many_arguments)]
pub(super) fn running_status(
    pod: &Pod,
    run: &PodRun,
    config: &KubeletConfig,
    node: usize,
    override_ready: Option<bool>,
    now: Instant,
    wall: &Time,
    prev: Option<&Value>,
) -> (Value, Option<Duration>) {
    let pod_name = pod.name_any();
    let ns = pod.namespace().unwrap_or_default();
    let uid = pod.uid().unwrap_or_default();
    let mut wake: Option<Duration> = None;
    let mut statuses = Vec::new();
    let mut all_ready = true;
    let mut all_running = true;
    let mut any_started = false;
    let mut unready = Vec::new();
    for c in &run.containers {
        let (state, last, ready, started, restarts) = match &c.run {
            Run::Pending => (
                ContainerState {
                    waiting: Some(ContainerStateWaiting {
                        reason: Some("ContainerCreating".into()),
                        message: None,
                    }),
                    ..Default::default()
                },
                None,
                false,
                false,
                0,
            ),
            Run::ConfigError { message } => (
                ContainerState {
                    waiting: Some(ContainerStateWaiting {
                        reason: Some("CreateContainerConfigError".into()),
                        message: Some(message.clone()),
                    }),
                    ..Default::default()
                },
                None,
                false,
                false,
                0,
            ),
            Run::Running {
                since,
                since_wall,
                restarts,
                last_terminated,
                unready,
            } => {
                any_started = true;
                let delay = config.ready_delay_for(&c.image);
                let up = now.saturating_duration_since(*since);
                let timer_ready = up >= delay;
                if !timer_ready && unready.is_none() {
                    wake = earliest(wake, Some(delay - up));
                }
                let ready = match override_ready {
                    Some(v) => v,
                    None => timer_ready && unready.is_none(),
                };
                (
                    ContainerState {
                        running: Some(ContainerStateRunning {
                            started_at: Some(since_wall.clone()),
                        }),
                        ..Default::default()
                    },
                    last_terminated.clone(),
                    ready,
                    true,
                    *restarts,
                )
            }
            Run::CrashLoop {
                since,
                since_wall,
                base_restarts,
                exit,
            } => {
                any_started = true;
                let elapsed = now.saturating_duration_since(*since);
                let (crashes, last_at, next) = crash_schedule(elapsed);
                wake = earliest(wake, Some(next));
                let at = add(since_wall, last_at);
                (
                    ContainerState {
                        waiting: Some(ContainerStateWaiting {
                            reason: Some("CrashLoopBackOff".into()),
                            message: Some(format!(
                                "back-off {}s restarting failed container={} pod={}_{}({})",
                                crash_backoff(crashes).as_secs().max(1),
                                c.name,
                                pod_name,
                                ns,
                                uid
                            )),
                        }),
                        ..Default::default()
                    },
                    Some(crashed(&at, &at, exit)),
                    false,
                    false,
                    base_restarts + crashes,
                )
            }
            Run::ImagePull { since } => {
                let (err, next) = pull_schedule(now.saturating_duration_since(*since));
                wake = earliest(wake, Some(next));
                let (reason, message) = if err {
                    (
                        "ErrImagePull",
                        format!("failed to pull and unpack image {:?}: not found", c.image),
                    )
                } else {
                    (
                        "ImagePullBackOff",
                        format!("Back-off pulling image {:?}", c.image),
                    )
                };
                (
                    ContainerState {
                        waiting: Some(ContainerStateWaiting {
                            reason: Some(reason.into()),
                            message: Some(message),
                        }),
                        ..Default::default()
                    },
                    None,
                    false,
                    false,
                    0,
                )
            }
            Run::InvalidImage => (
                ContainerState {
                    waiting: Some(ContainerStateWaiting {
                        reason: Some("InvalidImageName".into()),
                        message: Some(format!(
                            "Failed to apply default image tag {:?}: couldn't parse image name {:?}: invalid reference format",
                            c.image, c.image
                        )),
                    }),
                    ..Default::default()
                },
                None,
                false,
                false,
                0,
            ),
        };
        if !matches!(c.run, Run::Running { .. }) {
            all_running = false;
        }
        if !ready {
            all_ready = false;
            unready.push(c.name.clone());
        }
        statuses.push(ContainerStatus {
            name: c.name.clone(),
            image: c.image.clone(),
            image_id: if started
                || any_started
                    && !matches!(
                        c.run,
                        Run::ImagePull { .. }
                            | Run::InvalidImage
                            | Run::ConfigError { .. }
                            | Run::Pending
                    ) {
                format!("sandbox://{}", c.image)
            } else {
                String::new()
            },
            container_id: started.then(|| format!("sandbox://{uid}/{}", c.name)),
            ready,
            started: Some(started),
            restart_count: restarts,
            state: Some(state),
            last_state: last.map(|mut t| {
                t.container_id
                    .get_or_insert_with(|| format!("sandbox://{uid}/{}", c.name));
                ContainerState {
                    terminated: Some(t),
                    ..Default::default()
                }
            }),
            ..Default::default()
        });
    }
    let init_statuses: Option<Vec<ContainerStatus>> = pod
        .spec
        .as_ref()
        .and_then(|s| s.init_containers.as_ref())
        .filter(|i| !i.is_empty())
        .map(|inits| {
            inits
                .iter()
                .map(|c| {
                    let image = c.image.clone().unwrap_or_default();
                    let at = run.start_time.clone().unwrap_or_else(|| wall.clone());
                    ContainerStatus {
                        name: c.name.clone(),
                        image: image.clone(),
                        image_id: format!("sandbox://{image}"),
                        container_id: Some(format!("sandbox://{uid}/{}", c.name)),
                        ready: true,
                        started: Some(false),
                        restart_count: 0,
                        state: Some(ContainerState {
                            terminated: Some(ContainerStateTerminated {
                                exit_code: 0,
                                reason: Some("Completed".into()),
                                started_at: Some(at.clone()),
                                finished_at: Some(at),
                                ..Default::default()
                            }),
                            ..Default::default()
                        }),
                        ..Default::default()
                    }
                })
                .collect()
        });
    let containers_ready = all_ready && all_running;
    let not_ready_msg = (!unready.is_empty())
        .then(|| format!("containers with unready status: [{}]", unready.join(" ")));
    let containers_reason = (!containers_ready).then_some("ContainersNotReady");
    let pod_ready = containers_ready;
    let phase = if any_started { "Running" } else { "Pending" };
    let ip = run.pod_ip.clone();
    let conditions = vec![
        pod_condition("PodReadyToStartContainers", true, None, None, prev, wall),
        pod_condition("Initialized", true, None, None, prev, wall),
        pod_condition(
            "Ready",
            pod_ready,
            containers_reason,
            not_ready_msg.clone(),
            prev,
            wall,
        ),
        pod_condition(
            "ContainersReady",
            containers_ready,
            containers_reason,
            not_ready_msg,
            prev,
            wall,
        ),
        pod_condition("PodScheduled", true, None, None, prev, wall),
    ];
    let status = PodStatus {
        phase: Some(phase.into()),
        conditions: Some(conditions),
        host_ip: Some(host_ip(node)),
        host_ips: Some(vec![HostIP { ip: host_ip(node) }]),
        pod_ip: ip.clone(),
        pod_ips: ip.map(|ip| vec![PodIP { ip }]),
        start_time: run.start_time.clone(),
        container_statuses: Some(statuses),
        init_container_statuses: init_statuses,
        qos_class: Some("BestEffort".into()),
        ..Default::default()
    };
    (serde_json::to_value(status).unwrap_or(Value::Null), wake)
}
