//! Side sockets: the extra UDP sockets of a birthday run (see
//! `warren_daemon_core::path::birthday`), and the one that won, which then carries a peer's
//! traffic in place of the main socket.
//!
//! The core says what to do ([`SideEvent`]); this opens and closes the sockets, sends the
//! core's side pings from them, routes datagrams addressed to a kept socket's peer out of it,
//! and feeds what the sockets receive to the core from one thread that polls them all.
//! Nothing here touches the main socket's path unless a socket is kept: the send path checks
//! one atomic flag first.

use crate::dataplane::{send_replies, write_tun, Dataplane};
use crate::platform::poll::{self, Want};
use crate::platform::tun_io::{self, HDR};
use anyhow::Result;
use socket2::{Domain, Protocol, Socket, Type};
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;
use warren_daemon_core::node::{Inbound, Node, SideEvent, SideSocket, MIN_OUT};
use warren_daemon_core::tx_batch::TxBatch;

/// File descriptors left to everything else when side sockets are opened.
const FD_RESERVE: u64 = 256;
/// How often (ms) the receive thread looks again at which sockets exist.
const RESCAN: i32 = 50;

#[derive(Default)]
struct Sockets {
    open: Vec<(SideSocket, Arc<UdpSocket>)>,
    /// Addresses whose datagrams leave from a kept socket instead of the main one.
    kept: Vec<(SocketAddr, Arc<UdpSocket>)>,
}

#[derive(Default)]
pub struct SideSockets {
    sockets: Mutex<Sockets>,
    /// Some socket is kept: only then does the send path look up its destinations.
    any_kept: AtomicBool,
    /// Wakes the receive thread when sockets appear.
    opened: Condvar,
}

impl SideSockets {
    /// The kept socket that carries datagrams to `dst`, if any. One relaxed load when none is.
    pub fn route(&self, dst: SocketAddr) -> Option<Arc<UdpSocket>> {
        if !self.any_kept.load(Ordering::Relaxed) {
            return None;
        }
        let s = self.sockets.lock().expect("side sockets");
        s.kept
            .iter()
            .find(|(a, _)| *a == dst)
            .map(|(_, s)| s.clone())
    }

    /// Applies what the core asks for, with the core locked; returns the runs whose sockets
    /// must be opened (outside the lock: opening hundreds takes a while).
    fn apply(&self, node: &mut Node) -> Vec<(u32, u16, bool)> {
        let mut to_open = Vec::new();
        let mut guard = self.sockets.lock().expect("side sockets");
        let s = &mut *guard;
        while let Some(e) = node.poll_side_event() {
            match e {
                SideEvent::Open { run, count, ipv6 } => to_open.push((run, count, ipv6)),
                SideEvent::Keep { socket, dst } => {
                    let winner = s
                        .open
                        .iter()
                        .find(|(k, _)| *k == socket)
                        .map(|(_, s)| s.clone());
                    s.open.retain(|(k, _)| k.run != socket.run || *k == socket);
                    if let Some(w) = winner {
                        tracing::info!(%dst, port = ?w.local_addr().ok(), "birthday probe won: a side socket carries this peer");
                        s.kept.push((dst, w));
                    }
                }
                SideEvent::Close { run } => {
                    s.open.retain(|(k, _)| k.run != run);
                    // A kept socket of that run is in `open` too: find it by identity.
                    let open = &s.open;
                    let before = s.kept.len();
                    s.kept
                        .retain(|(_, sock)| open.iter().any(|(_, o)| Arc::ptr_eq(o, sock)));
                    if s.kept.len() != before {
                        tracing::debug!(run, "kept side socket closed");
                    }
                }
            }
        }
        self.any_kept.store(!s.kept.is_empty(), Ordering::Relaxed);
        to_open
    }

    fn open(&self, run: u32, count: u16, ipv6: bool) -> u16 {
        let limit = crate::platform::host::fd_limit().saturating_sub(FD_RESERVE);
        let count = (count as u64).min(limit) as u16;
        let mut opened = Vec::with_capacity(count as usize);
        for index in 0..count {
            match bind_ephemeral(ipv6) {
                Ok(sock) => opened.push((SideSocket { run, index }, Arc::new(sock))),
                Err(e) => {
                    tracing::debug!("side socket {index}: {e}");
                    break;
                }
            }
        }
        let n = opened.len() as u16;
        self.sockets
            .lock()
            .expect("side sockets")
            .open
            .extend(opened);
        self.opened.notify_all();
        n
    }

