//! Analyzers: one module per signal family. Each adds named [`Tag`]s; scoring is a separate
//! step ([`rule`] gives each tag its default score and explanation).

pub mod attachments;
pub mod auth;
pub mod bulk;
pub mod content;
pub mod headers;
pub mod phishing;
pub mod phrases;
pub mod test_strings;

/// Builds the tables the analyzers build once per process (the phrase automaton, the brands'
/// look-alike targets, the test-string finders), so that the first message does not wait for
/// them. [`crate::Engine::new`] calls it.
pub(crate) fn prepare() {
    phrases::prepare();
    phishing::prepare();
    test_strings::prepare();
}

/// A fired rule with the specifics that explain it (for example the offending host).
#[derive(Debug, Clone, PartialEq)]
pub struct Tag {
    pub name: &'static str,
    pub detail: String,
    /// A score computed by the analyzer (the classifier's), replacing the rule's default.
    pub score: Option<f32>,
}

/// Collects tags, at most once per name.
#[derive(Debug, Default)]
pub struct Tags(Vec<Tag>);

impl Tags {
    /// Adds a tag unless one with the same name is already present.
    pub fn add(&mut self, name: &'static str, detail: impl Into<String>) {
        if !self.has(name) {
            self.0.push(Tag {
                name,
                detail: detail.into(),
                score: None,
            });
        }
    }

    /// Adds a tag with a computed score.
    pub fn add_scored(&mut self, name: &'static str, detail: impl Into<String>, score: f32) {
        if !self.has(name) {
            self.0.push(Tag {
                name,
                detail: detail.into(),
                score: Some(score),
            });
        }
    }

    /// Whether a tag with this name fired.
    pub fn has(&self, name: &str) -> bool {
        self.0.iter().any(|t| t.name == name)
    }

    /// The fired tags, in firing order.
    pub fn iter(&self) -> impl Iterator<Item = &Tag> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Which verdict category a rule argues for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// Generic spam evidence.
    Spam,
    /// Phishing evidence: makes a spam-scoring message a phish.
    Phish,
    /// Malware or dangerous content: the message is a virus whatever its score.
    Virus,
    /// Bulk or newsletter evidence (no score).
    Bulk,
    /// Authentication results, informative or scored.
    Auth,
    /// Evidence the message is wanted (negative scores).
    Ham,
}

/// A rule's default score and the sentence that explains it.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    pub name: &'static str,
    pub score: f32,
    pub family: Family,
    pub description: &'static str,
}

macro_rules! rules {
    ($($name:literal, $score:expr, $family:ident, $description:literal;)*) => {
        /// Every rule the engine knows, with its default score.
        pub const RULES: &[Rule] = &[$(Rule {
            name: $name,
            score: $score,
            family: Family::$family,
            description: $description,
        }),*];
    };
}

