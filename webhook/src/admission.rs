//! Answering an `admission.k8s.io/v1` `AdmissionReview` for a `PravegaCluster` with the shared
//! version rules of `pravega-crds`.
//!
//! Everything here is pure: [`review`] turns the bytes of a request body into a [`Reviewed`]
//! (what was asked and what was decided), and [`Reviewed::to_http`] renders the answer. The
//! webhook has no side effects, so `dryRun` requests are answered exactly like the others.

use std::borrow::Cow;

use pravega_crds::spec_rules::check_cluster_name;
use pravega_crds::{
    ConditionStatus, ConditionType, Decision, DenyReason, PravegaClusterSpec, StatusFacts,
    validate_create, validate_update,
};
use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};
use serde_json::Value;

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

    fn invalid(kind: ErrorKind, message: impl Into<String>) -> Self {
        Verdict::Invalid {
            kind,
            message: message.into(),
        }
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
        Self::new(RequestInfo::default(), Verdict::invalid(kind, message))
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

/// `request.kind`.
#[derive(Debug, Default, Deserialize)]
struct GroupVersionKind<'a> {
    #[serde(default, borrow)]
    group: Cow<'a, str>,
    #[serde(default, borrow)]
    kind: Cow<'a, str>,
}

/// `request` of an AdmissionReview, as far as the webhook reads it. The one-pass decoder reads
/// the objects along (`O` and `P`); the slow path skips them here and reads them one at a time
/// later, to say which one is wrong.
#[derive(Debug, Deserialize)]
#[serde(
    rename_all = "camelCase",
    bound(deserialize = "O: Deserialize<'de>, P: Deserialize<'de>")
)]
struct AdmissionRequest<'a, O = IgnoredAny, P = IgnoredAny> {
    /// Required by the one-pass decoder; the slow path has checked it before.
    #[serde(default)]
    uid: &'a str,
    #[serde(borrow)]
    kind: GroupVersionKind<'a>,
    #[serde(default)]
    sub_resource: Option<&'a str>,
    #[serde(default)]
    name: Option<&'a str>,
    #[serde(default)]
    namespace: Option<&'a str>,
    #[serde(borrow)]
    operation: Cow<'a, str>,
    #[serde(default)]
    dry_run: Option<bool>,
    #[serde(default)]
    object: Option<O>,
    #[serde(default)]
    old_object: Option<P>,
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

fn describe(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => "none".to_owned(),
        Some(Value::String(s)) => format!("{:?}", shown(s)),
        Some(other) => shown(&other.to_string()),
    }
}

/// Reviews the body of a POST to `/validate`.
pub fn review(body: &[u8]) -> Reviewed {
    let mut info = RequestInfo::default();
    let verdict = decide(body, &mut info);
    Reviewed::new(info, verdict)
}

fn decide(body: &[u8], info: &mut RequestInfo) -> Verdict {
    // Well-formed reviews (all of the API server's) are decoded in one pass straight from the
    // body; anything else is looked at piece by piece to say precisely what is wrong.
    if let Ok(text) = std::str::from_utf8(body)
        && let Ok(fast) = serde_json::from_str::<FastReview<'_>>(text)
    {
        if let Some(verdict) = fast.decide(info) {
            return verdict;
        }
        *info = RequestInfo::default();
    }
    decide_slowly(body, info)
}

/// A well-formed review, decoded in one pass that reads only what the rules read (the specs, and
/// the [`StatusFacts`] of the old object) and skips the rest (managed fields, annotations,
/// members...) unread. A string with escapes where a borrowed one is expected fails this pass,
/// and the slow path (which unescapes) answers instead, with the same verdict.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct FastReview<'a> {
    #[serde(borrow)]
    api_version: Cow<'a, str>,
    #[serde(borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow)]
    request: AdmissionRequest<'a, NewObject<'a>, OldObject<'a>>,
}

