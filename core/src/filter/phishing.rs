//! Phishing rules: display-name impersonation, look-alike and homograph domains, deceptive
//! links, credential-harvest forms in HTML attachments, spoofing of protected domains.

use super::Tags;
use crate::engine::TenantContext;
use crate::filter::auth::AuthResults;
use crate::html;
use crate::message::{Extracted, registrable_domain, url_host};

/// Frequently impersonated brands, protected in addition to the tenant's own domains.
pub const PROTECTED_BRANDS: &[&str] = &[
    "paypal.com",
    "ebay.com",
    "amazon.com",
    "apple.com",
    "microsoft.com",
    "google.com",
    "bankofamerica.com",
    "chase.com",
    "wellsfargo.com",
    "citibank.com",
    "citi.com",
    "barclays.co.uk",
    "hsbc.com",
    "usbank.com",
    "lloydstsb.com",
    "natwest.com",
    "netflix.com",
    "facebook.com",
    "dhl.com",
    "fedex.com",
    "postfinance.ch",
    "ubs.com",
    "swisscom.ch",
    "wachovia.com",
    "washingtonmutual.com",
    "suntrust.com",
    "fifththird.com",
    "regions.com",
    "nationwide.co.uk",
    "halifax.co.uk",
    "westernunion.com",
    "visa.com",
    "mastercard.com",
];

/// Runs the phishing rules.
pub fn analyze(
    message: &Extracted<'_>,
    mail_from_domain: Option<&str>,
    auth: Option<&AuthResults>,
    tenant: &TenantContext,
    tags: &mut Tags,
) {
    let own_targets: Vec<Target<'_>> = tenant
        .protected_domains
        .iter()
        .map(|d| Target::new(d.as_str()))
        .collect();
    let from_domain = message.from.as_ref().and_then(|f| f.domain());
    let own_domain = |domain: &str| {
        tenant
            .protected_domains
            .iter()
            .any(|p| crate::address::is_within(domain, p.as_str()))
    };

    // Display-name impersonation of the tenant's users and domains, and of brands.
    if let Some(from) = &message.from {
        let name = from.name.to_lowercase();
        let from_is_own = from_domain.is_some_and(own_domain);
        if !from_is_own && !name.is_empty() {
            if let Some(user) = tenant.protected_users.iter().find(|u| {
                let full = u.display_name.trim().to_lowercase();
                (full.split_whitespace().count() >= 2 && name.contains(&full))
                    || name == u.address.as_str()
            }) {
                tags.add(
                    "DISPLAY_NAME_IMPERSONATION",
                    format!("{:?} is the name of your user {}", from.name, user.address),
                );
            } else if let Some(domain) = tenant.protected_domains.iter().find(|d| {
                name.contains(d.as_str())
                    || name.contains(label(d.as_str())) && label(d.as_str()).len() >= 5
            }) {
                tags.add(
                    "DISPLAY_NAME_IMPERSONATION",
                    format!("{:?} names your domain {domain}", from.name),
                );
            }
        }
    }

    // Look-alike and homograph domains among sender and link domains.
    let mut candidates: Vec<(String, &str)> = Vec::new();
    if let Some(domain) = from_domain {
        candidates.push((domain.to_owned(), "sender"));
    }
    if let Some(domain) = message.reply_to.as_ref().and_then(|r| r.domain()) {
        candidates.push((domain.to_owned(), "reply-to"));
    }
    if let Some(domain) = mail_from_domain {
        candidates.push((domain.to_owned(), "envelope sender"));
    }
    for link in message.links.iter().take(50) {
        if let Some(host) = url_host(&link.href) {
            candidates.push((host, "link"));
        }
    }
    let mut seen: Vec<&str> = Vec::with_capacity(candidates.len());
    for (domain, role) in &candidates {
        let registrable = registrable_domain(domain);
        if seen.contains(&registrable) {
            continue;
        }
        seen.push(registrable);
        let protected = own_targets.iter().chain(BRAND_TARGETS.iter());
        if let Some((imitated, homograph)) = lookalike(domain, protected) {
            let rule = if homograph {
                "IDN_HOMOGRAPH"
            } else {
                "LOOKALIKE_DOMAIN"
            };
            let shown = if homograph {
                idna::domain_to_unicode(domain).0
            } else {
                domain.clone()
            };
            tags.add(rule, format!("{role} domain {shown} imitates {imitated}"));
        }
    }

    // Link text naming another host than the link's target.
    for link in message.links.iter().take(100) {
        let Some(href_host) = url_host(&link.href) else {
            continue;
        };
        let Some(text_host) = host_in_text(&link.text) else {
            continue;
        };
        if registrable_domain(&href_host) != registrable_domain(&text_host) {
            tags.add(
                "LINK_TEXT_MISMATCH",
                format!("the link says {text_host} but leads to {href_host}"),
            );
            break;
        }
    }

    // Credential-harvest forms in HTML attachments.
    for attachment in &message.attachments {
        let name = attachment
            .name
            .as_deref()
            .unwrap_or("")
            .to_ascii_lowercase();
        let is_html = attachment.content_type == "text/html"
            || name.ends_with(".html")
            || name.ends_with(".htm")
            || name.ends_with(".shtml");
        if !is_html {
            continue;
        }
        let text = String::from_utf8_lossy(&attachment.data[..attachment.data.len().min(1 << 20)]);
        let scan = html::scan(&text, 1 << 20, 4096);
        let harvest = scan.password_inputs > 0
            || (!scan.form_actions.is_empty() && scan.text_inputs > 0)
            || (scan.scripts > 0
                && text.contains("atob(")
                && text.to_lowercase().contains("password"));
        if harvest {
            tags.add(
                "HTML_CREDENTIAL_FORM_ATTACHMENT",
                format!(
                    "attachment {:?} asks for credentials",
                    attachment.name.as_deref().unwrap_or("unnamed")
                ),
            );
        }
    }

    // A protected (own) domain that fails authentication.
    if let (Some(domain), Some(auth)) = (from_domain, auth)
        && own_domain(domain)
        && auth.fails_alignment()
    {
        tags.add(
            "SPOOFED_PROTECTED_DOMAIN",
            format!("mail claims to come from {domain} but DMARC fails"),
        );
    }
}

