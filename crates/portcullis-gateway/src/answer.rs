//! Parts of an integration's answer handed on without copying: the result parsers of
//! `portcullis-core` borrow strings from the answer's bytes wherever the JSON had no escapes,
//! and such a part becomes a `Bytes` slice sharing the answer's buffer.

use std::borrow::Cow;

use bytes::Bytes;
use tokio_tungstenite::tungstenite::Utf8Bytes;

/// `part` as `Bytes`: a slice of `answer` when it borrows from it, the owned bytes otherwise.
pub fn bytes(answer: &Bytes, part: Cow<'_, [u8]>) -> Bytes {
    match part {
        Cow::Owned(owned) => Bytes::from(owned),
        Cow::Borrowed(slice) => slice_of(answer, slice),
    }
}

/// `text` as a WebSocket text payload, sharing `answer`'s buffer when it borrows from it.
pub fn text(answer: &Bytes, text: Cow<'_, str>) -> Utf8Bytes {
    match text {
        Cow::Owned(owned) => Utf8Bytes::from(owned),
        Cow::Borrowed(slice) => Utf8Bytes::try_from(slice_of(answer, slice.as_bytes()))
            .unwrap_or_else(|_| Utf8Bytes::from(slice)),
    }
}

/// `slice` as a part of `answer` (no copy), or copied when it lies elsewhere.
fn slice_of(answer: &Bytes, slice: &[u8]) -> Bytes {
    let start = answer.as_ptr() as usize;
    let at = slice.as_ptr() as usize;
    if slice.is_empty() {
        Bytes::new()
    } else if at >= start && at + slice.len() <= start + answer.len() {
        answer.slice_ref(slice)
    } else {
        Bytes::copy_from_slice(slice)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_of_the_answer_share_it_and_others_are_copied() {
        let answer = Bytes::from_static(b"{\"body\":\"hello\"}");
        let part = answer.get(9..14).unwrap_or_default();
        let shared = bytes(&answer, Cow::Borrowed(part));
        assert_eq!(&shared[..], b"hello");
        assert_eq!(shared.as_ptr(), part.as_ptr());
        let elsewhere = b"hello".to_vec();
        let copied = bytes(&answer, Cow::Borrowed(&elsewhere));
        assert_eq!(&copied[..], b"hello");
        assert_ne!(copied.as_ptr(), elsewhere.as_ptr());
        assert_eq!(&bytes(&answer, Cow::Owned(b"x".to_vec()))[..], b"x");
        assert!(bytes(&answer, Cow::Borrowed(&[])).is_empty());
        let t = text(&answer, Cow::Borrowed("hello"));
        assert_eq!(t.as_str(), "hello");
        let inside = std::str::from_utf8(part).unwrap_or_default();
        assert_eq!(text(&answer, Cow::Borrowed(inside)).as_str(), "hello");
    }
}
