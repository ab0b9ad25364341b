//! Traffic in the overlay: echo requests from a host's TUN to another's overlay address
//! (the receiving host answers them), once, until answered, in a burst, or in the background.

use super::{Ev, World};
use crate::fabric::HostId;
use crate::packet::Echo;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};
use warren_daemon_core::node::Node;
use warren_proto::api::PathKind;

impl World {
    /// Host `h` sends an echo request to `to`'s overlay address; its reply is in `h`'s
    /// [`crate::Host::arrivals`] when it comes.
    pub fn send_echo(&mut self, h: HostId, to: HostId, seq: u64) {
        let Some(ip) = self.hosts[to].overlay_ip() else {
            return;
        };
        let now = self.now;
        let out = self.hosts[h].send_echo(now, ip, seq);
        self.carry(h, out);
    }

    /// Echo requests from `a` to `b` every `every` until a reply comes or `limit` passed:
    /// the time from the first request to the first reply.
    pub fn ping(
        &mut self,
        a: HostId,
        b: HostId,
        every: Duration,
        limit: Duration,
    ) -> Option<Duration> {
        let t0 = self.now;
        let first = self.next_seq;
        let replied = |w: &World| {
            w.hosts[a]
                .arrivals
                .iter()
                .find(|x| {
                    matches!(x.echo, Echo::Reply(s) if s >= first && s < w.next_seq)
                        && x.from == w.hosts[b].overlay_ip().unwrap_or(Ipv4Addr::UNSPECIFIED)
                })
                .map(|x| x.at)
        };
        while self.now - t0 < limit {
            let seq = self.next_seq;
            self.next_seq += 1;
            self.send_echo(a, b, seq);
            if self.run_until(every, |w| replied(w).is_some()) {
                return replied(self).map(|at| at - t0);
            }
        }
        None
    }

    /// `n` echo requests from `a` to `b`, `every` apart, then `wait` for the last replies:
    /// how many replies came.
    pub fn echoes(&mut self, a: HostId, b: HostId, n: u64, every: Duration, wait: Duration) -> u64 {
        let first = self.next_seq;
        for _ in 0..n {
            let seq = self.next_seq;
            self.next_seq += 1;
            self.send_echo(a, b, seq);
            self.run_for(every);
        }
        self.run_for(wait);
        let last = self.next_seq;
        let from = self.hosts[b].overlay_ip();
        self.hosts[a]
            .arrivals
            .iter()
            .filter(|x| matches!(x.echo, Echo::Reply(s) if s >= first && s < last))
            .filter(|x| Some(x.from) == from)
            .count() as u64
    }

    /// Runs `f` on host `h`'s node (what the local API would ask of it) and sends what that
    /// queued.
    pub fn on_node<T>(&mut self, h: HostId, f: impl FnOnce(&mut Node, Instant) -> T) -> T {
        let now = self.now;
        let t = f(&mut self.hosts[h].node, now);
        let out = self.hosts[h].drain_now(now);
        self.carry(h, out);
        t
    }

    /// The path kind `a` reports for `b` now.
    pub fn path(&self, a: HostId, b: HostId) -> PathKind {
        self.hosts[a].path_to(self.now, &self.hosts[b].key())
    }

    /// From now on `a` and `b` send each other an echo request every `every` (`None`: stop),
    /// as an application would, in the background of whatever the test does.
    pub fn set_traffic(&mut self, a: HostId, b: HostId, every: Option<Duration>) {
        let stream = self.streams.get(&(a, b)).map_or(1, |s| s + 1);
        self.streams.insert((a, b), stream);
        if let Some(every) = every {
            let ev = Ev::Traffic {
                a,
                b,
                every,
                stream,
            };
            self.queue.push(self.now, ev);
        }
    }
}
