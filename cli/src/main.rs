//! `warren`: the command-line client of the daemon's local API.

mod apps;
mod check;
mod client;
#[cfg(test)]
mod docs_check;
mod games;
mod operator;
mod password;
mod relay;
mod render;
mod routes;
mod wake;

use anyhow::{bail, Result};
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use warren_proto::api::{
    find_peer, ErrorCode, ReachState, Reachability, Request, Response, Status, DEFAULT_SOCKET,
};
use warren_proto::invite::Invite;
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
    /// This host and its peers, by network: addresses, paths, traffic
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
    /// Turn Warren on: connect to a coordinator (remembered), accept an invite code, or
    /// reconnect to the remembered coordinator
    Up {
        /// An invite code (`warren invite` makes them): connect and join its network
        invite: Option<String>,
        /// The coordinator's address, HOST:PORT; repeat it for coordinators sharing one
        /// database (the first is tried first, the others when it does not answer)
        #[arg(long, requires = "coordinator_key", conflicts_with = "invite")]
        coordinator: Vec<String>,
        /// The coordinator's public key, as `warren-coordinator key` prints it
        #[arg(long, requires = "coordinator")]
        coordinator_key: Option<NodeKey>,
        /// This host's name in its networks [default: the host name]
        #[arg(long)]
        name: Option<String>,
    },
    /// Turn Warren off (identity, coordinator and networks are kept)
    Down,
    /// Leave every network and forget the coordinator (identity is kept)
    Logout {
        /// Forget the coordinator on this host even if it cannot be told (it then keeps this
        /// host in its networks)
        #[arg(long)]
        force: bool,
    },
    /// Create a network and join it
    Create {
        network: String,
        /// The network's password [asked for when not given]
        #[arg(long)]
        password: Option<String>,
    },
    /// Join a network by name and password, or with an invite code
    Join {
        /// A network name, or an invite code
        network: String,
        /// The network's password [asked for when not given; not needed with an invite]
        #[arg(long)]
        password: Option<String>,
        /// This host's name, when an invite connects it to a new coordinator
        #[arg(long)]
        name: Option<String>,
    },
    /// Host a network from this PC: it becomes the network's coordinator and relay, so no
    /// server is needed; friends join with a code from `warren invite NETWORK`. Says whether
    /// friends on the internet can reach this PC (the router is asked to forward the ports)
    Host {
        network: String,
        /// Also let friends join by the network's name and this password [default: invites
        /// only]
        #[arg(long)]
        password: Option<String>,
    },
    /// Make an invite code for a network (it carries the coordinator and a join secret), list
    /// the network's invites, or revoke one
    Invite {
        network: String,
        /// How long the code works: 1h, 1d, 7d (any of 30m, 24h, …; at most 30 days), or
        /// never (until revoked)
        #[arg(long, default_value = "24h", value_parser = parse_expiry)]
        expires: Expiry,
        /// List the network's unexpired invites instead
        #[arg(long, conflicts_with_all = ["revoke", "expires"])]
        list: bool,
        /// Revoke the invite with this id (as --list shows it, or its first digits)
        #[arg(long, value_name = "ID", conflicts_with = "expires")]
        revoke: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Owner: new members of a network wait for your approval (`warren requests`)
    Lock { network: String },
    /// Owner: the password or an invite lets new members in again
    Unlock { network: String },
    /// Owner: the hosts waiting to join your locked networks
    Requests {
        #[arg(long)]
        json: bool,
    },
    /// Owner: let a waiting host in (WHO: its name or a key prefix)
    Approve { network: String, who: String },
    /// Owner: turn a waiting host away (WHO: its name or a key prefix)
    Deny { network: String, who: String },
    /// Owner: take a member out of a network (WHO: its name or a key prefix)
    Remove {
        network: String,
        who: String,
        /// Also ban its key: it cannot join again, and the invites it made stop working
        #[arg(long)]
        ban: bool,
    },
    /// Owner: give a network a new name
    Rename { network: String, new_name: String },
    /// Owner: change a network's password (members stay)
    Password {
        network: String,
        /// The new password [asked for when not given]
        #[arg(long)]
        password: Option<String>,
    },
    /// Owner: delete a network for every member
    Delete { network: String },
    /// Leave a network
    Leave { network: String },
    /// The networks this host is in, with their members
    Networks {
        #[arg(long)]
        json: bool,
    },
    /// This host's overlay addresses, or a peer's (by name, overlay IP or key prefix)
    Ip {
        peer: Option<String>,
        /// Only the IPv4 address
        #[arg(short = '4', conflicts_with = "v6")]
        v4: bool,
        /// Only the IPv6 address
        #[arg(short = '6')]
        v6: bool,
        #[arg(long)]
        json: bool,
    },
    /// Ping a peer over Warren: each reply says which path it took and the round-trip time
    Ping {
        /// A name, overlay IP or key prefix
        peer: String,
        /// How many pings
        #[arg(short = 'c', long, default_value_t = 4)]
        count: u32,
        #[arg(long)]
        json: bool,
    },
    /// Is a program on a peer reachable through Warren? Says "reachable", "nothing
    /// listening on PEER" or "PEER's firewall drops it"
    Check {
        /// A name, overlay IP or key prefix; or the address of a computer on a peer's network
        /// reached through a subnet route
        peer: String,
        /// PORT, PORT/tcp or PORT/udp (TCP if not said)
        #[arg(required_unless_present = "app", conflicts_with = "app")]
        port: Option<String>,
        /// A preset's ports instead: rdp, minecraft, counter-strike, steam, call-of-duty, …
        /// (a preset's optional port that is not open is reported, not failed)
        #[arg(long)]
        app: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// LAN games: the discovery ports and groups carried to peers (a game's "find LAN games"
    /// broadcasts), their counters and the switch per network; add or remove a port, switch a
    /// network on or off
    #[command(args_conflicts_with_subcommands = true)]
    Games {
        #[arg(long)]
        json: bool,
        #[command(subcommand)]
        action: Option<games::GamesCommand>,
    },
    /// Wake a sleeping PC (Wake-on-LAN) through a member awake on the same LAN: the member
    /// sends the wake-up packet there
    Wake {
        /// The sleeping PC's MAC address, e.g. aa:bb:cc:dd:ee:ff
        mac: String,
        /// The member on the PC's LAN that sends the packet: a name, overlay IP or key prefix
        #[arg(long)]
        via: String,
    },
    /// Check this host's connectivity: UDP, public address, NAT kind, port mapping, RTTs
    Netcheck {
        #[arg(long)]
        json: bool,
    },
    /// Show the name others see, or set it (kept across restarts; a connected host reconnects
    /// under it)
    Name { name: Option<String> },
    /// Show whether this PC relays for friends in its networks who cannot connect to each
    /// other directly, or switch it on or off (kept across restarts; on by default while
    /// this PC hosts a network). Friends use it when they can reach this PC: a public address
    /// or a port the router forwards
    Relay {
        #[arg(value_enum)]
        switch: Option<relay::Switch>,
    },
    /// Change this host's settings
    Set {
        /// LAN prefixes this host routes for its networks, comma-separated (e.g.
        /// 192.168.1.0/24); "" for none. Each is used once its network's owner approves it
        /// (`warren routes approve`). This host then forwards and masquerades from the overlay
        /// into them (see the remote desktop guide, docs/guides/remote-desktop.md)
        #[arg(long, value_name = "PREFIX[,PREFIX…]")]
        advertise_routes: Option<String>,
    },
    /// The subnet routes of your networks (who advertises what, approved or not); as a
    /// network's owner, approve or withdraw them
    #[command(args_conflicts_with_subcommands = true)]
    Routes {
        #[arg(long)]
        json: bool,
        #[command(subcommand)]
        action: Option<routes::RoutesCommand>,
    },
    /// Who may use Warren on this computer besides root and group warren: operator users
    Operator {
        #[command(subcommand)]
        action: operator::OperatorCommand,
    },
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell) to stdout; the
    /// packages install them
    #[command(hide = true)]
    Completions { shell: clap_complete::Shell },
}

