//! `warren check PEER PORT` and `--app NAME`: one check per port; the exit status fails only on
//! the ports a program needs, so a preset's optional port that is closed (RDP's UDP on xrdp)
//! is reported without failing a working setup.

use crate::apps::{self, PresetPort};
use crate::{client, render};
use anyhow::{bail, Result};
use serde::Serialize;
use std::path::Path;
use warren_proto::api::{CheckReport, Request, Response, Verdict};

/// A report as `--json` prints it: the daemon's fields and whether the port is required.
#[derive(Debug, Serialize)]
pub struct PortCheck {
    #[serde(flatten)]
    pub report: CheckReport,
    pub required: bool,
}

/// The required ports that are not reachable; optional ones never count.
pub fn failures(checks: &[PortCheck]) -> usize {
    checks
        .iter()
        .filter(|c| c.required && c.report.verdict != Verdict::Reachable)
        .count()
}

pub fn check(
    socket: &Path,
    peer: &str,
    port: Option<&str>,
    app: Option<&str>,
    json: bool,
) -> Result<()> {
    let ports = match (port, app) {
        (Some(p), _) => {
            let (port, proto) = warren_proto::api::parse_port(p).map_err(anyhow::Error::msg)?;
            vec![PresetPort {
                port,
                proto,
                required: true,
            }]
        }
        (None, Some(a)) => {
            let (name, ports) = apps::ports_of(a)?;
            if !json {
                println!("{name}:");
            }
            ports
        }
        (None, None) => bail!("name a port (3389, 27015/udp) or --app"),
    };
    let mut checks = Vec::new();
    for p in ports {
        let request = Request::Check {
            peer: peer.into(),
            port: p.port,
            proto: p.proto,
        };
        match client::call(socket, request)? {
            Response::Check(report) => {
                if !json {
                    println!("{}", render::check_line(&report, p.required));
                }
                checks.push(PortCheck {
                    report,
                    required: p.required,
                });
            }
            other => bail!("unexpected answer from the daemon: {other:?}"),
        }
    }
    if json {
        crate::print_json(&checks)?;
    }
    if failures(&checks) > 0 {
        // The verdicts are printed already; only the exit status is left to say.
        std::process::exit(1);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use warren_proto::disco::{Listening, PortProto};

    fn report(port: u16, proto: PortProto, verdict: Verdict) -> CheckReport {
        CheckReport {
            peer: "bob".into(),
            overlay_ip: Some("100.64.0.3".parse().unwrap()),
            port,
            proto,
            verdict,
            peer_listening: Some(match verdict {
                Verdict::Reachable => Listening::Overlay,
                _ => Listening::Nothing,
            }),
            detail: "why".into(),
        }
    }

    fn checks(list: &[(Verdict, bool)]) -> Vec<PortCheck> {
        list.iter()
            .map(|&(verdict, required)| PortCheck {
                report: report(3389, PortProto::Tcp, verdict),
                required,
            })
            .collect()
    }

    #[test]
    fn only_required_ports_fail_the_check() {
        use Verdict::*;
        // xrdp: TCP served, UDP not: works.
        assert_eq!(
            failures(&checks(&[(Reachable, true), (NothingListening, false)])),
            0
        );
        assert_eq!(
            failures(&checks(&[(Reachable, true), (FirewallDrops, false)])),
            0
        );
        assert_eq!(
            failures(&checks(&[(NothingListening, true), (Reachable, false)])),
            1
        );
        assert_eq!(
            failures(&checks(&[(Unreachable, true), (Unreachable, false)])),
            1
        );
        assert_eq!(
            failures(&checks(&[(FirewallDrops, true), (Unreachable, true)])),
            2
        );
        assert_eq!(failures(&checks(&[(Reachable, true)])), 0);
    }

    #[test]
    fn json_keeps_the_daemon_fields_and_says_required() {
        let c = PortCheck {
            report: report(3389, PortProto::Udp, Verdict::NothingListening),
            required: false,
        };
        let v = serde_json::to_value([&c]).unwrap();
        assert_eq!(v[0]["port"], 3389);
        assert_eq!(v[0]["proto"], "udp");
        assert_eq!(v[0]["verdict"], "nothing_listening");
        assert_eq!(v[0]["peer_listening"], "nothing");
        assert_eq!(v[0]["detail"], "why");
        assert_eq!(v[0]["required"], false);
    }
}
