//! End-to-end tests of the simulated controllers and kubelets, driven with
//! the real `kubectl` against a sandbox API server.

use std::future::Future;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentCondition, DeploymentStatus, ReplicaSet, StatefulSet,
};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kube::api::ListParams;
use kube::{Api, ResourceExt};
use pravega_sandbox::sim::{FailureMode, SimOptions, Simulation};
use pravega_sandbox::testing::{Env, EnvOptions};
use regex::Regex;

/// The sandbox with the simulation started with `opts`.
async fn env(opts: SimOptions) -> Env {
    Env::launch(EnvOptions {
        sim: Some(opts),
        ..EnvOptions::default()
    })
    .await
}

/// `kubectl create deployment NAME --image=IMAGE --replicas=N` (a protobuf request body).
async fn create_deployment(env: &Env, name: &str, image: &str, replicas: u32) {
    let out = env
        .kubectl_ok(&[
            "create",
            "deployment",
            name,
            &format!("--image={image}"),
            &format!("--replicas={replicas}"),
        ])
        .await;
    assert_eq!(out.trim(), format!("deployment.apps/{name} created"));
}

async fn list_pods(env: &Env) -> Vec<Pod> {
    Api::<Pod>::namespaced(env.client.clone(), "default")
        .list(&ListParams::default())
        .await
        .expect("list pods")
        .items
}

/// Waits until `check` returns `Some`, failing the test after `limit`.
async fn eventually<T, F, Fut>(what: &str, limit: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits (20 s at most) until pod `name` is there again with another uid than `old_uid`, and
/// Ready; returns it.
async fn replaced_and_ready(env: &Env, name: &str, old_uid: &str, what: &str) -> Pod {
    eventually(what, Duration::from_secs(20), || async {
        list_pods(env)
            .await
            .into_iter()
            .find(|p| p.name_any() == name && p.uid().as_deref() != Some(old_uid) && is_ready(p))
    })
    .await
}

/// The `Progressing` condition of a Deployment's status.
fn progressing(status: &DeploymentStatus) -> DeploymentCondition {
    status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "Progressing")
        .cloned()
        .expect("a Progressing condition")
}

fn is_ready(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn label<'a>(p: &'a Pod, key: &str) -> &'a str {
    p.labels().get(key).map(String::as_str).unwrap_or("")
}

async fn statefulset_ready(env: &Env, name: &str, replicas: i32) -> StatefulSet {
    let api = Api::<StatefulSet>::namespaced(env.client.clone(), "default");
    eventually(
        &format!("statefulset {name} ready"),
        Duration::from_secs(30),
        || {
            let api = api.clone();
            async move {
                let s = api.get(name).await.ok()?;
                let st = s.status.as_ref()?;
                (st.ready_replicas == Some(replicas) && st.replicas == replicas).then_some(s)
            }
        },
    )
    .await
}

/// `short/name` and resourceVersion of every object of kind `K` in namespace `default`.
async fn versions_of<K>(env: &Env, short: &str) -> Vec<(String, String)>
where
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
    K::DynamicType: Default,
{
    Api::<K>::namespaced(env.client.clone(), "default")
        .list(&ListParams::default())
        .await
        .expect("list")
        .into_iter()
        .map(|o| {
            let rv = o
                .resource_version()
                .expect("a stored object has a resourceVersion");
            (format!("{short}/{}", o.name_any()), rv)
        })
        .collect()
}

/// Name and resourceVersion of every pod, StatefulSet, ReplicaSet and
/// Deployment: equal snapshots mean nothing was written in between.
async fn resource_versions(env: &Env) -> Vec<(String, String)> {
    let mut objects = versions_of::<Pod>(env, "pod").await;
    objects.extend(versions_of::<StatefulSet>(env, "sts").await);
    objects.extend(versions_of::<ReplicaSet>(env, "rs").await);
    objects.extend(versions_of::<Deployment>(env, "deploy").await);
    objects.sort();
    objects
}

