//! The inbound SMTP server driven by real clients (lettre and a raw TCP client) on loopback.

mod common;

use std::time::Duration;

use cleanmail_worker::smtp::SmtpConfig;
use common::{RawClient, TestServer};
use lettre::address::Envelope as LettreEnvelope;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

const MESSAGE: &str = "From: Sender <sender@example.org>\r\n\
To: alice@example.com\r\n\
Subject: Hello\r\n\
\r\n\
Hi Alice,\r\n\
.a line that starts with a dot\r\n\
bye\r\n";

fn lettre_client(server: &TestServer, tls: bool) -> AsyncSmtpTransport<Tokio1Executor> {
    let tls = if tls {
        Tls::Required(
            TlsParameters::builder("mx.test".to_owned())
                .dangerous_accept_invalid_certs(true)
                .build_rustls()
                .unwrap(),
        )
    } else {
        Tls::None
    };
    AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
        .port(server.addr.port())
        .tls(tls)
        .timeout(Some(Duration::from_secs(10)))
        .build()
}

fn envelope(from: &str, to: &[&str]) -> LettreEnvelope {
    LettreEnvelope::new(
        Some(from.parse().unwrap()),
        to.iter().map(|a| a.parse().unwrap()).collect(),
    )
    .unwrap()
}

#[tokio::test]
async fn lettre_plain_delivery_reaches_the_handler() {
    let server = TestServer::start(SmtpConfig::for_tests()).await;
    let client = lettre_client(&server, false);
    // lettre appends `\r\n.\r\n` itself, so the final CRLF is left off here.
    let response = client
        .send_raw(
            &envelope(
                "sender@example.org",
                &["alice@example.com", "bob@example.com"],
            ),
            MESSAGE.trim_end().as_bytes(),
        )
        .await
        .unwrap();
    assert_eq!(response.code().to_string(), "250");
    assert!(response.message().any(|line| line.contains("queued as Q1")));

    let messages = server.handler.messages();
    assert_eq!(messages.len(), 1);
    let (envelope, data) = &messages[0];
    assert_eq!(envelope.mail_from, "sender@example.org");
    assert_eq!(envelope.rcpt_to, ["alice@example.com", "bob@example.com"]);
    assert!(envelope.session.esmtp);
    assert!(envelope.session.tls.is_none());
    let text = String::from_utf8(data.clone()).unwrap();
    assert!(text.starts_with("Received: from "), "{text}");
    assert!(text.contains("by mx.test (Cleanmail) with ESMTP id "));
    // The original bytes follow the trace header, dot-unstuffed.
    assert!(text.ends_with(MESSAGE), "{text}");
}

#[tokio::test]
async fn lettre_starttls_delivery_records_tls() {
    let server = TestServer::start(SmtpConfig::for_tests()).await;
    let client = lettre_client(&server, true);
    client
        .send_raw(
            &envelope("sender@example.org", &["alice@example.com"]),
            MESSAGE.as_bytes(),
        )
        .await
        .unwrap();
    let messages = server.handler.messages();
    let (envelope, data) = &messages[0];
    let tls = envelope.session.tls.as_ref().expect("session is TLS");
    assert_eq!(tls.protocol, "TLSv1_3");
    let text = String::from_utf8(data.clone()).unwrap();
    assert!(text.contains("(using TLSv1_3 with cipher TLS13_"), "{text}");
    assert!(text.contains("with ESMTPS id "), "{text}");
    assert!(text.contains("for <alice@example.com>;"), "{text}");
}

