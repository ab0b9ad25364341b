//! Writes the seed corpora under fuzz/seeds/: a few valid examples of each format, so the
//! fuzzers start past the magic bytes, MACs and length fields. Run from fuzz/ after a format
//! changes: `cargo run --example seeds`, then commit what changed.

use std::fs;
use std::net::SocketAddr;
use std::path::Path;
use warren_proto::control::auth::{public_key, ClientHandshake};
use warren_proto::control::{frame, stream};
use warren_proto::disco::{self, DiscoMsg, Listening, PortProto};
use warren_proto::invite::Invite;
use warren_proto::key::NodeKey;
use warren_proto::relay;
use warren_proto::relay_ticket::{self, Ticket};

fn write(target: &str, name: &str, bytes: &[u8]) {
    let dir = Path::new("seeds").join(target);
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join(name), bytes).unwrap();
}

fn with_mode(mode: u8, rest: &[u8]) -> Vec<u8> {
    let mut v = vec![mode];
    v.extend_from_slice(rest);
    v
}

/// A STUN message: type, transaction ID, attributes (type, value), with length and padding.
fn stun(mtype: u16, txid: [u8; 12], attrs: &[(u16, Vec<u8>)]) -> Vec<u8> {
    let mut body = Vec::new();
    for (t, v) in attrs {
        body.extend_from_slice(&t.to_be_bytes());
        body.extend_from_slice(&(v.len() as u16).to_be_bytes());
        body.extend_from_slice(v);
        while body.len() % 4 != 0 {
            body.push(0);
        }
    }
    let mut m = mtype.to_be_bytes().to_vec();
    m.extend_from_slice(&(body.len() as u16).to_be_bytes());
    m.extend_from_slice(&0x2112_A442u32.to_be_bytes());
    m.extend_from_slice(&txid);
    m.extend_from_slice(&body);
    m
}

