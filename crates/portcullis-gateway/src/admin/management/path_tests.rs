use super::*;

fn at(stage: Option<&str>, target: Target) -> Option<Path> {
    Some(Path {
        stage: stage.map(str::to_owned),
        target,
    })
}

#[test]
fn connection_paths() {
    let one = |id: &str| Target::Connection(id.into());
    assert_eq!(parse("/@connections/abc"), at(None, one("abc")));
    assert_eq!(
        parse("/prod/@connections/abc%3D"),
        at(Some("prod"), one("abc="))
    );
    assert_eq!(
        parse("/prod/%40connections/abc"),
        at(Some("prod"), one("abc"))
    );
    assert_eq!(parse("/%40connections/abc"), at(None, one("abc")));
    assert_eq!(
        parse("/prod/@connections"),
        at(Some("prod"), Target::Connections)
    );
    assert_eq!(parse("/@connections"), at(None, Target::Connections));
    assert_eq!(parse("/prod/other/abc"), None);
    assert_eq!(parse("/a/b/@connections/x"), None);
    assert_eq!(parse("/@connections/a/b"), None);
    assert_eq!(parse("/@connections/"), at(None, Target::Connections));
}

#[test]
fn subscription_user_and_topic_paths() {
    assert_eq!(
        parse("/prod/@connections/abc%3D/topics/room%3A17"),
        at(
            Some("prod"),
            Target::Subscription {
                id: "abc=".into(),
                topic: "room:17".into()
            }
        )
    );
    assert_eq!(
        parse("/prod/@users/auth0%7C42"),
        at(Some("prod"), Target::User("auth0|42".into()))
    );
    assert_eq!(
        parse("/prod/%40users/alice"),
        at(Some("prod"), Target::User("alice".into()))
    );
    assert_eq!(
        parse("/prod/@topics/news"),
        at(Some("prod"), Target::Topic("news".into()))
    );
    assert_eq!(
        parse("/@topics/news"),
        at(None, Target::Topic("news".into()))
    );
    // A topic name with `/` cannot be named: it is two segments.
    assert_eq!(parse("/prod/@topics/a/b"), None);
    assert_eq!(parse("/prod/@users"), None);
    assert_eq!(parse("/prod/@users/"), None);
    assert_eq!(parse("/prod/@topics"), None);
    // An empty topic name is named, and refused as a name (400), not as a path.
    assert_eq!(
        parse("/prod/@topics/"),
        at(Some("prod"), Target::Topic(String::new()))
    );
    let empty = Target::Subscription {
        id: "abc".into(),
        topic: String::new(),
    };
    assert_eq!(
        parse("/prod/@connections/abc/topics/"),
        at(Some("prod"), empty)
    );
    assert_eq!(parse("/prod/@connections/abc/topics"), None);
    assert_eq!(parse("/prod/@connections/abc/other/x"), None);
    assert_eq!(parse("/prod/@groups/x"), None);
    assert_eq!(parse("/\u{e9}\u{e9}/x"), None);
    assert_eq!(parse("/%4/x"), None);
    // Not UTF-8 once decoded, or longer than any id: names nothing.
    assert_eq!(parse("/prod/@users/%FF"), None);
    assert_eq!(parse(&format!("/prod/@users/{}", "a".repeat(1025))), None);
}
