//! The control operations behind `/_emulator/…`, as methods of [`Emulator`] so in-process tests
//! drive the emulator without HTTP: build the world, make QQ-side people send, scan QR codes,
//! read what accounts sent, script faults, inspect state.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::time::Instant;

use crate::emulator::auth::QrState;
use crate::emulator::deliver::{
    Target, deliver_buddylist_change, deliver_group_join, deliver_message, deliver_notice, escape,
    to_value, unix_now,
};
use crate::emulator::faults::FaultSpec;
use crate::emulator::images::sample_picture;
use crate::emulator::options::EmulatorOptions;
use crate::emulator::session::{Liveness, lock};
use crate::emulator::state::{Counter, Picture, SentMessage, read, write};
use crate::emulator::world::{Account, Discussion, Friend, Group, Person, WorldError};
use crate::emulator::{Emulator, routes};
use crate::webqq::content::{Content, Segment};
use crate::webqq::event::{
    BuddiesStatusChange, PollEvent, RealNumber, SysGroupKind, SysGroupMessage,
};
use crate::webqq::{Did, GroupNumber, MsgId, QqNumber, Secret};

/// Why a control operation was refused (the HTTP API answers 400 with the message).
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// The world refused the change.
    #[error(transparent)]
    World(#[from] WorldError),
    /// The account is not online (no live session).
    #[error("account {0} is not online")]
    NotOnline(u64),
    /// The number is not an account.
    #[error("{0} is not an account")]
    NotAnAccount(u64),
    /// No QR code is waiting to be scanned or confirmed.
    #[error("no pending qr code")]
    NoPendingQr,
    /// The request is inconsistent (e.g. a group message without `group`).
    #[error("{0}")]
    Invalid(String),
}

/// The kind of a control-API message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageKind {
    /// From a friend to the account.
    Friend,
    /// From a member to a group.
    Group,
    /// From a member to a discussion.
    Discussion,
    /// A temporary chat through `group` or `discussion`.
    Session,
}

/// `POST /_emulator/messages`: a QQ-side person sends something.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostMessage {
    /// The account that must see it (for groups and discussions, any member account).
    pub account: QqNumber,
    /// What kind of message.
    pub kind: MessageKind,
    /// The sender.
    pub from: QqNumber,
    /// The group (group and session kinds).
    #[serde(default)]
    pub group: Option<GroupNumber>,
    /// The discussion (discussion and session kinds).
    #[serde(default)]
    pub discussion: Option<Did>,
    /// The text.
    #[serde(default)]
    pub text: String,
    /// A face id appended after the text.
    #[serde(default)]
    pub face: Option<u32>,
    /// Append a generated picture.
    #[serde(default)]
    pub image: bool,
}

/// The answer to a posted message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Posted {
    /// The msg_id the event carries in `account`'s session (0 if it was not online).
    pub msg_id: u64,
    /// The event's `time`.
    pub time: u64,
    /// How many online sessions received it.
    pub delivered: usize,
}

/// One session in the state report.
#[derive(Clone, Debug, Serialize)]
pub struct SessionInfo {
    /// The account.
    pub account: u64,
    /// The client id from login2.
    pub clientid: u64,
    /// The channel host login2 came through.
    pub channel_host: String,
    /// Unix seconds of creation.
    pub created: u64,
    /// Unix seconds of the last poll (or creation).
    pub last_poll: u64,
    /// `alive`, `kicked` or `dead`.
    pub state: &'static str,
    /// Events waiting.
    pub queued: usize,
}

/// `GET /_emulator/state`.
#[derive(Clone, Debug, Serialize)]
pub struct EmulatorState {
    /// Accounts with a live session.
    pub online: Vec<u64>,
    /// Every session.
    pub sessions: Vec<SessionInfo>,
    /// Requests and faults per endpoint.
    pub counters: BTreeMap<String, Counter>,
    /// Pending QR codes: age in seconds and state.
    pub pending_qr: Vec<Value>,
    /// Active faults.
    pub faults: Vec<Value>,
    /// The text of each pending captcha, by QQ number (what a person would read off the image).
    pub captchas: BTreeMap<String, String>,
}

