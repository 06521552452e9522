//! What the bridge's integration tests share: the account owner's view of Synapse ([`Owner`])
//! and starting the Matrix side with account 10001 against the emulator.

use std::time::Duration;

use qqbridge::account::account_actor::Credentials;
use qqbridge::account::manager::{AccountManager, AddAccount, GetStates, ManagerSettings};
use qqbridge::account::poller::Backoff;
use qqbridge::account::send_queue::SendPolicy;
use qqbridge::account::state::AccountState;
use qqbridge::bridge::startup;
use qqbridge::config::AccountConfig;
use qqbridge::metrics::Metrics;
use qqbridge::webqq::{QqNumber, Secret};
use serde_json::{Value, json};

use crate::harness::TestEmulator;
use crate::synapse::{call, register_user};

/// The bridged account of every bridge test.
pub const ME: u64 = 10001;

/// The owner's view: every room they are invited to or joined, with its timeline texts.
pub struct Owner {
    pub user_id: String,
    pub token: String,
    /// The last sync's `next_batch`: Synapse caches identical sync requests, so each call
    /// continues from the previous one.
    pub since: std::sync::Mutex<Option<String>>,
}

impl Owner {
    /// Joins every room the owner is invited to; answers the joined rooms.
    pub async fn join_invites(&self) -> Vec<String> {
        let since = self.since.lock().unwrap().clone();
        // A fresh timeout each call: Synapse answers an identical sync request from a cache for
        // a while, which would hide a new invite.
        let timeout = 10 + rand::random::<u16>() % 1000;
        let path = match since {
            Some(since) => {
                format!("/_matrix/client/v3/sync?timeout={timeout}&since={}", urlencode(&since))
            }
            None => format!("/_matrix/client/v3/sync?timeout={timeout}"),
        };
        let (status, sync) = call("GET", &path, Some(&self.token), None).await;
        assert_eq!(status, 200, "{sync}");
        *self.since.lock().unwrap() = sync["next_batch"].as_str().map(str::to_owned);
        if let Some(invites) = sync["rooms"]["invite"].as_object() {
            for room in invites.keys() {
                let path = format!("/_matrix/client/v3/rooms/{}/join", urlencode(room));
                let (status, body) = call("POST", &path, Some(&self.token), Some(json!({}))).await;
                assert_eq!(status, 200, "join {room}: {body}");
            }
        }
        let (_, joined) =
            call("GET", "/_matrix/client/v3/joined_rooms", Some(&self.token), None).await;
        joined["joined_rooms"]
            .as_array()
            .map(|rooms| rooms.iter().filter_map(|r| r.as_str().map(str::to_owned)).collect())
            .unwrap_or_default()
    }

    /// The `m.room.message` events of `room`, oldest first.
    pub async fn messages(&self, room: &str) -> Vec<Value> {
        let path = format!("/_matrix/client/v3/rooms/{}/messages?dir=b&limit=50", urlencode(room));
        let (status, body) = call("GET", &path, Some(&self.token), None).await;
        assert_eq!(status, 200, "{body}");
        let mut events: Vec<Value> = body["chunk"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|e| e["type"] == "m.room.message")
            .collect();
        events.reverse();
        events
    }

    /// Waits until some room has a message with `body`; answers (room, event).
    pub async fn wait_for(&self, body: &str) -> (String, Value) {
        self.wait_for_match(body, |b| b == body).await
    }

