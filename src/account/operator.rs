//! The operator's console: answers typed on the standard input of `qqbridge run` for logins
//! that need a person (a captcha), until the Matrix bot does it.

use crate::account::manager::{AccountManager, AnswerCaptcha};

/// Reads the operator's answers on standard input, one per line: `captcha <account> <text>`
/// for an account in WAITING_FOR_CAPTCHA (its image is written beside the store). Ends quietly
/// at end of input (a bridge run as a service has none).
pub async fn read_operator_input(manager: actix::Addr<AccountManager>) {
    use tokio::io::AsyncBufReadExt as _;
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let mut words = line.split_whitespace();
        match (words.next(), words.next(), words.next(), words.next()) {
            (Some("captcha"), Some(account), Some(text), None) => {
                let answer = AnswerCaptcha { account: account.to_owned(), text: text.to_owned() };
                match manager.send(answer).await {
                    Ok(true) => tracing::info!(%account, "captcha answer handed to the login"),
                    Ok(false) | Err(_) => {
                        tracing::warn!(%account, "no captcha is waiting for that account")
                    }
                }
            }
            (None, ..) => {}
            _ => tracing::warn!("unknown input; expected `captcha <account> <text>`"),
        }
    }
}
