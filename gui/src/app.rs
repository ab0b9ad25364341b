//! The window (egui): lays out [`crate::view::model`]'s answer, runs the buttons' actions on a
//! worker thread, and repaints only when the daemon pushes a status or a person does something.

use crate::actions::{self, Action, JoinForm, CREATE_NEEDS};
use crate::tray::TrayCmd;
use crate::view::{self, Link, UiState, ViewModel};
use eframe::egui;
use std::path::PathBuf;
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// State shared with the subscription thread, the action workers and the tray.
#[derive(Debug)]
pub struct Shared {
    pub link: Link,
    pub ui: UiState,
    /// Actions under way (the buttons are greyed out meanwhile).
    pub busy: usize,
    /// The outcome of the last join (for the smoke test).
    pub last_join: Option<Result<String, String>>,
}

impl Shared {
    pub fn new() -> Arc<Mutex<Shared>> {
        Arc::new(Mutex::new(Shared {
            link: Link::Connecting,
            ui: UiState::default(),
            busy: 0,
            last_join: None,
        }))
    }

    pub fn view(&self) -> ViewModel {
        view::model(&self.link, &self.ui)
    }
}

/// `--smoke-test-join NET:PASSWORD`: join through the Join dialog's code path, wait until the
/// network shows a member, save a screenshot, print the view state as JSON and exit.
#[derive(Debug, Clone)]
pub struct Smoke {
    pub join: JoinForm,
    pub screenshot: Option<PathBuf>,
    pub exit_after_join: bool,
    pub deadline: Instant,
}

#[derive(Default)]
enum Dialog {
    #[default]
    None,
    Create {
        name: String,
        password: String,
    },
    Join(JoinForm),
    Leave(String),
}

pub struct App {
    socket: PathBuf,
    shared: Arc<Mutex<Shared>>,
    tray_rx: Receiver<TrayCmd>,
    dialog: Dialog,
    /// The port typed for "Check port", per peer.
    ports: std::collections::HashMap<String, String>,
    has_tray: bool,
    /// A panel shows the tray icon now (it can go away and come back while the GUI runs).
    tray_host: bool,
    /// Hide the window after its first frame (started at login: the tray is enough). Only with
    /// a tray, or nobody could open it again.
    hide_at_start: bool,
    smoke: Option<Smoke>,
    smoke_state: SmokeState,
}

#[derive(Debug, PartialEq)]
enum SmokeState {
    Start,
    Joining,
    Shooting,
    Done,
}

impl App {
    pub fn new(
        socket: PathBuf,
        shared: Arc<Mutex<Shared>>,
        tray_rx: Receiver<TrayCmd>,
        has_tray: bool,
        hidden: bool,
        smoke: Option<Smoke>,
    ) -> App {
        App {
            socket,
            shared,
            tray_rx,
            dialog: Dialog::None,
            ports: Default::default(),
            has_tray,
            tray_host: has_tray,
            hide_at_start: hidden && has_tray,
            smoke,
            smoke_state: SmokeState::Start,
        }
    }

    /// Runs `action` on a worker thread; its outcome lands in the shared UI state and wakes
    /// the window.
    fn run_action(&self, ctx: &egui::Context, action: Action) {
        let socket = self.socket.clone();
        let shared = self.shared.clone();
        let ctx = ctx.clone();
        {
            let mut s = shared.lock().unwrap();
            s.busy += 1;
            s.ui.error = None;
            s.ui.notice = None;
        }
        std::thread::spawn(move || {
            let outcome = actions::run(&socket, &action);
            let mut s = shared.lock().unwrap();
            s.busy -= 1;
            if matches!(action, Action::Join(_)) {
                s.last_join = Some(outcome.clone());
            }
            match outcome {
                Ok(m) => s.ui.notice = Some(m),
                Err(e) => s.ui.error = Some(e),
            }
            drop(s);
            ctx.request_repaint();
        });
    }

    /// What the Join dialog's button does (and the smoke test).
    fn submit_join(&mut self, ctx: &egui::Context, form: JoinForm) {
        match form.request() {
            Ok(_) => {
                self.dialog = Dialog::None;
                self.run_action(ctx, Action::Join(form));
            }
            Err(e) => {
                self.shared.lock().unwrap().ui.error = Some(e);
                self.dialog = Dialog::Join(form);
            }
        }
    }

