//! Who may use the local API.
//!
//! On Unix the socket is mode 0666: the daemon itself decides, from the connecting process's
//! credentials (SO_PEERCRED), before it reads a request:
//! - root (and the daemon's own user) — everything, including who else may (`SetOperator`);
//! - members of the socket's group (`--socket-group`, default `warren`), as the user database
//!   lists them now (no new login needed), or by the process's own group;
//! - operator users listed in `<state-dir>/operators.json` — the same as group members.
//!
//! Anyone else gets one `error` line saying what to do, and the connection is closed.
//!
//! On Windows the pipe's ACL ([`pipe_sddl`]) is the rule: SYSTEM, Administrators and the users
//! warrend was given when it was installed (`--api-user`); Windows refuses anyone else before
//! the daemon sees them. A client running as an administrator is an admin, anyone else a member.

use crate::platform::api_listener::Peer;
use std::path::PathBuf;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use warren_proto::api::{ApiError, ErrorCode, Request, Response};
#[cfg(unix)]
use {crate::operators, crate::operators::Operators};

/// Why a connection was let in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Root or the daemon's own user: may also change who else may.
    Admin,
    /// A member of the socket's group.
    Member,
    /// A user in the operator list.
    #[cfg_attr(windows, allow(dead_code))]
    Operator,
}

/// The Unix admission rule, with everything it depends on passed in: `gids` are all the groups of
/// the connecting user (its process's group and its groups in the user database).
#[cfg(unix)]
pub fn admit(
    uid: u32,
    gids: &[u32],
    admin_uid: u32,
    socket_gid: Option<u32>,
    operators: &[u32],
) -> Option<Role> {
    if uid == 0 || uid == admin_uid {
        Some(Role::Admin)
    } else if socket_gid.is_some_and(|g| gids.contains(&g)) {
        Some(Role::Member)
    } else if operators.contains(&uid) {
        Some(Role::Operator)
    } else {
        None
    }
}

/// May `role` make this request? Only an admin changes the operator list. (On Windows there
/// is no list to change, and everyone is told so by [`answer`].)
pub fn allowed(role: Role, request: &Request) -> Result<(), String> {
    match request {
        Request::SetOperator { user, allow } if cfg!(unix) && role != Role::Admin => Err(format!(
            "only an administrator can change who may use Warren: run `sudo warren operator {} \
             {user}`",
            if *allow { "add" } else { "remove" }
        )),
        _ => Ok(()),
    }
}

/// What the daemon needs to apply the rule.
#[cfg(unix)]
pub struct Access {
    pub state_dir: PathBuf,
    /// The socket's group, when it exists.
    pub group: Option<(String, u32)>,
    /// The daemon's own uid (root for the system service).
    pub admin_uid: u32,
}

#[cfg(unix)]
impl Access {
    pub fn new(state_dir: PathBuf, group: &str) -> Access {
        Access {
            state_dir,
            group: crate::platform::api_listener::group_id(group)
                .ok()
                .flatten()
                .map(|gid| (group.to_string(), gid)),
            // SAFETY: geteuid has no preconditions.
            admin_uid: unsafe { libc::geteuid() },
        }
    }

    /// The role of the process at the other end, or the words that refuse it.
    pub fn check(&self, peer: &Peer) -> Result<Role, String> {
        let cred = peer
            .as_ref()
            .map_err(|e| format!("cannot tell who is connecting: {e}"))?;
        let uid = cred.uid();
        if uid == 0 || uid == self.admin_uid {
            return Ok(Role::Admin);
        }
        let mut gids = operators::groups_of(uid);
        gids.push(cred.gid());
        let gid = self.group.as_ref().map(|(_, g)| *g);
        if let Some(role) = admit(uid, &gids, self.admin_uid, gid, &[]) {
            // A member: the operator list need not be read.
            return Ok(role);
        }
        let (list, damaged) = match Operators::load(&self.state_dir) {
            Ok(l) => (l.uids(), None),
            Err(e) => {
                tracing::error!("{e:#}; only root and the socket's group are let in");
                (Vec::new(), Some(format!("{e:#}")))
            }
        };
        admit(uid, &gids, self.admin_uid, gid, &list)
            .ok_or_else(|| self.refusal(uid, damaged.as_deref()))
    }

