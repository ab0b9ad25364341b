//! UDP → TUN: drain the socket into the lanes, decrypt small datagrams first.
//!
//! Under a download the socket's 8 MB receive buffer held megabytes, and a game's datagram
//! waited behind them. Each round reads the socket until it is empty (`recvmmsg` of
//! GRO-coalesced chunks), then decrypts one round's worth — a lone small datagram first — into
//! TUN buffers written with `send_multiple`, which re-coalesces TCP/UDP flows for the kernel.

use super::{send_replies, write_tun, Dataplane, RX_BATCH};
use crate::platform::poll::{self, Want};
use crate::platform::tun_io::{self, HDR};
use crate::udp::from_wire;
use anyhow::Result;
use quinn_udp::{RecvMeta, UdpSockRef};
use std::io::{self, IoSliceMut};
use std::net::SocketAddr;
use std::time::Instant;
use warren_daemon_core::counters::DropReason;
use warren_daemon_core::lanes::{Kind, Lanes, Limits};
use warren_daemon_core::node::{Inbound, MIN_OUT};
use warren_daemon_core::tx_batch::TxBatch;

/// How much may wait to be decrypted: 1 MiB of a download is 722 full datagrams, inside the
/// 768 a lone small datagram may overtake (WireGuard's replay window is 1 024: the datagrams it
/// passed must not look like replays afterwards); a game flood of tiny datagrams may queue
/// more, and then nothing overtakes it.
const LIMITS: Limits = Limits {
    small: 256,
    bulk_bytes: 1 << 20,
    bulk_packets: 4096,
    overtake: 768,
};
/// Decrypted packets gathered before one `send_multiple` to the TUN device.
const TUN_SLOTS: usize = 256;
/// UDP packets per `send_multiple` at most: it coalesces a UDP flow into one packet, which the
/// kernel refuses (EINVAL) past `UDP_MAX_SEGMENTS` (64 before Linux 6.11, then 128) segments.
/// TCP is coalesced up to 64 KiB and has no such limit.
const TUN_UDP_MAX: usize = 64;
/// `recvmmsg` calls per round at most (each up to 8 chunks of up to 64 datagrams): as in
/// `tun_rx`, what was read should still be in the cache when it is decrypted.
const READS_PER_ROUND: usize = 2;
/// Datagrams decrypted per round once the small ones are done.
const ROUND_DATAGRAMS: usize = 128;

/// A received chunk: one datagram, or a GRO run of equal-sized ones from one sender.
struct Chunk {
    buf: Vec<u8>,
    len: usize,
    stride: usize,
    from: SocketAddr,
}

pub(super) fn udp_to_tun(dp: &Dataplane) -> Result<()> {
    let gro = dp.udp.state.gro_segments().max(1);
    let chunk = (gro * (dp.mtu as usize + 128)).max(65536);
    let mut reader = Reader {
        taken: (0..RX_BATCH).map(|_| vec![0u8; chunk]).collect(),
        metas: [RecvMeta::default(); RX_BATCH],
        pool: Vec::new(),
        chunk,
    };
    let mut lanes: Lanes<Chunk> = Lanes::new(LIMITS);
    let mut tun_bufs: Vec<Vec<u8>> = (0..TUN_SLOTS.max(2 * gro))
        .map(|_| Vec::with_capacity(HDR + 65535))
        .collect();
    let mut gro_table = tun_io::Coalescer::default();
    let mut replies = TxBatch::new(64, dp.slot_size());
    let fd = poll::raw(&dp.udp.socket);
    let mut drained = false;
    loop {
        // Idle: one poll until the next datagram, no empty read first.
        if lanes.is_empty() && drained {
            poll::wait(fd, Want::Read, -1)?;
        }
        drained = reader.fill(dp, &mut lanes);
        if lanes.is_empty() {
            continue;
        }
        let now = Instant::now();
        let mut used = 0;
        let mut udp = 0;
        let mut decrypted = 0;
        while decrypted < ROUND_DATAGRAMS || lanes.has_small() {
            let Some(c) = lanes.pop() else { break };
            let packets = c.len.div_ceil(c.stride);
            if used + packets > tun_bufs.len() || udp + packets > TUN_UDP_MAX.max(gro) {
                write_tun(dp, &mut gro_table, &mut tun_bufs[..used]);
                used = 0;
                udp = 0;
            }
            let data = &c.buf[..c.len];
            let mut node = dp.node();
            for segment in data.chunks(c.stride) {
                decrypted += 1;
                let slot = &mut tun_bufs[used];
                slot.clear();
                slot.resize(HDR + segment.len().max(MIN_OUT), 0);
                match node.handle_datagram(now, c.from, segment, &mut slot[HDR..]) {
                    Inbound::ToTun { len } => {
                        slot.truncate(HDR + len);
                        if is_udp(&slot[HDR..]) {
                            udp += 1;
                        }
                        used += 1;
                    }
                    Inbound::Transmit(t) => {
                        if let Some(spare) = replies.spare() {
                            spare[..t.len].copy_from_slice(&slot[HDR..HDR + t.len]);
                            replies.commit(t.dst, t.len);
                        }
                    }
                    Inbound::Nothing => {}
                }
            }
            drop(node);
            reader.give_back(c.buf);
        }
        write_tun(dp, &mut gro_table, &mut tun_bufs[..used]);
        send_replies(dp, &mut replies);
    }
}

