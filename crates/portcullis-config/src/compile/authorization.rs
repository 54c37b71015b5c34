//! `authorization = "NONE" | "AWS_IAM"` on WebSocket APIs, HTTP APIs and HTTP routes.
//!
//! `AWS_IAM` is exclusive with `authorizer` on the same table, and needs at least one
//! `[identity_pools.NAME]` (checked with the other references once every section is read).

use crate::model::Authorization;
use crate::walk::{Ctx, Sp, Tbl};

use super::{RefKind, Refs};

/// The table's `authorization`, if set and valid. `AWS_IAM` records that identity pools are
/// needed.
pub(super) fn authorization(
    ctx: &mut Ctx<'_>,
    t: &mut Tbl<'_>,
    refs: &mut Refs,
) -> Option<Sp<Authorization>> {
    let value = t.string(ctx, "authorization")?;
    let parsed = match value.v.as_str() {
        "NONE" => Authorization::None,
        "AWS_IAM" => {
            refs.push(RefKind::IdentityPools, &value, t.path_of("authorization"));
            Authorization::AwsIam
        }
        other => {
            ctx.error(
                value.at,
                &t.path_of("authorization"),
                format!("expected \"NONE\" or \"AWS_IAM\", got {other:?}"),
            );
            return None;
        }
    };
    Some(Sp {
        v: parsed,
        at: value.at,
    })
}

/// Refuses `authorization = "AWS_IAM"` next to an `authorizer` (other than a route's
/// `"none"`) in the same table.
pub(super) fn exclusive(
    ctx: &mut Ctx<'_>,
    t: &Tbl<'_>,
    authorization: Option<&Sp<Authorization>>,
    authorizer: Option<&Sp<String>>,
) {
    if let (Some(a), Some(_)) = (authorization, authorizer.filter(|a| a.v != "none"))
        && a.v == Authorization::AwsIam
    {
        ctx.error(
            a.at,
            &t.path_of("authorization"),
            "authorization = \"AWS_IAM\" and authorizer are exclusive: the role's IAM policy \
             decides, so remove authorizer (or use authorizer = \"none\" on a route)",
        );
    }
}

/// The diagnostic when `AWS_IAM` is used without any identity pool.
pub(super) const NEEDS_IDENTITY_POOL: &str = "authorization = \"AWS_IAM\" needs credentials from \
     an identity pool: declare one in an [identity_pools.NAME] table";

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
