//! The one `Config`, loaded and validated once at start-up from defaults, an optional TOML
//! file, `CLEANMAIL_*` environment variables and command-line flags (in rising order).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use cleanmail_worker::blobs::{BlobLocation, S3Location};
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

/// Values given on the command line; `None` leaves the lower layers in force.
#[derive(Debug, Default)]
pub struct CliOverrides {
    pub data_dir: Option<PathBuf>,
    pub database_url: Option<String>,
    pub http_addr: Option<SocketAddr>,
    pub smtp_addr: Option<SocketAddr>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Raw {
    data_dir: PathBuf,
    database_url: Option<String>,
    http_addr: SocketAddr,
    smtp_addr: SocketAddr,
    #[serde(deserialize_with = "list_or_comma_separated")]
    regions: Vec<String>,
    default_timezone: String,
    jwt_secret: Option<String>,
    smtp_hostname: String,
    smtp_max_message_size: usize,
    smtp_max_connections_per_ip: usize,
    smtp_tls_cert: Option<PathBuf>,
    smtp_tls_key: Option<PathBuf>,
    blob_dir: Option<PathBuf>,
    blob_url: Option<String>,
    blob_s3_endpoint: Option<String>,
    blob_s3_region: Option<String>,
    blob_s3_access_key_id: Option<String>,
    blob_s3_secret_access_key: Option<String>,
    blob_s3_allow_http: bool,
    blob_fsync: bool,
    queue_url: Option<String>,
    queue_namespace: String,
    clamd_addr: Option<String>,
    outbound_relay: Option<String>,
    webmail_send_limit: u32,
    delivery_initial_retry_ms: u64,
    delivery_max_retry_ms: u64,
    delivery_max_age_secs: u64,
    job_lease_secs: u64,
    purge_interval_secs: u64,
    public_url: Option<String>,
    report_interval_secs: u64,
    report_link_ttl_hours: u64,
}

/// Accepts `["ch", "li"]` (TOML) as well as `ch,li` (an environment variable).
fn list_or_comma_separated<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        List(Vec<String>),
        Text(String),
    }
    Ok(match Either::deserialize(d)? {
        Either::List(list) => list,
        Either::Text(text) => text.split(',').map(str::to_owned).collect(),
    })
}

impl Default for Raw {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./data"),
            database_url: None,
            http_addr: "127.0.0.1:8080".parse().expect("valid default address"),
            smtp_addr: "127.0.0.1:2525".parse().expect("valid default address"),
            regions: vec!["ch".to_owned()],
            default_timezone: "Europe/Zurich".to_owned(),
            jwt_secret: None,
            smtp_hostname: "localhost".to_owned(),
            smtp_max_message_size: 25 * 1024 * 1024,
            smtp_max_connections_per_ip: 20,
            smtp_tls_cert: None,
            smtp_tls_key: None,
            blob_dir: None,
            blob_url: None,
            blob_s3_endpoint: None,
            blob_s3_region: None,
            blob_s3_access_key_id: None,
            blob_s3_secret_access_key: None,
            blob_s3_allow_http: false,
            blob_fsync: true,
            queue_url: None,
            queue_namespace: "cleanmail".to_owned(),
            clamd_addr: None,
            outbound_relay: None,
            webmail_send_limit: cleanmail_api::service::webmail::DEFAULT_SEND_LIMIT,
            delivery_initial_retry_ms: 60_000,
            delivery_max_retry_ms: 3_600_000,
            delivery_max_age_secs: 5 * 24 * 3600,
            job_lease_secs: 30,
            purge_interval_secs: 3600,
            public_url: None,
            report_interval_secs: 60,
            report_link_ttl_hours: 7 * 24,
        }
    }
}

