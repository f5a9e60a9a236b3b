//! Per-tenant learning: the [`LEARN_FEEDBACK`] jobs that turn classifier feedback (a release
//! is ham, a spam report is spam) into the tenant's [`TenantModel`], and the cache through
//! which the SMTP path classifies with it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use cleanmail_core::{Class, EmailAddress, Envelope, TenantModel};
use cleanmail_schema::models::Job;
use cleanmail_schema::store::jobs;
use cleanmail_schema::store::learning::{
    LearnFeedback, store_learned, unscoped_tenant_model_for_ingest,
};
use cleanmail_schema::{Db, JobId, StoreError, TenantId};
use moka::sync::Cache;
use tracing::{debug, warn};

use crate::jobs::Worker;

pub use cleanmail_schema::store::learning::LEARN_FEEDBACK;

/// How long a loaded tenant model is reused: what a tenant learns applies within this time.
pub const MODEL_CACHE_TTL: Duration = Duration::from_secs(5);
/// Features of tenant models cached at once (each model weighs its feature count, an empty
/// one 1): about 40 bytes each in memory, so some 200 MB at most.
const MODEL_CACHE_FEATURES: u64 = 5_000_000;
/// Most features a tenant's learned model keeps (about 3 MB stored); beyond it the least
/// evidenced are forgotten ([`TenantModel::prune`]).
pub const MAX_TENANT_FEATURES: usize = 200_000;

/// Tenants' learned models (`None`: the tenant has learned nothing), cached for
/// [`MODEL_CACHE_TTL`].
pub struct TenantModelCache {
    db: Db,
    entries: Cache<TenantId, Option<Arc<TenantModel>>>,
}

impl TenantModelCache {
    pub fn new(db: Db) -> Self {
        Self {
            db,
            entries: Cache::builder()
                .max_capacity(MODEL_CACHE_FEATURES)
                .weigher(|_, model: &Option<Arc<TenantModel>>| {
                    model.as_ref().map_or(1, |m| {
                        u32::try_from(m.len()).unwrap_or(u32::MAX).saturating_add(1)
                    })
                })
                .time_to_live(MODEL_CACHE_TTL)
                .build(),
        }
    }

    /// The tenant's model, `None` when it has learned nothing (or its model cannot be read,
    /// which is logged: filtering goes on with the shared model).
    pub async fn for_tenant(&self, tenant_id: &TenantId) -> Option<Arc<TenantModel>> {
        if let Some(model) = self.entries.get(tenant_id) {
            return model;
        }
        let model = match unscoped_tenant_model_for_ingest(&self.db, tenant_id).await {
            Ok(stored) => stored.and_then(|stored| match TenantModel::from_bytes(&stored.model) {
                Ok(model) => Some(Arc::new(model)),
                Err(err) => {
                    warn!(tenant = %tenant_id, error = %err, "unreadable tenant model ignored");
                    None
                }
            }),
            Err(err) => {
                warn!(tenant = %tenant_id, error = %err, "loading the tenant model failed");
                return None;
            }
        };
        self.entries.insert(tenant_id.clone(), model.clone());
        model
    }
}

/// Learns a batch of claimed feedback jobs, tenant by tenant: each tenant's model is loaded,
/// taught every message of the batch, and stored with the jobs' removal in one transaction.
pub(crate) async fn run_batch(worker: &Worker, batch: Vec<Job>) {
    let mut by_tenant: BTreeMap<TenantId, Vec<Job>> = BTreeMap::new();
    for job in batch {
        match job.tenant_id.clone() {
            Some(tenant) => by_tenant.entry(tenant).or_default().push(job),
            None => warn!(job = %job.id, "feedback job without a tenant"),
        }
    }
    for (tenant, jobs) in by_tenant {
        if let Err(err) = learn_tenant(worker, &tenant, &jobs).await {
            warn!(tenant = %tenant, error = %err, "learning feedback failed; retrying later");
            for job in &jobs {
                let _ = jobs::retry_later(
                    &worker.db,
                    &job.id,
                    &worker.id,
                    job.attempts,
                    &err.to_string(),
                )
                .await;
            }
        }
    }
}

