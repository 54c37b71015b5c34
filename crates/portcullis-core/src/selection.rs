//! WebSocket route selection expressions (`$request.body.action`, `${request.body.a}/${request.body.b}`).
//!
//! # Grammar
//!
//! An expression is static text with variables in it:
//!
//! * `\$` is a literal `$` (so `\$default` evaluates to `$default`). A backslash before anything
//!   else is an ordinary character.
//! * `${request.body<path>}` is a braced variable: everything up to the matching `}` (a `}` inside
//!   a quoted bracket key does not count) is the variable, so text may follow directly.
//! * `$request.body<path>` is an unbraced variable. It extends over the characters
//!   `A-Z a-z 0-9 _ - .` and over whole `[...]` groups (quoted keys may contain anything), and ends
//!   at the first other character. Use braces when other text must follow (`${request.body.v}-x`;
//!   note `$request.body.v-x` selects the key `v-x`).
//! * Any other `$` (`$context.x`, `$request.header.x`, an unescaped `$default`, a lone `$`) is
//!   rejected at parse time: only the request body can be selected on for WebSocket APIs.
//!
//! `<path>` is a subset of Goessner JSONPath, applied to the parsed message:
//!
//! * empty — the whole body;
//! * `.key` — an object member (in the braced form a key may contain any character except `.`,
//!   `[` and `}`);
//! * `['key']` or `["key"]` — an object member with any characters; `\'`, `\"` and `\\` escape;
//! * `[n]` — an array element, `[-n]` counts from the end.
//!
//! Wildcards (`*`), deep scan (`..`), slices, unions and filters are rejected at parse time.
//!
//! # Evaluation
//!
//! [`SelectionExpression::evaluate`] returns `None` when the message is not JSON (the caller then
//! falls back to `$default`). A path that is not found, or that finds `null`, becomes the empty
//! string. Strings are inserted as-is; numbers and booleans as their JSON text; arrays in the
//! bracketed form `[a, b]` (elements rendered the same way, nested `null` as `null`); objects as
//! compact JSON.

use std::fmt::Write as _;

use serde_json::Value;

/// A parsed route selection expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelectionExpression {
    source: String,
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    Body(Vec<PathSeg>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum PathSeg {
    Key(String),
    Index(i64),
}

/// Why an expression was rejected. Offsets are byte offsets into the expression.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectionError {
    /// The expression is empty.
    #[error("selection expression is empty")]
    Empty,
    /// A `$` that does not start `$request.body` / `${request.body...}`.
    #[error(
        "unsupported variable `${found}` at offset {at}: only $request.body.<path> is supported (write \\$ for a literal dollar)"
    )]
    UnknownVariable {
        /// Byte offset of the `$`.
        at: usize,
        /// The variable text (truncated).
        found: String,
    },
    /// `${` without a closing `}`.
    #[error("unterminated `${{` at offset {at}")]
    Unterminated {
        /// Byte offset of the `$`.
        at: usize,
    },
    /// The JSONPath after `request.body` is malformed or uses an unsupported feature.
    #[error("invalid path at offset {at}: {reason}")]
    InvalidPath {
        /// Byte offset of the problem.
        at: usize,
        /// What is wrong.
        reason: &'static str,
    },
}

const BODY: &str = "request.body";

