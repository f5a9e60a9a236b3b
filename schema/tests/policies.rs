//! The ingest-facing effective policy lookup, on a migrated SQLite database.

use cleanmail_core::policy::{PolicyLevel, PolicyOverrides, QuarantineExpiry, SubjectTag};
use cleanmail_schema::models::{Alias, Domain, Reseller, Tenant, User};
use cleanmail_schema::store::{aliases, domains, policies, resellers, tenants, users};
use cleanmail_schema::{
    AliasId, Db, DomainId, ResellerId, Scope, StoreError, TenantId, UserId, now,
};

#[tokio::test]
async fn ingest_reads_the_effective_policy_of_a_user_or_an_alias() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::connect(&format!("sqlite://{}", dir.path().join("t.db").display()))
        .await
        .unwrap();
    db.migrate().await.unwrap();
    // Migrating twice keeps the built-ins as they are.
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
    let user = users::create(
        &db,
        User {
            id: UserId::new(),
            tenant_id: tenant.id.clone(),
            domain_id: domain.id.clone(),
            address: "jean@acme.ch".into(),
            display_name: "Jean".into(),
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
    aliases::create(
        &db,
        Alias {
            id: AliasId::new(),
            tenant_id: tenant.id.clone(),
            domain_id: domain.id.clone(),
            user_id: user.id.clone(),
            address: "info@acme.ch".into(),
            status: "active".into(),
            created_at: at,
            updated_at: at,
        },
    )
    .await
    .unwrap();

    // A new tenant is on the standard policy.
    let effective = policies::unscoped_effective_for_user_for_ingest(&db, &user.id)
        .await
        .unwrap();
    assert_eq!(effective.policy.newsletter_tag.as_str(), "[PUB] ");
    assert_eq!(effective.sources.report, PolicyLevel::Tenant);

    let tenant_scope = Scope::Tenant {
        reseller_id: reseller.id.clone(),
        tenant_id: tenant.id.clone(),
    };
    policies::set_domain_overrides(
        &db,
        &tenant_scope,
        &domain.id,
        &PolicyOverrides {
            quarantine_expiry: Some(QuarantineExpiry::new(9).unwrap()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    policies::set_user_overrides(
        &db,
        &tenant_scope,
        &user.id,
        &PolicyOverrides {
            spam_tag: Some(SubjectTag::parse("[S] ").unwrap()),
            ..Default::default()
        },
    )
    .await
    .unwrap();

    let (found, effective) =
        policies::unscoped_effective_for_address_for_ingest(&db, "INFO@Acme.ch")
            .await
            .unwrap();
    assert_eq!(found, user.id);
    assert_eq!(effective.policy.quarantine_expiry.get(), 9);
    assert_eq!(effective.sources.quarantine_expiry, PolicyLevel::Domain);
    assert_eq!(effective.policy.spam_tag.as_str(), "[S] ");
    assert_eq!(effective.sources.spam_tag, PolicyLevel::User);
    let (found, _) = policies::unscoped_effective_for_address_for_ingest(&db, "jean@acme.ch")
        .await
        .unwrap();
    assert_eq!(found, user.id);
    assert!(matches!(
        policies::unscoped_effective_for_address_for_ingest(&db, "nobody@acme.ch").await,
        Err(StoreError::NotFound)
    ));

    // Overrides go with their user and domain; the tenant's own policies and its assignment
    // go with the tenant.
    let own = policies::create(
        &db,
        cleanmail_schema::models::NewPolicy {
            id: &cleanmail_schema::PolicyId::new(),
            owner_kind: policies::OWNER_TENANT,
            reseller_id: None,
            tenant_id: Some(&tenant.id),
            builtin: None,
            name: "Own",
            description: "",
            settings: &serde_json::to_string(&cleanmail_core::policy::Policy::standard()).unwrap(),
            created_at: at,
            updated_at: at,
        },
    )
    .await
    .unwrap();
    policies::assign_to_tenant(&db, &tenant_scope, &tenant.id, &own.id)
        .await
        .unwrap();
    assert!(matches!(
        policies::delete(&db, &tenant_scope, &own.id).await,
        Err(StoreError::Constraint(_))
    ));
    users::delete(&db, &tenant_scope, &user.id).await.unwrap();
    domains::delete(&db, &tenant_scope, &domain.id)
        .await
        .unwrap();
    tenants::delete(&db, &Scope::Platform, &tenant.id)
        .await
        .unwrap();
    assert!(matches!(
        policies::get(&db, &Scope::Platform, &own.id).await,
        Err(StoreError::NotFound)
    ));
}
