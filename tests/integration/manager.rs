//! The account manager: accounts added and removed at run time, their states and logins in the
//! metrics, sessions in the store so that a new manager restores them without a login.

use std::time::Duration;

use actix::prelude::*;
use qqbridge::account::account_actor::Credentials;
use qqbridge::account::manager::{
    AccountManager, AddAccount, GetStates, ManagerSettings, RemoveAccount, StopAccounts,
};
use qqbridge::account::poller::Backoff;
use qqbridge::account::poller_actor::QqEventsReceived;
use qqbridge::account::send_queue::SendPolicy;
use qqbridge::account::state::AccountState;
use qqbridge::metrics::Metrics;
use qqbridge::store::Store;
use qqbridge::webqq::{QqNumber, Secret};
use serde_json::json;

use crate::harness::{TestEmulator, test_store};

struct Sink;

impl Actor for Sink {
    type Context = Context<Self>;
}

impl Handler<QqEventsReceived> for Sink {
    type Result = ();
    fn handle(&mut self, _: QqEventsReceived, _: &mut Context<Self>) {}
}

fn manager(te: &TestEmulator, metrics: &Metrics, store: Store) -> Addr<AccountManager> {
    let settings = ManagerSettings {
        client: te.client_config(),
        backoff: Backoff { initial: Duration::from_millis(100), max: Duration::from_secs(1) },
        send: SendPolicy::default(),
        max_relogins: 3,
        arbiters: 2,
        login_concurrency: 8,
        per_account: true,
        gap_notice: 120,
    };
    AccountManager::new(settings, metrics.clone(), store, Sink.start().recipient()).start()
}

fn add(id: &str, qq: u64, password: &str) -> AddAccount {
    AddAccount {
        id: id.into(),
        qq: QqNumber::new(qq),
        credentials: Credentials::Password(Secret::new(password.to_owned())),
    }
}

