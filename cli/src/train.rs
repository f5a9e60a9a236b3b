//! `cleanmail train DIR --out PATH`: build the statistical classifier's model from a corpus.
//!
//! `DIR` holds `ham/`, `spam/` and `phish/` folders of `.eml` files. The shipped model is
//! reproduced with `cleanmail train ../shared/corpus/train --out core/model/default.cmbayes`.

use std::path::Path;

use anyhow::Context;
use cleanmail_core::classifier::{Class, TrainOptions};
use cleanmail_core::{Engine, EngineConfig, Model};

pub fn run(dir: &Path, out: &Path) -> anyhow::Result<()> {
    let messages = crate::eval::load_corpus(dir)?;
    anyhow::ensure!(!messages.is_empty(), "no messages under {}", dir.display());
    let engine = Engine::new(
        std::sync::Arc::new(Model::default()),
        EngineConfig::default(),
    );
    let model = engine.train_model(
        messages
            .iter()
            .map(|(class, _, raw)| (raw.as_slice(), *class)),
    );
    // Features seen fewer times than this in training are not written (the logistic layer
    // was trained without them).
    let bytes = model.to_bytes(TrainOptions::default().min_count);
    std::fs::write(out, &bytes).with_context(|| format!("writing {}", out.display()))?;
    // The model's message counts include the short training copies of the messages.
    let count = |class| messages.iter().filter(|(c, _, _)| *c == class).count();
    let (ham, spam, phish) = (count(Class::Ham), count(Class::Spam), count(Class::Phish));
    println!(
        "trained on {ham} ham, {spam} spam, {phish} phish: {} features kept, {} bytes written to {}",
        Model::from_bytes(&bytes).map(|m| m.len()).unwrap_or(0),
        bytes.len(),
        out.display()
    );
    Ok(())
}
