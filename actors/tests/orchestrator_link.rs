//! The worker side of the link protocol (`worker::run`) over in-memory connections: it
//! registers, answers each job under its task id, refuses inference (a transcoder) or runs it
//! and streams its text (an AI worker), answers pings and close
//! frames, redials a lost connection after the backoff, tells `Health` why it is not
//! registered, and ends when refused. Timeouts and backoffs run in tokio's paused time.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use bytes::Bytes;
use futures::channel::mpsc;
use futures::future::LocalBoxFuture;
use futures::{SinkExt, StreamExt};
use lp_actors::orchestrator::{
    AiJob, AiPool, JobError, LocalWorker, Offer, RegisterWorker, RunJob, TranscodeJob, TranscoderPool, WorkFn,
    inference,
};
use lp_actors::worker::{self, Connection, Health, LinkSettings, LocalPool, Refused, WorkerFrame};
use lp_pipelines::InputFormat;
use lp_wire::ai::{AiRequest, AiResponse, ImageToTextResponse, LlmMessage, LlmRequest, Pipeline, UpscaleRequest};
use lp_wire::limits::WORKER_SILENCE;
use lp_wire::{
    ErrorCode, OrchestratorMessage, TranscodeData, TranscodedSegmentData, TranscoderMessage, Work, WorkOutcome,
};
use serde_bytes::ByteBuf;
use tokio::time::Instant;

const ORCHESTRATOR: &str = "https://orchestrator.test:8935";

/// A local transcoder that answers each job with one rendition naming its segment.
struct Echo;

impl Actor for Echo {
    type Context = Context<Self>;
}

impl Handler<RunJob<TranscodeJob>> for Echo {
    type Result = Result<TranscodeData, JobError>;

    fn handle(&mut self, RunJob(job): RunJob<TranscodeJob>, _: &mut Self::Context) -> Self::Result {
        Ok(rendition(job.seq, &job.data))
    }
}

fn rendition(seq: i64, data: &[u8]) -> TranscodeData {
    TranscodeData {
        segments: vec![TranscodedSegmentData {
            url: String::new(),
            pixels: seq,
            data: ByteBuf::from(data.to_vec()),
            name: "P144p30fps16x9".into(),
            width: 256,
            height: 144,
        }],
        sig: ByteBuf::new(),
    }
}

async fn pool() -> Addr<TranscoderPool> {
    let pool = TranscoderPool::new(4).start();
    let echo = Echo.start();
    pool.send(RegisterWorker {
        remote_sessions: None,
        name: "echo".into(),
        offer: Offer { capabilities: lp_wire::Capabilities::transcoding(), model: None },
        capacity: 1,
        recipient: echo.recipient(),
    })
    .await
    .unwrap();
    pool
}

fn upscale_request() -> AiRequest {
    AiRequest::Upscale(UpscaleRequest::new("x2", "", b"png".to_vec()))
}

/// A local inference worker that streams the words of a streaming llm job's last message, then
/// answers with the text it streamed; any other job is answered with its model id.
struct Words;

impl Actor for Words {
    type Context = Context<Self>;
}

impl Handler<RunJob<AiJob>> for Words {
    type Result = Result<AiResponse, JobError>;

    fn handle(&mut self, RunJob(job): RunJob<AiJob>, _: &mut Self::Context) -> Self::Result {
        let text = match &*job.request {
            AiRequest::Llm(llm) => {
                let words: Vec<_> = llm.messages.last().unwrap().content.split(' ').map(String::from).collect();
                for w in &words {
                    job.tokens.as_ref().expect("a streaming job has tokens").send(w.clone()).unwrap();
                }
                words.concat()
            }
            other => other.model_id().to_string(),
        };
        Ok(AiResponse::ImageToText(ImageToTextResponse { text }))
    }
}

async fn ai_pool() -> (Addr<AiPool>, lp_wire::Capabilities) {
    let pool = AiPool::new(0).start();
    let words = Words.start();
    let mut caps = lp_wire::Capabilities::default();
    for (pipeline, model) in [(Pipeline::Llm, "tiny"), (Pipeline::Upscale, "x2")] {
        caps.set(pipeline.capability());
        caps.constraints
            .entry(pipeline.capability())
            .or_default()
            .insert(model.into(), lp_wire::ModelConstraint { warm: true, capacity: 1, capacity_in_use: 0 });
        let register = RegisterWorker {
            remote_sessions: None,
            name: "words".into(),
            offer: inference::offer(pipeline, model),
            capacity: 1,
            recipient: words.clone().recipient(),
        };
        pool.send(register).await.unwrap();
    }
    (pool, caps)
}

