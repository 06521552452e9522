//! The bridge bot (MATRIX.md §6.1, §6.2): commands from Matrix users, their management rooms,
//! QQ logins started from Matrix and the permissions that gate all of it.
//!
//! `parse.rs` (the command language), `permission.rs` (levels, flood limit) and `login.rs`
//! (each user's login conversation) are pure; `run.rs` carries commands out, `prompts.rs` turns
//! the account manager's [`LoginPrompt`]s into Matrix messages, `out.rs` is the one way out.

use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use ruma::events::AnyTimelineEvent;
use ruma::serde::Raw;
use ruma::{OwnedUserId, UserId};

use crate::account::account_actor::Credentials;
use crate::account::manager::LoginPrompt;
use crate::bridge::portal::Bridge;

mod bridging;
mod contacts;
mod encrypted;
pub mod login;
pub mod out;
pub mod parse;
pub mod permission;
mod prompts;
mod provision;
mod relay;
mod run;

pub use login::bot_account_qq;
pub use out::{EncryptedOut, ManagementOut, png_size};
pub use permission::{Permission, Permissions};
pub use provision::Provisioner;

/// What the bot needs to know.
#[derive(Clone, Debug)]
pub struct CommandSettings {
    /// `bridge.command_prefix`.
    pub prefix: String,
    /// `bridge.permissions`.
    pub permissions: Permissions,
    /// Each config account's QQ number and credentials (for `relogin`), by account id.
    pub config_accounts: BTreeMap<String, (u64, Credentials)>,
}

/// The bot: state shared by every command.
pub struct Commands {
    settings: CommandSettings,
    out: Arc<dyn ManagementOut>,
    flood: Mutex<permission::FloodLimiter>,
    talk: Mutex<login::Conversations>,
    /// Nicknames of sessions opened by logins from Matrix, by account (for "logged in as").
    nicks: Mutex<BTreeMap<String, String>>,
    /// The number of the next QR login's temporary account.
    next_qr: AtomicU64,
    /// Logins started through the provisioning API (`provision.rs`).
    prov: Mutex<provision::ProvLogins>,
}

impl Commands {
    /// A bot answering through `out`.
    pub fn new(settings: CommandSettings, out: Arc<dyn ManagementOut>) -> Self {
        Commands {
            settings,
            out,
            flood: Mutex::new(permission::FloodLimiter::new(permission::COMMANDS_PER_MINUTE)),
            talk: Mutex::new(login::Conversations::new()),
            nicks: Mutex::new(BTreeMap::new()),
            next_qr: AtomicU64::new(1),
            prov: Mutex::new(provision::ProvLogins::default()),
        }
    }

    /// Starts the bot on `bridge`: routes its Matrix events here, watches the account manager's
    /// login prompts, and starts the accounts logged in from Matrix before (stored in
    /// `bot_logins`) with their stored sessions. Answers how many were started.
    pub async fn start(self: &Arc<Self>, bridge: &Arc<Bridge>) -> usize {
        bridge.set_commands(self.clone());
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<LoginPrompt>();
        bridge.accounts().do_send(crate::account::manager::WatchLogins(tx));
        tokio::spawn(prompts::watch(self.clone(), bridge.clone(), rx));
        self.restore(bridge).await
    }

    /// Whether `raw` is a message that starts with the command prefix (in a portal, only those
    /// go to the bot).
    pub fn is_command(&self, raw: &Raw<AnyTimelineEvent>) -> bool {
        if raw.get_field::<String>("type").ok().flatten().as_deref() != Some("m.room.message") {
            return false;
        }
        let body = raw
            .get_field::<serde_json::Value>("content")
            .ok()
            .flatten()
            .and_then(|c| c.get("body").and_then(|b| b.as_str()).map(str::to_owned));
        body.is_some_and(|body| {
            let body = body.trim_start();
            body.strip_prefix(self.settings.prefix.as_str())
                .is_some_and(|rest| rest.is_empty() || rest.starts_with(char::is_whitespace))
        })
    }

    /// `user`'s level: the table's, or [`Permission::User`] for an unlisted owner.
    pub fn level(&self, bridge: &Bridge, user: &UserId) -> Permission {
        let owns = !bridge.accounts_of(user).is_empty();
        self.settings.permissions.effective(user, owns)
    }

    /// Whether `user` may not use the bridge at all.
    pub fn is_blocked(&self, bridge: &Bridge, user: &UserId) -> bool {
        self.level(bridge, user) == Permission::Block
    }

    /// The Matrix user who owns QQ number `qq` (config or an earlier login from Matrix), with
    /// the account id.
    pub(crate) async fn owner_of_qq(
        &self,
        bridge: &Bridge,
        qq: u64,
    ) -> Option<(String, OwnedUserId)> {
        for (account, (number, _)) in &self.settings.config_accounts {
            if *number == qq {
                let owner = bridge.owner_of(account)?;
                return Some((account.clone(), owner));
            }
        }
        let stored = bridge.store().call(move |c| c.bot_login_of_qq(qq)).await.ok().flatten()?;
        let owner = UserId::parse(stored.owner).ok()?;
        Some((stored.account_id, owner))
    }

