//! The hierarchy over REST and GraphQL, validation, authentication and the probes.

use serde_json::{Value, json};

use crate::common::{Fixture, Server, backends};

#[tokio::test]
async fn hierarchy_over_rest_and_graphql_shows_the_same_data() {
    for backend in backends() {
        let server = Server::start(backend).await;
        let admin = server.client(&server.admin_key("root@example.com"));

        // REST: reseller → tenant → domain → user → alias.
        let fx = Fixture::create(&admin, "Alpha").await;
        let user = admin
            .get(&format!("/api/v1/users/{}", fx.user))
            .await
            .expect(200);
        assert_eq!(user.body["address"], "jean@alpha.example.ch");
        assert_eq!(user.body["status"], "active");
        let alias = admin
            .get(&format!("/api/v1/aliases/{}", fx.alias))
            .await
            .expect(200);
        assert_eq!(alias.body["user_id"], fx.user.as_str());

        // GraphQL sees the same objects.
        let doc = admin
            .graphql(
                "query($id: String!) { tenant(id: $id) { id name region timezone }
                   domains(filter: { tenantId: $id }) { edges { node { id name state } } pageInfo { hasNextPage } }
                   aliases(filter: { tenantId: $id }) { edges { node { address userId } } } }",
                json!({ "id": fx.tenant }),
            )
            .await;
        assert_eq!(doc["errors"], Value::Null, "{doc}");
        assert_eq!(doc["data"]["tenant"]["region"], "ch");
        assert_eq!(doc["data"]["tenant"]["timezone"], "Europe/Zurich");
        assert_eq!(
            doc["data"]["domains"]["edges"][0]["node"]["id"],
            fx.domain.as_str()
        );
        assert_eq!(
            doc["data"]["aliases"]["edges"][0]["node"]["address"],
            "info@alpha.example.ch"
        );

        // GraphQL creates; REST reads.
        let doc = admin
            .graphql(
                "mutation($input: CreateUser!) { createUser(input: $input) { id address displayName language status } }",
                json!({ "input": { "domainId": fx.domain, "address": "Marie@ALPHA.example.ch", "displayName": "Marie", "language": "fr" } }),
            )
            .await;
        assert_eq!(doc["errors"], Value::Null, "{doc}");
        let marie = doc["data"]["createUser"]["id"].as_str().unwrap().to_owned();
        let rest = admin
            .get(&format!("/api/v1/users/{marie}"))
            .await
            .expect(200);
        assert_eq!(rest.body["address"], "marie@alpha.example.ch");
        assert_eq!(rest.body["language"], "fr");

        // Update and delete over both.
        admin
            .patch(
                &format!("/api/v1/domains/{}", fx.domain),
                json!({ "state": "live" }),
            )
            .await
            .expect(200);
        let doc = admin
            .graphql(
                "query($id: String!) { domain(id: $id) { state } }",
                json!({ "id": fx.domain }),
            )
            .await;
        assert_eq!(doc["data"]["domain"]["state"], "LIVE");
        let doc = admin
            .graphql(
                "mutation($id: String!) { deleteUser(id: $id) }",
                json!({ "id": marie }),
            )
            .await;
        assert_eq!(doc["data"]["deleteUser"], marie.as_str(), "{doc}");
        admin
            .get(&format!("/api/v1/users/{marie}"))
            .await
            .expect(404);

        // Pagination walks every item exactly once.
        for i in 0..5 {
            admin
                .post(
                    "/api/v1/users",
                    json!({ "domain_id": fx.domain, "address": format!("p{i}@alpha.example.ch"), "display_name": "P" }),
                )
                .await
                .expect(201);
        }
        let mut seen = Vec::new();
        let mut path = "/api/v1/users?limit=2".to_owned();
        loop {
            let page = admin.get(&path).await.expect(200);
            for item in page.body["items"].as_array().unwrap() {
                seen.push(item["id"].as_str().unwrap().to_owned());
            }
            match page.body["next_cursor"].as_str() {
                Some(cursor) => path = format!("/api/v1/users?limit=2&after={cursor}"),
                None => break,
            }
        }
        let mut unique = seen.clone();
        unique.dedup();
        assert_eq!(seen.len(), 6, "{backend:?}: {seen:?}");
        assert_eq!(unique.len(), 6);

        // An address is unique platform-wide, across users and aliases.
        let dup = admin
            .post(
                "/api/v1/aliases",
                json!({ "user_id": fx.user, "address": "JEAN@alpha.example.ch" }),
            )
            .await
            .expect(409);
        assert_eq!(dup.body["code"], "CONFLICT");
        assert_eq!(dup.content_type, "application/problem+json");

        // A reseller with tenants cannot be deleted; the problem says why.
        let refused = admin
            .delete(&format!("/api/v1/resellers/{}", fx.reseller))
            .await
            .expect(409);
        assert!(
            refused.body["detail"].as_str().unwrap().contains("tenant"),
            "{}",
            refused.text
        );
        admin
            .delete(&format!("/api/v1/domains/{}", fx.domain))
            .await
            .expect(204);
        admin
            .get(&format!("/api/v1/aliases/{}", fx.alias))
            .await
            .expect(404);
        admin
            .delete(&format!("/api/v1/tenants/{}", fx.tenant))
            .await
            .expect(204);
        admin
            .delete(&format!("/api/v1/resellers/{}", fx.reseller))
            .await
            .expect(204);
    }
}

