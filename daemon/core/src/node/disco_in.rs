//! Control messages that arrive: relay frames, disco messages, and the paths they prove.

use super::*;

impl Node {
    /// A frame from the relay: a pong to our registration ping, or a peer's WireGuard or disco
    /// message it carried. Relayed messages never move a peer's direct endpoint.
    pub(super) fn handle_relay(
        &mut self,
        now: Instant,
        from: SocketAddr,
        datagram: &[u8],
        out: &mut [u8],
    ) -> Inbound {
        let to_a_relay = matches!(
            relay_frame::parse(datagram),
            Ok(RelayFrame::Ping { .. }
                | RelayFrame::TicketPing { .. }
                | RelayFrame::Register { .. }
                | RelayFrame::Send { .. })
        );
        if to_a_relay {
            return self.serve_relay_frame(now, from, datagram, out);
        }
        if !self.relays.is_server(from) {
            self.counters.drop(DropReason::Unhandled);
            return Inbound::Nothing;
        }
        match relay_frame::parse(datagram) {
            Ok(RelayFrame::Pong { tx }) => {
                if let Some(r) = self.relays.by_server_mut(from) {
                    r.handle_pong(now, from, tx);
                }
                Inbound::Nothing
            }
            Ok(RelayFrame::Challenge { tx, cookie }) => {
                if let Some(r) = self.relays.by_server_mut(from) {
                    r.handle_challenge(from, tx, cookie);
                }
                Inbound::Nothing
            }
            Ok(RelayFrame::Deliver { payload }) => match classify(payload) {
                DatagramKind::WireGuard(_) => self.handle_wireguard(now, from, true, payload, out),
                DatagramKind::Disco => {
                    self.handle_disco(now, from, true, payload);
                    Inbound::Nothing
                }
                _ => {
                    self.counters.drop(DropReason::Malformed);
                    Inbound::Nothing
                }
            },
            Ok(_) | Err(_) => {
                self.counters.drop(DropReason::Malformed);
                Inbound::Nothing
            }
        }
    }

    pub(super) fn handle_disco(
        &mut self,
        now: Instant,
        from: SocketAddr,
        relayed: bool,
        datagram: &[u8],
    ) {
        let id = match disco::sender(datagram) {
            Ok(sender) => match self.peer_id(&sender) {
                Some(id) => id,
                None => {
                    self.counters.drop(DropReason::UnknownPeer);
                    return;
                }
            },
            Err(_) => {
                self.counters.drop(DropReason::Malformed);
                return;
            }
        };
        let Some(peer) = self.peers[id].as_mut() else {
            return;
        };
        let Some(key) = &peer.disco else {
            self.counters.drop(DropReason::DecryptFailed);
            return;
        };
        let opened = key.open(datagram);
        if opened.is_ok() {
            let fresh = disco::sent_at(datagram)
                .is_some_and(|(sent, nonce)| peer.fresh.accept(sent, nonce));
            if !fresh {
                // Sealed by the peer, but seen before or too old: a replay.
                self.counters.drop(DropReason::StaleDisco);
                return;
            }
        }
        match opened {
            Ok(DiscoMsg::Ping { tx_id }) if relayed => {
                // A person's ping over the relay: answer the same way, prove no direct path.
                let observed = from;
                self.pongs
                    .push_back((id, Route::Relay(from), DiscoMsg::Pong { tx_id, observed }));
            }
            Ok(DiscoMsg::Ping { tx_id }) => {
                let pong = peer.paths.handle_ping(now, from, tx_id);
                self.pongs.push_back((id, Route::Direct(from), pong));
            }
            Ok(DiscoMsg::Pong { tx_id, .. }) => {
                if self.user_pings.pong(now, from, &tx_id) || relayed {
                    return;
                }
                if peer.paths.handle_pong(now, from, tx_id) {
                    // A proven path ends a birthday run toward the peer.
                    self.pump_birthday(now);
                } else {
                    self.birthday_pong(now, id, from, &tx_id);
                }
                self.apply_best_path(id);
            }
            Ok(DiscoMsg::PortQuery { tx_id, port, proto }) => {
                let route = if relayed {
                    Route::Relay(from)
                } else {
                    Route::Direct(from)
                };
                self.port_checks.question(
                    now,
                    PortQuestion {
                        port,
                        proto,
                        peer: id,
                        route,
                        tx_id,
                    },
                );
                return;
            }
            Ok(DiscoMsg::PortAnswer { tx_id, listening }) => {
                self.port_checks.answered(&tx_id, listening);
                return;
            }
            Ok(DiscoMsg::Birthday { .. }) => {
                self.birthday_requested(now, id);
                return;
            }
            Ok(DiscoMsg::TcpDial { .. }) => {
                self.tcp_dial_requested(now, id);
                return;
            }
            Ok(DiscoMsg::Wake { mac, .. }) => return self.wake_requested(now, id, mac),
            Err(_) => {
                self.counters.drop(DropReason::DecryptFailed);
                return;
            }
        }
        self.disco_dirty.push_back(id);
    }

    /// Points WireGuard at the path machine's choice when that choice changed.
    pub(super) fn apply_best_path(&mut self, id: PeerId) {
        let Some(peer) = self.peers[id].as_mut() else {
            return;
        };
        let best = peer.paths.best_path().map(|b| b.addr);
        if best != peer.applied_path {
            if let Some(addr) = best {
                peer.endpoint = Some(addr);
                if peer.tunn.time_since_last_handshake().is_none() {
                    self.handshake_now.push_back(id);
                }
            }
            peer.applied_path = best;
        }
    }

    pub(super) fn authenticated(
        &mut self,
        now: Instant,
        from: SocketAddr,
        relayed: bool,
        id: PeerId,
    ) {
        if relayed {
            if let Some(peer) = self.peers[id].as_mut() {
                peer.last_authenticated = Some(now);
            }
            return;
        }
        if let Some(peer) = self.peers[id].as_mut() {
            // WireGuard roaming: the source of an authenticated packet is where the peer is.
            peer.endpoint = Some(from);
            peer.last_authenticated = Some(now);
            peer.paths.handle_authenticated(now, from);
            if peer.paths.poll_timeout().is_some_and(|t| t <= now) {
                self.disco_dirty.push_back(id);
            }
            // The peer may have roamed onto this address: use it (and ping it) now.
            if peer.paths.best_path().map(|b| b.addr) != peer.applied_path {
                self.disco_dirty.push_back(id);
                self.apply_best_path(id);
            }
        }
    }
}
