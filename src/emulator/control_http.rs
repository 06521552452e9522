//! The control API over HTTP: `/_emulator/…` on every host, JSON in and out, 400 with
//! `{"error": "..."}` on bad input. Each route calls the matching [`Emulator`] method
//! (`control.rs`), so HTTP and in-process tests behave the same.
//!
//! | route | body / query | answer |
//! | --- | --- | --- |
//! | `POST accounts` | `{"qq","password","nick"?,"face"?,"captcha"?,"locked"?,"banned"?,"categories"?}` | `{"ok":true}` |
//! | `POST accounts/password` | `{"qq","password"}` (later logins need the new one) | `{"ok":true}` |
//! | `POST persons` | `{"qq","nick","face"?,"gender"?,"lnick"?}` | `{"ok":true}` |
//! | `POST friends` | `{"account","qq","markname"?,"category"?}` (mutual; buddylist_change) | `{"ok":true}` |
//! | `POST groups` | `{"number","name","owner","members":[…],"memo"?,"cards"?:{qq:card}}` | `{"ok":true}` |
//! | `POST groups/members` | `{"number","qq"}` (sys_g_msg group_join) | `{"ok":true}` |
//! | `POST groups/leave` | `{"number","qq","by"?}` (sys_g_msg group_leave; `by`: removed by that admin) | `{"ok":true}` |
//! | `POST status` | `{"account","from","status"}` (buddies_status_change in the account's session) | `{"ok":true}` |
//! | `POST discussions` | `{"id","name","members":[…]}` | `{"ok":true}` |
//! | `POST messages` | `{"account","kind":"friend"/"group"/"discussion"/"session","from","group"?,"discussion"?,"text","face"?,"image"?}` | `{"msg_id","time","delivered"}` |
//! | `POST events` | `{"account","event":<raw poll event>}` | `{"ok":true}` |
//! | `POST typing` | `{"account","from","shake"?}` | `{"ok":true}` |
//! | `POST kick` | `{"account"}` | `{"ok":true}` |
//! | `POST qr/scan`, `POST qr/confirm` | `{"qq"}` (the newest pending QR code) | `{"ok":true}` |
//! | `GET sent?account=<qq>` | | `[{"kind","target","text","content","msg_id","time"}]` |
//! | `POST faults` | `{"endpoint","account"?,"count"?,"seconds"?,"ratio"?,"seed"?,"kind":{…}}` | `{"id"}` |
//! | `DELETE faults` | | `{"ok":true}` |
//! | `GET state` | | online, sessions, counters, pending_qr, faults, captchas |
//! | `GET options`, `POST options` | partial options object, merged into the current ones | options / `{"ok":true}` |
//! | `GET ca.pem` | | the CA certificate (JSON string) |
//! | `GET secrets` | | every credential handed out (cookies, ptsigx, psessionid, vfwebqq) and every account password: `{"secrets":[…]}`, for leak checks |

use std::sync::Arc;

use http::{Method, StatusCode};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::emulator::control::{ControlError, PostMessage};
use crate::emulator::faults::FaultSpec;
use crate::emulator::http::{Reply, Req};
use crate::emulator::options::EmulatorOptions;
use crate::emulator::state::Shared;
use crate::emulator::world::{Account, Discussion, Friend, Group, Person};
use crate::emulator::{Emulator, http::parse_o_uin};
use crate::webqq::{GroupNumber, QqNumber, Secret};

fn bad(message: impl std::fmt::Display) -> Reply {
    Reply::control(StatusCode::BAD_REQUEST, &json!({"error": message.to_string()}))
}

fn ok(value: Value) -> Reply {
    Reply::control(StatusCode::OK, &value)
}

fn body<T: DeserializeOwned>(req: &Req) -> Result<T, Reply> {
    serde_json::from_slice(&req.body).map_err(|e| bad(format!("bad json body: {e}")))
}

fn done(result: Result<(), ControlError>) -> Reply {
    match result {
        Ok(()) => ok(json!({"ok": true})),
        Err(e) => bad(e),
    }
}

/// `POST /_emulator/accounts`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewAccount {
    qq: QqNumber,
    password: String,
    #[serde(default)]
    nick: Option<String>,
    #[serde(default)]
    face: u32,
    #[serde(default)]
    captcha: bool,
    #[serde(default)]
    locked: bool,
    #[serde(default)]
    banned: bool,
    #[serde(default)]
    categories: Vec<String>,
}

/// `POST /_emulator/accounts/password`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewPassword {
    qq: QqNumber,
    password: String,
}

/// `POST /_emulator/persons`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewPerson {
    qq: QqNumber,
    nick: String,
    #[serde(default)]
    face: u32,
    #[serde(default)]
    gender: Option<String>,
    #[serde(default)]
    lnick: String,
}

/// `POST /_emulator/friends`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewFriend {
    account: QqNumber,
    qq: QqNumber,
    #[serde(default)]
    markname: Option<String>,
    #[serde(default)]
    category: u32,
}

/// `POST /_emulator/events`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEvent {
    account: QqNumber,
    event: Value,
}

/// `POST /_emulator/typing`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Typing {
    account: QqNumber,
    from: QqNumber,
    #[serde(default)]
    shake: bool,
}

/// Bodies naming one QQ number: `{"qq": …}` or `{"account": …}`.
#[derive(Deserialize)]
struct One {
    #[serde(default)]
    qq: Option<QqNumber>,
    #[serde(default)]
    account: Option<QqNumber>,
}

/// `POST /_emulator/groups/members`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Join {
    number: GroupNumber,
    qq: QqNumber,
}

