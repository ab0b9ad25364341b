//! Networks, memberships, node names and leases: the coordinator's state machine.
//!
//! Every operation takes `&mut self` plus the inputs it needs (the time as unix seconds, the
//! salt for a new password hash) and returns the [`Change`]s it made, in the order the store
//! must persist them. An operation that fails changes nothing.
//!
//! Rules:
//! - Network and node names follow [`crate::name`]: they are normalised to lowercase, so
//!   `LAN-Party` and `lan-party` are one network.
//! - A node registers ([`Registry::register_node`]) before anything else; registering again
//!   renews its address lease (or moves it to the address the node claims) and may rename it.
//! - A node may ask a peer to move off an address that clashes with a host of another
//!   coordinator ([`Registry::clash_report`]); a host is asked at most once a minute.
//! - A node's name is unique within every network it is in: two hosts may both be called
//!   `alice` as long as no network has both of them as members.
//! - A network outlives its members: when the last member leaves it stays, with its password,
//!   and its owner (or anyone with the password) can join again. Only its owner deletes it.
//! - A member can create invites to its network ([`crate::invite`]); a secret from one
//!   admits any registered host in place of the password until it expires or is revoked.
//! - The owner's controls (rename, password, lock, requests, remove and ban, delete, revoke)
//!   and their rules are in [`owner`].
//! - Logging out leaves every network; the node's record and its lease stay.
//! - Two nodes are peers when they share at least one network, and only then.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ipnet::Ipv4Net;
use warren_proto::invite::SECRET_LEN;
use warren_proto::key::NodeKey;
use warren_proto::overlay::OVERLAY_V4;

use crate::invite::{InviteProblem, Invites, SecretHash, MAX_LIVE_PER_NETWORK};

/// Networks one host may be in: as many as a standalone relay's ticket can name.
pub const MAX_NETWORKS_PER_HOST: usize = warren_proto::relay_ticket::MAX_TAGS;
use crate::lease::{Lease, LeaseError, LeaseEvent, LeasePool};
use crate::name::{normalize_name, NameKind, NameProblem};
use crate::password::{
    check_phc, hash_password, verify_password, HashParams, PasswordError, DEFAULT_HASH_PARAMS,
};
use crate::ratelimit::{ClashLimiter, CLASH_INTERVAL};
mod errors;
mod owner;
mod queries;
pub mod routes;
mod snapshot;

pub use errors::{RegistryError, SnapshotError};

pub use owner::MIN_INVITE_ID;

use crate::records::{
    BanRecord, Change, InviteRecord, JoinRequestRecord, LeaseRecord, Membership, NetworkRecord,
    NodeRecord, RouteRecord, Snapshot,
};

#[derive(Clone, Debug)]
pub struct RegistryConfig {
    /// Argon2id costs for new network passwords ([`DEFAULT_HASH_PARAMS`] in production).
    pub hash_params: HashParams,
    /// Where new leases come from ([`OVERLAY_V4`] in production).
    pub lease_pool: Ipv4Net,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        Self {
            hash_params: DEFAULT_HASH_PARAMS,
            lease_pool: OVERLAY_V4,
        }
    }
}

/// A new invite as the member who asked for it gets it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InviteGrant {
    /// Normalised.
    pub network: String,
    /// The secret as the control protocol carries it (base64url, no padding); the registry
    /// does not keep it.
    pub secret: String,
    /// Unix seconds; good up to and including this second.
    pub expires: u64,
}

/// What a node learns about one of its peers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerInfo {
    pub key: NodeKey,
    pub name: String,
    pub overlay_v4: Ipv4Addr,
    /// The networks both nodes are in, sorted.
    pub networks: Vec<String>,
}

#[derive(Clone, Debug)]
struct Node {
    name: String,
    created_at: u64,
    networks: BTreeSet<String>,
    /// Locked networks it asked to join, waiting for their owners.
    waiting: BTreeSet<String>,
}

#[derive(Clone, Debug)]
struct Network {
    password_hash: String,
    owner: NodeKey,
    created_at: u64,
    locked: bool,
    /// Member → joined_at.
    members: BTreeMap<NodeKey, u64>,
    /// Banned key → banned_at.
    bans: BTreeMap<NodeKey, u64>,
    /// Waiting host → asked_at (only while locked, or until the owner answers).
    requests: BTreeMap<NodeKey, u64>,
    /// Members' LAN prefixes the owner approved (see `routes`).
    routes: BTreeSet<(NodeKey, String)>,
}

