//! What the buttons and dialogs ask the daemon, and the sentence each answer becomes.
//! Blocking: the window runs them on a worker thread (see `app::App::run_action`).

use crate::client::call;
use std::path::Path;
use warren_proto::api::{parse_port, ApiError, ErrorCode, InviteInfo, PathKind, Request, Response};

mod forms;
pub mod games;
pub use forms::{Expiry, HostForm};
pub use games::GamePortForm;

/// The Join dialog: a network's name and password, or an invite code.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JoinForm {
    pub name: String,
    pub password: String,
    pub invite: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Power(bool),
    /// Relay for friends in our networks who cannot connect directly, or stop.
    Relay(bool),
    /// The LAN prefixes this PC offers to route for its networks (subnet routes).
    AdvertiseRoutes(Vec<String>),
    /// Owner: let members reach `who`'s LAN `prefix` (or stop).
    ApproveRoute {
        network: String,
        who: String,
        prefix: String,
        approve: bool,
    },
    Create {
        name: String,
        password: String,
    },
    Join(JoinForm),
    Leave(String),
    Ping(String),
    Check {
        peer: String,
        port: String,
    },
    /// "Wake PC" beside a member: the member sends the Wake-on-LAN packet for `mac` (as typed)
    /// on its LAN.
    Wake {
        via: String,
        mac: String,
    },
    /// The name others see (first run, or another one when it is taken); then `retry`, the
    /// action the coordinator refused for the old name.
    SetName {
        name: String,
        retry: Option<Box<Action>>,
    },
    Host(HostForm),
    Invite {
        network: String,
        expiry: Expiry,
    },
    ListInvites(String),
    Revoke {
        network: String,
        invite: String,
    },
    RenameNetwork {
        network: String,
        new_name: String,
    },
    SetPassword {
        network: String,
        password: String,
    },
    Lock {
        network: String,
        locked: bool,
    },
    Answer {
        network: String,
        who: String,
        approve: bool,
    },
    Remove {
        network: String,
        who: String,
        ban: bool,
    },
    Delete(String),
    /// The LAN games panel's Add form.
    AddGamePort(GamePortForm),
    /// Remove, beside a port the user added.
    RemoveGamePort(warren_proto::api::games::DiscoveryPort),
    /// A network's switch in the LAN games panel.
    GameNetwork {
        network: String,
        enabled: bool,
    },
}

/// What an action brought back besides its sentence.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    Message(String),
    /// A new invite code (the window puts it on the clipboard).
    Invite {
        code: String,
        network: String,
        message: String,
    },
    Invites {
        network: String,
        invites: Vec<InviteInfo>,
    },
}

impl Reply {
    /// The sentence the window shows.
    pub fn message(&self) -> String {
        match self {
            Reply::Message(m) | Reply::Invite { message: m, .. } => m.clone(),
            Reply::Invites { network, invites } => match invites.len() {
                0 => format!("No open invites for {network}"),
                1 => format!("1 open invite for {network}"),
                n => format!("{n} open invites for {network}"),
            },
        }
    }
}

impl JoinForm {
    /// The request the form stands for, or what is missing.
    pub fn request(&self) -> Result<Request, String> {
        let invite = self.invite.trim();
        if !invite.is_empty() {
            return Ok(Request::JoinInvite {
                invite: invite.to_string(),
                name: None,
            });
        }
        let name = self.name.trim();
        if name.is_empty() {
            return Err("Type the network's name, or paste an invite code".into());
        }
        if self.password.is_empty() {
            return Err(format!("Type the password of {name}"));
        }
        Ok(Request::JoinNetwork {
            name: name.to_string(),
            password: self.password.clone(),
        })
    }
}

pub fn path_words(path: PathKind) -> &'static str {
    match path {
        PathKind::Direct => "direct connection",
        PathKind::Lan => "same network (LAN)",
        PathKind::Relay => "relayed",
        PathKind::None => "no path",
    }
}

/// What the Create dialog says when a field is empty.
pub const CREATE_NEEDS: &str = "A new network needs a name and a password";

/// A form's field without surrounding blanks, or `missing` when there is nothing in it.
fn trimmed(value: &str, missing: &str) -> Result<String, String> {
    match value.trim() {
        "" => Err(missing.to_string()),
        v => Ok(v.to_string()),
    }
}

