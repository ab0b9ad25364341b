//! The window (egui): lays out [`crate::view::model`]'s answer, runs the buttons' actions on a
//! worker thread, and repaints only when the daemon pushes a status or a person does something.

use crate::actions::{self, Action, Expiry, GamePortForm, HostForm, JoinForm, Reply};
use crate::tray::TrayCmd;
use crate::view::{self, Link, UiState, ViewModel};
use eframe::egui;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use warren_proto::api::{ApiError, ErrorCode, InviteInfo};

mod games;
mod host;
mod owner;
mod smoke_host;
pub use smoke_host::SmokeHost;

/// State shared with the subscription thread, the action workers and the tray.
#[derive(Debug)]
pub struct Shared {
    pub link: Link,
    pub ui: UiState,
    /// Actions under way (the buttons are greyed out meanwhile).
    pub busy: usize,
    /// The outcome of the last join (for the smoke test).
    pub last_join: Option<Result<String, ApiError>>,
    /// The last action and its outcome (for the hosting smoke test).
    pub last: Option<(Action, Result<Reply, ApiError>)>,
    /// A join the coordinator refused for the name: tried again after a new name is chosen.
    pub retry: Option<Action>,
    /// The open invites per network (or why the daemon did not list them).
    pub invites: BTreeMap<String, Result<Vec<InviteInfo>, String>>,
    /// The invite code made last, and its network (shown in the Invite dialog).
    pub last_invite: Option<(String, String)>,
    /// Text a worker wants on the clipboard (only the UI thread can put it there).
    pub pending_copy: Option<String>,
    /// A `games` question is under way (the LAN games panel asks one at a time).
    pub games_asking: bool,
}

