//! The relay's UDP socket: the shell around [`warren_coordinator_core::Relay`].
//!
//! One task owns the socket and the core; control connections talk to it through a channel
//! ([`RelayHandle::admit`] gives a session its token, dropping the [`RelayLease`] withdraws
//! it), so no lock is shared with the connection tasks. The task polls that channel before
//! the socket (`biased`): a token is sent to the task before the Welcome that carries it, so
//! by the time the node's first Ping is in the socket, its token is in the channel ahead of
//! it. That Ping registers the node's address; its Sends are known by that address, and a
//! node that moves is followed by its next Ping from the new one.
//!
//! Daemons that can only reach the coordinator over TCP+TLS send and receive the same frames
//! over that connection; the relay knows each such connection by a synthetic address
//! ([`crate::tcp_links`]), so TCP and UDP hosts relay to each other through the one core.
//!
//! "May these two talk?" comes from the hub's registry through [`Membership`], behind a
//! small cache that is emptied whenever the registry's generation changes, so a leave or a
//! logout stops relaying at once without taking the hub lock for every datagram.
//!
//! The socket is read and written in batches ([`crate::relay_io`]): one receive call takes
//! every datagram waiting (GRO-coalesced where the kernel can), the core answers each into
//! one send batch, and that batch leaves as one GSO send per run of equal-sized datagrams
//! to one address.

use anyhow::{Context, Result};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;
use tokio::sync::mpsc::{self, unbounded_channel, UnboundedReceiver, UnboundedSender};
use warren_coordinator_core::{Relay, RelayCounters};
use warren_proto::control::msg::RelayOffer;
use warren_proto::key::NodeKey;
use warren_proto::relay::RelayToken;

use crate::relay_io::{RelaySocket, RxBatch, RX_BATCH, RX_CHUNK};
use crate::tcp_links::{is_synthetic, TcpLinks};
use warren_proto::tx_batch::TxBatch;

/// The relay's default port is the control port + 3: 7446, after STUN's 7444 and 7445.
const PORT_OFFSET: u16 = 3;
/// Pairs remembered by the shares cache before it starts over; a cache miss costs one short
/// hub lock, so a small cache is enough.
const MAX_CACHED_PAIRS: usize = 4096;
/// How often the counters are logged (at debug, and only when they moved).
const REPORT_EVERY: Duration = Duration::from_secs(60);
/// Frames from TCP connections waiting for the relay task; a full queue makes the
/// connections' readers wait (TCP backpressure), never the relay.
const TCP_INBOX: usize = 1024;
/// For each UDP datagram, at most this many waiting TCP frames are handled too, so a busy
/// UDP socket does not starve the TCP hosts.
const TCP_PER_DATAGRAM: usize = 4;

/// The port to bind from `--relay-port` and the control port: `None` when the relay is off
/// (`--relay-port 0`). An ephemeral control port (0) gives an ephemeral relay port.
pub fn port_to_bind(flag: Option<u16>, control_port: u16) -> Result<Option<u16>> {
    match flag {
        Some(0) => Ok(None),
        Some(port) => Ok(Some(port)),
        None if control_port == 0 => Ok(Some(0)),
        None => match control_port.checked_add(PORT_OFFSET) {
            Some(port) => Ok(Some(port)),
            None => anyhow::bail!(
                "no room for the relay port after port {control_port}; use --relay-port"
            ),
        },
    }
}

pub async fn bind(ip: IpAddr, port: u16) -> Result<RelaySocket> {
    let addr = SocketAddr::new(ip, port);
    let socket = UdpSocket::bind(addr)
        .await
        .with_context(|| format!("cannot bind the relay port {addr}"))?;
    RelaySocket::new(socket).with_context(|| {
        format!("cannot set up the relay port {addr}; --relay-port 0 turns the relay off")
    })
}

/// Who may relay to whom: the hub's registry, as the relay task sees it.
pub trait Membership: Send + Sync + 'static {
    /// A number that changes whenever an answer of `shares_network` may have changed. Read
    /// without the hub lock, once per forwarded datagram.
    fn generation(&self) -> u64;
    /// Whether `a` and `b` share a network, and the generation that answer belongs to.
    fn shares_network(&self, a: &NodeKey, b: &NodeKey) -> (bool, u64);
    /// The relay's counters and live hosts, once a second (for the metrics).
    fn report(&self, _counters: RelayCounters, _hosts: usize) {}
}

