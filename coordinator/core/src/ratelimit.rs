//! Rate limits: join attempts per source address ([`JoinLimiter`]), password attempts per
//! network and overall ([`PasswordLimiter`]), and address-clash asks per host
//! ([`ClashLimiter`]).
//!
//! Join attempts per source address: a token bucket in its GCRA form (one "theoretical arrival
//! time" per source), with time passed in as milliseconds.
//!
//! - Every attempt costs one token, whether the password turns out right or wrong; a refused
//!   attempt costs nothing, so a client that waits the `retry_after_ms` it was told gets in.
//! - IPv6 sources count per /64 (one host usually owns a whole /64); IPv4-mapped IPv6 addresses
//!   count as their IPv4 address.
//! - Memory is bounded: a source whose bucket has refilled is forgotten (it is the same as a
//!   source never seen), and the table never holds more than `max_sources` entries; when it is
//!   full, the source with the fullest bucket (the earliest arrival time) is forgotten to make
//!   room. Under a flood from more addresses than that, some sources get a fresh bucket early:
//!   bounded memory wins over perfect fairness. Every attempt costs O(log n).
//!
//! A host is asked to move its overlay address at most once per [`CLASH_INTERVAL`], whoever
//! asks: each move makes it reconnect to all its coordinators, so a hostile peer must not
//! make it hop continuously. Only asks that were sent count, and a host is remembered only
//! until its minute is over, so memory stays bounded by the hosts asked in the last minute. The time is unix seconds; a clock that went backwards lifts
//! the limit rather than blocking a host for as long as it went back.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv6Addr};

use warren_proto::key::NodeKey;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimitConfig {
    /// One token comes back every `interval_ms` (12 s: five attempts a minute).
    pub interval_ms: u64,
    /// Attempts allowed at once from a full bucket.
    pub burst: u32,
    /// Largest number of sources remembered at once.
    pub max_sources: usize,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            interval_ms: 12_000,
            burst: 5,
            max_sources: 65_536,
        }
    }
}

/// An attempt was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("too many join attempts from this address: try again in {} s", retry_after_ms.div_ceil(1000))]
pub struct RateLimited {
    pub retry_after_ms: u64,
}

/// A token bucket per key, in its GCRA form (see the module docs): the one mechanism behind
/// every limit here.
#[derive(Clone, Debug)]
pub struct Gcra<K: Ord + Clone> {
    interval_ms: u64,
    /// How far ahead of `now` a key's arrival time may run: (burst - 1) intervals.
    tolerance_ms: u64,
    max_keys: usize,
    tat: BTreeMap<K, u64>,
    by_tat: BTreeSet<(u64, K)>,
}

impl<K: Ord + Clone> Gcra<K> {
    /// Zero values in `config` are raised to 1.
    pub fn new(config: RateLimitConfig) -> Self {
        let interval_ms = config.interval_ms.max(1);
        Self {
            interval_ms,
            tolerance_ms: interval_ms.saturating_mul(u64::from(config.burst.max(1) - 1)),
            max_keys: config.max_sources.max(1),
            tat: BTreeMap::new(),
            by_tat: BTreeSet::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.tat.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tat.is_empty()
    }

    /// Would an attempt for `key` at `now_ms` be allowed? Changes nothing but forgetting.
    pub fn check(&mut self, key: &K, now_ms: u64) -> Result<(), RateLimited> {
        self.forget_idle(now_ms);
        let tat = self.tat.get(key).copied().unwrap_or(now_ms).max(now_ms);
        let ahead = tat - now_ms;
        if ahead > self.tolerance_ms {
            return Err(RateLimited {
                retry_after_ms: ahead - self.tolerance_ms,
            });
        }
        Ok(())
    }

    /// One attempt for `key` at `now_ms` (any monotonic millisecond clock): allowed and
    /// counted, or refused at no cost.
    pub fn attempt(&mut self, key: K, now_ms: u64) -> Result<(), RateLimited> {
        self.check(&key, now_ms)?;
        let old = self.tat.get(&key).copied();
        let tat = old.unwrap_or(now_ms).max(now_ms);
        match old {
            Some(old) => {
                self.by_tat.remove(&(old, key.clone()));
            }
            None => {
                if self.tat.len() >= self.max_keys {
                    if let Some((_, victim)) = self.by_tat.pop_first() {
                        self.tat.remove(&victim);
                    }
                }
            }
        }
        let next = tat.saturating_add(self.interval_ms);
        self.tat.insert(key.clone(), next);
        self.by_tat.insert((next, key));
        Ok(())
    }

    /// Drops every key whose bucket is full again at `now_ms`.
    pub fn forget_idle(&mut self, now_ms: u64) {
        while let Some((tat, _)) = self.by_tat.first() {
            if *tat > now_ms {
                break;
            }
            if let Some((_, key)) = self.by_tat.pop_first() {
                self.tat.remove(&key);
            }
        }
    }
}

/// Join attempts per source address (see the module docs).
#[derive(Clone, Debug)]
pub struct JoinLimiter {
    by_source: Gcra<IpAddr>,
}

impl Default for JoinLimiter {
    fn default() -> Self {
        Self::new(RateLimitConfig::default())
    }
}

/// The unit a limit applies to: the IPv4 address, or the /64 of an IPv6 address.
fn source_of(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !((1u128 << 64) - 1))),
        },
    }
}

