//! The `qqbridge` command: flags, tracing set-up, listeners; the work is in the library.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};

use qqbridge::account::account_actor::Credentials;
use qqbridge::account::manager::{AccountManager, AddAccount, ManagerSettings};
use qqbridge::account::poller::Backoff;
use qqbridge::account::poller_actor::QqEventsReceived;
use qqbridge::account::send_queue::SendPolicy;
use qqbridge::config::{Config, LoginMode};
use qqbridge::emulator::{self, Emulator, EmulatorOptions, Listeners, World};
use qqbridge::matrix::registration::{self, Generated, Registration};
use qqbridge::metrics::Metrics;
use qqbridge::store::Store;
use qqbridge::webqq::api::poll2::PollAnswer;
use qqbridge::webqq::api::ptqrlogin::QrState;
use qqbridge::webqq::client::{ClientConfig, WebQqClient};
use qqbridge::webqq::content::Content;
use qqbridge::webqq::directory::Directory;
use qqbridge::webqq::login::{PasswordLogin, PasswordStart, QrLogin, relink};
use qqbridge::webqq::session::Session;
use qqbridge::webqq::{Did, GroupNumber, QqNumber, Secret};

/// qqbridge: a Matrix <-> QQ bridge over the WebQQ / SmartQQ web protocol.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the accounts of a config (logs their events until the Matrix side lands).
    Run(ConfigArgs),
    /// Load and validate a config, printing the first problem (the same check `run` makes);
    /// with `bridge.enabled`, also check the registration file against it.
    CheckConfig(ConfigArgs),
    /// Write the appservice registration file the homeserver reads (MATRIX.md §4).
    GenerateRegistration(GenerateRegistrationArgs),
    /// Run the WebQQ emulator (the QQ side of the demo, tests and benchmarks).
    Emulator(EmulatorArgs),
    /// A small WebQQ client for exploring the protocol by hand.
    Qq(QqArgs),
}

#[derive(Debug, clap::Args)]
struct ConfigArgs {
    /// The config file; `QQBRIDGE__SECTION__KEY` environment variables override its keys.
    #[arg(short, long, default_value = "bridge.yaml")]
    config: PathBuf,
}

#[derive(Debug, clap::Args)]
struct GenerateRegistrationArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// Where to write it; `appservice.registration` of the config when absent.
    #[arg(short, long)]
    registration: Option<PathBuf>,
    /// Rewrite an existing file (keeping its tokens).
    #[arg(long)]
    force: bool,
    /// With --force: replace the tokens too (the homeserver must then reload the file).
    #[arg(long, requires = "force")]
    new_tokens: bool,
}

#[derive(Debug, clap::Args)]
struct EmulatorArgs {
    /// Plain HTTP listener.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// TLS listener (also accepts plain HTTP).
    #[arg(long)]
    tls_listen: Option<SocketAddr>,
    /// Where to write the emulator's CA certificate (PEM), for clients to trust.
    #[arg(long)]
    ca_cert_out: Option<PathBuf>,
    /// A world file (YAML); the built-in demo world when absent.
    #[arg(long)]
    world: Option<PathBuf>,
    /// How long poll2 is held when idle, in seconds (the real service: about 60).
    #[arg(long)]
    poll_hold: Option<f64>,
}

#[derive(Debug, clap::Args)]
struct QqArgs {
    /// Send every QQ host name to this address (an emulator); ordinary DNS when absent.
    #[arg(long, env = "QQBRIDGE_QQ_CONNECT")]
    connect: Option<SocketAddr>,
    /// An extra CA certificate (PEM) to trust, e.g. the emulator's.
    #[arg(long, env = "QQBRIDGE_QQ_CA_CERT")]
    ca_cert: Option<PathBuf>,
    /// Where the session is stored after a login and read by the other commands (mode 0600).
    #[arg(long, default_value = "qq-session.json")]
    session: PathBuf,
    #[command(subcommand)]
    command: QqCommand,
}

