//! Downstream delivery against the in-memory sink: envelope, TLS, retries and DSNs.

mod common;

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use cleanmail_worker::delivery::{
    DeliveryClient, DeliveryOutcome, Downstream, DownstreamTls, DsnInput, FailedRecipient,
    build_dsn,
};
use cleanmail_worker::sink::{SinkMode, SmtpSink};
use cleanmail_worker::smtp::{
    DataDecision, Envelope, RcptDecision, SessionInfo, SmtpConfig, SmtpHandler, SmtpServer,
};
use common::RawClient;
use tokio_util::sync::CancellationToken;

const MESSAGE: &[u8] = b"From: s@example.org\r\nTo: alice@example.com\r\nSubject: relayed\r\nMessage-ID: <orig-1@example.org>\r\n\r\nHello \xc3\xa9t\xc3\xa9\r\n.dot line\r\n";

fn rcpts(list: &[&str]) -> Vec<String> {
    list.iter().map(|r| (*r).to_owned()).collect()
}

async fn sink() -> SmtpSink {
    common::init();
    SmtpSink::start().await.unwrap()
}

fn downstream(sink: &SmtpSink) -> Downstream {
    Downstream {
        timeout: Duration::from_secs(10),
        ..Downstream::new("127.0.0.1", sink.addr().port())
    }
}

#[tokio::test]
async fn delivers_with_original_envelope_over_starttls() {
    let sink = sink().await;
    let client = DeliveryClient::new("mx.test");
    let report = client
        .deliver(
            &downstream(&sink),
            "s@example.org",
            &rcpts(&["alice@example.com", "list-expanded@example.com"]),
            MESSAGE,
        )
        .await;
    assert!(report.all_delivered(), "{report:?}");
    let outcome = report.summary();
    let DeliveryOutcome::Delivered { response } = outcome else {
        panic!("not delivered: {outcome:?}");
    };
    assert!(
        response.starts_with("250 2.0.0 Ok: queued as "),
        "{response}"
    );
    let messages = sink.messages();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].mail_from, "s@example.org");
    assert_eq!(
        messages[0].rcpt_to,
        ["alice@example.com", "list-expanded@example.com"]
    );
    assert!(messages[0].tls, "opportunistic STARTTLS was used");
    assert!(messages[0].data.ends_with(MESSAGE), "bytes preserved");
}

#[tokio::test]
async fn plain_delivery_when_tls_is_off() {
    let sink = sink().await;
    let client = DeliveryClient::new("mx.test");
    let target = Downstream {
        tls: DownstreamTls::None,
        ..downstream(&sink)
    };
    let outcome = client
        .deliver(&target, "", &rcpts(&["bob@example.com"]), MESSAGE)
        .await
        .summary();
    assert!(
        matches!(outcome, DeliveryOutcome::Delivered { .. }),
        "{outcome:?}"
    );
    let messages = sink.messages();
    assert!(!messages[0].tls);
    assert_eq!(messages[0].mail_from, "", "null sender kept");
}

#[tokio::test]
async fn temporary_failures_then_success() {
    let mut sink = sink().await;
    let client = DeliveryClient::new("mx.test");
    let target = downstream(&sink);
    let to = rcpts(&["alice@example.com"]);

    sink.set_mode(SinkMode::TempFail);
    let outcome = client
        .deliver(&target, "s@example.org", &to, MESSAGE)
        .await
        .summary();
    let DeliveryOutcome::TemporaryFailure(reason) = outcome else {
        panic!("expected a temporary failure: {outcome:?}");
    };
    assert!(reason.starts_with("451 4.3.0"), "{reason}");

    sink.go_down().await;
    let outcome = client
        .deliver(&target, "s@example.org", &to, MESSAGE)
        .await
        .summary();
    assert!(
        matches!(outcome, DeliveryOutcome::TemporaryFailure(_)),
        "connection refused is temporary: {outcome:?}"
    );

    sink.come_up().await.unwrap();
    sink.set_mode(SinkMode::Accept);
    let outcome = client
        .deliver(&target, "s@example.org", &to, MESSAGE)
        .await
        .summary();
    assert!(
        matches!(outcome, DeliveryOutcome::Delivered { .. }),
        "{outcome:?}"
    );
    assert_eq!(sink.messages().len(), 1);
}

