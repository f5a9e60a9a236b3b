//! Header rules: missing or forged headers, subject tricks, sender and reply-to mismatches,
//! dates, and the SMTP greeting.

use mail_parser::Message;

use super::Tags;
use crate::engine::Envelope;
use crate::message::{Extracted, registrable_domain};

/// Free-mail providers, for reply-to diversion checks.
pub const FREEMAIL: &[&str] = &[
    "gmail.com",
    "googlemail.com",
    "yahoo.com",
    "hotmail.com",
    "outlook.com",
    "live.com",
    "msn.com",
    "aol.com",
    "mail.com",
    "gmx.com",
    "gmx.net",
    "yandex.ru",
    "mail.ru",
    "protonmail.com",
    "proton.me",
    "icloud.com",
    "qq.com",
    "163.com",
];

/// Runs the header rules.
pub fn analyze(
    message: &Message<'_>,
    extracted: &Extracted<'_>,
    envelope: &Envelope,
    received_at: Option<i64>,
    tags: &mut Tags,
) {
    let from = extracted.from.as_ref();
    if message.header_raw("From").is_none() {
        tags.add("MISSING_FROM", "");
    } else if from.and_then(|f| f.address.as_deref()).is_none() {
        tags.add(
            "FROM_NO_ADDRESS",
            message.header_raw("From").unwrap_or("").trim(),
        );
    }
    if message.header_raw("Date").is_none() {
        tags.add("MISSING_DATE", "");
    }
    if message.header_raw("Subject").is_none() || extracted.subject.trim().is_empty() {
        tags.add("MISSING_SUBJECT", "");
    }
    subject_rules(message, &extracted.subject, tags);
    if let Some(from) = from {
        let from_domain = from.domain();
        if let Some(shown) = address_in_name(&from.name)
            && let Some(real) = from.address.as_deref()
            && let Some((_, shown_domain)) = shown.rsplit_once('@')
            && let Some((_, real_domain)) = real.rsplit_once('@')
            && registrable_domain(shown_domain) != registrable_domain(real_domain)
        {
            tags.add(
                "FROM_NAME_HAS_OTHER_ADDRESS",
                format!("the name shows {shown} but the address is {real}"),
            );
        }
        if let (Some(from_domain), Some(reply_domain)) = (
            from_domain,
            extracted.reply_to.as_ref().and_then(|r| r.domain()),
        ) && registrable_domain(from_domain) != registrable_domain(reply_domain)
        {
            if FREEMAIL.contains(&reply_domain) && !FREEMAIL.contains(&from_domain) {
                tags.add(
                    "REPLYTO_FREEMAIL",
                    format!("from {from_domain}, replies to {reply_domain}"),
                );
            } else {
                tags.add(
                    "REPLYTO_OTHER_DOMAIN",
                    format!("from {from_domain}, replies to {reply_domain}"),
                );
            }
        }
    }
    if let (Some(now), Some(date)) = (received_at, message.date()) {
        let sent = date.to_timestamp();
        if sent > now + 24 * 3600 {
            tags.add("DATE_IN_FUTURE", date.to_rfc3339());
        } else if sent < now - 30 * 24 * 3600 {
            tags.add("DATE_IN_PAST", date.to_rfc3339());
        }
    }
    let helo = envelope.helo.trim();
    if !helo.is_empty() {
        let bare = helo.trim_start_matches('[').trim_end_matches(']');
        if bare.parse::<std::net::IpAddr>().is_ok() {
            tags.add("HELO_IP_LITERAL", helo);
        } else if !helo.contains('.') {
            tags.add("HELO_NOT_FQDN", helo);
        }
    }
}

fn subject_rules(message: &Message<'_>, subject: &str, tags: &mut Tags) {
    // Only letters that have a case count: Chinese, Japanese, Korean, Thai or Arabic have no
    // capitals, so a subject in those scripts is not shouting.
    let cased: Vec<char> = subject
        .chars()
        .filter(|c| c.is_uppercase() || c.is_lowercase())
        .collect();
    if cased.len() >= 10 && cased.iter().all(|c| c.is_uppercase()) {
        tags.add("SUBJECT_ALL_CAPS", subject);
    }
    if subject.contains("!!") || subject.contains("$$") || subject.matches('!').count() >= 3 {
        tags.add("SUBJECT_SHOUTING", subject);
    }
    if let Some(raw) = message.header_raw("Subject") {
        let raw = raw.trim();
        if raw.starts_with("=?") && subject.is_ascii() && !subject.is_empty() && subject.len() < 200
        {
            tags.add("SUBJECT_ENCODED_NEEDLESSLY", raw);
        }
    }
}

/// An e-mail address written inside a display name (`"paypal@paypal.com" <x@evil>`).
fn address_in_name(name: &str) -> Option<String> {
    name.split(|c: char| {
        c.is_whitespace() || c == '"' || c == '(' || c == ')' || c == '<' || c == '>' || c == '\''
    })
    .find(|w| {
        w.len() > 3
            && w.contains('@')
            && w.rsplit_once('@')
                .is_some_and(|(l, d)| !l.is_empty() && d.contains('.'))
    })
    .map(|w| w.to_ascii_lowercase())
}