/// The first label of the registrable domain (`paypal` for `www.paypal.com`).
fn label(domain: &str) -> &str {
    registrable_domain(domain)
        .split('.')
        .next()
        .unwrap_or(domain)
}

/// A host name written as link text (`www.bank.com`, `https://bank.com/login`).
fn host_in_text(text: &str) -> Option<String> {
    let text = text.trim();
    if text.is_empty() || text.len() > 200 || text.contains(' ') {
        return None;
    }
    if let Some(host) = url_host(text) {
        return host.contains('.').then_some(host);
    }
    let candidate = text.split('/').next()?.to_ascii_lowercase();
    let labels: Vec<&str> = candidate.split('.').collect();
    let tld = labels.last()?;
    let looks_like_host = labels.len() >= 2
        && (2..=6).contains(&tld.len())
        && tld.chars().all(|c| c.is_ascii_alphabetic())
        && labels
            .iter()
            .all(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
        && matches!(
            *tld,
            "com"
                | "net"
                | "org"
                | "info"
                | "biz"
                | "us"
                | "uk"
                | "de"
                | "ch"
                | "fr"
                | "ca"
                | "au"
                | "io"
                | "co"
        );
    looks_like_host.then_some(candidate)
}

/// A protected domain, with what [`lookalike`] compares candidates to worked out once.
#[derive(Debug)]
pub struct Target<'a> {
    domain: &'a str,
    registrable: &'a str,
    /// The first label of the registrable domain (`paypal`).
    label: &'a str,
    skeleton: String,
}

impl<'a> Target<'a> {
    pub fn new(domain: &'a str) -> Self {
        let label = label(domain);
        Self {
            domain,
            registrable: registrable_domain(domain),
            label,
            skeleton: skeleton(label),
        }
    }
}

/// [`PROTECTED_BRANDS`] as look-alike targets.
static BRAND_TARGETS: std::sync::LazyLock<Vec<Target<'static>>> =
    std::sync::LazyLock::new(|| PROTECTED_BRANDS.iter().map(|d| Target::new(d)).collect());

pub(super) fn prepare() {
    std::sync::LazyLock::force(&BRAND_TARGETS);
}

/// Whether `domain` imitates one of `protected` (tried in order); returns the imitated domain
/// and whether the imitation uses internationalised look-alike characters.
pub fn lookalike<'t, 'a: 't>(
    domain: &str,
    protected: impl IntoIterator<Item = &'t Target<'a>>,
) -> Option<(String, bool)> {
    let domain = domain.trim_end_matches('.').to_ascii_lowercase();
    let registrable = registrable_domain(&domain);
    let is_idn = domain.split('.').any(|l| l.starts_with("xn--"));
    let unicode = if is_idn {
        idna::domain_to_unicode(&domain).0
    } else {
        domain.clone()
    };
    let unicode_registrable = registrable_domain(&unicode);
    let candidate_label = unicode_registrable.split('.').next().unwrap_or("");
    let candidate_skeleton = skeleton(candidate_label);
    let hyphenated_possible = candidate_label.contains('-');
    for target in protected {
        if registrable == target.registrable || crate::address::is_within(&domain, target.domain) {
            return None;
        }
        if target.label.len() < 4 {
            continue;
        }
        // paypal.com.evil.example
        let prefixed = domain
            .strip_prefix(target.domain)
            .is_some_and(|rest| rest.starts_with('.'));
        // Cheap exit first: skeletons of different lengths (beyond one edit) cannot match.
        let length_gap = candidate_skeleton.len().abs_diff(target.label.len());
        if length_gap > 2 && !hyphenated_possible && !prefixed {
            continue;
        }
        if candidate_skeleton == target.skeleton {
            return Some((target.domain.to_owned(), is_idn));
        }
        if prefixed {
            return Some((target.domain.to_owned(), false));
        }
        // paypal-secure.com, secure-ebay.net
        let hyphenated =
            hyphenated_possible && candidate_label.split('-').any(|part| part == target.label);
        if hyphenated {
            return Some((target.domain.to_owned(), false));
        }
        if target.label.len() >= 6 && edit_distance_is_one(&candidate_skeleton, &target.skeleton) {
            return Some((target.domain.to_owned(), is_idn));
        }
    }
    None
}