#[tokio::test]
async fn permanent_failure_produces_a_dsn_to_the_sender() {
    let sink = sink().await;
    let client = DeliveryClient::new("mx.test");
    let target = downstream(&sink);
    let arrived = Utc::now();

    sink.set_mode(SinkMode::RejectRecipients);
    let outcome = client
        .deliver(
            &target,
            "s@example.org",
            &rcpts(&["gone@example.com"]),
            MESSAGE,
        )
        .await
        .summary();
    let DeliveryOutcome::PermanentFailure(reason) = outcome else {
        panic!("expected a permanent failure: {outcome:?}");
    };
    assert!(reason.starts_with("550 5.1.1"), "{reason}");

    let failed = [FailedRecipient {
        address: "gone@example.com".to_owned(),
        reason,
    }];
    let dsn = build_dsn(&DsnInput {
        reporting_mta: "mx.test",
        remote_mta: Some("127.0.0.1"),
        original_sender: "s@example.org",
        recipients: &failed,
        arrival_date: arrived,
        original_message: MESSAGE,
        expired: false,
        now: Utc::now(),
    })
    .expect("a DSN for a real sender");

    // The bounce itself goes out with the null sender.
    sink.set_mode(SinkMode::Accept);
    let outcome = client
        .deliver(&target, &dsn.mail_from, &dsn.rcpt_to, &dsn.message)
        .await
        .summary();
    assert!(
        matches!(outcome, DeliveryOutcome::Delivered { .. }),
        "{outcome:?}"
    );
    let bounce = &sink.messages()[0];
    assert_eq!(bounce.mail_from, "");
    assert_eq!(bounce.rcpt_to, ["s@example.org"]);
    let text = bounce.text();
    assert!(text.contains("Content-Type: multipart/report; report-type=delivery-status;"));
    assert!(text.contains("Final-Recipient: rfc822; gone@example.com"));
    assert!(text.contains("Status: 5.1.1"));
    assert!(text.contains("Diagnostic-Code: smtp; 550 5.1.1"));
    assert!(text.contains("Message-ID: <orig-1@example.org>"));

    // A message that was itself a bounce never gets one.
    let none = build_dsn(&DsnInput {
        reporting_mta: "mx.test",
        remote_mta: None,
        original_sender: "",
        recipients: &failed,
        arrival_date: arrived,
        original_message: MESSAGE,
        expired: false,
        now: Utc::now(),
    });
    assert!(none.is_none());
}

#[tokio::test]
async fn invalid_recipient_address_is_permanent() {
    let sink = sink().await;
    let client = DeliveryClient::new("mx.test");
    let outcome = client
        .deliver(
            &downstream(&sink),
            "s@example.org",
            &rcpts(&["no-at-sign"]),
            MESSAGE,
        )
        .await
        .summary();
    assert!(
        matches!(outcome, DeliveryOutcome::PermanentFailure(_)),
        "{outcome:?}"
    );
}

/// A handler that relays every accepted message straight to a downstream: the shape the
/// coordinator's ingest path will have, minus the database and queue.
struct RelayHandler {
    client: DeliveryClient,
    downstream: Downstream,
}

impl SmtpHandler for RelayHandler {
    async fn check_recipient(&self, _session: &SessionInfo, rcpt: &str) -> RcptDecision {
        if rcpt.ends_with("@example.com") {
            RcptDecision::Accept
        } else {
            RcptDecision::RelayDenied
        }
    }

    async fn receive(&self, envelope: Envelope, message: Vec<u8>) -> DataDecision {
        let report = self
            .client
            .deliver(
                &self.downstream,
                &envelope.mail_from,
                &envelope.rcpt_to,
                &message,
            )
            .await;
        match report.summary() {
            DeliveryOutcome::Delivered { .. } => DataDecision::Accept {
                queue_id: "relayed".to_owned(),
            },
            DeliveryOutcome::TemporaryFailure(reason) => DataDecision::TempFail(reason),
            DeliveryOutcome::PermanentFailure(reason) => DataDecision::Reject(reason),
        }
    }
}

