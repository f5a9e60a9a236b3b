//! Body phrase rules, in the manner of SpamAssassin's body tests: families of phrases that
//! mark a kind of unsolicited mail (advance-fee fraud, stock promotion, sales pitches,
//! spammers' removal disclaimers, ...). A family fires when the subject and visible text
//! use enough *distinct* phrases of it, so one innocent "click here" or "credit card"
//! does not count; its explanation quotes the phrases found.
//!
//! Matching is one ASCII-case-insensitive Aho-Corasick pass over the subject and the
//! visible text with whitespace runs collapsed to one space, on word boundaries. Quoted
//! lines (`>`) and a mailing list's footer are left out: they are someone else's words.

use std::sync::LazyLock;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, AhoCorasickKind, MatchKind};

use super::Tags;
use crate::message::Extracted;

/// Bytes of text searched.
const MAX_SEARCHED: usize = 32 * 1024;

/// A family of phrases and how many distinct ones fire its rules.
struct Family {
    /// Rules by the distinct phrases they need, weakest first.
    rules: &'static [(usize, &'static str)],
    phrases: &'static [&'static str],
}

const FAMILIES: &[Family] = &[
    Family {
        rules: &[(6, "ADVANCE_FEE")],
        phrases: &[
            "next of kin",
            "business proposal",
            "urgent business",
            "business transaction",
            "strictest confidence",
            "utmost confidence",
            "absolute confidence",
            "strictly confidential",
            "foreign partner",
            "foreign account",
            "overseas account",
            "transfer of the fund",
            "transfer the fund",
            "transfer of funds",
            "transfer this money",
            "million united states dollars",
            "million us dollars",
            "united states dollars",
            "us$",
            "head of state",
            "central bank",
            "nigeria",
            "nigerian",
            "lagos",
            "sierra leone",
            "cote d'ivoire",
            "ivory coast",
            "security company",
            "diplomatic",
            "over-invoiced",
            "over invoiced",
            "beneficiary",
            "barrister",
            "my late father",
            "my late husband",
            "late president",
            "god fearing",
            "dormant account",
            "unclaimed",
            "of the total sum",
            "percent of the total",
            "% of the total",
            "mutual benefit",
            "your assistance",
            "private email",
            "please reply only to",
            "honest and trustworthy",
            "trustworthy person",
            "i got your contact",
            "your contact through",
            "do not know you",
            "asylum",
            "no risk involved",
            "100% risk free",
            "100% legal",
            "trust worthy",
            "reliable person",
            "honest and reliable",
            "very confidential",
            "confidential request",
            "100% confidentiality",
            "finance company",
            "security/finance company",
            "finance and security company",
            "trunk box",
            "deposited the sum",
            "the sum of",
            "million dollars",
            "million usd",
            "usd",
            "lucrative business",
            "viable business",
            "business venture",
            "be of assistance",
            "assist me",
            "adequately compensated",
            "the late",
            "late father",
            "inheritance",
            "deceased",
            "widow",
            "refugee",
            "confiscate",
            "regime",
            "zimbabwe",
            "angola",
            "south africa",
            "ghana",
            "togo",
            "benin",
            "liberia",
            "congo",
            "abidjan",
            "johannesburg",
            "dakar",
            "accra",
            "kindly",
            "prompt response",
            "urgent response",
            "god bless",
        ],
    },
    Family {
        rules: &[(1, "SPAM_DISCLAIMER")],
        phrases: &[
            "this is not spam",
            "this is not a spam",
            "this is not unsolicited",
            "not unsolicited",
            "not be considered spam",
            "cannot be considered spam",
            "bill s. 1618",
            "bill s.1618",
            "s. 1618",
            "section 301",
            "one time mailing",
            "one-time mailing",
            "one time e-mail",
            "one-time email",
            "email address was obtained",
            "e-mail address was obtained",
            "address has been obtained",
            "address was collected",
            "opt-in list",
            "opt in list",
            "opted in to receive",
            "you have opted in",
            "sent in compliance with",
            "in compliance with the proposed",
            "never receive another",
            "will not receive any further",
            "you will not be contacted again",
            "we apologize for any inconvenience",
            "if this message has reached you in error",
            "received this message in error and wish to be removed",
        ],
    },
    Family {
        rules: &[(1, "SPAM_REMOVE_REQUEST")],
        phrases: &[
            "to be removed from",
            "to be taken off",
            "to remove yourself",
            "to remove your address",
            "to remove your email",
            "to remove your e-mail",
            "remove in the subject",
            "\"remove\" in the subject",
            "remove\" in the subject",
            "with remove as",
            "reply with remove",
            "type remove",
            "subject line remove",
            "subject: remove",
            "mailto:remove",
            "remove me in",
            "for removal from",
            "removal instructions",
            "wish to be removed",
            "like to be removed",
            "want to be removed",
            "to be excluded from",
        ],
    },
    Family {
        rules: &[(3, "SALES_PITCH_3"), (6, "SALES_PITCH_6")],
        phrases: &[
            "100% satisfaction",
            "satisfaction guaranteed",
            "money back guarantee",
            "money-back guarantee",
            "free shipping",
            "order now",
            "order today",
            "call now",
            "act now",
            "limited time",
            "special offer",
            "risk free",
            "risk-free",
            "no obligation",
            "free trial",
            "click here",
            "click below",
            "as seen on",
            "lowest price",
            "save up to",
            "save over",
            "free gift",
            "don't miss",
            "don't delay",
            "while supplies last",
            "order form",
            "toll free",
            "toll-free",
            "check or money order",
            "money order",
            "100% free",
            "absolutely free",
            "100% guaranteed",
            "no cost",
            "free of charge",
            "dear friend",
            "offer expires",
            "this offer",
            "buy now",
            "amazing",
            "incredible",
            "unbelievable",
            "guaranteed",
            "visa",
            "mastercard",
            "american express",
            "credit card",
            "wholesale",
            "discount",
            "bonus",
            "only $",
            "just $",
            "$$$",
            "why pay",
            "you deserve",
            "what are you waiting for",
            "join millions",
            "once in a lifetime",
        ],
    },
    Family {
        rules: &[(2, "MONEY_MAKING_2"), (4, "MONEY_MAKING_4")],
        phrases: &[
            "make money",
            "making money",
            "earn money",
            "extra income",
            "additional income",
            "residual income",
            "financial freedom",
            "financial independence",
            "work from home",
            "working from home",
            "home based business",
            "home-based business",
            "be your own boss",
            "multi-level marketing",
            "network marketing",
            "mlm",
            "get rich",
            "earn $",
            "make $",
            "income opportunity",
            "business opportunity",
            "no experience",
            "no selling",
            "quit your job",
            "thousands of dollars",
            "weekly income",
            "monthly income",
            "cash flow",
            "per week",
            "full time income",
            "part time",
            "part-time",
            "unlimited income",
            "retire",
            "downline",
        ],
    },
    Family {
        rules: &[(3, "STOCK_PROMOTION")],
        phrases: &[
            "otc bb",
            "otcbb",
            "pink sheets",
            "trading symbol",
            "stock symbol",
            "ticker",
            "forward-looking statements",
            "forward looking statements",
            "safe harbor",
            "securities litigation reform act",
            "strong buy",
            "target price",
            "shares outstanding",
            "investor alert",
            "undervalued",
            "small cap",
            "small-cap",
            "share price",
            "profiled company",
            "featured company",
            "was compensated",
            "has been compensated",
            "investors",
            "stock",
        ],
    },
    Family {
        rules: &[(2, "LOAN_OFFER")],
        phrases: &[
            "mortgage rate",
            "mortgage rates",
            "refinance",
            "refinancing",
            "debt consolidation",
            "consolidate your debt",
            "lower your payments",
            "lower your monthly",
            "interest rates",
            "low rates",
            "lowest rates",
            "credit rating",
            "bad credit",
            "credit report",
            "credit repair",
            "no credit check",
            "pre-approved",
            "home loan",
            "lenders",
            "fixed rate",
            "get out of debt",
            "debt free",
            "debt-free",
            "eliminate debt",
            "eliminate your debt",
            "bankruptcy",
            "cash advance",
        ],
    },
    Family {
        rules: &[(2, "PHARMACY_ADULT")],
        phrases: &[
            "viagra",
            "cialis",
            "without prescription",
            "no prescription",
            "online pharmacy",
            "pharmacy",
            "pills",
            "erection",
            "penis",
            "enlarge",
            "enlargement",
            "lose weight",
            "weight loss",
            "burn fat",
            "herbal",
            "hgh",
            "human growth hormone",
            "anti-aging",
            "libido",
            "sexual",
            "xxx",
            "porn",
            "nude",
            "hot girls",
            "barely legal",
            // French, German, Italian.
            "sans ordonnance",
            "pharmacie en ligne",
            "pilules",
            "érection",
            "ohne rezept",
            "online-apotheke",
            "potenzmittel",
            "potenzpillen",
            "erektion",
            "senza ricetta",
            "farmacia online",
            "pillole",
            "erezione",
        ],
    },
    // Advance-fee fraud in the languages of Swiss mailboxes: each language is its own
    // family, so that six distinct phrases of one language are needed, as in English. There
    // is no corpus in these languages to measure them on, so words that an honest notary,
    // lawyer, invoice or charity uses (notary, lawyer, total sum, your help, lottery,
    // donation) are left out: a real succession letter must not reach six.
    // Phrases are matched ignoring ASCII case only, so a word that can start a sentence with
    // an accented capital is listed in both forms.
    Family {
        rules: &[(6, "ADVANCE_FEE")],
        phrases: &[
            "proposition d'affaire",
            "proposition d'affaires",
            "en toute confidentialité",
            "en toute confidentialite",
            "strictement confidentiel",
            "transfert de fonds",
            "transfert des fonds",
            "transférer les fonds",
            "transferer les fonds",
            "virement des fonds",
            "héritage",
            "heritage",
            "mon défunt mari",
            "mon defunt mari",
            "feu mon mari",
            "feu mon père",
            "feu mon pere",
            "mon défunt père",
            "mon defunt pere",
            "bénéficiaire",
            "beneficiaire",
            "millions d'euros",
            "millions de dollars",
            "dollars américains",
            "dollars americains",
            "compte à l'étranger",
            "compte a l'etranger",
            "partenaire étranger",
            "partenaire etranger",
            "personne de confiance",
            "digne de confiance",
            "% de la somme",
            "pour cent de la somme",
            "société de sécurité",
            "societe de securite",
            "coffre-fort",
            "maladie incurable",
            "orphelinat",
            "orphelinats",
            "œuvres de charité",
            "oeuvres de charite",
            "œuvres caritatives",
            "dieu vous bénisse",
            "dieu vous benisse",
            "veuve",
            "côte d'ivoire",
            "cote d'ivoire",
            "abidjan",
            "lomé",
            "ouagadougou",
            "burkina faso",
            "réponse urgente",
            "reponse urgente",
            "adresse e-mail privée",
            "adresse privée",
            "j'ai obtenu votre contact",
            "vous avez gagné",
        ],
    },
    Family {
        rules: &[(6, "ADVANCE_FEE")],
        phrases: &[
            "geschäftsvorschlag",
            "geschaeftsvorschlag",
            "streng vertraulich",
            "absolute vertraulichkeit",
            "absoluter vertraulichkeit",
            "überweisung der gelder",
            "Überweisung der gelder",
            "transfer der gelder",
            "transfer des geldes",
            "geldtransfer",
            "erbschaft",
            "verstorbener ehemann",
            "verstorbenen ehemannes",
            "verstorbenen mannes",
            "verstorbenen vaters",
            "begünstigter",
            "begünstigten",
            "beguenstigten",
            "millionen euro",
            "millionen dollar",
            "millionen us-dollar",
            "ausländischen partner",
            "ausländisches konto",
            "konto im ausland",
            "vertrauenswürdige person",
            "vertrauenswürdigen person",
            "ehrlich und vertrauenswürdig",
            "prozent der gesamtsumme",
            "% der gesamtsumme",
            "sicherheitsfirma",
            "sicherheitsunternehmen",
            "schließfach",
            "schliessfach",
            "unheilbar",
            "waisenhaus",
            "waisenhäuser",
            "wohltätige zwecke",
            "wohltätigkeitsorganisationen",
            "gott segne",
            "witwe",
            "elfenbeinküste",
            "abidjan",
            "burkina faso",
            "nigeria",
            "dringende antwort",
            "private e-mail",
            "private e-mail-adresse",
            "sie haben gewonnen",
        ],
    },
    Family {
        rules: &[(6, "ADVANCE_FEE")],
        phrases: &[
            "proposta d'affari",
            "massima riservatezza",
            "strettamente confidenziale",
            "trasferimento di fondi",
            "trasferimento dei fondi",
            "trasferire i fondi",
            "eredità",
            "eredita",
            "defunto marito",
            "defunto padre",
            "mio defunto",
            "beneficiario",
            "milioni di euro",
            "milioni di dollari",
            "dollari americani",
            "partner straniero",
            "conto estero",
            "conto all'estero",
            "persona di fiducia",
            "onesto e affidabile",
            "onesta e affidabile",
            "per cento della somma",
            "% della somma",
            "società di sicurezza",
            "societa di sicurezza",
            "cassetta di sicurezza",
            "malattia incurabile",
            "orfanotrofio",
            "orfanotrofi",
            "opere di carità",
            "dio ti benedica",
            "dio vi benedica",
            "vedova",
            "costa d'avorio",
            "abidjan",
            "burkina faso",
            "risposta urgente",
            "email privata",
            "e-mail privata",
            "hai vinto",
        ],
    },
];

