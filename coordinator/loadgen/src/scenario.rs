//! One measurement: all hosts start (at once, or spread over a ramp), join and wait for their
//! peers; then one host per network changes its endpoints; then, if asked, the coordinator is
//! killed and restarted and the hosts reconnect. Every phase has a time limit, so a run always
//! ends with a table, whatever failed.

use crate::coordinator::{cpu_secs, memory_kb, Spawned};
use crate::host::{Host, JoinMode, Net, Phase, World};
use crate::link::{Dialer, Transport};
use crate::report::{Outcome, Restart};
use anyhow::Result;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use warren_proto::key::NodeKey;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum TransportChoice {
    Quic,
    Tcp,
    /// Every other host over TCP.
    Mixed,
}

pub struct Options {
    pub hosts: usize,
    pub networks: usize,
    pub join: JoinMode,
    pub transport: TransportChoice,
    /// For the joins and for every host to see its peers.
    pub time_limit: Duration,
    pub change_limit: Duration,
    pub restart: bool,
    pub restart_limit: Duration,
    /// Hosts start spread evenly over this long.
    pub ramp: Duration,
}

pub enum Target {
    Spawned(Spawned),
    External {
        addr: SocketAddr,
        key: NodeKey,
        pid: Option<u32>,
    },
}

impl Target {
    fn pid(&self) -> Option<u32> {
        match self {
            Target::Spawned(s) => Some(s.pid()),
            Target::External { pid, .. } => *pid,
        }
    }

    fn exited(&mut self) -> Option<String> {
        match self {
            Target::Spawned(s) => s.exited(),
            Target::External { .. } => None,
        }
    }
}

const TICK: Duration = Duration::from_millis(100);

pub async fn run(opts: &Options, mut target: Target, notes: Vec<String>) -> Result<Outcome> {
    let (addr, key) = match &target {
        Target::Spawned(s) => (s.addr, s.key),
        Target::External { addr, key, .. } => (*addr, *key),
    };
    let networks = opts.networks.max(1);
    let mut sizes = vec![0usize; networks];
    let mut hosts = Vec::with_capacity(opts.hosts);
    for i in 0..opts.hosts {
        let net = i % networks;
        let transport = match opts.transport {
            TransportChoice::Quic => Transport::Quic,
            TransportChoice::Tcp => Transport::Tcp,
            TransportChoice::Mixed if i % 2 == 0 => Transport::Quic,
            TransportChoice::Mixed => Transport::Tcp,
        };
        hosts.push(Arc::new(Host::new(i, net, sizes[net], transport)?));
        sizes[net] += 1;
    }
    let (phase_tx, phase) = watch::channel(Phase::Run);
    let world = Arc::new(World {
        coordinator: addr,
        key,
        join: opts.join,
        nets: (0..networks).map(|n| Net::new(n, sizes[n])).collect(),
        dialer: Dialer::new()?,
        phase,
    });
    let mut out = Outcome {
        scenario: format!(
            "{} hosts, {} networks, join by {:?}, {:?}, coordinator {addr}",
            opts.hosts, networks, opts.join, opts.transport
        ),
        notes,
        hosts: opts.hosts,
        ..Default::default()
    };
    let mut peak = 0u64;
    let mut sample = |pid: Option<u32>| {
        if let Some((rss, _)) = pid.and_then(memory_kb) {
            peak = peak.max(rss);
        }
    };

    let start = Instant::now();
    let cpu_at_start = (
        target.pid().and_then(cpu_secs),
        cpu_secs(std::process::id()),
    );
    let mut tasks = Vec::with_capacity(hosts.len());
    for h in &hosts {
        let delay = ramp_delay(opts, h.index);
        let (h, w) = (h.clone(), world.clone());
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            h.run(w).await
        }));
    }

    // Joins, and every host seeing its peers.
    let deadline = start + opts.time_limit;
    while Instant::now() < deadline && !settled(&hosts, &world) {
        if let Some(why) = target.exited() {
            out.notes.push(why);
            break;
        }
        sample(target.pid());
        tokio::time::sleep(TICK).await;
    }
    if Instant::now() >= deadline {
        out.notes.push(format!(
            "the time limit of {} s for joining and seeing peers ran out",
            opts.time_limit.as_secs()
        ));
    }

    // One endpoint change per network.
    phase_tx.send_replace(Phase::ChangeEndpoints);
    let change_deadline = Instant::now() + opts.change_limit;
    while Instant::now() < change_deadline && !changes_arrived(&hosts) {
        sample(target.pid());
        tokio::time::sleep(TICK).await;
    }
    sample(target.pid());
    summarize(&mut out, &hosts, &world, start, opts);
    out.rss_kb = target.pid().and_then(memory_kb);

    if opts.restart {
        out.restart = Some(restart(opts, &mut target, &hosts, &mut out.notes).await);
    }
    out.peak_rss_kb = peak;
    out.wall = start.elapsed();
    // Across a restart the coordinator is a new process: its CPU is the new one's only.
    out.coordinator_cpu = target
        .pid()
        .and_then(cpu_secs)
        .map(|c| c - cpu_at_start.0.filter(|_| !opts.restart).unwrap_or(0.0));
    out.loadgen_cpu = cpu_secs(std::process::id()).map(|c| c - cpu_at_start.1.unwrap_or(0.0));
    if let Target::Spawned(s) = &target {
        out.coordinator_warnings = s.log_warnings();
    }
    out.loadgen_rss_kb = memory_kb(std::process::id()).map(|(rss, _)| rss);
    for h in &hosts {
        let r = h.record.lock().expect("record");
        for (k, v) in &r.received {
            *out.received.entry(k).or_default() += v;
        }
        for e in &r.disconnects {
            out.disconnects.add(e);
        }
    }
    phase_tx.send_replace(Phase::Stop);
    let stop = tokio::time::timeout(Duration::from_secs(3), async {
        for t in &mut tasks {
            let _ = t.await;
        }
    });
    if stop.await.is_err() {
        tasks.iter().for_each(|t| t.abort());
    }
    Ok(out)
}

