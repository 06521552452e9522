//! Matrix → QQ through a real Synapse and the emulator: replies quoted, edits and emotes, order
//! behind a slow picture upload, send failures and refusals told with a notice replying to the
//! message (never silent), status events when they are on, encrypted portals, huge bodies.

use std::time::Duration;

use qqbridge::account::account_actor::Credentials;
use qqbridge::account::manager::{AddAccount, GetStates, ManagerSettings};
use qqbridge::account::poller::Backoff;
use qqbridge::account::send_queue::SendPolicy;
use qqbridge::account::state::AccountState;
use qqbridge::bridge::startup::{self, MatrixSide};
use qqbridge::config::Config;
use qqbridge::metrics::Metrics;
use qqbridge::webqq::{QqNumber, Secret};
use serde_json::{Value, json};

use crate::harness::{StoreGuard, TestEmulator, test_store};
use crate::synapse::{SynapseSlot, call, lease, register_user};

const ME: u64 = 10001;
const ALICE: u64 = 10002;

/// The owner of account 10001 as a Matrix client, and the running bridge.
struct World {
    te: TestEmulator,
    slot: SynapseSlot,
    side: Option<MatrixSide>,
    user_id: String,
    token: String,
    /// The DM portal with Alice, opened by a first QQ message.
    dm: String,
    _guard: StoreGuard,
}

fn urlencode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

