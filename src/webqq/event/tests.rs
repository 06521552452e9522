//! Tests of the poll2 event model against the fixtures in `tests/fixtures/webqq/poll2/`.

use expect_test::{Expect, expect};
use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;
use crate::webqq::content::Segment;
use crate::webqq::content::tests::arb_json;

macro_rules! fixtures {
    ($($name:literal),* $(,)?) => {
        [$(($name, include_str!(concat!("../../../tests/fixtures/webqq/poll2/", $name, ".json")))),*]
    };
}

/// Every non-idle fixture: each is a whole poll2 answer `{"retcode":0,"result":[...]}`.
const EVENT_FIXTURES: [(&str, &str); 34] = fixtures![
    "seed_message",
    "seed_group_message",
    "message_2013",
    "message_smartqq",
    "group_message_2013",
    "group_message_smartqq",
    "group_message_smartqq_2018",
    "group_message_magic_face",
    "discu_message",
    "discu_message_smartqq",
    "sess_message",
    "kick_message",
    "buddies_status_change",
    "input_notify",
    "shake_message",
    "system_message_verify_required",
    "system_message_added_buddy_sig",
    "system_message_verify_pass",
    "system_message_verify_pass_add",
    "sys_g_msg_group_join",
    "sys_g_msg_group_create",
    "sys_g_msg_group_leave",
    "sys_g_msg_group_request_join",
    "sys_g_msg_group_request_join_agree",
    "sys_g_msg_group_request_join_deny",
    "sys_g_msg_group_admin_op",
    "buddylist_change",
    "group_web_message",
    "notify_offfile",
    "push_offfile",
    "file_message_recv",
    "file_message_refuse",
    "filesrv_transfer",
    "tips",
];

const IDLE_FIXTURES: [(&str, &str); 5] = fixtures![
    "idle_102",
    "idle_result_missing",
    "idle_result_empty",
    "idle_result_null",
    "idle_2018_error",
];

