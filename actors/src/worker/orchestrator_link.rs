//! `OrchestratorLink`: a worker process's link to its orchestrator, over whatever connection
//! its dialer makes (lp-node dials a WebSocket; tests use channels).
//!
//! [`run`] dials, registers with the shared secret and its capacity, then runs each `Job` frame
//! on its local pool ([`LocalPool`]) and answers with a `Result` frame under the job's `task_id`.
//! A transcoder runs `Work::Transcode` on a [`TranscoderPool`] (an inference job is answered
//! with an error); an AI worker registers its models (capability bits and per-model
//! constraints) and runs `Work::Infer` on an [`AiPool`], sending the text of a streaming `llm`
//! job as `Partial` frames before its `Result` (a transcode job is answered with an error). A
//! streaming job stops when the orchestrator sends `Cancel` for it (its client left) or the
//! connection is lost: the generation's text channel closes, and the model stops. A lost
//! connection, or one silent for [`WORKER_SILENCE`] (the orchestrator pings every few seconds),
//! is redialled after a backoff ([`WORKER_BACKOFF`]: 1 s doubling to 30 s, back to 1 s once a
//! connection registered), forever, as go-livepeer does; a refusal (wrong secret, zero
//! capacity) ends the link with [`Refused`], since retrying cannot fix it. [`Health`] tells
//! `/healthz` whether the link is registered, and why not.
//!
//! Not an actor: one task per link, and one per job in flight (its answer goes back through
//! the link's single writer); the jobs run on the pool's workers. No restart policy: the task
//! ends only when refused.

use std::cell::RefCell;
use std::collections::HashMap;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use actix::Addr;
use bytes::Bytes;
use futures::channel::oneshot;
use futures::{Sink, SinkExt, Stream, StreamExt};
use lp_pipelines::Profile;
use lp_wire::limits::{WORKER_BACKOFF, WORKER_CLOSE_GRACE, WORKER_SILENCE};
use lp_wire::{Capabilities, ErrorCode, OrchestratorMessage, TranscodeFailure, TranscoderMessage, Work, WorkOutcome};
use parking_lot::Mutex;
use serde::Serialize;
use tracing::{info, warn};

use crate::orchestrator::{AiJob, AiPool, Submit, TranscodeJob, TranscoderPool};

/// The pool a worker process runs its jobs on, and what it registers as.
#[derive(Clone)]
pub enum LocalPool {
    /// A transcoder: registers [`Capabilities::transcoding`].
    Transcoder(Addr<TranscoderPool>),
    /// An AI worker: registers `capabilities` (its pipelines' bits and, in `constraints`, each
    /// model with its capacity).
    Ai { pool: Addr<AiPool>, capabilities: Capabilities },
}

impl From<Addr<TranscoderPool>> for LocalPool {
    fn from(pool: Addr<TranscoderPool>) -> Self {
        LocalPool::Transcoder(pool)
    }
}

impl LocalPool {
    fn capabilities(&self) -> Capabilities {
        match self {
            LocalPool::Transcoder(_) => Capabilities::transcoding(),
            LocalPool::Ai { capabilities, .. } => capabilities.clone(),
        }
    }
}

/// What travels on a worker's connection, either way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkerFrame {
    /// One lp-wire message: an [`OrchestratorMessage`] in, a [`TranscoderMessage`] out.
    Message(Bytes),
    /// A ping; the link answers it with a [`WorkerFrame::Pong`] carrying the same bytes.
    Ping(Bytes),
    Pong(Bytes),
    /// The connection closes. From the orchestrator: why, when it said (e.g. `Away: orchestrator
    /// shutting down`); the link answers with `Close(None)`.
    Close(Option<String>),
}

/// A dialled connection: frames out and frames in (an error ends it, saying why).
pub struct Connection {
    outgoing: Pin<Box<dyn Sink<WorkerFrame, Error = String>>>,
    incoming: Pin<Box<dyn Stream<Item = Result<WorkerFrame, String>>>>,
}

