//! The job runner: claims due jobs from the database queue and runs them.
//!
//! Jobs (named by what they do, each idempotent):
//! - [`IngestMessage`](crate::ingest::IngestMessage) ([`ingest_message`]): carries out each
//!   recipient's action, writes the message log, messages and counters, enqueues deliveries,
//!   and removes itself, in one transaction.
//! - [`DeliverMessage`] ([`deliver_message`]): one SMTP transaction downstream; records the
//!   attempt and removes or reschedules itself in one transaction.
//! - reports ([`crate::reports::run_due`], every `report_interval`): quarantine, domain
//!   and tenant reports due now, each slot once (enqueued as `DeliverMessage`).
//! - `purge_expired_messages` ([`purge_expired_messages`]): drops expired quarantine and
//!   retention copies and their blobs.
//! - `learn_feedback` ([`crate::learning`]): teaches a tenant's model the messages its users
//!   released (ham) or reported (spam).

pub mod deliver_message;
pub mod ingest_message;
pub mod purge_expired_messages;

use std::sync::Arc;
use std::time::Duration;

use cleanmail_core::Engine;
use cleanmail_schema::Db;
use cleanmail_schema::store::jobs;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

pub use deliver_message::{DELIVER_MESSAGE, DeliverMessage};
pub use purge_expired_messages::PURGE_EXPIRED_MESSAGES;

use crate::blobs::BlobStore;
use crate::delivery::{DeliveryClient, RetryPolicy};
use crate::ingest::INGEST_MESSAGE;
use crate::learning::LEARN_FEEDBACK;
use crate::notices::{JobNotices, LOCAL_SWEEP};
use crate::policy::PolicyCache;

/// Settings of the job runner.
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    /// Our host name (EHLO, DSN Reporting-MTA).
    pub hostname: String,
    /// Backoff of temporary delivery failures.
    pub retry: RetryPolicy,
    /// Where DSNs to senders go (`host:port`); `None` records them as undeliverable.
    pub outbound_relay: Option<String>,
    /// How long a claimed job is reserved; renewed while the worker lives.
    pub lease: Duration,
    /// How often expired messages are purged.
    pub purge_interval: Duration,
    /// Deliveries running at once.
    pub max_deliveries: usize,
    /// Scheduled reports; `None` sends none.
    pub reports: Option<crate::reports::ReportSettings>,
    /// How often due reports are looked for.
    pub report_interval: Duration,
}

impl Default for WorkerSettings {
    fn default() -> Self {
        Self {
            hostname: "localhost".to_owned(),
            retry: RetryPolicy::default(),
            outbound_relay: None,
            lease: Duration::from_secs(30),
            purge_interval: Duration::from_secs(3600),
            max_deliveries: 64,
            reports: None,
            report_interval: Duration::from_secs(60),
        }
    }
}

/// How often, at least, the learning loop looks for feedback jobs.
const LEARN_SWEEP: Duration = Duration::from_secs(1);

/// Shared by the job loops.
pub struct Worker {
    pub(crate) db: Db,
    pub(crate) blobs: BlobStore,
    pub(crate) settings: WorkerSettings,
    pub(crate) client: DeliveryClient,
    /// Unique per process: the `locked_by` of its claims.
    pub(crate) id: String,
    /// Wake-ups when jobs were committed (here, or in other processes over Redis).
    pub(crate) notices: Arc<JobNotices>,
    /// Recipients' effective policies (retention and quarantine expiry at ingest).
    pub(crate) policies: PolicyCache,
    /// The filtering engine, for the features of messages learned from feedback.
    pub(crate) engine: Arc<Engine>,
}

impl Worker {
    /// A worker; `notices` are those the process's SMTP committer sends too.
    pub fn new(
        db: Db,
        blobs: BlobStore,
        settings: WorkerSettings,
        notices: Arc<JobNotices>,
        engine: Arc<Engine>,
    ) -> Arc<Self> {
        Arc::new(Self {
            engine,
            client: DeliveryClient::new(settings.hostname.clone()),
            policies: PolicyCache::new(db.clone()),
            db,
            blobs,
            settings,
            id: format!("worker-{}", uuid::Uuid::now_v7().simple()),
            notices,
        })
    }

