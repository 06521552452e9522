//! Tests of the metrics registry (labels bounded, one-hot state, catalogue) and of `serve`.

use super::*;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// Every metric name of issues 3 and 4 (MATRIX.md §7.1) with its type.
const CATALOGUE: &[(&str, &str)] = &[
    ("qqbridge_poll_requests_total", "counter"),
    ("qqbridge_poll_duration_seconds", "histogram"),
    ("qqbridge_poll_last_success_timestamp_seconds", "gauge"),
    ("qqbridge_poll_consecutive_failures", "gauge"),
    ("qqbridge_poll_backoff_seconds", "gauge"),
    ("qqbridge_poll_retcodes_total", "counter"),
    ("qqbridge_poll_events_total", "counter"),
    ("qqbridge_account_state", "gauge"),
    ("qqbridge_account_disconnects_total", "counter"),
    ("qqbridge_logins_total", "counter"),
    ("qqbridge_actor_restarts_total", "counter"),
    ("qqbridge_send_queue_messages", "gauge"),
    ("qqbridge_sends_total", "counter"),
    ("qqbridge_send_duration_seconds", "histogram"),
    ("qqbridge_build_info", "gauge"),
    ("qqbridge_appservice_transactions_total", "counter"),
    ("qqbridge_appservice_events_total", "counter"),
    ("qqbridge_qq_sends_interrupted_total", "counter"),
    ("qqbridge_appservice_transaction_duration_seconds", "histogram"),
    ("qqbridge_matrix_requests_total", "counter"),
    ("qqbridge_matrix_request_duration_seconds", "histogram"),
];

/// The sample lines of `text` whose name and labels start with `prefix`.
fn lines<'a>(text: &'a str, prefix: &str) -> Vec<&'a str> {
    text.lines().filter(|l| l.starts_with(prefix)).collect()
}

/// Records one of everything for `account`.
fn exercise(m: &Metrics, account: &str) {
    m.poll_finished(account, PollOutcome::Ok, Duration::from_millis(300));
    m.poll_succeeded_at(account, 1_700_000_000);
    m.set_consecutive_failures(account, 2);
    m.set_backoff(account, Duration::from_millis(1500));
    m.set_account_state(account, AccountStateLabel::Connected);
    m.disconnect(account, DisconnectReason::Kicked);
    m.login(account, LoginMethod::Qr, LoginOutcome::Ok);
    m.restart(account, ActorChild::Poller);
    m.set_queue_depth(account, 7);
    m.send_finished(account, SendOutcome::Delivered, Duration::from_millis(80));
}

#[test]
fn test_every_catalogue_name_is_registered_and_encoded() {
    let m = Metrics::try_new().unwrap();
    exercise(&m, "a1");
    m.retcode(121);
    m.poll_event("message");
    let text = m.encode();
    for (name, kind) in CATALOGUE {
        assert!(text.contains(&format!("# TYPE {name} {kind}\n")), "{name} {kind}");
    }
    let types = text.lines().filter(|l| l.starts_with("# TYPE qqbridge_")).count();
    let process = text.lines().filter(|l| l.starts_with("# TYPE qqbridge_process_")).count();
    assert_eq!(types - process, CATALOGUE.len(), "{text}");
    if cfg!(target_os = "linux") {
        assert!(text.contains("\nqqbridge_process_resident_memory_bytes "), "{text}");
    }
    assert_eq!(lines(&text, "qqbridge_build_info{").len(), 1);
    assert!(text.contains(&format!("version=\"{}\"", env!("CARGO_PKG_VERSION"))));
}

#[test]
fn test_retcode_labels_are_bounded() {
    let m = Metrics::new();
    for code in [0, 102, 121, 121, -1, 7, 999_999, i64::MAX] {
        m.retcode(code);
    }
    let text = m.encode();
    assert_eq!(
        lines(&text, "qqbridge_poll_retcodes_total{"),
        [
            "qqbridge_poll_retcodes_total{retcode=\"0\"} 1",
            "qqbridge_poll_retcodes_total{retcode=\"102\"} 1",
            "qqbridge_poll_retcodes_total{retcode=\"121\"} 2",
            "qqbridge_poll_retcodes_total{retcode=\"other\"} 4",
        ]
    );
}

#[test]
fn test_poll_type_labels_are_bounded() {
    let cases = [
        ("message", "message"),
        ("sys_g_msg", "sys_g_msg"),
        ("kick_message", "kick_message"),
        ("tips", "tips"),
        ("red_packet", "unknown"),
        ("", "unknown"),
        ("Message", "unknown"),
    ];
    for (input, want) in cases {
        assert_eq!(poll_type_label(input), want, "{input}");
    }
    let m = Metrics::new();
    for (input, _) in cases {
        m.poll_event(input);
    }
    let text = m.encode();
    assert!(text.contains("qqbridge_poll_events_total{poll_type=\"unknown\"} 3\n"), "{text}");
    // Every known type plus `unknown` exists from the start (at zero); nothing else ever does.
    assert_eq!(lines(&text, "qqbridge_poll_events_total{").len(), KNOWN_POLL_TYPES.len() + 1);
    assert!(text.contains("qqbridge_poll_events_total{poll_type=\"tips\"} 1\n"), "{text}");
    assert!(text.contains("qqbridge_poll_events_total{poll_type=\"shake_message\"} 0\n"));
    assert!(!text.contains("red_packet"), "{text}");
}

