//! STUN Binding server (RFC 8489) on two UDP ports: each Binding Request gets a success
//! response whose XOR-MAPPED-ADDRESS is the address the request came from. A daemon asks both
//! ports from its WireGuard socket: the same answer twice means its NAT maps endpoint-
//! independently, two different ones mean a symmetric NAT (see `warren_daemon_core::stun`).
//!
//! Stateless: nothing is kept per client, so memory does not grow with traffic. Anything that
//! is not a well-formed Binding Request is dropped without a word (and without a log line: the
//! framing is checked here before the STUN parser, which warns on malformed input, sees it).
//! Comprehension-required attributes such as USERNAME or MESSAGE-INTEGRITY are not checked:
//! like public STUN servers, this one has no credentials and answers anyone. A response is at
//! most 1.6 times its request, so the server is no amplifier worth abusing: a header-only
//! request (20 bytes) gets 32 bytes over IPv4; an IPv6 answer's address is 12 bytes longer,
//! so over IPv6 a request must carry at least FINGERPRINT (28 bytes) and gets 44 bytes, without
//! a FINGERPRINT of its own. Over IPv4, FINGERPRINT is added when the request had one.

use anyhow::{Context, Result};
use std::net::{IpAddr, SocketAddr};
use tokio::net::UdpSocket;
use warren_coordinator_core::seen_sources::SeenSources;
pub use warren_coordinator_core::stun_answer::{answer, MAX_RESPONSE};
/// Larger datagrams arrive cut short, fail the length check and are dropped.
const RECV_BUF: usize = 1500;

/// Parses `--stun-ports PORT1,PORT2`.
pub fn parse_ports(s: &str) -> Result<[u16; 2], String> {
    let ports = s
        .split(',')
        .map(|p| p.trim().parse::<u16>().map_err(|e| format!("{p:?}: {e}")))
        .collect::<Result<Vec<_>, _>>()?;
    match ports[..] {
        [a, b] if a != b || a == 0 => Ok([a, b]),
        [_, _] => Err("the two STUN ports must differ".into()),
        _ => Err("expected two ports: PORT1,PORT2".into()),
    }
}

/// The ports after the control port: 7444,7445 for 7443. An ephemeral control port (0) gives
/// ephemeral STUN ports.
pub fn default_ports(control_port: u16) -> Result<[u16; 2]> {
    if control_port == 0 {
        return Ok([0, 0]);
    }
    match control_port.checked_add(2) {
        Some(second) => Ok([control_port + 1, second]),
        None => {
            anyhow::bail!("no room for the STUN ports after port {control_port}; use --stun-ports")
        }
    }
}

/// Where requests came from, shared with the sessions (see [`SeenSources`]).
pub type Seen = std::sync::Arc<std::sync::Mutex<SeenSources>>;

/// Binds both ports on `ip` and serves them in background tasks; returns the bound addresses.
pub async fn start(ip: IpAddr, ports: [u16; 2], seen: Seen) -> Result<[SocketAddr; 2]> {
    let mut bound = [SocketAddr::new(ip, 0); 2];
    let mut sockets = Vec::with_capacity(2);
    for (i, port) in ports.into_iter().enumerate() {
        let addr = SocketAddr::new(ip, port);
        let socket = UdpSocket::bind(addr)
            .await
            .with_context(|| format!("cannot bind STUN port {addr}"))?;
        bound[i] = socket.local_addr()?;
        sockets.push(socket);
    }
    for socket in sockets {
        tokio::spawn(serve(socket, seen.clone()));
    }
    Ok(bound)
}

