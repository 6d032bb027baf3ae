//! [`Env`]: a sandbox with the simulation, a client and kubectl helpers bound to it.

use std::path::Path;
use std::time::Duration;

use super::{
    Run, apply_yaml, col, eventually, kubectl, kubectl_ok, kubectl_retry, merge_patch_args,
    parse_table, version_patch, workspace_file,
};
use crate::sim::{SimOptions, Simulation};
use crate::{Sandbox, SandboxOptions};

/// How to start an [`Env`].
#[derive(Clone)]
pub struct EnvOptions {
    /// The API server's options (e.g. faults).
    pub sandbox: SandboxOptions,
    /// The simulation's options; `None`: no simulation.
    pub sim: Option<SimOptions>,
    /// Install the PravegaCluster CRD (with kubectl, retried through faults).
    pub crd: bool,
    /// Create this namespace.
    pub namespace: Option<String>,
}

impl Default for EnvOptions {
    /// A simulation with its default options, no CRD, no namespace.
    fn default() -> Self {
        EnvOptions {
            sandbox: SandboxOptions::default(),
            sim: Some(SimOptions::default()),
            crd: false,
            namespace: None,
        }
    }
}

/// A sandbox with simulated controllers and kubelets, and a client. The simulation and `client`
/// authenticate as the control plane ([`Sandbox::control_plane_client`]): never faulted.
pub struct Env {
    pub sandbox: Sandbox,
    pub sim: Option<Simulation>,
    pub client: kube::Client,
}

impl Env {
    /// The simulation and the CRD.
    pub async fn start() -> Env {
        Env::start_with(SandboxOptions::default()).await
    }

    /// The simulation and the CRD, on a sandbox started with `options` (e.g. faults).
    pub async fn start_with(options: SandboxOptions) -> Env {
        Env::launch(EnvOptions {
            sandbox: options,
            crd: true,
            ..EnvOptions::default()
        })
        .await
    }

    /// The simulation and namespace `ns` (no CRD).
    pub async fn in_namespace(ns: &str) -> Env {
        Env::launch(EnvOptions {
            namespace: Some(ns.into()),
            ..EnvOptions::default()
        })
        .await
    }

    pub async fn launch(options: EnvOptions) -> Env {
        let sandbox = Sandbox::start(options.sandbox)
            .await
            .expect("sandbox starts");
        let client = sandbox
            .control_plane_client()
            .await
            .expect("sandbox client");
        let sim = match options.sim {
            Some(sim) => Some(
                Simulation::start(client.clone(), sim)
                    .await
                    .expect("simulation starts"),
            ),
            None => None,
        };
        let env = Env {
            sandbox,
            sim,
            client,
        };
        if let Some(ns) = &options.namespace {
            env.kubectl_ok(&["create", "namespace", ns]).await;
        }
        if options.crd {
            let crd = workspace_file("crds/pravegacluster.yaml");
            env.kubectl_retry(&["apply", "-f", crd.to_str().expect("utf-8 path")])
                .await;
        }
        env
    }

    pub fn kubeconfig(&self) -> &Path {
        self.sandbox.kubeconfig_path()
    }

    /// The sandbox and the simulation, for tests that hold them apart.
    pub fn into_parts(self) -> (Sandbox, Simulation) {
        (self.sandbox, self.sim.expect("simulation running"))
    }

    /// The simulation; panics if there is none.
    pub fn sim(&self) -> &Simulation {
        self.sim.as_ref().expect("simulation running")
    }

    /// [`kubectl`] against this sandbox.
    pub async fn kubectl(&self, args: &[&str]) -> Run {
        kubectl(self, args).await
    }

    /// [`kubectl_ok`] against this sandbox.
    pub async fn kubectl_ok(&self, args: &[&str]) -> String {
        kubectl_ok(self, args).await
    }

    /// [`kubectl_retry`] against this sandbox.
    pub async fn kubectl_retry(&self, args: &[&str]) -> String {
        kubectl_retry(self, args).await
    }

    /// [`apply_yaml`] against this sandbox.
    pub async fn apply_yaml(&self, yaml: &str) {
        apply_yaml(self, yaml).await
    }

    /// `kubectl apply -f FILE` of a workspace file (`rel` from the root); returns stdout.
    pub async fn apply_file(&self, rel: &str) -> String {
        let path = workspace_file(rel);
        self.kubectl_ok(&["apply", "-f", path.to_str().expect("utf-8 path")])
            .await
    }

