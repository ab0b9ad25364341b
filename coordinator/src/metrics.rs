//! Prometheus metrics (`--metrics [ADDR]`, off by default, 127.0.0.1:9464 when given without
//! an address): a plain-text exposition read from the state the coordinator keeps anyway, at
//! each scrape. The values are few and computed on demand, so the text is written here rather
//! than kept in a metrics library's registry; the HTTP side answers `GET /metrics` and nothing
//! else, one short request per connection.

use crate::server::Server;
use anyhow::{Context, Result};
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use warren_coordinator_core::RelayCounters;

pub const DEFAULT_ADDR: &str = "127.0.0.1:9464";
/// A request larger than this, or slower than [`REQUEST_TIMEOUT`], is not answered.
const MAX_REQUEST: usize = 8 << 10;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// The relay task's counters and host count, as it last published them (once a second).
pub type RelayReport = Mutex<Option<(RelayCounters, usize)>>;

/// One metric's lines.
fn metric(out: &mut String, name: &str, kind: &str, help: &str, samples: &[(&str, f64)]) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
    for (labels, value) in samples {
        let _ = writeln!(out, "{name}{labels} {value}");
    }
}

/// The exposition text (format 0.0.4).
pub fn render(server: &Server) -> String {
    let (online, known, networks, queued_max, added, fanouts, fanout_micros) = {
        let hub = server.hub();
        (
            hub.online.len(),
            hub.registry.node_count(),
            hub.registry.network_count(),
            hub.online.values().map(|o| o.tx.len()).max().unwrap_or(0),
            hub.stats.members_added.load(Ordering::Relaxed),
            hub.stats.fanouts.load(Ordering::Relaxed),
            hub.stats.fanout_micros.load(Ordering::Relaxed),
        )
    };
    let mut out = String::new();
    let gauge = |out: &mut String, name: &str, help: &str, v: f64| {
        metric(out, name, "gauge", help, &[("", v)])
    };
    let counter = |out: &mut String, name: &str, help: &str, v: u64| {
        metric(out, name, "counter", help, &[("", v as f64)])
    };
    gauge(
        &mut out,
        "warren_hosts_online",
        "Hosts with a live control connection.",
        online as f64,
    );
    gauge(
        &mut out,
        "warren_hosts_known",
        "Hosts the coordinator has a record of.",
        known as f64,
    );
    gauge(&mut out, "warren_networks", "Networks.", networks as f64);
    counter(
        &mut out,
        "warren_members_added_total",
        "Memberships added: joins, and creators joining their new network.",
        added,
    );
    gauge(
        &mut out,
        "warren_session_queue_max",
        "Messages waiting in the fullest session queue.",
        queued_max as f64,
    );
    counter(
        &mut out,
        "warren_slow_readers_total",
        "Sessions ended because their daemon did not read.",
        server.slow_readers.load(Ordering::Relaxed),
    );
    metric(
        &mut out,
        "warren_fanout_seconds",
        "summary",
        "Time to tell a host's peers about a change of it.",
        // A summary without quantiles: its samples are NAME_sum and NAME_count.
        &[
            ("_sum", fanout_micros as f64 / 1e6),
            ("_count", fanouts as f64),
        ],
    );
    counter(
        &mut out,
        "warren_handshakes_refused_total",
        "Connections closed because too many were handshaking and the line was full or \
         their wait ran out.",
        server.pre_auth.refused(),
    );
    gauge(
        &mut out,
        "warren_handshakes_waiting",
        "Connections waiting for a handshake slot.",
        server.pre_auth.waiting() as f64,
    );
    let relay = *server.relay_report.lock().expect("relay report lock");
    if let Some((c, nodes)) = relay {
        gauge(
            &mut out,
            "warren_relay_hosts",
            "Hosts with a live relay token.",
            nodes as f64,
        );
        counter(
            &mut out,
            "warren_relay_forwarded_total",
            "Datagrams relayed.",
            c.forwarded,
        );
        counter(
            &mut out,
            "warren_relay_forwarded_bytes_total",
            "Bytes relayed.",
            c.forwarded_bytes,
        );
        let drops: Vec<(String, f64)> = [
            ("malformed", c.malformed),
            ("unexpected", c.unexpected),
            ("unknown_token", c.unknown_token),
            ("bad_proof", c.bad_proof),
            ("bad_ticket", c.bad_ticket),
            ("unregistered_source", c.unregistered_source),
            ("unknown_destination", c.unknown_destination),
            ("ambiguous_destination", c.ambiguous_destination),
            ("no_destination_address", c.no_destination_address),
            ("no_shared_network", c.no_shared_network),
            ("rate_limited", c.rate_limited),
            ("total_rate_limited", c.total_rate_limited),
            ("too_large", c.too_large),
        ]
        .into_iter()
        .map(|(reason, n)| (format!("{{reason=\"{reason}\"}}"), n as f64))
        .collect();
        let drops: Vec<(&str, f64)> = drops.iter().map(|(l, n)| (l.as_str(), *n)).collect();
        metric(
            &mut out,
            "warren_relay_dropped_total",
            "counter",
            "Datagrams the relay dropped, by reason.",
            &drops,
        );
    }
    out
}

