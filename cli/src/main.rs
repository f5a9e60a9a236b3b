//! The `cleanmail` binary: one process that serves the API (and, as they land, SMTP and the
//! workers), plus operator commands.

mod config;
mod eval;
mod train;

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};

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
    /// Run the platform: HTTP API (REST, GraphQL, docs) in one process.
    Serve {
        /// Address for the HTTP API (default `127.0.0.1:8080`).
        #[arg(long = "http", env = "CLEANMAIL_HTTP_ADDR")]
        http_addr: Option<SocketAddr>,
        /// Address for the inbound SMTP listener (default `127.0.0.1:2525`).
        #[arg(long = "smtp", env = "CLEANMAIL_SMTP_ADDR")]
        smtp_addr: Option<SocketAddr>,
    },
    /// Create or upgrade the database schema, then exit.
    Migrate,
    /// Print the OpenAPI document (JSON) to stdout.
    Openapi,
    /// Print the GraphQL schema (SDL) to stdout.
    GraphqlSchema,
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
        Command::Serve { .. } => {
            init_tracing();
            serve(config).await
        }
        Command::Migrate => {
            init_tracing();
            let db = cleanmail_schema::Db::connect(&config.database_url()).await?;
            db.migrate().await?;
            tracing::info!(database = %config.database_label(), "schema up to date");
            Ok(())
        }
        Command::Openapi => {
            println!("{}", cleanmail_api::openapi_json());
            Ok(())
        }
        Command::GraphqlSchema => {
            print!("{}", cleanmail_api::graphql_sdl());
            Ok(())
        }
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
        Command::Eval { .. } | Command::Train { .. } => unreachable!("handled before the runtime"),
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating data dir {}", config.data_dir.display()))?;
    let db = cleanmail_schema::Db::connect(&config.database_url()).await?;
    db.migrate().await.context("migrating the database")?;
    let state = cleanmail_api::AppState::builder(db)
        .jwt_secret(config.jwt_secret()?)
        .regions(config.regions.clone())
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
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("serving HTTP")
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
