//! Test harness: ONE real Synapse per test process (scripts/synapse.sh), started lazily, with a
//! pool of pre-registered appservices that tests lease, plus tests that prove it works.
//!
//! Synapse reads its appservice registrations only at start, and a registration's `url` must be
//! known then, so the harness writes `POOL_SIZE` registrations up front, each with its own id,
//! bot (`@qqbot<i>`), ghost namespace (`@qqt<i>_{qq}`) and a loopback port reserved for the
//! appservice listener. A test leases a [`SynapseSlot`] and gives it back on drop.
//!
//! Clean-up: a watchdog shell (a child of this process) blocks reading a pipe whose write end only
//! this process holds; when the process exits in any way, the read returns and the watchdog runs
//! `synapse.sh stop` and removes the temporary directory. No orphan Synapse survives a run.
//!
//! Nothing is skipped: when Synapse cannot be installed or started, every test using it fails
//! with the reason.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::Duration;

use qqbridge::config::Config;
use qqbridge::matrix::registration::Registration;
use serde_json::{Value, json};

/// Appservice registrations Synapse is started with.
pub const POOL_SIZE: usize = 8;

/// The homeserver's `server_name`.
pub const DOMAIN: &str = "localhost";

/// Password of every user made by [`register_user`].
pub const PASSWORD: &str = "test-password-1";

/// The running Synapse of this test process.
pub struct Synapse {
    /// Its directory (config, database, logs); removed when the process ends.
    pub dir: PathBuf,
    /// Base URL of its Client-Server API.
    pub base_url: String,
    /// The `as_token` of the double-puppet registration (`url: null`, a random sender, every
    /// local user, non-exclusive: MATRIX.md §6.4), for `double_puppet.secrets`.
    pub double_puppet_token: String,
    slots: Vec<(Config, Registration, SocketAddr)>,
    free: Mutex<Vec<(usize, Option<TcpListener>)>>,
    returned: Condvar,
    // Held only so the pipe stays open while the process lives (see the module doc).
    _watchdog: Mutex<(Child, ChildStdin)>,
}

/// One leased appservice: its config (homeserver, appservice and bridge sections filled,
/// `bridge.enabled`), its registration (tokens included) and its listener's address.
pub struct SynapseSlot {
    /// Pool index, also in the names: id `qqbridge-t<i>`, bot `qqbot<i>`, ghosts `qqt<i>_{qq}`.
    pub index: usize,
    /// A validated config for this appservice.
    pub config: Config,
    /// The registration Synapse loaded for it.
    pub registration: Registration,
    /// Where the homeserver expects the appservice (`registration.url`).
    pub listen_addr: SocketAddr,
    /// The port kept bound while the slot was free; take it to serve on it, or drop it and bind
    /// `listen_addr` yourself.
    pub listener: Option<TcpListener>,
}

impl SynapseSlot {
    /// The `as_token`.
    pub fn as_token(&self) -> &str {
        self.registration.as_token.expose()
    }

    /// The ghost localpart of QQ number `qq` in this slot's namespace.
    pub fn ghost_localpart(&self, qq: u64) -> String {
        self.config.bridge.ghost_localpart(qq)
    }
}

impl Drop for SynapseSlot {
    fn drop(&mut self) {
        if let Some(Ok(synapse)) = SYNAPSE.get() {
            let mut free = synapse.free.lock().unwrap_or_else(|e| e.into_inner());
            free.push((self.index, self.listener.take()));
            synapse.returned.notify_one();
        }
    }
}

static SYNAPSE: OnceLock<Result<Synapse, String>> = OnceLock::new();

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/synapse.sh")
}

fn free_port() -> TcpListener {
    TcpListener::bind("127.0.0.1:0").unwrap()
}

/// Runs `synapse.sh ARGS`, turning a failure into its stderr.
fn run_script(args: &[&str]) -> Result<(), String> {
    let output = Command::new(script())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", script().display()))?;
    if output.status.success() {
        return Ok(());
    }
    Err(format!(
        "`scripts/synapse.sh {}` failed ({}):\n{}{}",
        args.join(" "),
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    ))
}

/// The process's Synapse, installed and started on first use. Panics with the reason when it
/// cannot be (every later caller gets the same message at once).
pub fn synapse() -> &'static Synapse {
    match SYNAPSE.get_or_init(start) {
        Ok(synapse) => synapse,
        Err(reason) => panic!("the test Synapse is unavailable: {reason}"),
    }
}

