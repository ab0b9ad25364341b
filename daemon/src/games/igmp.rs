//! Multicast groups joined on this host, from the kernel's table (`/proc/net/igmp`), and their
//! mirror on the Warren interface. A game joins its group with INADDR_ANY, which the kernel
//! takes as the default route's interface: a copy from a peer arriving on the TUN would be
//! refused there. Joining the same groups on the TUN (a socket of the daemon's per group)
//! makes the kernel accept them; the game's socket then gets them as it would from its LAN.

use socket2::{Domain, InterfaceIndexOrAddress, Protocol, Socket, Type};
use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

/// Groups joined on interfaces other than `skip` (the TUN, whose groups are our mirrors) that
/// are worth mirroring: not the link's own control groups (all-hosts, IGMP, routers), which
/// the TUN joins or refuses by itself.
pub fn joined_elsewhere(table: &str, skip: &str) -> BTreeSet<Ipv4Addr> {
    let mut out = BTreeSet::new();
    let mut device = String::new();
    for line in table.lines().skip(1) {
        if !line.starts_with('\t') {
            // "2\teth0      :     2      V3"
            device = line
                .split('\t')
                .nth(1)
                .and_then(|d| d.split(':').next())
                .map(|d| d.trim().to_string())
                .unwrap_or_default();
            continue;
        }
        if device == skip || device == "lo" {
            continue;
        }
        let Some(hex) = line.split_whitespace().next() else {
            continue;
        };
        let Ok(v) = u32::from_str_radix(hex, 16) else {
            continue;
        };
        // The kernel prints the group's network-order bytes as a host-order number.
        let group = Ipv4Addr::from(v.to_ne_bytes());
        if worth_mirroring(group) {
            out.insert(group);
        }
    }
    out
}

fn worth_mirroring(g: Ipv4Addr) -> bool {
    let o = g.octets();
    let local_control = o[0] == 224 && o[1] == 0 && o[2] == 0;
    // mDNS and LLMNR live in the local block but are discovery, not link control.
    g.is_multicast() && (!local_control || matches!(o[3], 251 | 252))
}

/// The daemon's memberships on the TUN, one socket per group (a socket holds only 20).
#[derive(Default)]
pub struct Mirror {
    joined: BTreeMap<Ipv4Addr, Socket>,
    /// Groups the kernel would not join here: said once, tried again quietly.
    refused: BTreeSet<Ipv4Addr>,
}

impl Mirror {
    /// Joins `want` on interface `ifindex` and leaves what is no longer wanted; errors are
    /// logged and retried at the next call.
    pub fn sync(&mut self, want: &BTreeSet<Ipv4Addr>, ifindex: u32) {
        self.joined.retain(|g, _| want.contains(g));
        for g in want {
            if self.joined.contains_key(g) {
                continue;
            }
            match join(*g, ifindex) {
                Ok(s) => {
                    tracing::debug!(group = %g, "mirroring a multicast group on the Warren interface");
                    self.joined.insert(*g, s);
                }
                Err(e) if self.refused.insert(*g) => {
                    tracing::warn!(group = %g, "cannot join on the Warren interface: {e}")
                }
                Err(e) => tracing::debug!(group = %g, "cannot join on the Warren interface: {e}"),
            }
        }
    }

    pub fn groups(&self) -> Vec<Ipv4Addr> {
        self.joined.keys().copied().collect()
    }

    pub fn clear(&mut self) {
        self.joined.clear();
    }
}

fn join(group: Ipv4Addr, ifindex: u32) -> std::io::Result<Socket> {
    let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    s.join_multicast_v4_n(&group, &InterfaceIndexOrAddress::Index(ifindex))?;
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &str = "Idx\tDevice    : Count Querier\tGroup    Users Timer\tReporter\n\
1\tlo        :     1      V3\n\
\t\t\t\t010000E0     1 0:00000000\t\t0\n\
2\teth0      :     4      V3\n\
\t\t\t\t3C0200E0     1 0:00000000\t\t0\n\
\t\t\t\tFB0000E0     1 0:00000000\t\t0\n\
\t\t\t\tFAFFFFEF     1 0:00000000\t\t0\n\
\t\t\t\t010000E0     1 0:00000000\t\t0\n\
5\twarren0   :     2      V3\n\
\t\t\t\t0A0B0CEF     1 0:00000000\t\t0\n";

    #[test]
    fn groups_of_other_interfaces_without_link_control() {
        let g = joined_elsewhere(TABLE, "warren0");
        let want: BTreeSet<Ipv4Addr> = ["224.0.2.60", "224.0.0.251", "239.255.255.250"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        assert_eq!(g, want);
        assert!(joined_elsewhere("", "warren0").is_empty());
        assert!(joined_elsewhere("junk\n\t\t\tZZZZ\n", "warren0").is_empty());
    }
}