impl FastReview<'_> {
    /// The verdict, or `None` when the review is not well-formed (then the slow path explains).
    fn decide(self, info: &mut RequestInfo) -> Option<Verdict> {
        if self.api_version != REVIEW_API_VERSION || self.kind != REVIEW_KIND {
            return None;
        }
        let r = self.request;
        if r.uid.is_empty() {
            return None;
        }
        let operation = Operation::parse(&r.operation)?;
        info.uid = Some(r.uid.to_owned());
        info.operation = Some(operation);
        info.namespace = non_empty(r.namespace);
        info.name = non_empty(r.name);
        info.dry_run = r.dry_run.unwrap_or(false);
        if let Some(verdict) = not_checked(&r.kind, r.sub_resource, operation) {
            return Some(verdict);
        }
        Some(judge(
            info,
            operation,
            r.object.as_ref(),
            r.old_object.as_ref(),
        ))
    }
}

fn non_empty(s: Option<&str>) -> Option<String> {
    s.filter(|s| !s.is_empty()).map(str::to_owned)
}

/// What the rules read of `request.object`: its name and its spec. Everything else, its status
/// included (the rules decide with the old object's), is skipped without being decoded.
#[derive(Debug, Deserialize)]
struct NewObject<'a> {
    #[serde(default, borrow)]
    metadata: NameOnly<'a>,
    spec: PravegaClusterSpec,
}

/// What the rules read of `request.oldObject`: its spec, and the versions and conditions of its
/// status. Everything else (managed fields, annotations, members, progress...) is skipped
/// without being decoded.
#[derive(Debug, Deserialize)]
struct OldObject<'a> {
    spec: PravegaClusterSpec,
    #[serde(default, borrow)]
    status: Option<OldStatus<'a>>,
}

#[derive(Debug, Default, Deserialize)]
struct NameOnly<'a> {
    #[serde(default)]
    name: Option<&'a str>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct OldStatus<'a> {
    #[serde(default)]
    current_version: Option<&'a str>,
    #[serde(default)]
    target_version: Option<&'a str>,
    #[serde(default, borrow)]
    conditions: Vec<OldCondition<'a>>,
}

#[derive(Debug, Deserialize)]
struct OldCondition<'a> {
    #[serde(rename = "type")]
    type_: ConditionType,
    status: ConditionStatus,
    #[serde(default, borrow)]
    reason: Option<Cow<'a, str>>,
}

impl OldStatus<'_> {
    fn facts(&self) -> StatusFacts<'_> {
        let mut facts = StatusFacts::new(self.current_version, self.target_version);
        for c in &self.conditions {
            facts.observe(c.type_, c.status, c.reason.as_deref().unwrap_or_default());
        }
        facts
    }
}

/// The requests the rules are not about: other kinds, sub-resources, DELETE and CONNECT.
fn not_checked(
    kind: &GroupVersionKind<'_>,
    sub_resource: Option<&str>,
    operation: Operation,
) -> Option<Verdict> {
    let why = if kind.group != CLUSTER_GROUP || kind.kind != CLUSTER_KIND {
        "the request is not about a PravegaCluster"
    } else if sub_resource.is_some_and(|s| !s.is_empty()) {
        "sub-resources (status, scale) are not checked"
    } else if operation == Operation::Delete {
        "DELETE is not checked"
    } else if operation == Operation::Connect {
        "CONNECT is not checked"
    } else {
        return None;
    };
    Some(Verdict::NotChecked { why })
}

/// The rules for a CREATE or UPDATE of a PravegaCluster, once its objects are decoded.
fn judge(
    info: &mut RequestInfo,
    operation: Operation,
    object: Option<&NewObject<'_>>,
    old_object: Option<&OldObject<'_>>,
) -> Verdict {
    let Some(new) = object else {
        return missing("object");
    };
    if operation == Operation::Create {
        if info.name.is_none() {
            info.name = non_empty(new.metadata.name);
        }
        if let Some(Err((reason, message))) = info.name.as_deref().map(check_cluster_name) {
            return decision(Decision::Deny { reason, message });
        }
        return decision(validate_create(&new.spec));
    }
    let Some(old) = old_object else {
        return missing("oldObject");
    };
    decision(validate_update(
        &old.spec,
        old.status.as_ref().map(OldStatus::facts),
        &new.spec,
    ))
}

