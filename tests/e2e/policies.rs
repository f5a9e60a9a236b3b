//! Policies: the built-in ones, CRUD, assignment to tenants, overrides on domains and users,
//! the effective-policy explanation, validation and tenancy, over REST and GraphQL.

use serde_json::{Value, json};

use crate::common::{Client, Fixture, Server, backends};

const STANDARD: &str = "Standard policy with quarantine reporting";
const WITHOUT_REPORT: &str = "Policy without quarantine report";

async fn api_key(admin: &Client, body: Value) -> String {
    admin.post("/api/v1/api-keys", body).await.expect(201).body["secret"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// A login token for the fixture's user `jean@…`.
async fn end_user(server: &Server, admin: &Client, fx: &Fixture) -> Client {
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
    server.client(login.body["access_token"].as_str().unwrap())
}

fn by_name<'a>(items: &'a Value, name: &str) -> &'a Value {
    items
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("no policy named {name} in {items}"))
}

fn standard_settings() -> Value {
    json!({
        "thresholds": { "tag": 4.0, "quarantine": 6.0, "reject": 15.0 },
        "actions": { "clean": "deliver", "newsletter": "tag", "spam": "quarantine", "phishing": "quarantine", "virus": "reject" },
        "newsletter_tag": "[PUB] ",
        "spam_tag": "[SPAM] ",
        "report": { "frequency": "twice_daily", "at": "08:00", "second_at": "17:30", "timezone": "Europe/Zurich" },
        "quarantine_expiry_days": 14,
        "backup_webmail": { "enabled": false },
        "lists": { "allow": [], "block": ["spammer.example", "198.51.100.0/24"] }
    })
}

#[tokio::test]
async fn builtins_exist_and_a_new_tenant_is_on_the_standard_one() {
    for backend in backends() {
        let server = Server::start(backend).await;
        let admin = server.client(&server.admin_key("root@example.com"));
        let fx = Fixture::create(&admin, "Builtin").await;
        let tenant_admin =
            server.client(&api_key(&admin, json!({ "name": "t", "tenant_id": fx.tenant })).await);

        // Everyone but end users sees both built-ins, read-only.
        let list = tenant_admin.get("/api/v1/policies").await.expect(200);
        let standard = by_name(&list.body["items"], STANDARD).clone();
        let quiet = by_name(&list.body["items"], WITHOUT_REPORT).clone();
        assert_eq!(standard["owner"], "platform");
        assert_eq!(standard["builtin"], true);
        assert_eq!(standard["editable"], false);
        let s = &standard["settings"];
        assert_eq!(s["thresholds"]["quarantine"], 5.0);
        assert_eq!(s["actions"]["spam"], "quarantine");
        assert_eq!(s["actions"]["newsletter"], "tag");
        assert_eq!(s["newsletter_tag"], "[PUB] ");
        assert_eq!(s["report"]["frequency"], "daily");
        assert_eq!(s["report"]["at"], "09:00");
        assert_eq!(quiet["settings"]["report"]["frequency"], "never");
        assert_eq!(quiet["settings"]["thresholds"], s["thresholds"]);

        // Built-ins are read-only, even for the platform admin.
        let id = standard["id"].as_str().unwrap();
        let path = format!("/api/v1/policies/{id}");
        admin
            .patch(&path, json!({ "name": "mine" }))
            .await
            .expect(403);
        admin.delete(&path).await.expect(403);
        tenant_admin.delete(&path).await.expect(403);

        // The new tenant is on the standard policy, so reports work with no setup.
        let assigned = tenant_admin
            .get(&format!("/api/v1/tenants/{}/policy", fx.tenant))
            .await
            .expect(200);
        assert_eq!(assigned.body["policy_id"], id);
        assert_eq!(assigned.body["policy_name"], STANDARD);
        let effective = tenant_admin
            .get(&format!("/api/v1/users/{}/effective-policy", fx.user))
            .await
            .expect(200);
        assert_eq!(effective.body["policy_name"], STANDARD);
        assert_eq!(effective.body["settings"]["report"]["frequency"], "daily");
        assert_eq!(effective.body["sources"]["report"], "tenant");

        // GraphQL shows the same.
        let doc = tenant_admin
            .graphql(
                "query($t: String!) { policies { edges { node { name builtin editable settings { newsletterTag report { frequency at timezone } } } } }
                   tenantPolicy(tenantId: $t) { policyName } }",
                json!({ "t": fx.tenant }),
            )
            .await;
        assert_eq!(doc["errors"], Value::Null, "{doc}");
        let names: Vec<&str> = doc["data"]["policies"]["edges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["node"]["name"].as_str().unwrap())
            .collect();
        assert!(
            names.contains(&STANDARD) && names.contains(&WITHOUT_REPORT),
            "{names:?}"
        );
        assert_eq!(doc["data"]["tenantPolicy"]["policyName"], STANDARD);
        assert_eq!(
            doc["data"]["policies"]["edges"][0]["node"]["settings"]["report"]["frequency"],
            "DAILY"
        );

        // Pagination walks the whole list.
        let first = admin.get("/api/v1/policies?limit=1").await.expect(200);
        assert_eq!(first.body["items"].as_array().unwrap().len(), 1);
        let cursor = first.body["next_cursor"].as_str().unwrap();
        let second = admin
            .get(&format!("/api/v1/policies?limit=1&after={cursor}"))
            .await
            .expect(200);
        assert_ne!(second.body["items"][0]["id"], first.body["items"][0]["id"]);
    }
}

