//! Start-up of the Matrix side (MATRIX.md §3, "Start-up"): read and check the registration,
//! start the account manager with the bridge as its event sink, serve the appservice API, wait
//! for the homeserver, register the bot, check `whoami`, start the bot's encryption device (when
//! `encryption.bot_device`) and ping the appservice through the homeserver. Each failure is a
//! [`StartupError`] that says what to fix.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use ruma::{OwnedServerName, OwnedUserId, TransactionId, UserId};
use tokio::sync::oneshot;

use crate::account::account_actor::Credentials;
use crate::account::manager::{AccountManager, ManagerSettings};
use crate::bridge::actor::BridgeActor;
use crate::bridge::commands::{
    CommandSettings, Commands, EncryptedOut, ManagementOut, Permission, Permissions, Provisioner,
};
use crate::bridge::ids::GhostIds;
use crate::bridge::intake::Intake;
use crate::bridge::portal::{Bridge, BridgeSettings};
use crate::bridge::state::StatusSettings;
use crate::config::{Config, LoginMode};
use crate::matrix::appservice::{self, AppserviceStatus, ServerSettings};
use crate::matrix::bot::{BotClient, BotError, BotSettings};
use crate::matrix::client::{ClientSettings, MatrixClient};
use crate::matrix::provisioning::Provisioning;
use crate::matrix::registration::Registration;
use crate::matrix::{Error, Token};
use crate::metrics::Metrics;
use crate::store::Store;

/// How long start-up waits for the homeserver to answer at all.
const HOMESERVER_DEADLINE: Duration = Duration::from_secs(120);
/// How often it asks meanwhile.
const HOMESERVER_INTERVAL: Duration = Duration::from_secs(2);
/// Waits between attempts at the start-up ping while the homeserver answers 5xx.
const PING_WAITS: [Duration; 4] = [
    Duration::from_secs(1),
    Duration::from_secs(2),
    Duration::from_secs(4),
    Duration::from_secs(8),
];
/// Waits between attempts to start the bot's device while the homeserver fails.
const BOT_DEVICE_WAITS: [Duration; 4] = [
    Duration::from_secs(2),
    Duration::from_secs(4),
    Duration::from_secs(8),
    Duration::from_secs(16),
];

/// Why the Matrix side did not start. Each message names the setting or the step.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// The registration file is missing, unreadable or disagrees with the config.
    #[error("{0}")]
    Registration(String),
    /// A configured id does not parse.
    #[error("config: {0}")]
    BadConfig(String),
    /// The homeserver never answered.
    #[error("the homeserver at {url} did not answer: {source}")]
    Unreachable {
        /// `homeserver.address`.
        url: String,
        /// The last error.
        source: Error,
    },
    /// `whoami` failed or named someone else: the as_token is not registered there.
    #[error(
        "the homeserver does not accept the registration's as_token ({0}); is the registration file loaded by the homeserver?"
    )]
    Token(String),
    /// The bot could not be registered.
    #[error("cannot register the bridge bot: {0}")]
    Bot(Error),
    /// The homeserver could not reach the appservice listener.
    #[error("the homeserver cannot reach the bridge at {url}: {source}")]
    Ping {
        /// `appservice.address`.
        url: String,
        /// What the ping said.
        source: Error,
    },
    /// The bot's encryption device did not start.
    #[error(
        "the bridge bot's encryption device did not start: {0} (encryption.bot_device: false runs the bot without one)"
    )]
    BotDevice(String),
    /// The appservice listener could not serve.
    #[error("appservice listener: {0}")]
    Listen(std::io::Error),
}

