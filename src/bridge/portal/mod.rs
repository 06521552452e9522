//! [`Bridge`]: the message flow between resolved QQ events and the Matrix side — portals created
//! on first use, ghosts registered and joined, messages sent with idempotent transaction ids and
//! QQ's time, and Matrix messages of a portal's owner queued on the account's sender.
//!
//! Plain async methods over a [`MatrixClient`], the [`Store`] and the account manager; the actor
//! (`actor.rs`) orders the QQ side and the appservice intake (`intake.rs`) the Matrix side.
//! Store calls are short blocking statements on the store thread (see `store/`). `from_qq.rs`
//! carries QQ → Matrix, `to_qq.rs` Matrix → QQ, `rooms.rs` portal rooms and ghosts.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};

use actix::Addr;
use ruma::events::room::message::RoomMessageEventContent;
use ruma::{OwnedUserId, RoomId, UserId};

use crate::account::manager::AccountManager;
use crate::bridge::ids::GhostIds;
use crate::matrix::client::MatrixClient;
use crate::store::Store;
use crate::webqq::content::{Content, normalize_for_echo};

/// How long a QQ typing notice shows (QQ sends one per burst of typing, protocol §4.7).
pub(super) const TYPING_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(6);

mod attach;
mod avatars;
mod bot;
mod cache;
mod double_puppet;
mod from_qq;
mod ghosts;
mod management;
mod members;
mod outbound;
mod outbox;
mod permissions;
mod relay;
mod replies;
mod rooms;
mod space;
mod state_push;
mod status;
mod sync;
mod to_qq;

pub use attach::AttachError;
pub use double_puppet::DOUBLE_PUPPET_MARKER;
pub use members::presence_of;
pub use relay::{MayRelay, RelayAccount, RelayError};

/// Own sends remembered per portal to recognise their echo in poll2.
const ECHO_MEMORY: usize = 32;

/// Why one event was not bridged. Logged and counted by the caller; never fails a batch.
#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    /// The homeserver refused or could not be reached (after the client's retries).
    #[error("matrix: {0}")]
    Matrix(#[from] crate::matrix::Error),
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] crate::store::StoreError),
    /// The account has no owner in the config, so there is nobody to bridge to.
    #[error("account {0} has no Matrix owner (accounts[].owner)")]
    NoOwner(String),
    /// An id could not be built (a template or server name the config should have refused).
    #[error("cannot build the Matrix id for {0}")]
    BadId(String),
    /// The account's contact lists did not load in time.
    #[error("the contact lists of account {0} are not loaded")]
    NotReady(String),
}

impl BridgeError {
    /// Whether trying again later can succeed: the homeserver was unreachable, overloaded or
    /// rate-limiting past the client's own retries. Store and id errors are not transient.
    pub fn is_transient(&self) -> bool {
        match self {
            BridgeError::Matrix(error) => error.is_transient() || error.is_rate_limited(),
            BridgeError::Store(_)
            | BridgeError::NoOwner(_)
            | BridgeError::BadId(_)
            | BridgeError::NotReady(_) => false,
        }
    }
}

/// What the bridge needs to know.
#[derive(Clone, Debug)]
pub struct BridgeSettings {
    /// The bridge bot.
    pub bot: OwnedUserId,
    /// Ghost ids.
    pub ghosts: GhostIds,
    /// Ghost display names: `{name}` is the QQ name (`bridge.displayname_template`).
    pub displayname_template: String,
    /// The Matrix owner of each account.
    pub owners: BTreeMap<String, OwnedUserId>,
    /// Largest QQ picture bridged (`bridge.max_image_bytes`); larger ones become a notice.
    pub max_image_bytes: usize,
    /// Largest text of one Matrix message sent to QQ (`bridge.max_text_bytes`); longer ones are
    /// refused with a notice.
    pub max_text_bytes: usize,
    /// Send `com.beeper.message_send_status` events (`bridge.message_status_events`).
    pub message_status_events: bool,
    /// Members whose ghosts join a new group portal (`bridge.initial_group_members`).
    pub initial_group_members: usize,
    /// Bridge friends' online status as ghost presence (`bridge.presence`).
    pub presence: bool,
    /// When portals are created (`bridge.portal_creation`).
    pub portal_creation: crate::config::PortalCreation,
    /// The QQ number of each account.
    pub numbers: BTreeMap<String, crate::webqq::QqNumber>,
    /// Relay mode (`relay:`).
    pub relay: crate::config::RelayConfig,
    /// Double-puppet secrets per server name (`double_puppet:`); `Debug` is redacted.
    pub double_puppet: crate::config::DoublePuppetConfig,
    /// Bridge state: notices, holds and the push endpoint.
    pub status: crate::bridge::state::StatusSettings,
}

