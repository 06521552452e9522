//! Identifier newtypes of the WebQQ protocol, each with its source, scope and stability.
//!
//! Protocol reference §0.2 explains why these must never be confused: uins and gids are drawn per
//! session, QQ numbers and group numbers are permanent. Only permanent ids may key stored rows.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize};

macro_rules! numeric_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
        #[serde(transparent)]
        pub struct $name(u64);

        impl $name {
            /// Wraps a raw number taken from the wire or from configuration.
            pub const fn new(raw: u64) -> Self {
                Self(raw)
            }

            /// The raw number, for the wire.
            pub const fn get(self) -> u64 {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = std::num::ParseIntError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                s.trim().parse().map(Self)
            }
        }

        impl From<u64> for $name {
            fn from(raw: u64) -> Self {
                Self(raw)
            }
        }

        /// Servers were lax about numbers versus strings (protocol §0.3), so both are accepted.
        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                lax_u64(deserializer).map(Self)
            }
        }
    };
}

numeric_id! {
    /// A real, permanent QQ account number (`account`, SmartQQ own `uin`, `ruin`,
    /// `get_friend_uin2` results).
    ///
    /// Stability: permanent. May key accounts, ghosts and friend portals.
    QqNumber
}

numeric_id! {
    /// The visible, permanent number of a group (`info_seq` in 2013 group messages, `t_gcode` in
    /// `sys_g_msg`, `account` from `get_friend_uin2?type=4`).
    ///
    /// Stability: permanent. May key group portals.
    GroupNumber
}

numeric_id! {
    /// A person's address inside one WebQQ session (`from_uin`, `send_uin`, friend-list `uin`).
    ///
    /// Stability: one session only; it may change at the next login. Never store it and never build
    /// a Matrix id from it: resolve it to a [`QqNumber`] first.
    Uin
}

numeric_id! {
    /// A group's address for sending inside one session (`gid`, `group_uin`, group `from_uin`).
    ///
    /// Stability: one session only. A send target, never a key.
    Gid
}

numeric_id! {
    /// A group's second opaque id (`code`, `gcode`), used only by `get_group_info_ext2`.
    ///
    /// Stability: unknown. Use for info calls only.
    GroupCode
}

numeric_id! {
    /// A discussion ("讨论组") id, used for both sending and info.
    ///
    /// Stability: unknown; only ever stored together with the account and re-matched after each
    /// login (a documented limitation).
    Did
}

numeric_id! {
    /// A message sequence number (`msg_id`, `msg_id2`) chosen by the sender.
    ///
    /// Stability: per sender and session; only meaningful inside a dedupe key together with `time`.
    MsgId
}

/// The web page's `clientid`: a client-chosen instance id (protocol §0.2).
///
/// SmartQQ pages used the constant [`ClientId::SMARTQQ`]; 2013 clients drew 8 random digits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct ClientId(u64);

impl ClientId {
    /// The constant every SmartQQ-era page and client used.
    pub const SMARTQQ: ClientId = ClientId(53_999_199);

    /// Wraps a raw client id.
    pub const fn new(raw: u64) -> Self {
        Self(raw)
    }

    /// The raw number.
    pub const fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl<'de> Deserialize<'de> for ClientId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        lax_u64(deserializer).map(Self)
    }
}

/// Reads a `u64` written either as a JSON number or as a decimal string (protocol §0.3).
pub fn lax_u64<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum NumOrText {
        Num(u64),
        Signed(i64),
        Float(f64),
        Text(String),
    }
    match NumOrText::deserialize(deserializer)? {
        NumOrText::Num(n) => Ok(n),
        NumOrText::Signed(n) => u64::try_from(n).map_err(serde::de::Error::custom),
        NumOrText::Float(f) if f >= 0.0 && f.fract() == 0.0 && f < 1.8e19 => Ok(f as u64),
        NumOrText::Float(f) => Err(serde::de::Error::custom(format!("not an id: {f}"))),
        NumOrText::Text(s) => {
            s.trim().parse().map_err(|_| serde::de::Error::custom(format!("not a number: {s:?}")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_ids_accept_numbers_and_strings() {
        let a: Did = serde_json::from_str("2006892653").unwrap();
        let b: Did = serde_json::from_str("\"2006892653\"").unwrap();
        assert_eq!(a, b);
        assert_eq!(serde_json::to_string(&a).unwrap(), "2006892653");
        assert!(serde_json::from_str::<Uin>("\"abc\"").is_err());
        assert!(serde_json::from_str::<Uin>("-1").is_err());
        let c: ClientId = serde_json::from_str("\"30833194\"").unwrap();
        assert_eq!(c.get(), 30_833_194);
    }
}
