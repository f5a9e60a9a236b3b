//! Wake-ups for the job loops: "jobs of this kind were just committed".
//!
//! The job table stays the one durable record (see the crate doc); a notice only says when
//! to look at it, so a lost notice costs latency, never a job. In one process the notices
//! are `tokio::sync::Notify`s (the SMTP committer wakes the ingest loop, ingest wakes the
//! delivery loop) and the loops also sweep the table every [`LOCAL_SWEEP`]. With
//! `queue_url = "redis://…"` the notices also travel between processes: whoever commits
//! jobs pushes a notice onto the Redis list `<namespace>:jobs:<kind>` (trimmed to
//! [`REDIS_BACKLOG`] entries: notices are interchangeable), and every worker process keeps
//! one connection per job kind blocked in `BLPOP` on it, so an `--role smtp` process on one
//! host hands mail to an `--role worker` process on another within milliseconds while the
//! table is swept only every [`REDIS_SWEEP`] (retries coming due, notices lost while Redis
//! or a listener was away). The API notices its releases, redistributions and sent mail
//! the same way.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::ingest::INGEST_MESSAGE;
use crate::jobs::DELIVER_MESSAGE;

/// How often the job loops sweep the table when notices stay in the process.
pub const LOCAL_SWEEP: Duration = Duration::from_millis(250);
/// How often the job loops sweep the table when Redis carries notices between processes.
pub const REDIS_SWEEP: Duration = Duration::from_secs(5);
/// Most notices kept in a Redis list nobody pops (no worker running).
pub const REDIS_BACKLOG: isize = 1000;
/// Longest pause between attempts to reach Redis again (the sweep covers the gap).
const MAX_RECONNECT_PAUSE: Duration = Duration::from_secs(30);
/// How long one `BLPOP` blocks before it is sent again (so an idle connection stays in use
/// and a dead one is noticed soon).
const BLPOP_SECONDS: f64 = 2.0;

/// The job kinds whose loops wait for notices (the others, learning feedback and scheduled
/// jobs, are found by the sweep).
const KINDS: [&str; 2] = [INGEST_MESSAGE, DELIVER_MESSAGE];

/// Notices of committed jobs, per job kind; shared by the SMTP committer and the job
/// loops of one process.
pub struct JobNotices {
    local: HashMap<&'static str, Arc<Notify>>,
    redis: Option<RedisNotices>,
}

struct RedisNotices {
    client: redis::Client,
    /// For pushes (reconnects by itself).
    pushes: redis::aio::ConnectionManager,
    /// `host:port/db` for logs, without credentials.
    label: String,
    /// First part of the keys: deployments sharing one Redis use different ones.
    namespace: String,
}

impl std::fmt::Debug for JobNotices {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobNotices")
            .field("redis", &self.redis.as_ref().map(|r| r.label.as_str()))
            .finish()
    }
}

fn local_notifies() -> HashMap<&'static str, Arc<Notify>> {
    KINDS
        .iter()
        .map(|kind| (*kind, Arc::new(Notify::new())))
        .collect()
}

/// The Redis list carrying notices of `kind` in `namespace`.
pub fn redis_key(namespace: &str, kind: &str) -> String {
    format!("{namespace}:jobs:{kind}")
}

impl JobNotices {
    /// Notices within this process only.
    pub fn local() -> Arc<Self> {
        Arc::new(Self {
            local: local_notifies(),
            redis: None,
        })
    }

    /// Notices between processes over the Redis server at `url` (`redis://host:port/db`),
    /// under keys starting with `namespace`; fails when Redis cannot be reached now.
    pub async fn redis(url: &str, namespace: &str) -> anyhow::Result<Arc<Self>> {
        let client = redis::Client::open(url).context("queue_url")?;
        let info = client.get_connection_info();
        let label = format!("{}/{}", info.addr(), info.redis_settings().db());
        let pushes = redis::aio::ConnectionManager::new(client.clone())
            .await
            .with_context(|| format!("connecting to Redis at {label}"))?;
        info!(redis = %label, namespace, "job notices over Redis");
        Ok(Arc::new(Self {
            local: local_notifies(),
            redis: Some(RedisNotices {
                client,
                pushes,
                label,
                namespace: namespace.to_owned(),
            }),
        }))
    }

