//! `DeliverMessage`: one SMTP transaction to the domain's downstream server (or, for a DSN,
//! to the outbound relay), with the original envelope.
//!
//! The attempt is recorded and the job removed (or rescheduled with fewer recipients) in one
//! transaction right after the downstream answered. A crash between the downstream's `250`
//! and that commit makes the next run send again: SMTP has no way to close that window
//! (RFC 5321 section 6.1 accepts duplicates over loss); it is as short as one commit.

use chrono::{DateTime, Utc};
use cleanmail_schema::JobId;
use cleanmail_schema::models::Job;
use cleanmail_schema::store::jobs as job_store;
use cleanmail_schema::store::mail::{
    DeliveryAttempt, NextStep, blob_unused, record_delivery_attempt,
};
use cleanmail_schema::store::routing::unscoped_domain_destination_for_delivery;
use tracing::{debug, warn};

use super::Worker;
use crate::delivery::{
    DeliveryOutcome, DeliveryReport, Downstream, DsnInput, FailedRecipient, RecipientOutcome,
    build_dsn,
};

pub use cleanmail_schema::store::mail::{DELIVER_MESSAGE, DeliverMessage};

/// Runs one claimed delivery job. An error (the database or blob store away) is retried on
/// the delivery schedule until the message is too old, then the job fails for good and stays
/// for operators; so does a payload this version cannot read, at once.
pub async fn run(worker: &Worker, job: Job) {
    let id = job.id.clone();
    let delivery: DeliverMessage = match serde_json::from_str(&job.payload) {
        Ok(delivery) => delivery,
        Err(err) => {
            warn!(job = %id, error = %err, "unreadable delivery job failed for good");
            let error = format!("unreadable payload: {err}");
            let _ = job_store::fail(&worker.db, &id, &worker.id, &error).await;
            return;
        }
    };
    let arrived_at = DateTime::<Utc>::from_naive_utc_and_offset(delivery.arrived_at, Utc);
    let attempts = job.attempts;
    if let Err(err) = attempt(worker, job, delivery).await {
        let failed_attempts = u32::try_from(attempts).unwrap_or(u32::MAX);
        let next = worker
            .settings
            .retry
            .next_attempt(arrived_at, failed_attempts, Utc::now());
        let error = err.to_string();
        let recorded = match next {
            Some(at) => {
                warn!(job = %id, error, "delivery attempt failed, retrying later");
                job_store::reschedule(&worker.db, &id, &worker.id, at.naive_utc(), &error).await
            }
            None => {
                warn!(job = %id, error, "delivery attempt failed, given up");
                let error = format!("gave up after {attempts} attempts: {error}");
                job_store::fail(&worker.db, &id, &worker.id, &error).await
            }
        };
        if let Err(err) = recorded {
            warn!(job = %id, error = %err, "rescheduling a delivery job failed");
        }
    }
}

fn parse_destination(destination: &str) -> Option<(String, u16)> {
    let (host, port) = destination.trim().rsplit_once(':')?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    Some((host.to_owned(), port.parse().ok()?))
}

