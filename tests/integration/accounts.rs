//! Account actor trees against the emulator: connect, deliver events, send, restore without a
//! login, relink before relogin, and 121 that never loops.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::prelude::*;
use qqbridge::account::account_actor::{
    AccountActor, AccountEvent, AccountSettings, Credentials, GetAccountState, LogOutOfQq,
    SolveCaptcha, StopAccount,
};
use qqbridge::account::poller::Backoff;
use qqbridge::account::poller_actor::QqEventsReceived;
use qqbridge::account::send_queue::{ChatKey, SendOutcome, SendPolicy};
use qqbridge::account::sender_actor::{Drain, QueueMessage};
use qqbridge::account::state::AccountState;
use qqbridge::webqq::content::Content;
use qqbridge::webqq::event::PollEvent;
use qqbridge::webqq::session::Session;
use qqbridge::webqq::{QqNumber, Secret};
use serde_json::json;

use crate::harness::TestEmulator;

/// Collects everything an account reports.
#[derive(Default, Clone)]
struct Collector {
    events: Arc<Mutex<Vec<PollEvent>>>,
    reports: Arc<Mutex<Vec<AccountEvent>>>,
}

impl Actor for Collector {
    type Context = Context<Self>;
}

impl Handler<QqEventsReceived> for Collector {
    type Result = ();
    fn handle(&mut self, msg: QqEventsReceived, _: &mut Context<Self>) {
        self.events.lock().unwrap().extend(msg.events);
    }
}

impl Handler<AccountEvent> for Collector {
    type Result = ();
    fn handle(&mut self, msg: AccountEvent, _: &mut Context<Self>) {
        self.reports.lock().unwrap().push(msg);
    }
}

impl Collector {
    fn sessions(&self) -> Vec<Session> {
        let reports = self.reports.lock().unwrap();
        reports
            .iter()
            .filter_map(|r| match r {
                AccountEvent::SessionSaved { session, .. } => Some((**session).clone()),
                _ => None,
            })
            .collect()
    }

    fn states(&self) -> Vec<AccountState> {
        let reports = self.reports.lock().unwrap();
        reports
            .iter()
            .filter_map(|r| match r {
                AccountEvent::StateChanged { state, .. } => Some(*state),
                _ => None,
            })
            .collect()
    }
}

fn settings(te: &TestEmulator, credentials: Credentials) -> AccountSettings {
    AccountSettings {
        id: "main".into(),
        qq: QqNumber::new(10001),
        credentials,
        client: te.client_config(),
        backoff: Backoff { initial: Duration::from_millis(100), max: Duration::from_secs(1) },
        send: SendPolicy { min_interval: Duration::from_millis(50), ..SendPolicy::default() },
        max_relogins: 3,
        login_permits: Arc::new(tokio::sync::Semaphore::new(8)),
    }
}

fn password() -> Credentials {
    Credentials::Password(Secret::new(String::from("password")))
}

