//! The LAN games panel: which games' discovery ports are shared with friends, their counters,
//! a switch per network, and a form to add a game's port. `games` is a separate request from
//! the pushed status, so the panel asks for it while it is open.

use super::{look_color, App};
use crate::actions::{self, Action};
use crate::view::{self, GamesView, ViewModel};
use eframe::egui;
use std::time::Instant;

impl App {
    pub(super) fn games_panel(
        &mut self,
        ui: &mut egui::Ui,
        ctx: &egui::Context,
        vm: &ViewModel,
        busy: bool,
    ) {
        let Some(g) = &vm.games else {
            return;
        };
        egui::CollapsingHeader::new("LAN games")
            .id_salt("lan-games")
            .default_open(false)
            .show(ui, |ui| {
                // Only while open: the body is not run when the panel is folded.
                self.poll_games(ctx);
                self.games_body(ui, ctx, g, busy);
            });
    }

    /// Asks the daemon at most every [`view::GAMES_POLL`], one question at a time, and wakes
    /// the window for the next one.
    fn poll_games(&mut self, ctx: &egui::Context) {
        let now = Instant::now();
        let asking = self.shared.lock().unwrap().games_asking;
        if view::games_due(self.games_asked, now, asking) {
            self.games_asked = Some(now);
            self.shared.lock().unwrap().games_asking = true;
            let (socket, shared, ctx2) = (self.socket.clone(), self.shared.clone(), ctx.clone());
            std::thread::spawn(move || {
                let answer = actions::games::fetch(&socket);
                let mut s = shared.lock().unwrap();
                s.games_asking = false;
                s.ui.games = Some(answer);
                drop(s);
                ctx2.request_repaint();
            });
        }
        ctx.request_repaint_after(view::GAMES_POLL);
    }

    fn games_body(&mut self, ui: &mut egui::Ui, ctx: &egui::Context, g: &GamesView, busy: bool) {
        ui.horizontal_wrapped(|ui| {
            super::dot(ui, look_color(g.look));
            ui.label(&g.headline);
            if g.loading {
                ui.spinner();
            }
        });
        for p in &g.ports {
            ui.horizontal_wrapped(|ui| {
                ui.strong(&p.name);
                ui.label(&p.port);
                ui.weak(&p.how);
            });
            ui.horizontal(|ui| {
                ui.add_space(16.0);
                ui.weak(&p.counters);
                if p.yours
                    && ui
                        .add_enabled(!busy, egui::Button::new("Remove").small())
                        .on_hover_text("Stop sharing this port (you added it)")
                        .clicked()
                {
                    self.run_action(ctx, Action::RemoveGamePort(p.spec.clone()));
                }
            });
        }
        if let Some(none) = &g.no_ports {
            ui.weak(none);
        }
        if !g.can_change {
            return;
        }
        ui.separator();
        if let Some(none) = &g.no_networks {
            ui.weak(none);
        } else {
            ui.label("Share LAN games with:");
        }
        for n in &g.networks {
            let mut on = n.enabled;
            if ui
                .add_enabled(!busy, egui::Checkbox::new(&mut on, n.network.as_str()))
                .on_hover_text(format!(
                    "Your friends in {} find your LAN games, and you theirs",
                    n.network
                ))
                .changed()
            {
                self.run_action(
                    ctx,
                    Action::GameNetwork {
                        network: n.network.clone(),
                        enabled: on,
                    },
                );
            }
        }
        if let Some(groups) = &g.groups {
            ui.weak(groups);
        }
        ui.separator();
        ui.label("Add a game's port (its manual or website names the one for LAN games):");
        ui.horizontal_wrapped(|ui| {
            let form = &mut self.game_form;
            ui.add(
                egui::TextEdit::singleline(&mut form.port)
                    .hint_text("port, e.g. 47624")
                    .desired_width(105.0),
            );
            ui.add(
                egui::TextEdit::singleline(&mut form.last)
                    .hint_text("to port (optional)")
                    .desired_width(125.0),
            )
            .on_hover_text("For a game that uses several ports: the last one of the range");
            ui.add(
                egui::TextEdit::singleline(&mut form.group)
                    .hint_text("group (optional)")
                    .desired_width(110.0),
            )
            .on_hover_text(
                "Only when the game's instructions name a multicast group, such as 239.1.2.3; \
                 leave it empty for a game that broadcasts",
            );
            let form = form.clone();
            if ui.add_enabled(!busy, egui::Button::new("Add")).clicked()
                && self.submit(ctx, Action::AddGamePort(form))
            {
                self.game_form = Default::default();
            }
        });
    }
}
