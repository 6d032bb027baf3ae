//! One pod brought forward: scheduling, container starts and transitions, termination,
//! and the status written back.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Container, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{DeleteParams, Patch, PatchParams, Preconditions};
use kube::runtime::controller::Action;
use kube::{Api, ResourceExt};
use serde_json::{Value, json};

use super::super::env::{self, Addresses, Env, Sources};
use super::super::events;
use super::super::images::{self, Outcome};
use super::super::util::{earliest, is_status, is_terminating, now_time};
use super::super::{FailureMode, SimError};
use super::nodes::{host_ip, node_name};
use super::run_state::{ContainerRun, Run, transition};
use super::status::{
    container_events, containers_net, run_kind, running_status, terminated_status,
    unschedulable_status,
};
use super::{Kubelet, RECHECK_EVERY};

impl Kubelet {
    /// Stops a deleted pod's containers, then removes the pod once its
    /// (capped) grace period is over.
    pub(super) async fn terminate(
        &self,
        api: &Api<Pod>,
        pod: &Pod,
        uid: &str,
        assigned: bool,
    ) -> Result<Action, SimError> {
        let ns = pod.namespace().unwrap_or_else(|| "default".into());
        let name = pod.name_any();
        let now = Instant::now();
        let wall = now_time();
        let spec = pod.spec.clone().unwrap_or_default();
        let uid = uid.to_string();
        let grace = pod
            .metadata
            .deletion_grace_period_seconds
            .or(spec.termination_grace_period_seconds)
            .unwrap_or(30)
            .max(0) as u64;
        let mut grace = Duration::from_secs(grace);
        if let Some(cap) = self.config.termination_grace {
            grace = grace.min(cap);
        }
        if !assigned {
            // Never started: nothing to stop.
            grace = Duration::ZERO;
        }
        // Its containers stop serving.
        self.net.stop(&uid);
        let (since, write) = {
            let mut st = self.lock();
            // A stopping bookie is no longer registered.
            st.bookies.remove(&uid);
            let run = st.pods.entry(uid.clone()).or_default();
            let first = run.terminating_since.is_none();
            let since = *run.terminating_since.get_or_insert(now);
            // The containers stop: their logs end (`kubectl logs -f` returns).
            for c in run.containers.iter_mut() {
                c.logs.stop();
            }
            (since, first && assigned)
        };
        self.logs_changed();
        if write {
            for c in &spec.containers {
                events::emit(
                    &self.client,
                    events::reference(pod),
                    false,
                    "Killing",
                    format!("Stopping container {}", c.name),
                    "kubelet",
                );
            }
            let status = terminated_status(pod, &wall);
            if let Err(e) = api
                .patch_status(
                    &name,
                    &PatchParams::default(),
                    &Patch::Merge(json!({ "status": status })),
                )
                .await
                && !is_status(&e, 404)
            {
                tracing::debug!(pod = %name, namespace = %ns, error = %e, "could not report terminated containers");
            }
        }
        let elapsed = now.saturating_duration_since(since);
        if elapsed < grace {
            return Ok(Action::requeue(grace - elapsed));
        }
        let dp = DeleteParams {
            grace_period_seconds: Some(0),
            preconditions: Some(Preconditions {
                uid: Some(uid.clone()),
                resource_version: None,
            }),
            ..Default::default()
        };
        match api.delete(&name, &dp).await {
            Ok(_) => {}
            Err(e) if is_status(&e, 404) || is_status(&e, 409) => {}
            Err(e) => return Err(SimError::api(format!("delete pod {ns}/{name}"), e)),
        }
        self.forget(&uid);
        Ok(Action::await_change())
    }

    /// Brings one pod's simulated state forward and writes its status when it
    /// changed. Returns when to look again.
    pub(crate) async fn sync(&self, pod: &Pod) -> Result<Action, SimError> {
        let Some(uid) = pod.uid() else {
            return Ok(Action::await_change());
        };
        let ns = pod.namespace().unwrap_or_else(|| "default".into());
        let name = pod.name_any();
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &ns);
        let Some(spec) = pod.spec.as_ref() else {
            return Ok(Action::await_change());
        };
        let now = Instant::now();
        let wall = now_time();
        let assigned = spec.node_name.as_ref().filter(|n| !n.is_empty()).cloned();

