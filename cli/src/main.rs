//! The `cleanmail` binary: one process that serves the API, the SMTP listener and the job
//! workers (or any of them alone with `--role`), plus operator commands.

mod config;
mod eval;
mod output;
mod train;

use std::net::SocketAddr;
use std::path::PathBuf;

use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use cleanmail_worker::blobs::BlobStore;
use cleanmail_worker::delivery::RetryPolicy;
use cleanmail_worker::ingest::{Committer, IngestHandler};
use cleanmail_worker::jobs::{Worker, WorkerSettings};
use cleanmail_worker::notices::JobNotices;
use cleanmail_worker::reports::ReportSettings;
use cleanmail_worker::smtp::{SmtpConfig, SmtpServer, TlsSetting};
use tokio_util::sync::CancellationToken;

use crate::config::{CliOverrides, Config};

/// Cleanmail: multi-tenant inbound email security behind a REST and GraphQL API.
///
/// With no configuration at all, `cleanmail serve` keeps everything under `./data/`
/// (an SQLite database and a blob folder). Set `DATABASE_URL=postgres://...` to use
/// PostgreSQL. Settings come from, in rising order: built-in defaults, the TOML file
/// given by `--config` (or `CLEANMAIL_CONFIG`), `CLEANMAIL_*` environment variables,
/// and command-line flags.
#[derive(Debug, Parser)]
#[command(name = "cleanmail", version, about, long_about)]
struct Cli {
    /// TOML configuration file.
    #[arg(long, global = true, env = "CLEANMAIL_CONFIG")]
    config: Option<PathBuf>,
    /// Folder for the embedded database and message blobs (default `./data`).
    #[arg(long, global = true, env = "CLEANMAIL_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Database URL: `postgres://...` or `sqlite://path` (default: `<data-dir>/cleanmail.db`).
    #[arg(long, global = true, env = "DATABASE_URL")]
    database_url: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the platform: HTTP API (REST, GraphQL, docs), SMTP listener and job workers.
    Serve {
        /// Address for the HTTP API (default `127.0.0.1:8080`).
        #[arg(long = "http", env = "CLEANMAIL_HTTP_ADDR")]
        http_addr: Option<SocketAddr>,
        /// Address for the inbound SMTP listener (default `127.0.0.1:2525`).
        #[arg(long = "smtp", env = "CLEANMAIL_SMTP_ADDR")]
        smtp_addr: Option<SocketAddr>,
        /// Parts to run: `api`, `smtp`, `worker` (repeat or comma-separate; default all).
        #[arg(long = "role", env = "CLEANMAIL_ROLE", value_delimiter = ',')]
        roles: Vec<Role>,
    },
    /// Create or upgrade the database schema, then exit.
    Migrate,
    /// Print the OpenAPI document (JSON) to stdout.
    Openapi,
    /// Print the GraphQL schema (SDL) to stdout.
    GraphqlSchema,
    /// Scheduled reports.
    Reports {
        #[command(subcommand)]
        command: ReportsCommand,
    },
    /// Jobs that failed for good: list them, queue them again.
    Jobs {
        #[command(subcommand)]
        command: JobsCommand,
    },
    /// Administration commands.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Classify every message under DIR/{ham,spam,phish}/ and print detection figures.
    Eval {
        /// Corpus folder holding ham/, spam/ and phish/ subfolders.
        dir: PathBuf,
        /// Print one JSON object instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Train the statistical classifier from DIR/{ham,spam,phish}/ and write the model.
    Train {
        /// Corpus folder holding ham/, spam/ and phish/ subfolders (never the dev split).
        dir: PathBuf,
        /// Where to write the model file.
        #[arg(long)]
        out: PathBuf,
    },
}

/// One part of the platform that `serve` can run alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Role {
    /// The HTTP API (REST, GraphQL, docs).
    Api,
    /// The inbound SMTP listener (filtering and durable acceptance).
    Smtp,
    /// The job workers (ingest, delivery, purge).
    Worker,
}

