//! One bounded pass over a parsed message, producing what every analyzer needs.

use mail_parser::{Message, MessagePart, MimeHeaders, PartType};

use crate::html::{self, Link};

/// Text kept per message for analysis (the rest is ignored, not an error).
pub const MAX_TEXT: usize = 96 * 1024;
/// HTML bytes scanned per message.
pub const MAX_HTML: usize = 256 * 1024;
/// Parts looked at per message.
pub const MAX_PARTS: usize = 256;

/// An attachment (or inline binary part) with its decoded content.
#[derive(Debug, Clone)]
pub struct Attachment<'m> {
    pub name: Option<String>,
    /// `type/subtype`, lowercase.
    pub content_type: String,
    pub data: &'m [u8],
}

/// A mailbox from a header: display name and address.
#[derive(Debug, Clone, Default)]
pub struct Mailbox {
    pub name: String,
    /// Lowercased address, when present.
    pub address: Option<String>,
}

impl Mailbox {
    /// The lowercased domain of the address.
    pub fn domain(&self) -> Option<&str> {
        self.address.as_deref()?.rsplit_once('@').map(|(_, d)| d)
    }
}

/// The analyzable view of a message.
#[derive(Debug, Default)]
pub struct Extracted<'m> {
    pub subject: String,
    pub from: Option<Mailbox>,
    pub reply_to: Option<Mailbox>,
    /// Plain text of the text bodies (or of the HTML bodies when there is no text body).
    pub text: String,
    pub has_text_body: bool,
    pub has_html_body: bool,
    pub html_bytes: usize,
    pub links: Vec<Link>,
    /// Bare URLs found in the plain text.
    pub text_urls: Vec<String>,
    pub form_actions: Vec<String>,
    pub password_inputs: usize,
    pub images: usize,
    pub hidden_text_tricks: usize,
    pub attachments: Vec<Attachment<'m>>,
    /// Number of MIME parts (all levels).
    pub part_count: usize,
    /// Some parts were skipped because of [`MAX_PARTS`] or [`MAX_TEXT`].
    pub truncated: bool,
    /// A part had a transfer-encoding problem (bad base64 / quoted-printable).
    pub encoding_problem: bool,
    /// Sender-side header facts for the classifier (see [`CLASSIFIER_HEADERS`]).
    pub header_tokens: Vec<String>,
    /// Distinct HTML tag names.
    pub html_tags: Vec<String>,
    /// The message came through a mailing list (it has `List-Id` or `List-Post`).
    pub list_mail: bool,
}

/// Headers whose presence (and for some, value) the classifier may learn: all are set by the
/// sender's mail software, none by the receiving side or a corpus collector. Mailing-list
/// headers (List-*, Precedence, Sender, Errors-To) are left out on purpose: they describe the
/// distribution channel, and spam relayed by a list must be judged by its content.
pub const CLASSIFIER_HEADERS: &[&str] = &[
    "x-mailer",
    "user-agent",
    "x-msmail-priority",
    "x-priority",
    "importance",
    "x-mimeole",
    "mime-version",
    "content-type",
    "content-transfer-encoding",
    "reply-to",
    "organization",
    "in-reply-to",
    "references",
    "thread-index",
    "thread-topic",
    "x-originating-ip",
    "disposition-notification-to",
    "x-accept-language",
    "x-face",
    "x-url",
    "content-language",
    "content-disposition",
    "x-ms-has-attach",
    "x-ms-tnef-correlator",
    "comments",
];

fn header_tokens(message: &Message<'_>) -> Vec<String> {
    let mut out = Vec::new();
    for (name, value) in message.headers_raw().take(100) {
        let name = name.to_ascii_lowercase();
        if !CLASSIFIER_HEADERS.contains(&name.as_str()) {
            continue;
        }
        out.push(format!("h:{name}"));
        let value = value.trim().to_ascii_lowercase();
        match name.as_str() {
            "x-mailer" | "user-agent" => {
                for word in value
                    .split(|c: char| !c.is_ascii_alphabetic())
                    .filter(|w| w.len() >= 2)
                    .take(3)
                {
                    out.push(format!("xm:{word}"));
                }
            }
            "x-priority" | "x-msmail-priority" | "importance" | "precedence" => {
                out.push(format!(
                    "{name}:{}",
                    value.chars().take(12).collect::<String>()
                ));
            }
            "content-type" => {
                let ctype = value.split(';').next().unwrap_or("").trim().to_owned();
                out.push(format!("ct:{ctype}"));
                if let Some(pos) = value.find("charset=") {
                    let charset: String = value[pos + 8..]
                        .trim_start_matches('"')
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
                        .collect();
                    out.push(format!("cs:{charset}"));
                }
            }
            "content-transfer-encoding" => out.push(format!("cte:{value}")),
            _ => {}
        }
    }
    out.push(message_id_token(message).to_owned());
    out
}

