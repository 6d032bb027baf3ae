//! Fixtures for the planner tests: clusters, workloads and pods as the API server would show them,
//! and a tiny model of the StatefulSet / Deployment controllers and the kubelet.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use pravega_crds::names::VERSION_KEY;
use pravega_crds::{
    Component, ConditionStatus, ConditionType, PravegaCluster, PravegaClusterSpec,
    PravegaClusterStatus, SafetyCheck,
};
use pravega_operator::planner::{
    self, Action, CheckFacts, CheckOutcome, Observation, Plan, ProbeRequest,
};
use pravega_operator::pods;
use serde_json::json;

pub const NAME: &str = "example";
pub const NS: &str = "default";

pub fn ts(secs: i64) -> Timestamp {
    Timestamp::from_second(secs).unwrap_or(Timestamp::UNIX_EPOCH)
}

pub fn time(secs: i64) -> Time {
    Time(ts(secs))
}

/// The revision hash a StatefulSet gives pods of a template at `version`.
pub fn rev(version: &str) -> String {
    format!("rev-{}", version.replace('.', "-"))
}

pub fn cluster(
    version: &str,
    bookies: i32,
    controllers: i32,
    segmentstores: i32,
) -> PravegaCluster {
    let mut spec: PravegaClusterSpec = serde_json::from_value(json!({ "version": version }))
        .unwrap_or_else(|e| panic!("spec: {e}"));
    spec.bookkeeper.replicas = bookies;
    spec.pravega.controller_replicas = controllers;
    spec.pravega.segment_store_replicas = segmentstores;
    let mut c = PravegaCluster::new(NAME, spec);
    c.metadata.namespace = Some(NS.to_owned());
    c.metadata.generation = Some(1);
    c
}

fn template(component: Component, version: &str) -> serde_json::Value {
    let mut labels = component.selector_labels(NAME);
    labels.insert(VERSION_KEY.to_owned(), version.to_owned());
    json!({
        "metadata": { "labels": labels, "annotations": { VERSION_KEY: version } },
        "spec": { "containers": [{ "name": component.label(), "image": format!("img:{version}") }] }
    })
}

/// A StatefulSet whose template runs `version`, at `generation`, observed up to `observed`.
pub fn sts(
    component: Component,
    replicas: i32,
    version: &str,
    generation: i64,
    observed: i64,
) -> StatefulSet {
    serde_json::from_value(json!({
        "metadata": { "name": component.workload_name(NAME), "namespace": NS, "generation": generation },
        "spec": {
            "replicas": replicas,
            "serviceName": component.service_name(NAME),
            "selector": { "matchLabels": component.selector_labels(NAME) },
            "updateStrategy": { "type": "OnDelete" },
            "template": template(component, version),
        },
        "status": {
            "replicas": replicas,
            "observedGeneration": observed,
            "updateRevision": rev(version),
        }
    }))
    .unwrap_or_else(|e| panic!("sts: {e}"))
}

/// A controller Deployment whose template runs `version`, with a finished rollout when
/// `complete`.
pub fn deployment(
    replicas: i32,
    version: &str,
    generation: i64,
    observed: i64,
    complete: bool,
) -> Deployment {
    let n = if complete { replicas } else { 0 };
    serde_json::from_value(json!({
        "metadata": { "name": Component::Controller.workload_name(NAME), "namespace": NS, "generation": generation },
        "spec": {
            "replicas": replicas,
            "selector": { "matchLabels": Component::Controller.selector_labels(NAME) },
            "template": template(Component::Controller, version),
        },
        "status": {
            "observedGeneration": observed,
            "replicas": replicas, "updatedReplicas": n, "readyReplicas": replicas, "availableReplicas": replicas,
            "conditions": [{ "type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable" }]
        }
    }))
    .unwrap_or_else(|e| panic!("deployment: {e}"))
}

pub fn set_deadline_exceeded(d: &mut Deployment) {
    if let Some(status) = d.status.as_mut() {
        status.conditions = Some(vec![
            serde_json::from_value(json!({
                "type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
                "message": "ReplicaSet has timed out progressing."
            }))
            .unwrap_or_else(|e| panic!("condition: {e}")),
        ]);
    }
}