    /// Waits until some room has a message whose body passes `accept` (`what` names it in the
    /// failure); answers (room, event).
    pub async fn wait_for_match(
        &self,
        what: &str,
        accept: impl Fn(&str) -> bool,
    ) -> (String, Value) {
        let body = what;
        for _ in 0..150 {
            for room in self.join_invites().await {
                if let Some(event) = self
                    .messages(&room)
                    .await
                    .into_iter()
                    .find(|e| e["content"]["body"].as_str().is_some_and(&accept))
                {
                    return (room, event);
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let mut seen = Vec::new();
        for room in self.join_invites().await {
            seen.extend(self.messages(&room).await.into_iter().map(|e| e["content"].clone()));
        }
        panic!("no room of {} got {body:?}; seen: {seen:?}", self.user_id);
    }

    /// The content of state event `event_type`/`state_key` of `room`, `None` if absent.
    pub async fn state(&self, room: &str, event_type: &str, state_key: &str) -> Option<Value> {
        let path = format!(
            "/_matrix/client/v3/rooms/{}/state/{event_type}/{}",
            urlencode(room),
            urlencode(state_key)
        );
        let (status, content) = call("GET", &path, Some(&self.token), None).await;
        (status == 200).then_some(content)
    }

    /// The users joined to `room`.
    pub async fn joined_members(&self, room: &str) -> Vec<String> {
        let path = format!("/_matrix/client/v3/rooms/{}/joined_members", urlencode(room));
        let (status, body) = call("GET", &path, Some(&self.token), None).await;
        assert_eq!(status, 200, "{body}");
        body["joined"].as_object().map(|j| j.keys().cloned().collect()).unwrap_or_default()
    }

    /// Uploads a 1×1 PNG as the owner; answers its mxc URI.
    pub async fn upload_png(&self) -> String {
        upload_png(&self.token).await
    }

    /// Sends any message content as the owner; answers the event id.
    pub async fn send_content(&self, room: &str, content: Value) -> String {
        let path = format!(
            "/_matrix/client/v3/rooms/{}/send/m.room.message/t{}",
            urlencode(room),
            rand::random::<u64>()
        );
        let (status, answer) = call("PUT", &path, Some(&self.token), Some(content)).await;
        assert_eq!(status, 200, "{answer}");
        answer["event_id"].as_str().unwrap().to_owned()
    }

    /// Sends a text as the owner; answers the event id.
    pub async fn send(&self, room: &str, body: &str) -> String {
        let path = format!(
            "/_matrix/client/v3/rooms/{}/send/m.room.message/t{}",
            urlencode(room),
            rand::random::<u64>()
        );
        let content = json!({"msgtype": "m.text", "body": body});
        let (status, answer) = call("PUT", &path, Some(&self.token), Some(content)).await;
        assert_eq!(status, 200, "{answer}");
        answer["event_id"].as_str().unwrap().to_owned()
    }
}

pub fn urlencode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// Account "me" (QQ 10001, password login) owned by `owner`.
pub fn account_owned_by(owner: &str) -> AccountConfig {
    AccountConfig {
        id: "me".into(),
        qq: ME,
        login: qqbridge::config::LoginMode::Password,
        password: Some(Secret::new("password".into())),
        password_env: None,
        enabled: true,
        owner: Some(owner.to_owned()),
    }
}

/// Test logging at `QQBRIDGE_TEST_LOG` (default `warn`), set once per process.
pub fn test_log() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(std::env::var("QQBRIDGE_TEST_LOG").unwrap_or_else(|_| "warn".into()))
        .with_test_writer()
        .try_init();
}

/// What most bridge tests start from: logging, an emulator, a Synapse slot and a fresh owner
/// with the slot's config (account 10001 owned by them).
pub async fn setup() -> (TestEmulator, crate::synapse::SynapseSlot, Owner, qqbridge::config::Config)
{
    test_log();
    let te = TestEmulator::start().await;
    let slot = crate::synapse::lease();
    let (owner, config) = owner_and_config(&slot).await;
    (te, slot, owner, config)
}

/// A fresh owner for `slot` and the slot's config with account 10001 owned by them.
pub async fn owner_and_config(
    slot: &crate::synapse::SynapseSlot,
) -> (Owner, qqbridge::config::Config) {
    let (owner_id, token) =
        register_user(&format!("owner{}x{}", slot.index, rand::random::<u16>())).await;
    let mut config = slot.config.clone();
    config.accounts = vec![account_owned_by(&owner_id)];
    (Owner { user_id: owner_id, token, since: Default::default() }, config)
}

/// The account manager's settings for the tests: `te`'s QQ, quick retries.
pub fn manager_settings(te: &TestEmulator) -> ManagerSettings {
    ManagerSettings {
        client: te.client_config(),
        backoff: Backoff { initial: Duration::from_millis(100), max: Duration::from_secs(1) },
        send: SendPolicy { min_interval: Duration::from_millis(50), ..SendPolicy::default() },
        max_relogins: 3,
        arbiters: 1,
        login_concurrency: 4,
        per_account: true,
        gap_notice: 120,
    }
}

/// Starts the Matrix side on `listener` and account 10001; returns once it is CONNECTED.
pub async fn start_bridge(
    te: &TestEmulator,
    config: &qqbridge::config::Config,
    store: qqbridge::store::Store,
    listener: std::net::TcpListener,
) -> startup::MatrixSide {
    let manager = manager_settings(te);
    let side = startup::start(config, store, Metrics::new(), manager, listener).await.unwrap();
    assert!(side.status.is_ready(), "the start-up ping went through Synapse");
    add_me(&side.accounts).await;
    side
}

/// Adds account 10001 (password login) to `accounts`; returns once it is CONNECTED.
pub async fn add_me(accounts: &actix::Addr<AccountManager>) {
    let add = AddAccount {
        id: "me".into(),
        qq: QqNumber::new(ME),
        credentials: Credentials::Password(Secret::new("password".into())),
    };
    accounts.send(add).await.unwrap().unwrap();
    // The emulator delivers to logged-in sessions only.
    for _ in 0..100 {
        let states = accounts.send(GetStates).await.unwrap();
        if states.iter().any(|(_, state, _)| *state == AccountState::Connected) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("account 10001 never connected");
}

/// `user` opens a DM with the bot (trusted private chat: the bot gets the power to redact).
pub async fn dm_with_bot(user: &Owner, bot: &str) -> String {
    let body = json!({"is_direct": true, "invite": [bot], "preset": "trusted_private_chat"});
    let (status, answer) =
        call("POST", "/_matrix/client/v3/createRoom", Some(&user.token), Some(body)).await;
    assert_eq!(status, 200, "{answer}");
    answer["room_id"].as_str().unwrap().to_owned()
}

/// Every event of `room` (newest 100), oldest first.
pub async fn events(user: &Owner, room: &str) -> Vec<Value> {
    let path = format!("/_matrix/client/v3/rooms/{}/messages?dir=b&limit=100", urlencode(room));
    let (status, body) = call("GET", &path, Some(&user.token), None).await;
    assert_eq!(status, 200, "{body}");
    let mut events = body["chunk"].as_array().cloned().unwrap_or_default();
    events.reverse();
    events
}

/// Waits until `room` has a message whose body contains `text`; answers it.
pub async fn wait_text(user: &Owner, room: &str, text: &str) -> Value {
    for _ in 0..200 {
        if let Some(event) = events(user, room)
            .await
            .into_iter()
            .find(|e| e["content"]["body"].as_str().is_some_and(|b| b.contains(text)))
        {
            return event;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let bodies: Vec<Value> =
        events(user, room).await.iter().map(|e| e["content"]["body"].clone()).collect();
    panic!("{room} never got {text:?}; it has {bodies:?}");
}

/// The account space among `user`'s rooms (joining their invites first), if any.
pub async fn space_of(user: &Owner) -> Option<String> {
    for room in user.join_invites().await {
        let path = format!("/_matrix/client/v3/rooms/{}/state/m.room.create/", urlencode(&room));
        let (_, create) = call("GET", &path, Some(&user.token), None).await;
        if create["type"] == "m.space" {
            return Some(room);
        }
    }
    None
}

/// Waits until the manager reports `account` in `state`.
pub async fn wait_state(
    accounts: &actix::Addr<AccountManager>,
    account: &str,
    state: AccountState,
) {
    for _ in 0..300 {
        let states = accounts.send(GetStates).await.unwrap();
        if states.iter().any(|(id, s, _)| id == account && *s == state) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let states = accounts.send(GetStates).await.unwrap();
    panic!("{account} never reached {state:?}: {states:?}");
}

/// Uploads a 1×1 PNG as `token`'s user; answers its mxc URI.
pub async fn upload_png(token: &str) -> String {
    const PNG: &str = "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d49444154789c6360000000000500010d0a2db40000000049454e44ae426082";
    let url =
        format!("{}/_matrix/media/v3/upload?filename=pic.png", crate::synapse::synapse().base_url);
    let answer: Value = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
        .post(url)
        .bearer_auth(token)
        .header("content-type", "image/png")
        .body(hex::decode(PNG).unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    answer["content_uri"].as_str().unwrap().to_owned()
}
