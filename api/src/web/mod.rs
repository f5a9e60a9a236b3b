//! Small server-rendered pages behind the one-click links of report emails (for resellers
//! without a portal): a confirmation page per action, the user's quarantine with actions and
//! the backup webmail. The signed link token is the only credential; see [`links`]. The
//! pages speak the user's language ([`i18n`]).

pub mod i18n;
pub mod links;

use std::sync::OnceLock;

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use minijinja::Environment;
use serde::Serialize;

/// One message shown on a page.
#[derive(Debug, Clone, Serialize)]
pub struct PageItem {
    pub sender: String,
    pub subject: String,
    pub received: String,
    pub category: String,
}

/// A button that posts a token.
#[derive(Debug, Clone, Serialize)]
pub struct PageForm {
    pub action: String,
    pub token: String,
    pub label: String,
}

/// A row of a list page.
#[derive(Debug, Clone, Serialize)]
pub struct PageRow {
    pub sender: String,
    pub subject: String,
    pub received: String,
    pub category: String,
    pub read_url: Option<String>,
    pub forms: Vec<PageForm>,
}

/// What a page shows.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Page {
    /// The words of the page's language.
    pub t: &'static i18n::Words,
    pub title: String,
    /// `confirm`, `done` or `refused` (styling).
    pub kind: &'static str,
    pub message: Option<String>,
    pub item: Option<PageItem>,
    pub confirm: Option<PageForm>,
    pub rows: Option<Vec<PageRow>>,
    pub body: Option<String>,
}

impl Page {
    /// A refusal page in the language of `t`.
    pub fn refused(t: &'static i18n::Words, title: &str, message: &str) -> Self {
        Self {
            t,
            title: title.to_owned(),
            kind: "refused",
            message: Some(message.to_owned()),
            ..Self::default()
        }
    }

    /// The page as an HTML response with `status`; never cached, never indexed.
    pub fn respond(&self, status: StatusCode) -> Response {
        static ENV: OnceLock<Environment<'static>> = OnceLock::new();
        let env = ENV.get_or_init(|| {
            let mut env = Environment::new();
            env.add_template("page.html", include_str!("templates/page.html"))
                .expect("the page template is valid");
            env
        });
        let html = env
            .get_template("page.html")
            .and_then(|t| t.render(self))
            .expect("the page template renders");
        (
            status,
            [
                (axum::http::header::CACHE_CONTROL, "no-store"),
                (
                    axum::http::header::HeaderName::from_static("referrer-policy"),
                    "no-referrer",
                ),
                (
                    axum::http::header::HeaderName::from_static("x-robots-tag"),
                    "noindex",
                ),
            ],
            Html(html),
        )
            .into_response()
    }
}
