//! [`WebQqClient`]: the HTTP side of the protocol — one cookie jar, per-host headers, body caps.
//!
//! The client always addresses the real host names (protocol §0.1). To use the emulator it only
//! overrides name resolution ([`ClientConfig::resolve`]) and trusts one more CA; there is no
//! emulator-only code path. Headers follow protocol §0.4: a browser User-Agent everywhere, the
//! proxy-page Referer per host, Origin on POSTs. Redirects are never followed automatically
//! (check_sig's cookies are read from its own hop, picture redirects are checked first).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use reqwest::cookie::CookieStore as _;
use reqwest::header::{
    CONTENT_TYPE, COOKIE, HeaderMap, HeaderValue, LOCATION, ORIGIN, REFERER, SET_COOKIE, USER_AGENT,
};

use crate::webqq::api::poll2::{MAX_POLL_BYTES, Poll2};
use crate::webqq::api::{Endpoint, HostKind, Method, RawAnswer};
use crate::webqq::cookies::CookieJar;
use crate::webqq::hash::HashVariant;
use crate::webqq::hosts::{self, Channel};
use crate::webqq::longpoll::{LongPoll, PollHead};
use crate::webqq::session::{Session, Tokens, unix_now};
use crate::webqq::{ClientId, Error, Secret};

/// Read timeout of poll2: above the server's ~60 s hold (iQQ used 70 s, pandolia and Mojo 120 s,
/// protocol §7.1), so an idle poll ends with the server's own idle answer, not our timeout.
pub const POLL_TIMEOUT: Duration = Duration::from_secs(120);
/// Timeout of every other call (Mojo used ~15 s for info calls, protocol §7.2).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// Connect timeout (protocol §7.1: ~10 s).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Cap on JSON and JavaScript answers (RELIABILITY.md §2: poll2 4 MiB).
pub const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;
/// Cap on pictures fetched from QQ (RELIABILITY.md §2: 20 MiB).
pub const MAX_PICTURE_BYTES: usize = 20 * 1024 * 1024;

/// How the client reaches the QQ hosts.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// Name-resolution overrides: host name → address. Empty means ordinary DNS. Shared, not
    /// copied, by every account's client (about thirty names each when pointed at the emulator).
    pub resolve: Arc<BTreeMap<String, SocketAddr>>,
    /// An extra CA certificate (PEM) to trust, e.g. the emulator's. Shared like `resolve`.
    pub extra_root_ca_pem: Option<Arc<str>>,
    /// poll2's read timeout.
    pub poll_timeout: Duration,
    /// Every other call's timeout.
    pub request_timeout: Duration,
    /// The HTTP client (connection pool, TLS roots) shared by every `WebQqClient` made from
    /// clones of this configuration: a process with thousands of accounts builds it once.
    pub shared: SharedHttp,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            resolve: Arc::new(BTreeMap::new()),
            extra_root_ca_pem: None,
            poll_timeout: POLL_TIMEOUT,
            request_timeout: REQUEST_TIMEOUT,
            shared: SharedHttp::default(),
        }
    }
}

/// One HTTP client built on first use and shared by every clone of a [`ClientConfig`].
///
/// Cookies are not kept in it: each `WebQqClient` sends its own jar's `Cookie` header and stores
/// the `Set-Cookie` headers it receives, so accounts never see each other's cookies.
#[derive(Clone, Default)]
pub struct SharedHttp(Arc<Mutex<Option<reqwest::Client>>>);

impl std::fmt::Debug for SharedHttp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SharedHttp")
    }
}

impl SharedHttp {
    fn get_or_build(&self, config: &ClientConfig) -> Result<reqwest::Client, Error> {
        let mut slot = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(client) = slot.as_ref() {
            return Ok(client.clone());
        }
        let client = build_http(config)?;
        *slot = Some(client.clone());
        Ok(client)
    }
}

/// How long an unused pooled connection stays open.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(20);
/// Unused pooled connections kept per host (shared by every account).
const POOL_MAX_IDLE_PER_HOST: usize = 256;
/// TCP keepalive idle time of every connection.
const TCP_KEEPALIVE: Duration = Duration::from_secs(45);

