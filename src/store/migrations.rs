//! The store's schema as ordered migrations: entry `n` of [`MIGRATIONS`] moves the schema from
//! version `n` to `n + 1`. Append only: never edit a migration that has shipped.

/// Version 1: stored sessions, last known account state, and the per-account poll lease.
///
/// `sessions.session_json` holds a serialised `webqq::session::Session`, secrets included:
/// this is why the file is 0600 (RELIABILITY.md §2). `poll_lease` keeps one poller per account
/// across processes (protocol §7.1: a second poll2 steals messages; RELIABILITY.md §1.6).
pub const V1_SESSIONS_ACCOUNTS_LEASES: &str = "
CREATE TABLE sessions (
    account_id   TEXT PRIMARY KEY,
    qq           INTEGER NOT NULL,
    session_json TEXT NOT NULL,
    updated_at   INTEGER NOT NULL
);
CREATE TABLE accounts (
    account_id TEXT PRIMARY KEY,
    qq         INTEGER NOT NULL,
    state      TEXT NOT NULL,
    reason     TEXT,
    updated_at INTEGER NOT NULL
);
CREATE TABLE poll_lease (
    account_id TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    expires_at INTEGER NOT NULL
);
";

/// Every migration in order; the schema version is the number applied.
pub const MIGRATIONS: &[&str] = &[V1_SESSIONS_ACCOUNTS_LEASES];
