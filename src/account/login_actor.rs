//! [`LoginActor`]: performs logins, restores and relinks, one at a time, for its account.
//!
//! A thin shell over `webqq::login`. Each request is a message answered with the outcome; the
//! actor holds no session state itself, so a restart loses nothing. Requests are handled one at a
//! time (`AtomicResponse`): two logins of one account must never race (a second login kicks the
//! first, protocol §7.11).

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;

use crate::webqq::api::ptqrlogin::QrState;
use crate::webqq::client::{ClientConfig, WebQqClient};
use crate::webqq::login::{PasswordLogin, PasswordStart, QrLogin, relink};
use crate::webqq::session::Session;
use crate::webqq::{Error, QqNumber, Secret};

/// QR codes fetched before giving up (Mojo-Webqq stopped at 10).
pub const MAX_QR_CODES: u32 = 10;
/// How often the QR scan state is asked (protocol §1.3.3: clients used 1–3 s).
pub const QR_POLL_INTERVAL: Duration = Duration::from_secs(2);

/// How a login ended badly.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// The protocol call failed (classify with its `action()`).
    #[error(transparent)]
    Webqq(#[from] Error),
    /// A captcha must be typed and nobody is there to type it.
    #[error("a captcha is required")]
    CaptchaRequired,
    /// Every QR code expired unscanned.
    #[error("no QR code was scanned ({MAX_QR_CODES} expired)")]
    QrExpired,
    /// The QR login was refused.
    #[error("QR login failed: {0}")]
    QrFailed(String),
}

/// Command: reopen the session of `client` (relink). Sent by `AccountActor`.
#[derive(Message)]
#[rtype(result = "Result<(), LoginError>")]
pub struct Relink {
    /// The client holding the session.
    pub client: Arc<WebQqClient>,
}

/// Command: restore a stored session into a new client and relink it. Sent by `AccountActor`.
#[derive(Message)]
#[rtype(result = "Result<Arc<WebQqClient>, LoginError>")]
pub struct Restore {
    /// How to reach QQ.
    pub config: ClientConfig,
    /// The stored session.
    pub session: Box<Session>,
}

/// Command: a full password login. Sent by `AccountActor`.
#[derive(Message)]
#[rtype(result = "Result<Arc<WebQqClient>, LoginError>")]
pub struct LoginWithPassword {
    /// How to reach QQ.
    pub config: ClientConfig,
    /// The account.
    pub qq: QqNumber,
    /// Its password.
    pub password: Secret<String>,
}

/// Command: a full QR login; each QR image goes to `qr_codes` for a person to scan. Sent by
/// `AccountActor`.
#[derive(Message)]
#[rtype(result = "Result<Arc<WebQqClient>, LoginError>")]
pub struct LoginWithQr {
    /// How to reach QQ.
    pub config: ClientConfig,
    /// Where each new QR code (PNG) goes.
    pub qr_codes: Recipient<QrCodeIssued>,
}

/// Event: a QR code waits to be scanned. Sent by `LoginActor`.
#[derive(Message, Clone, Debug)]
#[rtype(result = "()")]
pub struct QrCodeIssued {
    /// The PNG image.
    pub png: Vec<u8>,
}

/// Performs logins for one account.
#[derive(Debug, Default)]
pub struct LoginActor;

impl Actor for LoginActor {
    type Context = Context<Self>;
}

impl Handler<Relink> for LoginActor {
    type Result = AtomicResponse<Self, Result<(), LoginError>>;

    fn handle(&mut self, msg: Relink, _: &mut Context<Self>) -> Self::Result {
        AtomicResponse::new(Box::pin(
            async move { relink(&msg.client).await.map_err(LoginError::from) }.into_actor(self),
        ))
    }
}

impl Handler<Restore> for LoginActor {
    type Result = AtomicResponse<Self, Result<Arc<WebQqClient>, LoginError>>;

    fn handle(&mut self, msg: Restore, _: &mut Context<Self>) -> Self::Result {
        AtomicResponse::new(Box::pin(
            async move {
                let client = Arc::new(WebQqClient::restore(msg.config, &msg.session)?);
                relink(&client).await?;
                Ok(client)
            }
            .into_actor(self),
        ))
    }
}

impl Handler<LoginWithPassword> for LoginActor {
    type Result = AtomicResponse<Self, Result<Arc<WebQqClient>, LoginError>>;

    fn handle(&mut self, msg: LoginWithPassword, _: &mut Context<Self>) -> Self::Result {
        AtomicResponse::new(Box::pin(
            async move {
                let client = WebQqClient::new(msg.config)?;
                match PasswordLogin::start(&client, msg.qq, &msg.password).await? {
                    PasswordStart::Ready(login) => login.submit(&client, None).await?,
                    PasswordStart::Captcha(..) => return Err(LoginError::CaptchaRequired),
                };
                Ok(Arc::new(client))
            }
            .into_actor(self),
        ))
    }
}

impl Handler<LoginWithQr> for LoginActor {
    type Result = AtomicResponse<Self, Result<Arc<WebQqClient>, LoginError>>;

    fn handle(&mut self, msg: LoginWithQr, _: &mut Context<Self>) -> Self::Result {
        AtomicResponse::new(Box::pin(async move { qr_login(msg).await }.into_actor(self)))
    }
}

async fn qr_login(msg: LoginWithQr) -> Result<Arc<WebQqClient>, LoginError> {
    let client = WebQqClient::new(msg.config)?;
    for _ in 0..MAX_QR_CODES {
        let (login, png) = QrLogin::start(&client).await?;
        msg.qr_codes.do_send(QrCodeIssued { png });
        loop {
            tokio::time::sleep(QR_POLL_INTERVAL).await;
            match login.state(&client).await? {
                QrState::Waiting | QrState::Scanned => {}
                QrState::Expired => break,
                QrState::Confirmed { check_sig_url, nick } => {
                    login.finish(&client, &check_sig_url, &nick).await?;
                    return Ok(Arc::new(client));
                }
                QrState::Failed(answer) => return Err(LoginError::QrFailed(answer.message)),
            }
        }
    }
    Err(LoginError::QrExpired)
}
