//! The coordinator's live state: the registry (persisted through the store) plus who is
//! online, with the endpoints each node reported, and the channel to push it messages.
//!
//! Every change touches only the acting node and its peers: one host joining, leaving, or
//! moving costs O(its peers), never O(network²).

mod cluster;

use crate::outbox::OutboxTx;
use crate::store::Storage;
use anyhow::Result;
use std::cell::RefCell;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};
use warren_coordinator_core::candidates::EndpointLimiter;
use warren_coordinator_core::outbox::Frame;
use warren_coordinator_core::reachable::Reachable;
use warren_coordinator_core::{
    Change, JoinLimiter, NewKeyLimiter, PasswordLimiter, RateLimitConfig, Registry, RegistryError,
};
use warren_proto::control::msg::{ErrorCode, NatKind, PeerInfo, PeerRoute, ServerMsg};
use warren_proto::key::NodeKey;

/// Upserts kept for reuse at most (one per host): hosts that come and go for good are
/// forgotten when the cache starts over.
const MAX_CACHED_UPSERTS: usize = 200_000;

pub struct Online {
    pub session: u64,
    /// Bounded: a daemon that stops reading is disconnected, not buffered for.
    pub tx: OutboxTx,
    /// Where peers reach it: what it reported, as far as the coordinator vouches for it.
    pub reach: Reachable,
    /// The session's token for a standalone relay, which its ticket refreshes name.
    pub relay_token: Option<warren_proto::relay::RelayToken>,
    /// The LAN prefixes it advertises (valid, at most `MAX_ROUTES_PER_NODE`).
    pub routes: Vec<String>,
    /// Its endpoint updates (each one is announced to every peer).
    pub endpoint_limit: EndpointLimiter,
    /// The rounds of "call me maybe" its changes start (each one asks every online peer to
    /// probe it, and it to probe them): as many as endpoint updates, whatever starts them.
    /// A cell because announcing reads the hub; the hub's lock guards it.
    pub call_limit: RefCell<EndpointLimiter>,
    /// Its daemon reads the call to probe on an upsert and [`ServerMsg::Calls`] (one message
    /// for a round of calls); older daemons are sent [`ServerMsg::CallMeMaybe`] instead.
    pub batch_calls: bool,
}

/// What the hub counts for the metrics ([`crate::metrics`]).
#[derive(Default)]
pub struct HubStats {
    /// Memberships added: joins, and creators joining their new network.
    pub members_added: AtomicU64,
    /// Rounds of telling a host's peers about it, and their total time in µs.
    pub fanouts: AtomicU64,
    pub fanout_micros: AtomicU64,
}

pub struct Hub {
    pub stats: HubStats,
    pub registry: Registry,
    pub store: Box<dyn Storage>,
    pub online: HashMap<NodeKey, Online>,
    pub limiter: JoinLimiter,
    /// Password attempts per network and overall (each one costs an Argon2 run).
    pub passwords: PasswordLimiter,
    /// Keys registering for the first time, per source.
    pub new_keys: NewKeyLimiter,
    next_session: u64,
    /// Bumped with every persisted change, under the hub lock: the relay reads it without
    /// the lock to know when its cached "do these two share a network?" answers are stale.
    generation: Arc<AtomicU64>,
    /// The memberships as the relay reads them, without this hub's lock.
    pub index: Arc<crate::membership_index::MembershipIndex>,
    /// The last upsert built about each host: the next one with the same content is this
    /// frame again, so a host's record queued for thousands of peers (a large network
    /// forming) is one allocation, encoded once.
    upserts: RefCell<HashMap<NodeKey, Frame>>,
    /// The nodes online here that advertise subnet routes (few: home routers, NAS boxes), so
    /// a network's routes are listed without walking its members.
    pub advertisers: std::collections::BTreeSet<NodeKey>,
    /// Where this coordinator's events go for the others on its database (`None`: alone).
    pub cluster: Option<crate::cluster::Publisher>,
    /// The nodes online at the other coordinators on the database.
    pub remote: crate::cluster::presence::RemotePresence,
}

pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn unix_now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

