//! Quarantine list benchmark: p50/p99 latency of `store::messages::list` (the function behind
//! `GET /api/v1/quarantine`) with 1,000,000 quarantined rows in PostgreSQL, for the first
//! page and a deep page, per scope.
//!
//! ```text
//! cargo build --release -p cleanmail --examples
//! target/release/examples/quarantine_bench [--db postgres://postgres@127.0.0.1:5432/test]
//!                                          [--rows 1000000] [--iterations 300]
//! ```
//!
//! It creates a fresh database next to the one `--db` names (dropped at the end), migrates
//! it, bulk-loads the rows server-side (`INSERT … SELECT generate_series`: two tenants of one
//! reseller, 90 % / 10 % of the rows, 1,000 users), runs `ANALYZE`, then times each case.

use std::time::{Duration, Instant};

use anyhow::Context;
use cleanmail_schema::store::messages::{self as store, Folder, MessageFilter};
use cleanmail_schema::{Db, PageRequest, ResellerId, Scope, TenantId, UserId};

struct Args {
    db: String,
    rows: i64,
    iterations: usize,
}

fn args() -> Args {
    let mut args = Args {
        db: "postgres://postgres@127.0.0.1:5432/test".to_owned(),
        rows: 1_000_000,
        iterations: 300,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_default();
        match flag.as_str() {
            "--db" => args.db = value,
            "--rows" => args.rows = value.parse().expect("--rows N"),
            "--iterations" => args.iterations = value.parse().expect("--iterations N"),
            other => panic!("unknown flag {other}"),
        }
    }
    args
}

fn with_db_name(url: &str, name: &str) -> String {
    let scheme_end = url.find("://").map_or(0, |i| i + 3);
    let base = match url[scheme_end..].find('/') {
        Some(slash) => &url[..scheme_end + slash],
        None => url,
    };
    format!("{base}/{name}")
}

async fn pg(url: &str) -> anyhow::Result<tokio_postgres::Client> {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .with_context(|| format!("connecting to {url}"))?;
    tokio::spawn(connection);
    Ok(client)
}

const LOAD: &str = r#"
INSERT INTO resellers VALUES ('r1', 'Bench reseller', NULL, now(), now());
INSERT INTO tenants VALUES ('t1', 'r1', 'Big tenant', 'ch', 'Europe/Zurich', now(), now()),
                           ('t2', 'r1', 'Small tenant', 'ch', 'Europe/Zurich', now(), now());
INSERT INTO domains VALUES ('d1', 't1', 'big.example', 'live', '127.0.0.1:25', now(), now()),
                           ('d2', 't2', 'small.example', 'live', '127.0.0.1:25', now(), now());
INSERT INTO address_claims
    SELECT 'user' || g || CASE WHEN g <= 900 THEN '@big.example' ELSE '@small.example' END,
           CASE WHEN g <= 900 THEN 't1' ELSE 't2' END, 'user'
    FROM generate_series(1, 1000) g;
INSERT INTO users
    SELECT 'u' || g, CASE WHEN g <= 900 THEN 't1' ELSE 't2' END,
           CASE WHEN g <= 900 THEN 'd1' ELSE 'd2' END,
           'user' || g || CASE WHEN g <= 900 THEN '@big.example' ELSE '@small.example' END,
           'User ' || g, 'user', 'en', 'active', NULL, now(), now()
    FROM generate_series(1, 1000) g;
"#;

/// Rows `from..=to`: message `g` goes to user `g % 1000 + 1`, one second apart, newest last.
fn load_messages(from: i64, to: i64) -> String {
    format!(
        r#"
INSERT INTO message_log
    SELECT 'l' || lpad(g::text, 8, '0'), CASE WHEN g % 1000 < 900 THEN 't1' ELSE 't2' END,
           'sender' || (g % 5000) || '@spam' || (g % 97) || '.example', '[]', '192.0.2.1', 'helo', true,
           'Sender <sender' || (g % 5000) || '@spam.example>', 'Offer number ' || g, '<' || g || '@x>',
           2048, 5 + (g % 50), 'spam', '{{}}', '[]', 'quarantined', 0, NULL, 'blob/' || g,
           timestamp '2026-01-01' + g * interval '1 second', now()
    FROM generate_series({from}, {to}) g;
INSERT INTO messages
    SELECT 'm' || lpad(g::text, 8, '0'), CASE WHEN g % 1000 < 900 THEN 't1' ELSE 't2' END,
           CASE WHEN g % 1000 < 900 THEN 'd1' ELSE 'd2' END, 'u' || (g % 1000 + 1),
           'l' || lpad(g::text, 8, '0'),
           'user' || (g % 1000 + 1) || CASE WHEN g % 1000 < 900 THEN '@big.example' ELSE '@small.example' END,
           'sender' || (g % 5000) || '@spam' || (g % 97) || '.example', '[]',
           'Sender <sender' || (g % 5000) || '@spam.example>', 'Offer number ' || g, '<' || g || '@x>',
           2048, 5 + (g % 50), CASE WHEN g % 10 = 0 THEN 'phishing' ELSE 'spam' END, 'quarantine',
           '{{"symbols":[]}}', 'quarantined', 'blob/' || g, NULL,
           timestamp '2026-01-01' + g * interval '1 second',
           timestamp '2026-01-01' + g * interval '1 second' + interval '30 days', now()
    FROM generate_series({from}, {to}) g;
"#
    )
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index]
}

