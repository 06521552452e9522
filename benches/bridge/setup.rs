//! The end-to-end set-up of the bridge bench: a Synapse of its own (scripts/synapse.sh) with the
//! bench's appservice registration, the owner user, the emulator child with a generated world,
//! the timing proxy, and the `qqbridge run` child wired to all of them.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use qqbridge::config::Config;
use qqbridge::matrix::registration::Registration;
use serde_json::{Value, json};

use crate::common::{self, Emulator, binary, exited, free_port, log_tail, register};
use crate::servers::Proxy;
use crate::{ACCOUNT_QQ, chat_kind, speaker, speakers_in};

/// The owner's password (a throw-away homeserver).
const OWNER_PASSWORD: &str = "bench-owner-password";
/// The label of the bridge child.
pub const BRIDGE: &str = "bridge";

/// A Synapse started for this run; stopped (and its directory removed) by a watchdog when this
/// process exits in any way, or by [`Synapse::stop`].
pub struct Synapse {
    pub dir: PathBuf,
    pub url: String,
    /// Its pid (for CPU figures).
    pub pid: String,
    watchdog: Option<(Child, ChildStdin)>,
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/synapse.sh")
}

fn run_script(args: &[&str]) -> anyhow::Result<std::process::Output> {
    let output = Command::new(script())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run {}", script().display()))?;
    Ok(output)
}

impl Synapse {
    /// Installs (if needed) and starts Synapse in `dir` with `registration`.
    pub async fn start(dir: &Path, registration: &Path) -> anyhow::Result<Synapse> {
        let dir = dir.to_owned();
        let registration = registration.to_owned();
        tokio::task::spawn_blocking(move || Synapse::start_blocking(&dir, &registration)).await?
    }

