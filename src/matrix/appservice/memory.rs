//! [`MemoryHandler`]: an in-memory [`AppserviceHandler`] that records transactions and dedupes by
//! txnId, for tests and the demo (nothing survives a restart).

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};

use futures_util::FutureExt as _;
use futures_util::future::BoxFuture;
use ruma::OwnedUserId;

use super::{AppserviceHandler, Delivery, PersistError, Transaction};

/// Records every new transaction in arrival order, answers duplicates without recording them
/// again, knows a set of users, and can be told to fail the next transactions (to test the 500
/// path). Cheap to clone; clones share state.
#[derive(Clone, Debug, Default)]
pub struct MemoryHandler {
    inner: Arc<Mutex<MemoryInner>>,
}

#[derive(Debug, Default)]
struct MemoryInner {
    seen: HashSet<String>,
    transactions: Vec<Transaction>,
    users: HashSet<OwnedUserId>,
    fail_next: u32,
    user_queries: Vec<OwnedUserId>,
}

impl MemoryHandler {
    /// An empty handler that knows no users.
    pub fn new() -> MemoryHandler {
        MemoryHandler::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, MemoryInner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Makes `query_user` answer `true` for `user_id`.
    pub fn add_user(&self, user_id: OwnedUserId) {
        self.lock().users.insert(user_id);
    }

    /// The next `n` transactions fail with [`PersistError`] (and are not marked seen).
    pub fn fail_next(&self, n: u32) {
        self.lock().fail_next = n;
    }

    /// Every transaction processed so far, in order (duplicates excluded).
    pub fn transactions(&self) -> Vec<Transaction> {
        self.lock().transactions.clone()
    }

    /// Every user the homeserver asked about, in order.
    pub fn user_queries(&self) -> Vec<OwnedUserId> {
        self.lock().user_queries.clone()
    }
}

impl AppserviceHandler for MemoryHandler {
    fn transaction(&self, txn: Transaction) -> BoxFuture<'static, Result<Delivery, PersistError>> {
        let mut inner = self.lock();
        let result = if inner.fail_next > 0 {
            inner.fail_next -= 1;
            Err(PersistError("memory handler told to fail".to_owned()))
        } else if inner.seen.insert(txn.txn_id.clone()) {
            inner.transactions.push(txn);
            Ok(Delivery::Processed)
        } else {
            Ok(Delivery::Duplicate)
        };
        futures_util::future::ready(result).boxed()
    }

    fn query_user(&self, user_id: OwnedUserId) -> BoxFuture<'static, bool> {
        let mut inner = self.lock();
        let known = inner.users.contains(&user_id);
        inner.user_queries.push(user_id);
        futures_util::future::ready(known).boxed()
    }
}
