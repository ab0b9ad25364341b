//! `warren-loadgen`: many simulated daemons in one process, each on its own loopback source
//! address, against a real `warren-coordinator` (one it starts itself, or one already
//! running). Prints a table of what happened; exits 0 only if every host joined and saw all
//! its peers (and came back after a restart, when asked).

mod coordinator;
mod host;
mod link;
mod report;
mod scenario;
mod small_udp;

use anyhow::{bail, Result};
use clap::Parser;
use host::JoinMode;
use scenario::{Options, Target, TransportChoice};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use warren_proto::key::NodeKey;

#[derive(Parser, Debug)]
#[command(
    name = "warren-loadgen",
    about = "Simulated hosts against a warren-coordinator: joins, peer updates, restarts"
)]
struct Args {
    /// Hosts to simulate
    #[arg(long, default_value_t = 150)]
    hosts: usize,
    /// Networks they are spread over (evenly; each network's first host creates it)
    #[arg(long, default_value_t = 1)]
    networks: usize,
    /// How the other hosts join: with the password, or with an invite the first host makes
    #[arg(long, value_enum, default_value_t = JoinArg::Invite)]
    join: JoinArg,
    #[arg(long, value_enum, default_value_t = TransportChoice::Quic)]
    transport: TransportChoice,
    /// A running coordinator (needs --key); without it, one is started (see --coordinator-bin)
    #[arg(long, value_name = "ADDR", requires = "key")]
    coordinator: Option<SocketAddr>,
    /// The running coordinator's key (`warren-coordinator key`)
    #[arg(long, value_name = "KEY")]
    key: Option<String>,
    /// The running coordinator's process id, to report its memory
    #[arg(long, value_name = "PID", requires = "coordinator")]
    coordinator_pid: Option<u32>,
    /// The coordinator binary to start [default: warren-coordinator next to this program]
    #[arg(long, value_name = "PATH")]
    coordinator_bin: Option<PathBuf>,
    /// Seconds for the joins and for every host to see its peers
    #[arg(long, default_value_t = 120)]
    time_limit: u64,
    /// Seconds for the endpoint change to reach every peer
    #[arg(long, default_value_t = 15)]
    change_limit: u64,
    /// Then kill -9 the coordinator, start it again on the same state and port, and measure
    /// the reconnection (only with a coordinator this run starts)
    #[arg(long)]
    restart: bool,
    /// Seconds for every host to be back after the restart
    #[arg(long, default_value_t = 120)]
    restart_limit: u64,
    /// Seconds over which the hosts start (0: all at once)
    #[arg(long, default_value_t = 0.0)]
    ramp: f64,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum JoinArg {
    Password,
    Invite,
}

fn main() {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    match runtime.block_on(run(args)) {
        Ok(true) => {}
        Ok(false) => std::process::exit(2),
        Err(e) => {
            eprintln!("warren-loadgen: {e:#}");
            std::process::exit(1);
        }
    }
}

async fn run(args: Args) -> Result<bool> {
    let mut notes = Vec::new();
    let limit = warren_proto::fdlimit::raise();
    if args.hosts as u64 > warren_proto::fdlimit::max_hosts(limit) {
        bail!(
            "{} hosts need about {} open files, but the limit is {limit} (hard limit): raise it \
             (ulimit -Hn, or /etc/security/limits.conf) or run fewer hosts",
            args.hosts,
            args.hosts as u64 + warren_proto::fdlimit::RESERVE
        );
    }
    notes.push(format!(
        "open-file limit {limit}: enough for up to {} hosts",
        warren_proto::fdlimit::max_hosts(limit)
    ));
    if args.restart && args.coordinator.is_some() {
        bail!("--restart needs a coordinator this run starts: leave out --coordinator");
    }
    let target = match (args.coordinator, &args.key) {
        (Some(addr), Some(key)) => Target::External {
            addr,
            key: key
                .parse::<NodeKey>()
                .map_err(|e| anyhow::anyhow!("--key: {e}"))?,
            pid: args.coordinator_pid,
        },
        _ => {
            let bin = match args.coordinator_bin {
                Some(b) => b,
                None => std::env::current_exe()?
                    .parent()
                    .expect("a program lives in a directory")
                    .join("warren-coordinator"),
            };
            let spawned = tokio::task::block_in_place(|| coordinator::Spawned::start(&bin))?;
            notes.push(format!(
                "coordinator {} (pid {})",
                bin.display(),
                spawned.pid()
            ));
            Target::Spawned(spawned)
        }
    };
    let opts = Options {
        hosts: args.hosts,
        networks: args.networks,
        join: match args.join {
            JoinArg::Password => JoinMode::Password,
            JoinArg::Invite => JoinMode::Invite,
        },
        transport: args.transport,
        time_limit: Duration::from_secs(args.time_limit),
        change_limit: Duration::from_secs(args.change_limit),
        restart: args.restart,
        restart_limit: Duration::from_secs(args.restart_limit),
        ramp: Duration::from_secs_f64(args.ramp.max(0.0)),
    };
    let outcome = scenario::run(&opts, target, notes).await?;
    println!("{}", outcome.table());
    Ok(outcome.complete())
}
