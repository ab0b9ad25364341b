use super::*;
use crate::hub::Hub;
use crate::outbox::{outbox, OutboxRx};
use crate::store::SqliteStore as Store;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use warren_coordinator_core::outbox::DEFAULT_CAPACITY;
use warren_coordinator_core::{HashParams, Registry, RegistryConfig};
use warren_proto::invite::parse_secret;

fn key(i: u32) -> NodeKey {
    let mut k = [0u8; 32];
    k[..4].copy_from_slice(&i.to_be_bytes());
    k[31] = 7;
    NodeKey(k)
}

const ALICE: u32 = 0;
const BOB: u32 = 1;
const CAROL: u32 = 2;

/// alice created "net" and bob joined it; carol is registered but in no network. All three
/// are online; returns their inboxes in that order.
fn setup(dir: &std::path::Path) -> (Server, Vec<OutboxRx>) {
    let config = RegistryConfig {
        hash_params: HashParams::new(HashParams::MIN_M_COST, 1, 1, None).unwrap(),
        ..Default::default()
    };
    let mut hub = Hub::new(Registry::new(config).unwrap(), Store::open(dir).unwrap());
    let mut inboxes = Vec::new();
    for (i, name) in ["alice", "bob", "carol"].into_iter().enumerate() {
        let k = key(i as u32);
        let c = hub.registry.register_node(k, name, None, 1).unwrap();
        hub.persist(&c).unwrap();
        let (tx, rx) = outbox(DEFAULT_CAPACITY);
        hub.go_online(k, tx, vec![], None);
        inboxes.push(rx);
    }
    let c = hub
        .registry
        .create_network(key(ALICE), "net", "pw", &[7; 16], 1)
        .unwrap();
    hub.persist(&c).unwrap();
    let c = hub.registry.join_network(key(BOB), "net", "pw", 1).unwrap();
    hub.persist(&c).unwrap();
    (Server::new([0; 32], vec![], None, hub), inboxes)
}

/// Everything pushed to an inbox but the network lists (see `owner_controls_…`).
fn drain(rx: &mut OutboxRx) -> Vec<ServerMsg> {
    drain_all(rx)
        .into_iter()
        .filter(|m| !matches!(m, ServerMsg::Networks { .. }))
        .collect()
}

fn drain_all(rx: &mut OutboxRx) -> Vec<ServerMsg> {
    std::iter::from_fn(|| rx.try_recv()).collect()
}

/// The last network list pushed: (networks, waiting, note).
fn last_networks(
    msgs: &[ServerMsg],
) -> Option<(
    Vec<warren_proto::control::msg::NetworkState>,
    Vec<String>,
    Option<String>,
)> {
    msgs.iter().rev().find_map(|m| match m {
        ServerMsg::Networks {
            networks,
            waiting,
            note,
        } => Some((networks.clone(), waiting.clone(), note.clone())),
        _ => None,
    })
}

/// The routes `msgs`' last upsert about `about` carries: (prefix, approved).
fn routes_in(msgs: &[ServerMsg], about: NodeKey) -> Option<Vec<(String, bool)>> {
    msgs.iter().rev().find_map(|m| match m {
        ServerMsg::PeerUpsert { peer, .. } if peer.key == about => Some(
            peer.routes
                .iter()
                .map(|r| (r.prefix.clone(), r.approved))
                .collect(),
        ),
        _ => None,
    })
}

