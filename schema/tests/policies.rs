//! The ingest-facing effective policy lookup, on a migrated SQLite database.

use cleanmail_core::policy::{PolicyLevel, PolicyOverrides, QuarantineExpiry, SubjectTag};
use cleanmail_schema::models::Alias;
use cleanmail_schema::store::{aliases, domains, policies, tenants, users};
use cleanmail_schema::{AliasId, Scope, StoreError, now};

mod support;

#[tokio::test]
async fn ingest_reads_the_effective_policy_of_a_user_or_an_alias() {
    let (db, _dir) = support::sqlite().await;
    // Migrating twice keeps the built-ins as they are.
    db.migrate().await.unwrap();

    let at = now();
    let reseller = support::reseller(&db).await;
    let (tenant, domain) = support::tenant_with_domain(&db, &reseller, "acme.ch").await;
    let user = support::user(&db, &tenant, &domain, "jean@acme.ch").await;
    aliases::create(
        &db,
        Alias {
            id: AliasId::new(),
            tenant_id: tenant.clone(),
            domain_id: domain.clone(),
            user_id: user.clone(),
            address: "info@acme.ch".into(),
            status: "active".into(),
            created_at: at,
            updated_at: at,
        },
    )
    .await
    .unwrap();

    // A new tenant is on the standard policy.
    let effective = policies::unscoped_effective_for_user_for_ingest(&db, &user)
        .await
        .unwrap();
    assert_eq!(effective.policy.newsletter_tag.as_str(), "[PUB] ");
    assert_eq!(effective.sources.report, PolicyLevel::Tenant);

    let tenant_scope = Scope::Tenant {
        reseller_id: reseller.clone(),
        tenant_id: tenant.clone(),
    };
    policies::set_domain_overrides(
        &db,
        &tenant_scope,
        &domain,
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
        &user,
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
    assert_eq!(found, user);
    assert_eq!(effective.policy.quarantine_expiry.get(), 9);
    assert_eq!(effective.sources.quarantine_expiry, PolicyLevel::Domain);
    assert_eq!(effective.policy.spam_tag.as_str(), "[S] ");
    assert_eq!(effective.sources.spam_tag, PolicyLevel::User);
    let (found, _) = policies::unscoped_effective_for_address_for_ingest(&db, "jean@acme.ch")
        .await
        .unwrap();
    assert_eq!(found, user);
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
            tenant_id: Some(&tenant),
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
    policies::assign_to_tenant(&db, &tenant_scope, &tenant, &own.id)
        .await
        .unwrap();
    assert!(matches!(
        policies::delete(&db, &tenant_scope, &own.id).await,
        Err(StoreError::Constraint(_))
    ));
    users::delete(&db, &tenant_scope, &user).await.unwrap();
    domains::delete(&db, &tenant_scope, &domain).await.unwrap();
    tenants::delete(&db, &Scope::Platform, &tenant)
        .await
        .unwrap();
    assert!(matches!(
        policies::get(&db, &Scope::Platform, &own.id).await,
        Err(StoreError::NotFound)
    ));
}
