//! Runs the in-memory SMTP sink on a fixed port, for trying real clients such as swaks.
//!
//! `cargo run -p cleanmail-worker --example smtp_sink -- 127.0.0.1:2526 /tmp/sink`
//! listens on the address (default `127.0.0.1:2526`), writes each message to the optional
//! directory as `.eml`, and logs every arrival until Ctrl-C.

use std::time::Duration;

use anyhow::Context;
use cleanmail_worker::sink::SmtpSink;
use cleanmail_worker::smtp::SmtpConfig;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let mut args = std::env::args().skip(1);
    let listen = args
        .next()
        .unwrap_or_else(|| "127.0.0.1:2526".to_owned())
        .parse()
        .context("parsing listen address")?;
    let dir = args.next().map(std::path::PathBuf::from);
    if let Some(dir) = &dir {
        std::fs::create_dir_all(dir).context("creating output directory")?;
    }
    let config = SmtpConfig {
        listen,
        hostname: "sink.localhost".to_owned(),
        ..SmtpConfig::default()
    };
    let sink = SmtpSink::start_with(config, dir)
        .await
        .context("starting sink")?;
    println!("smtp sink listening on {}", sink.addr());
    let mut seen = 0;
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            messages = sink.wait_for(seen + 1, Duration::from_secs(3600)) => {
                for message in &messages[seen..] {
                    println!(
                        "received from <{}> to {:?} ({} bytes, tls: {})",
                        message.mail_from,
                        message.rcpt_to,
                        message.data.len(),
                        message.tls
                    );
                }
                seen = messages.len();
            }
        }
    }
    sink.stop().await;
    Ok(())
}
