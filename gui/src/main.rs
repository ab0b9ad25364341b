//! `warren-gui`: Warren's window and tray icon, a client of `warrend`'s local API only.

// A window program on Windows: no console window opens beside it (at sign-in, say).
#![cfg_attr(windows, windows_subsystem = "windows")]

use clap::Parser;
use eframe::egui;
use std::cell::OnceCell;
use std::path::PathBuf;
use std::process::ExitCode;
use std::rc::Rc;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};
use warren_gui::actions::JoinForm;
use warren_gui::app::{App, Shared, Smoke, SmokeHost};
use warren_gui::client;
use warren_gui::tray::{self, Commands};

/// The Warren window and tray icon. It talks to warrend over its local API only.
#[derive(Parser)]
#[command(name = "warren-gui", version)]
struct Cli {
    /// The daemon's local API socket
    #[arg(long, default_value = warren_proto::api::DEFAULT_SOCKET)]
    socket: PathBuf,
    /// No tray icon: the window alone (closing it quits)
    #[arg(long)]
    no_tray: bool,
    /// Start with only the tray icon (the login autostart entry uses it); without a tray the
    /// window shows anyway
    #[arg(long)]
    hidden: bool,
    /// Test hook: fill in the Join dialog with NETWORK:PASSWORD and press Join, wait until the
    /// network shows a member, then print the view state as JSON (exit 1 if the join fails,
    /// 2 after 60 s)
    #[arg(long, value_name = "NETWORK:PASSWORD", value_parser = parse_join)]
    smoke_test_join: Option<JoinForm>,
    /// With --smoke-test-join or --smoke-test-host: save the window as a PPM image first
    #[arg(long, value_name = "FILE.ppm")]
    screenshot: Option<PathBuf>,
    /// With --smoke-test-join: quit afterwards
    #[arg(long, requires = "smoke_test_join")]
    exit_after_join: bool,
    /// Test hook: the first run and the owner's path through the window's code — take NAME,
    /// host NETWORK, lock it, make an invite code (clipboard; printed), approve the first
    /// request, remove that member, then print the view state as JSON and quit
    #[arg(long, value_name = "NAME:NETWORK", conflicts_with = "smoke_test_join")]
    smoke_test_host: Option<String>,
}

fn parse_join(v: &str) -> Result<JoinForm, String> {
    let (name, password) = v.split_once(':').ok_or("takes NETWORK:PASSWORD")?;
    Ok(JoinForm {
        name: name.into(),
        password: password.into(),
        invite: String::new(),
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let smoke_host = match cli.smoke_test_host.as_deref().map(|v| v.split_once(':')) {
        None => None,
        Some(Some((name, network))) => Some(SmokeHost::new(
            name.into(),
            network.into(),
            cli.screenshot.clone(),
        )),
        Some(None) => {
            eprintln!("warren-gui: --smoke-test-host takes NAME:NETWORK");
            return ExitCode::from(2);
        }
    };
    let smoke = cli.smoke_test_join.map(|join| Smoke {
        join,
        screenshot: cli.screenshot,
        exit_after_join: cli.exit_after_join,
        deadline: Instant::now() + Duration::from_secs(60),
    });
    let (socket, tray, hidden) = (cli.socket, !cli.no_tray, cli.hidden);
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title("Warren")
            .with_app_id("warren")
            .with_inner_size([460.0, 560.0]),
        renderer: eframe::Renderer::Glow,
        ..Default::default()
    };
    // The tray outlives the window here so that it can take its icon away on the way out.
    let tray_kept: Rc<OnceCell<tray::Handle>> = Rc::default();
    let tray_slot = tray_kept.clone();
    let result = eframe::run_native(
        "Warren",
        options,
        Box::new(move |cc| {
            let shared = Shared::new();
            let ctx = cc.egui_ctx.clone();
            let wake: Arc<dyn Fn() + Send + Sync> = Arc::new(move || ctx.request_repaint());
            let (tx, rx) = mpsc::channel();
            let handle = if tray {
                let view = shared.lock().unwrap().view();
                match tray::spawn(view, Commands::new(tx, wake.clone())) {
                    Ok(h) => {
                        let _ = tray_slot.set(h.clone());
                        Some(h)
                    }
                    Err(e) => {
                        eprintln!("warren-gui: no tray icon ({e}); the window works without it");
                        None
                    }
                }
            } else {
                None
            };
            let has_tray = handle.is_some();
            let sub_shared = shared.clone();
            let sub_socket = socket.clone();
            std::thread::Builder::new()
                .name("subscribe".into())
                .spawn(move || {
                    client::subscribe_forever(sub_socket, move |link| {
                        let view = {
                            let mut s = sub_shared.lock().unwrap();
                            if s.link == link {
                                return;
                            }
                            s.link = link;
                            s.view()
                        };
                        if let Some(h) = &handle {
                            h.show(view);
                        }
                        wake();
                    })
                })?;
            Ok(Box::new(App::new(
                socket, shared, rx, has_tray, hidden, smoke, smoke_host,
            )))
        }),
    );
    if let Some(h) = tray_kept.get() {
        h.close();
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("warren-gui: cannot open a window: {e}");
            ExitCode::from(1)
        }
    }
}