    fn copy(&self, ctx: &egui::Context, text: &str) {
        ctx.copy_text(text.to_string());
        self.shared.lock().unwrap().ui.notice = Some(format!("Copied {text}"));
    }

    fn handle_tray(&mut self, ctx: &egui::Context) {
        while let Ok(cmd) = self.tray_rx.try_recv() {
            match cmd {
                TrayCmd::Power(on) => self.run_action(ctx, Action::Power(on)),
                TrayCmd::CopyIp => {
                    let me = self.shared.lock().unwrap().view().me;
                    if let Some(me) = me {
                        self.copy(ctx, &me.ip);
                    }
                }
                TrayCmd::Open => show_window(ctx),
                TrayCmd::HostOnline(on) => {
                    self.tray_host = on;
                    // No panel, no way to open a hidden window: show it, and let closing quit.
                    if !on {
                        show_window(ctx);
                    }
                }
                TrayCmd::Quit => {
                    self.has_tray = false;
                    ctx.send_viewport_cmd(egui::ViewportCommand::Close);
                }
            }
        }
    }

    fn smoke_step(&mut self, ctx: &egui::Context) {
        let Some(smoke) = self.smoke.clone() else {
            return;
        };
        if Instant::now() > smoke.deadline {
            let s = self.shared.lock().unwrap();
            eprintln!(
                "warren-gui smoke test: timed out in state {:?}; view: {}",
                self.smoke_state,
                serde_json::to_string(&s.view()).unwrap_or_default()
            );
            std::process::exit(2);
        }
        // Wake up now and then to notice the deadline.
        ctx.request_repaint_after(Duration::from_millis(500));
        match self.smoke_state {
            SmokeState::Start => {
                if matches!(self.shared.lock().unwrap().link, Link::Live(_)) {
                    self.smoke_state = SmokeState::Joining;
                    self.submit_join(ctx, smoke.join.clone());
                }
            }
            SmokeState::Joining => {
                let s = self.shared.lock().unwrap();
                if let Some(Err(e)) = &s.last_join {
                    eprintln!("warren-gui smoke test: join failed: {e}");
                    std::process::exit(1);
                }
                let vm = s.view();
                let shown = vm
                    .networks
                    .iter()
                    .any(|n| n.name == smoke.join.name && !n.members.is_empty());
                if matches!(s.last_join, Some(Ok(_))) && shown {
                    drop(s);
                    self.smoke_state = SmokeState::Shooting;
                    if smoke.screenshot.is_some() {
                        ctx.send_viewport_cmd(egui::ViewportCommand::Screenshot(
                            egui::UserData::default(),
                        ));
                    } else {
                        self.smoke_done(ctx, None);
                    }
                }
            }
            SmokeState::Shooting | SmokeState::Done => {}
        }
    }

    fn smoke_done(&mut self, ctx: &egui::Context, image: Option<&egui::ColorImage>) {
        let Some(smoke) = self.smoke.clone() else {
            return;
        };
        if let (Some(path), Some(image)) = (&smoke.screenshot, image) {
            if let Err(e) = write_ppm(path, image) {
                eprintln!("warren-gui: cannot write {}: {e}", path.display());
                std::process::exit(1);
            }
        }
        let vm = self.shared.lock().unwrap().view();
        println!("{}", serde_json::to_string(&vm).unwrap_or_default());
        self.smoke_state = SmokeState::Done;
        if smoke.exit_after_join {
            self.has_tray = false;
            ctx.send_viewport_cmd(egui::ViewportCommand::Close);
        }
    }
}

fn show_window(ctx: &egui::Context) {
    ctx.send_viewport_cmd(egui::ViewportCommand::Visible(true));
    ctx.send_viewport_cmd(egui::ViewportCommand::Minimized(false));
    ctx.send_viewport_cmd(egui::ViewportCommand::Focus);
}

/// A screenshot as binary PPM (P6): no image crate for one test artefact.
fn write_ppm(path: &std::path::Path, image: &egui::ColorImage) -> std::io::Result<()> {
    let [w, h] = image.size;
    let mut out = format!("P6\n{w} {h}\n255\n").into_bytes();
    out.reserve(w * h * 3);
    for p in &image.pixels {
        out.extend_from_slice(&[p.r(), p.g(), p.b()]);
    }
    std::fs::write(path, out)
}

