//! The network owner's controls, and what each host sees of its networks.
//!
//! Rules:
//! - The owner is the host that created the network ([`NetworkRecord::owner`]); only it may
//!   rename the network, change its password, lock or unlock it, answer join requests, remove
//!   (and ban) members and delete the network. Anyone else is told who can.
//! - A locked network turns a join whose password or invite is right into a request (the owner
//!   joins as ever). Approving admits the host; denying, or the host leaving or logging out,
//!   drops the request. Unlocking leaves pending requests for the owner to answer, but a new
//!   join by password or invite then admits the host at once.
//! - A banned key is refused before its password or invite is even looked at. Banning also
//!   drops the invites that host made (so a code it shared stops working) and its request.
//! - Changing the password keeps every member; only joins use the password.
//! - A rename keeps members, invites (codes naming the old name keep working, see
//!   [`Registry::join_invite`]), bans and requests; the new name must be free.
//! - Deleting drops the network with its members, invites, bans and requests.
//! - Any member may list its network's unexpired invites; the owner, or the member who made an
//!   invite, may revoke it (by its id or an unambiguous prefix of at least 4 hex digits).

use std::collections::BTreeMap;

use warren_proto::control::msg::{InviteEntry, JoinRequest, NetworkState};
use warren_proto::key::NodeKey;

use super::{name_arg, Registry, RegistryError, SnapshotError};
use crate::invite::NEVER;
use crate::name::NameKind;
use crate::password::check_phc;
use crate::records::{BanRecord, Change, JoinRequestRecord};

/// The shortest invite id prefix accepted for a revoke: fewer digits would too easily name
/// the wrong one.
pub const MIN_INVITE_ID: usize = 4;

impl Registry {
    /// The normalised name of network `name` if `node` owns it; else why not.
    pub(super) fn owned(
        &self,
        node: NodeKey,
        name: &str,
        action: &'static str,
    ) -> Result<String, RegistryError> {
        let name = name_arg(NameKind::Network, name)?;
        if !self.nodes.contains_key(&node) {
            return Err(RegistryError::UnknownNode(node));
        }
        let Some(network) = self.networks.get(&name) else {
            return Err(RegistryError::NoSuchNetwork(name));
        };
        if network.owner != node {
            return Err(RegistryError::NotOwner {
                owner: self
                    .node_name(&network.owner)
                    .unwrap_or("its creator")
                    .to_owned(),
                network: name,
                action,
            });
        }
        Ok(name)
    }

    /// Owner: gives network `name` the name `new_name`.
    pub fn rename_network(
        &mut self,
        node: NodeKey,
        name: &str,
        new_name: &str,
    ) -> Result<Vec<Change>, RegistryError> {
        let from = self.owned(node, name, "rename it")?;
        let to = name_arg(NameKind::Network, new_name)?;
        if to == from {
            return Ok(Vec::new());
        }
        if self.networks.contains_key(&to) {
            return Err(RegistryError::NetworkExists(to));
        }
        let network = self.networks.remove(&from).expect("owned");
        for key in network.members.keys() {
            if let Some(n) = self.nodes.get_mut(key) {
                n.networks.remove(&from);
                n.networks.insert(to.clone());
            }
        }
        for key in network.requests.keys() {
            if let Some(n) = self.nodes.get_mut(key) {
                n.waiting.remove(&from);
                n.waiting.insert(to.clone());
            }
        }
        self.networks.insert(to.clone(), network);
        self.invites.rename_network(&from, &to);
        Ok(vec![Change::NetworkRenamed { from, to }])
    }

    /// Owner: a new password for network `name`, hashed with `salt` (16 random bytes from the
    /// caller). Members stay; the old password stops working for joins at once.
    pub fn set_password(
        &mut self,
        node: NodeKey,
        name: &str,
        password: &str,
        salt: &[u8; 16],
    ) -> Result<Vec<Change>, RegistryError> {
        self.check_set_password(node, name, password)?;
        let password_hash = Self::hash_new_password(&self.hash_params, password, salt)?;
        self.set_password_hashed(node, name, password_hash)
    }