    fn refusal(&self, uid: u32, damaged: Option<&str>) -> String {
        let user = operators::user_name(uid).unwrap_or_else(|| uid.to_string());
        let group = match &self.group {
            Some((g, _)) => format!(", or add {user} to group {g} (`sudo usermod -aG {g} {user}`)"),
            None => String::new(),
        };
        let damaged = damaged.map(|d| format!(" ({d})")).unwrap_or_default();
        format!(
            "{user} may not use Warren on this computer yet: someone with administrator rights \
             can allow it with `sudo warren operator add {user}`{group}{damaged}"
        )
    }
}

/// Nothing is needed on Windows: the pipe's ACL already let the client in.
#[cfg(windows)]
pub struct Access;

#[cfg(windows)]
impl Access {
    /// Neither argument means anything on Windows (no operator list; the ACL names users);
    /// taken so the caller is the same on both.
    pub fn new(_state_dir: PathBuf, _group: &str) -> Access {
        Access
    }

    /// Never refuses: Windows checked the ACL when the client opened the pipe.
    pub fn check(&self, peer: &Peer) -> Result<Role, String> {
        Ok(if peer.admin {
            Role::Admin
        } else {
            Role::Member
        })
    }
}

/// What a listed user may do with the pipe: read it and write data (FILE_GENERIC_READ |
/// FILE_WRITE_DATA) — not FILE_APPEND_DATA, which on a pipe is the right to create another
/// instance of it, with which a program could pose as the service. The client opens the pipe
/// asking for exactly these rights.
#[cfg(any(windows, test))]
const USER_RIGHTS: &str = "0x12008b";

/// The pipe's security descriptor in SDDL: full control for SYSTEM and Administrators, read and
/// write for each of `user_sids` (string SIDs such as `S-1-5-21-…-1001`), nothing inherited.
/// A SID that is not one is refused, so no name can smuggle in an ACE of its own.
#[cfg(any(windows, test))]
pub fn pipe_sddl(user_sids: &[String]) -> Result<String, String> {
    let mut sddl = String::from("D:P(A;;FA;;;SY)(A;;FA;;;BA)");
    for sid in user_sids {
        let mut parts = sid.split('-');
        let well_formed = parts.next() == Some("S")
            && parts.next() == Some("1")
            && sid.split('-').count() >= 3
            && parts.all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
        if !well_formed {
            return Err(format!("{sid:?} is not a security identifier"));
        }
        sddl.push_str(&format!("(A;;{USER_RIGHTS};;;{sid})"));
    }
    Ok(sddl)
}

