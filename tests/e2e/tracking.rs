//! Message tracking over REST and GraphQL: a tenant admin finds every message of the tenant
//! (delivered, quarantined) with its verdict and delivery state, searches it, and sees no
//! other tenant's mail; mailbox users have no message log.

use std::time::Duration;

use serde_json::{Value, json};

use crate::common::{Fixture, backends};
use crate::mail::{GTUBE, crlf, message, send, setup, sink};

#[tokio::test]
async fn admins_track_their_tenants_messages() {
    for backend in backends() {
        let downstream = sink().await;
        let (server, admin, fx) = setup(backend, "Tracked", downstream.addr()).await;
        let jean = format!("jean@{}", fx.domain_name);
        let lunch = message(
            "Anna <anna@partner.example>",
            &jean,
            "Lunch on Friday",
            "lunch-1@partner.example",
            "Shall we meet at noon?",
        );
        send(server.smtp, "anna@partner.example", &[&jean], &lunch)
            .await
            .unwrap();
        send(server.smtp, "spam@spam.example", &[&jean], &crlf(GTUBE))
            .await
            .unwrap();
        downstream.wait_for(1, Duration::from_secs(20)).await;

        let tenant_admin = server
            .api_key_client(&admin, json!({ "name": "ops", "tenant_id": fx.tenant }))
            .await;
        // Both entries, newest first, once the delivery is recorded.
        let mut log = Value::Null;
        for _ in 0..100 {
            log = tenant_admin
                .get("/api/v1/message-log")
                .await
                .expect(200)
                .body;
            let items = log["items"].as_array().unwrap();
            if items.len() == 2 && items.iter().any(|e| e["state"] == "delivered") {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let items = log["items"].as_array().unwrap();
        assert_eq!(items.len(), 2, "{backend:?}: {log}");
        let spam = &items[0];
        assert_eq!(spam["category"], "spam", "{spam}");
        assert_eq!(spam["state"], "quarantined", "{spam}");
        assert_eq!(spam["rcpt_to"], json!([jean]));
        assert!(spam["score"].as_f64().unwrap() >= 5.0);
        assert!(
            spam["symbols"]
                .as_array()
                .unwrap()
                .iter()
                .any(|s| s["name"] == "GTUBE"),
            "{spam}"
        );
        let clean = &items[1];
        assert_eq!(clean["subject"], "Lunch on Friday");
        assert_eq!(clean["state"], "delivered", "{clean}");
        assert_eq!(clean["delivery_attempts"], 1);
        assert_eq!(clean["mail_from"], "anna@partner.example");
        assert!(clean["last_response"].as_str().is_some(), "{clean}");

        // Searches: sender, subject, recipient, category; paging.
        let found = |query: &'static str| {
            let tenant_admin = tenant_admin.clone();
            async move {
                tenant_admin
                    .get(&format!("/api/v1/message-log?{query}"))
                    .await
                    .expect(200)
                    .body["items"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|e| e["subject"].as_str().unwrap().to_owned())
                    .collect::<Vec<_>>()
            }
        };
        assert_eq!(found("sender=ANNA@partner").await, ["Lunch on Friday"]);
        assert_eq!(found("subject=lunch").await, ["Lunch on Friday"]);
        assert_eq!(found("recipient=jean@").await.len(), 2);
        assert_eq!(found("recipient=nobody@").await.len(), 0);
        assert_eq!(found("category=spam").await.len(), 1);
        let first = tenant_admin
            .get("/api/v1/message-log?limit=1")
            .await
            .expect(200)
            .body;
        let next = tenant_admin
            .get(&format!(
                "/api/v1/message-log?limit=1&after={}",
                first["next_cursor"].as_str().unwrap()
            ))
            .await
            .expect(200)
            .body;
        assert_eq!(next["items"][0]["id"], clean["id"], "{next}");
        tenant_admin
            .get("/api/v1/message-log?after=garbage")
            .await
            .expect(400);
        let invalid = tenant_admin
            .get(&format!("/api/v1/message-log?user_id={}", fx.user))
            .await
            .expect(422);
        assert_eq!(invalid.body["errors"][0]["field"], "user_id");

        // Over GraphQL.
        let gql = tenant_admin
            .graphql(
                "query($s: MessageSearch) { messageLog(first: 5, search: $s) { edges { node { subject state symbols { name } } } } }",
                json!({ "s": { "category": "SPAM" } }),
            )
            .await;
        let edges = gql["data"]["messageLog"]["edges"].as_array().unwrap();
        assert_eq!(edges.len(), 1, "{gql}");
        assert_eq!(edges[0]["node"]["state"], "quarantined");

        // Another tenant's admin sees nothing of it; a mailbox user has no log.
        let other = Fixture::create(&admin, "Elsewhere").await;
        let outsider = server
            .api_key_client(&admin, json!({ "name": "ops", "tenant_id": other.tenant }))
            .await;
        let theirs = outsider.get("/api/v1/message-log").await.expect(200).body;
        assert_eq!(theirs["items"], json!([]), "{theirs}");
        let user = server.login_user(&admin, &fx.user, &jean).await;
        user.get("/api/v1/message-log").await.expect(403);
        // The platform admin sees it too.
        let all = admin.get("/api/v1/message-log").await.expect(200).body;
        assert_eq!(all["items"].as_array().unwrap().len(), 2, "{all}");
    }
}
