//! SMTP ingest end to end: a real SMTP client against `cleanmail serve`, a real downstream
//! sink (`cleanmail_worker::sink::SmtpSink`) on loopback, the database inspected through the
//! store.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::time::Duration;

use cleanmail_schema::store::messages::{self as message_store, MessageFilter};
use cleanmail_schema::{Db, PageRequest, Scope};
use cleanmail_worker::sink::{SinkMessage, SmtpSink};
use cleanmail_worker::smtp::SmtpConfig;
use lettre::AsyncTransport as _;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::common::{Backend, Client, Fixture, Server, backends};

const NEWSLETTER: &str = include_str!("../../core/tests/fixtures/bulk-newsletter.eml");
pub(crate) const GTUBE: &str = include_str!("../../core/tests/fixtures/test-gtube.eml");
const EICAR: &str = include_str!("../../core/tests/fixtures/virus-eicar-attachment.eml");

/// A sink that takes many connections from loopback.
pub(crate) async fn sink() -> SmtpSink {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let config = SmtpConfig {
        max_connections_per_ip: 1000,
        ..SmtpConfig::for_tests()
    };
    SmtpSink::start_with(config, None).await.unwrap()
}

/// A server, its admin and one tenant whose domain delivers to `downstream`.
pub(crate) async fn setup(
    backend: Backend,
    label: &str,
    downstream: SocketAddr,
) -> (Server, Client, Fixture) {
    setup_with(backend, label, downstream, &[]).await
}

/// [`setup`] with extra environment variables for the server.
pub(crate) async fn setup_with(
    backend: Backend,
    label: &str,
    downstream: SocketAddr,
    env: &[(&str, &str)],
) -> (Server, Client, Fixture) {
    let server = Server::start_with(backend, env).await;
    let admin = server.client(&server.admin_key("root@platform.test"));
    let fixture = Fixture::create(&admin, label).await;
    admin
        .patch(
            &format!("/api/v1/domains/{}", fixture.domain),
            json!({ "destination": downstream.to_string(), "state": "live" }),
        )
        .await
        .expect(200);
    (server, admin, fixture)
}

/// With `Message-ID`, `Date` and the given headers/body, CRLF line ends.
pub(crate) fn message(
    from: &str,
    to: &str,
    subject: &str,
    message_id: &str,
    body: &str,
) -> Vec<u8> {
    format!(
        "From: {from}\r\nTo: {to}\r\nSubject: {subject}\r\nDate: Sun, 29 Nov 2026 10:00:00 +0100\r\n\
         Message-ID: <{message_id}>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
    )
    .into_bytes()
}

pub(crate) fn crlf(text: &str) -> Vec<u8> {
    text.replace("\r\n", "\n")
        .replace('\n', "\r\n")
        .into_bytes()
}

/// Sends with lettre (a real SMTP client); `Ok` is the server's `250` reply.
pub(crate) async fn send(
    smtp: SocketAddr,
    from: &str,
    to: &[&str],
    raw: &[u8],
) -> Result<String, String> {
    let transport = lettre::AsyncSmtpTransport::<lettre::Tokio1Executor>::builder_dangerous(
        smtp.ip().to_string(),
    )
    .port(smtp.port())
    .timeout(Some(Duration::from_secs(20)))
    .build();
    let envelope = lettre::address::Envelope::new(
        Some(from.parse().unwrap()),
        to.iter().map(|t| t.parse().unwrap()).collect(),
    )
    .unwrap();
    transport
        .send_raw(&envelope, raw)
        .await
        .map(|r| format!("{} {}", r.code(), r.message().collect::<Vec<_>>().join(" ")))
        .map_err(|e| e.to_string())
}

/// A hand-driven SMTP session, to see exact replies.
struct Talk {
    reader: BufReader<tokio::net::tcp::OwnedReadHalf>,
    writer: tokio::net::tcp::OwnedWriteHalf,
}

impl Talk {
    async fn open(smtp: SocketAddr) -> Self {
        let (read, writer) = TcpStream::connect(smtp).await.unwrap().into_split();
        let mut talk = Self {
            reader: BufReader::new(read),
            writer,
        };
        let greeting = talk.reply().await;
        assert!(greeting.starts_with("220"), "{greeting}");
        let ehlo = talk.cmd("EHLO client.test").await;
        assert!(ehlo.starts_with("250"), "{ehlo}");
        talk
    }

    /// The last line of the next reply.
    async fn reply(&mut self) -> String {
        loop {
            let mut line = String::new();
            self.reader.read_line(&mut line).await.unwrap();
            if line.len() < 4 || line.as_bytes()[3] != b'-' {
                return line.trim_end().to_owned();
            }
        }
    }

    async fn cmd(&mut self, command: &str) -> String {
        self.writer
            .write_all(format!("{command}\r\n").as_bytes())
            .await
            .unwrap();
        self.reply().await
    }

    /// MAIL FROM, RCPT TO `rcpt` and DATA `raw` in this session; the reply to the final dot.
    async fn data_after_envelope(&mut self, rcpt: &str, raw: &[u8]) -> String {
        let mail = self.cmd("MAIL FROM:<alice@sender.example>").await;
        assert!(mail.starts_with("250"), "{mail}");
        let rcpt = self.cmd(&format!("RCPT TO:<{rcpt}>")).await;
        assert!(rcpt.starts_with("250"), "{rcpt}");
        self.data(raw).await
    }

    /// DATA with `raw` (dot-stuffed); the reply to the final dot.
    async fn data(&mut self, raw: &[u8]) -> String {
        let go = self.cmd("DATA").await;
        assert!(go.starts_with("354"), "{go}");
        let text = String::from_utf8_lossy(raw);
        let mut out = String::new();
        for line in text.split("\r\n") {
            if line.starts_with('.') {
                out.push('.');
            }
            out.push_str(line);
            out.push_str("\r\n");
        }
        out.push_str(".\r\n");
        self.writer.write_all(out.as_bytes()).await.unwrap();
        self.reply().await
    }
}

