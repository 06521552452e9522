//! The account manager's [`LoginPrompt`]s for logins started from Matrix, shown to the user
//! who started them (MATRIX.md §6.2): each QR code as an image (the previous one redacted), a
//! captcha as an image, the end of the login as a notice; a QR login's temporary account moved
//! to `mx-<qq>` once its session names the number, or stopped when another user owns it.

use std::sync::{Arc, PoisonError};

use ruma::UserId;
use tokio::sync::mpsc::UnboundedReceiver;

use crate::account::account_actor::Credentials;
use crate::account::manager::{AddAccount, LoginPrompt, RemoveAccount};
use crate::account::state::AccountState;
use crate::bridge::portal::Bridge;
use crate::store::BotLogin;
use crate::webqq::QqNumber;

use super::Commands;
use super::login::{MAX_QR_CODES, QrPost, Step, bot_account_id};

/// Handles prompts until the manager stops.
pub(super) async fn watch(
    commands: Arc<Commands>,
    bridge: Arc<Bridge>,
    mut prompts: UnboundedReceiver<LoginPrompt>,
) {
    while let Some(prompt) = prompts.recv().await {
        commands.prov.lock().unwrap_or_else(PoisonError::into_inner).observe(&prompt);
        match prompt {
            LoginPrompt::Qr { account, png } => commands.qr_code(&bridge, &account, png).await,
            LoginPrompt::QrScanned { account } => {
                let asked =
                    commands.talk.lock().unwrap_or_else(PoisonError::into_inner).find(&account);
                if let Some((_, room)) = asked {
                    commands.say(&room, "Scanned: confirm the login on your phone.").await;
                }
            }
            LoginPrompt::Captcha { account, image } => commands.captcha(&account, image).await,
            LoginPrompt::Session { account, qq, nick } => {
                commands.lock_nicks().insert(account.clone(), nick);
                if account.starts_with("mx-qr-") {
                    commands.qr_session(&bridge, &account, qq).await;
                }
            }
            LoginPrompt::State { account, state, reason } => {
                commands.state(&bridge, &account, state, reason.as_deref()).await;
            }
        }
    }
}

impl Commands {
    fn lock_nicks(&self) -> std::sync::MutexGuard<'_, std::collections::BTreeMap<String, String>> {
        self.nicks.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A QR code of `account`: posted, the previous one redacted; past the limit the login stops.
    async fn qr_code(&self, bridge: &Bridge, account: &str, png: Vec<u8>) {
        let post = self.talk.lock().unwrap_or_else(PoisonError::into_inner).qr_code(account);
        match post {
            QrPost::Nobody => {}
            QrPost::GiveUp { room, account, .. } => {
                self.stop_unsaved(bridge, &account).await;
                let text = format!(
                    "No QR code was scanned ({MAX_QR_CODES} expired); the login stopped. Send `login qr` to try again."
                );
                self.say(&room, &text).await;
            }
            QrPost::Post { room, previous, number, .. } => {
                if let Some(previous) = previous {
                    self.redact(&room, previous, "expired QR code").await;
                }
                match self.out.send_image(&room, "qr.png", "image/png", png).await {
                    Ok(event) => {
                        let mut talk = self.talk.lock().unwrap_or_else(PoisonError::into_inner);
                        talk.qr_posted(account, event);
                    }
                    Err(error) => tracing::warn!(%account, %error, "QR code not posted"),
                }
                let text = format!(
                    "Scan this QR code with the QQ app (code {number} of at most {MAX_QR_CODES}; an expired one is replaced)."
                );
                self.say(&room, &text).await;
            }
        }
    }

    /// A captcha of `account`: posted; the user's next message is its text.
    async fn captcha(&self, account: &str, image: Vec<u8>) {
        let asked = self.talk.lock().unwrap_or_else(PoisonError::into_inner).captcha(account);
        let Some((_, room)) = asked else { return };
        // Captchas come as JPEG (protocol §1.2); sent as they are, typed by their bytes.
        let (mimetype, extension) =
            crate::bridge::portal::image_type(&image).unwrap_or(("image/jpeg", "jpg"));
        let name = format!("captcha.{extension}");
        if let Err(error) = self.out.send_image(&room, &name, mimetype, image).await {
            tracing::warn!(%account, %error, "captcha not posted");
        }
        self.say(
            &room,
            "QQ asks for a captcha: send the text in this picture as your next message.",
        )
        .await;
    }

