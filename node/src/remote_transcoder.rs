//! `RemoteTranscoder`: one connected transcoder process, on the orchestrator side.
//!
//! - **Owns** the WebSocket session to the process and the jobs it has been sent but not
//!   answered (task id → reply).
//! - **Protocol**: the first frame must be `Register` with the shared secret and a capacity; a
//!   wrong secret or zero capacity is answered `Refused`, logged, and the connection closed.
//!   After `Registered` it is in the [`TranscoderPool`] and receives `Job` frames.
//! - **Liveness**: pings every [`WORKER_PING_EVERY`]; no frame for [`WORKER_SILENCE`] closes it, and so
//!   does no `Register` within [`WORKER_REGISTER_WITHIN`].
//! - **Before registering** a connection may send at most [`WORKER_UNREGISTERED_BYTES`] (a `Register`
//!   frame is a few hundred bytes): the WebSocket codec buffers a whole frame before it checks
//!   the frame's size, so without this budget anyone could make the orchestrator buffer a
//!   512 MiB frame. The budget is counted on the bytes read from the socket ([`Gated`]), and
//!   lifted once the secret checks out.
//! - **A job that times out** ([`WORKER_JOB_TIMEOUT`]) fails and closes the connection: a transcoder
//!   that stopped answering must not be given more work (its other jobs are re-queued).
//! - **On disconnect** it leaves the pool and its unanswered jobs resolve `Disconnected`, which
//!   the pool re-queues on another transcoder.
//! - **Mailbox**: bounded at [`MAILBOX`]; the pool sends at most `capacity` jobs at a time.
//! - **Shutdown**: [`Links::drain`] waits until no segment is in flight, then sends each link
//!   [`CloseLink`]: it answers its last jobs and closes with a WebSocket close frame ("going
//!   away"), so the transcoder knows the orchestrator left and the server need not wait out its
//!   grace period on open WebSockets.
//! - **Restart policy**: none; the transcoder process reconnects.

use std::cell::Cell;
use std::collections::HashMap;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context as TaskContext, Poll};
use std::time::Instant;

use actix::prelude::*;
use actix_web::error::PayloadError;
use actix_web::web::Bytes;
use actix_ws::{CloseCode, CloseReason};
use futures::Stream;
use futures::channel::oneshot;
use lp_actors::orchestrator::{JobError, RegisterTranscoder, RunJob, TranscoderPool, UnregisterTranscoder};
use lp_wire::limits::{
    WORKER_JOB_TIMEOUT, WORKER_PING_EVERY, WORKER_REGISTER_WITHIN, WORKER_SILENCE, WORKER_UNREGISTERED_BYTES,
};
use lp_wire::{ErrorCode, OrchestratorMessage, TranscodeData, TranscodeFailure, TranscoderMessage, Work, WorkOutcome};
use parking_lot::Mutex;
use serde_bytes::ByteBuf;
use tracing::{info, warn};

const MAILBOX: usize = 64;

type Reply = oneshot::Sender<Result<TranscodeData, JobError>>;

pub struct RemoteTranscoder {
    peer: String,
    session: actix_ws::Session,
    pool: Addr<TranscoderPool>,
    secret: Option<Arc<String>>,
    gate: Gate,
    links: Links,
    link_id: Option<u64>,
    id: Option<u64>,
    pending: HashMap<u64, Reply>,
    next_task: u64,
    last_heard: Instant,
    /// Set by [`CloseLink`]: close once the unanswered jobs are answered.
    closing: bool,
    /// Sent in the close frame when the actor stops.
    close_reason: Option<CloseReason>,
}

impl RemoteTranscoder {
    pub fn new(
        peer: String,
        session: actix_ws::Session,
        pool: Addr<TranscoderPool>,
        secret: Option<Arc<String>>,
        gate: Gate,
        links: Links,
    ) -> Self {
        RemoteTranscoder {
            peer,
            session,
            pool,
            secret,
            gate,
            links,
            link_id: None,
            id: None,
            pending: HashMap::new(),
            next_task: 1,
            last_heard: Instant::now(),
            closing: false,
            close_reason: None,
        }
    }

