//! `GET /links/{purpose}?token=…` and `POST /links/{purpose}` (form field `token`).
//!
//! Opening a link never acts (mail scanners open links): an action link shows a
//! confirmation page whose button posts the token; only that POST acts. The token must be
//! authentic, unexpired and for this purpose, and its user active; it opens that user's
//! data only (the action runs as that user, through the quarantine service). An action
//! token's `jti` is recorded before acting, so a token acts once (a replay is refused).

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use chrono::Utc;
use cleanmail_core::links::{LinkClaims, LinkError, LinkPurpose};
use cleanmail_schema::UserId;
use cleanmail_schema::store::messages::Folder;
use cleanmail_schema::store::reports::{self as report_store, ReportUser};
use serde::Deserialize;

use super::i18n::{self, Words};
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

/// A verified link: its claims, its user, the principal it acts as and the user's words.
struct Holder {
    claims: LinkClaims,
    user: ReportUser,
    principal: Principal,
    t: &'static Words,
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

fn invalid(t: &'static Words) -> Response {
    Page::refused(t, t.invalid_title, t.invalid_text).respond(StatusCode::BAD_REQUEST)
}

/// Checks a link token. Refusals before the user is known speak the browser's language.
async fn verify(
    state: &AppState,
    headers: &HeaderMap,
    purpose: &str,
    token: &str,
) -> Result<Holder, Response> {
    let browser = i18n::negotiate(
        headers
            .get(axum::http::header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok()),
    );
    let purpose = parse_purpose(purpose).ok_or_else(|| invalid(browser))?;
    let claims = match state.links.verify(token, purpose, Utc::now().timestamp()) {
        Ok(claims) => claims,
        Err(LinkError::Expired) => {
            return Err(
                Page::refused(browser, browser.expired_title, browser.expired_text)
                    .respond(StatusCode::GONE),
            );
        }
        Err(LinkError::Invalid | LinkError::WrongPurpose) => return Err(invalid(browser)),
    };
    let user = report_store::unscoped_user_for_link(&state.db, &UserId(claims.sub.clone()))
        .await
        .map_err(|_| invalid(browser))?;
    let principal = Principal {
        role: Role::User,
        scope: user.scope(),
        subject: format!("user:{}", user.user.id),
    };
    Ok(Holder {
        t: i18n::words(&user.user.language),
        claims,
        user,
        principal,
    })
}

fn already_used(t: &'static Words) -> Response {
    Page::refused(t, t.used_title, t.used_text).respond(StatusCode::CONFLICT)
}

fn failed(t: &'static Words, err: &ApiError) -> Response {
    let (status, message) = match err {
        ApiError::NotFound => (StatusCode::NOT_FOUND, t.gone_text),
        _ => (StatusCode::INTERNAL_SERVER_ERROR, t.failed_text),
    };
    Page::refused(t, t.nothing_done, message).respond(status)
}

fn local(at: chrono::DateTime<Utc>, user: &ReportUser) -> String {
    let tz: chrono_tz::Tz = user
        .tenant_timezone
        .parse()
        .unwrap_or(chrono_tz::Europe::Zurich);
    at.with_timezone(&tz).format("%Y-%m-%d %H:%M").to_string()
}

fn action_label(t: &Words, purpose: LinkPurpose) -> &'static str {
    match purpose {
        LinkPurpose::Release => t.release,
        LinkPurpose::Delete => t.delete,
        LinkPurpose::AllowSender => t.allow_sender,
        LinkPurpose::Quarantine | LinkPurpose::Webmail => t.open,
    }
}

/// How a message's sender is shown: its From header, else its envelope sender.
fn sender(from_header: &str, mail_from: &str) -> String {
    if from_header.is_empty() {
        mail_from.to_owned()
    } else {
        from_header.to_owned()
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
        label: action_label(holder.t, purpose).to_owned(),
    }
}