#[derive(Debug, Subcommand)]
enum QqCommand {
    /// Log in by QR code: the code is drawn here and saved as a PNG; scan it with QQ.
    LoginQr {
        /// Where to save the QR image.
        #[arg(long, default_value = "qq-login-qr.png")]
        qr_out: PathBuf,
    },
    /// Log in with a password (read from QQBRIDGE_QQ_PASSWORD or standard input).
    LoginPassword {
        /// The QQ number.
        qq: u64,
        /// Where to save a captcha image if one is asked for.
        #[arg(long, default_value = "qq-captcha.jpg")]
        captcha_out: PathBuf,
    },
    /// Reopen the stored session (relink) without a new login.
    Relink,
    /// List friends, groups and discussions with their stable numbers.
    Contacts,
    /// Print incoming events until interrupted (or `--count` events).
    Listen {
        /// Stop after this many events.
        #[arg(long)]
        count: Option<usize>,
    },
    /// Send a text message.
    Send {
        /// friend, group or discussion.
        #[arg(value_parser = ["friend", "group", "discussion"])]
        kind: String,
        /// The friend's QQ number, the group's number or the discussion id.
        target: u64,
        /// The text.
        text: String,
    },
    /// Log out (logout2) and delete the stored session.
    Logout,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::CheckConfig(args) => {
            let config = Config::load(Some(&args.config))?;
            println!(
                "{}: ok ({} accounts, {} enabled)",
                args.config.display(),
                config.accounts.len(),
                config.enabled_accounts().count()
            );
            if config.bridge.enabled {
                check_registration(&config)?;
                println!("{}: ok", config.appservice.registration.display());
            }
            Ok(())
        }
        Command::GenerateRegistration(args) => {
            let config = Config::load(Some(&args.config.config))?;
            let path = args.registration.unwrap_or_else(|| config.appservice.registration.clone());
            let outcome = registration::generate_file(&config, &path, args.force, args.new_tokens)?;
            let what = match outcome {
                Generated::Created => "written with new tokens",
                Generated::RewrittenKeepingTokens => "rewritten, tokens kept",
                Generated::RewrittenWithNewTokens => "rewritten with new tokens",
            };
            println!("{}: {what}; give it to the homeserver and restart it", path.display());
            Ok(())
        }
        Command::Run(args) => {
            // The config is checked before anything starts, and names the key that is wrong.
            let config = Config::load(Some(&args.config))?;
            if config.bridge.enabled {
                check_registration(&config)?;
            }
            init_tracing(&config.logging.filter);
            actix::System::new().block_on(run_bridge(config))
        }
        Command::Emulator(args) => {
            init_tracing("info");
            tokio_runtime()?.block_on(run_emulator(args))
        }
        Command::Qq(args) => {
            init_tracing("info");
            tokio_runtime()?.block_on(run_qq(args))
        }
    }
}

/// Reads `appservice.registration` and checks it against `config` (MATRIX.md §4: the bridge
/// refuses to run when they disagree).
fn check_registration(config: &Config) -> anyhow::Result<Registration> {
    let registration = Registration::read(&config.appservice.registration)?;
    registration.check_against(config)?;
    Ok(registration)
}

fn init_tracing(default_filter: &str) {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter)),
        )
        .with_writer(std::io::stderr)
        .init();
}

fn tokio_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")
}

/// Logs QQ events (the Matrix side will take them over).
struct EventLogger;

impl actix::Actor for EventLogger {
    type Context = actix::Context<Self>;
}

impl actix::Handler<QqEventsReceived> for EventLogger {
    type Result = ();

    fn handle(&mut self, msg: QqEventsReceived, _: &mut actix::Context<Self>) {
        for event in msg.events {
            tracing::info!(account = %msg.account, poll_type = event.poll_type(), "qq event");
            tracing::trace!(account = %msg.account, event = ?event, "qq event body");
        }
    }
}

/// Opens the configured store: SQLite at `store.path`, or PostgreSQL at the URL read from
/// `store.postgres_url_env` (never printed: it may hold a password).
fn open_store(config: &qqbridge::config::StoreConfig) -> anyhow::Result<Store> {
    use qqbridge::config::StoreBackend;
    match (config.backend, &config.postgres_url) {
        (StoreBackend::Sqlite, _) => Store::open(&config.path)
            .with_context(|| format!("cannot open the store at {}", config.path.display())),
        (StoreBackend::Postgres, Some(url)) => {
            Store::open_postgres(url.expose()).context("cannot open the PostgreSQL store")
        }
        (StoreBackend::Postgres, None) => {
            bail!("store.backend is postgres but store.postgres_url_env names no set variable")
        }
    }
}