/// The bridge core.
pub struct Bridge {
    settings: BridgeSettings,
    matrix: MatrixClient,
    store: Store,
    accounts: Addr<AccountManager>,
    /// Bodies of our own recent sends per portal key, to drop their poll2 echo.
    echoes: Mutex<HashMap<String, VecDeque<String>>>,
    /// Per portal key, the turn of the last Matrix → QQ job: the next one waits for it
    /// (`outbound.rs`).
    chains: Mutex<HashMap<String, tokio::sync::oneshot::Receiver<()>>>,
    /// Refusal notices already given (`permissions.rs`).
    refusals: Mutex<permissions::NoticeLimiter>,
    /// The last outbox sequence number given out (`outbox.rs`).
    outbox_seq: std::sync::atomic::AtomicU64,
    /// When the homeserver was found; `None` while start-up waits for it (RELIABILITY.md §1.7:
    /// the accounts poll meanwhile, their events wait in the inbox). `outbound.rs` waits for
    /// accounts shortly after.
    homeserver: tokio::sync::watch::Sender<Option<std::time::Instant>>,
    /// Held while a room is bridged or unbridged by command (`attach.rs`), so two commands
    /// for one group cannot both pass the checks.
    attaching: tokio::sync::Mutex<()>,
    /// Accounts a message was queued on since the start (`outbound.rs`).
    seen_running: Mutex<std::collections::HashSet<String>>,
    /// What the store says about portals and ghosts, remembered (`cache.rs`).
    caches: Arc<cache::Caches>,
    /// Ghost avatars, fetched in the background (`avatars.rs`).
    avatars: avatars::Avatars,
    /// Each owner's management room, created on first use (`management.rs`).
    management: tokio::sync::Mutex<HashMap<OwnedUserId, ruma::OwnedRoomId>>,
    /// Accounts whose contacts were synced to portals in this process (`sync.rs`).
    synced: Mutex<std::collections::HashSet<String>>,
    /// Members of new group portals still to join, after the message that made the portal
    /// (`rooms.rs`): by room, the account and the members.
    pending_joins: Mutex<HashMap<ruma::OwnedRoomId, rooms::PendingJoins>>,
    /// Recent notices about unbridgeable events, not repeated for a while (`management.rs`).
    notice_throttle: Mutex<management::NoticeThrottle>,
    /// Who may speak through a relay account (`relay.rs`).
    may_relay: std::sync::RwLock<MayRelay>,
    /// Clients writing as real Matrix users, per server name (`double_puppet.rs`).
    puppets: BTreeMap<String, MatrixClient>,
    /// Bridge state per account and its pushes (`state_push.rs`).
    states: Arc<state_push::StateHub>,
    /// Owners of the accounts logged in from Matrix, by account (`bot.rs`).
    bot_owners: std::sync::RwLock<BTreeMap<String, OwnedUserId>>,
    /// The bot's commands, once started (`bot.rs`).
    commands: std::sync::OnceLock<Arc<crate::bridge::commands::Commands>>,
}

/// How one QQ message ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QqOutcome {
    /// Sent to Matrix.
    Bridged,
    /// Already bridged (poll2 redelivery) or the echo of our own send.
    Duplicate,
}

