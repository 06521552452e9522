//! The Matrix side's queries on [`Conn`]: processed transactions, portals, spaces, ghosts and
//! their rooms, media, the QQ message ↔ Matrix event map, and small key-value state.

use std::time::Duration;

use ruma::{OwnedEventId, OwnedMxcUri, OwnedRoomId, RoomId};

use super::StoreError;
use super::backend::{Row, Value};
use super::conn::{Conn, now, to_i64};
use super::rows::{Direction, Excerpt, Ghost, Media, MessageRow, Portal};
use crate::webqq::QqNumber;
use crate::webqq::session::unix_now;

const PORTAL_COLUMNS: &str = "portal_key, kind, account_id, remote_id, room_id, name, topic, \
                              avatar_url, encrypted, created_at";
const MESSAGE_COLUMNS: &str =
    "portal_key, remote_key, room_id, event_id, direction, sender, created_at";

impl Conn {
    /// Records that appservice transaction `txn_id` is processed, at `now` (Unix seconds).
    /// `true` when it was not recorded before; `false` when it was (a replay: answer `200` and do
    /// nothing, MATRIX.md §1). One `INSERT … ON CONFLICT DO NOTHING`, so of two concurrent calls
    /// (threads or processes) exactly one gets `true`. Call it inside the same
    /// [`Conn::transaction`] as storing the transaction's events (RELIABILITY.md §1.1 step 4).
    pub fn mark_txn_processed_at(&mut self, txn_id: &str, now: u64) -> Result<bool, StoreError> {
        let n = self.exec(
            "mark transaction processed",
            "INSERT INTO processed_txns (txn_id, processed_at) VALUES ($1, $2)
             ON CONFLICT (txn_id) DO NOTHING",
            &[txn_id.into(), to_i64(now).into()],
        )?;
        Ok(n > 0)
    }

    /// [`Conn::mark_txn_processed_at`] now.
    pub fn mark_txn_processed(&mut self, txn_id: &str) -> Result<bool, StoreError> {
        self.mark_txn_processed_at(txn_id, unix_now())
    }

    /// Whether `txn_id` has been recorded by [`Conn::mark_txn_processed`] (and not pruned).
    pub fn is_txn_processed(&mut self, txn_id: &str) -> Result<bool, StoreError> {
        let row = self.one(
            "processed_txns",
            "read processed transaction",
            "SELECT 1 FROM processed_txns WHERE txn_id = $1",
            &[txn_id.into()],
        )?;
        Ok(row.is_some())
    }

    /// Forgets transactions processed before `cutoff` (Unix seconds); how many. Synapse re-sends
    /// a failed transaction for minutes, not days (MATRIX.md §2), so a week of ids is ample.
    pub fn prune_txns_before(&mut self, cutoff: u64) -> Result<u64, StoreError> {
        self.exec(
            "prune processed transactions",
            "DELETE FROM processed_txns WHERE processed_at < $1",
            &[to_i64(cutoff).into()],
        )
    }

    /// Forgets transactions processed more than `age` ago; how many.
    pub fn prune_txns_older_than(&mut self, age: Duration) -> Result<u64, StoreError> {
        self.prune_txns_before(unix_now().saturating_sub(age.as_secs()))
    }

    /// Stores `portal`, replacing every field of an existing row with the same key except
    /// `created_at`, which keeps its first value. A `room_id` already used by another portal is
    /// an error (the column is unique).
    pub fn upsert_portal(&mut self, portal: &Portal) -> Result<(), StoreError> {
        let sql = format!(
            "INSERT INTO portals ({PORTAL_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
             ON CONFLICT (portal_key) DO UPDATE SET
                 kind = excluded.kind, account_id = excluded.account_id,
                 remote_id = excluded.remote_id, room_id = excluded.room_id,
                 name = excluded.name, topic = excluded.topic,
                 avatar_url = excluded.avatar_url, encrypted = excluded.encrypted"
        );
        let params = [
            portal.portal_key.as_str().into(),
            portal.kind.as_str().into(),
            portal.account_id.as_deref().into(),
            portal.remote_id.as_str().into(),
            portal.room_id.as_ref().map(|r| r.as_str()).into(),
            portal.name.as_deref().into(),
            portal.topic.as_deref().into(),
            portal.avatar_url.as_ref().map(|u| u.as_str()).into(),
            portal.encrypted.into(),
            to_i64(portal.created_at).into(),
        ];
        self.exec("save portal", &sql, &params)?;
        Ok(())
    }

