//! [`BridgeActor`]: receives every account's resolved poll batches and bridges them one batch at
//! a time, so messages reach Matrix in the order QQ delivered them.

use std::sync::Arc;

use actix::prelude::*;

use crate::account::poller_actor::QqEventsReceived;
use crate::account::resolve::QqEvent;
use crate::bridge::portal::{Bridge, QqOutcome};

/// The QQ → Matrix side of the bridge.
pub struct BridgeActor {
    bridge: Arc<Bridge>,
}

impl BridgeActor {
    /// An actor bridging through `bridge`.
    pub fn new(bridge: Arc<Bridge>) -> Self {
        BridgeActor { bridge }
    }
}

impl Actor for BridgeActor {
    type Context = Context<Self>;
}

impl Handler<QqEventsReceived> for BridgeActor {
    type Result = ();

    fn handle(&mut self, msg: QqEventsReceived, ctx: &mut Context<Self>) {
        tracing::debug!(account = %msg.account, events = msg.events.len(), resolved = msg.resolved.len(), "QQ batch");
        let bridge = self.bridge.clone();
        // `wait`: the next batch starts only when this one is on Matrix (order, RELIABILITY.md
        // §1.3); the client's retries bound how long one message can hold the line.
        ctx.wait(
            async move {
                for event in &msg.resolved {
                    bridge_one(&bridge, &msg.account, event).await;
                }
            }
            .into_actor(self),
        );
    }
}

async fn bridge_one(bridge: &Bridge, account: &str, event: &QqEvent) {
    match event {
        QqEvent::Message(message) => match bridge.qq_message(account, message).await {
            Ok(QqOutcome::Bridged) => {}
            Ok(QqOutcome::Duplicate) => {
                tracing::debug!(%account, key = %message.key, "QQ message already bridged");
            }
            Err(error) => {
                tracing::error!(%account, key = %message.key, %error, "QQ message not bridged");
            }
        },
        QqEvent::Unbridgeable { poll_type, reason } => {
            tracing::warn!(%account, %poll_type, %reason, "QQ event not bridged");
            bridge.qq_unbridgeable(account, poll_type, reason).await;
        }
        QqEvent::Kicked { reason } => {
            tracing::warn!(%account, %reason, "kicked by QQ");
            bridge.qq_kicked(account, reason).await;
        }
        QqEvent::AccountState { state, reason } => {
            bridge.qq_account_state(account, *state, reason.as_deref()).await;
        }
        QqEvent::MemberJoined(change) => {
            if let Err(error) = bridge.qq_member_joined(account, change).await {
                tracing::warn!(%account, group = %change.group, member = %change.member, %error, "join not bridged");
            }
        }
        QqEvent::MemberLeft(change) => {
            if let Err(error) = bridge.qq_member_left(account, change).await {
                tracing::warn!(%account, group = %change.group, member = %change.member, %error, "leave not bridged");
            }
        }
        QqEvent::Presence { friend, status } => {
            if let Err(error) = bridge.qq_presence(*friend, status).await {
                tracing::debug!(%account, %friend, %error, "presence not set");
            }
        }
        QqEvent::Typing { from } => {
            if let Err(error) = bridge.qq_typing(account, *from).await {
                tracing::debug!(%account, %error, "typing not shown");
            }
        }
    }
}
