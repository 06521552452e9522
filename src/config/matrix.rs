//! The Matrix-side sections of `bridge.yaml`: `homeserver`, `appservice` and `bridge`, their
//! defaults and their validation (MATRIX.md §1, §3, §4).

use std::{net::SocketAddr, path::PathBuf};

use serde::Deserialize;

use super::{Config, ConfigError};

/// `homeserver:` the Matrix homeserver the bridge talks to.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HomeserverConfig {
    /// Base URL of the Client-Server API as the bridge reaches it (`http(s)://host[:port]`).
    pub address: String,
    /// The homeserver's `server_name`: the part after `:` in user ids.
    pub domain: String,
    /// Optional URL that receives bridge state pushes (MATRIX.md §6.5).
    pub status_endpoint: Option<String>,
}

impl Default for HomeserverConfig {
    fn default() -> Self {
        Self {
            address: "http://127.0.0.1:8008".to_owned(),
            domain: "localhost".to_owned(),
            status_endpoint: None,
        }
    }
}

/// `appservice:` the bridge as an application service (MATRIX.md §1, §4).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AppserviceConfig {
    /// The registration's `id`, unique among the homeserver's appservices.
    pub id: String,
    /// Where the bridge listens for the homeserver's transactions.
    pub listen: SocketAddr,
    /// The URL the homeserver uses to reach `listen` (the registration's `url`).
    pub address: String,
    /// Localpart of the bridge bot, the user people talk to: a user of the appservice's
    /// exclusive namespace (registered at start-up), so that it may own an encryption device.
    pub bot_localpart: String,
    /// Localpart of the registration's `sender_localpart`: the appservice's own user, never
    /// seen in rooms (every call asserts the bot or a ghost). Synapse refuses `/sync` for it.
    pub sender_localpart: String,
    /// The registration file; the only place the `as_token` and `hs_token` live (mode 0600).
    pub registration: PathBuf,
    /// Ask for typing, receipts and presence (`receive_ephemeral`).
    pub ephemeral_events: bool,
    /// Largest transaction body accepted, in bytes (MATRIX.md §2: 100 PDUs of 64 KiB).
    pub max_body_bytes: u64,
}

impl Default for AppserviceConfig {
    fn default() -> Self {
        Self {
            id: "qqbridge".to_owned(),
            listen: SocketAddr::from(([127, 0, 0, 1], 29340)),
            address: "http://127.0.0.1:29340".to_owned(),
            bot_localpart: "qqbot".to_owned(),
            sender_localpart: "qqbridge".to_owned(),
            registration: PathBuf::from("var/registration.yaml"),
            ephemeral_events: true,
            max_body_bytes: 16 * 1024 * 1024,
        }
    }
}

/// When the bridge creates a Matrix room for a QQ chat.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PortalCreation {
    /// When the first message of the chat arrives.
    #[default]
    OnMessage,
    /// For every friend and group as soon as the contact lists are fetched.
    OnSync,
}

/// Which account states the owner is told in the management room (MATRIX.md §6.5).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BridgeStatusNotices {
    /// None at all.
    None,
    /// The error states, and the recovery after a told one.
    #[default]
    Errors,
    /// Every change of state.
    All,
}

/// What a Matrix user may do with the bridge (`bridge.permissions`), lowest first: the order
/// is the order of rights, so `level >= Permission::User` reads as "at least a user".
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Permission {
    /// Nothing: commands refused, invites rejected, messages not bridged.
    #[default]
    Block,
    /// `help`, `version`, `ping`; messages through a relay account (MATRIX.md §6.3).
    Relay,
    /// Log in QQ accounts and use them.
    User,
    /// Everything, including relay and bridging commands.
    Admin,
}

