//! `cleanmail eval DIR`: measure the filtering engine on a labelled corpus.

use std::path::Path;

pub fn run(dir: &Path, json: bool) -> anyhow::Result<()> {
    let _ = (dir, json);
    anyhow::bail!("eval is not implemented yet")
}
