//! The quarantine store on a migrated SQLite database: keyset pagination newest first, the
//! scope of a user, and purges that drop a shared blob only with its last copy.

use std::time::Duration;

use chrono::Duration as TimeDelta;
use cleanmail_schema::models::{Job, Message, MessageLogEntry};
use cleanmail_schema::store::jobs;
use cleanmail_schema::store::mail::{IngestOutcome, purge_expired_messages, record_ingest};
use cleanmail_schema::store::messages::{self as store, Folder, MessageFilter};
use cleanmail_schema::{
    Db, DomainId, JobId, MessageId, MessageLogId, PageRequest, ResellerId, Scope, TenantId, UserId,
    now,
};

mod support;

struct World {
    db: Db,
    _dir: tempfile::TempDir,
    reseller: ResellerId,
    tenant: TenantId,
    domain: DomainId,
    jean: UserId,
    anna: UserId,
    /// A second tenant of the same reseller, with one user.
    other_tenant: TenantId,
    other_domain: DomainId,
    otto: UserId,
}

impl World {
    /// The tenant, domain and address of one of the world's users.
    fn home(&self, user: &UserId) -> (&TenantId, &DomainId, &'static str) {
        if user == &self.otto {
            (&self.other_tenant, &self.other_domain, "otto@beta.ch")
        } else if user == &self.jean {
            (&self.tenant, &self.domain, "jean@acme.ch")
        } else {
            (&self.tenant, &self.domain, "anna@acme.ch")
        }
    }
}

async fn world() -> World {
    let (db, dir) = support::sqlite().await;
    let reseller = support::reseller(&db).await;
    let (tenant, domain) = support::tenant_with_domain(&db, &reseller, "acme.ch").await;
    let (other_tenant, other_domain) = support::tenant_with_domain(&db, &reseller, "beta.ch").await;
    World {
        jean: support::user(&db, &tenant, &domain, "jean@acme.ch").await,
        anna: support::user(&db, &tenant, &domain, "anna@acme.ch").await,
        otto: support::user(&db, &other_tenant, &other_domain, "otto@beta.ch").await,
        db,
        _dir: dir,
        reseller,
        tenant,
        domain,
        other_tenant,
        other_domain,
    }
}

/// Stores one message with a copy per `(user, blob, received, expires)` through the ingest
/// writer (a claimed job recorded with its effects).
async fn store_copies(
    w: &World,
    copies: &[(&UserId, &str, chrono::NaiveDateTime, chrono::NaiveDateTime)],
) -> Vec<MessageId> {
    let (tenant, domain, _) = w.home(copies[0].0);
    let log_id = MessageLogId::new();
    let job_id = JobId(format!("test:{log_id}"));
    jobs::enqueue(
        &w.db,
        &[Job::new(
            job_id.clone(),
            "test",
            Some(tenant.clone()),
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
        tenant_id: tenant.clone(),
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
            tenant_id: tenant.clone(),
            domain_id: domain.clone(),
            user_id: (*user).clone(),
            log_id: log_id.clone(),
            recipient: w.home(user).2.into(),
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
async fn a_resellers_lists_page_across_its_tenants() {
    let w = world().await;
    let base = now() - TimeDelta::hours(1);
    let expires = base + TimeDelta::days(30);
    // The two tenants' mail interleaves in time, with a tie in the second tenant.
    let arrivals = [
        (&w.jean, 0),
        (&w.otto, 1),
        (&w.jean, 2),
        (&w.otto, 3),
        (&w.jean, 4),
        (&w.otto, 5),
        (&w.otto, 5),
        (&w.jean, 6),
    ];
    for (i, (user, at)) in arrivals.iter().enumerate() {
        let key = format!("blob/{i}");
        store_copies(&w, &[(user, &key, base + TimeDelta::minutes(*at), expires)]).await;
    }
    let reseller = Scope::Reseller {
        reseller_id: w.reseller.clone(),
    };
    let filter = MessageFilter::default();
    let first = |limit| PageRequest {
        after: None,
        limit: Some(limit),
    };

    // The quarantine, three at a time.
    let mut seen: Vec<Message> = Vec::new();
    let mut page = first(3);
    loop {
        let listed = store::list(&w.db, &reseller, &filter, &page).await.unwrap();
        assert!(listed.items.len() <= 3);
        seen.extend(listed.items);
        match listed.next_cursor {
            Some(cursor) => page.after = Some(cursor),
            None => break,
        }
    }
    assert_eq!(seen.len(), arrivals.len(), "every copy once");
    assert!(
        seen.windows(2)
            .all(|p| (p[0].received_at, &p[0].id) > (p[1].received_at, &p[1].id)),
        "newest first, strictly"
    );
    let owners: Vec<&UserId> = seen.iter().map(|m| &m.user_id).collect();
    let mut expected: Vec<&UserId> = arrivals.iter().rev().map(|(u, _)| *u).collect();
    expected.dedup();
    let mut got = owners.clone();
    got.dedup();
    assert_eq!(got, expected, "both tenants' mail, interleaved by time");

    // The message log, the same way.
    let mut entries: Vec<MessageLogEntry> = Vec::new();
    let mut page = first(3);
    loop {
        let listed = store::log_list(&w.db, &reseller, &filter, &page)
            .await
            .unwrap();
        assert!(listed.items.len() <= 3);
        entries.extend(listed.items);
        match listed.next_cursor {
            Some(cursor) => page.after = Some(cursor),
            None => break,
        }
    }
    assert_eq!(entries.len(), arrivals.len());
    assert!(
        entries
            .windows(2)
            .all(|p| (p[0].received_at, &p[0].id.0) > (p[1].received_at, &p[1].id.0))
    );
    let log_ids: Vec<&MessageLogId> = seen.iter().map(|m| &m.log_id).collect();
    let entry_ids: Vec<&MessageLogId> = entries.iter().map(|e| &e.id).collect();
    let (mut a, mut b) = (log_ids.clone(), entry_ids.clone());
    a.sort();
    b.sort();
    assert_eq!(a, b, "one log entry per stored message");

    // A tenant sees only its own.
    let other = Scope::Tenant {
        reseller_id: w.reseller.clone(),
        tenant_id: w.other_tenant.clone(),
    };
    let theirs = store::log_list(&w.db, &other, &filter, &first(50))
        .await
        .unwrap();
    assert_eq!(theirs.items.len(), 4);
    assert!(theirs.items.iter().all(|e| e.tenant_id == w.other_tenant));
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
