//! The bot's command language (MATRIX.md §6.1): strict parsing of one message into a
//! [`Command`], where each command may run, who may run it, and the help text. Pure.

use crate::config::Permission;

/// Longest command message read; a longer one is refused unread.
pub const MAX_COMMAND_BYTES: usize = 4096;

/// One bot command with its arguments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// `help`: every command with one line.
    Help,
    /// `version`.
    Version,
    /// `ping`: bridge and homeserver reachability.
    Ping,
    /// `login qr`.
    LoginQr,
    /// `login password <qq>`.
    LoginPassword(u64),
    /// `cancel`: abort the login in progress.
    Cancel,
    /// `logout [qq]`.
    Logout(Option<u64>),
    /// `relogin [qq]`.
    Relogin(Option<u64>),
    /// `list-logins` / `status`.
    ListLogins,
    /// `sync [qq]`.
    Sync(Option<u64>),
    /// `list friends [qq]`.
    ListFriends(Option<u64>),
    /// `list groups [qq]`.
    ListGroups(Option<u64>),
    /// `start-chat <qq number>`.
    StartChat(u64),
    /// `set-relay [qq]`: relay this group portal's non-QQ users through that account.
    SetRelay(Option<u64>),
    /// `unset-relay`.
    UnsetRelay,
    /// `bridge <group>`: make this plain room the group's portal.
    Bridge(u64),
    /// `unbridge`: make this portal a plain room again (its owner or an admin).
    Unbridge,
}

/// Where a command may run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Place {
    /// Anywhere the bot reads commands.
    Anywhere,
    /// Only in the sender's management room (a DM with the bot): QR codes and passwords must
    /// not be shown to, or typed before, other people.
    Management,
    /// Only in a portal.
    Portal,
}

/// What a message is, read as a command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Parsed {
    /// Not addressed to the bot (a portal message without the prefix).
    NotCommand,
    /// A command.
    Command(Command),
    /// Addressed to the bot but wrong: the reason, for a reply.
    Invalid(String),
    /// An unknown command word: answered with help.
    Unknown(String),
}

/// One line per command, in help order: (usage, what it does).
pub const HELP: &[(&str, &str)] = &[
    ("help", "list the commands"),
    ("version", "the bridge's version"),
    ("ping", "check that the bridge and the homeserver answer"),
    ("login qr", "log a QQ account in by scanning a QR code with the QQ app"),
    ("login password <qq>", "log a QQ account in with its password (asked next, then redacted)"),
    ("cancel", "abort the login in progress"),
    ("logout [qq]", "end a QQ account's session and stop bridging it"),
    ("relogin [qq]", "force a fresh session for a QQ account"),
    ("list-logins", "each of your QQ accounts with its state (alias: status)"),
    ("sync [qq]", "refresh friends and groups and create missing portals"),
    ("list friends|groups [qq]", "list the friends or groups of a QQ account"),
    ("start-chat <qq number>", "open a direct chat portal with a QQ friend"),
    ("set-relay [qq]", "relay messages of users without QQ through your account here (admin)"),
    ("unset-relay", "stop relaying in this portal (admin)"),
    ("bridge <group number>", "attach this room to a QQ group (admin)"),
    ("unbridge", "detach this portal from its QQ group (its owner or an admin)"),
];

/// The help text: every command with one line, commands written with `prefix` when given.
pub fn help_text(prefix: Option<&str>) -> String {
    let mut text = String::from("Commands:\n");
    for (usage, what) in HELP {
        match prefix {
            Some(prefix) => text.push_str(&format!("• {prefix} {usage} — {what}\n")),
            None => text.push_str(&format!("• {usage} — {what}\n")),
        }
    }
    text
}

impl Command {
    /// The least permission that may run it.
    pub fn level(&self) -> Permission {
        match self {
            Command::Help | Command::Version | Command::Ping => Permission::Relay,
            Command::SetRelay(_) | Command::UnsetRelay | Command::Bridge(_) => Permission::Admin,
            // `unbridge` is also the portal owner's: `bridging.rs` checks who owns it.
            _ => Permission::User,
        }
    }

    /// Where it may run.
    pub fn place(&self) -> Place {
        match self {
            Command::LoginQr | Command::LoginPassword(_) => Place::Management,
            Command::SetRelay(_) | Command::UnsetRelay | Command::Unbridge => Place::Portal,
            _ => Place::Anywhere,
        }
    }
}

