//! Test harness: throwaway databases, the real binary as a child process, an HTTP client.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, Once};
use std::time::Duration;

use serde_json::{Value, json};

pub const BIN: &str = env!("CARGO_BIN_EXE_cleanmail");

/// A database backend the suite runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Says that a suite was skipped and why, on the real stderr: libtest captures the output
/// of `println!`/`eprintln!` in passing tests, and a skip must be seen without
/// `--nocapture`.
pub fn skipped(reason: &str) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "skipped: {reason}");
}

/// SQLite always; PostgreSQL too when `TEST_DATABASE_URL` is set.
pub fn backends() -> Vec<Backend> {
    static SKIP_NOTICE: Once = Once::new();
    match std::env::var("TEST_DATABASE_URL") {
        Ok(url) if !url.trim().is_empty() => vec![Backend::Sqlite, Backend::Postgres],
        _ => {
            SKIP_NOTICE.call_once(|| {
                skipped("PostgreSQL suites: TEST_DATABASE_URL is not set (running on SQLite only)");
            });
            vec![Backend::Sqlite]
        }
    }
}

/// A fresh, empty database; PostgreSQL ones are dropped on `Drop`.
pub struct TestDb {
    pub url: String,
    postgres: Option<(String, String)>,
}

impl TestDb {
    pub async fn new(backend: Backend, dir: &Path) -> Self {
        match backend {
            Backend::Sqlite => Self {
                url: format!("sqlite://{}", dir.join("cleanmail.db").display()),
                postgres: None,
            },
            Backend::Postgres => {
                let admin_url = std::env::var("TEST_DATABASE_URL").expect("TEST_DATABASE_URL");
                let name = format!("cleanmail_test_{}", uuid_like());
                pg_exec(&admin_url, &format!("CREATE DATABASE {name}")).await;
                let url = replace_db_name(&admin_url, &name);
                Self {
                    url,
                    postgres: Some((admin_url, name)),
                }
            }
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((admin_url, name)) = self.postgres.take() {
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(pg_exec(
                    &admin_url,
                    &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
                ));
            })
            .join();
        }
    }
}

async fn pg_exec(url: &str, sql: &str) {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("connecting to TEST_DATABASE_URL: {e}"));
    let handle = tokio::spawn(connection);
    client
        .batch_execute(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    drop(client);
    let _ = handle.await;
}

