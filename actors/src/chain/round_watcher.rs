//! `RoundWatcher`: the protocol's round, as the chain head moves.
//!
//! - **Owns** the last known [`RoundInfo`] (current round, whether it is initialized and locked,
//!   its start block and length) and its subscribers.
//! - **On each new head** from the [`BlockWatcher`](super::BlockWatcher) it reads the round from
//!   the RoundsManager and publishes [`RoundChanged`] when the round or its initialized state
//!   changed (a `NewRound` log always triggers a read).
//! - **Mailbox**: bounded at [`MAILBOX`]; reads never overlap.
//! - **Restart policy**: a failed read is logged and retried on the next head. Supervised,
//!   permanent (see `crate::supervision`): after a panic it is restarted in place and reads the
//!   round again on the next head.

use std::sync::Arc;

use actix::prelude::*;
use lp_chain::client::{ChainClient, RoundInfo};
use tracing::{info, warn};

use super::block_watcher::ChainEvent;

pub const MAILBOX: usize = 64;

/// The round changed (a new round began, or the current one got initialized).
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct RoundChanged(pub RoundInfo);

/// Add a subscriber; it gets the current round at once when known.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SubscribeRounds(pub Recipient<RoundChanged>);

/// The last known round, for `/status` and the CLI.
#[derive(Message)]
#[rtype(result = "Option<RoundInfo>")]
pub struct GetRound;

pub struct RoundWatcher {
    client: Arc<ChainClient>,
    current: Option<RoundInfo>,
    subscribers: Vec<Recipient<RoundChanged>>,
    reading: bool,
}

impl RoundWatcher {
    pub fn new(client: Arc<ChainClient>) -> Self {
        RoundWatcher { client, current: None, subscribers: Vec::new(), reading: false }
    }

    fn read(&mut self, ctx: &mut Context<Self>) {
        if self.reading {
            return;
        }
        self.reading = true;
        let client = self.client.clone();
        let read = async move { client.current_round().await };
        ctx.spawn(read.into_actor(self).map(|result, act, _| {
            act.reading = false;
            match result {
                Ok(info) => {
                    let changed =
                        act.current.as_ref().is_none_or(|c| c.round != info.round || c.initialized != info.initialized);
                    if changed {
                        info!(target: "lp::chain", round = info.round, initialized = info.initialized, "round");
                        for s in &act.subscribers {
                            s.do_send(RoundChanged(info.clone()));
                        }
                    }
                    act.current = Some(info);
                }
                Err(e) => warn!(target: "lp::chain", "reading the round failed (retried on the next block): {e}"),
            }
        }));
    }
}

impl Actor for RoundWatcher {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(MAILBOX);
    }
}

impl Supervised for RoundWatcher {
    /// The read in flight was dropped with its future.
    fn restarting(&mut self, _: &mut Self::Context) {
        self.reading = false;
    }
}

crate::supervision::inject_panic!(RoundWatcher);

impl Handler<ChainEvent> for RoundWatcher {
    type Result = ();

    fn handle(&mut self, event: ChainEvent, ctx: &mut Self::Context) {
        match event {
            ChainEvent::NewHead { .. } | ChainEvent::Reorg { .. } => self.read(ctx),
            ChainEvent::Logs(_) => {}
        }
    }
}

impl Handler<SubscribeRounds> for RoundWatcher {
    type Result = ();

    fn handle(&mut self, SubscribeRounds(r): SubscribeRounds, _: &mut Self::Context) {
        if let Some(info) = &self.current {
            r.do_send(RoundChanged(info.clone()));
        }
        self.subscribers.push(r);
    }
}

impl Handler<GetRound> for RoundWatcher {
    type Result = Option<RoundInfo>;

    fn handle(&mut self, _: GetRound, _: &mut Self::Context) -> Self::Result {
        self.current.clone()
    }
}