    /// After [`CloseLink`], stop as soon as nothing is unanswered.
    fn close_if_idle(&mut self, ctx: &mut Context<Self>) {
        if self.closing && self.pending.is_empty() {
            info!(target: "lp::transcoders", peer = %self.peer, "closing the transcoder link: shutting down");
            self.close_reason =
                Some(CloseReason { code: CloseCode::Away, description: Some("orchestrator shutting down".into()) });
            ctx.stop();
        }
    }

    fn send(&self, msg: &OrchestratorMessage) {
        let mut session = self.session.clone();
        let frame = lp_wire::encode(msg);
        actix::spawn(async move {
            let _ = session.binary(frame).await;
        });
    }

    fn refuse(&mut self, reason: &str, ctx: &mut Context<Self>) {
        warn!(target: "lp::transcoders", peer = %self.peer, reason, "transcoder refused");
        let frame = lp_wire::encode(&OrchestratorMessage::Refused { reason: reason.to_string() });
        let session = self.session.clone();
        actix::spawn(async move {
            let mut s = session.clone();
            let _ = s.binary(frame).await;
            let _ = session.close(None).await;
        });
        ctx.stop();
    }

    fn on_frame(&mut self, bytes: &[u8], ctx: &mut Context<Self>) {
        let msg = match lp_wire::decode::<TranscoderMessage>(bytes) {
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
                            act.gate.open();
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
                        WorkOutcome::Transcoded(data) => Ok(data),
                        WorkOutcome::Error(f) => Err(JobError::Failed(f)),
                        WorkOutcome::Inferred { .. } => Err(JobError::Failed(TranscodeFailure {
                            code: ErrorCode::TranscoderFailed,
                            message: "the transcoder answered a transcode job with an inference result".into(),
                        })),
                    });
                }
                self.close_if_idle(ctx);
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
        self.link_id = Some(self.links.add(ctx.address()));
        ctx.run_later(WORKER_REGISTER_WITHIN, |act, ctx| {
            if act.id.is_none() {
                act.refuse("no registration", ctx);
            }
        });
        ctx.run_interval(WORKER_PING_EVERY, |act, ctx| {
            if act.last_heard.elapsed() > WORKER_SILENCE {
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
        let reason = self.close_reason.take();
        actix::spawn(async move {
            let _ = session.close(reason).await;
        });
        if let Some(id) = self.link_id.take() {
            self.links.remove(id);
        }
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
            Err(_) if self.gate.overflowed() => {
                warn!(target: "lp::transcoders", peer = %self.peer, limit = WORKER_UNREGISTERED_BYTES, "connection sent more than it may before registering; dropping it");
                ctx.stop();
            }
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
            work: Work::Transcode {
                seq: job.seq,
                format: job.format.into(),
                profiles: job.profiles.iter().map(Into::into).collect(),
                data: ByteBuf::from(job.data.to_vec()),
            },
            // At least 1 ms: 0 would mean "the default" to the transcoder.
            timeout_ms: (job.time_left().as_millis() as u64).max(1),
        });
        let wait = actix_web::rt::time::timeout(WORKER_JOB_TIMEOUT, answer);
        Box::pin(wait.into_actor(self).map(move |answer, act, ctx| match answer {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(JobError::Disconnected),
            Err(_) => {
                warn!(target: "lp::transcoders", peer = %act.peer, task_id, "job timed out; dropping the transcoder");
                act.pending.remove(&task_id);
                ctx.stop();
                Err(JobError::Failed(TranscodeFailure {
                    code: ErrorCode::TranscoderFailed,
                    message: format!("remote transcoder did not answer in {WORKER_JOB_TIMEOUT:?}"),
                }))
            }
        }))
    }
}

/// Close the link once its unanswered jobs are answered (the orchestrator is shutting down).
#[derive(Message)]
#[rtype(result = "()")]
pub struct CloseLink;

impl Handler<CloseLink> for RemoteTranscoder {
    type Result = ();

    fn handle(&mut self, _: CloseLink, ctx: &mut Self::Context) {
        self.closing = true;
        self.close_if_idle(ctx);
    }
}

/// Whether a connection has registered, shared by its actor and the [`Gated`] bytes it reads.
#[derive(Clone, Default)]
pub struct Gate(Rc<GateState>);

#[derive(Default)]
struct GateState {
    open: Cell<bool>,
    overflowed: Cell<bool>,
}

