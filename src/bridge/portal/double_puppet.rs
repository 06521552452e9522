//! Double puppeting (MATRIX.md §6.4): a QQ message from the account's own number that is not the
//! echo of a bridge send was written on another QQ client, so it is sent as the owner's real
//! Matrix user through a second appservice registration (`double_puppet.secrets`), carrying a
//! marker key so the transaction handler drops it when it comes back.

use std::collections::BTreeMap;

use ruma::events::room::message::RoomMessageEventContent;
use ruma::events::{AnyTimelineEvent, MessageLikeEventType};
use ruma::serde::Raw;
use ruma::{MilliSecondsSinceUnixEpoch, OwnedEventId, RoomId, TransactionId, UserId};

use crate::matrix::Token;
use crate::matrix::client::MatrixClient;
use crate::metrics::matrix::MatrixEndpoint;

use super::{Bridge, BridgeSettings};

/// The content key that marks an event the bridge wrote as a real user; its value names the
/// QQ message. Events carrying it are never bridged to QQ (RELIABILITY.md §1.4).
pub const DOUBLE_PUPPET_MARKER: &str = "org.qqbridge.double_puppet_source";

/// One client per server name with a double-puppet secret, sharing `matrix`'s connection pool.
pub(super) fn puppet_clients(
    settings: &BridgeSettings,
    matrix: &MatrixClient,
) -> BTreeMap<String, MatrixClient> {
    let secrets = &settings.double_puppet;
    secrets
        .secrets
        .keys()
        .filter_map(|server| {
            let token = secrets.as_token_for(server)?;
            Some((server.clone(), matrix.with_as_token(Token::new(token))))
        })
        .collect()
}

/// Whether `raw`'s content carries [`DOUBLE_PUPPET_MARKER`].
pub(super) fn has_marker(raw: &Raw<AnyTimelineEvent>) -> bool {
    raw.get_field::<serde_json::Value>("content")
        .ok()
        .flatten()
        .is_some_and(|content| content.get(DOUBLE_PUPPET_MARKER).is_some())
}

/// `content` as JSON with the marker set to `source`.
fn marked(
    content: &RoomMessageEventContent,
    source: &str,
) -> Result<serde_json::Value, serde_json::Error> {
    let mut value = serde_json::to_value(content)?;
    if let Some(object) = value.as_object_mut() {
        object.insert(DOUBLE_PUPPET_MARKER.to_owned(), source.into());
    }
    Ok(value)
}

impl Bridge {
    /// The client that writes as `owner`, when `owner`'s server has a double-puppet secret.
    pub(super) fn puppet_of(&self, owner: &UserId) -> Option<&MatrixClient> {
        self.puppets.get(owner.server_name().as_str())
    }
}

/// Sends `content` as `owner` through `puppet`, marked with `source`; joins the room first
/// when the owner is only invited. Errors are the homeserver's (the caller falls back to
/// the owner's ghost).
pub(super) async fn send_as_owner(
    puppet: &MatrixClient,
    room: &RoomId,
    owner: &UserId,
    txn: &TransactionId,
    content: &RoomMessageEventContent,
    ts: MilliSecondsSinceUnixEpoch,
    source: &str,
) -> Result<OwnedEventId, crate::matrix::Error> {
    let body = marked(content, source)
        .map_err(|e| crate::matrix::Error::Build(format!("cannot serialise content: {e}")))?;
    let raw = serde_json::value::to_raw_value(&body)
        .map_err(|e| crate::matrix::Error::Build(format!("cannot serialise content: {e}")))?;
    let request = || {
        let mut request = ruma::api::client::message::send_message_event::v3::Request::new_raw(
            room.to_owned(),
            txn.to_owned(),
            MessageLikeEventType::RoomMessage,
            Raw::from_json(raw.clone()),
        );
        request.timestamp = Some(ts);
        request
    };
    match puppet.send(MatrixEndpoint::Send, request(), Some(owner)).await {
        Ok(answer) => Ok(answer.event_id),
        Err(error) if error.status() == Some(403) => {
            // Not joined yet (only invited to the portal): join as the owner, then retry.
            puppet.join(room, Some(owner)).await?;
            Ok(puppet.send(MatrixEndpoint::Send, request(), Some(owner)).await?.event_id)
        }
        Err(error) => Err(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn test_marker_is_added_and_recognised() {
        let content = RoomMessageEventContent::text_plain("from my phone");
        let value = marked(&content, "group:1/m1").unwrap();
        assert_eq!(value[DOUBLE_PUPPET_MARKER], "group:1/m1");
        assert_eq!(value["body"], "from my phone");
        let event = |content: serde_json::Value| -> Raw<AnyTimelineEvent> {
            serde_json::from_value(json!({"type": "m.room.message", "room_id": "!r:x",
                "sender": "@o:x", "event_id": "$e", "content": content}))
            .unwrap()
        };
        assert!(has_marker(&event(value)));
        assert!(!has_marker(&event(json!({"msgtype": "m.text", "body": "typed in Matrix"}))));
        assert!(!has_marker(&event(json!("not an object"))));
    }
}
