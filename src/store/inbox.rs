//! The two persisted queues on [`Conn`] (RELIABILITY.md §1.1): the QQ inbox (events between
//! poll2 and Matrix) and the Matrix outbox (owner messages between the transaction's 200 and QQ's
//! outcome), so a crash loses neither. Events are opaque JSON here.

use ruma::{OwnedEventId, OwnedRoomId, RoomId};

use super::StoreError;
use super::backend::Row;
use super::conn::{Conn, now, to_i64};
use super::rows::MessageRow;

/// One event waiting in the inbox.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InboxRow {
    /// Order of arrival, unique; replay goes by it.
    pub seq: u64,
    /// The account whose poll returned the event.
    pub account_id: String,
    /// The portal lane the event belongs to.
    pub lane: String,
    /// The event, serialised by the bridge.
    pub event_json: String,
}

/// One poll2 batch waiting for its ids to be resolved (RELIABILITY.md §1.2: persisted before
/// it is dispatched).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolledRow {
    /// The account whose poll returned it.
    pub account_id: String,
    /// Order of arrival within the account; unique with it.
    pub seq: u64,
    /// The session that polled it (its `opened_at`): the batch's uins belong to it.
    pub session: u64,
    /// The batch, serialised by the account.
    pub events_json: String,
}

/// One Matrix event waiting in the outbox.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboxRow {
    /// The portal room.
    pub room_id: OwnedRoomId,
    /// The event.
    pub event_id: OwnedEventId,
    /// Order of acceptance; replay goes by it.
    pub seq: u64,
    /// The event as the homeserver sent it.
    pub event_json: String,
    /// A QQ send call for it had begun ([`Conn::outbox_sending`]): after a crash it may have
    /// reached QQ, so it is not sent again.
    pub sending: bool,
    /// Its failed status, stored ([`Conn::outbox_outcome`]) while its owner is being told: after
    /// a crash it is told again instead of the message being sent.
    pub outcome: Option<String>,
}

impl Conn {
    /// Claims `message` in the message map and, when the claim is new, puts `row` in the
    /// outbox, in one transaction. `true` when the message was new (to be sent); `false` when it
    /// was claimed before (a replayed transaction: nothing to do).
    pub fn claim_for_outbox(
        &mut self,
        message: &MessageRow,
        row: &OutboxRow,
    ) -> Result<bool, StoreError> {
        self.transaction(|conn| {
            if !conn.insert_message(message)? {
                return Ok(false);
            }
            conn.exec(
                "save Matrix event for QQ",
                "INSERT INTO mx_outbox (room_id, event_id, seq, event_json, created_at)
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (room_id, event_id) DO NOTHING",
                &[
                    row.room_id.as_str().into(),
                    row.event_id.as_str().into(),
                    to_i64(row.seq).into(),
                    row.event_json.as_str().into(),
                    now().into(),
                ],
            )?;
            Ok(true)
        })
    }

    /// Marks the outbox event as being sent to QQ (RELIABILITY.md §1.5: durably, before the
    /// HTTP call). Only the first mark counts; `true` if the event is in the outbox.
    pub fn outbox_sending(&mut self, room_id: &RoomId, event_id: &str) -> Result<bool, StoreError> {
        let n = self.exec(
            "mark Matrix event sending",
            "UPDATE mx_outbox SET sending_at = COALESCE(sending_at, $3)
             WHERE room_id = $1 AND event_id = $2",
            &[room_id.as_str().into(), event_id.into(), now().into()],
        )?;
        Ok(n > 0)
    }

    /// Keeps `outcome`, the status its owner is about to be told, with the outbox event (the
    /// last one kept wins); `true` if the event is in the outbox.
    pub fn outbox_outcome(
        &mut self,
        room_id: &RoomId,
        event_id: &str,
        outcome: &str,
    ) -> Result<bool, StoreError> {
        let n = self.exec(
            "keep outcome of Matrix event",
            "UPDATE mx_outbox SET outcome = $3 WHERE room_id = $1 AND event_id = $2",
            &[room_id.as_str().into(), event_id.into(), outcome.into()],
        )?;
        Ok(n > 0)
    }

    /// Forgets a Matrix event whose QQ outcome is known; `true` if it was there.
    pub fn outbox_done(&mut self, room_id: &RoomId, event_id: &str) -> Result<bool, StoreError> {
        let n = self.exec(
            "forget settled Matrix event",
            "DELETE FROM mx_outbox WHERE room_id = $1 AND event_id = $2",
            &[room_id.as_str().into(), event_id.into()],
        )?;
        Ok(n > 0)
    }

    /// Every Matrix event accepted and not settled on QQ, oldest first.
    pub fn outbox(&mut self) -> Result<Vec<OutboxRow>, StoreError> {
        let rows = self.rows(
            "mx_outbox",
            "read Matrix outbox",
            "SELECT room_id, event_id, seq, event_json, sending_at IS NOT NULL, outcome
             FROM mx_outbox ORDER BY seq",
            &[],
        )?;
        rows.iter()
            .map(|row| {
                Ok(OutboxRow {
                    room_id: super::matrix::room_id(row, 0)?,
                    event_id: super::matrix::event_id(row, 1)?,
                    seq: row.uint(2)?,
                    event_json: row.text(3)?,
                    sending: row.bool(4)?,
                    outcome: row.opt_text(5)?,
                })
            })
            .collect()
    }

