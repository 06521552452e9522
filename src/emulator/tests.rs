//! End-to-end tests of the emulator over real sockets: a full QR login by hand with reqwest,
//! then the session calls, the long poll, sends and faults.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use reqwest::cookie::CookieStore;
use serde_json::{Value, json};
use tokio::net::TcpListener;

use super::*;
use crate::emulator::session::lock;
use crate::webqq::QqNumber;
use crate::webqq::hash::{hash_ecok, hash33};

const UI_REFERER: &str = "https://ui.ptlogin2.qq.com/cgi-bin/login?daid=164&target=self&style=16&mibao_css=m_webqq&appid=501004106&enable_qlogin=0&no_verifyimg=1&s_url=http%3A%2F%2Fw.qq.com%2Fproxy.html&f_url=loginerroralert&strong_login=1&login_state=10&t=20131024001";
const D1_REFERER: &str = "http://d1.web2.qq.com/proxy.html?v=20151105001&callback=1&id=2";
const S_REFERER: &str = "http://s.web2.qq.com/proxy.html?v=20130916001&callback=1&id=1";
const UA: &str =
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.9; rv:27.0) Gecko/20100101 Firefox/27.0";

struct Harness {
    client: reqwest::Client,
    jar: Arc<reqwest::cookie::Jar>,
    emulator: Emulator,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Harness {
    async fn start(options: EmulatorOptions) -> Harness {
        let plain = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let tls = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let tls_addr: SocketAddr = tls.local_addr().unwrap();
        let emulator = Emulator::new(World::demo(), options).unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task =
            tokio::spawn(serve(Listeners { plain, tls: Some(tls) }, emulator.clone(), async {
                let _ = rx.await;
            }));
        let jar = Arc::new(reqwest::cookie::Jar::default());
        // Every real host resolves to the TLS listener, which also takes plain HTTP.
        let mut builder = reqwest::Client::builder()
            .cookie_provider(jar.clone())
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(UA)
            .tls_certs_only([
                reqwest::Certificate::from_pem(emulator.ca_cert_pem().as_bytes()).unwrap()
            ]);
        for host in router::HOSTS {
            builder = builder.resolve(host, tls_addr);
        }
        Harness { client: builder.build().unwrap(), jar, emulator, stop: Some(tx), task }
    }

    fn cookie(&self, url: &str, name: &str) -> Option<String> {
        let header = self.jar.cookies(&url.parse().unwrap())?;
        header.to_str().unwrap().split("; ").find_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            (k == name).then(|| v.to_owned())
        })
    }

    async fn control(&self, method: reqwest::Method, path: &str, body: Value) -> (u16, Value) {
        let r = self
            .client
            .request(method, format!("http://w.qq.com/_emulator{path}"))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn ptlogin(&self, path: &str) -> (u16, String) {
        let r = self
            .client
            .get(format!("https://ssl.ptlogin2.qq.com{path}"))
            .header("Referer", UI_REFERER)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }

    async fn get_json(&self, url: &str, referer: &str) -> Value {
        let r = self.client.get(url).header("Referer", referer).send().await.unwrap();
        r.json().await.unwrap()
    }

    async fn post_r(&self, url: &str, r: &Value) -> Value {
        let resp = self
            .client
            .post(url)
            .header("Referer", D1_REFERER)
            .form(&[("r", r.to_string())])
            .send()
            .await
            .unwrap();
        resp.json().await.unwrap()
    }

    async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        tokio::time::timeout(Duration::from_secs(10), self.task).await.unwrap().unwrap().unwrap();
    }
}

fn ptui_args(js: &str) -> Vec<String> {
    js.trim_start_matches("ptuiCB(")
        .trim_end_matches(");")
        .split(',')
        .map(|a| a.trim().trim_matches('\'').to_owned())
        .collect()
}

