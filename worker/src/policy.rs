//! Where a recipient's effective policy comes from: the stored policies (the tenant's
//! policy, then the domain's and the user's overrides; an alias uses its user's policy),
//! through a small cache so the SMTP hot path does not query the database per message.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cleanmail_core::EffectivePolicy;
use cleanmail_schema::store::policies::unscoped_effective_for_user_for_ingest;
use cleanmail_schema::{Db, StoreError, UserId};

/// How long a looked-up policy is reused: a policy change applies to mail within this time.
pub const POLICY_CACHE_TTL: Duration = Duration::from_secs(5);
/// Most users whose policies are cached at once.
const POLICY_CACHE_CAPACITY: usize = 50_000;

/// Effective policies of users, cached for [`POLICY_CACHE_TTL`]; cheap to share (`Arc`).
pub struct PolicyCache {
    db: Db,
    ttl: Duration,
    capacity: usize,
    entries: Mutex<HashMap<UserId, (Instant, Arc<EffectivePolicy>)>>,
}

impl PolicyCache {
    /// A cache over the stored policies of `db`.
    pub fn new(db: Db) -> Self {
        Self::with_limits(db, POLICY_CACHE_TTL, POLICY_CACHE_CAPACITY)
    }

    /// A cache with its own time to live and capacity.
    pub fn with_limits(db: Db, ttl: Duration, capacity: usize) -> Self {
        Self {
            db,
            ttl,
            capacity: capacity.max(1),
            entries: Mutex::default(),
        }
    }

    /// The effective policy of a user (the mailbox an address or alias delivers to).
    /// `NotFound` when the user no longer exists.
    pub async fn for_user(&self, user_id: &UserId) -> Result<Arc<EffectivePolicy>, StoreError> {
        {
            let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((at, policy)) = entries.get(user_id)
                && at.elapsed() < self.ttl
            {
                return Ok(Arc::clone(policy));
            }
        }
        let policy = Arc::new(unscoped_effective_for_user_for_ingest(&self.db, user_id).await?);
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= self.capacity {
            let ttl = self.ttl;
            entries.retain(|_, (at, _)| at.elapsed() < ttl);
            if entries.len() >= self.capacity {
                entries.clear();
            }
        }
        entries.insert(user_id.clone(), (Instant::now(), Arc::clone(&policy)));
        Ok(policy)
    }
}
