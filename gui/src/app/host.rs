//! The first run (name, then Host or Join), the name-taken choice, the Host dialog and the
//! panel of the networks this PC hosts.

use super::{look_color, App, Dialog, Outcome};
use crate::actions::{self, Action, HostForm, JoinForm};
use crate::view::{FirstRun, ViewModel};
use eframe::egui;

impl App {
    pub(super) fn first_run_panel(
        &mut self,
        ui: &mut egui::Ui,
        ctx: &egui::Context,
        vm: &ViewModel,
        busy: bool,
    ) {
        let Some(first) = &vm.first_run else {
            self.name_field = None;
            return;
        };
        ui.group(|ui| match first {
            FirstRun::AskName {
                question,
                suggested,
            } => {
                ui.heading(question);
                let name = self.name_field.get_or_insert_with(|| suggested.clone());
                ui.text_edit_singleline(name);
                ui.weak("Your friends see this name in their networks. You can change it later.");
                let name = name.clone();
                if ui
                    .add_enabled(!busy, egui::Button::new("Continue"))
                    .clicked()
                {
                    self.choose_name(ctx, name, None);
                }
            }
            FirstRun::HostOrJoin { text } => {
                ui.label(text);
                ui.horizontal(|ui| {
                    if ui
                        .add_enabled(!busy, egui::Button::new("Host a network"))
                        .clicked()
                    {
                        self.dialog = Dialog::Host(HostForm::default());
                    }
                    if ui
                        .add_enabled(!busy, egui::Button::new("Join a network"))
                        .clicked()
                    {
                        self.dialog = Dialog::Join(JoinForm::default());
                    }
                });
            }
        });
    }

    /// The first run's Continue, and the name-taken choice: SetName, then what was refused.
    pub(super) fn choose_name(&mut self, ctx: &egui::Context, name: String, retry: Option<Action>) {
        let action = Action::SetName {
            name,
            retry: retry.map(Box::new),
        };
        match action.request() {
            Ok(_) => self.run_action(ctx, action),
            Err(e) => self.shared.lock().unwrap().ui.error = Some(actions::incomplete(e)),
        }
    }

    pub(super) fn name_taken_panel(
        &mut self,
        ui: &mut egui::Ui,
        ctx: &egui::Context,
        vm: &ViewModel,
        busy: bool,
    ) {
        let Some(taken) = &vm.name_taken else {
            self.taken_field = None;
            return;
        };
        ui.group(|ui| {
            ui.colored_label(look_color(crate::view::Look::Problem), &taken.message);
            let name = self
                .taken_field
                .get_or_insert_with(|| taken.suggestion.clone());
            ui.horizontal(|ui| {
                ui.label("New name");
                ui.text_edit_singleline(name);
            });
            let name = name.clone();
            if ui
                .add_enabled(!busy, egui::Button::new("Use this name and try again"))
                .clicked()
            {
                let retry = self.shared.lock().unwrap().retry.take();
                self.choose_name(ctx, name, retry);
            }
        });
    }

    pub(super) fn hosting_panel(&mut self, ui: &mut egui::Ui, vm: &ViewModel) {
        let Some(h) = &vm.hosting else {
            return;
        };
        ui.group(|ui| {
            ui.horizontal(|ui| {
                super::dot(ui, look_color(h.look));
                ui.strong("Hosted on this PC");
            });
            ui.label(&h.headline);
            if let Some(lan) = &h.lan {
                ui.weak(lan);
            }
            if !h.networks.is_empty() {
                ui.label(format!("Networks: {}", h.networks.join(", ")));
            }
        });
    }
}

pub(super) fn host_dialog(ctx: &egui::Context, form: &mut HostForm, busy: bool) -> Outcome {
    let mut out = Outcome::Stay;
    egui::Modal::new(egui::Id::new("host")).show(ctx, |ui| {
        ui.heading("Host a network");
        ui.label("This PC becomes the network's host: your friends join it with an invite code.");
        ui.label("Network name");
        ui.text_edit_singleline(&mut form.name);
        ui.checkbox(
            &mut form.use_password,
            "Also let people join with a password",
        );
        if form.use_password {
            ui.add(egui::TextEdit::singleline(&mut form.password).password(true));
        }
        ui.horizontal(|ui| {
            if ui.add_enabled(!busy, egui::Button::new("Host")).clicked() {
                out = Outcome::Submit(Action::Host(form.clone()));
            }
            if ui.button("Cancel").clicked() {
                out = Outcome::Close;
            }
        });
    });
    out
}
