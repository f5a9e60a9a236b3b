//! The backup webmail during a downstream outage: the domain's DKIM keys are created over
//! the API, the user reads what queued and answers it; the reply and a new message leave
//! through the outbound relay signed with the domain's key (verified against the DNS record
//! the API shows), keys rotate; and end users' releases of dangerous mail become requests
//! that a tenant admin approves or denies.

use std::time::Duration;

use cleanmail_core::{AuthOutcome, Authenticator, DnsCache, Envelope};
use serde_json::{Value, json};

use crate::common::{Fixture, Server, backends};
use crate::mail::{header, message, send, setup, sink};

/// The DKIM result of `raw` when `records` (name, TXT value) are all DNS has.
async fn dkim(raw: &[u8], records: &[(&str, &str)]) -> Vec<(String, AuthOutcome)> {
    let dns = DnsCache::fixed();
    for (name, value) in records {
        dns.add_txt(name, value).unwrap();
    }
    let auth = Authenticator::offline(dns, "mx.receiver.test");
    let envelope = Envelope {
        client_ip: Some("192.0.2.1".parse().unwrap()),
        helo: "mx.cleanmail.test".into(),
        mail_from: None,
        recipients: vec![],
        tls: true,
    };
    auth.authenticate(raw, &envelope)
        .await
        .dkim
        .into_iter()
        .map(|d| (d.selector, d.outcome))
        .collect()
}

/// A port nothing listens on: the downstream server is down.
fn closed_port() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    addr.to_string()
}

