//! Scheduled reports: users' quarantine reports and domain/tenant report definitions.
//!
//! [`run_due`] runs, for one instant, whatever is due: for each user (or definition) the
//! latest slot of its schedule at or before that instant, unless that slot already ran. A
//! worker that was down therefore catches up the latest missed slot once, not every missed
//! one. A user's slot is due when something was quarantined between the previous report and
//! the slot; the report then lists everything since the previous report up to the moment it
//! is made (`covered_until`, never after `at`), where the next one starts. A slot runs once however
//! many processes try: the `report_runs` row (unique per user or definition and slot) is
//! inserted in the transaction that logs the email and enqueues its delivery.
//!
//! Emails go out through the outbound relay as `DeliverMessage` jobs (`domain_id: None`),
//! from the null sender, and are recorded in the message log (category `report`).

pub mod i18n;
pub mod render;

use anyhow::Context as _;
use chrono::{DateTime, NaiveDateTime, Utc};
use chrono_tz::Tz;
use cleanmail_core::links::{LinkClaims, LinkPurpose, LinkSigner};
use cleanmail_core::policy::ReportSchedule;
use cleanmail_core::schedule::{ReportFrequency, latest_slot};
use cleanmail_schema::models::{Job, Message, MessageLogEntry, ReportDefinition, ReportRun};
use cleanmail_schema::store::reports::{
    self as store, ReportUser, change_percent, quarantined_between,
};
use cleanmail_schema::store::{domains, policies, tenants};
use cleanmail_schema::{Db, JobId, MessageLogId, Scope, TenantId};
use tracing::{info, warn};

use crate::blobs::BlobStore;
use crate::jobs::{DELIVER_MESSAGE, DeliverMessage};
use render::{
    DomainItem, DomainReport, DomainReportBody, ReportItem, StatisticsBody, StatisticsRow, TopList,
    UserReport,
};

/// Items listed in one email (the rest are counted).
pub const MAX_ITEMS: usize = 100;
/// Items looked at for one report (beyond this the "more" count stops growing).
const FETCH_ITEMS: i64 = 1000;
/// How far back a first report looks (quarantine expiry is at most a year).
const FIRST_REPORT_LOOKBACK_DAYS: i64 = 366;

/// What the report scheduler needs besides the database and blob store.
#[derive(Debug, Clone)]
pub struct ReportSettings {
    /// Signs the one-click links.
    pub links: LinkSigner,
    /// Base URL of the platform's own link pages (`https://mail.example`), used when the
    /// reseller has no portal.
    pub public_url: String,
    /// The `From:` of report emails.
    pub from: String,
    /// Our host name (Message-ID).
    pub hostname: String,
    /// How long report links stay valid after the slot.
    pub link_ttl: chrono::Duration,
}

/// What one [`run_due`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct RunSummary {
    /// Report emails enqueued.
    pub sent: usize,
    /// Slots that ran with nothing to report (no email).
    pub empty: usize,
    /// Slots another process ran first.
    pub taken: usize,
}

/// The time zone of a user's reports: the policy's, unless it comes from a built-in tenant
/// policy (shared by every tenant, so its zone is only a placeholder): then the tenant's.
fn report_timezone(explained: &policies::ExplainedPolicy, tenant_timezone: &str) -> Tz {
    let from_builtin = explained.effective.sources.report == cleanmail_core::PolicyLevel::Tenant
        && explained.tenant_policy.is_builtin();
    let name = if from_builtin {
        tenant_timezone
    } else {
        explained.effective.policy.report.timezone.as_str()
    };
    name.parse().unwrap_or(chrono_tz::Europe::Zurich)
}

/// Runs every report due at `at` (see the module doc).
pub async fn run_due(
    db: &Db,
    blobs: &BlobStore,
    settings: &ReportSettings,
    at: DateTime<Utc>,
) -> anyhow::Result<RunSummary> {
    let mut summary = RunSummary::default();
    let until = at.naive_utc();
    let users = store::unscoped_users_with_quarantine_for_reports(
        db,
        until - chrono::Duration::days(FIRST_REPORT_LOOKBACK_DAYS),
        until,
    )
    .await
    .context("listing users with quarantined mail")?;
    for user in &users {
        if let Err(err) = user_report(db, blobs, settings, at, user, &mut summary).await {
            warn!(user = %user.user.id, error = %err, "quarantine report failed");
        }
    }
    let definitions = store::unscoped_all_definitions_for_reports(db)
        .await
        .context("listing report definitions")?;
    for (definition, reseller_id, timezone) in &definitions {
        let scope = Scope::Tenant {
            reseller_id: reseller_id.clone(),
            tenant_id: definition.tenant_id.clone(),
        };
        if let Err(err) = definition_report(
            db,
            blobs,
            settings,
            at,
            &scope,
            definition,
            timezone,
            &mut summary,
        )
        .await
        {
            warn!(definition = %definition.id, error = %err, "report failed");
        }
    }
    if summary.sent > 0 {
        info!(sent = summary.sent, at = %at, "reports enqueued");
    }
    Ok(summary)
}

