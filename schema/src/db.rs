//! Connection pools for both backends, the `with_conn!` dispatch that lets one query body
//! serve both, and the embedded migrations.

use std::sync::Arc;

use diesel::sqlite::SqliteConnection;
use diesel_async::AsyncPgConnection;
use diesel_async::SimpleAsyncConnection;
use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
use diesel_async::pooled_connection::deadpool::Pool as Deadpool;
use diesel_async::pooled_connection::{AsyncDieselConnectionManager, ManagerConfig};
use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use crate::StoreError;

const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../migrations/postgres");
const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../migrations/sqlite");

/// Connection-level settings of every SQLite connection.
const SQLITE_PRAGMAS: &str = "PRAGMA foreign_keys = ON; PRAGMA journal_mode = WAL; \
     PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 10000;";

/// An SQLite connection usable from async code.
pub type SqliteAsync = SyncConnectionWrapper<SqliteConnection>;

/// Which database engine a [`Db`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

/// The pool of one backend.
#[derive(Clone)]
pub enum Pool {
    Postgres(Deadpool<AsyncPgConnection>),
    Sqlite(Deadpool<SqliteAsync>),
}

/// A handle on the database: cheap to clone.
#[derive(Clone)]
pub struct Db {
    inner: Arc<Inner>,
}

struct Inner {
    pool: Pool,
    url: String,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db")
            .field("backend", &self.backend())
            .finish()
    }
}

impl Db {
    /// Opens a pool for `postgres://…` / `postgresql://…`, or an SQLite file for
    /// `sqlite://path`, `sqlite:path` or a plain path (created with its folder if missing).
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let pool = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let manager = AsyncDieselConnectionManager::<AsyncPgConnection>::new(url);
            Pool::Postgres(
                Deadpool::builder(manager)
                    .max_size(16)
                    .build()
                    .map_err(StoreError::pool_error)?,
            )
        } else {
            let path = sqlite_path(url);
            if let Some(parent) = std::path::Path::new(&path).parent()
                && !parent.as_os_str().is_empty()
            {
                std::fs::create_dir_all(parent).map_err(|e| {
                    StoreError::Unavailable(format!("creating {}: {e}", parent.display()))
                })?;
            }
            let mut config = ManagerConfig::<SqliteAsync>::default();
            config.custom_setup = Box::new(|url| {
                let url = url.to_owned();
                Box::pin(async move {
                    let mut conn =
                        <SqliteAsync as diesel_async::AsyncConnection>::establish(&url).await?;
                    conn.batch_execute(SQLITE_PRAGMAS)
                        .await
                        .map_err(diesel::ConnectionError::CouldntSetupConfiguration)?;
                    Ok(conn)
                })
            });
            let manager =
                AsyncDieselConnectionManager::<SqliteAsync>::new_with_config(path, config);
            // One connection: SQLite has one writer anyway, and a single connection cannot
            // deadlock on lock upgrades between concurrent transactions.
            Pool::Sqlite(
                Deadpool::builder(manager)
                    .max_size(1)
                    .build()
                    .map_err(StoreError::pool_error)?,
            )
        };
        Ok(Self {
            inner: Arc::new(Inner {
                pool,
                url: url.to_owned(),
            }),
        })
    }

    /// The backend behind this handle.
    pub fn backend(&self) -> Backend {
        match self.inner.pool {
            Pool::Postgres(_) => Backend::Postgres,
            Pool::Sqlite(_) => Backend::Sqlite,
        }
    }

    /// The pool, for the `with_conn!` dispatch.
    pub fn pool(&self) -> &Pool {
        &self.inner.pool
    }

    /// Applies every pending embedded migration of this backend, then refreshes the
    /// built-in policies from the code.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        self.run_migrations().await?;
        crate::store::policies::sync_builtins(self).await
    }

    async fn run_migrations(&self) -> Result<(), StoreError> {
        let url = self.inner.url.clone();
        let backend = self.backend();
        tokio::task::spawn_blocking(move || -> Result<(), StoreError> {
            let fail = |e: Box<dyn std::error::Error + Send + Sync>| {
                StoreError::Unavailable(format!("migrating: {e}"))
            };
            match backend {
                Backend::Postgres => {
                    let mut conn = <AsyncConnectionWrapper<AsyncPgConnection> as diesel::Connection>::establish(&url)
                        .map_err(|e| StoreError::Unavailable(e.to_string()))?;
                    conn.run_pending_migrations(POSTGRES_MIGRATIONS).map_err(fail)?;
                }
                Backend::Sqlite => {
                    let mut conn =
                        <SqliteConnection as diesel::Connection>::establish(&sqlite_path(&url))
                            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
                    diesel::connection::SimpleConnection::batch_execute(&mut conn, SQLITE_PRAGMAS)?;
                    conn.run_pending_migrations(SQLITE_MIGRATIONS).map_err(fail)?;
                }
            }
            Ok(())
        })
        .await
        .map_err(|e| StoreError::Unavailable(format!("migration task: {e}")))?
    }

    /// Checks that the database answers (readiness).
    pub async fn ping(&self) -> Result<(), StoreError> {
        crate::db::with_conn!(self, conn => {
            conn.batch_execute("SELECT 1").await?;
            Ok(())
        })
    }
}

fn sqlite_path(url: &str) -> String {
    url.strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url)
        .to_owned()
}

/// Runs `$body` with `$conn` bound to a pooled connection of whichever backend `$db` uses.
/// The body is compiled once per backend, so one query text serves both.
macro_rules! with_conn {
    ($db:expr, $conn:ident => $body:expr) => {{
        #[allow(unused_imports)]
        use diesel_async::{AsyncConnection as _, RunQueryDsl as _, SimpleAsyncConnection as _};
        match $db.pool() {
            $crate::Pool::Postgres(pool) => {
                let mut pooled = pool.get().await.map_err($crate::StoreError::pool_error)?;
                let $conn: &mut diesel_async::AsyncPgConnection = &mut pooled;
                $body
            }
            $crate::Pool::Sqlite(pool) => {
                let mut pooled = pool.get().await.map_err($crate::StoreError::pool_error)?;
                let $conn: &mut $crate::db::SqliteAsync = &mut pooled;
                $body
            }
        }
    }};
}
pub(crate) use with_conn;