#[actix::test]
async fn an_ai_worker_registers_its_models_and_streams_partial_text_before_the_result() {
    let (conn, mut orch) = connection();
    let (dial, _) = dialer(vec![Ok(conn)]);
    let (pool, caps) = ai_pool().await;
    let local = LocalPool::Ai { pool, capabilities: caps.clone() };
    let _link = actix::spawn(worker::run(settings(), local, Health::new(ORCHESTRATOR), dial));
    match orch.next().await {
        TranscoderMessage::Register { capabilities, .. } => assert_eq!(capabilities, caps, "its models"),
        other => panic!("expected Register, got {other:?}"),
    }
    orch.send(&OrchestratorMessage::Registered);

    let mut llm = LlmRequest::new(vec![LlmMessage { role: "user".into(), content: "one two three".into() }]);
    llm.model = "tiny".into();
    llm.stream = true;
    let work = Work::Infer { request: AiRequest::Llm(llm) };
    orch.send(&OrchestratorMessage::Job { task_id: 5, work, timeout_ms: 10_000 });
    for word in ["one", "two", "three"] {
        assert_eq!(orch.next().await, TranscoderMessage::Partial { task_id: 5, text: word.into() });
    }
    let answer = AiResponse::ImageToText(ImageToTextResponse { text: "onetwothree".into() });
    assert_eq!(orch.next().await, TranscoderMessage::Result { task_id: 5, outcome: WorkOutcome::Inferred(answer) });

    // Not streaming: the answer alone.
    orch.send(&OrchestratorMessage::Job {
        task_id: 6,
        work: Work::Infer { request: upscale_request() },
        timeout_ms: 0,
    });
    let answer = AiResponse::ImageToText(ImageToTextResponse { text: "x2".into() });
    assert_eq!(orch.next().await, TranscoderMessage::Result { task_id: 6, outcome: WorkOutcome::Inferred(answer) });

    // An AI worker does not transcode.
    orch.send(&OrchestratorMessage::Job { task_id: 7, work: transcode(1), timeout_ms: 0 });
    match orch.next().await {
        TranscoderMessage::Result { task_id: 7, outcome: WorkOutcome::Error(f) } => {
            assert_eq!(f.code, ErrorCode::InvalidInput);
            assert!(f.message.contains("does not transcode"), "{}", f.message);
        }
        other => panic!("expected an error for task 7, got {other:?}"),
    }
}

