//! The Host dialog's form and the Invite dialog's expiry choice.

use warren_proto::api::Request;

/// The Host a network dialog: a name, and a password only when asked for (invites are the
/// usual way in).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HostForm {
    pub name: String,
    /// The password field is shown (hidden by default).
    pub use_password: bool,
    pub password: String,
}

impl HostForm {
    /// The request the form stands for, or what is missing.
    pub fn request(&self) -> Result<Request, String> {
        let network = self.name.trim();
        if network.is_empty() {
            return Err("Give your network a name, e.g. \"game-night\"".into());
        }
        let password = if self.use_password {
            if self.password.is_empty() {
                return Err(
                    "Type a password, or untick \"Also let people join with a password\"".into(),
                );
            }
            Some(self.password.clone())
        } else {
            None
        };
        Ok(Request::Host {
            network: network.to_string(),
            password,
        })
    }
}

/// How long a new invite code works.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Expiry {
    Hour,
    #[default]
    Day,
    Week,
    UntilRevoked,
}

impl Expiry {
    pub const ALL: [Expiry; 4] = [
        Expiry::Hour,
        Expiry::Day,
        Expiry::Week,
        Expiry::UntilRevoked,
    ];

    /// What `CreateInvite` is sent: 0 means until revoked.
    pub fn ttl_secs(self) -> u64 {
        match self {
            Expiry::Hour => 3600,
            Expiry::Day => 86400,
            Expiry::Week => 7 * 86400,
            Expiry::UntilRevoked => 0,
        }
    }

    /// The choice in the dialog.
    pub fn label(self) -> &'static str {
        match self {
            Expiry::Hour => "1 hour",
            Expiry::Day => "1 day",
            Expiry::Week => "7 days",
            Expiry::UntilRevoked => "Until I revoke it",
        }
    }

    /// How long the code works, in a sentence.
    pub fn validity(self) -> String {
        match self {
            Expiry::UntilRevoked => "It works until you revoke it.".into(),
            e => format!("It works for {}.", e.label()),
        }
    }
}
