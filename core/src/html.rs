//! A small, allocation-light HTML scanner: visible text, links, forms and images.
//!
//! It is not a conforming HTML parser; it is tolerant of any input (including truncated
//! markup) and linear in its length, which is what a filter needs.

use std::borrow::Cow;

/// A hyperlink: where it points and what it says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub href: String,
    pub text: String,
}

/// What the scanner found in one HTML document.
#[derive(Debug, Clone, Default)]
pub struct HtmlScan {
    /// Visible text, whitespace-collapsed.
    pub text: String,
    pub links: Vec<Link>,
    /// `action` attributes of `<form>` elements (empty string when absent).
    pub form_actions: Vec<String>,
    pub password_inputs: usize,
    pub text_inputs: usize,
    pub images: usize,
    pub scripts: usize,
    /// Text hidden with `display:none`, zero font size or invisible colours.
    pub hidden_text_tricks: usize,
    /// Distinct tag names seen (at most 64), a style signal for the classifier.
    pub tag_names: Vec<String>,
}

const MAX_LINKS: usize = 200;

/// Scans at most `max_input` bytes of `html`, keeping at most `max_text` bytes of text.
pub fn scan(html: &str, max_input: usize, max_text: usize) -> HtmlScan {
    let html = truncate(html, max_input);
    let bytes = html.as_bytes();
    let mut out = HtmlScan::default();
    let mut i = 0;
    let mut open_link: Option<(String, usize)> = None;
    let mut text_start = 0;
    while i < bytes.len() {
        let Some(offset) = memchr_lt(&bytes[i..]) else {
            push_text(&mut out.text, &html[text_start..], max_text);
            break;
        };
        let lt = i + offset;
        push_text(&mut out.text, &html[text_start..lt], max_text);
        // Comments.
        if bytes[lt..].starts_with(b"<!--") {
            i = find(bytes, lt + 4, b"-->").map_or(bytes.len(), |end| end + 3);
            text_start = i;
            continue;
        }
        let end = match memchr::memchr(b'>', &bytes[lt + 1..]) {
            Some(end) => lt + 1 + end,
            None => bytes.len(),
        };
        let tag = &html[lt + 1..end.min(html.len())];
        i = (end + 1).min(bytes.len());
        text_start = i;
        let (closing, name, attrs) = split_tag(tag);
        if !closing
            && !name.is_empty()
            && name.len() <= 12
            && out.tag_names.len() < 64
            && name.bytes().all(|b| b.is_ascii_alphanumeric())
            && !out.tag_names.iter().any(|seen| *seen == name)
        {
            out.tag_names.push(name.clone().into_owned());
        }
        match (closing, name.as_ref()) {
            (false, "script") | (false, "style") => {
                if name == "script" {
                    out.scripts += 1;
                }
                let close = format!("</{name}");
                i = find_ci(bytes, i, close.as_bytes()).unwrap_or(bytes.len());
                text_start = i;
            }
            (false, "a") => {
                if let Some(href) = attribute(attrs, "href")
                    && out.links.len() < MAX_LINKS
                {
                    open_link = Some((decode_entities(href.trim()), out.text.len()));
                }
            }
            (true, "a") => {
                if let Some((href, start)) = open_link.take() {
                    let text = out.text.get(start..).unwrap_or("").trim().to_owned();
                    out.links.push(Link { href, text });
                }
            }
            (false, "form") => {
                out.form_actions
                    .push(attribute(attrs, "action").unwrap_or("").to_owned());
            }
            (false, "input") => match attribute(attrs, "type").map(str::to_ascii_lowercase) {
                Some(kind) if kind == "password" => out.password_inputs += 1,
                Some(kind) if kind == "hidden" || kind == "submit" || kind == "button" => {}
                _ => out.text_inputs += 1,
            },
            (false, "img") => out.images += 1,
            (false, "br" | "p" | "div" | "td" | "tr" | "li" | "h1" | "h2" | "h3" | "table")
            | (true, "p" | "div" | "td" | "tr" | "li" | "table") => {
                push_text(&mut out.text, " ", max_text);
            }
            _ => {}
        }
        if !closing && let Some(style) = attribute(attrs, "style") {
            let style = style.to_ascii_lowercase().replace(' ', "");
            if style.contains("display:none")
                || style.contains("font-size:0")
                || style.contains("visibility:hidden")
            {
                out.hidden_text_tricks += 1;
            }
        }
    }
    if let Some((href, start)) = open_link.take() {
        let text = out.text.get(start..).unwrap_or("").trim().to_owned();
        out.links.push(Link { href, text });
    }
    out.text = decode_entities(&out.text);
    out
}

