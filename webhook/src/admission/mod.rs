//! Answering an `admission.k8s.io/v1` `AdmissionReview` for a `PravegaCluster` with the shared
//! version rules of `pravega-crds`.
//!
//! Everything here is pure: [`review`] turns the bytes of a request body into a [`Reviewed`]
//! (what was asked and what was decided), and [`Reviewed::to_http`] renders the answer. The
//! webhook has no side effects, so `dryRun` requests are answered exactly like the others.

use pravega_crds::spec_rules::check_cluster_name;
use pravega_crds::{
    ConditionStatus, ConditionType, Decision, DenyReason, PravegaClusterSpec, StatusFacts,
    validate_create, validate_update,
};
use serde::{Deserialize, Serialize};

mod decode;
mod strict;

use decode::decode;
use strict::{object, objects, optional_object};

/// `apiVersion` of the reviews this webhook speaks.
pub const REVIEW_API_VERSION: &str = "admission.k8s.io/v1";
/// `kind` of the reviews this webhook speaks.
pub const REVIEW_KIND: &str = "AdmissionReview";
/// API group of the checked resource.
pub const CLUSTER_GROUP: &str = "pravega.pravega.io";
/// Kind of the checked resource.
pub const CLUSTER_KIND: &str = "PravegaCluster";

/// The admission operation of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// `CREATE`
    Create,
    /// `UPDATE`
    Update,
    /// `DELETE`
    Delete,
    /// `CONNECT`
    Connect,
}

impl Operation {
    /// Parses the API's spelling (`CREATE`, ...).
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "CREATE" => Some(Operation::Create),
            "UPDATE" => Some(Operation::Update),
            "DELETE" => Some(Operation::Delete),
            "CONNECT" => Some(Operation::Connect),
            _ => None,
        }
    }

    /// The API's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Create => "CREATE",
            Operation::Update => "UPDATE",
            Operation::Delete => "DELETE",
            Operation::Connect => "CONNECT",
        }
    }
}

/// Why a request could not be answered with the rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The body is not a JSON object.
    NotJson,
    /// The body is JSON but not an `admission.k8s.io/v1` `AdmissionReview`.
    UnsupportedReview,
    /// A JSON object of the body has the same key twice: which one counts is ambiguous.
    DuplicateKey,
    /// The review has no `request`.
    MissingRequest,
    /// The `request` is not a valid `AdmissionRequest` (e.g. no `uid`, unknown operation).
    InvalidRequest,
    /// `request.object` (or `request.oldObject` for UPDATE) is missing.
    MissingObject,
    /// The object does not deserialize as a `PravegaCluster`.
    InvalidObject,
    /// The body is larger than the limit.
    BodyTooLarge,
    /// The body could not be read (the connection broke).
    BodyUnreadable,
    /// The request took longer than the request timeout.
    Timeout,
}

impl ErrorKind {
    /// CamelCase name, as used in the `reason` metrics label.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::NotJson => "NotJson",
            ErrorKind::UnsupportedReview => "UnsupportedReview",
            ErrorKind::DuplicateKey => "DuplicateKey",
            ErrorKind::MissingRequest => "MissingRequest",
            ErrorKind::InvalidRequest => "InvalidRequest",
            ErrorKind::MissingObject => "MissingObject",
            ErrorKind::InvalidObject => "InvalidObject",
            ErrorKind::BodyTooLarge => "BodyTooLarge",
            ErrorKind::BodyUnreadable => "BodyUnreadable",
            ErrorKind::Timeout => "Timeout",
        }
    }

    /// The HTTP status of a plain-text answer (when no review can be answered).
    pub fn http_status(self) -> u16 {
        match self {
            ErrorKind::BodyTooLarge => 413,
            ErrorKind::Timeout => 408,
            _ => 400,
        }
    }
}

/// What the webhook decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Allowed after checking the rules; `warnings` are shown by kubectl.
    Allowed {
        /// Warnings of the rules.
        warnings: Vec<String>,
    },
    /// Allowed without checking: the request is not one the rules are about.
    NotChecked {
        /// Why it was not checked (for the debug log).
        why: &'static str,
    },
    /// Denied by the rules.
    Denied {
        /// Stable reason.
        reason: DenyReason,
        /// The rule's message: what was asked, why not, what is allowed.
        message: String,
    },
    /// The request could not be decoded.
    Invalid {
        /// What was wrong.
        kind: ErrorKind,
        /// A message a person can act on.
        message: String,
    },
}

