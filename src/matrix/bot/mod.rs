//! [`BotClient`]: the bridge bot's own matrix-sdk client with an end-to-end encryption device
//! (MATRIX.md §5.3), so it can read and answer in encrypted management rooms. The only place in
//! the crate that uses matrix-sdk; everything else talks to Matrix through `matrix::client`.
//!
//! Device: the first start logs the bot in with `m.login.application_service` (a new device) and
//! keeps device id, token and store passphrase in `<data_dir>/device.json` (0600); later starts
//! restore that device. A token the homeserver no longer knows (`M_UNKNOWN_TOKEN`) gives a new
//! login with a new crypto store (`<data_dir>/store`, sqlite, encrypted with the passphrase).
//!
//! Sync: the first `/sync` runs in [`BotClient::start`] (a failure fails the start); then one
//! task runs `/sync` with a small filter (lazy-loaded members, 5 timeline events, no presence or
//! ephemeral events: the bot is in every portal too), backs off 1 s doubling to 60 s after a
//! failure and retries forever; it ends on the shutdown future, [`BotClient::stop`] or when every
//! clone of the client is dropped.
//! Messages of a store's very first sync are history and are not reported. Events the bot sent
//! itself are never reported. Message bodies are logged at TRACE only (commands hold passwords).

mod device;
mod error;
mod ops;

use std::fmt;
use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use matrix_sdk::authentication::matrix::MatrixSession;
use matrix_sdk::config::{RequestConfig, SyncSettings};
use matrix_sdk::deserialized_responses::EncryptionInfo;
use matrix_sdk::event_handler::RawEvent;
use matrix_sdk::{Client, Room, SessionMeta, SessionTokens};
use ruma::api::client::filter::{
    Filter, FilterDefinition, LazyLoadOptions, RoomEventFilter, RoomFilter,
};
use ruma::api::client::sync::sync_events::v3::Filter as SyncFilter;
use ruma::events::room::member::{MembershipState, StrippedRoomMemberEvent};
use ruma::events::room::message::OriginalSyncRoomMessageEvent;
use ruma::{OwnedDeviceId, OwnedEventId, OwnedRoomId, OwnedUserId, RoomId, UInt, UserId};
use tokio::sync::{mpsc, watch};
use url::Url;

pub use device::{DEVICE_FILE, DeviceFile, STORE_DIR};
pub use error::BotError;

use crate::matrix::Token;

/// Decides whether the bot joins a room it is invited to: `(room, inviter) -> join?`. Called on
/// the sync task for every invite of the bot; must be quick (no IO).
pub type InviteFilter = Arc<dyn Fn(&RoomId, &UserId) -> bool + Send + Sync>;

/// Timeline events per room per sync: commands come one at a time, and the bot is also in every
/// portal, whose traffic it does not need.
const TIMELINE_LIMIT: u32 = 5;

/// Long-poll timeout of one `/sync`.
const SYNC_TIMEOUT: Duration = Duration::from_secs(30);

/// Backoff after a failed sync: 1 s doubling to 60 s.
const SYNC_BACKOFF_INITIAL: Duration = Duration::from_secs(1);
const SYNC_BACKOFF_MAX: Duration = Duration::from_secs(60);

/// Added to a first-sync failure with status 500: Synapse answers every `/sync` of an
/// appservice's `sender_localpart` user with 500 (NotImplementedError, "AS users may not
/// /sync", matrix-doc#1144), so the device must belong to another user of the namespace.
const SENDER_SYNC_HINT: &str = " (Synapse refuses /sync for an appservice's sender_localpart \
user: the bot device needs a user of the appservice's namespace other than the sender)";

/// Timeout of one ordinary request of the bot's client (sync adds its long-poll timeout).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// How the bot's client is started. Built by start-up code from the config and the registration.
#[derive(Clone)]
pub struct BotSettings {
    /// Base URL of the homeserver's Client-Server API.
    pub homeserver: Url,
    /// The user that owns the device: a user of the appservice's exclusive namespace. Not the
    /// registration's `sender_localpart` on Synapse, which answers that user's `/sync` with 500
    /// (the start then fails with a hint saying so).
    pub user_id: OwnedUserId,
    /// The appservice's as_token: authenticates the appservice login that makes the device.
    pub as_token: Token,
    /// Directory of the device file and the crypto store (`encryption.data_dir`); made 0700.
    pub data_dir: PathBuf,
    /// Which invites the bot accepts; `None` accepts none (invites are still reported).
    pub on_invite: Option<InviteFilter>,
    /// Capacity of the [`BotEvent`] channel; when it is full the sync task waits.
    pub event_capacity: usize,
    /// Display name of the device the login creates.
    pub device_name: String,
}

