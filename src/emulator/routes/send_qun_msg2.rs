//! `POST http://d(1).web2.qq.com/channel/send_qun_msg2`: a message to a group.
//!
//! Protocol §2.4. `group_uin` is the gid of the sender's session; the sender must be a member.
//! Unknown gid or non-member: 1202. `group_code`, `key`, `sig` (pictures) are accepted unchecked.

use crate::emulator::deliver::Target;
use crate::emulator::http::{Reply, Req};
use crate::emulator::routes::send::{finish, parse, refused};
use crate::emulator::state::{Shared, read};
use crate::webqq::api::send_qun_msg2::SendQunMsg2;

/// Answers the send.
pub(crate) fn handle(shared: &Shared, req: &Req) -> Reply {
    let incoming = match parse::<SendQunMsg2>(shared, req, |r| &r.common) {
        Ok(i) => i,
        Err(reply) => return reply,
    };
    let Some(number) = incoming.session.lock().uins.group_by_gid(incoming.r.group_uin) else {
        return refused();
    };
    let member = read(&shared.world)
        .group(number)
        .is_some_and(|g| g.members.contains(&incoming.session.account));
    if !member {
        return refused();
    }
    finish(
        shared,
        &incoming.session,
        "group",
        Target::Group(number),
        number.get(),
        &incoming.r.common,
        &incoming.content,
    )
}