    /// Persists `rows` in one transaction: all or none.
    pub fn inbox_push(&mut self, rows: &[InboxRow]) -> Result<(), StoreError> {
        self.transaction(|conn| {
            for row in rows {
                conn.exec(
                    "save QQ event",
                    "INSERT INTO qq_inbox (seq, account_id, lane, event_json, created_at)
                     VALUES ($1, $2, $3, $4, $5)",
                    &[
                        to_i64(row.seq).into(),
                        row.account_id.as_str().into(),
                        row.lane.as_str().into(),
                        row.event_json.as_str().into(),
                        now().into(),
                    ],
                )?;
            }
            Ok(())
        })
    }

    /// Persists a poll batch before its ids are resolved.
    pub fn polled_push(&mut self, row: &PolledRow) -> Result<(), StoreError> {
        self.exec(
            "save QQ poll batch",
            "INSERT INTO qq_polled (account_id, seq, session, events_json, created_at)
             VALUES ($1, $2, $3, $4, $5)",
            &[
                row.account_id.as_str().into(),
                to_i64(row.seq).into(),
                to_i64(row.session).into(),
                row.events_json.as_str().into(),
                now().into(),
            ],
        )?;
        Ok(())
    }

    /// Forgets poll batch `seq` of `account_id` (resolved and in the inbox, or given up);
    /// `true` if it was there.
    pub fn polled_done(&mut self, account_id: &str, seq: u64) -> Result<bool, StoreError> {
        let n = self.exec(
            "forget QQ poll batch",
            "DELETE FROM qq_polled WHERE account_id = $1 AND seq = $2",
            &[account_id.into(), to_i64(seq).into()],
        )?;
        Ok(n > 0)
    }

    /// The unresolved poll batches of `account_id`, oldest first.
    pub fn polled(&mut self, account_id: &str) -> Result<Vec<PolledRow>, StoreError> {
        let rows = self.rows(
            "qq_polled",
            "read QQ poll batches",
            "SELECT account_id, seq, session, events_json FROM qq_polled WHERE account_id = $1
             ORDER BY seq",
            &[account_id.into()],
        )?;
        rows.iter()
            .map(|row| {
                Ok(PolledRow {
                    account_id: row.text(0)?,
                    seq: row.uint(1)?,
                    session: row.uint(2)?,
                    events_json: row.text(3)?,
                })
            })
            .collect()
    }

    /// [`Conn::inbox_push_checked`], and the poll batches `polled` (account, seq) that became
    /// these rows forgotten in the same transaction: a batch leaves `qq_polled` only once its
    /// events are in the inbox.
    pub fn inbox_push_resolved(
        &mut self,
        rows: &[InboxRow],
        messages: &[(String, String)],
        polled: &[(String, u64)],
    ) -> Result<Vec<bool>, StoreError> {
        self.transaction(|conn| {
            let mapped = conn.inbox_push_checked(rows, messages)?;
            for (account, seq) in polled {
                conn.polled_done(account, *seq)?;
            }
            Ok(mapped)
        })
    }

    /// [`Conn::inbox_push`] of a poll batch, and for each `(portal_key, remote_key)` of
    /// `messages` whether the message map holds it already (`true`: bridged before): one round
    /// trip per batch instead of one read per message.
    pub fn inbox_push_checked(
        &mut self,
        rows: &[InboxRow],
        messages: &[(String, String)],
    ) -> Result<Vec<bool>, StoreError> {
        let mapped = messages
            .iter()
            .map(|(portal, remote)| self.is_message_mapped(portal, remote))
            .collect::<Result<Vec<bool>, StoreError>>()?;
        if !rows.is_empty() {
            self.inbox_push(rows)?;
        }
        Ok(mapped)
    }

    /// Records bridged QQ messages in the message map and forgets the inbox events `done`, in
    /// one transaction. The map rows are written first and the deletions commit with them, so
    /// an event leaves the inbox only once what it became is mapped (RELIABILITY.md §1.1): a
    /// crash before the commit replays the events, and their idempotent transaction ids make
    /// the homeserver answer with the first events.
    pub fn settle_inbox(
        &mut self,
        messages: &[MessageRow],
        done: &[u64],
    ) -> Result<(), StoreError> {
        self.transaction(|conn| {
            for message in messages {
                conn.insert_message(message)?;
            }
            for seq in done {
                conn.inbox_done(*seq)?;
            }
            Ok(())
        })
    }

    /// Forgets event `seq`, now bridged (or refused for good); `true` if it was there.
    pub fn inbox_done(&mut self, seq: u64) -> Result<bool, StoreError> {
        let n = self.exec(
            "forget bridged QQ event",
            "DELETE FROM qq_inbox WHERE seq = $1",
            &[to_i64(seq).into()],
        )?;
        Ok(n > 0)
    }

    /// Every waiting event, oldest first.
    pub fn inbox(&mut self) -> Result<Vec<InboxRow>, StoreError> {
        let rows = self.rows(
            "qq_inbox",
            "read QQ inbox",
            "SELECT seq, account_id, lane, event_json FROM qq_inbox ORDER BY seq",
            &[],
        )?;
        rows.iter().map(inbox_from).collect()
    }
}

fn inbox_from(row: &Row) -> Result<InboxRow, StoreError> {
    Ok(InboxRow {
        seq: row.uint(0)?,
        account_id: row.text(1)?,
        lane: row.text(2)?,
        event_json: row.text(3)?,
    })
}
