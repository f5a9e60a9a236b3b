//! Downstream delivery over SMTP with retries and backoff.