#[tokio::test]
async fn bad_input_gets_problem_json_and_coded_graphql_errors() {
    for backend in backends() {
        let server = Server::start(backend).await;
        let admin = server.client(&server.admin_key("root@example.com"));
        let fx = Fixture::create(&admin, "Beta").await;

        // Sovereignty: a region this deployment does not serve is refused.
        let res = admin
            .post(
                "/api/v1/tenants",
                json!({ "reseller_id": fx.reseller, "name": "T", "region": "de" }),
            )
            .await
            .expect(422);
        assert_eq!(res.content_type, "application/problem+json");
        assert_eq!(res.body["status"], 422);
        assert_eq!(res.body["errors"][0]["field"], "region");

        // Several field errors at once.
        let res = admin
            .post(
                "/api/v1/users",
                json!({ "domain_id": fx.domain, "address": "not an address", "display_name": " ", "language": "xx" }),
            )
            .await
            .expect(422);
        let fields: Vec<&str> = res.body["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["field"].as_str().unwrap())
            .collect();
        assert_eq!(
            fields,
            ["address", "display_name", "language"],
            "{}",
            res.text
        );

        // An address outside the user's domain.
        let res = admin
            .post(
                "/api/v1/users",
                json!({ "domain_id": fx.domain, "address": "x@elsewhere.ch", "display_name": "X" }),
            )
            .await
            .expect(422);
        assert_eq!(res.body["errors"][0]["field"], "address");

        // Bad destination, bad timezone, malformed JSON, wrong types.
        admin
            .post(
                "/api/v1/domains",
                json!({ "tenant_id": fx.tenant, "name": "ok.ch", "destination": "nohostport" }),
            )
            .await
            .expect(422);
        admin
            .patch(
                &format!("/api/v1/tenants/{}", fx.tenant),
                json!({ "timezone": "Mars/Olympus" }),
            )
            .await
            .expect(422);
        let res = admin
            .post_text("/api/v1/resellers", "application/json", "{not json".into())
            .await
            .expect(400);
        assert_eq!(res.body["code"], "BAD_REQUEST");
        let res = admin
            .post("/api/v1/resellers", json!({ "name": 42 }))
            .await
            .expect(422);
        assert_eq!(res.body["errors"][0]["field"], "body");
        admin.get("/api/v1/users?limit=abc").await.expect(422);
        admin.get("/api/v1/no-such-thing").await.expect(404);

        // Nothing was created by the failures.
        let users = admin
            .get(&format!("/api/v1/users?domain_id={}", fx.domain))
            .await
            .expect(200);
        assert_eq!(users.body["items"].as_array().unwrap().len(), 1);

        // GraphQL: the same rules, as coded errors.
        let doc = admin
            .graphql(
                "mutation($input: CreateTenant!) { createTenant(input: $input) { id } }",
                json!({ "input": { "resellerId": fx.reseller, "name": "T", "region": "us" } }),
            )
            .await;
        assert_eq!(
            doc["errors"][0]["extensions"]["code"], "VALIDATION_FAILED",
            "{doc}"
        );
        assert_eq!(
            doc["errors"][0]["extensions"]["fields"][0]["field"],
            "region"
        );
        let doc = server
            .anonymous()
            .graphql("{ me { role } }", json!({}))
            .await;
        assert_eq!(
            doc["errors"][0]["extensions"]["code"], "UNAUTHENTICATED",
            "{doc}"
        );
    }
}

#[tokio::test]
async fn login_tokens_api_keys_and_end_user_scope() {
    for backend in backends() {
        let server = Server::start(backend).await;
        let admin = server.client(&server.admin_key("root@example.com"));
        let fx = Fixture::create(&admin, "Gamma").await;

        server
            .anonymous()
            .get("/api/v1/resellers")
            .await
            .expect(401);
        server
            .client("cm_not-a-real-key")
            .get("/api/v1/resellers")
            .await
            .expect(401);
        server
            .client("eyJhbGciOiJIUzI1NiJ9.e30.bad")
            .get("/api/v1/resellers")
            .await
            .expect(401);

        // An end user with a password logs in and sees only their own mailbox.
        admin
            .patch(
                &format!("/api/v1/users/{}", fx.user),
                json!({ "password": "correct horse battery" }),
            )
            .await
            .expect(200);
        let other = admin
            .post(
                "/api/v1/users",
                json!({ "domain_id": fx.domain, "address": "other@gamma.example.ch", "display_name": "Other" }),
            )
            .await
            .expect(201)
            .id();
        server
            .anonymous()
            .post(
                "/api/v1/auth/login",
                json!({ "email": "jean@gamma.example.ch", "password": "wrong password!" }),
            )
            .await
            .expect(401);
        let login = server
            .anonymous()
            .post(
                "/api/v1/auth/login",
                json!({ "email": "Jean@Gamma.example.ch", "password": "correct horse battery" }),
            )
            .await
            .expect(200);
        let jean = server.client(login.body["access_token"].as_str().unwrap());
        let me = jean.get("/api/v1/me").await.expect(200);
        assert_eq!(me.body["role"], "user");
        assert_eq!(me.body["user_id"], fx.user.as_str());
        let users = jean.get("/api/v1/users").await.expect(200);
        assert_eq!(users.body["items"].as_array().unwrap().len(), 1);
        jean.get(&format!("/api/v1/users/{other}"))
            .await
            .expect(404);
        jean.get(&format!("/api/v1/tenants/{}", fx.tenant))
            .await
            .expect(200);
        jean.get(&format!("/api/v1/aliases/{}", fx.alias))
            .await
            .expect(200);
        // They may change their own display name, not their role.
        jean.patch(
            &format!("/api/v1/users/{}", fx.user),
            json!({ "display_name": "Jean D." }),
        )
        .await
        .expect(200);
        jean.patch(
            &format!("/api/v1/users/{}", fx.user),
            json!({ "role": "tenant_admin" }),
        )
        .await
        .expect(403);
        jean.post(
            "/api/v1/domains",
            json!({ "tenant_id": fx.tenant, "name": "new.ch", "destination": "mx.new.ch:25" }),
        )
        .await
        .expect(403);
        jean.get("/api/v1/api-keys").await.expect(403);

        // A tenant API key acts as tenant admin; once revoked it stops working.
        let created = admin
            .post(
                "/api/v1/api-keys",
                json!({ "name": "automation", "tenant_id": fx.tenant }),
            )
            .await
            .expect(201);
        let secret = created.body["secret"].as_str().unwrap().to_owned();
        let key_id = created.body["api_key"]["id"].as_str().unwrap().to_owned();
        assert_eq!(created.body["api_key"]["role"], "tenant_admin");
        let tenant_admin = server.client(&secret);
        tenant_admin
            .post("/api/v1/domains", json!({ "tenant_id": fx.tenant, "name": "second.ch", "destination": "mx.second.ch:25" }))
            .await
            .expect(201);
        tenant_admin
            .post("/api/v1/resellers", json!({ "name": "nope" }))
            .await
            .expect(403);
        let listed = admin.get("/api/v1/api-keys").await.expect(200);
        assert!(listed.text.contains(&key_id));
        assert!(
            !listed.text.contains(&secret),
            "secrets are shown once only"
        );
        admin
            .post(&format!("/api/v1/api-keys/{key_id}/revoke"), json!({}))
            .await
            .expect(200);
        tenant_admin.get("/api/v1/domains").await.expect(401);
    }
}

#[tokio::test]
async fn probes_docs_and_committed_contracts() {
    let server = Server::start(crate::common::Backend::Sqlite).await;
    let anon = server.anonymous();
    assert_eq!(anon.get("/healthz").await.expect(200).body["status"], "ok");
    assert_eq!(anon.get("/readyz").await.expect(200).body["status"], "ok");
    let docs = anon.get("/docs/").await.expect(200);
    assert!(
        docs.text.contains("swagger"),
        "docs page: {}",
        &docs.text[..docs.text.len().min(200)]
    );
    let served = anon.get("/openapi.json").await.expect(200);
    assert!(served.body["paths"]["/api/v1/tenants"].is_object());
    // GraphiQL comes with its assets from the binary (no CDN), and its introspection query
    // passes the depth limits that data queries get.
    let graphiql = anon.get("/graphql").await.expect(200);
    assert!(graphiql.text.contains("GraphiQL.createFetcher"));
    assert!(!graphiql.text.contains("https://"), "{}", graphiql.text);
    for asset in graphiql
        .text
        .split('"')
        .filter(|s| s.starts_with("/graphql/assets/"))
    {
        let served = anon.get(asset).await.expect(200);
        assert!(served.text.len() > 1000, "{asset}");
    }
    let introspection = anon.graphql(INTROSPECTION, json!({})).await;
    assert!(introspection.get("errors").is_none(), "{introspection}");
    let types = introspection["data"]["__schema"]["types"]
        .as_array()
        .unwrap();
    assert!(types.iter().any(|t| t["name"] == "Tenant"));

    // The committed contracts equal what the binary generates.
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let openapi = server.cli(&["openapi"]);
    let committed = std::fs::read_to_string(root.join("openapi/openapi.json")).unwrap();
    assert_eq!(
        String::from_utf8(openapi.stdout).unwrap().trim_end(),
        committed.trim_end(),
        "openapi/openapi.json is stale: run `cargo run -- openapi > openapi/openapi.json`"
    );
    let sdl = server.cli(&["graphql-schema"]);
    let committed = std::fs::read_to_string(root.join("api/schema.graphql")).unwrap();
    assert_eq!(
        String::from_utf8(sdl.stdout).unwrap().trim_end(),
        committed.trim_end(),
        "api/schema.graphql is stale: run `cargo run -- graphql-schema > api/schema.graphql`"
    );
}

/// What GraphiQL sends: graphql-js 16's `getIntrospectionQuery({ inputValueDeprecation: true })`.
const INTROSPECTION: &str = r#"
query IntrospectionQuery {
  __schema {
    queryType { name } mutationType { name } subscriptionType { name }
    types { ...FullType }
    directives { name description locations args(includeDeprecated: true) { ...InputValue } }
  }
}
fragment FullType on __Type {
  kind name description
  fields(includeDeprecated: true) {
    name description args(includeDeprecated: true) { ...InputValue }
    type { ...TypeRef } isDeprecated deprecationReason
  }
  inputFields(includeDeprecated: true) { ...InputValue }
  interfaces { ...TypeRef }
  enumValues(includeDeprecated: true) { name description isDeprecated deprecationReason }
  possibleTypes { ...TypeRef }
}
fragment InputValue on __InputValue {
  name description type { ...TypeRef } defaultValue isDeprecated deprecationReason
}
fragment TypeRef on __Type {
  kind name
  ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType {
    kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name } } } } } } } } }
}
"#;

