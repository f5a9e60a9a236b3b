//! [`IngestHandler`]: recipient checks, filtering before `250`, durable acceptance.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use cleanmail_core::{
    Action, Category, DomainName, EmailAddress, Engine, Envelope as CoreEnvelope,
};
use cleanmail_core::{EffectivePolicy, MessageInput, RecipientPolicy, TenantContext, Verdict};
use cleanmail_schema::models::{Job, MessageLogEntry, TrafficCounter};
use cleanmail_schema::store::mail::AcceptedBatch;
use cleanmail_schema::store::routing::{RecipientRoute, unscoped_resolve_recipient_for_smtp};
use cleanmail_schema::{Db, DomainId, JobId, MessageLogId, StoreError, TenantId};
use moka::sync::Cache;
use tracing::{debug, error, warn};

use super::{Committer, HeaderSummary, INGEST_MESSAGE, IngestMessage, IngestRecipient, hour_of};
use crate::learning::TenantModelCache;
use crate::policy::PolicyCache;
use crate::smtp::{DataDecision, Envelope, RcptDecision, SessionInfo, SmtpHandler};

/// How long a recipient lookup is reused (RCPT and DATA of one message, bursts of mail to
/// one address).
const ROUTE_CACHE_TTL: Duration = Duration::from_secs(2);
/// Most addresses whose routes are cached at once.
const ROUTE_CACHE_CAPACITY: u64 = 100_000;

/// Runs `analyze`; if it panics (an engine bug on this message), the message is quarantined
/// unchecked for every recipient ([`Verdict::analysis_failed`]) instead of being refused with
/// a temporary error that the sender would retry, and fail on, until it gives up.
fn analyze_or_hold(recipients: &[EmailAddress], analyze: impl FnOnce() -> Verdict) -> Verdict {
    crate::catch_panic(analyze).unwrap_or_else(|error| {
        error!(%error, "the filter failed on a message; it is quarantined unchecked");
        Verdict::analysis_failed(recipients, &format!("engine panic: {error}"))
    })
}

/// The production [`SmtpHandler`].
pub struct IngestHandler {
    db: Db,
    engine: Arc<Engine>,
    committer: Committer,
    routes: Cache<String, RecipientRoute>,
    policies: PolicyCache,
    models: TenantModelCache,
}

impl IngestHandler {
    pub fn new(db: Db, engine: Arc<Engine>, committer: Committer) -> Self {
        Self {
            policies: PolicyCache::new(db.clone()),
            models: TenantModelCache::new(db.clone()),
            db,
            engine,
            committer,
            routes: Cache::builder()
                .max_capacity(ROUTE_CACHE_CAPACITY)
                .time_to_live(ROUTE_CACHE_TTL)
                .build(),
        }
    }

    /// The route of a normalised address, from the cache or the database.
    async fn route(&self, address: &str) -> Result<RecipientRoute, String> {
        if let Some(route) = self.routes.get(address) {
            return Ok(route);
        }
        let route = unscoped_resolve_recipient_for_smtp(&self.db, address)
            .await
            .map_err(|e| e.to_string())?;
        self.routes.insert(address.to_owned(), route.clone());
        Ok(route)
    }
}

/// One tenant's share of a message.
struct TenantPart {
    tenant_id: TenantId,
    recipients: Vec<(EmailAddress, IngestRecipient, RecipientRoute)>,
    /// Each recipient's effective policy, in the order of `recipients`.
    policies: Vec<Arc<EffectivePolicy>>,
}

