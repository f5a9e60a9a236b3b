//! Rough throughput check: the delivery client sending to the in-memory sink over loopback.
//!
//! `cargo run -p cleanmail-worker --example smtp_load -- 2000 8` sends 2000 messages over
//! 8 concurrent connections and prints messages per second. The sink accepts at once, so
//! this measures the SMTP layers alone (server session loop and delivery client), not a
//! durable store.

use std::time::{Duration, Instant};

use anyhow::Context;
use cleanmail_worker::delivery::{DeliveryClient, Downstream, DownstreamTls};
use cleanmail_worker::sink::SmtpSink;
use futures::StreamExt;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let mut args = std::env::args().skip(1);
    let total: usize = args.next().map_or(Ok(2000), |a| a.parse())?;
    let concurrency: usize = args.next().map_or(Ok(8), |a| a.parse())?;
    let tls = args.next().is_some_and(|a| a == "tls");
    let sink = SmtpSink::start().await.context("starting sink")?;
    let client = DeliveryClient::new("load.localhost");
    let downstream = Downstream {
        tls: if tls {
            DownstreamTls::Opportunistic
        } else {
            DownstreamTls::None
        },
        ..Downstream::new("127.0.0.1", sink.addr().port())
    };
    let rcpt_to = vec!["alice@example.com".to_owned()];
    let body = format!(
        "From: load@example.org\r\nTo: alice@example.com\r\nSubject: load\r\n\r\n{}",
        "Lorem ipsum dolor sit amet, consectetur adipiscing elit.\r\n".repeat(40)
    );
    let started = Instant::now();
    let failures = futures::stream::iter(0..total)
        .map(|_| client.deliver(&downstream, "load@example.org", &rcpt_to, body.as_bytes()))
        .buffer_unordered(concurrency)
        .filter(|report| futures::future::ready(!report.all_delivered()))
        .count()
        .await;
    let elapsed = started.elapsed();
    let received = sink
        .wait_for(total - failures, Duration::from_secs(5))
        .await
        .len();
    println!(
        "{total} messages ({} bytes each), {concurrency} connections, tls {tls}: {:.0} msg/s, {failures} failures, {received} received",
        body.len(),
        total as f64 / elapsed.as_secs_f64()
    );
    Ok(())
}
