//! `RemoteTranscoder`: one connected transcoder process, on the orchestrator side.
//!
//! - **Owns** the WebSocket session to the process and the jobs it has been sent but not
//!   answered (task id → reply).
//! - **Protocol**: the first frame must be `Register` with the shared secret and a capacity; a
//!   wrong secret or zero capacity is answered `Refused`, logged, and the connection closed.
//!   After `Registered` it is in the [`TranscoderPool`] and receives `Job` frames.
//! - **Liveness**: pings every [`PING_EVERY`]; no frame for [`DEAD_AFTER`] closes it, and so
//!   does no `Register` within [`REGISTER_WITHIN`].
//! - **A job that times out** ([`JOB_TIMEOUT`]) fails and closes the connection: a transcoder
//!   that stopped answering must not be given more work (its other jobs are re-queued).
//! - **On disconnect** it leaves the pool and its unanswered jobs resolve `Disconnected`, which
//!   the pool re-queues on another transcoder.
//! - **Mailbox**: bounded at [`MAILBOX`]; the pool sends at most `capacity` jobs at a time.
//! - **Restart policy**: none; the transcoder process reconnects.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use futures::channel::oneshot;
use lp_actors::orchestrator::{JobError, RegisterTranscoder, RunJob, TranscoderPool, UnregisterTranscoder};
use lp_actors::wire::{
    self, ErrorCode, OrchestratorMessage, TranscodeData, TranscodeFailure, TranscodeOutcome, TranscoderMessage,
};
use serde_bytes::ByteBuf;
use tracing::{info, warn};

const MAILBOX: usize = 64;
pub const PING_EVERY: Duration = Duration::from_secs(5);
pub const DEAD_AFTER: Duration = Duration::from_secs(20);
/// A connection that has not registered by then is closed.
pub const REGISTER_WITHIN: Duration = Duration::from_secs(10);
/// A job not answered in this time fails (go-livepeer removes such a transcoder too).
const JOB_TIMEOUT: Duration = Duration::from_secs(120);

type Reply = oneshot::Sender<Result<TranscodeData, JobError>>;

pub struct RemoteTranscoder {
    peer: String,
    session: actix_ws::Session,
    pool: Addr<TranscoderPool>,
    secret: Option<Arc<String>>,
    id: Option<u64>,
    pending: HashMap<u64, Reply>,
    next_task: u64,
    last_heard: Instant,
}

impl RemoteTranscoder {
    pub fn new(
        peer: String,
        session: actix_ws::Session,
        pool: Addr<TranscoderPool>,
        secret: Option<Arc<String>>,
    ) -> Self {
        RemoteTranscoder {
            peer,
            session,
            pool,
            secret,
            id: None,
            pending: HashMap::new(),
            next_task: 1,
            last_heard: Instant::now(),
        }
    }

    fn send(&self, msg: &OrchestratorMessage) {
        let mut session = self.session.clone();
        let frame = wire::encode(msg);
        actix::spawn(async move {
            let _ = session.binary(frame).await;
        });
    }

    fn refuse(&mut self, reason: &str, ctx: &mut Context<Self>) {
        warn!(target: "lp::transcoders", peer = %self.peer, reason, "transcoder refused");
        let frame = wire::encode(&OrchestratorMessage::Refused { reason: reason.to_string() });
        let session = self.session.clone();
        actix::spawn(async move {
            let mut s = session.clone();
            let _ = s.binary(frame).await;
            let _ = session.close(None).await;
        });
        ctx.stop();
    }

    fn on_frame(&mut self, bytes: &[u8], ctx: &mut Context<Self>) {
        let msg = match wire::decode::<TranscoderMessage>(bytes) {
            Ok(m) => m,
            Err(e) => return self.refuse(&format!("unreadable frame: {e}"), ctx),
        };
        match msg {
            TranscoderMessage::Register { secret, capacity, .. } => {
                if self.id.is_some() {
                    return self.refuse("registered twice", ctx);
                }
                let Some(expected) = &self.secret else {
                    return self.refuse("this orchestrator accepts no remote transcoders (no secret_file)", ctx);
                };
                if !constant_time_eq(secret.as_bytes(), expected.as_bytes()) {
                    return self.refuse("invalid secret", ctx);
                }
                if capacity == 0 {
                    return self.refuse("zero capacity", ctx);
                }
                let register = RegisterTranscoder {
                    name: format!("remote {}", self.peer),
                    capacity,
                    recipient: ctx.address().recipient(),
                };
                self.pool
                    .send(register)
                    .into_actor(self)
                    .map(move |id, act, ctx| match id {
                        Ok(id) => {
                            act.id = Some(id);
                            info!(target: "lp::transcoders", peer = %act.peer, capacity, "remote transcoder registered");
                            act.send(&OrchestratorMessage::Registered);
                        }
                        Err(_) => ctx.stop(),
                    })
                    .wait(ctx);
            }
            TranscoderMessage::Result { task_id, outcome } => {
                if let Some(reply) = self.pending.remove(&task_id) {
                    let _ = reply.send(match outcome {
                        TranscodeOutcome::Data(data) => Ok(data),
                        TranscodeOutcome::Error(f) => Err(JobError::Failed(f)),
                    });
                }
            }
        }
    }
}