/// Learns every example with `learn`, each on its own: one the engine panics on is skipped
/// and returned with the panic's message (by its index), and the others are learned.
fn learn_each<E>(examples: &[E], mut learn: impl FnMut(&E)) -> Vec<(usize, String)> {
    examples
        .iter()
        .enumerate()
        .filter_map(|(i, example)| crate::catch_panic(|| learn(example)).err().map(|e| (i, e)))
        .collect()
}

async fn learn_tenant(worker: &Worker, tenant: &TenantId, jobs: &[Job]) -> anyhow::Result<()> {
    let mut examples = Vec::with_capacity(jobs.len());
    let mut done: Vec<JobId> = Vec::with_capacity(jobs.len());
    for job in jobs {
        let payload: LearnFeedback = serde_json::from_str(&job.payload)?;
        let class = match payload.kind.as_str() {
            "ham" => Class::Ham,
            "spam" => Class::Spam,
            other => anyhow::bail!("unknown feedback kind {other:?}"),
        };
        let raw = match &job.blob_key {
            Some(key) => worker.blobs.get(key).await?,
            None => anyhow::bail!("feedback job {} has no message", job.id),
        };
        let mut envelope = Envelope::from_headers(&raw);
        envelope.mail_from = EmailAddress::parse(&payload.mail_from).ok();
        examples.push((raw, envelope, class));
        done.push(job.id.clone());
    }
    // Another learner may store between our read and write: learn again from its model.
    for _ in 0..5 {
        let stored = unscoped_tenant_model_for_ingest(&worker.db, tenant).await?;
        let previous = stored.as_ref().map(|s| s.learned);
        let mut model = match stored {
            Some(stored) => TenantModel::from_bytes(&stored.model)?,
            None => TenantModel::default(),
        };
        let engine = Arc::clone(&worker.engine);
        let examples_ref = examples.clone();
        let tenant_id = tenant.clone();
        let (model_bytes, unlearnable) = tokio::task::spawn_blocking(move || {
            let unlearnable = learn_each(&examples_ref, |(raw, envelope, class)| {
                engine.learn(&mut model, raw, envelope, *class)
            });
            let forgotten = model.prune(MAX_TENANT_FEATURES);
            if forgotten > 0 {
                debug!(tenant = %tenant_id, forgotten, "tenant model pruned");
            }
            (model.to_bytes(), unlearnable)
        })
        .await?;
        let learned: Vec<JobId> = done
            .iter()
            .enumerate()
            .filter(|(i, _)| !unlearnable.iter().any(|(bad, _)| bad == i))
            .map(|(_, id)| id.clone())
            .collect();
        match store_learned(
            &worker.db,
            tenant,
            &model_bytes,
            previous,
            &learned,
            &worker.id,
        )
        .await
        {
            Ok(true) => {
                debug!(tenant = %tenant, learned = learned.len(), "tenant model updated");
                // The engine fails the same way on every attempt: no retries.
                for (i, error) in unlearnable {
                    let error = format!("the filter failed on this message: {error}");
                    warn!(tenant = %tenant, job = %done[i], %error, "feedback not learned");
                    jobs::fail(&worker.db, &done[i], &worker.id, &error).await?;
                }
                return Ok(());
            }
            Ok(false) => continue,
            Err(StoreError::Conflict(reason)) => {
                debug!(tenant = %tenant, %reason, "feedback jobs taken over by another worker");
                return Ok(());
            }
            Err(err) => return Err(err.into()),
        }
    }
    anyhow::bail!("the tenant model kept changing under us")
}

#[cfg(test)]
mod tests {
    use super::learn_each;

    #[test]
    fn a_message_the_engine_panics_on_costs_only_its_own_feedback() {
        let mut learned = Vec::new();
        let unlearnable = learn_each(&["ham", "poison", "spam"], |example| {
            assert!(*example != "poison", "engine bug on {example}");
            learned.push(*example);
        });
        assert_eq!(learned, ["ham", "spam"]);
        assert_eq!(unlearnable, [(1, "engine bug on poison".to_owned())]);
        assert!(learn_each(&["ham"], |_| {}).is_empty());
    }
}