/// A pod of `component` named `name` at `version`.
pub fn pod(component: Component, name: &str, version: &str, ready: bool) -> Pod {
    let mut labels = component.selector_labels(NAME);
    labels.insert(VERSION_KEY.to_owned(), version.to_owned());
    if component != Component::Controller {
        labels.insert("controller-revision-hash".to_owned(), rev(version));
    }
    serde_json::from_value(json!({
        "metadata": {
            "name": name, "namespace": NS, "labels": labels,
            "uid": format!("uid-{name}-{version}"), "resourceVersion": format!("rv-{name}-{version}"),
        },
        "status": {
            "phase": "Running",
            "conditions": [{ "type": "Ready", "status": if ready { "True" } else { "False" } }],
            "containerStatuses": [{
                "name": component.label(), "image": format!("img:{version}"), "imageID": "",
                "ready": ready, "restartCount": 0, "state": { "running": {} }
            }]
        }
    }))
    .unwrap_or_else(|e| panic!("pod: {e}"))
}

pub fn sts_pod(component: Component, ordinal: u32, version: &str, ready: bool) -> Pod {
    pod(
        component,
        &format!("{}-{ordinal}", component.workload_name(NAME)),
        version,
        ready,
    )
}

/// Puts the pod's container in `waiting` with `reason` (e.g. `CrashLoopBackOff`), not ready.
pub fn set_waiting(pod: &mut Pod, reason: &str, restarts: i32) {
    set_ready(pod, false);
    if let Some(cs) = pod
        .status
        .as_mut()
        .and_then(|s| s.container_statuses.as_mut())
        .and_then(|c| c.first_mut())
    {
        cs.restart_count = restarts;
        cs.state = Some(
            serde_json::from_value(json!({ "waiting": { "reason": reason } }))
                .unwrap_or_else(|e| panic!("state: {e}")),
        );
    }
}

pub fn set_ready(pod: &mut Pod, ready: bool) {
    if let Some(status) = pod.status.as_mut() {
        if let Some(c) = status.conditions.as_mut().and_then(|c| c.first_mut()) {
            c.status = if ready { "True" } else { "False" }.to_owned();
        }
        if let Some(cs) = status
            .container_statuses
            .as_mut()
            .and_then(|c| c.first_mut())
        {
            cs.ready = ready;
        }
    }
}

pub fn set_terminating(pod: &mut Pod, now: Timestamp) {
    pod.metadata.deletion_timestamp = Some(Time(now));
    pod.metadata.deletion_grace_period_seconds = Some(1);
}

pub fn pod_name(pod: &Pod) -> &str {
    pod.metadata.name.as_deref().unwrap_or_default()
}

pub fn pod_version(pod: &Pod) -> Option<&str> {
    pod.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(VERSION_KEY))
        .map(String::as_str)
}

/// The version label of a pod template.
fn template_version(t: &k8s_openapi::api::core::v1::PodTemplateSpec) -> Option<String> {
    t.metadata
        .as_ref()
        .and_then(|m| m.labels.as_ref())
        .and_then(|l| l.get(VERSION_KEY))
        .cloned()
}

pub fn template_version_of_sts(s: &StatefulSet) -> Option<String> {
    s.spec.as_ref().and_then(|s| template_version(&s.template))
}

pub fn template_version_of_deployment(d: &Deployment) -> Option<String> {
    d.spec.as_ref().and_then(|s| template_version(&s.template))
}

fn set_template_version(t: &mut k8s_openapi::api::core::v1::PodTemplateSpec, version: &str) {
    let meta = t.metadata.get_or_insert_with(Default::default);
    meta.labels
        .get_or_insert_with(Default::default)
        .insert(VERSION_KEY.to_owned(), version.to_owned());
    meta.annotations
        .get_or_insert_with(Default::default)
        .insert(VERSION_KEY.to_owned(), version.to_owned());
}

/// A status for a cluster that has been running `version` with every member ready.
pub fn running_status(version: &str) -> PravegaClusterStatus {
    let mut s = PravegaClusterStatus {
        current_version: Some(version.to_owned()),
        version_history: vec![version.to_owned()],
        ..Default::default()
    };
    s.set_condition(
        ConditionType::Upgrading,
        ConditionStatus::False,
        "",
        "",
        &time(0),
    );
    s.set_condition(
        ConditionType::Error,
        ConditionStatus::False,
        "",
        "",
        &time(0),
    );
    s
}

