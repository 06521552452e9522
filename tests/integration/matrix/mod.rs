//! The Matrix transport against the real Synapse of `synapse.rs`: our appservice server on a leased
//! slot's listener, our `MatrixClient` as the slot's bot and ghosts, and a human user who checks
//! through the plain Client-Server API what a Matrix client would see.

pub mod bot;
mod inbound;
mod outbound;

use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::FutureExt as _;
use futures_util::future::BoxFuture;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use qqbridge::matrix::Token;
use qqbridge::matrix::appservice::{
    self, AppserviceHandler, AppserviceStatus, Delivery, MemoryHandler, PersistError,
    ServerSettings, Transaction,
};
use qqbridge::matrix::client::{ClientSettings, MatrixClient};
use qqbridge::metrics::Metrics;
use ruma::api::client::room::create_room;
use ruma::api::client::room::create_room::v3::RoomPreset;
use ruma::{OwnedRoomId, OwnedUserId, RoomId, ServerName, TransactionId, UserId};
use serde_json::{Value, json};
use tokio::sync::oneshot;

use crate::synapse::{DOMAIN, SynapseSlot, call, lease, register_user};

/// How long a test waits for something Synapse does asynchronously (a delivery, a retry).
const WAIT: Duration = Duration::from_secs(30);

/// One delivery attempt as our handler saw it.
#[derive(Clone, Debug)]
pub struct Attempt {
    pub txn_id: String,
    pub at: Instant,
    /// `None`: the handler failed (the server answered 500).
    pub delivery: Option<Delivery>,
    pub events: Vec<Value>,
    pub ephemeral: Vec<Value>,
}

/// A [`MemoryHandler`] that also records every attempt, failed ones included, with its events
/// as JSON.
#[derive(Clone, Default)]
pub struct Recorder {
    pub memory: MemoryHandler,
    attempts: Arc<Mutex<Vec<Attempt>>>,
}

fn to_json<T>(raw: &ruma::serde::Raw<T>) -> Value {
    serde_json::from_str(raw.json().get()).unwrap()
}

impl Recorder {
    pub fn attempts(&self) -> Vec<Attempt> {
        self.attempts.lock().unwrap().clone()
    }

    /// `(txn_id, event)` of every event in a transaction answered 200.
    pub fn events(&self) -> Vec<(String, Value)> {
        let mut out = Vec::new();
        for attempt in self.attempts() {
            if attempt.delivery.is_some() {
                out.extend(attempt.events.iter().map(|e| (attempt.txn_id.clone(), e.clone())));
            }
        }
        out
    }

    /// The delivered event `event_id` with its txn id.
    pub fn event(&self, event_id: &str) -> Option<(String, Value)> {
        self.events().into_iter().find(|(_, e)| e["event_id"] == event_id)
    }
}

impl AppserviceHandler for Recorder {
    fn transaction(&self, txn: Transaction) -> BoxFuture<'static, Result<Delivery, PersistError>> {
        let txn_id = txn.txn_id.clone();
        let events = txn.events.iter().map(to_json).collect();
        let ephemeral = txn.ephemeral.iter().map(to_json).collect();
        let answer = self.memory.transaction(txn);
        let attempts = Arc::clone(&self.attempts);
        async move {
            let result = answer.await;
            let delivery = result.as_ref().ok().copied();
            let attempt = Attempt { txn_id, at: Instant::now(), delivery, events, ephemeral };
            attempts.lock().unwrap().push(attempt);
            result
        }
        .boxed()
    }

    fn query_user(&self, user_id: OwnedUserId) -> BoxFuture<'static, bool> {
        self.memory.query_user(user_id)
    }
}

