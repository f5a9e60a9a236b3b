//! Typed ids: opaque text in the database, distinct types across crate boundaries.

use diesel::backend::Backend as DieselBackend;
use diesel::deserialize::{self, FromSql, FromSqlRow};
use diesel::expression::AsExpression;
use diesel::serialize::{self, Output, ToSql};
use diesel::sql_types::Text;

macro_rules! typed_id {
    ($($(#[$doc:meta])* $name:ident),* $(,)?) => {$(
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, AsExpression, FromSqlRow)]
        #[derive(serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        #[diesel(sql_type = Text)]
        pub struct $name(pub String);

        impl $name {
            /// A fresh id.
            pub fn new() -> Self {
                Self(crate::new_id())
            }

            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<String> for $name {
            fn from(value: String) -> Self {
                Self(value)
            }
        }

        impl<DB> ToSql<Text, DB> for $name
        where
            DB: DieselBackend,
            str: ToSql<Text, DB>,
        {
            fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, DB>) -> serialize::Result {
                <str as ToSql<Text, DB>>::to_sql(self.0.as_str(), out)
            }
        }

        impl<DB> FromSql<Text, DB> for $name
        where
            DB: DieselBackend,
            String: FromSql<Text, DB>,
        {
            fn from_sql(bytes: DB::RawValue<'_>) -> deserialize::Result<Self> {
                String::from_sql(bytes).map(Self)
            }
        }
    )*};
}

typed_id!(
    /// Id of a reseller.
    ResellerId,
    /// Id of a tenant (customer).
    TenantId,
    /// Id of a domain.
    DomainId,
    /// Id of a user (mailbox).
    UserId,
    /// Id of an alias.
    AliasId,
    /// Id of an API key.
    ApiKeyId,
    /// Id of an operator (platform or reseller staff).
    OperatorId,
    /// Id of a filtering policy.
    PolicyId,
    /// Id of an inbound message's log entry (also the SMTP queue id).
    MessageLogId,
    /// Id of one recipient's copy of a message (quarantine and retention store).
    MessageId,
    /// Id (and idempotency key) of a queued job.
    JobId,
    /// Id of a domain or tenant report definition.
    ReportDefinitionId,
);
