//! The relay over the TCP control connection, with the node unchanged: the node is told the
//! relay is a UDP socket on 127.0.0.1 (this shim). What the node's UDP socket sends to it
//! goes onto the TLS stream as relay frames; relay frames from the stream are sent from the
//! shim to the node's socket, so they arrive from the relay address the node expects.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;
use warren_proto::control::stream::MAX_RELAY_FRAME;

pub struct Shim {
    pub socket: Arc<UdpSocket>,
    /// The node's own UDP socket, on loopback.
    pub node: SocketAddr,
}

impl Shim {
    pub async fn bind(node_port: u16) -> std::io::Result<Shim> {
        Ok(Shim {
            socket: Arc::new(UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await?),
            node: SocketAddr::from((Ipv4Addr::LOCALHOST, node_port)),
        })
    }

    pub fn addr(&self) -> std::io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// A relay frame from the coordinator, to the node.
    pub async fn deliver(&self, frame: &[u8]) {
        if let Err(e) = self.socket.send_to(frame, self.node).await {
            tracing::trace!("relay shim to the node: {e}");
        }
    }

    /// Forwards what the node sends to the shim into `stream` (the TCP writer's relay queue)
    /// until that queue closes. A full queue drops the datagram, as a full socket would.
    pub async fn forward(self: Arc<Self>, stream: mpsc::Sender<Vec<u8>>) {
        let mut buf = vec![0u8; MAX_RELAY_FRAME];
        let mut dropped = 0u64;
        loop {
            let (n, from) = match self.socket.recv_from(&mut buf).await {
                Ok(r) => r,
                Err(e) => {
                    tracing::trace!("relay shim receive: {e}");
                    continue;
                }
            };
            // Only the node's socket may send on this host's coordinator connection.
            if from != self.node {
                tracing::debug!(%from, "relay shim: datagram from a stranger dropped");
                continue;
            }
            match stream.try_send(buf[..n].to_vec()) {
                Ok(()) => {}
                Err(TrySendError::Full(_)) => {
                    dropped += 1;
                    if dropped.is_power_of_two() {
                        tracing::debug!(dropped, "relay shim: TCP connection behind, dropping");
                    }
                }
                Err(TrySendError::Closed(_)) => return,
            }
        }
    }
}
