//! What changed between two configurations: counts per section for the reload's log line, the
//! WebSocket APIs whose connections must close, whether the identity provider must be rebuilt,
//! and the keys that only a restart applies. Pure: two `Config`s in, a [`Changes`] out.
//!
//! Entries are compared by their `Debug` text, in which secrets are redacted: a change of a
//! secret alone is applied (every app is rebuilt on a reload) but not counted as a change.

use std::fmt;

use indexmap::IndexMap;
use portcullis_config::Config;

/// Added, removed and changed entries of one section.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub added: usize,
    pub removed: usize,
    pub changed: usize,
}

impl Counts {
    fn of<T: fmt::Debug>(old: &IndexMap<String, T>, new: &IndexMap<String, T>) -> Counts {
        let mut counts = Counts::default();
        for (name, entry) in new {
            match old.get(name) {
                None => counts.added += 1,
                Some(before) if !same(before, entry) => counts.changed += 1,
                Some(_) => {}
            }
        }
        counts.removed = old.keys().filter(|name| !new.contains_key(*name)).count();
        counts
    }
}

impl fmt::Display for Counts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "+{} -{} ~{}", self.added, self.removed, self.changed)
    }
}

/// What a reload from `old` to `new` changes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    pub websocket: Counts,
    pub http: Counts,
    pub static_sites: Counts,
    pub integrations: Counts,
    pub authorizers: Counts,
    pub pools: Counts,
    /// WebSocket APIs the new file no longer has: their open connections close (1001).
    pub removed_websocket: Vec<String>,
    /// Pools, identity pools, roles or the public URL changed: the identity provider is
    /// rebuilt on its store.
    pub identity: bool,
    /// Keys whose change only a restart applies (the running gateway keeps the old values).
    pub needs_restart: Vec<&'static str>,
}

impl Changes {
    pub fn between(old: &Config, new: &Config) -> Changes {
        let server = |f: fn(&Config) -> String| f(old) != f(new);
        let mut needs_restart = Vec::new();
        let restart_keys: [(&'static str, bool); 16] = [
            ("server.listen", old.server.listen != new.server.listen),
            (
                "server.admin_listen",
                old.server.admin_listen != new.server.admin_listen,
            ),
            ("server.tls", server(|c| format!("{:?}", c.server.tls))),
            (
                "server.admin_tls",
                server(|c| format!("{:?}", c.server.admin_tls)),
            ),
            ("server.ca_file", old.server.ca_file != new.server.ca_file),
            (
                "server.max_connections",
                old.server.max_connections != new.server.max_connections,
            ),
            (
                "server.admin_max_connections",
                old.server.admin_max_connections != new.server.admin_max_connections,
            ),
            (
                "server.max_connections_per_ip",
                old.server.max_connections_per_ip != new.server.max_connections_per_ip,
            ),
            (
                "server.header_read_timeout",
                old.server.header_read_timeout != new.server.header_read_timeout,
            ),
            (
                "server.body_read_timeout",
                old.server.body_read_timeout != new.server.body_read_timeout,
            ),
            // The outbound client (and its pool) is built once, at start.
            (
                "server.upstream_idle_timeout",
                old.server.upstream_idle_timeout != new.server.upstream_idle_timeout,
            ),
            (
                "server.upstream_max_idle_per_host",
                old.server.upstream_max_idle_per_host != new.server.upstream_max_idle_per_host,
            ),
            // The worker threads and their listening sockets are made once, at start.
            ("server.workers", old.server.workers != new.server.workers),
            ("cluster", server(|c| format!("{:?}", c.cluster))),
            ("functions", old.functions != new.functions),
            ("store", server(|c| format!("{:?}", c.store))),
        ];
        for (key, changed) in restart_keys {
            if changed {
                needs_restart.push(key);
            }
        }
        let identity = !same(&old.pools, &new.pools)
            || !same(&old.identity_pools, &new.identity_pools)
            || !same(&old.roles, &new.roles)
            || old.server.public_url != new.server.public_url;
        Changes {
            websocket: Counts::of(&old.websocket, &new.websocket),
            http: Counts::of(&old.http, &new.http),
            static_sites: Counts::of(&old.static_sites, &new.static_sites),
            integrations: Counts::of(&old.integrations, &new.integrations),
            authorizers: Counts::of(&old.authorizers, &new.authorizers),
            pools: Counts::of(&old.pools, &new.pools),
            removed_websocket: old
                .websocket
                .keys()
                .filter(|name| !new.websocket.contains_key(*name))
                .cloned()
                .collect(),
            identity,
            needs_restart,
        }
    }
}

/// The summary of the reload's log line: `websocket +1 -0 ~2, http ...`.
impl fmt::Display for Changes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "websocket {}, http {}, static {}, integrations {}, authorizers {}, pools {}",
            self.websocket,
            self.http,
            self.static_sites,
            self.integrations,
            self.authorizers,
            self.pools
        )
    }
}

fn same<T: fmt::Debug>(a: &T, b: &T) -> bool {
    format!("{a:?}") == format!("{b:?}")
}
