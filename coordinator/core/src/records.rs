//! The coordinator's persisted state as plain records: what a [`Snapshot`] holds and what a
//! [`Change`] adds, updates or removes. The store maps each record to one table row.

use std::net::Ipv4Addr;

use warren_proto::key::NodeKey;

use crate::invite::SecretHash;

/// A node (host) the coordinator knows. Nodes are never deleted (their names and memberships
/// stay until they leave their networks); `created_at` is the first registration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeRecord {
    pub key: NodeKey,
    /// Normalised (lowercase); unique within every network the node is in.
    pub name: String,
    pub created_at: u64,
}

/// A node's overlay address lease.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeaseRecord {
    pub node: NodeKey,
    pub addr: Ipv4Addr,
    /// Unix seconds of the last renewal.
    pub renewed_at: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetworkRecord {
    /// Normalised (lowercase), unique.
    pub name: String,
    /// Argon2id PHC string.
    pub password_hash: String,
    pub owner: NodeKey,
    pub created_at: u64,
    /// Joins by password or invite become requests that wait for the owner.
    pub locked: bool,
}

/// A key the owner removed from a network and banned: its joins there are refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BanRecord {
    pub network: String,
    pub node: NodeKey,
    pub banned_at: u64,
}

/// A LAN prefix a member advertised and the network's owner approved: the network's other
/// members route it through that member (subnet routes, issue 19).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct RouteRecord {
    pub network: String,
    pub node: NodeKey,
    /// Canonical CIDR (host bits zero), as `ipnet` prints it.
    pub prefix: String,
}

/// A host waiting for the owner's answer to join a locked network.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JoinRequestRecord {
    pub network: String,
    pub node: NodeKey,
    pub asked_at: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Membership {
    pub network: String,
    pub node: NodeKey,
    pub joined_at: u64,
}

/// An invite to one network: only the hash of its secret is kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InviteRecord {
    pub hash: SecretHash,
    pub network: String,
    /// The member who asked for it (for the record; it stays valid if they leave).
    pub created_by: NodeKey,
    pub created_at: u64,
    /// Unix seconds; the invite is refused after this second. [`crate::invite::NEVER`]: until
    /// revoked.
    pub expires: u64,
}

/// Everything the coordinator must remember across restarts. [`Snapshot::normalize`] puts it
/// in one canonical order, so two snapshots of the same state compare equal.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub nodes: Vec<NodeRecord>,
    pub leases: Vec<LeaseRecord>,
    pub networks: Vec<NetworkRecord>,
    pub memberships: Vec<Membership>,
    pub invites: Vec<InviteRecord>,
    pub bans: Vec<BanRecord>,
    pub requests: Vec<JoinRequestRecord>,
    pub routes: Vec<RouteRecord>,
}

impl Snapshot {
    /// Sorts nodes and leases by node key, networks by name, memberships by (network, node),
    /// invites by hash.
    pub fn normalize(&mut self) {
        self.nodes.sort_by_key(|n| n.key);
        self.leases.sort_by_key(|l| l.node);
        self.networks.sort_by(|a, b| a.name.cmp(&b.name));
        self.memberships
            .sort_by(|a, b| (&a.network, a.node).cmp(&(&b.network, b.node)));
        self.invites.sort_by_key(|i| i.hash);
        self.bans
            .sort_by(|a, b| (&a.network, a.node).cmp(&(&b.network, b.node)));
        self.requests
            .sort_by(|a, b| (&a.network, a.node).cmp(&(&b.network, b.node)));
        self.routes.sort();
    }
}

/// One effect of a registry operation, in the order the store must apply it (a node row comes
/// before its lease and memberships; a lease taken over is released before it is granted).
///
/// The same list tells the control channel whom to tell what:
/// - `NodeSaved` for a known node: its name changed; every peer of it needs the new name.
/// - `LeaseGranted`: the node has a (new) address; its peers need it.
/// - `LeaseRenewed`: same address, later `renewed_at`; nothing to push.
/// - `LeaseReleased`: the node lost that address: it was offline past the TTL and another node
///   took the address (its peers should drop it), or it moved to the address it claimed (a
///   `LeaseGranted` of the node follows).
/// - `MemberAdded` / `MemberRemoved`: the node and the other members of that network gain or
///   lose each other, unless they still share another network (see `Registry::peers_of`).
/// - `InviteCreated` / `InviteRemoved` (an expired one pruned, or a revoked one): nothing to
///   push.
/// - The owner's changes (`NetworkRenamed`, `NetworkLocked`, `RequestAdded`, …) are pushed by
///   the shell as the affected hosts' network lists; see `coordinator/src/owner.rs`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// A new node, or a known node under a new name.
    NodeSaved(NodeRecord),
    LeaseGranted(LeaseRecord),
    LeaseRenewed(LeaseRecord),
    LeaseReleased {
        node: NodeKey,
        addr: Ipv4Addr,
    },
    NetworkCreated(NetworkRecord),
    MemberAdded(Membership),
    MemberRemoved {
        network: String,
        node: NodeKey,
    },
    InviteCreated(InviteRecord),
    InviteRemoved {
        hash: SecretHash,
    },
    /// The network and everything that names it (members, invites, bans, requests) move to
    /// the new name.
    NetworkRenamed {
        from: String,
        to: String,
    },
    PasswordChanged {
        network: String,
        password_hash: String,
    },
    NetworkLocked {
        network: String,
        locked: bool,
    },
    RequestAdded(JoinRequestRecord),
    RequestRemoved {
        network: String,
        node: NodeKey,
    },
    Banned(BanRecord),
    /// The owner approved a member's route, or took the approval back. A member that leaves
    /// (or is removed) loses its approvals with its membership.
    RouteApproved(RouteRecord),
    RouteRevoked(RouteRecord),
    /// The network is gone, with its members, invites, bans, requests and routes.
    NetworkDeleted {
        network: String,
    },
}
