//! The coordinator's answer to one STUN Binding Request: pure (bytes and the sender in, bytes
//! out), so that the coordinator's STUN socket, the simulation (`sim/`) and the fuzz target
//! (`fuzz/fuzz_targets/stun_server.rs`, which includes this file alone) share it.

use std::net::{IpAddr, SocketAddr};
use stun_types::attribute::{AttributeStaticType, Fingerprint, XorMappedAddress};
use stun_types::message::{Message, MessageWrite, MessageWriteExt, MessageWriteMutSlice};

pub const HEADER_LEN: usize = 20;
const BINDING_REQUEST: u16 = 0x0001;
const MAGIC_COOKIE: [u8; 4] = 0x2112_A442u32.to_be_bytes();
/// Header, XOR-MAPPED-ADDRESS for IPv6 (4 + 20), FINGERPRINT (4 + 4).
pub const MAX_RESPONSE: usize = HEADER_LEN + 24 + 8;

/// The response to `request` from `from`, written into `out`: its length, or `None` if
/// `request` is not a well-formed Binding Request.
pub fn answer(request: &[u8], from: SocketAddr, out: &mut [u8; MAX_RESPONSE]) -> Option<usize> {
    if !well_framed_binding_request(request) || from.port() == 0 {
        return None;
    }
    let msg = Message::from_bytes(request).ok()?;
    let from = match from.ip() {
        IpAddr::V6(ip) => SocketAddr::new(ip.to_canonical(), from.port()),
        IpAddr::V4(_) => from,
    };
    let v6 = from.is_ipv6();
    if v6 && request.len() < HEADER_LEN + 8 {
        return None;
    }
    let mut w = Message::builder_success(&msg, MessageWriteMutSlice::new(&mut out[..]));
    w.add_attribute(&XorMappedAddress::new(from, msg.transaction_id()))
        .ok()?;
    if msg.has_attribute(Fingerprint::TYPE) && !v6 {
        w.add_fingerprint().ok()?;
    }
    let len = w.finish();
    debug_assert!(len * 5 <= request.len() * 8, "amplification over 1.6x");
    Some(len)
}

/// Header says Binding Request with the magic cookie, the length field covers exactly the rest
/// of the datagram, and the attributes tile it.
fn well_framed_binding_request(d: &[u8]) -> bool {
    if d.len() < HEADER_LEN
        || u16::from_be_bytes([d[0], d[1]]) != BINDING_REQUEST
        || d[4..8] != MAGIC_COOKIE
        || usize::from(u16::from_be_bytes([d[2], d[3]])) != d.len() - HEADER_LEN
        || !d.len().is_multiple_of(4)
    {
        return false;
    }
    let mut at = HEADER_LEN;
    while at < d.len() {
        if d.len() - at < 4 {
            return false;
        }
        let len = usize::from(u16::from_be_bytes([d[at + 2], d[at + 3]]));
        let padded = (len + 3) & !3;
        if d.len() - at - 4 < padded {
            return false;
        }
        at += 4 + padded;
    }
    true
}
