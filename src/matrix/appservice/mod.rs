//! The appservice server: the homeserver → bridge half of the AS API (MATRIX.md §1, §2), on
//! actix-web. It authenticates the homeserver, reads and parses transactions, and hands them to an
//! [`AppserviceHandler`] the bridge implements; it knows nothing of QQ.
//!
//! Delivery contract (MATRIX.md §2): a transaction is answered `200 {}` only after the handler
//! says it is durably stored; a handler error becomes `500` so the homeserver re-sends the same
//! txnId later. One malformed event never fails a transaction: events stay raw JSON and the
//! bridge skips what it cannot read. Dedupe by txnId is the handler's job (it persists them).

pub(crate) mod auth;
mod memory;
mod routes;

use std::collections::VecDeque;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use actix_web::{App, HttpServer, web};
use futures_util::future::BoxFuture;
use ruma::OwnedUserId;
use ruma::api::appservice::event::push_events::v1::EphemeralData;
use ruma::events::AnyTimelineEvent;
use ruma::serde::Raw;

use crate::matrix::Token;
use crate::metrics::Metrics;

pub use memory::MemoryHandler;
pub use routes::{BodyError, parse_transaction};

/// Default cap on a transaction body: Synapse sends at most 100 PDUs (≤ 64 KiB each) plus 100
/// ephemeral and 100 to-device events per transaction (MATRIX.md §2), so 16 MiB holds the worst
/// case with room for JSON overhead. actix-web's own defaults (256 KiB, 2 MiB) are far too small.
pub const DEFAULT_MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

/// Cap on the bodies of the small endpoints (ping): they carry one id.
const SMALL_BODY_BYTES: usize = 64 * 1024;

/// How many ping transaction ids [`AppserviceStatus`] remembers; the bridge checks its own ping
/// right after sending it, so a handful is plenty.
const REMEMBERED_PINGS: usize = 16;

/// What the appservice server needs from the configuration.
#[derive(Clone, Debug)]
pub struct ServerSettings {
    /// The registration's `hs_token`: the homeserver must present it on every AS API call.
    pub hs_token: Token,
    /// Largest accepted transaction body in bytes (larger → 413 `M_TOO_LARGE`); normally
    /// [`DEFAULT_MAX_BODY_BYTES`].
    pub max_body_bytes: usize,
    /// The provisioning API served beside the AS API (MATRIX.md §6.8); `None` turns it off.
    pub provisioning: Option<crate::matrix::provisioning::Provisioning>,
}

impl ServerSettings {
    /// Settings for `hs_token` with [`DEFAULT_MAX_BODY_BYTES`].
    pub fn new(hs_token: Token) -> ServerSettings {
        ServerSettings { hs_token, max_body_bytes: DEFAULT_MAX_BODY_BYTES, provisioning: None }
    }
}

/// One `PUT /transactions/{txnId}` as the homeserver sent it.
#[derive(Clone, Debug)]
pub struct Transaction {
    /// The homeserver's opaque transaction id; dedupe by string equality only (Synapse counts,
    /// conduwuit hashes: never compare by order).
    pub txn_id: String,
    /// Timeline events, raw: each may be malformed; the bridge deserializes and skips bad ones.
    pub events: Vec<Raw<AnyTimelineEvent>>,
    /// Typing, receipts and presence, from `ephemeral` or, when absent, the unstable
    /// `de.sorunome.msc2409.ephemeral`; raw for the same reason.
    pub ephemeral: Vec<Raw<EphemeralData>>,
}

/// What the handler did with a transaction; both are answered `200 {}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// First time seen: stored and handled.
    Processed,
    /// Already processed earlier (a homeserver retry): nothing was done.
    Duplicate,
}

/// The handler could not store a transaction durably; the server answers 500 and the homeserver
/// retries the same txnId (MATRIX.md §2).
#[derive(Debug, thiserror::Error)]
#[error("could not persist the transaction: {0}")]
pub struct PersistError(pub String);

