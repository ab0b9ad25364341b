//! The shell around the core that moves batches between the TUN device and the UDP socket.
//!
//! OS threads share one `Node` behind a mutex, each holding it only while it runs the core over
//! a batch, never while blocked in the kernel:
//! - TUN → UDP (`tun_rx`): read the device until it is empty into two lanes (`lanes` in the
//!   core: a quiet flow's small packets before bulk), encrypt one batch into a [`TxBatch`], send
//!   each run with one GSO `sendmsg`;
//! - UDP → TUN (`udp_rx`): read the socket until it is empty (`recvmmsg` of GRO-coalesced
//!   chunks) into the lanes (a lone small datagram first), decrypt one round into TUN buffers,
//!   write them with `send_multiple`, which re-coalesces TCP/UDP flows for the kernel;
//! - timers: every 250 ms, WireGuard handshakes, retries and keepalives;
//! - netwatch: when this host gains an address, a keepalive to every peer (see `netwatch`);
//! - side sockets: a birthday run's extra sockets, and the one kept for a peer (see `side`).
//!
//! Plain threads that sleep in the kernel on their own descriptor wake straight into the work:
//! an async runtime adds a cross-thread wake-up per packet burst, which showed up as ping RTT.
//! For the same reason each data thread reads and does the crypto itself rather than handing
//! packets to a worker: the lanes reorder within one thread.

mod tun_rx;
mod udp_rx;

use crate::platform::address_watch::AddressWatch;
use crate::platform::{poll, tun_io};
use crate::side::{self, SideSockets};
use crate::udp::Udp;
use anyhow::Result;
use quinn_udp::{Transmit, UdpSockRef};
use std::io;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tun_rs::SyncDevice;
use warren_daemon_core::counters::DropReason;
use warren_daemon_core::node::{Node, MIN_OUT, TIMER_TICK, WG_OVERHEAD};
use warren_daemon_core::tx_batch::TxBatch;

/// A second announcement shortly after an address change covers one lost in the change itself.
const REPEAT_AFTER: Duration = Duration::from_secs(1);
/// Datagram buffers per `recvmmsg`.
pub(crate) const RX_BATCH: usize = 8;
/// How long a send waits for room in a full socket buffer before the datagram is dropped.
const SEND_WAIT_MS: i32 = 100;

pub struct Dataplane {
    pub node: Mutex<Node>,
    pub udp: Udp,
    pub tun: SyncDevice,
    pub mtu: u16,
    /// The interface's overlay IPv4: key-derived at start, the coordinator's lease later.
    pub overlay_v4: Mutex<std::net::Ipv4Addr>,
    pub side: SideSockets,
    /// Direct paths over TCP, each behind a loopback UDP socket (see `tcp_path`).
    pub tcp: crate::tcp_path::TcpPaths,
}

impl Dataplane {
    /// Moves the interface to this host's overlay address, if it differs (a coordinator
    /// leased another, or the host moved away from a clash).
    pub fn use_overlay_ip(&self, ip: std::net::IpAddr) -> Result<()> {
        let std::net::IpAddr::V4(v4) = ip else {
            return Ok(());
        };
        let mut current = self.overlay_v4.lock().expect("overlay lock");
        if *current == v4 {
            return Ok(());
        }
        let prefix = warren_proto::overlay::OVERLAY_V4.prefix_len();
        // The old address goes first: both are in the same /10, and unless the host promotes
        // secondaries, removing the primary address of a subnet takes the others with it.
        self.tun.remove_address((*current).into())?;
        self.tun.add_address_v4(v4, prefix)?;
        tracing::info!(old = %current, new = %v4, "overlay address moved");
        *current = v4;
        self.node().set_own_v4(v4);
        Ok(())
    }

    /// Room for one encrypted datagram: the largest TUN packet plus WireGuard's overhead, plus
    /// a relay header when it goes through the relay.
    pub(crate) fn slot_size(&self) -> usize {
        (self.mtu as usize + WG_OVERHEAD + warren_proto::relay::SEND_HEADER_LEN + 16).max(MIN_OUT)
    }

    pub fn node(&self) -> std::sync::MutexGuard<'_, Node> {
        // A panic while holding the lock leaves a core we cannot trust; stop loudly.
        self.node.lock().expect("data-plane core poisoned")
    }

    /// Sends whatever the core has queued now (e.g. probes after a "call me maybe") instead of
    /// at the next timer wake-up.
    pub fn flush_now(&self) {
        let mut batch = TxBatch::new(32, self.slot_size());
        flush_pending(self, &mut batch);
    }

    fn send_batch(&self, batch: &TxBatch) {
        for (run, bytes) in batch.runs() {
            if let Some(sock) = self.side.route(run.dst) {
                // A peer reached through a side socket: plain sends, no GSO (a rare path).
                for d in bytes.chunks(run.segment) {
                    if sock.send_to(d, run.dst).is_err() {
                        self.node().count_drop(DropReason::SendFailed);
                    }
                }
                continue;
            }
            let transmit = Transmit {
                destination: self.udp.to_wire(run.dst),
                ecn: None,
                contents: bytes,
                segment_size: (run.count > 1).then_some(run.segment),
                src_ip: None,
            };
            if let Err(e) = self.send_one(&transmit) {
                tracing::debug!(dst = %run.dst, "send failed: {e}");
                let mut node = self.node();
                for _ in 0..run.count {
                    node.count_drop(DropReason::SendFailed);
                }
            }
        }
    }

    fn send_one(&self, transmit: &Transmit<'_>) -> io::Result<()> {
        loop {
            match self
                .udp
                .state
                .try_send(UdpSockRef::from(&self.udp.socket), transmit)
            {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if !poll::wait(poll::raw(&self.udp.socket), poll::Want::Write, SEND_WAIT_MS)? {
                        return Err(e);
                    }
                }
                other => return other,
            }
        }
    }
}

