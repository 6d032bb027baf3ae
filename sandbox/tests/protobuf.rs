//! End-to-end: kubectl's imperative commands that send protobuf request bodies
//! (`kubectl create deployment|service|role|rolebinding|clusterrole|clusterrolebinding|pdb|...`)
//! create the same objects as their JSON manifests would, and the simulation runs them.

use std::time::Duration;

use pravega_sandbox::testing::{Env, eventually, kubectl, kubectl_ok};
use serde_json::Value;

const NS: &str = "web";

/// `kubectl -n web create ARGS` (space-separated); returns what kubectl printed.
async fn create(env: &Env, args: &str) -> String {
    let mut all = vec!["-n", NS, "create"];
    all.extend(args.split_whitespace());
    kubectl_ok(env, &all).await
}

async fn get_json(env: &Env, args: &[&str]) -> Value {
    let mut all = vec!["-n", NS, "get"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["-o", "json"]);
    let out = kubectl_ok(env, &all).await;
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("kubectl get {args:?}: {e}: {out}"))
}

/// Go's JSON omits the zero value of a value field tagged `omitempty`; gogo-protobuf writes it.
/// No string field of a stored object decoded from protobuf may be left empty by that.
fn empty_strings(v: &Value, path: &str, out: &mut Vec<String>) {
    match v {
        Value::String(s) if s.is_empty() => out.push(path.to_string()),
        Value::Object(m) => {
            for (k, x) in m {
                empty_strings(x, &format!("{path}.{k}"), out);
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                empty_strings(x, &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

fn assert_no_empty_strings(v: &Value) {
    let mut found = Vec::new();
    empty_strings(v, "", &mut found);
    assert!(found.is_empty(), "empty string fields {found:?} in {v:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_deployment_runs_its_pods() {
    let env = Env::in_namespace(NS).await;
    let out = create(
        &env,
        "deployment nginx --image=nginx --replicas=2 --port=80",
    )
    .await;
    assert_eq!(out.trim(), "deployment.apps/nginx created");

    let d = get_json(&env, &["deployment", "nginx"]).await;
    assert_no_empty_strings(&d);
    let spec = &d["spec"];
    assert_eq!(spec["replicas"], 2);
    assert_eq!(spec["selector"]["matchLabels"]["app"], "nginx");
    assert_eq!(d["metadata"]["labels"]["app"], "nginx");
    let c = &spec["template"]["spec"]["containers"][0];
    assert_eq!(c["name"], "nginx");
    assert_eq!(c["image"], "nginx");
    assert_eq!(c["ports"][0]["containerPort"], 80);
    // Defaulted as the API server does: `strategy: {}` and the empty strings kubectl's
    // protobuf carries are unset values.
    assert_eq!(c["imagePullPolicy"], "Always");
    assert_eq!(c["ports"][0]["protocol"], "TCP");
    assert_eq!(spec["strategy"]["type"], "RollingUpdate");
    assert_eq!(spec["strategy"]["rollingUpdate"]["maxSurge"], "25%");
    assert_eq!(spec["template"]["spec"]["restartPolicy"], "Always");
    assert!(
        d["metadata"]["creationTimestamp"].is_string(),
        "{}",
        d["metadata"]
    );

    // The simulated controllers run it: a ReplicaSet owned by the Deployment, two Running pods.
    let rs = eventually(
        "the ReplicaSet of nginx",
        Duration::from_secs(20),
        || async {
            let l = get_json(&env, &["replicasets", "-l", "app=nginx"]).await;
            match l["items"].as_array().map(Vec::as_slice) {
                Some([rs]) => Ok(rs.clone()),
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await;
    assert_eq!(rs["metadata"]["ownerReferences"][0]["kind"], "Deployment");
    assert_eq!(rs["metadata"]["ownerReferences"][0]["name"], "nginx");
    assert_eq!(rs["spec"]["replicas"], 2);
    assert_eq!(
        rs["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx"
    );
    eventually(
        "two Running nginx pods",
        Duration::from_secs(30),
        || async {
            let l = get_json(&env, &["pods", "-l", "app=nginx"]).await;
            let phases: Vec<String> = l["items"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|p| {
                    p["status"]["phase"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string()
                })
                .collect();
            if phases == ["Running", "Running"] {
                Ok(())
            } else {
                Err(format!("{phases:?}"))
            }
        },
    )
    .await;
    eventually(
        "deployment nginx available",
        Duration::from_secs(30),
        || async {
            let d = get_json(&env, &["deployment", "nginx"]).await;
            if d["status"]["availableReplicas"] == 2 {
                Ok(())
            } else {
                Err(d["status"].to_string())
            }
        },
    )
    .await;

    // An explicit zero of a pointer field is kept (not taken for Go's omitted zero value).
    create(&env, "deployment idle --image=nginx:1.27 --replicas=0").await;
    let d = get_json(&env, &["deployment", "idle"]).await;
    assert_eq!(d["spec"]["replicas"], 0);
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"],
        "IfNotPresent"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_deployment_dry_run_server() {
    let env = Env::in_namespace(NS).await;
    let out = create(
        &env,
        "deployment dry --image=nginx --replicas=3 --dry-run=server -o json",
    )
    .await;
    let d: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(d["kind"], "Deployment");
    assert_eq!(d["spec"]["replicas"], 3);
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx"
    );
    assert_eq!(d["spec"]["revisionHistoryLimit"], 10);
    let got = kubectl(&env, &["-n", NS, "get", "deployment", "dry"]).await;
    assert!(!got.ok, "a dry run must not persist: {}", got.stdout);
    assert!(got.stderr.contains("NotFound"), "{}", got.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_service_pod_rbac_and_pdb() {
    let env = Env::in_namespace(NS).await;

    // Services (protobuf), of two types.
    create(&env, "service clusterip web --tcp=80:8080 --tcp=443").await;
    let s = get_json(&env, &["service", "web"]).await;
    assert_no_empty_strings(&s);
    assert_eq!(s["spec"]["type"], "ClusterIP");
    assert_eq!(s["spec"]["selector"]["app"], "web");
    assert!(
        s["spec"]["clusterIP"]
            .as_str()
            .is_some_and(|ip| ip.starts_with("10.96.")),
        "{}",
        s["spec"]
    );
    assert_eq!(s["spec"]["ports"][0]["port"], 80);
    assert_eq!(s["spec"]["ports"][0]["targetPort"], 8080);
    assert_eq!(s["spec"]["ports"][0]["protocol"], "TCP");
    assert_eq!(s["spec"]["ports"][1]["port"], 443);
    assert_eq!(s["spec"]["ports"][1]["targetPort"], 443);
    assert!(
        s["spec"]["ports"][0].get("nodePort").is_none(),
        "{}",
        s["spec"]
    );
    create(
        &env,
        "service externalname db --external-name=db.example.com",
    )
    .await;
    let s = get_json(&env, &["service", "db"]).await;
    assert_eq!(s["spec"]["type"], "ExternalName");
    assert_eq!(s["spec"]["externalName"], "db.example.com");

    // A pod (`kubectl run` sends JSON; it works alongside).
    kubectl_ok(
        &env,
        &[
            "-n",
            NS,
            "run",
            "box",
            "--image=busybox:1.36",
            "--port=8080",
            "--labels=tier=web",
            "--env=MODE=demo",
        ],
    )
    .await;
    let p = get_json(&env, &["pod", "box"]).await;
    let c = &p["spec"]["containers"][0];
    assert_eq!(c["image"], "busybox:1.36");
    assert_eq!(c["ports"][0]["containerPort"], 8080);
    assert_eq!(c["env"][0]["name"], "MODE");
    assert_eq!(c["env"][0]["value"], "demo");
    assert_eq!(p["metadata"]["labels"]["tier"], "web");

    // RBAC.
    create(
        &env,
        "role reader --verb=get,list --resource=pods,deployments.apps --resource-name=box",
    )
    .await;
    let r = get_json(&env, &["role", "reader"]).await;
    assert_no_empty_strings(&{
        let mut r = r.clone();
        // The core group is the empty string, as on a real server.
        r["rules"] = Value::Null;
        r
    });
    let rules = r["rules"].as_array().cloned().unwrap_or_default();
    assert_eq!(rules.len(), 2, "{rules:?}");
    assert_eq!(rules[0]["apiGroups"], serde_json::json!([""]));
    assert_eq!(rules[0]["resources"], serde_json::json!(["pods"]));
    assert_eq!(rules[0]["verbs"], serde_json::json!(["get", "list"]));
    assert_eq!(rules[0]["resourceNames"], serde_json::json!(["box"]));
    assert_eq!(rules[1]["apiGroups"], serde_json::json!(["apps"]));
    assert_eq!(rules[1]["resources"], serde_json::json!(["deployments"]));

    create(
        &env,
        &format!("rolebinding read-it --role=reader --user=alice --serviceaccount={NS}:default"),
    )
    .await;
    let b = get_json(&env, &["rolebinding", "read-it"]).await;
    assert_eq!(b["roleRef"]["kind"], "Role");
    assert_eq!(b["roleRef"]["name"], "reader");
    assert_eq!(b["roleRef"]["apiGroup"], "rbac.authorization.k8s.io");
    assert_eq!(b["subjects"][0]["kind"], "User");
    assert_eq!(b["subjects"][0]["name"], "alice");
    assert!(
        b["subjects"][0].get("namespace").is_none(),
        "{}",
        b["subjects"]
    );
    assert_eq!(b["subjects"][1]["kind"], "ServiceAccount");
    assert_eq!(b["subjects"][1]["namespace"], NS);

    create(&env, "clusterrole node-reader --verb=get --resource=nodes").await;
    create(
        &env,
        "clusterrolebinding read-nodes --clusterrole=node-reader --group=ops",
    )
    .await;
    let cr = get_json(&env, &["clusterrole", "node-reader"]).await;
    assert_eq!(cr["rules"][0]["resources"], serde_json::json!(["nodes"]));
    let crb = get_json(&env, &["clusterrolebinding", "read-nodes"]).await;
    assert_eq!(crb["roleRef"]["kind"], "ClusterRole");
    assert_eq!(crb["subjects"][0]["kind"], "Group");
    assert_eq!(crb["subjects"][0]["name"], "ops");

    // PodDisruptionBudgets: an int-or-string percentage, and an explicit zero.
    create(&env, "pdb half --selector=tier=web --min-available=50%").await;
    create(&env, "pdb none --selector=tier=web --max-unavailable=0").await;
    let half = get_json(&env, &["pdb", "half"]).await;
    assert_eq!(half["spec"]["minAvailable"], "50%");
    assert_eq!(half["spec"]["selector"]["matchLabels"]["tier"], "web");
    assert!(
        half["spec"].get("maxUnavailable").is_none(),
        "{}",
        half["spec"]
    );
    let none = get_json(&env, &["pdb", "none"]).await;
    assert_eq!(none["spec"]["maxUnavailable"], 0);
    assert!(
        none["spec"].get("minAvailable").is_none(),
        "{}",
        none["spec"]
    );

    // Config: a ConfigMap with a binary file, a Secret.
    let dir = tempfile::tempdir().expect("temp dir");
    let bin = dir.path().join("blob");
    std::fs::write(&bin, [0u8, 159, 146, 150]).expect("write blob");
    create(
        &env,
        &format!(
            "configmap cfg --from-literal=greeting=hello --from-file=blob={}",
            bin.display()
        ),
    )
    .await;
    let cm = get_json(&env, &["configmap", "cfg"]).await;
    assert_eq!(cm["data"]["greeting"], "hello");
    assert_eq!(cm["binaryData"]["blob"], "AJ+Slg==");
    create(&env, "secret generic creds --from-literal=password=s3cr=t").await;
    let sec = get_json(&env, &["secret", "creds"]).await;
    assert_eq!(sec["type"], "Opaque");
    assert_eq!(sec["data"]["password"], "czNjcj10");
}