fn start() -> Result<Synapse, String> {
    let dir = tempfile::Builder::new()
        .prefix("qqbridge-synapse-")
        .tempdir()
        .map_err(|e| format!("no temporary directory: {e}"))?
        .keep();
    // The watchdog comes first, so even a failed start below is cleaned up.
    let mut watchdog = Command::new("sh")
        .args(["-c", "trap '' INT HUP; cat >/dev/null; \"$0\" stop \"$1\"; rm -rf \"$1\""])
        .arg(script())
        .arg(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot spawn the watchdog: {e}"))?;
    let pipe = watchdog.stdin.take().ok_or("watchdog has no stdin")?;

    let mut slots = Vec::new();
    let mut free = Vec::new();
    let mut registrations = Vec::new();
    for index in 0..POOL_SIZE {
        let listener = free_port();
        let listen_addr = listener.local_addr().unwrap();
        let mut config = Config::default();
        config.homeserver.domain = DOMAIN.to_owned();
        config.appservice.id = format!("qqbridge-t{index}");
        config.appservice.listen = listen_addr;
        config.appservice.address = format!("http://{listen_addr}");
        config.appservice.bot_localpart = format!("qqbot{index}");
        config.appservice.sender_localpart = format!("qqas{index}");
        // Most tests need no encryption device: the ones that do turn it on with a data_dir
        // of their own.
        config.encryption.bot_device = false;
        config.encryption.data_dir = dir.join(format!("bot-device-{index}"));
        config.appservice.registration = dir.join(format!("registration-{index}.yaml"));
        config.bridge.username_template = format!("qqt{index}_{{qq}}");
        config.bridge.enabled = true;
        config.store.path = dir.join(format!("bridge-{index}.sqlite3"));
        config.validate().map_err(|e| format!("slot {index} config: {e}"))?;
        let registration = Registration::generate(&config);
        registration
            .write(&config.appservice.registration)
            .map_err(|e| format!("slot {index}: {e}"))?;
        registrations.push(config.appservice.registration.to_string_lossy().into_owned());
        slots.push((config, registration, listen_addr));
        free.push((index, Some(listener)));
    }

    // The double-puppet registration: no URL (Synapse never sends it transactions), a random
    // bot, and a non-exclusive interest in every local user, so its token may act as them.
    let double_puppet_token = format!("dp{:032x}", rand::random::<u128>());
    let double_puppet = dir.join("registration-double-puppet.yaml");
    let yaml = format!(
        "id: doublepuppet\nurl: null\nas_token: {double_puppet_token}\nhs_token: {:032x}\n\
         sender_localpart: dp{:016x}\nrate_limited: false\nnamespaces:\n  users:\n  \
         - regex: '@.*:{}'\n    exclusive: false\n",
        rand::random::<u128>(),
        rand::random::<u64>(),
        DOMAIN.replace('.', "\\."),
    );
    std::fs::write(&double_puppet, yaml).map_err(|e| format!("double-puppet registration: {e}"))?;
    registrations.push(double_puppet.to_string_lossy().into_owned());

    run_script(&["install"])?;
    let started = std::time::Instant::now();
    // The port is free when chosen but not held: another test may bind it before Synapse does,
    // so a start that finds it taken is tried again on another port.
    let mut attempt = 0;
    let base_url = loop {
        attempt += 1;
        let port = free_port().local_addr().unwrap().port();
        let mut args =
            vec!["start".to_owned(), dir.to_string_lossy().into_owned(), port.to_string()];
        args.extend(registrations.iter().cloned());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        match run_script(&args) {
            Ok(()) => break format!("http://127.0.0.1:{port}"),
            Err(reason) if attempt < 3 && reason.contains("already in use") => {
                eprintln!("synapse harness: port {port} was taken; trying another");
            }
            Err(reason) => return Err(reason),
        }
    };
    for (config, _, _) in &mut slots {
        config.homeserver.address = base_url.clone();
    }
    eprintln!("synapse harness: Synapse up at {base_url} in {:?}", started.elapsed());
    Ok(Synapse {
        dir,
        base_url,
        double_puppet_token,
        slots,
        free: Mutex::new(free),
        returned: Condvar::new(),
        _watchdog: Mutex::new((watchdog, pipe)),
    })
}

/// Leases a free appservice slot, waiting (up to 5 minutes) while all are in use.
pub fn lease() -> SynapseSlot {
    let synapse = synapse();
    let mut free = synapse.free.lock().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(300);
    loop {
        if let Some((index, listener)) = free.pop() {
            let (config, registration, listen_addr) = synapse.slots[index].clone();
            // A listener taken by the last tenant is bound again when the port is free.
            let listener = listener.or_else(|| TcpListener::bind(listen_addr).ok());
            return SynapseSlot { index, config, registration, listen_addr, listener };
        }
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        assert!(!left.is_zero(), "all {POOL_SIZE} Synapse slots stayed leased for 5 minutes");
        free = synapse.returned.wait_timeout(free, left).unwrap().0;
    }
}

/// Registers a human user `@<localpart>:localhost` (password [`PASSWORD`]) through the
/// shared-secret admin API, logs it in and returns `(user_id, access_token)`.
pub async fn register_user(localpart: &str) -> (String, String) {
    let synapse = synapse();
    let dir = synapse.dir.to_string_lossy().into_owned();
    let args = ["register-user", dir.as_str(), localpart, PASSWORD];
    let args: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run_script(&args)
    })
    .await
    .unwrap()
    .unwrap_or_else(|e| panic!("registering {localpart}: {e}"));
    let login = json!({
        "type": "m.login.password",
        "identifier": {"type": "m.id.user", "user": localpart},
        "password": PASSWORD,
    });
    let (status, body) = call("POST", "/_matrix/client/v3/login", None, Some(login)).await;
    assert_eq!(status, 200, "login of {localpart}: {body}");
    let token = body["access_token"].as_str().unwrap().to_owned();
    (body["user_id"].as_str().unwrap().to_owned(), token)
}

