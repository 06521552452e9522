//! The emulator's shared state ([`Shared`]) and its lock helpers. Every lock is a `std::sync`
//! lock held for a few map operations; nothing awaits while holding one.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::sync::{Mutex, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use bytes::Bytes;
use serde::Serialize;

use crate::emulator::auth::LoginState;
use crate::emulator::faults::Faults;
use crate::emulator::options::EmulatorOptions;
use crate::emulator::session::Sessions;
use crate::emulator::tls::TlsMaterial;
use crate::emulator::world::World;
use crate::webqq::QqNumber;

/// Total bytes of stored pictures kept; the oldest are dropped beyond it.
pub(crate) const PICTURE_STORE_BYTES: usize = 64 * 1024 * 1024;

/// Sent messages kept per account for `GET /_emulator/sent`.
pub(crate) const SENT_LOG_PER_ACCOUNT: usize = 10_000;

/// Read-locks, ignoring poisoning (see `session::lock`).
pub(crate) fn read<T>(l: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(PoisonError::into_inner)
}

/// Write-locks, ignoring poisoning.
pub(crate) fn write<T>(l: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(PoisonError::into_inner)
}

/// One message an account sent through `send_*_msg2`, as `GET /_emulator/sent` lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SentMessage {
    /// `friend`, `group`, `discussion` or `session`.
    pub kind: &'static str,
    /// A stable number: friend QQ number, group number or discussion id.
    pub target: u64,
    /// The text segments joined, faces as `[face N]`, pictures as `[picture]`.
    pub text: String,
    /// The raw `content` string as sent.
    pub content: String,
    /// The client's `msg_id`.
    pub msg_id: u64,
    /// Unix seconds when received.
    pub time: u64,
}

/// A stored picture (uploaded or generated).
#[derive(Clone, Debug)]
pub(crate) struct Picture {
    /// `image/png`, `image/jpeg`, …
    pub content_type: &'static str,
    /// The file.
    pub bytes: Bytes,
}

/// Pictures by key (cface name, offpic path, generated id), bounded in total size.
#[derive(Debug, Default)]
pub(crate) struct Pictures {
    by_key: HashMap<String, Picture>,
    order: std::collections::VecDeque<String>,
    total: usize,
}

impl Pictures {
    /// Stores a picture; returns false if the key was already stored.
    pub(crate) fn put(&mut self, key: String, picture: Picture) -> bool {
        if self.by_key.contains_key(&key) {
            return false;
        }
        self.total += picture.bytes.len();
        self.order.push_back(key.clone());
        self.by_key.insert(key, picture);
        while self.total > PICTURE_STORE_BYTES {
            let Some(old) = self.order.pop_front() else { break };
            if let Some(p) = self.by_key.remove(&old) {
                self.total = self.total.saturating_sub(p.bytes.len());
            }
        }
        true
    }

    /// A picture by key.
    pub(crate) fn get(&self, key: &str) -> Option<Picture> {
        self.by_key.get(key).cloned()
    }
}

/// Request and fault counts of one endpoint.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Counter {
    /// Requests routed to the endpoint.
    pub requests: u64,
    /// Faults applied to them.
    pub faults: u64,
}

/// Everything the handlers and the control API share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub options: RwLock<EmulatorOptions>,
    pub world: RwLock<World>,
    pub sessions: RwLock<Sessions>,
    pub login: Mutex<LoginState>,
    pub faults: Mutex<Faults>,
    pub counters: Mutex<HashMap<&'static str, Counter>>,
    pub sent: Mutex<HashMap<QqNumber, Vec<SentMessage>>>,
    pub pictures: Mutex<Pictures>,
    pub tls: TlsMaterial,
    /// The plain listener's address: picture URLs point here as an IP literal.
    pub image_addr: Mutex<Option<SocketAddr>>,
    /// Set when `serve` is shutting down: held polls end at once.
    pub shutting_down: AtomicBool,
    /// Group message sequence (`seq`, 2013 form).
    pub seq: std::sync::atomic::AtomicU64,
    /// Every credential handed out, for leak checks (`GET /_emulator/secrets`).
    pub issued: Mutex<crate::emulator::issued::Issued>,
}

impl Shared {
    /// A snapshot of the options.
    pub(crate) fn options(&self) -> EmulatorOptions {
        read(&self.options).clone()
    }

    /// Counts a request (and a fault) for an endpoint.
    pub(crate) fn count(&self, endpoint: &'static str, fault: bool) {
        let mut counters = crate::emulator::session::lock(&self.counters);
        let c = counters.entry(endpoint).or_default();
        c.requests += 1;
        if fault {
            c.faults += 1;
        }
    }

    /// Appends to an account's sent log.
    pub(crate) fn log_sent(&self, account: QqNumber, message: SentMessage) {
        let mut sent = crate::emulator::session::lock(&self.sent);
        let log = sent.entry(account).or_default();
        if log.len() >= SENT_LOG_PER_ACCOUNT {
            log.remove(0);
        }
        log.push(message);
    }

    /// The base URL of the picture server (`http://<ip>:<port>`).
    pub(crate) fn image_base(&self) -> String {
        let addr = *crate::emulator::session::lock(&self.image_addr);
        match addr {
            Some(a) => format!("http://{a}"),
            None => "http://127.0.0.1:80".to_owned(),
        }
    }
}