fn answer(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

fn only_event(text: &str) -> PollEvent {
    let events = decode_poll_result(&answer(text)["result"]);
    assert_eq!(events.len(), 1, "{text}");
    events.into_iter().next().unwrap()
}

/// The variant name as written in Rust, to check decoding picked the intended one.
fn variant(event: &PollEvent) -> String {
    let debug = format!("{event:?}");
    debug.split(['(', ' ']).next().unwrap().to_owned()
}

#[test]
fn test_every_fixture_decodes_to_its_variant_and_round_trips() {
    let mut summary = String::new();
    for (name, text) in EVENT_FIXTURES {
        let wire = answer(text);
        let events = decode_poll_result(&wire["result"]);
        assert!(!events.is_empty(), "{name}");
        for (event, element) in events.iter().zip(wire["result"].as_array().unwrap()) {
            assert!(!matches!(event, PollEvent::Unknown { .. }), "{name}: {event:?}");
            assert_eq!(event.poll_type(), element["poll_type"], "{name}");
            // Nothing is dropped from any fixture: the re-encoded event equals the element.
            assert_eq!(&serde_json::to_value(event).unwrap(), element, "{name}");
            let via_serde: PollEvent = serde_json::from_value(element.clone()).unwrap();
            assert_eq!(&via_serde, event, "{name}");
            summary.push_str(&format!("{name}: {}\n", variant(event)));
        }
    }
    expect![[r#"
        seed_message: Message
        seed_group_message: GroupMessage
        message_2013: Message
        message_smartqq: Message
        group_message_2013: GroupMessage
        group_message_smartqq: GroupMessage
        group_message_smartqq_2018: GroupMessage
        group_message_magic_face: GroupMessage
        discu_message: DiscuMessage
        discu_message_smartqq: DiscuMessage
        sess_message: SessMessage
        kick_message: KickMessage
        buddies_status_change: BuddiesStatusChange
        input_notify: InputNotify
        shake_message: ShakeMessage
        system_message_verify_required: SystemMessage
        system_message_added_buddy_sig: SystemMessage
        system_message_verify_pass: SystemMessage
        system_message_verify_pass_add: SystemMessage
        sys_g_msg_group_join: SysGroupMessage
        sys_g_msg_group_create: SysGroupMessage
        sys_g_msg_group_leave: SysGroupMessage
        sys_g_msg_group_request_join: SysGroupMessage
        sys_g_msg_group_request_join_agree: SysGroupMessage
        sys_g_msg_group_request_join_deny: SysGroupMessage
        sys_g_msg_group_admin_op: SysGroupMessage
        buddylist_change: BuddylistChange
        group_web_message: GroupWebMessage
        notify_offfile: NotifyOffFile
        push_offfile: PushOffFile
        file_message_recv: FileMessage
        file_message_refuse: FileMessage
        filesrv_transfer: FilesrvTransfer
        tips: Tips
    "#]]
    .assert_eq(&summary);
}

#[test]
fn test_idle_answers_give_no_events() {
    for (name, text) in IDLE_FIXTURES {
        assert_eq!(decode_poll_result(&answer(text)["result"]), vec![], "{name}");
    }
    assert_eq!(decode_poll_result(&json!({"poll_type": "message"})), vec![]);
    assert_eq!(decode_poll_result(&json!("[]")), vec![]);
}

#[test]
fn test_message_key_fields() {
    let PollEvent::Message(m) = only_event(EVENT_FIXTURES[0].1) else { panic!("not a message") };
    assert_eq!(
        (m.msg_id.get(), m.from_uin.get(), m.to_uin.get(), m.time),
        (24225, 2_440_652_742, 2_769_546_520, 1_388_368_696)
    );
    assert_eq!(
        (m.msg_id2.map(MsgId::get), m.msg_type, m.reply_ip),
        (Some(950_054), Some(9), Some(176_498_455))
    );
    assert_eq!(m.content.plain_text(), "hii ");
    assert_eq!(m.content.font.as_ref().map(|f| (f.name.as_str(), f.size)), Some(("STKaiti", 13)));

    let PollEvent::Message(m) = only_event(EVENT_FIXTURES[3].1) else { panic!("not a message") };
    assert_eq!((m.msg_id2, m.reply_ip, m.msg_type), (None, None, Some(0)));
    assert_eq!(m.content.plain_text(), "123");
}

#[test]
fn test_group_and_discussion_key_fields() {
    let PollEvent::GroupMessage(g) = only_event(EVENT_FIXTURES[1].1) else { panic!("group") };
    assert_eq!(g.from_uin, Gid::new(2_559_225_925));
    assert_eq!(g.group_code, GroupCode::new(3_483_368_056));
    assert_eq!(g.send_uin, Uin::new(2_440_652_742));
    assert_eq!(g.info_seq, Some(GroupNumber::new(346_167_134)));
    assert_eq!((g.seq, g.t_gcode), (Some(27), None));

    let PollEvent::GroupMessage(g) = only_event(EVENT_FIXTURES[5].1) else { panic!("group") };
    assert_eq!(g.group_code.get(), g.from_uin.get(), "SmartQQ fake group code");
    assert_eq!((g.info_seq, g.seq, g.msg_id2), (None, None, None));

    let PollEvent::GroupMessage(g) = only_event(EVENT_FIXTURES[7].1) else { panic!("group") };
    assert_eq!((g.msg_type, g.t_gcode), (Some(32), Some(GroupNumber::new(346_167_134))));
    assert_eq!(g.content.segments, vec![Segment::Text(String::new())]);

    let PollEvent::DiscuMessage(d) = only_event(EVENT_FIXTURES[8].1) else { panic!("discu") };
    assert_eq!(
        (d.did, d.from_uin, d.send_uin),
        (Did::new(2_006_892_653), Uin::new(10000), Uin::new(1_657_605_740))
    );
    assert_eq!((d.info_seq, d.content.plain_text().as_str()), (Some(2), "world "));
}

#[test]
fn test_sess_kick_and_notices() {
    let PollEvent::SessMessage(s) = only_event(EVENT_FIXTURES[10].1) else { panic!("sess") };
    assert_eq!(s.source(), Some(SessSource::Discussion(Did::new(2_581_801_127))));
    assert_eq!(s.ruin, Some(QqNumber::new(444_674_479)));
    assert_eq!(s.content.plain_text(), "2载3 [face:1] ");
    let group = SessMessage { service_type: Some(0), ..s.clone() };
    assert_eq!(group.source(), Some(SessSource::Group(Gid::new(2_581_801_127))));
    assert_eq!(SessMessage { service_type: Some(7), ..s.clone() }.source(), None);
    assert_eq!(SessMessage { id: None, ..s }.source(), None);

    let PollEvent::KickMessage(k) = only_event(EVENT_FIXTURES[11].1) else { panic!("kick") };
    assert!(k.shown_reason().unwrap().starts_with("您的帐号在另一地点登录"));
    assert_eq!(KickMessage { show_reason: Some(0), ..k }.shown_reason(), None);

    let PollEvent::InputNotify(n) = only_event(EVENT_FIXTURES[13].1) else { panic!("input") };
    assert_eq!((n.msg_id2, n.reply_ip), (Some(MsgId::new(3_588_813_984)), Some(4_294_967_295)));
    assert!(matches!(only_event(EVENT_FIXTURES[14].1), PollEvent::ShakeMessage(_)));
}

#[test]
fn test_system_messages() {
    let kinds: Vec<String> = EVENT_FIXTURES[15..19]
        .iter()
        .map(|(_, text)| match only_event(text) {
            PollEvent::SystemMessage(m) => {
                format!("{} {:?} {:?}", m.kind.as_str(), m.account, m.group_id)
            }
            other => format!("{other:?}"),
        })
        .collect();
    expect![[r#"
        [
            "verify_required Some(QqNumber(841473232)) None",
            "added_buddy_sig Some(QqNumber(841473232)) None",
            "verify_pass None None",
            "verify_pass_add None Some(0)",
        ]
    "#]]
    .assert_debug_eq(&kinds);

    let wire = json!({"poll_type": "system_message", "value": {"type": "new_kind", "from_uin": 5, "seq": 1}});
    let PollEvent::SystemMessage(m) = PollEvent::from_wire(&wire) else { panic!("system") };
    assert_eq!(m.kind, SystemKind::Other("new_kind".to_owned()));
    assert_eq!(serde_json::to_value(PollEvent::SystemMessage(m)).unwrap(), wire);
}

#[test]
fn test_sys_g_msg_kinds() {
    let kinds: Vec<String> = EVENT_FIXTURES[19..26]
        .iter()
        .map(|(_, text)| match only_event(text) {
            PollEvent::SysGroupMessage(m) => format!("{:?} {:?}", m.t_gcode, m.kind),
            other => format!("{other:?}"),
        })
        .collect();
    expect![[r#"
        [
            "Some(GroupNumber(249818602)) GroupJoin { op_type: Some(3), new_member: Uin(2501542492), t_new_member: Some(Blank), admin_uin: Some(Uin(1448380605)), admin_nick: Some(\"创建者\") }",
            "Some(GroupNumber(249818602)) GroupCreate { owner_uin: Some(Uin(2501542492)) }",
            "Some(GroupNumber(249818602)) GroupLeave { op_type: Some(3), old_member: Uin(3228283951), t_old_member: Some(Blank), admin_uin: Some(Uin(1448380605)), t_admin_uin: Some(Blank), admin_nick: Some(\"创建者\") }",
            "Some(GroupNumber(249818602)) GroupRequestJoin { request_uin: Uin(3228283951), t_request_uin: Some(Blank), msg: Some(\"please let me in\") }",
            "Some(GroupNumber(249818602)) GroupRequestJoinAgree { admin_uin: Some(Uin(1448380605)), msg: Some(\"\"), new_member: Some(Uin(2501542492)), t_new_member: Some(Blank) }",
            "Some(GroupNumber(249818602)) GroupRequestJoinDeny { admin_uin: Some(Uin(1448380605)), msg: Some(\"no\"), old_member: Some(Uin(2501542492)) }",
            "Some(GroupNumber(249818602)) GroupAdminOp { op_type: Some(1), uin: Uin(3228283951), t_uin: Some(Blank), uin_flag: Some(1) }",
        ]
    "#]]
    .assert_debug_eq(&kinds);
}

#[test]
fn test_sys_g_msg_unknown_sub_type_and_real_numbers() {
    let wire = json!({"poll_type": "sys_g_msg", "value": {"msg_id": 1, "from_uin": 2, "to_uin": 3,
        "type": "group_rename", "t_gcode": 4, "new_name": "x", "extra": [1, 2]}});
    let PollEvent::SysGroupMessage(m) = PollEvent::from_wire(&wire) else { panic!("sys_g_msg") };
    let SysGroupKind::Other { sub_type, raw } = &m.kind else { panic!("not other") };
    assert_eq!(sub_type, "group_rename");
    assert_eq!(raw.keys().collect::<Vec<_>>(), ["extra", "new_name"]);
    assert_eq!(m.t_gcode, Some(GroupNumber::new(4)));
    assert_eq!(serde_json::to_value(PollEvent::SysGroupMessage(m)).unwrap(), wire);

    let join = |t_new_member: Value, t_gcode: Value| {
        json!({"poll_type": "sys_g_msg", "value": {"msg_id": 1, "from_uin": 2, "to_uin": 3,
            "type": "group_join", "new_member": 3, "t_new_member": t_new_member, "t_gcode": t_gcode}})
    };
    let PollEvent::SysGroupMessage(m) = PollEvent::from_wire(&join(json!("12345"), json!("")))
    else {
        panic!("sys_g_msg")
    };
    let SysGroupKind::GroupJoin { t_new_member, .. } = m.kind else { panic!("join") };
    assert_eq!(t_new_member.and_then(RealNumber::number), Some(QqNumber::new(12345)));
    assert_eq!(m.t_gcode, None, "a blank t_gcode reads as absent");
    let bad = PollEvent::from_wire(&join(json!("x1"), json!(5)));
    assert!(matches!(bad, PollEvent::Unknown { .. }), "{bad:?}");
}

#[test]
fn test_unknown_poll_type_is_kept_raw() {
    let wire =
        json!({"poll_type": "red_packet", "value": {"amount": 8.88, "from_uin": 1}, "extra": true});
    let event = PollEvent::from_wire(&wire);
    let PollEvent::Unknown { poll_type, raw, reason } = &event else { panic!("{event:?}") };
    assert_eq!((poll_type.as_str(), reason.as_str()), ("red_packet", "unknown poll_type"));
    assert_eq!(raw, &wire);
    assert_eq!(event.poll_type(), "red_packet");
    assert_eq!(serde_json::to_value(&event).unwrap(), wire);
}

#[test]
fn test_batch_with_one_broken_event_keeps_the_others() {
    let mut batch = answer(EVENT_FIXTURES[3].1)["result"].clone();
    let mut broken = batch[0].clone();
    broken["value"]["from_uin"] = json!("abc");
    let group = answer(EVENT_FIXTURES[5].1)["result"][0].clone();
    let batch = json!([batch[0].take(), broken, 42, group]);
    let events = decode_poll_result(&batch);
    let names: Vec<String> = events.iter().map(variant).collect();
    assert_eq!(names, ["Message", "Unknown", "Unknown", "GroupMessage"]);
    let PollEvent::Unknown { reason, raw, .. } = &events[1] else { panic!("unknown") };
    assert_eq!(reason, "field `from_uin`: not a number: \"abc\"");
    assert_eq!(raw, &batch[1]);
    assert_eq!(serde_json::to_value(&events).unwrap(), batch);
}

fn check_reason(element: Value, expect: Expect) {
    match PollEvent::from_wire(&element) {
        PollEvent::Unknown { reason, raw, .. } => {
            assert_eq!(raw, element);
            expect.assert_eq(&reason);
        }
        other => panic!("decoded: {other:?}"),
    }
}

#[test]
fn test_unknown_reasons_name_the_member() {
    let message = || answer(EVENT_FIXTURES[3].1)["result"][0].clone();
    let with = |key: &str, value: Value| {
        let mut element = message();
        element["value"][key] = value;
        element
    };
    let without = |key: &str| {
        let mut element = message();
        element["value"].as_object_mut().unwrap().remove(key);
        element
    };
    check_reason(
        with("content", json!({"a": 1})),
        expect![[r#"field `content`: content is not a JSON array but an object"#]],
    );
    check_reason(
        with("msg_id", json!(-5)),
        expect![[r#"field `msg_id`: out of range integral type conversion attempted"#]],
    );
    check_reason(
        with("time", json!([])),
        expect![[r#"field `time`: data did not match any variant of untagged enum NumOrText"#]],
    );
    check_reason(without("time"), expect![[r#"missing field `time`"#]]);
    check_reason(json!({"poll_type": "message"}), expect![[r#"missing `value`"#]]);
    check_reason(json!({"value": {}}), expect![[r#"missing or non-string `poll_type`"#]]);
    check_reason(
        json!({"poll_type": 7, "value": {}}),
        expect![[r#"missing or non-string `poll_type`"#]],
    );
    check_reason(json!("message"), expect![[r#"event is not an object"#]]);
    check_reason(
        json!({"poll_type": "message", "value": []}),
        expect![[r#"value is not an object"#]],
    );
    check_reason(
        json!({"poll_type": "sys_g_msg", "value": {"msg_id": 1, "from_uin": 2, "to_uin": 3}}),
        expect![[r#"missing field `type`"#]],
    );
    check_reason(
        json!({"poll_type": "sys_g_msg", "value": {"msg_id": 1, "from_uin": 2, "to_uin": 3,
            "type": "group_leave", "old_member": "x"}}),
        expect![[r#"field `old_member`: not a number: "x""#]],
    );
    let long = "x".repeat(1000);
    let PollEvent::Unknown { reason, .. } = PollEvent::from_wire(&with("from_uin", json!(long)))
    else {
        panic!("decoded")
    };
    assert!(reason.len() <= MAX_REASON_BYTES + '…'.len_utf8(), "{}", reason.len());
}

#[test]
fn test_kick_message_is_a_kick_whatever_its_value() {
    for value in [json!(null), json!({"reason": 5}), json!({}), json!([1])] {
        let event = PollEvent::from_wire(&json!({"poll_type": "kick_message", "value": value}));
        assert_eq!(event, PollEvent::KickMessage(KickMessage::default()), "{value}");
    }
}

#[test]
fn test_emulator_built_event_has_the_slim_wire_shape() {
    let event = PollEvent::GroupMessage(GroupMessage {
        msg_id: MsgId::new(3373),
        from_uin: Gid::new(858_811_018),
        to_uin: Uin::new(229_845_213),
        msg_id2: None,
        msg_type: Some(0),
        reply_ip: None,
        group_code: GroupCode::new(858_811_018),
        send_uin: Uin::new(1_786_202_149),
        seq: None,
        time: 1_483_848_903,
        info_seq: None,
        t_gcode: None,
        content: Content::text("123").with_font(crate::webqq::content::Font {
            name: "微软雅黑".to_owned(),
            ..Default::default()
        }),
    });
    assert_eq!(serde_json::to_value(&event).unwrap(), answer(EVENT_FIXTURES[5].1)["result"][0]);
}

/// Fixture events with one member replaced by arbitrary JSON or removed.
fn arb_mutated_event() -> impl Strategy<Value = Value> {
    let events: Vec<Value> = EVENT_FIXTURES
        .iter()
        .flat_map(|(_, text)| answer(text)["result"].as_array().unwrap().clone())
        .collect();
    (prop::sample::select(events), any::<prop::sample::Index>(), arb_json(), any::<bool>())
        .prop_map(|(mut event, index, replacement, remove)| {
            if let Some(value) = event["value"].as_object_mut()
                && let Some(key) = value.keys().nth(index.index(value.len().max(1))).cloned()
            {
                if remove {
                    value.remove(&key);
                } else {
                    value.insert(key, replacement);
                }
            }
            event
        })
}

proptest! {
    #[test]
    fn test_decode_poll_result_never_panics(result in arb_json()) {
        for event in decode_poll_result(&result) {
            let wire = serde_json::to_value(&event).unwrap();
            prop_assert_eq!(PollEvent::from_wire(&wire), event);
        }
    }

    #[test]
    fn test_mutated_events_decode_stably(element in arb_mutated_event()) {
        let event = PollEvent::from_wire(&element);
        let wire = serde_json::to_value(&event).unwrap();
        if let PollEvent::Unknown { raw, .. } = &event {
            prop_assert_eq!(raw, &element);
        }
        prop_assert_eq!(PollEvent::from_wire(&wire), event);
    }
}

/// Every `poll_type` of protocol §4, plus one that does not exist.
const POLL_TYPES: [&str; 18] = [
    "message",
    "group_message",
    "discu_message",
    "sess_message",
    "kick_message",
    "buddies_status_change",
    "input_notify",
    "shake_message",
    "system_message",
    "sys_g_msg",
    "buddylist_change",
    "group_web_message",
    "notify_offfile",
    "push_offfile",
    "file_message",
    "filesrv_transfer",
    "tips",
    "no_such_type",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn test_any_value_of_any_poll_type_decodes_stably(
        poll_type in prop::sample::select(POLL_TYPES.to_vec()),
        value in arb_json(),
    ) {
        let element = json!({"poll_type": poll_type, "value": value});
        let event = PollEvent::from_wire(&element);
        // A bad value degrades to Unknown (kept raw) and never loses the poll type.
        prop_assert_eq!(event.poll_type(), poll_type);
        let wire = serde_json::to_value(&event).unwrap();
        prop_assert_eq!(PollEvent::from_wire(&wire), event);
    }

    #[test]
    fn test_any_bytes_that_parse_decode_without_panic(
        bytes in prop::collection::vec(any::<u8>(), 0..128),
    ) {
        if let Ok(value) = serde_json::from_slice::<Value>(&bytes) {
            let _ = decode_poll_result(&value);
            let _ = PollEvent::from_wire(&value);
        }
    }
}
