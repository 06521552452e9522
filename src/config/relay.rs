//! The `relay:` and `double_puppet:` sections of `bridge.yaml` (MATRIX.md §6.3, §6.4): relay
//! templates with their placeholders checked, and the double-puppet secrets (never shown).

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{ConfigError, is_valid_server_name};
use crate::webqq::Secret;

/// The placeholders a relay template may use.
pub const RELAY_PLACEHOLDERS: [&str; 3] = ["{displayname}", "{userid}", "{message}"];

/// `relay:` messages of Matrix users without a QQ login sent through a portal's relay account.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RelayConfig {
    /// Relay mode at all; off by default.
    pub enabled: bool,
    /// Only admins may pick a portal's relay account (`set-relay`); read by the commands.
    pub admin_only: bool,
    /// How a relayed message reads on QQ, per Matrix message type.
    pub templates: RelayTemplates,
}

impl Default for RelayConfig {
    fn default() -> Self {
        RelayConfig { enabled: false, admin_only: true, templates: RelayTemplates::default() }
    }
}

/// `relay.templates`: `{displayname}` (sanitised plain text), `{userid}` and `{message}`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RelayTemplates {
    /// `m.text` (and anything without its own template).
    pub text: String,
    /// `m.notice`.
    pub notice: String,
    /// `m.emote`.
    pub emote: String,
    /// The line sent before a relayed picture or sticker, naming the sender; `{message}` is
    /// the caption (often empty).
    pub image: String,
}

impl Default for RelayTemplates {
    fn default() -> Self {
        RelayTemplates {
            text: "{displayname}: {message}".to_owned(),
            notice: "{displayname}: {message}".to_owned(),
            emote: "* {displayname} {message}".to_owned(),
            image: "{displayname} sent a picture: {message}".to_owned(),
        }
    }
}

/// `double_puppet:` how the bridge writes as a Matrix user's real account.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DoublePuppetConfig {
    /// Per homeserver `server_name`: `"as_token:<token>"` of a second appservice registration
    /// (`url: null`, a non-exclusive regex over local users). A secret: `Debug` is redacted.
    pub secrets: BTreeMap<String, Secret<String>>,
}

impl DoublePuppetConfig {
    /// The appservice token for users of `server`, when one is configured.
    pub fn as_token_for(&self, server: &str) -> Option<&str> {
        self.secrets.get(server).and_then(|s| s.expose().strip_prefix("as_token:"))
    }
}

/// Checks a relay template at `key`: only known placeholders, and `{message}` when the
/// template carries text (`needs_message`).
fn check_template(key: &str, template: &str, needs_message: bool) -> Result<(), ConfigError> {
    if template.trim().is_empty() {
        return Err(ConfigError::invalid(key, "must not be empty"));
    }
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        let tail = rest.get(start..).unwrap_or_default();
        let Some(end) = tail.find('}') else {
            return Err(ConfigError::invalid(key, "has a `{` without a closing `}`"));
        };
        let placeholder = tail.get(..=end).unwrap_or_default();
        if !RELAY_PLACEHOLDERS.contains(&placeholder) {
            let reason = format!(
                "unknown placeholder {placeholder}: use {{displayname}}, {{userid}}, {{message}}"
            );
            return Err(ConfigError::invalid(key, reason));
        }
        rest = tail.get(end + 1..).unwrap_or_default();
    }
    if needs_message && !template.contains("{message}") {
        return Err(ConfigError::invalid(key, "must contain {message}"));
    }
    Ok(())
}

/// Validates `relay:` and `double_puppet:`.
pub(super) fn validate(
    relay: &RelayConfig,
    double_puppet: &DoublePuppetConfig,
) -> Result<(), ConfigError> {
    let t = &relay.templates;
    check_template("relay.templates.text", &t.text, true)?;
    check_template("relay.templates.notice", &t.notice, true)?;
    check_template("relay.templates.emote", &t.emote, true)?;
    check_template("relay.templates.image", &t.image, false)?;
    for (server, secret) in &double_puppet.secrets {
        let key = format!("double_puppet.secrets.{server}");
        if !is_valid_server_name(server) {
            return Err(ConfigError::invalid(key, "the key must be a server name"));
        }
        let token = secret.expose().strip_prefix("as_token:");
        if token.is_none_or(|t| t.trim().is_empty()) {
            // The value is a secret: the message never repeats it.
            return Err(ConfigError::invalid(key, "must be \"as_token:<token>\""));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    fn load(yaml: &str) -> Result<Config, crate::config::ConfigError> {
        Config::load_from(yaml, std::iter::empty())
    }

    #[test]
    fn test_relay_and_double_puppet_defaults() {
        let config = load("").unwrap();
        assert!(!config.relay.enabled);
        assert!(config.relay.admin_only);
        assert_eq!(config.relay.templates.text, "{displayname}: {message}");
        assert!(config.double_puppet.secrets.is_empty());
    }

    #[test]
    fn test_double_puppet_secret_is_read_and_redacted() {
        let yaml = "double_puppet: {secrets: {example.org: 'as_token:abc123'}}";
        let config = load(yaml).unwrap();
        assert_eq!(config.double_puppet.as_token_for("example.org"), Some("abc123"));
        assert_eq!(config.double_puppet.as_token_for("other.org"), None);
        let shown = format!("{:?}", config.double_puppet);
        assert!(!shown.contains("abc123"), "{shown}");
    }

    #[test]
    fn test_bad_relay_and_double_puppet_values_name_the_key() {
        for (yaml, expected) in [
            ("relay: {templates: {text: '{displayname}'}}", "relay.templates.text: must contain"),
            ("relay: {templates: {text: '{name}: {message}'}}", "relay.templates.text: unknown"),
            ("relay: {templates: {emote: '{message'}}", "relay.templates.emote: has a `{`"),
            ("relay: {templates: {image: ' '}}", "relay.templates.image: must not be empty"),
            ("double_puppet: {secrets: {x.org: 'hunter2'}}", "double_puppet.secrets.x.org: must"),
            ("double_puppet: {secrets: {x.org: 'as_token:'}}", "double_puppet.secrets.x.org: must"),
        ] {
            let err = load(yaml).unwrap_err().to_string();
            assert!(err.starts_with(expected), "{yaml}: {err}");
            assert!(!err.contains("hunter2"), "{err}");
        }
        let ok = "relay: {templates: {image: '{displayname} ({userid}) sent a picture'}}";
        assert!(load(ok).is_ok());
    }
}
