//! Benchmark: the bridge (`qqbridge run`, its own release process) running N password accounts
//! against the WebQQ emulator (another release process) — RSS per idle account, CPU while every
//! account long-polls idly, and the time to restore N stored sessions after a restart.
//!
//! Run with `scripts/bench-accounts.sh [N]`, or `QQBRIDGE_BIN=<a release qqbridge> cargo test
//! --bench accounts -- --bench N [--window SECS] [--repeats R] [--timeout SECS]
//! [--poll-hold SECS] [--connect-timeout SECS] [--aggregate-metrics]` (the driver may be a dev
//! build; the children must not). `--aggregate-metrics` runs the bridge with
//! `metrics.per_account: false`, what a process with thousands of accounts should use: the
//! per-account series cost ~11 KiB of heap per account (~33 KiB of RSS at N = 1000, scrapes
//! included) and make /metrics hundreds of thousands of lines long.
//!
//! What happens: a world of N accounts (each a person with a password, no captcha, friends with
//! its neighbours; the same world as benches/emulator_polls.rs) is written to a temp dir;
//! `qqbridge emulator` starts on two loopback ports. Then three `qqbridge run` processes, one
//! after the other, each with a generated config pointing every QQ host at the emulator's TLS
//! listener:
//! 1. the reference: no account. Its RSS and CPU over idle windows;
//! 2. N password accounts and an empty SQLite store: `run` adds them all at start and they log
//!    in with whatever concurrency `run` has. Start → all CONNECTED (the sum of
//!    `qqbridge_account_state{state="CONNECTED"}` on its /metrics) is timed; once connected,
//!    RSS and CPU are taken over R idle windows of SECS each (no /metrics scrape inside a
//!    window); the process is stopped with SIGINT;
//! 3. the same config and store again: start → all CONNECTED is the restore time, and the
//!    emulator's request counters (`GET /_emulator/state`) must show no `login` and no
//!    `ptqrshow` request during this run.
//!
//! Printed: medians, RSS per account ((RSS_N − RSS_0)/N), CPU as a percentage of one core, and
//! ratios to the reference process of the same run. The children are killed when the bench
//! ends, fails, times out, panics (panic hook), or gets Ctrl-C / SIGTERM.
//!
//! Without `--bench` (as `cargo test --all-targets` runs it) it is a smoke run of a few
//! accounts and one-second windows, with the debug binary.
//! `QQBRIDGE_BIN` overrides the binary used for both children (default: the `qqbridge` cargo
//! built alongside this bench).

mod common;

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use common::{
    Emulator, binary, clock_ticks_per_second, cpu_ticks, exited, free_port, interrupt,
    load_average, log_tail, median, mib, nofile_limit, open_fds, password_of, qq_of, register,
    rss_kib, start_emulator, threads, wait_http,
};
use serde_json::Value;
/// Requests that only a full login makes (password login; QR login).
const LOGIN_COUNTERS: [&str; 2] = ["login", "ptqrshow"];
/// Counters printed for each run (the login chain, relink and polls).
const SHOWN_COUNTERS: [&str; 7] =
    ["check", "login", "ptqrshow", "check_sig", "login2", "get_online_buddies2", "poll2"];

