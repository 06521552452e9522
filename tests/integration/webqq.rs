//! The protocol client against the emulator: both login flows, relink, contacts, messages both
//! ways, faults and their classification, per-session uins versus stable numbers.

use std::time::Duration;

use qqbridge::webqq::api::poll2::PollAnswer;
use qqbridge::webqq::api::ptqrlogin::QrState;
use qqbridge::webqq::client::WebQqClient;
use qqbridge::webqq::content::{Content, Segment};
use qqbridge::webqq::directory::Directory;
use qqbridge::webqq::event::PollEvent;
use qqbridge::webqq::login::{PasswordLogin, PasswordStart, QrLogin, relink};
use qqbridge::webqq::retcode::Action;
use qqbridge::webqq::{Did, Error, GroupNumber, QqNumber, Secret};
use serde_json::json;

use crate::harness::TestEmulator;

const ME: u64 = 10001;
const ALICE: u64 = 10002;
const BREATH: u64 = 10003;
const GROUP: u64 = 346_167_134;
const DISCUSSION: u64 = 2_006_892_653;

async fn login(te: &TestEmulator) -> WebQqClient {
    let client = te.client();
    let password = Secret::new(String::from("password"));
    match PasswordLogin::start(&client, QqNumber::new(ME), &password).await.unwrap() {
        PasswordStart::Ready(login) => login.submit(&client, None).await.unwrap(),
        PasswordStart::Captcha(..) => panic!("10001 has no captcha"),
    };
    client
}

/// Polls until at least one event arrives (or panics after `limit` polls).
async fn poll_events(client: &WebQqClient, limit: usize) -> Vec<PollEvent> {
    for _ in 0..limit {
        match client.poll().await {
            Ok(PollAnswer::Events(events)) => return events,
            Ok(_) => {}
            Err(e) if e.action() == Action::ProbeSession => {
                client.online_buddies().await.unwrap();
            }
            Err(e) => panic!("poll failed: {e}"),
        }
    }
    panic!("no event after {limit} polls")
}

#[tokio::test]
async fn test_password_login_without_captcha_and_wrong_password() {
    let te = TestEmulator::start().await;
    let client = login(&te).await;
    let session = client.session().unwrap();
    assert_eq!(session.qq, QqNumber::new(ME));
    assert_eq!(session.channel, qqbridge::webqq::hosts::Channel::D);
    let profile = client.self_info().await.unwrap();
    assert_eq!(profile.account, Some(QqNumber::new(ME)));

    let other = te.client();
    let wrong = Secret::new(String::from("not-the-password"));
    let PasswordStart::Ready(attempt) =
        PasswordLogin::start(&other, QqNumber::new(ME), &wrong).await.unwrap()
    else {
        panic!("no captcha expected")
    };
    let err = attempt.submit(&other, None).await.unwrap_err();
    assert!(matches!(err, Error::LoginRefused { code: 3, .. }), "{err:?}");
    assert_eq!(err.action(), Action::Fatal);
}

#[tokio::test]
async fn test_password_login_with_captcha_right_and_wrong() {
    let te = TestEmulator::start().await;
    let client = te.client();
    let password = Secret::new(String::from("123456"));
    let PasswordStart::Captcha(attempt, image) =
        PasswordLogin::start(&client, QqNumber::new(ALICE), &password).await.unwrap()
    else {
        panic!("10002 needs a captcha")
    };
    assert!(image.starts_with(&[0xff, 0xd8]), "captcha is a JPEG");
    let err = attempt.submit(&client, Some("WRONG")).await.unwrap_err();
    assert!(matches!(err, Error::LoginRefused { code: 4, .. }), "{err:?}");

    let client = te.client();
    let PasswordStart::Captcha(attempt, _) =
        PasswordLogin::start(&client, QqNumber::new(ALICE), &password).await.unwrap()
    else {
        panic!("10002 needs a captcha")
    };
    let state = te.control_get("state").await;
    let code = state["captchas"][ALICE.to_string()]
        .as_str()
        .expect("captcha text in /_emulator/state")
        .to_owned();
    attempt.submit(&client, Some(&code.to_lowercase())).await.unwrap();
    assert_eq!(client.session().unwrap().qq, QqNumber::new(ALICE));
}

