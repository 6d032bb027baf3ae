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

use std::borrow::Cow;
use std::cmp::Ordering;
use std::fmt;

use serde_json::Value;

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

// ---------------------------------------------------------------------------------------------
// Lexer

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    /// The digits of an integer literal (a leading `-` is applied by the parser).
    Int(String),
    Str(String),
    Op(&'static str),
    Eof,
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    at: usize,
}

const OPS: [&str; 25] = [
    "&&", "||", "==", "!=", "<=", ">=", "<", ">", "!", ".", ",", "(", ")", "[", "]", "{", "}", "?",
    ":", "+", "-", "*", "/", "%", "=",
];

fn lex(src: &str) -> Result<Vec<Token>, Issue> {
    let bytes = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if matches!(c, b' ' | b'\t' | b'\n' | b'\r' | b'\x0c') {
            i += 1;
            continue;
        }
        if src[i..].starts_with("//") {
            i = src[i..].find('\n').map_or(src.len(), |n| i + n);
            continue;
        }
        let at = i;
        if c.is_ascii_digit() {
            let end = src[i..]
                .find(|ch: char| !ch.is_ascii_alphanumeric())
                .map_or(src.len(), |n| i + n);
            let word = &src[i..end];
            let next = bytes.get(end).copied();
            if word.starts_with("0x") || word.starts_with("0X") {
                return Err(Issue::unsupported(at, "hexadecimal integer literals"));
            }
            if next == Some(b'.') && bytes.get(end + 1).is_some_and(u8::is_ascii_digit)
                || word.contains(['e', 'E'])
            {
                return Err(Issue::unsupported(at, "double literals"));
            }
            if let Some(digits) = word.strip_suffix(['u', 'U'])
                && digits.bytes().all(|b| b.is_ascii_digit())
            {
                return Err(Issue::unsupported(at, "unsigned integer literals"));
            }
            if !word.bytes().all(|b| b.is_ascii_digit()) {
                return Err(Issue::syntax(
                    at,
                    format!("token recognition error at: '{word}'"),
                ));
            }
            out.push(Token {
                tok: Tok::Int(word.to_string()),
                at,
            });
            i = end;
            continue;
        }
        if c.is_ascii_alphabetic() || c == b'_' {
            let end = src[i..]
                .find(|ch: char| !(ch.is_ascii_alphanumeric() || ch == '_'))
                .map_or(src.len(), |n| i + n);
            let word = &src[i..end];
            if matches!(bytes.get(end), Some(b'\'' | b'"'))
                && matches!(
                    word,
                    "r" | "R" | "b" | "B" | "rb" | "br" | "RB" | "BR" | "rB" | "Rb" | "bR" | "Br"
                )
            {
                return Err(Issue::unsupported(at, "raw and bytes string literals"));
            }
            out.push(Token {
                tok: Tok::Ident(word.to_string()),
                at,
            });
            i = end;
            continue;
        }
        if c == b'\'' || c == b'"' {
            let (s, end) = lex_string(src, i)?;
            out.push(Token {
                tok: Tok::Str(s),
                at,
            });
            i = end;
            continue;
        }
        let Some(op) = OPS.iter().find(|op| src[i..].starts_with(**op)) else {
            let ch = src[i..].chars().next().unwrap_or_default();
            return Err(Issue::syntax(
                at,
                format!("token recognition error at: '{ch}'"),
            ));
        };
        if matches!(*op, "=") {
            return Err(Issue::syntax(at, "token recognition error at: '='"));
        }
        out.push(Token {
            tok: Tok::Op(op),
            at,
        });
        i += op.len();
    }
    out.push(Token {
        tok: Tok::Eof,
        at: src.len(),
    });
    Ok(out)
}

