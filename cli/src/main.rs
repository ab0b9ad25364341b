//! `warren`: the command-line client of the daemon's local API.

mod client;

use anyhow::Result;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use warren_proto::api::{PathKind, Request, Response, Status, DEFAULT_SOCKET};
use warren_proto::key::NodeKey;

#[derive(Parser, Debug)]
#[command(
    name = "warren",
    version,
    about = "Control the Warren overlay on this host"
)]
struct Cli {
    /// The daemon's local API socket
    #[arg(long, global = true, default_value = DEFAULT_SOCKET)]
    socket: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// This host and its peers: addresses, paths, traffic
    Status {
        /// Machine-readable output
        #[arg(long)]
        json: bool,
    },
    /// Client and daemon versions
    Version {
        #[arg(long)]
        json: bool,
    },
    /// Connect this host to a coordinator (remembered across restarts)
    Up {
        /// The coordinator's address, HOST:PORT
        #[arg(long)]
        coordinator: String,
        /// The coordinator's public key, as `warren-coordinator key` prints it
        #[arg(long)]
        coordinator_key: NodeKey,
        /// This host's name in its networks [default: the host name]
        #[arg(long)]
        name: Option<String>,
    },
    /// Create a network and join it
    Create {
        network: String,
        #[arg(long)]
        password: String,
    },
    /// Join a network
    Join {
        network: String,
        #[arg(long)]
        password: String,
    },
    /// Leave a network
    Leave { network: String },
}

fn main() {
    let cli = Cli::parse();
    if let Err(e) = run(cli) {
        eprintln!("warren: {e:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Status { json } => {
            let status = match client::call(&cli.socket, Request::Status)? {
                Response::Status(s) => *s,
                other => anyhow::bail!("unexpected answer from the daemon: {other:?}"),
            };
            if json {
                println!("{}", serde_json::to_string_pretty(&status)?);
            } else {
                print!("{}", render_status(&status));
            }
        }
        Command::Version { json } => {
            let client = env!("CARGO_PKG_VERSION");
            let daemon = match client::call(&cli.socket, Request::Version) {
                Ok(Response::Version { daemon }) => Some(daemon),
                _ => None,
            };
            if json {
                println!(
                    "{}",
                    serde_json::json!({ "client": client, "daemon": daemon })
                );
            } else {
                println!("warren {client}");
                match daemon {
                    Some(d) => println!("warrend {d}"),
                    None => println!("warrend not reachable on {}", cli.socket.display()),
                }
            }
        }
        Command::Up {
            coordinator,
            coordinator_key,
            name,
        } => done(client::call(
            &cli.socket,
            Request::Up {
                coordinator,
                coordinator_key,
                name,
            },
        )?),
        Command::Create { network, password } => done(client::call(
            &cli.socket,
            Request::CreateNetwork {
                name: network,
                password,
            },
        )?),
        Command::Join { network, password } => done(client::call(
            &cli.socket,
            Request::JoinNetwork {
                name: network,
                password,
            },
        )?),
        Command::Leave { network } => done(client::call(
            &cli.socket,
            Request::LeaveNetwork { name: network },
        )?),
    }
    Ok(())
}

fn done(response: Response) {
    if let Response::Done { message } = response {
        println!("{message}");
    }
}

fn render_status(s: &Status) -> String {
    let mut out = format!(
        "{} {} {} (port {}, {})\n",
        s.self_.name,
        s.self_.overlay_ip,
        s.self_
            .overlay_ip6
            .map(|ip| ip.to_string())
            .unwrap_or_default(),
        s.self_.listen_port,
        s.self_.tun
    );
    if let Some(c) = &s.coordinator {
        let state = if c.connected {
            "connected".to_string()
        } else {
            format!(
                "not connected ({})",
                c.last_error.as_deref().unwrap_or("connecting")
            )
        };
        out.push_str(&format!(
            "coordinator {} {state}; networks: {}\n",
            c.address,
            if c.networks.is_empty() {
                "none".to_string()
            } else {
                c.networks.join(", ")
            }
        ));
    }
    if s.peers.is_empty() {
        out.push_str("no peers\n");
        return out;
    }
    out.push_str(&format!(
        "{:<16} {:<16} {:<8} {:<8} {:<24} {:>7} {:>12} {:>12}\n",
        "PEER", "OVERLAY IP", "ONLINE", "PATH", "ENDPOINT", "RTT", "RX", "TX"
    ));
    for p in &s.peers {
        let path = match p.path {
            PathKind::Direct => "direct",
            PathKind::Lan => "LAN",
            PathKind::Relay => "relay",
            PathKind::None => "-",
        };
        out.push_str(&format!(
            "{:<16} {:<16} {:<8} {:<8} {:<24} {:>7} {:>12} {:>12}\n",
            p.name,
            p.overlay_ip.map(|i| i.to_string()).unwrap_or("-".into()),
            if p.online { "yes" } else { "no" },
            path,
            p.endpoint.map(|e| e.to_string()).unwrap_or("-".into()),
            p.rtt_ms.map(|r| format!("{r}ms")).unwrap_or("-".into()),
            human_bytes(p.rx_bytes),
            human_bytes(p.tx_bytes),
        ));
    }
    out
}

fn human_bytes(b: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_are_human() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(3 << 30), "3.0 GiB");
    }
}