/// A cluster and everything the operator observes of it, plus a small model of the workload
/// controllers and the kubelet.
#[derive(Clone)]
pub struct World {
    pub cluster: PravegaCluster,
    pub bookkeeper: Option<StatefulSet>,
    pub controller: Option<Deployment>,
    pub segmentstore: Option<StatefulSet>,
    pub pods: Vec<Pod>,
    pub now: Timestamp,
    /// Images (`component@version`) whose containers crash-loop.
    pub crashing: BTreeSet<String>,
    /// What the members' HTTP APIs say when a plan asks for safety checks (a check not listed
    /// passes).
    pub check_outcomes: BTreeMap<SafetyCheck, CheckOutcome>,
    /// Safety-check probes the plans asked for.
    pub probes: Vec<ProbeRequest>,
    counter: u32,
}

impl World {
    /// A cluster of 3 bookies, `controllers` controllers and 3 segment stores, all running
    /// `version` and Ready.
    pub fn running(version: &str, bookies: i32, controllers: i32, segmentstores: i32) -> Self {
        let cluster = cluster(version, bookies, controllers, segmentstores);
        let mut pods = Vec::new();
        for (c, n) in [
            (Component::Bookkeeper, bookies),
            (Component::SegmentStore, segmentstores),
        ] {
            for i in 0..u32::try_from(n).unwrap_or(0) {
                pods.push(sts_pod(c, i, version, true));
            }
        }
        for i in 0..controllers {
            pods.push(pod(
                Component::Controller,
                &format!(
                    "{}-{}-{i}",
                    Component::Controller.workload_name(NAME),
                    rev(version)
                ),
                version,
                true,
            ));
        }
        let mut w = Self {
            bookkeeper: Some(sts(Component::Bookkeeper, bookies, version, 1, 1)),
            controller: Some(deployment(controllers, version, 1, 1, true)),
            segmentstore: Some(sts(Component::SegmentStore, segmentstores, version, 1, 1)),
            cluster,
            pods,
            now: ts(1_000_000),
            crashing: BTreeSet::new(),
            check_outcomes: BTreeMap::new(),
            probes: Vec::new(),
            counter: 0,
        };
        w.cluster.status = Some(running_status(version));
        w
    }

    /// A world made of the given objects.
    pub fn from_parts(
        cluster: PravegaCluster,
        bookkeeper: Option<StatefulSet>,
        controller: Option<Deployment>,
        segmentstore: Option<StatefulSet>,
        pods: Vec<Pod>,
        now: Timestamp,
    ) -> Self {
        Self {
            cluster,
            bookkeeper,
            controller,
            segmentstore,
            pods,
            now,
            crashing: BTreeSet::new(),
            check_outcomes: BTreeMap::new(),
            probes: Vec::new(),
            counter: 0,
        }
    }

