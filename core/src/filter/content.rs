//! Body structure and URL rules: HTML-only mail, image-only mail, hidden text, forms,
//! obfuscated words and URL tricks.

use super::Tags;
use crate::message::{Extracted, host_is_ip, url_has_userinfo, url_host};

/// Well-known URL shorteners.
pub const SHORTENERS: &[&str] = &[
    "bit.ly",
    "tinyurl.com",
    "t.co",
    "goo.gl",
    "ow.ly",
    "is.gd",
    "buff.ly",
    "rebrand.ly",
    "cutt.ly",
    "shorturl.at",
    "tiny.cc",
    "rb.gy",
];

/// Runs the content rules.
pub fn analyze(message: &Extracted<'_>, tags: &mut Tags) {
    if message.has_html_body && !message.has_text_body {
        tags.add("HTML_ONLY", "");
    }
    let visible = message
        .text
        .chars()
        .filter(|c| c.is_alphanumeric())
        .take(200)
        .count();
    if message.has_html_body && message.images > 0 && visible < 120 {
        tags.add(
            "HTML_IMAGE_ONLY",
            format!("{} images, {visible} letters of text", message.images),
        );
    }
    if message.hidden_text_tricks > 0 {
        tags.add(
            "HTML_HIDDEN_TEXT",
            format!("{} hidden elements", message.hidden_text_tricks),
        );
    }
    if !message.form_actions.is_empty() {
        tags.add("HTML_FORM", message.form_actions[0].clone());
    }
    if message.password_inputs > 0 {
        tags.add("HTML_PASSWORD_FIELD", "");
    }
    if let Some(example) = obfuscated_word(&message.text) {
        tags.add("OBFUSCATED_WORDS", example);
    }
    let hrefs = message
        .links
        .iter()
        .map(|l| l.href.as_str())
        .chain(message.text_urls.iter().map(String::as_str));
    for href in hrefs.take(200) {
        let Some(host) = url_host(href) else { continue };
        if host_is_ip(&host) {
            tags.add("URL_IP_HOST", host.clone());
        }
        if host.contains('%') {
            // Browsers decode `http://%77%77%77.example` before resolving it; mail programs
            // have no reason to escape a host name, filter evasion has.
            tags.add("URL_ESCAPED_HOST", host.clone());
        }
        if url_has_userinfo(href) {
            tags.add("URL_USERINFO", href.chars().take(120).collect::<String>());
        }
        if SHORTENERS.contains(&host.as_str()) {
            tags.add("URL_SHORTENER", host);
        }
    }
}

/// Finds a word spelled with separators (`v.i.a.g.r.a`) or mixing Latin with Cyrillic or Greek.
fn obfuscated_word(text: &str) -> Option<String> {
    let text = crate::html::truncate(text, 32 * 1024);
    // Mixed scripts need non-ASCII text; most text is ASCII, and this is known at once.
    let ascii = text.is_ascii();
    for word in text.split_ascii_whitespace() {
        let bytes = word.as_bytes();
        // Letters at even places and one ASCII separator at odd ones: an ASCII word.
        if (7..=64).contains(&bytes.len())
            && matches!(bytes[1], b'.' | b'*' | b'_' | b'-' | b'|')
            && bytes.len() % 2 == 1
            && bytes.iter().enumerate().all(|(i, &c)| {
                if i % 2 == 1 {
                    c == bytes[1]
                } else {
                    c.is_ascii_alphabetic()
                }
            })
        {
            return Some(word.to_owned());
        }
        if !ascii && bytes.len() >= 4 && !bytes.is_ascii() {
            let latin = word.chars().any(|c| c.is_ascii_alphabetic());
            let confusable = word.chars().any(|c| {
                ('\u{0400}'..='\u{04FF}').contains(&c) || ('\u{0370}'..='\u{03FF}').contains(&c)
            });
            if latin && confusable {
                return Some(word.to_owned());
            }
        }
    }
    None
}