impl SmtpHandler for IngestHandler {
    async fn check_recipient(&self, _session: &SessionInfo, rcpt: &str) -> RcptDecision {
        let Ok(address) = EmailAddress::parse(rcpt) else {
            return RcptDecision::Reject("Bad recipient address syntax".to_owned());
        };
        match self.route(address.as_str()).await {
            Ok(RecipientRoute::Mailbox { .. }) => RcptDecision::Accept,
            Ok(RecipientRoute::UnknownUser) => RcptDecision::UnknownUser,
            Ok(RecipientRoute::NotServed) => RcptDecision::RelayDenied,
            Ok(RecipientRoute::DomainSuspended) => {
                RcptDecision::Reject("Mail for this domain is not accepted".to_owned())
            }
            Err(err) => {
                warn!(error = %err, "recipient lookup failed");
                RcptDecision::TempFail("Recipient lookup failed, try again later".to_owned())
            }
        }
    }

    async fn receive(&self, envelope: Envelope, message: Vec<u8>) -> DataDecision {
        let received_at = cleanmail_schema::now();
        let queue_id = uuid::Uuid::now_v7().simple().to_string();

        // Split the recipients by tenant (a message may be for several customers).
        let mut parts: BTreeMap<TenantId, TenantPart> = BTreeMap::new();
        for rcpt in &envelope.rcpt_to {
            let Ok(address) = EmailAddress::parse(rcpt) else {
                continue;
            };
            let route = match self.route(address.as_str()).await {
                Ok(route) => route,
                Err(err) => return DataDecision::TempFail(format!("Lookup failed: {err}")),
            };
            let RecipientRoute::Mailbox {
                tenant_id,
                domain_id,
                user_id,
                alias_id,
            } = route.clone()
            else {
                // Removed between RCPT and DATA: the address no longer exists.
                continue;
            };
            let policy = match self.policies.for_user(&user_id).await {
                Ok(policy) => policy,
                // The user was removed between RCPT and DATA.
                Err(StoreError::NotFound) => continue,
                Err(err) => {
                    warn!(error = %err, "policy lookup failed");
                    return DataDecision::TempFail(
                        "Policy lookup failed, try again later".to_owned(),
                    );
                }
            };
            let recipient = IngestRecipient {
                address: address.as_str().to_owned(),
                domain_id,
                user_id,
                alias_id,
            };
            let part = parts
                .entry(tenant_id.clone())
                .or_insert_with(|| TenantPart {
                    tenant_id,
                    recipients: Vec::new(),
                    policies: Vec::new(),
                });
            part.recipients.push((address, recipient, route));
            part.policies.push(policy);
        }
        if parts.is_empty() {
            return DataDecision::Reject("No valid recipients".to_owned());
        }

        // Filter before answering: one engine run per tenant, off the async threads.
        let core_envelope = CoreEnvelope {
            client_ip: Some(envelope.session.peer_addr.ip()),
            helo: envelope.session.helo.clone().unwrap_or_default(),
            mail_from: EmailAddress::parse(&envelope.mail_from).ok(),
            recipients: Vec::new(),
            tls: envelope.session.tls.is_some(),
        };
        let engine = Arc::clone(&self.engine);
        let mut overlays = Vec::with_capacity(parts.len());
        for tenant_id in parts.keys() {
            overlays.push(self.models.for_tenant(tenant_id).await);
        }
        let jobs_input: Vec<(CoreEnvelope, TenantContext)> = parts
            .values()
            .zip(overlays)
            .map(|(part, overlay)| {
                let mut env = core_envelope.clone();
                env.recipients = part.recipients.iter().map(|(a, _, _)| a.clone()).collect();
                let ctx = TenantContext {
                    protected_domains: part
                        .recipients
                        .iter()
                        .filter_map(|(a, _, _)| DomainName::parse(a.domain()).ok())
                        .collect(),
                    recipients: part
                        .recipients
                        .iter()
                        .zip(&part.policies)
                        .map(|((a, _, _), policy)| RecipientPolicy {
                            address: a.clone(),
                            policy: EffectivePolicy::clone(policy),
                        })
                        .collect(),
                    overlay,
                    ..TenantContext::default()
                };
                (env, ctx)
            })
            .collect();
        let received_unix = received_at.and_utc().timestamp();
        let (message, verdicts) = match tokio::task::spawn_blocking(move || {
            let verdicts: Vec<Verdict> = jobs_input
                .iter()
                .map(|(env, ctx)| {
                    let input = MessageInput {
                        raw: &message,
                        envelope: env,
                        auth: None,
                        received_at: Some(received_unix),
                    };
                    analyze_or_hold(&env.recipients, || engine.analyze(&input, ctx))
                })
                .collect();
            (message, verdicts)
        })
        .await
        {
            Ok(result) => result,
            Err(err) => return DataDecision::TempFail(format!("Filtering failed: {err}")),
        };

        let headers = HeaderSummary::parse(&message);
        let size_bytes = message.len() as i64;
        let all_reject = verdicts
            .iter()
            .all(|v| v.recipients.iter().all(|r| r.action == Action::Reject));
        let multi = parts.len() > 1;
        let log_id = |index: usize| {
            MessageLogId(if multi {
                format!("{queue_id}-{index}")
            } else {
                queue_id.clone()
            })
        };

        if all_reject {
            let mut batch = AcceptedBatch::default();
            let hour = hour_of(received_at);
            let mut reason = String::new();
            for (index, (part, verdict)) in parts.values().zip(&verdicts).enumerate() {
                if reason.is_empty() {
                    reason = verdict
                        .recipients
                        .first()
                        .map(|r| r.reason.clone())
                        .unwrap_or_default();
                }
                let mut domains: Vec<&DomainId> = part
                    .recipients
                    .iter()
                    .map(|(_, r, _)| &r.domain_id)
                    .collect();
                domains.sort();
                domains.dedup();
                for domain_id in domains {
                    batch.counters.push(TrafficCounter {
                        domain_id: domain_id.clone(),
                        hour,
                        tenant_id: part.tenant_id.clone(),
                        rejected: 1,
                        ..TrafficCounter::default()
                    });
                }
                batch.log_entries.push(log_entry(
                    log_id(index),
                    &part.tenant_id,
                    &envelope,
                    &part.recipients,
                    &headers,
                    size_bytes,
                    verdict,
                    "rejected",
                    None,
                    received_at,
                ));
            }
            self.committer.commit_later(batch);
            let symbols: Vec<&str> = verdicts[0]
                .symbols
                .iter()
                .map(|s| s.name.as_str())
                .collect();
            debug!(queue_id, ?symbols, "message refused at DATA");
            return DataDecision::Reject(format!(
                "Message refused: {} ({})",
                reason,
                symbols.join(", ")
            ));
        }

        // Durable acceptance: the blob and the ingest jobs go with the next group commit.
        let blob_key = format!("inbound/{}/{queue_id}.eml", received_at.format("%Y/%m/%d"));
        let mut batch = AcceptedBatch::default();
        for (index, (part, verdict)) in parts.values().zip(verdicts).enumerate() {
            let log_id = log_id(index);
            let job = IngestMessage {
                log_id: log_id.clone(),
                tenant_id: part.tenant_id.clone(),
                blob_key: blob_key.clone(),
                received_at,
                mail_from: envelope.mail_from.clone(),
                client_ip: envelope.session.peer_addr.ip().to_string(),
                helo: envelope.session.helo.clone().unwrap_or_default(),
                tls: envelope.session.tls.is_some(),
                size_bytes,
                headers: headers.clone(),
                recipients: part.recipients.iter().map(|(_, r, _)| r.clone()).collect(),
                verdict,
            };
            let payload = match serde_json::to_string(&job) {
                Ok(payload) => payload,
                Err(err) => return DataDecision::TempFail(format!("Encoding job: {err}")),
            };
            batch.jobs.push(Job::new(
                JobId(format!("{INGEST_MESSAGE}:{log_id}")),
                INGEST_MESSAGE,
                Some(part.tenant_id.clone()),
                payload,
                Some(blob_key.clone()),
                received_at,
            ));
        }
        match self.committer.commit(batch, (blob_key, message)).await {
            Ok(()) => DataDecision::Accept { queue_id },
            Err(err) => {
                warn!(error = %err, "accepting message failed");
                DataDecision::TempFail("Queue unavailable, try again later".to_owned())
            }
        }
    }
}

