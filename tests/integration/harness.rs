//! Test harness: an in-process emulator on 127.0.0.1:0 and clients pointed at it by name only.

use std::net::SocketAddr;
use std::time::Duration;

use qqbridge::emulator::{self, Emulator, EmulatorOptions, Listeners, World};
use qqbridge::store::{ScratchDatabase, Store};
use qqbridge::webqq::client::{ClientConfig, WebQqClient};
use serde_json::{Value, json};

/// A running emulator and how to reach it.
pub struct TestEmulator {
    /// The in-process handle (control methods).
    pub emulator: Emulator,
    /// The TLS listener (also accepts plain HTTP), where every QQ host name is resolved to.
    pub addr: SocketAddr,
    /// The plain listener.
    pub plain: SocketAddr,
    http: reqwest::Client,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

impl TestEmulator {
    /// Starts the demo world with a short poll hold.
    pub async fn start() -> TestEmulator {
        Self::start_with(World::demo(), |_| {}).await
    }

    /// Starts `world` with options adjusted by `tweak`.
    pub async fn start_with(
        world: World,
        tweak: impl FnOnce(&mut EmulatorOptions),
    ) -> TestEmulator {
        let mut options =
            EmulatorOptions { poll_hold: Duration::from_millis(800), ..EmulatorOptions::default() };
        tweak(&mut options);
        let emulator = Emulator::new(world, options).unwrap();
        let plain = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let tls = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (plain_addr, addr) = (plain.local_addr().unwrap(), tls.local_addr().unwrap());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let handle = emulator.clone();
        tokio::spawn(async move {
            emulator::serve(Listeners { plain, tls: Some(tls) }, handle, async {
                rx.await.ok();
            })
            .await
            .unwrap();
        });
        let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
        TestEmulator { emulator, addr, plain: plain_addr, http, _shutdown: tx }
    }

    /// A new client that reaches the emulator by name resolution only.
    pub fn client(&self) -> WebQqClient {
        WebQqClient::new(self.client_config()).unwrap()
    }

    /// The client configuration: every QQ host → the emulator, trusting its CA.
    pub fn client_config(&self) -> ClientConfig {
        ClientConfig::redirect_all(self.addr, Some(self.emulator.ca_cert_pem()))
    }

    /// POSTs JSON to the control API and returns the JSON answer (panics on non-2xx).
    pub async fn control(&self, path: &str, body: Value) -> Value {
        let url = format!("http://{}/_emulator/{path}", self.plain);
        let response = self.http.post(url).json(&body).send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        assert!(status.is_success(), "control {path} answered {status}: {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    /// GETs a control API path.
    pub async fn control_get(&self, path_and_query: &str) -> Value {
        let url = format!("http://{}/_emulator/{path_and_query}", self.plain);
        let response = self.http.get(url).send().await.unwrap();
        assert!(response.status().is_success());
        response.json().await.unwrap()
    }

    /// Installs a fault.
    pub async fn fault(&self, spec: Value) {
        self.control("faults", spec).await;
    }

    /// A QQ-side person sends a message to `account`.
    pub async fn post_message(
        &self,
        account: u64,
        kind: &str,
        from: u64,
        text: &str,
        extra: Value,
    ) -> Value {
        let mut body = json!({"account": account, "kind": kind, "from": from, "text": text});
        if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
            body.extend(extra.clone());
        }
        self.control("messages", body).await
    }

    /// What `account` sent, as the emulator recorded it.
    pub async fn sent(&self, account: u64) -> Vec<Value> {
        self.control_get(&format!("sent?account={account}"))
            .await
            .as_array()
            .cloned()
            .unwrap_or_default()
    }
}

/// Where [`test_store`] put the database; keeps it alive (drops the PostgreSQL scratch database,
/// or deletes the SQLite temp dir, when dropped).
pub enum StoreGuard {
    /// A SQLite file in a temp dir.
    Sqlite { _dir: tempfile::TempDir, path: std::path::PathBuf },
    /// A scratch database on the server of `QQBRIDGE_TEST_POSTGRES_URL`.
    Postgres(ScratchDatabase),
}

impl StoreGuard {
    /// Another connection to the same database (a restarted bridge, or a second process).
    pub fn reopen(&self) -> Store {
        match self {
            StoreGuard::Sqlite { path, .. } => Store::open_sqlite(path).unwrap(),
            StoreGuard::Postgres(db) => Store::open_postgres(db.url()).unwrap(),
        }
    }
}

/// A fresh store: a scratch PostgreSQL database when `QQBRIDGE_TEST_POSTGRES_URL` is set
/// (`scripts/postgres.sh start` prints one), else SQLite in a temp dir. Safe to call from async
/// tests (no PostgreSQL call runs on the calling thread).
pub fn test_store() -> (Store, StoreGuard) {
    let guard = match ScratchDatabase::from_env() {
        Some(db) => StoreGuard::Postgres(db.unwrap()),
        None => {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("store").join("qqbridge.sqlite3");
            StoreGuard::Sqlite { _dir: dir, path }
        }
    };
    (guard.reopen(), guard)
}
