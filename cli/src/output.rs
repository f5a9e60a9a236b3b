//! Command output on stdout.

/// Writes a command's output to stdout. A reader that stops early (`cleanmail eval | head`)
/// closes the pipe: that ends the output quietly instead of panicking as `println!` does.
pub fn out(text: std::fmt::Arguments<'_>) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    match stdout.write_fmt(text).and_then(|()| stdout.flush()) {
        Err(err) if err.kind() != std::io::ErrorKind::BrokenPipe => Err(err.into()),
        _ => Ok(()),
    }
}