#[tokio::test]
async fn ehlo_advertises_extensions_and_recipients_are_checked() {
    let server = TestServer::start(SmtpConfig::for_tests()).await;
    let mut client = RawClient::connect_greeted(server.addr).await;
    let ehlo = client.cmd("EHLO client.test").await;
    for extension in [
        "SIZE 26214400",
        "PIPELINING",
        "8BITMIME",
        "SMTPUTF8",
        "ENHANCEDSTATUSCODES",
        "CHUNKING",
        "STARTTLS",
    ] {
        assert!(ehlo.contains(extension), "{extension} missing in {ehlo}");
    }
    assert!(
        client
            .cmd("MAIL FROM:<sender@example.org>")
            .await
            .starts_with("250 2.1.0")
    );
    assert_eq!(
        client.cmd("RCPT TO:<nobody@example.com>").await,
        "550 5.1.1 Recipient address rejected: user unknown\r\n"
    );
    assert_eq!(
        client.cmd("RCPT TO:<someone@elsewhere.net>").await,
        "554 5.7.1 Relay access denied\r\n"
    );
    assert_eq!(
        client.cmd("DATA").await,
        "554 5.5.1 No valid recipients\r\n"
    );
    assert!(
        client
            .cmd("RCPT TO:<Alice@Example.com>")
            .await
            .starts_with("250 2.1.5")
    );
    assert!(client.cmd("NOOP").await.starts_with("250 2.0.0"));
    assert!(client.cmd("VRFY alice").await.starts_with("252 "));
    assert!(client.cmd("RSET").await.starts_with("250 2.0.0"));
    assert!(
        client
            .cmd("RCPT TO:<alice@example.com>")
            .await
            .starts_with("503 5.5.1")
    );
    assert_eq!(client.cmd("QUIT").await, "221 2.0.0 Bye\r\n");
    assert!(client.closed().await);
}

#[tokio::test]
async fn mail_requires_helo_first() {
    let server = TestServer::start(SmtpConfig::for_tests()).await;
    let mut client = RawClient::connect_greeted(server.addr).await;
    assert!(
        client
            .cmd("MAIL FROM:<a@example.org>")
            .await
            .starts_with("503 5.5.1")
    );
    assert!(
        client
            .cmd("HELO client.test")
            .await
            .starts_with("250 mx.test")
    );
    assert!(
        client
            .cmd("MAIL FROM:<a@example.org>")
            .await
            .starts_with("250")
    );
    assert!(
        client
            .cmd("MAIL FROM:<a@example.org>")
            .await
            .starts_with("503 5.5.1 Nested")
    );
}

#[tokio::test]
async fn pipelined_transaction_gets_replies_in_order() {
    let server = TestServer::start(SmtpConfig::for_tests()).await;
    let mut client = RawClient::connect_greeted(server.addr).await;
    client.cmd("EHLO client.test").await;
    client
        .send(
            "MAIL FROM:<>\r\n\
             RCPT TO:<alice@example.com>\r\n\
             RCPT TO:<ghost@example.com>\r\n\
             RCPT TO:<bob@example.com>\r\n\
             DATA\r\n",
        )
        .await;
    assert!(client.reply().await.starts_with("250 2.1.0"));
    assert!(client.reply().await.starts_with("250 2.1.5"));
    assert!(client.reply().await.starts_with("550 5.1.1"));
    assert!(client.reply().await.starts_with("250 2.1.5"));
    assert!(client.reply().await.starts_with("354 "));
    client
        .send("Subject: pipelined\r\n\r\n..dot\r\nbody\r\n.\r\nNOOP\r\nQUIT\r\n")
        .await;
    assert_eq!(client.reply().await, "250 2.0.0 Ok: queued as Q1\r\n");
    assert!(client.reply().await.starts_with("250 2.0.0"));
    assert!(client.reply().await.starts_with("221 "));

    let messages = server.handler.messages();
    let (envelope, data) = &messages[0];
    assert_eq!(envelope.mail_from, "", "null sender");
    assert_eq!(envelope.rcpt_to, ["alice@example.com", "bob@example.com"]);
    assert!(String::from_utf8_lossy(data).ends_with("Subject: pipelined\r\n\r\n.dot\r\nbody\r\n"));
}

