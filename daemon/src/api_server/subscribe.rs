//! `subscribe`: the GUI's live view. A status goes out at once, then whenever the control task
//! reports a change (connection, networks, peers) or the data plane's view of a peer changes
//! (online, path, endpoint). Traffic counters alone push at most every [`COUNTERS_EVERY`], so
//! an idle or busy tunnel costs the subscriber a few small messages, not a stream.

use super::connection::write_response;
use super::{status, ApiState};
use anyhow::Result;
use std::time::{Duration, Instant};
use tokio::io::AsyncWrite;
use warren_proto::api::{Response, Status};

/// How often the data plane's part of the status is looked at.
const LOOK_EVERY: Duration = Duration::from_secs(1);
const COUNTERS_EVERY: Duration = Duration::from_secs(5);

pub async fn run(state: &ApiState, writer: &mut (impl AsyncWrite + Unpin)) -> Result<()> {
    let mut changed = state.control.changed.clone();
    let mut last: Option<Status> = None;
    let mut last_sent = Instant::now();
    loop {
        let now = status::build(state);
        let send = match &last {
            None => true,
            Some(prev) => {
                let significant = without_counters(prev) != without_counters(&now);
                significant || (prev != &now && last_sent.elapsed() >= COUNTERS_EVERY)
            }
        };
        if send {
            write_response(writer, Response::Status(Box::new(now.clone()))).await?;
            last = Some(now);
            last_sent = Instant::now();
        }
        tokio::select! {
            r = changed.changed() => {
                if r.is_err() {
                    return Ok(());
                }
            }
            _ = tokio::time::sleep(LOOK_EVERY) => {}
        }
    }
}

/// The status with what changes on every packet or second zeroed, to tell news from noise.
fn without_counters(s: &Status) -> Status {
    let mut s = s.clone();
    for p in &mut s.peers {
        p.rx_bytes = 0;
        p.tx_bytes = 0;
        p.last_handshake_secs = None;
        p.rtt_ms = None;
    }
    s.dropped.clear();
    s.broadcast = Default::default();
    for c in s.coordinator.iter_mut().chain(s.coordinators.iter_mut()) {
        c.rtt_ms = None;
    }
    s
}