/// Maps confusable characters to a canonical ASCII form.
fn skeleton(label: &str) -> String {
    let mut out = String::with_capacity(label.len());
    for c in label.chars() {
        let mapped = match c {
            'а' | 'α' | '@' => 'a',
            'е' | 'ε' | '3' => 'e',
            'о' | 'ο' | '0' => 'o',
            'р' | 'ρ' => 'p',
            'с' | 'ϲ' => 'c',
            'х' | 'χ' => 'x',
            'у' | 'γ' => 'y',
            'і' | 'ı' | 'í' | 'ì' => 'i',
            '1' | '|' | 'ӏ' => 'l',
            'ѕ' | '5' | '$' => 's',
            'ν' => 'v',
            'κ' | 'к' => 'k',
            'т' | 'τ' => 't',
            'м' => 'm',
            'н' => 'h',
            'в' => 'b',
            'ԁ' => 'd',
            'ɡ' => 'g',
            c => c.to_ascii_lowercase(),
        };
        out.push(mapped);
    }
    out.replace("rn", "m").replace("vv", "w")
}

/// Whether `a` and `b` differ by exactly one edit: a substitution, an insertion or deletion,
/// or a transposition of neighbours.
fn edit_distance_is_one(a: &str, b: &str) -> bool {
    if a.is_ascii() && b.is_ascii() {
        one_edit(a.as_bytes(), b.as_bytes())
    } else {
        let a: Vec<char> = a.chars().collect();
        let b: Vec<char> = b.chars().collect();
        one_edit(&a, &b)
    }
}

fn one_edit<T: PartialEq>(a: &[T], b: &[T]) -> bool {
    if a == b || a.len().abs_diff(b.len()) > 1 {
        return false;
    }
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    let mut i = 0;
    while i < short.len() && short[i] == long[i] {
        i += 1;
    }
    if short.len() == long.len() {
        // One substitution, or one transposition of neighbours.
        short[i + 1..] == long[i + 1..]
            || (i + 1 < short.len()
                && short[i] == long[i + 1]
                && short[i + 1] == long[i]
                && short[i + 2..] == long[i + 2..])
    } else {
        short[i..] == long[i + 1..]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookalike(domain: &str, protected: &[&str]) -> Option<(String, bool)> {
        let targets: Vec<Target<'_>> = protected.iter().map(|d| Target::new(d)).collect();
        super::lookalike(domain, &targets)
    }

    #[test]
    fn lookalikes() {
        let protected = ["paypal.com", "example.ch"];
        assert_eq!(
            lookalike("paypa1.com", &protected),
            Some(("paypal.com".into(), false))
        );
        assert_eq!(lookalike("paypal.com", &protected), None);
        assert_eq!(lookalike("www.paypal.com", &protected), None);
        assert!(lookalike("paypal.com.evil.example", &protected).is_some());
        assert!(lookalike("secure-paypal.net", &protected).is_some());
        assert!(lookalike("pyapal.com", &protected).is_some());
        // Cyrillic "а" in pаypal.com
        let ascii = idna::domain_to_ascii("pаypal.com").unwrap();
        assert_eq!(
            lookalike(&ascii, &protected),
            Some(("paypal.com".into(), true))
        );
        assert!(lookalike("exampie.ch", &protected).is_some());
        assert_eq!(
            lookalike("chose.com", &["chase.com"]),
            None,
            "too short for edit distance"
        );
        assert_eq!(
            lookalike("examp1e.ch", &protected),
            Some(("example.ch".into(), false))
        );
        assert_eq!(lookalike("unrelated.org", &protected), None);
    }

    #[test]
    fn link_text_hosts() {
        assert_eq!(
            host_in_text("www.paypal.com").as_deref(),
            Some("www.paypal.com")
        );
        assert_eq!(
            host_in_text("https://signin.ebay.com/ws").as_deref(),
            Some("signin.ebay.com")
        );
        assert_eq!(host_in_text("click here"), None);
        assert_eq!(host_in_text("v1.2"), None);
    }
}
