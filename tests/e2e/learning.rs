//! Per-tenant learning end to end: a spam report teaches the reporting tenant's model, so the
//! same kind of message is then caught for that tenant, and only for that tenant.

use std::time::Duration;

use cleanmail_schema::TenantId;
use cleanmail_schema::store::learning::unscoped_tenant_model_for_ingest;
use serde_json::{Value, json};

use crate::common::{Client, Fixture, backends};
use crate::mail::{message, send, setup, sink, store_db};

/// The items of `path` once there are `count` of them (or after 15 s).
async fn items(client: &Client, path: &str, count: usize) -> Vec<Value> {
    let mut items = Vec::new();
    for _ in 0..150 {
        items = client.get(path).await.expect(200).body["items"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if items.len() >= count {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    items
}

fn quarterly(to: &str, n: u32) -> Vec<u8> {
    message(
        "Anna <anna@partner.example>",
        to,
        "Quarterly figures",
        &format!("q-{n}@partner.example"),
        "Hello,\r\n\r\nThe quarterly figures are attached as discussed. Let me know whether \
         the meeting on Thursday still works for you.\r\n\r\nBest regards,\r\nAnna",
    )
}

#[tokio::test]
async fn a_spam_report_teaches_only_the_reporting_tenant() {
    for backend in backends() {
        let sink = sink().await;
        let (server, admin, fx) = setup(backend, "Learn", sink.addr()).await;
        let other = Fixture::create(&admin, "Other").await;
        admin
            .patch(
                &format!("/api/v1/domains/{}", other.domain),
                json!({ "destination": sink.addr().to_string(), "state": "live" }),
            )
            .await
            .expect(200);
        let jean = format!("jean@{}", fx.domain_name);
        let other_jean = format!("jean@{}", other.domain_name);

        // Ordinary mail is delivered and kept in the backup webmail.
        send(
            server.smtp,
            "anna@partner.example",
            &[&jean],
            &quarterly(&jean, 1),
        )
        .await
        .expect("accepted");
        let kept = items(&admin, "/api/v1/webmail/messages", 1).await;
        assert_eq!(kept.len(), 1, "{backend:?}: {kept:?}");
        assert_eq!(kept[0]["category"], "clean", "{backend:?}: {kept:?}");

        // The tenant reports it as spam; the worker learns it into the tenant's model.
        let id = kept[0]["id"].as_str().unwrap();
        admin
            .post(&format!("/api/v1/quarantine/{id}/report-spam"), json!({}))
            .await
            .expect(204);
        let db = store_db(&server).await;
        let tenant = TenantId(fx.tenant.clone());
        let mut learned = None;
        for _ in 0..150 {
            learned = unscoped_tenant_model_for_ingest(&db, &tenant)
                .await
                .unwrap();
            if learned.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(
            learned.expect("tenant model stored").learned,
            1,
            "{backend:?}"
        );

        // Once the SMTP path's cache of tenant models has expired, the same kind of message
        // is spam for this tenant (quarantined) and still clean for the other one.
        tokio::time::sleep(cleanmail_worker::learning::MODEL_CACHE_TTL).await;
        send(
            server.smtp,
            "anna@partner.example",
            &[&jean],
            &quarterly(&jean, 2),
        )
        .await
        .expect("accepted");
        let held = items(&admin, "/api/v1/quarantine", 1).await;
        assert_eq!(held.len(), 1, "{backend:?}: {held:?}");
        assert_eq!(held[0]["category"], "spam", "{backend:?}: {held:?}");
        assert_eq!(held[0]["recipient"], jean.as_str());

        send(
            server.smtp,
            "anna@partner.example",
            &[&other_jean],
            &quarterly(&other_jean, 3),
        )
        .await
        .expect("accepted");
        let kept = items(&admin, "/api/v1/webmail/messages", 2).await;
        let for_other: Vec<&Value> = kept
            .iter()
            .filter(|m| m["recipient"] == other_jean.as_str())
            .collect();
        assert_eq!(for_other.len(), 1, "{backend:?}: {kept:?}");
        assert_eq!(for_other[0]["category"], "clean", "{backend:?}: {kept:?}");
    }
}
