//! The portable diesel schema: the same tables on SQLite and PostgreSQL.

use diesel::{allow_tables_to_appear_in_same_query, joinable, table};

table! {
    resellers (id) {
        id -> Text,
        name -> Text,
        portal_url -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

table! {
    tenants (id) {
        id -> Text,
        reseller_id -> Text,
        name -> Text,
        region -> Text,
        timezone -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

table! {
    domains (id) {
        id -> Text,
        tenant_id -> Text,
        name -> Text,
        state -> Text,
        destination -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

table! {
    address_claims (address) {
        address -> Text,
        tenant_id -> Text,
        kind -> Text,
    }
}

table! {
    users (id) {
        id -> Text,
        tenant_id -> Text,
        domain_id -> Text,
        address -> Text,
        display_name -> Text,
        role -> Text,
        language -> Text,
        status -> Text,
        password_hash -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

table! {
    aliases (id) {
        id -> Text,
        tenant_id -> Text,
        domain_id -> Text,
        user_id -> Text,
        address -> Text,
        status -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

table! {
    operators (id) {
        id -> Text,
        email -> Text,
        role -> Text,
        reseller_id -> Nullable<Text>,
        password_hash -> Nullable<Text>,
        created_at -> Timestamp,
    }
}

table! {
    api_keys (id) {
        id -> Text,
        name -> Text,
        prefix -> Text,
        secret_hash -> Text,
        role -> Text,
        reseller_id -> Nullable<Text>,
        tenant_id -> Nullable<Text>,
        created_at -> Timestamp,
        last_used_at -> Nullable<Timestamp>,
        revoked_at -> Nullable<Timestamp>,
    }
}

table! {
    policies (id) {
        id -> Text,
        owner_kind -> Text,
        reseller_id -> Nullable<Text>,
        tenant_id -> Nullable<Text>,
        builtin -> Nullable<Text>,
        name -> Text,
        description -> Text,
        settings -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

table! {
    tenant_policies (tenant_id) {
        tenant_id -> Text,
        policy_id -> Text,
        updated_at -> Timestamp,
    }
}

table! {
    domain_policy_overrides (domain_id) {
        domain_id -> Text,
        tenant_id -> Text,
        overrides -> Text,
        updated_at -> Timestamp,
    }
}

table! {
    user_policy_overrides (user_id) {
        user_id -> Text,
        tenant_id -> Text,
        overrides -> Text,
        updated_at -> Timestamp,
    }
}

joinable!(tenants -> resellers (reseller_id));
joinable!(tenant_policies -> policies (policy_id));
joinable!(domains -> tenants (tenant_id));
joinable!(users -> domains (domain_id));
joinable!(aliases -> users (user_id));

allow_tables_to_appear_in_same_query!(
    resellers,
    tenants,
    domains,
    address_claims,
    users,
    aliases,
    operators,
    api_keys,
    policies,
    tenant_policies,
    domain_policy_overrides,
    user_policy_overrides,
);
