//! A small subset of CEL (the Common Expression Language), enough for the `matchConditions` of
//! webhook configurations, compiled and evaluated the way the API server does it.
//!
//! Supported: literals (strings in single or double quotes with the usual escapes, integers,
//! `true`, `false`, `null`, lists `[a, b]`), the variables `object`, `oldObject` (dynamic) and
//! `request` (typed as the API server's `kubernetes.AdmissionRequest`), field selection `a.b.c`,
//! `has(a.b.c)`, `==` / `!=` (any values; values of different types are not equal), `<`, `<=`,
//! `>`, `>=` (ints, strings, bools), `&&` / `||` (with CEL's error absorption: `false && error`
//! is `false`, `true || error` is `true`, whichever side the error is on), `!`, parentheses,
//! `in` (list membership, map keys), `size()` (of strings in code points, lists, maps; as
//! `size(x)` or `x.size()`) and `//` comments. Anything else (arithmetic, `?:`, indexing, map
//! literals, doubles, other functions and macros, `authorizer`, `params`, nesting deeper than
//! the parser and evaluator allow) is a compile error that names what is not supported.
//!
//! Compilation type-checks like the API server's CEL environment: an undeclared variable, an
//! unknown field of `request`, an operator applied to operands of the wrong static types, or a
//! result that is not statically `bool` (a selection from `object` is `dyn`: compare it, e.g.
//! `object.spec.paused == true`) is refused with the API server's wording
//! (`compilation failed: ERROR: <input>:1:5: ...` with the line and a caret, or
//! `must evaluate to bool`). Evaluation errors are worded as cel-go words them
//! (`no such key: upgrade`, `no such overload`).

use std::fmt;

use serde_json::Value;

mod check;
mod eval;
mod lexer;
mod parser;
#[cfg(test)]
mod tests;

use check::{Ty, check};
use eval::{eval, no_overload};
use parser::{Node, parse};

/// A compiled expression: parsed and type-checked, statically `bool`.
#[derive(Debug, Clone)]
pub struct Program {
    root: Node,
}

/// Why an expression does not compile, worded as the API server words it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompileError(String);

impl fmt::Display for CompileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CompileError {}

/// Why an evaluation failed, worded as cel-go words it (`no such key: spec`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvalError(String);

impl fmt::Display for EvalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for EvalError {}

/// The variables an expression sees. `Value::Null` stands for an absent object (`oldObject` of
/// a CREATE, `object` of a DELETE).
#[derive(Debug, Clone, Copy)]
pub struct Activation<'a> {
    /// `object`: the object of the request.
    pub object: &'a Value,
    /// `oldObject`: the stored object an UPDATE or DELETE replaces.
    pub old_object: &'a Value,
    /// `request`: the AdmissionRequest (without `object`, `oldObject` and `uid`).
    pub request: &'a Value,
}

/// Compiles `source`, which must be statically `bool`.
pub fn compile(source: &str) -> Result<Program, CompileError> {
    let root = parse(source).map_err(|i| i.render(source))?;
    let ty = check(&root).map_err(|i| i.render(source))?;
    if ty != Ty::Bool {
        return Err(CompileError("must evaluate to bool".to_string()));
    }
    Ok(Program { root })
}

impl Program {
    /// Evaluates the expression.
    pub fn evaluate(&self, vars: &Activation<'_>) -> Result<bool, EvalError> {
        match eval(&self.root, vars)?.as_ref() {
            Value::Bool(b) => Ok(*b),
            _ => Err(no_overload()),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Compile errors

/// A compile error at a byte offset of the source.
#[derive(Debug)]
struct Issue {
    at: usize,
    message: String,
}

impl Issue {
    fn new(at: usize, message: impl Into<String>) -> Self {
        Issue {
            at,
            message: message.into(),
        }
    }

    fn unsupported(at: usize, what: impl fmt::Display) -> Self {
        Issue::new(
            at,
            format!("not supported by the sandbox's CEL subset: {what}"),
        )
    }

    fn syntax(at: usize, what: impl fmt::Display) -> Self {
        Issue::new(at, format!("Syntax error: {what}"))
    }

    /// cel-go's rendering: `ERROR: <input>:LINE:COLUMN: message`, then the line and a caret
    /// under the column (`.` per character before it, full-width for wide characters).
    fn render(&self, source: &str) -> CompileError {
        let at = self.at.min(source.len());
        let before = source.get(..at).unwrap_or(source);
        let line_no = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let col = source.get(line_start..at).map_or(0, |s| s.chars().count());
        let line = source
            .get(line_start..)
            .and_then(|rest| rest.split('\n').next())
            .unwrap_or_default()
            .replace('\t', " ");
        let mut caret: String = line
            .chars()
            .take(col)
            .map(|c| if c.len_utf8() > 1 { '\u{ff0e}' } else { '.' })
            .collect();
        caret.push(if line.chars().nth(col).is_some_and(|c| c.len_utf8() > 1) {
            '\u{ff3e}'
        } else {
            '^'
        });
        CompileError(format!(
            "compilation failed: ERROR: <input>:{line_no}:{}: {}\n | {line}\n | {caret}",
            col + 1,
            self.message
        ))
    }
}
