//! Many site kinds in ONE network at once (issue 18): every host joins the same network at about
//! the same time, so a host that needs several birthday runs (a symmetric NAT against several
//! cone-like peers) must run them all, not one pair after another as in [`super::matrix`].
//!
//! A mesh is data: its sites (each host given a role name) and, for every pair of roles, the
//! path kinds expected once the window has passed. The runner polls every host's
//! `warren status --json` (`peers[].path`) from the moment all joins have returned, records for
//! each pair the first time both sides call it direct or lan, takes the paths at the end of the
//! window, then pings across every pair (each must connect somehow, relayed or not), prints a
//! table and the totals, and panics naming every pair that missed its expectation.

use super::matrix::{check_transport, first_reply, peer_path, Setup};
use super::node::{start_all, Host};
use super::site::SiteKind;
use super::Lab;
use std::collections::HashSet;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

pub const DIRECT: &[&str] = &["direct"];
/// Two hosts on one LAN: "lan" is the goal, "direct" (the LAN address not recognised as such)
/// accepted, as in [`super::matrix`].
pub const LAN: &[&str] = &["lan", "direct"];
pub const RELAY: &[&str] = &["relay"];
/// What counts as "became direct" in the time column, whatever the pair expects.
const ON_PATH: &[&str] = &["direct", "lan"];

/// One site of a mesh: `roles` names its hosts (one, or several on the site's LAN).
pub struct MeshSite {
    pub kind: SiteKind,
    /// Goes into the hosts' Warren names (`prc-LABEL`, `prc-LABEL1`, …) and the site's dir.
    pub label: &'static str,
    pub roles: &'static [&'static str],
}

/// The path kinds both sides must report for the pair `a`–`b` at the end of the window.
pub struct PairExpect {
    pub a: &'static str,
    pub b: &'static str,
    pub expect: &'static [&'static str],
}

pub const fn pair(a: &'static str, b: &'static str, expect: &'static [&'static str]) -> PairExpect {
    PairExpect { a, b, expect }
}

pub struct Mesh {
    /// Unique among the tests of the binary: names namespaces, the lab dir and the network.
    pub tag: &'static str,
    /// The first role of the first site creates the network; all others join it at once.
    pub sites: &'static [MeshSite],
    /// Every pair of roles, exactly once.
    pub pairs: &'static [PairExpect],
    /// How long after both joined a pair's path must be what it expects.
    pub window: Duration,
}

/// One pair's results.
pub struct MeshRow {
    pub a: &'static str,
    pub b: &'static str,
    pub expect: &'static [&'static str],
    /// How a sees b, and b sees a, at the end of the window.
    pub path_ab: String,
    pub path_ba: String,
    /// From the later of the pair's two joins to the first poll where both sides said direct
    /// or lan (polling starts once every join has returned: see [`MeshReport::join_spread`]).
    pub to_direct: Option<Duration>,
    /// Both ping directions after the window: `Err` names what failed.
    pub ping: Result<(), String>,
    pub problems: Vec<String>,
}

impl MeshRow {
    /// The pair's kind at the end of the window when both sides agree, else "mixed".
    pub fn kind(&self) -> &str {
        if self.path_ab == self.path_ba {
            &self.path_ab
        } else {
            "mixed"
        }
    }
}

pub struct MeshReport {
    pub rows: Vec<MeshRow>,
    /// From starting the joins to the last one returning.
    pub join_spread: Duration,
}

impl MeshReport {
    pub fn row(&self, a: &str, b: &str) -> Option<&MeshRow> {
        self.rows
            .iter()
            .find(|r| (r.a == a && r.b == b) || (r.a == b && r.b == a))
    }
}

/// Panics unless `mesh.pairs` names every pair of its roles exactly once, with known roles: a
/// table with a gap would silently measure less than it claims.
pub fn check_table(mesh: &Mesh) {
    let roles: Vec<&str> = mesh
        .sites
        .iter()
        .flat_map(|s| s.roles.iter().copied())
        .collect();
    let unique: HashSet<&str> = roles.iter().copied().collect();
    assert_eq!(
        unique.len(),
        roles.len(),
        "mesh {}: a role name is used twice in its sites; give every host its own role",
        mesh.tag
    );
    let mut seen = HashSet::new();
    for p in mesh.pairs {
        for r in [p.a, p.b] {
            assert!(
                unique.contains(r),
                "mesh {}: pair {}-{} names role {r:?}, which no site has; add it to a site or \
                 fix the pair",
                mesh.tag,
                p.a,
                p.b
            );
        }
        let key = if p.a < p.b { (p.a, p.b) } else { (p.b, p.a) };
        assert!(
            p.a != p.b && seen.insert(key),
            "mesh {}: pair {}-{} is listed twice (or pairs a role with itself); keep one entry",
            mesh.tag,
            p.a,
            p.b
        );
    }
    let want = roles.len() * (roles.len() - 1) / 2;
    assert_eq!(
        seen.len(),
        want,
        "mesh {}: {} roles make {want} pairs but the table lists {}; add the missing pairs",
        mesh.tag,
        roles.len(),
        seen.len()
    );
}