fn memchr_lt(bytes: &[u8]) -> Option<usize> {
    memchr::memchr(b'<', bytes)
}

fn find(haystack: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    memchr::memmem::find(haystack.get(from..)?, needle).map(|p| p + from)
}

/// Finds `needle`, which starts with `<`, ignoring ASCII case.
fn find_ci(haystack: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    let haystack = haystack.get(from..)?;
    memchr::memchr_iter(b'<', haystack)
        .find(|&at| {
            haystack
                .get(at..at + needle.len())
                .is_some_and(|w| w.eq_ignore_ascii_case(needle))
        })
        .map(|p| p + from)
}

/// Returns (is closing tag, lowercase name, attribute text). The name is borrowed when it
/// is lowercase already, as most are.
fn split_tag(tag: &str) -> (bool, Cow<'_, str>, &str) {
    let (closing, rest) = match tag.strip_prefix('/') {
        Some(rest) => (true, rest),
        None => (false, tag),
    };
    let name_end = rest
        .find(|c: char| c.is_ascii_whitespace() || c == '/' || c == '>')
        .unwrap_or(rest.len());
    let name = &rest[..name_end];
    let name = if name.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(name.to_ascii_lowercase())
    } else {
        Cow::Borrowed(name)
    };
    (closing, name, &rest[name_end..])
}

/// Finds an attribute value (quoted or bare) in a tag's attribute text.
pub fn attribute<'a>(attrs: &'a str, name: &str) -> Option<&'a str> {
    let bytes = attrs.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        // Skip to the start of an attribute name.
        while i < bytes.len() && !bytes[i].is_ascii_alphabetic() {
            i += 1;
        }
        let start = i;
        while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'-') {
            i += 1;
        }
        let key = &attrs[start..i];
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        if i < bytes.len() && bytes[i] == b'=' {
            i += 1;
            while i < bytes.len() && bytes[i].is_ascii_whitespace() {
                i += 1;
            }
            let (value_start, value_end) =
                if i < bytes.len() && (bytes[i] == b'"' || bytes[i] == b'\'') {
                    let quote = bytes[i];
                    let value_start = i + 1;
                    let value_end = bytes[value_start..]
                        .iter()
                        .position(|&b| b == quote)
                        .map_or(bytes.len(), |p| p + value_start);
                    i = (value_end + 1).min(bytes.len());
                    (value_start, value_end)
                } else {
                    let value_start = i;
                    while i < bytes.len() && !bytes[i].is_ascii_whitespace() {
                        i += 1;
                    }
                    (value_start, i)
                };
            if key.eq_ignore_ascii_case(name) {
                return attrs.get(value_start..value_end);
            }
        } else if start == i {
            i += 1;
        }
    }
    None
}