/// Bob advertises a LAN: alice (the owner) sees it unapproved in her peer map and her
/// network list; only she may approve it; then her peer map carries it approved, and a
/// bad prefix never reaches anyone.
#[tokio::test]
async fn an_advertised_route_reaches_peers_and_is_used_once_the_owner_approves() {
    let tmp = tempfile::tempdir().unwrap();
    let (server, mut inbox) = setup(tmp.path());
    let (alice, bob) = (key(ALICE), key(BOB));
    let lan = "192.168.1.0/24".to_string();
    let advertise = ClientMsg::AdvertiseRoutes {
        routes: vec!["192.168.1.9/24".into(), "0.0.0.0/0".into(), "nope".into()],
    };
    handle(&server, bob, remote(2), advertise).await;
    let got = drain_all(&mut inbox[0]);
    assert_eq!(routes_in(&got, bob), Some(vec![(lan.clone(), false)]));
    let (nets, _, _) = last_networks(&got).expect("a network list");
    assert_eq!(nets[0].routes.len(), 1, "{nets:?}");
    assert!(nets[0].routes[0].advertised && !nets[0].routes[0].approved);
    assert!(
        drain_all(&mut inbox[2]).is_empty(),
        "carol shares no network"
    );
    drain_all(&mut inbox[1]);

    let approve = |id| ClientMsg::ApproveRoute {
        id,
        network: "net".into(),
        node: bob,
        prefix: lan.clone(),
        approve: true,
    };
    handle(&server, bob, remote(2), approve(1)).await;
    assert_eq!(error_of(&drain(&mut inbox[1]), 1).0, ErrorCode::NotOwner);
    handle(&server, alice, remote(1), approve(2)).await;
    let got = drain_all(&mut inbox[0]);
    assert!(got.contains(&ServerMsg::Ok { id: 2 }));
    assert_eq!(routes_in(&got, bob), Some(vec![(lan.clone(), true)]));
    let (nets, _, _) = last_networks(&drain_all(&mut inbox[1])).expect("bob's list");
    assert!(nets[0].routes[0].approved, "bob sees his route approved");
}

/// Lock, a join that waits, the owner told at once, approve, remove and ban, all through
/// the control channel, with the pushes each affected host gets.
#[tokio::test]
async fn owner_controls_push_to_every_affected_host() {
    let tmp = tempfile::tempdir().unwrap();
    let (server, mut inbox) = setup(tmp.path());
    let (alice, bob, carol) = (key(ALICE), key(BOB), key(CAROL));
    let lock = ClientMsg::LockNetwork {
        id: 1,
        network: "net".into(),
        locked: true,
    };
    // A member may not; the owner may, and both members see the lock.
    handle(&server, bob, remote(2), lock.clone()).await;
    let (code, message) = error_of(&drain(&mut inbox[1]), 1);
    assert_eq!(code, ErrorCode::NotOwner);
    assert_eq!(
        message,
        "only the owner of network net (alice) can lock it: ask them"
    );
    handle(&server, alice, remote(1), lock).await;
    for i in [0, 1] {
        let got = drain_all(&mut inbox[i]);
        let (nets, _, _) = last_networks(&got).expect("a network list");
        assert!(nets[0].locked, "{got:?}");
    }

    // Carol's join waits; alice hears of it at once.
    let join = ClientMsg::JoinNetwork {
        id: 2,
        name: "net".into(),
        password: "pw".into(),
    };
    handle(&server, carol, remote(3), join).await;
    let got = drain_all(&mut inbox[2]);
    assert!(got.contains(&ServerMsg::JoinPending {
        id: 2,
        network: "net".into()
    }));
    assert_eq!(last_networks(&got).unwrap().1, ["net"]);
    let got = drain_all(&mut inbox[0]);
    let (nets, _, note) = last_networks(&got).unwrap();
    assert_eq!(nets[0].requests[0].key, carol);
    assert!(note.unwrap().contains("warren approve net carol"));
    assert!(drain(&mut inbox[1]).is_empty(), "bob learns nothing yet");

    // Approve: carol is in, with both peers, without asking again.
    let approve = ClientMsg::AnswerRequest {
        id: 3,
        network: "net".into(),
        node: carol,
        approve: true,
    };
    handle(&server, alice, remote(1), approve).await;
    let got = drain_all(&mut inbox[2]);
    for k in [alice, bob] {
        assert!(
            got.iter()
                .any(|m| matches!(m, ServerMsg::PeerUpsert { peer, .. } if peer.key == k)),
            "{got:?}"
        );
    }
    let (nets, waiting, note) = last_networks(&got).unwrap();
    assert_eq!((nets[0].name.as_str(), waiting.len()), ("net", 0));
    assert!(note.unwrap().contains("let this host in"));
    assert!(drain(&mut inbox[0]).contains(&ServerMsg::Ok { id: 3 }));
    assert!(drain(&mut inbox[1])
        .iter()
        .any(|m| matches!(m, ServerMsg::PeerUpsert { peer, .. } if peer.key == carol)));

    // Remove and ban bob: everyone drops him, he drops everyone, and cannot come back.
    let remove = ClientMsg::RemoveMember {
        id: 4,
        network: "net".into(),
        node: bob,
        ban: true,
    };
    handle(&server, alice, remote(1), remove).await;
    assert!(drain(&mut inbox[0]).contains(&ServerMsg::PeerRemove { key: bob }));
    assert!(drain(&mut inbox[2]).contains(&ServerMsg::PeerRemove { key: bob }));
    let got = drain_all(&mut inbox[1]);
    for k in [alice, carol] {
        assert!(got.contains(&ServerMsg::PeerRemove { key: k }), "{got:?}");
    }
    let (nets, _, note) = last_networks(&got).unwrap();
    assert!(nets.is_empty());
    assert!(note.unwrap().contains("banned"));
    let back = ClientMsg::JoinNetwork {
        id: 5,
        name: "net".into(),
        password: "pw".into(),
    };
    handle(&server, bob, remote(2), back).await;
    assert_eq!(error_of(&drain(&mut inbox[1]), 5).0, ErrorCode::Banned);
    let hub = server.hub();
    assert!(!hub.registry.shares_network(&alice, &bob));
    assert_eq!(hub.store.load().unwrap(), hub.registry.snapshot());
}

