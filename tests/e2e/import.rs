//! Bulk address import: dry run, all-or-nothing, idempotent, and the export round trip.

use std::time::Instant;

use serde_json::json;

use crate::common::{Fixture, Server, backends};

fn csv_for(domain: &str, users: usize) -> String {
    let mut csv = String::from("address,type,target,display_name\n");
    for i in 0..users {
        csv.push_str(&format!("user{i}@{domain},user,,User {i}\n"));
    }
    // One alias per two users, pointing at users created in the same file.
    for i in 0..users / 2 {
        csv.push_str(&format!("alias{i}@{domain},alias,user{i}@{domain},\n"));
    }
    csv
}

#[tokio::test]
async fn a_thousand_lines_import_once_and_round_trip_through_export() {
    for backend in backends() {
        let server = Server::start(backend).await;
        let admin = server.client(&server.admin_key("root@example.com"));
        let fx = Fixture::create(&admin, "Import").await;
        let csv = csv_for(&fx.domain_name, 667); // 667 users + 333 aliases = 1,000 lines
        let path = format!("/api/v1/imports?domain_id={}", fx.domain);

        // Dry run: reports, writes nothing.
        let dry = admin
            .post_text(&format!("{path}&dry_run=true"), "text/csv", csv.clone())
            .await
            .expect(200);
        assert_eq!(
            dry.body["summary"]["created"],
            1000,
            "{}",
            &dry.text[..300.min(dry.text.len())]
        );
        assert_eq!(dry.body["applied"], false);
        let unverified = admin
            .get("/api/v1/users?status=unverified")
            .await
            .expect(200);
        assert_eq!(unverified.body["items"].as_array().unwrap().len(), 0);

        // Real run.
        let started = Instant::now();
        let real = admin
            .post_text(&path, "text/csv", csv.clone())
            .await
            .expect(200);
        eprintln!(
            "{backend:?}: imported 1,000 lines in {:?}",
            started.elapsed()
        );
        assert_eq!(real.body["applied"], true);
        assert_eq!(real.body["summary"]["created"], 1000);

        // Imported addresses start unverified and are listed as such.
        let page = admin
            .get(&format!(
                "/api/v1/users?status=unverified&domain_id={}&limit=500",
                fx.domain
            ))
            .await
            .expect(200);
        assert_eq!(page.body["items"].as_array().unwrap().len(), 500);
        assert!(page.body["next_cursor"].is_string());

        // Idempotent: the same file again changes nothing.
        let again = admin
            .post_text(&path, "text/csv", csv.clone())
            .await
            .expect(200);
        assert_eq!(again.body["summary"]["unchanged"], 1000);
        assert_eq!(again.body["summary"]["created"], 0);

        // All-or-nothing: one bad line, nothing written, and each line says why.
        let bad = format!(
            "new1@{d},user,,New\nnot-an-address,user,,X\nalias9@{d},user,,Clash\nnew2@{d},alias,nobody@{d},\nnew3@elsewhere.ch,user,,X\n",
            d = fx.domain_name
        );
        let refused = admin.post_text(&path, "text/csv", bad).await.expect(422);
        assert_eq!(refused.body["applied"], false);
        assert_eq!(refused.body["summary"]["created"], 1);
        assert_eq!(refused.body["summary"]["rejected"], 4);
        let reasons: Vec<&str> = refused.body["lines"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|l| l["reason"].as_str())
            .collect();
        assert!(
            reasons.iter().any(|r| r.contains("is an alias")),
            "{reasons:?}"
        );
        assert!(
            reasons.iter().any(|r| r.contains("does not exist")),
            "{reasons:?}"
        );
        assert!(
            reasons
                .iter()
                .any(|r| r.contains("not part of this import")),
            "{reasons:?}"
        );
        let lookup = admin
            .get(&format!("/api/v1/users?q=new1%40{}", fx.domain_name))
            .await
            .expect(200);
        assert_eq!(
            lookup.body["items"].as_array().unwrap().len(),
            0,
            "nothing may be written"
        );

        // Export returns the same CSV (plus the fixture's own addresses); GraphQL agrees.
        let export = admin
            .get(&format!(
                "/api/v1/exports/addresses.csv?domain_id={}",
                fx.domain
            ))
            .await
            .expect(200);
        assert!(export.content_type.starts_with("text/csv"));
        let exported: std::collections::BTreeSet<&str> = export.text.lines().skip(1).collect();
        for line in csv.lines().skip(1) {
            assert!(exported.contains(line), "export lacks {line}");
        }
        assert_eq!(exported.len(), 1000 + 2);
        let doc = admin
            .graphql(
                "query($d: String) { exportAddresses(target: { domainId: $d }) }",
                json!({ "d": fx.domain }),
            )
            .await;
        assert_eq!(
            doc["data"]["exportAddresses"].as_str().unwrap(),
            export.text
        );

        // GraphQL import of the same file: all unchanged.
        let doc = admin
            .graphql(
                "mutation($d: String, $csv: String!) { importAddresses(target: { domainId: $d }, csv: $csv) { applied summary { unchanged rejected } } }",
                json!({ "d": fx.domain, "csv": csv }),
            )
            .await;
        assert_eq!(
            doc["data"]["importAddresses"]["summary"]["unchanged"], 1000,
            "{doc}"
        );

        // An admin marks an imported address as verified, and deletes an obsolete one.
        let first = page.body["items"][0]["id"].as_str().unwrap();
        let second = page.body["items"][1]["id"].as_str().unwrap();
        admin
            .patch(
                &format!("/api/v1/users/{first}"),
                json!({ "status": "active" }),
            )
            .await
            .expect(200);
        admin
            .delete(&format!("/api/v1/users/{second}"))
            .await
            .expect(204);
    }
}
