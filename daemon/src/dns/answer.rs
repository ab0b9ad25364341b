//! Answers for `NAME.warren`: the names of this host and its peers, as the coordinator gave
//! them, with their overlay addresses. Pure: a query's bytes and a name table in, the reply's
//! bytes out.
//!
//! - `NAME.warren` is a peer (or this host) by its name; `NAME.NETWORK.warren` names it within
//!   one network, for when two networks each have a host of that name (then the short form,
//!   being ambiguous, does not exist).
//! - Anything outside `warren.` is refused, never answered: Warren does not take over other
//!   names (systemd-resolved only sends it `~warren` anyway).
//! - A known name asked for another type (MX, TXT, …) gets an empty answer, an unknown name
//!   NXDOMAIN.

use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA};
use hickory_proto::rr::{RData, Record, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinEncodable};
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use warren_proto::api::Status;

pub const DOMAIN: &str = "warren";
/// Short, so a renamed or re-addressed peer is seen soon; long enough to spare the server.
const TTL: u32 = 30;

/// Lower-case names without the trailing dot ("bob.warren") → addresses.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct NameTable {
    names: BTreeMap<String, BTreeSet<IpAddr>>,
}

impl NameTable {
    /// The table for what `warren status` shows: this host and every peer with a name.
    #[cfg(test)]
    pub fn from_status(s: &Status) -> Self {
        Self::for_querier(s, None)
    }

    /// The table as the host at `querier` may see it: a peer asking learns only the names of
    /// the networks it shares with this host (it is in them too), never those of another
    /// network; `None` (a program on this host) sees all.
    pub fn for_querier(s: &Status, querier: Option<IpAddr>) -> Self {
        let peer = querier.and_then(|q| {
            s.peers
                .iter()
                .find(|p| p.overlay_ip == Some(q) || p.allowed_ips.contains(&host_route(q)))
        });
        let allowed: Option<BTreeSet<String>> = match (querier, peer) {
            (None, _) => None,
            (Some(_), Some(p)) => Some(p.networks.iter().map(|n| n.to_ascii_lowercase()).collect()),
            // Someone who is not a peer learns nothing.
            (Some(_), None) => Some(BTreeSet::new()),
        };
        Self::build(s, allowed.as_ref())
    }

    fn build(s: &Status, allowed: Option<&BTreeSet<String>>) -> Self {
        let mut hosts: Vec<(String, Vec<String>, Vec<IpAddr>)> = Vec::new();
        let mut me: Vec<IpAddr> = vec![s.self_.overlay_ip];
        me.extend(s.self_.overlay_ip6);
        let my_networks: Vec<String> = if s.coordinators.is_empty() {
            // From a daemon that knew one coordinator only.
            s.coordinator
                .as_ref()
                .map(|c| c.networks.clone())
                .unwrap_or_default()
        } else {
            s.coordinators
                .iter()
                .flat_map(|c| c.networks.iter().cloned())
                .collect()
        };
        hosts.push((s.self_.name.clone(), my_networks, me));
        for p in &s.peers {
            // Host routes only: a peer routing a whole LAN has no single address for it.
            let mut ips: Vec<IpAddr> = p
                .allowed_ips
                .iter()
                .filter(|n| n.ends_with("/32") || n.ends_with("/128"))
                .filter_map(|n| n.split('/').next()?.parse().ok())
                .collect();
            ips.extend(p.overlay_ip);
            hosts.push((p.name.clone(), p.networks.clone(), ips));
        }
        let mut short: BTreeMap<String, Vec<BTreeSet<IpAddr>>> = BTreeMap::new();
        let mut table = NameTable::default();
        for (name, networks, ips) in hosts {
            let name = name.to_ascii_lowercase();
            let networks: Vec<String> = networks
                .into_iter()
                .filter(|n| allowed.is_none_or(|a| a.contains(&n.to_ascii_lowercase())))
                .collect();
            if name.is_empty() || ips.is_empty() || (allowed.is_some() && networks.is_empty()) {
                continue;
            }
            let ips: BTreeSet<IpAddr> = ips.into_iter().collect();
            for net in networks {
                let full = format!("{name}.{}.{DOMAIN}", net.to_ascii_lowercase());
                table.names.entry(full).or_default().extend(&ips);
            }
            short
                .entry(format!("{name}.{DOMAIN}"))
                .or_default()
                .push(ips);
        }
        for (name, mut owners) in short {
            owners.dedup();
            if let [ips] = &owners[..] {
                table.names.insert(name, ips.clone());
            }
        }
        table
    }

