//! `POST http://d(1).web2.qq.com/channel/send_buddy_msg2`: a message to a friend.
//!
//! Protocol §2.4. `to` is the friend's uin in the sender's session; an unknown uin answers 1202.

use crate::emulator::deliver::Target;
use crate::emulator::http::{Reply, Req};
use crate::emulator::routes::send::{finish, parse, refused};
use crate::emulator::state::Shared;
use crate::webqq::api::send_buddy_msg2::SendBuddyMsg2;

/// Answers the send.
pub(crate) fn handle(shared: &Shared, req: &Req) -> Reply {
    let incoming = match parse::<SendBuddyMsg2>(shared, req, |r| &r.common) {
        Ok(i) => i,
        Err(reply) => return reply,
    };
    let Some(to) = incoming.session.lock().uins.qq(incoming.r.to) else { return refused() };
    if to == incoming.session.account {
        return refused();
    }
    finish(
        shared,
        &incoming.session,
        "friend",
        Target::Friend(to),
        to.get(),
        &incoming.r.common,
        &incoming.content,
    )
}
