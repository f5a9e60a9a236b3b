//! `StoreError`: the one error type of the persistence layer.

use diesel::result::{DatabaseErrorKind, Error as DieselError};

/// What can go wrong reading or writing the database.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No such row, or a row outside the caller's scope (the two are indistinguishable).
    #[error("not found")]
    NotFound,
    /// A uniqueness rule was broken (e.g. an address that already exists).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The write references a row that does not exist or is still referenced.
    #[error("constraint violated: {0}")]
    Constraint(String),
    /// An input the query cannot use (e.g. a malformed pagination cursor).
    #[error("invalid input: {0}")]
    Invalid(String),
    /// The database could not be reached or the pool is exhausted.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// Anything else from the database.
    #[error("database error: {0}")]
    Database(#[source] DieselError),
}

impl From<DieselError> for StoreError {
    fn from(err: DieselError) -> Self {
        match err {
            DieselError::NotFound => Self::NotFound,
            DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, info) => {
                Self::Conflict(info.message().to_owned())
            }
            DieselError::DatabaseError(DatabaseErrorKind::ForeignKeyViolation, info) => {
                Self::Constraint(info.message().to_owned())
            }
            DieselError::DatabaseError(DatabaseErrorKind::ClosedConnection, info) => {
                Self::Unavailable(info.message().to_owned())
            }
            other => Self::Database(other),
        }
    }
}

impl StoreError {
    pub(crate) fn pool_error(err: impl std::fmt::Display) -> Self {
        Self::Unavailable(err.to_string())
    }
}