/// Validated configuration of one `cleanmail` process.
#[derive(Debug)]
pub struct Config {
    pub data_dir: PathBuf,
    database_url: Option<String>,
    pub http_addr: SocketAddr,
    pub smtp_addr: SocketAddr,
    /// Data-residency regions this deployment serves (lowercase, e.g. `ch`).
    pub regions: Vec<String>,
    /// Time zone of tenants created without one (quarantine report schedules).
    pub default_timezone: String,
    jwt_secret: Option<SecretString>,
    /// Name in the SMTP greeting, `Received:` headers, EHLO downstream and DSNs.
    pub smtp_hostname: String,
    /// Largest message accepted over SMTP, in bytes.
    pub smtp_max_message_size: usize,
    /// Most simultaneous SMTP connections from one client IP.
    pub smtp_max_connections_per_ip: usize,
    /// STARTTLS certificate and key (PEM); a self-signed certificate when unset.
    pub smtp_tls: Option<(PathBuf, PathBuf)>,
    /// Where message blobs are: the local folder `blob_dir` (default `<data-dir>/blobs`),
    /// or an S3-compatible bucket with `blob_url = "s3://bucket/prefix"`.
    pub blobs: BlobLocation,
    /// `fsync` message blobs before their acceptance commits (power-loss durability; a
    /// local store only: an S3 `PUT` is durable when it returns).
    pub blob_fsync: bool,
    /// `redis://…`: job notices travel between processes over Redis (the job table stays
    /// the durable queue); unset: within the process, with the table swept often.
    pub queue_url: Option<String>,
    /// First part of the Redis keys (`<namespace>:jobs:<kind>`), for deployments sharing
    /// one Redis.
    pub queue_namespace: String,
    /// ClamAV `clamd` TCP address (`host:port`); unset: no ClamAV scan. Found viruses are
    /// refused at DATA by the recipients' virus action; an unreachable clamd is a warning
    /// in the verdict, not a refusal.
    pub clamd_addr: Option<String>,
    /// `host:port` that sends DSNs to senders; unset: DSNs are recorded as undeliverable.
    pub outbound_relay: Option<String>,
    /// Recipients a mailbox user may address from the backup webmail per hour (0: no limit).
    pub webmail_send_limit: u32,
    /// Backoff of temporary delivery failures.
    pub delivery_initial_retry: Duration,
    pub delivery_max_retry: Duration,
    /// How long delivery is retried before the sender gets a DSN.
    pub delivery_max_age: Duration,
    /// Lease of a claimed job (renewed while its worker lives).
    pub job_lease: Duration,
    /// How often expired quarantine and retention copies are purged.
    pub purge_interval: Duration,
    /// Base URL of the platform's web pages (report links); default `http://<http_addr>`.
    pub public_url: String,
    /// How often the worker looks for due reports; `None` (0 configured): never (operators
    /// run `cleanmail reports run-due` themselves).
    pub report_interval: Option<Duration>,
    /// How long the links of a report stay valid after its slot.
    pub report_link_ttl: Duration,
}

