//! `IngestMessage`: carries out each recipient's action for one accepted message.
//!
//! The actions were decided at SMTP time with each recipient's stored effective policy
//! (they travel in the job's verdict); the same policy, read again here through the
//! worker's [`PolicyCache`](crate::policy::PolicyCache), says how long copies are kept.
//! Deliver and deliver-tagged recipients get a [`DeliverMessage`] job per downstream domain
//! and subject tag and, unless their backup webmail is off, a retained copy (state `queued`
//! until the delivery job records the outcome) that expires after the retention period;
//! quarantine (and reject, when other recipients accepted the message) keep a quarantined
//! copy that expires after the quarantine expiry. Everything, including removing the job,
//! is one transaction, so a job run twice (after a crash) records its effects once.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use chrono::{Duration as TimeDelta, NaiveDateTime};
use cleanmail_core::policy::BackupWebmail;
use cleanmail_core::{Action, Category, EffectivePolicy};
use cleanmail_schema::models::{Job, Message, MessageLogEntry, TrafficCounter};
use cleanmail_schema::store::jobs as job_store;
use cleanmail_schema::store::mail::{IngestOutcome, blob_unused, record_ingest};
use cleanmail_schema::{DomainId, JobId, MessageId, StoreError, UserId};
use tracing::{debug, warn};

use super::{DELIVER_MESSAGE, DeliverMessage, Worker};
use crate::ingest::{IngestMessage, hour_of};

/// Why a recipient accepted at SMTP time gets nothing: its user (or the user's domain or
/// tenant) was deleted before the ingest job ran.
pub const RECIPIENT_GONE: &str = "recipient deleted after acceptance";

/// State of a dropped recipient, and of the log entry when every recipient was dropped.
pub const DROPPED: &str = "dropped";

/// Runs a batch of claimed ingest jobs and records them together.
pub async fn run_batch(worker: &Worker, batch: Vec<Job>) -> anyhow::Result<()> {
    let mut outcomes = Vec::with_capacity(batch.len());
    let attempts: BTreeMap<JobId, i32> = batch.iter().map(|j| (j.id.clone(), j.attempts)).collect();
    let mut policies: HashMap<UserId, Arc<EffectivePolicy>> = HashMap::new();
    let mut gone: HashSet<UserId> = HashSet::new();
    'jobs: for job in batch {
        let message = match serde_json::from_str::<IngestMessage>(&job.payload) {
            Ok(message) => message,
            Err(err) => {
                // Retrying cannot make this version read it: keep it for an operator.
                warn!(job = %job.id, error = %err, "unreadable ingest job failed for good");
                let error = format!("unreadable payload: {err}");
                job_store::fail(&worker.db, &job.id, &worker.id, &error).await?;
                continue;
            }
        };
        for recipient in &message.recipients {
            if policies.contains_key(&recipient.user_id) || gone.contains(&recipient.user_id) {
                continue;
            }
            match worker.policies.for_user(&recipient.user_id).await {
                Ok(policy) => {
                    policies.insert(recipient.user_id.clone(), policy);
                }
                // Deleted since acceptance: a permanent condition, the recipient is dropped
                // (and logged as such) and the others get their mail.
                Err(StoreError::NotFound) => {
                    gone.insert(recipient.user_id.clone());
                }
                Err(err) => {
                    warn!(job = %job.id, error = %err, "reading a recipient's policy failed");
                    retry(worker, &job.id, job.attempts, &err.to_string()).await?;
                    continue 'jobs;
                }
            }
        }
        outcomes.push(plan(job.id, &message, &policies));
    }
    let deliveries = outcomes.iter().map(|o| o.jobs.len()).sum::<usize>();
    match record_ingest(&worker.db, &worker.id, &outcomes).await {
        Ok(recorded) => debug!(recorded, deliveries, "ingest batch recorded"),
        Err(err) if outcomes.len() > 1 => {
            // One bad job (say, its user was deleted after its policy was read) must not
            // hold up the rest: record them one by one and retry the ones that fail (the
            // retry reads the policies again and drops the deleted recipients).
            warn!(error = %err, "ingest batch failed, recording jobs one by one");
            for outcome in &outcomes {
                record_one(worker, outcome, &attempts).await?;
            }
        }
        Err(_) => {
            if let Some(outcome) = outcomes.first() {
                record_one(worker, outcome, &attempts).await?;
            }
        }
    }
    // A message nobody keeps (every recipient dropped): its blob goes now, as after the last
    // delivery. A crash here leaves an unused file, never a row pointing at nothing.
    for outcome in outcomes
        .iter()
        .filter(|o| o.messages.is_empty() && o.jobs.is_empty())
    {
        let Some(key) = &outcome.log_entry.blob_key else {
            continue;
        };
        let removed = match blob_unused(&worker.db, key).await {
            Ok(true) => worker.blobs.delete(key).await,
            Ok(false) => Ok(()),
            Err(err) => Err(err.into()),
        };
        if let Err(err) = removed {
            warn!(job = %outcome.job_id, error = %err, "removing an unused blob failed");
        }
    }
    worker.notices.committed(DELIVER_MESSAGE, deliveries);
    Ok(())
}

