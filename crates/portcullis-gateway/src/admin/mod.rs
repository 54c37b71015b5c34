//! The admin listener's apps: `/healthz` ([`health`]), `/readyz` ([`readiness`]), `/metrics` ([`scrape`]), the identity
//! admin API `/admin/...` ([`identity`]) and the management API ([`management`]:
//! `@connections`, `@users`, `@topics`). The two signed APIs check callers with [`signature`].

pub mod health;
pub mod identity;
pub mod management;
pub mod readiness;
pub mod scrape;
mod signature;
