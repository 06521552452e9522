//! Encrypted messages to the bot outside the portals (Element encrypts new DMs): read through
//! the bot's own device ([`super::ManagementOut::decrypt`]) and handled like clear ones.

use std::sync::Arc;

use ruma::events::AnyTimelineEvent;
use ruma::serde::Raw;

use crate::bridge::portal::Bridge;

use super::Commands;
use super::run::Message;

impl Commands {
    /// An encrypted message outside the portals (Element encrypts new DMs): decrypted through
    /// the bot's device and handled as if it had come in the clear; one that cannot be
    /// decrypted is answered with the reason. Blocked users' messages are not decrypted at all.
    /// Runs inline, so a user's messages keep their order (a password follows its command);
    /// a room key that has not arrived holds the transaction for up to about 7 s.
    pub(super) async fn encrypted(
        self: &Arc<Self>,
        bridge: &Arc<Bridge>,
        raw: &Raw<AnyTimelineEvent>,
        message: Message,
    ) {
        if self.is_blocked(bridge, &message.sender) {
            return;
        }
        let Ok(event) = serde_json::from_str::<serde_json::Value>(raw.json().get()) else {
            return;
        };
        match self.out.decrypt(&message.room, &event).await {
            Ok(clear) => {
                let kind = clear.get("type").and_then(|t| t.as_str());
                let sender = clear.get("sender").and_then(|s| s.as_str());
                let body =
                    clear.get("content").and_then(|c| c.get("body")).and_then(|b| b.as_str());
                // The device checked the keys; the clear event must still be this sender's.
                match (kind, body) {
                    (Some("m.room.message"), Some(body))
                        if sender == Some(message.sender.as_str()) =>
                    {
                        let body = body.to_owned();
                        self.message(bridge, Message { body, ..message }, false).await;
                    }
                    _ => {
                        tracing::debug!(room = %message.room, event = %message.event_id, ?kind, "decrypted event is not a message for the bot")
                    }
                }
            }
            Err(reason) => {
                tracing::info!(room = %message.room, sender = %message.sender, event = %message.event_id, %reason, "encrypted message not read");
                let text = format!(
                    "I could not read your encrypted message: {reason}. Send it again in a \
                     moment, or talk to me in an unencrypted direct chat."
                );
                self.say(&message.room, &text).await;
            }
        }
    }
}
