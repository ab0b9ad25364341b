//! WireGuard traffic: packets from the TUN sealed for a peer, datagrams opened, what is delivered and counted.

use super::*;

impl Node {
    /// An IP packet read from the TUN device. `out` must hold `packet.len() + 32` bytes and at
    /// least [`MIN_OUT`].
    pub fn handle_tun_packet(
        &mut self,
        now: Instant,
        packet: &[u8],
        out: &mut [u8],
    ) -> Option<Transmit> {
        self.note_time(now);
        if !self.up {
            self.counters.drop(DropReason::TunnelDown);
            return None;
        }
        let Some(dst) = ip::destination(packet) else {
            self.counters.drop(DropReason::Malformed);
            return None;
        };
        if self.captured(now, packet) {
            return None;
        }
        let Some(id) = self.routes.lookup(dst) else {
            if fanout::is_group(dst) {
                self.fan_out(now, packet);
            } else {
                self.counters.drop(DropReason::NoRoute);
            }
            return None;
        };
        if out.len() < packet.len() + WG_OVERHEAD || out.len() < MIN_OUT {
            self.counters.drop(DropReason::Oversized);
            return None;
        }
        let Some(peer) = self.peers[id].as_mut() else {
            self.counters.drop(DropReason::NoRoute);
            return None;
        };
        let Some(route) = route_of(peer, &self.relays) else {
            self.counters.drop(DropReason::NoEndpoint);
            return None;
        };
        // A relayed packet is encrypted behind room for the relay header: no copy on this path.
        let (skip, dst) = match route {
            Route::Direct(dst) => (0, dst),
            Route::Relay(server) => (SEND_HEADER_LEN, server),
        };
        if out.len() < packet.len() + WG_OVERHEAD + skip {
            self.counters.drop(DropReason::Oversized);
            return None;
        }
        let key = peer.public_key();
        match peer.tunn.encapsulate(packet, &mut out[skip..]) {
            TunnResult::WriteToNetwork(d) => {
                let len = d.len() + skip;
                if peer.applied_path == Some(dst) {
                    // The path now owes an answer; silence for 3 s drops it.
                    peer.paths.handle_data_sent(now);
                }
                if let Route::Relay(_) = route {
                    relay_frame::write_send_header(out, &key);
                }
                Some(Transmit { dst, len })
            }
            // Queued inside the session until the handshake completes.
            TunnResult::Done => None,
            _ => {
                self.counters.drop(DropReason::HandshakeFailed);
                None
            }
        }
    }

    /// `relayed`: it came through the relay at `from`, so it proves nothing about a direct path
    /// and replies go back through the relay.
    pub(super) fn handle_wireguard(
        &mut self,
        now: Instant,
        from: SocketAddr,
        relayed: bool,
        datagram: &[u8],
        out: &mut [u8],
    ) -> Inbound {
        if datagram.len() > out.len() || out.len() < MIN_OUT {
            self.counters.drop(DropReason::Oversized);
            return Inbound::Nothing;
        }
        let packet = match self
            .handshake_gate
            .verify_packet(Some(from.ip()), datagram, out)
        {
            Ok(p) => p,
            Err(TunnResult::WriteToNetwork(cookie)) => {
                self.counters.drop(DropReason::UnderLoad);
                // Through the relay the sender's address is the relay's: nothing to prove.
                if relayed {
                    return Inbound::Nothing;
                }
                let len = cookie.len();
                return Inbound::Transmit(Transmit { dst: from, len });
            }
            Err(TunnResult::Err(WireGuardError::InvalidMac)) => {
                self.counters.drop(DropReason::DecryptFailed);
                return Inbound::Nothing;
            }
            Err(_) => {
                self.counters.drop(DropReason::Malformed);
                return Inbound::Nothing;
            }
        };
        let (id, is_handshake) = match &packet {
            Packet::HandshakeInit(init) => {
                match parse_handshake_anon(&self.secret, &self.public, init) {
                    Ok(half) => match self.by_key.get(&half.peer_static_public) {
                        Some(id) => (*id, true),
                        None => {
                            self.counters.drop(DropReason::UnknownPeer);
                            return Inbound::Nothing;
                        }
                    },
                    Err(_) => {
                        self.counters.drop(DropReason::DecryptFailed);
                        return Inbound::Nothing;
                    }
                }
            }
            Packet::HandshakeResponse(p) => ((p.receiver_idx >> 8) as usize, true),
            Packet::PacketCookieReply(p) => ((p.receiver_idx >> 8) as usize, false),
            Packet::PacketData(p) => ((p.receiver_idx >> 8) as usize, false),
        };
        let is_data = matches!(packet, Packet::PacketData(_));
        let Some(peer) = self.peers.get_mut(id).and_then(Option::as_mut) else {
            self.counters.drop(DropReason::UnknownPeer);
            return Inbound::Nothing;
        };
        let out_start = out.as_ptr();
        match peer.tunn.decapsulate(Some(from.ip()), datagram, out) {
            TunnResult::WriteToTunnelV4(p, src) => {
                debug_assert_eq!(p.as_ptr(), out_start);
                let (len, group) = (p.len(), ip::destination(p).is_some_and(fanout::is_group));
                let inbound = self.accept_inner(now, from, relayed, id, IpAddr::V4(src), len);
                self.count_group(id, group, inbound, out)
            }
            TunnResult::WriteToTunnelV6(p, src) => {
                debug_assert_eq!(p.as_ptr(), out_start);
                let (len, group) = (p.len(), ip::destination(p).is_some_and(fanout::is_group));
                let inbound = self.accept_inner(now, from, relayed, id, IpAddr::V6(src), len);
                self.count_group(id, group, inbound, out)
            }
            TunnResult::WriteToNetwork(p) => {
                // A handshake response or the keepalive that completes our handshake: the
                // message authenticated, so the peer is where it came from.
                debug_assert_eq!(p.as_ptr(), out_start);
                let len = p.len();
                self.authenticated(now, from, relayed, id);
                if is_handshake {
                    self.flush.push_back(id);
                }
                let route = if relayed {
                    Route::Relay(from)
                } else {
                    Route::Direct(from)
                };
                let key = self.peers[id].as_ref().map(|p| p.public_key());
                match key.and_then(|k| wrap(route, &k, out, len)) {
                    Some(t) => Inbound::Transmit(t),
                    None => {
                        self.counters.drop(DropReason::Oversized);
                        Inbound::Nothing
                    }
                }
            }
            TunnResult::Done => {
                if is_data {
                    // A keepalive: authenticated data with nothing inside.
                    self.authenticated(now, from, relayed, id);
                }
                Inbound::Nothing
            }
            TunnResult::Err(e) => {
                self.counters.drop(match e {
                    WireGuardError::InvalidAeadTag | WireGuardError::InvalidMac => {
                        DropReason::DecryptFailed
                    }
                    WireGuardError::DuplicateCounter | WireGuardError::InvalidCounter => {
                        DropReason::Replay
                    }
                    WireGuardError::NoCurrentSession | WireGuardError::WrongIndex => {
                        DropReason::NoSession
                    }
                    WireGuardError::InvalidPacket | WireGuardError::IncorrectPacketLength => {
                        DropReason::Malformed
                    }
                    _ => DropReason::HandshakeFailed,
                });
                Inbound::Nothing
            }
        }
    }