impl Network {
    fn new(password_hash: String, owner: NodeKey, created_at: u64, locked: bool) -> Self {
        Self {
            password_hash,
            owner,
            created_at,
            locked,
            members: BTreeMap::new(),
            bans: BTreeMap::new(),
            requests: BTreeMap::new(),
            routes: BTreeSet::new(),
        }
    }

    fn record(&self, name: &str) -> NetworkRecord {
        NetworkRecord {
            name: name.to_owned(),
            password_hash: self.password_hash.clone(),
            owner: self.owner,
            created_at: self.created_at,
            locked: self.locked,
        }
    }
}

/// Why an address-clash report was not forwarded ([`Registry::clash_report`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ClashDropped {
    #[error("the reporter shares no network with the host it names")]
    NotAPeer,
    #[error("the host it names does not have that address here")]
    NotItsAddress,
    #[error("that host was asked to move less than {CLASH_INTERVAL} s ago; next in {0} s")]
    RateLimited(u64),
}

#[derive(Clone, Debug)]
pub struct Registry {
    hash_params: HashParams,
    nodes: BTreeMap<NodeKey, Node>,
    networks: BTreeMap<String, Network>,
    leases: LeasePool,
    invites: Invites,
    /// Not persisted: after a restart a host may be asked once more than the limit allows.
    clash_asks: ClashLimiter,
}

fn name_arg(kind: NameKind, raw: &str) -> Result<String, RegistryError> {
    normalize_name(raw).map_err(|problem| RegistryError::InvalidName {
        kind,
        name: raw.to_owned(),
        problem,
    })
}

impl Registry {
    /// An empty registry.
    pub fn new(config: RegistryConfig) -> Result<Self, LeaseError> {
        Ok(Self {
            hash_params: config.hash_params,
            nodes: BTreeMap::new(),
            networks: BTreeMap::new(),
            leases: LeasePool::new(config.lease_pool)?,
            invites: Invites::default(),
            clash_asks: ClashLimiter::default(),
        })
    }

    /// The configuration this registry was made with (to rebuild it from a snapshot).
    pub fn config(&self) -> RegistryConfig {
        RegistryConfig {
            hash_params: self.hash_params.clone(),
            lease_pool: self.leases.range(),
        }
    }

    /// Registers `key` under `name` (normalised), or renames it, and renews its lease (giving it
    /// one if it has none). Call it on every connect. `claim` is the address the node has with
    /// its other coordinators: it gets it, moving there, unless another node holds it
    /// ([`LeasePool::claim`]); then it is leased as without a claim, and sees from the
    /// address it got that it must move.
    pub fn register_node(
        &mut self,
        key: NodeKey,
        name: &str,
        claim: Option<Ipv4Addr>,
        now: u64,
    ) -> Result<Vec<Change>, RegistryError> {
        let name = name_arg(NameKind::Node, name)?;
        let mut changes = Vec::new();
        match self.nodes.get(&key) {
            Some(node) if node.name == name => {}
            Some(node) => {
                for network in &node.networks {
                    self.check_name_free(&name, network, key)?;
                }
                changes.push(Change::NodeSaved(NodeRecord {
                    key,
                    name: name.clone(),
                    created_at: node.created_at,
                }));
            }
            None => changes.push(Change::NodeSaved(NodeRecord {
                key,
                name: name.clone(),
                created_at: now,
            })),
        }
        // The lease is the last thing that can fail; nothing is changed before it.
        let event = self.leases.acquire_claiming(key, claim, now)?;
        self.nodes
            .entry(key)
            .and_modify(|n| n.name = name.clone())
            .or_insert_with(|| Node {
                name,
                created_at: now,
                networks: BTreeSet::new(),
                waiting: BTreeSet::new(),
            });
        push_lease_changes(&mut changes, key, event);
        self.sync_lease_ttl(&key);
        Ok(changes)
    }

    /// Gives `node` the lease length of a node in a network, or of one in none.
    pub(crate) fn sync_lease_ttl(&mut self, node: &NodeKey) {
        let member = self.nodes.get(node).is_some_and(|n| !n.networks.is_empty());
        self.leases.set_in_network(*node, member);
    }

    /// Renews `key`'s lease without touching its name or address (a keep-alive for connected
    /// nodes: call it well within [`crate::lease::LEASE_TTL`]).
    pub fn renew_lease(&mut self, key: NodeKey, now: u64) -> Result<Vec<Change>, RegistryError> {
        if !self.nodes.contains_key(&key) {
            return Err(RegistryError::UnknownNode(key));
        }
        let mut changes = Vec::new();
        push_lease_changes(&mut changes, key, self.leases.acquire(key, now)?);
        Ok(changes)
    }

