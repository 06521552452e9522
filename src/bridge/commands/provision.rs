//! The provisioning API's bridge side (MATRIX.md §6.8): [`Provisioner`] answers the routes of
//! `matrix::provisioning`. A login started over HTTP runs exactly as one started in the
//! management room (which also sees its QR codes and outcome); [`ProvLogins`] follows each as
//! a process of steps — a QR code, a captcha, done or failed — fed by the manager's prompts.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use futures_util::FutureExt as _;
use ruma::{OwnedUserId, UserId};
use serde_json::{Value, json};
use tokio::sync::watch;

use super::Commands;
use super::login::bot_account_id;
use super::parse::qq_number;
use super::permission::Permission;
use crate::account::manager::{AnswerCaptcha, GetDirectory, LoginPrompt};
use crate::account::state::AccountState;
use crate::bridge::portal::Bridge;
use crate::matrix::provisioning::{
    InputField, LoginFlow, LoginStep, ProvError, ProvFuture, ProvisioningHandler, StepKind,
};
use crate::webqq::Secret;

/// How long one `display_and_wait` call waits for the next step before answering the same one
/// again (the client simply calls again).
const WAIT: Duration = Duration::from_secs(30);

/// Where one provisioning login stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Status {
    /// Password flow: the number and password are asked.
    Credentials,
    /// Started; nothing to show yet.
    Starting,
    /// The `n`th QR code waits to be scanned.
    Qr(u32, Vec<u8>),
    /// The `n`th captcha waits to be typed.
    Captcha(u32, Vec<u8>),
    /// Logged in as this account (the login id).
    Done(String),
    /// Stopped, with the reason to show.
    Failed(String),
}

impl Status {
    /// The step id a client names to act on this status.
    fn step_id(&self) -> String {
        match self {
            Status::Credentials => "credentials".to_owned(),
            Status::Starting => "starting".to_owned(),
            Status::Qr(n, _) => format!("qr-{n}"),
            Status::Captcha(n, _) => format!("captcha-{n}"),
            Status::Done(_) => "complete".to_owned(),
            Status::Failed(_) => "failed".to_owned(),
        }
    }
}

/// One login process.
#[derive(Debug)]
struct Process {
    user: OwnedUserId,
    /// The account logging in: a QR login's temporary one, then `mx-<qq>`; empty before a
    /// password login starts.
    account: String,
    status: watch::Sender<Status>,
}

/// Every provisioning login of this process, by process id.
#[derive(Debug, Default)]
pub(super) struct ProvLogins {
    next: u64,
    processes: HashMap<String, Process>,
}

impl ProvLogins {
    fn add(&mut self, user: &UserId, account: String, status: Status) -> String {
        self.next += 1;
        let id = format!("login-{}", self.next);
        let (tx, _) = watch::channel(status);
        self.processes.insert(id.clone(), Process { user: user.to_owned(), account, status: tx });
        id
    }

    /// Follows a manager prompt: a new QR code or captcha, a QR login's real account, the end.
    pub(super) fn observe(&mut self, prompt: &LoginPrompt) {
        let account = match prompt {
            LoginPrompt::Qr { account, .. }
            | LoginPrompt::QrScanned { account }
            | LoginPrompt::Captcha { account, .. }
            | LoginPrompt::Session { account, .. }
            | LoginPrompt::State { account, .. } => account,
        };
        for process in self.processes.values_mut().filter(|p| &p.account == account) {
            let next = match (prompt, &*process.status.borrow()) {
                (LoginPrompt::Qr { png, .. }, Status::Qr(n, _)) => Status::Qr(n + 1, png.clone()),
                (LoginPrompt::Qr { png, .. }, _) => Status::Qr(1, png.clone()),
                (LoginPrompt::Captcha { image, .. }, Status::Captcha(n, _)) => {
                    Status::Captcha(n + 1, image.clone())
                }
                (LoginPrompt::Captcha { image, .. }, _) => Status::Captcha(1, image.clone()),
                (LoginPrompt::State { state: AccountState::Connected, .. }, _)
                    if !account.starts_with("mx-qr-") =>
                {
                    Status::Done(account.clone())
                }
                (
                    LoginPrompt::State {
                        state:
                            state @ (AccountState::BadCredentials
                            | AccountState::LoggedOut
                            | AccountState::UnknownError),
                        reason,
                        ..
                    },
                    _,
                ) => Status::Failed(reason.clone().unwrap_or_else(|| format!("{state:?}"))),
                _ => continue,
            };
            process.status.send_replace(next);
        }
        // A QR login's session names its number: the account runs on as `mx-<qq>`.
        if let LoginPrompt::Session { account, qq, .. } = prompt
            && account.starts_with("mx-qr-")
        {
            for process in self.processes.values_mut().filter(|p| &p.account == account) {
                process.account = bot_account_id(qq.get());
            }
        }
    }
}