/// The link to `purpose` for `user` (and `item`): the reseller's portal or our pages.
pub fn link_url(
    settings: &ReportSettings,
    user: &ReportUser,
    item: Option<&str>,
    purpose: LinkPurpose,
    expires: DateTime<Utc>,
) -> String {
    let claims = LinkClaims::new(
        user.user.id.as_str(),
        item.map(str::to_owned),
        purpose,
        expires.timestamp(),
        uuid::Uuid::new_v4().simple().to_string(),
    );
    let token = settings.links.sign(&claims);
    let base = user
        .portal_url
        .as_deref()
        .unwrap_or(&settings.public_url)
        .trim_end_matches('/');
    format!("{base}/links/{}?token={token}", purpose.as_str())
}

fn local(at: NaiveDateTime, tz: Tz) -> String {
    at.and_utc()
        .with_timezone(&tz)
        .format("%Y-%m-%d %H:%M")
        .to_string()
}

fn sender_of(message: &Message) -> String {
    if message.from_header.trim().is_empty() {
        message.mail_from.clone()
    } else {
        message.from_header.clone()
    }
}

/// The report of one user for the latest slot at `at`.
async fn user_report(
    db: &Db,
    blobs: &BlobStore,
    settings: &ReportSettings,
    at: DateTime<Utc>,
    user: &ReportUser,
    summary: &mut RunSummary,
) -> anyhow::Result<()> {
    let scope = user.scope();
    let explained = policies::effective_for_user(db, &scope, &user.user.id).await?;
    let schedule = explained.effective.policy.report.schedule;
    if schedule == ReportSchedule::Never {
        return Ok(());
    }
    let tz = report_timezone(&explained, &user.tenant_timezone);
    let Some(slot) = latest_slot(&schedule, tz, at) else {
        return Ok(());
    };
    let slot_naive = slot.naive_utc();
    let last = store::last_user_run(db, &scope, &user.user.id).await?;
    if last.is_some_and(|(last_slot, _)| last_slot >= slot_naive) {
        return Ok(());
    }
    let after = last.map_or(
        slot_naive - chrono::Duration::days(FIRST_REPORT_LOOKBACK_DAYS),
        |(_, covered)| covered,
    );
    // Due only if something new had arrived by the slot; the report then lists everything
    // new up to now (so the next one starts where this one ends).
    let due = !quarantined_between(db, &scope, None, after, slot_naive, 1)
        .await?
        .is_empty();
    let covered_until = if due {
        cleanmail_schema::now().min(at.naive_utc())
    } else {
        after
    };
    let messages = if due {
        quarantined_between(db, &scope, None, after, covered_until, FETCH_ITEMS).await?
    } else {
        Vec::new()
    };
    let mut run = ReportRun {
        id: cleanmail_schema::new_id(),
        tenant_id: user.user.tenant_id.clone(),
        user_id: Some(user.user.id.clone()),
        definition_id: None,
        slot: slot_naive,
        covered_until,
        items: i32::try_from(messages.len()).unwrap_or(i32::MAX),
        log_id: None,
        created_at: cleanmail_schema::now(),
    };
    if messages.is_empty() {
        if store::claim_run(db, &run, None, None).await? {
            summary.empty += 1;
        } else {
            summary.taken += 1;
        }
        return Ok(());
    }
    let expires = slot + settings.link_ttl;
    let items = messages
        .iter()
        .take(MAX_ITEMS)
        .map(|m| {
            let link = |purpose| link_url(settings, user, Some(m.id.as_str()), purpose, expires);
            ReportItem {
                id: m.id.to_string(),
                received: local(m.received_at, tz),
                sender: sender_of(m),
                subject: m.subject.clone(),
                category: m.category.clone(),
                release_url: link(LinkPurpose::Release),
                delete_url: link(LinkPurpose::Delete),
                allow_sender_url: link(LinkPurpose::AllowSender),
            }
        })
        .collect();
    let report = UserReport {
        language: user.user.language.clone(),
        address: user.user.address.clone(),
        items,
        more: messages.len().saturating_sub(MAX_ITEMS),
        quarantine_url: link_url(settings, user, None, LinkPurpose::Quarantine, expires),
        webmail_url: link_url(settings, user, None, LinkPurpose::Webmail, expires),
        links_expire: local(expires.naive_utc(), tz),
    };
    let email = render::render_user_report(&report);
    let job_key = format!("report:{}:{}", user.user.id, slot.format("%Y%m%dT%H%MZ"));
    let recipients = vec![user.user.address.clone()];
    let claimed = enqueue_email(
        db,
        blobs,
        settings,
        &mut run,
        &user.user.tenant_id,
        &job_key,
        &email,
        &recipients,
        &user.user.language,
    )
    .await?;
    if claimed {
        summary.sent += 1;
    } else {
        summary.taken += 1;
    }
    Ok(())
}

