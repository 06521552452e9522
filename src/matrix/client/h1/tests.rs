//! Tests of the plain-http client against scripted servers: framing, keep-alive, a kept
//! connection the server closed, limits and timeouts.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::*;

/// A server answering connection `i` with the answers of `script[i]`, one per request, then
/// closing it (a connection beyond the script gets no answer). Requests are recorded.
struct Scripted {
    url: url::Url,
    accepted: Arc<AtomicUsize>,
    requests: Arc<Mutex<Vec<Vec<u8>>>>,
}

async fn scripted(script: Vec<Vec<&'static str>>) -> Scripted {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = url::Url::parse(&format!("http://{}", listener.local_addr().unwrap())).unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let requests = Arc::new(Mutex::new(Vec::new()));
    let (count, seen) = (accepted.clone(), requests.clone());
    tokio::spawn(async move {
        for answers in script.into_iter().chain(std::iter::repeat_with(Vec::new)) {
            let (mut stream, _) = listener.accept().await.unwrap();
            count.fetch_add(1, Ordering::SeqCst);
            let seen = seen.clone();
            tokio::spawn(async move {
                if answers.is_empty() {
                    // Holds the connection open without answering.
                    tokio::time::sleep(Duration::from_secs(30)).await;
                }
                for answer in answers {
                    let Some(request) = read_request(&mut stream).await else { return };
                    seen.lock().unwrap().push(request);
                    stream.write_all(answer.as_bytes()).await.unwrap();
                }
            });
        }
    });
    Scripted { url, accepted, requests }
}

/// One request: head up to the blank line, then `Content-Length` bytes.
async fn read_request(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let mut buf = Vec::new();
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length: "))
                .map_or(0, |v| v.trim().parse().unwrap());
            while buf.len() < end + 4 + length {
                if stream.read_buf(&mut buf).await.ok()? == 0 {
                    return None;
                }
            }
            return Some(buf);
        }
        if stream.read_buf(&mut buf).await.ok()? == 0 {
            return None;
        }
    }
}

fn client(url: &url::Url, timeout_ms: u64) -> H1 {
    let timeout = Duration::from_millis(timeout_ms);
    H1::for_url(url, "qqbridge-test", timeout, timeout).unwrap()
}

fn request(method: Method, path: &str, body: &str) -> http::Request<Vec<u8>> {
    http::Request::builder()
        .method(method)
        .uri(format!("http://ignored.example{path}"))
        .header("authorization", "Bearer secret")
        .header("content-type", "application/json")
        .body(body.as_bytes().to_vec())
        .unwrap()
}

const OK: &str = "HTTP/1.1 200 OK\r\nContent-Length: 17\r\n\r\n{\"event_id\":\"$a\"}";

#[test]
fn test_for_url_takes_plain_http_only() {
    let cases = [
        ("http://127.0.0.1:8008", Some("127.0.0.1:8008")),
        ("http://matrix.local/", Some("matrix.local")),
        ("http://[::1]:8008", Some("[::1]:8008")),
        ("https://matrix.example.org", None),
    ];
    for (url, authority) in cases {
        let h1 = H1::for_url(&url::Url::parse(url).unwrap(), "ua", Duration::ZERO, Duration::ZERO);
        assert_eq!(h1.as_ref().map(|h| h.authority.as_str()), authority, "{url}");
    }
    let v6 = H1::for_url(
        &url::Url::parse("http://[::1]:8008").unwrap(),
        "ua",
        Duration::ZERO,
        Duration::ZERO,
    );
    assert_eq!(v6.map(|h| (h.host, h.port)), Some(("::1".to_owned(), 8008)));
}

#[tokio::test]
async fn test_request_is_written_whole_and_the_connection_is_kept() {
    let server = scripted(vec![vec![OK, OK]]).await;
    let h1 = client(&server.url, 2000);
    for txn in ["t1", "t2"] {
        let put = request(Method::PUT, &format!("/_matrix/send/{txn}?user_id=%40a%3Ahs"), "{}");
        let answer = h1.exchange(&put, 1000).await.unwrap();
        assert_eq!(answer.status(), 200);
        assert_eq!(answer.body(), b"{\"event_id\":\"$a\"}");
    }
    assert_eq!(server.accepted.load(Ordering::SeqCst), 1, "one kept connection");
    let first = String::from_utf8(server.requests.lock().unwrap()[0].clone()).unwrap();
    let host = server.url.host_str().unwrap();
    let port = server.url.port().unwrap();
    let expected = format!(
        "PUT /_matrix/send/t1?user_id=%40a%3Ahs HTTP/1.1\r\nHost: {host}:{port}\r\n\
         User-Agent: qqbridge-test\r\nauthorization: Bearer secret\r\n\
         content-type: application/json\r\nContent-Length: 2\r\n\r\n{{}}"
    );
    assert_eq!(first, expected);
}

