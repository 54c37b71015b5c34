//! `ListUsers`' `Filter`, without I/O: `attribute = "value"` (exact) or `attribute ^= "value"`
//! (prefix), over the attributes Cognito lets one search (`username`, `email`,
//! `phone_number`, `name`, `given_name`, `family_name`, `preferred_username`,
//! `cognito:user_status`, `status`, `sub`). Inside the quotes `\"` is a quote and `\\` a
//! backslash. `status` is `Enabled` or `Disabled`, `cognito:user_status` the user's status
//! (`CONFIRMED`, …). Matching is exact and case-sensitive.

use crate::store::UserRecord;

/// Longest filter (Cognito's bound).
pub const MAX_FILTER_CHARS: usize = 256;

/// The attributes a filter may name.
pub const SEARCHABLE: [&str; 10] = [
    "username",
    "email",
    "phone_number",
    "name",
    "given_name",
    "family_name",
    "preferred_username",
    "cognito:user_status",
    "status",
    "sub",
];

/// How a filter compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    /// `=`
    Equals,
    /// `^=`
    StartsWith,
}

/// A parsed filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    pub attribute: &'static str,
    pub comparison: Comparison,
    pub value: String,
}

/// Why a filter is refused (the message the caller reads).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterError(pub String);

fn invalid(why: &str) -> FilterError {
    FilterError(format!("Error while parsing filter: {why}"))
}

/// Parses a filter; `Ok(None)` for an empty one (every user).
pub fn parse(text: &str) -> Result<Option<Filter>, FilterError> {
    if text.chars().count() > MAX_FILTER_CHARS {
        return Err(FilterError(format!(
            "1 validation error detected: Value at 'filter' failed to satisfy constraint: \
             Member must have length less than or equal to {MAX_FILTER_CHARS}"
        )));
    }
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let name_end = text
        .find(|c: char| c.is_whitespace() || c == '=' || c == '^')
        .ok_or_else(|| invalid("expected an attribute name, a comparison and a quoted value"))?;
    let name = &text[..name_end];
    let attribute = SEARCHABLE
        .into_iter()
        .find(|a| *a == name)
        .ok_or_else(|| FilterError(format!("Invalid search attribute: {name}")))?;
    let rest = text[name_end..].trim_start();
    let (comparison, rest) = if let Some(r) = rest.strip_prefix("^=") {
        (Comparison::StartsWith, r)
    } else if let Some(r) = rest.strip_prefix('=') {
        (Comparison::Equals, r)
    } else {
        return Err(invalid("expected = or ^="));
    };
    let rest = rest.trim_start();
    let quoted = rest
        .strip_prefix('"')
        .ok_or_else(|| invalid("the value must be in double quotes"))?;
    let mut value = String::new();
    let mut chars = quoted.chars();
    loop {
        match chars.next() {
            None => return Err(invalid("unterminated quoted value")),
            Some('"') => break,
            Some('\\') => match chars.next() {
                Some(c @ ('"' | '\\')) => value.push(c),
                _ => return Err(invalid("only \\\" and \\\\ may be escaped")),
            },
            Some(c) => value.push(c),
        }
    }
    if !chars.as_str().trim().is_empty() {
        return Err(invalid("unexpected text after the value"));
    }
    Ok(Some(Filter {
        attribute,
        comparison,
        value,
    }))
}

