//! What the buttons and dialogs ask the daemon, and the sentence each answer becomes.
//! Blocking: the window runs them on a worker thread (see `app::App::run_action`).

use crate::client::call;
use std::path::Path;
use warren_proto::api::{parse_port, PathKind, Request, Response};

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
    Create { name: String, password: String },
    Join(JoinForm),
    Leave(String),
    Ping(String),
    Check { peer: String, port: String },
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

/// Carries out `action`: `Ok` with a sentence to show, `Err` with the daemon's own message.
pub fn run(socket: &Path, action: &Action) -> Result<String, String> {
    let request = match action {
        Action::Power(true) => Request::Up {
            coordinator: None,
            coordinator_key: None,
            name: None,
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
    };
    match call(socket, request)? {
        Response::Done { message } => Ok(message),
        Response::Pong(p) => Ok(format!(
            "{} answered in {:.1} ms ({})",
            p.peer,
            p.rtt_us as f64 / 1000.0,
            path_words(p.path)
        )),
        Response::Check(c) => Ok(c.detail),
        _ => Ok("Done".into()),
    }
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
    fn daemon_missing_is_said_plainly() {
        let dir = std::env::temp_dir().join(format!("warren-gui-test-{}", std::process::id()));
        let err = run(&dir.join("nope.sock"), &Action::Power(true)).unwrap_err();
        assert_eq!(err, crate::client::NOT_RUNNING);
    }
}
