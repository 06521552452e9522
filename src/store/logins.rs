//! QQ accounts logged in from Matrix with the bot (`bot_logins`, version 6): who owns which QQ
//! number and how it logged in, so a restart starts them again beside the config's accounts.
//! Never a password: the stored session is what restores them.

use super::StoreError;
use super::backend::Row;
use super::conn::{Conn, now, to_i64};

/// One account logged in from Matrix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BotLogin {
    /// The account id (`mx-<qq>`).
    pub account_id: String,
    /// Its QQ number (unique: one owner per number).
    pub qq: u64,
    /// The Matrix user who logged it in.
    pub owner: String,
    /// `qr` or `password`.
    pub method: String,
    /// When it first logged in (Unix seconds); set by the store.
    pub created_at: i64,
}

impl Conn {
    /// Remembers `login` (its `created_at` is now); `false` when its QQ number is already
    /// remembered for another owner, `true` when saved (or already saved for the same owner).
    pub fn add_bot_login(&mut self, login: &BotLogin) -> Result<bool, StoreError> {
        self.transaction(|conn| {
            if let Some(existing) = conn.bot_login_of_qq(login.qq)? {
                return Ok(existing.owner == login.owner);
            }
            conn.exec(
                "save bot login",
                "INSERT INTO bot_logins (account_id, qq, owner, method, created_at)
                 VALUES ($1, $2, $3, $4, $5)",
                &[
                    login.account_id.as_str().into(),
                    to_i64(login.qq).into(),
                    login.owner.as_str().into(),
                    login.method.as_str().into(),
                    now().into(),
                ],
            )?;
            Ok(true)
        })
    }

    /// The login of QQ number `qq`, if one was made from Matrix.
    pub fn bot_login_of_qq(&mut self, qq: u64) -> Result<Option<BotLogin>, StoreError> {
        let row = self.one(
            "bot_logins",
            "read bot login",
            "SELECT account_id, qq, owner, method, created_at FROM bot_logins WHERE qq = $1",
            &[to_i64(qq).into()],
        )?;
        row.as_ref().map(login_from).transpose()
    }

    /// Every login made from Matrix, by account id.
    pub fn bot_logins(&mut self) -> Result<Vec<BotLogin>, StoreError> {
        let rows = self.rows(
            "bot_logins",
            "read bot logins",
            "SELECT account_id, qq, owner, method, created_at FROM bot_logins ORDER BY account_id",
            &[],
        )?;
        rows.iter().map(login_from).collect()
    }

    /// Forgets the login of `account_id` (`logout`); `true` if it was there.
    pub fn delete_bot_login(&mut self, account_id: &str) -> Result<bool, StoreError> {
        let n = self.exec(
            "forget bot login",
            "DELETE FROM bot_logins WHERE account_id = $1",
            &[account_id.into()],
        )?;
        Ok(n > 0)
    }
}

fn login_from(row: &Row) -> Result<BotLogin, StoreError> {
    Ok(BotLogin {
        account_id: row.text(0)?,
        qq: row.uint(1)?,
        owner: row.text(2)?,
        method: row.text(3)?,
        created_at: row.int(4)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    fn login(qq: u64, owner: &str) -> BotLogin {
        BotLogin {
            account_id: format!("mx-{qq}"),
            qq,
            owner: owner.into(),
            method: "qr".into(),
            created_at: 0,
        }
    }

    #[test]
    fn test_one_owner_per_qq_number() {
        let store = Store::open_in_memory().unwrap();
        let saved = store.blocking_call(|c| c.add_bot_login(&login(10001, "@a:x"))).unwrap();
        assert!(saved);
        let again = store.blocking_call(|c| c.add_bot_login(&login(10001, "@a:x"))).unwrap();
        assert!(again, "the same owner again is fine");
        let stolen = store.blocking_call(|c| c.add_bot_login(&login(10001, "@b:x"))).unwrap();
        assert!(!stolen, "another owner is refused");
        store.blocking_call(|c| c.add_bot_login(&login(10002, "@b:x"))).unwrap();
        let all = store.blocking_call(|c| c.bot_logins()).unwrap();
        let owners: Vec<_> = all.iter().map(|l| (l.qq, l.owner.as_str())).collect();
        assert_eq!(owners, [(10001, "@a:x"), (10002, "@b:x")]);
        assert!(all.iter().all(|l| l.created_at > 0));
        assert!(store.blocking_call(|c| c.delete_bot_login("mx-10001")).unwrap());
        assert!(!store.blocking_call(|c| c.delete_bot_login("mx-10001")).unwrap());
        assert_eq!(store.blocking_call(|c| c.bot_login_of_qq(10001)).unwrap(), None);
    }
}
