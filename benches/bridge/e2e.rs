//! Measures 1–3 through the real pieces (emulator child, `qqbridge run` child, Synapse): QQ →
//! Matrix throughput against direct appservice sends, bridge-added latency, Matrix → QQ
//! throughput against the owner's sends into rooms nothing bridges.

use std::time::{Duration, Instant};

use anyhow::bail;
use futures_util::future::try_join_all;

use crate::common::{clock_ticks_per_second, cpu_ticks};
use crate::setup::World;
use crate::speakers_in;

/// One repeat's figures.
#[derive(Clone, Debug, Default)]
pub struct E2eRun {
    /// Direct appservice sends per second at concurrency K.
    pub direct_k: f64,
    /// The same through emulator + bridge, per second.
    pub bridged: f64,
    /// Direct sends per second at concurrency 1.
    pub direct_1: f64,
    /// Bridge CPU per bridged QQ → Matrix message, µs.
    pub bridge_cpu_us: f64,
    /// Synapse's CPU (% of one core) during the direct-K and the bridged runs.
    pub synapse_cpu_direct: f64,
    pub synapse_cpu_bridged: f64,
    /// Latency samples (ms): bridged (injection → Synapse's 200), direct (request → 200), and
    /// the control call's own round trip.
    pub lat_bridged: Vec<f64>,
    pub lat_direct: Vec<f64>,
    pub lat_control: Vec<f64>,
    /// Per sample, from just before the control call to the bridge's request having reached
    /// the proxy: the bridge's own part of the path, free of Synapse's time.
    pub reach_bridged: Vec<f64>,
    /// Per sample, from just before the direct send to its request having reached the proxy.
    pub reach_direct: Vec<f64>,
    /// The owner's sends per second into rooms nothing bridges.
    pub m2q_reference: f64,
    /// Owner's sends into portals, per second until the emulator received them all.
    pub m2q_bridged: f64,
    /// The owner's sends into portals, per second until Synapse accepted them all.
    pub m2q_intake: f64,
    /// Bridge CPU per Matrix → QQ message, µs.
    pub bridge_cpu_us_m2q: f64,
}

/// What one repeat needs.
#[derive(Clone, Copy, Debug)]
pub struct E2eArgs {
    pub messages: usize,
    pub concurrency: usize,
    pub latency_samples: usize,
    pub repeat: usize,
}

fn ticks(pid: &str) -> f64 {
    cpu_ticks(pid).map_or(f64::NAN, |t| t as f64)
}

/// `value` per second over `elapsed`.
fn rate(n: usize, elapsed: Duration) -> f64 {
    n as f64 / elapsed.as_secs_f64()
}

/// CPU percent of one core of `ticks` over `elapsed`.
fn cpu_pct(ticks: f64, elapsed: Duration) -> f64 {
    100.0 * ticks / clock_ticks_per_second() as f64 / elapsed.as_secs_f64()
}

/// `n` sends made directly (as_token, through the proxy) at concurrency `c` into the portals.
async fn direct(world: &World, n: usize, c: usize, tag: &str) -> anyhow::Result<Duration> {
    let per = n.div_ceil(c);
    let started = Instant::now();
    try_join_all((0..c).map(|w| async move {
        let (room, user) = &world.portals[w % world.portals.len()];
        for j in 0..per {
            let txn = format!("bd{tag}w{w}j{j}");
            world.direct_send(room, user, &txn, &format!("direct {tag} {w}/{j}")).await?;
        }
        anyhow::Ok(())
    }))
    .await?;
    Ok(started.elapsed())
}

/// `n` QQ messages injected over the K portals (one injector per portal), timed until Synapse
/// answered 200 to the bridge for all of them.
async fn bridged(world: &World, n: usize, tag: &str) -> anyhow::Result<Duration> {
    let k = world.portals.len();
    let per = n.div_ceil(k);
    let base = world.proxy.bridged();
    let started = Instant::now();
    try_join_all((0..k).map(|p| async move {
        for j in 0..per {
            world.inject(p, j % speakers_in(p), &format!("bridged {tag} {p}/{j}")).await?;
        }
        anyhow::Ok(())
    }))
    .await?;
    world.wait_bridged(base + (per * k) as u64, Duration::from_secs(600)).await?;
    Ok(started.elapsed())
}

/// Waits for the proxy's record of a send whose txn starts with `prefix`, from index `from`;
/// answers when its request arrived and when Synapse's 200 came back.
async fn seen_at(world: &World, from: usize, prefix: &str) -> anyhow::Result<(Instant, Instant)> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(seen) = world
            .proxy
            .since(from)
            .into_iter()
            .find(|s| s.txn.starts_with(prefix) && s.status == 200)
        {
            return Ok((seen.arrived, seen.at));
        }
        world.check_bridge()?;
        if Instant::now() > deadline {
            bail!("no {prefix}… send reached Synapse within 60 s");
        }
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
}

