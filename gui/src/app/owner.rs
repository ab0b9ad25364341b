//! Invite friends (make a code, copy it, list and revoke) and the owner's controls: lock,
//! join requests, remove (and ban) members, rename, change the password, delete.

use super::{App, Dialog, Outcome};
use crate::actions::{Action, Expiry};
use crate::view::{self, OwnerView};
use eframe::egui;

fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl App {
    /// Opens the Invite friends dialog and asks the daemon for the open invites.
    pub(super) fn open_invite(&mut self, ctx: &egui::Context, network: &str) {
        self.dialog = Dialog::Invite {
            network: network.to_string(),
            expiry: Expiry::default(),
        };
        self.run_action(ctx, Action::ListInvites(network.to_string()));
    }

    pub(super) fn invite_dialog(
        &mut self,
        ctx: &egui::Context,
        network: &str,
        expiry: &mut Expiry,
        busy: bool,
    ) -> Outcome {
        let (code, list) = {
            let s = self.shared.lock().unwrap();
            let code = s
                .last_invite
                .as_ref()
                .filter(|(n, _)| n == network)
                .map(|(_, c)| c.clone());
            (code, s.invites.get(network).cloned())
        };
        let mut out = Outcome::Stay;
        egui::Modal::new(egui::Id::new("invite")).show(ctx, |ui| {
            ui.heading(format!("Invite friends to {network}"));
            ui.label("The code works for");
            ui.horizontal(|ui| {
                for e in Expiry::ALL {
                    ui.radio_value(expiry, e, e.label());
                }
            });
            if ui
                .add_enabled(!busy, egui::Button::new("Make an invite code"))
                .clicked()
            {
                out = Outcome::Run(Action::Invite {
                    network: network.to_string(),
                    expiry: *expiry,
                });
            }
            if let Some(code) = &code {
                ui.label("Copied to the clipboard: paste it in a message to your friends.");
                let mut shown = code.clone();
                ui.add(
                    egui::TextEdit::multiline(&mut shown)
                        .font(egui::TextStyle::Monospace)
                        .desired_rows(2)
                        .desired_width(f32::INFINITY),
                );
                if ui.small_button("Copy again").clicked() {
                    self.shared.lock().unwrap().pending_copy = Some(code.clone());
                }
            }
            ui.separator();
            ui.strong("Open invites");
            match &list {
                None => {
                    ui.spinner();
                }
                // The daemon's own words (e.g. it cannot list them yet).
                Some(Err(e)) => {
                    ui.weak(e);
                }
                Some(Ok(invites)) if invites.is_empty() => {
                    ui.weak("None: make one above.");
                }
                Some(Ok(invites)) => {
                    for row in view::invite_rows(invites, now_unix()) {
                        ui.horizontal(|ui| {
                            ui.label(&row.text);
                            if ui
                                .add_enabled(!busy, egui::Button::new("Revoke").small())
                                .on_hover_text("The code stops working; people who joined stay")
                                .clicked()
                            {
                                out = Outcome::Run(Action::Revoke {
                                    network: network.to_string(),
                                    invite: row.id.clone(),
                                });
                            }
                        });
                    }
                }
            }
            ui.separator();
            if ui.button("Close").clicked() {
                out = Outcome::Close;
            }
        });
        out
    }

    pub(super) fn owner_controls(
        &mut self,
        ui: &mut egui::Ui,
        ctx: &egui::Context,
        network: &str,
        owner: &OwnerView,
        busy: bool,
    ) {
        ui.group(|ui| {
            ui.strong("You own this network");
            let mut locked = owner.locked;
            if ui
                .add_enabled(
                    !busy,
                    egui::Checkbox::new(&mut locked, "Locked: new members wait for your approval"),
                )
                .changed()
            {
                self.run_action(
                    ctx,
                    Action::Lock {
                        network: network.to_string(),
                        locked,
                    },
                );
            }
            for r in &owner.routes {
                ui.horizontal(|ui| {
                    ui.label(&r.text);
                    let (label, approve) = if r.approved {
                        ("Stop", false)
                    } else {
                        ("Allow", true)
                    };
                    if ui
                        .add_enabled(!busy, egui::Button::new(label).small())
                        .clicked()
                    {
                        self.run_action(
                            ctx,
                            Action::ApproveRoute {
                                network: network.to_string(),
                                who: r.who.clone(),
                                prefix: r.prefix.clone(),
                                approve,
                            },
                        );
                    }
                });
            }
            for r in &owner.requests {
                ui.horizontal(|ui| {
                    ui.label(&r.text);
                    for (label, approve) in [("Approve", true), ("Deny", false)] {
                        if ui
                            .add_enabled(!busy, egui::Button::new(label).small())
                            .clicked()
                        {
                            self.run_action(
                                ctx,
                                Action::Answer {
                                    network: network.to_string(),
                                    who: r.who.clone(),
                                    approve,
                                },
                            );
                        }
                    }
                });
            }
            ui.horizontal(|ui| {
                if ui
                    .add_enabled(!busy, egui::Button::new("Rename…").small())
                    .clicked()
                {
                    self.dialog = Dialog::RenameNetwork {
                        network: network.to_string(),
                        new_name: network.to_string(),
                    };
                }
                if ui
                    .add_enabled(!busy, egui::Button::new("Change password…").small())
                    .clicked()
                {
                    self.dialog = Dialog::SetPassword {
                        network: network.to_string(),
                        password: String::new(),
                    };
                }
                if ui
                    .add_enabled(!busy, egui::Button::new("Delete network…").small())
                    .clicked()
                {
                    self.dialog = Dialog::Confirm {
                        title: format!("Delete {network}?"),
                        text: "It is deleted for everyone in it, and its invite codes stop \
                               working. This cannot be undone."
                            .into(),
                        button: "Delete".into(),
                        action: Action::Delete(network.to_string()),
                    };
                }
            });
        });
    }

    /// Remove / Remove and ban, beside a member of a network this host owns.
    pub(super) fn member_controls(
        &mut self,
        ui: &mut egui::Ui,
        network: &str,
        member: &str,
        busy: bool,
    ) {
        for (label, ban) in [("Remove…", false), ("Remove and ban…", true)] {
            if ui
                .add_enabled(!busy, egui::Button::new(label).small())
                .clicked()
            {
                let text = if ban {
                    format!("{member} leaves {network} and can never join it again.")
                } else {
                    format!("{member} leaves {network}; an invite code lets them back in.")
                };
                self.dialog = Dialog::Confirm {
                    title: format!("Remove {member}?"),
                    text,
                    button: if ban { "Remove and ban" } else { "Remove" }.into(),
                    action: Action::Remove {
                        network: network.to_string(),
                        who: member.to_string(),
                        ban,
                    },
                };
            }
        }
    }
}