fn hello(name: &str, claim: Option<Ipv4Addr>) -> Hello {
    Hello {
        v: CONTROL_VERSION,
        name: name.into(),
        udp_port: 41641,
        lan_endpoints: vec![],
        dialed: None,
        claim,
        calls: true,
    }
}

fn welcomed_at(server: &Server, node: NodeKey, hello: &Hello) -> Ipv4Addr {
    match register(server, node, remote(9), hello).unwrap().overlay_ip {
        std::net::IpAddr::V4(a) => a,
        other => panic!("{other}"),
    }
}

/// A claim of a live lease is refused, of an expired one granted (and its old holder's
/// peers drop it), of a free one granted with a move that the mover's peers see.
#[tokio::test]
async fn claims_in_the_hello_and_what_the_peers_see() {
    let tmp = tempfile::tempdir().unwrap();
    let (server, mut inbox) = setup(tmp.path());
    let (alice, bob, carol) = (key(ALICE), key(BOB), key(CAROL));
    let addr = |k| server.hub().registry.lease_of(&k).unwrap().addr;
    let (alice_at, bob_at, carol_at) = (addr(alice), addr(bob), addr(carol));
    // The setup's leases date from 1970: only bob's is live.
    let c = server.hub().registry.renew_lease(bob, unix_now()).unwrap();
    server.hub().persist(&c).unwrap();

    assert_eq!(
        welcomed_at(&server, carol, &hello("carol", Some(bob_at))),
        carol_at
    );
    assert_eq!(addr(bob), bob_at);

    assert_eq!(
        welcomed_at(&server, carol, &hello("carol", Some(alice_at))),
        alice_at
    );
    assert_eq!(server.hub().registry.lease_of(&alice), None);
    assert_eq!(drain(&mut inbox[1]), [ServerMsg::PeerRemove { key: alice }]);

    let claim = Ipv4Addr::new(100, 100, 0, 9);
    let alice_hello = hello("alice", Some(claim));
    assert_eq!(welcomed_at(&server, alice, &alice_hello), claim);
    let (tx, _alice_inbox) = outbox(DEFAULT_CAPACITY);
    online(&server, alice, &alice_hello, remote(1), None, tx);
    let got = drain(&mut inbox[1]);
    assert!(
        got.iter()
            .any(|m| matches!(m, ServerMsg::PeerUpsert { peer, .. }
            if peer.key == alice && peer.overlay_ip == std::net::IpAddr::V4(claim))),
        "{got:?}"
    );
    assert!(drain(&mut inbox[2]).is_empty(), "carol is not alice's peer");
    let hub = server.hub();
    assert_eq!(hub.store.load().unwrap(), hub.registry.snapshot());
}