/// One CS API call to the test Synapse: `(status, JSON body)`.
pub async fn call(
    method: &str,
    path_and_query: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let url = format!("{}{path_and_query}", synapse().base_url);
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut request = http_client().request(method, url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let body = response.json::<Value>().await.unwrap_or(Value::Null);
    (status, body)
}

fn http_client() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap()
}

#[tokio::test]
async fn test_as_token_whoami_is_the_sender() {
    let slot = lease();
    let (status, body) =
        call("GET", "/_matrix/client/v3/account/whoami", Some(slot.as_token()), None).await;
    assert_eq!(status, 200, "{body}");
    // The registration's sender, not the bot: the bridge asserts the bot on its calls.
    assert_eq!(body["user_id"], format!("@qqas{}:{DOMAIN}", slot.index));
    assert_eq!(slot.config.bot_user_id(), format!("@qqbot{}:{DOMAIN}", slot.index));
    // The file Synapse loaded agrees with the slot's config (what the bridge checks at start).
    Registration::read(&slot.config.appservice.registration)
        .unwrap()
        .check_against(&slot.config)
        .unwrap();

    let (status, body) =
        call("GET", "/_matrix/client/v3/account/whoami", Some(&"0".repeat(64)), None).await;
    assert_eq!((status, body["errcode"].as_str()), (401, Some("M_UNKNOWN_TOKEN")), "{body}");
}

#[tokio::test]
async fn test_ghost_registration_is_exclusive_to_the_namespace() {
    let slot = lease();
    let other = lease();
    let register = |username: String| json!({"type": "m.login.application_service", "username": username, "inhibit_login": true});
    let path = "/_matrix/client/v3/register";
    // A number no bridge test knows: slots are shared, and a bridge that ran in this slot
    // before may have registered the ghosts of the emulator's people already.
    const NOBODY: u64 = 99_991;
    let ghost = slot.ghost_localpart(NOBODY);
    let (status, body) = call("POST", path, Some(slot.as_token()), Some(register(ghost))).await;
    assert_eq!(status, 200, "{body}");
    let user_id = format!("@qqt{}_{NOBODY}:{DOMAIN}", slot.index);
    assert_eq!(body["user_id"], user_id.as_str());
    assert!(body.get("access_token").is_none(), "inhibit_login gave a token: {body}");

    for (username, errcode) in [
        (slot.ghost_localpart(NOBODY), "M_USER_IN_USE"),
        ("not_a_ghost".to_owned(), "M_EXCLUSIVE"),
        (other.ghost_localpart(NOBODY), "M_EXCLUSIVE"),
    ] {
        let (status, body) =
            call("POST", path, Some(slot.as_token()), Some(register(username.clone()))).await;
        assert_eq!((status, body["errcode"].as_str()), (400, Some(errcode)), "{username}: {body}");
    }

    // The ghost exists and the appservice can act as it (identity assertion, MATRIX.md §3).
    let whoami =
        format!("/_matrix/client/v3/account/whoami?user_id={}", user_id.replace('@', "%40"));
    let (status, body) = call("GET", &whoami, Some(slot.as_token()), None).await;
    assert_eq!((status, body["user_id"].as_str()), (200, Some(user_id.as_str())), "{body}");
}

#[tokio::test]
async fn test_registered_human_can_log_in() {
    let (user_id, token) = register_user("harness_alice").await;
    assert_eq!(user_id, format!("@harness_alice:{DOMAIN}"));
    let (status, body) = call("GET", "/_matrix/client/v3/account/whoami", Some(&token), None).await;
    assert_eq!((status, body["user_id"].as_str()), (200, Some(user_id.as_str())), "{body}");

    // A second lease while others run: slots come back and are distinct.
    let a = lease();
    let b = lease();
    assert_ne!(a.index, b.index);
    assert_ne!(a.listen_addr, b.listen_addr);
    assert!(a.listener.is_some() && b.listener.is_some());
}
