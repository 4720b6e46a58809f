//! `WorkerLink`: one connected worker process, on the orchestrator side; the protocol of the
//! link, whatever carries it (lp-node's WebSocket adapter, an in-memory one in tests).
//!
//! - **Owns** the link's [`LinkTransport`] (how frames go out) and the jobs the worker has been
//!   sent but not answered (task id → reply). What arrives from the worker comes in as a stream
//!   of [`LinkEvent`]s, read until it ends or the actor stops.
//! - **Protocol**: the first frame must be `Register` with the shared secret (compared in
//!   constant time) and a capacity; a wrong secret, zero capacity, an unreadable frame, a text
//!   frame or a second `Register` is answered `Refused`, logged, and the link closed. After
//!   `Registered` the link receives `Job` frames; the transport is told
//!   ([`LinkTransport::registered`]) so it can lift its pre-registration byte budget
//!   ([`WORKER_UNREGISTERED_BYTES`]).
//! - **Two kinds of worker**: a registration without models (`capabilities.constraints`
//!   empty) is a transcoder: the link joins the [`TranscoderPool`] with `capacity`. One whose
//!   constraints list AI models is an AI worker: the link joins the [`AiPool`] once per model
//!   (offer [`inference::offer`], that model's capacity), sends each [`AiJob`] as
//!   `Work::Infer` and forwards the `Partial` frames of a streaming job into the job's tokens
//!   channel; once nobody listens there (the client left), it sends the worker `Cancel`, once,
//!   and the worker stops the job instead of running it to its end.
//!   An orchestrator started without an AI pool ([`WorkerLink::with_ai`]) refuses AI workers.
//! - **Liveness**: pings every [`WORKER_PING_EVERY`]; nothing heard for [`WORKER_SILENCE`] drops
//!   the link, and so does no `Register` within [`WORKER_REGISTER_WITHIN`] (refused).
//! - **A job that times out** ([`WORKER_JOB_TIMEOUT`]) fails and drops the link: a worker that
//!   stopped answering must not be given more work (its other jobs are re-queued).
//! - **On stop** it leaves the pools (every registration) and its unanswered jobs resolve
//!   `Disconnected`, which the pool re-queues on another worker; the transport is closed.
//! - **Shutdown**: [`Links::drain`] sends [`CloseLink`]: the link waits for the answers to its
//!   last jobs, then closes with [`Close::ShuttingDown`], so the worker knows the orchestrator
//!   left. Answers travel on futures of their own, not the actor's, so the last one reaches the
//!   pool although the link stops right after it.
//! - **Mailbox**: bounded at [`MAILBOX`]; the pool sends at most `capacity` jobs at a time, so
//!   the transport's outgoing frames are bounded by that too (plus a ping).
//! - **Restart policy**: none; the worker process reconnects.

use std::collections::HashMap;
use std::sync::Arc;

use actix::prelude::*;
use bytes::Bytes;
use futures::Stream;
use futures::channel::oneshot;
use lp_wire::ai::{AiResponse, Pipeline};
use lp_wire::limits::{
    MAX_MEASURED_SESSIONS, WORKER_JOB_TIMEOUT, WORKER_PING_EVERY, WORKER_REGISTER_WITHIN, WORKER_SILENCE,
    WORKER_UNREGISTERED_BYTES,
};
use lp_wire::{
    Capabilities, ErrorCode, OrchestratorMessage, TranscodeData, TranscodeFailure, TranscoderMessage, Work, WorkOutcome,
};
use serde_bytes::ByteBuf;
use tokio::sync::mpsc::UnboundedSender;
use tokio::time::Instant;
use tracing::{info, warn};

use super::inference::{self, AiJob, AiPool};
use super::job::{Job, JobError, Offer, RunJob, TranscodeJob};
use super::links::Links;
use super::worker_pool::{RegisterWorker, TranscoderPool, UnregisterWorker};

pub const MAILBOX: usize = 64;

/// How frames reach the worker. Calls never block: a transport queues what it sends, in order.
pub trait LinkTransport {
    /// Send one frame (an encoded [`OrchestratorMessage`]).
    fn send(&self, frame: Vec<u8>);
    /// Ask the worker for a sign of life.
    fn ping(&self);
    /// Close the link, after the frames sent before; nothing is sent after.
    fn close(&self, why: Close);
    /// The worker's registration was accepted: lift any pre-registration limit.
    fn registered(&self);
}