#[test]
fn test_known_poll_types_are_the_ones_the_decoder_knows() {
    use crate::webqq::event::PollEvent;
    let reason = |poll_type: &str| match PollEvent::from_wire(
        &serde_json::json!({"poll_type": poll_type, "value": {"unexpected": true}}),
    ) {
        PollEvent::Unknown { reason, .. } => reason,
        _ => String::new(),
    };
    for poll_type in KNOWN_POLL_TYPES {
        assert_ne!(reason(poll_type), "unknown poll_type", "{poll_type}");
    }
    assert_eq!(reason("red_packet"), "unknown poll_type");
}

#[test]
fn test_account_state_is_one_hot() {
    let m = Metrics::new();
    m.set_account_state("a1", AccountStateLabel::Connecting);
    m.set_account_state("a1", AccountStateLabel::LoggedOut);
    m.set_account_state("b2", AccountStateLabel::WaitingForQr);
    let text = m.encode();
    for (account, on) in [("a1", "LOGGED_OUT"), ("b2", "WAITING_FOR_QR")] {
        let series = lines(&text, &format!("qqbridge_account_state{{account=\"{account}\""));
        assert_eq!(series.len(), AccountStateLabel::ALL.len(), "{series:?}");
        let ones: Vec<&&str> = series.iter().filter(|l| l.ends_with(" 1")).collect();
        assert_eq!(
            ones,
            [&format!("qqbridge_account_state{{account=\"{account}\",state=\"{on}\"}} 1")]
        );
    }
}

#[test]
fn test_forget_account_removes_its_series_only() {
    let m = Metrics::new();
    exercise(&m, "gone");
    exercise(&m, "kept");
    m.forget_account("gone");
    m.forget_account("never-seen");
    let text = m.encode();
    assert!(!text.contains("account=\"gone\""), "{text}");
    // 17 recorded series plus the zeros `set_account_state` adds (5 poll outcomes, 3 disconnect
    // reasons, 2 children, 3 send outcomes).
    assert_eq!(lines(&text, "qqbridge_").iter().filter(|l| l.contains("\"kept\"")).count(), 30);
    assert!(text.contains("qqbridge_poll_duration_seconds_count 2\n"), "{text}");
}

#[test]
fn test_gauges_and_histograms_record_values() {
    let m = Metrics::new();
    exercise(&m, "a1");
    m.poll_finished("a1", PollOutcome::Empty, Duration::from_secs(60));
    let text = m.encode();
    for want in [
        "qqbridge_poll_requests_total{account=\"a1\",outcome=\"empty\"} 1\n",
        "qqbridge_poll_requests_total{account=\"a1\",outcome=\"ok\"} 1\n",
        "qqbridge_poll_duration_seconds_bucket{le=\"0.5\"} 1\n",
        "qqbridge_poll_duration_seconds_bucket{le=\"60\"} 2\n",
        "qqbridge_poll_duration_seconds_bucket{le=\"120\"} 2\n",
        "qqbridge_poll_last_success_timestamp_seconds{account=\"a1\"} 1700000000\n",
        "qqbridge_poll_consecutive_failures{account=\"a1\"} 2\n",
        "qqbridge_poll_backoff_seconds{account=\"a1\"} 1.5\n",
        "qqbridge_account_disconnects_total{account=\"a1\",reason=\"kicked\"} 1\n",
        "qqbridge_logins_total{account=\"a1\",method=\"qr\",outcome=\"ok\"} 1\n",
        "qqbridge_actor_restarts_total{account=\"a1\",child=\"poller\"} 1\n",
        "qqbridge_send_queue_messages{account=\"a1\"} 7\n",
        "qqbridge_sends_total{account=\"a1\",outcome=\"delivered\"} 1\n",
        "qqbridge_send_duration_seconds_bucket{le=\"0.05\"} 0\n",
        "qqbridge_send_duration_seconds_bucket{le=\"0.1\"} 1\n",
    ] {
        assert!(text.contains(want), "missing {want}in\n{text}");
    }
}

