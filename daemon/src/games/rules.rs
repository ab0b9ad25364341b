//! The kernel rules that copy discovery packets to the Warren interface: an nftables table of
//! the daemon's own (one per interface name) whose output chain duplicates (`dup … device`)
//! UDP broadcasts to the carried ports and multicast to the carried groups that leave by any
//! other interface. The copy goes out of the TUN into the daemon (see the core's `capture`);
//! the original still goes to the LAN. Replaced in one `nft` transaction, removed when Warren
//! is turned off or the daemon stops.

use anyhow::Result;
use warren_proto::api::games::DiscoveryPort;
use warren_proto::overlay::OVERLAY_V4;

/// The table's name: `warren_games_` and the interface name, in nftables' identifier alphabet.
pub fn table(tun: &str) -> String {
    let clean: String = tun
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    format!("warren_games_{clean}")
}

/// The whole table for `ports`, as one `nft -f` script that replaces any earlier one.
pub fn script(tun: &str, ports: &[DiscoveryPort]) -> String {
    let name = table(tun);
    // The next hop of a copy on a TUN does not matter (no link layer): the overlay's broadcast.
    let dup = format!("dup to {} device \"{tun}\"", OVERLAY_V4.broadcast());
    let not_here = format!("oifname != \"{tun}\" oifname != \"lo\"");
    let set = |ps: &mut dyn Iterator<Item = &DiscoveryPort>| -> String {
        let items: Vec<String> = ps
            .map(|p| {
                if p.port == p.last {
                    p.port.to_string()
                } else {
                    format!("{}-{}", p.port, p.last)
                }
            })
            .collect();
        format!("{{ {} }}", items.join(", "))
    };
    let mut rules = Vec::new();
    let mut broadcast = ports.iter().filter(|p| p.group.is_none()).peekable();
    if broadcast.peek().is_some() {
        rules.push(format!(
            "{not_here} udp dport {} fib daddr type broadcast counter {dup}",
            set(&mut broadcast)
        ));
    }
    let mut groups: Vec<_> = ports.iter().filter_map(|p| p.group).collect();
    groups.sort();
    groups.dedup();
    for g in groups {
        let mut of_group = ports.iter().filter(|p| p.group == Some(g));
        rules.push(format!(
            "{not_here} ip daddr {g} udp dport {} counter {dup}",
            set(&mut of_group)
        ));
    }
    let mut s = format!("table ip {name}\ndelete table ip {name}\ntable ip {name} {{\n");
    s += "  chain out {\n    type filter hook output priority 0; policy accept;\n";
    for r in rules {
        s += &format!("    {r}\n");
    }
    s += "  }\n}\n";
    s
}

/// Removes the table (nothing to do when it is not there).
pub fn remove_script(tun: &str) -> String {
    let name = table(tun);
    format!("table ip {name}\ndelete table ip {name}\n")
}

/// Runs an `nft -f -` script; the error says what nft said.
pub fn run(script: &str) -> Result<()> {
    use crate::platform::packet_filter::{apply, Failure};
    match apply(script) {
        Ok(()) => Ok(()),
        Err(Failure::Unavailable(why)) => anyhow::bail!("game discovery rules: {why}"),
        Err(Failure::Refused(words)) => {
            anyhow::bail!("nft refused the game discovery rules: {words}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(port: u16, last: u16, group: Option<&str>) -> DiscoveryPort {
        DiscoveryPort {
            port,
            last,
            group: group.map(|g| g.parse().unwrap()),
        }
    }

    #[test]
    fn one_broadcast_rule_and_one_rule_per_group() {
        let s = script(
            "warren0",
            &[
                p(27015, 27020, None),
                p(4445, 4445, Some("224.0.2.60")),
                p(137, 138, None),
                p(5353, 5353, Some("224.0.0.251")),
            ],
        );
        assert!(
            s.starts_with("table ip warren_games_warren0\ndelete table ip warren_games_warren0\n")
        );
        assert!(s.contains(
            "oifname != \"warren0\" oifname != \"lo\" udp dport { 27015-27020, 137-138 } fib \
             daddr type broadcast counter dup to 100.127.255.255 device \"warren0\""
        ));
        assert!(s.contains("ip daddr 224.0.2.60 udp dport { 4445 } counter dup"));
        assert!(s.contains("ip daddr 224.0.0.251 udp dport { 5353 } counter dup"));
        assert_eq!(s.matches("dup to").count(), 3);
    }

    #[test]
    fn names_are_identifiers_and_nothing_to_carry_is_an_empty_chain() {
        assert_eq!(table("wg-0.x"), "warren_games_wg_0_x");
        let s = script("t0", &[]);
        assert!(!s.contains("dup"));
        assert!(s.contains("hook output"));
    }
}
