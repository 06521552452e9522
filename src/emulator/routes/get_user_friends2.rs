//! `POST http://s.web2.qq.com/api/get_user_friends2`: the friend list.
//!
//! Protocol §2.6, §3. The `hash` must be computed with the configured variant from the own uin
//! and either the current ptwebqq or the one the client gave login2 (often `""`), else 50.
//! Nicks and marknames are HTML-escaped (§5.6).

use crate::emulator::deliver::escape;
use crate::emulator::http::{Reply, Req};
use crate::emulator::options::HashChoice;
use crate::emulator::routes::common::{member_text, session_of_s};
use crate::emulator::session::Session;
use crate::emulator::state::{Shared, read};
use crate::webqq::api::get_user_friends2::{
    CategoryEntry, FriendEntry, FriendInfoEntry, FriendList, MarknameEntry, VipEntry,
};
use crate::webqq::hash::{HashVariant, friend_list_hash};

/// Checks the `hash` member of `r` (protocol §3); `Some(reply)` is the 50 refusal.
pub(crate) fn check_hash(shared: &Shared, req: &Req, session: &Session) -> Option<Reply> {
    let variant = match read(&shared.options).hash_variant {
        HashChoice::Unchecked => return None,
        HashChoice::Ecok => HashVariant::Ecok,
        HashChoice::Pwerr => HashVariant::Pwerr,
        HashChoice::Qsort => HashVariant::Qsort,
        HashChoice::Walk => HashVariant::Walk,
    };
    let given = req.r().and_then(|r| member_text(&r, "hash")).unwrap_or_default();
    let (current, at_login2) = {
        let st = session.lock();
        (st.ptwebqq.clone(), st.login2_ptwebqq.clone())
    };
    let own = session.account.get();
    let ok = [current, at_login2]
        .iter()
        .any(|p| friend_list_hash(variant, own, p).eq_ignore_ascii_case(&given));
    (!ok).then(|| Reply::retcode(50))
}

/// Answers the list.
pub(crate) fn handle(shared: &Shared, req: &Req) -> Reply {
    let session = match session_of_s(shared, req) {
        Ok(s) => s,
        Err(reply) => return reply,
    };
    if let Some(refused) = check_hash(shared, req, &session) {
        return refused;
    }
    let (friends, categories) = {
        let world = read(&shared.world);
        let Some(account) = world.account(session.account) else { return Reply::retcode(103) };
        let friends: Vec<_> = account
            .friends
            .iter()
            .map(|f| {
                let person = world.person(f.qq);
                (f.clone(), person.map_or(0, |p| p.face), escape(&world.nick(f.qq)))
            })
            .collect();
        (friends, account.categories.clone())
    };
    let mut st = session.lock();
    let mut list = FriendList {
        friends: Vec::new(),
        marknames: Vec::new(),
        categories: categories
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let index = u32::try_from(i + 1).unwrap_or(u32::MAX);
                CategoryEntry { index, sort: index, name: escape(name) }
            })
            .collect(),
        vipinfo: Vec::new(),
        info: Vec::new(),
    };
    for (friend, face, nick) in friends {
        let uin = st.uins.uin(friend.qq);
        list.friends.push(FriendEntry { flag: 0, uin, categories: friend.category });
        if let Some(mark) = &friend.markname {
            list.marknames.push(MarknameEntry { uin, markname: escape(mark), kind: 0 });
        }
        list.vipinfo.push(VipEntry { vip_level: 0, u: uin, is_vip: 0 });
        list.info.push(FriendInfoEntry { face: u64::from(face), flag: 0, nick, uin });
    }
    drop(st);
    Reply::ok(serde_json::to_value(list).unwrap_or_default())
}
