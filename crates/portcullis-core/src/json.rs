//! JSON text written straight into an event's buffer: strings escaped byte-for-byte as
//! `serde_json` escapes them (so events are identical to serialising the same values), eight
//! bytes at a time where nothing needs escaping, and integers without `fmt`.
//!
//! Events are most of an integration call's CPU: their strings (headers, bodies) are long and
//! almost never need an escape, which is the case this is fast at.

/// `"s"`, escaped.
pub(crate) fn string(out: &mut Vec<u8>, s: &str) {
    out.reserve(s.len() + 2);
    out.push(b'"');
    contents(out, s);
    out.push(b'"');
}

/// `s` escaped, without quotes (to write one string from several parts).
pub(crate) fn contents(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    let mut start = 0;
    let mut i = 0;
    loop {
        // Whole words with nothing to escape.
        while let Some(chunk) = bytes.get(i..i + 8) {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            if needs_escape(u64::from_le_bytes(word)) {
                break;
            }
            i += 8;
        }
        // Byte by byte to the end of the word that has something (or of the text).
        let end = bytes.len().min(i + 8);
        if i >= end {
            break;
        }
        while i < end {
            let b = bytes.get(i).copied().unwrap_or(0);
            let escape = escape_of(b);
            if escape != 0 {
                out.extend_from_slice(bytes.get(start..i).unwrap_or_default());
                if escape == b'u' {
                    const HEX: &[u8; 16] = b"0123456789abcdef";
                    out.extend_from_slice(b"\\u00");
                    out.push(HEX[usize::from(b >> 4)]);
                    out.push(HEX[usize::from(b & 0xf)]);
                } else {
                    out.extend_from_slice(&[b'\\', escape]);
                }
                start = i + 1;
            }
            i += 1;
        }
    }
    out.extend_from_slice(bytes.get(start..).unwrap_or_default());
}

/// Whether any of the eight bytes is a control character, `"` or `\`.
fn needs_escape(x: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let has_zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGH != 0;
    // Bytes below 0x20 (exact for thresholds up to 0x80).
    let control = x.wrapping_sub(ONES * 0x20) & !x & HIGH != 0;
    control || has_zero(x ^ (ONES * u64::from(b'"'))) || has_zero(x ^ (ONES * u64::from(b'\\')))
}

/// The character after `\` for `b`, `u` for `\u00XX`, or 0 when `b` is written as is.
fn escape_of(b: u8) -> u8 {
    match b {
        b'"' => b'"',
        b'\\' => b'\\',
        0x08 => b'b',
        0x0c => b'f',
        b'\n' => b'n',
        b'\r' => b'r',
        b'\t' => b't',
        0x00..=0x1f => b'u',
        _ => 0,
    }
}

/// A key and its colon: `"key":` (keys are the gateway's own names: no escapes needed, but
/// escaped anyway).
pub(crate) fn key(out: &mut Vec<u8>, k: &str) {
    string(out, k);
    out.push(b':');
}

/// An integer in decimal.
pub(crate) fn int(out: &mut Vec<u8>, n: i64) {
    let mut buf = [0u8; 20];
    let mut at = buf.len();
    let mut v = n.unsigned_abs();
    loop {
        at -= 1;
        if let Some(slot) = buf.get_mut(at) {
            // `v % 10` is below 10.
            *slot = b'0' + (v % 10) as u8;
        }
        v /= 10;
        if v == 0 || at == 0 {
            break;
        }
    }
    if n < 0 {
        out.push(b'-');
    }
    out.extend_from_slice(buf.get(at..).unwrap_or_default());
}

/// `true` / `false`.
pub(crate) fn boolean(out: &mut Vec<u8>, b: bool) {
    out.extend_from_slice(if b { b"true" } else { b"false" });
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn via_serde(s: &str) -> String {
        serde_json::to_string(s).unwrap()
    }

    fn ours(s: &str) -> String {
        let mut out = Vec::new();
        string(&mut out, s);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn every_ascii_byte_is_escaped_as_serde_json_does() {
        for b in 0u8..=0x7f {
            let s = char::from(b).to_string();
            assert_eq!(ours(&s), via_serde(&s), "byte {b:#x}");
            // At every position of a longer string (the eight-byte path and the tail).
            for pos in 0..20 {
                let mut t = "abcdefghijklmnopqrs".to_owned();
                t.insert(pos, char::from(b));
                assert_eq!(ours(&t), via_serde(&t), "byte {b:#x} at {pos}");
            }
        }
    }

    #[test]
    fn text_is_escaped_as_serde_json_does() {
        let cases = [
            "",
            "plain",
            "exactly8",
            "sixteen bytes ok",
            "caf\u{e9} \u{1f600} \u{2028} \u{7f} </script>",
            "\"}\u{1}\0\\\n\r\t\u{8}\u{c}\u{1f}",
            "a long header value with a \"quote\" somewhere past the first word",
            "ÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿ\\",
        ];
        for s in cases {
            assert_eq!(ours(s), via_serde(s), "{s:?}");
        }
        // Every byte value in the high half, within multi-byte characters.
        let all: String = (0x80u32..0x800).filter_map(char::from_u32).collect();
        assert_eq!(ours(&all), via_serde(&all));
    }

    #[test]
    fn integers() {
        for n in [0, 7, 10, 99, 1_740_996_131_004, -1, -42, i64::MAX, i64::MIN] {
            let mut out = Vec::new();
            int(&mut out, n);
            assert_eq!(String::from_utf8(out).unwrap(), n.to_string());
        }
    }
}
