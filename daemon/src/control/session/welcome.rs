//! A coordinator's welcome: the address it leased, its STUN servers and relay, and the frames
//! that follow it.

use super::{decode_ticket, Session};
use crate::control::dial::LiveLink;
use crate::control::link::Link;
use std::net::SocketAddr;
use std::time::Instant;
use warren_proto::control::msg::Welcome;

impl Session {
    pub(super) fn connected(&mut self, i: usize, link: Link, welcome: Welcome, now: Instant) {
        let id = self.slots[i].id;
        let address = self.slots[i].settings.address.clone();
        tracing::info!(coordinator = %address, transport = ?link.transport(), remote = %link.remote, overlay = %welcome.overlay_ip, networks = ?welcome.networks, "connected to the coordinator");
        let live = LiveLink::start(link, id, self.slots[i].generation, self.inputs.clone());
        let remote = live.carried.remote;
        let info = live.carried.info.clone();
        let key = self.slots[i].settings.public_key;
        self.slots[i].relay = welcome.relay.as_ref().and_then(|r| {
            let token = warren_proto::relay::parse_token(&r.token)?;
            // A standalone relay has its own address; the coordinator's is where the link
            // goes (or, over TCP, the loopback shim that carries relay frames on the link).
            let server = r
                .address
                .unwrap_or_else(|| live.carried.relay_server(r.port));
            Some((server, token))
        });
        self.slots[i].ticket = welcome
            .relay
            .as_ref()
            .and_then(|r| r.ticket.as_deref())
            .and_then(decode_ticket);
        self.slots[i].stun = match welcome.stun_ports[..] {
            [p1, p2, ..] => Some([
                SocketAddr::new(remote.ip(), p1),
                SocketAddr::new(remote.ip(), p2),
            ]),
            _ => None,
        };
        self.slots[i].link = Some(live);
        let name = self.slots[i].settings.name.clone();
        if let Err(e) = self.slots[i].client.handle_connected(now, &welcome, &name) {
            tracing::error!(coordinator = %address, "{e}");
            if let Some(link) = self.slots[i].link.take() {
                link.close("refused");
            }
            self.slots[i].relay = None;
            self.slots[i].generation += 1;
            return;
        }
        self.ctx.publish(|v| {
            v.connections.insert(key, info);
        });
        let alone = self.slots.len() == 1;
        let decision = self.address.welcomed(welcome.overlay_ip, alone);
        if let warren_daemon_core::control::address::Decision::Keep = decision {
            // The claim was granted (or the host gave up moving): the interface has it.
            let ip = self.address.claim();
            if let Err(e) = self.ctx.dataplane.use_overlay_ip(ip.into()) {
                tracing::warn!("cannot move the interface to {ip}: {e:#}");
            }
        }
        self.address_decided(decision, now);
        self.use_stun(id, now);
        self.set_node_relay(i, now);
        self.show_connection();
        // The coordinator forgets a node's endpoints when its connection ends: tell it again.
        let endpoints = self.endpoints();
        self.slots[i].client.notify(endpoints);
        if !self.ctx.subnets.advertised().is_empty() {
            let routes = self.routes_msg();
            self.slots[i].client.notify(routes);
        }
        self.ctx.dataplane.flush_now();
        self.dirty = true;
    }

    fn is_connected(&self, id: u32) -> bool {
        self.slot_index(id)
            .is_some_and(|i| self.slots[i].client.is_connected())
    }

    /// The first connected coordinator's STUN servers tell this host its public address and
    /// NAT kind; asked again at each of its connections (the uplink may have changed).
    fn use_stun(&mut self, id: u32, now: Instant) {
        if self
            .stun_owner
            .is_some_and(|o| o != id && self.is_connected(o))
        {
            return;
        }
        let Some(servers) = self.slot_index(id).and_then(|i| self.slots[i].stun) else {
            return;
        };
        self.stun_owner = Some(id);
        self.ctx.publish(|v| v.stun_servers = Some(servers));
        self.ctx.dataplane.node().start_discovery(now, servers);
        self.ctx.dataplane.flush_now();
    }

    /// Coordinator `i`'s relay joins the node's: peers it brought may be relayed there.
    fn set_node_relay(&mut self, i: usize, now: Instant) {
        let slot = &self.slots[i];
        if let Some((server, _)) = slot.relay {
            tracing::info!(%server, coordinator = %slot.settings.address, "relay offered");
        }
        let mut node = self.ctx.dataplane.node();
        node.set_relay_of(now, slot.id, slot.relay);
        node.set_relay_ticket_of(now, slot.id, slot.ticket.clone());
    }

    /// What netcheck shows as "the" control connection: the first connected coordinator's.
    pub(super) fn show_connection(&self) {
        let info = self
            .slots
            .iter()
            .find_map(|s| s.link.as_ref().map(|l| l.carried.info.clone()));
        self.ctx.publish(|v| v.connection = info);
    }
}