/// The [`ProvisioningHandler`] of the bridge.
pub struct Provisioner {
    commands: Arc<Commands>,
    bridge: Arc<Bridge>,
}

impl Provisioner {
    /// A handler logging users in through `commands` on `bridge`.
    pub fn new(commands: Arc<Commands>, bridge: Arc<Bridge>) -> Arc<Provisioner> {
        Arc::new(Provisioner { commands, bridge })
    }

    fn logins(&self) -> std::sync::MutexGuard<'_, ProvLogins> {
        self.commands.prov.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// At least `user` level, or a refusal.
    fn admit(&self, user: &UserId) -> Result<(), ProvError> {
        let level = self.commands.level(&self.bridge, user);
        if level < Permission::User {
            return Err(ProvError::Forbidden(format!(
                "logging in needs the User permission; {user} has {level:?}"
            )));
        }
        Ok(())
    }

    /// The process `id` of `user`: its status receiver and account.
    fn process(
        &self,
        user: &UserId,
        id: &str,
    ) -> Result<(watch::Receiver<Status>, String), ProvError> {
        let logins = self.logins();
        match logins.processes.get(id) {
            Some(p) if p.user == user => Ok((p.status.subscribe(), p.account.clone())),
            _ => Err(ProvError::NotFound(format!("no login process {id}"))),
        }
    }

    /// The account `user` means: `login_id`, or their only one.
    fn account_of(&self, user: &UserId, login_id: Option<String>) -> Result<String, ProvError> {
        let accounts = self.bridge.accounts_of(user);
        match login_id {
            Some(id) if accounts.contains(&id) => Ok(id),
            Some(id) => Err(ProvError::NotFound(format!("{id} is not one of your logins"))),
            None => match accounts.as_slice() {
                [one] => Ok(one.clone()),
                [] => Err(ProvError::NotFound("you have no QQ login".to_owned())),
                _ => Err(ProvError::BadRequest("you have several logins: give login_id".into())),
            },
        }
    }

    /// Waits (at most [`WAIT`]) until the process shows something other than `seen`, then
    /// answers it as a step; a failure ends the process.
    async fn next_step(
        &self,
        id: &str,
        mut status: watch::Receiver<Status>,
        seen: &str,
    ) -> Result<LoginStep, ProvError> {
        let waited = tokio::time::timeout(WAIT, async {
            let next = status.wait_for(|s| s.step_id() != seen && *s != Status::Starting).await;
            next.map(|s| s.clone())
        })
        .await;
        let current = match waited {
            Ok(Ok(next)) => next,
            _ => status.borrow().clone(),
        };
        if matches!(current, Status::Done(_) | Status::Failed(_)) {
            self.logins().processes.remove(id);
        }
        step_of(id, current)
    }

    async fn start(&self, user: OwnedUserId, flow: String) -> Result<LoginStep, ProvError> {
        self.admit(&user)?;
        match flow.as_str() {
            "qr" => {
                let room = self.bridge.ensure_management_room(&user).await.map_err(internal)?;
                let account = self
                    .commands
                    .start_qr_account(&self.bridge, &user, &room)
                    .await
                    .map_err(ProvError::Internal)?;
                let id = self.logins().add(&user, account, Status::Starting);
                let (status, _) = self.process(&user, &id)?;
                self.next_step(&id, status, "starting").await
            }
            "password" => {
                let id = self.logins().add(&user, String::new(), Status::Credentials);
                step_of(&id, Status::Credentials)
            }
            other => Err(ProvError::NotFound(format!("no login flow {other:?}"))),
        }
    }