#[tokio::test]
async fn address_clashes_reach_only_a_peer_at_that_address_once_a_minute() {
    let tmp = tempfile::tempdir().unwrap();
    let (server, mut inbox) = setup(tmp.path());
    let (alice, bob, carol) = (key(ALICE), key(BOB), key(CAROL));
    let alice_at = server.hub().registry.lease_of(&alice).unwrap().addr;
    let bob_at = server.hub().registry.lease_of(&bob).unwrap().addr;
    let clash = |ip, key| ClientMsg::AddressClash { ip, key };

    handle(&server, carol, remote(3), clash(alice_at, alice)).await;
    handle(&server, bob, remote(2), clash(bob_at, alice)).await;
    assert!(
        drain(&mut inbox[0]).is_empty(),
        "not a peer, not its address"
    );

    handle(&server, bob, remote(2), clash(alice_at, alice)).await;
    assert_eq!(
        drain(&mut inbox[0]),
        [ServerMsg::AddressClash { ip: alice_at }]
    );
    handle(&server, bob, remote(2), clash(alice_at, alice)).await;
    assert!(
        drain(&mut inbox[0]).is_empty(),
        "asked less than a minute ago"
    );
    for i in [1, 2] {
        assert!(drain(&mut inbox[i]).is_empty());
    }
}

/// A member cannot make the coordinator keep, or its peers probe, an unbounded list, nor
/// flood its peers with updates.
#[tokio::test]
async fn endpoint_updates_are_capped_and_rate_limited() {
    use warren_coordinator_core::candidates::{ENDPOINT_BURST, MAX_LAN_CANDIDATES};
    let tmp = tempfile::tempdir().unwrap();
    let (server, mut inbox) = setup(tmp.path());
    let (alice, bob) = (key(ALICE), key(BOB));
    let update = |lan| ClientMsg::Endpoints {
        lan,
        reflexive: Some("0.0.0.0:9".parse().unwrap()),
        nat: warren_proto::control::msg::NatKind::Unknown,
        mapped: Some("224.0.0.1:9".parse().unwrap()),
        relay: false,
        mapped_tcp: Some("224.0.0.1:9".parse().unwrap()),
    };
    let flood: Vec<SocketAddr> = (0..80_000u32)
        .map(|i| SocketAddr::from(([10, (i >> 16) as u8, (i >> 8) as u8, i as u8], 41820)))
        .collect();
    handle(&server, bob, remote(2), update(flood)).await;
    {
        let hub = server.hub();
        let o = &hub.online[&bob];
        assert_eq!(o.reach.lan.len(), MAX_LAN_CANDIDATES);
        assert_eq!(
            o.reach.mapped, None,
            "a multicast 'mapping' is not passed on"
        );
        assert_eq!(o.reach.mapped_tcp, None, "nor a multicast TCP mapping");
        assert_ne!(o.reach.reflexive, Some("0.0.0.0:9".parse().unwrap()));
    }
    drain(&mut inbox[0]);
    for _ in 0..50 {
        handle(&server, bob, remote(2), update(vec![])).await;
    }
    let heard = drain(&mut inbox[0])
        .iter()
        .filter(|m| matches!(m, ServerMsg::PeerUpsert { peer, .. } if peer.key == bob))
        .count();
    assert!(heard > 0, "updates within the limit reach the peers");
    assert!(
        heard < ENDPOINT_BURST as usize,
        "{heard} of 50 updates reached alice"
    );
    let _ = alice;
}

/// The relay asks who shares a network without the hub's lock: a commit or a fan-out
/// holding it does not hold up relayed traffic.
#[test]
fn the_relay_asks_about_memberships_without_the_hub_lock() {
    let tmp = tempfile::tempdir().unwrap();
    let (server, _inbox) = setup(tmp.path());
    let server = Arc::new(server);
    let held = server.hub();
    let (tx, rx) = std::sync::mpsc::channel();
    let s = server.clone();
    std::thread::spawn(move || {
        let _ = tx.send((
            Membership::shares_network(&*s, &key(ALICE), &key(BOB)).0,
            Membership::shares_network(&*s, &key(ALICE), &key(CAROL)).0,
        ));
    });
    let answer = rx.recv_timeout(Duration::from_secs(5));
    drop(held);
    assert_eq!(
        answer,
        Ok((true, false)),
        "answered while the hub was locked"
    );
}

