//! End to end: the operator checks the API server's version at start and refuses one older than
//! `--min-kubernetes-version`, clearly and at once (the sandbox reports Kubernetes 1.33).

mod support;

use std::time::Duration;

use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_server_older_than_the_minimum_is_refused_at_start() {
    let env = Env::start().await;
    let run = |min: &'static str| {
        let kubeconfig = env.kubeconfig().to_path_buf();
        async move {
            let out = tokio::time::timeout(
                Duration::from_secs(30),
                tokio::process::Command::new(env!("CARGO_BIN_EXE_pravega-operator"))
                    .args([
                        "--metrics-addr",
                        "127.0.0.1:0",
                        "--min-kubernetes-version",
                        min,
                    ])
                    .env("KUBECONFIG", kubeconfig)
                    .kill_on_drop(true)
                    .output(),
            )
            .await
            .expect("the operator exits at once")
            .expect("the operator runs");
            (
                out.status.code(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            )
        }
    };
    let (code, stderr) = run("1.40").await;
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("the API server runs Kubernetes 1.33, older than 1.40, the lowest this operator supports"),
        "{stderr}"
    );
    let (code, stderr) = run("one.two").await;
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("--min-kubernetes-version: \"one.two\" is not a Kubernetes version"),
        "{stderr}"
    );
    env.shutdown().await;
}
