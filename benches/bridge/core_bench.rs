//! Measure 4: the bridge core (the `BridgeActor` path: store lookups, ghosts, conversion, the
//! `MatrixClient` send, the message-map write) against the null homeserver, in this process;
//! reference: the same number of raw `send_message` calls through the same `MatrixClient`.
//!
//! The null homeserver runs on its own thread (a current-thread runtime) so that its CPU time can
//! be taken out: "bridge CPU" is this process's CPU minus that thread's.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use actix::prelude::*;
use anyhow::{Context, bail};
use qqbridge::account::manager::{AccountManager, ManagerSettings};
use qqbridge::account::poller::Backoff;
use qqbridge::account::poller_actor::QqEventsReceived;
use qqbridge::account::resolve::{Origin, QqEvent, QqMessage};
use qqbridge::account::send_queue::{ChatKey, SendPolicy};
use qqbridge::bridge::actor::{Backlog, BridgeActor};
use qqbridge::bridge::ids::GhostIds;
use qqbridge::bridge::portal::{Bridge, BridgeSettings};
use qqbridge::matrix::Token;
use qqbridge::matrix::client::{ClientSettings, MatrixClient};
use qqbridge::metrics::Metrics;
use qqbridge::store::Store;
use qqbridge::webqq::client::ClientConfig;
use qqbridge::webqq::content::Content;
use qqbridge::webqq::{GroupNumber, MsgId, QqNumber, Uin};
use ruma::events::room::message::RoomMessageEventContent;
use ruma::{MilliSecondsSinceUnixEpoch, OwnedRoomId, OwnedServerName, OwnedUserId, UInt};

use crate::common::{clock_ticks_per_second, cpu_ticks};
use crate::servers::{NullCounts, null_answer};

const ACCOUNT: &str = "me";

/// One run's figures.
#[derive(Clone, Debug, Default)]
pub struct CoreRun {
    /// Bridged messages per wall second.
    pub bridge_rate: f64,
    /// Bridged messages per CPU second of the whole process (null homeserver included).
    pub bridge_per_cpu: f64,
    /// Bridged messages per CPU second without the null homeserver's thread.
    pub bridge_per_own_cpu: f64,
    /// Raw sends per wall second.
    pub raw_rate: f64,
    /// Raw sends per CPU second of the whole process.
    pub raw_per_cpu: f64,
    /// Raw sends per CPU second without the null homeserver's thread.
    pub raw_per_own_cpu: f64,
    /// CPU µs per bridged message by thread name (the bridge phase), largest first.
    pub bridge_threads: Vec<(String, f64)>,
}

/// CPU ticks of every thread of this process, by thread id: (name, ticks).
fn thread_ticks() -> BTreeMap<String, (String, u64)> {
    let mut threads = BTreeMap::new();
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else { return threads };
    for task in tasks.flatten() {
        let tid = task.file_name().to_string_lossy().into_owned();
        let name = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if let Ok(ticks) = cpu_ticks(&format!("self/task/{tid}")) {
            threads.insert(tid, (name.trim().to_owned(), ticks));
        }
    }
    threads
}

/// CPU µs per message by thread name between two [`thread_ticks`] snapshots.
fn per_thread(
    before: &BTreeMap<String, (String, u64)>,
    after: &BTreeMap<String, (String, u64)>,
    messages: usize,
) -> Vec<(String, f64)> {
    let mut by_name: BTreeMap<String, u64> = BTreeMap::new();
    for (tid, (name, ticks)) in after {
        let start = before.get(tid).map_or(0, |(_, t)| *t);
        *by_name.entry(name.clone()).or_default() += ticks.saturating_sub(start);
    }
    let us_per_tick = 1e6 / clock_ticks_per_second() as f64;
    let mut list: Vec<(String, f64)> = by_name
        .into_iter()
        .filter(|(_, t)| *t > 0)
        .map(|(name, t)| (name, t as f64 * us_per_tick / messages as f64))
        .collect();
    list.sort_by(|a, b| b.1.total_cmp(&a.1));
    list
}

/// What the measure needs.
#[derive(Clone, Copy, Debug)]
pub struct CoreArgs {
    pub messages: usize,
    pub portals: usize,
    pub batch: usize,
}

