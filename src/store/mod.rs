//! Persistence: stored WebQQ sessions (so a restart restores accounts without a new login), the
//! last known state of each account, and the poll lease that keeps one poller per account.
//!
//! The default (and for now only) backend is SQLite ([`Store`], in `sqlite.rs`), schema in
//! `migrations.rs`. Calls block on disk IO: they are short (one small row), but async callers
//! should run them through `tokio::task::spawn_blocking` or an actor on its own arbiter, never
//! while holding a poll. Secrets at rest: the directory is 0700 and the database (with its
//! `-wal` and `-shm` files) 0600, checked and fixed at every open (RELIABILITY.md §2).

pub mod migrations;
pub mod sqlite;

use std::path::PathBuf;

pub use sqlite::Store;

/// Why a store operation failed. Messages name the file or account, never a stored secret.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database or its directory could not be created, opened or given safe permissions.
    #[error("cannot open store {}: {source}", path.display())]
    Open { path: PathBuf, source: std::io::Error },
    /// SQLite refused an operation (busy, read-only, disk full, corrupt file…).
    #[error("store {}: {context}: {source}", path.display())]
    Sqlite { path: PathBuf, context: &'static str, source: rusqlite::Error },
    /// The database was written by a newer qqbridge (its schema version is higher than ours).
    #[error("store {}: schema version {found} is newer than this build's {known}", path.display())]
    TooNew { path: PathBuf, found: i64, known: usize },
    /// A stored session does not decode; the account needs a new login.
    #[error("stored session of account {account_id} is unreadable: {reason}")]
    CorruptSession { account_id: String, reason: String },
    /// A value does not fit the column (a QQ number above `i64::MAX`).
    #[error("account {account_id}: qq {qq} does not fit the store")]
    OutOfRange { account_id: String, qq: u64 },
}

impl StoreError {
    /// Whether another connection holds the lock: retrying shortly may succeed.
    pub fn is_busy(&self) -> bool {
        match self {
            Self::Sqlite { source: rusqlite::Error::SqliteFailure(e, _), .. } => matches!(
                e.code,
                rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
            ),
            _ => false,
        }
    }
}

/// The last known state of one account, as [`Store::account_states`] returns it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountStateRow {
    /// The configured account id.
    pub account_id: String,
    /// The account's QQ number.
    pub qq: u64,
    /// The state name (e.g. `CONNECTED`, `BAD_CREDENTIALS`; RELIABILITY.md §1.6).
    pub state: String,
    /// Why it is in that state, when known (e.g. `qq-kicked`).
    pub reason: Option<String>,
    /// When the state was recorded, Unix seconds.
    pub updated_at: u64,
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
