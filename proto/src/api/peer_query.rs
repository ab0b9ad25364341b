//! Which peer a person means: `warren ping alice`, `warren ping 100.64.3.7`, `warren ping kX3f`.

use super::PeerStatus;
use std::net::IpAddr;

/// Key prefixes shorter than this match too much to be meant.
pub const MIN_KEY_PREFIX: usize = 4;

/// Finds the one peer `query` names: a name (case-insensitive), an overlay IP, or a prefix of
/// its public key (base64, at least [`MIN_KEY_PREFIX`] characters). A name or IP wins over a
/// key prefix; a query matching several peers is an error that lists them.
pub fn find_peer<'a>(peers: &'a [PeerStatus], query: &str) -> Result<&'a PeerStatus, String> {
    let q = query.trim();
    if q.is_empty() {
        return Err("no peer given: name a peer, its overlay IP or a key prefix".into());
    }
    if let Ok(ip) = q.parse::<IpAddr>() {
        return peers
            .iter()
            .find(|p| p.overlay_ip == Some(ip) || owns(p, ip))
            .ok_or_else(|| format!("no peer has overlay address {ip}{}", known(peers)));
    }
    let by_name: Vec<_> = peers
        .iter()
        .filter(|p| p.name.eq_ignore_ascii_case(q))
        .collect();
    match by_name.as_slice() {
        [one] => return Ok(one),
        [] => {}
        many => {
            return Err(format!(
                "{} peers are called {q}: use an overlay IP or key prefix ({})",
                many.len(),
                list(many)
            ))
        }
    }
    if q.len() >= MIN_KEY_PREFIX {
        let by_key: Vec<_> = peers
            .iter()
            .filter(|p| p.public_key.to_string().starts_with(q))
            .collect();
        match by_key.as_slice() {
            [one] => return Ok(one),
            [] => {}
            many => {
                return Err(format!(
                    "key prefix {q} matches {} peers: give more of it ({})",
                    many.len(),
                    list(many)
                ))
            }
        }
    }
    Err(format!("no peer called {q}{}", known(peers)))
}

fn owns(p: &PeerStatus, ip: IpAddr) -> bool {
    p.allowed_ips.iter().any(|n| {
        n.parse::<ipnet::IpNet>()
            .is_ok_and(|net| net.prefix_len() == net.max_prefix_len() && net.contains(&ip))
    })
}

fn list(peers: &[&PeerStatus]) -> String {
    peers
        .iter()
        .map(|p| {
            let key = p.public_key.to_string();
            format!(
                "{} {} {}…",
                p.name,
                p.overlay_ip.map(|i| i.to_string()).unwrap_or_default(),
                &key[..8]
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn known(peers: &[PeerStatus]) -> String {
    if peers.is_empty() {
        "; this host has no peers yet".into()
    } else {
        let names: Vec<_> = peers.iter().map(|p| p.name.as_str()).collect();
        format!("; peers are: {}", names.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::fixtures::PeerBuilder;

    fn peer(name: &str, ip: &str, key_byte: u8) -> PeerStatus {
        PeerBuilder::new(name)
            .key(key_byte)
            .ip(ip)
            .allowed(&format!("{ip}/32"))
            .direct()
            .build()
    }

    #[test]
    fn by_name_ip_and_key_prefix() {
        // Keys [1;32] and [2;32] are "AQEB…" and "AgIC…" in base64.
        let peers = vec![peer("Alice", "100.64.0.2", 1), peer("bob", "100.64.0.3", 2)];
        assert_eq!(find_peer(&peers, "alice").unwrap().name, "Alice");
        assert_eq!(find_peer(&peers, "100.64.0.3").unwrap().name, "bob");
        assert_eq!(find_peer(&peers, "AgIC").unwrap().name, "bob");
        assert_eq!(find_peer(&peers, " bob ").unwrap().name, "bob");
    }

    #[test]
    fn misses_and_ambiguity_say_what_exists() {
        let mut peers = vec![peer("alice", "100.64.0.2", 1), peer("bob", "100.64.0.3", 2)];
        let e = find_peer(&peers, "carol").unwrap_err();
        assert!(
            e.contains("no peer called carol") && e.contains("alice, bob"),
            "{e}"
        );
        let e = find_peer(&peers, "100.64.0.9").unwrap_err();
        assert!(e.contains("100.64.0.9"), "{e}");
        // Too short to be a key prefix: treated as a missing name.
        assert!(find_peer(&peers, "AgI").is_err());
        assert!(find_peer(&[], "x").unwrap_err().contains("no peers yet"));
        peers.push(peer("alice", "100.64.0.4", 3));
        let e = find_peer(&peers, "alice").unwrap_err();
        assert!(e.contains("2 peers are called alice"), "{e}");
        peers.push(peer("dave", "100.64.0.5", 1));
        let e = find_peer(&peers, "AQEB").unwrap_err();
        assert!(e.contains("matches 2 peers"), "{e}");
        assert!(find_peer(&peers, "").is_err());
    }
}
