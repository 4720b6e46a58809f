//! `RewardCaller`: calls `reward` once per round while this account is an active orchestrator.
//!
//! - **Owns** the last round it rewarded and the retry state of the current one.
//! - **On** an initialized [`RoundChanged`] it checks the account (active, and its last reward
//!   round behind the current one) and calls `rewardWithHint` with the pool position hints the
//!   client computes. A failure is counted in `livepeer_reward_call_errors` and retried with a
//!   backoff from [`RETRY_AFTER`] doubling up to [`MAX_RETRY_AFTER`], for as long as the round
//!   lasts; a new round replaces the pending one, and one that comes while an attempt runs is
//!   tried when it ends, however it ended. The round last seen rewarded (by this call or by
//!   another client of the account) is the gauge `livepeer_last_reward_round`.
//! - **Mailbox**: bounded at [`MAILBOX`].
//! - **Restart policy**: errors never stop it. Supervised, permanent (see
//!   `crate::supervision`): after a panic it is restarted in place; an attempt in flight is not
//!   aborted (it runs outside the actor's context and reports back, so a transaction being sent
//!   is not sent twice), and a retry that was waiting is made again.

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use lp_chain::client::ChainClient;
use lp_chain::error::ChainError;
use metrics::{counter, gauge};
use tracing::{info, warn};

use super::round_watcher::RoundChanged;

pub const MAILBOX: usize = 32;
pub const RETRY_AFTER: Duration = Duration::from_secs(5);
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);
pub const REWARD_CALL_ERRORS: &str = "livepeer_reward_call_errors";
pub const LAST_REWARD_ROUND: &str = "livepeer_last_reward_round";

pub struct RewardCaller {
    client: Arc<ChainClient>,
    rewarded: Option<u64>,
    /// The newest round to reward, when one is wanted.
    wanted: Option<u64>,
    busy: bool,
    retry_after: Duration,
}

impl RewardCaller {
    pub fn new(client: Arc<ChainClient>) -> Self {
        RewardCaller { client, rewarded: None, wanted: None, busy: false, retry_after: RETRY_AFTER }
    }

    /// The first retry's wait instead of [`RETRY_AFTER`] (tests).
    pub fn retry_after(mut self, wait: Duration) -> Self {
        self.retry_after = wait;
        self
    }
}

/// The wait after the `try_no`-th failed attempt: `first`, doubling, at most [`MAX_RETRY_AFTER`].
fn retry_wait(first: Duration, try_no: u32) -> Duration {
    (first * 2u32.saturating_pow(try_no.saturating_sub(1))).min(MAX_RETRY_AFTER)
}

impl Actor for RewardCaller {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(MAILBOX);
    }
}

impl Supervised for RewardCaller {
    /// An attempt in flight runs on and reports back; a retry that was waiting is made again.
    fn restarting(&mut self, ctx: &mut Self::Context) {
        if let (false, Some(round)) = (self.busy, self.wanted) {
            ctx.notify(Attempt { round, try_no: 1 });
        }
    }
}

crate::supervision::inject_panic!(RewardCaller);

/// How an attempt for `round` ended.
#[derive(Message)]
#[rtype(result = "()")]
struct Attempted {
    round: u64,
    try_no: u32,
    result: Result<Done, ChainError>,
}

/// What a successful attempt found.
enum Done {
    Called,
    RewardedAlready,
    /// Not an active orchestrator this round (or no account to reward with).
    NotActive,
}

/// Try `reward` for `round` (`try_no` counts from 1).
#[derive(Message)]
#[rtype(result = "()")]
struct Attempt {
    round: u64,
    try_no: u32,
}

impl Handler<RoundChanged> for RewardCaller {
    type Result = ();

    fn handle(&mut self, RoundChanged(info): RoundChanged, ctx: &mut Self::Context) {
        if info.initialized && self.rewarded.is_none_or(|r| r < info.round) {
            self.wanted = Some(info.round);
            ctx.notify(Attempt { round: info.round, try_no: 1 });
        }
    }
}

impl Handler<Attempt> for RewardCaller {
    type Result = ();

    fn handle(&mut self, Attempt { round, try_no }: Attempt, ctx: &mut Self::Context) {
        // Superseded by a newer round, or already done; a busy caller picks `wanted` up when
        // its attempt ends.
        if self.busy || self.wanted != Some(round) || self.rewarded.is_some_and(|r| r >= round) {
            return;
        }
        self.busy = true;
        let client = self.client.clone();
        let work = async move {
            let Some(me) = client.address() else { return Ok(Done::NotActive) };
            let status = client.status(me).await?;
            if !status.active {
                return Ok(Done::NotActive);
            }
            if status.last_reward_round >= round {
                return Ok(Done::RewardedAlready);
            }
            client.reward().await.map(|_| Done::Called)
        };
        // Outside the actor's context: a restart must not abort a transaction being sent.
        let me = ctx.address();
        actix::spawn(async move {
            let result = work.await;
            me.do_send(Attempted { round, try_no, result });
        });
    }
}

impl Handler<Attempted> for RewardCaller {
    type Result = ();

    fn handle(&mut self, Attempted { round, try_no, result }: Attempted, ctx: &mut Self::Context) {
        self.busy = false;
        match result {
            Ok(done) => {
                self.rewarded = Some(round);
                if matches!(done, Done::Called) {
                    info!(target: "lp::chain", round, "reward called");
                }
                if !matches!(done, Done::NotActive) {
                    gauge!(LAST_REWARD_ROUND).set(round as f64);
                }
            }
            Err(e) => {
                counter!(REWARD_CALL_ERRORS).increment(1);
                if self.wanted == Some(round) {
                    let wait = retry_wait(self.retry_after, try_no);
                    warn!(target: "lp::chain", round, try_no, "reward failed (retrying in {wait:?}): {e}");
                    ctx.notify_later(Attempt { round, try_no: try_no + 1 }, wait);
                    return;
                }
                warn!(target: "lp::chain", round, try_no, "reward failed, and a newer round came meanwhile: {e}");
            }
        }
        // A newer round arrived while this attempt ran: tried now (a retry of the old one would
        // find itself superseded and try nothing).
        if let Some(next) = self.wanted.filter(|w| self.rewarded.is_none_or(|r| r < *w)) {
            ctx.notify(Attempt { round: next, try_no: 1 });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_retry_wait_doubles_up_to_the_cap() {
        let waits: Vec<u64> = (1..=8).map(|n| retry_wait(RETRY_AFTER, n).as_secs()).collect();
        assert_eq!(waits, [5, 10, 20, 40, 80, 160, 300, 300]);
        assert_eq!(retry_wait(RETRY_AFTER, u32::MAX), MAX_RETRY_AFTER);
    }
}