pub fn error_code(e: &RegistryError) -> ErrorCode {
    match e {
        RegistryError::WrongPassword(_) => ErrorCode::WrongPassword,
        RegistryError::NoSuchNetwork(_) => ErrorCode::NoSuchNetwork,
        RegistryError::NetworkExists(_) => ErrorCode::NetworkExists,
        RegistryError::NameTaken { .. } => ErrorCode::NameTaken,
        RegistryError::NotAMember(_) => ErrorCode::NotAMember,
        RegistryError::InviteInvalid(_) => ErrorCode::InviteInvalid,
        RegistryError::InviteExpired { .. } => ErrorCode::InviteExpired,
        // "Wait and try again" is what the user can do about it, as for a rate limit.
        RegistryError::TooManyInvites(_) => ErrorCode::RateLimited,
        RegistryError::InvalidName { .. } | RegistryError::EmptyPassword => ErrorCode::InvalidName,
        RegistryError::NotOwner { .. } | RegistryError::RemoveOwner(_) => ErrorCode::NotOwner,
        RegistryError::Banned(_) => ErrorCode::Banned,
        RegistryError::NoSuchMember(_)
        | RegistryError::NoSuchRequest(_)
        | RegistryError::NoSuchInvite { .. }
        | RegistryError::AmbiguousInvite { .. } => ErrorCode::NotFound,
        _ => ErrorCode::Internal,
    }
}

impl Hub {
    pub fn new(registry: Registry, store: impl Into<Box<dyn Storage>>) -> Self {
        let index = Arc::new(crate::membership_index::MembershipIndex::from_registry(
            &registry,
        ));
        Self {
            registry,
            store: store.into(),
            online: HashMap::new(),
            limiter: JoinLimiter::new(RateLimitConfig::default()),
            passwords: PasswordLimiter::default(),
            new_keys: NewKeyLimiter::default(),
            next_session: 1,
            stats: HubStats::default(),
            generation: Arc::new(AtomicU64::new(0)),
            index,
            cluster: None,
            remote: Default::default(),
            upserts: RefCell::new(HashMap::new()),
            advertisers: Default::default(),
        }
    }

    /// A hub whose limiters are the operator's ([`crate::limits`]).
    pub fn with_limits(
        registry: Registry,
        store: impl Into<Box<dyn Storage>>,
        limits: &crate::limits::Limits,
    ) -> Self {
        let mut hub = Self::new(registry, store);
        hub.limiter = JoinLimiter::new(limits.join());
        hub.passwords = PasswordLimiter::new(limits.password_network(), limits.password_total());
        hub.new_keys = NewKeyLimiter::new(limits.new_hosts());
        hub
    }

    /// The counter that moves with every stored change, to read without the hub lock.
    pub fn generation_counter(&self) -> Arc<AtomicU64> {
        self.generation.clone()
    }

    /// Persists what an operation changed, or undoes it: the registry applies an operation
    /// in memory first, so when the database refuses the change (a full disk, a failing
    /// device, a lost connection) the registry is rebuilt from the database, which the
    /// transaction left as it was before the change, and the caller reports the failure.
    /// Memory and database never disagree about anything a client was told. Every registry
    /// change comes through here, which is why this is also where the generation moves.
    pub fn persist(&mut self, changes: &[Change]) -> Result<()> {
        if changes.is_empty() {
            return Ok(());
        }
        self.generation.fetch_add(1, Ordering::Release);
        if let Err(e) = self.store.apply(changes) {
            self.roll_back(&e);
            self.index.rebuild(&self.registry);
            self.generation.fetch_add(1, Ordering::Release);
            return Err(e.into());
        }
        self.index.apply(&self.registry, changes);
        // Answers the relay cached while the index moved belong to the old generation.
        self.generation.fetch_add(1, Ordering::Release);
        let added = changes
            .iter()
            .filter(|c| matches!(c, Change::MemberAdded(_)))
            .count();
        self.stats
            .members_added
            .fetch_add(added as u64, Ordering::Relaxed);
        self.cluster_publish(crate::cluster::Event::Registry);
        Ok(())
    }