impl JoinLimiter {
    /// Zero values in `config` are raised to 1.
    pub fn new(config: RateLimitConfig) -> Self {
        Self {
            by_source: Gcra::new(config),
        }
    }

    /// Number of sources currently remembered.
    pub fn len(&self) -> usize {
        self.by_source.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_source.is_empty()
    }

    /// Would an attempt from `ip` be allowed now? Changes nothing.
    pub fn check(&mut self, ip: IpAddr, now_ms: u64) -> Result<(), RateLimited> {
        self.by_source.check(&source_of(ip), now_ms)
    }

    /// One join attempt from `ip` at `now_ms` (any monotonic millisecond clock the shell keeps).
    pub fn handle_attempt(&mut self, ip: IpAddr, now_ms: u64) -> Result<(), RateLimited> {
        self.by_source.attempt(source_of(ip), now_ms)
    }

    /// Drops every source whose bucket is full again at `now_ms`.
    pub fn forget_idle(&mut self, now_ms: u64) {
        self.by_source.forget_idle(now_ms)
    }
}

/// Password attempts (joins, new networks, new passwords) per network: a guesser spread over
/// many addresses still gets only ten a minute at one network, while a LAN party of 32 can
/// all join at once.
pub const PER_NETWORK: RateLimitConfig = RateLimitConfig {
    interval_ms: 6_000,
    burst: 32,
    max_sources: 65_536,
};

/// Password attempts over the whole coordinator: each costs tens of milliseconds of CPU, so
/// this is what keeps a flood from many addresses and networks from taking the machine.
pub const GLOBAL: RateLimitConfig = RateLimitConfig {
    interval_ms: 50,
    burst: 40,
    max_sources: 1,
};

/// Why a password attempt was refused before it was checked; the text is what the user sees.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AttemptRefused {
    #[error("{0}")]
    Source(RateLimited),
    #[error(
        "too many password attempts for network {network} in the last minute: try again in {} s",
        retry_after_ms.div_ceil(1000)
    )]
    Network {
        network: String,
        retry_after_ms: u64,
    },
    #[error(
        "the coordinator is checking too many passwords at the moment: try again in {} s",
        retry_after_ms.div_ceil(1000)
    )]
    Busy { retry_after_ms: u64 },
}

/// The limits on password attempts beyond the per-source one ([`JoinLimiter`], which invite
/// joins share): per network and overall.
#[derive(Clone, Debug)]
pub struct PasswordLimiter {
    per_network: Gcra<String>,
    global: Gcra<()>,
}

impl Default for PasswordLimiter {
    fn default() -> Self {
        Self::new(PER_NETWORK, GLOBAL)
    }
}

impl PasswordLimiter {
    pub fn new(per_network: RateLimitConfig, global: RateLimitConfig) -> Self {
        Self {
            per_network: Gcra::new(per_network),
            global: Gcra::new(global),
        }
    }

