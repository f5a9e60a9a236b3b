//! The quarantine and the retention store (backup webmail): scoped reads and the actions on
//! stored copies (release, delete, redistribute, classifier feedback, release requests).
//!
//! A `User` scope sees only its own copies (aliases were resolved to the user at ingest);
//! a tenant admin its tenant's; a reseller its tenants'. Lists are newest first with a
//! keyset cursor over `(received_at, id)`, served by the `(…, state, received_at, id)`
//! indexes, so a deep page costs what the first one does.

use std::collections::BTreeMap;

use chrono::NaiveDateTime;
use diesel::{
    BoolExpressionMethods as _, EscapeExpressionMethods as _, ExpressionMethods as _,
    OptionalExtension as _, QueryDsl as _, SelectableHelper as _, TextExpressionMethods as _,
};

use crate::db::with_conn;
use crate::models::{ClassifierFeedback, Message, MessageLogEntry, ReleaseRequest, TrafficCounter};
use crate::store::mail::{DeliverMessage, unused_blob_keys};
use crate::store::users::escape_like;
use crate::tables::{
    classifier_feedback, jobs, message_log, messages, release_requests, traffic_counters,
};
use crate::{Db, JobId, MessageId, Page, PageRequest, Scope, StoreError, UserId};

diesel::define_sql_function! {
    /// SQL `lower(text)` (both backends).
    fn lower(x: diesel::sql_types::Text) -> diesel::sql_types::Text;
}

/// Which stored copies a list covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Folder {
    /// Held in quarantine.
    Quarantine,
    /// Retained copies of delivered (or queued, deferred, bounced) mail: the backup webmail.
    Retained,
}

/// Filters for listing messages; text filters are case-insensitive substrings.
#[derive(Debug, Clone, Default)]
pub struct MessageFilter {
    /// `quarantined`, `queued`, `deferred`, `delivered`, `bounced`.
    pub state: Option<String>,
    pub folder: Option<Folder>,
    pub user_id: Option<UserId>,
    /// Substring of the recipient address.
    pub recipient: Option<String>,
    /// Substring of the envelope sender or the From header.
    pub sender: Option<String>,
    /// Substring of the subject.
    pub subject: Option<String>,
    /// `clean`, `newsletter`, `spam`, `phishing` or `virus`.
    pub category: Option<String>,
    pub min_score: Option<f64>,
    pub max_score: Option<f64>,
    /// Received at or after.
    pub received_after: Option<NaiveDateTime>,
    /// Received before.
    pub received_before: Option<NaiveDateTime>,
}

/// The keyset cursor of a message list: `<received_at µs>.<id>`.
pub fn cursor(received_at: NaiveDateTime, id: &str) -> String {
    format!("{}.{id}", received_at.and_utc().timestamp_micros())
}

fn cursor_of<T: Newest>(row: &T) -> String {
    let (received_at, id) = row.newest_key();
    cursor(received_at, id)
}

fn parse_cursor(cursor: &str) -> Result<(NaiveDateTime, String), StoreError> {
    let invalid = || StoreError::Invalid("malformed cursor: pass back a next_cursor".into());
    let (micros, id) = cursor.split_once('.').ok_or_else(invalid)?;
    let micros: i64 = micros.parse().map_err(|_| invalid())?;
    let at = chrono::DateTime::from_timestamp_micros(micros)
        .ok_or_else(invalid)?
        .naive_utc();
    if id.is_empty() {
        return Err(invalid());
    }
    Ok((at, id.to_owned()))
}

fn like_pattern(text: &str) -> String {
    format!("%{}%", escape_like(&text.to_lowercase()))
}

/// Messages visible in `scope`: the tenant filter, narrowed to the user's own copies for a
/// `User` scope.
macro_rules! scoped_messages {
    ($scope:expr) => {{
        let query =
            crate::filter_tenant_scope!(messages::table.into_boxed(), $scope, messages::tenant_id);
        match $scope.user_id() {
            Some(user_id) => query.filter(messages::user_id.eq(user_id.clone())),
            None => query,
        }
    }};
}

