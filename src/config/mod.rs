//! [`Config`]: `bridge.yaml` plus `QQBRIDGE__SECTION__KEY` environment overrides, one struct per
//! section, validated once at start. Every [`ConfigError`] names the key it is about.

use std::{collections::HashMap, path::Path, path::PathBuf};

use serde::Deserialize;

use crate::webqq::Secret;

mod encryption;
mod errors;
mod matrix;
mod provisioning;
mod relay;
mod sections;

pub use encryption::EncryptionConfig;
use errors::from_config_error;
pub use matrix::{
    AppserviceConfig, BridgeConfig, BridgeStatusNotices, HomeserverConfig, Permission,
    PortalCreation, QQ_PLACEHOLDER, is_valid_localpart, is_valid_server_name, is_valid_user_id,
};
pub use provisioning::ProvisioningConfig;
pub use relay::{DoublePuppetConfig, RELAY_PLACEHOLDERS, RelayConfig, RelayTemplates};
pub use sections::{
    AccountConfig, LoggingConfig, LoginMode, MetricsConfig, PollerConfig, QqConfig, RuntimeConfig,
    SenderConfig, StoreBackend, StoreConfig,
};

/// Prefix of environment overrides: `QQBRIDGE__METRICS__LISTEN=127.0.0.1:1` sets `metrics.listen`.
pub const ENV_PREFIX: &str = "QQBRIDGE";

/// Separator between prefix, section and key in environment overrides.
pub const ENV_SEPARATOR: &str = "__";

/// Longest account id: it is a metric label and a log field, so it stays short.
pub const ACCOUNT_ID_MAX_LEN: usize = 32;

/// A configuration that cannot be used. Every variant that is about a key names it as a path
/// (`qq.poll_timeout_seconds`, `accounts[1].id`). No variant ever contains a password value.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file could not be read.
    #[error("cannot read config file {}: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    /// The text is not YAML at all (no key can be named).
    #[error("config is not valid YAML: {reason}")]
    Syntax { reason: String },
    /// A key that no section has (a typo, or a key from another bridge).
    #[error("{key}: unknown key")]
    UnknownKey { key: String },
    /// A key whose value is missing, of the wrong type or out of range.
    #[error("{key}: {reason}")]
    Invalid { key: String, reason: String },
}

/// The name STYLE.md §7 uses for this boundary's error.
pub type Error = ConfigError;

impl ConfigError {
    /// The key path the error is about, if it is about one.
    pub fn key(&self) -> Option<&str> {
        match self {
            Self::UnknownKey { key } | Self::Invalid { key, .. } => Some(key),
            Self::Read { .. } | Self::Syntax { .. } => None,
        }
    }

    fn invalid(key: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Invalid { key: key.into(), reason: reason.into() }
    }
}

/// The whole configuration: one field per `bridge.yaml` section, each with defaults.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// How to reach the WebQQ service.
    pub qq: QqConfig,
    /// The QQ accounts to run, one actor tree each.
    pub accounts: Vec<AccountConfig>,
    /// Outgoing message pacing and retries.
    pub sender: SenderConfig,
    /// Poll loop backoff and relogin limits.
    pub poller: PollerConfig,
    /// Where sessions and account state persist.
    pub store: StoreConfig,
    /// The Prometheus listener.
    pub metrics: MetricsConfig,
    /// Process-level concurrency.
    pub runtime: RuntimeConfig,
    /// Tracing output.
    pub logging: LoggingConfig,
    /// The Matrix homeserver.
    pub homeserver: HomeserverConfig,
    /// The bridge as an application service of that homeserver.
    pub appservice: AppserviceConfig,
    /// How QQ appears in Matrix, and whether the Matrix side runs at all.
    pub bridge: BridgeConfig,
    /// Relay mode: Matrix users without a QQ login speaking through a portal's relay account.
    pub relay: RelayConfig,
    /// Writing as Matrix users' real accounts (their messages from other QQ clients).
    pub double_puppet: DoublePuppetConfig,
    /// The bot's own end-to-end encryption device.
    pub encryption: EncryptionConfig,
    /// The provisioning API (off unless it has a shared secret).
    pub provisioning: ProvisioningConfig,
}

