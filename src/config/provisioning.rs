//! The `provisioning:` section of `bridge.yaml` (MATRIX.md §6.8): the shared secret that opens
//! the provisioning API (never shown) and its per-user rate.

use serde::Deserialize;

use super::ConfigError;
use crate::webqq::Secret;

/// Shortest accepted shared secret, in characters.
pub const MIN_SHARED_SECRET: usize = 16;

/// `provisioning:` the HTTP API for dashboards and integration managers.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProvisioningConfig {
    /// `Authorization: Bearer` secret of `/_matrix/provision/v3/…`; unset turns the API off.
    /// A secret: `Debug` is redacted and errors never repeat it.
    pub shared_secret: Option<Secret<String>>,
    /// Requests per minute one Matrix user may make.
    pub requests_per_minute: u32,
}

impl Default for ProvisioningConfig {
    fn default() -> Self {
        ProvisioningConfig { shared_secret: None, requests_per_minute: 60 }
    }
}

/// Checks the section.
pub(super) fn validate(provisioning: &ProvisioningConfig) -> Result<(), ConfigError> {
    if let Some(secret) = &provisioning.shared_secret
        && secret.expose().chars().count() < MIN_SHARED_SECRET
    {
        let reason = format!("must be at least {MIN_SHARED_SECRET} characters (or unset: off)");
        return Err(ConfigError::invalid("provisioning.shared_secret", reason));
    }
    if !(1..=10_000).contains(&provisioning.requests_per_minute) {
        return Err(ConfigError::invalid(
            "provisioning.requests_per_minute",
            "accepted: 1..=10000",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    #[test]
    fn test_provisioning_defaults_values_and_errors() {
        let config = Config::load_from("", std::iter::empty()).unwrap();
        assert_eq!(config.provisioning.shared_secret, None);
        assert_eq!(config.provisioning.requests_per_minute, 60);
        let yaml = "provisioning: {shared_secret: \"0123456789abcdef\", requests_per_minute: 5}";
        let config = Config::load_from(yaml, std::iter::empty()).unwrap();
        assert_eq!(
            config.provisioning.shared_secret.as_ref().unwrap().expose(),
            "0123456789abcdef"
        );
        assert!(!format!("{:?}", config.provisioning).contains("0123456789abcdef"));
        for (yaml, expected) in [
            (
                "provisioning: {shared_secret: short-secret}",
                "provisioning.shared_secret: must be at least 16",
            ),
            (
                "provisioning: {requests_per_minute: 0}",
                "provisioning.requests_per_minute: accepted",
            ),
            ("provisioning: {secret: x}", "provisioning.secret: unknown key"),
        ] {
            let error = Config::load_from(yaml, std::iter::empty()).unwrap_err().to_string();
            assert!(error.contains(expected), "{yaml}: {error}");
            assert!(!error.contains("short-secret"), "the secret is never repeated: {error}");
        }
    }
}