    /// Runs all job loops until `shutdown`.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        info!(worker = %self.id, "job worker started");
        let listeners = self.notices.listen(&shutdown);
        let tasks = [
            tokio::spawn(Arc::clone(&self).heartbeat_loop(shutdown.clone())),
            tokio::spawn(Arc::clone(&self).ingest_loop(shutdown.clone())),
            tokio::spawn(Arc::clone(&self).delivery_loop(shutdown.clone())),
            tokio::spawn(Arc::clone(&self).purge_loop(shutdown.clone())),
            tokio::spawn(Arc::clone(&self).learn_loop(shutdown.clone())),
            tokio::spawn(Arc::clone(&self).report_loop(shutdown.clone())),
        ];
        for task in tasks.into_iter().chain(listeners) {
            let _ = task.await;
        }
        info!(worker = %self.id, "job worker stopped");
    }

    async fn heartbeat_loop(self: Arc<Self>, shutdown: CancellationToken) {
        let every = self.settings.lease / 3;
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(every) => {}
            }
            if let Err(err) = jobs::heartbeat(&self.db, &self.id, self.settings.lease).await {
                warn!(error = %err, "renewing job leases failed");
            }
        }
    }

    async fn ingest_loop(self: Arc<Self>, shutdown: CancellationToken) {
        while !shutdown.is_cancelled() {
            let claimed = jobs::claim(
                &self.db,
                &[INGEST_MESSAGE],
                &self.id,
                256,
                self.settings.lease,
            )
            .await;
            match claimed {
                Ok(batch) if !batch.is_empty() => {
                    if let Err(err) = ingest_message::run_batch(&self, batch).await {
                        warn!(error = %err, "ingest batch failed");
                        tokio::time::sleep(LOCAL_SWEEP).await;
                    }
                }
                Ok(_) => self.wait(INGEST_MESSAGE, &shutdown).await,
                Err(err) => {
                    warn!(error = %err, "claiming ingest jobs failed");
                    tokio::time::sleep(LOCAL_SWEEP).await;
                }
            }
        }
    }

    async fn delivery_loop(self: Arc<Self>, shutdown: CancellationToken) {
        let slots = Arc::new(Semaphore::new(self.settings.max_deliveries));
        while !shutdown.is_cancelled() {
            let free = slots.available_permits();
            if free == 0 {
                let _ = slots.acquire().await.map(drop);
                continue;
            }
            let claimed = jobs::claim(
                &self.db,
                &[DELIVER_MESSAGE],
                &self.id,
                free as i64,
                self.settings.lease,
            )
            .await;
            match claimed {
                Ok(batch) if !batch.is_empty() => {
                    for job in batch {
                        let Ok(permit) = Arc::clone(&slots).acquire_owned().await else {
                            return;
                        };
                        let worker = Arc::clone(&self);
                        tokio::spawn(async move {
                            deliver_message::run(&worker, job).await;
                            drop(permit);
                        });
                    }
                }
                Ok(_) => self.wait(DELIVER_MESSAGE, &shutdown).await,
                Err(err) => {
                    warn!(error = %err, "claiming delivery jobs failed");
                    tokio::time::sleep(LOCAL_SWEEP).await;
                }
            }
        }
    }

    /// Waits for a notice of `kind` or the next sweep of the table (or `shutdown`).
    async fn wait(&self, kind: &str, shutdown: &CancellationToken) {
        tokio::select! {
            () = shutdown.cancelled() => {}
            () = self.notices.wait(kind, self.notices.sweep_interval()) => {}
        }
    }

    async fn learn_loop(self: Arc<Self>, shutdown: CancellationToken) {
        while !shutdown.is_cancelled() {
            match jobs::claim(
                &self.db,
                &[LEARN_FEEDBACK],
                &self.id,
                64,
                self.settings.lease,
            )
            .await
            {
                Ok(batch) if !batch.is_empty() => crate::learning::run_batch(&self, batch).await,
                // Feedback is never urgent: no notices, a slower sweep.
                Ok(_) => {
                    tokio::select! {
                        () = shutdown.cancelled() => return,
                        () = tokio::time::sleep(self.notices.sweep_interval().max(LEARN_SWEEP)) => {}
                    }
                }
                Err(err) => {
                    warn!(error = %err, "claiming feedback jobs failed");
                    tokio::time::sleep(LEARN_SWEEP).await;
                }
            }
        }
    }

    /// Runs what is due every `report_interval` (several workers send each slot once).
    async fn report_loop(self: Arc<Self>, shutdown: CancellationToken) {
        let Some(settings) = &self.settings.reports else {
            return;
        };
        loop {
            let now = chrono::Utc::now();
            match crate::reports::run_due(&self.db, &self.blobs, settings, now).await {
                Ok(summary) => self.notices.committed(DELIVER_MESSAGE, summary.sent),
                Err(err) => warn!(error = %err, "running due reports failed"),
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(self.settings.report_interval) => {}
            }
        }
    }

    async fn purge_loop(self: Arc<Self>, shutdown: CancellationToken) {
        loop {
            if let Err(err) = purge_expired_messages::enqueue(&self.db).await {
                warn!(error = %err, "scheduling the purge failed");
            }
            match jobs::claim(
                &self.db,
                &[PURGE_EXPIRED_MESSAGES],
                &self.id,
                1,
                self.settings.lease,
            )
            .await
            {
                Ok(batch) => {
                    for job in batch {
                        purge_expired_messages::run(&self, job).await;
                    }
                }
                Err(err) => warn!(error = %err, "claiming the purge failed"),
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(self.settings.purge_interval) => {}
            }
        }
    }
}
