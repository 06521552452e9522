//! A faithful WebQQ / SmartQQ service (the real one closed on 2019-01-01): the QQ side of the
//! demo, the tests and the benchmarks. Built on `webqq`'s wire types, never on its client.
//!
//! # Shape
//!
//! [`serve`] takes already-bound [`Listeners`] (a plain one and an optional TLS one that also
//! accepts plain HTTP), an [`Emulator`] handle and a shutdown future, mini-redis style. Requests
//! are routed by `Host` (port stripped) and path exactly like the real hosts
//! (`ssl.ptlogin2.qq.com/ptqrlogin`, `d1.web2.qq.com/channel/poll2`, …), so a client written for
//! the real service works once its connections are redirected here. Unknown host or path: an
//! nginx 404 page. The control API lives under `/_emulator/` on every host (`control_http.rs`);
//! the same operations are methods of [`Emulator`] for in-process tests.
//!
//! # Behaviour (protocol §8)
//!
//! * Login: `check` (2013 or 2015 `ptui_checkVC` form, salt = the 8-byte big-endian QQ number),
//!   captcha `getimage` (a readable JPEG, `verifysession` cookie), `login` (verifies `p` with
//!   scheme A or B), `ptqrshow` (a real QR PNG, `qrsig` cookie on `ptlogin2.qq.com`),
//!   `ptqrlogin` (66 → 67 → 0 under control-API scans, 65 after `qr_lifetime`, HTTP 403 without
//!   a valid `ptqrtoken`), `check_sig` (sets `ptwebqq`, `p_skey`, `p_uin`, `pt4_token`, 302 to
//!   the proxy page), `getvfwebqq`, `login2`, `pt4_auth`, `logout`/`logout2`.
//! * Sessions: own uin = QQ number; other uins, gids and codes drawn per session
//!   (`random_uins`). A second login2 of an account kicks the first (its poll gets
//!   `{"retcode":121,"t":"0"}`, later calls 103). Idle sessions expire after `session_ttl`.
//! * poll2: held up to `poll_hold`, then the idle form (102 by default); one poll per session —
//!   a newer poll answers the older one at once with 102; several events per answer; the first
//!   poll after login2 without a `get_online_buddies2` warm-up answers 103 once (§1.3.6).
//! * Sends: `content` must be a JSON array (else 1202); the message goes to the sent log and to
//!   every other online emulated account that receives it, with that account's uins.
//!
//! # Design choices where the protocol is uncertain (§9)
//!
//! * Missing Referer or User-Agent (§9.2): `{"retcode":100101}` on the s host (the seed's answer
//!   for missing cookies or UA), `{"retcode":103,"errmsg":""}` on the d hosts, `ptuiCB('7',…)` on
//!   ptlogin `check`/`login`/`ptqrlogin`. Any Referer whose host is `qq.com` or below is
//!   accepted on s/d (clients mixed the s and d1 proxy pages and both worked, §0.4); ptlogin
//!   wants a `ptlogin2.qq.com` Referer (the login UI). Origin is never checked.
//! * Session identity on the d/s hosts: the `skey` cookie (else the `ptwebqq` cookie) names the
//!   ptlogin login; poll2 and sends also need the `psessionid` of a live session of that
//!   account. A stale or unknown `vfwebqq` on the s host answers 103 (§6.1 "session not valid").
//! * The friend-list hash (§9.5) is accepted when computed from either the current ptwebqq
//!   cookie value or the ptwebqq the client gave login2 (often `""` in 2017–2018).
//! * Group codes are distinct from gids in every session so "gid passed as gcode" answers 6.
//! * Discussion ids stay stable across sessions (their stability is unknown, §0.2).
//! * Received text is HTML-escaped (`&`, `<`, `>`, §5.6); nicks and names in lists too.
//! * `get_offpic2` answers 302 to `http://<plain listener IP>:<port>/?ver=2173&rkey=<key>`: an
//!   IP literal, like the real image servers (`103.7.29.36:80`), served by the emulator itself.
//!   `get_group_pic` and `get_cface2` answer the image directly (protocol §2.18).
//! * Faults are matched to accounts by the `uin` / `p_uin` / `superuin` cookie.

pub mod auth;
mod control;
mod control_http;
mod deliver;
pub mod faults;
mod http;
mod images;
mod issued;
mod multipart;
pub mod options;
mod ptui;
mod router;
mod routes;
mod server;
pub mod session;
mod state;
mod tls;
pub mod world;

use std::future::Future;
use std::sync::Arc;

use tokio::net::TcpListener;

pub use control::{ControlError, EmulatorState, MessageKind, PostMessage, Posted, SessionInfo};
pub use faults::{FaultKind, FaultSpec};
pub use options::{EmulatorOptions, EventForm, HashChoice, IdleForm, SendReplyForm};
pub use state::{Counter, SentMessage};
pub use tls::TlsError;
pub use world::{Account, Discussion, Friend, Group, Person, World, WorldError};

/// The already-bound sockets the emulator serves on.
#[derive(Debug)]
pub struct Listeners {
    /// Plain HTTP.
    pub plain: TcpListener,
    /// HTTPS with the emulator's own CA; also accepts plain HTTP (first byte not 0x16).
    pub tls: Option<TcpListener>,
}

/// Why an emulator could not be created.
#[derive(Debug, thiserror::Error)]
pub enum EmulatorError {
    /// The certificate authority could not be generated.
    #[error(transparent)]
    Tls(#[from] TlsError),
}

/// A cheap-to-clone handle on one emulated service (world, sessions, faults, TLS material).
#[derive(Clone, Debug)]
pub struct Emulator {
    shared: Arc<state::Shared>,
}

impl Emulator {
    /// Creates an emulator over `world`. Generates the CA (a few milliseconds of CPU).
    pub fn new(world: World, options: EmulatorOptions) -> Result<Emulator, EmulatorError> {
        let tls = tls::TlsMaterial::generate()?;
        let shared = state::Shared {
            options: std::sync::RwLock::new(options),
            world: std::sync::RwLock::new(world),
            sessions: Default::default(),
            login: Default::default(),
            faults: Default::default(),
            counters: Default::default(),
            sent: Default::default(),
            pictures: Default::default(),
            tls,
            image_addr: Default::default(),
            shutting_down: Default::default(),
            seq: Default::default(),
            issued: Default::default(),
        };
        Ok(Emulator { shared: Arc::new(shared) })
    }

    /// The PEM of the emulator's CA certificate, for clients to trust.
    pub fn ca_cert_pem(&self) -> String {
        self.shared.tls.ca_pem.clone()
    }
}

/// Serves the emulator on `listeners` until `shutdown` completes. Returns an error only when a
/// listener's address cannot be read; accept errors are logged and retried.
pub async fn serve(
    listeners: Listeners,
    emulator: Emulator,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    server::serve(listeners, emulator, shutdown).await
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_hold;
