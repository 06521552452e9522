//! `POST http://d(1).web2.qq.com/channel/get_recent_list2`: recent conversations.
//!
//! Protocol §2.12. Built from the account's sent log, newest first: type 0 buddy uin, 1 group
//! gid (Mojo's reading of the conflict in §9.11), 2 discussion did.

use serde_json::{Value, json};

use crate::emulator::http::{Reply, Req};
use crate::emulator::routes::common::{check_d, session_of_r};
use crate::emulator::session::lock;
use crate::emulator::state::Shared;
use crate::webqq::{GroupNumber, QqNumber};

/// Recent entries listed at most.
const MAX_RECENT: usize = 20;

/// Answers the list.
pub(crate) fn handle(shared: &Shared, req: &Req) -> Reply {
    if let Some(refused) = check_d(shared, req) {
        return refused;
    }
    let Some(r) = req.r() else { return Reply::retcode(103) };
    let Ok(session) = session_of_r(shared, req, &r) else { return Reply::retcode(103) };
    let sent: Vec<(&'static str, u64)> = lock(&shared.sent)
        .get(&session.account)
        .map(|log| log.iter().rev().map(|m| (m.kind, m.target)).collect())
        .unwrap_or_default();
    let mut seen = Vec::new();
    let mut st = session.lock();
    for (kind, target) in sent {
        if seen.len() >= MAX_RECENT || seen.contains(&(kind, target)) {
            continue;
        }
        seen.push((kind, target));
    }
    let list: Vec<Value> = seen
        .into_iter()
        .filter_map(|(kind, target)| match kind {
            "friend" => Some(json!({"uin": st.uins.uin(QqNumber::new(target)), "type": 0})),
            "group" => Some(json!({"uin": st.uins.gid(GroupNumber::new(target)), "type": 1})),
            "discussion" => Some(json!({"uin": target, "type": 2})),
            _ => None,
        })
        .collect();
    Reply::ok(Value::Array(list))
}