struct Reader {
    /// The buffers the next `recvmmsg` fills.
    taken: Vec<Vec<u8>>,
    metas: [RecvMeta; RX_BATCH],
    /// Full-size buffers handed back after decryption.
    pool: Vec<Vec<u8>>,
    chunk: usize,
}

impl Reader {
    /// Reads the socket into `lanes` until it is empty (`true`) or a round's reads are used up.
    fn fill(&mut self, dp: &Dataplane, lanes: &mut Lanes<Chunk>) -> bool {
        let mut full = 0u64;
        let mut drained = false;
        for _ in 0..READS_PER_ROUND {
            let received = {
                let mut bufs = self.taken.iter_mut();
                let mut iovs: [IoSliceMut; RX_BATCH] = std::array::from_fn(|_| {
                    IoSliceMut::new(bufs.next().expect("RX_BATCH buffers"))
                });
                dp.udp
                    .state
                    .recv(UdpSockRef::from(&dp.udp.socket), &mut iovs, &mut self.metas)
            };
            let n = match received {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    drained = true;
                    break;
                }
                Err(e) => {
                    tracing::debug!("UDP receive: {e}");
                    continue;
                }
            };
            for i in 0..n {
                let meta = self.metas[i];
                let stride = if meta.stride == 0 {
                    meta.len
                } else {
                    meta.stride
                };
                let packets = meta.len.div_ceil(stride.max(1));
                let buf = self.take(i, meta.len);
                let c = Chunk {
                    buf,
                    len: meta.len,
                    stride: stride.max(1),
                    from: from_wire(meta.addr),
                };
                let kind = Kind::datagrams(meta.len, packets, stride);
                lanes.push(c, kind, |old, packets| {
                    full += packets as u64;
                    give_back(&mut self.pool, self.chunk, old.buf);
                });
            }
        }
        if full > 0 {
            let mut node = dp.node();
            for _ in 0..full {
                node.count_drop(DropReason::QueueFull);
            }
        }
        drained
    }

    /// The bytes `recvmmsg` put in buffer `i`. A short chunk is copied out (the full-size
    /// buffer stays for the next read), so waiting datagrams do not each hold 64 KiB or more.
    fn take(&mut self, i: usize, len: usize) -> Vec<u8> {
        if len <= self.chunk / 4 {
            return self.taken[i][..len].to_vec();
        }
        let fresh = self.pool.pop().unwrap_or_else(|| vec![0u8; self.chunk]);
        std::mem::replace(&mut self.taken[i], fresh)
    }

    fn give_back(&mut self, buf: Vec<u8>) {
        give_back(&mut self.pool, self.chunk, buf);
    }
}

/// A full-size buffer goes back to the pool; a copied-out short one is freed.
fn give_back(pool: &mut Vec<Vec<u8>>, chunk: usize, buf: Vec<u8>) {
    if buf.len() == chunk {
        pool.push(buf);
    }
}

/// Whether an IP packet carries UDP (IPv6 with extension headers counts as not: those are not
/// coalesced).
fn is_udp(packet: &[u8]) -> bool {
    match packet.first().map(|b| b >> 4) {
        Some(4) => packet.get(9) == Some(&17),
        Some(6) => packet.get(6) == Some(&17),
        _ => false,
    }
}
