//! Development harness over a labelled corpus (`DIR/{ham,spam,phish}/*.eml`), without the
//! full CLI:
//!
//! - `cargo run --release -p cleanmail-core --example corpus -- train DIR OUT`
//! - `cargo run --release -p cleanmail-core --example corpus -- eval DIR [MODEL]`
//! - `cargo run --release -p cleanmail-core --example corpus -- cv DIR [FOLDS]` (cross-validation
//!   on the training split only, for tuning)

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use cleanmail_core::classifier::Class;
use cleanmail_core::engine::{TRAIN_EPOCHS, TRAIN_HAM_WEIGHT};
use cleanmail_core::metrics::Confusion;
use cleanmail_core::{Engine, EngineConfig, Envelope, MessageInput, Model, TenantContext};

fn load(dir: &Path) -> Vec<(Class, String, Vec<u8>)> {
    let mut out = Vec::new();
    for (sub, class) in [
        ("ham", Class::Ham),
        ("spam", Class::Spam),
        ("phish", Class::Phish),
    ] {
        let Ok(entries) = std::fs::read_dir(dir.join(sub)) else {
            continue;
        };
        let mut paths: Vec<_> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        paths.sort();
        for path in paths {
            let raw = std::fs::read(&path).expect("read");
            out.push((
                class,
                path.file_name().unwrap().to_string_lossy().into_owned(),
                raw,
            ));
        }
    }
    out
}

/// Features kept in a written model: seen at least this often (`cleanmail train` uses 3).
fn min_count() -> u32 {
    std::env::var("MIN_COUNT").map_or(3, |m| m.parse().unwrap())
}

fn train(messages: &[&(Class, String, Vec<u8>)]) -> Model {
    let engine = Engine::new(Arc::new(Model::default()), EngineConfig::default());
    let mut model = Model::default();
    let mut examples = Vec::new();
    for (class, _, raw) in messages {
        let envelope = Envelope::from_headers(raw);
        let features = engine.features(raw, &envelope);
        model.learn(&features, *class);
        examples.push((features, *class));
    }
    let epochs = std::env::var("EPOCHS").map_or(TRAIN_EPOCHS, |e| e.parse().unwrap());
    let ham_weight = std::env::var("HAM_WEIGHT").map_or(TRAIN_HAM_WEIGHT, |e| e.parse().unwrap());
    model.train_weights(&examples, epochs, ham_weight);
    model
}

fn evaluate(engine: &Engine, messages: &[&(Class, String, Vec<u8>)], verbose: bool) -> Confusion {
    let ctx = TenantContext::default();
    let mut confusion = Confusion::default();
    for (class, name, raw) in messages {
        let envelope = Envelope::from_headers(raw);
        let input = MessageInput {
            raw,
            envelope: &envelope,
            auth: None,
            received_at: None,
        };
        let verdict = engine.analyze(&input, &ctx);
        let caught = verdict.category.is_threat();
        if std::env::var("DUMP").is_ok() {
            let symbols: Vec<&str> = verdict.symbols.iter().map(|s| s.name.as_str()).collect();
            // Score of the rules alone (without the classifier's symbol), for fitting.
            let rules: f32 = verdict
                .symbols
                .iter()
                .filter(|s| !s.name.starts_with("BAYES_"))
                .map(|s| s.score)
                .sum();
            println!(
                "P {:?} {:.4} {:.4} {name} {} {rules:.2} {:?} {:.4}",
                class,
                verdict.bayes.map_or(-1.0, |b| b.spam),
                verdict.bayes.map_or(-1.0, |b| b.bayes),
                symbols.join(","),
                verdict.category,
                verdict.bayes.map_or(-1.0, |b| b.phish),
            );
        }
        if verbose && (caught != (*class != Class::Ham)) {
            let symbols: Vec<String> = verdict
                .symbols
                .iter()
                .map(|s| format!("{}({})", s.name, s.score))
                .collect();
            eprintln!(
                "MISS {name} {:?} {:.1} {}",
                verdict.category,
                verdict.score,
                symbols.join(" ")
            );
        }
        confusion.add(*class, verdict.category);
    }
    confusion
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let dir = Path::new(&args[2]);
    let messages = load(dir);
    let all: Vec<_> = messages.iter().collect();
    match args[1].as_str() {
        "train" => {
            let model = train(&all);
            let bytes = model.to_bytes(min_count());
            std::fs::write(&args[3], &bytes).expect("write");
            eprintln!("{} features, {} bytes", model.len(), bytes.len());
        }
        "eval" => {
            let model = match args.get(3) {
                Some(path) => Arc::new(Model::from_bytes(&std::fs::read(path).unwrap()).unwrap()),
                None => cleanmail_core::default_model(),
            };
            let engine = Engine::new(model, EngineConfig::default());
            let start = Instant::now();
            let confusion = evaluate(&engine, &all, std::env::var("VERBOSE").is_ok());
            println!(
                "{}",
                confusion.metrics(start.elapsed().as_secs_f64()).table()
            );
        }
        "cv" => {
            let folds: usize = args.get(3).map_or(5, |f| f.parse().unwrap());
            let mut total = Confusion::default();
            let start = Instant::now();
            for fold in 0..folds {
                let (test, training): (Vec<_>, Vec<_>) =
                    all.iter().enumerate().partition(|(i, _)| i % folds == fold);
                let training: Vec<_> = training.into_iter().map(|(_, m)| *m).collect();
                let test: Vec<_> = test.into_iter().map(|(_, m)| *m).collect();
                let model = Model::from_bytes(&train(&training).to_bytes(min_count())).unwrap();
                let engine = Engine::new(Arc::new(model), EngineConfig::default());
                let confusion = evaluate(&engine, &test, std::env::var("VERBOSE").is_ok());
                for (class, counts) in confusion.counts {
                    for (category, n) in counts {
                        *total
                            .counts
                            .entry(class)
                            .or_default()
                            .entry(category)
                            .or_default() += n;
                    }
                }
            }
            println!("{}", total.metrics(start.elapsed().as_secs_f64()).table());
        }
        "soak" => {
            // Memory over a long run: analyze the corpus repeatedly, print RSS as we go.
            let total: usize = args.get(3).map_or(100_000, |n| n.parse().unwrap());
            let engine = Engine::default();
            let ctx = TenantContext::default();
            let start = Instant::now();
            for i in 0..total {
                let (_, _, raw) = &messages[i % messages.len()];
                let envelope = Envelope::from_headers(raw);
                let input = MessageInput {
                    raw,
                    envelope: &envelope,
                    auth: None,
                    received_at: None,
                };
                std::hint::black_box(engine.analyze(&input, &ctx));
                if i % 20_000 == 0 || i + 1 == total {
                    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
                    let rss = status
                        .lines()
                        .find(|l| l.starts_with("VmRSS"))
                        .unwrap_or("");
                    println!(
                        "{:>7} messages  {rss}  {:.1} s",
                        i + 1,
                        start.elapsed().as_secs_f64()
                    );
                }
            }
        }
        other => panic!("unknown command {other}"),
    }
}
