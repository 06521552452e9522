//! `GET https://ssl.ptlogin2.qq.com/ptqrlogin`: poll the QR scan state (SmartQQ).
//!
//! Protocol §1.3.3. A short poll every 1–3 s answering `ptuiCB` with 66 (not scanned), 67
//! (scanned, waiting for confirmation), 65 (expired) or 0 (confirmed, field 3 = check_sig URL).
//! Without a valid `ptqrtoken` the server answers HTTP 403 (since 2017-02).

use crate::webqq::Error;
use crate::webqq::api::login::PtuiCb;
use crate::webqq::api::{Endpoint, HostKind, Method, Params, RawAnswer};

/// The scan-state request.
#[derive(Clone, Debug)]
pub struct PtqrLogin {
    /// `hash33(qrsig)`.
    pub ptqrtoken: u32,
    /// `0-0-<ms since page load>`.
    pub action: String,
}

/// The scan state, decoded from the ptuiCB code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum QrState {
    /// 66: valid, not scanned yet.
    Waiting,
    /// 67: scanned; waiting for the person to confirm on the phone.
    Scanned,
    /// 65: expired; fetch a new QR code.
    Expired,
    /// 0: confirmed; continue at `check_sig_url`.
    Confirmed {
        /// The check_sig URL, to be called verbatim.
        check_sig_url: String,
        /// The account's nickname.
        nick: String,
    },
    /// Anything else: a failure with ptlogin's message.
    Failed(PtuiCb),
}

impl From<PtuiCb> for QrState {
    fn from(cb: PtuiCb) -> Self {
        match cb.code {
            66 => QrState::Waiting,
            67 => QrState::Scanned,
            65 => QrState::Expired,
            0 if !cb.url.is_empty() => QrState::Confirmed { check_sig_url: cb.url, nick: cb.nick },
            _ => QrState::Failed(cb),
        }
    }
}

impl Endpoint for PtqrLogin {
    const NAME: &'static str = "ptqrlogin";
    const PATH: &'static str = "/ptqrlogin";
    const METHOD: Method = Method::Get;
    const HOST: HostKind = HostKind::Ptlogin;
    type Answer = QrState;

    fn params(&self) -> Params {
        vec![
            ("ptqrtoken", self.ptqrtoken.to_string()),
            ("webqq_type", "10".into()),
            ("remember_uin", "1".into()),
            ("login2qq", "1".into()),
            ("aid", crate::webqq::hosts::APPID.into()),
            ("u1", crate::webqq::hosts::U1_PROXY.into()),
            ("ptredirect", "0".into()),
            ("ptlang", "2052".into()),
            ("daid", "164".into()),
            ("from_ui", "1".into()),
            ("pttype", "1".into()),
            ("dumy", String::new()),
            ("fp", "loginerroralert".into()),
            ("action", self.action.clone()),
            ("mibao_css", "m_webqq".into()),
            ("t", "undefined".into()),
            ("g", "1".into()),
            ("js_type", "0".into()),
            ("js_ver", "10233".into()),
            ("login_sig", String::new()),
            ("pt_randsalt", "0".into()),
        ]
    }

    fn decode(raw: &RawAnswer<'_>) -> Result<Self::Answer, Error> {
        PtuiCb::decode(Self::NAME, raw).map(QrState::from)
    }
}
