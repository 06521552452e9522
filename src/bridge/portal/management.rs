//! The management room: a direct chat between the bot and each account owner, created once
//! (its id kept in the store's `bridge_kv`), where the bridge tells the owner what needs them —
//! kicks, unbridgeable events, account states — and where bot commands will live (MATRIX.md
//! §6.1).

use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant};

use ruma::api::client::room::{Visibility, create_room};
use ruma::{OwnedRoomId, RoomId, UserId};

use ruma::api::client::message::send_message_event;

use crate::account::state::AccountState;
use crate::bridge::state::{BridgeState, notice_text};
use crate::metrics::matrix::MatrixEndpoint;

use super::cache::Bounded;
use super::{Bridge, BridgeError};

/// How long the same notice about unbridgeable events is not repeated: a group missing from
/// the list would otherwise make one notice per message.
const REPEAT_AFTER: Duration = Duration::from_secs(600);

/// Remembers recent notices so that a repeated one is held back for [`REPEAT_AFTER`].
#[derive(Debug)]
pub(super) struct NoticeThrottle {
    recent: Bounded<String, Instant>,
}

impl NoticeThrottle {
    /// A throttle remembering up to 1,024 notices.
    pub(super) fn new() -> Self {
        NoticeThrottle { recent: Bounded::new(1024) }
    }

    /// Whether `key` may be told at `now` (then it is remembered).
    pub(super) fn allow(&mut self, key: &str, now: Instant) -> bool {
        let key = key.to_owned();
        if self.recent.get(&key).is_some_and(|at| now.saturating_duration_since(at) < REPEAT_AFTER)
        {
            return false;
        }
        self.recent.insert(key, now);
        true
    }
}

/// The `bridge_kv` key of `owner`'s management room.
pub(super) fn management_key(owner: &UserId) -> String {
    format!("management_room:{owner}")
}

impl Bridge {
    /// `owner`'s management room, created (owner invited, direct) on first use.
    pub(super) async fn management_room(&self, owner: &UserId) -> Result<OwnedRoomId, BridgeError> {
        // Held across the creation so that two notices at once make one room.
        let mut rooms = self.management.lock().await;
        if let Some(room) = rooms.get(owner) {
            return Ok(room.clone());
        }
        let key = management_key(owner);
        let stored = self.store.kv_get(&key)?.and_then(|id| RoomId::parse(id).ok());
        let room = match stored {
            Some(room) => room,
            None => {
                let mut request = create_room::v3::Request::new();
                request.visibility = Visibility::Private;
                request.preset = Some(create_room::v3::RoomPreset::TrustedPrivateChat);
                request.is_direct = true;
                request.invite = vec![owner.to_owned()];
                request.name = Some("QQ bridge".to_owned());
                request.topic = Some("Notices of your QQ accounts from the bridge".to_owned());
                let room = self.matrix.create_room(request, None).await?;
                self.store.kv_set(&key, room.as_str())?;
                tracing::info!(%owner, %room, "management room created");
                room
            }
        };
        rooms.insert(owner.to_owned(), room.clone());
        Ok(room)
    }

    /// Tells `account`'s owner `text` in their management room. A failure is logged: a notice
    /// never fails the event that caused it.
    pub(super) async fn tell_owner(&self, account: &str, text: &str) {
        let told = async {
            let owner = self.owner(account)?;
            let room = self.management_room(&owner).await?;
            self.notice(&room, text).await
        };
        if let Err(error) = told.await {
            tracing::warn!(%account, %error, notice = %text, "owner not told");
        }
    }