impl Bridge {
    /// A bridge sending through `matrix`, remembering in `store`, sending to QQ via `accounts`.
    pub fn new(
        settings: BridgeSettings,
        matrix: MatrixClient,
        store: Store,
        accounts: Addr<AccountManager>,
    ) -> Self {
        let caches = Arc::new(cache::Caches::new(cache::CACHE_ENTRIES));
        let avatars = avatars::Avatars::new(
            matrix.clone(),
            store.clone(),
            accounts.clone(),
            settings.ghosts.clone(),
            caches.clone(),
        );
        let puppets = double_puppet::puppet_clients(&settings, &matrix);
        let states = Arc::new(state_push::StateHub::new(&settings, &matrix));
        Bridge {
            settings,
            matrix,
            store,
            accounts,
            echoes: Mutex::new(HashMap::new()),
            chains: Mutex::new(HashMap::new()),
            refusals: Mutex::new(permissions::NoticeLimiter::new(permissions::REFUSAL_WINDOW)),
            outbox_seq: std::sync::atomic::AtomicU64::new(0),
            homeserver: tokio::sync::watch::Sender::new(Some(std::time::Instant::now())),
            attaching: tokio::sync::Mutex::new(()),
            seen_running: Mutex::new(std::collections::HashSet::new()),
            caches,
            avatars,
            management: tokio::sync::Mutex::new(HashMap::new()),
            synced: Mutex::new(std::collections::HashSet::new()),
            pending_joins: Mutex::new(HashMap::new()),
            notice_throttle: Mutex::new(management::NoticeThrottle::new()),
            may_relay: std::sync::RwLock::new(Arc::new(|_: &UserId| true)),
            puppets,
            states,
            bot_owners: std::sync::RwLock::new(BTreeMap::new()),
            commands: std::sync::OnceLock::new(),
        }
    }

    /// Holds QQ events back until [`Bridge::homeserver_found`]: start-up calls this before its
    /// accounts start polling, as the homeserver may not be there yet (a new bridge is ready).
    pub fn wait_for_homeserver(&self) {
        self.homeserver.send_replace(None);
    }

    /// The homeserver answered and knows us: QQ events held back go on.
    pub fn homeserver_found(&self) {
        self.homeserver.send_replace(Some(std::time::Instant::now()));
    }

    /// Returns once the homeserver was found.
    pub async fn homeserver_ready(&self) {
        if self.homeserver.borrow().is_some() {
            return;
        }
        let mut found = self.homeserver.subscribe();
        // An error only means the bridge is being dropped: nothing waits for it then.
        let _ = found.wait_for(Option::is_some).await;
    }

    /// How long ago the homeserver was found; `None` while it is waited for.
    fn homeserver_since(&self) -> Option<std::time::Duration> {
        self.homeserver.borrow().map(|found| found.elapsed())
    }

    /// Whether `user` is the bot or one of our ghosts: their events come back to us in
    /// transactions and must never be bridged again (MATRIX.md §5.1).
    pub fn is_ours(&self, user: &UserId) -> bool {
        user == self.settings.bot || self.settings.ghosts.qq_of(user).is_some()
    }

    pub(super) fn owner(&self, account: &str) -> Result<OwnedUserId, BridgeError> {
        self.owner_of(account).ok_or_else(|| BridgeError::NoOwner(account.to_owned()))
    }

    pub(super) async fn notice(&self, room: &RoomId, text: &str) -> Result<(), BridgeError> {
        let txn = ruma::TransactionId::new();
        let content = RoomMessageEventContent::notice_plain(text);
        self.matrix.send_message(room, None, &txn, &content, None).await?;
        Ok(())
    }

    pub(super) fn remember_echo(&self, portal_key: &str, content: &Content) {
        let body = normalize_for_echo(content);
        let mut echoes = self.echoes.lock().unwrap_or_else(PoisonError::into_inner);
        let queue = echoes.entry(portal_key.to_owned()).or_default();
        if queue.len() >= ECHO_MEMORY {
            queue.pop_front();
        }
        queue.push_back(body);
    }

    /// Whether `body` is the echo of a recent own send in `portal_key` (then forgotten).
    pub(super) fn take_echo(&self, portal_key: &str, body: &str) -> bool {
        let mut echoes = self.echoes.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(queue) = echoes.get_mut(portal_key) else { return false };
        match queue.iter().position(|sent| sent == body) {
            Some(index) => {
                queue.remove(index);
                true
            }
            None => false,
        }
    }
}

/// The MIME type and file extension of an image, by its magic bytes; `None` if not an image.
pub(crate) fn image_type(bytes: &[u8]) -> Option<(&'static str, &'static str)> {
    if bytes.starts_with(&[0xff, 0xd8, 0xff]) {
        Some(("image/jpeg", "jpg"))
    } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some(("image/png", "png"))
    } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        Some(("image/gif", "gif"))
    } else if bytes.get(..4) == Some(b"RIFF".as_slice())
        && bytes.get(8..12) == Some(b"WEBP".as_slice())
    {
        Some(("image/webp", "webp"))
    } else if bytes.starts_with(b"BM") {
        Some(("image/bmp", "bmp"))
    } else {
        None
    }
}

/// Shared handle.
pub type SharedBridge = Arc<Bridge>;
