//! The figures of a run and the table they are printed as.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::time::Duration;

#[derive(Default)]
pub struct Outcome {
    pub scenario: String,
    pub notes: Vec<String>,
    pub hosts: usize,
    pub connected: usize,
    pub connect_errors: Counted,
    pub welcome_latency: Vec<Duration>,
    pub joins_ok: usize,
    pub joins_failed: usize,
    pub joined_after_error: usize,
    pub join_errors: Counted,
    pub refusals: Counted,
    /// From the start until the last host's join was answered (only if all were accepted).
    pub all_joined: Option<Duration>,
    pub last_join: Option<Duration>,
    pub full_hosts: usize,
    /// From the start until every host saw all its network's other hosts online.
    pub all_full: Option<Duration>,
    pub change_expected: usize,
    pub change_latency: Vec<Duration>,
    pub rss_kb: Option<(u64, u64)>,
    pub peak_rss_kb: u64,
    pub loadgen_rss_kb: Option<u64>,
    pub disconnects: Counted,
    pub received: BTreeMap<&'static str, u64>,
    pub restart: Option<Restart>,
    /// CPU seconds used during the run by the coordinator and by the load generator.
    pub coordinator_cpu: Option<f64>,
    pub loadgen_cpu: Option<f64>,
    pub wall: Duration,
    pub coordinator_warnings: Vec<String>,
}

#[derive(Default)]
pub struct Restart {
    pub hosts: usize,
    pub reconnected: usize,
    pub all_back: Option<Duration>,
    pub full_hosts: usize,
    pub expected_full: usize,
    pub all_full: Option<Duration>,
    pub rss_kb: Option<(u64, u64)>,
    pub connect_errors: Counted,
    /// From the kill until the new process was ready (its key read back).
    pub ready: Option<Duration>,
    /// From the kill until each returning host's Welcome.
    pub welcomes: Vec<Duration>,
}

/// Error texts and how often each came, with numbers masked so that the same error from
/// different hosts (other addresses, other waits) counts as one.
#[derive(Default)]
pub struct Counted(pub BTreeMap<String, usize>);

impl Counted {
    pub fn add(&mut self, text: &str) {
        *self.0.entry(mask_numbers(text)).or_default() += 1;
    }

    pub fn total(&self) -> usize {
        self.0.values().sum()
    }

    fn lines(&self, out: &mut String, title: &str) {
        if self.0.is_empty() {
            return;
        }
        let _ = writeln!(out, "{title}:");
        let mut by_count: Vec<_> = self.0.iter().collect();
        by_count.sort_by(|a, b| b.1.cmp(a.1));
        for (text, n) in by_count.iter().take(12) {
            let _ = writeln!(out, "  {n:>6} × {text}");
        }
        if by_count.len() > 12 {
            let _ = writeln!(out, "  … and {} other texts", by_count.len() - 12);
        }
    }
}

fn mask_numbers(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_number = false;
    for c in text.chars() {
        if c.is_ascii_digit() {
            if !in_number {
                out.push('#');
            }
            in_number = true;
        } else {
            in_number = false;
            out.push(c);
        }
    }
    out
}

/// The `q` quantile (0..=1) of `v`, nearest rank.
pub fn quantile(v: &[Duration], q: f64) -> Option<Duration> {
    if v.is_empty() {
        return None;
    }
    let mut s = v.to_vec();
    s.sort();
    let rank = ((s.len() as f64 * q).ceil() as usize).clamp(1, s.len());
    Some(s[rank - 1])
}

fn secs(d: Option<Duration>) -> String {
    match d {
        Some(d) if d < Duration::from_secs(1) => format!("{} ms", d.as_millis()),
        Some(d) => format!("{:.2} s", d.as_secs_f64()),
        None => "—".into(),
    }
}

fn row(out: &mut String, k: &str, v: String) {
    let _ = writeln!(out, "| {k} | {v} |");
}

fn mb(kb: u64) -> String {
    format!("{:.0} MB", kb as f64 / 1024.0)
}

