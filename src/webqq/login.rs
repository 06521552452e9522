//! The two login flows and relink, as explicit steps a driver (CLI, login actor, Matrix bot) calls.
//!
//! Protocol §1. Password (2013 – 2015): login page → check → [captcha] → login → check_sig →
//! login2 on `d.web2`. QR (SmartQQ): login page → ptqrshow → ptqrlogin until 0 → check_sig →
//! getvfwebqq → login2 on `d1.web2`. Both end with the warm-up call get_online_buddies2 (§1.3.6).
//! Relink (§1.4) reopens the channel with the stored cookies and the old psessionid.

use rand::Rng;

use crate::webqq::api::check::{Check, CheckAnswer};
use crate::webqq::api::get_online_buddies2::GetOnlineBuddies2;
use crate::webqq::api::getimage::GetImage;
use crate::webqq::api::getvfwebqq::GetVfwebqq;
use crate::webqq::api::login::{Login, PtuiCb};
use crate::webqq::api::login_page::LoginPage;
use crate::webqq::api::login2::Login2;
use crate::webqq::api::ptqrlogin::{PtqrLogin, QrState};
use crate::webqq::api::ptqrshow::PtqrShow;
use crate::webqq::api::{SessionQuery, check_sig};
use crate::webqq::client::WebQqClient;
use crate::webqq::crypto::{self, PasswordInput};
use crate::webqq::hosts::Channel;
use crate::webqq::retry::retried;
use crate::webqq::session::{Tokens, unix_now};
use crate::webqq::{ClientId, Error, QqNumber, Secret};

/// A password login between check and login: holds the salt and what the captcha needs.
#[derive(Debug)]
pub struct PasswordLogin {
    qq: QqNumber,
    password_md5: Secret<[u8; 16]>,
    check: CheckAnswer,
    login_sig: String,
    started: std::time::Instant,
}

/// The result of starting a password login.
#[derive(Debug)]
pub enum PasswordStart {
    /// No captcha needed: call [`PasswordLogin::submit`] with `None`.
    Ready(PasswordLogin),
    /// A person must read this image (normally JPEG) and pass the code to `submit`.
    Captcha(PasswordLogin, Vec<u8>),
}

impl PasswordLogin {
    /// Loads the login page, sets `chkuin`, calls check and, when needed, fetches the captcha.
    ///
    /// `password` may be the plain password or its MD5 as 32 hex digits (libwebqq accepted both).
    pub async fn start(
        client: &WebQqClient,
        qq: QqNumber,
        password: &Secret<String>,
    ) -> Result<PasswordStart, Error> {
        let password_md5 = PasswordInput::detect(password.expose())
            .md5()
            .map_err(|_| Error::Flow("password looks like an MD5 but is not valid hex"))?;
        let login_sig = load_login_page(client).await?;
        client.cookies().set("chkuin", &qq.to_string(), "ptlogin2.qq.com");
        let r = random_float();
        let check = client.call(&Check { uin: qq, login_sig: login_sig.clone(), r }).await?;
        let captcha = if check.need_captcha {
            let image = GetImage { uin: qq, cap_cd: check.code.clone(), r: random_float() };
            Some(client.call(&image).await?)
        } else {
            None
        };
        let login = PasswordLogin {
            qq,
            password_md5: Secret::new(password_md5),
            check,
            login_sig,
            started: std::time::Instant::now(),
        };
        Ok(match captcha {
            Some(image) => PasswordStart::Captcha(login, image),
            None => PasswordStart::Ready(login),
        })
    }

    /// Whether this login waits for a captcha answer.
    pub fn needs_captcha(&self) -> bool {
        self.check.need_captcha
    }

