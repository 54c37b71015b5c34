//! The Portcullis load generator and the baselines it is compared with.
//!
//! Owns the client side of every benchmark in TARGETS.md that needs a WebSocket or HTTP client:
//! holding idle connections, WebSocket or SSE, while the server's RSS is read (P1, P10),
//! connection churn (P2), message round trips (P3), signed `@connections` POSTs (P4), topic
//! fan-out and pushes to a user (P5), the identity provider's token and sign-in rates (P6), and
//! the same pushes across the nodes of a cluster with what they cost its Redis (P8). It also
//! owns the baselines measured in the same run (`echo-baseline`, `backend-baseline`,
//! `bench-crypto`, `bench-verify`). It knows nothing of the gateway's internals: it speaks
//! WebSocket and HTTP (and one Redis `INFO`) over loopback only, and every loop it runs is
//! bounded in count and in time.

pub mod args;
pub mod connect;
pub mod connect_rate;
pub mod direct;
pub mod drain;
pub mod fanout;
pub mod histogram;
pub mod identity;
pub mod idle;
pub mod keepalive;
pub mod management;
pub mod post;
pub mod process;
pub mod push_user;
pub mod redis_stats;
pub mod report;
pub mod roundtrip;
pub mod source;
pub mod sse;
pub mod stamp;
