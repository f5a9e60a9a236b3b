//! DKIM, SPF and DMARC against fixed DNS records: a message signed here with a fresh ed25519
//! key verifies against the published key, and fails once tampered or sent from elsewhere.

use cleanmail_core::address::DomainName;
use cleanmail_core::filter::auth::{AuthOutcome, DmarcPolicy};
use cleanmail_core::{
    Authenticator, Category, DnsCache, Engine, Envelope, MessageInput, TenantContext,
};
use mail_auth::common::crypto::Ed25519Key;
use mail_auth::common::headers::HeaderWriter;
use mail_auth::dkim::DkimSigner;

const MESSAGE: &str = "From: Anna Muster <anna@bank.example>\r\n\
To: bob@customer.example\r\n\
Subject: Your statement\r\n\
Date: Sun, 29 Nov 2026 10:00:00 +0000\r\n\
Message-ID: <1@bank.example>\r\n\
\r\n\
Hello Bob, your monthly statement is ready.\r\n";

fn authenticator() -> (Authenticator, Vec<u8>) {
    let pkcs8 = Ed25519Key::generate_pkcs8().unwrap();
    let key = Ed25519Key::from_pkcs8_der(&pkcs8).unwrap();
    let public = base64_encode(&key.public_key());
    let signature = DkimSigner::from_key(key)
        .domain("bank.example")
        .selector("s1")
        .headers(["From", "To", "Subject", "Date", "Message-ID"])
        .sign(MESSAGE.as_bytes())
        .unwrap();
    let signed = format!("{}{}", signature.to_header(), MESSAGE).into_bytes();

    let cache = DnsCache::fixed();
    cache
        .add_txt(
            "s1._domainkey.bank.example",
            &format!("v=DKIM1; k=ed25519; p={public}"),
        )
        .unwrap();
    cache
        .add_txt("bank.example", "v=spf1 ip4:192.0.2.0/24 -all")
        .unwrap();
    cache
        .add_txt("_dmarc.bank.example", "v=DMARC1; p=reject; adkim=s; aspf=s")
        .unwrap();
    (Authenticator::offline(cache, "mx.cleanmail.test"), signed)
}

fn envelope(ip: &str) -> Envelope {
    Envelope {
        client_ip: Some(ip.parse().unwrap()),
        helo: "mail.bank.example".into(),
        mail_from: Some("anna@bank.example".parse().unwrap()),
        recipients: vec!["bob@customer.example".parse().unwrap()],
        tls: true,
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn signed_message_passes_spf_dkim_and_dmarc() {
    let (auth, signed) = authenticator();
    let results = runtime().block_on(auth.authenticate(&signed, &envelope("192.0.2.10")));
    assert_eq!(results.spf, AuthOutcome::Pass, "{results:?}");
    assert_eq!(results.dkim.len(), 1);
    assert_eq!(results.dkim[0].outcome, AuthOutcome::Pass, "{results:?}");
    assert_eq!(results.dkim[0].domain, "bank.example");
    assert_eq!(results.dmarc.outcome, AuthOutcome::Pass);
    assert_eq!(results.dmarc.policy, DmarcPolicy::Reject);

    let engine = Engine::default();
    let env = envelope("192.0.2.10");
    let input = MessageInput {
        raw: &signed,
        envelope: &env,
        auth: Some(&results),
        received_at: None,
    };
    let verdict = engine.analyze(&input, &TenantContext::default());
    assert!(verdict.has_symbol("DKIM_VALID"));
    assert!(verdict.has_symbol("DMARC_PASS"));
}

#[test]
fn tampered_and_spoofed_message_fails_dmarc() {
    let (auth, signed) = authenticator();
    let tampered = String::from_utf8(signed)
        .unwrap()
        .replace(
            "statement is ready",
            "account is locked, log in at http://203.0.113.5/",
        )
        .into_bytes();
    let env = envelope("198.51.100.7");
    let results = runtime().block_on(auth.authenticate(&tampered, &env));
    assert_eq!(results.spf, AuthOutcome::Fail, "{results:?}");
    assert_ne!(results.dkim[0].outcome, AuthOutcome::Pass, "{results:?}");
    assert_eq!(results.dmarc.outcome, AuthOutcome::Fail, "{results:?}");
    assert_eq!(results.dmarc.policy, DmarcPolicy::Reject);

    let engine = Engine::default();
    let ctx = TenantContext {
        protected_domains: vec![DomainName::parse("bank.example").unwrap()],
        ..TenantContext::default()
    };
    let input = MessageInput {
        raw: &tampered,
        envelope: &env,
        auth: Some(&results),
        received_at: None,
    };
    let verdict = engine.analyze(&input, &ctx);
    assert!(
        verdict.has_symbol("DMARC_FAIL_REJECT"),
        "{}",
        verdict.explanation()
    );
    assert!(
        verdict.has_symbol("DKIM_INVALID"),
        "{}",
        verdict.explanation()
    );
    assert!(verdict.has_symbol("SPF_FAIL"), "{}", verdict.explanation());
    assert!(
        verdict.has_symbol("SPOOFED_PROTECTED_DOMAIN"),
        "{}",
        verdict.explanation()
    );
    assert_eq!(
        verdict.category,
        Category::Phishing,
        "{}",
        verdict.explanation()
    );
}

fn base64_encode(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}
