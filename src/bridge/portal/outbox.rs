//! The Matrix outbox seen from the bridge (RELIABILITY.md §1.1): an owner's message is claimed
//! and persisted before its transaction is answered, leaves the outbox once QQ's outcome is
//! known and, for a failure, told, and is sent again at start if a crash came before its send
//! (told, if it came after).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use ruma::events::AnyTimelineEvent;
use ruma::serde::Raw;
use ruma::{EventId, OwnedEventId, OwnedRoomId, RoomId};

use super::Bridge;
use super::status::{SendStatus, Status};
use super::to_qq::EventHead;
use crate::account::send_queue::SendOutcome;

impl Bridge {
    /// An outbox sequence number above every one given before, also by earlier runs.
    pub(super) fn next_outbox_seq(&self) -> u64 {
        crate::store::next_seq(&self.outbox_seq)
    }

    /// Ends a message's way to QQ: its status told ([`Bridge::report`]) and its row taken out
    /// of the outbox. A failure is kept with the row before it is told, and the row leaves
    /// only after: a crash while the homeserver is away tells it after the restart instead of
    /// losing the owner's only word that the message is not on QQ (RELIABILITY.md G6). A
    /// success leaves the outbox first (its status event, when on, is not worth a write).
    pub(super) async fn conclude(&self, room: &RoomId, event_id: &EventId, status: &SendStatus) {
        if status.status == Status::Success {
            self.settle(room, event_id).await;
            self.report(room, event_id, status).await;
            return;
        }
        let (room_id, event, stored) = (room.to_owned(), event_id.to_string(), status.to_stored());
        let kept = self.store.call(move |c| c.outbox_outcome(&room_id, &event, &stored)).await;
        if let Err(error) = kept {
            tracing::warn!(%error, "failed status of a Matrix message not stored: a crash before it is told loses it");
        }
        self.report(room, event_id, status).await;
        self.settle(room, event_id).await;
    }

    /// [`Bridge::conclude`] in a task of its own, so neither a transaction nor the start-up
    /// waits for the homeserver.
    pub(super) fn conclude_later(
        self: &Arc<Self>,
        room: OwnedRoomId,
        event_id: OwnedEventId,
        status: SendStatus,
    ) {
        let bridge = self.clone();
        tokio::spawn(async move { bridge.conclude(&room, &event_id, &status).await });
    }

    /// Takes a message whose QQ outcome is known out of the outbox. A failure only means the
    /// message is offered to QQ once more after the next restart.
    pub(super) async fn settle(&self, room: &RoomId, event_id: &EventId) {
        let (room, event) = (room.to_owned(), event_id.to_string());
        if let Err(error) = self.store.call(move |c| c.outbox_done(&room, &event)).await {
            tracing::warn!(%error, "settled Matrix message left in the outbox");
        }
    }

    /// Queues again every owner message a previous run accepted and did not settle, oldest
    /// first; call before the appservice server takes new transactions, so they queue behind.
    /// Answers how many were queued. A message whose QQ send had begun (its durable `sending`
    /// mark, RELIABILITY.md §1.5) may be on QQ: it is not resent but counted
    /// (`qqbridge_qq_sends_interrupted_total`), logged and reported to its owner as maybe not
    /// delivered. The mark commits before the send call, so a message resent here never
    /// reached QQ: no blind resend, no duplicate. A message whose failure was known but not yet
    /// told (its stored outcome) is told, not resent. Telling goes on in the background.
    pub async fn replay_outbox(self: &Arc<Self>) -> usize {
        let rows = match self.store.call(|c| c.outbox()).await {
            Ok(rows) => rows,
            Err(error) => {
                tracing::error!(%error, "Matrix outbox not readable: messages of a crashed run not resent");
                return 0;
            }
        };
        let mut queued = 0;
        for row in rows {
            self.outbox_seq.fetch_max(row.seq, Ordering::Relaxed);
            if let Some(stored) = &row.outcome {
                self.untold_outcome(row.room_id, row.event_id, stored);
                continue;
            }
            if row.sending {
                self.interrupted_send(row.room_id, row.event_id);
                continue;
            }
            let parsed = serde_json::from_str::<Raw<AnyTimelineEvent>>(&row.event_json)
                .ok()
                .and_then(|raw| EventHead::parse(&raw).map(|head| (raw, head)));
            let portal = self.store.portal_by_room(&row.room_id).ok().flatten();
            let route = match (&parsed, &portal) {
                (Some((_, head)), Some(portal)) => self.route(portal, head).await.ok().flatten(),
                _ => None,
            };
            match (parsed, portal, route) {
                (Some((raw, head)), Some(portal), Some(route)) => {
                    tracing::info!(room = %row.room_id, event = %row.event_id, "Matrix message not sent to QQ before the restart: queued again");
                    if self.send_accepted(portal, head, &raw, route).await {
                        queued += 1;
                    }
                }
                _ => {
                    tracing::error!(room = %row.room_id, event = %row.event_id, "Matrix message in the outbox has no portal or cannot be read: dropped");
                    self.settle(&row.room_id, &row.event_id).await;
                }
            }
        }
        queued
    }

    /// A message whose QQ send was under way when the previous run stopped: not resent, as
    /// QQ may have taken it; counted, logged and reported as maybe not delivered.
    fn interrupted_send(self: &Arc<Self>, room: OwnedRoomId, event_id: OwnedEventId) {
        self.matrix.metrics().qq_send_interrupted();
        tracing::warn!(%room, event = %event_id, "Matrix message was being sent to QQ when the bridge stopped: not sent again, it may have been delivered");
        let reason = "the bridge stopped while sending it".to_owned();
        let status = SendStatus::from_outcome(Some(SendOutcome::Uncertain { reason }));
        self.conclude_later(room, event_id, status);
    }

    /// A message whose QQ outcome was known, and its owner not yet told, when the previous run
    /// stopped: told now (`stored` unreadable reads as maybe not delivered).
    fn untold_outcome(self: &Arc<Self>, room: OwnedRoomId, event_id: OwnedEventId, stored: &str) {
        tracing::info!(%room, event = %event_id, "status of a Matrix message not told before the restart: told now");
        let status = SendStatus::from_stored(stored).unwrap_or_else(|| {
            let reason = "its outcome was not readable after a restart".to_owned();
            SendStatus::from_outcome(Some(SendOutcome::Uncertain { reason }))
        });
        self.conclude_later(room, event_id, status);
    }
}