/// A message log row for one tenant's share of a message.
#[expect(clippy::too_many_arguments, reason = "one row, many facts")]
pub(crate) fn log_entry(
    id: MessageLogId,
    tenant_id: &TenantId,
    envelope: &Envelope,
    recipients: &[(EmailAddress, IngestRecipient, RecipientRoute)],
    headers: &HeaderSummary,
    size_bytes: i64,
    verdict: &Verdict,
    state: &str,
    blob_key: Option<String>,
    received_at: chrono::NaiveDateTime,
) -> MessageLogEntry {
    let rcpt_to: Vec<&str> = recipients.iter().map(|(a, _, _)| a.as_str()).collect();
    let actions: Vec<serde_json::Value> = verdict
        .recipients
        .iter()
        .map(|r| {
            serde_json::json!({
                "recipient": r.recipient.as_str(),
                "category": r.category.as_str(),
                "action": r.action,
                "reason": r.reason,
                "state": state,
            })
        })
        .collect();
    MessageLogEntry {
        id,
        tenant_id: tenant_id.clone(),
        mail_from: envelope.mail_from.clone(),
        rcpt_to: serde_json::to_string(&rcpt_to).unwrap_or_default(),
        client_ip: envelope.session.peer_addr.ip().to_string(),
        helo: envelope.session.helo.clone().unwrap_or_default(),
        tls: envelope.session.tls.is_some(),
        from_header: headers.from.clone(),
        subject: headers.subject.clone(),
        message_id_header: headers.message_id.clone(),
        size_bytes,
        score: f64::from(verdict.score),
        category: category_name(verdict.category).to_owned(),
        verdict: serde_json::to_string(verdict).unwrap_or_default(),
        actions: serde_json::to_string(&actions).unwrap_or_default(),
        state: state.to_owned(),
        delivery_attempts: 0,
        last_response: None,
        blob_key,
        received_at,
        updated_at: received_at,
    }
}