/// Waits until nothing is written for 300ms; returns that state.
async fn settled(env: &Env) -> Vec<(String, String)> {
    let start = Instant::now();
    let mut last = resource_versions(env).await;
    loop {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let now = resource_versions(env).await;
        if now == last {
            return now;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "never settled");
        last = now;
    }
}

const WEB_STS: &str = r#"
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: web
spec:
  serviceName: web
  replicas: 3
  updateStrategy:
    type: OnDelete
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - name: nginx
        image: nginx:IMAGE_TAG
  volumeClaimTemplates:
  - metadata:
      name: data
    spec:
      accessModes: ["ReadWriteOnce"]
      resources:
        requests:
          storage: 1Gi
"#;

#[tokio::test]
async fn deployment_rolls_out_a_new_image_with_kubectl() {
    let env = env(SimOptions::default()).await;
    create_deployment(&env, "web", "nginx:1.0", 3).await;
    env.kubectl_ok(&["rollout", "status", "deployment/web", "--timeout=60s"])
        .await;
    let pods = list_pods(&env).await;
    assert_eq!(pods.iter().filter(|p| is_ready(p)).count(), 3);
    let name_re =
        Regex::new(r"^web-[bcdfghjklmnpqrstvwxz2456789]+-[bcdfghjklmnpqrstvwxz2456789]{5}$")
            .unwrap();
    for p in &pods {
        assert!(name_re.is_match(&p.name_any()), "{}", p.name_any());
        let st = p.status.as_ref().unwrap();
        assert_eq!(st.phase.as_deref(), Some("Running"));
        assert!(st.pod_ip.is_some() && st.host_ip.is_some() && st.start_time.is_some());
        assert!(
            p.spec
                .as_ref()
                .unwrap()
                .node_name
                .as_deref()
                .unwrap_or("")
                .starts_with("sandbox-node-")
        );
    }

    env.kubectl_ok(&["set", "image", "deployment/web", "nginx=nginx:1.1"])
        .await;
    let out = env
        .kubectl_ok(&["rollout", "status", "deployment/web", "--timeout=60s"])
        .await;
    assert!(out.contains("successfully rolled out"), "{out}");

    let d = Api::<Deployment>::namespaced(env.client.clone(), "default")
        .get("web")
        .await
        .unwrap();
    let st = d.status.unwrap();
    assert_eq!(
        (st.replicas, st.updated_replicas, st.available_replicas),
        (Some(3), Some(3), Some(3))
    );
    let progressing = progressing(&st);
    assert_eq!(
        progressing.reason.as_deref(),
        Some("NewReplicaSetAvailable")
    );
    assert_eq!(
        d.metadata
            .annotations
            .unwrap()
            .get("deployment.kubernetes.io/revision")
            .map(String::as_str),
        Some("2")
    );

    let rss = Api::<ReplicaSet>::namespaced(env.client.clone(), "default")
        .list(&ListParams::default())
        .await
        .unwrap()
        .items;
    assert_eq!(rss.len(), 2);
    let new_rs = rss
        .iter()
        .find(|r| r.spec.as_ref().unwrap().replicas == Some(3))
        .expect("new replicaset at 3");
    let old_rs = rss
        .iter()
        .find(|r| r.spec.as_ref().unwrap().replicas == Some(0))
        .expect("old replicaset scaled to 0");
    let hash = new_rs.labels().get("pod-template-hash").unwrap();
    assert_eq!(new_rs.name_any(), format!("web-{hash}"));
    assert_eq!(
        new_rs
            .annotations()
            .get("deployment.kubernetes.io/revision")
            .map(String::as_str),
        Some("2")
    );
    assert_eq!(
        old_rs
            .annotations()
            .get("deployment.kubernetes.io/revision")
            .map(String::as_str),
        Some("1")
    );

    // The controllers and kubelets report what they do, as events.
    let events = env.kubectl_ok(&["get", "events"]).await;
    for reason in [
        "ScalingReplicaSet",
        "SuccessfulCreate",
        "Scheduled",
        "Started",
        "Killing",
    ] {
        assert!(events.contains(reason), "no {reason} event in:\n{events}");
    }

    // Old pods are terminated and removed.
    let pods = eventually("old pods gone", Duration::from_secs(20), || async {
        let pods = list_pods(&env).await;
        (pods.len() == 3).then_some(pods)
    })
    .await;
    for p in &pods {
        let image = p.spec.as_ref().unwrap().containers[0].image.clone();
        assert_eq!(image.as_deref(), Some("nginx:1.1"));
        assert_eq!(label(p, "pod-template-hash"), hash);
    }
    env.shutdown().await;
}

