//! `POST http://s.web2.qq.com/api/get_group_name_list_mask2`: the group list.
//!
//! Protocol §2.7: `gid` for sending, `code` for info (distinct numbers per session). Needs the
//! same `hash` as the friend list (from mid-2014, §3.1), else 50.

use crate::emulator::deliver::escape;
use crate::emulator::http::{Reply, Req};
use crate::emulator::routes::common::session_of_s;
use crate::emulator::routes::get_user_friends2::check_hash;
use crate::emulator::state::{Shared, read};
use crate::webqq::api::get_group_name_list_mask2::{GroupEntry, GroupList};

/// Answers the list.
pub(crate) fn handle(shared: &Shared, req: &Req) -> Reply {
    let session = match session_of_s(shared, req) {
        Ok(s) => s,
        Err(reply) => return reply,
    };
    if let Some(refused) = check_hash(shared, req, &session) {
        return refused;
    }
    let groups: Vec<_> = read(&shared.world)
        .groups_of(session.account)
        .map(|g| (g.number, escape(&g.name)))
        .collect();
    let mut st = session.lock();
    let list = GroupList {
        gmasklist: Vec::new(),
        gnamelist: groups
            .into_iter()
            .map(|(number, name)| GroupEntry {
                flag: 1_090_519_041,
                name,
                gid: st.uins.gid(number),
                code: st.uins.code(number),
            })
            .collect(),
        gmarklist: Vec::new(),
    };
    drop(st);
    Reply::ok(serde_json::to_value(list).unwrap_or_default())
}
