//! `GET http://s.web2.qq.com/api/get_group_info_ext2`: a group and its members.
//!
//! Protocol §2.8. `gcode` must be the group's code in this session: a gid (or anything else)
//! answers retcode 6. `ginfo.members` and `minfo` list members in the same order (pandolia zips
//! them); `cards` is absent when nobody has one.

use crate::emulator::deliver::escape;
use crate::emulator::http::{Reply, Req};
use crate::emulator::routes::common::session_of_s;
use crate::emulator::session::Liveness;
use crate::emulator::state::{Shared, read};
use crate::webqq::GroupCode;
use crate::webqq::api::get_group_info_ext2::{
    GroupDetails, GroupInfo, MemberCard, MemberFlag, MemberInfo, MemberStat, VipEntry,
};

/// Answers the group.
pub(crate) fn handle(shared: &Shared, req: &Req) -> Reply {
    let session = match session_of_s(shared, req) {
        Ok(s) => s,
        Err(reply) => return reply,
    };
    let code = req.param("gcode").and_then(|c| c.trim().parse::<u64>().ok()).map(GroupCode::new);
    let Some(number) = code.and_then(|c| session.lock().uins.group_by_code(c)) else {
        return Reply::retcode(6);
    };
    let (group, members) = {
        let world = read(&shared.world);
        let Some(group) =
            world.group(number).filter(|g| g.members.contains(&session.account)).cloned()
        else {
            return Reply::retcode(6);
        };
        let members: Vec<_> = group
            .members
            .iter()
            .map(|m| {
                let p = world.person(*m);
                (
                    *m,
                    escape(&world.nick(*m)),
                    p.map_or_else(|| "unknown".to_owned(), |p| p.gender.clone()),
                )
            })
            .collect();
        (group, members)
    };
    let online: Vec<bool> = {
        let sessions = read(&shared.sessions);
        members
            .iter()
            .map(|(m, _, _)| {
                sessions.of_account(*m).is_some_and(|s| s.lock().liveness == Liveness::Alive)
            })
            .collect()
    };
    let mut st = session.lock();
    let gid = st.uins.gid(number);
    let code = st.uins.code(number);
    let owner = st.uins.uin(group.owner);
    let mut details = GroupDetails {
        stats: Vec::new(),
        minfo: Vec::new(),
        ginfo: GroupInfo {
            face: 0,
            memo: escape(&group.memo),
            class: 10048,
            fingermemo: String::new(),
            code,
            createtime: 1_388_307_595,
            flag: 1_090_519_041,
            level: 0,
            name: escape(&group.name),
            gid,
            owner,
            members: Vec::new(),
            option: 1,
        },
        cards: None,
        vipinfo: Vec::new(),
    };
    let mut cards = Vec::new();
    for ((qq, nick, gender), on) in members.into_iter().zip(online) {
        let uin = st.uins.uin(qq);
        details
            .ginfo
            .members
            .push(MemberFlag { muin: uin, mflag: if qq == group.owner { 21 } else { 20 } });
        details.minfo.push(MemberInfo {
            nick,
            province: String::new(),
            gender,
            uin,
            country: "中国".to_owned(),
            city: String::new(),
        });
        if on {
            details.stats.push(MemberStat { client_type: 41, uin, stat: 10 });
        }
        details.vipinfo.push(VipEntry { vip_level: 0, u: uin, is_vip: 0 });
        if let Some(card) = group.cards.get(&qq) {
            cards.push(MemberCard { muin: uin, card: escape(card) });
        }
    }
    drop(st);
    if !cards.is_empty() {
        details.cards = Some(cards);
    }
    Reply::ok(serde_json::to_value(details).unwrap_or_default())
}