/// Builds the mesh's lab, has every host join one network at once, measures, prints the table
/// and totals; panics (after printing) naming every pair that missed its expectation.
pub fn run_mesh(mesh: &Mesh) -> MeshReport {
    mesh_run(mesh, true)
}

/// One run of `mesh` with the table printed and each pair's problems in its row, but nothing
/// asserted: benchmarks count the outcomes over many runs.
pub fn measure_mesh(mesh: &Mesh) -> MeshReport {
    mesh_run(mesh, false)
}

/// `strict`: panic (with the lab still up, so its logs are printed) when a pair missed.
fn mesh_run(mesh: &Mesh, strict: bool) -> MeshReport {
    check_table(mesh);
    let tag = mesh.tag;
    let mut lab = Lab::start(tag);
    let mut setup = Setup {
        hosts: Vec::new(),
        sites: Vec::new(),
    };
    let mut roles: Vec<&'static str> = Vec::new();
    for s in mesh.sites {
        let (site, hosts) = lab.add_site(s.kind, s.roles.len(), s.label);
        setup.sites.push(site);
        setup.hosts.extend(hosts);
        roles.extend(s.roles.iter().copied());
    }
    let kinds: Vec<SiteKind> = mesh
        .sites
        .iter()
        .flat_map(|s| s.roles.iter().map(move |_| s.kind))
        .collect();
    {
        let mut all: Vec<&mut Host> = setup.hosts.iter_mut().collect();
        start_all(&mut all);
    }
    let hosts = &setup.hosts;
    let coordinator = &lab.coordinator;
    // `warren up` everywhere at once, as people switching their PCs on would.
    let ips: Vec<Ipv4Addr> = std::thread::scope(|s| {
        let hs: Vec<_> = hosts
            .iter()
            .map(|h| s.spawn(|| h.up(coordinator)))
            .collect();
        hs.into_iter()
            .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    });
    for (h, kind) in hosts.iter().zip(&kinds) {
        check_transport(h, *kind);
    }
    for ((h, role), ip) in hosts.iter().zip(&roles).zip(&ips) {
        eprintln!("[{tag}] {role}: {} at {} overlay {ip}", h.name, h.ip);
    }

    let net = format!("mesh-{tag}");
    let pw = format!("pw-{tag}");
    hosts[0].warren_ok(&["create", &net, "--password", &pw]);
    let t_start = Instant::now();
    // Every other host joins at the same moment; each join's return is its member time.
    let joined: Vec<Instant> = std::thread::scope(|s| {
        let hs: Vec<_> = hosts[1..]
            .iter()
            .map(|h| {
                let (net, pw) = (&net, &pw);
                s.spawn(move || {
                    h.warren_ok(&["join", net, "--password", pw]);
                    Instant::now()
                })
            })
            .collect();
        std::iter::once(t_start)
            .chain(
                hs.into_iter()
                    .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))),
            )
            .collect()
    });
    let t_last = *joined.iter().max().expect("hosts");
    let join_spread = t_last - t_start;
    eprintln!(
        "[{tag}] {} hosts in network {net}; the joins returned within {:.2} s",
        hosts.len(),
        join_spread.as_secs_f64()
    );

    let n = hosts.len();
    let idx = |role: &str| {
        roles
            .iter()
            .position(|r| *r == role)
            .expect("checked by check_table")
    };
    let pairs: Vec<(usize, usize)> = mesh.pairs.iter().map(|p| (idx(p.a), idx(p.b))).collect();
    let mut to_direct: Vec<Option<Duration>> = vec![None; pairs.len()];
    let mut paths: Vec<Vec<String>> = vec![vec!["-".to_string(); n]; n];
    let deadline = t_last + mesh.window;
    loop {
        let last_round = Instant::now() >= deadline;
        // One round: every host's status at once; each path is stamped with its own poll.
        let round: Vec<(Instant, Result<serde_json::Value, String>)> = std::thread::scope(|s| {
            let hs: Vec<_> = hosts
                .iter()
                .map(|h| s.spawn(move || (h.try_status(), Instant::now())))
                .collect();
            hs.into_iter()
                .map(|h| {
                    let (st, at) = h.join().expect("status thread");
                    (at, st)
                })
                .collect()
        });
        for (i, (_, st)) in round.iter().enumerate() {
            for (j, other) in hosts.iter().enumerate() {
                if i != j {
                    paths[i][j] = match st {
                        Ok(st) => peer_path(st, &other.name),
                        Err(_) => "no status".into(),
                    };
                }
            }
        }
        for (k, &(a, b)) in pairs.iter().enumerate() {
            if to_direct[k].is_none()
                && ON_PATH.contains(&paths[a][b].as_str())
                && ON_PATH.contains(&paths[b][a].as_str())
            {
                let seen = round[a].0.max(round[b].0);
                to_direct[k] = Some(seen.saturating_duration_since(joined[a].max(joined[b])));
            }
        }
        if last_round {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }

    // Every pair must connect, whatever its path: a ping each way, each until its first reply.
    let pings: Vec<Result<(), String>> = pairs
        .iter()
        .map(|&(a, b)| {
            let now = Instant::now();
            let ab = first_reply(&hosts[a].ns, ips[b], now);
            let ba = first_reply(&hosts[b].ns, ips[a], now);
            (ab, ba)
        })
        .collect::<Vec<_>>()
        .into_iter()
        .zip(&pairs)
        .map(|((ab, ba), &(a, b))| {
            let mut errs = Vec::new();
            for (r, from, to) in [(ab, a, b), (ba, b, a)] {
                if let Err(e) = r.join().expect("pinger thread") {
                    errs.push(format!(
                        "no ping reply {} -> {}: {e}",
                        hosts[from].name, hosts[to].name
                    ));
                }
            }
            if errs.is_empty() {
                Ok(())
            } else {
                Err(errs.join("; "))
            }
        })
        .collect();

    let mut rows = Vec::new();
    for ((p, &(a, b)), (td, ping)) in mesh
        .pairs
        .iter()
        .zip(&pairs)
        .zip(to_direct.into_iter().zip(pings))
    {
        let (pab, pba) = (paths[a][b].clone(), paths[b][a].clone());
        let mut problems = Vec::new();
        if !(p.expect.contains(&pab.as_str()) && p.expect.contains(&pba.as_str())) {
            problems.push(format!(
                "path {pab}/{pba} {:?} after both joined, want {}",
                mesh.window,
                p.expect.join("|")
            ));
        }
        if let Err(e) = &ping {
            problems.push(e.clone());
        }
        rows.push(MeshRow {
            a: p.a,
            b: p.b,
            expect: p.expect,
            path_ab: pab,
            path_ba: pba,
            to_direct: td,
            ping,
            problems,
        });
    }
    for h in setup.hosts.iter_mut() {
        h.check_alive();
    }
    let report = MeshReport { rows, join_spread };
    eprintln!("{}", table(mesh, &report));
    let failed: Vec<String> = report
        .rows
        .iter()
        .filter(|r| !r.problems.is_empty())
        .map(|r| format!("- {}-{}: {}", r.a, r.b, r.problems.join("; ")))
        .collect();
    if strict && !failed.is_empty() {
        panic!(
            "mesh {tag}: {} of {} pairs missed their expectation (table above; daemon logs \
             and status below):\n{}",
            failed.len(),
            report.rows.len(),
            failed.join("\n")
        );
    }
    report
}

