//! Processes that share nothing but the database and the blob store: an S3-compatible blob
//! store (`TEST_S3_ENDPOINT`, e.g. moto).

use std::time::Duration;

use cleanmail_worker::blobs::{BlobStore, S3Location};
use serde_json::json;

use crate::common::{Fixture, Server, backends};
use crate::mail::{message, send, sink, store_db};

/// A name no other test run uses.
fn unique(label: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{label}-{}-{nanos}", std::process::id())
}

/// Blobs in an S3 bucket: SMTP in, delivered downstream, the retained copy read through the
/// webmail API, the raw message in the bucket under the configured prefix.
#[tokio::test]
async fn mail_with_blobs_in_s3_is_delivered_and_its_copy_read_back() {
    let Ok(endpoint) = std::env::var("TEST_S3_ENDPOINT") else {
        eprintln!(
            "skipped: set TEST_S3_ENDPOINT=http://127.0.0.1:5000 (moto_server, bucket TEST_S3_BUCKET or cleanmail-test) to test the S3 blob store"
        );
        return;
    };
    let bucket = std::env::var("TEST_S3_BUCKET").unwrap_or_else(|_| "cleanmail-test".to_owned());
    for backend in backends() {
        let prefix = unique("e2e");
        let blob_url = format!("s3://{bucket}/{prefix}");
        let env = [
            ("CLEANMAIL_BLOB_URL", blob_url.as_str()),
            ("CLEANMAIL_BLOB_S3_ENDPOINT", endpoint.as_str()),
            ("CLEANMAIL_BLOB_S3_ALLOW_HTTP", "true"),
            ("CLEANMAIL_BLOB_S3_REGION", "us-east-1"),
            ("CLEANMAIL_BLOB_S3_ACCESS_KEY_ID", "testing"),
            ("CLEANMAIL_BLOB_S3_SECRET_ACCESS_KEY", "testing"),
        ];
        let sink = sink().await;
        let server = Server::start_with(backend, &env).await;
        let admin = server.client(&server.admin_key("root@platform.test"));
        let fx = Fixture::create(&admin, "Bucket").await;
        admin
            .patch(
                &format!("/api/v1/domains/{}", fx.domain),
                json!({ "destination": sink.addr().to_string(), "state": "live" }),
            )
            .await
            .expect(200);
        let jean = format!("jean@{}", fx.domain_name);
        let raw = message(
            "alice@sender.example",
            &jean,
            "Stored in S3",
            "s3-1@sender.example",
            "Kept in a bucket.",
        );
        let reply = send(server.smtp, "alice@sender.example", &[&jean], &raw).await;
        assert!(
            reply.is_ok(),
            "{backend:?}: {reply:?}; log:\n{}",
            server.log()
        );
        let arrived = sink.wait_for(1, Duration::from_secs(20)).await;
        assert_eq!(arrived.len(), 1, "{backend:?}: {}", server.log());
        assert!(arrived[0].text().contains("Kept in a bucket."));

        // The retained copy, rendered from the blob by the API.
        let mut detail = None;
        for _ in 0..100 {
            let list = admin
                .get("/api/v1/webmail/messages?subject=Stored")
                .await
                .expect(200);
            if let Some(id) = list.body["items"][0]["id"].as_str() {
                detail = Some(
                    admin
                        .get(&format!("/api/v1/webmail/messages/{id}"))
                        .await
                        .expect(200)
                        .body,
                );
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let detail = detail.expect("the retained copy is listed");
        assert!(
            detail["preview"]["text"]
                .as_str()
                .is_some_and(|t| t.contains("Kept in a bucket.")),
            "{detail}"
        );

        // The raw message is in the bucket under the prefix, and not on the local disk.
        let db = store_db(&server).await;
        let key =
            cleanmail_schema::store::messages::log(&db, &cleanmail_schema::Scope::Platform, 10)
                .await
                .unwrap()
                .into_iter()
                .find(|l| l.subject == "Stored in S3")
                .and_then(|l| l.blob_key)
                .expect("logged with its blob");
        let mut location = S3Location::parse(&blob_url).unwrap();
        location.endpoint = Some(endpoint.clone());
        location.region = Some("us-east-1".to_owned());
        location.access_key_id = Some("testing".to_owned());
        location.secret_access_key = Some("testing".to_owned());
        location.allow_http = true;
        let stored = BlobStore::s3(&location).unwrap().get(&key).await.unwrap();
        let stored = String::from_utf8(stored).unwrap();
        assert!(
            stored.starts_with("Received: ")
                && stored.contains("Message-ID: <s3-1@sender.example>"),
            "{backend:?}: {stored}"
        );
        assert!(!server.data_dir.path().join("blobs").join(&key).exists());
    }
}
