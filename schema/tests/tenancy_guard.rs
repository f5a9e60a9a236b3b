//! Guard: every tenant-owned table carries a `tenant_id` that is NOT NULL, references
//! `tenants(id)` and leads an index, so scope filters are both enforced and cheap.

use diesel::sql_types::{Integer, Text};
use diesel::{Connection, QueryableByName, RunQueryDsl, SqliteConnection};

/// Tables outside a single tenant, each with the reason.
const NOT_TENANT_OWNED: &[(&str, &str)] = &[
    ("resellers", "above tenants"),
    ("tenants", "the tenant itself"),
    ("operators", "platform and reseller staff"),
    (
        "api_keys",
        "scoped to a reseller or a tenant: both columns are nullable foreign keys",
    ),
    (
        "policies",
        "owned by the platform, a reseller or a tenant: nullable owner keys, a check allows exactly one",
    ),
    (
        "jobs",
        "the platform's work queue: a job names its tenant when it has one, and builds its scope again",
    ),
    (
        "login_attempts",
        "failed logins per login name, counted before anyone is known (the name may not exist)",
    ),
    ("__diesel_schema_migrations", "diesel bookkeeping"),
];

#[derive(QueryableByName)]
struct Name {
    #[diesel(sql_type = Text)]
    name: String,
}

#[derive(QueryableByName)]
struct Column {
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Integer)]
    notnull: i32,
}

#[derive(QueryableByName)]
struct ForeignKey {
    #[diesel(sql_type = Text)]
    table: String,
    #[diesel(sql_type = Text)]
    from: String,
    #[diesel(sql_type = Text)]
    to: String,
}

#[derive(QueryableByName)]
struct IndexColumn {
    #[diesel(sql_type = Integer)]
    seqno: i32,
    #[diesel(sql_type = Text)]
    name: String,
}

#[tokio::test]
async fn every_tenant_owned_table_has_an_indexed_not_null_tenant_foreign_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("guard.db");
    let db = cleanmail_schema::Db::connect(path.to_str().unwrap())
        .await
        .unwrap();
    db.migrate().await.unwrap();
    drop(db);

    let mut conn = SqliteConnection::establish(path.to_str().unwrap()).unwrap();
    let tables: Vec<Name> = diesel::sql_query(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
    )
    .load(&mut conn)
    .unwrap();
    let mut checked = 0;
    for table in tables.iter().map(|t| t.name.as_str()) {
        if NOT_TENANT_OWNED.iter().any(|(name, _)| *name == table) {
            continue;
        }
        checked += 1;
        let columns: Vec<Column> = diesel::sql_query(format!(
            "SELECT name, \"notnull\" FROM pragma_table_info('{table}')"
        ))
        .load(&mut conn)
        .unwrap();
        let tenant = columns
            .iter()
            .find(|c| c.name == "tenant_id")
            .unwrap_or_else(|| panic!("{table} has no tenant_id: add it, or list the table in NOT_TENANT_OWNED with a reason"));
        assert_eq!(tenant.notnull, 1, "{table}.tenant_id must be NOT NULL");

        let keys: Vec<ForeignKey> = diesel::sql_query(format!(
            "SELECT \"table\", \"from\", \"to\" FROM pragma_foreign_key_list('{table}')"
        ))
        .load(&mut conn)
        .unwrap();
        assert!(
            keys.iter()
                .any(|k| k.from == "tenant_id" && k.table == "tenants" && k.to == "id"),
            "{table}.tenant_id must reference tenants(id)"
        );

        let indexes: Vec<Name> =
            diesel::sql_query(format!("SELECT name FROM pragma_index_list('{table}')"))
                .load(&mut conn)
                .unwrap();
        let leads_an_index = indexes.iter().any(|index| {
            let columns: Vec<IndexColumn> = diesel::sql_query(format!(
                "SELECT seqno, name FROM pragma_index_info('{}')",
                index.name
            ))
            .load(&mut conn)
            .unwrap();
            columns
                .iter()
                .any(|c| c.seqno == 0 && c.name == "tenant_id")
        });
        assert!(
            leads_an_index,
            "{table} needs an index that starts with tenant_id"
        );
    }
    assert!(
        checked >= 4,
        "expected the tenant-owned tables, checked {checked}"
    );
}
