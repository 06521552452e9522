//! The bot's Matrix events carried out: invites of the bot (a management room, or a refusal),
//! the login conversation's messages (password, captcha), and each command, checked for flood,
//! permission and place before it runs.

use std::sync::{Arc, PoisonError};
use std::time::Instant;

use ruma::events::AnyTimelineEvent;
use ruma::serde::Raw;
use ruma::{OwnedEventId, OwnedRoomId, OwnedUserId, RoomId, UserId};

use crate::account::account_actor::Credentials;
use crate::account::manager::{AddAccount, AnswerCaptcha, GetStates, LogoutAccount, RemoveAccount};
use crate::account::state::AccountState;
use crate::bridge::portal::Bridge;
use crate::webqq::{QqNumber, Secret};

use super::Commands;
use super::login::{Input, Step, bot_account_id, qr_account_id};
use super::parse::{Command, Parsed, Place, help_text, parse};
use super::permission::{Flood, Permission};

/// The greeting in a new management room.
const GREETING: &str = "Hello, I am the QQ bridge bot. This is your management room: send \
                        `help` for the commands (no prefix needed here).";
/// Said to blocked users, once per command.
const BLOCKED: &str = "You are not allowed to use this bridge (bridge.permissions).";
/// One message addressed to the bot, read from the event.
pub(super) struct Message {
    pub(super) sender: OwnedUserId,
    pub(super) room: OwnedRoomId,
    pub(super) event_id: OwnedEventId,
    pub(super) body: String,
}

impl Commands {
    /// Handles one Matrix event that is not a portal message for QQ: an invite of the bot, a
    /// message in a management room or DM, or a prefixed command in a portal. Never fails:
    /// errors become a reply or a log line.
    pub async fn event(
        self: &Arc<Self>,
        bridge: &Arc<Bridge>,
        raw: &Raw<AnyTimelineEvent>,
        in_portal: bool,
    ) {
        let field = |name: &str| raw.get_field::<String>(name).ok().flatten();
        let (Some(kind), Some(sender), Some(room), Some(event_id)) =
            (field("type"), field("sender"), field("room_id"), field("event_id"))
        else {
            return;
        };
        let (Ok(sender), Ok(room), Ok(event_id)) =
            (UserId::parse(sender), RoomId::parse(room), OwnedEventId::try_from(event_id))
        else {
            return;
        };
        if bridge.is_ours(&sender) {
            return;
        }
        let content =
            raw.get_field::<serde_json::Value>("content").ok().flatten().unwrap_or_default();
        match kind.as_str() {
            "m.room.member"
                if field("state_key").as_deref() == Some(bridge.bot().as_str())
                    && content.get("membership").and_then(|m| m.as_str()) == Some("invite") =>
            {
                let direct = content.get("is_direct").and_then(|d| d.as_bool()) == Some(true);
                self.invited(bridge, &sender, &room, direct).await;
            }
            "m.room.message" => {
                let Some(body) = content.get("body").and_then(|b| b.as_str()) else { return };
                let message = Message { sender, room, event_id, body: body.to_owned() };
                self.message(bridge, message, in_portal).await;
            }
            // In a portal, the bridge refuses encrypted messages itself (`to_qq.rs`).
            "m.room.encrypted" if !in_portal => {
                let message = Message { sender, room, event_id, body: String::new() };
                self.encrypted(bridge, raw, message).await;
            }
            _ => {}
        }
    }

    /// The bot was invited to `room` by `sender`.
    async fn invited(&self, bridge: &Bridge, sender: &UserId, room: &RoomId, direct: bool) {
        if self.level(bridge, sender) < Permission::Relay {
            tracing::info!(%sender, %room, "invite of a blocked user rejected");
            self.leave(room, BLOCKED).await;
            return;
        }
        if let Err(error) = self.out.join(room).await {
            tracing::warn!(%sender, %room, %error, "invite not accepted");
            return;
        }
        if !direct {
            // A plain room only hears prefixed commands (`bridge <group>` makes it a portal).
            return;
        }
        if let Err(error) = bridge.set_management_room(sender, room).await {
            tracing::warn!(%sender, %room, %error, "management room not remembered");
        }
        self.say(room, GREETING).await;
    }