/// What the bridge plugs into the appservice server. Futures are boxed and `'static` so the
/// server can run them on its own worker thread.
pub trait AppserviceHandler: Send + Sync + 'static {
    /// Store and handle `txn`. Resolves `Ok` only once it is durably stored (or was already
    /// processed: `Delivery::Duplicate`, no side effects); `Err` makes the server answer 500.
    /// May be slow (a store commit); the homeserver sends one transaction at a time.
    fn transaction(&self, txn: Transaction) -> BoxFuture<'static, Result<Delivery, PersistError>>;

    /// Whether `user_id` (in our namespace) belongs to a known remote contact; `true` means the
    /// handler has registered the ghost and the server answers `200 {}`, `false` gives 404.
    fn query_user(&self, user_id: OwnedUserId) -> BoxFuture<'static, bool>;

    /// The bridge's per-login states as JSON for `GET /_matrix/app/com.qqbridge/bridge_state`
    /// (hs_token protected, MATRIX.md §6.5). No IO; the default serves none.
    fn bridge_state(&self) -> serde_json::Value {
        serde_json::json!({ "states": [] })
    }
}

/// Shared state between the bridge and the server: the readiness flag behind `/health/ready`
/// and the transaction ids of pings the homeserver delivered. Cheap to clone (an `Arc`).
#[derive(Clone, Debug, Default)]
pub struct AppserviceStatus {
    inner: Arc<StatusInner>,
}

#[derive(Debug, Default)]
struct StatusInner {
    ready: AtomicBool,
    pings: Mutex<VecDeque<String>>,
}

impl AppserviceStatus {
    /// A status that is not ready and has seen no ping.
    pub fn new() -> AppserviceStatus {
        AppserviceStatus::default()
    }

    /// Sets the readiness answered on `/health/ready` (the bridge sets it once the store is open,
    /// the homeserver answers and its ping came back).
    pub fn set_ready(&self, ready: bool) {
        self.inner.ready.store(ready, Ordering::Relaxed);
    }

    /// The current readiness.
    pub fn is_ready(&self) -> bool {
        self.inner.ready.load(Ordering::Relaxed)
    }

    /// Whether a `POST /_matrix/app/v1/ping` with `transaction_id` arrived (among the last few).
    pub fn ping_received(&self, transaction_id: &str) -> bool {
        let pings = self.inner.pings.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        pings.iter().any(|p| p == transaction_id)
    }

    fn record_ping(&self, transaction_id: String) {
        let mut pings = self.inner.pings.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if pings.len() >= REMEMBERED_PINGS {
            pings.pop_front();
        }
        pings.push_back(transaction_id);
    }
}

/// Serves the AS API routes of MATRIX.md §1 (`/_matrix/app/v1/…`, the legacy unprefixed
/// `/transactions`, `/users`, `/rooms`) plus `GET /health/live` and `/health/ready` on the
/// already-bound `listener`, until `shutdown` resolves; then stops gracefully (in-flight requests
/// get up to 10 s). Runs on one actix worker thread; may be awaited on an actix system or a plain
/// tokio runtime. Errors only if the listener cannot be used or the server fails.
pub async fn serve(
    listener: std::net::TcpListener,
    settings: ServerSettings,
    handler: Arc<dyn AppserviceHandler>,
    status: AppserviceStatus,
    metrics: Metrics,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let provisioning = settings.provisioning.clone();
    let state = web::Data::new(routes::AppState { settings, handler, status, metrics });
    let server = HttpServer::new(move || {
        App::new().app_data(state.clone()).configure(|cfg| {
            crate::matrix::provisioning::configure(cfg, provisioning.as_ref());
            routes::configure(cfg);
        })
    })
    .workers(1)
    .disable_signals()
    .shutdown_timeout(10)
    .listen(listener)?
    .run();
    crate::metrics::run_until(server, shutdown).await
}

#[cfg(test)]
mod tests;