/// A quoted string starting at byte `start`; returns its value and the offset after it.
fn lex_string(src: &str, start: usize) -> Result<(String, usize), Issue> {
    let rest = &src[start..];
    let quote = rest.chars().next().unwrap_or('\'');
    let triple: String = std::iter::repeat_n(quote, 3).collect();
    if rest.starts_with(&triple) {
        return Err(Issue::unsupported(start, "triple-quoted string literals"));
    }
    let unterminated = || Issue::syntax(start, "unterminated string literal");
    let mut out = String::new();
    let mut chars = rest.char_indices().skip(1);
    while let Some((off, c)) = chars.next() {
        match c {
            c if c == quote => return Ok((out, start + off + c.len_utf8())),
            '\n' | '\r' => return Err(unterminated()),
            '\\' => {
                let (eoff, e) = chars.next().ok_or_else(unterminated)?;
                let bad =
                    || Issue::syntax(start + eoff - 1, format!("invalid escape sequence \\{e}"));
                let mut hex = |n: usize| -> Result<char, Issue> {
                    let digits: String = (0..n)
                        .map(|_| chars.next().map(|(_, d)| d).unwrap_or('\0'))
                        .collect();
                    u32::from_str_radix(&digits, 16)
                        .ok()
                        .and_then(char::from_u32)
                        .ok_or_else(bad)
                };
                let ch = match e {
                    '\\' | '\'' | '"' | '`' | '?' => e,
                    'n' => '\n',
                    'r' => '\r',
                    't' => '\t',
                    'a' => '\x07',
                    'b' => '\x08',
                    'f' => '\x0c',
                    'v' => '\x0b',
                    'x' | 'X' => hex(2)?,
                    'u' => hex(4)?,
                    'U' => hex(8)?,
                    '0'..='3' => {
                        let digits: String = std::iter::once(e)
                            .chain((0..2).map(|_| chars.next().map(|(_, d)| d).unwrap_or('\0')))
                            .collect();
                        u32::from_str_radix(&digits, 8)
                            .ok()
                            .and_then(char::from_u32)
                            .ok_or_else(bad)?
                    }
                    _ => return Err(bad()),
                };
                out.push(ch);
            }
            c => out.push(c),
        }
    }
    Err(unterminated())
}

// ---------------------------------------------------------------------------------------------
// Parser

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CmpOp {
    fn of(op: &str) -> Option<CmpOp> {
        Some(match op {
            "==" => CmpOp::Eq,
            "!=" => CmpOp::Ne,
            "<" => CmpOp::Lt,
            "<=" => CmpOp::Le,
            ">" => CmpOp::Gt,
            ">=" => CmpOp::Ge,
            _ => return None,
        })
    }

    /// The overload name cel-go shows in type errors.
    fn function(self) -> &'static str {
        match self {
            CmpOp::Eq => "_==_",
            CmpOp::Ne => "_!=_",
            CmpOp::Lt => "_<_",
            CmpOp::Le => "_<=_",
            CmpOp::Gt => "_>_",
            CmpOp::Ge => "_>=_",
        }
    }
}

#[derive(Debug, Clone)]
struct Node {
    /// Byte offset where compile errors about this node point.
    at: usize,
    /// Levels of nodes down to the deepest leaf (1 for a leaf).
    depth: usize,
    kind: Kind,
}

/// The deepest expression accepted, so that checking and evaluating (recursive) stay far from
/// the end of the stack.
const MAX_DEPTH: usize = 250;

/// The deepest nesting of parentheses, lists, calls and `!` the (recursive) parser accepts.
const MAX_NESTING: usize = 50;

#[derive(Debug, Clone)]
enum Kind {
    Lit(Value),
    List(Vec<Node>),
    Ident(String),
    /// `operand.field`; `test` for `has(operand.field)`.
    Select {
        operand: Box<Node>,
        field: String,
        test: bool,
    },
    Not(Box<Node>),
    And(Box<Node>, Box<Node>),
    Or(Box<Node>, Box<Node>),
    Cmp(CmpOp, Box<Node>, Box<Node>),
    In(Box<Node>, Box<Node>),
    Size(Box<Node>),
}

fn node(at: usize, kind: Kind) -> Result<Node, Issue> {
    let children = match &kind {
        Kind::Lit(_) | Kind::Ident(_) => 0,
        Kind::List(items) => items.iter().map(|i| i.depth).max().unwrap_or(0),
        Kind::Select { operand: x, .. } | Kind::Not(x) | Kind::Size(x) => x.depth,
        Kind::And(l, r) | Kind::Or(l, r) | Kind::Cmp(_, l, r) | Kind::In(l, r) => {
            l.depth.max(r.depth)
        }
    };
    if children >= MAX_DEPTH {
        return Err(too_deep(at));
    }
    Ok(Node {
        at,
        depth: children + 1,
        kind,
    })
}

