//! The HTTP side: accept loops for both listeners (the TLS one also takes plain HTTP, told apart
//! by the first byte), one hyper HTTP/1 connection task each, body caps, routing, faults, and
//! the conversion of a [`Reply`] into a response.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream;
use http::{HeaderValue, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;

use crate::emulator::faults::FaultKind;
use crate::emulator::http::{Reply, Req};
use crate::emulator::router::{Endpoint, route};
use crate::emulator::session::lock;
use crate::emulator::state::{Shared, write};
use crate::emulator::{Emulator, Listeners, routes};

/// Body cap for forms and queries: the biggest real form is a send with a long message.
const FORM_BODY_LIMIT: usize = 1024 * 1024;
/// Body cap for picture uploads (real group pictures could exceed 250 KB, protocol §2.18).
const UPLOAD_BODY_LIMIT: usize = 10 * 1024 * 1024;
/// How long a new connection may stay silent before its first byte (TLS sniffing).
const FIRST_BYTE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long request headers may take to arrive.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// How often idle sessions and old logins are swept.
const SWEEP_INTERVAL: Duration = Duration::from_secs(60);
/// How long `serve` waits for open connections after shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

type Body = BoxBody<Bytes, io::Error>;

async fn accept_opt(listener: Option<&TcpListener>) -> io::Result<(TcpStream, SocketAddr)> {
    match listener {
        Some(l) => l.accept().await,
        None => std::future::pending().await,
    }
}

/// Runs the emulator on already-bound listeners until `shutdown` completes, then lets open
/// connections finish (held polls end at once) for up to five seconds.
pub(crate) async fn serve(
    listeners: Listeners,
    emulator: Emulator,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let shared = emulator.shared.clone();
    *lock(&shared.image_addr) = Some(listeners.plain.local_addr()?);
    let acceptor = TlsAcceptor::from(shared.tls.config.clone());
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = JoinSet::new();
    let mut sweep = tokio::time::interval(SWEEP_INTERVAL);
    tokio::pin!(shutdown);
    tracing::info!(plain = %listeners.plain.local_addr()?, "webqq emulator listening");
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            r = listeners.plain.accept() => r.map(|(s, peer)| (s, peer, None)),
            r = accept_opt(listeners.tls.as_ref()) => r.map(|(s, peer)| (s, peer, Some(acceptor.clone()))),
            _ = sweep.tick() => {
                sweep_state(&shared);
                continue;
            }
        };
        match accepted {
            Ok((stream, peer, tls)) => {
                tasks.spawn(connection(shared.clone(), stream, peer, tls, stop_rx.clone()));
            }
            Err(error) => {
                // Out of file descriptors and similar: back off instead of spinning.
                tracing::warn!(%error, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        while tasks.try_join_next().is_some() {}
    }
    shared.shutting_down.store(true, Ordering::SeqCst);
    for session in crate::emulator::state::read(&shared.sessions).all() {
        session.notify.notify_waiters();
    }
    let _ = stop_tx.send(true);
    let drained =
        tokio::time::timeout(SHUTDOWN_GRACE, async { while tasks.join_next().await.is_some() {} })
            .await;
    if drained.is_err() {
        tasks.abort_all();
    }
    tracing::info!("webqq emulator stopped");
    Ok(())
}

fn sweep_state(shared: &Shared) {
    let ttl = shared.options().session_ttl;
    let now = Instant::now();
    let removed = write(&shared.sessions).sweep(now, ttl);
    lock(&shared.login).sweep(now, ttl);
    if removed > 0 {
        tracing::debug!(removed, "swept idle sessions");
    }
}

async fn connection(
    shared: Arc<Shared>,
    stream: TcpStream,
    peer: SocketAddr,
    tls: Option<TlsAcceptor>,
    stop: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    match tls {
        Some(acceptor) => {
            let mut first = [0_u8; 1];
            let peeked = tokio::time::timeout(FIRST_BYTE_TIMEOUT, stream.peek(&mut first)).await;
            if !matches!(peeked, Ok(Ok(1))) {
                return;
            }
            // 0x16 starts a TLS handshake record; anything else is plain HTTP sent to the TLS
            // port by a client that only overrides name resolution.
            if first[0] == 0x16 {
                match acceptor.accept(stream).await {
                    Ok(tls_stream) => {
                        http1(shared, TokioIo::new(tls_stream), peer, true, stop).await
                    }
                    Err(error) => tracing::debug!(%error, "tls handshake failed"),
                }
            } else {
                http1(shared, TokioIo::new(stream), peer, false, stop).await;
            }
        }
        None => http1(shared, TokioIo::new(stream), peer, false, stop).await,
    }
}

async fn http1<I>(
    shared: Arc<Shared>,
    io: I,
    peer: SocketAddr,
    tls: bool,
    mut stop: watch::Receiver<bool>,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let service = service_fn(move |req| handle(shared.clone(), req, peer, tls));
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .serve_connection(io, service);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = stop.changed() => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

fn full(bytes: Bytes) -> Body {
    Full::new(bytes).map_err(|never: Infallible| match never {}).boxed()
}

/// Handles one request; never fails (errors become pages or retcodes).
async fn handle(
    shared: Arc<Shared>,
    req: Request<Incoming>,
    peer: SocketAddr,
    tls: bool,
) -> Result<Response<Body>, Infallible> {
    let host = crate::emulator::http::strip_port(
        req.headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .or(req.uri().host())
            .unwrap_or(""),
    )
    .to_ascii_lowercase();
    let Some(endpoint) = route(&host, req.uri().path()) else {
        tracing::debug!(%host, path = req.uri().path(), "no such endpoint");
        return Ok(to_response(Reply::nginx(StatusCode::NOT_FOUND), None));
    };
    let limit = if endpoint.is_upload() { UPLOAD_BODY_LIMIT } else { FORM_BODY_LIMIT };
    let (parts, body) = req.into_parts();
    let body = match Limited::new(body, limit).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return Ok(to_response(Reply::nginx(StatusCode::PAYLOAD_TOO_LARGE), None)),
    };
    let req = Req::new(parts, body, tls, peer);
    if endpoint == Endpoint::Control {
        return Ok(to_response(crate::emulator::control_http::handle(&shared, &req), None));
    }
    let fault = lock(&shared.faults).take(endpoint.name(), req.cookie_account(), Instant::now());
    shared.count(endpoint.name(), fault.is_some());
    let mut post = None;
    if let Some(kind) = fault {
        tracing::debug!(endpoint = endpoint.name(), fault = ?kind, "fault applied");
        match kind {
            FaultKind::HttpStatus(code) => {
                let status = StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_GATEWAY);
                return Ok(to_response(Reply::nginx(status), None));
            }
            FaultKind::DelayMs(ms) => tokio::time::sleep(Duration::from_millis(ms)).await,
            FaultKind::Reset(_) | FaultKind::SlowBodyMs(_) => post = Some(kind),
            other => {
                if let Some(reply) = routes::apply_fault(&shared, endpoint, &req, &other) {
                    return Ok(to_response(reply, None));
                }
            }
        }
    }
    let reply = routes::dispatch(&shared, endpoint, &req).await;
    if endpoint.name() == "poll2" && matches!(post, Some(FaultKind::Reset(_))) {
        // The events in this answer left the session's queue and never reach the client (WebQQ
        // has no re-delivery, RELIABILITY.md §1.7): logged so a chaos run can tell them apart.
        let events = String::from_utf8_lossy(&reply.body);
        tracing::debug!(endpoint = endpoint.name(), %events, "poll2 answer cut by a reset");
    }
    lock(&shared.issued).record_reply(&reply);
    if endpoint.name() == "poll2"
        && let Some(FaultKind::SlowBodyMs(ms)) = &post
    {
        // Taken from the queue now, received only when the slow body ends: a client that dies
        // meanwhile never has them. Logged so a chaos run can tell them apart.
        let events = String::from_utf8_lossy(&reply.body);
        tracing::debug!(endpoint = endpoint.name(), ms = *ms, %events, "poll2 answer sent slowly");
    }
    tracing::debug!(
        endpoint = endpoint.name(),
        tls = req.tls,
        status = reply.status.as_u16(),
        "answered"
    );
    Ok(to_response(reply, post))
}

fn to_response(reply: Reply, post: Option<FaultKind>) -> Response<Body> {
    let len = reply.body.len();
    let body = match post {
        Some(FaultKind::Reset(_)) => {
            // Headers promise the full length; half the body arrives, then the connection dies.
            let half = reply.body.slice(..len / 2);
            let frames: Vec<Result<Frame<Bytes>, io::Error>> = vec![
                Ok(Frame::data(half)),
                Err(io::Error::new(io::ErrorKind::ConnectionReset, "fault: reset")),
            ];
            StreamBody::new(stream::iter(frames)).boxed()
        }
        Some(FaultKind::SlowBodyMs(ms)) => {
            let chunk = len.div_ceil(8).max(1);
            let pieces: Vec<Bytes> = (0..len)
                .step_by(chunk)
                .map(|i| reply.body.slice(i..(i + chunk).min(len)))
                .collect();
            let delay = Duration::from_millis(ms);
            let s = stream::unfold(pieces.into_iter(), move |mut it| async move {
                let next = it.next()?;
                tokio::time::sleep(delay).await;
                Some((Ok::<_, io::Error>(Frame::data(next)), it))
            });
            StreamBody::new(s).boxed()
        }
        _ => full(reply.body),
    };
    let mut response = Response::new(body);
    *response.status_mut() = reply.status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(reply.content_type));
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    headers.insert(header::SERVER, HeaderValue::from_static("nginx"));
    if let Some(location) = reply.location.and_then(|l| HeaderValue::from_str(&l).ok()) {
        headers.insert(header::LOCATION, location);
    }
    for cookie in &reply.cookies {
        if let Ok(v) = HeaderValue::from_str(&cookie.header_value()) {
            headers.append(header::SET_COOKIE, v);
        }
    }
    response
}
