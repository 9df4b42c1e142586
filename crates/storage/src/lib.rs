//! Storage: one portable query set over SQLite and PostgreSQL through
//! `sqlx::Any`, the two migration folders, and the transaction discipline.
//!
//! Architecture Invariant: every SQL statement of the product lives in this
//! crate, and each is written once for both backends (`$n` placeholders,
//! `RETURNING`, `ON CONFLICT … DO UPDATE`). Ids and JSON are TEXT, times are
//! BIGINT epoch milliseconds, flags BIGINT 0/1 (what `Any` can decode on both).
//!
//! Architecture Invariant: a write transaction is begun with
//! [`Db::begin_write`], which on SQLite is `BEGIN IMMEDIATE`: a deferred
//! transaction that later upgrades to a write fails with SQLITE_BUSY under
//! concurrent writers whatever the busy timeout says.

mod db;
pub mod queries;

pub use db::{Backend, Db, DbOptions, Tx, redact_url};

/// A connection, as seen inside a transaction (`&mut *tx`).
pub type Conn = sqlx::AnyConnection;
pub use queries::*;

/// A storage failure. Constraint violations are told apart so that callers
/// can turn them into a 409 with a field name.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("database error: {0}")]
    Sqlx(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("unsupported database URL '{0}': use sqlite://PATH or postgres://…")]
    UnsupportedUrl(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

impl StorageError {
    /// True for a UNIQUE constraint failure on either backend.
    pub fn is_unique_violation(&self) -> bool {
        match self {
            StorageError::Sqlx(sqlx::Error::Database(e)) => {
                e.is_unique_violation()
                    || e.message().contains("UNIQUE constraint failed")
                    || e.code().as_deref() == Some("23505")
            }
            _ => false,
        }
    }
}

pub type Result<T, E = StorageError> = std::result::Result<T, E>;

/// A new time-ordered id (UUIDv7): its text sorts by creation time, which
/// keyset pagination relies on.
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}
