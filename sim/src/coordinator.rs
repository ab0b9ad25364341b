//! The coordinator as one actor: the real [`Registry`] (networks, memberships, names, leases),
//! the real [`Relay`] core, the real STUN answer and the real candidate rules
//! (`candidates::vouched_lan`, [`Reachable`], [`SeenSources`], [`EndpointLimiter`]).
//!
//! Glued by hand, restating `warren-coordinator`'s shell (`coordinator/src/server.rs`,
//! `hub.rs`) for the messages the simulation uses: who is online with which endpoints, the
//! welcome, and the fan-out of peer records and calls to probe (`Hub::announce_to` for
//! daemons that read calls on upserts and `Calls`, which every simulated daemon does). Not
//! simulated: the Noise handshake and framing of the control channel (messages arrive typed),
//! invites and the owner's controls, subnet routes, peer relays, standalone relays and their
//! tickets, clusters of coordinators, the store (the registry survives a restart, as the
//! database does).

use crate::fabric::HostId;
use crate::seed::Rng;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;
use warren_coordinator_core::candidates::vouched_lan;
use warren_coordinator_core::candidates::{inside_a_lan, EndpointLimiter};
use warren_coordinator_core::reachable::{Reachable, Reported};
use warren_coordinator_core::seen_sources::SeenSources;
use warren_coordinator_core::stun_answer::{answer, MAX_RESPONSE};
use warren_coordinator_core::{HashParams, Registry, RegistryConfig, Relay, RelayConfig};
use warren_proto::control::msg::{
    ClientMsg, ErrorCode, Hello, NatKind, PeerInfo, RelayOffer, ServerMsg, Welcome, CONTROL_VERSION,
};
use warren_proto::key::NodeKey;
use warren_proto::relay::RelayToken;

/// The coordinator's two STUN ports and its relay port (the defaults: control port + 1, 2, 3).
pub const STUN_PORTS: [u16; 2] = [7444, 7445];
pub const RELAY_PORT: u16 = 7446;

/// What the coordinator sends.
#[derive(Debug, Clone, PartialEq)]
// Few per step, and short-lived: boxing the message would only add allocations.
#[allow(clippy::large_enum_variant)]
pub enum Said {
    /// A control message to a host.
    Control(HostId, ServerMsg),
    /// A datagram from its port `port` (STUN or relay) to `to`.
    Udp {
        port: u16,
        to: SocketAddr,
        bytes: Vec<u8>,
    },
}

struct Online {
    host: HostId,
    /// Which of the host's connections this is: a late close of an older one ends nothing.
    session: u64,
    /// Where its control connection comes from.
    control: IpAddr,
    reach: Reachable,
    endpoint_limit: EndpointLimiter,
    call_limit: EndpointLimiter,
    token: RelayToken,
}

pub struct Coordinator {
    pub registry: Registry,
    pub relay: Relay,
    online: BTreeMap<NodeKey, Online>,
    seen: SeenSources,
    rng: Rng,
}

impl Coordinator {
    pub(crate) fn new(mut rng: Rng) -> Self {
        // Argon2's cheapest costs: a join takes microseconds, as nothing here is attacked.
        let hash_params = HashParams::new(8, 1, 1, None).expect("valid Argon2 costs");
        let registry = Registry::new(RegistryConfig {
            hash_params,
            ..RegistryConfig::default()
        })
        .expect("the overlay pool");
        let relay = Relay::new(RelayConfig::default(), rng.bytes());
        Self {
            registry,
            relay,
            online: BTreeMap::new(),
            seen: SeenSources::default(),
            rng,
        }
    }

    pub fn is_online(&self, key: &NodeKey) -> bool {
        self.online.contains_key(key)
    }

    /// The host whose control connection is `key`'s.
    pub fn host_of(&self, key: &NodeKey) -> Option<HostId> {
        self.online.get(key).map(|o| o.host)
    }

    /// The machine crashed and came back: who was online and every relay token are gone;
    /// the registry is what its database kept.
    pub(crate) fn restart(&mut self) {
        self.online.clear();
        self.relay = Relay::new(RelayConfig::default(), self.rng.bytes());
        self.seen = SeenSources::default();
    }

    /// Whether the coordinator saw the member whose control connection comes from `control`
    /// come from `ip` (as `Server::saw`).
    fn saw(&self, control: IpAddr, ip: IpAddr, unix: u64) -> bool {
        inside_a_lan(control)
            || ip.to_canonical() == control.to_canonical()
            || self.seen.seen(ip.to_canonical(), unix)
    }