    /// One password attempt from `ip` at `network` (any spelling: the name is compared in
    /// lowercase, and cut to a name's longest length so a key stays small). It counts against
    /// every limit only when every limit allows it, so a refused attempt costs nothing.
    pub fn attempt(
        &mut self,
        sources: &mut JoinLimiter,
        ip: IpAddr,
        network: &str,
        now_ms: u64,
    ) -> Result<(), AttemptRefused> {
        let mut network = network.to_ascii_lowercase();
        if let Some((cut, _)) = network.char_indices().nth(64) {
            network.truncate(cut);
        }
        sources.check(ip, now_ms).map_err(AttemptRefused::Source)?;
        self.per_network
            .check(&network, now_ms)
            .map_err(|e| AttemptRefused::Network {
                network: network.clone(),
                retry_after_ms: e.retry_after_ms,
            })?;
        self.global
            .check(&(), now_ms)
            .map_err(|e| AttemptRefused::Busy {
                retry_after_ms: e.retry_after_ms,
            })?;
        let counted = sources.handle_attempt(ip, now_ms).is_ok()
            && self.per_network.attempt(network, now_ms).is_ok()
            && self.global.attempt((), now_ms).is_ok();
        debug_assert!(counted, "checked just before");
        Ok(())
    }
}

/// Keys never seen before, registering from one source (IPv4 address or IPv6 /64): each one
/// costs a stored node and an address lease, so they come at a rate, not for free. A LAN
/// party of 32 hosts behind one address gets in at once; more, one every 30 s.
pub const NEW_KEYS: RateLimitConfig = RateLimitConfig {
    interval_ms: 30_000,
    burst: 32,
    max_sources: 65_536,
};

/// A new key was refused; the text is what the user sees.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "too many new hosts registered with this coordinator from this address lately: \
     connect this host again in {} s",
    retry_after_ms.div_ceil(1000)
)]
pub struct TooManyNewKeys {
    pub retry_after_ms: u64,
}

/// First registrations per source ([`NEW_KEYS`]); a known key is never limited here.
#[derive(Clone, Debug)]
pub struct NewKeyLimiter {
    by_source: Gcra<IpAddr>,
}

impl Default for NewKeyLimiter {
    fn default() -> Self {
        Self::new(NEW_KEYS)
    }
}

impl NewKeyLimiter {
    pub fn new(config: RateLimitConfig) -> Self {
        Self {
            by_source: Gcra::new(config),
        }
    }

    /// A key never seen before registers from `ip` at `now_ms`.
    pub fn new_key(&mut self, ip: IpAddr, now_ms: u64) -> Result<(), TooManyNewKeys> {
        self.by_source
            .attempt(source_of(ip), now_ms)
            .map_err(|e| TooManyNewKeys {
                retry_after_ms: e.retry_after_ms,
            })
    }

    pub fn len(&self) -> usize {
        self.by_source.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_source.is_empty()
    }
}

/// Seconds between two asks to move sent to one host.
pub const CLASH_INTERVAL: u64 = 60;

/// When each host was last asked to move (see the module docs).
#[derive(Clone, Debug, Default)]
pub struct ClashLimiter {
    asked: BTreeMap<NodeKey, u64>,
    by_time: BTreeSet<(u64, NodeKey)>,
}

impl ClashLimiter {
    /// Records an ask to `target` at `now` if it may be sent; else the seconds to wait.
    pub fn ask(&mut self, target: NodeKey, now: u64) -> Result<(), u64> {
        self.forget_idle(now);
        if let Some(&last) = self.asked.get(&target) {
            if last <= now {
                return Err(last.saturating_add(CLASH_INTERVAL) - now);
            }
            self.by_time.remove(&(last, target));
        }
        self.asked.insert(target, now);
        self.by_time.insert((now, target));
        Ok(())
    }

    /// Number of hosts currently remembered.
    pub fn len(&self) -> usize {
        self.asked.len()
    }

    pub fn is_empty(&self) -> bool {
        self.asked.is_empty()
    }

