//! `GET http://d(1).web2.qq.com/channel/change_status2`: set the online status.
//!
//! Protocol §2.16, §0.5. An unknown status string answers 1202 (design choice: bad parameter).

use serde_json::Value;

use crate::emulator::http::{Reply, Req};
use crate::emulator::routes::common::{check_d, session_of_query};
use crate::emulator::state::Shared;

/// The status strings of protocol §0.5.
const STATUSES: &[&str] = &["online", "away", "busy", "silent", "hidden", "callme", "offline"];

/// Answers the change.
pub(crate) fn handle(shared: &Shared, req: &Req) -> Reply {
    if let Some(refused) = check_d(shared, req) {
        return refused;
    }
    let session = match session_of_query(shared, req) {
        Ok(s) => s,
        Err(reply) => return reply,
    };
    let status = req.param("newstatus").unwrap_or_default();
    if !STATUSES.contains(&status) {
        return Reply::retcode(1202);
    }
    session.lock().status = status.to_owned();
    crate::emulator::deliver::deliver_status_change(shared, session.account, status);
    Reply::ok(Value::from("ok"))
}