/// Records one job; on failure retries it later.
async fn record_one(
    worker: &Worker,
    outcome: &IngestOutcome,
    attempts: &BTreeMap<JobId, i32>,
) -> anyhow::Result<()> {
    if let Err(err) = record_ingest(&worker.db, &worker.id, std::slice::from_ref(outcome)).await {
        warn!(job = %outcome.job_id, error = %err, "ingest job failed, retrying later");
        let attempts = attempts.get(&outcome.job_id).copied().unwrap_or(1);
        retry(worker, &outcome.job_id, attempts, &err.to_string()).await?;
    }
    Ok(())
}

/// Retries a job later (given up after `MAX_ATTEMPTS`, see `store::jobs::retry_later`).
async fn retry(worker: &Worker, job_id: &JobId, attempts: i32, error: &str) -> anyhow::Result<()> {
    if job_store::retry_later(&worker.db, job_id, &worker.id, attempts, error).await?
        == job_store::Retry::GaveUp
    {
        warn!(job = %job_id, error, "ingest job failed for good");
    }
    Ok(())
}

fn days(n: u16) -> TimeDelta {
    TimeDelta::days(i64::from(n))
}

/// The effects of one ingest job (pure: no I/O). `policies` holds the effective policy of
/// every recipient's user; a recipient without one (its user was deleted) is dropped: the
/// log lists it as `dropped` ([`RECIPIENT_GONE`]) and it gets no copy, delivery or count.
pub fn plan(
    job_id: JobId,
    message: &IngestMessage,
    policies: &HashMap<UserId, Arc<EffectivePolicy>>,
) -> IngestOutcome {
    let received_at: NaiveDateTime = message.received_at;
    let rcpt_to: Vec<&str> = message
        .recipients
        .iter()
        .map(|r| r.address.as_str())
        .collect();
    let rcpt_to_json = serde_json::to_string(&rcpt_to).unwrap_or_default();
    let verdict_json = serde_json::to_string(&message.verdict).unwrap_or_default();
    let mut rows = Vec::new();
    let mut actions = Vec::new();
    // (domain, subject prefix) -> recipients, in envelope order.
    let mut deliveries: BTreeMap<(DomainId, Option<String>), Vec<String>> = BTreeMap::new();
    let mut categories: BTreeMap<DomainId, Category> = BTreeMap::new();
    for (index, recipient) in message.recipients.iter().enumerate() {
        let Some(decision) = message
            .verdict
            .recipients
            .iter()
            .find(|r| r.recipient.as_str() == recipient.address)
            .or_else(|| message.verdict.recipients.get(index))
        else {
            continue;
        };
        let Some(policy) = policies.get(&recipient.user_id).map(|p| &p.policy) else {
            actions.push(serde_json::json!({
                "recipient": recipient.address,
                "user_id": recipient.user_id,
                "category": decision.category.as_str(),
                "action": "drop",
                "reason": RECIPIENT_GONE,
                "state": DROPPED,
            }));
            continue;
        };
        categories
            .entry(recipient.domain_id.clone())
            .or_insert(decision.category);
        let (action, state, expires_at) = match &decision.action {
            Action::Deliver => {
                deliveries
                    .entry((recipient.domain_id.clone(), None))
                    .or_default()
                    .push(recipient.address.clone());
                (
                    "deliver",
                    "queued",
                    retention_end(received_at, policy.backup_webmail),
                )
            }
            Action::DeliverTagged { subject_prefix } => {
                deliveries
                    .entry((recipient.domain_id.clone(), Some(subject_prefix.clone())))
                    .or_default()
                    .push(recipient.address.clone());
                (
                    "deliver_tagged",
                    "queued",
                    retention_end(received_at, policy.backup_webmail),
                )
            }
            // Recipients whose policy says reject, on a message others accepted, are
            // quarantined (the platform never sends backscatter).
            Action::Quarantine | Action::Reject => (
                if decision.action == Action::Reject {
                    "reject"
                } else {
                    "quarantine"
                },
                Message::QUARANTINED,
                Some(received_at + days(policy.quarantine_expiry.get())),
            ),
        };
        actions.push(serde_json::json!({
            "recipient": recipient.address,
            "user_id": recipient.user_id,
            "category": decision.category.as_str(),
            "action": decision.action,
            "reason": decision.reason,
            "state": state,
        }));
        // No retained copy when the recipient's backup webmail is off.
        let Some(expires_at) = expires_at else {
            continue;
        };
        rows.push(Message {
            id: MessageId::new(),
            tenant_id: message.tenant_id.clone(),
            domain_id: recipient.domain_id.clone(),
            user_id: recipient.user_id.clone(),
            log_id: message.log_id.clone(),
            recipient: recipient.address.clone(),
            mail_from: message.mail_from.clone(),
            rcpt_to: rcpt_to_json.clone(),
            from_header: message.headers.from.clone(),
            subject: message.headers.subject.clone(),
            message_id_header: message.headers.message_id.clone(),
            size_bytes: message.size_bytes,
            score: f64::from(message.verdict.score),
            category: decision.category.as_str().to_owned(),
            action: action.to_owned(),
            verdict: verdict_json.clone(),
            state: state.to_owned(),
            blob_key: message.blob_key.clone(),
            last_response: None,
            received_at,
            expires_at: Some(expires_at),
            updated_at: received_at,
        });
    }

    let hour = hour_of(received_at);
    let counters = categories
        .into_iter()
        .map(|(domain_id, category)| {
            let mut counter = TrafficCounter {
                domain_id,
                hour,
                tenant_id: message.tenant_id.clone(),
                ..TrafficCounter::default()
            };
            match category {
                Category::Clean => counter.clean = 1,
                Category::Newsletter => counter.newsletter = 1,
                Category::Spam => counter.spam = 1,
                Category::Phishing => counter.phishing = 1,
                Category::Virus => counter.virus = 1,
            }
            counter
        })
        .collect();

    let jobs: Vec<Job> = deliveries
        .into_iter()
        .enumerate()
        .map(|(index, ((domain_id, subject_prefix), rcpt_to))| {
            let delivery = DeliverMessage {
                log_id: message.log_id.clone(),
                tenant_id: message.tenant_id.clone(),
                domain_id: Some(domain_id),
                blob_key: message.blob_key.clone(),
                mail_from: message.mail_from.clone(),
                rcpt_to,
                subject_prefix,
                arrived_at: received_at,
                dsn: false,
            };
            Job::new(
                JobId(format!("{DELIVER_MESSAGE}:{}:{index}", message.log_id)),
                DELIVER_MESSAGE,
                Some(message.tenant_id.clone()),
                serde_json::to_string(&delivery).unwrap_or_default(),
                Some(message.blob_key.clone()),
                received_at,
            )
        })
        .collect();

    let state = if !jobs.is_empty() {
        "queued"
    } else if actions.iter().all(|a| a["state"] == DROPPED) {
        DROPPED
    } else {
        "quarantined"
    };
    let log_entry = MessageLogEntry {
        id: message.log_id.clone(),
        tenant_id: message.tenant_id.clone(),
        mail_from: message.mail_from.clone(),
        rcpt_to: rcpt_to_json,
        client_ip: message.client_ip.clone(),
        helo: message.helo.clone(),
        tls: message.tls,
        from_header: message.headers.from.clone(),
        subject: message.headers.subject.clone(),
        message_id_header: message.headers.message_id.clone(),
        size_bytes: message.size_bytes,
        score: f64::from(message.verdict.score),
        category: message.verdict.category.as_str().to_owned(),
        verdict: verdict_json,
        actions: serde_json::to_string(&actions).unwrap_or_default(),
        state: state.to_owned(),
        delivery_attempts: 0,
        last_response: None,
        blob_key: Some(message.blob_key.clone()),
        received_at,
        updated_at: cleanmail_schema::now(),
    };
    IngestOutcome {
        job_id,
        log_entry,
        messages: rows,
        counters,
        jobs,
    }
}

/// End of the retained copy of a delivered message: after the retention period, or `None`
/// (no copy) when the backup webmail is off.
fn retention_end(received_at: NaiveDateTime, backup: BackupWebmail) -> Option<NaiveDateTime> {
    match backup {
        BackupWebmail::Keep { days: d } => Some(received_at + days(d.get())),
        BackupWebmail::Off => None,
    }
}