#[tokio::test]
async fn bdat_chunks_are_assembled() {
    let server = TestServer::start(SmtpConfig::for_tests()).await;
    let mut client = RawClient::connect_greeted(server.addr).await;
    client.cmd("EHLO client.test").await;
    client.cmd("MAIL FROM:<s@example.org> BODY=8BITMIME").await;
    client.cmd("RCPT TO:<carol@example.com>").await;
    client.send("BDAT 14\r\nSubject: x\r\n\r\n").await;
    assert!(client.reply().await.starts_with("250 2.0.0"));
    client.send("BDAT 6 LAST\r\nbody\r\n").await;
    assert!(
        client
            .reply()
            .await
            .starts_with("250 2.0.0 Ok: queued as Q1")
    );
    let messages = server.handler.messages();
    let (envelope, data) = &messages[0];
    assert!(envelope.body_8bitmime);
    assert!(String::from_utf8_lossy(data).ends_with("\r\nSubject: x\r\n\r\nbody\r\n"));
}

#[tokio::test]
async fn message_rejected_after_data_with_reason() {
    let server = TestServer::start(SmtpConfig::for_tests()).await;
    let mut client = RawClient::connect_greeted(server.addr).await;
    client.cmd("EHLO client.test").await;
    client.cmd("MAIL FROM:<s@example.org>").await;
    client.cmd("RCPT TO:<alice@example.com>").await;
    assert!(client.cmd("DATA").await.starts_with("354"));
    let reply = client
        .cmd("X-Test-Virus: yes\r\nSubject: eicar\r\n\r\nbody\r\n.")
        .await;
    assert_eq!(reply, "550 5.7.1 Virus found: Eicar-Test-Signature\r\n");
    // The session goes on: a temporary failure of the store is a 451.
    client.cmd("MAIL FROM:<s@example.org>").await;
    client.cmd("RCPT TO:<alice@example.com>").await;
    client.cmd("DATA").await;
    let reply = client.cmd("X-Test-Tempfail: yes\r\n\r\nbody\r\n.").await;
    assert_eq!(reply, "451 4.3.0 Storage unavailable, try later\r\n");
    assert!(server.handler.messages().is_empty());
}

#[tokio::test]
async fn lettre_sees_rejections_as_permanent_errors() {
    let server = TestServer::start(SmtpConfig::for_tests()).await;
    let client = lettre_client(&server, false);
    let err = client
        .send_raw(
            &envelope("s@example.org", &["nobody@example.com"]),
            MESSAGE.as_bytes(),
        )
        .await
        .unwrap_err();
    assert!(err.is_permanent());
    assert_eq!(err.status().unwrap().to_string(), "550");
    let err = client
        .send_raw(
            &envelope("s@example.org", &["alice@example.com"]),
            b"X-Test-Virus: 1\r\n\r\nbody\r\n",
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("Virus found"), "{err}");
}

#[tokio::test]
async fn size_limit_is_enforced() {
    let config = SmtpConfig {
        max_message_size: 1000,
        ..SmtpConfig::for_tests()
    };
    let server = TestServer::start(config).await;
    let mut client = RawClient::connect_greeted(server.addr).await;
    assert!(client.cmd("EHLO client.test").await.contains("SIZE 1000"));
    assert!(
        client
            .cmd("MAIL FROM:<s@example.org> SIZE=5000")
            .await
            .starts_with("552 5.3.4")
    );
    client.cmd("MAIL FROM:<s@example.org>").await;
    client.cmd("RCPT TO:<alice@example.com>").await;
    assert!(client.cmd("DATA").await.starts_with("354"));
    let line = "x".repeat(98);
    for _ in 0..30 {
        client.send(&format!("{line}\r\n")).await;
    }
    assert!(client.cmd(".").await.starts_with("552 5.3.4"));
    // The transaction is gone but the session still works.
    assert!(
        client
            .cmd("RCPT TO:<alice@example.com>")
            .await
            .starts_with("503")
    );
    client.cmd("MAIL FROM:<s@example.org>").await;
    client.cmd("RCPT TO:<alice@example.com>").await;
    client.cmd("DATA").await;
    assert!(
        client
            .cmd("Subject: small\r\n\r\nok\r\n.")
            .await
            .starts_with("250")
    );
    assert_eq!(server.handler.messages().len(), 1);
}

