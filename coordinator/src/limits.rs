//! The coordinator's limits as an operator sets them (flags, or `WARREN_COORDINATOR_ARGS` in
//! `/etc/default/warren-coordinator`): how fast hosts may try passwords and register, and how
//! much the relay carries. The defaults suit a coordinator on a home PC or a small server.

use std::time::Duration;
use warren_coordinator_core::ratelimit::{GLOBAL, NEW_KEYS, PER_NETWORK};
use warren_coordinator_core::{RateLimitConfig, RelayConfig};

#[derive(clap::Args, Debug, Clone)]
pub struct Limits {
    /// Join attempts (password or invite) from one address: a burst, then one more per
    /// interval
    #[arg(long, value_name = "BURST/INTERVAL", default_value = "5/12s", value_parser = parse_rate)]
    pub join_limit: Rate,
    /// Password attempts at one network, from anywhere
    #[arg(long, value_name = "BURST/INTERVAL", default_value = "32/6s", value_parser = parse_rate)]
    pub password_limit_network: Rate,
    /// Password attempts at the whole coordinator (each costs tens of milliseconds of CPU)
    #[arg(long, value_name = "BURST/INTERVAL", default_value = "40/50ms", value_parser = parse_rate)]
    pub password_limit_total: Rate,
    /// Hosts never seen before, registering from one address (IPv6: one /64)
    #[arg(long, value_name = "BURST/INTERVAL", default_value = "32/30s", value_parser = parse_rate)]
    pub new_hosts_limit: Rate,
    /// What one host may send through the relay, per second (e.g. 8MiB, 500KiB, 10MB); 0: no
    /// limit per host. The default carries a remote desktop (~25 Mbit/s, more in bursts) and a
    /// game from one host at full speed
    #[arg(long, value_name = "BYTES", default_value = "8MiB", value_parser = parse_bytes)]
    pub relay_rate: u64,
    /// What one host may send through the relay at once after a quiet spell
    #[arg(long, value_name = "BYTES", default_value = "16MiB", value_parser = parse_bytes)]
    pub relay_burst: u64,
    /// What all hosts together may send through the relay, per second; 0: no limit. On a home
    /// connection, set it below the upload speed (e.g. 3MB for a 40 Mbit/s uplink) so relayed
    /// traffic leaves room for the household
    #[arg(long, value_name = "BYTES", default_value = "0", value_parser = parse_bytes)]
    pub relay_total_rate: u64,
}

/// A token bucket as an operator writes it: `BURST/INTERVAL`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub burst: u32,
    pub interval: Duration,
}

impl Rate {
    /// The limiter's configuration, remembering at most `max_sources` keys.
    pub fn config(self, max_sources: usize) -> RateLimitConfig {
        RateLimitConfig {
            interval_ms: (self.interval.as_millis() as u64).max(1),
            burst: self.burst,
            max_sources,
        }
    }
}

impl Limits {
    pub fn join(&self) -> RateLimitConfig {
        self.join_limit
            .config(RateLimitConfig::default().max_sources)
    }

    pub fn password_network(&self) -> RateLimitConfig {
        self.password_limit_network.config(PER_NETWORK.max_sources)
    }

    pub fn password_total(&self) -> RateLimitConfig {
        self.password_limit_total.config(GLOBAL.max_sources)
    }

    pub fn new_hosts(&self) -> RateLimitConfig {
        self.new_hosts_limit.config(NEW_KEYS.max_sources)
    }

    pub fn relay(&self) -> RelayConfig {
        RelayConfig {
            rate_bytes_per_sec: self.relay_rate,
            burst_bytes: self.relay_burst,
            total_bytes_per_sec: (self.relay_total_rate > 0).then_some(self.relay_total_rate),
        }
    }
}

pub fn parse_rate(s: &str) -> Result<Rate, String> {
    let bad = || format!("{s:?}: expected BURST/INTERVAL, e.g. 5/12s, 40/50ms or 10/1m");
    let (burst, interval) = s.split_once('/').ok_or_else(bad)?;
    let burst: u32 = burst.trim().parse().map_err(|_| bad())?;
    let interval = interval.trim();
    let (number, unit) = interval.split_at(
        interval
            .find(|c: char| !c.is_ascii_digit())
            .ok_or_else(bad)?,
    );
    let n: u64 = number.parse().map_err(|_| bad())?;
    let interval = match unit {
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        "m" | "min" => Duration::from_secs(n * 60),
        "h" => Duration::from_secs(n * 3600),
        _ => return Err(bad()),
    };
    if burst == 0 || interval.is_zero() {
        return Err(format!("{s:?}: the burst and the interval must be above 0"));
    }
    Ok(Rate { burst, interval })
}

/// A byte count: a number with an optional unit (B, KB, MB, GB, KiB, MiB, GiB).
pub fn parse_bytes(s: &str) -> Result<u64, String> {
    let bad = || format!("{s:?}: expected a number of bytes, e.g. 4MiB, 500KiB or 10MB");
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let n: u64 = number.parse().map_err(|_| bad())?;
    let unit = match unit.trim() {
        "" | "B" => 1,
        "KB" | "kB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        _ => return Err(bad()),
    };
    n.checked_mul(unit).ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        limits: Limits,
    }

    #[test]
    fn the_defaults_are_the_cores_and_flags_change_them() {
        let d = Cli::parse_from(["x"]).limits;
        assert_eq!(d.join(), RateLimitConfig::default());
        assert_eq!(d.password_network(), PER_NETWORK);
        assert_eq!(d.password_total(), GLOBAL);
        assert_eq!(d.new_hosts(), NEW_KEYS);
        assert_eq!(d.relay(), RelayConfig::default());
        let l = Cli::parse_from([
            "x",
            "--join-limit",
            "100/1s",
            "--new-hosts-limit",
            "10000/1ms",
            "--relay-rate",
            "100MiB",
            "--relay-total-rate",
            "1GB",
        ])
        .limits;
        assert_eq!((l.join().burst, l.join().interval_ms), (100, 1000));
        assert_eq!(l.new_hosts().burst, 10_000);
        assert_eq!(l.relay().rate_bytes_per_sec, 100 << 20);
        assert_eq!(l.relay().total_bytes_per_sec, Some(1_000_000_000));
        let none = Cli::parse_from(["x", "--relay-rate", "0", "--relay-total-rate", "0"]).limits;
        assert_eq!(none.relay().rate_bytes_per_sec, 0, "0 is no limit per host");
        assert_eq!(none.relay().total_bytes_per_sec, None);
    }

    #[test]
    fn bad_values_say_what_is_expected() {
        for bad in ["5", "5/", "x/1s", "5/1y", "0/1s", "5/0s"] {
            assert!(parse_rate(bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse_rate("5/12s"),
            Ok(Rate {
                burst: 5,
                interval: Duration::from_secs(12)
            })
        );
        assert!(parse_bytes("4 parsecs").unwrap_err().contains("e.g. 4MiB"));
        assert_eq!(parse_bytes("4MiB"), Ok(4 << 20));
        assert_eq!(parse_bytes("512"), Ok(512));
    }
}
