//! One session's queue of messages waiting to be written to its daemon, bounded.
//!
//! A daemon that reads slowly (or never: a member that joined twice and ignores its second
//! stream) must not make the coordinator grow without bound. Most of what it is sent is state
//! that a newer message replaces: a peer's record (added, updated or removed), a "call me
//! maybe" about a peer, its network list, its relay ticket. While such a message waits, a newer
//! one about the same thing ([`Slot`]) takes its place in the queue instead of queueing behind
//! it, so the state part of a queue never holds more than one message per peer and kind,
//! however fast the peers churn. The daemon sees the newest state, at the place the older one
//! held (so nothing it was told before a reply arrives after it).
//!
//! The rest (replies to its own requests, address-clash asks) cannot be merged. When the queue
//! holds `capacity` messages and another one comes that takes no queued message's place, the
//! queue is *overflowed*: it takes nothing more, and the shell ends the session. The daemon
//! reconnects and gets its whole state afresh, which is what it would have needed anyway.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, OnceLock};

use warren_proto::control::msg::ServerMsg;
use warren_proto::key::NodeKey;

/// Messages queued per session by default: enough for a burst to every peer of a host in
/// thousands of peers' networks (each peer takes at most two places: its record and a call).
pub const DEFAULT_CAPACITY: usize = 8192;

/// Room an empty queue keeps for the next burst; beyond it, the room is given back.
const KEPT_ROOM: usize = 64;

/// What a queued message is about: a newer message with the same slot replaces it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Slot {
    /// `PeerUpsert` or `PeerRemove` of this peer: the latest word on it wins.
    Peer(NodeKey),
    /// `CallMeMaybe` about this peer: only its newest candidates are worth probing.
    Call(NodeKey),
    /// `Calls`: the peers to probe, merged.
    Calls,
    /// The host's network list.
    Networks,
    /// The host's relay ticket.
    Ticket,
}

/// The slot of `msg`, or `None` for a message that must be delivered as it is.
pub fn slot_of(msg: &ServerMsg) -> Option<Slot> {
    match msg {
        ServerMsg::PeerUpsert { peer, .. } => Some(Slot::Peer(peer.key)),
        ServerMsg::PeerRemove { key } => Some(Slot::Peer(*key)),
        ServerMsg::CallMeMaybe { key, .. } => Some(Slot::Call(*key)),
        ServerMsg::Calls { .. } => Some(Slot::Calls),
        ServerMsg::Networks { .. } => Some(Slot::Networks),
        ServerMsg::RelayTicket { .. } => Some(Slot::Ticket),
        _ => None,
    }
}

/// A message as queued: one allocation shared by every session it goes to (a host's record
/// goes to all its peers alike), and encoded once, by whichever writer gets to it first.
/// In a network of thousands forming at once this is what keeps the fan-out cheap.
#[derive(Clone, Debug)]
pub struct Frame(Arc<Encoded>);

#[derive(Debug)]
struct Encoded {
    msg: ServerMsg,
    json: OnceLock<Vec<u8>>,
}

impl Frame {
    pub fn new(msg: ServerMsg) -> Self {
        Frame(Arc::new(Encoded {
            msg,
            json: OnceLock::new(),
        }))
    }

    pub fn msg(&self) -> &ServerMsg {
        &self.0.msg
    }

    /// The message as the wire carries it (JSON), encoded on first use.
    pub fn json(&self) -> &[u8] {
        self.0.json.get_or_init(|| {
            let mut out = Vec::with_capacity(256);
            serde_json::to_writer(&mut out, &self.0.msg).expect("a server message serializes");
            out
        })
    }

    /// The same allocation (queued for several sessions), not only the same content.
    pub fn is_shared_with(&self, other: &Frame) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    /// The message itself (copied only if another session still holds it).
    pub fn into_msg(self) -> ServerMsg {
        match Arc::try_unwrap(self.0) {
            Ok(e) => e.msg,
            Err(shared) => shared.msg.clone(),
        }
    }
}

impl From<ServerMsg> for Frame {
    fn from(msg: ServerMsg) -> Self {
        Frame::new(msg)
    }
}

