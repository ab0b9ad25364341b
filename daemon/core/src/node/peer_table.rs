//! The peer table: peers the coordinator brings, their endpoints and names, and the counters.

use super::*;

impl Node {
    pub fn public_key(&self) -> NodeKey {
        NodeKey(*self.public.as_bytes())
    }

    pub fn add_peer(&mut self, config: PeerConfig) -> Result<PeerId, NodeError> {
        let key = config.public_key;
        if key.0 == *self.public.as_bytes() {
            return Err(NodeError::OwnKey(key));
        }
        if self.by_key.contains_key(&key.0) {
            return Err(NodeError::DuplicatePeer(key));
        }
        let id = self
            .peers
            .iter()
            .position(Option::is_none)
            .unwrap_or(self.peers.len());
        if id >= MAX_PEERS {
            return Err(NodeError::TooManyPeers);
        }
        for net in &config.allowed_ips {
            if let Err(owner) = self.routes.insert(*net, id) {
                self.routes.remove_owner(id);
                return Err(NodeError::RouteConflict {
                    net: net.to_string(),
                    peer: config.name.clone(),
                    owner: self
                        .peer(owner)
                        .map(|p| p.name().to_string())
                        .unwrap_or_default(),
                });
            }
        }
        let tunn = Tunn::new(
            self.secret.clone(),
            PublicKey::from(key.0),
            None,
            config.persistent_keepalive,
            id as u32,
            None,
        );
        self.by_key.insert(key.0, id);
        let mut tx_salt = [0u8; 8];
        tx_salt[..4].copy_from_slice(&self.nonce_prefix[..4]);
        tx_salt[4..].copy_from_slice(&(id as u32).to_le_bytes());
        let peer = Peer {
            endpoint: config.endpoint,
            config,
            tunn,
            last_authenticated: None,
            paths: PeerPaths::new(PathConfig::default(), tx_salt),
            disco: DiscoKey::derive(&self.secret_bytes, self.public_key(), key).ok(),
            fresh: Default::default(),
            applied_path: None,
            nat: NatKind::Unknown,
            reflexive: None,
            relays: Vec::new(),
            networks: Vec::new(),
            subnets: Vec::new(),
            discovery: true,
        };
        if id == self.peers.len() {
            self.peers.push(Some(peer));
        } else {
            self.peers[id] = Some(peer);
        }
        self.serve_peer_added(key);
        Ok(id)
    }

    /// Forgets a peer: its routes, its session, anything queued for it.
    pub fn remove_peer(&mut self, key: &NodeKey) -> bool {
        let Some(id) = self.by_key.remove(&key.0) else {
            return false;
        };
        self.routes.remove_owner(id);
        self.peers[id] = None;
        self.release_kept(id);
        self.end_birthday_with(id);
        self.forget_tcp_dial(id);
        self.serve_peer_removed(key);
        self.flush.retain(|p| *p != id);
        self.announce.retain(|p| *p != id);
        self.disco_dirty.retain(|p| *p != id);
        self.handshake_now.retain(|p| *p != id);
        self.pongs.retain(|(p, _, _)| *p != id);
        true
    }

    /// The coordinator introduced `key` (or asks to probe again) with these candidates; the
    /// peer got ours at the same moment, so both sides' pings open their NATs for each other.
    pub fn handle_call_me_maybe(
        &mut self,
        now: Instant,
        key: &NodeKey,
        lan: &[SocketAddr],
        reflexive: Option<SocketAddr>,
        mapped: Option<SocketAddr>,
    ) -> bool {
        self.note_time(now);
        let Some(id) = self.peer_id(key) else {
            return false;
        };
        // A host with a public address lists it among its interface addresses too; the same
        // address as its reflexive one is not a LAN path.
        // An address inside a LAN routed through a peer would be reached through the overlay
        // itself (WireGuard inside WireGuard): not a direct path.
        let mut candidates: Vec<Candidate> = lan
            .iter()
            .filter(|a| Some(**a) != reflexive && Some(**a) != mapped)
            .filter(|a| !self.in_a_subnet_route(a.ip()))
            .map(|a| Candidate::new(*a, CandidateKind::of_interface_address(a.ip())))
            .collect();
        candidates.extend(mapped.map(|a| Candidate::new(a, CandidateKind::Mapped)));
        candidates.extend(
            reflexive
                .filter(|a| Some(*a) != mapped)
                .map(|a| Candidate::new(a, CandidateKind::Reflexive)),
        );
        if let Some(peer) = self.peers[id].as_mut() {
            peer.paths.handle_call_me_maybe(now, &candidates);
            peer.reflexive = reflexive;
            self.disco_dirty.push_back(id);
        }
        self.maybe_start_birthday(now, id);
        true
    }

    /// Points a peer's WireGuard session at `endpoint` (path selection decided it).
    pub fn set_endpoint(&mut self, key: &NodeKey, endpoint: SocketAddr) -> bool {
        match self
            .by_key
            .get(&key.0)
            .and_then(|id| self.peers[*id].as_mut())
        {
            Some(peer) => {
                peer.endpoint = Some(endpoint);
                true
            }
            None => false,
        }
    }

    pub fn peer_id(&self, key: &NodeKey) -> Option<PeerId> {
        self.by_key.get(&key.0).copied()
    }

    pub fn peer(&self, id: PeerId) -> Option<&Peer> {
        self.peers.get(id).and_then(Option::as_ref)
    }

    /// A peer chose another name (`warren name`): its session and paths stay as they are.
    pub fn rename_peer(&mut self, key: &NodeKey, name: &str) {
        if let Some(p) = self.peer_id(key).and_then(|id| self.peers[id].as_mut()) {
            if p.config.name != name {
                p.config.name = name.to_string();
            }
        }
    }

    pub fn peers(&self) -> impl Iterator<Item = &Peer> {
        self.peers.iter().flatten()
    }

    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// For drops the shell sees (send and TUN write failures).
    pub fn count_drop(&mut self, reason: DropReason) {
        self.counters.drop(reason);
    }
}
