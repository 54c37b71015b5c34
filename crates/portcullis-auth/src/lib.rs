//! Portcullis auth: identity and request authentication. Today that is AWS Signature V4
//! (verifying signed `@connections` calls and presigned `$connect` URLs, and signing for tests
//! and clients), identity sources, cookies and the double-submit CSRF check, and Lambda-style
//! REQUEST authorizers (`request`: the webhook or function client, the only module doing I/O,
//! and `cache`: the bounded result cache). The rest are pure functions over request parts and
//! a caller-supplied secret lookup — no I/O, no clocks (the caller passes `now`), no key
//! storage. Policy evaluation itself lives in `portcullis_core::policy`.
#![forbid(unsafe_code)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod cache;
pub mod cookie;
pub mod csrf;
pub mod error;
pub mod identity;
pub mod jwt;
pub mod management;
pub mod outbound_tls;
pub mod request;
pub mod sigv4;
