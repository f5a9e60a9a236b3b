//! Persistence layer: one portable diesel schema (`tables`) served by SQLite (embedded
//! default, through diesel-async's sync wrapper) and PostgreSQL (diesel-async), with
//! migrations embedded per backend.
//!
//! Every query that touches tenant data takes a [`Scope`] and filters through it: the scope
//! is the one choke point of tenancy. A row outside the caller's scope is reported exactly
//! like a missing row ([`StoreError::NotFound`]).

pub mod blobs;
mod db;
mod error;
mod ids;
pub mod models;
mod scope;
pub mod store;
pub mod tables;

pub use db::{Backend, Db, Pool};
pub use error::StoreError;
pub use ids::*;
pub use scope::Scope;

/// The current instant, at the precision stored (microseconds, UTC).
pub fn now() -> chrono::NaiveDateTime {
    let now = chrono::Utc::now().naive_utc();
    chrono::SubsecRound::trunc_subsecs(now, 6)
}

/// Cursor-paginated page of rows, oldest first.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass back as `after` to get the next page; `None` on the last page.
    pub next_cursor: Option<String>,
}

/// Where a list starts and how long it is.
#[derive(Debug, Clone, Default)]
pub struct PageRequest {
    /// The `next_cursor` of the previous page.
    pub after: Option<String>,
    /// Rows per page (1..=500; default 50).
    pub limit: Option<i64>,
}

impl PageRequest {
    pub const DEFAULT_LIMIT: i64 = 50;
    pub const MAX_LIMIT: i64 = 500;

    /// The limit clamped to the allowed range.
    pub fn limit(&self) -> i64 {
        self.limit
            .unwrap_or(Self::DEFAULT_LIMIT)
            .clamp(1, Self::MAX_LIMIT)
    }

    /// Builds the page from `limit + 1` fetched rows (the extra one says there is more).
    pub fn finish<T>(&self, mut rows: Vec<T>, cursor_of: impl Fn(&T) -> String) -> Page<T> {
        let limit = self.limit() as usize;
        let next_cursor = if rows.len() > limit {
            rows.truncate(limit);
            rows.last().map(&cursor_of)
        } else {
            None
        };
        Page {
            items: rows,
            next_cursor,
        }
    }
}

/// A new opaque id (UUID v7: unique and roughly time-ordered, so ids sort by creation).
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

impl<T> Page<T> {
    /// A page with nothing on it.
    pub fn empty() -> Self {
        Self {
            items: Vec::new(),
            next_cursor: None,
        }
    }

    /// Converts every item, keeping the cursor.
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            next_cursor: self.next_cursor,
        }
    }
}
