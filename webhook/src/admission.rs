//! Answering an `admission.k8s.io/v1` `AdmissionReview` for a `PravegaCluster` with the shared
//! version rules of `pravega-crds`.
//!
//! Everything here is pure: [`review`] turns the bytes of a request body into a [`Reviewed`]
//! (what was asked and what was decided), and [`Reviewed::to_http`] renders the answer. The
//! webhook has no side effects, so `dryRun` requests are answered exactly like the others.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;
use std::marker::PhantomData;

use pravega_crds::spec_rules::check_cluster_name;
use pravega_crds::{
    ConditionStatus, ConditionType, Decision, DenyReason, PravegaClusterSpec, StatusFacts,
    validate_create, validate_update,
};
use serde::de::value::MapAccessDeserializer;
use serde::de::{
    DeserializeOwned, DeserializeSeed, Error as _, IgnoredAny, MapAccess, SeqAccess, Visitor,
};
use serde::{Deserialize, Deserializer, Serialize};
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

/// A `T` read from a JSON object only.
///
/// serde's derived structs also read a JSON array, field by field in the order they are declared.
/// The API server never sends one (Go reads a struct from an object only), and the webhook's
/// partial views list fewer fields, in another order, than the typed objects: an array would be
/// read as one thing here and as another by the typed reading (the operator's). So every object
/// the webhook reads itself must be a JSON object.
#[derive(Debug)]
struct Obj<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Obj<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectOnly<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjectOnly<T> {
            type Value = T;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                T::deserialize(MapAccessDeserializer::new(map))
            }
        }
        deserializer
            .deserialize_map(ObjectOnly(PhantomData))
            .map(Obj)
    }
}

/// `deserialize_with` for a field that must be a JSON object ([`Obj`]).
fn object<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<T, D::Error> {
    Obj::deserialize(d).map(|Obj(t)| t)
}

/// `deserialize_with` for an optional field that must be a JSON object (or null) ([`Obj`]).
fn optional_object<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<T>, D::Error> {
    Option::<Obj<T>>::deserialize(d).map(|o| o.map(|Obj(t)| t))
}

/// `deserialize_with` for a list of JSON objects ([`Obj`]).
fn objects<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Vec<T>, D::Error> {
    Vec::<Obj<T>>::deserialize(d).map(|v| v.into_iter().map(|Obj(t)| t).collect())
}

/// `request.kind`.
#[derive(Debug, Default, Deserialize)]
struct GroupVersionKind<'a> {
    #[serde(default, borrow)]
    group: Cow<'a, str>,
    #[serde(default, borrow)]
    kind: Cow<'a, str>,
}

/// `request` of an AdmissionReview, as far as the webhook reads it. The one-pass reader reads the
/// objects along (`O` and `P`); the piece-by-piece reader skips them here and reads them one at a
/// time later, to say which one is wrong.
#[derive(Debug, Deserialize)]
#[serde(
    rename_all = "camelCase",
    bound(deserialize = "O: Deserialize<'de>, P: Deserialize<'de>")
)]
struct AdmissionRequest<'a, O = IgnoredAny, P = IgnoredAny> {
    /// Required by the one-pass reader; the piece-by-piece reader has checked it before.
    #[serde(default, borrow)]
    uid: Cow<'a, str>,
    #[serde(borrow, deserialize_with = "object")]
    kind: GroupVersionKind<'a>,
    #[serde(default, borrow)]
    sub_resource: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    name: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    namespace: Option<Cow<'a, str>>,
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

