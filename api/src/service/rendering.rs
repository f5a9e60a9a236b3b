//! Safe rendering of a stored message for the quarantine and the backup webmail: headers,
//! a plain-text preview, HTML sanitised with `ammonia` (no scripts, event handlers, styles
//! or remote content), and the attachment list. Nothing here fetches anything.

use std::collections::HashSet;

use mail_parser::{MessageParser, MimeHeaders as _};
use serde::Serialize;
use utoipa::ToSchema;

/// Longest text or HTML preview returned, in bytes.
const MAX_PREVIEW: usize = 256 * 1024;

/// One header line, unfolded, as received.
#[derive(Debug, Clone, Serialize, ToSchema, async_graphql::SimpleObject)]
pub struct HeaderLine {
    pub name: String,
    pub value: String,
}

/// An attachment's description (its content is never served here).
#[derive(Debug, Clone, Serialize, ToSchema, async_graphql::SimpleObject)]
pub struct AttachmentInfo {
    /// The file name the sender gave, if any.
    pub filename: Option<String>,
    /// MIME type, e.g. `application/pdf`.
    pub content_type: String,
    pub size_bytes: i64,
}

/// A preview that is safe to show in a browser.
#[derive(Debug, Clone, Serialize, ToSchema, async_graphql::SimpleObject)]
pub struct SafePreview {
    /// The plain-text body (from the HTML part when there is no text part).
    pub text: Option<String>,
    /// The HTML body, sanitised: no scripts, event handlers, styles, forms or frames; no
    /// remote images or other remote content (only `cid:`/`data:`-free, inert markup); links
    /// kept with `rel="noopener noreferrer nofollow"`.
    pub html: Option<String>,
    /// Parts of the preview were cut at 256 KiB.
    pub truncated: bool,
}

/// The rendering of one raw message.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub headers: Vec<HeaderLine>,
    pub preview: SafePreview,
    pub attachments: Vec<AttachmentInfo>,
}

/// Renders a raw message safely. Unparseable input gives empty parts, never an error.
pub fn render(raw: &[u8]) -> Rendered {
    let headers = header_lines(raw);
    let Some(message) = MessageParser::default().parse(raw) else {
        return Rendered {
            headers,
            preview: SafePreview {
                text: None,
                html: None,
                truncated: false,
            },
            attachments: Vec::new(),
        };
    };
    let mut truncated = false;
    let mut cut = |s: String| {
        if s.len() > MAX_PREVIEW {
            truncated = true;
            let mut end = MAX_PREVIEW;
            while !s.is_char_boundary(end) {
                end -= 1;
            }
            s[..end].to_owned()
        } else {
            s
        }
    };
    let text = message.body_text(0).map(|t| cut(t.into_owned()));
    let has_html = message.html_bodies().any(|part| part.is_text_html());
    let html = if has_html {
        message.body_html(0).map(|h| cut(sanitize_html(&h)))
    } else {
        None
    };
    let attachments = message
        .attachments()
        .map(|part| AttachmentInfo {
            filename: part.attachment_name().map(str::to_owned),
            content_type: part
                .content_type()
                .map(|ct| match ct.subtype() {
                    Some(sub) => format!("{}/{}", ct.ctype(), sub),
                    None => ct.ctype().to_owned(),
                })
                .unwrap_or_else(|| "application/octet-stream".to_owned())
                .to_lowercase(),
            size_bytes: i64::try_from(part.len()).unwrap_or(i64::MAX),
        })
        .collect();
    Rendered {
        headers,
        preview: SafePreview {
            text,
            html,
            truncated,
        },
        attachments,
    }
}