/// A streaming job stops when the orchestrator cancels it (its client left), and when the
/// connection is lost: its text channel closes, and the model stops instead of running to its
/// end.
#[actix::test]
async fn a_streaming_job_stops_when_cancelled_or_when_the_connection_is_lost() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    // Streams up to 10 000 words, 2 ms apart, while anyone listens, and answers how many it
    // sent; counts the jobs that ended.
    let ended = Arc::new(AtomicUsize::new(0));
    let counted = ended.clone();
    let words: WorkFn<AiJob> = Arc::new(move |job: &AiJob| {
        let tokens = job.tokens.as_ref().expect("a streaming job");
        let mut sent = 0;
        while sent < 10_000 && tokens.send(format!("w{sent} ")).is_ok() {
            sent += 1;
            std::thread::sleep(Duration::from_millis(2));
        }
        counted.fetch_add(1, Ordering::SeqCst);
        Ok(AiResponse::ImageToText(ImageToTextResponse { text: sent.to_string() }))
    });
    let pool = AiPool::new(0).start();
    let mut caps = lp_wire::Capabilities::default();
    caps.set(Pipeline::Llm.capability());
    let constraint = lp_wire::ModelConstraint { warm: true, capacity: 2, capacity_in_use: 0 };
    caps.constraints.entry(Pipeline::Llm.capability()).or_default().insert("tiny".into(), constraint);
    let worker = LocalWorker::new("words", words).start();
    let register = RegisterWorker {
        remote_sessions: None,
        name: "words".into(),
        offer: inference::offer(Pipeline::Llm, "tiny"),
        capacity: 2,
        recipient: worker.recipient(),
    };
    pool.send(register).await.unwrap();
    let (conn, mut orch) = connection();
    let (dial, _) = dialer(vec![Ok(conn)]);
    let local = LocalPool::Ai { pool, capabilities: caps };
    let _link = actix::spawn(worker::run(settings(), local, Health::new(ORCHESTRATOR), dial));
    assert!(matches!(orch.next().await, TranscoderMessage::Register { .. }));
    orch.send(&OrchestratorMessage::Registered);
    let streaming = || {
        let mut llm = LlmRequest::new(vec![LlmMessage { role: "user".into(), content: "go".into() }]);
        llm.model = "tiny".into();
        llm.stream = true;
        Work::Infer { request: AiRequest::Llm(llm) }
    };

    orch.send(&OrchestratorMessage::Job { task_id: 5, work: streaming(), timeout_ms: 60_000 });
    assert!(matches!(orch.next().await, TranscoderMessage::Partial { task_id: 5, .. }));
    orch.send(&OrchestratorMessage::Cancel { task_id: 5 });
    let sent = loop {
        match orch.next().await {
            TranscoderMessage::Partial { task_id: 5, .. } => {}
            TranscoderMessage::Result { task_id: 5, outcome: WorkOutcome::Inferred(AiResponse::ImageToText(r)) } => {
                break r.text.parse::<u32>().unwrap();
            }
            other => panic!("expected task 5's text or answer, got {other:?}"),
        }
    };
    assert!(sent < 10_000, "stopped when cancelled, not at its end");
    assert_eq!(ended.load(Ordering::SeqCst), 1);

    orch.send(&OrchestratorMessage::Job { task_id: 6, work: streaming(), timeout_ms: 60_000 });
    assert!(matches!(orch.next().await, TranscoderMessage::Partial { task_id: 6, .. }));
    drop(orch);
    let started = std::time::Instant::now();
    while ended.load(Ordering::SeqCst) < 2 {
        assert!(started.elapsed() < Duration::from_secs(6), "the job ran on after the connection was lost");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn settings() -> LinkSettings {
    LinkSettings { orchestrator: ORCHESTRATOR.into(), secret: "s3cret".into(), capacity: 1, sessions: None }
}

/// The orchestrator's end of an in-memory connection.
struct Orchestrator {
    to_worker: mpsc::UnboundedSender<Result<WorkerFrame, String>>,
    from_worker: mpsc::UnboundedReceiver<WorkerFrame>,
}

fn connection() -> (Connection, Orchestrator) {
    let (to_worker, incoming) = mpsc::unbounded();
    let (outgoing, from_worker) = mpsc::unbounded();
    let conn = Connection::new(outgoing.sink_map_err(|e| e.to_string()), incoming);
    (conn, Orchestrator { to_worker, from_worker })
}

impl Orchestrator {
    fn frame(&self, frame: WorkerFrame) {
        self.to_worker.unbounded_send(Ok(frame)).unwrap();
    }

    fn send(&self, msg: &OrchestratorMessage) {
        self.frame(WorkerFrame::Message(Bytes::from(lp_wire::encode(msg))));
    }

    async fn next_frame(&mut self) -> WorkerFrame {
        self.from_worker.next().await.expect("the worker is still connected")
    }

    async fn next(&mut self) -> TranscoderMessage {
        match self.next_frame().await {
            WorkerFrame::Message(bytes) => lp_wire::decode(&bytes).unwrap(),
            other => panic!("expected a message, got {other:?}"),
        }
    }

    /// Expect `Register` with the settings' secret and capacity; accept it.
    async fn accept(&mut self) {
        match self.next().await {
            TranscoderMessage::Register { secret, capacity, .. } => {
                assert_eq!((secret.as_str(), capacity), ("s3cret", 1))
            }
            other => panic!("expected Register, got {other:?}"),
        }
        self.send(&OrchestratorMessage::Registered);
    }
}

/// A dialer that hands out `dials` in turn, then never connects; each dial is reported (with
/// its virtual time) on the returned channel.
#[allow(clippy::type_complexity)]
fn dialer(
    dials: Vec<Result<Connection, String>>,
) -> (impl FnMut() -> LocalBoxFuture<'static, Result<Connection, String>>, mpsc::UnboundedReceiver<Instant>) {
    let mut dials = VecDeque::from(dials);
    let (dialled, seen) = mpsc::unbounded();
    let dial = move || -> LocalBoxFuture<'static, Result<Connection, String>> {
        let _ = dialled.unbounded_send(Instant::now());
        match dials.pop_front() {
            Some(dial) => Box::pin(futures::future::ready(dial)),
            None => Box::pin(futures::future::pending()),
        }
    };
    (dial, seen)
}

/// Whether `elapsed` (virtual time) is `expected`, give or take the timer's resolution.
fn within(elapsed: Duration, expected: Duration) -> bool {
    elapsed >= expected && elapsed < expected + Duration::from_millis(100)
}

fn transcode(seq: i64) -> Work {
    Work::Transcode {
        seq,
        format: InputFormat::MpegTs.into(),
        profiles: vec![(&lp_pipelines::preset("P144p30fps16x9").unwrap()).into()],
        data: ByteBuf::from(b"a segment".to_vec()),
    }
}