    /// Creates network `name` (normalised) with `password`, hashed with Argon2id and `salt`
    /// (16 random bytes from the caller). The owner becomes its first member.
    ///
    /// This is [`Registry::check_create`], [`Registry::hash_new_password`] and
    /// [`Registry::create_network_hashed`] in one; a shell that must not hold its state lock
    /// while Argon2 runs calls them one by one.
    pub fn create_network(
        &mut self,
        owner: NodeKey,
        name: &str,
        password: &str,
        salt: &[u8; 16],
        now: u64,
    ) -> Result<Vec<Change>, RegistryError> {
        self.check_create(owner, name, password)?;
        let password_hash = Self::hash_new_password(&self.hash_params, password, salt)?;
        self.create_network_hashed(owner, name, password_hash, now)
    }

    /// Would [`Registry::create_network`] succeed (before the hashing)? Returns the
    /// normalised name.
    pub fn check_create(
        &self,
        owner: NodeKey,
        name: &str,
        password: &str,
    ) -> Result<String, RegistryError> {
        let name = name_arg(NameKind::Network, name)?;
        if !self.nodes.contains_key(&owner) {
            return Err(RegistryError::UnknownNode(owner));
        }
        self.check_room(owner)?;
        if password.is_empty() {
            return Err(RegistryError::EmptyPassword);
        }
        if self.networks.contains_key(&name) {
            return Err(RegistryError::NetworkExists(name));
        }
        Ok(name)
    }

    /// The Argon2id costs new passwords are hashed with.
    pub fn hash_params(&self) -> &HashParams {
        &self.hash_params
    }

    /// Hashes a new network password (tens of milliseconds with the default costs; it
    /// touches no registry state, so it can run anywhere).
    pub fn hash_new_password(
        params: &HashParams,
        password: &str,
        salt: &[u8; 16],
    ) -> Result<String, RegistryError> {
        if password.is_empty() {
            return Err(RegistryError::EmptyPassword);
        }
        Ok(hash_password(params, password, salt)?)
    }

    /// The end of [`Registry::create_network`], with the hash made; everything is checked
    /// again, since the registry may have changed while the hash was made.
    pub fn create_network_hashed(
        &mut self,
        owner: NodeKey,
        name: &str,
        password_hash: String,
        now: u64,
    ) -> Result<Vec<Change>, RegistryError> {
        let name = name_arg(NameKind::Network, name)?;
        if !self.nodes.contains_key(&owner) {
            return Err(RegistryError::UnknownNode(owner));
        }
        self.check_room(owner)?;
        if self.networks.contains_key(&name) {
            return Err(RegistryError::NetworkExists(name));
        }
        check_phc(&password_hash)?;
        let network = Network::new(password_hash, owner, now, false);
        let record = network.record(&name);
        self.networks.insert(name.clone(), network);
        Ok(vec![
            Change::NetworkCreated(record),
            self.add_member(&name, owner, now),
        ])
    }

    /// Joins `node` to network `name`. A banned key is refused first, then the password is
    /// checked (an existing member with a wrong password is refused too); joining a network
    /// one is already in changes nothing. A locked network records a request instead
    /// (see [`Registry::is_member`] to tell which happened).
    ///
    /// This runs Argon2 (tens of milliseconds with the default costs): rate limit the callers
    /// ([`crate::ratelimit::JoinLimiter`]).
    pub fn join_network(
        &mut self,
        node: NodeKey,
        name: &str,
        password: &str,
        now: u64,
    ) -> Result<Vec<Change>, RegistryError> {
        let phc = self.hash_to_verify(node, name)?;
        let right = verify_password(&phc, password)?;
        self.join_verified(node, name, &phc, right, now)
    }

    /// The first step of [`Registry::join_network`] for a shell that runs Argon2 without its
    /// state lock: the checks that need no password (name, node, network, ban), and the
    /// stored hash to verify the password against ([`crate::password::verify_password`]).
    pub fn hash_to_verify(&self, node: NodeKey, name: &str) -> Result<String, RegistryError> {
        let name = name_arg(NameKind::Network, name)?;
        if !self.nodes.contains_key(&node) {
            return Err(RegistryError::UnknownNode(node));
        }
        let Some(network) = self.networks.get(&name) else {
            return Err(RegistryError::NoSuchNetwork(name));
        };
        if network.bans.contains_key(&node) {
            return Err(RegistryError::Banned(name));
        }
        Ok(network.password_hash.clone())
    }

