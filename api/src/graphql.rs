//! The GraphQL schema at `/graphql`: the same operations as REST, resolved by the same
//! service functions. Lists are Relay connections; errors carry `extensions.code`.

use async_graphql::connection::{Connection, Edge};
use async_graphql::{Context, EmptySubscription, Object, Schema};
use axum::extract::State;
use axum::http::HeaderMap;

use crate::rest::access::Me;
use crate::service::aliases::{Alias, AliasFilter, CreateAlias, UpdateAlias};
use crate::service::api_keys::{ApiKey, CreateApiKey, CreatedApiKey};
use crate::service::domains::{CreateDomain, Domain, DomainFilter, UpdateDomain};
use crate::service::import::{ImportReport, ImportTarget};
use crate::service::policies::{
    CreatePolicy, EffectivePolicy, Policy, PolicyFilter, PolicyOverrides, PolicyOverridesOf,
    TenantPolicy, UpdatePolicy,
};
use crate::service::quarantine::{
    BulkInput, BulkResult, MessageDetail, MessageSearch, ReleaseInput, ReleaseOutcome,
    ReleaseRequest, ReleaseRequestFilter, SenderListInput, SenderListOutcome, StoredMessage,
};
use crate::service::reports::{
    CreateReportDefinition, ReportData, ReportDefinition, ReportDefinitionFilter,
    UpdateReportDefinition,
};
use crate::service::resellers::{CreateReseller, Reseller, ResellerFilter, UpdateReseller};
use crate::service::tenants::{CreateTenant, Tenant, TenantFilter, UpdateTenant};
use crate::service::users::{CreateUser, UpdateUser, User, UserFilter};
use crate::service::{self, Page, PageParams};
use crate::{ApiError, AppState, Principal};

/// The schema type.
pub type CleanmailSchema = Schema<QueryRoot, MutationRoot, EmptySubscription>;

/// Maximum query complexity accepted; depth limits are in [`crate::graphql_limits`].
pub const MAX_COMPLEXITY: usize = 2000;

fn builder() -> async_graphql::SchemaBuilder<QueryRoot, MutationRoot, EmptySubscription> {
    Schema::build(QueryRoot, MutationRoot, EmptySubscription)
        .extension(crate::graphql_limits::QueryShape)
        .limit_depth(crate::graphql_limits::MAX_INTROSPECTION_DEPTH)
        .limit_complexity(MAX_COMPLEXITY)
}

/// The schema bound to the application state.
pub fn schema(state: AppState) -> CleanmailSchema {
    builder().data(state).finish()
}

/// The schema without state, for printing the SDL.
pub fn schema_without_state() -> CleanmailSchema {
    builder().finish()
}

/// The outcome of authenticating the request, placed in the GraphQL context.
struct Caller(Result<Principal, ApiError>);

/// Axum handler: authenticates, then executes the GraphQL request.
pub async fn handler(
    State(state): State<AppState>,
    axum::Extension(schema): axum::Extension<CleanmailSchema>,
    headers: HeaderMap,
    request: async_graphql_axum::GraphQLRequest,
) -> async_graphql_axum::GraphQLResponse {
    let authorization = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let caller = match authorization {
        Some(_) => Caller(state.authenticate(authorization).await),
        None => Caller(Err(ApiError::Unauthenticated)),
    };
    schema
        .execute(request.into_inner().data(caller))
        .await
        .into()
}

fn state<'a>(ctx: &Context<'a>) -> &'a AppState {
    ctx.data_unchecked::<AppState>()
}

fn who<'a>(ctx: &Context<'a>) -> async_graphql::Result<&'a Principal> {
    match ctx.data_opt::<Caller>() {
        Some(Caller(Ok(principal))) => Ok(principal),
        _ => Err(ApiError::Unauthenticated.into_graphql()),
    }
}

trait IntoGql<T> {
    fn gql(self) -> async_graphql::Result<T>;
    /// `NotFound` becomes `null`, as a missing object in GraphQL is.
    fn gql_opt(self) -> async_graphql::Result<Option<T>>;
}

