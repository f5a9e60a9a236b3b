//! Report emails: text and HTML from the templates in `templates/`, and the MIME message.

use std::sync::OnceLock;

use lettre::message::header::ContentType;
use lettre::message::{Mailbox, MultiPart, SinglePart};
use minijinja::{Environment, context};
use serde::Serialize;

use super::i18n::{Strings, strings};

/// One quarantined item of a user's report, with its one-click links.
#[derive(Debug, Clone, Serialize)]
pub struct ReportItem {
    pub id: String,
    /// When it arrived, in the report's time zone.
    pub received: String,
    pub sender: String,
    pub subject: String,
    pub category: String,
    pub release_url: String,
    pub delete_url: String,
    pub allow_sender_url: String,
}

/// Everything a user's quarantine report shows.
#[derive(Debug, Clone)]
pub struct UserReport {
    pub language: String,
    pub address: String,
    pub items: Vec<ReportItem>,
    /// Items not listed (the email lists at most [`super::MAX_ITEMS`]).
    pub more: usize,
    pub quarantine_url: String,
    pub webmail_url: String,
    /// When the links expire, in the report's time zone.
    pub links_expire: String,
}

/// One quarantined item of a domain or tenant quarantine report.
#[derive(Debug, Clone, Serialize)]
pub struct DomainItem {
    pub received: String,
    pub recipient: String,
    pub sender: String,
    pub subject: String,
    pub category: String,
}

/// One line of a statistics table: this period, the previous one and the trend.
#[derive(Debug, Clone, Serialize)]
pub struct StatisticsRow {
    pub label: String,
    pub count: i64,
    pub previous: i64,
    pub trend: String,
}

/// A titled top list (address, count).
#[derive(Debug, Clone, Serialize)]
pub struct TopList {
    pub title: String,
    pub entries: Vec<(String, i64)>,
}

/// The statistics part of a statistics report.
#[derive(Debug, Clone, Serialize)]
pub struct StatisticsBody {
    pub rows: Vec<StatisticsRow>,
    pub tops: Vec<TopList>,
}

/// What a domain or tenant report shows: quarantined items or statistics.
#[derive(Debug, Clone)]
pub enum DomainReportBody {
    Quarantine { items: Vec<DomainItem>, more: usize },
    Statistics(StatisticsBody),
}

/// A domain or tenant report.
#[derive(Debug, Clone)]
pub struct DomainReport {
    pub language: String,
    /// What it is about: a domain name or the tenant's name.
    pub scope: String,
    /// The period, in the report's time zone.
    pub from: String,
    pub to: String,
    pub body: DomainReportBody,
}

/// A rendered email before MIME encoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedEmail {
    pub subject: String,
    pub text: String,
    pub html: String,
}

fn environment() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        // `.html` names turn on HTML escaping; `.txt` stays plain.
        for (name, source) in [
            (
                "quarantine_report.html",
                include_str!("templates/quarantine_report.html"),
            ),
            (
                "quarantine_report.txt",
                include_str!("templates/quarantine_report.txt"),
            ),
            (
                "domain_report.html",
                include_str!("templates/domain_report.html"),
            ),
            (
                "domain_report.txt",
                include_str!("templates/domain_report.txt"),
            ),
        ] {
            env.add_template(name, source)
                .expect("report templates are valid");
        }
        env
    })
}

fn render(name: &str, ctx: minijinja::Value) -> String {
    environment()
        .get_template(name)
        .and_then(|t| t.render(ctx))
        .expect("report templates render with their context")
}

/// The text and HTML of a user's quarantine report.
pub fn render_user_report(report: &UserReport) -> RenderedEmail {
    let t: &Strings = strings(&report.language);
    let total = report.items.len() + report.more;
    let subject = if total == 1 {
        t.subject_one.to_owned()
    } else {
        t.subject_many.replace("{n}", &total.to_string())
    };
    let intro = t.intro.replace("{address}", &report.address);
    let more = (report.more > 0).then(|| t.more.replace("{n}", &report.more.to_string()));
    let links_expire = t.links_expire.replace("{date}", &report.links_expire);
    let ctx = context! {
        t => t,
        subject => &subject,
        intro => intro,
        items => &report.items,
        more => more,
        quarantine_url => &report.quarantine_url,
        webmail_url => &report.webmail_url,
        links_expire => links_expire,
    };
    RenderedEmail {
        text: render("quarantine_report.txt", ctx.clone()),
        html: render("quarantine_report.html", ctx),
        subject,
    }
}