    /// Encrypts the password, calls login, check_sig and login2 (2013 form on `d.web2`) and the
    /// warm-up. A wrong password is `Error::LoginRefused { code: 3 }`, a wrong captcha code 4.
    pub async fn submit(
        self,
        client: &WebQqClient,
        captcha: Option<&str>,
    ) -> Result<String, Error> {
        let (verifycode, verifysession) = if self.check.need_captcha {
            let code = captcha.ok_or(Error::Flow("this login needs the captcha text"))?;
            // After a captcha the `verifysession` cookie set by getimage is sent back
            // (protocol §1.2.2).
            let session = client.cookies().get("verifysession", "qq.com").unwrap_or_default();
            (code.trim().to_owned(), session)
        } else {
            (self.check.code.clone(), self.check.verifysession.clone().unwrap_or_default())
        };
        let salt = self.check.salt.unwrap_or_else(|| self.qq.get().to_be_bytes());
        // The 5-field check answer arrived together with the RSA+TEA scheme (protocol §1.2.4);
        // older answers go with the MD5 chain.
        let p = if self.check.rand_salt.is_some() {
            crypto::encrypt_password_rsa_tea(
                *self.password_md5.expose(),
                &salt,
                &verifycode,
                &mut rand::rng(),
            )
        } else {
            crypto::encrypt_password_md5(*self.password_md5.expose(), &salt, &verifycode)
        };
        let elapsed = self.started.elapsed().as_millis();
        let login = Login {
            uin: self.qq,
            p: Secret::new(p),
            verifycode,
            login_sig: self.login_sig.clone(),
            rand_salt: self.check.rand_salt.clone().unwrap_or_default(),
            verifysession,
            action: format!("0-{}-{}", rand::rng().random_range(10..30), elapsed.max(1000)),
        };
        let answer = client.call(&login).await?;
        let nick = accept_ptui(answer)?;
        finish(client, self.qq, &nick.url, &nick.nick, Channel::D).await?;
        Ok(nick.nick)
    }
}

/// A QR login between ptqrshow and confirmation.
#[derive(Debug)]
pub struct QrLogin {
    ptqrtoken: u32,
    started: std::time::Instant,
}

impl QrLogin {
    /// Loads the login page and fetches a QR code; returns the flow and the PNG to show.
    pub async fn start(client: &WebQqClient) -> Result<(QrLogin, Vec<u8>), Error> {
        load_login_page(client).await?;
        let png = client.call(&PtqrShow { t: random_float() }).await?;
        let qrsig = client
            .cookies()
            .get("qrsig", "ptlogin2.qq.com")
            .ok_or(Error::Flow("ptqrshow set no qrsig cookie"))?;
        let ptqrtoken = crate::webqq::hash::hash33(&qrsig);
        Ok((QrLogin { ptqrtoken, started: std::time::Instant::now() }, png))
    }

    /// Asks once for the scan state. Call every 1–3 s (protocol §1.3.3).
    pub async fn state(&self, client: &WebQqClient) -> Result<QrState, Error> {
        let action = format!("0-0-{}", self.started.elapsed().as_millis().max(1));
        client.call(&PtqrLogin { ptqrtoken: self.ptqrtoken, action }).await
    }

    /// After [`QrState::Confirmed`]: check_sig, getvfwebqq, login2 on `d1.web2`, warm-up.
    /// Returns the account's QQ number, read from the `superuin`/`uin` cookie (protocol §1.3.3).
    pub async fn finish(
        self,
        client: &WebQqClient,
        check_sig_url: &str,
        nick: &str,
    ) -> Result<QqNumber, Error> {
        let qq =
            account_from_cookies(client).ok_or(Error::Flow("no uin cookie after the QR login"))?;
        finish(client, qq, check_sig_url, nick, Channel::D1).await?;
        Ok(qq)
    }
}

/// Reopens the channel of a restored session (protocol §1.4): SmartQQ = getvfwebqq + login2 with
/// the old psessionid; 2013 = login2 with the old psessionid and `"key":""`. Then the warm-up.
/// An error whose action is `Relogin` means a full login is needed.
pub async fn relink(client: &WebQqClient) -> Result<(), Error> {
    let (channel, clientid, ptwebqq, psessionid) = {
        let state = client.state();
        let tokens = &state.tokens;
        (state.channel, state.clientid, tokens.ptwebqq.clone(), tokens.psessionid.clone())
    };
    if tokens_missing(client) {
        return Err(Error::Flow("no stored session to relink"));
    }
    if channel == Channel::D1 {
        let answer = client
            .call(&GetVfwebqq {
                ptwebqq: ptwebqq.expose().clone(),
                clientid,
                psessionid: String::new(),
            })
            .await?;
        client.state().tokens.vfwebqq = Secret::new(answer.vfwebqq);
    }
    let login2 = Login2 {
        status: "online".into(),
        ptwebqq: ptwebqq.expose().clone(),
        clientid,
        psessionid: Some(psessionid.expose().clone()),
        passwd_sig: None,
        key: Some(String::new()),
    };
    let answer = client.call(&login2).await?;
    {
        let mut state = client.state();
        state.tokens.psessionid = Secret::new(answer.psessionid);
        state.tokens.uin = Some(answer.uin);
        if channel == Channel::D {
            state.tokens.vfwebqq = Secret::new(answer.vfwebqq);
        }
        state.tokens.gface = None;
    }
    warm_up(client).await
}

