//! The bridge bot in an encrypted DM (what Element opens by default) against the real Synapse:
//! a Matrix user with a matrix-sdk client logs QQ in by QR code there. The bot reads the
//! encrypted commands through its own device and answers encrypted, the QR image included; the
//! new account's portals appear in its space. Without a device the bot says it cannot read.

use std::collections::BTreeMap;

use qqbridge::account::state::AccountState;
use qqbridge::config::Permission;
use ruma::UserId;
use serde_json::{Value, json};

use crate::bridge_common::{
    ME, Owner, dm_with_bot, setup, space_of, start_bridge, wait_state, wait_text,
};
use crate::harness::test_store;
use crate::matrix::bot::E2eeHuman;

/// The emulator's QR account, a friend of [`ME`].
const OTHER: u64 = 10002;

/// Accepts a message whose body contains `text`.
fn body_has(text: &str) -> impl Fn(&Value) -> bool + '_ {
    move |event| event["content"]["body"].as_str().is_some_and(|body| body.contains(text))
}

#[actix::test]
async fn test_login_qr_in_an_encrypted_dm() {
    let (te, mut slot, _owner, mut config) = setup().await;
    let device_dir = tempfile::tempdir().unwrap();
    config.encryption.bot_device = true;
    config.encryption.data_dir = device_dir.path().join("bot-device");
    config.bridge.permissions = BTreeMap::from([("localhost".to_owned(), Permission::User)]);
    let (store, _guard) = test_store();
    let side = start_bridge(&te, &config, store, slot.listener.take().unwrap()).await;
    assert!(side.bot_device.is_some(), "encryption.bot_device starts the device");
    let bot = UserId::parse(config.bot_user_id()).unwrap();

    // The human opens an encrypted DM; the bot joins and greets, encrypted.
    let human = E2eeHuman::new("e2ee_login").await;
    let created = human.client.create_dm(&bot).await.unwrap();
    let room = human.joined_room(created.room_id(), &bot).await;
    let room_id = room.room_id().to_owned();
    assert!(room.latest_encryption_state().await.unwrap().is_encrypted());
    let greeting = human.wait_decrypted(&room, "greeting", body_has("send `help`")).await;
    let wire = human.wire_event(&room_id, greeting["event_id"].as_str().unwrap()).await;
    assert_eq!(wire["type"], "m.room.encrypted", "the greeting travels encrypted: {wire}");

    // `login qr`, encrypted: the QR code comes back as an encrypted image the human can open.
    human.send(&room, "login qr").await;
    let image =
        human.wait_decrypted(&room, "QR image", |e| e["content"]["msgtype"] == "m.image").await;
    assert_eq!(image["content"]["info"]["mimetype"], "image/png", "{image}");
    let png = human.encrypted_image(&image["content"]).await;
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "the decrypted file is the PNG");

    // The "phone" scans and confirms through the emulator; each step is told in the room.
    te.control("qr/scan", json!({"qq": OTHER})).await;
    human.wait_decrypted(&room, "scan notice", body_has("Scanned: confirm")).await;
    te.control("qr/confirm", json!({"qq": OTHER})).await;
    human.wait_decrypted(&room, "login notice", body_has(&format!("({OTHER})."))).await;
    let account = format!("mx-{OTHER}");
    wait_state(&side.accounts, &account, AccountState::Connected).await;
    human.send(&room, "status").await;
    let status = format!("QQ {OTHER} [{account}]: CONNECTED");
    human.wait_decrypted(&room, "status", body_has(&status)).await;

    // A QQ message to the new account opens a portal in the account's space.
    let alice = Owner {
        user_id: human.user_id.to_string(),
        token: human.token.clone(),
        since: Default::default(),
    };
    te.post_message(OTHER, "friend", ME, "hello encrypted login", json!({})).await;
    let (portal, _) = alice.wait_for("hello encrypted login").await;
    let space = space_of(&alice).await.expect("a space for the account");
    let child = alice.state(&space, "m.space.child", &portal).await;
    assert!(child.is_some(), "the portal is a child of the account's space");

    // The same bot still answers in the clear in an unencrypted DM.
    let plain = dm_with_bot(&alice, bot.as_str()).await;
    wait_text(&alice, &plain, "send `help`").await;
    side.stop().await;
}

#[actix::test]
async fn test_without_a_device_the_bot_says_it_cannot_read() {
    let (te, mut slot, owner, mut config) = setup().await;
    assert!(!config.encryption.bot_device);
    config.bridge.permissions = BTreeMap::from([("localhost".to_owned(), Permission::User)]);
    let (store, _guard) = test_store();
    let side = start_bridge(&te, &config, store, slot.listener.take().unwrap()).await;
    let bot = UserId::parse(config.bot_user_id()).unwrap();
    let human = E2eeHuman::new("e2ee_nodevice").await;
    let created = human.client.create_dm(&bot).await.unwrap();
    let room = human.joined_room(created.room_id(), &bot).await;
    human.send(&room, "help").await;
    let reader = Owner {
        user_id: human.user_id.to_string(),
        token: human.token.clone(),
        since: Default::default(),
    };
    let notice =
        wait_text(&reader, room.room_id().as_str(), "I could not read your encrypted message")
            .await;
    let body = notice["content"]["body"].as_str().unwrap();
    assert!(body.contains("encryption.bot_device is off"), "{body}");
    drop(owner);
    side.stop().await;
}
