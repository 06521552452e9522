//! The one place QQ ids become Matrix ids and back (ARCHITECTURE.md, Identity): ghost user ids
//! from the username template, portal keys from chats, and transaction ids from QQ messages.
//!
//! Only permanent ids go in: QQ numbers, group numbers, discussion ids — never per-session uins.

use ruma::{OwnedTransactionId, OwnedUserId, ServerName, UserId};

use crate::account::send_queue::ChatKey;
use crate::webqq::{Did, GroupNumber, QqNumber};

/// The placeholder of the username template.
const QQ: &str = "{qq}";

/// Ghost ids: `@<prefix><qq number><suffix>:<server>` from `bridge.username_template`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GhostIds {
    prefix: String,
    suffix: String,
    server: ruma::OwnedServerName,
}

impl GhostIds {
    /// From a template like `qq_{qq}` (validated by the config) and the homeserver's name.
    pub fn new(template: &str, server: &ServerName) -> Option<GhostIds> {
        let (prefix, suffix) = template.split_once(QQ)?;
        Some(GhostIds {
            prefix: prefix.to_owned(),
            suffix: suffix.to_owned(),
            server: server.to_owned(),
        })
    }

    /// The localpart of QQ number `qq`'s ghost.
    pub fn localpart(&self, qq: QqNumber) -> String {
        format!("{}{qq}{}", self.prefix, self.suffix)
    }

    /// The user id of QQ number `qq`'s ghost.
    pub fn user_id(&self, qq: QqNumber) -> Option<OwnedUserId> {
        UserId::parse(format!("@{}:{}", self.localpart(qq), self.server)).ok()
    }

    /// The QQ number of a ghost, or `None` for any user outside the ghost namespace.
    pub fn qq_of(&self, user: &UserId) -> Option<QqNumber> {
        if user.server_name() != self.server {
            return None;
        }
        let digits = user.localpart().strip_prefix(&self.prefix)?.strip_suffix(&self.suffix)?;
        if digits.is_empty()
            || !digits.bytes().all(|b| b.is_ascii_digit())
            || digits.starts_with('0')
        {
            return None;
        }
        digits.parse().ok().map(QqNumber::new)
    }
}

/// The event types of a portal's bridge info (MSC2346): the stable one and the older
/// `uk.half-shot.bridge` that existing clients read (MATRIX.md §6.7).
pub const BRIDGE_STATE_TYPES: [&str; 2] = ["m.bridge", "uk.half-shot.bridge"];

/// The state key of the bridge info of the portal of a `kind` chat with remote id `id`.
pub fn bridge_state_key(kind: &str, id: &str) -> String {
    format!("org.qqbridge://qq/{kind}/{id}")
}

/// What kind of chat a portal bridges (the store's `kind` column).
pub fn kind_of(chat: &ChatKey) -> &'static str {
    match chat {
        ChatKey::Friend(_) => "friend",
        ChatKey::Group(_) => "group",
        ChatKey::Discussion(_) => "discussion",
    }
}

/// The portal key of `chat` as seen by `account`. A friend chat and a discussion belong to one
/// account; a group is one portal whichever bridged account is in it (MATRIX.md §6).
pub fn portal_key(account: &str, chat: &ChatKey) -> String {
    match chat {
        ChatKey::Friend(qq) => format!("friend:{account}:{qq}"),
        ChatKey::Group(number) => format!("group:{number}"),
        ChatKey::Discussion(did) => format!("discussion:{account}:{did}"),
    }
}

/// The stored remote id of `chat` (the number alone).
pub fn remote_id(chat: &ChatKey) -> String {
    match chat {
        ChatKey::Friend(qq) => qq.to_string(),
        ChatKey::Group(number) => number.to_string(),
        ChatKey::Discussion(did) => did.to_string(),
    }
}

/// The chat behind a stored portal's `kind` and `remote_id`; `None` for a row this build does
/// not understand.
pub fn chat_of(kind: &str, remote_id: &str) -> Option<ChatKey> {
    let number: u64 = remote_id.parse().ok()?;
    match kind {
        "friend" => Some(ChatKey::Friend(QqNumber::new(number))),
        "group" => Some(ChatKey::Group(GroupNumber::new(number))),
        "discussion" => Some(ChatKey::Discussion(Did::new(number))),
        _ => None,
    }
}

/// The transaction id of part `part` of QQ message `message_key` in `portal_key`: derived from
/// the message alone, so a resend after a crash makes the homeserver return the first event
/// (MATRIX.md §3), and unique across the bridge because the portal key is in it.
pub fn txn_id(portal_key: &str, message_key: &str, part: usize) -> OwnedTransactionId {
    use md5::{Digest as _, Md5};
    let digest = Md5::digest(format!("{portal_key}\u{0}{message_key}\u{0}{part}").as_bytes());
    OwnedTransactionId::from(format!("qq{}", hex::encode(digest)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids() -> GhostIds {
        GhostIds::new("qq_{qq}", ruma::server_name!("example.org")).unwrap()
    }

    #[test]
    fn test_ghost_ids_round_trip_and_reject_strangers() {
        let ids = ids();
        let user = ids.user_id(QqNumber::new(10001)).unwrap();
        assert_eq!(user.as_str(), "@qq_10001:example.org");
        assert_eq!(ids.qq_of(&user), Some(QqNumber::new(10001)));
        for other in [
            "@qq_10001:other.org",
            "@qq_:example.org",
            "@qq_01:example.org",
            "@qq_1x:example.org",
            "@qqbot:example.org",
            "@alice:example.org",
        ] {
            let user = UserId::parse(other).unwrap();
            assert_eq!(ids.qq_of(&user), None, "{other}");
        }
        let suffixed = GhostIds::new("qq-{qq}-g", ruma::server_name!("example.org")).unwrap();
        let user = suffixed.user_id(QqNumber::new(5)).unwrap();
        assert_eq!(user.as_str(), "@qq-5-g:example.org");
        assert_eq!(suffixed.qq_of(&user), Some(QqNumber::new(5)));
    }

    #[test]
    fn test_portal_keys_and_chats_round_trip() {
        let chats = [
            ChatKey::Friend(QqNumber::new(10002)),
            ChatKey::Group(GroupNumber::new(346_167_134)),
            ChatKey::Discussion(Did::new(2_006_892_653)),
        ];
        for chat in chats {
            assert_eq!(chat_of(kind_of(&chat), &remote_id(&chat)), Some(chat));
        }
        assert_eq!(portal_key("a", &chats[0]), "friend:a:10002");
        // A group is one portal for every account in it.
        assert_eq!(portal_key("a", &chats[1]), portal_key("b", &chats[1]));
        assert_ne!(portal_key("a", &chats[2]), portal_key("b", &chats[2]));
        assert_eq!(chat_of("channel", "1"), None);
        assert_eq!(chat_of("friend", "x"), None);
    }

    #[test]
    fn test_txn_ids_are_stable_and_distinct() {
        assert_eq!(txn_id("p", "m", 0), txn_id("p", "m", 0));
        assert_ne!(txn_id("p", "m", 0), txn_id("p", "m", 1));
        assert_ne!(txn_id("p", "m", 0), txn_id("q", "m", 0));
        // The separator keeps ("ab", "c") and ("a", "bc") apart.
        assert_ne!(txn_id("ab", "c", 0), txn_id("a", "bc", 0));
    }
}
