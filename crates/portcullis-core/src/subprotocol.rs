//! `Sec-WebSocket-Protocol` negotiation, including the browser idiom of smuggling a JWT as an
//! offered subprotocol (browsers cannot set an `Authorization` header on a WebSocket).

/// The outcome of negotiation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Negotiated {
    /// The first offered entry shaped like a JWT, if any. Never echoed back.
    pub token: Option<String>,
    /// The subprotocol to echo in the upgrade response, if any.
    pub echo: Option<String>,
}

/// Splits every header value on commas and trims the entries; the first JWT-shaped entry is the
/// token; `echo` is the first entry that is not JWT-shaped and is in `supported` (case-sensitive).
pub fn negotiate(header_values: &[&str], supported: &[String]) -> Negotiated {
    let mut out = Negotiated::default();
    let entries = header_values
        .iter()
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|e| !e.is_empty());
    for entry in entries {
        if looks_like_jwt(entry) {
            // Any JWT-shaped entry is a credential: never echo one, even a second one.
            if out.token.is_none() {
                out.token = Some(entry.to_owned());
            }
        } else if out.echo.is_none() && supported.iter().any(|s| s == entry) {
            out.echo = Some(entry.to_owned());
        }
        if out.token.is_some() && out.echo.is_some() {
            break;
        }
    }
    out
}

/// Three non-empty base64url segments (`A-Z a-z 0-9 - _`) separated by dots.
pub fn looks_like_jwt(s: &str) -> bool {
    let mut segments = 0;
    for seg in s.split('.') {
        segments += 1;
        if segments > 3
            || seg.is_empty()
            || !seg
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return false;
        }
    }
    segments == 3
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const JWT: &str = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1MSJ9.c2lnbmF0dXJl-_";

    #[test]
    fn jwt_shape() {
        let cases = [
            (JWT, true),
            ("a.b.c", true),
            ("a.b", false),
            ("a.b.c.d", false),
            ("a..c", false),
            (".b.c", false),
            ("a.b.", false),
            ("a.b.c=", false),
            ("a+b.c.d", false),
            ("chat", false),
            ("", false),
            ("v1.chat.example", true),
        ];
        for (s, want) in cases {
            assert_eq!(looks_like_jwt(s), want, "{s}");
        }
    }

    #[test]
    fn negotiation_table() {
        let supported = vec!["chat".to_owned(), "json.v2".to_owned()];
        let jwt = Some(JWT.to_owned());
        let jwt_chat = format!("{JWT}, chat");
        let jwt_many = format!("{JWT},x.y.z,chat");
        let cases: Vec<(Vec<&str>, Option<String>, Option<&str>)> = vec![
            (vec![], None, None),
            (vec![""], None, None),
            (vec!["chat"], None, Some("chat")),
            (vec!["Chat"], None, None),
            (vec!["other, chat"], None, Some("chat")),
            (vec!["json.v2 , chat"], None, Some("json.v2")),
            (vec![&jwt_chat], jwt.clone(), Some("chat")),
            (vec!["chat", JWT], jwt.clone(), Some("chat")),
            (vec![JWT], jwt.clone(), None),
            (vec![&jwt_many], jwt.clone(), Some("chat")),
            (vec![" , ,unknown"], None, None),
        ];
        for (values, token, echo) in cases {
            let n = negotiate(&values, &supported);
            assert_eq!(n.token, token, "{values:?}");
            assert_eq!(n.echo.as_deref(), echo, "{values:?}");
        }
    }

    #[test]
    fn never_echoes_a_token_even_if_listed() {
        let supported = vec![JWT.to_owned()];
        let n = negotiate(&[JWT], &supported);
        assert_eq!(n.echo, None);
        assert_eq!(n.token.as_deref(), Some(JWT));
    }
}