/// `bridge:` how QQ contacts and chats appear in Matrix.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BridgeConfig {
    /// Run the Matrix side at all; `false` runs only the QQ side.
    pub enabled: bool,
    /// Localpart of a QQ contact's ghost; contains `{qq}` once, after a literal prefix.
    pub username_template: String,
    /// Display name of a ghost; `{name}` is the QQ nickname, `{qq}` the number.
    pub displayname_template: String,
    /// When portals (Matrix rooms for QQ chats) are created.
    pub portal_creation: PortalCreation,
    /// Most group members whose ghosts join when a group portal is created.
    pub initial_group_members: u32,
    /// Bridge QQ online status to Matrix presence.
    pub presence: bool,
    /// Largest image bridged in either direction, in bytes.
    pub max_image_bytes: u64,
    /// Largest text of one Matrix message sent to QQ, in bytes; it goes out split into QQ-sized
    /// parts, and a longer one is refused with a notice.
    pub max_text_bytes: u64,
    /// Send a `com.beeper.message_send_status` event for every Matrix message bound for QQ
    /// (MATRIX.md §6.6); failures get a notice either way.
    pub message_status_events: bool,
    /// Which account states the owner is told in the management room.
    pub bridge_status_notices: BridgeStatusNotices,
    /// How long a TRANSIENT_DISCONNECT must last before it is told or pushed, in seconds: a
    /// blip that resolves sooner is never told (RELIABILITY.md §1.6).
    pub bridge_status_transient_hold_seconds: u64,
    /// The same hold for the other error states (BAD_CREDENTIALS, LOGGED_OUT, UNKNOWN_ERROR).
    pub bridge_status_error_hold_seconds: u64,
    /// Who may use the bridge: a Matrix user id, a server name or `*` to a [`Permission`]; the
    /// most specific key wins (user id, then server name, then `*`); unmatched users are
    /// blocked, except an account's configured owner, who keeps that account.
    pub permissions: std::collections::BTreeMap<String, Permission>,
    /// What starts a bot command in a portal (`!qq help`); the management room needs none.
    pub command_prefix: String,
}

impl Default for BridgeConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            username_template: "qq_{qq}".to_owned(),
            displayname_template: "{name} (QQ)".to_owned(),
            portal_creation: PortalCreation::OnMessage,
            initial_group_members: 20,
            presence: false,
            max_image_bytes: 10 * 1024 * 1024,
            max_text_bytes: 8 * 1024,
            message_status_events: false,
            bridge_status_notices: BridgeStatusNotices::Errors,
            bridge_status_transient_hold_seconds: 180,
            bridge_status_error_hold_seconds: 0,
            permissions: std::collections::BTreeMap::new(),
            command_prefix: "!qq".to_owned(),
        }
    }
}

/// The placeholder of the QQ number in `bridge.username_template`.
pub const QQ_PLACEHOLDER: &str = "{qq}";

impl BridgeConfig {
    /// The literal text of `username_template` before and after `{qq}`; `None` when the
    /// placeholder is missing.
    pub fn username_parts(&self) -> Option<(&str, &str)> {
        self.username_template.split_once(QQ_PLACEHOLDER)
    }

    /// The ghost localpart of QQ number `qq`.
    pub fn ghost_localpart(&self, qq: u64) -> String {
        self.username_template.replace(QQ_PLACEHOLDER, &qq.to_string())
    }
}

impl Config {
    /// The bot's full user id, `@<appservice.bot_localpart>:<homeserver.domain>`.
    pub fn bot_user_id(&self) -> String {
        format!("@{}:{}", self.appservice.bot_localpart, self.homeserver.domain)
    }
}

/// Whether `s` is a Matrix user localpart made of the characters the spec allows for new users:
/// `a-z 0-9 . _ = - / +`.
pub fn is_valid_localpart(s: &str) -> bool {
    !s.is_empty()
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._=-/+".contains(&b))
}