/// The text and HTML of a domain or tenant report.
pub fn render_domain_report(report: &DomainReport) -> RenderedEmail {
    let t: &Strings = strings(&report.language);
    let fill = |s: &str| {
        s.replace("{scope}", &report.scope)
            .replace("{from}", &report.from)
            .replace("{to}", &report.to)
    };
    let (subject, intro, items, more, stats) = match &report.body {
        DomainReportBody::Quarantine { items, more } => (
            fill(t.domain_quarantine_subject).replace("{n}", &(items.len() + more).to_string()),
            fill(t.domain_quarantine_intro),
            items.clone(),
            (*more > 0).then(|| t.more.replace("{n}", &more.to_string())),
            None,
        ),
        DomainReportBody::Statistics(stats) => (
            fill(t.statistics_subject),
            fill(t.statistics_intro),
            Vec::new(),
            None,
            Some(stats.clone()),
        ),
    };
    let ctx = context! {
        t => t,
        subject => &subject,
        intro => intro,
        items => items,
        more => more,
        stats => stats,
    };
    RenderedEmail {
        text: render("domain_report.txt", ctx.clone()),
        html: render("domain_report.html", ctx),
        subject,
    }
}

/// The MIME message (multipart/alternative: text, then HTML) of a rendered email.
pub fn to_mime(
    email: &RenderedEmail,
    from: &str,
    to: &[String],
    language: &str,
    message_id: &str,
) -> anyhow::Result<Vec<u8>> {
    let mut builder = lettre::Message::builder()
        .from(from.parse::<Mailbox>()?)
        .message_id(Some(message_id.to_owned()))
        .subject(email.subject.clone())
        .header(ContentLanguage(language.to_owned()))
        .header(AutoSubmitted("auto-generated".to_owned()));
    for address in to {
        builder = builder.to(address.parse::<Mailbox>()?);
    }
    let message = builder.multipart(
        MultiPart::alternative()
            .singlepart(
                SinglePart::builder()
                    .header(ContentType::TEXT_PLAIN)
                    .body(email.text.clone()),
            )
            .singlepart(
                SinglePart::builder()
                    .header(ContentType::TEXT_HTML)
                    .body(email.html.clone()),
            ),
    )?;
    Ok(message.formatted())
}

macro_rules! plain_header {
    ($(#[$doc:meta])* $ty:ident, $name:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone)]
        struct $ty(String);

        impl lettre::message::header::Header for $ty {
            fn name() -> lettre::message::header::HeaderName {
                lettre::message::header::HeaderName::new_from_ascii_str($name)
            }

            fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
                Ok(Self(s.to_owned()))
            }

            fn display(&self) -> lettre::message::header::HeaderValue {
                lettre::message::header::HeaderValue::new(Self::name(), self.0.clone())
            }
        }
    };
}

plain_header!(
    /// `Auto-Submitted` (RFC 3834): no auto-replies to reports.
    AutoSubmitted,
    "Auto-Submitted"
);
plain_header!(
    /// `Content-Language` (RFC 3282).
    ContentLanguage,
    "Content-Language"
);

#[cfg(test)]
mod tests {
    use super::*;

    fn item(n: usize) -> ReportItem {
        ReportItem {
            id: format!("m{n}"),
            received: format!("2026-11-30 0{n}:15"),
            sender: format!("Sender {n} <s{n}@spam.example>"),
            subject: format!("Offer <{n}> & more"),
            category: "spam".to_owned(),
            release_url: format!("https://mail.example/links/release?token=r{n}"),
            delete_url: format!("https://mail.example/links/delete?token=d{n}"),
            allow_sender_url: format!("https://mail.example/links/allow_sender?token=a{n}"),
        }
    }

