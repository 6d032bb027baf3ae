//! What a simulated container is doing, what it should be doing, and how it gets there:
//! crash-loop and image-pull schedules, injected failures, adoption of reported states.

use std::sync::{LazyLock, RwLock};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Container, ContainerStateTerminated, ContainerStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use regex::Regex;

use super::super::FailureMode;
use super::super::env::Env;
use super::super::images::{self, Outcome};
use super::super::logs::ContainerLogs;
use super::status::crashed;
use super::{PULL_BACKOFF_FOR, PULL_ERROR_FOR};

/// Accelerated crash-loop back-off: 1s, 1.5s, then every 2s.
pub(crate) fn crash_backoff(restarts: i32) -> Duration {
    match restarts {
        i32::MIN..=1 => Duration::from_millis(1000),
        2 => Duration::from_millis(1500),
        _ => Duration::from_millis(2000),
    }
}

/// For a container that has crash-looped for `elapsed`: how many crashes
/// happened, when the last one happened (offset from the start), and when
/// the next one is due.
pub(crate) fn crash_schedule(elapsed: Duration) -> (i32, Duration, Duration) {
    let mut crashes = 1;
    let mut at = Duration::ZERO;
    loop {
        let next = at + crash_backoff(crashes);
        if next > elapsed {
            return (crashes, at, next - elapsed);
        }
        at = next;
        crashes += 1;
        if crashes > 100_000 {
            return (crashes, at, crash_backoff(crashes));
        }
    }
}

/// For a container failing to pull for `elapsed`: whether it currently shows
/// `ErrImagePull` (else `ImagePullBackOff`), and the time to the next switch.
pub(crate) fn pull_schedule(elapsed: Duration) -> (bool, Duration) {
    let period = PULL_ERROR_FOR + PULL_BACKOFF_FOR;
    let nanos = elapsed.as_nanos() % period.as_nanos();
    let into = Duration::from_nanos(nanos as u64);
    if into < PULL_ERROR_FOR {
        (true, PULL_ERROR_FOR - into)
    } else {
        (false, period - into)
    }
}

pub(super) static IMAGE_REF: LazyLock<Option<Regex>> = LazyLock::new(|| {
    let component = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*";
    let domain_part = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])";
    let pattern = format!(
        r"^(?:{domain_part}(?:\.{domain_part})*(?::[0-9]+)?/)?{component}(?:/{component})*(?::[\w][\w.-]{{0,127}})?(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{{32,}})?$"
    );
    Regex::new(&pattern).ok()
});

/// Whether `image` is a valid image reference (`name[:tag][@digest]`).
pub(crate) fn is_valid_image(image: &str) -> bool {
    if image.is_empty() || image.len() > 255 {
        return false;
    }
    match IMAGE_REF.as_ref() {
        Some(re) => re.is_match(image),
        None => true,
    }
}

/// Options shared by the kubelets.
pub(crate) struct KubeletConfig {
    pub ready_delay: Duration,
    pub image_ready_delays: Vec<(Regex, Duration)>,
    pub failures: RwLock<Vec<(Regex, FailureMode)>>,
    pub termination_grace: Option<Duration>,
    pub nodes: usize,
}

impl KubeletConfig {
    pub(super) fn ready_delay_for(&self, image: &str) -> Duration {
        self.image_ready_delays
            .iter()
            .find(|(re, _)| re.is_match(image))
            .map(|(_, d)| *d)
            .unwrap_or(self.ready_delay)
    }

    pub(crate) fn failure_for(&self, image: &str) -> Option<FailureMode> {
        let rules = self.failures.read().unwrap_or_else(|e| e.into_inner());
        rules
            .iter()
            .find(|(re, _)| re.is_match(image))
            .map(|(_, m)| *m)
    }

    /// What a container should be doing: an injected pull failure first
    /// (images are pulled before anything else), then an environment that
    /// could not be resolved, then an injected crash, then what the image's
    /// contract makes of it.
    pub(super) fn want(
        &self,
        image: &str,
        env: Option<&Result<Env, String>>,
        outcome: Outcome,
    ) -> Want {
        let failure = self.failure_for(image);
        if failure == Some(FailureMode::ImagePull) {
            return Want::Pull;
        }
        if let Some(Err(message)) = env {
            return Want::ConfigError(message.clone());
        }
        if failure == Some(FailureMode::CrashLoop) {
            return Want::Crash(Exit::injected());
        }
        match outcome {
            Outcome::Run => Want::Run(None),
            Outcome::Crash { exit_code, message } => Want::Crash(Exit {
                code: exit_code,
                message: Some(message),
            }),
            Outcome::NeverReady { message } => Want::Run(Some(message)),
        }
    }

