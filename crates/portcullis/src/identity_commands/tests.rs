//! Argument parsing and output escaping of the identity-store commands.

use super::args::parse_attribute;
use super::escape;

#[test]
fn attributes_and_escapes() {
    assert_eq!(
        parse_attribute("email=a=b@x").ok(),
        Some(("email".into(), "a=b@x".into()))
    );
    assert!(parse_attribute("=x").is_err());
    assert!(parse_attribute("x").is_err());
    assert_eq!(escape("a\nb"), "a\\nb");
    assert_eq!(escape("plain é"), "plain é");
}
