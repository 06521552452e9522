//! Turning a message or notice into poll events for every online recipient, each with its own
//! session's uins (protocol §4), in the era form the options choose.
//!
//! Lock order everywhere: world (read, copied out and released) → sessions registry (read) →
//! one session's state. Nothing is held across an await.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use serde_json::Value;

use crate::emulator::options::EventForm;
use crate::emulator::session::{Liveness, Session, SessionState};
use crate::emulator::state::{Shared, read};
use crate::webqq::content::{Content, Segment};
use crate::webqq::event::{
    BuddyMessage, BuddyNotice, BuddylistChange, DiscuMessage, FriendRef, GroupMessage, KickMessage,
    PollEvent, RealNumber, SessMessage, SysGroupKind, SysGroupMessage,
};
use crate::webqq::{Did, GroupNumber, MsgId, QqNumber, Uin};

/// The reason text of a kick (protocol §4.5).
pub(crate) const KICK_REASON: &str =
    "您的帐号在另一地点登录，您已被迫下线。如有疑问，请登录 safe.qq.com 了解更多。";

/// A `reply_ip` like the captures' (10.x.x.x as an integer).
const REPLY_IP: u64 = 176_498_455;

/// Where a message goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Target {
    /// A buddy (friend) message to this person.
    Friend(QqNumber),
    /// A group message.
    Group(GroupNumber),
    /// A discussion message.
    Discussion(Did),
    /// A temporary chat to `to`, through a group or a discussion.
    Session {
        /// The recipient.
        to: QqNumber,
        /// The group the chat goes through (service_type 0), else the discussion.
        group: Option<GroupNumber>,
        /// The discussion (service_type 1).
        discussion: Option<Did>,
    },
}

/// Current Unix seconds.
pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// HTML-escapes text the way received content and names arrived (protocol §5.6).
pub(crate) fn escape(text: &str) -> String {
    html_escape::encode_text(text).into_owned()
}

/// Content as recipients see it: text escaped, sent-form pictures turned into received form.
pub(crate) fn received_form(content: &Content, image_server: &str) -> Content {
    let segments = content
        .segments
        .iter()
        .map(|s| match s {
            Segment::Text(t) => Segment::Text(escape(t)),
            Segment::GroupCface { name } => Segment::GroupPicture {
                name: name.clone(),
                file_id: u64::from(crc_like(name)),
                key: name.chars().take(16).collect(),
                server: image_server.to_owned(),
            },
            Segment::OffPicSend { file_path, .. } => {
                Segment::OffPic { file_path: file_path.clone(), success: true }
            }
            other => other.clone(),
        })
        .collect();
    Content { font: Some(content.font.clone().unwrap_or_default()), segments }
}

fn crc_like(s: &str) -> u32 {
    s.bytes().fold(2_166_136_261_u32, |h, b| (h ^ u32::from(b)).wrapping_mul(16_777_619))
}

fn next_msg_id(st: &mut SessionState) -> MsgId {
    st.next_msg_id += 1;
    MsgId::new(st.next_msg_id)
}

/// The online sessions of these accounts (current, alive).
fn online(shared: &Shared, accounts: &[QqNumber]) -> Vec<Arc<Session>> {
    let sessions = read(&shared.sessions);
    accounts
        .iter()
        .filter_map(|a| sessions.of_account(*a))
        .filter(|s| s.lock().liveness == Liveness::Alive)
        .collect()
}

/// Who receives a message from `from` to `target`, and the group/discussion details needed.
fn recipients(shared: &Shared, from: QqNumber, target: Target, echo: bool) -> Vec<QqNumber> {
    let world = read(&shared.world);
    let mut list: Vec<QqNumber> = match target {
        Target::Friend(to) => vec![to],
        Target::Session { to, .. } => vec![to],
        Target::Group(number) => world.group(number).map(|g| g.members.clone()).unwrap_or_default(),
        Target::Discussion(did) => {
            world.discussion(did).map(|d| d.members.clone()).unwrap_or_default()
        }
    };
    list.retain(|qq| *qq != from && world.account(*qq).is_some());
    if echo && world.account(from).is_some() {
        list.push(from);
    }
    list
}

