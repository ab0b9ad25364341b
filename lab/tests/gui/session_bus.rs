//! A private D-Bus session bus with a stand-in tray host, for the GUI's tray test.
//!
//! `dbus-daemon --session` on a socket in the test's directory, and on it a minimal
//! `org.kde.StatusNotifierWatcher` (what KDE's or the GNOME AppIndicator extension's panel
//! provides): it accepts item registrations and records them. The test then reads the tray
//! item and its menu over the same bus with `busctl`, as a panel would.

use serde_json::Value;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub struct SessionBus {
    pub address: String,
    daemon: Child,
    /// Items registered with the watcher (their bus names).
    pub items: Arc<Mutex<Vec<String>>>,
    runtime: tokio::runtime::Runtime,
    watcher: zbus::Connection,
}

struct Watcher {
    items: Arc<Mutex<Vec<String>>>,
}

#[zbus::interface(name = "org.kde.StatusNotifierWatcher")]
impl Watcher {
    fn register_status_notifier_item(&self, service: &str) {
        self.items.lock().unwrap().push(service.to_string());
    }
    fn register_status_notifier_host(&self, _service: &str) {}
    #[zbus(property)]
    fn is_status_notifier_host_registered(&self) -> bool {
        true
    }
    #[zbus(property)]
    fn protocol_version(&self) -> i32 {
        0
    }
    #[zbus(property)]
    fn registered_status_notifier_items(&self) -> Vec<String> {
        self.items.lock().unwrap().clone()
    }
}

impl SessionBus {
    pub fn start(dir: &Path) -> SessionBus {
        let socket = dir.join("session-bus");
        let address = format!("unix:path={}", socket.display());
        let daemon = Command::new("dbus-daemon")
            .args(["--session", "--nofork", "--nopidfile"])
            .arg(format!("--address={address}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("dbus-daemon (package dbus-daemon, installed by packaging/install-deps.sh)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while !socket.exists() {
            assert!(Instant::now() < deadline, "dbus-daemon did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        let items = Arc::new(Mutex::new(Vec::new()));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let watcher = runtime
            .block_on(async {
                zbus::connection::Builder::address(address.as_str())?
                    .name("org.kde.StatusNotifierWatcher")?
                    .serve_at(
                        "/StatusNotifierWatcher",
                        Watcher {
                            items: items.clone(),
                        },
                    )?
                    .build()
                    .await
            })
            .expect("the stand-in StatusNotifierWatcher on the session bus");
        SessionBus {
            address,
            daemon,
            items,
            runtime,
            watcher,
        }
    }

    /// The first item that registered, waiting up to `limit`.
    pub fn wait_item(&self, limit: Duration) -> Option<String> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(i) = self.items.lock().unwrap().first() {
                return Some(i.clone());
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The tray host goes away (a panel restarted, its tray plugin turned off): the watcher
    /// gives up its name, as a dying panel's bus connection does.
    pub fn drop_watcher(&self) {
        self.runtime
            .block_on(self.watcher.release_name("org.kde.StatusNotifierWatcher"))
            .expect("release the watcher's name");
    }

    /// `busctl --json=short` against this bus; the parsed answer.
    pub fn busctl(&self, args: &[&str]) -> Value {
        let o = Command::new("busctl")
            .arg(format!("--address={}", self.address))
            .args(["--json=short", "--"])
            .args(args)
            .output()
            .expect("busctl");
        assert!(
            o.status.success(),
            "busctl {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&o.stderr)
        );
        serde_json::from_slice(&o.stdout).unwrap_or(Value::Null)
    }
}

impl Drop for SessionBus {
    fn drop(&mut self) {
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
    }
}

/// A dbusmenu entry: its id, label, whether it can be clicked, and its children.
#[derive(Debug)]
pub struct MenuEntry {
    pub id: i64,
    pub label: String,
    pub enabled: bool,
    pub children: Vec<MenuEntry>,
}

impl MenuEntry {
    /// From `GetLayout`'s `(ia{sv}av)` as busctl prints it in JSON.
    pub fn parse(v: &Value) -> MenuEntry {
        // busctl: a struct is an array; a variant is {"type":..,"data":..}.
        let v = if v.get("data").is_some() {
            &v["data"]
        } else {
            v
        };
        let props = &v[1];
        let label = props["label"]["data"].as_str().unwrap_or("").to_string();
        let enabled = props["enabled"]["data"].as_bool().unwrap_or(true);
        let children = v[2]
            .as_array()
            .map(|c| c.iter().map(MenuEntry::parse).collect())
            .unwrap_or_default();
        MenuEntry {
            id: v[0].as_i64().unwrap(),
            label,
            enabled,
            children,
        }
    }

    pub fn find(&self, pred: &dyn Fn(&MenuEntry) -> bool) -> Option<&MenuEntry> {
        if pred(self) {
            return Some(self);
        }
        self.children.iter().find_map(|c| c.find(pred))
    }

    pub fn labels(&self) -> Vec<String> {
        let mut out = vec![self.label.clone()];
        for c in &self.children {
            out.extend(c.labels());
        }
        out
    }
}
