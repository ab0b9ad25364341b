//! Invites: join secrets for one network, handed out by its members.
//!
//! - A secret is 16 random bytes from the caller (the shell's RNG); the coordinator keeps only
//!   a BLAKE2s hash of it. The secret is high-entropy, so a fast hash is enough: nobody can
//!   guess one back from the hash, unlike a password, which needs Argon2.
//! - An invite is reusable by any number of hosts until it expires (a LAN party shares one
//!   code), and it is only good for its own network.
//! - The lifetime is clamped to [`MIN_TTL`]..=[`MAX_TTL`]. A network holds at most
//!   [`MAX_LIVE_PER_NETWORK`] unexpired invites, so one member cannot grow the store without
//!   bound. Expired ones stay (so a late joiner hears "expired", not "invalid") until
//!   [`Invites::prune`] drops them.

use std::collections::BTreeMap;
use std::fmt;

use blake2::{Blake2s256, Digest};
use warren_proto::invite::{parse_secret, SECRET_LEN};

use crate::records::InviteRecord;
use warren_proto::key::NodeKey;

/// The longest lifetime an invite can have: 30 days.
pub const MAX_TTL: u64 = 30 * 24 * 3600;
/// The shortest: one second (a zero TTL would make an invite that is never valid).
pub const MIN_TTL: u64 = 1;
/// Unexpired invites one network can have at once.
pub const MAX_LIVE_PER_NETWORK: usize = 64;
/// The `expires` of an invite that lasts until it is revoked (asked for with a TTL of 0).
pub const NEVER: u64 = u64::MAX;
/// Hex digits of an invite's id: 48 bits of its hash, unique among a network's 64 invites
/// with overwhelming odds, short enough to type.
pub const ID_HEX_LEN: usize = 12;

/// Domain separation: the same 16 bytes hashed for another purpose give another value.
const HASH_CONTEXT: &[u8] = b"warren invite secret v1";

/// The BLAKE2s-256 hash of an invite secret: what the coordinator stores and looks up.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SecretHash(pub [u8; 32]);

impl SecretHash {
    pub fn of(secret: &[u8; SECRET_LEN]) -> Self {
        let mut h = Blake2s256::new();
        h.update(HASH_CONTEXT);
        h.update(secret);
        Self(h.finalize().into())
    }

    /// Lowercase hex, as the store keeps it.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The id users see and revoke by: the start of [`SecretHash::to_hex`].
    pub fn short_id(&self) -> String {
        self.to_hex()[..ID_HEX_LEN].to_string()
    }

    pub fn from_hex(s: &str) -> Option<Self> {
        if s.len() != 64 || !s.is_ascii() {
            return None;
        }
        let mut out = [0u8; 32];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
        }
        Some(Self(out))
    }
}

impl fmt::Debug for SecretHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretHash({})", self.to_hex())
    }
}

/// The lifetime actually granted for a requested `ttl_secs`.
pub fn clamp_ttl(ttl_secs: u64) -> u64 {
    ttl_secs.clamp(MIN_TTL, MAX_TTL)
}

/// When an invite asked for at `now` with `ttl_secs` expires: 0 means until revoked.
pub fn expiry(now: u64, ttl_secs: u64) -> u64 {
    if ttl_secs == 0 {
        NEVER
    } else {
        now.saturating_add(clamp_ttl(ttl_secs))
    }
}

/// Why a secret does not admit a host to a network.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InviteProblem {
    /// Malformed, unknown, or made for another network: all look the same to the joiner, so
    /// a stranger cannot learn which secrets exist for which network.
    Invalid,
    /// Right secret and network, but `now` is past `expires`.
    Expired { expires: u64 },
}

/// The live set of invites, by secret hash.
#[derive(Clone, Debug, Default)]
pub struct Invites {
    by_hash: BTreeMap<SecretHash, InviteRecord>,
}

impl Invites {
    /// Adds `record`; false (and nothing changed) if its hash is already known.
    pub fn insert(&mut self, record: InviteRecord) -> bool {
        if self.by_hash.contains_key(&record.hash) {
            return false;
        }
        self.by_hash.insert(record.hash, record);
        true
    }