    /// A message in a room the bot reads.
    pub(super) async fn message(
        self: &Arc<Self>,
        bridge: &Arc<Bridge>,
        message: Message,
        in_portal: bool,
    ) {
        let management = !in_portal
            && bridge.management_room_of(&message.sender).await.as_deref() == Some(&*message.room);
        if management {
            let input = self.talk.lock().unwrap_or_else(PoisonError::into_inner).message(
                &message.sender,
                &message.room,
                &message.body,
            );
            match input {
                Input::Command => {}
                Input::Password { qq, password } => {
                    self.redact(&message.room, message.event_id.clone(), "password").await;
                    return self
                        .password_login(bridge, &message.sender, &message.room, qq, password)
                        .await;
                }
                Input::CaptchaAnswer { account, text } => {
                    let answer = AnswerCaptcha { account, text };
                    let taken = bridge.accounts().send(answer).await.unwrap_or(false);
                    let reply = if taken {
                        "Captcha answer sent."
                    } else {
                        "No captcha is waiting any more."
                    };
                    return self.say(&message.room, reply).await;
                }
            }
        }
        let parsed = parse(&message.body, &self.settings.prefix, management);
        if !management && mentions_password(&message.body, &self.settings.prefix) {
            // A password may follow `login password` in this message: other people see it.
            self.redact(&message.room, message.event_id.clone(), "passwords only in the DM").await;
        }
        let command = match parsed {
            Parsed::NotCommand => return,
            Parsed::Command(command) => command,
            Parsed::Invalid(reason) => return self.say(&message.room, &reason).await,
            Parsed::Unknown(word) => {
                let prefix = (!management).then_some(self.settings.prefix.as_str());
                let text = format!("Unknown command {:?}.\n{}", excerpt(&word), help_text(prefix));
                return self.say(&message.room, &text).await;
            }
        };
        let flood = self
            .flood
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .check(&message.sender, Instant::now());
        match flood {
            Flood::Allow => {}
            Flood::SlowDown => {
                return self
                    .say(
                        &message.room,
                        "Slow down: too many commands; the next ones this minute are ignored.",
                    )
                    .await;
            }
            Flood::Ignore => return,
        }
        let level = self.level(bridge, &message.sender);
        if level == Permission::Block {
            return self.say(&message.room, BLOCKED).await;
        }
        if level < command.level() {
            let text = format!(
                "This command needs the {:?} permission; you have {level:?}.",
                command.level()
            );
            return self.say(&message.room, &text).await;
        }
        match command.place() {
            Place::Management if !management => {
                let text = "Run this command in your direct chat with me (your management room): \
                            QR codes and passwords must not be shown to others.";
                return self.say(&message.room, text).await;
            }
            Place::Portal if !in_portal => {
                return self.say(&message.room, "Run this command in a portal room.").await;
            }
            _ => {}
        }
        let reply = self.run(bridge, &message, command, management).await;
        self.say(&message.room, &reply).await;
    }