fn main() {
    let me = [1u8; 32];
    let peer = [2u8; 32];
    let (me_pub, peer_pub) = (public_key(&me), public_key(&peer));
    let observed: SocketAddr = "198.51.100.7:41641".parse().unwrap();
    let msgs = [
        ("ping", DiscoMsg::Ping { tx_id: [5; 12] }),
        (
            "pong4",
            DiscoMsg::Pong {
                tx_id: [5; 12],
                observed,
            },
        ),
        (
            "pong6",
            DiscoMsg::Pong {
                tx_id: [5; 12],
                observed: "[2001:db8::7]:41641".parse().unwrap(),
            },
        ),
        (
            "port_query",
            DiscoMsg::PortQuery {
                tx_id: [6; 12],
                port: 22,
                proto: PortProto::Tcp,
            },
        ),
        (
            "port_answer",
            DiscoMsg::PortAnswer {
                tx_id: [6; 12],
                listening: Listening::Overlay,
            },
        ),
        ("birthday", DiscoMsg::Birthday { tx_id: [7; 12] }),
    ];
    // disco_open: sealed datagrams (mode 0) and nonce + plaintext (mode 1).
    for (name, m) in &msgs {
        let mut sealed = Vec::new();
        disco::seal(m, &peer, peer_pub, &me_pub, [9; 24], &mut sealed).unwrap();
        write(
            "disco_open",
            &format!("sealed_{name}"),
            &with_mode(0, &sealed),
        );
        write("datagram", &format!("disco_{name}"), &sealed);
    }
    let plains: [(&str, Vec<u8>); 5] = [
        ("ping", [&[1u8][..], &[5; 12]].concat()),
        (
            "pong4",
            [&[2u8][..], &[5; 12], &[4, 198, 51, 100, 7], &[0xa2, 0xa9]].concat(),
        ),
        (
            "pong6",
            [
                &[2u8][..],
                &[5; 12],
                &[6],
                &[0x20, 1, 0xd, 0xb8],
                &[0; 11],
                &[7, 0xa2, 0xa9],
            ]
            .concat(),
        ),
        ("port_query", [&[3u8][..], &[6; 12], &[0, 22, 6]].concat()),
        ("port_answer", [&[4u8][..], &[6; 12], &[1]].concat()),
    ];
    for (name, p) in &plains {
        write(
            "disco_open",
            &format!("plain_{name}"),
            &[&[1u8][..], &[9; 24], p].concat(),
        );
    }

    // relay_frame (and datagram): every frame type.
    let token = [4u8; 16];
    let mut f = vec![0u8; relay::SEND_HEADER_LEN];
    relay::write_send_header(&mut f, &peer_pub);
    f.extend_from_slice(b"\x04\0\0\0wireguard data");
    write("relay_frame", "send", &f);
    write("datagram", "relay_send", &f);
    let mut f = vec![0u8; relay::DELIVER_HEADER_LEN];
    relay::write_deliver_header(&mut f);
    f.extend_from_slice(b"\x04\0\0\0wireguard data");
    write("relay_frame", "deliver", &f);
    let mut f = [0u8; relay::PING_LEN];
    let n = relay::write_ping(&mut f, &token, [1; 8]);
    write("relay_frame", "ping", &f[..n]);
    let mut f = [0u8; relay::PONG_LEN];
    let n = relay::write_pong(&mut f, [1; 8]);
    write("relay_frame", "pong", &f[..n]);
    let mut f = [0u8; relay::CHALLENGE_LEN];
    let n = relay::write_challenge(&mut f, [1; 8], &[5; 16]);
    write("relay_frame", "challenge", &f[..n]);
    let mut f = [0u8; relay::REGISTER_LEN];
    let n = relay::write_register(&mut f, &token, [1; 8], &[5; 16]);
    write("relay_frame", "register", &f[..n]);
    write(
        "relay_frame",
        "token",
        relay_ticket::encode(&token).as_bytes(),
    );

    // relay_ticket: sealed with the fuzz target's secret (mode 0), its text form, and the
    // body alone (mode 1: the target adds the MAC).
    let secret = [7u8; 32];
    let ticket = Ticket {
        key: me_pub,
        token,
        serial: 1_700_000_000_000,
        expires: 1_900_000_000,
        tags: vec![
            relay_ticket::network_tag("home"),
            relay_ticket::network_tag("work"),
        ],
    };
    let sealed = ticket.seal(&secret);
    write("relay_ticket", "sealed", &with_mode(0, &sealed));
    write(
        "relay_ticket",
        "text",
        &with_mode(0, relay_ticket::encode(&sealed).as_bytes()),
    );
    write(
        "relay_ticket",
        "body",
        &with_mode(1, &sealed[..sealed.len() - 16]),
    );
    let mut f = [0u8; 2048];
    let n = relay::write_ticket_ping(&mut f, &token, [2; 8], &sealed).unwrap();
    write("relay_frame", "ticket_ping", &f[..n]);

    // stun_client: records (u16 length, flags, datagram); flags 2 = patch in the pending
    // transaction ID, bit 0 = which server.
    let xor4 = {
        let mut v = vec![0, 1, 0xa2 ^ 0x21, 0xa9 ^ 0x12];
        v.extend([198 ^ 0x21, 51 ^ 0x12, 100 ^ 0xA4, 7 ^ 0x42]);
        v
    };
    let mapped4 = vec![0, 1, 0xa2, 0xa9, 198, 51, 100, 7];
    let answers = [
        (
            "xor_mapped",
            stun(0x0101, [0; 12], &[(0x0020, xor4.clone())]),
        ),
        ("mapped", stun(0x0101, [0; 12], &[(0x0001, mapped4)])),
        (
            "error",
            stun(0x0111, [0; 12], &[(0x0009, vec![0, 0, 4, 20, b'n', b'o'])]),
        ),
        ("empty_success", stun(0x0101, [0; 12], &[])),
    ];
    for (name, a) in &answers {
        let mut rec = Vec::new();
        for server in 0..2u8 {
            rec.extend_from_slice(&(a.len() as u16).to_be_bytes());
            rec.push(2 | server);
            rec.extend_from_slice(a);
        }
        write("stun_client", name, &rec);
        write("datagram", &format!("stun_{name}"), a);
    }
    // stun_server: Binding Requests, plain and with FINGERPRINT (CRC32 ^ 0x5354554e).
    let plain = stun(0x0001, [3; 12], &[]);
    let mut fp = stun(0x0001, [3; 12], &[(0x8028, vec![0; 4])]);
    let crc = crc32(&fp[..fp.len() - 8]) ^ 0x5354_554e;
    let at = fp.len() - 4;
    fp[at..].copy_from_slice(&crc.to_be_bytes());
    for (i, r) in [&plain, &fp].into_iter().enumerate() {
        write("stun_server", &format!("request{i}_v4"), &with_mode(0, r));
        write("stun_server", &format!("request{i}_v6"), &with_mode(1, r));
    }
    write(
        "stun_server",
        "request_software",
        &with_mode(0, &stun(0x0001, [3; 12], &[(0x8022, b"warren".to_vec())])),
    );

    // control_frame: JSON messages both ways, framed; and a TCP stream header.
    let json = [
        r#"{"v":1,"name":"alice","udp_port":41641,"lan_endpoints":["192.168.1.2:41641","[fe80::1]:41641"],"dialed":"203.0.113.1:7443"}"#.to_string(),
        r#"{"v":1,"overlay_ip":"100.64.0.1","networks":["home"],"stun_ports":[7444,7445],"relay":{"port":7446,"token":"BAQEBAQEBAQEBAQEBAQEBA","ticket":"AQ"}}"#.to_string(),
        r#"{"type":"join_network","id":1,"name":"home","password":"pw"}"#.to_string(),
        r#"{"type":"endpoints","lan":["192.168.1.2:41641"],"reflexive":"198.51.100.7:41641","nat":"symmetric","mapped":null}"#.to_string(),
        format!(r#"{{"type":"remove_member","id":7,"network":"lan","node":"{me_pub}","ban":true}}"#),
        r#"{"type":"error","id":7,"code":"wrong_password","message":"wrong password"}"#.to_string(),
        format!(r#"{{"type":"call_me_maybe","key":"{peer_pub}","lan":["10.0.0.2:1"],"reflexive":null}}"#),
        r#"{"type":"networks","networks":[{"name":"lan"}],"waiting":["x"],"note":"n"}"#.to_string(),
        r#"{"type":"relay_ticket","ticket":"AQID"}"#.to_string(),
    ];
    for (i, j) in json.iter().enumerate() {
        let mut wire = Vec::new();
        frame::encode(j.as_bytes(), &mut wire).unwrap();
        frame::encode(b"{}", &mut wire).unwrap();
        write("control_frame", &format!("framed{i}"), &with_mode(7, &wire));
        write(
            "control_frame",
            &format!("json{i}"),
            &with_mode(255, j.as_bytes()),
        );
    }
    let mut tcp = Vec::new();
    stream::encode(stream::Kind::Relay, b"WRNr\x01\x04pongpong", &mut tcp).unwrap();
    write("control_frame", "tcp_relay", &with_mode(255, &tcp));

    // noise: a genuine first message (for the target's keys, so it is accepted) and one
    // bound to another connection; a reply-sized message for the client side.
    let (_, m1) =
        ClientHandshake::start(&me, &public_key(&[2; 32]), &[9; 32], b"{\"v\":1}").unwrap();
    write("noise", "first", &with_mode(0, &m1));
    let (_, other) = ClientHandshake::start(&me, &public_key(&[2; 32]), &[8; 32], b"{}").unwrap();
    write("noise", "first_other_binding", &with_mode(0, &other));
    write("noise", "reply", &with_mode(1, &[0x42; 64]));

    // invite: text codes, v1 and v2, and the v2 body alone.
    let inv = Invite {
        coordinator: "203.0.113.5:7443".into(),
        alternates: vec![],
        coordinator_key: NodeKey([2; 32]),
        network: "home".into(),
        secret: [3; 16],
        expires: 1_900_000_000,
    };
    write(
        "invite",
        "v1",
        &with_mode(0, inv.encode().unwrap().as_bytes()),
    );
    let v2 = Invite {
        alternates: vec!["192.168.1.5:7443".into(), "[fd00::5]:7443".into()],
        ..inv
    };
    let code = v2.encode().unwrap();
    write("invite", "v2", &with_mode(0, code.as_bytes()));
    use base64::Engine;
    let body = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(code.strip_prefix("warren1-").unwrap())
        .unwrap();
    write("invite", "v2_body", &with_mode(1, &body));

    // api_request: one line per request kind worth having.
    let requests = [
        r#"{"v":1,"cmd":"status"}"#.to_string(),
        format!(
            r#"{{"v":1,"cmd":"up","coordinator":"203.0.113.5:7443","coordinator_key":"{peer_pub}","name":"alice"}}"#
        ),
        r#"{"v":1,"cmd":"join_invite","invite":"warren1-AQ","name":null}"#.to_string(),
        r#"{"v":1,"cmd":"check","peer":"bob","port":22,"proto":"tcp"}"#.to_string(),
        r#"{"v":1,"cmd":"add_game_port","port":{"port":5000,"last":5010,"group":"239.1.2.3"}}"#
            .to_string(),
        r#"{"v":1,"cmd":"remove_member","network":"lan","who":"bob","ban":true}"#.to_string(),
        r#"{"v":1,"cmd":"set_operator","user":"bob","allow":true}"#.to_string(),
        r#"{"v":1,"cmd":"logout","force":true}"#.to_string(),
    ];
    for (i, r) in requests.iter().enumerate() {
        write("api_request", &format!("request{i}"), r.as_bytes());
    }

    // dns_query: A, AAAA, ANY, MX, other domain; first byte picks the asker.
    let names: [(&str, &str, u16); 6] = [
        ("a", "bob.home.warren", 1),
        ("aaaa", "alice.warren", 28),
        ("any", "Carol.Warren", 255),
        ("mx", "bob.work.warren", 15),
        ("refused", "example.com", 1),
        ("apex", "warren", 1),
    ];
    for (name, qname, qtype) in names {
        let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        for label in qname.split('.') {
            q.push(label.len() as u8);
            q.extend_from_slice(label.as_bytes());
        }
        q.push(0);
        q.extend_from_slice(&qtype.to_be_bytes());
        q.extend_from_slice(&1u16.to_be_bytes());
        write("dns_query", name, &with_mode(0, &q));
        write("dns_query", &format!("{name}_peer"), &with_mode(1, &q));
    }

    // config: the documented forms.
    let config = format!(
        "[interface]\nname = \"warren0\"\naddress = \"100.64.1.1\"\naddress6 = \"fd57:6172:7265:6e00::1\"\nmtu = 1380\nlisten_port = 41641\n\n[[peer]]\nname = \"b\"\npublic_key = \"{peer_pub}\"\nallowed_ips = [\"100.64.1.2/32\", \"fd57:6172:7265:6e00::2/128\"]\nendpoint = \"10.0.0.2:51820\"\npersistent_keepalive = 0\n\n[[peer]]\npublic_key = \"{me_pub}\"\n\n[games]\nports = [\"5000-5010\", \"239.1.2.3:6000\"]\n"
    );
    write("config", "full", config.as_bytes());
    write("config", "empty", b"");
}

/// CRC-32 (IEEE), for STUN's FINGERPRINT.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}