pub fn look_color(look: view::Look) -> egui::Color32 {
    let (r, g, b) = look.rgb();
    egui::Color32::from_rgb(r, g, b)
}

fn dot(ui: &mut egui::Ui, color: egui::Color32) {
    let (rect, _) = ui.allocate_exact_size(egui::vec2(12.0, 12.0), egui::Sense::hover());
    ui.painter().circle_filled(rect.center(), 5.0, color);
}

impl eframe::App for App {
    fn logic(&mut self, ctx: &egui::Context, _frame: &mut eframe::Frame) {
        self.handle_tray(ctx);
        if std::mem::take(&mut self.hide_at_start) {
            ctx.send_viewport_cmd(egui::ViewportCommand::Visible(false));
        }
        // With a tray, closing the window hides it; Quit is in the tray's menu.
        if self.has_tray && self.tray_host && ctx.input(|i| i.viewport().close_requested()) {
            ctx.send_viewport_cmd(egui::ViewportCommand::CancelClose);
            ctx.send_viewport_cmd(egui::ViewportCommand::Visible(false));
        }
        let shot = ctx.input(|i| {
            i.raw.events.iter().find_map(|e| match e {
                egui::Event::Screenshot { image, .. } => Some(image.clone()),
                _ => None,
            })
        });
        if let Some(image) = shot {
            self.smoke_done(ctx, Some(image.as_ref()));
        }
        self.smoke_step(ctx);
    }

    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        let ctx = ui.ctx().clone();
        let (vm, busy) = {
            let s = self.shared.lock().unwrap();
            (s.view(), s.busy > 0)
        };
        egui::CentralPanel::default().show_inside(ui, |ui| {
            self.header(ui, &ctx, &vm, busy);
            ui.separator();
            egui::ScrollArea::vertical().show(ui, |ui| {
                if let Some(hint) = &vm.empty_hint {
                    ui.label(hint);
                }
                for net in &vm.networks {
                    self.network(ui, &ctx, net, busy);
                }
            });
        });
        self.dialogs(&ctx, busy);
    }
}

impl App {
    fn header(&mut self, ui: &mut egui::Ui, ctx: &egui::Context, vm: &ViewModel, busy: bool) {
        ui.horizontal(|ui| {
            dot(ui, look_color(vm.look));
            ui.strong(&vm.headline);
        });
        ui.horizontal(|ui| {
            if let Some(me) = &vm.me {
                ui.label(&me.name);
                if ui
                    .link(me.ip.as_str())
                    .on_hover_text("Click to copy your Warren IP")
                    .clicked()
                {
                    self.copy(ctx, &me.ip);
                }
            }
            if let Some(on) = vm.power {
                let label = if on { "Turn off" } else { "Turn on" };
                if ui.add_enabled(!busy, egui::Button::new(label)).clicked() {
                    self.run_action(ctx, Action::Power(!on));
                }
            }
        });
        ui.horizontal(|ui| {
            let enabled = vm.can_manage_networks && !busy;
            if ui
                .add_enabled(enabled, egui::Button::new("Create network…"))
                .clicked()
            {
                self.dialog = Dialog::Create {
                    name: String::new(),
                    password: String::new(),
                };
            }
            // Joining by invite also works before `warren up` or while off: the code names the
            // coordinator and the daemon comes up for it. A password join while off gets the
            // daemon's own answer in the notice.
            let can_join = vm.power.is_some() && !busy;
            if ui
                .add_enabled(can_join, egui::Button::new("Join network…"))
                .clicked()
            {
                self.dialog = Dialog::Join(JoinForm::default());
            }
            if busy {
                ui.spinner();
            }
        });
        if let Some(e) = &vm.error {
            ui.colored_label(look_color(view::Look::Problem), e);
        } else if let Some(n) = &vm.notice {
            ui.label(n);
        }
    }

