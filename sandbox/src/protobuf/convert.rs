//! Conversion of the prost messages of `k8s-pb` into the `k8s-openapi` types, whose serde
//! serialisation is the API server's JSON (field names, RFC 3339 times, quantities,
//! int-or-strings, base64 byte strings, raw extensions).
//!
//! Each message is converted by one [`message!`] line that destructures the prost struct
//! exhaustively and builds the k8s-openapi struct literal exhaustively: a field added to either
//! crate that is not mapped here is a compile error, not a silently dropped value.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::apimachinery::pkg::api::resource as oa_resource;
use k8s_openapi::apimachinery::pkg::apis::meta::v1 as oa_meta;
use k8s_openapi::apimachinery::pkg::runtime as oa_runtime;
use k8s_openapi::apimachinery::pkg::util::intstr as oa_intstr;
use k8s_openapi::jiff::Timestamp;
use k8s_pb::apimachinery::pkg::api::resource as pb_resource;
use k8s_pb::apimachinery::pkg::apis::meta::v1 as pb_meta;
use k8s_pb::apimachinery::pkg::runtime as pb_runtime;
use k8s_pb::apimachinery::pkg::util::intstr as pb_intstr;

/// Why a decoded message cannot be converted, and where in the object.
#[derive(Debug, Clone, PartialEq)]
pub struct ConvertError {
    /// Path segments, innermost first (`[0]` for a list index).
    path: Vec<String>,
    problem: Problem,
}

#[derive(Debug, Clone, PartialEq)]
enum Problem {
    /// A field of a newer Kubernetes than the API version the sandbox serves.
    Unset,
    /// A value that cannot be represented (a time out of range, raw bytes that are not JSON).
    Invalid(String),
}

impl ConvertError {
    pub(super) fn unset(field: &str) -> Self {
        Self {
            path: vec![json_name(field)],
            problem: Problem::Unset,
        }
    }

    fn invalid(message: impl Into<String>) -> Self {
        Self {
            path: Vec::new(),
            problem: Problem::Invalid(message.into()),
        }
    }

    /// Adds the field (its prost name) the error is in.
    pub(super) fn within(mut self, field: &str) -> Self {
        self.path.push(json_name(field));
        self
    }

    fn at(mut self, index: usize) -> Self {
        self.path.push(format!("[{index}]"));
        self
    }

    fn in_key(mut self, key: &str) -> Self {
        self.path.push(format!("[{key:?}]"));
        self
    }

    /// The path of the field, as in the JSON object (`spec.template.spec.containers[0].name`).
    pub fn path(&self) -> String {
        let mut out = String::new();
        for seg in self.path.iter().rev() {
            if !out.is_empty() && !seg.starts_with('[') {
                out.push('.');
            }
            out.push_str(seg);
        }
        out
    }

    /// Whether the error is a field the served API version lacks (rather than a bad value).
    pub fn is_unsupported_field(&self) -> bool {
        self.problem == Problem::Unset
    }
}

impl std::fmt::Display for ConvertError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.problem {
            Problem::Unset => write!(
                f,
                "field {} is not part of the Kubernetes API version the sandbox serves (1.33)",
                self.path()
            ),
            Problem::Invalid(m) if self.path.is_empty() => f.write_str(m),
            Problem::Invalid(m) => write!(f, "{}: {m}", self.path()),
        }
    }
}