/// Delivers a message to every online recipient; returns (account, msg_id) per session that
/// got it.
pub(crate) fn deliver_message(
    shared: &Shared,
    from: QqNumber,
    target: Target,
    content: &Content,
    time: u64,
    echo: bool,
) -> Vec<(QqNumber, u64)> {
    let options = shared.options();
    let form = options.event_form;
    let content = received_form(content, &image_server(shared));
    let accounts = recipients(shared, from, target, echo);
    let sessions = online(shared, &accounts);
    let seq = shared.seq.fetch_add(1, Ordering::Relaxed) + 1;
    let mut delivered = Vec::new();
    for session in &sessions {
        let event = {
            let mut st = session.lock();
            build_message(&mut st, session.account, from, target, content.clone(), time, form, seq)
                .map(|e| (e, st.next_msg_id))
        };
        if let Some((event, msg_id)) = event {
            let event = to_value(&event);
            tracing::debug!(account = %session.account, session = session.id, %event, "event queued");
            session.push_events([event]);
            delivered.push((session.account, msg_id));
        }
    }
    delivered
}

fn image_server(shared: &Shared) -> String {
    shared.image_base().trim_start_matches("http://").to_owned()
}

/// Serializes an event for the queue.
pub(crate) fn to_value(event: &PollEvent) -> Value {
    serde_json::to_value(event).unwrap_or(Value::Null)
}

#[allow(clippy::too_many_arguments)]
fn build_message(
    st: &mut SessionState,
    own: QqNumber,
    from: QqNumber,
    target: Target,
    content: Content,
    time: u64,
    form: EventForm,
    seq: u64,
) -> Option<PollEvent> {
    let fat = form == EventForm::Webqq2013;
    let msg_id = next_msg_id(st);
    let msg_id2 = fat.then(|| MsgId::new(msg_id.get().wrapping_mul(7) % 1_000_000));
    let reply_ip = fat.then_some(REPLY_IP);
    let to_uin = st.uins.uin(own);
    let from_uin = st.uins.uin(from);
    Some(match target {
        Target::Friend(_) => PollEvent::Message(BuddyMessage {
            msg_id,
            from_uin,
            to_uin,
            msg_id2,
            msg_type: Some(if fat { 9 } else { 0 }),
            reply_ip,
            time,
            content,
        }),
        Target::Group(number) => {
            let gid = st.uins.gid(number);
            // SmartQQ put the gid into group_code (protocol §4.2, the "fake group code").
            let code =
                if fat { st.uins.code(number) } else { crate::webqq::GroupCode::new(gid.get()) };
            PollEvent::GroupMessage(GroupMessage {
                msg_id,
                from_uin: gid,
                to_uin,
                msg_id2,
                msg_type: Some(if fat { 43 } else { 0 }),
                reply_ip,
                group_code: code,
                send_uin: from_uin,
                seq: fat.then_some(seq),
                time,
                info_seq: fat.then_some(number),
                t_gcode: None,
                content,
            })
        }
        Target::Discussion(did) => PollEvent::DiscuMessage(DiscuMessage {
            msg_id,
            // 2013: the constant 10000 (system); SmartQQ form assumed to carry the did.
            from_uin: Uin::new(if fat { 10000 } else { did.get() }),
            to_uin,
            msg_id2,
            msg_type: Some(if fat { 42 } else { 0 }),
            reply_ip,
            did,
            send_uin: from_uin,
            seq: fat.then_some(seq),
            time,
            info_seq: fat.then_some(2),
            content,
        }),
        Target::Session { group, discussion, .. } => {
            let (id, service_type) = match (group, discussion) {
                (Some(g), _) => (st.uins.gid(g).get(), 0),
                (None, Some(d)) => (d.get(), 1),
                (None, None) => return None,
            };
            PollEvent::SessMessage(SessMessage {
                msg_id,
                from_uin,
                to_uin,
                msg_id2,
                msg_type: Some(140),
                reply_ip,
                time,
                id: Some(id),
                ruin: Some(from),
                service_type: Some(service_type),
                flags: Some(serde_json::json!({"text":1,"pic":1,"file":1,"audio":1,"video":1})),
                content,
            })
        }
    })
}

/// Sends `input_notify` (typing) or `shake_message` from `from` to `to` if `to` is online.
pub(crate) fn deliver_notice(shared: &Shared, from: QqNumber, to: QqNumber, shake: bool) -> bool {
    let Some(session) = online(shared, &[to]).pop() else { return false };
    let event = {
        let mut st = session.lock();
        let notice = BuddyNotice {
            msg_id: next_msg_id(&mut st),
            from_uin: st.uins.uin(from),
            to_uin: st.uins.uin(to),
            msg_id2: Some(MsgId::new(st.next_msg_id.wrapping_mul(31) % 4_000_000_000)),
            msg_type: Some(if shake { 9 } else { 121 }),
            reply_ip: Some(if shake { REPLY_IP } else { 4_294_967_295 }),
            time: None,
        };
        if shake { PollEvent::ShakeMessage(notice) } else { PollEvent::InputNotify(notice) }
    };
    session.push_events([to_value(&event)]);
    true
}