#[tokio::test]
async fn test_qr_login_scan_confirm_and_expiry() {
    let te = TestEmulator::start_with(qqbridge::emulator::World::demo(), |o| {
        o.qr_lifetime = Duration::from_millis(1500);
    })
    .await;
    let client = te.client();
    let (qr, png) = QrLogin::start(&client).await.unwrap();
    assert!(png.starts_with(b"\x89PNG"));
    assert!(qqbridge::terminal::render_qr_png(&png).is_ok());
    assert_eq!(qr.state(&client).await.unwrap(), QrState::Waiting);
    te.control("qr/scan", json!({"qq": ME})).await;
    assert_eq!(qr.state(&client).await.unwrap(), QrState::Scanned);
    te.control("qr/confirm", json!({"qq": ME})).await;
    let QrState::Confirmed { check_sig_url, nick } = qr.state(&client).await.unwrap() else {
        panic!("not confirmed")
    };
    let qq = qr.finish(&client, &check_sig_url, &nick).await.unwrap();
    assert_eq!(qq, QqNumber::new(ME));
    assert_eq!(client.session().unwrap().channel, qqbridge::webqq::hosts::Channel::D1);
    assert_eq!(client.session().unwrap().uin.get(), ME, "SmartQQ: own uin is the QQ number");

    let other = te.client();
    let (expiring, _) = QrLogin::start(&other).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1800)).await;
    assert_eq!(expiring.state(&other).await.unwrap(), QrState::Expired);
}

#[tokio::test]
async fn test_relink_of_a_stored_session() {
    let te = TestEmulator::start().await;
    let client = login(&te).await;
    let stored = serde_json::to_string(&client.session().unwrap()).unwrap();
    drop(client);
    let session = serde_json::from_str(&stored).unwrap();
    let restored = WebQqClient::restore(te.client_config(), &session).unwrap();
    relink(&restored).await.unwrap();
    te.post_message(ME, "friend", ALICE, "after relink", json!({})).await;
    let events = poll_events(&restored, 5).await;
    assert!(
        matches!(&events[0], PollEvent::Message(m) if m.content.plain_text().contains("after relink"))
    );
}

#[tokio::test]
async fn test_contacts_groups_members_discussions() {
    let te = TestEmulator::start().await;
    let client = login(&te).await;
    let directory = Directory::load(&client).await.unwrap();
    let alice = directory.uin_of(QqNumber::new(ALICE)).expect("alice resolved");
    assert_eq!(directory.display_name(alice), Some("爱丽丝"));
    assert!(directory.uin_of(QqNumber::new(BREATH)).is_some());
    let group = directory.group_by_number(GroupNumber::new(GROUP)).expect("group resolved");
    assert_eq!(group.name, "qqbot群");
    let details = client.group_info(group.code).await.unwrap();
    assert_eq!(details.minfo.len(), 4);
    assert!(details.cards.unwrap_or_default().iter().any(|c| c.card == "Bob"));
    // A gid is not a group code: the server says 6 (protocol §2.8).
    let err =
        client.group_info(qqbridge::webqq::GroupCode::new(group.gid.get())).await.unwrap_err();
    assert_eq!(err.retcode().map(|r| r.0), Some(6));
    let discussion = directory.discussions.get(&Did::new(DISCUSSION)).expect("discussion listed");
    assert_eq!(discussion.name, "good day");
    let info = client.discussion_info(Did::new(DISCUSSION)).await.unwrap();
    assert!(info.info.mem_list.iter().any(|m| m.ruin == QqNumber::new(ALICE)));
    client.recent_list().await.unwrap();
    client.change_status("away").await.unwrap();
}

