//! Tests of the long poll: the answer decoder (data-driven, split reads), the request bytes,
//! and exchanges against scripted local servers (reuse, reconnects, failures, future size).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::decode::{Decoder, Fault};
use super::*;

const CAP: usize = 64;

/// (name, raw answer, expected (status, body, reusable) or fault)
type Case = (&'static str, &'static [u8], Result<(u16, &'static [u8], bool), Fault>);

const CASES: [Case; 15] = [
    ("length", b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\n{\"retcode\":0}", Ok((200, b"{\"retcode\":0}", true))),
    ("length zero", b"HTTP/1.1 504 Gateway Timeout\r\ncontent-length: 0\r\n\r\n", Ok((504, b"", true))),
    ("chunked", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: 1\r\n\r\n", Ok((200, b"hello world", true))),
    ("chunked bare lf", b"HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\nA\n0123456789\n0\n\n", Ok((200, b"0123456789", true))),
    ("close framed", b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nbody until close", Ok((200, b"body until close", false))),
    ("http/1.0", b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", Ok((200, b"ok", false))),
    ("http/1.0 keep-alive", b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok", Ok((200, b"ok", true))),
    ("connection close", b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok", Ok((200, b"ok", false))),
    ("continue first", b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx", Ok((200, b"x", true))),
    ("oversize length", b"HTTP/1.1 200 OK\r\nContent-Length: 65\r\n\r\n", Err(Fault::TooLarge)),
    ("oversize chunked", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n41\r\n", Err(Fault::TooLarge)),
    ("garbage status", b"SSH-2.0-OpenSSH_9.6\r\n\r\n", Err(Fault::Protocol)),
    ("bad length", b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", Err(Fault::Protocol)),
    ("bad chunk size", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", Err(Fault::Protocol)),
    ("early eof", b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", Err(Fault::Truncated)),
];

/// Feeds `pieces` in order, then a close if the answer is not complete by then.
fn run(pieces: &[&[u8]]) -> Result<(u16, Vec<u8>, bool), Fault> {
    let mut decoder = Decoder::new(CAP);
    let mut complete = false;
    for piece in pieces {
        decoder.buffer().extend_from_slice(piece);
        complete = decoder.advance()?;
        if complete {
            break;
        }
    }
    if !complete {
        decoder.finish_at_close()?;
    }
    let reusable = decoder.reusable();
    let (head, body) = decoder.into_parts();
    Ok((head.status, body, reusable))
}

#[test]
fn test_decoder_cases_whole_split_and_bytewise() {
    for (name, raw, want) in CASES {
        let want = want.map(|(s, b, k)| (s, b.to_vec(), k));
        assert_eq!(run(&[raw]), want, "{name}: whole");
        for at in 0..=raw.len() {
            let (a, b) = raw.split_at(at);
            assert_eq!(run(&[a, b]), want, "{name}: split at {at}");
        }
        let bytes: Vec<&[u8]> = raw.chunks(1).collect();
        assert_eq!(run(&bytes), want, "{name}: byte by byte");
    }
}

#[test]
fn test_decoder_head_fields_and_limits() {
    let mut decoder = Decoder::new(CAP);
    assert!(decoder.head_mut().is_none());
    decoder.buffer().extend_from_slice(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nSet-Cookie: a=1; Domain=qq.com\r\n\
          Set-Cookie: b=2\r\nContent-Length: 1\r\n\r\n",
    );
    assert_eq!(decoder.advance(), Ok(false));
    let head = decoder.head_mut().unwrap();
    assert_eq!(head.content_type.as_deref(), Some("text/plain"));
    assert_eq!(head.set_cookies, vec!["a=1; Domain=qq.com".to_owned(), "b=2".to_owned()]);
    // A head that never ends, and a chunk-size line that never ends, are refused.
    let mut endless = Decoder::new(CAP);
    endless.buffer().extend_from_slice(b"HTTP/1.1 200 OK\r\n");
    endless.buffer().extend(std::iter::repeat_n(b'x', decode::MAX_HEAD_BYTES));
    assert_eq!(endless.advance(), Err(Fault::Protocol));
    let long_line =
        [&b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"[..], &[b'0'; 5000]].concat();
    assert_eq!(run(&[&long_line]), Err(Fault::Protocol));
    // Bytes after the answer in the same read: the connection is not reused.
    assert_eq!(
        run(&[b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nxy"]),
        Ok((200, b"x".to_vec(), false))
    );
    // A close before any byte is not an answer.
    assert_eq!(run(&[]), Err(Fault::Truncated));
}

#[test]
fn test_request_bytes() {
    let head = PollHead {
        host: "d1.web2.qq.com",
        path: "/channel/poll2",
        referer: hosts::REFERER_D1,
        origin: Some("http://d1.web2.qq.com"),
    };
    let text = String::from_utf8(encode_post(&head, Some("a=1; b=2"), "r=%7B%7D")).unwrap();
    let expected = format!(
        "POST /channel/poll2 HTTP/1.1\r\nHost: d1.web2.qq.com\r\nUser-Agent: {}\r\nAccept: */*\r\n\
         Referer: {}\r\nOrigin: http://d1.web2.qq.com\r\n\
         Content-Type: application/x-www-form-urlencoded; charset=UTF-8\r\nCookie: a=1; b=2\r\n\
         Content-Length: 8\r\nConnection: keep-alive\r\n\r\nr=%7B%7D",
        hosts::USER_AGENT,
        hosts::REFERER_D1
    );
    assert_eq!(text, expected);
    let injected = String::from_utf8(encode_post(&head, Some("a=1\r\nX: y"), "")).unwrap();
    assert!(!injected.contains("Cookie") && !injected.contains("X: y"), "{injected}");
}

/// A scripted answer: close the connection without answering.
const DROP: &[u8] = b"drop";

/// One scripted connection: the answers to its requests in order; after the last, it closes.
type Script = Vec<&'static [u8]>;

/// Serves `scripts` (one per accepted connection) and records every request's text.
async fn server(scripts: Vec<Script>) -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        for script in scripts {
            let (mut socket, _) = listener.accept().await.unwrap();
            let log = log.clone();
            tokio::spawn(async move {
                for answer in script {
                    let mut request = Vec::new();
                    let mut buf = [0_u8; 1024];
                    while !complete_request(&request) {
                        let n = socket.read(&mut buf).await.unwrap();
                        if n == 0 {
                            return;
                        }
                        request.extend_from_slice(&buf[..n]);
                    }
                    log.lock().unwrap().push(String::from_utf8(request).unwrap());
                    if answer == DROP {
                        return;
                    }
                    if answer.is_empty() {
                        // Hold the poll until the client gives up.
                        tokio::time::sleep(Duration::from_secs(30)).await;
                    }
                    socket.write_all(answer).await.unwrap();
                }
            });
        }
    });
    (addr, seen)
}

fn complete_request(bytes: &[u8]) -> bool {
    let text = String::from_utf8_lossy(bytes);
    let Some(end) = text.find("\r\n\r\n") else { return false };
    let length = text
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    bytes.len() >= end + 4 + length
}

fn config(addr: SocketAddr, timeout: Duration) -> ClientConfig {
    let resolve = BTreeMap::from([("d1.web2.qq.com".to_owned(), addr)]);
    ClientConfig { resolve: Arc::new(resolve), poll_timeout: timeout, ..ClientConfig::default() }
}

const HEAD: PollHead<'static> = PollHead {
    host: "d1.web2.qq.com",
    path: "/channel/poll2",
    referer: "http://d1.web2.qq.com/proxy.html?v=20151105001&callback=1&id=2",
    origin: Some("http://d1.web2.qq.com"),
};

const IDLE: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 27\r\nSet-Cookie: seen=1; Domain=qq.com; Path=/\r\n\r\n{\"retcode\":102,\"errmsg\":\"\"}";
const CLOSING: &[u8] = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok";

async fn poll(lp: &LongPoll, config: &ClientConfig, jar: &CookieJar) -> Result<PollReply, Error> {
    lp.post("poll2", config, jar, HEAD, || Ok("r=%7B%7D".to_owned()), CAP).await
}

#[tokio::test]
async fn test_keep_alive_reuse_cookies_and_reconnects() {
    // Connection 1: two answers on one socket, then the server closes it while it is kept (a
    // dead kept connection: not used, connection 2 instead). Connection 2 says close.
    let (addr, seen) = server(vec![vec![IDLE, IDLE], vec![CLOSING], vec![IDLE]]).await;
    let config = config(addr, Duration::from_secs(5));
    let jar = CookieJar::new();
    jar.set("ptwebqq", "p1", "qq.com");
    let lp = LongPoll::default();
    let idle: &[u8] = b"{\"retcode\":102,\"errmsg\":\"\"}";
    for (i, want) in [idle, idle, b"ok", idle].into_iter().enumerate() {
        if i == 2 {
            // Let the server's close of the idle kept connection arrive.
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let reply = poll(&lp, &config, &jar).await.unwrap();
        assert_eq!((reply.status, reply.body.as_slice()), (200, want));
    }
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 4, "two on the kept connection, one each on two fresh ones");
    assert!(seen[0].starts_with("POST /channel/poll2 HTTP/1.1\r\nHost: d1.web2.qq.com\r\n"));
    assert!(seen[0].contains("\r\nCookie: ptwebqq=p1\r\n"), "{}", seen[0]);
    assert!(seen[1].contains("\r\nCookie: ptwebqq=p1; seen=1\r\n"), "{}", seen[1]);
    assert!(seen[3].ends_with("\r\n\r\nr=%7B%7D"));
    assert_eq!(jar.get("seen", "qq.com").as_deref(), Some("1"));
}

#[tokio::test]
async fn test_failures_map_to_network_errors() {
    // Held past the poll timeout.
    let (addr, _) = server(vec![vec![b""]]).await;
    let lp = LongPoll::default();
    let jar = CookieJar::new();
    let err = poll(&lp, &config(addr, Duration::from_millis(300)), &jar).await.unwrap_err();
    assert!(matches!(&err, Error::Network { source, .. } if source.is_timeout()), "{err:?}");
    assert!(err.is_transient());
    // Nothing listening: a connect error (a send would be retried as surely not delivered).
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap();
    let err = poll(&lp, &config(closed, Duration::from_secs(5)), &jar).await.unwrap_err();
    assert!(matches!(&err, Error::Network { source, .. } if source.is_connect()), "{err:?}");
    // A kept connection closed after the request was sent: an error, not a silent retry (the
    // emulator's reset fault must reach the poller); the next poll connects afresh.
    let (addr, seen) = server(vec![vec![IDLE, DROP], vec![IDLE]]).await;
    let config_ok = config(addr, Duration::from_secs(5));
    poll(&lp, &config_ok, &jar).await.unwrap();
    let err = poll(&lp, &config_ok, &jar).await.unwrap_err();
    assert!(err.to_string().contains("before the answer was complete"), "{err}");
    assert_eq!(poll(&lp, &config_ok, &jar).await.unwrap().status, 200);
    assert_eq!(seen.lock().unwrap().len(), 3);
    // Garbage, a truncated body, an oversized body, and a close before any byte.
    let truncated: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc";
    let big: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n";
    let (addr, _) =
        server(vec![vec![b"garbage\r\n\r\n"], vec![truncated], vec![big], vec![]]).await;
    let config = config(addr, Duration::from_secs(5));
    for want in [
        "malformed http answer",
        "before the answer was complete",
        "larger than 64",
        "before the answer",
    ] {
        let err = poll(&lp, &config, &jar).await.unwrap_err();
        assert!(err.to_string().contains(want), "{err} does not say {want}");
        assert!(err.is_transient(), "{err}");
    }
}

#[tokio::test]
async fn test_held_poll_future_is_small() {
    let lp = LongPoll::default();
    let jar = CookieJar::new();
    let config = ClientConfig::default();
    let future = poll(&lp, &config, &jar);
    let size = size_of_val(&future);
    // A reqwest poll held ~12.8 KiB of request future (plus ~30 KiB of buffers); this one
    // is a socket, a timer and a few references.
    assert!(size <= 1024, "a held poll's future is {size} bytes");
}