/// Adds the search filters of a [`MessageFilter`] that the stored copies (`messages`) and the
/// message log (`message_log`) share: recipient (`$recipient`), sender, subject, category,
/// score and time range.
macro_rules! search_filters {
    ($query:ident, $filter:expr, $table:ident, $recipient:expr) => {
        if let Some(recipient) = &$filter.recipient {
            $query = $query.filter($recipient.like(like_pattern(recipient)).escape('\\'));
        }
        if let Some(sender) = &$filter.sender {
            let pattern = like_pattern(sender);
            $query = $query.filter(
                lower($table::mail_from)
                    .like(pattern.clone())
                    .escape('\\')
                    .or(lower($table::from_header).like(pattern).escape('\\')),
            );
        }
        if let Some(subject) = &$filter.subject {
            $query = $query.filter(
                lower($table::subject)
                    .like(like_pattern(subject))
                    .escape('\\'),
            );
        }
        if let Some(category) = &$filter.category {
            $query = $query.filter($table::category.eq(category.clone()));
        }
        if let Some(min) = $filter.min_score {
            $query = $query.filter($table::score.ge(min));
        }
        if let Some(max) = $filter.max_score {
            $query = $query.filter($table::score.le(max));
        }
        if let Some(from) = $filter.received_after {
            $query = $query.filter($table::received_at.ge(from));
        }
        if let Some(until) = $filter.received_before {
            $query = $query.filter($table::received_at.lt(until));
        }
    };
}

/// A row of a list kept newest first: its keyset, the time of arrival then the id.
trait Newest {
    fn newest_key(&self) -> (NaiveDateTime, &str);
}

impl Newest for Message {
    fn newest_key(&self) -> (NaiveDateTime, &str) {
        (self.received_at, self.id.as_str())
    }
}

impl Newest for MessageLogEntry {
    fn newest_key(&self) -> (NaiveDateTime, &str) {
        (self.received_at, &self.id.0)
    }
}

/// The scopes that a list of `scope` is read in, each with its own `LIMIT`: one per tenant
/// for a reseller, else `scope` itself. A reseller's list is merged from one index range scan
/// per tenant ([`newest`]): a single `tenant_id IN (…)` query would make PostgreSQL read and
/// sort every row of the reseller, or walk the newest rows of every tenant on the platform
/// until it has found enough of them.
async fn list_scopes(db: &Db, scope: &Scope) -> Result<Vec<Scope>, StoreError> {
    let Scope::Reseller { reseller_id } = scope else {
        return Ok(vec![scope.clone()]);
    };
    let tenant_ids: Vec<crate::TenantId> = with_conn!(db, conn => {
        crate::tables::tenants::table
            .filter(crate::tables::tenants::reseller_id.eq(reseller_id.clone()))
            .select(crate::tables::tenants::id)
            .load(conn)
            .await?
    });
    Ok(tenant_ids
        .into_iter()
        .map(|tenant_id| Scope::Tenant {
            reseller_id: reseller_id.clone(),
            tenant_id,
        })
        .collect())
}

/// The newest `fetch` of the rows read in each of [`list_scopes`], newest first.
fn newest<T: Newest>(mut rows: Vec<T>, fetch: i64) -> Vec<T> {
    rows.sort_by(|a, b| b.newest_key().cmp(&a.newest_key()));
    rows.truncate(usize::try_from(fetch).unwrap_or(0));
    rows
}

/// Messages visible in `scope`, newest first.
pub async fn list(
    db: &Db,
    scope: &Scope,
    filter: &MessageFilter,
    page: &PageRequest,
) -> Result<Page<Message>, StoreError> {
    let after = page.after.as_deref().map(parse_cursor).transpose()?;
    let fetch = page.limit() + 1;
    let mut rows = Vec::new();
    for scope in list_scopes(db, scope).await? {
        rows.extend(load_page(db, &scope, filter, after.as_ref(), fetch).await?);
    }
    Ok(page.finish(newest(rows, fetch), cursor_of))
}