/// Answers of [`Membership::shares_network`], valid for one generation.
#[derive(Default)]
pub struct SharesCache {
    generation: u64,
    pairs: HashMap<(NodeKey, NodeKey), bool>,
}

impl SharesCache {
    pub fn shares(&mut self, membership: &impl Membership, a: &NodeKey, b: &NodeKey) -> bool {
        self.at(membership.generation());
        // Sharing a network is symmetric: one entry per unordered pair.
        let pair = if a <= b { (*a, *b) } else { (*b, *a) };
        if let Some(&answer) = self.pairs.get(&pair) {
            return answer;
        }
        let (answer, generation) = membership.shares_network(a, b);
        self.at(generation);
        if self.pairs.len() >= MAX_CACHED_PAIRS {
            self.pairs.clear();
        }
        self.pairs.insert(pair, answer);
        answer
    }

    fn at(&mut self, generation: u64) {
        if generation != self.generation {
            self.pairs.clear();
            self.generation = generation;
        }
    }
}

pub enum Command {
    Add {
        node: NodeKey,
        token: RelayToken,
    },
    Remove {
        token: RelayToken,
    },
    /// A TCP connection known by `addr` from now on; what is relayed to it goes to `queue`.
    Attach {
        addr: SocketAddr,
        queue: mpsc::Sender<Vec<u8>>,
    },
    Detach {
        addr: SocketAddr,
    },
}

/// What a control connection needs of the relay: its port for the Welcome, and the way to
/// give its node a token.
#[derive(Clone)]
pub struct RelayHandle {
    pub port: u16,
    commands: UnboundedSender<Command>,
    frames: mpsc::Sender<(SocketAddr, Vec<u8>)>,
}

/// What [`serve`] reads: commands, and the frames TCP connections carry.
pub struct Inbox {
    pub commands: UnboundedReceiver<Command>,
    frames: mpsc::Receiver<(SocketAddr, Vec<u8>)>,
}

impl Inbox {
    /// Frames from TCP connections not yet taken by the relay task.
    #[cfg(test)]
    pub fn tcp_frames_waiting(&mut self) -> usize {
        let mut n = 0;
        while self.frames.try_recv().is_ok() {
            n += 1;
        }
        n
    }
}

/// A handle for the relay bound to `port`, and the inbox [`serve`] reads.
pub fn channel(port: u16) -> (RelayHandle, Inbox) {
    let (commands, rx) = unbounded_channel();
    let (frames, frames_rx) = mpsc::channel(TCP_INBOX);
    (
        RelayHandle {
            port,
            commands,
            frames,
        },
        Inbox {
            commands: rx,
            frames: frames_rx,
        },
    )
}

/// The secret a relay core makes its challenges' cookies with: fresh for every start.
pub fn cookie_secret() -> Result<[u8; 32]> {
    let mut secret = [0u8; 32];
    getrandom::getrandom(&mut secret)
        .map_err(|e| anyhow::anyhow!("no random source for the relay's cookies: {e}"))?;
    Ok(secret)
}

impl RelayHandle {
    /// A fresh random token for `node`'s new control session, replacing any token the node
    /// had; it works until the returned lease is dropped (or a newer session replaces it).
    pub fn admit(&self, node: NodeKey) -> Result<RelayLease> {
        let mut token = RelayToken::default();
        getrandom::getrandom(&mut token)
            .map_err(|e| anyhow::anyhow!("no random source for a relay token: {e}"))?;
        // If the relay task is gone the token is simply never honoured.
        let _ = self.commands.send(Command::Add { node, token });
        Ok(RelayLease {
            port: self.port,
            token,
            commands: self.commands.clone(),
        })
    }

    /// From now on the relay knows a TCP connection by `addr` and sends to it through `queue`.
    /// Sent ahead of the connection's first frame, and the task reads commands first, so no
    /// frame of it arrives before this.
    pub fn attach(&self, addr: SocketAddr, queue: mpsc::Sender<Vec<u8>>) {
        let _ = self.commands.send(Command::Attach { addr, queue });
    }