/// The running Matrix side.
pub struct MatrixSide {
    /// The account manager (its events flow into the bridge).
    pub accounts: Addr<AccountManager>,
    /// Readiness shown on `/health/ready`.
    pub status: AppserviceStatus,
    /// The bridge core (relay settings, bridge state; what the bot commands act on).
    pub bridge: Arc<Bridge>,
    /// The bot's own device client, when `encryption.bot_device`.
    pub bot_device: Option<BotClient>,
    stop: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl MatrixSide {
    /// Stops the appservice listener (in-flight transactions finish) and the bot device's sync.
    pub async fn stop(mut self) {
        if let Some(device) = self.bot_device.take() {
            device.stop().await;
        }
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
    }
}

/// Starts everything of the Matrix side on the current actix system ([`prepare`], then
/// [`Prepared::serve`]). `listener` is the bound `appservice.listen`.
pub async fn start(
    config: &Config,
    store: Store,
    metrics: Metrics,
    manager: ManagerSettings,
    listener: TcpListener,
) -> Result<MatrixSide, StartupError> {
    prepare(config, store, metrics, manager).await?.serve(config, listener).await
}

/// The Matrix side made, its account manager running with the bridge as its event sink, the
/// homeserver not yet needed: accounts added now log in and poll at once, their events waiting
/// in the inbox (RELIABILITY.md §1.7: pollers first, so a homeserver that is down or slow at
/// start costs QQ nothing). [`Prepared::serve`] does the rest.
pub struct Prepared {
    /// The account manager.
    pub accounts: Addr<AccountManager>,
    bridge: Arc<Bridge>,
    matrix: MatrixClient,
    registration: Registration,
    bot: OwnedUserId,
    store: Store,
    metrics: Metrics,
}

/// Reads and checks the registration and the ids, and starts the bridge and the account
/// manager; nothing here needs the homeserver.
pub async fn prepare(
    config: &Config,
    store: Store,
    metrics: Metrics,
    manager: ManagerSettings,
) -> Result<Prepared, StartupError> {
    let registration = Registration::read(&config.appservice.registration)
        .map_err(|e| StartupError::Registration(e.to_string()))?;
    registration.check_against(config).map_err(|e| StartupError::Registration(e.to_string()))?;
    let server_name = OwnedServerName::try_from(config.homeserver.domain.as_str())
        .map_err(|e| StartupError::BadConfig(format!("homeserver.domain: {e}")))?;
    let bot = UserId::parse(config.bot_user_id())
        .map_err(|e| StartupError::BadConfig(format!("appservice.bot_localpart: {e}")))?;
    let homeserver = url::Url::parse(&config.homeserver.address)
        .map_err(|e| StartupError::BadConfig(format!("homeserver.address: {e}")))?;
    let ghosts = GhostIds::new(&config.bridge.username_template, &server_name)
        .ok_or_else(|| StartupError::BadConfig("bridge.username_template needs {qq}".into()))?;
    let owners = owners(config)?;
    let as_token = Token::new(registration.as_token.expose().clone());
    let settings = ClientSettings::new(
        homeserver,
        server_name,
        as_token,
        bot.clone(),
        config.appservice.id.clone(),
    );
    let matrix = MatrixClient::new(settings, metrics.clone())
        .map_err(|e| StartupError::BadConfig(format!("matrix client: {e}")))?;
    let bridge_settings = BridgeSettings {
        bot: bot.clone(),
        ghosts,
        displayname_template: config.bridge.displayname_template.clone(),
        owners,
        max_image_bytes: usize::try_from(config.bridge.max_image_bytes).unwrap_or(usize::MAX),
        max_text_bytes: usize::try_from(config.bridge.max_text_bytes).unwrap_or(usize::MAX),
        message_status_events: config.bridge.message_status_events,
        initial_group_members: usize::try_from(config.bridge.initial_group_members)
            .unwrap_or(usize::MAX),
        presence: config.bridge.presence,
        portal_creation: config.bridge.portal_creation,
        numbers: config
            .enabled_accounts()
            .map(|a| (a.id.clone(), crate::webqq::QqNumber::new(a.qq)))
            .collect(),
        relay: config.relay.clone(),
        double_puppet: config.double_puppet.clone(),
        status: StatusSettings {
            notices: config.bridge.bridge_status_notices,
            transient_hold: Duration::from_secs(config.bridge.bridge_status_transient_hold_seconds),
            error_hold: Duration::from_secs(config.bridge.bridge_status_error_hold_seconds),
            endpoint: config.homeserver.status_endpoint.clone(),
        },
    };
    let bridge_store = store.clone();
    let actor_store = store.clone();
    let manager_metrics = metrics.clone();
    let bridge_matrix = matrix.clone();
    let (bridge_tx, bridge_rx) = oneshot::channel();
    let _actor = BridgeActor::create(move |ctx| {
        let accounts = AccountManager::new(
            manager,
            manager_metrics,
            bridge_store.clone(),
            ctx.address().recipient(),
        )
        .persisting_polls()
        .start();
        let bridge =
            Arc::new(Bridge::new(bridge_settings, bridge_matrix, bridge_store, accounts.clone()));
        bridge.wait_for_homeserver();
        let _ = bridge_tx.send((bridge.clone(), accounts));
        BridgeActor::new(bridge, actor_store)
    });
    let (bridge, accounts) = bridge_rx
        .await
        .map_err(|_| StartupError::BadConfig("bridge actor did not start".into()))?;
    Ok(Prepared { accounts, bridge, matrix, registration, bot, store, metrics })
}

impl Prepared {
    /// Waits for the homeserver, registers the bot, checks `whoami`, lets the held QQ events
    /// go, resends the outbox, starts the bot's device and commands, serves the appservice API
    /// on `listener` and pings it through the homeserver.
    pub async fn serve(
        self,
        config: &Config,
        listener: TcpListener,
    ) -> Result<MatrixSide, StartupError> {
        connect(
            &self.matrix,
            &self.bot,
            &config.homeserver.address,
            &config.appservice.bot_localpart,
        )
        .await?;
        self.bridge.homeserver_found();
        self.open(config, listener).await
    }

