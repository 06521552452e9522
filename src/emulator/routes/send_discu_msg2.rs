//! `POST http://d(1).web2.qq.com/channel/send_discu_msg2`: a message to a discussion.
//!
//! Protocol §2.4. `did` (number or string); the sender must be a member, else 1202.

use crate::emulator::deliver::Target;
use crate::emulator::http::{Reply, Req};
use crate::emulator::routes::send::{finish, parse, refused};
use crate::emulator::state::{Shared, read};
use crate::webqq::api::send_discu_msg2::SendDiscuMsg2;

/// Answers the send.
pub(crate) fn handle(shared: &Shared, req: &Req) -> Reply {
    let incoming = match parse::<SendDiscuMsg2>(shared, req, |r| &r.common) {
        Ok(i) => i,
        Err(reply) => return reply,
    };
    let did = incoming.r.did;
    let member = read(&shared.world)
        .discussion(did)
        .is_some_and(|d| d.members.contains(&incoming.session.account));
    if !member {
        return refused();
    }
    finish(
        shared,
        &incoming.session,
        "discussion",
        Target::Discussion(did),
        did.get(),
        &incoming.r.common,
        &incoming.content,
    )
}
