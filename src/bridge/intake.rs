//! [`Intake`]: the bridge's side of the appservice server — transactions deduplicated in the
//! store, each event handled before the homeserver gets its 200, one bad event never failing the
//! transaction (MATRIX.md §2).

use std::sync::Arc;

use futures_util::FutureExt as _;
use futures_util::future::BoxFuture;
use md5::{Digest as _, Md5};
use ruma::OwnedUserId;

use crate::bridge::portal::Bridge;
use crate::matrix::appservice::{AppserviceHandler, Delivery, PersistError, Transaction};
use crate::store::Store;

/// Plugs the bridge into `matrix::appservice::serve`.
#[derive(Clone)]
pub struct Intake {
    bridge: Arc<Bridge>,
    store: Store,
}

impl Intake {
    /// An intake handing events to `bridge`, remembering transactions in `store`.
    pub fn new(bridge: Arc<Bridge>, store: Store) -> Self {
        Intake { bridge, store }
    }

    async fn handle(self, txn: Transaction) -> Result<Delivery, PersistError> {
        let store_error = |e: crate::store::StoreError| PersistError(e.to_string());
        let processed = self.store.clone();
        let key = dedupe_key(&txn);
        let id = key.clone();
        if processed.call(move |c| c.is_txn_processed(&id)).await.map_err(store_error)? {
            return Ok(Delivery::Duplicate);
        }
        for event in &txn.events {
            if let Err(error) = self.bridge.matrix_event(event).await {
                // Counted and logged; the message map keeps a retry of this transaction from
                // sending anything twice.
                tracing::error!(txn = %txn.txn_id, %error, "Matrix event not bridged");
            }
        }
        for ephemeral in &txn.ephemeral {
            let value = serde_json::from_str(ephemeral.json().get()).unwrap_or_default();
            if let Err(error) = self.bridge.matrix_ephemeral(&value) {
                tracing::debug!(txn = %txn.txn_id, %error, "ephemeral event not bridged");
            }
        }
        processed.call(move |c| c.mark_txn_processed(&key)).await.map_err(store_error)?;
        Ok(Delivery::Processed)
    }
}

/// The key a transaction is remembered by in `processed_txns`: its txnId and a digest of its
/// events' ids. The txnId alone is not unique over time: Synapse on SQLite numbers transactions
/// from the highest one still unsent in its `application_services_txns` table, which it empties
/// as they are delivered, so after a restart it counts from 1 again and every new transaction
/// would be taken for a replay (the chaos run lost every owner message after a Synapse
/// restart). A true retry carries the same events (Synapse stores their ids with the txnId),
/// so it still matches; ephemeral data is not stored by Synapse and stays out of the digest.
fn dedupe_key(txn: &Transaction) -> String {
    let mut digest = Md5::new();
    for event in &txn.events {
        match event.get_field::<String>("event_id") {
            Ok(Some(id)) => digest.update(id.as_bytes()),
            // No usable id: the event's text stands for it (still the same on a retry).
            _ => digest.update(event.json().get().as_bytes()),
        }
        digest.update([0u8]);
    }
    format!("{}/{}", txn.txn_id, hex::encode(digest.finalize()))
}

impl AppserviceHandler for Intake {
    fn transaction(&self, txn: Transaction) -> BoxFuture<'static, Result<Delivery, PersistError>> {
        self.clone().handle(txn).boxed()
    }

    fn query_user(&self, user_id: OwnedUserId) -> BoxFuture<'static, bool> {
        // Ghosts are created when their QQ person first speaks, never on a homeserver query
        // for an arbitrary number (MATRIX.md §1).
        let _ = user_id;
        futures_util::future::ready(false).boxed()
    }

    fn bridge_state(&self) -> serde_json::Value {
        self.bridge.bridge_states_json()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ruma::serde::Raw;
    use serde_json::json;

    fn txn(id: &str, event_ids: &[&str]) -> Transaction {
        let events = event_ids
            .iter()
            .map(|e| {
                let event = json!({"type": "m.room.message", "event_id": e, "room_id": "!r:x",
                                   "sender": "@a:x", "content": {"body": "hi"}});
                Raw::from_json(serde_json::value::to_raw_value(&event).unwrap())
            })
            .collect();
        Transaction { txn_id: id.to_owned(), events, ephemeral: vec![] }
    }

    #[test]
    fn test_dedupe_key_tells_a_reused_txn_id_from_a_retry() {
        let first = dedupe_key(&txn("1", &["$a", "$b"]));
        // (transaction, same key as `first`)
        let cases = [
            (txn("1", &["$a", "$b"]), true),
            // Synapse after a restart: txnId 1 again, new events.
            (txn("1", &["$c"]), false),
            (txn("1", &["$b", "$a"]), false),
            (txn("1", &["$a"]), false),
            (txn("1", &[]), false),
            (txn("2", &["$a", "$b"]), false),
        ];
        for (other, same) in cases {
            assert_eq!(dedupe_key(&other) == first, same, "{other:?}");
        }
        assert!(first.starts_with("1/"), "{first}");
    }
}
