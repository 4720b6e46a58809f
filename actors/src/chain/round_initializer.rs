//! `RoundInitializer`: initializes a round nobody has initialized yet (`[eth] initialize_round`).
//!
//! - **Owns** the pending initialization of at most one round.
//! - **On** a [`RoundChanged`] whose round is not initialized, it waits a random delay in
//!   `[0, max_delay)` (so that many nodes do not all send the same transaction), reads the round
//!   again, and calls `initializeRound()` only if it is still uninitialized.
//! - **Mailbox**: bounded at [`MAILBOX`].
//! - **Restart policy**: a failed call is logged and the same round is checked again after
//!   [`RETRY_AFTER`], until it is initialized (by us or anyone) or a new round begins.
//!   Supervised, permanent (see `crate::supervision`): after a panic it is restarted in place
//!   and checks the round again on the next round event.

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use lp_chain::client::ChainClient;
use rand::Rng;
use tracing::{info, warn};

use super::round_watcher::RoundChanged;

const MAILBOX: usize = 16;
pub const RETRY_AFTER: Duration = Duration::from_secs(10);

pub struct RoundInitializer {
    client: Arc<ChainClient>,
    max_delay: Duration,
    pending: Option<u64>,
}

impl RoundInitializer {
    pub fn new(client: Arc<ChainClient>, max_delay: Duration) -> Self {
        RoundInitializer { client, max_delay, pending: None }
    }
}

impl Actor for RoundInitializer {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(MAILBOX);
    }
}

impl Supervised for RoundInitializer {
    /// The call in flight was dropped with its future.
    fn restarting(&mut self, _: &mut Self::Context) {
        self.pending = None;
    }
}

impl Handler<RoundChanged> for RoundInitializer {
    type Result = ();

    fn handle(&mut self, RoundChanged(info): RoundChanged, ctx: &mut Self::Context) {
        if info.initialized || self.pending == Some(info.round) {
            return;
        }
        self.pending = Some(info.round);
        let delay = if self.max_delay.is_zero() {
            Duration::ZERO
        } else {
            rand::rng().random_range(Duration::ZERO..self.max_delay)
        };
        let client = self.client.clone();
        let round = info.round;
        let retry = info.clone();
        let work = async move {
            tokio::time::sleep(delay).await;
            match client.current_round().await {
                Ok(now) if now.round == round && !now.initialized => client.initialize_round().await.map(|_| true),
                Ok(_) => Ok(false),
                Err(e) => Err(e),
            }
        };
        ctx.spawn(work.into_actor(self).map(move |result, act, ctx| {
            act.pending = None;
            match result {
                Ok(true) => info!(target: "lp::chain", round, "initialized the round"),
                Ok(false) => {}
                Err(e) => {
                    warn!(target: "lp::chain", round, "initializeRound failed (checking again in {RETRY_AFTER:?}): {e}");
                    ctx.notify_later(RoundChanged(retry), RETRY_AFTER);
                }
            }
        }));
    }
}
