//! Persistence: stored WebQQ sessions, account states and poll leases; the Matrix side's portals,
//! ghosts, message map, media and processed transactions. SQLite (default) or PostgreSQL.
//!
//! [`Store`] is a cheap `Clone + Send + Sync` handle to one dedicated thread that owns the
//! connection (`handle.rs`): the sync `postgres` client cannot run on a thread that drives a tokio
//! runtime (actix arbiters do), and SQLite's connection is not `Sync`. Each method sends a command
//! to that thread and blocks until it answers. Calls are short (one small row, or one indexed
//! lookup), but they do block: async callers should use [`Store::call`] or wrap slow sequences in
//! `tokio::task::spawn_blocking`, and never hold a poll while waiting. Commands run one at a time,
//! in the order they were sent, so a sequence inside one [`Store::call`] is not interleaved with
//! other callers' commands (use [`Conn::transaction`] for atomicity across processes).
//!
//! One set of SQL (`$1, $2, …` placeholders, `INSERT … ON CONFLICT … DO UPDATE`) serves both
//! backends (`conn.rs`, `matrix.rs`); only the migrations differ (`migrations.rs`). Secrets at
//! rest: the SQLite directory is 0700 and the database (with `-wal` and `-shm`) 0600, checked and
//! fixed at every open (RELIABILITY.md §2). A PostgreSQL URL holds a password: it never appears in
//! an error or a log.

pub(crate) mod backend;
pub mod conn;
pub mod handle;
pub mod inbox;
pub mod logins;
pub mod matrix;
pub mod migrations;
pub mod postgres;
#[cfg(test)]
mod queue_tests;
pub mod relay;
pub mod rows;
pub mod sqlite;
#[cfg(test)]
mod tests;

use std::path::PathBuf;

pub use conn::Conn;
pub use handle::Store;
pub use inbox::{InboxRow, OutboxRow, PolledRow};
pub use logins::BotLogin;
pub use postgres::ScratchDatabase;
pub use relay::RelayRow;
pub use rows::{AccountStateRow, Direction, Excerpt, Ghost, Media, MessageRow, Portal};

/// Why a store operation failed. Messages name the file, the server (host, port, database, user)
/// or the account, never a stored secret nor a connection password.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database or its directory could not be created, opened or given safe permissions.
    #[error("cannot open store {}: {source}", path.display())]
    Open { path: PathBuf, source: std::io::Error },
    /// SQLite refused an operation (busy, read-only, disk full, corrupt file…).
    #[error("store {}: {context}: {source}", path.display())]
    Sqlite { path: PathBuf, context: &'static str, source: rusqlite::Error },
    /// PostgreSQL refused an operation or the connection failed. `message` is the driver's text
    /// with the password removed; `code` the SQLSTATE when the server sent one.
    #[error("store {target}: {context}: {message}")]
    Postgres { target: String, context: &'static str, message: String, code: Option<String> },
    /// The PostgreSQL URL does not parse (it is not quoted: it may hold a password).
    #[error("store postgres url is invalid: {reason}")]
    InvalidUrl { reason: String },
    /// The database was written by a newer qqbridge (its schema version is higher than ours).
    #[error("store {store}: schema version {found} is newer than this build's {known}")]
    TooNew { store: String, found: i64, known: usize },
    /// A stored session does not decode; the account needs a new login.
    #[error("stored session of account {account_id} is unreadable: {reason}")]
    CorruptSession { account_id: String, reason: String },
    /// A stored row does not decode (wrong column type, invalid Matrix id).
    #[error("store table {table}: unreadable row: {reason}")]
    CorruptRow { table: &'static str, reason: String },
    /// A value does not fit the column (a QQ number above `i64::MAX`).
    #[error("account {account_id}: qq {qq} does not fit the store")]
    OutOfRange { account_id: String, qq: u64 },
    /// The store thread has stopped (it panicked, or the process is shutting down).
    #[error("store thread has stopped")]
    Closed,
}

/// SQLSTATEs after which retrying the same statement shortly may succeed: serialization
/// failure, deadlock, lock not available (`lock_timeout`), and query canceled by
/// `statement_timeout`.
const PG_RETRYABLE: [&str; 4] = ["40001", "40P01", "55P03", "57014"];

impl StoreError {
    /// Whether another connection holds a lock (SQLite busy / locked; PostgreSQL serialization
    /// failure, deadlock, lock timeout): retrying shortly may succeed.
    pub fn is_busy(&self) -> bool {
        match self {
            Self::Sqlite { source: rusqlite::Error::SqliteFailure(e, _), .. } => matches!(
                e.code,
                rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
            ),
            Self::Postgres { code: Some(code), .. } => PG_RETRYABLE.contains(&code.as_str()),
            _ => false,
        }
    }
}

/// Writes a file readable by its owner only (RELIABILITY.md §2, secrets at rest): stored
/// sessions of the `qq` commands, QR images waiting to be scanned.
pub fn write_private(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(sqlite::FILE_MODE)
        .open(path)?;
    // An existing file keeps its mode on open; tighten it as well.
    file.set_permissions(std::fs::Permissions::from_mode(sqlite::FILE_MODE))?;
    file.write_all(bytes)
}

/// A row sequence number above `last` (which it becomes): microseconds of the wall clock, so
/// also above the numbers of earlier runs of the process, bumped by one when the clock has not
/// moved on. For the inbox, the outbox and the poll batches, whose rows replay in this order.
pub fn next_seq(last: &std::sync::atomic::AtomicU64) -> u64 {
    use std::sync::atomic::Ordering;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
    let previous = last
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |seen| {
            Some(now.max(seen.saturating_add(1)))
        })
        .unwrap_or(now);
    now.max(previous.saturating_add(1))
}