/// Single messages, one at a time, alternating bridged and direct.
async fn latency(world: &World, samples: usize, tag: &str, run: &mut E2eRun) -> anyhow::Result<()> {
    let k = world.portals.len();
    for s in 0..samples {
        let p = s % k;
        let from = world.proxy.seen();
        let t0 = Instant::now();
        world.inject(p, 0, &format!("latency {tag} {s}")).await?;
        let control = t0.elapsed();
        let (arrived, at) = seen_at(world, from, "qq").await?;
        run.lat_bridged.push(at.duration_since(t0).as_secs_f64() * 1e3);
        run.reach_bridged.push(arrived.duration_since(t0).as_secs_f64() * 1e3);
        run.lat_control.push(control.as_secs_f64() * 1e3);
        tokio::time::sleep(Duration::from_millis(5)).await;

        let (room, user) = &world.portals[p];
        let from = world.proxy.seen();
        let t0 = Instant::now();
        world
            .direct_send(room, user, &format!("bd{tag}l{s}"), &format!("latency direct {s}"))
            .await?;
        let (arrived, at) = seen_at(world, from, "bd").await?;
        run.lat_direct.push(at.duration_since(t0).as_secs_f64() * 1e3);
        run.reach_direct.push(arrived.duration_since(t0).as_secs_f64() * 1e3);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(())
}

/// The owner's `n` sends at concurrency K into `rooms`: the time until all were accepted.
async fn owner_sends(
    world: &World,
    rooms: &[String],
    n: usize,
    tag: &str,
) -> anyhow::Result<Duration> {
    let k = rooms.len();
    let per = n.div_ceil(k);
    let started = Instant::now();
    try_join_all(rooms.iter().enumerate().map(|(w, room)| async move {
        for j in 0..per {
            world
                .owner_send(
                    room,
                    &format!("ow{tag}w{w}j{j}"),
                    &format!("from Matrix {tag} {w}/{j}"),
                )
                .await?;
        }
        anyhow::Ok(())
    }))
    .await?;
    Ok(started.elapsed())
}

/// One repeat of measures 1–3.
pub async fn run_once(world: &World, args: E2eArgs) -> anyhow::Result<E2eRun> {
    let mut run = E2eRun::default();
    let n = args.messages;
    let k = world.portals.len();
    let n = n.div_ceil(k) * k;
    let tag = format!("r{}", args.repeat);
    let bridge = world.bridge.pid.as_str();
    let synapse = world.synapse.pid.as_str();

    // 1. QQ → Matrix; which of the two goes first alternates between repeats (Synapse slows
    // down a little as its database grows).
    let measure_direct = async |run: &mut E2eRun| -> anyhow::Result<()> {
        let s0 = ticks(synapse);
        let elapsed = direct(world, n, args.concurrency, &format!("{tag}k")).await?;
        run.direct_k = rate(n, elapsed);
        run.synapse_cpu_direct = cpu_pct(ticks(synapse) - s0, elapsed);
        Ok(())
    };
    let measure_bridged = async |run: &mut E2eRun| -> anyhow::Result<()> {
        let (b0, s0) = (ticks(bridge), ticks(synapse));
        let elapsed = bridged(world, n, &tag).await?;
        run.bridged = rate(n, elapsed);
        run.bridge_cpu_us = (ticks(bridge) - b0) / clock_ticks_per_second() as f64 / n as f64 * 1e6;
        run.synapse_cpu_bridged = cpu_pct(ticks(synapse) - s0, elapsed);
        Ok(())
    };
    if args.repeat.is_multiple_of(2) {
        measure_direct(&mut run).await?;
        measure_bridged(&mut run).await?;
    } else {
        measure_bridged(&mut run).await?;
        measure_direct(&mut run).await?;
    }
    let elapsed = direct(world, n / 2, 1, &format!("{tag}c")).await?;
    run.direct_1 = rate(n / 2, elapsed);

    // 2. Latency.
    latency(world, args.latency_samples, &tag, &mut run).await?;

    // 3. Matrix → QQ.
    let elapsed = owner_sends(world, &world.plain_rooms, n, &format!("{tag}p")).await?;
    run.m2q_reference = rate(n, elapsed);
    let portals: Vec<String> = world.portals.iter().map(|(r, _)| r.clone()).collect();
    let base = world.qq_sent().await?;
    let b0 = ticks(bridge);
    let started = Instant::now();
    let intake = owner_sends(world, &portals, n, &format!("{tag}b")).await?;
    run.m2q_intake = rate(n, intake);
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let sent = world.qq_sent().await?;
        if sent >= base + n as u64 {
            break;
        }
        world.check_bridge()?;
        if Instant::now() > deadline {
            bail!("the emulator got {} of {n} messages from Matrix within 600 s", sent - base);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    run.m2q_bridged = rate(n, started.elapsed());
    run.bridge_cpu_us_m2q = (ticks(bridge) - b0) / clock_ticks_per_second() as f64 / n as f64 * 1e6;
    let _ = k;
    Ok(run)
}
