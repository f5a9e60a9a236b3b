//! A migrated SQLite database with the hierarchy the store tests need.

use cleanmail_schema::models::{Domain, Reseller, Tenant, User};
use cleanmail_schema::store::{domains, resellers, tenants, users};
use cleanmail_schema::{Db, DomainId, ResellerId, TenantId, UserId, now};

/// A fresh migrated SQLite database in its own folder (deleted with the `TempDir`).
pub async fn sqlite() -> (Db, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::connect(&format!("sqlite://{}", dir.path().join("t.db").display()))
        .await
        .unwrap();
    db.migrate().await.unwrap();
    (db, dir)
}

pub async fn reseller(db: &Db) -> ResellerId {
    let at = now();
    let reseller = Reseller {
        id: ResellerId::new(),
        name: "R".into(),
        portal_url: None,
        created_at: at,
        updated_at: at,
    };
    resellers::create(db, reseller).await.unwrap().id
}

/// A Swiss tenant of `reseller` with one live domain named `domain`.
pub async fn tenant_with_domain(
    db: &Db,
    reseller: &ResellerId,
    domain: &str,
) -> (TenantId, DomainId) {
    let at = now();
    let tenant = Tenant {
        id: TenantId::new(),
        reseller_id: reseller.clone(),
        name: domain.into(),
        region: "ch".into(),
        timezone: "Europe/Zurich".into(),
        created_at: at,
        updated_at: at,
    };
    let tenant = tenants::create(db, tenant).await.unwrap();
    let domain = Domain {
        id: DomainId::new(),
        tenant_id: tenant.id.clone(),
        name: domain.into(),
        state: "live".into(),
        destination: format!("mx.{domain}:25"),
        created_at: at,
        updated_at: at,
    };
    (tenant.id, domains::create(db, domain).await.unwrap().id)
}

/// An active French-speaking user at `address`.
pub async fn user(db: &Db, tenant: &TenantId, domain: &DomainId, address: &str) -> UserId {
    let at = now();
    let user = User {
        id: UserId::new(),
        tenant_id: tenant.clone(),
        domain_id: domain.clone(),
        address: address.into(),
        display_name: address.into(),
        role: "user".into(),
        language: "fr".into(),
        status: "active".into(),
        password_hash: None,
        created_at: at,
        updated_at: at,
    };
    users::create(db, user).await.unwrap().id
}
