//! The one-pass reading against the `serde_json::Value` tree it replaced: both result parsers
//! must answer every input exactly as the tree-based ones did (values and error messages),
//! on hand-written hostile inputs, the committed fuzz corpus and their mutations.

#![allow(clippy::unwrap_used)]

use std::borrow::Cow;

use base64::Engine as _;
use serde_json::Value;

use crate::event::{ProxyResult, ResultError, parse_proxy_result, parse_proxy_result_ref};
use crate::http_event::{
    BASE64, HttpResult, HttpResultError, is_header_value, is_token, parse_http_result,
};

/// The tree-based HTTP result, owned.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct OldHttp {
    status: u16,
    headers: Vec<(String, String)>,
    cookies: Vec<String>,
    body: Vec<u8>,
}

impl From<HttpResult<'_>> for OldHttp {
    fn from(r: HttpResult<'_>) -> Self {
        OldHttp {
            status: r.status,
            headers: r
                .headers
                .into_iter()
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
            cookies: r.cookies.into_iter().map(Cow::into_owned).collect(),
            body: r.body.into_owned(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The reference: the parsers as they were, over a `Value` tree.

fn old_header_value(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

fn old_push_header(
    out: &mut Vec<(String, String)>,
    name: &str,
    value: String,
) -> Result<(), HttpResultError> {
    if !is_token(name) || !is_header_value(&value) {
        return Err(HttpResultError::InvalidHeader);
    }
    out.push((name.to_owned(), value));
    Ok(())
}

fn old_decode_base64(text: &str) -> Result<Vec<u8>, HttpResultError> {
    let cleaned: Cow<'_, [u8]> = if text.bytes().any(|c| c.is_ascii_whitespace()) {
        Cow::Owned(
            text.bytes()
                .filter(|c| !c.is_ascii_whitespace())
                .collect::<Vec<u8>>(),
        )
    } else {
        Cow::Borrowed(text.as_bytes())
    };
    BASE64
        .decode(cleaned)
        .map_err(|_| HttpResultError::InvalidBase64)
}

fn old_http(bytes: &[u8]) -> Result<OldHttp, HttpResultError> {
    let value: Value = serde_json::from_slice(bytes)?;
    let map = match value {
        Value::Object(map) if map.contains_key("statusCode") => map,
        Value::String(s) => return Ok(old_json_result(s.into_bytes())),
        _ => return Ok(old_json_result(bytes.trim_ascii().to_vec())),
    };
    let status = match map.get("statusCode") {
        Some(Value::Number(n)) => n.as_u64().and_then(|c| u16::try_from(c).ok()),
        Some(Value::String(s)) => s.trim().parse::<u16>().ok(),
        _ => None,
    }
    .filter(|c| (100..=599).contains(c))
    .ok_or(HttpResultError::InvalidStatusCode)?;
    let mut out = OldHttp {
        status,
        ..OldHttp::default()
    };
    match map.get("headers") {
        None | Some(Value::Null) => {}
        Some(Value::Object(h)) => {
            for (k, v) in h {
                if let Some(v) = old_header_value(v) {
                    old_push_header(&mut out.headers, k, v)?;
                }
            }
        }
        Some(_) => return Err(HttpResultError::InvalidField("headers")),
    }
    let single = out.headers.len();
    match map.get("multiValueHeaders") {
        None | Some(Value::Null) => {}
        Some(Value::Object(h)) => {
            for (k, vs) in h {
                let values: Vec<String> = match vs {
                    Value::Array(items) => items.iter().filter_map(old_header_value).collect(),
                    other => old_header_value(other).into_iter().collect(),
                };
                for v in values {
                    let seen = out
                        .headers
                        .get(..single)
                        .unwrap_or_default()
                        .iter()
                        .any(|(hk, hv)| hk.eq_ignore_ascii_case(k) && *hv == v);
                    if !seen {
                        old_push_header(&mut out.headers, k, v)?;
                    }
                }
            }
        }
        Some(_) => return Err(HttpResultError::InvalidField("multiValueHeaders")),
    }
    match map.get("cookies") {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            for item in items {
                let Value::String(c) = item else {
                    return Err(HttpResultError::InvalidField("cookies"));
                };
                if !is_header_value(c) {
                    return Err(HttpResultError::InvalidHeader);
                }
                out.cookies.push(c.clone());
            }
        }
        Some(_) => return Err(HttpResultError::InvalidField("cookies")),
    }
    let is_base64 = match map.get("isBase64Encoded") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(HttpResultError::InvalidField("isBase64Encoded")),
    };
    out.body = match (map.get("body"), is_base64) {
        (None | Some(Value::Null), _) => Vec::new(),
        (Some(Value::String(s)), true) => old_decode_base64(s)?,
        (Some(Value::String(s)), false) => s.clone().into_bytes(),
        (Some(_), true) => return Err(HttpResultError::InvalidField("body")),
        (Some(other), false) => other.to_string().into_bytes(),
    };
    Ok(out)
}

fn old_json_result(body: Vec<u8>) -> OldHttp {
    OldHttp {
        status: 200,
        headers: vec![("content-type".to_owned(), "application/json".to_owned())],
        cookies: Vec::new(),
        body,
    }
}

fn old_proxy(bytes: &[u8]) -> Result<ProxyResult, ResultError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(ProxyResult::default());
    }
    let value: Value = serde_json::from_slice(bytes)?;
    let map = match value {
        Value::Null => return Ok(ProxyResult::default()),
        Value::Object(map) => map,
        Value::String(s) => {
            return Ok(ProxyResult {
                body: Some(s),
                ..ProxyResult::default()
            });
        }
        other => {
            let text = String::from_utf8_lossy(bytes).trim().to_owned();
            let body = if text.is_empty() {
                other.to_string()
            } else {
                text
            };
            return Ok(ProxyResult {
                body: Some(body),
                ..ProxyResult::default()
            });
        }
    };
    let mut out = ProxyResult::default();
    match map.get("statusCode") {
        None | Some(Value::Null) => {}
        Some(Value::Number(n)) => {
            out.status_code = Some(
                n.as_u64()
                    .and_then(|c| u16::try_from(c).ok())
                    .filter(|c| (100..=599).contains(c))
                    .ok_or(ResultError::InvalidStatusCode)?,
            );
        }
        Some(Value::String(s)) => {
            out.status_code = Some(
                s.trim()
                    .parse::<u16>()
                    .ok()
                    .filter(|c| (100..=599).contains(c))
                    .ok_or(ResultError::InvalidStatusCode)?,
            );
        }
        Some(_) => return Err(ResultError::InvalidStatusCode),
    }
    match map.get("headers") {
        None | Some(Value::Null) => {}
        Some(Value::Object(h)) => {
            for (k, v) in h {
                if let Some(v) = old_header_value(v) {
                    out.headers.push((k.clone(), v));
                }
            }
        }
        Some(_) => return Err(ResultError::InvalidField("headers")),
    }
    match map.get("multiValueHeaders") {
        None | Some(Value::Null) => {}
        Some(Value::Object(h)) => {
            for (k, vs) in h {
                let values: Vec<String> = match vs {
                    Value::Null => continue,
                    Value::Array(items) => items.iter().filter_map(old_header_value).collect(),
                    single => old_header_value(single).into_iter().collect(),
                };
                out.headers
                    .retain(|(hk, hv)| !(hk.eq_ignore_ascii_case(k) && values.contains(hv)));
                out.headers
                    .extend(values.into_iter().map(|v| (k.clone(), v)));
            }
        }
        Some(_) => return Err(ResultError::InvalidField("multiValueHeaders")),
    }
    out.body = match map.get("body") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => Some(other.to_string()),
    };
    out.is_base64_encoded = match map.get("isBase64Encoded") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(ResultError::InvalidField("isBase64Encoded")),
    };
    Ok(out)
}