    /// Runs `command`; answers the reply.
    async fn run(
        self: &Arc<Self>,
        bridge: &Arc<Bridge>,
        message: &Message,
        command: Command,
        management: bool,
    ) -> String {
        let (user, room) = (&message.sender, &message.room);
        match command {
            Command::Help => help_text((!management).then_some(self.settings.prefix.as_str())),
            Command::Version => format!("qqbridge {}", env!("CARGO_PKG_VERSION")),
            Command::Ping => match bridge.matrix().whoami().await {
                Ok(_) => "Pong: the bridge runs and the homeserver answers.".to_owned(),
                Err(error) => {
                    format!("The bridge runs, but the homeserver did not answer: {error}")
                }
            },
            Command::LoginQr => self.start_qr(bridge, user, room).await,
            Command::LoginPassword(qq) => {
                if let Some(refusal) = self.refuse_number(bridge, user, qq).await {
                    return refusal;
                }
                self.talk.lock().unwrap_or_else(PoisonError::into_inner).start(
                    user,
                    room,
                    Step::AwaitPassword { qq },
                );
                format!(
                    "Send the password of QQ {qq} as your next message here: I read it and redact it at once. Send `cancel` to abort."
                )
            }
            Command::Cancel => self.cancel(bridge, user).await,
            Command::Logout(qq) => match self.pick(bridge, user, qq) {
                Err(reply) => reply,
                Ok(account) => self.logout(bridge, &account).await,
            },
            Command::Relogin(qq) => match self.pick(bridge, user, qq) {
                Err(reply) => reply,
                Ok(account) => self.relogin(bridge, user, &account).await,
            },
            Command::ListLogins => self.list_logins(bridge, user).await,
            Command::Sync(qq) => match self.pick(bridge, user, qq) {
                Err(reply) => reply,
                Ok(account) => match bridge.sync_portals(&account).await {
                    Ok(portals) => format!("Synced: {portals} portals for {account}."),
                    Err(error) => format!("Not synced: {error}."),
                },
            },
            Command::ListFriends(qq) | Command::ListGroups(qq) => {
                let friends = matches!(command, Command::ListFriends(_));
                match self.pick(bridge, user, qq) {
                    Err(reply) => reply,
                    Ok(account) => self.list_contacts(bridge, &account, friends).await,
                }
            }
            Command::StartChat(friend) => match self.pick(bridge, user, None) {
                Err(reply) => reply,
                Ok(account) => match bridge.open_friend_chat(&account, friend).await {
                    Ok(room) => format!("The chat with QQ {friend} is {room}; you are invited."),
                    Err(error) => format!("The chat was not opened: {error}."),
                },
            },
            Command::SetRelay(qq) => self.set_relay(bridge, user, room, qq).await,
            Command::UnsetRelay => self.unset_relay(bridge, room).await,
            Command::Bridge(group) => {
                self.bridge_group(bridge, user, room, group, management).await
            }
            Command::Unbridge => self.unbridge(bridge, user, room).await,
        }
    }

    /// Why `user` may not log QQ `qq` in, if they may not: another Matrix user owns it, or it
    /// runs already.
    pub(super) async fn refuse_number(
        &self,
        bridge: &Bridge,
        user: &UserId,
        qq: u64,
    ) -> Option<String> {
        match self.owner_of_qq(bridge, qq).await {
            Some((_, owner)) if owner != user => Some(format!(
                "QQ {qq} is bridged for another Matrix user; it cannot be logged in here."
            )),
            Some((account, _)) if bridge.owner_of(&account).is_some() => Some(format!(
                "QQ {qq} is already yours ({account}); use `relogin {qq}` for a fresh session."
            )),
            _ => None,
        }
    }

    /// `login qr`: a temporary account shows QR codes until one is confirmed (`prompts.rs`).
    async fn start_qr(&self, bridge: &Bridge, user: &UserId, room: &RoomId) -> String {
        match self.start_qr_account(bridge, user, room).await {
            Ok(_) => "Starting a QR login: scan the code I post next with the QQ app. Send `cancel` to abort.".to_owned(),
            Err(reason) => format!("The login did not start: {reason}."),
        }
    }

