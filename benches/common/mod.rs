//! Helpers shared by the benches that run `qqbridge` children (benches/emulator_polls.rs,
//! benches/accounts.rs): the child registry that kills them on every way out, /proc readers
//! (RSS, CPU ticks, descriptors), the generated world, and starting the emulator.

// Each bench includes this module and uses a different part of it.
#![allow(dead_code)]

use std::fmt::Write as _;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, PoisonError, TryLockError};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// The first QQ number of the generated world.
pub const FIRST_QQ: u64 = 200_000;

// ---------------------------------------------------------------------------------------------
// Children

/// The running children (label, process), killed by [`kill_children`] from the guard, the panic
/// hook or the signal path. The lock is only ever held for a moment.
static CHILDREN: Mutex<Vec<(String, Child)>> = Mutex::new(Vec::new());

/// Kills and reaps every registered child (never blocks on the registry lock).
pub fn kill_children() {
    let mut slot = match CHILDREN.try_lock() {
        Ok(guard) => guard,
        Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
        Err(TryLockError::WouldBlock) => return,
    };
    for (_, mut child) in slot.drain(..) {
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// Kills the children when dropped (normal end, error, timeout, Ctrl-C).
pub struct ChildGuard;

impl Drop for ChildGuard {
    fn drop(&mut self) {
        kill_children();
    }
}

/// Installs a panic hook that kills the children before the default report.
pub fn kill_children_on_panic() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        kill_children();
        previous(info);
    }));
}

/// Registers `child` under `label` so that every way out kills it.
pub fn register(label: &str, child: Child) {
    CHILDREN.lock().unwrap_or_else(PoisonError::into_inner).push((label.to_owned(), child));
}

/// Whether the child `label` has exited (and with what), taking it off the list if so.
pub fn exited(label: &str) -> Option<std::process::ExitStatus> {
    let mut slot = CHILDREN.lock().unwrap_or_else(PoisonError::into_inner);
    let index = slot.iter().position(|(l, _)| l == label)?;
    let status = slot[index].1.try_wait().ok().flatten()?;
    slot.remove(index);
    Some(status)
}

/// Whether `label` is still registered (not yet seen exiting).
pub fn still_running(label: &str) -> bool {
    CHILDREN.lock().unwrap_or_else(PoisonError::into_inner).iter().any(|(l, _)| l == label)
}

/// SIGINT to `label` (what an operator's Ctrl-C does), then up to `grace` for it to exit, then
/// SIGKILL. Answers how long it took to exit and whether it exited by itself.
pub async fn interrupt(label: &str, pid: &str, grace: Duration) -> (Duration, bool) {
    let started = Instant::now();
    let _ = Command::new("kill").args(["-INT", pid]).status();
    while started.elapsed() < grace {
        if exited(label).is_some() || !still_running(label) {
            return (started.elapsed(), true);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut slot = CHILDREN.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(index) = slot.iter().position(|(l, _)| l == label) {
        let (_, mut child) = slot.remove(index);
        let _ = child.kill();
        let _ = child.wait();
    }
    (started.elapsed(), false)
}

/// Waits until `url` answers 2xx, failing if the child `label` exits first or after 60 s.
pub async fn wait_http(url: &str, label: &str, control: &reqwest::Client) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = exited(label) {
            bail!("{label} exited at start ({status})");
        }
        if let Ok(response) = control.get(url).send().await
            && response.status().is_success()
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{label} did not answer {url} within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// /proc readers

/// Resident set size in KiB (`VmRSS`).
pub fn rss_kib(pid: &str) -> anyhow::Result<u64> {
    status_field(pid, "VmRSS:")
}

/// A numeric field of `/proc/{pid}/status` (the first number after `field`).
pub fn status_field(pid: &str, field: &str) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("cannot read /proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .with_context(|| format!("no {field} in /proc/{pid}/status"))
}

/// utime + stime in clock ticks.
pub fn cpu_ticks(pid: &str) -> anyhow::Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("cannot read /proc/{pid}/stat"))?;
    // The command name may contain spaces and parentheses: fields start after the last ')'.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| -> anyhow::Result<u64> {
        fields
            .get(i)
            .and_then(|v| v.parse().ok())
            .with_context(|| format!("/proc/{pid}/stat has no field {}", i + 3))
    };
    // Fields 14 (utime) and 15 (stime), counted from 1 with pid and comm before the ')'.
    Ok(field(11)? + field(12)?)
}

/// Threads of `pid`.
pub fn threads(pid: &str) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task")).map(Iterator::count).unwrap_or(0)
}

/// Open file descriptors of `pid`.
pub fn open_fds(pid: &str) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map(Iterator::count).unwrap_or(0)
}

/// (soft, hard) limit on open files of this process (inherited by the children).
pub fn nofile_limit() -> Option<(u64, u64)> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let rest = limits.lines().find_map(|l| l.strip_prefix("Max open files"))?;
    let mut numbers = rest.split_whitespace();
    let parse = |v: Option<&str>| v.and_then(|v| v.parse().ok()).unwrap_or(u64::MAX);
    Some((parse(numbers.next()), parse(numbers.next())))
}