    /// [`Prepared::serve`] once the homeserver is there.
    async fn open(
        self,
        config: &Config,
        listener: TcpListener,
    ) -> Result<MatrixSide, StartupError> {
        let Prepared { accounts, bridge, matrix, registration, bot, store, metrics } = self;
        bridge.set_global_state(crate::bridge::state::GlobalEvent::Starting).await;

        let status = AppserviceStatus::new();
        let mut server_settings =
            ServerSettings::new(Token::new(registration.hs_token.expose().clone()));
        server_settings.max_body_bytes =
            usize::try_from(config.appservice.max_body_bytes).unwrap_or(usize::MAX);
        // Who may speak through a portal's relay account (MATRIX.md §6.3): `relay` or more in
        // bridge.permissions. Set before the outbox replay, which routes relayed messages too.
        let relay_permissions = Permissions::new(config.bridge.permissions.clone());
        bridge.set_may_relay(Arc::new(move |user: &UserId| {
            relay_permissions.level_of(user) >= Permission::Relay
        }));
        let replayed = bridge.replay_outbox().await;
        if replayed > 0 {
            tracing::info!(
                messages = replayed,
                "Matrix messages of the previous run queued for QQ again"
            );
        }
        let bot_device = match config.encryption.bot_device {
            true => Some(start_bot_device(config, &matrix, &bot).await?),
            false => None,
        };
        let out: Arc<dyn ManagementOut> = match &bot_device {
            Some(device) => Arc::new(EncryptedOut::new(matrix.clone(), device.clone())),
            None => Arc::new(matrix.clone()),
        };
        let commands = Arc::new(Commands::new(command_settings(config), out));
        let restored = commands.start(&bridge).await;
        if restored > 0 {
            tracing::info!(accounts = restored, "accounts logged in from Matrix started again");
        }
        if let Some(secret) = &config.provisioning.shared_secret {
            server_settings.provisioning = Some(Provisioning {
                shared_secret: Token::new(secret.expose().clone()),
                requests_per_minute: config.provisioning.requests_per_minute,
                handler: Provisioner::new(commands.clone(), bridge.clone()),
            });
        }
        let intake = Arc::new(Intake::new(bridge.clone(), store));
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(appservice::serve(
            listener,
            server_settings,
            intake,
            status.clone(),
            metrics,
            async {
                stopped.await.ok();
            },
        ));
        let mut side = MatrixSide {
            accounts,
            status: status.clone(),
            bridge,
            bot_device,
            stop: Some(stop),
            server: Some(server),
        };

        if let Err(source) = ping(&matrix, &status).await {
            if let Some(stop) = side.stop.take() {
                let _ = stop.send(());
            }
            if let Some(device) = side.bot_device.take() {
                device.stop().await;
            }
            return Err(StartupError::Ping { url: config.appservice.address.clone(), source });
        }
        status.set_ready(true);
        // UNCONFIGURED when no account runs (none in the config, none logged in through the bot):
        // the first login makes it RUNNING (`bridge::state`).
        let accounts = side.accounts.send(crate::account::manager::GetStates).await;
        let global = match accounts {
            Ok(states) if states.is_empty() => crate::bridge::state::GlobalEvent::Unconfigured,
            _ => crate::bridge::state::GlobalEvent::Running,
        };
        side.bridge.set_global_state(global).await;
        tracing::info!(listen = %config.appservice.listen, "appservice ready; the homeserver reaches us");
        Ok(side)
    }
}

/// Asks the homeserver to ping our appservice listener. A ping that reached the listener
/// (`status` saw its transaction id) proves the way, whatever the homeserver answers: Synapse
/// under load answers a delivered ping 502 now and then ("Tried to cancel an already-called
/// event"). Else a 5xx or a transient failure is tried again after [`PING_WAITS`]; the last
/// error is the answer.
async fn ping(matrix: &MatrixClient, status: &AppserviceStatus) -> Result<(), Error> {
    let mut waits = PING_WAITS.iter();
    loop {
        let txn = TransactionId::new();
        let Err(error) = matrix.appservice_ping(&txn).await else {
            return Ok(());
        };
        if status.ping_received(txn.as_str()) {
            tracing::info!(%error, "the homeserver's ping reached us though it answered an error; going on");
            return Ok(());
        }
        let again = error.is_transient() || error.status().is_some_and(|s| s >= 500);
        match waits.next() {
            Some(wait) if again => {
                tracing::info!(%error, retry_in = ?wait, "appservice ping failed; trying again");
                tokio::time::sleep(*wait).await;
            }
            _ => return Err(error),
        }
    }
}

/// Waits for the homeserver, registers the bot (a namespace user, so calls may assert it) and
/// checks with `whoami` that the homeserver knows our token and the bot.
async fn connect(
    matrix: &MatrixClient,
    bot: &UserId,
    url: &str,
    localpart: &str,
) -> Result<(), StartupError> {
    matrix
        .wait_for_homeserver(HOMESERVER_INTERVAL, HOMESERVER_DEADLINE)
        .await
        .map_err(|source| StartupError::Unreachable { url: url.to_owned(), source })?;
    match matrix.ensure_registered(localpart).await {
        Ok(()) => {}
        Err(error) if error.errcode() == Some("M_UNKNOWN_TOKEN") => {
            return Err(StartupError::Token(error.to_string()));
        }
        Err(error) => return Err(StartupError::Bot(error)),
    }
    match matrix.whoami().await {
        Ok(me) if me == bot => Ok(()),
        Ok(other) => Err(StartupError::Token(format!("whoami answered {other}, not {bot}"))),
        Err(error) => Err(StartupError::Token(error.to_string())),
    }
}

/// Starts the bot's own device client (MATRIX.md §5.3) from `encryption.data_dir`, trying
/// again a few times when the homeserver fails (it may be restarting); a device file or
/// directory that cannot be used fails at once. The events its sync reports are not needed
/// (transactions bring every event, `decrypt` reads the encrypted ones), so they are drained.
async fn start_bot_device(
    config: &Config,
    matrix: &MatrixClient,
    bot: &UserId,
) -> Result<BotClient, StartupError> {
    let settings = matrix.settings();
    let bot_settings = BotSettings::new(
        settings.homeserver.clone(),
        bot.to_owned(),
        settings.as_token.clone(),
        config.encryption.data_dir.clone(),
    );
    let mut waits = BOT_DEVICE_WAITS.iter();
    let (device, mut events) = loop {
        match BotClient::start(bot_settings.clone(), std::future::pending()).await {
            Ok(started) => break started,
            Err(error) => {
                let transient = matches!(
                    error,
                    BotError::Network(_)
                        | BotError::Sdk { .. }
                        | BotError::Login { status: 500..=599, .. }
                );
                match waits.next() {
                    Some(wait) if transient => {
                        tracing::warn!(%error, wait_s = wait.as_secs(), "bot encryption device not started; trying again");
                        tokio::time::sleep(*wait).await;
                    }
                    _ => return Err(StartupError::BotDevice(error.to_string())),
                }
            }
        }
    };
    tokio::spawn(async move { while events.recv().await.is_some() {} });
    tracing::info!(device = %device.device_id(), "bot encryption device ready");
    Ok(device)
}

/// The bot's settings: prefix, permissions and each config account's credentials.
fn command_settings(config: &Config) -> CommandSettings {
    let config_accounts = config
        .enabled_accounts()
        .map(|account| {
            let credentials = match (account.login, &account.password) {
                (LoginMode::Password, Some(password)) => Credentials::Password(password.clone()),
                (LoginMode::Qr, _) => Credentials::Qr,
                _ => Credentials::SessionOnly,
            };
            (account.id.clone(), (account.qq, credentials))
        })
        .collect();
    CommandSettings {
        prefix: config.bridge.command_prefix.clone(),
        permissions: Permissions::new(config.bridge.permissions.clone()),
        config_accounts,
    }
}

/// The owner of each enabled account.
fn owners(config: &Config) -> Result<BTreeMap<String, OwnedUserId>, StartupError> {
    config
        .enabled_accounts()
        .map(|account| {
            let owner = account.owner.as_deref().unwrap_or_default();
            UserId::parse(owner).map(|user| (account.id.clone(), user)).map_err(|e| {
                StartupError::BadConfig(format!("accounts[{}].owner: {e}", account.id))
            })
        })
        .collect()
}
