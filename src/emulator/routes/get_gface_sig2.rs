//! `GET http://d(1).web2.qq.com/channel/get_gface_sig2`: key and sig for sending group pictures
//! (protocol §2.18 step 3). Fixed per session.

use crate::emulator::http::{Reply, Req};
use crate::emulator::routes::common::{check_d, session_of_query};
use crate::emulator::state::Shared;
use crate::webqq::api::get_gface_sig2::GfaceSig;

/// Answers the signature.
pub(crate) fn handle(shared: &Shared, req: &Req) -> Reply {
    if let Some(refused) = check_d(shared, req) {
        return refused;
    }
    let session = match session_of_query(shared, req) {
        Ok(s) => s,
        Err(reply) => return reply,
    };
    let sig = GfaceSig {
        reply: 0,
        gface_key: session.gface_key.clone(),
        gface_sig: session.gface_sig.clone(),
    };
    Reply::ok(serde_json::to_value(sig).unwrap_or_default())
}
