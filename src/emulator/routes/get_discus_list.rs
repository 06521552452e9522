//! `GET http://s.web2.qq.com/api/get_discus_list`: the discussions of the account (protocol §2.9).

use crate::emulator::deliver::escape;
use crate::emulator::http::{Reply, Req};
use crate::emulator::routes::common::session_of_s;
use crate::emulator::state::{Shared, read};
use crate::webqq::api::get_discus_list::{DiscussionEntry, DiscussionList};

/// Answers the list.
pub(crate) fn handle(shared: &Shared, req: &Req) -> Reply {
    let session = match session_of_s(shared, req) {
        Ok(s) => s,
        Err(reply) => return reply,
    };
    let list = DiscussionList {
        dnamelist: read(&shared.world)
            .discussions_of(session.account)
            .map(|d| DiscussionEntry { name: escape(&d.name), did: d.id })
            .collect(),
    };
    Reply::ok(serde_json::to_value(list).unwrap_or_default())
}