// ---------------------------------------------------------------------------------------------

fn same(input: &[u8]) {
    let shown = String::from_utf8_lossy(input);
    let new = parse_http_result(input)
        .map(OldHttp::from)
        .map_err(|e| e.to_string());
    let old = old_http(input).map_err(|e| e.to_string());
    assert_eq!(new, old, "http result {shown:?}");
    let new = parse_proxy_result(input).map_err(|e| e.to_string());
    let old = old_proxy(input).map_err(|e| e.to_string());
    assert_eq!(new, old, "proxy result {shown:?}");
}

const HOSTILE: &[&str] = &[
    "",
    " ",
    "null",
    "{}",
    "[]",
    "0",
    "-0",
    "1e400",
    "-1e400",
    "[1e400]",
    "18446744073709551616",
    "123456789012345678901234567890",
    "1.7976931348623157e308",
    r#""\u0000\ud83d\ude00""#,
    r#""\ud800""#,
    r#"{"statusCode":200,"extra":1e400}"#,
    r#"{"statusCode":200,"extra":[1,{"a":[true,null,"x"]}],"body":"ok"}"#,
    r#"{"statusCode":200,"body":1e400}"#,
    r#"{"statusCode":200,"body":123456789012345678901234567890}"#,
    r#"{"statusCode":200,"body":-0.0}"#,
    r#"{"statusCode":200,"body":{"b":1,"a":2,"b":3}}"#,
    r#"{"statusCode":200,"body":[1,"two",null,{"x":1.50}]}"#,
    r#"{"statusCode":200,"body":" spaced ","isBase64Encoded":false}"#,
    r#"{"statusCode":1e2}"#,
    r#"{"statusCode":200.0}"#,
    r#"{"statusCode":"200.0"}"#,
    r#"{"statusCode":" 201 "}"#,
    r#"{"statusCode":"+201"}"#,
    r#"{"statusCode":18446744073709551616}"#,
    r#"{"statusCode":[200]}"#,
    r#"{"statusCode":{"code":200}}"#,
    r#"{"statusCode":200,"statusCode":"abc"}"#,
    r#"{"statusCode":"abc","statusCode":204}"#,
    r#"{"statusCode":null,"statusCode":204}"#,
    r#"{"status\u0043ode":202,"b\u006fdy":"esc\"aped\n"}"#,
    r#"{"statusCode":200,"headers":{"A":"1","B":"2","A":"3"}}"#,
    r#"{"statusCode":200,"headers":{"A":"1","a":"2"}}"#,
    r#"{"statusCode":200,"headers":{"X":"a"},"headers":{"Y":"b"}}"#,
    r#"{"statusCode":200,"headers":"x","headers":{"Y":"b"}}"#,
    r#"{"statusCode":200,"headers":{"Y":"b"},"headers":"x"}"#,
    r#"{"statusCode":200,"headers":{"N":1,"F":1.5,"B":false,"O":{"k":[1]},"L":[1,"a"],"E":"","Z":null}}"#,
    r#"{"statusCode":200,"headers":{"N":18446744073709551616,"M":-12,"G":1E3}}"#,
    r#"{"statusCode":200,"headers":{"X-\u0041":"v\u00e9"}}"#,
    r#"{"statusCode":200,"headers":{"X":"a\tb"}}"#,
    r#"{"statusCode":200,"headers":{"X":"a\u007fb"}}"#,
    r#"{"statusCode":200,"headers":{"X":"bad\n","X":"good"}}"#,
    r#"{"statusCode":200,"headers":{"Set-Cookie":"a=1","X":"y"},"multiValueHeaders":{"set-cookie":["a=1","b=2"],"Z":"single","W":null,"V":[],"U":[null,[1,2],{"a":null}]}}"#,
    r#"{"statusCode":200,"multiValueHeaders":{"A":["1"],"B":["2"],"A":["3","4"]}}"#,
    r#"{"statusCode":200,"multiValueHeaders":{"A":[["x"]]}}"#,
    r#"{"statusCode":200,"multiValueHeaders":[]}"#,
    r#"{"statusCode":200,"multiValueHeaders":{"A":"1"},"multiValueHeaders":null}"#,
    r#"{"statusCode":200,"cookies":["a=1",{"b":2}]}"#,
    r#"{"statusCode":200,"cookies":["a=1\n",2]}"#,
    r#"{"statusCode":200,"cookies":[2,"a=1\n"]}"#,
    r#"{"statusCode":200,"cookies":[null]}"#,
    r#"{"statusCode":200,"cookies":{}}"#,
    r#"{"statusCode":200,"cookies":["a"],"cookies":["b","c"]}"#,
    r#"{"statusCode":200,"isBase64Encoded":1}"#,
    r#"{"statusCode":200,"isBase64Encoded":true,"isBase64Encoded":false,"body":"%%"}"#,
    r#"{"statusCode":200,"isBase64Encoded":true,"body":"aGk="}"#,
    r#"{"statusCode":200,"isBase64Encoded":true,"body":"a\u0047k"}"#,
    r#"{"statusCode":200,"isBase64Encoded":true,"body":" aG\tk= "}"#,
    r#"{"statusCode":200,"isBase64Encoded":true,"body":null}"#,
    r#"{"statusCode":200,"isBase64Encoded":true,"body":[1]}"#,
    r#"{"statusCode":99,"headers":"x"}"#,
    r#"{"statusCode":200,"headers":"x","cookies":"y"}"#,
    r#"{"headers":{"A":"1"},"body":"no status"}"#,
    r#"{"headers":[],"body":"no status"}"#,
    r#"{"body":{"nested":true},"isBase64Encoded":true}"#,
    r#"{"statusCode":200} "#,
    r#"{"statusCode":200} x"#,
    r#"{"statusCode":200}{}"#,
    r#"{"statusCode":200,}"#,
    r#"{"statusCode":200,"body":"unterminated}"#,
];

