//! Property tests of the admission service with realistic AdmissionReviews and mutations of them
//! (truncated, duplicated keys, huge strings, deep nesting, wrong types, bytes that are not
//! UTF-8, random bytes), through the real service in process (`oneshot`):
//!
//! - it always answers, with what the API server accepts: an `AdmissionReview` echoing the uid
//!   whenever the uid can be read, else a plain-text 400 (413 past the body limit);
//! - it answers within its request timeout;
//! - its verdict is that of the rules (`validate_create` / `validate_update`) applied to the
//!   typed objects, for every review the typed reading decodes, and what the typed reading
//!   cannot decode is never allowed when the unmutated review was not.

mod common;

use std::cell::RefCell;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::http::{Method, Request, header};
use http_body_util::Full;
use hyper::body::{Bytes, Frame};
use pravega_crds::spec_rules::check_cluster_name;
use pravega_crds::{Decision, PravegaCluster, validate_create, validate_update};
use pravega_webhook::{AppState, webhook_service};
use proptest::prelude::*;
use proptest::sample::Index;
use serde::Deserialize;
use serde_json::{Value, json};
use tower::ServiceExt;

/// The body limit and request timeout of the service under test (the binary's defaults).
const LIMIT: usize = 3 * 1024 * 1024;
const TIMEOUT: Duration = Duration::from_secs(10);
/// How much longer than the timeout an answer may take before it counts as late: generous, the
/// point is "bounded", not a benchmark (a debug build decodes a 3 MiB body in well under this).
const SLACK: Duration = Duration::from_secs(10);

thread_local! {
    static RUNTIME: RefCell<Option<tokio::runtime::Runtime>> = const { RefCell::new(None) };
}

/// Runs `f` to completion on this test thread's runtime.
fn block_on<F: Future>(f: F) -> F::Output {
    RUNTIME.with(|rt| {
        let mut rt = rt.borrow_mut();
        let rt = rt.get_or_insert_with(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime")
        });
        rt.block_on(f)
    })
}

// ---------------------------------------------------------------------------------------------
// What the service answered, checked for the form the API server accepts.

/// An answer of the service.
#[derive(Debug, Clone, PartialEq)]
enum Answer {
    /// HTTP 200 with an `AdmissionReview`.
    Review {
        uid: String,
        allowed: bool,
        /// `status.code` of a refusal (403 by a rule, 400 for a request that cannot be judged).
        code: Option<u64>,
        message: Option<String>,
        warnings: Vec<String>,
    },
    /// A plain-text error (no review could be answered).
    Plain { status: u16, message: String },
}

impl Answer {
    fn allowed(&self) -> bool {
        matches!(self, Answer::Review { allowed: true, .. })
    }

    /// A request the service could not judge: HTTP 400 / 413 / 408, or a review answered with
    /// code 400.
    fn refused(&self) -> bool {
        matches!(
            self,
            Answer::Plain { .. }
                | Answer::Review {
                    allowed: false,
                    code: Some(400),
                    ..
                }
        )
    }
}

/// POSTs `body` to `/validate`; returns the answer (checked for its form) and how long it took.
async fn call<B>(state: &Arc<AppState>, body: B) -> Result<(Answer, Duration), TestCaseError>
where
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let request = Request::builder()
        .method(Method::POST)
        .uri("/validate")
        .header(header::CONTENT_TYPE, "application/json")
        .body(body)
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    let started = tokio::time::Instant::now();
    let response = match webhook_service(state.clone()).oneshot(request).await {
        Ok(response) => response,
        Err(never) => match never {},
    };
    let (status, content_type, body) = common::parts(response)
        .await
        .map_err(|e| TestCaseError::fail(format!("reading the answer: {e}")))?;
    let elapsed = started.elapsed();
    Ok((well_formed(status.as_u16(), &content_type, &body)?, elapsed))
}