#[tokio::test]
async fn recipient_limit_is_enforced() {
    let config = SmtpConfig {
        max_recipients: 2,
        ..SmtpConfig::for_tests()
    };
    let server = TestServer::start(config).await;
    let mut client = RawClient::connect_greeted(server.addr).await;
    client.cmd("EHLO client.test").await;
    client.cmd("MAIL FROM:<s@example.org>").await;
    assert!(
        client
            .cmd("RCPT TO:<alice@example.com>")
            .await
            .starts_with("250")
    );
    assert!(
        client
            .cmd("RCPT TO:<bob@example.com>")
            .await
            .starts_with("250")
    );
    assert_eq!(
        client.cmd("RCPT TO:<carol@example.com>").await,
        "452 4.5.3 Too many recipients\r\n"
    );
}

#[tokio::test]
async fn connections_per_ip_are_capped() {
    let config = SmtpConfig {
        max_connections_per_ip: 2,
        ..SmtpConfig::for_tests()
    };
    let server = TestServer::start(config).await;
    let first = RawClient::connect_greeted(server.addr).await;
    let _second = RawClient::connect_greeted(server.addr).await;
    let mut third = RawClient::connect(server.addr).await;
    let reply = third.reply().await;
    assert!(reply.starts_with("421 4.7.0"), "{reply}");
    assert!(third.closed().await);

    // Once a connection ends its slot is free again.
    drop(first);
    let mut reply = String::new();
    for _ in 0..200 {
        let mut again = RawClient::connect(server.addr).await;
        reply = again.reply().await;
        if reply.starts_with("220") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(reply.starts_with("220"), "{reply}");
}

#[tokio::test]
async fn total_connections_are_capped() {
    let config = SmtpConfig {
        max_connections: 1,
        ..SmtpConfig::for_tests()
    };
    let server = TestServer::start(config).await;
    let _first = RawClient::connect_greeted(server.addr).await;
    let mut second = RawClient::connect(server.addr).await;
    assert!(second.reply().await.starts_with("421 4.3.2"));
}

#[tokio::test]
async fn too_many_bad_commands_close_the_session() {
    let config = SmtpConfig {
        max_bad_commands: 3,
        ..SmtpConfig::for_tests()
    };
    let server = TestServer::start(config).await;
    let mut client = RawClient::connect_greeted(server.addr).await;
    client
        .send("FOO\r\nBAR baz\r\nRCPT TO:<alice@example.com>\r\nMAIL FROM:broken\r\nNOOP\r\n")
        .await;
    assert!(client.reply().await.starts_with("500 5.5.1"));
    assert!(client.reply().await.starts_with("500 5.5.1"));
    assert!(client.reply().await.starts_with("503 5.5.1"));
    let last = client.reply().await;
    assert!(last.starts_with("421 4.7.0 Too many errors"), "{last}");
    assert!(client.closed().await);
}

#[tokio::test]
async fn overlong_line_is_refused_and_skipped() {
    let server = TestServer::start(SmtpConfig::for_tests()).await;
    let mut client = RawClient::connect_greeted(server.addr).await;
    let long = format!("NOOP {}\r\n", "a".repeat(40_000));
    client.send(&long).await;
    assert!(client.reply().await.starts_with("500 5.5.2 Line too long"));
    assert!(client.cmd("NOOP").await.starts_with("250"));
}

#[tokio::test]
async fn idle_client_times_out() {
    let config = SmtpConfig {
        command_timeout: Duration::from_millis(200),
        ..SmtpConfig::for_tests()
    };
    let server = TestServer::start(config).await;
    let mut client = RawClient::connect_greeted(server.addr).await;
    let reply = client.reply().await;
    assert!(reply.starts_with("421 4.4.2"), "{reply}");
    assert!(client.closed().await);
}

#[tokio::test]
async fn stalled_data_times_out() {
    let config = SmtpConfig {
        data_timeout: Duration::from_millis(200),
        ..SmtpConfig::for_tests()
    };
    let server = TestServer::start(config).await;
    let mut client = RawClient::connect_greeted(server.addr).await;
    client.cmd("EHLO client.test").await;
    client.cmd("MAIL FROM:<s@example.org>").await;
    client.cmd("RCPT TO:<alice@example.com>").await;
    client.cmd("DATA").await;
    client.send("Subject: half a message\r\n").await;
    let reply = client.reply().await;
    assert!(reply.starts_with("421 4.4.2"), "{reply}");
    assert!(server.handler.messages().is_empty());
}

#[tokio::test]
async fn shutdown_closes_idle_sessions_and_stops() {
    let mut server = TestServer::start(SmtpConfig::for_tests()).await;
    let mut client = RawClient::connect_greeted(server.addr).await;
    client.cmd("EHLO client.test").await;
    server.shutdown.cancel();
    let reply = client.reply().await;
    assert!(reply.starts_with("421 4.3.2"), "{reply}");
    let task = server.task.take().unwrap();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("server stops")
        .unwrap();
    assert!(tokio::net::TcpStream::connect(server.addr).await.is_err());
}

#[tokio::test]
async fn starttls_is_refused_when_disabled() {
    let config = SmtpConfig {
        tls: cleanmail_worker::smtp::TlsSetting::Disabled,
        ..SmtpConfig::for_tests()
    };
    let server = TestServer::start(config).await;
    let mut client = RawClient::connect_greeted(server.addr).await;
    assert!(!client.cmd("EHLO client.test").await.contains("STARTTLS"));
    assert!(client.cmd("STARTTLS").await.starts_with("502 5.5.1"));
}

#[tokio::test]
async fn malformed_commands_get_exactly_one_reply_each() {
    let server = TestServer::start(SmtpConfig::for_tests()).await;
    let mut client = RawClient::connect_greeted(server.addr).await;
    client.cmd("EHLO client.test").await;
    client
        .send(
            "MAIL FROM:<a@example.org> FOO=bar BAZ=1\r\n\
             MAIL FROM:<a@example.org> SIZE=abc BODY=7BIT\r\n\
             MAIL FROM:<a@example.org> BODY=WEIRD SIZE=10\r\n\
             MAIL FROM:<not an address> SIZE=10\r\n\
             EHLO\r\n\
             NOOP\r\n",
        )
        .await;
    let mut replies = Vec::new();
    for _ in 0..6 {
        replies.push(client.reply().await);
    }
    for reply in &replies[..5] {
        assert!(reply.starts_with('5'), "{replies:?}");
    }
    assert!(replies[5].starts_with("250 2.0.0"), "{replies:?}");
}

/// Reads one reply from any stream (for the TLS part of the STARTTLS test).
async fn read_reply<S: tokio::io::AsyncBufRead + Unpin>(stream: &mut S) -> String {
    use tokio::io::AsyncBufReadExt;
    let mut reply = String::new();
    loop {
        let mut line = String::new();
        if stream.read_line(&mut line).await.unwrap() == 0 {
            return reply;
        }
        reply.push_str(&line);
        if line.as_bytes().get(3) != Some(&b'-') {
            return reply;
        }
    }
}

#[tokio::test]
async fn starttls_with_pem_certificate_discards_pipelined_commands() {
    use std::sync::Arc;
    use tokio::io::{AsyncWriteExt, BufReader};

    common::init();
    let dir = tempfile::tempdir().unwrap();
    let generated = rcgen::generate_simple_self_signed(vec!["mx.test".to_owned()]).unwrap();
    let cert_path = dir.path().join("cert.pem");
    let key_path = dir.path().join("key.pem");
    std::fs::write(&cert_path, generated.cert.pem()).unwrap();
    std::fs::write(&key_path, generated.signing_key.serialize_pem()).unwrap();
    let config = SmtpConfig {
        tls: cleanmail_worker::smtp::TlsSetting::PemFiles {
            cert_path,
            key_path,
        },
        ..SmtpConfig::for_tests()
    };
    let server = TestServer::start(config).await;

    let mut plain = BufReader::new(tokio::net::TcpStream::connect(server.addr).await.unwrap());
    assert!(read_reply(&mut plain).await.starts_with("220 "));
    plain
        .get_mut()
        .write_all(b"EHLO client.test\r\n")
        .await
        .unwrap();
    assert!(read_reply(&mut plain).await.contains("STARTTLS"));
    // A command smuggled behind STARTTLS must not survive into the TLS session.
    plain
        .get_mut()
        .write_all(b"STARTTLS\r\nMAIL FROM:<evil@example.org>\r\n")
        .await
        .unwrap();
    assert!(read_reply(&mut plain).await.starts_with("220 2.0.0"));

    let mut roots = rustls::RootCertStore::empty();
    roots.add(generated.cert.der().clone()).unwrap();
    let client_config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client_config));
    let server_name = rustls::pki_types::ServerName::try_from("mx.test").unwrap();
    let tls = connector
        .connect(server_name, plain.into_inner())
        .await
        .expect("certificate from the PEM files verifies");
    let mut tls = BufReader::new(tls);

    tls.get_mut()
        .write_all(b"EHLO client.test\r\n")
        .await
        .unwrap();
    let ehlo = read_reply(&mut tls).await;
    assert!(ehlo.starts_with("250-mx.test"), "{ehlo}");
    assert!(!ehlo.contains("STARTTLS"), "{ehlo}");
    tls.get_mut()
        .write_all(b"RCPT TO:<alice@example.com>\r\n")
        .await
        .unwrap();
    let reply = read_reply(&mut tls).await;
    assert!(
        reply.starts_with("503 5.5.1"),
        "injected MAIL was executed: {reply}"
    );
    tls.get_mut().write_all(b"QUIT\r\n").await.unwrap();
    assert!(read_reply(&mut tls).await.starts_with("221"));
}

