//! Tenancy: for every resource and verb, an actor of another reseller or tenant gets
//! nothing — a 404 on REST and `null` or `NOT_FOUND` on GraphQL, exactly as if missing.

use serde_json::{Value, json};

use crate::common::{Client, Fixture, Server, backends};

struct Victim {
    fx: Fixture,
    api_key: String,
}

async fn actors(server: &Server, admin: &Client, fx: &Fixture) -> Vec<(&'static str, Client)> {
    let reseller_admin = server
        .api_key_client(
            admin,
            json!({ "name": "reseller", "reseller_id": fx.reseller }),
        )
        .await;
    let tenant_admin = server
        .api_key_client(admin, json!({ "name": "tenant", "tenant_id": fx.tenant }))
        .await;
    admin
        .patch(
            &format!("/api/v1/users/{}", fx.user),
            json!({ "password": "a long enough password" }),
        )
        .await
        .expect(200);
    let login = server
        .anonymous()
        .post(
            "/api/v1/auth/login",
            json!({ "email": format!("jean@{}", fx.domain_name), "password": "a long enough password" }),
        )
        .await
        .expect(200);
    vec![
        ("reseller admin", reseller_admin),
        ("tenant admin", tenant_admin),
        (
            "end user",
            server.client(login.body["access_token"].as_str().unwrap()),
        ),
    ]
}

