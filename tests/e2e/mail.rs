//! SMTP ingest end to end: a real SMTP client against `cleanmail serve`, a real downstream
//! sink (`cleanmail_worker::sink::SmtpSink`) on loopback, the database inspected through the
//! store.

use std::collections::HashMap;
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
const GTUBE: &str = include_str!("../../core/tests/fixtures/test-gtube.eml");
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
    let server = Server::start(backend).await;
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

fn crlf(text: &str) -> Vec<u8> {
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

        let log = message_store::log(&db, &scope, 10).await.unwrap();
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
        let arrived = sink.wait_for(acked.len(), Duration::from_secs(60)).await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        let arrived = if arrived.len() < sink.messages().len() {
            sink.messages()
        } else {
            arrived
        };
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
