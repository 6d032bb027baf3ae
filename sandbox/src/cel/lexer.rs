//! The lexer: CEL source to tokens.

use super::Issue;

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Tok {
    Ident(String),
    /// The digits of an integer literal (a leading `-` is applied by the parser).
    Int(String),
    Str(String),
    Op(&'static str),
    Eof,
}

#[derive(Debug, Clone)]
pub(super) struct Token {
    pub(super) tok: Tok,
    pub(super) at: usize,
}

const OPS: [&str; 25] = [
    "&&", "||", "==", "!=", "<=", ">=", "<", ">", "!", ".", ",", "(", ")", "[", "]", "{", "}", "?",
    ":", "+", "-", "*", "/", "%", "=",
];

pub(super) fn lex(src: &str) -> Result<Vec<Token>, Issue> {
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