#[actix::test]
async fn the_worker_answers_each_job_under_its_task_id_and_refuses_inference() {
    let (conn, mut orch) = connection();
    let (dial, _) = dialer(vec![Ok(conn)]);
    let health = Health::new(ORCHESTRATOR);
    let link = actix::spawn(worker::run(settings(), pool().await, health.clone(), dial));

    orch.accept().await;
    orch.send(&OrchestratorMessage::Job { task_id: 41, work: transcode(3), timeout_ms: 10_000 });
    assert_eq!(
        orch.next().await,
        TranscoderMessage::Result { task_id: 41, outcome: WorkOutcome::Transcoded(rendition(3, b"a segment")) }
    );
    assert_eq!(health.check(), Ok(()));
    assert!(health.status().registered);

    let infer = Work::Infer { request: upscale_request() };
    orch.send(&OrchestratorMessage::Job { task_id: 42, work: infer, timeout_ms: 0 });
    match orch.next().await {
        TranscoderMessage::Result { task_id: 42, outcome: WorkOutcome::Error(f) } => {
            assert_eq!(f.code, ErrorCode::InvalidInput);
            assert!(f.message.contains("does not run inference (upscale)"), "{}", f.message);
        }
        other => panic!("expected an error for task 42, got {other:?}"),
    }

    // Pings are answered with the same bytes.
    orch.frame(WorkerFrame::Ping(Bytes::from_static(b"hi")));
    assert_eq!(orch.next_frame().await, WorkerFrame::Pong(Bytes::from_static(b"hi")));

    // A refusal ends the link, and says why.
    orch.send(&OrchestratorMessage::Refused { reason: "invalid secret".into() });
    let refused = link.await.unwrap();
    assert_eq!(refused, Refused { orchestrator: ORCHESTRATOR.into(), reason: "invalid secret".into() });
    assert!(refused.to_string().contains("refused this worker: invalid secret"), "{refused}");
    let why = health.check().unwrap_err();
    assert!(
        why.contains(&format!("not registered with the orchestrator at {ORCHESTRATOR}: refused: invalid secret")),
        "{why}"
    );
}

#[actix::test]
async fn a_job_before_registering_is_ignored() {
    let (conn, mut orch) = connection();
    let (dial, _) = dialer(vec![Ok(conn)]);
    let _link = actix::spawn(worker::run(settings(), pool().await, Health::new(ORCHESTRATOR), dial));
    assert!(matches!(orch.next().await, TranscoderMessage::Register { .. }));
    orch.send(&OrchestratorMessage::Job { task_id: 1, work: transcode(1), timeout_ms: 0 });
    orch.send(&OrchestratorMessage::Registered);
    orch.send(&OrchestratorMessage::Job { task_id: 2, work: transcode(2), timeout_ms: 0 });
    // Only the job after `Registered` is answered.
    assert!(matches!(orch.next().await, TranscoderMessage::Result { task_id: 2, .. }));
}

#[actix::test]
async fn a_lost_connection_is_redialled_after_the_backoff_and_health_says_why() {
    tokio::time::pause();
    let (conn, mut orch) = connection();
    let (dial, mut dialled) = dialer(vec![Err("connection refused".into()), Ok(conn)]);
    let health = Health::new(ORCHESTRATOR);
    let _link = actix::spawn(worker::run(settings(), pool().await, health.clone(), dial));
    assert!(health.check().unwrap_err().contains("connecting"));

    let first = dialled.next().await.unwrap();
    orch.accept().await;
    let second = dialled.next().await.unwrap();
    assert!(within(second - first, Duration::from_secs(1)), "the first backoff: {:?}", second - first);
    assert!(health.check().unwrap_err().contains("cannot connect: connection refused"));

    // The orchestrator shuts down: its close is answered, and the worker dials again, after
    // the first backoff again since this connection had registered.
    orch.send(&OrchestratorMessage::Job { task_id: 1, work: transcode(1), timeout_ms: 0 });
    assert!(matches!(orch.next().await, TranscoderMessage::Result { task_id: 1, .. }));
    assert_eq!(health.check(), Ok(()));
    let closed = Instant::now();
    orch.frame(WorkerFrame::Close(Some("Away: orchestrator shutting down".into())));
    assert_eq!(orch.next_frame().await, WorkerFrame::Close(None));
    let third = dialled.next().await.unwrap();
    assert!(within(third - closed, Duration::from_secs(1)), "{:?}", third - closed);
    let why = health.check().unwrap_err();
    assert!(why.contains("the orchestrator closed the link (Away: orchestrator shutting down)"), "{why}");
}

#[actix::test]
async fn a_silent_orchestrator_is_taken_for_gone() {
    tokio::time::pause();
    let (conn, mut orch) = connection();
    let (dial, mut dialled) = dialer(vec![Ok(conn)]);
    let health = Health::new(ORCHESTRATOR);
    let _link = actix::spawn(worker::run(settings(), pool().await, health.clone(), dial));
    dialled.next().await.unwrap();
    orch.accept().await;
    let registered = Instant::now();
    // Nothing more from the orchestrator: after the silence, the worker dials again.
    dialled.next().await.unwrap();
    assert!(registered.elapsed() >= WORKER_SILENCE, "{:?}", registered.elapsed());
    let why = health.check().unwrap_err();
    assert!(why.contains(&format!("nothing heard for {WORKER_SILENCE:?}")), "{why}");
}
