//! Send status of the Matrix messages bound for QQ (MATRIX.md §6.6): every one ends in a
//! [`SendStatus`]; a failure is told with an `m.notice` replying to the message, and, when
//! `bridge.message_status_events` is on, every status goes out as a
//! `com.beeper.message_send_status` event (the names mautrix bridges use).

use std::sync::Arc;

use ruma::api::client::message::send_message_event;
use ruma::events::relation::Reply;
use ruma::events::room::message::{Relation, RoomMessageEventContent};
use ruma::events::{AnyMessageLikeEventContent, MessageLikeEventType};
use ruma::serde::Raw;
use ruma::{EventId, RoomId, TransactionId};

use crate::account::send_queue::SendOutcome;
use crate::metrics::matrix::MatrixEndpoint;

use super::Bridge;

/// Attempts at sending a notice while the homeserver fails transiently (about 6 minutes).
const NOTICE_ATTEMPTS: u32 = 10;
/// Wait after the first transient failure of a notice; doubled after each, up to
/// [`NOTICE_RETRY_MAX`].
const NOTICE_RETRY_FIRST: std::time::Duration = std::time::Duration::from_secs(1);
/// Longest wait between two attempts at a notice.
const NOTICE_RETRY_MAX: std::time::Duration = std::time::Duration::from_secs(60);

/// The status event's type (mautrix / Beeper).
pub const STATUS_EVENT_TYPE: &str = "com.beeper.message_send_status";

/// The notice for a message whose account is not running (also its status message).
pub const NOT_RUNNING: &str = "the QQ account of this chat is not running.";

/// The `status` field of a status event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    /// QQ accepted the message.
    Success,
    /// It did not (surely or maybe) reach QQ; sending it again may work.
    Retriable,
    /// It will not reach QQ as it is.
    Permanent,
}

impl Status {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Success => "SUCCESS",
            Status::Retriable => "FAIL_RETRIABLE",
            Status::Permanent => "FAIL_PERMANENT",
        }
    }

    /// The status of a wire name.
    fn parse(name: &str) -> Option<Status> {
        [Status::Success, Status::Retriable, Status::Permanent]
            .into_iter()
            .find(|s| s.as_str() == name)
    }
}

/// Every machine reason a failed status carries; a stored status is read back into one of these.
const REASONS: [&str; 5] = [
    "m_unsupported",
    "m_no_permission",
    "m_bridge_unavailable",
    "m_generic_error",
    "m_network_error",
];

/// How one Matrix message ended on its way to QQ.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SendStatus {
    /// The outcome class.
    pub status: Status,
    /// The machine reason (`m_unsupported`, `m_no_permission`, …); empty on success.
    pub reason: &'static str,
    /// What the person reads: the notice is `<lead>: <message>`.
    pub message: String,
    /// Whether it may have reached QQ anyway (a 1202 or a lost answer).
    pub maybe_delivered: bool,
}

impl SendStatus {
    /// Delivered.
    pub fn success() -> SendStatus {
        SendStatus {
            status: Status::Success,
            reason: "",
            message: String::new(),
            maybe_delivered: false,
        }
    }

    fn fail(status: Status, reason: &'static str, message: impl Into<String>) -> SendStatus {
        SendStatus { status, reason, message: message.into(), maybe_delivered: false }
    }

    /// QQ cannot carry this message (a file, an oversized text, an encrypted event).
    pub fn unsupported(message: impl Into<String>) -> SendStatus {
        SendStatus::fail(Status::Permanent, "m_unsupported", message)
    }

    /// The sender may not send to this portal.
    pub fn no_permission(message: impl Into<String>) -> SendStatus {
        SendStatus::fail(Status::Permanent, "m_no_permission", message)
    }

    /// The account that would send it is not running.
    pub fn not_running() -> SendStatus {
        SendStatus::fail(Status::Retriable, "m_bridge_unavailable", NOT_RUNNING)
    }

    /// Something on the way failed (a picture download or upload).
    pub fn failed(message: impl Into<String>) -> SendStatus {
        SendStatus::fail(Status::Permanent, "m_generic_error", message)
    }

    /// The sender's final outcome; `None` when its answer was lost (the sender or account
    /// stopped with the message queued or in flight).
    pub fn from_outcome(outcome: Option<SendOutcome>) -> SendStatus {
        match outcome {
            Some(SendOutcome::Delivered) => SendStatus::success(),
            Some(SendOutcome::Failed { reason }) => SendStatus::fail(
                Status::Permanent,
                "m_generic_error",
                format!("QQ refused it ({reason})."),
            ),
            Some(SendOutcome::Uncertain { reason }) => SendStatus {
                maybe_delivered: true,
                ..SendStatus::fail(
                    Status::Retriable,
                    "m_network_error",
                    format!(
                        "QQ did not confirm it ({reason}). It may have arrived anyway, so it \
                         is not resent automatically."
                    ),
                )
            },
            // Only a final outcome is ever sent; a retry still pending is the sender's business.
            Some(SendOutcome::WillRetry { reason, .. }) => SendStatus {
                maybe_delivered: true,
                ..SendStatus::fail(Status::Retriable, "m_network_error", reason)
            },
            None => SendStatus {
                maybe_delivered: true,
                ..SendStatus::fail(
                    Status::Retriable,
                    "m_bridge_unavailable",
                    "the QQ session ended before QQ confirmed it; it may or may not have arrived.",
                )
            },
        }
    }

