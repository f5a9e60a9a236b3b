//! Reads of stored messages (quarantine and retention store), scoped.

use diesel::{ExpressionMethods as _, QueryDsl as _, SelectableHelper as _};

use crate::db::with_conn;
use crate::models::{Message, MessageLogEntry, TrafficCounter};
use crate::tables::{message_log, messages, traffic_counters};
use crate::{Db, Page, PageRequest, Scope, StoreError, UserId};

/// Filters for listing messages.
#[derive(Debug, Clone, Default)]
pub struct MessageFilter {
    /// `quarantined`, `queued`, `deferred`, `delivered`, `bounced`.
    pub state: Option<String>,
    pub user_id: Option<UserId>,
}

/// Messages visible in `scope`, newest first.
pub async fn list(
    db: &Db,
    scope: &Scope,
    filter: &MessageFilter,
    page: &PageRequest,
) -> Result<Page<Message>, StoreError> {
    let rows = with_conn!(db, conn => {
        let mut query = crate::filter_tenant_scope!(messages::table.into_boxed(), scope, messages::tenant_id);
        if let Some(user_id) = scope.user_id() {
            query = query.filter(messages::user_id.eq(user_id.clone()));
        }
        if let Some(user_id) = &filter.user_id {
            query = query.filter(messages::user_id.eq(user_id.clone()));
        }
        if let Some(state) = &filter.state {
            query = query.filter(messages::state.eq(state.clone()));
        }
        if let Some(after) = &page.after {
            query = query.filter(messages::id.lt(after.clone()));
        }
        query
            .order((messages::received_at.desc(), messages::id.desc()))
            .limit(page.limit() + 1)
            .select(Message::as_select())
            .load(conn)
            .await?
    });
    Ok(page.finish(rows, |m| m.id.0.clone()))
}

/// Message log entries visible in `scope`, newest first (at most `limit`).
pub async fn log(db: &Db, scope: &Scope, limit: i64) -> Result<Vec<MessageLogEntry>, StoreError> {
    with_conn!(db, conn => {
        let query = crate::filter_tenant_scope!(message_log::table.into_boxed(), scope, message_log::tenant_id);
        Ok(query
            .order((message_log::received_at.desc(), message_log::id.desc()))
            .limit(limit)
            .select(MessageLogEntry::as_select())
            .load(conn)
            .await?)
    })
}

/// Traffic counters visible in `scope`, newest hour first (at most `limit`).
pub async fn traffic(
    db: &Db,
    scope: &Scope,
    limit: i64,
) -> Result<Vec<TrafficCounter>, StoreError> {
    with_conn!(db, conn => {
        let query = crate::filter_tenant_scope!(traffic_counters::table.into_boxed(), scope, traffic_counters::tenant_id);
        Ok(query
            .order(traffic_counters::hour.desc())
            .limit(limit)
            .select(TrafficCounter::as_select())
            .load(conn)
            .await?)
    })
}
