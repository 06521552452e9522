//! Benchmark: the WebQQ emulator, run as its own release process, holding N concurrent poll2
//! long polls — its RSS and CPU while idle — and what the load generator's idle clients cost.
//!
//! Run with `scripts/bench-emulator.sh [N]`, or `cargo bench --bench emulator_polls -- N
//! [--concurrency C] [--window SECS] [--repeats R] [--timeout SECS] [--poll-hold SECS] [--wave]`.
//!
//! What happens: a world of N accounts (each a person with a password, no captcha, friends with
//! its neighbours) is written as YAML to a temp dir; `qqbridge emulator` starts on two loopback
//! ports; its RSS and CPU are taken with no session (the reference); N password logins run
//! through the real endpoints, C at a time, one `WebQqClient` per account reaching the emulator
//! by name resolution only. RSS is taken again with N sessions and no poll; then every account
//! starts one poll2 and keeps it outstanding (re-issued when it returns). Once the emulator's
//! state shows N polls held, RSS and CPU are taken over idle windows; the medians are printed
//! with their ratios to the reference of the same run.
//!
//! No poll returns during those windows (they all started together and are held for the whole
//! hold), so their CPU is that of held polls alone. `--wave` also measures the first re-poll
//! wave, when every poll returns idle and is re-issued: its CPU per round trip times N/hold is
//! the steady-state cost of idle accounts whose polls are spread out.
//!
//! After its login each account's client is saved as a `Session` and restored into a fresh client
//! (what a restarted bridge does), so only the poll connection stays open per account: the
//! ptlogin, check_sig and login2 connections of the login client would otherwise sit in its pool
//! for 90 s and need four times the file descriptors on both sides. The channel hosts resolve to
//! the plain listener, the others to the TLS one (`--one-port`: everything to the TLS one), so
//! the poll connections do not have to reuse the ephemeral ports of ~3N closed login
//! connections still in TIME_WAIT.
//!
//! Polls started together keep their TCP keepalive timers in step (reqwest: 15 s idle, 15 s
//! interval, 3 probes), so every 15 s N probes and N answers cross the loopback at once; above
//! a few thousand they overflow the CPUs' input backlog (`net.core.netdev_max_backlog`, 1000 by
//! default), probes are lost and the client drops connections with ETIMEDOUT about 45–60 s into
//! the hold. The idle windows end before that; `--spread SECS` starts the first polls over
//! SECS seconds, which keeps the bursts small for `--wave` (the bench prints the drop count).
//! With a spread, the last windows may see the first polls return (each window prints how many),
//! and the wave is the steady state: polls return one by one, not in one batch.
//!
//! The child is killed when the bench ends, fails, times out, panics (panic hook) or gets Ctrl-C.
//! `QQBRIDGE_BIN` overrides the emulator binary (default: the release `qqbridge` cargo built).

mod common;

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use common::{
    binary, clock_ticks_per_second, cpu_ticks, load_average, log_tail, median, mib, nofile_limit,
    open_fds, rss_kib, start_emulator, status_field,
};
use qqbridge::webqq::api::poll2::PollAnswer;
use qqbridge::webqq::client::{ClientConfig, WebQqClient};
use qqbridge::webqq::hosts;
use qqbridge::webqq::login::{PasswordLogin, PasswordStart};
use qqbridge::webqq::session::Session;
use qqbridge::webqq::{QqNumber, Secret};
use serde_json::Value;

/// File descriptors a process needs beyond one per held poll: login connections (about five
/// per login in flight) and the runtime's own.
const FD_PER_LOGIN_IN_FLIGHT: usize = 6;
const FD_SPARE: usize = 128;
/// Login attempts per account before it counts as failed.
const LOGIN_ATTEMPTS: u32 = 3;
/// How many distinct error messages are kept for the report.
const KEPT_ERRORS: usize = 5;