#[tokio::test]
async fn webmail_replies_during_an_outage_leave_signed_with_the_domains_dkim_key() {
    for backend in backends() {
        let relay = sink().await;
        let server = Server::start_with(
            backend,
            &[("CLEANMAIL_OUTBOUND_RELAY", &relay.addr().to_string())],
        )
        .await;
        let admin = server.client(&server.admin_key("root@platform.test"));
        let fx = Fixture::create(&admin, "Outage").await;
        let other = Fixture::create(&admin, "Elsewhere").await;
        // The customer's own mail server is down.
        admin
            .patch(
                &format!("/api/v1/domains/{}", fx.domain),
                json!({ "destination": closed_port(), "state": "live" }),
            )
            .await
            .expect(200);
        let jean_address = format!("jean@{}", fx.domain_name);
        let jean = server.login_user(&admin, &fx.user, &jean_address).await;
        let keys_path = format!("/api/v1/domains/{}/dkim-keys", fx.domain);

        // A tenant admin creates the domain's key; the first one is active at once and
        // comes with the DNS record to publish.
        jean.post(&keys_path, json!({})).await.expect(403);
        let bad = admin
            .post(&keys_path, json!({ "selector": "-bad selector" }))
            .await
            .expect(422);
        assert_eq!(bad.body["errors"][0]["field"], "selector", "{}", bad.text);
        let key = admin
            .post(&keys_path, json!({ "selector": "cm1" }))
            .await
            .expect(201)
            .body;
        assert_eq!(key["active"], true, "{key}");
        assert_eq!(key["algorithm"], "rsa2048");
        let record_name = format!("cm1._domainkey.{}", fx.domain_name);
        assert_eq!(key["dns_record"]["name"], record_name.as_str());
        assert_eq!(key["dns_record"]["type"], "TXT");
        let record = key["dns_record"]["value"].as_str().unwrap().to_owned();
        assert!(record.starts_with("v=DKIM1; k=rsa; p=MII"), "{record}");
        let strings: Vec<&str> = key["dns_record"]["strings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap())
            .collect();
        assert!(strings.len() > 1 && strings.iter().all(|s| s.len() <= 255));
        assert_eq!(strings.concat(), record);
        assert!(
            !key.to_string().contains("PRIVATE"),
            "no private key is shown"
        );
        admin
            .post(&keys_path, json!({ "selector": "cm1" }))
            .await
            .expect(409);
        // End users, even of another tenant, never see keys (tests/e2e/isolation.rs covers
        // other tenants' admins).
        let outsider = server
            .login_user(&admin, &other.user, &format!("jean@{}", other.domain_name))
            .await;
        outsider
            .get(&format!("{keys_path}/{}", key["id"].as_str().unwrap()))
            .await
            .expect(403);
        let gql = admin
            .graphql(
                "query($d: String!) { dkimKeys(domainId: $d) { selector active dnsRecord { name } } }",
                json!({ "d": fx.domain }),
            )
            .await;
        assert_eq!(
            gql["data"]["dkimKeys"][0]["dnsRecord"]["name"],
            record_name.as_str(),
            "{gql}"
        );

        // Mail for Jean arrives while downstream is down: it waits, and Jean reads it in
        // the backup webmail.
        let incoming = message(
            "Alice <alice@sender.example>",
            &jean_address,
            "Meeting tomorrow",
            "meeting-1@sender.example",
            "Can we meet at ten?",
        );
        send(
            server.smtp,
            "alice@sender.example",
            &[&jean_address],
            &incoming,
        )
        .await
        .expect("accepted");
        let mut queued = Vec::new();
        for _ in 0..150 {
            queued = jean.get("/api/v1/webmail/messages").await.expect(200).body["items"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            if !queued.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(queued.len(), 1, "{backend:?}: {queued:?}");
        assert_ne!(queued[0]["state"], "delivered");
        let original_id = queued[0]["id"].as_str().unwrap().to_owned();

        // Jean replies: to Alice, "Re: …", threaded, signed with cm1.
        let sent = jean
            .post(
                "/api/v1/webmail/send",
                json!({ "in_reply_to": original_id, "text": "Ten is fine." }),
            )
            .await
            .expect(202)
            .body;
        assert_eq!(
            sent["recipients"],
            json!(["alice@sender.example"]),
            "{sent}"
        );
        assert_eq!(sent["subject"], "Re: Meeting tomorrow");
        assert_eq!(sent["dkim_selector"], "cm1");
        let out = relay.wait_for(1, Duration::from_secs(20)).await;
        assert_eq!(out.len(), 1, "{backend:?}");
        assert_eq!(out[0].mail_from, jean_address);
        assert_eq!(out[0].rcpt_to, vec!["alice@sender.example".to_owned()]);
        assert_eq!(
            header(&out[0], "In-Reply-To").as_deref(),
            Some("<meeting-1@sender.example>")
        );
        assert_eq!(
            header(&out[0], "Message-ID").as_deref(),
            sent["message_id"].as_str()
        );
        assert!(out[0].text().contains("Ten is fine."));
        assert_eq!(
            dkim(&out[0].data, &[(&record_name, &record)]).await,
            vec![("cm1".to_owned(), AuthOutcome::Pass)],
            "{backend:?}: the relay got a message that verifies against the published key"
        );

        // Rotation: a new Ed25519 key is published first, then activated.
        let next = admin
            .post(
                &keys_path,
                json!({ "selector": "next", "algorithm": "ed25519" }),
            )
            .await
            .expect(201)
            .body;
        assert_eq!(next["active"], false, "{next}");
        let next_id = next["id"].as_str().unwrap();
        let next_record = next["dns_record"]["value"].as_str().unwrap().to_owned();
        assert!(next_record.starts_with("v=DKIM1; k=ed25519; p="));
        admin
            .post(&format!("{keys_path}/{next_id}/activate"), json!({}))
            .await
            .expect(200);
        let keys = admin.get(&keys_path).await.expect(200).body;
        let active: Vec<&str> = keys
            .as_array()
            .unwrap()
            .iter()
            .filter(|k| k["active"] == true)
            .map(|k| k["selector"].as_str().unwrap())
            .collect();
        assert_eq!(active, vec!["next"], "{keys}");

        // A new message through GraphQL, signed with the new key.
        let gql = jean
            .graphql(
                "mutation($i: SendMessageInput!) { sendMessage(input: $i) { recipients dkimSelector } }",
                json!({ "i": {
                    "to": ["bob@partner.example"], "cc": ["carol@partner.example"],
                    "subject": "Our server is down", "text": "Write to me here for now."
                } }),
            )
            .await;
        assert_eq!(gql["data"]["sendMessage"]["dkimSelector"], "next", "{gql}");
        let out = relay.wait_for(2, Duration::from_secs(20)).await;
        assert_eq!(out.len(), 2, "{backend:?}");
        assert_eq!(
            out[1].rcpt_to,
            vec![
                "bob@partner.example".to_owned(),
                "carol@partner.example".to_owned()
            ]
        );
        let next_name = format!("next._domainkey.{}", fx.domain_name);
        assert_eq!(
            dkim(&out[1].data, &[(&next_name, &next_record)]).await,
            vec![("next".to_owned(), AuthOutcome::Pass)]
        );

        // Refusals: no recipient, an admin sending as a user, a reply to someone else's
        // message.
        let invalid = jean
            .post("/api/v1/webmail/send", json!({ "text": "To nobody" }))
            .await
            .expect(422);
        assert_eq!(invalid.body["errors"][0]["field"], "to", "{}", invalid.text);
        admin
            .post(
                "/api/v1/webmail/send",
                json!({ "to": ["x@partner.example"], "text": "hi" }),
            )
            .await
            .expect(403);
        outsider
            .post(
                "/api/v1/webmail/send",
                json!({ "in_reply_to": original_id, "text": "Not mine" }),
            )
            .await
            .expect(404);

        // Deleting the active key: mail goes out unsigned.
        admin
            .delete(&format!("{keys_path}/{next_id}"))
            .await
            .expect(204);
        let unsigned = jean
            .post(
                "/api/v1/webmail/send",
                json!({ "to": ["bob@partner.example"], "subject": "Unsigned", "text": "." }),
            )
            .await
            .expect(202)
            .body;
        assert_eq!(unsigned["dkim_selector"], Value::Null, "{unsigned}");
        let out = relay.wait_for(3, Duration::from_secs(20)).await;
        assert_eq!(header(&out[2], "DKIM-Signature"), None);

        // The sent folder shows the three messages, newest first, once the relay took them.
        let mut sent = Value::Null;
        for _ in 0..100 {
            sent = jean.get("/api/v1/webmail/sent").await.expect(200).body;
            if sent["items"]
                .as_array()
                .is_some_and(|items| items.iter().all(|m| m["state"] == "delivered"))
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let items = sent["items"].as_array().unwrap();
        assert_eq!(items.len(), 3, "{sent}");
        assert!(
            items.iter().all(|m| m["state"] == "delivered"
                && m["delivery_attempts"] == 1
                && m["from"] == jean_address.as_str()),
            "{sent}"
        );
        assert_eq!(items[0]["subject"], "Unsigned");
        assert_eq!(items[0]["dkim_selector"], Value::Null);
        assert_eq!(items[1]["subject"], "Our server is down");
        assert_eq!(items[1]["dkim_selector"], "next");
        assert_eq!(
            items[1]["recipients"],
            json!(["bob@partner.example", "carol@partner.example"])
        );
        let first = jean
            .get("/api/v1/webmail/sent?limit=2")
            .await
            .expect(200)
            .body;
        let cursor = first["next_cursor"].as_str().unwrap();
        let rest = jean
            .get(&format!("/api/v1/webmail/sent?limit=2&after={cursor}"))
            .await
            .expect(200)
            .body;
        assert_eq!(rest["items"][0]["id"], items[2]["id"], "{rest}");
        assert_eq!(rest["next_cursor"], Value::Null);
        admin.get("/api/v1/webmail/sent").await.expect(403);
        let theirs = outsider.get("/api/v1/webmail/sent").await.expect(200).body;
        assert_eq!(theirs["items"], json!([]), "{theirs}");
        let gql = jean
            .graphql(
                "{ sentMessages(first: 1) { edges { node { subject state dkimSelector } } pageInfo { hasNextPage } } }",
                json!({}),
            )
            .await;
        assert_eq!(
            gql["data"]["sentMessages"]["edges"][0]["node"]["subject"], "Unsigned",
            "{gql}"
        );
        assert_eq!(gql["data"]["sentMessages"]["pageInfo"]["hasNextPage"], true);
    }
}

#[tokio::test]
async fn webmail_sending_without_an_outbound_relay_is_refused_clearly() {
    for backend in backends() {
        let server = Server::start(backend).await;
        let admin = server.client(&server.admin_key("root@platform.test"));
        let fx = Fixture::create(&admin, "NoRelay").await;
        let address = format!("jean@{}", fx.domain_name);
        let jean = server.login_user(&admin, &fx.user, &address).await;
        let refused = jean
            .post(
                "/api/v1/webmail/send",
                json!({ "to": ["bob@partner.example"], "text": "hello" }),
            )
            .await
            .expect(503);
        assert!(
            refused.body["detail"]
                .as_str()
                .unwrap()
                .contains("outbound relay"),
            "{}",
            refused.text
        );
    }
}

#[tokio::test]
async fn dangerous_mail_released_by_a_user_waits_for_an_admins_approval() {
    const EICAR: &str = "X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";
    for backend in backends() {
        let downstream = sink().await;
        let (server, admin, fx) = setup(backend, "Requests", downstream.addr()).await;
        // This tenant quarantines viruses instead of refusing them.
        admin
            .put(
                &format!("/api/v1/domains/{}/policy-overrides", fx.domain),
                json!({ "actions": {
                    "clean": "deliver", "newsletter": "tag", "spam": "quarantine",
                    "phishing": "quarantine", "virus": "quarantine"
                } }),
            )
            .await
            .expect(200);
        let address = format!("jean@{}", fx.domain_name);
        let jean = server.login_user(&admin, &fx.user, &address).await;

        for n in 1..=2 {
            let raw = message(
                "mallory@bad.example",
                &address,
                &format!("Invoice {n}"),
                &format!("virus-{n}@bad.example"),
                EICAR,
            );
            send(server.smtp, "mallory@bad.example", &[&address], &raw)
                .await
                .expect("accepted into quarantine");
        }
        let mut held = Vec::new();
        for _ in 0..150 {
            held = jean.get("/api/v1/quarantine").await.expect(200).body["items"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            if held.len() == 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(held.len(), 2, "{backend:?}: {held:?}");
        assert!(held.iter().all(|m| m["category"] == "virus"), "{held:?}");

        // Jean's releases become requests; nothing is delivered.
        let mut requests = Vec::new();
        for item in &held {
            let outcome = jean
                .post(
                    &format!(
                        "/api/v1/quarantine/{}/release",
                        item["id"].as_str().unwrap()
                    ),
                    json!({ "comment": "I expected this invoice" }),
                )
                .await
                .expect(200)
                .body;
            assert_eq!(outcome["status"], "requested", "{outcome}");
            requests.push(outcome["request_id"].as_str().unwrap().to_owned());
        }
        let mine = jean
            .get("/api/v1/release-requests?state=pending")
            .await
            .expect(200)
            .body;
        assert_eq!(mine["items"].as_array().unwrap().len(), 2, "{mine}");
        assert_eq!(mine["items"][0]["comment"], "I expected this invoice");
        // Users may not decide; admins of other tenants do not see the request.
        jean.post(
            &format!("/api/v1/release-requests/{}/approve", requests[0]),
            json!({}),
        )
        .await
        .expect(403);
        let stranger = Fixture::create(&admin, "Stranger").await;
        let stranger_admin = server
            .api_key_client(
                &admin,
                json!({ "name": "stranger", "tenant_id": stranger.tenant }),
            )
            .await;
        stranger_admin
            .post(
                &format!("/api/v1/release-requests/{}/approve", requests[0]),
                json!({}),
            )
            .await
            .expect(404);
        assert!(
            stranger_admin
                .get("/api/v1/release-requests")
                .await
                .expect(200)
                .body["items"]
                .as_array()
                .unwrap()
                .is_empty()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(downstream.messages().is_empty(), "nothing released yet");

        // The tenant admin approves one (delivered downstream) and denies the other (it
        // stays in quarantine; asking again is refused).
        let approved = admin
            .post(
                &format!("/api/v1/release-requests/{}/approve", requests[0]),
                json!({}),
            )
            .await
            .expect(200)
            .body;
        assert_eq!(approved["state"], "approved", "{approved}");
        let denied = admin
            .graphql(
                "mutation($id: String!) { denyReleaseRequest(id: $id) { state decidedBy } }",
                json!({ "id": requests[1] }),
            )
            .await;
        assert_eq!(
            denied["data"]["denyReleaseRequest"]["state"], "DENIED",
            "{denied}"
        );
        admin
            .post(
                &format!("/api/v1/release-requests/{}/approve", requests[1]),
                json!({}),
            )
            .await
            .expect(409);
        let arrived = downstream.wait_for(1, Duration::from_secs(20)).await;
        assert_eq!(arrived.len(), 1, "{backend:?}");
        let approved_message = held
            .iter()
            .find(|m| m["id"] == approved["message_id"])
            .unwrap();
        assert_eq!(
            header(&arrived[0], "Subject").as_deref(),
            approved_message["subject"].as_str()
        );
        let left = jean.get("/api/v1/quarantine").await.expect(200).body;
        assert_eq!(left["items"].as_array().unwrap().len(), 1, "{left}");
        assert_eq!(left["items"][0]["id"], denied_message_id(&held, &approved));
        let again = jean
            .post(
                &format!(
                    "/api/v1/quarantine/{}/release",
                    left["items"][0]["id"].as_str().unwrap()
                ),
                json!({}),
            )
            .await;
        assert_eq!(again.status, 409, "{}", again.text);
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(downstream.messages().len(), 1, "the denied one never left");
    }
}

fn denied_message_id(held: &[Value], approved: &Value) -> Value {
    held.iter()
        .find(|m| m["id"] != approved["message_id"])
        .map(|m| m["id"].clone())
        .unwrap()
}
