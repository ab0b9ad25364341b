//! [`PortMapper`]: when to ask the router for a port mapping, renew it, give up on it and
//! delete it. The asking itself (PCP, NAT-PMP, UPnP-IGD) is the shell's; this decides when.
//!
//! A mapping is renewed at half its lifetime, so one lost renewal leaves time for another.
//! Failed attempts back off (5 s doubling to 10 min): a router without port mapping costs a
//! few packets an hour. A mapping that could not be renewed is dropped when it expires. A
//! network change (a new address, a new public address) asks again at once: the mapping may
//! point at an address we no longer have, or a restarted router may have forgotten it.

use std::net::SocketAddr;
use std::time::{Duration, Instant};
use warren_proto::api::PortMapProtocol;

/// The order protocols are tried in when nothing worked yet: PCP and NAT-PMP are one UDP
/// exchange each (PCP is NAT-PMP's successor, RFC 6887), UPnP-IGD needs a multicast search
/// and HTTP, so it comes last.
pub const DEFAULT_ORDER: [PortMapProtocol; 3] = [
    PortMapProtocol::Pcp,
    PortMapProtocol::NatPmp,
    PortMapProtocol::Upnp,
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortMapConfig {
    /// The lifetime asked for; the router may grant less.
    pub lifetime: Duration,
    pub first_retry: Duration,
    pub max_retry: Duration,
}

impl Default for PortMapConfig {
    fn default() -> Self {
        Self {
            // RFC 6886's recommendation for NAT-PMP, and what most routers accept.
            lifetime: Duration::from_secs(7200),
            first_retry: Duration::from_secs(5),
            max_retry: Duration::from_secs(600),
        }
    }
}

/// A mapping the router granted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mapping {
    pub protocol: PortMapProtocol,
    /// The router's public address and port that it forwards to our socket.
    pub external: SocketAddr,
    pub lifetime: Duration,
}

/// What the shell should do now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Ask for a new mapping, trying these protocols in turn until one works.
    Map(Vec<PortMapProtocol>),
    /// Extend the mapping we hold (with its own protocol).
    Renew(Mapping),
    /// Delete this mapping on the router; no answer is expected.
    Delete(Mapping),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Held {
    mapping: Mapping,
    expires: Instant,
}

/// # Call order
/// Inputs, each with the current time: [`handle_enabled`](Self::handle_enabled) (`warren
/// up`/`down`), [`handle_network_change`](Self::handle_network_change), and for every
/// [`Action::Map`] / [`Action::Renew`] returned, exactly one
/// [`handle_result`](Self::handle_result). After every input and at
/// [`poll_timeout`](Self::poll_timeout): [`poll_action`](Self::poll_action) until `None`, then
/// [`poll_event`](Self::poll_event) (the external address to advertise changed).
#[derive(Debug)]
pub struct PortMapper {
    config: PortMapConfig,
    enabled: bool,
    held: Option<Held>,
    /// When the next Map or Renew is due.
    next: Option<Instant>,
    /// A Map or Renew was handed out and its result not yet reported.
    in_flight: bool,
    backoff: Duration,
    /// The protocol that worked last: tried first next time.
    last_protocol: Option<PortMapProtocol>,
    deletes: Vec<Mapping>,
    /// The next attempt asks anew instead of renewing (after a failure or a network change).
    force_map: bool,
    /// The advertised address changed since the last `poll_event`.
    changed: bool,
}

impl PortMapper {
    pub fn new(config: PortMapConfig) -> Self {
        Self {
            config,
            enabled: false,
            held: None,
            next: None,
            in_flight: false,
            backoff: config.first_retry,
            last_protocol: None,
            deletes: Vec::new(),
            force_map: false,
            changed: false,
        }
    }

    pub fn config(&self) -> &PortMapConfig {
        &self.config
    }

    /// The mapping to advertise, if we hold one.
    pub fn mapping(&self) -> Option<Mapping> {
        self.held.map(|h| h.mapping)
    }

    /// On (`warren up`, start) or off (`warren down`, exit: the mapping is deleted).
    pub fn handle_enabled(&mut self, now: Instant, enabled: bool) {
        if enabled == self.enabled {
            return;
        }
        self.enabled = enabled;
        if enabled {
            self.backoff = self.config.first_retry;
            self.next = Some(now);
        } else {
            self.next = None;
            self.drop_held(true);
        }
    }

