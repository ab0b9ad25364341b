//! Discovery packets that games send the ordinary way. A game looking for LAN servers sends to
//! 255.255.255.255, its LAN's directed broadcast or a multicast group from a socket bound to no
//! interface, so the kernel sends it out of the physical LAN, not the Warren interface. The
//! shell has the kernel copy such packets (for a list of game ports) to the TUN as well
//! (nftables `dup`); they arrive with the LAN address as source. Rewritten here to come from
//! this host's overlay address — so replies and joins come back through the overlay — and, for
//! a broadcast, to go to 255.255.255.255 (a peer's kernel has no use for our LAN's directed
//! broadcast address), they then fan out to peers like any broadcast read from the TUN.

use std::net::Ipv4Addr;
use warren_proto::overlay::OVERLAY_V4;

const UDP: u8 = 17;

/// What [`rewrite`] made of a packet read from the TUN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Capture {
    /// Not a copied discovery packet: handle it as it is.
    NotCaptured,
    /// Rewritten in place; its UDP destination port.
    Rewritten { port: u16 },
    /// A copied packet that cannot be carried (a fragment, or malformed).
    Refused,
}

/// Rewrites `packet` in place when it is a discovery packet the kernel copied from another
/// interface: IPv4 UDP from an address outside the overlay to a multicast group, to
/// 255.255.255.255 or to one of `lan_broadcasts` (the directed broadcast addresses of this
/// host's other interfaces). `own` is this host's overlay address.
pub fn rewrite(packet: &mut [u8], own: Ipv4Addr, lan_broadcasts: &[Ipv4Addr]) -> Capture {
    if packet.len() < 20 || packet[0] >> 4 != 4 {
        return Capture::NotCaptured;
    }
    let src = Ipv4Addr::new(packet[12], packet[13], packet[14], packet[15]);
    // Programs on the Warren interface send from the overlay address: theirs go as they are.
    let dst = Ipv4Addr::new(packet[16], packet[17], packet[18], packet[19]);
    let group = dst.is_multicast() || dst.is_broadcast() || lan_broadcasts.contains(&dst);
    // Anything else with a foreign source is not a copy (a program bound to its LAN address
    // talking to a peer): it goes the usual way.
    if OVERLAY_V4.contains(&src) || !group {
        return Capture::NotCaptured;
    }
    let ihl = usize::from(packet[0] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([packet[2], packet[3]]));
    let fragmented = u16::from_be_bytes([packet[6], packet[7]]) & 0x3fff != 0;
    if packet[9] != UDP || ihl < 20 || total > packet.len() || total < ihl + 8 || fragmented {
        return Capture::Refused;
    }
    let new_dst = if dst.is_multicast() {
        dst
    } else {
        Ipv4Addr::BROADCAST
    };
    packet[12..16].copy_from_slice(&own.octets());
    packet[16..20].copy_from_slice(&new_dst.octets());
    packet[10..12].copy_from_slice(&[0, 0]);
    let sum = checksum(&[&packet[..ihl]]);
    packet[10..12].copy_from_slice(&sum.to_be_bytes());
    let udp = &mut packet[ihl..total];
    let port = u16::from_be_bytes([udp[2], udp[3]]);
    // A zero UDP checksum means "none" and stays so; otherwise it covers the addresses.
    if udp[6..8] != [0, 0] {
        udp[6..8].copy_from_slice(&[0, 0]);
        let len = (udp.len() as u16).to_be_bytes();
        let pseudo = [0, UDP, len[0], len[1]];
        let mut sum = checksum(&[&own.octets(), &new_dst.octets(), &pseudo, udp]);
        if sum == 0 {
            sum = 0xffff;
        }
        udp[6..8].copy_from_slice(&sum.to_be_bytes());
    }
    Capture::Rewritten { port }
}

