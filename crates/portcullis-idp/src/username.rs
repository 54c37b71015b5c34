//! What a username may be, and the one form it is stored and looked up in.
//!
//! Usernames are normalised to Unicode NFKC, so the compatibility forms of a name (full-width
//! `ｂｏｂ`, ligatures, superscripts) are the name itself, on creation and on every lookup.
//! A new username must then be 1–128 characters, each a letter, mark, number, symbol or
//! punctuation (Cognito's `[\p{L}\p{M}\p{S}\p{N}\p{P}]+`): whitespace, control, format
//! (zero-width, bidirectional controls), private-use, surrogate and unassigned code points
//! are refused, as are the invisible fillers and variation selectors that Unicode lists as
//! default-ignorable although they are letters or marks. Its letters must not mix the Latin,
//! Greek and Cyrillic scripts, whose look-alikes (`а` U+0430 for `a`, `ο` U+03BF for `o`)
//! would make a second account that reads as the first. Case is kept as given: usernames
//! are case-sensitive.

use serde_json::{Map, Value};
use unicode_normalization::UnicodeNormalization;
use unicode_properties::{GeneralCategoryGroup, UnicodeGeneralCategory};

/// Longest username, in characters after normalisation (Cognito: 128).
pub const MAX_USERNAME_CHARS: usize = 128;

/// Why a new username is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UsernameError {
    #[error("Username must be 1-{MAX_USERNAME_CHARS} characters long")]
    Length,
    #[error(
        "Username must not contain whitespace, control, invisible or bidirectional formatting characters (found U+{0:04X})"
    )]
    Character(u32),
    #[error("Username must not mix letters of the Latin, Greek and Cyrillic scripts")]
    MixedScripts,
}

/// The form a username is stored and looked up in (NFKC). Lookups use it as is: a name that
/// could not have been created simply matches no user.
pub fn lookup(raw: &str) -> String {
    raw.nfkc().collect()
}

/// The stored form of a new username, or why it is refused.
pub fn normalize(raw: &str) -> Result<String, UsernameError> {
    let name = lookup(raw);
    let count = name.chars().count();
    if count == 0 || count > MAX_USERNAME_CHARS {
        return Err(UsernameError::Length);
    }
    if let Some(c) = name.chars().find(|&c| !allowed(c)) {
        return Err(UsernameError::Character(u32::from(c)));
    }
    let mut seen: Option<Script> = None;
    for script in name.chars().filter_map(script) {
        match seen {
            Some(s) if s != script => return Err(UsernameError::MixedScripts),
            _ => seen = Some(script),
        }
    }
    Ok(name)
}

/// A letter, mark, number, symbol or punctuation that is not default-ignorable.
fn allowed(c: char) -> bool {
    let visible_class = matches!(
        c.general_category_group(),
        GeneralCategoryGroup::Letter
            | GeneralCategoryGroup::Mark
            | GeneralCategoryGroup::Number
            | GeneralCategoryGroup::Symbol
            | GeneralCategoryGroup::Punctuation
    );
    visible_class && !c.is_whitespace() && !default_ignorable_letter_or_mark(c)
}

/// Default-ignorable code points (rendered as nothing) that are nevertheless letters or
/// marks: combining grapheme joiner, Hangul and Khmer fillers, Mongolian free variation
/// selectors, variation selectors.
fn default_ignorable_letter_or_mark(c: char) -> bool {
    matches!(
        u32::from(c),
        0x034F
            | 0x115F..=0x1160
            | 0x17B4..=0x17B5
            | 0x180B..=0x180F
            | 0x3164
            | 0xFE00..=0xFE0F
            | 0xFFA0
            | 0xE0100..=0xE01EF
    )
}

/// The scripts whose letters look alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Script {
    Latin,
    Greek,
    Cyrillic,
}

/// The look-alike script of a letter, over the common blocks; `None` for everything else
/// (digits, punctuation, other scripts).
fn script(c: char) -> Option<Script> {
    if !c.is_alphabetic() {
        return None;
    }
    match u32::from(c) {
        0x0041..=0x005A
        | 0x0061..=0x007A
        | 0x00AA
        | 0x00BA
        | 0x00C0..=0x024F
        | 0x0250..=0x02AF
        | 0x1D00..=0x1D25
        | 0x1E00..=0x1EFF
        | 0x2C60..=0x2C7F
        | 0xA720..=0xA7FF
        | 0xAB30..=0xAB6F
        | 0xFF21..=0xFF3A
        | 0xFF41..=0xFF5A => Some(Script::Latin),
        0x0370..=0x03FF | 0x1D26..=0x1D2A | 0x1F00..=0x1FFF => Some(Script::Greek),
        0x0400..=0x052F | 0x1C80..=0x1C8F | 0x1D2B | 0x2DE0..=0x2DFF | 0xA640..=0xA69F => {
            Some(Script::Cyrillic)
        }
        _ => None,
    }
}

