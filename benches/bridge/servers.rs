//! The two tiny HTTP servers of the bridge bench: the null homeserver (answers every Matrix call
//! at once with a valid body, counts the sends) and the timing proxy in front of Synapse (records
//! when Synapse's answer to each `PUT …/send/m.room.message/{txn}` came back).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

/// Serves `handler` on `listener` until the runtime ends (one task per connection, keep-alive).
pub async fn serve<H, F>(listener: tokio::net::TcpListener, handler: H)
where
    H: Fn(Request<Incoming>) -> F + Clone + Send + 'static,
    F: Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    loop {
        let Ok((stream, _)) = listener.accept().await else { continue };
        let _ = stream.set_nodelay(true);
        let handler = handler.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let handler = handler.clone();
                async move { Ok::<_, Infallible>(handler(req).await) }
            });
            let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
        });
    }
}

fn json(status: u16, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or_default();
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    response
}

/// The percent-decoded path segment after `rooms/`, if any.
pub fn room_of(path: &str) -> Option<String> {
    let rest = path.split("/rooms/").nth(1)?;
    let segment = rest.split('/').next()?;
    Some(percent_encoding::percent_decode_str(segment).decode_utf8_lossy().into_owned())
}

// ---------------------------------------------------------------------------------------------
// The null homeserver

/// What the null homeserver counted.
#[derive(Default)]
pub struct NullCounts {
    /// `PUT …/send/…` answered.
    pub sends: AtomicU64,
    /// Every request answered.
    pub requests: AtomicU64,
    /// Rooms created.
    pub rooms: AtomicU64,
}

