//! `list friends|groups [qq]`: an account's contacts from its session's directory, sorted,
//! one line each, at most [`LIST_LINES`].

use crate::account::manager::GetDirectory;
use crate::bridge::portal::Bridge;

use super::Commands;
use super::run::one_line;

/// Most contacts listed in one answer.
const LIST_LINES: usize = 50;

impl Commands {
    /// `list friends` / `list groups` of `account`.
    pub(super) async fn list_contacts(
        &self,
        bridge: &Bridge,
        account: &str,
        friends: bool,
    ) -> String {
        let query = GetDirectory { account: account.to_owned() };
        let Some(directory) = bridge.accounts().send(query).await.ok().flatten() else {
            return format!("The contacts of {account} are not loaded (is it connected?).");
        };
        let mut lines: Vec<String> = if friends {
            directory
                .friends
                .values()
                .map(|f| {
                    let number =
                        f.qq.map(|q| q.get().to_string()).unwrap_or_else(|| "?".to_owned());
                    format!("• {} — QQ {number}", one_line(&f.nick))
                })
                .collect()
        } else {
            directory
                .groups
                .values()
                .map(|g| {
                    let number =
                        g.number.map(|n| n.get().to_string()).unwrap_or_else(|| "?".to_owned());
                    format!("• {} — group {number}", one_line(&g.name))
                })
                .collect()
        };
        lines.sort();
        let total = lines.len();
        lines.truncate(LIST_LINES);
        let what = if friends { "friends" } else { "groups" };
        let more = total.saturating_sub(LIST_LINES);
        let tail = if more > 0 { format!("\n…and {more} more") } else { String::new() };
        format!("{total} {what} of {account}:\n{}{tail}", lines.join("\n"))
    }
}
