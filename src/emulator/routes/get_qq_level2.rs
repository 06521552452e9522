//! `GET http://s.web2.qq.com/api/get_qq_level2`: a person's QQ level (protocol §2.1 table).
//! Fixed, plausible numbers.

use serde_json::json;

use crate::emulator::http::{Reply, Req};
use crate::emulator::routes::common::session_of_s;
use crate::emulator::state::Shared;

/// Answers the level.
pub(crate) fn handle(shared: &Shared, req: &Req) -> Reply {
    if let Err(reply) = session_of_s(shared, req) {
        return reply;
    }
    let tuin = req.param("tuin").and_then(|t| t.trim().parse::<u64>().ok()).unwrap_or(0);
    Reply::ok(json!({"level": 32, "days": 1200, "hours": 9000, "remainDays": 24, "tuin": tuin}))
}
