//! Evaluation of a checked program against the variables of a request.

use super::parser::{CmpOp, Kind, Node};
use super::{Activation, EvalError};
use serde_json::Value;
use std::borrow::Cow;
use std::cmp::Ordering;

type Res<'a> = Result<Cow<'a, Value>, EvalError>;

pub(super) fn no_overload() -> EvalError {
    EvalError("no such overload".to_string())
}

fn boolean<'a>(b: bool) -> Res<'a> {
    Ok(Cow::Owned(Value::Bool(b)))
}

pub(super) fn eval<'a>(n: &'a Node, vars: &Activation<'a>) -> Res<'a> {
    match &n.kind {
        Kind::Lit(v) => Ok(Cow::Borrowed(v)),
        Kind::List(items) => items
            .iter()
            .map(|i| eval(i, vars).map(Cow::into_owned))
            .collect::<Result<Vec<_>, _>>()
            .map(|v| Cow::Owned(Value::Array(v))),
        Kind::Ident(name) => match name.as_str() {
            "object" => Ok(Cow::Borrowed(vars.object)),
            "oldObject" => Ok(Cow::Borrowed(vars.old_object)),
            "request" => Ok(Cow::Borrowed(vars.request)),
            other => Err(EvalError(format!("no such attribute: {other}"))),
        },
        Kind::Select {
            operand,
            field,
            test,
        } => {
            let v = eval(operand, vars)?;
            if *test {
                // A presence test on anything but a map (e.g. a null oldObject) is false.
                return boolean(matches!(v.as_ref(), Value::Object(m) if m.contains_key(field)));
            }
            let missing = || EvalError(format!("no such key: {field}"));
            match v {
                Cow::Borrowed(Value::Object(m)) => {
                    m.get(field).map(Cow::Borrowed).ok_or_else(missing)
                }
                Cow::Owned(Value::Object(mut m)) => {
                    m.remove(field).map(Cow::Owned).ok_or_else(missing)
                }
                _ => Err(missing()),
            }
        }
        Kind::Not(x) => match eval(x, vars)?.as_ref() {
            Value::Bool(b) => boolean(!b),
            _ => Err(no_overload()),
        },
        Kind::And(l, r) => logic(l, r, vars, false),
        Kind::Or(l, r) => logic(l, r, vars, true),
        Kind::Cmp(op, l, r) => {
            let a = eval(l, vars)?;
            let b = eval(r, vars)?;
            let (a, b) = (a.as_ref(), b.as_ref());
            boolean(match op {
                CmpOp::Eq => equal(a, b),
                CmpOp::Ne => !equal(a, b),
                CmpOp::Lt => order(a, b)? == Ordering::Less,
                CmpOp::Le => order(a, b)? != Ordering::Greater,
                CmpOp::Gt => order(a, b)? == Ordering::Greater,
                CmpOp::Ge => order(a, b)? != Ordering::Less,
            })
        }
        Kind::In(l, r) => {
            let a = eval(l, vars)?;
            let b = eval(r, vars)?;
            match b.as_ref() {
                Value::Array(items) => boolean(items.iter().any(|i| equal(a.as_ref(), i))),
                Value::Object(m) => boolean(a.as_str().is_some_and(|k| m.contains_key(k))),
                _ => Err(no_overload()),
            }
        }
        Kind::Size(x) => {
            let n = match eval(x, vars)?.as_ref() {
                Value::String(s) => s.chars().count(),
                Value::Array(a) => a.len(),
                Value::Object(m) => m.len(),
                _ => return Err(no_overload()),
            };
            Ok(Cow::Owned(Value::from(
                i64::try_from(n).unwrap_or(i64::MAX),
            )))
        }
    }
}

/// `&&` (`absorbing` false) and `||` (`absorbing` true), commutative as in CEL: the absorbing
/// value on either side wins over an error on the other; otherwise the first error is reported.
fn logic<'a>(l: &'a Node, r: &'a Node, vars: &Activation<'a>, absorbing: bool) -> Res<'a> {
    let truth = |n: &'a Node| -> Result<bool, EvalError> {
        match eval(n, vars)?.as_ref() {
            Value::Bool(b) => Ok(*b),
            _ => Err(no_overload()),
        }
    };
    let left = truth(l);
    if left == Ok(absorbing) {
        return boolean(absorbing);
    }
    let right = truth(r);
    if right == Ok(absorbing) {
        return boolean(absorbing);
    }
    match (left, right) {
        (Err(e), _) | (_, Err(e)) => Err(e),
        _ => boolean(!absorbing),
    }
}

#[derive(Clone, Copy)]
enum Num {
    Int(i64),
    Float(f64),
}

fn num(v: &Value) -> Option<Num> {
    let n = v.as_number()?;
    n.as_i64()
        .map(Num::Int)
        .or_else(|| n.as_f64().map(Num::Float))
}

fn as_f64(n: Num) -> f64 {
    match n {
        Num::Int(i) => i as f64,
        Num::Float(f) => f,
    }
}

/// CEL equality: numbers by value (an int equals the same double), lists and maps element by
/// element, values of different types are not equal.
fn equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(_), Value::Number(_)) => match (num(a), num(b)) {
            (Some(Num::Int(x)), Some(Num::Int(y))) => x == y,
            (Some(x), Some(y)) => as_f64(x) == as_f64(y),
            _ => false,
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| equal(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| equal(v, w)))
        }
        _ => a == b,
    }
}

/// CEL ordering of ints (and doubles), strings and bools; anything else has no overload.
fn order(a: &Value, b: &Value) -> Result<Ordering, EvalError> {
    match (a, b) {
        (Value::Number(_), Value::Number(_)) => match (num(a), num(b)) {
            (Some(Num::Int(x)), Some(Num::Int(y))) => Ok(x.cmp(&y)),
            (Some(x), Some(y)) => as_f64(x).partial_cmp(&as_f64(y)).ok_or_else(no_overload),
            _ => Err(no_overload()),
        },
        (Value::String(x), Value::String(y)) => Ok(x.cmp(y)),
        (Value::Bool(x), Value::Bool(y)) => Ok(x.cmp(y)),
        _ => Err(no_overload()),
    }
}