fn build_http(config: &ClientConfig) -> Result<reqwest::Client, Error> {
    let mut headers = HeaderMap::new();
    headers.insert(USER_AGENT, HeaderValue::from_static(hosts::USER_AGENT));
    let mut builder = reqwest::Client::builder()
        .default_headers(headers)
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(CONNECT_TIMEOUT)
        // One pool serves every account: the login hosts are busy only while accounts log in,
        // so their connections must not stay open (and hold memory and descriptors) long after.
        .pool_idle_timeout(POOL_IDLE_TIMEOUT)
        .pool_max_idle_per_host(POOL_MAX_IDLE_PER_HOST)
        // A held poll is idle on the wire for up to a minute (protocol §2.3); probes at the
        // default 15 s would cost thousands of packets a minute at 10k accounts.
        .tcp_keepalive(TCP_KEEPALIVE);
    for (host, addr) in config.resolve.iter() {
        builder = builder.resolve(host, *addr);
    }
    if let Some(pem) = &config.extra_root_ca_pem {
        let cert = reqwest::Certificate::from_pem(pem.as_bytes())
            .map_err(|e| Error::Config(format!("extra CA certificate: {e}")))?;
        builder = builder.tls_certs_merge([cert]);
    }
    builder.build().map_err(|e| Error::Config(format!("http client: {e}")))
}

impl ClientConfig {
    /// Every QQ host name resolved to `addr`, trusting `ca_pem`: how a client reaches the emulator.
    pub fn redirect_all(addr: SocketAddr, ca_pem: Option<String>) -> Self {
        let resolve: BTreeMap<String, SocketAddr> = hosts::ALL
            .iter()
            .copied()
            .chain(FACE_HOSTS)
            .map(|host| (host.to_owned(), addr))
            .collect();
        ClientConfig {
            resolve: Arc::new(resolve),
            extra_root_ca_pem: ca_pem.map(Arc::from),
            ..ClientConfig::default()
        }
    }
}

/// Avatar hosts `face1` … `face10`.
const FACE_HOSTS: [&str; 9] = [
    "face2.qun.qq.com",
    "face3.qun.qq.com",
    "face4.qun.qq.com",
    "face5.qun.qq.com",
    "face6.qun.qq.com",
    "face7.qun.qq.com",
    "face8.qun.qq.com",
    "face9.qun.qq.com",
    "face10.qun.qq.com",
];

/// The mutable part of a client: era, client id, tokens.
#[derive(Debug)]
pub(crate) struct State {
    pub(crate) channel: Channel,
    pub(crate) clientid: ClientId,
    pub(crate) hash_variant: HashVariant,
    pub(crate) tokens: Tokens,
}

/// A WebQQ client for one account. Cheap to share behind an `Arc`: every method takes `&self`, so
/// the poll and sends run concurrently (protocol §7.2), while there is only ever one poll.
#[derive(Debug)]
pub struct WebQqClient {
    http: reqwest::Client,
    jar: Arc<CookieJar>,
    poll: LongPoll,
    config: ClientConfig,
    state: Mutex<State>,
    msg_id: AtomicU64,
}

/// What the client needs to know about a host kind to address it.
struct Target {
    scheme: &'static str,
    host: &'static str,
    referer: &'static str,
    origin: Option<&'static str>,
}

impl WebQqClient {
    /// A client with an empty cookie jar, ready for a login flow.
    pub fn new(config: ClientConfig) -> Result<Self, Error> {
        Self::with_jar(config, CookieJar::new())
    }

    /// A client resuming a stored session (cookies and tokens); call `relink` or just poll.
    pub fn restore(config: ClientConfig, session: &Session) -> Result<Self, Error> {
        let client = Self::with_jar(config, CookieJar::from_json(session.cookies.expose())?)?;
        {
            let mut state = client.state();
            state.channel = session.channel;
            state.clientid = session.clientid;
            state.hash_variant = session.hash_variant;
            state.tokens = Tokens {
                qq: Some(session.qq),
                uin: Some(session.uin),
                psessionid: session.psessionid.clone(),
                vfwebqq: session.vfwebqq.clone(),
                ptwebqq: session.ptwebqq.clone(),
                nick: session.nick.clone(),
                opened_at: session.opened_at,
                gface: None,
            };
        }
        client.msg_id.fetch_max(session.last_msg_id, Ordering::Relaxed);
        Ok(client)
    }

