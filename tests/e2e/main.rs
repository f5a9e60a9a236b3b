//! End-to-end tests: the real `cleanmail` binary over real HTTP, against SQLite always and
//! against PostgreSQL when `TEST_DATABASE_URL` is set (each test runs once per backend).

mod abuse;
mod common;
mod foundation;
mod import;
mod isolation;
mod learning;
mod mail;
mod outbound;
mod policies;
mod quarantine;
mod reports;
mod scale_out;
mod tracking;