    fn socket(&self, socket: SideSocket) -> Option<Arc<UdpSocket>> {
        let s = self.sockets.lock().expect("side sockets");
        s.open
            .iter()
            .find(|(k, _)| *k == socket)
            .map(|(_, s)| s.clone())
    }
}

/// Applies the core's side-socket events and sends its side pings; called by the timer
/// thread after every timeout, and by the receive thread after every datagram.
pub fn pump(dp: &Dataplane) {
    let mut buf = vec![0u8; MIN_OUT.max(256)];
    loop {
        let to_open = dp.side.apply(&mut dp.node());
        if to_open.is_empty() {
            break;
        }
        for (run, count, ipv6) in to_open {
            let n = dp.side.open(run, count, ipv6);
            tracing::debug!(run, asked = count, opened = n, "birthday side sockets");
            dp.node().side_sockets_opened(Instant::now(), run, n);
        }
    }
    loop {
        let next = dp.node().poll_side_transmit(&mut buf);
        let Some((socket, t)) = next else { break };
        if let Some(sock) = dp.side.socket(socket) {
            // A full buffer or an unreachable address loses the ping, as the network might.
            let _ = sock.send_to(&buf[..t.len], t.dst);
        }
    }
}

fn bind_ephemeral(ipv6: bool) -> io::Result<UdpSocket> {
    let (domain, any): (Domain, SocketAddr) = if ipv6 {
        (Domain::IPV6, (Ipv6Addr::UNSPECIFIED, 0).into())
    } else {
        (Domain::IPV4, (Ipv4Addr::UNSPECIFIED, 0).into())
    };
    let s = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))?;
    s.set_nonblocking(true)?;
    s.bind(&any.into())?;
    Ok(s.into())
}

/// The receive thread: sleeps while there is no side socket; otherwise polls them all and
/// hands every datagram to the core.
pub fn receive(dp: &Dataplane) -> Result<()> {
    let mut buf = vec![0u8; 65536];
    let mut tun_bufs = vec![Vec::with_capacity(HDR + 65536)];
    let mut gro_table = tun_io::Coalescer::default();
    let mut replies = TxBatch::new(16, dp.slot_size());
    loop {
        let current: Vec<(SideSocket, Arc<UdpSocket>)> = {
            let mut s = dp.side.sockets.lock().expect("side sockets");
            while s.open.is_empty() {
                s = dp.side.opened.wait(s).expect("side sockets");
            }
            s.open.clone()
        };
        // The sockets stay open while `current` holds them.
        let fds: Vec<poll::Raw> = current.iter().map(|(_, s)| poll::raw(s.as_ref())).collect();
        let Ok(ready) = poll::wait_any(&fds, Want::Read, RESCAN) else {
            continue;
        };
        for (ready, (socket, sock)) in ready.into_iter().zip(&current) {
            if !ready {
                continue;
            }
            while let Ok((n, from)) = sock.recv_from(&mut buf) {
                let from = crate::udp::from_wire(from);
                let slot = &mut tun_bufs[0];
                slot.clear();
                slot.resize(HDR + n.max(MIN_OUT), 0);
                let out = &mut slot[HDR..];
                let now = Instant::now();
                let inbound = dp
                    .node()
                    .handle_side_datagram(now, *socket, from, &buf[..n], out);
                // A socket that just won must be kept before anything is sent to the peer.
                pump(dp);
                match inbound {
                    Inbound::ToTun { len } => {
                        tun_bufs[0].truncate(HDR + len);
                        write_tun(dp, &mut gro_table, &mut tun_bufs);
                    }
                    Inbound::Transmit(t) => {
                        if let Some(spare) = replies.spare() {
                            spare[..t.len].copy_from_slice(&out[..t.len]);
                            replies.commit(t.dst, t.len);
                        }
                    }
                    Inbound::Nothing => {}
                }
            }
        }
        send_replies(dp, &mut replies);
    }
}