        // A pod replaced by another of the same name is gone.
        let previous = self
            .lock()
            .names
            .insert((ns.clone(), name.clone()), uid.clone());
        if let Some(old) = previous.filter(|old| *old != uid) {
            self.forget(&old);
            self.lock()
                .names
                .insert((ns.clone(), name.clone()), uid.clone());
        }

        if is_terminating(&pod.metadata) {
            return self.terminate(&api, pod, &uid, assigned.is_some()).await;
        }

        // Scheduling.
        let images: Vec<String> = spec
            .containers
            .iter()
            .map(|c| c.image.clone().unwrap_or_default())
            .collect();
        let node_idx = match &assigned {
            Some(n) => n
                .strip_prefix("sandbox-node-")
                .and_then(|i| i.parse::<usize>().ok()),
            None => None,
        };
        let known_node = self.lock().pods.get(&uid).and_then(|r| r.node);
        let node_idx = match (assigned.is_some(), node_idx.or(known_node)) {
            (_, Some(i)) => i,
            (true, None) => 0,
            (false, None) => {
                let unschedulable = images
                    .iter()
                    .any(|i| self.config.failure_for(i) == Some(FailureMode::Unschedulable));
                if unschedulable || self.config.nodes == 0 {
                    let status = unschedulable_status(pod, self.config.nodes, &wall);
                    let message = status
                        .pointer("/conditions/0/message")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string();
                    if self.write_status(&api, pod, &uid, &name, status).await? {
                        events::emit(
                            &self.client,
                            events::reference(pod),
                            true,
                            "FailedScheduling",
                            message,
                            "default-scheduler",
                        );
                    }
                    return Ok(Action::await_change());
                }
                let idx = self.pick_node();
                self.bind(&api, &name, &uid, idx).await?;
                events::emit(
                    &self.client,
                    events::reference(pod),
                    false,
                    "Scheduled",
                    format!("Successfully assigned {ns}/{name} to {}", node_name(idx)),
                    "default-scheduler",
                );
                idx
            }
        };

        // Running: first what needs no API request.
        let has_ip = self
            .lock()
            .pods
            .get(&uid)
            .is_some_and(|r| r.pod_ip.is_some());
        let new_ip = if has_ip {
            None
        } else {
            let existing = pod.status.as_ref().and_then(|s| s.pod_ip.as_deref());
            self.net.assign_ip(&uid, existing, node_idx)
        };
        let (starting, pod_ip) = {
            let mut st = self.lock();
            let run = st.pods.entry(uid.clone()).or_default();
            run.node = Some(node_idx);
            if run.pod_ip.is_none() {
                run.pod_ip = new_ip;
            }
            if run.start_time.is_none() {
                run.start_time = Some(
                    pod.status
                        .as_ref()
                        .and_then(|s| s.start_time.clone())
                        .unwrap_or_else(|| wall.clone()),
                );
            }
            if run.containers.len() != spec.containers.len()
                || run
                    .containers
                    .iter()
                    .zip(&spec.containers)
                    .any(|(r, c)| r.name != c.name)
            {
                let statuses = pod
                    .status
                    .as_ref()
                    .and_then(|s| s.container_statuses.as_ref());
                run.containers = spec
                    .containers
                    .iter()
                    .map(|c| {
                        let cs = statuses.and_then(|v| v.iter().find(|s| s.name == c.name));
                        let (r, settled) = self.config.adopt_run(c, cs, now, &wall);
                        ContainerRun::new(
                            c.name.clone(),
                            c.image.clone().unwrap_or_default(),
                            r,
                            settled,
                        )
                    })
                    .collect();
                // What an earlier kubelet already reported is not repeated.
                run.reported = run
                    .containers
                    .iter()
                    .map(|c| match statuses {
                        Some(v) if v.iter().any(|s| s.name == c.name) => run_kind(&c.run),
                        _ => "",
                    })
                    .collect();
            }
            // The containers that start (or retry starting) now resolve
            // their environment.
            let starting: Vec<bool> = run
                .containers
                .iter()
                .zip(&spec.containers)
                .map(|(c, s)| {
                    c.env.is_none()
                        || Some(&c.image) != s.image.as_ref()
                        || matches!(c.run, Run::Pending | Run::ConfigError { .. })
                })
                .collect();
            (starting, run.pod_ip.clone())
        };