/// A member reports addresses it does not have (someone else's public address as its
/// reflexive address, port mapping and LAN address): its peers are not told to probe them.
/// Its own address (its control connection's, or a STUN source) is passed on.
#[tokio::test]
async fn only_addresses_the_coordinator_saw_a_member_come_from_reach_its_peers() {
    let tmp = tempfile::tempdir().unwrap();
    let (server, mut inbox) = setup(tmp.path());
    let bob = key(BOB);
    let victim: SocketAddr = "192.0.2.53:53".parse().unwrap();
    let own = SocketAddr::new(remote(2).ip(), 41820);
    let lan_home: SocketAddr = "192.168.1.20:41820".parse().unwrap();
    let report = |reflexive, mapped| ClientMsg::Endpoints {
        lan: vec![victim, lan_home],
        reflexive: Some(reflexive),
        nat: warren_proto::control::msg::NatKind::Symmetric,
        mapped: Some(mapped),
        relay: false,
        mapped_tcp: Some(SocketAddr::new(mapped.ip(), 41821)),
    };
    handle(&server, bob, remote(2), report(victim, victim)).await;
    {
        let hub = server.hub();
        let o = &hub.online[&bob];
        assert_eq!(o.reach.lan, vec![lan_home]);
        assert_ne!(o.reach.reflexive, Some(victim));
        assert_eq!(o.reach.mapped, None);
        assert_eq!(o.reach.mapped_tcp, None, "nor the TCP mapping");
    }
    drain(&mut inbox[0]);
    // Its control connection's address, and an address whose STUN request was answered.
    let stun_seen: SocketAddr = "203.0.113.77:41820".parse().unwrap();
    server
        .seen_sources
        .lock()
        .unwrap()
        .saw(stun_seen.ip(), unix_now());
    handle(&server, bob, remote(2), report(stun_seen, own)).await;
    let hub = server.hub();
    let o = &hub.online[&bob];
    assert_eq!(
        (o.reach.reflexive, o.reach.mapped),
        (Some(stun_seen), Some(own))
    );
    let own_tcp = SocketAddr::new(own.ip(), 41821);
    assert_eq!(
        o.reach.mapped_tcp,
        Some(own_tcp),
        "the TCP mapping is passed on"
    );
    let alice = key(ALICE);
    let info = hub.peer_info(&alice, &bob).expect("they share a network");
    assert_eq!(info.mapped_tcp, Some(own_tcp), "peers see the TCP mapping");
}

/// A daemon at the end of an in-memory link: it completes the handshake as `name` with
/// `secret`, and returns (its key, the frames it may send, the frames it was sent).
async fn connect(
    server: &Arc<Server>,
    secret: [u8; 32],
    name: &str,
) -> (
    NodeKey,
    tokio::sync::mpsc::Sender<Vec<u8>>,
    tokio::sync::mpsc::Receiver<Vec<u8>>,
    tokio::task::JoinHandle<Result<()>>,
) {
    use warren_proto::control::auth::{public_key, ClientHandshake};
    let (to_server, frames_in) = tokio::sync::mpsc::channel(64);
    // One frame of room on the way out: a daemon that stops reading stops the writer at
    // once, as a full socket buffer would, only sooner.
    let (frames_out, from_server) = tokio::sync::mpsc::channel(1);
    let binding = [3u8; warren_proto::control::auth::BINDING_LEN];
    let link = Link {
        transport: warren_proto::api::ControlTransport::Tcp,
        remote: remote(77),
        binding,
        reader: FrameReader::Tcp(frames_in),
        writer: crate::link::FrameWriter::Tcp(frames_out),
        pre_auth: server.pre_auth.enter().await.expect("a handshake slot"),
        _io: None,
    };
    let hello = serde_json::to_vec(&hello(name, None)).unwrap();
    let (hs, first) =
        ClientHandshake::start(&secret, &public_key(&server.secret), &binding, &hello).unwrap();
    let task = tokio::spawn({
        let server = server.clone();
        async move { session(link, &server).await }
    });
    to_server.send(first).await.unwrap();
    let mut from_server = from_server;
    let reply = from_server.recv().await.unwrap();
    let welcome: Welcome = serde_json::from_slice(&hs.finish(&reply).unwrap()).unwrap();
    assert_eq!(welcome.v, CONTROL_VERSION);
    let node = warren_proto::key::public_key(&secret);
    (node, to_server, from_server, task)
}

