//! The provisioning API against a real Synapse and the emulator: a QR login started over HTTP
//! (the code shown as a data URL, scanned and confirmed through the emulator, the step then
//! complete), the new login listed, its contacts and a direct chat opened; a blocked user, a
//! wrong secret and a number another user owns refused.

use std::collections::BTreeMap;
use std::time::Duration;

use qqbridge::config::Permission;
use qqbridge::webqq::Secret;
use serde_json::{Value, json};

use crate::bridge_common::{ME, owner_and_config, start_bridge};
use crate::harness::{TestEmulator, test_store};
use crate::synapse::{lease, register_user};

/// The emulator's second account, a friend of [`ME`].
const OTHER: u64 = 10002;

const SECRET: &str = "provisioning-test-secret-0001";

/// `method` on the provisioning API as `user`, with `secret`; answers status and JSON.
async fn prov(
    base: &str,
    secret: &str,
    method: &str,
    path: &str,
    user: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let sep = if path.contains('?') { '&' } else { '?' };
    let url = format!(
        "{base}/_matrix/provision/v3/{path}{sep}user_id={}",
        crate::bridge_common::urlencode(user)
    );
    let http = reqwest::Client::builder().timeout(Duration::from_secs(60)).build().unwrap();
    let mut req = http
        .request(reqwest::Method::from_bytes(method.as_bytes()).unwrap(), url)
        .bearer_auth(secret);
    if let Some(body) = body {
        req = req.json(&body);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[actix::test]
async fn test_provisioning_qr_login_contacts_and_refusals() {
    let te = TestEmulator::start().await;
    let mut slot = lease();
    let (owner, mut config) = owner_and_config(&slot).await;
    let (alice, _) = register_user(&format!("palice{}", rand::random::<u32>())).await;
    let (mallory, _) = register_user(&format!("pmallory{}", rand::random::<u32>())).await;
    config.bridge.permissions =
        BTreeMap::from([(alice.clone(), Permission::User), (mallory.clone(), Permission::Block)]);
    config.provisioning.shared_secret = Some(Secret::new(SECRET.to_owned()));
    let listener = slot.listener.take().unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (store, _guard) = test_store();
    let side = start_bridge(&te, &config, store, listener).await;

    // Refusals: a wrong secret, a blocked user, someone else's number.
    let (status, body) = prov(&base, "wrong-secret-0000000", "GET", "whoami", &alice, None).await;
    assert_eq!((status, body["errcode"].as_str()), (401, Some("M_UNKNOWN_TOKEN")));
    let (status, _) = prov(&base, SECRET, "POST", "login/start/qr", &mallory, None).await;
    assert_eq!(status, 403);
    let (status, step) = prov(&base, SECRET, "POST", "login/start/password", &alice, None).await;
    assert_eq!((status, step["type"].as_str()), (200, Some("user_input")), "{step}");
    let path = format!("login/step/{}/credentials/user_input", step["login_id"].as_str().unwrap());
    let input = json!({"username": ME.to_string(), "password": "x"});
    let (status, body) = prov(&base, SECRET, "POST", &path, &alice, Some(input)).await;
    assert_eq!((status, body["errcode"].as_str()), (409, Some("M_CONFLICT")), "{body}");

    // A QR login: the first step shows the code; scanned and confirmed, the wait completes.
    let (status, step) = prov(&base, SECRET, "POST", "login/start/qr", &alice, None).await;
    assert_eq!((status, step["type"].as_str()), (200, Some("display_and_wait")), "{step}");
    let image = step["display_and_wait"]["image_url"].as_str().unwrap();
    assert!(image.starts_with("data:image/png;base64,iVBOR"), "{image:.40}");
    let (process, step_id) = (
        step["login_id"].as_str().unwrap().to_owned(),
        step["step_id"].as_str().unwrap().to_owned(),
    );
    assert_eq!(step_id, "qr-1");
    te.control("qr/scan", json!({"qq": OTHER})).await;
    te.control("qr/confirm", json!({"qq": OTHER})).await;
    let path = format!("login/step/{process}/{step_id}/display_and_wait");
    let (status, done) = prov(&base, SECRET, "POST", &path, &alice, None).await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["type"], "complete", "{done}");
    let login = format!("mx-{OTHER}");
    assert_eq!(done["complete"]["user_login_id"], login.as_str());
    // The finished process is gone.
    let (status, _) = prov(&base, SECRET, "POST", &path, &alice, None).await;
    assert_eq!(status, 404);

    // The login is listed with its state; its contacts include ME; a DM portal opens.
    let (_, logins) = prov(&base, SECRET, "GET", "logins", &alice, None).await;
    assert_eq!(logins, json!({"login_ids": [login.as_str()]}));
    let (_, whoami) = prov(&base, SECRET, "GET", "whoami", &alice, None).await;
    assert_eq!(whoami["logins"][0]["id"], login.as_str(), "{whoami}");
    assert_eq!(whoami["logins"][0]["name"], OTHER.to_string(), "{whoami}");
    let mut contacts = Value::Null;
    for _ in 0..100 {
        let (status, body) = prov(&base, SECRET, "GET", "contacts", &alice, None).await;
        if status == 200 {
            contacts = body;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let ids: Vec<&str> = contacts["contacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&ME.to_string().as_str()), "{contacts}");
    let (status, dm) = prov(&base, SECRET, "POST", &format!("create_dm/{ME}"), &alice, None).await;
    assert_eq!(status, 200, "{dm}");
    assert!(dm["dm_room_mxid"].as_str().unwrap().starts_with('!'), "{dm}");
    let (status, _) = prov(&base, SECRET, "GET", "resolve_identifier/99999", &alice, None).await;
    assert_eq!(status, 404);

    // Logout ends it, even when QQ refuses the logout.
    let fault = json!({"endpoint": "logout2", "account": OTHER, "count": 100, "kind": {"http_status": 502}});
    te.fault(fault).await;
    let (status, _) = prov(&base, SECRET, "POST", &format!("logout/{login}"), &alice, None).await;
    assert_eq!(status, 200);
    let state = te.control_get("state").await;
    assert!(state["counters"]["logout2"]["faults"].as_u64().unwrap() >= 1, "{state}");
    let (_, logins) = prov(&base, SECRET, "GET", "logins", &alice, None).await;
    assert_eq!(logins, json!({"login_ids": []}));
    drop(owner);
    side.stop().await;
}