    fn user_report(language: &str) -> UserReport {
        UserReport {
            language: language.to_owned(),
            address: "jean@example.ch".to_owned(),
            items: vec![item(1), item(2)],
            more: 3,
            quarantine_url: "https://mail.example/links/quarantine?token=q".to_owned(),
            webmail_url: "https://mail.example/links/webmail?token=w".to_owned(),
            links_expire: "2026-12-07 09:00".to_owned(),
        }
    }

    #[test]
    fn user_report_in_every_language() {
        for language in cleanmail_core::LANGUAGES {
            let email = render_user_report(&user_report(language));
            insta::assert_snapshot!(format!("user_report_{language}_text"), email.text);
            insta::assert_snapshot!(format!("user_report_{language}_subject"), email.subject);
        }
        let email = render_user_report(&user_report("en"));
        insta::assert_snapshot!("user_report_en_html", email.html);
        // Sender text is escaped in HTML, never markup.
        assert!(email.html.contains("Offer &lt;1&gt; &amp; more"));
    }

    #[test]
    fn domain_reports() {
        let stats = DomainReport {
            language: "de".to_owned(),
            scope: "example.ch".to_owned(),
            from: "2026-11-23 07:00".to_owned(),
            to: "2026-11-30 07:00".to_owned(),
            body: DomainReportBody::Statistics(StatisticsBody {
                rows: vec![
                    StatisticsRow {
                        label: "Sauber".to_owned(),
                        count: 120,
                        previous: 100,
                        trend: "+20.0 %".to_owned(),
                    },
                    StatisticsRow {
                        label: "Spam".to_owned(),
                        count: 7,
                        previous: 0,
                        trend: "–".to_owned(),
                    },
                ],
                tops: vec![TopList {
                    title: "Häufigste Absender".to_owned(),
                    entries: vec![("news@shop.example".to_owned(), 42)],
                }],
            }),
        };
        let email = render_domain_report(&stats);
        insta::assert_snapshot!("statistics_report_de_text", email.text);
        insta::assert_snapshot!("statistics_report_de_html", email.html);
        let quarantine = DomainReport {
            language: "en".to_owned(),
            scope: "example.ch".to_owned(),
            from: "2026-11-29 07:00".to_owned(),
            to: "2026-11-30 07:00".to_owned(),
            body: DomainReportBody::Quarantine {
                items: vec![DomainItem {
                    received: "2026-11-29 10:00".to_owned(),
                    recipient: "jean@example.ch".to_owned(),
                    sender: "bulk@spam.example".to_owned(),
                    subject: "Win".to_owned(),
                    category: "spam".to_owned(),
                }],
                more: 0,
            },
        };
        let email = render_domain_report(&quarantine);
        insta::assert_snapshot!("domain_quarantine_report_en_text", email.text);
        assert_eq!(
            email.subject,
            "Quarantine report for example.ch: 1 messages"
        );
    }

    #[test]
    fn mime_has_text_and_html_alternatives() {
        let email = render_user_report(&user_report("fr"));
        let mime = to_mime(
            &email,
            "Cleanmail <noreply@mx.example>",
            &["jean@example.ch".to_owned()],
            "fr",
            "<r1@mx.example>",
        )
        .unwrap();
        let parsed = mail_parser::MessageParser::default().parse(&mime).unwrap();
        assert_eq!(parsed.subject(), Some(email.subject.as_str()));
        let unix = |s: &str| s.replace("\r\n", "\n").trim_end().to_owned();
        assert_eq!(unix(&parsed.body_text(0).unwrap()), unix(&email.text));
        assert_eq!(unix(&parsed.body_html(0).unwrap()), unix(&email.html));
        let text = String::from_utf8_lossy(&mime);
        assert!(text.contains("Auto-Submitted: auto-generated"));
        assert!(text.contains("Content-Language: fr"));
    }
}