    /// The status as kept with its outbox row until the room is told (`Bridge::conclude`).
    pub fn to_stored(&self) -> String {
        serde_json::json!({
            "status": self.status.as_str(),
            "reason": self.reason,
            "message": self.message,
            "maybe_delivered": self.maybe_delivered,
        })
        .to_string()
    }

    /// A status kept by [`SendStatus::to_stored`]; `None` when `text` is not one. An unknown
    /// reason reads as `m_generic_error`.
    pub fn from_stored(text: &str) -> Option<SendStatus> {
        let value: serde_json::Value = serde_json::from_str(text).ok()?;
        let status = Status::parse(value.get("status")?.as_str()?)?;
        let reason = value.get("reason").and_then(serde_json::Value::as_str).unwrap_or("");
        let reason = match status {
            Status::Success => "",
            _ => REASONS.into_iter().find(|r| *r == reason).unwrap_or("m_generic_error"),
        };
        Some(SendStatus {
            status,
            reason,
            message: value.get("message")?.as_str()?.to_owned(),
            maybe_delivered: value.get("maybe_delivered")?.as_bool()?,
        })
    }

    /// The notice text; `None` on success (nothing visible by default).
    pub fn notice(&self) -> Option<String> {
        let lead = match self.status {
            Status::Success => return None,
            _ if self.maybe_delivered => "Maybe not delivered to QQ",
            _ => "Not sent to QQ",
        };
        Some(format!("{lead}: {}", self.message))
    }

    /// The content of the status event about `event_id`.
    pub fn event_content(&self, event_id: &EventId) -> serde_json::Value {
        let mut content = serde_json::json!({
            "network": "qq",
            "m.relates_to": {"rel_type": "m.reference", "event_id": event_id},
            "status": self.status.as_str(),
        });
        if self.status != Status::Success {
            content["reason"] = self.reason.into();
            content["message"] = self.message.clone().into();
        }
        content
    }
}

/// The status of a message sent as several QQ messages: success when every part succeeded,
/// else the first failure in order, naming its part.
pub fn combine(parts: Vec<SendStatus>) -> SendStatus {
    let total = parts.len();
    parts
        .into_iter()
        .enumerate()
        .find(|(_, part)| part.status != Status::Success)
        .map(|(index, mut part)| {
            if total > 1 {
                part.message = format!("part {} of {total}: {}", index + 1, part.message);
            }
            part
        })
        .unwrap_or_else(SendStatus::success)
}

impl Bridge {
    /// Tells the room how `event_id` ended: a notice replying to it on failure, a status event
    /// when they are on. Failures to tell are logged: they must not stop the bridge.
    pub(super) async fn report(&self, room: &RoomId, event_id: &EventId, status: &SendStatus) {
        if let Some(text) = status.notice() {
            self.notice_reply(room, event_id, &text).await;
        }
        if self.settings.message_status_events {
            self.status_event(room, event_id, status).await;
        }
    }

    /// [`Bridge::report`] in a task of its own, so the transaction does not wait for the
    /// homeserver; `notice: false` sends only the status event (a refusal already told).
    pub(super) fn report_later(
        self: &Arc<Self>,
        room: &RoomId,
        event_id: &EventId,
        status: SendStatus,
        notice: bool,
    ) {
        if !notice && !self.settings.message_status_events {
            return;
        }
        let (bridge, room, event_id) = (self.clone(), room.to_owned(), event_id.to_owned());
        tokio::spawn(async move {
            if notice {
                bridge.report(&room, &event_id, &status).await;
            } else {
                bridge.status_event(&room, &event_id, &status).await;
            }
        });
    }

    /// Sends `text` as a notice replying to `event_id` (`m.relates_to.m.in_reply_to`).
    pub(super) async fn notice_reply(&self, room: &RoomId, event_id: &EventId, text: &str) {
        let mut content = RoomMessageEventContent::notice_plain(text);
        content.relates_to = Some(Relation::Reply(Reply::with_event_id(event_id.to_owned())));
        // One txnId for every attempt: a retry after a lost answer is not a second notice.
        let txn = TransactionId::new();
        let mut delay = NOTICE_RETRY_FIRST;
        for attempt in 1..=NOTICE_ATTEMPTS {
            match self.matrix.send_message(room, None, &txn, &content, None).await {
                Ok(_) => return,
                // The owner's only word that a message may be missing on QQ (RELIABILITY.md
                // G6): a homeserver restart is waited out, not given up at once.
                Err(error) if error.is_transient() && attempt < NOTICE_ATTEMPTS => {
                    tracing::debug!(%room, %event_id, %error, attempt, "notice about a message for QQ waits for the homeserver");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(NOTICE_RETRY_MAX);
                }
                Err(error) => {
                    tracing::warn!(%room, %event_id, %error, "notice about a message for QQ not sent");
                    return;
                }
            }
        }
    }

