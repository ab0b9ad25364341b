//! The NAT lab: an "internet" (a bridge in its own namespace, addresses from TEST-NET-3
//! 203.0.113.0/24 that exist only inside the lab), the coordinator on it, and sites behind
//! nftables NAT routers, each with `warrend` hosts driven by the `warren` CLI.
//!
//! ```text
//!                    ns <lab>-inet: bridge br0 203.0.113.254/24 (gateway; forwarding off)
//!        ┌───────────────┬───────────┴───────────┬─────────────────────────┐
//!   ns <lab>-coord   ns <lab>-sK-h1         ns <lab>-sK-r (router)     ...
//!   203.0.113.1      203.0.113.(10+K)       wan 203.0.113.(10+K), NAT
//!   coordinator      public host            lan 192.168.K.1/24
//!                                                 │
//!                                           ns <lab>-sK-h1 192.168.K.2 (and -h2 .3)
//! ```
//!
//! Every namespace, process and file belongs to a guard ([`Lab`], [`site::Site`],
//! [`node::Host`], [`node::Coordinator`]) that removes it on drop, also when a test panics; a
//! failing test first prints the daemons' status and logs and the coordinator's log, and keeps
//! its directory. Names carry the test process's pid and a per-test tag, so tests run in
//! parallel; namespaces left by a killed test process are removed by the next run.
//!
//! [`pair`] is the smaller harness of the data-plane tests: two namespaces joined by a veth
//! pair, one `warrend` in each with the other as a static peer. [`pg`] is a real PostgreSQL.
//! [`bins`] finds the workspace's binaries and refuses stale ones.
//!
//! Every test starts with [`needs_root!`]: as another user it says what it skipped and passes,
//! so `cargo test --workspace` runs anywhere and `sudo .ci/run` runs everything.

pub mod bins;
pub mod cluster;
pub mod cmd;
pub mod discovery_apps;
pub mod matrix;
pub mod mesh;
pub mod netns;
pub mod node;
pub mod pair;
pub mod pg;
pub mod rdp;
pub mod site;
pub mod traffic;
pub mod upnp;
pub mod wine;

use cmd::run_ok;
use netns::{cleanup_stale, Netns, NS_PREFIX};
use node::{Coordinator, Host};
use site::{Site, SiteKind};
use std::fs;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::PathBuf;

/// The "internet" namespace's own address on the bridge: the default gateway of every router
/// and public host. Its forwarding is off, so traffic to addresses nobody in the lab owns
/// (a peer's private LAN address, say) is dropped there and never leaves the lab.
pub const GATEWAY: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 254);
pub const COORDINATOR_IP: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 1);
pub const COORDINATOR_PORT: u16 = 7443;
/// Every daemon uses Warren's default UDP port, as real installations do (two hosts behind one
/// NAT then compete for the same public port).
pub const WG_PORT: u16 = 41820;
pub const TUN_NAME: &str = "warren0";
/// WAN addresses of routers that run miniupnpd (outside every reserved range, unlike
/// 203.0.113.0/24, which miniupnpd refuses); they exist only in the lab: the /24 is on-link on
/// the internet bridge for every namespace plugged into it, and routed nowhere else.
pub const UPNP_WAN_NET: Ipv4Addr = Ipv4Addr::new(198, 20, 0, 0);
/// Sites are numbered 1..=MAX_SITES in a lab (public address 203.0.113.(10+K), LAN 192.168.K/24).
pub const MAX_SITES: u8 = 200;