    /// A container starting (first start or in-place image change), after
    /// `restarts` restarts.
    pub(super) fn start(
        &self,
        image: &str,
        want: Want,
        now: Instant,
        wall: &Time,
        restarts: i32,
    ) -> Run {
        if !is_valid_image(image) {
            return Run::InvalidImage;
        }
        match want {
            Want::Pull => Run::ImagePull { since: now },
            Want::ConfigError(message) => Run::ConfigError { message },
            Want::Crash(exit) => Run::CrashLoop {
                since: now,
                since_wall: wall.clone(),
                base_restarts: 0,
                exit,
            },
            Want::Run(unready) => Run::Running {
                since: now,
                since_wall: wall.clone(),
                restarts,
                last_terminated: None,
                unready,
            },
        }
    }

    /// Rebuilds what a container is doing from its reported status (used
    /// when adopting pods that existed before this simulation started), and
    /// whether it had already passed its start (reported ready).
    pub(super) fn adopt_run(
        &self,
        container: &Container,
        status: Option<&ContainerStatus>,
        now: Instant,
        wall: &Time,
    ) -> (Run, bool) {
        let Some(cs) = status else {
            return (Run::Pending, false);
        };
        let state = cs.state.as_ref();
        if let Some(running) = state.and_then(|s| s.running.as_ref()) {
            let since_wall = running.started_at.clone().unwrap_or_else(|| wall.clone());
            let mut ago =
                Duration::from_secs((wall.0.as_second() - since_wall.0.as_second()).max(0) as u64);
            // A container reported ready stays ready (times are only
            // reported to the second).
            if cs.ready {
                let image = container.image.clone().unwrap_or_default();
                ago = ago.max(self.ready_delay_for(&image));
            }
            let run = Run::Running {
                since: now.checked_sub(ago).unwrap_or(now),
                since_wall,
                restarts: cs.restart_count,
                last_terminated: cs.last_state.as_ref().and_then(|l| l.terminated.clone()),
                unready: None,
            };
            return (run, cs.ready);
        }
        let waiting = state.and_then(|s| s.waiting.as_ref());
        let run = match waiting.and_then(|w| w.reason.as_deref()) {
            Some("CrashLoopBackOff") => {
                let last = cs.last_state.as_ref().and_then(|l| l.terminated.as_ref());
                Run::CrashLoop {
                    since: now,
                    since_wall: wall.clone(),
                    base_restarts: (cs.restart_count - 1).max(0),
                    exit: Exit {
                        code: last.map(|t| t.exit_code).unwrap_or(1),
                        message: last.and_then(|t| t.message.clone()),
                    },
                }
            }
            Some("ErrImagePull") | Some("ImagePullBackOff") => Run::ImagePull { since: now },
            Some("CreateContainerConfigError") => Run::ConfigError {
                message: waiting.and_then(|w| w.message.clone()).unwrap_or_default(),
            },
            _ => Run::Pending,
        };
        (run, false)
    }
}

