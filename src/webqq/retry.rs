//! [`retried`]: one WebQQ call made again while it fails transiently, for the calls whose one
//! lost answer would cost more than a short wait (the contact lists, id lookups, the warm-up).

use std::time::Duration;

use crate::webqq::Error;

/// Attempts [`retried`] makes at one call.
pub const CALL_ATTEMPTS: u32 = 5;
/// Wait after the first transient failure of a call; doubled after each (0.25 + 0.5 + 1 + 2 s).
const CALL_RETRY_FIRST: Duration = Duration::from_millis(250);

/// Makes `call` up to [`CALL_ATTEMPTS`] times while it fails transiently (network, 5xx,
/// undecodable body: protocol §6), answering the first success or the last error. One lost answer
/// would otherwise cost a whole session something: a group's number (every message of the group
/// unbridgeable), or the session itself (a relink whose warm-up failed is redone with the
/// psessionid login2 just replaced, and QQ drops what it queued there).
pub async fn retried<T, F, Fut>(mut call: F) -> Result<T, Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Error>>,
{
    let mut delay = CALL_RETRY_FIRST;
    let mut attempt = 1;
    loop {
        match call().await {
            Err(error) if error.is_transient() && attempt < CALL_ATTEMPTS => {
                tokio::time::sleep(delay).await;
                delay = delay.saturating_mul(2);
                attempt += 1;
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A transient error (a 502) or a fatal one (a 403).
    fn failure(status: u16) -> Error {
        Error::HttpStatus { endpoint: "/channel/get_friend_uin2", status }
    }

    #[tokio::test(start_paused = true)]
    async fn test_retried_outlasts_transient_failures_only() {
        // (failures before success, their status, calls made, succeeded)
        let cases = [
            (0, 502, 1, true),
            (2, 502, 3, true),
            (4, 500, 5, true),
            (5, 502, 5, false),
            (1, 403, 1, false),
        ];
        for (failures, status, want_calls, want_ok) in cases {
            let calls = std::cell::Cell::new(0u32);
            let answer = retried(|| {
                calls.set(calls.get() + 1);
                let n = calls.get();
                async move { if n <= failures { Err(failure(status)) } else { Ok(n) } }
            })
            .await;
            assert_eq!(calls.get(), want_calls, "{failures} x {status}");
            assert_eq!(answer.is_ok(), want_ok, "{failures} x {status}");
        }
    }
}
