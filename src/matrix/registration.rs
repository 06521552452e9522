//! [`Registration`]: the appservice registration file (MATRIX.md §4) — generated from the config
//! with fresh tokens, written mode 0600, and checked against the config before the bridge runs.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::Secret;
use crate::config::Config;

/// What `generate-registration` tells the operator to run after a mismatch.
const REGENERATE: &str = "run `qqbridge generate-registration --force` and restart the homeserver";

/// A registration file that cannot be read, written or used with the config. No variant ever
/// contains a token.
#[derive(Debug, thiserror::Error)]
pub enum RegistrationError {
    /// The file could not be read.
    #[error("cannot read registration file {}: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    /// The file is not a registration.
    #[error("registration file {} is not a valid registration: {reason}", path.display())]
    Parse { path: PathBuf, reason: String },
    /// The file could not be written.
    #[error("cannot write registration file {}: {source}", path.display())]
    Write { path: PathBuf, source: std::io::Error },
    /// Refusing to overwrite an existing file (its tokens are what the homeserver knows).
    #[error(
        "registration file {} already exists: pass --force to rewrite it (keeping its tokens), \
         with --new-tokens to replace the tokens too",
        path.display()
    )]
    Exists { path: PathBuf },
    /// A field disagrees with what the config implies.
    #[error("registration {field} is {found} but the config implies {expected}: {REGENERATE}")]
    Mismatch { field: &'static str, found: String, expected: String },
    /// A field is unusable whatever the config says (an empty or repeated token).
    #[error("registration {field}: {reason}: {REGENERATE}")]
    Invalid { field: &'static str, reason: String },
}

/// One namespace entry: a regular expression and whether it is reserved for us.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Namespace {
    /// A (Python/PCRE-compatible) regular expression over full ids.
    pub regex: String,
    /// Whether only this appservice may create ids matching `regex`.
    #[serde(default)]
    pub exclusive: bool,
}

/// The three namespace lists of a registration.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Namespaces {
    /// User ids: the bot and the ghosts.
    #[serde(default)]
    pub users: Vec<Namespace>,
    /// Room aliases of portals.
    #[serde(default)]
    pub aliases: Vec<Namespace>,
    /// Room ids (unused: empty).
    #[serde(default)]
    pub rooms: Vec<Namespace>,
}

/// An appservice registration as the homeserver reads it (spec: AS API "Registration").
/// Unknown keys are ignored on read and dropped on write.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Registration {
    /// The appservice id, unique on the homeserver.
    pub id: String,
    /// Where the homeserver sends transactions; `None` (YAML null) means no traffic.
    pub url: Option<String>,
    /// Our token towards the homeserver. Never logged.
    pub as_token: Secret<String>,
    /// The homeserver's token towards us. Never logged.
    pub hs_token: Secret<String>,
    /// Localpart of the bot.
    pub sender_localpart: String,
    /// Whether the homeserver rate-limits our calls (we ask for `false`, MATRIX.md §3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limited: Option<bool>,
    /// Whether transactions carry ephemeral events.
    #[serde(default)]
    pub receive_ephemeral: bool,
    /// Older Synapse spelling of `receive_ephemeral` (MSC2409).
    #[serde(
        rename = "de.sorunome.msc2409.push_ephemeral",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub push_ephemeral: Option<bool>,
    /// The ids reserved for us.
    pub namespaces: Namespaces,
}

/// Escapes `text` so a regex matches it literally (every ASCII punctuation character that is
/// special in Python's `re` or PCRE gets a backslash).
pub fn regex_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if "\\.+*?()|[]{}^$#&-~".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// 32 random bytes from the thread's CSPRNG as 64 lowercase hex characters.
fn random_token() -> Secret<String> {
    Secret::new(hex::encode(rand::random::<[u8; 32]>()))
}

impl Namespaces {
    /// The exclusive namespaces `config` implies: the bot and the ghosts
    /// (`bridge.username_template` with `{qq}` → `[0-9]+`), aliases with the template's prefix,
    /// no rooms. Every regex is anchored at both ends.
    pub fn for_config(config: &Config) -> Namespaces {
        let domain = regex_escape(&config.homeserver.domain);
        let (prefix, suffix) = config.bridge.username_parts().unwrap_or(("", ""));
        let (prefix, suffix) = (regex_escape(prefix), regex_escape(suffix));
        let exclusive = |regex: String| Namespace { regex, exclusive: true };
        Namespaces {
            users: vec![
                exclusive(format!(
                    "^@{}:{domain}$",
                    regex_escape(&config.appservice.bot_localpart)
                )),
                exclusive(format!("^@{prefix}[0-9]+{suffix}:{domain}$")),
            ],
            aliases: vec![exclusive(format!("^#{prefix}.+:{domain}$"))],
            rooms: Vec::new(),
        }
    }
}

