//! Malformed and hostile input: a verdict (or warning), never a panic or unbounded memory.

use cleanmail_core::{Category, Engine, Envelope, MessageInput, TenantContext, Verdict};

fn analyze(raw: &[u8]) -> Verdict {
    let engine = Engine::default();
    let envelope = Envelope::from_headers(raw);
    let input = MessageInput {
        raw,
        envelope: &envelope,
        auth: None,
        received_at: None,
    };
    engine.analyze(&input, &TenantContext::default())
}

#[test]
fn garbage_and_truncation() {
    let mut cases: Vec<Vec<u8>> = vec![
        Vec::new(),
        b"\r\n\r\n".to_vec(),
        b"From:".to_vec(),
        (0..=255u8).cycle().take(10_000).collect(),
        b"Subject: \xff\xfe\x80 8-bit garbage \xc3\x28\r\nFrom: \xe9\xe9 <\xff@\xfe>\r\n\r\nbody \x00\x01".to_vec(),
        b"Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\nContent-Transfer-Encoding: base64\r\n\r\n====".to_vec(),
        b"Content-Type: text/html\r\n\r\n<a href=\"http://\xff\xfe/\">\xe6\x8c\x89\xe6\x88\x91</a><form".to_vec(),
    ];
    let fixture = include_bytes!("fixtures/phish-html-credential-attachment.eml");
    for cut in (0..fixture.len()).step_by(97) {
        cases.push(fixture[..cut].to_vec());
    }
    for raw in cases {
        let verdict = analyze(&raw);
        assert!(verdict.score.is_finite());
    }
}

/// Found by `cargo fuzz run analyze`: the classifier's shape counts cut the text at 16 KiB
/// by bytes, inside a multibyte character.
#[test]
fn long_text_with_a_multibyte_character_at_every_cut() {
    for shift in 0..4 {
        let mut raw =
            b"From: a@b.example\r\nSubject: x\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
                .to_vec();
        raw.extend(std::iter::repeat_n(b'a', 16 * 1024 - 2 + shift));
        for _ in 0..50 {
            raw.extend_from_slice("€ ü 東 ".as_bytes());
        }
        let verdict = analyze(&raw);
        assert!(verdict.score.is_finite());
    }
}

#[test]
fn deeply_nested_multiparts() {
    let depth = 5_000;
    let mut raw = String::from("From: a@b.example\r\nSubject: nest\r\n");
    for i in 0..depth {
        raw.push_str(&format!(
            "Content-Type: multipart/mixed; boundary=\"b{i}\"\r\n\r\n--b{i}\r\n"
        ));
    }
    raw.push_str("Content-Type: text/plain\r\n\r\nhello\r\n");
    let verdict = analyze(raw.as_bytes());
    assert!(verdict.score.is_finite());
    // Nested message/rfc822 parts too.
    let mut nested = String::from("From: a@b.example\r\nSubject: inner\r\n\r\nhi\r\n");
    for _ in 0..200 {
        nested = format!("From: a@b.example\r\nContent-Type: message/rfc822\r\n\r\n{nested}");
    }
    let verdict = analyze(nested.as_bytes());
    assert!(verdict.score.is_finite());
}

#[test]
fn fifty_megabyte_attachment() {
    let mut raw = b"From: a@b.example\r\nSubject: big\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\nContent-Type: text/plain\r\n\r\nsee attachment\r\n--B\r\nContent-Type: application/octet-stream; name=big.bin\r\nContent-Transfer-Encoding: base64\r\n\r\n".to_vec();
    let line = b"QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB\r\n";
    while raw.len() < 50 * 1024 * 1024 {
        raw.extend_from_slice(line);
    }
    raw.extend_from_slice(b"--B--\r\n");
    let verdict = analyze(&raw);
    assert_eq!(
        verdict.category,
        Category::Clean,
        "{}",
        verdict.explanation()
    );
}

#[test]
fn oversized_message_is_truncated_with_a_warning() {
    let engine = Engine::new(
        cleanmail_core::default_model(),
        cleanmail_core::EngineConfig {
            max_message_size: 1024,
            ..Default::default()
        },
    );
    let raw = vec![b'a'; 10_000];
    let envelope = Envelope::default();
    let input = MessageInput {
        raw: &raw,
        envelope: &envelope,
        auth: None,
        received_at: None,
    };
    let verdict = engine.analyze(&input, &TenantContext::default());
    assert!(
        verdict
            .warnings
            .iter()
            .any(|w| w.contains("first 1024 bytes"))
    );
}

/// A poor man's fuzzer that runs on stable in CI: byte flips, truncations, splices and
/// duplications of every fixture (the cargo-fuzz target in `core/fuzz` does this for real).
#[test]
fn mutated_fixtures_never_panic() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut seeds: Vec<Vec<u8>> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .filter_map(|p| std::fs::read(p).ok())
        .filter(|d| d.len() < 200_000)
        .collect();
    seeds.sort();
    let engine = Engine::default();
    let mut rng: u64 = 0x2545_F491_4F6C_DD1D;
    let mut next = move |bound: usize| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        (rng % bound.max(1) as u64) as usize
    };
    for round in 0..400 {
        let mut data = seeds[round % seeds.len()].clone();
        for _ in 0..1 + next(8) {
            match next(5) {
                0 => {
                    let at = next(data.len());
                    if let Some(b) = data.get_mut(at) {
                        *b = next(256) as u8;
                    }
                }
                1 => data.truncate(next(data.len() + 1)),
                2 => {
                    let at = next(data.len() + 1);
                    let junk: &[u8] = match next(4) {
                        0 => b"\r\n--BOUNDARY\r\nContent-Type: multipart/mixed; boundary=X\r\n\r\n",
                        1 => b"=?utf-8?B?////?=",
                        2 => b"<a href=\"http://\xff\xfe@[::1]:99999/\">www.paypa1.com</a><form>",
                        _ => b"PK\x03\x04\x14\x00\x00\x00\x08\x00",
                    };
                    data.splice(at..at, junk.iter().copied());
                }
                3 => {
                    let start = next(data.len());
                    let end = (start + next(4096)).min(data.len());
                    let copy = data[start..end].to_vec();
                    let at = next(data.len() + 1);
                    data.splice(at..at, copy);
                }
                _ => {
                    let at = next(data.len());
                    data.insert(at, 0x80 + next(0x80) as u8);
                }
            }
        }
        let envelope = Envelope::from_headers(&data);
        let input = MessageInput {
            raw: &data,
            envelope: &envelope,
            auth: None,
            received_at: None,
        };
        let verdict = engine.analyze(&input, &TenantContext::default());
        assert!(verdict.score.is_finite());
    }
}