/// Checks that an answer is one the API server accepts, and reads it.
fn well_formed(status: u16, content_type: &str, body: &[u8]) -> Result<Answer, TestCaseError> {
    if status != 200 {
        prop_assert!(
            matches!(status, 400 | 408 | 413),
            "unexpected HTTP status {status}"
        );
        prop_assert!(content_type.starts_with("text/plain"), "{content_type}");
        let message = std::str::from_utf8(body)
            .map_err(|e| TestCaseError::fail(format!("plain answer not UTF-8: {e}")))?;
        prop_assert!(message.ends_with('\n'), "{message:?}");
        prop_assert!(message.trim().len() > 10, "no message: {message:?}");
        prop_assert!(!message.trim().contains('\n'), "one line: {message:?}");
        return Ok(Answer::Plain {
            status,
            message: message.trim_end().to_owned(),
        });
    }
    prop_assert_eq!(content_type, "application/json");
    let review: Value = serde_json::from_slice(body)
        .map_err(|e| TestCaseError::fail(format!("answer is not JSON: {e}")))?;
    prop_assert_eq!(&review["apiVersion"], "admission.k8s.io/v1");
    prop_assert_eq!(&review["kind"], "AdmissionReview");
    let response = &review["response"];
    let uid = response["uid"].as_str().unwrap_or_default().to_owned();
    prop_assert!(!uid.is_empty(), "{review}");
    let allowed = response["allowed"]
        .as_bool()
        .ok_or_else(|| TestCaseError::fail(format!("allowed is not a bool: {review}")))?;
    let warnings = match response.get("warnings") {
        None => Vec::new(),
        Some(Value::Array(w)) => w
            .iter()
            .map(|w| w.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| TestCaseError::fail(format!("warnings not strings: {review}")))?,
        Some(other) => return Err(TestCaseError::fail(format!("warnings: {other}"))),
    };
    let (code, message) = if allowed {
        prop_assert!(response.get("status").is_none(), "{review}");
        (None, None)
    } else {
        let s = &response["status"];
        prop_assert_eq!(&s["status"], "Failure");
        let code = s["code"].as_u64();
        let reason = s["reason"].as_str().unwrap_or_default();
        prop_assert!(
            (code == Some(403) && reason == "Forbidden")
                || (code == Some(400) && reason == "BadRequest"),
            "{review}"
        );
        let message = s["message"].as_str().unwrap_or_default().to_owned();
        prop_assert!(!message.is_empty(), "{review}");
        (code, Some(message))
    };
    Ok(Answer::Review {
        uid,
        allowed,
        code,
        message,
        warnings,
    })
}

// ---------------------------------------------------------------------------------------------
// The typed reading: what the rules say about the typed objects.

/// A `T` read from a JSON object only, as Go reads a struct (serde's derived structs also read
/// one from an array).
struct Obj<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Obj<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ObjectOnly<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> serde::de::Visitor<'de> for ObjectOnly<T> {
            type Value = T;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                T::deserialize(serde::de::value::MapAccessDeserializer::new(map))
            }
        }
        d.deserialize_map(ObjectOnly(std::marker::PhantomData))
            .map(Obj)
    }
}

fn object<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<T, D::Error> {
    Obj::deserialize(d).map(|Obj(t)| t)
}

fn optional_object<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<T>, D::Error> {
    Option::<Obj<T>>::deserialize(d).map(|o| o.map(|Obj(t)| t))
}

/// The typed reading of an AdmissionReview: Kubernetes' own types (as Go reads them: objects
/// from JSON objects) and the operator's `PravegaCluster`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TypedReview {
    api_version: String,
    kind: String,
    #[serde(deserialize_with = "object")]
    request: TypedRequest,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TypedRequest {
    uid: String,
    #[serde(deserialize_with = "object")]
    kind: TypedKind,
    #[serde(default)]
    sub_resource: Option<String>,
    #[serde(default)]
    name: Option<String>,
    // Decoded for their type only (the verdict does not depend on them).
    #[serde(default)]
    #[allow(dead_code)]
    namespace: Option<String>,
    operation: String,
    #[serde(default)]
    #[allow(dead_code)]
    dry_run: Option<bool>,
    #[serde(default, deserialize_with = "optional_object")]
    object: Option<PravegaCluster>,
    #[serde(default, deserialize_with = "optional_object")]
    old_object: Option<PravegaCluster>,
}

