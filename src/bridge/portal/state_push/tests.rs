//! The hub on tokio's paused clock with a recording push sink: the JSON of login and global
//! pushes, and every state pushed again before its TTL runs out.

use std::time::Duration;

use serde_json::Value;

use super::*;

/// The pushes seen: (seconds since the start, body).
type Seen = Arc<Mutex<Vec<(u64, Value)>>>;

/// A hub whose pushes are recorded.
fn hub() -> (Arc<StateHub>, Seen) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    let start = tokio::time::Instant::now();
    let sink: PushSink = Arc::new(move |body| {
        record.lock().unwrap().push((start.elapsed().as_secs(), body));
        Box::pin(async { Ok(()) })
    });
    (Arc::new(StateHub::with_sink(StatusSettings::default(), Some(sink))), seen)
}

/// Lets the spawned pushes run.
async fn settle() {
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
}

/// The recorded pushes as "<second> <name>", the name being the login state or `global:<X>`.
fn names(seen: &Mutex<Vec<(u64, Value)>>) -> Vec<String> {
    seen.lock()
        .unwrap()
        .iter()
        .map(|(t, body)| match body["bridgeState"]["state_event"].as_str() {
            Some(global) => format!("{t} global:{global}"),
            None => format!("{t} {}", body["state_event"].as_str().unwrap_or("?")),
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn test_global_state_json_has_the_bridge_and_every_login() {
    let (hub, seen) = hub();
    hub.set_global(GlobalEvent::Starting).await;
    // Settled first: a newer global state cancels an older one not yet sent.
    settle().await;
    hub.observe(bridge_state("me", 10001, AccountState::Connected, None, 5)).await;
    hub.set_global(GlobalEvent::Running).await;
    settle().await;
    assert_eq!(names(&seen), ["0 global:STARTING", "0 CONNECTED", "0 global:RUNNING"]);
    let starting = seen.lock().unwrap()[0].1.clone();
    assert_eq!(starting["remoteState"], serde_json::json!({}), "{starting}");
    let running = seen.lock().unwrap()[2].1.clone();
    let own = &running["bridgeState"];
    assert_eq!(own["ttl"], 21600, "{running}");
    assert_eq!(own["source"], "bridge", "{running}");
    assert!(own["timestamp"].as_u64().unwrap() > 1_700_000_000, "{running}");
    let login = &running["remoteState"]["me"];
    assert_eq!(login["state_event"], "CONNECTED", "{running}");
    assert_eq!(
        (login["remote_id"].as_str(), login["remote_name"].as_str()),
        (Some("10001"), Some("me"))
    );
    assert_eq!(hub.global().unwrap().bridge_state.state_event, GlobalEvent::Running);
    assert_eq!(
        hub.state_of("me").unwrap().state_event,
        crate::bridge::state::StateEvent::Connected
    );
    assert_eq!(hub.state_of("other"), None);
}

#[tokio::test(start_paused = true)]
async fn test_every_state_is_pushed_again_before_its_ttl_runs_out() {
    let (hub, seen) = hub();
    hub.set_global(GlobalEvent::Running).await;
    let bad = bridge_state("me", 10001, AccountState::BadCredentials, Some("wrong password"), 0);
    hub.observe(bad).await;
    settle().await;
    assert_eq!(names(&seen), ["0 global:RUNNING", "0 BAD_CREDENTIALS"]);

    // An error state lives 3600 s: pushed again at 2880 s, not before.
    tokio::time::sleep(Duration::from_secs(2879)).await;
    settle().await;
    assert_eq!(seen.lock().unwrap().len(), 2, "{:?}", names(&seen));
    tokio::time::sleep(Duration::from_secs(2)).await;
    settle().await;
    assert_eq!(names(&seen).last().unwrap(), "2880 BAD_CREDENTIALS");

    // RUNNING lives 21600 s: pushed again at 17280 s, with the login's state.
    tokio::time::sleep_until(tokio::time::Instant::now() + Duration::from_secs(17281 - 2881)).await;
    settle().await;
    let got = names(&seen);
    let globals: Vec<&String> = got.iter().filter(|n| n.contains("global")).collect();
    assert_eq!(globals, ["0 global:RUNNING", "17280 global:RUNNING"], "{got:?}");
    let errors = got.iter().filter(|n| n.ends_with("BAD_CREDENTIALS")).count();
    assert_eq!(errors, 1 + 17280 / 2880, "{got:?}");
    let last = seen
        .lock()
        .unwrap()
        .iter()
        .rev()
        .find(|(_, b)| b["remoteState"].is_object())
        .unwrap()
        .1
        .clone();
    assert_eq!(last["remoteState"]["me"]["state_event"], "BAD_CREDENTIALS", "{last}");

    // A forgotten login: one LOGGED_OUT push, the bridge UNCONFIGURED without it, then no more
    // refreshes of it.
    hub.forget("me").await;
    settle().await;
    let got = names(&seen);
    let [.., logged_out, global] = got.as_slice() else { panic!("{got:?}") };
    assert!(logged_out.ends_with("LOGGED_OUT"), "{got:?}");
    assert!(global.ends_with("global:UNCONFIGURED"), "{got:?}");
    let count = seen.lock().unwrap().len();
    tokio::time::sleep(Duration::from_secs(3600)).await;
    settle().await;
    let after: Vec<String> = names(&seen).split_off(count);
    assert!(after.iter().all(|n| n.contains("global")), "{after:?}");
}
