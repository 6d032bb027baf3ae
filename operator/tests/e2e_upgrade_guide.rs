//! End to end, the upgrade guide as a user lives it, with the real `kubectl`, the real operator
//! binary and the real webhook binary on the sandbox:
//! - the guide's `kubectl patch` starts a 0.4.0 → 0.5.0-1 upgrade; `kubectl get PravegaCluster`
//!   shows VERSION / DESIRED VERSION during and after; a pod watch proves the replacement order
//!   (bookies 0, 1, 2, then the controller, then segment stores 0, 1, 2) and that no component
//!   ever has two members down at once; the webhook refuses a version change meanwhile;
//! - a crash-looping BookKeeper image stops the upgrade with the guide's `kubectl describe`
//!   status, leaves Controller and Segment Store untouched, and setting the version back rolls
//!   back (`RollbackInProgress` True, then False).

mod support;
mod support_upgrade;

use std::time::Duration;

use pravega_crds::ConditionType;
use pravega_crds::names::Component;
use pravega_sandbox::sim::FailureMode;
use support::*;
use support_upgrade::{ClusterMonitor, PodMonitor, histories};

const WAIT: Duration = Duration::from_secs(60);

/// Awaits `fut`, failing the test if it takes longer than 30 s (a hung request).
async fn bounded<T>(what: &str, fut: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(30), fut)
        .await
        .unwrap_or_else(|_| panic!("{what} did not finish within 30s"))
}

