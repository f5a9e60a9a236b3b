//! Persistence layer: one portable diesel schema over SQLite and PostgreSQL.
