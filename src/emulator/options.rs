//! [`EmulatorOptions`]: the knobs that choose an era's behaviour (hold time, uin drawing, reply
//! forms) and the test hooks' defaults. Serializable so the world YAML may carry them.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How the emulator answers a successful `send_*_msg2` (protocol §2.4).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SendReplyForm {
    /// `{"retcode":0,"result":"ok"}` (2013–2016).
    #[default]
    Retcode,
    /// `{"errCode":0,"msg":"send ok"}` (late SmartQQ).
    ErrCode,
}

/// How an idle poll2 ends after [`EmulatorOptions::poll_hold`] (protocol §2.3).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdleForm {
    /// `{"retcode":102,"errmsg":""}` (2013–2016).
    #[default]
    Retcode102,
    /// `{"retcode":0,"retmsg":"ok"}` with no `result` (2017–2018).
    Empty,
    /// HTTP 504 from the front proxy.
    Http504,
}

/// Which era's shape poll events take (protocol §4 intro).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventForm {
    /// Slim SmartQQ values (`msg_type` 0, `group_code` = gid, no `msg_id2`/`reply_ip`/`seq`).
    #[default]
    SmartQq,
    /// Fat 2013 values (`msg_id2`, `reply_ip`, `seq`, `info_seq`, real `group_code`, msg_type
    /// 9/43/42/140, discussion `from_uin` 10000).
    Webqq2013,
}

/// Which friend-list hash (protocol §3) `get_user_friends2` and `get_group_name_list_mask2`
/// expect. Mirrors the variants of the client's hash module by name.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HashChoice {
    /// H-ECOK (2013-07 … 2013-10, 2013-12 … 2014-05, 2015-03 … 2019).
    #[default]
    Ecok,
    /// H-PWERR (2014-06 … 2015-03).
    Pwerr,
    /// H-QSORT (2013-10 … 2013-12, 2014-05 … 2014-06).
    Qsort,
    /// H-WALK (≤ mid-2013).
    Walk,
    /// No check at all (protocol §9.5 asks whether 2017–2018 servers checked it).
    Unchecked,
}

/// Behaviour switches of one emulator. Every field has a default (`#[serde(default)]`), so a
/// YAML `options:` section may name only what it changes. Durations are written in seconds
/// (fractions allowed).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EmulatorOptions {
    /// How long poll2 is held when idle. The real service held about 60 s (protocol §2.3);
    /// tests use 1–2 s or paused time.
    #[serde(with = "secs")]
    pub poll_hold: Duration,
    /// What an idle poll answers after the hold.
    pub idle_form: IdleForm,
    /// Draw other people's uins, group gids and codes at random at every login (2013 fidelity,
    /// protocol §0.2). When false uins equal QQ numbers and gids equal group numbers (codes are
    /// still distinct, derived deterministically), which makes logs easy to read.
    pub random_uins: bool,
    /// The friend-list hash function the s host checks.
    pub hash_variant: HashChoice,
    /// The shape of poll events.
    pub event_form: EventForm,
    /// Sends allowed per second per session (token bucket); beyond it sends answer 1202 and are
    /// still delivered (protocol §5.5, §6.1). 0 = unlimited.
    pub send_rate_per_sec: f64,
    /// Bucket size of the send limit.
    pub send_burst: u32,
    /// ptqrlogin demands `ptqrtoken` = hash33(qrsig) (from 2017-02, protocol §1.3.2).
    pub require_ptqrtoken: bool,
    /// How long a QR code stays scannable before ptqrlogin answers 65 (about 2 minutes, §1.3.1).
    #[serde(with = "secs")]
    pub qr_lifetime: Duration,
    /// Success form of the send endpoints.
    pub send_reply_form: SendReplyForm,
    /// Echo an account's own sends back into its poll (protocol §7.6 self-echo).
    pub self_echo: bool,
    /// A session not polled for this long is dropped (about two days, protocol §1.4).
    #[serde(with = "secs")]
    pub session_ttl: Duration,
    /// Answer the first poll2 after login2 with 103 unless `get_online_buddies2` was called
    /// first (protocol §1.3.6).
    pub require_warmup: bool,
    /// Check Referer and User-Agent on the s and d hosts and ptlogin (protocol §0.4).
    pub check_referer: bool,
    /// At most this many events in one poll2 answer (protocol §2.3: several are possible).
    pub max_events_per_poll: usize,
    /// The `check` answer form: false = the 2013 three-field `ptui_checkVC`, true = the 2015
    /// five-field form with `pt_verifysession` and `isRandSalt` (protocol §1.2.1).
    pub check_2015_form: bool,
}

impl Default for EmulatorOptions {
    fn default() -> Self {
        Self {
            poll_hold: Duration::from_secs(60),
            idle_form: IdleForm::Retcode102,
            random_uins: true,
            hash_variant: HashChoice::Ecok,
            event_form: EventForm::SmartQq,
            send_rate_per_sec: 0.0,
            send_burst: 20,
            require_ptqrtoken: true,
            qr_lifetime: Duration::from_secs(120),
            send_reply_form: SendReplyForm::Retcode,
            self_echo: false,
            session_ttl: Duration::from_secs(2 * 24 * 3600),
            require_warmup: true,
            check_referer: true,
            max_events_per_poll: 16,
            check_2015_form: true,
        }
    }
}

/// Serde helper: a [`Duration`] as a number of seconds (integer or fraction).
mod secs {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let v = f64::deserialize(d)?;
        Duration::try_from_secs_f64(v).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_options_partial_yaml_keeps_defaults() {
        let o: EmulatorOptions =
            serde_norway::from_str("poll_hold: 1.5\nsend_reply_form: err_code\n").unwrap();
        assert_eq!(o.poll_hold, Duration::from_millis(1500));
        assert_eq!(o.send_reply_form, SendReplyForm::ErrCode);
        assert!(o.random_uins);
        assert!(serde_norway::from_str::<EmulatorOptions>("poll_hld: 1").is_err());
        assert!(serde_norway::from_str::<EmulatorOptions>("poll_hold: -1").is_err());
    }
}
