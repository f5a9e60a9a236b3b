//! SMTP ingest, downstream delivery and scheduled jobs.

pub mod clamd;
pub mod delivery;
pub mod sink;
pub mod smtp;