fn tokens_missing(client: &WebQqClient) -> bool {
    let state = client.state();
    state.tokens.qq.is_none() || state.tokens.psessionid.expose().is_empty()
}

/// check_sig, then the era's login2, then the warm-up; stores the tokens in the client.
async fn finish(
    client: &WebQqClient,
    qq: QqNumber,
    check_sig_url: &str,
    nick: &str,
    channel: Channel,
) -> Result<(), Error> {
    let url = check_sig::validate_url(check_sig_url)?;
    client.get_url(check_sig::NAME, url).await?;
    let ptwebqq = client.cookies().get("ptwebqq", "qq.com").unwrap_or_default();
    // SmartQQ pages used the constant clientid; 2013 clients drew 8 random digits (§0.2).
    let clientid = match channel {
        Channel::D1 => ClientId::SMARTQQ,
        Channel::D => ClientId::new(rand::rng().random_range(10_000_000..100_000_000)),
    };
    {
        let mut state = client.state();
        state.channel = channel;
        state.clientid = clientid;
    }
    let mut vfwebqq = String::new();
    if channel == Channel::D1 {
        let answer = client
            .call(&GetVfwebqq { ptwebqq: ptwebqq.clone(), clientid, psessionid: String::new() })
            .await?;
        vfwebqq = answer.vfwebqq;
    }
    let login2 = Login2 {
        status: "online".into(),
        ptwebqq: ptwebqq.clone(),
        clientid,
        psessionid: match channel {
            Channel::D1 => Some(String::new()),
            Channel::D => None,
        },
        passwd_sig: (channel == Channel::D).then(String::new),
        key: None,
    };
    let answer = client.call(&login2).await?;
    if channel == Channel::D {
        vfwebqq = answer.vfwebqq;
    }
    client.state().tokens = Tokens {
        qq: Some(qq),
        uin: Some(answer.uin),
        psessionid: Secret::new(answer.psessionid),
        vfwebqq: Secret::new(vfwebqq),
        ptwebqq: Secret::new(ptwebqq),
        nick: nick.to_owned(),
        opened_at: unix_now(),
        gface: None,
    };
    warm_up(client).await
}

/// get_online_buddies2 once after login2: without it the first poll2 answered 103 (§1.3.6).
/// Tried again while it fails transiently ([`retried`]): login2 has already replaced the session,
/// and a failed relink would be redone with the old psessionid, as a new login that loses what
/// QQ queued for the session.
pub async fn warm_up(client: &WebQqClient) -> Result<(), Error> {
    let request = GetOnlineBuddies2 { session: session_query(client) };
    retried(|| client.call(&request)).await.map(|_| ())
}

/// The clientid / psessionid / vfwebqq triple of the current session.
pub fn session_query(client: &WebQqClient) -> SessionQuery {
    let state = client.state();
    SessionQuery {
        clientid: Some(state.clientid),
        psessionid: Some(state.tokens.psessionid.expose().clone()),
        vfwebqq: Some(state.tokens.vfwebqq.expose().clone()),
    }
}

async fn load_login_page(client: &WebQqClient) -> Result<String, Error> {
    let embedded = client.call(&LoginPage).await?;
    Ok(embedded
        .or_else(|| client.cookies().get("pt_login_sig", "ptlogin2.qq.com"))
        .unwrap_or_default())
}

/// Turns a login answer into its URL and nick, or the typed refusal.
fn accept_ptui(answer: PtuiCb) -> Result<PtuiCb, Error> {
    if answer.is_account_locked() {
        return Err(Error::AccountLocked);
    }
    if answer.code != 0 {
        return Err(Error::LoginRefused {
            code: answer.code,
            sub: answer.sub,
            message: answer.message,
        });
    }
    Ok(answer)
}

/// Reads the account from `superuin` or `uin` (`o0<QQ>`): strip the `o` and leading zeros.
fn account_from_cookies(client: &WebQqClient) -> Option<QqNumber> {
    let jar = client.cookies();
    let raw = jar.get("superuin", "ptlogin2.qq.com").or_else(|| jar.get("uin", "qq.com"))?;
    raw.trim_start_matches('o').trim_start_matches('0').parse().ok()
}

fn random_float() -> String {
    format!("{:.16}", rand::rng().random::<f64>())
}
