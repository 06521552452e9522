//! The bot's device file (`device.json`, 0600, in a 0700 directory): user id, device id, access
//! token and crypto-store passphrase of the bot's own device, and the appservice login that
//! creates the device (MATRIX.md §5.3 (a)).

use std::fmt;
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use rand::RngCore as _;
use ruma::{OwnedDeviceId, OwnedUserId, UserId};
use serde::{Deserialize, Serialize};
use url::Url;

use super::BotError;
use crate::matrix::Token;

/// Name of the device file inside the bot's data directory.
pub const DEVICE_FILE: &str = "device.json";

/// Name of the matrix-sdk sqlite store directory inside the bot's data directory.
pub const STORE_DIR: &str = "store";

/// Longest error text kept from a homeserver answer.
const MAX_ERROR_TEXT_CHARS: usize = 300;

/// The persisted identity of the bot's device. `Debug` hides the token and the passphrase.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceFile {
    /// The bot's user id (the appservice's `sender_localpart` on our server).
    pub user_id: OwnedUserId,
    /// The device the appservice login created.
    pub device_id: OwnedDeviceId,
    /// That device's access token (secret).
    pub access_token: String,
    /// Passphrase of the sqlite crypto store (secret, random, made with the device).
    pub store_passphrase: String,
}

impl fmt::Debug for DeviceFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceFile")
            .field("user_id", &self.user_id)
            .field("device_id", &self.device_id)
            .field("access_token", &"[redacted]")
            .field("store_passphrase", &"[redacted]")
            .finish()
    }
}

/// A new random store passphrase: 32 random bytes, hex.
pub fn new_passphrase() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// Creates `dir` (and parents) if missing and sets it to mode 0700. Does file IO.
pub fn prepare_dir(dir: &Path) -> Result<(), BotError> {
    let io = |source| BotError::Io { path: dir.to_owned(), source };
    std::fs::create_dir_all(dir).map_err(io)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(io)
}

/// Reads the device file at `path`: `Ok(None)` when there is none, an error naming the file when
/// it cannot be read or is not a device file. A file readable by others is narrowed to 0600.
pub fn read(path: &Path) -> Result<Option<DeviceFile>, BotError> {
    let io = |source| BotError::Io { path: path.to_owned(), source };
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(e)),
    };
    let mode = std::fs::metadata(path).map_err(io)?.permissions().mode();
    if mode & 0o077 != 0 {
        tracing::warn!(path = %path.display(), mode = format!("{:o}", mode & 0o777), "bot device file was readable by others; set to 0600");
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
    }
    // serde_json's messages quote no input beyond a line and column, so no secret leaks here.
    let device: DeviceFile = serde_json::from_str(&text).map_err(|e| {
        BotError::CorruptDeviceFile { path: path.to_owned(), reason: e.to_string() }
    })?;
    if device.access_token.is_empty() || device.store_passphrase.is_empty() {
        let reason = "empty access_token or store_passphrase".to_owned();
        return Err(BotError::CorruptDeviceFile { path: path.to_owned(), reason });
    }
    Ok(Some(device))
}

/// Writes `device` to `path` as JSON with mode 0600, atomically (a temporary file renamed over
/// the old one, so a crash never leaves half a file). Does file IO.
pub fn write(path: &Path, device: &DeviceFile) -> Result<(), BotError> {
    let tmp = temp_path(path);
    let io = |source| BotError::Io { path: tmp.clone(), source };
    let json = serde_json::to_vec_pretty(device).map_err(|e| BotError::CorruptDeviceFile {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io)?;
    // The mode given to open() applies only to a new file; a leftover temporary keeps its own.
    file.set_permissions(std::fs::Permissions::from_mode(0o600)).map_err(io)?;
    file.write_all(&json).map_err(io)?;
    file.sync_all().map_err(io)?;
    std::fs::rename(&tmp, path).map_err(|source| BotError::Io { path: path.to_owned(), source })
}

fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().map(ToOwned::to_owned).unwrap_or_default();
    name.push(".tmp");
    path.with_file_name(name)
}

/// What `POST /login` answers.
#[derive(Deserialize)]
struct LoginResponse {
    user_id: OwnedUserId,
    device_id: OwnedDeviceId,
    access_token: String,
}