/// Answers Binding Requests on `socket` until the task is dropped.
pub async fn serve(socket: UdpSocket, seen: Seen) {
    let mut buf = [0u8; RECV_BUF];
    let mut out = [0u8; MAX_RESPONSE];
    loop {
        let (n, from) = match socket.recv_from(&mut buf).await {
            Ok(r) => r,
            Err(e) => {
                // E.g. an ICMP error reported on the socket; nothing to do but go on.
                tracing::trace!("stun receive: {e}");
                continue;
            }
        };
        if let Some(len) = answer(&buf[..n], from, &mut out) {
            seen.lock()
                .expect("seen sources lock")
                .saw(from.ip().to_canonical(), crate::hub::unix_now());
            if let Err(e) = socket.send_to(&out[..len], from).await {
                tracing::trace!("stun send: {e}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stun_types::attribute::{AttributeStaticType, Fingerprint, XorMappedAddress};
    use stun_types::message::{Message, MessageWrite, MessageWriteExt};
    use stun_types::message::{MessageClass, MessageType, MessageWriteVec, TransactionId, BINDING};
    use warren_coordinator_core::stun_answer::HEADER_LEN;

    fn request(txid: u128, fingerprint: bool) -> Vec<u8> {
        let mtype = MessageType::from_class_method(MessageClass::Request, BINDING);
        let mut w = Message::builder(mtype, TransactionId::from(txid), MessageWriteVec::new());
        if fingerprint {
            w.add_fingerprint().unwrap();
        }
        w.finish()
    }

    fn mapped(response: &[u8], txid: u128) -> SocketAddr {
        let msg = Message::from_bytes(response).unwrap();
        assert!(msg.has_class(MessageClass::Success) && msg.has_method(BINDING));
        assert_eq!(msg.transaction_id(), TransactionId::from(txid));
        msg.attribute::<XorMappedAddress>()
            .unwrap()
            .addr(msg.transaction_id())
    }

    #[tokio::test]
    async fn answers_with_the_client_address_on_both_ports() {
        let lo = IpAddr::from([127, 0, 0, 1]);
        let seen = Seen::default();
        let servers = start(lo, [0, 0], seen.clone()).await.unwrap();
        assert_ne!(servers[0], servers[1]);
        let client = UdpSocket::bind((lo, 0)).await.unwrap();
        let me = client.local_addr().unwrap();
        let mut buf = [0u8; 1500];
        for (i, server) in servers.into_iter().enumerate() {
            let txid = 0x1234_5678_9abc_def0_0000_0000 + i as u128;
            // Junk first: ignored, and the server keeps serving.
            client
                .send_to(b"\x00\x01\x00\x00junk", server)
                .await
                .unwrap();
            client
                .send_to(&request(txid, i == 0), server)
                .await
                .unwrap();
            let (n, from) = tokio::time::timeout(
                std::time::Duration::from_secs(5),
                client.recv_from(&mut buf),
            )
            .await
            .expect("an answer")
            .unwrap();
            assert_eq!(from, server);
            assert_eq!(mapped(&buf[..n], txid), me);
            let msg = Message::from_bytes(&buf[..n]).unwrap();
            assert_eq!(msg.has_attribute(Fingerprint::TYPE), i == 0);
        }
        // What it answered vouches for the client's address; junk vouches for nothing.
        assert!(seen.lock().unwrap().seen(lo, crate::hub::unix_now()));
        assert_eq!(seen.lock().unwrap().len(), 1);
    }

    #[test]
    fn response_sizes() {
        let mut out = [0u8; MAX_RESPONSE];
        let v4: SocketAddr = "192.0.2.1:32853".parse().unwrap();
        let v6: SocketAddr = "[2001:db8::1]:9".parse().unwrap();
        let plain = request(7, false);
        assert_eq!(plain.len(), 20);
        assert_eq!(answer(&plain, v4, &mut out), Some(32));
        assert_eq!(mapped(&out[..32], 7), v4);
        let with_fp = request(7, true);
        assert_eq!(answer(&with_fp, v4, &mut out), Some(40));
        assert_eq!(answer(&with_fp, v6, &mut out), Some(44));
        assert_eq!(mapped(&out[..44], 7), v6);
        // A header-only request over IPv6 would get 2.2 times its size back: dropped.
        assert_eq!(answer(&plain, v6, &mut out), None);
        for (req, from) in [(&plain, v4), (&with_fp, v4), (&with_fp, v6)] {
            let n = answer(req, from, &mut out).unwrap();
            assert!(n * 5 <= req.len() * 8, "{n} bytes for {}", req.len());
        }
        // A dual-stack socket's IPv4-mapped source is answered as IPv4.
        let mapped_v4: SocketAddr = "[::ffff:192.0.2.1]:32853".parse().unwrap();
        let n = answer(&plain, mapped_v4, &mut out).unwrap();
        assert_eq!(mapped(&out[..n], 7), v4);
    }

    #[test]
    fn ignores_everything_else() {
        let mut out = [0u8; MAX_RESPONSE];
        let from: SocketAddr = "192.0.2.1:32853".parse().unwrap();
        let good = request(9, true);
        for len in 0..good.len() {
            assert_eq!(answer(&good[..len], from, &mut out), None, "cut to {len}");
        }
        // A success response, an indication, a wrong cookie, a bad fingerprint.
        let mutations: [fn(&mut Vec<u8>); 4] = [
            |d| d[0] = 0x01,
            |d| d[1] = 0x11,
            |d| d[5] ^= 1,
            |d| d[27] ^= 1,
        ];
        for (i, mutate) in mutations.iter().enumerate() {
            let mut bad = good.clone();
            mutate(&mut bad);
            assert_eq!(answer(&bad, from, &mut out), None, "mutation {i}");
        }
        // Length field and attribute lengths that do not add up.
        let mut long = good.clone();
        long[3] += 4;
        assert_eq!(answer(&long, from, &mut out), None);
        let mut attr = good.clone();
        attr[23] = 8;
        assert_eq!(answer(&attr, from, &mut out), None);
        // Trailing bytes.
        let mut trailing = good.clone();
        trailing.extend_from_slice(&[0; 4]);
        assert_eq!(answer(&trailing, from, &mut out), None);
        // Port 0 cannot be answered.
        assert_eq!(
            answer(&good, "192.0.2.1:0".parse().unwrap(), &mut out),
            None
        );
        // Random bytes behind a Binding Request header: no panic.
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let len = HEADER_LEN + 4 * (x % 16) as usize;
            let mut d: Vec<u8> = (0..len).map(|k| (x >> (k % 57)) as u8).collect();
            d[..HEADER_LEN].copy_from_slice(&good[..HEADER_LEN]);
            d[2..4].copy_from_slice(&((len - HEADER_LEN) as u16).to_be_bytes());
            if let Some(n) = answer(&d, from, &mut out) {
                assert_eq!(mapped(&out[..n], 9), from);
            }
        }
    }

    #[test]
    fn port_flags() {
        assert_eq!(parse_ports("7444,7445"), Ok([7444, 7445]));
        assert_eq!(parse_ports(" 1 , 2 "), Ok([1, 2]));
        assert_eq!(parse_ports("0,0"), Ok([0, 0]));
        assert!(parse_ports("7444").is_err());
        assert!(parse_ports("7444,7444").is_err());
        assert!(parse_ports("1,2,3").is_err());
        assert!(parse_ports("1,x").is_err());
        assert_eq!(default_ports(7443).unwrap(), [7444, 7445]);
        assert_eq!(default_ports(0).unwrap(), [0, 0]);
        assert!(default_ports(65534).is_err());
    }
}