    async fn step(
        &self,
        user: OwnedUserId,
        id: String,
        step_id: String,
        input: BTreeMap<String, String>,
    ) -> Result<LoginStep, ProvError> {
        let (status, account) = self.process(&user, &id)?;
        let current = status.borrow().clone();
        if current.step_id() != step_id {
            return Err(ProvError::BadRequest(format!(
                "step {step_id} is not the current one ({})",
                current.step_id()
            )));
        }
        match current {
            Status::Credentials => {
                let field = |name: &str| {
                    input.get(name).cloned().ok_or_else(|| {
                        ProvError::BadRequest(format!("the field {name:?} is missing"))
                    })
                };
                let qq = qq_number(&field("username")?).map_err(ProvError::BadRequest)?;
                let password = Secret::new(field("password")?);
                if let Some(refusal) = self.commands.refuse_number(&self.bridge, &user, qq).await {
                    return Err(ProvError::Conflict(refusal));
                }
                let room = self.bridge.ensure_management_room(&user).await.map_err(internal)?;
                if let Some(p) = self.logins().processes.get_mut(&id) {
                    p.account = bot_account_id(qq);
                    p.status.send_replace(Status::Starting);
                }
                self.commands.password_login(&self.bridge, &user, &room, qq, password).await;
                self.next_step(&id, status, "starting").await
            }
            Status::Captcha(..) => {
                let text = input.get("captcha").cloned().ok_or_else(|| {
                    ProvError::BadRequest("the field \"captcha\" is missing".to_owned())
                })?;
                let taken = self
                    .bridge
                    .accounts()
                    .send(AnswerCaptcha { account, text })
                    .await
                    .unwrap_or(false);
                if !taken {
                    return Err(ProvError::BadRequest("no captcha is waiting any more".into()));
                }
                self.next_step(&id, status, &step_id).await
            }
            _ => self.next_step(&id, status, &step_id).await,
        }
    }

    async fn whoami(&self, user: OwnedUserId) -> Result<Value, ProvError> {
        let logins: Vec<Value> = self
            .bridge
            .accounts_of(&user)
            .into_iter()
            .map(|account| {
                let state = self.bridge.bridge_state_of(&account);
                let state = state.and_then(|s| serde_json::to_value(s).ok()).unwrap_or(Value::Null);
                let qq = self.bridge.account_number(&account).map(|q| q.get());
                json!({"id": account, "name": qq.map(|q| q.to_string()), "state": state})
            })
            .collect();
        let management_room = self.bridge.management_room_of(&user).await;
        Ok(json!({
            "network": {"displayname": "QQ", "network_id": "qq", "beeper_bridge_type": "qqbridge"},
            "login_flows": flows(),
            "bridge_bot": self.bridge.matrix().settings().bot.as_str(),
            "command_prefix": self.commands.settings.prefix,
            "management_room": management_room,
            "logins": logins,
        }))
    }

    async fn contacts(&self, user: OwnedUserId, login: Option<String>) -> Result<Value, ProvError> {
        self.admit(&user)?;
        let account = self.account_of(&user, login)?;
        let directory = self
            .bridge
            .accounts()
            .send(GetDirectory { account: account.clone() })
            .await
            .ok()
            .flatten()
            .ok_or_else(|| {
                ProvError::Internal(format!("the contacts of {account} are not loaded"))
            })?;
        let mut contacts: Vec<Value> = directory
            .friends
            .values()
            .filter_map(|f| f.qq.map(|qq| json!({"id": qq.get().to_string(), "name": f.nick})))
            .collect();
        contacts.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
        Ok(json!({ "contacts": contacts }))
    }