#[tokio::test]
async fn another_reseller_or_tenant_gets_nothing_on_any_resource_or_verb() {
    for backend in backends() {
        let server = Server::start(backend).await;
        let admin = server.client(&server.admin_key("root@example.com"));
        let victim_fx = Fixture::create(&admin, "Victim").await;
        let victim = Victim {
            api_key: admin
                .post(
                    "/api/v1/api-keys",
                    json!({ "name": "victim", "tenant_id": victim_fx.tenant }),
                )
                .await
                .expect(201)
                .body["api_key"]["id"]
                .as_str()
                .unwrap()
                .to_owned(),
            fx: victim_fx,
        };
        let other = Fixture::create(&admin, "Other").await;
        let v = &victim.fx;
        let victim_keys = format!("/api/v1/domains/{}/dkim-keys", v.domain);
        let victim_key = admin.post(&victim_keys, json!({})).await.expect(201).id();
        let objects = [
            (
                "resellers",
                v.reseller.as_str(),
                json!({ "name": "hijacked" }),
            ),
            ("tenants", v.tenant.as_str(), json!({ "name": "hijacked" })),
            (
                "domains",
                v.domain.as_str(),
                json!({ "state": "suspended" }),
            ),
            (
                "users",
                v.user.as_str(),
                json!({ "display_name": "hijacked" }),
            ),
            (
                "aliases",
                v.alias.as_str(),
                json!({ "status": "unverified" }),
            ),
        ];

        for (actor, client) in actors(&server, &admin, &other).await {
            let who = format!("{backend:?} {actor}");
            for (collection, id, patch) in &objects {
                let path = format!("/api/v1/{collection}/{id}");
                let got = client.get(&path).await;
                assert_eq!(got.status, 404, "{who} GET {path}: {}", got.text);
                assert_eq!(got.body["code"], "NOT_FOUND");
                let patched = client.patch(&path, patch.clone()).await;
                assert_eq!(patched.status, 404, "{who} PATCH {path}: {}", patched.text);
                let deleted = client.delete(&path).await;
                assert_eq!(deleted.status, 404, "{who} DELETE {path}: {}", deleted.text);
                let list = client.get(&format!("/api/v1/{collection}?limit=500")).await;
                if list.status == 200 {
                    assert!(
                        !list.text.contains(id),
                        "{who} lists {collection} of another tenant"
                    );
                }
            }
            // The victim domain's DKIM keys: nothing to read, create, activate or delete.
            let key_path = format!("{victim_keys}/{victim_key}");
            for res in [
                client.get(&victim_keys).await,
                client.post(&victim_keys, json!({})).await,
                client.get(&key_path).await,
                client
                    .post(&format!("{key_path}/activate"), json!({}))
                    .await,
                client.delete(&key_path).await,
            ] {
                assert!(
                    matches!(res.status, 403 | 404) && !res.text.contains("DKIM1"),
                    "{who} DKIM keys: {} {}",
                    res.status,
                    res.text
                );
            }
            let gql = client
                .graphql(
                    "query($d: String!) { dkimKeys(domainId: $d) { id } }",
                    json!({ "d": v.domain }),
                )
                .await;
            assert_eq!(gql["data"], Value::Null, "{who}: {gql}");
            for path in [format!("/api/v1/api-keys/{}", victim.api_key)] {
                let got = client.get(&path).await;
                assert!(
                    matches!(got.status, 403 | 404),
                    "{who} GET {path}: {}",
                    got.text
                );
                let revoked = client.post(&format!("{path}/revoke"), json!({})).await;
                assert!(
                    matches!(revoked.status, 403 | 404),
                    "{who} revoke: {}",
                    revoked.text
                );
            }

            // Creating under the victim's parents is refused as if they did not exist.
            let creations = [
                (
                    "/api/v1/tenants",
                    json!({ "reseller_id": v.reseller, "name": "x", "region": "ch" }),
                ),
                (
                    "/api/v1/domains",
                    json!({ "tenant_id": v.tenant, "name": "intruder.ch", "destination": "a.ch:25" }),
                ),
                (
                    "/api/v1/users",
                    json!({ "domain_id": v.domain, "address": format!("x@{}", v.domain_name), "display_name": "X" }),
                ),
                (
                    "/api/v1/aliases",
                    json!({ "user_id": v.user, "address": format!("y@{}", other.domain_name) }),
                ),
                (
                    "/api/v1/api-keys",
                    json!({ "name": "x", "tenant_id": v.tenant }),
                ),
            ];
            for (path, body) in creations {
                let res = client.post(path, body).await;
                assert!(
                    matches!(res.status, 403 | 404),
                    "{who} POST {path}: {} {}",
                    res.status,
                    res.text
                );
            }
            let import = client
                .post_text(
                    &format!("/api/v1/imports?tenant_id={}", v.tenant),
                    "text/csv",
                    format!("z@{},user,,Z\n", v.domain_name),
                )
                .await;
            assert!(
                matches!(import.status, 403 | 404),
                "{who} import: {}",
                import.text
            );
            let export = client
                .get(&format!(
                    "/api/v1/exports/addresses.csv?tenant_id={}",
                    v.tenant
                ))
                .await;
            assert!(
                matches!(export.status, 403 | 404),
                "{who} export: {}",
                export.text
            );

            // GraphQL: nulls for reads, NOT_FOUND for writes.
            let doc = client
                .graphql(
                    "query($r: String!, $t: String!, $d: String!, $u: String!, $a: String!) {
                       reseller(id: $r) { id } tenant(id: $t) { id } domain(id: $d) { id } user(id: $u) { id } alias(id: $a) { id } }",
                    json!({ "r": v.reseller, "t": v.tenant, "d": v.domain, "u": v.user, "a": v.alias }),
                )
                .await;
            assert_eq!(doc["errors"], Value::Null, "{who}: {doc}");
            for field in ["reseller", "tenant", "domain", "user", "alias"] {
                assert_eq!(doc["data"][field], Value::Null, "{who} GraphQL {field}");
            }
            let doc = client
                .graphql(
                    "mutation($id: String!) { updateTenant(id: $id, input: { name: \"hijacked\" }) { id } }",
                    json!({ "id": v.tenant }),
                )
                .await;
            assert_eq!(
                doc["errors"][0]["extensions"]["code"], "NOT_FOUND",
                "{who}: {doc}"
            );
            let doc = client
                .graphql(
                    "mutation($id: String!) { deleteUser(id: $id) }",
                    json!({ "id": v.user }),
                )
                .await;
            assert_eq!(
                doc["errors"][0]["extensions"]["code"], "NOT_FOUND",
                "{who}: {doc}"
            );
            let doc = client
                .graphql("{ users(first: 500) { edges { node { id } } } }", json!({}))
                .await;
            assert!(
                !doc.to_string().contains(&v.user),
                "{who} GraphQL lists another tenant's user"
            );
        }

        // The victim's objects are untouched.
        for (collection, id, _) in &objects {
            let got = admin
                .get(&format!("/api/v1/{collection}/{id}"))
                .await
                .expect(200);
            assert_ne!(got.body["name"], "hijacked");
            assert_ne!(got.body["display_name"], "hijacked");
        }
        let key = admin
            .get(&format!("/api/v1/api-keys/{}", victim.api_key))
            .await
            .expect(200);
        assert_eq!(key.body["revoked_at"], Value::Null);
    }
}