impl Config {
    /// Reads `path` (or nothing: defaults only, when `None`), applies `QQBRIDGE__…` overrides
    /// from the process environment, resolves `password_env` and validates. Does file IO.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let text = match path {
            Some(path) => std::fs::read_to_string(path)
                .map_err(|source| ConfigError::Read { path: path.to_owned(), source })?,
            None => String::new(),
        };
        Self::load_from(&text, std::env::vars())
    }

    /// [`Config::load`] on given YAML text and environment (no IO): the YAML, then the
    /// `QQBRIDGE__SECTION__KEY` variables of `env`, then `password_env` lookups in `env`, then
    /// [`Config::validate`].
    pub fn load_from(
        yaml: &str,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let env: HashMap<String, String> = env.into_iter().collect();
        let overrides: config::Map<String, String> = env
            .iter()
            .filter(|(k, _)| k.starts_with(&format!("{ENV_PREFIX}{ENV_SEPARATOR}")))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let built = config::Config::builder()
            .add_source(config::File::from_str(yaml, config::FileFormat::Yaml))
            .add_source(
                config::Environment::with_prefix(ENV_PREFIX)
                    .separator(ENV_SEPARATOR)
                    .source(Some(overrides)),
            )
            .build()
            .map_err(from_config_error)?;
        let mut config: Config = built.try_deserialize().map_err(from_config_error)?;
        config.resolve_password_env(&env)?;
        config.resolve_postgres_url_env(&env)?;
        config.validate()?;
        Ok(config)
    }

    fn resolve_password_env(&mut self, env: &HashMap<String, String>) -> Result<(), ConfigError> {
        for (i, account) in self.accounts.iter_mut().enumerate() {
            let Some(var) = &account.password_env else { continue };
            if account.password.is_some() {
                return Err(ConfigError::invalid(
                    format!("accounts[{i}].password_env"),
                    "set either password or password_env, not both",
                ));
            }
            match env.get(var) {
                Some(value) if !value.is_empty() => {
                    account.password = Some(Secret::new(value.clone()));
                }
                _ => {
                    return Err(ConfigError::invalid(
                        format!("accounts[{i}].password_env"),
                        format!("environment variable {var} is not set or empty"),
                    ));
                }
            }
        }
        Ok(())
    }

    fn resolve_postgres_url_env(
        &mut self,
        env: &HashMap<String, String>,
    ) -> Result<(), ConfigError> {
        let Some(var) = &self.store.postgres_url_env else { return Ok(()) };
        match env.get(var) {
            Some(value) if !value.is_empty() => {
                self.store.postgres_url = Some(Secret::new(value.clone()));
                Ok(())
            }
            _ => Err(ConfigError::invalid(
                "store.postgres_url_env",
                format!("environment variable {var} is not set or empty"),
            )),
        }
    }

    /// Checks what serde cannot: id pattern and uniqueness, passwords for password login, the
    /// accepted range of every number, URLs, Matrix names and templates, account owners when
    /// the bridge is enabled, the PostgreSQL URL for that backend. Pure.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut seen: HashMap<&str, usize> = HashMap::new();
        for (i, account) in self.accounts.iter().enumerate() {
            let key = format!("accounts[{i}].id");
            if !is_valid_account_id(&account.id) {
                return Err(ConfigError::invalid(
                    key,
                    format!("{:?} is not a valid id: use 1 to 32 of a-z 0-9 _ -", account.id),
                ));
            }
            if let Some(first) = seen.insert(&account.id, i) {
                return Err(ConfigError::invalid(
                    key,
                    format!("duplicate id {:?} (also accounts[{first}].id)", account.id),
                ));
            }
            if account.qq < 10000 {
                return Err(ConfigError::invalid(
                    format!("accounts[{i}].qq"),
                    "not a QQ number: QQ numbers start at 10000",
                ));
            }
            if account.login == LoginMode::Password
                && account.password.as_ref().is_none_or(|p| p.expose().is_empty())
            {
                return Err(ConfigError::invalid(
                    format!("accounts[{i}].password"),
                    "login: password needs password or password_env",
                ));
            }
        }
        let (q, s, p, r) = (&self.qq, &self.sender, &self.poller, &self.runtime);
        let to_u64 = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
        let arbiters = r.arbiters.map_or(1, to_u64);
        for (key, value, min, max) in [
            ("qq.poll_timeout_seconds", q.poll_timeout_seconds, 10, 600),
            ("qq.request_timeout_seconds", q.request_timeout_seconds, 1, 300),
            ("sender.min_interval_ms", s.min_interval_ms, 0, 600_000),
            ("sender.max_retries", s.max_retries.into(), 0, 100),
            ("sender.retry_backoff_ms", s.retry_backoff_ms, 0, 600_000),
            ("poller.backoff_initial_ms", p.backoff_initial_ms, 1, 600_000),
            ("poller.backoff_max_seconds", p.backoff_max_seconds, 1, 86_400),
            ("poller.max_relogins", p.max_relogins.into(), 0, 100),
            ("poller.gap_notice_seconds", p.gap_notice_seconds, 0, 86_400),
            ("runtime.restore_concurrency", to_u64(r.restore_concurrency), 1, 100_000),
            ("runtime.arbiters", arbiters, 1, 1024),
        ] {
            if !(min..=max).contains(&value) {
                let reason = format!("{value} is out of range {min}..={max}");
                return Err(ConfigError::invalid(key, reason));
            }
        }
        if p.backoff_initial_ms > p.backoff_max_seconds.saturating_mul(1000) {
            let reason = "must not exceed poller.backoff_max_seconds";
            return Err(ConfigError::invalid("poller.backoff_initial_ms", reason));
        }
        if self.store.path.as_os_str().is_empty() {
            return Err(ConfigError::invalid("store.path", "must not be empty"));
        }
        if self.store.backend == StoreBackend::Postgres
            && self.store.postgres_url.as_ref().is_none_or(|u| u.expose().is_empty())
        {
            let reason = "backend postgres needs the name of a variable holding the URL";
            return Err(ConfigError::invalid("store.postgres_url_env", reason));
        }
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&self.logging.filter) {
            return Err(ConfigError::invalid("logging.filter", format!("not a valid filter: {e}")));
        }
        matrix::validate(self)?;
        relay::validate(&self.relay, &self.double_puppet)?;
        provisioning::validate(&self.provisioning)?;
        encryption::validate(self)
    }

    /// The accounts that are `enabled`, in file order.
    pub fn enabled_accounts(&self) -> impl Iterator<Item = &AccountConfig> {
        self.accounts.iter().filter(|a| a.enabled)
    }
}