async fn run_bridge(config: Config) -> anyhow::Result<()> {
    use actix::Actor;

    let store = open_store(&config.store)?;
    let metrics = Metrics::new();
    let listener = std::net::TcpListener::bind(config.metrics.listen)
        .with_context(|| format!("cannot listen on metrics.listen = {}", config.metrics.listen))?;
    let ca = match &config.qq.ca_cert {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .with_context(|| format!("qq.ca_cert: cannot read {}", path.display()))?,
        ),
        None => None,
    };
    let mut client = match config.qq.connect {
        Some(addr) => ClientConfig::redirect_all(addr, ca),
        None => ClientConfig {
            extra_root_ca_pem: ca.map(std::sync::Arc::from),
            ..ClientConfig::default()
        },
    };
    client.poll_timeout = Duration::from_secs(config.qq.poll_timeout_seconds);
    client.request_timeout = Duration::from_secs(config.qq.request_timeout_seconds);
    let settings = ManagerSettings {
        client,
        backoff: Backoff {
            initial: Duration::from_millis(config.poller.backoff_initial_ms),
            max: Duration::from_secs(config.poller.backoff_max_seconds),
        },
        send: SendPolicy {
            min_interval: Duration::from_millis(config.sender.min_interval_ms),
            max_retries: config.sender.max_retries,
            retry_backoff: Duration::from_millis(config.sender.retry_backoff_ms),
        },
        max_relogins: config.poller.max_relogins,
        arbiters: config
            .runtime
            .arbiters
            .unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)),
        login_concurrency: config.runtime.restore_concurrency,
        per_account: config.metrics.per_account,
    };
    let (stop_metrics, metrics_stopped) = tokio::sync::oneshot::channel::<()>();
    let metrics_server = actix::spawn(qqbridge::metrics::serve(listener, metrics.clone(), async {
        metrics_stopped.await.ok();
    }));
    // With the Matrix side on, the bridge is the accounts' event sink; without it, a logger.
    // The accounts start before the homeserver is waited for (RELIABILITY.md §1.7).
    let (manager, matrix_side) = if config.bridge.enabled {
        let listener =
            std::net::TcpListener::bind(config.appservice.listen).with_context(|| {
                format!("cannot listen on appservice.listen = {}", config.appservice.listen)
            })?;
        let prepared = qqbridge::bridge::startup::prepare(&config, store, metrics, settings)
            .await
            .context("the Matrix side did not start")?;
        (prepared.accounts.clone(), Some((prepared, listener)))
    } else {
        let logger = EventLogger.start();
        (AccountManager::new(settings, metrics, store, logger.recipient()).start(), None)
    };
    for account in config.enabled_accounts() {
        let credentials = match account.login {
            LoginMode::Password => match &account.password {
                Some(password) => Credentials::Password(password.clone()),
                None => Credentials::SessionOnly,
            },
            LoginMode::Qr => Credentials::Qr,
            LoginMode::SessionOnly => Credentials::SessionOnly,
        };
        let add = AddAccount { id: account.id.clone(), qq: QqNumber::new(account.qq), credentials };
        if let Err(reason) = manager.send(add).await? {
            bail!("account {}: {reason}", account.id);
        }
    }
    let matrix_side = match matrix_side {
        Some((prepared, listener)) => {
            Some(prepared.serve(&config, listener).await.context("the Matrix side did not start")?)
        }
        None => None,
    };
    actix::spawn(qqbridge::account::operator::read_operator_input(manager.clone()));
    tracing::info!(accounts = config.enabled_accounts().count(), metrics = %config.metrics.listen, "running");
    tokio::signal::ctrl_c().await.ok();
    tracing::info!("shutting down; stored sessions stay valid for the restart");
    stop_metrics.send(()).ok();
    metrics_server.await.ok();
    if let Some(side) = matrix_side {
        side.stop().await;
    }
    actix::System::current().stop();
    Ok(())
}

