use super::*;

#[test]
fn forms_keep_each_parameter_once_and_tell_empty_from_absent() {
    let form = parse_form(b"a=1&b=&c=x%20y", true).unwrap();
    assert_eq!(form.get("a"), Some("1"));
    assert_eq!(form.get("b"), None);
    assert_eq!(form.raw("b"), Some(""));
    assert!(form.has("b"));
    assert!(!form.has("d"));
    assert_eq!(form.get("c"), Some("x y"));
}

#[test]
fn forms_that_break_the_rules_are_refused() {
    let many: String = (0..=MAX_PARAMS)
        .map(|i| format!("p{i}=v"))
        .collect::<Vec<_>>()
        .join("&");
    let table: [(&[u8], bool, FormError); 3] = [
        (b"a=1&a=2", false, FormError::Repeated),
        (many.as_bytes(), false, FormError::TooManyParameters),
        (b"a=\xff", true, FormError::NotUtf8),
    ];
    for (body, utf8, expected) in table {
        assert_eq!(parse_form(body, utf8).unwrap_err(), expected);
    }
    // without the UTF-8 rule, such bytes are read lossily
    assert_eq!(
        parse_form(b"a=\xff", false).unwrap().get("a"),
        Some("\u{fffd}")
    );
}

#[tokio::test]
async fn the_reader_checks_the_content_type_and_the_size() {
    let rules = FormRules {
        max_bytes: 8,
        utf8: false,
    };
    let mut headers = HeaderMap::new();
    let got = read_form(&headers, Body::from("a=1"), rules).await;
    assert_eq!(got.unwrap_err(), FormError::NotAForm);
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-www-form-urlencoded; charset=utf-8"),
    );
    let got = read_form(&headers, Body::from("a=1"), rules).await;
    assert_eq!(got.unwrap().get("a"), Some("1"));
    let got = read_form(&headers, Body::from("a=123456789"), rules).await;
    assert_eq!(got.unwrap_err(), FormError::TooLarge);
}

#[test]
fn form_errors_answer_the_oauth_descriptions() {
    let table = [
        (
            FormError::NotAForm,
            "content type must be application/x-www-form-urlencoded",
        ),
        (FormError::TooLarge, "request body too large"),
        (FormError::TooManyParameters, "too many parameters"),
        (FormError::Repeated, "repeated parameter"),
    ];
    for (e, description) in table {
        match OAuthError::from(e) {
            OAuthError::InvalidRequest(why) => assert_eq!(why, description),
            other => panic!("{e:?} became {other:?}"),
        }
    }
}