impl BotSettings {
    /// Settings with no invite filter, a channel of 256 events and device name "qqbridge bot".
    pub fn new(homeserver: Url, user_id: OwnedUserId, as_token: Token, data_dir: PathBuf) -> Self {
        BotSettings {
            homeserver,
            user_id,
            as_token,
            data_dir,
            on_invite: None,
            event_capacity: 256,
            device_name: "qqbridge bot".to_owned(),
        }
    }
}

impl fmt::Debug for BotSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BotSettings")
            .field("homeserver", &self.homeserver.as_str())
            .field("user_id", &self.user_id)
            .field("data_dir", &self.data_dir)
            .field("on_invite", &self.on_invite.is_some())
            .finish_non_exhaustive()
    }
}

/// What the bot's sync reports to the bridge.
#[derive(Clone, Debug)]
pub enum BotEvent {
    /// An `m.room.message` by someone else in a room the bot is in, decrypted if it was
    /// encrypted.
    Message(BotMessage),
    /// Someone invited the bot to a room; `joined` says whether the invite filter accepted it
    /// and the join succeeded.
    Invite {
        /// The room.
        room_id: OwnedRoomId,
        /// Who sent the invite.
        inviter: OwnedUserId,
        /// Whether the bot is now joined.
        joined: bool,
    },
}

/// One message the bot received. `Debug` leaves out the body and content: they may hold a
/// password (`login password …`).
#[derive(Clone)]
pub struct BotMessage {
    /// The room it was sent in.
    pub room_id: OwnedRoomId,
    /// Its sender (never the bot).
    pub sender: OwnedUserId,
    /// Its event id.
    pub event_id: OwnedEventId,
    /// `content.msgtype` (`m.text`, `m.notice`, `m.image`, …).
    pub msgtype: String,
    /// `content.body`.
    pub body: String,
    /// `content.formatted_body` when the format is `org.matrix.custom.html`.
    pub formatted_body: Option<String>,
    /// Whether it arrived as `m.room.encrypted`.
    pub encrypted: bool,
    /// The (decrypted) content as JSON, for anything the fields above do not carry.
    pub content: serde_json::Value,
}

impl fmt::Debug for BotMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BotMessage")
            .field("room_id", &self.room_id)
            .field("sender", &self.sender)
            .field("event_id", &self.event_id)
            .field("msgtype", &self.msgtype)
            .field("encrypted", &self.encrypted)
            .finish_non_exhaustive()
    }
}

/// The bot's encryption-capable Matrix client. Cheap to clone (clones share one client and one
/// sync task). Every method does network IO.
#[derive(Clone)]
pub struct BotClient {
    client: Client,
    device_id: OwnedDeviceId,
    stop: watch::Sender<bool>,
    stopped: Arc<AtomicBool>,
    sync_task: Arc<Mutex<Option<tokio::task::JoinHandle<()>>>>,
}

impl fmt::Debug for BotClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BotClient").field("device_id", &self.device_id).finish_non_exhaustive()
    }
}

