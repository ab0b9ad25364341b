//! A router that offers port mapping: miniupnpd (UPnP-IGD, NAT-PMP and PCP, nftables backend)
//! in the router's namespace, with its own nftables table.
//!
//! miniupnpd refuses to serve when its WAN address is in a reserved range, and the lab's
//! internet (203.0.113.0/24) is one; such a router gets its WAN address from
//! [`super::UPNP_WAN_NET`] instead, which exists only inside the lab's namespaces.

use super::cmd::{run_quiet, wait_deadline};
use super::nft_bin;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = "/usr/sbin/miniupnpd";
/// miniupnpd's table: its chains are created here (miniupnpd only fills them), in the inet
/// family it uses.
pub const TABLE: &str = "miniupnpd";

/// The chains miniupnpd adds its rules to, hooked in before the lab's own NAT and filter.
pub fn ruleset() -> String {
    format!(
        "table inet {TABLE} {{
  chain forward {{
    type filter hook forward priority filter - 1; policy accept;
    jump miniupnpd
  }}
  chain miniupnpd {{
  }}
  chain prerouting {{
    type nat hook prerouting priority dstnat - 1; policy accept;
    jump prerouting_miniupnpd
  }}
  chain postrouting {{
    type nat hook postrouting priority srcnat - 1; policy accept;
    jump postrouting_miniupnpd
  }}
  chain prerouting_miniupnpd {{
  }}
  chain postrouting_miniupnpd {{
  }}
}}
"
    )
}

/// A running miniupnpd, killed and its files removed on drop (also when a test panics; its
/// log is printed first then).
pub struct Miniupnpd {
    child: Child,
    files: Vec<PathBuf>,
    log: PathBuf,
}

impl Miniupnpd {
    /// Starts miniupnpd in `router_ns`, serving the LAN `lan_net` (CIDR) on interface `lan`
    /// and mapping on `wan`.
    pub fn start(router_ns: &str, lan_net: &str, dir: &Path) -> Miniupnpd {
        if !Path::new(BIN).exists() {
            panic!("{BIN} not found: install miniupnpd-nftables (packaging/install-deps.sh does)");
        }
        let conf = dir.join("miniupnpd.conf");
        let leases = dir.join("miniupnpd.leases");
        let pid = dir.join("miniupnpd.pid");
        let log = dir.join("miniupnpd.log");
        fs::write(
            &conf,
            format!(
                "ext_ifname=wan
listening_ip=lan
http_port=0
enable_upnp=yes
enable_natpmp=yes
secure_mode=yes
system_uptime=yes
uuid=3d3cec3a-8cf0-11e0-98ee-001a6bd2d07b
lease_file={}
upnp_table_name={TABLE}
upnp_nat_table_name={TABLE}
upnp_forward_chain=miniupnpd
upnp_nat_chain=prerouting_miniupnpd
upnp_nat_postrouting_chain=postrouting_miniupnpd
min_lifetime=60
max_lifetime=86400
allow 1024-65535 {lan_net} 1024-65535
deny 0-65535 0.0.0.0/0 0-65535
",
                leases.display()
            ),
        )
        .expect("write miniupnpd.conf");
        let out = fs::File::create(&log).expect("create miniupnpd.log");
        let child = Command::new("ip")
            .args(["netns", "exec", router_ns, BIN, "-d", "-f"])
            .arg(&conf)
            .arg("-P")
            .arg(&pid)
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("log fd"))
            .stderr(out)
            .spawn()
            .expect("start miniupnpd");
        let m = Miniupnpd {
            child,
            files: vec![conf, leases, pid],
            log,
        };
        // Ready once it listens for NAT-PMP/PCP (its UPnP socket opens just before).
        let t0 = Instant::now();
        while !m.log_text().contains("Listening for NAT-PMP/PCP") {
            if t0.elapsed() > Duration::from_secs(10) {
                panic!("miniupnpd did not start in {router_ns}:\n{}", m.log_text());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        m
    }

    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// miniupnpd's forwarding rules in `router_ns` (empty when it maps nothing).
pub fn redirects(router_ns: &str) -> String {
    run_quiet(
        "ip",
        &[
            "netns",
            "exec",
            router_ns,
            nft_bin(),
            "list",
            "chain",
            "inet",
            TABLE,
            "prerouting_miniupnpd",
        ],
    )
    .map(|o| {
        o.stdout
            .lines()
            .filter(|l| l.contains("dnat"))
            .collect::<Vec<_>>()
            .join("\n")
    })
    .unwrap_or_else(|e| e)
}

impl Drop for Miniupnpd {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("----- miniupnpd log -----\n{}", self.log_text());
        }
        // SIGTERM lets it remove its rules; SIGKILL if it does not go.
        // SAFETY: plain kill(2) on our own child's pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        if wait_deadline(&mut self.child, Duration::from_secs(3)).is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        for f in self.files.iter().chain([&self.log]) {
            let _ = fs::remove_file(f);
        }
    }
}

/// Whether miniupnpd in `router_ns` forwards TCP `port` (it matches the protocol byte itself:
/// `@nh,72,8 0x6` is TCP).
pub fn forwards_tcp(router_ns: &str, port: u16) -> bool {
    redirects(router_ns).lines().any(|l| {
        (l.contains("tcp") || l.contains(",8 0x6 ")) && l.contains(&format!("dport {port}"))
    })
}