fn patch_version(version: &str) -> String {
    format!(r#"-p=[{{"op": "replace", "path": "/spec/version", "value": "{version}"}}]"#)
}

async fn kubectl_patch_version(env: &Env, version: &str) -> Run {
    bounded(
        &format!("kubectl patch to {version}"),
        env.kubectl(&[
            "patch",
            "PravegaCluster",
            "example",
            "--type=json",
            &patch_version(version),
        ]),
    )
    .await
}

/// Waits for `kubectl get PravegaCluster example` to show `version`, an empty DESIRED VERSION
/// and 7/7 members.
async fn wait_settled(env: &Env, version: &str) {
    eventually(&format!("example at {version}, 7/7"), WAIT, || async {
        let row = bounded("kubectl get PravegaCluster", env.cluster_row("example"))
            .await
            .ok_or("no row")?;
        if col(&row, "VERSION") == version
            && col(&row, "DESIRED VERSION").is_empty()
            && col(&row, "DESIRED MEMBERS") == "7"
            && col(&row, "READY MEMBERS") == "7"
        {
            Ok(())
        } else {
            Err(format!("{row:?}"))
        }
    })
    .await
}

async fn jsonpath(env: &Env, args: &[&str], path: &str) -> String {
    let expr = format!("jsonpath={path}");
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["-o", &expr]);
    bounded(&format!("kubectl {all:?}"), env.kubectl_ok(&all)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_guides_upgrade_replaces_pods_in_order_and_the_webhook_refuses_changes_meanwhile() {
    let env = Env::start().await;
    let webhook = Webhook::start(&env.sandbox, &env.client, &webhook_bin()).await;
    let op = Operator::start(OPERATOR, env.kubeconfig(), &[]).await;
    let pods = PodMonitor::start(env.client.clone(), "default", "example");
    env.apply_file("deploy/sample/pravegacluster.yaml").await;
    wait_settled(&env, "0.4.0").await;
    pods.arm(3, 1, 3);

    // The guide's command, verbatim but for the version.
    let Run {
        ok, stderr: err, ..
    } = kubectl_patch_version(&env, "0.5.0-1").await;
    assert!(ok, "{err}");

    // While it works: VERSION is the running version, DESIRED VERSION the target.
    let during = eventually("VERSION 0.4.0 / DESIRED VERSION 0.5.0-1", WAIT, || async {
        let row = bounded("kubectl get PravegaCluster", env.cluster_row("example"))
            .await
            .ok_or("no row")?;
        if col(&row, "VERSION") == "0.4.0" && col(&row, "DESIRED VERSION") == "0.5.0-1" {
            Ok(row)
        } else {
            Err(format!("{row:?}"))
        }
    })
    .await;
    assert_eq!(col(&during, "DESIRED MEMBERS"), "7", "{during:?}");

    // A version change while the upgrade runs is refused by the webhook, and nothing is stored.
    let Run {
        ok,
        stdout: out,
        stderr: err,
    } = kubectl_patch_version(&env, "0.5.0").await;
    assert!(!ok, "the change was accepted: {out}");
    assert!(
        err.contains(
            r#"admission webhook "pravegacluster.pravega.pravega.io" denied the request: cannot change spec.version"#
        ),
        "{err}"
    );
    let stored = jsonpath(
        &env,
        &["get", "PravegaCluster", "example"],
        "{.spec.version}",
    )
    .await;
    assert_eq!(stored, "0.5.0-1");

    wait_settled(&env, "0.5.0-1").await;
    pods.disarm();

    // Order of replacement, from the pod watch.
    let log = pods.log();
    let hist = histories(&log);
    let mut old: Vec<_> = hist
        .iter()
        .filter(|h| h.version == "0.4.0")
        .filter(|h| h.terminating.is_some())
        .collect();
    old.sort_by_key(|h| h.terminating);
    let order: Vec<&str> = old.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(
        order.len(),
        7,
        "every old member was replaced once: {order:?}"
    );
    assert_eq!(
        &order[..3],
        ["example-bookie-0", "example-bookie-1", "example-bookie-2"],
        "{order:?}"
    );
    assert!(
        order[3].starts_with("example-pravega-controller-"),
        "{order:?}"
    );
    assert_eq!(
        &order[4..],
        [
            "example-pravega-segmentstore-0",
            "example-pravega-segmentstore-1",
            "example-pravega-segmentstore-2"
        ],
        "{order:?}"
    );
    let new: Vec<_> = hist.iter().filter(|h| h.version == "0.5.0-1").collect();
    assert_eq!(new.len(), 7, "{new:?}");
    assert!(new.iter().all(|h| h.ready.is_some()), "{new:?}");
    // Each step starts only once the previous replacement is Ready: a StatefulSet pod is deleted
    // after the previous new pod is Ready, and the new controller pod appears after the last new
    // bookie is Ready and is Ready before the first segment store is deleted.
    let new_of = |c: Component| -> Vec<_> {
        let mut v: Vec<_> = new.iter().filter(|h| h.component == Some(c)).collect();
        v.sort_by_key(|h| h.appeared);
        v
    };
    let (bookies, controllers, stores) = (
        new_of(Component::Bookkeeper),
        new_of(Component::Controller),
        new_of(Component::SegmentStore),
    );
    assert_eq!((bookies.len(), controllers.len(), stores.len()), (3, 1, 3));
    let ready = |h: &&&support_upgrade::PodHistory| h.ready.expect("ready");
    for k in 1..3 {
        assert!(old[k].terminating.unwrap() > ready(&bookies[k - 1]));
        assert!(old[k + 4].terminating.unwrap() > ready(&stores[k - 1]));
    }
    assert!(controllers[0].appeared > ready(&bookies[2]));
    assert!(old[4].terminating.unwrap() > ready(&controllers[0]));

    let violations = pods.violations();
    assert!(
        violations.is_empty(),
        "two members of a component down at once: {violations:#?}"
    );
    let max_down = pods.max_down();
    assert_eq!(max_down.get("controller"), Some(&0), "{max_down:?}");

    let history = jsonpath(
        &env,
        &["get", "PravegaCluster", "example"],
        "{.status.versionHistory}",
    )
    .await;
    assert_eq!(history, r#"["0.4.0","0.5.0-1"]"#);

    assert_eq!(bounded("operator exit", op.terminate()).await, Some(0));
    webhook.stop().await;
    drop(pods);
    bounded("sandbox shutdown", env.shutdown()).await;
}

/// The indented block of `kubectl describe` under the line `header` (e.g. `Status:`).
fn describe_section(describe: &str, header: &str) -> String {
    let mut lines = describe.lines().skip_while(|l| l.trim_end() != header);
    let Some(first) = lines.next() else {
        return String::new();
    };
    let indent = first.len() - first.trim_start().len();
    lines
        .take_while(|l| l.trim().is_empty() || l.len() - l.trim_start().len() > indent)
        .collect::<Vec<_>>()
        .join("\n")
}

/// The `Conditions` of `kubectl describe`, as one map (field → value) per condition.
fn describe_conditions(status: &str) -> Vec<std::collections::BTreeMap<String, String>> {
    let section = describe_section(status, "  Conditions:");
    let mut out: Vec<std::collections::BTreeMap<String, String>> = Vec::new();
    let mut current = std::collections::BTreeMap::new();
    for line in section.lines() {
        let Some((key, value)) = line.trim().split_once(':') else {
            continue;
        };
        let key = key.trim().to_owned();
        if current.contains_key(&key) {
            out.push(std::mem::take(&mut current));
        }
        current.insert(key, value.trim().to_owned());
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// The names listed under `Members:` → `Ready:` or `Unready:` in `kubectl describe`.
fn describe_members(status: &str, which: &str) -> Vec<String> {
    let members = describe_section(status, "  Members:");
    describe_section(&members, &format!("    {which}:"))
        .lines()
        .map(|l| l.trim().to_owned())
        .filter(|l| !l.is_empty())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failing_bookkeeper_image_stops_the_upgrade_as_the_guide_describes_and_rolls_back() {
    let env = Env::start().await;
    let op = Operator::start(OPERATOR, env.kubeconfig(), &[]).await;
    let conditions = ClusterMonitor::start(env.client.clone(), "default", "example");
    env.apply_file("deploy/sample/pravegacluster.yaml").await;
    wait_settled(&env, "0.4.0").await;

    // Only the BookKeeper image of 0.5.0 is broken.
    env.sim.as_ref().unwrap().fail_image(
        regex::Regex::new(r"^pravega/bookkeeper:0\.5\.0$").unwrap(),
        FailureMode::CrashLoop,
    );
    let Run {
        ok, stderr: err, ..
    } = kubectl_patch_version(&env, "0.5.0").await;
    assert!(ok, "{err}");

    let describe = eventually("the guide's UpgradeFailed status", WAIT, || async {
        let describe = bounded(
            "kubectl describe",
            env.kubectl_ok(&["describe", "PravegaCluster", "example"]),
        )
        .await;
        let status = describe_section(&describe, "Status:");
        let conds = describe_conditions(&format!("Status:\n{status}"));
        let failed = conds.iter().any(|c| {
            c.get("Type").map(String::as_str) == Some("Error")
                && c.get("Status").map(String::as_str) == Some("True")
        });
        if failed { Ok(describe) } else { Err(describe) }
    })
    .await;
    let status = format!("Status:\n{}", describe_section(&describe, "Status:"));
    let conds = describe_conditions(&status);
    let cond = |t: &str| {
        conds
            .iter()
            .find(|c| c.get("Type").map(String::as_str) == Some(t))
            .unwrap_or_else(|| panic!("no {t} condition in:\n{describe}"))
    };
    let error = cond("Error");
    assert_eq!(error["Status"], "True", "{describe}");
    assert_eq!(error["Reason"], "UpgradeFailed", "{describe}");
    assert_eq!(
        error["Message"], "failed to sync bookkeeper version. pod example-bookie-0 is restarting",
        "{describe}"
    );
    assert_eq!(cond("Upgrading")["Status"], "False", "{describe}");
    assert_eq!(cond("PodsReady")["Status"], "False", "{describe}");
    let field = |name: &str| {
        let re = regex::Regex::new(&format!(r"(?m)^  {name}:\s+(\S+)$")).unwrap();
        re.captures(&status)
            .map(|c| c[1].to_owned())
            .unwrap_or_default()
    };
    assert_eq!(field("Current Version"), "0.4.0", "{describe}");
    assert_eq!(field("Target Version"), "0.5.0", "{describe}");
    assert_eq!(field("Ready Replicas"), "6", "{describe}");
    assert_eq!(
        describe_members(&status, "Unready"),
        ["example-bookie-0"],
        "{describe}"
    );
    let ready = describe_members(&status, "Ready");
    assert_eq!(ready.len(), 6, "{describe}");
    for name in [
        "example-bookie-1",
        "example-bookie-2",
        "example-pravega-segmentstore-0",
        "example-pravega-segmentstore-1",
        "example-pravega-segmentstore-2",
    ] {
        assert!(
            ready.iter().any(|r| r == name),
            "{name} not Ready:\n{describe}"
        );
    }
    assert!(
        ready
            .iter()
            .any(|r| r.starts_with("example-pravega-controller-")),
        "{describe}"
    );

    // Controller and Segment Store were not touched: templates and pods still at 0.4.0.
    let controller_template = jsonpath(
        &env,
        &["get", "deployment", "example-pravega-controller"],
        "{.spec.template.spec.containers[0].image}",
    )
    .await;
    assert_eq!(controller_template, "pravega/pravega:0.4.0");
    let store_template = jsonpath(
        &env,
        &["get", "statefulset", "example-pravega-segmentstore"],
        "{.spec.template.spec.containers[0].image}",
    )
    .await;
    assert_eq!(store_template, "pravega/pravega:0.4.0");
    for component in ["pravega-controller", "pravega-segmentstore"] {
        let images = jsonpath(
            &env,
            &[
                "get",
                "pods",
                "-l",
                &format!(
                    "app.kubernetes.io/instance=example,app.kubernetes.io/component={component}"
                ),
            ],
            "{.items[*].spec.containers[0].image}",
        )
        .await;
        let images: Vec<&str> = images.split_whitespace().collect();
        assert!(!images.is_empty(), "no {component} pods");
        assert!(
            images.iter().all(|i| *i == "pravega/pravega:0.4.0"),
            "{component}: {images:?}"
        );
    }

    // Roll back by setting the version back (0.4.0 images are fine: no need to clear failures).
    let Run {
        ok, stderr: err, ..
    } = kubectl_patch_version(&env, "0.4.0").await;
    assert!(ok, "{err}");
    wait_settled(&env, "0.4.0").await;
    let error = jsonpath(
        &env,
        &["get", "PravegaCluster", "example"],
        r#"{.status.conditions[?(@.type=="Error")].status}"#,
    )
    .await;
    assert_eq!(error, "False");
    let rollback = conditions.transitions(ConditionType::RollbackInProgress);
    let rollback_statuses: Vec<&str> = rollback
        .iter()
        .map(|s| s.split(' ').next().unwrap_or_default())
        .collect();
    let went_true = rollback_statuses.iter().position(|s| *s == "True");
    assert!(
        went_true.is_some_and(|i| rollback_statuses[i + 1..].contains(&"False")),
        "RollbackInProgress True then False: {rollback:?}"
    );
    assert_eq!(rollback_statuses.last(), Some(&"False"), "{rollback:?}");
    let images = jsonpath(
        &env,
        &["get", "pods", "-l", "app.kubernetes.io/instance=example"],
        "{.items[*].spec.containers[0].image}",
    )
    .await;
    let images: Vec<&str> = images.split_whitespace().collect();
    assert_eq!(images.len(), 7, "{images:?}");
    assert!(images.iter().all(|i| i.ends_with(":0.4.0")), "{images:?}");

    assert_eq!(bounded("operator exit", op.terminate()).await, Some(0));
    drop(conditions);
    bounded("sandbox shutdown", env.shutdown()).await;
}