#[tokio::test]
async fn create_assign_override_and_explain_the_effective_policy() {
    for backend in backends() {
        let server = Server::start(backend).await;
        let admin = server.client(&server.admin_key("root@example.com"));
        let fx = Fixture::create(&admin, "Acme").await;
        let tenant_admin =
            server.client(&api_key(&admin, json!({ "name": "t", "tenant_id": fx.tenant })).await);
        let marie = admin
            .post(
                "/api/v1/users",
                json!({ "domain_id": fx.domain, "address": format!("marie@{}", fx.domain_name), "display_name": "Marie" }),
            )
            .await
            .expect(201)
            .id();

        // Create (owner defaults to the caller's tenant) and update.
        let created = tenant_admin
            .post(
                "/api/v1/policies",
                json!({ "name": "Strict", "settings": standard_settings() }),
            )
            .await
            .expect(201);
        let policy = created.id();
        assert_eq!(created.body["owner"], "tenant");
        assert_eq!(created.body["tenant_id"], fx.tenant.as_str());
        assert_eq!(created.body["editable"], true);
        assert_eq!(created.body["settings"]["report"]["second_at"], "17:30");
        assert_eq!(created.body["settings"]["backup_webmail"]["enabled"], false);
        assert_eq!(
            created.body["settings"]["lists"]["block"][1],
            "198.51.100.0/24"
        );
        let updated = tenant_admin
            .patch(
                &format!("/api/v1/policies/{policy}"),
                json!({ "name": "Strict v2", "description": "for the board" }),
            )
            .await
            .expect(200);
        assert_eq!(updated.body["name"], "Strict v2");
        assert_eq!(updated.body["settings"]["quarantine_expiry_days"], 14);

        // Assign it to the tenant.
        let assigned = tenant_admin
            .put(
                &format!("/api/v1/tenants/{}/policy", fx.tenant),
                json!({ "policy_id": policy }),
            )
            .await
            .expect(200);
        assert_eq!(assigned.body["policy_name"], "Strict v2");

        // Domain and user overrides, field by field.
        let domain_overrides = tenant_admin
            .put(
                &format!("/api/v1/domains/{}/policy-overrides", fx.domain),
                json!({
                    "newsletter_tag": "[NEWS] ",
                    "quarantine_expiry_days": 7,
                    "lists": { "allow": ["partner.example"] }
                }),
            )
            .await
            .expect(200);
        assert_eq!(
            domain_overrides.body["overrides"]["quarantine_expiry_days"],
            7
        );
        assert_eq!(
            domain_overrides.body["overrides"]["thresholds"],
            Value::Null
        );
        tenant_admin
            .put(
                &format!("/api/v1/users/{}/policy-overrides", fx.user),
                json!({
                    "newsletter_tag": "",
                    "report": { "frequency": "weekly", "weekday": "monday", "at": "07:00", "timezone": "Europe/Paris" },
                    "backup_webmail": { "enabled": true, "retention_days": 60 },
                    "lists": { "block": ["boss@partner.example"] }
                }),
            )
            .await
            .expect(200);
        let got = tenant_admin
            .get(&format!("/api/v1/users/{}/policy-overrides", fx.user))
            .await
            .expect(200);
        assert_eq!(got.body["overrides"]["report"]["weekday"], "monday");

        let effective = tenant_admin
            .get(&format!("/api/v1/users/{}/effective-policy", fx.user))
            .await
            .expect(200)
            .body;
        assert_eq!(effective["policy_id"], policy.as_str());
        assert_eq!(effective["policy_name"], "Strict v2");
        assert_eq!(effective["user_id"], fx.user.as_str());
        let (settings, sources) = (&effective["settings"], &effective["sources"]);
        assert_eq!(settings["thresholds"]["quarantine"], 6.0);
        assert_eq!(sources["thresholds"], "tenant");
        assert_eq!(settings["actions"]["virus"], "reject");
        assert_eq!(sources["actions"], "tenant");
        assert_eq!(settings["quarantine_expiry_days"], 7);
        assert_eq!(sources["quarantine_expiry_days"], "domain");
        assert_eq!(settings["newsletter_tag"], "");
        assert_eq!(sources["newsletter_tag"], "user");
        assert_eq!(settings["report"]["frequency"], "weekly");
        assert_eq!(settings["report"]["timezone"], "Europe/Paris");
        assert_eq!(sources["report"], "user");
        assert_eq!(settings["backup_webmail"]["retention_days"], 60);
        assert_eq!(sources["backup_webmail"], "user");
        assert_eq!(
            effective["allow"],
            json!([{ "entry": "partner.example", "level": "domain" }])
        );
        let block = effective["block"].as_array().unwrap();
        assert_eq!(block.len(), 3);
        assert!(block.contains(&json!({ "entry": "boss@partner.example", "level": "user" })));
        assert!(block.contains(&json!({ "entry": "spammer.example", "level": "tenant" })));

        // Another user of the domain inherits the domain's values only.
        let other = tenant_admin
            .get(&format!("/api/v1/users/{marie}/effective-policy"))
            .await
            .expect(200)
            .body;
        assert_eq!(other["settings"]["newsletter_tag"], "[NEWS] ");
        assert_eq!(other["sources"]["newsletter_tag"], "domain");
        assert_eq!(other["sources"]["report"], "tenant");
        let domain = tenant_admin
            .get(&format!("/api/v1/domains/{}/effective-policy", fx.domain))
            .await
            .expect(200)
            .body;
        assert_eq!(domain["user_id"], Value::Null);
        assert_eq!(domain["sources"]["quarantine_expiry_days"], "domain");

        // GraphQL explains the same, and its mutations change it.
        let doc = tenant_admin
            .graphql(
                "mutation($u: String!) { setUserPolicyOverrides(userId: $u, overrides: { spamTag: \"[S] \" }) { overrides { spamTag newsletterTag } } }",
                json!({ "u": fx.user }),
            )
            .await;
        assert_eq!(doc["errors"], Value::Null, "{doc}");
        assert_eq!(
            doc["data"]["setUserPolicyOverrides"]["overrides"]["newsletterTag"],
            Value::Null
        );
        let doc = tenant_admin
            .graphql(
                "query($u: String!) { effectivePolicy(userId: $u) { policyName settings { spamTag newsletterTag quarantineExpiryDays }
                   sources { spamTag newsletterTag quarantineExpiryDays thresholds } } }",
                json!({ "u": fx.user }),
            )
            .await;
        assert_eq!(doc["errors"], Value::Null, "{doc}");
        let e = &doc["data"]["effectivePolicy"];
        assert_eq!(e["settings"]["spamTag"], "[S] ");
        assert_eq!(e["sources"]["spamTag"], "USER");
        assert_eq!(e["settings"]["newsletterTag"], "[NEWS] ");
        assert_eq!(e["sources"]["newsletterTag"], "DOMAIN");
        assert_eq!(e["sources"]["quarantineExpiryDays"], "DOMAIN");
        assert_eq!(e["sources"]["thresholds"], "TENANT");

        // Clearing overrides falls back to the more general level.
        tenant_admin
            .delete(&format!("/api/v1/domains/{}/policy-overrides", fx.domain))
            .await
            .expect(204);
        let doc = tenant_admin
            .graphql(
                "mutation($u: String!) { clearUserPolicyOverrides(userId: $u) }",
                json!({ "u": fx.user }),
            )
            .await;
        assert_eq!(doc["errors"], Value::Null, "{doc}");
        let effective = tenant_admin
            .get(&format!("/api/v1/users/{}/effective-policy", fx.user))
            .await
            .expect(200)
            .body;
        assert_eq!(effective["settings"]["newsletter_tag"], "[PUB] ");
        assert_eq!(effective["sources"]["newsletter_tag"], "tenant");
        assert_eq!(effective["settings"]["quarantine_expiry_days"], 14);
        let cleared = tenant_admin
            .get(&format!("/api/v1/users/{}/policy-overrides", fx.user))
            .await
            .expect(200);
        assert_eq!(cleared.body["updated_at"], Value::Null);

        // An end user reads their own effective policy only.
        let jean = end_user(&server, &admin, &fx).await;
        jean.get(&format!("/api/v1/users/{}/effective-policy", fx.user))
            .await
            .expect(200);
        jean.get(&format!("/api/v1/users/{marie}/effective-policy"))
            .await
            .expect(404);
        jean.get(&format!("/api/v1/users/{}/policy-overrides", fx.user))
            .await
            .expect(403);
        jean.put(
            &format!("/api/v1/users/{}/policy-overrides", fx.user),
            json!({ "spam_tag": "" }),
        )
        .await
        .expect(403);
        let list = jean.get("/api/v1/policies").await.expect(200);
        assert_eq!(list.body["items"], json!([]));
        jean.post("/api/v1/policies", json!({ "name": "mine" }))
            .await
            .expect(403);

        // Deleting is refused while assigned, then allowed.
        let refused = tenant_admin
            .delete(&format!("/api/v1/policies/{policy}"))
            .await
            .expect(409);
        assert_eq!(refused.body["code"], "CONFLICT");
        let doc = tenant_admin
            .graphql(
                "mutation($id: String!) { deletePolicy(id: $id) }",
                json!({ "id": policy }),
            )
            .await;
        assert_eq!(doc["errors"][0]["extensions"]["code"], "CONFLICT", "{doc}");
        let quiet = by_name(
            &tenant_admin.get("/api/v1/policies").await.expect(200).body["items"],
            WITHOUT_REPORT,
        )["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let doc = tenant_admin
            .graphql(
                "mutation($t: String!, $p: String!) { assignTenantPolicy(tenantId: $t, policyId: $p) { policyName } }",
                json!({ "t": fx.tenant, "p": quiet }),
            )
            .await;
        assert_eq!(doc["errors"], Value::Null, "{doc}");
        assert_eq!(
            doc["data"]["assignTenantPolicy"]["policyName"],
            WITHOUT_REPORT
        );
        tenant_admin
            .delete(&format!("/api/v1/policies/{policy}"))
            .await
            .expect(204);
        tenant_admin
            .get(&format!("/api/v1/policies/{policy}"))
            .await
            .expect(404);
        let effective = jean
            .get(&format!("/api/v1/users/{}/effective-policy", fx.user))
            .await
            .expect(200);
        assert_eq!(effective.body["settings"]["report"]["frequency"], "never");
    }
}

