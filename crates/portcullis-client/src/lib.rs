//! A client of the gateway's management API on the admin listener: `@connections`, `@users` and
//! `@topics` calls signed with SigV4 (service `execute-api`) exactly as botocore signs them, so
//! a backend written in Rust pushes with the same few lines a Python one writes with boto3.
//!
//! [`endpoint`] turns a management URL (`http://127.0.0.1:9090/prod`, what boto3 gets as
//! `endpoint_url`) into the paths of each call, [`signing`] computes the signature headers and
//! [`answer`] reads the gateway's answers; all three are pure. [`Management`] does the HTTP.
//!
//! This crate serves nothing and knows nothing of the gateway's internals: it speaks the wire
//! contract of the management API (CONTRACT.md §1 and the `@connections` API of AWS), and is
//! used by the demo backend, the load generator and `portcullis push`.
//!
//! ```no_run
//! # async fn example(secret: String, connection_id: String) -> Result<(), portcullis_client::ClientError> {
//! use portcullis_client::{Credentials, Management};
//!
//! let management = Management::new("http://127.0.0.1:9090/prod", Credentials {
//!     access_key_id: "AKIDLOCAL".into(),
//!     secret_access_key: secret,
//!     region: "us-east-1".into(),
//! })?;
//! let reached = management.push_to_user("bob", "psst".into()).await?;
//! management.subscribe(&connection_id, "room:lobby").await?;
//! let members = management.publish("room:lobby", "hi all".into()).await?;
//! # let _ = (reached, members);
//! # Ok(()) }
//! ```

#![forbid(unsafe_code)]

pub mod answer;
mod client;
pub mod endpoint;
mod error;
pub mod signing;

pub use answer::ConnectionSummary;
pub use client::Management;
pub use endpoint::Endpoint;
pub use error::{ApiError, ClientError};
/// A trusted root certificate for [`Management::with_roots`].
pub use reqwest::Certificate;

/// Largest payload the management API accepts (`PostToConnection`'s `Data`, and every push).
pub const MAX_DATA_BYTES: usize = 131_072;

/// SigV4 credentials and the region the gateway expects signatures for (`[management]` of its
/// configuration). `Debug` never shows the secret.
#[derive(Clone)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub region: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field("region", &self.region)
            .finish()
    }
}
