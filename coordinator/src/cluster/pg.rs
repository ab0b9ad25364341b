//! The two connections to PostgreSQL that carry the events: one sends `NOTIFY`s, one
//! `LISTEN`s. Each reconnects by itself when its connection breaks, every [`RETRY`].

use super::event::{encode, Event, CHANNEL};
use crate::server::Server;
use postgres::fallible_iterator::FallibleIterator;
use postgres::{Client, Config, NoTls};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

/// How often a coordinator says it is alive.
pub const ALIVE_EVERY: Duration = Duration::from_secs(1);
/// How often the listener looks for silent coordinators when nothing arrives.
const TICK: Duration = Duration::from_millis(250);
const RETRY: Duration = Duration::from_secs(1);

fn connect(config: &Config, what: &str) -> Option<Client> {
    match config.connect(NoTls) {
        Ok(c) => Some(c),
        Err(e) => {
            tracing::warn!(
                "cluster {what}: cannot connect to the database ({e}); retrying every second, \
                 the other coordinators do not hear from this one meanwhile"
            );
            std::thread::sleep(RETRY);
            None
        }
    }
}

/// Sends every event the hub publishes, in order, and [`Event::Alive`] every second.
pub fn publisher(config: Config, id: u64, events: mpsc::Receiver<Event>) {
    let mut client: Option<Client> = None;
    let mut next_alive = Instant::now();
    loop {
        let wait = next_alive.saturating_duration_since(Instant::now());
        let event = match events.recv_timeout(wait) {
            Ok(e) => e,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                next_alive = Instant::now() + ALIVE_EVERY;
                Event::Alive
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => return,
        };
        let payload = encode(id, &event);
        // One try after a reconnect. An event that cannot be sent is dropped, and so is what
        // queued up meanwhile: the others take this coordinator for dead after a few seconds
        // of silence, and when they hear from it again they read the registry back and it
        // says again who is online here.
        for _ in 0..2 {
            if client.as_ref().is_none_or(Client::is_closed) {
                client = connect(&config, "publisher");
                if client.is_none() {
                    let dropped = events.try_iter().count();
                    tracing::debug!(dropped, "cluster publisher: events dropped while offline");
                }
            }
            let Some(c) = client.as_mut() else { break };
            match c.execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &payload]) {
                Ok(_) => break,
                Err(e) => {
                    tracing::warn!("cluster publisher: NOTIFY failed: {e}");
                    client = None;
                }
            }
        }
    }
}

/// Listens for the other coordinators' events and applies them to the hub in batches.
pub fn listener(config: Config, id: u64, server: Arc<Server>) {
    loop {
        let Some(mut client) = connect(&config, "listener") else {
            continue;
        };
        if let Err(e) = client.batch_execute(&format!("LISTEN {CHANNEL}")) {
            tracing::warn!("cluster listener: LISTEN failed: {e}");
            std::thread::sleep(RETRY);
            continue;
        }
        // Whatever was sent before this connection listened is lost to it.
        super::apply::after_gap(&server);
        loop {
            let mut batch = Vec::new();
            let broken = receive(&mut client, &mut batch).err();
            super::apply::batch(&server, id, &batch, Instant::now());
            if let Some(e) = broken {
                tracing::warn!("cluster listener: connection lost ({e}); reconnecting");
                break;
            }
            if client.is_closed() {
                tracing::warn!("cluster listener: connection closed; reconnecting");
                break;
            }
        }
    }
}

/// Waits up to [`TICK`] for a notification, then takes whatever else already arrived too (so
/// one registry reload serves them all).
fn receive(client: &mut Client, batch: &mut Vec<String>) -> Result<(), postgres::Error> {
    let mut notifications = client.notifications();
    if let Some(n) = notifications.timeout_iter(TICK).next()? {
        batch.push(n.payload().to_owned());
    }
    let mut more = notifications.iter();
    while let Some(n) = more.next()? {
        batch.push(n.payload().to_owned());
    }
    Ok(())
}
