//! The tray icon and the window as a desktop shows them: the tray host on a private session bus
//! sees the menu and the icon colour follow the daemon, the window closes as a window manager
//! closes it, and an idle GUI stays idle.

use super::*;

/// `xwininfo` on the window titled "Warren".
fn window_info(x: &Xvfb) -> String {
    let o = Command::new("xwininfo")
        .args(["-display", &x.display, "-name", "Warren"])
        .output()
        .expect("xwininfo (package x11-utils, installed by packaging/install-deps.sh)");
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The X map state of the window titled "Warren": "IsViewable", "IsUnMapped", ….
fn map_state(x: &Xvfb) -> String {
    window_info(x)
        .lines()
        .find_map(|l| l.trim().strip_prefix("Map State: "))
        .unwrap_or("no window")
        .to_string()
}

/// What a window manager does when someone clicks the window's close button: a
/// WM_DELETE_WINDOW client message.
fn close_window(x: &Xvfb) {
    use x11rb::protocol::xproto::{ClientMessageEvent, ConnectionExt as _, EventMask};
    use x11rb::wrapper::ConnectionExt as _;
    let info = window_info(x);
    let hex = info
        .split("Window id: 0x")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or_else(|| panic!("no window id in {info:?}"));
    let window = u32::from_str_radix(hex, 16).unwrap();
    let (conn, _) = x11rb::connect(Some(&x.display)).expect("connect to Xvfb");
    let atom = |name: &[u8]| conn.intern_atom(false, name).unwrap().reply().unwrap().atom;
    let (protocols, delete) = (atom(b"WM_PROTOCOLS"), atom(b"WM_DELETE_WINDOW"));
    let event = ClientMessageEvent::new(
        32,
        window,
        protocols,
        [delete, x11rb::CURRENT_TIME, 0, 0, 0],
    );
    conn.send_event(false, window, EventMask::NO_EVENT, event)
        .unwrap();
    // A round trip, so that the server has handled the event before this connection closes.
    conn.sync().unwrap();
}

fn wait_map_state(x: &Xvfb, want: &str, limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        let got = map_state(x);
        if got == want {
            return;
        }
        if Instant::now() > deadline {
            let tree = Command::new("xwininfo")
                .args(["-display", &x.display, "-root", "-tree"])
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_default();
            panic!("window is {got}, wanted {want}; windows:\n{tree}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn menu(bus: &SessionBus, item: &str) -> MenuEntry {
    let v = bus.busctl(&[
        "call",
        item,
        "/MenuBar",
        "com.canonical.dbusmenu",
        "GetLayout",
        "iias",
        "0",
        "-1",
        "0",
    ]);
    // (u(ia{sv}av)): the revision, then the root entry.
    MenuEntry::parse(&v["data"][1])
}

/// The centre pixel of the tray icon's first pixmap, as (r, g, b).
fn icon_colour(bus: &SessionBus, item: &str) -> (u64, u64, u64) {
    let v = bus.busctl(&[
        "get-property",
        item,
        "/StatusNotifierItem",
        "org.kde.StatusNotifierItem",
        "IconPixmap",
    ]);
    let first = &v["data"][0];
    let (w, h) = (first[0].as_u64().unwrap(), first[1].as_u64().unwrap());
    let data = first[2].as_array().unwrap();
    let i = (((h / 2) * w + w / 2) * 4) as usize;
    let px = |k: usize| data[i + k].as_u64().unwrap();
    assert_eq!(px(0), 255, "the icon's centre is opaque");
    (px(1), px(2), px(3))
}

fn click(bus: &SessionBus, item: &str, entry: &MenuEntry) {
    let id = entry.id.to_string();
    bus.busctl(&[
        "call",
        item,
        "/MenuBar",
        "com.canonical.dbusmenu",
        "Event",
        "isvu",
        &id,
        "clicked",
        "s",
        "",
        "0",
    ]);
}

/// Clicks the entry labelled `label` in the menu as it is now: ids belong to one layout, and
/// the layout changes whenever a label does (a member's RTT, the power entry).
fn click_label(bus: &SessionBus, item: &str, label: &str) {
    let m = menu(bus, item);
    let entry = m
        .find(&|e| e.label == label)
        .unwrap_or_else(|| panic!("no {label:?} in the tray menu: {:?}", m.labels()));
    click(bus, item, entry);
}

/// Waits until `menu` has an entry that `pred` accepts; panics with the labels after `limit`.
fn wait_menu(
    bus: &SessionBus,
    item: &str,
    limit: Duration,
    what: &str,
    pred: &dyn Fn(&MenuEntry) -> bool,
) -> MenuEntry {
    let deadline = Instant::now() + limit;
    loop {
        let m = menu(bus, item);
        if m.find(pred).is_some() {
            return m;
        }
        assert!(
            Instant::now() < deadline,
            "tray menu never showed {what}: {:?}",
            m.labels()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn wait_icon(bus: &SessionBus, item: &str, look: Look, limit: Duration) {
    let (r, g, b) = look.rgb();
    let want = (r as u64, g as u64, b as u64);
    let deadline = Instant::now() + limit;
    loop {
        let c = icon_colour(bus, item);
        if c == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "tray icon colour {c:x?}, wanted {want:x?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn gui_tray_menu_power_and_idle_cpu() {
    lab::needs_root!();
    let mut lab = Lab::start("guitray");
    let (_sa, mut ha) = lab.add_site(SiteKind::FullCone, 1, "a");
    let (_sb, mut hb) = lab.add_site(SiteKind::FullCone, 1, "b");
    let (a, b) = (&mut ha[0], &mut hb[0]);
    start_all(&mut [&mut *a, &mut *b]);
    a.up(&lab.coordinator);
    let b_ip = b.up(&lab.coordinator);
    a.warren_ok(&["create", "lan-party", "--password", "pw-party"]);
    b.warren_ok(&["join", "lan-party", "--password", "pw-party"]);

    let x = Xvfb::start(&lab.dir);
    let bus = SessionBus::start(&lab.dir);
    // As the login autostart entry starts it: only the tray icon.
    let mut gui = RunningGui::start(&x, &bus, b, &lab.dir, &["--hidden"]);
    let item = bus
        .wait_item(Duration::from_secs(30))
        .unwrap_or_else(|| panic!("no tray item registered; stderr: {}", gui.stderr()));

    // The menu as a panel shows it, once a is online in lan-party.
    let a_name = a.name.clone();
    let m = wait_menu(&bus, &item, Duration::from_secs(30), "a online", &|e| {
        e.label.starts_with(&a_name) && e.label.contains("Direct connection")
    });
    let labels = m.labels();
    eprintln!("tray menu: {labels:?}");
    let net = m
        .find(&|e| e.label.starts_with("lan-party"))
        .expect("the network in the menu");
    assert_eq!(net.label, "lan-party  (1 of 1 online)");
    let member = &net.children[0];
    assert!(
        member.label.starts_with(&a_name) && !member.enabled,
        "a member is a line of text: {member:?}"
    );
    assert!(m.find(&|e| e.label == "Turn Warren off").is_some());
    assert!(m
        .find(&|e| e.label == format!("Copy my IP ({b_ip})"))
        .is_some());
    assert!(m.find(&|e| e.label == "Open Warren" && e.enabled).is_some());
    assert!(m.find(&|e| e.label == "Quit").is_some());
    wait_icon(&bus, &item, GREEN, Duration::from_secs(10));

    // Idle, hidden: after its first frame the window is unmapped; the tray alone is left.
    wait_map_state(&x, "IsUnMapped", Duration::from_secs(10));
    std::thread::sleep(Duration::from_secs(2));
    let hidden = gui.cpu_share(Duration::from_secs(8));
    assert_eq!(map_state(&x), "IsUnMapped", "still hidden 10 s later");
    // "Open Warren" maps it again (a hidden eframe window must still take commands).
    click_label(&bus, &item, "Open Warren");
    wait_map_state(&x, "IsViewable", Duration::from_secs(10));
    std::thread::sleep(Duration::from_secs(2));
    let shown = gui.cpu_share(Duration::from_secs(8));
    eprintln!(
        "warren-gui idle CPU: {:.2} % of a core hidden, {:.2} % with the window open",
        hidden * 100.0,
        shown * 100.0
    );
    for (what, share) in [("hidden", hidden), ("with the window open", shown)] {
        assert!(
            share < 0.05,
            "idle GUI {what} used {:.1} % of a core",
            share * 100.0
        );
    }

    // Closing the window (with a tray) hides it; the GUI stays, and the tray opens it again.
    close_window(&x);
    wait_map_state(&x, "IsUnMapped", Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        gui.child.try_wait().unwrap().is_none(),
        "closing the window must not quit: {}",
        gui.stderr()
    );
    click_label(&bus, &item, "Open Warren");
    wait_map_state(&x, "IsViewable", Duration::from_secs(10));

    // "Copy my IP" puts the overlay IP on the clipboard.
    let copy = format!("Copy my IP ({b_ip})");
    click_label(&bus, &item, &copy);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        // `timeout`: xclip waits for the clipboard's owner, which must not hang the test.
        let o = Command::new("timeout")
            .args(["5", "xclip", "-display", &x.display])
            .args(["-selection", "clipboard", "-o"])
            .output()
            .expect("xclip (installed by packaging/install-deps.sh)");
        if String::from_utf8_lossy(&o.stdout) == b_ip.to_string() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "clipboard holds {:?}, wanted {b_ip}",
            String::from_utf8_lossy(&o.stdout)
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // Off and on again from the tray menu.
    click_label(&bus, &item, "Turn Warren off");
    wait_status(b, Duration::from_secs(20), "turned off", |st| {
        st["state"] == "down"
    });
    wait_icon(&bus, &item, GREY, Duration::from_secs(10));
    wait_menu(
        &bus,
        &item,
        Duration::from_secs(10),
        "Turn Warren on",
        &|e| e.label == "Turn Warren on",
    );
    click_label(&bus, &item, "Turn Warren on");
    wait_status(b, Duration::from_secs(20), "turned on", |st| {
        st["state"] == "up"
    });
    wait_icon(&bus, &item, GREEN, Duration::from_secs(30));

    // The service stops under the GUI: the icon turns red and the menu says so in plain words;
    // when it is back the GUI finds it again by itself.
    b.stop_daemon();
    wait_icon(&bus, &item, RED, Duration::from_secs(15));
    wait_menu(
        &bus,
        &item,
        Duration::from_secs(10),
        "the service missing",
        &|e| e.label.contains("Warren service isn't running"),
    );
    b.start_daemon();
    b.wait_api(Duration::from_secs(20));
    wait_icon(&bus, &item, GREEN, Duration::from_secs(30));
    wait_menu(
        &bus,
        &item,
        Duration::from_secs(30),
        "a online again",
        &|e| e.label.starts_with(&a_name) && e.label.contains("Direct connection"),
    );

    // The panel goes away while the window is hidden: the window comes back by itself, since
    // nothing else could open it now.
    close_window(&x);
    wait_map_state(&x, "IsUnMapped", Duration::from_secs(10));
    bus.drop_watcher();
    wait_map_state(&x, "IsViewable", Duration::from_secs(10));

    // Quit from the menu ends the GUI.
    click_label(&bus, &item, "Quit");
    let deadline = Instant::now() + Duration::from_secs(10);
    let st = loop {
        if let Some(st) = gui.child.try_wait().unwrap() {
            break st;
        }
        assert!(Instant::now() < deadline, "Quit did not end warren-gui");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        st.success(),
        "warren-gui after Quit: {st}; {}",
        gui.stderr()
    );
    assert!(!gui.stderr().contains("no tray icon"), "{}", gui.stderr());
}