/// Whether phase one is over: every join answered, and every host whose network could form
/// (no join in it failed) sees all its peers.
fn settled(hosts: &[Arc<Host>], world: &World) -> bool {
    let mut broken = vec![false; world.nets.len()];
    for h in hosts {
        let r = h.record.lock().expect("record");
        if r.join_error.is_some() && r.joined_at.is_none() {
            broken[h.net] = true;
        } else if r.joined_at.is_none() {
            return false;
        }
    }
    hosts
        .iter()
        .all(|h| broken[h.net] || h.record.lock().expect("record").first_full_at.is_some())
}

/// The hosts that should see an endpoint change: joined members of a network whose changer
/// joined, other than the changer.
fn change_receivers(hosts: &[Arc<Host>]) -> Vec<&Arc<Host>> {
    let mut changer_in = std::collections::HashSet::new();
    for h in hosts.iter().filter(|h| h.changer) {
        if h.record.lock().expect("record").joined_at.is_some() {
            changer_in.insert(h.net);
        }
    }
    hosts
        .iter()
        .filter(|h| !h.changer && changer_in.contains(&h.net))
        .filter(|h| h.record.lock().expect("record").joined_at.is_some())
        .collect()
}

fn changes_arrived(hosts: &[Arc<Host>]) -> bool {
    change_receivers(hosts)
        .iter()
        .all(|h| h.record.lock().expect("record").change_seen_at.is_some())
}

/// When host `index` starts, after the run's start.
fn ramp_delay(opts: &Options, index: usize) -> Duration {
    opts.ramp.mul_f64(index as f64 / opts.hosts.max(1) as f64)
}