#[tokio::test]
async fn reseller_policies_are_shared_with_its_tenants_read_only() {
    for backend in backends() {
        let server = Server::start(backend).await;
        let admin = server.client(&server.admin_key("root@example.com"));
        let fx = Fixture::create(&admin, "Shared").await;
        let reseller = server
            .client(&api_key(&admin, json!({ "name": "r", "reseller_id": fx.reseller })).await);
        let tenant_admin =
            server.client(&api_key(&admin, json!({ "name": "t", "tenant_id": fx.tenant })).await);

        let created = reseller
            .post("/api/v1/policies", json!({ "name": "Reseller default" }))
            .await
            .expect(201);
        let policy = created.id();
        assert_eq!(created.body["owner"], "reseller");
        // Without settings, a new policy starts from the standard one.
        assert_eq!(created.body["settings"]["report"]["at"], "09:00");

        let seen = tenant_admin
            .get(&format!("/api/v1/policies/{policy}"))
            .await
            .expect(200);
        assert_eq!(seen.body["editable"], false);
        tenant_admin
            .patch(
                &format!("/api/v1/policies/{policy}"),
                json!({ "name": "mine" }),
            )
            .await
            .expect(403);
        tenant_admin
            .delete(&format!("/api/v1/policies/{policy}"))
            .await
            .expect(403);
        // The tenant may use it, and the reseller may edit the tenant's own policies.
        tenant_admin
            .put(
                &format!("/api/v1/tenants/{}/policy", fx.tenant),
                json!({ "policy_id": policy }),
            )
            .await
            .expect(200);
        let own = tenant_admin
            .post("/api/v1/policies", json!({ "name": "Own" }))
            .await
            .expect(201)
            .id();
        let edited = reseller
            .patch(
                &format!("/api/v1/policies/{own}"),
                json!({ "name": "Own (by reseller)" }),
            )
            .await
            .expect(200);
        assert_eq!(edited.body["editable"], true);
        let listed = reseller
            .get(&format!("/api/v1/policies?tenant_id={}", fx.tenant))
            .await
            .expect(200);
        assert_eq!(listed.body["items"].as_array().unwrap().len(), 1);
        // A tenant cannot create a policy for its reseller.
        tenant_admin
            .post(
                "/api/v1/policies",
                json!({ "name": "x", "reseller_id": fx.reseller }),
            )
            .await
            .expect(404);

        // A tenant's own policies, assignment and overrides go with it; the reseller's
        // policy can then be deleted.
        tenant_admin
            .put(
                &format!("/api/v1/tenants/{}/policy", fx.tenant),
                json!({ "policy_id": own }),
            )
            .await
            .expect(200);
        tenant_admin
            .put(
                &format!("/api/v1/domains/{}/policy-overrides", fx.domain),
                json!({ "spam_tag": "" }),
            )
            .await
            .expect(200);
        admin
            .delete(&format!("/api/v1/domains/{}", fx.domain))
            .await
            .expect(204);
        admin
            .delete(&format!("/api/v1/tenants/{}", fx.tenant))
            .await
            .expect(204);
        admin
            .get(&format!("/api/v1/policies/{own}"))
            .await
            .expect(404);
        reseller
            .delete(&format!("/api/v1/policies/{policy}"))
            .await
            .expect(204);
    }
}

