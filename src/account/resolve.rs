//! [`Resolver`]: turns poll2 events, addressed by per-session uins and gids, into [`QqEvent`]s
//! keyed by permanent QQ and group numbers (ARCHITECTURE.md, Identity), for the bridge.
//!
//! Pure: when a number or a name is missing it answers with the lookup to make
//! ([`Resolution::Lookup`]); the account actor makes it and feeds the answer back with
//! `learn_*`. A lookup that fails is remembered, and the event then goes out without that fact
//! (a message of an unidentified member is still delivered, never dropped).

use std::collections::{BTreeMap, BTreeSet};

use crate::account::send_queue::ChatKey;
use crate::account::state::AccountState;
use crate::webqq::content::{Content, unescape_entities};
use crate::webqq::directory::Directory;
use crate::webqq::event::{PollEvent, RealNumber, SysGroupKind, SysGroupMessage};
use crate::webqq::{Gid, GroupCode, GroupNumber, MsgId, QqNumber, Uin};

/// A QQ message with permanent ids. Serialisable: the bridge persists it between poll2 and
/// Matrix (its inbox).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct QqMessage {
    /// The chat it belongs to.
    pub chat: ChatKey,
    /// The chat's name (friend's markname or nick, group or discussion name), when known.
    pub chat_name: Option<String>,
    /// Who wrote it; `None` when the member's number could not be learnt.
    pub sender: Option<QqNumber>,
    /// The writer's name to show (group card, markname or nick), possibly empty.
    pub sender_name: String,
    /// Written by the account itself (another QQ client, or our own send echoed back).
    pub from_self: bool,
    /// Stable dedupe key of this message within its chat (sender, msg_id and time).
    pub key: String,
    /// When QQ says it was sent, Unix seconds.
    pub time: u64,
    /// The content.
    pub content: Content,
    /// Where it came from in this session, for fetching its pictures later (opaque to the
    /// bridge; valid while the session lasts).
    pub origin: Origin,
}

/// The per-session coordinates of a received message that picture downloads need.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Origin {
    /// The sender's uin.
    pub from: Uin,
    /// The message's id (custom faces are fetched by it).
    pub msg_id: MsgId,
    /// For a group picture: kind 0 and the group code; for a discussion: kind 1 and the did.
    pub chat: Option<(u64, u64)>,
}

/// A resolved QQ event for the bridge.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum QqEvent {
    /// A message in a friend chat, group or discussion.
    Message(QqMessage),
    /// Someone is typing to the account (input_notify).
    Typing {
        /// The friend.
        from: QqNumber,
    },
    /// The account was logged in elsewhere (kick_message).
    Kicked {
        /// QQ's reason text.
        reason: String,
    },
    /// Someone joined a group (sys_g_msg `group_join`, protocol §4.9).
    MemberJoined(Membership),
    /// Someone left a group or was removed from it (sys_g_msg `group_leave`, protocol §4.9).
    MemberLeft(Membership),
    /// A friend's online status changed (buddies_status_change, protocol §4.6).
    Presence {
        /// The friend.
        friend: QqNumber,
        /// QQ's status word (`online`, `away`, `busy`, `silent`, `hidden`, `callme`, `offline`).
        status: String,
    },
    /// The account's own state changed (told by the account manager, not by poll2).
    AccountState {
        /// The new state.
        state: AccountState,
        /// Why, when known.
        reason: Option<String>,
    },
    /// The account was not polled from `from` to `to` (unix seconds, RELIABILITY.md §1.7): QQ
    /// messages sent to it then may be missing (told by the account manager, not by poll2).
    PollGap {
        /// The last successful poll before the gap.
        from: u64,
        /// The first one after it.
        to: u64,
    },
    /// An event the bridge cannot carry (unknown group, temporary chat, file…), with why.
    Unbridgeable {
        /// The poll_type.
        poll_type: String,
        /// A sentence for the account owner.
        reason: String,
    },
}