impl Registration {
    /// A registration for `config` with two new, different 64-hex tokens.
    pub fn generate(config: &Config) -> Registration {
        let as_token = random_token();
        let mut hs_token = random_token();
        while hs_token == as_token {
            hs_token = random_token();
        }
        let ephemeral = config.appservice.ephemeral_events;
        Registration {
            id: config.appservice.id.clone(),
            url: Some(config.appservice.address.clone()),
            as_token,
            hs_token,
            sender_localpart: config.appservice.sender_localpart.clone(),
            rate_limited: Some(false),
            receive_ephemeral: ephemeral,
            push_ephemeral: Some(ephemeral),
            namespaces: Namespaces::for_config(config),
        }
    }

    /// [`Registration::generate`] but keeping the tokens of `previous` (the homeserver and any
    /// double-puppet set-up already know them).
    pub fn regenerate(config: &Config, previous: &Registration) -> Registration {
        Registration {
            as_token: previous.as_token.clone(),
            hs_token: previous.hs_token.clone(),
            ..Self::generate(config)
        }
    }

    /// The registration as YAML, with a comment saying where it came from.
    pub fn to_yaml(&self) -> Result<String, RegistrationError> {
        let body = serde_norway::to_string(self).map_err(|e| RegistrationError::Parse {
            path: PathBuf::new(),
            reason: redact(&e.to_string()),
        })?;
        Ok(format!(
            "# Appservice registration written by `qqbridge generate-registration`; give this \
             file to the\n# homeserver (Synapse: app_service_config_files). Keep it secret: \
             it holds the tokens.\n{body}"
        ))
    }

    /// Parses a registration from YAML (JSON is YAML too).
    pub fn from_yaml(text: &str, path: &Path) -> Result<Registration, RegistrationError> {
        serde_norway::from_str(text).map_err(|e| RegistrationError::Parse {
            path: path.to_owned(),
            reason: redact(&e.to_string()),
        })
    }

    /// Reads the file at `path`. Does file IO.
    pub fn read(path: &Path) -> Result<Registration, RegistrationError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| RegistrationError::Read { path: path.to_owned(), source })?;
        Self::from_yaml(&text, path)
    }

    /// Writes the file at `path` with mode 0600, creating its directory. Does file IO.
    pub fn write(&self, path: &Path) -> Result<(), RegistrationError> {
        let text = self.to_yaml()?;
        let write_error = |source| RegistrationError::Write { path: path.to_owned(), source };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(write_error)?;
        }
        crate::store::write_private(path, text.as_bytes()).map_err(write_error)
    }

    /// Checks that this registration is the one `config` implies (id, url, bot, namespaces,
    /// ephemeral flags) and that its tokens are usable. The first disagreement is the error.
    pub fn check_against(&self, config: &Config) -> Result<(), RegistrationError> {
        let expected = Self::generate(config);
        let mismatch = |field, found: String, expected: String| {
            Err(RegistrationError::Mismatch { field, found, expected })
        };
        if self.id != expected.id {
            return mismatch("id", quote(&self.id), format!("{:?} (appservice.id)", expected.id));
        }
        if self.url != expected.url {
            let found = self.url.as_deref().map_or("null".to_owned(), quote);
            let want = format!("{} (appservice.address)", quote(&config.appservice.address));
            return mismatch("url", found, want);
        }
        if self.sender_localpart != expected.sender_localpart {
            let want = format!("{:?} (appservice.sender_localpart)", expected.sender_localpart);
            return mismatch("sender_localpart", quote(&self.sender_localpart), want);
        }
        let ns = [
            ("namespaces.users", &self.namespaces.users, &expected.namespaces.users),
            ("namespaces.aliases", &self.namespaces.aliases, &expected.namespaces.aliases),
            ("namespaces.rooms", &self.namespaces.rooms, &expected.namespaces.rooms),
        ];
        for (field, found, want) in ns {
            if found != want {
                let want = format!(
                    "{} (homeserver.domain, appservice.bot_localpart, bridge.username_template)",
                    show_namespaces(want)
                );
                return mismatch(field, show_namespaces(found), want);
            }
        }
        let ephemeral = config.appservice.ephemeral_events;
        if self.receive_ephemeral != ephemeral {
            let want = format!("{ephemeral} (appservice.ephemeral_events)");
            return mismatch("receive_ephemeral", self.receive_ephemeral.to_string(), want);
        }
        if let Some(push) = self.push_ephemeral.filter(|p| *p != ephemeral) {
            let want = format!("{ephemeral} (appservice.ephemeral_events)");
            return mismatch("de.sorunome.msc2409.push_ephemeral", push.to_string(), want);
        }
        for (field, token) in [("as_token", &self.as_token), ("hs_token", &self.hs_token)] {
            if token.expose().trim().is_empty() {
                let reason = "is empty".to_owned();
                return Err(RegistrationError::Invalid { field, reason });
            }
        }
        if self.as_token == self.hs_token {
            let reason = "equals as_token; the two tokens must differ".to_owned();
            return Err(RegistrationError::Invalid { field: "hs_token", reason });
        }
        Ok(())
    }
}

