//! Row locks of the job queue on PostgreSQL (`TEST_DATABASE_URL`): the lease heartbeat never
//! waits for a job row a finishing job transaction holds, so the two cannot deadlock.

use std::time::Duration;

use cleanmail_schema::models::Job;
use cleanmail_schema::store::jobs;
use cleanmail_schema::{Db, JobId, Pool, now};
use diesel_async::{AsyncConnection as _, RunQueryDsl as _};

/// A fresh, migrated PostgreSQL database, dropped at the end of the test.
struct PgDb {
    admin: Db,
    name: String,
    db: Db,
}

impl PgDb {
    async fn new(admin_url: &str) -> Self {
        let admin = Db::connect(admin_url).await.unwrap();
        let name = format!(
            "cleanmail_locks_{}_{}",
            std::process::id(),
            now().and_utc().timestamp_nanos_opt().unwrap_or_default() % 1_000_000_000
        );
        execute(&admin, &format!("CREATE DATABASE {name}")).await;
        let base = admin_url.split('?').next().unwrap_or(admin_url);
        let cut = base
            .rfind('/')
            .filter(|&i| i > "postgres://".len())
            .unwrap_or(base.len());
        let db = Db::connect(&format!("{}/{name}", &base[..cut]))
            .await
            .unwrap();
        db.migrate().await.unwrap();
        Self { admin, name, db }
    }

    async fn drop_database(self) {
        let Self { admin, name, db } = self;
        drop(db);
        execute(
            &admin,
            &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
        )
        .await;
    }
}

async fn execute(db: &Db, sql: &str) {
    let Pool::Postgres(pool) = db.pool() else {
        unreachable!("PostgreSQL only")
    };
    let mut conn = pool.get().await.unwrap();
    diesel::sql_query(sql)
        .execute(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

fn job(id: &str) -> Job {
    Job::new(JobId(id.to_owned()), "test", None, "{}".into(), None, now())
}

/// The deadlock seen once: a job transaction had deleted job `a` and was about to delete job
/// `b` while the heartbeat (`UPDATE … WHERE locked_by = $1`, in scan order) had locked `b`
/// and waited for `a`. The heartbeat must now renew what it can without waiting at all.
#[tokio::test]
async fn heartbeat_skips_job_rows_a_transaction_holds_instead_of_waiting() {
    let Ok(admin_url) = std::env::var("TEST_DATABASE_URL") else {
        // Straight to stderr: libtest would capture `eprintln!` of a passing test.
        use std::io::Write as _;
        let _ = writeln!(
            std::io::stderr(),
            "skipped: job row locks on PostgreSQL: set TEST_DATABASE_URL=postgres://…"
        );
        return;
    };
    let pg = PgDb::new(&admin_url).await;
    let db = pg.db.clone();
    // `b` first, so a scan in table order meets it before `a`.
    jobs::enqueue(&db, &[job("b")]).await.unwrap();
    jobs::enqueue(&db, &[job("a")]).await.unwrap();
    let claimed = jobs::claim(&db, &["test"], "w", 10, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(claimed.len(), 2);

    let (holding_tx, holding) = tokio::sync::oneshot::channel::<()>();
    let (go_on_tx, go_on) = tokio::sync::oneshot::channel::<()>();
    let finishing = {
        let db = db.clone();
        tokio::spawn(async move {
            let Pool::Postgres(pool) = db.pool() else {
                unreachable!()
            };
            let mut conn = pool.get().await.unwrap();
            conn.transaction(async |conn| {
                // Both rows in lock order, as `record_ingest` and `store_learned` take them.
                diesel::sql_query("DELETE FROM jobs WHERE id = 'a' AND locked_by = 'w'")
                    .execute(conn)
                    .await?;
                let _ = holding_tx.send(());
                let _ = go_on.await;
                diesel::sql_query("DELETE FROM jobs WHERE id = 'b' AND locked_by = 'w'")
                    .execute(conn)
                    .await?;
                Ok::<_, diesel::result::Error>(())
            })
            .await
        })
    };
    holding.await.unwrap();

    // Before the fix this waited for `a` until the transaction ended (holding `b`, which
    // the transaction wants next: `deadlock detected`).
    let renewed = tokio::time::timeout(
        Duration::from_secs(5),
        jobs::heartbeat(&db, "w", Duration::from_secs(60)),
    )
    .await
    .expect("the heartbeat waited for a job row a transaction holds")
    .unwrap();
    assert_eq!(renewed, 1, "only `b` is free to renew");

    go_on_tx.send(()).unwrap();
    finishing
        .await
        .unwrap()
        .expect("the job transaction finishes");
    assert_eq!(jobs::count(&db, "test").await.unwrap(), 0);
    pg.drop_database().await;
}