#[derive(Clone, Debug)]
struct Args {
    n: usize,
    window: Duration,
    reference_window: Duration,
    repeats: usize,
    timeout: Duration,
    connect_timeout: Duration,
    poll_hold: u64,
    settle: Duration,
    aggregate_metrics: bool,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        n: 1_000,
        window: Duration::from_secs(10),
        reference_window: Duration::from_secs(5),
        repeats: 3,
        timeout: Duration::from_secs(1200),
        connect_timeout: Duration::from_secs(400),
        poll_hold: 60,
        settle: Duration::from_secs(3),
        aggregate_metrics: false,
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
            "--window" => args.window = Duration::from_secs(value(&arg)?.max(1)),
            "--repeats" => args.repeats = usize::try_from(value(&arg)?)?.max(1),
            "--timeout" => args.timeout = Duration::from_secs(value(&arg)?.max(10)),
            "--connect-timeout" => {
                args.connect_timeout = Duration::from_secs(value(&arg)?.max(5));
            }
            "--poll-hold" => args.poll_hold = value(&arg)?.clamp(1, 600),
            "--aggregate-metrics" => args.aggregate_metrics = true,
            other if !other.starts_with('-') => {
                args.n = other.parse().with_context(|| format!("N: not a number: {other}"))?;
            }
            other => bail!(
                "unknown option {other}; usage: accounts [N] [--window SECS] [--repeats R] \
                 [--timeout SECS] [--connect-timeout SECS] [--poll-hold SECS] \
                 [--aggregate-metrics]"
            ),
        }
    }
    if args.n == 0 {
        bail!("N must be at least 1");
    }
    if !under_bench {
        // `cargo test --all-targets` runs this binary without `--bench`: a smoke run that proves
        // the bench still works end to end, in seconds, instead of a thousand accounts.
        args.n = args.n.min(4);
        args.window = Duration::from_secs(1);
        args.reference_window = Duration::from_secs(1);
        args.repeats = 1;
        args.timeout = Duration::from_secs(60);
        args.connect_timeout = Duration::from_secs(30);
        args.settle = Duration::from_millis(300);
    }
    Ok(args)
}

fn ratio(value: f64, reference: f64) -> String {
    if reference > 0.0 {
        format!("×{:.2}", value / reference)
    } else {
        "×∞ (reference 0)".to_owned()
    }
}

// ---------------------------------------------------------------------------------------------
// The world, the configs and the children

/// A `qqbridge run` config with `n` password accounts of the world; `per_account` is its
/// `metrics.per_account`.
fn bridge_yaml(
    n: usize,
    emulator_tls: SocketAddr,
    ca: &Path,
    store: &Path,
    metrics: u16,
    per_account: bool,
) -> String {
    let mut yaml = String::with_capacity(n * 80 + 512);
    let _ = write!(
        yaml,
        "# Generated by benches/accounts.rs\n\
         qq:\n  connect: \"{emulator_tls}\"\n  ca_cert: \"{}\"\n  poll_timeout_seconds: 120\n\
         store:\n  path: \"{}\"\n\
         metrics:\n  listen: \"127.0.0.1:{metrics}\"\n  per_account: {per_account}\n\
         logging:\n  filter: \"warn\"\n",
        ca.display(),
        store.display()
    );
    if n == 0 {
        yaml.push_str("accounts: []\n");
        return yaml;
    }
    yaml.push_str("accounts:\n");
    for i in 0..n {
        let qq = qq_of(i);
        let _ = writeln!(
            yaml,
            "  - {{id: a{i}, qq: {qq}, login: password, password: \"{}\"}}",
            password_of(qq)
        );
    }
    yaml
}

/// A started `qqbridge run`.
struct Bridge {
    label: String,
    pid: String,
    metrics: String,
    log: PathBuf,
    started: Instant,
}

/// Starts `qqbridge run -c config`; does not wait for it.
fn start_bridge(dir: &Path, label: &str, config: &Path, metrics: u16) -> anyhow::Result<Bridge> {
    let bin = binary();
    let log = dir.join(format!("{label}.log"));
    let log_file = std::fs::File::create(&log).context("cannot create the bridge log")?;
    let started = Instant::now();
    let child = Command::new(&bin)
        .arg("run")
        .arg("-c")
        .arg(config)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log_file)
        .spawn()
        .with_context(|| format!("cannot start {}", bin.display()))?;
    let pid = child.id().to_string();
    register(label, child);
    Ok(Bridge {
        label: label.to_owned(),
        pid,
        metrics: format!("http://127.0.0.1:{metrics}/metrics"),
        log,
        started,
    })
}