    async fn resolve(
        &self,
        user: OwnedUserId,
        identifier: String,
        login: Option<String>,
        open: bool,
    ) -> Result<Value, ProvError> {
        let qq = qq_number(&identifier).map_err(ProvError::BadRequest)?;
        let listed = self.contacts(user.clone(), login.clone()).await?;
        let Some(contact) = listed["contacts"]
            .as_array()
            .and_then(|all| all.iter().find(|c| c["id"] == qq.to_string().as_str()))
            .cloned()
        else {
            return Err(ProvError::NotFound(format!("QQ {qq} is not a friend of this login")));
        };
        if !open {
            return Ok(contact);
        }
        let account = self.account_of(&user, login)?;
        let room = self.bridge.open_friend_chat(&account, qq).await.map_err(internal)?;
        Ok(json!({"id": contact["id"], "name": contact["name"], "dm_room_mxid": room}))
    }
}

fn internal(error: impl std::fmt::Display) -> ProvError {
    ProvError::Internal(error.to_string())
}

/// The login flows offered.
fn flows() -> Vec<LoginFlow> {
    vec![
        LoginFlow {
            id: "qr".to_owned(),
            name: "QR code".to_owned(),
            description: "Scan a QR code with the QQ app on your phone".to_owned(),
        },
        LoginFlow {
            id: "password".to_owned(),
            name: "Password".to_owned(),
            description: "Log in with your QQ number and password (a captcha may follow)"
                .to_owned(),
        },
    ]
}

/// The step showing `status` of process `id`.
fn step_of(id: &str, status: Status) -> Result<LoginStep, ProvError> {
    let step_id = status.step_id();
    let (instructions, kind) = match status {
        Status::Credentials => (
            "Enter your QQ number and password.".to_owned(),
            StepKind::UserInput {
                fields: vec![
                    field("username", "username", "QQ number"),
                    field("password", "password", "Password"),
                ],
                image: None,
            },
        ),
        Status::Starting => (
            "The login is starting: QQ has not answered yet. Call this step again to wait."
                .to_owned(),
            StepKind::Wait,
        ),
        Status::Qr(n, png) => (
            format!(
                "Scan this QR code with the QQ app (code {n}); it is replaced when it expires."
            ),
            StepKind::DisplayQr { png },
        ),
        Status::Captcha(_, image) => (
            "Type the characters of this captcha.".to_owned(),
            StepKind::UserInput {
                fields: vec![field("2fa_code", "captcha", "Captcha")],
                image: Some(image),
            },
        ),
        Status::Done(account) => {
            (format!("Logged in: {account}."), StepKind::Complete { login_id: account })
        }
        Status::Failed(reason) => {
            return Err(ProvError::BadRequest(format!("the login failed: {reason}")));
        }
    };
    Ok(LoginStep { process_id: id.to_owned(), step_id, instructions, kind })
}

fn field(kind: &str, id: &str, name: &str) -> InputField {
    InputField { kind: kind.to_owned(), id: id.to_owned(), name: name.to_owned() }
}

impl ProvisioningHandler for Provisioner {
    fn whoami(&self, user: OwnedUserId) -> ProvFuture<Value> {
        self.owned(|p| async move { p.whoami(user).await })
    }

    fn login_flows(&self) -> Vec<LoginFlow> {
        flows()
    }

    fn login_start(&self, user: OwnedUserId, flow: String) -> ProvFuture<LoginStep> {
        self.owned(|p| async move { p.start(user, flow).await })
    }

    fn login_step(
        &self,
        user: OwnedUserId,
        id: String,
        step: String,
        input: BTreeMap<String, String>,
    ) -> ProvFuture<LoginStep> {
        self.owned(|p| async move { p.step(user, id, step, input).await })
    }

    fn logout(&self, user: OwnedUserId, login_id: String) -> ProvFuture<()> {
        self.owned(|p| async move {
            let account = p.account_of(&user, Some(login_id))?;
            p.commands.logout(&p.bridge, &account).await;
            Ok(())
        })
    }

    fn logins(&self, user: OwnedUserId) -> ProvFuture<Vec<String>> {
        self.owned(|p| async move { Ok(p.bridge.accounts_of(&user)) })
    }

