//! The bad-input corpus (`tests/fixtures/bad-input/`, conventions in its README): every malformed
//! input from QQ or from the homeserver gives its expected clear error or degraded outcome, never
//! a panic. One test per directory; `config/` is checked in `src/config`.

use std::fs;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

use qqbridge::matrix::appservice::parse_transaction;
use qqbridge::webqq::api::check::{Check, CheckAnswer};
use qqbridge::webqq::api::login::PtuiCb;
use qqbridge::webqq::api::poll2::{Poll2, PollAnswer};
use qqbridge::webqq::api::{Endpoint, RawAnswer};
use qqbridge::webqq::content::{Content, ContentError};
use qqbridge::webqq::event::PollEvent;

/// One input file and what it must give.
struct Case {
    /// The file name inside its directory.
    name: String,
    /// The exact input.
    body: Vec<u8>,
    /// The expected outcome line.
    expect: String,
}

/// Reads every case of `tests/fixtures/bad-input/<dir>/`: a file with a sidecar `<stem>.expect`
/// is the input itself; any other file starts with a `# expect: ` line and the input follows it.
fn cases(dir: &str) -> Vec<Case> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bad-input").join(dir);
    let mut paths: Vec<_> = fs::read_dir(&root).unwrap().map(|e| e.unwrap().path()).collect();
    paths.sort();
    let mut out = Vec::new();
    for path in paths {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name == "README.md" || name.ends_with(".expect") {
            continue;
        }
        let bytes = fs::read(&path).unwrap();
        let sidecar = path.with_extension("expect");
        let (body, expect) = if sidecar.exists() {
            let text = fs::read_to_string(&sidecar).unwrap();
            let mut lines = text.lines();
            let expect = lines.next().unwrap_or_default().to_owned();
            let body = match lines.find_map(|l| l.strip_prefix("repeat-line-2: ")) {
                Some(n) => repeat_middle_line(&bytes, n.parse().unwrap()),
                None => bytes,
            };
            (body, expect)
        } else {
            let split = bytes.iter().position(|&b| b == b'\n').unwrap_or(bytes.len());
            let first = String::from_utf8(bytes[..split].to_vec()).unwrap();
            let expect = first
                .strip_prefix("# expect: ")
                .unwrap_or_else(|| panic!("{dir}/{name}: no `.expect` sidecar, no `# expect: `"))
                .to_owned();
            (bytes.get(split + 1..).unwrap_or_default().to_vec(), expect)
        };
        assert!(!expect.trim().is_empty(), "{dir}/{name}: empty expectation");
        out.push(Case { name, body, expect });
    }
    out
}

/// A three-line file `prefix / unit / suffix` as `prefix unit,unit,…(n times) suffix`: a large
/// input kept small in the repository.
fn repeat_middle_line(bytes: &[u8], n: usize) -> Vec<u8> {
    let text = std::str::from_utf8(bytes).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let [prefix, unit, suffix] = lines[..] else { panic!("a repeated file has 3 lines") };
    let mut out = String::with_capacity(prefix.len() + (unit.len() + 1) * n + suffix.len());
    out.push_str(prefix);
    out.push_str(&vec![unit; n].join(","));
    out.push_str(suffix);
    out.into_bytes()
}

/// Runs `outcome` on every case of `dir` (a panic counts as an outcome) and compares.
fn check_dir(dir: &str, min_cases: usize, outcome: impl Fn(&Case) -> String) {
    let cases = cases(dir);
    assert!(cases.len() >= min_cases, "only {} cases in bad-input/{dir}", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        let got = catch_unwind(AssertUnwindSafe(|| outcome(case)))
            .unwrap_or_else(|_| "(panicked)".to_owned());
        if got != case.expect {
            failures.push(format!(
                "{dir}/{}:\n  expected: {}\n  got:      {got}",
                case.name, case.expect
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn raw(body: &[u8]) -> RawAnswer<'_> {
    RawAnswer { status: 200, location: None, content_type: None, body }
}

fn event_summary(event: &PollEvent) -> String {
    match event {
        PollEvent::Unknown { poll_type, reason, .. } => format!("unknown({poll_type}): {reason}"),
        other => other.poll_type().to_owned(),
    }
}

#[test]
fn test_bad_poll2_answers() {
    check_dir("poll2", 20, |case| match Poll2::decode(&raw(&case.body)) {
        Ok(PollAnswer::Idle) => "idle".to_owned(),
        Ok(PollAnswer::Suspicious) => "suspicious".to_owned(),
        Ok(PollAnswer::Events(events)) => {
            let events: Vec<String> = events.iter().map(event_summary).collect();
            format!("events: {}", events.join(" | "))
        }
        Err(e) => format!("error: {e}"),
    });
}

fn content_summary(result: Result<Content, ContentError>) -> String {
    match result {
        Ok(content) => {
            let font = content.font.as_ref().map_or("none", |f| f.name.as_str());
            format!("ok: font={font} text={:?}", content.plain_text())
        }
        Err(e) => format!("error: {e}"),
    }
}

#[test]
fn test_bad_contents() {
    check_dir("content", 10, |case| {
        if case.name.starts_with("sent-") {
            let text = String::from_utf8(case.body.clone()).unwrap();
            content_summary(Content::decode_sent(&text))
        } else {
            match serde_json::from_slice(&case.body) {
                Ok(value) => content_summary(Content::from_received(&value)),
                Err(e) => format!("not JSON: {e}"),
            }
        }
    });
}

fn check_summary(answer: &CheckAnswer) -> String {
    let salt = answer.salt.map_or("none".to_owned(), hex::encode);
    format!("ok: captcha={} code={} salt={salt}", answer.need_captcha, answer.code)
}

#[test]
fn test_bad_login_answers() {
    check_dir("login", 15, |case| {
        let raw = raw(&case.body);
        if case.name.starts_with("checkvc-") {
            match Check::decode(&raw) {
                Ok(answer) => check_summary(&answer),
                Err(e) => format!("error: {e}"),
            }
        } else {
            match PtuiCb::decode("login", &raw) {
                Ok(cb) => format!("ok: code={} sub={} message={:?}", cb.code, cb.sub, cb.message),
                Err(e) => format!("error: {e}"),
            }
        }
    });
}

#[test]
fn test_bad_transactions() {
    check_dir("transactions", 12, |case| match parse_transaction("t1".to_owned(), &case.body) {
        Ok(txn) => {
            // Events stay raw; the bridge skips the ones that do not read as timeline events.
            let unreadable = txn.events.iter().filter(|e| e.deserialize().is_err()).count();
            format!(
                "ok: events={} unreadable={unreadable} ephemeral={}",
                txn.events.len(),
                txn.ephemeral.len()
            )
        }
        Err(e) => format!("error: {e}"),
    });
}
