//! [`Bridge`]: the message flow between resolved QQ events and the Matrix side — portals created
//! on first use, ghosts registered and joined, messages sent with idempotent transaction ids and
//! QQ's time, and Matrix messages of a portal's owner queued on the account's sender.
//!
//! Plain async methods over a [`MatrixClient`], the [`Store`] and the account manager; the actor
//! (`actor.rs`) orders the QQ side and the appservice intake (`intake.rs`) the Matrix side.
//! Store calls are short blocking statements on the store thread (see `store/`).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};

use actix::Addr;
use ruma::api::client::room::{Visibility, create_room};
use ruma::events::room::message::RoomMessageEventContent;
use ruma::events::{AnyMessageLikeEvent, AnyTimelineEvent, MessageLikeEvent};
use ruma::serde::Raw;
use ruma::{MilliSecondsSinceUnixEpoch, OwnedRoomId, OwnedUserId, RoomId, UInt, UserId};

use crate::account::account_actor::{FetchPicture, NotifyTyping, PictureRequest, UploadPicture};
use crate::account::manager::{
    AccountManager, FetchPictureVia, NotifyTypingVia, SendVia, UploadPictureVia,
};
use crate::account::resolve::QqMessage;
use crate::account::send_queue::ChatKey;
use crate::account::sender_actor::QueueMessage;
use crate::bridge::convert::to_matrix::{MatrixPart, PictureRef, ToMatrixOptions, qq_to_matrix};
use crate::bridge::convert::to_qq::{OutgoingQq, ToQqOptions, matrix_to_qq};
use crate::bridge::ids::{self, GhostIds};
use crate::matrix::client::MatrixClient;
use crate::store::{Direction, MessageRow, Portal, Store};
use crate::webqq::QqNumber;
use crate::webqq::content::{Content, normalize_for_echo};
use crate::webqq::session::unix_now;

/// How long a QQ typing notice shows (QQ sends one per burst of typing, protocol §4.7).
const TYPING_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(6);

mod space;

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
}