/// Decodes the body of a POST to `/validate`.
///
/// Well-formed reviews (all of the API server's) are decoded in one pass straight from the body
/// ([`read_in_one_pass`]). Anything that pass refuses is read piece by piece
/// ([`read_piece_by_piece`]), to say precisely what is wrong, or to decode the few well-formed
/// reviews the one pass cannot: an object the rules do not read (that of a DELETE, the
/// `oldObject` of a CREATE) that is not a PravegaCluster. Both readers decode a review they both
/// read to the same [`Review`], and refuse what the typed reading of the same body would not
/// read: an object written as a JSON array ([`Obj`]), a key written twice in one object.
fn decode(body: &[u8]) -> Result<Review, Invalid> {
    match read_in_one_pass(body) {
        Some(review) => Ok(review),
        None => read_piece_by_piece(body),
    }
}

/// A well-formed review, decoded in one pass that reads only what the rules read (the names and
/// specs, and the [`StatusFacts`] of the old object) and skips the rest (managed fields,
/// annotations, members...) unread. Strings are borrowed from the body, but for those with escapes.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TypedReview<'a> {
    #[serde(borrow)]
    api_version: Cow<'a, str>,
    #[serde(borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow, deserialize_with = "object")]
    request: AdmissionRequest<'a, Obj<NewObject>, Obj<OldObject>>,
}

/// The review, when the body is a well-formed review of a request that can be judged; `None`
/// for anything else (then [`read_piece_by_piece`] says what is wrong).
fn read_in_one_pass(body: &[u8]) -> Option<Review> {
    let text = std::str::from_utf8(body).ok()?;
    let Obj(review) = serde_json::from_str::<Obj<TypedReview<'_>>>(text).ok()?;
    if review.api_version != REVIEW_API_VERSION || review.kind != REVIEW_KIND {
        return None;
    }
    let r = review.request;
    if r.uid.is_empty() {
        return None;
    }
    let operation = Operation::parse(&r.operation)?;
    let info = RequestInfo {
        uid: Some(r.uid.into_owned()),
        operation: Some(operation),
        namespace: non_empty(r.namespace.as_deref()),
        name: non_empty(r.name.as_deref()),
        dry_run: r.dry_run.unwrap_or(false),
    };
    if let Some(why) = not_checked(&r.kind, r.sub_resource.as_deref(), operation) {
        return Some(Review {
            info,
            subject: Subject::NotChecked(why),
        });
    }
    checked(
        info,
        operation,
        r.object.map(|Obj(o)| o),
        r.old_object.map(|Obj(o)| o),
    )
    .ok()
}

