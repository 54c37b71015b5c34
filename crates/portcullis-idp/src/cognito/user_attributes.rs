//! `UpdateUserAttributes`: a signed-in user changes their own attributes.

use serde_json::{Value, json};

use super::{Body, Cognito, CognitoError, Writer, attribute_list, check_attributes};
use crate::attributes::apply_user_changes;
use crate::unix_now;

impl Cognito {
    /// Writes the standard and mutable custom attributes; a changed `email` or `phone_number`
    /// is no longer verified. Verification flags, immutable and undeclared attributes are
    /// refused, and nothing is written then.
    pub(super) async fn update_user_attributes(&self, body: &Body) -> Result<Value, CognitoError> {
        let mut user = self.token_user(body).await?;
        let changes = attribute_list(body, "UserAttributes")?;
        let state = self.idp.pool(&user.pool)?;
        check_attributes(&state.config, Writer::User, &changes)?;
        user.attributes = apply_user_changes(&user.attributes, &changes);
        user.updated_at = unix_now();
        self.idp.store.update_user(&user).await?;
        Ok(json!({"CodeDeliveryDetailsList": []}))
    }
}