async fn wait_for_state(account: &Addr<AccountActor>, wanted: AccountState) {
    for _ in 0..100 {
        if account.send(GetAccountState).await.unwrap().0 == wanted {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("account never reached {wanted}: {:?}", account.send(GetAccountState).await.unwrap());
}

async fn counter(te: &TestEmulator, endpoint: &str) -> u64 {
    let state = te.control_get("state").await;
    state["counters"][endpoint]["requests"].as_u64().unwrap_or(0)
}

fn start(
    te: &TestEmulator,
    credentials: Credentials,
    stored: Option<Session>,
) -> (Addr<AccountActor>, Collector) {
    let collector = Collector::default();
    let addr = collector.clone().start();
    let account = AccountActor::new(
        settings(te, credentials),
        stored,
        addr.clone().recipient(),
        addr.recipient(),
    )
    .start();
    (account, collector)
}

/// An account with a password login, once CONNECTED.
async fn connected(te: &TestEmulator) -> (Addr<AccountActor>, Collector) {
    let (account, collector) = start(te, password(), None);
    wait_for_state(&account, AccountState::Connected).await;
    (account, collector)
}

/// The texts account 10001 sent, in order.
async fn sent_texts(te: &TestEmulator) -> Vec<String> {
    let sent = te.sent(10001).await;
    sent.iter().map(|m| m["text"].as_str().unwrap().to_owned()).collect()
}

#[actix::test]
async fn test_account_connects_delivers_events_and_sends() {
    let te = TestEmulator::start().await;
    let (account, collector) = connected(&te).await;
    te.post_message(10001, "friend", 10002, "to the actor", json!({})).await;
    for _ in 0..50 {
        if !collector.events.lock().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(matches!(collector.events.lock().unwrap().first(), Some(PollEvent::Message(_))));
    // Queued before or after the sender exists, messages go out in order.
    let first = account
        .send(QueueMessage::new(ChatKey::Friend(QqNumber::new(10002)), Content::text("one")));
    let (second, outcome) =
        QueueMessage::tracked(ChatKey::Friend(QqNumber::new(10002)), Content::text("two"));
    let second = account.send(second);
    first.await.unwrap();
    second.await.unwrap();
    // Whoever queued a tracked message hears its final outcome.
    let outcome = tokio::time::timeout(Duration::from_secs(20), outcome).await;
    assert_eq!(outcome.unwrap().unwrap(), SendOutcome::Delivered);
    for _ in 0..50 {
        if te.sent(10001).await.len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(sent_texts(&te).await, ["one", "two"]);
    let delivered = collector
        .reports
        .lock()
        .unwrap()
        .iter()
        .filter(|r| matches!(r, AccountEvent::Send { report, .. } if report.outcome == SendOutcome::Delivered))
        .count();
    assert_eq!(delivered, 2);
    account.send(StopAccount).await.unwrap();
}

/// A planned shutdown drains the sender: the send call under way finishes (its outcome known,
/// so no "maybe not delivered" after the restart) and nothing queued starts.
#[actix::test]
async fn test_drain_waits_for_the_send_under_way_and_starts_no_other() {
    let te = TestEmulator::start().await;
    let (account, _) = connected(&te).await;
    te.fault(json!({"endpoint": "send_buddy_msg2", "count": 1, "kind": {"slow_body_ms": 300}}))
        .await;
    let friend = ChatKey::Friend(QqNumber::new(10002));
    let (first, outcome) = QueueMessage::tracked(friend, Content::text("under way"));
    account.send(first).await.unwrap();
    account.send(QueueMessage::new(friend, Content::text("still queued"))).await.unwrap();
    // The first send's answer is coming slowly (8 pieces, 300 ms apart) when the drain begins.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let began = std::time::Instant::now();
    account.send(Drain).await.unwrap();
    assert!(began.elapsed() >= Duration::from_millis(500), "waited: {:?}", began.elapsed());
    let outcome = tokio::time::timeout(Duration::from_secs(1), outcome).await.unwrap().unwrap();
    assert_eq!(outcome, SendOutcome::Delivered, "the send under way finished");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(sent_texts(&te).await, ["under way"], "nothing new started");
    account.send(StopAccount).await.unwrap();
}

/// `logout` from Matrix ends the QQ session (logout2) and says whether QQ confirmed it; a QQ
/// that does not answer in time is reported as such, and the account stops either way.
#[actix::test]
async fn test_logout_is_confirmed_or_reported_as_unanswered() {
    let te = TestEmulator::start().await;
    let (account, _) = connected(&te).await;
    let answer = account.send(LogOutOfQq { timeout: Duration::from_secs(5) }).await.unwrap();
    assert_eq!(answer, Ok(()));
    assert_eq!(counter(&te, "logout2").await, 1);
    assert!(!account.connected(), "the account stopped");

    let (account, _) = connected(&te).await;
    te.fault(json!({"endpoint": "logout2", "count": 1, "kind": {"slow_body_ms": 3000}})).await;
    let answer = account.send(LogOutOfQq { timeout: Duration::from_millis(300) }).await.unwrap();
    assert_eq!(answer, Err("QQ did not answer within 0.3 s".to_owned()));
    assert_eq!(counter(&te, "logout2").await, 2, "the logout was asked for");
    assert!(!account.connected(), "the account stopped all the same");
}

#[actix::test]
async fn test_contact_lists_that_fail_once_are_loaded_again() {
    let te = TestEmulator::start().await;
    te.control(
        "faults",
        json!({"endpoint": "get_user_friends2", "count": 1, "kind": {"http_status": 500}}),
    )
    .await;
    let (account, _collector) = start(&te, password(), None);
    wait_for_state(&account, AccountState::Connected).await;
    // Without a second try the sender would not know friend 10002 for the whole session.
    let (message, outcome) =
        QueueMessage::tracked(ChatKey::Friend(QqNumber::new(10002)), Content::text("after a 500"));
    account.send(message).await.unwrap();
    let outcome = tokio::time::timeout(Duration::from_secs(30), outcome).await;
    assert_eq!(outcome.unwrap().unwrap(), SendOutcome::Delivered);
    assert!(counter(&te, "get_user_friends2").await >= 2);
    account.send(StopAccount).await.unwrap();
}

#[actix::test]
async fn test_restart_restores_without_a_login_request() {
    let te = TestEmulator::start().await;
    let (account, collector) = connected(&te).await;
    let stored = collector.sessions().pop().expect("a session was saved");
    account.send(StopAccount).await.unwrap();
    let logins_before = counter(&te, "login").await;
    let qr_before = counter(&te, "ptqrshow").await;

    let (restarted, collector) = start(&te, Credentials::SessionOnly, Some(stored));
    wait_for_state(&restarted, AccountState::Connected).await;
    assert_eq!(counter(&te, "login").await, logins_before, "no password login on restore");
    assert_eq!(counter(&te, "ptqrshow").await, qr_before, "no QR login on restore");
    assert!(!collector.sessions().is_empty());
    restarted.send(StopAccount).await.unwrap();
}

#[actix::test]
async fn test_121_relinks_once_then_logged_out_without_looping() {
    let te = TestEmulator::start().await;
    let (account, collector) = connected(&te).await;
    te.fault(
        json!({"endpoint": "poll2", "account": 10001, "count": 100, "kind": {"retcode": 121}}),
    )
    .await;
    wait_for_state(&account, AccountState::LoggedOut).await;
    let logins = counter(&te, "login").await;
    let login2 = counter(&te, "login2").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(account.send(GetAccountState).await.unwrap().0, AccountState::LoggedOut);
    assert_eq!(counter(&te, "login").await, logins, "no login after a kick");
    assert_eq!(counter(&te, "login2").await, login2, "no relink loop after a kick");
    assert!(login2 <= 2, "one login2 for the login and at most one relink: {login2}");
    assert!(collector.states().contains(&AccountState::Connecting), "the one relink was tried");
    account.send(StopAccount).await.unwrap();
}

#[actix::test]
async fn test_expired_session_relinks_first_then_logs_in_again() {
    let te = TestEmulator::start().await;
    let (account, collector) = connected(&te).await;
    let logins = counter(&te, "login").await;
    // The session expires and the relink is refused (112, protocol §1.4): relink is tried first,
    // then a full login.
    te.fault(json!({"endpoint": "login2", "account": 10001, "count": 1, "kind": {"retcode": 112}}))
        .await;
    te.fault(json!({"endpoint": "*", "account": 10001, "count": 1, "kind": {"expire": true}}))
        .await;
    for _ in 0..100 {
        if counter(&te, "login").await > logins
            && account.send(GetAccountState).await.unwrap().0 == AccountState::Connected
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(account.send(GetAccountState).await.unwrap().0, AccountState::Connected);
    let reports = collector.reports.lock().unwrap().clone();
    let methods: Vec<_> = reports
        .iter()
        .filter_map(|r| match r {
            AccountEvent::LoginFinished { method, ok, .. } => Some((*method, *ok)),
            _ => None,
        })
        .collect();
    use qqbridge::account::account_actor::LoginMethod::{Password, Relink};
    let relink_at = methods.iter().position(|m| m.0 == Relink).expect("a relink was tried");
    let relogin_at =
        methods.iter().rposition(|m| *m == (Password, true)).expect("a new password login");
    assert!(relink_at < relogin_at, "relink before relogin: {methods:?}");
    account.send(StopAccount).await.unwrap();
}

#[actix::test]
async fn test_a_message_refused_by_a_replaced_session_goes_out_on_the_new_one() {
    let te = TestEmulator::start().await;
    let (account, _collector) = start(&te, password(), None);
    wait_for_state(&account, AccountState::Connected).await;
    let friend = ChatKey::Friend(QqNumber::new(10002));
    let (first, outcome) = QueueMessage::tracked(friend, Content::text("one"));
    account.send(first).await.unwrap();
    let outcome = tokio::time::timeout(Duration::from_secs(20), outcome).await;
    assert_eq!(outcome.unwrap().unwrap(), SendOutcome::Delivered, "the sender is running");
    let logins = counter(&te, "login").await;
    // The session dies and its relink is refused: the account logs in anew (a new client).
    // The message queued meanwhile is refused by the dead session (103: surely not taken)
    // and waits for a retry; the old sender's retries on the dead client would all be
    // refused, and the message lost (the chaos run's Matrix → QQ losses).
    te.fault(json!({"endpoint": "login2", "account": 10001, "count": 1, "kind": {"retcode": 112}}))
        .await;
    te.fault(json!({"endpoint": "*", "account": 10001, "count": 1, "kind": {"expire": true}}))
        .await;
    let (second, outcome) = QueueMessage::tracked(friend, Content::text("two"));
    account.send(second).await.unwrap();
    let outcome = tokio::time::timeout(Duration::from_secs(30), outcome).await;
    assert_eq!(outcome.unwrap().unwrap(), SendOutcome::Delivered);
    assert!(counter(&te, "login").await > logins, "a new login took over");
    assert_eq!(sent_texts(&te).await, ["one", "two"]);
    account.send(StopAccount).await.unwrap();
}

#[actix::test]
async fn test_a_poll_batch_waiting_for_the_directory_survives_a_crash() {
    let te = TestEmulator::start().await;
    let store = qqbridge::store::Store::open_in_memory().unwrap();
    let persisting = |stored: Option<Session>| {
        let collector = Collector::default();
        let addr = collector.clone().start();
        let settings = settings(&te, password());
        let (events, observer) = (addr.clone().recipient(), addr.recipient());
        let account = AccountActor::new(settings, stored, events, observer)
            .persisting_polls(store.clone())
            .start();
        (account, collector)
    };
    let (account, collector) = persisting(None);
    wait_for_state(&account, AccountState::Connected).await;
    let session = collector.sessions().pop().expect("a session was opened");
    account.send(StopAccount).await.unwrap();

    // The restored session's contact lists are slow: the polled message waits for them, in
    // memory before RELIABILITY.md §1.2's fix, and the process dies meanwhile.
    te.fault(json!({"endpoint": "get_user_friends2", "account": 10001, "count": 1,
                    "kind": {"delay_ms": 20000}}))
        .await;
    let (account, collector) = persisting(Some(session.clone()));
    // Connected once the session is relinked (the stopped account's last poll is over then).
    wait_for_state(&account, AccountState::Connected).await;
    te.post_message(10001, "friend", 10002, "waits for the lists", json!({})).await;
    for _ in 0..100 {
        if !store.blocking_call(|c| c.polled("main")).unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(store.blocking_call(|c| c.polled("main")).unwrap().len(), 1, "persisted");
    assert!(collector.events.lock().unwrap().is_empty(), "not resolved yet");
    account.send(StopAccount).await.unwrap();

    // The next run replays the batch in the same session once its lists are in.
    let (account, collector) = persisting(Some(session));
    for _ in 0..100 {
        if !collector.events.lock().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let events = collector.events.lock().unwrap().clone();
    let texts: Vec<String> = events
        .iter()
        .filter_map(|e| match e {
            PollEvent::Message(m) => Some(m.content.plain_text()),
            _ => None,
        })
        .collect();
    assert_eq!(texts, ["waits for the lists"]);
    account.send(StopAccount).await.unwrap();
}

#[actix::test]
async fn test_captcha_is_shown_and_answered_wrong_then_right() {
    let te = TestEmulator::start().await;
    let collector = Collector::default();
    let addr = collector.clone().start();
    let mut settings = settings(&te, Credentials::Password(Secret::new(String::from("123456"))));
    settings.qq = QqNumber::new(10002);
    let account =
        AccountActor::new(settings, None, addr.clone().recipient(), addr.recipient()).start();
    let captchas = || {
        let reports = collector.reports.lock().unwrap();
        reports.iter().filter(|r| matches!(r, AccountEvent::Captcha { .. })).count()
    };
    wait_for_state(&account, AccountState::WaitingForCaptcha).await;
    assert_eq!(captchas(), 1);
    // A wrong text restarts the flow with a new captcha instead of giving up.
    assert!(account.send(SolveCaptcha { text: "WRONG".into() }).await.unwrap());
    for _ in 0..100 {
        if captchas() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(captchas(), 2, "a second captcha after the wrong answer");
    wait_for_state(&account, AccountState::WaitingForCaptcha).await;
    let state = te.control_get("state").await;
    let text = state["captchas"]["10002"].as_str().unwrap().to_owned();
    assert!(account.send(SolveCaptcha { text }).await.unwrap());
    wait_for_state(&account, AccountState::Connected).await;
    // Nothing waits any more: a late answer is refused, not queued.
    assert!(!account.send(SolveCaptcha { text: "late".into() }).await.unwrap());
    let image = collector.reports.lock().unwrap().iter().find_map(|r| match r {
        AccountEvent::Captcha { image, .. } => Some(image.clone()),
        _ => None,
    });
    assert!(image.unwrap().starts_with(&[0xff, 0xd8]), "the captcha image is a JPEG");
}
