//! Benchmark: the Matrix bridge (issue 4). Four measures, each printed as the median over R
//! repeats with its reference measured in the same run:
//!
//! 1. QQ → Matrix throughput: N messages from QQ friends and groups spread over K portals
//!    (K injectors) through emulator → bridge → Synapse, timed until Synapse answered 200 to the
//!    bridge for all of them; reference: N `PUT /rooms/{room}/send/m.room.message/{txn}` made
//!    directly with the appservice token (`?user_id=` a ghost) into the same K rooms at
//!    concurrency K (and, for context, at concurrency 1).
//! 2. Bridge-added latency: single messages one at a time; bridged = from just before the
//!    control call that makes the emulator answer the held poll2 to Synapse's 200 for the
//!    bridged send; direct = from just before a direct send to its 200. Both 200s are timed by a
//!    proxy between the sender and Synapse (the bridge's `homeserver.address` is the proxy, and
//!    the direct sends go through it too), so both paths carry the same extra hop.
//! 3. Matrix → QQ throughput: the owner sends N messages into the K portals (K senders), timed
//!    until the emulator received all of them from the account; reference: the owner's N sends
//!    into K rooms of its own that nothing bridges (Synapse's intake rate for the same client).
//!    The account's sender runs with `sender.min_interval_ms` = `--send-interval-ms` (0: no
//!    pacing; production's default is 3000, one message per 3 s per account).
//! 4. The bridge core in this process (the `BridgeActor` path, SQLite store, the real
//!    `MatrixClient`) against a null homeserver, messages per second and per CPU second, timed
//!    until the actor has settled its backlog (map rows written, inbox rows deleted);
//!    reference: N raw `send_message` calls through the same client.
//!
//! Run with `scripts/bench-bridge.sh [options]`, or `cargo bench --bench bridge -- --bench
//! [--repeats R] [--messages N] [--portals K] [--latency-samples L] [--core-messages M]
//! [--send-interval-ms MS] [--core-only]`. Without `--bench` (as `cargo test --all-targets` runs
//! it) only measure 4 runs, with 200 messages, and checks that every message arrived.
//! Measures 1–3 need Synapse (scripts/synapse.sh; `SYNAPSE_VENV` picks an existing venv) and
//! start the `qqbridge` binary cargo built alongside (or `QQBRIDGE_BIN`) for the emulator and
//! the bridge.

#[path = "../common/mod.rs"]
mod common;
mod core_bench;
mod e2e;
mod servers;
mod setup;

use std::time::Duration;

use anyhow::{Context, bail};
use common::{median, mib, rss_kib, status_field};

/// The bridged QQ account of the end-to-end world.
pub const ACCOUNT_QQ: u64 = 300_000;
const SPEAKERS_PER_GROUP: usize = 3;

/// What portal `p` is: even ones friends, odd ones groups.
pub enum Kind {
    Friend(u64),
    Group(u64),
}

/// The chat of portal `p`.
pub fn chat_kind(p: usize) -> Kind {
    if p.is_multiple_of(2) {
        Kind::Friend(310_000 + p as u64)
    } else {
        Kind::Group(320_000 + p as u64)
    }
}

/// How many people speak in portal `p`.
pub fn speakers_in(p: usize) -> usize {
    if p.is_multiple_of(2) { 1 } else { SPEAKERS_PER_GROUP }
}

/// Speaker `i` of portal `p`.
pub fn speaker(p: usize, i: usize) -> u64 {
    match chat_kind(p) {
        Kind::Friend(qq) => qq,
        Kind::Group(_) => 330_000 + p as u64 * 10 + (i % SPEAKERS_PER_GROUP) as u64,
    }
}