impl<T> IntoGql<T> for Result<T, ApiError> {
    fn gql(self) -> async_graphql::Result<T> {
        self.map_err(ApiError::into_graphql)
    }
    fn gql_opt(self) -> async_graphql::Result<Option<T>> {
        match self {
            Ok(v) => Ok(Some(v)),
            Err(ApiError::NotFound) => Ok(None),
            Err(e) => Err(e.into_graphql()),
        }
    }
}

fn page_params(first: Option<i32>, after: Option<String>) -> PageParams {
    PageParams {
        after,
        limit: first.map(i64::from),
    }
}

fn connection<T: async_graphql::OutputType>(
    page: Page<T>,
    had_cursor: bool,
    cursor_of: impl Fn(&T) -> String,
) -> Connection<String, T> {
    let mut connection = Connection::new(had_cursor, page.next_cursor.is_some());
    connection.edges.extend(
        page.items
            .into_iter()
            .map(|item| Edge::new(cursor_of(&item), item)),
    );
    connection
}

/// Read operations.
pub struct QueryRoot;

#[Object]
impl QueryRoot {
    /// The authenticated caller.
    async fn me(&self, ctx: &Context<'_>) -> async_graphql::Result<Me> {
        Ok(Me::from(who(ctx)?))
    }

    async fn reseller(
        &self,
        ctx: &Context<'_>,
        id: String,
    ) -> async_graphql::Result<Option<Reseller>> {
        service::resellers::get(state(ctx), who(ctx)?, &id)
            .await
            .gql_opt()
    }

    async fn resellers(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        filter: Option<ResellerFilter>,
    ) -> async_graphql::Result<Connection<String, Reseller>> {
        let had_cursor = after.is_some();
        let page = service::resellers::list(
            state(ctx),
            who(ctx)?,
            &filter.unwrap_or_default(),
            &page_params(first, after),
        )
        .await
        .gql()?;
        Ok(connection(page, had_cursor, |r| r.id.clone()))
    }

    async fn tenant(&self, ctx: &Context<'_>, id: String) -> async_graphql::Result<Option<Tenant>> {
        service::tenants::get(state(ctx), who(ctx)?, &id)
            .await
            .gql_opt()
    }

    async fn tenants(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        filter: Option<TenantFilter>,
    ) -> async_graphql::Result<Connection<String, Tenant>> {
        let had_cursor = after.is_some();
        let page = service::tenants::list(
            state(ctx),
            who(ctx)?,
            &filter.unwrap_or_default(),
            &page_params(first, after),
        )
        .await
        .gql()?;
        Ok(connection(page, had_cursor, |t| t.id.clone()))
    }

    async fn domain(&self, ctx: &Context<'_>, id: String) -> async_graphql::Result<Option<Domain>> {
        service::domains::get(state(ctx), who(ctx)?, &id)
            .await
            .gql_opt()
    }

    async fn domains(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        filter: Option<DomainFilter>,
    ) -> async_graphql::Result<Connection<String, Domain>> {
        let had_cursor = after.is_some();
        let page = service::domains::list(
            state(ctx),
            who(ctx)?,
            &filter.unwrap_or_default(),
            &page_params(first, after),
        )
        .await
        .gql()?;
        Ok(connection(page, had_cursor, |d| d.id.clone()))
    }

    async fn user(&self, ctx: &Context<'_>, id: String) -> async_graphql::Result<Option<User>> {
        service::users::get(state(ctx), who(ctx)?, &id)
            .await
            .gql_opt()
    }

    async fn users(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        filter: Option<UserFilter>,
    ) -> async_graphql::Result<Connection<String, User>> {
        let had_cursor = after.is_some();
        let page = service::users::list(
            state(ctx),
            who(ctx)?,
            &filter.unwrap_or_default(),
            &page_params(first, after),
        )
        .await
        .gql()?;
        Ok(connection(page, had_cursor, |u| u.id.clone()))
    }