#[derive(Clone, Debug)]
struct Args {
    n: usize,
    concurrency: usize,
    window: Duration,
    reference_window: Duration,
    repeats: usize,
    timeout: Duration,
    poll_hold: u64,
    wave: bool,
    one_port: bool,
    spread: Duration,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        n: 10_000,
        concurrency: 200,
        window: Duration::from_secs(10),
        reference_window: Duration::from_secs(5),
        repeats: 3,
        timeout: Duration::from_secs(300),
        poll_hold: 60,
        wave: false,
        one_port: false,
        spread: Duration::ZERO,
    };
    let mut under_bench = false;
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| -> anyhow::Result<u64> {
            let v = it.next().with_context(|| format!("{name} needs a value"))?;
            v.parse().with_context(|| format!("{name}: not a number: {v}"))
        };
        match arg.as_str() {
            // cargo bench appends `--bench` to a harness-less bench's arguments.
            "--bench" => under_bench = true,
            "--concurrency" => args.concurrency = usize::try_from(value(&arg)?)?.max(1),
            "--window" => args.window = Duration::from_secs(value(&arg)?.max(1)),
            "--repeats" => args.repeats = usize::try_from(value(&arg)?)?.max(1),
            "--timeout" => args.timeout = Duration::from_secs(value(&arg)?.max(10)),
            "--poll-hold" => args.poll_hold = value(&arg)?.clamp(1, 600),
            "--wave" => args.wave = true,
            "--one-port" => args.one_port = true,
            "--spread" => args.spread = Duration::from_secs(value(&arg)?),
            other if !other.starts_with('-') => {
                args.n = other.parse().with_context(|| format!("N: not a number: {other}"))?;
            }
            other => bail!(
                "unknown option {other}; usage: emulator_polls [N] [--concurrency C] \
                 [--window SECS] [--repeats R] [--timeout SECS] [--poll-hold SECS] [--wave] \
                 [--spread SECS] [--one-port]"
            ),
        }
    }
    if args.n == 0 {
        bail!("N must be at least 1");
    }
    if !under_bench {
        // `cargo test --all-targets` runs this binary without `--bench`: a small smoke run that
        // proves the bench still works end to end, in seconds, instead of 10,000 accounts.
        args.n = args.n.min(20);
        args.window = Duration::from_secs(1);
        args.reference_window = Duration::from_secs(1);
        args.repeats = 1;
        args.timeout = Duration::from_secs(120);
    }
    Ok(args)
}

/// Errors of one kind: how many, when first and last (seconds since the bench started), and in
/// which phase they began.
#[derive(Debug)]
struct ErrorKind {
    text: String,
    count: u64,
    first: f64,
    last: f64,
    phase: &'static str,
}

/// What the load generator has done so far; shared with the poll tasks and the abort message.
#[derive(Debug)]
struct Progress {
    started: Instant,
    phase: Mutex<&'static str>,
    logins_ok: AtomicUsize,
    logins_failed: AtomicUsize,
    login_retries: AtomicUsize,
    polls_sent: AtomicU64,
    polls_done: AtomicU64,
    polls_idle: AtomicU64,
    polls_events: AtomicU64,
    poll_errors: AtomicU64,
    errors: Mutex<Vec<ErrorKind>>,
}

impl Progress {
    fn new() -> Progress {
        Progress {
            started: Instant::now(),
            phase: Mutex::new("starting"),
            logins_ok: AtomicUsize::new(0),
            logins_failed: AtomicUsize::new(0),
            login_retries: AtomicUsize::new(0),
            polls_sent: AtomicU64::new(0),
            polls_done: AtomicU64::new(0),
            polls_idle: AtomicU64::new(0),
            polls_events: AtomicU64::new(0),
            poll_errors: AtomicU64::new(0),
            errors: Mutex::new(Vec::new()),
        }
    }

    fn set_phase(&self, phase: &'static str) {
        eprintln!("  [{:.1} s] {phase}", self.started.elapsed().as_secs_f64());
        *self.phase.lock().unwrap_or_else(PoisonError::into_inner) = phase;
    }

    fn keep_error(&self, text: String) {
        let now = self.started.elapsed().as_secs_f64();
        let phase = *self.phase.lock().unwrap_or_else(PoisonError::into_inner);
        let mut kept = self.errors.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(kind) = kept.iter_mut().find(|k| k.text == text) {
            kind.count += 1;
            kind.last = now;
        } else if kept.len() < KEPT_ERRORS {
            kept.push(ErrorKind { text, count: 1, first: now, last: now, phase });
        }
    }

