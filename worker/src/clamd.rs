//! ClamAV `clamd` client (INSTREAM) implementing the core virus-scanner trait.