impl Connection {
    pub fn new(
        outgoing: impl Sink<WorkerFrame, Error = String> + 'static,
        incoming: impl Stream<Item = Result<WorkerFrame, String>> + 'static,
    ) -> Self {
        Connection { outgoing: Box::pin(outgoing), incoming: Box::pin(incoming) }
    }
}

/// Who this worker registers with, and as what.
#[derive(Debug, Clone)]
pub struct LinkSettings {
    /// The orchestrator's address, for logs and [`Health`].
    pub orchestrator: String,
    pub secret: String,
    /// How many jobs it runs at once.
    pub capacity: u32,
    /// The live streams it measured it carries (`livepeer bench`), when it has a figure.
    pub sessions: Option<u32>,
}

/// The orchestrator refused this worker; retrying cannot help.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the orchestrator at {orchestrator} refused this worker: {reason}")]
pub struct Refused {
    pub orchestrator: String,
    pub reason: String,
}

/// Why a connection ended.
enum LinkEnd {
    /// Try again later.
    Lost { why: String, was_registered: bool },
    /// The orchestrator refused us.
    Refused(String),
}

/// Serve the orchestrator over the connections `dial` makes, redialling each lost one after a
/// backoff, until the orchestrator refuses this worker.
pub async fn run<D, F>(settings: LinkSettings, pool: impl Into<LocalPool>, health: Health, mut dial: D) -> Refused
where
    D: FnMut() -> F,
    F: Future<Output = Result<Connection, String>>,
{
    let pool = pool.into();
    let (first_backoff, max_backoff) = WORKER_BACKOFF;
    let mut backoff = first_backoff;
    loop {
        let end = match dial().await {
            Ok(conn) => serve(conn, &settings, &pool, &health).await,
            Err(why) => LinkEnd::Lost { why: format!("cannot connect: {why}"), was_registered: false },
        };
        match end {
            LinkEnd::Refused(reason) => {
                health.lost(&format!("refused: {reason}"));
                return Refused { orchestrator: settings.orchestrator, reason };
            }
            LinkEnd::Lost { why, was_registered } => {
                if was_registered {
                    backoff = first_backoff;
                }
                health.lost(&why);
                warn!(target: "lp::transcoder", orchestrator = %settings.orchestrator, "connection lost: {why}; retrying in {backoff:?}");
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(max_backoff);
    }
}

/// One connection, from registering until it is lost or refused.
async fn serve(conn: Connection, settings: &LinkSettings, pool: &LocalPool, health: &Health) -> LinkEnd {
    let Connection { mut outgoing, mut incoming } = conn;
    let register = TranscoderMessage::Register {
        secret: settings.secret.clone(),
        capacity: settings.capacity,
        capabilities: pool.capabilities(),
        sessions: settings.sessions,
    };
    if let Err(e) = outgoing.send(message(&register)).await {
        return LinkEnd::Lost { why: format!("cannot register: {e}"), was_registered: false };
    }
    // Answers from concurrent jobs go through one writer.
    let (tx, mut rx) = futures::channel::mpsc::unbounded::<WorkerFrame>();
    let mut writer = actix::spawn(async move {
        while let Some(frame) = rx.next().await {
            let close = matches!(frame, WorkerFrame::Close(_));
            if outgoing.send(frame).await.is_err() || close {
                break;
            }
        }
    });
    // The jobs running, each with the sender that stops it (a streaming one; the others run
    // on); dropped with the connection, which stops them all. Keyed by task id, which the
    // orchestrator counts up on each link, so one job never takes another's place.
    let cancels: Rc<RefCell<HashMap<u64, oneshot::Sender<()>>>> = Rc::default();
    let mut registered = false;
    let mut closing = false;
    let lost = |why: String, registered| LinkEnd::Lost { why, was_registered: registered };
    let end = loop {
        // The orchestrator pings every few seconds: silence means a dead (half-open) connection.
        let frame = match tokio::time::timeout(WORKER_SILENCE, incoming.next()).await {
            Err(_) => break lost(format!("nothing heard for {WORKER_SILENCE:?}"), registered),
            Ok(None) => break lost("connection closed".into(), registered),
            Ok(Some(Err(e))) => break lost(e, registered),
            Ok(Some(Ok(f))) => f,
        };
        let bytes = match frame {
            WorkerFrame::Message(b) => b,
            WorkerFrame::Ping(p) => {
                let _ = tx.unbounded_send(WorkerFrame::Pong(p));
                continue;
            }
            WorkerFrame::Pong(_) => continue,
            WorkerFrame::Close(reason) => {
                // Answer the close, as RFC 6455 asks, before dropping the connection.
                closing = tx.unbounded_send(WorkerFrame::Close(None)).is_ok();
                break lost(closed_by_orchestrator(reason.as_deref()), registered);
            }
        };
        match lp_wire::decode::<OrchestratorMessage>(&bytes) {
            Ok(OrchestratorMessage::Registered) => {
                registered = true;
                health.registered();
                info!(target: "lp::transcoder", orchestrator = %settings.orchestrator, capacity = settings.capacity, "registered with the orchestrator");
            }
            Ok(OrchestratorMessage::Refused { reason }) => break LinkEnd::Refused(reason),
            Ok(OrchestratorMessage::Job { task_id, work, timeout_ms }) if registered => {
                let (pool, tx) = (pool.clone(), tx.clone());
                let (cancel, cancelled) = oneshot::channel();
                cancels.borrow_mut().insert(task_id, cancel);
                let running = Rc::downgrade(&cancels);
                actix::spawn(async move {
                    let outcome = run_job(task_id, work, timeout_ms, &pool, &tx, cancelled).await;
                    if let Some(running) = running.upgrade() {
                        running.borrow_mut().remove(&task_id);
                    }
                    let Some(outcome) = outcome else { return };
                    let _ = tx.unbounded_send(message(&TranscoderMessage::Result { task_id, outcome }));
                });
            }
            Ok(OrchestratorMessage::Cancel { task_id }) => {
                if let Some(cancel) = cancels.borrow_mut().remove(&task_id) {
                    let _ = cancel.send(());
                }
            }
            Ok(OrchestratorMessage::Job { .. }) => warn!(target: "lp::transcoder", "job before registration; ignored"),
            Err(e) => warn!(target: "lp::transcoder", "unreadable frame from the orchestrator: {e}"),
        }
    };
    // The writer stops after sending the answer to a close; give it a moment, no more.
    if !closing || tokio::time::timeout(WORKER_CLOSE_GRACE, &mut writer).await.is_err() {
        writer.abort();
    }
    end
}

/// Run one job on the local pool; `None` when the pool is gone (nothing to answer). The text of
/// a streaming llm job goes out on `out` as `Partial` frames, all before the answer, until
/// `cancelled` resolves (sent or dropped): then its text channel closes, which stops the model.
async fn run_job(
    task_id: u64,
    work: Work,
    timeout_ms: u64,
    pool: &LocalPool,
    out: &futures::channel::mpsc::UnboundedSender<WorkerFrame>,
    cancelled: oneshot::Receiver<()>,
) -> Option<WorkOutcome> {
    let patience = match timeout_ms {
        0 => lp_wire::MAX_PATIENCE,
        ms => Duration::from_millis(ms).min(lp_wire::MAX_PATIENCE),
    };
    let deadline = std::time::Instant::now() + patience;
    match (work, pool) {
        (Work::Infer { request }, LocalPool::Ai { pool, .. }) => {
            let streams = matches!(&request, lp_wire::ai::AiRequest::Llm(r) if r.stream);
            let (tokens, mut text) = tokio::sync::mpsc::unbounded_channel();
            let job = AiJob { request: Arc::new(request), deadline, tokens: streams.then_some(tokens) };
            let partial = |text: String| message(&TranscoderMessage::Partial { task_id, text });
            let mut answer = std::pin::pin!(pool.send(Submit(job)));
            let mut cancelled = std::pin::pin!(cancelled);
            let mut listened = true;
            let answer = loop {
                tokio::select! {
                    answer = &mut answer => break answer,
                    Some(t) = text.recv(), if listened => { let _ = out.unbounded_send(partial(t)); }
                    _ = &mut cancelled, if listened => {
                        text.close();
                        listened = false;
                    }
                }
            };
            // What was made before the answer goes out before it, if anyone listens.
            while let (true, Ok(t)) = (listened, text.try_recv()) {
                let _ = out.unbounded_send(partial(t));
            }
            match answer {
                Ok(Ok(response)) => Some(WorkOutcome::Inferred(response)),
                Ok(Err(f)) => Some(WorkOutcome::Error(f)),
                Err(_) => None,
            }
        }
        (Work::Infer { request }, LocalPool::Transcoder(_)) => Some(WorkOutcome::Error(TranscodeFailure {
            code: ErrorCode::InvalidInput,
            message: format!("this worker does not run inference ({})", request.pipeline()),
        })),
        (Work::Transcode { seq, .. }, LocalPool::Ai { .. }) => Some(WorkOutcome::Error(TranscodeFailure {
            code: ErrorCode::InvalidInput,
            message: format!("this AI worker does not transcode (segment {seq})"),
        })),
        (Work::Transcode { seq, format, profiles, data }, LocalPool::Transcoder(pool)) => {
            let profiles = profiles.iter().map(Profile::from).collect::<Vec<_>>().into();
            let job = TranscodeJob { seq, format: format.into(), profiles, data: data.into_vec().into(), deadline };
            match pool.send(Submit(job)).await {
                Ok(Ok(data)) => Some(WorkOutcome::Transcoded(data)),
                Ok(Err(f)) => Some(WorkOutcome::Error(f)),
                Err(_) => None,
            }
        }
    }
}

fn message(msg: &TranscoderMessage) -> WorkerFrame {
    WorkerFrame::Message(lp_wire::encode(msg).into())
}

/// Why the orchestrator closed the link, from what its close said.
fn closed_by_orchestrator(reason: Option<&str>) -> String {
    match reason {
        Some(reason) => format!("the orchestrator closed the link ({reason})"),
        None => "the orchestrator closed the link".into(),
    }
}

/// Whether this worker is registered with its orchestrator: `/healthz` answers 503 with the
/// reason while it is not.
#[derive(Clone)]
pub struct Health(Arc<Mutex<HealthStatus>>);

/// What [`Health`] knows, for `/status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HealthStatus {
    pub orchestrator: String,
    pub registered: bool,
    /// Why not registered; empty while registered.
    pub reason: String,
}

impl Health {
    pub fn new(orchestrator: &str) -> Health {
        Health(Arc::new(Mutex::new(HealthStatus {
            orchestrator: orchestrator.to_string(),
            registered: false,
            reason: "connecting".into(),
        })))
    }

    fn registered(&self) {
        let mut s = self.0.lock();
        s.registered = true;
        s.reason.clear();
    }

    fn lost(&self, why: &str) {
        let mut s = self.0.lock();
        s.registered = false;
        s.reason = why.to_string();
    }

    /// `Err(reason)` while not registered with the orchestrator.
    pub fn check(&self) -> Result<(), String> {
        let s = self.0.lock();
        if s.registered {
            Ok(())
        } else {
            Err(format!("not registered with the orchestrator at {}: {}", s.orchestrator, s.reason))
        }
    }

    /// For `/status`.
    pub fn status(&self) -> HealthStatus {
        self.0.lock().clone()
    }
}