        // Their environment, reading the ConfigMaps and Secrets it refers to.
        let mut resolved: Vec<Option<Result<Env, String>>> = vec![None; spec.containers.len()];
        if starting.iter().any(|s| *s) {
            let mut sources = Sources::default();
            let chosen = || {
                spec.containers
                    .iter()
                    .zip(&starting)
                    .filter(|(_, s)| **s)
                    .map(|(c, _)| c)
            };
            sources.fetch(&self.client, &ns, chosen()).await?;
            let host = host_ip(node_idx);
            let addresses = Addresses {
                pod_ip: pod_ip.as_deref(),
                host_ip: Some(&host),
            };
            for (slot, (c, s)) in resolved
                .iter_mut()
                .zip(spec.containers.iter().zip(&starting))
            {
                if *s {
                    *slot = Some(env::resolve(pod, c, &sources, addresses));
                }
            }
        }

        let mut logs_changed = false;
        let (status, wake, net) = {
            let mut st = self.lock();
            let override_ready = st.overrides.get(&uid).copied();
            let bookies = st.bookie_clusters(&ns, &uid);
            let run = st.pods.entry(uid.clone()).or_default();
            for ((c, spec_c), env) in run
                .containers
                .iter_mut()
                .zip(&spec.containers)
                .zip(resolved)
            {
                self.step(c, spec_c, env, &bookies, now, &wall);
                logs_changed |= c.record_log(spec_c);
            }
            let kinds: Vec<&'static str> =
                run.containers.iter().map(|c| run_kind(&c.run)).collect();
            for (i, (c, kind)) in run.containers.iter().zip(&kinds).enumerate() {
                if run.reported.get(i) != Some(kind) {
                    container_events(&self.client, pod, c);
                }
            }
            run.reported = kinds;
            let mut recheck = false;
            for c in run.containers.iter_mut() {
                let unready = match &c.run {
                    Run::Running { unready, .. } => unready.clone(),
                    _ => None,
                };
                recheck |= unready.is_some() || matches!(c.run, Run::ConfigError { .. });
                if unready != c.reported_unready {
                    if let Some(message) = &unready {
                        // What the container says about it in its log.
                        logs_changed |= c.logs.write([message.clone()]);
                        events::emit(
                            &self.client,
                            events::reference(pod),
                            true,
                            "Unhealthy",
                            format!("Readiness probe failed: {message}"),
                            "kubelet",
                        );
                    }
                    c.reported_unready = unready;
                }
            }
            // The bookies of this pod that are up, registered under their
            // cluster name.
            let clusters: Vec<String> = run
                .containers
                .iter()
                .filter_map(|c| {
                    let Run::Running {
                        since,
                        unready: None,
                        ..
                    } = &c.run
                    else {
                        return None;
                    };
                    if now.saturating_duration_since(*since) < self.config.ready_delay_for(&c.image)
                    {
                        return None;
                    }
                    match &c.env {
                        Some(Ok(env)) => images::bookie_cluster(&c.image, env),
                        _ => None,
                    }
                })
                .collect();
            let prev = run.last_written.clone().or_else(|| {
                pod.status
                    .as_ref()
                    .and_then(|s| serde_json::to_value(s).ok())
            });
            let (status, wake) = running_status(
                pod,
                run,
                &self.config,
                node_idx,
                override_ready,
                now,
                &wall,
                prev.as_ref(),
            );
            let net = containers_net(pod, run, &status);
            if clusters.is_empty() {
                st.bookies.remove(&uid);
            } else {
                st.bookies.insert(uid.clone(), (ns.clone(), clusters));
            }
            let wake = if recheck {
                earliest(wake, Some(RECHECK_EVERY))
            } else {
                wake
            };
            (status, wake, net)
        };
        self.net.update(pod, &uid, net);
        if logs_changed {
            self.logs_changed();
        }
        self.write_status(&api, pod, &uid, &name, status).await?;
        Ok(match wake {
            Some(d) => Action::requeue(d.max(Duration::from_millis(10))),
            None => Action::await_change(),
        })
    }

    /// Brings one container forward: a start (first start, in-place image
    /// change, or a retry after `CreateContainerConfigError`) takes the
    /// environment `resolved` for it; then injected failures and the image's
    /// contract decide what it does.
    pub(super) fn step(
        &self,
        c: &mut ContainerRun,
        spec_c: &Container,
        resolved: Option<Result<Env, String>>,
        bookies: &HashSet<String>,
        now: Instant,
        wall: &Time,
    ) {
        let image = spec_c.image.clone().unwrap_or_default();
        let mut restart = matches!(c.run, Run::Pending).then_some(0);
        if c.image != image {
            // In-place image change: the container restarts with it.
            restart = Some(match &c.run {
                Run::Running { restarts, .. } => restarts + 1,
                _ => 0,
            });
            c.image = image;
            c.env = None;
            c.settled = false;
        }
        if let Some(resolved) = resolved
            && (restart.is_some() || c.env.is_none() || matches!(c.run, Run::ConfigError { .. }))
        {
            // An adopted container that already runs keeps running even if
            // its sources are gone by now.
            let running =
                restart.is_none() && matches!(c.run, Run::Running { .. } | Run::CrashLoop { .. });
            c.env = Some(match resolved {
                Err(_) if running => Ok(Env::new()),
                other => other,
            });
        }
        let outcome = match &c.env {
            Some(Ok(env)) if !c.settled => {
                let mounts: Vec<String> = spec_c
                    .volume_mounts
                    .iter()
                    .flatten()
                    .map(|m| m.mount_path.clone())
                    .collect();
                let memory_limit = spec_c
                    .resources
                    .as_ref()
                    .and_then(|r| r.limits.as_ref())
                    .and_then(|l| l.get("memory"))
                    .and_then(|q| env::quantity(&q.0))
                    .map(|b| b.ceil().max(0.0) as u64);
                images::play(
                    &images::Start {
                        image: &c.image,
                        args: spec_c.args.as_deref().unwrap_or_default(),
                        env,
                        memory_limit,
                        mounts: &mounts,
                    },
                    bookies,
                )
            }
            _ => Outcome::Run,
        };
        let want = self.config.want(&c.image, c.env.as_ref(), outcome);
        match restart {
            Some(restarts) => c.run = self.config.start(&c.image, want, now, wall, restarts),
            None => transition(&mut c.run, want, now, wall),
        }
        c.settled = c.env.is_some() && matches!(c.run, Run::Running { unready: None, .. });
    }

    /// Writes a pod status unless it was already written; tells whether it
    /// wrote.
    pub(super) async fn write_status(
        &self,
        api: &Api<Pod>,
        pod: &Pod,
        uid: &str,
        name: &str,
        status: Value,
    ) -> Result<bool, SimError> {
        {
            let mut st = self.lock();
            let run = st.pods.entry(uid.to_string()).or_default();
            match &run.last_written {
                Some(written) if written == &status => return Ok(false),
                // A pod adopted as it is: nothing to write.
                None if pod
                    .status
                    .as_ref()
                    .and_then(|s| serde_json::to_value(s).ok())
                    .as_ref()
                    == Some(&status) =>
                {
                    run.last_written = Some(status);
                    return Ok(false);
                }
                _ => {}
            }
        }
        match api
            .patch_status(
                name,
                &PatchParams::default(),
                &Patch::Merge(json!({ "status": status })),
            )
            .await
        {
            Ok(_) => {}
            Err(e) if is_status(&e, 404) => return Ok(false),
            Err(e) => return Err(SimError::api(format!("update pod {name} status"), e)),
        }
        self.lock()
            .pods
            .entry(uid.to_string())
            .or_default()
            .last_written = Some(status);
        Ok(true)
    }
}
