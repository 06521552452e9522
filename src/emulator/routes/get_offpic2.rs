//! `GET http://d(1).web2.qq.com/channel/get_offpic2` (SmartQQ: `http://w.qq.com/d/channel/…`):
//! fetch a buddy offline picture.
//!
//! Protocol §2.18: success is a 302 to the picture server; failure is 200 with
//! `{"retcode":103,"errmsg":""}`. Referer is not checked on picture fetches.

use crate::emulator::http::{Reply, Req};
use crate::emulator::routes::common::session_of_query;
use crate::emulator::routes::image_server::redirect_to;
use crate::emulator::state::Shared;

/// Answers the fetch.
pub(crate) fn handle(shared: &Shared, req: &Req) -> Reply {
    if session_of_query(shared, req).is_err() {
        return Reply::retcode(103);
    }
    let path = req.param("file_path").unwrap_or_default();
    redirect_to(shared, path).unwrap_or_else(|| Reply::retcode(103))
}
