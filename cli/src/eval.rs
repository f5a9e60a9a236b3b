//! `cleanmail eval DIR [--json]`: measure the filtering engine on a labelled corpus.
//!
//! Classifies every message under `DIR/{ham,spam,phish}/` with the shipped model and the
//! standard policy (no network: no DNS, no virus scanner) and prints per-class counts,
//! precision, recall, ham false-positive rate, F1 and messages per second. Files are read
//! first; the timing covers the engine only (envelope reconstruction from headers included).
//! Each message is replayed at its time of arrival, the date of its topmost Received header,
//! as the SMTP worker passes the time it received the message: the date checks need it.

use std::path::Path;
use std::time::Instant;

use anyhow::Context;
use cleanmail_core::classifier::Class;
use cleanmail_core::engine::received_time;
use cleanmail_core::metrics::Confusion;
use cleanmail_core::{Engine, Envelope, MessageInput, TenantContext};

/// A labelled message: class, file name, raw bytes.
pub type Labelled = (Class, String, Vec<u8>);

/// Reads `DIR/{ham,spam,phish}/*`, sorted by name.
pub fn load_corpus(dir: &Path) -> anyhow::Result<Vec<Labelled>> {
    let mut out = Vec::new();
    for (sub, class) in [
        ("ham", Class::Ham),
        ("spam", Class::Spam),
        ("phish", Class::Phish),
    ] {
        let folder = dir.join(sub);
        if !folder.is_dir() {
            continue;
        }
        let mut paths: Vec<_> = std::fs::read_dir(&folder)
            .with_context(|| format!("listing {}", folder.display()))?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|path| path.is_file())
            .collect();
        paths.sort();
        for path in paths {
            let raw =
                std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            out.push((class, name, raw));
        }
    }
    Ok(out)
}

pub fn run(dir: &Path, json: bool) -> anyhow::Result<()> {
    let messages = load_corpus(dir)?;
    anyhow::ensure!(
        !messages.is_empty(),
        "no messages under {}/{{ham,spam,phish}}",
        dir.display()
    );
    let engine = Engine::default();
    let ctx = TenantContext::default();
    let mut confusion = Confusion::default();
    let cpu_start = thread_cpu_seconds();
    let start = Instant::now();
    for (class, _, raw) in &messages {
        let envelope = Envelope::from_headers(raw);
        let input = MessageInput {
            raw,
            envelope: &envelope,
            auth: None,
            received_at: received_time(raw),
        };
        let verdict = engine.analyze(&input, &ctx);
        confusion.add(*class, verdict.category);
    }
    let mut metrics = confusion.metrics(start.elapsed().as_secs_f64());
    if let (Some(before), Some(after)) = (cpu_start, thread_cpu_seconds()) {
        metrics = metrics.with_cpu_seconds(after - before);
    }
    if json {
        crate::output::out(format_args!(
            "{}\n",
            serde_json::to_string_pretty(&metrics)?
        ))
    } else {
        crate::output::out(format_args!("{}\n", metrics.table()))
    }
}

/// CPU time of the current thread (Linux `/proc/thread-self/schedstat`), if available.
fn thread_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let nanos: f64 = stat.split_whitespace().next()?.parse().ok()?;
    Some(nanos / 1e9)
}