fn summarize(
    out: &mut Outcome,
    hosts: &[Arc<Host>],
    world: &World,
    start: Instant,
    opts: &Options,
) {
    let mut last_join = None::<Instant>;
    let mut last_full = None::<Instant>;
    for h in hosts {
        let r = h.record.lock().expect("record");
        if let Some(w) = r.welcomes.first() {
            out.connected += 1;
            // From the host's own start (later than the run's with --ramp).
            let began = start + ramp_delay(opts, h.index);
            out.welcome_latency.push(w.saturating_duration_since(began));
        }
        for e in &r.connect_errors {
            out.connect_errors.add(e);
        }
        for e in &r.refusals {
            out.refusals.add(e);
        }
        match (r.joined_at, &r.join_error) {
            (Some(t), _) => {
                out.joins_ok += 1;
                out.joined_after_error += r.joined_after_error as usize;
                last_join = last_join.max(Some(t));
            }
            (None, Some(e)) => {
                out.joins_failed += 1;
                out.join_errors.add(e);
            }
            (None, None) => {
                out.joins_failed += 1;
                out.join_errors
                    .add("no answer before the time limit (never connected, or still waiting)");
            }
        }
        if let Some(t) = r.first_full_at {
            out.full_hosts += 1;
            last_full = last_full.max(Some(t));
        }
    }
    out.last_join = last_join.map(|t| t.duration_since(start));
    if out.joins_ok == hosts.len() {
        out.all_joined = out.last_join;
    }
    if out.full_hosts == hosts.len() {
        out.all_full = last_full.map(|t| t.duration_since(start));
    }
    let receivers = change_receivers(hosts);
    out.change_expected = receivers.len();
    for h in receivers {
        let sent = *world.nets[h.net].change_sent.lock().expect("net");
        let seen = h.record.lock().expect("record").change_seen_at;
        if let (Some(sent), Some(seen)) = (sent, seen) {
            out.change_latency
                .push(seen.saturating_duration_since(sent));
        }
    }
}

/// `kill -9` and a restart on the same state and port; how long until every host that was
/// connected is back, and every host that saw all its peers sees them again.
async fn restart(
    opts: &Options,
    target: &mut Target,
    hosts: &[Arc<Host>],
    notes: &mut Vec<String>,
) -> Restart {
    let mut r = Restart::default();
    let Target::Spawned(spawned) = target else {
        notes.push("--restart needs a coordinator this run started (--spawn)".into());
        return r;
    };
    let before: Vec<(bool, bool, usize)> = hosts
        .iter()
        .map(|h| {
            let rec = h.record.lock().expect("record");
            (
                !rec.welcomes.is_empty(),
                rec.full_at.is_some(),
                rec.connect_errors.len(),
            )
        })
        .collect();
    r.hosts = before.iter().filter(|b| b.0).count();
    r.expected_full = before.iter().filter(|b| b.1).count();
    let killed = match tokio::task::block_in_place(|| spawned.restart()) {
        Ok(t) => t,
        Err(e) => {
            notes.push(format!("restart failed: {e:#}"));
            return r;
        }
    };
    r.ready = Some(killed.elapsed());
    let deadline = killed + opts.restart_limit;
    let back = |h: &Host| {
        let rec = h.record.lock().expect("record");
        let welcome = rec.welcomes.last().filter(|w| **w > killed).copied();
        (welcome, welcome.and(rec.full_at))
    };
    loop {
        let mut done = true;
        for (h, b) in hosts.iter().zip(&before) {
            let (welcome, full) = back(h);
            if (b.0 && welcome.is_none()) || (b.1 && full.is_none()) {
                done = false;
                break;
            }
        }
        if done || Instant::now() >= deadline {
            break;
        }
        if let Some(why) = spawned.exited() {
            notes.push(why);
            break;
        }
        tokio::time::sleep(TICK).await;
    }
    let (mut last_back, mut last_full) = (None::<Instant>, None::<Instant>);
    for (h, b) in hosts.iter().zip(&before) {
        let (welcome, full) = back(h);
        if let Some(w) = welcome.filter(|_| b.0) {
            r.welcomes.push(w.duration_since(killed));
            r.reconnected += 1;
            last_back = last_back.max(welcome);
        }
        if b.1 && full.is_some() {
            r.full_hosts += 1;
            last_full = last_full.max(full);
        }
        let rec = h.record.lock().expect("record");
        for e in &rec.connect_errors[b.2..] {
            r.connect_errors.add(e);
        }
    }
    if r.reconnected == r.hosts {
        r.all_back = last_back.map(|t| t.duration_since(killed));
    }
    if r.full_hosts == r.expected_full {
        r.all_full = last_full.map(|t| t.duration_since(killed));
    }
    if Instant::now() >= deadline {
        notes.push(format!(
            "the restart's time limit of {} s ran out",
            opts.restart_limit.as_secs()
        ));
    }
    r.rss_kb = memory_kb(spawned.pid());
    r
}