/// The table and the totals at the end of the window.
pub fn table(mesh: &Mesh, report: &MeshReport) -> String {
    let mut s = format!(
        "\nmesh {}: all hosts in one network; paths {:?} after both joined (joins returned \
         within {:.2} s; times from the pair's later join)\n",
        mesh.tag,
        mesh.window,
        report.join_spread.as_secs_f64()
    );
    s += &format!(
        "{:<34} {:<12} {:<16} {:>10} {:<5} {}\n",
        "pair (a-b)", "expected", "path a>b/b>a", "to direct", "ping", "result"
    );
    s += &format!("{}\n", "-".repeat(96));
    for r in &report.rows {
        s += &format!(
            "{:<34} {:<12} {:<16} {:>10} {:<5} {}\n",
            format!("{}-{}", r.a, r.b),
            r.expect.join("|"),
            format!("{}/{}", r.path_ab, r.path_ba),
            r.to_direct
                .map(|d| format!("{:.2} s", d.as_secs_f64()))
                .unwrap_or_else(|| "-".into()),
            if r.ping.is_ok() { "ok" } else { "FAIL" },
            if r.problems.is_empty() {
                "ok".to_string()
            } else {
                format!("FAILED: {}", r.problems.join("; "))
            }
        );
    }
    let count = |k: &str| report.rows.iter().filter(|r| r.kind() == k).count();
    let other = report.rows.len() - count("direct") - count("lan") - count("relay");
    s += &format!(
        "totals at {:?}: direct {}, lan {}, relay {}, other {other} (of {} pairs)\n",
        mesh.window,
        count("direct"),
        count("lan"),
        count("relay"),
        report.rows.len()
    );
    s
}