/// Writes the email's blob, then claims the slot with its log entry and delivery job in one
/// transaction; the blob is removed again when another process had the slot.
#[expect(clippy::too_many_arguments, reason = "one call site per report kind")]
async fn enqueue_email(
    db: &Db,
    blobs: &BlobStore,
    settings: &ReportSettings,
    run: &mut ReportRun,
    tenant_id: &TenantId,
    job_key: &str,
    email: &render::RenderedEmail,
    recipients: &[String],
    language: &str,
) -> anyhow::Result<bool> {
    let log_id = MessageLogId::new();
    let message_id = format!("<{log_id}@{}>", settings.hostname);
    let mime = render::to_mime(email, &settings.from, recipients, language, &message_id)?;
    let size = i64::try_from(mime.len()).unwrap_or(i64::MAX);
    let blob_key = format!("reports/{log_id}.eml");
    blobs.put(&blob_key, mime).await?;
    let now = cleanmail_schema::now();
    let entry = MessageLogEntry {
        id: log_id.clone(),
        tenant_id: tenant_id.clone(),
        mail_from: String::new(),
        rcpt_to: serde_json::to_string(recipients)?,
        client_ip: String::new(),
        helo: settings.hostname.clone(),
        tls: false,
        from_header: settings.from.clone(),
        subject: email.subject.clone(),
        message_id_header: message_id,
        size_bytes: size,
        score: 0.0,
        category: "report".to_owned(),
        verdict: "{}".to_owned(),
        actions: "[]".to_owned(),
        state: "queued".to_owned(),
        delivery_attempts: 0,
        last_response: None,
        blob_key: Some(blob_key.clone()),
        received_at: now,
        updated_at: now,
    };
    let delivery = DeliverMessage {
        log_id: log_id.clone(),
        tenant_id: tenant_id.clone(),
        domain_id: None,
        blob_key: blob_key.clone(),
        mail_from: String::new(),
        rcpt_to: recipients.to_vec(),
        subject_prefix: None,
        arrived_at: now,
        dsn: false,
    };
    let job = Job::new(
        JobId(job_key.to_owned()),
        DELIVER_MESSAGE,
        Some(tenant_id.clone()),
        serde_json::to_string(&delivery)?,
        Some(blob_key.clone()),
        now,
    );
    run.log_id = Some(log_id);
    let claimed = store::claim_run(db, run, Some(&entry), Some(&job)).await?;
    if !claimed {
        blobs.delete(&blob_key).await?;
    }
    Ok(claimed)
}

