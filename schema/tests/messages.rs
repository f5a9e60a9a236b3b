//! The quarantine store on a migrated SQLite database: keyset pagination newest first, the
//! scope of a user, and purges that drop a shared blob only with its last copy.

use std::time::Duration;

use chrono::Duration as TimeDelta;
use cleanmail_schema::models::{Domain, Job, Message, MessageLogEntry, Reseller, Tenant, User};
use cleanmail_schema::store::mail::{IngestOutcome, purge_expired_messages, record_ingest};
use cleanmail_schema::store::messages::{self as store, Folder, MessageFilter};
use cleanmail_schema::store::{domains, jobs, resellers, tenants, users};
use cleanmail_schema::{
    Db, DomainId, JobId, MessageId, MessageLogId, PageRequest, ResellerId, Scope, TenantId, UserId,
    now,
};

struct World {
    db: Db,
    _dir: tempfile::TempDir,
    reseller: ResellerId,
    tenant: TenantId,
    domain: DomainId,
    jean: UserId,
    anna: UserId,
}

async fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::connect(&format!("sqlite://{}", dir.path().join("t.db").display()))
        .await
        .unwrap();
    db.migrate().await.unwrap();
    let at = now();
    let reseller = resellers::create(
        &db,
        Reseller {
            id: ResellerId::new(),
            name: "R".into(),
            portal_url: None,
            created_at: at,
            updated_at: at,
        },
    )
    .await
    .unwrap();
    let tenant = tenants::create(
        &db,
        Tenant {
            id: TenantId::new(),
            reseller_id: reseller.id.clone(),
            name: "T".into(),
            region: "ch".into(),
            timezone: "Europe/Zurich".into(),
            created_at: at,
            updated_at: at,
        },
    )
    .await
    .unwrap();
    let domain = domains::create(
        &db,
        Domain {
            id: DomainId::new(),
            tenant_id: tenant.id.clone(),
            name: "acme.ch".into(),
            state: "live".into(),
            destination: "mx.acme.ch:25".into(),
            created_at: at,
            updated_at: at,
        },
    )
    .await
    .unwrap();
    let mut ids = Vec::new();
    for name in ["jean", "anna"] {
        let user = users::create(
            &db,
            User {
                id: UserId::new(),
                tenant_id: tenant.id.clone(),
                domain_id: domain.id.clone(),
                address: format!("{name}@acme.ch"),
                display_name: name.into(),
                role: "user".into(),
                language: "fr".into(),
                status: "active".into(),
                password_hash: None,
                created_at: at,
                updated_at: at,
            },
        )
        .await
        .unwrap();
        ids.push(user.id);
    }
    World {
        db,
        _dir: dir,
        reseller: reseller.id,
        tenant: tenant.id,
        domain: domain.id,
        anna: ids.pop().unwrap(),
        jean: ids.pop().unwrap(),
    }
}

