//! The tray icon (StatusNotifierItem over D-Bus, via ksni): its colour shows the state, its menu
//! turns Warren on and off, lists the networks with their online members (and who asks to join
//! a network this host owns), copies this host's IP, hosts a network, opens the window and
//! quits. Its commands go to the window, which carries them out.

use crate::view::{Look, ViewModel};
use ksni::menu::{StandardItem, SubMenu};
use ksni::{Icon, MenuItem, ToolTip};
use std::sync::mpsc::Sender;
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrayCmd {
    Power(bool),
    CopyIp,
    Open,
    /// "Host a network…": the window opens with the Host dialog.
    Host,
    Quit,
    /// The panel that shows the icon came (true) or went (false): without one, a hidden
    /// window could never be opened again.
    HostOnline(bool),
}

pub struct Tray {
    pub view: ViewModel,
    tx: Sender<TrayCmd>,
    wake: Arc<dyn Fn() + Send + Sync>,
}

impl Tray {
    pub fn new(view: ViewModel, tx: Sender<TrayCmd>, wake: Arc<dyn Fn() + Send + Sync>) -> Tray {
        Tray { view, tx, wake }
    }

    fn send(&self, cmd: TrayCmd) {
        let _ = self.tx.send(cmd);
        (self.wake)();
    }
}

fn item(label: impl Into<String>, f: impl Fn(&mut Tray) + Send + 'static) -> MenuItem<Tray> {
    StandardItem {
        label: label.into(),
        activate: Box::new(f),
        ..Default::default()
    }
    .into()
}

fn text(label: impl Into<String>) -> MenuItem<Tray> {
    StandardItem {
        label: label.into(),
        enabled: false,
        ..Default::default()
    }
    .into()
}

/// A filled circle in the look's colour, ARGB32 in network byte order.
pub fn icon(look: Look, size: i32) -> Icon {
    let (r, g, b) = look.rgb();
    let c = (size as f32 - 1.0) / 2.0;
    let radius = size as f32 * 0.4;
    let mut data = Vec::with_capacity((size * size * 4) as usize);
    for y in 0..size {
        for x in 0..size {
            let d = ((x as f32 - c).powi(2) + (y as f32 - c).powi(2)).sqrt();
            let a = ((radius + 0.5 - d).clamp(0.0, 1.0) * 255.0) as u8;
            data.extend_from_slice(&[a, r, g, b]);
        }
    }
    Icon {
        width: size,
        height: size,
        data,
    }
}

impl ksni::Tray for Tray {
    fn id(&self) -> String {
        "warren".into()
    }
    fn title(&self) -> String {
        "Warren".into()
    }
    fn icon_pixmap(&self) -> Vec<Icon> {
        vec![icon(self.view.look, 22), icon(self.view.look, 44)]
    }
    fn tool_tip(&self) -> ToolTip {
        ToolTip {
            title: "Warren".into(),
            description: self.view.headline.clone(),
            ..Default::default()
        }
    }
    fn watcher_online(&self) {
        self.send(TrayCmd::HostOnline(true));
    }
    fn watcher_offline(&self, _reason: ksni::OfflineReason) -> bool {
        self.send(TrayCmd::HostOnline(false));
        // Keep the item on the bus: a panel that restarts picks it up again.
        true
    }
    fn activate(&mut self, _x: i32, _y: i32) {
        self.send(TrayCmd::Open);
    }
    fn menu(&self) -> Vec<MenuItem<Self>> {
        let mut menu = vec![text(self.view.headline.clone())];
        if let Some(on) = self.view.power {
            let label = if on {
                "Turn Warren off"
            } else {
                "Turn Warren on"
            };
            menu.push(item(label, move |t| t.send(TrayCmd::Power(!on))));
        }
        if !self.view.networks.is_empty() {
            menu.push(MenuItem::Separator);
        }
        for net in &self.view.networks {
            let mut members: Vec<MenuItem<Self>> = net
                .members
                .iter()
                .filter(|m| m.online)
                .map(|m| text(format!("{}  {}  ({})", m.name, m.ip, m.connection)))
                .collect();
            if net.waiting {
                members.push(text(crate::view::WAITING));
            } else if members.is_empty() {
                members.push(text("Nobody else online"));
            }
            if let Some(note) = &net.host_offline {
                members.push(text(note.clone()));
            }
            for r in net.owner.iter().flat_map(|o| &o.requests) {
                members.push(item(format!("{} — open Warren to answer", r.text), |t| {
                    t.send(TrayCmd::Open)
                }));
            }
            menu.push(
                SubMenu {
                    label: format!("{}  ({})", net.name, net.summary),
                    submenu: members,
                    ..Default::default()
                }
                .into(),
            );
        }
        menu.push(MenuItem::Separator);
        if let Some(me) = &self.view.me {
            menu.push(item(format!("Copy my IP ({})", me.ip), |t| {
                t.send(TrayCmd::CopyIp)
            }));
        }
        if self.view.can_host {
            menu.push(item("Host a network…", |t| t.send(TrayCmd::Host)));
        }
        menu.push(item("Open Warren", |t| t.send(TrayCmd::Open)));
        menu.push(item("Quit", |t| t.send(TrayCmd::Quit)));
        menu
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn icon_is_a_coloured_dot_with_clear_corners() {
        let i = icon(Look::Online, 22);
        assert_eq!(i.data.len(), 22 * 22 * 4);
        assert_eq!(i.data[0], 0, "corner transparent");
        let mid = ((11 * 22 + 11) * 4) as usize;
        assert_eq!(&i.data[mid..mid + 4], &[255, 0x2e, 0xa0, 0x43]);
    }
}
