//! `RoundInitializer`: initializes a round nobody has initialized yet (`[eth] initialize_round`).
//!
//! - **Owns** the pending initialization of at most one round.
//! - **On** a [`RoundChanged`] whose round is not initialized, it waits a random delay in
//!   `[0, max_delay)` (so that many nodes do not all send the same transaction), reads the round
//!   again, and calls `initializeRound()` only if it is still uninitialized.
//! - **Mailbox**: bounded at [`MAILBOX`].
//! - **Restart policy**: a failed call is logged, counted in `livepeer_round_initialize_errors`,
//!   and the same round is checked again after [`RETRY_AFTER`], until it is initialized (by us
//!   or anyone) or a new round begins.
//!   Supervised, permanent (see `crate::supervision`): after a panic it is restarted in place;
//!   a call in flight is not aborted (it runs outside the actor's context and reports back),
//!   and the newest round is checked again.

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use lp_chain::client::{ChainClient, RoundInfo};
use lp_chain::error::ChainError;
use metrics::counter;
use rand::Rng;
use tracing::{info, warn};

use super::round_watcher::RoundChanged;

pub const MAILBOX: usize = 32;
pub const RETRY_AFTER: Duration = Duration::from_secs(10);
pub const ROUND_INITIALIZE_ERRORS: &str = "livepeer_round_initialize_errors";

pub struct RoundInitializer {
    client: Arc<ChainClient>,
    max_delay: Duration,
    pending: Option<u64>,
    /// The newest round seen, to check again after a restart.
    last: Option<RoundInfo>,
}

impl RoundInitializer {
    pub fn new(client: Arc<ChainClient>, max_delay: Duration) -> Self {
        RoundInitializer { client, max_delay, pending: None, last: None }
    }
}

impl Actor for RoundInitializer {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(MAILBOX);
    }
}

impl Supervised for RoundInitializer {
    /// A call in flight runs on and reports back; a retry that was waiting is made again.
    fn restarting(&mut self, ctx: &mut Self::Context) {
        if let (None, Some(info)) = (self.pending, self.last.clone()) {
            ctx.notify(RoundChanged(info));
        }
    }
}

crate::supervision::inject_panic!(RoundInitializer);

/// The outcome of one check (and call) for `info`'s round.
#[derive(Message)]
#[rtype(result = "()")]
struct Checked {
    info: RoundInfo,
    result: Result<bool, ChainError>,
}

impl Handler<RoundChanged> for RoundInitializer {
    type Result = ();

    fn handle(&mut self, RoundChanged(info): RoundChanged, ctx: &mut Self::Context) {
        self.last = Some(info.clone());
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
        let work = async move {
            tokio::time::sleep(delay).await;
            match client.current_round().await {
                Ok(now) if now.round == round && !now.initialized => client.initialize_round().await.map(|_| true),
                Ok(_) => Ok(false),
                Err(e) => Err(e),
            }
        };
        // Outside the actor's context: a restart must not abort a transaction being sent.
        let me = ctx.address();
        actix::spawn(async move {
            let result = work.await;
            me.do_send(Checked { info, result });
        });
    }
}

impl Handler<Checked> for RoundInitializer {
    type Result = ();

    fn handle(&mut self, Checked { info, result }: Checked, ctx: &mut Self::Context) {
        self.pending = None;
        let round = info.round;
        match result {
            Ok(true) => info!(target: "lp::chain", round, "initialized the round"),
            Ok(false) => {}
            Err(e) => {
                counter!(ROUND_INITIALIZE_ERRORS).increment(1);
                warn!(target: "lp::chain", round, "initializeRound failed (checking again in {RETRY_AFTER:?}): {e}");
                ctx.notify_later(RoundChanged(info), RETRY_AFTER);
            }
        }
    }
}