#[tokio::test]
async fn test_answer_framings() {
    let cases: &[(&str, u16, &str)] = &[
        (
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4;ext=1\r\n{\"a\"\r\n3\r\n:1}\r\n0\r\nX-T: 1\r\n\r\n",
            200,
            "{\"a\":1}",
        ),
        (
            "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\n{}",
            201,
            "{}",
        ),
        ("HTTP/1.1 204 No Content\r\n\r\n", 204, ""),
        ("HTTP/1.1 404 Not Found\r\ncontent-length: 5\r\n\r\nnope!", 404, "nope!"),
        ("HTTP/1.0 200 OK\r\n\r\nuntil close", 200, "until close"),
    ];
    for (answer, status, body) in cases {
        let server = scripted(vec![vec![answer]]).await;
        let got = client(&server.url, 2000).exchange(&request(Method::GET, "/x", ""), 1000).await;
        let got = got.unwrap_or_else(|e| panic!("{answer:?}: {e:?}"));
        assert_eq!((got.status().as_u16(), got.body().as_slice()), (*status, body.as_bytes()));
    }
}

#[tokio::test]
async fn test_a_kept_connection_closed_by_the_server_is_replaced_for_a_put_not_a_post() {
    // Each connection answers once and closes without saying so.
    let server = scripted(vec![vec![OK], vec![OK], vec![OK]]).await;
    let h1 = client(&server.url, 2000);
    h1.exchange(&request(Method::PUT, "/a", "{}"), 1000).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    // The kept connection is dead: the PUT goes again on a new one.
    h1.exchange(&request(Method::PUT, "/b", "{}"), 1000).await.unwrap();
    assert_eq!(server.accepted.load(Ordering::SeqCst), 2);
    tokio::time::sleep(Duration::from_millis(50)).await;
    // A POST is never repeated: it does not go on a kept connection the server has closed.
    h1.exchange(&request(Method::POST, "/c", "{}"), 1000).await.unwrap();
    assert_eq!(server.accepted.load(Ordering::SeqCst), 3);
    let paths: Vec<String> = server
        .requests
        .lock()
        .unwrap()
        .iter()
        .map(|r| String::from_utf8_lossy(r).split(' ').nth(1).unwrap().to_owned())
        .collect();
    // The PUT written on the dead connection reached nobody; the POST was written once.
    assert_eq!(paths, ["/a", "/b", "/c"]);
}

#[tokio::test]
async fn test_connection_close_is_honoured() {
    let close = "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}";
    let server = scripted(vec![vec![close], vec![close]]).await;
    let h1 = client(&server.url, 2000);
    for _ in 0..2 {
        h1.exchange(&request(Method::POST, "/x", "{}"), 1000).await.unwrap();
    }
    assert_eq!(server.accepted.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn test_refused_answers() {
    let cases: &[(&str, usize, &str)] = &[
        ("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n", 10, "too large"),
        ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nff\r\n", 10, "too large"),
        (
            "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n{}",
            10,
            "homeserver sent an invalid Content-Length",
        ),
        ("SMTP ready\r\n\r\n", 10, "homeserver sent a malformed head"),
        ("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n{}", 10, "homeserver sent a truncated body"),
        (
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            10,
            "homeserver sent an invalid chunk size",
        ),
    ];
    for (answer, cap, want) in cases {
        let server = scripted(vec![vec![answer]]).await;
        let err = client(&server.url, 2000).exchange(&request(Method::GET, "/x", ""), *cap).await;
        let text = match err {
            Err(H1Error::TooLarge) => "too large".to_owned(),
            Err(H1Error::Io(e)) => e.to_string(),
            Ok(answer) => panic!("{answer:?} accepted from {answer:?}"),
        };
        assert!(text.starts_with(want), "{answer:?}: {text}");
    }
}

#[tokio::test]
async fn test_silence_times_out_and_a_closed_port_fails() {
    let server = scripted(vec![vec![]]).await;
    let err = client(&server.url, 100).exchange(&request(Method::GET, "/x", ""), 10).await;
    assert!(matches!(&err, Err(H1Error::Io(e)) if e.kind() == io::ErrorKind::TimedOut), "{err:?}");
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let closed = url::Url::parse(&format!("http://127.0.0.1:{port}")).unwrap();
    let err = client(&closed, 1000).exchange(&request(Method::GET, "/x", ""), 10).await;
    assert!(
        matches!(&err, Err(H1Error::Io(e)) if e.kind() == io::ErrorKind::ConnectionRefused),
        "{err:?}"
    );
}