/// Reads `text` as a command. In the management room every message is one (the prefix may
/// still be written); elsewhere only `<prefix> <command>` is. Arguments are split on spaces;
/// a newline or other control character anywhere inside the command is an error (a newline
/// smuggles a second command into a log or a reply: CVE-2023-38690), as is any argument the
/// command does not take.
pub fn parse(text: &str, prefix: &str, in_management: bool) -> Parsed {
    let trimmed = text.trim();
    let body = match trimmed.strip_prefix(prefix) {
        Some(rest) if rest.is_empty() || rest.starts_with(char::is_whitespace) => rest.trim_start(),
        _ if in_management => trimmed,
        _ => return Parsed::NotCommand,
    };
    if text.len() > MAX_COMMAND_BYTES {
        return Parsed::Invalid(format!("the command is longer than {MAX_COMMAND_BYTES} bytes."));
    }
    if body.chars().any(char::is_control) {
        return Parsed::Invalid("a command and its arguments must be on one line.".to_owned());
    }
    let words: Vec<&str> = body.split(' ').filter(|w| !w.is_empty()).collect();
    let Some((&word, args)) = words.split_first() else {
        return Parsed::Command(Command::Help);
    };
    match command(&word.to_lowercase(), args) {
        Ok(Some(command)) => Parsed::Command(command),
        Ok(None) => Parsed::Unknown(word.to_owned()),
        Err(reason) => Parsed::Invalid(reason),
    }
}

/// The command `word` with `args`; `Ok(None)` for an unknown word.
fn command(word: &str, args: &[&str]) -> Result<Option<Command>, String> {
    let command = match word {
        "help" => none(word, args, Command::Help)?,
        "version" => none(word, args, Command::Version)?,
        "ping" => none(word, args, Command::Ping)?,
        "cancel" => none(word, args, Command::Cancel)?,
        "list-logins" | "status" => none(word, args, Command::ListLogins)?,
        "set-relay" => Command::SetRelay(optional_qq(word, args)?),
        "unset-relay" => none(word, args, Command::UnsetRelay)?,
        "unbridge" => none(word, args, Command::Unbridge)?,
        "logout" => Command::Logout(optional_qq(word, args)?),
        "relogin" => Command::Relogin(optional_qq(word, args)?),
        "sync" => Command::Sync(optional_qq(word, args)?),
        "start-chat" => Command::StartChat(one_qq(word, args)?),
        "bridge" => Command::Bridge(one_qq(word, args)?),
        "login" => match args {
            ["qr"] => Command::LoginQr,
            ["password", rest @ ..] => Command::LoginPassword(one_qq("login password", rest)?),
            _ => return Err("usage: login qr, or login password <qq>".to_owned()),
        },
        "list" => match args {
            ["friends", rest @ ..] => Command::ListFriends(optional_qq("list friends", rest)?),
            ["groups", rest @ ..] => Command::ListGroups(optional_qq("list groups", rest)?),
            _ => return Err("usage: list friends [qq], or list groups [qq]".to_owned()),
        },
        _ => return Ok(None),
    };
    Ok(Some(command))
}

fn none(word: &str, args: &[&str], command: Command) -> Result<Command, String> {
    match args.first() {
        None => Ok(command),
        Some(extra) => Err(format!("{word} takes no arguments (got {:?}).", excerpt(extra))),
    }
}

fn optional_qq(word: &str, args: &[&str]) -> Result<Option<u64>, String> {
    match args {
        [] => Ok(None),
        [qq] => qq_number(qq).map(Some),
        _ => Err(format!("usage: {word} [qq]")),
    }
}

fn one_qq(word: &str, args: &[&str]) -> Result<u64, String> {
    match args {
        [qq] => qq_number(qq),
        _ => Err(format!("usage: {word} <qq number>")),
    }
}

/// A QQ number: 5 to 11 digits, no leading zero (QQ numbers start at 10000).
pub fn qq_number(text: &str) -> Result<u64, String> {
    let digits = (5..=11).contains(&text.len())
        && text.bytes().all(|b| b.is_ascii_digit())
        && !text.starts_with('0');
    match text.parse::<u64>() {
        Ok(qq) if digits => Ok(qq),
        _ => Err(format!("{:?} is not a QQ number.", excerpt(text))),
    }
}

