//! Topic names: what `@topics/{topic}` and `@connections/{id}/topics/{topic}` accept.

use std::sync::Arc;

/// Longest topic name, in bytes.
pub const MAX_TOPIC_BYTES: usize = 128;

/// A valid topic name: 1 to 128 bytes of `A-Z a-z 0-9 . _ : -` (no `/`, so a topic is one path
/// segment and never needs escaping). Cloning shares the name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Topic(Arc<str>);

/// Why a topic name was refused; the message is the one the API answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TopicError {
    #[error("Topic name is empty")]
    Empty,
    #[error("Topic name is longer than 128 bytes")]
    TooLong,
    #[error("Topic names may hold only letters, digits and . _ : -")]
    BadCharacter,
}

impl Topic {
    pub fn parse(name: &str) -> Result<Topic, TopicError> {
        if name.is_empty() {
            return Err(TopicError::Empty);
        }
        if name.len() > MAX_TOPIC_BYTES {
            return Err(TopicError::TooLong);
        }
        if !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
        {
            return Err(TopicError::BadCharacter);
        }
        Ok(Topic(Arc::from(name)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_contract() {
        for ok in ["news", "room:17", "a", "A.b_c:d-e", &"x".repeat(128)] {
            assert_eq!(
                Topic::parse(ok).map(|t| t.as_str().to_owned()),
                Ok(ok.to_owned())
            );
        }
        assert_eq!(Topic::parse(""), Err(TopicError::Empty));
        assert_eq!(Topic::parse(&"x".repeat(129)), Err(TopicError::TooLong));
        for bad in ["a/b", "a b", "caf\u{e9}", "a%2Fb", "a\0", "a+b", "*"] {
            assert_eq!(Topic::parse(bad), Err(TopicError::BadCharacter), "{bad:?}");
        }
    }
}