/// What `generate-registration` did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Generated {
    /// A new file with new tokens.
    Created,
    /// An existing file rewritten with its tokens kept.
    RewrittenKeepingTokens,
    /// An existing file rewritten with new tokens.
    RewrittenWithNewTokens,
}

/// `qqbridge generate-registration`: writes the registration for `config` at `path`. An
/// existing file is an error unless `force`; with `force` its tokens are kept unless
/// `new_tokens`. Does file IO.
pub fn generate_file(
    config: &Config,
    path: &Path,
    force: bool,
    new_tokens: bool,
) -> Result<Generated, RegistrationError> {
    let (registration, outcome) = if !path.exists() {
        (Registration::generate(config), Generated::Created)
    } else if !force {
        return Err(RegistrationError::Exists { path: path.to_owned() });
    } else if new_tokens {
        (Registration::generate(config), Generated::RewrittenWithNewTokens)
    } else {
        let previous = Registration::read(path)?;
        (Registration::regenerate(config, &previous), Generated::RewrittenKeepingTokens)
    };
    registration.write(path)?;
    Ok(outcome)
}

fn quote(text: &str) -> String {
    format!("{text:?}")
}

fn show_namespaces(list: &[Namespace]) -> String {
    let items: Vec<String> = list
        .iter()
        .map(|n| format!("{:?}{}", n.regex, if n.exclusive { "" } else { " (not exclusive)" }))
        .collect();
    format!("[{}]", items.join(", "))
}