/// Tells the online friends of `account` its new status (protocol §4.6): on login2, logout2,
/// change_status2 and kicks.
pub(crate) fn deliver_status_change(shared: &Shared, account: QqNumber, status: &str) {
    let friends: Vec<QqNumber> = read(&shared.world)
        .account(account)
        .map(|a| a.friends.iter().map(|f| f.qq).collect())
        .unwrap_or_default();
    for session in online(shared, &friends) {
        let event = {
            let mut st = session.lock();
            PollEvent::BuddiesStatusChange(crate::webqq::event::BuddiesStatusChange {
                uin: st.uins.uin(account),
                status: status.to_owned(),
                client_type: Some(41),
            })
        };
        session.push_events([to_value(&event)]);
    }
}

/// Tells an online account that `friend` was added to its list (protocol §4.10).
pub(crate) fn deliver_buddylist_change(
    shared: &Shared,
    account: QqNumber,
    friend: QqNumber,
    category: u32,
) {
    let Some(session) = online(shared, &[account]).pop() else { return };
    let event = {
        let mut st = session.lock();
        PollEvent::BuddylistChange(BuddylistChange {
            added_friends: vec![FriendRef {
                groupid: Some(i64::from(category)),
                uin: st.uins.uin(friend),
            }],
            removed_friends: Vec::new(),
        })
    };
    session.push_events([to_value(&event)]);
}

/// Tells the online accounts `to` (all member accounts when `None`) that `new_member` joined
/// the group (protocol §4.9; when `new_member` is the recipient, it joined a new group).
pub(crate) fn deliver_group_join(
    shared: &Shared,
    number: GroupNumber,
    new_member: QqNumber,
    to: Option<QqNumber>,
) {
    let (members, owner, owner_nick) = {
        let world = read(&shared.world);
        let Some(group) = world.group(number) else { return };
        let members: Vec<QqNumber> = group
            .members
            .iter()
            .copied()
            .filter(|m| world.account(*m).is_some() && to.is_none_or(|t| t == *m))
            .collect();
        (members, group.owner, escape(&world.nick(group.owner)))
    };
    for session in online(shared, &members) {
        let event = {
            let mut st = session.lock();
            PollEvent::SysGroupMessage(SysGroupMessage {
                msg_id: next_msg_id(&mut st),
                from_uin: st.uins.gid(number),
                to_uin: st.uins.uin(session.account),
                msg_id2: Some(MsgId::new(st.next_msg_id.wrapping_mul(13) % 1_000_000)),
                msg_type: Some(33),
                reply_ip: Some(REPLY_IP),
                gcode: Some(st.uins.code(number)),
                t_gcode: Some(number),
                kind: SysGroupKind::GroupJoin {
                    op_type: Some(3),
                    new_member: st.uins.uin(new_member),
                    t_new_member: Some(RealNumber::Blank),
                    admin_uin: Some(st.uins.uin(owner)),
                    admin_nick: Some(owner_nick.clone()),
                },
            })
        };
        session.push_events([to_value(&event)]);
    }
}

/// The kick_message event for a session (protocol §4.5).
pub(crate) fn kick_event(st: &mut SessionState, own: QqNumber) -> Value {
    let msg_id = next_msg_id(st);
    to_value(&PollEvent::KickMessage(KickMessage {
        msg_id: Some(msg_id),
        from_uin: Some(Uin::new(10000)),
        to_uin: Some(st.uins.uin(own)),
        msg_id2: Some(MsgId::new(msg_id.get() + 1)),
        msg_type: Some(48),
        reply_ip: Some(0),
        show_reason: Some(1),
        reason: Some(KICK_REASON.to_owned()),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_received_form_escapes_and_converts_pictures() {
        let sent = Content::decode_sent(
            r#"["a<b & c",["cface","group","ABC.jPg"],["offpic","/p1","x.png",12],["font",{"name":"宋体","size":10,"style":[0,0,0],"color":"000000"}]]"#,
        )
        .unwrap();
        let got = received_form(&sent, "127.0.0.1:80").to_received();
        assert_eq!(got[0][0], "font");
        assert_eq!(got[1], "a&lt;b &amp; c");
        assert_eq!(got[2][1]["name"], "ABC.jPg");
        assert_eq!(got[2][1]["server"], "127.0.0.1:80");
        assert_eq!(got[3][1]["file_path"], "/p1");
    }
}