impl Action {
    /// The request the action stands for, or what is missing in its form (in plain words).
    pub fn request(&self) -> Result<Request, String> {
        Ok(match self {
            Action::Power(true) => Request::Up {
                coordinator: None,
                coordinator_key: None,
                name: None,
                alternates: Vec::new(),
            },
            Action::Power(false) => Request::Down,
            Action::Create { name, password } => {
                let name = name.trim();
                if name.is_empty() || password.is_empty() {
                    return Err(CREATE_NEEDS.into());
                }
                Request::CreateNetwork {
                    name: name.to_string(),
                    password: password.clone(),
                }
            }
            Action::Join(form) => form.request()?,
            Action::Leave(name) => Request::LeaveNetwork { name: name.clone() },
            Action::Ping(peer) => Request::Ping { peer: peer.clone() },
            Action::Check { peer, port } => {
                let (port, proto) = parse_port(port.trim())?;
                Request::Check {
                    peer: peer.clone(),
                    port,
                    proto,
                }
            }
            Action::Wake { via, mac } => Request::Wake {
                mac: mac.parse()?,
                via: via.clone(),
            },
            Action::SetName { name, .. } => Request::SetName {
                name: trimmed(name, "Type the name your friends will see")?,
            },
            Action::Host(form) => form.request()?,
            Action::Invite { network, expiry } => Request::CreateInvite {
                network: network.clone(),
                ttl_secs: expiry.ttl_secs(),
            },
            Action::ListInvites(network) => Request::ListInvites {
                network: network.clone(),
            },
            Action::Revoke { network, invite } => Request::RevokeInvite {
                network: network.clone(),
                invite: invite.clone(),
            },
            Action::RenameNetwork { network, new_name } => Request::RenameNetwork {
                network: network.clone(),
                new_name: trimmed(new_name, "Type the network's new name")?,
            },
            Action::SetPassword { network, password } => {
                if password.is_empty() {
                    return Err("Type the new password".into());
                }
                Request::SetPassword {
                    network: network.clone(),
                    password: password.clone(),
                }
            }
            Action::Lock { network, locked } => Request::LockNetwork {
                network: network.clone(),
                locked: *locked,
            },
            Action::Answer {
                network,
                who,
                approve,
            } => Request::AnswerRequest {
                network: network.clone(),
                who: who.clone(),
                approve: *approve,
            },
            Action::Remove { network, who, ban } => Request::RemoveMember {
                network: network.clone(),
                who: who.clone(),
                ban: *ban,
            },
            Action::Delete(network) => Request::DeleteNetwork {
                network: network.clone(),
            },
            Action::AddGamePort(form) => Request::AddGamePort { port: form.port()? },
            Action::RemoveGamePort(port) => Request::RemoveGamePort { port: port.clone() },
            Action::GameNetwork { network, enabled } => Request::SetGameNetwork {
                network: network.clone(),
                enabled: *enabled,
            },
            Action::Relay(on) => Request::SetRelay { on: *on },
            Action::AdvertiseRoutes(routes) => Request::SetAdvertisedRoutes {
                routes: routes.clone(),
            },
            Action::ApproveRoute {
                network,
                who,
                prefix,
                approve,
            } => Request::ApproveRoute {
                network: network.clone(),
                who: who.clone(),
                prefix: prefix.clone(),
                approve: *approve,
            },
        })
    }

    /// It changes what the LAN games panel shows (which then asks the daemon again).
    pub fn is_games(&self) -> bool {
        matches!(
            self,
            Action::AddGamePort(_) | Action::RemoveGamePort(_) | Action::GameNetwork { .. }
        )
    }
}

/// What a form lacks (a form's `request()` error), as the window keeps errors.
pub fn incomplete(message: String) -> ApiError {
    ApiError::new(ErrorCode::InvalidArgument, message)
}

/// Carries out `action`: `Ok` with a sentence to show, `Err` with the daemon's own message.
pub fn run(socket: &Path, action: &Action) -> Result<String, ApiError> {
    run_reply(socket, action).map(|r| r.message())
}

/// Carries out `action` and returns what it brought back (an invite code, a list).
pub fn run_reply(socket: &Path, action: &Action) -> Result<Reply, ApiError> {
    let request = action.request().map_err(incomplete)?;
    let response = call(socket, request).map_err(|e| {
        if action.is_games() {
            ApiError::new(e.code, crate::view::games_error_words(&e))
        } else {
            e
        }
    })?;
    if let Action::SetName {
        retry: Some(retry), ..
    } = action
    {
        return run_reply(socket, retry);
    }
    Ok(match response {
        Response::Done { message } => Reply::Message(message),
        Response::Pong(p) => Reply::Message(format!(
            "{} answered in {:.1} ms ({})",
            p.peer,
            p.rtt_us as f64 / 1000.0,
            path_words(p.path)
        )),
        Response::Check(c) => Reply::Message(c.detail),
        Response::Invite { code, network, .. } => {
            let expiry = match action {
                Action::Invite { expiry, .. } => *expiry,
                _ => Expiry::Day,
            };
            Reply::Invite {
                message: invite_message(&network, expiry),
                code,
                network,
            }
        }
        Response::Invites(invites) => Reply::Invites {
            network: match action {
                Action::ListInvites(n) => n.clone(),
                _ => String::new(),
            },
            invites,
        },
        _ => Reply::Message("Done".into()),
    })
}