/// Up to `fetch` rows of one scope after the cursor, newest first.
async fn load_page(
    db: &Db,
    scope: &Scope,
    filter: &MessageFilter,
    after: Option<&(NaiveDateTime, String)>,
    fetch: i64,
) -> Result<Vec<Message>, StoreError> {
    let rows = with_conn!(db, conn => {
        let mut query = scoped_messages!(scope);
        if let Some(user_id) = &filter.user_id {
            query = query.filter(messages::user_id.eq(user_id.clone()));
        }
        if let Some(state) = &filter.state {
            query = query.filter(messages::state.eq(state.clone()));
        }
        match filter.folder {
            Some(Folder::Quarantine) => query = query.filter(Message::quarantined()),
            Some(Folder::Retained) => query = query.filter(messages::state.eq_any(Message::RETAINED)),
            None => {}
        }
        search_filters!(query, filter, messages, messages::recipient);
        if let Some((at, id)) = after {
            // `received_at <= at` bounds the index range; the OR only settles ties.
            query = query.filter(messages::received_at.le(*at)).filter(
                messages::received_at.lt(*at).or(messages::id.lt(id.clone())),
            );
        }
        query
            .order((messages::received_at.desc(), messages::id.desc()))
            .limit(fetch)
            .select(Message::as_select())
            .load(conn)
            .await?
    });
    Ok(rows)
}

/// One stored copy, if visible in `scope`.
pub async fn get(db: &Db, scope: &Scope, id: &MessageId) -> Result<Message, StoreError> {
    with_conn!(db, conn => {
        Ok(scoped_messages!(scope)
            .filter(messages::id.eq(id.clone()))
            .select(Message::as_select())
            .first(conn)
            .await?)
    })
}

/// Records classifier feedback for one copy (once per copy and kind) and enqueues its
/// [`LearnFeedback`](crate::store::learning::LearnFeedback) job.
macro_rules! insert_feedback {
    ($conn:ident, $message:expr, $kind:expr, $by:expr, $now:expr) => {{
        let message: &Message = $message;
        let row = ClassifierFeedback {
            id: crate::new_id(),
            tenant_id: message.tenant_id.clone(),
            message_id: message.id.clone(),
            log_id: message.log_id.clone(),
            user_id: message.user_id.clone(),
            kind: $kind.to_owned(),
            category: message.category.clone(),
            score: message.score,
            mail_from: message.mail_from.clone(),
            subject: message.subject.clone(),
            blob_key: message.blob_key.clone(),
            created_by: $by.to_owned(),
            created_at: $now,
        };
        let inserted = diesel::insert_into(classifier_feedback::table)
            .values(&row)
            .on_conflict_do_nothing()
            .execute($conn)
            .await?;
        if inserted == 1 {
            let job = crate::store::learning::LearnFeedback::job(
                &message.id.0,
                &message.tenant_id,
                $kind,
                &message.mail_from,
                &message.blob_key,
                $now,
            );
            diesel::insert_into(crate::tables::jobs::table)
                .values(&job)
                .on_conflict_do_nothing()
                .execute($conn)
                .await?;
        }
    }};
}

/// What a release did.
#[derive(Debug, Clone)]
pub struct Released {
    /// The copies released (now `queued` for delivery).
    pub messages: Vec<Message>,
    /// Delivery jobs enqueued.
    pub jobs: usize,
}