/// Reads a review piece by piece, to say precisely what is wrong with it: the body as JSON, then
/// the `uid` (so that every later error can be answered as a review), the review's type, the
/// request, and only then the objects the rules read, one at a time.
fn read_piece_by_piece(body: &[u8]) -> Result<Review, Invalid> {
    let mut info = RequestInfo::default();
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        Invalid::new(
            &info,
            ErrorKind::NotJson,
            format!(
                "the request body is not JSON ({e}); POST an admission.k8s.io/v1 AdmissionReview"
            ),
        )
    })?;
    let Value::Object(mut top) = value else {
        return Err(Invalid::new(
            &info,
            ErrorKind::NotJson,
            "the request body is JSON but not an object; POST an admission.k8s.io/v1 AdmissionReview",
        ));
    };
    info.uid = top
        .get("request")
        .and_then(|r| r.get("uid"))
        .and_then(Value::as_str)
        .filter(|uid| !uid.is_empty())
        .map(str::to_owned);
    // The document just read kept the last of two equal keys; the typed reading (the one pass,
    // the operator's) refuses them, and Go keeps the last one: no reading of such a body is
    // the one to trust, so it is refused.
    check_unique_keys(body).map_err(|e| {
        Invalid::new(
            &info,
            ErrorKind::DuplicateKey,
            format!(
                "the request body is ambiguous: {e}; an AdmissionReview has each key of an object once"
            ),
        )
    })?;

    let api_version = top.get("apiVersion");
    let kind = top.get("kind");
    if api_version.and_then(Value::as_str) != Some(REVIEW_API_VERSION)
        || kind.and_then(Value::as_str) != Some(REVIEW_KIND)
    {
        return Err(Invalid::new(
            &info,
            ErrorKind::UnsupportedReview,
            format!(
                "expected apiVersion {REVIEW_API_VERSION} kind {REVIEW_KIND}, got apiVersion {} kind {}; set admissionReviewVersions: [\"v1\"] in the webhook configuration",
                describe(api_version),
                describe(kind)
            ),
        ));
    }
    let request = match top.remove("request") {
        None | Some(Value::Null) => {
            return Err(Invalid::new(
                &info,
                ErrorKind::MissingRequest,
                "the AdmissionReview has no request",
            ));
        }
        Some(r @ Value::Object(_)) => r,
        Some(other) => {
            return Err(Invalid::new(
                &info,
                ErrorKind::InvalidRequest,
                format!("request must be an object, got {}", describe(Some(&other))),
            ));
        }
    };
    if info.uid.is_none() {
        return Err(Invalid::new(
            &info,
            ErrorKind::InvalidRequest,
            format!(
                "request.uid must be a non-empty string, got {}",
                describe(request.get("uid"))
            ),
        ));
    }
    let meta = <AdmissionRequest<'_>>::deserialize(&request).map_err(|e| {
        Invalid::new(
            &info,
            ErrorKind::InvalidRequest,
            format!("request is not a valid admission.k8s.io/v1 AdmissionRequest: {e}"),
        )
    })?;
    info.namespace = non_empty(meta.namespace.as_deref());
    info.name = non_empty(meta.name.as_deref());
    info.dry_run = meta.dry_run.unwrap_or(false);
    let Some(operation) = Operation::parse(&meta.operation) else {
        return Err(Invalid::new(
            &info,
            ErrorKind::InvalidRequest,
            format!(
                "request.operation {:?} is not one of CREATE, UPDATE, DELETE, CONNECT",
                shown(&meta.operation)
            ),
        ));
    };
    info.operation = Some(operation);

    if let Some(why) = not_checked(&meta.kind, meta.sub_resource.as_deref(), operation) {
        return Ok(Review {
            info,
            subject: Subject::NotChecked(why),
        });
    }
    let object = decoded::<NewObject>(&info, &request, "object")?;
    let old_object = match (operation, &object) {
        (Operation::Update, Some(_)) => decoded::<OldObject>(&info, &request, "oldObject")?,
        _ => None,
    };
    checked(info, operation, object, old_object)
}

/// Checks that no JSON object of `body` (valid JSON, nested at most as deep as the JSON reader
/// allows) has the same key twice; the error names the key and where it is
/// (`the key "version" appears twice in request.object.spec at line 1 column 420`).
fn check_unique_keys(body: &[u8]) -> Result<(), serde_json::Error> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    UniqueKeys("").deserialize(&mut deserializer)
}

/// Walks a JSON value, refusing an object with the same key twice. Holds the path of the value.
struct UniqueKeys<'p>(&'p str);

impl UniqueKeys<'_> {
    fn child(&self, name: &str) -> String {
        if self.0.is_empty() {
            name.to_owned()
        } else {
            format!("{}.{name}", self.0)
        }
    }
}

impl<'de> DeserializeSeed<'de> for UniqueKeys<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for UniqueKeys<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut i = 0usize;
        while seq
            .next_element_seed(UniqueKeys(&format!("{}[{i}]", self.0)))?
            .is_some()
        {
            i += 1;
        }
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            let path = self.child(&key);
            if seen.contains(&key) {
                let parent = if self.0.is_empty() {
                    "the review"
                } else {
                    self.0
                };
                return Err(A::Error::custom(format!(
                    "the key {:?} appears twice in {}",
                    shown(&key),
                    shown(parent)
                )));
            }
            seen.insert(key);
            map.next_value_seed(UniqueKeys(&path))?;
        }
        Ok(())
    }
}