fn missing(field: &str) -> Verdict {
    Verdict::invalid(
        ErrorKind::MissingObject,
        format!(
            "request.{field} is missing; a {} of a PravegaCluster must carry it",
            if field == "object" {
                "CREATE or UPDATE"
            } else {
                "UPDATE"
            }
        ),
    )
}

fn decide_slowly(body: &[u8], info: &mut RequestInfo) -> Verdict {
    let value: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => {
            return Verdict::invalid(
                ErrorKind::NotJson,
                format!(
                    "the request body is not JSON ({e}); POST an admission.k8s.io/v1 AdmissionReview"
                ),
            );
        }
    };
    let Value::Object(mut top) = value else {
        return Verdict::invalid(
            ErrorKind::NotJson,
            "the request body is JSON but not an object; POST an admission.k8s.io/v1 AdmissionReview",
        );
    };
    // Recover the uid first, so that every later error can be answered as a review.
    info.uid = top
        .get("request")
        .and_then(|r| r.get("uid"))
        .and_then(Value::as_str)
        .filter(|uid| !uid.is_empty())
        .map(str::to_owned);

    let api_version = top.get("apiVersion");
    let kind = top.get("kind");
    if api_version.and_then(Value::as_str) != Some(REVIEW_API_VERSION)
        || kind.and_then(Value::as_str) != Some(REVIEW_KIND)
    {
        return Verdict::invalid(
            ErrorKind::UnsupportedReview,
            format!(
                "expected apiVersion {REVIEW_API_VERSION} kind {REVIEW_KIND}, got apiVersion {} kind {}; set admissionReviewVersions: [\"v1\"] in the webhook configuration",
                describe(api_version),
                describe(kind)
            ),
        );
    }
    let request = match top.remove("request") {
        None | Some(Value::Null) => {
            return Verdict::invalid(
                ErrorKind::MissingRequest,
                "the AdmissionReview has no request",
            );
        }
        Some(r @ Value::Object(_)) => r,
        Some(other) => {
            return Verdict::invalid(
                ErrorKind::InvalidRequest,
                format!("request must be an object, got {}", describe(Some(&other))),
            );
        }
    };
    if info.uid.is_none() {
        return Verdict::invalid(
            ErrorKind::InvalidRequest,
            format!(
                "request.uid must be a non-empty string, got {}",
                describe(request.get("uid"))
            ),
        );
    }
    let meta = match <AdmissionRequest<'_>>::deserialize(&request) {
        Ok(meta) => meta,
        Err(e) => {
            return Verdict::invalid(
                ErrorKind::InvalidRequest,
                format!("request is not a valid admission.k8s.io/v1 AdmissionRequest: {e}"),
            );
        }
    };
    info.namespace = non_empty(meta.namespace);
    info.name = non_empty(meta.name);
    info.dry_run = meta.dry_run.unwrap_or(false);
    let Some(operation) = Operation::parse(&meta.operation) else {
        return Verdict::invalid(
            ErrorKind::InvalidRequest,
            format!(
                "request.operation {:?} is not one of CREATE, UPDATE, DELETE, CONNECT",
                shown(&meta.operation)
            ),
        );
    };
    info.operation = Some(operation);

    if let Some(verdict) = not_checked(&meta.kind, meta.sub_resource, operation) {
        return verdict;
    }
    let object = match decoded::<NewObject<'_>>(&request, "object") {
        Ok(object) => object,
        Err(verdict) => return verdict,
    };
    let old_object = match (operation, &object) {
        (Operation::Update, Some(_)) => match decoded::<OldObject<'_>>(&request, "oldObject") {
            Ok(old) => old,
            Err(verdict) => return verdict,
        },
        _ => None,
    };
    judge(info, operation, object.as_ref(), old_object.as_ref())
}

/// `request.<field>`, decoded; `None` when absent (the rules say whether that is wrong).
fn decoded<'a, T: Deserialize<'a>>(request: &'a Value, field: &str) -> Result<Option<T>, Verdict> {
    match request.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => T::deserialize(v).map(Some).map_err(|e| {
            Verdict::invalid(
                ErrorKind::InvalidObject,
                format!("request.{field} is not a valid PravegaCluster: {e}"),
            )
        }),
    }
}