/// The bridge core.
pub struct Bridge {
    settings: BridgeSettings,
    matrix: MatrixClient,
    store: Store,
    accounts: Addr<AccountManager>,
    /// Bodies of our own recent sends per portal key, to drop their poll2 echo.
    echoes: Mutex<HashMap<String, VecDeque<String>>>,
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
        Bridge { settings, matrix, store, accounts, echoes: Mutex::new(HashMap::new()) }
    }

    /// Whether `user` is the bot or one of our ghosts: their events come back to us in
    /// transactions and must never be bridged again (MATRIX.md §5.1).
    pub fn is_ours(&self, user: &UserId) -> bool {
        user == self.settings.bot || self.settings.ghosts.qq_of(user).is_some()
    }

    /// Bridges one QQ message of `account` to its portal.
    pub async fn qq_message(
        &self,
        account: &str,
        msg: &QqMessage,
    ) -> Result<QqOutcome, BridgeError> {
        let owner = self.owner(account)?;
        let key = ids::portal_key(account, &msg.chat);
        if self.store.message_by_remote(&key, &msg.key)?.is_some() {
            return Ok(QqOutcome::Duplicate);
        }
        let parts = qq_to_matrix(&msg.content, &ToMatrixOptions::default());
        if msg.from_self && self.take_echo(&key, &normalize_for_echo(&msg.content)) {
            return Ok(QqOutcome::Duplicate);
        }
        let room = self.portal_room(account, &owner, &key, msg).await?;
        // Without double puppeting the owner's own messages from another QQ client appear as
        // the owner's ghost (MATRIX.md §6.4).
        let sender = match msg.sender {
            Some(qq) => Some(self.ghost_in_room(qq, &msg.sender_name, &room).await?),
            None => None,
        };
        let ts = MilliSecondsSinceUnixEpoch(UInt::new_saturating(msg.time.saturating_mul(1000)));
        for (index, part) in parts.iter().enumerate() {
            let content = match part {
                MatrixPart::Image { qq_ref } => {
                    self.picture(account, msg, qq_ref, sender.as_deref()).await
                }
                MatrixPart::Text { .. } => {
                    matrix_content(part, sender.is_none().then_some(msg.sender_name.as_str()))
                }
            };
            let txn = ids::txn_id(&key, &msg.key, index);
            let event_id = self
                .matrix
                .send_message(&room, sender.as_deref(), &txn, &content, Some(ts))
                .await?;
            let remote_key =
                if index == 0 { msg.key.clone() } else { format!("{}#{index}", msg.key) };
            self.store.insert_message(&MessageRow {
                portal_key: key.clone(),
                remote_key,
                room_id: room.clone(),
                event_id,
                direction: Direction::QqToMatrix,
                sender: msg.sender.map(|qq| qq.to_string()).unwrap_or_default(),
                created_at: unix_now(),
            })?;
        }
        Ok(QqOutcome::Bridged)
    }

    /// Handles one timeline event of a transaction: a message of a portal's owner goes to QQ;
    /// everything else (our own echoes, other rooms, other senders) is ignored. Answers whether
    /// it was bridged.
    pub async fn matrix_event(&self, raw: &Raw<AnyTimelineEvent>) -> Result<bool, BridgeError> {
        let Ok(event) = raw.deserialize() else { return Ok(false) };
        if self.is_ours(event.sender()) {
            return Ok(false);
        }
        if let AnyTimelineEvent::MessageLike(AnyMessageLikeEvent::RoomRedaction(redaction)) = &event
        {
            // QQ has no recall in WebQQ: the owner must know the message stays on QQ.
            let from_owner = self.settings.owners.values().any(|o| o == redaction.sender());
            if from_owner && self.store.portal_by_room(redaction.room_id())?.is_some() {
                self.notice(
                    redaction.room_id(),
                    "QQ cannot retract messages: the redacted message stays on QQ.",
                )
                .await?;
            }
            return Ok(false);
        }
        let AnyTimelineEvent::MessageLike(AnyMessageLikeEvent::RoomMessage(
            MessageLikeEvent::Original(event),
        )) = event
        else {
            return Ok(false);
        };
        let Some(portal) = self.store.portal_by_room(&event.room_id)? else { return Ok(false) };
        let (Some(account), Some(chat)) =
            (portal.account_id.clone(), ids::chat_of(&portal.kind, &portal.remote_id))
        else {
            return Ok(false);
        };
        if self.settings.owners.get(&account) != Some(&event.sender) {
            return Ok(false);
        }
        if self.store.message_by_event(&event.room_id, &event.event_id)?.is_some() {
            return Ok(false);
        }
        let displayname = event.sender.localpart().to_owned();
        let outgoing = match matrix_to_qq(&event.content, &ToQqOptions::new(&displayname)) {
            Ok(outgoing) => outgoing,
            Err(unsupported) => {
                self.notice(&event.room_id, &format!("Not sent to QQ: {unsupported}")).await?;
                return Ok(false);
            }
        };
        for message in outgoing {
            let content = match message {
                OutgoingQq::Text(content) => content,
                OutgoingQq::Image { mxc, caption, .. } => {
                    match self.picture_to_qq(&account, chat, &mxc, caption).await {
                        Ok(content) => content,
                        Err(reason) => {
                            let text = format!("Not sent to QQ: the picture {reason}");
                            self.notice(&event.room_id, &text).await?;
                            continue;
                        }
                    }
                }
            };
            self.remember_echo(&portal.portal_key, &content);
            if !self.send_to_qq(&account, chat, content).await {
                let text = "Not sent to QQ: the QQ account of this chat is not running.";
                self.notice(&event.room_id, text).await?;
                return Ok(false);
            }
        }
        self.store.insert_message(&MessageRow {
            portal_key: portal.portal_key.clone(),
            remote_key: format!("mx:{}", event.event_id),
            room_id: event.room_id.clone(),
            event_id: event.event_id.clone(),
            direction: Direction::MatrixToQq,
            sender: event.sender.to_string(),
            created_at: unix_now(),
        })?;
        Ok(true)
    }

    /// Handles one ephemeral event of a transaction: the owner typing in a friend portal is
    /// told to the friend (QQ shows typing for friend chats only). Everything else is ignored.
    pub fn matrix_ephemeral(&self, raw: &serde_json::Value) -> Result<(), BridgeError> {
        if raw.get("type").and_then(serde_json::Value::as_str) != Some("m.typing") {
            return Ok(());
        }
        let Some(room) =
            raw.get("room_id").and_then(|r| r.as_str()).and_then(|r| RoomId::parse(r).ok())
        else {
            return Ok(());
        };
        let Some(portal) = self.store.portal_by_room(&room)? else { return Ok(()) };
        let (Some(account), Some(ChatKey::Friend(friend))) =
            (portal.account_id, ids::chat_of(&portal.kind, &portal.remote_id))
        else {
            return Ok(());
        };
        let Some(owner) = self.settings.owners.get(&account) else { return Ok(()) };
        let typing = raw
            .pointer("/content/user_ids")
            .and_then(serde_json::Value::as_array)
            .is_some_and(|users| users.iter().any(|u| u.as_str() == Some(owner.as_str())));
        if typing {
            let typing = NotifyTyping { to: friend };
            self.accounts.do_send(NotifyTypingVia { account, typing });
        }
        Ok(())
    }

    fn owner(&self, account: &str) -> Result<OwnedUserId, BridgeError> {
        self.settings
            .owners
            .get(account)
            .cloned()
            .ok_or_else(|| BridgeError::NoOwner(account.to_owned()))
    }

    /// Queues `content` on `account`'s sender; `false` (logged) when the account is not running.
    async fn send_to_qq(&self, account: &str, chat: ChatKey, content: Content) -> bool {
        let send = SendVia { account: account.to_owned(), message: QueueMessage { chat, content } };
        match self.accounts.send(send).await {
            Ok(Some(_)) => true,
            Ok(None) | Err(_) => {
                tracing::warn!(%account, "message for QQ not queued: the account is not running");
                false
            }
        }
    }

    /// The room of portal `key`, created (with the owner invited) when it has none yet.
    async fn portal_room(
        &self,
        account: &str,
        owner: &UserId,
        key: &str,
        msg: &QqMessage,
    ) -> Result<OwnedRoomId, BridgeError> {
        if let Some(room) = self.store.portal(key)?.and_then(|p| p.room_id) {
            return Ok(room);
        }
        let name = msg.chat_name.clone().filter(|n| !n.is_empty());
        let mut request = create_room::v3::Request::new();
        request.visibility = Visibility::Private;
        request.preset = Some(create_room::v3::RoomPreset::PrivateChat);
        request.is_direct = matches!(msg.chat, ChatKey::Friend(_));
        request.invite = vec![owner.to_owned()];
        request.name = name.clone();
        request.initial_state = bridge_state(&self.settings.bot, owner, &msg.chat, name.as_deref());
        let room = self.matrix.create_room(request, None).await?;
        self.store.upsert_portal(&Portal {
            portal_key: key.to_owned(),
            kind: ids::kind_of(&msg.chat).to_owned(),
            account_id: Some(account.to_owned()),
            remote_id: ids::remote_id(&msg.chat),
            room_id: Some(room.clone()),
            name,
            topic: None,
            avatar_url: None,
            encrypted: false,
            created_at: unix_now(),
        })?;
        tracing::info!(%account, portal = %key, %room, "portal created");
        self.add_to_space(account, owner, &room).await;
        Ok(room)
    }

    /// A QQ picture as an `m.image` (fetched through the account, uploaded as the ghost), or a
    /// notice saying why it could not be (too big, gone, not an image): never dropped silently.
    async fn picture(
        &self,
        account: &str,
        msg: &QqMessage,
        picture: &PictureRef,
        ghost: Option<&UserId>,
    ) -> RoomMessageEventContent {
        let request = match picture.clone() {
            PictureRef::Group { name, file_id, server, .. } => {
                PictureRequest::Group { name, file_id, server }
            }
            PictureRef::CustomFace { name } => PictureRequest::CustomFace { name },
            PictureRef::Offline { file_path } => PictureRequest::Offline { file_path },
        };
        let fetch = FetchPictureVia {
            account: account.to_owned(),
            fetch: FetchPicture { origin: msg.origin, picture: request },
        };
        let bytes = match self.accounts.send(fetch).await {
            Ok(Ok(bytes)) => bytes,
            Ok(Err(reason)) => return picture_notice(&reason),
            Err(_) => return picture_notice("the account stopped"),
        };
        if bytes.len() > self.settings.max_image_bytes {
            return picture_notice(&format!(
                "it is larger than {} bytes",
                self.settings.max_image_bytes
            ));
        }
        let Some((mimetype, extension)) = image_type(&bytes) else {
            return picture_notice("QQ sent something that is not an image");
        };
        let size = bytes.len();
        let filename = format!("qq-picture.{extension}");
        match self.matrix.upload(ghost, bytes, mimetype, Some(filename.clone())).await {
            Ok(mxc) => {
                let mut info = ruma::events::room::ImageInfo::new();
                info.mimetype = Some(mimetype.to_owned());
                info.size = UInt::new(u64::try_from(size).unwrap_or(u64::MAX));
                let image =
                    ruma::events::room::message::ImageMessageEventContent::plain(filename, mxc)
                        .info(Some(Box::new(info)));
                RoomMessageEventContent::new(ruma::events::room::message::MessageType::Image(image))
            }
            Err(error) => picture_notice(&format!("the upload failed: {error}")),
        }
    }

    /// A Matrix picture as QQ content: downloaded from the homeserver (size-capped), checked to
    /// be an image, uploaded through the account; `caption` goes before it. Errors say why, for
    /// a notice.
    async fn picture_to_qq(
        &self,
        account: &str,
        chat: ChatKey,
        mxc: &ruma::MxcUri,
        caption: Vec<crate::webqq::content::Segment>,
    ) -> Result<Content, String> {
        let downloaded =
            self.matrix.download(mxc).await.map_err(|e| format!("could not be downloaded: {e}"))?;
        if downloaded.bytes.len() > self.settings.max_image_bytes {
            return Err(format!("is larger than {} bytes", self.settings.max_image_bytes));
        }
        let (_, extension) = image_type(&downloaded.bytes)
            .ok_or_else(|| "is not an image QQ can show".to_owned())?;
        let upload = UploadPicture {
            chat,
            file_name: format!("matrix.{extension}"),
            bytes: downloaded.bytes,
        };
        let segment = match self
            .accounts
            .send(UploadPictureVia { account: account.to_owned(), upload })
            .await
        {
            Ok(Ok(segment)) => segment,
            Ok(Err(reason)) => return Err(format!("could not be uploaded to QQ: {reason}")),
            Err(_) => return Err("could not be uploaded: the account stopped".to_owned()),
        };
        let mut content = Content { font: None, segments: caption };
        content.push(segment);
        Ok(content)
    }

    /// Shows QQ's typing notice of friend `from` as the ghost typing in the friend's portal, if
    /// that portal exists (typing never creates one).
    pub async fn qq_typing(&self, account: &str, from: QqNumber) -> Result<(), BridgeError> {
        let key = ids::portal_key(account, &ChatKey::Friend(from));
        let Some(room) = self.store.portal(&key)?.and_then(|p| p.room_id) else { return Ok(()) };
        if !self.store.is_ghost_in_room(from, &room)? {
            return Ok(());
        }
        let ghost = self
            .settings
            .ghosts
            .user_id(from)
            .ok_or_else(|| BridgeError::BadId(from.to_string()))?;
        self.matrix.typing(&room, &ghost, Some(TYPING_TIMEOUT)).await?;
        Ok(())
    }

    /// QQ number `qq`'s ghost, registered, named and joined to `room`.
    async fn ghost_in_room(
        &self,
        qq: QqNumber,
        name: &str,
        room: &RoomId,
    ) -> Result<OwnedUserId, BridgeError> {
        let ghost =
            self.settings.ghosts.user_id(qq).ok_or_else(|| BridgeError::BadId(qq.to_string()))?;
        let known = self.store.ghost(qq)?;
        let displayname = self
            .settings
            .displayname_template
            .replace("{name}", if name.is_empty() { "QQ user" } else { name });
        if known.as_ref().is_none_or(|g| !g.registered) {
            self.matrix.ensure_registered(&self.settings.ghosts.localpart(qq)).await?;
        }
        if known.as_ref().and_then(|g| g.displayname.as_deref()) != Some(displayname.as_str())
            && !name.is_empty()
        {
            self.matrix.set_displayname(&ghost, displayname.clone()).await?;
            self.store.upsert_ghost(&crate::store::Ghost {
                qq,
                registered: true,
                displayname: Some(displayname),
                avatar_hash: known.as_ref().and_then(|g| g.avatar_hash.clone()),
                avatar_url: known.as_ref().and_then(|g| g.avatar_url.clone()),
                updated_at: unix_now(),
            })?;
        } else if known.is_none() {
            self.store.upsert_ghost(&crate::store::Ghost {
                qq,
                registered: true,
                displayname: None,
                avatar_hash: None,
                avatar_url: None,
                updated_at: unix_now(),
            })?;
        }
        if !self.store.is_ghost_in_room(qq, room)? {
            self.matrix.invite(room, &ghost, None).await?;
            self.matrix.join(room, Some(&ghost)).await?;
            self.store.add_ghost_room(qq, room)?;
        }
        Ok(ghost)
    }

    async fn notice(&self, room: &RoomId, text: &str) -> Result<(), BridgeError> {
        let txn = ruma::TransactionId::new();
        let content = RoomMessageEventContent::notice_plain(text);
        self.matrix.send_message(room, None, &txn, &content, None).await?;
        Ok(())
    }

    fn remember_echo(&self, portal_key: &str, content: &Content) {
        let body = normalize_for_echo(content);
        let mut echoes = self.echoes.lock().unwrap_or_else(PoisonError::into_inner);
        let queue = echoes.entry(portal_key.to_owned()).or_default();
        if queue.len() >= ECHO_MEMORY {
            queue.pop_front();
        }
        queue.push_back(body);
    }

    /// Whether `body` is the echo of a recent own send in `portal_key` (then forgotten).
    fn take_echo(&self, portal_key: &str, body: &str) -> bool {
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

/// The `m.bridge` state of a new portal (MSC2346), under both the stable and the older
/// `uk.half-shot.bridge` type that existing clients read (MATRIX.md §6.7).
fn bridge_state(
    bot: &UserId,
    owner: &UserId,
    chat: &ChatKey,
    name: Option<&str>,
) -> Vec<Raw<ruma::events::AnyInitialStateEvent>> {
    let kind = ids::kind_of(chat);
    let id = ids::remote_id(chat);
    let content = serde_json::json!({
        "bridgebot": bot,
        "creator": owner,
        "protocol": {"id": "qq", "displayname": "QQ"},
        "channel": {"id": id, "displayname": name.unwrap_or_default()},
    });
    ids::BRIDGE_STATE_TYPES
        .into_iter()
        .filter_map(|event_type| {
            let event = serde_json::json!({
                "type": event_type,
                "state_key": ids::bridge_state_key(kind, &id),
                "content": content,
            });
            serde_json::value::to_raw_value(&event).ok().map(Raw::from_json)
        })
        .collect()
}

/// The notice that stands in for a QQ picture that could not be bridged.
fn picture_notice(reason: &str) -> RoomMessageEventContent {
    RoomMessageEventContent::notice_plain(format!(
        "[a picture from QQ could not be bridged: {reason}]"
    ))
}

/// The MIME type and file extension of an image, by its magic bytes; `None` if not an image.
fn image_type(bytes: &[u8]) -> Option<(&'static str, &'static str)> {
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

/// The Matrix content of one converted part; `speaker` prefixes a message the bot sends for a
/// member whose number is unknown.
fn matrix_content(part: &MatrixPart, speaker: Option<&str>) -> RoomMessageEventContent {
    match (part, speaker) {
        (MatrixPart::Text { body, .. }, Some(name)) => {
            RoomMessageEventContent::text_plain(format!("{name}: {body}"))
        }
        (MatrixPart::Text { body, formatted_html: Some(html) }, None) => {
            RoomMessageEventContent::text_html(body.clone(), html.clone())
        }
        (MatrixPart::Text { body, formatted_html: None }, None) => {
            RoomMessageEventContent::text_plain(body.clone())
        }
        (MatrixPart::Image { .. }, _) => picture_notice("it was not fetched"),
    }
}

/// Shared handle.
pub type SharedBridge = Arc<Bridge>;