    /// Starts a QR login of `user`, its codes shown in `room`; answers the temporary account.
    pub(super) async fn start_qr_account(
        &self,
        bridge: &Bridge,
        user: &UserId,
        room: &RoomId,
    ) -> Result<String, String> {
        let n = self.next_qr.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let account = qr_account_id(n);
        let step = Step::Qr { account: account.clone(), image: None, codes: 0 };
        let replaced =
            self.talk.lock().unwrap_or_else(PoisonError::into_inner).start(user, room, step);
        if let Some(old) = replaced.filter(|a| a.starts_with("mx-qr-")) {
            bridge.accounts().do_send(RemoveAccount { id: old });
        }
        // The number is not known before the scan: the account runs under a placeholder
        // until its session names it (`prompts.rs` moves it to `mx-<qq>`).
        let add =
            AddAccount { id: account.clone(), qq: QqNumber::new(0), credentials: Credentials::Qr };
        match bridge.accounts().send(add).await {
            Ok(Ok(())) => Ok(account),
            Ok(Err(reason)) => Err(reason),
            Err(_) => Err("the account manager stopped".to_owned()),
        }
    }

    /// The password arrived: a fresh password login of `qq` for `user`.
    pub(super) async fn password_login(
        &self,
        bridge: &Bridge,
        user: &UserId,
        room: &RoomId,
        qq: u64,
        password: Secret<String>,
    ) {
        if let Some(refusal) = self.refuse_number(bridge, user, qq).await {
            self.talk.lock().unwrap_or_else(PoisonError::into_inner).cancel(user);
            return self.say(room, &refusal).await;
        }
        let account = bot_account_id(qq);
        let id = account.clone();
        // A fresh login: a session left from before would be restored instead.
        if let Err(error) = bridge.store().call(move |c| c.delete_session(&id)).await {
            tracing::warn!(%account, %error, "old session not removed");
        }
        bridge.set_bot_owner(&account, user);
        let add = AddAccount {
            id: account.clone(),
            qq: QqNumber::new(qq),
            credentials: Credentials::Password(password),
        };
        let reply = match bridge.accounts().send(add).await {
            Ok(Ok(())) => format!("Logging QQ {qq} in…"),
            Ok(Err(reason)) => {
                bridge.forget_bot_owner(&account);
                self.talk.lock().unwrap_or_else(PoisonError::into_inner).cancel(user);
                format!("The login did not start: {reason}.")
            }
            Err(_) => "The login did not start: the account manager stopped.".to_owned(),
        };
        self.say(room, &reply).await;
    }

    /// `cancel`: the login in progress ends; an account it started that is not a stored login
    /// from Matrix stops.
    async fn cancel(&self, bridge: &Bridge, user: &UserId) -> String {
        let cancelled = self.talk.lock().unwrap_or_else(PoisonError::into_inner).cancel(user);
        let Some(account) = cancelled else { return "No login is in progress.".to_owned() };
        if let Some(account) = account {
            let qq = self.qq_of(&account).unwrap_or(0);
            let stored = bridge.store().call(move |c| c.bot_login_of_qq(qq)).await.ok().flatten();
            let config = self.settings.config_accounts.contains_key(&account);
            if stored.is_none() && !config {
                bridge.accounts().do_send(RemoveAccount { id: account.clone() });
                bridge.forget_bot_owner(&account);
            }
        }
        "Login cancelled.".to_owned()
    }

    /// The account of `user` that `qq` names, or the only one; else a question or refusal.
    pub(super) fn pick(
        &self,
        bridge: &Bridge,
        user: &UserId,
        qq: Option<u64>,
    ) -> Result<String, String> {
        let accounts = bridge.accounts_of(user);
        match qq {
            Some(qq) => accounts
                .into_iter()
                .find(|a| self.qq_of(a) == Some(qq))
                .ok_or_else(|| format!("QQ {qq} is not one of your accounts.")),
            None => match accounts.as_slice() {
                [] => Err("You have no QQ account here; log one in with `login qr`.".to_owned()),
                [one] => Ok(one.clone()),
                several => {
                    let numbers: Vec<String> = several
                        .iter()
                        .filter_map(|a| self.qq_of(a))
                        .map(|q| q.to_string())
                        .collect();
                    Err(format!(
                        "You have several QQ accounts ({}): which one? Add its number.",
                        numbers.join(", ")
                    ))
                }
            },
        }
    }