    /// The portal stored under `portal_key`; `None` when there is none.
    pub fn portal(&mut self, portal_key: &str) -> Result<Option<Portal>, StoreError> {
        let sql = format!("SELECT {PORTAL_COLUMNS} FROM portals WHERE portal_key = $1");
        let row = self.one("portals", "read portal", &sql, &[portal_key.into()])?;
        row.as_ref().map(portal_from).transpose()
    }

    /// The portal whose room is `room_id`; `None` when the room is not a portal.
    pub fn portal_by_room(&mut self, room_id: &RoomId) -> Result<Option<Portal>, StoreError> {
        let sql = format!("SELECT {PORTAL_COLUMNS} FROM portals WHERE room_id = $1");
        let row = self.one("portals", "read portal by room", &sql, &[room_id.as_str().into()])?;
        row.as_ref().map(portal_from).transpose()
    }

    /// Every portal, ordered by key.
    pub fn portals(&mut self) -> Result<Vec<Portal>, StoreError> {
        let sql = format!("SELECT {PORTAL_COLUMNS} FROM portals ORDER BY portal_key");
        self.rows("portals", "list portals", &sql, &[])?.iter().map(portal_from).collect()
    }

    /// The portals of `account_id` (not the shared ones, whose account is `None`), by key.
    pub fn portals_of_account(&mut self, account_id: &str) -> Result<Vec<Portal>, StoreError> {
        let sql = format!(
            "SELECT {PORTAL_COLUMNS} FROM portals WHERE account_id = $1 ORDER BY portal_key"
        );
        let rows = self.rows("portals", "list portals of account", &sql, &[account_id.into()])?;
        rows.iter().map(portal_from).collect()
    }

    /// Deletes the portal `portal_key` and its message map; `true` if it existed.
    pub fn delete_portal(&mut self, portal_key: &str) -> Result<bool, StoreError> {
        self.transaction(|conn| {
            conn.exec(
                "delete portal messages",
                "DELETE FROM messages WHERE portal_key = $1",
                &[portal_key.into()],
            )?;
            conn.exec(
                "delete portal excerpts",
                "DELETE FROM message_excerpts WHERE portal_key = $1",
                &[portal_key.into()],
            )?;
            let n = conn.exec(
                "delete portal",
                "DELETE FROM portals WHERE portal_key = $1",
                &[portal_key.into()],
            )?;
            Ok(n > 0)
        })
    }

    /// Stores the space room of `account_id` (replacing a previous one).
    pub fn set_space(&mut self, account_id: &str, room_id: &RoomId) -> Result<(), StoreError> {
        self.exec(
            "save space",
            "INSERT INTO spaces (account_id, room_id) VALUES ($1, $2)
             ON CONFLICT (account_id) DO UPDATE SET room_id = excluded.room_id",
            &[account_id.into(), room_id.as_str().into()],
        )?;
        Ok(())
    }

    /// The space room of `account_id`; `None` when it has none yet.
    pub fn space(&mut self, account_id: &str) -> Result<Option<OwnedRoomId>, StoreError> {
        let row = self.one(
            "spaces",
            "read space",
            "SELECT room_id FROM spaces WHERE account_id = $1",
            &[account_id.into()],
        )?;
        row.map(|r| room_id(&r, 0)).transpose()
    }

    /// Stores `ghost` (replacing the row of the same QQ number); `updated_at` is set to now.
    pub fn upsert_ghost(&mut self, ghost: &Ghost) -> Result<(), StoreError> {
        self.exec(
            "save ghost",
            "INSERT INTO ghosts (qq, registered, displayname, avatar_hash, avatar_url, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (qq) DO UPDATE SET
                 registered = excluded.registered, displayname = excluded.displayname,
                 avatar_hash = excluded.avatar_hash, avatar_url = excluded.avatar_url,
                 updated_at = excluded.updated_at",
            &[
                ghost_qq(ghost.qq)?,
                ghost.registered.into(),
                ghost.displayname.as_deref().into(),
                ghost.avatar_hash.as_deref().into(),
                ghost.avatar_url.as_ref().map(|u| u.as_str()).into(),
                now().into(),
            ],
        )?;
        Ok(())
    }

