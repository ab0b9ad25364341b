//! `--smoke-test-host NAME:NETWORK`: the first run and the owner's path through the window's
//! own code (the same functions its buttons call), for the Xvfb acceptance test: choose the
//! name, host NETWORK, lock it, make an invite code (on the clipboard; printed as
//! `invite CODE`), approve the first request (`approved NAME`), remove that member
//! (`removed NAME`), save a screenshot, print the view state as JSON and quit. Exit 1 when a
//! step fails (with the daemon's message), 2 after the deadline.

use super::{App, Dialog};
use crate::actions::{Action, Expiry, HostForm, Reply};
use eframe::egui;
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use warren_proto::api::ApiError;

#[derive(Debug, Clone)]
pub struct SmokeHost {
    pub name: String,
    pub network: String,
    pub screenshot: Option<PathBuf>,
    pub deadline: Instant,
    step: Step,
    /// The member approved, then removed.
    member: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Step {
    Start,
    Naming,
    Hosting,
    Locking,
    Inviting,
    Approving,
    Removing,
    Shooting,
    Done,
}

impl SmokeHost {
    pub fn new(name: String, network: String, screenshot: Option<PathBuf>) -> SmokeHost {
        SmokeHost {
            name,
            network,
            screenshot,
            deadline: Instant::now() + Duration::from_secs(180),
            step: Step::Start,
            member: None,
        }
    }
}

fn say(line: &str) {
    println!("{line}");
    let _ = std::io::stdout().flush();
}

/// Is the last action's outcome in, for an action `is` accepts? Exits on its failure.
fn settled(last: &Option<(Action, Result<Reply, ApiError>)>, is: fn(&Action) -> bool) -> bool {
    match last {
        Some((a, Err(e))) if is(a) => {
            eprintln!("warren-gui smoke test: {a:?} failed: {e}");
            std::process::exit(1);
        }
        Some((a, Ok(_))) => is(a),
        _ => false,
    }
}

impl App {
    pub(super) fn smoke_host_step(&mut self, ctx: &egui::Context) {
        let Some(smoke) = self.smoke_host.clone() else {
            return;
        };
        let (vm, last, live, invite) = {
            let s = self.shared.lock().unwrap();
            (
                s.view(),
                s.last.clone(),
                matches!(s.link, crate::view::Link::Live(_)),
                s.last_invite.clone(),
            )
        };
        if Instant::now() > smoke.deadline {
            eprintln!(
                "warren-gui smoke test: timed out at {:?}; view: {}",
                smoke.step,
                serde_json::to_string(&vm).unwrap_or_default()
            );
            std::process::exit(2);
        }
        ctx.request_repaint_after(Duration::from_millis(300));
        let net = vm.networks.iter().find(|n| n.name == smoke.network);
        let owner = net.and_then(|n| n.owner.as_ref());
        let next = match smoke.step {
            Step::Start if live => {
                // The first run's name field and its Continue button.
                self.name_field = Some(smoke.name.clone());
                self.choose_name(ctx, smoke.name.clone(), None);
                Some(Step::Naming)
            }
            Step::Naming if settled(&last, |a| matches!(a, Action::SetName { .. })) => {
                // The first run's "Host a network" button, then the dialog's Host.
                self.dialog = Dialog::Host(HostForm {
                    name: smoke.network.clone(),
                    ..Default::default()
                });
                let Dialog::Host(form) = std::mem::take(&mut self.dialog) else {
                    unreachable!()
                };
                self.submit(ctx, Action::Host(form))
                    .then_some(Step::Hosting)
            }
            Step::Hosting
                if settled(&last, |a| matches!(a, Action::Host(_))) && owner.is_some() =>
            {
                // The owner's Locked switch.
                self.run_action(
                    ctx,
                    Action::Lock {
                        network: smoke.network.clone(),
                        locked: true,
                    },
                );
                Some(Step::Locking)
            }
            Step::Locking
                if settled(&last, |a| matches!(a, Action::Lock { .. }))
                    && owner.is_some_and(|o| o.locked) =>
            {
                // Invite friends…, then "Make an invite code" (which lists the invites
                // afterwards; the dialog's own first listing is left out, so that the last
                // action is the invite).
                self.dialog = Dialog::Invite {
                    network: smoke.network.clone(),
                    expiry: Expiry::Day,
                };
                self.run_action(
                    ctx,
                    Action::Invite {
                        network: smoke.network.clone(),
                        expiry: Expiry::Day,
                    },
                );
                Some(Step::Inviting)
            }
            Step::Inviting if settled(&last, |a| matches!(a, Action::Invite { .. })) => {
                let copied = self.shared.lock().unwrap().pending_copy.is_none();
                match invite {
                    // On the clipboard by now (`logic` copies before this step runs).
                    Some((n, code)) if n == smoke.network && copied => {
                        self.dialog = Dialog::None;
                        say(&format!("invite {code}"));
                        Some(Step::Approving)
                    }
                    _ => None,
                }
            }
            Step::Approving => match owner.and_then(|o| o.requests.first()) {
                Some(r) => {
                    self.run_action(
                        ctx,
                        Action::Answer {
                            network: smoke.network.clone(),
                            who: r.who.clone(),
                            approve: true,
                        },
                    );
                    self.smoke_host.as_mut().unwrap().member = Some(r.name.clone());
                    say(&format!("approved {}", r.name));
                    Some(Step::Removing)
                }
                None => None,
            },
            Step::Removing => {
                let member = smoke.member.clone().unwrap_or_default();
                let present = net.is_some_and(|n| n.members.iter().any(|m| m.name == member));
                if settled(&last, |a| matches!(a, Action::Answer { .. })) && present {
                    // Remove… and the confirmation's Remove.
                    self.submit(
                        ctx,
                        Action::Remove {
                            network: smoke.network.clone(),
                            who: member.clone(),
                            ban: false,
                        },
                    );
                    say(&format!("removed {member}"));
                    Some(Step::Shooting)
                } else {
                    None
                }
            }
            Step::Shooting => {
                let member = smoke.member.clone().unwrap_or_default();
                let gone = net.is_some_and(|n| !n.members.iter().any(|m| m.name == member));
                if settled(&last, |a| matches!(a, Action::Remove { .. })) && gone {
                    if smoke.screenshot.is_some() {
                        ctx.send_viewport_cmd(egui::ViewportCommand::Screenshot(
                            egui::UserData::default(),
                        ));
                        Some(Step::Done)
                    } else {
                        self.smoke_host_finish(ctx, None);
                        None
                    }
                } else {
                    None
                }
            }
            _ => None,
        };
        if let (Some(step), Some(s)) = (next, self.smoke_host.as_mut()) {
            s.step = step;
        }
    }

    pub(super) fn smoke_host_shot(&mut self, ctx: &egui::Context, image: &egui::ColorImage) {
        self.smoke_host_finish(ctx, Some(image));
    }

    fn smoke_host_finish(&mut self, ctx: &egui::Context, image: Option<&egui::ColorImage>) {
        let Some(smoke) = self.smoke_host.take() else {
            return;
        };
        if let (Some(path), Some(image)) = (&smoke.screenshot, image) {
            if let Err(e) = super::write_ppm(path, image) {
                eprintln!("warren-gui: cannot write {}: {e}", path.display());
                std::process::exit(1);
            }
        }
        let vm = self.shared.lock().unwrap().view();
        say(&serde_json::to_string(&vm).unwrap_or_default());
        self.has_tray = false;
        ctx.send_viewport_cmd(egui::ViewportCommand::Close);
    }
}