impl PartialEq for Frame {
    fn eq(&self, other: &Self) -> bool {
        self.msg() == other.msg()
    }
}

/// The queue was full; the session must end.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the daemon reads too slowly: {0} messages wait for it")]
pub struct Overflow(pub usize);

#[derive(Debug)]
pub struct Outbox {
    capacity: usize,
    queue: VecDeque<Frame>,
    /// Sequence number of `queue[0]`; a message's number never changes while it waits.
    head: u64,
    /// Where each slot's message waits (its sequence number).
    slots: HashMap<Slot, u64>,
    overflowed: bool,
    /// Messages that took an older one's place (for the log).
    coalesced: u64,
}

impl Outbox {
    /// A queue of at most `capacity` messages (at least 1).
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            queue: VecDeque::new(),
            head: 0,
            slots: HashMap::new(),
            overflowed: false,
            coalesced: 0,
        }
    }

    /// Queues `msg`, in place of a waiting message with the same slot if there is one. After
    /// an overflow nothing is taken any more.
    pub fn push(&mut self, msg: impl Into<Frame>) -> Result<(), Overflow> {
        let msg = msg.into();
        if self.overflowed {
            return Err(Overflow(self.queue.len()));
        }
        let slot = slot_of(msg.msg());
        if let Some(at) = slot.and_then(|s| self.slots.get(&s)) {
            let old = &mut self.queue[(at - self.head) as usize];
            *old = merge(old, msg);
            self.coalesced += 1;
            return Ok(());
        }
        if self.queue.len() >= self.capacity {
            self.overflowed = true;
            return Err(Overflow(self.queue.len()));
        }
        if let Some(s) = slot {
            self.slots.insert(s, self.head + self.queue.len() as u64);
        }
        self.queue.push_back(msg);
        Ok(())
    }

    /// The oldest waiting message.
    pub fn pop(&mut self) -> Option<Frame> {
        let msg = self.queue.pop_front()?;
        let seq = self.head;
        self.head += 1;
        if let Some(s) = slot_of(msg.msg()) {
            if self.slots.get(&s) == Some(&seq) {
                self.slots.remove(&s);
            }
        }
        if self.queue.is_empty() {
            self.release();
        }
        Some(msg)
    }

    /// Gives back the room a burst took: a queue that held thousands of messages once (a
    /// large network forming) keeps no more than a small one's, for every session.
    fn release(&mut self) {
        if self.queue.capacity() > KEPT_ROOM {
            self.queue = VecDeque::new();
        }
        if self.slots.capacity() > KEPT_ROOM {
            self.slots = HashMap::new();
        }
    }

    /// The room the queue holds now, in messages and slots (for tests and metrics).
    pub fn room(&self) -> (usize, usize) {
        (self.queue.capacity(), self.slots.capacity())
    }

    pub fn len(&self) -> usize {
        self.queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    pub fn is_overflowed(&self) -> bool {
        self.overflowed
    }

    pub fn coalesced(&self) -> u64 {
        self.coalesced
    }
}

