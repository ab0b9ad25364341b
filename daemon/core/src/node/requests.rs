//! What a person asks of the data plane through the daemon: pings and port questions to a peer.

use super::*;

impl Node {
    /// Sends one authenticated ping to `key` on its current path; the answer is collected with
    /// [`Self::take_ping_answer`].
    pub fn ping(&mut self, now: Instant, key: &NodeKey) -> Result<disco::TxId, PingError> {
        self.note_time(now);
        let (id, to, tx_id) = self.disco_to(key)?;
        self.user_pings.sent(now, tx_id);
        self.user_ping_out
            .push_back((id, to, DiscoMsg::Ping { tx_id }));
        Ok(tx_id)
    }

    /// Where a person's disco message to `key` goes (its current path) and a fresh tx id.
    pub(super) fn disco_to(
        &mut self,
        key: &NodeKey,
    ) -> Result<(PeerId, Route, disco::TxId), PingError> {
        if !self.up {
            return Err(PingError::Down);
        }
        let id = self.peer_id(key).ok_or(PingError::UnknownPeer)?;
        let peer = self.peers[id].as_ref().ok_or(PingError::UnknownPeer)?;
        if peer.disco.is_none() {
            return Err(PingError::NoDisco);
        }
        let to = route_of(peer, &self.relays).ok_or(PingError::NoPath)?;
        let nonce = self.next_nonce();
        let mut tx_id = [0u8; 12];
        tx_id.copy_from_slice(&nonce[nonce.len() - 12..]);
        Ok((id, to, tx_id))
    }

    /// The pong to a [`Self::ping`], once it came, with the kind of path it came over.
    pub fn take_ping_answer(
        &mut self,
        key: &NodeKey,
        tx_id: &disco::TxId,
    ) -> Option<(PingAnswer, PathKind)> {
        let answer = self.user_pings.take(tx_id)?;
        let relayed = self.relays.is_server(answer.from);
        let kind = self
            .peer_id(key)
            .and_then(|id| self.peers[id].as_ref())
            .and_then(|p| p.paths.paths().find(|i| i.addr == answer.from))
            .map(|i| i.stats.kind.path_kind())
            .unwrap_or(if relayed {
                PathKind::Relay
            } else {
                PathKind::Direct
            });
        Some((answer, kind))
    }

    /// The caller stopped waiting for this ping.
    pub fn cancel_ping(&mut self, tx_id: &disco::TxId) {
        self.user_pings.cancel(tx_id);
    }

    /// Asks `key`'s daemon what listens on its `port`; the answer is collected with
    /// [`Self::take_port_answer`].
    pub fn ask_port(
        &mut self,
        now: Instant,
        key: &NodeKey,
        port: u16,
        proto: PortProto,
    ) -> Result<disco::TxId, PingError> {
        self.note_time(now);
        let (id, to, tx_id) = self.disco_to(key)?;
        self.port_checks.asked(now, tx_id);
        self.user_ping_out
            .push_back((id, to, DiscoMsg::PortQuery { tx_id, port, proto }));
        Ok(tx_id)
    }

    pub fn take_port_answer(&mut self, tx_id: &disco::TxId) -> Option<Listening> {
        self.port_checks.take_answer(tx_id)
    }

    pub fn cancel_port_question(&mut self, tx_id: &disco::TxId) {
        self.port_checks.cancel(tx_id);
    }

    /// A peer's question about one of our ports, for the shell to look up and answer.
    pub fn take_port_question(&mut self) -> Option<PortQuestion<Route>> {
        self.port_checks.take_question()
    }

    /// Sends the answer to `q` back the way the question came.
    pub fn answer_port_question(&mut self, q: PortQuestion<Route>, listening: Listening) {
        let answer = DiscoMsg::PortAnswer {
            tx_id: q.tx_id,
            listening,
        };
        self.pongs.push_back((q.peer, q.route, answer));
    }
}