/// How the Message-ID relates to the sender: `mid:same` when its domain is the From address's
/// registrable domain (as legitimate mail systems write it), `mid:other`, or `mid:none`. Only
/// the relation is learned, never the host name (which may be a relay's or a collector's).
fn message_id_token(message: &Message<'_>) -> &'static str {
    let Some(id) = message.header_raw("Message-ID") else {
        return "mid:none";
    };
    let id_domain = id
        .trim()
        .trim_matches(['<', '>'])
        .rsplit_once('@')
        .map(|(_, d)| d.trim_end_matches('>').to_ascii_lowercase());
    let from_domain =
        mailbox(message.from()).and_then(|m| m.domain().map(|d| registrable_domain(d).to_owned()));
    match (id_domain, from_domain) {
        (Some(id), Some(from)) if registrable_domain(&id) == from => "mid:same",
        _ => "mid:other",
    }
}

/// The Subject as its reader should see it. mail-parser decodes RFC 2047 encoded words, but a
/// subject that a legacy client sent as raw 8-bit bytes in a charset other than UTF-8 comes
/// out with replacement characters: it is decoded in the charset the message declares for its
/// parts, else in the one `chardetng` (Firefox's detector) guesses from the bytes and the
/// sender's top-level domain.
pub fn subject(message: &Message<'_>) -> String {
    let parsed = message.subject().unwrap_or("");
    if !parsed.contains('\u{FFFD}') {
        return parsed.to_owned();
    }
    let raw = message
        .headers()
        .iter()
        .find(|h| h.name == mail_parser::HeaderName::Subject)
        .and_then(|h| {
            message
                .raw_message
                .get(h.offset_start as usize..h.offset_end as usize)
        });
    let Some(raw) = raw.filter(|raw| std::str::from_utf8(raw).is_err()) else {
        return parsed.to_owned();
    };
    let declared = message
        .parts
        .iter()
        .take(MAX_PARTS)
        .filter_map(|part| part.content_type()?.attribute("charset"))
        .find_map(|label| encoding_rs::Encoding::for_label(label.trim().as_bytes()))
        .filter(|encoding| *encoding != encoding_rs::UTF_8);
    let encoding = declared.unwrap_or_else(|| {
        let tld = mailbox(message.from())
            .and_then(|from| {
                from.domain()
                    .map(|d| d.rsplit('.').next().unwrap_or(d).to_owned())
            })
            .filter(|tld| {
                !tld.is_empty()
                    && tld
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            });
        let mut detector = chardetng::EncodingDetector::new();
        detector.feed(raw, true);
        detector.guess(tld.as_deref().map(str::as_bytes), false)
    });
    let (text, _, _) = encoding.decode(raw);
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Extracts the analyzable view of `message`, within the module's limits.
pub fn extract<'m>(message: &'m Message<'_>) -> Extracted<'m> {
    let mut out = Extracted {
        subject: subject(message),
        from: mailbox(message.from()),
        reply_to: mailbox(message.reply_to()),
        ..Default::default()
    };
    out.part_count = message.parts.len();
    out.header_tokens = header_tokens(message);
    out.list_mail =
        message.header_raw("List-Id").is_some() || message.header_raw("List-Post").is_some();
    if message.parts.len() > MAX_PARTS {
        out.truncated = true;
    }
    let mut html_text = String::new();
    for (index, part) in message.parts.iter().enumerate().take(MAX_PARTS) {
        out.encoding_problem |= part.is_encoding_problem;
        let index = index as u32;
        let is_body_text = message.text_body.contains(&index);
        let is_body_html = message.html_body.contains(&index);
        match &part.body {
            PartType::Text(text) if is_body_text || (is_body_html && !part.is_text_html()) => {
                out.has_text_body = true;
                append(&mut out.text, text, &mut out.truncated);
            }
            PartType::Html(html_body) if is_body_html || is_body_text => {
                out.has_html_body = true;
                out.html_bytes += html_body.len();
                let scan = html::scan(html_body, MAX_HTML, MAX_TEXT);
                append(&mut html_text, &scan.text, &mut out.truncated);
                out.links.extend(scan.links);
                out.form_actions.extend(scan.form_actions);
                out.password_inputs += scan.password_inputs;
                out.images += scan.images;
                out.hidden_text_tricks += scan.hidden_text_tricks;
                for tag in scan.tag_names {
                    if !out.html_tags.contains(&tag) {
                        out.html_tags.push(tag);
                    }
                }
            }
            PartType::Text(_) | PartType::Html(_) => {
                if part.attachment_name().is_some() || is_attachment(part) {
                    out.attachments.push(attachment(part, part.contents()));
                }
            }
            PartType::Binary(data) | PartType::InlineBinary(data) => {
                out.attachments.push(attachment(part, data));
            }
            PartType::Message(_) | PartType::Multipart(_) => {}
        }
    }
    if !out.has_text_body || out.text.trim().is_empty() {
        out.text = html_text;
    }
    out.text_urls = find_urls(&out.text, 100);
    out
}

fn is_attachment(part: &MessagePart<'_>) -> bool {
    part.content_disposition()
        .is_some_and(|d| d.ctype().eq_ignore_ascii_case("attachment"))
}

fn attachment<'m>(part: &'m MessagePart<'_>, data: &'m [u8]) -> Attachment<'m> {
    let content_type = part
        .content_type()
        .map(|ct| {
            let mut s = ct.ctype().to_ascii_lowercase();
            if let Some(sub) = ct.subtype() {
                s.push('/');
                s.push_str(&sub.to_ascii_lowercase());
            }
            s
        })
        .unwrap_or_default();
    Attachment {
        name: part.attachment_name().map(str::to_owned),
        content_type,
        data,
    }
}