    pub(super) fn accept_inner(
        &mut self,
        now: Instant,
        from: SocketAddr,
        relayed: bool,
        id: PeerId,
        inner_src: IpAddr,
        len: usize,
    ) -> Inbound {
        // The packet is authentic either way, so the peer has roamed even if we refuse it.
        self.authenticated(now, from, relayed, id);
        if self.routes.lookup(inner_src) != Some(id) {
            self.counters.drop(DropReason::SourceNotAllowed);
            return Inbound::Nothing;
        }
        Inbound::ToTun { len }
    }

    /// Counts a broadcast/multicast packet from a peer that goes to the TUN; refuses it from a
    /// peer this host does not share game discovery with.
    pub(super) fn count_group(
        &mut self,
        id: PeerId,
        group: bool,
        inbound: Inbound,
        out: &[u8],
    ) -> Inbound {
        let Inbound::ToTun { len } = inbound else {
            return inbound;
        };
        if !group {
            return inbound;
        }
        if self.peers[id].as_ref().is_some_and(|p| !p.discovery) {
            self.counters.drop(DropReason::Multicast);
            return Inbound::Nothing;
        }
        self.fanout.counters.received += 1;
        if let Some(port) = discovery_ports::udp_port(&out[..len]) {
            self.game_ports.received(port);
        }
        inbound
    }

    /// A discovery packet the kernel copied from the LAN (see [`capture`]): rewritten to come
    /// from the overlay address and fanned out. `false` when the packet is not one.
    pub(super) fn captured(&mut self, now: Instant, packet: &[u8]) -> bool {
        let outside = packet.first().is_some_and(|b| b >> 4 == 4)
            && packet.len() >= 20
            && !warren_proto::overlay::OVERLAY_V4.contains(&std::net::Ipv4Addr::new(
                packet[12], packet[13], packet[14], packet[15],
            ));
        if !outside {
            return false;
        }
        let Some(own) = self.own_v4 else {
            return false;
        };
        let mut buf = std::mem::take(&mut self.capture_buf);
        buf.clear();
        buf.extend_from_slice(packet);
        let verdict = capture::rewrite(&mut buf, own, &self.lan_broadcasts);
        match verdict {
            capture::Capture::Rewritten { .. } => self.fan_out(now, &buf),
            capture::Capture::Refused => self.counters.drop(DropReason::Multicast),
            capture::Capture::NotCaptured => {}
        }
        self.capture_buf = buf;
        verdict != capture::Capture::NotCaptured
    }

    /// Queues copies of a group packet read from the TUN for every peer that takes them; the
    /// copies go out from `poll_transmit`, one per peer.
    pub(super) fn fan_out(&mut self, now: Instant, packet: &[u8]) {
        let peers = (0..self.peers.len()).filter(|&id| {
            self.peers[id]
                .as_ref()
                .is_some_and(|p| p.discovery && route_of(p, &self.relays).is_some())
        });
        let limited = self.fanout.counters.rate_limited;
        let queued = self.fanout.offer(now, packet, peers);
        let dropped = self.fanout.counters.rate_limited - limited;
        if let Some(port) = discovery_ports::udp_port(packet) {
            if queued {
                self.game_ports.sent(port);
            }
            if dropped > 0 {
                self.game_ports.dropped(port, dropped);
            }
        }
        if !queued {
            self.counters.drop(DropReason::Multicast);
        }
    }
}
