//! The `encryption` section of `bridge.yaml`: whether the bridge bot gets its own end-to-end
//! encryption device (MATRIX.md §5.3) and where that device's files live.

use std::path::PathBuf;

use serde::Deserialize;

use super::{Config, ConfigError};

/// `encryption:` the bot's own Matrix device, used to read and answer in encrypted rooms
/// (Element encrypts new DMs by default).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EncryptionConfig {
    /// Give the bot a real device (appservice login, MATRIX.md §5.3 (a)) with a persistent crypto
    /// store, so it can take part in encrypted management rooms. Only read when `bridge.enabled`.
    pub bot_device: bool,
    /// Directory of the device file (device id, token, store passphrase; 0600) and the crypto
    /// store; created with mode 0700. Losing it means a new device (old messages unreadable).
    pub data_dir: PathBuf,
}

impl Default for EncryptionConfig {
    fn default() -> Self {
        Self { bot_device: true, data_dir: PathBuf::from("var/bot-device") }
    }
}

/// The encryption part of [`Config::validate`].
pub(super) fn validate(config: &Config) -> Result<(), ConfigError> {
    let encryption = &config.encryption;
    if encryption.data_dir.as_os_str().is_empty() {
        return Err(ConfigError::invalid("encryption.data_dir", "must not be empty"));
    }
    // The store's sqlite file sits inside it: it must not be the bridge's own database file.
    if encryption.data_dir == config.store.path {
        let reason = "must be a directory of its own, not store.path";
        return Err(ConfigError::invalid("encryption.data_dir", reason));
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
    fn test_encryption_defaults_and_overrides() {
        let config = load("").unwrap();
        assert!(config.encryption.bot_device, "Element encrypts new DMs: on by default");
        assert_eq!(config.encryption.data_dir, PathBuf::from("var/bot-device"));

        let yaml = "encryption: {bot_device: false, data_dir: /srv/qq/bot}\n";
        let config = load(yaml).unwrap();
        assert!(!config.encryption.bot_device);
        assert_eq!(config.encryption.data_dir, PathBuf::from("/srv/qq/bot"));

        let env = [("QQBRIDGE__ENCRYPTION__BOT_DEVICE".to_owned(), "false".to_owned())];
        assert!(!Config::load_from("", env).unwrap().encryption.bot_device);
    }

    #[test]
    fn test_invalid_encryption_values_name_the_key() {
        for (yaml, expected) in [
            ("encryption: {data_dir: ''}", "encryption.data_dir: must not be empty"),
            (
                "store: {path: x.db}\nencryption: {data_dir: x.db}",
                "encryption.data_dir: must be a directory of its own",
            ),
            ("encryption: {bot_device: maybe}", "encryption.bot_device: invalid type"),
            ("encryption: {passphrase: x}", "encryption.passphrase: unknown key"),
        ] {
            let err = load(yaml).unwrap_err().to_string();
            assert!(err.starts_with(expected), "{yaml}: {err}");
        }
    }
}
