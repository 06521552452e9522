//! [`H1`]: a small HTTP/1.1 keep-alive client for a plain-http homeserver (the bridge beside its
//! homeserver, on loopback or a private network): one exchange per connection at a time, idle
//! connections kept for the next. reqwest stays for https and for media downloads.

use std::io;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use http::header::{CONNECTION, CONTENT_LENGTH, HOST, TRANSFER_ENCODING};
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// First read buffer: a homeserver's answer to a send is a few hundred bytes, and a buffer this
/// small stays in the allocator's per-thread cache.
const FIRST_READ: usize = 1000;
/// Bytes asked for per read once an answer is larger.
const READ_CHUNK: usize = 8 * 1024;
/// Largest answer head (status line and headers) accepted.
const MAX_HEAD_BYTES: usize = 64 * 1024;
/// Most headers an answer may have.
const MAX_HEADERS: usize = 64;
/// Longest chunk-size or trailer line of a chunked body.
const MAX_LINE_BYTES: usize = 4 * 1024;
/// Idle connections kept (the bridge actor runs at most 64 lanes at once).
const MAX_IDLE: usize = 64;
/// Bodies up to this size go out in the same write as the head.
const INLINE_BODY_BYTES: usize = 64 * 1024;

/// Why an exchange failed.
#[derive(Debug)]
pub(super) enum H1Error {
    /// No usable answer: connect, write or read failed, the exchange timed out, or the answer
    /// was not HTTP/1.x.
    Io(io::Error),
    /// The answer's body is over the cap.
    TooLarge,
}

/// How one attempt on one connection failed.
enum Failure {
    /// The request was not written: the server cannot have acted on it.
    Unsent(io::Error),
    /// Written, and the connection ended before any byte of an answer.
    NoAnswer(io::Error),
    /// Anything after the answer began, or a refused answer.
    Broken(H1Error),
}

/// The client of one homeserver (`http://host[:port]`).
#[derive(Debug)]
pub(super) struct H1 {
    host: String,
    port: u16,
    /// The `Host` header: the URL's host, with its port when the URL names one.
    authority: String,
    user_agent: &'static str,
    connect_timeout: Duration,
    timeout: Duration,
    idle: Mutex<Vec<TcpStream>>,
}

/// How an answer's body is delimited (RFC 9112 §6.3).
enum Framing {
    Empty,
    Length(usize),
    Chunked,
    UntilClose,
}

/// What an answer's head says.
struct Head {
    status: u16,
    headers: HeaderMap,
    framing: Framing,
    /// The connection may carry another exchange after this one.
    keep_alive: bool,
}