/// Times `iterations` calls of one list; prints p50, p99 and max in milliseconds.
async fn time_case(
    db: &Db,
    name: &str,
    scope: &Scope,
    filter: &MessageFilter,
    page: &PageRequest,
    iterations: usize,
) -> anyhow::Result<()> {
    let first = store::list(db, scope, filter, page).await?;
    anyhow::ensure!(!first.items.is_empty(), "{name}: empty page");
    let mut times = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let start = Instant::now();
        let listed = store::list(db, scope, filter, page).await?;
        times.push(start.elapsed());
        std::hint::black_box(listed);
    }
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "| {name} | {} | {:.2} | {:.2} | {:.2} |",
        first.items.len(),
        ms(percentile(&times, 0.5)),
        ms(percentile(&times, 0.99)),
        ms(*times.last().unwrap()),
    );
    Ok(())
}

/// The cursor of the `depth`-th newest row of a list (the `after` of a deep page).
async fn cursor_at(
    db: &Db,
    scope: &Scope,
    filter: &MessageFilter,
    depth: i64,
) -> anyhow::Result<String> {
    // Walk with the maximal page size, as a client paging through would.
    let mut page = PageRequest {
        after: None,
        limit: None,
    };
    let mut seen = 0;
    loop {
        page.limit = Some((depth - seen).min(PageRequest::MAX_LIMIT));
        let listed = store::list(db, scope, filter, &page).await?;
        seen += listed.items.len() as i64;
        match listed.next_cursor {
            Some(cursor) if seen < depth => page.after = Some(cursor),
            Some(cursor) => return Ok(cursor),
            None => anyhow::bail!("fewer than {depth} rows"),
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = args();
    let name = format!("cleanmail_bench_{}", std::process::id());
    let admin = pg(&args.db).await?;
    admin
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await?;
    let url = with_db_name(&args.db, &name);
    let result = run(&args, &url).await;
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .await?;
    result
}

async fn run(args: &Args, url: &str) -> anyhow::Result<()> {
    let db = Db::connect(url).await?;
    db.migrate().await?;
    let client = pg(url).await?;
    let started = Instant::now();
    client.batch_execute(LOAD).await?;
    let chunk = 200_000;
    let mut from = 1;
    while from <= args.rows {
        let to = (from + chunk - 1).min(args.rows);
        client.batch_execute(&load_messages(from, to)).await?;
        from = to + 1;
    }
    client.batch_execute("ANALYZE").await?;
    for row in client
        .query(
            "EXPLAIN ANALYZE SELECT id FROM messages WHERE tenant_id = 't1' AND state = 'quarantined' \
             ORDER BY received_at DESC, id DESC LIMIT 51",
            &[],
        )
        .await?
    {
        eprintln!("{}", row.get::<_, String>(0));
    }
    eprintln!(
        "loaded {} quarantined rows in {:.1} s",
        args.rows,
        started.elapsed().as_secs_f64()
    );

    let reseller = ResellerId("r1".to_owned());
    let tenant = Scope::Tenant {
        reseller_id: reseller.clone(),
        tenant_id: TenantId("t1".to_owned()),
    };
    let user = Scope::User {
        reseller_id: reseller.clone(),
        tenant_id: TenantId("t1".to_owned()),
        user_id: UserId("u42".to_owned()),
    };
    let reseller = Scope::Reseller {
        reseller_id: reseller,
    };
    let quarantine = MessageFilter {
        folder: Some(Folder::Quarantine),
        ..MessageFilter::default()
    };
    let phishing = MessageFilter {
        category: Some("phishing".to_owned()),
        ..quarantine.clone()
    };
    let first = PageRequest {
        after: None,
        limit: Some(50),
    };
    let deep = |after: String| PageRequest {
        after: Some(after),
        limit: Some(50),
    };
    println!("| case | rows on page | p50 ms | p99 ms | max ms |");
    println!("|---|---|---|---|---|");
    let n = args.iterations;
    time_case(
        &db,
        "tenant admin (900k rows), first page",
        &tenant,
        &quarantine,
        &first,
        n,
    )
    .await?;
    let tenant_deep = cursor_at(&db, &tenant, &quarantine, 450_000).await?;
    time_case(
        &db,
        "tenant admin, page at row 450,000",
        &tenant,
        &quarantine,
        &deep(tenant_deep),
        n,
    )
    .await?;
    time_case(
        &db,
        "tenant admin, category = phishing, first page",
        &tenant,
        &phishing,
        &first,
        n,
    )
    .await?;
    time_case(
        &db,
        "user (1,000 rows), first page",
        &user,
        &quarantine,
        &first,
        n,
    )
    .await?;
    let user_deep = cursor_at(&db, &user, &quarantine, 900).await?;
    time_case(
        &db,
        "user, page at row 900",
        &user,
        &quarantine,
        &deep(user_deep),
        n,
    )
    .await?;
    time_case(
        &db,
        "reseller (2 tenants, 1M rows), first page",
        &reseller,
        &quarantine,
        &first,
        n,
    )
    .await?;
    let reseller_deep = cursor_at(&db, &reseller, &quarantine, 500_000).await?;
    time_case(
        &db,
        "reseller, page at row 500,000",
        &reseller,
        &quarantine,
        &deep(reseller_deep),
        n,
    )
    .await?;
    time_case(
        &db,
        "platform operator (1M rows), first page",
        &Scope::Platform,
        &quarantine,
        &first,
        n,
    )
    .await?;
    let platform_deep = cursor_at(&db, &Scope::Platform, &quarantine, 500_000).await?;
    time_case(
        &db,
        "platform operator, page at row 500,000",
        &Scope::Platform,
        &quarantine,
        &deep(platform_deep),
        n,
    )
    .await?;
    Ok(())
}
