//! Rule fixtures: every `tests/fixtures/NAME.eml` with a `NAME.expect` next to it is run
//! through the engine and checked against the expectations, so adding a case needs no Rust.
//!
//! `.expect` format, one `key: value` per line (`#` starts a comment):
//! - `category: spam` — the verdict's category (clean, newsletter, spam, phishing, virus)
//! - `tags: A, B` — symbols that must fire; `absent: C` — symbols that must not
//! - `min_score: 100` — lower bound of the score
//! - `action: deliver_tagged [PUB] ` — the first recipient's action (`deliver`,
//!   `deliver_tagged PREFIX`, `quarantine`, `reject`)
//! - `protected_domains: a.example, b.example` and
//!   `protected_users: Name <addr>, ...` — the tenant context

use std::path::Path;

use cleanmail_core::engine::received_time;
use cleanmail_core::{
    Action, DomainName, EmailAddress, Engine, Envelope, MessageInput, ProtectedUser, TenantContext,
    Verdict,
};

#[derive(Default)]
struct Expect {
    category: Option<String>,
    tags: Vec<String>,
    absent: Vec<String>,
    min_score: Option<f32>,
    action: Option<String>,
    ctx: TenantContext,
}

fn list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect()
}

fn parse_expect(text: &str) -> Expect {
    let mut expect = Expect::default();
    for line in text.lines() {
        if line.trim_start().starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let (key, value) = line.split_once(':').expect("key: value");
        let raw_value = value.strip_prefix(' ').unwrap_or(value);
        let value = value.trim();
        match key.trim() {
            "category" => expect.category = Some(value.to_owned()),
            "tags" => expect.tags = list(value),
            "absent" => expect.absent = list(value),
            "min_score" => expect.min_score = Some(value.parse().unwrap()),
            "action" => expect.action = Some(raw_value.trim_end_matches(['\n', '\r']).to_owned()),
            "protected_domains" => {
                expect.ctx.protected_domains = list(value)
                    .iter()
                    .map(|d| DomainName::parse(d).unwrap())
                    .collect();
            }
            "protected_users" => {
                expect.ctx.protected_users = list(value)
                    .iter()
                    .map(|u| {
                        let (name, address) = u.split_once('<').unwrap();
                        ProtectedUser {
                            display_name: name.trim().to_owned(),
                            address: EmailAddress::parse(address.trim_end_matches('>')).unwrap(),
                        }
                    })
                    .collect();
            }
            other => panic!("unknown key {other:?}"),
        }
    }
    expect
}

fn action_text(action: &Action) -> String {
    match action {
        Action::Deliver => "deliver".to_owned(),
        Action::DeliverTagged { subject_prefix } => format!("deliver_tagged {subject_prefix}"),
        Action::Quarantine => "quarantine".to_owned(),
        Action::Reject => "reject".to_owned(),
    }
}

fn check(name: &str, raw: &[u8], expect: &Expect, engine: &Engine) -> Result<Verdict, String> {
    let mut envelope = Envelope::from_headers(raw);
    if envelope.recipients.is_empty() {
        envelope
            .recipients
            .push(EmailAddress::parse("bob@customer.example").unwrap());
    }
    let input = MessageInput {
        raw,
        envelope: &envelope,
        auth: None,
        // Replayed at its time of arrival, as `cleanmail eval` does.
        received_at: received_time(raw),
    };
    let verdict = engine.analyze(&input, &expect.ctx);
    let mut problems = Vec::new();
    if let Some(category) = &expect.category
        && verdict.category.as_str() != category
    {
        problems.push(format!(
            "category {} instead of {category}",
            verdict.category
        ));
    }
    for tag in &expect.tags {
        if !verdict.has_symbol(tag) {
            problems.push(format!("{tag} did not fire"));
        }
    }
    for tag in &expect.absent {
        if verdict.has_symbol(tag) {
            problems.push(format!("{tag} fired"));
        }
    }
    if let Some(min) = expect.min_score
        && verdict.score < min
    {
        problems.push(format!("score {} below {min}", verdict.score));
    }
    if let Some(action) = &expect.action {
        let got = action_text(&verdict.recipients[0].action);
        if &got != action {
            problems.push(format!("action {got:?} instead of {action:?}"));
        }
    }
    if problems.is_empty() {
        Ok(verdict)
    } else {
        Err(format!(
            "{name}: {}\n{}",
            problems.join("; "),
            verdict.explanation()
        ))
    }
}

#[test]
fn fixtures_meet_their_expectations() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let engine = Engine::default();
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .collect();
    paths.sort();
    let mut failures = Vec::new();
    let mut checked = 0;
    for path in paths {
        let expect_path = path.with_extension("expect");
        let Ok(text) = std::fs::read_to_string(&expect_path) else {
            continue;
        };
        let raw = std::fs::read(&path).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        checked += 1;
        if let Err(problem) = check(&name, &raw, &parse_expect(&text), &engine) {
            failures.push(problem);
        }
    }
    assert!(checked >= 15, "only {checked} fixtures found");
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// Every symbol that contributed to the score is named, with its score, in the explanation,
/// and the symbol scores add up to the verdict's score.
#[test]
fn explanation_names_every_contributing_symbol() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let engine = Engine::default();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "eml") {
            continue;
        }
        let raw = std::fs::read(&path).unwrap();
        let envelope = Envelope::from_headers(&raw);
        let input = MessageInput {
            raw: &raw,
            envelope: &envelope,
            auth: None,
            received_at: None,
        };
        let verdict = engine.analyze(&input, &TenantContext::default());
        let explanation = verdict.explanation();
        let mut sum = 0.0;
        for symbol in &verdict.symbols {
            sum += symbol.score;
            if symbol.score != 0.0 {
                let line = format!("{} ({:+.1}): ", symbol.name, symbol.score);
                assert!(
                    explanation.contains(&line),
                    "{path:?}: {line} missing from\n{explanation}"
                );
                assert!(!symbol.explanation.is_empty());
            }
        }
        assert!(
            (sum - verdict.score).abs() < 1e-3,
            "{path:?}: symbols sum to {sum}, score {}",
            verdict.score
        );
    }
}