/// The body of a release, inside the caller's transaction: see [`release`]. Evaluates to
/// `Result<Released, StoreError>`.
macro_rules! release_copies {
    ($conn:ident, $scope:expr, $id:expr, $recipients:expr, $by:expr, $now:expr) => {{
        let conn = &mut *$conn;
        let target: Message = scoped_messages!($scope)
            .filter(messages::id.eq($id.clone()))
            .select(Message::as_select())
            .first(conn)
            .await?;
        if target.state != Message::QUARANTINED {
            return Err(StoreError::Conflict(format!(
                "the message is not in quarantine (it is {})",
                target.state
            )));
        }
        let held: Vec<Message> = scoped_messages!($scope)
            .filter(messages::log_id.eq(target.log_id.clone()))
            .filter(Message::quarantined())
            .select(Message::as_select())
            .load(conn)
            .await?;
        let chosen: Vec<Message> = match $recipients {
            None => held,
            Some(wanted) => {
                let wanted: Vec<String> = wanted.iter().map(|r| r.trim().to_lowercase()).collect();
                if let Some(unknown) = wanted
                    .iter()
                    .find(|w| !held.iter().any(|m| &m.recipient == *w))
                {
                    return Err(StoreError::Invalid(format!(
                        "{unknown} is not a quarantined recipient of this message"
                    )));
                }
                held.into_iter()
                    .filter(|m| wanted.contains(&m.recipient))
                    .collect()
            }
        };
        let mut by_domain: BTreeMap<crate::DomainId, Vec<&Message>> = BTreeMap::new();
        for message in &chosen {
            by_domain
                .entry(message.domain_id.clone())
                .or_default()
                .push(message);
        }
        let mut jobs_added = 0;
        for (domain_id, copies) in &by_domain {
            let first = copies[0];
            let job = DeliverMessage {
                log_id: first.log_id.clone(),
                tenant_id: first.tenant_id.clone(),
                domain_id: Some(domain_id.clone()),
                blob_key: first.blob_key.clone(),
                mail_from: first.mail_from.clone(),
                rcpt_to: copies.iter().map(|m| m.recipient.clone()).collect(),
                subject_prefix: None,
                arrived_at: $now,
                dsn: false,
            }
            .into_job(JobId(format!("release:{}", first.id)))?;
            jobs_added += diesel::insert_into(jobs::table)
                .values(&job)
                .on_conflict_do_nothing()
                .execute(conn)
                .await?;
        }
        let ids: Vec<MessageId> = chosen.iter().map(|m| m.id.clone()).collect();
        diesel::update(messages::table.filter(messages::id.eq_any(ids.clone())))
            .set((
                messages::state.eq("queued"),
                messages::action.eq("released"),
                messages::updated_at.eq($now),
            ))
            .execute(conn)
            .await?;
        for message in &chosen {
            insert_feedback!(conn, message, "ham", $by, $now);
        }
        let messages: Vec<Message> = messages::table
            .filter(messages::id.eq_any(ids))
            .order(messages::id.asc())
            .select(Message::as_select())
            .load(conn)
            .await?;
        Ok::<_, StoreError>(Released {
            messages,
            jobs: jobs_added,
        })
    }};
}

/// Releases a quarantined message visible in `scope`: the quarantined copies of the same
/// message in scope (a user: their own), or only those for `recipients`, are delivered
/// through the normal delivery path (one `DeliverMessage` job per downstream domain) and
/// recorded as `ham` feedback for the classifier, all in one transaction.
pub async fn release(
    db: &Db,
    scope: &Scope,
    id: &MessageId,
    recipients: Option<&[String]>,
    by: &str,
) -> Result<Released, StoreError> {
    let now = crate::now();
    with_conn!(db, conn => {
        conn.transaction(async |conn| {
            release_copies!(conn, scope, id, recipients, by, now)
        })
        .await
    })
}

/// Records that a message visible in `scope` is spam (classifier feedback); idempotent.
pub async fn report_spam(
    db: &Db,
    scope: &Scope,
    id: &MessageId,
    by: &str,
) -> Result<Message, StoreError> {
    let now = crate::now();
    with_conn!(db, conn => {
        let message: Message = scoped_messages!(scope)
            .filter(messages::id.eq(id.clone()))
            .select(Message::as_select())
            .first(conn)
            .await?;
        insert_feedback!(conn, &message, "spam", by, now);
        Ok(message)
    })
}