impl Gate {
    /// Lift the budget: the connection has registered.
    fn open(&self) {
        self.0.open.set(true);
    }

    /// Whether the connection was cut for sending too much before registering.
    fn overflowed(&self) -> bool {
        self.0.overflowed.get()
    }
}

/// The bytes of a WebSocket connection, of which at most [`WORKER_UNREGISTERED_BYTES`] pass before its
/// [`Gate`] opens; then an error, and nothing more.
pub struct Gated<S> {
    inner: S,
    gate: Gate,
    left: usize,
}

impl<S> Gated<S> {
    pub fn new(inner: S, gate: Gate) -> Self {
        Gated { inner, gate, left: WORKER_UNREGISTERED_BYTES }
    }
}

impl<S: Stream<Item = Result<Bytes, PayloadError>> + Unpin> Stream for Gated<S> {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        if self.gate.overflowed() {
            return Poll::Ready(None);
        }
        let item = Pin::new(&mut self.inner).poll_next(cx);
        if let Poll::Ready(Some(Ok(bytes))) = &item
            && !self.gate.0.open.get()
        {
            match self.left.checked_sub(bytes.len()) {
                Some(left) => self.left = left,
                None => {
                    self.gate.0.overflowed.set(true);
                    return Poll::Ready(Some(Err(PayloadError::Overflow)));
                }
            }
        }
        item
    }
}

/// The orchestrator's open transcoder links and the segments it has in flight, for a shutdown
/// that closes the links as soon as no segment needs them.
#[derive(Clone, Default)]
pub struct Links(Arc<LinksState>);

#[derive(Default)]
struct LinksState {
    links: Mutex<HashMap<u64, Addr<RemoteTranscoder>>>,
    next_id: AtomicU64,
    in_flight: AtomicUsize,
    draining: AtomicBool,
    /// Woken whenever a link goes or a segment finishes.
    changed: tokio::sync::Notify,
}

/// A segment in flight; it finishes when dropped.
pub struct InFlight(Links);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.0.in_flight.fetch_sub(1, Ordering::SeqCst);
        self.0.0.changed.notify_waiters();
    }
}

/// What [`Links::drain`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Drained {
    /// Segments in flight when the drain began.
    pub in_flight: usize,
    /// Links that were open once those were done.
    pub links: usize,
    /// Whether everything finished before the deadline.
    pub complete: bool,
}

impl Links {
    fn add(&self, addr: Addr<RemoteTranscoder>) -> u64 {
        let id = self.0.next_id.fetch_add(1, Ordering::Relaxed);
        self.0.links.lock().insert(id, addr);
        id
    }

    fn remove(&self, id: u64) {
        self.0.links.lock().remove(&id);
        self.0.changed.notify_waiters();
    }

    /// Count a segment as in flight until the answer is dropped.
    pub fn segment_started(&self) -> InFlight {
        self.0.in_flight.fetch_add(1, Ordering::SeqCst);
        InFlight(self.clone())
    }

    /// Whether [`Links::drain`] has begun: answers should close their connections.
    pub fn draining(&self) -> bool {
        self.0.draining.load(Ordering::SeqCst)
    }

    /// Wait (until `deadline`) for the segments in flight to finish, then close every link and
    /// wait for them to be gone.
    pub async fn drain(&self, deadline: Instant) -> Drained {
        self.0.draining.store(true, Ordering::SeqCst);
        let in_flight = self.0.in_flight.load(Ordering::SeqCst);
        let mut complete = self.wait(deadline, || self.0.in_flight.load(Ordering::SeqCst) == 0).await;
        let links: Vec<_> = self.0.links.lock().values().cloned().collect();
        for link in &links {
            link.do_send(CloseLink);
        }
        complete &= self.wait(deadline, || self.0.links.lock().is_empty()).await;
        Drained { in_flight, links: links.len(), complete }
    }

    /// Wait until `done` holds or `deadline` passes; answers whether it holds.
    async fn wait(&self, deadline: Instant, done: impl Fn() -> bool) -> bool {
        loop {
            let changed = self.0.changed.notified();
            let mut changed = std::pin::pin!(changed);
            changed.as_mut().enable();
            if done() {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || actix_web::rt::time::timeout(left, changed).await.is_err() {
                return done();
            }
        }
    }
}
