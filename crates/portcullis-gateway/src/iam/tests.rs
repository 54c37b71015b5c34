use super::*;

fn req<'a>(query: &'a str, headers: &'a [(&'a str, &'a str)]) -> SignableRequest<'a> {
    SignableRequest {
        method: "GET",
        path: "/chat",
        query,
        headers,
        body: &[],
    }
}

#[test]
fn security_token_from_header_or_query() {
    let headers = [("X-Amz-Security-Token", " tok.en ")];
    assert_eq!(
        security_token(&req("", &headers)).as_deref(),
        Some("tok.en")
    );
    assert_eq!(
        security_token(&req("a=1&X-Amz-Security-Token=ab%2Bc%3D&b=2", &[])).as_deref(),
        Some("ab+c=")
    );
    // The header form wins; empty counts as missing; the name is case-sensitive in a query.
    assert_eq!(
        security_token(&req("X-Amz-Security-Token=q", &headers)).as_deref(),
        Some("tok.en")
    );
    assert_eq!(security_token(&req("X-Amz-Security-Token=", &[])), None);
    assert_eq!(security_token(&req("x-amz-security-token=q", &[])), None);
    assert_eq!(security_token(&req("", &[])), None);
}