#[derive(Deserialize)]
struct TypedKind {
    #[serde(default)]
    group: String,
    #[serde(default)]
    kind: String,
}

/// What the typed reading expects of the service.
#[derive(Debug, Clone, PartialEq)]
enum Expected {
    Allow(Vec<String>),
    Deny(String),
    /// Not a review that can be judged (wrong type of review, no uid, unknown operation,
    /// missing object).
    Refused,
}

/// Whether no object of the JSON text has a key twice (the API server writes each key once).
fn unique_keys(text: &str) -> bool {
    struct Unique;
    impl<'de> serde::de::DeserializeSeed<'de> for Unique {
        type Value = ();
        fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_any(self)
        }
    }
    impl<'de> serde::de::Visitor<'de> for Unique {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("JSON")
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
        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
            while seq.next_element_seed(Unique)?.is_some() {}
            Ok(())
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            let mut seen = std::collections::HashSet::new();
            while let Some(key) = map.next_key::<String>()? {
                if !seen.insert(key) {
                    return Err(serde::de::Error::custom("duplicate key"));
                }
                map.next_value_seed(Unique)?;
            }
            Ok(())
        }
    }
    let mut d = serde_json::Deserializer::from_str(text);
    // Other errors (nested deeper than this reader goes) are left to the typed reading.
    match serde::de::DeserializeSeed::deserialize(Unique, &mut d) {
        Ok(()) => true,
        Err(e) => !e.to_string().starts_with("duplicate key"),
    }
}

/// The verdict of the rules on the typed objects, when the body is a JSON text as the API server
/// writes one (UTF-8, each key once in an object, within the body limit) that decodes as a typed
/// review.
fn typed_verdict(body: &[u8]) -> Option<Expected> {
    if body.len() > LIMIT {
        return None;
    }
    let text = std::str::from_utf8(body).ok()?;
    if !unique_keys(text) {
        return None;
    }
    let Obj(review) = serde_json::from_str::<Obj<TypedReview>>(text).ok()?;
    let r = review.request;
    if review.api_version != "admission.k8s.io/v1"
        || review.kind != "AdmissionReview"
        || r.uid.is_empty()
    {
        return Some(Expected::Refused);
    }
    let operation = r.operation.as_str();
    if !matches!(operation, "CREATE" | "UPDATE" | "DELETE" | "CONNECT") {
        return Some(Expected::Refused);
    }
    if r.kind.group != "pravega.pravega.io"
        || r.kind.kind != "PravegaCluster"
        || r.sub_resource.is_some_and(|s| !s.is_empty())
        || matches!(operation, "DELETE" | "CONNECT")
    {
        return Some(Expected::Allow(Vec::new()));
    }
    let Some(object) = r.object else {
        return Some(Expected::Refused);
    };
    let decision = if operation == "CREATE" {
        let name = r.name.filter(|n| !n.is_empty()).or(object
            .metadata
            .name
            .clone()
            .filter(|n| !n.is_empty()));
        match name.as_deref().map(check_cluster_name) {
            Some(Err((_, message))) => return Some(Expected::Deny(message)),
            _ => validate_create(&object.spec),
        }
    } else {
        let Some(old) = r.old_object else {
            return Some(Expected::Refused);
        };
        validate_update(
            &old.spec,
            old.status.as_ref().map(|s| s.facts()),
            &object.spec,
        )
    };
    Some(match decision {
        Decision::Allow { warnings } => Expected::Allow(warnings),
        Decision::Deny { message, .. } => Expected::Deny(message),
    })
}

/// The uid of the body, as far as a JSON reader can read it.
fn uid_in(body: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(body).ok()?;
    v.get("request")?
        .get("uid")?
        .as_str()
        .filter(|u| !u.is_empty())
        .map(str::to_owned)
}

// ---------------------------------------------------------------------------------------------
// Realistic reviews.

