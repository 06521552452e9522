//! The bridge bot against a real Synapse and the emulator: a user invites the bot to a DM and
//! logs a QQ account in by QR code (the image posted, scanned and confirmed through the
//! emulator), then by password with a captcha (the password redacted); logout, relogin,
//! ownership refusals, a blocked user, and a restart that starts the login again.

use std::collections::BTreeMap;
use std::time::Duration;

use qqbridge::account::manager::{GetStates, RemoveAccount};
use qqbridge::account::state::AccountState;
use qqbridge::config::Permission;
use serde_json::{Value, json};

use crate::bridge_common::{
    ME, Owner, dm_with_bot, events, setup, start_bridge, urlencode, wait_state, wait_text,
};
use crate::harness::test_store;
use crate::synapse::{call, register_user};

/// The emulator's captcha account (password `123456`), friend of [`ME`].
const OTHER: u64 = 10002;

/// A new Matrix user.
async fn user(name: &str) -> Owner {
    let (user_id, token) = register_user(&format!("{name}{}", rand::random::<u32>())).await;
    Owner { user_id, token, since: Default::default() }
}

/// Waits until `room` has `n` m.image events; answers them.
async fn wait_images(user: &Owner, room: &str, n: usize) -> Vec<Value> {
    for _ in 0..200 {
        let images: Vec<Value> = events(user, room)
            .await
            .into_iter()
            .filter(|e| e["type"] == "m.room.message" && e["content"]["msgtype"] == "m.image")
            .collect();
        if images.len() >= n {
            return images;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{room} never got {n} images");
}

/// Whether the redacted event `event_id` of `room` has lost its content.
async fn is_redacted(user: &Owner, room: &str, event_id: &str) -> bool {
    let path =
        format!("/_matrix/client/v3/rooms/{}/event/{}", urlencode(room), urlencode(event_id));
    let (status, event) = call("GET", &path, Some(&user.token), None).await;
    status == 200 && event["content"].as_object().is_some_and(|c| c.is_empty())
}

#[actix::test]
async fn test_logins_from_matrix_with_the_bot() {
    let (te, mut slot, owner, mut config) = setup().await;
    let alice = user("alice").await;
    let carol = user("carol").await;
    let mallory = user("mallory").await;
    config.bridge.permissions = BTreeMap::from([
        ("localhost".to_owned(), Permission::User),
        (mallory.user_id.clone(), Permission::Block),
    ]);
    let bot = config.bot_user_id();
    let (store, guard) = test_store();
    let side = start_bridge(&te, &config, store, slot.listener.take().unwrap()).await;

    // A blocked user's invite is rejected.
    let blocked_dm = dm_with_bot(&mallory, &bot).await;
    let path = format!(
        "/_matrix/client/v3/rooms/{}/state/m.room.member/{}",
        urlencode(&blocked_dm),
        urlencode(&bot)
    );
    let mut membership = Value::Null;
    for _ in 0..100 {
        let (_, member) = call("GET", &path, Some(&mallory.token), None).await;
        membership = member["membership"].clone();
        if membership == "leave" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(membership, "leave", "the bot rejects a blocked user's invite");

    // Alice invites the bot: it joins and greets; commands need no prefix there.
    let dm = dm_with_bot(&alice, &bot).await;
    wait_text(&alice, &dm, "send `help` for the commands").await;
    alice.send(&dm, "help").await;
    wait_text(&alice, &dm, "login password <qq>").await;
    alice.send(&dm, "frobnicate").await;
    wait_text(&alice, &dm, "Unknown command \"frobnicate\"").await;
    // Someone else's number is refused.
    alice.send(&dm, &format!("login password {ME}")).await;
    wait_text(&alice, &dm, &format!("QQ {ME} is bridged for another Matrix user")).await;

    // QR login: the code arrives as an m.image; scanned, then confirmed on the "phone".
    alice.send(&dm, "login qr").await;
    let images = wait_images(&alice, &dm, 1).await;
    let info = &images[0]["content"]["info"];
    assert_eq!(info["mimetype"], "image/png", "{info}");
    assert!(info["w"].as_u64().unwrap() > 0 && info["size"].as_u64().unwrap() > 0, "{info}");
    te.control("qr/scan", json!({"qq": OTHER})).await;
    wait_text(&alice, &dm, "Scanned: confirm the login on your phone.").await;
    te.control("qr/confirm", json!({"qq": OTHER})).await;
    wait_text(&alice, &dm, &format!("({OTHER}).")).await;
    let account = format!("mx-{OTHER}");
    wait_state(&side.accounts, &account, AccountState::Connected).await;
    alice.send(&dm, "status").await;
    wait_text(&alice, &dm, &format!("QQ {OTHER} [{account}]: CONNECTED")).await;

    // A QQ message to the new account lands in a portal of Alice's.
    te.post_message(OTHER, "friend", ME, "hello qr login", json!({})).await;
    alice.wait_for("hello qr login").await;

    // Logout: QQ ends the session (the emulator saw logout2); the account stops; its stored
    // login is gone.
    assert!(te.control_get("state").await["online"].as_array().unwrap().contains(&json!(OTHER)));
    alice.send(&dm, "logout").await;
    wait_text(&alice, &dm, "Logged out:").await;
    wait_text(&alice, &dm, "(QQ ended its session)").await;
    let state = te.control_get("state").await;
    assert!(state["counters"]["logout2"]["requests"].as_u64().unwrap() >= 1, "{state}");
    assert!(!state["online"].as_array().unwrap().contains(&json!(OTHER)), "{state}");
    let states = side.accounts.send(GetStates).await.unwrap();
    assert!(!states.iter().any(|(id, _, _)| *id == account), "{states:?}");

    // Password login from Carol's DM, with a captcha; the password is redacted at once.
    let carol_dm = dm_with_bot(&carol, &bot).await;
    wait_text(&carol, &carol_dm, "send `help`").await;
    carol.send(&carol_dm, &format!("login password {OTHER}")).await;
    wait_text(&carol, &carol_dm, "as your next message here").await;
    let secret = carol.send(&carol_dm, "123456").await;
    wait_text(&carol, &carol_dm, "QQ asks for a captcha").await;
    assert!(is_redacted(&carol, &carol_dm, &secret).await, "the password message is redacted");
    let captcha = wait_images(&carol, &carol_dm, 1).await;
    assert_eq!(captcha[0]["content"]["info"]["mimetype"], "image/jpeg");
    let state = te.control_get("state").await;
    let text = state["captchas"][OTHER.to_string()].as_str().unwrap().to_owned();
    carol.send(&carol_dm, &text).await;
    wait_text(&carol, &carol_dm, &format!("({OTHER}).")).await;
    wait_state(&side.accounts, &account, AccountState::Connected).await;
    // Alice cannot take Carol's number now.
    alice.send(&dm, &format!("login password {OTHER}")).await;
    wait_text(&alice, &dm, &format!("QQ {OTHER} is bridged for another Matrix user")).await;

    // `login password` outside the DM is refused and the message redacted.
    te.post_message(ME, "friend", 10003, "open a portal", json!({})).await;
    let portal = owner.wait_for("open a portal").await.0;
    let leak = owner.send(&portal, &format!("!qq login password {ME}")).await;
    owner.wait_for_match("refusal", |b| b.contains("Run this command in your direct chat")).await;
    for _ in 0..50 {
        if is_redacted(&owner, &portal, &leak).await {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(is_redacted(&owner, &portal, &leak).await, "a password in a portal is redacted");

    // Relogin: the account starts again from its session.
    carol.send(&carol_dm, "relogin").await;
    wait_text(&carol, &carol_dm, "Logging mx-10002 in again").await;
    wait_state(&side.accounts, &account, AccountState::Connected).await;

    // A restart starts the login from Matrix again, from its stored session.
    for id in ["me", account.as_str()] {
        side.accounts.send(RemoveAccount { id: id.to_owned() }).await.unwrap();
    }
    side.stop().await;
    let listener = std::net::TcpListener::bind(slot.listen_addr).unwrap();
    let side = start_bridge(&te, &config, guard.reopen(), listener).await;
    wait_state(&side.accounts, &account, AccountState::Connected).await;
    side.stop().await;
}

/// The demo world's group, with 10001 and 10003 in it.
const GROUP: u64 = 346_167_134;

/// `user` creates a plain (not direct) room with the bot invited as an admin; answers it once
/// the bot has joined.
async fn plain_room_with_bot(user: &Owner, bot: &str) -> String {
    plain_room(user, bot, 100).await
}

/// `user` creates a plain room with the bot invited at power level `power`; answers it once
/// the bot has joined.
async fn plain_room(user: &Owner, bot: &str, power: u32) -> String {
    let body = json!({
        "preset": "private_chat",
        "invite": [bot],
        // The creator is the room's admin by itself (room version 12).
        "power_level_content_override": {"users": {bot: power}},
    });
    let (status, answer) =
        call("POST", "/_matrix/client/v3/createRoom", Some(&user.token), Some(body)).await;
    assert_eq!(status, 200, "{answer}");
    let room = answer["room_id"].as_str().unwrap().to_owned();
    for _ in 0..100 {
        if user.joined_members(&room).await.iter().any(|m| m == bot) {
            return room;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the bot never joined {room}");
}

#[actix::test]
async fn test_bridge_and_unbridge_an_existing_room() {
    let (te, mut slot, owner, mut config) = setup().await;
    let bob = user("bob").await;
    config.relay.enabled = true;
    config.bridge.permissions = BTreeMap::from([
        ("localhost".to_owned(), Permission::User),
        (owner.user_id.clone(), Permission::Admin),
    ]);
    let bot = config.bot_user_id();
    let (store, _guard) = test_store();
    let side = start_bridge(&te, &config, store, slot.listener.take().unwrap()).await;
    let room = plain_room_with_bot(&owner, &bot).await;

    // Refusals: a group the account is not in; in the management room; in an encrypted room;
    // without the power to set state; a non-admin.
    owner.send(&room, "!qq bridge 999999").await;
    wait_text(&owner, &room, "QQ account me is not a member of group 999999").await;
    let dm = dm_with_bot(&owner, &bot).await;
    wait_text(&owner, &dm, "send `help`").await;
    owner.send(&dm, &format!("bridge {GROUP}")).await;
    wait_text(&owner, &dm, "not in your direct chat with me").await;
    let secret_room = plain_room_with_bot(&owner, &bot).await;
    let path =
        format!("/_matrix/client/v3/rooms/{}/state/m.room.encryption/", urlencode(&secret_room));
    let encryption = json!({"algorithm": "m.megolm.v1.aes-sha2"});
    let (status, body) = call("PUT", &path, Some(&owner.token), Some(encryption)).await;
    assert_eq!(status, 200, "{body}");
    owner.send(&secret_room, &format!("!qq bridge {GROUP}")).await;
    // The command itself is sent in the clear (the client API allows it): refused.
    wait_text(&owner, &secret_room, "this room is encrypted").await;
    let powerless = plain_room(&owner, &bot, 0).await;
    owner.send(&powerless, &format!("!qq bridge {GROUP}")).await;
    wait_text(&owner, &powerless, "I may not set this room's state").await;
    let bob_room = plain_room_with_bot(&bob, &bot).await;
    bob.send(&bob_room, &format!("!qq bridge {GROUP}")).await;
    wait_text(&bob, &bob_room, "needs the Admin permission").await;

    // Bridged: the bridge info is set, the members' ghosts join, QQ messages arrive here.
    owner.send(&room, &format!("!qq bridge {GROUP}")).await;
    wait_text(&owner, &room, &format!("is now the portal of QQ group {GROUP}")).await;
    let key = format!("org.qqbridge://qq/group/{GROUP}");
    let info = owner.state(&room, "m.bridge", &key).await.expect("m.bridge state");
    assert_eq!(info["channel"]["id"], GROUP.to_string(), "{info}");
    assert_eq!(info["creator"], owner.user_id.as_str(), "{info}");
    let ghost = format!("@{}:localhost", slot.ghost_localpart(10003));
    for _ in 0..100 {
        if owner.joined_members(&room).await.contains(&ghost) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(owner.joined_members(&room).await.contains(&ghost), "member ghosts joined");
    te.post_message(ME, "group", 10003, "after bridging", json!({"group": GROUP})).await;
    let (arrived, _) = owner.wait_for("after bridging").await;
    assert_eq!(arrived, room);
    owner.send(&room, "!qq set-relay").await;
    wait_text(&owner, &room, "Relay on").await;

    // The group has its portal now: a second room is refused and told where it is.
    let second = plain_room_with_bot(&owner, &bot).await;
    owner.send(&second, &format!("!qq bridge {GROUP}")).await;
    wait_text(&owner, &second, &format!("already bridged to {room}; run `unbridge` there")).await;

    // A relay must be in the group: a portal of a group account 10001 is not in (as after it
    // left the group) refuses `set-relay`.
    side.bridge
        .store()
        .upsert_portal(&qqbridge::store::Portal {
            portal_key: "group:999999".into(),
            kind: "group".into(),
            account_id: Some("me".into()),
            remote_id: "999999".into(),
            room_id: Some(ruma::RoomId::parse(second.as_str()).unwrap()),
            name: None,
            topic: None,
            avatar_url: None,
            encrypted: false,
            created_at: 0,
        })
        .unwrap();
    owner.send(&second, "!qq set-relay").await;
    wait_text(&owner, &second, &format!("QQ {ME} (me) is not a member of group 999999")).await;

    // Unbridge: refused to a plain user, done for the owner.
    let invite = format!("/_matrix/client/v3/rooms/{}/invite", urlencode(&room));
    let (status, body) =
        call("POST", &invite, Some(&owner.token), Some(json!({"user_id": bob.user_id}))).await;
    assert_eq!(status, 200, "{body}");
    let join = format!("/_matrix/client/v3/rooms/{}/join", urlencode(&room));
    let (status, body) = call("POST", &join, Some(&bob.token), Some(json!({}))).await;
    assert_eq!(status, 200, "{body}");
    bob.send(&room, "!qq unbridge").await;
    wait_text(&owner, &room, "Only this portal's owner or a bridge admin").await;
    owner.send(&room, "!qq unbridge").await;
    wait_text(&owner, &room, "no longer bridged").await;
    let cleared = owner.state(&room, "m.bridge", &key).await;
    assert!(
        cleared.as_ref().is_none_or(|c| c.as_object().is_some_and(|o| o.is_empty())),
        "{cleared:?}"
    );
    assert!(!owner.joined_members(&room).await.contains(&ghost), "ghosts left");
    let room_id = ruma::RoomId::parse(room.as_str()).unwrap();
    assert!(side.bridge.store().portal_by_room(&room_id).unwrap().is_none());
    let relay = side.bridge.store().relay_of(&format!("group:{GROUP}")).unwrap();
    assert!(relay.is_none(), "{relay:?}");

    // A later QQ message of the group opens a new portal.
    te.post_message(ME, "group", 10003, "after unbridging", json!({"group": GROUP})).await;
    let (fresh, _) = owner.wait_for("after unbridging").await;
    assert_ne!(fresh, room);

    // Two bridge requests for one group at once (a command and a provisioning call, say):
    // exactly one room becomes its portal.
    owner.send(&fresh, "!qq unbridge").await;
    wait_text(&owner, &fresh, "no longer bridged").await;
    let (a, b) = (plain_room_with_bot(&owner, &bot).await, plain_room_with_bot(&owner, &bot).await);
    let (a, b) =
        (ruma::RoomId::parse(a.as_str()).unwrap(), ruma::RoomId::parse(b.as_str()).unwrap());
    let owner_id = ruma::UserId::parse(owner.user_id.as_str()).unwrap();
    let group = qqbridge::webqq::GroupNumber::new(GROUP);
    let (first, second) = tokio::join!(
        side.bridge.bridge_room(&a, "me", &owner_id, group),
        side.bridge.bridge_room(&b, "me", &owner_id, group),
    );
    let refused = match (first, second) {
        (Ok(()), Err(refused)) | (Err(refused), Ok(())) => refused,
        other => panic!("exactly one bridged: {other:?}"),
    };
    assert!(refused.to_string().contains("already bridged"), "{refused}");
    side.stop().await;
}