    /// The last step: `right` is whether the password matched `verified`, the hash
    /// [`Registry::hash_to_verify`] gave. Everything is checked again, since the registry may
    /// have changed meanwhile; a password checked against a hash that has since been replaced
    /// is a wrong password now.
    pub fn join_verified(
        &mut self,
        node: NodeKey,
        name: &str,
        verified: &str,
        right: bool,
        now: u64,
    ) -> Result<Vec<Change>, RegistryError> {
        let phc = self.hash_to_verify(node, name)?;
        let name = name_arg(NameKind::Network, name)?;
        if !right || phc != verified {
            return Err(RegistryError::WrongPassword(name));
        }
        self.admit(node, &name, now)
    }

    /// Takes `node` out of network `name`, or withdraws its pending request to join it. The
    /// network stays even when it becomes empty.
    pub fn leave_network(
        &mut self,
        node: NodeKey,
        name: &str,
    ) -> Result<Vec<Change>, RegistryError> {
        let name = name_arg(NameKind::Network, name)?;
        let Some(network) = self.networks.get_mut(&name) else {
            return Err(RegistryError::NoSuchNetwork(name));
        };
        if network.requests.contains_key(&node) {
            return Ok(vec![self.remove_request(&name, node)]);
        }
        if network.members.remove(&node).is_none() {
            return Err(RegistryError::NotAMember(name));
        }
        network.routes.retain(|(k, _)| *k != node);
        if let Some(n) = self.nodes.get_mut(&node) {
            n.networks.remove(&name);
        }
        self.sync_lease_ttl(&node);
        Ok(vec![Change::MemberRemoved {
            network: name,
            node,
        }])
    }

    /// Creates an invite to network `name` for `ttl_secs` (clamped to
    /// [`crate::invite::MIN_TTL`]..=[`crate::invite::MAX_TTL`]; 0: until revoked); only a
    /// member may. `secret` is
    /// 16 fresh random bytes from the caller; only its hash is kept. Invites that have expired
    /// by `now` are pruned on the way (their removals come first in the changes).
    pub fn create_invite(
        &mut self,
        node: NodeKey,
        name: &str,
        secret: &[u8; SECRET_LEN],
        ttl_secs: u64,
        now: u64,
    ) -> Result<(InviteGrant, Vec<Change>), RegistryError> {
        let name = name_arg(NameKind::Network, name)?;
        if !self.nodes.contains_key(&node) {
            return Err(RegistryError::UnknownNode(node));
        }
        let Some(network) = self.networks.get(&name) else {
            return Err(RegistryError::NoSuchNetwork(name));
        };
        if !network.members.contains_key(&node) {
            return Err(RegistryError::NotAMember(name));
        }
        if self.invites.live_count(&name, now) >= MAX_LIVE_PER_NETWORK {
            return Err(RegistryError::TooManyInvites(name));
        }
        let hash = SecretHash::of(secret);
        // An expired invite with the same hash would be pruned below, but a repeated secret
        // means the RNG is broken: refuse rather than hand out a guessable code.
        if self.invites.contains(&hash) {
            return Err(RegistryError::InviteSecretReused);
        }
        let record = InviteRecord {
            hash,
            network: name.clone(),
            created_by: node,
            created_at: now,
            expires: crate::invite::expiry(now, ttl_secs),
        };
        let mut changes: Vec<Change> = self
            .invites
            .prune(now)
            .into_iter()
            .map(|hash| Change::InviteRemoved { hash })
            .collect();
        self.invites.insert(record.clone());
        let grant = InviteGrant {
            network: name,
            secret: URL_SAFE_NO_PAD.encode(secret),
            expires: record.expires,
        };
        changes.push(Change::InviteCreated(record));
        Ok((grant, changes))
    }

    /// Joins `node` to network `name` with an invite's `secret` (base64url text) in place of
    /// the password. Like [`Registry::join_network`], bans come first, the secret is checked
    /// even for a member, joining a network one is already in changes nothing, and a locked
    /// network records a request. A code made before its network was renamed still names the
    /// old name: when no network has that name any more, the secret's own network is used.
    /// Rate limit the callers as for joins: a wrong secret must cost a guesser as much as a
    /// wrong password.
    pub fn join_invite(
        &mut self,
        node: NodeKey,
        name: &str,
        secret: &str,
        now: u64,
    ) -> Result<Vec<Change>, RegistryError> {
        let mut name = name_arg(NameKind::Network, name)?;
        if !self.nodes.contains_key(&node) {
            return Err(RegistryError::UnknownNode(node));
        }
        if !self.networks.contains_key(&name) {
            match self.invites.network_of(secret) {
                Some(renamed) => name = renamed,
                None => return Err(RegistryError::NoSuchNetwork(name)),
            }
        }
        if self.networks[&name].bans.contains_key(&node) {
            return Err(RegistryError::Banned(name));
        }
        match self.invites.check(&name, secret, now) {
            Ok(()) => {}
            Err(InviteProblem::Invalid) => return Err(RegistryError::InviteInvalid(name)),
            Err(InviteProblem::Expired { expires }) => {
                return Err(RegistryError::InviteExpired {
                    network: name,
                    expires,
                })
            }
        }
        self.admit(node, &name, now)
    }