/// Classifier feedback visible in `scope`, newest first (at most `limit`).
pub async fn feedback(
    db: &Db,
    scope: &Scope,
    limit: i64,
) -> Result<Vec<ClassifierFeedback>, StoreError> {
    with_conn!(db, conn => {
        let mut query = crate::filter_tenant_scope!(
            classifier_feedback::table.into_boxed(),
            scope,
            classifier_feedback::tenant_id
        );
        if let Some(user_id) = scope.user_id() {
            query = query.filter(classifier_feedback::user_id.eq(user_id.clone()));
        }
        Ok(query
            .order((classifier_feedback::created_at.desc(), classifier_feedback::id.desc()))
            .limit(limit)
            .select(ClassifierFeedback::as_select())
            .load(conn)
            .await?)
    })
}

/// Deletes a copy visible in `scope` from `folder`; returns the blob keys nothing refers to
/// any more (the caller deletes those blobs after this commit).
pub async fn delete(
    db: &Db,
    scope: &Scope,
    id: &MessageId,
    folder: Folder,
) -> Result<Vec<String>, StoreError> {
    with_conn!(db, conn => {
        conn.transaction(async |conn| {
            let message: Message = scoped_messages!(scope)
                .filter(messages::id.eq(id.clone()))
                .select(Message::as_select())
                .first(conn)
                .await?;
            let in_folder = match folder {
                Folder::Quarantine => message.state == Message::QUARANTINED,
                Folder::Retained => Message::RETAINED.contains(&message.state.as_str()),
            };
            if !in_folder {
                return Err(StoreError::NotFound);
            }
            diesel::delete(messages::table.find(message.id.clone())).execute(conn).await?;
            Ok::<_, StoreError>(unused_blob_keys!(conn, vec![message.blob_key]))
        })
        .await
    })
}

/// Re-delivers a retained copy visible in `scope` to its recipient's mailbox (a new
/// `DeliverMessage` job); the copy goes back to `queued` until the delivery is recorded.
pub async fn redistribute(db: &Db, scope: &Scope, id: &MessageId) -> Result<Message, StoreError> {
    let now = crate::now();
    with_conn!(db, conn => {
        conn.transaction(async |conn| {
            let message: Message = scoped_messages!(scope)
                .filter(messages::id.eq(id.clone()))
                .select(Message::as_select())
                .first(conn)
                .await?;
            if !Message::RETAINED.contains(&message.state.as_str()) {
                return Err(StoreError::NotFound);
            }
            if matches!(message.state.as_str(), "queued" | "deferred") {
                return Err(StoreError::Conflict("the message is still being delivered".into()));
            }
            let job = DeliverMessage {
                log_id: message.log_id.clone(),
                tenant_id: message.tenant_id.clone(),
                domain_id: Some(message.domain_id.clone()),
                blob_key: message.blob_key.clone(),
                mail_from: message.mail_from.clone(),
                rcpt_to: vec![message.recipient.clone()],
                subject_prefix: None,
                arrived_at: now,
                dsn: false,
            }
            .into_job(JobId(format!("redistribute:{}:{}", message.id, crate::new_id())))?;
            diesel::insert_into(jobs::table).values(&job).execute(conn).await?;
            diesel::update(messages::table.find(message.id.clone()))
                .set((messages::state.eq("queued"), messages::updated_at.eq(now)))
                .execute(conn)
                .await?;
            Ok::<_, StoreError>(
                messages::table
                    .find(message.id)
                    .select(Message::as_select())
                    .first(conn)
                    .await?,
            )
        })
        .await
    })
}