/// Whether `s` is a server name: a DNS name, IPv4 or `[IPv6]` literal, optionally `:port`.
pub fn is_valid_server_name(s: &str) -> bool {
    let (host, port) = match s.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(':') && !p.contains(']') => (h, Some(p)),
        _ => (s, None),
    };
    let port_ok = port.is_none_or(|p| p.parse::<u16>().is_ok());
    let host_ok = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(v6) => v6.parse::<std::net::Ipv6Addr>().is_ok(),
        None => {
            !host.is_empty()
                && host.len() <= 255
                && host.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
        }
    };
    port_ok && host_ok
}

/// Whether `s` is `@localpart:server_name` (historical localparts allowed, as Matrix does for
/// existing users).
pub fn is_valid_user_id(s: &str) -> bool {
    let Some(rest) = s.strip_prefix('@') else { return false };
    let Some((localpart, server)) = rest.split_once(':') else { return false };
    !localpart.is_empty()
        && localpart.bytes().all(|b| (0x21..=0x7e).contains(&b) && b != b':')
        && is_valid_server_name(server)
        && s.len() <= 255
}

/// Checks that `value` at `key` is an `http://` or `https://` URL with a host.
fn check_http_url(key: &str, value: &str) -> Result<(), ConfigError> {
    match url::Url::parse(value) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Ok(()),
        Ok(_) => Err(ConfigError::invalid(key, format!("{value:?} is not an http(s) URL"))),
        Err(e) => Err(ConfigError::invalid(key, format!("{value:?} is not a URL: {e}"))),
    }
}

