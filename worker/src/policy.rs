//! Where a recipient's effective policy comes from: the stored policies (the tenant's
//! policy, then the domain's and the user's overrides; an alias uses its user's policy),
//! through a small cache so the SMTP hot path does not query the database per message.

use std::sync::Arc;
use std::time::Duration;

use cleanmail_core::EffectivePolicy;
use cleanmail_schema::store::policies::unscoped_effective_for_user_for_ingest;
use cleanmail_schema::{Db, StoreError, UserId};
use moka::sync::Cache;

/// How long a looked-up policy is reused: a policy change applies to mail within this time.
pub const POLICY_CACHE_TTL: Duration = Duration::from_secs(5);
/// Most users whose policies are cached at once.
const POLICY_CACHE_CAPACITY: u64 = 50_000;

/// Effective policies of users, cached for [`POLICY_CACHE_TTL`].
pub struct PolicyCache {
    db: Db,
    entries: Cache<UserId, Arc<EffectivePolicy>>,
}

impl PolicyCache {
    /// A cache over the stored policies of `db`.
    pub fn new(db: Db) -> Self {
        Self {
            db,
            entries: Cache::builder()
                .max_capacity(POLICY_CACHE_CAPACITY)
                .time_to_live(POLICY_CACHE_TTL)
                .build(),
        }
    }

    /// The effective policy of a user (the mailbox an address or alias delivers to).
    /// `NotFound` when the user no longer exists.
    pub async fn for_user(&self, user_id: &UserId) -> Result<Arc<EffectivePolicy>, StoreError> {
        if let Some(policy) = self.entries.get(user_id) {
            return Ok(policy);
        }
        let policy = Arc::new(unscoped_effective_for_user_for_ingest(&self.db, user_id).await?);
        self.entries.insert(user_id.clone(), Arc::clone(&policy));
        Ok(policy)
    }
}
