use super::*;
use crate::testutil::{colliding_pair, key};

const DAY: u64 = 24 * 60 * 60;

#[test]
fn first_lease_is_the_derived_address_and_renewal_keeps_it() {
    let mut pool = LeasePool::default();
    let a = key(1);
    let ev = pool.acquire(a, 100).unwrap();
    let lease = Lease {
        addr: derive_v4(&a),
        renewed_at: 100,
    };
    assert_eq!(
        ev,
        LeaseEvent::Granted {
            lease,
            taken_from: None
        }
    );
    let ev = pool.acquire(a, 200).unwrap();
    assert_eq!(
        ev,
        LeaseEvent::Renewed(Lease {
            renewed_at: 200,
            ..lease
        })
    );
    // Even long after expiry the node gets its own address back if nobody took it.
    let ev = pool.acquire(a, 200 + 90 * DAY).unwrap();
    assert_eq!(ev.lease().addr, lease.addr);
    assert!(matches!(ev, LeaseEvent::Renewed(_)));
}

#[test]
fn collision_probes_to_the_next_free_address() {
    let (a, b) = colliding_pair();
    let mut pool = LeasePool::default();
    let pref = derive_v4(&a);
    assert_eq!(pool.acquire(a, 0).unwrap().lease().addr, pref);
    let got = pool.acquire(b, 0).unwrap().lease().addr;
    assert_eq!(u32::from(got), u32::from(pref) + 1);
    assert_eq!(pool.holder(pref), Some(a));
    assert_eq!(pool.holder(got), Some(b));
}

#[test]
fn probing_skips_taken_addresses_and_wraps_around_the_pool() {
    // A /29 has hosts .1 to .6; fill it one node at a time and check every address is
    // distinct and a host address.
    let net: Ipv4Net = "100.64.0.0/29".parse().unwrap();
    let mut pool = LeasePool::new(net).unwrap();
    let mut addrs = Vec::new();
    for i in 0..6 {
        let lease = pool.acquire(key(i), 0).unwrap().lease();
        assert!(net.contains(&lease.addr));
        assert_ne!(lease.addr, net.network());
        assert_ne!(lease.addr, net.broadcast());
        addrs.push(lease.addr);
    }
    addrs.sort();
    addrs.dedup();
    assert_eq!(addrs.len(), 6);
    // Full and nobody expired: a clear error, and nobody lost their address.
    assert_eq!(
        pool.acquire(key(99), LEASE_TTL - 1),
        Err(LeaseError::Exhausted(net))
    );
    assert_eq!(pool.len(), 6);
}

#[test]
fn expired_preferred_address_is_reused_live_one_is_not() {
    let (a, b) = colliding_pair();
    let pref = derive_v4(&a);

    // Live lease (renewed one second too recently): b probes onward.
    let mut pool = LeasePool::default();
    pool.acquire(a, 0).unwrap();
    let ev = pool.acquire(b, LEASE_TTL - 1).unwrap();
    assert_ne!(ev.lease().addr, pref);

    // Expired lease: b takes its preferred address over, a loses it.
    let mut pool = LeasePool::default();
    pool.acquire(a, 0).unwrap();
    let ev = pool.acquire(b, LEASE_TTL).unwrap();
    assert_eq!(
        ev,
        LeaseEvent::Granted {
            lease: Lease {
                addr: pref,
                renewed_at: LEASE_TTL
            },
            taken_from: Some(a)
        }
    );
    assert_eq!(pool.get(&a), None);
    // a comes back: its preferred address is b's now, so it probes onward.
    let ev = pool.acquire(a, LEASE_TTL + 1).unwrap();
    assert_eq!(u32::from(ev.lease().addr), u32::from(pref) + 1);
    assert_eq!(pool.holder(pref), Some(b));
}