    pub fn contains(&self, hash: &SecretHash) -> bool {
        self.by_hash.contains_key(hash)
    }

    /// Whether `secret` (as the control protocol carries it) admits a host to `network` at
    /// `now`. An invite is good up to and including its `expires` second.
    pub fn check(&self, network: &str, secret: &str, now: u64) -> Result<(), InviteProblem> {
        let secret = parse_secret(secret.trim()).ok_or(InviteProblem::Invalid)?;
        match self.by_hash.get(&SecretHash::of(&secret)) {
            Some(inv) if inv.network == network => {
                if now > inv.expires {
                    Err(InviteProblem::Expired {
                        expires: inv.expires,
                    })
                } else {
                    Ok(())
                }
            }
            _ => Err(InviteProblem::Invalid),
        }
    }

    /// The network a well-formed, known `secret` admits to (expired or not).
    pub fn network_of(&self, secret: &str) -> Option<String> {
        let secret = parse_secret(secret.trim())?;
        self.by_hash
            .get(&SecretHash::of(&secret))
            .map(|i| i.network.clone())
    }

    /// Unexpired invites of `network` at `now`.
    pub fn live_count(&self, network: &str, now: u64) -> usize {
        self.by_hash
            .values()
            .filter(|i| i.network == network && now <= i.expires)
            .count()
    }

    /// The invites expired at `now`, without removing them (an operation that may still fail
    /// must not change anything).
    pub fn expired(&self, now: u64) -> Vec<SecretHash> {
        self.by_hash
            .values()
            .filter(|i| now > i.expires)
            .map(|i| i.hash)
            .collect()
    }

    /// Removes the invites expired at `now`; returns their hashes, sorted.
    pub fn prune(&mut self, now: u64) -> Vec<SecretHash> {
        let gone = self.expired(now);
        for h in &gone {
            self.by_hash.remove(h);
        }
        gone
    }

    pub fn iter(&self) -> impl Iterator<Item = &InviteRecord> {
        self.by_hash.values()
    }

    pub fn remove(&mut self, hash: &SecretHash) -> Option<InviteRecord> {
        self.by_hash.remove(hash)
    }

    /// The hashes of `network`'s invites (all of them, or those `creator` made), sorted.
    pub fn of_network(&self, network: &str, creator: Option<NodeKey>) -> Vec<SecretHash> {
        self.by_hash
            .values()
            .filter(|i| i.network == network && creator.is_none_or(|c| i.created_by == c))
            .map(|i| i.hash)
            .collect()
    }

    /// Moves `from`'s invites to network `to` (a rename keeps codes working: they name the
    /// network only to find it, and the coordinator looks them up by hash).
    pub fn rename_network(&mut self, from: &str, to: &str) {
        for i in self.by_hash.values_mut().filter(|i| i.network == from) {
            i.network = to.to_owned();
        }
    }
}