#[tokio::test]
async fn on_delete_statefulset_replaces_pods_only_when_deleted() {
    let env = env(SimOptions::default()).await;
    env.apply_yaml(&WEB_STS.replace("IMAGE_TAG", "1.0")).await;
    let sts = statefulset_ready(&env, "web", 3).await;
    let old_rev = sts
        .status
        .as_ref()
        .unwrap()
        .update_revision
        .clone()
        .unwrap();
    assert!(old_rev.starts_with("web-"));

    let pods = list_pods(&env).await;
    let mut names: Vec<String> = pods.iter().map(|p| p.name_any()).collect();
    names.sort();
    assert_eq!(names, ["web-0", "web-1", "web-2"]);
    for p in &pods {
        assert_eq!(label(p, "controller-revision-hash"), old_rev);
        let name = p.name_any();
        assert_eq!(label(p, "statefulset.kubernetes.io/pod-name"), name);
        assert_eq!(label(p, "apps.kubernetes.io/pod-index"), &name[4..]);
        let spec = p.spec.as_ref().unwrap();
        assert_eq!(spec.hostname.as_deref(), Some(name.as_str()));
        assert_eq!(spec.subdomain.as_deref(), Some("web"));
        let claim = spec
            .volumes
            .as_ref()
            .unwrap()
            .iter()
            .find(|v| v.name == "data")
            .unwrap();
        assert_eq!(
            claim.persistent_volume_claim.as_ref().unwrap().claim_name,
            format!("data-{name}")
        );
        let owner = &p.owner_references()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.controller),
            ("StatefulSet", Some(true))
        );
    }
    let pvcs = Api::<PersistentVolumeClaim>::namespaced(env.client.clone(), "default")
        .list(&ListParams::default())
        .await
        .unwrap()
        .items;
    let mut pvc_names: Vec<String> = pvcs.iter().map(|p| p.name_any()).collect();
    pvc_names.sort();
    assert_eq!(pvc_names, ["data-web-0", "data-web-1", "data-web-2"]);
    assert!(
        pvcs.iter()
            .all(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Bound"))
    );
    let out = env.kubectl_ok(&["get", "controllerrevisions"]).await;
    assert!(out.contains(&old_rev), "{out}");

    // A template change does not touch the running pods.
    env.apply_yaml(&WEB_STS.replace("IMAGE_TAG", "1.1")).await;
    let api = Api::<StatefulSet>::namespaced(env.client.clone(), "default");
    let new_rev = eventually("new update revision", Duration::from_secs(10), || async {
        let s = api.get("web").await.ok()?;
        let st = s.status?;
        let rev = st.update_revision?;
        (rev != old_rev && st.observed_generation == s.metadata.generation).then_some(rev)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before: Vec<(String, String)> = list_pods(&env)
        .await
        .iter()
        .map(|p| (p.name_any(), p.uid().unwrap()))
        .collect();
    for p in list_pods(&env).await {
        assert_eq!(
            label(&p, "controller-revision-hash"),
            old_rev,
            "{}",
            p.name_any()
        );
    }
    let s = api.get("web").await.unwrap().status.unwrap();
    assert_eq!(
        (s.updated_replicas, s.current_replicas, s.ready_replicas),
        (Some(0), Some(3), Some(3))
    );

    // A deleted pod comes back at the new revision; the others stay as they were.
    env.kubectl_ok(&["delete", "pod", "web-1", "--wait=false"])
        .await;
    let old_uid = before.iter().find(|(n, _)| n == "web-1").unwrap().1.clone();
    let recreated = replaced_and_ready(&env, "web-1", &old_uid, "web-1 recreated and ready").await;
    assert_eq!(label(&recreated, "controller-revision-hash"), new_rev);
    assert_eq!(
        recreated.spec.as_ref().unwrap().containers[0]
            .image
            .as_deref(),
        Some("nginx:1.1")
    );
    for p in list_pods(&env).await {
        if p.name_any() != "web-1" {
            assert_eq!(label(&p, "controller-revision-hash"), old_rev);
            assert!(before.contains(&(p.name_any(), p.uid().unwrap())));
        }
    }
    let s = eventually(
        "status counts the updated pod",
        Duration::from_secs(10),
        || async {
            let s = api.get("web").await.ok()?.status?;
            (s.updated_replicas == Some(1) && s.ready_replicas == Some(3)).then_some(s)
        },
    )
    .await;
    assert_eq!(s.current_replicas, Some(2));

    // Going back to the first template makes its revision the update
    // revision again (and the newest one); a deleted pod comes back at it.
    env.apply_yaml(&WEB_STS.replace("IMAGE_TAG", "1.0")).await;
    eventually("update revision back", Duration::from_secs(10), || async {
        let s = api.get("web").await.ok()?.status?;
        (s.update_revision.as_deref() == Some(old_rev.as_str())).then_some(())
    })
    .await;
    let number = env
        .kubectl_ok(&[
            "get",
            "controllerrevision",
            &old_rev,
            "-o",
            "jsonpath={.revision}",
        ])
        .await;
    assert_eq!(number, "3");
    let rolled_uid = recreated.uid().unwrap();
    env.kubectl_ok(&["delete", "pod", "web-1", "--wait=false"])
        .await;
    let back = replaced_and_ready(
        &env,
        "web-1",
        &rolled_uid,
        "web-1 back at the first revision",
    )
    .await;
    assert_eq!(label(&back, "controller-revision-hash"), old_rev);

    // PVCs are kept and reused.
    let pvcs = env.kubectl_ok(&["get", "pvc", "-o", "name"]).await;
    assert_eq!(pvcs.lines().count(), 3, "{pvcs}");
    env.shutdown().await;
}

#[tokio::test]
async fn failing_image_crash_loops_with_growing_restarts() {
    let env = env(SimOptions {
        failures: vec![(Regex::new(r":broken$").unwrap(), FailureMode::CrashLoop)],
        ..Default::default()
    })
    .await;
    create_deployment(&env, "crash", "busybox:broken", 1).await;
    let restarts_of = |out: &str| -> Option<u32> {
        let line = out.lines().find(|l| l.starts_with("crash-"))?;
        let cols: Vec<&str> = line.split_whitespace().collect();
        (cols.get(2) == Some(&"CrashLoopBackOff")).then(|| cols.get(3)?.parse().ok())?
    };
    let first = eventually(
        "CrashLoopBackOff in kubectl get pods",
        Duration::from_secs(20),
        || async { restarts_of(&env.kubectl_ok(&["get", "pods"]).await) },
    )
    .await;
    let later = eventually("more restarts", Duration::from_secs(20), || async {
        restarts_of(&env.kubectl_ok(&["get", "pods"]).await).filter(|r| *r >= first + 2)
    })
    .await;
    assert!(later > first);
    let pod = list_pods(&env).await.into_iter().next().unwrap();
    let cs = &pod
        .status
        .as_ref()
        .unwrap()
        .container_statuses
        .as_ref()
        .unwrap()[0];
    let last = cs.last_state.as_ref().unwrap().terminated.as_ref().unwrap();
    assert_eq!((last.exit_code, last.reason.as_deref()), (1, Some("Error")));
    assert!(!cs.ready);
    let described = env.kubectl_ok(&["describe", "pod", &pod.name_any()]).await;
    assert!(
        described.contains("Back-off restarting failed container"),
        "{described}"
    );

    // Clearing the failure lets the container run and become ready.
    env.sim().clear_failures();
    eventually("recovered pod ready", Duration::from_secs(20), || async {
        list_pods(&env).await.iter().any(is_ready).then_some(())
    })
    .await;
    env.shutdown().await;
}

#[tokio::test]
async fn stuck_rollout_exceeds_its_progress_deadline() {
    let env = env(SimOptions::default()).await;
    env.sim()
        .fail_image(Regex::new(r"^app:bad$").unwrap(), FailureMode::ImagePull);
    env.apply_yaml(
        r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: stuck
spec:
  replicas: 1
  progressDeadlineSeconds: 2
  selector:
    matchLabels: {app: stuck}
  template:
    metadata:
      labels: {app: stuck}
    spec:
      containers:
      - name: app
        image: app:bad
"#,
    )
    .await;
    env.kubectl(&["rollout", "status", "deployment/stuck", "--timeout=30s"])
        .await
        .expect_err("exceeded its progress deadline");
    let d = Api::<Deployment>::namespaced(env.client.clone(), "default")
        .get("stuck")
        .await
        .unwrap();
    let c = progressing(d.status.as_ref().expect("status"));
    assert_eq!(
        (c.status.as_str(), c.reason.as_deref()),
        ("False", Some("ProgressDeadlineExceeded"))
    );
    let pods = env.kubectl_ok(&["get", "pods"]).await;
    assert!(
        pods.contains("ErrImagePull") || pods.contains("ImagePullBackOff"),
        "{pods}"
    );

    // Fixing the image makes the next rollout complete.
    env.kubectl_ok(&["set", "image", "deployment/stuck", "app=app:good"])
        .await;
    env.kubectl_ok(&["rollout", "status", "deployment/stuck", "--timeout=30s"])
        .await;
    let out = env.kubectl_ok(&["get", "nodes"]).await;
    assert_eq!(
        out.lines().filter(|l| l.contains(" Ready ")).count(),
        3,
        "{out}"
    );
    env.shutdown().await;
}

#[tokio::test]
async fn unschedulable_and_invalid_images_stay_pending() {
    let env = env(SimOptions {
        failures: vec![(Regex::new("nowhere").unwrap(), FailureMode::Unschedulable)],
        ..Default::default()
    })
    .await;
    env.kubectl_ok(&["run", "lost", "--image=nowhere:1"]).await;
    // kubectl refuses invalid image names itself: create the pod from a manifest.
    env.apply_yaml(
        r#"
apiVersion: v1
kind: Pod
metadata:
  name: typo
spec:
  containers:
  - name: app
    image: Nginx:1.0
"#,
    )
    .await;
    let typo = eventually("InvalidImageName", Duration::from_secs(10), || async {
        let out = env.kubectl_ok(&["get", "pod", "typo"]).await;
        out.contains("InvalidImageName").then_some(out)
    })
    .await;
    assert!(typo.contains("0/1"), "{typo}");
    let lost = eventually("unschedulable pod", Duration::from_secs(10), || async {
        let p = list_pods(&env)
            .await
            .into_iter()
            .find(|p| p.name_any() == "lost")?;
        let st = p.status.clone()?;
        st.conditions?
            .iter()
            .any(|c| {
                c.type_ == "PodScheduled"
                    && c.status == "False"
                    && c.reason.as_deref() == Some("Unschedulable")
            })
            .then_some(p)
    })
    .await;
    assert_eq!(lost.status.unwrap().phase.as_deref(), Some("Pending"));
    assert!(lost.spec.unwrap().node_name.is_none());
    env.shutdown().await;
}

#[tokio::test]
async fn readiness_can_be_overridden_per_pod() {
    let env = env(SimOptions::default()).await;
    env.apply_yaml(
        &WEB_STS
            .replace("IMAGE_TAG", "1.0")
            .replace("replicas: 3", "replicas: 2"),
    )
    .await;
    statefulset_ready(&env, "web", 2).await;
    env.apply_yaml(
        r#"
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: web
spec:
  minAvailable: 1
  selector:
    matchLabels: {app: web}
"#,
    )
    .await;
    let allowed = || async {
        env.kubectl_ok(&[
            "get",
            "pdb",
            "web",
            "-o",
            "jsonpath={.status.disruptionsAllowed}/{.status.currentHealthy}/{.status.expectedPods}",
        ])
        .await
    };
    eventually(
        "budget allows one disruption",
        Duration::from_secs(10),
        || async { (allowed().await == "1/2/2").then_some(()) },
    )
    .await;
    env.sim()
        .set_pod_ready("default", "web-0", false)
        .await
        .unwrap();
    let out = env.kubectl_ok(&["get", "pod", "web-0"]).await;
    assert!(out.contains("0/1"), "{out}");
    let api = Api::<StatefulSet>::namespaced(env.client.clone(), "default");
    eventually("readyReplicas drops", Duration::from_secs(10), || async {
        (api.get("web").await.ok()?.status?.ready_replicas == Some(1)).then_some(())
    })
    .await;
    env.sim()
        .set_pod_ready("default", "web-0", true)
        .await
        .unwrap();
    statefulset_ready(&env, "web", 2).await;
    assert!(
        env.sim()
            .set_pod_ready("default", "missing", true)
            .await
            .is_err()
    );
    env.shutdown().await;
}

#[tokio::test]
async fn restarted_simulation_adopts_existing_pods() {
    let mut env = env(SimOptions::default()).await;
    env.apply_yaml(&WEB_STS.replace("IMAGE_TAG", "1.0")).await;
    create_deployment(&env, "api", "nginx:1.0", 2).await;
    statefulset_ready(&env, "web", 3).await;
    env.kubectl_ok(&["rollout", "status", "deployment/api", "--timeout=30s"])
        .await;
    // Everything as it is once settled: identity and last write.
    let uids = |pods: &[Pod]| {
        let mut v: Vec<String> = pods.iter().map(|p| p.uid().unwrap()).collect();
        v.sort();
        v
    };
    let before = settled(&env).await;
    let before_uids = uids(&list_pods(&env).await);

    env.sim.take().unwrap().shutdown().await;
    env.sim = Some(
        Simulation::start(
            env.client.clone(),
            SimOptions {
                seed: 99,
                ..Default::default()
            },
        )
        .await
        .unwrap(),
    );
    // The restarted controllers and kubelets adopt everything as it is:
    // no pod is recreated, nothing is even rewritten.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let pods = list_pods(&env).await;
    assert_eq!(before_uids, uids(&pods));
    assert_eq!(before, resource_versions(&env).await);
    assert!(pods.iter().all(is_ready));
    // And it keeps working, also across dropped watches: a scale-up is served.
    env.sandbox.close_watches();
    env.kubectl_ok(&["scale", "deployment/api", "--replicas=3"])
        .await;
    env.kubectl_ok(&["rollout", "status", "deployment/api", "--timeout=30s"])
        .await;
    assert_eq!(
        list_pods(&env).await.iter().filter(|p| is_ready(p)).count(),
        6
    );
    env.shutdown().await;
}

#[tokio::test]
async fn a_pravega_like_set_of_workloads_becomes_ready_quickly() {
    let env = env(SimOptions::default()).await;
    let start = Instant::now();
    let bookie = WEB_STS.replace("IMAGE_TAG", "1.0").replace("web", "bookie");
    let segmentstore = WEB_STS
        .replace("IMAGE_TAG", "1.0")
        .replace("web", "segmentstore");
    env.apply_yaml(&format!("{bookie}\n---\n{segmentstore}"))
        .await;
    create_deployment(&env, "controller", "nginx:1.0", 1).await;
    statefulset_ready(&env, "bookie", 3).await;
    statefulset_ready(&env, "segmentstore", 3).await;
    env.kubectl_ok(&[
        "rollout",
        "status",
        "deployment/controller",
        "--timeout=30s",
    ])
    .await;
    println!(
        "3 bookies + 3 segment stores (OnDelete) + 1 controller ready in {:?} (ready delay {:?})",
        start.elapsed(),
        SimOptions::default().ready_delay
    );

    // Once converged, the simulation stays quiet: nothing is written.
    let before = settled(&env).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(before, resource_versions(&env).await);
    env.shutdown().await;
}

#[tokio::test]
async fn rolling_update_statefulset_honours_partition_and_goes_from_the_highest_ordinal() {
    let env = env(SimOptions::default()).await;
    let yaml = WEB_STS.replace(
        "type: OnDelete",
        "type: RollingUpdate\n    rollingUpdate:\n      partition: PARTITION",
    );
    env.apply_yaml(&yaml.replace("IMAGE_TAG", "1.0").replace("PARTITION", "0"))
        .await;
    let old_rev = statefulset_ready(&env, "web", 3)
        .await
        .status
        .unwrap()
        .update_revision
        .unwrap();

    // With partition 2 only web-2 moves to the new revision.
    env.apply_yaml(&yaml.replace("IMAGE_TAG", "1.1").replace("PARTITION", "2"))
        .await;
    let out = env
        .kubectl_ok(&["rollout", "status", "statefulset/web", "--timeout=30s"])
        .await;
    assert!(out.contains("partitioned roll out complete"), "{out}");
    let revs = |pods: &[Pod]| -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = pods
            .iter()
            .map(|p| {
                (
                    p.name_any(),
                    label(p, "controller-revision-hash").to_string(),
                )
            })
            .collect();
        v.sort();
        v
    };
    let pods = revs(&list_pods(&env).await);
    assert_eq!(pods[0].1, old_rev);
    assert_eq!(pods[1].1, old_rev);
    assert_ne!(pods[2].1, old_rev);
    let new_rev = pods[2].1.clone();

    // Partition 0: the rest follows, highest ordinal first, one at a time.
    env.apply_yaml(&yaml.replace("IMAGE_TAG", "1.1").replace("PARTITION", "0"))
        .await;
    let mut order: Vec<String> = Vec::new();
    let start = Instant::now();
    loop {
        let pods = list_pods(&env).await;
        let down = pods.iter().filter(|p| !is_ready(p)).count();
        assert!(down <= 1, "more than one pod down at once");
        for p in &pods {
            if label(p, "controller-revision-hash") == new_rev && !order.contains(&p.name_any()) {
                order.push(p.name_any());
            }
        }
        if order.len() == 3 && down == 0 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "rolling update did not finish: {order:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(order, ["web-2", "web-1", "web-0"]);
    let out = env
        .kubectl_ok(&["rollout", "status", "statefulset/web", "--timeout=30s"])
        .await;
    // kubectl reports a rollout with a partition field as "partitioned".
    assert!(
        out.contains("roll out complete: 3 new pods have been updated"),
        "{out}"
    );
    let st = Api::<StatefulSet>::namespaced(env.client.clone(), "default")
        .get("web")
        .await
        .unwrap()
        .status
        .unwrap();
    assert_eq!(st.current_revision, st.update_revision);
    assert_eq!(
        (st.current_replicas, st.updated_replicas),
        (Some(3), Some(3))
    );
    env.shutdown().await;
}