    /// A new control connection from `host`'s `key`, coming from `control`: registered,
    /// welcomed, and announced to its peers (`server::session`'s `register` and `online`).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn connect(
        &mut self,
        unix: u64,
        host: HostId,
        session: u64,
        key: NodeKey,
        hello: &Hello,
        control: IpAddr,
        said: &mut Vec<Said>,
    ) -> Result<Welcome, String> {
        self.registry
            .register_node(key, &hello.name, hello.claim, unix)
            .map_err(|e| e.to_string())?;
        let lease = self.registry.lease_of(&key).ok_or("no address lease")?;
        let token: RelayToken = self.rng.bytes();
        self.relay.add_node(key, token);
        let welcome = Welcome {
            v: CONTROL_VERSION,
            overlay_ip: lease.addr.into(),
            networks: self.registry.networks_of(&key),
            stun_ports: STUN_PORTS.to_vec(),
            relay: Some(RelayOffer {
                port: RELAY_PORT,
                token: URL_SAFE_NO_PAD.encode(token),
                address: None,
                ticket: None,
            }),
        };
        let lan = vouched_lan(hello.lan_endpoints.clone(), |ip| {
            self.saw(control, ip, unix)
        });
        self.online.insert(
            key,
            Online {
                host,
                session,
                control,
                // A guess until STUN answers: right for public hosts and port-keeping NATs.
                reach: Reachable::at_connect(lan, Some(SocketAddr::new(control, hello.udp_port))),
                endpoint_limit: EndpointLimiter::new(unix),
                call_limit: EndpointLimiter::new(unix),
                token,
            },
        );
        let peers = self.registry.peer_keys(&key);
        self.announce(unix, &key, &peers, true, said);
        Ok(welcome)
    }

    /// `key`'s control connection `session` ended: its peers see it offline, its token dies.
    pub(crate) fn disconnect(&mut self, key: &NodeKey, session: u64, said: &mut Vec<Said>) {
        if self.online.get(key).is_none_or(|o| o.session != session) {
            return;
        }
        let o = self.online.remove(key).expect("online");
        self.relay.remove_token(&o.token);
        for peer in self.registry.peer_keys(key) {
            if let Some(info) = self.peer_info(&peer, key) {
                self.send(
                    &peer,
                    ServerMsg::PeerUpsert {
                        peer: info,
                        call: false,
                    },
                    said,
                );
            }
        }
    }

    /// A control message from `key`.
    pub(crate) fn message(
        &mut self,
        unix: u64,
        key: NodeKey,
        msg: ClientMsg,
        said: &mut Vec<Said>,
    ) {
        let id = msg.id();
        let before = self.registry.peer_keys(&key);
        let outcome = match msg {
            ClientMsg::CreateNetwork { name, password, .. } => {
                let salt: [u8; 16] = self.rng.bytes();
                self.registry
                    .create_network(key, &name, &password, &salt, unix)
            }
            ClientMsg::JoinNetwork { name, password, .. } => {
                self.registry.join_network(key, &name, &password, unix)
            }
            ClientMsg::LeaveNetwork { name, .. } => self.registry.leave_network(key, &name),
            ClientMsg::Endpoints {
                lan,
                reflexive,
                nat,
                mapped,
                relay,
                mapped_tcp,
            } => {
                let report = Reported {
                    lan,
                    reflexive,
                    nat,
                    mapped,
                    relay,
                    mapped_tcp,
                };
                self.endpoints(unix, key, report, said);
                return;
            }
            _ => {
                self.send(
                    &key,
                    ServerMsg::Error {
                        id,
                        code: ErrorCode::Internal,
                        message: "not simulated".into(),
                    },
                    said,
                );
                return;
            }
        };
        match outcome {
            Ok(_) => {
                self.reconcile(unix, &key, &before, said);
                self.send(&key, ServerMsg::Ok { id }, said);
            }
            Err(e) => self.send(
                &key,
                ServerMsg::Error {
                    id,
                    code: ErrorCode::Internal,
                    message: e.to_string(),
                },
                said,
            ),
        }
    }

    /// New endpoints from `key` (`server::handle`'s `Endpoints` arm): only addresses the
    /// coordinator saw it come from pass, and its peers hear of them with a call to probe.
    fn endpoints(&mut self, unix: u64, key: NodeKey, report: Reported, said: &mut Vec<Said>) {
        let Some(control) = self.online.get(&key).map(|o| o.control) else {
            return;
        };
        let limit = &mut self.online.get_mut(&key).expect("online").endpoint_limit;
        if !limit.allow(unix) {
            return;
        }
        let seen: Vec<IpAddr> = report
            .lan
            .iter()
            .chain(&report.reflexive)
            .chain(&report.mapped)
            .chain(&report.mapped_tcp)
            .map(|a| a.ip())
            .filter(|ip| self.saw(control, *ip, unix))
            .collect();
        let o = self.online.get_mut(&key).expect("online");
        o.reach.update(report, |ip| seen.contains(&ip));
        let peers = self.registry.peer_keys(&key);
        self.announce(unix, &key, &peers, false, said);
    }

    /// After a membership change of `key`: peers gained are introduced, lost ones removed.
    fn reconcile(&mut self, unix: u64, key: &NodeKey, before: &[NodeKey], said: &mut Vec<Said>) {
        let after = self.registry.peer_keys(key);
        let gained: Vec<NodeKey> = after
            .iter()
            .filter(|p| !before.contains(p))
            .copied()
            .collect();
        for lost in before.iter().filter(|p| !after.contains(p)) {
            self.send(key, ServerMsg::PeerRemove { key: *lost }, said);
            self.send(lost, ServerMsg::PeerRemove { key: *key }, said);
        }
        self.announce(unix, key, &gained, true, said);
    }

    /// Tells `key` and each of `peers` about the other; online pairs are asked to probe each
    /// other at the same moment, unless `key` started too many such rounds lately
    /// (`Hub::announce_to`).
    fn announce(
        &mut self,
        unix: u64,
        key: &NodeKey,
        peers: &[NodeKey],
        introduce: bool,
        said: &mut Vec<Said>,
    ) {
        let calls = peers.is_empty()
            || self
                .online
                .get_mut(key)
                .is_some_and(|o| o.call_limit.allow(unix));
        let key_online = self.online.contains_key(key);
        let mut to_call = Vec::new();
        for peer in peers {
            let call = calls && key_online && self.online.contains_key(peer);
            if self.registry.shared_networks(key, peer).is_empty() {
                continue;
            }
            if !introduce && call {
                to_call.push(*peer);
            } else if introduce || call {
                self.tell(key, peer, call, said);
            }
            if self.online.contains_key(peer) {
                self.tell(peer, key, call, said);
            }
        }
        if !to_call.is_empty() {
            self.send(key, ServerMsg::Calls { keys: to_call }, said);
        }
    }

    fn tell(&self, to: &NodeKey, about: &NodeKey, call: bool, said: &mut Vec<Said>) {
        if let Some(info) = self.peer_info(to, about) {
            self.send(to, ServerMsg::PeerUpsert { peer: info, call }, said);
        }
    }

    /// `about` as `to` sees it (`Hub::peer_info`).
    fn peer_info(&self, to: &NodeKey, about: &NodeKey) -> Option<PeerInfo> {
        let networks = self.registry.shared_networks(to, about);
        if networks.is_empty() || to == about {
            return None;
        }
        let o = self.online.get(about);
        Some(PeerInfo {
            key: *about,
            name: self.registry.node_name(about)?.to_string(),
            overlay_ip: IpAddr::V4(self.registry.lease_of(about)?.addr),
            networks,
            online: o.is_some(),
            lan: o.map(|o| o.reach.lan.clone()).unwrap_or_default(),
            reflexive: o.and_then(|o| o.reach.reflexive),
            nat: o.map_or(NatKind::Unknown, |o| o.reach.nat),
            mapped: o.and_then(|o| o.reach.mapped),
            relay: o.is_some_and(|o| o.reach.relay),
            routes: Vec::new(),
            mapped_tcp: o.and_then(|o| o.reach.mapped_tcp),
        })
    }

    fn send(&self, to: &NodeKey, msg: ServerMsg, said: &mut Vec<Said>) {
        if let Some(o) = self.online.get(to) {
            said.push(Said::Control(o.host, msg));
        }
    }

    /// A datagram to the coordinator's port `port` from `from`: a STUN request, or a frame
    /// for the relay (over TCP, `from` is the connection's synthetic address).
    pub(crate) fn datagram(
        &mut self,
        now: Instant,
        unix: u64,
        port: u16,
        from: SocketAddr,
        bytes: &[u8],
        said: &mut Vec<Said>,
    ) {
        if STUN_PORTS.contains(&port) {
            let mut out = [0u8; MAX_RESPONSE];
            if let Some(len) = answer(bytes, from, &mut out) {
                self.seen.saw(from.ip().to_canonical(), unix);
                said.push(Said::Udp {
                    port,
                    to: from,
                    bytes: out[..len].to_vec(),
                });
            }
        } else if port == RELAY_PORT {
            let mut out = vec![0u8; bytes.len().max(256)];
            let registry = &self.registry;
            let t = self.relay.handle_datagram(
                now,
                from,
                bytes,
                |a, b| registry.shares_network(a, b),
                &mut out,
            );
            if let Some(t) = t {
                said.push(Said::Udp {
                    port,
                    to: t.to,
                    bytes: out[..t.len].to_vec(),
                });
            }
        }
    }
}
