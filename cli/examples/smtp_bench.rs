//! SMTP ingest benchmark: durable acceptance rate and 250 → downstream latency.
//!
//! ```text
//! cargo build --release -p cleanmail --examples --bins
//! target/release/examples/smtp_bench [--db postgres://...] [--messages 5000] [--connections 32]
//!                                    [--rate 100] [--latency-messages 2000]
//! ```
//!
//! It starts the release `cleanmail serve` next to itself (own temp data dir; SQLite unless
//! `--db` names a PostgreSQL server database to create a fresh database in), a downstream
//! sink in-process, creates one tenant/domain/user over the API, then:
//!
//! 1. throughput: `--connections` sessions each send messages back to back over raw SMTP;
//!    every `250` means blob written and fsynced and ingest job committed;
//! 2. latency: messages at `--rate` per second on a few sessions; for each, the time from
//!    the `250` to its arrival at the sink.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use cleanmail_worker::smtp::{
    DataDecision, Envelope, RcptDecision, SessionInfo, SmtpConfig, SmtpHandler, SmtpServer,
};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// The downstream: records when each Message-ID arrived.
#[derive(Default)]
struct TimingSink {
    arrived: Mutex<HashMap<String, Instant>>,
}

impl SmtpHandler for TimingSink {
    async fn check_recipient(&self, _session: &SessionInfo, _rcpt: &str) -> RcptDecision {
        RcptDecision::Accept
    }

    async fn receive(&self, _envelope: Envelope, message: Vec<u8>) -> DataDecision {
        let now = Instant::now();
        if let Some(id) = message_id(&message) {
            self.arrived.lock().unwrap().insert(id, now);
        }
        DataDecision::Accept {
            queue_id: "x".to_owned(),
        }
    }
}

fn message_id(message: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(&message[..message.len().min(8192)]);
    text.lines()
        .find(|l| l.to_ascii_lowercase().starts_with("message-id:"))
        .map(|l| l[11..].trim().trim_matches(['<', '>']).to_owned())
}

struct Args {
    db: Option<String>,
    messages: usize,
    connections: usize,
    rate: u64,
    latency_messages: usize,
}

