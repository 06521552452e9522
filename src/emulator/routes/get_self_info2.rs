//! `GET http://s.web2.qq.com/api/get_self_info2`: the own profile (protocol §2.13).
//!
//! Takes only `t`: the account comes from the cookies. Its `vfwebqq` member was reported
//! useless; the emulator returns the session's, which is harmless.

use serde_json::Value;

use crate::emulator::http::{Reply, Req};
use crate::emulator::routes::common::{auth_of, check_s, no_headers_s};
use crate::emulator::routes::get_friend_info2::profile;
use crate::emulator::state::{Shared, read};
use crate::webqq::Uin;

/// Answers the profile.
pub(crate) fn handle(shared: &Shared, req: &Req) -> Reply {
    if let Some(refused) = check_s(shared, req) {
        return refused;
    }
    let Some(auth) = auth_of(shared, req) else { return no_headers_s() };
    let Some(person) = read(&shared.world).person(auth.account).cloned() else {
        return Reply::retcode(103);
    };
    let mut p = profile(&person, Uin::new(auth.account.get()), Some(auth.account));
    if let Some(vf) = auth.vfwebqq {
        p.extra.insert("vfwebqq".to_owned(), Value::from(vf));
    }
    Reply::ok(serde_json::to_value(p).unwrap_or(Value::Null))
}
