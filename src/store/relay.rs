//! The relay account of each group portal (`portal_relays`, MATRIX.md §6.3): set, cleared and
//! read by portal key.

use super::StoreError;
use super::conn::{Conn, now, to_i64};
use super::handle::Store;

/// A portal's relay account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RelayRow {
    /// The portal ([`super::Portal::portal_key`]).
    pub portal_key: String,
    /// The configured account id that relays.
    pub account_id: String,
    /// That account's QQ number.
    pub qq: u64,
    /// The Matrix user who set it.
    pub set_by: String,
    /// When, in Unix seconds.
    pub set_at: u64,
}

impl Conn {
    /// Makes `account_id` (QQ `qq`) the relay of `portal_key`, replacing any previous one.
    pub fn set_relay(
        &mut self,
        portal_key: &str,
        account_id: &str,
        qq: u64,
        set_by: &str,
    ) -> Result<(), StoreError> {
        self.exec(
            "set relay",
            "INSERT INTO portal_relays (portal_key, account_id, qq, set_by, set_at)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (portal_key) DO UPDATE SET account_id = excluded.account_id,
                 qq = excluded.qq, set_by = excluded.set_by, set_at = excluded.set_at",
            &[portal_key.into(), account_id.into(), to_i64(qq).into(), set_by.into(), now().into()],
        )?;
        Ok(())
    }

    /// Clears the relay of `portal_key`; `true` if there was one.
    pub fn unset_relay(&mut self, portal_key: &str) -> Result<bool, StoreError> {
        let n = self.exec(
            "unset relay",
            "DELETE FROM portal_relays WHERE portal_key = $1",
            &[portal_key.into()],
        )?;
        Ok(n > 0)
    }

    /// The relay of `portal_key`; `None` when it has none.
    pub fn relay_of(&mut self, portal_key: &str) -> Result<Option<RelayRow>, StoreError> {
        let row = self.one(
            "portal_relays",
            "read relay",
            "SELECT portal_key, account_id, qq, set_by, set_at FROM portal_relays
             WHERE portal_key = $1",
            &[portal_key.into()],
        )?;
        row.map(|r| {
            Ok(RelayRow {
                portal_key: r.text(0)?,
                account_id: r.text(1)?,
                qq: r.uint(2)?,
                set_by: r.text(3)?,
                set_at: r.uint(4)?,
            })
        })
        .transpose()
    }
}

impl Store {
    /// [`Conn::relay_of`] on the store thread (blocks briefly).
    pub fn relay_of(&self, portal_key: &str) -> Result<Option<RelayRow>, StoreError> {
        let key = portal_key.to_owned();
        self.blocking_call(move |c| c.relay_of(&key))
    }
}

#[cfg(test)]
mod tests {
    use crate::store::Store;

    #[test]
    fn test_relay_set_replace_unset() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_sqlite(&dir.path().join("s.sqlite3")).unwrap();
        assert_eq!(store.relay_of("group:1").unwrap(), None);
        store.blocking_call(|c| c.set_relay("group:1", "me", 10001, "@a:x")).unwrap();
        store.blocking_call(|c| c.set_relay("group:1", "you", 10002, "@b:x")).unwrap();
        let row = store.relay_of("group:1").unwrap().unwrap();
        assert_eq!((row.account_id.as_str(), row.qq, row.set_by.as_str()), ("you", 10002, "@b:x"));
        assert_eq!(store.relay_of("group:2").unwrap(), None);
        assert!(store.blocking_call(|c| c.unset_relay("group:1")).unwrap());
        assert!(!store.blocking_call(|c| c.unset_relay("group:1")).unwrap());
        assert_eq!(store.relay_of("group:1").unwrap(), None);
    }
}
