//! Per-tenant classifier learning: the `learn_feedback` jobs that classifier feedback
//! enqueues, and each tenant's learned model (`tenant_models`).
//!
//! Feedback (a release is ham, a report is spam) is recorded by
//! [`messages`](crate::store::messages) together with a [`LEARN_FEEDBACK`] job in the same
//! transaction; the job keeps the message's blob from purges until the worker has learned it.

use chrono::NaiveDateTime;
use diesel::{ExpressionMethods as _, OptionalExtension as _, QueryDsl as _};
use serde::{Deserialize, Serialize};

use crate::db::with_conn;
use crate::models::Job;
use crate::tables::tenant_models;
use crate::{Db, JobId, StoreError, TenantId};

/// Job kind of [`LearnFeedback`].
pub const LEARN_FEEDBACK: &str = "learn_feedback";

/// One message to learn into its tenant's model.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LearnFeedback {
    /// `ham` or `spam`.
    pub kind: String,
    /// The envelope sender of the message (part of what the classifier sees).
    pub mail_from: String,
}

impl LearnFeedback {
    /// The job learning feedback `kind` on the recipient copy `message_id`; one per copy and
    /// kind, like the feedback itself.
    pub fn job(
        message_id: &str,
        tenant_id: &TenantId,
        kind: &str,
        mail_from: &str,
        blob_key: &str,
        now: NaiveDateTime,
    ) -> Job {
        let payload = serde_json::to_string(&LearnFeedback {
            kind: kind.to_owned(),
            mail_from: mail_from.to_owned(),
        })
        .expect("the payload serialises");
        Job::new(
            JobId(format!("learn-{kind}-{message_id}")),
            LEARN_FEEDBACK,
            Some(tenant_id.clone()),
            payload,
            Some(blob_key.to_owned()),
            now,
        )
    }
}

/// A tenant's learned model as stored: `TenantModel::to_bytes` and how much it has learned.
#[derive(Debug, Clone)]
pub struct StoredTenantModel {
    pub model: Vec<u8>,
    pub learned: i64,
}

/// The learned model of a tenant, if it has learned anything. For the filtering path and the
/// learner, which act for the platform.
pub async fn unscoped_tenant_model_for_ingest(
    db: &Db,
    tenant_id: &TenantId,
) -> Result<Option<StoredTenantModel>, StoreError> {
    with_conn!(db, conn => {
        let row: Option<(Vec<u8>, i64)> = tenant_models::table
            .filter(tenant_models::tenant_id.eq(tenant_id.clone()))
            .select((tenant_models::model, tenant_models::learned))
            .first(conn)
            .await
            .optional()?;
        Ok(row.map(|(model, learned)| StoredTenantModel { model, learned }))
    })
}

/// Stores a tenant's model after learning the jobs `done` (held by `worker`), and removes
/// those jobs, in one transaction. `previous` is the `learned` count the model was loaded at
/// (`None`: the tenant had none); if another learner stored in between, nothing is written
/// and `Ok(false)` says to learn again from the newer model. `Conflict` if one of the jobs is
/// no longer held by `worker` (nothing is written).
pub async fn store_learned(
    db: &Db,
    tenant_id: &TenantId,
    model: &[u8],
    previous: Option<i64>,
    done: &[JobId],
    worker: &str,
) -> Result<bool, StoreError> {
    let now = crate::now();
    let learned = previous.unwrap_or(0) + done.len() as i64;
    with_conn!(db, conn => {
        conn.transaction(async |conn| {
            let written = match previous {
                None => diesel::insert_into(tenant_models::table)
                    .values((
                        tenant_models::tenant_id.eq(tenant_id.clone()),
                        tenant_models::model.eq(model),
                        tenant_models::learned.eq(learned),
                        tenant_models::updated_at.eq(now),
                    ))
                    .on_conflict_do_nothing()
                    .execute(conn)
                    .await?,
                Some(previous) => diesel::update(
                    tenant_models::table
                        .filter(tenant_models::tenant_id.eq(tenant_id.clone()))
                        .filter(tenant_models::learned.eq(previous)),
                )
                .set((
                    tenant_models::model.eq(model),
                    tenant_models::learned.eq(learned),
                    tenant_models::updated_at.eq(now),
                ))
                .execute(conn)
                .await?,
            };
            if written == 0 {
                return Ok::<_, StoreError>(false);
            }
            let mut done = done.to_vec();
            crate::store::jobs::lock_order(&mut done, |id| id);
            for id in &done {
                // A job whose lease went to another worker will be learned there: roll back.
                if !crate::store::jobs::delete_claimed!(conn, id, worker) {
                    return Err(StoreError::Conflict(format!("job {id} is no longer ours")));
                }
            }
            Ok(true)
        })
        .await
    })
}
