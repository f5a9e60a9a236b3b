//! Runs the CLI's `eval` and `train` subcommands (the very same source files as the
//! `cleanmail` binary) without building the whole workspace:
//!
//! - `cargo run --release -p cleanmail-core --example cli -- eval DIR [--json]`
//! - `cargo run --release -p cleanmail-core --example cli -- train DIR --out PATH`

#[path = "../../cli/src/eval.rs"]
mod eval;
#[path = "../../cli/src/output.rs"]
mod output;
#[path = "../../cli/src/train.rs"]
mod train;

use std::path::PathBuf;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("eval") if args.len() >= 2 => {
            eval::run(&PathBuf::from(&args[1]), args.iter().any(|a| a == "--json"))
        }
        Some("train") if args.len() >= 4 && args[2] == "--out" => {
            train::run(&PathBuf::from(&args[1]), &PathBuf::from(&args[3]))
        }
        _ => anyhow::bail!("usage: cli eval DIR [--json] | cli train DIR --out PATH"),
    }
}
