//! Quarantine reports end to end: spam quarantined over SMTP, `cleanmail reports run-due
//! --at` as the controllable clock, report emails caught by a real SMTP sink acting as the
//! outbound relay, and the one-click links opened over HTTP.

use std::time::Duration;

use chrono::{DateTime, Days, TimeZone as _, Utc};
use chrono_tz::Tz;
use cleanmail_worker::sink::{SinkMessage, SmtpSink};
use cleanmail_worker::smtp::SmtpConfig;
use lettre::AsyncTransport as _;
use serde_json::{Value, json};

use crate::common::{Fixture, Server, backends};

const GTUBE: &str = include_str!("../../core/tests/fixtures/test-gtube.eml");
/// The platform secret of the test servers (so tests can forge expired links).
pub const SECRET: &str = "report-test-secret-0123456789abcdef0123456789";

pub async fn sink() -> SmtpSink {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let config = SmtpConfig {
        max_connections_per_ip: 1000,
        ..SmtpConfig::for_tests()
    };
    SmtpSink::start_with(config, None).await.unwrap()
}

/// GTUBE (spam) from `from` with `subject`, CRLF line ends.
fn spam(from: &str, to: &str, subject: &str) -> Vec<u8> {
    let gtube = GTUBE.replace("\r\n", "\n");
    let body = gtube.split_once("\n\n").map_or("", |(_, body)| body);
    format!(
        "From: {from}\nTo: {to}\nSubject: {subject}\nDate: Sun, 29 Nov 2026 10:00:00 +0100\n\
         Message-ID: <{}@spam.example>\nMIME-Version: 1.0\nContent-Type: text/plain\n\n{body}",
        subject.replace(' ', "-")
    )
    .replace("\r\n", "\n")
    .replace('\n', "\r\n")
    .into_bytes()
}

pub async fn send(smtp: std::net::SocketAddr, from: &str, to: &str, raw: &[u8]) {
    let transport = lettre::AsyncSmtpTransport::<lettre::Tokio1Executor>::builder_dangerous(
        smtp.ip().to_string(),
    )
    .port(smtp.port())
    .timeout(Some(Duration::from_secs(20)))
    .build();
    let envelope =
        lettre::address::Envelope::new(Some(from.parse().unwrap()), vec![to.parse().unwrap()])
            .unwrap();
    transport.send_raw(&envelope, raw).await.unwrap();
}

/// The first instant after `after` at one of `times` (local `HH:MM`) in `tz`.
fn next_local(tz: Tz, times: &[(u32, u32)], after: DateTime<Utc>) -> DateTime<Utc> {
    let today = after.with_timezone(&tz).date_naive();
    (0..3)
        .flat_map(|d| {
            let date = today.checked_add_days(Days::new(d)).unwrap();
            times.iter().map(move |&(h, m)| {
                tz.from_local_datetime(&date.and_hms_opt(h, m, 0).unwrap())
                    .earliest()
                    .unwrap()
                    .with_timezone(&Utc)
            })
        })
        .filter(|t| *t > after)
        .min()
        .unwrap()
}