/// `unix` seconds as `YYYY-MM-DD HH:MM:SS UTC`, for messages (no time zone database needed).
pub fn utc(unix: u64) -> String {
    let (days, secs) = (unix / 86_400, unix % 86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's `civil_from_days`,
/// for non-negative days).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::key;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;

    const T0: u64 = 1_700_000_000;

    fn text(secret: &[u8; SECRET_LEN]) -> String {
        URL_SAFE_NO_PAD.encode(secret)
    }

    fn record(secret: [u8; SECRET_LEN], network: &str, expires: u64) -> InviteRecord {
        InviteRecord {
            hash: SecretHash::of(&secret),
            network: network.into(),
            created_by: key(1),
            created_at: T0,
            expires,
        }
    }

    #[test]
    fn hash_is_keyed_to_the_secret_and_round_trips_as_hex() {
        let a = SecretHash::of(&[1; SECRET_LEN]);
        let b = SecretHash::of(&[2; SECRET_LEN]);
        assert_ne!(a, b);
        // Not the bare secret, nor an unseparated hash of it.
        assert_ne!(&a.0[..SECRET_LEN], &[1; SECRET_LEN]);
        assert_ne!(a.0, <[u8; 32]>::from(Blake2s256::digest([1; SECRET_LEN])));
        let hex = a.to_hex();
        assert_eq!(hex.len(), 64);
        assert_eq!(SecretHash::from_hex(&hex), Some(a));
        assert_eq!(SecretHash::from_hex(&hex[1..]), None);
        assert_eq!(SecretHash::from_hex(&format!("zz{}", &hex[2..])), None);
        assert_eq!(SecretHash::from_hex(&"é".repeat(32)), None);
    }

    #[test]
    fn ttl_is_clamped() {
        assert_eq!(clamp_ttl(0), 1);
        assert_eq!(clamp_ttl(3600), 3600);
        assert_eq!(clamp_ttl(MAX_TTL), MAX_TTL);
        assert_eq!(clamp_ttl(u64::MAX), 30 * 86_400);
    }

    #[test]
    fn check_table() {
        let mut inv = Invites::default();
        assert!(inv.insert(record([1; SECRET_LEN], "lan", T0 + 100)));
        assert!(inv.insert(record([2; SECRET_LEN], "work", T0 + 100)));
        assert!(!inv.insert(record([1; SECRET_LEN], "work", T0 + 500)));
        let good = text(&[1; SECRET_LEN]);
        // (what, network, secret, now, answer)
        type Case<'a> = (&'a str, &'a str, &'a str, u64, Result<(), InviteProblem>);
        let cases: &[Case] = &[
            ("valid", "lan", &good, T0, Ok(())),
            ("last second", "lan", &good, T0 + 100, Ok(())),
            (
                "padded by copy-paste",
                "lan",
                &format!(" {good}\n"),
                T0,
                Ok(()),
            ),
            (
                "expired",
                "lan",
                &good,
                T0 + 101,
                Err(InviteProblem::Expired { expires: T0 + 100 }),
            ),
            (
                "other network's secret",
                "work",
                &good,
                T0,
                Err(InviteProblem::Invalid),
            ),
            (
                "unknown secret",
                "lan",
                &text(&[3; SECRET_LEN]),
                T0,
                Err(InviteProblem::Invalid),
            ),
            ("not base64", "lan", "!!!", T0, Err(InviteProblem::Invalid)),
            (
                "too short",
                "lan",
                &good[..10],
                T0,
                Err(InviteProblem::Invalid),
            ),
            ("empty", "lan", "", T0, Err(InviteProblem::Invalid)),
        ];
        for (what, net, secret, now, want) in cases {
            assert_eq!(inv.check(net, secret, *now), *want, "{what}");
        }
    }

    #[test]
    fn live_count_and_prune() {
        let mut inv = Invites::default();
        inv.insert(record([1; SECRET_LEN], "lan", T0 + 10));
        inv.insert(record([2; SECRET_LEN], "lan", T0 + 20));
        inv.insert(record([3; SECRET_LEN], "work", T0 + 5));
        assert_eq!(inv.live_count("lan", T0), 2);
        assert_eq!(inv.live_count("lan", T0 + 10), 2);
        assert_eq!(inv.live_count("lan", T0 + 11), 1);
        assert_eq!(inv.live_count("work", T0 + 11), 0);
        let mut want = vec![
            SecretHash::of(&[1; SECRET_LEN]),
            SecretHash::of(&[3; SECRET_LEN]),
        ];
        want.sort();
        assert_eq!(inv.expired(T0 + 11), want);
        assert_eq!(inv.iter().count(), 3, "expired() removes nothing");
        assert_eq!(inv.prune(T0 + 11), want);
        assert_eq!(inv.iter().count(), 1);
        assert!(inv.contains(&SecretHash::of(&[2; SECRET_LEN])));
        assert!(inv.prune(T0 + 11).is_empty());
    }

    #[test]
    fn utc_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(T0), "2023-11-14 22:13:20 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc(4_107_542_399), "2100-02-28 23:59:59 UTC");
        assert_eq!(utc(4_107_542_400), "2100-03-01 00:00:00 UTC");
    }
}
