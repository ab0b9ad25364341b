//! Warren's whole-system deterministic simulation: the first test tier.
//!
//! A [`World`] holds hosts, each a real [`warren_daemon_core::node::Node`] with the real
//! control client and peer map, NAT routers between LANs and the internet, and a coordinator
//! running the real `warren-coordinator-core` registry and relay core. One virtual clock
//! drives them all through an event queue, the way quinn's test `Pair` drives two QUIC
//! connections: NAT traversal, birthday runs, relay fallback and return, roaming,
//! rebinding and coordinator loss run in milliseconds, without root and without sockets. The
//! network-namespace lab (`lab/tests/nat_lab.rs`, `nat_mesh.rs`) proves the real
//! thing on top.
//!
//! # Pieces
//! - [`fabric`]: segments (the internet, LANs, a carrier's network), hosts' interfaces and
//!   routers; carries a datagram hop by hop, each router translating and filtering it, and
//!   adds up the delays.
//! - [`nat`]: the router models — full cone, port-restricted (port kept), symmetric (random
//!   port per destination), UDP-blocked, hairpin or not, port mappings (UPnP-IGD, NAT-PMP,
//!   PCP), and rebinding (every mapping forgotten, new ports from then on). A double NAT is a
//!   router behind a router.
//! - [`sites`]: the lab's site kinds built from those ([`SiteKind`]).
//! - [`host`]: one host — the node, its main socket and birthday side sockets as `warrend`'s
//!   shell handles them, a TUN that answers echo requests, and the control glue.
//! - [`coordinator`]: the coordinator actor (what is real and what is glued: see there).
//! - [`world`]: the clock and the queue; the control connections (dial, welcome, messages,
//!   a crashed coordinator), traffic (echo requests and background streams), faults (loss,
//!   partitions, a silent relay, roaming, rebinding), and hosts without a coordinator for
//!   tests of path probing itself.
//! - [`packet`]: the echo packets hosts send into the overlay.
//! - [`seed`]: the world's one random generator.
//!
//! # Tests (`sim/tests/`)
//! The lab's pair matrix (`matrix.rs`), several hosts joining at once and several behind one
//! symmetric NAT (`mesh.rs`), birthday runs (`birthday.rs`), relay fallback and return
//! (`relay.rs`), roaming (`roaming.rs`), rebinding (`rebinding.rs`), the relay going away
//! (`relay_loss.rs`), the coordinator going away (`coordinator_loss.rs`), path probing between
//! two nodes (`paths.rs`), and replay by seed (`determinism.rs`). All of them take about ten
//! seconds in a debug build.
//!
//! # Determinism and seeds
//! Every random choice (keys, node seeds, NAT ports, loss, relay tokens, reconnect jitter,
//! password salts) comes from the world's generator, seeded by the test; equal instants keep
//! the order they were queued in. `WARREN_SIM_SEED=N cargo test -p warren-sim` runs every
//! seeded test with seed `N` alone, and a world dropped by a failing assertion prints its
//! seed and that command.
//!
//! # boringtun's clock
//! boringtun 0.7's `Tunn` reads the real clock itself (`Instant::now()` in its timers, its
//! per-peer handshake rate limiter, handshake timestamps and cookie secrets). Its
//! `mock-instant` feature would replace that clock, but cargo unifies features across the
//! workspace: `cargo build --workspace` (as `packaging/build-deb.sh` runs it) would then
//! build `warrend` with a frozen clock. So the simulation leaves boringtun on the real clock
//! and starts its virtual clock at a real `Instant`; a run takes milliseconds of real time,
//! so to boringtun hardly any time passes. What the simulation therefore cannot cover:
//! - WireGuard's own timers: handshake retransmission after REKEY_TIMEOUT (5 s), keepalives
//!   (10 s after data, persistent keepalive 25 s), rekeying after 120 s, the session's end
//!   after 180 s, giving up after 90 s, cookie expiry. A handshake initiation lost on the way
//!   is not retried by WireGuard here; the node's own paths (disco pings, their keepalives,
//!   the handshake it starts on a newly proven path) all run on the virtual clock.
//! - boringtun's per-peer limit of 10 handshakes a second and the node's own
//!   [`HANDSHAKE_LIMIT`](warren_daemon_core::node::HANDSHAKE_LIMIT) count real seconds: a
//!   scenario with more handshakes than that with one peer would see cookie replies.
//! - Ephemeral keys and session indices come from the OS RNG: ciphertexts differ from run
//!   to run, their sizes, times and order do not.
//!
//! A machine so loaded that one simulated test takes over 5 s of real time could see a
//! WireGuard retransmission the seed does not explain.
//!
//! # Not simulated
//! - Direct paths over TCP (`tcp_dial`; the shell's `tcp_path.rs`): a UDP-blocked host's
//!   pairs go through the relay here, where the lab finds direct TCP paths to public hosts
//!   and through NATs that keep ports.
//! - The control channel's transport (QUIC, TCP+TLS, Noise): messages arrive typed, after
//!   the fabric's delay; a roaming host's connection drops and is dialed again (QUIC's
//!   connection migration is not modelled). A new STUN answer goes to the coordinator at
//!   once (the daemon looks for one every 100 ms).
//! - Peer relays, standalone relays and tickets, several coordinators, subnet routes, game
//!   discovery, `warren check` questions.
//! - Mapping timeouts: a router keeps its mappings until [`World::rebind`].

pub mod coordinator;
pub mod fabric;
pub mod host;
pub mod nat;
pub mod packet;
pub mod seed;
pub mod sites;
pub mod world;

pub use fabric::{HostId, Iface, NatId, SegId, INTERNET};
pub use host::{Host, MAIN_PORT};
pub use nat::{Nat, NatConfig};
pub use seed::{seed_or, seeds};
pub use sites::{Site, SiteKind};
pub use warren_proto::api::PathKind;
pub use world::World;