/// How a link closes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Close {
    /// Without a reason: refused, silent, misbehaving or gone.
    Plain,
    /// The orchestrator is shutting down (a WebSocket says "going away").
    ShuttingDown,
}

/// What arrives from the worker, as its transport reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkEvent {
    /// One frame: an encoded [`TranscoderMessage`].
    Frame(Bytes),
    /// A sign of life that carries no message (a ping, a pong); the transport answers pings.
    Heard,
    /// Something the protocol has no place for (a text frame), saying what: refused.
    Violation(String),
    /// The worker closed the link.
    Closed,
    /// The transport failed, saying how.
    Failed(String),
    /// More than [`WORKER_UNREGISTERED_BYTES`] arrived before registering; the transport cut
    /// the connection.
    Overflowed,
}

/// A job sent and not answered yet.
struct Pending {
    reply: Reply,
    /// Fails the job after [`WORKER_JOB_TIMEOUT`]; cancelled by the answer.
    timeout: SpawnHandle,
}

/// Where the answer of a job goes, by kind.
enum Reply {
    Transcode(oneshot::Sender<Result<TranscodeData, JobError>>),
    Ai {
        reply: oneshot::Sender<Result<AiResponse, JobError>>,
        /// The job's stream of llm text, fed by `Partial` frames; `None` for a job that does
        /// not stream, and once nobody listens (the worker was sent `Cancel`).
        tokens: Option<UnboundedSender<String>>,
        /// Whether some text was streamed: the job cannot then move to another worker.
        streamed: bool,
    },
}

impl Reply {
    fn fail(self, failure: TranscodeFailure) {
        match self {
            Reply::Transcode(reply) => drop(reply.send(Err(JobError::Failed(failure)))),
            Reply::Ai { reply, .. } => drop(reply.send(Err(JobError::Failed(failure)))),
        }
    }

    fn answer(self, outcome: WorkOutcome) {
        let mismatch = |what: &str| {
            JobError::Failed(TranscodeFailure {
                code: ErrorCode::TranscoderFailed,
                message: format!("the worker answered a {what} job with another kind of result"),
            })
        };
        match (self, outcome) {
            (Reply::Transcode(reply), WorkOutcome::Transcoded(data)) => drop(reply.send(Ok(data))),
            (Reply::Transcode(reply), WorkOutcome::Error(f)) => drop(reply.send(Err(JobError::Failed(f)))),
            (Reply::Transcode(reply), WorkOutcome::Inferred(_)) => drop(reply.send(Err(mismatch("transcode")))),
            (Reply::Ai { reply, .. }, WorkOutcome::Inferred(answer)) => drop(reply.send(Ok(answer))),
            (Reply::Ai { reply, .. }, WorkOutcome::Error(f)) => drop(reply.send(Err(JobError::Failed(f)))),
            (Reply::Ai { reply, .. }, WorkOutcome::Transcoded(_)) => drop(reply.send(Err(mismatch("inference")))),
        }
    }
}

/// One registration of the link in a pool.
#[derive(Debug, Clone, Copy)]
enum Registration {
    Transcoder(u64),
    Ai(u64),
}

pub struct WorkerLink {
    peer: String,
    transport: Box<dyn LinkTransport>,
    pool: Addr<TranscoderPool>,
    ai: Option<Addr<AiPool>>,
    secret: Option<Arc<String>>,
    links: Links,
    link_id: Option<u64>,
    /// Set by the `Register` frame: a second one is refused.
    registering: bool,
    /// The worker's ids in the pools, once registered (one per model for an AI worker).
    ids: Vec<Registration>,
    pending: HashMap<u64, Pending>,
    next_task: u64,
    last_heard: Instant,
    /// Set by [`CloseLink`]: close once the unanswered jobs are answered.
    closing: bool,
    /// How the transport closes when the actor stops.
    close: Close,
}

