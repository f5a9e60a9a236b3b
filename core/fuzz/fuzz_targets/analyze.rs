//! Fuzzes the parser-facing entry point: any bytes must give a verdict, never a panic.
//!
//! `cargo +nightly fuzz run analyze` from `core/`; with only a stable toolchain (as on the
//! development machines), `RUSTC_BOOTSTRAP=1 cargo fuzz run analyze`. Seed it with
//! `tests/fixtures` and a few corpus messages; the first run found a panic on a text cut
//! inside a multibyte character (`tests/malformed.rs`).
#![no_main]

use std::sync::OnceLock;

use cleanmail_core::{Engine, Envelope, MessageInput, TenantContext};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    let engine = ENGINE.get_or_init(Engine::default);
    let envelope = Envelope::from_headers(data);
    let input = MessageInput { raw: data, envelope: &envelope, auth: None, received_at: None };
    let verdict = engine.analyze(&input, &TenantContext::default());
    assert!(verdict.score.is_finite());
});