/// Whether this process may build namespaces (it runs as root).
pub fn is_root() -> bool {
    // SAFETY: no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Returns from the calling test, saying so, unless it runs as root.
#[macro_export]
macro_rules! needs_root {
    () => {
        if !$crate::is_root() {
            eprintln!(
                "skipped {} (line {}): it needs root for network namespaces, veth, nftables and \
                 TUN; `sudo .ci/run` runs it",
                module_path!(),
                line!()
            );
            return;
        }
    };
}

/// Panics unless running as root (namespaces, veth, nftables and TUN need it).
pub fn require_root() {
    if !is_root() {
        panic!(
            "the NAT lab needs root (network namespaces, veth, nftables, TUN). Run e.g. \
             `cargo build --workspace && sudo -E cargo test -p warren-lab --test nat_lab`"
        );
    }
}

pub fn coordinator_bin() -> PathBuf {
    bins::bin("warren-coordinator")
}

/// One of the workspace's binaries (`warrend`, `warren`, …), built from the current sources.
pub fn sibling_bin(name: &str) -> PathBuf {
    bins::bin(name)
}

pub fn nft_bin() -> &'static str {
    const NFT: &str = "/usr/sbin/nft";
    if !std::path::Path::new(NFT).exists() {
        panic!("{NFT} not found: install nftables (packaging/install-deps.sh does)");
    }
    NFT
}

/// One lab: the internet bridge, the coordinator, and a counter for the sites added to it.
pub struct Lab {
    pub tag: String,
    pub dir: PathBuf,
    pub inet_ns: String,
    pub coordinator: Coordinator,
    next_site: u8,
    namespaces: Vec<Netns>,
}

impl Lab {
    /// Builds the internet and starts the coordinator on it. `tag` must be unique among the
    /// tests of this binary (it names namespaces and the temp dir).
    pub fn start(tag: &str) -> Lab {
        Self::start_with(tag, Vec::new())
    }

    /// [`Lab::start`], the coordinator started with `coordinator_args` too.
    pub fn start_with(tag: &str, coordinator_args: Vec<String>) -> Lab {
        Self::build(tag, coordinator_args, false)
    }

    /// [`Lab::start`] with the Windows build of the coordinator, run under Wine in its
    /// namespace (a Wine prefix of the lab's own: see [`wine`]); the hosts stay Linux ones.
    pub fn start_with_windows_coordinator(tag: &str) -> Lab {
        Self::build(tag, Vec::new(), true)
    }

    fn build(tag: &str, coordinator_args: Vec<String>, windows: bool) -> Lab {
        require_root();
        // Fail before building anything if a binary is missing.
        let _ = (sibling_bin("warrend"), sibling_bin("warren"), nft_bin());
        if windows {
            wine::require_wine();
            let _ = bins::windows_bin("warren-coordinator");
        }
        cleanup_stale();
        let pid = std::process::id();
        let dir = std::env::temp_dir().join(format!("warren-natlab-{pid}-{tag}"));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("create the lab's temp dir");
        let ns = |role: &str| format!("{NS_PREFIX}{pid}-{tag}-{role}");
        let inet_ns = ns("inet");
        let coord_ns = ns("coord");
        let mut lab = Lab {
            tag: tag.to_string(),
            coordinator: Coordinator::new(&coord_ns, &dir),
            dir,
            inet_ns: inet_ns.clone(),
            next_site: 1,
            namespaces: Vec::new(),
        };
        // From here on, Drop removes whatever exists so far.
        lab.namespaces.push(Netns::create(&inet_ns));
        let gw = format!("{GATEWAY}/24");
        run_ok(
            "ip",
            &["-n", &inet_ns, "link", "add", "br0", "type", "bridge"],
        );
        run_ok("ip", &["-n", &inet_ns, "addr", "add", &gw, "dev", "br0"]);
        run_ok("ip", &["-n", &inet_ns, "link", "set", "br0", "up"]);
        lab.namespaces.push(Netns::create(&coord_ns));
        lab.plug("coord", &coord_ns, "eth0", COORDINATOR_IP);
        lab.coordinator.extra_args = coordinator_args;
        if windows {
            let prefix = wine::WinePrefix::copy_to(&lab.dir.join("wine"));
            lab.coordinator.wine = Some(prefix);
        }
        lab.coordinator.start();
        eprintln!(
            "[{tag}] lab up: internet {inet_ns}, coordinator {} key {}, dir {}",
            lab.coordinator.address(),
            lab.coordinator.key,
            lab.dir.display()
        );
        lab
    }

    /// Name of a namespace of this lab.
    pub fn ns_name(&self, role: &str) -> String {
        format!("{NS_PREFIX}{}-{}-{role}", std::process::id(), self.tag)
    }