fn append(out: &mut String, text: &str, truncated: &mut bool) {
    if out.len() >= MAX_TEXT {
        *truncated = true;
        return;
    }
    let room = MAX_TEXT - out.len();
    if text.len() > room {
        *truncated = true;
    }
    if !out.is_empty() {
        out.push('\n');
    }
    out.push_str(html::truncate(text, room));
}

fn mailbox(address: Option<&mail_parser::Address<'_>>) -> Option<Mailbox> {
    let first = address?.first()?;
    Some(Mailbox {
        name: first.name().unwrap_or("").trim().to_owned(),
        address: first
            .address()
            .map(|a| a.trim().trim_matches(['<', '>']).to_ascii_lowercase())
            .filter(|a| a.contains('@')),
    })
}

impl Extracted<'_> {
    /// The visible text without a mailing list's footer ([`list_footer_start`], on list mail
    /// only): the footer is the channel's, not the sender's.
    pub fn own_text(&self) -> &str {
        let footer = if self.list_mail {
            list_footer_start(&self.text)
        } else {
            None
        };
        &self.text[..footer.unwrap_or(self.text.len())]
    }
}

/// Where a mailing list's footer starts in a text body: the last line of at least 20
/// underscores, or the last `-- ` signature line, in the last 1,000 bytes. List software
/// appends it to every post, spam included, so it says nothing about the message.
pub fn list_footer_start(text: &str) -> Option<usize> {
    let tail_start = text.len().saturating_sub(1000);
    let tail_start = (tail_start..=text.len())
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(text.len());
    let tail = &text[tail_start..];
    let mut found = None;
    let mut offset = 0;
    for line in tail.split_inclusive('\n') {
        let trimmed = line.trim_end();
        if trimmed == "--" && line.starts_with("-- ")
            || (trimmed.len() >= 20 && trimmed.bytes().all(|b| b == b'_'))
        {
            found = Some(tail_start + offset);
        }
        offset += line.len();
    }
    found
}