impl BotClient {
    /// Restores the bot's device from `settings.data_dir` (or logs in once to create it), opens
    /// the crypto store, checks the token with `whoami` and starts the sync task, which runs
    /// until `shutdown` resolves or [`BotClient::stop`]. Returns the client and the stream of
    /// [`BotEvent`]s. Does file and network IO; the first start also uploads device keys with
    /// the first sync.
    pub async fn start(
        settings: BotSettings,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(BotClient, mpsc::Receiver<BotEvent>), BotError> {
        let data_dir = settings.data_dir.clone();
        device::prepare_dir(&data_dir)?;
        let device_path = data_dir.join(DEVICE_FILE);
        let store_path = data_dir.join(STORE_DIR);
        let http = reqwest::Client::builder()
            .user_agent(concat!("qqbridge/", env!("CARGO_PKG_VERSION")))
            .timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(|e| BotError::Network(e.without_url().to_string()))?;

        let stored = match device::read(&device_path)? {
            Some(stored) if stored.user_id == settings.user_id => Some(stored),
            Some(stored) => {
                tracing::warn!(stored = %stored.user_id, bot = %settings.user_id, "bot device file is for another user; logging in again with a new crypto store");
                None
            }
            None => None,
        };
        let (client, fresh_store) = match stored {
            Some(stored) => match restore(&settings, &stored, &store_path).await {
                Ok(client) => {
                    tracing::info!(device = %stored.device_id, "bot device restored");
                    (client, false)
                }
                Err(e) if e.is_unknown_token() => {
                    tracing::warn!(device = %stored.device_id, "the homeserver no longer knows the bot device's token; logging in again with a new crypto store");
                    (new_device(&settings, &http, &device_path, &store_path).await?, true)
                }
                Err(e) => return Err(e),
            },
            None => (new_device(&settings, &http, &device_path, &store_path).await?, true),
        };
        let device_id = client
            .device_id()
            .map(ToOwned::to_owned)
            .ok_or_else(|| BotError::Settings("client has no device after restore".to_owned()))?;

        let (events_tx, events_rx) = mpsc::channel(settings.event_capacity.max(1));
        // A new store's first sync brings old messages: history, not commands to run now.
        let live = Arc::new(AtomicBool::new(!fresh_store));
        add_handlers(&client, &settings, events_tx, live.clone());
        // The first sync runs here so that a user the homeserver will not sync fails the start.
        let first = SyncSettings::new().filter(sync_filter()).timeout(Duration::ZERO);
        if let Err(e) = client.sync_once(first).await {
            let mut error = BotError::sdk("first bot sync", &e);
            if let BotError::Sdk { message, .. } = &mut error
                && matches!(e.as_client_api_error(), Some(api) if api.status_code.as_u16() == 500)
            {
                message.push_str(SENDER_SYNC_HINT);
            }
            return Err(error);
        }
        live.store(true, Ordering::Release);
        let (stop, stop_rx) = watch::channel(false);
        let stopped = Arc::new(AtomicBool::new(false));
        let task = tokio::spawn(sync_loop(client.clone(), stop_rx, stopped.clone(), shutdown));
        let sync_task = Arc::new(Mutex::new(Some(task)));
        let bot = BotClient { client, device_id, stop, stopped, sync_task };
        Ok((bot, events_rx))
    }

    /// The bot's user id.
    pub fn user_id(&self) -> Option<OwnedUserId> {
        self.client.user_id().map(ToOwned::to_owned)
    }

    /// The bot's device id (the same across restarts while the device file is kept).
    pub fn device_id(&self) -> &ruma::DeviceId {
        &self.device_id
    }

    /// Stops the sync task and waits for it to end; later calls of other methods may fail with
    /// [`BotError::Stopped`]. The event stream ends once every clone is dropped.
    pub async fn stop(&self) {
        let _ = self.stop.send(true);
        let task = self.sync_task.lock().ok().and_then(|mut task| task.take());
        if let Some(task) = task {
            let _ = task.await;
        }
    }

    /// Whether [`BotClient::stop`] was called or the shutdown future resolved.
    pub fn is_stopped(&self) -> bool {
        *self.stop.borrow() || self.stopped.load(Ordering::Acquire)
    }
}

/// Logs in (a new device), clears the old crypto store, writes the device file and opens the
/// client on a new store.
async fn new_device(
    settings: &BotSettings,
    http: &reqwest::Client,
    device_path: &std::path::Path,
    store_path: &std::path::Path,
) -> Result<Client, BotError> {
    let device = device::login(
        http,
        &settings.homeserver,
        &settings.user_id,
        &settings.as_token,
        &settings.device_name,
    )
    .await?;
    // The old store holds the keys of another device: matrix-sdk refuses to open it for this one.
    match std::fs::remove_dir_all(store_path) {
        Ok(()) => tracing::info!(path = %store_path.display(), "old bot crypto store removed"),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => return Err(BotError::Io { path: store_path.to_owned(), source }),
    }
    device::write(device_path, &device)?;
    tracing::info!(device = %device.device_id, "bot logged in with a new device");
    restore(settings, &device, store_path).await
}

/// Opens the client on the sqlite store at `store_path` with `device`'s session and checks the
/// token with `whoami`.
async fn restore(
    settings: &BotSettings,
    device: &DeviceFile,
    store_path: &std::path::Path,
) -> Result<Client, BotError> {
    device::prepare_dir(store_path)?;
    let client = Client::builder()
        .homeserver_url(settings.homeserver.as_str())
        .sqlite_store(store_path, Some(&device.store_passphrase))
        .request_config(RequestConfig::new().retry_limit(3).timeout(REQUEST_TIMEOUT))
        .build()
        .await
        .map_err(|e| BotError::Settings(format!("cannot build the bot client: {e}")))?;
    let session = MatrixSession {
        meta: SessionMeta { user_id: device.user_id.clone(), device_id: device.device_id.clone() },
        tokens: SessionTokens { access_token: device.access_token.clone(), refresh_token: None },
    };
    client.restore_session(session).await.map_err(|e| BotError::sdk("restore session", &e))?;
    let whoami = client.whoami().await.map_err(|e| BotError::http("whoami", &e))?;
    if whoami.user_id != device.user_id || whoami.device_id.as_ref() != Some(&device.device_id) {
        return Err(BotError::Sdk {
            context: "whoami",
            errcode: None,
            message: format!(
                "the token belongs to {} device {:?}, not the stored device",
                whoami.user_id, whoami.device_id
            ),
        });
    }
    Ok(client)
}

/// The sync filter: lazy-loaded members, a few timeline events, no presence, no ephemeral events.
fn sync_filter() -> SyncFilter {
    SyncFilter::FilterDefinition(filter_definition())
}

fn filter_definition() -> FilterDefinition {
    let lazy = LazyLoadOptions::Enabled { include_redundant_members: false };
    let mut timeline = RoomEventFilter::default();
    timeline.limit = Some(UInt::from(TIMELINE_LIMIT));
    timeline.lazy_load_options = lazy;
    let mut state = RoomEventFilter::default();
    state.lazy_load_options = lazy;
    let mut ephemeral = RoomEventFilter::default();
    ephemeral.not_types = vec!["*".to_owned()];
    let mut room = RoomFilter::default();
    room.timeline = timeline;
    room.state = state;
    room.ephemeral = ephemeral;
    let mut presence = Filter::default();
    presence.not_types = vec!["*".to_owned()];
    let mut filter = FilterDefinition::default();
    filter.room = room;
    filter.presence = presence;
    filter
}

/// The sync task: see the module doc.
async fn sync_loop(
    client: Client,
    mut stop: watch::Receiver<bool>,
    stopped: Arc<AtomicBool>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let mut shutdown = std::pin::pin!(shutdown);
    let mut backoff = SYNC_BACKOFF_INITIAL;
    loop {
        let settings = SyncSettings::new().filter(sync_filter()).timeout(SYNC_TIMEOUT);
        let result = tokio::select! {
            result = client.sync_once(settings) => result,
            () = &mut shutdown => break,
            _ = stop.changed() => break,
        };
        match result {
            Ok(_) => backoff = SYNC_BACKOFF_INITIAL,
            Err(e) => {
                let error = BotError::sdk("bot sync", &e);
                tracing::warn!(%error, backoff_ms = backoff.as_millis(), "bot sync failed; retrying");
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {}
                    () = &mut shutdown => break,
                    _ = stop.changed() => break,
                }
                backoff = (backoff * 2).min(SYNC_BACKOFF_MAX);
            }
        }
    }
    stopped.store(true, Ordering::Release);
    tracing::info!("bot sync stopped");
}

