//! The QQ-side sections of `bridge.yaml`: `qq`, `accounts[]`, `sender`, `poller`, `store`,
//! `metrics`, `runtime`, `logging` (one struct each, with defaults).

use std::{net::SocketAddr, path::PathBuf};

use serde::Deserialize;

use crate::webqq::Secret;

/// `qq:` how to reach the WebQQ service.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QqConfig {
    /// Resolve every QQ host to this address (an emulator); `None` uses DNS.
    pub connect: Option<SocketAddr>,
    /// Extra CA certificate (PEM) to trust, e.g. the emulator's own CA.
    pub ca_cert: Option<PathBuf>,
    /// Read timeout of one poll2 request; the server holds a poll about a minute (protocol §2.3).
    pub poll_timeout_seconds: u64,
    /// Timeout of every other request.
    pub request_timeout_seconds: u64,
}

impl Default for QqConfig {
    fn default() -> Self {
        Self {
            connect: None,
            ca_cert: None,
            poll_timeout_seconds: 120,
            request_timeout_seconds: 15,
        }
    }
}

/// How an account logs in when it has no usable stored session.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LoginMode {
    /// Show a QR code to the owner and wait for the scan.
    Qr,
    /// Password login (needs `password` or `password_env`; may need a captcha, protocol §1).
    Password,
    /// Only restore a stored session; never start a new login unattended.
    SessionOnly,
}

/// One entry of `accounts:`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountConfig {
    /// Short label used in metrics and logs: `[a-z0-9_-]{1,32}`, unique.
    pub id: String,
    /// The account's QQ number.
    pub qq: u64,
    /// How to log in when no stored session works.
    pub login: LoginMode,
    /// The QQ password. After loading it also holds the value read from `password_env`.
    #[serde(default)]
    pub password: Option<Secret<String>>,
    /// Name of an environment variable that holds the password (keeps it out of the file).
    #[serde(default)]
    pub password_env: Option<String>,
    /// A disabled account is kept in the file but not started.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// The Matrix user (`@user:server`) who owns this account on the Matrix side; required when
    /// `bridge.enabled`.
    #[serde(default)]
    pub owner: Option<String>,
}

/// `sender:` pacing and retries of messages sent to QQ.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SenderConfig {
    /// Minimum gap between two sends of one account (protocol §5.5: Mojo-Webqq waits 3 s).
    pub min_interval_ms: u64,
    /// Retries of a send that certainly did not reach QQ (never of an uncertain one).
    pub max_retries: u32,
    /// Delay before the first retry; doubles each time.
    pub retry_backoff_ms: u64,
}

impl Default for SenderConfig {
    fn default() -> Self {
        Self { min_interval_ms: 3000, max_retries: 3, retry_backoff_ms: 2000 }
    }
}

/// `poller:` backoff of the poll loop and relogin limits (RELIABILITY.md §1.6).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PollerConfig {
    /// First backoff delay after a transient failure (full jitter, doubling).
    pub backoff_initial_ms: u64,
    /// Cap of the backoff delay.
    pub backoff_max_seconds: u64,
    /// Relogin attempts after session trouble before the account stops.
    pub max_relogins: u32,
    /// Polling gaps longer than this (seconds) are told to the account's owner: QQ messages
    /// sent then may be missing (RELIABILITY.md §1.7). 0: never told.
    pub gap_notice_seconds: u64,
}

impl Default for PollerConfig {
    fn default() -> Self {
        Self {
            backoff_initial_ms: 1000,
            backoff_max_seconds: 300,
            max_relogins: 3,
            gap_notice_seconds: 120,
        }
    }
}

/// Which database holds the bridge's state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StoreBackend {
    /// The SQLite file at `store.path`.
    #[default]
    Sqlite,
    /// A PostgreSQL server reached through the URL in `store.postgres_url_env`.
    Postgres,
}

/// `store:` the database of sessions and account state.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// Which database to use.
    pub backend: StoreBackend,
    /// SQLite database file; its directory is created 0700 and the file 0600.
    pub path: PathBuf,
    /// Name of an environment variable holding the PostgreSQL connection string (it contains a
    /// password, so it never sits in the file).
    pub postgres_url_env: Option<String>,
    /// The connection string read from `postgres_url_env` at load; never printed.
    #[serde(skip)]
    pub postgres_url: Option<Secret<String>>,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            backend: StoreBackend::Sqlite,
            path: PathBuf::from("var/qqbridge.sqlite3"),
            postgres_url_env: None,
            postgres_url: None,
        }
    }
}

/// `metrics:` the Prometheus listener.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Listen address of `/metrics` (loopback by default: RELIABILITY.md §2).
    pub listen: SocketAddr,
    /// Label per-account series with the account id; off for very many accounts.
    pub per_account: bool,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self { listen: SocketAddr::from(([127, 0, 0, 1], 9464)), per_account: true }
    }
}

/// `runtime:` process-level concurrency.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RuntimeConfig {
    /// Stored sessions restored in parallel at start (RELIABILITY.md §1.6).
    pub restore_concurrency: usize,
    /// Actix arbiters (threads) hosting account actors; `None` is one per core.
    pub arbiters: Option<usize>,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self { restore_concurrency: 64, arbiters: None }
    }
}

/// `logging:` tracing output.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoggingConfig {
    /// A `tracing_subscriber::EnvFilter` directive, e.g. `info,qqbridge::webqq=debug`.
    pub filter: String,
}

impl Default for LoggingConfig {
    fn default() -> Self {
        Self { filter: "info".to_owned() }
    }
}

pub(super) fn default_true() -> bool {
    true
}
