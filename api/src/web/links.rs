//! `GET /links/{purpose}?token=…` and `POST /links/{purpose}` (form field `token`).
//!
//! Opening a link never acts (mail scanners open links): an action link shows a
//! confirmation page whose button posts the token; only that POST acts. The token must be
//! authentic, unexpired and for this purpose, and its user active; it opens that user's
//! data only (the action runs as that user, through the quarantine service). An action
//! token's `jti` is recorded before acting, so a token acts once (a replay is refused).

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::Utc;
use cleanmail_core::links::{LinkClaims, LinkError, LinkPurpose};
use cleanmail_schema::UserId;
use cleanmail_schema::store::messages::Folder;
use cleanmail_schema::store::reports::{self as report_store, ReportUser};
use serde::Deserialize;

use super::{Page, PageForm, PageItem, PageRow};
use crate::auth::{Principal, Role};
use crate::service::quarantine;
use crate::{ApiError, AppState};

/// The token (query string on GET, form field on POST), and a message to read (webmail).
#[derive(Debug, Deserialize)]
pub struct TokenParams {
    pub token: String,
    #[serde(default)]
    pub message: Option<String>,
}

/// Lifetime of the tokens the list pages put in their buttons.
const PAGE_TOKEN_SECONDS: i64 = 3600;

/// A verified link: its claims, its user and the principal it acts as.
struct Holder {
    claims: LinkClaims,
    user: ReportUser,
    principal: Principal,
}

fn parse_purpose(purpose: &str) -> Option<LinkPurpose> {
    [
        LinkPurpose::Release,
        LinkPurpose::Delete,
        LinkPurpose::AllowSender,
        LinkPurpose::Quarantine,
        LinkPurpose::Webmail,
    ]
    .into_iter()
    .find(|p| p.as_str() == purpose)
}

fn invalid() -> Response {
    Page::refused(
        "This link is not valid",
        "The link is incomplete, was changed, or is not for this page. Use the link from your latest report.",
    )
    .respond(StatusCode::BAD_REQUEST)
}

async fn verify(state: &AppState, purpose: &str, token: &str) -> Result<Holder, Response> {
    let purpose = parse_purpose(purpose).ok_or_else(invalid)?;
    let claims = match state.links.verify(token, purpose, Utc::now().timestamp()) {
        Ok(claims) => claims,
        Err(LinkError::Expired) => {
            return Err(Page::refused(
                "This link has expired",
                "Links in quarantine reports work for a limited time. Use the links of your latest report, or sign in to your quarantine.",
            )
            .respond(StatusCode::GONE));
        }
        Err(LinkError::Invalid | LinkError::WrongPurpose) => return Err(invalid()),
    };
    let user = report_store::unscoped_user_for_link(&state.db, &UserId(claims.sub.clone()))
        .await
        .map_err(|_| invalid())?;
    let principal = Principal {
        role: Role::User,
        scope: user.scope(),
        subject: format!("user:{}", user.user.id),
    };
    Ok(Holder {
        claims,
        user,
        principal,
    })
}

fn already_used() -> Response {
    Page::refused(
        "This link was already used",
        "Each action link works once. Open your quarantine to see the message's current state.",
    )
    .respond(StatusCode::CONFLICT)
}

fn failed(err: &ApiError) -> Response {
    let (status, message) = match err {
        ApiError::NotFound => (
            StatusCode::NOT_FOUND,
            "This message is no longer in your quarantine (released, deleted or expired).",
        ),
        _ => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "The action could not be carried out. Please try again later.",
        ),
    };
    Page::refused("Nothing was done", message).respond(status)
}

fn local(at: chrono::DateTime<Utc>, user: &ReportUser) -> String {
    let tz: chrono_tz::Tz = user
        .tenant_timezone
        .parse()
        .unwrap_or(chrono_tz::Europe::Zurich);
    at.with_timezone(&tz).format("%Y-%m-%d %H:%M").to_string()
}

fn action_label(purpose: LinkPurpose) -> &'static str {
    match purpose {
        LinkPurpose::Release => "Release",
        LinkPurpose::Delete => "Delete",
        LinkPurpose::AllowSender => "Allow sender",
        LinkPurpose::Quarantine | LinkPurpose::Webmail => "Open",
    }
}

