//! `AuthSession`: one gateway session on the orchestrator (one auth token's session id).
//!
//! - **Owns** the session's in-flight count and its idle clock.
//! - **Bounds** its segments in flight at `max_in_flight` (go-livepeer's `maxSegmentChannels`,
//!   4); one more is answered `OrchestratorBusy` at once.
//! - **Stops** after `idle_timeout` without segments (go-livepeer's `transcodeLoopTimeout`, 70 s,
//!   longer than the gateway's 60 s), or as soon as its segments in flight are done once the
//!   gateway ended it ([`EndWhenIdle`]), and tells the orchestrator, which frees its slot.
//! - **Mailbox**: bounded at [`MAILBOX`].
//! - **Restart policy**: supervised, transient (see `crate::supervision`): restarted in place
//!   after a panic, its segments in flight failed; one that keeps panicking ends, and the
//!   gateway's next segment with a valid token starts a new session.

use std::time::{Duration, Instant};

use actix::prelude::*;
use tracing::debug;

use super::job::TranscodeJob;
use super::worker_pool::{Submit, TranscoderPool};
use crate::supervision::inject_panic;
use lp_wire::{ErrorCode, TranscodeData, TranscodeFailure};

const MAILBOX: usize = 64;

pub struct AuthSession {
    id: String,
    pool: Addr<TranscoderPool>,
    ended: Recipient<SessionEnded>,
    max_in_flight: usize,
    idle_timeout: Duration,
    in_flight: usize,
    last_activity: Instant,
    /// The gateway ended the session: stop when nothing is in flight.
    ending: bool,
}

impl AuthSession {
    pub fn new(
        id: String,
        pool: Addr<TranscoderPool>,
        ended: Recipient<SessionEnded>,
        max_in_flight: usize,
        idle_timeout: Duration,
    ) -> Self {
        AuthSession {
            id,
            pool,
            ended,
            max_in_flight,
            idle_timeout,
            in_flight: 0,
            last_activity: Instant::now(),
            ending: false,
        }
    }
}

impl Actor for AuthSession {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(MAILBOX);
        let tick = (self.idle_timeout / 4).max(Duration::from_millis(50));
        ctx.run_interval(tick, |act, ctx| {
            if act.in_flight == 0 && act.last_activity.elapsed() >= act.idle_timeout {
                debug!(target: "lp::orchestrator", session = %act.id, "session idle; ending it");
                ctx.stop();
            }
        });
    }

    fn stopped(&mut self, ctx: &mut Self::Context) {
        self.ended.do_send(SessionEnded { id: self.id.clone(), addr: ctx.address() });
    }
}

impl Supervised for AuthSession {
    /// The segments in flight were dropped with the futures that carried them; a session the
    /// gateway already ended stops now.
    fn restarting(&mut self, ctx: &mut Self::Context) {
        self.in_flight = 0;
        if self.ending {
            ctx.stop();
        }
    }
}

inject_panic!(AuthSession);

/// Submit one of this session's segments.
#[derive(Message)]
#[rtype(result = "Result<TranscodeData, TranscodeFailure>")]
pub struct SessionSegment(pub TranscodeJob);

/// The gateway is done with this session: stop once nothing is in flight.
#[derive(Message)]
#[rtype(result = "()")]
pub struct EndWhenIdle;

impl Handler<EndWhenIdle> for AuthSession {
    type Result = ();

    fn handle(&mut self, _: EndWhenIdle, ctx: &mut Self::Context) {
        self.ending = true;
        if self.in_flight == 0 {
            ctx.stop();
        }
    }
}

/// The session ended (idle); sent to the orchestrator.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SessionEnded {
    pub id: String,
    pub addr: Addr<AuthSession>,
}

impl Handler<SessionSegment> for AuthSession {
    type Result = ResponseActFuture<Self, Result<TranscodeData, TranscodeFailure>>;

    fn handle(&mut self, SessionSegment(job): SessionSegment, _: &mut Self::Context) -> Self::Result {
        self.last_activity = Instant::now();
        if self.in_flight >= self.max_in_flight {
            let failure = TranscodeFailure {
                code: ErrorCode::OrchestratorBusy,
                message: format!("session already has {} segments in flight", self.in_flight),
            };
            return Box::pin(async { Err(failure) }.into_actor(self));
        }
        self.in_flight += 1;
        let sent = self.pool.send(Submit(job));
        Box::pin(sent.into_actor(self).map(|answer, act, ctx| {
            act.in_flight -= 1;
            act.last_activity = Instant::now();
            if act.ending && act.in_flight == 0 {
                ctx.stop();
            }
            answer.unwrap_or_else(|_| {
                Err(TranscodeFailure {
                    code: ErrorCode::TranscoderFailed,
                    message: "the transcoder pool stopped".into(),
                })
            })
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::orchestrator::{Orchestrator, OrchestratorSettings};

    #[actix::test]
    async fn the_mailbox_holds_its_bound() {
        let pool = TranscoderPool::new(8).start();
        let ended = Orchestrator::new(OrchestratorSettings::offchain("o", 1), pool.clone()).start().recipient();
        let session = AuthSession::new("s".into(), pool, ended, 1, Duration::from_secs(70)).start();
        // The session has no message that answers without changing it: let it start (its
        // `started` sets the bound) by yielding to it.
        tokio::task::yield_now().await;
        crate::testing::assert_mailbox_bound(&session, MAILBOX, || EndWhenIdle);
    }
}