impl Config {
    /// Loads and validates the configuration.
    pub fn load(file: Option<&Path>, cli: CliOverrides) -> anyhow::Result<Self> {
        let mut figment = Figment::from(Serialized::defaults(Raw::default()));
        if let Some(file) = file {
            anyhow::ensure!(
                file.exists(),
                "config file {} does not exist",
                file.display()
            );
            figment = figment.merge(Toml::file(file));
        }
        figment = figment
            .merge(
                Env::prefixed("CLEANMAIL_")
                    .ignore(&["config"])
                    .map(|k| match k.as_str() {
                        "HTTP_ADDR" => "http_addr".into(),
                        "SMTP_ADDR" => "smtp_addr".into(),
                        _ => k.as_str().to_ascii_lowercase().into(),
                    }),
            )
            .merge(
                Env::raw()
                    .only(&["DATABASE_URL"])
                    .map(|_| "database_url".into()),
            );
        let mut raw: Raw = figment.extract().context("reading configuration")?;
        if let Some(v) = cli.data_dir {
            raw.data_dir = v;
        }
        if let Some(v) = cli.database_url {
            raw.database_url = Some(v);
        }
        if let Some(v) = cli.http_addr {
            raw.http_addr = v;
        }
        if let Some(v) = cli.smtp_addr {
            raw.smtp_addr = v;
        }
        let blobs = blob_location(&raw)?;
        let regions: Vec<String> = raw
            .regions
            .iter()
            .map(|r| r.trim().to_ascii_lowercase())
            .filter(|r| !r.is_empty())
            .collect();
        anyhow::ensure!(
            !regions.is_empty(),
            "configuration: `regions` must name at least one region"
        );
        let default_timezone = raw.default_timezone.trim().to_owned();
        anyhow::ensure!(
            default_timezone.parse::<chrono_tz::Tz>().is_ok(),
            "configuration: `default_timezone` {default_timezone:?} is not an IANA time zone"
        );
        let smtp_tls = match (raw.smtp_tls_cert, raw.smtp_tls_key) {
            (Some(cert), Some(key)) => Some((cert, key)),
            (None, None) => None,
            _ => {
                anyhow::bail!("configuration: set both smtp_tls_cert and smtp_tls_key, or neither")
            }
        };
        let outbound_relay = raw.outbound_relay.filter(|r| !r.trim().is_empty());
        if let Some(relay) = &outbound_relay {
            anyhow::ensure!(
                relay
                    .rsplit_once(':')
                    .is_some_and(|(_, port)| port.parse::<u16>().is_ok()),
                "configuration: outbound_relay must be host:port (got {relay})"
            );
        }
        let clamd_addr = raw.clamd_addr.filter(|a| !a.trim().is_empty());
        if let Some(addr) = &clamd_addr {
            anyhow::ensure!(
                addr.rsplit_once(':')
                    .is_some_and(|(_, port)| port.parse::<u16>().is_ok()),
                "configuration: clamd_addr must be host:port (got {addr})"
            );
        }
        anyhow::ensure!(
            raw.job_lease_secs >= 3,
            "configuration: job_lease_secs must be at least 3"
        );
        let queue_url = raw
            .queue_url
            .map(|u| u.trim().to_owned())
            .filter(|u| !u.is_empty());
        if let Some(url) = &queue_url {
            anyhow::ensure!(
                url.starts_with("redis://"),
                "configuration: queue_url must be redis://[user:password@]host[:port][/db] (got {})",
                url.split_once('@').map_or(url.as_str(), |(_, host)| host)
            );
        }
        let queue_namespace = raw.queue_namespace.trim().to_owned();
        anyhow::ensure!(
            !queue_namespace.is_empty()
                && queue_namespace
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':')),
            "configuration: queue_namespace must be letters, digits, - _ . or : (got {queue_namespace:?})"
        );
        let public_url = raw
            .public_url
            .map(|u| u.trim().trim_end_matches('/').to_owned())
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| format!("http://{}", raw.http_addr));
        anyhow::ensure!(
            public_url.starts_with("http://") || public_url.starts_with("https://"),
            "configuration: public_url must start with http:// or https:// (got {public_url})"
        );
        Ok(Self {
            public_url,
            report_interval: (raw.report_interval_secs > 0)
                .then(|| Duration::from_secs(raw.report_interval_secs)),
            report_link_ttl: Duration::from_secs(raw.report_link_ttl_hours.max(1) * 3600),
            blobs,
            blob_fsync: raw.blob_fsync,
            queue_url,
            queue_namespace,
            clamd_addr,
            smtp_hostname: raw.smtp_hostname,
            smtp_max_message_size: raw.smtp_max_message_size,
            smtp_max_connections_per_ip: raw.smtp_max_connections_per_ip.max(1),
            smtp_tls,
            outbound_relay,
            webmail_send_limit: raw.webmail_send_limit,
            delivery_initial_retry: Duration::from_millis(raw.delivery_initial_retry_ms.max(1)),
            delivery_max_retry: Duration::from_millis(raw.delivery_max_retry_ms.max(1)),
            delivery_max_age: Duration::from_secs(raw.delivery_max_age_secs),
            job_lease: Duration::from_secs(raw.job_lease_secs),
            purge_interval: Duration::from_secs(raw.purge_interval_secs.max(1)),
            data_dir: raw.data_dir,
            database_url: raw.database_url.filter(|u| !u.trim().is_empty()),
            http_addr: raw.http_addr,
            smtp_addr: raw.smtp_addr,
            regions,
            default_timezone,
            jwt_secret: raw.jwt_secret.map(SecretString::from),
        })
    }

    /// The queue URL without credentials, for logs.
    pub fn queue_label(&self) -> Option<String> {
        self.queue_url
            .as_deref()
            .map(|url| match url.rsplit_once('@') {
                Some((_, host)) => format!("redis://…@{host}"),
                None => url.to_owned(),
            })
    }

    /// The database to use: `DATABASE_URL`, or SQLite under the data dir.
    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.clone(),
            None => format!("sqlite://{}", self.data_dir.join("cleanmail.db").display()),
        }
    }

    /// The database URL without credentials, for logs.
    pub fn database_label(&self) -> String {
        let url = self.database_url();
        match (url.find("://"), url.rfind('@')) {
            (Some(scheme), Some(at)) if at > scheme => {
                format!("{}://…@{}", &url[..scheme], &url[at + 1..])
            }
            _ => url,
        }
    }

    /// The HMAC secret for login tokens: configured, or generated once into the data dir.
    pub fn jwt_secret(&self) -> anyhow::Result<Vec<u8>> {
        if let Some(secret) = &self.jwt_secret {
            return Ok(secret.expose_secret().as_bytes().to_vec());
        }
        let path = self.data_dir.join("jwt.secret");
        if let Ok(existing) = std::fs::read(&path) {
            anyhow::ensure!(existing.len() >= 32, "{} is too short", path.display());
            return Ok(existing);
        }
        std::fs::create_dir_all(&self.data_dir)
            .with_context(|| format!("creating data dir {}", self.data_dir.display()))?;
        let secret = cleanmail_api::random_bytes::<64>().to_vec();
        std::fs::write(&path, &secret).with_context(|| format!("writing {}", path.display()))?;
        Ok(secret)
    }
}