    fn start_blocking(dir: &Path, registration: &Path) -> anyhow::Result<Synapse> {
        // The watchdog first: it blocks on a pipe only this process holds, so whatever way this
        // process ends, Synapse is stopped (the same trick as tests/integration/synapse.rs).
        let mut watchdog = Command::new("sh")
            .args(["-c", "trap '' INT HUP TERM; cat >/dev/null; \"$0\" stop \"$1\""])
            .arg(script())
            .arg(dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot spawn the Synapse watchdog")?;
        let pipe = watchdog.stdin.take().context("the watchdog has no stdin")?;
        let install = run_script(&["install"])?;
        if !install.status.success() {
            bail!("synapse.sh install failed: {}", String::from_utf8_lossy(&install.stderr));
        }
        let dir_text = dir.to_string_lossy().into_owned();
        let registration = registration.to_string_lossy().into_owned();
        for attempt in 1..=3 {
            let port = free_port()?.to_string();
            let output = run_script(&["start", &dir_text, &port, &registration])?;
            if output.status.success() {
                let pid = std::fs::read_to_string(dir.join("pid"))
                    .context("Synapse wrote no pid file")?
                    .trim()
                    .to_owned();
                return Ok(Synapse {
                    dir: dir.to_owned(),
                    url: format!("http://127.0.0.1:{port}"),
                    pid,
                    watchdog: Some((watchdog, pipe)),
                });
            }
            let stderr = String::from_utf8_lossy(&output.stderr);
            if attempt == 3 || !stderr.contains("already in use") {
                bail!("synapse.sh start failed ({}):\n{stderr}", output.status);
            }
        }
        bail!("Synapse did not start")
    }

    /// Registers `localpart` (shared-secret admin API) and logs it in: (user id, token).
    pub async fn register_user(
        &self,
        http: &reqwest::Client,
        localpart: &str,
    ) -> anyhow::Result<(String, String)> {
        let dir = self.dir.to_string_lossy().into_owned();
        let user = localpart.to_owned();
        let output = tokio::task::spawn_blocking(move || {
            run_script(&["register-user", &dir, &user, OWNER_PASSWORD])
        })
        .await??;
        if !output.status.success() {
            bail!("register-user failed: {}", String::from_utf8_lossy(&output.stderr));
        }
        let login = json!({"type": "m.login.password",
            "identifier": {"type": "m.id.user", "user": localpart}, "password": OWNER_PASSWORD});
        let answer: Value = http
            .post(format!("{}/_matrix/client/v3/login", self.url))
            .json(&login)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let token = answer["access_token"].as_str().context("no access_token")?.to_owned();
        let user_id = answer["user_id"].as_str().context("no user_id")?.to_owned();
        Ok((user_id, token))
    }

    /// Stops Synapse now and waits for it (the watchdog runs `synapse.sh stop`).
    pub fn stop(&mut self) {
        if let Some((mut child, pipe)) = self.watchdog.take() {
            drop(pipe);
            let _ = child.wait();
        }
    }
}

/// The emulator world: the bridged account, a friend per even portal and a group (three
/// speakers and the account) per odd portal.
pub fn world_yaml(portals: usize) -> String {
    let mut persons = String::new();
    let mut friends = String::new();
    let mut groups = String::new();
    for p in 0..portals {
        match chat_kind(p) {
            crate::Kind::Friend(qq) => {
                let _ = writeln!(persons, "  - {{qq: {qq}, nick: \"friend {p}\"}}");
                let _ = writeln!(friends, "      - {{qq: {qq}}}");
            }
            crate::Kind::Group(number) => {
                let members: Vec<String> =
                    (0..speakers_in(p)).map(|i| speaker(p, i).to_string()).collect();
                for member in &members {
                    let _ = writeln!(persons, "  - {{qq: {member}, nick: \"member {member}\"}}");
                }
                let _ = writeln!(
                    groups,
                    "  - {{number: {number}, name: \"bench group {p}\", owner: {}, members: [{ACCOUNT_QQ}, {}]}}",
                    members[0],
                    members.join(", ")
                );
            }
        }
    }
    let mut yaml = format!(
        "# Generated by benches/bridge\npersons:\n{persons}accounts:\n  - qq: {ACCOUNT_QQ}\n    \
         password: \"bench-{ACCOUNT_QQ}\"\n    friends:\n{friends}"
    );
    if !groups.is_empty() {
        let _ = write!(yaml, "groups:\n{groups}");
    }
    yaml
}

/// Where the bridge child listens and what it talks to.
pub struct BridgePorts {
    pub appservice: u16,
    pub metrics: u16,
}

/// The `qqbridge run` config.
pub fn bridge_yaml(
    dir: &Path,
    emulator: Option<&Emulator>,
    homeserver: &str,
    owner: &str,
    ports: &BridgePorts,
    send_interval_ms: u64,
) -> String {
    let qq = match emulator {
        Some(e) => format!(
            "qq:\n  connect: \"{}\"\n  ca_cert: \"{}\"\n  poll_timeout_seconds: 120\n",
            e.tls,
            e.ca.display()
        ),
        None => String::new(),
    };
    format!(
        "# Generated by benches/bridge\n{qq}\
         accounts:\n  - {{id: me, qq: {ACCOUNT_QQ}, login: password, password: \"bench-{ACCOUNT_QQ}\", owner: \"{owner}\"}}\n\
         sender:\n  min_interval_ms: {send_interval_ms}\n\
         store:\n  path: \"{}\"\n\
         metrics:\n  listen: \"127.0.0.1:{}\"\n\
         logging:\n  filter: \"warn\"\n\
         homeserver:\n  address: \"{homeserver}\"\n  domain: \"localhost\"\n\
         appservice:\n  id: \"qqbench\"\n  listen: \"127.0.0.1:{as_port}\"\n  address: \"http://127.0.0.1:{as_port}\"\n  \
         bot_localpart: \"qqbenchbot\"\n  registration: \"{}\"\n\
         bridge:\n  enabled: true\n  username_template: \"qqb_{{qq}}\"\n\
         encryption:\n  bot_device: false\n",
        dir.join("bridge.sqlite3").display(),
        ports.metrics,
        dir.join("registration.yaml").display(),
        as_port = ports.appservice,
    )
}

/// Writes a first config (homeserver not known yet) and the registration from it; answers the
/// registration.
pub fn write_registration(dir: &Path, ports: &BridgePorts) -> anyhow::Result<Registration> {
    let yaml = bridge_yaml(dir, None, "http://127.0.0.1:1", "@benchowner:localhost", ports, 0);
    let path = dir.join("bridge.yaml");
    std::fs::write(&path, yaml)?;
    let config = Config::load(Some(&path)).context("the generated bridge config")?;
    let registration = Registration::generate(&config);
    registration.write(&config.appservice.registration)?;
    Ok(registration)
}

/// A started `qqbridge run`.
pub struct BridgeChild {
    pub pid: String,
    pub log: PathBuf,
    metrics: String,
}

/// Starts `qqbridge run` on `config` and waits until the account is CONNECTED.
pub async fn start_bridge(
    dir: &Path,
    config: &Path,
    ports: &BridgePorts,
    http: &reqwest::Client,
) -> anyhow::Result<BridgeChild> {
    let log = dir.join("bridge.log");
    let log_file = std::fs::File::create(&log)?;
    let child = Command::new(binary())
        .arg("run")
        .arg("-c")
        .arg(config)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log_file)
        .spawn()
        .with_context(|| format!("cannot start {}", binary().display()))?;
    let pid = child.id().to_string();
    register(BRIDGE, child);
    let bridge =
        BridgeChild { pid, log, metrics: format!("http://127.0.0.1:{}/metrics", ports.metrics) };
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Some(status) = exited(BRIDGE) {
            bail!("the bridge exited at start ({status}):\n{}", log_tail(&bridge.log));
        }
        if let Ok(response) = http.get(&bridge.metrics).send().await
            && let Ok(text) = response.text().await
            && text.lines().any(|l| {
                l.starts_with("qqbridge_account_state{")
                    && l.contains("CONNECTED")
                    && l.ends_with(" 1")
            })
        {
            return Ok(bridge);
        }
        if Instant::now() > deadline {
            bail!("the bridge's account did not connect within 120 s:\n{}", log_tail(&bridge.log));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Everything the end-to-end measures use.
pub struct World {
    pub dir: PathBuf,
    pub synapse: Synapse,
    pub emulator: Emulator,
    pub proxy: Arc<Proxy>,
    /// The proxy's base URL.
    pub proxy_url: String,
    pub bridge: BridgeChild,
    pub as_token: String,
    pub owner_token: String,
    /// The portal rooms, with a ghost joined to each.
    pub portals: Vec<(String, String)>,
    /// Rooms of the owner alone (nothing bridges them).
    pub plain_rooms: Vec<String>,
    pub http: reqwest::Client,
}

/// Sets everything up, warm-up included (every portal and ghost exists, the owner joined).
pub async fn build(portals: usize, send_interval_ms: u64) -> anyhow::Result<World> {
    let dir = tempfile::Builder::new().prefix("qqbridge-bench-bridge-").tempdir()?.keep();
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .timeout(Duration::from_secs(120))
        .build()?;
    let ports = BridgePorts { appservice: free_port()?, metrics: free_port()? };
    let registration = write_registration(&dir, &ports)?;
    let started = Instant::now();
    let synapse = Synapse::start(&dir.join("synapse"), &dir.join("registration.yaml")).await?;
    eprintln!(
        "bridge bench: Synapse up at {} in {:.1} s",
        synapse.url,
        started.elapsed().as_secs_f64()
    );
    let (owner, owner_token) = synapse.register_user(&http, "benchowner").await?;

    let proxy = Proxy::new(synapse.url.clone())?;
    let handler_proxy = proxy.clone();
    let proxy_addr =
        crate::servers::spawn_server(move |req| handler_proxy.clone().forward(req)).await?;
    let proxy_url = format!("http://{proxy_addr}");

    let world = dir.join("world.yaml");
    std::fs::write(&world, world_yaml(portals))?;
    let emulator = common::start_emulator(&dir, &world, 60, &http).await?;
    let config = dir.join("bridge.yaml");
    let yaml = bridge_yaml(&dir, Some(&emulator), &proxy_url, &owner, &ports, send_interval_ms);
    std::fs::write(&config, yaml)?;
    let bridge = start_bridge(&dir, &config, &ports, &http).await?;

    let mut world = World {
        dir,
        synapse,
        emulator,
        proxy,
        proxy_url,
        bridge,
        as_token: registration.as_token.expose().clone(),
        owner_token,
        portals: Vec::new(),
        plain_rooms: Vec::new(),
        http,
    };
    warm_up(&mut world, portals).await?;
    Ok(world)
}

impl World {
    /// A QQ-side person of portal `p` (speaker `i`) sends `text` to the account.
    pub async fn inject(&self, p: usize, i: usize, text: &str) -> anyhow::Result<()> {
        let body = match chat_kind(p) {
            crate::Kind::Friend(qq) => {
                json!({"account": ACCOUNT_QQ, "kind": "friend", "from": qq, "text": text})
            }
            crate::Kind::Group(number) => json!({"account": ACCOUNT_QQ, "kind": "group",
                "from": speaker(p, i), "group": number, "text": text}),
        };
        let url = format!("http://{}/_emulator/messages", self.emulator.plain);
        let response = self.http.post(url).json(&body).send().await?;
        if !response.status().is_success() {
            bail!("control messages: {}", response.text().await.unwrap_or_default());
        }
        Ok(())
    }

    /// A send made directly with the as_token through the proxy, as `user` (`txn` must start
    /// with `bd`).
    pub async fn direct_send(
        &self,
        room: &str,
        user: &str,
        txn: &str,
        text: &str,
    ) -> anyhow::Result<()> {
        let url = format!(
            "{}/_matrix/client/v3/rooms/{}/send/m.room.message/{txn}?user_id={}",
            self.proxy_url,
            encode(room),
            encode(user)
        );
        let response = self
            .http
            .put(url)
            .bearer_auth(&self.as_token)
            .json(&json!({"msgtype": "m.text", "body": text}))
            .send()
            .await?;
        if !response.status().is_success() {
            bail!("direct send: {}", response.text().await.unwrap_or_default());
        }
        Ok(())
    }

    /// The owner sends `text` into `room` (straight to Synapse).
    pub async fn owner_send(&self, room: &str, txn: &str, text: &str) -> anyhow::Result<()> {
        let url = format!(
            "{}/_matrix/client/v3/rooms/{}/send/m.room.message/{txn}",
            self.synapse.url,
            encode(room)
        );
        let response = self
            .http
            .put(url)
            .bearer_auth(&self.owner_token)
            .json(&json!({"msgtype": "m.text", "body": text}))
            .send()
            .await?;
        if !response.status().is_success() {
            bail!("owner send: {}", response.text().await.unwrap_or_default());
        }
        Ok(())
    }

    /// Messages the account has sent to QQ so far (the emulator's send counters).
    pub async fn qq_sent(&self) -> anyhow::Result<u64> {
        let url = format!("http://{}/_emulator/state", self.emulator.plain);
        let state: Value = self.http.get(url).send().await?.json().await?;
        Ok(["send_buddy_msg2", "send_qun_msg2"]
            .iter()
            .map(|c| state["counters"][c]["requests"].as_u64().unwrap_or(0))
            .sum())
    }

    /// Fails if the bridge child has exited.
    pub fn check_bridge(&self) -> anyhow::Result<()> {
        if let Some(status) = exited(BRIDGE) {
            bail!("the bridge exited ({status}):\n{}", log_tail(&self.bridge.log));
        }
        Ok(())
    }

    /// Waits until the proxy counted `target` bridged sends.
    pub async fn wait_bridged(&self, target: u64, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        while self.proxy.bridged() < target {
            self.check_bridge()?;
            if Instant::now() > deadline {
                bail!(
                    "Synapse got {} bridged sends of {target} within {} s; bridge log:\n{}",
                    self.proxy.bridged(),
                    timeout.as_secs(),
                    log_tail(&self.bridge.log)
                );
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        Ok(())
    }
}

/// Percent-encodes a path or query part.
pub fn encode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// One message from every speaker of every portal (portal rooms, ghosts, the space), then the
/// owner joins the portals, and makes as many rooms of its own.
async fn warm_up(world: &mut World, portals: usize) -> anyhow::Result<()> {
    let mut count = 0u64;
    for p in 0..portals {
        for i in 0..speakers_in(p) {
            world.inject(p, i, &format!("warm-up {p}/{i}")).await?;
            count += 1;
        }
    }
    world.wait_bridged(count, Duration::from_secs(300)).await?;
    let mut rooms: Vec<(String, String)> = Vec::new();
    for seen in world.proxy.since(0) {
        if seen.txn.starts_with("qq") && !rooms.iter().any(|(r, _)| *r == seen.room) {
            rooms.push((seen.room, seen.user));
        }
    }
    if rooms.len() != portals {
        bail!("the warm-up made {} portal rooms, not {portals}", rooms.len());
    }
    for (room, _) in &rooms {
        let url = format!("{}/_matrix/client/v3/rooms/{}/join", world.synapse.url, encode(room));
        let response =
            world.http.post(url).bearer_auth(&world.owner_token).json(&json!({})).send().await?;
        if !response.status().is_success() {
            bail!("the owner cannot join {room}: {}", response.text().await.unwrap_or_default());
        }
    }
    world.portals = rooms;
    for p in 0..portals {
        let url = format!("{}/_matrix/client/v3/createRoom", world.synapse.url);
        let answer: Value = world
            .http
            .post(url)
            .bearer_auth(&world.owner_token)
            .json(&json!({"preset": "private_chat", "name": format!("plain {p}")}))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let room = answer["room_id"].as_str().context("createRoom: no room_id")?.to_owned();
        world.plain_rooms.push(room);
    }
    Ok(())
}
