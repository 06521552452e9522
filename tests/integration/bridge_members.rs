//! Members, profiles and the owner's notices against a real Synapse and the emulator: a group
//! portal named from QQ with the memo as topic and its first members joined, ghost avatars
//! fetched once, group joins and leaves as ghost membership, kicks and own joins told in the
//! management room, presence, and portals created by a contact sync.

use std::time::Duration;

use qqbridge::config::PortalCreation;
use qqbridge::emulator::world::Group;
use qqbridge::webqq::{GroupNumber, QqNumber};
use serde_json::{Value, json};

use crate::bridge_common::{ME, Owner, owner_and_config, setup, start_bridge, test_log, urlencode};
use crate::harness::{TestEmulator, test_store};
use crate::synapse::{call, lease};

const ALICE: u64 = 10002;
const BREATH: u64 = 10003;
const BOB: u64 = 10004;
const WANG: u64 = 10005;
const GROUP: u64 = 346_167_134;

/// Waits until `check` answers `Some`; panics with `what` after about 30 s (the tests share
/// one Synapse and few cores).
async fn eventually<T, F: Future<Output = Option<T>>>(
    what: &str,
    mut check: impl FnMut() -> F,
) -> T {
    for _ in 0..300 {
        if let Some(value) = check().await {
            return value;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

/// The membership event of `user` in `room`.
async fn member(owner: &Owner, room: &str, user: &str) -> Option<Value> {
    owner.state(room, "m.room.member", user).await
}

async fn getface_requests(te: &TestEmulator) -> u64 {
    te.control_get("state").await["counters"]["getface"]["requests"].as_u64().unwrap_or(0)
}

#[actix::test]
async fn test_group_portal_members_avatars_joins_and_leaves() {
    let (te, mut slot, owner, mut config) = setup().await;
    config.bridge.initial_group_members = 2;
    let (store, _guard) = test_store();
    let side = start_bridge(&te, &config, store.clone(), slot.listener.take().unwrap()).await;
    let ghost = |qq: u64| format!("@{}:localhost", slot.ghost_localpart(qq));

    // The first message creates the portal: named from the group, the memo as topic, and the
    // first two members other than the account joined (the group has three).
    te.post_message(ME, "group", BREATH, "group hello", json!({"group": GROUP})).await;
    let (room, _) = owner.wait_for("group hello").await;
    let name = owner.state(&room, "m.room.name", "").await.unwrap();
    assert_eq!(name["name"], "qqbot群");
    let topic = owner.state(&room, "m.room.topic", "").await.unwrap();
    assert_eq!(topic["topic"], "欢迎 welcome");
    // The first message goes first; the initial members join right after it.
    let joined = eventually("the initial members", || async {
        let joined = owner.joined_members(&room).await;
        joined.contains(&ghost(ALICE)).then_some(joined)
    })
    .await;
    assert!(joined.contains(&ghost(BREATH)), "{joined:?}");
    assert!(!joined.contains(&ghost(BOB)), "only initial_group_members join: {joined:?}");
    let alice = member(&owner, &room, &ghost(ALICE)).await.unwrap();
    // A friend is named as in the friend chat (the owner's markname), not by a group card.
    assert_eq!(alice["displayname"], "爱丽丝 (QQ)");

    // Each ghost's avatar comes from its QQ face, fetched once and stored by content hash.
    let avatar = eventually("the speaker's avatar", || async {
        let path = format!("/_matrix/client/v3/profile/{}", urlencode(&ghost(BREATH)));
        let (_, profile) = call("GET", &path, Some(&owner.token), None).await;
        profile["avatar_url"].as_str().map(str::to_owned)
    })
    .await;
    assert!(avatar.starts_with("mxc://localhost/"), "{avatar}");
    let stored = eventually("the stored avatar", || async {
        store.ghost(QqNumber::new(BREATH)).unwrap().filter(|g| g.avatar_hash.is_some())
    })
    .await;
    assert_eq!(stored.avatar_url.map(|u| u.to_string()), Some(avatar.clone()));
    let hash = stored.avatar_hash.unwrap();
    assert_eq!(store.media(&hash).unwrap().map(|m| m.mxc.to_string()), Some(avatar.clone()));
    eventually("both avatars", || async {
        let alice = store.ghost(QqNumber::new(ALICE)).unwrap()?;
        alice.avatar_hash.map(|_| ())
    })
    .await;
    let fetched = getface_requests(&te).await;
    assert_eq!(fetched, 2, "one face fetch per ghost");
    te.post_message(ME, "group", BREATH, "again", json!({"group": GROUP})).await;
    owner.wait_for("again").await;
    assert_eq!(getface_requests(&te).await, fetched, "a known ghost's face is not fetched again");

    // A member joining on QQ joins as a ghost.
    te.emulator.join_group(GroupNumber::new(GROUP), QqNumber::new(WANG)).unwrap();
    eventually("the new member's ghost to join", || async {
        let event = member(&owner, &room, &ghost(WANG)).await?;
        (event["membership"] == "join").then_some(())
    })
    .await;

    // A member leaving leaves, with the reason.
    te.emulator.leave_group(GroupNumber::new(GROUP), QqNumber::new(ALICE), None).unwrap();
    let left = eventually("Alice's ghost to leave", || async {
        let event = member(&owner, &room, &ghost(ALICE)).await?;
        (event["membership"] == "leave").then_some(event)
    })
    .await;
    assert_eq!(left["reason"], "left the QQ group");

    // A member removed by an admin is kicked by the bot, naming the admin.
    let by = Some(QqNumber::new(BREATH));
    te.emulator.leave_group(GroupNumber::new(GROUP), QqNumber::new(WANG), by).unwrap();
    eventually("the removed member's ghost to be kicked", || async {
        let event = member(&owner, &room, &ghost(WANG)).await?;
        (event["membership"] == "leave").then_some(())
    })
    .await;
    let path = format!("/_matrix/client/v3/rooms/{}/messages?dir=b&limit=50", urlencode(&room));
    let (_, timeline) = call("GET", &path, Some(&owner.token), None).await;
    let kick = timeline["chunk"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["state_key"] == ghost(WANG).as_str() && e["content"]["membership"] == "leave")
        .cloned()
        .unwrap();
    assert_eq!(kick["sender"], config.bot_user_id().as_str(), "{kick}");
    assert_eq!(kick["content"]["reason"], "removed from the QQ group by 呼吸 (糗百)");
    let room_id = ruma::RoomId::parse(&room).unwrap();
    assert!(!store.is_ghost_in_room(QqNumber::new(WANG), &room_id).unwrap());
    side.stop().await;
}

#[actix::test]
async fn test_notices_in_the_management_room_and_presence() {
    let (te, mut slot, owner, mut config) = setup().await;
    config.bridge.presence = true;
    let ghost = format!("@{}:localhost", slot.ghost_localpart(ALICE));
    let (store, _guard) = test_store();
    // An earlier run last polled account 10001 long ago (RELIABILITY.md §1.7).
    store.kv_set("poll_ok:me", "1795960234").unwrap();
    let side = start_bridge(&te, &config, store.clone(), slot.listener.take().unwrap()).await;
    te.post_message(ME, "friend", ALICE, "hi there", json!({})).await;
    let (dm, _) = owner.wait_for("hi there").await;

    // A friend's QQ status becomes the ghost's presence.
    te.emulator.status_change(QqNumber::new(ME), QqNumber::new(ALICE), "away").unwrap();
    let path = format!("/_matrix/client/v3/presence/{}/status", urlencode(&ghost));
    eventually("the ghost to be unavailable", || async {
        let (_, presence) = call("GET", &path, Some(&owner.token), None).await;
        (presence["presence"] == "unavailable").then_some(())
    })
    .await;

    // The account joining a group is told in the management room, a DM with the bot.
    let group = Group {
        number: GroupNumber::new(777),
        name: "新群".into(),
        memo: String::new(),
        owner: QqNumber::new(WANG),
        members: vec![QqNumber::new(WANG), QqNumber::new(ME)],
        cards: Default::default(),
    };
    te.emulator.add_group(group).unwrap();
    let (management, _) = owner.wait_for("QQ account me joined the group 777.").await;
    assert_ne!(management, dm);
    let key = format!("management_room:{}", owner.user_id);
    assert_eq!(store.kv_get(&key).unwrap().as_deref(), Some(management.as_str()));
    let members = owner.joined_members(&management).await;
    assert_eq!(members.len(), 2, "the bot and the owner only: {members:?}");
    assert!(members.contains(&config.bot_user_id()), "{members:?}");

    // So does the account being removed from a group.
    let by = Some(QqNumber::new(WANG));
    te.emulator.leave_group(GroupNumber::new(777), QqNumber::new(ME), by).unwrap();
    let (room, _) = owner.wait_for("QQ account me was removed from the group 777 by 老王.").await;
    assert_eq!(room, management);

    // An event the bridge cannot carry is told once, not once per event.
    let unbridgeable = |b: &str| b.contains("temporary chat") && b.contains("sess_message");
    te.post_message(ME, "session", ALICE, "psst", json!({"group": GROUP})).await;
    let (room, _) = owner.wait_for_match("the unbridgeable notice", unbridgeable).await;
    assert_eq!(room, management);
    te.post_message(ME, "session", ALICE, "psst again", json!({"group": GROUP})).await;

    // A kick by QQ reaches the same room (after the second temporary chat: poll order).
    te.emulator.kick(QqNumber::new(ME)).unwrap();
    let (room, _) =
        owner.wait_for_match("the kick notice", |b| b.contains("was logged out by QQ")).await;
    assert_eq!(room, management);
    let notices = owner.messages(&management).await;
    let told = notices.iter().filter(|e| e["content"]["body"].as_str().is_some_and(unbridgeable));
    assert_eq!(told.count(), 1, "{notices:?}");

    // The gap since that earlier run's last poll was told there too, once.
    let gap = |b: &str| {
        b.starts_with("QQ account me: QQ messages sent between 2026-11-29 13:50:34 UTC and ")
            && b.contains("may be missing")
    };
    let (room, _) = owner.wait_for_match("the polling gap notice", gap).await;
    assert_eq!(room, management);
    let told = notices.iter().filter(|e| e["content"]["body"].as_str().is_some_and(gap));
    assert_eq!(told.count(), 1, "{notices:?}");
    let mark: u64 = store.kv_get("poll_ok:me").unwrap().unwrap().parse().unwrap();
    assert!(mark > 1_795_960_234, "the last poll is marked again: {mark}");
    side.stop().await;
}

#[actix::test]
async fn test_contact_sync_creates_every_portal() {
    let (te, mut slot, owner, mut config) = setup().await;
    config.bridge.portal_creation = PortalCreation::OnSync;
    let (store, _guard) = test_store();
    let side = start_bridge(&te, &config, store.clone(), slot.listener.take().unwrap()).await;

    // Three friends, the group and the discussion each get a portal without any message.
    let names = ["爱丽丝", "Breath", "bob & <carol>", "qqbot群", "good day"];
    let portals = eventually("every portal", || async {
        let portals = store.portals_of_account("me").unwrap();
        (portals.len() >= names.len()).then_some(portals)
    })
    .await;
    assert_eq!(portals.len(), names.len(), "{portals:?}");
    let mut seen = Vec::new();
    for room in owner.join_invites().await {
        if let Some(name) = owner.state(&room, "m.room.name", "").await {
            seen.push(name["name"].as_str().unwrap_or_default().to_owned());
        }
    }
    for name in names {
        assert!(seen.iter().any(|s| s == name), "no portal named {name}: {seen:?}");
    }
    // The friend's ghost is already in its DM portal; a message goes to that same room.
    te.post_message(ME, "friend", ALICE, "after the sync", json!({})).await;
    let (dm, event) = owner.wait_for("after the sync").await;
    let ghost = format!("@{}:localhost", slot.ghost_localpart(ALICE));
    assert_eq!(event["sender"], ghost.as_str());
    assert!(portals.iter().any(|p| p.room_id.as_ref().map(|r| r.as_str()) == Some(dm.as_str())));
    side.stop().await;
}

#[actix::test]
async fn test_a_two_thousand_member_group_portal_is_usable_within_seconds() {
    test_log();
    const BIG: u64 = 900_000;
    let mut world = qqbridge::emulator::World::demo();
    let members: Vec<QqNumber> = (0..2_000).map(|i| QqNumber::new(200_000 + i)).collect();
    for qq in &members {
        let person = qqbridge::emulator::Person {
            qq: *qq,
            nick: format!("member {qq}"),
            face: 0,
            gender: "unknown".into(),
            lnick: String::new(),
        };
        world.add_person(person).unwrap();
    }
    let mut all = members.clone();
    all.push(QqNumber::new(ME));
    let group = Group {
        number: GroupNumber::new(BIG),
        name: "big".into(),
        memo: String::new(),
        owner: members[0],
        members: all,
        cards: Default::default(),
    };
    world.add_group(group).unwrap();
    let te = TestEmulator::start_with(world, |_| {}).await;
    let mut slot = lease();
    let (owner, mut config) = owner_and_config(&slot).await;
    config.bridge.initial_group_members = 20;
    let (store, _guard) = test_store();
    let side = start_bridge(&te, &config, store, slot.listener.take().unwrap()).await;

    let started = std::time::Instant::now();
    let speaker = members[1_500].get();
    te.post_message(ME, "group", speaker, "hello, big group", json!({"group": BIG})).await;
    let (room, event) = owner.wait_for("hello, big group").await;
    let took = started.elapsed();
    assert!(took < Duration::from_secs(10), "the message took {took:?}");
    assert_eq!(event["sender"], format!("@{}:localhost", slot.ghost_localpart(speaker)).as_str());
    eprintln!("a 2,000-member group's first message reached Matrix in {took:?}");
    // Then the first 20 members join: with the bot, the owner and the speaker 23, not 2,000.
    eventually("the initial members", || async {
        (owner.joined_members(&room).await.len() >= 23).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let joined = owner.joined_members(&room).await;
    assert_eq!(joined.len(), 23, "{joined:?}");
    side.stop().await;
}