    fn contacts(&self, user: OwnedUserId, login: Option<String>) -> ProvFuture<Value> {
        self.owned(|p| async move { p.contacts(user, login).await })
    }

    fn resolve_identifier(
        &self,
        user: OwnedUserId,
        qq: String,
        login: Option<String>,
    ) -> ProvFuture<Value> {
        self.owned(|p| async move { p.resolve(user, qq, login, false).await })
    }

    fn create_dm(&self, user: OwnedUserId, qq: String, login: Option<String>) -> ProvFuture<Value> {
        self.owned(|p| async move { p.resolve(user, qq, login, true).await })
    }
}

impl Provisioner {
    /// Runs `work` on an owned copy: the `'static` future the routes need.
    fn owned<T, Fut>(&self, work: impl FnOnce(Provisioner) -> Fut) -> ProvFuture<T>
    where
        Fut: Future<Output = Result<T, ProvError>> + Send + 'static,
    {
        work(Provisioner { commands: self.commands.clone(), bridge: self.bridge.clone() }).boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webqq::QqNumber;

    #[test]
    fn test_prompts_move_a_qr_process_to_done() {
        let mut logins = ProvLogins::default();
        let user = UserId::parse("@a:x").unwrap();
        let id = logins.add(&user, "mx-qr-1".into(), Status::Starting);
        let status = logins.processes[&id].status.subscribe();
        logins.observe(&LoginPrompt::Qr { account: "mx-qr-1".into(), png: vec![1] });
        assert_eq!(*status.borrow(), Status::Qr(1, vec![1]));
        logins.observe(&LoginPrompt::Qr { account: "mx-qr-1".into(), png: vec![2] });
        assert_eq!(status.borrow().step_id(), "qr-2");
        logins.observe(&LoginPrompt::Qr { account: "other".into(), png: vec![3] });
        assert_eq!(status.borrow().step_id(), "qr-2", "another account's prompt is not ours");
        let session = LoginPrompt::Session {
            account: "mx-qr-1".into(),
            qq: QqNumber::new(10002),
            nick: "n".into(),
        };
        logins.observe(&session);
        assert_eq!(logins.processes[&id].account, "mx-10002");
        logins.observe(&LoginPrompt::State {
            account: "mx-10002".into(),
            state: AccountState::Connected,
            reason: None,
        });
        assert_eq!(*status.borrow(), Status::Done("mx-10002".into()));
        assert_eq!(step_of(&id, status.borrow().clone()).unwrap().type_name(), "complete");
    }

    #[test]
    fn test_a_login_still_starting_answers_a_wait_without_an_image() {
        let step = step_of("p1", Status::Starting).unwrap();
        assert_eq!((step.step_id.as_str(), step.type_name()), ("starting", "display_and_wait"));
        assert_eq!(step.kind, StepKind::Wait);
        assert!(step.instructions.contains("Call this step again"), "{}", step.instructions);
    }

    #[test]
    fn test_captcha_and_failure_steps() {
        let mut logins = ProvLogins::default();
        let user = UserId::parse("@a:x").unwrap();
        let id = logins.add(&user, "mx-10003".into(), Status::Starting);
        let status = logins.processes[&id].status.subscribe();
        logins
            .observe(&LoginPrompt::Captcha { account: "mx-10003".into(), image: vec![0xFF, 0xD8] });
        let step = step_of(&id, status.borrow().clone()).unwrap();
        assert_eq!((step.step_id.as_str(), step.type_name()), ("captcha-1", "user_input"));
        logins.observe(&LoginPrompt::State {
            account: "mx-10003".into(),
            state: AccountState::BadCredentials,
            reason: Some("wrong password".into()),
        });
        let failed = step_of(&id, status.borrow().clone()).unwrap_err();
        assert_eq!(failed, ProvError::BadRequest("the login failed: wrong password".into()));
        let credentials = step_of(&id, Status::Credentials).unwrap();
        let StepKind::UserInput { fields, .. } = credentials.kind else { panic!("not input") };
        assert_eq!(
            fields.iter().map(|f| f.id.as_str()).collect::<Vec<_>>(),
            ["username", "password"]
        );
    }
}