impl WorkerLink {
    /// A link to the worker at `peer` (for logs); `secret` is the shared secret, `None` when
    /// this orchestrator accepts no remote workers.
    pub fn new(
        peer: String,
        transport: Box<dyn LinkTransport>,
        pool: Addr<TranscoderPool>,
        secret: Option<Arc<String>>,
        links: Links,
    ) -> Self {
        WorkerLink {
            peer,
            transport,
            pool,
            ai: None,
            secret,
            links,
            link_id: None,
            registering: false,
            ids: Vec::new(),
            pending: HashMap::new(),
            next_task: 1,
            last_heard: Instant::now(),
            closing: false,
            close: Close::Plain,
        }
    }

    /// Accept AI workers too, registering them in `ai`.
    pub fn with_ai(mut self, ai: Addr<AiPool>) -> Self {
        self.ai = Some(ai);
        self
    }

    /// Start the link, reading what arrives from the worker from `events`; their end closes it.
    pub fn start_with(self, events: impl Stream<Item = LinkEvent> + 'static) -> Addr<Self> {
        WorkerLink::create(move |ctx| {
            ctx.add_stream(events);
            self
        })
    }

    /// After [`CloseLink`], stop as soon as nothing is unanswered.
    fn close_if_idle(&mut self, ctx: &mut Context<Self>) {
        if self.closing && self.pending.is_empty() {
            info!(target: "lp::transcoders", peer = %self.peer, "closing the transcoder link: shutting down");
            self.close = Close::ShuttingDown;
            ctx.stop();
        }
    }

    fn send(&self, msg: &OrchestratorMessage) {
        self.transport.send(lp_wire::encode(msg));
    }

    fn refuse(&mut self, reason: &str, ctx: &mut Context<Self>) {
        warn!(target: "lp::transcoders", peer = %self.peer, reason, "transcoder refused");
        self.send(&OrchestratorMessage::Refused { reason: reason.to_string() });
        ctx.stop();
    }

    /// Job `task_id` was not answered in time: fail it and drop the worker.
    fn timed_out(&mut self, task_id: u64, ctx: &mut Context<Self>) {
        let Some(pending) = self.pending.remove(&task_id) else { return };
        warn!(target: "lp::transcoders", peer = %self.peer, task_id, "job timed out; dropping the worker");
        pending.reply.fail(TranscodeFailure {
            code: ErrorCode::TranscoderFailed,
            message: format!("remote worker did not answer in {WORKER_JOB_TIMEOUT:?}"),
        });
        ctx.stop();
    }

    /// Join the pools as what `capabilities` offer: the transcoder pool, or the AI pool once
    /// per model. Answers `Err(reason)` for a registration to refuse.
    fn register(
        &mut self,
        capacity: u32,
        sessions: Option<u32>,
        capabilities: Capabilities,
        ctx: &mut Context<Self>,
    ) -> Result<(), String> {
        let name = format!("remote {}", self.peer);
        let mut models = Vec::new();
        for (cap, listed) in &capabilities.constraints {
            let pipeline = Pipeline::from_capability(*cap)
                .filter(|p| p.served())
                .ok_or_else(|| format!("capability {cap} is no AI pipeline this orchestrator serves"))?;
            for (model_id, constraint) in listed {
                if constraint.capacity == 0 {
                    return Err(format!("zero capacity for {pipeline} model {model_id:?}"));
                }
                models.push((inference::offer(pipeline, model_id), constraint.capacity));
            }
        }
        let registrations: Vec<futures::future::BoxFuture<'static, Result<Registration, MailboxError>>> =
            if models.is_empty() {
                let register = RegisterWorker {
                    remote_sessions: Some(sessions.unwrap_or(capacity)),
                    name,
                    capacity,
                    offer: Offer { capabilities, model: None },
                    recipient: ctx.address().recipient::<RunJob<TranscodeJob>>(),
                };
                let sent = self.pool.send(register);
                vec![Box::pin(async move { sent.await.map(Registration::Transcoder) })]
            } else {
                let Some(ai) = &self.ai else {
                    return Err("this orchestrator accepts no remote AI workers".into());
                };
                models
                    .into_iter()
                    .map(|(offer, capacity)| {
                        let register = RegisterWorker {
                            remote_sessions: Some(capacity),
                            name: name.clone(),
                            capacity,
                            offer,
                            recipient: ctx.address().recipient::<RunJob<AiJob>>(),
                        };
                        let sent = ai.send(register);
                        Box::pin(async move { sent.await.map(Registration::Ai) }) as futures::future::BoxFuture<'_, _>
                    })
                    .collect()
            };
        async move { futures::future::join_all(registrations).await.into_iter().collect::<Result<Vec<_>, _>>() }
            .into_actor(self)
            .map(move |ids, act, ctx| match ids {
                Ok(ids) => {
                    let ai_models = ids.iter().filter(|r| matches!(r, Registration::Ai(_))).count();
                    act.ids = ids;
                    act.transport.registered();
                    match ai_models {
                        0 => info!(target: "lp::transcoders", peer = %act.peer, capacity, measured_sessions = ?sessions, "remote transcoder registered"),
                        models => info!(target: "lp::transcoders", peer = %act.peer, capacity, models, "remote AI worker registered"),
                    }
                    act.send(&OrchestratorMessage::Registered);
                }
                Err(_) => ctx.stop(),
            })
            .wait(ctx);
        Ok(())
    }