#[tokio::test]
async fn smtputf8_transaction_is_flagged() {
    let server = TestServer::start(SmtpConfig::for_tests()).await;
    let mut client = RawClient::connect_greeted(server.addr).await;
    client.cmd("EHLO client.test").await;
    let reply = client
        .cmd("MAIL FROM:<jörg@bücher.example> SMTPUTF8 BODY=8BITMIME")
        .await;
    assert!(reply.starts_with("250"), "{reply}");
    client.cmd("RCPT TO:<alice@example.com>").await;
    client.cmd("DATA").await;
    let reply = client.cmd("Subject: Grüße\r\n\r\nÄpfel\r\n.").await;
    assert!(reply.starts_with("250"), "{reply}");
    let messages = server.handler.messages();
    let (envelope, data) = &messages[0];
    assert_eq!(envelope.mail_from, "jörg@bücher.example");
    assert!(envelope.smtputf8 && envelope.body_8bitmime);
    let text = String::from_utf8(data.clone()).unwrap();
    assert!(text.contains("with UTF8SMTP id "), "{text}");
    assert!(text.ends_with("Subject: Grüße\r\n\r\nÄpfel\r\n"));
}

#[tokio::test]
async fn shutdown_lets_a_message_in_flight_finish() {
    let mut server = TestServer::start(SmtpConfig::for_tests()).await;
    let mut client = RawClient::connect_greeted(server.addr).await;
    client.cmd("EHLO client.test").await;
    client.cmd("MAIL FROM:<s@example.org>").await;
    client.cmd("RCPT TO:<alice@example.com>").await;
    assert!(client.cmd("DATA").await.starts_with("354"));
    client.send("Subject: in flight\r\n\r\n").await;
    server.shutdown.cancel();
    let reply = client.cmd("still accepted\r\n.").await;
    assert!(reply.starts_with("250 2.0.0"), "{reply}");
    assert!(client.reply().await.starts_with("421 4.3.2"));
    let task = server.task.take().unwrap();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("server stops")
        .unwrap();
    assert_eq!(server.handler.messages().len(), 1);
}