/// At most 32 characters of `text`, for an error message.
fn excerpt(text: &str) -> &str {
    match text.char_indices().nth(32) {
        Some((end, _)) => text.get(..end).unwrap_or(text),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(c: Command) -> Parsed {
        Parsed::Command(c)
    }

    fn invalid(text: &str) -> Parsed {
        Parsed::Invalid(text.to_owned())
    }

    #[test]
    fn test_parse_table() {
        // (text, in the management room, expected)
        let cases: Vec<(&str, bool, Parsed)> = vec![
            ("help", true, cmd(Command::Help)),
            ("  HELP ", true, cmd(Command::Help)),
            ("", true, cmd(Command::Help)),
            ("!qq", false, cmd(Command::Help)),
            ("!qq help", true, cmd(Command::Help)),
            ("!qq   version", false, cmd(Command::Version)),
            ("help", false, Parsed::NotCommand),
            ("!qqhelp", false, Parsed::NotCommand),
            ("hello there", false, Parsed::NotCommand),
            ("ping", true, cmd(Command::Ping)),
            ("login qr", true, cmd(Command::LoginQr)),
            ("login password 10001", true, cmd(Command::LoginPassword(10001))),
            ("login password", true, invalid("usage: login password <qq number>")),
            ("login password 123", true, invalid("\"123\" is not a QQ number.")),
            ("login password 012345", true, invalid("\"012345\" is not a QQ number.")),
            ("login password 10001 10002", true, invalid("usage: login password <qq number>")),
            ("login", true, invalid("usage: login qr, or login password <qq>")),
            ("login sms", true, invalid("usage: login qr, or login password <qq>")),
            ("cancel", true, cmd(Command::Cancel)),
            ("cancel now", true, invalid("cancel takes no arguments (got \"now\").")),
            ("logout", true, cmd(Command::Logout(None))),
            ("logout 10001", true, cmd(Command::Logout(Some(10001)))),
            ("logout me", true, invalid("\"me\" is not a QQ number.")),
            ("relogin 10001", true, cmd(Command::Relogin(Some(10001)))),
            ("list-logins", true, cmd(Command::ListLogins)),
            ("status", true, cmd(Command::ListLogins)),
            ("sync", true, cmd(Command::Sync(None))),
            ("list friends", true, cmd(Command::ListFriends(None))),
            ("list groups 10001", true, cmd(Command::ListGroups(Some(10001)))),
            ("list", true, invalid("usage: list friends [qq], or list groups [qq]")),
            ("list friends 1 2", true, invalid("usage: list friends [qq]")),
            ("start-chat 10002", true, cmd(Command::StartChat(10002))),
            ("start-chat", true, invalid("usage: start-chat <qq number>")),
            ("!qq set-relay", false, cmd(Command::SetRelay(None))),
            ("!qq set-relay 10001", false, cmd(Command::SetRelay(Some(10001)))),
            ("unset-relay", true, cmd(Command::UnsetRelay)),
            ("bridge 20001", true, cmd(Command::Bridge(20001))),
            ("unbridge", true, cmd(Command::Unbridge)),
            ("frobnicate", true, Parsed::Unknown("frobnicate".to_owned())),
            ("!qq frobnicate", false, Parsed::Unknown("frobnicate".to_owned())),
            ("login qr\nlogout", true, invalid("a command and its arguments must be on one line.")),
            ("logout 10001\rx", true, invalid("a command and its arguments must be on one line.")),
            ("help\tme", true, invalid("a command and its arguments must be on one line.")),
        ];
        for (text, management, want) in cases {
            assert_eq!(parse(text, "!qq", management), want, "{text:?}");
        }
    }

    #[test]
    fn test_oversized_commands_are_refused_unread() {
        let long = format!("logout {}", "1".repeat(MAX_COMMAND_BYTES));
        assert_eq!(parse(&long, "!qq", true), invalid("the command is longer than 4096 bytes."));
        // A long portal message that is no command stays ordinary text.
        assert_eq!(parse(&"x".repeat(5000), "!qq", false), Parsed::NotCommand);
    }

    #[test]
    fn test_levels_and_places() {
        assert_eq!(Command::Help.level(), Permission::Relay);
        assert_eq!(Command::LoginQr.level(), Permission::User);
        assert_eq!(Command::SetRelay(None).level(), Permission::Admin);
        assert_eq!(Command::Bridge(1).level(), Permission::Admin);
        assert_eq!(Command::Unbridge.level(), Permission::User);
        assert_eq!(Command::LoginPassword(10001).place(), Place::Management);
        assert_eq!(Command::LoginQr.place(), Place::Management);
        assert_eq!(Command::Unbridge.place(), Place::Portal);
        assert_eq!(Command::ListLogins.place(), Place::Anywhere);
    }

    #[test]
    fn test_help_lists_each_command_on_one_line() {
        let text = help_text(Some("!qq"));
        assert_eq!(text.lines().count(), HELP.len() + 1);
        for word in ["login qr", "login password", "set-relay", "unbridge", "start-chat", "status"]
        {
            assert!(text.contains(word), "{word} missing from help");
        }
        assert!(text.contains("• !qq ping —"));
        assert!(help_text(None).contains("• ping —"));
    }
}