#[test]
fn expired_lease_elsewhere_is_only_taken_when_nothing_is_free() {
    let net: Ipv4Net = "100.64.0.0/29".parse().unwrap();
    let mut pool = LeasePool::new(net).unwrap();
    for i in 0..5 {
        pool.acquire(key(i), 0).unwrap();
    }
    // Renew all but key(0) later, so only key(0) is expired at `late`.
    let late = LEASE_TTL + 10;
    for i in 1..5 {
        pool.acquire(key(i), 20).unwrap();
    }
    let old = pool.get(&key(0)).unwrap().addr;
    // One address is still free: a newcomer takes that, not the expired one (unless the
    // expired one is its preferred address).
    let newcomer = (100..).map(key).find(|k| pool.preferred(k) != old).unwrap();
    let ev = pool.acquire(newcomer, late).unwrap();
    assert!(matches!(
        ev,
        LeaseEvent::Granted {
            taken_from: None,
            ..
        }
    ));
    // Now the pool is full; the next newcomer gets the expired address.
    let ev = pool.acquire(key(200), late).unwrap();
    assert_eq!(
        ev,
        LeaseEvent::Granted {
            lease: Lease {
                addr: old,
                renewed_at: late
            },
            taken_from: Some(key(0))
        }
    );
}

fn v4(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

#[test]
fn a_free_claim_is_granted_even_outside_the_pool_range() {
    let mut pool = LeasePool::new("100.64.0.0/29".parse().unwrap()).unwrap();
    let claim = v4("100.100.7.9");
    let lease = Lease {
        addr: claim,
        renewed_at: 5,
    };
    assert_eq!(
        pool.claim(key(1), claim, 5),
        Ok(LeaseEvent::Granted {
            lease,
            taken_from: None
        })
    );
    assert_eq!(pool.holder(claim), Some(key(1)));
    // Claiming it again (the next connect) renews it.
    assert_eq!(
        pool.claim(key(1), claim, 9),
        Ok(LeaseEvent::Renewed(Lease {
            renewed_at: 9,
            ..lease
        }))
    );
}

#[test]
fn a_claim_held_by_a_live_lease_is_refused_and_falls_back_to_acquire() {
    let mut pool = LeasePool::default();
    let (a, b) = (key(1), key(2));
    let held = pool.acquire(a, 0).unwrap().lease().addr;
    assert_eq!(
        pool.claim(b, held, LEASE_TTL - 1),
        Err(ClaimRefused::Held {
            addr: held,
            holder: a
        })
    );
    assert_eq!(
        (pool.get(&b), pool.len()),
        (None, 1),
        "a refusal changes nothing"
    );
    let ev = pool.acquire_claiming(b, Some(held), LEASE_TTL - 1).unwrap();
    assert_eq!(
        ev,
        LeaseEvent::Granted {
            lease: Lease {
                addr: pool.preferred(&b),
                renewed_at: LEASE_TTL - 1
            },
            taken_from: None
        }
    );
    assert_ne!(ev.lease().addr, held);
    assert_eq!(pool.holder(held), Some(a));
    // A node that already has an address keeps it when its claim is refused.
    let ev = pool.acquire_claiming(b, Some(held), LEASE_TTL - 1).unwrap();
    assert!(matches!(ev, LeaseEvent::Renewed(_)), "{ev:?}");
}

#[test]
fn a_claim_takes_an_expired_lease_over() {
    let mut pool = LeasePool::default();
    let (a, b) = (key(1), key(2));
    let old = pool.acquire(a, 0).unwrap().lease().addr;
    assert_eq!(
        pool.claim(b, old, LEASE_TTL),
        Ok(LeaseEvent::Granted {
            lease: Lease {
                addr: old,
                renewed_at: LEASE_TTL
            },
            taken_from: Some(a)
        })
    );
    assert_eq!(pool.get(&a), None);
    assert_eq!(pool.holder(old), Some(b));
}

#[test]
fn a_node_claiming_a_free_address_moves_and_frees_its_old_one() {
    let mut pool = LeasePool::default();
    let a = key(1);
    let old = pool.acquire(a, 0).unwrap().lease().addr;
    let new = Ipv4Addr::from(u32::from(old) ^ 0x100);
    let lease = Lease {
        addr: new,
        renewed_at: 10,
    };
    assert_eq!(
        pool.acquire_claiming(a, Some(new), 10),
        Ok(LeaseEvent::Moved {
            lease,
            from: old,
            taken_from: None
        })
    );
    assert_eq!(pool.holder(old), None);
    assert_eq!(pool.holder(new), Some(a));
    assert_eq!((pool.get(&a), pool.len()), (Some(lease), 1));
    // The old address is free for anyone now.
    assert!(matches!(
        pool.claim(key(2), old, 11),
        Ok(LeaseEvent::Granted {
            taken_from: None,
            ..
        })
    ));
}

#[test]
fn claims_outside_the_overlay_or_of_no_host_are_refused() {
    let mut pool = LeasePool::default();
    for bad in ["10.0.0.1", "100.128.0.1", "100.64.0.0", "100.127.255.255"] {
        let bad = v4(bad);
        assert_eq!(
            pool.claim(key(1), bad, 0),
            Err(ClaimRefused::OutOfRange(bad))
        );
        assert!(pool.is_empty());
    }
    // Leased as without a claim.
    let ev = pool
        .acquire_claiming(key(1), Some(v4("10.0.0.1")), 0)
        .unwrap();
    assert_eq!(ev.lease().addr, derive_v4(&key(1)));
}

#[test]
fn bad_pools_and_restores_are_refused() {
    assert!(LeasePool::new("10.0.0.0/24".parse().unwrap()).is_err());
    assert!(LeasePool::new("100.64.0.0/31".parse().unwrap()).is_err());
    assert!(LeasePool::new("100.64.0.0/8".parse().unwrap()).is_err());
    let mut pool = LeasePool::default();
    let l = |a: [u8; 4]| Lease {
        addr: Ipv4Addr::from(a),
        renewed_at: 0,
    };
    pool.restore(key(1), l([100, 64, 0, 5])).unwrap();
    assert_eq!(
        pool.restore(key(1), l([100, 64, 0, 6])),
        Err(LeaseError::DuplicateNode(key(1)))
    );
    assert!(matches!(
        pool.restore(key(2), l([100, 64, 0, 5])),
        Err(LeaseError::DuplicateAddr { .. })
    ));
    assert!(matches!(
        pool.restore(key(3), l([10, 0, 0, 1])),
        Err(LeaseError::OutOfRange { .. })
    ));
    assert!(matches!(
        pool.restore(key(3), l([100, 64, 0, 0])),
        Err(LeaseError::OutOfRange { .. })
    ));
}

/// The free ranges are exactly the pool's host addresses no lease holds, and the expiry
/// index has one entry per lease.
fn check_indexes(pool: &LeasePool) {
    let mask = pool.host_mask();
    let mut free = Vec::new();
    for (&first, &last) in &pool.free {
        assert!(
            first >= 1 && first <= last && last < mask,
            "{first}..={last}"
        );
        free.extend(first..=last);
    }
    let taken: Vec<u32> = pool
        .by_addr
        .keys()
        .filter_map(|a| pool.host_of(*a))
        .collect();
    let mut all: Vec<u32> = free.iter().chain(&taken).copied().collect();
    all.sort();
    assert_eq!(
        all,
        (1..mask).collect::<Vec<_>>(),
        "free + taken = the pool, once"
    );
    // Adjacent ranges would have been joined.
    let ranges: Vec<(u32, u32)> = pool.free.iter().map(|(a, b)| (*a, *b)).collect();
    assert!(ranges.windows(2).all(|w| w[0].1 + 1 < w[1].0), "{ranges:?}");
    assert_eq!(pool.by_expiry.len(), pool.by_node.len());
}

/// The address the old linear probe would pick while some address is free: the
/// preferred one if free or expired, else the first free one upwards, wrapping.
fn probed(pool: &LeasePool, node: &NodeKey, now: u64) -> Ipv4Addr {
    let mask = pool.host_mask();
    let hosts = mask - 1;
    let start = u32::from(pool.preferred(node)) & mask;
    for i in 0..hosts {
        let addr = pool.addr_of((start - 1 + i) % hosts + 1);
        match pool.by_addr.get(&addr) {
            None => return addr,
            Some(h) if i == 0 && pool.is_expired(h, now) => return addr,
            Some(_) => {}
        }
    }
    panic!("full")
}

/// Grants, renewals, moves and takeovers in a small pool land where the old linear probe
/// would have put them, and the indexes stay exact.
#[test]
fn allocation_without_a_scan_picks_what_the_probe_picked() {
    let net: Ipv4Net = "100.64.0.0/26".parse().unwrap();
    let mut pool = LeasePool::new(net).unwrap();
    let mut t = 0;
    for i in 0..400u32 {
        t += 3_600;
        let k = key(i % 90);
        match i % 7 {
            // A move to an address in the pool, or out of it.
            3 => {
                let to = Ipv4Addr::from(u32::from(net.network()) + 1 + (i * 13) % 62);
                let _ = pool.claim(k, to, t);
            }
            5 => {
                let _ = pool.claim(k, Ipv4Addr::new(100, 100, 0, i as u8), t);
            }
            _ => {
                let free = !pool.free.is_empty();
                let want = (free && pool.get(&k).is_none()).then(|| probed(&pool, &k, t));
                match pool.acquire(k, t) {
                    Ok(ev) => {
                        if let Some(want) = want {
                            assert_eq!(ev.lease().addr, want, "step {i}");
                        }
                    }
                    Err(LeaseError::Exhausted(_)) => assert!(!free),
                    Err(e) => panic!("{e}"),
                }
            }
        }
        if i % 11 == 0 {
            pool.set_in_network(k, i % 2 == 0);
        }
        check_indexes(&pool);
    }
}

/// With every address taken, a newcomer gets the lease that expired first (not a walk
/// over the pool to find one).
#[test]
fn a_full_pool_gives_out_the_lease_that_expired_first() {
    let net: Ipv4Net = "100.64.0.0/29".parse().unwrap();
    let mut pool = LeasePool::new(net).unwrap();
    for i in 0..6 {
        pool.acquire(key(i), 100 + u64::from(i)).unwrap();
    }
    // key(4) was renewed least recently once the others renew.
    for i in [0, 1, 2, 3, 5] {
        pool.acquire(key(i), 200).unwrap();
    }
    let oldest = pool.get(&key(4)).unwrap().addr;
    let now = 104 + LEASE_TTL;
    let newcomer = (100..)
        .map(key)
        .find(|k| pool.preferred(k) != oldest)
        .unwrap();
    assert_eq!(
        pool.acquire(newcomer, now),
        Ok(LeaseEvent::Granted {
            lease: Lease {
                addr: oldest,
                renewed_at: now
            },
            taken_from: Some(key(4))
        })
    );
    // An expired lease outside the pool (a claim) is not given out from it.
    pool.claim(key(50), Ipv4Addr::new(100, 100, 0, 1), 0)
        .unwrap();
    assert_eq!(
        pool.acquire(key(99), now),
        Err(LeaseError::Exhausted(net)),
        "the others are live"
    );
    check_indexes(&pool);
}

/// A node in no network holds its address hours, not a month; joining one gives it the
/// long lease, leaving every network the short one again.
#[test]
fn nodes_in_no_network_have_short_leases() {
    let (a, b) = colliding_pair();
    let pref = derive_v4(&a);
    let mut pool = LeasePool::default();
    pool.acquire(a, 0).unwrap();
    pool.set_in_network(a, false);
    assert!(!pool.is_expired(&a, NO_NETWORK_LEASE_TTL - 1));
    assert!(pool.is_expired(&a, NO_NETWORK_LEASE_TTL));
    let ev = pool.acquire(b, NO_NETWORK_LEASE_TTL).unwrap();
    assert_eq!(ev.lease().addr, pref, "b takes a's expired address");
    assert_eq!(pool.get(&a), None);

    pool.set_in_network(b, false);
    pool.set_in_network(b, true);
    assert!(!pool.is_expired(&b, NO_NETWORK_LEASE_TTL * 2));
    assert!(pool.is_expired(&b, NO_NETWORK_LEASE_TTL + LEASE_TTL));
    check_indexes(&pool);
}

/// Newcomers whose preferred addresses fall inside a long run of taken addresses: the
/// old probe walked the run for each of them.
#[test]
fn allocation_does_not_walk_a_long_run_of_taken_addresses() {
    let mut pool = LeasePool::default();
    let base = u32::from(OVERLAY_V4.network());
    const RUN: u32 = 1 << 18;
    for h in 1..=RUN {
        let mut k = [0u8; 32];
        k[..4].copy_from_slice(&h.to_be_bytes());
        k[31] = 0xee;
        let lease = Lease {
            addr: Ipv4Addr::from(base + h),
            renewed_at: 0,
        };
        pool.restore(NodeKey(k), lease).unwrap();
    }
    let inside: Vec<NodeKey> = (0..)
        .map(key)
        .filter(|k| u32::from(pool.preferred(k)) - base <= RUN / 2)
        .take(2_000)
        .collect();
    let t = std::time::Instant::now();
    for k in &inside {
        pool.acquire(*k, 1).unwrap();
    }
    let took = t.elapsed();
    assert!(took < std::time::Duration::from_secs(1), "{took:?}");
    let first = pool.get(&inside[0]).unwrap().addr;
    assert_eq!(first, Ipv4Addr::from(base + RUN + 1));
}
