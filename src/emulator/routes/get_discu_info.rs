//! `GET http://d(1).web2.qq.com/channel/get_discu_info`: a discussion's members.
//!
//! Protocol §2.9: `mem_list` carries each member's real QQ number (`ruin`). An unknown did or a
//! discussion the account is not in answers 100001 (design choice).

use crate::emulator::deliver::escape;
use crate::emulator::http::{Reply, Req};
use crate::emulator::routes::common::{check_d, session_of_query};
use crate::emulator::session::Liveness;
use crate::emulator::state::{Shared, read};
use crate::webqq::Did;
use crate::webqq::api::get_discu_info::{
    DiscuDetails, DiscuInfo, DiscuMember, DiscuMemberInfo, DiscuMemberStatus,
};

/// Answers the info.
pub(crate) fn handle(shared: &Shared, req: &Req) -> Reply {
    if let Some(refused) = check_d(shared, req) {
        return refused;
    }
    let session = match session_of_query(shared, req) {
        Ok(s) => s,
        Err(reply) => return reply,
    };
    let Some(did) = req.param("did").and_then(|d| d.trim().parse::<u64>().ok()).map(Did::new)
    else {
        return Reply::retcode(100_001);
    };
    let (discussion, nicks) = {
        let world = read(&shared.world);
        let Some(d) =
            world.discussion(did).filter(|d| d.members.contains(&session.account)).cloned()
        else {
            return Reply::retcode(100_001);
        };
        let nicks: Vec<String> = d.members.iter().map(|m| escape(&world.nick(*m))).collect();
        (d, nicks)
    };
    let online: Vec<bool> = {
        let sessions = read(&shared.sessions);
        discussion
            .members
            .iter()
            .map(|m| sessions.of_account(*m).is_some_and(|s| s.lock().liveness == Liveness::Alive))
            .collect()
    };
    let mut st = session.lock();
    let uins: Vec<_> = discussion.members.iter().map(|m| st.uins.uin(*m)).collect();
    let details = DiscuDetails {
        info: DiscuInfo {
            did,
            discu_owner: uins.first().copied(),
            discu_name: escape(&discussion.name),
            info_seq: u64::try_from(discussion.members.len()).unwrap_or(0),
            mem_list: discussion
                .members
                .iter()
                .zip(&uins)
                .map(|(qq, uin)| DiscuMember { mem_uin: *uin, ruin: *qq })
                .collect(),
        },
        mem_status: uins
            .iter()
            .zip(&online)
            .filter(|(_, on)| **on)
            .map(|(uin, _)| DiscuMemberStatus {
                uin: *uin,
                status: "online".to_owned(),
                client_type: 41,
            })
            .collect(),
        mem_info: uins
            .iter()
            .zip(nicks)
            .map(|(uin, nick)| DiscuMemberInfo { uin: *uin, nick })
            .collect(),
    };
    drop(st);
    Reply::ok(serde_json::to_value(details).unwrap_or_default())
}