/// Serves `GET /metrics` on `addr` until the task is dropped; returns the bound address.
pub async fn start(addr: SocketAddr, server: Arc<Server>) -> Result<SocketAddr> {
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot serve metrics on {addr} (--metrics)"))?;
    let bound = listener.local_addr()?;
    tokio::spawn(async move {
        loop {
            let Ok((mut conn, _)) = listener.accept().await else {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            };
            let server = server.clone();
            tokio::spawn(async move {
                let Ok(Some(path)) =
                    tokio::time::timeout(REQUEST_TIMEOUT, request_path(&mut conn)).await
                else {
                    return;
                };
                let response = if path == "/metrics" {
                    let body = render(&server);
                    format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\n\
                         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    )
                } else {
                    "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                        .to_string()
                };
                let _ = conn.write_all(response.as_bytes()).await;
                let _ = conn.shutdown().await;
            });
        }
    });
    Ok(bound)
}

/// The path of a GET request's head; `None` for anything else or a head too large.
async fn request_path(conn: &mut tokio::net::TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = conn.read(&mut buf).await.ok()?;
        if n == 0 || head.len() + n > MAX_REQUEST {
            return None;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let line = std::str::from_utf8(&head).ok()?.lines().next()?;
    let mut parts = line.split(' ');
    (parts.next()? == "GET").then_some(())?;
    Some(parts.next()?.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::Hub;
    use crate::store::SqliteStore as Store;
    use warren_coordinator_core::{Registry, RegistryConfig};

    async fn get(addr: SocketAddr, path: &str) -> String {
        let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
        conn.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let mut out = String::new();
        conn.read_to_string(&mut out).await.unwrap();
        out
    }

    #[tokio::test]
    async fn metrics_are_served_as_prometheus_text_on_get_metrics_only() {
        let tmp = tempfile::tempdir().unwrap();
        let config = RegistryConfig {
            hash_params: warren_coordinator_core::HashParams::new(
                warren_coordinator_core::HashParams::MIN_M_COST,
                1,
                1,
                None,
            )
            .unwrap(),
            ..Default::default()
        };
        let hub = Hub::new(
            Registry::new(config).unwrap(),
            Store::open(tmp.path()).unwrap(),
        );
        let server = Arc::new(Server::new([0; 32], vec![], None, hub));
        *server.relay_report.lock().unwrap() = Some((
            RelayCounters {
                forwarded_bytes: 4096,
                rate_limited: 3,
                ..Default::default()
            },
            2,
        ));
        let addr = start("127.0.0.1:0".parse().unwrap(), server.clone())
            .await
            .unwrap();
        let page = get(addr, "/metrics").await;
        assert!(page.starts_with("HTTP/1.1 200 OK\r\n"), "{page}");
        assert!(page.contains("Content-Type: text/plain; version=0.0.4"));
        for line in [
            "# TYPE warren_hosts_online gauge",
            "warren_hosts_online 0",
            "warren_networks 0",
            "warren_fanout_seconds_count 0",
            "warren_handshakes_waiting 0",
            "warren_relay_hosts 2",
            "warren_relay_forwarded_bytes_total 4096",
            "warren_relay_dropped_total{reason=\"rate_limited\"} 3",
        ] {
            assert!(page.lines().any(|l| l == line), "{line:?} missing:\n{page}");
        }
        assert!(get(addr, "/").await.starts_with("HTTP/1.1 404"));
    }
}
