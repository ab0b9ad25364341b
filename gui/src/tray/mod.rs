//! The tray icon: its colour shows the state, its menu turns Warren on and off, lists the
//! networks with their online members (and who asks to join a network this host owns), copies
//! this host's IP, hosts a network, opens the window and quits. Its commands go to the window,
//! which carries them out.
//!
//! What the menu holds ([`menu`]) and the icon's pixels ([`dot_rgba`]) are decided here, for
//! every platform; only the glue to the desktop differs: a StatusNotifierItem over D-Bus
//! (`linux.rs`, via ksni) or a notification-area icon (`windows.rs`, Win32 on a thread of its
//! own). Each backend offers `spawn(view, commands) -> Result<Handle, String>`,
//! `Handle::show(view)` and `Handle::close()`.

use crate::view::{Look, ViewModel};
use std::sync::mpsc::Sender;
use std::sync::Arc;

#[cfg(unix)]
mod linux;
#[cfg(unix)]
pub use linux::{spawn, Handle};
#[cfg(windows)]
mod windows;
#[cfg(windows)]
pub use windows::{spawn, Handle};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrayCmd {
    Power(bool),
    CopyIp,
    Open,
    /// "Host a network…": the window opens with the Host dialog.
    Host,
    Quit,
    /// The panel (or taskbar) that shows the icon came (true) or went (false): without one, a
    /// hidden window could never be opened again.
    HostOnline(bool),
}

/// Where the tray's commands go: the window's channel, and a wake-up so that the window reads
/// it at once.
#[derive(Clone)]
pub struct Commands {
    tx: Sender<TrayCmd>,
    wake: Arc<dyn Fn() + Send + Sync>,
}

impl Commands {
    pub fn new(tx: Sender<TrayCmd>, wake: Arc<dyn Fn() + Send + Sync>) -> Commands {
        Commands { tx, wake }
    }

    pub fn send(&self, cmd: TrayCmd) {
        let _ = self.tx.send(cmd);
        (self.wake)();
    }
}

/// One line of the tray's menu.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// Words only (greyed out).
    Text(String),
    /// A line that does something.
    Item(String, TrayCmd),
    Separator,
    Sub(String, Vec<Entry>),
}

/// The menu for `view`, top to bottom.
pub fn menu(view: &ViewModel) -> Vec<Entry> {
    let mut menu = vec![Entry::Text(view.headline.clone())];
    if let Some(on) = view.power {
        let label = if on {
            "Turn Warren off"
        } else {
            "Turn Warren on"
        };
        menu.push(Entry::Item(label.into(), TrayCmd::Power(!on)));
    }
    if !view.networks.is_empty() {
        menu.push(Entry::Separator);
    }
    for net in &view.networks {
        let mut members: Vec<Entry> = net
            .members
            .iter()
            .filter(|m| m.online)
            .map(|m| Entry::Text(format!("{}  {}  ({})", m.name, m.ip, m.connection)))
            .collect();
        if net.waiting {
            members.push(Entry::Text(crate::view::WAITING.into()));
        } else if members.is_empty() {
            members.push(Entry::Text("Nobody else online".into()));
        }
        if let Some(note) = &net.host_offline {
            members.push(Entry::Text(note.clone()));
        }
        for r in net.owner.iter().flat_map(|o| &o.requests) {
            members.push(Entry::Item(
                format!("{} — open Warren to answer", r.text),
                TrayCmd::Open,
            ));
        }
        menu.push(Entry::Sub(
            format!("{}  ({})", net.name, net.summary),
            members,
        ));
    }
    menu.push(Entry::Separator);
    if let Some(me) = &view.me {
        menu.push(Entry::Item(
            format!("Copy my IP ({})", me.ip),
            TrayCmd::CopyIp,
        ));
    }
    if view.can_host {
        menu.push(Entry::Item("Host a network…".into(), TrayCmd::Host));
    }
    menu.push(Entry::Item("Open Warren".into(), TrayCmd::Open));
    menu.push(Entry::Item("Quit".into(), TrayCmd::Quit));
    menu
}

/// A filled circle in the look's colour with soft edges, `size`×`size` pixels of straight
/// (not premultiplied) RGBA, row by row from the top.
pub fn dot_rgba(look: Look, size: u32) -> Vec<u8> {
    let (r, g, b) = look.rgb();
    let c = (size as f32 - 1.0) / 2.0;
    let radius = size as f32 * 0.4;
    let mut data = Vec::with_capacity((size * size * 4) as usize);
    for y in 0..size {
        for x in 0..size {
            let d = ((x as f32 - c).powi(2) + (y as f32 - c).powi(2)).sqrt();
            let a = ((radius + 0.5 - d).clamp(0.0, 1.0) * 255.0) as u8;
            data.extend_from_slice(&[r, g, b, a]);
        }
    }
    data
}

#[cfg(test)]
mod tests;