/// A YAML error about a token field could quote its value: drop the message then.
fn redact(reason: &str) -> String {
    if reason.contains("token") {
        "a token field (as_token or hs_token) is not a string".to_owned()
    } else {
        reason.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(yaml: &str) -> Config {
        Config::load_from(yaml, std::iter::empty()).unwrap()
    }

    #[test]
    fn test_generate_matches_the_design_example() {
        let config = config("homeserver: {domain: example.org}\n");
        let reg = Registration::generate(&config);
        let (a, h) = (reg.as_token.expose(), reg.hs_token.expose());
        assert_eq!((a.len(), h.len()), (64, 64));
        assert!(a.bytes().chain(h.bytes()).all(|b| b.is_ascii_hexdigit()));
        assert_ne!(a, h);
        let users: Vec<&str> = reg.namespaces.users.iter().map(|n| n.regex.as_str()).collect();
        assert_eq!(users, ["^@qqbot:example\\.org$", "^@qq_[0-9]+:example\\.org$"]);
        assert_eq!(reg.namespaces.aliases[0].regex, "^#qq_.+:example\\.org$");
        assert!(reg.namespaces.users.iter().chain(&reg.namespaces.aliases).all(|n| n.exclusive));
        let yaml = reg.to_yaml().unwrap();
        for line in [
            "id: qqbridge",
            "url: http://127.0.0.1:29340",
            "sender_localpart: qqbridge",
            "rate_limited: false",
            "receive_ephemeral: true",
            "de.sorunome.msc2409.push_ephemeral: true",
            "  rooms: []",
        ] {
            assert!(yaml.lines().any(|l| l == line), "{line:?} missing in\n{yaml}");
        }
        assert!(!format!("{reg:?}").contains(a.as_str()));
    }

    /// ruma's own type (what the appservice server will be configured from) reads our file.
    #[test]
    fn test_ruma_reads_the_generated_yaml() {
        let reg = Registration::generate(&config("appservice: {ephemeral_events: false}"));
        let yaml = reg.to_yaml().unwrap();
        let theirs: ruma::api::appservice::Registration = serde_norway::from_str(&yaml).unwrap();
        assert_eq!(theirs.id, reg.id);
        assert_eq!(theirs.url, reg.url);
        assert_eq!(&theirs.as_token, reg.as_token.expose());
        assert_eq!(&theirs.hs_token, reg.hs_token.expose());
        assert_eq!(theirs.sender_localpart, "qqbridge");
        assert_eq!(theirs.rate_limited, Some(false));
        assert!(!theirs.receive_ephemeral);
        let users: Vec<_> =
            theirs.namespaces.users.iter().map(|n| (&n.regex, n.exclusive)).collect();
        let ours: Vec<_> = reg.namespaces.users.iter().map(|n| (&n.regex, n.exclusive)).collect();
        assert_eq!(users, ours);
        assert_eq!(theirs.namespaces.aliases.len(), 1);
        assert!(theirs.namespaces.rooms.is_empty());
    }

    #[test]
    fn test_template_and_domain_are_escaped() {
        let config =
            config("homeserver: {domain: 'h-1.x:8448'}\nbridge: {username_template: 'q.q+{qq}_x'}");
        let ns = Namespaces::for_config(&config);
        assert_eq!(ns.users[1].regex, "^@q\\.q\\+[0-9]+_x:h\\-1\\.x:8448$");
        assert_eq!(ns.aliases[0].regex, "^#q\\.q\\+.+:h\\-1\\.x:8448$");
    }

    #[test]
    fn test_yaml_round_trip_and_file_mode() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/registration.yaml");
        let reg = Registration::generate(&config(""));
        reg.write(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let back = Registration::read(&path).unwrap();
        assert_eq!(back, reg);
        back.check_against(&config("")).unwrap();
    }

    #[test]
    fn test_check_against_names_the_field() {
        let reg = Registration::generate(&config(""));
        for (yaml, field) in [
            ("appservice: {id: other}", "registration id is \"qqbridge\""),
            ("appservice: {address: 'http://10.0.0.1:1'}", "registration url is"),
            ("appservice: {sender_localpart: as}", "registration sender_localpart is \"qqbridge\""),
            ("appservice: {bot_localpart: bot}", "registration namespaces.users is"),
            ("homeserver: {domain: example.org}", "registration namespaces.users is"),
            ("bridge: {username_template: 'qqx_{qq}'}", "registration namespaces.users is"),
            ("appservice: {ephemeral_events: false}", "registration receive_ephemeral is true"),
        ] {
            let err = reg.check_against(&config(yaml)).unwrap_err().to_string();
            assert!(err.starts_with(field), "{yaml}: {err}");
            assert!(err.ends_with(REGENERATE), "{err}");
        }
        let mut same = reg.clone();
        same.hs_token = same.as_token.clone();
        let err = same.check_against(&config("")).unwrap_err().to_string();
        assert!(err.starts_with("registration hs_token: equals as_token"), "{err}");
        assert!(!err.contains(reg.as_token.expose().as_str()));
        let mut aliases = reg;
        aliases.namespaces.aliases[0].exclusive = false;
        let err = aliases.check_against(&config("")).unwrap_err().to_string();
        assert!(err.contains("(not exclusive)"), "{err}");
    }

    #[test]
    fn test_generate_file_keeps_tokens_unless_asked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("registration.yaml");
        let first = config("");
        assert_eq!(generate_file(&first, &path, false, false).unwrap(), Generated::Created);
        let original = Registration::read(&path).unwrap();
        let err = generate_file(&first, &path, false, false).unwrap_err();
        assert!(matches!(err, RegistrationError::Exists { .. }), "{err}");

        let moved = config("appservice: {address: 'http://127.0.0.1:1'}");
        let outcome = generate_file(&moved, &path, true, false).unwrap();
        assert_eq!(outcome, Generated::RewrittenKeepingTokens);
        let kept = Registration::read(&path).unwrap();
        assert_eq!((&kept.as_token, &kept.hs_token), (&original.as_token, &original.hs_token));
        assert_eq!(kept.url.as_deref(), Some("http://127.0.0.1:1"));

        let outcome = generate_file(&moved, &path, true, true).unwrap();
        assert_eq!(outcome, Generated::RewrittenWithNewTokens);
        let fresh = Registration::read(&path).unwrap();
        assert_ne!(fresh.as_token, original.as_token);
        fresh.check_against(&moved).unwrap();
    }

    #[test]
    fn test_parse_errors_never_show_tokens() {
        let text = "id: a\nurl: null\nas_token: [s3cr3t]\nhs_token: b\nsender_localpart: c\n\
                    namespaces: {}\n";
        let err = Registration::from_yaml(text, Path::new("r.yaml")).unwrap_err().to_string();
        assert!(!err.contains("s3cr3t"), "{err}");
        let reg = Registration::from_yaml(
            "id: a\nurl: null\nas_token: x\nhs_token: y\nsender_localpart: c\nnamespaces: {}\n\
             io.element.msc4190: true\n",
            Path::new("r.yaml"),
        )
        .unwrap();
        assert_eq!(reg.url, None);
        assert!(!reg.receive_ephemeral);
    }
}