impl Verdict {
    /// `allowed`, `denied` or `error`: the `decision` metrics label and log field.
    pub fn decision(&self) -> &'static str {
        match self {
            Verdict::Allowed { .. } | Verdict::NotChecked { .. } => "allowed",
            Verdict::Denied { .. } => "denied",
            Verdict::Invalid { .. } => "error",
        }
    }

    /// The `reason` metrics label: `Valid`, `NotChecked`, a [`DenyReason`] or an [`ErrorKind`].
    pub fn reason(&self) -> &'static str {
        match self {
            Verdict::Allowed { .. } => "Valid",
            Verdict::NotChecked { .. } => "NotChecked",
            Verdict::Denied { reason, .. } => reason.as_str(),
            Verdict::Invalid { kind, .. } => kind.as_str(),
        }
    }

    /// True when the request is allowed.
    pub fn is_allowed(&self) -> bool {
        matches!(self, Verdict::Allowed { .. } | Verdict::NotChecked { .. })
    }
}

/// What a request asked, as far as it could be read (for logs, metrics and the answer).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestInfo {
    /// `request.uid`, echoed in the answer.
    pub uid: Option<String>,
    /// `request.operation`.
    pub operation: Option<Operation>,
    /// `request.namespace`.
    pub namespace: Option<String>,
    /// `request.name`, or the object's name.
    pub name: Option<String>,
    /// `request.dryRun`.
    pub dry_run: bool,
}

impl RequestInfo {
    /// The `operation` metrics label (`UNKNOWN` when it could not be read).
    pub fn operation_label(&self) -> &'static str {
        self.operation.map_or("UNKNOWN", Operation::as_str)
    }
}

/// A reviewed request: what was asked and what was decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reviewed {
    /// What was asked.
    pub info: RequestInfo,
    /// What was decided.
    pub verdict: Verdict,
}

/// An HTTP answer: status, content type and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpAnswer {
    /// HTTP status code.
    pub status: u16,
    /// `Content-Type` of the body.
    pub content_type: &'static str,
    /// The body.
    pub body: Vec<u8>,
}

/// `AdmissionReview` carrying a response, as sent back to the API server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AdmissionReviewResponse {
    /// Always `admission.k8s.io/v1`.
    pub api_version: String,
    /// Always `AdmissionReview`.
    pub kind: String,
    /// The answer.
    pub response: AdmissionResponse,
}

/// The `response` of an `AdmissionReview`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AdmissionResponse {
    /// The request's `uid`.
    pub uid: String,
    /// Whether the request is admitted.
    pub allowed: bool,
    /// Why not, when denied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ResponseStatus>,
    /// Warnings shown to the user (by kubectl as `Warning: ...`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// The `metav1.Status` of a denial.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResponseStatus {
    /// Always `Failure`.
    pub status: String,
    /// The message kubectl prints after `denied the request: `.
    pub message: String,
    /// `Forbidden` (a rule said no) or `BadRequest` (the request could not be read).
    pub reason: String,
    /// 403 or 400.
    pub code: u16,
}

impl Reviewed {
    fn new(info: RequestInfo, verdict: Verdict) -> Self {
        Self { info, verdict }
    }

    /// A request that could not be read far enough to recover anything (body too large,
    /// unreadable, timed out).
    pub fn unreadable(kind: ErrorKind, message: impl Into<String>) -> Self {
        Invalid::new(&RequestInfo::default(), kind, message).into()
    }

    /// The `AdmissionReview` answer, when the request's `uid` is known.
    pub fn response(&self) -> Option<AdmissionReviewResponse> {
        let uid = self.info.uid.clone()?;
        let (allowed, status, warnings) = match &self.verdict {
            Verdict::Allowed { warnings } => (true, None, warnings.clone()),
            Verdict::NotChecked { .. } => (true, None, Vec::new()),
            Verdict::Denied { message, .. } => (
                false,
                Some(ResponseStatus {
                    status: "Failure".to_owned(),
                    message: message.clone(),
                    reason: "Forbidden".to_owned(),
                    code: 403,
                }),
                Vec::new(),
            ),
            Verdict::Invalid { message, .. } => (
                false,
                Some(ResponseStatus {
                    status: "Failure".to_owned(),
                    message: message.clone(),
                    reason: "BadRequest".to_owned(),
                    code: 400,
                }),
                Vec::new(),
            ),
        };
        Some(AdmissionReviewResponse {
            api_version: REVIEW_API_VERSION.to_owned(),
            kind: REVIEW_KIND.to_owned(),
            response: AdmissionResponse {
                uid,
                allowed,
                status,
                warnings,
            },
        })
    }

    /// The HTTP answer: an `AdmissionReview` (HTTP 200) whenever the request's `uid` is known,
    /// else a plain-text error (HTTP 400, or 413 / 408 for an oversized or too slow body).
    pub fn to_http(&self) -> HttpAnswer {
        if let Some(review) = self.response() {
            match serde_json::to_vec(&review) {
                Ok(body) => {
                    return HttpAnswer {
                        status: 200,
                        content_type: "application/json",
                        body,
                    };
                }
                Err(e) => {
                    // Serializing strings and booleans cannot fail; answer plainly if it does.
                    return plain(500, format!("encoding the AdmissionReview answer: {e}"));
                }
            }
        }
        match &self.verdict {
            Verdict::Invalid { kind, message } => plain(kind.http_status(), message.clone()),
            // Without a uid there is no review to answer; only invalid requests lack one.
            other => plain(
                400,
                format!("request.uid is missing (decision was {})", other.decision()),
            ),
        }
    }
}

