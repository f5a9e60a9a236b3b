//! The whole pipeline per message (parse, analyzers, classifier, decision), on fixtures and
//! on a sample of the training corpus when it is present.

use std::hint::black_box;
use std::path::Path;

use cleanmail_core::engine::received_time;
use cleanmail_core::{Engine, Envelope, MessageInput, TenantContext};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn messages() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus/train");
    for class in ["ham", "spam", "phish"] {
        if let Ok(entries) = std::fs::read_dir(corpus.join(class)) {
            let mut paths: Vec<_> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
            paths.sort();
            out.extend(paths.iter().take(100).filter_map(|p| std::fs::read(p).ok()));
        }
    }
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    if let Ok(entries) = std::fs::read_dir(fixtures) {
        for entry in entries.flatten() {
            if entry.path().extension().is_some_and(|e| e == "eml") {
                out.extend(std::fs::read(entry.path()).ok());
            }
        }
    }
    out
}

fn pipeline(c: &mut Criterion) {
    let engine = Engine::default();
    let ctx = TenantContext::default();
    let messages = messages();
    let envelopes: Vec<Envelope> = messages.iter().map(|m| Envelope::from_headers(m)).collect();
    // Replayed at their time of arrival, as `cleanmail eval` does, so the date checks run.
    let arrivals: Vec<Option<i64>> = messages.iter().map(|m| received_time(m)).collect();
    let mut group = c.benchmark_group("pipeline");
    group.throughput(Throughput::Elements(messages.len() as u64));
    group.bench_function(format!("analyze {} messages", messages.len()), |b| {
        b.iter(|| {
            for ((raw, envelope), received_at) in messages.iter().zip(&envelopes).zip(&arrivals) {
                let input = MessageInput {
                    raw,
                    envelope,
                    auth: None,
                    received_at: *received_at,
                };
                black_box(engine.analyze(black_box(&input), &ctx));
            }
        })
    });
    group.finish();
}

criterion_group!(benches, pipeline);
criterion_main!(benches);