/// `getconf CLK_TCK`, 100 if it cannot be read.
pub fn clock_ticks_per_second() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .filter(|&t| t > 0)
        .unwrap_or(100)
}

/// The 1, 5 and 15 minute load averages, as printed.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".to_owned())
}

/// KiB to MiB.
pub fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// The median (upper one for an even count); NaN for none.
pub fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

// ---------------------------------------------------------------------------------------------
// The world and the emulator

/// The QQ number of account `i` of the world.
pub fn qq_of(i: usize) -> u64 {
    FIRST_QQ + i as u64
}

/// The password of the world's account `qq`.
pub fn password_of(qq: u64) -> String {
    format!("bench-{qq}")
}

/// N accounts; account i befriends i+1 and i+2 (mutual, so most have four friends).
pub fn world_yaml(n: usize, generator: &str) -> String {
    let mut yaml = String::with_capacity(n * 110);
    let _ = writeln!(yaml, "# Generated by {generator}\naccounts:");
    for i in 0..n {
        let qq = qq_of(i);
        let _ = write!(
            yaml,
            "  - {{qq: {qq}, password: \"{}\", nick: \"bench {i}\", friends: [",
            password_of(qq)
        );
        let mut friends: Vec<usize> = [(i + 1) % n, (i + 2) % n].into();
        friends.retain(|&f| f != i);
        friends.dedup();
        let list: Vec<String> = friends.iter().map(|&f| format!("{{qq: {}}}", qq_of(f))).collect();
        yaml.push_str(&list.join(", "));
        yaml.push_str("]}\n");
    }
    yaml
}

/// A loopback port free at the time of the call.
pub fn free_port() -> anyhow::Result<u16> {
    let listener =
        TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("cannot bind 127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// The `qqbridge` binary the children run: `QQBRIDGE_BIN`, or the one cargo built alongside.
pub fn binary() -> PathBuf {
    std::env::var_os("QQBRIDGE_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_qqbridge")))
}

/// The last 15 lines of a child's log.
pub fn log_tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

/// The registry label of the emulator child.
pub const EMULATOR: &str = "emulator";

/// A started emulator: its pid, addresses, CA and log.
pub struct Emulator {
    pub pid: String,
    pub plain: SocketAddr,
    pub tls: SocketAddr,
    /// The CA certificate file it wrote, and its PEM text.
    pub ca: PathBuf,
    pub ca_pem: String,
    pub log: PathBuf,
}

/// Starts `qqbridge emulator` on two free loopback ports with `world`, and waits until it
/// answers `GET /_emulator/state`.
pub async fn start_emulator(
    dir: &Path,
    world: &Path,
    poll_hold: u64,
    control: &reqwest::Client,
) -> anyhow::Result<Emulator> {
    let bin = binary();
    let mut last_error = None;
    // A port picked free may be taken again before the child binds it: retry with new ones.
    for attempt in 0..3 {
        let plain = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()?));
        let tls = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()?));
        let ca = dir.join("emulator-ca.pem");
        let log = dir.join(format!("emulator-{attempt}.log"));
        let log_file = std::fs::File::create(&log).context("cannot create the emulator log")?;
        let child = Command::new(&bin)
            .arg("emulator")
            .args(["--listen", &plain.to_string(), "--tls-listen", &tls.to_string()])
            .arg("--ca-cert-out")
            .arg(&ca)
            .arg("--world")
            .arg(world)
            .args(["--poll-hold", &poll_hold.to_string()])
            .env("RUST_LOG", std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".to_owned()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .with_context(|| format!("cannot start {}", bin.display()))?;
        let pid = child.id().to_string();
        register(EMULATOR, child);
        match wait_http(&format!("http://{plain}/_emulator/state"), EMULATOR, control).await {
            Ok(()) => {
                let ca_pem = std::fs::read_to_string(&ca)
                    .with_context(|| format!("the emulator wrote no CA to {}", ca.display()))?;
                return Ok(Emulator { pid, plain, tls, ca, ca_pem, log });
            }
            Err(error) => {
                kill_children();
                last_error = Some(error.context(format!("emulator log:\n{}", log_tail(&log))));
            }
        }
    }
    Err(last_error.unwrap_or_else(|| anyhow::anyhow!("the emulator did not start")))
}

/// A bench's `main` after its arguments are parsed: runs `body` on a multi-thread runtime,
/// bounded by `timeout`, Ctrl-C and SIGTERM (each abort message followed by `status()`), kills
/// the children however it ends, and turns the outcome into the exit code (errors printed as
/// `<name>: …`).
pub fn run_bench(
    name: &str,
    timeout: Duration,
    body: impl Future<Output = anyhow::Result<()>>,
    status: impl Fn() -> String,
) -> std::process::ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("{name}: cannot start the runtime: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        let _guard = ChildGuard;
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            result = body => result,
            () = tokio::time::sleep(timeout) => {
                Err(anyhow::anyhow!("aborted: not done after {} s\n{}", timeout.as_secs(), status()))
            }
            _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted\n{}", status())),
            _ = terminate.recv() => Err(anyhow::anyhow!("terminated\n{}", status())),
        }
    });
    kill_children();
    // Thousands of clients and tasks: no need to drop them one by one.
    runtime.shutdown_background();
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("{name}: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