rules! {
    "GTUBE", 1000.0, Spam, "The message contains the GTUBE anti-spam test string";
    "EICAR", 0.0, Virus, "The message contains the EICAR anti-virus test file";
    "CLAMAV_VIRUS", 0.0, Virus, "The virus scanner found malware";
    "EXECUTABLE_ATTACHMENT", 0.0, Virus, "An attachment is an executable program or script";
    "EXECUTABLE_IN_ARCHIVE", 0.0, Virus, "A zip attachment contains an executable program or script";
    "DOUBLE_EXTENSION", 0.0, Virus, "An attachment hides its real type behind a double extension";
    "OFFICE_MACRO", 0.0, Virus, "An Office document contains macros";
    "ARCHIVE_BOMB", 0.0, Virus, "A zip attachment expands beyond safe limits (zip bomb)";
    "ARCHIVE_ENCRYPTED", 3.0, Spam, "A zip attachment is password-protected, so it cannot be inspected";
    "ARCHIVE_UNREADABLE", 1.0, Spam, "A zip attachment is damaged and could not be inspected";
    "FILTER_ERROR", 0.0, Spam, "The filter failed on this message, so it is held in quarantine unchecked";
    "BLOCKLISTED_SENDER", 0.0, Spam, "The sender is on a block list";
    "MISSING_FROM", 0.5, Spam, "The message has no From header";
    "MISSING_DATE", 0.5, Spam, "The message has no Date header";
    "INVALID_DATE", 1.5, Spam, "The Date header is not a valid date as mail programs write it";
    "INVALID_MSGID", 1.5, Spam, "The Message-ID header is not a valid <id@domain> identifier";
    "FORGED_MUA_OUTLOOK", 1.5, Spam, "The message claims to be written with Outlook, but its headers or structure are not what Outlook writes";
    "TO_EMPTY", 1.0, Spam, "The To header is there but names no recipient, as bulk-mail software writes it";
    "MISSING_MIME_VERSION", 1.0, Spam, "The message is multipart but has no MIME-Version header, which mail programs always write";
    "MISSING_SUBJECT", 0.8, Spam, "The message has no subject";
    "FROM_NO_ADDRESS", 0.5, Spam, "The From header has no usable address";
    "FROM_NAME_HAS_OTHER_ADDRESS", 1.0, Phish, "The sender's display name shows a different address than the real one";
    "REPLYTO_OTHER_DOMAIN", 0.1, Spam, "Replies go to a different domain than the sender's";
    "REPLYTO_FREEMAIL", 0.5, Spam, "Replies go to a free-mail address while the sender is not";
    "SUBJECT_ALL_CAPS", 0.8, Spam, "The subject is written in capital letters";
    "SUBJECT_SHOUTING", 0.7, Spam, "The subject has repeated exclamation or currency marks";
    "SUBJECT_UNIQUE_ID", 1.5, Spam, "The subject ends in a per-recipient tag after a run of spaces, as bulk-mail software writes";
    "SUBJECT_ENCODED_NEEDLESSLY", 0.1, Spam, "The subject is MIME-encoded although it is plain ASCII";
    "DATE_IN_FUTURE", 2.0, Spam, "The Date header is more than three hours ahead of the time the message arrived";
    "DATE_IN_PAST", 0.5, Spam, "The Date header is more than 30 days before the time the message arrived";
    "HELO_IP_LITERAL", 0.5, Spam, "The sending server greeted with a bare IP address";
    "HELO_NOT_FQDN", 0.5, Spam, "The sending server greeted with a name that is not a domain";
    "HTML_ONLY", 0.5, Spam, "The message is HTML only, without a text alternative";
    "HTML_IMAGE_ONLY", 0.5, Spam, "The HTML message consists of images with almost no text";
    "HTML_HIDDEN_TEXT", 0.3, Spam, "The HTML hides text from the reader";
    "HTML_FORM", 0.3, Phish, "The message body contains a form asking for input";
    "HTML_PASSWORD_FIELD", 4.0, Phish, "The message body contains a password field";
    "OBFUSCATED_WORDS", 0.5, Spam, "Words are obfuscated with separators or mixed alphabets";
    "ADVANCE_FEE", 3.5, Spam, "The text uses many phrases of advance-fee fraud (\"419\" scams)";
    "SPAM_DISCLAIMER", 1.5, Spam, "The text claims not to be spam or cites an anti-spam bill, as bulk spammers do";
    "SPAM_REMOVE_REQUEST", 1.0, Spam, "The text tells the reader how to be removed from an unasked-for mailing";
    "SALES_PITCH_3", 0.5, Spam, "The text uses several sales-pitch phrases";
    "SALES_PITCH_6", 1.5, Spam, "The text is full of sales-pitch phrases";
    "MONEY_MAKING_2", 1.0, Spam, "The text promises income or a business opportunity";
    "MONEY_MAKING_4", 2.0, Spam, "The text insists on income or a business opportunity";
    "STOCK_PROMOTION", 2.0, Spam, "The text promotes a stock (pump-and-dump vocabulary)";
    "LOAN_OFFER", 1.0, Spam, "The text offers loans, refinancing or credit repair";
    "PHARMACY_ADULT", 1.0, Spam, "The text sells pills, weight loss or adult content";
    "URL_IP_HOST", 1.0, Phish, "A link points to a bare IP address";
    "URL_USERINFO", 1.0, Phish, "A link hides its real destination behind a user-name part";
    "URL_ESCAPED_HOST", 1.5, Spam, "A link's host name is disguised with %-escapes";
    "URL_SHORTENER", 0.5, Spam, "A link uses a URL shortener";
    "LINK_TEXT_MISMATCH", 1.0, Phish, "A link's text names another site than the one it leads to";
    "LOOKALIKE_DOMAIN", 3.0, Phish, "A domain imitates a protected or well-known domain";
    "IDN_HOMOGRAPH", 4.0, Phish, "An internationalised domain uses look-alike characters";
    "DISPLAY_NAME_IMPERSONATION", 5.0, Phish, "The sender's display name impersonates one of your users or domains";
    "SPOOFED_PROTECTED_DOMAIN", 6.0, Phish, "The sender claims one of your own domains but fails authentication";
    "HTML_CREDENTIAL_FORM_ATTACHMENT", 6.0, Phish, "An HTML attachment contains a login form (credential harvesting)";
    "SPF_FAIL", 1.5, Auth, "SPF says the sending server is not allowed to send for this domain";
    "SPF_SOFTFAIL", 0.5, Auth, "SPF says the sending server is probably not allowed for this domain";
    "SPF_PASS", 0.0, Auth, "SPF authorises the sending server";
    "DKIM_VALID", 0.0, Auth, "A DKIM signature is valid";
    "DKIM_INVALID", 0.5, Auth, "A DKIM signature does not verify";
    "DMARC_FAIL_REJECT", 4.0, Phish, "DMARC fails and the sender's domain asks receivers to reject such mail";
    "DMARC_FAIL_QUARANTINE", 2.5, Phish, "DMARC fails and the sender's domain asks receivers to quarantine such mail";
    "DMARC_FAIL_NONE", 0.5, Auth, "DMARC fails (the sender's domain only monitors)";
    "DMARC_PASS", -0.5, Ham, "DMARC passes: the From domain is authenticated";
    "ARC_FAIL", 0.5, Auth, "The ARC chain of a forwarder does not verify";
    "BULK_LIST_UNSUBSCRIBE", 0.0, Bulk, "The message offers a List-Unsubscribe link";
    "BULK_PRECEDENCE", 0.0, Bulk, "The message is marked as bulk mail";
    "BULK_SENDER", 0.0, Bulk, "The message comes from a known bulk-mail platform";
    "BULK_UNSUBSCRIBE_TEXT", -1.0, Bulk, "The message has an unsubscribe link, as legitimate newsletters do";
    "MAILING_LIST", 0.0, Ham, "The message is a discussion-list post";
    "BAYES_00", 0.0, Ham, "The statistical classifier is almost sure the message is wanted (under 1%)";
    "BAYES_05", 0.0, Ham, "The statistical classifier finds the message wanted (1-5%)";
    "BAYES_20", 0.0, Ham, "The statistical classifier leans towards wanted (5-20%)";
    "BAYES_50", 0.0, Spam, "The statistical classifier is undecided (20-80%)";
    "BAYES_80", 0.0, Spam, "The statistical classifier leans towards spam (80-95%)";
    "BAYES_95", 0.0, Spam, "The statistical classifier finds the message spam (95-99%)";
    "BAYES_99", 0.0, Spam, "The statistical classifier is almost sure the message is spam (99-99.9%)";
    "BAYES_999", 0.0, Spam, "The statistical classifier is sure the message is spam (over 99.9%)";
}

/// The rule named `name`.
pub fn rule(name: &str) -> Option<&'static Rule> {
    RULES.iter().find(|r| r.name == name)
}
