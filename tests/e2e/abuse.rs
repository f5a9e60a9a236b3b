//! Limits that keep a stolen or guessed password from being worth much: login attempts per
//! account, and recipients per hour from the backup webmail. Both answer 429 with
//! `Retry-After` on REST and `RATE_LIMITED` (with `retryAfter`) on GraphQL.

use std::time::Duration;

use serde_json::json;

use crate::common::{Fixture, Server, backends};
use crate::mail::sink;

#[tokio::test]
async fn login_attempts_are_limited_per_account() {
    for backend in backends() {
        let mut server = Server::start(backend).await;
        let admin = server.client(&server.admin_key("root@platform.test"));
        let fx = Fixture::create(&admin, "Guessed").await;
        let address = format!("jean@{}", fx.domain_name);
        // Sets the password and logs in once.
        server.login_user(&admin, &fx.user, &address).await;
        let anonymous = server.anonymous();
        let login = |email: String, password: &'static str| {
            let anonymous = anonymous.clone();
            async move {
                anonymous
                    .post(
                        "/api/v1/auth/login",
                        json!({ "email": email, "password": password }),
                    )
                    .await
            }
        };

        for _ in 0..10 {
            login(address.clone(), "wrong guess").await.expect(401);
        }
        // The right password no longer helps, whatever the case of the address.
        let refused = login(address.to_uppercase(), "correct horse battery")
            .await
            .expect(429);
        assert_eq!(refused.body["code"], "RATE_LIMITED", "{}", refused.text);
        assert_eq!(refused.content_type, "application/problem+json");
        let wait = refused.retry_after.expect("Retry-After");
        assert!((1..=900).contains(&wait), "Retry-After {wait}");
        assert!(
            refused.body["detail"]
                .as_str()
                .unwrap()
                .contains("too many failed logins"),
            "{}",
            refused.text
        );
        let gql = anonymous
            .graphql(
                "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { accessToken } }",
                json!({ "e": address, "p": "correct horse battery" }),
            )
            .await;
        assert_eq!(
            gql["errors"][0]["extensions"]["code"], "RATE_LIMITED",
            "{gql}"
        );
        assert!(
            gql["errors"][0]["extensions"]["retryAfter"]
                .as_u64()
                .unwrap()
                >= 1
        );

        // Other accounts are not affected.
        let anna_address = format!("anna@{}", fx.domain_name);
        let anna = admin
            .post(
                "/api/v1/users",
                json!({ "domain_id": fx.domain, "address": anna_address, "display_name": "Anna" }),
            )
            .await
            .expect(201)
            .id();
        login(anna_address.clone(), "wrong guess").await.expect(401);
        server.login_user(&admin, &anna, &anna_address).await;

        // The count lives in the database, not in the API process: another process (the
        // same server, killed and started again) still refuses the account.
        server.kill_and_restart();
        let refused = server
            .anonymous()
            .post(
                "/api/v1/auth/login",
                json!({ "email": address, "password": "correct horse battery" }),
            )
            .await
            .expect(429);
        assert_eq!(refused.body["code"], "RATE_LIMITED", "{}", refused.text);
    }
}

#[tokio::test]
async fn webmail_sending_is_limited_to_recipients_per_hour() {
    for backend in backends() {
        let relay = sink().await;
        let server = Server::start_with(
            backend,
            &[
                ("CLEANMAIL_OUTBOUND_RELAY", &relay.addr().to_string()),
                ("CLEANMAIL_WEBMAIL_SEND_LIMIT", "3"),
            ],
        )
        .await;
        let admin = server.client(&server.admin_key("root@platform.test"));
        let fx = Fixture::create(&admin, "Limited").await;
        let jean = server
            .login_user(&admin, &fx.user, &format!("jean@{}", fx.domain_name))
            .await;
        let send = |to: Vec<&'static str>| {
            let jean = jean.clone();
            async move {
                jean.post(
                    "/api/v1/webmail/send",
                    json!({ "to": to, "subject": "Status", "text": "Our server is down." }),
                )
                .await
            }
        };

        send(vec!["bob@partner.example", "carol@partner.example"])
            .await
            .expect(202);
        let refused = send(vec!["dan@partner.example", "eve@partner.example"])
            .await
            .expect(429);
        assert_eq!(refused.body["code"], "RATE_LIMITED", "{}", refused.text);
        let detail = refused.body["detail"].as_str().unwrap();
        assert!(
            detail.contains("at most 3 recipients per hour") && detail.contains("2 used"),
            "{detail}"
        );
        let wait = refused.retry_after.expect("Retry-After");
        assert!((3500..=3600).contains(&wait), "Retry-After {wait}");
        // A message that could never fit is invalid, not delayed.
        let too_many = send(vec![
            "a@partner.example",
            "b@partner.example",
            "c@partner.example",
            "d@partner.example",
        ])
        .await
        .expect(422);
        assert_eq!(
            too_many.body["errors"][0]["field"], "to",
            "{}",
            too_many.text
        );
        // What still fits under the limit is sent.
        send(vec!["dan@partner.example"]).await.expect(202);
        let gql = jean
            .graphql(
                "mutation($i: SendMessageInput!) { sendMessage(input: $i) { recipients } }",
                json!({ "i": { "to": ["eve@partner.example"], "text": "one more" } }),
            )
            .await;
        assert_eq!(
            gql["errors"][0]["extensions"]["code"], "RATE_LIMITED",
            "{gql}"
        );

        let out = relay.wait_for(2, Duration::from_secs(20)).await;
        assert_eq!(out.len(), 2, "{backend:?}");
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(relay.wait_for(2, Duration::from_secs(1)).await.len(), 2);
    }
}