#[tokio::test]
async fn test_messages_both_ways_with_faces_and_images() {
    let te = TestEmulator::start().await;
    let client = login(&te).await;
    let directory = Directory::load(&client).await.unwrap();

    te.post_message(ME, "friend", ALICE, "hi <b>", json!({"face": 14})).await;
    te.post_message(ME, "group", BREATH, "group hello", json!({"group": GROUP, "image": true}))
        .await;
    te.post_message(ME, "discussion", ALICE, "discussion hello", json!({"discussion": DISCUSSION}))
        .await;
    let mut events = Vec::new();
    while events.len() < 3 {
        events.extend(poll_events(&client, 5).await);
    }
    let PollEvent::Message(buddy) = &events[0] else { panic!("{:?}", events[0]) };
    assert_eq!(directory.qq_of(buddy.from_uin), Some(QqNumber::new(ALICE)));
    assert!(buddy.content.segments.contains(&Segment::Face(14)));
    assert!(qqbridge::webqq::content::normalize_for_echo(&buddy.content).contains("hi <b>"));
    let PollEvent::GroupMessage(group) = &events[1] else { panic!("{:?}", events[1]) };
    assert_eq!(
        directory.group(group.from_uin).and_then(|g| g.number),
        Some(GroupNumber::new(GROUP))
    );
    let picture = group.content.segments.iter().find_map(|s| match s {
        Segment::GroupPicture { name, file_id, server, .. } => {
            Some((name.clone(), *file_id, server.clone()))
        }
        _ => None,
    });
    let (name, file_id, server) = picture.expect("group picture segment");
    let code = directory.group(group.from_uin).unwrap().code;
    let image = client
        .fetch_group_pic(0, code.get(), group.send_uin, &server, file_id, &name)
        .await
        .unwrap();
    assert!(image.len() > 16);
    let PollEvent::DiscuMessage(discussion) = &events[2] else { panic!("{:?}", events[2]) };
    assert_eq!(discussion.did, Did::new(DISCUSSION));

    let alice = directory.uin_of(QqNumber::new(ALICE)).unwrap();
    let mut reply = Content::text("reply \"quoted\"\nline two");
    reply.push_face(13);
    client.send_buddy(alice, &reply).await.unwrap();
    let group_entry = directory.group_by_number(GroupNumber::new(GROUP)).unwrap();
    let name = client.upload_cface("pic.png", tiny_png()).await.unwrap();
    let mut with_picture = Content::text("look");
    with_picture.push(Segment::GroupCface { name });
    client.send_group(group_entry.gid, group_entry.code, &with_picture).await.unwrap();
    client
        .send_discussion(Did::new(DISCUSSION), &Content::text("to the discussion"))
        .await
        .unwrap();
    let sent = te.sent(ME).await;
    assert_eq!(sent.len(), 3, "{sent:?}");
    assert_eq!(sent[0]["kind"], "friend");
    assert_eq!(sent[0]["target"], ALICE);
    assert!(sent[0]["text"].as_str().unwrap().contains("reply \"quoted\"\nline two"));
    assert_eq!(sent[1]["target"], GROUP);
    assert_eq!(sent[2]["target"], DISCUSSION);
}

fn tiny_png() -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut out, 2, 2);
        encoder.set_color(png::ColorType::Grayscale);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().unwrap();
        writer.write_image_data(&[0, 255, 255, 0]).unwrap();
    }
    out
}

#[tokio::test]
async fn test_uins_change_across_logins_but_numbers_do_not() {
    let te = TestEmulator::start().await;
    let first = Directory::load(&login(&te).await).await.unwrap();
    let second = Directory::load(&login(&te).await).await.unwrap();
    let (a1, a2) =
        (first.uin_of(QqNumber::new(ALICE)).unwrap(), second.uin_of(QqNumber::new(ALICE)).unwrap());
    assert_ne!(a1, a2, "uins are drawn per session");
    let (g1, g2) = (
        first.group_by_number(GroupNumber::new(GROUP)).unwrap(),
        second.group_by_number(GroupNumber::new(GROUP)).unwrap(),
    );
    assert_ne!(g1.gid, g2.gid, "gids are drawn per session");
}

#[tokio::test]
async fn test_second_login_kicks_the_first_with_121() {
    let te = TestEmulator::start().await;
    let first = login(&te).await;
    first.online_buddies().await.unwrap();
    let _second = login(&te).await;
    let err = loop {
        match first.poll().await {
            Ok(_) => continue,
            Err(e) => break e,
        }
    };
    assert!(err.is_kicked() || matches!(err.action(), Action::ProbeSession), "{err:?}");
}

