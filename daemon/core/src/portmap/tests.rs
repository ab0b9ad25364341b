use super::*;
use PortMapProtocol::*;

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn mapping(protocol: PortMapProtocol, port: u16) -> Mapping {
    Mapping {
        protocol,
        external: SocketAddr::from(([198, 20, 0, 2], port)),
        lifetime: secs(7200),
    }
}

fn started(t0: Instant) -> PortMapper {
    let mut m = PortMapper::new(PortMapConfig::default());
    assert_eq!(m.poll_action(t0), None, "nothing before it is enabled");
    m.handle_enabled(t0, true);
    m
}

#[test]
fn maps_at_once_and_renews_at_half_life() {
    let t0 = Instant::now();
    let mut m = started(t0);
    assert_eq!(
        m.poll_action(t0),
        Some(Action::Map(vec![Pcp, NatPmp, Upnp]))
    );
    assert_eq!(m.poll_action(t0), None, "one attempt at a time");
    m.handle_result(t0, Some(mapping(NatPmp, 41820)));
    assert_eq!(m.poll_event(), Some(Some(mapping(NatPmp, 41820))));
    assert_eq!(m.poll_event(), None);
    assert_eq!(m.poll_timeout(), Some(t0 + secs(3600)));
    assert_eq!(m.poll_action(t0 + secs(3599)), None);
    let t1 = t0 + secs(3600);
    assert_eq!(
        m.poll_action(t1),
        Some(Action::Renew(mapping(NatPmp, 41820)))
    );
    m.handle_result(t1, Some(mapping(NatPmp, 41820)));
    assert_eq!(
        m.poll_event(),
        None,
        "a renewal changes nothing to advertise"
    );
    assert_eq!(m.poll_timeout(), Some(t1 + secs(3600)));
}

#[test]
fn failures_back_off_and_the_protocol_that_worked_goes_first() {
    let t0 = Instant::now();
    let mut m = started(t0);
    let mut now = t0;
    let mut waits = Vec::new();
    for _ in 0..10 {
        assert!(matches!(m.poll_action(now), Some(Action::Map(_))));
        m.handle_result(now, None);
        let next = m.poll_timeout().unwrap();
        waits.push((next - now).as_secs());
        now = next;
    }
    assert_eq!(waits, [5, 10, 20, 40, 80, 160, 320, 600, 600, 600]);
    assert_eq!(m.poll_event(), None, "nothing was ever advertised");
    assert_eq!(
        m.poll_action(now),
        Some(Action::Map(vec![Pcp, NatPmp, Upnp]))
    );
    m.handle_result(now, Some(mapping(Upnp, 41820)));
    // A later fresh Map starts with what worked.
    m.handle_network_change(now);
    assert_eq!(
        m.poll_action(now),
        Some(Action::Map(vec![Upnp, Pcp, NatPmp]))
    );
}

#[test]
fn a_mapping_that_cannot_be_renewed_is_dropped_at_expiry() {
    let t0 = Instant::now();
    let mut m = started(t0);
    m.poll_action(t0);
    m.handle_result(t0, Some(mapping(Pcp, 41820)));
    m.poll_event();
    let mut now = t0 + secs(3600);
    assert!(matches!(m.poll_action(now), Some(Action::Renew(_))));
    m.handle_result(now, None);
    // Retried well before the expiry, as a fresh Map.
    now = m.poll_timeout().unwrap();
    assert_eq!(now, t0 + secs(3605));
    assert!(matches!(m.poll_action(now), Some(Action::Map(_))));
    while now < t0 + secs(7200) {
        m.handle_result(now, None);
        assert_eq!(m.mapping().is_some(), now < t0 + secs(7200));
        now = m.poll_timeout().unwrap();
        m.poll_action(now);
    }
    assert_eq!(m.mapping(), None);
    assert_eq!(m.poll_event(), Some(None), "peers must stop trying it");
}

#[test]
fn down_deletes_the_mapping_and_up_maps_again() {
    let t0 = Instant::now();
    let mut m = started(t0);
    m.poll_action(t0);
    m.handle_result(t0, Some(mapping(Pcp, 41820)));
    m.poll_event();
    let t1 = t0 + secs(10);
    m.handle_enabled(t1, false);
    assert_eq!(m.poll_action(t1), Some(Action::Delete(mapping(Pcp, 41820))));
    assert_eq!(m.poll_action(t1), None);
    assert_eq!(m.poll_timeout(), None, "off: nothing scheduled");
    assert_eq!(m.poll_event(), Some(None));
    m.handle_enabled(t1, true);
    assert!(matches!(m.poll_action(t1), Some(Action::Map(_))));
    // Turned off while asking: the late grant is deleted, not advertised.
    m.handle_enabled(t1, false);
    m.handle_result(t1, Some(mapping(NatPmp, 41821)));
    assert_eq!(
        m.poll_action(t1),
        Some(Action::Delete(mapping(NatPmp, 41821)))
    );
    assert_eq!(m.poll_event(), None);
}

#[test]
fn network_change_maps_anew_and_a_moved_mapping_is_advertised() {
    let t0 = Instant::now();
    let mut m = started(t0);
    m.poll_action(t0);
    m.handle_result(t0, Some(mapping(Pcp, 41820)));
    m.poll_event();
    let t1 = t0 + secs(60);
    m.handle_network_change(t1);
    assert_eq!(
        m.poll_action(t1),
        Some(Action::Map(vec![Pcp, NatPmp, Upnp]))
    );
    // The router gave another port this time (say it restarted and the old port is taken).
    m.handle_result(t1, Some(mapping(Pcp, 50000)));
    assert_eq!(m.poll_event(), Some(Some(mapping(Pcp, 50000))));
    // Another protocol's mapping replaced the old one: that one is deleted.
    m.handle_network_change(t1);
    m.poll_action(t1);
    m.handle_result(t1, Some(mapping(Upnp, 41820)));
    assert_eq!(m.poll_action(t1), Some(Action::Delete(mapping(Pcp, 50000))));
}
