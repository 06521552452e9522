//! [`LongPoll`]: poll2 held on a bare TCP connection — a small HTTP/1.1 exchange that holds no
//! buffer while the server holds the request (protocol §2.3), and keeps one idle connection.
//!
//! Thousands of accounts each hold a poll for up to a minute; a general HTTP client keeps ~40 KiB
//! of buffers and state per held request. Here a held poll is a socket and a small future.

mod decode;

use std::net::SocketAddr;
use std::sync::{Mutex, PoisonError};

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::webqq::client::{CONNECT_TIMEOUT, ClientConfig};
use crate::webqq::cookies::CookieJar;
use crate::webqq::error::TransportKind;
use crate::webqq::{Error, hosts};

use decode::{Decoder, Fault};

/// How much a read asks for at a time once bytes arrive.
const READ_CHUNK: usize = 4 * 1024;
/// The plain-http port of the channel hosts (protocol §2.3).
const HTTP_PORT: u16 = 80;

/// The one kept connection of a client's poll; empty while a poll is in flight.
#[derive(Debug, Default)]
pub(crate) struct LongPoll {
    kept: Mutex<Option<TcpStream>>,
}

/// What a poll request says besides its body (protocol §0.4 headers, §2.3).
#[derive(Clone, Copy, Debug)]
pub(crate) struct PollHead<'a> {
    /// The channel host: `Host` header, cookie domain, resolution key.
    pub host: &'a str,
    /// The request path.
    pub path: &'a str,
    /// The proxy-page Referer.
    pub referer: &'a str,
    /// The Origin sent on POSTs.
    pub origin: Option<&'a str>,
}

/// A complete answer.
#[derive(Debug)]
pub(crate) struct PollReply {
    /// HTTP status.
    pub status: u16,
    /// `Content-Type`, if any.
    pub content_type: Option<String>,
    /// The body, at most the cap.
    pub body: Vec<u8>,
}

/// How one attempt failed: the request could not even be written (the kept connection was dead:
/// one retry on a fresh one), or it was sent and the answer failed (no retry: hyper does not
/// retry a sent request either, and the server may have acted on it).
enum Failure {
    Unsent(Error),
    Sent(Error),
}

impl LongPoll {
    /// POSTs `form` (re-made by `body` for a retry) to `head`, holding nothing but the socket
    /// until the answer starts, and reads the answer capped at `cap`. Set-Cookie headers go to
    /// `jar`. The whole exchange is bounded by `config.poll_timeout`.
    pub(crate) async fn post(
        &self,
        endpoint: &'static str,
        config: &ClientConfig,
        jar: &CookieJar,
        head: PollHead<'_>,
        body: impl Fn() -> Result<String, Error>,
        cap: usize,
    ) -> Result<PollReply, Error> {
        let exchange = async {
            let request = || -> Result<Vec<u8>, Error> {
                let cookie = jar.header_for_parts(false, head.host, head.path);
                Ok(encode_post(&head, cookie.as_deref(), &body()?))
            };
            let mut kept = self.kept.lock().unwrap_or_else(PoisonError::into_inner).take();
            // A kept connection the server closed while it sat idle already shows its end.
            kept = kept.filter(still_open);
            // One call site for `attempt`, so the future holds one attempt's state, not two.
            loop {
                let (stream, fresh) = match kept.take() {
                    Some(stream) => (stream, false),
                    // Boxed: only a reconnect needs the resolver's and connector's state.
                    None => (Box::pin(connect(endpoint, config, head.host)).await?, true),
                };
                match attempt(endpoint, stream, request()?, jar, &head, cap).await {
                    Ok((reply, stream)) => return Ok(self.keep(reply, stream)),
                    // The kept connection died while idle: once more on a new one.
                    Err(Failure::Unsent(_)) if !fresh => {}
                    Err(Failure::Unsent(error) | Failure::Sent(error)) => return Err(error),
                }
            }
        };
        match tokio::time::timeout(config.poll_timeout, exchange).await {
            Ok(result) => result,
            Err(_) => Err(Error::transport(endpoint, TransportKind::Timeout, None)),
        }
    }

    fn keep(&self, reply: PollReply, stream: Option<TcpStream>) -> PollReply {
        if let Some(stream) = stream {
            *self.kept.lock().unwrap_or_else(PoisonError::into_inner) = Some(stream);
        }
        reply
    }
}