fn args() -> anyhow::Result<Args> {
    let mut args = Args {
        db: None,
        messages: 5000,
        connections: 32,
        rate: 100,
        latency_messages: 2000,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().context("flag without value")?;
        match flag.as_str() {
            "--db" => args.db = Some(value),
            "--messages" => args.messages = value.parse()?,
            "--connections" => args.connections = value.parse()?,
            "--rate" => args.rate = value.parse()?,
            "--latency-messages" => args.latency_messages = value.parse()?,
            other => bail!("unknown flag {other}"),
        }
    }
    Ok(args)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let args = args()?;
    let exe = std::env::current_exe()?;
    let bin = exe
        .parent()
        .and_then(|p| p.parent())
        .context("locating target dir")?
        .join("cleanmail");
    let data = tempfile::tempdir()?;

    // Database: SQLite in the temp dir, or a fresh PostgreSQL database.
    let (url, pg_drop) = match &args.db {
        Some(admin_url) => {
            let name = format!("cleanmail_bench_{}", std::process::id());
            pg(admin_url, &format!("CREATE DATABASE {name}")).await?;
            let base = admin_url
                .rsplit_once('/')
                .map_or(admin_url.as_str(), |(b, _)| b);
            (format!("{base}/{name}"), Some((admin_url.clone(), name)))
        }
        None => (
            format!("sqlite://{}", data.path().join("cleanmail.db").display()),
            None,
        ),
    };

    let sink = Arc::new(TimingSink::default());
    let sink_server = SmtpServer::bind(
        SmtpConfig {
            max_connections_per_ip: 10_000,
            max_connections: 10_000,
            tls: cleanmail_worker::smtp::TlsSetting::Disabled,
            ..SmtpConfig::for_tests()
        },
        Arc::clone(&sink),
    )
    .await?;
    let sink_addr = sink_server.local_addr();
    let stop = tokio_util::sync::CancellationToken::new();
    tokio::spawn(sink_server.run(stop.clone()));

    let admin = Command::new(&bin)
        .args(["admin", "create", "--email", "bench@platform.test"])
        .env("DATABASE_URL", &url)
        .env("CLEANMAIL_DATA_DIR", data.path())
        .output()?;
    anyhow::ensure!(admin.status.success(), "admin create failed");
    let key = String::from_utf8(admin.stdout)?
        .lines()
        .last()
        .unwrap_or_default()
        .trim()
        .to_owned();

    let mut child = Command::new(&bin)
        .args(["serve", "--http", "127.0.0.1:0", "--smtp", "127.0.0.1:0"])
        .env("DATABASE_URL", &url)
        .env("CLEANMAIL_DATA_DIR", data.path())
        .env("CLEANMAIL_LOG", "info")
        .env("CLEANMAIL_SMTP_MAX_CONNECTIONS_PER_IP", "1000")
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    let stderr = child.stderr.take().context("stderr")?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead as _;
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if let Some(at) = line.find("smtp=") {
                let _ = tx.send((
                    true,
                    line[at + 5..]
                        .split_whitespace()
                        .next()
                        .unwrap_or("")
                        .to_owned(),
                ));
            } else if let Some(at) = line.find("http://") {
                let _ = tx.send((
                    false,
                    line[at..]
                        .split_whitespace()
                        .next()
                        .unwrap_or("")
                        .to_owned(),
                ));
            } else if line.contains("WARN") || line.contains("ERROR") {
                eprintln!("server: {line}");
            }
        }
    });
    let (mut http, mut smtp) = (None, None);
    while http.is_none() || smtp.is_none() {
        match rx.recv_timeout(Duration::from_secs(60))? {
            (true, addr) => smtp = Some(addr.parse::<SocketAddr>()?),
            (false, addr) => http = Some(addr),
        }
    }
    let (http, smtp) = (http.unwrap_or_default(), smtp.context("smtp")?);

    // One tenant, domain (delivering to the sink) and user.
    let client = reqwest::Client::new();
    let post = |path: &str, body: Value| {
        let request = client
            .post(format!("{http}{path}"))
            .bearer_auth(&key)
            .json(&body);
        async move {
            let response: Value = request.send().await?.json().await?;
            Ok::<String, anyhow::Error>(response["id"].as_str().context("id")?.to_owned())
        }
    };
    let reseller = post("/api/v1/resellers", json!({"name": "Bench"})).await?;
    let tenant = post(
        "/api/v1/tenants",
        json!({"reseller_id": reseller, "name": "Bench", "region": "ch"}),
    )
    .await?;
    let domain = post(
        "/api/v1/domains",
        json!({"tenant_id": tenant, "name": "bench.example", "destination": sink_addr.to_string(), "state": "live"}),
    )
    .await?;
    post(
        "/api/v1/users",
        json!({"domain_id": domain, "address": "user@bench.example", "display_name": "User"}),
    )
    .await?;

    let body = "Hello,\r\n\r\nthe quarterly figures are attached below as plain text, as agreed on Monday.\r\n"
        .repeat(20);

    // 1. Throughput.
    let started = Instant::now();
    let per_connection = args.messages / args.connections;
    let mut tasks = Vec::new();
    for c in 0..args.connections {
        let body = body.clone();
        tasks.push(tokio::spawn(async move {
            let mut session = Session::open(smtp).await?;
            let mut ok = 0usize;
            for n in 0..per_connection {
                if session
                    .send(&format!("tp-{c}-{n}@bench.client"), &body)
                    .await?
                    .starts_with("250")
                {
                    ok += 1;
                }
            }
            session.quit().await;
            Ok::<usize, anyhow::Error>(ok)
        }));
    }
    let mut accepted = 0;
    for task in tasks {
        accepted += task.await??;
    }
    let elapsed = started.elapsed();
    let backend = if args.db.is_some() {
        "postgres"
    } else {
        "sqlite"
    };
    println!(
        "{backend}: throughput: {accepted} of {} messages accepted (250) over {} connections in {:.2} s: {:.0} msg/s",
        per_connection * args.connections,
        args.connections,
        elapsed.as_secs_f64(),
        accepted as f64 / elapsed.as_secs_f64()
    );
    // Let the backlog drain before measuring latency.
    let drain_started = Instant::now();
    while sink.arrived.lock().unwrap().len() < accepted
        && drain_started.elapsed() < Duration::from_secs(300)
    {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!(
        "{backend}: backlog delivered downstream {:.2} s after the last 250 ({} of {accepted})",
        drain_started.elapsed().as_secs_f64(),
        sink.arrived.lock().unwrap().len()
    );

    // 2. Latency at a fixed rate over 4 sessions.
    let sessions = 4;
    let interval = Duration::from_secs_f64(sessions as f64 / args.rate as f64);
    let acks: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let mut tasks = Vec::new();
    for c in 0..sessions {
        let body = body.clone();
        let acks = Arc::clone(&acks);
        let count = args.latency_messages / sessions;
        tasks.push(tokio::spawn(async move {
            let mut session = Session::open(smtp).await?;
            let mut ticker = tokio::time::interval(interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tokio::time::sleep(interval.mul_f64(c as f64 / sessions as f64)).await;
            for n in 0..count {
                ticker.tick().await;
                let id = format!("lat-{c}-{n}@bench.client");
                if session.send(&id, &body).await?.starts_with("250") {
                    acks.lock().unwrap().insert(id, Instant::now());
                }
            }
            session.quit().await;
            Ok::<(), anyhow::Error>(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    let expected = acks.lock().unwrap().len();
    let wait = Instant::now();
    loop {
        let arrived = sink.arrived.lock().unwrap();
        let done = acks
            .lock()
            .unwrap()
            .keys()
            .filter(|id| arrived.contains_key(*id))
            .count();
        if done >= expected || wait.elapsed() > Duration::from_secs(60) {
            break;
        }
        drop(arrived);
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut latencies: Vec<f64> = {
        let arrived = sink.arrived.lock().unwrap();
        acks.lock()
            .unwrap()
            .iter()
            .filter_map(|(id, ack)| {
                arrived
                    .get(id)
                    .map(|at| at.saturating_duration_since(*ack).as_secs_f64() * 1000.0)
            })
            .collect()
    };
    latencies.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        latencies[((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len()) - 1]
    };
    println!(
        "{backend}: latency 250 -> downstream at {} msg/s: {} of {expected} delivered, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        args.rate,
        latencies.len(),
        pct(0.50),
        pct(0.99),
        pct(1.0)
    );

    let _ = child.kill();
    let _ = child.wait();
    stop.cancel();
    if let Some((admin_url, name)) = pg_drop {
        pg(
            &admin_url,
            &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
        )
        .await?;
    }
    Ok(())
}

async fn pg(url: &str, sql: &str) -> anyhow::Result<()> {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    let handle = tokio::spawn(connection);
    client.batch_execute(sql).await?;
    drop(client);
    let _ = handle.await;
    Ok(())
}

/// A raw SMTP session that sends one message after another.
struct Session {
    reader: BufReader<tokio::net::tcp::OwnedReadHalf>,
    writer: tokio::net::tcp::OwnedWriteHalf,
}

impl Session {
    async fn open(addr: SocketAddr) -> anyhow::Result<Self> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let (read, writer) = stream.into_split();
        let mut session = Self {
            reader: BufReader::new(read),
            writer,
        };
        session.reply().await?;
        session.writer.write_all(b"EHLO bench.client\r\n").await?;
        session.reply().await?;
        Ok(session)
    }

    async fn reply(&mut self) -> anyhow::Result<String> {
        loop {
            let mut line = String::new();
            if self.reader.read_line(&mut line).await? == 0 {
                bail!("connection closed");
            }
            if line.len() < 4 || line.as_bytes()[3] != b'-' {
                return Ok(line.trim_end().to_owned());
            }
        }
    }

    /// MAIL, RCPT and DATA pipelined, then the message; the reply to the final dot.
    async fn send(&mut self, message_id: &str, body: &str) -> anyhow::Result<String> {
        self.writer
            .write_all(
                b"MAIL FROM:<sender@bench.client>\r\nRCPT TO:<user@bench.example>\r\nDATA\r\n",
            )
            .await?;
        for _ in 0..3 {
            let reply = self.reply().await?;
            if !(reply.starts_with("250") || reply.starts_with("354")) {
                bail!("refused: {reply}");
            }
        }
        let message = format!(
            "From: Sender <sender@bench.client>\r\nTo: User <user@bench.example>\r\nSubject: Quarterly figures\r\n\
             Date: Sun, 29 Nov 2026 10:00:00 +0100\r\nMessage-ID: <{message_id}>\r\nMIME-Version: 1.0\r\n\
             Content-Type: text/plain; charset=utf-8\r\n\r\n{body}.\r\n"
        );
        self.writer.write_all(message.as_bytes()).await?;
        self.reply().await
    }

    async fn quit(mut self) {
        let _ = self.writer.write_all(b"QUIT\r\n").await;
        let _ = self.reply().await;
    }
}