#[derive(Clone, Debug)]
struct Args {
    full: bool,
    repeats: usize,
    messages: usize,
    portals: usize,
    latency_samples: usize,
    core_messages: usize,
    send_interval_ms: u64,
    core_only: bool,
    timeout: Duration,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        full: false,
        repeats: 3,
        messages: 1_000,
        portals: 8,
        latency_samples: 200,
        core_messages: 20_000,
        send_interval_ms: 0,
        core_only: false,
        timeout: Duration::from_secs(3600),
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| -> anyhow::Result<u64> {
            let v = it.next().with_context(|| format!("{name} needs a value"))?;
            v.parse().with_context(|| format!("{name}: not a number: {v}"))
        };
        match arg.as_str() {
            // cargo bench appends `--bench` to a harness-less bench's arguments.
            "--bench" => args.full = true,
            "--repeats" => args.repeats = usize::try_from(value(&arg)?)?.max(1),
            "--messages" => args.messages = usize::try_from(value(&arg)?)?.max(1),
            "--portals" => args.portals = usize::try_from(value(&arg)?)?.clamp(1, 64),
            "--latency-samples" => args.latency_samples = usize::try_from(value(&arg)?)?.max(1),
            "--core-messages" => args.core_messages = usize::try_from(value(&arg)?)?.max(1),
            "--send-interval-ms" => args.send_interval_ms = value(&arg)?,
            "--timeout" => args.timeout = Duration::from_secs(value(&arg)?.max(10)),
            "--core-only" => args.core_only = true,
            other => bail!(
                "unknown option {other}; usage: bridge [--bench] [--repeats R] [--messages N] \
                 [--portals K] [--latency-samples L] [--core-messages M] \
                 [--send-interval-ms MS] [--timeout SECS] [--core-only]"
            ),
        }
    }
    if !args.full {
        // `cargo test --all-targets`: the core measure only, small, as a behaviour check.
        args.core_only = true;
        args.repeats = 1;
        args.core_messages = 200;
        args.timeout = Duration::from_secs(120);
    }
    Ok(args)
}

fn main() -> std::process::ExitCode {
    common::kill_children_on_panic();
    let args = match parse_args() {
        Ok(args) => args,
        Err(error) => {
            eprintln!("bridge: {error:#}");
            return std::process::ExitCode::from(2);
        }
    };
    let timeout = args.timeout;
    common::run_bench("bridge", timeout, run(args), || format!("load {}", common::load_average()))
}

fn ratio(value: f64, reference: f64) -> String {
    if reference > 0.0 {
        format!("×{:.3}", value / reference)
    } else {
        "×? (reference 0)".to_owned()
    }
}

