//! Names users type: network names and node (host) names share one rule. The coordinator
//! enforces it; the daemon checks a host name with it before it sends one.
//!
//! A name is 1–63 characters of ASCII letters, digits, `-`, `_` and `.`, starting with a letter or
//! a digit (so it never looks like a command-line flag or a relative path). Names are
//! case-insensitive: they are normalised to lowercase before they are stored or compared, so
//! `LAN-Party` and `lan-party` are the same network.

use std::fmt;

/// The longest name, in characters (a DNS label's limit, so names can become host names later).
pub const MAX_NAME_LEN: usize = 63;

/// What a name names, for error messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameKind {
    Network,
    Node,
}

impl fmt::Display for NameKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NameKind::Network => "network",
            NameKind::Node => "host",
        })
    }
}

/// Why a name was refused; the `Display` text is a hint for the user.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameProblem {
    Empty,
    TooLong,
    BadFirstChar,
    BadChar(char),
}

impl fmt::Display for NameProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NameProblem::Empty => f.write_str("it is empty"),
            NameProblem::TooLong => write!(f, "it is longer than {MAX_NAME_LEN} characters"),
            NameProblem::BadFirstChar => f.write_str("it must start with a letter or a digit"),
            NameProblem::BadChar(c) => write!(f, "{c:?} is not allowed"),
        }
    }
}

/// Checks `raw` against the rule above and returns it in lowercase.
pub fn normalize_name(raw: &str) -> Result<String, NameProblem> {
    if raw.is_empty() {
        return Err(NameProblem::Empty);
    }
    if let Some(c) = raw
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return Err(NameProblem::BadChar(c));
    }
    // Only ASCII from here on, so bytes are characters.
    if raw.len() > MAX_NAME_LEN {
        return Err(NameProblem::TooLong);
    }
    if !raw.as_bytes()[0].is_ascii_alphanumeric() {
        return Err(NameProblem::BadFirstChar);
    }
    Ok(raw.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_rules_table() {
        let long = "a".repeat(MAX_NAME_LEN);
        let too_long = "a".repeat(MAX_NAME_LEN + 1);
        let cases: &[(&str, Result<&str, NameProblem>)] = &[
            ("lan-party", Ok("lan-party")),
            ("LAN-Party", Ok("lan-party")),
            ("a", Ok("a")),
            ("0day", Ok("0day")),
            ("host_1.home", Ok("host_1.home")),
            (&long, Ok(&long)),
            ("", Err(NameProblem::Empty)),
            (&too_long, Err(NameProblem::TooLong)),
            ("-flag", Err(NameProblem::BadFirstChar)),
            (".hidden", Err(NameProblem::BadFirstChar)),
            ("_x", Err(NameProblem::BadFirstChar)),
            ("lan party", Err(NameProblem::BadChar(' '))),
            ("a/b", Err(NameProblem::BadChar('/'))),
            ("café", Err(NameProblem::BadChar('é'))),
        ];
        for (raw, want) in cases {
            let got = normalize_name(raw);
            assert_eq!(got.as_deref().map_err(|e| *e), *want, "name {raw:?}");
        }
    }
}
