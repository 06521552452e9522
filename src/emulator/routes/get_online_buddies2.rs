//! `GET http://d(1).web2.qq.com/channel/get_online_buddies2`: which friends are online.
//!
//! Protocol §2.11. Also the post-login warm-up: it registers the session so the first poll2 does
//! not answer 103 (§1.3.6). Friends that are online emulated accounts are listed (client_type 41,
//! WebQQ); other persons are offline.

use serde_json::Value;

use crate::emulator::http::{Reply, Req};
use crate::emulator::routes::common::{check_d, session_of_query};
use crate::emulator::session::Liveness;
use crate::emulator::state::{Shared, read};
use crate::webqq::api::get_online_buddies2::OnlineBuddy;

/// Answers the list.
pub(crate) fn handle(shared: &Shared, req: &Req) -> Reply {
    if let Some(refused) = check_d(shared, req) {
        return refused;
    }
    let session = match session_of_query(shared, req) {
        Ok(s) => s,
        Err(reply) => return reply,
    };
    let friends: Vec<_> = read(&shared.world)
        .account(session.account)
        .map(|a| a.friends.iter().map(|f| f.qq).collect())
        .unwrap_or_default();
    let online: Vec<(crate::webqq::QqNumber, String)> = {
        let sessions = read(&shared.sessions);
        friends
            .into_iter()
            .filter_map(|qq| {
                let s = sessions.of_account(qq)?;
                let st = s.lock();
                (st.liveness == Liveness::Alive).then(|| (qq, st.status.clone()))
            })
            .collect()
    };
    let mut st = session.lock();
    st.warmed_up = true;
    let list: Vec<OnlineBuddy> = online
        .into_iter()
        .map(|(qq, status)| OnlineBuddy { uin: st.uins.uin(qq), status, client_type: 41 })
        .collect();
    Reply::ok(serde_json::to_value(list).unwrap_or(Value::Array(Vec::new())))
}