impl SelectionExpression {
    /// Parses an expression; see the module docs for the grammar.
    pub fn parse(expr: &str) -> Result<SelectionExpression, SelectionError> {
        if expr.is_empty() {
            return Err(SelectionError::Empty);
        }
        let bytes = expr.as_bytes();
        let mut parts = Vec::new();
        let mut lit = String::new();
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'\\' if bytes.get(i + 1) == Some(&b'$') => {
                    lit.push('$');
                    i += 2;
                }
                b'$' => {
                    if !lit.is_empty() {
                        parts.push(Part::Literal(std::mem::take(&mut lit)));
                    }
                    if bytes.get(i + 1) == Some(&b'{') {
                        let start = i + 2;
                        let close = find_close_brace(bytes, start)
                            .ok_or(SelectionError::Unterminated { at: i })?;
                        let inner = expr.get(start..close).unwrap_or_default();
                        parts.push(Part::Body(parse_var(inner, start, i)?));
                        i = close + 1;
                    } else {
                        let start = i + 1;
                        let end = unbraced_end(bytes, start);
                        let inner = expr.get(start..end).unwrap_or_default();
                        parts.push(Part::Body(parse_var(inner, start, i)?));
                        i = end;
                    }
                }
                _ => {
                    // Copy the run up to the next special byte (both are ASCII, so this
                    // always splits on a char boundary).
                    let next = bytes[i + 1..]
                        .iter()
                        .position(|&b| b == b'$' || b == b'\\')
                        .map_or(bytes.len(), |p| i + 1 + p);
                    lit.push_str(expr.get(i..next).unwrap_or_default());
                    i = next;
                }
            }
        }
        if !lit.is_empty() {
            parts.push(Part::Literal(lit));
        }
        Ok(SelectionExpression {
            source: expr.to_owned(),
            parts,
        })
    }

    /// The expression as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Whether the expression contains no variable (it evaluates to the same text for any JSON
    /// message).
    pub fn is_static(&self) -> bool {
        self.parts.iter().all(|p| matches!(p, Part::Literal(_)))
    }

    /// Evaluates against a raw message. `None` when the message is not JSON.
    pub fn evaluate(&self, body: &str) -> Option<String> {
        if self.is_static() {
            // Still only a selection result when the body is JSON; validate without building a tree.
            serde_json::from_str::<serde::de::IgnoredAny>(body).ok()?;
            return Some(self.evaluate_json(&Value::Null));
        }
        let value: Value = serde_json::from_str(body).ok()?;
        Some(self.evaluate_json(&value))
    }

    /// Evaluates against an already parsed message.
    pub fn evaluate_json(&self, value: &Value) -> String {
        if let [Part::Body(path)] = self.parts.as_slice() {
            // Fast path for the common `$request.body.action` when it selects a string.
            if let Some(Value::String(s)) = resolve(value, path) {
                return s.clone();
            }
        }
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Literal(s) => out.push_str(s),
                Part::Body(path) => {
                    if let Some(v) = resolve(value, path) {
                        push_value(&mut out, v, true);
                    }
                }
            }
        }
        out
    }
}

/// `$request.body.action`, the expression API Gateway's console proposes and the gateway uses
/// when an API sets none.
impl Default for SelectionExpression {
    fn default() -> Self {
        SelectionExpression {
            source: "$request.body.action".to_owned(),
            parts: vec![Part::Body(vec![PathSeg::Key("action".to_owned())])],
        }
    }
}

/// Compares the expression as written.
impl PartialEq<str> for SelectionExpression {
    fn eq(&self, other: &str) -> bool {
        self.source == other
    }
}

impl PartialEq<&str> for SelectionExpression {
    fn eq(&self, other: &&str) -> bool {
        self.source == *other
    }
}

impl std::str::FromStr for SelectionExpression {
    type Err = SelectionError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SelectionExpression::parse(s)
    }
}

impl std::fmt::Display for SelectionExpression {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.source)
    }
}

/// Index of the `}` closing a `${` whose contents start at `start`; a `}` inside a quoted bracket
/// key does not count.
fn find_close_brace(bytes: &[u8], start: usize) -> Option<usize> {
    let mut i = start;
    while i < bytes.len() {
        match bytes[i] {
            b'}' => return Some(i),
            b'[' => i = bracket_end(bytes, i)?,
            _ => i += 1,
        }
    }
    None
}

/// Given `bytes[open] == b'['`, the index just past the matching `]` (quotes respected).
fn bracket_end(bytes: &[u8], open: usize) -> Option<usize> {
    let mut i = open + 1;
    let mut quote: Option<u8> = None;
    while i < bytes.len() {
        let b = bytes[i];
        match quote {
            Some(q) => {
                if b == b'\\' {
                    i += 1;
                } else if b == q {
                    quote = None;
                }
            }
            None => match b {
                b'\'' | b'"' => quote = Some(b),
                b']' => return Some(i + 1),
                _ => {}
            },
        }
        i += 1;
    }
    None
}

/// End of an unbraced variable starting at `start` (just after the `$`).
fn unbraced_end(bytes: &[u8], start: usize) -> usize {
    let mut i = start;
    while i < bytes.len() {
        match bytes[i] {
            b if b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.') => i += 1,
            b'[' => match bracket_end(bytes, i) {
                Some(end) => i = end,
                // Unbalanced: take the rest so the path parser reports it.
                None => return bytes.len(),
            },
            _ => break,
        }
    }
    i
}

/// Parses `request.body<path>`; `offset` is where `var` starts in the expression, `dollar` where
/// its `$` is.
fn parse_var(var: &str, offset: usize, dollar: usize) -> Result<Vec<PathSeg>, SelectionError> {
    let unknown = || SelectionError::UnknownVariable {
        at: dollar,
        found: var.chars().take(40).collect(),
    };
    let rest = var.strip_prefix(BODY).ok_or_else(unknown)?;
    if !(rest.is_empty() || rest.starts_with('.') || rest.starts_with('[')) {
        return Err(unknown());
    }
    parse_path(rest, offset + BODY.len())
}