    /// Would [`Registry::set_password`] succeed (before the hashing)? Returns the normalised
    /// name. For a shell that hashes without its state lock, as for creating a network.
    pub fn check_set_password(
        &self,
        node: NodeKey,
        name: &str,
        password: &str,
    ) -> Result<String, RegistryError> {
        let name = self.owned(node, name, "change its password")?;
        if password.is_empty() {
            return Err(RegistryError::EmptyPassword);
        }
        Ok(name)
    }

    /// The end of [`Registry::set_password`] with the hash made; ownership is checked again.
    pub fn set_password_hashed(
        &mut self,
        node: NodeKey,
        name: &str,
        password_hash: String,
    ) -> Result<Vec<Change>, RegistryError> {
        let name = self.owned(node, name, "change its password")?;
        check_phc(&password_hash)?;
        self.networks.get_mut(&name).expect("owned").password_hash = password_hash.clone();
        Ok(vec![Change::PasswordChanged {
            network: name,
            password_hash,
        }])
    }

    /// Owner: locks or unlocks network `name`; nothing changes if it already is.
    pub fn set_locked(
        &mut self,
        node: NodeKey,
        name: &str,
        locked: bool,
    ) -> Result<Vec<Change>, RegistryError> {
        let action = if locked { "lock it" } else { "unlock it" };
        let name = self.owned(node, name, action)?;
        let network = self.networks.get_mut(&name).expect("owned");
        if network.locked == locked {
            return Ok(Vec::new());
        }
        network.locked = locked;
        Ok(vec![Change::NetworkLocked {
            network: name,
            locked,
        }])
    }

    /// Owner: admits (`approve`) or turns away `who`'s pending request to join `name`.
    pub fn answer_request(
        &mut self,
        node: NodeKey,
        name: &str,
        who: NodeKey,
        approve: bool,
        now: u64,
    ) -> Result<Vec<Change>, RegistryError> {
        let name = self.owned(node, name, "answer requests to join it")?;
        if !self.networks[&name].requests.contains_key(&who) {
            return Err(RegistryError::NoSuchRequest(name));
        }
        if approve {
            // Someone with the same name may have joined since it asked.
            self.check_name_free(&self.nodes[&who].name, &name, who)?;
        }
        let mut changes = vec![self.remove_request(&name, who)];
        if approve {
            changes.push(self.add_member(&name, who, now));
        }
        Ok(changes)
    }

    /// Owner: takes `who` out of network `name` (or drops its request); with `ban`, its key
    /// may not join again and the invites it made are revoked.
    pub fn remove_member(
        &mut self,
        node: NodeKey,
        name: &str,
        who: NodeKey,
        ban: bool,
        now: u64,
    ) -> Result<Vec<Change>, RegistryError> {
        let name = self.owned(node, name, "remove members")?;
        if who == node {
            return Err(RegistryError::RemoveOwner(name));
        }
        let network = &self.networks[&name];
        let member = network.members.contains_key(&who);
        let waiting = network.requests.contains_key(&who);
        if !member && !waiting {
            return Err(RegistryError::NoSuchMember(name));
        }
        let mut changes = Vec::new();
        if waiting {
            changes.push(self.remove_request(&name, who));
        }
        if member {
            let network = self.networks.get_mut(&name).expect("owned");
            network.members.remove(&who);
            network.routes.retain(|(k, _)| *k != who);
            if let Some(n) = self.nodes.get_mut(&who) {
                n.networks.remove(&name);
            }
            self.sync_lease_ttl(&who);
            changes.push(Change::MemberRemoved {
                network: name.clone(),
                node: who,
            });
        }
        if ban {
            for hash in self.invites.of_network(&name, Some(who)) {
                self.invites.remove(&hash);
                changes.push(Change::InviteRemoved { hash });
            }
            self.networks
                .get_mut(&name)
                .expect("owned")
                .bans
                .insert(who, now);
            changes.push(Change::Banned(BanRecord {
                network: name,
                node: who,
                banned_at: now,
            }));
        }
        Ok(changes)
    }