async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..500 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting until {what}");
}

fn remote(last: u8) -> SocketAddr {
    SocketAddr::from(([198, 51, 100, last], 40000))
}

fn error_of(msgs: &[ServerMsg], want_id: u64) -> (ErrorCode, String) {
    match msgs {
        [ServerMsg::Error { id, code, message }] if *id == want_id => (*code, message.clone()),
        other => panic!("expected one error for request {want_id}, got {other:?}"),
    }
}

#[tokio::test]
async fn invite_join_and_logout_through_the_control_channel() {
    let tmp = tempfile::tempdir().unwrap();
    let (server, mut inbox) = setup(tmp.path());
    let (alice, bob, carol) = (key(ALICE), key(BOB), key(CAROL));

    // Only a member may invite.
    let ask = |id| ClientMsg::CreateInvite {
        id,
        network: "net".into(),
        ttl_secs: 3600,
    };
    handle(&server, carol, remote(3), ask(1)).await;
    let (code, message) = error_of(&drain(&mut inbox[2]), 1);
    assert_eq!(code, ErrorCode::NotAMember);
    assert_eq!(message, "this host is not a member of network net");

    let before = unix_now();
    handle(&server, alice, remote(1), ask(2)).await;
    let secret = match drain(&mut inbox[0]).as_slice() {
        [ServerMsg::Invite {
            id: 2,
            network,
            secret,
            expires,
        }] => {
            assert_eq!(network, "net");
            assert!((before + 3600..=unix_now() + 3600).contains(expires));
            assert!(parse_secret(secret).is_some(), "{secret}");
            secret.clone()
        }
        other => panic!("{other:?}"),
    };

    let join = |id, secret: &str| ClientMsg::JoinInvite {
        id,
        network: "net".into(),
        secret: secret.into(),
    };
    let wrong = URL_SAFE_NO_PAD.encode([0u8; 16]);
    handle(&server, carol, remote(3), join(3, &wrong)).await;
    let (code, message) = error_of(&drain(&mut inbox[2]), 3);
    assert_eq!(code, ErrorCode::InviteInvalid);
    assert!(message.contains("not valid for network net"), "{message}");

    // Carol joins: she learns both members, each of them learns her, then her Ok.
    handle(&server, carol, remote(3), join(4, &secret)).await;
    let got = drain(&mut inbox[2]);
    let upserts: Vec<NodeKey> = got
        .iter()
        .filter_map(|m| match m {
            ServerMsg::PeerUpsert { peer, .. } => Some(peer.key),
            _ => None,
        })
        .collect();
    assert_eq!(upserts, [alice, bob]);
    assert_eq!(got.last(), Some(&ServerMsg::Ok { id: 4 }));
    for i in [0, 1] {
        assert!(
            drain(&mut inbox[i])
                .iter()
                .any(|m| matches!(m, ServerMsg::PeerUpsert { peer, .. } if peer.key == carol)),
            "member {i} was not told about carol"
        );
    }
    // The invite is reusable and a repeated join is fine.
    handle(&server, carol, remote(3), join(5, &secret)).await;
    assert_eq!(drain(&mut inbox[2]), [ServerMsg::Ok { id: 5 }]);

    // Logout: both sides drop each other; carol keeps her address.
    let addr = server.hub().registry.lease_of(&carol).unwrap();
    handle(&server, carol, remote(3), ClientMsg::Logout { id: 6 }).await;
    let got = drain(&mut inbox[2]);
    assert_eq!(
        got,
        [
            ServerMsg::PeerRemove { key: alice },
            ServerMsg::PeerRemove { key: bob },
            ServerMsg::Ok { id: 6 }
        ]
    );
    for i in [0, 1] {
        assert_eq!(drain(&mut inbox[i]), [ServerMsg::PeerRemove { key: carol }]);
    }
    let hub = server.hub();
    assert!(hub.registry.networks_of(&carol).is_empty());
    assert_eq!(hub.registry.lease_of(&carol), Some(addr));
    // And it was persisted: the store agrees with the registry.
    assert_eq!(hub.store.load().unwrap(), hub.registry.snapshot());
}