/// `request.<field>`, decoded from a JSON object; `None` when absent (the rules say whether that
/// is wrong).
fn decoded<T: DeserializeOwned>(
    info: &RequestInfo,
    request: &Value,
    field: &str,
) -> Result<Option<T>, Invalid> {
    match request.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => Obj::<T>::deserialize(v).map(|Obj(t)| Some(t)).map_err(|e| {
            Invalid::new(
                info,
                ErrorKind::InvalidObject,
                format!("request.{field} is not a valid PravegaCluster: {e}"),
            )
        }),
    }
}

/// The review of a CREATE or UPDATE of a PravegaCluster, once the objects the rules read are
/// decoded (`None` when absent, which is wrong). A CREATE without a name in the request is named
/// after its object.
fn checked(
    mut info: RequestInfo,
    operation: Operation,
    object: Option<NewObject>,
    old_object: Option<OldObject>,
) -> Result<Review, Invalid> {
    let Some(object) = object else {
        return Err(missing(&info, "object"));
    };
    let subject = if operation == Operation::Create {
        if info.name.is_none() {
            info.name = non_empty(object.metadata.name.as_deref());
        }
        Subject::Create(object)
    } else {
        let Some(old) = old_object else {
            return Err(missing(&info, "oldObject"));
        };
        Subject::Update { object, old }
    };
    Ok(Review { info, subject })
}

