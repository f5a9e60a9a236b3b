//! `cleanmail train DIR --out PATH`: build the statistical classifier's model from a corpus.

use std::path::Path;

pub fn run(dir: &Path, out: &Path) -> anyhow::Result<()> {
    let _ = (dir, out);
    anyhow::bail!("train is not implemented yet")
}
