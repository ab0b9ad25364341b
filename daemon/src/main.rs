//! `warrend`: the per-host Warren daemon.

mod api_server;
mod config;
mod control;
mod dataplane;
mod dns;
#[cfg(test)]
mod docs_check;
mod games;
mod host;
mod host_name;
mod identity;
mod listening;
mod operators;
mod paths;
mod platform;
mod portmap;
mod relay_offer;
mod side;
mod subnet_routes;
mod tcp_path;
mod tun;
mod udp;
mod wake;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use warren_daemon_core::node::Node;
use warren_proto::api::{OffloadStatus, SelfStatus, DEFAULT_SOCKET};
use warren_proto::overlay;

#[derive(Parser, Debug)]
#[command(
    name = "warrend",
    version,
    about = "Warren daemon: the host's end of the overlay"
)]
struct Args {
    /// Where the node identity and state live [default: /var/lib/warren as root, the per-user
    /// data dir otherwise]
    #[arg(long, global = true)]
    state_dir: Option<PathBuf>,
    /// Local API socket
    #[arg(long, default_value = DEFAULT_SOCKET)]
    socket: PathBuf,
    /// Members of this group may use the local API (besides root and operator users); a group
    /// that does not exist stops the daemon, unless it is the default
    #[arg(long, default_value = api_server::DEFAULT_GROUP)]
    socket_group: String,
    /// Windows: a user who may use the local API besides Administrators (the installer passes
    /// the installing user); repeatable
    #[arg(long = "api-user", value_name = "USER")]
    api_users: Vec<String>,
    /// UDP port for all traffic (WireGuard, probes); 0 picks a free one [default: config's
    /// listen_port, else 41820]
    #[arg(long)]
    port: Option<u16>,
    /// TUN interface name
    #[arg(long, default_value = paths::DEFAULT_TUN)]
    tun: String,
    /// Config file (TOML) with the interface and static peers [default: STATE_DIR/config.toml
    /// if it exists]
    #[arg(long)]
    config: Option<PathBuf>,
    /// Overlay MTU [default: config's mtu, else 1420]
    #[arg(long)]
    mtu: Option<u16>,
    /// Do not ask the kernel for TUN segmentation offload (for comparison and old kernels)
    #[arg(long)]
    no_offload: bool,
    /// UDP port of the DNS server for NAME.warren on the overlay address; 0 turns it off
    #[arg(long, default_value_t = 53)]
    dns_port: u16,
    /// Register the DNS server with this `resolvectl` instead of the system's (tests)
    #[arg(long, hide = true)]
    resolvectl: Option<PathBuf>,
    /// Run under the Windows service manager, logging to STATE_DIR\warrend.log (the installer
    /// registers the Warren service so)
    #[cfg(windows)]
    #[arg(long)]
    service: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Print this node's public key (creating the identity on first use) and exit
    PublicKey,
    /// Operator users: who may use the local API without being in the socket's group (edits
    /// STATE_DIR/operators.json; a running daemon sees the change at once)
    Operator {
        #[command(subcommand)]
        action: OperatorAction,
    },
}

#[derive(Subcommand, Debug)]
enum OperatorAction {
    /// Let USER (a name or uid) use Warren
    Add { user: String },
    /// Stop letting USER use Warren
    Remove { user: String },
    /// The operator users
    List,
}

fn main() {
    let args = Args::parse();
    let filter =
        || tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    #[cfg(windows)]
    if args.service {
        // No console: the log goes to a file beside the state.
        let dir = args
            .state_dir
            .clone()
            .unwrap_or_else(paths::default_state_dir);
        let _ = std::fs::create_dir_all(&dir);
        if let Ok(log) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("warrend.log"))
        {
            tracing_subscriber::fmt()
                .with_env_filter(filter())
                .with_writer(std::sync::Mutex::new(log))
                .with_ansi(false)
                .init();
        }
        if let Err(e) = platform::shutdown::run_as_service(|| run(Args::parse())) {
            eprintln!("warrend: {e:#}");
            std::process::exit(1);
        }
        return;
    }
    tracing_subscriber::fmt()
        .with_env_filter(filter())
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    if let Err(e) = run(args) {
        eprintln!("warrend: {e:#}");
        std::process::exit(1);
    }
}