    /// What the planner sees of this world.
    pub fn observation(&self) -> Observation<'_> {
        Observation {
            cluster: &self.cluster,
            bookkeeper: self.bookkeeper.as_ref(),
            controller: self.controller.as_ref(),
            segmentstore: self.segmentstore.as_ref(),
            pods: &self.pods,
            now: self.now,
            checks: None,
        }
    }

    /// What the prober would find for `request` in this world.
    pub fn facts(&self, request: &ProbeRequest) -> CheckFacts {
        CheckFacts {
            component: request.component,
            candidate: request.candidate.clone(),
            outcomes: request
                .checks
                .iter()
                .map(|c| {
                    let o = self.check_outcomes.get(c).cloned();
                    (*c, o.unwrap_or(CheckOutcome::Passed))
                })
                .collect(),
        }
    }

    /// The status the reconcile loop hands to the planner: the stored status with the member
    /// fields recomputed from the pods.
    pub fn member_status(&self) -> PravegaClusterStatus {
        pravega_operator::status::member_status(&self.cluster, &self.pods, &Time(self.now))
    }

    /// Runs the planner as the reconcile loop does: once, and again with the facts of the
    /// safety checks it asked for.
    pub fn plan(&self) -> Plan {
        self.plan_from(self.member_status())
    }

    /// [`Self::plan`] from the given status.
    pub fn plan_from(&self, status: PravegaClusterStatus) -> Plan {
        let plan = planner::plan(&self.observation(), status.clone());
        let Some(request) = &plan.probe else {
            return plan;
        };
        let facts = self.facts(request);
        let mut observation = self.observation();
        observation.checks = Some(&facts);
        planner::plan(&observation, status)
    }

    /// [`Self::plan`], remembering the probe it asked for.
    pub fn plan_probed(&mut self) -> Plan {
        let first = planner::plan(&self.observation(), self.member_status());
        if let Some(r) = &first.probe {
            self.probes.push(r.clone());
        }
        self.plan()
    }

    /// Stores `plan`'s status as the cluster's status.
    pub fn store(&mut self, plan: &Plan) {
        self.cluster.status = Some(plan.status.clone());
    }

    pub fn status(&self) -> PravegaClusterStatus {
        self.cluster.status.clone().unwrap_or_default()
    }

    pub fn pod_mut(&mut self, name: &str) -> &mut Pod {
        self.pods
            .iter_mut()
            .find(|p| pod_name(p) == name)
            .unwrap_or_else(|| panic!("no pod {name}"))
    }

    /// Marks pod `name` as terminating.
    pub fn terminate(&mut self, name: &str) {
        let now = self.now;
        set_terminating(self.pod_mut(name), now);
    }

    pub fn find_pod(&self, name: &str) -> Option<&Pod> {
        self.pods.iter().find(|p| pod_name(p) == name)
    }

    /// Applies template versions as server-side apply would: the generation moves only when the
    /// template changes.
    pub fn apply(&mut self, versions: &planner::ComponentVersions) {
        for (c, slot) in [
            (Component::Bookkeeper, &mut self.bookkeeper),
            (Component::SegmentStore, &mut self.segmentstore),
        ] {
            if let Some(s) = slot.as_mut() {
                let v = versions.get(c);
                if template_version_of_sts(s).as_deref() != Some(v) {
                    if let Some(spec) = s.spec.as_mut() {
                        set_template_version(&mut spec.template, v);
                    }
                    s.metadata.generation = Some(s.metadata.generation.unwrap_or(0) + 1);
                }
            }
        }
        if let Some(d) = self.controller.as_mut() {
            let v = versions.get(Component::Controller);
            if template_version_of_deployment(d).as_deref() != Some(v) {
                if let Some(spec) = d.spec.as_mut() {
                    set_template_version(&mut spec.template, v);
                }
                d.metadata.generation = Some(d.metadata.generation.unwrap_or(0) + 1);
            }
        }
    }

    /// Executes the actions with their preconditions; returns the names of the deleted pods.
    pub fn execute(&mut self, actions: &[Action]) -> Vec<String> {
        let mut deleted = Vec::new();
        let now = self.now;
        for a in actions {
            let Action::DeletePod {
                name,
                uid,
                resource_version,
                namespace,
                ..
            } = a;
            assert_eq!(namespace, NS);
            let pod = self.pod_mut(name);
            assert_eq!(
                pod.metadata.uid.as_deref(),
                Some(uid.as_str()),
                "uid precondition"
            );
            assert_eq!(
                pod.metadata.resource_version.as_deref(),
                Some(resource_version.as_str()),
                "resourceVersion precondition"
            );
            assert!(
                pod.metadata.deletion_timestamp.is_none(),
                "deleting {name} twice"
            );
            set_terminating(pod, now);
            deleted.push(name.clone());
        }
        deleted
    }

    fn new_pod(&mut self, component: Component, name: &str, version: &str) -> Pod {
        self.counter += 1;
        let mut p = pod(component, name, version, false);
        p.metadata.uid = Some(format!("uid-{name}-{}", self.counter));
        p.metadata.resource_version = Some(format!("rv-{}", self.counter));
        p
    }

    /// One round of the kubelet and the workload controllers, `secs` later: pods that are not
    /// Ready become Ready (or crash-loop when their image is in `crashing`), terminating pods go
    /// away after one round, StatefulSets recreate missing pods from their template, the
    /// Deployment rolls one pod at a time (maxSurge 1, maxUnavailable 0).
    pub fn tick(&mut self, secs: i64) {
        self.now = ts(self.now.as_second() + secs);
        // Kubelet.
        let crashing = self.crashing.clone();
        for p in &mut self.pods {
            if p.metadata.deletion_timestamp.is_some() {
                continue;
            }
            let component = p
                .metadata
                .labels
                .as_ref()
                .and_then(pravega_crds::names::component_of);
            let key = format!(
                "{}@{}",
                component.map(Component::as_str).unwrap_or_default(),
                pod_version(p).unwrap_or_default()
            );
            if crashing.contains(&key) {
                let restarts = p
                    .status
                    .as_ref()
                    .and_then(|s| s.container_statuses.as_ref())
                    .and_then(|c| c.first())
                    .map(|c| c.restart_count)
                    .unwrap_or(0);
                set_waiting(p, "CrashLoopBackOff", restarts + 1);
            } else {
                set_ready(p, true);
            }
        }
        // Terminating pods go away after one round.
        self.pods
            .retain(|p| p.metadata.deletion_grace_period_seconds != Some(0));
        for p in &mut self.pods {
            if let Some(n) = p.metadata.deletion_grace_period_seconds.as_mut() {
                *n = 0;
            }
        }
        // StatefulSet controllers.
        for c in [Component::Bookkeeper, Component::SegmentStore] {
            let slot = match c {
                Component::Bookkeeper => &mut self.bookkeeper,
                _ => &mut self.segmentstore,
            };
            let Some(s) = slot.as_mut() else { continue };
            let version = template_version_of_sts(s).unwrap_or_default();
            let replicas = s.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
            if let Some(st) = s.status.as_mut() {
                st.observed_generation = s.metadata.generation;
                st.update_revision = Some(rev(&version));
            }
            for i in 0..u32::try_from(replicas).unwrap_or(0) {
                let name = format!("{}-{i}", c.workload_name(NAME));
                if self.find_pod(&name).is_none() {
                    let p = self.new_pod(c, &name, &version);
                    self.pods.push(p);
                }
            }
        }
        // Deployment controller.
        if let Some(mut d) = self.controller.clone() {
            let c = Component::Controller;
            let version = template_version_of_deployment(&d).unwrap_or_default();
            let desired = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
            let is_ctrl = |p: &Pod| {
                p.metadata
                    .labels
                    .as_ref()
                    .and_then(pravega_crds::names::component_of)
                    == Some(c)
            };
            let live: Vec<&Pod> = self
                .pods
                .iter()
                .filter(|p| is_ctrl(p) && p.metadata.deletion_timestamp.is_none())
                .collect();
            let new: Vec<&Pod> = live
                .iter()
                .copied()
                .filter(|p| pod_version(p) == Some(&*version))
                .collect();
            let new_ready = new.iter().filter(|p| pods::is_ready(p)).count();
            let old: Vec<String> = live
                .iter()
                .filter(|p| pod_version(p) != Some(&*version))
                .map(|p| pod_name(p).to_owned())
                .collect();
            let live_n = live.len();
            let new_n = new.len();
            let desired_n = usize::try_from(desired).unwrap_or(0);
            if new_ready > 0 && live_n > desired_n {
                if let Some(name) = old.first() {
                    let now = self.now;
                    set_terminating(self.pod_mut(name), now);
                }
            } else if new_n < desired_n && live_n < desired_n + 1 && new_ready == new_n {
                let name = format!(
                    "{}-{}-{}",
                    c.workload_name(NAME),
                    rev(&version),
                    self.counter
                );
                let p = self.new_pod(c, &name, &version);
                self.pods.push(p);
            }
            let live: Vec<&Pod> = self
                .pods
                .iter()
                .filter(|p| is_ctrl(p) && p.metadata.deletion_timestamp.is_none())
                .collect();
            let count = |f: &dyn Fn(&Pod) -> bool| {
                i32::try_from(live.iter().filter(|p| f(p)).count()).unwrap_or(0)
            };
            if let Some(st) = d.status.as_mut() {
                st.observed_generation = d.metadata.generation;
                st.replicas = Some(count(&|_| true));
                st.updated_replicas = Some(count(&|p| pod_version(p) == Some(&*version)));
                st.ready_replicas = Some(count(&|p| pods::is_ready(p)));
                st.available_replicas = st.ready_replicas;
            }
            self.controller = Some(d);
        }
    }

    /// Pods of `component` that are not Ready, terminating, or missing (StatefulSets).
    pub fn down(&self, component: Component) -> usize {
        let desired = component.replicas(&self.cluster.spec);
        let pods: Vec<&Pod> = self
            .pods
            .iter()
            .filter(|p| {
                p.metadata
                    .labels
                    .as_ref()
                    .and_then(pravega_crds::names::component_of)
                    == Some(component)
            })
            .collect();
        let up = pods
            .iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none() && pods::is_ready(p))
            .count();
        usize::try_from(desired).unwrap_or(0).saturating_sub(up)
    }
}
