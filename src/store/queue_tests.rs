//! Tests of the persisted queues (`inbox.rs`): the QQ inbox and the Matrix outbox, on SQLite and,
//! when `QQBRIDGE_TEST_POSTGRES_URL` is set, PostgreSQL.

use super::tests::{event, fixtures, room};
use super::*;

/// The owner's Matrix message `n` bound for QQ (its map row, claimed with its outbox row).
fn outbox_message(n: u32) -> MessageRow {
    MessageRow {
        portal_key: "friend:me:10002".into(),
        remote_key: format!("mx:{}", event(n)),
        room_id: room(1),
        event_id: event(n),
        direction: Direction::MatrixToQq,
        sender: "@owner:example.org".into(),
        created_at: 1,
    }
}

#[test]
fn test_inbox_keeps_events_in_order_until_done_and_across_reopen() {
    for f in fixtures() {
        let row = |seq: u64, lane: &str| InboxRow {
            seq,
            account_id: "alice".into(),
            lane: lane.into(),
            event_json: format!("{{\"n\":{seq}}}"),
        };
        f.store.inbox_push(vec![row(20, "b"), row(10, "a")]).unwrap();
        f.store.inbox_push(vec![row(30, "a")]).unwrap();
        // A batch with a clash is refused whole: nothing of it is half-stored.
        assert!(f.store.inbox_push(vec![row(40, "a"), row(30, "a")]).is_err(), "{}", f.name);
        assert!(f.store.inbox_done(20).unwrap());
        assert!(!f.store.inbox_done(20).unwrap());
        let left = f.reopen().inbox().unwrap();
        assert_eq!(left, vec![row(10, "a"), row(30, "a")], "{}", f.name);
    }
}

#[test]
fn test_outbox_is_written_with_the_claim_and_only_then() {
    for f in fixtures() {
        let row = |n: u32, seq: u64| OutboxRow {
            room_id: room(1),
            event_id: event(n),
            seq,
            event_json: format!("{{\"n\":{n}}}"),
            sending: false,
            outcome: None,
        };
        let store = &f.store;
        let claim = |n: u32, seq: u64| {
            let (m, r) = (outbox_message(n), row(n, seq));
            store.blocking_call(move |c| c.claim_for_outbox(&m, &r)).unwrap()
        };
        assert!(claim(2, 20), "{}", f.name);
        assert!(claim(1, 10), "{}", f.name);
        // A replayed transaction claims nothing and leaves no second row.
        assert!(!claim(2, 30), "{}", f.name);
        assert_eq!(store.blocking_call(|c| c.outbox()).unwrap(), vec![row(1, 10), row(2, 20)]);
        let done =
            |n: u32| store.blocking_call(move |c| c.outbox_done(&room(1), event(n).as_str()));
        assert!(done(1).unwrap());
        assert!(!done(1).unwrap());
        let left = f.reopen().blocking_call(|c| c.outbox()).unwrap();
        assert_eq!(left, vec![row(2, 20)], "{}", f.name);
        // The claim stays: settled or not, the message is never sent again by a replay.
        assert!(!claim(1, 40), "{}", f.name);
    }
}

#[test]
fn test_batch_intake_reads_the_map_and_settle_writes_rows_before_deleting() {
    for f in fixtures() {
        let inbox = |seq: u64| InboxRow {
            seq,
            account_id: "alice".into(),
            lane: "friend:alice:10002".into(),
            event_json: format!("{{\"n\":{seq}}}"),
        };
        let message = |key: &str, n: u32| MessageRow {
            portal_key: "friend:alice:10002".into(),
            remote_key: key.into(),
            room_id: room(1),
            event_id: event(n),
            direction: Direction::QqToMatrix,
            sender: "10002".into(),
            created_at: 1,
        };
        let store = &f.store;
        store.insert_message(&message("old", 1)).unwrap();
        let keys: Vec<(String, String)> = ["old", "new", "old"]
            .iter()
            .map(|k| ("friend:alice:10002".to_owned(), (*k).to_owned()))
            .collect();
        let mapped = store
            .blocking_call(move |c| c.inbox_push_checked(&[inbox(1), inbox(2), inbox(3)], &keys))
            .unwrap();
        assert_eq!(mapped, [true, false, true], "{}", f.name);
        assert_eq!(store.inbox().unwrap().len(), 3, "{}", f.name);
        // A settle whose row clashes with nothing commits rows and deletions together; one
        // already mapped (a replay) is kept as it was.
        let rows = vec![message("new", 2), message("old", 9)];
        store.blocking_call(move |c| c.settle_inbox(&rows, &[1, 2])).unwrap();
        let left: Vec<u64> = store.inbox().unwrap().iter().map(|r| r.seq).collect();
        assert_eq!(left, [3], "{}", f.name);
        let reopened = f.reopen();
        assert!(reopened.is_message_mapped("friend:alice:10002", "new").unwrap(), "{}", f.name);
        let old = reopened.message_by_remote("friend:alice:10002", "old").unwrap();
        assert_eq!(old.map(|m| m.event_id), Some(event(1)), "{}", f.name);
        assert!(!reopened.is_message_mapped("friend:alice:10002", "none").unwrap(), "{}", f.name);
    }
}

