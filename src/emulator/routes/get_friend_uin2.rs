//! `GET http://s.web2.qq.com/api/get_friend_uin2`: uin or gid -> real number (protocol §2.10).
//!
//! `type=1` a person's uin, `type=4` a group's gid (answers the group number). Ids this
//! session never handed out answer 100001 (design choice). The real endpoint closed in 2017-04;
//! the emulator keeps it open.

use crate::emulator::http::{Reply, Req};
use crate::emulator::routes::common::session_of_s;
use crate::emulator::state::Shared;
use crate::webqq::api::get_friend_uin2::FriendUin;
use crate::webqq::{Gid, Uin};

/// Answers the lookup.
pub(crate) fn handle(shared: &Shared, req: &Req) -> Reply {
    let session = match session_of_s(shared, req) {
        Ok(s) => s,
        Err(reply) => return reply,
    };
    let Some(tuin) = req.param("tuin").and_then(|t| t.trim().parse::<u64>().ok()) else {
        return Reply::retcode(100_001);
    };
    let kind = req.param("type").unwrap_or("1");
    let account = {
        let st = session.lock();
        if kind.trim() == "4" {
            st.uins.group_by_gid(Gid::new(tuin)).map(|g| g.get())
        } else {
            st.uins.qq(Uin::new(tuin)).map(|q| q.get())
        }
    };
    match account {
        Some(account) => Reply::ok(
            serde_json::to_value(FriendUin { uiuin: String::new(), account, uin: tuin })
                .unwrap_or_default(),
        ),
        None => Reply::retcode(100_001),
    }
}