impl H1 {
    /// A client for `url` when it is plain `http` with a host; `None` otherwise. `timeout`
    /// bounds a whole exchange, `connect_timeout` a new connection. No IO.
    pub(super) fn for_url(
        url: &url::Url,
        user_agent: &'static str,
        connect_timeout: Duration,
        timeout: Duration,
    ) -> Option<H1> {
        if url.scheme() != "http" {
            return None;
        }
        let host = url.host_str()?.to_owned();
        let port = url.port_or_known_default()?;
        let authority = match url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.clone(),
        };
        // `host_str` keeps an IPv6 literal's brackets, which `connect` does not take.
        let host = host.trim_start_matches('[').trim_end_matches(']').to_owned();
        Some(H1 {
            host,
            port,
            authority,
            user_agent,
            connect_timeout,
            timeout,
            idle: Mutex::new(Vec::new()),
        })
    }

    /// Sends `request` (its URI's path and query; the authority is this client's) and reads
    /// the whole answer, at most `max_bytes` of body. A kept connection the server closed
    /// meanwhile is replaced once: always when the request could not be written, and for
    /// idempotent methods when the connection ended before any answer.
    pub(super) async fn exchange(
        &self,
        request: &http::Request<Vec<u8>>,
        max_bytes: usize,
    ) -> Result<http::Response<Vec<u8>>, H1Error> {
        match tokio::time::timeout(self.timeout, self.exchange_untimed(request, max_bytes)).await {
            Ok(result) => result,
            Err(_) => Err(H1Error::Io(io::Error::new(
                io::ErrorKind::TimedOut,
                "the homeserver did not answer in time",
            ))),
        }
    }

    async fn exchange_untimed(
        &self,
        request: &http::Request<Vec<u8>>,
        max_bytes: usize,
    ) -> Result<http::Response<Vec<u8>>, H1Error> {
        let head = self.request_head(request);
        let kept = self.idle.lock().unwrap_or_else(PoisonError::into_inner).pop();
        // A request that must not be repeated only goes on a kept connection that shows no
        // sign of the server having closed it (one non-blocking read).
        let kept = kept.filter(|stream| idempotent(request.method()) || looks_open(stream));
        if let Some(mut stream) = kept {
            match self.once(&mut stream, &head, request, max_bytes).await {
                Ok((answer, keep)) => {
                    self.keep(stream, keep);
                    return Ok(answer);
                }
                Err(Failure::Unsent(_)) => {}
                Err(Failure::NoAnswer(_)) if idempotent(request.method()) => {}
                Err(Failure::NoAnswer(error)) => return Err(H1Error::Io(error)),
                Err(Failure::Broken(error)) => return Err(error),
            }
        }
        let mut stream = self.connect().await.map_err(H1Error::Io)?;
        match self.once(&mut stream, &head, request, max_bytes).await {
            Ok((answer, keep)) => {
                self.keep(stream, keep);
                Ok(answer)
            }
            Err(Failure::Unsent(error) | Failure::NoAnswer(error)) => Err(H1Error::Io(error)),
            Err(Failure::Broken(error)) => Err(error),
        }
    }

    fn keep(&self, stream: TcpStream, keep: bool) {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if keep && idle.len() < MAX_IDLE {
            idle.push(stream);
        }
    }

    async fn connect(&self) -> io::Result<TcpStream> {
        let connect = TcpStream::connect((self.host.as_str(), self.port));
        let stream =
            tokio::time::timeout(self.connect_timeout, connect).await.map_err(|_| {
                io::Error::new(io::ErrorKind::TimedOut, "connecting to the homeserver timed out")
            })??;
        // Each request is one write and waits for its answer: Nagle would only delay it.
        stream.set_nodelay(true)?;
        Ok(stream)
    }

    /// The request line and headers (and a small body) as one buffer.
    fn request_head(&self, request: &http::Request<Vec<u8>>) -> Vec<u8> {
        let body = request.body();
        let target = request.uri().path_and_query().map_or("/", |p| p.as_str());
        let inline = if body.len() <= INLINE_BODY_BYTES { body.len() } else { 0 };
        let mut out = Vec::with_capacity(256 + target.len() + inline);
        for part in [request.method().as_str(), " ", target, " HTTP/1.1\r\nHost: "] {
            out.extend_from_slice(part.as_bytes());
        }
        out.extend_from_slice(self.authority.as_bytes());
        out.extend_from_slice(b"\r\nUser-Agent: ");
        out.extend_from_slice(self.user_agent.as_bytes());
        out.extend_from_slice(b"\r\n");
        for (name, value) in request.headers() {
            if [HOST, CONTENT_LENGTH, CONNECTION, TRANSFER_ENCODING].contains(name) {
                continue;
            }
            out.extend_from_slice(name.as_str().as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        // Synapse refuses a body-carrying method without a length, even for 0 bytes.
        if !body.is_empty()
            || matches!(*request.method(), Method::POST | Method::PUT | Method::PATCH)
        {
            out.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
        }
        out.extend_from_slice(b"\r\n");
        if inline > 0 {
            out.extend_from_slice(body);
        }
        out
    }

    /// One exchange on `stream`: the answer, and whether the connection can be kept.
    async fn once(
        &self,
        stream: &mut TcpStream,
        head: &[u8],
        request: &http::Request<Vec<u8>>,
        max_bytes: usize,
    ) -> Result<(http::Response<Vec<u8>>, bool), Failure> {
        stream.write_all(head).await.map_err(Failure::Unsent)?;
        let body = request.body();
        if body.len() > INLINE_BODY_BYTES {
            stream.write_all(body).await.map_err(Failure::Unsent)?;
        }
        let mut buf = Vec::with_capacity(FIRST_READ);
        let (head_len, head) = read_head(stream, &mut buf).await?;
        let framing = if *request.method() == Method::HEAD { Framing::Empty } else { head.framing };
        let (body, clean) = read_body(stream, buf, head_len, framing, max_bytes).await?;
        let mut answer = http::Response::new(body);
        *answer.status_mut() = http::StatusCode::from_u16(head.status)
            .map_err(|_| Failure::Broken(invalid("an answer status outside 100-999")))?;
        *answer.headers_mut() = head.headers;
        Ok((answer, head.keep_alive && clean))
    }
}

/// Whether an idle kept connection is still open: nothing to read, no end of stream.
fn looks_open(stream: &TcpStream) -> bool {
    let mut probe = [0u8; 1];
    matches!(stream.try_read(&mut probe), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
}

/// Whether repeating `method` is harmless (RFC 9110 §9.2.2): a PUT with a transaction id is.
fn idempotent(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::PUT | Method::DELETE | Method::OPTIONS)
}

fn invalid(what: &str) -> H1Error {
    H1Error::Io(io::Error::new(io::ErrorKind::InvalidData, format!("homeserver sent {what}")))
}

/// Appends what `stream` has (into the spare capacity, grown when little is left) to `buf`;
/// how many bytes (0 at the end).
async fn fill(stream: &mut TcpStream, buf: &mut Vec<u8>) -> io::Result<usize> {
    if buf.capacity() - buf.len() < FIRST_READ / 4 {
        buf.reserve(READ_CHUNK.max(buf.len()));
    }
    stream.read_buf(buf).await
}

/// Reads until `buf` holds a complete final answer head (1xx heads are skipped): its length
/// and what it says.
async fn read_head(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Result<(usize, Head), Failure> {
    loop {
        if let Some((len, head)) = parse_head(buf)? {
            if (100..200).contains(&head.status) {
                buf.drain(..len);
                continue;
            }
            return Ok((len, head));
        }
        if buf.len() > MAX_HEAD_BYTES {
            return Err(Failure::Broken(invalid("an answer head over 64 KiB")));
        }
        let began = !buf.is_empty();
        match fill(stream, buf).await {
            Ok(0) if began => return Err(Failure::Broken(invalid("a truncated answer head"))),
            Ok(0) => {
                let eof = io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed");
                return Err(Failure::NoAnswer(eof));
            }
            Ok(_) => {}
            Err(error) if began => return Err(Failure::Broken(H1Error::Io(error))),
            Err(error) => return Err(Failure::NoAnswer(error)),
        }
    }
}

/// The head at the start of `buf`, if complete.
fn parse_head(buf: &[u8]) -> Result<Option<(usize, Head)>, Failure> {
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Response::new(&mut slots);
    let len = match parsed.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(error) => return Err(Failure::Broken(invalid(&format!("a malformed head ({error})")))),
    };
    let status = parsed.code.unwrap_or(0);
    let mut headers = HeaderMap::with_capacity(parsed.headers.len());
    let mut length: Option<usize> = None;
    let (mut encoded, mut chunked, mut close) = (false, false, parsed.version != Some(1));
    for header in parsed.headers.iter() {
        let (Ok(name), Ok(value)) =
            (HeaderName::from_bytes(header.name.as_bytes()), HeaderValue::from_bytes(header.value))
        else {
            continue;
        };
        if name == CONTENT_LENGTH {
            let n = std::str::from_utf8(header.value).ok().and_then(|v| v.trim().parse().ok());
            match (n, length) {
                (Some(n), None) => length = Some(n),
                (Some(n), Some(seen)) if n == seen => {}
                // RFC 9112 §6.3: an invalid or conflicting length is an unrecoverable error.
                _ => return Err(Failure::Broken(invalid("an invalid Content-Length"))),
            }
        } else if name == TRANSFER_ENCODING {
            encoded = true;
            // Only a final `chunked` delimits the body (RFC 9112 §6.3).
            chunked = value.to_str().is_ok_and(|v| {
                v.rsplit(',').next().is_some_and(|last| last.trim().eq_ignore_ascii_case("chunked"))
            });
        } else if name == CONNECTION {
            let v = value.to_str().unwrap_or_default().to_ascii_lowercase();
            close |= v.split(',').any(|t| t.trim() == "close");
            if parsed.version == Some(0) && v.split(',').any(|t| t.trim() == "keep-alive") {
                close = false;
            }
        }
        headers.append(name, value);
    }
    // RFC 9112 §6.3: no body for 1xx, 204 and 304; chunked wins over a length.
    let framing = if (100..200).contains(&status) || status == 204 || status == 304 {
        Framing::Empty
    } else if chunked {
        Framing::Chunked
    } else if encoded {
        Framing::UntilClose
    } else if let Some(n) = length {
        Framing::Length(n)
    } else {
        Framing::UntilClose
    };
    let keep_alive = !close && !matches!(framing, Framing::UntilClose);
    Ok(Some((len, Head { status, headers, framing, keep_alive })))
}

/// The body after the head's `start` bytes of `buf`, and whether the connection ended clean
/// (no bytes beyond the body).
async fn read_body(
    stream: &mut TcpStream,
    mut buf: Vec<u8>,
    start: usize,
    framing: Framing,
    max_bytes: usize,
) -> Result<(Vec<u8>, bool), Failure> {
    let broken = |error: io::Error| Failure::Broken(H1Error::Io(error));
    let eof = || Failure::Broken(invalid("a truncated body"));
    match framing {
        Framing::Empty => Ok((Vec::new(), buf.len() == start)),
        Framing::Length(n) => {
            if n > max_bytes {
                return Err(Failure::Broken(H1Error::TooLarge));
            }
            let end = start.checked_add(n).ok_or_else(eof)?;
            while buf.len() < end {
                if fill(stream, &mut buf).await.map_err(broken)? == 0 {
                    return Err(eof());
                }
            }
            let clean = buf.len() == end;
            buf.truncate(end);
            buf.drain(..start);
            Ok((buf, clean))
        }
        Framing::UntilClose => {
            while fill(stream, &mut buf).await.map_err(broken)? > 0 {
                if buf.len().saturating_sub(start) > max_bytes {
                    return Err(Failure::Broken(H1Error::TooLarge));
                }
            }
            buf.drain(..start);
            Ok((buf, false))
        }
        Framing::Chunked => read_chunked(stream, buf, start, max_bytes).await,
    }
}

/// A chunked body (RFC 9112 §7.1), trailers read and dropped.
async fn read_chunked(
    stream: &mut TcpStream,
    mut buf: Vec<u8>,
    mut pos: usize,
    max_bytes: usize,
) -> Result<(Vec<u8>, bool), Failure> {
    let mut body = Vec::new();
    loop {
        let line = read_line(stream, &mut buf, &mut pos).await?;
        let size = line.split(|b| *b == b';').next().unwrap_or_default();
        let size = std::str::from_utf8(size)
            .ok()
            .and_then(|s| usize::from_str_radix(s.trim(), 16).ok())
            .ok_or_else(|| Failure::Broken(invalid("an invalid chunk size")))?;
        if size == 0 {
            // Trailer fields up to the empty line.
            while !read_line(stream, &mut buf, &mut pos).await?.is_empty() {}
            return Ok((body, buf.len() == pos));
        }
        if body.len().saturating_add(size) > max_bytes {
            return Err(Failure::Broken(H1Error::TooLarge));
        }
        let end = pos.checked_add(size).ok_or_else(|| Failure::Broken(invalid("a huge chunk")))?;
        while buf.len() < end.saturating_add(2) {
            if fill(stream, &mut buf).await.map_err(|e| Failure::Broken(H1Error::Io(e)))? == 0 {
                return Err(Failure::Broken(invalid("a truncated chunk")));
            }
        }
        body.extend_from_slice(buf.get(pos..end).unwrap_or_default());
        if buf.get(end..end.saturating_add(2)) != Some(b"\r\n".as_slice()) {
            return Err(Failure::Broken(invalid("a chunk without its CRLF")));
        }
        pos = end.saturating_add(2);
    }
}

/// The next CRLF-ended line from `pos` (without the CRLF), reading more as needed.
async fn read_line(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    pos: &mut usize,
) -> Result<Vec<u8>, Failure> {
    loop {
        let rest = buf.get(*pos..).unwrap_or_default();
        if let Some(at) = rest.windows(2).position(|w| w == b"\r\n") {
            let line = rest.get(..at).unwrap_or_default().to_vec();
            *pos += at + 2;
            return Ok(line);
        }
        if rest.len() > MAX_LINE_BYTES {
            return Err(Failure::Broken(invalid("an over-long chunk line")));
        }
        if fill(stream, buf).await.map_err(|e| Failure::Broken(H1Error::Io(e)))? == 0 {
            return Err(Failure::Broken(invalid("a truncated chunked body")));
        }
    }
}

#[cfg(test)]
mod tests;
