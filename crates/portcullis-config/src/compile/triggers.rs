//! `[pools.NAME.triggers]`: `pre_sign_up`, `post_confirmation`, `pre_authentication` and
//! `pre_token_generation`, each `{ url = "http(s)://..." }` or `{ function = "NAME" }` with an
//! optional `timeout`.

use std::time::Duration;

use super::{RefKind, Refs};
use crate::model::{Trigger, TriggerTarget, Triggers};
use crate::syntax;
use crate::walk::{Ctx, Tbl};

/// Default time of one trigger call: Cognito's own limit.
pub(crate) const DEFAULT_TRIGGER_TIMEOUT: Duration = Duration::from_secs(5);
const MIN_TRIGGER_TIMEOUT: Duration = Duration::from_millis(50);
const MAX_TRIGGER_TIMEOUT: Duration = Duration::from_secs(30);

/// The `triggers` table of a pool (absent: no triggers).
pub(super) fn triggers(ctx: &mut Ctx<'_>, pool: &mut Tbl<'_>, refs: &mut Refs) -> Triggers {
    let Some(mut t) = pool.table(ctx, "triggers") else {
        return Triggers::default();
    };
    let triggers = Triggers {
        pre_sign_up: trigger(ctx, &mut t, "pre_sign_up", refs),
        post_confirmation: trigger(ctx, &mut t, "post_confirmation", refs),
        pre_authentication: trigger(ctx, &mut t, "pre_authentication", refs),
        pre_token_generation: trigger(ctx, &mut t, "pre_token_generation", refs),
    };
    t.finish(ctx);
    triggers
}

/// One trigger: exactly one of `url` and `function`, and `timeout`.
fn trigger(
    ctx: &mut Ctx<'_>,
    parent: &mut Tbl<'_>,
    key: &'static str,
    refs: &mut Refs,
) -> Option<Trigger> {
    let mut t = parent.table(ctx, key)?;
    let url = t
        .name(ctx, "url")
        .and_then(|u| match syntax::http_url(&u.v) {
            Ok(_) => Some(u.v),
            Err(message) => {
                ctx.error(u.at, &t.path_of("url"), message);
                None
            }
        });
    let function = t.name(ctx, "function").inspect(|name| {
        refs.push(RefKind::Function, name, t.path_of("function"));
    });
    let timeout = t
        .duration_in(ctx, "timeout", MIN_TRIGGER_TIMEOUT, MAX_TRIGGER_TIMEOUT)
        .map_or(DEFAULT_TRIGGER_TIMEOUT, |d| d.v);
    let both = t.contains("url") && t.contains("function");
    let neither = !t.contains("url") && !t.contains("function");
    if both {
        ctx.error(
            t.at_of("function"),
            &t.path_of("function"),
            "a trigger calls either a url or a function, not both",
        );
    } else if neither {
        ctx.error(
            t.at,
            &t.path,
            "a trigger needs a url = \"http(s)://...\" or a function = \"NAME\"",
        );
    }
    t.finish(ctx);
    if both {
        return None;
    }
    let target = match (url, function) {
        (Some(url), None) => TriggerTarget::Url(url),
        (None, Some(function)) => TriggerTarget::Function(function.v),
        _ => return None,
    };
    Some(Trigger { target, timeout })
}