    fn on_frame(&mut self, bytes: &[u8], ctx: &mut Context<Self>) {
        let msg = match lp_wire::decode::<TranscoderMessage>(bytes) {
            Ok(m) => m,
            Err(e) => return self.refuse(&format!("unreadable frame: {e}"), ctx),
        };
        match msg {
            TranscoderMessage::Register { secret, capacity, capabilities, sessions } => {
                if self.registering {
                    return self.refuse("registered twice", ctx);
                }
                self.registering = true;
                let Some(expected) = &self.secret else {
                    return self.refuse("this orchestrator accepts no remote transcoders (no secret_file)", ctx);
                };
                if !constant_time_eq(secret.as_bytes(), expected.as_bytes()) {
                    return self.refuse("invalid secret", ctx);
                }
                if capacity == 0 {
                    return self.refuse("zero capacity", ctx);
                }
                if let Some(n) = sessions.filter(|n| *n > MAX_MEASURED_SESSIONS) {
                    let reason =
                        format!("{n} measured sessions: more than livepeer bench measures ({MAX_MEASURED_SESSIONS})");
                    return self.refuse(&reason, ctx);
                }
                if let Err(reason) = self.register(capacity, sessions, capabilities, ctx) {
                    self.refuse(&reason, ctx);
                }
            }
            TranscoderMessage::Result { task_id, outcome } => {
                if let Some(Pending { reply, timeout }) = self.pending.remove(&task_id) {
                    ctx.cancel_future(timeout);
                    reply.answer(outcome);
                }
                self.close_if_idle(ctx);
            }
            TranscoderMessage::Partial { task_id, text } => {
                if let Some(Pending { reply: Reply::Ai { tokens, streamed, .. }, .. }) = self.pending.get_mut(&task_id)
                    && let Some(listener) = tokens
                {
                    *streamed = true;
                    if listener.send(text).is_err() {
                        // The listener is gone: the worker stops, and the job still ends with
                        // its `Result`.
                        *tokens = None;
                        self.send(&OrchestratorMessage::Cancel { task_id });
                    }
                }
            }
        }
    }
}

/// Compare secrets without leaking where they differ through timing.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Actor for WorkerLink {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(MAILBOX);
        self.link_id = Some(self.links.add(ctx.address()));
        ctx.run_later(WORKER_REGISTER_WITHIN, |act, ctx| {
            if act.ids.is_empty() {
                act.refuse("no registration", ctx);
            }
        });
        ctx.run_interval(WORKER_PING_EVERY, |act, ctx| {
            if act.last_heard.elapsed() > WORKER_SILENCE {
                warn!(target: "lp::transcoders", peer = %act.peer, "transcoder silent; dropping it");
                ctx.stop();
                return;
            }
            act.transport.ping();
        });
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        if !self.ids.is_empty() {
            info!(target: "lp::transcoders", peer = %self.peer, unanswered = self.pending.len(), "remote worker disconnected");
        }
        for registration in self.ids.drain(..) {
            match (registration, &self.ai) {
                (Registration::Transcoder(id), _) => self.pool.do_send(UnregisterWorker(id)),
                (Registration::Ai(id), Some(ai)) => ai.do_send(UnregisterWorker(id)),
                (Registration::Ai(_), None) => {}
            }
        }
        // Dropping the replies resolves every unanswered job as `Disconnected`, re-queued by the
        // pool; but a stream the client has seen part of cannot start again elsewhere.
        for (_, pending) in self.pending.drain() {
            if let Reply::Ai { streamed: true, .. } = pending.reply {
                pending.reply.fail(TranscodeFailure {
                    code: ErrorCode::TranscoderFailed,
                    message: "the AI worker went away in the middle of a streamed answer".into(),
                });
            }
        }
        self.transport.close(self.close);
        if let Some(id) = self.link_id.take() {
            self.links.remove(id);
        }
    }
}

