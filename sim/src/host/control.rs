//! A host's side of its coordinator: the real sans-IO [`Client`] and [`PeerMap`] of
//! `warren-daemon-core`, with the peer changes applied to the node by the daemon's own
//! [`apply`]. What `warrend`'s control session does around them (`daemon/src/control/session.rs`
//! and `session/welcome.rs`: take the welcome's relay and STUN servers, report endpoints, feed
//! calls to probe to the node) is restated here in a few lines, for one coordinator.

use super::{Host, Out, MAIN_PORT};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Instant;
use warren_daemon_core::control::apply::apply;
use warren_daemon_core::control::{Answer, Event, PeerChange};
use warren_proto::control::msg::{ClientMsg, Hello, NatKind, ServerMsg, Welcome, CONTROL_VERSION};

/// The shell's id of the one coordinator (its relay's id in the node).
const COORD: u32 = 1;
/// The coordinator's address on the simulated internet.
pub const COORDINATOR: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));

impl Host {
    /// What the client and the peer map have to say; `true` if anything happened.
    pub(super) fn control(&mut self, now: Instant, out: &mut Vec<Out>) -> bool {
        let mut progressed = false;
        if self.node.poll_discovery_event().is_some() {
            // A new reflexive address or NAT kind: the coordinator tells the peers.
            let msg = self.endpoints();
            self.client.notify(msg);
            progressed = true;
        }
        while let Some(msg) = self.client.poll_transmit() {
            out.push(Out::Control(msg));
            progressed = true;
        }
        while let Some(ev) = self.client.poll_event() {
            progressed = true;
            self.event(now, ev, out);
        }
        progressed
    }

    fn event(&mut self, now: Instant, ev: Event, out: &mut Vec<Out>) {
        match ev {
            Event::Connect => out.push(Out::Connect),
            Event::Close(_) => out.push(Out::Close),
            Event::Reply { result, .. } => self.replies.push(
                result
                    .map(|a| match a {
                        Answer::Done(text) => text,
                        other => format!("{other:?}"),
                    })
                    .map_err(|e| e.message),
            ),
            Event::PeerUpsert(info) => {
                let changes = self.peers.upsert(COORD, info);
                self.apply(now, &changes);
            }
            Event::PeerRemove(key) => {
                let changes = self.peers.remove(COORD, &key);
                self.apply(now, &changes);
            }
            Event::Dataplane(ServerMsg::CallMeMaybe {
                key,
                lan,
                reflexive,
                mapped,
                mapped_tcp,
            }) => {
                self.node.set_peer_mapped_tcp(&key, mapped_tcp);
                self.node
                    .handle_call_me_maybe(now, &key, &lan, reflexive, mapped);
            }
            Event::Dataplane(ServerMsg::Calls { keys }) => {
                for key in keys {
                    let Some(p) = self.peers.info_from(COORD, &key) else {
                        continue;
                    };
                    let (lan, reflexive, mapped, tcp) =
                        (p.lan.clone(), p.reflexive, p.mapped, p.mapped_tcp);
                    self.node.set_peer_mapped_tcp(&key, tcp);
                    self.node
                        .handle_call_me_maybe(now, &key, &lan, reflexive, mapped);
                }
            }
            // Tickets (standalone relays), address clashes (several coordinators): not
            // simulated.
            Event::Dataplane(_) => {}
            Event::LoggedOut | Event::Changed | Event::Note(_) | Event::Refused(_) => {}
        }
    }

    fn apply(&mut self, now: Instant, changes: &[PeerChange]) {
        let refused = apply(&mut self.node, changes, now);
        assert!(
            refused.is_empty(),
            "{}: peers refused: {refused:?}",
            self.name
        );
    }

    /// The hello of a new control connection.
    pub(crate) fn hello(&self) -> Hello {
        Hello {
            v: CONTROL_VERSION,
            name: self.name.clone(),
            udp_port: MAIN_PORT,
            lan_endpoints: self.lan.clone(),
            dialed: None,
            claim: None,
            calls: true,
        }
    }

    /// The coordinator welcomed us: its relay and STUN servers go to the node, and it hears
    /// our endpoints again (it forgets them with every connection).
    pub(crate) fn welcomed(&mut self, now: Instant, welcome: &Welcome) -> Vec<Out> {
        let name = self.name.clone();
        let mut out = Vec::new();
        if self.client.handle_connected(now, welcome, &name).is_ok() {
            let relay = welcome.relay.as_ref().and_then(|r| {
                let token = warren_proto::relay::parse_token(&r.token)?;
                Some((SocketAddr::new(COORDINATOR, r.port), token))
            });
            self.node.set_relay_of(now, COORD, relay);
            if let [p1, p2, ..] = welcome.stun_ports[..] {
                let servers = [
                    SocketAddr::new(COORDINATOR, p1),
                    SocketAddr::new(COORDINATOR, p2),
                ];
                self.node.start_discovery(now, servers);
            }
            let msg = self.endpoints();
            self.client.notify(msg);
        }
        self.drain(now, &mut out);
        out
    }

    /// A message from the coordinator.
    pub(crate) fn message(&mut self, now: Instant, msg: ServerMsg) -> Vec<Out> {
        self.client.handle_message(msg);
        let mut out = Vec::new();
        self.drain(now, &mut out);
        out
    }

    /// The control connection dropped (the coordinator went away, or the way to it).
    pub(crate) fn disconnected(&mut self, now: Instant) -> Vec<Out> {
        self.client
            .handle_disconnected(now, "connection lost".into());
        let mut out = Vec::new();
        self.drain(now, &mut out);
        out
    }

    /// The coordinator could not be reached.
    pub(crate) fn connect_failed(&mut self, now: Instant) -> Vec<Out> {
        self.client
            .handle_connect_failed(now, "unreachable".into(), false);
        let mut out = Vec::new();
        self.drain(now, &mut out);
        out
    }

    /// A request through the client (create, join, leave…), as the CLI would make it.
    pub(crate) fn request(&mut self, now: Instant, msg: ClientMsg) -> Vec<Out> {
        self.client.request(msg, 0);
        let mut out = Vec::new();
        self.drain(now, &mut out);
        out
    }

    /// Where we can be reached, as `warrend` reports it.
    fn endpoints(&self) -> ClientMsg {
        let discovery = self.node.discovery();
        ClientMsg::Endpoints {
            lan: self.lan.clone(),
            reflexive: discovery.and_then(|d| d.reflexive),
            nat: discovery.map_or(NatKind::Unknown, |d| d.nat),
            mapped: self.node.port_mapping(),
            relay: false,
            mapped_tcp: None,
        }
    }
}
