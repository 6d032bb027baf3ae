//! The type checker: the static types the API server's CEL environment gives each expression.

use super::Issue;
use super::parser::{CmpOp, Kind, Node};
use serde_json::Value;
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Ty {
    Dyn,
    Null,
    Bool,
    Int,
    String,
    List(Box<Ty>),
    Map(Box<Ty>, Box<Ty>),
    /// A declared object type (`kubernetes.AdmissionRequest` and its parts).
    Object(&'static str),
}

impl fmt::Display for Ty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ty::Dyn => f.write_str("dyn"),
            Ty::Null => f.write_str("null_type"),
            Ty::Bool => f.write_str("bool"),
            Ty::Int => f.write_str("int"),
            Ty::String => f.write_str("string"),
            Ty::List(e) => write!(f, "list({e})"),
            Ty::Map(k, v) => write!(f, "map({k}, {v})"),
            Ty::Object(name) => f.write_str(name),
        }
    }
}

const REQUEST: &str = "kubernetes.AdmissionRequest";
const GVK: &str = "kubernetes.GroupVersionKind";
const GVR: &str = "kubernetes.GroupVersionResource";
const USER_INFO: &str = "kubernetes.UserInfo";

/// The fields of the declared object types, as the API server declares `request`.
fn field_type(object: &str, field: &str) -> Option<Ty> {
    let string_list = || Ty::List(Box::new(Ty::String));
    Some(match (object, field) {
        (REQUEST, "kind" | "requestKind") => Ty::Object(GVK),
        (REQUEST, "resource" | "requestResource") => Ty::Object(GVR),
        (REQUEST, "subResource" | "requestSubResource" | "name" | "namespace" | "operation") => {
            Ty::String
        }
        (REQUEST, "userInfo") => Ty::Object(USER_INFO),
        (REQUEST, "dryRun") => Ty::Bool,
        (REQUEST, "options") => Ty::Dyn,
        (GVK, "group" | "version" | "kind") | (GVR, "group" | "version" | "resource") => Ty::String,
        (USER_INFO, "username" | "uid") => Ty::String,
        (USER_INFO, "groups") => string_list(),
        (USER_INFO, "extra") => Ty::Map(Box::new(Ty::String), Box::new(string_list())),
        _ => return None,
    })
}

/// Whether values of the two static types may be compared for equality.
fn comparable(a: &Ty, b: &Ty) -> bool {
    match (a, b) {
        (Ty::Dyn, _) | (_, Ty::Dyn) => true,
        (Ty::List(x), Ty::List(y)) => comparable(x, y),
        (Ty::Map(k1, v1), Ty::Map(k2, v2)) => comparable(k1, k2) && comparable(v1, v2),
        _ => a == b,
    }
}

fn no_matching_overload(at: usize, function: &str, args: &[&Ty]) -> Issue {
    let args: Vec<String> = args.iter().map(ToString::to_string).collect();
    Issue::new(
        at,
        format!(
            "found no matching overload for '{function}' applied to '({})'",
            args.join(", ")
        ),
    )
}

pub(super) fn check(n: &Node) -> Result<Ty, Issue> {
    let is_bool = |t: &Ty| matches!(t, Ty::Bool | Ty::Dyn);
    match &n.kind {
        Kind::Lit(v) => Ok(match v {
            Value::Null => Ty::Null,
            Value::Bool(_) => Ty::Bool,
            Value::String(_) => Ty::String,
            _ => Ty::Int,
        }),
        Kind::List(items) => {
            let mut elem: Option<Ty> = None;
            for item in items {
                let t = check(item)?;
                elem = Some(match elem {
                    None => t,
                    Some(e) if e == t => e,
                    Some(_) => Ty::Dyn,
                });
            }
            Ok(Ty::List(Box::new(elem.unwrap_or(Ty::Dyn))))
        }
        Kind::Ident(name) => match name.as_str() {
            "object" | "oldObject" => Ok(Ty::Dyn),
            "request" => Ok(Ty::Object(REQUEST)),
            "authorizer" | "params" | "namespaceObject" | "variables" => {
                Err(Issue::unsupported(n.at, format!("the variable '{name}'")))
            }
            _ => Err(Issue::new(
                n.at,
                format!("undeclared reference to '{name}' (in container '')"),
            )),
        },
        Kind::Select {
            operand,
            field,
            test,
        } => {
            let t = check(operand)?;
            let ty = match &t {
                Ty::Dyn => Ty::Dyn,
                Ty::Object(object) => field_type(object, field)
                    .ok_or_else(|| Issue::new(n.at, format!("undefined field '{field}'")))?,
                Ty::Map(_, v) => (**v).clone(),
                other => {
                    return Err(Issue::new(
                        n.at,
                        format!("type '{other}' does not support field selection"),
                    ));
                }
            };
            Ok(if *test { Ty::Bool } else { ty })
        }
        Kind::Not(x) => {
            let t = check(x)?;
            if is_bool(&t) {
                Ok(Ty::Bool)
            } else {
                Err(no_matching_overload(n.at, "!_", &[&t]))
            }
        }
        Kind::And(l, r) | Kind::Or(l, r) => {
            let (a, b) = (check(l)?, check(r)?);
            if is_bool(&a) && is_bool(&b) {
                Ok(Ty::Bool)
            } else {
                let f = if matches!(n.kind, Kind::And(..)) {
                    "_&&_"
                } else {
                    "_||_"
                };
                Err(no_matching_overload(n.at, f, &[&a, &b]))
            }
        }
        Kind::Cmp(op, l, r) => {
            let (a, b) = (check(l)?, check(r)?);
            let ok = match op {
                CmpOp::Eq | CmpOp::Ne => comparable(&a, &b),
                _ => {
                    let ordered = |t: &Ty| matches!(t, Ty::Int | Ty::String | Ty::Bool | Ty::Dyn);
                    ordered(&a) && ordered(&b) && comparable(&a, &b)
                }
            };
            if ok {
                Ok(Ty::Bool)
            } else {
                Err(no_matching_overload(n.at, op.function(), &[&a, &b]))
            }
        }
        Kind::In(l, r) => {
            let (a, b) = (check(l)?, check(r)?);
            let ok = match &b {
                Ty::Dyn => true,
                Ty::List(e) => comparable(&a, e),
                Ty::Map(k, _) => comparable(&a, k),
                _ => false,
            };
            if ok {
                Ok(Ty::Bool)
            } else {
                Err(no_matching_overload(n.at, "@in", &[&a, &b]))
            }
        }
        Kind::Size(x) => {
            let t = check(x)?;
            if matches!(t, Ty::String | Ty::List(_) | Ty::Map(..) | Ty::Dyn) {
                Ok(Ty::Int)
            } else {
                Err(no_matching_overload(n.at, "size", &[&t]))
            }
        }
    }
}
