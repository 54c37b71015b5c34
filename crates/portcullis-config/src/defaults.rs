//! Defaults that other crates repeat: one place to spell them.

/// `[management] region` when unset: the region clients sign `@connections` calls for, and the
/// region in every ARN.
pub const REGION: &str = "us-east-1";

/// `[management] account_id` when unset: the account id in every ARN.
pub const ACCOUNT_ID: &str = "000000000000";