/// The Internet checksum over the concatenation of `parts` (each of even length but the last).
fn checksum(parts: &[&[u8]]) -> u16 {
    let mut sum: u32 = 0;
    for part in parts {
        let mut chunks = part.chunks_exact(2);
        for c in &mut chunks {
            sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
        }
        if let [last] = chunks.remainder() {
            sum += u32::from(*last) << 8;
        }
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ip::testpkt::ipv4_udp;

    const OWN: Ipv4Addr = Ipv4Addr::new(100, 64, 0, 7);
    const LAN_BCAST: &[Ipv4Addr] = &[Ipv4Addr::new(192, 168, 1, 255)];

    /// A packet as the kernel sends it: IPv4 and UDP checksums set.
    fn sent(src: Ipv4Addr, dst: Ipv4Addr, port: u16, payload: &[u8]) -> Vec<u8> {
        let mut p = ipv4_udp(src, dst, payload);
        p[22..24].copy_from_slice(&port.to_be_bytes());
        let s = checksum(&[&p[..20]]);
        p[10..12].copy_from_slice(&s.to_be_bytes());
        let len = ((p.len() - 20) as u16).to_be_bytes();
        let mut u = checksum(&[
            &src.octets(),
            &dst.octets(),
            &[0, UDP, len[0], len[1]],
            &p[20..],
        ]);
        if u == 0 {
            u = 0xffff;
        }
        p[26..28].copy_from_slice(&u.to_be_bytes());
        p
    }

    fn valid(p: &[u8]) -> bool {
        let src: [u8; 4] = p[12..16].try_into().unwrap();
        let dst: [u8; 4] = p[16..20].try_into().unwrap();
        let len = ((p.len() - 20) as u16).to_be_bytes();
        checksum(&[&p[..20]]) == 0
            && checksum(&[&src, &dst, &[0, UDP, len[0], len[1]], &p[20..]]) == 0
    }

    #[test]
    fn a_lan_broadcast_comes_from_the_overlay_address_to_everyone() {
        let lan = Ipv4Addr::new(192, 168, 1, 20);
        for dst in [Ipv4Addr::BROADCAST, Ipv4Addr::new(192, 168, 1, 255)] {
            let mut p = sent(lan, dst, 27015, b"\xff\xff\xff\xffTSource Engine Query\0");
            assert!(valid(&p));
            assert_eq!(
                rewrite(&mut p, OWN, LAN_BCAST),
                Capture::Rewritten { port: 27015 }
            );
            assert_eq!(&p[12..16], &OWN.octets());
            assert_eq!(&p[16..20], &[255, 255, 255, 255]);
            assert!(valid(&p), "checksums stay right");
        }
    }

    #[test]
    fn multicast_keeps_its_group_and_odd_payloads_checksum_right() {
        let mut p = sent(
            Ipv4Addr::new(10, 0, 0, 5),
            Ipv4Addr::new(224, 0, 2, 60),
            4445,
            b"[MOTD]x[/MOTD][AD]25565[/AD]!",
        );
        assert_eq!(
            rewrite(&mut p, OWN, LAN_BCAST),
            Capture::Rewritten { port: 4445 }
        );
        assert_eq!(&p[16..20], &[224, 0, 2, 60]);
        assert!(valid(&p));
    }

    #[test]
    fn overlay_senders_fragments_and_garbage_are_not_rewritten() {
        let mut own = sent(OWN, Ipv4Addr::BROADCAST, 1, b"x");
        let before = own.clone();
        assert_eq!(rewrite(&mut own, OWN, LAN_BCAST), Capture::NotCaptured);
        assert_eq!(own, before);
        // From the LAN address to a peer, or to another LAN's broadcast: not a copy.
        for dst in [Ipv4Addr::new(100, 64, 0, 9), Ipv4Addr::new(10, 9, 9, 255)] {
            let mut p = sent(Ipv4Addr::new(192, 168, 1, 2), dst, 1, b"x");
            assert_eq!(rewrite(&mut p, OWN, LAN_BCAST), Capture::NotCaptured);
        }
        let mut frag = sent(Ipv4Addr::new(192, 168, 1, 2), Ipv4Addr::BROADCAST, 1, b"x");
        frag[6] = 0x20; // more fragments
        assert_eq!(rewrite(&mut frag, OWN, LAN_BCAST), Capture::Refused);
        let mut tcp = frag.clone();
        tcp[6] = 0;
        tcp[9] = 6;
        assert_eq!(rewrite(&mut tcp, OWN, LAN_BCAST), Capture::Refused);
        let mut short = sent(Ipv4Addr::new(192, 168, 1, 2), Ipv4Addr::BROADCAST, 1, b"x");
        short[2..4].copy_from_slice(&9999u16.to_be_bytes());
        assert_eq!(rewrite(&mut short, OWN, LAN_BCAST), Capture::Refused);
        assert_eq!(
            rewrite(&mut [0x60; 40], OWN, LAN_BCAST),
            Capture::NotCaptured
        );
        // A zero UDP checksum ("none") stays zero.
        let mut none = sent(
            Ipv4Addr::new(192, 168, 1, 2),
            Ipv4Addr::BROADCAST,
            9,
            b"abc",
        );
        none[26..28].copy_from_slice(&[0, 0]);
        assert_eq!(
            rewrite(&mut none, OWN, LAN_BCAST),
            Capture::Rewritten { port: 9 }
        );
        assert_eq!(&none[26..28], &[0, 0]);
    }
}