/// Tells a refused client why, then closes: the answer is written before its request is read,
/// and what it sends is drained briefly so it reads the answer instead of a reset connection.
pub async fn refuse(mut stream: impl AsyncRead + AsyncWrite + Unpin, message: String) {
    let mut out = serde_json::to_vec(&warren_proto::api::ResponseEnvelope {
        v: warren_proto::api::API_VERSION,
        response: ApiError::new(ErrorCode::PermissionDenied, message).into(),
    })
    .expect("serializable");
    out.push(b'\n');
    if stream.write_all(&out).await.is_err() {
        return;
    }
    let _ = stream.shutdown().await;
    let mut sink = [0u8; 4096];
    let drain = async {
        let mut left = 64 * 1024usize;
        while left > 0 {
            match stream.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(n) => left = left.saturating_sub(n),
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(2), drain).await;
}

/// `SetOperator` (from an admin) and `Operators`.
#[cfg(unix)]
pub fn answer(access: &Access, request: Request) -> Response {
    match request {
        Request::SetOperator { user, allow } => {
            match operators::set(&access.state_dir, &user, allow) {
                Ok(message) => {
                    tracing::info!(%user, allow, "operator list changed");
                    Response::Done { message }
                }
                Err(e) => ApiError::new(ErrorCode::Other, format!("{e:#}")).into(),
            }
        }
        Request::Operators => match Operators::load(&access.state_dir) {
            Ok(l) => Response::Operators(l.operators),
            Err(e) => ApiError::new(ErrorCode::Internal, format!("{e:#}")).into(),
        },
        _ => ApiError::new(ErrorCode::Internal, "not an operator request").into(),
    }
}

/// `SetOperator` and `Operators` on Windows: there is no list; the ACL was set when installing.
#[cfg(windows)]
pub fn answer(_access: &Access, _request: Request) -> Response {
    ApiError::new(ErrorCode::Other, crate::operators::FIXED_AT_INSTALL).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pipe_admits_system_administrators_and_the_given_users() {
        assert_eq!(
            pipe_sddl(&[]).unwrap(),
            "D:P(A;;FA;;;SY)(A;;FA;;;BA)",
            "no user: administrators only"
        );
        let alice = "S-1-5-21-1004336348-1177238915-682003330-1001".to_string();
        let bob = "S-1-5-21-1004336348-1177238915-682003330-1002".to_string();
        assert_eq!(
            pipe_sddl(&[alice.clone(), bob.clone()]).unwrap(),
            format!("D:P(A;;FA;;;SY)(A;;FA;;;BA)(A;;0x12008b;;;{alice})(A;;0x12008b;;;{bob})")
        );
        for bad in [
            "",
            "S-1",
            "alice",
            "WD",
            "S-1-5-21-1)(A;;FA;;;WD",
            "S-1-5--1",
            "S-1-5-",
            "s-1-5-18",
        ] {
            assert!(pipe_sddl(&[bad.to_string()]).is_err(), "{bad:?}");
        }
    }

    #[cfg(windows)]
    #[test]
    fn windows_explains_that_the_users_were_chosen_at_install() {
        let access = Access::new(std::env::temp_dir(), "warren");
        for r in [
            Request::Operators,
            Request::SetOperator {
                user: "bob".into(),
                allow: true,
            },
        ] {
            assert!(allowed(Role::Member, &r).is_ok());
            match answer(&access, r) {
                Response::Error { message, .. } => {
                    assert!(message.contains("installed"), "{message}")
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[cfg(unix)]
    #[test]
    fn admission_table() {
        const DAEMON: u32 = 0;
        let warren = Some(990);
        // (what, uid, its groups, the socket's group, operators, wanted)
        type Case<'a> = (
            &'a str,
            u32,
            &'a [u32],
            Option<u32>,
            &'a [u32],
            Option<Role>,
        );
        let cases: &[Case] = &[
            ("root", 0, &[0], warren, &[], Some(Role::Admin)),
            (
                "root without a group",
                0,
                &[0],
                None,
                &[],
                Some(Role::Admin),
            ),
            ("stranger", 1000, &[1000], warren, &[], None),
            (
                "primary group",
                1000,
                &[990],
                warren,
                &[],
                Some(Role::Member),
            ),
            (
                "supplementary group",
                1000,
                &[1000, 27, 990],
                warren,
                &[],
                Some(Role::Member),
            ),
            (
                "operator",
                1000,
                &[1000],
                warren,
                &[1000],
                Some(Role::Operator),
            ),
            (
                "member and operator: member",
                1000,
                &[990],
                warren,
                &[1000],
                Some(Role::Member),
            ),
            ("other operator", 1000, &[1000], warren, &[1001], None),
            (
                "no group: operator",
                1000,
                &[1000],
                None,
                &[1000],
                Some(Role::Operator),
            ),
            ("no group: stranger", 1000, &[990], None, &[], None),
        ];
        for (what, uid, gids, group, ops, want) in cases {
            assert_eq!(admit(*uid, gids, DAEMON, *group, ops), *want, "{what}");
        }
        // A daemon run by a user admits that user like root.
        assert_eq!(admit(1000, &[1000], 1000, None, &[]), Some(Role::Admin));
    }

    #[cfg(unix)]
    #[test]
    fn only_admins_change_operators() {
        let add = Request::SetOperator {
            user: "alice".into(),
            allow: true,
        };
        assert!(allowed(Role::Admin, &add).is_ok());
        for role in [Role::Member, Role::Operator] {
            let e = allowed(role, &add).unwrap_err();
            assert!(e.contains("sudo warren operator add alice"), "{e}");
            assert!(allowed(role, &Request::Operators).is_ok());
            assert!(allowed(role, &Request::Status).is_ok());
        }
    }
}
