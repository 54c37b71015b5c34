//! The admin listener's apps: `/healthz` ([`health`]), `/metrics` ([`scrape`]), the identity
//! admin API `/admin/...` ([`identity`]) and the `@connections` management API
//! ([`connections`]). The two signed APIs check callers with [`signature`].

pub mod connections;
pub mod health;
pub mod identity;
pub mod scrape;
mod signature;
