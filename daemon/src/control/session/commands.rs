//! What the local API asks of the control task, carried out on the coordinators' clients.

use super::{Group, Session};
use crate::control::{Answer, Command, CoordinatorSettings, Reply, TunnelState};
use std::time::Instant;
use warren_proto::api::{ApiError, ErrorCode};
use warren_proto::control::msg::ClientMsg;
use warren_proto::key::NodeKey;

impl Session {
    pub(super) fn command(&mut self, cmd: Command, now: Instant) {
        match cmd {
            Command::Up(Some(new), reply) => self.up_with(new, reply, now),
            Command::Up(None, reply) => {
                self.set_up(true, now);
                if self.slots.is_empty() {
                    self.reply(
                        reply,
                        Ok(Answer::Done(
                            "Warren is up with static peers only (no coordinator yet: \
                         `warren up --coordinator HOST:PORT --coordinator-key KEY` or \
                         `warren up INVITE` to join networks)"
                                .into(),
                        )),
                    );
                    return;
                }
                let token = self.token(reply);
                self.slots[0].client.wait_connected(token, now);
            }
            Command::Down(reply) => {
                self.set_up(false, now);
                self.reply(
                    reply,
                    Ok(Answer::Done(
                        "Warren is down: nothing is carried until `warren up` (identity, \
                     coordinators and networks are kept)"
                            .into(),
                    )),
                );
            }
            Command::Logout { force, to, reply } => self.logout(force, to, reply),
            Command::Forget { to, reply } => {
                let Some(i) = self.by_key(&to) else {
                    let e = ApiError::new(ErrorCode::NotFound, "not following that coordinator");
                    self.reply(reply, Err(e));
                    return;
                };
                let address = self.slots[i].settings.address.clone();
                self.slots[i].client.forget();
                self.reply(
                    reply,
                    Ok(Answer::Done(format!("forgot coordinator {address}"))),
                );
            }
            Command::Request { msg, to, reply } => self.request(msg, to, reply),
        }
    }

    /// Follows `new` too, or updates the coordinator with its key; the name is the host's,
    /// so every coordinator gets it.
    fn up_with(&mut self, new: CoordinatorSettings, reply: Reply, now: Instant) {
        self.set_up(true, now);
        for s in self
            .slots
            .iter_mut()
            .filter(|s| s.settings.public_key != new.public_key && s.settings.name != new.name)
        {
            s.settings.name = new.name.clone();
            s.client.reconnect(now);
        }
        let i = match self.by_key(&new.public_key) {
            Some(i) => {
                let slot = &mut self.slots[i];
                if slot.settings != new {
                    slot.client.set_label(new.address.clone());
                    slot.settings = new;
                    slot.client.reconnect(now);
                    self.dirty = true;
                }
                i
            }
            None => self.add_slot(new, now),
        };
        self.save_list();
        let token = self.token(reply);
        self.slots[i].client.wait_connected(token, now);
    }

    fn logout(&mut self, force: bool, to: Option<NodeKey>, reply: Reply) {
        let targets: Vec<usize> = match to {
            Some(key) => self.by_key(&key).into_iter().collect(),
            None => (0..self.slots.len()).collect(),
        };
        if targets.is_empty() {
            let e = ApiError::new(
                ErrorCode::CoordinatorUnreachable,
                "not logged in to a coordinator",
            );
            self.reply(reply, Err(e));
            return;
        }
        if force {
            let addresses: Vec<String> = targets
                .iter()
                .map(|i| self.slots[*i].settings.address.clone())
                .collect();
            for i in targets {
                self.slots[i].client.forget();
            }
            self.reply(
                reply,
                Ok(Answer::Done(format!(
                    "forgot coordinator {} on this host only; it still lists this host in its \
                 networks",
                    addresses.join(", ")
                ))),
            );
            return;
        }
        let group = self.next_token;
        self.next_token += 1;
        self.groups.insert(
            group,
            Group {
                remaining: targets.len(),
                done: Vec::new(),
                failed: Vec::new(),
                reply,
            },
        );
        for i in targets {
            let t = self.next_token;
            self.next_token += 1;
            self.grouped.insert(t, group);
            self.slots[i].client.logout(t);
        }
    }

    /// Sends a request to the coordinator it is for: the one named, else the one that has
    /// the network the request names, else the first.
    fn request(&mut self, msg: ClientMsg, to: Option<NodeKey>, reply: Reply) {
        let target = match to {
            Some(key) => self.by_key(&key),
            None => match network_of(&msg) {
                Some(name) => {
                    let with: Vec<usize> = (0..self.slots.len())
                        .filter(|i| self.slots[*i].client.networks().has(name))
                        .collect();
                    if with.len() > 1 {
                        self.reply(
                            reply,
                            Err(ApiError::new(
                                ErrorCode::InvalidArgument,
                                format!(
                                    "two coordinators have a network called {name} ({}), so \
                                     Warren cannot tell which one you mean: ask the owner of \
                                     one of them to rename it",
                                    with.iter()
                                        .map(|i| self.slots[*i].settings.address.as_str())
                                        .collect::<Vec<_>>()
                                        .join(" and ")
                                ),
                            )),
                        );
                        return;
                    }
                    with.first().copied().or(self.first())
                }
                None => self.first(),
            },
        };
        let Some(i) = target else {
            self.reply(
                reply,
                Err(ApiError::new(
                    ErrorCode::CoordinatorUnreachable,
                    "not connected to a coordinator: run `warren up --coordinator HOST:PORT \
                     --coordinator-key KEY` or `warren up INVITE` first",
                )),
            );
            return;
        };
        let token = self.token(reply);
        self.slots[i].client.request(msg, token);
    }

    fn first(&self) -> Option<usize> {
        (!self.slots.is_empty()).then_some(0)
    }

    pub(super) fn by_key(&self, key: &NodeKey) -> Option<usize> {
        self.slots
            .iter()
            .position(|s| s.settings.public_key == *key)
    }

    fn set_up(&mut self, up: bool, now: Instant) {
        if up != self.up {
            tracing::info!(up, "tunnel state changed");
        }
        self.up = up;
        if let Err(e) = (TunnelState { up }).save(&self.ctx.state_dir) {
            tracing::warn!(
                "cannot remember that Warren is {}: {e:#}",
                if up { "up" } else { "down" }
            );
        }
        self.ctx.dataplane.node().set_up(up);
        self.ctx.portmap.send(crate::portmap::Command::Enabled(up));
        self.ctx
            .portmap_tcp
            .send(crate::portmap::Command::Enabled(up));
        for s in &mut self.slots {
            s.client.set_enabled(up, now);
        }
        self.dirty = true;
    }
}

/// The network a request is about, for requests about one existing network.
fn network_of(msg: &ClientMsg) -> Option<&str> {
    match msg {
        ClientMsg::LeaveNetwork { name, .. } => Some(name),
        ClientMsg::CreateInvite { network, .. }
        | ClientMsg::ListInvites { network, .. }
        | ClientMsg::RevokeInvite { network, .. }
        | ClientMsg::RenameNetwork { network, .. }
        | ClientMsg::SetPassword { network, .. }
        | ClientMsg::LockNetwork { network, .. }
        | ClientMsg::AnswerRequest { network, .. }
        | ClientMsg::RemoveMember { network, .. }
        | ClientMsg::DeleteNetwork { network, .. } => Some(network),
        ClientMsg::JoinNetwork { name, .. } => Some(name),
        _ => None,
    }
}