const VERSIONS: &[&str] = &[
    "0.3.0",
    "0.4.0",
    "0.5.0-1",
    "0.5.0",
    "0.6.0",
    "0.7.0-rc1",
    "1.0.0",
    "v0.6.0",
    "0.6",
];

fn version() -> impl Strategy<Value = &'static str> {
    proptest::sample::select(VERSIONS)
}

/// The status of the old object: none, healthy, upgrading, rolling back, or after a failed
/// upgrade.
fn old_status() -> impl Strategy<Value = Option<Value>> {
    (0..5u8, version(), version()).prop_map(|(which, current, target)| {
        let conditions: &[(&str, &str, &str)] = match which {
            0 => return None,
            1 => &[
                ("Upgrading", "False", "Completed"),
                ("PodsReady", "True", "AllPodsReady"),
                ("Error", "False", ""),
            ],
            2 => &[
                ("Upgrading", "True", "UpgradingBookkeeper"),
                ("Error", "False", ""),
            ],
            3 => &[
                ("RollbackInProgress", "True", "RollingBack"),
                ("Error", "True", "UpgradeFailed"),
            ],
            _ => &[
                ("Upgrading", "False", "UpgradeFailed"),
                ("Error", "True", "UpgradeFailed"),
            ],
        };
        Some(common::status(
            current,
            (which > 1).then_some(target),
            conditions,
        ))
    })
}

/// A CREATE or UPDATE of a PravegaCluster as the API server sends it.
fn realistic() -> impl Strategy<Value = Value> {
    (
        any::<bool>(),
        version(),
        version(),
        old_status(),
        any::<bool>(),
        "[a-f0-9]{8}-[a-f0-9]{4}",
        proptest::sample::select(
            &[
                "example",
                "pravega-prod",
                "a-name-that-is-much-too-long-for-a-cluster",
            ][..],
        ),
    )
        .prop_map(|(create, old, new, status, dry_run, uid, name)| {
            let mut review = if create {
                common::review(
                    &uid,
                    "CREATE",
                    Some(common::cluster(new, None)),
                    None,
                    dry_run,
                )
            } else {
                common::review(
                    &uid,
                    "UPDATE",
                    Some(common::cluster(new, status.clone())),
                    Some(common::cluster(old, status)),
                    dry_run,
                )
            };
            review["request"]["name"] = json!(name);
            review["request"]["object"]["metadata"]["name"] = json!(name);
            if !create {
                review["request"]["oldObject"]["metadata"]["name"] = json!(name);
            }
            review
        })
}

// ---------------------------------------------------------------------------------------------
// Mutations.

#[derive(Debug, Clone, PartialEq, Eq)]
enum Seg {
    Key(String),
    At(usize),
}

type Path = Vec<Seg>;

