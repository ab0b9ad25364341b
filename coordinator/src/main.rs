//! `warren-coordinator`: networks, address leases, peer maps and hole-punch introductions.
//! It never sees traffic between hosts: only who is where.

mod cluster;
#[cfg(test)]
mod docs_check;
mod hub;
mod limits;
mod link;
mod membership_index;
mod memory;
mod metrics;
mod outbox;
mod owner;
mod password_memo;
mod passwords;
// The Windows build's fallback; Linux runs its tests too.
#[cfg(any(windows, test))]
mod plain_udp;
mod preauth;
mod published;
mod quic;
mod relay;
mod relay_io;
mod relay_standalone;
mod relay_tickets;
mod routes;
mod server;
mod store;
mod stun;
mod tcp;
mod tcp_links;
mod tls;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use warren_coordinator_core::{Registry, RegistryConfig};
use warren_proto::control::auth::public_key;

pub const DEFAULT_PORT: u16 = 7443;
const KEY_FILE: &str = "coordinator.key";

#[derive(Parser, Debug)]
#[command(
    name = "warren-coordinator",
    version,
    about = "Warren coordinator: networks, addresses, and introductions between hosts"
)]
struct Args {
    /// Where the coordinator key and database live [default: /var/lib/warren-coordinator as
    /// root, the per-user data dir otherwise]
    #[arg(long, global = true)]
    state_dir: Option<PathBuf>,
    /// Keep the state (networks, hosts, addresses) in this PostgreSQL database instead of
    /// SQLite in --state-dir: postgres://USER:PASSWORD@HOST[:PORT]/DATABASE, or
    /// postgres://USER@%2Fvar%2Frun%2Fpostgresql/DATABASE for the local socket. The
    /// connection is plain (no TLS). The coordinator key stays in --state-dir. Several
    /// coordinators may share one database, each with a copy of the same key file: they serve
    /// the same networks, and hosts given all their addresses (`warren up --coordinator A
    /// --coordinator B …`) move to another when theirs stops
    #[arg(long, value_name = "URL")]
    database: Option<String>,
    /// QUIC control address
    #[arg(long, default_value_t = SocketAddr::from(([0, 0, 0, 0], DEFAULT_PORT)))]
    listen: SocketAddr,
    /// The two UDP ports of the STUN server (endpoint discovery), on the IP of --listen
    /// [default: the --listen port + 1 and + 2]
    #[arg(long, value_name = "PORT1,PORT2", value_parser = stun::parse_ports)]
    stun_ports: Option<[u16; 2]>,
    /// The UDP port of the relay (for hosts with no direct path between them), on the IP of
    /// --listen; 0 turns the relay off [default: the --listen port + 3]
    #[arg(long, value_name = "PORT")]
    relay_port: Option<u16>,
    /// Send hosts to a standalone relay (`warren-coordinator relay`) at this address instead of
    /// running one here; needs --relay-secret-file
    #[arg(long, value_name = "HOST:PORT", requires = "relay_secret_file")]
    relay_at: Option<SocketAddr>,
    /// The secret shared with standalone relays (32 bytes, created if missing; copy the same
    /// file to each relay)
    #[arg(long, value_name = "PATH", requires = "relay_at")]
    relay_secret_file: Option<PathBuf>,
    /// The control channel and the relay over TCP+TLS, for hosts whose network blocks UDP:
    /// IP:PORT, or `off` [default: the --listen address, over TCP]
    #[arg(long, value_name = "ADDR|off", value_parser = parse_tcp_listen)]
    tcp_listen: Option<TcpListen>,
    /// Public addresses under which this coordinator is reached through a router's port
    /// forwarding, with the public STUN and relay ports there (JSON; written by warrend when it
    /// hosts networks on a home PC)
    #[arg(long, hide = true, value_name = "FILE")]
    published: Option<PathBuf>,
    #[command(flatten)]
    limits: limits::Limits,
    /// Serve Prometheus metrics over HTTP (GET /metrics) on this address [default when given
    /// without one: 127.0.0.1:9464]; off unless given
    #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = metrics::DEFAULT_ADDR)]
    metrics: Option<SocketAddr>,
    #[command(subcommand)]
    command: Option<Command>,
}