/// `init_containers` → `initContainers`, `r#type` → `type`: the JSON name of a prost field.
fn json_name(field: &str) -> String {
    let field = field.strip_prefix("r#").unwrap_or(field);
    let mut out = String::with_capacity(field.len());
    let mut upper = false;
    for c in field.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// Conversion of a prost value into the k8s-openapi value `T`.
pub trait ToOpenApi<T> {
    fn convert(self) -> Result<T, ConvertError>;

    /// Whether the value stands for an absent one (the zero time, which Go encodes as an
    /// empty message): an optional field holding it converts to `None`.
    fn is_absent(&self) -> bool {
        false
    }
}

/// Whether a field holds a value (for the fields the served API version lacks).
pub trait IsSet {
    fn is_set(&self) -> bool;
}

impl<T> IsSet for Option<T> {
    fn is_set(&self) -> bool {
        self.is_some()
    }
}

impl<T> IsSet for Vec<T> {
    fn is_set(&self) -> bool {
        !self.is_empty()
    }
}

impl<K, V> IsSet for BTreeMap<K, V> {
    fn is_set(&self) -> bool {
        !self.is_empty()
    }
}

impl<A: ToOpenApi<B>, B> ToOpenApi<Option<B>> for Option<A> {
    fn convert(self) -> Result<Option<B>, ConvertError> {
        match self {
            Some(a) if !<A as ToOpenApi<B>>::is_absent(&a) => a.convert().map(Some),
            _ => Ok(None),
        }
    }
}

impl<A: ToOpenApi<B>, B> ToOpenApi<Vec<B>> for Vec<A> {
    fn convert(self) -> Result<Vec<B>, ConvertError> {
        self.into_iter()
            .enumerate()
            .map(|(i, a)| a.convert().map_err(|e| e.at(i)))
            .collect()
    }
}

/// An empty repeated field is an absent list (Go's nil slice, omitted from JSON).
impl<A: ToOpenApi<B>, B> ToOpenApi<Option<Vec<B>>> for Vec<A> {
    fn convert(self) -> Result<Option<Vec<B>>, ConvertError> {
        if self.is_empty() {
            return Ok(None);
        }
        self.convert().map(Some)
    }
}

impl<A: ToOpenApi<B>, B> ToOpenApi<BTreeMap<String, B>> for BTreeMap<String, A> {
    fn convert(self) -> Result<BTreeMap<String, B>, ConvertError> {
        self.into_iter()
            .map(|(k, a)| match a.convert() {
                Ok(b) => Ok((k, b)),
                Err(e) => Err(e.in_key(&k)),
            })
            .collect()
    }
}

/// An empty map field is an absent map (Go's nil map, omitted from JSON).
impl<A: ToOpenApi<B>, B> ToOpenApi<Option<BTreeMap<String, B>>> for BTreeMap<String, A> {
    fn convert(self) -> Result<Option<BTreeMap<String, B>>, ConvertError> {
        if self.is_empty() {
            return Ok(None);
        }
        self.convert().map(Some)
    }
}

/// Scalars: the same type on both sides; a required field that is absent is Go's zero value.
macro_rules! scalar {
    ($($t:ty),*) => {$(
        impl ToOpenApi<$t> for $t {
            fn convert(self) -> Result<$t, ConvertError> {
                Ok(self)
            }
        }
        impl ToOpenApi<$t> for Option<$t> {
            fn convert(self) -> Result<$t, ConvertError> {
                Ok(self.unwrap_or_default())
            }
        }
    )*};
}
scalar!(String, bool, i32, i64);

impl ToOpenApi<ByteString> for Vec<u8> {
    fn convert(self) -> Result<ByteString, ConvertError> {
        Ok(ByteString(self))
    }
}

fn timestamp(seconds: Option<i64>, nanos: Option<i32>) -> Result<Timestamp, ConvertError> {
    let (s, n) = (seconds.unwrap_or(0), nanos.unwrap_or(0));
    Timestamp::new(s, n)
        .map_err(|e| ConvertError::invalid(format!("time {s}s {n}ns is out of range: {e}")))
}

// Time and MicroTime: apimachinery `pkg/apis/meta/v1/time_proto.go` and
// `micro_time_proto.go` (v1.33) decode seconds 0 and nanos 0 as the zero time.
impl ToOpenApi<oa_meta::Time> for pb_meta::Time {
    fn convert(self) -> Result<oa_meta::Time, ConvertError> {
        timestamp(self.seconds, self.nanos).map(oa_meta::Time)
    }

    fn is_absent(&self) -> bool {
        self.seconds.unwrap_or(0) == 0 && self.nanos.unwrap_or(0) == 0
    }
}

impl ToOpenApi<oa_meta::MicroTime> for pb_meta::MicroTime {
    fn convert(self) -> Result<oa_meta::MicroTime, ConvertError> {
        timestamp(self.seconds, self.nanos).map(oa_meta::MicroTime)
    }

    fn is_absent(&self) -> bool {
        self.seconds.unwrap_or(0) == 0 && self.nanos.unwrap_or(0) == 0
    }
}

/// Go's zero time (0001-01-01T00:00:00Z), for a required time field that is absent.
const GO_ZERO_TIME_SECONDS: i64 = -62_135_596_800;

macro_rules! required_time {
    ($($pb:ty => $oa:path),*) => {$(
        impl ToOpenApi<$oa> for Option<$pb> {
            fn convert(self) -> Result<$oa, ConvertError> {
                match self {
                    Some(t) if !t.is_absent() => t.convert(),
                    _ => timestamp(Some(GO_ZERO_TIME_SECONDS), None).map($oa),
                }
            }
        }
    )*};
}
required_time!(pb_meta::Time => oa_meta::Time, pb_meta::MicroTime => oa_meta::MicroTime);

/// The quantity's text; the API server's checks of it run on the JSON as for any body.
impl ToOpenApi<oa_resource::Quantity> for pb_resource::Quantity {
    fn convert(self) -> Result<oa_resource::Quantity, ConvertError> {
        Ok(oa_resource::Quantity(self.string.unwrap_or_default()))
    }
}

// apimachinery `pkg/util/intstr/intstr.go` (v1.33): type 0 is an int, 1 a string.
impl ToOpenApi<oa_intstr::IntOrString> for pb_intstr::IntOrString {
    fn convert(self) -> Result<oa_intstr::IntOrString, ConvertError> {
        match self.r#type.unwrap_or(0) {
            0 => Ok(oa_intstr::IntOrString::Int(self.int_val.unwrap_or(0))),
            1 => Ok(oa_intstr::IntOrString::String(
                self.str_val.unwrap_or_default(),
            )),
            t => Err(ConvertError::invalid(format!(
                "int-or-string type {t} is neither 0 (int) nor 1 (string)"
            ))),
        }
    }
}