    /// How often the job loops look at the table when no notice came.
    pub fn sweep_interval(&self) -> Duration {
        if self.redis.is_some() {
            REDIS_SWEEP
        } else {
            LOCAL_SWEEP
        }
    }

    /// Says that `count` jobs of `kind` were committed (call after the commit). Never waits
    /// and never fails: the Redis push runs on its own task (a committer must not slow down
    /// while Redis is away), and a notice Redis did not take is logged; the sweep finds the
    /// jobs.
    pub fn committed(&self, kind: &str, count: usize) {
        if count == 0 {
            return;
        }
        if let Some(notify) = self.local.get(kind) {
            notify.notify_one();
        }
        if let Some(redis) = &self.redis {
            let key = redis_key(&redis.namespace, kind);
            let mut conn = redis.pushes.clone();
            let kind = kind.to_owned();
            tokio::spawn(async move {
                let pushed: redis::RedisResult<()> = redis::pipe()
                    .lpush(&key, count)
                    .ignore()
                    .ltrim(&key, 0, REDIS_BACKLOG - 1)
                    .ignore()
                    .query_async(&mut conn)
                    .await;
                if let Err(err) = pushed {
                    warn!(kind, error = %err, "pushing a job notice to Redis failed (the sweep finds the jobs)");
                }
            });
        }
    }

    /// Waits for a notice of `kind` (from this process or, with Redis, any), at most
    /// `timeout`.
    pub async fn wait(&self, kind: &str, timeout: Duration) {
        match self.local.get(kind) {
            Some(notify) => {
                let _ = tokio::time::timeout(timeout, notify.notified()).await;
            }
            None => tokio::time::sleep(timeout).await,
        }
    }

    /// With Redis, starts one listener per job kind that turns notices popped from Redis
    /// into local wake-ups, until `shutdown`. Without Redis, does nothing.
    pub fn listen(
        self: &Arc<Self>,
        shutdown: &CancellationToken,
    ) -> Vec<tokio::task::JoinHandle<()>> {
        if self.redis.is_none() {
            return Vec::new();
        }
        KINDS
            .iter()
            .map(|kind| tokio::spawn(Arc::clone(self).listen_to(kind, shutdown.clone())))
            .collect()
    }

    async fn listen_to(self: Arc<Self>, kind: &'static str, shutdown: CancellationToken) {
        let Some(redis) = &self.redis else {
            return;
        };
        let Some(notify) = self.local.get(kind).cloned() else {
            return;
        };
        let key = redis_key(&redis.namespace, kind);
        // A connection of its own: BLPOP blocks it. Its answer is due after BLPOP's own
        // timeout; a connection that stays silent longer is dead and gets replaced.
        let config = redis::AsyncConnectionConfig::new().set_response_timeout(Some(
            Duration::from_secs_f64(BLPOP_SECONDS) + Duration::from_secs(3),
        ));
        let mut pause = Duration::from_secs(1);
        while !shutdown.is_cancelled() {
            let connected = tokio::select! {
                () = shutdown.cancelled() => return,
                c = redis.client.get_multiplexed_async_connection_with_config(&config) => c,
            };
            let mut conn = match connected {
                Ok(conn) => conn,
                Err(err) => {
                    warn!(kind, redis = %redis.label, error = %err, retry_in = ?pause, "connecting to Redis for job notices failed");
                    tokio::select! {
                        () = shutdown.cancelled() => return,
                        () = tokio::time::sleep(pause) => {}
                    }
                    pause = (pause * 2).min(MAX_RECONNECT_PAUSE);
                    continue;
                }
            };
            pause = Duration::from_secs(1);
            let mut blpop = redis::cmd("BLPOP");
            blpop.arg(&key).arg(BLPOP_SECONDS);
            loop {
                let popped: redis::RedisResult<Option<(String, String)>> = tokio::select! {
                    () = shutdown.cancelled() => return,
                    popped = blpop.query_async(&mut conn) => popped,
                };
                match popped {
                    Ok(Some(_)) => {
                        debug!(kind, "job notice from Redis");
                        notify.notify_one();
                    }
                    Ok(None) => {}
                    Err(err) => {
                        warn!(kind, error = %err, "waiting for job notices on Redis failed; reconnecting");
                        break;
                    }
                }
            }
        }
    }
}
