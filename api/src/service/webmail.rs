//! The backup webmail: a user's retained copies of delivered mail (list, search, read with
//! the quarantine's safe rendering) and their redistribution to the mailbox through the
//! normal delivery path. Admins see the retained copies of their scope.

use cleanmail_schema::MessageId;
use cleanmail_schema::store::messages::{self as store, Folder};

use super::quarantine::{MessageDetail, MessageSearch, StoredMessage, detail, drop_blobs};
use super::{Page, PageParams};
use crate::auth::Principal;
use crate::{ApiError, AppState};

/// Retained messages visible to the caller (a user: their own), newest first.
pub async fn list(
    state: &AppState,
    who: &Principal,
    search: &MessageSearch,
    page: &PageParams,
) -> Result<Page<StoredMessage>, ApiError> {
    let filter = search.to_store(Folder::Retained)?;
    let page = store::list(&state.db, &who.scope, &filter, &page.request()).await?;
    Ok(Page::from_store(page, StoredMessage::from))
}

/// One retained message, rendered safely.
pub async fn get(state: &AppState, who: &Principal, id: &str) -> Result<MessageDetail, ApiError> {
    detail(state, who, id, Folder::Retained).await
}

/// Re-delivers a retained message to its recipient's mailbox (e.g. after an accidental
/// deletion downstream).
pub async fn redistribute(
    state: &AppState,
    who: &Principal,
    id: &str,
) -> Result<StoredMessage, ApiError> {
    Ok(
        store::redistribute(&state.db, &who.scope, &MessageId(id.to_owned()))
            .await?
            .into(),
    )
}

/// Deletes a retained copy (its blob goes with its last copy).
pub async fn delete(state: &AppState, who: &Principal, id: &str) -> Result<(), ApiError> {
    let keys = store::delete(
        &state.db,
        &who.scope,
        &MessageId(id.to_owned()),
        Folder::Retained,
    )
    .await?;
    drop_blobs(state, keys).await;
    Ok(())
}