#[tokio::test]
async fn test_faults_and_their_classification() {
    let te = TestEmulator::start().await;
    let client = login(&te).await;
    client.online_buddies().await.unwrap();
    let cases = [
        (json!({"endpoint": "poll2", "count": 1, "kind": {"retcode": 103}}), Action::ProbeSession),
        (json!({"endpoint": "poll2", "count": 1, "kind": {"retcode": 108}}), Action::Relogin),
        (
            json!({"endpoint": "poll2", "count": 1, "kind": {"retcode": 116}}),
            Action::RefreshPtwebqq,
        ),
        (
            json!({"endpoint": "poll2", "count": 1, "kind": {"retcode": 121}}),
            Action::LoggedInElsewhere,
        ),
        (
            json!({"endpoint": "poll2", "count": 1, "kind": {"retcode": 100001}}),
            Action::RefreshLists,
        ),
        (json!({"endpoint": "poll2", "count": 1, "kind": {"http_status": 500}}), Action::Transient),
        (json!({"endpoint": "poll2", "count": 1, "kind": {"reset": true}}), Action::Transient),
    ];
    for (fault, expected) in cases {
        te.fault(fault.clone()).await;
        let err = client.poll().await.unwrap_err();
        assert_eq!(err.action(), expected, "{fault} gave {err:?}");
    }
    let before = client.session().unwrap().ptwebqq;
    te.fault(json!({"endpoint": "poll2", "count": 1, "kind": {"retcode": 116}})).await;
    client.poll().await.unwrap_err();
    assert_ne!(client.session().unwrap().ptwebqq, before, "116 rotates ptwebqq");
    te.fault(json!({"endpoint": "poll2", "count": 1, "kind": {"http_status": 504}})).await;
    assert_eq!(client.poll().await.unwrap(), PollAnswer::Idle, "504 is an idle poll");
    te.fault(json!({"endpoint": "poll2", "count": 1, "kind": {"empty": true}})).await;
    assert_eq!(client.poll().await.unwrap(), PollAnswer::Idle);
    te.fault(json!({"endpoint": "poll2", "count": 1, "kind": {"delay_ms": 300}})).await;
    assert!(client.poll().await.is_ok());

    let alice = Directory::load(&client).await.unwrap().uin_of(QqNumber::new(ALICE)).unwrap();
    te.fault(json!({"endpoint": "send_buddy_msg2", "count": 1, "kind": {"retcode": 1202}})).await;
    let err = client.send_buddy(alice, &Content::text("x")).await.unwrap_err();
    assert_eq!(err.action(), Action::RateLimited);

    te.fault(json!({"endpoint": "*", "account": ME, "count": 1, "kind": {"expire": true}})).await;
    let err = loop {
        match client.poll().await {
            Ok(_) => continue,
            Err(e) => break e,
        }
    };
    assert!(err.needs_relogin(), "expired session reads as relogin: {err:?}");

    te.fault(json!({"endpoint": "poll2", "account": ME, "count": 1, "kind": {"kick": true}})).await;
    let fresh = login(&te).await;
    fresh.online_buddies().await.unwrap();
    let events = loop {
        match fresh.poll().await {
            Ok(PollAnswer::Events(events)) => break events,
            Ok(_) => continue,
            Err(e) => panic!("{e:?}"),
        }
    };
    assert!(matches!(events[0], PollEvent::KickMessage(_)), "{events:?}");
}

#[tokio::test]
async fn test_msg_ids_keep_increasing_across_a_restore() {
    let te = TestEmulator::start().await;
    let client = login(&te).await;
    let alice = Directory::load(&client).await.unwrap().uin_of(QqNumber::new(ALICE)).unwrap();
    client.send_buddy(alice, &Content::text("one")).await.unwrap();
    let session = client.session().unwrap();
    let restored = WebQqClient::restore(te.client_config(), &session).unwrap();
    restored.send_buddy(alice, &Content::text("two")).await.unwrap();
    let sent = te.sent(ME).await;
    let ids: Vec<u64> = sent.iter().map(|m| m["msg_id"].as_u64().unwrap()).collect();
    assert_eq!(ids.len(), 2);
    assert!(ids[1] > ids[0], "{ids:?}");
}

#[tokio::test]
async fn test_clients_sharing_one_http_client_keep_their_own_cookies() {
    let te = TestEmulator::start().await;
    te.control(
        "accounts",
        json!({"qq": 20001, "password": "pw", "nick": "second", "captcha": false}),
    )
    .await;
    let config = te.client_config();
    let mut clients = Vec::new();
    for (qq, password) in [(ME, "password"), (20001, "pw")] {
        let client = WebQqClient::new(config.clone()).unwrap();
        let secret = Secret::new(password.to_owned());
        let PasswordStart::Ready(login) =
            PasswordLogin::start(&client, QqNumber::new(qq), &secret).await.unwrap()
        else {
            panic!("no captcha expected")
        };
        login.submit(&client, None).await.unwrap();
        clients.push(client);
    }
    let skeys: Vec<Option<String>> =
        clients.iter().map(|c| c.cookies().get("skey", "qq.com")).collect();
    assert!(skeys[0].is_some() && skeys[0] != skeys[1], "{skeys:?}");
    // Each session still works on the shared connection pool: both receive their own message.
    te.post_message(ME, "friend", ALICE, "for the first", json!({})).await;
    te.post_message(20001, "friend", ME, "for the second", json!({})).await;
    for (client, text) in clients.iter().zip(["for the first", "for the second"]) {
        let events = poll_events(client, 5).await;
        assert!(
            matches!(&events[0], PollEvent::Message(m) if m.content.plain_text().contains(text)),
            "{events:?}"
        );
    }
}