    /// The ghost of `qq`; `None` when it was never stored.
    pub fn ghost(&mut self, qq: QqNumber) -> Result<Option<Ghost>, StoreError> {
        let row = self.one(
            "ghosts",
            "read ghost",
            "SELECT qq, registered, displayname, avatar_hash, avatar_url, updated_at
             FROM ghosts WHERE qq = $1",
            &[ghost_qq(qq)?],
        )?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(Ghost {
            qq: QqNumber::new(row.uint(0)?),
            registered: row.bool(1)?,
            displayname: row.opt_text(2)?,
            avatar_hash: row.opt_text(3)?,
            avatar_url: row.opt_text(4)?.map(OwnedMxcUri::from),
            updated_at: row.uint(5)?,
        }))
    }

    /// Records that the ghost of `qq` is joined to `room_id`; `true` if that was not known.
    pub fn add_ghost_room(&mut self, qq: QqNumber, room_id: &RoomId) -> Result<bool, StoreError> {
        let n = self.exec(
            "save ghost room",
            "INSERT INTO ghost_rooms (qq, room_id) VALUES ($1, $2)
             ON CONFLICT (qq, room_id) DO NOTHING",
            &[ghost_qq(qq)?, room_id.as_str().into()],
        )?;
        Ok(n > 0)
    }

    /// Forgets that the ghost of `qq` is joined to `room_id` (it left or was kicked); `true` if
    /// it was known.
    pub fn remove_ghost_room(
        &mut self,
        qq: QqNumber,
        room_id: &RoomId,
    ) -> Result<bool, StoreError> {
        let n = self.exec(
            "delete ghost room",
            "DELETE FROM ghost_rooms WHERE qq = $1 AND room_id = $2",
            &[ghost_qq(qq)?, room_id.as_str().into()],
        )?;
        Ok(n > 0)
    }

    /// Whether the ghost of `qq` is known to be joined to `room_id`.
    pub fn is_ghost_in_room(&mut self, qq: QqNumber, room_id: &RoomId) -> Result<bool, StoreError> {
        let row = self.one(
            "ghost_rooms",
            "read ghost room",
            "SELECT 1 FROM ghost_rooms WHERE qq = $1 AND room_id = $2",
            &[ghost_qq(qq)?, room_id.as_str().into()],
        )?;
        Ok(row.is_some())
    }

    /// The rooms the ghost of `qq` is known to be joined to, ordered.
    pub fn ghost_rooms(&mut self, qq: QqNumber) -> Result<Vec<OwnedRoomId>, StoreError> {
        let rows = self.rows(
            "ghost_rooms",
            "list ghost rooms",
            "SELECT room_id FROM ghost_rooms WHERE qq = $1 ORDER BY room_id",
            &[ghost_qq(qq)?],
        )?;
        rows.iter().map(|r| room_id(r, 0)).collect()
    }

    /// Stores an upload for reuse (replacing a row with the same hash).
    pub fn put_media(&mut self, media: &Media) -> Result<(), StoreError> {
        self.exec(
            "save media",
            "INSERT INTO media (content_hash, mxc, content_type, size) VALUES ($1, $2, $3, $4)
             ON CONFLICT (content_hash) DO UPDATE SET
                 mxc = excluded.mxc, content_type = excluded.content_type, size = excluded.size",
            &[
                media.content_hash.as_str().into(),
                media.mxc.as_str().into(),
                media.content_type.as_deref().into(),
                to_i64(media.size).into(),
            ],
        )?;
        Ok(())
    }

    /// The upload of content with `content_hash`; `None` when it was never uploaded.
    pub fn media(&mut self, content_hash: &str) -> Result<Option<Media>, StoreError> {
        let row = self.one(
            "media",
            "read media",
            "SELECT content_hash, mxc, content_type, size FROM media WHERE content_hash = $1",
            &[content_hash.into()],
        )?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(Media {
            content_hash: row.text(0)?,
            mxc: OwnedMxcUri::from(row.text(1)?),
            content_type: row.opt_text(2)?,
            size: row.uint(3)?,
        }))
    }

    /// Stores a message mapping unless (`portal_key`, `remote_key`) is already mapped; `true`
    /// when it was new. An existing mapping is never overwritten: the first event bridged for a
    /// QQ message stays its event (RELIABILITY.md §1.2: a retry reuses the Matrix txnId).
    pub fn insert_message(&mut self, message: &MessageRow) -> Result<bool, StoreError> {
        let sql = format!(
            "INSERT INTO messages ({MESSAGE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (portal_key, remote_key) DO NOTHING"
        );
        let n = self.exec(
            "save message",
            &sql,
            &[
                message.portal_key.as_str().into(),
                message.remote_key.as_str().into(),
                message.room_id.as_str().into(),
                message.event_id.as_str().into(),
                message.direction.as_str().into(),
                message.sender.as_str().into(),
                to_i64(message.created_at).into(),
            ],
        )?;
        Ok(n > 0)
    }

    /// The mapping of QQ message `remote_key` in `portal_key`; `None` when it was not bridged.
    pub fn message_by_remote(
        &mut self,
        portal_key: &str,
        remote_key: &str,
    ) -> Result<Option<MessageRow>, StoreError> {
        let sql = format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages WHERE portal_key = $1 AND remote_key = $2"
        );
        let row =
            self.one("messages", "read message", &sql, &[portal_key.into(), remote_key.into()])?;
        row.as_ref().map(message_from).transpose()
    }

    /// Whether QQ message `remote_key` of `portal_key` is in the map (a cheaper
    /// [`Conn::message_by_remote`] for the duplicate check).
    pub fn is_message_mapped(
        &mut self,
        portal_key: &str,
        remote_key: &str,
    ) -> Result<bool, StoreError> {
        let row = self.one(
            "messages",
            "check message",
            "SELECT 1 FROM messages WHERE portal_key = $1 AND remote_key = $2",
            &[portal_key.into(), remote_key.into()],
        )?;
        Ok(row.is_some())
    }

    /// The mapping of Matrix event `event_id` in `room_id`; `None` when the bridge did not see
    /// it there (replies and edits resolve only inside their own room, RELIABILITY.md §2). When
    /// one event became several QQ messages, the first (oldest, then lowest key) is returned.
    pub fn message_by_event(
        &mut self,
        room_id: &RoomId,
        event_id: &ruma::EventId,
    ) -> Result<Option<MessageRow>, StoreError> {
        let sql = format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages WHERE room_id = $1 AND event_id = $2
             ORDER BY created_at, remote_key LIMIT 1"
        );
        let params = [room_id.as_str().into(), event_id.as_str().into()];
        let row = self.one("messages", "read message by event", &sql, &params)?;
        row.as_ref().map(message_from).transpose()
    }

    /// Marks the portal `portal_key` encrypted (or not) without touching its other fields;
    /// `true` if the portal exists.
    pub fn set_portal_encrypted(
        &mut self,
        portal_key: &str,
        encrypted: bool,
    ) -> Result<bool, StoreError> {
        let n = self.exec(
            "mark portal encrypted",
            "UPDATE portals SET encrypted = $2 WHERE portal_key = $1",
            &[portal_key.into(), encrypted.into()],
        )?;
        Ok(n > 0)
    }

    /// Stores (or replaces: an edit changes the text) what a reply to `event_id` in `room_id`
    /// quotes.
    pub fn put_excerpt(
        &mut self,
        room_id: &RoomId,
        event_id: &ruma::EventId,
        excerpt: &Excerpt,
    ) -> Result<(), StoreError> {
        self.exec(
            "save excerpt",
            "INSERT INTO message_excerpts
                 (room_id, event_id, portal_key, sender_name, excerpt, created_at)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (room_id, event_id) DO UPDATE SET
                 sender_name = excluded.sender_name, excerpt = excluded.excerpt",
            &[
                room_id.as_str().into(),
                event_id.as_str().into(),
                excerpt.portal_key.as_str().into(),
                excerpt.sender_name.as_str().into(),
                excerpt.text.as_str().into(),
                now().into(),
            ],
        )?;
        Ok(())
    }

    /// The excerpt of `event_id` in `room_id`; `None` when none was stored.
    pub fn excerpt(
        &mut self,
        room_id: &RoomId,
        event_id: &ruma::EventId,
    ) -> Result<Option<Excerpt>, StoreError> {
        let row = self.one(
            "message_excerpts",
            "read excerpt",
            "SELECT portal_key, sender_name, excerpt FROM message_excerpts
             WHERE room_id = $1 AND event_id = $2",
            &[room_id.as_str().into(), event_id.as_str().into()],
        )?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(Excerpt {
            portal_key: row.text(0)?,
            sender_name: row.text(1)?,
            text: row.text(2)?,
        }))
    }

    /// Stores a small piece of bridge state under `key` (replacing the previous value).
    pub fn kv_set(&mut self, key: &str, value: &str) -> Result<(), StoreError> {
        self.exec(
            "save bridge state",
            "INSERT INTO bridge_kv (key, value) VALUES ($1, $2)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            &[key.into(), value.into()],
        )?;
        Ok(())
    }

    /// The value stored under `key`; `None` when there is none.
    pub fn kv_get(&mut self, key: &str) -> Result<Option<String>, StoreError> {
        let row = self.one(
            "bridge_kv",
            "read bridge state",
            "SELECT value FROM bridge_kv WHERE key = $1",
            &[key.into()],
        )?;
        row.map(|r| r.text(0)).transpose()
    }

    /// Deletes the value under `key`; `true` if there was one.
    pub fn kv_delete(&mut self, key: &str) -> Result<bool, StoreError> {
        let n = self.exec(
            "delete bridge state",
            "DELETE FROM bridge_kv WHERE key = $1",
            &[key.into()],
        )?;
        Ok(n > 0)
    }
}