#[derive(Debug, Subcommand)]
enum ReportsCommand {
    /// Run, once, every report due at an instant (default now), print what was done.
    RunDue {
        /// The instant, RFC 3339 (`2026-12-01T09:00:00+01:00`).
        #[arg(long)]
        at: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum JobsCommand {
    /// Print the jobs that failed for good, most recent first, one JSON object a line.
    Failed {
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: i64,
    },
    /// Queue failed jobs again (attempts reset, due now), e.g. after fixing their cause.
    Retry {
        /// Job ids, as `jobs failed` prints them.
        #[arg(required = true)]
        ids: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
enum AdminCommand {
    /// Create a platform admin and print a new API key for it (alone on the last line).
    Create {
        /// The admin's email address (also its login).
        #[arg(long)]
        email: String,
        /// Optional password for `POST /api/v1/auth/login`.
        #[arg(long, env = "CLEANMAIL_ADMIN_PASSWORD")]
        password: Option<String>,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Eval { dir, json } => return eval::run(&dir, json),
        Command::Train { dir, out } => return train::run(&dir, &out),
        _ => {}
    }
    let overrides = CliOverrides {
        data_dir: cli.data_dir,
        database_url: cli.database_url,
        http_addr: match &cli.command {
            Command::Serve { http_addr, .. } => *http_addr,
            _ => None,
        },
        smtp_addr: match &cli.command {
            Command::Serve { smtp_addr, .. } => *smtp_addr,
            _ => None,
        },
    };
    let config = Config::load(cli.config.as_deref(), overrides)?;
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?
        .block_on(run(cli.command, config))
}

async fn run(command: Command, config: Config) -> anyhow::Result<()> {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    match command {
        Command::Serve { roles, .. } => {
            init_tracing();
            serve(config, roles).await
        }
        Command::Migrate => {
            init_tracing();
            let db = cleanmail_schema::Db::connect(&config.database_url()).await?;
            db.migrate().await?;
            tracing::info!(database = %config.database_label(), "schema up to date");
            Ok(())
        }
        Command::Openapi => output::out(format_args!("{}\n", cleanmail_api::openapi_json())),
        Command::GraphqlSchema => output::out(format_args!("{}", cleanmail_api::graphql_sdl())),
        Command::Admin {
            command: AdminCommand::Create { email, password },
        } => {
            let db = cleanmail_schema::Db::connect(&config.database_url()).await?;
            db.migrate().await?;
            let key = cleanmail_api::bootstrap_platform_admin(&db, &email, password.as_deref())
                .await
                .context("creating the platform admin")?;
            println!("platform admin {email} created; API key (shown once):");
            println!("{key}");
            Ok(())
        }
        Command::Reports {
            command: ReportsCommand::RunDue { at },
        } => {
            init_tracing();
            let at = match at {
                Some(at) => chrono::DateTime::parse_from_rfc3339(&at)
                    .with_context(|| format!("--at {at}: not an RFC 3339 instant"))?
                    .with_timezone(&chrono::Utc),
                None => chrono::Utc::now(),
            };
            let db = cleanmail_schema::Db::connect(&config.database_url()).await?;
            db.migrate().await?;
            let blobs = open_blobs(&config)?;
            let settings = report_settings(&config)?;
            let summary = cleanmail_worker::reports::run_due(&db, &blobs, &settings, at).await?;
            println!("{}", serde_json::to_string(&summary)?);
            Ok(())
        }
        Command::Jobs { command } => {
            let db = cleanmail_schema::Db::connect(&config.database_url()).await?;
            db.migrate().await?;
            match command {
                JobsCommand::Failed { limit } => {
                    for job in cleanmail_schema::store::jobs::failed(&db, limit).await? {
                        let line = serde_json::json!({
                            "id": job.id,
                            "kind": job.kind,
                            "tenant_id": job.tenant_id,
                            "attempts": job.attempts,
                            "failed_at": job.failed_at.map(|t| t.and_utc()),
                            "last_error": job.last_error,
                        });
                        output::out(format_args!("{line}\n"))?;
                    }
                    Ok(())
                }
                JobsCommand::Retry { ids } => {
                    let mut missing = Vec::new();
                    for id in ids {
                        let job_id = cleanmail_schema::JobId(id.clone());
                        if cleanmail_schema::store::jobs::retry_failed(&db, &job_id).await? {
                            println!("queued again: {id}");
                        } else {
                            missing.push(id);
                        }
                    }
                    if missing.is_empty() {
                        Ok(())
                    } else {
                        anyhow::bail!("no failed job with id {}", missing.join(", "))
                    }
                }
            }
        }
        Command::Eval { .. } | Command::Train { .. } => unreachable!("handled before the runtime"),
    }
}

async fn serve(config: Config, roles: Vec<Role>) -> anyhow::Result<()> {
    let roles = if roles.is_empty() {
        vec![Role::Api, Role::Smtp, Role::Worker]
    } else {
        roles
    };
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating data dir {}", config.data_dir.display()))?;
    let db = cleanmail_schema::Db::connect(&config.database_url()).await?;
    db.migrate().await.context("migrating the database")?;
    let shutdown = CancellationToken::new();
    let mut tasks = Vec::new();
    let blobs = open_blobs(&config)?;
    // Job notices: within this process, or between processes over Redis (`queue_url`).
    let notices = match &config.queue_url {
        Some(url) => JobNotices::redis(url, &config.queue_namespace)
            .await
            .with_context(|| {
                format!(
                    "queue_url {}: Redis does not answer",
                    config.queue_label().unwrap_or_default()
                )
            })?,
        _ => JobNotices::local(),
    };

    // One filtering engine (its model is parsed once) for the SMTP path and the worker's learning.
    let mut engine_in_use: Option<Arc<cleanmail_core::Engine>> = None;
    if roles.contains(&Role::Smtp) {
        let committer = Committer::spawn(
            db.clone(),
            blobs.clone(),
            config.blob_fsync,
            Arc::clone(&notices),
        );
        let mut engine = cleanmail_core::Engine::default();
        if let Some(addr) = &config.clamd_addr {
            let clamd = cleanmail_worker::clamd::ClamdClient::new(addr.as_str())
                .with_context(|| format!("resolving clamd address {addr}"))?;
            let probe = clamd.clone();
            match tokio::task::spawn_blocking(move || probe.ping()).await {
                Ok(Ok(())) => tracing::info!(clamd = %addr, "virus scanning with clamd"),
                Ok(Err(err)) => {
                    tracing::warn!(clamd = %addr, error = %err, "clamd does not answer yet")
                }
                Err(err) => tracing::warn!(clamd = %addr, error = %err, "probing clamd failed"),
            }
            engine = engine.with_scanner(Arc::new(clamd));
        }
        let engine = Arc::new(engine);
        engine_in_use = Some(Arc::clone(&engine));
        let handler = IngestHandler::new(db.clone(), engine, committer);
        let smtp_config = SmtpConfig {
            listen: config.smtp_addr,
            hostname: config.smtp_hostname.clone(),
            tls: match &config.smtp_tls {
                Some((cert_path, key_path)) => TlsSetting::PemFiles {
                    cert_path: cert_path.clone(),
                    key_path: key_path.clone(),
                },
                None => TlsSetting::SelfSigned,
            },
            max_message_size: config.smtp_max_message_size,
            max_connections_per_ip: config.smtp_max_connections_per_ip,
            ..SmtpConfig::default()
        };
        let server = SmtpServer::bind(smtp_config, Arc::new(handler))
            .await
            .context("starting the SMTP listener")?;
        tracing::info!(smtp = %server.local_addr(), "cleanmail smtp listening");
        tasks.push(tokio::spawn(server.run(shutdown.clone())));
    }

    if roles.contains(&Role::Worker) {
        let settings = WorkerSettings {
            hostname: config.smtp_hostname.clone(),
            retry: RetryPolicy {
                initial_delay: config.delivery_initial_retry,
                max_delay: config.delivery_max_retry,
                max_age: config.delivery_max_age,
            },
            outbound_relay: config.outbound_relay.clone(),
            lease: config.job_lease,
            purge_interval: config.purge_interval,
            reports: match config.report_interval {
                Some(_) => Some(report_settings(&config)?),
                None => None,
            },
            report_interval: config.report_interval.unwrap_or_default(),
            ..WorkerSettings::default()
        };
        let worker = Worker::new(
            db.clone(),
            blobs.clone(),
            settings,
            Arc::clone(&notices),
            engine_in_use.unwrap_or_else(|| Arc::new(cleanmail_core::Engine::default())),
        );
        tasks.push(tokio::spawn(worker.run(shutdown.clone())));
    }

    if roles.contains(&Role::Api) {
        let state = cleanmail_api::AppState::builder(db)
            .blobs(Arc::new(ApiBlobs(blobs)))
            .jwt_secret(config.jwt_secret()?)
            .regions(config.regions.clone())
            .default_timezone(config.default_timezone.clone())
            .outbound_relay(config.outbound_relay.is_some())
            .webmail_send_limit(config.webmail_send_limit)
            .job_notifier(Arc::new(ApiNotices(Arc::clone(&notices))))
            .build();
        let app = cleanmail_api::router(state);
        let listener = tokio::net::TcpListener::bind(config.http_addr)
            .await
            .with_context(|| format!("binding HTTP on {}", config.http_addr))?;
        let local = listener.local_addr()?;
        tracing::info!(
            http = %format!("http://{local}"),
            database = %config.database_label(),
            "cleanmail listening: REST /api/v1, GraphQL /graphql, docs /docs"
        );
        let stop = shutdown.clone();
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                shutdown_signal().await;
                stop.cancel();
            })
            .await
            .context("serving HTTP")?;
    } else {
        tracing::info!(database = %config.database_label(), ?roles, "cleanmail running");
        shutdown_signal().await;
    }
    shutdown.cancel();
    for task in tasks {
        let _ = task.await;
    }
    Ok(())
}

/// The configured blob store (a local folder, or an S3-compatible bucket).
fn open_blobs(config: &Config) -> anyhow::Result<BlobStore> {
    let blobs = BlobStore::open(&config.blobs)
        .with_context(|| format!("opening blob store {}", config.blobs))?;
    tracing::info!(blobs = %config.blobs, "blob store");
    Ok(blobs)
}

/// The worker's blob store as the API's [`cleanmail_api::MessageBlobs`].
/// The API wakes the job loops (in this process, or over Redis) after releases and sends.
struct ApiNotices(Arc<JobNotices>);

impl cleanmail_api::JobNotifier for ApiNotices {
    fn committed(&self, kind: &str, count: usize) {
        self.0.committed(kind, count);
    }
}

struct ApiBlobs(BlobStore);

impl cleanmail_api::MessageBlobs for ApiBlobs {
    fn get<'a>(&'a self, key: &'a str) -> futures::future::BoxFuture<'a, Result<Vec<u8>, String>> {
        Box::pin(async move { self.0.get(key).await.map_err(|e| e.to_string()) })
    }

    fn put<'a>(
        &'a self,
        key: &'a str,
        bytes: Vec<u8>,
    ) -> futures::future::BoxFuture<'a, Result<(), String>> {
        Box::pin(async move { self.0.put(key, bytes).await.map_err(|e| e.to_string()) })
    }

    fn delete<'a>(&'a self, key: &'a str) -> futures::future::BoxFuture<'a, Result<(), String>> {
        Box::pin(async move { self.0.delete(key).await.map_err(|e| e.to_string()) })
    }
}

/// The report scheduler's settings (links signed with the platform secret).
fn report_settings(config: &Config) -> anyhow::Result<ReportSettings> {
    Ok(ReportSettings {
        links: cleanmail_core::links::LinkSigner::new(&config.jwt_secret()?),
        public_url: config.public_url.clone(),
        from: format!("Cleanmail <noreply@{}>", config.smtp_hostname),
        hostname: config.smtp_hostname.clone(),
        link_ttl: chrono::Duration::from_std(config.report_link_ttl)
            .context("report_link_ttl_hours is too large")?,
    })
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        if let Ok(mut sig) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            sig.recv().await;
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = terminate => {} }
}

fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("CLEANMAIL_LOG")
        .unwrap_or_else(|_| EnvFilter::new("info,tower_http=info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
