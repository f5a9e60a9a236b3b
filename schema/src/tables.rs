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

table! {
    jobs (id) {
        id -> Text,
        kind -> Text,
        tenant_id -> Nullable<Text>,
        payload -> Text,
        blob_key -> Nullable<Text>,
        run_at -> Timestamp,
        attempts -> Integer,
        locked_by -> Nullable<Text>,
        locked_until -> Nullable<Timestamp>,
        last_error -> Nullable<Text>,
        created_at -> Timestamp,
        failed_at -> Nullable<Timestamp>,
    }
}

table! {
    message_log (id) {
        id -> Text,
        tenant_id -> Text,
        mail_from -> Text,
        rcpt_to -> Text,
        client_ip -> Text,
        helo -> Text,
        tls -> Bool,
        from_header -> Text,
        subject -> Text,
        message_id_header -> Text,
        size_bytes -> BigInt,
        score -> Double,
        category -> Text,
        verdict -> Text,
        actions -> Text,
        state -> Text,
        delivery_attempts -> Integer,
        last_response -> Nullable<Text>,
        blob_key -> Nullable<Text>,
        received_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

table! {
    messages (id) {
        id -> Text,
        tenant_id -> Text,
        domain_id -> Text,
        user_id -> Text,
        log_id -> Text,
        recipient -> Text,
        mail_from -> Text,
        rcpt_to -> Text,
        from_header -> Text,
        subject -> Text,
        message_id_header -> Text,
        size_bytes -> BigInt,
        score -> Double,
        category -> Text,
        action -> Text,
        verdict -> Text,
        state -> Text,
        blob_key -> Text,
        last_response -> Nullable<Text>,
        received_at -> Timestamp,
        expires_at -> Nullable<Timestamp>,
        updated_at -> Timestamp,
    }
}

table! {
    traffic_counters (domain_id, hour) {
        domain_id -> Text,
        hour -> Timestamp,
        tenant_id -> Text,
        clean -> BigInt,
        newsletter -> BigInt,
        spam -> BigInt,
        phishing -> BigInt,
        virus -> BigInt,
        rejected -> BigInt,
    }
}

table! {
    report_definitions (id) {
        id -> Text,
        tenant_id -> Text,
        domain_id -> Nullable<Text>,
        name -> Text,
        kind -> Text,
        frequency -> Text,
        recipients -> Text,
        language -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

table! {
    report_runs (id) {
        id -> Text,
        tenant_id -> Text,
        user_id -> Nullable<Text>,
        definition_id -> Nullable<Text>,
        slot -> Timestamp,
        covered_until -> Timestamp,
        items -> Integer,
        log_id -> Nullable<Text>,
        created_at -> Timestamp,
    }
}

table! {
    used_link_tokens (jti) {
        jti -> Text,
        tenant_id -> Text,
        user_id -> Text,
        purpose -> Text,
        used_at -> Timestamp,
    }
}

table! {
    classifier_feedback (id) {
        id -> Text,
        tenant_id -> Text,
        message_id -> Text,
        log_id -> Text,
        user_id -> Text,
        kind -> Text,
        category -> Text,
        score -> Double,
        mail_from -> Text,
        subject -> Text,
        blob_key -> Text,
        created_by -> Text,
        created_at -> Timestamp,
    }
}

table! {
    tenant_models (tenant_id) {
        tenant_id -> Text,
        model -> Binary,
        learned -> BigInt,
        updated_at -> Timestamp,
    }
}

table! {
    release_requests (id) {
        id -> Text,
        tenant_id -> Text,
        message_id -> Text,
        user_id -> Text,
        state -> Text,
        requested_by -> Text,
        comment -> Text,
        decided_by -> Nullable<Text>,
        created_at -> Timestamp,
        decided_at -> Nullable<Timestamp>,
    }
}

table! {
    dkim_keys (id) {
        id -> Text,
        tenant_id -> Text,
        domain_id -> Text,
        selector -> Text,
        algorithm -> Text,
        public_key -> Text,
        sealed_private_key -> Text,
        active -> Bool,
        created_at -> Timestamp,
    }
}

table! {
    /// Failed logins per account within the open window (see `store::access`).
    login_attempts (account) {
        account -> Text,
        attempts -> Integer,
        window_opened_at -> Timestamp,
    }
}

joinable!(tenants -> resellers (reseller_id));
joinable!(tenant_policies -> policies (policy_id));
joinable!(domains -> tenants (tenant_id));
joinable!(users -> domains (domain_id));
joinable!(aliases -> users (user_id));
joinable!(messages -> message_log (log_id));
joinable!(release_requests -> messages (message_id));
joinable!(dkim_keys -> domains (domain_id));

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
    jobs,
    message_log,
    messages,
    traffic_counters,
    report_definitions,
    report_runs,
    used_link_tokens,
    classifier_feedback,
    tenant_models,
    release_requests,
    dkim_keys,
    login_attempts,
);