    fn with_jar(config: ClientConfig, jar: CookieJar) -> Result<Self, Error> {
        let jar = Arc::new(jar);
        let http = config.shared.get_or_build(&config)?;
        let now_ms = unix_now().saturating_mul(1000);
        Ok(WebQqClient {
            http,
            jar,
            poll: LongPoll::default(),
            config,
            state: Mutex::new(State {
                channel: Channel::D1,
                clientid: ClientId::SMARTQQ,
                hash_variant: HashVariant::Ecok,
                tokens: Tokens::default(),
            }),
            msg_id: AtomicU64::new(crate::webqq::api::send::initial_msg_id(now_ms)),
        })
    }

    pub(crate) fn state(&self) -> MutexGuard<'_, State> {
        // The state is a handful of strings; a panic elsewhere cannot leave it half-written.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The cookie jar (login flows read `qrsig`, `ptwebqq`, `skey` from it).
    pub fn cookies(&self) -> &CookieJar {
        &self.jar
    }

    /// The configuration this client was built with.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// The next msg_id: per session, strictly increasing (protocol §5.4).
    pub fn next_msg_id(&self) -> u64 {
        self.msg_id.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// A snapshot of the session for persistence, or `None` before login2 succeeded.
    pub fn session(&self) -> Option<Session> {
        let cookies = self.jar.to_json().ok()?;
        let state = self.state();
        let tokens = &state.tokens;
        Some(Session {
            qq: tokens.qq?,
            uin: tokens.uin?,
            channel: state.channel,
            clientid: state.clientid,
            psessionid: tokens.psessionid.clone(),
            vfwebqq: tokens.vfwebqq.clone(),
            ptwebqq: tokens.ptwebqq.clone(),
            hash_variant: state.hash_variant,
            cookies: Secret::new(cookies),
            nick: tokens.nick.clone(),
            opened_at: tokens.opened_at,
            last_msg_id: self.msg_id.load(Ordering::Relaxed),
        })
    }

    fn target(&self, kind: HostKind) -> Target {
        let login_ui = hosts::LOGIN_UI_URL;
        match kind {
            HostKind::Ptlogin => {
                Target { scheme: "https", host: hosts::PTLOGIN, referer: login_ui, origin: None }
            }
            HostKind::PtloginUi => Target {
                scheme: "https",
                host: hosts::PTLOGIN_UI,
                referer: hosts::REFERER_PICTURE,
                origin: None,
            },
            HostKind::Captcha => {
                Target { scheme: "https", host: hosts::CAPTCHA, referer: login_ui, origin: None }
            }
            HostKind::Channel => {
                let channel = self.state().channel;
                Target {
                    scheme: "http",
                    host: channel.host(),
                    referer: channel.referer(),
                    origin: Some(channel.origin()),
                }
            }
            HostKind::Info => Target {
                scheme: "http",
                host: hosts::INFO,
                referer: hosts::REFERER_S,
                origin: Some("http://s.web2.qq.com"),
            },
            HostKind::Upload => Target {
                scheme: "http",
                host: hosts::UPLOAD,
                referer: hosts::REFERER_UPLOAD,
                origin: Some(hosts::ORIGIN_UPLOAD),
            },
            HostKind::OfflineUpload => Target {
                scheme: "http",
                host: hosts::OFFLINE_UPLOAD,
                referer: "http://web2.qq.com/",
                origin: Some(hosts::ORIGIN_UPLOAD),
            },
            HostKind::Web2 => Target {
                scheme: "http",
                host: hosts::WEB2,
                referer: hosts::REFERER_UPLOAD,
                origin: None,
            },
        }
    }

    /// Performs one endpoint call and decodes its answer. May be slow (poll2 is held by the
    /// server); never retries by itself — retry policy belongs to the caller.
    pub async fn call<E: Endpoint>(&self, request: &E) -> Result<E::Answer, Error> {
        let target = self.target(E::HOST);
        // poll2 on the plain-http channel host is held for up to a minute by thousands of
        // accounts at once: it gets the lean exchange of `longpoll.rs` (protocol §2.3).
        if E::NAME == Poll2::NAME && target.scheme == "http" && matches!(E::METHOD, Method::Post) {
            return self.long_poll(&target, request).await;
        }
        // Boxed so that a held poll's future is not as large as a reqwest exchange's.
        Box::pin(self.call_http(target, request)).await
    }

    async fn long_poll<E: Endpoint>(
        &self,
        target: &Target,
        request: &E,
    ) -> Result<E::Answer, Error> {
        let head = PollHead {
            host: target.host,
            path: E::PATH,
            referer: target.referer,
            origin: target.origin,
        };
        let form = || {
            serde_urlencoded::to_string(request.params())
                .map_err(|e| Error::Config(format!("form encoding: {e}")))
        };
        let reply =
            self.poll.post(E::NAME, &self.config, &self.jar, head, form, MAX_POLL_BYTES).await?;
        E::decode(&RawAnswer {
            status: reply.status,
            location: None,
            content_type: reply.content_type.as_deref(),
            body: &reply.body,
        })
    }

    async fn call_http<E: Endpoint>(
        &self,
        target: Target,
        request: &E,
    ) -> Result<E::Answer, Error> {
        let url = format!("{}://{}{}", target.scheme, target.host, E::PATH);
        let params = request.params();
        let timeout =
            if E::NAME == "poll2" { self.config.poll_timeout } else { self.config.request_timeout };
        let builder = match E::METHOD {
            Method::Get => self.http.get(&url).query(&params),
            Method::Post => {
                let body = serde_urlencoded::to_string(&params)
                    .map_err(|e| Error::Config(format!("form encoding: {e}")))?;
                let mut builder = self
                    .http
                    .post(&url)
                    .header(CONTENT_TYPE, "application/x-www-form-urlencoded; charset=UTF-8")
                    .body(body);
                if let Some(origin) = target.origin {
                    builder = builder.header(ORIGIN, origin);
                }
                builder
            }
        };
        let builder = builder.header(REFERER, target.referer).timeout(timeout);
        let cap = if matches!(E::NAME, "get_cface2" | "get_group_pic") {
            MAX_PICTURE_BYTES
        } else {
            MAX_BODY_BYTES
        };
        self.execute(E::NAME, builder, cap, E::decode).await
    }

    /// Sends a built request and decodes its capped answer with `decode`.
    pub(crate) async fn execute<T>(
        &self,
        endpoint: &'static str,
        builder: reqwest::RequestBuilder,
        cap: usize,
        decode: impl FnOnce(&RawAnswer<'_>) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let mut request = builder.build().map_err(|e| Error::network(endpoint, e))?;
        let url = request.url().clone();
        if let Some(cookies) = self.jar.cookies(&url) {
            request.headers_mut().insert(COOKIE, cookies);
        }
        let mut response =
            self.http.execute(request).await.map_err(|e| Error::network(endpoint, e))?;
        // Cookies are read from every hop, redirects included (protocol §7.7).
        self.jar.set_cookies(&mut response.headers().get_all(SET_COOKIE).iter(), &url);
        let status = response.status().as_u16();
        let header = |name| {
            response
                .headers()
                .get(name)
                .and_then(|v: &HeaderValue| v.to_str().ok())
                .map(str::to_owned)
        };
        let location = header(LOCATION);
        let content_type = header(CONTENT_TYPE);
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| Error::network(endpoint, e))? {
            if body.len() + chunk.len() > cap {
                return Err(Error::TooLarge { endpoint, limit: cap });
            }
            body.extend_from_slice(&chunk);
        }
        decode(&RawAnswer {
            status,
            location: location.as_deref(),
            content_type: content_type.as_deref(),
            body: &body,
        })
    }

    /// GETs an absolute URL given by the server (check_sig), with the login UI Referer.
    pub async fn get_url(&self, endpoint: &'static str, url: url::Url) -> Result<Vec<u8>, Error> {
        let builder = self
            .http
            .get(url)
            .header(REFERER, hosts::LOGIN_UI_URL)
            .timeout(self.config.request_timeout);
        self.execute(endpoint, builder, MAX_BODY_BYTES, |raw| {
            crate::webqq::api::check_sig::decode(raw).map(|()| raw.body.to_vec())
        })
        .await
    }

    /// POSTs a multipart upload to `host` `path` (cface_upload, upload_offline_pic).
    pub(crate) async fn upload(
        &self,
        endpoint: &'static str,
        kind: HostKind,
        path: &str,
        form: reqwest::multipart::Form,
    ) -> Result<Vec<u8>, Error> {
        let target = self.target(kind);
        let url = format!("{}://{}{}", target.scheme, target.host, path);
        let mut builder = self
            .http
            .post(url)
            .query(&[("time", unix_now().saturating_mul(1000).to_string())])
            .header(REFERER, target.referer)
            .multipart(form)
            .timeout(self.config.request_timeout);
        if let Some(origin) = target.origin {
            builder = builder.header(ORIGIN, origin);
        }
        self.execute(endpoint, builder, MAX_BODY_BYTES, |raw| {
            if raw.status == 200 {
                Ok(raw.body.to_vec())
            } else {
                Err(Error::HttpStatus { endpoint, status: raw.status })
            }
        })
        .await
    }

    /// Fetches a picture from a URL the server redirected to (get_offpic2), after checking the
    /// target: only QQ hosts, or addresses this client was explicitly told to resolve to.
    pub async fn fetch_picture_url(&self, url: &str) -> Result<Vec<u8>, Error> {
        let endpoint = "picture";
        let parsed = url::Url::parse(url).map_err(|_| Error::Flow("picture URL does not parse"))?;
        if !self.picture_host_allowed(&parsed) {
            return Err(Error::Flow("picture URL is not on an allowed host"));
        }
        let builder = self
            .http
            .get(parsed)
            .header(REFERER, hosts::REFERER_PICTURE)
            .timeout(Duration::from_secs(30));
        self.execute(endpoint, builder, MAX_PICTURE_BYTES, |raw| {
            crate::webqq::api::getimage::image_answer(endpoint, raw)
        })
        .await
    }

    /// RELIABILITY.md §2, media fetch: QQ host names are fine; an IP literal must be public, unless
    /// it is one of the addresses this client resolves QQ names to (the emulator).
    fn picture_host_allowed(&self, url: &url::Url) -> bool {
        if !matches!(url.scheme(), "http" | "https") {
            return false;
        }
        match url.host() {
            Some(url::Host::Domain(name)) => name == "qq.com" || name.ends_with(".qq.com"),
            Some(url::Host::Ipv4(ip)) => {
                let overridden =
                    self.config.resolve.values().any(|a| a.ip() == std::net::IpAddr::V4(ip));
                overridden
                    || !(ip.is_loopback()
                        || ip.is_private()
                        || ip.is_link_local()
                        || ip.is_unspecified()
                        || ip.is_broadcast())
            }
            Some(url::Host::Ipv6(ip)) => {
                self.config.resolve.values().any(|a| a.ip() == std::net::IpAddr::V6(ip))
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_picture_host_policy() {
        let emulator: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let client = WebQqClient::new(ClientConfig::redirect_all(emulator, None)).unwrap();
        let allowed = |u: &str| client.picture_host_allowed(&url::Url::parse(u).unwrap());
        assert!(allowed("http://web2.qq.com/x"));
        assert!(allowed("http://103.7.29.36:80/?ver=2173"));
        assert!(allowed("http://127.0.0.1:9/offpic/1"));
        assert!(!allowed("http://169.254.169.254/latest/meta-data"));
        assert!(!allowed("http://10.0.0.1/"));
        assert!(!allowed("http://evil.example/"));
        assert!(!allowed("file:///etc/passwd"));
        let plain = WebQqClient::new(ClientConfig::default()).unwrap();
        assert!(!plain.picture_host_allowed(&url::Url::parse("http://127.0.0.1:9/").unwrap()));
    }

    #[test]
    fn test_held_poll_is_small() {
        let client = WebQqClient::new(ClientConfig::default()).unwrap();
        let poll = Poll2::smartqq("ptwebqq", ClientId::SMARTQQ, "psessionid");
        let future = client.call(&poll);
        // The whole poll2 call as the poller holds it (reqwest's path boxed away).
        let size = size_of_val(&future);
        assert!(size <= 1280, "a held poll2 call is {size} bytes");
    }

    #[test]
    fn test_msg_ids_increase() {
        let client = WebQqClient::new(ClientConfig::default()).unwrap();
        let a = client.next_msg_id();
        assert_eq!(client.next_msg_id(), a + 1);
    }
}