/// `POST /_emulator/groups/leave`: `by` is the admin who removed the member, if any.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Leave {
    number: GroupNumber,
    qq: QqNumber,
    #[serde(default)]
    by: Option<QqNumber>,
}

/// `POST /_emulator/status`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Status {
    account: QqNumber,
    from: QqNumber,
    status: String,
}

/// The current options with the body's members laid over them.
fn merged_options(emulator: &Emulator, req: &Req) -> Result<EmulatorOptions, Reply> {
    let patch: serde_json::Map<String, Value> = body(req)?;
    let mut current = serde_json::to_value(emulator.options()).map_err(bad)?;
    if let Value::Object(map) = &mut current {
        map.extend(patch);
    }
    serde_json::from_value(current).map_err(|e| bad(format!("bad options: {e}")))
}

fn one(req: &Req) -> Result<QqNumber, Reply> {
    let o: One = body(req)?;
    o.qq.or(o.account).ok_or_else(|| bad("missing qq"))
}

/// Handles a control request.
pub(crate) fn handle(shared: &Arc<Shared>, req: &Req) -> Reply {
    let emulator = Emulator { shared: shared.clone() };
    let path = req.path.trim_start_matches("/_emulator");
    let result = match (&req.method, path) {
        (&Method::GET, "/state") => serde_json::to_value(emulator.state()).map(ok).map_err(bad),
        (&Method::GET, "/ca.pem") => {
            Ok(Reply::control(StatusCode::OK, &Value::from(emulator.ca_cert_pem())))
        }
        (&Method::GET, "/secrets") => Ok(ok(json!({"secrets": emulator.issued_secrets()}))),
        (&Method::GET, "/options") => serde_json::to_value(emulator.options()).map(ok).map_err(bad),
        (&Method::POST, "/options") => merged_options(&emulator, req).map(|o| {
            emulator.set_options(o);
            ok(json!({"ok": true}))
        }),
        (&Method::GET, "/sent") => match req.param("account").and_then(parse_o_uin) {
            Some(a) => serde_json::to_value(emulator.sent(QqNumber::new(a))).map(ok).map_err(bad),
            None => Err(bad("missing account")),
        },
        (&Method::POST, "/accounts") => body::<NewAccount>(req).map(|a| {
            let person = Person {
                qq: a.qq,
                nick: a.nick.unwrap_or_else(|| a.qq.to_string()),
                face: a.face,
                gender: "unknown".to_owned(),
                lnick: String::new(),
            };
            // The person may exist already; then only the account is added.
            let _ = emulator.add_person(person);
            done(emulator.add_account(Account {
                qq: a.qq,
                password: Secret::new(a.password),
                captcha: a.captcha,
                locked: a.locked,
                banned: a.banned,
                categories: a.categories,
                friends: Vec::new(),
            }))
        }),
        (&Method::POST, "/accounts/password") => body::<NewPassword>(req)
            .map(|p| done(emulator.set_password(p.qq, Secret::new(p.password)))),
        (&Method::POST, "/persons") => body::<NewPerson>(req).map(|p| {
            done(emulator.add_person(Person {
                qq: p.qq,
                nick: p.nick,
                face: p.face,
                gender: p.gender.unwrap_or_else(|| "unknown".to_owned()),
                lnick: p.lnick,
            }))
        }),
        (&Method::POST, "/friends") => body::<NewFriend>(req).map(|f| {
            done(emulator.add_friend(
                f.account,
                Friend { qq: f.qq, markname: f.markname, category: f.category },
            ))
        }),
        (&Method::POST, "/groups") => body::<Group>(req).map(|g| done(emulator.add_group(g))),
        (&Method::POST, "/groups/members") => {
            body::<Join>(req).map(|j| done(emulator.join_group(j.number, j.qq)))
        }
        (&Method::POST, "/groups/leave") => {
            body::<Leave>(req).map(|l| done(emulator.leave_group(l.number, l.qq, l.by)))
        }
        (&Method::POST, "/status") => {
            body::<Status>(req).map(|s| done(emulator.status_change(s.account, s.from, &s.status)))
        }
        (&Method::POST, "/discussions") => {
            body::<Discussion>(req).map(|d| done(emulator.add_discussion(d)))
        }
        (&Method::POST, "/messages") => {
            body::<PostMessage>(req).map(|m| match emulator.post_message(m) {
                Ok(posted) => serde_json::to_value(posted).map(ok).unwrap_or_else(bad),
                Err(e) => bad(e),
            })
        }
        (&Method::POST, "/events") => {
            body::<RawEvent>(req).map(|e| done(emulator.push_event(e.account, e.event)))
        }
        (&Method::POST, "/typing") => {
            body::<Typing>(req).map(|t| done(emulator.typing(t.account, t.from, t.shake)))
        }
        (&Method::POST, "/kick") => one(req).map(|qq| done(emulator.kick(qq))),
        (&Method::POST, "/qr/scan") => one(req).map(|qq| done(emulator.scan_qr(qq))),
        (&Method::POST, "/qr/confirm") => one(req).map(|qq| done(emulator.confirm_qr(qq))),
        (&Method::POST, "/faults") => {
            body::<FaultSpec>(req).map(|f| ok(json!({"id": emulator.add_fault(f)})))
        }
        (&Method::DELETE, "/faults") => {
            emulator.clear_faults();
            Ok(ok(json!({"ok": true})))
        }
        _ => {
            Ok(Reply::control(StatusCode::NOT_FOUND, &json!({"error": "no such control endpoint"})))
        }
    };
    result.unwrap_or_else(|reply| reply)
}
