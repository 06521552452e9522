//! [`Token`]: an appservice token (`as_token`, `hs_token`) that never shows in logs, `Debug` output
//! or error messages.

use std::fmt;

/// A secret bearer token of the appservice registration (MATRIX.md §4). `Debug` and `Display`
/// print `[redacted]`; only [`Token::expose`] gives the value, for the one place that puts it on
/// the wire or compares it.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Token(String);

impl Token {
    /// Wraps a token value.
    pub fn new(value: impl Into<String>) -> Token {
        Token(value.into())
    }

    /// The token itself. Callers must not log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl From<String> for Token {
    fn from(value: String) -> Token {
        Token(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_token_is_redacted_in_debug_and_display() {
        let token = Token::new("s3cr3t-token");
        assert_eq!(format!("{token:?} {token}"), "[redacted] [redacted]");
        assert_eq!(token.expose(), "s3cr3t-token");
    }
}