/// Replaces the username fields of a Cognito JSON API request (`Username`,
/// `AuthParameters.USERNAME`, `ChallengeResponses.USERNAME`) with their lookup form, so every
/// operation finds the user under the name it was created with.
pub fn normalize_request_fields(body: &mut Map<String, Value>) {
    fn fix(map: &mut Map<String, Value>, key: &str) {
        if let Some(Value::String(s)) = map.get_mut(key) {
            let normal = lookup(s);
            if normal != *s {
                *s = normal;
            }
        }
    }
    fix(body, "Username");
    for nested in ["AuthParameters", "ChallengeResponses"] {
        if let Some(Value::Object(m)) = body.get_mut(nested) {
            fix(m, "USERNAME");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn new_usernames() {
        let ok = [
            ("bob", "bob"),
            ("Bob", "Bob"),
            ("ｂｏｂ", "bob"),
            ("ﬁona", "fiona"),
            ("bob²", "bob2"),
            ("alice@example.com", "alice@example.com"),
            ("jean-luc_o'neil+1", "jean-luc_o'neil+1"),
            ("josé", "josé"),
            ("jose\u{301}", "josé"),
            ("иван", "иван"),
            ("σοφία", "σοφία"),
            ("ivan2000", "ivan2000"),
            ("иван2000", "иван2000"),
            ("山田", "山田"),
            ("山田taro", "山田taro"),
            ("😀", "😀"),
        ];
        for (raw, stored) in ok {
            assert_eq!(normalize(raw).as_deref(), Ok(stored), "{raw:?}");
        }
        let refused = [
            ("", UsernameError::Length),
            ("\u{200B}", UsernameError::Character(0x200B)),
            ("bo\u{200B}b", UsernameError::Character(0x200B)),
            ("bo\u{200C}b", UsernameError::Character(0x200C)),
            ("bo\u{200D}b", UsernameError::Character(0x200D)),
            ("b\u{202E}ob", UsernameError::Character(0x202E)),
            ("b\u{2066}ob", UsernameError::Character(0x2066)),
            ("bob\u{200F}", UsernameError::Character(0x200F)),
            ("\u{FEFF}bob", UsernameError::Character(0xFEFF)),
            ("bo\u{AD}b", UsernameError::Character(0xAD)),
            ("bo\u{2060}b", UsernameError::Character(0x2060)),
            ("bob\u{E0041}", UsernameError::Character(0xE0041)),
            ("bo b", UsernameError::Character(0x20)),
            ("bo\u{A0}b", UsernameError::Character(0x20)),
            ("bo\u{3000}b", UsernameError::Character(0x20)),
            ("bo\tb", UsernameError::Character(0x09)),
            ("bob\n", UsernameError::Character(0x0A)),
            ("bo\u{0}b", UsernameError::Character(0x00)),
            ("bo\u{85}b", UsernameError::Character(0x85)),
            ("bo\u{2028}b", UsernameError::Character(0x2028)),
            ("bo\u{2029}b", UsernameError::Character(0x2029)),
            ("bo\u{E000}b", UsernameError::Character(0xE000)),
            ("bo\u{34F}b", UsernameError::Character(0x34F)),
            // NFKC turns the Hangul filler U+3164 into U+1160, refused as well
            ("bo\u{3164}b", UsernameError::Character(0x1160)),
            ("bo\u{FE0F}b", UsernameError::Character(0xFE0F)),
            ("bo\u{115F}b", UsernameError::Character(0x115F)),
            ("p\u{0430}ypal", UsernameError::MixedScripts),
            ("b\u{03BF}b", UsernameError::MixedScripts),
            ("\u{0456}van", UsernameError::MixedScripts),
            ("σ\u{0441}", UsernameError::MixedScripts),
            ("ｂ\u{043E}ｂ", UsernameError::MixedScripts),
        ];
        for (raw, why) in refused {
            assert_eq!(normalize(raw), Err(why), "{raw:?}");
        }
        assert_eq!(normalize(&"a".repeat(128)).map(|s| s.len()), Ok(128));
        assert_eq!(normalize(&"a".repeat(129)), Err(UsernameError::Length));
        // counted after normalisation: 100 ligatures are 200 letters
        assert_eq!(normalize(&"ﬁ".repeat(100)), Err(UsernameError::Length));
    }

    #[test]
    fn lookups_use_the_stored_form_without_refusing() {
        assert_eq!(lookup("ｂｏｂ"), "bob");
        assert_eq!(lookup("bob"), "bob");
        assert_eq!(lookup("Bob"), "Bob");
        assert_eq!(lookup("bo\u{200B}b"), "bo\u{200B}b");
        let mut body = json!({
            "Username": "ｂｏｂ",
            "AuthParameters": {"USERNAME": "ａｌｉｃｅ", "PASSWORD": "ｐ"},
            "ChallengeResponses": {"USERNAME": "ｃａｒｏｌ", "NEW_PASSWORD": "ｐ"},
            "Password": "ｐ",
        });
        if let Value::Object(m) = &mut body {
            normalize_request_fields(m);
        }
        assert_eq!(
            body,
            json!({
                "Username": "bob",
                "AuthParameters": {"USERNAME": "alice", "PASSWORD": "ｐ"},
                "ChallengeResponses": {"USERNAME": "carol", "NEW_PASSWORD": "ｐ"},
                "Password": "ｐ",
            })
        );
    }
}