/// Moves everything that is not a direct reply to an input out of the core into `batch`;
/// `true` if the core has more than fitted.
fn drain_transmits(node: &mut Node, batch: &mut TxBatch) -> bool {
    while let Some(spare) = batch.spare() {
        match node.poll_transmit(spare) {
            Some(t) => batch.commit(t.dst, t.len),
            None => return false,
        }
    }
    true
}

/// Sends whatever the core has queued, a batch at a time.
fn flush_pending(dp: &Dataplane, batch: &mut TxBatch) {
    loop {
        let more = drain_transmits(&mut dp.node(), batch);
        dp.send_batch(batch);
        batch.clear();
        if !more {
            return;
        }
    }
}

/// Starts the data-plane threads; the first one to fail reports its error through `failed`.
pub fn spawn(
    dp: Arc<Dataplane>,
    failed: tokio::sync::mpsc::UnboundedSender<anyhow::Error>,
) -> Result<()> {
    type Loop = fn(&Dataplane) -> Result<()>;
    let loops: [(&str, Loop); 5] = [
        ("warren-tun-rx", tun_rx::tun_to_udp),
        ("warren-udp-rx", udp_rx::udp_to_tun),
        ("warren-timers", timers),
        ("warren-netwatch", announce_on_address_change),
        ("warren-side-rx", side::receive),
    ];
    for (name, body) in loops {
        let dp = dp.clone();
        let failed = failed.clone();
        std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                let e = match body(&dp) {
                    Ok(()) => anyhow::anyhow!("{name} ended unexpectedly"),
                    Err(e) => e.context(name),
                };
                let _ = failed.send(e);
            })?;
    }
    Ok(())
}

/// Sends `replies` and whatever else the core has queued.
pub(crate) fn send_replies(dp: &Dataplane, replies: &mut TxBatch) {
    let more = drain_transmits(&mut dp.node(), replies);
    dp.send_batch(replies);
    replies.clear();
    if more {
        flush_pending(dp, replies);
    }
}

/// Writes packets to the TUN device, each after [`tun_io::HDR`] bytes of room.
pub(crate) fn write_tun(dp: &Dataplane, coalescer: &mut tun_io::Coalescer, bufs: &mut [Vec<u8>]) {
    if bufs.is_empty() {
        return;
    }
    if let Err(e) = tun_io::write(&dp.tun, coalescer, bufs) {
        tracing::debug!("TUN write: {e}");
        dp.node().count_drop(DropReason::TunWriteFailed);
    }
}

fn timers(dp: &Dataplane) -> Result<()> {
    let mut batch = TxBatch::new(64, dp.slot_size());
    loop {
        // Path probes run on a 200 ms schedule, WireGuard timers on 250 ms: sleep until the
        // core's next deadline, never longer than a tick.
        let now = Instant::now();
        let next = dp.node().poll_timeout().unwrap_or(now + TIMER_TICK);
        let wait = next
            .saturating_duration_since(now)
            .clamp(Duration::from_millis(5), TIMER_TICK);
        std::thread::sleep(wait);
        dp.node().handle_timeout(Instant::now());
        answer_port_questions(dp);
        send_wakes(dp);
        side::pump(dp);
        flush_pending(dp, &mut batch);
    }
}

/// Peers' `warren check` questions, answered from the socket tables (read without the node
/// lock held).
fn answer_port_questions(dp: &Dataplane) {
    let questions: Vec<_> = {
        let mut node = dp.node();
        std::iter::from_fn(|| node.take_port_question()).collect()
    };
    for q in questions {
        let listening = crate::listening::answer_for_peer(q.port, q.proto);
        dp.node().answer_port_question(q, listening);
    }
}

/// Peers' `warren wake` requests, broadcast on the LAN (without the node lock held).
fn send_wakes(dp: &Dataplane) {
    let macs: Vec<_> = {
        let mut node = dp.node();
        std::iter::from_fn(|| node.take_wake()).collect()
    };
    if macs.is_empty() {
        return;
    }
    let tun = dp.tun.name().unwrap_or_default();
    for mac in macs {
        crate::wake::send(mac, &tun);
    }
}

fn announce_on_address_change(dp: &Dataplane) -> Result<()> {
    let mut watch = AddressWatch::open()?;
    let mut batch = TxBatch::new(64, dp.slot_size());
    loop {
        watch.next_new_address()?;
        tracing::debug!("local address added; telling peers where we are");
        for round in 0..2 {
            if round > 0 {
                std::thread::sleep(REPEAT_AFTER);
            }
            dp.node().handle_network_change(Instant::now());
            flush_pending(dp, &mut batch);
        }
    }
}
