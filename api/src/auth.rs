//! Authentication: a bearer credential (login JWT or API key) becomes a [`Principal`],
//! whose [`Scope`] every store query filters through.

use std::str::FromStr;
use std::time::Duration;

use argon2::{Argon2, PasswordHasher, PasswordVerifier};
use base64::Engine as _;
use cleanmail_schema::models::ApiKey;
use cleanmail_schema::store::{access, users};
use cleanmail_schema::{Db, ResellerId, Scope, StoreError, TenantId, UserId};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::Digest;

use crate::{ApiError, AppState};

/// What a principal may do, from most to least powerful.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
    async_graphql::Enum,
)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    User,
    TenantAdmin,
    ResellerAdmin,
    PlatformAdmin,
}

impl Role {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::TenantAdmin => "tenant_admin",
            Role::ResellerAdmin => "reseller_admin",
            Role::PlatformAdmin => "platform_admin",
        }
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "user" => Ok(Role::User),
            "tenant_admin" => Ok(Role::TenantAdmin),
            "reseller_admin" => Ok(Role::ResellerAdmin),
            "platform_admin" => Ok(Role::PlatformAdmin),
            other => Err(format!("unknown role `{other}`")),
        }
    }
}

/// The authenticated caller.
#[derive(Debug, Clone)]
pub struct Principal {
    pub role: Role,
    pub scope: Scope,
    /// Who: `operator:<id>`, `user:<id>` or `api_key:<id>`.
    pub subject: String,
}

impl Principal {
    /// Fails with 403 unless the principal's role is at least `role`.
    pub fn require(&self, role: Role) -> Result<(), ApiError> {
        if self.role >= role {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!(
                "this operation needs the {} role or higher",
                role.as_str()
            )))
        }
    }

    /// An end user acting on their own mailbox, e.g. from a verified signed link (report
    /// emails): the same principal a password login of that user gives.
    pub fn end_user(
        reseller_id: ResellerId,
        tenant_id: TenantId,
        user_id: UserId,
        subject: String,
    ) -> Self {
        Self {
            role: Role::User,
            scope: Scope::User {
                reseller_id,
                tenant_id,
                user_id,
            },
            subject,
        }
    }

    fn from_parts(
        role: Role,
        reseller_id: Option<ResellerId>,
        tenant_id: Option<TenantId>,
        user_id: Option<UserId>,
        subject: String,
    ) -> Result<Self, ApiError> {
        let scope = match (role, reseller_id, tenant_id, user_id) {
            (Role::PlatformAdmin, _, _, _) => Scope::Platform,
            (Role::ResellerAdmin, Some(reseller_id), _, _) => Scope::Reseller { reseller_id },
            (Role::TenantAdmin, Some(reseller_id), Some(tenant_id), _) => Scope::Tenant {
                reseller_id,
                tenant_id,
            },
            (Role::User, Some(reseller_id), Some(tenant_id), Some(user_id)) => Scope::User {
                reseller_id,
                tenant_id,
                user_id,
            },
            _ => return Err(ApiError::Unauthenticated),
        };
        Ok(Self {
            role,
            scope,
            subject,
        })
    }
}

/// Claims of a login token.
#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    role: Role,
    #[serde(skip_serializing_if = "Option::is_none")]
    reseller_id: Option<ResellerId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tenant_id: Option<TenantId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_id: Option<UserId>,
    aud: String,
    iat: i64,
    exp: i64,
}

const ACCESS_AUDIENCE: &str = "cleanmail-api";
/// Lifetime of a login token.
pub const ACCESS_TOKEN_SECONDS: i64 = 3600;
const API_KEY_PREFIX: &str = "cm_";

/// Signs and checks login tokens (HS256).
#[derive(Clone)]
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl TokenKeys {
    /// Keys from a shared secret (at least 32 bytes).
    pub fn from_secret(secret: &[u8]) -> Self {
        Self {
            encoding: EncodingKey::from_secret(secret).expect("HMAC keys accept any secret"),
            decoding: DecodingKey::from_secret(secret).expect("HMAC keys accept any secret"),
        }
    }

    fn issue(&self, principal: &Principal) -> Result<String, ApiError> {
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            sub: principal.subject.clone(),
            role: principal.role,
            reseller_id: principal.scope.reseller_id().cloned(),
            tenant_id: principal.scope.tenant_id().cloned(),
            user_id: principal.scope.user_id().cloned(),
            aud: ACCESS_AUDIENCE.to_owned(),
            iat: now,
            exp: now + ACCESS_TOKEN_SECONDS,
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| ApiError::Internal(format!("signing token: {e}")))
    }

    fn verify(&self, token: &str) -> Result<Principal, ApiError> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_audience(&[ACCESS_AUDIENCE]);
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation)
            .map_err(|_| ApiError::Unauthenticated)?;
        let c = data.claims;
        Principal::from_parts(c.role, c.reseller_id, c.tenant_id, c.user_id, c.sub)
    }
}

