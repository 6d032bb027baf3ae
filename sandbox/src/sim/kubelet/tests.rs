//! The kubelet's state machine, without an API server.

use super::run_state::*;
use super::status::*;
use super::*;
use crate::sim::FailureMode;
use crate::sim::env::Env;
use crate::sim::images::Outcome;
use crate::sim::util::now_time;
use k8s_openapi::api::core::v1::{Container, ContainerStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use regex::Regex;
use serde_json::json;
use std::sync::RwLock;

#[test]
fn crash_backoff_is_accelerated_and_bounded() {
    assert_eq!(crash_backoff(1), Duration::from_millis(1000));
    assert_eq!(crash_backoff(2), Duration::from_millis(1500));
    assert_eq!(crash_backoff(50), Duration::from_millis(2000));
    let (n, at, next) = crash_schedule(Duration::ZERO);
    assert_eq!(
        (n, at, next),
        (1, Duration::ZERO, Duration::from_millis(1000))
    );
    let (n, at, next) = crash_schedule(Duration::from_millis(1200));
    assert_eq!(
        (n, at, next),
        (2, Duration::from_millis(1000), Duration::from_millis(1300))
    );
    let (n, _, _) = crash_schedule(Duration::from_millis(2500));
    assert_eq!(n, 3);
    // Restarts only ever grow with time.
    let mut last = 0;
    for ms in (0..20_000).step_by(250) {
        let (n, at, next) = crash_schedule(Duration::from_millis(ms));
        assert!(n >= last);
        assert!(at <= Duration::from_millis(ms));
        assert!(next > Duration::ZERO && next <= Duration::from_millis(2000));
        last = n;
    }
    assert!(last >= 10);
}

proptest::proptest! {
    /// Restarts never go down as time passes, the last crash is in the
    /// past and the next one comes within the back-off cap.
    #[test]
    fn crash_schedule_is_monotonic_and_bounded(a in 0u64..120_000, b in 0u64..120_000) {
        let (early, late) = (a.min(b), a.max(b));
        let (n1, at1, next1) = crash_schedule(Duration::from_millis(early));
        let (n2, _, _) = crash_schedule(Duration::from_millis(late));
        proptest::prop_assert!(n1 >= 1 && n1 <= n2);
        proptest::prop_assert!(at1 <= Duration::from_millis(early));
        proptest::prop_assert!(next1 > Duration::ZERO && next1 <= Duration::from_millis(2000));
    }
}

#[test]
fn pull_errors_alternate() {
    assert_eq!(pull_schedule(Duration::ZERO), (true, PULL_ERROR_FOR));
    assert!(!pull_schedule(Duration::from_millis(1200)).0);
    assert!(pull_schedule(Duration::from_millis(2600)).0);
}

fn config(failures: Vec<(Regex, FailureMode)>) -> KubeletConfig {
    KubeletConfig {
        ready_delay: Duration::from_millis(300),
        image_ready_delays: vec![(Regex::new("^slow").unwrap(), Duration::from_secs(5))],
        failures: RwLock::new(failures),
        termination_grace: Some(Duration::from_millis(200)),
        nodes: 3,
    }
}

fn pod(image: &str) -> Pod {
    Pod {
        metadata: ObjectMeta {
            name: Some("p".into()),
            namespace: Some("default".into()),
            uid: Some("u1".into()),
            ..Default::default()
        },
        spec: Some(k8s_openapi::api::core::v1::PodSpec {
            containers: vec![Container {
                name: "main".into(),
                image: Some(image.into()),
                ..Default::default()
            }],
            ..Default::default()
        }),
        status: None,
    }
}

fn run_of(image: &str, run: Run) -> PodRun {
    PodRun {
        node: Some(1),
        pod_ip: Some("10.244.1.2".into()),
        start_time: Some(now_time()),
        containers: vec![ContainerRun::new("main".into(), image.into(), run, false)],
        ..Default::default()
    }
}

fn condition(status: &Value, type_: &str) -> String {
    status["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == type_)
        .map(|c| c["status"].as_str().unwrap().to_string())
        .unwrap()
}

#[test]
fn pods_become_ready_after_the_ready_delay_unless_overridden() {
    let cfg = config(vec![]);
    let wall = now_time();
    let start = Instant::now();
    let running = Run::Running {
        since: start,
        since_wall: wall.clone(),
        restarts: 0,
        last_terminated: None,
        unready: None,
    };
    let run = run_of("nginx:1", running);
    let p = pod("nginx:1");
    let at = |ms| start + Duration::from_millis(ms);

    let (st, wake) = running_status(&p, &run, &cfg, 1, None, at(100), &wall, None);
    assert_eq!(st["phase"], "Running");
    assert_eq!(condition(&st, "Ready"), "False");
    assert_eq!(condition(&st, "PodScheduled"), "True");
    assert_eq!(st["containerStatuses"][0]["started"], true);
    assert_eq!(st["containerStatuses"][0]["ready"], false);
    assert!(st["containerStatuses"][0]["state"]["running"].is_object());
    assert_eq!(
        (st["hostIP"].as_str(), st["podIP"].as_str()),
        (Some("172.18.0.3"), Some("10.244.1.2"))
    );
    assert_eq!(wake, Some(Duration::from_millis(200)));

    let (st, wake) = running_status(&p, &run, &cfg, 1, None, at(300), &wall, None);
    assert_eq!(condition(&st, "Ready"), "True");
    assert_eq!(condition(&st, "ContainersReady"), "True");
    assert_eq!(wake, None);

    let (st, _) = running_status(&p, &run, &cfg, 1, Some(false), at(400), &wall, None);
    assert_eq!(condition(&st, "Ready"), "False");
    let (st, _) = running_status(&p, &run, &cfg, 1, Some(true), at(10), &wall, None);
    assert_eq!(condition(&st, "Ready"), "True");

    // Per-image delays.
    assert_eq!(cfg.ready_delay_for("slow/app:1"), Duration::from_secs(5));
    assert_eq!(cfg.ready_delay_for("nginx:1"), Duration::from_millis(300));
}

#[test]
fn crash_loops_report_back_off_and_growing_restarts() {
    let cfg = config(vec![]);
    let wall = now_time();
    let start = Instant::now();
    let run = run_of(
        "app:bad",
        Run::CrashLoop {
            since: start,
            since_wall: wall.clone(),
            base_restarts: 0,
            exit: Exit::injected(),
        },
    );
    let p = pod("app:bad");
    let (st, wake) = running_status(&p, &run, &cfg, 0, None, start, &wall, None);
    let cs = &st["containerStatuses"][0];
    assert_eq!(cs["state"]["waiting"]["reason"], "CrashLoopBackOff");
    assert_eq!(cs["restartCount"], 1);
    assert_eq!(cs["lastState"]["terminated"]["exitCode"], 1);
    assert_eq!(cs["lastState"]["terminated"]["reason"], "Error");
    assert_eq!(cs["ready"], false);
    assert_eq!(condition(&st, "Ready"), "False");
    assert_eq!(wake, Some(Duration::from_millis(1000)));
    let (st, _) = running_status(
        &p,
        &run,
        &cfg,
        0,
        None,
        start + Duration::from_secs(5),
        &wall,
        None,
    );
    assert_eq!(st["containerStatuses"][0]["restartCount"], 4);
}

#[test]
fn failure_rules_match_in_order_and_transitions_follow_them() {
    let cfg = config(vec![
        (Regex::new(":1$").unwrap(), FailureMode::ImagePull),
        (Regex::new("^app").unwrap(), FailureMode::CrashLoop),
    ]);
    assert_eq!(cfg.failure_for("app:1"), Some(FailureMode::ImagePull));
    assert_eq!(cfg.failure_for("app:2"), Some(FailureMode::CrashLoop));
    assert_eq!(cfg.failure_for("web:2"), None);

    let k = cfg;
    let wall = now_time();
    let now = Instant::now();
    let mut c = ContainerRun::new(
        "main".into(),
        "app:2".into(),
        Run::Running {
            since: now,
            since_wall: wall.clone(),
            restarts: 2,
            last_terminated: None,
            unready: None,
        },
        true,
    );
    let apply = |c: &mut ContainerRun, at: Instant| {
        let want = k.want(&c.image, None, Outcome::Run);
        transition(&mut c.run, want, at, &wall);
    };
    apply(&mut c, now);
    assert!(matches!(
        c.run,
        Run::CrashLoop {
            base_restarts: 2,
            ..
        }
    ));
    k.failures.write().unwrap().clear();
    apply(&mut c, now + Duration::from_millis(1500));
    match &c.run {
        Run::Running {
            restarts,
            last_terminated,
            ..
        } => {
            assert_eq!(*restarts, 4);
            assert!(last_terminated.is_some());
        }
        other => panic!("expected running, got {other:?}"),
    }
}

#[test]
fn injected_failures_come_before_the_environment_and_the_image_contract() {
    let k = config(vec![
        (Regex::new(":pull$").unwrap(), FailureMode::ImagePull),
        (Regex::new(":crash$").unwrap(), FailureMode::CrashLoop),
    ]);
    let crash = Outcome::Crash {
        exit_code: 127,
        message: "m".into(),
    };
    let missing: Result<Env, String> = Err("configmap \"c\" not found".into());
    let ok: Result<Env, String> = Ok(Env::new());
    assert_eq!(k.want("a:pull", Some(&missing), crash.clone()), Want::Pull);
    assert_eq!(
        k.want("a:crash", Some(&missing), crash.clone()),
        Want::ConfigError("configmap \"c\" not found".into())
    );
    assert_eq!(
        k.want("a:crash", Some(&ok), crash.clone()),
        Want::Crash(Exit::injected())
    );
    assert_eq!(
        k.want("a:1", Some(&ok), crash),
        Want::Crash(Exit {
            code: 127,
            message: Some("m".into())
        })
    );
    assert_eq!(
        k.want(
            "a:1",
            Some(&ok),
            Outcome::NeverReady {
                message: "why".into()
            }
        ),
        Want::Run(Some("why".into()))
    );
    assert_eq!(k.want("a:1", Some(&ok), Outcome::Run), Want::Run(None));
}

#[test]
fn contract_outcomes_show_in_the_status() {
    let cfg = config(vec![]);
    let wall = now_time();
    let start = Instant::now();
    let later = start + Duration::from_secs(2);
    let p = pod("pravega/bookkeeper:0.7.0");

    // A crash: the image's exit code and message in lastState.
    let exit = Exit {
        code: 127,
        message: Some("bkenv.sh: line 35: -Xmx1g: command not found".into()),
    };
    let run = run_of(
        "pravega/bookkeeper:0.7.0",
        Run::CrashLoop {
            since: start,
            since_wall: wall.clone(),
            base_restarts: 0,
            exit: exit.clone(),
        },
    );
    let (st, _) = running_status(&p, &run, &cfg, 1, None, later, &wall, None);
    let cs = &st["containerStatuses"][0];
    assert_eq!(cs["state"]["waiting"]["reason"], "CrashLoopBackOff");
    assert_eq!(cs["lastState"]["terminated"]["exitCode"], 127);
    assert_eq!(cs["lastState"]["terminated"]["reason"], "Error");
    assert_eq!(
        cs["lastState"]["terminated"]["message"],
        "bkenv.sh: line 35: -Xmx1g: command not found"
    );

    // Running, never ready.
    let run = run_of(
        "pravega/pravega:0.5.0",
        Run::Running {
            since: start,
            since_wall: wall.clone(),
            restarts: 0,
            last_terminated: None,
            unready: Some("no bookies".into()),
        },
    );
    let (st, _) = running_status(&p, &run, &cfg, 1, None, later, &wall, None);
    let cs = &st["containerStatuses"][0];
    assert!(cs["state"]["running"].is_object());
    assert_eq!(cs["ready"], false);
    assert_eq!(st["phase"], "Running");
    assert_eq!(condition(&st, "Ready"), "False");

    // Not created: CreateContainerConfigError, Pending.
    let run = run_of(
        "app:1",
        Run::ConfigError {
            message: "configmap \"cfg\" not found".into(),
        },
    );
    let (st, _) = running_status(&p, &run, &cfg, 1, None, later, &wall, None);
    let cs = &st["containerStatuses"][0];
    assert_eq!(
        cs["state"]["waiting"]["reason"],
        "CreateContainerConfigError"
    );
    assert_eq!(
        cs["state"]["waiting"]["message"],
        "configmap \"cfg\" not found"
    );
    assert_eq!(cs["started"], false);
    assert_eq!(cs["imageID"], "");
    assert_eq!(st["phase"], "Pending");

    // A model crash that goes away (e.g. an injected crash cleared, the
    // image being fine) restarts the container, keeping the last exit.
    let mut r = Run::CrashLoop {
        since: start,
        since_wall: wall.clone(),
        base_restarts: 0,
        exit: exit.clone(),
    };
    transition(&mut r, Want::Run(None), later, &wall);
    match &r {
        Run::Running {
            restarts,
            last_terminated: Some(t),
            ..
        } => {
            assert_eq!(*restarts, 2);
            assert_eq!(t.exit_code, 127);
        }
        other => panic!("expected running, got {other:?}"),
    }
    // A running container becomes unready and ready again in place.
    transition(&mut r, Want::Run(Some("x".into())), later, &wall);
    assert!(matches!(
        &r,
        Run::Running {
            unready: Some(_),
            restarts: 2,
            ..
        }
    ));
    // A running container does not go back to resolving its environment.
    transition(&mut r, Want::ConfigError("gone".into()), later, &wall);
    assert!(matches!(&r, Run::Running { .. }));
    let mut pending = Run::ConfigError {
        message: "a".into(),
    };
    transition(&mut pending, Want::Run(None), later, &wall);
    assert!(matches!(&pending, Run::Running { restarts: 0, .. }));
}

#[test]
fn adopted_containers_keep_their_reported_state() {
    let cfg = config(vec![]);
    let wall = now_time();
    let now = Instant::now();
    let c = Container {
        name: "main".into(),
        image: Some("pravega/bookkeeper:0.7.0".into()),
        ..Default::default()
    };
    let status = |v: Value| -> ContainerStatus { serde_json::from_value(v).unwrap() };
    let crashing = status(json!({
        "name": "main", "image": "x", "imageID": "", "ready": false, "restartCount": 3,
        "state": {"waiting": {"reason": "CrashLoopBackOff"}},
        "lastState": {"terminated": {"exitCode": 127, "reason": "Error", "message": "m"}}
    }));
    match cfg.adopt_run(&c, Some(&crashing), now, &wall) {
        (
            Run::CrashLoop {
                base_restarts: 2,
                exit,
                ..
            },
            false,
        ) => assert_eq!(
            exit,
            Exit {
                code: 127,
                message: Some("m".into())
            }
        ),
        other => panic!("{other:?}"),
    }
    let config_error = status(json!({
        "name": "main", "image": "x", "imageID": "", "ready": false, "restartCount": 0,
        "state": {"waiting": {"reason": "CreateContainerConfigError", "message": "configmap \"a\" not found"}}
    }));
    assert!(matches!(
        cfg.adopt_run(&c, Some(&config_error), now, &wall),
        (Run::ConfigError { message }, false) if message == "configmap \"a\" not found"
    ));
    let ready = status(json!({
        "name": "main", "image": "x", "imageID": "", "ready": true, "restartCount": 0,
        "state": {"running": {"startedAt": "2024-01-01T00:00:00Z"}}
    }));
    assert!(matches!(
        cfg.adopt_run(&c, Some(&ready), now, &wall),
        (Run::Running { .. }, true)
    ));
    assert!(matches!(
        cfg.adopt_run(&c, None, now, &wall),
        (Run::Pending, false)
    ));
}

#[test]
fn image_references_are_validated() {
    for ok in [
        "nginx",
        "nginx:1.0",
        "pravega/pravega:0.5.0-1",
        "docker.io/library/nginx:latest",
        "localhost:5000/a/b_c:v1",
        "ghcr.io/org/img@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
    ] {
        assert!(is_valid_image(ok), "{ok}");
    }
    for bad in [
        "",
        "Nginx:1.0",
        "nginx:",
        "nginx::1",
        "bad image",
        "nginx:-x",
        "-nginx",
        "a//b",
    ] {
        assert!(!is_valid_image(bad), "{bad}");
    }
}
