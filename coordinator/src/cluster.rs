//! Several coordinators on one PostgreSQL database (`--database`), serving the same networks
//! with the same key: a host connected to one sees the members connected to another.
//!
//! - The database is the registry's truth, as for one coordinator. Each keeps the registry in
//!   memory, stores its own changes, and publishes [`Event::Registry`]; the others then read
//!   the whole registry back and bring each of their sessions' peer maps up to date. That
//!   costs O(registry) per change at every coordinator: fine for thousands of hosts, not for
//!   millions. Two coordinators changing the same thing at once are kept apart by the
//!   database's constraints (one address, one lease per node…): the loser's change is refused
//!   and undone in its memory, as any refused write is ([`crate::hub::Hub::persist`]).
//! - Presence is not stored: each coordinator publishes its nodes' arrivals, endpoint updates
//!   and departures ([`Event::Online`], [`Event::Offline`]), and says every second that it is
//!   alive. The others keep that in [`presence::RemotePresence`] and show those nodes online,
//!   with those endpoints, to their own sessions' peers. A coordinator silent for
//!   [`presence::DEAD_AFTER`] is taken for dead, and its nodes for offline (their daemons are
//!   meanwhile moving to another coordinator, which announces them again).
//! - Events travel by `NOTIFY` on [`event::CHANNEL`]: one connection publishes
//!   ([`pg::publisher`]), another listens ([`pg::listener`]), each on its own thread, as the
//!   store's connection is (the `postgres` crate is blocking). A coordinator hearing one it
//!   did not know (it just started, or came back after a silence) reads the registry back and
//!   asks everyone to say again who is online ([`Event::Sync`]); after its own listening
//!   connection broke, it does the same, since notifications sent meanwhile are lost. Events
//!   lost in a shorter break (under [`presence::DEAD_AFTER`]) are not recovered until the
//!   next change of the same node.
//! - Not shared: each coordinator's built-in relay knows only its own sessions, so two hosts
//!   that need the relay and are connected to different coordinators have no path.

mod apply;
pub mod event;
mod pg;
pub mod presence;

pub use event::{Endpoints, Event};

use std::sync::{mpsc, Arc};

/// The hub's handle for publishing; sending never waits for the database.
pub struct Publisher {
    tx: mpsc::Sender<Event>,
}

impl Publisher {
    /// A publisher and the events it will carry (for [`start`], or a test).
    pub fn new() -> (Self, mpsc::Receiver<Event>) {
        let (tx, rx) = mpsc::channel();
        (Self { tx }, rx)
    }

    pub fn publish(&self, event: Event) {
        // The publishing thread ends only with the process.
        let _ = self.tx.send(event);
    }
}

/// A random id for this coordinator process, carried by its events.
pub fn new_id() -> u64 {
    let mut b = [0u8; 8];
    getrandom::getrandom(&mut b).expect("random numbers for the coordinator's cluster id");
    u64::from_le_bytes(b)
}

/// Starts publishing `events` and listening to the other coordinators on the database at
/// `url` (already checked by the store).
pub fn start(
    url: &str,
    id: u64,
    events: mpsc::Receiver<Event>,
    server: Arc<crate::server::Server>,
) -> anyhow::Result<()> {
    let config = crate::store::parse_url(url)?;
    let publish = config.clone();
    std::thread::Builder::new()
        .name("warren-cluster-out".into())
        .spawn(move || pg::publisher(publish, id, events))?;
    std::thread::Builder::new()
        .name("warren-cluster-in".into())
        .spawn(move || pg::listener(config, id, server))?;
    tracing::info!(id = %format!("{id:016x}"), "sharing the database with other coordinators");
    Ok(())
}