/// Deletes the retained copies (not quarantined ones, not mail still being delivered) of
/// `users` in the tenant of `scope`, when their backup webmail was switched off; returns the
/// blob keys nothing refers to any more.
pub async fn purge_retained(
    db: &Db,
    scope: &Scope,
    users: &[UserId],
) -> Result<Vec<String>, StoreError> {
    if users.is_empty() {
        return Ok(Vec::new());
    }
    with_conn!(db, conn => {
        conn.transaction(async |conn| {
            let ids_and_keys: Vec<(MessageId, String)> = scoped_messages!(scope)
                .filter(messages::user_id.eq_any(users.to_vec()))
                .filter(messages::state.eq_any(["delivered", "bounced"]))
                .select((messages::id, messages::blob_key))
                .load(conn)
                .await?;
            let (ids, keys): (Vec<MessageId>, Vec<String>) = ids_and_keys.into_iter().unzip();
            for chunk in ids.chunks(500) {
                diesel::delete(messages::table.filter(messages::id.eq_any(chunk.to_vec())))
                    .execute(conn)
                    .await?;
            }
            Ok::<_, StoreError>(unused_blob_keys!(conn, keys))
        })
        .await
    })
}

/// Users of the tenant of `scope` that have retained copies.
pub async fn users_with_retained(db: &Db, scope: &Scope) -> Result<Vec<UserId>, StoreError> {
    with_conn!(db, conn => {
        Ok(scoped_messages!(scope)
            .filter(messages::state.eq_any(["delivered", "bounced"]))
            .select(messages::user_id)
            .distinct()
            .load(conn)
            .await?)
    })
}

// ---- release requests ----

/// Release request states.
pub const REQUEST_PENDING: &str = "pending";
pub const REQUEST_APPROVED: &str = "approved";
pub const REQUEST_DENIED: &str = "denied";

/// Records a user's request to release a quarantined copy visible in `scope` (one request
/// per copy: asking again while one is pending returns it).
pub async fn request_release(
    db: &Db,
    scope: &Scope,
    id: &MessageId,
    by: &str,
    comment: &str,
) -> Result<ReleaseRequest, StoreError> {
    let message = get(db, scope, id).await?;
    if message.state != Message::QUARANTINED {
        return Err(StoreError::Conflict(format!(
            "the message is not in quarantine (it is {})",
            message.state
        )));
    }
    let row = ReleaseRequest {
        id: crate::new_id(),
        tenant_id: message.tenant_id.clone(),
        message_id: message.id.clone(),
        user_id: message.user_id.clone(),
        state: REQUEST_PENDING.to_owned(),
        requested_by: by.to_owned(),
        comment: comment.to_owned(),
        decided_by: None,
        created_at: crate::now(),
        decided_at: None,
    };
    with_conn!(db, conn => {
        diesel::insert_into(release_requests::table)
            .values(&row)
            .on_conflict_do_nothing()
            .execute(conn)
            .await?;
        let stored: ReleaseRequest = release_requests::table
            .filter(release_requests::message_id.eq(message.id.clone()))
            .select(ReleaseRequest::as_select())
            .first(conn)
            .await?;
        if stored.state == REQUEST_DENIED {
            return Err(StoreError::Conflict("a release of this message was denied".into()));
        }
        Ok(stored)
    })
}

macro_rules! scoped_requests {
    ($scope:expr) => {{
        let query = crate::filter_tenant_scope!(
            release_requests::table.into_boxed(),
            $scope,
            release_requests::tenant_id
        );
        match $scope.user_id() {
            Some(user_id) => query.filter(release_requests::user_id.eq(user_id.clone())),
            None => query,
        }
    }};
}

/// Release requests visible in `scope` (optionally in one state), newest first.
pub async fn release_requests(
    db: &Db,
    scope: &Scope,
    state: Option<&str>,
    page: &PageRequest,
) -> Result<Page<ReleaseRequest>, StoreError> {
    let rows = with_conn!(db, conn => {
        let mut query = scoped_requests!(scope);
        if let Some(state) = state {
            query = query.filter(release_requests::state.eq(state.to_owned()));
        }
        if let Some(after) = &page.after {
            query = query.filter(release_requests::id.lt(after.clone()));
        }
        query
            .order(release_requests::id.desc())
            .limit(page.limit() + 1)
            .select(ReleaseRequest::as_select())
            .load(conn)
            .await?
    });
    Ok(page.finish(rows, |r| r.id.clone()))
}

