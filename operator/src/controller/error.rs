//! What goes wrong while reconciling, as the metrics and a person read it.

use crate::resources::BuildError;

/// What went wrong while reconciling.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A call to the API server failed.
    #[error("{action}: {}", api_message(source))]
    Kube {
        /// What was being done, e.g. `applying StatefulSet default/example-bookie`.
        action: String,
        /// The client error.
        #[source]
        source: kube::Error,
    },
    /// The desired objects could not be built.
    #[error("building the desired objects: {0}")]
    Build(#[from] BuildError),
    /// This replica may no longer lead: it writes nothing.
    #[error("not writing: {0}")]
    NotLeader(String),
    /// An object could not be serialized.
    #[error("serializing {what}: {source}")]
    Serialize {
        /// What was serialized.
        what: String,
        /// The serializer error.
        #[source]
        source: serde_json::Error,
    },
}

/// What a person should read of a client error: the API server's own message for an API error
/// (`StatefulSet.apps "x" is invalid: ...`), not a dump of its Status object.
pub fn api_message(error: &kube::Error) -> String {
    match error {
        kube::Error::Api(status) if !status.message.is_empty() => status.message.clone(),
        other => other.to_string(),
    }
}

impl Error {
    /// Every value [`Error::kind`] returns (the metrics start each at zero).
    pub const KINDS: [&'static str; 8] = [
        "Conflict",
        "Forbidden",
        "Invalid",
        "Api",
        "Client",
        "Build",
        "NotLeader",
        "Serialize",
    ];

    /// A short label for metrics, one of [`Error::KINDS`].
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Kube { source, .. } => match source {
                kube::Error::Api(s) if s.is_conflict() => "Conflict",
                kube::Error::Api(s) if s.is_forbidden() => "Forbidden",
                kube::Error::Api(s) if s.is_invalid() => "Invalid",
                kube::Error::Api(_) => "Api",
                _ => "Client",
            },
            Error::Build(_) => "Build",
            Error::NotLeader(_) => "NotLeader",
            Error::Serialize { .. } => "Serialize",
        }
    }

    pub(super) fn kube(action: impl Into<String>) -> impl FnOnce(kube::Error) -> Error {
        let action = action.into();
        move |source| Error::Kube { action, source }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_read_as_the_api_server_wrote_them() {
        let status: kube::core::Status = serde_json::from_value(serde_json::json!({
            "status": "Failure",
            "code": 422,
            "reason": "Invalid",
            "message": "StatefulSet.apps \"example-bookie\" is invalid: spec: Forbidden: updates to statefulset spec for fields other than 'replicas' are forbidden"
        }))
        .unwrap();
        let e = Error::Kube {
            action: "applying StatefulSet default/example-bookie".into(),
            source: kube::Error::Api(Box::new(status)),
        };
        assert_eq!(
            e.to_string(),
            "applying StatefulSet default/example-bookie: StatefulSet.apps \"example-bookie\" is invalid: spec: Forbidden: updates to statefulset spec for fields other than 'replicas' are forbidden"
        );
        assert!(!e.to_string().contains("Status {"));
    }
}