    fn network(
        &mut self,
        ui: &mut egui::Ui,
        ctx: &egui::Context,
        net: &view::NetworkView,
        busy: bool,
    ) {
        let title = format!("{}  —  {}", net.name, net.summary);
        egui::CollapsingHeader::new(title)
            .id_salt(&net.name)
            .default_open(true)
            .show(ui, |ui| {
                for m in &net.members {
                    ui.horizontal(|ui| {
                        dot(
                            ui,
                            look_color(if m.online {
                                view::Look::Online
                            } else {
                                view::Look::Off
                            }),
                        );
                        ui.strong(&m.name);
                        ui.monospace(&m.ip);
                        ui.label(&m.connection);
                        if let Some(rtt) = &m.rtt {
                            ui.weak(rtt);
                        }
                    });
                    ui.horizontal(|ui| {
                        ui.add_space(16.0);
                        if !m.ip.is_empty() && ui.small_button("Copy IP").clicked() {
                            self.copy(ctx, &m.ip);
                        }
                        if ui
                            .add_enabled(m.online && !busy, egui::Button::new("Ping").small())
                            .clicked()
                        {
                            self.run_action(ctx, Action::Ping(m.name.clone()));
                        }
                        let port = self.ports.entry(m.name.clone()).or_default();
                        ui.add(
                            egui::TextEdit::singleline(port)
                                .hint_text("port, e.g. 25565")
                                .desired_width(110.0),
                        );
                        let port = port.clone();
                        if ui
                            .add_enabled(
                                !busy && !port.trim().is_empty(),
                                egui::Button::new("Check port").small(),
                            )
                            .clicked()
                        {
                            self.run_action(
                                ctx,
                                Action::Check {
                                    peer: m.name.clone(),
                                    port,
                                },
                            );
                        }
                    });
                }
                if net.can_leave
                    && ui
                        .add_enabled(!busy, egui::Button::new("Leave network…"))
                        .clicked()
                {
                    self.dialog = Dialog::Leave(net.name.clone());
                }
            });
    }

    fn dialogs(&mut self, ctx: &egui::Context, busy: bool) {
        let mut dialog = std::mem::take(&mut self.dialog);
        let mut close = false;
        let mut submit: Option<Action> = None;
        let mut join: Option<JoinForm> = None;
        let mut invalid: Option<String> = None;
        match &mut dialog {
            Dialog::None => {}
            Dialog::Create { name, password } => {
                egui::Modal::new(egui::Id::new("create")).show(ctx, |ui| {
                    ui.heading("Create a network");
                    ui.label("Name");
                    ui.text_edit_singleline(name);
                    ui.label("Password (people need it to join)");
                    ui.add(egui::TextEdit::singleline(password).password(true));
                    ui.horizontal(|ui| {
                        if ui.add_enabled(!busy, egui::Button::new("Create")).clicked() {
                            // As Join does: a form with something missing stays open.
                            if name.trim().is_empty() || password.is_empty() {
                                invalid = Some(CREATE_NEEDS.to_string());
                            } else {
                                submit = Some(Action::Create {
                                    name: name.clone(),
                                    password: password.clone(),
                                });
                            }
                        }
                        close |= ui.button("Cancel").clicked();
                    });
                });
            }
            Dialog::Join(form) => {
                egui::Modal::new(egui::Id::new("join")).show(ctx, |ui| {
                    ui.heading("Join a network");
                    ui.label("Name");
                    ui.text_edit_singleline(&mut form.name);
                    ui.label("Password");
                    ui.add(egui::TextEdit::singleline(&mut form.password).password(true));
                    ui.label("…or paste an invite code");
                    ui.text_edit_singleline(&mut form.invite);
                    ui.horizontal(|ui| {
                        if ui.add_enabled(!busy, egui::Button::new("Join")).clicked() {
                            join = Some(form.clone());
                        }
                        close |= ui.button("Cancel").clicked();
                    });
                });
            }
            Dialog::Leave(name) => {
                egui::Modal::new(egui::Id::new("leave")).show(ctx, |ui| {
                    ui.heading(format!("Leave {name}?"));
                    ui.label("You can join again later with its password or an invite code.");
                    ui.horizontal(|ui| {
                        if ui.add_enabled(!busy, egui::Button::new("Leave")).clicked() {
                            submit = Some(Action::Leave(name.clone()));
                        }
                        close |= ui.button("Cancel").clicked();
                    });
                });
            }
        }
        if let Some(e) = invalid {
            self.shared.lock().unwrap().ui.error = Some(e);
        }
        if let Some(form) = join {
            self.submit_join(ctx, form);
            return;
        }
        if let Some(action) = submit {
            self.run_action(ctx, action);
            close = true;
        }
        if !close {
            self.dialog = dialog;
        }
    }
}