#[tokio::test]
async fn new_tenants_get_the_deployment_time_zone_unless_they_set_one() {
    let server = Server::start_with(
        crate::common::Backend::Sqlite,
        &[("CLEANMAIL_DEFAULT_TIMEZONE", "America/New_York")],
    )
    .await;
    let admin = server.client(&server.admin_key("root@platform.test"));
    let reseller = admin
        .post("/api/v1/resellers", json!({ "name": "Time zones" }))
        .await
        .expect(201)
        .id();
    let tenant = |name: &str, timezone: Option<&str>| {
        let mut body = json!({ "reseller_id": reseller, "name": name, "region": "ch" });
        if let Some(tz) = timezone {
            body["timezone"] = json!(tz);
        }
        body
    };
    let defaulted = admin
        .post("/api/v1/tenants", tenant("Defaulted", None))
        .await
        .expect(201);
    assert_eq!(defaulted.body["timezone"], "America/New_York");
    let own = admin
        .post("/api/v1/tenants", tenant("Own", Some("Europe/Rome")))
        .await
        .expect(201);
    assert_eq!(own.body["timezone"], "Europe/Rome");
}

/// `cleanmail openapi | head` closes the pipe after a few lines; the binary must stop quietly
/// (exit 0, no panic message), as Unix tools do.
#[test]
fn output_to_a_closed_pipe_ends_quietly() {
    use std::io::Read as _;
    use std::process::{Command, Stdio};
    let mut child = Command::new(crate::common::BIN)
        .arg("openapi")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 16];
    child.stdout.take().unwrap().read_exact(&mut first).unwrap();
    // The reader is gone; the rest of the 250 KB document meets a closed pipe.
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{:?}: {stderr}", output.status);
    assert!(!stderr.contains("panicked"), "{stderr}");
}
