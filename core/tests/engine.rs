//! Engine API: per-recipient actions from policies, allow/block lists, tenant learning.

use std::sync::Arc;

use cleanmail_core::classifier::Class;
use cleanmail_core::policy::{ListEntry, PolicyOverrides, SenderLists, resolve};
use cleanmail_core::{
    Action, BuiltinPolicy, Category, EmailAddress, Engine, Envelope, MessageInput, RecipientPolicy,
    TenantContext, TenantModel,
};

const SPAMMY: &[u8] =
    b"From: Best Deals <deals@cheap-meds.example>\r\nTo: bob@customer.example\r\n\
Subject: CHEAP MEDS ONLINE NOW!!!\r\nDate: Sun, 29 Nov 2026 10:00:00 +0100\r\n\r\n\
XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X\r\n";

fn envelope(recipients: &[&str]) -> Envelope {
    Envelope {
        client_ip: Some("198.51.100.7".parse().unwrap()),
        helo: "mail.cheap-meds.example".into(),
        mail_from: Some("deals@cheap-meds.example".parse().unwrap()),
        recipients: recipients.iter().map(|r| r.parse().unwrap()).collect(),
        tls: false,
    }
}

#[test]
fn each_recipient_gets_its_policy_and_lists() {
    let tenant = BuiltinPolicy::StandardWithQuarantineReport.policy();
    let allow = PolicyOverrides {
        lists: Some(SenderLists {
            allow: vec![ListEntry::parse("cheap-meds.example").unwrap()],
            block: vec![],
        }),
        ..Default::default()
    };
    let block_ip = PolicyOverrides {
        lists: Some(SenderLists {
            allow: vec![],
            block: vec![ListEntry::parse("198.51.100.0/24").unwrap()],
        }),
        ..Default::default()
    };
    let ctx = TenantContext {
        recipients: vec![
            RecipientPolicy {
                address: "carol@customer.example".parse().unwrap(),
                policy: resolve(&tenant, None, Some(&allow)),
            },
            RecipientPolicy {
                address: "dave@customer.example".parse().unwrap(),
                policy: resolve(&tenant, Some(&block_ip), None),
            },
        ],
        ..TenantContext::default()
    };
    let env = envelope(&[
        "bob@customer.example",
        "carol@customer.example",
        "dave@customer.example",
    ]);
    let input = MessageInput {
        raw: SPAMMY,
        envelope: &env,
        auth: None,
        received_at: None,
    };
    let verdict = Engine::default().analyze(&input, &ctx);
    assert_eq!(verdict.category, Category::Spam);
    assert!(verdict.score > 100.0);
    assert_eq!(verdict.recipients[0].action, Action::Quarantine);
    assert_eq!(
        verdict.recipients[1].action,
        Action::Deliver,
        "{:?}",
        verdict.recipients[1]
    );
    assert_eq!(
        verdict.recipients[2].action,
        Action::Reject,
        "{:?}",
        verdict.recipients[2]
    );
    let json = serde_json::to_string(&verdict).unwrap();
    assert!(json.contains("\"category\":\"spam\""));
}

#[test]
fn tenant_feedback_changes_the_verdict() {
    let engine = Engine::default();
    let raw = b"From: Weekly Digest <digest@club.example>\r\nTo: bob@customer.example\r\n\
Subject: Members' weekly digest\r\nDate: Sun, 29 Nov 2026 10:00:00 +0100\r\n\r\n\
Dear member, this week at the club: the annual dinner, the chess tournament and the new opening hours.\r\n";
    let env = envelope(&["bob@customer.example"]);
    let features = engine.features(raw, &env);
    assert!(!features.is_empty());
    let mut overlay = TenantModel::new();
    for _ in 0..3 {
        engine.learn(&mut overlay, raw, &env, Class::Spam);
    }
    let ctx = TenantContext {
        overlay: Some(Arc::new(overlay.clone())),
        ..TenantContext::default()
    };
    let input = MessageInput {
        raw,
        envelope: &env,
        auth: None,
        received_at: None,
    };
    let reported = engine.analyze(&input, &ctx);
    assert!(reported.bayes.unwrap().spam > 0.9, "{:?}", reported.bayes);
    engine.learn(&mut overlay, raw, &env, Class::Ham);
    engine.learn(&mut overlay, raw, &env, Class::Ham);
    let ctx = TenantContext {
        overlay: Some(Arc::new(overlay)),
        ..TenantContext::default()
    };
    let released = engine.analyze(&input, &ctx);
    assert!(released.bayes.unwrap().spam < 0.1, "{:?}", released.bayes);
    let _ = EmailAddress::parse("x@y.example").unwrap();
}