impl StreamHandler<LinkEvent> for WorkerLink {
    fn handle(&mut self, event: LinkEvent, ctx: &mut Self::Context) {
        self.last_heard = Instant::now();
        match event {
            LinkEvent::Frame(bytes) => self.on_frame(&bytes, ctx),
            LinkEvent::Heard => {}
            LinkEvent::Violation(what) => self.refuse(&what, ctx),
            LinkEvent::Closed => ctx.stop(),
            LinkEvent::Overflowed => {
                warn!(target: "lp::transcoders", peer = %self.peer, limit = WORKER_UNREGISTERED_BYTES, "connection sent more than it may before registering; dropping it");
                ctx.stop();
            }
            LinkEvent::Failed(why) => {
                warn!(target: "lp::transcoders", peer = %self.peer, "{why}");
                ctx.stop();
            }
        }
    }

    fn finished(&mut self, ctx: &mut Self::Context) {
        ctx.stop();
    }
}

impl Handler<RunJob<TranscodeJob>> for WorkerLink {
    // Not tied to the actor: an answer the link got just before it stopped still reaches the pool.
    type Result = ResponseFuture<Result<TranscodeData, JobError>>;

    fn handle(&mut self, RunJob(job): RunJob<TranscodeJob>, ctx: &mut Self::Context) -> Self::Result {
        if self.ids.is_empty() {
            return Box::pin(async { Err(JobError::Disconnected) });
        }
        let (reply, answer) = oneshot::channel();
        let work = Work::Transcode {
            seq: job.seq,
            format: job.format.into(),
            profiles: job.profiles.iter().map(Into::into).collect(),
            data: ByteBuf::from(job.data.to_vec()),
        };
        self.dispatch(work, job.time_left(), Reply::Transcode(reply), ctx);
        // A reply dropped unanswered (the link stopped) is a disconnect.
        Box::pin(async move { answer.await.unwrap_or(Err(JobError::Disconnected)) })
    }
}

impl Handler<RunJob<AiJob>> for WorkerLink {
    // As for transcode jobs: the answer does not depend on the actor still running.
    type Result = ResponseFuture<Result<AiResponse, JobError>>;

    fn handle(&mut self, RunJob(job): RunJob<AiJob>, ctx: &mut Self::Context) -> Self::Result {
        if self.ids.is_empty() {
            return Box::pin(async { Err(JobError::Disconnected) });
        }
        let (reply, answer) = oneshot::channel();
        let work = Work::Infer { request: (*job.request).clone() };
        self.dispatch(work, job.time_left(), Reply::Ai { reply, tokens: job.tokens.clone(), streamed: false }, ctx);
        Box::pin(async move { answer.await.unwrap_or(Err(JobError::Disconnected)) })
    }
}

impl WorkerLink {
    /// Send `work` as a new task, answered through `reply`, failed after [`WORKER_JOB_TIMEOUT`].
    fn dispatch(&mut self, work: Work, time_left: std::time::Duration, reply: Reply, ctx: &mut Context<Self>) {
        let task_id = self.next_task;
        self.next_task += 1;
        let timeout = ctx.run_later(WORKER_JOB_TIMEOUT, move |act, ctx| act.timed_out(task_id, ctx));
        self.pending.insert(task_id, Pending { reply, timeout });
        self.send(&OrchestratorMessage::Job {
            task_id,
            work,
            // At least 1 ms: 0 would mean "the default" to the worker.
            timeout_ms: (time_left.as_millis() as u64).max(1),
        });
    }
}

/// Close the link once its unanswered jobs are answered (the orchestrator is shutting down).
#[derive(Message)]
#[rtype(result = "()")]
pub struct CloseLink;

impl Handler<CloseLink> for WorkerLink {
    type Result = ();

    fn handle(&mut self, _: CloseLink, ctx: &mut Self::Context) {
        self.closing = true;
        self.close_if_idle(ctx);
    }
}