fn too_deep(at: usize) -> Issue {
    Issue::unsupported(
        at,
        format!("expressions more than {MAX_DEPTH} operations deep"),
    )
}

fn too_nested(at: usize) -> Issue {
    Issue::unsupported(
        at,
        format!("parentheses, lists, calls or '!' nested more than {MAX_NESTING} levels deep"),
    )
}

fn parse(src: &str) -> Result<Node, Issue> {
    let toks = lex(src)?;
    let mut p = Parser {
        toks: &toks,
        i: 0,
        nesting: 0,
    };
    let root = p.expr()?;
    match p.peek() {
        Tok::Eof => Ok(root),
        other => Err(Issue::syntax(
            p.at(),
            format!("unexpected {}", describe(other)),
        )),
    }
}

fn describe(t: &Tok) -> String {
    match t {
        Tok::Ident(s) | Tok::Int(s) => format!("'{s}'"),
        Tok::Str(s) => format!("string {s:?}"),
        Tok::Op(o) => format!("'{o}'"),
        Tok::Eof => "end of input".to_string(),
    }
}

struct Parser<'t> {
    toks: &'t [Token],
    i: usize,
    /// Current depth of the parser's recursion (parentheses, lists, calls, `!`).
    nesting: usize,
}

impl Parser<'_> {
    fn peek(&self) -> &Tok {
        self.toks.get(self.i).map_or(&Tok::Eof, |t| &t.tok)
    }

    fn peek_op(&self) -> Option<&'static str> {
        match self.peek() {
            Tok::Op(o) => Some(o),
            _ => None,
        }
    }

    fn at(&self) -> usize {
        self.toks
            .get(self.i)
            .or(self.toks.last())
            .map_or(0, |t| t.at)
    }

    fn bump(&mut self) -> Token {
        let t = self.toks.get(self.i).cloned().unwrap_or(Token {
            tok: Tok::Eof,
            at: self.at(),
        });
        if self.i < self.toks.len() {
            self.i += 1;
        }
        t
    }

    fn expect(&mut self, op: &str) -> Result<(), Issue> {
        if self.peek_op() == Some(op) {
            self.bump();
            Ok(())
        } else {
            Err(Issue::syntax(
                self.at(),
                format!("expected '{op}', found {}", describe(self.peek())),
            ))
        }
    }

    fn expr(&mut self) -> Result<Node, Issue> {
        self.nesting += 1;
        let e = if self.nesting > MAX_NESTING {
            Err(too_nested(self.at()))
        } else {
            self.or()
        };
        self.nesting -= 1;
        let e = e?;
        if self.peek_op() == Some("?") {
            return Err(Issue::unsupported(
                self.at(),
                "the conditional operator '? :'",
            ));
        }
        Ok(e)
    }

    fn or(&mut self) -> Result<Node, Issue> {
        let mut l = self.and()?;
        while self.peek_op() == Some("||") {
            let at = self.bump().at;
            let r = self.and()?;
            l = node(at, Kind::Or(Box::new(l), Box::new(r)))?;
        }
        Ok(l)
    }

    fn and(&mut self) -> Result<Node, Issue> {
        let mut l = self.relation()?;
        while self.peek_op() == Some("&&") {
            let at = self.bump().at;
            let r = self.relation()?;
            l = node(at, Kind::And(Box::new(l), Box::new(r)))?;
        }
        Ok(l)
    }

    fn relation(&mut self) -> Result<Node, Issue> {
        let mut l = self.additive()?;
        loop {
            if let Some(op) = self.peek_op().and_then(CmpOp::of) {
                let at = self.bump().at;
                let r = self.additive()?;
                l = node(at, Kind::Cmp(op, Box::new(l), Box::new(r)))?;
            } else if matches!(self.peek(), Tok::Ident(w) if w == "in") {
                let at = self.bump().at;
                let r = self.additive()?;
                l = node(at, Kind::In(Box::new(l), Box::new(r)))?;
            } else {
                return Ok(l);
            }
        }
    }

    fn additive(&mut self) -> Result<Node, Issue> {
        let l = self.multiplicative()?;
        match self.peek_op() {
            Some(op @ ("+" | "-")) => Err(Issue::unsupported(
                self.at(),
                format!("the arithmetic operator '{op}'"),
            )),
            _ => Ok(l),
        }
    }

    fn multiplicative(&mut self) -> Result<Node, Issue> {
        let l = self.unary()?;
        match self.peek_op() {
            Some(op @ ("*" | "/" | "%")) => Err(Issue::unsupported(
                self.at(),
                format!("the arithmetic operator '{op}'"),
            )),
            _ => Ok(l),
        }
    }

    fn unary(&mut self) -> Result<Node, Issue> {
        match self.peek_op() {
            Some("!") => {
                let at = self.bump().at;
                self.nesting += 1;
                let operand = if self.nesting > MAX_NESTING {
                    Err(too_nested(at))
                } else {
                    self.unary()
                };
                self.nesting -= 1;
                node(at, Kind::Not(Box::new(operand?)))
            }
            Some("-") => {
                let at = self.bump().at;
                match self.peek().clone() {
                    Tok::Int(digits) => {
                        self.bump();
                        let lit = int_literal(at, &format!("-{digits}"))?;
                        self.member_suffix(lit)
                    }
                    _ => Err(Issue::unsupported(at, "the arithmetic operator '-'")),
                }
            }
            _ => self.member(),
        }
    }

    fn member(&mut self) -> Result<Node, Issue> {
        let p = self.primary()?;
        self.member_suffix(p)
    }

    fn member_suffix(&mut self, mut operand: Node) -> Result<Node, Issue> {
        loop {
            match self.peek_op() {
                Some(".") => {
                    let at = self.bump().at;
                    let name_at = self.at();
                    let Tok::Ident(name) = self.bump().tok else {
                        return Err(Issue::syntax(name_at, "expected a field name after '.'"));
                    };
                    if self.peek_op() == Some("(") {
                        let args = self.args()?;
                        operand = match (name.as_str(), args.len()) {
                            ("size", 0) => node(name_at, Kind::Size(Box::new(operand)))?,
                            ("size", _) => {
                                return Err(Issue::new(
                                    name_at,
                                    "size() takes no argument when called on a value",
                                ));
                            }
                            _ => {
                                return Err(Issue::unsupported(
                                    name_at,
                                    format!("the function '{name}'"),
                                ));
                            }
                        };
                    } else {
                        operand = node(
                            at,
                            Kind::Select {
                                operand: Box::new(operand),
                                field: name,
                                test: false,
                            },
                        )?;
                    }
                }
                Some("[") => {
                    return Err(Issue::unsupported(self.at(), "indexing with '[...]'"));
                }
                _ => return Ok(operand),
            }
        }
    }

    /// `( expr, ... )`, the opening parenthesis next.
    fn args(&mut self) -> Result<Vec<Node>, Issue> {
        self.expect("(")?;
        let mut args = Vec::new();
        if self.peek_op() == Some(")") {
            self.bump();
            return Ok(args);
        }
        loop {
            args.push(self.expr()?);
            if self.peek_op() == Some(",") {
                self.bump();
                continue;
            }
            self.expect(")")?;
            return Ok(args);
        }
    }

    fn primary(&mut self) -> Result<Node, Issue> {
        let Token { tok, at } = self.bump();
        match tok {
            Tok::Ident(w) => match w.as_str() {
                "true" => node(at, Kind::Lit(Value::Bool(true))),
                "false" => node(at, Kind::Lit(Value::Bool(false))),
                "null" => node(at, Kind::Lit(Value::Null)),
                "in" => Err(Issue::syntax(at, "unexpected 'in'")),
                _ if self.peek_op() == Some("(") => self.call(at, &w),
                _ => node(at, Kind::Ident(w)),
            },
            Tok::Int(digits) => int_literal(at, &digits),
            Tok::Str(s) => node(at, Kind::Lit(Value::String(s))),
            Tok::Op("(") => {
                let e = self.expr()?;
                self.expect(")")?;
                Ok(e)
            }
            Tok::Op("[") => {
                let mut items = Vec::new();
                loop {
                    if self.peek_op() == Some("]") {
                        self.bump();
                        return node(at, Kind::List(items));
                    }
                    items.push(self.expr()?);
                    if self.peek_op() == Some(",") {
                        self.bump();
                    } else {
                        self.expect("]")?;
                        return node(at, Kind::List(items));
                    }
                }
            }
            Tok::Op("{") => Err(Issue::unsupported(at, "map literals")),
            Tok::Op(".") => Err(Issue::unsupported(at, "identifiers with a leading '.'")),
            other => Err(Issue::syntax(
                at,
                format!("unexpected {}", describe(&other)),
            )),
        }
    }

    /// A global call `name(...)`, the opening parenthesis next.
    fn call(&mut self, at: usize, name: &str) -> Result<Node, Issue> {
        let mut args = self.args()?;
        match (name, args.len()) {
            ("has", 1) => match args.pop().map(|a| a.kind) {
                Some(Kind::Select {
                    operand,
                    field,
                    test: false,
                }) => node(
                    at,
                    Kind::Select {
                        operand,
                        field,
                        test: true,
                    },
                ),
                _ => Err(Issue::new(at, "invalid argument to has() macro")),
            },
            ("has", _) => Err(Issue::new(at, "invalid argument to has() macro")),
            ("size", 1) => node(at, Kind::Size(Box::new(args.remove(0)))),
            ("size", n) => Err(Issue::new(
                at,
                format!("size() takes one argument, got {n}"),
            )),
            _ => Err(Issue::unsupported(at, format!("the function '{name}'"))),
        }
    }
}