/// What the window says once an invite code is on the clipboard.
pub fn invite_message(network: &str, expiry: Expiry) -> String {
    format!(
        "Invite code for {network} copied: paste it in a message to your friends. {}",
        expiry.validity()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_form_prefers_the_invite_and_says_what_is_missing() {
        let mut f = JoinForm {
            name: " lan-party ".into(),
            password: "pw".into(),
            invite: String::new(),
        };
        assert_eq!(
            f.request(),
            Ok(Request::JoinNetwork {
                name: "lan-party".into(),
                password: "pw".into()
            })
        );
        f.invite = " wrn1-abc \n".into();
        assert_eq!(
            f.request(),
            Ok(Request::JoinInvite {
                invite: "wrn1-abc".into(),
                name: None
            })
        );
        let empty = JoinForm::default();
        assert!(empty.request().unwrap_err().contains("invite code"));
        let no_pw = JoinForm {
            name: "x".into(),
            ..Default::default()
        };
        assert_eq!(no_pw.request().unwrap_err(), "Type the password of x");
    }

    #[test]
    fn wake_takes_a_mac_as_people_copy_it_and_says_what_to_type_otherwise() {
        let wake = |mac: &str| {
            Action::Wake {
                via: "home-pc".into(),
                mac: mac.into(),
            }
            .request()
        };
        assert_eq!(
            wake(" 52-54-00-AB-CD-EF "),
            Ok(Request::Wake {
                mac: warren_proto::mac::Mac([0x52, 0x54, 0, 0xab, 0xcd, 0xef]),
                via: "home-pc".into()
            })
        );
        for bad in ["", "52:54:00:ab:cd", "my office pc"] {
            let e = wake(bad).unwrap_err();
            assert!(e.contains("aa:bb:cc:dd:ee:ff"), "{bad:?}: {e}");
            assert!(
                !e.contains("--"),
                "no command-line flags in the window: {e}"
            );
        }
    }

    #[test]
    fn invite_expiry_maps_to_ttl_and_zero_means_until_revoked() {
        let ttls: Vec<(u64, &str)> = Expiry::ALL
            .iter()
            .map(|e| (e.ttl_secs(), e.label()))
            .collect();
        assert_eq!(
            ttls,
            [
                (3600, "1 hour"),
                (86400, "1 day"),
                (604800, "7 days"),
                (0, "Until I revoke it")
            ]
        );
        assert_eq!(Expiry::default(), Expiry::Day);
        for (expiry, ttl_secs) in [(Expiry::Hour, 3600), (Expiry::UntilRevoked, 0)] {
            let a = Action::Invite {
                network: "lan".into(),
                expiry,
            };
            assert_eq!(
                a.request(),
                Ok(Request::CreateInvite {
                    network: "lan".into(),
                    ttl_secs
                })
            );
        }
        assert_eq!(
            invite_message("lan", Expiry::Week),
            "Invite code for lan copied: paste it in a message to your friends. \
             It works for 7 days."
        );
        assert!(invite_message("lan", Expiry::UntilRevoked).ends_with("until you revoke it."));
    }

    #[test]
    fn host_form_password_is_optional() {
        let mut f = HostForm {
            name: "  game-night ".into(),
            ..Default::default()
        };
        assert_eq!(
            f.request(),
            Ok(Request::Host {
                network: "game-night".into(),
                password: None
            })
        );
        // A password typed but the box unticked again is not sent.
        f.password = "secret".into();
        assert_eq!(
            f.request(),
            Ok(Request::Host {
                network: "game-night".into(),
                password: None
            })
        );
        f.use_password = true;
        assert_eq!(
            Action::Host(f.clone()).request(),
            Ok(Request::Host {
                network: "game-night".into(),
                password: Some("secret".into())
            })
        );
        f.password.clear();
        assert!(f.request().unwrap_err().starts_with("Type a password"));
        let nameless = HostForm::default();
        assert!(nameless
            .request()
            .unwrap_err()
            .starts_with("Give your network a name"));
    }

    #[test]
    fn owner_and_name_requests() {
        let net = || "lan".to_string();
        let cases = [
            (
                Action::SetName {
                    name: " Alice PC ".into(),
                    retry: None,
                },
                Request::SetName {
                    name: "Alice PC".into(),
                },
            ),
            (
                Action::ListInvites(net()),
                Request::ListInvites { network: net() },
            ),
            (
                Action::Revoke {
                    network: net(),
                    invite: "ab12".into(),
                },
                Request::RevokeInvite {
                    network: net(),
                    invite: "ab12".into(),
                },
            ),
            (
                Action::RenameNetwork {
                    network: net(),
                    new_name: " party ".into(),
                },
                Request::RenameNetwork {
                    network: net(),
                    new_name: "party".into(),
                },
            ),
            (
                Action::SetPassword {
                    network: net(),
                    password: " pw ".into(),
                },
                Request::SetPassword {
                    network: net(),
                    password: " pw ".into(),
                },
            ),
            (
                Action::Lock {
                    network: net(),
                    locked: true,
                },
                Request::LockNetwork {
                    network: net(),
                    locked: true,
                },
            ),
            (
                Action::Answer {
                    network: net(),
                    who: "AAAA".into(),
                    approve: false,
                },
                Request::AnswerRequest {
                    network: net(),
                    who: "AAAA".into(),
                    approve: false,
                },
            ),
            (
                Action::Remove {
                    network: net(),
                    who: "bob".into(),
                    ban: true,
                },
                Request::RemoveMember {
                    network: net(),
                    who: "bob".into(),
                    ban: true,
                },
            ),
            (
                Action::Delete(net()),
                Request::DeleteNetwork { network: net() },
            ),
        ];
        for (action, request) in cases {
            assert_eq!(action.request(), Ok(request), "{action:?}");
        }
        // Empty fields say what to type; nothing is sent.
        let empty = [
            Action::SetName {
                name: "  ".into(),
                retry: None,
            },
            Action::RenameNetwork {
                network: net(),
                new_name: String::new(),
            },
            Action::SetPassword {
                network: net(),
                password: String::new(),
            },
        ];
        for action in empty {
            assert!(
                action.request().unwrap_err().starts_with("Type "),
                "{action:?}"
            );
        }
        let dir = std::env::temp_dir().join(format!("warren-gui-test-{}", std::process::id()));
        let not_sent = run(
            &dir.join("nope.sock"),
            &Action::SetPassword {
                network: net(),
                password: String::new(),
            },
        );
        assert_eq!(not_sent, Err(incomplete("Type the new password".into())));
    }

    #[test]
    fn lan_games_requests() {
        use warren_proto::api::games::DiscoveryPort;
        let port = DiscoveryPort {
            port: 27015,
            last: 27020,
            group: None,
        };
        let add = Action::AddGamePort(GamePortForm {
            port: "27015".into(),
            last: "27020".into(),
            group: String::new(),
        });
        assert_eq!(
            add.request(),
            Ok(Request::AddGamePort { port: port.clone() })
        );
        assert_eq!(
            Action::RemoveGamePort(port.clone()).request(),
            Ok(Request::RemoveGamePort { port })
        );
        let switch = Action::GameNetwork {
            network: "lan".into(),
            enabled: false,
        };
        assert_eq!(
            switch.request(),
            Ok(Request::SetGameNetwork {
                network: "lan".into(),
                enabled: false
            })
        );
        assert!(add.is_games() && switch.is_games());
        assert_eq!(
            Action::Relay(true).request(),
            Ok(Request::SetRelay { on: true })
        );
        assert_eq!(
            Action::ApproveRoute {
                network: "home".into(),
                who: "abc".into(),
                prefix: "192.168.1.0/24".into(),
                approve: true
            }
            .request(),
            Ok(Request::ApproveRoute {
                network: "home".into(),
                who: "abc".into(),
                prefix: "192.168.1.0/24".into(),
                approve: true
            })
        );
        assert!(!Action::Leave("lan".into()).is_games());
        // An incomplete form is not sent; it says what to type.
        let dir = std::env::temp_dir().join(format!("warren-gui-test-{}", std::process::id()));
        let empty = run(
            &dir.join("nope.sock"),
            &Action::AddGamePort(GamePortForm::default()),
        );
        assert!(empty.unwrap_err().message.starts_with("Type the port"));
    }

    #[test]
    fn replies_in_words() {
        let none = Reply::Invites {
            network: "lan".into(),
            invites: vec![],
        };
        assert_eq!(none.message(), "No open invites for lan");
        let code = Reply::Invite {
            code: "warren1-x".into(),
            network: "lan".into(),
            message: "copied".into(),
        };
        assert_eq!(code.message(), "copied");
    }

    #[test]
    fn daemon_missing_is_said_plainly() {
        let dir = std::env::temp_dir().join(format!("warren-gui-test-{}", std::process::id()));
        let err = run(&dir.join("nope.sock"), &Action::Power(true)).unwrap_err();
        assert_eq!(err.message, crate::client::NOT_RUNNING);
        assert_eq!(err.code, ErrorCode::NotRunning);
    }
}