/// One release request, if visible in `scope`.
pub async fn release_request(
    db: &Db,
    scope: &Scope,
    id: &str,
) -> Result<ReleaseRequest, StoreError> {
    with_conn!(db, conn => {
        Ok(scoped_requests!(scope)
            .filter(release_requests::id.eq(id.to_owned()))
            .select(ReleaseRequest::as_select())
            .first(conn)
            .await?)
    })
}

/// Decides a pending release request visible in `scope`: approving releases the copy to
/// its recipient (as [`release`] does) in the same transaction that marks the request, so
/// a request is never approved without its message leaving, nor released twice. Returns
/// the request and, on approval, the release. `Conflict` when it was already decided or
/// the copy is no longer in quarantine.
pub async fn decide_release_request(
    db: &Db,
    scope: &Scope,
    id: &str,
    approve: bool,
    by: &str,
) -> Result<(ReleaseRequest, Option<Released>), StoreError> {
    let request = release_request(db, scope, id).await?;
    let now = crate::now();
    with_conn!(db, conn => {
        conn.transaction(async |conn| {
            let changed = diesel::update(
                release_requests::table
                    .find(request.id.clone())
                    .filter(release_requests::state.eq(REQUEST_PENDING)),
            )
            .set((
                release_requests::state.eq(if approve { REQUEST_APPROVED } else { REQUEST_DENIED }),
                release_requests::decided_by.eq(Some(by.to_owned())),
                release_requests::decided_at.eq(Some(now)),
            ))
            .execute(conn)
            .await?;
            if changed == 0 {
                return Err(StoreError::Conflict(format!(
                    "the request was already {}",
                    request.state
                )));
            }
            let released = if approve {
                let copy: Message = scoped_messages!(scope)
                    .filter(messages::id.eq(request.message_id.clone()))
                    .select(Message::as_select())
                    .first(conn)
                    .await?;
                let recipients = [copy.recipient];
                let recipients = Some(&recipients[..]);
                Some(release_copies!(conn, scope, request.message_id, recipients, by, now)?)
            } else {
                None
            };
            let decided = release_requests::table
                .find(request.id.clone())
                .select(ReleaseRequest::as_select())
                .first(conn)
                .await?;
            Ok::<_, StoreError>((decided, released))
        })
        .await
    })
}

/// The pending release request of a copy, if any (visible in `scope`).
pub async fn pending_request_for(
    db: &Db,
    scope: &Scope,
    id: &MessageId,
) -> Result<Option<ReleaseRequest>, StoreError> {
    with_conn!(db, conn => {
        Ok(scoped_requests!(scope)
            .filter(release_requests::message_id.eq(id.clone()))
            .filter(release_requests::state.eq(REQUEST_PENDING))
            .select(ReleaseRequest::as_select())
            .first(conn)
            .await
            .optional()?)
    })
}