fn ghost_qq(qq: QqNumber) -> Result<Value, StoreError> {
    i64::try_from(qq.get())
        .map(Value::Int)
        .map_err(|_| StoreError::OutOfRange { account_id: String::from("(ghost)"), qq: qq.get() })
}

pub(super) fn room_id(row: &Row, index: usize) -> Result<OwnedRoomId, StoreError> {
    let text = row.text(index)?;
    OwnedRoomId::try_from(text).map_err(|e| StoreError::CorruptRow {
        table: row.table,
        reason: format!("invalid room id: {e}"),
    })
}

pub(super) fn event_id(row: &Row, index: usize) -> Result<OwnedEventId, StoreError> {
    let text = row.text(index)?;
    OwnedEventId::try_from(text).map_err(|e| StoreError::CorruptRow {
        table: row.table,
        reason: format!("invalid event id: {e}"),
    })
}

fn portal_from(row: &Row) -> Result<Portal, StoreError> {
    Ok(Portal {
        portal_key: row.text(0)?,
        kind: row.text(1)?,
        account_id: row.opt_text(2)?,
        remote_id: row.text(3)?,
        room_id: match row.opt_text(4)? {
            Some(_) => Some(room_id(row, 4)?),
            None => None,
        },
        name: row.opt_text(5)?,
        topic: row.opt_text(6)?,
        avatar_url: row.opt_text(7)?.map(OwnedMxcUri::from),
        encrypted: row.bool(8)?,
        created_at: row.uint(9)?,
    })
}

fn message_from(row: &Row) -> Result<MessageRow, StoreError> {
    let direction = row.text(4)?;
    Ok(MessageRow {
        portal_key: row.text(0)?,
        remote_key: row.text(1)?,
        room_id: room_id(row, 2)?,
        event_id: event_id(row, 3)?,
        direction: Direction::parse(&direction).ok_or_else(|| StoreError::CorruptRow {
            table: row.table,
            reason: format!("unknown direction {direction:?}"),
        })?,
        sender: row.text(5)?,
        created_at: row.uint(6)?,
    })
}