/// The null homeserver's answer to `req`: a valid minimal body for each call the bridge makes.
pub async fn null_answer(
    req: Request<Incoming>,
    bot: Arc<str>,
    counts: Arc<NullCounts>,
) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_owned();
    // The body is read so that the connection stays usable (keep-alive).
    let _ = req.into_body().collect().await;
    let n = counts.requests.fetch_add(1, Ordering::Relaxed);
    let body = if path.contains("/send/") {
        counts.sends.fetch_add(1, Ordering::Relaxed);
        format!(r#"{{"event_id":"$n{n}"}}"#)
    } else if path.contains("/state/") || path.contains("/redact/") {
        format!(r#"{{"event_id":"$s{n}"}}"#)
    } else if path.ends_with("/createRoom") {
        counts.rooms.fetch_add(1, Ordering::Relaxed);
        format!(r#"{{"room_id":"!r{n}:localhost"}}"#)
    } else if path.ends_with("/join") {
        let room = room_of(&path).unwrap_or_default();
        serde_json::json!({ "room_id": room }).to_string()
    } else if path.ends_with("/register") {
        r#"{"user_id":"@ghost:localhost"}"#.to_owned()
    } else if path.ends_with("/versions") {
        r#"{"versions":["v1.12"]}"#.to_owned()
    } else if path.ends_with("/whoami") {
        serde_json::json!({ "user_id": &*bot }).to_string()
    } else if path.ends_with("/ping") {
        r#"{"duration_ms":0}"#.to_owned()
    } else {
        "{}".to_owned()
    };
    json(200, body)
}

// ---------------------------------------------------------------------------------------------
// The timing proxy

/// One `m.room.message` send that went through the proxy.
#[derive(Clone, Debug)]
pub struct SendSeen {
    /// When the whole request had reached the proxy (the sender's part ends here).
    pub arrived: Instant,
    /// When Synapse's answer (headers) came back to the proxy.
    pub at: Instant,
    /// The transaction id (the bridge's start with `qq`, the bench's own with `bd`).
    pub txn: String,
    /// The room.
    pub room: String,
    /// The asserted user (`user_id=`), empty for none.
    pub user: String,
    /// Synapse's status.
    pub status: u16,
}

/// The proxy's shared state.
pub struct Proxy {
    upstream: String,
    http: reqwest::Client,
    /// Every send seen, in the order the answers came back.
    pub sends: Mutex<Vec<SendSeen>>,
    /// Sends answered 200 whose transaction id is the bridge's (`qq…`).
    pub bridged: AtomicU64,
    /// Sends answered 200 whose transaction id is the bench's own (`bd…`).
    pub direct: AtomicU64,
}

impl Proxy {
    /// A proxy to `upstream` (`http://127.0.0.1:PORT`).
    pub fn new(upstream: String) -> anyhow::Result<Arc<Proxy>> {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(256)
            .timeout(std::time::Duration::from_secs(120))
            .build()?;
        Ok(Arc::new(Proxy {
            upstream,
            http,
            sends: Mutex::new(Vec::new()),
            bridged: AtomicU64::new(0),
            direct: AtomicU64::new(0),
        }))
    }

    /// Bridged sends answered 200 so far.
    pub fn bridged(&self) -> u64 {
        self.bridged.load(Ordering::Relaxed)
    }

    /// The sends seen from index `from` on.
    pub fn since(&self, from: usize) -> Vec<SendSeen> {
        let sends = self.sends.lock().unwrap_or_else(PoisonError::into_inner);
        sends.get(from..).map(<[SendSeen]>::to_vec).unwrap_or_default()
    }

    /// How many sends were seen.
    pub fn seen(&self) -> usize {
        self.sends.lock().unwrap_or_else(PoisonError::into_inner).len()
    }

    /// Forwards `req` to Synapse and its answer back; records sends.
    pub async fn forward(self: Arc<Self>, req: Request<Incoming>) -> Response<Full<Bytes>> {
        let (parts, body) = req.into_parts();
        let path_and_query = parts.uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
        let body = match body.collect().await {
            Ok(body) => body.to_bytes(),
            Err(error) => return json(502, format!(r#"{{"error":"proxy read: {error}"}}"#)),
        };
        let arrived = Instant::now();
        let url = format!("{}{path_and_query}", self.upstream);
        let mut request = self.http.request(parts.method.clone(), url).body(body);
        for name in [hyper::header::AUTHORIZATION, hyper::header::CONTENT_TYPE] {
            if let Some(value) = parts.headers.get(&name) {
                request = request.header(name, value);
            }
        }
        let response = match request.send().await {
            Ok(response) => response,
            Err(error) => {
                return json(502, format!(r#"{{"error":"proxy: {}"}}"#, error.without_url()));
            }
        };
        let at = Instant::now();
        let status = response.status().as_u16();
        let bytes = response.bytes().await.unwrap_or_default();
        let path = parts.uri.path();
        if parts.method == hyper::Method::PUT && path.contains("/send/m.room.message/") {
            let txn = path.rsplit('/').next().unwrap_or_default().to_owned();
            let user = parts
                .uri
                .query()
                .unwrap_or_default()
                .split('&')
                .find_map(|kv| kv.strip_prefix("user_id="))
                .map(|u| percent_encoding::percent_decode_str(u).decode_utf8_lossy().into_owned())
                .unwrap_or_default();
            if status == 200 && txn.starts_with("qq") {
                self.bridged.fetch_add(1, Ordering::Relaxed);
            } else if status == 200 && txn.starts_with("bd") {
                self.direct.fetch_add(1, Ordering::Relaxed);
            }
            let room = room_of(path).unwrap_or_default();
            let seen = SendSeen { arrived, at, txn, room, user, status };
            self.sends.lock().unwrap_or_else(PoisonError::into_inner).push(seen);
        }
        let mut answer = Response::new(Full::new(bytes));
        *answer.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or_default();
        answer.headers_mut().insert(
            hyper::header::CONTENT_TYPE,
            hyper::header::HeaderValue::from_static("application/json"),
        );
        answer
    }
}

/// Binds 127.0.0.1:0 and serves `handler` there on the current runtime; answers the address.
pub async fn spawn_server<H, F>(handler: H) -> anyhow::Result<SocketAddr>
where
    H: Fn(Request<Incoming>) -> F + Clone + Send + 'static,
    F: Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(serve(listener, handler));
    Ok(addr)
}