pub(super) fn rename_dialog(
    ctx: &egui::Context,
    network: &str,
    new_name: &mut String,
    busy: bool,
) -> Outcome {
    let mut out = Outcome::Stay;
    egui::Modal::new(egui::Id::new("rename")).show(ctx, |ui| {
        ui.heading(format!("Rename {network}"));
        ui.label("New name");
        ui.text_edit_singleline(new_name);
        ui.horizontal(|ui| {
            if ui.add_enabled(!busy, egui::Button::new("Rename")).clicked() {
                out = Outcome::Submit(Action::RenameNetwork {
                    network: network.to_string(),
                    new_name: new_name.clone(),
                });
            }
            if ui.button("Cancel").clicked() {
                out = Outcome::Close;
            }
        });
    });
    out
}

pub(super) fn password_dialog(
    ctx: &egui::Context,
    network: &str,
    password: &mut String,
    busy: bool,
) -> Outcome {
    let mut out = Outcome::Stay;
    egui::Modal::new(egui::Id::new("password")).show(ctx, |ui| {
        ui.heading(format!("Change the password of {network}"));
        ui.label("Members stay; new people need the new password (or an invite code).");
        ui.add(egui::TextEdit::singleline(password).password(true));
        ui.horizontal(|ui| {
            if ui.add_enabled(!busy, egui::Button::new("Change")).clicked() {
                out = Outcome::Submit(Action::SetPassword {
                    network: network.to_string(),
                    password: password.clone(),
                });
            }
            if ui.button("Cancel").clicked() {
                out = Outcome::Close;
            }
        });
    });
    out
}

pub(super) fn confirm_dialog(
    ctx: &egui::Context,
    title: &str,
    text: &str,
    button: &str,
    action: &Action,
    busy: bool,
) -> Outcome {
    let mut out = Outcome::Stay;
    egui::Modal::new(egui::Id::new("confirm")).show(ctx, |ui| {
        ui.heading(title);
        ui.label(text);
        ui.horizontal(|ui| {
            if ui.add_enabled(!busy, egui::Button::new(button)).clicked() {
                out = Outcome::Submit(action.clone());
            }
            if ui.button("Cancel").clicked() {
                out = Outcome::Close;
            }
        });
    });
    out
}
