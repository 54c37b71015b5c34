//! Where each management call goes: a base URL (`http://127.0.0.1:9090/prod`, what boto3 gets
//! as `endpoint_url`; the stage path selects the API) and the raw, percent-encoded path of each
//! resource under it, encoded as botocore encodes path parameters.

use percent_encoding::{AsciiSet, utf8_percent_encode};

use crate::ClientError;

/// Characters of a connection id or principal left as they are in a path: RFC 3986 unreserved.
/// Everything else is percent-encoded (`=` becomes `%3D`, `/` becomes `%2F`), as botocore does.
const SEGMENT: &AsciiSet = portcullis_auth::sigv4::STRICT;

/// Topic names are `[A-Za-z0-9._:-]` and need no escaping; `:` is kept so that a valid name is
/// sent as written, anything else is encoded and left to the gateway to refuse.
const TOPIC: &AsciiSet = &SEGMENT.remove(b':');

/// A management endpoint: scheme, `host[:port]` (sent and signed as `host`) and the base path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    scheme: String,
    authority: String,
    base_path: String,
}

impl Endpoint {
    /// Parses `http[s]://host[:port][/stage]`; a trailing `/` is ignored, a query refused.
    pub fn parse(url: &str) -> Result<Endpoint, ClientError> {
        let bad = |reason: &'static str| ClientError::BadUrl {
            url: url.to_owned(),
            reason,
        };
        let uri: http::Uri = url.parse().map_err(|_| bad("not a URL"))?;
        let scheme = uri.scheme_str().ok_or_else(|| bad("no scheme"))?;
        if scheme != "http" && scheme != "https" {
            return Err(bad("the scheme must be http or https"));
        }
        let authority = uri.authority().ok_or_else(|| bad("no host"))?;
        if uri.query().is_some() {
            return Err(bad("a query string is not allowed"));
        }
        Ok(Endpoint {
            scheme: scheme.to_owned(),
            authority: authority.as_str().to_owned(),
            base_path: uri.path().trim_end_matches('/').to_owned(),
        })
    }

    /// `host[:port]` as sent in the `host` header (and signed).
    pub fn authority(&self) -> &str {
        &self.authority
    }

    /// The base path without trailing slash (`/prod`, or empty).
    pub fn base_path(&self) -> &str {
        &self.base_path
    }

    /// The full URL of a path returned by the methods below.
    pub fn url(&self, path: &str) -> String {
        format!("{}://{}{}", self.scheme, self.authority, path)
    }

    /// `<base>/@connections` (list; a Portcullis extension).
    pub fn connections(&self) -> String {
        format!("{}/@connections", self.base_path)
    }

    /// `<base>/@connections/<id>`.
    pub fn connection(&self, connection_id: &str) -> String {
        format!("{}/{}", self.connections(), segment(connection_id))
    }

    /// `<base>/@connections/<id>/topics/<topic>`: one subscription.
    pub fn subscription(&self, connection_id: &str, topic: &str) -> String {
        format!(
            "{}/topics/{}",
            self.connection(connection_id),
            topic_segment(topic)
        )
    }

    /// `<base>/@users/<principal>`.
    pub fn user(&self, principal: &str) -> String {
        format!("{}/@users/{}", self.base_path, segment(principal))
    }

    /// `<base>/@topics/<topic>`.
    pub fn topic(&self, topic: &str) -> String {
        format!("{}/@topics/{}", self.base_path, topic_segment(topic))
    }
}

/// One path segment (a connection id, a principal) encoded as botocore encodes a path
/// parameter, for callers that build paths on their own base.
pub fn segment(value: &str) -> String {
    utf8_percent_encode(value, SEGMENT).to_string()
}

fn topic_segment(topic: &str) -> String {
    utf8_percent_encode(topic, TOPIC).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prod() -> Endpoint {
        Endpoint::parse("http://127.0.0.1:9090/prod/").expect("valid")
    }

    #[test]
    fn paths_keep_the_stage_and_encode_ids_and_principals() {
        let e = prod();
        assert_eq!(e.authority(), "127.0.0.1:9090");
        assert_eq!(e.base_path(), "/prod");
        assert_eq!(e.connections(), "/prod/@connections");
        assert_eq!(
            e.connection("Yq3j/QfP+1oA=="),
            "/prod/@connections/Yq3j%2FQfP%2B1oA%3D%3D"
        );
        assert_eq!(e.connection("a-b_c.d~e"), "/prod/@connections/a-b_c.d~e");
        assert_eq!(e.user("alice"), "/prod/@users/alice");
        assert_eq!(e.user("user 42/ü@x"), "/prod/@users/user%2042%2F%C3%BC%40x");
        assert_eq!(
            e.url(&e.user("alice")),
            "http://127.0.0.1:9090/prod/@users/alice"
        );
        let bare = Endpoint::parse("https://gw.example").expect("valid");
        assert_eq!(bare.connection("x"), "/@connections/x");
        assert_eq!(bare.url("/@topics/t"), "https://gw.example/@topics/t");
    }

    #[test]
    fn valid_topics_are_sent_as_written_and_others_encoded() {
        let e = prod();
        assert_eq!(
            e.topic("room:lobby.1_a-b"),
            "/prod/@topics/room:lobby.1_a-b"
        );
        assert_eq!(
            e.subscription("abc=", "room:17"),
            "/prod/@connections/abc%3D/topics/room:17"
        );
        // a slash or a space cannot leave the segment: the gateway sees and refuses the name
        assert_eq!(e.topic("a/b c"), "/prod/@topics/a%2Fb%20c");
    }

    #[test]
    fn bad_urls_are_refused_with_the_reason() {
        for (url, reason) in [
            ("", "not a URL"),
            ("127.0.0.1:9090", "no scheme"),
            ("ftp://h/x", "the scheme must be http or https"),
            ("http://h/x?y=1", "a query string is not allowed"),
            ("/prod", "no scheme"),
        ] {
            match Endpoint::parse(url) {
                Err(ClientError::BadUrl { reason: r, .. }) => assert_eq!(r, reason, "{url}"),
                other => panic!("{url}: {other:?}"),
            }
        }
    }
}