#[test]
fn test_label_values_match_the_catalogue() {
    let got: Vec<Vec<&str>> = vec![
        PollOutcome::ALL.iter().map(|v| v.as_str()).collect(),
        AccountStateLabel::ALL.iter().map(|v| v.as_str()).collect(),
        DisconnectReason::ALL.iter().map(|v| v.as_str()).collect(),
        LoginMethod::ALL.iter().map(|v| v.as_str()).collect(),
        LoginOutcome::ALL.iter().map(|v| v.as_str()).collect(),
        ActorChild::ALL.iter().map(|v| v.as_str()).collect(),
        SendOutcome::ALL.iter().map(|v| v.as_str()).collect(),
    ];
    let want: Vec<Vec<&str>> = vec![
        vec!["ok", "empty", "http_error", "timeout", "decode_error", "retcode"],
        vec![
            "CONNECTING",
            "CONNECTED",
            "TRANSIENT_DISCONNECT",
            "BAD_CREDENTIALS",
            "LOGGED_OUT",
            "UNKNOWN_ERROR",
            "WAITING_FOR_QR",
            "WAITING_FOR_CAPTCHA",
        ],
        vec!["network", "session_expired", "kicked", "logout"],
        vec!["qr", "password", "restore", "relink"],
        vec!["ok", "captcha", "bad_credentials", "qr_expired", "error"],
        vec!["login", "poller", "sender"],
        vec!["delivered", "uncertain", "retry", "failed"],
    ];
    assert_eq!(got, want);
}

#[test]
fn test_registries_are_independent() {
    let a = Metrics::new();
    let b = Metrics::new();
    let a2 = a.clone();
    a.restart("x", ActorChild::Sender);
    a2.restart("x", ActorChild::Sender);
    assert!(a.encode().contains("child=\"sender\"} 2\n"));
    assert!(!b.encode().contains("child=\"sender\""));
}

/// Sends one HTTP/1.1 request and returns the whole response.
async fn http(addr: std::net::SocketAddr, method: &str, path: &str) -> String {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    response
}

#[actix_web::test]
async fn test_serve_answers_metrics_and_health_then_shuts_down() {
    check_serve().await;
}

#[tokio::test]
async fn test_serve_runs_on_a_plain_tokio_runtime() {
    check_serve().await;
}

/// Starts [`serve`] on port 0, checks every route, shuts it down and checks the port closed.
async fn check_serve() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let metrics = Metrics::new();
    metrics.set_account_state("a1", AccountStateLabel::Connected);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(listener, metrics, async {
        let _ = stopped.await;
    }));

    let page = http(addr, "GET", "/metrics").await;
    assert!(page.starts_with("HTTP/1.1 200 OK\r\n"), "{page}");
    assert!(page.to_lowercase().contains("content-type: text/plain; version=0.0.4"), "{page}");
    assert!(page.contains("qqbridge_account_state{account=\"a1\",state=\"CONNECTED\"} 1\n"));

    let health = http(addr, "GET", "/health/live").await;
    assert!(health.starts_with("HTTP/1.1 200 OK\r\n") && health.ends_with("\r\n\r\nok\n"));

    for (method, path, status) in [
        ("GET", "/", "404 Not Found"),
        ("GET", "/metricsx", "404 Not Found"),
        ("GET", "/health", "404 Not Found"),
        ("POST", "/metrics", "404 Not Found"),
    ] {
        let answer = http(addr, method, path).await;
        assert!(answer.starts_with(&format!("HTTP/1.1 {status}\r\n")), "{method} {path}: {answer}");
    }

    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), server).await.unwrap().unwrap().unwrap();
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

#[test]
fn test_every_family_is_exposed_before_its_first_event() {
    let m = Metrics::new();
    m.set_account_state("a1", AccountStateLabel::Connecting);
    let text = m.encode();
    for line in [
        "qqbridge_account_disconnects_total{account=\"a1\",reason=\"kicked\"} 0",
        "qqbridge_actor_restarts_total{account=\"a1\",child=\"poller\"} 0",
        "qqbridge_sends_total{account=\"a1\",outcome=\"failed\"} 0",
        "qqbridge_send_queue_messages{account=\"a1\"} 0",
        "qqbridge_poll_requests_total{account=\"a1\",outcome=\"timeout\"} 0",
        "qqbridge_poll_events_total{poll_type=\"unknown\"} 0",
        "qqbridge_poll_retcodes_total{retcode=\"102\"} 0",
    ] {
        assert!(text.contains(&format!("\n{line}\n")), "{line}: {text}");
    }
    // A later state change keeps the values already counted.
    m.disconnect("a1", DisconnectReason::Kicked);
    m.set_queue_depth("a1", 3);
    m.set_account_state("a1", AccountStateLabel::LoggedOut);
    let text = m.encode();
    assert!(
        text.contains("\nqqbridge_account_disconnects_total{account=\"a1\",reason=\"kicked\"} 1\n")
    );
    assert!(text.contains("\nqqbridge_send_queue_messages{account=\"a1\"} 3\n"), "{text}");
}
