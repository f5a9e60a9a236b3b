//! Operator test strings: GTUBE (spam) and EICAR (virus), as in SpamAssassin and rspamd.

use std::sync::LazyLock;

use memchr::memmem::Finder;

use super::Tags;
use crate::message::Extracted;

/// The Generic Test for Unsolicited Bulk Email.
pub const GTUBE: &[u8] = b"XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X";
/// The EICAR anti-virus test file (the standard 68-byte string).
pub const EICAR: &[u8] = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";

static GTUBE_FINDER: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(GTUBE));
static EICAR_FINDER: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(EICAR));

pub(super) fn prepare() {
    LazyLock::force(&GTUBE_FINDER);
    LazyLock::force(&EICAR_FINDER);
}

/// Looks for the test strings in the raw message, its text and its decoded attachments.
pub fn analyze(raw: &[u8], message: &Extracted<'_>, tags: &mut Tags) {
    let gtube = |haystack: &[u8]| GTUBE_FINDER.find(haystack).is_some();
    if gtube(raw) || gtube(message.text.as_bytes()) {
        tags.add("GTUBE", "");
    }
    if has_eicar(raw) {
        tags.add("EICAR", "in the message body");
    }
    for attachment in &message.attachments {
        if has_eicar(attachment.data) {
            let name = attachment.name.as_deref().unwrap_or("unnamed");
            tags.add("EICAR", format!("in attachment {name:?}"));
        }
    }
}

/// Whether the EICAR test string occurs in `haystack`.
pub fn has_eicar(haystack: &[u8]) -> bool {
    EICAR_FINDER.find(haystack).is_some()
}

/// Whether `needle` occurs in `haystack`.
pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    memchr::memmem::find(haystack, needle).is_some()
}