#[tokio::test]
async fn the_relay_stops_at_a_leave() {
    let tmp = tempfile::tempdir().unwrap();
    let (server, _inbox) = setup(tmp.path());
    let (alice, bob, carol) = (key(ALICE), key(BOB), key(CAROL));
    let mut cache = crate::relay::SharesCache::default();
    assert!(cache.shares(&server, &alice, &bob));
    assert!(!cache.shares(&server, &alice, &carol));
    // Answered from the cache until the registry changes.
    assert!(cache.shares(&server, &bob, &alice));
    let leave = ClientMsg::LeaveNetwork {
        id: 1,
        name: "net".into(),
    };
    handle(&server, bob, remote(2), leave).await;
    assert!(!cache.shares(&server, &alice, &bob));
}

#[tokio::test]
async fn a_session_gets_a_relay_token_only_when_the_relay_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut server, _inbox) = setup(tmp.path());
    assert!(matches!(
        offer_relay(&server, key(ALICE), &[]),
        (None, None)
    ));
    let (handle, mut inbox) = crate::relay::channel(7446);
    server.relay = Some(handle);
    let (offer, lease) = offer_relay(&server, key(ALICE), &[]);
    let (offer, lease) = (offer.unwrap(), lease.unwrap());
    assert_eq!(offer, lease.offer());
    assert_eq!(offer.port, 7446);
    assert_eq!((offer.address, offer.ticket), (None, None));
    let token: [u8; 16] = URL_SAFE_NO_PAD
        .decode(&offer.token)
        .unwrap()
        .try_into()
        .unwrap();
    assert!(matches!(
        inbox.commands.try_recv(),
        Ok(crate::relay::Command::Add { node, token: t }) if node == key(ALICE) && t == token
    ));
    drop(lease);
    assert!(matches!(
        inbox.commands.try_recv(),
        Ok(crate::relay::Command::Remove { token: t }) if t == token
    ));
}

/// With `--relay-at`, a session is sent to the standalone relay with a ticket naming its
/// networks, and every join or leave brings a fresh ticket before the peers hear of it.
#[tokio::test]
async fn a_standalone_relay_gets_tickets_that_follow_the_networks() {
    use warren_proto::relay_ticket::{self, network_tag, Ticket};
    let tmp = tempfile::tempdir().unwrap();
    let (mut server, mut inbox) = setup(tmp.path());
    let secret = [5u8; 32];
    let at: SocketAddr = "192.0.2.9:7450".parse().unwrap();
    server.external_relay = Some(ExternalRelay::new(at, secret));
    let open = |t: &str| Ticket::open(&relay_ticket::decode(t).unwrap(), &secret, unix_now());

    let carol = key(CAROL);
    let (offer, lease) = offer_relay(&server, carol, &[]);
    assert!(lease.is_none(), "the built-in relay is not involved");
    let offer = offer.unwrap();
    assert_eq!((offer.address, offer.port), (Some(at), 7450));
    let first = open(offer.ticket.as_deref().unwrap()).unwrap();
    assert_eq!(first.key, carol);
    assert!(first.tags.is_empty());
    assert_eq!(
        Some(first.token),
        warren_proto::relay::parse_token(&offer.token)
    );
    server.hub().online.get_mut(&carol).unwrap().relay_token = Some(first.token);

    let join = ClientMsg::JoinNetwork {
        id: 1,
        name: "net".into(),
        password: "pw".into(),
    };
    handle(&server, carol, remote(3), join).await;
    let msgs = drain(&mut inbox[2]);
    let ticket = match &msgs[..] {
        [ServerMsg::RelayTicket { ticket }, .., ServerMsg::Ok { id: 1 }] => open(ticket).unwrap(),
        other => panic!("{other:?}"),
    };
    assert_eq!(ticket.token, first.token);
    assert_eq!(ticket.tags, vec![network_tag("net")]);
    assert!(ticket.serial >= first.serial);

    handle(
        &server,
        carol,
        remote(3),
        ClientMsg::LeaveNetwork {
            id: 2,
            name: "net".into(),
        },
    )
    .await;
    match &drain(&mut inbox[2])[..] {
        [ServerMsg::RelayTicket { ticket }, .., ServerMsg::Ok { id: 2 }] => {
            assert!(open(ticket).unwrap().tags.is_empty())
        }
        other => panic!("{other:?}"),
    }
}

mod limits;