fn decision(d: Decision) -> Verdict {
    match d {
        Decision::Allow { warnings } => Verdict::Allowed { warnings },
        Decision::Deny { reason, message } => Verdict::Denied { reason, message },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pravega_crds::version::precedence;
    use proptest::prelude::*;
    use serde_json::json;

    fn update_body(uid: &str, current: &str, desired: &str) -> Vec<u8> {
        let object = |version: &str| {
            json!({
                "apiVersion": "pravega.pravega.io/v1beta1",
                "kind": "PravegaCluster",
                "metadata": {"name": "example", "namespace": "default"},
                "spec": {"version": version},
                "status": {"currentVersion": current}
            })
        };
        serde_json::to_vec(&json!({
            "apiVersion": REVIEW_API_VERSION,
            "kind": REVIEW_KIND,
            "request": {
                "uid": uid,
                "kind": {"group": CLUSTER_GROUP, "version": "v1beta1", "kind": CLUSTER_KIND},
                "operation": "UPDATE",
                "namespace": "default",
                "name": "example",
                "object": object(desired),
                "oldObject": object(current),
            }
        }))
        .unwrap_or_default()
    }

    #[test]
    fn the_request_is_described_for_logs_and_metrics() {
        let reviewed = review(&update_body("u-1", "0.5.0", "0.4.0"));
        assert_eq!(reviewed.info.uid.as_deref(), Some("u-1"));
        assert_eq!(reviewed.info.operation, Some(Operation::Update));
        assert_eq!(reviewed.info.namespace.as_deref(), Some("default"));
        assert_eq!(reviewed.info.name.as_deref(), Some("example"));
        assert_eq!(reviewed.verdict.decision(), "denied");
        assert_eq!(reviewed.verdict.reason(), "Downgrade");
    }

    #[test]
    fn the_create_name_comes_from_the_object_when_the_request_has_none() {
        let body = json!({
            "apiVersion": REVIEW_API_VERSION,
            "kind": REVIEW_KIND,
            "request": {
                "uid": "c-1",
                "kind": {"group": CLUSTER_GROUP, "version": "v1beta1", "kind": CLUSTER_KIND},
                "operation": "CREATE",
                "object": {"metadata": {"name": "from-object"}, "spec": {"version": "0.4.0"}}
            }
        });
        let reviewed = review(body.to_string().as_bytes());
        assert_eq!(reviewed.info.name.as_deref(), Some("from-object"));
        assert!(reviewed.verdict.is_allowed());
    }

    #[test]
    fn answers_render_as_the_api_server_expects() {
        let denied = review(&update_body("u-2", "0.5.0", "0.4.0")).to_http();
        assert_eq!(denied.status, 200);
        let v: Value = serde_json::from_slice(&denied.body).unwrap_or_default();
        assert_eq!(v["response"]["uid"], "u-2");
        assert_eq!(v["response"]["allowed"], false);
        assert_eq!(v["response"]["status"]["code"], 403);
        assert_eq!(v["response"]["status"]["reason"], "Forbidden");
        assert!(v["response"].get("warnings").is_none());

        let plain = review(b"{").to_http();
        assert_eq!(plain.status, 400);
        assert!(plain.content_type.starts_with("text/plain"));
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic_and_get_a_400(body in proptest::collection::vec(any::<u8>(), 0..512)) {
            let reviewed = review(&body);
            let answer = reviewed.to_http();
            prop_assert!(answer.status == 200 || answer.status == 400);
            prop_assert_eq!(answer.status == 200, reviewed.info.uid.is_some());
        }

        #[test]
        fn any_uid_is_echoed_whatever_is_wrong_with_the_rest(
            uid in "[a-zA-Z0-9\\-]{1,40}",
            api_version in prop_oneof![Just("admission.k8s.io/v1"), Just("admission.k8s.io/v1beta1"), Just("v1")],
            operation in prop_oneof![Just("CREATE"), Just("UPDATE"), Just("DELETE"), Just("CONNECT"), Just("PATCH")],
            object in prop_oneof![
                Just(Value::Null),
                Just(json!({"spec": {"version": "0.4.0"}})),
                Just(json!({"spec": {"version": 4}})),
                Just(json!("a string")),
            ],
        ) {
            let body = json!({
                "apiVersion": api_version,
                "kind": REVIEW_KIND,
                "request": {
                    "uid": uid,
                    "kind": {"group": CLUSTER_GROUP, "version": "v1beta1", "kind": CLUSTER_KIND},
                    "operation": operation,
                    "object": object.clone(),
                    "oldObject": object,
                }
            });
            let answer = review(body.to_string().as_bytes()).to_http();
            prop_assert_eq!(answer.status, 200);
            let v: Value = serde_json::from_slice(&answer.body).unwrap_or_default();
            prop_assert_eq!(v["response"]["uid"].as_str(), Some(uid.as_str()));
        }

        #[test]
        fn the_one_pass_decoder_agrees_with_the_piece_by_piece_one(
            operation in prop_oneof![Just("CREATE"), Just("UPDATE"), Just("DELETE"), Just("CONNECT")],
            current in prop_oneof![Just("0.4.0"), Just("0.5.0-1"), Just("0.5.0")],
            desired in prop_oneof![Just("0.4.0"), Just("0.5.0"), Just("0.6.0"), Just("v0.6.0"), Just("0.6")],
            condition in prop_oneof![Just("Upgrading"), Just("RollbackInProgress"), Just("Error"), Just("PodsReady")],
            truth in prop_oneof![Just("True"), Just("False")],
            sub_resource in proptest::option::of(Just("status")),
            dry_run in any::<bool>(),
        ) {
            let object = |version: &str| json!({
                "metadata": {"name": "example", "managedFields": [{"manager": "kubectl"}]},
                "spec": {"version": version, "bookkeeper": {"replicas": 3}},
                "status": {
                    "currentVersion": current,
                    "targetVersion": desired,
                    "conditions": [{"type": condition, "status": truth, "reason": "UpgradeFailed"}]
                }
            });
            let body = json!({
                "apiVersion": REVIEW_API_VERSION,
                "kind": REVIEW_KIND,
                "request": {
                    "uid": "agree",
                    "kind": {"group": CLUSTER_GROUP, "version": "v1beta1", "kind": CLUSTER_KIND},
                    "subResource": sub_resource,
                    "operation": operation,
                    "namespace": "default",
                    "name": "example",
                    "dryRun": dry_run,
                    "object": object(desired),
                    "oldObject": object(current),
                }
            })
            .to_string();
            prop_assert!(serde_json::from_slice::<FastReview>(body.as_bytes()).is_ok());
            let fast = review(body.as_bytes());
            let mut info = RequestInfo::default();
            let slow = decide_slowly(body.as_bytes(), &mut info);
            prop_assert_eq!(&fast.verdict, &slow);
            prop_assert_eq!(&fast.info, &info);
        }

        #[test]
        fn a_healthy_cluster_accepts_exactly_the_versions_not_below_its_own(
            a in (0u64..3, 0u64..3, 0u64..3, proptest::option::of(1u64..3)),
            b in (0u64..3, 0u64..3, 0u64..3, proptest::option::of(1u64..3)),
        ) {
            let render = |(major, minor, patch, pre): (u64, u64, u64, Option<u64>)| match pre {
                Some(pre) => format!("{major}.{minor}.{patch}-{pre}"),
                None => format!("{major}.{minor}.{patch}"),
            };
            let (current, desired) = (render(a), render(b));
            let reviewed = review(&update_body("p-1", &current, &desired));
            let lower = precedence(
                &semver::Version::parse(&desired).map_err(|e| TestCaseError::fail(e.to_string()))?,
                &semver::Version::parse(&current).map_err(|e| TestCaseError::fail(e.to_string()))?,
            ).is_lt();
            prop_assert_eq!(reviewed.verdict.is_allowed(), !lower, "{} -> {}: {:?}", current, desired, reviewed.verdict);
            if lower {
                prop_assert_eq!(reviewed.verdict.reason(), "Downgrade");
            }
        }
    }
}