/// A fresh token for a button on a list page.
fn page_form(state: &AppState, holder: &Holder, item: &str, purpose: LinkPurpose) -> PageForm {
    let claims = LinkClaims::new(
        holder.user.user.id.as_str(),
        Some(item.to_owned()),
        purpose,
        Utc::now().timestamp() + PAGE_TOKEN_SECONDS,
        uuid::Uuid::new_v4().simple().to_string(),
    );
    PageForm {
        action: format!("/links/{}", purpose.as_str()),
        token: state.links.sign(&claims),
        label: action_label(purpose).to_owned(),
    }
}

/// `GET /links/{purpose}`: a confirmation page (actions) or the quarantine / webmail page.
pub async fn open(
    State(state): State<AppState>,
    Path(purpose): Path<String>,
    Query(params): Query<TokenParams>,
) -> Response {
    let holder = match verify(&state, &purpose, &params.token).await {
        Ok(holder) => holder,
        Err(page) => return page,
    };
    let purpose = holder.claims.purpose;
    match purpose {
        LinkPurpose::Release | LinkPurpose::Delete | LinkPurpose::AllowSender => {
            match report_store::link_token_used(
                &state.db,
                &holder.principal.scope,
                &holder.claims.jti,
            )
            .await
            {
                Ok(false) => {}
                Ok(true) => return already_used(),
                Err(err) => return failed(&err.into()),
            }
            let Some(item_id) = holder.claims.item.as_deref() else {
                return invalid();
            };
            let item = match quarantine::get(&state, &holder.principal, item_id).await {
                Ok(detail) => detail.message,
                Err(err) => return failed(&err),
            };
            let question = match purpose {
                LinkPurpose::Release => "Release this message to your mailbox?",
                LinkPurpose::Delete => "Delete this message?",
                _ => "Allow this sender from now on?",
            };
            Page {
                title: question.to_owned(),
                kind: "confirm",
                message: Some("Nothing happens until you confirm.".to_owned()),
                item: Some(PageItem {
                    sender: if item.from_header.is_empty() {
                        item.mail_from.clone()
                    } else {
                        item.from_header.clone()
                    },
                    subject: item.subject.clone(),
                    received: local(item.received_at, &holder.user),
                    category: format!("{:?}", item.category).to_lowercase(),
                }),
                confirm: Some(PageForm {
                    action: format!("/links/{}", purpose.as_str()),
                    token: params.token.clone(),
                    label: format!("Confirm: {}", action_label(purpose).to_lowercase()),
                }),
                ..Page::default()
            }
            .respond(StatusCode::OK)
        }
        LinkPurpose::Quarantine => quarantine_page(&state, &holder).await,
        LinkPurpose::Webmail => {
            webmail_page(&state, &holder, params.message.as_deref(), &params.token).await
        }
    }
}

async fn quarantine_page(state: &AppState, holder: &Holder) -> Response {
    let page = match quarantine::list(
        state,
        &holder.principal,
        &quarantine::MessageSearch::default(),
        &crate::service::PageParams {
            after: None,
            limit: Some(200),
        },
    )
    .await
    {
        Ok(page) => page,
        Err(err) => return failed(&err),
    };
    let rows = page
        .items
        .iter()
        .map(|m| PageRow {
            sender: if m.from_header.is_empty() {
                m.mail_from.clone()
            } else {
                m.from_header.clone()
            },
            subject: m.subject.clone(),
            received: local(m.received_at, &holder.user),
            category: format!("{:?}", m.category).to_lowercase(),
            read_url: None,
            forms: [
                LinkPurpose::Release,
                LinkPurpose::Delete,
                LinkPurpose::AllowSender,
            ]
            .into_iter()
            .map(|p| page_form(state, holder, &m.id, p))
            .collect(),
        })
        .collect();
    Page {
        title: format!("Quarantine of {}", holder.user.user.address),
        kind: "confirm",
        rows: Some(rows),
        ..Page::default()
    }
    .respond(StatusCode::OK)
}

