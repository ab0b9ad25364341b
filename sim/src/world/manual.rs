//! Hosts without a coordinator, for tests of path probing itself: the test makes two hosts
//! peers and hands each the calls to probe the coordinator would send, when it likes, with
//! the candidates it likes (as the old two-host `PeerPaths` simulation did, now over real
//! nodes).

use super::World;
use crate::fabric::HostId;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use warren_daemon_core::peer::PeerConfig;

impl World {
    /// Makes `a` and `b` peers of each other, as static peers are: overlay address
    /// 100.64.0.(id + 1), no endpoint until probing proves one, no relay.
    pub fn introduce(&mut self, a: HostId, b: HostId) {
        for (me, other) in [(a, b), (b, a)] {
            let ip = manual_ip(other);
            self.hosts[other].manual_ip = Some(ip);
            let config = PeerConfig {
                name: self.hosts[other].name.clone(),
                public_key: self.hosts[other].key(),
                allowed_ips: vec![IpAddr::V4(ip).into()],
                endpoint: None,
                persistent_keepalive: None,
                relay: false,
            };
            self.hosts[me].node.add_peer(config).expect("a fresh peer");
        }
        self.hosts[a].manual_ip = Some(manual_ip(a));
    }

    /// The coordinator's call to probe, to `h` about `peer`, with these candidates.
    pub fn call_me_maybe(
        &mut self,
        h: HostId,
        peer: HostId,
        lan: &[SocketAddr],
        reflexive: Option<SocketAddr>,
    ) {
        let now = self.now;
        let key = self.hosts[peer].key();
        self.hosts[h]
            .node
            .handle_call_me_maybe(now, &key, lan, reflexive, None);
        let out = self.hosts[h].drain_now(now);
        self.carry(h, out);
    }

    /// The same with a port mapping of the peer's (or any second internet address) instead of
    /// LAN addresses.
    pub fn call_me_maybe_mapped(
        &mut self,
        h: HostId,
        peer: HostId,
        reflexive: Option<SocketAddr>,
        mapped: Option<SocketAddr>,
    ) {
        let now = self.now;
        let key = self.hosts[peer].key();
        self.hosts[h]
            .node
            .handle_call_me_maybe(now, &key, &[], reflexive, mapped);
        let out = self.hosts[h].drain_now(now);
        self.carry(h, out);
    }
}

fn manual_ip(h: HostId) -> Ipv4Addr {
    Ipv4Addr::new(100, 64, 0, h as u8 + 1)
}