/// The blob store: `blob_url` (`s3://bucket/prefix`) with the `blob_s3_*` settings, or the
/// local folder `blob_dir` (default `<data_dir>/blobs`).
fn blob_location(raw: &Raw) -> anyhow::Result<BlobLocation> {
    let blob_url = raw
        .blob_url
        .as_deref()
        .map(str::trim)
        .filter(|u| !u.is_empty());
    let Some(url) = blob_url else {
        anyhow::ensure!(
            raw.blob_s3_endpoint.is_none()
                && raw.blob_s3_region.is_none()
                && raw.blob_s3_access_key_id.is_none()
                && raw.blob_s3_secret_access_key.is_none(),
            "configuration: blob_s3_* settings need blob_url = \"s3://bucket/prefix\""
        );
        return Ok(BlobLocation::Local(
            raw.blob_dir
                .clone()
                .unwrap_or_else(|| raw.data_dir.join("blobs")),
        ));
    };
    anyhow::ensure!(
        url.starts_with("s3://"),
        "configuration: blob_url must be s3://bucket[/prefix] (got {url}); leave it unset for \
         the local folder blob_dir"
    );
    anyhow::ensure!(
        raw.blob_dir.is_none(),
        "configuration: set blob_url or blob_dir, not both"
    );
    let mut s3 =
        S3Location::parse(url).map_err(|e| anyhow::anyhow!("configuration: blob_url: {e}"))?;
    let setting = |value: &Option<String>| {
        value
            .as_deref()
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    s3.endpoint = setting(&raw.blob_s3_endpoint);
    if let Some(endpoint) = &s3.endpoint {
        anyhow::ensure!(
            endpoint.starts_with("https://")
                || (endpoint.starts_with("http://") && raw.blob_s3_allow_http),
            "configuration: blob_s3_endpoint must be an https:// URL, or http:// with \
             blob_s3_allow_http = true (got {endpoint})"
        );
    }
    s3.region = setting(&raw.blob_s3_region);
    s3.access_key_id = setting(&raw.blob_s3_access_key_id);
    s3.secret_access_key = setting(&raw.blob_s3_secret_access_key);
    anyhow::ensure!(
        s3.access_key_id.is_some() == s3.secret_access_key.is_some(),
        "configuration: set both blob_s3_access_key_id and blob_s3_secret_access_key, or \
         neither (then the AWS_* environment variables apply)"
    );
    s3.allow_http = raw.blob_s3_allow_http;
    Ok(BlobLocation::S3(s3))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blobs(raw: Raw) -> anyhow::Result<BlobLocation> {
        blob_location(&raw)
    }

    #[test]
    fn blob_url_selects_an_s3_bucket_and_is_checked() {
        match blobs(Raw::default()).unwrap() {
            BlobLocation::Local(dir) => assert_eq!(dir, PathBuf::from("./data/blobs")),
            other => panic!("{other:?}"),
        }
        let s3 = blobs(Raw {
            blob_url: Some("s3://mail-archive/prod/ch/".into()),
            blob_s3_endpoint: Some("http://127.0.0.1:5000".into()),
            blob_s3_allow_http: true,
            blob_s3_access_key_id: Some("key".into()),
            blob_s3_secret_access_key: Some("secret".into()),
            ..Raw::default()
        })
        .unwrap();
        let BlobLocation::S3(s3) = s3 else {
            panic!("{s3:?}")
        };
        assert_eq!(
            (s3.bucket.as_str(), s3.prefix.as_str()),
            ("mail-archive", "prod/ch")
        );
        assert_eq!(s3.endpoint.as_deref(), Some("http://127.0.0.1:5000"));
        assert!(!format!("{s3:?}").contains("secret"));

        let refused = |raw: Raw, needle: &str| {
            let err = blobs(raw).unwrap_err().to_string();
            assert!(err.contains(needle), "{needle:?} not in {err:?}");
        };
        refused(
            Raw {
                blob_url: Some("gs://bucket".into()),
                ..Raw::default()
            },
            "blob_url must be s3://",
        );
        refused(
            Raw {
                blob_url: Some("s3://Bad_Bucket".into()),
                ..Raw::default()
            },
            "blob_url",
        );
        refused(
            Raw {
                blob_url: Some("s3://bucket".into()),
                blob_s3_endpoint: Some("http://127.0.0.1:5000".into()),
                ..Raw::default()
            },
            "blob_s3_allow_http",
        );
        refused(
            Raw {
                blob_url: Some("s3://bucket".into()),
                blob_s3_access_key_id: Some("key".into()),
                ..Raw::default()
            },
            "blob_s3_secret_access_key",
        );
        refused(
            Raw {
                blob_s3_region: Some("eu-central-2".into()),
                ..Raw::default()
            },
            "blob_url",
        );
    }
}
