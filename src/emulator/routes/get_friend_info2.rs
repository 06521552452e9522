//! `GET http://s.web2.qq.com/api/get_friend_info2`: a person's profile by uin (protocol §2.15).
//! Also the builder get_self_info2 and get_stranger_info2 use.

use serde_json::{Map, Value, json};

use crate::emulator::deliver::escape;
use crate::emulator::http::{Reply, Req};
use crate::emulator::routes::common::session_of_s;
use crate::emulator::state::{Shared, read};
use crate::emulator::world::Person;
use crate::webqq::api::get_self_info2::Profile;
use crate::webqq::{QqNumber, Uin};

/// A profile of `person` as seen with `uin`; `account` is set for self info.
pub(crate) fn profile(person: &Person, uin: Uin, account: Option<QqNumber>) -> Profile {
    let mut extra = Map::new();
    for (k, v) in [
        ("birthday", json!({"month": 1, "year": 1990, "day": 1})),
        ("occupation", json!("")),
        ("phone", json!("")),
        ("allow", json!(1)),
        ("college", json!("")),
        ("constel", json!(0)),
        ("blood", json!(0)),
        ("homepage", json!("")),
        ("stat", json!(10)),
        ("vip_info", json!(0)),
        ("country", json!("中国")),
        ("city", json!("")),
        ("personal", json!("")),
        ("shengxiao", json!(1)),
        ("email", json!("")),
        ("province", json!("")),
        ("mobile", json!("")),
    ] {
        extra.insert(k.to_owned(), v);
    }
    Profile {
        uin,
        account,
        nick: escape(&person.nick),
        face: u64::from(person.face),
        lnick: account.map(|_| escape(&person.lnick)),
        gender: person.gender.clone(),
        extra,
    }
}

/// Answers a profile for the `tuin` query parameter.
pub(crate) fn handle(shared: &Shared, req: &Req) -> Reply {
    let session = match session_of_s(shared, req) {
        Ok(s) => s,
        Err(reply) => return reply,
    };
    let uin = req.param("tuin").and_then(|t| t.trim().parse::<u64>().ok()).map(Uin::new);
    let Some(qq) = uin.and_then(|u| session.lock().uins.qq(u)) else {
        return Reply::retcode(100_001);
    };
    let person = read(&shared.world).person(qq).cloned();
    match (person, uin) {
        (Some(p), Some(uin)) => {
            Reply::ok(serde_json::to_value(profile(&p, uin, None)).unwrap_or(Value::Null))
        }
        _ => Reply::retcode(100_001),
    }
}