fn unix(t: std::time::SystemTime) -> u64 {
    t.duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

impl Emulator {
    /// The current options.
    pub fn options(&self) -> EmulatorOptions {
        self.shared.options()
    }

    /// Replaces the options (effective for the next requests; held polls keep their deadline).
    pub fn set_options(&self, options: EmulatorOptions) {
        *write(&self.shared.options) = options;
    }

    /// Adds a person.
    pub fn add_person(&self, person: Person) -> Result<(), ControlError> {
        Ok(write(&self.shared.world).add_person(person)?)
    }

    /// Adds an account (its person must exist).
    pub fn add_account(&self, account: Account) -> Result<(), ControlError> {
        Ok(write(&self.shared.world).add_account(account)?)
    }

    /// Changes an account's password; sessions already open stay open.
    pub fn set_password(&self, qq: QqNumber, password: Secret<String>) -> Result<(), ControlError> {
        Ok(write(&self.shared.world).set_password(qq, password)?)
    }

    /// Adds a friend to an account (mutual when both are accounts); online accounts get a
    /// `buddylist_change` (protocol §4.10).
    pub fn add_friend(&self, account: QqNumber, friend: Friend) -> Result<(), ControlError> {
        let (qq, category) = (friend.qq, friend.category);
        let added = write(&self.shared.world).add_friend(account, friend)?;
        if added {
            deliver_buddylist_change(&self.shared, account, qq, category);
            deliver_buddylist_change(&self.shared, qq, account, 0);
        }
        Ok(())
    }

    /// Adds a group; online member accounts get `sys_g_msg` group_join for themselves (§4.9).
    pub fn add_group(&self, group: Group) -> Result<(), ControlError> {
        let number = group.number;
        let members = group.members.clone();
        write(&self.shared.world).add_group(group)?;
        for m in members {
            deliver_group_join(&self.shared, number, m, Some(m));
        }
        Ok(())
    }

    /// Adds a member to a group; every online member account gets group_join.
    pub fn join_group(&self, number: GroupNumber, qq: QqNumber) -> Result<(), ControlError> {
        if write(&self.shared.world).join_group(number, qq)? {
            deliver_group_join(&self.shared, number, qq, None);
        }
        Ok(())
    }

    /// Removes a member from a group: every online member account, the leaver included, gets
    /// `sys_g_msg` group_leave (protocol §4.9), op_type 3 with the admin when `by` removed them,
    /// else 2.
    pub fn leave_group(
        &self,
        number: GroupNumber,
        qq: QqNumber,
        by: Option<QqNumber>,
    ) -> Result<(), ControlError> {
        let accounts: Vec<QqNumber> = {
            let mut world = write(&self.shared.world);
            let members = world.group(number).map(|g| g.members.clone()).unwrap_or_default();
            if let Some(admin) = by
                && !members.contains(&admin)
            {
                return Err(ControlError::Invalid(format!("{admin} is not in group {number}")));
            }
            if !world.leave_group(number, qq)? {
                return Ok(());
            }
            members.into_iter().filter(|m| world.account(*m).is_some()).collect()
        };
        let admin_nick = by.map(|admin| escape(&read(&self.shared.world).nick(admin)));
        for account in accounts {
            let Some(session) = read(&self.shared.sessions).of_account(account) else { continue };
            let event = {
                let mut st = session.lock();
                if st.liveness != Liveness::Alive {
                    continue;
                }
                st.next_msg_id += 1;
                let msg_id = MsgId::new(st.next_msg_id);
                PollEvent::SysGroupMessage(SysGroupMessage {
                    msg_id,
                    from_uin: st.uins.gid(number),
                    to_uin: st.uins.uin(account),
                    msg_id2: Some(MsgId::new(st.next_msg_id.wrapping_mul(13) % 1_000_000)),
                    msg_type: Some(34),
                    reply_ip: Some(176_498_455),
                    gcode: Some(st.uins.code(number)),
                    t_gcode: Some(number),
                    kind: SysGroupKind::GroupLeave {
                        op_type: Some(if by.is_some() { 3 } else { 2 }),
                        old_member: st.uins.uin(qq),
                        t_old_member: Some(RealNumber::Blank),
                        admin_uin: by.map(|admin| st.uins.uin(admin)),
                        t_admin_uin: by.map(|_| RealNumber::Blank),
                        admin_nick: admin_nick.clone(),
                    },
                })
            };
            session.push_events([to_value(&event)]);
        }
        Ok(())
    }

    /// `from`'s online status changes as `account` sees it: a buddies_status_change (protocol
    /// §4.6) in the account's session, whatever `from` is (a person without an account too).
    pub fn status_change(
        &self,
        account: QqNumber,
        from: QqNumber,
        status: &str,
    ) -> Result<(), ControlError> {
        let session = read(&self.shared.sessions)
            .of_account(account)
            .ok_or(ControlError::NotOnline(account.get()))?;
        let event = {
            let mut st = session.lock();
            PollEvent::BuddiesStatusChange(BuddiesStatusChange {
                uin: st.uins.uin(from),
                status: status.to_owned(),
                client_type: Some(1),
            })
        };
        session.push_events([to_value(&event)]);
        Ok(())
    }

    /// Adds a discussion.
    pub fn add_discussion(&self, discussion: Discussion) -> Result<(), ControlError> {
        Ok(write(&self.shared.world).add_discussion(discussion)?)
    }

    fn picture(&self, kind: MessageKind) -> Segment {
        let bytes = sample_picture("HI");
        if kind == MessageKind::Friend || kind == MessageKind::Session {
            let file_path = routes::new_file_path();
            lock(&self.shared.pictures)
                .put(file_path.clone(), Picture { content_type: "image/png", bytes });
            Segment::OffPic { file_path, success: true }
        } else {
            let guid = crate::emulator::session::random_hex(32).to_uppercase();
            let name = format!(
                "{{{}-{}-{}-{}-{}}}.png",
                guid.get(0..8).unwrap_or_default(),
                guid.get(8..12).unwrap_or_default(),
                guid.get(12..16).unwrap_or_default(),
                guid.get(16..20).unwrap_or_default(),
                guid.get(20..32).unwrap_or_default()
            );
            lock(&self.shared.pictures)
                .put(name.clone(), Picture { content_type: "image/png", bytes });
            Segment::GroupCface { name }
        }
    }

    /// A QQ-side person sends a message; every online recipient account sees it in its poll.
    pub fn post_message(&self, message: PostMessage) -> Result<Posted, ControlError> {
        let target = {
            let world = read(&self.shared.world);
            if world.account(message.account).is_none() {
                return Err(ControlError::NotAnAccount(message.account.get()));
            }
            if world.person(message.from).is_none() {
                return Err(ControlError::Invalid(format!("unknown person {}", message.from)));
            }
            let member_of_group = |g: GroupNumber| {
                world.group(g).is_some_and(|g| {
                    g.members.contains(&message.from) && g.members.contains(&message.account)
                })
            };
            let member_of_discussion = |d: Did| {
                world.discussion(d).is_some_and(|d| {
                    d.members.contains(&message.from) && d.members.contains(&message.account)
                })
            };
            match message.kind {
                MessageKind::Friend => Target::Friend(message.account),
                MessageKind::Group => match message.group {
                    Some(g) if member_of_group(g) => Target::Group(g),
                    _ => return Err(ControlError::Invalid("group: both must be members".into())),
                },
                MessageKind::Discussion => match message.discussion {
                    Some(d) if member_of_discussion(d) => Target::Discussion(d),
                    _ => {
                        return Err(ControlError::Invalid(
                            "discussion: both must be members".into(),
                        ));
                    }
                },
                MessageKind::Session => match (message.group, message.discussion) {
                    (Some(g), _) if member_of_group(g) => {
                        Target::Session { to: message.account, group: Some(g), discussion: None }
                    }
                    (None, Some(d)) if member_of_discussion(d) => {
                        Target::Session { to: message.account, group: None, discussion: Some(d) }
                    }
                    _ => {
                        return Err(ControlError::Invalid(
                            "session: needs a shared group or discussion".into(),
                        ));
                    }
                },
            }
        };
        let mut content = Content::default();
        if !message.text.is_empty() {
            content.push_text(message.text.clone());
        }
        if let Some(face) = message.face {
            content.push_face(face);
        }
        if message.image {
            content.push(self.picture(message.kind));
        }
        if content.is_empty() {
            content.push_text(String::new());
        }
        let time = unix_now();
        // A message from the account's own number was written on another client of that
        // account: its session sees it too, as real QQ shows the account's own messages.
        let own = message.from == message.account;
        let delivered = deliver_message(&self.shared, message.from, target, &content, time, own);
        let msg_id = delivered.iter().find(|(a, _)| *a == message.account).map_or(0, |(_, id)| *id);
        Ok(Posted { msg_id, time, delivered: delivered.len() })
    }

    /// Queues a raw poll event for an online account (decoder tests).
    pub fn push_event(&self, account: QqNumber, event: Value) -> Result<(), ControlError> {
        let session = read(&self.shared.sessions)
            .of_account(account)
            .ok_or(ControlError::NotOnline(account.get()))?;
        session.push_events([event]);
        Ok(())
    }

    /// `from` starts typing (or shakes the window) towards an online account.
    pub fn typing(
        &self,
        account: QqNumber,
        from: QqNumber,
        shake: bool,
    ) -> Result<(), ControlError> {
        if deliver_notice(&self.shared, from, account, shake) {
            Ok(())
        } else {
            Err(ControlError::NotOnline(account.get()))
        }
    }

    /// Kicks an account's session: a kick_message, then the session is dead (protocol §4.5).
    pub fn kick(&self, account: QqNumber) -> Result<(), ControlError> {
        let session = read(&self.shared.sessions)
            .of_account(account)
            .ok_or(ControlError::NotOnline(account.get()))?;
        routes::kick(&self.shared, &session);
        Ok(())
    }

    fn qr_step(&self, qq: QqNumber, confirm: bool) -> Result<(), ControlError> {
        if read(&self.shared.world).account(qq).is_none() {
            return Err(ControlError::NotAnAccount(qq.get()));
        }
        let lifetime = read(&self.shared.options).qr_lifetime;
        let mut login = lock(&self.shared.login);
        let code =
            login.newest_pending_qr(Instant::now(), lifetime).ok_or(ControlError::NoPendingQr)?;
        code.state = if confirm { QrState::Confirmed(qq) } else { QrState::Scanned(qq) };
        Ok(())
    }

    /// A person scans the newest pending QR code (ptqrlogin then answers 67).
    pub fn scan_qr(&self, qq: QqNumber) -> Result<(), ControlError> {
        self.qr_step(qq, false)
    }

    /// A person confirms on the phone (ptqrlogin then answers 0 once).
    pub fn confirm_qr(&self, qq: QqNumber) -> Result<(), ControlError> {
        self.qr_step(qq, true)
    }

    /// What an account sent through `send_*_msg2`, oldest first.
    pub fn sent(&self, account: QqNumber) -> Vec<SentMessage> {
        lock(&self.shared.sent).get(&account).cloned().unwrap_or_default()
    }

    /// Adds a fault; returns its id.
    pub fn add_fault(&self, spec: FaultSpec) -> u64 {
        lock(&self.shared.faults).add(spec, Instant::now())
    }

    /// Removes every fault.
    pub fn clear_faults(&self) {
        lock(&self.shared.faults).clear();
    }

    /// Every credential handed out so far (session cookies, `ptsigx`, `psessionid`, `vfwebqq`)
    /// and every account's password: what a leak check greps a bridge's output for.
    pub fn issued_secrets(&self) -> Vec<String> {
        let mut secrets = lock(&self.shared.issued).all();
        secrets.extend(read(&self.shared.world).accounts().map(|a| a.password.expose().clone()));
        secrets
    }

    /// A snapshot of sessions, counters, QR codes and faults.
    pub fn state(&self) -> EmulatorState {
        let sessions: Vec<SessionInfo> = read(&self.shared.sessions)
            .all()
            .map(|s| {
                let st = s.lock();
                SessionInfo {
                    account: s.account.get(),
                    clientid: s.clientid,
                    channel_host: s.channel_host.clone(),
                    created: unix(s.created),
                    last_poll: unix(st.last_poll_wall),
                    state: match st.liveness {
                        Liveness::Alive => "alive",
                        Liveness::Kicked => "kicked",
                        Liveness::Dead => "dead",
                    },
                    queued: st.queue.len(),
                }
            })
            .collect();
        let mut online: Vec<u64> =
            sessions.iter().filter(|s| s.state == "alive").map(|s| s.account).collect();
        online.sort_unstable();
        online.dedup();
        let counters =
            lock(&self.shared.counters).iter().map(|(k, v)| ((*k).to_owned(), *v)).collect();
        let pending_qr = lock(&self.shared.login)
            .pending_qr()
            .into_iter()
            .map(|(age, state)| {
                let state = match state {
                    QrState::Waiting => "waiting".to_owned(),
                    QrState::Scanned(q) => format!("scanned by {q}"),
                    QrState::Confirmed(q) => format!("confirmed by {q}"),
                    QrState::Used => "used".to_owned(),
                };
                serde_json::json!({"age_secs": age.as_secs_f64(), "state": state})
            })
            .collect();
        let faults = lock(&self.shared.faults)
            .list()
            .into_iter()
            .map(|(id, spec, remaining)| serde_json::json!({"id": id, "spec": spec, "remaining": remaining}))
            .collect();
        let captchas = lock(&self.shared.login)
            .captcha_texts()
            .into_iter()
            .map(|(qq, text)| (qq.to_string(), text))
            .collect();
        EmulatorState { online, sessions, counters, pending_qr, faults, captchas }
    }
}