/// `new` in place of `old` (same slot). A network list's note says why it changed (a ban, a
/// rename): a newer list without a note keeps the older one's, so the user still learns why.
fn merge(old: &Frame, new: Frame) -> Frame {
    match (old.msg(), new.msg()) {
        (
            ServerMsg::Networks { note: Some(n), .. },
            ServerMsg::Networks {
                networks,
                waiting,
                note: None,
            },
        ) => Frame::new(ServerMsg::Networks {
            networks: networks.clone(),
            waiting: waiting.clone(),
            note: Some(n.clone()),
        }),
        // A probe asked for and not yet delivered still stands while the peer is online.
        (ServerMsg::PeerUpsert { call: true, .. }, ServerMsg::PeerUpsert { peer, call: false })
            if peer.online =>
        {
            Frame::new(ServerMsg::PeerUpsert {
                peer: peer.clone(),
                call: true,
            })
        }
        (ServerMsg::Calls { keys: waiting }, ServerMsg::Calls { keys }) => {
            let mut all: Vec<NodeKey> = waiting.iter().chain(keys).copied().collect();
            all.sort_unstable();
            all.dedup();
            Frame::new(ServerMsg::Calls { keys: all })
        }
        _ => new,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{IpAddr, Ipv4Addr, SocketAddr};
    use warren_proto::control::msg::{ErrorCode, NatKind, PeerInfo};

    fn key(i: u8) -> NodeKey {
        NodeKey([i; 32])
    }

    fn upsert(i: u8, port: u16) -> ServerMsg {
        ServerMsg::PeerUpsert {
            peer: PeerInfo {
                key: key(i),
                name: format!("h{i}"),
                overlay_ip: IpAddr::V4(Ipv4Addr::new(100, 64, 0, i)),
                networks: vec!["net".into()],
                online: true,
                lan: vec![],
                reflexive: Some(SocketAddr::from(([203, 0, 113, i], port))),
                nat: NatKind::Unknown,
                mapped: None,
                relay: false,
                routes: vec![],
                mapped_tcp: None,
            },
            call: false,
        }
    }

    fn call(i: u8, port: u16) -> ServerMsg {
        ServerMsg::CallMeMaybe {
            key: key(i),
            lan: vec![],
            reflexive: Some(SocketAddr::from(([203, 0, 113, i], port))),
            mapped: None,
            mapped_tcp: None,
        }
    }

    fn drain(q: &mut Outbox) -> Vec<ServerMsg> {
        std::iter::from_fn(|| q.pop().map(Frame::into_msg)).collect()
    }

    #[test]
    fn the_latest_state_per_peer_takes_the_older_ones_place() {
        let mut q = Outbox::new(100);
        q.push(upsert(1, 1)).unwrap();
        q.push(call(1, 1)).unwrap();
        q.push(ServerMsg::Ok { id: 7 }).unwrap();
        q.push(upsert(2, 1)).unwrap();
        q.push(upsert(1, 2)).unwrap();
        q.push(call(1, 2)).unwrap();
        q.push(ServerMsg::PeerRemove { key: key(2) }).unwrap();
        assert_eq!(q.len(), 4);
        assert_eq!(q.coalesced(), 3);
        assert_eq!(
            drain(&mut q),
            [
                upsert(1, 2),
                call(1, 2),
                ServerMsg::Ok { id: 7 },
                ServerMsg::PeerRemove { key: key(2) }
            ]
        );
        // Once sent, a slot is free again: the next message queues behind the rest.
        q.push(ServerMsg::Ok { id: 8 }).unwrap();
        q.push(upsert(1, 3)).unwrap();
        assert_eq!(q.pop().map(Frame::into_msg), Some(ServerMsg::Ok { id: 8 }));
        q.push(upsert(1, 4)).unwrap();
        assert_eq!(drain(&mut q), [upsert(1, 4)]);
    }

    /// A queued upsert that asks to probe keeps asking when a newer state of the peer takes
    /// its place (the peer is still online), and stops when the peer went offline.
    #[test]
    fn a_call_to_probe_survives_a_newer_state_of_the_peer() {
        let with_call = |i, port| match upsert(i, port) {
            ServerMsg::PeerUpsert { peer, .. } => ServerMsg::PeerUpsert { peer, call: true },
            _ => unreachable!(),
        };
        let mut q = Outbox::new(10);
        q.push(with_call(1, 1)).unwrap();
        q.push(upsert(1, 2)).unwrap();
        let Some(ServerMsg::PeerUpsert { peer, call }) = q.pop().map(Frame::into_msg) else {
            panic!("an upsert")
        };
        assert!(call);
        assert_eq!(peer.reflexive.unwrap().port(), 2);
        q.push(with_call(1, 3)).unwrap();
        let offline = match upsert(1, 3) {
            ServerMsg::PeerUpsert { mut peer, .. } => {
                peer.online = false;
                ServerMsg::PeerUpsert { peer, call: false }
            }
            _ => unreachable!(),
        };
        q.push(offline).unwrap();
        assert!(matches!(
            q.pop().map(Frame::into_msg),
            Some(ServerMsg::PeerUpsert { call: false, .. })
        ));
        assert!(q.pop().map(Frame::into_msg).is_none());
    }

    /// A burst's room is given back once the queue is empty.
    #[test]
    fn an_emptied_queue_gives_back_its_room() {
        let mut q = Outbox::new(10_000);
        for i in 0..5_000u16 {
            q.push(upsert((i % 250) as u8, i)).unwrap();
            q.push(ServerMsg::Ok { id: i.into() }).unwrap();
        }
        let (queue, slots) = q.room();
        assert!(queue >= 5_000 && slots >= 250, "{queue} {slots}");
        while q.len() > 1 {
            q.pop();
        }
        assert!(q.room().0 >= 5_000, "not while messages wait");
        q.pop();
        let (queue, slots) = q.room();
        assert!(queue <= KEPT_ROOM && slots <= KEPT_ROOM, "{queue} {slots}");
        q.push(upsert(1, 1)).unwrap();
        assert_eq!(drain(&mut q), [upsert(1, 1)]);
    }

    /// Rounds of calls waiting for a slow reader merge into one message: each peer once.
    #[test]
    fn rounds_of_calls_merge() {
        let mut q = Outbox::new(10);
        q.push(ServerMsg::Calls {
            keys: vec![key(3), key(1)],
        })
        .unwrap();
        q.push(ServerMsg::Ok { id: 1 }).unwrap();
        q.push(ServerMsg::Calls {
            keys: vec![key(2), key(1)],
        })
        .unwrap();
        assert_eq!(
            drain(&mut q),
            [
                ServerMsg::Calls {
                    keys: vec![key(1), key(2), key(3)]
                },
                ServerMsg::Ok { id: 1 }
            ]
        );
    }

    #[test]
    fn a_network_list_keeps_the_reason_it_changed() {
        let mut q = Outbox::new(10);
        let list = |note: Option<&str>, n: usize| ServerMsg::Networks {
            networks: vec![],
            waiting: vec!["x".into(); n],
            note: note.map(str::to_owned),
        };
        q.push(list(Some("banned"), 1)).unwrap();
        q.push(list(None, 2)).unwrap();
        assert_eq!(drain(&mut q), [list(Some("banned"), 2)]);
        q.push(list(Some("old"), 1)).unwrap();
        q.push(list(Some("new"), 3)).unwrap();
        assert_eq!(drain(&mut q), [list(Some("new"), 3)]);
    }

    /// Peers churning forever never grow a queue nobody reads beyond one place per peer and
    /// kind.
    #[test]
    fn churning_peers_keep_an_unread_queue_bounded() {
        let mut q = Outbox::new(64);
        for round in 0..10_000u16 {
            for i in 0..20u8 {
                if round % 3 == 0 {
                    q.push(ServerMsg::PeerRemove { key: key(i) }).unwrap();
                } else {
                    q.push(upsert(i, round)).unwrap();
                }
                q.push(call(i, round)).unwrap();
            }
            q.push(ServerMsg::Networks {
                networks: vec![],
                waiting: vec![],
                note: None,
            })
            .unwrap();
            assert!(q.len() <= 41, "{}", q.len());
        }
        assert!(!q.is_overflowed());
        let got = drain(&mut q);
        assert_eq!(got.len(), 41);
        // The last round (9 999, a multiple of 3) removed every peer.
        assert_eq!(got[0], ServerMsg::PeerRemove { key: key(0) });
        assert_eq!(got[1], call(0, 9_999));
    }

    #[test]
    fn replies_that_pile_up_overflow_it_for_good() {
        let mut q = Outbox::new(3);
        for id in 0..3 {
            q.push(ServerMsg::Ok { id }).unwrap();
        }
        // A message with a slot of its own needs a place too.
        assert_eq!(q.push(upsert(1, 1)), Err(Overflow(3)));
        assert!(q.is_overflowed());
        // From then on nothing is taken, even after a pop.
        q.pop().map(Frame::into_msg);
        let err = ServerMsg::Error {
            id: 9,
            code: ErrorCode::Internal,
            message: String::new(),
        };
        assert_eq!(q.push(err), Err(Overflow(2)));
        assert_eq!(q.len(), 2);
    }
}