    /// Tells the owner of `state`'s account about it in the management room, with the state
    /// itself under `fi.mau.bridge_state` (MATRIX.md §6.5). A failure is logged.
    pub(super) async fn tell_state(&self, state: &BridgeState) {
        let account = state.remote_name.as_str();
        let text = notice_text(state);
        let told = async {
            let owner = self.owner(account)?;
            let room = self.management_room(&owner).await?;
            let content = serde_json::json!({
                "msgtype": "m.notice",
                "body": text,
                "fi.mau.bridge_state": state,
            });
            let raw = serde_json::value::to_raw_value(&content).map_err(|e| {
                BridgeError::Matrix(crate::matrix::Error::Build(format!("state notice: {e}")))
            })?;
            let request = send_message_event::v3::Request::new_raw(
                room,
                ruma::TransactionId::new(),
                ruma::events::MessageLikeEventType::RoomMessage,
                ruma::serde::Raw::from_json(raw),
            );
            self.matrix.send(MatrixEndpoint::Send, request, None).await?;
            Ok::<(), BridgeError>(())
        };
        if let Err(error) = told.await {
            tracing::warn!(%account, %error, notice = %text, "owner not told of the account state");
        }
    }

    /// QQ logged the account out (kick_message, protocol §4.5).
    pub async fn qq_kicked(&self, account: &str, reason: &str) {
        let text = format!(
            "QQ account {account} was logged out by QQ: {reason}. It is not logged in again \
             automatically; log in again when the other client is done."
        );
        self.tell_owner(account, &text).await;
    }

    /// The account was not polled from `from` to `to` (RELIABILITY.md §1.7): WebQQ keeps no
    /// history, so the owner is told which QQ messages may be missing.
    pub async fn qq_poll_gap(&self, account: &str, from: u64, to: u64) {
        let text = format!(
            "QQ account {account}: QQ messages sent between {} and {} may be missing; the \
             bridge could not poll QQ then, and QQ does not deliver them later.",
            utc_text(from),
            utc_text(to)
        );
        self.tell_owner(account, &text).await;
    }

    /// A QQ event of the account could not be bridged.
    pub async fn qq_unbridgeable(&self, account: &str, poll_type: &str, reason: &str) {
        let text = format!("QQ account {account}: {reason} was not bridged ({poll_type}).");
        let allowed = self
            .notice_throttle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .allow(&text, Instant::now());
        if allowed {
            self.tell_owner(account, &text).await;
        }
    }

    /// The account's state changed: it goes into the bridge state (pushed to the status
    /// endpoint, told to the owner per `bridge.bridge_status_notices`, `state_push.rs`), and a
    /// newly connected account may have its contacts synced (`sync.rs`).
    pub async fn qq_account_state(
        self: &Arc<Self>,
        account: &str,
        state: AccountState,
        reason: Option<&str>,
    ) {
        self.observe_state(account, state, reason).await;
        if state == AccountState::Connected {
            self.sync_on_connect(account).await;
        }
    }
}

/// `unix` (seconds) as `YYYY-MM-DD HH:MM:SS UTC` (the proleptic Gregorian calendar).
fn utc_text(unix: u64) -> String {
    let (days, secs) = (unix / 86_400, unix % 86_400);
    // Days since 1970-01-01 to a civil date, in 400-year eras counted from 0000-03-01.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    let (h, m, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
    format!("{year:04}-{month:02}-{day:02} {h:02}:{m:02}:{s:02} UTC")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_utc_text() {
        assert_eq!(utc_text(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc_text(951_825_600), "2000-02-29 12:00:00 UTC");
        assert_eq!(utc_text(1_795_960_234), "2026-11-29 13:50:34 UTC");
        assert_eq!(utc_text(4_107_542_399), "2100-02-28 23:59:59 UTC");
        assert_eq!(utc_text(4_107_542_400), "2100-03-01 00:00:00 UTC");
    }

    #[test]
    fn test_a_repeated_notice_waits() {
        let mut throttle = NoticeThrottle::new();
        let start = Instant::now();
        assert!(throttle.allow("a", start));
        assert!(!throttle.allow("a", start + Duration::from_secs(1)));
        assert!(throttle.allow("b", start + Duration::from_secs(1)));
        assert!(throttle.allow("a", start + REPEAT_AFTER + Duration::from_secs(1)));
    }

    #[test]
    fn test_management_key_is_per_owner() {
        let a = UserId::parse("@a:example.org").unwrap();
        let b = UserId::parse("@b:example.org").unwrap();
        assert_eq!(management_key(&a), "management_room:@a:example.org");
        assert_ne!(management_key(&a), management_key(&b));
    }
}