#[test]
fn hostile_results_answer_as_a_value_tree_did() {
    for input in HOSTILE {
        same(input.as_bytes());
    }
    same(&[0xff, 0xfe]);
    // Invalid UTF-8 inside a string, a name, and outside any string.
    same(b"{\"statusCode\":200,\"body\":\"\xff\"}");
    same(b"{\"statusCode\":200,\"headers\":{\"\xc3\x28\":\"x\"}}");
    same(b"{\"statusCode\":200,\"x\":\"\xed\xa0\x80\"}");
    same(b"[1,\xff]");
}

#[test]
fn deep_nesting_is_refused_at_the_same_depth() {
    for depth in [1, 100, 126, 127, 128, 129, 200, 10_000] {
        for (open, close) in [("[", "]"), ("{\"k\":", "}")] {
            let nested = format!("{}1{}", open.repeat(depth), close.repeat(depth));
            same(nested.as_bytes());
            let inside = format!(r#"{{"statusCode":200,"x":{nested}}}"#);
            same(inside.as_bytes());
            let header = format!(r#"{{"statusCode":200,"headers":{{"X":{nested}}}}}"#);
            same(header.as_bytes());
            let multi = format!(r#"{{"statusCode":200,"multiValueHeaders":{{"X":[{nested}]}}}}"#);
            same(multi.as_bytes());
            let body = format!(r#"{{"statusCode":200,"body":{nested}}}"#);
            same(body.as_bytes());
        }
    }
}

#[test]
fn many_repeated_header_names_keep_first_position_and_last_value() {
    // Past the small-map shortcut: the map path.
    let mut json = String::from(r#"{"statusCode":200,"headers":{"#);
    for i in 0..200 {
        if i > 0 {
            json.push(',');
        }
        json.push_str(&format!(r#""H{}":"{i}""#, i % 7));
    }
    json.push_str("}}");
    same(json.as_bytes());
    let r = parse_http_result(json.as_bytes()).unwrap();
    assert_eq!(r.headers.len(), 7);
    assert_eq!(r.headers[0], (Cow::Borrowed("H0"), Cow::Borrowed("196")));
}

#[test]
fn unescaped_strings_are_borrowed_from_the_input() {
    let input = br#"{"statusCode":200,"headers":{"X":"y"},"cookies":["a=1"],"body":"hello"}"#;
    let r = parse_http_result(input).unwrap();
    assert!(matches!(r.body, Cow::Borrowed(_)));
    assert!(matches!(r.headers[0], (Cow::Borrowed(_), Cow::Borrowed(_))));
    assert!(matches!(r.cookies[0], Cow::Borrowed(_)));
    let r = parse_proxy_result_ref(br#"{"body":"hello"}"#).unwrap();
    assert!(matches!(r.body, Some(Cow::Borrowed("hello"))));
    // Escapes are unescaped into an owned copy.
    let r = parse_proxy_result_ref(br#"{"body":"a\nb"}"#).unwrap();
    assert_eq!(r.body.as_deref(), Some("a\nb"));
}

fn corpus() -> Vec<Vec<u8>> {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/proxy_result");
    let mut inputs: Vec<Vec<u8>> = HOSTILE.iter().map(|s| s.as_bytes().to_vec()).collect();
    if let Ok(entries) = std::fs::read_dir(dir) {
        let mut paths: Vec<_> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        paths.sort();
        inputs.extend(paths.iter().filter_map(|p| std::fs::read(p).ok()));
    }
    inputs
}

#[test]
fn every_truncation_and_small_mutation_answers_as_a_value_tree_did() {
    const SWAPS: &[u8] = b"\"{}[],:0-1en\\ tu";
    for input in corpus() {
        if input.len() > 2_000 {
            continue;
        }
        for end in 0..=input.len() {
            same(&input[..end]);
        }
        for at in 0..input.len() {
            for &b in SWAPS {
                let mut m = input.clone();
                m[at] = b;
                same(&m);
            }
        }
    }
}

#[test]
fn proxy_results_without_status_keep_their_text() {
    let r: ProxyResult = parse_proxy_result(b" [1, 2] ").unwrap();
    assert_eq!(r.body.as_deref(), Some("[1, 2]"));
    assert!(matches!(
        parse_proxy_result(br#"{"statusCode":true}"#),
        Err(ResultError::InvalidStatusCode)
    ));
    assert!(matches!(
        parse_http_result(br#"{"statusCode":200,"cookies":[1]}"#),
        Err(HttpResultError::InvalidField("cookies"))
    ));
    let _ = base64::engine::general_purpose::STANDARD.encode(b"x");
}