/// Brings a started container towards what it should be doing.
pub(super) fn transition(run: &mut Run, want: Want, now: Instant, wall: &Time) {
    let next = match (&*run, want) {
        (Run::InvalidImage | Run::Pending, _) => return,
        // A running container's image is already pulled, and its
        // environment already resolved.
        (Run::Running { .. } | Run::ImagePull { .. }, Want::Pull) => return,
        (_, Want::Pull) => Run::ImagePull { since: now },
        (Run::ConfigError { .. } | Run::ImagePull { .. }, Want::ConfigError(message)) => {
            Run::ConfigError { message }
        }
        (_, Want::ConfigError(_)) => return,
        (Run::Running { restarts, .. }, Want::Crash(exit)) => Run::CrashLoop {
            since: now,
            since_wall: wall.clone(),
            base_restarts: *restarts,
            exit,
        },
        (
            Run::CrashLoop {
                since,
                since_wall,
                base_restarts,
                ..
            },
            Want::Crash(exit),
        ) => Run::CrashLoop {
            since: *since,
            since_wall: since_wall.clone(),
            base_restarts: *base_restarts,
            exit,
        },
        (Run::ImagePull { .. } | Run::ConfigError { .. }, Want::Crash(exit)) => Run::CrashLoop {
            since: now,
            since_wall: wall.clone(),
            base_restarts: 0,
            exit,
        },
        (
            Run::Running {
                since,
                since_wall,
                restarts,
                last_terminated,
                ..
            },
            Want::Run(unready),
        ) => Run::Running {
            since: *since,
            since_wall: since_wall.clone(),
            restarts: *restarts,
            last_terminated: last_terminated.clone(),
            unready,
        },
        (
            Run::CrashLoop {
                since,
                base_restarts,
                exit,
                ..
            },
            Want::Run(unready),
        ) => Run::Running {
            since: now,
            since_wall: wall.clone(),
            restarts: base_restarts + crash_schedule(now.saturating_duration_since(*since)).0,
            last_terminated: Some(crashed(wall, wall, exit)),
            unready,
        },
        (Run::ImagePull { .. } | Run::ConfigError { .. }, Want::Run(unready)) => Run::Running {
            since: now,
            since_wall: wall.clone(),
            restarts: 0,
            last_terminated: None,
            unready,
        },
    };
    *run = next;
}

/// How a crash-looping container's runs end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Exit {
    pub(super) code: i32,
    pub(super) message: Option<String>,
}

impl Exit {
    /// An injected crash: exit code 1, nothing said.
    pub(super) fn injected() -> Self {
        Exit {
            code: 1,
            message: None,
        }
    }
}

/// What a container should be doing (see [`KubeletConfig::want`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Want {
    Pull,
    ConfigError(String),
    Crash(Exit),
    /// Run, never becoming ready while there is a reason.
    Run(Option<String>),
}

/// What one simulated container is doing.
#[derive(Debug, Clone)]
pub(super) enum Run {
    /// Not started yet (brought forward in the same sync).
    Pending,
    Running {
        since: Instant,
        since_wall: Time,
        restarts: i32,
        last_terminated: Option<ContainerStateTerminated>,
        /// Why its readiness probe fails, if it does.
        unready: Option<String>,
    },
    CrashLoop {
        since: Instant,
        since_wall: Time,
        base_restarts: i32,
        exit: Exit,
    },
    ImagePull {
        since: Instant,
    },
    /// Its environment cannot be resolved: `CreateContainerConfigError`.
    ConfigError {
        message: String,
    },
    InvalidImage,
}

#[derive(Debug, Clone)]
pub(super) struct ContainerRun {
    pub(super) name: String,
    pub(super) image: String,
    pub(super) run: Run,
    /// The environment resolved when the container (last) started, or why
    /// it could not be; `None` until it is resolved.
    pub(super) env: Option<Result<Env, String>>,
    /// Whether it has passed its image's start checks since it last
    /// started: they are not repeated while it keeps running.
    pub(super) settled: bool,
    /// The readiness failure last reported (`Unhealthy` event).
    pub(super) reported_unready: Option<String>,
    /// What it wrote (`kubectl logs`).
    pub(super) logs: ContainerLogs,
}

impl ContainerRun {
    pub(super) fn new(name: String, image: String, run: Run, settled: bool) -> Self {
        ContainerRun {
            name,
            image,
            run,
            env: None,
            settled,
            reported_unready: None,
            logs: ContainerLogs::default(),
        }
    }

    /// Brings its log up to what it is doing; tells whether the log changed.
    pub(super) fn record_log(&mut self, spec: &Container) -> bool {
        match &self.run {
            Run::Running { since, .. } => self
                .logs
                .running(*since, || start_log(&self.image, self.env.as_ref(), spec)),
            Run::CrashLoop { exit, .. } => {
                let crash: Vec<String> = exit.message.iter().cloned().collect();
                self.logs
                    .crashing(&crash, || start_log(&self.image, self.env.as_ref(), spec))
            }
            _ => false,
        }
    }
}

/// What a container writes when it starts: see [`images::start_log`].
pub(super) fn start_log(
    image: &str,
    env: Option<&Result<Env, String>>,
    spec: &Container,
) -> Vec<String> {
    let args = spec.args.as_deref().unwrap_or_default();
    match env {
        Some(Ok(env)) => images::start_log(&images::Start {
            image,
            args,
            env,
            memory_limit: None,
            mounts: &[],
        }),
        _ => vec![images::starting_line(image, args)],
    }
}