/// Polls `probe` every 50 ms until it gives `Some`, failing the test after `timeout`.
pub async fn eventually<T>(
    what: &str,
    timeout: Duration,
    mut probe: impl AsyncFnMut() -> Option<T>,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(found) = probe().await {
            return found;
        }
        assert!(Instant::now() < deadline, "gave up after {timeout:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The slot's listener: the one kept while the slot was free, else the address bound again
/// (a previous tenant's server may take a moment to let go of it).
pub async fn take_listener(slot: &mut SynapseSlot) -> TcpListener {
    if let Some(listener) = slot.listener.take() {
        return listener;
    }
    let addr = slot.listen_addr;
    eventually("the slot's port to be free", Duration::from_secs(15), async || {
        TcpListener::bind(addr).ok()
    })
    .await
}

/// A `MatrixClient` acting with the slot's `as_token`.
pub fn client_for(slot: &SynapseSlot, metrics: Metrics) -> MatrixClient {
    let settings = ClientSettings::new(
        url::Url::parse(&slot.config.homeserver.address).unwrap(),
        ServerName::parse(DOMAIN).unwrap(),
        Token::new(slot.as_token()),
        UserId::parse(slot.config.bot_user_id()).unwrap(),
        slot.registration.id.clone(),
    );
    MatrixClient::new(settings, metrics).unwrap()
}

/// The bridge's Matrix half on one slot: our server on its listener, our client with its token.
pub struct Bridge {
    pub slot: SynapseSlot,
    pub handler: Recorder,
    pub status: AppserviceStatus,
    pub metrics: Metrics,
    pub client: MatrixClient,
    started: Instant,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl Bridge {
    /// Leases a slot and serves on it, without any call to Synapse yet.
    pub async fn serve() -> Bridge {
        Bridge::serve_on(lease()).await
    }

    /// Serves on `slot`'s listener.
    pub async fn serve_on(mut slot: SynapseSlot) -> Bridge {
        let listener = take_listener(&mut slot).await;
        listener.set_nonblocking(true).unwrap();
        let handler = Recorder::default();
        let status = AppserviceStatus::new();
        let metrics = Metrics::try_new().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let settings = ServerSettings::new(Token::new(slot.registration.hs_token.expose().clone()));
        let task = tokio::spawn(appservice::serve(
            listener,
            settings,
            Arc::new(handler.clone()),
            status.clone(),
            metrics.clone(),
            async {
                let _ = stopped.await;
            },
        ));
        let client = client_for(&slot, metrics.clone());
        Bridge {
            slot,
            handler,
            status,
            metrics,
            client,
            started: Instant::now(),
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// [`Bridge::serve`], then a ping: it proves Synapse reaches us and makes it retry at once
    /// whatever a previous tenant of the slot left undelivered (a successful ping force-retries
    /// Synapse's recoverer, see `test_ping_makes_synapse_retry_at_once`).
    pub async fn start() -> Bridge {
        let bridge = Bridge::serve().await;
        // Calls without a ghost assert the bot, which must exist (start-up registers it too).
        bridge
            .client
            .ensure_registered(&bridge.slot.config.appservice.bot_localpart)
            .await
            .unwrap();
        bridge.client.appservice_ping(&TransactionId::new()).await.unwrap();
        bridge
    }

    pub fn bot(&self) -> OwnedUserId {
        UserId::parse(self.slot.config.bot_user_id()).unwrap()
    }

    /// The ghost of QQ number `qq`, registered.
    pub async fn ghost(&self, qq: u64) -> OwnedUserId {
        let localpart = self.slot.ghost_localpart(qq);
        self.client.ensure_registered(&localpart).await.unwrap();
        UserId::parse(format!("@{localpart}:{DOMAIN}")).unwrap()
    }

    /// A private DM portal made by the bot, named and with a topic, `human` invited as a direct
    /// chat, `ghost` invited and joined, and `human` joined.
    pub async fn portal(&self, human: &Human, ghost: &UserId) -> OwnedRoomId {
        let mut request = create_room::v3::Request::new();
        request.name = Some("QQ: Alice".to_owned());
        request.topic = Some("bridged from QQ 10001".to_owned());
        request.preset = Some(RoomPreset::PrivateChat);
        request.is_direct = true;
        request.invite = vec![UserId::parse(&human.user_id).unwrap()];
        let room = self.client.create_room(request, None).await.unwrap();
        self.client.invite(&room, ghost, None).await.unwrap();
        self.client.join(&room, Some(ghost)).await.unwrap();
        human.join(&room).await;
        room
    }

    /// Waits until our server has answered 200 to a transaction holding `event_id`.
    pub async fn delivered(&self, event_id: &str) -> (String, Value) {
        let what = format!("the delivery of {event_id}");
        eventually(&what, WAIT, async || self.handler.event(event_id)).await
    }

    /// Stops the server and waits for it to let go of the port.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let task = self.task.take().unwrap();
        let stopping = Instant::now();
        let stopped = tokio::time::timeout(Duration::from_secs(15), task).await;
        stopped.expect("the appservice server stops within 15 s").unwrap().unwrap();
        let test = std::thread::current().name().unwrap_or("?").to_owned();
        let (took, stop) = (self.started.elapsed(), stopping.elapsed());
        eprintln!("matrix: {test} on slot {} took {took:?} (stop {stop:?})", self.slot.index);
    }

    /// The sum of our `qqbridge_matrix_requests_total` series whose labels contain `labels`
    /// (e.g. `endpoint="download"`).
    pub fn requests(&self, labels: &str) -> f64 {
        self.counter("qqbridge_matrix_requests_total", labels)
    }

    /// The sum of the series of counter `name` whose labels contain `labels`.
    pub fn counter(&self, name: &str, labels: &str) -> f64 {
        let series = format!("{name}{{");
        self.metrics
            .encode()
            .lines()
            .filter(|l| l.starts_with(&series) && l.contains(labels))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A path segment, percent-encoded (room ids, event ids, user ids).
pub fn enc(segment: &str) -> String {
    utf8_percent_encode(segment, NON_ALPHANUMERIC).to_string()
}

/// A human Matrix user with a real login, looking at rooms the way a client does.
pub struct Human {
    pub user_id: String,
    pub token: String,
}

impl Human {
    /// Registers and logs in `@<localpart>:localhost`.
    pub async fn new(localpart: &str) -> Human {
        let (user_id, token) = register_user(localpart).await;
        Human { user_id, token }
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        call("GET", path, Some(&self.token), None).await
    }

    pub async fn join(&self, room: &RoomId) {
        let path = format!("/_matrix/client/v3/rooms/{}/join", enc(room.as_str()));
        let (status, body) = call("POST", &path, Some(&self.token), Some(json!({}))).await;
        assert_eq!(status, 200, "{} joining {room}: {body}", self.user_id);
    }

    /// Sends a text and returns its event id.
    pub async fn send_text(&self, room: &RoomId, body: &str) -> String {
        let txn = TransactionId::new();
        let path = format!(
            "/_matrix/client/v3/rooms/{}/send/m.room.message/{}",
            enc(room.as_str()),
            enc(txn.as_str())
        );
        let content = json!({"msgtype": "m.text", "body": body});
        let (status, answer) = call("PUT", &path, Some(&self.token), Some(content)).await;
        assert_eq!(status, 200, "{answer}");
        answer["event_id"].as_str().unwrap().to_owned()
    }

    /// The room's last 100 timeline events, newest first (`/messages?dir=b`).
    pub async fn messages(&self, room: &RoomId) -> Vec<Value> {
        let path =
            format!("/_matrix/client/v3/rooms/{}/messages?dir=b&limit=100", enc(room.as_str()));
        let (status, body) = self.get(&path).await;
        assert_eq!(status, 200, "{body}");
        body["chunk"].as_array().unwrap().clone()
    }

    /// One event as the human reads it.
    pub async fn event(&self, room: &RoomId, event_id: &str) -> Value {
        let path =
            format!("/_matrix/client/v3/rooms/{}/event/{}", enc(room.as_str()), enc(event_id));
        let (status, body) = self.get(&path).await;
        assert_eq!(status, 200, "{body}");
        body
    }

    /// The content of a state event (`GET /rooms/{room}/state/{type}/{key}`).
    pub async fn state(&self, room: &RoomId, event_type: &str, state_key: &str) -> Value {
        let path = format!(
            "/_matrix/client/v3/rooms/{}/state/{}/{}",
            enc(room.as_str()),
            enc(event_type),
            enc(state_key)
        );
        let (status, body) = self.get(&path).await;
        assert_eq!(status, 200, "{event_type}/{state_key}: {body}");
        body
    }
}

/// A unique-enough suffix for human localparts (one Synapse per test process).
pub fn unique(name: &str) -> String {
    format!("{name}_{}", rand::random::<u32>())
}
