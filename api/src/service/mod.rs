//! The service layer: every operation of the API, once. REST handlers and GraphQL resolvers
//! are thin adapters over these functions; authorization happens here (role checks) and in
//! the store (scope filters).

pub mod aliases;
pub mod api_keys;
pub mod dkim;
pub mod domains;
pub mod import;
pub mod message_log;
pub mod policies;
pub mod quarantine;
pub(crate) mod rendering;
pub mod reports;
pub mod resellers;
pub mod tenants;
pub mod users;
pub mod webmail;

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// Stored UTC timestamps as API timestamps.
pub(crate) fn utc(t: NaiveDateTime) -> DateTime<Utc> {
    t.and_utc()
}

/// Cursor pagination parameters.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// `next_cursor` of the previous page.
    pub after: Option<String>,
    /// Items per page, 1 to 500 (default 50).
    pub limit: Option<i64>,
}

impl PageParams {
    pub(crate) fn request(&self) -> cleanmail_schema::PageRequest {
        cleanmail_schema::PageRequest {
            after: self.after.clone(),
            limit: self.limit,
        }
    }
}

/// One page of a list, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass as `after` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    pub(crate) fn from_store<S>(page: cleanmail_schema::Page<S>, f: impl FnMut(S) -> T) -> Self {
        let page = page.map(f);
        Self {
            items: page.items,
            next_cursor: page.next_cursor,
        }
    }
}

/// Trims a required text field, recording an error if it is empty or too long.
pub(crate) fn required_text(
    v: &mut crate::Validator,
    field: &str,
    value: &str,
    max: usize,
) -> String {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        v.error(field, "is required");
    } else if trimmed.chars().count() > max {
        v.error(field, format!("must be at most {max} characters"));
    }
    trimmed.to_owned()
}
