//! Seeds and the one random generator of a world: every random choice of a run (keys, NAT
//! ports, loss, tokens, jitter) comes from it, so a seed replays a run.
//!
//! `WARREN_SIM_SEED=N` replaces the seeds a test would use by `N` alone; a world that panics
//! prints its seed and that variable, so a failing seed is rerun with one command.

use std::time::Duration;

/// The environment variable that picks the seed.
pub const SEED_VAR: &str = "WARREN_SIM_SEED";

/// `WARREN_SIM_SEED` if set (decimal or 0x-hex), else `default`.
pub fn seed_or(default: u64) -> u64 {
    env_seed().unwrap_or(default)
}

/// `WARREN_SIM_SEED` alone if set, else every seed of `default`: for tests that sweep seeds.
pub fn seeds(default: impl IntoIterator<Item = u64>) -> Vec<u64> {
    match env_seed() {
        Some(s) => vec![s],
        None => default.into_iter().collect(),
    }
}

fn env_seed() -> Option<u64> {
    let v = std::env::var(SEED_VAR).ok()?;
    let v = v.trim();
    let parsed = match v.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => v.parse(),
    };
    Some(parsed.unwrap_or_else(|e| panic!("{SEED_VAR}={v:?}: {e}")))
}

/// Splitmix64: small, fast, and the same on every platform.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// True with probability `percent` / 100.
    pub fn percent(&mut self, percent: u32) -> bool {
        percent > 0 && self.below(100) < u64::from(percent)
    }

    pub fn bytes<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        for chunk in out.chunks_mut(8) {
            let v = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
        out
    }

    /// A port in the dynamic range 1024..65535.
    pub fn port(&mut self) -> u16 {
        1024 + self.below(64_511) as u16
    }

    pub fn jitter(&mut self, max: Duration) -> Duration {
        Duration::from_micros(self.below(max.as_micros() as u64 + 1))
    }
}

/// Prints the seed when the world that holds it is dropped by a panic (a failed assertion).
#[derive(Debug)]
pub struct SeedReport {
    pub seed: u64,
}

impl Drop for SeedReport {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let test = std::thread::current()
                .name()
                .unwrap_or("the failing test")
                .to_string();
            eprintln!(
                "warren-sim: {test} failed with seed {seed}; rerun it alone with \
                 {SEED_VAR}={seed} cargo test -p warren-sim -- {test}",
                seed = self.seed
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_numbers_and_another_does_not() {
        let a: Vec<u64> = (0..4)
            .map({
                let mut r = Rng::new(7);
                move |_| r.next_u64()
            })
            .collect();
        let mut r = Rng::new(7);
        assert_eq!(a, (0..4).map(|_| r.next_u64()).collect::<Vec<_>>());
        let mut other = Rng::new(8);
        assert_ne!(a[0], other.next_u64());
        let mut r = Rng::new(1);
        assert!((0..1000).all(|_| r.below(10) < 10));
        assert!((0..1000).all(|_| r.port() >= 1024));
        assert!(!(0..1000).any(|_| r.percent(0)));
    }
}
