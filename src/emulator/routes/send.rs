//! What the four `send_*_msg2` handlers share (protocol §2.4, §5.3, §6.1).
//!
//! `content` must be a JSON array (else 1202, a design choice: the real answer to a malformed
//! content is not known) and is decoded with the shared content type. A send goes to the sender's
//! sent log and to every online emulated recipient. Over the rate limit the answer is 1202 but
//! the message is still delivered ("often the message *was* delivered", §6.1).

use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};
use tokio::time::Instant;

use crate::emulator::deliver::{Target, deliver_message, unix_now};
use crate::emulator::http::{Reply, Req};
use crate::emulator::options::SendReplyForm;
use crate::emulator::routes::common::{check_d, session_of_r};
use crate::emulator::session::Session;
use crate::emulator::state::{SentMessage, Shared};
use crate::webqq::api::send::SendCommon;
use crate::webqq::content::Content;

/// The answer to a malformed or undeliverable send.
pub(crate) fn refused() -> Reply {
    Reply::retcode(1202)
}

/// A parsed send request: the session, the typed `r`, and the decoded content.
pub(crate) struct Incoming<T> {
    pub session: Arc<Session>,
    pub r: T,
    pub content: Content,
}

/// Checks headers and session, decodes `r` into `T` and its content. `Err` is the answer.
pub(crate) fn parse<T: DeserializeOwned>(
    shared: &Shared,
    req: &Req,
    common: impl Fn(&T) -> &SendCommon,
) -> Result<Incoming<T>, Reply> {
    if let Some(refused) = check_d(shared, req) {
        return Err(refused);
    }
    let r: Map<String, Value> = req.r().ok_or_else(|| Reply::retcode(103))?;
    let session = session_of_r(shared, req, &r).map_err(|_| Reply::retcode(103))?;
    let typed: T = serde_json::from_value(Value::Object(r)).map_err(|_| refused())?;
    let content = Content::decode_sent(&common(&typed).content).map_err(|_| refused())?;
    Ok(Incoming { session, r: typed, content })
}

/// Takes one send token; false when over the limit.
fn take_token(shared: &Shared, session: &Session) -> bool {
    let options = shared.options();
    if options.send_rate_per_sec <= 0.0 {
        return true;
    }
    let mut st = session.lock();
    let now = Instant::now();
    let elapsed = now.saturating_duration_since(st.tokens_at).as_secs_f64();
    st.tokens_at = now;
    st.send_tokens =
        (st.send_tokens + elapsed * options.send_rate_per_sec).min(f64::from(options.send_burst));
    if st.send_tokens >= 1.0 {
        st.send_tokens -= 1.0;
        true
    } else {
        false
    }
}

/// Logs, delivers and answers a send to a resolved target.
pub(crate) fn finish(
    shared: &Shared,
    session: &Session,
    kind: &'static str,
    target: Target,
    stable_target: u64,
    common: &SendCommon,
    content: &Content,
) -> Reply {
    let time = unix_now();
    shared.log_sent(
        session.account,
        SentMessage {
            kind,
            target: stable_target,
            text: content.plain_text(),
            content: common.content.clone(),
            msg_id: common.msg_id,
            time,
        },
    );
    let options = shared.options();
    let within_limit = take_token(shared, session);
    let delivered =
        deliver_message(shared, session.account, target, content, time, options.self_echo);
    let text = content.plain_text();
    let excerpt = &text[..text.floor_char_boundary(60)];
    tracing::debug!(account = %session.account, kind, target = stable_target, excerpt, delivered = delivered.len(), "message sent");
    if !within_limit {
        return refused();
    }
    match options.send_reply_form {
        SendReplyForm::Retcode => Reply::json(&json!({"retcode": 0, "result": "ok"})),
        SendReplyForm::ErrCode => Reply::json(&json!({"errCode": 0, "msg": "send ok"})),
    }
}