/// Login attempts allowed per account within [`LOGIN_WINDOW`] without a success.
pub const MAX_LOGIN_ATTEMPTS: u32 = 10;
/// The window over which [`MAX_LOGIN_ATTEMPTS`] count.
pub const LOGIN_WINDOW: Duration = Duration::from_secs(15 * 60);
/// Slows down password guessing: each account (the normalised login name, known or not) gets
/// [`MAX_LOGIN_ATTEMPTS`] attempts per [`LOGIN_WINDOW`]; a successful login starts afresh.
/// An attempt is counted before its password is checked, so parallel guesses count too. The
/// count is kept in the database ([`access::count_login_attempt`]), so every API process of
/// a deployment shares it, and it survives restarts.
async fn throttle_login(db: &Db, account: &str) -> Result<(), ApiError> {
    let window = chrono::Duration::from_std(LOGIN_WINDOW)
        .map_err(|e| ApiError::Internal(format!("login window: {e}")))?;
    let (attempts, opened) = access::count_login_attempt(db, account, window).await?;
    if attempts <= MAX_LOGIN_ATTEMPTS {
        return Ok(());
    }
    let elapsed = (cleanmail_schema::now() - opened)
        .to_std()
        .unwrap_or_default();
    let retry_after_secs = LOGIN_WINDOW.saturating_sub(elapsed).as_secs().max(1);
    Err(ApiError::RateLimited {
        detail: format!(
            "too many failed logins for this account: try again in {retry_after_secs} seconds"
        ),
        retry_after_secs,
    })
}

/// Hashes a password with argon2 (PHC string).
pub fn hash_password(password: &str) -> Result<String, ApiError> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| ApiError::Internal(format!("hashing password: {e}")))
}

fn verify_password(password: &str, phc: &str) -> bool {
    Argon2::default()
        .verify_password(password.as_bytes(), phc)
        .is_ok()
}

/// Checks a password against the policy; returns the reason it is refused.
pub fn check_password_strength(password: &str) -> Result<(), String> {
    if password.chars().count() < 10 {
        return Err("must be at least 10 characters".into());
    }
    if password.len() > 1024 {
        return Err("must be at most 1024 bytes".into());
    }
    Ok(())
}

/// A fresh API key: the secret shown once, its display prefix, and the stored hash.
pub fn generate_api_key() -> (String, String, String) {
    let secret =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(crate::random_bytes::<32>());
    let key = format!("{API_KEY_PREFIX}{secret}");
    let prefix = key.chars().take(API_KEY_PREFIX.len() + 6).collect();
    let hash = api_key_hash(&key);
    (key, prefix, hash)
}

fn api_key_hash(key: &str) -> String {
    // API keys carry 256 random bits, so a fast hash is as strong as a slow one here.
    let digest = sha2::Sha256::digest(key.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

fn api_key_principal(key: &ApiKey) -> Result<Principal, ApiError> {
    let role: Role = key.role.parse().map_err(|_| ApiError::Unauthenticated)?;
    Principal::from_parts(
        role,
        key.reseller_id.clone(),
        key.tenant_id.clone(),
        None,
        format!("api_key:{}", key.id),
    )
}

impl AppState {
    /// Turns an `Authorization` header value into a principal.
    pub async fn authenticate(&self, authorization: Option<&str>) -> Result<Principal, ApiError> {
        let value = authorization.ok_or(ApiError::Unauthenticated)?;
        let (scheme, credential) = value.split_once(' ').ok_or(ApiError::Unauthenticated)?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(ApiError::Unauthenticated);
        }
        let credential = credential.trim();
        if credential.starts_with(API_KEY_PREFIX) {
            let key = match access::unscoped_live_api_key_by_hash_for_auth(
                &self.db,
                &api_key_hash(credential),
            )
            .await
            {
                Ok(key) => key,
                Err(StoreError::NotFound) => return Err(ApiError::Unauthenticated),
                Err(other) => return Err(other.into()),
            };
            if let Err(err) = access::touch_api_key(&self.db, &key).await {
                tracing::warn!(%err, "recording API key use");
            }
            api_key_principal(&key)
        } else {
            self.tokens.verify(credential)
        }
    }

    /// Checks an email and password (operators first, then mailbox users) and issues a token.
    pub async fn login(&self, email: &str, password: &str) -> Result<String, ApiError> {
        let email = email.trim().to_lowercase();
        throttle_login(&self.db, &email).await?;
        let principal = match access::unscoped_operator_by_email_for_login(&self.db, &email).await {
            Ok(op) => match &op.password_hash {
                Some(hash) if verify_password(password, hash) => {
                    let role: Role = op.role.parse().map_err(ApiError::Internal)?;
                    Some(Principal::from_parts(
                        role,
                        op.reseller_id.clone(),
                        None,
                        None,
                        format!("operator:{}", op.id),
                    )?)
                }
                _ => None,
            },
            Err(StoreError::NotFound) => {
                let address = cleanmail_core::address::EmailAddress::parse(&email)
                    .map(|a| a.to_string())
                    .unwrap_or(email.clone());
                match users::unscoped_by_address_for_login(&self.db, &address).await {
                    Ok(user) => match &user.password_hash {
                        Some(hash) if verify_password(password, hash) => {
                            let tenant = cleanmail_schema::store::tenants::get(
                                &self.db,
                                &Scope::Platform,
                                &user.tenant_id,
                            )
                            .await?;
                            let role: Role = user.role.parse().map_err(ApiError::Internal)?;
                            let user_id = (role == Role::User).then(|| user.id.clone());
                            Some(Principal::from_parts(
                                role,
                                Some(tenant.reseller_id),
                                Some(user.tenant_id.clone()),
                                user_id,
                                format!("user:{}", user.id),
                            )?)
                        }
                        _ => None,
                    },
                    Err(StoreError::NotFound) => None,
                    Err(other) => return Err(other.into()),
                }
            }
            Err(other) => return Err(other.into()),
        };
        match principal {
            Some(principal) => {
                if let Err(err) = access::clear_login_attempts(&self.db, &email).await {
                    tracing::warn!(%err, "clearing the failed logins of an account");
                }
                self.tokens.issue(&principal)
            }
            None => Err(ApiError::Unauthenticated),
        }
    }
}