    fn outstanding(&self) -> u64 {
        self.polls_sent
            .load(Ordering::SeqCst)
            .saturating_sub(self.polls_done.load(Ordering::SeqCst))
    }

    fn summary(&self) -> String {
        let phase = *self.phase.lock().unwrap_or_else(PoisonError::into_inner);
        let mut s = format!(
            "phase: {phase}; logins ok {}, failed {}, retried {}; polls sent {}, returned {} \
             (idle {}, events {}, errors {}), outstanding {}",
            self.logins_ok.load(Ordering::SeqCst),
            self.logins_failed.load(Ordering::SeqCst),
            self.login_retries.load(Ordering::SeqCst),
            self.polls_sent.load(Ordering::SeqCst),
            self.polls_done.load(Ordering::SeqCst),
            self.polls_idle.load(Ordering::SeqCst),
            self.polls_events.load(Ordering::SeqCst),
            self.poll_errors.load(Ordering::SeqCst),
            self.outstanding(),
        );
        let kept = self.errors.lock().unwrap_or_else(PoisonError::into_inner);
        for k in kept.iter() {
            let _ = write!(
                s,
                "\n  error ×{} from {:.1} s to {:.1} s after the start (first during {}): {}",
                k.count, k.first, k.last, k.phase, k.text
            );
        }
        s
    }
}

// ---------------------------------------------------------------------------------------------
// /proc readers

/// Packets the kernel dropped because a CPU's input backlog was full (`/proc/net/softnet_stat`,
/// second column, summed over CPUs). Loopback traffic goes through that backlog.
fn backlog_drops() -> u64 {
    std::fs::read_to_string("/proc/net/softnet_stat")
        .unwrap_or_default()
        .lines()
        .filter_map(|line| line.split_whitespace().nth(1))
        .filter_map(|hex| u64::from_str_radix(hex, 16).ok())
        .sum()
}

// ---------------------------------------------------------------------------------------------
// The world and the child

async fn emulator_state(control: &reqwest::Client, plain: SocketAddr) -> anyhow::Result<Value> {
    let response = control
        .get(format!("http://{plain}/_emulator/state"))
        .send()
        .await
        .context("GET /_emulator/state")?;
    let status = response.status();
    if !status.is_success() {
        bail!("GET /_emulator/state answered {status}");
    }
    response.json().await.context("GET /_emulator/state: not JSON")
}

/// Keys under which the state may report the number of held polls directly.
const HELD_KEYS: [&str; 8] = [
    "polls_held",
    "held_polls",
    "polls_waiting",
    "waiting_polls",
    "pending_polls",
    "polls_pending",
    "outstanding_polls",
    "polls_outstanding",
];
/// Per-session flags meaning "a poll is held now".
const SESSION_HELD_FLAGS: [&str; 4] = ["poll_held", "polling", "poll_waiting", "poll_pending"];

fn find_number(value: &Value, keys: &[&str]) -> Option<u64> {
    match value {
        Value::Object(map) => keys
            .iter()
            .find_map(|k| map.get(*k).and_then(Value::as_u64))
            .or_else(|| map.values().find_map(|v| find_number(v, keys))),
        Value::Array(items) => items.iter().find_map(|v| find_number(v, keys)),
        _ => None,
    }
}

fn find_poll2_requests(value: &Value) -> Option<u64> {
    match value {
        Value::Object(map) => map
            .get("poll2")
            .and_then(|c| c.get("requests"))
            .and_then(Value::as_u64)
            .or_else(|| map.values().find_map(find_poll2_requests)),
        Value::Array(items) => items.iter().find_map(find_poll2_requests),
        _ => None,
    }
}

/// How many polls the emulator holds, and how that was read: a counter of held polls, else the
/// sessions flagged as polling, else poll2 requests that reached it minus answers the clients
/// got (requests in the emulator's hands).
fn held_polls(state: &Value, answered: u64) -> Option<(u64, &'static str)> {
    if let Some(held) = find_number(state, &HELD_KEYS) {
        return Some((held, "state: held-poll count"));
    }
    if let Some(sessions) = state.get("sessions").and_then(Value::as_array) {
        let flagged: Vec<bool> = sessions
            .iter()
            .filter_map(|s| {
                SESSION_HELD_FLAGS.iter().find_map(|f| s.get(*f).and_then(Value::as_bool))
            })
            .collect();
        if !flagged.is_empty() {
            return Some((
                flagged.iter().filter(|&&b| b).count() as u64,
                "state: sessions polling",
            ));
        }
    }
    find_poll2_requests(state).map(|requests| {
        (requests.saturating_sub(answered), "state: poll2 requests − answers received")
    })
}