    /// Sends the status event about `event_id` (callers check `message_status_events`).
    pub(super) async fn status_event(
        &self,
        room: &RoomId,
        event_id: &EventId,
        status: &SendStatus,
    ) {
        let content = status.event_content(event_id);
        let Ok(raw) = serde_json::value::to_raw_value(&content) else { return };
        let request = send_message_event::v3::Request::new_raw(
            room.to_owned(),
            TransactionId::new(),
            MessageLikeEventType::from(STATUS_EVENT_TYPE),
            Raw::<AnyMessageLikeEventContent>::from_json(raw),
        );
        if let Err(error) = self.matrix.send(MatrixEndpoint::Send, request, None).await {
            tracing::warn!(%room, %event_id, %error, "message status event not sent");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_outcomes_map_to_status_and_notice() {
        let reason = || "retcode 1202".to_owned();
        // (outcome, status, reason, notice start)
        let cases: Vec<(Option<SendOutcome>, Status, &str, Option<&str>)> = vec![
            (Some(SendOutcome::Delivered), Status::Success, "", None),
            (
                Some(SendOutcome::Failed { reason: reason() }),
                Status::Permanent,
                "m_generic_error",
                Some("Not sent to QQ: QQ refused it (retcode 1202)."),
            ),
            (
                Some(SendOutcome::Uncertain { reason: reason() }),
                Status::Retriable,
                "m_network_error",
                Some("Maybe not delivered to QQ: QQ did not confirm it (retcode 1202)."),
            ),
            (None, Status::Retriable, "m_bridge_unavailable", Some("Maybe not delivered to QQ")),
        ];
        for (outcome, status, why, notice) in cases {
            let got = SendStatus::from_outcome(outcome.clone());
            assert_eq!((got.status, got.reason), (status, why), "{outcome:?}");
            match (got.notice(), notice) {
                (None, None) => {}
                (Some(text), Some(start)) => assert!(text.starts_with(start), "{text}"),
                (got, want) => panic!("{outcome:?}: notice {got:?}, want {want:?}"),
            }
        }
        assert_eq!(
            SendStatus::not_running().notice().as_deref(),
            Some("Not sent to QQ: the QQ account of this chat is not running.")
        );
    }

    #[test]
    fn test_status_event_content() {
        let event = EventId::parse("$abc:example.org").unwrap();
        let ok = SendStatus::success().event_content(&event);
        assert_eq!(
            ok,
            serde_json::json!({"network": "qq", "status": "SUCCESS",
                "m.relates_to": {"rel_type": "m.reference", "event_id": "$abc:example.org"}})
        );
        let refused = SendStatus::no_permission("only the owner").event_content(&event);
        assert_eq!(refused["status"], "FAIL_PERMANENT");
        assert_eq!(refused["reason"], "m_no_permission");
        assert_eq!(refused["message"], "only the owner");
    }

    #[test]
    fn test_a_stored_status_reads_back_the_same() {
        let reason = || "HTTP 502".to_owned();
        let statuses = [
            SendStatus::success(),
            SendStatus::unsupported("a file"),
            SendStatus::no_permission("only the owner"),
            SendStatus::not_running(),
            SendStatus::failed("the picture is too large"),
            SendStatus::from_outcome(Some(SendOutcome::Failed { reason: reason() })),
            SendStatus::from_outcome(Some(SendOutcome::Uncertain { reason: reason() })),
            SendStatus::from_outcome(None),
        ];
        for status in statuses {
            assert_eq!(SendStatus::from_stored(&status.to_stored()), Some(status.clone()));
        }
        let odd =
            r#"{"status":"FAIL_PERMANENT","reason":"m_new","message":"x","maybe_delivered":false}"#;
        assert_eq!(SendStatus::from_stored(odd), Some(SendStatus::failed("x")));
        for bad in ["", "null", "[]", r#"{"status":"LOST","message":"x","maybe_delivered":true}"#] {
            assert_eq!(SendStatus::from_stored(bad), None, "{bad}");
        }
    }

    #[test]
    fn test_combine_names_the_first_failed_part() {
        let ok = SendStatus::success;
        assert_eq!(combine(vec![]), ok());
        assert_eq!(combine(vec![ok(), ok()]), ok());
        let one = combine(vec![SendStatus::failed("boom")]);
        assert_eq!(one.message, "boom");
        let two = combine(vec![ok(), SendStatus::failed("late"), SendStatus::not_running()]);
        assert_eq!((two.status, two.message.as_str()), (Status::Permanent, "part 2 of 3: late"));
    }
}