impl Filter {
    /// Whether `user` matches.
    pub fn matches(&self, user: &UserRecord) -> bool {
        let actual: Option<&str> = match self.attribute {
            "username" => Some(&user.username),
            "sub" => Some(&user.sub),
            "cognito:user_status" => Some(user.status.as_str()),
            "status" => Some(if user.enabled { "Enabled" } else { "Disabled" }),
            other => user.attributes.get(other).map(String::as_str),
        };
        let Some(actual) = actual else {
            return false;
        };
        match self.comparison {
            Comparison::Equals => actual == self.value,
            Comparison::StartsWith => actual.starts_with(&self.value),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::UserStatus;

    fn user(username: &str, email: &str, enabled: bool) -> UserRecord {
        UserRecord {
            pool: "main".into(),
            username: username.into(),
            sub: format!("sub-{username}"),
            password_hash: None,
            status: UserStatus::Confirmed,
            enabled,
            attributes: [("email".to_owned(), email.to_owned())].into(),
            failed_attempts: 0,
            locked_until: None,
            tokens_valid_after: 0,
            created_at: 0,
            updated_at: 0,
            srp: None,
        }
    }

    #[test]
    fn parses_cognito_filters() {
        let table = [
            ("email = \"a@b.c\"", "email", Comparison::Equals, "a@b.c"),
            ("email=\"a@b.c\"", "email", Comparison::Equals, "a@b.c"),
            (
                "username ^= \"us\"",
                "username",
                Comparison::StartsWith,
                "us",
            ),
            (
                "  name^=\"A \\\"B\\\\\"  ",
                "name",
                Comparison::StartsWith,
                "A \"B\\",
            ),
            (
                "cognito:user_status = \"CONFIRMED\"",
                "cognito:user_status",
                Comparison::Equals,
                "CONFIRMED",
            ),
            (
                "status = \"Enabled\"",
                "status",
                Comparison::Equals,
                "Enabled",
            ),
            ("email = \"\"", "email", Comparison::Equals, ""),
        ];
        for (text, attribute, comparison, value) in table {
            let f = parse(text).expect(text).expect(text);
            assert_eq!(
                (f.attribute, f.comparison, f.value.as_str()),
                (attribute, comparison, value),
                "{text}"
            );
        }
        assert_eq!(parse("").expect("empty"), None);
        assert_eq!(parse("   ").expect("blank"), None);
    }

    #[test]
    fn refuses_what_cognito_refuses() {
        for bad in [
            "email",
            "email = a@b.c",
            "email == \"x\"",
            "email != \"x\"",
            "email = \"x",
            "email = \"x\" and",
            "custom:team = \"x\"",
            "address = \"x\"",
            "email = \"\\n\"",
            "= \"x\"",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        let long = format!("email = \"{}\"", "x".repeat(250));
        assert!(parse(&long).is_err());
    }

    /// Random text over the grammar's characters (and some others) never panics, and what
    /// parses names a searchable attribute.
    #[test]
    fn random_filters_parse_or_fail_cleanly() {
        use rand::Rng;
        let alphabet: Vec<char> = "email username sub =^\"\\ xé山\u{202e}\n:_"
            .chars()
            .collect();
        let mut rng = rand::rng();
        for _ in 0..20_000 {
            let len = rng.random_range(0..40);
            let text: String = (0..len)
                .map(|_| alphabet[rng.random_range(0..alphabet.len())])
                .collect();
            if let Ok(Some(f)) = parse(&text) {
                assert!(SEARCHABLE.contains(&f.attribute), "{text:?}");
            }
        }
    }

    #[test]
    fn matches_users() {
        let ann = user("ann", "ann@example.com", true);
        let bob = user("bob", "bob@example.org", false);
        let f = |t: &str| parse(t).expect(t).expect(t);
        assert!(f("email = \"ann@example.com\"").matches(&ann));
        assert!(!f("email = \"ann@example\"").matches(&ann));
        assert!(f("email ^= \"ann@\"").matches(&ann));
        assert!(!f("email ^= \"ann@\"").matches(&bob));
        assert!(f("username = \"bob\"").matches(&bob));
        assert!(!f("username = \"Bob\"").matches(&bob));
        assert!(f("status = \"Disabled\"").matches(&bob));
        assert!(f("status = \"Enabled\"").matches(&ann));
        assert!(f("sub = \"sub-ann\"").matches(&ann));
        assert!(f("cognito:user_status = \"CONFIRMED\"").matches(&ann));
        assert!(!f("phone_number ^= \"\"").matches(&ann));
    }
}
