//! The abuse limits: `[server] connect_rate_per_ip` and `trusted_proxies`, and
//! `[websocket.NAME] message_rate`.

use portcullis_core::proxies::Cidr;

use crate::model::{DEFAULT_CONNECT_RATE_PER_IP, DEFAULT_MESSAGE_RATE, MAX_RATE};
use crate::walk::{Ctx, Tbl};

/// A rate per second in `0..=MAX_RATE` (0: no limit), `default` when absent.
fn rate(ctx: &mut Ctx<'_>, t: &mut Tbl<'_>, key: &'static str, default: u32) -> u32 {
    t.int(ctx, key, 0, i64::from(MAX_RATE))
        .and_then(|r| u32::try_from(r.v).ok())
        .unwrap_or(default)
}

/// `server.connect_rate_per_ip`.
pub(super) fn connect_rate_per_ip(ctx: &mut Ctx<'_>, t: &mut Tbl<'_>) -> u32 {
    rate(ctx, t, "connect_rate_per_ip", DEFAULT_CONNECT_RATE_PER_IP)
}

/// `websocket.NAME.message_rate`.
pub(super) fn message_rate(ctx: &mut Ctx<'_>, t: &mut Tbl<'_>) -> u32 {
    rate(ctx, t, "message_rate", DEFAULT_MESSAGE_RATE)
}

/// `server.trusted_proxies`: address blocks, each checked (a bad one is an error naming it).
pub(super) fn trusted_proxies(ctx: &mut Ctx<'_>, t: &mut Tbl<'_>) -> Vec<Cidr> {
    let Some(items) = t.strings(ctx, "trusted_proxies") else {
        return Vec::new();
    };
    let path = t.path_of("trusted_proxies");
    let mut blocks: Vec<Cidr> = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        match item.v.parse::<Cidr>() {
            Ok(block) if !blocks.contains(&block) => blocks.push(block),
            Ok(_) => {}
            Err(e) => ctx.error(
                item.at,
                &crate::walk::index(&path, i),
                format!("{:?}: {e}", item.v),
            ),
        }
    }
    blocks
}
