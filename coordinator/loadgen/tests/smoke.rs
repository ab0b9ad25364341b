//! The load generator against a debug coordinator it starts itself: 20 hosts in 2 networks,
//! over QUIC and TCP+TLS at once with invites, then over TCP with passwords and a coordinator
//! restart. Every host must join, see all its peers and the endpoint change, and come back.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

/// The debug `warren-coordinator` next to this test's load generator, built if missing (a
/// test only gets its own package's binaries built).
fn coordinator_bin() -> PathBuf {
    let loadgen = PathBuf::from(env!("CARGO_BIN_EXE_warren-loadgen"));
    let bin = loadgen.with_file_name("warren-coordinator");
    if !bin.exists() {
        let status = Command::new(env!("CARGO"))
            .args(["build", "-p", "warren-coordinator"])
            .status()
            .expect("cargo runs");
        assert!(status.success(), "cannot build warren-coordinator");
    }
    bin
}

fn run(args: &[&str]) -> String {
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_warren-loadgen"))
        .args(args)
        .arg("--coordinator-bin")
        .arg(coordinator_bin())
        .args([
            "--time-limit",
            "10",
            "--change-limit",
            "5",
            "--restart-limit",
            "10",
        ])
        .output()
        .expect("the load generator runs");
    let table = String::from_utf8_lossy(&out.stdout).into_owned();
    let errors = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "incomplete run ({}):\n{table}\n{errors}",
        out.status
    );
    assert!(started.elapsed() < Duration::from_secs(30), "{table}");
    table
}

fn row<'a>(table: &'a str, name: &str) -> &'a str {
    table
        .lines()
        .find(|l| l.starts_with(&format!("| {name} |")))
        .unwrap_or_else(|| panic!("no row {name:?} in\n{table}"))
}

#[test]
fn twenty_hosts_over_both_transports_join_and_see_their_peers() {
    let table = run(&[
        "--hosts",
        "20",
        "--networks",
        "2",
        "--transport",
        "mixed",
        "--join",
        "invite",
    ]);
    assert!(
        row(&table, "connected (Welcome received)").contains("| 20/20 "),
        "{table}"
    );
    assert!(
        row(&table, "joins ok / failed").contains("| 20 / 0 "),
        "{table}"
    );
    assert!(
        !row(&table, "every host sees all its peers online").contains("never"),
        "{table}"
    );
    // 2 networks of 10: each of the 9 other hosts of a network sees its changer's update.
    assert!(
        row(&table, "endpoint change reached peers").contains("| 18/18 "),
        "{table}"
    );
    assert!(
        row(&table, "coordinator RSS at the end / peak").contains(" MB / "),
        "{table}"
    );
}

#[test]
fn password_joins_over_tcp_survive_a_coordinator_restart() {
    let table = run(&[
        "--hosts",
        "20",
        "--networks",
        "2",
        "--transport",
        "tcp",
        "--join",
        "password",
        "--restart",
    ]);
    assert!(
        row(&table, "joins ok / failed").contains("| 20 / 0 "),
        "{table}"
    );
    assert!(
        row(&table, "restart: hosts back").contains("| 20/20 in "),
        "{table}"
    );
    assert!(
        !row(&table, "restart: all see their peers again").contains("never"),
        "{table}"
    );
}