    /// Owner: deletes network `name` for everyone.
    pub fn delete_network(
        &mut self,
        node: NodeKey,
        name: &str,
    ) -> Result<Vec<Change>, RegistryError> {
        let name = self.owned(node, name, "delete it")?;
        let network = self.networks.remove(&name).expect("owned");
        for key in network.members.keys() {
            if let Some(n) = self.nodes.get_mut(key) {
                n.networks.remove(&name);
            }
            self.sync_lease_ttl(key);
        }
        for key in network.requests.keys() {
            if let Some(n) = self.nodes.get_mut(key) {
                n.waiting.remove(&name);
            }
        }
        for hash in self.invites.of_network(&name, None) {
            self.invites.remove(&hash);
        }
        Ok(vec![Change::NetworkDeleted { network: name }])
    }

    /// The unexpired invites of network `name` at `now`, oldest first; for its members and
    /// its owner.
    pub fn list_invites(
        &self,
        node: NodeKey,
        name: &str,
        now: u64,
    ) -> Result<Vec<InviteEntry>, RegistryError> {
        let name = self.member_or_owner(node, name, "list its invites")?;
        let mut list: Vec<InviteEntry> = self
            .invites
            .iter()
            .filter(|i| i.network == name && now <= i.expires)
            .map(|i| InviteEntry {
                id: i.hash.short_id(),
                network: name.clone(),
                created_by: self.node_name(&i.created_by).unwrap_or("?").to_owned(),
                created_at: i.created_at,
                expires: (i.expires != NEVER).then_some(i.expires),
            })
            .collect();
        list.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(list)
    }

    /// Revokes the invite of network `name` whose id starts with `id`: the owner may revoke
    /// any, a member those it made.
    pub fn revoke_invite(
        &mut self,
        node: NodeKey,
        name: &str,
        id: &str,
    ) -> Result<Vec<Change>, RegistryError> {
        let name = self.member_or_owner(node, name, "revoke invites")?;
        let id = id.trim().to_ascii_lowercase();
        let not_found = || RegistryError::NoSuchInvite {
            network: name.clone(),
            id: id.clone(),
        };
        if id.len() < MIN_INVITE_ID {
            return Err(not_found());
        }
        let matches: Vec<_> = self
            .invites
            .iter()
            .filter(|i| i.network == name && i.hash.to_hex().starts_with(&id))
            .cloned()
            .collect();
        let invite = match matches.as_slice() {
            [one] => one,
            [] => return Err(not_found()),
            _ => return Err(RegistryError::AmbiguousInvite { network: name, id }),
        };
        let owner = self.networks[&name].owner;
        if node != owner && node != invite.created_by {
            return Err(RegistryError::NotOwner {
                owner: self.node_name(&owner).unwrap_or("its creator").to_owned(),
                network: name,
                action: "revoke invites other members made",
            });
        }
        self.invites.remove(&invite.hash);
        Ok(vec![Change::InviteRemoved { hash: invite.hash }])
    }

    /// Whether `node` is a member of network `name` (normalised or not).
    pub fn is_member(&self, node: &NodeKey, name: &str) -> bool {
        let Ok(name) = name_arg(NameKind::Network, name) else {
            return false;
        };
        self.networks
            .get(&name)
            .is_some_and(|n| n.members.contains_key(node))
    }

    /// The hosts waiting for an answer to join network `name`, sorted by key.
    pub fn waiting_for(&self, name: &str) -> Vec<NodeKey> {
        let Ok(name) = name_arg(NameKind::Network, name) else {
            return Vec::new();
        };
        self.networks
            .get(&name)
            .map(|n| n.requests.keys().copied().collect())
            .unwrap_or_default()
    }

