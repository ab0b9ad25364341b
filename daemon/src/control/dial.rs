//! The I/O of one coordinator connection, as tasks that report to the session: a dial (every
//! address of the coordinator at once, the first through the handshake wins) and, once
//! connected, a reader and a writer. Each report carries the coordinator's id and the
//! generation of the attempt, so the session ignores what a closed connection still says.

use super::link::{Carried, Link};
use super::session::ControlContext;
use super::CoordinatorSettings;
use anyhow::{anyhow, Context, Result};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use warren_daemon_core::control::peer_map::CoordId;
use warren_proto::control::msg::{ClientMsg, Welcome};

/// QUIC's head start, a TCP attempt, and its handshake, with room to spare.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(12);

/// What the connection tasks report.
pub enum Input {
    Dialed {
        id: CoordId,
        generation: u64,
        result: Result<Box<(Link, Welcome)>, DialError>,
    },
    Frame {
        id: CoordId,
        generation: u64,
        frame: Result<Vec<u8>, String>,
    },
}

pub struct DialError {
    pub text: String,
    /// The coordinator refused this host's name: another member has it.
    pub name_taken: bool,
}

pub type Inputs = mpsc::UnboundedSender<Input>;

/// Dials in the background; the outcome arrives as [`Input::Dialed`].
pub fn dial(
    ctx: Arc<ControlContext>,
    settings: CoordinatorSettings,
    claim: Ipv4Addr,
    id: CoordId,
    generation: u64,
    inputs: Inputs,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let attempt = tokio::time::timeout(CONNECT_TIMEOUT, connect(&ctx, &settings, claim));
        let result = match attempt.await {
            Ok(Ok(connected)) => Ok(Box::new(connected)),
            Ok(Err(e)) => Err(DialError {
                name_taken: e.is::<super::connect::NameTaken>(),
                text: format!("{e:#}"),
            }),
            Err(_) => Err(DialError {
                text: "timed out".into(),
                name_taken: false,
            }),
        };
        let _ = inputs.send(Input::Dialed {
            id,
            generation,
            result,
        });
    })
}

/// A connection the session holds: what keeps it alive and its two pump tasks.
pub struct LiveLink {
    pub carried: Carried,
    out: mpsc::UnboundedSender<Vec<u8>>,
    tasks: [JoinHandle<()>; 2],
}

impl LiveLink {
    pub fn start(link: Link, id: CoordId, generation: u64, inputs: Inputs) -> Self {
        let (mut reader, mut writer, carried) = link.split();
        let to_session = inputs.clone();
        let read = tokio::spawn(async move {
            loop {
                let frame = reader.read_frame().await.map_err(|e| format!("{e:#}"));
                let end = frame.is_err();
                let sent = to_session.send(Input::Frame {
                    id,
                    generation,
                    frame,
                });
                if end || sent.is_err() {
                    return;
                }
            }
        });
        let (out, mut queue) = mpsc::unbounded_channel::<Vec<u8>>();
        let write = tokio::spawn(async move {
            while let Some(bytes) = queue.recv().await {
                if let Err(e) = writer.write_frame(&bytes).await {
                    let _ = inputs.send(Input::Frame {
                        id,
                        generation,
                        frame: Err(format!("send failed: {e:#}")),
                    });
                    return;
                }
            }
        });
        LiveLink {
            carried,
            out,
            tasks: [read, write],
        }
    }

    pub fn send(&self, msg: &ClientMsg) {
        let bytes = serde_json::to_vec(msg).expect("serializable");
        // A writer that stopped has reported why; the session closes the link then.
        let _ = self.out.send(bytes);
    }

    pub fn close(self, reason: &'static str) {
        self.carried.close(reason.as_bytes());
    }
}

impl Drop for LiveLink {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// How long the first address is tried alone before the alternates join in: the address
/// the user gave first is the one used whenever it answers (so hosts given different first
/// addresses of coordinators sharing a database spread over them), and a dead one costs
/// little more than this.
const FIRST_ADDRESS_HEAD_START: Duration = Duration::from_millis(250);

/// Connects to the coordinator at any of its addresses: the first address, then after
/// [`FIRST_ADDRESS_HEAD_START`] all the others at once too; the first that gets through the
/// handshake is used.
async fn connect(
    ctx: &ControlContext,
    s: &CoordinatorSettings,
    claim: Ipv4Addr,
) -> Result<(Link, Welcome)> {
    if s.alternates.is_empty() {
        let addr = resolve(&s.address).await?;
        return super::connect::connect(ctx, s, claim, addr).await;
    }
    let mut attempts: Vec<super::connect::Pending<'_, Result<(Link, Welcome)>>> = Vec::new();
    for (i, a) in std::iter::once(&s.address).chain(&s.alternates).enumerate() {
        attempts.push(Box::pin(async move {
            if i > 0 {
                tokio::time::sleep(FIRST_ADDRESS_HEAD_START).await;
            }
            let addr = resolve(a).await?;
            super::connect::connect(ctx, s, claim, addr)
                .await
                .with_context(|| format!("at {a}"))
        }));
    }
    let mut errors = Vec::new();
    while !attempts.is_empty() {
        let (r, i) = super::connect::first_of(&mut attempts).await;
        drop(attempts.swap_remove(i));
        match r {
            Ok(connected) => return Ok(connected),
            Err(e) => errors.push(format!("{e:#}")),
        }
    }
    Err(anyhow!(errors.join("; ")))
}

async fn resolve(address: &str) -> Result<SocketAddr> {
    tokio::net::lookup_host(address)
        .await
        .with_context(|| format!("cannot resolve {address}"))?
        .next()
        .ok_or_else(|| anyhow!("{address} has no address"))
}
