//! What a request to a coordinator gives back, in words for the user.

use warren_proto::control::msg::{ClientMsg, InviteEntry};

/// What a carried-out command gives back.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// A message for the user.
    Done(String),
    /// A join secret the coordinator made.
    Invite {
        network: String,
        secret: String,
        expires: u64,
    },
    /// A network's invites, as the coordinator lists them.
    Invites(Vec<InviteEntry>),
}

/// What the user reads when the coordinator accepted `req` (`Ok`).
pub fn done_text(req: &ClientMsg) -> String {
    match req {
        ClientMsg::CreateNetwork { name, .. } => format!("created network {name} and joined it"),
        ClientMsg::JoinNetwork { name, .. } => format!("joined network {name}"),
        ClientMsg::JoinInvite { network, .. } => format!("joined network {network}"),
        ClientMsg::LeaveNetwork { name, .. } => format!("left network {name}"),
        ClientMsg::RevokeInvite {
            network, invite, ..
        } => format!("revoked invite {invite} of {network}: its code no longer works"),
        ClientMsg::RenameNetwork {
            network, new_name, ..
        } => format!(
            "network {network} is now called {new_name}; its members see the new name at once"
        ),
        ClientMsg::SetPassword { network, .. } => {
            format!("changed the password of {network}: members stay, new members need the new one")
        }
        ClientMsg::LockNetwork {
            network,
            locked: true,
            ..
        } => format!(
            "locked {network}: new members now wait for your approval (they are listed as \
             join requests; unlock {network} to let them in directly again)"
        ),
        ClientMsg::LockNetwork { network, .. } => {
            format!("unlocked {network}: the password or an invite lets new members in again")
        }
        ClientMsg::AnswerRequest {
            network,
            approve: true,
            ..
        } => format!("approved: the host is now a member of {network}"),
        ClientMsg::AnswerRequest { network, .. } => format!(
            "turned down the request to join {network} (the host may ask again; remove and \
             ban it to turn it away for good)"
        ),
        ClientMsg::RemoveMember {
            network, ban: true, ..
        } => format!("removed the host from {network} and banned it: it cannot join again"),
        ClientMsg::RemoveMember { network, .. } => format!(
            "removed the host from {network} (it can join again with the password or an \
             invite; remove and ban it to stop that)"
        ),
        ClientMsg::DeleteNetwork { network, .. } => {
            format!("deleted network {network}: its members no longer have it")
        }
        _ => "ok".into(),
    }
}

/// Answers a join that became a request to a locked network.
pub fn pending_text(network: &str) -> String {
    format!(
        "network {network} is locked: your request to join waits for its owner's approval; \
         you are let in as soon as they approve, with nothing more to do"
    )
}