/// Logs account 10001 in by QR code; returns (ptwebqq, vfwebqq, psessionid, uin).
async fn qr_login(h: &Harness) -> (String, String, String, u64) {
    let page = h.client.get(UI_REFERER).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(h.cookie("https://ssl.ptlogin2.qq.com/", "pt_login_sig").is_some());
    let png = h
        .client
        .get("https://ssl.ptlogin2.qq.com/ptqrshow?appid=501004106&e=0&l=M&s=5&d=72&v=4&t=0.5")
        .send()
        .await
        .unwrap();
    assert_eq!(png.headers()["content-type"], "image/png");
    assert!(png.bytes().await.unwrap().starts_with(b"\x89PNG"));
    let qrsig = h.cookie("https://ssl.ptlogin2.qq.com/", "qrsig").unwrap();
    let poll = format!(
        "/ptqrlogin?ptqrtoken={}&webqq_type=10&aid=501004106&action=0-0-1000&t=undefined&g=1",
        hash33(&qrsig)
    );

    assert_eq!(h.ptlogin("/ptqrlogin?webqq_type=10").await.0, 403, "no ptqrtoken");
    let (_, body) = h.ptlogin(&poll).await;
    assert!(body.starts_with("ptuiCB('66'"), "{body}");
    assert_eq!(h.control(reqwest::Method::POST, "/qr/scan", json!({"qq": 10001})).await.0, 200);
    assert!(h.ptlogin(&poll).await.1.starts_with("ptuiCB('67'"));
    assert_eq!(h.control(reqwest::Method::POST, "/qr/confirm", json!({"qq": 10001})).await.0, 200);
    let (_, body) = h.ptlogin(&poll).await;
    let args = ptui_args(&body);
    assert_eq!(args[0], "0", "{body}");
    assert_eq!(args[5], "小明");
    assert!(h.cookie("https://ssl.ptlogin2.qq.com/", "superuin").unwrap().ends_with("10001"));
    assert!(h.ptlogin(&poll).await.1.starts_with("ptuiCB('65'"), "a used code is gone");

    let check_sig = h.client.get(&args[2]).send().await.unwrap();
    assert_eq!(check_sig.status(), 302);
    assert!(
        check_sig.headers()["location"].to_str().unwrap().starts_with("http://w.qq.com/proxy.html")
    );
    let ptwebqq = h.cookie("http://d1.web2.qq.com/", "ptwebqq").unwrap();
    assert_eq!(ptwebqq.len(), 64);

    let vf = h
        .get_json(&format!("http://s.web2.qq.com/api/getvfwebqq?ptwebqq={ptwebqq}&clientid=53999199&psessionid=&t=1"), S_REFERER)
        .await;
    let vfwebqq = vf["result"]["vfwebqq"].as_str().unwrap().to_owned();
    let login2 = h
        .post_r(
            "http://d1.web2.qq.com/channel/login2",
            &json!({"ptwebqq": ptwebqq, "clientid": 53999199, "psessionid": "", "status": "online"}),
        )
        .await;
    assert_eq!(login2["retcode"], 0, "{login2}");
    let uin = login2["result"]["uin"].as_u64().unwrap();
    let psessionid = login2["result"]["psessionid"].as_str().unwrap().to_owned();
    (ptwebqq, vfwebqq, psessionid, uin)
}