/// A change of a group's membership.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Membership {
    /// The group.
    pub group: GroupNumber,
    /// The group's name, when the group list knows it.
    pub group_name: Option<String>,
    /// The member who joined or left.
    pub member: QqNumber,
    /// The member's name when known (group card or nick), else empty.
    pub name: String,
    /// The member is the account itself (it joined a new group, or left or lost one).
    pub is_self: bool,
    /// For a removal by an admin (`op_type` 3): the admin's nick, or `"an admin"`.
    pub removed_by: Option<String>,
}

/// What [`Resolver::resolve`] needs before it can answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lookup {
    /// The QQ number behind a uin (get_friend_uin2, kind 1).
    Person(Uin),
    /// The member names and cards of a group (get_group_info_ext2).
    GroupMembers(Gid, GroupCode),
    /// A group's permanent number (get_friend_uin2, kind 4), when the directory has none.
    GroupNumber(Gid),
}

/// The answer of [`Resolver::resolve`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[expect(clippy::large_enum_variant, reason = "short-lived; boxing would allocate per event")]
pub enum Resolution {
    /// Done: the event to hand on, if it is one the bridge cares about.
    Done(Option<QqEvent>),
    /// Make this lookup, `learn_*` its answer (or `lookup_failed`), then resolve again.
    Lookup(Lookup),
}

/// One session's id tables plus what was learnt during the session.
#[derive(Clone, Debug, Default)]
pub struct Resolver {
    directory: Directory,
    self_qq: Option<QqNumber>,
    names: BTreeMap<Uin, String>,
    groups_loaded: BTreeSet<Gid>,
    failed: BTreeSet<Uin>,
    /// Groups whose number lookup failed: their messages are unbridgeable.
    numberless: BTreeSet<Gid>,
}

impl Resolver {
    /// A resolver over a freshly loaded directory of the account `self_qq`.
    pub fn new(directory: Directory, self_qq: QqNumber) -> Self {
        Resolver { directory, self_qq: Some(self_qq), ..Resolver::default() }
    }

    /// The directory (for the sender).
    pub fn directory(&self) -> &Directory {
        &self.directory
    }

    /// Records a group's number learnt by a lookup.
    pub fn learn_group_number(&mut self, gid: Gid, number: GroupNumber) {
        self.directory.learn_group_number(gid, number);
    }

    /// Records a person's number learnt by a lookup.
    pub fn learn_person(&mut self, uin: Uin, qq: QqNumber) {
        self.directory.learn_person(uin, qq);
    }

    /// Records a group's member names (card first, else nick) from get_group_info_ext2.
    pub fn learn_group_members(
        &mut self,
        gid: Gid,
        names: impl IntoIterator<Item = (Uin, String)>,
    ) {
        self.groups_loaded.insert(gid);
        self.names.extend(names);
    }

    /// Records that a lookup failed: the event goes out without that fact.
    pub fn lookup_failed(&mut self, lookup: Lookup) {
        match lookup {
            Lookup::Person(uin) => {
                self.failed.insert(uin);
            }
            Lookup::GroupMembers(gid, _) => {
                self.groups_loaded.insert(gid);
            }
            Lookup::GroupNumber(gid) => {
                self.numberless.insert(gid);
            }
        }
    }

    /// The number behind `uin`, the lookup to make, or `None` if the lookup failed before.
    fn person(&self, uin: Uin) -> Result<Option<QqNumber>, Lookup> {
        match self.directory.qq_of(uin) {
            Some(qq) => Ok(Some(qq)),
            None if self.failed.contains(&uin) => Ok(None),
            None => Err(Lookup::Person(uin)),
        }
    }

    /// Resolves one event.
    pub fn resolve(&self, event: &PollEvent) -> Resolution {
        match self.try_resolve(event) {
            Ok(event) => Resolution::Done(event),
            Err(lookup) => Resolution::Lookup(lookup),
        }
    }