    fn roll_back(&mut self, why: &crate::store::StoreError) {
        let config = self.registry.config();
        let stored = self
            .store
            .load()
            .map_err(anyhow::Error::from)
            .and_then(|snap| Ok(Registry::from_snapshot(config, snap)?));
        match stored {
            Ok(registry) => {
                self.registry = registry;
                tracing::error!("the database refused a change, which was undone: {why}");
            }
            Err(e) => tracing::error!(
                "the database refused a change ({why}) and cannot be read back ({e:#}): \
                 the coordinator keeps the change in memory; restart it once the database \
                 works again"
            ),
        }
    }

    pub fn check_rate(&mut self, source: IpAddr) -> Result<(), String> {
        self.limiter
            .handle_attempt(source, unix_now_ms())
            .map_err(|_| "too many join attempts from this address; wait a minute".to_string())
    }

    /// One password attempt (a join, a new network, a new password) from `source` at
    /// `network`: within the per-source, per-network and overall limits, or why not.
    pub fn check_password_rate(&mut self, source: IpAddr, network: &str) -> Result<(), String> {
        self.passwords
            .attempt(&mut self.limiter, source, network, unix_now_ms())
            .map_err(|e| e.to_string())
    }

    /// `key` connects from `source`: a key never seen before counts against the source's
    /// limit on new keys.
    pub fn check_new_key(&mut self, key: &NodeKey, source: IpAddr) -> Result<(), String> {
        if self.registry.node_name(key).is_some() {
            return Ok(());
        }
        self.new_keys
            .new_key(source, unix_now_ms())
            .map_err(|e| e.to_string())
    }

    /// Marks `key` online; returns the session number that `go_offline` must present.
    pub fn go_online(
        &mut self,
        key: NodeKey,
        tx: OutboxTx,
        lan: Vec<SocketAddr>,
        reflexive: Option<SocketAddr>,
    ) -> u64 {
        let session = self.next_session;
        self.next_session += 1;
        // A new session starts with no routes until the daemon advertises them again.
        self.advertisers.remove(&key);
        self.online.insert(
            key,
            Online {
                session,
                tx,
                reach: Reachable::at_connect(lan, reflexive),
                relay_token: None,
                routes: Vec::new(),
                endpoint_limit: EndpointLimiter::new(unix_now()),
                call_limit: RefCell::new(EndpointLimiter::new(unix_now())),
                batch_calls: false,
            },
        );
        session
    }

    /// Marks `key` offline unless a newer session of the same node replaced this one.
    pub fn go_offline(&mut self, key: &NodeKey, session: u64) -> bool {
        if self.online.get(key).is_some_and(|o| o.session == session) {
            self.online.remove(key);
            self.advertisers.remove(key);
            true
        } else {
            false
        }
    }

    /// `about` as `to` should see it (the networks they share, online state, candidates);
    /// `None` if they share no network. Costs O(networks of the two), not O(peers), so
    /// announcing one host to all its peers stays linear in its peers.
    pub fn peer_info(&self, to: &NodeKey, about: &NodeKey) -> Option<PeerInfo> {
        if to == about {
            return None;
        }
        let networks = self.registry.shared_networks(to, about);
        if networks.is_empty() {
            return None;
        }
        self.info_in(about, networks)
    }