/// Registers the message and invite handlers that feed `events`.
fn add_handlers(
    client: &Client,
    settings: &BotSettings,
    events: mpsc::Sender<BotEvent>,
    live: Arc<AtomicBool>,
) {
    let own = settings.user_id.clone();
    let message_tx = events.clone();
    let message_own = own.clone();
    client.add_event_handler(
        move |event: OriginalSyncRoomMessageEvent,
              room: Room,
              raw: RawEvent,
              encryption: Option<EncryptionInfo>| {
            let tx = message_tx.clone();
            let own = message_own.clone();
            let live = live.clone();
            async move {
                if event.sender == own || !live.load(Ordering::Acquire) {
                    return;
                }
                let message = to_message(&event, room.room_id(), &raw, encryption.is_some());
                tracing::debug!(room = %message.room_id, sender = %message.sender, event = %message.event_id, msgtype = %message.msgtype, encrypted = message.encrypted, "bot received a message");
                tracing::trace!(body = %message.body, "bot message body");
                let _ = tx.send(BotEvent::Message(message)).await;
            }
        },
    );
    let on_invite = settings.on_invite.clone();
    client.add_event_handler(move |event: StrippedRoomMemberEvent, room: Room| {
        let tx = events.clone();
        let own = own.clone();
        let on_invite = on_invite.clone();
        async move {
            if event.state_key != own || event.content.membership != MembershipState::Invite {
                return;
            }
            let room_id = room.room_id().to_owned();
            let accept = on_invite.as_ref().is_some_and(|accept| accept(&room_id, &event.sender));
            let joined = accept && ops::join_with_retries(&room).await;
            tracing::info!(room = %room_id, inviter = %event.sender, accept, joined, "bot invited");
            let _ = tx.send(BotEvent::Invite { room_id, inviter: event.sender, joined }).await;
        }
    });
}