fn parse_path(path: &str, offset: usize) -> Result<Vec<PathSeg>, SelectionError> {
    let bytes = path.as_bytes();
    let mut segs = Vec::new();
    let mut i = 0;
    let err = |at: usize, reason| SelectionError::InvalidPath {
        at: offset + at,
        reason,
    };
    while i < bytes.len() {
        match bytes[i] {
            b'.' => {
                let start = i + 1;
                let end = bytes[start..]
                    .iter()
                    .position(|&b| b == b'.' || b == b'[')
                    .map_or(bytes.len(), |p| start + p);
                let key = path.get(start..end).unwrap_or_default();
                if key.is_empty() {
                    return Err(err(i, "empty key (deep scan `..` is not supported)"));
                }
                if key == "*" {
                    return Err(err(start, "wildcards are not supported"));
                }
                segs.push(PathSeg::Key(key.to_owned()));
                i = end;
            }
            b'[' => {
                let end = bracket_end(bytes, i).ok_or_else(|| err(i, "unterminated `[`"))?;
                let inner = path.get(i + 1..end - 1).unwrap_or_default();
                segs.push(parse_bracket(inner).ok_or_else(|| {
                    err(
                        i,
                        "expected ['key'], [\"key\"] or an integer index in [...]",
                    )
                })?);
                i = end;
            }
            _ => return Err(err(i, "expected `.` or `[`")),
        }
    }
    Ok(segs)
}

fn parse_bracket(inner: &str) -> Option<PathSeg> {
    let inner = inner.trim();
    let first = inner.chars().next()?;
    if first == '\'' || first == '"' {
        let body = inner.strip_prefix(first)?.strip_suffix(first)?;
        let mut key = String::with_capacity(body.len());
        let mut chars = body.chars();
        while let Some(c) = chars.next() {
            if c == '\\' {
                key.push(chars.next()?);
            } else if c == first {
                // An unescaped quote in the middle: `['a','b']` unions are not supported.
                return None;
            } else {
                key.push(c);
            }
        }
        Some(PathSeg::Key(key))
    } else {
        let digits = inner.strip_prefix('-').unwrap_or(inner);
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        inner.parse::<i64>().ok().map(PathSeg::Index)
    }
}

fn resolve<'v>(mut value: &'v Value, path: &[PathSeg]) -> Option<&'v Value> {
    for seg in path {
        value = match (seg, value) {
            (PathSeg::Key(k), Value::Object(map)) => map.get(k)?,
            (PathSeg::Index(n), Value::Array(items)) => {
                let idx = if *n < 0 {
                    items
                        .len()
                        .checked_sub(usize::try_from(n.unsigned_abs()).ok()?)?
                } else {
                    usize::try_from(*n).ok()?
                };
                items.get(idx)?
            }
            _ => return None,
        };
    }
    Some(value)
}