    pub fn detach(&self, addr: SocketAddr) {
        let _ = self.commands.send(Command::Detach { addr });
    }

    /// A relay frame that came over the TCP connection known by `from`. Waits while the relay
    /// is behind, which slows only that connection.
    pub async fn frame_from_tcp(&self, from: SocketAddr, frame: Vec<u8>) {
        let _ = self.frames.send((from, frame)).await;
    }
}

/// A session's relay token, live while this lives. Dropping it removes the token only if it
/// is still the node's live one, so an old connection that ends after its node reconnected
/// leaves the new session's token alone.
pub struct RelayLease {
    port: u16,
    token: RelayToken,
    commands: UnboundedSender<Command>,
}

impl RelayLease {
    pub fn offer(&self) -> RelayOffer {
        RelayOffer {
            port: self.port,
            token: URL_SAFE_NO_PAD.encode(self.token),
            address: None,
            ticket: None,
        }
    }
}

impl Drop for RelayLease {
    fn drop(&mut self) {
        let _ = self.commands.send(Command::Remove { token: self.token });
    }
}

/// The relay task's state: the core and what it needs to answer.
struct State<M> {
    relay: Relay,
    cache: SharesCache,
    membership: Arc<M>,
    tcp: TcpLinks,
    /// Answers for UDP hosts, sent together once a receive batch is handled. A Deliver is
    /// shorter than the Send it comes from, so one receive batch's answers always fit.
    tx: TxBatch,
}

impl<M: Membership> State<M> {
    /// `false` once every handle is gone.
    fn command(&mut self, command: Option<Command>) -> bool {
        match command {
            Some(Command::Add { node, token }) => self.relay.add_node(node, token),
            Some(Command::Remove { token }) => {
                self.relay.remove_token(&token);
            }
            Some(Command::Attach { addr, queue }) => self.tcp.attach(addr, queue),
            Some(Command::Detach { addr }) => self.tcp.detach(&addr),
            None => return false,
        }
        true
    }

    /// Runs one frame through the core: its answer joins the send batch, or goes into a TCP
    /// connection's queue.
    async fn frame(
        &mut self,
        socket: &mut RelaySocket,
        now: Instant,
        from: SocketAddr,
        frame: &[u8],
    ) {
        if self.tx.spare().is_none() {
            self.flush(socket).await;
        }
        let out = self.tx.spare().expect("an empty batch has room");
        let (membership, cache) = (&*self.membership, &mut self.cache);
        let shares = |a: &NodeKey, b: &NodeKey| cache.shares(membership, a, b);
        let Some(t) = self.relay.handle_datagram(now, from, frame, shares, out) else {
            return;
        };
        if is_synthetic(&t.to) {
            self.tcp.send(&t.to, &out[..t.len]);
        } else {
            self.tx.commit(t.to, t.len);
        }
    }

    /// Sends the batched answers.
    async fn flush(&mut self, socket: &mut RelaySocket) {
        if !self.tx.is_empty() {
            socket.send(&self.tx).await;
            self.tx.clear();
        }
        // quinn-udp lowers this when the kernel refuses GSO.
        self.tx.set_max_segments(socket.max_gso_segments());
    }
}

