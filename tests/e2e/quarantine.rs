//! Quarantine and backup webmail end to end: spam over SMTP lands in the user's quarantine,
//! is released to the downstream sink, its sender is allowed (the next message from it is
//! delivered), and a delivered message is redistributed from the backup webmail.

use std::time::Duration;

use cleanmail_schema::Scope;
use cleanmail_schema::store::messages as message_store;
use serde_json::{Value, json};

use crate::common::{Client, backends};
use crate::mail::{header, message, send, setup, sink, store_db};

const GTUBE: &str = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X";

/// The items of `path` once `ready` holds for them (or after 15 s).
async fn poll(client: &Client, path: &str, ready: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let mut items = Vec::new();
    for _ in 0..150 {
        items = client.get(path).await.expect(200).body["items"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if ready(&items) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    items
}

#[tokio::test]
async fn spam_is_released_its_sender_allowed_and_delivered_mail_redistributed() {
    for backend in backends() {
        let sink = sink().await;
        let (server, admin, fx) = setup(backend, "Quar", sink.addr()).await;
        let jean_address = format!("jean@{}", fx.domain_name);
        let info_address = format!("info@{}", fx.domain_name);
        let jean = server.login_user(&admin, &fx.user, &jean_address).await;

        // Spam to the user's alias lands in the user's quarantine.
        let spam = message(
            "Promo <promo@bulk.example>",
            &info_address,
            "You won",
            "spam-1@bulk.example",
            &format!("Claim it now.\r\n{GTUBE}"),
        );
        send(server.smtp, "promo@bulk.example", &[&info_address], &spam)
            .await
            .expect("spam accepted");
        let held = poll(&jean, "/api/v1/quarantine", |items| !items.is_empty()).await;
        assert_eq!(held.len(), 1, "{backend:?}: {held:?}");
        let spam_id = held[0]["id"].as_str().unwrap().to_owned();
        assert_eq!(held[0]["recipient"], info_address.as_str());
        assert_eq!(held[0]["category"], "spam");
        assert_eq!(held[0]["state"], "quarantined");

        // Search narrows; the detail explains the verdict and previews the text safely.
        let found = jean
            .get("/api/v1/quarantine?sender=PROMO@bulk&subject=won&category=spam&min_score=5")
            .await
            .expect(200);
        assert_eq!(found.body["items"].as_array().unwrap().len(), 1);
        let none = jean
            .get("/api/v1/quarantine?subject=invoice")
            .await
            .expect(200);
        assert!(none.body["items"].as_array().unwrap().is_empty());
        let detail = jean
            .get(&format!("/api/v1/quarantine/{spam_id}"))
            .await
            .expect(200);
        let symbols = detail.body["verdict"]["symbols"].as_array().unwrap();
        assert!(
            symbols
                .iter()
                .any(|s| s["name"].as_str().unwrap().contains("GTUBE")
                    && !s["explanation"].as_str().unwrap().is_empty()),
            "{backend:?}: {symbols:?}"
        );
        assert!(
            detail.body["preview"]["text"]
                .as_str()
                .unwrap()
                .contains("Claim it now")
        );
        assert_eq!(detail.body["envelope"]["mail_from"], "promo@bulk.example");
        assert!(
            detail.body["headers"]
                .as_array()
                .unwrap()
                .iter()
                .any(|h| h["name"] == "Subject" && h["value"] == "You won")
        );
        // End users may not download raw messages; admins may.
        jean.get(&format!("/api/v1/quarantine/{spam_id}/raw"))
            .await
            .expect(403);
        let raw = admin
            .get(&format!("/api/v1/quarantine/{spam_id}/raw"))
            .await
            .expect(200);
        assert!(raw.text.contains("spam-1@bulk.example"));

        // The GraphQL view is the same.
        let gql = jean
            .graphql(
                "{ quarantine(first: 10) { edges { node { id category } } } }",
                json!({}),
            )
            .await;
        assert_eq!(
            gql["data"]["quarantine"]["edges"][0]["node"]["id"],
            spam_id.as_str(),
            "{gql}"
        );

        // Release: delivered downstream through the normal path, learnt as ham.
        let released = jean
            .post(&format!("/api/v1/quarantine/{spam_id}/release"), json!({}))
            .await
            .expect(200);
        assert_eq!(released.body["status"], "released");
        assert_eq!(released.body["recipients"], json!([info_address]));
        let arrived = sink.wait_for(1, Duration::from_secs(20)).await;
        assert_eq!(arrived.len(), 1, "{backend:?}");
        assert_eq!(
            header(&arrived[0], "Message-ID").as_deref(),
            Some("<spam-1@bulk.example>")
        );
        assert_eq!(arrived[0].rcpt_to, vec![info_address.clone()]);
        let db = store_db(&server).await;
        let feedback = message_store::feedback(&db, &Scope::Platform, 10)
            .await
            .unwrap();
        assert_eq!(feedback.len(), 1);
        assert_eq!(feedback[0].kind, "ham");
        assert_eq!(feedback[0].message_id.as_str(), spam_id);
        let left = jean.get("/api/v1/quarantine").await.expect(200);
        assert!(left.body["items"].as_array().unwrap().is_empty());
        jean.post(&format!("/api/v1/quarantine/{spam_id}/release"), json!({}))
            .await
            .expect(404);

        // Allow the sender: the next message from it is delivered, not quarantined.
        let allowed = jean
            .post(
                &format!("/api/v1/quarantine/{spam_id}/allow-sender"),
                json!({}),
            )
            .await
            .expect(200);
        assert_eq!(allowed.body["entry"], "promo@bulk.example");
        assert_eq!(allowed.body["level"], "user");
        let effective = jean
            .get(&format!("/api/v1/users/{}/effective-policy", fx.user))
            .await
            .expect(200);
        assert!(
            effective.body["allow"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["entry"] == "promo@bulk.example" && e["level"] == "user"),
            "{}",
            effective.text
        );
        // The SMTP path caches policies for a few seconds.
        tokio::time::sleep(Duration::from_secs(6)).await;
        let again = message(
            "Promo <promo@bulk.example>",
            &jean_address,
            "You won again",
            "spam-2@bulk.example",
            &format!("Still yours.\r\n{GTUBE}"),
        );
        send(server.smtp, "promo@bulk.example", &[&jean_address], &again)
            .await
            .expect("second message accepted");
        let arrived = sink.wait_for(2, Duration::from_secs(20)).await;
        assert_eq!(arrived.len(), 2, "{backend:?}: the allowed sender's mail");
        assert_eq!(
            header(&arrived[1], "Message-ID").as_deref(),
            Some("<spam-2@bulk.example>")
        );
        let still_empty = jean.get("/api/v1/quarantine").await.expect(200);
        assert!(still_empty.body["items"].as_array().unwrap().is_empty());

        // A delivered message is in the backup webmail and can be redistributed.
        let kept = poll(&jean, "/api/v1/webmail/messages?subject=again", |items| {
            items.iter().any(|m| m["state"] == "delivered")
        })
        .await;
        assert_eq!(kept.len(), 1, "{backend:?}: {kept:?}");
        let kept_id = kept[0]["id"].as_str().unwrap().to_owned();
        let read = jean
            .get(&format!("/api/v1/webmail/messages/{kept_id}"))
            .await
            .expect(200);
        assert!(
            read.body["preview"]["text"]
                .as_str()
                .unwrap()
                .contains("Still yours")
        );
        jean.post(
            &format!("/api/v1/webmail/messages/{kept_id}/redistribute"),
            json!({}),
        )
        .await
        .expect(202);
        let arrived = sink.wait_for(3, Duration::from_secs(20)).await;
        assert_eq!(arrived.len(), 3, "{backend:?}: the redistributed copy");
        assert_eq!(
            header(&arrived[2], "Message-ID").as_deref(),
            Some("<spam-2@bulk.example>")
        );
        assert_eq!(arrived[2].rcpt_to, vec![jean_address.clone()]);

        // Switching the backup webmail off purges the retained copies and their blobs.
        let delivered = poll(&jean, "/api/v1/webmail/messages", |items| {
            !items.is_empty() && items.iter().all(|m| m["state"] == "delivered")
        })
        .await;
        assert!(!delivered.is_empty(), "{backend:?}");
        let kept_rows = message_store::list(
            &db,
            &Scope::Platform,
            &message_store::MessageFilter::default(),
            &cleanmail_schema::PageRequest::default(),
        )
        .await
        .unwrap()
        .items;
        let blob = server
            .data_dir
            .path()
            .join("blobs")
            .join(&kept_rows[0].blob_key);
        assert!(blob.exists(), "{backend:?}: {}", blob.display());
        admin
            .put(
                &format!("/api/v1/users/{}/policy-overrides", fx.user),
                json!({ "backup_webmail": { "enabled": false } }),
            )
            .await
            .expect(200);
        let gone = jean.get("/api/v1/webmail/messages").await.expect(200);
        assert!(
            gone.body["items"].as_array().unwrap().is_empty(),
            "{backend:?}: {}",
            gone.text
        );
        assert!(!blob.exists(), "{backend:?}: the blob went with the copies");
    }
}