    /// `logout`: the account logs out on QQ (best effort, bounded: a failure is told, not
    /// fatal) and stops, its stored session is removed; a login from Matrix is forgotten (row
    /// deleted); a config account starts again at the next restart.
    pub(super) async fn logout(&self, bridge: &Bridge, account: &str) -> String {
        let on_qq = bridge.accounts().send(LogoutAccount { id: account.to_owned() }).await;
        let qq_note = match on_qq {
            Ok(Some(Ok(()))) => "QQ ended its session".to_owned(),
            Ok(Some(Err(reason))) => {
                tracing::info!(%account, %reason, "QQ logout not confirmed");
                format!("QQ did not confirm the logout ({reason}), so it is removed here anyway")
            }
            Ok(None) => "it was not running".to_owned(),
            Err(_) => "the account manager stopped".to_owned(),
        };
        bridge.forget_account_state(account).await;
        let id = account.to_owned();
        let removed = bridge
            .store()
            .call(move |c| {
                c.delete_session(&id)?;
                c.delete_bot_login(&id)
            })
            .await;
        let from_matrix = matches!(removed, Ok(true));
        if from_matrix {
            bridge.forget_bot_owner(account);
        }
        match (removed, from_matrix) {
            (Err(error), _) => {
                format!("{account} stopped ({qq_note}), but its session was not removed: {error}.")
            }
            (Ok(_), true) => {
                format!("Logged out: {account} stopped ({qq_note}) and its session is removed.")
            }
            (Ok(_), false) => format!(
                "Logged out: {account} stopped ({qq_note}) and its session is removed; as it is in the config, it logs in again at the next restart."
            ),
        }
    }

    /// `relogin`: the account starts again (its stored session relinked first, then its
    /// credentials: the config's, a QR code for a QR login from Matrix).
    async fn relogin(&self, bridge: &Bridge, user: &UserId, account: &str) -> String {
        let Some(qq) = self.qq_of(account) else { return format!("{account} has no QQ number.") };
        let credentials = match self.settings.config_accounts.get(account) {
            Some((_, credentials)) => credentials.clone(),
            None => {
                let stored = bridge.store().call(move |c| c.bot_login_of_qq(qq)).await;
                match stored.ok().flatten().map(|l| l.method).as_deref() {
                    Some("qr") => Credentials::Qr,
                    _ => Credentials::SessionOnly,
                }
            }
        };
        if matches!(credentials, Credentials::Qr) {
            // QR codes go to the management room only, never to a portal where the command
            // may have been typed: whoever scans a code owns the session.
            if let Some(dm) = bridge.management_room_of(user).await {
                let step = Step::Qr { account: account.to_owned(), image: None, codes: 0 };
                self.talk.lock().unwrap_or_else(PoisonError::into_inner).start(user, &dm, step);
            }
        }
        bridge.accounts().send(RemoveAccount { id: account.to_owned() }).await.ok();
        let add = AddAccount { id: account.to_owned(), qq: QqNumber::new(qq), credentials };
        match bridge.accounts().send(add).await {
            Ok(Ok(())) => format!("Logging {account} in again (its session first)…"),
            Ok(Err(reason)) => format!("{account} did not start: {reason}."),
            Err(_) => "The account manager stopped.".to_owned(),
        }
    }

