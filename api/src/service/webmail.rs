//! The backup webmail: a user's retained copies of delivered mail (list, search, read with
//! the quarantine's safe rendering) and their redistribution to the mailbox through the
//! normal delivery path. Admins see the retained copies of their scope.

use cleanmail_core::policy::BackupWebmail;
use cleanmail_schema::store::messages::{self as store, Folder};
use cleanmail_schema::store::{policies as policy_store, tenants};
use cleanmail_schema::{MessageId, Scope, TenantId};

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

/// After a policy change: purges the retained copies (and their blobs) of every user of
/// `tenant_ids` whose backup webmail is now off. Ingest stops keeping copies by itself.
pub(crate) async fn purge_switched_off(
    state: &AppState,
    tenant_ids: &[TenantId],
) -> Result<(), ApiError> {
    for tenant_id in tenant_ids {
        let tenant = tenants::get(&state.db, &Scope::Platform, tenant_id).await?;
        let scope = Scope::Tenant {
            reseller_id: tenant.reseller_id,
            tenant_id: tenant.id,
        };
        let mut off = Vec::new();
        for user_id in store::users_with_retained(&state.db, &scope).await? {
            let explained = policy_store::effective_for_user(&state.db, &scope, &user_id).await?;
            if explained.effective.policy.backup_webmail == BackupWebmail::Off {
                off.push(user_id);
            }
        }
        if !off.is_empty() {
            let keys = store::purge_retained(&state.db, &scope, &off).await?;
            tracing::info!(tenant = %tenant_id, users = off.len(), blobs = keys.len(), "backup webmail switched off: retained copies purged");
            drop_blobs(state, keys).await;
        }
    }
    Ok(())
}