    async fn alias(&self, ctx: &Context<'_>, id: String) -> async_graphql::Result<Option<Alias>> {
        service::aliases::get(state(ctx), who(ctx)?, &id)
            .await
            .gql_opt()
    }

    async fn aliases(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        filter: Option<AliasFilter>,
    ) -> async_graphql::Result<Connection<String, Alias>> {
        let had_cursor = after.is_some();
        let page = service::aliases::list(
            state(ctx),
            who(ctx)?,
            &filter.unwrap_or_default(),
            &page_params(first, after),
        )
        .await
        .gql()?;
        Ok(connection(page, had_cursor, |a| a.id.clone()))
    }

    async fn api_key(
        &self,
        ctx: &Context<'_>,
        id: String,
    ) -> async_graphql::Result<Option<ApiKey>> {
        service::api_keys::get(state(ctx), who(ctx)?, &id)
            .await
            .gql_opt()
    }

    async fn api_keys(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Connection<String, ApiKey>> {
        let had_cursor = after.is_some();
        let page = service::api_keys::list(state(ctx), who(ctx)?, &page_params(first, after))
            .await
            .gql()?;
        Ok(connection(page, had_cursor, |k| k.id.clone()))
    }

    async fn policy(&self, ctx: &Context<'_>, id: String) -> async_graphql::Result<Option<Policy>> {
        service::policies::get(state(ctx), who(ctx)?, &id)
            .await
            .gql_opt()
    }

    /// Policies visible to you: the built-in ones, your reseller's and your tenant's.
    async fn policies(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        filter: Option<PolicyFilter>,
    ) -> async_graphql::Result<Connection<String, Policy>> {
        let had_cursor = after.is_some();
        let page = service::policies::list(
            state(ctx),
            who(ctx)?,
            &filter.unwrap_or_default(),
            &page_params(first, after),
        )
        .await
        .gql()?;
        Ok(connection(page, had_cursor, |p| p.id.clone()))
    }

    /// The policy a tenant uses.
    async fn tenant_policy(
        &self,
        ctx: &Context<'_>,
        tenant_id: String,
    ) -> async_graphql::Result<Option<TenantPolicy>> {
        service::policies::tenant_policy(state(ctx), who(ctx)?, &tenant_id)
            .await
            .gql_opt()
    }

    /// The policy overrides of a domain (empty when none are set).
    async fn domain_policy_overrides(
        &self,
        ctx: &Context<'_>,
        domain_id: String,
    ) -> async_graphql::Result<Option<PolicyOverridesOf>> {
        service::policies::domain_overrides(state(ctx), who(ctx)?, &domain_id)
            .await
            .gql_opt()
    }

    /// The policy overrides of a user (empty when none are set).
    async fn user_policy_overrides(
        &self,
        ctx: &Context<'_>,
        user_id: String,
    ) -> async_graphql::Result<Option<PolicyOverridesOf>> {
        service::policies::user_overrides(state(ctx), who(ctx)?, &user_id)
            .await
            .gql_opt()
    }

    /// A user's effective policy: every value and the level it came from.
    async fn effective_policy(
        &self,
        ctx: &Context<'_>,
        user_id: String,
    ) -> async_graphql::Result<Option<EffectivePolicy>> {
        service::policies::effective_for_user(state(ctx), who(ctx)?, &user_id)
            .await
            .gql_opt()
    }

    /// A domain's effective policy (before user overrides).
    async fn domain_effective_policy(
        &self,
        ctx: &Context<'_>,
        domain_id: String,
    ) -> async_graphql::Result<Option<EffectivePolicy>> {
        service::policies::effective_for_domain(state(ctx), who(ctx)?, &domain_id)
            .await
            .gql_opt()
    }

    /// The users and aliases of a domain or tenant as import CSV.
    async fn export_addresses(
        &self,
        ctx: &Context<'_>,
        target: ImportTarget,
    ) -> async_graphql::Result<String> {
        service::import::export(state(ctx), who(ctx)?, &target)
            .await
            .gql()
    }

    /// Quarantined messages you can see (a user: their own), newest first.
    async fn quarantine(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        search: Option<MessageSearch>,
    ) -> async_graphql::Result<Connection<String, StoredMessage>> {
        let had_cursor = after.is_some();
        let page = service::quarantine::list(
            state(ctx),
            who(ctx)?,
            &search.unwrap_or_default(),
            &page_params(first, after),
        )
        .await
        .gql()?;
        Ok(connection(page, had_cursor, service::quarantine::cursor))
    }

    /// One quarantined message with envelope, headers, verdict, safe preview, attachments.
    async fn quarantined_message(
        &self,
        ctx: &Context<'_>,
        id: String,
    ) -> async_graphql::Result<Option<MessageDetail>> {
        service::quarantine::get(state(ctx), who(ctx)?, &id)
            .await
            .gql_opt()
    }

    /// Retained (delivered) messages of the backup webmail you can see, newest first.
    async fn webmail_messages(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        search: Option<MessageSearch>,
    ) -> async_graphql::Result<Connection<String, StoredMessage>> {
        let had_cursor = after.is_some();
        let page = service::webmail::list(
            state(ctx),
            who(ctx)?,
            &search.unwrap_or_default(),
            &page_params(first, after),
        )
        .await
        .gql()?;
        Ok(connection(page, had_cursor, service::quarantine::cursor))
    }

    /// Message tracking (tenant admins and above): every message of your scope received,
    /// refused or sent, with its verdict and delivery state, newest first.
    async fn message_log(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        search: Option<MessageSearch>,
    ) -> async_graphql::Result<Connection<String, service::message_log::LogEntry>> {
        let had_cursor = after.is_some();
        let page = service::message_log::list(
            state(ctx),
            who(ctx)?,
            &search.unwrap_or_default(),
            &page_params(first, after),
        )
        .await
        .gql()?;
        Ok(connection(page, had_cursor, service::message_log::cursor))
    }

    /// The sent folder: what you (a mailbox user) sent from the webmail, newest first, with
    /// each message's delivery state.
    async fn sent_messages(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Connection<String, service::webmail::SentMessage>> {
        let had_cursor = after.is_some();
        let page = service::webmail::sent(state(ctx), who(ctx)?, &page_params(first, after))
            .await
            .gql()?;
        Ok(connection(page, had_cursor, service::webmail::sent_cursor))
    }

    /// The DKIM keys of a domain (tenant admins), newest first, with their DNS records.
    async fn dkim_keys(
        &self,
        ctx: &Context<'_>,
        domain_id: String,
    ) -> async_graphql::Result<Vec<service::dkim::DkimKey>> {
        service::dkim::list(state(ctx), who(ctx)?, &domain_id)
            .await
            .gql()
    }

    /// One retained message, rendered safely.
    async fn webmail_message(
        &self,
        ctx: &Context<'_>,
        id: String,
    ) -> async_graphql::Result<Option<MessageDetail>> {
        service::webmail::get(state(ctx), who(ctx)?, &id)
            .await
            .gql_opt()
    }

    /// Release requests you can see (a user: their own), newest first.
    async fn release_requests(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        filter: Option<ReleaseRequestFilter>,
    ) -> async_graphql::Result<Connection<String, ReleaseRequest>> {
        let had_cursor = after.is_some();
        let page = service::quarantine::release_requests(
            state(ctx),
            who(ctx)?,
            &filter.unwrap_or_default(),
            &page_params(first, after),
        )
        .await
        .gql()?;
        Ok(connection(page, had_cursor, |r| r.id.clone()))
    }

    /// Domain and tenant report definitions visible to you.
    async fn report_definitions(
        &self,
        ctx: &Context<'_>,
        filter: Option<ReportDefinitionFilter>,
    ) -> async_graphql::Result<Vec<ReportDefinition>> {
        service::reports::list(
            state(ctx),
            who(ctx)?,
            &filter.unwrap_or_default(),
            &page_params(None, None),
        )
        .await
        .gql()
        .map(|page| page.items)
    }

    async fn report_definition(
        &self,
        ctx: &Context<'_>,
        id: String,
    ) -> async_graphql::Result<Option<ReportDefinition>> {
        service::reports::get(state(ctx), who(ctx)?, &id)
            .await
            .gql_opt()
    }

    /// A report's content for its latest complete period at `at` (default now).
    async fn report_data(
        &self,
        ctx: &Context<'_>,
        id: String,
        at: Option<chrono::DateTime<chrono::Utc>>,
    ) -> async_graphql::Result<Option<ReportData>> {
        service::reports::data(state(ctx), who(ctx)?, &id, at)
            .await
            .gql_opt()
    }
}

/// A bearer token from `login`.
#[derive(async_graphql::SimpleObject)]
pub struct LoginPayload {
    pub access_token: String,
    pub token_type: String,
    pub expires_in: i64,
}

/// Write operations.
pub struct MutationRoot;

#[Object]
impl MutationRoot {
    /// Exchanges an email and password for a bearer token.
    async fn login(
        &self,
        ctx: &Context<'_>,
        email: String,
        password: String,
    ) -> async_graphql::Result<LoginPayload> {
        let access_token = state(ctx).login(&email, &password).await.gql()?;
        Ok(LoginPayload {
            access_token,
            token_type: "Bearer".into(),
            expires_in: crate::auth::ACCESS_TOKEN_SECONDS,
        })
    }

    async fn create_reseller(
        &self,
        ctx: &Context<'_>,
        input: CreateReseller,
    ) -> async_graphql::Result<Reseller> {
        service::resellers::create(state(ctx), who(ctx)?, input)
            .await
            .gql()
    }
    async fn update_reseller(
        &self,
        ctx: &Context<'_>,
        id: String,
        input: UpdateReseller,
    ) -> async_graphql::Result<Reseller> {
        service::resellers::update(state(ctx), who(ctx)?, &id, input)
            .await
            .gql()
    }
    /// Returns the id of the deleted reseller.
    async fn delete_reseller(
        &self,
        ctx: &Context<'_>,
        id: String,
    ) -> async_graphql::Result<String> {
        service::resellers::delete(state(ctx), who(ctx)?, &id)
            .await
            .gql()
            .map(|()| id)
    }

    async fn create_tenant(
        &self,
        ctx: &Context<'_>,
        input: CreateTenant,
    ) -> async_graphql::Result<Tenant> {
        service::tenants::create(state(ctx), who(ctx)?, input)
            .await
            .gql()
    }
    async fn update_tenant(
        &self,
        ctx: &Context<'_>,
        id: String,
        input: UpdateTenant,
    ) -> async_graphql::Result<Tenant> {
        service::tenants::update(state(ctx), who(ctx)?, &id, input)
            .await
            .gql()
    }
    async fn delete_tenant(&self, ctx: &Context<'_>, id: String) -> async_graphql::Result<String> {
        service::tenants::delete(state(ctx), who(ctx)?, &id)
            .await
            .gql()
            .map(|()| id)
    }

    async fn create_domain(
        &self,
        ctx: &Context<'_>,
        input: CreateDomain,
    ) -> async_graphql::Result<Domain> {
        service::domains::create(state(ctx), who(ctx)?, input)
            .await
            .gql()
    }
    async fn update_domain(
        &self,
        ctx: &Context<'_>,
        id: String,
        input: UpdateDomain,
    ) -> async_graphql::Result<Domain> {
        service::domains::update(state(ctx), who(ctx)?, &id, input)
            .await
            .gql()
    }
    async fn delete_domain(&self, ctx: &Context<'_>, id: String) -> async_graphql::Result<String> {
        service::domains::delete(state(ctx), who(ctx)?, &id)
            .await
            .gql()
            .map(|()| id)
    }

    async fn create_user(
        &self,
        ctx: &Context<'_>,
        input: CreateUser,
    ) -> async_graphql::Result<User> {
        service::users::create(state(ctx), who(ctx)?, input)
            .await
            .gql()
    }
    async fn update_user(
        &self,
        ctx: &Context<'_>,
        id: String,
        input: UpdateUser,
    ) -> async_graphql::Result<User> {
        service::users::update(state(ctx), who(ctx)?, &id, input)
            .await
            .gql()
    }
    async fn delete_user(&self, ctx: &Context<'_>, id: String) -> async_graphql::Result<String> {
        service::users::delete(state(ctx), who(ctx)?, &id)
            .await
            .gql()
            .map(|()| id)
    }

    /// Turns a user into an alias of another user of the same tenant.
    async fn convert_user_to_alias(
        &self,
        ctx: &Context<'_>,
        id: String,
        input: crate::service::users::ConvertToAlias,
    ) -> async_graphql::Result<Alias> {
        service::users::convert_to_alias(state(ctx), who(ctx)?, &id, input)
            .await
            .gql()
    }

    async fn create_alias(
        &self,
        ctx: &Context<'_>,
        input: CreateAlias,
    ) -> async_graphql::Result<Alias> {
        service::aliases::create(state(ctx), who(ctx)?, input)
            .await
            .gql()
    }
    async fn update_alias(
        &self,
        ctx: &Context<'_>,
        id: String,
        input: UpdateAlias,
    ) -> async_graphql::Result<Alias> {
        service::aliases::update(state(ctx), who(ctx)?, &id, input)
            .await
            .gql()
    }
    async fn delete_alias(&self, ctx: &Context<'_>, id: String) -> async_graphql::Result<String> {
        service::aliases::delete(state(ctx), who(ctx)?, &id)
            .await
            .gql()
            .map(|()| id)
    }

    /// Creates an API key; its secret is in this answer only.
    async fn create_api_key(
        &self,
        ctx: &Context<'_>,
        input: CreateApiKey,
    ) -> async_graphql::Result<CreatedApiKey> {
        service::api_keys::create(state(ctx), who(ctx)?, input)
            .await
            .gql()
    }
    async fn revoke_api_key(&self, ctx: &Context<'_>, id: String) -> async_graphql::Result<ApiKey> {
        service::api_keys::revoke(state(ctx), who(ctx)?, &id)
            .await
            .gql()
    }

    async fn create_policy(
        &self,
        ctx: &Context<'_>,
        input: CreatePolicy,
    ) -> async_graphql::Result<Policy> {
        service::policies::create(state(ctx), who(ctx)?, input)
            .await
            .gql()
    }
    async fn update_policy(
        &self,
        ctx: &Context<'_>,
        id: String,
        input: UpdatePolicy,
    ) -> async_graphql::Result<Policy> {
        service::policies::update(state(ctx), who(ctx)?, &id, input)
            .await
            .gql()
    }
    /// Deletes a policy; refused (CONFLICT) while a tenant uses it.
    async fn delete_policy(&self, ctx: &Context<'_>, id: String) -> async_graphql::Result<String> {
        service::policies::delete(state(ctx), who(ctx)?, &id)
            .await
            .gql()
            .map(|()| id)
    }
    /// Makes a tenant use a policy (the platform's, its reseller's or its own).
    async fn assign_tenant_policy(
        &self,
        ctx: &Context<'_>,
        tenant_id: String,
        policy_id: String,
    ) -> async_graphql::Result<TenantPolicy> {
        service::policies::assign_tenant_policy(state(ctx), who(ctx)?, &tenant_id, &policy_id)
            .await
            .gql()
    }
    /// Sets (replaces) the policy overrides of a domain.
    async fn set_domain_policy_overrides(
        &self,
        ctx: &Context<'_>,
        domain_id: String,
        overrides: PolicyOverrides,
    ) -> async_graphql::Result<PolicyOverridesOf> {
        service::policies::set_domain_overrides(state(ctx), who(ctx)?, &domain_id, overrides)
            .await
            .gql()
    }
    /// Removes the policy overrides of a domain; returns the domain id.
    async fn clear_domain_policy_overrides(
        &self,
        ctx: &Context<'_>,
        domain_id: String,
    ) -> async_graphql::Result<String> {
        service::policies::clear_domain_overrides(state(ctx), who(ctx)?, &domain_id)
            .await
            .gql()
            .map(|()| domain_id)
    }
    /// Sets (replaces) the policy overrides of a user.
    async fn set_user_policy_overrides(
        &self,
        ctx: &Context<'_>,
        user_id: String,
        overrides: PolicyOverrides,
    ) -> async_graphql::Result<PolicyOverridesOf> {
        service::policies::set_user_overrides(state(ctx), who(ctx)?, &user_id, overrides)
            .await
            .gql()
    }
    /// Removes the policy overrides of a user; returns the user id.
    async fn clear_user_policy_overrides(
        &self,
        ctx: &Context<'_>,
        user_id: String,
    ) -> async_graphql::Result<String> {
        service::policies::clear_user_overrides(state(ctx), who(ctx)?, &user_id)
            .await
            .gql()
            .map(|()| user_id)
    }

    /// Imports users and aliases from CSV (`address,type,target,display_name`).
    /// All-or-nothing: `applied` is false when any line is rejected.
    async fn import_addresses(
        &self,
        ctx: &Context<'_>,
        target: ImportTarget,
        csv: String,
        #[graphql(default = false)] dry_run: bool,
    ) -> async_graphql::Result<ImportReport> {
        service::import::import(state(ctx), who(ctx)?, &target, &csv, dry_run)
            .await
            .gql()
    }

    /// Releases a quarantined message (to all or chosen original recipients); an end
    /// user's release of phishing or virus becomes a release request.
    async fn release_message(
        &self,
        ctx: &Context<'_>,
        id: String,
        input: Option<ReleaseInput>,
    ) -> async_graphql::Result<ReleaseOutcome> {
        service::quarantine::release(state(ctx), who(ctx)?, &id, input.unwrap_or_default())
            .await
            .gql()
    }
    /// Deletes a quarantined message.
    async fn delete_quarantined_message(
        &self,
        ctx: &Context<'_>,
        id: String,
    ) -> async_graphql::Result<String> {
        service::quarantine::delete(state(ctx), who(ctx)?, &id)
            .await
            .gql()
            .map(|()| id)
    }
    /// Adds a message's sender to an allow list (yours; admins may choose the level).
    async fn allow_sender(
        &self,
        ctx: &Context<'_>,
        id: String,
        input: Option<SenderListInput>,
    ) -> async_graphql::Result<SenderListOutcome> {
        service::quarantine::allow_sender(state(ctx), who(ctx)?, &id, input.unwrap_or_default())
            .await
            .gql()
    }
    /// Adds a message's sender to a block list (yours; admins may choose the level).
    async fn block_sender(
        &self,
        ctx: &Context<'_>,
        id: String,
        input: Option<SenderListInput>,
    ) -> async_graphql::Result<SenderListOutcome> {
        service::quarantine::block_sender(state(ctx), who(ctx)?, &id, input.unwrap_or_default())
            .await
            .gql()
    }
    /// Reports a message as spam (classifier feedback).
    async fn report_spam(&self, ctx: &Context<'_>, id: String) -> async_graphql::Result<String> {
        service::quarantine::report_spam(state(ctx), who(ctx)?, &id)
            .await
            .gql()
            .map(|()| id)
    }
    /// One action on up to 500 quarantined messages, with a result per message.
    async fn bulk_quarantine(
        &self,
        ctx: &Context<'_>,
        input: BulkInput,
    ) -> async_graphql::Result<BulkResult> {
        service::quarantine::bulk(state(ctx), who(ctx)?, input)
            .await
            .gql()
    }
    /// Approves a pending release request (the requester's copy is released).
    async fn approve_release_request(
        &self,
        ctx: &Context<'_>,
        id: String,
    ) -> async_graphql::Result<ReleaseRequest> {
        service::quarantine::decide_release_request(state(ctx), who(ctx)?, &id, true)
            .await
            .gql()
    }
    /// Denies a pending release request.
    async fn deny_release_request(
        &self,
        ctx: &Context<'_>,
        id: String,
    ) -> async_graphql::Result<ReleaseRequest> {
        service::quarantine::decide_release_request(state(ctx), who(ctx)?, &id, false)
            .await
            .gql()
    }
    /// Re-delivers a retained message to its recipient's mailbox.
    async fn redistribute_message(
        &self,
        ctx: &Context<'_>,
        id: String,
    ) -> async_graphql::Result<StoredMessage> {
        service::webmail::redistribute(state(ctx), who(ctx)?, &id)
            .await
            .gql()
    }
    /// Sends a new message or a reply from your mailbox through the outbound relay, signed
    /// with your domain's active DKIM key (mailbox users only, as themselves).
    async fn send_message(
        &self,
        ctx: &Context<'_>,
        input: service::webmail::SendMessage,
    ) -> async_graphql::Result<service::webmail::SentMessage> {
        service::webmail::send(state(ctx), who(ctx)?, input)
            .await
            .gql()
    }
    /// Generates a DKIM key pair for a domain; publish its `dnsRecord`, then activate it
    /// (a domain's first key is active at once unless `active: false`).
    async fn create_dkim_key(
        &self,
        ctx: &Context<'_>,
        domain_id: String,
        input: Option<service::dkim::CreateDkimKey>,
    ) -> async_graphql::Result<service::dkim::DkimKey> {
        service::dkim::create(state(ctx), who(ctx)?, &domain_id, input.unwrap_or_default())
            .await
            .gql()
    }
    /// Signs the domain's outbound mail with this key from now on.
    async fn activate_dkim_key(
        &self,
        ctx: &Context<'_>,
        domain_id: String,
        id: String,
    ) -> async_graphql::Result<service::dkim::DkimKey> {
        service::dkim::activate(state(ctx), who(ctx)?, &domain_id, &id)
            .await
            .gql()
    }
    /// Deletes a DKIM key; returns its id.
    async fn delete_dkim_key(
        &self,
        ctx: &Context<'_>,
        domain_id: String,
        id: String,
    ) -> async_graphql::Result<String> {
        service::dkim::delete(state(ctx), who(ctx)?, &domain_id, &id)
            .await
            .gql()
            .map(|()| id)
    }
    /// Deletes a retained message from the backup webmail.
    async fn delete_webmail_message(
        &self,
        ctx: &Context<'_>,
        id: String,
    ) -> async_graphql::Result<String> {
        service::webmail::delete(state(ctx), who(ctx)?, &id)
            .await
            .gql()
            .map(|()| id)
    }

    /// Creates a domain or tenant report.
    async fn create_report_definition(
        &self,
        ctx: &Context<'_>,
        input: CreateReportDefinition,
    ) -> async_graphql::Result<ReportDefinition> {
        service::reports::create(state(ctx), who(ctx)?, input)
            .await
            .gql()
    }
    async fn update_report_definition(
        &self,
        ctx: &Context<'_>,
        id: String,
        input: UpdateReportDefinition,
    ) -> async_graphql::Result<ReportDefinition> {
        service::reports::update(state(ctx), who(ctx)?, &id, input)
            .await
            .gql()
    }
    /// Deletes a report definition; returns its id.
    async fn delete_report_definition(
        &self,
        ctx: &Context<'_>,
        id: String,
    ) -> async_graphql::Result<String> {
        service::reports::delete(state(ctx), who(ctx)?, &id)
            .await
            .gql()
            .map(|()| id)
    }
}