async fn run_emulator(args: EmulatorArgs) -> anyhow::Result<()> {
    let world = match &args.world {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the world file {}", path.display()))?;
            World::from_yaml(&text).with_context(|| format!("world file {}", path.display()))?
        }
        None => World::demo(),
    };
    // A world file may carry an `options:` section; flags override it.
    let mut options = world.options().cloned().unwrap_or_else(EmulatorOptions::default);
    if let Some(secs) = args.poll_hold {
        if !(0.0..=600.0).contains(&secs) {
            bail!("--poll-hold must be between 0 and 600 seconds");
        }
        options.poll_hold = Duration::from_secs_f64(secs);
    }
    let emulator = Emulator::new(world, options).context("cannot start the emulator")?;
    if let Some(path) = &args.ca_cert_out {
        std::fs::write(path, emulator.ca_cert_pem())
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    let plain = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let tls = match args.tls_listen {
        Some(addr) => Some(
            tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on {addr}"))?,
        ),
        None => None,
    };
    tracing::info!(
        listen = %plain.local_addr()?,
        tls_listen = ?tls.as_ref().and_then(|l| l.local_addr().ok()),
        "emulator ready"
    );
    let shutdown = async {
        // If the signal handler cannot be installed, run until killed.
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    emulator::serve(Listeners { plain, tls }, emulator, shutdown).await?;
    Ok(())
}

fn client_config(args: &QqArgs) -> anyhow::Result<ClientConfig> {
    let ca = match &args.ca_cert {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the CA certificate {}", path.display()))?,
        ),
        None => None,
    };
    Ok(match args.connect {
        Some(addr) => ClientConfig::redirect_all(addr, ca),
        None => ClientConfig {
            extra_root_ca_pem: ca.map(std::sync::Arc::from),
            ..ClientConfig::default()
        },
    })
}

async fn run_qq(args: QqArgs) -> anyhow::Result<()> {
    let config = client_config(&args)?;
    match &args.command {
        QqCommand::LoginQr { qr_out } => {
            let client = WebQqClient::new(config)?;
            login_qr(&client, qr_out).await?;
            save_session(&client, &args.session)
        }
        QqCommand::LoginPassword { qq, captcha_out } => {
            let client = WebQqClient::new(config)?;
            let password = read_password()?;
            let nick = match PasswordLogin::start(&client, QqNumber::new(*qq), &password).await? {
                PasswordStart::Ready(login) => login.submit(&client, None).await?,
                PasswordStart::Captcha(login, image) => {
                    std::fs::write(captcha_out, &image)
                        .with_context(|| format!("cannot write {}", captcha_out.display()))?;
                    println!("captcha saved to {}; type the code:", captcha_out.display());
                    let code = read_line()?;
                    login.submit(&client, Some(&code)).await?
                }
            };
            println!("logged in as {nick}");
            save_session(&client, &args.session)
        }
        QqCommand::Relink => {
            let client = restore(config, &args.session)?;
            relink(&client).await?;
            println!("session relinked");
            save_session(&client, &args.session)
        }
        QqCommand::Contacts => {
            let client = restore(config, &args.session)?;
            print_contacts(&Directory::load(&client).await?);
            Ok(())
        }
        QqCommand::Listen { count } => {
            let client = restore(config, &args.session)?;
            listen(&client, *count, &args.session).await
        }
        QqCommand::Send { kind, target, text } => {
            let client = restore(config, &args.session)?;
            send(&client, kind, *target, text).await?;
            // The stored session remembers the last msg_id so the next command continues it.
            save_session(&client, &args.session)
        }
        QqCommand::Logout => {
            let client = restore(config, &args.session)?;
            client.logout().await?;
            std::fs::remove_file(&args.session).ok();
            println!("logged out");
            Ok(())
        }
    }
}