    /// The QQ number of `account`.
    pub(crate) fn qq_of(&self, account: &str) -> Option<u64> {
        if let Some((qq, _)) = self.settings.config_accounts.get(account) {
            return Some(*qq);
        }
        bot_account_qq(account)
    }

    /// Starts the stored logins from Matrix.
    async fn restore(&self, bridge: &Bridge) -> usize {
        let logins = match bridge.store().call(|c| c.bot_logins()).await {
            Ok(logins) => logins,
            Err(error) => {
                tracing::error!(%error, "logins from Matrix not read; they stay stopped");
                return 0;
            }
        };
        let mut started = 0;
        for login in logins {
            let Ok(owner) = UserId::parse(&login.owner) else { continue };
            if self.settings.config_accounts.values().any(|(qq, _)| *qq == login.qq) {
                tracing::warn!(account = %login.account_id, "QQ number now in the config; the login from Matrix is not started");
                continue;
            }
            bridge.set_bot_owner(&login.account_id, &owner);
            let add = crate::account::manager::AddAccount {
                id: login.account_id.clone(),
                qq: crate::webqq::QqNumber::new(login.qq),
                credentials: Credentials::SessionOnly,
            };
            match bridge.accounts().send(add).await {
                Ok(Ok(())) => started += 1,
                Ok(Err(reason)) => {
                    tracing::warn!(account = %login.account_id, %reason, "login from Matrix not started")
                }
                Err(_) => tracing::warn!(account = %login.account_id, "account manager stopped"),
            }
        }
        started
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::future::BoxFuture;
    use ruma::{OwnedEventId, RoomId};

    /// Sends nothing.
    struct Silent;

    impl ManagementOut for Silent {
        fn send_notice<'a>(
            &'a self,
            _: &'a RoomId,
            _: &'a str,
        ) -> BoxFuture<'a, Result<OwnedEventId, String>> {
            Box::pin(async { Err("silent".to_owned()) })
        }
        fn send_image<'a>(
            &'a self,
            _: &'a RoomId,
            _: &'a str,
            _: &'a str,
            _: Vec<u8>,
        ) -> BoxFuture<'a, Result<OwnedEventId, String>> {
            Box::pin(async { Err("silent".to_owned()) })
        }
        fn redact<'a>(
            &'a self,
            _: &'a RoomId,
            _: OwnedEventId,
            _: &'a str,
        ) -> BoxFuture<'a, Result<(), String>> {
            Box::pin(async { Ok(()) })
        }
        fn join<'a>(&'a self, _: &'a RoomId) -> BoxFuture<'a, Result<(), String>> {
            Box::pin(async { Ok(()) })
        }
        fn leave<'a>(&'a self, _: &'a RoomId, _: &'a str) -> BoxFuture<'a, Result<(), String>> {
            Box::pin(async { Ok(()) })
        }
    }

    fn commands() -> Commands {
        let settings = CommandSettings {
            prefix: "!qq".to_owned(),
            permissions: Permissions::default(),
            config_accounts: BTreeMap::from([("me".to_owned(), (10001, Credentials::Qr))]),
        };
        Commands::new(settings, Arc::new(Silent))
    }

    #[test]
    fn test_only_prefixed_messages_are_commands_in_portals() {
        let commands = commands();
        // (event, is a command)
        let cases = [
            (serde_json::json!({"type": "m.room.message", "content": {"body": "!qq help"}}), true),
            (serde_json::json!({"type": "m.room.message", "content": {"body": " !qq"}}), true),
            (serde_json::json!({"type": "m.room.message", "content": {"body": "!qqx"}}), false),
            (serde_json::json!({"type": "m.room.message", "content": {"body": "hi !qq"}}), false),
            (serde_json::json!({"type": "m.room.message", "content": {}}), false),
            (serde_json::json!({"type": "m.sticker", "content": {"body": "!qq help"}}), false),
        ];
        for (event, want) in cases {
            let raw: Raw<AnyTimelineEvent> = serde_json::from_value(event.clone()).unwrap();
            assert_eq!(commands.is_command(&raw), want, "{event}");
        }
    }

    #[test]
    fn test_qq_of_config_and_matrix_accounts() {
        let commands = commands();
        assert_eq!(commands.qq_of("me"), Some(10001));
        assert_eq!(commands.qq_of(&login::bot_account_id(10002)), Some(10002));
        assert_eq!(commands.qq_of(&login::qr_account_id(3)), None);
        assert_eq!(commands.qq_of("unknown"), None);
    }
}
