//! [`BridgeActor`]: receives every account's resolved poll batches and hands each event to its
//! portal's lane ([`Lanes`]): one portal's events reach Matrix in the order QQ delivered them,
//! while other portals go on; a homeserver outage holds a lane (retrying) instead of dropping.

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;

use crate::account::poller_actor::QqEventsReceived;
use crate::account::resolve::QqEvent;
use crate::account::send_queue::ChatKey;
use crate::bridge::ids;
use crate::bridge::lanes::Lanes;
use crate::bridge::portal::{Bridge, BridgeError, QqOutcome};

/// Portal lanes running at once: bounds the requests in flight to the homeserver.
const LANES_AT_ONCE: usize = 64;
/// First wait before bridging an event again after a transient homeserver failure.
const RETRY_FIRST: Duration = Duration::from_secs(1);
/// Longest wait between attempts while the homeserver stays unreachable.
const RETRY_MAX: Duration = Duration::from_secs(60);

/// The QQ → Matrix side of the bridge.
pub struct BridgeActor {
    bridge: Arc<Bridge>,
    lanes: Lanes,
}

impl BridgeActor {
    /// An actor bridging through `bridge`.
    pub fn new(bridge: Arc<Bridge>) -> Self {
        BridgeActor { bridge, lanes: Lanes::new(LANES_AT_ONCE) }
    }
}

impl Actor for BridgeActor {
    type Context = Context<Self>;
}

impl Handler<QqEventsReceived> for BridgeActor {
    type Result = ();

    fn handle(&mut self, msg: QqEventsReceived, _: &mut Context<Self>) {
        tracing::debug!(account = %msg.account, events = msg.events.len(), resolved = msg.resolved.len(), "QQ batch");
        let account: Arc<str> = Arc::from(msg.account.as_str());
        for event in msg.resolved {
            let bridge = self.bridge.clone();
            let account = account.clone();
            let lane = lane_key(&account, &event);
            self.lanes.push(
                &lane,
                Box::pin(async move { bridge_until_done(&bridge, &account, &event).await }),
            );
        }
    }
}

/// The lane of an event: its portal, or the account's own lane for account-wide events.
fn lane_key(account: &str, event: &QqEvent) -> String {
    match event {
        QqEvent::Message(message) => ids::portal_key(account, &message.chat),
        QqEvent::Typing { from } => ids::portal_key(account, &ChatKey::Friend(*from)),
        QqEvent::Kicked { .. } | QqEvent::Unbridgeable { .. } => format!("{account}#account"),
    }
}

/// Bridges `event`, waiting and trying again while the failure is transient (homeserver down,
/// 5xx, rate limit after the client's own retries): the event is never dropped for an outage.
async fn bridge_until_done(bridge: &Bridge, account: &str, event: &QqEvent) {
    let mut delay = RETRY_FIRST;
    loop {
        match bridge_one(bridge, account, event).await {
            Ok(()) => return,
            Err(error) if error.is_transient() => {
                tracing::warn!(%account, %error, retry_in = ?delay, "QQ event waits for the homeserver");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(RETRY_MAX);
            }
            Err(error) => {
                tracing::error!(%account, %error, "QQ event not bridged");
                return;
            }
        }
    }
}

async fn bridge_one(bridge: &Bridge, account: &str, event: &QqEvent) -> Result<(), BridgeError> {
    match event {
        QqEvent::Message(message) => {
            if bridge.qq_message(account, message).await? == QqOutcome::Duplicate {
                tracing::debug!(%account, key = %message.key, "QQ message already bridged");
            }
        }
        QqEvent::Unbridgeable { poll_type, reason } => {
            tracing::warn!(%account, %poll_type, %reason, "QQ event not bridged");
        }
        QqEvent::Kicked { reason } => tracing::warn!(%account, %reason, "kicked by QQ"),
        QqEvent::Typing { from } => {
            // Typing is momentary: shown late it would be wrong, so it is never retried.
            if let Err(error) = bridge.qq_typing(account, *from).await {
                tracing::debug!(%account, %error, "typing not shown");
            }
        }
    }
    Ok(())
}
