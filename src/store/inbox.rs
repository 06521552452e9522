//! The QQ inbox on [`Conn`]: QQ events persisted between poll2 and Matrix, so that a crash after
//! poll2 returned them loses nothing (RELIABILITY.md §1.1). The events are opaque JSON here.

use super::StoreError;
use super::backend::Row;
use super::conn::{Conn, now, to_i64};

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

impl Conn {
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
