//! The bridge-state machine on a fake clock: holds, TTLs, notice policies, the mapping.

use super::*;

/// One step of a script: at second `t`, observe `state` (with `reason`), or tick when `None`.
type Step = (u64, Option<(AccountState, Option<&'static str>)>);

/// Runs `steps` through a tracker and renders every output as `"<t> push|notice <STATE>"`.
fn run(notices: BridgeStatusNotices, steps: &[Step]) -> Vec<String> {
    let settings = StatusSettings {
        notices,
        transient_hold: Duration::from_secs(180),
        error_hold: Duration::from_secs(0),
        endpoint: None,
    };
    let mut tracker = StateTracker::new(settings);
    let start = Instant::now();
    let mut rendered = Vec::new();
    for (t, step) in steps {
        let now = start + Duration::from_secs(*t);
        let outputs = match step {
            Some((state, reason)) => {
                tracker.observe(bridge_state("me", 10001, *state, *reason, *t), now)
            }
            None => tracker.tick(now),
        };
        for output in outputs {
            rendered.push(match output {
                Output::Push(s) => format!("{t} push {}", s.state_event.as_str()),
                Output::Notice(s) => format!("{t} notice {}", s.state_event.as_str()),
                Output::PushGlobal(g) => {
                    format!("{t} global {}", g.bridge_state.state_event.as_str())
                }
            });
        }
    }
    rendered
}

use AccountState as A;
use BridgeStatusNotices as N;

#[test]
fn test_a_short_blip_is_never_told_nor_pushed() {
    let got = run(
        N::Errors,
        &[
            (0, Some((A::Connecting, None))),
            (1, Some((A::Connected, None))),
            (10, Some((A::TransientDisconnect, Some("connect refused")))),
            (60, None),
            (70, Some((A::Connecting, None))),
            (100, Some((A::Connected, None))),
            (400, None),
        ],
    );
    assert_eq!(got, ["1 push CONNECTED"]);
}

#[test]
fn test_a_long_outage_is_told_once_after_the_hold_and_its_end_too() {
    let got = run(
        N::Errors,
        &[
            (0, Some((A::Connected, None))),
            (10, Some((A::TransientDisconnect, None))),
            (100, Some((A::Connecting, None))),
            (150, Some((A::TransientDisconnect, None))),
            (189, None),
            (190, None),
            (191, None),
            (200, Some((A::TransientDisconnect, Some("5 polls failed in a row")))),
            (300, Some((A::Connected, None))),
        ],
    );
    // The hold counts from the first TRANSIENT_DISCONNECT; CONNECTING does not end it.
    assert_eq!(
        got,
        [
            "0 push CONNECTED",
            "190 push TRANSIENT_DISCONNECT",
            "190 notice TRANSIENT_DISCONNECT",
            "300 push CONNECTED",
            "300 notice CONNECTED"
        ]
    );
}

#[test]
fn test_errors_are_told_at_once_and_not_repeated_within_the_ttl() {
    let kicked = Some("logged in elsewhere");
    let got = run(
        N::Errors,
        &[
            (0, Some((A::Connected, None))),
            (5, Some((A::LoggedOut, kicked))),
            (6, Some((A::LoggedOut, kicked))),
            (3000, Some((A::LoggedOut, kicked))),
            (3700, Some((A::LoggedOut, kicked))),
        ],
    );
    assert_eq!(
        got,
        ["0 push CONNECTED", "5 push LOGGED_OUT", "5 notice LOGGED_OUT", "3700 push LOGGED_OUT"]
    );
}

#[test]
fn test_notice_policies() {
    let steps: &[Step] = &[
        (0, Some((A::Connecting, None))),
        (1, Some((A::Connected, None))),
        (2, Some((A::BadCredentials, Some("wrong password")))),
    ];
    assert_eq!(run(N::None, steps), ["1 push CONNECTED", "2 push BAD_CREDENTIALS"]);
    assert_eq!(
        run(N::All, steps),
        [
            "0 notice CONNECTING",
            "1 push CONNECTED",
            "1 notice CONNECTED",
            "2 push BAD_CREDENTIALS",
            "2 notice BAD_CREDENTIALS"
        ]
    );
}

#[test]
fn test_next_deadline_follows_the_held_state() {
    let mut tracker = StateTracker::new(StatusSettings::default());
    let start = Instant::now();
    assert_eq!(tracker.next_deadline(), None);
    tracker.observe(bridge_state("me", 1, A::TransientDisconnect, None, 0), start);
    assert_eq!(tracker.next_deadline(), Some(start + Duration::from_secs(180)));
    assert_eq!(tracker.current()[0].state_event, StateEvent::TransientDisconnect);
    tracker.observe(bridge_state("me", 1, A::Connected, None, 0), start);
    assert_eq!(tracker.next_deadline(), None);
}

#[test]
fn test_account_states_map_to_bridgev2_states() {
    // (state, reason, state_event, error, user_action)
    let cases = [
        (A::Connected, None, "CONNECTED", None, None),
        (A::WaitingForQr, None, "CONNECTING", None, None),
        (
            A::TransientDisconnect,
            Some("timeout"),
            "TRANSIENT_DISCONNECT",
            Some("qq-transient"),
            None,
        ),
        (
            A::BadCredentials,
            Some("wrong password"),
            "BAD_CREDENTIALS",
            Some("qq-bad-password"),
            Some("RELOGIN"),
        ),
        (
            A::BadCredentials,
            Some("captcha needed"),
            "BAD_CREDENTIALS",
            Some("qq-captcha-required"),
            Some("RELOGIN"),
        ),
        (
            A::BadCredentials,
            Some("account frozen"),
            "BAD_CREDENTIALS",
            Some("qq-account-locked"),
            Some("RELOGIN"),
        ),
        (
            A::BadCredentials,
            Some("relink failed"),
            "BAD_CREDENTIALS",
            Some("qq-session-expired"),
            Some("RELOGIN"),
        ),
        (
            A::LoggedOut,
            Some("logged in elsewhere"),
            "LOGGED_OUT",
            Some("qq-kicked"),
            Some("RELOGIN"),
        ),
        (
            A::UnknownError,
            Some("retcode 1234 x4"),
            "UNKNOWN_ERROR",
            Some("qq-retcode-1234"),
            Some("RESTART"),
        ),
        (A::UnknownError, None, "UNKNOWN_ERROR", Some("qq-unknown-error"), Some("RESTART")),
    ];
    for (state, reason, event, error, action) in cases {
        let s = bridge_state("me", 10001, state, reason, 7);
        assert_eq!(
            (s.state_event.as_str(), s.error.as_deref(), s.user_action),
            (event, error, action),
            "{state:?} {reason:?}"
        );
        assert_eq!((s.remote_id.as_str(), s.remote_name.as_str(), s.timestamp), ("10001", "me", 7));
        let ttl = if s.state_event.is_error() { ERROR_TTL_SECONDS } else { OK_TTL_SECONDS };
        assert_eq!(s.ttl, ttl);
    }
    let json = serde_json::to_value(bridge_state("me", 10001, A::LoggedOut, Some("x"), 7)).unwrap();
    assert_eq!(json["state_event"], "LOGGED_OUT");
    assert_eq!(json["message"], "x");
    let ok = serde_json::to_value(bridge_state("me", 10001, A::Connected, None, 7)).unwrap();
    assert!(ok.get("error").is_none(), "{ok}");
}

#[test]
fn test_notice_texts_name_the_account_and_state() {
    let s = bridge_state("me", 10001, A::LoggedOut, Some("kicked"), 0);
    assert_eq!(
        notice_text(&s),
        "QQ account me is logged out (LOGGED_OUT: kicked). Log in again to resume bridging."
    );
}

#[test]
fn test_refresh_repushes_before_the_ttl_and_forget_ends_a_login() {
    let mut tracker = StateTracker::new(StatusSettings::default());
    let start = Instant::now();
    assert_eq!(tracker.next_refresh(), None);
    tracker.observe(bridge_state("me", 1, A::Connected, None, 100), start);
    tracker.set_global(GlobalEvent::Running, start, 100);
    // CONNECTED and RUNNING both live 21600 s: due again at 17280 s, not before.
    let due = start + Duration::from_secs(17280);
    assert_eq!(tracker.next_refresh(), Some(due));
    assert_eq!(tracker.refresh(due - Duration::from_secs(1), 17379), []);
    let out = tracker.refresh(due, 17380);
    let Output::Push(login) = &out[0] else { panic!("{out:?}") };
    assert_eq!((login.state_event, login.timestamp), (StateEvent::Connected, 17380));
    let Output::PushGlobal(global) = &out[1] else { panic!("{out:?}") };
    assert_eq!(global.bridge_state.timestamp, 17380);
    assert_eq!(global.remote_state["me"].state_event, StateEvent::Connected);
    assert_eq!(tracker.next_refresh(), Some(due + Duration::from_secs(17280)));
    // Forgotten: one LOGGED_OUT push, and the bridge, with no login left, is UNCONFIGURED;
    // then only the global state is refreshed.
    let out = tracker.forget("me", 20000, due);
    let [Output::Push(last), Output::PushGlobal(global)] = out.as_slice() else {
        panic!("{out:?}")
    };
    assert_eq!(last.state_event, StateEvent::LoggedOut);
    assert_eq!(last.error.as_deref(), Some("qq-logged-out"));
    assert_eq!(global.bridge_state.state_event, GlobalEvent::Unconfigured);
    assert_eq!(tracker.forget("me", 20001, due), []);
    assert_eq!(tracker.state_of("me"), None);
    let later = tracker.refresh(due + Duration::from_secs(17280), 40000);
    assert!(matches!(later.as_slice(), [Output::PushGlobal(g)] if g.remote_state.is_empty()));
}

#[test]
fn test_unconfigured_until_the_first_login_and_again_after_the_last() {
    let mut tracker = StateTracker::new(StatusSettings::default());
    let start = Instant::now();
    let globals = |out: &[Output]| -> Vec<GlobalEvent> {
        out.iter()
            .filter_map(|o| match o {
                Output::PushGlobal(g) => Some(g.bridge_state.state_event),
                _ => None,
            })
            .collect()
    };
    let out = tracker.set_global(GlobalEvent::Unconfigured, start, 100);
    assert_eq!(globals(&out), [GlobalEvent::Unconfigured]);
    // The first login: RUNNING, its state in the global remote states; a second changes nothing.
    let out = tracker.observe(bridge_state("me", 1, A::Connected, None, 110), start);
    assert_eq!(globals(&out), [GlobalEvent::Running]);
    let Some(Output::PushGlobal(global)) = out.first() else { panic!("{out:?}") };
    assert_eq!(global.remote_state["me"].state_event, StateEvent::Connected);
    assert!(out.iter().any(|o| matches!(o, Output::Push(s) if s.remote_name == "me")), "{out:?}");
    let out = tracker.observe(bridge_state("you", 2, A::Connected, None, 120), start);
    assert_eq!(globals(&out), []);
    // Forgetting one of two keeps RUNNING; the last makes it UNCONFIGURED again.
    assert_eq!(globals(&tracker.forget("me", 130, start)), []);
    assert_eq!(globals(&tracker.forget("you", 140, start)), [GlobalEvent::Unconfigured]);
    // STARTING is left alone by a login (start-up sets RUNNING itself).
    let mut starting = StateTracker::new(StatusSettings::default());
    starting.set_global(GlobalEvent::Starting, start, 100);
    let out = starting.observe(bridge_state("me", 1, A::Connected, None, 110), start);
    assert_eq!(globals(&out), []);
}