    /// Our addresses changed: ask again now, whatever the backoff said.
    pub fn handle_network_change(&mut self, now: Instant) {
        if !self.enabled {
            return;
        }
        self.backoff = self.config.first_retry;
        // The old mapping may point at an address we no longer have; a new one replaces it
        // (Map, not Renew: the router may have changed too).
        self.next = Some(now);
        self.force_map = true;
    }

    /// The outcome of the last Map or Renew: the mapping granted, or `None` when no protocol
    /// worked.
    pub fn handle_result(&mut self, now: Instant, result: Option<Mapping>) {
        self.in_flight = false;
        if !self.enabled {
            // Turned off while asking: whatever was granted must go again.
            if let Some(m) = result {
                self.deletes.push(m);
            }
            return;
        }
        match result {
            Some(m) => {
                let lifetime = m.lifetime.max(Duration::from_secs(2));
                if let Some(old) = self.held {
                    if old.mapping.external != m.external {
                        self.changed = true;
                    }
                    // PCP and NAT-PMP key a mapping by our internal port, so a new grant of
                    // the same protocol replaced the old one on the router; UPnP-IGD keys it
                    // by the external port.
                    let same_slot = old.mapping.protocol == m.protocol
                        && (m.protocol != PortMapProtocol::Upnp
                            || old.mapping.external == m.external);
                    if !same_slot {
                        self.deletes.push(old.mapping);
                    }
                } else {
                    self.changed = true;
                }
                self.held = Some(Held {
                    mapping: m,
                    expires: now + lifetime,
                });
                self.last_protocol = Some(m.protocol);
                self.backoff = self.config.first_retry;
                self.next = Some(now + lifetime / 2);
            }
            None => {
                if self.held.is_some_and(|h| now >= h.expires) {
                    self.drop_held(false);
                }
                // A renewal that failed becomes a fresh Map next time (another protocol
                // may answer), sooner than the expiry.
                let wait = match self.held {
                    Some(h) => self.backoff.min((h.expires - now) / 2),
                    None => self.backoff,
                };
                self.force_map = true;
                self.next = Some(now + wait.max(Duration::from_millis(500)));
                self.backoff = (self.backoff * 2).min(self.config.max_retry);
            }
        }
    }

    /// The next thing to do, if it is due.
    pub fn poll_action(&mut self, now: Instant) -> Option<Action> {
        if let Some(m) = self.deletes.pop() {
            return Some(Action::Delete(m));
        }
        if let Some(h) = self.held {
            if now >= h.expires {
                self.drop_held(false);
            }
        }
        if self.in_flight || !self.enabled || self.next.is_none_or(|t| t > now) {
            return None;
        }
        self.next = None;
        self.in_flight = true;
        match self.held {
            Some(h) if !std::mem::take(&mut self.force_map) => Some(Action::Renew(h.mapping)),
            _ => {
                self.force_map = false;
                Some(Action::Map(self.order()))
            }
        }
    }

    /// When to call [`poll_action`](Self::poll_action) again (also for an expiry).
    pub fn poll_timeout(&self) -> Option<Instant> {
        let expiry = self.held.map(|h| h.expires);
        let next = self.next.filter(|_| !self.in_flight);
        [expiry, next].into_iter().flatten().min()
    }

    /// `Some(new)` once each time the mapping to advertise changed (`Some(None)`: lost).
    pub fn poll_event(&mut self) -> Option<Option<Mapping>> {
        std::mem::take(&mut self.changed).then(|| self.mapping())
    }

    fn order(&self) -> Vec<PortMapProtocol> {
        let mut order: Vec<PortMapProtocol> = self.last_protocol.into_iter().collect();
        order.extend(
            DEFAULT_ORDER
                .iter()
                .filter(|p| Some(**p) != self.last_protocol),
        );
        order
    }

    fn drop_held(&mut self, delete: bool) {
        if let Some(h) = self.held.take() {
            self.changed = true;
            if delete {
                self.deletes.push(h.mapping);
            }
        }
    }
}

#[cfg(test)]
mod tests;
