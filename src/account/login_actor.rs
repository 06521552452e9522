//! [`LoginActor`]: performs logins, restores and relinks, one at a time, for its account.
//!
//! A thin shell over `webqq::login`. Each request is a message answered with the outcome; the
//! actor holds no session state itself, so a restart loses nothing. Requests are handled one at a
//! time (`AtomicResponse`): two logins of one account must never race (a second login kicks the
//! first, protocol §7.11). Network work holds a permit of a semaphore shared by every account of
//! the process (`runtime.restore_concurrency`), so a restart of thousands of accounts does not
//! open thousands of logins at once; waits for a person (captcha, QR scan) hold none.

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::webqq::api::ptqrlogin::QrState;
use crate::webqq::client::{ClientConfig, WebQqClient};
use crate::webqq::login::{PasswordLogin, PasswordStart, QrLogin, relink};
use crate::webqq::session::Session;
use crate::webqq::{Error, QqNumber, Secret};

/// How long a captcha waits for its text before the login gives up (BAD_CREDENTIALS).
pub const CAPTCHA_TIMEOUT: Duration = Duration::from_secs(600);
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
    /// A captcha had to be typed and no answer came in time.
    #[error("the captcha was not answered within {} minutes", CAPTCHA_TIMEOUT.as_secs() / 60)]
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
    /// Where a captcha image goes, with the channel its text comes back on.
    pub captchas: Recipient<CaptchaIssued>,
}

/// Event: a captcha must be typed; send its text on `answer`. Sent by `LoginActor`.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct CaptchaIssued {
    /// The captcha image (JPEG).
    pub image: Vec<u8>,
    /// Where the typed text goes; dropping it abandons the login.
    pub answer: tokio::sync::oneshot::Sender<String>,
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
    /// Told once per code when it is scanned (ptqrlogin 67, protocol §1.3.3).
    pub scanned: Recipient<QrScanned>,
}

/// Event: the current QR code was scanned and waits for the phone's confirmation. Sent by
/// `LoginActor`.
#[derive(Message, Clone, Debug)]
#[rtype(result = "()")]
pub struct QrScanned;

/// Event: a QR code waits to be scanned. Sent by `LoginActor`.
#[derive(Message, Clone, Debug)]
#[rtype(result = "()")]
pub struct QrCodeIssued {
    /// The PNG image.
    pub png: Vec<u8>,
}

/// Performs logins for one account.
#[derive(Debug)]
pub struct LoginActor {
    permits: Arc<Semaphore>,
}

impl LoginActor {
    /// A login actor whose network work takes turns on `permits` with every other account's.
    pub fn new(permits: Arc<Semaphore>) -> Self {
        LoginActor { permits }
    }
}

/// Waits for a login permit. A closed semaphore (the process is stopping) lets the call
/// through: it is about to be dropped anyway.
async fn permit(permits: Arc<Semaphore>) -> Option<OwnedSemaphorePermit> {
    permits.acquire_owned().await.ok()
}

impl Actor for LoginActor {
    type Context = Context<Self>;
}

impl Handler<Relink> for LoginActor {
    type Result = AtomicResponse<Self, Result<(), LoginError>>;

    fn handle(&mut self, msg: Relink, _: &mut Context<Self>) -> Self::Result {
        let permits = self.permits.clone();
        AtomicResponse::new(Box::pin(
            async move {
                let _permit = permit(permits).await;
                relink(&msg.client).await.map_err(LoginError::from)
            }
            .into_actor(self),
        ))
    }
}

impl Handler<Restore> for LoginActor {
    type Result = AtomicResponse<Self, Result<Arc<WebQqClient>, LoginError>>;

    fn handle(&mut self, msg: Restore, _: &mut Context<Self>) -> Self::Result {
        let permits = self.permits.clone();
        AtomicResponse::new(Box::pin(
            async move {
                let _permit = permit(permits).await;
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
        let permits = self.permits.clone();
        AtomicResponse::new(Box::pin(password_login(msg, permits).into_actor(self)))
    }
}

async fn password_login(
    msg: LoginWithPassword,
    permits: Arc<Semaphore>,
) -> Result<Arc<WebQqClient>, LoginError> {
    let client = WebQqClient::new(msg.config)?;
    let started = {
        let _permit = permit(permits.clone()).await;
        PasswordLogin::start(&client, msg.qq, &msg.password).await?
    };
    let (login, captcha) = match started {
        PasswordStart::Ready(login) => (login, None),
        PasswordStart::Captcha(login, image) => {
            // A person types the text (protocol §1.2.2); no permit is held while they read it.
            let (answer, text) = tokio::sync::oneshot::channel();
            msg.captchas.do_send(CaptchaIssued { image, answer });
            match tokio::time::timeout(CAPTCHA_TIMEOUT, text).await {
                Ok(Ok(text)) => (login, Some(text)),
                Ok(Err(_)) | Err(_) => return Err(LoginError::CaptchaRequired),
            }
        }
    };
    let _permit = permit(permits).await;
    login.submit(&client, captcha.as_deref()).await?;
    Ok(Arc::new(client))
}

impl Handler<LoginWithQr> for LoginActor {
    type Result = AtomicResponse<Self, Result<Arc<WebQqClient>, LoginError>>;

    fn handle(&mut self, msg: LoginWithQr, _: &mut Context<Self>) -> Self::Result {
        let permits = self.permits.clone();
        AtomicResponse::new(Box::pin(qr_login(msg, permits).into_actor(self)))
    }
}

async fn qr_login(
    msg: LoginWithQr,
    permits: Arc<Semaphore>,
) -> Result<Arc<WebQqClient>, LoginError> {
    let client = WebQqClient::new(msg.config)?;
    for _ in 0..MAX_QR_CODES {
        let (login, png) = {
            let _permit = permit(permits.clone()).await;
            QrLogin::start(&client).await?
        };
        msg.qr_codes.do_send(QrCodeIssued { png });
        let mut told_scanned = false;
        loop {
            tokio::time::sleep(QR_POLL_INTERVAL).await;
            match login.state(&client).await? {
                QrState::Waiting => {}
                QrState::Scanned => {
                    if !told_scanned {
                        msg.scanned.do_send(QrScanned);
                        told_scanned = true;
                    }
                }
                QrState::Expired => break,
                QrState::Confirmed { check_sig_url, nick } => {
                    let _permit = permit(permits).await;
                    login.finish(&client, &check_sig_url, &nick).await?;
                    return Ok(Arc::new(client));
                }
                QrState::Failed(answer) => return Err(LoginError::QrFailed(answer.message)),
            }
        }
    }
    Err(LoginError::QrExpired)
}
