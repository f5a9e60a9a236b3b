//! Newsletter and bulk-mail detection (a category of its own, not spam).

use mail_parser::Message;

use super::Tags;
use crate::message::Extracted;

/// Headers set by bulk-mail platforms.
const BULK_PLATFORM_HEADERS: &[(&str, &str)] = &[
    ("X-Mailchimp-Campaign", "Mailchimp"),
    ("X-MC-User", "Mailchimp"),
    ("X-Campaign", "a campaign platform"),
    ("X-CampaignID", "a campaign platform"),
    ("X-SG-EID", "SendGrid"),
    ("X-Mailgun-Sid", "Mailgun"),
    ("X-SES-Outgoing", "Amazon SES"),
    ("X-CSA-Complaints", "a certified bulk sender"),
    ("X-Sendinblue-Campaign", "Brevo"),
    ("X-Mailjet-Campaign", "Mailjet"),
    ("X-Newsletter", "a newsletter system"),
    ("Feedback-ID", "a bulk sender"),
];

/// Mailer names of bulk platforms.
const BULK_MAILERS: &[&str] = &[
    "mailchimp",
    "sendgrid",
    "constant contact",
    "campaign monitor",
    "sendinblue",
    "mailjet",
    "phplist",
    "acymailing",
    "newsletter",
    "listmanager",
    "lyris",
    "exacttarget",
    "emarsys",
];

/// Runs the bulk rules.
pub fn analyze(message: &Message<'_>, extracted: &Extracted<'_>, tags: &mut Tags) {
    let is_discussion_list = message.header_raw("List-Post").is_some();
    if is_discussion_list {
        let list = message
            .header_raw("List-Id")
            .unwrap_or("")
            .trim()
            .to_owned();
        tags.add("MAILING_LIST", list);
        return;
    }
    if let Some(unsubscribe) = message.header_raw("List-Unsubscribe") {
        tags.add(
            "BULK_LIST_UNSUBSCRIBE",
            unsubscribe.trim().chars().take(100).collect::<String>(),
        );
    }
    if let Some(precedence) = message.header_raw("Precedence") {
        let precedence = precedence.trim().to_ascii_lowercase();
        if precedence == "bulk" || precedence == "list" {
            tags.add("BULK_PRECEDENCE", precedence);
        }
    }
    for (header, platform) in BULK_PLATFORM_HEADERS {
        if message.header_raw(*header).is_some() {
            tags.add("BULK_SENDER", format!("{platform} ({header})"));
        }
    }
    let mailer = message
        .header_raw("X-Mailer")
        .unwrap_or("")
        .to_ascii_lowercase();
    if let Some(name) = BULK_MAILERS.iter().find(|m| mailer.contains(*m)) {
        tags.add("BULK_SENDER", format!("mailer {name}"));
    }
    let has_unsubscribe_link = extracted.links.iter().any(|l| {
        let text = l.text.to_ascii_lowercase();
        let href = l.href.to_ascii_lowercase();
        text.contains("unsubscribe") || href.contains("unsubscribe") || text.contains("opt-out")
    });
    if has_unsubscribe_link {
        tags.add("BULK_UNSUBSCRIBE_TEXT", "");
    }
}

/// Whether the tags show a newsletter or bulk mailing.
pub fn is_bulk(tags: &Tags) -> bool {
    tags.has("BULK_LIST_UNSUBSCRIBE")
        || tags.has("BULK_SENDER")
        || tags.has("BULK_PRECEDENCE")
        || (tags.has("BULK_UNSUBSCRIBE_TEXT") && tags.has("HTML_ONLY"))
}
