//! `warren-gui`: Warren's window and tray icon, a client of `warrend`'s local API only.

use eframe::egui;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};
use warren_gui::actions::JoinForm;
use warren_gui::app::{App, Shared, Smoke};
use warren_gui::client;
use warren_gui::tray::Tray;

const USAGE: &str = "\
usage: warren-gui [--socket PATH] [--no-tray] [--hidden]
       warren-gui [--socket PATH] --smoke-test-join NETWORK:PASSWORD [--screenshot FILE.ppm]
                  [--exit-after-join] [--no-tray]

The Warren window and tray icon. It talks to warrend over its local API
(default socket /run/warren/warrend.sock).

  --hidden                  start with only the tray icon (the login autostart entry uses it);
                            without a tray the window shows anyway
  --smoke-test-join NET:PW  fill in the Join dialog with NET and PW and press Join, wait until
                            the network shows a member, then print the view state as JSON
  --screenshot FILE         with --smoke-test-join: save the window as a PPM image first
  --exit-after-join         with --smoke-test-join: quit afterwards (within 60 s, or exit 2)";

struct Args {
    socket: PathBuf,
    tray: bool,
    hidden: bool,
    smoke: Option<Smoke>,
}

fn parse() -> Result<Args, String> {
    let mut socket = PathBuf::from(warren_proto::api::DEFAULT_SOCKET);
    let mut tray = true;
    let mut hidden = false;
    let mut join = None;
    let mut screenshot = None;
    let mut exit_after_join = false;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = |what: &str| it.next().ok_or_else(|| format!("{what} needs a value"));
        match a.as_str() {
            "--socket" => socket = value("--socket")?.into(),
            "--no-tray" => tray = false,
            "--hidden" => hidden = true,
            "--smoke-test-join" => {
                let v = value("--smoke-test-join")?;
                let (name, password) = v
                    .split_once(':')
                    .ok_or("--smoke-test-join takes NETWORK:PASSWORD")?;
                join = Some(JoinForm {
                    name: name.into(),
                    password: password.into(),
                    invite: String::new(),
                });
            }
            "--screenshot" => screenshot = Some(PathBuf::from(value("--screenshot")?)),
            "--exit-after-join" => exit_after_join = true,
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    let smoke = join.map(|join| Smoke {
        join,
        screenshot,
        exit_after_join,
        deadline: Instant::now() + Duration::from_secs(60),
    });
    Ok(Args {
        socket,
        tray,
        hidden,
        smoke,
    })
}

fn main() -> ExitCode {
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("warren-gui: {e}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(if e.is_empty() { 0 } else { 1 });
        }
    };
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title("Warren")
            .with_app_id("warren")
            .with_inner_size([460.0, 560.0]),
        renderer: eframe::Renderer::Glow,
        ..Default::default()
    };
    let Args {
        socket,
        tray,
        hidden,
        smoke,
    } = args;
    let result = eframe::run_native(
        "Warren",
        options,
        Box::new(move |cc| {
            let shared = Shared::new();
            let ctx = cc.egui_ctx.clone();
            let wake: Arc<dyn Fn() + Send + Sync> = Arc::new(move || ctx.request_repaint());
            let (tx, rx) = mpsc::channel();
            let handle = if tray {
                use ksni::blocking::TrayMethods;
                let view = shared.lock().unwrap().view();
                match Tray::new(view, tx, wake.clone()).spawn() {
                    Ok(h) => Some(h),
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
                            h.update(|t| t.view = view);
                        }
                        wake();
                    })
                })?;
            Ok(Box::new(App::new(
                socket, shared, rx, has_tray, hidden, smoke,
            )))
        }),
    );
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("warren-gui: cannot open a window: {e}");
            ExitCode::from(1)
        }
    }
}
