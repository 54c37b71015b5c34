use super::execute::{PasswordBody, no_body, page, parse_body};
use super::routes::{Operation, owns, resolve};
use crate::MAX_LIST_USERS;
use http::Method;

use super::*;

fn op(method: Method, path: &str) -> Result<Operation, ApiError> {
    resolve(&method, path)
}

#[test]
fn routes() {
    let user = |pool: &str, name: &str| (pool.to_owned(), name.to_owned());
    assert_eq!(op(Method::GET, "/admin/pools"), Ok(Operation::ListPools));
    assert_eq!(
        op(Method::GET, "/admin/clients"),
        Ok(Operation::ListClients { pool: None })
    );
    assert_eq!(
        op(Method::POST, "/admin/pools/main/users"),
        Ok(Operation::CreateUser {
            pool: "main".into()
        })
    );
    let (pool, username) = user("main", "alice@example.com");
    assert_eq!(
        op(Method::GET, "/admin/pools/main/users/alice%40example.com"),
        Ok(Operation::ShowUser {
            pool: pool.clone(),
            username: username.clone()
        })
    );
    assert_eq!(
        op(
            Method::POST,
            "/admin/pools/main/users/alice@example.com/sign-out"
        ),
        Ok(Operation::SignOut {
            pool: pool.clone(),
            username: username.clone()
        })
    );
    assert_eq!(
        op(
            Method::POST,
            "/admin/pools/main/users/alice@example.com/remove-mfa"
        ),
        Ok(Operation::RemoveMfa { pool, username })
    );
    assert_eq!(
        op(Method::PUT, "/admin/pools/main/users/bob/groups/admins"),
        Ok(Operation::AddToGroup {
            pool: "main".into(),
            username: "bob".into(),
            group: "admins".into()
        })
    );
    assert_eq!(
        op(Method::DELETE, "/admin/pools/main/users/bob/groups/admins"),
        Ok(Operation::RemoveFromGroup {
            pool: "main".into(),
            username: "bob".into(),
            group: "admins".into()
        })
    );
    assert_eq!(
        op(Method::POST, "/admin/pools/main/keys/rotate"),
        Ok(Operation::RotateKeys {
            pool: "main".into()
        })
    );
    assert_eq!(
        op(Method::GET, "/admin/pools/main/clients"),
        Ok(Operation::ListClients {
            pool: Some("main".into())
        })
    );
    assert_eq!(
        op(Method::DELETE, "/admin/pools"),
        Err(ApiError::MethodNotAllowed)
    );
    assert_eq!(
        op(Method::GET, "/admin/pools/main/users/bob/confirm"),
        Err(ApiError::MethodNotAllowed)
    );
    for path in [
        "/admin/",
        "/admin/pools/",
        "/admin/pools//users",
        "/admin/pools/main/users/bob/frobnicate",
        "/admin/pools/main/nothing",
        "/admin/pools/main/users/%ff",
        "/healthz",
    ] {
        assert!(
            matches!(op(Method::GET, path), Err(ApiError::NotFound(_))),
            "{path}"
        );
    }
}

#[test]
fn ownership() {
    assert!(owns("/admin"));
    assert!(owns("/admin/pools"));
    assert!(owns("/admin/pools/main/users"));
    assert!(!owns("/administrator"));
    assert!(!owns("/admin/@connections/abc"));
    assert!(!owns("/admin/%40connections"));
    assert!(!owns("/prod/@connections/abc"));
    assert!(!owns("/healthz"));
}

#[test]
fn paging() {
    assert_eq!(page(None), Ok((None, MAX_LIST_USERS)));
    assert_eq!(
        page(Some("after=al%20ice&limit=2")),
        Ok((Some("al ice".into()), 2))
    );
    assert!(page(Some("limit=0")).is_err());
    assert!(page(Some("limit=1001")).is_err());
    assert!(page(Some("cursor=x")).is_err());
}

#[test]
fn body_errors_do_not_quote_values() {
    let secret = "Sup3r-secret-pw";
    for body in [
        format!(r#"{{"password": 1, "temporary": "{secret}"}}"#),
        format!(r#"{{"password": "{secret}", "temporary": "{secret}"}}"#),
        format!(r#"{{"password": "{secret}""#),
        format!(r#"["{secret}"]"#),
    ] {
        let Err(ApiError::BadRequest(m)) = parse_body::<PasswordBody>(body.as_bytes()) else {
            panic!("{body} accepted");
        };
        assert!(!m.contains(secret), "{m}");
    }
    let Err(ApiError::BadRequest(m)) =
        parse_body::<PasswordBody>(br#"{"password": "x", "pasword": "y"}"#)
    else {
        panic!("unknown field accepted");
    };
    assert!(m.contains("unknown field `pasword`"), "{m}");
    assert_eq!(no_body(b""), Ok(()));
    assert_eq!(no_body(b" {} "), Ok(()));
    assert!(no_body(br#"{"password":"x"}"#).is_err());
}

#[test]
fn admin_errors_map_to_statuses() {
    let status = |e: AdminError| ApiError::from(e).status().as_u16();
    assert_eq!(status(AdminError::UnknownPool("x".into())), 404);
    assert_eq!(status(AdminError::NotFound("x".into())), 404);
    assert_eq!(status(AdminError::Conflict("x".into())), 409);
    assert_eq!(status(AdminError::Invalid("x".into())), 400);
    assert_eq!(status(AdminError::Store("x".into())), 503);
    assert_eq!(status(AdminError::Config("x".into())), 500);
    assert_eq!(status(AdminError::Internal("x".into())), 500);
}

#[test]
fn only_store_and_internal_failures_are_not_the_callers() {
    use portcullis_core::fault::{Fault, HasFault};
    let fault = |e: AdminError| ApiError::from(e).fault();
    assert_eq!(fault(AdminError::Store("x".into())), Fault::Operator);
    assert_eq!(fault(AdminError::Config("x".into())), Fault::Internal);
    assert_eq!(fault(AdminError::Internal("x".into())), Fault::Internal);
    for caller in [
        AdminError::UnknownPool("x".into()),
        AdminError::NotFound("x".into()),
        AdminError::Conflict("x".into()),
        AdminError::Invalid("x".into()),
    ] {
        assert_eq!(fault(caller), Fault::Client);
    }
    assert_eq!(ApiError::Forbidden.fault(), Fault::Client);
    assert_eq!(ApiError::PayloadTooLarge.fault(), Fault::Client);
}