/// The message log entry of a copy, if visible in `scope`.
pub async fn log_entry(
    db: &Db,
    scope: &Scope,
    id: &crate::MessageLogId,
) -> Result<MessageLogEntry, StoreError> {
    with_conn!(db, conn => {
        Ok(crate::filter_tenant_scope!(message_log::table.into_boxed(), scope, message_log::tenant_id)
            .filter(message_log::id.eq(id.clone()))
            .select(MessageLogEntry::as_select())
            .first(conn)
            .await?)
    })
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

/// Loads one page of message-log rows from `query`, newest first, after the page's cursor
/// (`received_at <= at` bounds the index range; the `OR` only settles ties).
macro_rules! log_page {
    ($query:expr, $after:expr, $fetch:expr, $conn:expr) => {{
        let mut query = $query;
        if let Some((at, id)) = $after {
            query = query.filter(message_log::received_at.le(*at)).filter(
                message_log::received_at
                    .lt(*at)
                    .or(message_log::id.lt(crate::MessageLogId(id.clone()))),
            );
        }
        query
            .order((message_log::received_at.desc(), message_log::id.desc()))
            .limit($fetch)
            .select(MessageLogEntry::as_select())
            .load($conn)
            .await?
    }};
}

/// Message-log entries visible in `scope` matching `filter` (its text, category, score and
/// time filters; the folder, state and user filters do not apply), newest first: message
/// tracking for admins.
pub async fn log_list(
    db: &Db,
    scope: &Scope,
    filter: &MessageFilter,
    page: &PageRequest,
) -> Result<Page<MessageLogEntry>, StoreError> {
    let after = page.after.as_deref().map(parse_cursor).transpose()?;
    let fetch = page.limit() + 1;
    let mut rows = Vec::new();
    for scope in list_scopes(db, scope).await? {
        rows.extend(load_log_page(db, &scope, filter, after.as_ref(), fetch).await?);
    }
    Ok(page.finish(newest(rows, fetch), cursor_of))
}

/// Up to `fetch` message-log entries of one scope after the cursor, newest first.
async fn load_log_page(
    db: &Db,
    scope: &Scope,
    filter: &MessageFilter,
    after: Option<&(NaiveDateTime, String)>,
    fetch: i64,
) -> Result<Vec<MessageLogEntry>, StoreError> {
    let rows = with_conn!(db, conn => {
        let mut query =
            crate::filter_tenant_scope!(message_log::table.into_boxed(), scope, message_log::tenant_id);
        search_filters!(query, filter, message_log, lower(message_log::rcpt_to));
        log_page!(query, after, fetch, conn)
    });
    Ok(rows)
}

/// The outbound message-log rows of `mail_from` in `scope` (mail sent from the backup
/// webmail). The category is literal SQL so that the partial index
/// `message_log_outbound_sender` serves the query.
macro_rules! outbound_of {
    ($scope:expr, $mail_from:expr) => {
        crate::filter_tenant_scope!(
            message_log::table.into_boxed(),
            $scope,
            message_log::tenant_id
        )
        .filter(message_log::mail_from.eq($mail_from.to_owned()))
        .filter(diesel::dsl::sql::<diesel::sql_types::Bool>(
            "category = 'outbound'",
        ))
    };
}

/// Mail that `mail_from` sent from the backup webmail, visible in `scope`, newest first: the
/// sent folder, with each message's delivery state.
pub async fn sent(
    db: &Db,
    scope: &Scope,
    mail_from: &str,
    page: &PageRequest,
) -> Result<Page<MessageLogEntry>, StoreError> {
    let after = page.after.as_deref().map(parse_cursor).transpose()?;
    let rows: Vec<MessageLogEntry> = with_conn!(db, conn => {
        let query = outbound_of!(scope, mail_from);
        log_page!(query, after.as_ref(), page.limit() + 1, conn)
    });
    Ok(page.finish(rows, cursor_of))
}

/// When `mail_from` (in `scope`) sent mail from the backup webmail at or after `since`, and
/// to how many recipients each time, oldest first: what the hourly send limit counts.
pub async fn sent_since(
    db: &Db,
    scope: &Scope,
    mail_from: &str,
    since: NaiveDateTime,
) -> Result<Vec<(NaiveDateTime, usize)>, StoreError> {
    let rows: Vec<(NaiveDateTime, String)> = with_conn!(db, conn => {
        outbound_of!(scope, mail_from)
            .filter(message_log::received_at.ge(since))
            .order(message_log::received_at.asc())
            .select((message_log::received_at, message_log::rcpt_to))
            .load(conn)
            .await?
    });
    Ok(rows
        .into_iter()
        .map(|(at, list)| {
            let count = serde_json::from_str::<Vec<String>>(&list).map_or(1, |r| r.len());
            (at, count)
        })
        .collect())
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