    /// The end of a join whose credentials were accepted: a member stays one; in a locked
    /// network anyone but the owner becomes (or stays) a request; else a member.
    fn admit(&mut self, node: NodeKey, name: &str, now: u64) -> Result<Vec<Change>, RegistryError> {
        let network = &self.networks[name];
        if network.members.contains_key(&node) {
            return Ok(Vec::new());
        }
        self.check_name_free(&self.nodes[&node].name, name, node)?;
        self.check_room(node)?;
        if network.locked && network.owner != node {
            if network.requests.contains_key(&node) {
                return Ok(Vec::new());
            }
            return Ok(vec![self.add_request(name, node, now)]);
        }
        let mut changes = Vec::new();
        if network.requests.contains_key(&node) {
            // Unlocked since it asked: the password or invite admits it now.
            changes.push(self.remove_request(name, node));
        }
        changes.push(self.add_member(name, node, now));
        Ok(changes)
    }

    /// Takes `node` out of every network it is in (sorted by name) and withdraws its pending
    /// requests; its record and lease stay, so it keeps its name and address if it joins again.
    pub fn logout(&mut self, node: NodeKey) -> Result<Vec<Change>, RegistryError> {
        let Some(me) = self.nodes.get_mut(&node) else {
            return Err(RegistryError::UnknownNode(node));
        };
        let networks = std::mem::take(&mut me.networks);
        let waiting: Vec<String> = me.waiting.iter().cloned().collect();
        self.sync_lease_ttl(&node);
        let mut changes: Vec<Change> = waiting
            .iter()
            .map(|n| self.remove_request(n, node))
            .collect();
        changes.extend(networks.into_iter().map(|name| {
            if let Some(n) = self.networks.get_mut(&name) {
                n.members.remove(&node);
                n.routes.retain(|(k, _)| *k != node);
            }
            Change::MemberRemoved {
                network: name,
                node,
            }
        }));
        Ok(changes)
    }

    /// A relay ticket names at most [`MAX_NETWORKS_PER_HOST`] networks: a host in more would
    /// lose its relay paths to some of them without a word.
    fn check_room(&self, node: NodeKey) -> Result<(), RegistryError> {
        let n = self.nodes.get(&node).map_or(0, |n| n.networks.len());
        if n >= MAX_NETWORKS_PER_HOST {
            return Err(RegistryError::TooManyNetworks);
        }
        Ok(())
    }

    fn check_name_free(&self, name: &str, network: &str, me: NodeKey) -> Result<(), RegistryError> {
        let clash = self.networks[network]
            .members
            .keys()
            .any(|k| *k != me && self.nodes[k].name == name);
        if clash {
            return Err(RegistryError::NameTaken {
                name: name.to_owned(),
                network: network.to_owned(),
            });
        }
        Ok(())
    }

    fn add_member(&mut self, network: &str, node: NodeKey, now: u64) -> Change {
        if let Some(n) = self.networks.get_mut(network) {
            n.members.insert(node, now);
        }
        if let Some(n) = self.nodes.get_mut(&node) {
            n.networks.insert(network.to_owned());
        }
        self.sync_lease_ttl(&node);
        Change::MemberAdded(Membership {
            network: network.to_owned(),
            node,
            joined_at: now,
        })
    }
}

fn push_lease_changes(changes: &mut Vec<Change>, node: NodeKey, event: LeaseEvent) {
    let record = |l: Lease| LeaseRecord {
        node,
        addr: l.addr,
        renewed_at: l.renewed_at,
    };
    let (lease, from, taken_from) = match event {
        LeaseEvent::Renewed(l) => return changes.push(Change::LeaseRenewed(record(l))),
        LeaseEvent::Granted { lease, taken_from } => (lease, None, taken_from),
        LeaseEvent::Moved {
            lease,
            from,
            taken_from,
        } => (lease, Some(from), taken_from),
    };
    // Both releases come before the grant: the store keeps addresses unique.
    if let Some(from) = from {
        changes.push(Change::LeaseReleased { node, addr: from });
    }
    if let Some(old) = taken_from {
        changes.push(Change::LeaseReleased {
            node: old,
            addr: lease.addr,
        });
    }
    changes.push(Change::LeaseGranted(record(lease)));
}

#[cfg(test)]
mod tests;