fn main() {
    let cli = Cli::parse();
    if let Err(e) = run(cli) {
        eprintln!("warren: {e:#}");
        std::process::exit(1);
    }
}

fn status(socket: &std::path::Path) -> Result<Status> {
    match client::call(socket, Request::Status)? {
        Response::Status(s) => Ok(*s),
        other => bail!("unexpected answer from the daemon: {other:?}"),
    }
}

fn print_json(v: &impl serde::Serialize) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

fn run(cli: Cli) -> Result<()> {
    if let Command::Completions { shell } = cli.command {
        use clap::CommandFactory;
        clap_complete::generate(shell, &mut Cli::command(), "warren", &mut std::io::stdout());
        return Ok(());
    }
    let socket = cli.socket.as_path();
    let call = |r: Request| client::call(socket, r);
    match cli.command {
        Command::Status { json } => {
            let s = status(socket)?;
            if json {
                print_json(&s)?;
            } else {
                print!("{}", render::status(&s));
            }
        }
        Command::Version { json } => {
            let client = env!("CARGO_PKG_VERSION");
            let daemon = match call(Request::Version) {
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
                    None => println!("warrend not reachable on {}", socket.display()),
                }
            }
        }
        Command::Up {
            invite: Some(invite),
            name,
            ..
        } => done(call(Request::JoinInvite { invite, name })?),
        Command::Up {
            invite: None,
            coordinator,
            coordinator_key,
            name,
        } => done(call(up_request(coordinator, coordinator_key, name))?),
        Command::Down => done(call(Request::Down)?),
        Command::Name { name } => operator::name(socket, name)?,
        Command::Relay { switch } => relay::relay(socket, switch)?,
        Command::Set { advertise_routes } => match advertise_routes {
            Some(list) => routes::advertise(socket, &list)?,
            None => bail!("nothing to set: try `warren set --advertise-routes 192.168.1.0/24`"),
        },
        Command::Routes { json, action } => routes::routes(socket, action, json)?,
        Command::Operator { action } => operator::operator(socket, action)?,
        Command::Logout { force } => done(call(Request::Logout { force })?),
        Command::Create { network, password } => {
            let password = password::get(password, &network, true)?;
            done(call(Request::CreateNetwork {
                name: network,
                password,
            })?)
        }
        Command::Join {
            network,
            password,
            name,
        } => {
            if Invite::looks_like(&network) {
                done(call(Request::JoinInvite {
                    invite: network,
                    name,
                })?)
            } else {
                let password = password::get(password, &network, false)?;
                done(call(Request::JoinNetwork {
                    name: network,
                    password,
                })?)
            }
        }
        Command::Invite {
            network,
            list: true,
            json,
            ..
        } => {
            let r = call(Request::ListInvites {
                network: network.clone(),
            })?;
            let Response::Invites(list) = r else {
                bail!("unexpected answer from the daemon: {r:?}");
            };
            if json {
                print_json(&list)?;
            } else {
                print!("{}", render::invites(&network, &list, unix_now()));
            }
        }
        Command::Invite {
            network,
            revoke: Some(invite),
            ..
        } => done(call(Request::RevokeInvite { network, invite })?),
        Command::Invite {
            network,
            expires,
            json,
            ..
        } => {
            let r = call(Request::CreateInvite {
                network,
                ttl_secs: match expires {
                    Expiry::Never => 0,
                    Expiry::After(d) => d.as_secs().max(1),
                },
            })?;
            let Response::Invite {
                code,
                network,
                expires,
            } = r
            else {
                bail!("unexpected answer from the daemon: {r:?}");
            };
            if json {
                // `expires` null: until revoked.
                let expires = (expires != u64::MAX).then_some(expires);
                print_json(&serde_json::json!({
                    "code": code, "network": network, "expires": expires
                }))?;
            } else if expires == u64::MAX {
                println!("{code}");
                eprintln!(
                    "invite for {network}, valid until revoked (`warren invite {network} --list` \
                     shows it, `--revoke ID` ends it): share it; the other host runs \
                     `warren up <code>`"
                );
            } else {
                let at = UNIX_EPOCH
                    .checked_add(Duration::from_secs(expires))
                    .unwrap_or(UNIX_EPOCH);
                let left = at
                    .duration_since(SystemTime::now())
                    .map(|d| Duration::from_secs(d.as_secs()))
                    .unwrap_or_default();
                println!("{code}");
                eprintln!(
                    "invite for {network}, valid until {} UTC (for {}): share it; the other \
                     host runs `warren up <code>`",
                    humantime::format_rfc3339_seconds(at)
                        .to_string()
                        .trim_end_matches('Z')
                        .replace('T', " "),
                    humantime::format_duration(left)
                );
            }
        }
        Command::Host { network, password } => {
            done(call(Request::Host {
                network: network.clone(),
                password,
            })?);
            if let Some(r) = settled_reachability(socket)? {
                println!("{}", r.message);
            }
            println!("invite friends: warren invite {network}");
        }
        Command::Leave { network } => done(call(Request::LeaveNetwork { name: network })?),
        Command::Lock { network } => done(call(Request::LockNetwork {
            network,
            locked: true,
        })?),
        Command::Unlock { network } => done(call(Request::LockNetwork {
            network,
            locked: false,
        })?),
        Command::Requests { json } => {
            let r = call(Request::JoinRequests)?;
            let Response::JoinRequests(list) = r else {
                bail!("unexpected answer from the daemon: {r:?}");
            };
            if json {
                print_json(&list)?;
            } else {
                print!("{}", render::requests(&list, unix_now()));
            }
        }
        Command::Approve { network, who } => done(call(Request::AnswerRequest {
            network,
            who,
            approve: true,
        })?),
        Command::Deny { network, who } => done(call(Request::AnswerRequest {
            network,
            who,
            approve: false,
        })?),
        Command::Remove { network, who, ban } => {
            done(call(Request::RemoveMember { network, who, ban })?)
        }
        Command::Rename { network, new_name } => {
            done(call(Request::RenameNetwork { network, new_name })?)
        }
        Command::Password { network, password } => {
            let password = password::get(password, &network, true)?;
            done(call(Request::SetPassword { network, password })?)
        }
        Command::Delete { network } => done(call(Request::DeleteNetwork { network })?),
        Command::Networks { json } => {
            let s = status(socket)?;
            if json {
                print_json(&render::networks_json(&s))?;
            } else {
                print!("{}", render::networks(&s));
            }
        }
        Command::Ip { peer, v4, v6, json } => {
            let s = status(socket)?;
            let (name, ip4, ip6) = match &peer {
                None => (
                    s.self_.name.clone(),
                    Some(s.self_.overlay_ip),
                    s.self_.overlay_ip6,
                ),
                Some(q) => {
                    let p = find_peer(&s.peers, q).map_err(anyhow::Error::msg)?;
                    let v6 = p
                        .allowed_ips
                        .iter()
                        .filter_map(|n| n.parse::<ipnet::IpNet>().ok())
                        .find(|n| n.addr().is_ipv6() && n.prefix_len() == 128)
                        .map(|n| n.addr());
                    (p.name.clone(), p.overlay_ip.filter(|i| i.is_ipv4()), v6)
                }
            };
            if json {
                print_json(&serde_json::json!({ "name": name, "ipv4": ip4, "ipv6": ip6 }))?;
            } else {
                let mut printed = false;
                for ip in [
                    (!v6).then_some(ip4).flatten(),
                    (!v4).then_some(ip6).flatten(),
                ]
                .into_iter()
                .flatten()
                {
                    println!("{ip}");
                    printed = true;
                }
                if !printed {
                    bail!("{name} has no such overlay address");
                }
            }
        }
        Command::Ping { peer, count, json } => ping(socket, &peer, count, json)?,
        Command::Check {
            peer,
            port,
            app,
            json,
        } => check::check(socket, &peer, port.as_deref(), app.as_deref(), json)?,
        Command::Games { json, action } => games::games(socket, action, json)?,
        Command::Wake { mac, via } => wake::wake(socket, &mac, &via)?,
        Command::Netcheck { json } => {
            let r = call(Request::Netcheck)?;
            let Response::Netcheck(report) = r else {
                bail!("unexpected answer from the daemon: {r:?}");
            };
            if json {
                print_json(&report)?;
            } else {
                print!("{}", render::netcheck(&report));
            }
        }
        Command::Completions { .. } => {} // handled above, needs no daemon
    }
    Ok(())
}