/// The backup webmail: the user's retained messages, or one of them as plain text.
async fn webmail_page(
    state: &AppState,
    holder: &Holder,
    message: Option<&str>,
    token: &str,
) -> Response {
    if let Some(id) = message {
        let detail = match quarantine::detail(state, &holder.principal, id, Folder::Retained).await
        {
            Ok(detail) => detail,
            Err(err) => return failed(&err),
        };
        let m = &detail.message;
        return Page {
            title: m.subject.clone(),
            kind: "confirm",
            item: Some(PageItem {
                sender: if m.from_header.is_empty() {
                    m.mail_from.clone()
                } else {
                    m.from_header.clone()
                },
                subject: m.subject.clone(),
                received: local(m.received_at, &holder.user),
                category: format!("{:?}", m.category).to_lowercase(),
            }),
            body: Some(detail.preview.text.clone().unwrap_or_default()),
            ..Page::default()
        }
        .respond(StatusCode::OK);
    }
    let filter = match quarantine::MessageSearch::default().to_store(Folder::Retained) {
        Ok(filter) => filter,
        Err(err) => return failed(&err),
    };
    let page = match cleanmail_schema::store::messages::list(
        &state.db,
        &holder.principal.scope,
        &filter,
        &cleanmail_schema::PageRequest {
            after: None,
            limit: Some(200),
        },
    )
    .await
    {
        Ok(page) => page,
        Err(err) => return failed(&err.into()),
    };
    let rows = page
        .items
        .iter()
        .map(|m| PageRow {
            sender: if m.from_header.is_empty() {
                m.mail_from.clone()
            } else {
                m.from_header.clone()
            },
            subject: m.subject.clone(),
            received: local(m.received_at.and_utc(), &holder.user),
            category: m.category.clone(),
            read_url: Some(format!("/links/webmail?token={token}&message={}", m.id)),
            forms: Vec::new(),
        })
        .collect();
    Page {
        title: format!("Backup webmail of {}", holder.user.user.address),
        kind: "confirm",
        rows: Some(rows),
        ..Page::default()
    }
    .respond(StatusCode::OK)
}

/// `POST /links/{purpose}`: carries out an action once.
pub async fn act(
    State(state): State<AppState>,
    Path(purpose): Path<String>,
    Form(params): Form<TokenParams>,
) -> Response {
    let holder = match verify(&state, &purpose, &params.token).await {
        Ok(holder) => holder,
        Err(page) => return page,
    };
    let purpose = holder.claims.purpose;
    let Some(item) = holder.claims.item.clone().filter(|_| purpose.is_action()) else {
        return invalid();
    };
    let scope = &holder.principal.scope;
    match report_store::use_link_token(&state.db, scope, &holder.claims.jti, purpose.as_str()).await
    {
        Ok(true) => {}
        Ok(false) => return already_used(),
        Err(err) => return failed(&err.into()),
    }
    let done = match purpose {
        LinkPurpose::Release => quarantine::release(
            &state,
            &holder.principal,
            &item,
            quarantine::ReleaseInput::default(),
        )
        .await
        .map(|outcome| match outcome.status {
            quarantine::ReleaseStatus::Released => {
                "The message was released and is on its way to your mailbox.".to_owned()
            }
            quarantine::ReleaseStatus::Requested => {
                "Your administrator was asked to release this message.".to_owned()
            }
        }),
        LinkPurpose::Delete => quarantine::delete(&state, &holder.principal, &item)
            .await
            .map(|()| "The message was deleted.".to_owned()),
        _ => quarantine::allow_sender(
            &state,
            &holder.principal,
            &item,
            quarantine::SenderListInput::default(),
        )
        .await
        .map(|outcome| format!("{} is now an allowed sender.", outcome.entry)),
    };
    match done {
        Ok(message) => Page {
            title: "Done".to_owned(),
            kind: "done",
            message: Some(message),
            ..Page::default()
        }
        .respond(StatusCode::OK),
        Err(err) => {
            // Nothing happened: the link may be tried again.
            let _ = report_store::unuse_link_token(&state.db, scope, &holder.claims.jti).await;
            failed(&err)
        }
    }
}