fn show(path: &[Seg]) -> String {
    let mut out = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Seg::At(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// Every path in `v` (but the root), with its value.
fn paths(v: &Value) -> Vec<(Path, Value)> {
    fn walk(v: &Value, here: &mut Path, out: &mut Vec<(Path, Value)>) {
        match v {
            Value::Object(m) => {
                for (k, child) in m {
                    here.push(Seg::Key(k.clone()));
                    out.push((here.clone(), child.clone()));
                    walk(child, here, out);
                    here.pop();
                }
            }
            Value::Array(a) => {
                for (i, child) in a.iter().enumerate() {
                    here.push(Seg::At(i));
                    out.push((here.clone(), child.clone()));
                    walk(child, here, out);
                    here.pop();
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(v, &mut Vec::new(), &mut out);
    out
}

/// Whether the webhook reads the value at `path` to judge the request (so that a value of the
/// wrong type there must be refused).
fn read_by_the_webhook(path: &[Seg], operation: &str) -> bool {
    let keys: Vec<&str> = path
        .iter()
        .map(|s| match s {
            Seg::Key(k) => k.as_str(),
            Seg::At(_) => "[]",
        })
        .collect();
    match keys.as_slice() {
        ["apiVersion" | "kind" | "request"] => true,
        [
            "request",
            "uid" | "kind" | "name" | "namespace" | "operation" | "dryRun" | "object",
        ] => true,
        ["request", "kind", "group" | "kind"] => true,
        ["request", "object", "metadata"] | ["request", "object", "metadata", "name"] => true,
        ["request", "object", "spec", ..] => true,
        ["request", "oldObject", rest @ ..] if operation == "UPDATE" => matches!(
            rest,
            [] | ["spec", ..]
                | ["status"]
                | ["status", "currentVersion" | "targetVersion" | "conditions"]
                | ["status", "conditions", "[]"]
                | ["status", "conditions", "[]", "type" | "status" | "reason"]
        ),
        _ => false,
    }
}

/// An edit of the rendered JSON text.
#[derive(Debug, Clone)]
enum Edit {
    /// The value at the path is written as this text.
    Replace(Path, String),
    /// The member at the path (an object's key) is written twice: once with its value, once with
    /// this text (before or after it).
    Duplicate(Path, String, bool),
}

/// `v` as compact JSON text, with `edit` applied.
fn render(v: &Value, edit: &Edit) -> String {
    fn write(v: &Value, here: &mut Path, edit: &Edit, out: &mut String) {
        if let Edit::Replace(at, raw) = edit
            && at == here
        {
            out.push_str(raw);
            return;
        }
        match v {
            Value::Object(m) => {
                out.push('{');
                let mut first = true;
                let mut member =
                    |key: &str, out: &mut String, value: &mut dyn FnMut(&mut String)| {
                        if !first {
                            out.push(',');
                        }
                        first = false;
                        out.push_str(&Value::from(key).to_string());
                        out.push(':');
                        value(out);
                    };
                for (k, child) in m {
                    here.push(Seg::Key(k.clone()));
                    let duplicate = match edit {
                        Edit::Duplicate(at, raw, before) if at == here => Some((raw, *before)),
                        _ => None,
                    };
                    if let Some((raw, true)) = duplicate {
                        member(k, out, &mut |out| out.push_str(raw));
                    }
                    member(k, out, &mut |out| write(child, here, edit, out));
                    if let Some((raw, false)) = duplicate {
                        member(k, out, &mut |out| out.push_str(raw));
                    }
                    here.pop();
                }
                out.push('}');
            }
            Value::Array(a) => {
                out.push('[');
                for (i, child) in a.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    here.push(Seg::At(i));
                    write(child, here, edit, out);
                    here.pop();
                }
                out.push(']');
            }
            scalar => out.push_str(&scalar.to_string()),
        }
    }
    let mut out = String::new();
    write(v, &mut Vec::new(), edit, &mut out);
    out
}

/// A value of another JSON type than `v` (never null: null is "absent" for optional fields).
fn other_type(v: &Value, pick: usize) -> Value {
    let candidates = [
        json!(7),
        json!(true),
        json!("0.6.0"),
        json!(["0.6.0"]),
        json!({"version": "0.6.0"}),
    ];
    let same = |c: &Value| {
        std::mem::discriminant(c) == std::mem::discriminant(v) || (c.is_number() && v.is_number())
    };
    let others: Vec<&Value> = candidates.iter().filter(|c| !same(c)).collect();
    others[pick % others.len()].clone()
}

/// `depth` nested arrays or objects around a string.
fn nested(depth: usize, arrays: bool) -> String {
    let mut out = String::with_capacity(depth * 8 + 8);
    for _ in 0..depth {
        out.push_str(if arrays { "[" } else { "{\"a\":" });
    }
    out.push_str("\"0.6.0\"");
    for _ in 0..depth {
        out.push(if arrays { ']' } else { '}' });
    }
    out
}

/// A mutation of a rendered review.
#[derive(Debug, Clone)]
enum Mutation {
    /// Cut the body at a point.
    Truncate(Index),
    /// Write one member twice, the second time with the same value or another one.
    Duplicate { at: Index, same: bool, before: bool },
    /// Replace a value with a long string (of `len` bytes), plain or a semantic version.
    Huge { at: Index, len: usize, semver: bool },
    /// Replace a value with `depth` nested arrays or objects.
    Deep {
        at: Index,
        depth: usize,
        arrays: bool,
    },
    /// Replace a value the webhook reads with one of another JSON type.
    WrongType { at: Index, pick: usize },
    /// Overwrite bytes with bytes that are not UTF-8.
    NotUtf8 { at: Index, bytes: Vec<u8> },
}

fn mutation(max_huge: usize) -> impl Strategy<Value = Mutation> {
    prop_oneof![
        any::<Index>().prop_map(Mutation::Truncate),
        (any::<Index>(), any::<bool>(), any::<bool>())
            .prop_map(|(at, same, before)| { Mutation::Duplicate { at, same, before } }),
        (any::<Index>(), 1..=max_huge, any::<bool>())
            .prop_map(|(at, len, semver)| Mutation::Huge { at, len, semver }),
        (
            any::<Index>(),
            prop_oneof![Just(127usize), Just(128), Just(129), 1000..20_000usize],
            any::<bool>()
        )
            .prop_map(|(at, depth, arrays)| Mutation::Deep { at, depth, arrays }),
        (any::<Index>(), any::<usize>()).prop_map(|(at, pick)| Mutation::WrongType { at, pick }),
        (
            any::<Index>(),
            proptest::collection::vec(0x80u8..=0xff, 1..4)
        )
            .prop_map(|(at, bytes)| Mutation::NotUtf8 { at, bytes }),
    ]
}

/// A long string: `len` bytes of letters, or a pre-release version that long.
fn long_string(len: usize, semver: bool) -> String {
    let mut s = String::with_capacity(len);
    if semver {
        s.push_str("0.6.0-");
    }
    while s.len() < len {
        s.push(char::from(b'a' + (s.len() % 26) as u8));
    }
    s
}

/// The mutated body, and a description of the mutation (for failure messages).
fn apply(review: &Value, m: &Mutation) -> (Vec<u8>, String) {
    let operation = review["request"]["operation"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let all = paths(review);
    let original = serde_json::to_vec(review).expect("a review renders");
    match m {
        Mutation::Truncate(at) => {
            let cut = at.index(original.len());
            (original[..cut].to_vec(), format!("cut at byte {cut}"))
        }
        Mutation::Duplicate { at, same, before } => {
            let (path, value) = &all[at.index(all.len())];
            if !matches!(path.last(), Some(Seg::Key(_))) {
                return (original, "nothing duplicated (array element)".to_owned());
            }
            let other = if *same {
                value.clone()
            } else {
                match value {
                    Value::String(s) if s != "0.6.0" => json!("0.6.0"),
                    Value::String(_) => json!("0.3.0"),
                    Value::Bool(b) => json!(!b),
                    Value::Number(_) => json!(1),
                    _ => json!(null),
                }
            };
            let raw = other.to_string();
            let text = render(review, &Edit::Duplicate(path.clone(), raw.clone(), *before));
            (
                text.into_bytes(),
                format!(
                    "{} written twice ({} with {raw})",
                    show(path),
                    if *before { "first" } else { "then" }
                ),
            )
        }
        Mutation::Huge { at, len, semver } => {
            let (path, _) = &all[at.index(all.len())];
            let raw = Value::from(long_string(*len, *semver)).to_string();
            let text = render(review, &Edit::Replace(path.clone(), raw));
            (
                text.into_bytes(),
                format!("{} is a string of {len} bytes", show(path)),
            )
        }
        Mutation::Deep { at, depth, arrays } => {
            let (path, _) = &all[at.index(all.len())];
            let text = render(
                review,
                &Edit::Replace(path.clone(), nested(*depth, *arrays)),
            );
            (
                text.into_bytes(),
                format!("{} nested {depth} levels deep", show(path)),
            )
        }
        Mutation::WrongType { at, pick } => {
            let read: Vec<&(Path, Value)> = all
                .iter()
                .filter(|(p, v)| !v.is_null() && read_by_the_webhook(p, &operation))
                .collect();
            let (path, value) = read[at.index(read.len())];
            let raw = other_type(value, *pick).to_string();
            let text = render(review, &Edit::Replace(path.clone(), raw.clone()));
            (
                text.into_bytes(),
                format!("{} is {raw} instead of {value}", show(path)),
            )
        }
        Mutation::NotUtf8 { at, bytes } => {
            let mut body = original;
            let start = at.index(body.len());
            for (i, b) in bytes.iter().enumerate() {
                if let Some(slot) = body.get_mut(start + i) {
                    *slot = *b;
                }
            }
            (body, format!("bytes {bytes:x?} at {start}"))
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The properties.

fn state() -> Arc<AppState> {
    Arc::new(AppState::new(LIMIT, TIMEOUT))
}

/// Every property of one answer to `body`. `original` is the answer to the review `body` was
/// mutated from (`None` for the unmutated review itself).
async fn check(
    state: &Arc<AppState>,
    body: Vec<u8>,
    original: Option<&Answer>,
    what: &str,
) -> Result<Answer, TestCaseError> {
    let len = body.len();
    let uid = uid_in(&body);
    let typed = typed_verdict(&body);
    let (answer, elapsed) = call(state, Full::new(Bytes::from(body))).await?;

    // In time.
    prop_assert!(
        elapsed < TIMEOUT + SLACK,
        "{what}: answered after {elapsed:?}"
    );
    // The uid is echoed whenever it can be read; otherwise a plain 400 (413 past the limit).
    match (&answer, len > LIMIT) {
        (Answer::Plain { status, .. }, true) => prop_assert_eq!(*status, 413, "{}", what),
        (other, true) => prop_assert!(false, "{what}: a body over the limit got {other:?}"),
        (Answer::Plain { status, message }, false) => {
            prop_assert_eq!(*status, 400, "{}: {}", what, message);
            prop_assert!(
                uid.is_none(),
                "{what}: uid {uid:?} readable but answered {message}"
            );
        }
        (Answer::Review { uid: echoed, .. }, false) => match &uid {
            Some(uid) => prop_assert_eq!(echoed, uid, "{}", what),
            // Readable by the webhook, which skips what it does not read, but not by a reader
            // that builds the whole document (nested deeper than it allows): the original uid.
            None => prop_assert_eq!(
                Some(echoed.as_str()),
                original.and_then(|o| match o {
                    Answer::Review { uid, .. } => Some(uid.as_str()),
                    Answer::Plain { .. } => None,
                }),
                "{}",
                what
            ),
        },
    }
    // The verdict of the rules on the typed objects.
    if let Some(expected) = &typed {
        match (expected, &answer) {
            (
                Expected::Allow(warnings),
                Answer::Review {
                    allowed: true,
                    warnings: got,
                    ..
                },
            ) => prop_assert_eq!(got, warnings, "{}", what),
            (
                Expected::Deny(message),
                Answer::Review {
                    allowed: false,
                    code: Some(403),
                    message: Some(got),
                    ..
                },
            ) => prop_assert_eq!(got, message, "{}", what),
            (Expected::Refused, answer) if answer.refused() => {}
            (expected, answer) => prop_assert!(
                false,
                "{what}: the typed reading expects {expected:?}, the webhook answered {answer:?}"
            ),
        }
    }
    // A mutation the typed reading cannot decode never allows what was not allowed.
    if let Some(original) = original
        && typed.is_none()
        && !original.allowed()
    {
        prop_assert!(
            !answer.allowed(),
            "{what}: allowed, where the unmutated review got {original:?}"
        );
    }
    Ok(answer)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Unmutated reviews decode, and get the verdict of the rules on the typed objects.
    #[test]
    fn realistic_reviews_get_the_verdict_of_the_typed_rules(review in realistic()) {
        let body = serde_json::to_vec(&review).expect("renders");
        prop_assert!(typed_verdict(&body).is_some(), "the fixture decodes");
        block_on(async {
            let answer = check(&state(), body, None, "unmutated").await?;
            prop_assert!(matches!(answer, Answer::Review { code: None | Some(403), .. }), "{:?}", answer);
            Ok::<(), TestCaseError>(())
        })?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    /// Mutated reviews (strings up to 64 KiB): an answer of the right form, in time, with the
    /// typed verdict whenever the typed reading decodes them, never an allow the unmutated review
    /// did not get when it does not.
    #[test]
    fn mutated_reviews_are_answered_like_the_typed_reading_would(
        review in realistic(),
        m in mutation(64 * 1024),
    ) {
        let original_body = serde_json::to_vec(&review).expect("renders");
        let (body, what) = apply(&review, &m);
        // serde reads a struct from a JSON array too (`"spec": ["0.6.0"]` is a spec at 0.6.0),
        // the webhook like the typed reading: then the verdict is the typed one (checked in
        // `check`); otherwise a value of the wrong type is refused.
        let typed_decodes = typed_verdict(&body).is_some();
        block_on(async {
            let s = state();
            let original = check(&s, original_body, None, "unmutated").await?;
            let answer = check(&s, body, Some(&original), &what).await?;
            match m {
                Mutation::WrongType { .. } => {
                    prop_assert!(answer.refused() || typed_decodes, "{}: {:?}", what, answer);
                }
                // A key written twice: refused, or (in what the webhook does not read) no
                // difference at all.
                Mutation::Duplicate { .. } => {
                    prop_assert!(answer.refused() || answer == original, "{}: {:?}", what, answer);
                }
                _ => {}
            }
            Ok::<(), TestCaseError>(())
        })?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Strings of megabytes, just within the body limit and beyond it.
    #[test]
    fn megabyte_strings_within_and_beyond_the_limit(
        review in realistic(),
        at in any::<Index>(),
        room in prop_oneof![Just(None), (1usize..200_000).prop_map(Some)],
        beyond in 1usize..1_000_000,
        semver in any::<bool>(),
    ) {
        let original_body = serde_json::to_vec(&review).expect("renders");
        // Just within the limit (the rest of the review is small) or beyond it.
        let len = match room {
            Some(room) => LIMIT.saturating_sub(original_body.len() + room),
            None => LIMIT + beyond,
        };
        let m = Mutation::Huge { at, len, semver };
        let (body, what) = apply(&review, &m);
        block_on(async {
            let s = state();
            let original = check(&s, original_body, None, "unmutated").await?;
            check(&s, body, Some(&original), &what).await?;
            Ok::<(), TestCaseError>(())
        })?;
    }

    /// A body that stops arriving: 408 at the request timeout, not long after it.
    #[test]
    fn a_body_that_stops_arriving_is_answered_at_the_timeout(
        review in realistic(),
        at in any::<Index>(),
        timeout_ms in 20u64..400,
    ) {
        let body = serde_json::to_vec(&review).expect("renders");
        let cut = at.index(body.len());
        let timeout = Duration::from_millis(timeout_ms);
        block_on(async {
            let s = Arc::new(AppState::new(LIMIT, timeout));
            let stalled = Stalled(Some(Bytes::copy_from_slice(&body[..cut])));
            let (answer, elapsed) = call(&s, stalled).await?;
            prop_assert!(matches!(answer, Answer::Plain { status: 408, .. }), "{:?}", answer);
            prop_assert!(
                elapsed >= timeout && elapsed < timeout + SLACK,
                "{:?} for a timeout of {:?}", elapsed, timeout
            );
            Ok::<(), TestCaseError>(())
        })?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Random bytes: a plain 400 (or a review, for the rare bytes that read as one).
    #[test]
    fn random_bytes_get_an_answer(body in proptest::collection::vec(any::<u8>(), 0..4096)) {
        block_on(async {
            let answer = check(&state(), body, None, "random bytes").await?;
            prop_assert!(!answer.allowed(), "{:?}", answer);
            Ok::<(), TestCaseError>(())
        })?;
    }
}

/// A body that sends a first part, then nothing more, ever.
struct Stalled(Option<Bytes>);

impl hyper::body::Body for Stalled {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.0.take() {
            Some(first) => Poll::Ready(Some(Ok(Frame::data(first)))),
            None => Poll::Pending,
        }
    }
}
