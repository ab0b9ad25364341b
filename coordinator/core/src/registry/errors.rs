//! The registry's errors: what a user can cause (with how to fix it), and a refused snapshot.

use super::*;

/// Errors a user can cause; the text is what the CLI shows, so each says how to fix it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    #[error(
        "invalid {kind} name {name:?}: {problem} (a name is 1-63 letters, digits, '-', '_' or '.', \
         starting with a letter or a digit)"
    )]
    InvalidName {
        kind: NameKind,
        name: String,
        problem: NameProblem,
    },
    #[error("a network needs a password: warren create NET --password PASSWORD")]
    EmptyPassword,
    #[error(
        "network {0} already exists: join it with `warren join {0} --password PASSWORD`, \
         or create a network with another name"
    )]
    NetworkExists(String),
    #[error(
        "no network named {0}: check the name, or create it with \
         `warren create {0} --password PASSWORD`"
    )]
    NoSuchNetwork(String),
    #[error("wrong password for network {0}")]
    WrongPassword(String),
    #[error(
        "the name {name} is already used by another host in network {network}: \
         pick another name with --name (warren up --name NEW-NAME)"
    )]
    NameTaken { name: String, network: String },
    #[error("this host is not a member of network {0}")]
    NotAMember(String),
    #[error("{0}")]
    InvalidRoute(String),
    #[error(
        "this host is in {MAX_NETWORKS_PER_HOST} networks, the most one host can be in: leave \
         one first (`warren leave NETWORK`)"
    )]
    TooManyNetworks,
    #[error("this invite is not valid for network {0} (was it revoked or mistyped?)")]
    InviteInvalid(String),
    #[error(
        "this invite for network {network} expired at {}; ask a member for a new one \
         (`warren invite {network}`)",
        crate::invite::utc(*expires)
    )]
    InviteExpired { network: String, expires: u64 },
    #[error(
        "network {0} already has {MAX_LIVE_PER_NETWORK} unexpired invites: share one of those, \
         or wait for some to expire"
    )]
    TooManyInvites(String),
    #[error(
        "the new invite's secret is already in use: the coordinator's random source is broken"
    )]
    InviteSecretReused,
    #[error("host {0} has not registered with the coordinator yet: reconnect (warren up)")]
    UnknownNode(NodeKey),
    #[error("only the owner of network {network} ({owner}) can {action}: ask them")]
    NotOwner {
        network: String,
        /// The owner's name.
        owner: String,
        action: &'static str,
    },
    #[error(
        "the owner of network {0} removed this host and banned it: it cannot join {0} again \
         (ask the owner if this is a mistake)"
    )]
    Banned(String),
    #[error("that host is not a member of network {0} (`warren networks` lists the members)")]
    NoSuchMember(String),
    #[error(
        "no host is waiting to join network {0} under that name (`warren requests` lists them)"
    )]
    NoSuchRequest(String),
    #[error("no invite {id} for network {network}: `warren invite {network} --list` shows them")]
    NoSuchInvite { network: String, id: String },
    #[error("{id} matches several invites of network {network}: give more of the id")]
    AmbiguousInvite { network: String, id: String },
    #[error(
        "the owner cannot remove itself from network {0}: `warren leave {0}` leaves it, \
         `warren delete {0}` deletes it for everyone"
    )]
    RemoveOwner(String),
    #[error(transparent)]
    Lease(#[from] LeaseError),
    #[error(transparent)]
    Password(#[from] PasswordError),
}

/// A snapshot that no sequence of registry operations could have produced: a damaged or
/// hand-edited state file. Restoring refuses it rather than guessing.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    #[error("stored {kind} name {name:?} is not a valid, lowercase name")]
    BadName { kind: NameKind, name: String },
    #[error("node {0} is stored twice")]
    DuplicateNode(NodeKey),
    #[error("network {0} is stored twice")]
    DuplicateNetwork(String),
    #[error("network {network} has an unreadable password hash: {error}")]
    BadPasswordHash {
        network: String,
        error: PasswordError,
    },
    #[error("network {network} is owned by unknown node {owner}")]
    UnknownOwner { network: String, owner: NodeKey },
    #[error("a lease belongs to unknown node {0}")]
    LeaseForUnknownNode(NodeKey),
    #[error("bad lease: {0}")]
    Lease(#[from] LeaseError),
    #[error("membership of node {node} in network {network}: no such {missing}")]
    DanglingMembership {
        network: String,
        node: NodeKey,
        missing: &'static str,
    },
    #[error("node {node} is a member of network {network} twice")]
    DuplicateMembership { network: String, node: NodeKey },
    #[error("two members of network {network} are both named {name}")]
    NameClash { name: String, network: String },
    #[error("invite {hash:?} for network {network}: no such {missing}")]
    DanglingInvite {
        hash: SecretHash,
        network: String,
        missing: &'static str,
    },
    #[error("invite {0:?} is stored twice")]
    DuplicateInvite(SecretHash),
    #[error("a ban or join request in network {network} of node {node}: no such {missing}")]
    DanglingOwnerRecord {
        network: String,
        node: NodeKey,
        missing: &'static str,
    },
    #[error("node {node} both is a member of network {network} and waits to join it")]
    RequestOfMember { network: String, node: NodeKey },
}
