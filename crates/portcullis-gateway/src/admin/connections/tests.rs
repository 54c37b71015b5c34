use super::*;

#[test]
fn paths() {
    assert_eq!(
        parse_path("/@connections/abc"),
        Some(Target::One("abc".into()))
    );
    assert_eq!(
        parse_path("/prod/@connections/abc%3D"),
        Some(Target::One("abc=".into()))
    );
    assert_eq!(
        parse_path("/prod/%40connections/abc"),
        Some(Target::One("abc".into()))
    );
    assert_eq!(
        parse_path("/%40connections/abc"),
        Some(Target::One("abc".into()))
    );
    assert_eq!(
        parse_path("/prod/@connections"),
        Some(Target::List {
            stage: Some("prod".into())
        })
    );
    assert_eq!(
        parse_path("/@connections"),
        Some(Target::List { stage: None })
    );
    assert_eq!(parse_path("/prod/other/abc"), None);
    assert_eq!(parse_path("/a/b/@connections/x"), None);
    assert_eq!(parse_path("/@connections/a/b"), None);
}
