//! [`HttpUrl`]: a checked `http(s)://` URL that remembers how it was written.

use std::fmt;
use std::ops::Deref;

/// An absolute `http://` or `https://` URL with a host, checked once by the compiler.
///
/// Keeps the text as written (what `portcullis check` prints and what compares equal to a
/// string) next to the parsed [`url::Url`] a client sends requests to, so nothing downstream
/// parses it again. `Debug` hides a password in it.
#[derive(Clone, PartialEq, Eq)]
pub struct HttpUrl {
    text: String,
    parsed: url::Url,
}

impl HttpUrl {
    /// Checks `text`; the error is a message ready for a diagnostic (without any password).
    pub fn parse(text: &str) -> Result<HttpUrl, String> {
        let parsed = crate::syntax::http_url(text)?;
        Ok(HttpUrl {
            text: text.to_owned(),
            parsed,
        })
    }

    /// The URL as written in the configuration.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The parsed URL.
    pub fn url(&self) -> &url::Url {
        &self.parsed
    }
}

impl Deref for HttpUrl {
    type Target = str;
    fn deref(&self) -> &str {
        &self.text
    }
}

impl AsRef<str> for HttpUrl {
    fn as_ref(&self) -> &str {
        &self.text
    }
}

impl PartialEq<str> for HttpUrl {
    fn eq(&self, other: &str) -> bool {
        self.text == other
    }
}

impl PartialEq<&str> for HttpUrl {
    fn eq(&self, other: &&str) -> bool {
        self.text == *other
    }
}

impl fmt::Debug for HttpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("HttpUrl")
            .field(&crate::syntax::redact_url(&self.text))
            .finish()
    }
}

impl fmt::Display for HttpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl TryFrom<&str> for HttpUrl {
    type Error = String;
    fn try_from(text: &str) -> Result<Self, String> {
        HttpUrl::parse(text)
    }
}

#[cfg(test)]
mod tests {
    use super::HttpUrl;

    #[test]
    fn keeps_the_text_and_the_parsed_form() {
        let u = HttpUrl::parse("http://127.0.0.1:9000").unwrap();
        assert_eq!(u, "http://127.0.0.1:9000");
        assert_eq!(u.as_str(), "http://127.0.0.1:9000");
        // The parsed form is normalised; the text is not.
        assert_eq!(u.url().as_str(), "http://127.0.0.1:9000/");
        assert_eq!(u.url().port(), Some(9000));
    }

    #[test]
    fn rejects_what_is_not_an_http_url() {
        for bad in [
            "not a url",
            "file:///etc/jwks",
            "ftp://example.com/x",
            "http://",
            "",
        ] {
            assert!(HttpUrl::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn debug_hides_a_password() {
        let u = HttpUrl::parse("https://user:s3cret@example.com/hook").unwrap();
        let shown = format!("{u:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("example.com/hook"), "{shown}");
    }
}