/// Finds `http(s)://` and `www.` URLs in plain text.
pub fn find_urls(text: &str, max: usize) -> Vec<String> {
    let mut urls = Vec::new();
    let bytes = text.as_bytes();
    // Where scanning may resume: URLs do not overlap.
    let mut next = 0;
    // Every URL has a `:` (`http://`, `https://`) or a `.` (`www.`) a few bytes after its start.
    for at in memchr::memchr2_iter(b':', b'.', bytes) {
        if urls.len() >= max {
            break;
        }
        let ends_with = |start: usize, word: &[u8]| {
            start >= next && bytes[start..at].eq_ignore_ascii_case(word)
        };
        let start = if bytes[at] == b':' {
            if !bytes[at + 1..].starts_with(b"//") {
                continue;
            }
            match at.checked_sub(4) {
                Some(start) if ends_with(start, b"http") => start,
                _ => match at.checked_sub(5) {
                    Some(start) if ends_with(start, b"https") => start,
                    _ => continue,
                },
            }
        } else {
            match at.checked_sub(3) {
                Some(start) if ends_with(start, b"www") => start,
                _ => continue,
            }
        };
        // Something follows the scheme (or `www.`), and the URL does not start inside a word.
        let shortest = if at - start == 5 { 9 } else { 8 };
        if bytes.len() - start < shortest || (start > 0 && bytes[start - 1].is_ascii_alphanumeric())
        {
            continue;
        }
        let rest = &bytes[start..];
        let end = rest
            .iter()
            .position(|&b| b.is_ascii_whitespace() || b"<>\"'()[]".contains(&b) || b >= 0x80)
            .unwrap_or(rest.len());
        urls.push(
            text[start..start + end]
                .trim_end_matches(['.', ',', ';'])
                .to_owned(),
        );
        next = start + end.max(1);
    }
    urls
}

/// The lowercase host of a URL (`http://user@host:80/x` -> `host`), if any.
pub fn url_host(url: &str) -> Option<String> {
    let url = url.trim();
    let rest = if let Some(pos) = url.find("://") {
        let scheme = &url[..pos];
        if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
            return None;
        }
        &url[pos + 3..]
    } else if url.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("www.")) {
        url
    } else {
        return None;
    };
    let authority = rest.split(['/', '?', '#', '\\']).next().unwrap_or("");
    let host_port = authority.rsplit('@').next().unwrap_or("");
    let host = if host_port.starts_with('[') {
        host_port
            .split(']')
            .next()
            .unwrap_or("")
            .trim_start_matches('[')
    } else {
        host_port.split(':').next().unwrap_or("")
    };
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    if host.is_empty() { None } else { Some(host) }
}

/// Whether the URL has user info before the host (`http://paypal.com@evil.example/`).
pub fn url_has_userinfo(url: &str) -> bool {
    let Some(pos) = url.find("://") else {
        return false;
    };
    let authority = url[pos + 3..].split(['/', '?', '#']).next().unwrap_or("");
    authority.contains('@')
}

/// An approximation of the registrable domain: the last two labels, or three under common
/// second-level public suffixes (`co.uk`, `com.au`, ...).
pub fn registrable_domain(host: &str) -> &str {
    let mut labels = host.rsplitn(4, '.');
    let tld = labels.next().unwrap_or(host);
    let Some(second) = labels.next() else {
        return host;
    };
    let keep = match labels.next() {
        Some(third)
            if tld.len() == 2
                && matches!(
                    second,
                    "co" | "com" | "net" | "org" | "gov" | "ac" | "edu" | "ne" | "or"
                ) =>
        {
            tld.len() + second.len() + third.len() + 2
        }
        _ => tld.len() + second.len() + 1,
    };
    &host[host.len() - keep.min(host.len())..]
}