pub(crate) async fn store_db(server: &Server) -> Db {
    Db::connect(&server.db.url).await.unwrap()
}

/// Messages in `state`, once there are `count` of them (or after 10 s).
async fn wait_for_messages(
    db: &Db,
    state: &str,
    count: usize,
) -> Vec<cleanmail_schema::models::Message> {
    let filter = MessageFilter {
        state: Some(state.to_owned()),
        ..MessageFilter::default()
    };
    let mut found = Vec::new();
    for _ in 0..100 {
        found = message_store::list(db, &Scope::Platform, &filter, &PageRequest::default())
            .await
            .unwrap()
            .items;
        if found.len() >= count {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    found
}

pub(crate) fn header(message: &SinkMessage, name: &str) -> Option<String> {
    let text = message.text();
    text.split("\r\n\r\n")
        .next()
        .unwrap_or("")
        .lines()
        .find(|l| {
            l.len() > name.len()
                && l[..name.len()].eq_ignore_ascii_case(name)
                && l.as_bytes()[name.len()] == b':'
        })
        .map(|l| l[name.len() + 1..].trim().to_owned())
}

#[tokio::test]
async fn mail_is_filtered_then_delivered_tagged_or_quarantined() {
    for backend in backends() {
        let sink = sink().await;
        let (server, _admin, fx) = setup(backend, "Mailflow", sink.addr()).await;
        let jean = format!("jean@{}", fx.domain_name);
        let info = format!("info@{}", fx.domain_name);

        // Clean mail to a user and an alias: one downstream transaction, envelope kept.
        let clean = message(
            "Alice <alice@sender.example>",
            &jean,
            "Lunch",
            "clean-1@sender.example",
            "See you at noon.",
        );
        let reply = send(server.smtp, "alice@sender.example", &[&jean, &info], &clean).await;
        assert!(
            reply.as_ref().is_ok_and(|r| r.starts_with("250")),
            "{backend:?}: {reply:?}"
        );
        // A newsletter is delivered with the [PUB] tag.
        let reply = send(
            server.smtp,
            "news@shop.example",
            &[&jean],
            &crlf(NEWSLETTER),
        )
        .await;
        assert!(reply.is_ok(), "{backend:?}: {reply:?}");
        // GTUBE is spam: quarantined, not delivered.
        let reply = send(server.smtp, "spam@spam.example", &[&jean], &crlf(GTUBE)).await;
        assert!(reply.is_ok(), "{backend:?}: {reply:?}");
        // EICAR is refused at DATA.
        let mut talk = Talk::open(server.smtp).await;
        assert!(
            talk.cmd("MAIL FROM:<virus@sender.example>")
                .await
                .starts_with("250")
        );
        assert!(
            talk.cmd(&format!("RCPT TO:<{jean}>"))
                .await
                .starts_with("250")
        );
        let refused = talk.data(&crlf(EICAR)).await;
        assert!(refused.starts_with("550 5.7.1"), "{backend:?}: {refused}");

        let arrived = sink.wait_for(2, Duration::from_secs(20)).await;
        assert_eq!(arrived.len(), 2, "{backend:?}: {arrived:?}");
        let clean_copy = arrived
            .iter()
            .find(|m| header(m, "Message-ID").as_deref() == Some("<clean-1@sender.example>"))
            .expect("clean message delivered");
        assert_eq!(clean_copy.mail_from, "alice@sender.example");
        assert_eq!(clean_copy.rcpt_to, vec![jean.clone(), info.clone()]);
        assert_eq!(header(clean_copy, "Subject").as_deref(), Some("Lunch"));
        let newsletter = arrived
            .iter()
            .find(|m| m.mail_from == "news@shop.example")
            .expect("newsletter delivered");
        assert_eq!(
            header(newsletter, "Subject").as_deref(),
            Some("[PUB] November news from the shop")
        );

        // The database: quarantine row, retained copies, message log and counters.
        let db = store_db(&server).await;
        let scope = Scope::Platform;
        let quarantined = wait_for_messages(&db, "quarantined", 1).await;
        assert_eq!(quarantined.len(), 1, "{backend:?}");
        let spam = &quarantined[0];
        assert_eq!(spam.tenant_id.as_str(), fx.tenant);
        assert_eq!(spam.user_id.as_str(), fx.user);
        assert_eq!(spam.category, "spam");
        assert!(spam.score >= 5.0);
        assert!(spam.verdict.contains("GTUBE"), "{}", spam.verdict);
        assert!(spam.expires_at.is_some());

        // Delivered copies are kept in the retention store once the delivery is recorded.
        let delivered = wait_for_messages(&db, "delivered", 3).await;
        assert_eq!(
            delivered.len(),
            3,
            "{backend:?}: jean and info (clean), jean (newsletter)"
        );
        assert!(delivered.iter().all(|m| m.expires_at > Some(m.received_at)));
        assert!(
            server
                .data_dir
                .path()
                .join("blobs")
                .join(&delivered[0].blob_key)
                .exists()
        );

        // The refusal's log entry is written with the next group commit, not before the 550.
        let mut log = Vec::new();
        for _ in 0..50 {
            log = message_store::log(&db, &scope, 10).await.unwrap();
            if log.len() >= 4 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let states: HashMap<&str, &str> = log
            .iter()
            .map(|l| (l.subject.as_str(), l.state.as_str()))
            .collect();
        assert_eq!(states.get("Lunch"), Some(&"delivered"), "{states:?}");
        assert_eq!(states.get("the file"), Some(&"rejected"), "{states:?}");
        assert_eq!(log.len(), 4, "{backend:?}: {states:?}");

        let traffic = message_store::traffic(&db, &scope, 10).await.unwrap();
        let total = |f: fn(&cleanmail_schema::models::TrafficCounter) -> i64| {
            traffic.iter().map(f).sum::<i64>()
        };
        assert_eq!(total(|c| c.clean), 1, "{backend:?}: {traffic:?}");
        assert_eq!(total(|c| c.newsletter), 1, "{backend:?}: {traffic:?}");
        assert_eq!(total(|c| c.spam), 1, "{backend:?}: {traffic:?}");
        assert_eq!(total(|c| c.rejected), 1, "{backend:?}: {traffic:?}");
    }
}

#[tokio::test]
async fn mail_recipients_are_checked_at_rcpt() {
    for backend in backends() {
        let sink = sink().await;
        let (server, admin, fx) = setup(backend, "Rcptcheck", sink.addr()).await;
        let mut talk = Talk::open(server.smtp).await;
        assert!(
            talk.cmd("MAIL FROM:<alice@sender.example>")
                .await
                .starts_with("250")
        );
        let unknown = talk
            .cmd(&format!("RCPT TO:<nobody@{}>", fx.domain_name))
            .await;
        assert!(unknown.starts_with("550 5.1.1"), "{backend:?}: {unknown}");
        let relay = talk.cmd("RCPT TO:<someone@elsewhere.example>").await;
        assert!(relay.starts_with("554 5.7.1"), "{backend:?}: {relay}");
        let alias = talk
            .cmd(&format!("RCPT TO:<INFO@{}>", fx.domain_name.to_uppercase()))
            .await;
        assert!(alias.starts_with("250"), "{backend:?}: {alias}");
        talk.cmd("QUIT").await;

        // A suspended domain refuses mail.
        admin
            .patch(
                &format!("/api/v1/domains/{}", fx.domain),
                json!({ "state": "suspended" }),
            )
            .await
            .expect(200);
        tokio::time::sleep(Duration::from_millis(2100)).await; // lookup cache
        let mut talk = Talk::open(server.smtp).await;
        assert!(
            talk.cmd("MAIL FROM:<alice@sender.example>")
                .await
                .starts_with("250")
        );
        let suspended = talk
            .cmd(&format!("RCPT TO:<jean@{}>", fx.domain_name))
            .await;
        assert!(
            suspended.starts_with("550 5.7.1"),
            "{backend:?}: {suspended}"
        );
    }
}

#[tokio::test]
async fn mail_waits_while_downstream_is_down_then_is_delivered() {
    for backend in backends() {
        let mut sink = sink().await;
        let (server, _admin, fx) = setup(backend, "Downstream", sink.addr()).await;
        sink.go_down().await;
        let jean = format!("jean@{}", fx.domain_name);
        let raw = message(
            "alice@sender.example",
            &jean,
            "While down",
            "down-1@sender.example",
            "Queued.",
        );
        let reply = send(server.smtp, "alice@sender.example", &[&jean], &raw).await;
        assert!(reply.is_ok(), "{backend:?}: {reply:?}");

        // The attempts fail and are recorded; the copy is readable meanwhile.
        let db = store_db(&server).await;
        let mut deferred = false;
        for _ in 0..100 {
            let log = message_store::log(&db, &Scope::Platform, 1).await.unwrap();
            if log
                .first()
                .is_some_and(|l| l.state == "deferred" && l.delivery_attempts >= 2)
            {
                deferred = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(deferred, "{backend:?}: not retried; log:\n{}", server.log());
        let kept = message_store::list(
            &db,
            &Scope::Platform,
            &MessageFilter::default(),
            &PageRequest::default(),
        )
        .await
        .unwrap()
        .items;
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].state, "deferred");
        assert!(
            server
                .data_dir
                .path()
                .join("blobs")
                .join(&kept[0].blob_key)
                .exists()
        );

        sink.come_up().await.unwrap();
        let arrived = sink.wait_for(1, Duration::from_secs(20)).await;
        assert_eq!(arrived.len(), 1, "{backend:?}");
        assert_eq!(
            header(&arrived[0], "Subject").as_deref(),
            Some("While down")
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(sink.messages().len(), 1, "{backend:?}: delivered once");
    }
}

#[tokio::test]
async fn mail_kill_9_mid_stream_loses_nothing_and_delivers_once() {
    for backend in backends() {
        let mut sink = sink().await;
        let (mut server, _admin, fx) = setup(backend, "Crash", sink.addr()).await;
        let jean = format!("jean@{}", fx.domain_name);
        // Downstream down while the server is killed: every accepted message is still only
        // in our queue (see DeliverMessage's docs for the window when it is up).
        sink.go_down().await;

        let smtp = server.smtp;
        let senders: Vec<_> = (0..4)
            .map(|client| {
                let jean = jean.clone();
                tokio::spawn(async move {
                    let mut acked = Vec::new();
                    for n in 0..10_000 {
                        let id = format!("crash-{client}-{n}@sender.example");
                        let raw = message("alice@sender.example", &jean, "Stream", &id, "Hello.");
                        match send(smtp, "alice@sender.example", &[&jean], &raw).await {
                            Ok(reply) if reply.starts_with("250") => acked.push(format!("<{id}>")),
                            _ => break,
                        }
                    }
                    acked
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(1500)).await;
        server.kill_and_restart();
        let mut acked = Vec::new();
        for sender in senders {
            acked.extend(sender.await.unwrap());
        }
        assert!(
            acked.len() >= 10,
            "{backend:?}: only {} acknowledged",
            acked.len()
        );

        sink.come_up().await.unwrap();
        // Messages committed but not acknowledged before the kill arrive too, so wait for the
        // acknowledged ones by Message-ID, not for a count; then a little longer for doubles.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let ids: HashSet<String> = sink
                .messages()
                .iter()
                .filter_map(|m| header(m, "Message-ID"))
                .collect();
            if acked.iter().all(|id| ids.contains(id)) || tokio::time::Instant::now() > deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        let arrived = sink.messages();
        let mut counts: HashMap<String, usize> = HashMap::new();
        for message in &arrived {
            *counts
                .entry(header(message, "Message-ID").unwrap_or_default())
                .or_default() += 1;
        }
        let missing: Vec<&String> = acked
            .iter()
            .filter(|id| !counts.contains_key(*id))
            .collect();
        let doubled: Vec<(&String, &usize)> = counts.iter().filter(|(_, n)| **n > 1).collect();
        assert!(
            missing.is_empty(),
            "{backend:?}: {} of {} acknowledged messages lost: {missing:?}",
            missing.len(),
            acked.len()
        );
        assert!(
            doubled.is_empty(),
            "{backend:?}: delivered twice: {doubled:?}"
        );
        eprintln!(
            "{backend:?}: {} acknowledged before kill -9, {} delivered after restart (unacknowledged but committed ones may arrive too)",
            acked.len(),
            arrived.len()
        );
    }
}

/// A second mailbox in the fixture's domain; returns (user id, address).
async fn add_user(admin: &Client, fx: &Fixture, local: &str) -> (String, String) {
    let address = format!("{local}@{}", fx.domain_name);
    let id = admin
        .post(
            "/api/v1/users",
            json!({ "domain_id": fx.domain, "address": address, "display_name": local }),
        )
        .await
        .expect(201)
        .id();
    (id, address)
}

/// The standard category actions with some replaced.
fn actions(changes: serde_json::Value) -> serde_json::Value {
    let mut actions = json!({
        "clean": "deliver", "newsletter": "tag", "spam": "quarantine",
        "phishing": "quarantine", "virus": "reject"
    });
    for (key, value) in changes.as_object().unwrap() {
        actions[key] = value.clone();
    }
    actions
}

#[tokio::test]
async fn mail_follows_stored_tenant_domain_and_user_policies() {
    for backend in backends() {
        let sink = sink().await;
        let (server, admin, fx) = setup(backend, "Policies", sink.addr()).await;
        let jean = format!("jean@{}", fx.domain_name);
        let (_, marie) = add_user(&admin, &fx, "marie").await;
        // Domain: quarantine kept 3 days, a partner allow-listed. Jean: newsletters
        // quarantined, no backup webmail.
        admin
            .put(
                &format!("/api/v1/domains/{}/policy-overrides", fx.domain),
                json!({ "quarantine_expiry_days": 3, "lists": { "allow": ["partner.example"] } }),
            )
            .await
            .expect(200);
        admin
            .put(
                &format!("/api/v1/users/{}/policy-overrides", fx.user),
                json!({
                    "actions": actions(json!({ "newsletter": "quarantine" })),
                    "backup_webmail": { "enabled": false }
                }),
            )
            .await
            .expect(200);

        // One newsletter for both: tagged and delivered to Marie, quarantined for Jean.
        let reply = send(
            server.smtp,
            "news@shop.example",
            &[&jean, &marie],
            &crlf(NEWSLETTER),
        )
        .await;
        assert!(reply.is_ok(), "{backend:?}: {reply:?}");
        // GTUBE from the allow-listed partner is delivered.
        let reply = send(
            server.smtp,
            "friend@partner.example",
            &[&marie],
            &crlf(GTUBE),
        )
        .await;
        assert!(reply.is_ok(), "{backend:?}: {reply:?}");
        // Clean mail to Jean is delivered and no copy is kept.
        let clean = message(
            "alice@sender.example",
            &jean,
            "No copy",
            "nocopy@sender.example",
            "Hello.",
        );
        let reply = send(server.smtp, "alice@sender.example", &[&jean], &clean).await;
        assert!(reply.is_ok(), "{backend:?}: {reply:?}");

        let arrived = sink.wait_for(3, Duration::from_secs(20)).await;
        assert_eq!(arrived.len(), 3, "{backend:?}: {arrived:?}");
        let newsletter = arrived
            .iter()
            .find(|m| m.mail_from == "news@shop.example")
            .expect("newsletter delivered");
        assert_eq!(newsletter.rcpt_to, vec![marie.clone()], "{backend:?}");
        assert_eq!(
            header(newsletter, "Subject").as_deref(),
            Some("[PUB] November news from the shop")
        );
        let gtube = arrived
            .iter()
            .find(|m| m.mail_from == "friend@partner.example")
            .expect("allow-listed GTUBE delivered");
        assert_eq!(gtube.rcpt_to, vec![marie.clone()]);
        assert!(
            arrived
                .iter()
                .any(|m| m.rcpt_to == vec![jean.clone()] && m.mail_from == "alice@sender.example"),
            "{backend:?}"
        );

        let db = store_db(&server).await;
        let quarantined = wait_for_messages(&db, "quarantined", 1).await;
        assert_eq!(quarantined.len(), 1, "{backend:?}: {quarantined:?}");
        let held = &quarantined[0];
        assert_eq!(held.recipient, jean);
        assert_eq!(held.category, "newsletter");
        let days_kept = |m: &cleanmail_schema::models::Message| {
            m.expires_at.map(|at| (at - m.received_at).num_seconds())
        };
        assert_eq!(
            days_kept(held),
            Some(3 * 86_400),
            "{backend:?}: the domain's quarantine expiry"
        );
        let delivered = wait_for_messages(&db, "delivered", 2).await;
        assert_eq!(delivered.len(), 2, "{backend:?}: {delivered:?}");
        assert!(delivered.iter().all(|m| m.recipient == marie));
        assert!(delivered.iter().all(|m| days_kept(m) == Some(30 * 86_400)));
        // Jean's clean message: delivered, logged, but neither row nor blob kept.
        let log = message_store::log(&db, &Scope::Platform, 10).await.unwrap();
        let no_copy = log.iter().find(|l| l.subject == "No copy").expect("logged");
        let blob = server
            .data_dir
            .path()
            .join("blobs")
            .join(no_copy.blob_key.as_deref().unwrap());
        for _ in 0..100 {
            if !blob.exists() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(
            !blob.exists(),
            "{backend:?}: blob of an uncopied message kept"
        );
        let all = message_store::list(
            &db,
            &Scope::Platform,
            &MessageFilter::default(),
            &PageRequest::default(),
        )
        .await
        .unwrap()
        .items;
        assert!(
            all.iter().all(|m| m.log_id != no_copy.id),
            "{backend:?}: a copy was kept with the backup webmail off"
        );
    }
}

#[tokio::test]
async fn mail_recipients_whose_policies_disagree_get_it_quarantined_not_refused() {
    for backend in backends() {
        let sink = sink().await;
        let (server, admin, fx) = setup(backend, "Disagree", sink.addr()).await;
        let jean = format!("jean@{}", fx.domain_name);
        let (marie_id, marie) = add_user(&admin, &fx, "marie").await;
        admin
            .put(
                &format!("/api/v1/users/{marie_id}/policy-overrides"),
                json!({ "actions": actions(json!({ "virus": "quarantine" })) }),
            )
            .await
            .expect(200);

        // Jean's policy rejects viruses, Marie's quarantines them: accepted, and held for both.
        let reply = send(
            server.smtp,
            "virus@sender.example",
            &[&jean, &marie],
            &crlf(EICAR),
        )
        .await;
        assert!(
            reply.as_ref().is_ok_and(|r| r.starts_with("250")),
            "{backend:?}: {reply:?}"
        );
        // For Jean alone it is refused at DATA.
        let mut talk = Talk::open(server.smtp).await;
        assert!(
            talk.cmd("MAIL FROM:<virus@sender.example>")
                .await
                .starts_with("250")
        );
        assert!(
            talk.cmd(&format!("RCPT TO:<{jean}>"))
                .await
                .starts_with("250")
        );
        let refused = talk.data(&crlf(EICAR)).await;
        assert!(refused.starts_with("550 5.7.1"), "{backend:?}: {refused}");

        let db = store_db(&server).await;
        let held = wait_for_messages(&db, "quarantined", 2).await;
        assert_eq!(held.len(), 2, "{backend:?}: {held:?}");
        let action_of = |address: &str| {
            held.iter()
                .find(|m| m.recipient == address)
                .map(|m| (m.category.as_str(), m.action.as_str()))
        };
        assert_eq!(action_of(&jean), Some(("virus", "reject")), "{backend:?}");
        assert_eq!(
            action_of(&marie),
            Some(("virus", "quarantine")),
            "{backend:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(
            sink.messages().is_empty(),
            "{backend:?}: a virus was delivered"
        );
    }
}

/// A recipient whose user is deleted between acceptance and the ingest job is dropped (and
/// logged so), the other recipient gets the message and the job finishes; an ingest job
/// this version cannot read fails for good at once, kept for operators, never retried.
#[tokio::test]
async fn mail_for_a_user_deleted_before_ingest_is_dropped_for_that_user_only() {
    use cleanmail_schema::store::jobs;
    for backend in backends() {
        let sink = sink().await;
        // No worker yet: the message waits in the queue while its recipient goes.
        let (mut server, admin, fx) = setup_with(
            backend,
            "Vanished",
            sink.addr(),
            &[("CLEANMAIL_ROLE", "api,smtp")],
        )
        .await;
        let (_anna_id, anna) = add_user(&admin, &fx, "anna").await;
        let jean = format!("jean@{}", fx.domain_name);
        let raw = message(
            "alice@sender.example",
            &jean,
            "Both of you",
            "vanished-1@sender.example",
            "Hello.",
        );
        let reply = send(server.smtp, "alice@sender.example", &[&jean, &anna], &raw).await;
        assert!(reply.is_ok(), "{backend:?}: {reply:?}");
        admin
            .delete(&format!("/api/v1/users/{}", fx.user))
            .await
            .expect(204);
        let db = store_db(&server).await;
        let garbage = cleanmail_schema::JobId("ingest_message:garbage".to_owned());
        let garbage_delivery = cleanmail_schema::JobId("deliver_message:garbage".to_owned());
        jobs::enqueue(
            &db,
            &[
                cleanmail_schema::models::Job::new(
                    garbage.clone(),
                    cleanmail_worker::ingest::INGEST_MESSAGE,
                    None,
                    "not an ingest job".to_owned(),
                    None,
                    cleanmail_schema::now(),
                ),
                cleanmail_schema::models::Job::new(
                    garbage_delivery.clone(),
                    cleanmail_worker::jobs::DELIVER_MESSAGE,
                    None,
                    "{\"not\": \"a delivery\"}".to_owned(),
                    None,
                    cleanmail_schema::now(),
                ),
            ],
        )
        .await
        .unwrap();
        assert_eq!(
            jobs::count(&db, cleanmail_worker::ingest::INGEST_MESSAGE)
                .await
                .unwrap(),
            2
        );

        server.restart_with(&[]);
        let arrived = sink.wait_for(1, Duration::from_secs(20)).await;
        assert_eq!(arrived.len(), 1, "{backend:?}: {}", server.log());
        assert_eq!(arrived[0].rcpt_to, vec![anna.clone()]);

        // The job finished: the log lists jean as dropped, anna as delivered.
        let mut entry = None;
        for _ in 0..100 {
            let log = message_store::log(&db, &Scope::Platform, 10).await.unwrap();
            entry = log
                .into_iter()
                .find(|l| l.subject == "Both of you" && l.state == "delivered");
            if entry.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let entry = entry.unwrap_or_else(|| panic!("{backend:?}: not delivered; {}", server.log()));
        let actions: serde_json::Value = serde_json::from_str(&entry.actions).unwrap();
        let dropped = actions
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["recipient"] == jean.as_str())
            .expect("jean in the actions");
        assert_eq!(dropped["state"], "dropped", "{actions}");
        assert_eq!(
            dropped["reason"],
            cleanmail_worker::jobs::ingest_message::RECIPIENT_GONE
        );

        // The unreadable jobs failed once, for good, and are still there for an operator.
        let mut failed = jobs::failed(&db, 10).await.unwrap();
        failed.sort_by(|a, b| a.id.cmp(&b.id));
        let ids: Vec<_> = failed.iter().map(|j| j.id.clone()).collect();
        assert_eq!(
            ids,
            [garbage_delivery.clone(), garbage.clone()],
            "{backend:?}"
        );
        for job in &failed {
            assert_eq!(job.attempts, 1, "{job:?}");
            assert!(
                job.last_error
                    .as_deref()
                    .is_some_and(|e| e.starts_with("unreadable payload")),
                "{job:?}"
            );
        }
        tokio::time::sleep(Duration::from_millis(600)).await;
        for id in [&garbage, &garbage_delivery] {
            let again = jobs::get(&db, id).await.unwrap().expect("kept");
            assert_eq!(again.attempts, 1, "a failed job is not claimed again");
        }
        assert_eq!(
            jobs::count(&db, cleanmail_worker::ingest::INGEST_MESSAGE)
                .await
                .unwrap(),
            1,
            "only the failed job is left"
        );

        // An operator sees them with `cleanmail jobs failed` and queues one again with
        // `jobs retry`: it runs (and, still unreadable, fails again); unknown ids are an error.
        let listed = server.cli(&["jobs", "failed"]);
        assert!(listed.status.success(), "{listed:?}");
        let listed = String::from_utf8(listed.stdout).unwrap();
        assert_eq!(listed.lines().count(), 2, "{listed}");
        assert!(listed.contains(garbage.as_str()) && listed.contains("unreadable payload"));
        let before = jobs::get(&db, &garbage).await.unwrap().unwrap().failed_at;
        let retried = server.cli(&["jobs", "retry", garbage.as_str()]);
        assert!(retried.status.success(), "{retried:?}");
        let mut again = None;
        for _ in 0..100 {
            let job = jobs::get(&db, &garbage).await.unwrap().unwrap();
            if job.failed_at.is_some() && job.failed_at != before {
                again = Some(job);
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let again = again.unwrap_or_else(|| panic!("{backend:?}: the retried job did not run"));
        assert_eq!(again.attempts, 1, "attempts were reset: {again:?}");
        let unknown = server.cli(&["jobs", "retry", "no-such-job"]);
        assert!(!unknown.status.success());
        assert!(String::from_utf8_lossy(&unknown.stderr).contains("no-such-job"));
    }
}

/// ClamAV in the SMTP path, against a real clamd (`.ci/start-clamd`, `TEST_CLAMD_ADDR`):
/// the test signature, which no built-in rule knows, is refused at DATA.
#[tokio::test]
async fn mail_with_a_virus_found_by_clamd_is_refused_at_data() {
    let Ok(clamd) = std::env::var("TEST_CLAMD_ADDR") else {
        crate::common::skipped(
            "ClamAV in the SMTP path: set TEST_CLAMD_ADDR=127.0.0.1:3310 (bash .ci/start-clamd)",
        );
        return;
    };
    for backend in backends() {
        let sink = sink().await;
        let (server, _, fx) = setup_with(
            backend,
            "Clamav",
            sink.addr(),
            &[("CLEANMAIL_CLAMD_ADDR", clamd.as_str())],
        )
        .await;
        let jean = format!("jean@{}", fx.domain_name);
        let infected = message(
            "alice@sender.example",
            &jean,
            "Invoice",
            "clamd-1@sender.example",
            "Please see CLEANMAIL-CLAMD-TEST-SIGNATURE-7f3a attached.",
        );
        let mut talk = Talk::open(server.smtp).await;
        assert!(
            talk.cmd("MAIL FROM:<alice@sender.example>")
                .await
                .starts_with("250")
        );
        assert!(
            talk.cmd(&format!("RCPT TO:<{jean}>"))
                .await
                .starts_with("250")
        );
        let refused = talk.data(&infected).await;
        assert!(refused.starts_with("550 5.7.1"), "{backend:?}: {refused}");
        assert!(refused.contains("CLAMAV_VIRUS"), "{backend:?}: {refused}");
        // The same text without the signature passes.
        let clean = message(
            "alice@sender.example",
            &jean,
            "Invoice",
            "clamd-2@sender.example",
            "Please see the invoice attached.",
        );
        let accepted = talk.data_after_envelope(&jean, &clean).await;
        assert!(accepted.starts_with("250"), "{backend:?}: {accepted}");
        assert_eq!(sink.wait_for(1, Duration::from_secs(20)).await.len(), 1);
    }
}

#[tokio::test]
async fn mail_permanently_refused_downstream_bounces_to_the_sender_with_a_dsn() {
    for backend in backends() {
        let downstream = sink().await;
        let relay = sink().await;
        let server = Server::start_with(
            backend,
            &[("CLEANMAIL_OUTBOUND_RELAY", &relay.addr().to_string())],
        )
        .await;
        let admin = server.client(&server.admin_key("root@platform.test"));
        let fx = Fixture::create(&admin, "Bounce").await;
        admin
            .patch(
                &format!("/api/v1/domains/{}", fx.domain),
                json!({ "destination": downstream.addr().to_string(), "state": "live" }),
            )
            .await
            .expect(200);
        let jean = format!("jean@{}", fx.domain_name);
        // The downstream server no longer knows Jean: 550 at RCPT, a permanent failure.
        downstream.reject_address(&jean);
        let raw = message(
            "alice@sender.example",
            &jean,
            "Gone",
            "bounce-1@sender.example",
            "Anyone there?",
        );
        let reply = send(server.smtp, "alice@sender.example", &[&jean], &raw).await;
        assert!(reply.is_ok(), "{backend:?}: {reply:?}");

        let dsns = relay.wait_for(1, Duration::from_secs(20)).await;
        assert_eq!(dsns.len(), 1, "{backend:?}: log:\n{}", server.log());
        let dsn = &dsns[0];
        assert_eq!(dsn.mail_from, "", "{backend:?}: a DSN has the null sender");
        assert_eq!(dsn.rcpt_to, vec!["alice@sender.example".to_owned()]);
        let text = dsn.text();
        assert!(
            text.contains("multipart/report; report-type=delivery-status"),
            "{text}"
        );
        assert!(
            text.contains(&format!("Final-Recipient: rfc822; {jean}")),
            "{text}"
        );
        assert!(text.contains("Action: failed"), "{text}");
        assert!(text.contains("bounce-1@sender.example"), "{text}");
        assert!(downstream.messages().is_empty());

        let db = store_db(&server).await;
        let mut state = String::new();
        for _ in 0..50 {
            let log = message_store::log(&db, &Scope::Platform, 1).await.unwrap();
            state = log.first().map(|l| l.state.clone()).unwrap_or_default();
            if state.starts_with("dsn_") {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(state, "dsn_bounced", "{backend:?}: bounced, DSN sent");
        let bounced = wait_for_messages(&db, "bounced", 1).await;
        assert_eq!(bounced.len(), 1, "{backend:?}");
    }
}

#[tokio::test]
async fn mail_for_two_tenants_is_logged_and_delivered_once_per_tenant() {
    for backend in backends() {
        let sink_a = sink().await;
        let sink_b = sink().await;
        let (server, admin, a) = setup(backend, "Alpha", sink_a.addr()).await;
        let b = Fixture::create(&admin, "Beta").await;
        admin
            .patch(
                &format!("/api/v1/domains/{}", b.domain),
                json!({ "destination": sink_b.addr().to_string(), "state": "live" }),
            )
            .await
            .expect(200);
        let jean_a = format!("jean@{}", a.domain_name);
        let jean_b = format!("jean@{}", b.domain_name);
        let raw = message(
            "alice@sender.example",
            &format!("{jean_a}, {jean_b}"),
            "For both",
            "both-1@sender.example",
            "One message, two customers.",
        );
        let reply = send(
            server.smtp,
            "alice@sender.example",
            &[&jean_a, &jean_b],
            &raw,
        )
        .await;
        assert!(reply.is_ok(), "{backend:?}: {reply:?}");

        let at_a = sink_a.wait_for(1, Duration::from_secs(20)).await;
        let at_b = sink_b.wait_for(1, Duration::from_secs(20)).await;
        assert_eq!(at_a.len(), 1, "{backend:?}");
        assert_eq!(at_b.len(), 1, "{backend:?}");
        assert_eq!(at_a[0].rcpt_to, vec![jean_a.clone()]);
        assert_eq!(at_b[0].rcpt_to, vec![jean_b.clone()]);

        let db = store_db(&server).await;
        let log = message_store::log(&db, &Scope::Platform, 10).await.unwrap();
        assert_eq!(log.len(), 2, "{backend:?}: one log entry per tenant");
        let mut tenants: Vec<&str> = log.iter().map(|l| l.tenant_id.as_str()).collect();
        tenants.sort();
        let mut expected = vec![a.tenant.as_str(), b.tenant.as_str()];
        expected.sort();
        assert_eq!(tenants, expected);
        // Each tenant sees only its own entry.
        let only_a = message_store::log(
            &db,
            &Scope::Tenant {
                reseller_id: cleanmail_schema::ResellerId(a.reseller.clone()),
                tenant_id: cleanmail_schema::TenantId(a.tenant.clone()),
            },
            10,
        )
        .await
        .unwrap();
        assert_eq!(only_a.len(), 1);
        assert_eq!(only_a[0].rcpt_to, json!([jean_a]).to_string());
    }
}

#[tokio::test]
async fn mail_expired_copies_and_their_blobs_are_purged() {
    for backend in backends() {
        let sink = sink().await;
        let (server, _, fx) = setup_with(
            backend,
            "Purge",
            sink.addr(),
            &[("CLEANMAIL_PURGE_INTERVAL_SECS", "1")],
        )
        .await;
        let jean = format!("jean@{}", fx.domain_name);
        let db = store_db(&server).await;

        // A message accepted 40 days ago (past its 30-day quarantine expiry), enqueued the
        // way the SMTP committer does it, next to a message accepted now over SMTP.
        let old_key = "inbound/2026/10/20/old-spam.eml".to_owned();
        let old_blob = server.data_dir.path().join("blobs").join(&old_key);
        std::fs::create_dir_all(old_blob.parent().unwrap()).unwrap();
        std::fs::write(&old_blob, crlf(GTUBE)).unwrap();
        let engine = cleanmail_core::Engine::default();
        let address = cleanmail_core::EmailAddress::parse(&jean).unwrap();
        let envelope = cleanmail_core::Envelope {
            recipients: vec![address],
            ..Default::default()
        };
        let raw = crlf(GTUBE);
        let verdict = engine.analyze(
            &cleanmail_core::MessageInput {
                raw: &raw,
                envelope: &envelope,
                auth: None,
                received_at: None,
            },
            &cleanmail_core::TenantContext::default(),
        );
        assert_eq!(
            verdict.recipients[0].action,
            cleanmail_core::Action::Quarantine
        );
        let received_at = cleanmail_schema::now() - std::time::Duration::from_secs(40 * 86_400);
        let job = cleanmail_worker::ingest::IngestMessage {
            log_id: cleanmail_schema::MessageLogId("old-spam".to_owned()),
            tenant_id: cleanmail_schema::TenantId(fx.tenant.clone()),
            blob_key: old_key.clone(),
            received_at,
            mail_from: "spam@spam.example".to_owned(),
            client_ip: "192.0.2.1".to_owned(),
            helo: "spam.example".to_owned(),
            tls: false,
            size_bytes: raw.len() as i64,
            headers: cleanmail_worker::ingest::HeaderSummary::parse(&raw),
            recipients: vec![cleanmail_worker::ingest::IngestRecipient {
                address: jean.clone(),
                domain_id: cleanmail_schema::DomainId(fx.domain.clone()),
                user_id: cleanmail_schema::UserId(fx.user.clone()),
                alias_id: None,
            }],
            verdict,
        };
        cleanmail_schema::store::mail::commit_accepted(
            &db,
            &cleanmail_schema::store::mail::AcceptedBatch {
                jobs: vec![cleanmail_schema::models::Job::new(
                    cleanmail_schema::JobId("ingest_message:old-spam".to_owned()),
                    cleanmail_worker::ingest::INGEST_MESSAGE,
                    Some(cleanmail_schema::TenantId(fx.tenant.clone())),
                    serde_json::to_string(&job).unwrap(),
                    Some(old_key.clone()),
                    cleanmail_schema::now(),
                )],
                ..Default::default()
            },
        )
        .await
        .unwrap();
        let fresh = message(
            "alice@sender.example",
            &jean,
            "Fresh",
            "fresh-1@sender.example",
            "Kept.",
        );
        send(server.smtp, "alice@sender.example", &[&jean], &fresh)
            .await
            .unwrap();
        assert_eq!(sink.wait_for(1, Duration::from_secs(20)).await.len(), 1);

        // The expired quarantine row and its blob go; the fresh copy stays.
        let mut purged = false;
        for _ in 0..100 {
            let log = message_store::log(&db, &Scope::Platform, 10).await.unwrap();
            let rows = message_store::list(
                &db,
                &Scope::Platform,
                &MessageFilter::default(),
                &PageRequest::default(),
            )
            .await
            .unwrap()
            .items;
            let old_logged = log.iter().any(|l| l.id.0 == "old-spam");
            if old_logged && rows.iter().all(|m| m.blob_key != old_key) && !old_blob.exists() {
                assert_eq!(rows.len(), 1, "{backend:?}: {rows:?}");
                assert_eq!(rows[0].subject, "Fresh");
                assert!(
                    server
                        .data_dir
                        .path()
                        .join("blobs")
                        .join(&rows[0].blob_key)
                        .exists()
                );
                purged = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(purged, "{backend:?}: not purged; log:\n{}", server.log());
    }
}

/// The new user's journey: `cleanmail serve`, a customer set up through the API, a message
/// sent with `swaks` to the SMTP port, delivered to the customer's server.
#[tokio::test]
async fn mail_sent_with_swaks_to_a_domain_created_over_the_api_arrives_downstream() {
    if std::process::Command::new("swaks")
        .arg("--version")
        .output()
        .is_err()
    {
        crate::common::skipped(
            "the swaks journey: swaks is not installed (apt-get install -y swaks)",
        );
        return;
    }
    for backend in backends() {
        let sink = sink().await;
        let server = Server::start(backend).await;
        let admin = server.client(&server.admin_key("root@platform.test"));
        let reseller = admin
            .post("/api/v1/resellers", json!({ "name": "First Reseller" }))
            .await
            .expect(201)
            .id();
        let tenant = admin
            .post(
                "/api/v1/tenants",
                json!({ "reseller_id": reseller, "name": "First Customer", "region": "ch" }),
            )
            .await
            .expect(201)
            .id();
        let domain = admin
            .post(
                "/api/v1/domains",
                json!({ "tenant_id": tenant, "name": "first-customer.ch", "destination": sink.addr().to_string() }),
            )
            .await
            .expect(201)
            .id();
        admin
            .post(
                "/api/v1/users",
                json!({ "domain_id": domain, "address": "anna@first-customer.ch", "display_name": "Anna" }),
            )
            .await
            .expect(201);

        let smtp = server.smtp;
        let output = tokio::task::spawn_blocking(move || {
            std::process::Command::new("swaks")
                .args([
                    "--server",
                    &smtp.ip().to_string(),
                    "--port",
                    &smtp.port().to_string(),
                ])
                .args([
                    "--from",
                    "bob@sender.example",
                    "--to",
                    "anna@first-customer.ch",
                ])
                .args(["--header", "Subject: Hello from swaks"])
                .args(["--body", "First message through Cleanmail."])
                .args(["--timeout", "30"])
                .output()
                .unwrap()
        })
        .await
        .unwrap();
        let transcript = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{backend:?}: swaks failed:\n{transcript}"
        );
        assert!(
            transcript.contains("<-  250 2.0.0 Ok: queued"),
            "{transcript}"
        );

        let arrived = sink.wait_for(1, Duration::from_secs(20)).await;
        assert_eq!(arrived.len(), 1, "{backend:?}: log:\n{}", server.log());
        assert_eq!(
            arrived[0].rcpt_to,
            vec!["anna@first-customer.ch".to_owned()]
        );
        assert_eq!(
            header(&arrived[0], "Subject").as_deref(),
            Some("Hello from swaks")
        );
        assert!(
            arrived[0]
                .text()
                .contains("First message through Cleanmail.")
        );
    }
}