async fn wait_connected(
    manager: &Addr<AccountManager>,
    ids: &[&str],
) -> Vec<(String, AccountState, Option<String>)> {
    for _ in 0..100 {
        let states = manager.send(GetStates).await.unwrap();
        let connected = states
            .iter()
            .filter(|(id, s, _)| ids.contains(&id.as_str()) && *s == AccountState::Connected)
            .count();
        if connected == ids.len() {
            return states;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("not all connected: {:?}", manager.send(GetStates).await.unwrap());
}

fn metric_line<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    text.lines().find(|line| line.starts_with(prefix))
}

#[actix::test]
async fn test_accounts_added_removed_and_restored() {
    let te = TestEmulator::start().await;
    te.control(
        "accounts",
        json!({"qq": 20001, "password": "pw", "nick": "second", "captcha": false}),
    )
    .await;
    let (store, db) = test_store();
    let metrics = Metrics::new();
    let first = manager(&te, &metrics, store);
    first.send(add("main", 10001, "password")).await.unwrap().unwrap();
    first.send(add("second", 20001, "pw")).await.unwrap().unwrap();
    assert!(first.send(add("main", 10001, "password")).await.unwrap().is_err(), "ids are unique");
    wait_connected(&first, &["main", "second"]).await;

    // Without the bridge as the sink nothing deletes poll batches, so none are persisted.
    te.post_message(10001, "friend", 10002, "not kept", json!({})).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let polled = db.reopen().blocking_call(|c| c.polled("main")).unwrap();
    assert!(polled.is_empty(), "{} poll batches persisted with no bridge", polled.len());

    let text = metrics.encode();
    assert_eq!(
        metric_line(&text, r#"qqbridge_account_state{account="main",state="CONNECTED"}"#)
            .map(|l| l.ends_with(" 1")),
        Some(true),
        "{text}"
    );
    assert!(
        metric_line(
            &text,
            r#"qqbridge_logins_total{account="second",method="password",outcome="ok"} 1"#
        )
        .is_some()
    );

    // Removing one account leaves the other running and drops its series.
    assert!(first.send(RemoveAccount { id: "second".into() }).await.unwrap());
    assert!(!first.send(RemoveAccount { id: "second".into() }).await.unwrap());
    let states = first.send(GetStates).await.unwrap();
    assert_eq!(states.len(), 1);
    assert!(!metrics.encode().contains(r#"account="second""#));
    assert!(first.send(RemoveAccount { id: "main".into() }).await.unwrap());

    // A new manager over the same store restores "main" with no login request.
    let logins =
        te.control_get("state").await["counters"]["login"]["requests"].as_u64().unwrap_or(0);
    let metrics = Metrics::new();
    let second = manager(&te, &metrics, db.reopen());
    second.send(add("main", 10001, "password")).await.unwrap().unwrap();
    wait_connected(&second, &["main"]).await;
    let after =
        te.control_get("state").await["counters"]["login"]["requests"].as_u64().unwrap_or(0);
    assert_eq!(after, logins, "restored without a password login");
    assert!(
        metric_line(
            &metrics.encode(),
            r#"qqbridge_logins_total{account="main",method="restore",outcome="ok"} 1"#
        )
        .is_some()
    );
    let rows = db.reopen().account_states().unwrap();
    assert!(rows.iter().any(|r| r.account_id == "main" && r.state == "CONNECTED"), "{rows:?}");
    // While the first manager holds the account, a second process may not poll it (§7.1).
    let first_holds = manager(&te, &Metrics::new(), db.reopen());
    let rival = manager(&te, &Metrics::new(), db.reopen());
    first_holds.send(add("lease", 20001, "pw")).await.unwrap().unwrap();
    let refused = rival.send(add("lease", 20001, "pw")).await.unwrap().unwrap_err();
    assert!(refused.contains("another qqbridge process"), "{refused}");
    assert!(first_holds.send(RemoveAccount { id: "lease".into() }).await.unwrap());
    rival.send(add("lease", 20001, "pw")).await.unwrap().unwrap();
    assert!(rival.send(RemoveAccount { id: "lease".into() }).await.unwrap());

    // A lease left by a killed process of this machine is taken over at once, not after its
    // two minutes: the holder names host, boot and a pid that no longer runs.
    let read = |path: &str| std::fs::read_to_string(path).unwrap().trim().to_owned();
    let machine = format!(
        "{}@{}",
        read("/proc/sys/kernel/hostname"),
        read("/proc/sys/kernel/random/boot_id")
    );
    let dead = format!("{machine}/{}/0000dead", u32::MAX - 1);
    assert!(db.reopen().acquire_lease("lease", &dead, Duration::from_secs(120)).unwrap());
    rival.send(add("lease", 20001, "pw")).await.unwrap().unwrap();
    assert!(rival.send(RemoveAccount { id: "lease".into() }).await.unwrap());
}

fn metric_value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series).and_then(|rest| rest.trim().parse().ok()))
        .unwrap_or(0.0)
}

async fn wait_metric(metrics: &Metrics, series: &str, at_least: f64) {
    for _ in 0..100 {
        if metric_value(&metrics.encode(), series) >= at_least {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{series} never reached {at_least}:\n{}", metrics.encode());
}

#[actix::test]
async fn test_faults_drive_states_restarts_and_metrics() {
    let te = TestEmulator::start().await;
    let (store, _db) = test_store();
    let metrics = Metrics::new();
    let manager = manager(&te, &metrics, store);
    manager.send(add("main", 10001, "password")).await.unwrap().unwrap();
    wait_connected(&manager, &["main"]).await;

    // Three 5xx polls: a failure streak with backoff, then back to CONNECTED.
    te.fault(
        json!({"endpoint": "poll2", "account": 10001, "count": 3, "kind": {"http_status": 500}}),
    )
    .await;
    wait_metric(
        &metrics,
        r#"qqbridge_poll_requests_total{account="main",outcome="http_error"}"#,
        3.0,
    )
    .await;
    wait_connected(&manager, &["main"]).await;
    assert_eq!(
        metric_value(&metrics.encode(), r#"qqbridge_poll_consecutive_failures{account="main"}"#),
        0.0
    );

    // 108: the session is gone; the poller hands over to a relink and is started again.
    te.fault(json!({"endpoint": "poll2", "account": 10001, "count": 1, "kind": {"retcode": 108}}))
        .await;
    wait_metric(&metrics, r#"qqbridge_actor_restarts_total{account="main",child="poller"}"#, 1.0)
        .await;
    wait_metric(
        &metrics,
        r#"qqbridge_logins_total{account="main",method="relink",outcome="ok"}"#,
        1.0,
    )
    .await;
    wait_connected(&manager, &["main"]).await;

    // A kick: LOGGED_OUT, counted as a kicked disconnect, never logged in again.
    te.fault(json!({"endpoint": "poll2", "account": 10001, "count": 1, "kind": {"kick": true}}))
        .await;
    wait_metric(&metrics, r#"qqbridge_account_state{account="main",state="LOGGED_OUT"}"#, 1.0)
        .await;
    assert_eq!(
        metric_value(
            &metrics.encode(),
            r#"qqbridge_account_disconnects_total{account="main",reason="kicked"}"#
        ),
        1.0
    );
    let logins = metric_value(
        &metrics.encode(),
        r#"qqbridge_logins_total{account="main",method="password",outcome="ok"}"#,
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        metric_value(
            &metrics.encode(),
            r#"qqbridge_logins_total{account="main",method="password",outcome="ok"}"#
        ),
        logins
    );
}

/// A process that gives up after its accounts started stops them first: once `StopAccounts`
/// answers, nothing polls or sends any more, and the leases are free for the next process.
#[actix::test]
async fn test_stop_accounts_ends_polling_at_once_and_frees_the_leases() {
    let te = TestEmulator::start().await;
    let (store, _db) = test_store();
    let metrics = Metrics::new();
    let first = manager(&te, &metrics, store.clone());
    first.send(add("main", 10001, "password")).await.unwrap().unwrap();
    wait_connected(&first, &["main"]).await;
    first.send(StopAccounts).await.unwrap();
    let polls = || async {
        let state = te.control_get("state").await;
        state["counters"]["poll2"]["requests"].as_u64().unwrap_or(0)
    };
    let before = polls().await;
    // The emulator's hold is short in tests: a live poller would have polled again by now.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(polls().await, before, "no poll after StopAccounts");
    assert!(first.send(GetStates).await.unwrap().is_empty(), "no account left");
    let second = manager(&te, &metrics, store);
    second.send(add("main", 10001, "password")).await.unwrap().unwrap();
    wait_connected(&second, &["main"]).await;
}