/// Stores one message with a copy per `(user, blob, received, expires)` through the ingest
/// writer (a claimed job recorded with its effects).
async fn store_copies(
    w: &World,
    copies: &[(&UserId, &str, chrono::NaiveDateTime, chrono::NaiveDateTime)],
) -> Vec<MessageId> {
    let log_id = MessageLogId::new();
    let job_id = JobId(format!("test:{log_id}"));
    jobs::enqueue(
        &w.db,
        &[Job::new(
            job_id.clone(),
            "test",
            Some(w.tenant.clone()),
            "{}".into(),
            None,
            now(),
        )],
    )
    .await
    .unwrap();
    let claimed = jobs::claim(&w.db, &["test"], "w", 10, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    let received = copies[0].2;
    let log_entry = MessageLogEntry {
        id: log_id.clone(),
        tenant_id: w.tenant.clone(),
        mail_from: "s@spam.example".into(),
        rcpt_to: "[]".into(),
        client_ip: "192.0.2.1".into(),
        helo: "h".into(),
        tls: false,
        from_header: "s@spam.example".into(),
        subject: "Offer".into(),
        message_id_header: "<x@y>".into(),
        size_bytes: 10,
        score: 9.0,
        category: "spam".into(),
        verdict: "{}".into(),
        actions: "[]".into(),
        state: "quarantined".into(),
        delivery_attempts: 0,
        last_response: None,
        blob_key: Some(copies[0].1.into()),
        received_at: received,
        updated_at: received,
    };
    let messages: Vec<Message> = copies
        .iter()
        .map(|(user, blob, received_at, expires_at)| Message {
            id: MessageId::new(),
            tenant_id: w.tenant.clone(),
            domain_id: w.domain.clone(),
            user_id: (*user).clone(),
            log_id: log_id.clone(),
            recipient: if *user == &w.jean {
                "jean@acme.ch"
            } else {
                "anna@acme.ch"
            }
            .into(),
            mail_from: "s@spam.example".into(),
            rcpt_to: "[]".into(),
            from_header: "s@spam.example".into(),
            subject: "Offer".into(),
            message_id_header: "<x@y>".into(),
            size_bytes: 10,
            score: 9.0,
            category: "spam".into(),
            action: "quarantine".into(),
            verdict: "{}".into(),
            state: Message::QUARANTINED.into(),
            blob_key: (*blob).into(),
            last_response: None,
            received_at: *received_at,
            expires_at: Some(*expires_at),
            updated_at: *received_at,
        })
        .collect();
    let ids = messages.iter().map(|m| m.id.clone()).collect();
    let recorded = record_ingest(
        &w.db,
        "w",
        &[IngestOutcome {
            job_id,
            log_entry,
            messages,
            counters: Vec::new(),
            jobs: Vec::new(),
        }],
    )
    .await
    .unwrap();
    assert_eq!(recorded, 1);
    ids
}

#[tokio::test]
async fn lists_page_newest_first_within_the_callers_scope() {
    let w = world().await;
    let base = now() - TimeDelta::hours(1);
    let expires = base + TimeDelta::days(30);
    // Seven messages for jean, two of them at the same instant (the cursor must not skip
    // or repeat either), and one for anna.
    let mut jean_ids = Vec::new();
    for (i, at) in [0, 1, 2, 2, 3, 4, 5].iter().enumerate() {
        let key = format!("blob/{i}");
        jean_ids.extend(
            store_copies(
                &w,
                &[(&w.jean, &key, base + TimeDelta::minutes(*at), expires)],
            )
            .await,
        );
    }
    store_copies(&w, &[(&w.anna, "blob/anna", base, expires)]).await;

    let jean = Scope::User {
        reseller_id: w.reseller.clone(),
        tenant_id: w.tenant.clone(),
        user_id: w.jean.clone(),
    };
    let filter = MessageFilter {
        folder: Some(Folder::Quarantine),
        ..MessageFilter::default()
    };
    let mut seen = Vec::new();
    let mut page = PageRequest {
        after: None,
        limit: Some(3),
    };
    loop {
        let listed = store::list(&w.db, &jean, &filter, &page).await.unwrap();
        seen.extend(listed.items);
        match listed.next_cursor {
            Some(cursor) => page.after = Some(cursor),
            None => break,
        }
    }
    assert_eq!(seen.len(), 7, "every one of jean's, none of anna's");
    assert!(seen.iter().all(|m| m.user_id == w.jean));
    assert!(
        seen.windows(2)
            .all(|p| (p[0].received_at, &p[0].id) > (p[1].received_at, &p[1].id)),
        "newest first, strictly"
    );
    let mut ids: Vec<_> = seen.iter().map(|m| m.id.clone()).collect();
    ids.sort();
    jean_ids.sort();
    assert_eq!(ids, jean_ids);

    let tenant = Scope::Tenant {
        reseller_id: w.reseller.clone(),
        tenant_id: w.tenant.clone(),
    };
    let all = store::list(&w.db, &tenant, &filter, &PageRequest::default())
        .await
        .unwrap();
    assert_eq!(all.items.len(), 8);
    let reseller = Scope::Reseller {
        reseller_id: w.reseller.clone(),
    };
    let merged = store::list(&w.db, &reseller, &filter, &PageRequest::default())
        .await
        .unwrap();
    let ids = |items: &[Message]| items.iter().map(|m| m.id.clone()).collect::<Vec<_>>();
    assert_eq!(
        ids(&merged.items),
        ids(&all.items),
        "the reseller sees the same, in order"
    );
    let bad = store::list(
        &w.db,
        &tenant,
        &filter,
        &PageRequest {
            after: Some("not a cursor".into()),
            limit: None,
        },
    )
    .await;
    assert!(matches!(bad, Err(cleanmail_schema::StoreError::Invalid(_))));
    // Another user's copy is not found, for reading and for acting.
    let anna_copy = all.items.iter().find(|m| m.user_id == w.anna).unwrap();
    assert!(store::get(&w.db, &jean, &anna_copy.id).await.is_err());
    assert!(
        store::delete(&w.db, &jean, &anna_copy.id, Folder::Quarantine)
            .await
            .is_err()
    );
    assert!(
        store::release(&w.db, &jean, &anna_copy.id, None, "user:x")
            .await
            .is_err()
    );
}

#[tokio::test]
async fn expired_copies_are_purged_and_a_shared_blob_goes_with_its_last_copy() {
    let w = world().await;
    let at = now() - TimeDelta::days(40);
    let soon = at + TimeDelta::days(30);
    let later = at + TimeDelta::days(60);
    // One message to jean and anna sharing a blob (jean's copy expires first), one to jean
    // alone.
    let shared = store_copies(
        &w,
        &[
            (&w.jean, "blob/shared", at, soon),
            (&w.anna, "blob/shared", at, later),
        ],
    )
    .await;
    store_copies(&w, &[(&w.jean, "blob/solo", at, soon)]).await;

    let unused = purge_expired_messages(&w.db, now()).await.unwrap();
    assert_eq!(
        unused,
        vec!["blob/solo".to_owned()],
        "the shared blob is still anna's"
    );
    let tenant = Scope::Tenant {
        reseller_id: w.reseller.clone(),
        tenant_id: w.tenant.clone(),
    };
    let left = store::list(
        &w.db,
        &tenant,
        &MessageFilter::default(),
        &PageRequest::default(),
    )
    .await
    .unwrap();
    assert_eq!(left.items.len(), 1);
    assert_eq!(left.items[0].id, shared[1]);

    // Deleting the last copy frees the blob too.
    let freed = store::delete(&w.db, &tenant, &shared[1], Folder::Quarantine)
        .await
        .unwrap();
    assert_eq!(freed, vec!["blob/shared".to_owned()]);
    assert!(
        purge_expired_messages(&w.db, now() + TimeDelta::days(90))
            .await
            .unwrap()
            .is_empty()
    );
}