impl Outcome {
    pub fn table(&self) -> String {
        let mut out = String::new();
        row(&mut out, "scenario", self.scenario.clone());
        let _ = writeln!(out, "|---|---|");
        row(
            &mut out,
            "connected (Welcome received)",
            format!(
                "{}/{} (connect attempts failed: {}; first Welcome after the host starts: p50 {} p99 {})",
                self.connected,
                self.hosts,
                self.connect_errors.total(),
                secs(quantile(&self.welcome_latency, 0.5)),
                secs(quantile(&self.welcome_latency, 0.99)),
            ),
        );
        row(
            &mut out,
            "joins ok / failed",
            format!(
                "{} / {}{}",
                self.joins_ok,
                self.joins_failed,
                if self.joined_after_error > 0 {
                    format!(
                        " ({} took effect though their answer was lost)",
                        self.joined_after_error
                    )
                } else {
                    String::new()
                }
            ),
        );
        row(
            &mut out,
            "time until all joined",
            match self.all_joined {
                Some(d) => secs(Some(d)),
                None => format!("never (last accepted join at {})", secs(self.last_join)),
            },
        );
        row(
            &mut out,
            "every host sees all its peers online",
            match self.all_full {
                Some(d) => secs(Some(d)),
                None => format!("never: {}/{} hosts did", self.full_hosts, self.hosts),
            },
        );
        row(
            &mut out,
            "endpoint change reached peers",
            format!(
                "{}/{} — p50 {} p99 {} max {}",
                self.change_latency.len(),
                self.change_expected,
                secs(quantile(&self.change_latency, 0.5)),
                secs(quantile(&self.change_latency, 0.99)),
                secs(quantile(&self.change_latency, 1.0)),
            ),
        );
        row(
            &mut out,
            "coordinator RSS at the end / peak",
            match self.rss_kb {
                Some((rss, hwm)) => format!("{} / {}", mb(rss), mb(hwm.max(self.peak_rss_kb))),
                None => "unknown (not our process)".into(),
            },
        );
        if let Some(r) = &self.restart {
            row(
                &mut out,
                "restart: hosts back",
                format!(
                    "{}/{} in {}",
                    r.reconnected,
                    r.hosts,
                    match r.all_back {
                        Some(d) => secs(Some(d)),
                        None => "— (not all)".into(),
                    }
                ),
            );
            row(
                &mut out,
                "restart: timeline after the kill",
                format!(
                    "coordinator ready {}; hosts back p10 {} p50 {} p90 {} p99 {}",
                    secs(r.ready),
                    secs(quantile(&r.welcomes, 0.1)),
                    secs(quantile(&r.welcomes, 0.5)),
                    secs(quantile(&r.welcomes, 0.9)),
                    secs(quantile(&r.welcomes, 0.99)),
                ),
            );
            row(
                &mut out,
                "restart: all see their peers again",
                match r.all_full {
                    Some(d) => secs(Some(d)),
                    None => format!("never: {}/{} hosts did", r.full_hosts, r.expected_full),
                },
            );
            row(
                &mut out,
                "restart: coordinator RSS after",
                r.rss_kb.map_or("unknown".into(), |(rss, _)| mb(rss)),
            );
        }
        let received: u64 = self.received.values().sum();
        row(
            &mut out,
            "messages received",
            format!(
                "{received} ({})",
                self.received
                    .iter()
                    .map(|(k, v)| format!("{k} {v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        );
        if let Some(kb) = self.loadgen_rss_kb {
            row(&mut out, "load generator RSS", mb(kb));
        }
        let cpu = |c: Option<f64>| c.map_or("unknown".into(), |c| format!("{c:.1} s"));
        row(
            &mut out,
            "CPU used: coordinator / load generator (wall time)",
            format!(
                "{} / {} ({:.1} s)",
                cpu(self.coordinator_cpu),
                cpu(self.loadgen_cpu),
                self.wall.as_secs_f64()
            ),
        );
        self.connect_errors.lines(&mut out, "connect errors");
        self.join_errors.lines(&mut out, "join errors");
        self.refusals
            .lines(&mut out, "refused or cut off, then retried");
        self.disconnects.lines(&mut out, "connections lost");
        if let Some(r) = &self.restart {
            r.connect_errors
                .lines(&mut out, "connect errors after the restart");
        }
        if !self.coordinator_warnings.is_empty() {
            let _ = writeln!(out, "coordinator log warnings:");
            for w in &self.coordinator_warnings {
                let _ = writeln!(out, "  {w}");
            }
        }
        for n in &self.notes {
            let _ = writeln!(out, "note: {n}");
        }
        out
    }

    /// Everything asked for happened.
    pub fn complete(&self) -> bool {
        self.all_joined.is_some()
            && self.all_full.is_some()
            && self.change_latency.len() == self.change_expected
            && self
                .restart
                .as_ref()
                .is_none_or(|r| r.all_back.is_some() && r.all_full.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_nearest_rank() {
        let v: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(quantile(&v, 0.5), Some(Duration::from_millis(50)));
        assert_eq!(quantile(&v, 0.99), Some(Duration::from_millis(99)));
        assert_eq!(quantile(&v, 1.0), Some(Duration::from_millis(100)));
        assert_eq!(quantile(&[], 0.5), None);
    }

    #[test]
    fn the_same_error_from_many_hosts_counts_once() {
        let mut c = Counted::default();
        c.add("too many join attempts from this address: try again in 12 s");
        c.add("too many join attempts from this address: try again in 7 s");
        c.add("TCP connection to 127.0.0.1:4000 failed");
        assert_eq!(c.0.len(), 2);
        assert_eq!(
            c.0["too many join attempts from this address: try again in # s"],
            2
        );
    }
}