    fn forget_idle(&mut self, now: u64) {
        while let Some(&(at, target)) = self.by_time.first() {
            if at.saturating_add(CLASH_INTERVAL) > now {
                break;
            }
            self.by_time.pop_first();
            self.asked.remove(&target);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn a_host_is_asked_to_move_once_a_minute_and_then_forgotten() {
        let (a, b) = (NodeKey([1; 32]), NodeKey([2; 32]));
        let mut l = ClashLimiter::default();
        l.ask(a, 1_000).unwrap();
        assert_eq!(l.ask(a, 1_000), Err(60));
        assert_eq!(l.ask(a, 1_059), Err(1));
        // Another host is not affected.
        l.ask(b, 1_059).unwrap();
        l.ask(a, 1_060).unwrap();
        assert_eq!(l.len(), 2);
        // A quiet minute forgets everyone.
        l.ask(b, 1_200).unwrap();
        assert_eq!(l.len(), 1);
        // A clock that went back does not block a.
        l.ask(a, 1_100).unwrap();
        l.ask(a, 1_000).unwrap();
        assert_eq!(l.ask(a, 1_030), Err(30));
    }

    fn v4(d: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, d))
    }

    #[test]
    fn burst_then_refusal_then_recovery() {
        let mut l = JoinLimiter::default();
        let t0 = 1_000_000;
        for _ in 0..5 {
            l.handle_attempt(v4(1), t0).unwrap();
        }
        let err = l.handle_attempt(v4(1), t0).unwrap_err();
        assert_eq!(err.retry_after_ms, 12_000);
        assert_eq!(
            err.to_string(),
            "too many join attempts from this address: try again in 12 s"
        );
        // Refused attempts cost nothing: still exactly 12 s to wait.
        assert_eq!(
            l.handle_attempt(v4(1), t0 + 1_000),
            Err(RateLimited {
                retry_after_ms: 11_000
            })
        );
        // Another source is not affected.
        l.handle_attempt(v4(2), t0).unwrap();
        // One token back after 12 s, and only one.
        l.handle_attempt(v4(1), t0 + 12_000).unwrap();
        assert!(l.handle_attempt(v4(1), t0 + 12_000).is_err());
        // A minute of quiet refills the whole burst, and the source is forgotten.
        let later = t0 + 12_000 + 60_000;
        l.forget_idle(later);
        assert_eq!(l.len(), 0);
        for _ in 0..5 {
            l.handle_attempt(v4(1), later).unwrap();
        }
        assert!(l.handle_attempt(v4(1), later).is_err());
    }

    #[test]
    fn steady_rate_of_five_per_minute_is_never_refused() {
        let mut l = JoinLimiter::default();
        for i in 0..100u64 {
            l.handle_attempt(v4(1), i * 12_000).unwrap();
        }
    }

    #[test]
    fn sources_table_table() {
        let cases: &[(&str, &str)] = &[
            ("192.0.2.7", "192.0.2.7"),
            ("::ffff:192.0.2.7", "192.0.2.7"),
            ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::"),
            ("2001:db8:1:2:bbbb::9", "2001:db8:1:2::"),
            ("2001:db8:1:3::1", "2001:db8:1:3::"),
        ];
        for (ip, want) in cases {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(source_of(ip), want.parse::<IpAddr>().unwrap(), "{ip}");
        }
        // Two hosts in one /64 share a bucket.
        let mut l = JoinLimiter::new(RateLimitConfig {
            burst: 1,
            ..Default::default()
        });
        l.handle_attempt("2001:db8::1".parse().unwrap(), 0).unwrap();
        assert!(l.handle_attempt("2001:db8::2".parse().unwrap(), 0).is_err());
        l.handle_attempt("2001:db8:0:1::2".parse().unwrap(), 0)
            .unwrap();
    }