/// The automaton over every family's phrases, and each pattern's (family, phrase) index.
static MATCHER: LazyLock<(AhoCorasick, Vec<(usize, usize)>)> = LazyLock::new(|| {
    let mut patterns = Vec::new();
    let mut index = Vec::new();
    for (f, family) in FAMILIES.iter().enumerate() {
        assert!(
            family.phrases.len() <= 128,
            "a family holds at most 128 phrases"
        );
        for (p, phrase) in family.phrases.iter().enumerate() {
            patterns.push(*phrase);
            index.push((f, p));
        }
    }
    let matcher = AhoCorasickBuilder::new()
        .ascii_case_insensitive(true)
        .match_kind(MatchKind::Standard)
        // A full DFA: one table lookup per byte. The crate would pick an NFA for this many
        // patterns, which is several times slower per byte; the table takes 1.75 MB.
        .kind(Some(AhoCorasickKind::DFA))
        .build(&patterns)
        .expect("phrase patterns build");
    (matcher, index)
});

pub(super) fn prepare() {
    LazyLock::force(&MATCHER);
}

/// Runs the phrase rules.
pub fn analyze(message: &Extracted<'_>, tags: &mut Tags) {
    let text = searchable(message);
    let (matcher, index) = &*MATCHER;
    let mut found = [0u128; FAMILIES.len()];
    for m in matcher.find_overlapping_iter(&text) {
        let (family, phrase) = index[m.pattern().as_usize()];
        let pattern = FAMILIES[family].phrases[phrase].as_bytes();
        if on_word_boundaries(&text, m.start(), m.end(), pattern) {
            found[family] |= 1 << phrase;
        }
    }
    for (family, mask) in FAMILIES.iter().zip(found) {
        let distinct = mask.count_ones() as usize;
        let Some(&(_, rule)) = family.rules.iter().rev().find(|(min, _)| distinct >= *min) else {
            continue;
        };
        let quoted: Vec<String> = (0..family.phrases.len())
            .filter(|p| mask & (1 << p) != 0)
            .take(4)
            .map(|p| format!("\"{}\"", family.phrases[p]))
            .collect();
        let more = distinct.saturating_sub(quoted.len());
        let mut detail = quoted.join(", ");
        if more > 0 {
            detail.push_str(&format!(" and {more} more"));
        }
        tags.add(rule, detail);
    }
}