#[tokio::test]
async fn test_qr_login_poll_and_send_over_http() {
    let options =
        EmulatorOptions { poll_hold: Duration::from_millis(600), ..EmulatorOptions::default() };
    let h = Harness::start(options).await;
    let (ptwebqq, vfwebqq, psessionid, uin) = qr_login(&h).await;
    assert_eq!(uin, 10001, "own uin is the QQ number");
    let poll_r =
        json!({"ptwebqq": ptwebqq, "clientid": 53999199, "psessionid": psessionid, "key": ""});

    // First poll without the warm-up: 103 once (protocol §1.3.6).
    assert_eq!(h.post_r("https://d1.web2.qq.com/channel/poll2", &poll_r).await["retcode"], 103);
    let online = h
        .get_json(&format!("http://d1.web2.qq.com/channel/get_online_buddies2?vfwebqq={vfwebqq}&clientid=53999199&psessionid={psessionid}&t=1"), D1_REFERER)
        .await;
    assert_eq!(online["retcode"], 0);

    // Friend list with the right hash; a wrong one gives 50.
    let hash = hash_ecok(uin, &ptwebqq);
    let friends = h
        .post_r(
            "http://s.web2.qq.com/api/get_user_friends2",
            &json!({"vfwebqq": vfwebqq, "hash": hash}),
        )
        .await;
    assert_eq!(friends["retcode"], 0, "{friends}");
    let marks = friends["result"]["marknames"].as_array().unwrap();
    assert!(marks.iter().any(|m| m["markname"] == "Breath"));
    let wrong = h
        .post_r(
            "http://s.web2.qq.com/api/get_user_friends2",
            &json!({"vfwebqq": vfwebqq, "hash": "00"}),
        )
        .await;
    assert_eq!(wrong["retcode"], 50);

    // Groups: gid as gcode is 6, the code works.
    let groups = h
        .post_r(
            "http://s.web2.qq.com/api/get_group_name_list_mask2",
            &json!({"vfwebqq": vfwebqq, "hash": hash}),
        )
        .await;
    let g = &groups["result"]["gnamelist"][0];
    let info_url = |code: &Value| {
        format!("http://s.web2.qq.com/api/get_group_info_ext2?gcode={code}&vfwebqq={vfwebqq}&t=1")
    };
    assert_eq!(h.get_json(&info_url(&g["gid"]), S_REFERER).await["retcode"], 6);
    let info = h.get_json(&info_url(&g["code"]), S_REFERER).await;
    assert_eq!(info["result"]["minfo"].as_array().unwrap().len(), 4);
    assert!(info["result"]["cards"].as_array().is_some());

    // A missing Referer on s is 100101.
    let bare =
        h.client.get(info_url(&g["code"])).send().await.unwrap().json::<Value>().await.unwrap();
    assert_eq!(bare["retcode"], 100_101);

    // A held poll gets a posted message with this session's uins.
    let poller = {
        let client = h.client.clone();
        let r = poll_r.to_string();
        tokio::spawn(async move {
            client
                .post("https://d1.web2.qq.com/channel/poll2")
                .header("Referer", D1_REFERER)
                .form(&[("r", r)])
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (status, posted) = h
        .control(
            reqwest::Method::POST,
            "/messages",
            json!({"account": 10001, "kind": "friend", "from": 10002, "text": "hi <b>"}),
        )
        .await;
    assert_eq!(status, 200, "{posted}");
    let answer = poller.await.unwrap();
    assert_eq!(answer["retcode"], 0, "{answer}");
    let event = &answer["result"][0];
    assert_eq!(event["poll_type"], "message");
    assert_eq!(event["value"]["content"][1], "hi &lt;b&gt;");
    assert_eq!(event["value"]["msg_id"], posted["msg_id"]);
    let alice_uin = event["value"]["from_uin"].as_u64().unwrap();
    let listed: Vec<u64> = friends["result"]["friends"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["uin"].as_u64().unwrap())
        .collect();
    assert!(listed.contains(&alice_uin));

    // Reply to that uin; the sent log shows the stable QQ number and the text.
    let content = json!(["hello back", ["face", 14], ["font", {"name": "宋体", "size": 10, "style": [0, 0, 0], "color": "000000"}]]).to_string();
    let sent = h
        .post_r(
            "http://d1.web2.qq.com/channel/send_buddy_msg2",
            &json!({"to": alice_uin, "content": content, "face": 522, "clientid": 53999199, "msg_id": 6000001, "psessionid": psessionid}),
        )
        .await;
    assert_eq!(sent, json!({"retcode": 0, "result": "ok"}));
    let bad = h
        .post_r(
            "http://d1.web2.qq.com/channel/send_buddy_msg2",
            &json!({"to": alice_uin, "content": "{}", "face": 522, "clientid": 53999199, "msg_id": 6000002, "psessionid": psessionid}),
        )
        .await;
    assert_eq!(bad["retcode"], 1202, "content must be an array");
    let (_, log) = h.control(reqwest::Method::GET, "/sent?account=10001", Value::Null).await;
    assert_eq!(log[0]["target"], 10002);
    assert_eq!(log[0]["kind"], "friend");
    assert!(log[0]["text"].as_str().unwrap().starts_with("hello back"));
    assert_eq!(h.emulator.sent(QqNumber::new(10001)).len(), 1, "the in-process view agrees");

    // Idle poll: 102 after the hold.
    let started = std::time::Instant::now();
    assert_eq!(h.post_r("https://d1.web2.qq.com/channel/poll2", &poll_r).await["retcode"], 102);
    assert!(started.elapsed() >= Duration::from_millis(500));

    // Faults: 116 carries a new p; a 502 page; the counters see them.
    h.control(
        reqwest::Method::POST,
        "/faults",
        json!({"endpoint": "poll2", "kind": {"retcode": 116}}),
    )
    .await;
    let rotated = h.post_r("https://d1.web2.qq.com/channel/poll2", &poll_r).await;
    assert_eq!(rotated["retcode"], 116);
    assert_eq!(rotated["p"].as_str().unwrap().len(), 64);
    h.control(
        reqwest::Method::POST,
        "/faults",
        json!({"endpoint": "get_online_buddies2", "kind": {"http_status": 502}}),
    )
    .await;
    let r = h
        .client
        .get(format!("http://d1.web2.qq.com/channel/get_online_buddies2?vfwebqq={vfwebqq}&clientid=53999199&psessionid={psessionid}&t=1"))
        .header("Referer", D1_REFERER)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 502);
    let (_, state) = h.control(reqwest::Method::GET, "/state", Value::Null).await;
    assert_eq!(state["online"], json!([10001]));
    assert_eq!(state["counters"]["poll2"]["faults"], 1);

    // Options are merged: only the named member changes.
    let (status, _) =
        h.control(reqwest::Method::POST, "/options", json!({"self_echo": true})).await;
    assert_eq!(status, 200);
    assert!(h.emulator.options().self_echo);
    assert_eq!(h.emulator.options().poll_hold, Duration::from_millis(600));
    let (status, err) = h.control(reqwest::Method::POST, "/options", json!({"bogus": 1})).await;
    assert_eq!(status, 400, "{err}");

    // Unknown host or path: nginx 404.
    let r = h.client.get("http://s.web2.qq.com/api/nope").send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert!(r.text().await.unwrap().contains("nginx"));
    h.stop().await;
}

#[tokio::test]
async fn test_second_login_kicks_first_and_group_delivery() {
    let options = EmulatorOptions {
        poll_hold: Duration::from_secs(5),
        require_warmup: false,
        ..EmulatorOptions::default()
    };
    let h = Harness::start(options).await;
    let (ptwebqq, _vf, psessionid, _) = qr_login(&h).await;
    let old_r =
        json!({"ptwebqq": ptwebqq, "clientid": 53999199, "psessionid": psessionid, "key": ""});
    let held = {
        let client = h.client.clone();
        let r = old_r.to_string();
        tokio::spawn(async move {
            client
                .post("http://d1.web2.qq.com/channel/poll2")
                .header("Referer", D1_REFERER)
                .form(&[("r", r)])
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (_, _, new_ps, _) = qr_login(&h).await;
    assert_ne!(new_ps, psessionid);
    assert_eq!(held.await.unwrap(), json!({"retcode": 121, "t": "0"}));
    assert_eq!(h.post_r("http://d1.web2.qq.com/channel/poll2", &old_r).await["retcode"], 103);

    // A group message from a member reaches the new session.
    let (status, posted) = h
        .control(reqwest::Method::POST, "/messages", json!({"account": 10001, "kind": "group", "from": 10003, "group": 346167134, "text": "大家好"}))
        .await;
    assert_eq!(status, 200, "{posted}");
    assert_eq!(posted["delivered"], 1);
    let new_r = json!({"ptwebqq": ptwebqq, "clientid": 53999199, "psessionid": new_ps, "key": ""});
    let answer = h.post_r("http://d1.web2.qq.com/channel/poll2", &new_r).await;
    assert_eq!(answer["result"][0]["poll_type"], "group_message", "{answer}");
    assert_eq!(
        answer["result"][0]["value"]["from_uin"],
        answer["result"][0]["value"]["group_code"]
    );
    let (status, err) = h.control(reqwest::Method::POST, "/messages", json!({"account": 10001, "kind": "group", "from": 10005, "group": 346167134, "text": "x"})).await;
    assert_eq!(status, 400);
    assert!(err["error"].as_str().unwrap().contains("members"));
    h.stop().await;
}

#[tokio::test]
async fn test_password_login_schemes_and_captcha() {
    use crate::webqq::crypto::{encrypt_password_md5, encrypt_password_rsa_tea, password_md5};
    use crate::webqq::jscall::parse_call;

    let h = Harness::start(EmulatorOptions::default()).await;
    // Without the login UI Referer: ptuiCB 7.
    let r = h
        .client
        .get("https://ssl.ptlogin2.qq.com/check?pt_tea=1&uin=10001&appid=501004106")
        .send()
        .await
        .unwrap();
    assert!(r.text().await.unwrap().starts_with("ptuiCB('7'"));

    let check = |qq: u64| {
        format!(
            "/check?pt_tea=1&uin={qq}&appid=501004106&js_ver=10120&js_type=0&login_sig=&u1=x&r=0.3"
        )
    };
    let (_, body) = h.ptlogin(&check(10001)).await;
    let args = parse_call(&body, "ptui_checkVC").unwrap();
    assert_eq!(args[0], "0");
    assert!(args[1].starts_with('!'));
    assert_eq!(args.len(), 5, "2015 form by default: {body}");
    let salt = 10001_u64.to_be_bytes();
    let login = |qq: u64, p: &str, code: &str, vs: &str| {
        format!(
            "/login?u={qq}&p={p}&verifycode={code}&webqq_type=10&remember_uin=1&login2qq=1&aid=501004106&h=1&ptredirect=0&ptlang=2052&daid=164&from_ui=1&pttype=1&dumy=&fp=loginerroralert&action=0-0-1&mibao_css=m_webqq&t=1&g=1&js_type=0&js_ver=10120&login_sig=&pt_randsalt=0&pt_vcode_v1=0&pt_verifysession_v1={vs}"
        )
    };
    let wrong = encrypt_password_md5(password_md5("nope"), &salt, &args[1]);
    let (_, body) = h.ptlogin(&login(10001, &wrong, &args[1], &args[3])).await;
    assert!(body.starts_with("ptuiCB('3'"), "{body}");
    // The check answer is spent by a failure: a new check is needed.
    let (_, body) = h.ptlogin(&check(10001)).await;
    let args = parse_call(&body, "ptui_checkVC").unwrap();
    let p = encrypt_password_md5(password_md5("password"), &salt, &args[1]);
    let (_, body) = h.ptlogin(&login(10001, &p, &args[1], &args[3])).await;
    let cb = parse_call(&body, "ptuiCB").unwrap();
    assert_eq!(cb[0], "0", "{body}");
    assert_eq!(h.client.get(&cb[2]).send().await.unwrap().status(), 302);
    assert!(h.cookie("http://s.web2.qq.com/", "ptwebqq").is_some());
    // What the login handed out is listed for leak checks, with the passwords.
    let (status, listed) = h.control(reqwest::Method::GET, "/secrets", Value::Null).await;
    assert_eq!(status, 200);
    let listed: Vec<&str> =
        listed["secrets"].as_array().unwrap().iter().map(|s| s.as_str().unwrap()).collect();
    let skey = h.cookie("http://s.web2.qq.com/", "skey").unwrap();
    assert!(listed.contains(&skey.as_str()) && listed.contains(&"password"), "{listed:?}");
    assert!(!listed.iter().any(|s| s.starts_with("o00")), "account names are not secrets");
    // A changed password is the one checked from then on.
    let new_password = json!({"qq": 10001, "password": "changed-pw"});
    assert_eq!(h.control(reqwest::Method::POST, "/accounts/password", new_password).await.0, 200);
    let unknown = json!({"qq": 99999, "password": "x"});
    assert_eq!(h.control(reqwest::Method::POST, "/accounts/password", unknown).await.0, 400);
    let (_, body) = h.ptlogin(&check(10001)).await;
    let args = parse_call(&body, "ptui_checkVC").unwrap();
    let p = encrypt_password_md5(password_md5("password"), &salt, &args[1]);
    let (_, body) = h.ptlogin(&login(10001, &p, &args[1], &args[3])).await;
    assert!(body.starts_with("ptuiCB('3'"), "the old password no longer works: {body}");
    let (_, body) = h.ptlogin(&check(10001)).await;
    let args = parse_call(&body, "ptui_checkVC").unwrap();
    let p = encrypt_password_md5(password_md5("changed-pw"), &salt, &args[1]);
    let (_, body) = h.ptlogin(&login(10001, &p, &args[1], &args[3])).await;
    assert!(body.starts_with("ptuiCB('0'"), "{body}");

    // Captcha account, scheme B (RSA + TEA).
    let (_, body) = h.ptlogin(&check(10002)).await;
    let args = parse_call(&body, "ptui_checkVC").unwrap();
    assert_eq!(args[0], "1");
    let image = h
        .client
        .get(format!(
            "https://ssl.captcha.qq.com/getimage?aid=501004106&r=0.1&uin=10002&cap_cd={}",
            args[1]
        ))
        .header("Referer", UI_REFERER)
        .send()
        .await
        .unwrap();
    assert!(image.bytes().await.unwrap().starts_with(&[0xFF, 0xD8]));
    let code = lock(&h.emulator.shared.login)
        .check(QqNumber::new(10002), tokio::time::Instant::now())
        .map(|c| c.code.clone())
        .unwrap();
    let salt = 10002_u64.to_be_bytes();
    let mut rng = rand::rng();
    let bad_code = encrypt_password_rsa_tea(password_md5("123456"), &salt, "ZZZZ", &mut rng);
    let (_, body) = h.ptlogin(&login(10002, &bad_code, "ZZZZ", "")).await;
    assert!(body.starts_with("ptuiCB('4'"), "{body}");
    let p = encrypt_password_rsa_tea(password_md5("123456"), &salt, &code, &mut rng);
    let p = url::form_urlencoded::byte_serialize(p.as_bytes()).collect::<String>();
    let (_, body) = h.ptlogin(&login(10002, &p, &code.to_lowercase(), "")).await;
    assert!(body.starts_with("ptuiCB('0'"), "{body}");
    h.stop().await;
}

#[tokio::test]
async fn test_newer_poll_ends_older_with_102() {
    let options = EmulatorOptions {
        poll_hold: Duration::from_secs(30),
        require_warmup: false,
        ..EmulatorOptions::default()
    };
    let h = Harness::start(options).await;
    let (ptwebqq, _vf, psessionid, _) = qr_login(&h).await;
    let r = json!({"ptwebqq": ptwebqq, "clientid": 53999199, "psessionid": psessionid, "key": ""});
    let spawn_poll = || {
        let client = h.client.clone();
        let r = r.to_string();
        tokio::spawn(async move {
            client
                .post("http://d1.web2.qq.com/channel/poll2")
                .header("Referer", D1_REFERER)
                .form(&[("r", r)])
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        })
    };
    let first = spawn_poll();
    tokio::time::sleep(Duration::from_millis(150)).await;
    let second = spawn_poll();
    let started = std::time::Instant::now();
    assert_eq!(first.await.unwrap()["retcode"], 102);
    assert!(started.elapsed() < Duration::from_secs(5), "the older poll ended at once");
    // Several events in one answer go to the newer poll.
    tokio::time::sleep(Duration::from_millis(50)).await;
    h.emulator.push_event(QqNumber::new(10001), json!({"poll_type": "tips", "value": {}})).unwrap();
    let answer = second.await.unwrap();
    assert_eq!(answer["result"][0]["poll_type"], "tips", "{answer}");
    // Kick: the kick_message arrives, then the session is gone.
    h.emulator.kick(QqNumber::new(10001)).unwrap();
    let kicked = h.post_r("http://d1.web2.qq.com/channel/poll2", &r).await;
    assert_eq!(kicked["result"][0]["poll_type"], "kick_message", "{kicked}");
    assert_eq!(h.post_r("http://d1.web2.qq.com/channel/poll2", &r).await["retcode"], 103);
    h.stop().await;
}

#[tokio::test]
async fn test_relink_keeps_pending_events_and_their_uins() {
    let options = EmulatorOptions {
        poll_hold: Duration::from_secs(5),
        require_warmup: false,
        ..EmulatorOptions::default()
    };
    let h = Harness::start(options).await;
    let (ptwebqq, _vf, psessionid, _) = qr_login(&h).await;
    // A message queues while the client is away (e.g. crashed), then it relinks.
    let body = json!({"account": 10001, "kind": "friend", "from": 10002, "text": "while away"});
    let (status, posted) = h.control(reqwest::Method::POST, "/messages", body).await;
    assert_eq!(status, 200, "{posted}");
    let relink = json!({"ptwebqq": ptwebqq, "clientid": 53999199, "psessionid": psessionid, "status": "online"});
    let relinked = h.post_r("http://d1.web2.qq.com/channel/login2", &relink).await;
    assert_eq!(relinked["retcode"], 0, "{relinked}");
    let new_ps = relinked["result"]["psessionid"].as_str().unwrap();
    let vfwebqq = relinked["result"]["vfwebqq"].as_str().unwrap();
    let r = json!({"ptwebqq": ptwebqq, "clientid": 53999199, "psessionid": new_ps, "key": ""});
    let answer = h.post_r("http://d1.web2.qq.com/channel/poll2", &r).await;
    let events = answer["result"].as_array().unwrap();
    let message = events.iter().find(|e| e["poll_type"] == "message").unwrap();
    // The pending event's uin still resolves in the relinked session.
    let from = message["value"]["from_uin"].as_u64().unwrap();
    let url = format!(
        "http://s.web2.qq.com/api/get_friend_uin2?tuin={from}&type=1&vfwebqq={vfwebqq}&t=1"
    );
    let who = h.get_json(&url, S_REFERER).await;
    assert_eq!(who["result"]["account"], 10002, "{who}");
    h.stop().await;
}