    /// `list-logins`: each of `user`'s accounts with its state, reason and next step.
    async fn list_logins(&self, bridge: &Bridge, user: &UserId) -> String {
        let mine = bridge.accounts_of(user);
        if mine.is_empty() {
            return "You have no QQ account here; log one in with `login qr`.".to_owned();
        }
        let states = bridge.accounts().send(GetStates).await.unwrap_or_default();
        let mut text = String::from("Your QQ accounts:\n");
        for account in mine {
            let qq = self.qq_of(&account).map(|q| q.to_string()).unwrap_or_default();
            let line = match states.iter().find(|(id, _, _)| *id == account) {
                Some((_, state, reason)) => {
                    let why = reason.as_deref().map(|r| format!(" ({r})")).unwrap_or_default();
                    format!(
                        "• QQ {qq} [{account}]: {}{why}{}\n",
                        state.as_str(),
                        next_step(*state, &qq)
                    )
                }
                None => format!("• QQ {qq} [{account}]: not running — send `relogin {qq}`\n"),
            };
            text.push_str(&line);
        }
        text
    }

    /// Sends a notice; a failure is logged.
    pub(super) async fn say(&self, room: &RoomId, text: &str) {
        if let Err(error) = self.out.send_notice(room, text).await {
            tracing::warn!(%room, %error, "bot reply not sent");
        }
    }

    /// Redacts `event`; a failure is logged (the bot may lack the power to redact).
    pub(super) async fn redact(&self, room: &RoomId, event: OwnedEventId, reason: &str) {
        if let Err(error) = self.out.redact(room, event, reason).await {
            tracing::warn!(%room, %error, "message not redacted");
        }
    }

    async fn leave(&self, room: &RoomId, reason: &str) {
        if let Err(error) = self.out.leave(room, reason).await {
            tracing::warn!(%room, %error, "invite not rejected");
        }
    }
}

/// What to do about an account in `state`, for `list-logins`.
fn next_step(state: AccountState, qq: &str) -> String {
    match state {
        AccountState::BadCredentials | AccountState::LoggedOut => {
            format!(" — send `relogin {qq}` (or log in again with `login`)")
        }
        AccountState::UnknownError => {
            format!(" — send `relogin {qq}`; if it persists, restart the bridge")
        }
        AccountState::WaitingForQr => " — scan the QR code with the QQ app".to_owned(),
        AccountState::WaitingForCaptcha => " — type the captcha's text here".to_owned(),
        AccountState::Connecting | AccountState::TransientDisconnect => " — wait".to_owned(),
        AccountState::Connected => String::new(),
    }
}

/// Whether `body` is (or starts like) `login password` with something after the number,
/// outside the management room: its text may hold a password.
fn mentions_password(body: &str, prefix: &str) -> bool {
    let body = body.trim_start();
    let body = body.strip_prefix(prefix).unwrap_or(body);
    let mut words = body.split_whitespace();
    words.next().is_some_and(|w| w.eq_ignore_ascii_case("login"))
        && words.next().is_some_and(|w| w.eq_ignore_ascii_case("password"))
}

fn excerpt(text: &str) -> String {
    one_line(text).chars().take(32).collect()
}

/// `text` without control characters, at most 64 characters (QQ names are remote data).
pub(super) fn one_line(text: &str) -> String {
    text.chars().filter(|c| !c.is_control()).take(64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_login_password_outside_the_dm_is_redacted() {
        for (body, redact) in [
            ("login password 10001", true),
            ("!qq login password 10001 hunter2", true),
            ("  LOGIN Password", true),
            ("login qr", false),
            ("hello", false),
            ("!qq logout", false),
        ] {
            assert_eq!(mentions_password(body, "!qq"), redact, "{body}");
        }
    }

    #[test]
    fn test_next_step_for_each_state() {
        for state in AccountState::ALL {
            let step = next_step(state, "10001");
            let needs_relogin = matches!(
                state,
                AccountState::BadCredentials | AccountState::LoggedOut | AccountState::UnknownError
            );
            assert_eq!(step.contains("relogin 10001"), needs_relogin, "{state:?}");
        }
        assert_eq!(next_step(AccountState::Connected, "1"), "");
    }

    #[test]
    fn test_one_line_strips_controls_and_bounds_length() {
        assert_eq!(one_line("a\nb\u{202e}c"), "ab\u{202e}c");
        assert_eq!(one_line(&"x".repeat(100)).len(), 64);
    }
}