async fn login_qr(client: &WebQqClient, qr_out: &Path) -> anyhow::Result<()> {
    for _attempt in 0..10 {
        let (login, png) = QrLogin::start(client).await?;
        std::fs::write(qr_out, &png)
            .with_context(|| format!("cannot write {}", qr_out.display()))?;
        match qqbridge::terminal::render_qr_png(&png) {
            Ok(text) => println!("{text}"),
            Err(reason) => println!("(cannot draw the QR code here: {reason})"),
        }
        println!("scan the QR code with QQ (also saved to {})", qr_out.display());
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            match login.state(client).await? {
                QrState::Waiting => {}
                QrState::Scanned => println!("scanned; confirm on the phone"),
                QrState::Expired => {
                    println!("the QR code expired; fetching a new one");
                    break;
                }
                QrState::Confirmed { check_sig_url, nick } => {
                    let qq = login.finish(client, &check_sig_url, &nick).await?;
                    println!("logged in as {nick} ({qq})");
                    return Ok(());
                }
                QrState::Failed(answer) => {
                    bail!("QR login failed ({}): {}", answer.code, answer.message)
                }
            }
        }
    }
    bail!("gave up after 10 expired QR codes")
}

fn read_password() -> anyhow::Result<Secret<String>> {
    if let Ok(password) = std::env::var("QQBRIDGE_QQ_PASSWORD") {
        return Ok(Secret::new(password));
    }
    eprintln!("password:");
    Ok(Secret::new(read_line()?))
}

fn read_line() -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).context("cannot read standard input")?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

fn save_session(client: &WebQqClient, path: &Path) -> anyhow::Result<()> {
    let session = client.session().context("no session to save")?;
    let json = serde_json::to_string_pretty(&session)?;
    qqbridge::store::write_private(path, json.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))?;
    println!("session saved to {}", path.display());
    Ok(())
}

fn restore(config: ClientConfig, path: &Path) -> anyhow::Result<WebQqClient> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("no stored session at {} (log in first)", path.display()))?;
    let session: Session = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a stored session", path.display()))?;
    Ok(WebQqClient::restore(config, &session)?)
}

fn print_contacts(directory: &Directory) {
    println!("friends:");
    for friend in directory.friends.values() {
        let qq = friend.qq.map(|q| q.to_string()).unwrap_or_else(|| "?".into());
        let mark = friend.markname.as_deref().map(|m| format!(" ({m})")).unwrap_or_default();
        println!("  {qq}  {}{mark}", friend.nick);
    }
    println!("groups:");
    for group in directory.groups.values() {
        let number = group.number.map(|n| n.to_string()).unwrap_or_else(|| "?".into());
        println!("  {number}  {}", group.name);
    }
    println!("discussions:");
    for discussion in directory.discussions.values() {
        println!("  {}  {}", discussion.did, discussion.name);
    }
}

async fn listen(client: &WebQqClient, count: Option<usize>, session: &Path) -> anyhow::Result<()> {
    let mut seen = 0usize;
    let mut failures = 0u32;
    while count.is_none_or(|c| seen < c) {
        match client.poll().await {
            Ok(PollAnswer::Events(events)) => {
                failures = 0;
                for event in events {
                    println!("{}", serde_json::to_string(&event)?);
                    seen += 1;
                }
            }
            Ok(PollAnswer::Idle | PollAnswer::Suspicious) => failures = 0,
            Err(e) if e.is_kicked() => bail!("logged in elsewhere: {e}"),
            Err(e) if e.needs_relogin() => {
                eprintln!("session trouble ({e}); relinking");
                relink(client).await?;
                save_session(client, session)?;
            }
            Err(e) => {
                failures += 1;
                if failures > 5 {
                    return Err(e.into());
                }
                eprintln!("poll failed ({e}); retrying");
                tokio::time::sleep(Duration::from_secs(u64::from(failures))).await;
            }
        }
    }
    Ok(())
}

async fn send(client: &WebQqClient, kind: &str, target: u64, text: &str) -> anyhow::Result<()> {
    let directory = Directory::load(client).await?;
    for part in qqbridge::webqq::content::split_text(text, qqbridge::webqq::content::MAX_TEXT_BYTES)
    {
        let content = Content::text(part);
        let answer = match kind {
            "friend" => {
                let uin = directory.uin_of(QqNumber::new(target)).context("no such friend")?;
                client.send_buddy(uin, &content).await?
            }
            "group" => {
                let group =
                    directory.group_by_number(GroupNumber::new(target)).context("no such group")?;
                client.send_group(group.gid, group.code, &content).await?
            }
            _ => client.send_discussion(Did::new(target), &content).await?,
        };
        println!("sent ({answer:?})");
    }
    Ok(())
}