    #[test]
    fn table_stays_bounded_under_a_flood() {
        let mut l = JoinLimiter::new(RateLimitConfig {
            max_sources: 100,
            ..Default::default()
        });
        for i in 0..10_000u32 {
            let ip = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i));
            l.handle_attempt(ip, u64::from(i)).unwrap();
            assert!(l.len() <= 100);
            assert_eq!(l.len(), l.by_source.by_tat.len());
        }
        assert_eq!(l.len(), 100);
        // The most recent sources are the ones remembered.
        let last = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + 9_999));
        assert!(l.by_source.tat.contains_key(&last));
        // Once everyone has refilled, the table empties itself on the next attempt.
        l.handle_attempt(v4(1), 10_000 + 12_000).unwrap();
        assert_eq!(l.len(), 1);
    }

    /// Many addresses guessing at one network get its burst, then ten a minute between them;
    /// other networks are not affected; a refusal costs nothing anywhere.
    #[test]
    fn password_attempts_are_limited_per_network() {
        let mut sources = JoinLimiter::default();
        let mut l = PasswordLimiter::default();
        let t0 = 5_000_000;
        for i in 0..PER_NETWORK.burst as u8 {
            l.attempt(&mut sources, v4(i), "Net", t0).unwrap();
        }
        let refused = l.attempt(&mut sources, v4(200), "net", t0).unwrap_err();
        assert_eq!(
            refused,
            AttemptRefused::Network {
                network: "net".into(),
                retry_after_ms: 6_000
            }
        );
        assert_eq!(
            refused.to_string(),
            "too many password attempts for network net in the last minute: try again in 6 s"
        );
        // The refused source paid nothing: its whole burst is left for another network.
        for _ in 0..5 {
            l.attempt(&mut sources, v4(200), "other", t0).unwrap();
        }
        assert!(matches!(
            l.attempt(&mut sources, v4(200), "third", t0),
            Err(AttemptRefused::Source(_))
        ));
        // One more a 6 s later.
        l.attempt(&mut sources, v4(201), "net", t0 + 6_000).unwrap();
        assert!(l.attempt(&mut sources, v4(202), "net", t0 + 6_000).is_err());
        // A huge name is one short key.
        let long = "x".repeat(100_000);
        l.attempt(&mut sources, v4(203), &long, t0 + 6_000).unwrap();
        assert!(l.per_network.tat.keys().all(|k| k.len() <= 64));
    }

    /// Past the global rate, every network and address waits, and says why.
    #[test]
    fn password_attempts_are_limited_overall() {
        let mut sources = JoinLimiter::default();
        let mut l = PasswordLimiter::default();
        let t0 = 5_000_000;
        let burst = GLOBAL.burst;
        for i in 0..burst {
            let ip = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i));
            l.attempt(&mut sources, ip, &format!("n{i}"), t0).unwrap();
        }
        let refused = l.attempt(&mut sources, v4(1), "fresh", t0).unwrap_err();
        assert_eq!(
            refused,
            AttemptRefused::Busy {
                retry_after_ms: GLOBAL.interval_ms
            }
        );
        assert_eq!(
            refused.to_string(),
            "the coordinator is checking too many passwords at the moment: try again in 1 s"
        );
        // Neither the network nor the source paid for it.
        l.attempt(&mut sources, v4(1), "fresh", t0 + GLOBAL.interval_ms)
            .unwrap();
        assert_eq!(l.per_network.len(), burst as usize + 1);
    }

    #[test]
    fn new_keys_come_at_a_rate_per_source() {
        let mut l = NewKeyLimiter::default();
        let t0 = 9_000_000;
        for _ in 0..NEW_KEYS.burst {
            l.new_key(v4(1), t0).unwrap();
        }
        let refused = l.new_key(v4(1), t0).unwrap_err();
        assert_eq!(refused.retry_after_ms, 30_000);
        assert_eq!(
            refused.to_string(),
            "too many new hosts registered with this coordinator from this address lately: \
             connect this host again in 30 s"
        );
        // The same /64, another address: the same source; another source is not affected.
        let mut l6 = NewKeyLimiter::new(RateLimitConfig {
            burst: 1,
            ..NEW_KEYS
        });
        l6.new_key("2001:db8::1".parse().unwrap(), t0).unwrap();
        assert!(l6.new_key("2001:db8::2".parse().unwrap(), t0).is_err());
        l.new_key(v4(2), t0).unwrap();
        l.new_key(v4(1), t0 + 30_000).unwrap();
        assert!(l.new_key(v4(1), t0 + 30_000).is_err());
    }
}