/// Required fields of these types: absent is Go's zero value.
macro_rules! required {
    ($($pb:ty => $oa:ty),*) => {$(
        impl ToOpenApi<$oa> for Option<$pb> {
            fn convert(self) -> Result<$oa, ConvertError> {
                self.unwrap_or_default().convert()
            }
        }
    )*};
}
required!(pb_intstr::IntOrString => oa_intstr::IntOrString);

/// Raw JSON carried as bytes (`RawExtension.raw`, `FieldsV1.raw`).
fn raw_json(raw: Option<Vec<u8>>) -> Result<serde_json::Value, ConvertError> {
    match raw {
        None => Ok(serde_json::Value::Null),
        Some(b) => serde_json::from_slice(&b)
            .map_err(|e| ConvertError::invalid(format!("raw bytes are not JSON: {e}"))),
    }
}

impl ToOpenApi<oa_runtime::RawExtension> for pb_runtime::RawExtension {
    fn convert(self) -> Result<oa_runtime::RawExtension, ConvertError> {
        raw_json(self.raw).map(oa_runtime::RawExtension)
    }

    fn is_absent(&self) -> bool {
        self.raw.as_ref().is_none_or(Vec::is_empty)
    }
}

impl ToOpenApi<oa_meta::FieldsV1> for pb_meta::FieldsV1 {
    fn convert(self) -> Result<oa_meta::FieldsV1, ConvertError> {
        raw_json(self.raw).map(oa_meta::FieldsV1)
    }