/// Runs one repeat on a fresh actix system, store and null homeserver (blocking: call from a
/// thread of its own).
pub fn run_once(args: CoreArgs) -> anyhow::Result<CoreRun> {
    let counts = Arc::new(NullCounts::default());
    let bot: Arc<str> = Arc::from("@qqbenchbot:localhost");
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    // The null homeserver's thread: its own runtime, and its tid for the CPU split.
    let null_counts = counts.clone();
    let null_bot = bot.clone();
    std::thread::Builder::new().name("null-homeserver".into()).spawn(move || {
        let tid = std::fs::read_link("/proc/thread-self")
            .ok()
            .and_then(|p| p.file_name().map(|f| f.to_string_lossy().into_owned()));
        let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
            Ok(runtime) => runtime,
            Err(error) => {
                let _ = addr_tx.send(Err(anyhow::anyhow!("null homeserver runtime: {error}")));
                return;
            }
        };
        runtime.block_on(async move {
            let handler = move |req| null_answer(req, null_bot.clone(), null_counts.clone());
            let bound = crate::servers::spawn_server(handler).await;
            let _ = addr_tx.send(bound.map(|addr| (addr, tid)));
            // Serves until the process ends (one per repeat; they idle afterwards).
            std::future::pending::<()>().await;
        });
    })?;
    let (addr, tid) = addr_rx.recv().context("the null homeserver thread ended")??;
    let tid = tid.context("no /proc/thread-self")?;
    let dir = tempfile::tempdir()?;
    let store = Store::open_sqlite(&dir.path().join("bridge.sqlite3"))?;
    System::new().block_on(measure(args, addr, &tid, counts, &bot, store))
}

fn ticks_self() -> anyhow::Result<u64> {
    cpu_ticks("self")
}

fn ticks_thread(tid: &str) -> anyhow::Result<u64> {
    cpu_ticks(&format!("self/task/{tid}"))
}

/// The chat of portal `p` (the same world as the end-to-end measures).
fn chat_of(p: usize) -> ChatKey {
    match crate::chat_kind(p) {
        crate::Kind::Friend(qq) => ChatKey::Friend(QqNumber::new(qq)),
        crate::Kind::Group(number) => ChatKey::Group(GroupNumber::new(number)),
    }
}

/// The speaker of message `i` in portal `p`.
fn speaker_of(p: usize, i: usize) -> QqNumber {
    QqNumber::new(crate::speaker(p, i))
}

fn message(p: usize, i: usize, seq: u64) -> QqEvent {
    let sender = speaker_of(p, i);
    let chat = chat_of(p);
    let time = 1_700_000_000 + seq;
    QqEvent::Message(QqMessage {
        chat,
        chat_name: Some(format!("bench chat {p}")),
        sender: Some(sender),
        sender_name: format!("speaker {sender}"),
        from_self: false,
        key: format!("{sender}:{seq}:{time}"),
        time,
        content: Content::text(format!("bench message {seq} in portal {p}")),
        origin: Origin { from: Uin::new(sender.get()), msg_id: MsgId::new(seq), chat: None },
    })
}

async fn wait_sends(counts: &NullCounts, target: u64, what: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(600);
    while counts.sends.load(Ordering::Relaxed) < target {
        if Instant::now() > deadline {
            bail!(
                "{what}: the null homeserver got {} sends of {target} within 600 s",
                counts.sends.load(Ordering::Relaxed)
            );
        }
        tokio::time::sleep(Duration::from_micros(500)).await;
    }
    Ok(())
}

async fn wait_settled(actor: &Addr<BridgeActor>) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(600);
    while actor.send(Backlog).await? > 0 {
        if Instant::now() > deadline {
            bail!("the bridge did not settle its backlog within 600 s");
        }
        tokio::time::sleep(Duration::from_micros(500)).await;
    }
    Ok(())
}

