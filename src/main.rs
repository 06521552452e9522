//! The `qqbridge` command: flags, tracing set-up, listeners; the work is in the library.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};

#[path = "cli/qq.rs"]
mod qq_cli;
use qq_cli::{QqArgs, run_qq};

use qqbridge::account::account_actor::Credentials;
use qqbridge::account::manager::{
    AccountManager, AddAccount, DrainSends, ManagerSettings, StopAccounts,
};
use qqbridge::account::poller::Backoff;
use qqbridge::account::poller_actor::QqEventsReceived;
use qqbridge::account::send_queue::SendPolicy;
use qqbridge::config::{Config, LoginMode};
use qqbridge::emulator::{self, Emulator, EmulatorOptions, Listeners, World};
use qqbridge::matrix::registration::{self, Generated, Registration};
use qqbridge::metrics::Metrics;
use qqbridge::store::Store;
use qqbridge::webqq::QqNumber;
use qqbridge::webqq::client::ClientConfig;

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
        gap_notice: config.poller.gap_notice_seconds,
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
        Some((prepared, listener)) => match prepared.serve(&config, listener).await {
            Ok(side) => Some(side),
            Err(error) => {
                // The accounts run already: stop them before the error is reported, so this
                // process sends nothing more to QQ while it exits.
                manager.send(StopAccounts).await.ok();
                return Err(error).context("the Matrix side did not start");
            }
        },
        None => None,
    };
    actix::spawn(qqbridge::account::operator::read_operator_input(manager.clone()));
    tracing::info!(accounts = config.enabled_accounts().count(), metrics = %config.metrics.listen, "running");
    shutdown_signal().await;
    tracing::info!("shutting down; stored sessions stay valid for the restart");
    stop_metrics.send(()).ok();
    metrics_server.await.ok();
    if let Some(side) = matrix_side {
        side.stop().await;
    }
    // Send calls under way finish (else the restart tells them "maybe not delivered"); queued
    // messages wait in the outbox for the next start.
    let drain = DrainSends { timeout: SHUTDOWN_DRAIN };
    if let Ok(still) = manager.send(drain).await
        && still > 0
    {
        tracing::warn!(
            accounts = still,
            "QQ sends still under way at exit: they will be told 'maybe not delivered'"
        );
    }
    actix::System::current().stop();
    Ok(())
}

/// How long a shutdown waits for the QQ send calls under way.
const SHUTDOWN_DRAIN: Duration = Duration::from_secs(10);

/// Returns on SIGINT (Ctrl-C) or SIGTERM (what systemd and container runtimes send).
async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                term.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
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