    /// Connects namespace `ns` to the internet bridge with a veth (`port` on the bridge side,
    /// `dev` inside `ns`) and gives it `ip`/24 with a default route via [`GATEWAY`]. Both /24s
    /// of the bridge (203.0.113.0 and [`UPNP_WAN_NET`]) are on-link, whichever `ip` is in.
    pub(crate) fn plug(&self, port: &str, ns: &str, dev: &str, ip: Ipv4Addr) {
        let inet = &self.inet_ns;
        run_ok(
            "ip",
            &[
                "link", "add", port, "netns", inet, "type", "veth", "peer", "name", dev, "netns",
                ns,
            ],
        );
        run_ok("ip", &["-n", inet, "link", "set", port, "master", "br0"]);
        run_ok("ip", &["-n", inet, "link", "set", port, "up"]);
        let addr = format!("{ip}/24");
        run_ok("ip", &["-n", ns, "addr", "add", &addr, "dev", dev]);
        run_ok("ip", &["-n", ns, "link", "set", dev, "up"]);
        let other = if ip.octets()[..3] == UPNP_WAN_NET.octets()[..3] {
            format!("{}/24", Ipv4Addr::new(203, 0, 113, 0))
        } else {
            format!("{UPNP_WAN_NET}/24")
        };
        run_ok("ip", &["-n", ns, "route", "add", &other, "dev", dev]);
        let gw = GATEWAY.to_string();
        run_ok("ip", &["-n", ns, "route", "add", "default", "via", &gw]);
    }

    /// `HOST:PORT` to give `warren up --coordinator`.
    pub fn coordinator_addr(&self) -> SocketAddrV4 {
        SocketAddrV4::new(COORDINATOR_IP, COORDINATOR_PORT)
    }

    /// Adds a site of `kind` with `hosts` hosts (only NAT sites may have more than one), their
    /// daemons not started yet; `label` goes into the hosts' names (`fc-LABEL`).
    pub fn add_site(&mut self, kind: SiteKind, hosts: usize, label: &str) -> (Site, Vec<Host>) {
        let index = self.next_site;
        assert!(
            index <= MAX_SITES,
            "lab {} ran out of site numbers (max {MAX_SITES})",
            self.tag
        );
        self.next_site += 1;
        Site::build(self, kind, index, hosts, label, 0)
    }

    /// [`Lab::add_site`] with `bare` more hosts on the site's LAN that run no Warren at all
    /// (a printer, a PC without Warren): plain namespaces, in [`Site::lan_hosts`].
    pub fn add_site_with_lan_hosts(
        &mut self,
        kind: SiteKind,
        hosts: usize,
        label: &str,
        bare: usize,
    ) -> (Site, Vec<Host>) {
        let index = self.next_site;
        assert!(
            index <= MAX_SITES,
            "lab {} ran out of site numbers",
            self.tag
        );
        self.next_site += 1;
        Site::build(self, kind, index, hosts, label, bare)
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let failed = std::thread::panicking();
        self.coordinator.stop();
        if failed {
            self.coordinator.dump_log();
        }
        self.namespaces.clear();
        if failed || std::env::var_os("WARREN_LAB_KEEP").is_some() {
            eprintln!("[{}] kept {}", self.tag, self.dir.display());
        } else {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// A TCP transfer of `bytes` from namespace `from` to `dst` in namespace `to`, at full speed;
/// panics (naming `what`) unless every byte arrived intact. Returns the MB/s it ran at.
#[allow(dead_code)] // not every test binary that includes the lab transfers
pub fn transfer_intact(
    from: &str,
    to: &str,
    dst: std::net::SocketAddrV4,
    bytes: u64,
    seed: u64,
    what: &str,
) -> f64 {
    let xfer = traffic::TcpTransfer::start(from, to, dst, bytes, None, seed);
    let r = xfer.finish(std::time::Duration::from_secs(60));
    assert_eq!(
        (r.received.bytes, r.received.hash),
        (r.sent.bytes, r.sent.hash),
        "{what}: the transfer arrived damaged"
    );
    r.mbytes_per_sec()
}