async fn measure(
    args: CoreArgs,
    addr: std::net::SocketAddr,
    tid: &str,
    counts: Arc<NullCounts>,
    bot: &str,
    store: Store,
) -> anyhow::Result<CoreRun> {
    let server_name = OwnedServerName::try_from("localhost")?;
    let bot = OwnedUserId::try_from(bot)?;
    let owner = OwnedUserId::try_from("@owner:localhost")?;
    let homeserver = url::Url::parse(&format!("http://{addr}"))?;
    let settings = ClientSettings::new(
        homeserver,
        server_name.clone(),
        Token::new("bench-as-token"),
        bot.clone(),
        "qqbench".to_owned(),
    );
    let metrics = Metrics::new();
    let matrix = MatrixClient::new(settings, metrics.clone())?;
    let ghosts = GhostIds::new("qqb_{qq}", &server_name).context("ghost template")?;
    let bridge_settings = BridgeSettings {
        bot,
        ghosts: ghosts.clone(),
        displayname_template: "{name} (QQ)".to_owned(),
        owners: BTreeMap::from([(ACCOUNT.to_owned(), owner)]),
        max_image_bytes: 10 << 20,
        max_text_bytes: 8192,
        message_status_events: false,
        initial_group_members: 0,
        presence: false,
        portal_creation: qqbridge::config::PortalCreation::OnMessage,
        numbers: BTreeMap::new(),
        relay: qqbridge::config::RelayConfig::default(),
        double_puppet: qqbridge::config::DoublePuppetConfig::default(),
        status: qqbridge::bridge::state::StatusSettings::default(),
    };
    let manager = ManagerSettings {
        client: ClientConfig::redirect_all(addr, None),
        backoff: Backoff { initial: Duration::from_millis(100), max: Duration::from_secs(1) },
        send: SendPolicy::default(),
        max_relogins: 1,
        arbiters: 1,
        login_concurrency: 1,
        per_account: true,
        gap_notice: 120,
    };
    let bridge_matrix = matrix.clone();
    let bridge_store = store.clone();
    let actor_store = store.clone();
    let actor = BridgeActor::create(move |ctx| {
        let accounts =
            AccountManager::new(manager, metrics, bridge_store.clone(), ctx.address().recipient())
                .start();
        BridgeActor::new(
            Arc::new(Bridge::new(bridge_settings, bridge_matrix, bridge_store, accounts)),
            actor_store,
        )
    });

    // Warm-up: every portal and every speaker once (rooms, ghosts, space), not timed.
    let mut seq = 0u64;
    let mut warm = Vec::new();
    for p in 0..args.portals {
        for i in 0..crate::speakers_in(p) {
            seq += 1;
            warm.push(message(p, i, seq));
        }
    }
    let warm_count = warm.len() as u64;
    actor.do_send(QqEventsReceived {
        account: ACCOUNT.into(),
        events: vec![],
        resolved: warm,
        polled: None,
    });
    wait_sends(&counts, warm_count, "warm-up").await?;
    // The rooms the warm-up made, for the raw reference.
    let portals = store.portals()?;
    let rooms: Vec<OwnedRoomId> = portals.iter().filter_map(|p| p.room_id.clone()).collect();
    if rooms.len() != args.portals {
        bail!("warm-up made {} portals, not {}", rooms.len(), args.portals);
    }

    // The bridge: N messages in poll-sized batches, round-robin over the portals.
    let mut batches = Vec::new();
    let mut batch = Vec::with_capacity(args.batch);
    for i in 0..args.messages {
        seq += 1;
        batch.push(message(i % args.portals, i / args.portals, seq));
        if batch.len() == args.batch {
            batches.push(std::mem::take(&mut batch));
        }
    }
    if !batch.is_empty() {
        batches.push(batch);
    }
    let before = counts.sends.load(Ordering::Relaxed);
    let threads0 = thread_ticks();
    let (cpu0, null0) = (ticks_self()?, ticks_thread(tid)?);
    let started = Instant::now();
    for resolved in batches {
        actor.do_send(QqEventsReceived {
            account: ACCOUNT.into(),
            events: vec![],
            resolved,
            polled: None,
        });
    }
    wait_sends(&counts, before + args.messages as u64, "bridge").await?;
    // The clock stops once the bridge has settled everything (map rows written, inbox rows
    // deleted), not at the last send: the store work behind the sends is counted in full.
    wait_settled(&actor).await?;
    let bridge_wall = started.elapsed().as_secs_f64();
    let (cpu1, null1) = (ticks_self()?, ticks_thread(tid)?);
    let bridge_threads = per_thread(&threads0, &thread_ticks(), args.messages);
    // Exactly N: nothing lost, nothing sent twice (the behaviour the smoke run checks).
    let bridged = counts.sends.load(Ordering::Relaxed) - before;
    if bridged != args.messages as u64 {
        bail!("the bridge made {bridged} sends for {} messages", args.messages);
    }
    let left = store.inbox()?.len();
    if left > 0 {
        bail!("{left} QQ events left in the inbox after the bridge settled");
    }

    // The reference: the same number of raw sends through the same client, one at a time (the
    // bridge actor sends one at a time too), into the same rooms as the same ghosts.
    let ghost_ids: Vec<OwnedUserId> = (0..args.portals)
        .map(|p| ghosts.user_id(speaker_of(p, 0)).context("ghost id"))
        .collect::<anyhow::Result<_>>()?;
    let before = counts.sends.load(Ordering::Relaxed);
    let (cpu2, null2) = (ticks_self()?, ticks_thread(tid)?);
    let started = Instant::now();
    for i in 0..args.messages {
        let p = i % args.portals;
        let content = RoomMessageEventContent::text_plain(format!("raw message {i} in portal {p}"));
        let txn = ruma::OwnedTransactionId::from(format!("raw{i}"));
        let ts = MilliSecondsSinceUnixEpoch(UInt::new_saturating(1_700_000_000_000));
        matrix.send_message(&rooms[p], Some(&ghost_ids[p]), &txn, &content, Some(ts)).await?;
    }
    let raw_wall = started.elapsed().as_secs_f64();
    let (cpu3, null3) = (ticks_self()?, ticks_thread(tid)?);
    if counts.sends.load(Ordering::Relaxed) != before + args.messages as u64 {
        bail!("the raw sends did not all reach the null homeserver");
    }

    let hz = clock_ticks_per_second() as f64;
    let n = args.messages as f64;
    let per = |ticks: u64| if ticks == 0 { f64::INFINITY } else { n * hz / ticks as f64 };
    Ok(CoreRun {
        bridge_rate: n / bridge_wall,
        bridge_per_cpu: per(cpu1 - cpu0),
        bridge_per_own_cpu: per((cpu1 - cpu0).saturating_sub(null1 - null0)),
        raw_rate: n / raw_wall,
        raw_per_cpu: per(cpu3 - cpu2),
        raw_per_own_cpu: per((cpu3 - cpu2).saturating_sub(null3 - null2)),
        bridge_threads,
    })
}
