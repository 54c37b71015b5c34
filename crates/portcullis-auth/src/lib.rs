//! Portcullis auth: identity and request authentication. Today that is AWS Signature V4
//! (verifying signed `@connections` calls and presigned `$connect` URLs, and signing for tests and
//! clients); JWT verification, identity sources and Lambda-style authorizers come later. Pure
//! functions over request parts and a caller-supplied secret lookup — no I/O, no clocks (the
//! caller passes `now`), no key storage; it does not decide what an authenticated caller may do
//! (that is `portcullis_core::policy`).
#![forbid(unsafe_code)]

pub mod sigv4;