impl Shared {
    pub fn new() -> Arc<Mutex<Shared>> {
        Arc::new(Mutex::new(Shared {
            link: Link::Connecting,
            ui: UiState::default(),
            busy: 0,
            last_join: None,
            last: None,
            retry: None,
            invites: BTreeMap::new(),
            last_invite: None,
            pending_copy: None,
            games_asking: false,
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
    Host(HostForm),
    Invite {
        network: String,
        expiry: Expiry,
    },
    RenameNetwork {
        network: String,
        new_name: String,
    },
    SetPassword {
        network: String,
        password: String,
    },
    /// "Are you sure?" before an action that cannot be undone.
    Confirm {
        title: String,
        text: String,
        button: String,
        action: Action,
    },
}

/// What a dialog's frame asks for.
enum Outcome {
    Stay,
    Close,
    /// Run the action and close the dialog (unless the form is incomplete).
    Submit(Action),
    /// Run the action and keep the dialog open (Invite: make a code, revoke one).
    Run(Action),
    Join(JoinForm),
}

pub struct App {
    socket: PathBuf,
    shared: Arc<Mutex<Shared>>,
    tray_rx: Receiver<TrayCmd>,
    dialog: Dialog,
    /// The port typed for "Check port", per peer.
    ports: std::collections::HashMap<String, String>,
    /// The MAC typed beside each member for "Wake PC", by member name.
    wake_macs: std::collections::HashMap<String, String>,
    has_tray: bool,
    /// A panel shows the tray icon now (it can go away and come back while the GUI runs).
    tray_host: bool,
    /// Hide the window after its first frame (started at login: the tray is enough). Only with
    /// a tray, or nobody could open it again.
    hide_at_start: bool,
    smoke: Option<Smoke>,
    smoke_state: SmokeState,
    smoke_host: Option<SmokeHost>,
    /// The first run's name field (filled with the daemon's suggestion when first shown).
    name_field: Option<String>,
    /// The name-taken choice's field.
    taken_field: Option<String>,
    /// When the LAN games panel last asked the daemon.
    games_asked: Option<Instant>,
    /// The LAN games panel's Add form.
    game_form: GamePortForm,
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
        smoke_host: Option<SmokeHost>,
    ) -> App {
        App {
            socket,
            shared,
            tray_rx,
            dialog: Dialog::None,
            ports: Default::default(),
            wake_macs: Default::default(),
            has_tray,
            tray_host: has_tray,
            hide_at_start: hidden && has_tray,
            smoke,
            smoke_state: SmokeState::Start,
            smoke_host,
            name_field: None,
            taken_field: None,
            games_asked: None,
            game_form: GamePortForm::default(),
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
            let outcome = actions::run_reply(&socket, &action);
            // A changed port or switch: the LAN games panel shows it at once.
            let games =
                (action.is_games() && outcome.is_ok()).then(|| actions::games::fetch(&socket));
            // A new code or a revoked one: the dialog's list follows.
            let refresh = match (&action, &outcome) {
                (Action::Invite { network, .. } | Action::Revoke { network, .. }, Ok(_)) => {
                    let list = Action::ListInvites(network.clone());
                    let got = actions::run_reply(&socket, &list);
                    Some((list, got))
                }
                _ => None,
            };
            let mut s = shared.lock().unwrap();
            s.busy -= 1;
            settle(&mut s, &action, &outcome);
            if let Some((list, got)) = refresh {
                settle(&mut s, &list, &got);
            }
            if let Some(games) = games {
                s.ui.games = Some(games);
            }
            s.last = Some((action, outcome));
            drop(s);
            ctx.request_repaint();
        });
    }

    /// What a dialog's main button does: runs the action, or says what is missing in the
    /// form (then the dialog stays open: `false`).
    fn submit(&mut self, ctx: &egui::Context, action: Action) -> bool {
        match action.request() {
            Ok(_) => {
                self.run_action(ctx, action);
                true
            }
            Err(e) => {
                self.shared.lock().unwrap().ui.error = Some(actions::incomplete(e));
                false
            }
        }
    }

    /// What the Join dialog's button does (and the smoke test).
    fn submit_join(&mut self, ctx: &egui::Context, form: JoinForm) {
        match form.request() {
            Ok(_) => {
                self.dialog = Dialog::None;
                self.run_action(ctx, Action::Join(form));
            }
            Err(e) => {
                self.shared.lock().unwrap().ui.error = Some(actions::incomplete(e));
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
                TrayCmd::Host => {
                    show_window(ctx);
                    self.dialog = Dialog::Host(HostForm::default());
                }
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

/// Puts an action's outcome where the window shows it.
fn settle(s: &mut Shared, action: &Action, outcome: &Result<Reply, ApiError>) {
    if let Action::Join(_) = action {
        s.last_join = Some(outcome.clone().map(|r| r.message()));
    }
    match (action, outcome) {
        (_, Ok(Reply::Invites { network, invites })) => {
            s.invites.insert(network.clone(), Ok(invites.clone()));
        }
        (Action::ListInvites(network), Err(e)) => {
            s.invites.insert(network.clone(), Err(e.message.clone()));
        }
        (_, Ok(reply)) => {
            if let Reply::Invite { code, network, .. } = reply {
                s.pending_copy = Some(code.clone());
                s.last_invite = Some((network.clone(), code.clone()));
            }
            if let Action::SetName { .. } = action {
                s.ui.name_chosen = true;
                s.retry = None;
            }
            s.ui.notice = Some(reply.message());
        }
        (_, Err(e)) => {
            if e.code == ErrorCode::NameTaken {
                // Tried again with the new name the window asks for.
                s.retry = match action {
                    Action::SetName { retry, .. } => retry.as_deref().cloned(),
                    other => Some(other.clone()),
                };
            }
            s.ui.error = Some(e.clone());
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
        // Not when the tray already said nothing shows its icon (handled just above).
        if std::mem::take(&mut self.hide_at_start) && self.tray_host {
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
        let copy = self.shared.lock().unwrap().pending_copy.take();
        if let Some(code) = copy {
            ctx.copy_text(code);
        }
        if let Some(image) = shot {
            if self.smoke_host.is_some() {
                self.smoke_host_shot(ctx, image.as_ref());
            } else {
                self.smoke_done(ctx, Some(image.as_ref()));
            }
        }
        self.smoke_step(ctx);
        self.smoke_host_step(ctx);
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
                self.name_taken_panel(ui, &ctx, &vm, busy);
                self.first_run_panel(ui, &ctx, &vm, busy);
                self.hosting_panel(ui, &vm);
                if let Some(hint) = &vm.empty_hint {
                    ui.label(hint);
                }
                for net in &vm.networks {
                    self.network(ui, &ctx, net, busy);
                }
                self.games_panel(ui, &ctx, &vm, busy);
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
        if let Some(mut relay) = vm.relay_for_others {
            let switch = ui
                .add_enabled(
                    !busy,
                    egui::Checkbox::new(&mut relay, "Help friends who can't connect directly"),
                )
                .on_hover_text(
                    "This PC passes on their traffic, still encrypted end to end, when they \
                     can reach it (a public address, or a port your router forwards). On by \
                     default while this PC hosts a network.",
                );
            if switch.changed() {
                self.run_action(ctx, Action::Relay(relay));
            }
        }
        if let Some(share) = &vm.share_lan {
            let mut on = share.on;
            let label = format!(
                "Let friends reach this PC's home network ({})",
                share.prefix
            );
            let switch = ui
                .add_enabled(!busy, egui::Checkbox::new(&mut on, label))
                .on_hover_text(
                    "Friends in your networks can then reach the other computers at home (a \
                     PC for remote desktop, a NAS), once the network's owner approves it. This \
                     PC passes their traffic on and nothing else.",
                );
            if switch.changed() {
                self.run_action(ctx, Action::AdvertiseRoutes(share.with(on)));
            }
            if let Some(note) = &share.note {
                ui.weak(note);
            }
        }
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
            if ui
                .add_enabled(vm.can_host && !busy, egui::Button::new("Host a network…"))
                .on_hover_text("This PC becomes the network's host: no server needed")
                .clicked()
            {
                self.dialog = Dialog::Host(HostForm::default());
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
                if net.waiting {
                    ui.label(view::WAITING);
                }
                if let Some(note) = &net.host_offline {
                    ui.colored_label(look_color(view::Look::Connecting), note);
                }
                for r in &net.routes {
                    ui.weak(r);
                }
                if net.can_invite
                    && ui
                        .add_enabled(!busy, egui::Button::new("Invite friends…"))
                        .clicked()
                {
                    self.open_invite(ctx, &net.name);
                }
                if let Some(owner) = &net.owner {
                    self.owner_controls(ui, ctx, &net.name, owner, busy);
                }
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
                        if net.owner.is_some() {
                            self.member_controls(ui, &net.name, &m.name, busy);
                        }
                    });
                    if m.online {
                        self.wake_row(ui, ctx, &m.name, busy);
                    }
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

    /// Wake a sleeping PC on `member`'s LAN (Wake-on-LAN): the member, awake there, sends the
    /// wake-up packet for the MAC typed here.
    fn wake_row(&mut self, ui: &mut egui::Ui, ctx: &egui::Context, member: &str, busy: bool) {
        ui.horizontal(|ui| {
            ui.add_space(16.0);
            let mac = self.wake_macs.entry(member.to_string()).or_default();
            ui.add(
                egui::TextEdit::singleline(mac)
                    .hint_text("MAC of a PC on its LAN, e.g. aa:bb:cc:dd:ee:ff")
                    .desired_width(260.0),
            )
            .on_hover_text(format!(
                "{member} sends the wake-up packet on its own network, so a PC there that is \
                 asleep (and has Wake-on-LAN switched on) starts"
            ));
            let mac = mac.clone();
            if ui
                .add_enabled(
                    !busy && !mac.trim().is_empty(),
                    egui::Button::new("Wake PC").small(),
                )
                .clicked()
            {
                self.run_action(
                    ctx,
                    Action::Wake {
                        via: member.to_string(),
                        mac,
                    },
                );
            }
        });
    }

    fn dialogs(&mut self, ctx: &egui::Context, busy: bool) {
        let mut dialog = std::mem::take(&mut self.dialog);
        let outcome = match &mut dialog {
            Dialog::None => Outcome::Stay,
            Dialog::Create { name, password } => {
                let mut out = Outcome::Stay;
                egui::Modal::new(egui::Id::new("create")).show(ctx, |ui| {
                    ui.heading("Create a network");
                    ui.label("Name");
                    ui.text_edit_singleline(name);
                    ui.label("Password (people need it to join)");
                    ui.add(egui::TextEdit::singleline(password).password(true));
                    ui.horizontal(|ui| {
                        if ui.add_enabled(!busy, egui::Button::new("Create")).clicked() {
                            out = Outcome::Submit(Action::Create {
                                name: name.clone(),
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
            Dialog::Join(form) => {
                let mut out = Outcome::Stay;
                egui::Modal::new(egui::Id::new("join")).show(ctx, |ui| {
                    ui.heading("Join a network");
                    ui.label("Paste the invite code a friend sent you");
                    ui.text_edit_singleline(&mut form.invite);
                    ui.label("…or type the network's name and password");
                    ui.text_edit_singleline(&mut form.name);
                    ui.add(egui::TextEdit::singleline(&mut form.password).password(true));
                    ui.horizontal(|ui| {
                        if ui.add_enabled(!busy, egui::Button::new("Join")).clicked() {
                            out = Outcome::Join(form.clone());
                        }
                        if ui.button("Cancel").clicked() {
                            out = Outcome::Close;
                        }
                    });
                });
                out
            }
            Dialog::Leave(name) => {
                let mut out = Outcome::Stay;
                egui::Modal::new(egui::Id::new("leave")).show(ctx, |ui| {
                    ui.heading(format!("Leave {name}?"));
                    ui.label("You can join again later with its password or an invite code.");
                    ui.horizontal(|ui| {
                        if ui.add_enabled(!busy, egui::Button::new("Leave")).clicked() {
                            out = Outcome::Submit(Action::Leave(name.clone()));
                        }
                        if ui.button("Cancel").clicked() {
                            out = Outcome::Close;
                        }
                    });
                });
                out
            }
            Dialog::Host(form) => host::host_dialog(ctx, form, busy),
            Dialog::Invite { network, expiry } => self.invite_dialog(ctx, network, expiry, busy),
            Dialog::RenameNetwork { network, new_name } => {
                owner::rename_dialog(ctx, network, new_name, busy)
            }
            Dialog::SetPassword { network, password } => {
                owner::password_dialog(ctx, network, password, busy)
            }
            Dialog::Confirm {
                title,
                text,
                button,
                action,
            } => owner::confirm_dialog(ctx, title, text, button, action, busy),
        };
        match outcome {
            Outcome::Stay => self.dialog = dialog,
            Outcome::Close => {}
            Outcome::Join(form) => self.submit_join(ctx, form),
            Outcome::Submit(action) => {
                if !self.submit(ctx, action) {
                    self.dialog = dialog;
                }
            }
            Outcome::Run(action) => {
                self.run_action(ctx, action);
                self.dialog = dialog;
            }
        }
    }
}