/// The subject and the visible text without quoted lines or a list footer, whitespace runs
/// collapsed to one space, at most [`MAX_SEARCHED`] bytes.
fn searchable(message: &Extracted<'_>) -> Vec<u8> {
    let body = message.own_text();
    let mut out = Vec::with_capacity((message.subject.len() + body.len()).min(MAX_SEARCHED) + 1);
    let lines = std::iter::once(message.subject.as_str()).chain(
        body.lines()
            .filter(|line| !line.trim_start().starts_with('>')),
    );
    for line in lines {
        for word in line.as_bytes().split(u8::is_ascii_whitespace) {
            if word.is_empty() {
                continue;
            }
            if out.len() >= MAX_SEARCHED {
                return out;
            }
            if !out.is_empty() {
                out.push(b' ');
            }
            // The first byte goes in even at the limit (the text may end one byte past it).
            let room = MAX_SEARCHED.saturating_sub(out.len()).max(1);
            out.extend_from_slice(&word[..word.len().min(room)]);
        }
    }
    out
}

/// Whether a match of `pattern` at `start..end` is not part of a longer word: an
/// alphanumeric first or last character of the phrase must not touch another one.
fn on_word_boundaries(text: &[u8], start: usize, end: usize, pattern: &[u8]) -> bool {
    let word = |b: u8| b.is_ascii_alphanumeric();
    let starts_clean =
        !pattern.first().copied().is_some_and(word) || start == 0 || !word(text[start - 1]);
    let ends_clean =
        !pattern.last().copied().is_some_and(word) || end == text.len() || !word(text[end]);
    starts_clean && ends_clean
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags_of(subject: &str, text: &str) -> Vec<(&'static str, String)> {
        let message = Extracted {
            subject: subject.to_owned(),
            text: text.to_owned(),
            ..Default::default()
        };
        let mut tags = Tags::default();
        analyze(&message, &mut tags);
        tags.iter().map(|t| (t.name, t.detail.clone())).collect()
    }

    #[test]
    fn the_phrase_automaton_stays_small() {
        let (matcher, _) = &*MATCHER;
        assert_eq!(matcher.kind(), AhoCorasickKind::DFA);
        let bytes = matcher.memory_usage();
        eprintln!("phrase automaton: {bytes} bytes");
        assert!(bytes < 4 << 20, "{bytes} bytes");
    }

    #[test]
    fn a_family_needs_distinct_phrases() {
        assert!(tags_of("Offer", "click here, click here, CLICK HERE").is_empty());
        let fired = tags_of("Special offer", "Click here. Order now!\nFree\n  shipping.");
        assert_eq!(fired.len(), 1, "{fired:?}");
        assert_eq!(fired[0].0, "SALES_PITCH_3");
        assert!(fired[0].1.contains("\"free shipping\""), "{fired:?}");
    }

    #[test]
    fn the_stronger_rule_replaces_the_weaker() {
        let text = "Order now and get free shipping! Satisfaction guaranteed, no obligation, \
                    risk free. Click here.";
        let fired = tags_of("Special offer", text);
        assert_eq!(fired.len(), 1, "{fired:?}");
        assert_eq!(fired[0].0, "SALES_PITCH_6");
        assert!(fired[0].1.ends_with("and 4 more"), "{fired:?}");
    }

    #[test]
    fn advance_fee_fraud_needs_six_of_its_phrases() {
        let text = "I am the next of kin. This business proposal is in strictest confidence: \
                    the transfer of the fund, US$ 25 million, to a foreign account.";
        let fired = tags_of("URGENT", text);
        assert_eq!(fired.len(), 1, "{fired:?}");
        assert_eq!(fired[0].0, "ADVANCE_FEE");
        let business = "Our business proposal for the next quarter, in strictest confidence.";
        assert!(tags_of("Q3", business).is_empty());
    }

    #[test]
    fn advance_fee_fraud_is_caught_in_french_german_and_italian() {
        let french = "Bonjour, je suis la veuve de feu mon mari, décédé à Abidjan. Il a laissé \
                      un héritage de 4,5 millions d'euros. Je cherche une personne de confiance \
                      pour le transfert de fonds, en toute confidentialité.";
        let german = "Ich bin die Witwe eines Diplomaten. Mein verstorbener Ehemann hinterliess \
                      eine Erbschaft von 8 Millionen Euro in einem Schliessfach. Ich suche eine \
                      vertrauenswürdige Person, streng vertraulich, für den Transfer der Gelder.";
        let italian = "Sono la vedova di un diplomatico. Mio defunto marito ha lasciato \
                       un'eredità di 6 milioni di euro. Cerco una persona di fiducia per il \
                       trasferimento dei fondi, nella massima riservatezza.";
        for text in [french, german, italian] {
            let fired = tags_of("URGENT", text);
            assert_eq!(fired.len(), 1, "{text}: {fired:?}");
            assert_eq!(fired[0].0, "ADVANCE_FEE");
        }
        // A notary's letter about an estate, strictly confidential, uses a few of the words,
        // not six.
        let notary = "Madame, suite au décès de M. Favre, veuillez trouver l'acte de notoriété. \
                      Le notaire, votre contact pour la succession, a désigné le bénéficiaire \
                      de l'héritage et le légataire. Le transfert des fonds se fera sur votre \
                      compte à la Banque Cantonale; nous traitons le dossier en toute \
                      confidentialité. Merci de votre assistance.";
        assert!(tags_of("Succession Favre", notary).is_empty());
        let erbe = "Sehr geehrte Frau Keller, der Notar hat die Erbschaft geregelt; \
                    Begünstigter ist Ihr Sohn. Der Rechtsanwalt sendet Ihnen die Unterlagen, \
                    streng vertraulich, mit der Gesamtsumme. Ihr Kontakt: Herr Meier. Danke \
                    für Ihre Hilfe und Ihre Unterstützung.";
        assert!(tags_of("Nachlass", erbe).is_empty());
        let eredita = "Gentile signora, il notaio ha regolato l'eredità; il beneficiario è \
                       suo figlio. L'avvocato le invia la proposta commerciale e la somma \
                       totale, con la massima riservatezza. Grazie per il suo aiuto.";
        assert!(tags_of("Successione", eredita).is_empty());
    }

    #[test]
    fn phrases_match_whole_words_only() {
        // "stock" inside "stockholm", "ticker" inside "stickers", "mlm" inside "html".
        let fired = tags_of(
            "Stockholm trip",
            "stickers for the kids, html mail, stockings",
        );
        assert!(fired.is_empty(), "{fired:?}");
    }

    #[test]
    fn quoted_lines_and_list_footers_are_not_searched() {
        let text = "> To be removed from this list, reply with REMOVE.\nI got this today, \
                    spam again.";
        assert!(tags_of("Re: spam", text).is_empty());
        let message = Extracted {
            subject: "Meeting".into(),
            text: "See you at 10.\n\n____________________________\nTo be removed from this \
                   list, write to the owner."
                .into(),
            list_mail: true,
            ..Default::default()
        };
        let mut tags = Tags::default();
        analyze(&message, &mut tags);
        assert!(tags.is_empty());
    }

    #[test]
    fn a_spammers_disclaimer_fires_alone() {
        let fired = tags_of(
            "Hi",
            "This message is sent in compliance with the new email bill.",
        );
        assert_eq!(fired[0].0, "SPAM_DISCLAIMER");
    }
}