/// Logs the bot in with `m.login.application_service` (authenticated by the as_token), which
/// creates a new device; returns the device file for it with a new store passphrase. Network IO.
pub async fn login(
    http: &reqwest::Client,
    homeserver: &Url,
    user_id: &UserId,
    as_token: &Token,
    display_name: &str,
) -> Result<DeviceFile, BotError> {
    let url = homeserver
        .join("_matrix/client/v3/login")
        .map_err(|e| BotError::Settings(format!("homeserver URL: {e}")))?;
    let body = serde_json::json!({
        "type": "m.login.application_service",
        "identifier": {"type": "m.id.user", "user": user_id.as_str()},
        "initial_device_display_name": display_name,
    });
    let network = |e: reqwest::Error| BotError::Network(e.without_url().to_string());
    let response =
        http.post(url).bearer_auth(as_token.expose()).json(&body).send().await.map_err(network)?;
    let status = response.status().as_u16();
    let bytes = response.bytes().await.map_err(network)?;
    if !(200..300).contains(&status) {
        let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
        let errcode = body.get("errcode").and_then(|v| v.as_str()).map(ToOwned::to_owned);
        let message: String = match body.get("error").and_then(|v| v.as_str()) {
            Some(text) => text.chars().take(MAX_ERROR_TEXT_CHARS).collect(),
            None => "(no error text)".to_owned(),
        };
        return Err(BotError::Login { status, errcode, message });
    }
    let answer: LoginResponse = serde_json::from_slice(&bytes).map_err(|e| BotError::Login {
        status,
        errcode: None,
        message: format!("unreadable answer: {e}"),
    })?;
    if answer.user_id != user_id {
        let message = format!("logged in as {} instead of {user_id}", answer.user_id);
        return Err(BotError::Login { status, errcode: None, message });
    }
    Ok(DeviceFile {
        user_id: answer.user_id,
        device_id: answer.device_id,
        access_token: answer.access_token,
        store_passphrase: new_passphrase(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> DeviceFile {
        DeviceFile {
            user_id: "@qqbot:localhost".try_into().unwrap(),
            device_id: "ABCDEFGHIJ".into(),
            access_token: "syt_secret_token".to_owned(),
            store_passphrase: new_passphrase(),
        }
    }

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn test_device_file_round_trips_with_private_modes() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("bot");
        prepare_dir(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
        let path = dir.join(DEVICE_FILE);
        assert!(read(&path).unwrap().is_none());

        let device = sample();
        write(&path, &device).unwrap();
        assert_eq!(mode(&path), 0o600);
        assert_eq!(read(&path).unwrap(), Some(device.clone()));
        assert!(!temp_path(&path).exists());

        // Overwriting keeps the mode, and a loosened file is narrowed again on read.
        let mut other = device;
        other.device_id = "OTHERDEV".into();
        write(&path, &other).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(read(&path).unwrap().unwrap().device_id, "OTHERDEV");
        assert_eq!(mode(&path), 0o600);

        // An existing directory with a loose mode is narrowed too.
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        prepare_dir(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
    }

    #[test]
    fn test_corrupt_device_file_is_a_clear_error() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join(DEVICE_FILE);
        let valid = serde_json::to_string(&sample()).unwrap();
        let missing = valid.replace("\"device_id\"", "\"device\"");
        let empty =
            serde_json::to_string(&DeviceFile { access_token: String::new(), ..sample() }).unwrap();
        for (text, expected) in [
            ("{not json", "key must be a string"),
            ("", "EOF while parsing"),
            (missing.as_str(), "missing field `device_id`"),
            (r#"{"user_id": "nobody"}"#, "leading sigil is incorrect"),
            (empty.as_str(), "empty access_token or store_passphrase"),
        ] {
            std::fs::write(&path, text).unwrap();
            let err = read(&path).unwrap_err();
            let message = err.to_string();
            assert!(matches!(err, BotError::CorruptDeviceFile { .. }), "{text}: {message}");
            assert!(message.contains(expected), "{text}: {message}");
            assert!(message.contains(&path.display().to_string()), "{message}");
            assert!(!message.contains("syt_secret_token"), "{message}");
        }
    }

    #[test]
    fn test_debug_hides_secrets_and_passphrases_differ() {
        let device = sample();
        let debug = format!("{device:?}");
        assert!(debug.contains("ABCDEFGHIJ") && debug.contains("[redacted]"), "{debug}");
        assert!(!debug.contains("syt_secret_token") && !debug.contains(&device.store_passphrase));
        assert_eq!(device.store_passphrase.len(), 64);
        assert_ne!(new_passphrase(), new_passphrase());
    }
}
