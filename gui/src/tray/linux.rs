//! The tray on Linux: a StatusNotifierItem over D-Bus, via ksni, which runs it on a thread of
//! its own.

use super::{dot_rgba, menu, Commands, Entry, TrayCmd};
use crate::view::{Look, ViewModel};
use ksni::blocking::TrayMethods;
use ksni::menu::{StandardItem, SubMenu};
use ksni::{Icon, MenuItem, ToolTip};
use std::sync::Arc;

struct Tray {
    view: ViewModel,
    commands: Commands,
}

/// The running tray; clones share it.
#[derive(Clone)]
pub struct Handle(Arc<ksni::blocking::Handle<Tray>>);

/// Puts the icon on the D-Bus; fails without a session bus.
pub fn spawn(view: ViewModel, commands: Commands) -> Result<Handle, String> {
    Tray { view, commands }
        .spawn()
        .map(|h| Handle(Arc::new(h)))
        .map_err(|e| e.to_string())
}

impl Handle {
    /// Shows `view`: the icon's colour, the tooltip and the menu follow it.
    pub fn show(&self, view: ViewModel) {
        self.0.update(|t| t.view = view);
    }

    /// Nothing to do before the process ends: the item leaves the bus with its connection.
    pub fn close(&self) {}
}

fn to_ksni(entry: Entry) -> MenuItem<Tray> {
    match entry {
        Entry::Text(label) => StandardItem {
            label,
            enabled: false,
            ..Default::default()
        }
        .into(),
        Entry::Item(label, cmd) => StandardItem {
            label,
            activate: Box::new(move |t: &mut Tray| t.commands.send(cmd)),
            ..Default::default()
        }
        .into(),
        Entry::Separator => MenuItem::Separator,
        Entry::Sub(label, entries) => SubMenu {
            label,
            submenu: entries.into_iter().map(to_ksni).collect(),
            ..Default::default()
        }
        .into(),
    }
}

/// The dot in ARGB32, network byte order, as StatusNotifierItem wants it.
fn icon(look: Look, size: i32) -> Icon {
    let data = dot_rgba(look, size as u32)
        .chunks_exact(4)
        .flat_map(|p| [p[3], p[0], p[1], p[2]])
        .collect();
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
        self.commands.send(TrayCmd::HostOnline(true));
    }
    fn watcher_offline(&self, _reason: ksni::OfflineReason) -> bool {
        self.commands.send(TrayCmd::HostOnline(false));
        // Keep the item on the bus: a panel that restarts picks it up again.
        true
    }
    fn activate(&mut self, _x: i32, _y: i32) {
        self.commands.send(TrayCmd::Open);
    }
    fn menu(&self) -> Vec<MenuItem<Self>> {
        menu(&self.view).into_iter().map(to_ksni).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn icon_is_a_coloured_dot_in_argb_with_clear_corners() {
        let i = icon(Look::Online, 22);
        assert_eq!(i.data.len(), 22 * 22 * 4);
        assert_eq!(i.data[0], 0, "corner transparent");
        let mid = ((11 * 22 + 11) * 4) as usize;
        assert_eq!(&i.data[mid..mid + 4], &[255, 0x2e, 0xa0, 0x43]);
    }
}