/// Whether a host is a literal IPv4/IPv6 address (also decimal or hex encoded IPv4).
pub fn host_is_ip(host: &str) -> bool {
    host.parse::<std::net::IpAddr>().is_ok()
        || (host.len() >= 8 && host.bytes().all(|b| b.is_ascii_digit()))
        || (host.starts_with("0x") && host[2..].bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subject_of(raw: &[u8]) -> String {
        subject(&mail_parser::MessageParser::default().parse(raw).unwrap())
    }

    #[test]
    fn raw_8bit_subjects_are_decoded_in_the_declared_or_detected_charset() {
        // EUC-KR bytes for "광고" (advertisement), charset declared on the body.
        let mut korean = b"From: a@b.example\r\nSubject: [".to_vec();
        korean.extend_from_slice(&[0xb1, 0xa4, 0xb0, 0xed]);
        korean.extend_from_slice(
            b"] Best 5\r\nContent-Type: text/plain; charset=ks_c_5601-1987\r\n\r\nhi\r\n",
        );
        assert_eq!(subject_of(&korean), "[광고] Best 5");
        // Latin-1 pound sign, no charset anywhere: detected, with the sender's domain as a
        // hint (one byte alone could be any single-byte charset).
        let mut pounds = b"From: news@paper.co.uk\r\nSubject: Gambler wins ".to_vec();
        pounds.push(0xa3);
        pounds.extend_from_slice(b"7,000 - and spends it all\r\n\r\nhi\r\n");
        assert_eq!(
            subject_of(&pounds),
            "Gambler wins £7,000 - and spends it all"
        );
        // UTF-8 and RFC 2047 subjects are left as mail-parser decodes them.
        let utf8 = "From: a@b.example\r\nSubject: Grüße\r\n\r\nhi\r\n";
        assert_eq!(subject_of(utf8.as_bytes()), "Grüße");
        let encoded = b"Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\n\r\nhi\r\n";
        assert_eq!(subject_of(encoded), "Grüße");
    }

    #[test]
    fn list_footers_are_found_near_the_end_only() {
        let post = "Buy now at http://offer.example/\n\
                    _______________________________________________\n\
                    Talk mailing list\nhttps://lists.example.org/listinfo/talk\n";
        let start = list_footer_start(post).unwrap();
        assert!(post[..start].ends_with("offer.example/\n"));
        assert!(post[start..].starts_with("____"));
        let signed = "Hello\n-- \nIrish Linux Users' Group\n";
        assert_eq!(
            &signed[list_footer_start(signed).unwrap()..],
            "-- \nIrish Linux Users' Group\n"
        );
        assert_eq!(
            list_footer_start("no footer here\n--\nnot a delimiter"),
            None
        );
        let long = format!("{}\n{}\nbody", "_".repeat(30), "x".repeat(2000));
        assert_eq!(list_footer_start(&long), None);
    }

    #[test]
    fn url_helpers() {
        assert_eq!(
            url_host("http://User@PayPal.com:80/x").as_deref(),
            Some("paypal.com")
        );
        assert_eq!(
            url_host("www.example.org/path").as_deref(),
            Some("www.example.org")
        );
        assert_eq!(url_host("mailto:a@b.c"), None);
        assert!(url_has_userinfo("http://paypal.com@evil.example/"));
        assert_eq!(registrable_domain("a.b.example.co.uk"), "example.co.uk");
        assert_eq!(registrable_domain("signin.ebay.com"), "ebay.com");
        assert_eq!(registrable_domain("localhost"), "localhost");
        assert!(host_is_ip("192.168.0.1"));
        assert!(host_is_ip("3232235521"));
        assert_eq!(
            find_urls("see http://a.example/x, and www.b.example.", 10),
            vec!["http://a.example/x".to_owned(), "www.b.example".to_owned()]
        );
        assert_eq!(
            find_urls(
                "HTTPS://A.example xhttp://b.example http://www.c.example https://",
                10
            ),
            vec![
                "HTTPS://A.example".to_owned(),
                "http://www.c.example".to_owned()
            ]
        );
    }

    /// The byte-at-a-time scan that [`find_urls`] replaced, as the specification it must match.
    fn find_urls_bytewise(text: &str, max: usize) -> Vec<String> {
        let mut urls = Vec::new();
        let bytes = text.as_bytes();
        let mut i = 0;
        while i + 4 < bytes.len() && urls.len() < max {
            let rest = &bytes[i..];
            let starts = rest.len() > 7
                && (rest[..7].eq_ignore_ascii_case(b"http://")
                    || (rest.len() > 8 && rest[..8].eq_ignore_ascii_case(b"https://"))
                    || rest[..4].eq_ignore_ascii_case(b"www."));
            if starts && (i == 0 || !bytes[i - 1].is_ascii_alphanumeric()) {
                let end = rest
                    .iter()
                    .position(|&b| {
                        b.is_ascii_whitespace() || b"<>\"'()[]".contains(&b) || b >= 0x80
                    })
                    .unwrap_or(rest.len());
                urls.push(
                    text[i..i + end]
                        .trim_end_matches(['.', ',', ';'])
                        .to_owned(),
                );
                i += end.max(1);
            } else {
                i += 1;
            }
        }
        urls
    }

    #[test]
    fn find_urls_matches_the_bytewise_scan() {
        // Pseudo-random texts of URL fragments (a fixed linear congruential sequence).
        const PIECES: &[&str] = &[
            "h", "H", "t", "p", "s", "S", "w", "W", ":", "/", ".", " ", "x", "é", "<", "http",
            "https", "www", "://", "WWW.",
        ];
        let mut state: u64 = 0x2545_F491_4F6C_DD1D;
        for _ in 0..20_000 {
            let mut text = String::new();
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            for _ in 0..(state >> 60) * 3 {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1);
                text.push_str(PIECES[(state >> 33) as usize % PIECES.len()]);
            }
            assert_eq!(
                find_urls(&text, 3),
                find_urls_bytewise(&text, 3),
                "{text:?}"
            );
        }
    }
}