fn push_value(out: &mut String, v: &Value, top: bool) {
    match v {
        Value::Null if top => {}
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => {
            let _ = write!(out, "{n}");
        }
        Value::String(s) => out.push_str(s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                push_value(out, item, false);
            }
            out.push(']');
        }
        Value::Object(_) => {
            let _ = write!(out, "{v}");
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const AWS_BODY: &str = r#"{"service":"chat","action":"join","data":{"room":"room1234"}}"#;

    #[test]
    fn aws_documented_examples() {
        let cases = [
            ("$request.body.action", "join"),
            ("${request.body.action}", "join"),
            (
                "${request.body.service}/${request.body.action}",
                "chat/join",
            ),
            (
                "${request.body.action}-${request.body.invalidPath}",
                "join-",
            ),
            ("action", "action"),
            ("\\$default", "$default"),
        ];
        for (expr, want) in cases {
            let e = SelectionExpression::parse(expr).unwrap();
            assert_eq!(e.evaluate(AWS_BODY).as_deref(), Some(want), "{expr}");
        }
    }

    #[test]
    fn paths_and_stringification() {
        let body = r#"{
            "action": "a", "n": 42, "f": 1.5, "t": true, "nul": null,
            "arr": ["x", 2, {"k": "v"}, null, [1, "y"]],
            "obj": {"b": 1, "a": [true]},
            "data": {"room": "r1", "list": [{"id": "first"}, {"id": "last"}]},
            "we.ird": "dotted", "sp ace": "spaced", "q'uote": "quoted", "br}ace": "braced",
            "dash-key": "dashed", "": "emptykey"
        }"#;
        let cases = [
            ("$request.body.n", "42"),
            ("$request.body.f", "1.5"),
            ("$request.body.t", "true"),
            ("$request.body.nul", ""),
            ("$request.body.missing", ""),
            ("$request.body.missing.deeper", ""),
            ("$request.body.action.deeper", ""),
            ("$request.body.arr", "[x, 2, {\"k\":\"v\"}, null, [1, y]]"),
            ("$request.body.obj", "{\"b\":1,\"a\":[true]}"),
            ("$request.body.data.room", "r1"),
            ("$request.body.data.list[0].id", "first"),
            ("$request.body.data.list[1].id", "last"),
            ("$request.body.data.list[-1].id", "last"),
            ("$request.body.data.list[-2].id", "first"),
            ("$request.body.data.list[-3].id", ""),
            ("$request.body.data.list[2].id", ""),
            ("$request.body.data[0]", ""),
            ("$request.body.arr.0", ""),
            ("$request.body['we.ird']", "dotted"),
            ("$request.body[\"sp ace\"]", "spaced"),
            ("$request.body['q\\'uote']", "quoted"),
            ("${request.body['br}ace']}!", "braced!"),
            ("$request.body.data['room']", "r1"),
            ("$request.body.dash-key", "dashed"),
            ("$request.body['']", "emptykey"),
            ("${request.body.sp ace}", "spaced"),
            ("$request.body.action/x", "a/x"),
            ("$request.body.action $request.body.n", "a 42"),
            ("pre-$request.body.action", "pre-a"),
            ("${request.body.action}${request.body.n}", "a42"),
            ("a\\b", "a\\b"),
            ("\\$request.body.action", "$request.body.action"),
            ("é$request.body.actionü", "éaü"),
            ("é${request.body.action}ü", "éaü"),
        ];
        for (expr, want) in cases {
            let e = SelectionExpression::parse(expr).unwrap_or_else(|err| panic!("{expr}: {err}"));
            assert_eq!(e.evaluate(body).as_deref(), Some(want), "{expr}");
        }
    }

    #[test]
    fn whole_body() {
        let e = SelectionExpression::parse("$request.body").unwrap();
        assert_eq!(e.evaluate(r#"{"a": 1}"#).as_deref(), Some("{\"a\":1}"));
        assert_eq!(e.evaluate(r#""text""#).as_deref(), Some("text"));
        assert_eq!(e.evaluate("[1,2]").as_deref(), Some("[1, 2]"));
        assert_eq!(e.evaluate("7").as_deref(), Some("7"));
        let e = SelectionExpression::parse("${request.body}").unwrap();
        assert_eq!(e.evaluate("null").as_deref(), Some(""));
    }

    #[test]
    fn not_json_gives_none() {
        for expr in ["$request.body.action", "static", "\\$default"] {
            let e = SelectionExpression::parse(expr).unwrap();
            for body in ["", "hello", "{\"action\":", "{} x", "{'a':1}"] {
                assert_eq!(e.evaluate(body), None, "{expr} / {body}");
            }
            assert!(e.evaluate(" {} ").is_some());
        }
    }

    #[test]
    fn non_object_json_bodies() {
        let e = SelectionExpression::parse("$request.body.action").unwrap();
        for body in ["1", "\"s\"", "[]", "true", "null"] {
            assert_eq!(e.evaluate(body).as_deref(), Some(""), "{body}");
        }
    }

    #[test]
    fn parse_errors() {
        let cases = [
            "",
            "$",
            "$default",
            "${default}",
            "$context.routeKey",
            "$request.header.x",
            "$request.querystring.x",
            "${request.header.x}",
            "$request.bodyx",
            "${request.bodyx}",
            "$request.body.",
            "$request.body..a",
            "$request.body.*",
            "$request.body[*]",
            "$request.body[1:2]",
            "$request.body['a','b']",
            "$request.body['a",
            "$request.body[",
            "${request.body.a",
            "${request.body.a}x${",
            "${request.body.a b[}",
            "x $ y",
        ];
        for expr in cases {
            assert!(
                SelectionExpression::parse(expr).is_err(),
                "{expr:?} should be rejected"
            );
        }
        assert!(matches!(
            SelectionExpression::parse("ab$context.x"),
            Err(SelectionError::UnknownVariable { at: 2, .. })
        ));
        assert!(matches!(
            SelectionExpression::parse("${request.body.a"),
            Err(SelectionError::Unterminated { at: 0 })
        ));
    }

    #[test]
    fn static_detection() {
        assert!(
            SelectionExpression::parse("\\$default")
                .unwrap()
                .is_static()
        );
        assert!(
            !SelectionExpression::parse("$request.body")
                .unwrap()
                .is_static()
        );
        assert_eq!(
            SelectionExpression::parse("x$request.body.y")
                .unwrap()
                .as_str(),
            "x$request.body.y"
        );
    }

    #[test]
    fn default_is_the_parsed_action_expression() {
        let parsed = SelectionExpression::parse("$request.body.action").unwrap();
        assert_eq!(SelectionExpression::default(), parsed);
        assert_eq!(
            SelectionExpression::default().evaluate(r#"{"action":"join"}"#),
            Some("join".to_owned())
        );
        assert_eq!(parsed, "$request.body.action");
        assert!(parsed != "$request.body.other");
    }
}