/// `cleanmail reports run-due --at <at>`; the printed summary.
pub fn run_due(server: &Server, at: DateTime<Utc>) -> Value {
    let out = run_due_command(server, at).output().unwrap();
    assert!(
        out.status.success(),
        "run-due failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    serde_json::from_str(stdout.lines().last().unwrap()).unwrap()
}

/// The `run-due` process (with the servers' platform secret).
fn run_due_command(server: &Server, at: DateTime<Utc>) -> std::process::Command {
    let mut command = std::process::Command::new(crate::common::BIN);
    command
        .args(["reports", "run-due", "--at", &at.to_rfc3339()])
        .env("DATABASE_URL", &server.db.url)
        .env("CLEANMAIL_DATA_DIR", server.data_dir.path())
        .env("CLEANMAIL_JWT_SECRET", SECRET);
    command
}

/// The text and HTML parts of a report email.
pub fn parts(message: &SinkMessage) -> (String, String) {
    let parsed = mail_parser::MessageParser::default()
        .parse(&message.data)
        .unwrap();
    (
        parsed.body_text(0).unwrap().into_owned(),
        parsed.body_html(0).unwrap().into_owned(),
    )
}

pub fn subject(message: &SinkMessage) -> String {
    mail_parser::MessageParser::default()
        .parse(&message.data)
        .unwrap()
        .subject()
        .unwrap_or("")
        .to_owned()
}

/// The path and query of the first link in `text` (plain text or HTML) for `purpose`.
pub fn link(text: &str, purpose: &str) -> String {
    let text = text.replace("&#x2f;", "/").replace("&amp;", "&");
    let marker = format!("/links/{purpose}?token=");
    let at = text
        .find(&marker)
        .unwrap_or_else(|| panic!("no {purpose} link in {text}"));
    text[at..]
        .split(|c: char| c.is_whitespace() || c == '"')
        .next()
        .unwrap()
        .to_owned()
}

/// Reports sent so far, waiting until there are `count` (the worker delivers them).
async fn wait_reports(relay: &SmtpSink, count: usize) -> Vec<SinkMessage> {
    let got = relay.wait_for(count, Duration::from_secs(20)).await;
    assert_eq!(got.len(), count, "expected {count} report emails");
    got
}

pub struct Setup {
    pub server: Server,
    pub zurich: Fixture,
    pub newyork: Fixture,
    pub relay: SmtpSink,
    pub downstream: SmtpSink,
}

/// Two tenants: Zurich (built-in policy: daily 09:00, tenant zone Europe/Zurich, user
/// language fr) and New York (tenant zone America/New_York, user override twice daily at
/// 07:00 and 19:00 New York time); each user has one quarantined spam.
pub async fn setup(backend: crate::common::Backend) -> Setup {
    let relay = sink().await;
    let downstream = sink().await;
    let relay_addr = relay.addr().to_string();
    let server = Server::start_with(
        backend,
        &[
            ("CLEANMAIL_OUTBOUND_RELAY", relay_addr.as_str()),
            ("CLEANMAIL_JWT_SECRET", SECRET),
            ("CLEANMAIL_REPORT_INTERVAL_SECS", "0"),
        ],
    )
    .await;
    let admin = server.client(&server.admin_key("root@platform.test"));
    let zurich = Fixture::create(&admin, "Zurich").await;
    let newyork = Fixture::create(&admin, "Newyork").await;
    for fx in [&zurich, &newyork] {
        admin
            .patch(
                &format!("/api/v1/domains/{}", fx.domain),
                json!({ "destination": downstream.addr().to_string(), "state": "live" }),
            )
            .await
            .expect(200);
    }
    admin
        .patch(
            &format!("/api/v1/users/{}", zurich.user),
            json!({ "language": "fr" }),
        )
        .await
        .expect(200);
    admin
        .patch(
            &format!("/api/v1/tenants/{}", newyork.tenant),
            json!({ "timezone": "America/New_York" }),
        )
        .await
        .expect(200);
    admin
        .put(
            &format!("/api/v1/users/{}/policy-overrides", newyork.user),
            json!({ "report": { "frequency": "twice_daily", "at": "07:00", "second_at": "19:00", "timezone": "America/New_York" } }),
        )
        .await
        .expect(200);
    for (fx, subject) in [
        (&zurich, "Zurich spam one"),
        (&newyork, "New York spam one"),
    ] {
        let to = format!("jean@{}", fx.domain_name);
        send(
            server.smtp,
            "bulk@spam.example",
            &to,
            &spam("Bulk <bulk@spam.example>", &to, subject),
        )
        .await;
    }
    wait_quarantined(&server, 2).await;
    Setup {
        server,
        zurich,
        newyork,
        relay,
        downstream,
    }
}

/// Waits until `count` messages are quarantined (ingest runs in the server's worker).
pub async fn wait_quarantined(server: &Server, count: usize) {
    let db = cleanmail_schema::Db::connect(&server.db.url).await.unwrap();
    let filter = cleanmail_schema::store::messages::MessageFilter {
        state: Some("quarantined".into()),
        ..Default::default()
    };
    for _ in 0..200 {
        let found = cleanmail_schema::store::messages::list(
            &db,
            &cleanmail_schema::Scope::Platform,
            &filter,
            &cleanmail_schema::PageRequest::default(),
        )
        .await
        .unwrap()
        .items;
        if found.len() >= count {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("fewer than {count} messages quarantined:\n{}", server.log());
}

#[tokio::test]
async fn reports_go_out_at_each_users_slot_once() {
    for backend in backends() {
        let Setup {
            server,
            zurich,
            newyork,
            relay,
            ..
        } = setup(backend).await;
        let zurich_to = format!("jean@{}", zurich.domain_name);
        let newyork_to = format!("jean@{}", newyork.domain_name);
        let now = Utc::now();
        let zurich_slot = next_local(chrono_tz::Europe::Zurich, &[(9, 0)], now);
        let newyork_slot = next_local(chrono_tz::America::New_York, &[(7, 0), (19, 0)], now);
        let (first, second, first_to, second_to) = if zurich_slot < newyork_slot {
            (zurich_slot, newyork_slot, &zurich_to, &newyork_to)
        } else {
            (newyork_slot, zurich_slot, &newyork_to, &zurich_to)
        };

        // Just before the first slot: the latest slots predate the spam, nothing to send.
        let summary = run_due(&server, first - chrono::Duration::minutes(1));
        assert_eq!(summary["sent"], 0, "{summary}");

        // At the first slot: that user's report only.
        let summary = run_due(&server, first);
        assert_eq!(summary["sent"], 1, "{summary}");
        let got = wait_reports(&relay, 1).await;
        assert_eq!(got[0].rcpt_to, vec![first_to.clone()]);
        assert_eq!(got[0].mail_from, "", "reports come from the null sender");

        // At the second slot, two processes at once: the other user's report, once.
        let spawn = || run_due_command(&server, second).output();
        let (a, b) = std::thread::scope(|s| {
            let a = s.spawn(spawn);
            let b = s.spawn(spawn);
            (a.join().unwrap().unwrap(), b.join().unwrap().unwrap())
        });
        assert!(a.status.success() && b.status.success());
        let sent: u64 = [a, b]
            .iter()
            .map(|o| {
                let out: Value = serde_json::from_str(
                    String::from_utf8_lossy(&o.stdout).lines().last().unwrap(),
                )
                .unwrap();
                out["sent"].as_u64().unwrap()
            })
            .sum();
        assert_eq!(sent, 1, "two processes at one slot send once");
        let got = wait_reports(&relay, 2).await;
        assert_eq!(got[1].rcpt_to, vec![second_to.clone()]);
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(relay.messages().len(), 2, "no double send");

        // The French user's report: language, both parts, the item and its actions.
        let french = got
            .iter()
            .find(|m| m.rcpt_to == [zurich_to.clone()])
            .unwrap();
        assert!(
            subject(french).starts_with("Rapport de quarantaine"),
            "{}",
            subject(french)
        );
        let (text, html) = parts(french);
        assert!(text.contains("Zurich spam one"), "{text}");
        assert!(html.contains("Zurich spam one"), "{html}");
        for purpose in ["release", "delete", "allow_sender", "quarantine", "webmail"] {
            link(&text, purpose);
            link(&html, purpose);
        }
        let english = got
            .iter()
            .find(|m| m.rcpt_to == [newyork_to.clone()])
            .unwrap();
        assert!(
            subject(english).starts_with("Quarantine report"),
            "{}",
            subject(english)
        );
        assert!(parts(english).0.contains("New York spam one"));

        // Same instant again: nothing.
        let summary = run_due(&server, second);
        assert_eq!(summary["sent"], 0, "{summary}");

        // New spam for Zurich, then a worker that was down for three days: one report with
        // only the new item (the latest missed slot once), nothing for New York.
        send(
            server.smtp,
            "bulk@spam.example",
            &zurich_to,
            &spam("Bulk <bulk@spam.example>", &zurich_to, "Zurich spam two"),
        )
        .await;
        wait_quarantined(&server, 3).await;
        let later = second + chrono::Duration::days(3);
        let summary = run_due(&server, later);
        assert_eq!(summary["sent"], 1, "{summary}");
        let got = wait_reports(&relay, 3).await;
        assert_eq!(got[2].rcpt_to, vec![zurich_to.clone()]);
        let (text, _) = parts(&got[2]);
        assert!(text.contains("Zurich spam two"), "{text}");
        assert!(!text.contains("Zurich spam one"), "{text}");
        assert_eq!(run_due(&server, later)["sent"], 0);

        // Reports are in the message log.
        let db = cleanmail_schema::Db::connect(&server.db.url).await.unwrap();
        let log =
            cleanmail_schema::store::messages::log(&db, &cleanmail_schema::Scope::Platform, 100)
                .await
                .unwrap();
        assert_eq!(log.iter().filter(|e| e.category == "report").count(), 3);
    }
}

/// The token of a link path.
fn token_of(path: &str) -> String {
    path.split("token=").nth(1).unwrap().to_owned()
}

async fn state_of(server: &Server, subject: &str) -> String {
    let db = cleanmail_schema::Db::connect(&server.db.url).await.unwrap();
    let all = cleanmail_schema::store::messages::list(
        &db,
        &cleanmail_schema::Scope::Platform,
        &Default::default(),
        &cleanmail_schema::PageRequest::default(),
    )
    .await
    .unwrap()
    .items;
    all.iter()
        .find(|m| m.subject == subject)
        .map(|m| m.state.clone())
        .unwrap_or_else(|| "gone".to_owned())
}

#[tokio::test]
async fn a_release_link_confirms_first_acts_once_and_expires() {
    for backend in backends() {
        let Setup {
            server,
            zurich,
            newyork,
            relay,
            downstream,
            ..
        } = setup(backend).await;
        let slot = next_local(chrono_tz::Europe::Zurich, &[(9, 0)], Utc::now());
        let sent = run_due(&server, slot)["sent"].as_u64().unwrap() as usize;
        let report = wait_reports(&relay, sent)
            .await
            .into_iter()
            .find(|m| m.rcpt_to == [format!("jean@{}", zurich.domain_name)])
            .unwrap();
        let (text, _) = parts(&report);
        let web = server.anonymous();
        let form = "application/x-www-form-urlencoded";

        // The quarantine page lists the item with its actions.
        let page = web.get(&link(&text, "quarantine")).await.expect(200);
        assert!(page.text.contains("Zurich spam one"), "{}", page.text);
        assert!(
            !page.text.contains("New York spam one"),
            "another user's mail"
        );

        // Opening the release link (twice, like a link scanner) only asks, in the user's
        // language (French).
        let release = link(&text, "release");
        for _ in 0..2 {
            let page = web.get(&release).await.expect(200);
            assert!(page.content_type.starts_with("text/html"));
            assert!(page.text.contains("<html lang=\"fr\">"), "{}", page.text);
            assert!(page.text.contains("Libérer ce message"), "{}", page.text);
            assert!(page.text.contains("method=\"post\""));
        }
        assert_eq!(state_of(&server, "Zurich spam one").await, "quarantined");

        // The confirmation's POST releases it, once; it reaches the downstream server.
        let body = format!("token={}", token_of(&release));
        let done = web
            .post_text("/links/release", form, body.clone())
            .await
            .expect(200);
        assert!(done.text.contains("a été libéré"), "{}", done.text);
        let delivered = downstream.wait_for(1, Duration::from_secs(20)).await;
        assert_eq!(delivered.len(), 1, "{}", server.log());
        assert!(delivered[0].text().contains("Zurich spam one"));
        let replay = web
            .post_text("/links/release", form, body)
            .await
            .expect(409);
        assert!(replay.text.contains("déjà été utilisé"), "{}", replay.text);
        web.get(&release).await.expect(409);

        // Expired, tampered, wrong purpose: refused.
        let signer = cleanmail_core::links::LinkSigner::new(SECRET.as_bytes());
        let expired = signer.sign(&cleanmail_core::links::LinkClaims::new(
            zurich.user.clone(),
            None,
            cleanmail_core::links::LinkPurpose::Quarantine,
            Utc::now().timestamp() - 10,
            "expired-1",
        ));
        let page = web
            .get(&format!("/links/quarantine?token={expired}"))
            .await
            .expect(410);
        assert!(page.text.contains("expired"), "{}", page.text);
        // Before the link is verified, the page speaks the browser's language.
        let german = reqwest::Client::new()
            .get(format!("{}/links/quarantine?token={expired}", web.base))
            .header("accept-language", "de-CH, de;q=0.9, en;q=0.5")
            .send()
            .await
            .unwrap();
        assert_eq!(german.status(), 410);
        let german = german.text().await.unwrap();
        assert!(
            german.contains("<html lang=\"de\">") && german.contains("abgelaufen"),
            "{german}"
        );
        web.post_text("/links/delete", form, format!("token={expired}"))
            .await
            .expect(410);
        let tampered = format!("{}x", token_of(&link(&text, "delete")));
        web.get(&format!("/links/delete?token={tampered}"))
            .await
            .expect(400);
        web.get(&format!(
            "/links/release?token={}",
            token_of(&link(&text, "delete"))
        ))
        .await
        .expect(400);

        // A token of this user naming another user's message opens nothing.
        let db = cleanmail_schema::Db::connect(&server.db.url).await.unwrap();
        let theirs = cleanmail_schema::store::messages::list(
            &db,
            &cleanmail_schema::Scope::Platform,
            &Default::default(),
            &cleanmail_schema::PageRequest::default(),
        )
        .await
        .unwrap()
        .items
        .into_iter()
        .find(|m| m.subject == "New York spam one")
        .unwrap();
        let foreign = signer.sign(&cleanmail_core::links::LinkClaims::new(
            zurich.user.clone(),
            Some(theirs.id.to_string()),
            cleanmail_core::links::LinkPurpose::Delete,
            Utc::now().timestamp() + 600,
            "foreign-1",
        ));
        web.get(&format!("/links/delete?token={foreign}"))
            .await
            .expect(404);
        web.post_text("/links/delete", form, format!("token={foreign}"))
            .await
            .expect(404);
        assert_eq!(state_of(&server, "New York spam one").await, "quarantined");
        let _ = newyork;
    }
}

#[tokio::test]
async fn domain_and_tenant_reports_over_both_apis_and_by_email() {
    for backend in backends() {
        let Setup {
            server,
            zurich,
            relay,
            ..
        } = setup(backend).await;
        let admin = server.client(&server.admin_key("second@platform.test"));
        let stats = admin
            .post(
                "/api/v1/reports",
                json!({ "domain_id": zurich.domain, "name": "Weekly numbers", "kind": "statistics",
                        "frequency": "weekly", "recipients": ["boss@outside.example"], "language": "de" }),
            )
            .await
            .expect(201);
        assert_eq!(stats.body["tenant_id"], zurich.tenant);
        let stats_id = stats.id();
        admin
            .post(
                "/api/v1/reports",
                json!({ "tenant_id": zurich.tenant, "name": "Nope", "kind": "statistics",
                        "frequency": "hourly", "recipients": ["x@outside.example"] }),
            )
            .await
            .expect(422);
        admin
            .post(
                "/api/v1/reports",
                json!({ "tenant_id": zurich.tenant, "name": "Bad", "kind": "quarantine",
                        "frequency": "daily", "recipients": ["not an address"] }),
            )
            .await
            .expect(422);

        // GraphQL: create the tenant's quarantine report, list both.
        let created = admin
            .graphql(
                "mutation($t: String!) { createReportDefinition(input: { tenantId: $t, name: \"Daily quarantine\", kind: QUARANTINE, frequency: DAILY, recipients: [\"it@outside.example\"] }) { id kind frequency } }",
                json!({ "t": zurich.tenant }),
            )
            .await;
        assert_eq!(
            created["data"]["createReportDefinition"]["kind"], "QUARANTINE",
            "{created}"
        );
        let listed = admin
            .graphql("{ reportDefinitions { name } }", json!({}))
            .await;
        assert_eq!(
            listed["data"]["reportDefinitions"]
                .as_array()
                .unwrap()
                .len(),
            2,
            "{listed}"
        );

        // On demand: the current day's quarantine and the statistics (JSON and CSV).
        let tomorrow = Utc::now() + chrono::Duration::days(1);
        let quarantine_id = created["data"]["createReportDefinition"]["id"]
            .as_str()
            .unwrap();
        let data = admin
            .get(&format!(
                "/api/v1/reports/{quarantine_id}/data?at={}",
                tomorrow.to_rfc3339().replace('+', "%2B")
            ))
            .await
            .expect(200);
        let items = data.body["quarantined"].as_array().unwrap();
        assert!(
            items.iter().any(|i| i["subject"] == "Zurich spam one"),
            "{}",
            data.text
        );
        let next_week = Utc::now() + chrono::Duration::days(8);
        let at = next_week.to_rfc3339().replace('+', "%2B");
        let data = admin
            .get(&format!("/api/v1/reports/{stats_id}/data?at={at}"))
            .await
            .expect(200);
        let spam = data.body["statistics"]["lines"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["outcome"] == "spam")
            .unwrap()
            .clone();
        assert!(
            spam["count"].as_i64().unwrap() + spam["previous"].as_i64().unwrap() >= 1,
            "{}",
            data.text
        );
        let csv = admin
            .get(&format!(
                "/api/v1/reports/{stats_id}/data?at={at}&format=csv"
            ))
            .await
            .expect(200);
        assert!(csv.content_type.starts_with("text/csv"));
        assert!(
            csv.text
                .starts_with("outcome,count,previous,change_percent\n"),
            "{}",
            csv.text
        );
        admin
            .get(&format!("/api/v1/reports/{quarantine_id}/data?format=csv"))
            .await
            .expect(400);

        // By email at the next 07:00 (the quarantine report) and the next Monday 07:00.
        let next_seven = next_local(chrono_tz::Europe::Zurich, &[(7, 0)], Utc::now());
        let summary = run_due(&server, next_seven);
        assert!(summary["sent"].as_u64().unwrap() >= 1, "{summary}");
        let mut mondays = (0..8)
            .map(|d| next_seven + chrono::Duration::days(d))
            .filter(|t| {
                t.with_timezone(&chrono_tz::Europe::Zurich)
                    .format("%a")
                    .to_string()
                    == "Mon"
            });
        let monday = mondays.next().unwrap();
        run_due(&server, monday + chrono::Duration::days(7));
        let sent = relay.wait_for(10, Duration::from_secs(5)).await;
        let to_it: Vec<_> = sent
            .iter()
            .filter(|m| m.rcpt_to == ["it@outside.example"])
            .collect();
        assert_eq!(to_it.len(), 1, "one daily quarantine report");
        assert!(parts(to_it[0]).0.contains("Zurich spam one"));
        let to_boss: Vec<_> = sent
            .iter()
            .filter(|m| m.rcpt_to == ["boss@outside.example"])
            .collect();
        // One per run that passed a Monday slot (the second run skipped a week: latest only).
        let expected = if monday == next_seven { 2 } else { 1 };
        assert_eq!(to_boss.len(), expected, "weekly statistics reports");
        assert!(
            subject(to_boss[0]).starts_with("E-Mail-Statistik"),
            "{}",
            subject(to_boss[0])
        );

        // Delete through REST: gone for both APIs.
        admin
            .delete(&format!("/api/v1/reports/{stats_id}"))
            .await
            .expect(204);
        admin
            .get(&format!("/api/v1/reports/{stats_id}"))
            .await
            .expect(404);
    }
}