/// Sanitises untrusted HTML: ammonia's allow-list (no `script`, `style`, `iframe`, `form`,
/// no `on*` attributes, no `javascript:` URLs), minus every way of loading remote content:
/// no `img`/`picture`/`video`/`audio`/`source`/`track` elements, no `src`/`srcset`/
/// `background`/`poster` attributes; links open safely.
pub fn sanitize_html(html: &str) -> String {
    let remote: HashSet<&str> = [
        "img", "picture", "video", "audio", "source", "track", "area", "map",
    ]
    .into_iter()
    .collect();
    let mut builder = ammonia::Builder::default();
    builder
        .rm_tags(remote.iter().copied())
        .rm_generic_attributes(["background", "src", "srcset", "poster", "style"])
        .url_schemes(["http", "https", "mailto"].into_iter().collect())
        .link_rel(Some("noopener noreferrer nofollow"))
        .strip_comments(true);
    builder.clean(html).to_string()
}

/// The top-level header lines of a raw message, unfolded.
fn header_lines(raw: &[u8]) -> Vec<HeaderLine> {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .or_else(|| raw.windows(2).position(|w| w == b"\n\n"))
        .unwrap_or(raw.len());
    let head = String::from_utf8_lossy(&raw[..end]);
    let mut lines: Vec<HeaderLine> = Vec::new();
    for line in head.split('\n') {
        let line = line.trim_end_matches('\r');
        if line.starts_with([' ', '\t']) {
            if let Some(last) = lines.last_mut() {
                last.value.push(' ');
                last.value.push_str(line.trim());
            }
        } else if let Some((name, value)) = line.split_once(':') {
            lines.push(HeaderLine {
                name: name.trim().to_owned(),
                value: value.trim().to_owned(),
            });
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitising_removes_scripts_handlers_and_remote_content() {
        let clean = sanitize_html(
            r#"<p onclick="x()">Hi <b>there</b></p><script>alert(1)</script>
            <img src="https://tracker.example/p.gif"><a href="javascript:alert(1)">x</a>
            <a href="https://ok.example/">ok</a><div style="background:url(https://t.example/)">s</div>
            <iframe src="https://evil.example/"></iframe>"#,
        );
        assert!(clean.contains("<b>there</b>"), "{clean}");
        for banned in [
            "script",
            "onclick",
            "<img",
            "tracker",
            "javascript",
            "iframe",
            "style",
            "evil",
        ] {
            assert!(!clean.contains(banned), "{banned} left in {clean}");
        }
        assert!(clean.contains(r#"href="https://ok.example/""#), "{clean}");
        assert!(clean.contains("noopener"), "{clean}");
    }

    #[test]
    fn renders_headers_text_html_and_attachments() {
        let raw = b"From: a@b.example\r\nSubject: Hello\r\n  folded\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=X\r\n\r\n--X\r\nContent-Type: multipart/alternative; boundary=Y\r\n\r\n\
--Y\r\nContent-Type: text/plain\r\n\r\nplain body\r\n--Y\r\nContent-Type: text/html\r\n\r\n\
<p>html <img src=\"http://x.example/i.png\">body</p>\r\n--Y--\r\n--X\r\n\
Content-Type: application/pdf; name=\"doc.pdf\"\r\nContent-Disposition: attachment; filename=\"doc.pdf\"\r\n\
Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n--X--\r\n";
        let rendered = render(raw);
        let subject = rendered
            .headers
            .iter()
            .find(|h| h.name == "Subject")
            .unwrap();
        assert_eq!(subject.value, "Hello folded");
        assert_eq!(
            rendered.preview.text.as_deref().map(str::trim),
            Some("plain body")
        );
        let html = rendered.preview.html.unwrap();
        assert!(html.contains("html") && !html.contains("img"), "{html}");
        assert_eq!(rendered.attachments.len(), 1);
        assert_eq!(rendered.attachments[0].filename.as_deref(), Some("doc.pdf"));
        assert_eq!(rendered.attachments[0].content_type, "application/pdf");
    }

    #[test]
    fn plain_text_messages_have_no_html() {
        let rendered = render(b"Subject: x\r\n\r\njust text\r\n");
        assert!(rendered.preview.html.is_none());
        assert_eq!(
            rendered.preview.text.as_deref().map(str::trim),
            Some("just text")
        );
    }
}
