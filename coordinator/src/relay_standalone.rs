//! `warren-coordinator relay`: the relay on its own, so that relays can run on other machines
//! than the coordinator (and scale out beside it). It shares a secret with the coordinator
//! (`--relay-secret-file` there, `--secret-file` here) and admits nodes by the tickets the
//! coordinator sealed with it (see [`crate::relay_tickets`]); it keeps no state on disk and
//! needs no connection to the coordinator.

use crate::relay::{self, Membership};
use anyhow::Result;
use std::net::SocketAddr;
use std::sync::Arc;
use warren_coordinator_core::{Relay, RelayConfig};
use warren_proto::key::NodeKey;

/// The relay core decides who shares a network from the tickets: nothing here is asked.
struct ByTickets;

impl Membership for ByTickets {
    fn generation(&self) -> u64 {
        0
    }
    fn shares_network(&self, _: &NodeKey, _: &NodeKey) -> (bool, u64) {
        (false, 0)
    }
}

pub async fn run(listen: SocketAddr, secret: [u8; 32], config: RelayConfig) -> Result<()> {
    let socket = relay::bind(listen.ip(), listen.port()).await?;
    let addr = socket.local_addr()?;
    println!("relay on {addr}");
    tracing::info!(%addr, "standalone relay; admits by coordinator tickets");
    // Nothing sends commands to a standalone relay; the handle only keeps the channel open.
    let (_handle, commands) = relay::channel(addr.port());
    let core = Relay::standalone(
        config,
        secret,
        crate::hub::unix_now(),
        relay::cookie_secret()?,
    );
    tokio::select! {
        () = relay::serve(socket, commands, Arc::new(ByTickets), core) => Ok(()),
        _ = tokio::signal::ctrl_c() => Ok(()),
    }
}