#[tokio::test]
async fn invalid_policies_and_overrides_get_field_errors() {
    for backend in backends() {
        let server = Server::start(backend).await;
        let admin = server.client(&server.admin_key("root@example.com"));
        let fx = Fixture::create(&admin, "Invalid").await;

        let mut settings = standard_settings();
        settings["thresholds"] = json!({ "tag": 7.0, "quarantine": 5.0 });
        settings["report"] =
            json!({ "frequency": "monthly", "day_of_month": 31, "timezone": "Mars/Olympus" });
        settings["quarantine_expiry_days"] = json!(0);
        settings["backup_webmail"] = json!({ "enabled": true, "retention_days": 3 });
        settings["lists"] = json!({ "allow": ["ok.example", "not an entry!"], "block": [] });
        settings["newsletter_tag"] = json!("[PUB]\r\n");
        let res = admin
            .post(
                "/api/v1/policies",
                json!({ "name": " ", "tenant_id": fx.tenant, "settings": settings }),
            )
            .await
            .expect(422);
        assert!(res.content_type.starts_with("application/problem+json"));
        assert_eq!(res.body["code"], "VALIDATION_FAILED");
        let mut fields: Vec<&str> = res.body["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["field"].as_str().unwrap())
            .collect();
        fields.sort();
        assert_eq!(
            fields,
            [
                "name",
                "settings.backup_webmail.retention_days",
                "settings.lists.allow[1]",
                "settings.newsletter_tag",
                "settings.quarantine_expiry_days",
                "settings.report.at",
                "settings.report.day_of_month",
                "settings.report.timezone",
                "settings.thresholds",
            ],
            "{}",
            res.text
        );

        let res = admin
            .put(
                &format!("/api/v1/users/{}/policy-overrides", fx.user),
                json!({ "backup_webmail": { "enabled": true, "retention_days": 6 }, "report": { "frequency": "weekly", "at": "25:00", "timezone": "UTC" } }),
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
            [
                "report.at",
                "report.weekday",
                "backup_webmail.retention_days"
            ],
            "{}",
            res.text
        );
        // Misspelt fields are refused rather than silently ignored.
        admin
            .put(
                &format!("/api/v1/domains/{}/policy-overrides", fx.domain),
                json!({ "quarantine_expiry": 3 }),
            )
            .await
            .expect(422);
        // Nothing was stored.
        let effective = admin
            .get(&format!("/api/v1/users/{}/effective-policy", fx.user))
            .await
            .expect(200);
        assert_eq!(effective.body["sources"]["backup_webmail"], "tenant");

        let doc = admin
            .graphql(
                "mutation($t: String!) { createPolicy(input: { name: \"x\", tenantId: $t, settings: {
                   thresholds: { tag: 1, quarantine: 2 },
                   actions: { clean: DELIVER, newsletter: TAG, spam: QUARANTINE, phishing: QUARANTINE, virus: QUARANTINE },
                   newsletterTag: \"[PUB] \", spamTag: \"\",
                   report: { frequency: DAILY, at: \"9h\", timezone: \"Europe/Zurich\" },
                   quarantineExpiryDays: 30, backupWebmail: { enabled: false }, lists: { allow: [], block: [] } } }) { id } }",
                json!({ "t": fx.tenant }),
            )
            .await;
        assert_eq!(doc["data"], Value::Null, "{doc}");
        let error = &doc["errors"][0];
        assert_eq!(error["extensions"]["code"], "VALIDATION_FAILED", "{doc}");
        assert_eq!(
            error["extensions"]["fields"][0]["field"],
            "settings.report.at"
        );
    }
}

