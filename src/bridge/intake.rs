//! [`Intake`]: the bridge's side of the appservice server — transactions deduplicated in the
//! store, each event handled before the homeserver gets its 200, one bad event never failing the
//! transaction (MATRIX.md §2).

use std::sync::Arc;

use futures_util::FutureExt as _;
use futures_util::future::BoxFuture;
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
        let id = txn.txn_id.clone();
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
        let id = txn.txn_id.clone();
        processed.call(move |c| c.mark_txn_processed(&id)).await.map_err(store_error)?;
        Ok(Delivery::Processed)
    }
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