/// Appends `text` with each whitespace run collapsed to one space, while `out` is shorter
/// than `max` bytes (the last character may cross it).
fn push_text(out: &mut String, text: &str, max: usize) {
    if out.len() >= max || text.is_empty() {
        return;
    }
    let mut last_space = out.ends_with(' ') || out.is_empty();
    // Appends a run of non-whitespace; false once `out` is full.
    let push_run = |out: &mut String, run: &str| {
        if out.len() + run.len() <= max {
            out.push_str(run);
            return true;
        }
        for c in run.chars() {
            if out.len() >= max {
                return false;
            }
            out.push(c);
        }
        true
    };
    let bytes = text.as_bytes();
    let (mut at, mut run_start) = (0, 0);
    while at < bytes.len() {
        let (whitespace, len) = match bytes[at] {
            b @ 0..0x80 => (matches!(b, b'\t' | b'\n' | 0x0B | 0x0C | b'\r' | b' '), 1),
            _ => {
                let c = text[at..].chars().next().unwrap_or_default();
                (c.is_whitespace(), c.len_utf8())
            }
        };
        if whitespace {
            if run_start < at {
                if !push_run(out, &text[run_start..at]) {
                    return;
                }
                last_space = false;
            }
            if out.len() >= max {
                return;
            }
            if !last_space {
                out.push(' ');
                last_space = true;
            }
            run_start = at + len;
        }
        at += len;
    }
    if run_start < bytes.len() {
        push_run(out, &text[run_start..]);
    }
}

/// Decodes the common named entities and numeric character references.
pub fn decode_entities(text: &str) -> String {
    if !text.contains('&') {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let end = rest.as_bytes().iter().take(12).position(|&b| b == b';');
        let decoded = end.and_then(|end| {
            let entity = &rest[1..end];
            let c = match entity {
                "nbsp" => Some(' '),
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                _ => entity.strip_prefix('#').and_then(|num| {
                    let code = match num.strip_prefix(['x', 'X']) {
                        Some(hex) => u32::from_str_radix(hex, 16).ok(),
                        None => num.parse().ok(),
                    };
                    code.and_then(char::from_u32)
                }),
            };
            c.map(|c| (c, end + 1))
        });
        match decoded {
            Some((c, len)) => {
                out.push(c);
                rest = &rest[len..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The longest prefix of `s` not longer than `max` bytes that ends on a char boundary.
pub fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extracts_text_links_and_forms() {
        let html = r#"<html><style>p{}</style><p>Hello&nbsp;<b>you</b></p>
            <a href="http://evil.example/login">https://www.paypal.com</a>
            <form action="http://evil.example/post"><input type=text name=u>
            <input type="password" name=p></form><img src=x><!-- hidden --></html>"#;
        let scan = scan(html, 1 << 20, 1 << 20);
        assert!(scan.text.contains("Hello you"), "{}", scan.text);
        assert_eq!(scan.links.len(), 1);
        assert_eq!(scan.links[0].href, "http://evil.example/login");
        assert_eq!(scan.links[0].text, "https://www.paypal.com");
        assert_eq!(
            scan.form_actions,
            vec!["http://evil.example/post".to_owned()]
        );
        assert_eq!(scan.password_inputs, 1);
        assert_eq!(scan.images, 1);
    }

    #[test]
    fn text_whitespace_collapses_and_stops_at_the_limit() {
        let mut out = String::new();
        push_text(&mut out, "  a\u{a0}\u{3000}b \t\r\nc\u{2028}", 100);
        assert_eq!(out, "a b c ");
        push_text(&mut out, " d", 100);
        assert_eq!(out, "a b c d");
        let mut out = String::new();
        push_text(&mut out, "abc def", 5);
        assert_eq!(out, "abc d");
        push_text(&mut out, "more", 5);
        assert_eq!(out, "abc d");
        let mut out = String::new();
        push_text(&mut out, "ab éé", 4);
        // The last character may cross the limit; none follows it.
        assert_eq!(out, "ab é");
        let scan = scan("<SCRIPT>x</p>y</Script>z", 1 << 20, 1 << 20);
        assert_eq!(scan.text, "z");
    }

    #[test]
    fn survives_truncated_markup() {
        for html in [
            "<a href=\"x",
            "<",
            "<!--",
            "<script>",
            "&#xFFFFFFFF;",
            "<a href=x>t",
        ] {
            let _ = scan(html, 100, 100);
        }
    }
}