    fn try_resolve(&self, event: &PollEvent) -> Result<Option<QqEvent>, Lookup> {
        Ok(Some(match event {
            PollEvent::Message(m) => {
                let friend = self.person(m.from_uin)?;
                let from_self = friend.is_some() && friend == self.self_qq;
                // A message written on another client of ours comes from our own uin (protocol
                // §7.6); its chat is the friend it went to.
                let peer = if from_self { self.person(m.to_uin)? } else { friend };
                let Some(peer) = peer else {
                    return Ok(Some(unbridgeable(
                        event,
                        "a message from a friend whose QQ number is unknown",
                    )));
                };
                let chat_uin = if from_self { m.to_uin } else { m.from_uin };
                let name = self.directory.display_name(chat_uin).map(str::to_owned);
                QqEvent::Message(QqMessage {
                    chat: ChatKey::Friend(peer),
                    sender_name: self
                        .directory
                        .display_name(m.from_uin)
                        .unwrap_or_default()
                        .to_owned(),
                    chat_name: name,
                    sender: friend,
                    from_self,
                    key: message_key(friend, m.from_uin, m.msg_id, m.time),
                    time: m.time,
                    content: m.content.clone(),
                    origin: Origin { from: m.from_uin, msg_id: m.msg_id, chat: None },
                })
            }
            PollEvent::GroupMessage(m) => {
                let Some(group) = self.directory.group(m.from_uin) else {
                    return Ok(Some(unbridgeable(
                        event,
                        "a message from a group not in the group list",
                    )));
                };
                let Some(number) = group.number.or(m.info_seq).or(m.t_gcode) else {
                    // The number is the portal's key: without it the message has nowhere to
                    // go, so it is asked for (the directory's own lookup may have failed).
                    if !self.numberless.contains(&m.from_uin) {
                        return Err(Lookup::GroupNumber(m.from_uin));
                    }
                    return Ok(Some(unbridgeable(event, "a group whose number is unknown")));
                };
                if !self.groups_loaded.contains(&m.from_uin)
                    && self.directory.display_name(m.send_uin).is_none()
                {
                    return Err(Lookup::GroupMembers(m.from_uin, group.code));
                }
                let member = Member { uin: m.send_uin, msg_id: m.msg_id, time: m.time };
                let chat =
                    (ChatKey::Group(number), Some(group.name.clone()), (0, m.group_code.get()));
                self.member_message(member, chat, &m.content)?
            }
            PollEvent::DiscuMessage(m) => {
                let member = Member { uin: m.send_uin, msg_id: m.msg_id, time: m.time };
                let chat_name = self.directory.discussions.get(&m.did).map(|d| d.name.clone());
                let chat = (ChatKey::Discussion(m.did), chat_name, (1, m.did.get()));
                self.member_message(member, chat, &m.content)?
            }
            PollEvent::InputNotify(n) => match self.person(n.from_uin)? {
                Some(from) => QqEvent::Typing { from },
                None => return Ok(None),
            },
            PollEvent::KickMessage(k) => QqEvent::Kicked {
                reason: k.shown_reason().unwrap_or("logged in elsewhere").to_owned(),
            },
            PollEvent::SysGroupMessage(m) => match self.membership(m)? {
                Some(event) => event,
                None => return Ok(None),
            },
            PollEvent::BuddiesStatusChange(change) => match self.person(change.uin)? {
                Some(friend) => QqEvent::Presence { friend, status: change.status.clone() },
                None => return Ok(None),
            },
            PollEvent::SessMessage(_) => {
                unbridgeable(event, "a temporary chat message (QQ cannot answer it from here)")
            }
            PollEvent::NotifyOffFile(_) | PollEvent::PushOffFile(_) | PollEvent::FileMessage(_) => {
                unbridgeable(event, "a file transfer, which WebQQ cannot bridge")
            }
            PollEvent::ShakeMessage(n) => match self.person(n.from_uin)? {
                Some(from) => QqEvent::Message(QqMessage {
                    chat: ChatKey::Friend(from),
                    chat_name: self.directory.display_name(n.from_uin).map(str::to_owned),
                    sender: Some(from),
                    sender_name: self.name(n.from_uin),
                    from_self: false,
                    key: format!("shake:{from}:{}", n.msg_id),
                    time: crate::webqq::session::unix_now(),
                    content: Content::text("[shakes the window]"),
                    origin: Origin { from: n.from_uin, msg_id: n.msg_id, chat: None },
                }),
                None => return Ok(None),
            },
            _ => return Ok(None),
        }))
    }