    fn is_absent(&self) -> bool {
        self.raw.as_ref().is_none_or(Vec::is_empty)
    }
}

/// The scalars of Go value fields tagged `omitempty`.
pub trait Scalar: Default + PartialEq {}
impl Scalar for String {}
impl Scalar for bool {}
impl Scalar for i32 {}
impl Scalar for i64 {}

/// A Go value (not pointer) field tagged `omitempty`: gogo-protobuf writes it even when it
/// holds its zero value, Go's JSON omits it then, and the API server's defaulting reads the
/// zero value as unset (`imagePullPolicy: ""` is defaulted). A pointer field (`replicas`,
/// `automountServiceAccountToken`) keeps an explicit zero.
pub fn omit_zero<T: Scalar>(value: Option<T>) -> Option<T> {
    value.filter(|v| *v != T::default())
}

/// One line per message: `Pb => OpenApi { field, pb_name => openapi_name, newer_field => _ }`,
/// optionally followed by `inline field: PbType { ... }` for a message that Go embeds
/// (`json:",inline"`): the protobuf carries it as a field, the JSON (and k8s-openapi) has its
/// fields in the outer object. `field?` is a Go value field tagged `omitempty` whose zero value
/// means unset (see [`omit_zero`]); `field => _` is a field the served API version (1.33)
/// lacks: converting a message where it is set is an error naming it. Every field of the prost
/// struct must be listed (the destructuring is exhaustive), and every field of the k8s-openapi
/// struct must be produced (the struct literal is exhaustive). Expects `pb` and `oa` modules in
/// scope.
macro_rules! message {
    ($pb:ident => $oa:ident { $($fields:tt)* } $($tail:tt)*) => {
        $crate::protobuf::convert::message!(@outer [$pb $oa] [] [] [$($fields)*] $($tail)*);
    };
    (@outer $hd:tt $map:tt [$($u:ident)*] [$f:ident => _ $(, $($rest:tt)*)?] $($tail:tt)*) => {
        $crate::protobuf::convert::message!(@outer $hd $map [$($u)* $f] [$($($rest)*)?] $($tail)*);
    };
    (@outer $hd:tt [$($map:tt)*] $u:tt [$f:ident => $g:ident ? $(, $($rest:tt)*)?] $($tail:tt)*) => {
        $crate::protobuf::convert::message!(@outer $hd [$($map)* ($f $g omit)] $u [$($($rest)*)?] $($tail)*);
    };
    (@outer $hd:tt [$($map:tt)*] $u:tt [$f:ident => $g:ident $(, $($rest:tt)*)?] $($tail:tt)*) => {
        $crate::protobuf::convert::message!(@outer $hd [$($map)* ($f $g keep)] $u [$($($rest)*)?] $($tail)*);
    };
    (@outer $hd:tt [$($map:tt)*] $u:tt [$f:ident ? $(, $($rest:tt)*)?] $($tail:tt)*) => {
        $crate::protobuf::convert::message!(@outer $hd [$($map)* ($f $f omit)] $u [$($($rest)*)?] $($tail)*);
    };
    (@outer $hd:tt [$($map:tt)*] $u:tt [$f:ident $(, $($rest:tt)*)?] $($tail:tt)*) => {
        $crate::protobuf::convert::message!(@outer $hd [$($map)* ($f $f keep)] $u [$($($rest)*)?] $($tail)*);
    };
    (@outer $hd:tt $map:tt $u:tt [] inline $i:ident : $it:ident { $($fields:tt)* }) => {
        $crate::protobuf::convert::message!(@inline $hd $map $u [$i $it] [] [] [$($fields)*]);
    };
    (@outer [$pb:ident $oa:ident] $map:tt $u:tt []) => {
        $crate::protobuf::convert::message!(@impl [$pb $oa] $map $u [] [] [] {});
    };
    (@inline $hd:tt $map:tt $u:tt $i:tt $imap:tt [$($iu:ident)*] [$f:ident => _ $(, $($rest:tt)*)?]) => {
        $crate::protobuf::convert::message!(@inline $hd $map $u $i $imap [$($iu)* $f] [$($($rest)*)?]);
    };
    (@inline $hd:tt $map:tt $u:tt $i:tt [$($imap:tt)*] $iu:tt [$f:ident => $g:ident ? $(, $($rest:tt)*)?]) => {
        $crate::protobuf::convert::message!(@inline $hd $map $u $i [$($imap)* ($f $g omit)] $iu [$($($rest)*)?]);
    };
    (@inline $hd:tt $map:tt $u:tt $i:tt [$($imap:tt)*] $iu:tt [$f:ident => $g:ident $(, $($rest:tt)*)?]) => {
        $crate::protobuf::convert::message!(@inline $hd $map $u $i [$($imap)* ($f $g keep)] $iu [$($($rest)*)?]);
    };
    (@inline $hd:tt $map:tt $u:tt $i:tt [$($imap:tt)*] $iu:tt [$f:ident ? $(, $($rest:tt)*)?]) => {
        $crate::protobuf::convert::message!(@inline $hd $map $u $i [$($imap)* ($f $f omit)] $iu [$($($rest)*)?]);
    };
    (@inline $hd:tt $map:tt $u:tt $i:tt [$($imap:tt)*] $iu:tt [$f:ident $(, $($rest:tt)*)?]) => {
        $crate::protobuf::convert::message!(@inline $hd $map $u $i [$($imap)* ($f $f keep)] $iu [$($($rest)*)?]);
    };
    (@inline $hd:tt $map:tt $u:tt [$i:ident $it:ident] [$(($if:ident $ig:ident $im:ident))*] [$($iu:ident)*] []) => {
        $crate::protobuf::convert::message!(@impl $hd $map $u [$i] [$(($if $ig $im))*] [$($iu)*] {
            let pb::$it { $($if,)* $($iu,)* } = $i.unwrap_or_default();
        });
    };
    (@field keep $f:ident) => {
        $crate::protobuf::convert::ToOpenApi::convert($f)
            .map_err(|e| e.within(stringify!($f)))?
    };
    (@field omit $f:ident) => {
        $crate::protobuf::convert::ToOpenApi::convert($crate::protobuf::convert::omit_zero($f))
            .map_err(|e| e.within(stringify!($f)))?
    };
    (@impl [$pb:ident $oa:ident] [$(($f:ident $g:ident $m:ident))*] [$($u:ident)*] [$($i:ident)?]
        [$(($if:ident $ig:ident $im:ident))*] [$($iu:ident)*] { $($inline:tt)* }) => {
        impl $crate::protobuf::convert::ToOpenApi<oa::$oa> for pb::$pb {
            fn convert(self) -> Result<oa::$oa, $crate::protobuf::convert::ConvertError> {
                let pb::$pb { $($f,)* $($u,)* $($i,)? } = self;
                $($inline)*
                $(if $crate::protobuf::convert::IsSet::is_set(&$u) {
                    return Err($crate::protobuf::convert::ConvertError::unset(stringify!($u)));
                })*
                $(if $crate::protobuf::convert::IsSet::is_set(&$iu) {
                    return Err($crate::protobuf::convert::ConvertError::unset(stringify!($iu)));
                })*
                Ok(oa::$oa {
                    $($g: $crate::protobuf::convert::message!(@field $m $f),)*
                    $($ig: $crate::protobuf::convert::message!(@field $im $if),)*
                })
            }
        }

        /// A required field: absent is the empty message, as Go decodes it.
        impl $crate::protobuf::convert::ToOpenApi<oa::$oa> for Option<pb::$pb> {
            fn convert(self) -> Result<oa::$oa, $crate::protobuf::convert::ConvertError> {
                $crate::protobuf::convert::ToOpenApi::convert(self.unwrap_or_default())
            }
        }
    };
}
pub(super) use message;
