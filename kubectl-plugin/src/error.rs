//! Errors of the plugin. Each is printed on stderr and ends the command with exit code 1.

/// What went wrong.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No usable kubeconfig (or in-cluster configuration).
    #[error("cannot load the Kubernetes configuration: {0}")]
    Config(String),
    /// The API server answered with an error, printed as kubectl prints it (an admission
    /// webhook's denial comes this way).
    #[error("Error from server ({reason}): {message}")]
    Server {
        /// The Status reason (`Forbidden`, `NotFound`, `Invalid`, ...).
        reason: String,
        /// The Status message.
        message: String,
        /// The HTTP status code.
        code: u16,
    },
    /// The API server could not be reached or its answer could not be read.
    #[error("talking to the API server: {0}")]
    Transport(String),
    /// An object could not be read as a PravegaCluster (or another expected kind).
    #[error("reading {what}: {cause}")]
    Decode {
        /// What was being read.
        what: String,
        /// The decoder's message.
        cause: String,
    },
    /// The command cannot be carried out as asked.
    #[error("{0}")]
    Usage(String),
    /// The version rules deny the change (`plan`); the message is the webhook's.
    #[error("denied: {0}")]
    Denied(String),
    /// Writing the output failed.
    #[error("writing the output: {0}")]
    Output(#[from] std::io::Error),
}

impl Error {
    pub(crate) fn decode(what: impl Into<String>, cause: impl std::fmt::Display) -> Error {
        Error::Decode {
            what: what.into(),
            cause: cause.to_string(),
        }
    }
}

impl From<kube::Error> for Error {
    fn from(e: kube::Error) -> Self {
        match e {
            kube::Error::Api(status) => Error::Server {
                reason: if status.reason.is_empty() {
                    "Unknown".to_owned()
                } else {
                    status.reason.clone()
                },
                message: status.message.clone(),
                code: status.code,
            },
            other => Error::Transport(other.to_string()),
        }
    }
}