fn int_literal(at: usize, text: &str) -> Result<Node, Issue> {
    let n = text
        .parse::<i64>()
        .map_err(|_| Issue::syntax(at, format!("invalid int literal '{text}'")))?;
    node(at, Kind::Lit(Value::from(n)))
}

// ---------------------------------------------------------------------------------------------
// Type checker

#[derive(Debug, Clone, PartialEq, Eq)]
enum Ty {
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

fn check(n: &Node) -> Result<Ty, Issue> {
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

// ---------------------------------------------------------------------------------------------
// Evaluation

type Res<'a> = Result<Cow<'a, Value>, EvalError>;

fn no_overload() -> EvalError {
    EvalError("no such overload".to_string())
}

fn boolean<'a>(b: bool) -> Res<'a> {
    Ok(Cow::Owned(Value::Bool(b)))
}

fn eval<'a>(n: &'a Node, vars: &Activation<'a>) -> Res<'a> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn request(op: &str) -> Value {
        json!({
            "kind": {"group": "pravega.pravega.io", "version": "v1beta1", "kind": "PravegaCluster"},
            "resource": {"group": "pravega.pravega.io", "version": "v1beta1", "resource": "pravegaclusters"},
            "requestKind": {"group": "pravega.pravega.io", "version": "v1beta1", "kind": "PravegaCluster"},
            "requestResource": {"group": "pravega.pravega.io", "version": "v1beta1", "resource": "pravegaclusters"},
            "name": "example",
            "namespace": "default",
            "operation": op,
            "userInfo": {"username": "admin", "groups": ["system:masters"]},
            "dryRun": false,
        })
    }

    fn object() -> Value {
        json!({"metadata": {"name": "example", "labels": {"app": "pravega"}},
            "spec": {"version": "0.5.0", "replicas": 3, "upgrade": {"paused": true},
                "tags": ["a", "b"], "ratio": 1.5, "name": "ünï"}})
    }

    fn old() -> Value {
        json!({"spec": {"version": "0.5.0", "replicas": 2, "upgrade": {"paused": false}}})
    }

    /// Evaluates `src` against `object()`, `old()` and an UPDATE request.
    fn run(src: &str) -> Result<bool, EvalError> {
        let p = compile(src).unwrap_or_else(|e| panic!("{src}: {e}"));
        let (o, old, req) = (object(), old(), request("UPDATE"));
        p.evaluate(&Activation {
            object: &o,
            old_object: &old,
            request: &req,
        })
    }

    fn yes(src: &str) {
        assert_eq!(run(src), Ok(true), "{src}");
    }

    fn no(src: &str) {
        assert_eq!(run(src), Ok(false), "{src}");
    }

    fn fails(src: &str, why: &str) {
        assert_eq!(run(src), Err(EvalError(why.to_string())), "{src}");
    }

    fn refused(src: &str) -> String {
        match compile(src) {
            Ok(_) => panic!("{src} compiled"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn literals() {
        yes("true");
        no("false");
        yes("'a' == \"a\"");
        yes("'it\\'s' == \"it's\"");
        yes("'\\x41\\u00e9\\101\\n' == \"A\u{e9}A\\n\"");
        yes("-3 < 2");
        yes("-9223372036854775808 < 9223372036854775807");
        yes("null == null");
        yes("[1, 2, 3] == [1, 2, 3]");
        yes("[] != [1]");
        yes("['a', 'b',] == ['a', 'b']");
        yes("true // a comment\n && true");
    }

    #[test]
    fn selection_and_has() {
        yes("object.spec.version == '0.5.0'");
        yes("object.spec.version == oldObject.spec.version");
        yes("object.metadata.labels.app == 'pravega'");
        yes("has(object.spec.upgrade) && has(object.spec.upgrade.paused)");
        no("has(object.spec.bookkeeper)");
        yes("has(request.name)");
        fails(
            "object.spec.bookkeeper.replicas == 3",
            "no such key: bookkeeper",
        );
        fails(
            "oldObject.spec.upgrade.autoRollback == true",
            "no such key: autoRollback",
        );
        // Selecting from a scalar, or a null oldObject, is a missing key; has() of it is false.
        fails("object.spec.version.major == 0", "no such key: major");
        let p = compile("has(oldObject.spec) || oldObject.spec.version == ''").unwrap();
        let (o, req) = (object(), request("CREATE"));
        let vars = Activation {
            object: &o,
            old_object: &Value::Null,
            request: &req,
        };
        assert_eq!(
            p.evaluate(&vars),
            Err(EvalError("no such key: spec".into()))
        );
        let p = compile("!has(oldObject.spec)").unwrap();
        assert_eq!(p.evaluate(&vars), Ok(true));
    }

    #[test]
    fn comparisons() {
        yes("object.spec.replicas > oldObject.spec.replicas");
        yes("object.spec.replicas >= 3 && object.spec.replicas <= 3");
        no("object.spec.replicas < 3");
        yes("'abc' < 'abd'");
        yes("false < true");
        yes("object.spec.ratio > 1");
        yes("object.spec.replicas == 3");
        no("object.spec.replicas == '3'");
        yes("object.spec.replicas != '3'");
        yes("object.spec.upgrade == object.spec.upgrade");
        no("object.spec.upgrade == oldObject.spec.upgrade");
        fails("object.spec.replicas < 'x'", "no such overload");
        fails("object.spec.tags > 1", "no such overload");
    }

    #[test]
    fn logic_absorbs_errors_as_cel_does() {
        // false && error, error && false: false.
        no("false && object.missing == 1");
        no("object.missing == 1 && false");
        // true || error, error || true: true.
        yes("true || object.missing == 1");
        yes("object.missing == 1 || true");
        // Otherwise the error surfaces (the left one first).
        fails("true && object.missing == 1", "no such key: missing");
        fails("object.missing == 1 && true", "no such key: missing");
        fails("false || object.missing == 1", "no such key: missing");
        fails(
            "object.first == 1 && object.second == 1",
            "no such key: first",
        );
        // A non-bool operand is an error too, and is absorbed the same way.
        fails("object.spec.version && true", "no such overload");
        no("object.spec.version && false");
        yes("true || object.spec.replicas");
        fails("!object.spec.version", "no such overload");
        yes("!(object.spec.replicas == 1)");
        yes("!!true");
    }

    #[test]
    fn membership_and_size() {
        yes("request.operation in ['CREATE', 'UPDATE']");
        no("request.operation in ['DELETE']");
        yes("'a' in object.spec.tags");
        yes("'app' in object.metadata.labels");
        no("'team' in object.metadata.labels");
        yes("'system:masters' in request.userInfo.groups");
        fails("'a' in object.spec.version", "no such overload");
        yes("size(object.spec.tags) == 2");
        yes("object.spec.tags.size() == 2");
        yes("size('héllo') == 5");
        yes("object.spec.name.size() == 3");
        yes("size(object.metadata.labels) == 1");
        yes("size([]) == 0");
        fails("size(object.spec.replicas) == 1", "no such overload");
    }

    #[test]
    fn request_fields() {
        yes("request.operation == 'UPDATE'");
        yes(
            "request.kind.kind == 'PravegaCluster' && request.resource.resource == 'pravegaclusters'",
        );
        yes("request.namespace == 'default' && request.name == 'example'");
        yes("request.dryRun == false");
        yes("request.userInfo.username == 'admin'");
        // Fields the API server omits when empty are missing keys.
        fails("request.subResource == ''", "no such key: subResource");
        no("has(request.subResource)");
    }

    #[test]
    fn the_deploy_condition() {
        let cond = "!(request.operation == 'UPDATE' && has(object.spec.upgrade) && has(object.spec.upgrade.paused) && object.spec.upgrade.paused == true && object.spec.version == oldObject.spec.version)";
        let p = compile(cond).unwrap();
        let eval = |op: &str, o: Value, old: Value| {
            let req = request(op);
            p.evaluate(&Activation {
                object: &o,
                old_object: &old,
                request: &req,
            })
        };
        let spec = |version: &str, upgrade: Value| json!({"spec": {"version": version, "upgrade": upgrade}});
        // The brake: skip the webhook.
        assert_eq!(
            eval(
                "UPDATE",
                spec("0.5.0", json!({"paused": true})),
                spec("0.5.0", json!({}))
            ),
            Ok(false)
        );
        // A version change, with or without the brake, an unpause, a create: call it.
        assert_eq!(
            eval(
                "UPDATE",
                spec("0.6.0", json!({"paused": true})),
                spec("0.5.0", json!({}))
            ),
            Ok(true)
        );
        assert_eq!(
            eval(
                "UPDATE",
                spec("0.5.0", json!({"paused": false})),
                spec("0.5.0", json!({"paused": true}))
            ),
            Ok(true)
        );
        assert_eq!(
            eval(
                "UPDATE",
                json!({"spec": {"version": "0.5.0"}}),
                spec("0.5.0", json!({}))
            ),
            Ok(true)
        );
        assert_eq!(
            eval(
                "CREATE",
                spec("0.5.0", json!({"paused": true})),
                Value::Null
            ),
            Ok(true)
        );
    }

    #[test]
    fn compile_errors_are_worded_as_the_api_server_words_them() {
        assert_eq!(
            refused("foo == 1"),
            "compilation failed: ERROR: <input>:1:1: undeclared reference to 'foo' (in container '')\n | foo == 1\n | ^"
        );
        assert_eq!(
            refused("request.foo == 'x'"),
            "compilation failed: ERROR: <input>:1:8: undefined field 'foo'\n | request.foo == 'x'\n | .......^"
        );
        assert_eq!(
            refused("request.name == 1"),
            "compilation failed: ERROR: <input>:1:14: found no matching overload for '_==_' applied to '(string, int)'\n | request.name == 1\n | .............^"
        );
        assert_eq!(refused("object.spec.paused"), "must evaluate to bool");
        assert_eq!(refused("size('a')"), "must evaluate to bool");
        assert!(refused("request.dryRun &&\n  1").contains(
            "ERROR: <input>:1:16: found no matching overload for '_&&_' applied to '(bool, int)'"
        ));
        assert!(refused("!1").contains("found no matching overload for '!_' applied to '(int)'"));
        assert!(refused("1 < 'a'").contains("'_<_' applied to '(int, string)'"));
        assert!(refused("'a' in 'abc'").contains("'@in' applied to '(string, string)'"));
        assert!(refused("size(1) == 1").contains("'size' applied to '(int)'"));
        assert!(
            refused("request.dryRun.x").contains("type 'bool' does not support field selection")
        );
        assert!(refused("has(object)").contains("invalid argument to has() macro"));
        // A second line: the location and the snippet are of that line.
        assert_eq!(
            refused("true &&\n  nope"),
            "compilation failed: ERROR: <input>:2:3: undeclared reference to 'nope' (in container '')\n |   nope\n | ..^"
        );
    }

    #[test]
    fn syntax_errors() {
        assert!(refused("(true").contains("Syntax error: expected ')', found end of input"));
        assert!(refused("true true").contains("Syntax error: unexpected 'true'"));
        assert!(refused("a = 1").contains("Syntax error: token recognition error at: '='"));
        assert!(refused("'abc").contains("Syntax error: unterminated string literal"));
        assert!(refused("'\\q' == ''").contains("invalid escape sequence \\q"));
        assert!(refused("").contains("Syntax error: unexpected end of input"));
        assert!(refused("99999999999999999999 > 1").contains("invalid int literal"));
        assert!(refused("true && #").contains("token recognition error at: '#'"));
    }

    #[test]
    fn what_is_not_supported_is_named() {
        for (src, what) in [
            (
                "object.spec.replicas + 1 == 2",
                "the arithmetic operator '+'",
            ),
            (
                "object.spec.replicas * 2 == 2",
                "the arithmetic operator '*'",
            ),
            ("-object.spec.replicas == 2", "the arithmetic operator '-'"),
            ("true ? true : false", "the conditional operator '? :'"),
            (
                "object.metadata.labels['app'] == 'x'",
                "indexing with '[...]'",
            ),
            ("{'a': 1} == {'a': 1}", "map literals"),
            ("object.spec.ratio == 1.5", "double literals"),
            ("object.spec.replicas == 1u", "unsigned integer literals"),
            (
                "object.spec.replicas == 0x1",
                "hexadecimal integer literals",
            ),
            ("r'a' == 'a'", "raw and bytes string literals"),
            ("'''a''' == 'a'", "triple-quoted string literals"),
            ("request.name.startsWith('a')", "the function 'startsWith'"),
            ("object.spec.tags.all(t, t == 'a')", "the function 'all'"),
            ("matches('a', 'b')", "the function 'matches'"),
            ("authorizer == null", "the variable 'authorizer'"),
            ("params.x == 1", "the variable 'params'"),
            (".object.spec == null", "identifiers with a leading '.'"),
        ] {
            let e = refused(src);
            assert!(
                e.contains(&format!(
                    "not supported by the sandbox's CEL subset: {what}"
                )),
                "{src}: {e}"
            );
            assert!(
                e.starts_with("compilation failed: ERROR: <input>:1:"),
                "{e}"
            );
        }
    }

    #[test]
    fn deep_nesting_is_refused_not_a_stack_overflow() {
        let nested = |n: usize, open: &str, close: &str| {
            format!("{}true{} == true", open.repeat(n), close.repeat(n))
        };
        for src in [
            nested(49, "(", ")"),
            nested(49, "!", ""),
            format!("size({}true{}) == 1", "[".repeat(48), "]".repeat(48)),
        ] {
            assert!(compile(&src).is_ok(), "{src}: {:?}", compile(&src).err());
        }
        for (open, close) in [("(", ")"), ("[", "]"), ("!", ""), ("size(", ")")] {
            let e = refused(&nested(100_000, open, close));
            assert!(
                e.contains("not supported by the sandbox's CEL subset: parentheses, lists, calls or '!' nested more than 50 levels deep"),
                "{open}: {e}"
            );
        }
        let chain = |n: usize, sep: &str| vec!["object.a == 1"; n].join(sep);
        let p = compile(&chain(240, " && ")).unwrap_or_else(|e| panic!("{e}"));
        let o = json!({"a": 1});
        let req = request("UPDATE");
        let vars = Activation {
            object: &o,
            old_object: &o,
            request: &req,
        };
        assert_eq!(p.evaluate(&vars), Ok(true));
        for src in [
            chain(100_000, " && "),
            chain(100_000, " || "),
            format!("{} == 1", vec!["object"; 100_000].join(".")),
        ] {
            let e = refused(&src);
            assert!(
                e.contains("not supported by the sandbox's CEL subset: expressions more than 250 operations deep"),
                "{e}"
            );
        }
    }

    #[test]
    fn static_types_accept_what_cel_accepts() {
        for src in [
            "object == null",
            "oldObject != null",
            "request.userInfo.groups == ['a']",
            "'k' in request.userInfo.extra",
            "request.userInfo.extra.k == ['v']",
            "[1, 'a'] == object.spec.tags",
            "size(request.userInfo.groups) > 0",
            "request.options == null || true",
        ] {
            assert!(compile(src).is_ok(), "{src}: {:?}", compile(src).err());
        }
        assert!(
            refused("request.name == null").contains("'_==_' applied to '(string, null_type)'")
        );
        assert!(refused("request.userInfo.groups == [1]").contains("'(list(string), list(int))'"));
    }
}