fn replace_db_name(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let base = match base[scheme_end..].find('/') {
        Some(slash) => &base[..scheme_end + slash],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "{}_{}_{}",
        std::process::id(),
        nanos % 1_000_000_000,
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// A running `cleanmail serve` on its own database and data dir.
pub struct Server {
    child: Child,
    pub base: String,
    /// The SMTP listener's address.
    pub smtp: std::net::SocketAddr,
    pub db: TestDb,
    pub data_dir: tempfile::TempDir,
    env: Vec<(String, String)>,
    log: Arc<Mutex<Vec<String>>>,
}

/// Settings every test server gets: short delivery retries and job leases.
const TEST_ENV: &[(&str, &str)] = &[
    ("CLEANMAIL_DELIVERY_INITIAL_RETRY_MS", "300"),
    ("CLEANMAIL_DELIVERY_MAX_RETRY_MS", "1000"),
    ("CLEANMAIL_JOB_LEASE_SECS", "3"),
    ("CLEANMAIL_SMTP_HOSTNAME", "mx.cleanmail.test"),
];

impl Server {
    pub async fn start(backend: Backend) -> Self {
        Self::start_with(backend, &[]).await
    }

    /// Starts a server with extra environment variables.
    pub async fn start_with(backend: Backend, env: &[(&str, &str)]) -> Self {
        let data_dir = tempfile::tempdir().unwrap();
        let db = TestDb::new(backend, data_dir.path()).await;
        let env: Vec<(String, String)> = TEST_ENV
            .iter()
            .chain(env)
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (child, base, smtp) = spawn(&db.url, data_dir.path(), &env, &log);
        Self {
            child,
            base,
            smtp,
            db,
            data_dir,
            env,
            log,
        }
    }

    /// Kills the process with SIGKILL (no shutdown at all) and starts it again on the same
    /// database and data dir; the listeners get new ports.
    pub fn kill_and_restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let (child, base, smtp) = spawn(&self.db.url, self.data_dir.path(), &self.env, &self.log);
        self.child = child;
        self.base = base;
        self.smtp = smtp;
    }

    /// Like [`Server::kill_and_restart`], with `env` in place of the extra environment
    /// variables the server was started with.
    pub fn restart_with(&mut self, env: &[(&str, &str)]) {
        self.env = TEST_ENV
            .iter()
            .chain(env)
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        self.kill_and_restart();
    }

    /// Starts another `cleanmail serve --role worker` on this server's database and data dir
    /// (the same settings plus `env`), and waits until its job loops run.
    pub fn start_worker(&self, env: &[(&str, &str)]) -> WorkerProcess {
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut child = Command::new(BIN)
            .args(["serve", "--role", "worker"])
            .env("DATABASE_URL", &self.db.url)
            .env("CLEANMAIL_DATA_DIR", self.data_dir.path())
            .env("CLEANMAIL_LOG", "info")
            .env("NO_COLOR", "1")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .envs(env.iter().copied())
            .env_remove("CLEANMAIL_ROLE")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting cleanmail serve --role worker");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if strip_ansi(&line).contains("job worker started") {
                    let _ = tx.send(());
                }
                sink.lock().unwrap().push(line);
            }
        });
        if rx.recv_timeout(Duration::from_secs(60)).is_err() {
            let _ = child.kill();
            panic!(
                "worker did not start; log:\n{}",
                log.lock().unwrap().join("\n")
            );
        }
        WorkerProcess { child, log }
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// Runs `cleanmail admin create` against this server's database and returns the key.
    pub fn admin_key(&self, email: &str) -> String {
        let out = self.cli(&["admin", "create", "--email", email]);
        assert!(
            out.status.success(),
            "admin create failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8(out.stdout).unwrap();
        stdout.lines().last().unwrap().trim().to_owned()
    }

    /// Runs the binary with this server's database and data dir.
    pub fn cli(&self, args: &[&str]) -> std::process::Output {
        Command::new(BIN)
            .args(args)
            .env("DATABASE_URL", &self.db.url)
            .env("CLEANMAIL_DATA_DIR", self.data_dir.path())
            .output()
            .unwrap()
    }

    pub fn client(&self, token: &str) -> Client {
        Client {
            http: reqwest::Client::new(),
            base: self.base.clone(),
            token: Some(token.to_owned()),
        }
    }

    /// Gives a user a password through `admin` and logs them in.
    pub async fn login_user(&self, admin: &Client, user_id: &str, address: &str) -> Client {
        admin
            .patch(
                &format!("/api/v1/users/{user_id}"),
                json!({ "password": "correct horse battery" }),
            )
            .await
            .expect(200);
        let login = self
            .anonymous()
            .post(
                "/api/v1/auth/login",
                json!({ "email": address, "password": "correct horse battery" }),
            )
            .await
            .expect(200);
        self.client(login.body["access_token"].as_str().unwrap())
    }

    /// A client holding a new API key that `admin` creates with `scope`
    /// (`{"name", "reseller_id"}` or `{"name", "tenant_id"}`).
    pub async fn api_key_client(&self, admin: &Client, scope: Value) -> Client {
        let key = admin.post("/api/v1/api-keys", scope).await.expect(201).body["secret"]
            .as_str()
            .unwrap()
            .to_owned();
        self.client(&key)
    }

    pub fn anonymous(&self) -> Client {
        Client {
            http: reqwest::Client::new(),
            base: self.base.clone(),
            token: None,
        }
    }
}

/// Starts `cleanmail serve` and waits for its HTTP and SMTP addresses.
fn spawn(
    url: &str,
    data_dir: &Path,
    env: &[(String, String)],
    log: &Arc<Mutex<Vec<String>>>,
) -> (Child, String, std::net::SocketAddr) {
    let mut child = Command::new(BIN)
        .args(["serve", "--http", "127.0.0.1:0", "--smtp", "127.0.0.1:0"])
        .env("DATABASE_URL", url)
        .env("CLEANMAIL_DATA_DIR", data_dir)
        .env("CLEANMAIL_LOG", "info")
        .env("NO_COLOR", "1")
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting cleanmail serve");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let sink = log.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let clean = strip_ansi(&line);
            if clean.contains("cleanmail smtp listening")
                && let Some(at) = clean.find("smtp=")
            {
                let addr: String = clean[at + 5..]
                    .chars()
                    .take_while(|c| !c.is_whitespace())
                    .collect();
                let _ = tx.send((true, addr));
            } else if clean.contains("cleanmail listening")
                && let Some(at) = clean.find("http://")
            {
                let addr: String = clean[at..]
                    .chars()
                    .take_while(|c| !c.is_whitespace())
                    .collect();
                let _ = tx.send((false, addr));
            }
            sink.lock().unwrap().push(line);
        }
    });
    let mut base = None;
    let mut smtp = None;
    while base.is_none() || smtp.is_none() {
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok((true, addr)) => smtp = Some(addr.parse().expect("smtp address")),
            Ok((false, addr)) => base = Some(addr),
            Err(_) => panic!(
                "server did not start; log:\n{}",
                log.lock().unwrap().join("\n")
            ),
        }
    }
    (child, base.unwrap(), smtp.unwrap())
}