/// `--tcp-listen`'s value: an address, or `None` for `off`. A type of its own because clap
/// reads `Option<Option<T>>` as a flag whose value may be left out, and then panics on every
/// use of `--tcp-listen` when the parser returns an `Option`.
#[derive(Clone, Copy, Debug)]
struct TcpListen(Option<SocketAddr>);

fn parse_tcp_listen(s: &str) -> Result<TcpListen, String> {
    tcp::parse_listen(s).map(TcpListen)
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Print the coordinator's public key (creating it on first use) and exit
    Key,
    /// Run only a relay, apart from the coordinator (point the coordinator at it with
    /// --relay-at and the same secret file)
    Relay {
        /// UDP address to relay on
        #[arg(long, default_value_t = SocketAddr::from(([0, 0, 0, 0], DEFAULT_PORT + 3)))]
        listen: SocketAddr,
        /// The secret shared with the coordinator (its --relay-secret-file)
        #[arg(long, value_name = "PATH")]
        secret_file: PathBuf,
    },
}

#[cfg(unix)]
fn default_state_dir() -> PathBuf {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        return PathBuf::from("/var/lib/warren-coordinator");
    }
    directories::ProjectDirs::from("", "", "warren-coordinator")
        .map(|d| d.data_local_dir().to_path_buf())
        .unwrap_or_else(|| PathBuf::from(".warren-coordinator"))
}

/// On Windows the coordinator runs as a service, not per user: its state goes where services
/// keep theirs, `%ProgramData%\Warren\coordinator` (the key file's ACL keeps it private).
#[cfg(windows)]
fn default_state_dir() -> PathBuf {
    let program_data = std::env::var_os("ProgramData")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(r"C:\ProgramData"));
    program_data.join("Warren").join("coordinator")
}

fn main() {
    memory::return_freed_memory();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    memory::trim_in_background();
    let files = warren_proto::fdlimit::raise();
    tracing::debug!(files, "open-file limit");
    if let Err(e) = run(Args::parse()) {
        eprintln!("warren-coordinator: {e:#}");
        std::process::exit(1);
    }
}