/// Compare secrets without leaking where they differ through timing.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Actor for RemoteTranscoder {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(MAILBOX);
        ctx.run_later(REGISTER_WITHIN, |act, ctx| {
            if act.id.is_none() {
                act.refuse("no registration", ctx);
            }
        });
        ctx.run_interval(PING_EVERY, |act, ctx| {
            if act.last_heard.elapsed() > DEAD_AFTER {
                warn!(target: "lp::transcoders", peer = %act.peer, "transcoder silent; dropping it");
                ctx.stop();
                return;
            }
            let mut session = act.session.clone();
            actix::spawn(async move {
                let _ = session.ping(b"").await;
            });
        });
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        if let Some(id) = self.id.take() {
            info!(target: "lp::transcoders", peer = %self.peer, unanswered = self.pending.len(), "remote transcoder disconnected");
            self.pool.do_send(UnregisterTranscoder(id));
        }
        // Dropping the replies resolves every unanswered job as `Disconnected`.
        self.pending.clear();
        let session = self.session.clone();
        actix::spawn(async move {
            let _ = session.close(None).await;
        });
    }
}

impl StreamHandler<Result<actix_ws::AggregatedMessage, actix_ws::ProtocolError>> for RemoteTranscoder {
    fn handle(&mut self, item: Result<actix_ws::AggregatedMessage, actix_ws::ProtocolError>, ctx: &mut Self::Context) {
        self.last_heard = Instant::now();
        match item {
            Ok(actix_ws::AggregatedMessage::Binary(bytes)) => self.on_frame(&bytes, ctx),
            Ok(actix_ws::AggregatedMessage::Ping(p)) => {
                let mut session = self.session.clone();
                actix::spawn(async move {
                    let _ = session.pong(&p).await;
                });
            }
            Ok(actix_ws::AggregatedMessage::Pong(_)) => {}
            Ok(actix_ws::AggregatedMessage::Text(_)) => self.refuse("text frames are not part of the protocol", ctx),
            Ok(actix_ws::AggregatedMessage::Close(_)) => ctx.stop(),
            Err(e) => {
                warn!(target: "lp::transcoders", peer = %self.peer, "websocket error: {e}");
                ctx.stop();
            }
        }
    }

    fn finished(&mut self, ctx: &mut Self::Context) {
        ctx.stop();
    }
}

impl Handler<RunJob> for RemoteTranscoder {
    type Result = ResponseActFuture<Self, Result<TranscodeData, JobError>>;

    fn handle(&mut self, RunJob(job): RunJob, _: &mut Self::Context) -> Self::Result {
        if self.id.is_none() {
            return Box::pin(fut::ready(Err(JobError::Disconnected)));
        }
        let task_id = self.next_task;
        self.next_task += 1;
        let (reply, answer) = oneshot::channel();
        self.pending.insert(task_id, reply);
        self.send(&OrchestratorMessage::Job {
            task_id,
            seq: job.seq,
            format: job.format,
            profiles: job.profiles.to_vec(),
            data: ByteBuf::from(job.data.to_vec()),
        });
        let wait = actix_web::rt::time::timeout(JOB_TIMEOUT, answer);
        Box::pin(wait.into_actor(self).map(move |answer, act, ctx| match answer {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(JobError::Disconnected),
            Err(_) => {
                warn!(target: "lp::transcoders", peer = %act.peer, task_id, "job timed out; dropping the transcoder");
                act.pending.remove(&task_id);
                ctx.stop();
                Err(JobError::Failed(TranscodeFailure {
                    code: ErrorCode::TranscoderFailed,
                    message: format!("remote transcoder did not answer in {JOB_TIMEOUT:?}"),
                }))
            }
        }))
    }
}