    /// `about` as members of `networks` see it.
    fn info_in(&self, about: &NodeKey, networks: Vec<String>) -> Option<PeerInfo> {
        // Connected here, else at another coordinator on the same database.
        let online = self.endpoints_of(about);
        let routes = online
            .as_ref()
            .map(|o| {
                o.routes
                    .iter()
                    .map(|prefix| PeerRoute {
                        approved: self.registry.route_approved(&networks, about, prefix),
                        prefix: prefix.clone(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        Some(PeerInfo {
            key: *about,
            name: self.registry.node_name(about)?.to_string(),
            overlay_ip: IpAddr::V4(self.registry.lease_of(about)?.addr),
            networks,
            online: online.is_some(),
            nat: online.as_ref().map(|o| o.nat).unwrap_or(NatKind::Unknown),
            reflexive: online.as_ref().and_then(|o| o.reflexive),
            mapped: online.as_ref().and_then(|o| o.mapped),
            relay: online.as_ref().is_some_and(|o| o.relay),
            routes,
            mapped_tcp: online.as_ref().and_then(|o| o.mapped_tcp),
            lan: online.map(|o| o.lan).unwrap_or_default(),
        })
    }

    /// An upsert of `about` as members of `networks` see it: the frame built last time if
    /// nothing in it changed since (see [`Hub::upserts`]).
    fn upsert(&self, about: &NodeKey, networks: Vec<String>, call: bool) -> Option<Frame> {
        let msg = ServerMsg::PeerUpsert {
            peer: self.info_in(about, networks)?,
            call,
        };
        let mut upserts = self.upserts.borrow_mut();
        if upserts.len() >= MAX_CACHED_UPSERTS && !upserts.contains_key(about) {
            upserts.clear(); // a cost (frames built anew), never a wrong record
        }
        match upserts.get(about) {
            Some(f) if *f.msg() == msg => Some(f.clone()),
            _ => {
                let f = Frame::new(msg);
                upserts.insert(*about, f.clone());
                Some(f)
            }
        }
    }

    pub fn send(&self, to: &NodeKey, msg: impl Into<Frame>) {
        if let Some(o) = self.online.get(to) {
            let _ = o.tx.send(msg);
        }
    }

    /// `key`'s peers, sorted.
    pub fn peers(&self, key: &NodeKey) -> Vec<NodeKey> {
        self.registry.peer_keys(key)
    }

    /// Tells `key` and each of its peers about the other, and asks online pairs to probe each
    /// other now ("call me maybe", sent to both sides at the same moment) unless `key` started
    /// too many such rounds lately: then the peers still learn its state and probe it on their
    /// own schedule.
    pub fn announce(&self, key: &NodeKey, peers: &[NodeKey]) {
        self.timed(|| self.announce_to(key, peers, true));
    }

    /// After `key` reported new endpoints: its peers learn them, and it learns its peers'
    /// (which it already knows) only where the message carries a call to probe.
    pub fn announce_moved(&self, key: &NodeKey, peers: &[NodeKey]) {
        self.timed(|| self.announce_to(key, peers, false));
    }

    fn timed(&self, fanout: impl FnOnce()) {
        let started = std::time::Instant::now();
        fanout();
        self.stats.fanouts.fetch_add(1, Ordering::Relaxed);
        self.stats
            .fanout_micros
            .fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
    }

    fn announce_to(&self, key: &NodeKey, peers: &[NodeKey], introduce: bool) {
        let calls = peers.is_empty()
            || self
                .online
                .get(key)
                .is_some_and(|o| o.call_limit.borrow_mut().allow(unix_now()));
        if !calls {
            tracing::debug!(node = %key, "call-me-maybe round over the rate limit: skipped");
        }
        let key_online = self.online.contains_key(key);
        let batch = self.online.get(key).is_some_and(|o| o.batch_calls);
        let mut to_call: Vec<NodeKey> = Vec::new();
        for peer in peers {
            // Both sides probe at once when both are online: the upserts carry the call.
            let call = calls && key_online && self.online.contains_key(peer);
            let shared = self.registry.shared_networks(key, peer);
            if shared.is_empty() {
                continue;
            }
            if !introduce && call && batch {
                to_call.push(*peer);
            } else if introduce || call {
                self.tell(key, peer, shared.clone(), call);
            }
            // Nothing is sent to a peer not connected here: building its copy would only
            // push a frame of another shape through the cache.
            if self.online.contains_key(peer) {
                self.tell(peer, key, shared, call);
            }
        }
        if !to_call.is_empty() {
            self.send(key, ServerMsg::Calls { keys: to_call });
        }
    }

    /// Sends `to` the record of `about` (as members of `networks` see it), with the call to
    /// probe it if `call`: on the upsert for daemons that read it there, else as the
    /// separate call-me-maybe older daemons know.
    fn tell(&self, to: &NodeKey, about: &NodeKey, networks: Vec<String>, call: bool) {
        let Some(recipient) = self.online.get(to) else {
            return;
        };
        let flagged = call && recipient.batch_calls;
        if let Some(f) = self.upsert(about, networks, flagged) {
            let _ = recipient.tx.send(f);
        }
        if call && !recipient.batch_calls {
            if let Some(e) = self.endpoints_of(about) {
                let _ = recipient.tx.send(ServerMsg::CallMeMaybe {
                    key: *about,
                    lan: e.lan,
                    reflexive: e.reflexive,
                    mapped: e.mapped,
                    mapped_tcp: e.mapped_tcp,
                });
            }
        }
    }

    /// After `key` registered: the peers of a node whose expired lease it took drop that node,
    /// which has no address until it registers again (and would clash with `key` meanwhile).
    pub fn drop_taken_over(&self, key: &NodeKey, changes: &[Change]) {
        for change in changes {
            let Change::LeaseReleased { node: lost, .. } = change else {
                continue;
            };
            if lost == key {
                continue; // it moved; it is announced when it goes online
            }
            for peer in self.peers(lost) {
                self.send(&peer, ServerMsg::PeerRemove { key: *lost });
            }
        }
    }

    /// After a membership change of `key`: peers gained are introduced both ways, peers lost
    /// are removed both ways.
    pub fn reconcile(&self, key: &NodeKey, before: &[NodeKey]) {
        let after = self.peers(key);
        let mut before = before.to_vec();
        before.sort_unstable();
        let gained: Vec<NodeKey> = after
            .iter()
            .filter(|p| before.binary_search(p).is_err())
            .copied()
            .collect();
        for lost in before.iter().filter(|p| after.binary_search(p).is_err()) {
            self.send(key, ServerMsg::PeerRemove { key: *lost });
            self.send(lost, ServerMsg::PeerRemove { key: *key });
        }
        self.announce(key, &gained);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbox::{outbox, OutboxRx};
    use crate::store::SqliteStore as Store;
    use warren_coordinator_core::outbox::DEFAULT_CAPACITY;
    use warren_coordinator_core::{HashParams, RegistryConfig};
    use warren_proto::overlay::OVERLAY_V4;

    fn key(i: u32) -> NodeKey {
        let mut k = [0u8; 32];
        k[..4].copy_from_slice(&i.to_le_bytes());
        k[31] = 0x42;
        NodeKey(k)
    }

    /// `n` online members of one network; returns the hub and each member's inbox.
    fn network_of(n: u32, dir: &std::path::Path) -> (Hub, Vec<OutboxRx>) {
        let config = RegistryConfig {
            hash_params: HashParams::new(HashParams::MIN_M_COST, 1, 1, None).unwrap(),
            lease_pool: OVERLAY_V4,
        };
        let mut hub = Hub::new(Registry::new(config).unwrap(), Store::open(dir).unwrap());
        let mut inboxes = Vec::new();
        for i in 0..n {
            let c = hub
                .registry
                .register_node(key(i), &format!("h{i}"), None, 1)
                .unwrap();
            hub.persist(&c).unwrap();
            let c = if i == 0 {
                hub.registry
                    .create_network(key(0), "net", "pw", &[7; 16], 1)
            } else {
                hub.registry.join_network(key(i), "net", "pw", 1)
            }
            .unwrap();
            hub.persist(&c).unwrap();
            let (tx, rx) = outbox(DEFAULT_CAPACITY);
            hub.go_online(key(i), tx, vec![], None);
            hub.online.get_mut(&key(i)).unwrap().batch_calls = true;
            inboxes.push(rx);
        }
        (hub, inboxes)
    }

    fn drain(inboxes: &mut [OutboxRx]) -> usize {
        inboxes
            .iter_mut()
            .map(|rx| std::iter::from_fn(|| rx.try_recv()).count())
            .sum()
    }

    /// What one host's change costs, in messages pushed, for networks of 10 and 40 hosts.
    fn cost_of_one_change(n: u32) -> usize {
        let dir = std::env::temp_dir().join(format!("warren-hub-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let (mut hub, mut inboxes) = network_of(n, &dir);
        drain(&mut inboxes);
        // Host 3 reports new endpoints.
        if let Some(o) = hub.online.get_mut(&key(3)) {
            o.reach.reflexive = Some("203.0.113.9:41820".parse().unwrap());
        }
        let peers = hub.peers(&key(3));
        hub.announce(&key(3), &peers);
        let sent = drain(&mut inboxes);
        drop(hub); // closes its SQLite files: Windows deletes no open file
        std::fs::remove_dir_all(&dir).unwrap();
        sent
    }

    #[test]
    fn one_hosts_change_costs_messages_linear_in_its_peers() {
        let (small, big) = (cost_of_one_change(10), cost_of_one_change(40));
        // Each peer gets one upsert (which carries the call to probe), and so does the host
        // per peer.
        assert_eq!(small, 2 * 9);
        assert_eq!(big, 2 * 39);
    }

    /// A host's new endpoints reach its peers, each peer's record built once for all of them
    /// (one shared frame); the host itself is not sent records it already has, unless they
    /// carry a call to probe.
    #[test]
    fn a_move_is_one_shared_frame_to_the_peers_and_calls_back() {
        use warren_coordinator_core::candidates::ENDPOINT_BURST;
        let dir = std::env::temp_dir().join(format!("warren-hub-mv-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let (hub, mut inboxes) = network_of(5, &dir);
        drain(&mut inboxes);
        let peers = hub.peers(&key(0));
        assert_eq!(peers.len(), 4);
        let mut call_rounds = 0;
        for round in 0..ENDPOINT_BURST as usize + 3 {
            hub.announce_moved(&key(0), &peers);
            let to_mover: Vec<ServerMsg> = std::iter::from_fn(|| inboxes[0].try_recv()).collect();
            // The burst, then none (or one more if the clock passed a refill meanwhile).
            let calls = !to_mover.is_empty();
            assert!(calls || round >= ENDPOINT_BURST as usize, "round {round}");
            call_rounds += usize::from(calls);
            if calls {
                // One message for the round, however many peers.
                assert_eq!(
                    to_mover,
                    [ServerMsg::Calls {
                        keys: peers.clone()
                    }],
                    "round {round}"
                );
            } else {
                assert!(to_mover.is_empty(), "round {round}: {to_mover:?}");
            }
            for rx in &mut inboxes[1..] {
                let got: Vec<ServerMsg> = std::iter::from_fn(|| rx.try_recv()).collect();
                assert!(
                    matches!(&got[..], [ServerMsg::PeerUpsert { peer, call }]
                        if peer.key == key(0) && *call == calls),
                    "round {round}: {got:?}"
                );
            }
        }
        let burst = ENDPOINT_BURST as usize;
        assert!((burst..=burst + 1).contains(&call_rounds), "{call_rounds}");
        drop(hub); // closes its SQLite files: Windows deletes no open file
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A daemon that did not say it reads calls on upserts (an older one) is asked to probe
    /// with a call-me-maybe beside a plain upsert, both ways, as before.
    #[test]
    fn older_daemons_are_called_the_old_way() {
        let dir = std::env::temp_dir().join(format!("warren-hub-old-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let (mut hub, mut inboxes) = network_of(3, &dir);
        hub.online.get_mut(&key(1)).unwrap().batch_calls = false;
        hub.online.get_mut(&key(0)).unwrap().reach.reflexive =
            Some("203.0.113.9:41820".parse().unwrap());
        drain(&mut inboxes);
        let peers = hub.peers(&key(0));
        hub.announce(&key(0), &peers);
        let old: Vec<ServerMsg> = std::iter::from_fn(|| inboxes[1].try_recv()).collect();
        assert!(
            matches!(&old[..], [ServerMsg::PeerUpsert { peer, call: false },
                ServerMsg::CallMeMaybe { key: k, reflexive, .. }]
                if peer.key == key(0) && *k == key(0)
                    && *reflexive == Some("203.0.113.9:41820".parse().unwrap())),
            "{old:?}"
        );
        let new: Vec<ServerMsg> = std::iter::from_fn(|| inboxes[2].try_recv()).collect();
        assert!(
            matches!(&new[..], [ServerMsg::PeerUpsert { peer, call: true }] if peer.key == key(0)),
            "{new:?}"
        );
        // The host itself (a current daemon) learns both with the call on the upsert.
        let own: Vec<ServerMsg> = std::iter::from_fn(|| inboxes[0].try_recv()).collect();
        assert_eq!(own.len(), 2, "{own:?}");
        assert!(own
            .iter()
            .all(|m| matches!(m, ServerMsg::PeerUpsert { call: true, .. })));
        drop(hub); // closes its SQLite files: Windows deletes no open file
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A host's record is one frame however many hosts it goes to: its peers all get the
    /// same allocation when it moves, and two hosts joining after it are introduced to it with
    /// the same one too; a change of its state makes a new frame.
    #[test]
    fn a_hosts_record_is_one_frame_for_all_its_peers() {
        use crate::outbox::Next;
        let dir = std::env::temp_dir().join(format!("warren-hub-fr-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let (mut hub, mut inboxes) = network_of(4, &dir);
        drain(&mut inboxes);
        let frame = |rx: &mut OutboxRx| match rx.try_next() {
            Some(Next::Msg(f)) => f,
            other => panic!("{other:?}"),
        };
        let peers = hub.peers(&key(0));
        hub.announce_moved(&key(0), &peers);
        let (a, b) = (frame(&mut inboxes[1]), frame(&mut inboxes[2]));
        assert!(a.is_shared_with(&b));
        drain(&mut inboxes);

        // Two newcomers are introduced to host 0 by the same frame.
        for i in [10, 11] {
            let c = hub
                .registry
                .register_node(key(i), &format!("h{i}"), None, 1)
                .unwrap();
            hub.persist(&c).unwrap();
            let (tx, rx) = outbox(DEFAULT_CAPACITY);
            hub.go_online(key(i), tx, vec![], None);
            inboxes.push(rx);
            let before = hub.peers(&key(i));
            let c = hub.registry.join_network(key(i), "net", "pw", 1).unwrap();
            hub.persist(&c).unwrap();
            hub.reconcile(&key(i), &before);
        }
        let about_0 = |rx: &mut OutboxRx| {
            std::iter::from_fn(|| match rx.try_next() {
                Some(Next::Msg(f)) => Some(f),
                _ => None,
            })
            .find(|f| matches!(f.msg(), ServerMsg::PeerUpsert { peer, .. } if peer.key == key(0)))
            .expect("host 0 introduced")
        };
        let (n10, n11) = (inboxes.len() - 2, inboxes.len() - 1);
        let first = about_0(&mut inboxes[n10]);
        let second = about_0(&mut inboxes[n11]);
        assert!(first.is_shared_with(&second));

        // Host 0 moves: a new frame with its new address.
        if let Some(o) = hub.online.get_mut(&key(0)) {
            o.reach.reflexive = Some("203.0.113.50:41820".parse().unwrap());
        }
        let peers = hub.peers(&key(0));
        hub.announce_moved(&key(0), &peers);
        let moved = about_0(&mut inboxes[n10]);
        assert!(!moved.is_shared_with(&first));
        assert!(matches!(moved.msg(), ServerMsg::PeerUpsert { peer, .. }
            if peer.reflexive == Some("203.0.113.50:41820".parse().unwrap())));
        drop(hub); // closes its SQLite files: Windows deletes no open file
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// However a host's changes come (endpoint updates, joins, reconnects), the rounds of
    /// "call me maybe" they start are limited per session; its peers still get its state.
    #[test]
    fn call_me_maybe_rounds_are_rate_limited_per_session() {
        use warren_coordinator_core::candidates::ENDPOINT_BURST;
        let dir = std::env::temp_dir().join(format!("warren-hub-cmm-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let (hub, mut inboxes) = network_of(3, &dir);
        drain(&mut inboxes);
        let peers = hub.peers(&key(0));
        let (mut calls, mut upserts) = (0, 0);
        for _ in 0..50 {
            hub.announce(&key(0), &peers);
            for m in std::iter::from_fn(|| inboxes[1].try_recv()) {
                if let ServerMsg::PeerUpsert { call, .. } = m {
                    upserts += 1;
                    calls += usize::from(call);
                }
            }
        }
        assert_eq!(upserts, 50);
        // The burst, and at most one more if the clock passed a refill meanwhile.
        let burst = ENDPOINT_BURST as usize;
        assert!((burst..=burst + 1).contains(&calls), "{calls} rounds");
        // Another host's rounds are its own.
        assert!(hub.online[&key(1)]
            .call_limit
            .borrow_mut()
            .allow(unix_now()));
        drop(hub); // closes its SQLite files: Windows deletes no open file
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn invite_errors_have_their_own_codes() {
        let expired = RegistryError::InviteExpired {
            network: "net".into(),
            expires: 1,
        };
        assert_eq!(error_code(&expired), ErrorCode::InviteExpired);
        let invalid = RegistryError::InviteInvalid("net".into());
        assert_eq!(error_code(&invalid), ErrorCode::InviteInvalid);
        let full = RegistryError::TooManyInvites("net".into());
        assert_eq!(error_code(&full), ErrorCode::RateLimited);
        assert_eq!(
            error_code(&RegistryError::InviteSecretReused),
            ErrorCode::Internal
        );
    }

    #[test]
    fn peers_sharing_no_network_learn_nothing() {
        let dir = std::env::temp_dir().join(format!("warren-hub-iso-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let (mut hub, mut inboxes) = network_of(3, &dir);
        let c = hub
            .registry
            .register_node(key(99), "loner", None, 1)
            .unwrap();
        hub.persist(&c).unwrap();
        let (tx, mut rx) = outbox(DEFAULT_CAPACITY);
        hub.go_online(key(99), tx, vec![], None);
        drain(&mut inboxes);
        let peers = hub.peers(&key(99));
        assert!(peers.is_empty());
        hub.announce(&key(99), &peers);
        assert_eq!(drain(&mut inboxes), 0);
        assert!(rx.try_recv().is_none());
        assert!(hub.peer_info(&key(0), &key(99)).is_none());
        drop(hub); // closes its SQLite files: Windows deletes no open file
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Through the hub, on PostgreSQL: a network and a join are stored; a change PostgreSQL
    /// refuses is undone; a new hub on the same database (a restart) has the same registry.
    /// Run inside both kinds of tokio runtime, as the hub's callers are async tasks.
    #[cfg(unix)]
    fn the_hub_keeps_its_registry_in_postgresql(pg: &crate::store::tests::Pg) {
        let connect = || crate::store::PgStore::connect(&pg.url()).unwrap();
        let config = || RegistryConfig {
            hash_params: HashParams::new(HashParams::MIN_M_COST, 1, 1, None).unwrap(),
            lease_pool: OVERLAY_V4,
        };
        let mut hub = Hub::new(Registry::new(config()).unwrap(), connect());
        for i in 0..3 {
            let c = hub
                .registry
                .register_node(key(i), &format!("h{i}"), None, 1)
                .unwrap();
            hub.persist(&c).unwrap();
        }
        let c = hub
            .registry
            .create_network(key(0), "net", "pw", &[7; 16], 1)
            .unwrap();
        hub.persist(&c).unwrap();
        let c = hub.registry.join_network(key(1), "net", "pw", 2).unwrap();
        hub.persist(&c).unwrap();

        hub.store.fail_writes(true);
        let c = hub.registry.join_network(key(2), "net", "pw", 3).unwrap();
        assert!(hub.persist(&c).is_err());
        assert!(!hub.registry.is_member(&key(2), "net"));
        hub.store.fail_writes(false);
        let want = hub.registry.snapshot();
        assert_eq!(hub.store.load().unwrap(), want);
        drop(hub);

        let store = connect();
        let back = Registry::from_snapshot(config(), store.load().unwrap()).unwrap();
        assert_eq!(back.snapshot(), want);
        assert!(back.is_member(&key(1), "net"));
        assert_eq!(back.peers_of(&key(1)).len(), 1);
        let mut hub = Hub::new(back, store);
        let c = hub.registry.join_network(key(2), "net", "pw", 4).unwrap();
        hub.persist(&c).unwrap();
        assert_eq!(hub.store.load().unwrap(), hub.registry.snapshot());
    }

    // The test's own database is made outside the runtime: the test's direct client (not the
    // store) is the `postgres` crate's, which must not be called from inside one.
    #[cfg(unix)] // the lab's PostgreSQL is a Unix one (see `store::test_pg`)
    #[test]
    fn the_hub_keeps_its_registry_in_postgresql_current_thread() {
        let pg = crate::store::tests::Pg::new();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime.block_on(async { the_hub_keeps_its_registry_in_postgresql(&pg) });
    }

    #[cfg(unix)]
    #[test]
    fn the_hub_keeps_its_registry_in_postgresql_multi_thread() {
        let pg = crate::store::tests::Pg::new();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .unwrap();
        runtime.block_on(async { the_hub_keeps_its_registry_in_postgresql(&pg) });
    }
}
