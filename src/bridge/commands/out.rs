//! [`ManagementOut`]: the one way the bot talks in a room (notices, images, redactions, joins,
//! leaves) and reads an encrypted one; implemented for the appservice's [`MatrixClient`] (as the
//! bot, unencrypted) and by [`EncryptedOut`], which sends through the bot's own device where a
//! room is encrypted (MATRIX.md §5.3).

use futures_util::FutureExt as _;
use futures_util::future::BoxFuture;
use ruma::events::room::ImageInfo;
use ruma::events::room::message::{ImageMessageEventContent, RoomMessageEventContent};
use ruma::{OwnedEventId, RoomId, TransactionId, UInt};

use crate::matrix::bot::BotClient;
use crate::matrix::client::MatrixClient;

/// Said when an encrypted event arrives and the bot has no device to read it with.
pub const NO_DEVICE: &str = "the bridge runs without an encryption device \
                             (encryption.bot_device is off)";

/// How the bot's answers leave. Errors are words for a log line.
pub trait ManagementOut: Send + Sync {
    /// Sends a plain-text notice; answers its event id.
    fn send_notice<'a>(
        &'a self,
        room: &'a RoomId,
        text: &'a str,
    ) -> BoxFuture<'a, Result<OwnedEventId, String>>;

    /// Uploads an image of type `mimetype` and sends it as an `m.image` with mimetype, size
    /// and (for a PNG) dimensions.
    fn send_image<'a>(
        &'a self,
        room: &'a RoomId,
        name: &'a str,
        mimetype: &'a str,
        bytes: Vec<u8>,
    ) -> BoxFuture<'a, Result<OwnedEventId, String>>;

    /// Redacts `event` with `reason`.
    fn redact<'a>(
        &'a self,
        room: &'a RoomId,
        event: OwnedEventId,
        reason: &'a str,
    ) -> BoxFuture<'a, Result<(), String>>;

    /// Joins `room`.
    fn join<'a>(&'a self, room: &'a RoomId) -> BoxFuture<'a, Result<(), String>>;

    /// Leaves (or rejects the invite to) `room`, saying why.
    fn leave<'a>(&'a self, room: &'a RoomId, reason: &'a str) -> BoxFuture<'a, Result<(), String>>;

    /// Decrypts `event`, an `m.room.encrypted` event of `room` as a transaction carried it,
    /// into the decrypted event's JSON. Without a device: an error saying so ([`NO_DEVICE`]).
    fn decrypt<'a>(
        &'a self,
        room: &'a RoomId,
        event: &'a serde_json::Value,
    ) -> BoxFuture<'a, Result<serde_json::Value, String>> {
        let _ = (room, event);
        async { Err(NO_DEVICE.to_owned()) }.boxed()
    }
}

/// Sends `content` to `room` as the bot under a fresh transaction id.
async fn send_as_bot(
    client: &MatrixClient,
    room: &RoomId,
    content: &RoomMessageEventContent,
) -> Result<OwnedEventId, String> {
    let txn = TransactionId::new();
    client.send_message(room, None, &txn, content, None).await.map_err(|e| e.to_string())
}

impl ManagementOut for MatrixClient {
    fn send_notice<'a>(
        &'a self,
        room: &'a RoomId,
        text: &'a str,
    ) -> BoxFuture<'a, Result<OwnedEventId, String>> {
        async move { send_as_bot(self, room, &RoomMessageEventContent::notice_plain(text)).await }
            .boxed()
    }

    fn send_image<'a>(
        &'a self,
        room: &'a RoomId,
        name: &'a str,
        mimetype: &'a str,
        bytes: Vec<u8>,
    ) -> BoxFuture<'a, Result<OwnedEventId, String>> {
        async move {
            let mut info = ImageInfo::new();
            info.mimetype = Some(mimetype.to_owned());
            info.size = UInt::new(u64::try_from(bytes.len()).unwrap_or(u64::MAX));
            if let Some((w, h)) = png_size(&bytes) {
                info.width = Some(UInt::from(w));
                info.height = Some(UInt::from(h));
            }
            let mxc = self
                .upload(None, bytes, mimetype, Some(name.to_owned()))
                .await
                .map_err(|e| e.to_string())?;
            let image = ImageMessageEventContent::plain(name.to_owned(), mxc).info(Box::new(info));
            let content = RoomMessageEventContent::new(
                ruma::events::room::message::MessageType::Image(image),
            );
            send_as_bot(self, room, &content).await
        }
        .boxed()
    }

    fn redact<'a>(
        &'a self,
        room: &'a RoomId,
        event: OwnedEventId,
        reason: &'a str,
    ) -> BoxFuture<'a, Result<(), String>> {
        async move {
            let txn = TransactionId::new();
            MatrixClient::redact(self, room, event, None, &txn, Some(reason.to_owned()))
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        }
        .boxed()
    }

    fn join<'a>(&'a self, room: &'a RoomId) -> BoxFuture<'a, Result<(), String>> {
        async move { MatrixClient::join(self, room, None).await.map_err(|e| e.to_string()) }.boxed()
    }

    fn leave<'a>(&'a self, room: &'a RoomId, reason: &'a str) -> BoxFuture<'a, Result<(), String>> {
        async move {
            self.leave_with_reason(room, None, Some(reason.to_owned()))
                .await
                .map_err(|e| e.to_string())
        }
        .boxed()
    }
}