/// The first item of `path` for `client`, once there is one (or panics after 15 s).
async fn first_item(client: &Client, path: &str) -> String {
    for _ in 0..150 {
        let res = client.get(path).await.expect(200);
        if let Some(id) = res.body["items"][0]["id"].as_str() {
            return id.to_owned();
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("nothing appeared at {path}");
}

#[tokio::test]
async fn quarantine_and_webmail_of_another_user_or_tenant_are_invisible() {
    for backend in backends() {
        let sink = crate::mail::sink().await;
        let (server, admin, v) = crate::mail::setup(backend, "Held", sink.addr()).await;
        let other = Fixture::create(&admin, "Outsider").await;
        let jean = format!("jean@{}", v.domain_name);
        let spam = crate::mail::message(
            "a@spam.example",
            &jean,
            "Held",
            "held-1@spam.example",
            "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X",
        );
        crate::mail::send(server.smtp, "a@spam.example", &[&jean], &spam)
            .await
            .unwrap();
        let clean = crate::mail::message("b@ok.example", &jean, "Kept", "kept-1@ok.example", "Hi.");
        crate::mail::send(server.smtp, "b@ok.example", &[&jean], &clean)
            .await
            .unwrap();
        let held = first_item(&admin, "/api/v1/quarantine").await;
        let kept = first_item(&admin, "/api/v1/webmail/messages?subject=Kept").await;

        // Another tenant's admins and users, and a colleague in the victim's own tenant.
        let colleague = admin
            .post(
                "/api/v1/users",
                json!({ "domain_id": v.domain, "address": format!("colleague@{}", v.domain_name), "display_name": "C" }),
            )
            .await
            .expect(201)
            .id();
        let mut all = actors(&server, &admin, &other).await;
        all.push((
            "colleague (same tenant)",
            server
                .login_user(&admin, &colleague, &format!("colleague@{}", v.domain_name))
                .await,
        ));
        for (actor, client) in all {
            let who = format!("{backend:?} {actor}");
            for path in [
                format!("/api/v1/quarantine/{held}"),
                format!("/api/v1/quarantine/{held}/raw"),
                format!("/api/v1/webmail/messages/{kept}"),
            ] {
                let got = client.get(&path).await;
                assert_eq!(got.status, 404, "{who} GET {path}: {}", got.text);
            }
            for path in [
                format!("/api/v1/quarantine/{held}/release"),
                format!("/api/v1/quarantine/{held}/delete"),
                format!("/api/v1/quarantine/{held}/allow-sender"),
                format!("/api/v1/quarantine/{held}/block-sender"),
                format!("/api/v1/quarantine/{held}/report-spam"),
                format!("/api/v1/webmail/messages/{kept}/redistribute"),
                format!("/api/v1/webmail/messages/{kept}/delete"),
            ] {
                let res = client.post(&path, json!({})).await;
                assert_eq!(res.status, 404, "{who} POST {path}: {}", res.text);
            }
            let bulk = client
                .post(
                    "/api/v1/quarantine/bulk",
                    json!({ "action": "release", "ids": [held] }),
                )
                .await
                .expect(200);
            assert_eq!(bulk.body["results"][0]["code"], "NOT_FOUND", "{who}");
            for path in [
                "/api/v1/quarantine?limit=500",
                "/api/v1/webmail/messages?limit=500",
            ] {
                let list = client.get(path).await.expect(200);
                assert!(
                    !list.text.contains(&held) && !list.text.contains(&kept),
                    "{who} lists another's messages at {path}"
                );
            }
            let doc = client
                .graphql(
                    "query($q: String!, $k: String!) { quarantinedMessage(id: $q) { message { id } } webmailMessage(id: $k) { message { id } } }",
                    json!({ "q": held, "k": kept }),
                )
                .await;
            assert_eq!(
                doc["data"]["quarantinedMessage"],
                Value::Null,
                "{who}: {doc}"
            );
            assert_eq!(doc["data"]["webmailMessage"], Value::Null, "{who}: {doc}");
            let doc = client
                .graphql(
                    "mutation($q: String!) { releaseMessage(id: $q) { status } }",
                    json!({ "q": held }),
                )
                .await;
            assert_eq!(
                doc["errors"][0]["extensions"]["code"], "NOT_FOUND",
                "{who}: {doc}"
            );
        }

        // Untouched: still held, still kept, nothing delivered but the clean message.
        admin
            .get(&format!("/api/v1/quarantine/{held}"))
            .await
            .expect(200);
        admin
            .get(&format!("/api/v1/webmail/messages/{kept}"))
            .await
            .expect(200);
        assert_eq!(sink.messages().len(), 1, "{backend:?}");
    }
}
