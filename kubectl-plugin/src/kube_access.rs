//! Talking to the API server the way kubectl does: the kubeconfig from `--kubeconfig`, else
//! `KUBECONFIG`, else `~/.kube/config`, else the in-cluster configuration; `--context`; the
//! namespace from `-n`, else the context's, else `default`. Writes are sent as raw requests so
//! that the API server's `Warning` headers (admission warnings) can be shown as kubectl shows them.

use std::path::PathBuf;

use http_body_util::BodyExt;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::events::v1::Event;
use kube::api::{ListParams, Patch, PatchParams, ValidationDirective};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::core::{ApiResource, DynamicObject};
use kube::{Api, Client, Config, Resource};
use pravega_crds::PravegaCluster;
use pravega_crds::names::cluster_selector;
use serde_json::Value;

use crate::error::Error;

/// Where to connect: kubectl's global options.
#[derive(Debug, Clone, Default)]
pub struct ConnectOptions {
    /// `--kubeconfig`.
    pub kubeconfig: Option<PathBuf>,
    /// `--context`.
    pub context: Option<String>,
    /// `-n` / `--namespace`.
    pub namespace: Option<String>,
}

/// A client and the namespace the command works in.
#[derive(Clone)]
pub struct Target {
    /// The API client.
    pub client: Client,
    /// The namespace of the PravegaCluster.
    pub namespace: String,
    /// The namespace was given with `-n` (repeated in the commands the plugin suggests).
    pub namespace_given: bool,
}

impl Target {
    /// Connects as kubectl would with `options`.
    pub async fn connect(options: &ConnectOptions) -> Result<Target, Error> {
        let kube_options = KubeConfigOptions {
            context: options.context.clone(),
            cluster: None,
            user: None,
        };
        let config = match &options.kubeconfig {
            Some(path) => {
                let file = Kubeconfig::read_from(path)
                    .map_err(|e| Error::Config(format!("{}: {e}", path.display())))?;
                Config::from_custom_kubeconfig(file, &kube_options)
                    .await
                    .map_err(|e| Error::Config(e.to_string()))?
            }
            None if options.context.is_some() => Config::from_kubeconfig(&kube_options)
                .await
                .map_err(|e| Error::Config(e.to_string()))?,
            None => Config::infer()
                .await
                .map_err(|e| Error::Config(e.to_string()))?,
        };
        let namespace = options
            .namespace
            .clone()
            .unwrap_or_else(|| config.default_namespace.clone());
        let mut config = config;
        // Audit logs tell the plugin's requests apart.
        config.headers.push((
            http::header::USER_AGENT,
            http::HeaderValue::from_static(concat!("kubectl-pravega/", env!("CARGO_PKG_VERSION"))),
        ));
        let client = Client::try_from(config).map_err(|e| Error::Config(e.to_string()))?;
        Ok(Target {
            client,
            namespace,
            namespace_given: options.namespace.is_some(),
        })
    }

    /// `-n NS ` when the namespace was given, for the commands the plugin suggests.
    pub fn namespace_flag(&self) -> String {
        if self.namespace_given {
            format!("-n {} ", self.namespace)
        } else {
            String::new()
        }
    }

    /// The PravegaCluster API as untyped objects (fields another version of the CRD adds, such as
    /// `status.upgrade.blockedBy`, are kept).
    pub fn clusters(&self) -> Api<DynamicObject> {
        Api::namespaced_with(self.client.clone(), &self.namespace, &cluster_resource())
    }

    /// The cluster `name` as JSON.
    pub async fn cluster(&self, name: &str) -> Result<Value, Error> {
        let object = self.clusters().get(name).await?;
        serde_json::to_value(&object)
            .map_err(|e| Error::decode(format!("pravegacluster {name}"), e))
    }