fn missing(info: &RequestInfo, field: &str) -> Invalid {
    Invalid::new(
        info,
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

fn non_empty(s: Option<&str>) -> Option<String> {
    s.filter(|s| !s.is_empty()).map(str::to_owned)
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

/// Why the rules are not about a request, if they are not: other kinds, sub-resources, DELETE
/// and CONNECT.
fn not_checked(
    kind: &GroupVersionKind<'_>,
    sub_resource: Option<&str>,
    operation: Operation,
) -> Option<&'static str> {
    if kind.group != CLUSTER_GROUP || kind.kind != CLUSTER_KIND {
        Some("the request is not about a PravegaCluster")
    } else if sub_resource.is_some_and(|s| !s.is_empty()) {
        Some("sub-resources (status, scale) are not checked")
    } else if operation == Operation::Delete {
        Some("DELETE is not checked")
    } else if operation == Operation::Connect {
        Some("CONNECT is not checked")
    } else {
        None
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

    #[test]
    fn escaped_strings_are_read_in_one_pass() {
        let escaped = String::from_utf8(update_body("u-3", "0.4.0", "0.5.0"))
            .unwrap_or_default()
            .replace("\"u-3\"", "\"u\\u002d3\"")
            .replace("\"default\"", "\"def\\u0061ult\"");
        let one_pass = read_in_one_pass(escaped.as_bytes());
        assert_eq!(
            one_pass.as_ref().and_then(|r| r.info.uid.as_deref()),
            Some("u-3")
        );
        assert_eq!(
            one_pass.as_ref().and_then(|r| r.info.namespace.as_deref()),
            Some("default")
        );
        let reviewed = review(escaped.as_bytes());
        assert!(reviewed.verdict.is_allowed(), "{:?}", reviewed.verdict);
    }

    #[test]
    fn a_key_written_twice_is_refused_not_read_as_its_last_value() {
        // A denied downgrade whose new spec has its version twice, the second time one the rules
        // allow: read as the last value, it was allowed.
        let downgrade = String::from_utf8(update_body("d-1", "0.5.0", "0.4.0"))
            .unwrap_or_default()
            .replacen(
                r#""spec":{"version":"0.4.0"}"#,
                r#""spec":{"version":"0.4.0","version":"0.6.0"}"#,
                1,
            );
        // A review of a PravegaCluster that names another group too: read as the last value, it
        // was allowed without checking.
        let other_group = String::from_utf8(update_body("d-2", "0.5.0", "0.4.0"))
            .unwrap_or_default()
            .replacen(
                r#""group":"pravega.pravega.io""#,
                r#""group":"pravega.pravega.io","group":"example.com""#,
                1,
            );
        for (body, uid, key, place) in [
            (downgrade, "d-1", "version", "request.object.spec"),
            (other_group, "d-2", "group", "request.kind"),
        ] {
            let reviewed = review(body.as_bytes());
            assert_eq!(reviewed.info.uid.as_deref(), Some(uid));
            match &reviewed.verdict {
                Verdict::Invalid { kind, message } => {
                    assert_eq!(*kind, ErrorKind::DuplicateKey);
                    assert!(
                        message.contains(&format!("the key \"{key}\" appears twice in {place}")),
                        "{message}"
                    );
                }
                other => panic!("{body}: {other:?}"),
            }
            let answer: Value =
                serde_json::from_slice(&reviewed.to_http().body).unwrap_or_default();
            assert_eq!(answer["response"]["allowed"], false);
            assert_eq!(answer["response"]["status"]["code"], 400);
        }
    }

    #[test]
    fn objects_written_as_json_arrays_are_refused() {
        // serde's derived structs read an array field by field; the API server never sends one,
        // and the webhook's partial views would read it otherwise than the typed objects do.
        let body = |path: &str, value: Value| {
            let mut v: Value =
                serde_json::from_slice(&update_body("a-1", "0.5.0", "0.4.0")).unwrap_or_default();
            if let Some(slot) = v.pointer_mut(path) {
                *slot = value;
            }
            v.to_string()
        };
        for (path, value) in [
            ("/request/object/metadata", json!(["example"])),
            (
                "/request/oldObject",
                json!([{"version": "0.3.0"}, {"version": "0.3.0"}]),
            ),
            ("/request/oldObject/status", json!(["0.3.0"])),
            (
                "/request/kind",
                json!(["pravega.pravega.io", "PravegaCluster"]),
            ),
            ("/request", json!(["a-1"])),
        ] {
            let text = body(path, value);
            assert_eq!(read_in_one_pass(text.as_bytes()), None, "{path}");
            let reviewed = review(text.as_bytes());
            assert!(
                matches!(reviewed.verdict, Verdict::Invalid { .. }),
                "{path}: {:?}",
                reviewed.verdict
            );
        }
    }

    #[test]
    fn well_formed_reviews_the_one_pass_refuses_are_decoded_piece_by_piece() {
        // A CREATE whose oldObject (which the rules do not read) is not a PravegaCluster.
        let create = json!({
            "apiVersion": REVIEW_API_VERSION,
            "kind": REVIEW_KIND,
            "request": {
                "uid": "c-2",
                "kind": {"group": CLUSTER_GROUP, "version": "v1beta1", "kind": CLUSTER_KIND},
                "operation": "CREATE",
                "object": {"metadata": {"name": "example"}, "spec": {"version": "0.4.0"}},
                "oldObject": "not a cluster"
            }
        })
        .to_string();
        assert_eq!(read_in_one_pass(create.as_bytes()), None);
        let reviewed = review(create.as_bytes());
        assert_eq!(reviewed.verdict, Verdict::Allowed { warnings: vec![] });
        assert_eq!(reviewed.info.name.as_deref(), Some("example"));
        // A missing object is explained piece by piece, with what was asked.
        let missing = create.replace("\"object\"", "\"other\"");
        let reviewed = review(missing.as_bytes());
        assert_eq!(reviewed.verdict.reason(), "MissingObject");
        assert_eq!(reviewed.info.uid.as_deref(), Some("c-2"));
        assert_eq!(reviewed.info.operation, Some(Operation::Create));
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
            let one_pass = read_in_one_pass(body.as_bytes());
            prop_assert!(one_pass.is_some(), "not read in one pass: {}", body);
            let piece_by_piece = read_piece_by_piece(body.as_bytes());
            prop_assert_eq!(one_pass.map(Ok), Some(piece_by_piece));
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