fn run(args: Args) -> Result<()> {
    let state_dir = args
        .state_dir
        .clone()
        .unwrap_or_else(paths::default_state_dir);
    if let Some(Command::Operator { action }) = &args.command {
        return operator_command(&state_dir, action);
    }
    let secret = identity::load_or_create(&state_dir)?;
    // Birthday runs toward several peers at once hold 256 side sockets each; the usual soft
    // limit of 1 024 descriptors would cut them short.
    let fds = warren_proto::fdlimit::raise();
    tracing::debug!(fds, "open-file limit");
    let mut seed = [0u8; 16];
    getrandom::getrandom(&mut seed).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    let mut node = Node::new(secret, seed);
    // Disco messages carry this clock so that peers can refuse replays; it only has to move
    // forward, not be right.
    let unix_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    node.set_wall_clock(std::time::Instant::now(), unix_ms);
    if let Some(Command::PublicKey) = args.command {
        println!("{}", node.public_key());
        return Ok(());
    }
    let config = match &args.config {
        Some(path) => config::Config::load(path)?,
        None => {
            let default = state_dir.join(paths::CONFIG_FILE);
            if default.exists() {
                config::Config::load(&default)?
            } else {
                config::Config::default()
            }
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(serve(args, config, node, secret, state_dir))
}

async fn serve(
    args: Args,
    config: config::Config,
    mut node: Node,
    secret: [u8; 32],
    state_dir: PathBuf,
) -> Result<()> {
    for entry in &config.peers {
        node.add_peer(entry.to_peer_config())
            .context("config lists a peer that cannot be added")?;
    }
    let key = node.public_key();
    let v4 = config
        .interface
        .address
        .unwrap_or_else(|| overlay::derive_v4(&key));
    let v6 = config
        .interface
        .address6
        .unwrap_or_else(|| overlay::derive_v6(&key));
    // Many hosts turn IPv6 off; the overlay then carries IPv4 only.
    let v6 = match tun::ipv6_off() {
        Some(why) => {
            tracing::info!("IPv6 is off on this host ({why}): the overlay carries IPv4 only");
            None
        }
        None => Some(v6),
    };
    let mtu = args
        .mtu
        .or(config.interface.mtu)
        .unwrap_or(config::DEFAULT_MTU);
    let port = args
        .port
        .or(config.interface.listen_port)
        .unwrap_or(paths::DEFAULT_PORT);

    // The API socket first: a bad --socket or --socket-group stops us before any device exists.
    let who = api_server::ApiAccess {
        group: args.socket_group.clone(),
        users: args.api_users.clone(),
    };
    let listener = api_server::bind(&args.socket, &who)?;
    let _socket_guard = api_server::SocketGuard(args.socket.clone());
    let udp = udp::Udp::bind(port)?;
    let tun_dev = tun::create(&tun::TunSettings {
        name: args.tun.clone(),
        v4,
        v6,
        mtu,
        offload: !args.no_offload,
    })?;
    let (tun_vnet_hdr, tun_udp_gso) = tun::offload_in_use(&tun_dev);
    let offload = OffloadStatus {
        tun_vnet_hdr,
        tun_udp_gso,
        udp_gso_segments: udp.state.max_gso_segments(),
        udp_gro_segments: udp.state.gro_segments(),
    };
    let name = config
        .interface
        .name
        .clone()
        .unwrap_or_else(paths::hostname);
    let self_status = SelfStatus {
        address_moves: 0,
        relay_for_others: false,
        relayed_bytes: 0,
        advertised_routes: vec![],
        forwarding: vec![],
        lans: vec![],
        name: name.clone(),
        overlay_ip: v4.into(),
        overlay_ip6: v6.map(Into::into),
        public_key: key,
        listen_port: udp.local_port(),
        tun: args.tun.clone(),
        mtu,
        reflexive: None,
        nat: warren_proto::control::msg::NatKind::Unknown,
        mapped: None,
    };
    tracing::info!(
        public_key = %key, overlay = %v4, overlay6 = ?v6, port = self_status.listen_port,
        tun = %args.tun, peers = config.peers.len(), ?offload,
        "warrend ready"
    );

    // A host turned off with `warren down` stays off from its first packet on.
    match control::TunnelState::load(&state_dir) {
        Ok(t) => node.set_up(t.up),
        Err(e) => tracing::error!("{e:#}; starting up"),
    }
    let dp = Arc::new(dataplane::Dataplane {
        node: Mutex::new(node),
        udp,
        tun: tun_dev,
        mtu,
        overlay_v4: Mutex::new(v4),
        side: Default::default(),
        tcp: Default::default(),
    });
    let up = dp.node().is_up();
    let portmap = {
        let dp = dp.clone();
        portmap::spawn(
            portmap::Transport::Udp,
            self_status.listen_port,
            up,
            Box::new(move |m| dp.node().set_port_mapping(m.map(|m| m.external))),
        )
    };
    // The TCP listen port (tcp_path) has the UDP port's number: the router is asked for the
    // same external port first, as for UDP, and whatever it gives is advertised separately.
    let portmap_tcp = portmap::spawn(
        portmap::Transport::Tcp,
        self_status.listen_port,
        up,
        Box::new(|_| {}),
    );
    let hosting = host::Hosting::start(state_dir.clone(), args.tun.clone());
    let (commands, command_rx) = tokio::sync::mpsc::channel(16);
    let view = Arc::new(Mutex::new(control::ControlView::default()));
    let (changed_tx, changed_rx) = tokio::sync::watch::channel(0u64);
    let api_state_dir = state_dir.clone();
    let relay_offer = Arc::new(relay_offer::RelayOffer::load(&state_dir));
    let subnets = Arc::new(subnet_routes::SubnetRoutes::load(&state_dir, &args.tun));
    let control_ctx = control::session::ControlContext {
        node_secret: secret,
        node_key: key,
        dataplane: dp.clone(),
        state_dir,
        tun: args.tun.clone(),
        udp_port: self_status.listen_port,
        view: view.clone(),
        changed: changed_tx,
        portmap: portmap.clone(),
        relay_offer: relay_offer.clone(),
        subnets: subnets.clone(),
        portmap_tcp: portmap_tcp.clone(),
    };
    let games = games::Games::start(
        dp.clone(),
        view.clone(),
        api_state_dir.clone(),
        args.tun.clone(),
        config.games.parsed()?,
    );
    let api = Arc::new(api_server::ApiState {
        dataplane: dp.clone(),
        self_status,
        offload,
        control: control::ControlHandle {
            commands,
            view: view.clone(),
            changed: changed_rx,
        },
        names: host_name::Names::load(&api_state_dir, name),
        access: api_server::access::Access::new(api_state_dir.clone(), &args.socket_group),
        portmap: portmap.clone(),
        hosting: hosting.clone(),
        games: games.clone(),
        relay_offer: relay_offer.clone(),
        subnets: subnets.clone(),
    });
    tokio::spawn(relay_offer::run(relay_offer, hosting.clone(), dp.clone()));
    tokio::spawn(subnet_routes::run(
        subnets.clone(),
        dp.clone(),
        view.clone(),
        key,
    ));
    tokio::spawn(control::run(control_ctx, command_rx));
    tcp_path::spawn(dp.clone(), api.self_status.listen_port);
    let (failed_tx, mut failed) = tokio::sync::mpsc::unbounded_channel();
    dataplane::spawn(dp, failed_tx)?;
    if args.dns_port != 0 {
        tokio::spawn(dns::serve(
            api.clone(),
            args.tun.clone(),
            args.dns_port,
            args.resolvectl.clone(),
        ));
    }
    let mut api_task = tokio::spawn(api_server::serve(listener, api));

    tokio::select! {
        why = platform::shutdown::requested() => tracing::info!("{}; stopping", why?),
        Some(e) = failed.recv() => return Err(e.context("data plane stopped")),
        done = &mut api_task => {
            return Err(match done {
                Ok(Ok(())) => anyhow::anyhow!("the local API ended unexpectedly"),
                Ok(Err(e)) => e.context("local API stopped"),
                Err(e) => anyhow::anyhow!("the local API panicked: {e}"),
            });
        }
    }
    // The router would otherwise keep forwarding the ports here until the leases run out.
    tokio::join!(portmap.shutdown(), portmap_tcp.shutdown());
    hosting.shutdown().await;
    subnets.shutdown();
    // No discovery rules or memberships of ours stay in the kernel.
    tokio::task::block_in_place(|| games.shutdown());
    Ok(())
}

/// `warrend operator …`: the package's postinst makes the installing user an operator so.
fn operator_command(state_dir: &std::path::Path, action: &OperatorAction) -> Result<()> {
    match action {
        OperatorAction::Add { user } => println!("{}", operators::set(state_dir, user, true)?),
        OperatorAction::Remove { user } => {
            println!("{}", operators::set(state_dir, user, false)?)
        }
        OperatorAction::List => {
            for o in operators::Operators::load(state_dir)?.operators {
                println!("{} (uid {})", o.user, o.uid);
            }
        }
    }
    Ok(())
}
