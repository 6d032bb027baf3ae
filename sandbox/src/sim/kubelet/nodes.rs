//! The simulated nodes and the scheduler: node registration, placement and binding.

use k8s_openapi::api::core::v1::{
    Binding, Node, NodeAddress, NodeCondition, NodeStatus, NodeSystemInfo, ObjectReference, Pod,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::{Value, json};

use super::super::SimError;
use super::super::util::{is_status, now_time};
use super::Kubelet;

pub(crate) fn node_name(i: usize) -> String {
    format!("sandbox-node-{i}")
}

pub(super) fn host_ip(i: usize) -> String {
    format!("172.18.0.{}", i + 2)
}

impl Kubelet {
    /// Makes sure the simulated nodes exist and are Ready.
    pub(crate) async fn register_nodes(&self) -> Result<(), SimError> {
        let api: Api<Node> = Api::all(self.client.clone());
        for i in 0..self.config.nodes {
            let name = node_name(i);
            let node = Node {
                metadata: ObjectMeta {
                    name: Some(name.clone()),
                    labels: Some(
                        [
                            ("kubernetes.io/hostname", name.as_str()),
                            ("kubernetes.io/os", "linux"),
                            ("kubernetes.io/arch", "amd64"),
                        ]
                        .into_iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                    ),
                    ..Default::default()
                },
                spec: None,
                status: None,
            };
            match api.create(&PostParams::default(), &node).await {
                Ok(_) => {}
                Err(e) if is_status(&e, 409) => {}
                Err(e) => return Err(SimError::api(format!("create node {name}"), e)),
            }
            let now = now_time();
            let resources: std::collections::BTreeMap<String, Quantity> = [
                ("cpu", "8"),
                ("memory", "32Gi"),
                ("pods", "110"),
                ("ephemeral-storage", "100Gi"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), Quantity(v.to_string())))
            .collect();
            let status = NodeStatus {
                conditions: Some(vec![NodeCondition {
                    type_: "Ready".into(),
                    status: "True".into(),
                    reason: Some("KubeletReady".into()),
                    message: Some("kubelet is posting ready status".into()),
                    last_heartbeat_time: Some(now.clone()),
                    last_transition_time: Some(now),
                }]),
                addresses: Some(vec![
                    NodeAddress {
                        type_: "InternalIP".into(),
                        address: host_ip(i),
                    },
                    NodeAddress {
                        type_: "Hostname".into(),
                        address: name.clone(),
                    },
                ]),
                capacity: Some(resources.clone()),
                allocatable: Some(resources),
                node_info: Some(NodeSystemInfo {
                    architecture: "amd64".into(),
                    boot_id: format!("sandbox-boot-{i}"),
                    container_runtime_version: "sandbox://1.0.0".into(),
                    kernel_version: "6.0.0-sandbox".into(),
                    kube_proxy_version: String::new(),
                    kubelet_version: "v1.33.0-sandbox".into(),
                    machine_id: format!("sandbox-machine-{i}"),
                    operating_system: "linux".into(),
                    os_image: "Pravega Sandbox".into(),
                    system_uuid: format!("sandbox-node-uuid-{i}"),
                    swap: None,
                }),
                ..Default::default()
            };
            let ready = api
                .get_opt(&name)
                .await
                .map_err(|e| SimError::api(format!("get node {name}"), e))?
                .and_then(|n| n.status)
                .and_then(|s| s.conditions)
                .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
            if !ready {
                api.patch_status(
                    &name,
                    &PatchParams::default(),
                    &Patch::Merge(json!({ "status": status })),
                )
                .await
                .map_err(|e| SimError::api(format!("update node {name} status"), e))?;
            }
            // Where the API server reaches this kubelet (`pods/log`).
            api.patch_status(
                &name,
                &PatchParams::default(),
                &Patch::Merge(json!({ "status": { "daemonEndpoints": {
                    "kubeletEndpoint": { "Port": self.port } } } })),
            )
            .await
            .map_err(|e| SimError::api(format!("update node {name} status"), e))?;
        }
        Ok(())
    }

    pub(super) fn pick_node(&self) -> usize {
        let st = self.lock();
        let mut load = vec![0usize; self.config.nodes.max(1)];
        for r in st.pods.values() {
            if let (Some(n), None) = (r.node, r.terminating_since)
                && let Some(l) = load.get_mut(n)
            {
                *l += 1;
            }
        }
        load.iter()
            .enumerate()
            .min_by_key(|(i, l)| (**l, *i))
            .map(|(i, _)| i)
            .unwrap_or(0)
    }

    pub(super) async fn bind(
        &self,
        api: &Api<Pod>,
        name: &str,
        uid: &str,
        idx: usize,
    ) -> Result<(), SimError> {
        let node = node_name(idx);
        let use_binding = self.lock().binding != Some(false);
        if use_binding {
            let binding = Binding {
                metadata: ObjectMeta {
                    name: Some(name.to_string()),
                    ..Default::default()
                },
                target: ObjectReference {
                    api_version: Some("v1".into()),
                    kind: Some("Node".into()),
                    name: Some(node.clone()),
                    ..Default::default()
                },
            };
            match api
                .create_subresource::<_, Value>("binding", name, &PostParams::default(), &binding)
                .await
            {
                Ok(_) => {
                    self.lock().binding = Some(true);
                    self.lock().pods.entry(uid.to_string()).or_default().node = Some(idx);
                    return Ok(());
                }
                Err(e) if is_status(&e, 409) => return Ok(()),
                Err(e) => {
                    // Without a binding subresource, set the node name
                    // directly instead.
                    if api.get_opt(name).await.ok().flatten().is_none() {
                        return Ok(());
                    }
                    tracing::debug!(error = %e, "pods/binding not available, binding by patching spec.nodeName");
                    self.lock().binding = Some(false);
                }
            }
        }
        api.patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({ "spec": { "nodeName": node } })),
        )
        .await
        .map_err(|e| SimError::api(format!("bind pod {name} to {node}"), e))?;
        self.lock().pods.entry(uid.to_string()).or_default().node = Some(idx);
        Ok(())
    }
}
