//! Processes that share nothing but the database, the blob store and the job notices: an
//! S3-compatible blob store (`TEST_S3_ENDPOINT`, e.g. moto) and job notices over Redis
//! (`TEST_REDIS_URL`) between an `--role smtp` and an `--role worker` process.

use std::time::{Duration, Instant};

use cleanmail_worker::blobs::{BlobStore, S3Location};
use serde_json::json;

use crate::common::{Fixture, Server, backends};
use crate::mail::{message, send, setup_with, sink, store_db};

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
        crate::common::skipped(
            "the S3 blob store: set TEST_S3_ENDPOINT=http://127.0.0.1:5000 (moto_server, bucket TEST_S3_BUCKET or cleanmail-test)",
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
        let (server, admin, fx) = setup_with(backend, "Bucket", sink.addr(), &env).await;
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

/// An `--role api,smtp` process and an `--role worker` process share the database and
/// Redis: the worker is woken over Redis as soon as the message is accepted, well before
/// its next sweep of the job table.
#[tokio::test]
async fn mail_accepted_by_one_process_is_delivered_by_another_woken_over_redis() {
    let Ok(redis) = std::env::var("TEST_REDIS_URL") else {
        crate::common::skipped("job notices over Redis: set TEST_REDIS_URL=redis://127.0.0.1:6379");
        return;
    };
    for backend in backends() {
        let namespace = unique("e2e");
        let queue = [
            ("CLEANMAIL_QUEUE_URL", redis.as_str()),
            ("CLEANMAIL_QUEUE_NAMESPACE", namespace.as_str()),
        ];
        let sink = sink().await;
        let server = Server::start_with(
            backend,
            &[queue[0], queue[1], ("CLEANMAIL_ROLE", "api,smtp")],
        )
        .await;
        let admin = server.client(&server.admin_key("root@platform.test"));
        let fx = Fixture::create(&admin, "Relay").await;
        admin
            .patch(
                &format!("/api/v1/domains/{}", fx.domain),
                json!({ "destination": sink.addr().to_string(), "state": "live" }),
            )
            .await
            .expect(200);
        let worker = server.start_worker(&queue);
        // Let the worker's first sweep pass: from now on only a notice wakes it early.
        tokio::time::sleep(Duration::from_millis(500)).await;

        let jean = format!("jean@{}", fx.domain_name);
        let mut took = Vec::new();
        for n in 0..3 {
            let raw = message(
                "alice@sender.example",
                &jean,
                &format!("Hand-over {n}"),
                &format!("redis-{n}@sender.example"),
                "From one process to the other.",
            );
            let started = Instant::now();
            let reply = send(server.smtp, "alice@sender.example", &[&jean], &raw).await;
            assert!(reply.is_ok(), "{backend:?}: {reply:?}");
            let arrived = sink.wait_for(n + 1, Duration::from_secs(20)).await;
            assert_eq!(
                arrived.len(),
                n + 1,
                "{backend:?}: worker log:\n{}",
                worker.log()
            );
            took.push(started.elapsed());
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        // A delivery the API enqueues (a redistribution from the backup webmail) wakes the
        // worker process the same way.
        let kept = admin
            .get("/api/v1/webmail/messages?subject=Hand-over%200")
            .await
            .expect(200)
            .body["items"][0]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let started = Instant::now();
        admin
            .post(
                &format!("/api/v1/webmail/messages/{kept}/redistribute"),
                json!({}),
            )
            .await
            .expect(202);
        let arrived = sink.wait_for(4, Duration::from_secs(20)).await;
        assert_eq!(
            arrived.len(),
            4,
            "{backend:?}: worker log:\n{}",
            worker.log()
        );
        took.push(started.elapsed());
        // The sweep runs every 5 s; each hand-over must beat it by far.
        assert!(
            took.iter().all(|t| *t < Duration::from_millis(2500)),
            "{backend:?}: hand-overs took {took:?}; worker log:\n{}",
            worker.log()
        );
        assert!(
            worker.log().contains("job notices over Redis"),
            "{}",
            worker.log()
        );
    }
}

/// Misconfigured blob stores and queues stop the process at start-up, naming the setting.
#[test]
fn bad_blob_url_or_queue_url_is_a_start_up_error_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    for (key, value, expected) in [
        (
            "CLEANMAIL_BLOB_URL",
            "gs://bucket/mail",
            "blob_url must be s3://",
        ),
        (
            "CLEANMAIL_QUEUE_URL",
            "amqp://user:pw@mq.example",
            "queue_url must be redis://",
        ),
        ("CLEANMAIL_QUEUE_NAMESPACE", "a b", "queue_namespace"),
    ] {
        let out = std::process::Command::new(crate::common::BIN)
            .arg("migrate")
            .env("CLEANMAIL_DATA_DIR", dir.path())
            .env_remove("DATABASE_URL")
            .env(key, value)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{key}={value} was accepted");
        assert!(stderr.contains(expected), "{key}: {stderr}");
        assert!(
            !stderr.contains("pw@"),
            "credentials in the error: {stderr}"
        );
    }
}