/// The content of a definition's report for the period ending at `slot`.
pub async fn definition_body(
    db: &Db,
    scope: &Scope,
    definition: &ReportDefinition,
    tz: Tz,
    slot: DateTime<Utc>,
) -> anyhow::Result<(DomainReport, usize)> {
    let frequency = ReportFrequency::parse(&definition.frequency)
        .with_context(|| format!("unknown frequency {}", definition.frequency))?;
    let (start, _) = frequency.period_ending(tz, slot);
    let t = i18n::strings(&definition.language);
    let scope_name = match &definition.domain_id {
        Some(domain_id) => domains::get(db, scope, domain_id).await?.name,
        None => tenants::get(db, scope, &definition.tenant_id).await?.name,
    };
    let (body, count) = if definition.kind == "statistics" {
        let (previous_start, _) = frequency.period_ending(tz, start);
        let stats = store::statistics(
            db,
            scope,
            definition.domain_id.as_ref(),
            start.naive_utc(),
            slot.naive_utc(),
            10,
        )
        .await?;
        let before = store::statistics(
            db,
            scope,
            definition.domain_id.as_ref(),
            previous_start.naive_utc(),
            start.naive_utc(),
            0,
        )
        .await?;
        let label = |key: &str| match key {
            "clean" => t.clean,
            "newsletter" => t.newsletter,
            "spam" => t.spam,
            "phishing" => t.phishing,
            "virus" => t.virus,
            "rejected" => t.rejected,
            _ => t.total,
        };
        let rows = stats
            .totals
            .rows(&before.totals)
            .iter()
            .map(|&(key, count, previous)| StatisticsRow {
                label: label(key).to_owned(),
                count,
                previous,
                trend: change_percent(count, previous)
                    .map_or_else(|| "–".to_owned(), |p| format!("{p:+.1} %")),
            })
            .collect();
        let total = usize::try_from(stats.totals.total()).unwrap_or(0);
        (
            DomainReportBody::Statistics(StatisticsBody {
                rows,
                tops: vec![
                    TopList {
                        title: t.top_senders.to_owned(),
                        entries: stats.top_senders,
                    },
                    TopList {
                        title: t.top_recipients.to_owned(),
                        entries: stats.top_recipients,
                    },
                ],
            }),
            total,
        )
    } else {
        let messages = quarantined_between(
            db,
            scope,
            definition.domain_id.as_ref(),
            start.naive_utc(),
            slot.naive_utc(),
            FETCH_ITEMS,
        )
        .await?;
        let items = messages
            .iter()
            .take(MAX_ITEMS)
            .map(|m| DomainItem {
                received: local(m.received_at, tz),
                recipient: m.recipient.clone(),
                sender: sender_of(m),
                subject: m.subject.clone(),
                category: m.category.clone(),
            })
            .collect();
        (
            DomainReportBody::Quarantine {
                items,
                more: messages.len().saturating_sub(MAX_ITEMS),
            },
            messages.len(),
        )
    };
    Ok((
        DomainReport {
            language: definition.language.clone(),
            scope: scope_name,
            from: local(start.naive_utc(), tz),
            to: local(slot.naive_utc(), tz),
            body,
        },
        count,
    ))
}

#[expect(
    clippy::too_many_arguments,
    reason = "the scheduler's context, passed through"
)]
async fn definition_report(
    db: &Db,
    blobs: &BlobStore,
    settings: &ReportSettings,
    at: DateTime<Utc>,
    scope: &Scope,
    definition: &ReportDefinition,
    timezone: &str,
    summary: &mut RunSummary,
) -> anyhow::Result<()> {
    let tz: Tz = timezone.parse().unwrap_or(chrono_tz::Europe::Zurich);
    let frequency = ReportFrequency::parse(&definition.frequency)
        .with_context(|| format!("unknown frequency {}", definition.frequency))?;
    let Some(slot) = latest_slot(&frequency.schedule(), tz, at) else {
        return Ok(());
    };
    let last = store::last_definition_run(db, scope, &definition.id).await?;
    // A new definition starts with the next slot, not with one before it existed.
    if last.is_some_and(|last| last >= slot.naive_utc()) || definition.created_at > slot.naive_utc()
    {
        return Ok(());
    }
    let (report, count) = definition_body(db, scope, definition, tz, slot).await?;
    let mut run = ReportRun {
        id: cleanmail_schema::new_id(),
        tenant_id: definition.tenant_id.clone(),
        user_id: None,
        definition_id: Some(definition.id.clone()),
        slot: slot.naive_utc(),
        covered_until: slot.naive_utc(),
        items: i32::try_from(count).unwrap_or(i32::MAX),
        log_id: None,
        created_at: cleanmail_schema::now(),
    };
    let recipients: Vec<String> = serde_json::from_str(&definition.recipients)?;
    let nothing_new = matches!(&report.body, DomainReportBody::Quarantine { .. }) && count == 0;
    if nothing_new || recipients.is_empty() {
        if store::claim_run(db, &run, None, None).await? {
            summary.empty += 1;
        } else {
            summary.taken += 1;
        }
        return Ok(());
    }
    let email = render::render_domain_report(&report);
    let job_key = format!("report:{}:{}", definition.id, slot.format("%Y%m%dT%H%MZ"));
    let claimed = enqueue_email(
        db,
        blobs,
        settings,
        &mut run,
        &definition.tenant_id,
        &job_key,
        &email,
        &recipients,
        &definition.language,
    )
    .await?;
    if claimed {
        summary.sent += 1;
    } else {
        summary.taken += 1;
    }
    Ok(())
}
