//! More coordinators in the lab, beside its own: each in a namespace of its own on the
//! internet bridge, with the same key (the key file copied from the lab's coordinator), for
//! coordinators sharing one database.

use super::netns::Netns;
use super::node::Coordinator;
use super::Lab;
use std::net::Ipv4Addr;

impl Lab {
    /// Starts another coordinator at `ip` (on the internet bridge) with the lab coordinator's
    /// key and `args`; `role` names its namespace and directory. The lab removes the namespace;
    /// the returned guard stops the process (drop it before the lab).
    pub fn add_coordinator(&mut self, role: &str, ip: Ipv4Addr, args: Vec<String>) -> Coordinator {
        let ns = self.ns_name(role);
        self.namespaces.push(Netns::create(&ns));
        self.plug(role, &ns, "eth0", ip);
        let mut c = Coordinator::named(&ns, &self.dir, role, ip);
        std::fs::create_dir_all(&c.state_dir).expect("create the coordinator's state dir");
        let key = "coordinator.key";
        std::fs::copy(self.coordinator.state_dir.join(key), c.state_dir.join(key))
            .expect("copy the lab coordinator's key");
        c.extra_args = args;
        c.start();
        assert_eq!(
            c.key, self.coordinator.key,
            "the copied key is the same key"
        );
        c
    }
}