/// The [`BotMessage`] of a (decrypted) message event; fields come from the raw JSON, so custom
/// msgtypes keep their content.
fn to_message(
    event: &OriginalSyncRoomMessageEvent,
    room_id: &RoomId,
    raw: &RawEvent,
    encrypted: bool,
) -> BotMessage {
    let json: serde_json::Value = serde_json::from_str(raw.get()).unwrap_or_default();
    let content = json.get("content").cloned().unwrap_or_default();
    let text = |key: &str| content.get(key).and_then(|v| v.as_str()).map(ToOwned::to_owned);
    let formatted_body = match text("format").as_deref() {
        Some("org.matrix.custom.html") => text("formatted_body"),
        _ => None,
    };
    BotMessage {
        room_id: room_id.to_owned(),
        sender: event.sender.clone(),
        event_id: event.event_id.clone(),
        msgtype: event.content.msgtype().to_owned(),
        body: event.content.body().to_owned(),
        formatted_body,
        encrypted,
        content,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_sync_filter_keeps_sync_small() {
        assert!(matches!(sync_filter(), SyncFilter::FilterDefinition(_)));
        let json = serde_json::to_value(filter_definition()).unwrap();
        assert_eq!(json["room"]["timeline"]["limit"], 5);
        assert_eq!(json["room"]["timeline"]["lazy_load_members"], true);
        assert_eq!(json["room"]["state"]["lazy_load_members"], true);
        assert_eq!(json["room"]["ephemeral"]["not_types"], serde_json::json!(["*"]));
        assert_eq!(json["presence"]["not_types"], serde_json::json!(["*"]));
    }

    #[test]
    fn test_message_fields_come_from_the_raw_content() {
        let raw = serde_json::json!({
            "type": "m.room.message",
            "event_id": "$e1",
            "sender": "@alice:localhost",
            "origin_server_ts": 1,
            "content": {"msgtype": "m.text", "body": "login password 123", "format": "org.matrix.custom.html", "formatted_body": "<b>login</b>"},
        });
        let event: OriginalSyncRoomMessageEvent = serde_json::from_value(raw.clone()).unwrap();
        let raw = RawEvent(serde_json::value::to_raw_value(&raw).unwrap());
        let room: OwnedRoomId = "!room".try_into().unwrap();
        let message = to_message(&event, &room, &raw, true);
        assert_eq!(message.msgtype, "m.text");
        assert_eq!(message.body, "login password 123");
        assert_eq!(message.formatted_body.as_deref(), Some("<b>login</b>"));
        assert!(message.encrypted);
        assert_eq!(message.content["format"], "org.matrix.custom.html");
        let debug = format!("{message:?}");
        assert!(!debug.contains("password"), "{debug}");
        assert!(debug.contains("$e1"), "{debug}");
    }
}
