//! Opening a session's surroundings through passing faults: a stored session that could not be
//! relinked is tried again rather than replaced by a full login, and the contact lists of a new
//! session are loaded again when a fault cut the loading short.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

use crate::account::login_actor::LoginError;
use crate::webqq::Error;
use crate::webqq::api::Endpoint as _;
use crate::webqq::api::login2::Login2;
use crate::webqq::client::WebQqClient;
use crate::webqq::directory::Directory;

/// Attempts at relinking the stored session while it fails transiently, before a full login.
const RESTORE_ATTEMPTS: u32 = 5;
/// Wait after the first transient failure of a restore; doubled after each (0.5 + 1 + 2 + 4 s).
const RESTORE_RETRY_FIRST: Duration = Duration::from_millis(500);

/// Whether a restore that failed with `error` on attempt `attempt` (from 1) is tried again with
/// the same stored session, and after how long. Only a transient failure is (network, 5xx:
/// protocol §6): a full login instead opens a new session, and whatever QQ queued in the old one
/// while the bridge was down (a crash, a restart) is never polled (RELIABILITY.md §1.7).
/// Not when login2 itself lost its answer (network, cut body): QQ may have relinked already,
/// replacing the stored psessionid, and a second relink with it would open a new session as
/// surely as a full login does (protocol §1.4; the chaos run saw such accounts stop receiving).
pub(super) fn restore_again(error: &LoginError, attempt: u32) -> Option<Duration> {
    let transient = matches!(error, LoginError::Webqq(e) if e.is_transient());
    let maybe_relinked = matches!(
        error,
        LoginError::Webqq(Error::Network { endpoint, .. } | Error::Decode { endpoint, .. })
            if *endpoint == Login2::NAME
    );
    (transient && !maybe_relinked && attempt < RESTORE_ATTEMPTS)
        .then(|| RESTORE_RETRY_FIRST.saturating_mul(1 << (attempt.saturating_sub(1)).min(16)))
}

/// Attempts at loading the contact lists of a new session before giving up on them.
const DIRECTORY_ATTEMPTS: u32 = 5;
/// Wait after the first failed attempt; doubled after each (1 + 2 + 4 + 8 s in all).
const DIRECTORY_RETRY_FIRST: Duration = Duration::from_secs(1);

/// Loads the contact lists of `client`'s session for `account`, taking a `permits` permit for
/// each attempt, and tries again (up to [`DIRECTORY_ATTEMPTS`]) while the loading fails
/// transiently.
pub(super) async fn load_directory(
    client: Arc<WebQqClient>,
    permits: Arc<Semaphore>,
    account: String,
) -> Result<Directory, Error> {
    let mut delay = DIRECTORY_RETRY_FIRST;
    let mut attempt = 1;
    loop {
        // The contact lists (3 calls plus one per friend and group) take turns with
        // logins and restores on the same permits, behind them: when 1,000 accounts
        // restart, every session opens first instead of all sharing the CPU with ~5,000
        // list calls. The permit is not held while waiting to try again.
        let permit = permits.clone().acquire_owned().await.ok();
        let loaded = Directory::load(&client).await;
        drop(permit);
        match loaded {
            // Without the lists every message of a group is unbridgeable and every send
            // fails, for the whole session: a passing fault is worth waiting out.
            Err(error) if error.is_transient() && attempt < DIRECTORY_ATTEMPTS => {
                tracing::info!(%account, %error, attempt, "contact lists not loaded; trying again");
                tokio::time::sleep(delay).await;
                delay = delay.saturating_mul(2);
                attempt += 1;
            }
            other => break other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webqq::Error;
    use crate::webqq::retcode::Retcode;

    #[test]
    fn test_only_transient_restore_failures_keep_the_stored_session() {
        let status =
            |status| LoginError::Webqq(Error::HttpStatus { endpoint: "/channel/login2", status });
        let retcode = |code| {
            LoginError::Webqq(Error::Retcode {
                endpoint: "/channel/login2",
                retcode: Retcode(code),
                new_ptwebqq: None,
            })
        };
        let ms = Duration::from_millis;
        // (error, attempt, tried again after)
        let cases = [
            // The chaos run: a fault on login2 sent the account to a full login, and the
            // messages QQ held for the old session were never polled.
            (status(502), 1, Some(ms(500))),
            (status(500), 2, Some(ms(1000))),
            (status(502), 4, Some(ms(4000))),
            (status(502), 5, None),
            // login2's answer was lost: QQ may have relinked already; a full login at once.
            (
                LoginError::Webqq(Error::Decode { endpoint: "login2", reason: "cut".into() }),
                1,
                None,
            ),
            (
                LoginError::Webqq(Error::Decode {
                    endpoint: "get_online_buddies2",
                    reason: "cut".into(),
                }),
                1,
                Some(ms(500)),
            ),
            // The session is gone for good: a full login at once.
            (retcode(103), 1, None),
            (status(403), 1, None),
            (LoginError::QrExpired, 1, None),
        ];
        for (error, attempt, want) in cases {
            assert_eq!(restore_again(&error, attempt), want, "{error} on attempt {attempt}");
        }
    }
}
