//! `cleanmail train DIR --out PATH`: build the statistical classifier's model from a corpus.
//!
//! `DIR` holds `ham/`, `spam/` and `phish/` folders of `.eml` files. The shipped model is
//! reproduced with `cleanmail train ../shared/corpus/train --out core/model/default.cmbayes`.

use std::path::Path;

use anyhow::Context;
use cleanmail_core::{Engine, EngineConfig, Model};

/// Features seen fewer times than this in training are not written.
const MIN_COUNT: u32 = 3;

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
    let bytes = model.to_bytes(MIN_COUNT);
    std::fs::write(out, &bytes).with_context(|| format!("writing {}", out.display()))?;
    let [ham, spam, phish] = model.message_counts();
    println!(
        "trained on {ham} ham, {spam} spam, {phish} phish: {} features kept, {} bytes written to {}",
        Model::from_bytes(&bytes).map(|m| m.len()).unwrap_or(0),
        bytes.len(),
        out.display()
    );
    Ok(())
}