/// The Matrix half of [`Config::validate`]: URLs, names, templates, ranges, account owners.
pub(super) fn validate(config: &Config) -> Result<(), ConfigError> {
    let (hs, aps, bridge) = (&config.homeserver, &config.appservice, &config.bridge);
    check_http_url("homeserver.address", &hs.address)?;
    if !is_valid_server_name(&hs.domain) {
        let reason = format!("{:?} is not a server name (host or host:port)", hs.domain);
        return Err(ConfigError::invalid("homeserver.domain", reason));
    }
    if let Some(url) = &hs.status_endpoint {
        check_http_url("homeserver.status_endpoint", url)?;
    }
    if aps.id.is_empty()
        || !aps.id.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
    {
        let reason = format!("{:?} is not a valid id: use a-z A-Z 0-9 . _ -", aps.id);
        return Err(ConfigError::invalid("appservice.id", reason));
    }
    check_http_url("appservice.address", &aps.address)?;
    for (key, localpart) in [
        ("appservice.bot_localpart", &aps.bot_localpart),
        ("appservice.sender_localpart", &aps.sender_localpart),
    ] {
        if !is_valid_localpart(localpart) {
            let reason = format!("{localpart:?} is not a localpart: use a-z 0-9 . _ = - / +");
            return Err(ConfigError::invalid(key, reason));
        }
    }
    if config.encryption.bot_device && aps.sender_localpart == aps.bot_localpart {
        let reason = "must differ from appservice.bot_localpart when encryption.bot_device is on \
                      (Synapse refuses /sync for the appservice's sender)";
        return Err(ConfigError::invalid("appservice.sender_localpart", reason));
    }
    if aps.registration.as_os_str().is_empty() {
        return Err(ConfigError::invalid("appservice.registration", "must not be empty"));
    }
    let template = &bridge.username_template;
    let key = "bridge.username_template";
    let Some((prefix, suffix)) = bridge.username_parts() else {
        return Err(ConfigError::invalid(key, format!("{template:?} must contain {{qq}}")));
    };
    if suffix.contains(QQ_PLACEHOLDER) {
        return Err(ConfigError::invalid(key, "must contain {qq} only once"));
    }
    if prefix.is_empty() {
        let reason = "needs a literal prefix before {qq} (it also prefixes portal aliases)";
        return Err(ConfigError::invalid(key, reason));
    }
    if !is_valid_localpart(&bridge.ghost_localpart(10000)) {
        let reason = format!("{template:?} gives invalid localparts: use a-z 0-9 . _ = - / +");
        return Err(ConfigError::invalid(key, reason));
    }
    for (field, localpart) in [
        ("appservice.bot_localpart", aps.bot_localpart.as_str()),
        ("appservice.sender_localpart", aps.sender_localpart.as_str()),
    ] {
        let is_ghost = localpart
            .strip_prefix(prefix)
            .and_then(|r| r.strip_suffix(suffix))
            .is_some_and(|digits| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()));
        if is_ghost {
            let reason = format!("{localpart:?} falls inside the ghost namespace of {key}");
            return Err(ConfigError::invalid(field, reason));
        }
    }
    if bridge.displayname_template.trim().is_empty() {
        return Err(ConfigError::invalid("bridge.displayname_template", "must not be empty"));
    }
    for (key, value, min, max) in [
        ("appservice.max_body_bytes", aps.max_body_bytes, 1 << 20, 1 << 30),
        ("bridge.initial_group_members", bridge.initial_group_members.into(), 0, 10_000),
        ("bridge.max_image_bytes", bridge.max_image_bytes, 1024, 100 << 20),
        ("bridge.max_text_bytes", bridge.max_text_bytes, 720, 64 << 10),
        (
            "bridge.bridge_status_transient_hold_seconds",
            bridge.bridge_status_transient_hold_seconds,
            0,
            86_400,
        ),
        (
            "bridge.bridge_status_error_hold_seconds",
            bridge.bridge_status_error_hold_seconds,
            0,
            86_400,
        ),
    ] {
        if !(min..=max).contains(&value) {
            let reason = format!("{value} is out of range {min}..={max}");
            return Err(ConfigError::invalid(key, reason));
        }
    }
    for key in bridge.permissions.keys() {
        let valid = key == "*" || is_valid_user_id(key) || is_valid_server_name(key);
        if !valid {
            let reason = format!("{key:?} is not a Matrix user id, a server name or \"*\"");
            return Err(ConfigError::invalid("bridge.permissions", reason));
        }
    }
    let prefix = &bridge.command_prefix;
    if prefix.is_empty() || prefix.len() > 16 || prefix.chars().any(char::is_whitespace) {
        let reason = format!("{prefix:?} must be 1 to 16 bytes without spaces");
        return Err(ConfigError::invalid("bridge.command_prefix", reason));
    }
    for (i, account) in config.accounts.iter().enumerate() {
        let key = format!("accounts[{i}].owner");
        match &account.owner {
            Some(owner) if !is_valid_user_id(owner) => {
                let reason = format!("{owner:?} is not a Matrix user id (@user:server)");
                return Err(ConfigError::invalid(key, reason));
            }
            None if bridge.enabled => {
                let reason = "required when bridge.enabled is true (a Matrix user id)";
                return Err(ConfigError::invalid(key, reason));
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(yaml: &str) -> Result<Config, ConfigError> {
        Config::load_from(yaml, std::iter::empty())
    }

    #[test]
    fn test_matrix_defaults() {
        let config = load("").unwrap();
        assert_eq!(config.homeserver.address, "http://127.0.0.1:8008");
        assert_eq!(config.homeserver.domain, "localhost");
        assert_eq!(config.appservice.listen, "127.0.0.1:29340".parse().unwrap());
        assert_eq!(config.appservice.registration, PathBuf::from("var/registration.yaml"));
        assert_eq!(config.appservice.max_body_bytes, 16 << 20);
        assert!(config.appservice.ephemeral_events);
        assert!(!config.bridge.enabled);
        assert_eq!(config.bridge.portal_creation, PortalCreation::OnMessage);
        assert_eq!(config.bridge.ghost_localpart(10001), "qq_10001");
        assert_eq!(config.bot_user_id(), "@qqbot:localhost");
        assert_eq!(config.appservice.sender_localpart, "qqbridge");
    }

    #[test]
    fn test_matrix_sections_from_yaml_and_env() {
        let yaml = "homeserver: {domain: example.org}\nbridge: {portal_creation: on_sync}\n";
        let env = [
            ("QQBRIDGE__APPSERVICE__BOT_LOCALPART".to_owned(), "bot".to_owned()),
            ("QQBRIDGE__BRIDGE__INITIAL_GROUP_MEMBERS".to_owned(), "5".to_owned()),
        ];
        let config = Config::load_from(yaml, env).unwrap();
        assert_eq!(config.bot_user_id(), "@bot:example.org");
        assert_eq!(config.bridge.portal_creation, PortalCreation::OnSync);
        assert_eq!(config.bridge.initial_group_members, 5);
    }

    #[test]
    fn test_invalid_matrix_values_name_the_key() {
        for (yaml, expected) in [
            ("homeserver: {address: 'ftp://x'}", "homeserver.address: \"ftp://x\" is not"),
            ("homeserver: {domain: 'a b'}", "homeserver.domain: "),
            ("homeserver: {status_endpoint: nope}", "homeserver.status_endpoint: "),
            ("appservice: {id: ''}", "appservice.id: "),
            ("appservice: {bot_localpart: Bot}", "appservice.bot_localpart: "),
            ("appservice: {sender_localpart: 'a b'}", "appservice.sender_localpart: "),
            ("appservice: {sender_localpart: qq_7}", "appservice.sender_localpart: \"qq_7\" falls"),
            (
                "appservice: {sender_localpart: qqbot}\nencryption: {bot_device: true}",
                "appservice.sender_localpart: must differ",
            ),
            ("appservice: {bot_localpart: qq_123}", "appservice.bot_localpart: \"qq_123\" falls"),
            ("appservice: {max_body_bytes: 10}", "appservice.max_body_bytes: 10 is out of"),
            ("bridge: {username_template: qq}", "bridge.username_template: \"qq\" must"),
            ("bridge: {username_template: '{qq}'}", "bridge.username_template: needs"),
            ("bridge: {username_template: 'a{qq}{qq}'}", "bridge.username_template: must"),
            ("bridge: {username_template: 'Q{qq}'}", "bridge.username_template: \"Q{qq}\" gives"),
            ("bridge: {displayname_template: ' '}", "bridge.displayname_template: "),
            ("bridge: {max_image_bytes: 1}", "bridge.max_image_bytes: 1 is out"),
            ("bridge: {max_text_bytes: 100}", "bridge.max_text_bytes: 100 is out"),
            ("bridge: {max_text_bytes: 70000}", "bridge.max_text_bytes: 70000 is out"),
            ("bridge: {portal_creation: never}", "bridge.portal_creation: unknown value"),
            ("bridge: {permissions: {'a b': user}}", "bridge.permissions: \"a b\" is not"),
            ("bridge: {permissions: {'*': root}}", "bridge.permissions.*: unknown value"),
            ("bridge: {command_prefix: ''}", "bridge.command_prefix: \"\" must"),
            ("bridge: {command_prefix: '! qq'}", "bridge.command_prefix: \"! qq\" must"),
            (
                "bridge: {enabled: true}\naccounts: [{id: a, qq: 10001, login: qr}]",
                "accounts[0].owner: required",
            ),
            ("accounts: [{id: a, qq: 10001, login: qr, owner: bob}]", "accounts[0].owner: \"bob\""),
        ] {
            let err = load(yaml).unwrap_err().to_string();
            assert!(err.starts_with(expected), "{yaml}: {err}");
        }
    }

    #[test]
    fn test_user_id_and_server_name_syntax() {
        for ok in
            ["@a:b", "@alice:example.org", "@Old.Style:host:8448", "@x:[::1]:80", "@x:1.2.3.4"]
        {
            assert!(is_valid_user_id(ok), "{ok}");
        }
        for bad in ["a:b", "@:b", "@a", "@a:", "@a b:c", "@a:b c", "@a:host:port", "@a:[zz]"] {
            assert!(!is_valid_user_id(bad), "{bad}");
        }
        assert!(is_valid_localpart("qq_1.=-/+"));
        assert!(!is_valid_localpart("Qq") && !is_valid_localpart(""));
    }
}