/// Relays on `socket` (and for TCP connections) until every [`RelayHandle`] (and lease) is
/// dropped.
pub async fn serve(
    mut socket: RelaySocket,
    inbox: Inbox,
    membership: Arc<impl Membership>,
    relay: Relay,
) {
    let Inbox {
        mut commands,
        mut frames,
    } = inbox;
    // A standalone relay's tickets expire by the wall clock (a no-op for the built-in relay).
    let mut clock = tokio::time::interval(Duration::from_secs(1));
    let mut state = State {
        relay,
        cache: SharesCache::default(),
        membership,
        tcp: TcpLinks::default(),
        tx: TxBatch::new(RX_BATCH + 1, RX_CHUNK),
    };
    state.tx.set_max_segments(socket.max_gso_segments());
    let mut rx = RxBatch::default();
    let mut report = tokio::time::interval(REPORT_EVERY);
    let mut reported = (
        RelayCounters::default(),
        state.tcp.counters,
        socket.counters,
    );
    loop {
        tokio::select! {
            biased;
            command = commands.recv() => {
                if !state.command(command) {
                    return;
                }
            }
            received = socket.recv(&mut rx) => {
                if let Err(e) = received {
                    // E.g. an ICMP error reported on the socket; nothing to do but go on.
                    tracing::trace!("relay receive: {e}");
                    continue;
                }
                let now = Instant::now();
                let mut datagrams = 0;
                for (from, datagram) in rx.datagrams() {
                    datagrams += 1;
                    // Only TCP connections have these addresses; over UDP one is forged.
                    if !is_synthetic(&from) {
                        state.frame(&mut socket, now, from, datagram).await;
                    }
                }
                for _ in 0..TCP_PER_DATAGRAM * datagrams {
                    // Commands first, as in the select: an Attach precedes its first frame.
                    while let Ok(command) = commands.try_recv() {
                        state.command(Some(command));
                    }
                    let Ok((from, frame)) = frames.try_recv() else { break };
                    state.frame(&mut socket, now, from, &frame).await;
                }
                state.flush(&mut socket).await;
            }
            Some((from, frame)) = frames.recv() => {
                state.frame(&mut socket, Instant::now(), from, &frame).await;
                state.flush(&mut socket).await;
            }
            _ = clock.tick() => {
                state.relay.set_unix_time(crate::hub::unix_now());
                state.membership.report(state.relay.counters(), state.relay.len());
            }
            _ = report.tick() => {
                let now = (state.relay.counters(), state.tcp.counters, socket.counters);
                if now != reported {
                    tracing::debug!(
                        nodes = state.relay.len(),
                        tcp_links = state.tcp.len(),
                        counters = ?now.0,
                        tcp = ?now.1,
                        io = ?now.2,
                        "relay"
                    );
                    reported = now;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
    use warren_proto::relay::{
        parse, write_ping, write_send_header, RelayFrame, PING_LEN, SEND_HEADER_LEN,
    };

    fn key(i: u8) -> NodeKey {
        NodeKey([i; 32])
    }

    /// Everyone shares a network unless `shares` is cleared; counts the questions.
    struct Fake {
        shares: AtomicBool,
        generation: AtomicU64,
        asked: AtomicUsize,
    }

    impl Fake {
        fn new() -> Self {
            Self {
                shares: AtomicBool::new(true),
                generation: AtomicU64::new(1),
                asked: AtomicUsize::new(0),
            }
        }
    }

    impl Membership for Fake {
        fn generation(&self) -> u64 {
            self.generation.load(Ordering::SeqCst)
        }
        fn shares_network(&self, a: &NodeKey, b: &NodeKey) -> (bool, u64) {
            self.asked.fetch_add(1, Ordering::SeqCst);
            (
                a != b && self.shares.load(Ordering::SeqCst),
                self.generation(),
            )
        }
    }

    #[test]
    fn the_cache_asks_once_per_pair_and_generation() {
        let fake = Fake::new();
        let mut cache = SharesCache::default();
        assert!(cache.shares(&fake, &key(1), &key(2)));
        assert!(cache.shares(&fake, &key(2), &key(1)));
        assert_eq!(fake.asked.load(Ordering::SeqCst), 1);
        // A leave: the registry changes and its generation with it.
        fake.shares.store(false, Ordering::SeqCst);
        fake.generation.fetch_add(1, Ordering::SeqCst);
        assert!(!cache.shares(&fake, &key(1), &key(2)));
        assert!(!cache.shares(&fake, &key(1), &key(2)));
        assert_eq!(fake.asked.load(Ordering::SeqCst), 2);
        // Bounded: it starts over rather than growing.
        for i in 0..=MAX_CACHED_PAIRS as u32 {
            let mut k = [0u8; 32];
            k[..4].copy_from_slice(&i.to_be_bytes());
            cache.shares(&fake, &key(200), &NodeKey(k));
            assert!(cache.pairs.len() <= MAX_CACHED_PAIRS);
        }
    }

    #[test]
    fn relay_port_flag() {
        assert_eq!(port_to_bind(None, 7443).unwrap(), Some(7446));
        assert_eq!(port_to_bind(None, 0).unwrap(), Some(0));
        assert_eq!(port_to_bind(Some(9000), 7443).unwrap(), Some(9000));
        assert_eq!(port_to_bind(Some(0), 7443).unwrap(), None);
        assert!(port_to_bind(None, 65533).is_err());
        assert_eq!(port_to_bind(Some(1), 65533).unwrap(), Some(1));
    }

    fn token_of(lease: &RelayLease) -> RelayToken {
        let offer = lease.offer();
        URL_SAFE_NO_PAD
            .decode(offer.token)
            .unwrap()
            .try_into()
            .unwrap()
    }

    async fn recv(socket: &UdpSocket) -> (Vec<u8>, SocketAddr) {
        let mut buf = [0u8; 2048];
        let (n, from) = tokio::time::timeout(Duration::from_secs(5), socket.recv_from(&mut buf))
            .await
            .expect("a datagram from the relay")
            .unwrap();
        (buf[..n].to_vec(), from)
    }

    /// A ping, and the register its challenge asks for (from a new address): then a pong.
    async fn ping(socket: &UdpSocket, relay: SocketAddr, token: &RelayToken, tx: u8) {
        let mut b = [0u8; PING_LEN];
        write_ping(&mut b, token, [tx; 8]);
        socket.send_to(&b, relay).await.unwrap();
        let (mut reply, from) = recv(socket).await;
        assert_eq!(from, relay);
        if let Ok(RelayFrame::Challenge { tx, cookie }) = parse(&reply) {
            let mut b = [0u8; warren_proto::relay::REGISTER_LEN];
            warren_proto::relay::write_register(&mut b, token, tx, &cookie);
            socket.send_to(&b, relay).await.unwrap();
            reply = recv(socket).await.0;
        }
        assert_eq!(parse(&reply), Ok(RelayFrame::Pong { tx: [tx; 8] }));
    }

    fn send_frame(to: &NodeKey, payload: &[u8]) -> Vec<u8> {
        let mut b = vec![0u8; SEND_HEADER_LEN + payload.len()];
        write_send_header(&mut b, to);
        b[SEND_HEADER_LEN..].copy_from_slice(payload);
        b
    }

    const LO: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    /// A running relay task on loopback: its address and handle.
    async fn start() -> (SocketAddr, RelayHandle) {
        let socket = bind(LO, 0).await.unwrap();
        let relay = socket.local_addr().unwrap();
        let (handle, inbox) = channel(relay.port());
        tokio::spawn(serve(
            socket,
            inbox,
            Arc::new(Fake::new()),
            Relay::new(Default::default(), [7; 32]),
        ));
        (relay, handle)
    }

    async fn deliver_of(socket: &UdpSocket, relay: SocketAddr) -> Vec<u8> {
        let (deliver, from) = recv(socket).await;
        assert_eq!(from, relay);
        match parse(&deliver) {
            Ok(RelayFrame::Deliver { payload }) => payload.to_vec(),
            other => panic!("expected a Deliver, got {other:?}"),
        }
    }

    /// Nothing waits on `socket`. Call it after a Ping round trip on another socket that
    /// followed the datagram in question, so the relay has handled that datagram.
    fn nothing_on(socket: &UdpSocket) {
        let mut buf = [0u8; 64];
        assert!(socket.try_recv_from(&mut buf).is_err());
    }

    #[tokio::test]
    async fn a_send_from_a_reaches_b_as_a_deliver() {
        let (relay, handle) = start().await;
        let (a, b) = (key(1), key(2));
        let lease_a = handle.admit(a).unwrap();
        let lease_b = handle.admit(b).unwrap();
        assert_eq!(lease_a.offer().port, relay.port());
        let (ta, tb) = (token_of(&lease_a), token_of(&lease_b));
        assert_ne!(ta, tb);
        let sa = UdpSocket::bind((LO, 0)).await.unwrap();
        let sb = UdpSocket::bind((LO, 0)).await.unwrap();
        ping(&sa, relay, &ta, 1).await;
        ping(&sb, relay, &tb, 2).await;

        sa.send_to(&send_frame(&b, b"encrypted wireguard"), relay)
            .await
            .unwrap();
        assert_eq!(deliver_of(&sb, relay).await, b"encrypted wireguard");
        sb.send_to(&send_frame(&a, b"reply"), relay).await.unwrap();
        assert_eq!(deliver_of(&sa, relay).await, b"reply");

        // A socket that never pinged cannot send, even to a live node.
        let stranger = UdpSocket::bind((LO, 0)).await.unwrap();
        stranger
            .send_to(&send_frame(&b, b"who am I"), relay)
            .await
            .unwrap();
        ping(&sa, relay, &ta, 3).await;
        nothing_on(&sb);

        // B's session ends: the next Send is dropped. A's Ping after it comes back only once
        // the relay has handled the Send, so B's socket is empty for a reason.
        drop(lease_b);
        sa.send_to(&send_frame(&b, b"too late"), relay)
            .await
            .unwrap();
        ping(&sa, relay, &ta, 4).await;
        nothing_on(&sb);
    }

    #[tokio::test]
    async fn a_burst_of_sends_arrives_whole_and_in_order() {
        let (relay, handle) = start().await;
        let (a, b) = (key(1), key(2));
        let (lease_a, lease_b) = (handle.admit(a).unwrap(), handle.admit(b).unwrap());
        let sa = UdpSocket::bind((LO, 0)).await.unwrap();
        let sb = UdpSocket::bind((LO, 0)).await.unwrap();
        // B reads only after A has sent everything: room for all of it.
        warren_proto::socket_buffers::enlarge(&sb, 4 << 20);
        ping(&sa, relay, &token_of(&lease_a), 1).await;
        ping(&sb, relay, &token_of(&lease_b), 2).await;
        // Equal sizes (one GSO run out) with a shorter one between (a run ends there).
        let payload = |i: u16| {
            let len = if i == 100 { 300 } else { 1000 };
            vec![i as u8; len]
        };
        for i in 0..200u16 {
            sa.send_to(&send_frame(&b, &payload(i)), relay)
                .await
                .unwrap();
        }
        for i in 0..200u16 {
            assert_eq!(deliver_of(&sb, relay).await, payload(i), "datagram {i}");
        }
    }

    #[tokio::test]
    async fn a_node_that_moves_is_followed_by_its_next_ping() {
        let (relay, handle) = start().await;
        let (a, b) = (key(1), key(2));
        let (lease_a, lease_b) = (handle.admit(a).unwrap(), handle.admit(b).unwrap());
        let (ta, tb) = (token_of(&lease_a), token_of(&lease_b));
        let sa = UdpSocket::bind((LO, 0)).await.unwrap();
        let sb = UdpSocket::bind((LO, 0)).await.unwrap();
        ping(&sa, relay, &ta, 1).await;
        ping(&sb, relay, &tb, 2).await;

        // A roams: same token, new socket (a new address). The Pong goes to the new one.
        let moved = UdpSocket::bind((LO, 0)).await.unwrap();
        ping(&moved, relay, &ta, 3).await;
        sb.send_to(&send_frame(&a, b"to the new address"), relay)
            .await
            .unwrap();
        assert_eq!(deliver_of(&moved, relay).await, b"to the new address");
        moved
            .send_to(&send_frame(&b, b"from the new address"), relay)
            .await
            .unwrap();
        assert_eq!(deliver_of(&sb, relay).await, b"from the new address");

        // The old address is nobody's now: its Sends are dropped, and nothing reaches it.
        sa.send_to(&send_frame(&b, b"stale"), relay).await.unwrap();
        ping(&sb, relay, &tb, 4).await;
        nothing_on(&sb);
        nothing_on(&sa);

        // And back again: a Ping from the old socket moves A there.
        ping(&sa, relay, &ta, 5).await;
        sb.send_to(&send_frame(&a, b"back"), relay).await.unwrap();
        assert_eq!(deliver_of(&sa, relay).await, b"back");
        ping(&sb, relay, &tb, 6).await;
        nothing_on(&moved);
    }
}