fn plain(status: u16, mut message: String) -> HttpAnswer {
    message.push('\n');
    HttpAnswer {
        status,
        content_type: "text/plain; charset=utf-8",
        body: message.into_bytes(),
    }
}

/// Longest part of a client-supplied string repeated in a message.
const SHOWN_LEN: usize = 64;

fn shown(s: &str) -> String {
    if s.chars().count() <= SHOWN_LEN {
        s.to_owned()
    } else {
        let mut out: String = s.chars().take(SHOWN_LEN).collect();
        out.push('…');
        out
    }
}

/// Reviews the body of a POST to `/validate`: decodes it (or says what is wrong with it), then
/// judges it with the rules.
pub fn review(body: &[u8]) -> Reviewed {
    match decode(body) {
        Ok(review) => judge(review),
        Err(invalid) => invalid.into(),
    }
}

/// A review decoded far enough to be judged: what was asked, and what the rules read of it.
#[derive(Debug, Clone, PartialEq)]
struct Review {
    /// What was asked.
    info: RequestInfo,
    /// What the rules are asked about.
    subject: Subject,
}

/// What the rules are asked about.
// One lives for one request and is moved a couple of times: boxing the specs would cost an
// allocation per review for nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
enum Subject {
    /// A request the rules are not about (see [`not_checked`]), and why.
    NotChecked(&'static str),
    /// The CREATE of a PravegaCluster.
    Create(NewObject),
    /// The UPDATE of a PravegaCluster: the new object and the old one.
    Update {
        /// `request.object`.
        object: NewObject,
        /// `request.oldObject`.
        old: OldObject,
    },
}

/// A request that cannot be judged: what was asked, as far as it could be read, and what is
/// wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Invalid {
    /// What was asked, as far as it could be read (the `uid` first, so that the answer can be a
    /// review).
    info: RequestInfo,
    /// What is wrong.
    kind: ErrorKind,
    /// A message a person can act on.
    message: String,
}

impl Invalid {
    fn new(info: &RequestInfo, kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            info: info.clone(),
            kind,
            message: message.into(),
        }
    }
}

impl From<Invalid> for Reviewed {
    fn from(invalid: Invalid) -> Self {
        Reviewed::new(
            invalid.info,
            Verdict::Invalid {
                kind: invalid.kind,
                message: invalid.message,
            },
        )
    }
}

/// What the rules read of `request.object`: its name and its spec. Everything else, its status
/// included (the rules decide with the old object's), is skipped without being decoded.
#[derive(Debug, Clone, PartialEq, Deserialize)]
struct NewObject {
    #[serde(default, deserialize_with = "object")]
    metadata: NameOnly,
    spec: PravegaClusterSpec,
}

/// What the rules read of `request.oldObject`: its spec, and the versions and conditions of its
/// status. Everything else (managed fields, annotations, members, progress...) is skipped
/// without being decoded.
#[derive(Debug, Clone, PartialEq, Deserialize)]
struct OldObject {
    spec: PravegaClusterSpec,
    #[serde(default, deserialize_with = "optional_object")]
    status: Option<OldStatus>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
struct NameOnly {
    #[serde(default)]
    name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
struct OldStatus {
    #[serde(default)]
    current_version: Option<String>,
    #[serde(default)]
    target_version: Option<String>,
    #[serde(default, deserialize_with = "objects")]
    conditions: Vec<OldCondition>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
struct OldCondition {
    #[serde(rename = "type")]
    type_: ConditionType,
    status: ConditionStatus,
    #[serde(default)]
    reason: Option<String>,
}

impl OldStatus {
    fn facts(&self) -> StatusFacts<'_> {
        let mut facts = StatusFacts::new(
            self.current_version.as_deref(),
            self.target_version.as_deref(),
        );
        for c in &self.conditions {
            facts.observe(c.type_, c.status, c.reason.as_deref().unwrap_or_default());
        }
        facts
    }
}

/// Decides a decoded review with the rules.
fn judge(review: Review) -> Reviewed {
    let verdict = match &review.subject {
        Subject::NotChecked(why) => Verdict::NotChecked { why },
        Subject::Create(object) => match review.info.name.as_deref().map(check_cluster_name) {
            Some(Err((reason, message))) => Verdict::Denied { reason, message },
            _ => decision(validate_create(&object.spec)),
        },
        Subject::Update { object, old } => decision(validate_update(
            &old.spec,
            old.status.as_ref().map(OldStatus::facts),
            &object.spec,
        )),
    };
    Reviewed::new(review.info, verdict)
}

fn decision(d: Decision) -> Verdict {
    match d {
        Decision::Allow { warnings } => Verdict::Allowed { warnings },
        Decision::Deny { reason, message } => Verdict::Denied { reason, message },
    }
}

#[cfg(test)]
mod tests;