/// Accounts per state from `qqbridge_account_state` (the one-hot gauge).
async fn account_states(
    bridge: &Bridge,
    control: &reqwest::Client,
) -> anyhow::Result<std::collections::BTreeMap<String, u64>> {
    let text = control
        .get(&bridge.metrics)
        .send()
        .await
        .context("GET /metrics")?
        .text()
        .await
        .context("GET /metrics body")?;
    let mut states = std::collections::BTreeMap::new();
    // One-hot per account (0 or 1), or with `per_account: false` one count per state under
    // account="all": summing the values answers both.
    for line in text.lines().filter(|l| l.starts_with("qqbridge_account_state{")) {
        let Some((labels, value)) = line.rsplit_once(' ') else { continue };
        let Ok(count) = value.trim().parse::<u64>() else { continue };
        if count == 0 {
            continue;
        }
        let state = labels
            .split("state=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap_or("?")
            .to_owned();
        *states.entry(state).or_insert(0) += count;
    }
    Ok(states)
}

/// Polls /metrics until `n` accounts are CONNECTED; answers the time since the bridge started.
async fn wait_connected(
    bridge: &Bridge,
    n: usize,
    timeout: Duration,
    interval: Duration,
    control: &reqwest::Client,
) -> anyhow::Result<Duration> {
    let mut last_report = Instant::now();
    let mut last_states = std::collections::BTreeMap::new();
    loop {
        if let Some(status) = exited(&bridge.label) {
            bail!("{} exited ({status}); log:\n{}", bridge.label, log_tail(&bridge.log));
        }
        if let Ok(states) = account_states(bridge, control).await {
            let connected = states.get("CONNECTED").copied().unwrap_or(0);
            if connected >= n as u64 {
                return Ok(bridge.started.elapsed());
            }
            last_states = states;
        }
        if bridge.started.elapsed() > timeout {
            bail!(
                "{}: not all {n} accounts CONNECTED after {} s (states {last_states:?}); log:\n{}",
                bridge.label,
                timeout.as_secs(),
                log_tail(&bridge.log)
            );
        }
        if last_report.elapsed() > Duration::from_secs(10) {
            last_report = Instant::now();
            println!(
                "  … {:>5.1} s: states {last_states:?}, RSS {:.1} MiB, {} fds, load {}",
                bridge.started.elapsed().as_secs_f64(),
                mib(rss_kib(&bridge.pid).unwrap_or(0)),
                open_fds(&bridge.pid),
                load_average()
            );
        }
        tokio::time::sleep(interval).await;
    }
}

async fn emulator_counters(
    control: &reqwest::Client,
    emulator: &Emulator,
) -> anyhow::Result<std::collections::BTreeMap<String, u64>> {
    let response = control
        .get(format!("http://{}/_emulator/state", emulator.plain))
        .send()
        .await
        .context("GET /_emulator/state")?;
    if !response.status().is_success() {
        bail!("GET /_emulator/state answered {}", response.status());
    }
    let state: Value = response.json().await.context("GET /_emulator/state: not JSON")?;
    let counters = state
        .get("counters")
        .and_then(Value::as_object)
        .context("/_emulator/state has no counters")?;
    Ok(counters
        .iter()
        .map(|(k, v)| (k.clone(), v.get("requests").and_then(Value::as_u64).unwrap_or(0)))
        .collect())
}

fn counter_delta(
    before: &std::collections::BTreeMap<String, u64>,
    after: &std::collections::BTreeMap<String, u64>,
    key: &str,
) -> u64 {
    after.get(key).copied().unwrap_or(0).saturating_sub(before.get(key).copied().unwrap_or(0))
}

fn show_counters(
    before: &std::collections::BTreeMap<String, u64>,
    after: &std::collections::BTreeMap<String, u64>,
) -> String {
    SHOWN_COUNTERS
        .iter()
        .map(|k| format!("{k} {}", counter_delta(before, after, k)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One idle window of a process: CPU (% of one core) and RSS at its end.
struct Window {
    cpu_percent: f64,
    rss_kib: u64,
    /// poll2 requests the emulator saw during the window (re-polls of returned idle polls).
    polls: u64,
}

async fn measure_window(pid: &str, window: Duration, ticks_per_s: u64) -> anyhow::Result<Window> {
    let t0 = cpu_ticks(pid)?;
    let started = Instant::now();
    tokio::time::sleep(window).await;
    let t1 = cpu_ticks(pid)?;
    let secs = started.elapsed().as_secs_f64();
    let cpu_percent = (t1.saturating_sub(t0)) as f64 / ticks_per_s as f64 / secs * 100.0;
    Ok(Window { cpu_percent, rss_kib: rss_kib(pid)?, polls: 0 })
}

/// R windows of `window`; also the emulator's poll2 requests during each (the re-poll traffic
/// the bridge served in it).
async fn measure_windows(
    bridge: &Bridge,
    emulator: &Emulator,
    control: &reqwest::Client,
    window: Duration,
    repeats: usize,
    ticks: u64,
) -> anyhow::Result<Vec<Window>> {
    let mut out = Vec::with_capacity(repeats);
    for i in 0..repeats {
        let before = emulator_counters(control, emulator).await?;
        let mut w = measure_window(&bridge.pid, window, ticks).await?;
        let after = emulator_counters(control, emulator).await?;
        w.polls = counter_delta(&before, &after, "poll2");
        println!(
            "  window {}/{repeats}: CPU {:6.2} % of a core, RSS {:8.1} MiB, {} threads, {} fds, \
             poll2 requests in window {}, load {}",
            i + 1,
            w.cpu_percent,
            mib(w.rss_kib),
            threads(&bridge.pid),
            open_fds(&bridge.pid),
            counter_delta(&before, &after, "poll2"),
            load_average()
        );
        out.push(w);
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// The run

async fn run(args: Args) -> anyhow::Result<()> {
    let n = args.n;
    let ticks = clock_ticks_per_second();
    let dir = tempfile::tempdir().context("cannot create a temp dir")?;
    let world = dir.path().join("world.yaml");
    std::fs::write(&world, common::world_yaml(n, "benches/accounts.rs"))
        .context("cannot write the world")?;
    let control = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .context("cannot build the control client")?;
    println!(
        "accounts bench: N = {n}, poll hold {} s, windows {} × {} s (reference {} s), \
         metrics.per_account {}, binary {}",
        args.poll_hold,
        args.repeats,
        args.window.as_secs(),
        args.reference_window.as_secs(),
        !args.aggregate_metrics,
        binary().display()
    );
    if let Some((soft, hard)) = nofile_limit() {
        println!("open-files limit: soft {soft}, hard {hard} (inherited by both children)");
    }
    let emulator = start_emulator(dir.path(), &world, args.poll_hold, &control).await?;
    println!(
        "emulator pid {} on {} / {} (TLS), RSS {:.1} MiB",
        emulator.pid,
        emulator.plain,
        emulator.tls,
        mib(rss_kib(&emulator.pid)?)
    );

    // 1. The reference: `qqbridge run` with no account.
    let port = free_port()?;
    let config0 = dir.path().join("bridge-0.yaml");
    let store0 = dir.path().join("store-0.sqlite3");
    std::fs::write(
        &config0,
        bridge_yaml(0, emulator.tls, &emulator.ca, &store0, port, !args.aggregate_metrics),
    )?;
    let reference = start_bridge(dir.path(), "bridge-reference", &config0, port)?;
    wait_http(&reference.metrics, &reference.label, &control).await?;
    println!("reference (0 accounts) up in {:.3} s", reference.started.elapsed().as_secs_f64());
    tokio::time::sleep(args.settle).await;
    let ref_windows = measure_windows(
        &reference,
        &emulator,
        &control,
        args.reference_window,
        args.repeats,
        ticks,
    )
    .await?;
    let ref_rss = median(ref_windows.iter().map(|w| w.rss_kib as f64).collect());
    let ref_cpu = median(ref_windows.iter().map(|w| w.cpu_percent).collect());
    interrupt(&reference.label, &reference.pid, Duration::from_secs(10)).await;

    // 2. N password accounts, empty store: logins, then idle polls.
    let port = free_port()?;
    let config = dir.path().join("bridge-n.yaml");
    let store = dir.path().join("store-n.sqlite3");
    std::fs::write(
        &config,
        bridge_yaml(n, emulator.tls, &emulator.ca, &store, port, !args.aggregate_metrics),
    )?;
    let counters0 = emulator_counters(&control, &emulator).await?;
    let first = start_bridge(dir.path(), "bridge-login", &config, port)?;
    let login_time =
        wait_connected(&first, n, args.connect_timeout, Duration::from_millis(250), &control)
            .await?;
    let counters1 = emulator_counters(&control, &emulator).await?;
    println!(
        "first run: all {n} CONNECTED {:.2} s after start (password logins); emulator requests: {}",
        login_time.as_secs_f64(),
        show_counters(&counters0, &counters1)
    );
    tokio::time::sleep(args.settle).await;
    let windows =
        measure_windows(&first, &emulator, &control, args.window, args.repeats, ticks).await?;
    let states = account_states(&first, &control).await?;
    println!("  states after the windows: {states:?}");
    let rss = median(windows.iter().map(|w| w.rss_kib as f64).collect());
    let cpu = median(windows.iter().map(|w| w.cpu_percent).collect());
    if windows.iter().all(|w| w.polls == 0) {
        // Every poll started within the login burst and is still held: these windows saw no
        // re-poll at all, so their CPU leaves out the steady-state cost of idle accounts.
        println!(
            "  note: no poll returned during the windows; `--window {}` (longer than the poll \
             hold) includes one full re-poll wave",
            args.poll_hold + 10
        );
    }
    let (stop_time, clean) = interrupt(&first.label, &first.pid, Duration::from_secs(20)).await;
    println!(
        "  SIGINT → exit {:.2} s{}",
        stop_time.as_secs_f64(),
        if clean { "" } else { " (did not exit; killed)" }
    );

    // 3. Same config and store: restore the stored sessions.
    let counters2 = emulator_counters(&control, &emulator).await?;
    let second = start_bridge(dir.path(), "bridge-restore", &config, port)?;
    let restore_time =
        wait_connected(&second, n, args.connect_timeout, Duration::from_millis(20), &control)
            .await?;
    // Let late requests (a login would follow a failed relink) reach the counters.
    tokio::time::sleep(args.settle).await;
    let counters3 = emulator_counters(&control, &emulator).await?;
    let logins: u64 = LOGIN_COUNTERS.iter().map(|k| counter_delta(&counters2, &counters3, k)).sum();
    println!(
        "second run: all {n} CONNECTED {:.3} s after start (restored); emulator requests: {}",
        restore_time.as_secs_f64(),
        show_counters(&counters2, &counters3)
    );
    let restored_rss = rss_kib(&second.pid).unwrap_or(0);
    interrupt(&second.label, &second.pid, Duration::from_secs(20)).await;

    let per_account = (rss - ref_rss) * 1024.0 / n as f64;
    println!();
    println!("=== accounts bench, N = {n} (medians of {} windows) ===", args.repeats);
    println!("RSS, 0 accounts (reference):        {:9.1} MiB", mib(ref_rss as u64));
    println!(
        "RSS, {n} accounts connected, idle:  {:9.1} MiB  {}",
        mib(rss as u64),
        ratio(rss, ref_rss)
    );
    println!(
        "RSS per idle account:               {:9.1} KB (KiB: 1024 B)  goal ≤ 20 KB: {}",
        per_account / 1024.0,
        if per_account / 1024.0 <= 20.0 { "met" } else { "NOT met" }
    );
    println!("CPU, 0 accounts (reference):        {:9.2} % of one core", ref_cpu);
    println!(
        "CPU, {n} accounts polling idly:     {:9.2} % of one core  {}  goal ≤ 5 % at 10k: {}",
        cpu,
        ratio(cpu, ref_cpu),
        if cpu <= 5.0 { "met" } else { "NOT met" }
    );
    println!("start → all CONNECTED, logins:      {:9.2} s", login_time.as_secs_f64());
    println!(
        "start → all CONNECTED, restore:     {:9.3} s  {}  goal ≤ 2 s: {}",
        restore_time.as_secs_f64(),
        ratio(restore_time.as_secs_f64(), login_time.as_secs_f64()),
        if restore_time <= Duration::from_secs(2) { "met" } else { "NOT met" }
    );
    println!("RSS after restore (all connected):  {:9.1} MiB", mib(restored_rss));
    println!(
        "login/ptqrshow requests in restore: {logins:>9}  {}",
        if logins == 0 { "none (ok)" } else { "LOGINS MADE" }
    );
    if logins > 0 {
        bail!("the restore run made {logins} login/ptqrshow requests");
    }
    Ok(())
}

fn main() -> std::process::ExitCode {
    common::kill_children_on_panic();
    let args = match parse_args() {
        Ok(args) => args,
        Err(error) => {
            eprintln!("accounts: {error:#}");
            return std::process::ExitCode::from(2);
        }
    };
    let timeout = args.timeout;
    common::run_bench("accounts", timeout, run(args), String::new)
}