#[tokio::test]
async fn inbound_server_relays_to_the_sink_with_envelope_preserved() {
    let sink = sink().await;
    let handler = Arc::new(RelayHandler {
        client: DeliveryClient::new("mx.test"),
        downstream: downstream(&sink),
    });
    let server = SmtpServer::bind(SmtpConfig::for_tests(), handler)
        .await
        .unwrap();
    let addr = server.local_addr();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(server.run(shutdown.clone()));

    let mut client = RawClient::connect_greeted(addr).await;
    client.cmd("EHLO client.test").await;
    client.cmd("MAIL FROM:<s@example.org>").await;
    client.cmd("RCPT TO:<alice@example.com>").await;
    client.cmd("RCPT TO:<bob@example.com>").await;
    client.cmd("DATA").await;
    let reply = client.cmd("Subject: through\r\n\r\nbody\r\n.").await;
    assert!(
        reply.starts_with("250 2.0.0 Ok: queued as relayed"),
        "{reply}"
    );
    client.cmd("QUIT").await;

    let messages = sink.wait_for(1, Duration::from_secs(5)).await;
    assert_eq!(messages[0].mail_from, "s@example.org");
    assert_eq!(
        messages[0].rcpt_to,
        ["alice@example.com", "bob@example.com"]
    );
    let text = messages[0].text();
    // Two trace headers: the sink's, then ours.
    assert_eq!(text.matches("Received: from ").count(), 2, "{text}");
    assert!(text.ends_with("Subject: through\r\n\r\nbody\r\n"));

    shutdown.cancel();
    task.await.unwrap();
}

#[tokio::test]
async fn sink_writes_eml_files() {
    common::init();
    let dir = tempfile::tempdir().unwrap();
    let sink = SmtpSink::start_with(SmtpConfig::for_tests(), Some(dir.path().to_owned()))
        .await
        .unwrap();
    let client = DeliveryClient::new("mx.test");
    let outcome = client
        .deliver(
            &downstream(&sink),
            "s@example.org",
            &rcpts(&["a@example.com"]),
            MESSAGE,
        )
        .await
        .summary();
    assert!(matches!(outcome, DeliveryOutcome::Delivered { .. }));
    let files: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(files.len(), 1);
    let written = std::fs::read(files[0].as_ref().unwrap().path()).unwrap();
    assert!(written.ends_with(MESSAGE));
}

#[tokio::test]
async fn each_recipient_gets_its_own_outcome() {
    let sink = sink().await;
    sink.reject_address("gone@example.com");
    let client = DeliveryClient::new("mx.test");
    let report = client
        .deliver(
            &downstream(&sink),
            "s@example.org",
            &rcpts(&["alice@example.com", "gone@example.com", "bob@example.com"]),
            MESSAGE,
        )
        .await;
    let outcomes: Vec<&str> = report
        .recipients
        .iter()
        .map(|r| match r.outcome {
            DeliveryOutcome::Delivered { .. } => "delivered",
            DeliveryOutcome::TemporaryFailure(_) => "temporary",
            DeliveryOutcome::PermanentFailure(_) => "permanent",
        })
        .collect();
    assert_eq!(outcomes, ["delivered", "permanent", "delivered"]);
    assert!(report.to_retry().is_empty());
    let bounced = report.bounced();
    assert_eq!(bounced.len(), 1);
    assert_eq!(bounced[0].address, "gone@example.com");
    assert!(bounced[0].reason.starts_with("550 5.1.1"), "{bounced:?}");
    assert!(matches!(
        report.summary(),
        DeliveryOutcome::PermanentFailure(_)
    ));
    let messages = sink.messages();
    assert_eq!(messages.len(), 1);
    assert_eq!(
        messages[0].rcpt_to,
        ["alice@example.com", "bob@example.com"]
    );
}

#[tokio::test]
async fn connections_are_reused_and_survive_a_restart() {
    let mut sink = sink().await;
    let client = DeliveryClient::new("mx.test");
    let target = downstream(&sink);
    let to = rcpts(&["alice@example.com"]);
    for _ in 0..3 {
        let report = client.deliver(&target, "s@example.org", &to, MESSAGE).await;
        assert!(report.all_delivered(), "{report:?}");
    }
    // The pooled connection dies with the sink; the next attempt notices and reconnects.
    sink.go_down().await;
    sink.come_up().await.unwrap();
    let report = client.deliver(&target, "s@example.org", &to, MESSAGE).await;
    assert!(report.all_delivered(), "{report:?}");
    assert_eq!(sink.messages().len(), 4);
}

#[tokio::test]
async fn internationalized_sender_is_relayed_with_smtputf8() {
    let sink = sink().await;
    let client = DeliveryClient::new("mx.test");
    let report = client
        .deliver(
            &downstream(&sink),
            "jörg@bücher.example",
            &rcpts(&["alice@example.com"]),
            MESSAGE,
        )
        .await;
    assert!(report.all_delivered(), "{report:?}");
    let messages = sink.messages();
    assert_eq!(messages[0].mail_from, "jörg@bücher.example");
    assert!(messages[0].text().contains("with UTF8SMTPS id "));
}
