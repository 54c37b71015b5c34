//! The fuzz targets' bodies, one module per target: `fuzz_targets/NAME.rs` feeds libFuzzer's
//! inputs to `NAME::run`, and the workspace test `crates/portcullis/tests/fuzz_corpus.rs`
//! replays every committed input of `corpus/NAME/` through the same function.

pub mod config;
pub mod cookie;
pub mod handshake;
pub mod headers;
pub mod http_route;
pub mod jwt;
pub mod policy;
pub mod proxy_headers;
pub mod proxy_result;
pub mod query;
pub mod redact;
pub mod selection;
pub mod sigv4;

/// Every target, by the name of its corpus directory.
pub const TARGETS: &[(&str, fn(&[u8]))] = &[
    ("config", config::run),
    ("cookie", cookie::run),
    ("handshake", handshake::run),
    ("http_route", http_route::run),
    ("jwt", jwt::run),
    ("policy", policy::run),
    ("proxy_headers", proxy_headers::run),
    ("proxy_result", proxy_result::run),
    ("query", query::run),
    ("redact", redact::run),
    ("selection", selection::run),
    ("sigv4", sigv4::run),
];