/// The `q` quantile (0..=1) of `values` (nearest rank); NaN for none.
fn quantile(values: &[f64], q: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

async fn run(args: Args) -> anyhow::Result<()> {
    println!(
        "bridge bench: {} mode, {} repeat(s), {} CPU(s), load {}",
        if args.full { "full" } else { "smoke" },
        args.repeats,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        common::load_average()
    );
    if !args.core_only {
        end_to_end(&args).await?;
    }
    core_measure(&args).await
}

async fn core_measure(args: &Args) -> anyhow::Result<()> {
    let core_args =
        core_bench::CoreArgs { messages: args.core_messages, portals: args.portals, batch: 8 };
    println!(
        "\n4. bridge core vs a null homeserver: {} QQ messages over {} portals in batches of {} \
         (BridgeActor → Bridge::qq_message_unsettled → MatrixClient → in-process null \
         homeserver, SQLite store; timed until the map rows and inbox deletions are stored); \
         reference: as many raw MatrixClient::send_message calls, one at a time",
        core_args.messages, core_args.portals, core_args.batch
    );
    let mut runs = Vec::new();
    for repeat in 0..args.repeats {
        // A thread of its own (named, so that its CPU shows apart from the runtime's threads)
        // that runs the bridge's actix system.
        let thread = std::thread::Builder::new()
            .name("bridge-core".into())
            .spawn(move || core_bench::run_once(core_args))?;
        let run = tokio::task::spawn_blocking(move || thread.join())
            .await?
            .map_err(|_| anyhow::anyhow!("the bridge-core thread panicked"))??;
        println!(
            "   run {}: bridge {:.0} msg/s, {:.0} msg/CPU-s ({:.0} without the null hs); \
             raw {:.0} msg/s, {:.0} msg/CPU-s ({:.0} without the null hs)",
            repeat + 1,
            run.bridge_rate,
            run.bridge_per_cpu,
            run.bridge_per_own_cpu,
            run.raw_rate,
            run.raw_per_cpu,
            run.raw_per_own_cpu
        );
        let threads: Vec<String> =
            run.bridge_threads.iter().map(|(name, us)| format!("{name} {us:.1}")).collect();
        println!("      bridge phase, CPU µs per message by thread: {}", threads.join(", "));
        runs.push(run);
    }
    let m = |f: fn(&core_bench::CoreRun) -> f64| median(runs.iter().map(f).collect());
    let (bridge, raw) = (m(|r| r.bridge_rate), m(|r| r.raw_rate));
    let (bridge_cpu, raw_cpu) = (m(|r| r.bridge_per_cpu), m(|r| r.raw_per_cpu));
    let (bridge_own, raw_own) = (m(|r| r.bridge_per_own_cpu), m(|r| r.raw_per_own_cpu));
    println!(
        "   median: bridge {bridge:.0} msg/s vs raw sends {raw:.0} msg/s: {}",
        ratio(bridge, raw)
    );
    println!(
        "   median per core (messages per CPU-second of the process): bridge {bridge_cpu:.0} vs \
         raw {raw_cpu:.0}: {}; without the null homeserver's thread: bridge {bridge_own:.0} vs \
         raw {raw_own:.0}: {} (goal ≥ 20000 per core)",
        ratio(bridge_cpu, raw_cpu),
        ratio(bridge_own, raw_own)
    );
    if let Ok(rss) = rss_kib("self") {
        println!("   this process: RSS {:.1} MiB", mib(rss));
    }
    Ok(())
}

async fn end_to_end(args: &Args) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let mut world = setup::build(args.portals, args.send_interval_ms).await?;
    println!(
        "set-up: Synapse {} (pid {}), emulator pid {}, bridge pid {} (`qqbridge run`, \
         sender.min_interval_ms {}), {} portals ({} friends, {} groups), proxy {}; {:.1} s; \
         logs in {}",
        world.synapse.url,
        world.synapse.pid,
        world.emulator.pid,
        world.bridge.pid,
        args.send_interval_ms,
        world.portals.len(),
        args.portals.div_ceil(2),
        args.portals / 2,
        world.proxy_url,
        started.elapsed().as_secs_f64(),
        world.dir.display()
    );
    let mut runs = Vec::new();
    for repeat in 0..args.repeats {
        let e2e_args = e2e::E2eArgs {
            messages: args.messages,
            concurrency: args.portals,
            latency_samples: args.latency_samples,
            repeat,
        };
        let run = e2e::run_once(&world, e2e_args).await?;
        println!(
            "run {}: Q→M direct(K) {:.0}/s, bridged {:.0}/s, direct(1) {:.0}/s; latency p50/p99 \
             bridged {:.2}/{:.2} ms, direct {:.2}/{:.2} ms; M→Q reference {:.0}/s, bridged \
             {:.0}/s (intake {:.0}/s)",
            repeat + 1,
            run.direct_k,
            run.bridged,
            run.direct_1,
            quantile(&run.lat_bridged, 0.5),
            quantile(&run.lat_bridged, 0.99),
            quantile(&run.lat_direct, 0.5),
            quantile(&run.lat_direct, 0.99),
            run.m2q_reference,
            run.m2q_bridged,
            run.m2q_intake
        );
        runs.push(run);
    }
    let m = |f: &dyn Fn(&e2e::E2eRun) -> f64| median(runs.iter().map(f).collect());
    let n = args.messages.div_ceil(args.portals) * args.portals;
    let k = args.portals;
    println!("\nmedians over {} repeat(s), N = {n}, K = {k}:", runs.len());

    let (direct, bridged, direct_1) = (m(&|r| r.direct_k), m(&|r| r.bridged), m(&|r| r.direct_1));
    println!(
        "1. QQ → Matrix: bridged {bridged:.0} msg/s vs direct appservice sends at concurrency {k} \
         {direct:.0} msg/s: {} (goal ≥ 0.95); direct at concurrency 1: {direct_1:.0} msg/s \
         (bridged {}); bridge CPU {:.0} µs per message; Synapse CPU {:.0}% (direct) / {:.0}% \
         (bridged) of a core",
        ratio(bridged, direct),
        ratio(bridged, direct_1),
        m(&|r| r.bridge_cpu_us),
        m(&|r| r.synapse_cpu_direct),
        m(&|r| r.synapse_cpu_bridged)
    );

    let q = |f: &dyn Fn(&e2e::E2eRun) -> &Vec<f64>, p: f64| m(&|r| quantile(f(r), p));
    let (b50, b99) = (q(&|r| &r.lat_bridged, 0.5), q(&|r| &r.lat_bridged, 0.99));
    let (d50, d99) = (q(&|r| &r.lat_direct, 0.5), q(&|r| &r.lat_direct, 0.99));
    let c50 = q(&|r| &r.lat_control, 0.5);
    println!(
        "2. latency to Synapse's 200 ({} samples each per repeat): bridged p50 {b50:.2} ms, p99 \
         {b99:.2} ms; direct p50 {d50:.2} ms, p99 {d99:.2} ms; bridge-added p50 {:.2} ms, p99 \
         {:.2} ms (goal p99 ≤ 2 ms); the bridged figure starts before the emulator's control \
         call (its round trip p50 {c50:.2} ms), so it overstates by up to that",
        args.latency_samples,
        b50 - d50,
        b99 - d99
    );
    // The same samples split where the proxy received each request: before it, the bridge's
    // part (poll2 answer → conversion → request) or the direct sender's; after it, Synapse's,
    // which is the same work both ways and whose jitter swamps the difference of the totals.
    let (r50, r99) = (q(&|r| &r.reach_bridged, 0.5), q(&|r| &r.reach_bridged, 0.99));
    let (s50, s99) = (q(&|r| &r.reach_direct, 0.5), q(&|r| &r.reach_direct, 0.99));
    println!(
        "   to the request reaching the homeserver: bridged p50 {r50:.2} ms, p99 {r99:.2} ms \
         (control call included); direct p50 {s50:.2} ms, p99 {s99:.2} ms; bridge-added p50 \
         {:.2} ms, p99 {:.2} ms (goal p99 ≤ 2 ms)",
        r50 - s50,
        r99 - s99
    );

    let (reference, m2q, intake) =
        (m(&|r| r.m2q_reference), m(&|r| r.m2q_bridged), m(&|r| r.m2q_intake));
    println!(
        "3. Matrix → QQ: {m2q:.0} msg/s until the emulator had them all, vs the owner's sends \
         into rooms nothing bridges {reference:.0} msg/s: {} (Synapse accepted the bridged ones \
         at {intake:.0} msg/s); bridge CPU {:.0} µs per message; sender.min_interval_ms {} \
         (production default 3000 = 0.33 msg/s per account)",
        ratio(m2q, reference),
        m(&|r| r.bridge_cpu_us_m2q),
        args.send_interval_ms
    );
    let pid = world.bridge.pid.clone();
    if let (Ok(rss), Ok(peak)) = (rss_kib(&pid), status_field(&pid, "VmHWM:")) {
        println!("   bridge process: RSS {:.1} MiB now, peak {:.1} MiB", mib(rss), mib(peak));
    }
    if let (Ok(rss), Ok(peak)) =
        (rss_kib(&world.emulator.pid), status_field(&world.emulator.pid, "VmHWM:"))
    {
        println!("   emulator process: RSS {:.1} MiB now, peak {:.1} MiB", mib(rss), mib(peak));
    }
    common::kill_children();
    world.synapse.stop();
    // Kept when the bench fails, for the logs; removed after a run that went through.
    let _ = std::fs::remove_dir_all(&world.dir);
    Ok(())
}