#[tokio::test]
async fn another_tenant_or_reseller_gets_nothing_on_any_policy_verb() {
    for backend in backends() {
        let server = Server::start(backend).await;
        let admin = server.client(&server.admin_key("root@example.com"));
        let v = Fixture::create(&admin, "Victim").await;
        let victim_reseller = server
            .client(&api_key(&admin, json!({ "name": "vr", "reseller_id": v.reseller })).await);
        let victim_tenant =
            server.client(&api_key(&admin, json!({ "name": "vt", "tenant_id": v.tenant })).await);
        let reseller_policy = victim_reseller
            .post(
                "/api/v1/policies",
                json!({ "name": "Victim reseller policy" }),
            )
            .await
            .expect(201)
            .id();
        let tenant_policy = victim_tenant
            .post(
                "/api/v1/policies",
                json!({ "name": "Victim tenant policy" }),
            )
            .await
            .expect(201)
            .id();
        victim_tenant
            .put(
                &format!("/api/v1/tenants/{}/policy", v.tenant),
                json!({ "policy_id": tenant_policy }),
            )
            .await
            .expect(200);
        victim_tenant
            .put(
                &format!("/api/v1/users/{}/policy-overrides", v.user),
                json!({ "spam_tag": "[V] " }),
            )
            .await
            .expect(200);

        let o = Fixture::create(&admin, "Other").await;
        let actors = [
            (
                "reseller admin",
                server.client(
                    &api_key(&admin, json!({ "name": "r", "reseller_id": o.reseller })).await,
                ),
            ),
            (
                "tenant admin",
                server
                    .client(&api_key(&admin, json!({ "name": "t", "tenant_id": o.tenant })).await),
            ),
            ("end user", end_user(&server, &admin, &o).await),
        ];
        for (actor, client) in &actors {
            let who = format!("{backend:?} {actor}");
            for policy in [&reseller_policy, &tenant_policy] {
                let path = format!("/api/v1/policies/{policy}");
                let got = client.get(&path).await;
                assert_eq!(got.status, 404, "{who} GET {path}: {}", got.text);
                assert_eq!(got.body["code"], "NOT_FOUND");
                let res = client.patch(&path, json!({ "name": "hijacked" })).await;
                assert_eq!(res.status, 404, "{who} PATCH {path}: {}", res.text);
                let res = client.delete(&path).await;
                assert_eq!(res.status, 404, "{who} DELETE {path}: {}", res.text);
                let list = client.get("/api/v1/policies?limit=500").await.expect(200);
                assert!(!list.text.contains(policy.as_str()), "{who} lists {policy}");
            }
            let rest: [(&str, String, Option<Value>); 13] = [
                ("GET", format!("/api/v1/tenants/{}/policy", v.tenant), None),
                (
                    "PUT",
                    format!("/api/v1/tenants/{}/policy", v.tenant),
                    Some(json!({ "policy_id": tenant_policy })),
                ),
                (
                    "GET",
                    format!("/api/v1/domains/{}/policy-overrides", v.domain),
                    None,
                ),
                (
                    "PUT",
                    format!("/api/v1/domains/{}/policy-overrides", v.domain),
                    Some(json!({ "spam_tag": "x" })),
                ),
                (
                    "DELETE",
                    format!("/api/v1/domains/{}/policy-overrides", v.domain),
                    None,
                ),
                (
                    "GET",
                    format!("/api/v1/users/{}/policy-overrides", v.user),
                    None,
                ),
                (
                    "PUT",
                    format!("/api/v1/users/{}/policy-overrides", v.user),
                    Some(json!({ "spam_tag": "x" })),
                ),
                (
                    "DELETE",
                    format!("/api/v1/users/{}/policy-overrides", v.user),
                    None,
                ),
                (
                    "GET",
                    format!("/api/v1/users/{}/effective-policy", v.user),
                    None,
                ),
                (
                    "GET",
                    format!("/api/v1/domains/{}/effective-policy", v.domain),
                    None,
                ),
                (
                    "POST",
                    "/api/v1/policies".to_owned(),
                    Some(json!({ "name": "x", "tenant_id": v.tenant })),
                ),
                (
                    "POST",
                    "/api/v1/policies".to_owned(),
                    Some(json!({ "name": "x", "reseller_id": v.reseller })),
                ),
                // Their own tenant may not use the victim's policy either.
                (
                    "PUT",
                    format!("/api/v1/tenants/{}/policy", o.tenant),
                    Some(json!({ "policy_id": tenant_policy })),
                ),
            ];
            for (verb, path, body) in rest {
                let res = match verb {
                    "GET" => client.get(&path).await,
                    "PUT" => client.put(&path, body.unwrap()).await,
                    "POST" => client.post(&path, body.unwrap()).await,
                    _ => client.delete(&path).await,
                };
                let own_tenant_as_user = *actor == "end user" && path.contains(&o.tenant);
                let expected = if own_tenant_as_user { 403 } else { 404 };
                assert_eq!(res.status, expected, "{who} {verb} {path}: {}", res.text);
            }

            // GraphQL: null for reads, NOT_FOUND for writes.
            let doc = client
                .graphql(
                    "query($p: String!, $q: String!, $t: String!, $d: String!, $u: String!) {
                       policy(id: $p) { id } other: policy(id: $q) { id } tenantPolicy(tenantId: $t) { policyId }
                       domainPolicyOverrides(domainId: $d) { domainId } userPolicyOverrides(userId: $u) { userId }
                       effectivePolicy(userId: $u) { policyId } domainEffectivePolicy(domainId: $d) { policyId } }",
                    json!({ "p": tenant_policy, "q": reseller_policy, "t": v.tenant, "d": v.domain, "u": v.user }),
                )
                .await;
            assert_eq!(doc["errors"], Value::Null, "{who}: {doc}");
            for field in [
                "policy",
                "other",
                "tenantPolicy",
                "domainPolicyOverrides",
                "userPolicyOverrides",
                "effectivePolicy",
                "domainEffectivePolicy",
            ] {
                assert_eq!(doc["data"][field], Value::Null, "{who} GraphQL {field}");
            }
            let doc = client
                .graphql(
                    "{ policies(first: 500) { edges { node { id } } } }",
                    json!({}),
                )
                .await;
            assert!(!doc.to_string().contains(&tenant_policy), "{who}: {doc}");
            assert!(!doc.to_string().contains(&reseller_policy), "{who}: {doc}");
            for (mutation, vars) in [
                (
                    "mutation($id: String!) { updatePolicy(id: $id, input: { name: \"hijacked\" }) { id } }",
                    json!({ "id": tenant_policy }),
                ),
                (
                    "mutation($id: String!) { deletePolicy(id: $id) }",
                    json!({ "id": reseller_policy }),
                ),
                (
                    "mutation($t: String!, $p: String!) { assignTenantPolicy(tenantId: $t, policyId: $p) { policyId } }",
                    json!({ "t": v.tenant, "p": tenant_policy }),
                ),
                (
                    "mutation($id: String!) { setDomainPolicyOverrides(domainId: $id, overrides: { spamTag: \"x\" }) { domainId } }",
                    json!({ "id": v.domain }),
                ),
                (
                    "mutation($id: String!) { clearDomainPolicyOverrides(domainId: $id) }",
                    json!({ "id": v.domain }),
                ),
                (
                    "mutation($id: String!) { setUserPolicyOverrides(userId: $id, overrides: { spamTag: \"x\" }) { userId } }",
                    json!({ "id": v.user }),
                ),
                (
                    "mutation($id: String!) { clearUserPolicyOverrides(userId: $id) }",
                    json!({ "id": v.user }),
                ),
            ] {
                let doc = client.graphql(mutation, vars).await;
                assert_eq!(
                    doc["errors"][0]["extensions"]["code"], "NOT_FOUND",
                    "{who} {mutation}: {doc}"
                );
            }
        }

        // The victim's policies, assignment and overrides are untouched.
        let effective = victim_tenant
            .get(&format!("/api/v1/users/{}/effective-policy", v.user))
            .await
            .expect(200);
        assert_eq!(effective.body["policy_name"], "Victim tenant policy");
        assert_eq!(effective.body["settings"]["spam_tag"], "[V] ");
        let reseller_owned = victim_reseller
            .get(&format!("/api/v1/policies/{reseller_policy}"))
            .await
            .expect(200);
        assert_eq!(reseller_owned.body["name"], "Victim reseller policy");
    }
}
