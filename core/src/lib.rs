//! Pure filtering and multi-tenant policy logic: no I/O beyond the traits it defines.

pub mod address;