async fn attempt(worker: &Worker, job: Job, mut delivery: DeliverMessage) -> anyhow::Result<()> {
    let failed_attempts = u32::try_from(job.attempts).unwrap_or(u32::MAX);
    let destination = match &delivery.domain_id {
        Some(domain_id) => {
            unscoped_domain_destination_for_delivery(&worker.db, &delivery.tenant_id, domain_id)
                .await?
        }
        None => worker.settings.outbound_relay.clone(),
    };
    let report = match destination.as_deref().and_then(parse_destination) {
        None => DeliveryReport {
            remote_mta: destination.clone().unwrap_or_default(),
            recipients: delivery
                .rcpt_to
                .iter()
                .map(|address| RecipientOutcome {
                    address: address.clone(),
                    outcome: DeliveryOutcome::PermanentFailure(match &destination {
                        Some(d) => format!("invalid downstream destination {d}"),
                        None => "no downstream destination".to_owned(),
                    }),
                })
                .collect(),
        },
        Some((host, port)) => {
            let mut message = worker.blobs.get(&delivery.blob_key).await?;
            if let Some(prefix) = &delivery.subject_prefix {
                message = tag_subject(&message, prefix);
            }
            let downstream = Downstream::new(host, port);
            worker
                .client
                .deliver(
                    &downstream,
                    &delivery.mail_from,
                    &delivery.rcpt_to,
                    &message,
                )
                .await
        }
    };

    let now = Utc::now();
    let arrived_at = DateTime::<Utc>::from_naive_utc_and_offset(delivery.arrived_at, Utc);
    let retry = report.to_retry();
    let next_at = if retry.is_empty() {
        None
    } else {
        worker
            .settings
            .retry
            .next_attempt(arrived_at, failed_attempts, now)
    };
    let expired = !retry.is_empty() && next_at.is_none();
    let mut recipients = Vec::new();
    let mut bounced: Vec<FailedRecipient> = Vec::new();
    let mut delivered = 0;
    for RecipientOutcome { address, outcome } in &report.recipients {
        let (state, response) = match outcome {
            DeliveryOutcome::Delivered { response } => {
                delivered += 1;
                ("delivered", response.clone())
            }
            DeliveryOutcome::TemporaryFailure(reason) if !expired => ("deferred", reason.clone()),
            DeliveryOutcome::TemporaryFailure(reason)
            | DeliveryOutcome::PermanentFailure(reason) => {
                bounced.push(FailedRecipient {
                    address: address.clone(),
                    reason: reason.clone(),
                });
                ("bounced", reason.clone())
            }
        };
        recipients.push((address.clone(), state.to_owned(), response));
    }

    let mut follow_up = Vec::new();
    let mut response = format!("{}: {}", report.remote_mta, summary(&report));
    if !bounced.is_empty() && !delivery.dsn {
        let original = worker
            .blobs
            .get(&delivery.blob_key)
            .await
            .unwrap_or_default();
        let dsn = build_dsn(&DsnInput {
            reporting_mta: &worker.settings.hostname,
            remote_mta: Some(&report.remote_mta),
            original_sender: &delivery.mail_from,
            recipients: &bounced,
            arrival_date: arrived_at,
            original_message: &original,
            expired,
            now,
        });
        match (dsn, &worker.settings.outbound_relay) {
            (Some(dsn), Some(_)) => {
                let key = format!("dsn/{}.eml", job.id.as_str().replace(':', "_"));
                worker.blobs.put(&key, dsn.message).await?;
                let payload = DeliverMessage {
                    log_id: delivery.log_id.clone(),
                    tenant_id: delivery.tenant_id.clone(),
                    domain_id: None,
                    blob_key: key.clone(),
                    mail_from: dsn.mail_from,
                    rcpt_to: dsn.rcpt_to,
                    subject_prefix: None,
                    arrived_at: cleanmail_schema::now(),
                    dsn: true,
                };
                follow_up.push(Job::new(
                    JobId(format!("dsn:{}", job.id)),
                    DELIVER_MESSAGE,
                    Some(delivery.tenant_id.clone()),
                    serde_json::to_string(&payload)?,
                    Some(key),
                    cleanmail_schema::now(),
                ));
                response.push_str("; DSN queued to the sender");
            }
            (Some(_), None) => {
                response.push_str("; DSN not sent: no outbound relay configured (undeliverable)");
            }
            (None, _) => response.push_str("; no DSN (null sender)"),
        }
    }

    let log_state = if delivery.dsn {
        // The message log tracks the original message; keep its state, note the DSN.
        if retry.is_empty() {
            "bounced"
        } else {
            "deferred"
        }
    } else if next_at.is_some() {
        "deferred"
    } else if bounced.is_empty() {
        "delivered"
    } else if delivered > 0 {
        "partially_bounced"
    } else {
        "bounced"
    };
    let finished = next_at.is_none();
    let next = match next_at {
        Some(at) => {
            delivery.rcpt_to = retry;
            NextStep::RetryAt {
                run_at: at.naive_utc(),
                payload: serde_json::to_string(&delivery)?,
            }
        }
        None => NextStep::Done,
    };
    let recorded = record_delivery_attempt(
        &worker.db,
        &worker.id,
        &DeliveryAttempt {
            job_id: job.id.clone(),
            log_id: delivery.log_id.clone(),
            // A DSN's recipients are the sender, not mailboxes of ours.
            recipients: if delivery.dsn { Vec::new() } else { recipients },
            log_state: if delivery.dsn {
                format!("dsn_{log_state}")
            } else {
                log_state.to_owned()
            },
            response,
            next,
            jobs: follow_up,
        },
    )
    .await?;
    if !recorded {
        warn!(job = %job.id, "delivery job lease lost before recording the attempt");
    } else if finished {
        // Nobody keeps a copy (backup webmail off, or a DSN): the blob goes now. A failure
        // or crash here leaves an unused file, never a row pointing at nothing.
        let removed = match blob_unused(&worker.db, &delivery.blob_key).await {
            Ok(true) => worker.blobs.delete(&delivery.blob_key).await,
            Ok(false) => Ok(()),
            Err(err) => Err(err.into()),
        };
        if let Err(err) = removed {
            warn!(job = %job.id, error = %err, "removing an unused blob failed");
        }
    }
    debug!(job = %job.id, state = log_state, "delivery attempt recorded");
    Ok(())
}

fn summary(report: &DeliveryReport) -> String {
    match report.summary() {
        DeliveryOutcome::Delivered { response } => response,
        DeliveryOutcome::TemporaryFailure(reason) => format!("temporary failure: {reason}"),
        DeliveryOutcome::PermanentFailure(reason) => format!("permanent failure: {reason}"),
    }
}

/// The message with `prefix` put in front of its Subject (a Subject is added if missing).
pub fn tag_subject(message: &[u8], prefix: &str) -> Vec<u8> {
    let head_end = message
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| p + 2)
        .or_else(|| message.windows(2).position(|w| w == b"\n\n").map(|p| p + 1))
        .unwrap_or(message.len());
    let mut line_start = 0;
    while line_start < head_end {
        let line_end = message[line_start..head_end]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(head_end, |p| line_start + p + 1);
        let line = &message[line_start..line_end];
        if line.len() >= 8 && line[..8].eq_ignore_ascii_case(b"subject:") {
            let mut value_start = line_start + 8;
            while value_start < line_end && message[value_start] == b' ' {
                value_start += 1;
            }
            let mut out = Vec::with_capacity(message.len() + prefix.len());
            out.extend_from_slice(&message[..value_start]);
            out.extend_from_slice(prefix.as_bytes());
            out.extend_from_slice(&message[value_start..]);
            return out;
        }
        line_start = line_end;
    }
    let mut out = format!("Subject: {}\r\n", prefix.trim_end()).into_bytes();
    out.extend_from_slice(message);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_existing_and_missing_subjects() {
        let tagged = tag_subject(
            b"From: a@b.c\r\nSubject: News\r\n\r\nSubject: body\r\n",
            "[PUB] ",
        );
        assert_eq!(
            tagged,
            b"From: a@b.c\r\nSubject: [PUB] News\r\n\r\nSubject: body\r\n"
        );
        let added = tag_subject(b"From: a@b.c\r\n\r\nhi\r\n", "[PUB] ");
        assert_eq!(added, b"Subject: [PUB]\r\nFrom: a@b.c\r\n\r\nhi\r\n");
    }
}