    /// The temporary account of a QR login opened a session of `qq`: refused if another user
    /// owns the number, else moved to `mx-<qq>` (session copied, login stored, owner set).
    async fn qr_session(&self, bridge: &Bridge, temporary: &str, qq: QqNumber) {
        let found = {
            let talk = self.talk.lock().unwrap_or_else(PoisonError::into_inner);
            talk.find(temporary)
        };
        let Some((user, room)) = found else {
            bridge.accounts().do_send(RemoveAccount { id: temporary.to_owned() });
            return;
        };
        bridge.accounts().send(RemoveAccount { id: temporary.to_owned() }).await.ok();
        let (old, number) = (temporary.to_owned(), qq.get());
        let account = bot_account_id(number);
        if let Some((_, owner)) = self.owner_of_qq(bridge, number).await.filter(|(_, o)| *o != user)
        {
            tracing::info!(%owner, qq = number, "QR login of a number another user owns refused");
            self.talk.lock().unwrap_or_else(PoisonError::into_inner).finish(temporary);
            bridge.store().call(move |c| c.delete_session(&old)).await.ok();
            let text =
                format!("QQ {number} is bridged for another Matrix user; this login was stopped.");
            return self.say(&room, &text).await;
        }
        let (new, owner) = (account.clone(), user.to_string());
        let moved = bridge
            .store()
            .call(move |c| {
                if let Some(session) = c.load_session(&old)? {
                    c.save_session(&new, &session)?;
                }
                c.delete_session(&old)?;
                let login = BotLogin {
                    account_id: new,
                    qq: number,
                    owner,
                    method: "qr".to_owned(),
                    created_at: 0,
                };
                c.add_bot_login(&login)
            })
            .await;
        if let Err(error) = moved {
            tracing::error!(account = %account, %error, "QR login not stored");
        }
        {
            let mut nicks = self.lock_nicks();
            if let Some(nick) = nicks.remove(temporary) {
                nicks.insert(account.clone(), nick);
            }
        }
        self.talk.lock().unwrap_or_else(PoisonError::into_inner).rename(temporary, &account);
        bridge.set_bot_owner(&account, &user);
        // A number already running (relogin by QR) is restarted on the new session.
        bridge.accounts().send(RemoveAccount { id: account.clone() }).await.ok();
        let add = AddAccount { id: account.clone(), qq, credentials: Credentials::SessionOnly };
        match bridge.accounts().send(add).await {
            Ok(Ok(())) => {}
            Ok(Err(reason)) => {
                self.say(&room, &format!("QQ {number} did not start: {reason}.")).await
            }
            Err(_) => {}
        }
    }

    /// A state change of `account`: a login from Matrix that connected or failed is told to
    /// its user and, once connected, stored.
    async fn state(
        &self,
        bridge: &Bridge,
        account: &str,
        state: AccountState,
        reason: Option<&str>,
    ) {
        // A temporary QR account ends through its session (`qr_session`) or a failure.
        let temporary = account.starts_with("mx-qr-");
        let ended = match state {
            AccountState::Connected => !temporary,
            AccountState::BadCredentials | AccountState::LoggedOut | AccountState::UnknownError => {
                true
            }
            _ => false,
        };
        if !ended {
            return;
        }
        let finished = self.talk.lock().unwrap_or_else(PoisonError::into_inner).finish(account);
        let Some((user, room, step)) = finished else { return };
        if state != AccountState::Connected {
            if temporary {
                bridge.accounts().do_send(RemoveAccount { id: account.to_owned() });
            }
            let why = reason.map(|r| format!(": {r}")).unwrap_or_default();
            let text = format!(
                "The login failed ({}{why}). Send `login qr` or `login password <qq>` to try again.",
                state.as_str()
            );
            return self.say(&room, &text).await;
        }
        let Some(qq) = self.qq_of(account) else { return };
        if matches!(step, Step::Password { .. } | Step::AwaitCaptcha { .. }) {
            self.store_login(bridge, account, qq, &user, "password").await;
        }
        let nick = self.lock_nicks().get(account).cloned().unwrap_or_default();
        let nick: String = nick.chars().filter(|c| !c.is_control()).take(64).collect();
        self.say(&room, &format!("Logged in as {nick} ({qq}).")).await;
    }

    async fn store_login(
        &self,
        bridge: &Bridge,
        account: &str,
        qq: u64,
        user: &UserId,
        method: &str,
    ) {
        let login = BotLogin {
            account_id: account.to_owned(),
            qq,
            owner: user.to_string(),
            method: method.to_owned(),
            created_at: 0,
        };
        match bridge.store().call(move |c| c.add_bot_login(&login)).await {
            Ok(true) => {}
            Ok(false) => tracing::warn!(%account, "login not stored: another user owns the number"),
            Err(error) => {
                tracing::error!(%account, %error, "login not stored; a restart will not start it")
            }
        }
    }

    /// Stops `account` when it is a login from Matrix not stored yet.
    async fn stop_unsaved(&self, bridge: &Bridge, account: &str) {
        let qq = self.qq_of(account).unwrap_or(0);
        let stored = bridge.store().call(move |c| c.bot_login_of_qq(qq)).await.ok().flatten();
        if stored.is_none() && !self.settings.config_accounts.contains_key(account) {
            bridge.accounts().do_send(RemoveAccount { id: account.to_owned() });
            bridge.forget_bot_owner(account);
        }
    }
}