    /// The pods of cluster `name` (its label selector).
    pub async fn pods(&self, name: &str) -> Result<Vec<Pod>, Error> {
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &self.namespace);
        let list = api
            .list(&ListParams::default().labels(&cluster_selector(name)))
            .await?;
        Ok(list.items)
    }

    /// Events about cluster `name` (`events.k8s.io/v1`, whose `regarding` names it).
    pub async fn events(&self, name: &str) -> Result<Vec<Event>, Error> {
        let api: Api<Event> = Api::namespaced(self.client.clone(), &self.namespace);
        let list = api.list(&ListParams::default()).await?;
        Ok(list
            .items
            .into_iter()
            .filter(|e| {
                e.regarding.as_ref().is_some_and(|r| {
                    r.kind.as_deref() == Some("PravegaCluster") && r.name.as_deref() == Some(name)
                })
            })
            .collect())
    }

    /// Sends a JSON merge patch of cluster `name` (`dry_run`: server-side dry run, nothing is
    /// persisted), with strict field validation so that a field the installed CRD does not know
    /// is refused rather than silently dropped. Returns the API server's warnings (admission
    /// warnings included) whatever the outcome, and the patched object or the error.
    pub async fn merge_patch(
        &self,
        name: &str,
        patch: &Value,
        dry_run: bool,
    ) -> (Vec<String>, Result<Value, Error>) {
        let params = PatchParams {
            dry_run,
            field_validation: Some(ValidationDirective::Strict),
            ..PatchParams::default()
        };
        let url = PravegaCluster::url_path(&(), Some(&self.namespace));
        let request = match kube::core::Request::new(url).patch(name, &params, &Patch::Merge(patch))
        {
            Ok(r) => r,
            Err(e) => return (Vec::new(), Err(Error::Transport(e.to_string()))),
        };
        let response = match self
            .client
            .send(request.map(kube::client::Body::from))
            .await
        {
            Ok(r) => r,
            Err(e) => return (Vec::new(), Err(Error::from(e))),
        };
        let warnings: Vec<String> = response
            .headers()
            .get_all(http::header::WARNING)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(parse_warning)
            .collect();
        let status = response.status();
        let body = match response.into_body().collect().await {
            Ok(b) => b.to_bytes(),
            Err(e) => return (warnings, Err(Error::Transport(e.to_string()))),
        };
        if status.is_success() {
            let object = serde_json::from_slice(&body)
                .map_err(|e| Error::decode(format!("the patched pravegacluster {name}"), e));
            (warnings, object)
        } else {
            (warnings, Err(server_error(status.as_u16(), &body)))
        }
    }
}

/// The PravegaCluster resource (`pravega.pravega.io/v1beta1`, `pravegaclusters`).
pub fn cluster_resource() -> ApiResource {
    ApiResource::erase::<PravegaCluster>(&())
}

/// The error of a failed request, from its `Status` body (or the raw body when it is not one).
pub fn server_error(code: u16, body: &[u8]) -> Error {
    let status: Option<kube::core::Status> = serde_json::from_slice(body).ok();
    match status {
        Some(s) if !s.message.is_empty() => Error::Server {
            reason: if s.reason.is_empty() {
                "Unknown".to_owned()
            } else {
                s.reason
            },
            message: s.message,
            code,
        },
        _ => Error::Server {
            reason: http::StatusCode::from_u16(code)
                .ok()
                .and_then(|c| c.canonical_reason())
                .unwrap_or("Unknown")
                .replace(' ', ""),
            message: String::from_utf8_lossy(body).trim().to_owned(),
            code,
        },
    }
}

/// The text of a `Warning` header (RFC 7234: `299 - "text"`), as kubectl prints it.
pub fn parse_warning(header: &str) -> Option<String> {
    let mut parts = header.splitn(3, ' ');
    let code = parts.next()?;
    let _agent = parts.next()?;
    let rest = parts.next()?.trim();
    if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let quoted = rest.strip_prefix('"')?;
    let mut text = String::new();
    let mut chars = quoted.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => text.push(chars.next()?),
            '"' => return Some(text),
            c => text.push(c),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warning_headers_are_unquoted() {
        assert_eq!(
            parse_warning(r#"299 - "spec.version goes from 0.4.0 to 0.6.0""#).as_deref(),
            Some("spec.version goes from 0.4.0 to 0.6.0")
        );
        assert_eq!(
            parse_warning(r#"299 - "a \"quoted\" word""#).as_deref(),
            Some(r#"a "quoted" word"#)
        );
        assert_eq!(parse_warning("garbage"), None);
        assert_eq!(parse_warning(r#"299 - "unterminated"#), None);
    }

    #[test]
    fn failures_read_as_kubectl_prints_them() {
        let body = br#"{"kind":"Status","apiVersion":"v1","status":"Failure","message":"admission webhook \"pravegacluster.pravega.pravega.io\" denied the request: downgrading the cluster from 0.4.0 to 0.3.0 is not supported","reason":"Forbidden","code":403}"#;
        assert_eq!(
            server_error(403, body).to_string(),
            "Error from server (Forbidden): admission webhook \"pravegacluster.pravega.pravega.io\" denied the request: downgrading the cluster from 0.4.0 to 0.3.0 is not supported"
        );
        assert_eq!(
            server_error(502, b"bad gateway").to_string(),
            "Error from server (BadGateway): bad gateway"
        );
    }
}