impl World {
    /// Emulator, Synapse slot, bridge (config adjusted by `tweak`) and the owner joined to the
    /// DM portal that `first` (a QQ message from Alice) opened.
    async fn start(first: &str, tweak: impl FnOnce(&mut Config)) -> World {
        let te = TestEmulator::start().await;
        let mut slot = lease();
        let (user_id, token) =
            register_user(&format!("own{}x{}", slot.index, rand::random::<u32>())).await;
        let mut config = slot.config.clone();
        config.accounts = vec![crate::bridge_common::account_owned_by(&user_id)];
        tweak(&mut config);
        let (store, guard) = test_store();
        let manager = ManagerSettings {
            client: te.client_config(),
            backoff: Backoff { initial: Duration::from_millis(100), max: Duration::from_secs(1) },
            send: SendPolicy { min_interval: Duration::from_millis(50), ..SendPolicy::default() },
            max_relogins: 3,
            arbiters: 1,
            login_concurrency: 4,
            per_account: true,
            gap_notice: 120,
        };
        let listener = slot.listener.take().unwrap();
        let side = startup::start(&config, store, Metrics::new(), manager, listener).await.unwrap();
        let add = AddAccount {
            id: "me".into(),
            qq: QqNumber::new(ME),
            credentials: Credentials::Password(Secret::new("password".into())),
        };
        side.accounts.send(add).await.unwrap().unwrap();
        let mut connected = false;
        for _ in 0..100 {
            let states = side.accounts.send(GetStates).await.unwrap();
            connected = states.iter().any(|(_, state, _)| *state == AccountState::Connected);
            if connected {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(connected, "account 10001 never connected");
        let mut world =
            World { te, slot, side: Some(side), user_id, token, dm: String::new(), _guard: guard };
        te_post(&world.te, first).await;
        world.dm = world.join_room_with(first).await;
        world
    }

    /// Joins the invites until a room holds a message with `body`; answers the room.
    async fn join_room_with(&self, body: &str) -> String {
        for _ in 0..150 {
            // A fresh timeout each call: Synapse answers an identical sync from a cache.
            let path = format!("/_matrix/client/v3/sync?timeout={}", rand::random::<u16>() % 500);
            let (_, sync) = call("GET", &path, Some(&self.token), None).await;
            if let Some(invites) = sync["rooms"]["invite"].as_object() {
                for room in invites.keys() {
                    let path = format!("/_matrix/client/v3/rooms/{}/join", urlencode(room));
                    call("POST", &path, Some(&self.token), Some(json!({}))).await;
                }
            }
            let (_, joined) =
                call("GET", "/_matrix/client/v3/joined_rooms", Some(&self.token), None).await;
            for room in joined["joined_rooms"].as_array().cloned().unwrap_or_default() {
                let room = room.as_str().unwrap().to_owned();
                if self.events(&room).await.iter().any(|e| e["content"]["body"] == body) {
                    return room;
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        panic!("no room got {body:?}");
    }

    /// Every event of `room` the owner can read, oldest first.
    async fn events(&self, room: &str) -> Vec<Value> {
        let path = format!("/_matrix/client/v3/rooms/{}/messages?dir=b&limit=100", urlencode(room));
        let (status, body) = call("GET", &path, Some(&self.token), None).await;
        assert_eq!(status, 200, "{body}");
        let mut events = body["chunk"].as_array().cloned().unwrap_or_default();
        events.reverse();
        events
    }

    /// Waits until the DM has an event matching `pred`; answers it.
    async fn wait_event(&self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        for _ in 0..100 {
            if let Some(event) = self.events(&self.dm).await.into_iter().find(|e| pred(e)) {
                return event;
            }
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
        let seen: Vec<Value> =
            self.events(&self.dm).await.into_iter().map(|e| e["content"].clone()).collect();
        panic!("no {what} in the DM; seen {seen:?}");
    }

    /// Waits for a notice that replies to `event_id`; answers its body.
    async fn notice_for(&self, event_id: &str) -> String {
        let event = self
            .wait_event(&format!("notice replying to {event_id}"), |e| {
                e["content"]["msgtype"] == "m.notice"
                    && e["content"]["m.relates_to"]["m.in_reply_to"]["event_id"] == event_id
            })
            .await;
        event["content"]["body"].as_str().unwrap().to_owned()
    }

    /// Sends `content` as `type` into the DM as the owner; answers the event id.
    async fn send(&self, event_type: &str, content: Value) -> String {
        let path = format!(
            "/_matrix/client/v3/rooms/{}/send/{event_type}/t{}",
            urlencode(&self.dm),
            rand::random::<u64>()
        );
        let (status, answer) = call("PUT", &path, Some(&self.token), Some(content)).await;
        assert_eq!(status, 200, "{answer}");
        answer["event_id"].as_str().unwrap().to_owned()
    }

    async fn text(&self, body: &str) -> String {
        self.send("m.room.message", json!({"msgtype": "m.text", "body": body})).await
    }

    /// What the account sent to QQ (the emulator's record), as text.
    async fn sent(&self) -> Vec<String> {
        self.te
            .sent(ME)
            .await
            .iter()
            .map(|m| format!("{}|{}", m["text"].as_str().unwrap_or_default(), m["content"]))
            .collect()
    }

    /// Waits until QQ got a message containing `needle`; answers every sent message.
    async fn wait_sent(&self, needle: &str) -> Vec<String> {
        for _ in 0..100 {
            let sent = self.sent().await;
            if sent.iter().any(|m| m.contains(needle)) {
                return sent;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("QQ never got {needle:?}: {:?}", self.sent().await);
    }

    /// Delivers `events` to the bridge as the homeserver would, in transaction `txn`.
    async fn push(&self, txn: &str, events: Value) {
        let url = format!("http://{}/_matrix/app/v1/transactions/{txn}", self.slot.listen_addr);
        let status = http()
            .put(url)
            .bearer_auth(self.slot.registration.hs_token.expose())
            .json(&json!({"events": events}))
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status.as_u16(), 200);
    }

    /// A fake event of `sender` in the DM.
    fn event(&self, id: &str, sender: &str, event_type: &str, content: Value) -> Value {
        json!({"type": event_type, "room_id": self.dm, "sender": sender, "event_id": id,
               "origin_server_ts": 1_700_000_000_000_u64, "content": content})
    }

    async fn stop(mut self) {
        if let Some(side) = self.side.take() {
            side.stop().await;
        }
    }
}

async fn te_post(te: &TestEmulator, text: &str) {
    te.post_message(ME, "friend", ALICE, text, json!({})).await;
}

#[actix::test]
async fn test_replies_edits_emotes_and_order_reach_qq() {
    let world = World::start("quote me <b>& please, a long first line to cut", |_| {}).await;
    let original = world
        .wait_event("Alice's message", |e| {
            e["content"]["body"] == "quote me <b>& please, a long first line to cut"
        })
        .await;
    let original_id = original["event_id"].as_str().unwrap();

    // A reply quotes the replied-to QQ message: its ghost's name and first 30 characters.
    let reply = json!({"msgtype": "m.text", "body": "my answer",
        "m.relates_to": {"m.in_reply_to": {"event_id": original_id}}});
    world.send("m.room.message", reply).await;
    let sent = world.wait_sent("my answer").await;
    let answer = sent.iter().find(|m| m.contains("my answer")).unwrap();
    assert!(answer.contains(": quote me <b>& please, a long f…」\nmy answer"), "{answer}");

    // An edit goes out as a correction, marked; a reply to the owner's own edited message
    // quotes the corrected text.
    let first = world.text("the frist version").await;
    world.wait_sent("the frist version").await;
    let edit = json!({"msgtype": "m.text", "body": "* the first version",
        "m.new_content": {"msgtype": "m.text", "body": "the first version"},
        "m.relates_to": {"rel_type": "m.replace", "event_id": first}});
    world.send("m.room.message", edit).await;
    world.wait_sent("[edit] the first version").await;
    let reply = json!({"msgtype": "m.text", "body": "about that",
        "m.relates_to": {"m.in_reply_to": {"event_id": first}}});
    world.send("m.room.message", reply).await;
    let sent = world.wait_sent("about that").await;
    assert!(sent.iter().any(|m| m.contains(": the first version」\nabout that")), "{sent:?}");

    // An emote names the sender.
    world.send("m.room.message", json!({"msgtype": "m.emote", "body": "waves"})).await;
    let sent = world.wait_sent("waves").await;
    assert!(sent.iter().any(|m| m.starts_with("* ") && m.contains(" waves")), "{sent:?}");

    // A text sent while a picture is still uploading reaches QQ after the picture.
    world
        .te
        .fault(json!({"endpoint": "upload_offline_pic", "count": 1, "kind": {"delay_ms": 2500}}))
        .await;
    let mxc = crate::bridge_common::upload_png(&world.token).await;
    let picture = json!({"msgtype": "m.image", "body": "pic.png", "url": mxc,
                         "info": {"mimetype": "image/png"}});
    world.send("m.room.message", picture).await;
    world.text("after the picture").await;
    let sent = world.wait_sent("after the picture").await;
    let picture_at = sent.iter().position(|m| m.contains("offpic")).expect("the picture went");
    let text_at = sent.iter().position(|m| m.contains("after the picture")).unwrap();
    assert!(picture_at < text_at, "the text overtook the picture: {sent:?}");

    // A sticker goes as a picture; an edited picture cannot, and the owner is told.
    let sticker = json!({"body": "a sticker", "url": mxc, "info": {"mimetype": "image/png"}});
    world.send("m.sticker", sticker).await;
    for _ in 0..100 {
        if world.sent().await.iter().filter(|m| m.contains("offpic")).count() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(world.sent().await.iter().filter(|m| m.contains("offpic")).count(), 2);
    let picture_edit = json!({"msgtype": "m.text", "body": "* new picture",
        "m.new_content": {"msgtype": "m.image", "body": "pic.png", "url": mxc},
        "m.relates_to": {"rel_type": "m.replace", "event_id": first}});
    let edit = world.send("m.room.message", picture_edit).await;
    let notice = world.notice_for(&edit).await;
    assert!(notice.contains("an edited picture is not sent again"), "{notice}");
    world.stop().await;
}

#[actix::test]
async fn test_failures_and_refusals_are_told_never_silent() {
    let world =
        World::start("open the failure portal", |c| c.bridge.message_status_events = true).await;

    // QQ refuses the send for good: a notice replies to the message, and a FAIL_PERMANENT
    // status event references it.
    world
        .te
        .fault(json!({"endpoint": "send_buddy_msg2", "count": 1, "kind": {"retcode": 60}}))
        .await;
    let refused = world.text("refused by QQ").await;
    let notice = world.notice_for(&refused).await;
    assert!(notice.starts_with("Not sent to QQ: QQ refused it"), "{notice}");
    let status = world
        .wait_event("status of the refused message", |e| {
            e["type"] == "com.beeper.message_send_status"
                && e["content"]["m.relates_to"]["event_id"] == refused.as_str()
        })
        .await;
    assert_eq!(status["content"]["status"], "FAIL_PERMANENT", "{status}");
    assert_eq!(status["content"]["m.relates_to"]["rel_type"], "m.reference");

    // 1202: maybe delivered, not resent, and the owner is told so.
    world
        .te
        .fault(json!({"endpoint": "send_buddy_msg2", "count": 1, "kind": {"retcode": 1202}}))
        .await;
    let maybe = world.text("maybe delivered").await;
    let notice = world.notice_for(&maybe).await;
    assert!(notice.starts_with("Maybe not delivered to QQ"), "{notice}");

    // A delivered message gets SUCCESS and no notice.
    let fine = world.text("delivered fine").await;
    world.wait_sent("delivered fine").await;
    let status = world
        .wait_event("status of the delivered message", |e| {
            e["type"] == "com.beeper.message_send_status"
                && e["content"]["m.relates_to"]["event_id"] == fine.as_str()
        })
        .await;
    assert_eq!(status["content"]["status"], "SUCCESS");

    // Someone who is not the owner: told once per hour, nothing reaches QQ. An event that
    // cannot be read, in the same transaction as a good one: a notice, and the good one goes.
    let stranger = "@stranger:localhost";
    let events = json!([
        world.event(
            "$stranger-1",
            stranger,
            "m.room.message",
            json!({"msgtype": "m.text", "body": "stranger says hi"})
        ),
        world.event(
            "$stranger-2",
            stranger,
            "m.room.message",
            json!({"msgtype": "m.text", "body": "stranger again"})
        ),
        world.event("$bad-1", &world.user_id, "m.room.message", json!({"msgtype": "m.text"})),
        world.event(
            "$good-1",
            &world.user_id,
            "m.room.message",
            json!({"msgtype": "m.text", "body": "good after bad"})
        ),
    ]);
    world.push("outbound-1", events).await;
    world.wait_sent("good after bad").await;
    let notice = world.notice_for("$stranger-1").await;
    assert!(notice.contains("only the owner's messages are bridged to QQ"), "{notice}");
    let notice = world.notice_for("$bad-1").await;
    assert!(notice.starts_with("Not sent to QQ: the message could not be read"), "{notice}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let events = world.events(&world.dm).await;
    let replies_to = |id: &str| {
        events
            .iter()
            .filter(|e| e["content"]["m.relates_to"]["m.in_reply_to"]["event_id"] == id)
            .count()
    };
    assert_eq!(replies_to("$stranger-2"), 0, "one refusal notice per user and hour");
    assert!(!world.sent().await.iter().any(|m| m.contains("stranger")));

    // A huge body is refused above bridge.max_text_bytes; a long one goes split in order.
    let huge = world.text(&"x".repeat(9000)).await;
    let notice = world.notice_for(&huge).await;
    assert!(notice.contains("9000 bytes long"), "{notice}");
    let long: String = (0..200).map(|i| format!("w{i:03} ")).collect();
    world.text(&long).await;
    let sent = world.wait_sent("w199").await;
    let parts: Vec<&String> =
        sent.iter().filter(|m| m.contains("w1") || m.contains("w0")).collect();
    assert!(parts.len() >= 2, "split into QQ-sized parts: {parts:?}");
    assert!(parts.first().unwrap().contains("w000") && parts.last().unwrap().contains("w199"));

    // Data that is not an image, sent as one: told, not sent.
    let url =
        format!("{}/_matrix/media/v3/upload?filename=fake.png", crate::synapse::synapse().base_url);
    let upload: Value = http()
        .post(url)
        .bearer_auth(&world.token)
        .header("content-type", "image/png")
        .body("this is not a picture")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let fake = json!({"msgtype": "m.image", "body": "fake.png", "url": upload["content_uri"]});
    let fake = world.send("m.room.message", fake).await;
    let notice = world.notice_for(&fake).await;
    assert!(notice.contains("the picture is not an image QQ can show"), "{notice}");

    // An encrypted portal: told once, and encrypted events are not bridged.
    let encryption = world.event(
        "$enc-state",
        &world.user_id,
        "m.room.encryption",
        json!({"algorithm": "m.megolm.v1.aes-sha2"}),
    );
    let mut encryption = encryption;
    encryption["state_key"] = json!("");
    let encrypted = world.event(
        "$enc-1",
        &world.user_id,
        "m.room.encrypted",
        json!({"algorithm": "m.megolm.v1.aes-sha2", "ciphertext": "x"}),
    );
    world.push("outbound-2", json!([encryption, encrypted])).await;
    world
        .wait_event("the encryption notice", |e| {
            e["content"]["body"].as_str().is_some_and(|b| b.starts_with("This room is encrypted"))
        })
        .await;
    let notice = world.notice_for("$enc-1").await;
    assert!(notice.contains("encrypted"), "{notice}");
    world.stop().await;
}

fn http() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap()
}
