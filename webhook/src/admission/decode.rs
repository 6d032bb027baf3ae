//! Decoding a review: in one pass when it is well formed, else piece by piece, to say precisely
//! what is wrong with it.

use std::borrow::Cow;

use serde::Deserialize;
use serde::de::{DeserializeOwned, IgnoredAny};
use serde_json::Value;

use super::strict::{Obj, check_unique_keys, object};
use super::{
    CLUSTER_GROUP, CLUSTER_KIND, ErrorKind, Invalid, NewObject, OldObject, Operation,
    REVIEW_API_VERSION, REVIEW_KIND, RequestInfo, Review, Subject, shown,
};

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

fn describe(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => "none".to_owned(),
        Some(Value::String(s)) => format!("{:?}", shown(s)),
        Some(other) => shown(&other.to_string()),
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
pub(super) fn decode(body: &[u8]) -> Result<Review, Invalid> {
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
pub(super) fn read_in_one_pass(body: &[u8]) -> Option<Review> {
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
pub(super) fn read_piece_by_piece(body: &[u8]) -> Result<Review, Invalid> {
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