    pub fn lookup(&self, name: &str) -> Option<&BTreeSet<IpAddr>> {
        self.names
            .get(&name.trim_end_matches('.').to_ascii_lowercase())
    }

    #[cfg(test)]
    pub fn insert(&mut self, name: &str, ips: &[IpAddr]) {
        self.names
            .insert(name.to_string(), ips.iter().copied().collect());
    }
}

fn host_route(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => format!("{v4}/32"),
        IpAddr::V6(v6) => format!("{v6}/128"),
    }
}

/// The reply to the DNS message `query`, or `None` when it is not worth one (not a query,
/// unparseable: such packets are dropped).
pub fn answer(query: &[u8], table: &NameTable) -> Option<Vec<u8>> {
    let q = Message::from_bytes(query).ok()?;
    if q.message_type() != MessageType::Query {
        return None;
    }
    let mut r = Message::new();
    r.set_id(q.id())
        .set_message_type(MessageType::Response)
        .set_op_code(q.op_code())
        .set_recursion_desired(q.recursion_desired())
        .set_recursion_available(false);
    let [question] = q.queries() else {
        r.set_response_code(ResponseCode::FormErr);
        return r.to_bytes().ok();
    };
    r.add_query(question.clone());
    if q.op_code() != OpCode::Query {
        r.set_response_code(ResponseCode::NotImp);
        return r.to_bytes().ok();
    }
    let name = question.name().to_lowercase();
    let text = name.to_ascii();
    let text = text.trim_end_matches('.');
    if text != DOMAIN && !text.ends_with(&format!(".{DOMAIN}")) {
        r.set_response_code(ResponseCode::Refused);
        return r.to_bytes().ok();
    }
    r.set_authoritative(true);
    match table.lookup(text) {
        None if text == DOMAIN => {}
        None => {
            r.set_response_code(ResponseCode::NXDomain);
        }
        Some(ips) => {
            let want = question.query_type();
            for ip in ips {
                let rdata = match (ip, want) {
                    (IpAddr::V4(v4), RecordType::A | RecordType::ANY) => RData::A(A(*v4)),
                    (IpAddr::V6(v6), RecordType::AAAA | RecordType::ANY) => RData::AAAA(AAAA(*v6)),
                    _ => continue,
                };
                r.add_answer(Record::from_rdata(question.name().clone(), TTL, rdata));
            }
        }
    }
    r.to_bytes().ok()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use hickory_proto::op::Query;
    use hickory_proto::rr::Name;
    use std::str::FromStr;

    fn ask(table: &NameTable, name: &str, t: RecordType) -> Message {
        let mut q = Message::new();
        q.set_id(4321)
            .set_recursion_desired(true)
            .add_query(Query::query(Name::from_str(name).unwrap(), t));
        let reply = answer(&q.to_bytes().unwrap(), table).expect("a reply");
        let m = Message::from_bytes(&reply).unwrap();
        assert_eq!(m.id(), 4321);
        assert_eq!(m.message_type(), MessageType::Response);
        m
    }

    fn addrs(m: &Message) -> Vec<String> {
        m.answers()
            .iter()
            .map(|r| match r.data() {
                RData::A(a) => a.0.to_string(),
                RData::AAAA(a) => a.0.to_string(),
                other => format!("{other:?}"),
            })
            .collect()
    }

    fn table() -> NameTable {
        let mut t = NameTable::default();
        t.insert(
            "bob.warren",
            &["100.64.0.2".parse().unwrap(), "fd57::2".parse().unwrap()],
        );
        t
    }

    #[test]
    fn names_resolve_case_insensitively_by_type() {
        let t = table();
        let m = ask(&t, "Bob.Warren.", RecordType::A);
        assert_eq!(m.response_code(), ResponseCode::NoError);
        assert!(m.authoritative());
        assert_eq!(addrs(&m), ["100.64.0.2"]);
        assert_eq!(addrs(&ask(&t, "bob.warren", RecordType::AAAA)), ["fd57::2"]);
        let mx = ask(&t, "bob.warren.", RecordType::MX);
        assert_eq!(
            (mx.response_code(), mx.answers().len()),
            (ResponseCode::NoError, 0)
        );
        let none = ask(&t, "carol.warren.", RecordType::A);
        assert_eq!(none.response_code(), ResponseCode::NXDomain);
    }

    #[test]
    fn other_names_are_refused_and_junk_dropped() {
        let t = table();
        for other in ["example.com.", "warren.example.com.", "bobwarren."] {
            let m = ask(&t, other, RecordType::A);
            assert_eq!(m.response_code(), ResponseCode::Refused, "{other}");
            assert!(m.answers().is_empty());
        }
        assert_eq!(answer(b"\x01\x02junk", &t), None);
        // A response is not a query.
        let mut r = Message::new();
        r.set_message_type(MessageType::Response);
        assert_eq!(answer(&r.to_bytes().unwrap(), &t), None);
    }

    /// Alice (this host) in "home" and "work"; bob in each (two hosts), carol in "home".
    pub(crate) fn sample_status() -> Status {
        use warren_proto::api::fixtures::{CoordinatorBuilder, PeerBuilder, StatusBuilder};
        let peer = |name: &str, ip: &str, net: &str, key: u8| {
            PeerBuilder::new(name)
                .key(key)
                .ip(ip)
                .direct()
                .networks(&[net])
        };
        StatusBuilder::new()
            .name("Alice")
            .peer(peer("bob", "100.64.0.2", "home", 2))
            .peer(peer("bob", "100.64.0.3", "work", 3))
            .peer(peer("carol", "100.64.0.4", "home", 4))
            .coordinator(
                CoordinatorBuilder::new("x")
                    .name("Alice")
                    .key(1)
                    .networks(&["home", "work"]),
            )
            .build()
    }

    /// A query for `name`'s A record.
    pub(crate) fn query(name: &str) -> Vec<u8> {
        let mut q = Message::new();
        q.set_id(7)
            .add_query(Query::query(Name::from_str(name).unwrap(), RecordType::A));
        q.to_bytes().unwrap()
    }

    #[test]
    fn the_table_has_short_names_unless_ambiguous_and_network_names_always() {
        let s = sample_status();
        let t = NameTable::from_status(&s);
        let one = |n: &str| {
            t.lookup(n)
                .map(|s| s.iter().map(|i| i.to_string()).collect::<Vec<_>>())
        };
        assert_eq!(one("alice.warren"), Some(vec!["100.64.0.1".into()]));
        assert_eq!(one("alice.work.warren"), Some(vec!["100.64.0.1".into()]));
        assert_eq!(one("carol.warren"), Some(vec!["100.64.0.4".into()]));
        assert_eq!(one("bob.warren"), None, "two hosts named bob: ambiguous");
        assert_eq!(one("bob.home.warren"), Some(vec!["100.64.0.2".into()]));
        assert_eq!(one("bob.work.warren"), Some(vec!["100.64.0.3".into()]));

        // Carol (in "home" only) asks: nothing of "work" — not even that it exists.
        let t = NameTable::for_querier(&s, Some("100.64.0.4".parse().unwrap()));
        let one = |n: &str| t.lookup(n).map(|s| s.len());
        assert_eq!(one("bob.home.warren"), Some(1));
        assert_eq!(one("bob.work.warren"), None);
        assert_eq!(one("alice.work.warren"), None);
        assert_eq!(one("alice.home.warren"), Some(1));
        assert_eq!(
            one("bob.warren"),
            Some(1),
            "only one bob in carol's networks"
        );
        // A stranger learns nothing.
        let t = NameTable::for_querier(&s, Some("100.64.9.9".parse().unwrap()));
        assert_eq!(t.lookup("alice.warren"), None);
    }
}