/// `GET /links/{purpose}`: a confirmation page (actions) or the quarantine / webmail page.
pub async fn open(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(purpose): Path<String>,
    Query(params): Query<TokenParams>,
) -> Response {
    let holder = match verify(&state, &headers, &purpose, &params.token).await {
        Ok(holder) => holder,
        Err(page) => return page,
    };
    let t = holder.t;
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
                Ok(true) => return already_used(t),
                Err(err) => return failed(t, &err.into()),
            }
            let Some(item_id) = holder.claims.item.as_deref() else {
                return invalid(t);
            };
            let item = match quarantine::get(&state, &holder.principal, item_id).await {
                Ok(detail) => detail.message,
                Err(err) => return failed(t, &err),
            };
            let (question, label) = match purpose {
                LinkPurpose::Release => (t.ask_release, t.confirm_release),
                LinkPurpose::Delete => (t.ask_delete, t.confirm_delete),
                _ => (t.ask_allow, t.confirm_allow),
            };
            Page {
                t,
                title: question.to_owned(),
                kind: "confirm",
                message: Some(t.nothing_until_confirm.to_owned()),
                item: Some(PageItem {
                    sender: sender(&item.from_header, &item.mail_from),
                    subject: item.subject.clone(),
                    received: local(item.received_at, &holder.user),
                    category: t.category_name(&format!("{:?}", item.category).to_lowercase()),
                }),
                confirm: Some(PageForm {
                    action: format!("/links/{}", purpose.as_str()),
                    token: params.token.clone(),
                    label: label.to_owned(),
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
    let t = holder.t;
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
        Err(err) => return failed(t, &err),
    };
    let rows = page
        .items
        .iter()
        .map(|m| PageRow {
            sender: sender(&m.from_header, &m.mail_from),
            subject: m.subject.clone(),
            received: local(m.received_at, &holder.user),
            category: t.category_name(&format!("{:?}", m.category).to_lowercase()),
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
        t,
        title: t
            .quarantine_of
            .replace("{address}", &holder.user.user.address),
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
    let t = holder.t;
    if let Some(id) = message {
        let detail = match quarantine::detail(state, &holder.principal, id, Folder::Retained).await
        {
            Ok(detail) => detail,
            Err(err) => return failed(t, &err),
        };
        let m = &detail.message;
        return Page {
            t,
            title: m.subject.clone(),
            kind: "confirm",
            item: Some(PageItem {
                sender: sender(&m.from_header, &m.mail_from),
                subject: m.subject.clone(),
                received: local(m.received_at, &holder.user),
                category: t.category_name(&format!("{:?}", m.category).to_lowercase()),
            }),
            body: Some(detail.preview.text.clone().unwrap_or_default()),
            ..Page::default()
        }
        .respond(StatusCode::OK);
    }
    let filter = match quarantine::MessageSearch::default().to_store(Folder::Retained) {
        Ok(filter) => filter,
        Err(err) => return failed(t, &err),
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
        Err(err) => return failed(t, &err.into()),
    };
    let rows = page
        .items
        .iter()
        .map(|m| PageRow {
            sender: sender(&m.from_header, &m.mail_from),
            subject: m.subject.clone(),
            received: local(m.received_at.and_utc(), &holder.user),
            category: t.category_name(&m.category),
            read_url: Some(format!("/links/webmail?token={token}&message={}", m.id)),
            forms: Vec::new(),
        })
        .collect();
    Page {
        t,
        title: t.webmail_of.replace("{address}", &holder.user.user.address),
        kind: "confirm",
        rows: Some(rows),
        ..Page::default()
    }
    .respond(StatusCode::OK)
}

/// `POST /links/{purpose}`: carries out an action once.
pub async fn act(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(purpose): Path<String>,
    Form(params): Form<TokenParams>,
) -> Response {
    let holder = match verify(&state, &headers, &purpose, &params.token).await {
        Ok(holder) => holder,
        Err(page) => return page,
    };
    let t = holder.t;
    let purpose = holder.claims.purpose;
    let Some(item) = holder.claims.item.clone().filter(|_| purpose.is_action()) else {
        return invalid(t);
    };
    let scope = &holder.principal.scope;
    match report_store::use_link_token(&state.db, scope, &holder.claims.jti, purpose.as_str()).await
    {
        Ok(true) => {}
        Ok(false) => return already_used(t),
        Err(err) => return failed(t, &err.into()),
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
            quarantine::ReleaseStatus::Released => t.released.to_owned(),
            quarantine::ReleaseStatus::Requested => t.requested.to_owned(),
        }),
        LinkPurpose::Delete => quarantine::delete(&state, &holder.principal, &item)
            .await
            .map(|()| t.deleted.to_owned()),
        _ => quarantine::allow_sender(
            &state,
            &holder.principal,
            &item,
            quarantine::SenderListInput::default(),
        )
        .await
        .map(|outcome| t.allowed.replace("{sender}", &outcome.entry)),
    };
    match done {
        Ok(message) => Page {
            t,
            title: t.done.to_owned(),
            kind: "done",
            message: Some(message),
            ..Page::default()
        }
        .respond(StatusCode::OK),
        Err(err) => {
            // Nothing happened: the link may be tried again.
            let _ = report_store::unuse_link_token(&state.db, scope, &holder.claims.jti).await;
            failed(t, &err)
        }
    }
}