/// What the router said about the hosted coordinator's ports, once it said it (or after
/// [`REACH_WAIT`], whatever it is by then).
fn settled_reachability(socket: &std::path::Path) -> Result<Option<Reachability>> {
    let t0 = std::time::Instant::now();
    loop {
        let Some(h) = status(socket)?.hosting else {
            return Ok(None);
        };
        if h.reachability.state != ReachState::Checking || t0.elapsed() > REACH_WAIT {
            return Ok(Some(h.reachability));
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// PCP, NAT-PMP and UPnP-IGD together take up to about 6 s on a router that has none.
const REACH_WAIT: Duration = Duration::from_secs(15);

/// How long an invite works.
#[derive(Debug, Clone, Copy)]
enum Expiry {
    After(Duration),
    Never,
}

fn parse_expiry(s: &str) -> Result<Expiry, String> {
    if s.eq_ignore_ascii_case("never") {
        return Ok(Expiry::Never);
    }
    humantime::parse_duration(s)
        .map(Expiry::After)
        .map_err(|e| format!("{e} (e.g. 1h, 1d, 7d, or never)"))
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn done(response: Response) {
    if let Response::Done { message } = response {
        println!("{message}");
    }
}

/// `count` pings a second apart; fails when none was answered.
fn ping(socket: &std::path::Path, peer: &str, count: u32, json: bool) -> Result<()> {
    let mut replies = Vec::new();
    let mut errors = Vec::new();
    for i in 0..count.max(1) {
        if i > 0 {
            std::thread::sleep(Duration::from_secs(1));
        }
        match client::call(socket, Request::Ping { peer: peer.into() }) {
            Ok(Response::Pong(r)) => {
                if !json {
                    println!("{}", render::pong(&r));
                }
                replies.push(r);
            }
            Ok(other) => bail!("unexpected answer from the daemon: {other:?}"),
            Err(e) => {
                let msg = format!("{e:#}");
                // A peer that cannot be named or a daemon that is gone will not get better.
                let lost = client::code(&e) == Some(ErrorCode::TimedOut);
                if replies.is_empty() && errors.is_empty() && !lost {
                    return Err(e);
                }
                if !json {
                    println!("{msg}");
                }
                errors.push(msg);
            }
        }
    }
    if json {
        print_json(&serde_json::json!({
            "peer": peer,
            "sent": count.max(1),
            "received": replies.len(),
            "replies": replies,
            "errors": errors,
        }))?;
    }
    if replies.is_empty() {
        bail!(
            "no pong from {peer} to any of {} ping{}",
            count.max(1),
            if count > 1 { "s" } else { "" }
        );
    }
    Ok(())
}

/// `warren up` without an invite: the first `--coordinator` is its address, the rest its
/// alternates.
fn up_request(
    mut coordinator: Vec<String>,
    coordinator_key: Option<NodeKey>,
    name: Option<String>,
) -> Request {
    let first = (!coordinator.is_empty()).then(|| coordinator.remove(0));
    Request::Up {
        coordinator: first,
        coordinator_key,
        name,
        alternates: coordinator,
    }
}

#[cfg(test)]
mod up_tests {
    use super::*;

    fn up(args: &[&str]) -> Request {
        let cli = Cli::try_parse_from(["warren", "up"].iter().chain(args)).unwrap();
        match cli.command {
            Command::Up {
                coordinator,
                coordinator_key,
                name,
                ..
            } => up_request(coordinator, coordinator_key, name),
            _ => unreachable!("parsed as up"),
        }
    }

    #[test]
    fn several_coordinator_addresses_make_one_address_and_alternates() {
        let key = NodeKey([5; 32]).to_string();
        let Request::Up {
            coordinator,
            alternates,
            coordinator_key,
            ..
        } = up(&[
            "--coordinator",
            "a.example:7443",
            "--coordinator",
            "b.example:7443",
            "--coordinator",
            "c.example:7443",
            "--coordinator-key",
            &key,
        ])
        else {
            panic!("not an up request");
        };
        assert_eq!(coordinator.as_deref(), Some("a.example:7443"));
        assert_eq!(alternates, ["b.example:7443", "c.example:7443"]);
        assert_eq!(coordinator_key, Some(NodeKey([5; 32])));
        let one = up(&["--coordinator", "a.example:7443", "--coordinator-key", &key]);
        assert!(matches!(one, Request::Up { alternates, .. } if alternates.is_empty()));
        assert!(matches!(
            up(&[]),
            Request::Up {
                coordinator: None,
                ..
            }
        ));
    }
}