    /// `kubectl patch PravegaCluster NAME --type=TYPE -p PATCH` (`json` or `merge`).
    pub async fn try_patch_cluster(&self, name: &str, patch_type: &str, patch: &str) -> Run {
        let patch_type = format!("--type={patch_type}");
        self.kubectl(&["patch", "PravegaCluster", name, &patch_type, "-p", patch])
            .await
    }

    /// Sets `spec.version` of PravegaCluster `name` with a merge patch, retrying through the
    /// errors of a faulty API server ([`kubectl_retry`]); returns stdout.
    pub async fn set_version(&self, name: &str, version: &str) -> String {
        let patch = version_patch(version);
        self.kubectl_retry(&merge_patch_args(name, &patch)).await
    }

    /// The same, expecting success; returns stdout.
    pub async fn patch_cluster(&self, name: &str, patch_type: &str, patch: &str) -> String {
        let patch_type = format!("--type={patch_type}");
        self.kubectl_ok(&["patch", "PravegaCluster", name, &patch_type, "-p", patch])
            .await
    }

    /// `kubectl get ARGS -o jsonpath=PATH`, expecting success.
    pub async fn jsonpath(&self, args: &[&str], path: &str) -> String {
        let out = format!("jsonpath={path}");
        let mut all = vec!["get"];
        all.extend_from_slice(args);
        all.extend(["-o", out.as_str()]);
        self.kubectl_ok(&all).await
    }

    /// Polls `kubectl get ARGS -o jsonpath=PATH` until `done` accepts what it prints, and returns
    /// that; a failed kubectl counts as not yet (e.g. a pod between its deletion and its
    /// replacement, or an injected fault).
    pub async fn wait_jsonpath(
        &self,
        what: &str,
        timeout: Duration,
        args: &[&str],
        path: &str,
        done: impl Fn(&str) -> bool,
    ) -> String {
        let out = format!("jsonpath={path}");
        let mut all = vec!["get"];
        all.extend_from_slice(args);
        all.extend(["-o", out.as_str()]);
        eventually(what, timeout, || async {
            let r = self.kubectl(&all).await;
            if r.ok && done(&r.stdout) {
                Ok(r.stdout)
            } else {
                Err(format!("{}{}", r.stdout, r.stderr))
            }
        })
        .await
    }

    /// Waits until the row of `kubectl get PravegaCluster NAME` passes `check`; returns it.
    pub async fn wait_row(
        &self,
        name: &str,
        what: &str,
        timeout: Duration,
        check: impl Fn(&[(String, String)]) -> bool,
    ) -> Vec<(String, String)> {
        eventually(what, timeout, || async {
            let row = self.cluster_row(name).await.ok_or("no row")?;
            if check(&row) {
                Ok(row)
            } else {
                Err(format!("{row:?}"))
            }
        })
        .await
    }

    /// The images of the pods of cluster `example`, space-separated, as kubectl prints them.
    pub async fn member_images(&self) -> String {
        self.kubectl_retry(&[
            "get",
            "pods",
            "-l",
            "app.kubernetes.io/instance=example",
            "-o",
            "jsonpath={.items[*].spec.containers[0].image}",
        ])
        .await
    }

    /// The row of `kubectl get PravegaCluster` for `name`, as (column header, cell) pairs.
    pub async fn cluster_row(&self, name: &str) -> Option<Vec<(String, String)>> {
        let r = self.kubectl(&["get", "PravegaCluster", name]).await;
        if !r.ok {
            return None;
        }
        parse_table(&r.stdout)
            .into_iter()
            .find(|row| row.first().map(|(_, v)| v.as_str()) == Some(name))
    }

    /// Waits (60 s at most) until the row of `kubectl get PravegaCluster NAME` shows every
    /// `(column, value)` of `want` (an empty value: an empty cell), and returns the row.
    pub async fn wait_cluster(&self, name: &str, want: &[(&str, &str)]) -> Vec<(String, String)> {
        let what = format!(
            "{name} with {}",
            want.iter()
                .map(|(c, v)| format!("{c}='{v}'"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        self.wait_row(name, &what, Duration::from_secs(60), |row| {
            want.iter().all(|(c, v)| col(row, c) == *v)
        })
        .await
    }

    pub async fn shutdown(mut self) {
        if let Some(sim) = self.sim.take() {
            sim.shutdown().await;
        }
        self.sandbox.shutdown().await;
    }
}