    /// A message a member wrote in a group or discussion: `chat` is its key, name and the
    /// (kind, id) picture downloads use.
    fn member_message(
        &self,
        member: Member,
        chat: (ChatKey, Option<String>, (u64, u64)),
        content: &Content,
    ) -> Result<QqEvent, Lookup> {
        let sender = self.person(member.uin)?;
        let (chat, chat_name, picture_chat) = chat;
        Ok(QqEvent::Message(QqMessage {
            chat,
            chat_name,
            sender_name: self.name(member.uin),
            from_self: sender.is_some() && sender == self.self_qq,
            sender,
            key: message_key(sender, member.uin, member.msg_id, member.time),
            time: member.time,
            content: content.clone(),
            origin: Origin { from: member.uin, msg_id: member.msg_id, chat: Some(picture_chat) },
        }))
    }

    /// A `group_join` or `group_leave` as a membership change; `None` for the other sub-types,
    /// or when the group's or the member's number cannot be learnt.
    fn membership(&self, m: &SysGroupMessage) -> Result<Option<QqEvent>, Lookup> {
        let (uin, real, removed_by, joined) = match &m.kind {
            SysGroupKind::GroupJoin { new_member, t_new_member, .. } => {
                (*new_member, *t_new_member, None, true)
            }
            SysGroupKind::GroupLeave { op_type, old_member, t_old_member, admin_nick, .. } => {
                // op_type 3 is a removal by an admin, 2 a member leaving (protocol §4.9).
                let removed_by = (*op_type == Some(3)).then(|| {
                    admin_nick
                        .as_deref()
                        .map(unescape_entities)
                        .filter(|n| !n.is_empty())
                        .unwrap_or_else(|| "an admin".to_owned())
                });
                (*old_member, *t_old_member, removed_by, false)
            }
            _ => return Ok(None),
        };
        let known = self.directory.group(m.from_uin);
        // A group joined just now is not in this session's group list yet: t_gcode names it.
        let Some(group) = known.and_then(|g| g.number).or(m.t_gcode) else { return Ok(None) };
        let is_self = uin == m.to_uin;
        let member = match (is_self, real.and_then(RealNumber::number)) {
            (true, _) => self.self_qq,
            (false, Some(number)) => Some(number),
            (false, None) => self.person(uin)?,
        };
        let Some(member) = member else { return Ok(None) };
        let change = Membership {
            group,
            group_name: known.map(|g| g.name.clone()),
            member,
            name: self.name(uin),
            is_self,
            removed_by,
        };
        Ok(Some(if joined { QqEvent::MemberJoined(change) } else { QqEvent::MemberLeft(change) }))
    }

    /// The name to show for a person: a friend's markname or nick, else the group card or
    /// nick. A friend keeps one name in every chat, so their ghost's profile (global on Matrix)
    /// does not flip between the friend chat and each group card.
    fn name(&self, uin: Uin) -> String {
        self.directory
            .display_name(uin)
            .or_else(|| self.names.get(&uin).map(String::as_str))
            .unwrap_or_default()
            .to_owned()
    }
}

/// Who wrote a group or discussion message, and its id and time.
#[derive(Clone, Copy)]
struct Member {
    uin: Uin,
    msg_id: MsgId,
    time: u64,
}

/// The dedupe key of a message: poll2 may deliver one twice (protocol §7.4); `msg_id` is a
/// per-sender sequence, so sender and time go with it. Without a number the per-session uin
/// stands in (the key then only holds within the session).
fn message_key(sender: Option<QqNumber>, uin: Uin, msg_id: MsgId, time: u64) -> String {
    match sender {
        Some(qq) => format!("{qq}:{msg_id}:{time}"),
        None => format!("uin{uin}:{msg_id}:{time}"),
    }
}

fn unbridgeable(event: &PollEvent, reason: &str) -> QqEvent {
    QqEvent::Unbridgeable { poll_type: event.poll_type().to_owned(), reason: reason.to_owned() }
}

#[cfg(test)]
mod tests;
