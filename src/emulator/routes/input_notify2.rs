//! `GET http://d(1).web2.qq.com/channel/input_notify2`: "I am typing" (protocol §2.17).
//!
//! The peer, if an online emulated account, gets an `input_notify` event (§4.7).

use crate::emulator::http::{Reply, Req};
use crate::emulator::routes::common::{check_d, session_of_query};
use crate::emulator::state::Shared;

/// Answers the notice; `shake` selects shake2.
pub(crate) fn handle(shared: &Shared, req: &Req, shake: bool) -> Reply {
    if let Some(refused) = check_d(shared, req) {
        return refused;
    }
    let session = match session_of_query(shared, req) {
        Ok(s) => s,
        Err(reply) => return reply,
    };
    let to = req.param("to_uin").and_then(|u| u.trim().parse().ok());
    let Some(to) = to.and_then(|u| session.lock().uins.qq(u)) else {
        return Reply::retcode(1202);
    };
    crate::emulator::deliver::deliver_notice(shared, session.account, to, shake);
    Reply::ok(serde_json::Value::from("ok"))
}
