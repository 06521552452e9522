//! Turns the `config` crate's and serde's errors into [`ConfigError`]s that name the key.

use super::ConfigError;

const MISSING: &str = "missing required key";

/// Turns the `config` crate's error into ours, keeping its key path. A value is quoted only
/// when the key cannot hold a password.
pub(super) fn from_config_error(error: config::ConfigError) -> ConfigError {
    match error {
        config::ConfigError::Type { unexpected, expected, key, .. } => {
            let key = key.unwrap_or_default();
            let reason = if key.contains("password") || key.contains("secret") {
                format!("invalid type: expected {expected}")
            } else {
                format!("invalid type: {unexpected}, expected {expected}")
            };
            ConfigError::Invalid { key: or_root(key), reason }
        }
        config::ConfigError::At { error, key, .. } => {
            keyed_message(key.unwrap_or_default(), error.to_string())
        }
        config::ConfigError::Message(message) => keyed_message(String::new(), message),
        config::ConfigError::NotFound(key) => ConfigError::invalid(or_root(key), MISSING),
        other => ConfigError::Syntax { reason: without_byte_offset(&other.to_string()) },
    }
}

/// A serde message (`inner`) raised inside the value at `key` (empty: the root).
fn keyed_message(key: String, inner: String) -> ConfigError {
    let join = |field: &str| {
        if key.is_empty() { field.to_owned() } else { or_root(format!("{key}.{field}")) }
    };
    if let Some(field) = backticked(&inner, "unknown field `") {
        return ConfigError::UnknownKey { key: join(field) };
    }
    if let Some(field) = backticked(&inner, "missing field `") {
        return ConfigError::invalid(join(field), MISSING);
    }
    let key = or_root(key);
    let reason = if key.contains("password") || key.contains("secret") {
        "invalid value".to_owned()
    } else {
        enum_reason(&key, &inner).unwrap_or_else(|| match inner.as_str() {
            "invalid socket address syntax" => "not an address: use \"ip:port\"".to_owned(),
            _ => inner,
        })
    };
    ConfigError::Invalid { key, reason }
}

/// Normalises a `config` crate key path: it writes `accounts[0]login` for a field inside a list
/// element; we write `accounts[0].login`. An empty path is the document root.
fn or_root(key: String) -> String {
    if key.is_empty() {
        return "(root)".to_owned();
    }
    let mut out = String::with_capacity(key.len() + 4);
    let mut after_index = false;
    for c in key.chars() {
        if after_index && c != '.' && c != '[' {
            out.push('.');
        }
        after_index = c == ']';
        out.push(c);
    }
    out
}

/// Rewrites serde's enum complaint into the accepted values of the key, when we know them.
fn enum_reason(key: &str, inner: &str) -> Option<String> {
    let (_, variant) = inner.split_once("does not have variant constructor ")?;
    let accepted = if key.ends_with("login") {
        ", expected qr, password or session_only"
    } else if key.ends_with("portal_creation") {
        ", expected on_message or on_sync"
    } else if key.ends_with("backend") {
        ", expected sqlite or postgres"
    } else {
        ""
    };
    Some(format!("unknown value {:?}{accepted}", variant.trim()))
}

/// Drops the parser's " at byte N" (line and column say the same, readably).
fn without_byte_offset(reason: &str) -> String {
    match reason.split_once(" at byte ") {
        Some((head, tail)) => {
            let rest = tail.trim_start_matches(|c: char| c.is_ascii_digit());
            format!("{head} at{rest}")
        }
        None => reason.to_owned(),
    }
}

/// The text between `prefix` and the next backtick, when `text` starts with `prefix`.
fn backticked<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    text.strip_prefix(prefix)?.split('`').next()
}
