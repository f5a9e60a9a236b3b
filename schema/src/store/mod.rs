//! Queries, one module per resource. Every function that reads or writes tenant data takes
//! the caller's [`Scope`](crate::Scope) and filters through it.

pub mod access;
pub mod aliases;
pub mod dkim_keys;
pub mod domains;
pub mod jobs;
pub mod learning;
pub mod mail;
pub mod messages;
pub mod policies;
pub mod reports;
pub mod resellers;
pub mod routing;
pub mod tenants;
pub mod users;