    /// The owner of network `name`, if it exists.
    pub fn owner_of(&self, name: &str) -> Option<NodeKey> {
        let name = name_arg(NameKind::Network, name).ok()?;
        self.networks.get(&name).map(|n| n.owner)
    }

    /// What `node` should know about its networks: each one it is in or owns, sorted by name
    /// (owned ones with their pending requests), and the locked networks it waits for.
    pub fn networks_state(&self, node: &NodeKey) -> (Vec<NetworkState>, Vec<String>) {
        let Some(me) = self.nodes.get(node) else {
            return (Vec::new(), Vec::new());
        };
        // An owner who left its network still owns it: it can answer, rename, delete.
        let mut names: BTreeMap<&String, ()> = me.networks.iter().map(|n| (n, ())).collect();
        for (name, n) in &self.networks {
            if n.owner == *node {
                names.insert(name, ());
            }
        }
        let states = names
            .into_keys()
            .map(|name| {
                let n = &self.networks[name];
                let owned = n.owner == *node;
                let requests = if owned {
                    n.requests
                        .iter()
                        .map(|(k, at)| JoinRequest {
                            key: *k,
                            name: self.node_name(k).unwrap_or("?").to_owned(),
                            asked_at: *at,
                        })
                        .collect()
                } else {
                    Vec::new()
                };
                NetworkState {
                    name: name.clone(),
                    member: n.members.contains_key(node),
                    owned,
                    locked: n.locked,
                    requests,
                    // Advertisements are session state: the coordinator's hub adds them.
                    routes: Vec::new(),
                }
            })
            .collect();
        (states, me.waiting.iter().cloned().collect())
    }

    /// A member, or the owner even after it left its network; a stranger is told it is not
    /// a member.
    fn member_or_owner(
        &self,
        node: NodeKey,
        name: &str,
        action: &'static str,
    ) -> Result<String, RegistryError> {
        self.member_of(node, name).or_else(|e| match e {
            RegistryError::NotAMember(_) if self.owner_of(name) == Some(node) => {
                self.owned(node, name, action)
            }
            e => Err(e),
        })
    }

    fn member_of(&self, node: NodeKey, name: &str) -> Result<String, RegistryError> {
        let name = name_arg(NameKind::Network, name)?;
        let Some(network) = self.networks.get(&name) else {
            return Err(RegistryError::NoSuchNetwork(name));
        };
        if !network.members.contains_key(&node) {
            return Err(RegistryError::NotAMember(name));
        }
        Ok(name)
    }

    pub(super) fn add_request(&mut self, network: &str, node: NodeKey, now: u64) -> Change {
        if let Some(n) = self.networks.get_mut(network) {
            n.requests.insert(node, now);
        }
        if let Some(n) = self.nodes.get_mut(&node) {
            n.waiting.insert(network.to_owned());
        }
        Change::RequestAdded(JoinRequestRecord {
            network: network.to_owned(),
            node,
            asked_at: now,
        })
    }

    pub(super) fn remove_request(&mut self, network: &str, node: NodeKey) -> Change {
        if let Some(n) = self.networks.get_mut(network) {
            n.requests.remove(&node);
        }
        if let Some(n) = self.nodes.get_mut(&node) {
            n.waiting.remove(network);
        }
        Change::RequestRemoved {
            network: network.to_owned(),
            node,
        }
    }

    /// A stored ban or request must name a known network and node, once.
    pub(super) fn check_owner_record(
        &self,
        network: &str,
        node: NodeKey,
    ) -> Result<(), SnapshotError> {
        let dangling = |missing| SnapshotError::DanglingOwnerRecord {
            network: network.to_owned(),
            node,
            missing,
        };
        if !self.nodes.contains_key(&node) {
            return Err(dangling("node"));
        }
        if !self.networks.contains_key(network) {
            return Err(dangling("network"));
        }
        Ok(())
    }
}