pub(crate) fn category_name(category: Category) -> &'static str {
    category.as_str()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use cleanmail_core::{Action, EmailAddress, Engine, EngineConfig, Envelope, MessageInput};
    use cleanmail_core::{Model, TenantContext};

    use super::analyze_or_hold;

    #[test]
    fn an_engine_panic_quarantines_the_message_for_every_recipient() {
        let recipients = [
            EmailAddress::parse("jean@example.ch").unwrap(),
            EmailAddress::parse("info@example.ch").unwrap(),
        ];
        let verdict = analyze_or_hold(&recipients, || {
            panic!("byte index 16384 is not a char boundary")
        });
        assert!(verdict.has_symbol("FILTER_ERROR"));
        assert!(verdict.explanation().contains("not a char boundary"));
        assert_eq!(verdict.recipients.len(), 2);
        for (decision, address) in verdict.recipients.iter().zip(&recipients) {
            assert_eq!(&decision.recipient, address);
            assert_eq!(decision.action, Action::Quarantine);
        }
    }

    #[test]
    fn a_verdict_is_passed_through() {
        let engine = Engine::new(Arc::new(Model::default()), EngineConfig::default());
        let raw = b"From: a@example.org\r\nSubject: hi\r\n\r\nXJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X\r\n";
        let envelope = Envelope::from_headers(raw);
        let input = MessageInput {
            raw,
            envelope: &envelope,
            auth: None,
            received_at: None,
        };
        let verdict = analyze_or_hold(&[], || engine.analyze(&input, &TenantContext::default()));
        assert!(verdict.has_symbol("GTUBE"));
        assert!(!verdict.has_symbol("FILTER_ERROR"));
    }
}