/// Whether `id` matches `[a-z0-9_-]{1,32}`.
pub fn is_valid_account_id(id: &str) -> bool {
    (1..=ACCOUNT_ID_MAX_LEN).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(yaml: &str) -> Result<Config, ConfigError> {
        Config::load_from(yaml, std::iter::empty())
    }

    #[test]
    fn test_shipped_bridge_yaml_loads() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("bridge.yaml");
        let text = std::fs::read_to_string(&path).unwrap();
        let config = load(&text).unwrap();
        assert_eq!(config.accounts.len(), 2);
        assert_eq!(config.accounts[0].qq, 10001);
        assert_eq!(config.accounts[0].login, LoginMode::Password);
        assert_eq!(config.accounts[1].login, LoginMode::Qr);
        assert_eq!(config.sender.min_interval_ms, 3000);
        assert_eq!(config.qq.connect, Some("127.0.0.1:8443".parse().unwrap()));
        assert_eq!(config.qq.ca_cert.as_deref(), Some(Path::new("var/emulator-ca.pem")));
        assert_eq!(config.store, StoreConfig::default());
        assert_eq!(config.metrics, MetricsConfig::default());
    }

    #[test]
    fn test_empty_config_is_all_defaults() {
        let config = load("").unwrap();
        assert_eq!(config, Config::default());
        assert_eq!(config.qq.poll_timeout_seconds, 120);
        assert_eq!(config.qq.request_timeout_seconds, 15);
        assert_eq!(config.poller.backoff_max_seconds, 300);
        assert_eq!(config.metrics.listen, "127.0.0.1:9464".parse().unwrap());
        assert_eq!(config.runtime.restore_concurrency, 64);
        assert_eq!(config.store.path, PathBuf::from("var/qqbridge.sqlite3"));
        assert_eq!(config.logging.filter, "info");
    }

    #[test]
    fn test_environment_overrides_yaml() {
        let yaml = "metrics:\n  listen: 127.0.0.1:9000\nqq:\n  poll_timeout_seconds: 60\n";
        let env = "QQBRIDGE__METRICS__LISTEN=127.0.0.1:1 QQBRIDGE__METRICS__PER_ACCOUNT=false \
                   QQBRIDGE__QQ__REQUEST_TIMEOUT_SECONDS=30 QQBRIDGE_NOT_OURS=x PATH=/bin";
        let env = env.split_whitespace().map(|kv| kv.split_once('=').unwrap());
        let env = env.map(|(k, v)| (k.to_owned(), v.to_owned()));
        let config = Config::load_from(yaml, env).unwrap();
        assert_eq!(config.metrics.listen, "127.0.0.1:1".parse().unwrap());
        assert!(!config.metrics.per_account);
        assert_eq!(config.qq.poll_timeout_seconds, 60);
        assert_eq!(config.qq.request_timeout_seconds, 30);
    }

    #[test]
    fn test_unknown_environment_key_is_named() {
        let env = [("QQBRIDGE__METRICS__LISTN".to_owned(), "127.0.0.1:1".to_owned())];
        let err = Config::load_from("", env).unwrap_err();
        assert_eq!(err.to_string(), "metrics.listn: unknown key");
    }

    #[test]
    fn test_password_env_is_resolved_and_never_printed() {
        let yaml = "accounts:\n  - {id: a, qq: 10001, login: password, password_env: PW}\n";
        let config = Config::load_from(yaml, [("PW".to_owned(), "hunter2".to_owned())]).unwrap();
        let account = &config.accounts[0];
        assert_eq!(account.password.as_ref().unwrap().expose(), "hunter2");
        assert!(!format!("{config:?}").contains("hunter2"));

        let numeric = "accounts:\n  - {id: b, qq: 10002, login: password, password: 123456}\n";
        let config = load(numeric).unwrap();
        assert_eq!(config.accounts[0].password.as_ref().unwrap().expose(), "123456");

        let err = load(yaml).unwrap_err();
        assert_eq!(
            err.to_string(),
            "accounts[0].password_env: environment variable PW is not set or empty"
        );
    }

    #[test]
    fn test_postgres_url_env_is_resolved_and_never_printed() {
        let yaml = "store:\n  backend: postgres\n  postgres_url_env: PGURL\n";
        let url = "postgresql://u:hunter2@localhost/db";
        let config = Config::load_from(yaml, [("PGURL".to_owned(), url.to_owned())]).unwrap();
        assert_eq!(config.store.backend, StoreBackend::Postgres);
        assert_eq!(config.store.postgres_url.as_ref().unwrap().expose(), url);
        assert!(!format!("{config:?}").contains("hunter2"));
        let err = load(yaml).unwrap_err();
        assert_eq!(
            err.to_string(),
            "store.postgres_url_env: environment variable PGURL is not set or empty"
        );
    }

    #[test]
    fn test_errors_never_contain_the_password() {
        for yaml in [
            "accounts:\n  - {id: a, qq: 10001, login: password, password: [hunter2]}\n",
            "accounts:\n  - {id: a, qq: 10001, login: password, password: {x: hunter2}}\n",
            "accounts:\n  - {id: A, qq: 10001, login: password, password: hunter2}\n",
        ] {
            let err = load(yaml).unwrap_err();
            let text = format!("{err} {err:?}");
            assert!(!text.contains("hunter2"), "{text}");
            assert!(err.key().unwrap().starts_with("accounts[0]"), "{text}");
        }
    }

    #[test]
    fn test_account_id_pattern() {
        for id in ["a", "alice_2-x", "0", &"x".repeat(32)] {
            assert!(is_valid_account_id(id), "{id:?}");
        }
        for id in ["", "Alice", "a b", "a.b", "ä", &"x".repeat(33)] {
            assert!(!is_valid_account_id(id), "{id:?}");
        }
    }

    /// Every `tests/fixtures/bad-input/config/*.yaml` starts with `# error: <expected message>`.
    #[test]
    fn test_bad_configs_name_the_key() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bad-input/config");
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
            .collect();
        files.sort();
        assert!(files.len() >= 10, "only {} bad configs in {}", files.len(), dir.display());
        let mut failures = Vec::new();
        for file in &files {
            let text = std::fs::read_to_string(file).unwrap();
            let expected = text
                .lines()
                .next()
                .and_then(|l| l.strip_prefix("# error: "))
                .unwrap_or_else(|| panic!("{} lacks a `# error: ` first line", file.display()));
            let got = match load(&text) {
                Ok(_) => "(loaded without error)".to_owned(),
                Err(e) => e.to_string(),
            };
            if got != expected {
                failures.push(format!(
                    "{}:\n  expected: {expected}\n  got:      {got}",
                    file.display()
                ));
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }
}
