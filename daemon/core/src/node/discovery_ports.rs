//! Per-port counters of discovery traffic (broadcast and multicast UDP), for `warren games`:
//! what this host sent to peers, what peers sent here, and what the rate limit dropped.

use std::collections::BTreeMap;

/// Ports counted at most: a program that sprays every port cannot grow this without bound.
const MAX_PORTS: usize = 1024;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PortCounters {
    pub sent: u64,
    pub received: u64,
    pub dropped: u64,
}

#[derive(Debug, Default)]
pub struct DiscoveryCounters {
    by_port: BTreeMap<u16, PortCounters>,
}

impl DiscoveryCounters {
    fn entry(&mut self, port: u16) -> Option<&mut PortCounters> {
        if self.by_port.len() >= MAX_PORTS && !self.by_port.contains_key(&port) {
            return None;
        }
        Some(self.by_port.entry(port).or_default())
    }

    pub fn sent(&mut self, port: u16) {
        if let Some(c) = self.entry(port) {
            c.sent += 1;
        }
    }

    pub fn received(&mut self, port: u16) {
        if let Some(c) = self.entry(port) {
            c.received += 1;
        }
    }

    pub fn dropped(&mut self, port: u16, n: u64) {
        if let Some(c) = self.entry(port) {
            c.dropped += n;
        }
    }

    /// The sums over ports `first..=last`.
    pub fn range(&self, first: u16, last: u16) -> PortCounters {
        self.by_port
            .range(first..=last)
            .fold(PortCounters::default(), |a, (_, c)| PortCounters {
                sent: a.sent + c.sent,
                received: a.received + c.received,
                dropped: a.dropped + c.dropped,
            })
    }
}

/// The UDP destination port of an IPv4 or IPv6 packet without extension headers, if UDP.
pub fn udp_port(packet: &[u8]) -> Option<u16> {
    const UDP: u8 = 17;
    let (proto, off) = match packet.first()? >> 4 {
        4 => (*packet.get(9)?, usize::from(packet[0] & 0x0f) * 4),
        6 => (*packet.get(6)?, 40),
        _ => return None,
    };
    if proto != UDP {
        return None;
    }
    Some(u16::from_be_bytes([
        *packet.get(off + 2)?,
        *packet.get(off + 3)?,
    ]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ip::testpkt::ipv4_udp;

    #[test]
    fn counts_sum_over_ranges_and_stay_bounded() {
        let mut c = DiscoveryCounters::default();
        c.sent(27015);
        c.sent(27016);
        c.received(27020);
        c.dropped(27015, 3);
        c.sent(4445);
        let r = c.range(27015, 27020);
        assert_eq!((r.sent, r.received, r.dropped), (2, 1, 3));
        assert_eq!(c.range(4445, 4445).sent, 1);
        for p in 0..5000u16 {
            c.sent(p);
        }
        assert_eq!(c.by_port.len(), MAX_PORTS);
    }

    #[test]
    fn udp_ports_of_packets() {
        let mut p = ipv4_udp([1, 1, 1, 1].into(), [2, 2, 2, 2].into(), b"x");
        p[22..24].copy_from_slice(&4445u16.to_be_bytes());
        assert_eq!(udp_port(&p), Some(4445));
        p[9] = 6;
        assert_eq!(udp_port(&p), None);
        assert_eq!(udp_port(&[0x45]), None);
    }
}
