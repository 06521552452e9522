//! `GET http://d(1).web2.qq.com/channel/logout2`: end the channel session (protocol §1.5).

use serde_json::Value;

use crate::emulator::http::{Reply, Req};
use crate::emulator::routes::common::{check_d, session_of_query};
use crate::emulator::session::Liveness;
use crate::emulator::state::{Shared, write};

/// Answers the logout.
pub(crate) fn handle(shared: &Shared, req: &Req) -> Reply {
    if let Some(refused) = check_d(shared, req) {
        return refused;
    }
    let session = match session_of_query(shared, req) {
        Ok(s) => s,
        Err(reply) => return reply,
    };
    write(&shared.sessions).remove(session.id);
    session.end(Liveness::Dead);
    crate::emulator::deliver::deliver_status_change(shared, session.account, "offline");
    tracing::info!(account = %session.account, "logout2");
    Reply::ok(Value::from("ok"))
}