// ---------------------------------------------------------------------------------------------
// The load

async fn login(
    config: &ClientConfig,
    qq: QqNumber,
    password: &Secret<String>,
) -> anyhow::Result<Session> {
    let client = WebQqClient::new(config.clone())?;
    match PasswordLogin::start(&client, qq, password).await? {
        PasswordStart::Ready(login) => {
            // submit ends with the get_online_buddies2 warm-up (protocol §1.3.6).
            login.submit(&client, None).await?;
        }
        PasswordStart::Captcha(..) => bail!("account {qq} was asked for a captcha"),
    }
    client.session().context("no session after login2")
}

/// Logs one account in (with retries), waits for `go`, then keeps one poll outstanding until
/// aborted.
async fn account(
    config: ClientConfig,
    qq: QqNumber,
    permit: tokio::sync::OwnedSemaphorePermit,
    mut go: tokio::sync::watch::Receiver<bool>,
    first_poll_delay: Duration,
    progress: Arc<Progress>,
) {
    let password = Secret::new(common::password_of(qq.get()));
    let mut session = None;
    for attempt in 1..=LOGIN_ATTEMPTS {
        match login(&config, qq, &password).await {
            Ok(s) => {
                session = Some(s);
                break;
            }
            Err(error) => {
                progress.keep_error(format!("login: {error:#}"));
                if attempt < LOGIN_ATTEMPTS {
                    progress.login_retries.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(500 * u64::from(attempt))).await;
                }
            }
        }
    }
    let client = match session.map(|s| WebQqClient::restore(config, &s)) {
        Some(Ok(client)) => client,
        Some(Err(error)) => {
            progress.keep_error(format!("restore: {error}"));
            progress.logins_failed.fetch_add(1, Ordering::SeqCst);
            return;
        }
        None => {
            progress.logins_failed.fetch_add(1, Ordering::SeqCst);
            return;
        }
    };
    // Counted before the permit goes back: all permits back means every login is counted.
    progress.logins_ok.fetch_add(1, Ordering::SeqCst);
    drop(permit);
    if go.wait_for(|go| *go).await.is_err() {
        return;
    }
    tokio::time::sleep(first_poll_delay).await;
    loop {
        progress.polls_sent.fetch_add(1, Ordering::SeqCst);
        let answer = client.poll().await;
        progress.polls_done.fetch_add(1, Ordering::SeqCst);
        match answer {
            Ok(PollAnswer::Idle) => {
                progress.polls_idle.fetch_add(1, Ordering::SeqCst);
            }
            Ok(_) => {
                progress.polls_events.fetch_add(1, Ordering::SeqCst);
            }
            Err(error) => {
                progress.poll_errors.fetch_add(1, Ordering::SeqCst);
                progress.keep_error(format!("poll: {}", chain(&error)));
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// An error with its causes ("a: b: c"); webqq errors hide the transport's cause otherwise.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let _ = write!(text, ": {cause}");
        source = cause.source();
    }
    text
}

/// One idle window's figures.
#[derive(Clone, Copy, Debug)]
struct Window {
    emu_rss_kib: u64,
    emu_cpu_pct: f64,
    emu_fds: usize,
    emu_threads: u64,
    gen_rss_kib: u64,
    gen_cpu_pct: f64,
    polls_returned: u64,
}

async fn measure_window(
    emu_pid: &str,
    length: Duration,
    ticks_per_s: u64,
    progress: &Progress,
) -> anyhow::Result<Window> {
    let start = Instant::now();
    let emu0 = cpu_ticks(emu_pid)?;
    let gen0 = cpu_ticks("self")?;
    let done0 = progress.polls_done.load(Ordering::SeqCst);
    tokio::time::sleep(length).await;
    let emu1 = cpu_ticks(emu_pid)?;
    let gen1 = cpu_ticks("self")?;
    let secs = start.elapsed().as_secs_f64();
    let pct = |ticks: u64| ticks as f64 / ticks_per_s as f64 / secs * 100.0;
    Ok(Window {
        emu_rss_kib: rss_kib(emu_pid)?,
        emu_cpu_pct: pct(emu1.saturating_sub(emu0)),
        emu_fds: open_fds(emu_pid),
        emu_threads: status_field(emu_pid, "Threads:").unwrap_or(0),
        gen_rss_kib: rss_kib("self")?,
        gen_cpu_pct: pct(gen1.saturating_sub(gen0)),
        polls_returned: progress.polls_done.load(Ordering::SeqCst).saturating_sub(done0),
    })
}

/// The first re-poll wave.
struct Wave {
    returned: u64,
    secs: f64,
    emu_cpu_s: f64,
    gen_cpu_s: f64,
    emu_rss_kib: u64,
}

/// Measures from just before `expiry` (when the polls started together return idle) until every
/// one of `target` polls has returned and been re-issued, plus a second for the emulator to
/// receive the last ones. Only the client's counters are read meanwhile: a state request would
/// cost the emulator CPU inside the measurement.
async fn measure_wave(
    emu_pid: &str,
    expiry: Instant,
    target: u64,
    ticks_per_s: u64,
    progress: &Progress,
) -> anyhow::Result<Wave> {
    let begin = expiry.checked_sub(Duration::from_secs(2)).unwrap_or(expiry);
    tokio::time::sleep_until(begin.into()).await;
    let start = Instant::now();
    let (emu0, gen0) = (cpu_ticks(emu_pid)?, cpu_ticks("self")?);
    let done0 = progress.polls_done.load(Ordering::SeqCst);
    let limit = start + Duration::from_secs(120);
    let mut first_return = None;
    let returned = loop {
        let returned = progress.polls_done.load(Ordering::SeqCst).saturating_sub(done0);
        if returned > 0 && first_return.is_none() {
            first_return = Some(Instant::now());
        }
        if returned >= target && progress.outstanding() >= target {
            break returned;
        }
        if Instant::now() > limit {
            bail!("the re-poll wave did not complete in 120 s: {returned}/{target} returned");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let secs = first_return.unwrap_or(start).elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let ticks = |t1: u64, t0: u64| t1.saturating_sub(t0) as f64 / ticks_per_s as f64;
    Ok(Wave {
        returned,
        secs,
        emu_cpu_s: ticks(cpu_ticks(emu_pid)?, emu0),
        gen_cpu_s: ticks(cpu_ticks("self")?, gen0),
        emu_rss_kib: rss_kib(emu_pid)?,
    })
}

/// Waits until the emulator reports at least `target` held polls; returns the count and source.
async fn wait_held(
    control: &reqwest::Client,
    plain: SocketAddr,
    target: u64,
    progress: &Progress,
) -> anyhow::Result<(u64, &'static str)> {
    let mut last_report = Instant::now();
    loop {
        let state = emulator_state(control, plain).await?;
        let answered = progress.polls_done.load(Ordering::SeqCst);
        // Right after the polls are sent the emulator may not have counted a poll2 yet; the
        // overall timeout bounds the wait.
        let (held, source) = held_polls(&state, answered).unwrap_or((0, "no poll2 counted yet"));
        if held >= target {
            return Ok((held, source));
        }
        if last_report.elapsed() > Duration::from_secs(5) {
            eprintln!("  … {held}/{target} polls held ({source})");
            last_report = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn run(args: Args, progress: Arc<Progress>) -> anyhow::Result<()> {
    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let drops_at_start = backlog_drops();
    let ticks_per_s = clock_ticks_per_second();
    let need_fds = args.n + args.concurrency * FD_PER_LOGIN_IN_FLIGHT + FD_SPARE;
    if let Some((soft, hard)) = nofile_limit()
        && (soft as usize) < need_fds
    {
        let fits =
            (soft as usize).saturating_sub(args.concurrency * FD_PER_LOGIN_IN_FLIGHT + FD_SPARE);
        bail!(
            "N={} needs about {need_fds} open files in each process but the limit is {soft} \
             (hard {hard}); at most N≈{fits} fits at --concurrency {}. Raise `ulimit -n` \
             (scripts/bench-emulator.sh raises it to the hard limit) or lower N",
            args.n,
            args.concurrency
        );
    }
    println!(
        "emulator_polls: N={} accounts, poll hold {} s, login concurrency {}, idle window {} s × \
         {}, {cpus} CPUs, load average at start {}",
        args.n,
        args.poll_hold,
        args.concurrency,
        args.window.as_secs(),
        args.repeats,
        load_average()
    );
    println!("  command: {}", std::env::args().collect::<Vec<_>>().join(" "));
    println!("  emulator binary: {}", binary().display());

    progress.set_phase("writing the world");
    let dir = tempfile::Builder::new().prefix("qqbridge-bench-").tempdir()?;
    let world = dir.path().join("world.yaml");
    std::fs::write(&world, common::world_yaml(args.n, "benches/emulator_polls.rs"))
        .context("cannot write the world")?;

    progress.set_phase("starting the emulator");
    let control = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(60))
        .build()
        .context("control http client")?;
    let started = Instant::now();
    let emu = start_emulator(dir.path(), &world, args.poll_hold, &control).await?;
    println!(
        "  emulator pid {} on {} (plain) and {} (tls), ready in {:.1} s",
        emu.pid,
        emu.plain,
        emu.tls,
        started.elapsed().as_secs_f64()
    );

    progress.set_phase("reference window");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let reference = measure_window(&emu.pid, args.reference_window, ticks_per_s, &progress).await?;
    println!(
        "reference (world loaded, no session): emulator RSS {:.1} MiB, CPU {:.2} % over {} s, \
         {} fds, {} threads; generator RSS {:.1} MiB",
        mib(reference.emu_rss_kib),
        reference.emu_cpu_pct,
        args.reference_window.as_secs(),
        reference.emu_fds,
        reference.emu_threads,
        mib(reference.gen_rss_kib)
    );

    progress.set_phase("logging in");
    let mut config = ClientConfig::redirect_all(emu.tls, Some(emu.ca_pem.clone()));
    if !args.one_port {
        // The channel hosts (login2, warm-up, poll2: plain http) go to the plain listener so that
        // the poll connections do not reuse the ports of the ~3N ptlogin connections in
        // TIME_WAIT (see the module doc).
        for host in [hosts::CHANNEL_D, hosts::CHANNEL_D1] {
            Arc::make_mut(&mut config.resolve).insert(host.to_owned(), emu.plain);
        }
    }
    let semaphore = Arc::new(tokio::sync::Semaphore::new(args.concurrency));
    let (go, go_rx) = tokio::sync::watch::channel(false);
    let mut tasks = tokio::task::JoinSet::new();
    let login_start = Instant::now();
    let (emu_ticks0, gen_ticks0) = (cpu_ticks(&emu.pid)?, cpu_ticks("self")?);
    let mut last_report = Instant::now();
    for i in 0..args.n {
        let permit = semaphore.clone().acquire_owned().await.context("semaphore closed")?;
        let delay = args.spread.mul_f64(i as f64 / args.n as f64);
        let go = go_rx.clone();
        tasks.spawn(account(
            config.clone(),
            QqNumber::new(common::qq_of(i)),
            permit,
            go,
            delay,
            progress.clone(),
        ));
        if last_report.elapsed() > Duration::from_secs(5) {
            eprintln!(
                "  … {} logins done, {} failed, {:.0} s",
                progress.logins_ok.load(Ordering::SeqCst),
                progress.logins_failed.load(Ordering::SeqCst),
                login_start.elapsed().as_secs_f64()
            );
            last_report = Instant::now();
        }
    }
    // Every permit back means every login finished (succeeded or gave up).
    let all = u32::try_from(args.concurrency).context("concurrency too large")?;
    let _all_done = semaphore.acquire_many(all).await.context("semaphore closed")?;
    let login_secs = login_start.elapsed().as_secs_f64();
    let emu_login_cpu = cpu_ticks(&emu.pid)?.saturating_sub(emu_ticks0) as f64 / ticks_per_s as f64;
    let gen_login_cpu = cpu_ticks("self")?.saturating_sub(gen_ticks0) as f64 / ticks_per_s as f64;
    let ok = progress.logins_ok.load(Ordering::SeqCst);
    let failed = progress.logins_failed.load(Ordering::SeqCst);
    println!(
        "logins: {ok} ok, {failed} failed ({} retries) in {login_secs:.1} s = {:.0} logins/s \
         (login page, check, login, check_sig, login2, warm-up; {} at a time); CPU during the \
         logins: emulator {emu_login_cpu:.1} s ({:.2} ms per login), generator \
         {gen_login_cpu:.1} s \
         ({:.2} ms per login)",
        progress.login_retries.load(Ordering::SeqCst),
        ok as f64 / login_secs,
        args.concurrency,
        emu_login_cpu * 1000.0 / ok.max(1) as f64,
        gen_login_cpu * 1000.0 / ok.max(1) as f64,
    );
    if ok == 0 {
        bail!(
            "no account could log in:\n{}\nemulator log:\n{}",
            progress.summary(),
            log_tail(&emu.log)
        );
    }
    if failed > 0 {
        println!(
            "  WARNING: {failed} accounts failed to log in; measuring the {ok} that did\n  {}",
            progress.summary()
        );
    }

    // Sessions without polls: the login clients are gone, so are their connections (give the
    // emulator a moment to see the closes).
    progress.set_phase("sessions without polls");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let sessions_rss = rss_kib(&emu.pid)?;
    let sessions_gen_rss = rss_kib("self")?;
    println!(
        "sessions ({ok} logged in, no poll yet): emulator RSS {:.1} MiB ({:.1} KiB per session \
         over the reference), {} fds; generator RSS {:.1} MiB ({:.1} KiB per restored client)",
        mib(sessions_rss),
        (sessions_rss as f64 - reference.emu_rss_kib as f64) / ok as f64,
        open_fds(&emu.pid),
        mib(sessions_gen_rss),
        (sessions_gen_rss as f64 - reference.gen_rss_kib as f64) / ok as f64,
    );

    progress.set_phase("waiting for all polls to be held");
    let polls_start = Instant::now();
    go.send_replace(true);
    let (held, source) = wait_held(&control, emu.plain, ok as u64, &progress).await?;
    let held_secs = polls_start.elapsed().as_secs_f64();
    println!(
        "all {ok} polls held {held_secs:.1} s after they were started{} ({:.1} s after the first \
         login; emulator says {held}, read from {source})",
        if args.spread.is_zero() {
            String::new()
        } else {
            format!(" (first polls spread over {} s)", args.spread.as_secs())
        },
        login_start.elapsed().as_secs_f64()
    );

    progress.set_phase("idle windows");
    let mut windows = Vec::with_capacity(args.repeats);
    for k in 1..=args.repeats {
        let w = measure_window(&emu.pid, args.window, ticks_per_s, &progress).await?;
        let state = emulator_state(&control, emu.plain).await?;
        let still = held_polls(&state, progress.polls_done.load(Ordering::SeqCst)).map(|(h, _)| h);
        let per_poll = (w.emu_rss_kib as f64 - reference.emu_rss_kib as f64) / ok as f64;
        println!(
            "window {k}: emulator RSS {:.1} MiB ({per_poll:.1} KiB per held poll), CPU {:.2} %, \
             {} fds, {} threads; generator RSS {:.1} MiB, CPU {:.2} %; polls returned {} \
             (re-issued), held after the window: {}",
            mib(w.emu_rss_kib),
            w.emu_cpu_pct,
            w.emu_fds,
            w.emu_threads,
            mib(w.gen_rss_kib),
            w.gen_cpu_pct,
            w.polls_returned,
            still.map_or_else(|| "?".to_owned(), |h| h.to_string())
        );
        windows.push(w);
    }

    let med = |f: fn(&Window) -> f64| median(windows.iter().map(f).collect());
    let emu_rss = med(|w| w.emu_rss_kib as f64);
    let emu_cpu = med(|w| w.emu_cpu_pct);
    let gen_rss = med(|w| w.gen_rss_kib as f64);
    let gen_cpu = med(|w| w.gen_cpu_pct);
    let returned = med(|w| w.polls_returned as f64);
    let n = ok as f64;
    let ref_rss = reference.emu_rss_kib as f64;
    let cpu_ratio = if reference.emu_cpu_pct > 0.0 {
        format!("{:.1}×", emu_cpu / reference.emu_cpu_pct)
    } else {
        "n/a (reference 0 ticks)".to_owned()
    };
    let sessions = sessions_rss as f64;
    println!(
        "medians of {} idle windows of {} s with N={ok} polls held (poll hold {} s):",
        args.repeats,
        args.window.as_secs(),
        args.poll_hold
    );
    println!(
        "  emulator RSS {:.1} MiB = {:.2}× the empty emulator ({:.1} MiB): {:.1} KiB per held \
         poll ((RSS_loaded − RSS_empty) / N), of which {:.1} KiB per session and {:.1} KiB per \
         poll connection",
        emu_rss / 1024.0,
        emu_rss / ref_rss,
        ref_rss / 1024.0,
        (emu_rss - ref_rss) / n,
        (sessions - ref_rss) / n,
        (emu_rss - sessions) / n
    );
    println!(
        "  emulator CPU {emu_cpu:.2} % of one core (empty: {:.2} %, ratio {cpu_ratio}); polls \
         returned and re-issued {:.1}/s (steady state ≈ N/hold = {:.1}/s, but none return in \
         the first {} s)",
        reference.emu_cpu_pct,
        returned / args.window.as_secs_f64(),
        n / args.poll_hold as f64,
        args.poll_hold
    );
    println!(
        "  client side (this process, one WebQqClient + poll task per account): RSS {:.1} MiB = \
         {:.2}× its start ({:.1} MiB), {:.1} KiB per idle polling client; CPU {gen_cpu:.2} % of \
         one core",
        gen_rss / 1024.0,
        gen_rss / reference.gen_rss_kib as f64,
        mib(reference.gen_rss_kib),
        (gen_rss - reference.gen_rss_kib as f64) / n
    );
    println!(
        "  logins {:.0}/s; all polls held {held_secs:.1} s after they were started",
        ok as f64 / login_secs
    );
    if args.wave {
        progress.set_phase("re-poll wave");
        let hold = Duration::from_secs(args.poll_hold);
        let wave = measure_wave(&emu.pid, polls_start + hold, ok as u64, ticks_per_s, &progress);
        let wave = wave.await?;
        let per_trip = wave.emu_cpu_s / wave.returned as f64;
        let gen_per_trip = wave.gen_cpu_s / wave.returned as f64;
        println!(
            "re-poll wave: {} polls returned idle and were re-issued within {:.1} s of the first \
             return; emulator CPU \
             {:.2} s = {:.0} µs per idle round trip, so spread-out idle polls cost ≈ {:.2} % of \
             one core at N/hold = {:.1} round trips/s; generator {:.0} µs per round trip \
             (≈ {:.2} %); emulator RSS after the wave {:.1} MiB ({:+.1} MiB), {} fds",
            wave.returned,
            wave.secs,
            wave.emu_cpu_s,
            per_trip * 1e6,
            per_trip * n / args.poll_hold as f64 * 100.0,
            n / args.poll_hold as f64,
            gen_per_trip * 1e6,
            gen_per_trip * n / args.poll_hold as f64 * 100.0,
            mib(wave.emu_rss_kib),
            (wave.emu_rss_kib as f64 - emu_rss) / 1024.0,
            open_fds(&emu.pid),
        );
    }
    println!("load generator: {}", progress.summary());
    let max_backlog = std::fs::read_to_string("/proc/sys/net/core/netdev_max_backlog")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "?".to_owned());
    println!(
        "packets dropped by full CPU input backlogs during the run (loopback goes through them; \
         net.core.netdev_max_backlog = {max_backlog}): {}",
        backlog_drops().saturating_sub(drops_at_start)
    );
    progress.set_phase("stopping");
    tasks.abort_all();
    Ok(())
}

fn main() -> std::process::ExitCode {
    common::kill_children_on_panic();
    let args = match parse_args() {
        Ok(args) => args,
        Err(error) => {
            eprintln!("emulator_polls: {error:#}");
            return std::process::ExitCode::from(2);
        }
    };
    let progress = Arc::new(Progress::new());
    let timeout = args.timeout;
    common::run_bench("emulator_polls", timeout, run(args, progress.clone()), || progress.summary())
}