/// A `cleanmail serve --role worker` process beside a [`Server`]; killed on drop.
pub struct WorkerProcess {
    child: Child,
    log: Arc<Mutex<Vec<String>>>,
}

impl WorkerProcess {
    /// The worker's log so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// An HTTP client bound to one server and credential.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    pub base: String,
    token: Option<String>,
}

/// A response: status and JSON body (`Value::Null` when the body is not JSON).
#[derive(Debug)]
pub struct Res {
    pub status: u16,
    pub body: Value,
    pub text: String,
    pub content_type: String,
    /// The `Retry-After` header, in seconds.
    pub retry_after: Option<u64>,
}

impl Res {
    /// The body's `id`.
    pub fn id(&self) -> String {
        self.body["id"]
            .as_str()
            .unwrap_or_else(|| panic!("no id in {self:?}"))
            .to_owned()
    }

    #[track_caller]
    pub fn expect(self, status: u16) -> Self {
        assert_eq!(
            self.status, status,
            "unexpected status; body: {}",
            self.text
        );
        self
    }
}

impl Client {
    async fn send(&self, builder: reqwest::RequestBuilder) -> Res {
        let builder = match &self.token {
            Some(t) => builder.bearer_auth(t),
            None => builder,
        };
        let response = builder.send().await.expect("HTTP request");
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()?.parse().ok());
        let text = response.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Res {
            status,
            body,
            text,
            content_type,
            retry_after,
        }
    }

    pub async fn get(&self, path: &str) -> Res {
        self.send(self.http.get(format!("{}{path}", self.base)))
            .await
    }
    pub async fn post(&self, path: &str, body: Value) -> Res {
        self.send(self.http.post(format!("{}{path}", self.base)).json(&body))
            .await
    }
    pub async fn post_text(&self, path: &str, content_type: &str, body: String) -> Res {
        self.send(
            self.http
                .post(format!("{}{path}", self.base))
                .header("content-type", content_type)
                .body(body),
        )
        .await
    }
    pub async fn patch(&self, path: &str, body: Value) -> Res {
        self.send(self.http.patch(format!("{}{path}", self.base)).json(&body))
            .await
    }
    pub async fn put(&self, path: &str, body: Value) -> Res {
        self.send(self.http.put(format!("{}{path}", self.base)).json(&body))
            .await
    }
    pub async fn delete(&self, path: &str) -> Res {
        self.send(self.http.delete(format!("{}{path}", self.base)))
            .await
    }

    /// Runs a GraphQL operation and returns the whole response document.
    pub async fn graphql(&self, query: &str, variables: Value) -> Value {
        let res = self
            .post(
                "/graphql",
                json!({ "query": query, "variables": variables }),
            )
            .await;
        assert_eq!(res.status, 200, "GraphQL transport error: {}", res.text);
        res.body
    }
}

/// One reseller → tenant → domain → user → alias chain, created over REST.
#[derive(Debug, Clone)]
pub struct Fixture {
    pub reseller: String,
    pub tenant: String,
    pub domain: String,
    pub domain_name: String,
    pub user: String,
    pub alias: String,
}

impl Fixture {
    pub async fn create(admin: &Client, label: &str) -> Self {
        let reseller = admin
            .post(
                "/api/v1/resellers",
                json!({ "name": format!("Reseller {label}") }),
            )
            .await
            .expect(201)
            .id();
        let tenant = admin
            .post(
                "/api/v1/tenants",
                json!({ "reseller_id": reseller, "name": format!("Tenant {label}"), "region": "ch" }),
            )
            .await
            .expect(201)
            .id();
        let domain_name = format!("{}.example.ch", label.to_lowercase());
        let domain = admin
            .post(
                "/api/v1/domains",
                json!({ "tenant_id": tenant, "name": domain_name, "destination": "127.0.0.1:2526" }),
            )
            .await
            .expect(201)
            .id();
        let user = admin
            .post(
                "/api/v1/users",
                json!({ "domain_id": domain, "address": format!("jean@{domain_name}"), "display_name": "Jean" }),
            )
            .await
            .expect(201)
            .id();
        let alias = admin
            .post(
                "/api/v1/aliases",
                json!({ "user_id": user, "address": format!("info@{domain_name}") }),
            )
            .await
            .expect(201)
            .id();
        Self {
            reseller,
            tenant,
            domain,
            domain_name,
            user,
            alias,
        }
    }
}