/// Sends the request, drops it, waits for the answer without a buffer, then reads it. Returns the
/// stream too when it may carry the next poll.
async fn attempt(
    endpoint: &'static str,
    mut stream: TcpStream,
    request: Vec<u8>,
    jar: &CookieJar,
    head: &PollHead<'_>,
    cap: usize,
) -> Result<(PollReply, Option<TcpStream>), Failure> {
    let closed = |io| Error::transport(endpoint, TransportKind::Closed, io);
    if let Err(io) = stream.write_all(&request).await {
        return Err(Failure::Unsent(closed(Some(io))));
    }
    drop(request);
    // Boxed, and only once bytes arrive: a held poll keeps just a pointer.
    let mut decoder: Option<Box<Decoder>> = None;
    let mut cookies_applied = false;
    let decoder = loop {
        if let Err(io) = stream.readable().await {
            return Err(Failure::Sent(closed(Some(io))));
        }
        let d = decoder.get_or_insert_with(|| Box::new(Decoder::new(cap)));
        d.buffer().reserve(READ_CHUNK);
        let complete = match stream.try_read_buf(d.buffer()) {
            Err(io) if io.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(io) => return Err(Failure::Sent(closed(Some(io)))),
            Ok(0) => d.finish_at_close().map(|()| true),
            Ok(_) => d.advance(),
        }
        .map_err(|fault| Failure::Sent(fault_error(endpoint, fault, cap)))?;
        if !cookies_applied && let Some(h) = d.head_mut() {
            // Protocol §7.7: cookies are read from every answer, as soon as its head is known.
            for cookie in std::mem::take(&mut h.set_cookies) {
                jar.store_set_cookie_from(&cookie, head.host, head.path);
            }
            cookies_applied = true;
        }
        if complete {
            break decoder;
        }
    };
    let Some(decoder) = decoder else {
        return Err(Failure::Sent(closed(None)));
    };
    let reusable = decoder.reusable();
    let (answer_head, body) = decoder.into_parts();
    let reply =
        PollReply { status: answer_head.status, content_type: answer_head.content_type, body };
    Ok((reply, reusable.then_some(stream)))
}

/// Whether a kept connection shows no end (FIN or RST) and no stray bytes.
fn still_open(stream: &TcpStream) -> bool {
    let mut probe = [0_u8; 1];
    matches!(stream.try_read(&mut probe), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
}

fn fault_error(endpoint: &'static str, fault: Fault, cap: usize) -> Error {
    match fault {
        Fault::TooLarge => Error::TooLarge { endpoint, limit: cap },
        Fault::Protocol => Error::transport(endpoint, TransportKind::Protocol, None),
        Fault::Truncated => Error::transport(endpoint, TransportKind::Closed, None),
    }
}

/// Resolves `host` (the configured override first, else DNS) and connects, within
/// [`CONNECT_TIMEOUT`].
async fn connect(
    endpoint: &'static str,
    config: &ClientConfig,
    host: &str,
) -> Result<TcpStream, Error> {
    let connecting = async {
        let addrs: Vec<SocketAddr> = match config.resolve.get(host) {
            // Like reqwest's override: port 0 means the scheme's port.
            Some(addr) if addr.port() == 0 => vec![SocketAddr::new(addr.ip(), HTTP_PORT)],
            Some(addr) => vec![*addr],
            None => tokio::net::lookup_host((host, HTTP_PORT)).await?.collect(),
        };
        let mut last = std::io::Error::new(std::io::ErrorKind::NotFound, "no address");
        for addr in addrs {
            match TcpStream::connect(addr).await {
                Ok(stream) => return Ok(stream),
                Err(error) => last = error,
            }
        }
        Err(last)
    };
    let connected = tokio::time::timeout(CONNECT_TIMEOUT, connecting).await;
    let stream = match connected {
        Ok(Ok(stream)) => stream,
        Ok(Err(io)) => return Err(Error::transport(endpoint, TransportKind::Connect, Some(io))),
        Err(_) => return Err(Error::transport(endpoint, TransportKind::Connect, None)),
    };
    // The request goes out in one write; no reason to let Nagle hold its tail.
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

/// The request bytes: the headers the web page sent (protocol §0.4), then the form body. A cookie
/// header that could break the request line framing is left out, as reqwest would refuse it.
fn encode_post(head: &PollHead<'_>, cookie: Option<&str>, form: &str) -> Vec<u8> {
    use std::fmt::Write as _;
    let mut text = String::with_capacity(512 + form.len() + cookie.map_or(0, str::len));
    let _ = write!(
        text,
        "POST {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: {}\r\nAccept: */*\r\nReferer: {}\r\n",
        head.path,
        head.host,
        hosts::USER_AGENT,
        head.referer
    );
    if let Some(origin) = head.origin {
        let _ = write!(text, "Origin: {origin}\r\n");
    }
    text.push_str("Content-Type: application/x-www-form-urlencoded; charset=UTF-8\r\n");
    if let Some(cookie) =
        cookie.filter(|c| c.bytes().all(|b| b == b'\t' || (b >= 0x20 && b != 0x7f)))
    {
        let _ = write!(text, "Cookie: {cookie}\r\n");
    }
    let _ = write!(text, "Content-Length: {}\r\nConnection: keep-alive\r\n\r\n", form.len());
    text.push_str(form);
    text.into_bytes()
}

#[cfg(test)]
mod tests;
