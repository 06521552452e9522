//! `GET http://d(1).web2.qq.com/channel/get_cface2`: fetch a buddy custom face by `guid` (its
//! name). Protocol §2.18: the image itself; 103 when unknown.

use crate::emulator::http::{Reply, Req};
use crate::emulator::routes::common::session_of_query;
use crate::emulator::routes::image_server::serve_key;
use crate::emulator::state::Shared;

/// Answers the fetch.
pub(crate) fn handle(shared: &Shared, req: &Req) -> Reply {
    if session_of_query(shared, req).is_err() {
        return Reply::retcode(103);
    }
    let guid = req.param("guid").unwrap_or_default();
    serve_key(shared, guid).unwrap_or_else(|| Reply::retcode(103))
}
