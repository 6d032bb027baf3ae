//! The parser: tokens to a syntax tree, with the API server's depth and nesting limits.

use super::Issue;
use super::lexer::{Tok, Token, lex};
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CmpOp {
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
    pub(super) fn function(self) -> &'static str {
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
pub(super) struct Node {
    /// Byte offset where compile errors about this node point.
    pub(super) at: usize,
    /// Levels of nodes down to the deepest leaf (1 for a leaf).
    pub(super) depth: usize,
    pub(super) kind: Kind,
}

/// The deepest expression accepted, so that checking and evaluating (recursive) stay far from
/// the end of the stack.
const MAX_DEPTH: usize = 250;

/// The deepest nesting of parentheses, lists, calls and `!` the (recursive) parser accepts.
const MAX_NESTING: usize = 50;

#[derive(Debug, Clone)]
pub(super) enum Kind {
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

pub(super) fn parse(src: &str) -> Result<Node, Issue> {
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
