//! Loading, creating and rotating a pool's signing keys in the store, and signing with them.

use super::{KeyError, KeyRing};
use crate::options::secs;
use crate::store::{SigningKeyRecord, StoreError};
use crate::{IdentityProvider, IdpError, keys, unix_now};

impl IdentityProvider {
    /// Loads the pool's keys, creating the first one (signing at once) when none can sign, and
    /// deletes keys that are no longer published.
    pub(crate) async fn ensure_keys(&self, pool: &str) -> Result<(), IdpError> {
        let state = self.pool(pool)?;
        let now = unix_now();
        self.store
            .delete_signing_keys_retired_before(pool, now.saturating_sub(state.keys.max_ttl))
            .await?;
        let records = self.store.list_signing_keys(pool).await?;
        if !records.iter().any(|r| r.retired_at.is_none()) {
            let record = self.at_rest.seal_key(generate_key(pool, now, now).await?)?;
            // The store holds one current key per pool: when another node starting at the same
            // time created it first, that one is the pool's key here too.
            match self.store.insert_signing_key(&record).await {
                Ok(()) => tracing::info!(pool, kid = %record.kid, "created signing key"),
                Err(StoreError::Conflict(_)) => {
                    tracing::info!(pool, "another process created the signing key");
                }
                Err(e) => return Err(e.into()),
            }
        }
        self.reload_keys(pool).await
    }

    /// Re-reads the pool's keys from the store (e.g. after another node rotated them).
    pub async fn reload_keys(&self, pool: &str) -> Result<(), IdpError> {
        let state = self.pool(pool)?;
        let records = self
            .store
            .list_signing_keys(pool)
            .await?
            .iter()
            .map(|r| self.at_rest.open_key(r))
            .collect::<Result<Vec<_>, _>>()?;
        state.keys.replace(KeyRing::from_records(&records)?);
        Ok(())
    }

    /// Rotates the pool's signing key: the new key is published now and signs after the grace
    /// period; the current key signs until then and stays published for the pool's longest
    /// token lifetime after. Returns the new `kid`.
    pub async fn rotate_keys(&self, pool: &str) -> Result<String, IdpError> {
        let now = unix_now();
        let switch = now.saturating_add(secs(self.options.key_grace));
        self.pool(pool)?;
        let record = self
            .at_rest
            .seal_key(generate_key(pool, now, switch).await?)?;
        self.store.retire_signing_keys(pool, switch).await?;
        self.store.insert_signing_key(&record).await?;
        tracing::info!(pool, kid = %record.kid, "rotated signing key");
        self.reload_keys(pool).await?;
        Ok(record.kid)
    }
}

async fn generate_key(
    pool: &str,
    now: i64,
    activates_at: i64,
) -> Result<SigningKeyRecord, IdpError> {
    let pool = pool.to_owned();
    tokio::task::spawn_blocking(move || keys::generate(&pool, now, activates_at))
        .await
        .map_err(|_| IdpError::Key(KeyError("key generation task failed")))?
        .map_err(IdpError::Key)
}