#[test]
fn test_sending_mark_and_outcome_survive_a_reopen_and_only_mark_outbox_rows() {
    for f in fixtures() {
        let row = |n: u32, sending: bool| OutboxRow {
            room_id: room(1),
            event_id: event(n),
            seq: u64::from(n),
            event_json: "{}".into(),
            sending,
            outcome: None,
        };
        let store = &f.store;
        for n in [1, 2, 3] {
            let (m, r) = (outbox_message(n), row(n, false));
            assert!(store.blocking_call(move |c| c.claim_for_outbox(&m, &r)).unwrap());
        }
        let mark =
            |n: u32| store.blocking_call(move |c| c.outbox_sending(&room(1), event(n).as_str()));
        assert!(mark(2).unwrap(), "{}", f.name);
        assert!(mark(2).unwrap(), "marking twice is harmless: {}", f.name);
        assert!(!mark(4).unwrap(), "not in the outbox: {}", f.name);
        let keep = |n: u32, outcome: &'static str| {
            store.blocking_call(move |c| c.outbox_outcome(&room(1), event(n).as_str(), outcome))
        };
        assert!(keep(3, "first").unwrap(), "{}", f.name);
        assert!(keep(3, "second").unwrap(), "{}", f.name);
        assert!(!keep(4, "lost").unwrap(), "not in the outbox: {}", f.name);
        let left = f.reopen().blocking_call(|c| c.outbox()).unwrap();
        let told = OutboxRow { outcome: Some("second".into()), ..row(3, false) };
        assert_eq!(left, vec![row(1, false), row(2, true), told], "{}", f.name);
    }
}

#[test]
fn test_poll_batches_wait_per_account_and_leave_with_their_inbox_rows() {
    for f in fixtures() {
        let polled = |account: &str, seq: u64| PolledRow {
            account_id: account.into(),
            seq,
            session: 7,
            events_json: format!("[{seq}]"),
        };
        let store = &f.store;
        for row in [polled("a", 2), polled("a", 1), polled("b", 1)] {
            store.blocking_call(move |c| c.polled_push(&row)).unwrap();
        }
        let of = |account: &'static str| store.blocking_call(move |c| c.polled(account)).unwrap();
        assert_eq!(of("a"), vec![polled("a", 1), polled("a", 2)], "{}", f.name);
        let inbox = InboxRow {
            seq: 5,
            account_id: "a".into(),
            lane: "friend:a:10002".into(),
            event_json: "{}".into(),
        };
        let done = vec![("a".to_owned(), 1)];
        store.blocking_call(move |c| c.inbox_push_resolved(&[inbox], &[], &done)).unwrap();
        // A clash in the inbox refuses the batch whole: it stays in `qq_polled`.
        let clash = InboxRow {
            seq: 5,
            account_id: "a".into(),
            lane: "friend:a:10002".into(),
            event_json: "{}".into(),
        };
        let done = vec![("a".to_owned(), 2)];
        assert!(store.blocking_call(move |c| c.inbox_push_resolved(&[clash], &[], &done)).is_err());
        let reopened = f.reopen();
        assert_eq!(reopened.blocking_call(|c| c.polled("a")).unwrap(), vec![polled("a", 2)]);
        assert_eq!(reopened.blocking_call(|c| c.polled("b")).unwrap(), vec![polled("b", 1)]);
        assert_eq!(reopened.inbox().unwrap().len(), 1, "{}", f.name);
    }
}
