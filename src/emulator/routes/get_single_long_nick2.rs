//! `GET http://s.web2.qq.com/api/get_single_long_nick2`: a person's signature (protocol §2.14).

use crate::emulator::deliver::escape;
use crate::emulator::http::{Reply, Req};
use crate::emulator::routes::common::session_of_s;
use crate::emulator::state::{Shared, read};
use crate::webqq::Uin;
use crate::webqq::api::get_single_long_nick2::LongNick;

/// Answers the signature.
pub(crate) fn handle(shared: &Shared, req: &Req) -> Reply {
    let session = match session_of_s(shared, req) {
        Ok(s) => s,
        Err(reply) => return reply,
    };
    let uin = req.param("tuin").and_then(|t| t.trim().parse::<u64>().ok()).map(Uin::new);
    let Some((uin, qq)) = uin.and_then(|u| session.lock().uins.qq(u).map(|q| (u, q))) else {
        return Reply::retcode(100_001);
    };
    let lnick = read(&shared.world).person(qq).map(|p| escape(&p.lnick)).unwrap_or_default();
    Reply::ok(serde_json::to_value(vec![LongNick { uin, lnick }]).unwrap_or_default())
}