/// The bot with its own encryption device: in an encrypted room it talks through the device
/// (matrix-sdk encrypts), elsewhere through the appservice, which is cheaper and needs no sync.
/// Joins, leaves and redactions are never encrypted and always go through the appservice.
#[derive(Clone, Debug)]
pub struct EncryptedOut {
    plain: MatrixClient,
    device: BotClient,
}

impl EncryptedOut {
    /// Routes between the appservice client `plain` and the bot's `device`.
    pub fn new(plain: MatrixClient, device: BotClient) -> Self {
        EncryptedOut { plain, device }
    }

    /// Whether `room` is encrypted, as the device's sync knows it. A room the device cannot
    /// see (yet) counts as plain: an answer in the clear beats no answer.
    async fn encrypted(&self, room: &RoomId) -> bool {
        match self.device.is_encrypted(room).await {
            Ok(encrypted) => encrypted,
            Err(error) => {
                tracing::warn!(%room, %error, "encryption of the room unknown; answering in the clear");
                false
            }
        }
    }
}

impl ManagementOut for EncryptedOut {
    fn send_notice<'a>(
        &'a self,
        room: &'a RoomId,
        text: &'a str,
    ) -> BoxFuture<'a, Result<OwnedEventId, String>> {
        async move {
            if !self.encrypted(room).await {
                return ManagementOut::send_notice(&self.plain, room, text).await;
            }
            self.device.send_text(room, text, None, true).await.map_err(|e| e.to_string())
        }
        .boxed()
    }

    fn send_image<'a>(
        &'a self,
        room: &'a RoomId,
        name: &'a str,
        mimetype: &'a str,
        bytes: Vec<u8>,
    ) -> BoxFuture<'a, Result<OwnedEventId, String>> {
        async move {
            if !self.encrypted(room).await {
                return ManagementOut::send_image(&self.plain, room, name, mimetype, bytes).await;
            }
            let size = png_size(&bytes);
            self.device
                .send_image(room, &bytes, name, mimetype, size)
                .await
                .map_err(|e| e.to_string())
        }
        .boxed()
    }

    fn redact<'a>(
        &'a self,
        room: &'a RoomId,
        event: OwnedEventId,
        reason: &'a str,
    ) -> BoxFuture<'a, Result<(), String>> {
        ManagementOut::redact(&self.plain, room, event, reason)
    }

    fn join<'a>(&'a self, room: &'a RoomId) -> BoxFuture<'a, Result<(), String>> {
        ManagementOut::join(&self.plain, room)
    }

    fn leave<'a>(&'a self, room: &'a RoomId, reason: &'a str) -> BoxFuture<'a, Result<(), String>> {
        ManagementOut::leave(&self.plain, room, reason)
    }

    fn decrypt<'a>(
        &'a self,
        room: &'a RoomId,
        event: &'a serde_json::Value,
    ) -> BoxFuture<'a, Result<serde_json::Value, String>> {
        async move { self.device.decrypt(room, event).await.map_err(|e| e.to_string()) }.boxed()
    }
}

/// The width and height of a PNG from its IHDR chunk; `None` when `bytes` is not a PNG.
pub fn png_size(bytes: &[u8]) -> Option<(u32, u32)> {
    if !bytes.starts_with(b"\x89PNG\r\n\x1a\n") || bytes.get(12..16) != Some(b"IHDR".as_slice()) {
        return None;
    }
    let word = |at: usize| -> Option<u32> {
        let b: [u8; 4] = bytes.get(at..at.checked_add(4)?)?.try_into().ok()?;
        Some(u32::from_be_bytes(b))
    };
    Some((word(16)?, word(20)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_png_size_reads_ihdr_and_refuses_other_bytes() {
        let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
        png.extend_from_slice(&37u32.to_be_bytes());
        png.extend_from_slice(&41u32.to_be_bytes());
        assert_eq!(png_size(&png), Some((37, 41)));
        assert_eq!(png_size(&png[..22]), None, "truncated");
        assert_eq!(png_size(b"GIF89a"), None);
        assert_eq!(png_size(b""), None);
    }
}
