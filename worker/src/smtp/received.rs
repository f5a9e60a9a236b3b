//! The `Received:` trace header the server prepends to every accepted message.

use std::net::IpAddr;

use chrono::{DateTime, Utc};

use super::handler::Envelope;

/// Formats the `Received:` header (RFC 5321 section 4.4), folded, ending in CRLF.
///
/// The protocol is `SMTP`, `ESMTP` or `ESMTPS` (RFC 3848), or `UTF8SMTP`/`UTF8SMTPS` for
/// SMTPUTF8 transactions (RFC 6531). `for <rcpt>` is added only for a single recipient,
/// so the header never discloses the other recipients.
pub fn received_header(envelope: &Envelope, hostname: &str, now: DateTime<Utc>) -> String {
    let session = &envelope.session;
    let helo = session.helo.as_deref().map(sanitize).unwrap_or_default();
    let helo = if helo.is_empty() {
        "unknown".to_owned()
    } else {
        helo
    };
    let ip_literal = match session.peer_addr.ip() {
        IpAddr::V4(ip) => format!("[{ip}]"),
        IpAddr::V6(ip) => match ip.to_ipv4_mapped() {
            Some(v4) => format!("[{v4}]"),
            None => format!("[IPv6:{ip}]"),
        },
    };
    let secure = if session.tls.is_some() { "S" } else { "" };
    let protocol = match (envelope.smtputf8, session.esmtp) {
        (true, _) => format!("UTF8SMTP{secure}"),
        (false, true) => format!("ESMTP{secure}"),
        (false, false) => format!("SMTP{secure}"),
    };
    let mut header = format!("Received: from {helo} ({ip_literal})\r\n");
    if let Some(tls) = &session.tls {
        header.push_str(&format!(
            "\t(using {} with cipher {})\r\n",
            sanitize(&tls.protocol),
            sanitize(&tls.cipher)
        ));
    }
    header.push_str(&format!(
        "\tby {} (Cleanmail) with {protocol} id {}",
        sanitize(hostname),
        session.session_id
    ));
    if let [rcpt] = envelope.rcpt_to.as_slice() {
        header.push_str(&format!("\r\n\tfor <{}>", sanitize(rcpt)));
    }
    header.push_str(&format!(";\r\n\t{}\r\n", now.to_rfc2822()));
    header
}

/// Keeps printable characters that cannot break the header's comment syntax.
fn sanitize(text: &str) -> String {
    text.chars()
        .filter(|c| !c.is_control() && !matches!(c, '(' | ')' | '\\' | '<' | '>' | ';'))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::smtp::handler::{SessionInfo, TlsInfo};

    fn envelope(tls: bool, rcpts: &[&str]) -> Envelope {
        Envelope {
            mail_from: "a@example.org".to_owned(),
            rcpt_to: rcpts.iter().map(|r| (*r).to_owned()).collect(),
            body_8bitmime: false,
            smtputf8: false,
            session: SessionInfo {
                session_id: "abc123".to_owned(),
                peer_addr: "192.0.2.7:40000".parse().unwrap(),
                local_addr: "127.0.0.1:25".parse().unwrap(),
                helo: Some("client.example\r\n(x)".to_owned()),
                esmtp: true,
                tls: tls.then(|| TlsInfo {
                    protocol: "TLSv1_3".to_owned(),
                    cipher: "TLS13_AES_256_GCM_SHA384".to_owned(),
                }),
            },
        }
    }

    #[test]
    fn plain_single_recipient() {
        let now = DateTime::parse_from_rfc3339("2026-11-29T17:00:00Z")
            .unwrap()
            .to_utc();
        let header = received_header(&envelope(false, &["b@example.com"]), "mx.test", now);
        assert_eq!(
            header,
            "Received: from client.examplex ([192.0.2.7])\r\n\tby mx.test (Cleanmail) with ESMTP id abc123\r\n\tfor <b@example.com>;\r\n\tSun, 29 Nov 2026 17:00:00 +0000\r\n"
        );
    }

    #[test]
    fn tls_hides_multiple_recipients() {
        let header = received_header(
            &envelope(true, &["b@example.com", "c@example.com"]),
            "mx.test",
            Utc::now(),
        );
        assert!(header.contains("(using TLSv1_3 with cipher TLS13_AES_256_GCM_SHA384)"));
        assert!(header.contains("with ESMTPS id abc123;"));
        assert!(!header.contains("example.com"));
    }
}