fn run(args: Args) -> Result<()> {
    if let Some(Command::Relay {
        listen,
        secret_file,
    }) = &args.command
    {
        let (secret, _) = warren_proto::keyfile::load_or_create(secret_file)
            .with_context(|| format!("relay secret {}", secret_file.display()))?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        return runtime.block_on(relay_standalone::run(*listen, secret, args.limits.relay()));
    }
    let state_dir = args.state_dir.clone().unwrap_or_else(default_state_dir);
    let (secret, _) = warren_proto::keyfile::load_or_create(&state_dir.join(KEY_FILE))?;
    let key = public_key(&secret);
    if let Some(Command::Key) = args.command {
        println!("{key}");
        return Ok(());
    }
    let store: Box<dyn store::Storage> = match &args.database {
        Some(url) => Box::new(store::PgStore::connect(url)?),
        None => Box::new(store::SqliteStore::open(&state_dir)?),
    };
    let snapshot = store.load()?;
    tracing::info!(db = %store.describe(), "state loaded");
    let registry = Registry::from_snapshot(RegistryConfig::default(), snapshot)
        .context("the coordinator database is inconsistent; refusing to start")?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let tls = tls::server_config()?;
        let endpoint = quic::server_endpoint(args.listen, tls.clone(), &secret)?;
        let listen = endpoint.local_addr()?;
        // Bound before the key is printed: whoever waits for the key may connect at once.
        let tcp_listener = match args.tcp_listen.map_or(Some(listen), |t| t.0) {
            Some(addr) => Some(tcp::bind(addr).await?),
            None => None,
        };
        let stun_ports = match args.stun_ports {
            Some(ports) => ports,
            None => stun::default_ports(args.listen.port())?,
        };
        let seen_sources = stun::Seen::default();
        let [stun1, stun2] = stun::start(listen.ip(), stun_ports, seen_sources.clone()).await?;
        let external_relay = match (&args.relay_at, &args.relay_secret_file) {
            (Some(addr), Some(file)) => {
                let (secret, _) = warren_proto::keyfile::load_or_create(file)
                    .with_context(|| format!("relay secret {}", file.display()))?;
                Some(relay_tickets::ExternalRelay::new(*addr, secret))
            }
            _ => None,
        };
        let relay_port = match external_relay {
            Some(_) => None,
            None => relay::port_to_bind(args.relay_port, args.listen.port())?,
        };
        let relay_socket = match relay_port {
            Some(port) => Some(relay::bind(listen.ip(), port).await?),
            None => None,
        };
        // The two lines a daemon needs, on stdout for scripts.
        println!("listening on {listen}");
        println!("coordinator key {key}");
        println!(
            "hosts connect with: warren up --coordinator HOST:{} --coordinator-key {key}",
            listen.port()
        );
        println!("stun on {stun1} {stun2}");
        match &tcp_listener {
            Some(l) => println!("tcp on {}", l.local_addr()?),
            None => tracing::info!(
                "no TCP listener (--tcp-listen off): UDP-blocked hosts cannot connect"
            ),
        }
        let relay = match relay_socket {
            Some(socket) => {
                let addr = socket.local_addr()?;
                println!("relay on {addr}");
                let (handle, commands) = relay::channel(addr.port());
                Some((socket, handle, commands))
            }
            None => {
                match &external_relay {
                    Some(ext) => println!("relay at {} (standalone)", ext.addr),
                    None => tracing::info!("relay off (--relay-port 0)"),
                }
                None
            }
        };
        let mut hub = hub::Hub::with_limits(registry, store, &args.limits);
        // On PostgreSQL, other coordinators may share the database: they hear of this one's
        // changes and hosts, and it of theirs.
        let cluster = args.database.as_ref().map(|url| {
            let (publisher, events) = cluster::Publisher::new();
            hub.cluster = Some(publisher);
            (url.clone(), events)
        });
        let mut server = server::Server::new(
            secret,
            vec![stun1.port(), stun2.port()],
            relay.as_ref().map(|(_, handle, _)| handle.clone()),
            hub,
        );
        server.external_relay = external_relay;
        server.seen_sources = seen_sources;
        server.published = args.published.clone().map(published::PublishedFile);
        let server = Arc::new(server);
        if let Some((url, events)) = cluster {
            cluster::start(&url, cluster::new_id(), events, server.clone())?;
        }
        if let Some(addr) = args.metrics {
            let bound = metrics::start(addr, server.clone()).await?;
            println!("metrics on http://{bound}/metrics");
        }
        if let Some((socket, _, inbox)) = relay {
            tokio::spawn(relay::serve(
                socket,
                inbox,
                server.clone(),
                warren_coordinator_core::Relay::new(args.limits.relay(), relay::cookie_secret()?),
            ));
        }
        if let Some(listener) = tcp_listener {
            tokio::spawn(tcp::serve(listener, tls, server.clone()));
        }
        tokio::select! {
            r = server::serve(endpoint, server) => r,
            _ = tokio::signal::ctrl_c() => Ok(()),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp_listen(value: &str) -> Option<Option<SocketAddr>> {
        Args::try_parse_from(["warren-coordinator", "--tcp-listen", value])
            .unwrap()
            .tcp_listen
            .map(|t| t.0)
    }

    #[test]
    fn tcp_listen_takes_an_address_or_off() {
        assert_eq!(tcp_listen("off"), Some(None));
        assert_eq!(
            tcp_listen("127.0.0.1:8443"),
            Some(Some(SocketAddr::from(([127, 0, 0, 1], 8443))))
        );
        assert_eq!(
            Args::try_parse_from(["warren-coordinator"])
                .unwrap()
                .tcp_listen
                .map(|t| t.0),
            None
        );
        assert!(Args::try_parse_from(["warren-coordinator", "--tcp-listen", "nowhere"]).is_err());
    }
}
