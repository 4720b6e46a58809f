//! The orchestrator side of the worker link protocol (`WorkerLink`) over an in-memory
//! transport: registration rules, jobs and their answers, the job timeout, silence, a link
//! dropped with a job in flight, and the shutdown drain; AI workers (registered per model,
//! inference jobs, streamed text, re-queue on disconnect). Timeouts run in tokio's paused time.

use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use bytes::Bytes;
use futures::StreamExt;
use futures::channel::mpsc;
use lp_actors::orchestrator::{
    AiJob, AiPool, Close, GetWorkers, LinkEvent, LinkTransport, Links, Submit, TranscodeJob, TranscoderPool, WorkerLink,
};
use lp_pipelines::InputFormat;
use lp_wire::ai::{
    AiRequest, AiResponse, ImageResponse, LlmMessage, LlmRequest, LlmResponse, LlmTokenUsage, Media, Pipeline,
    UpscaleRequest,
};
use lp_wire::limits::{WORKER_JOB_TIMEOUT, WORKER_REGISTER_WITHIN, WORKER_SILENCE};
use lp_wire::{
    Capabilities, ErrorCode, OrchestratorMessage, TranscodeData, TranscodedSegmentData, TranscoderMessage, Work,
    WorkOutcome,
};
use serde_bytes::ByteBuf;
use tokio::time::Instant;

const SECRET: &str = "s3cret";

/// What a link sent, as the in-memory transport saw it.
#[derive(Debug, PartialEq)]
enum Sent {
    Message(OrchestratorMessage),
    Ping,
    Close(Close),
}

struct Memory {
    sent: mpsc::UnboundedSender<Sent>,
    registered: Rc<Cell<bool>>,
}

impl LinkTransport for Memory {
    fn send(&self, frame: Vec<u8>) {
        let msg = lp_wire::decode(&frame).expect("the link sends lp-wire messages");
        let _ = self.sent.unbounded_send(Sent::Message(msg));
    }

    fn ping(&self) {
        let _ = self.sent.unbounded_send(Sent::Ping);
    }

    fn close(&self, why: Close) {
        let _ = self.sent.unbounded_send(Sent::Close(why));
    }

    fn registered(&self) {
        self.registered.set(true);
    }
}

/// The worker's end of an in-memory link.
struct Worker {
    events: mpsc::UnboundedSender<LinkEvent>,
    sent: mpsc::UnboundedReceiver<Sent>,
    registered: Rc<Cell<bool>>,
}

fn connect(pool: &Addr<TranscoderPool>, links: &Links) -> Worker {
    connect_with(pool, None, links)
}

/// A link of an orchestrator that accepts AI workers into `ai` too.
fn connect_with(pool: &Addr<TranscoderPool>, ai: Option<&Addr<AiPool>>, links: &Links) -> Worker {
    let (events, incoming) = mpsc::unbounded();
    let (sent_tx, sent) = mpsc::unbounded();
    let registered = Rc::new(Cell::new(false));
    let transport = Memory { sent: sent_tx, registered: registered.clone() };
    let link = WorkerLink::new(
        "memory".into(),
        Box::new(transport),
        pool.clone(),
        Some(Arc::new(SECRET.to_string())),
        links.clone(),
    );
    match ai {
        Some(ai) => link.with_ai(ai.clone()),
        None => link,
    }
    .start_with(incoming);
    Worker { events, sent, registered }
}

impl Worker {
    fn send(&self, msg: &TranscoderMessage) {
        self.events.unbounded_send(LinkEvent::Frame(Bytes::from(lp_wire::encode(msg)))).unwrap();
    }

    fn register(&self, secret: &str, capacity: u32) {
        self.send(&TranscoderMessage::Register {
            secret: secret.into(),
            capacity,
            capabilities: Capabilities::transcoding(),
            sessions: None,
        });
    }

    /// What the link sends next, answering its pings as a live worker does; `None` once the
    /// link is gone.
    async fn next(&mut self) -> Option<Sent> {
        loop {
            match self.sent.next().await? {
                Sent::Ping => {
                    let _ = self.events.unbounded_send(LinkEvent::Heard);
                }
                sent => return Some(sent),
            }
        }
    }

    /// Register and expect `Registered`.
    async fn registered(&mut self, capacity: u32) {
        self.register(SECRET, capacity);
        assert_eq!(self.next().await, Some(Sent::Message(OrchestratorMessage::Registered)));
        assert!(self.registered.get(), "the transport was told, to lift its byte budget");
    }

    /// The next job: its task id and segment number.
    async fn job(&mut self) -> (u64, i64) {
        match self.next().await {
            Some(Sent::Message(OrchestratorMessage::Job {
                task_id,
                work: Work::Transcode { seq, .. },
                timeout_ms,
            })) => {
                assert!(timeout_ms > 0);
                (task_id, seq)
            }
            other => panic!("expected a job, got {other:?}"),
        }
    }

    /// Register as an AI worker serving `models` (pipeline, model, capacity) and expect
    /// `Registered`.
    async fn registered_ai(&mut self, models: &[(Pipeline, &str, u32)]) {
        self.send(&TranscoderMessage::Register {
            secret: SECRET.into(),
            capacity: models.iter().map(|m| m.2).sum(),
            capabilities: ai_capabilities(models),
            sessions: None,
        });
        assert_eq!(self.next().await, Some(Sent::Message(OrchestratorMessage::Registered)));
    }

    /// The next job, an inference: its task id and request.
    async fn ai_job(&mut self) -> (u64, AiRequest) {
        match self.next().await {
            Some(Sent::Message(OrchestratorMessage::Job { task_id, work: Work::Infer { request }, timeout_ms })) => {
                assert!(timeout_ms > 0);
                (task_id, request)
            }
            other => panic!("expected an inference job, got {other:?}"),
        }
    }

    /// Expect a refusal saying `why`, then the close, then nothing.
    async fn refused(&mut self, why: &str) {
        match self.next().await {
            Some(Sent::Message(OrchestratorMessage::Refused { reason })) => assert!(reason.contains(why), "{reason}"),
            other => panic!("expected a refusal, got {other:?}"),
        }
        self.closed(Close::Plain).await;
    }

    /// Expect the link to close with `why`, and nothing after.
    async fn closed(&mut self, why: Close) {
        assert_eq!(self.next().await, Some(Sent::Close(why)));
        assert_eq!(self.next().await, None, "nothing after the close");
    }
}

fn job(seq: i64) -> TranscodeJob {
    TranscodeJob {
        seq,
        format: InputFormat::MpegTs,
        profiles: Arc::new(vec![lp_pipelines::preset("P144p30fps16x9").unwrap()]),
        data: Bytes::from_static(b"a segment"),
        deadline: std::time::Instant::now() + Duration::from_secs(600),
    }
}

fn renditions(seq: i64) -> TranscodeData {
    TranscodeData {
        segments: vec![TranscodedSegmentData {
            url: String::new(),
            pixels: seq,
            data: ByteBuf::from(format!("rendition of {seq}").into_bytes()),
            name: "P144p30fps16x9".into(),
            width: 256,
            height: 144,
        }],
        sig: ByteBuf::new(),
    }
}

async fn transcoders(pool: &Addr<TranscoderPool>) -> Vec<(String, u32)> {
    pool.send(GetWorkers).await.unwrap().into_iter().map(|t| (t.name, t.capacity)).collect()
}

/// Whether `elapsed` (virtual time) is `expected`, give or take the timer's resolution.
fn within(elapsed: Duration, expected: Duration) -> bool {
    elapsed >= expected && elapsed < expected + Duration::from_millis(100)
}

fn setup() -> (Addr<TranscoderPool>, Links) {
    (TranscoderPool::new(8).start(), Links::default())
}

#[actix::test]
async fn a_worker_with_the_right_secret_registers_and_gets_jobs() {
    let (pool, links) = setup();
    let mut w = connect(&pool, &links);
    w.registered(2).await;
    assert_eq!(transcoders(&pool).await, vec![("remote memory".to_string(), 2)]);

    let answer = pool.send(Submit(job(7)));
    let (task_id, seq) = w.job().await;
    assert_eq!(seq, 7);
    w.send(&TranscoderMessage::Result { task_id, outcome: WorkOutcome::Transcoded(renditions(7)) });
    assert_eq!(answer.await.unwrap(), Ok(renditions(7)));

    // A failure comes back as the worker said it.
    let answer = pool.send(Submit(job(8)));
    let (task_id, _) = w.job().await;
    let failure = lp_wire::TranscodeFailure { code: ErrorCode::InvalidInput, message: "bad segment".into() };
    w.send(&TranscoderMessage::Result { task_id, outcome: WorkOutcome::Error(failure.clone()) });
    assert_eq!(answer.await.unwrap(), Err(failure));
}

#[actix::test]
async fn a_wrong_secret_is_refused_with_the_reason() {
    let (pool, links) = setup();
    let mut w = connect(&pool, &links);
    w.register("not the secret", 1);
    w.refused("invalid secret").await;
    assert!(!w.registered.get(), "the byte budget stays");
    assert_eq!(transcoders(&pool).await, vec![]);
    assert_eq!(links.open(), 0);
}

/// Under `max_sessions = "auto"` a transcoder that registers with its measured sessions
/// (`livepeer bench`) counts for those; one that sends none, for its capacity.
#[actix::test]
async fn a_transcoders_measured_sessions_count_under_auto_instead_of_its_capacity() {
    let cap = lp_actors::orchestrator::SessionCap::auto(0);
    let pool = TranscoderPool::for_sessions(cap.clone()).start();
    let links = Links::default();
    let mut measured = connect(&pool, &links);
    measured.send(&TranscoderMessage::Register {
        secret: SECRET.into(),
        capacity: 1,
        capabilities: Capabilities::transcoding(),
        sessions: Some(3),
    });
    assert_eq!(measured.next().await, Some(Sent::Message(OrchestratorMessage::Registered)));
    assert_eq!(cap.get(), 3, "its figure, not its capacity");
    let mut plain = connect(&pool, &links);
    plain.registered(2).await;
    assert_eq!(cap.get(), 5, "3 measured + a capacity of 2");
    // It goes, and its sessions with it.
    measured.events.unbounded_send(LinkEvent::Closed).unwrap();
    measured.closed(Close::Plain).await;
    assert_eq!(transcoders(&pool).await.len(), 1);
    assert_eq!(cap.get(), 2);

    // A figure no bench measures is refused.
    let mut inflated = connect(&pool, &links);
    inflated.send(&TranscoderMessage::Register {
        secret: SECRET.into(),
        capacity: 1,
        capabilities: Capabilities::transcoding(),
        sessions: Some(lp_wire::limits::MAX_MEASURED_SESSIONS + 1),
    });
    inflated.refused("more than livepeer bench measures").await;
    assert_eq!(cap.get(), 2);
}

#[actix::test]
async fn zero_capacity_is_refused() {
    let (pool, links) = setup();
    let mut w = connect(&pool, &links);
    w.register(SECRET, 0);
    w.refused("zero capacity").await;
    assert_eq!(transcoders(&pool).await, vec![]);
}

#[actix::test]
async fn registering_twice_is_refused_and_the_worker_leaves_the_pool() {
    let (pool, links) = setup();
    let mut w = connect(&pool, &links);
    w.registered(1).await;
    w.register(SECRET, 1);
    w.refused("registered twice").await;
    assert_eq!(transcoders(&pool).await, vec![]);
}

#[actix::test]
async fn an_orchestrator_without_a_secret_refuses_every_worker() {
    let pool = TranscoderPool::new(8).start();
    let (events, incoming) = mpsc::unbounded();
    let (sent_tx, sent) = mpsc::unbounded();
    let transport = Memory { sent: sent_tx, registered: Rc::default() };
    WorkerLink::new("memory".into(), Box::new(transport), pool, None, Links::default()).start_with(incoming);
    let mut w = Worker { events, sent, registered: Rc::default() };
    w.register("", 1);
    w.refused("accepts no remote transcoders").await;
}

/// A link's mailbox takes its bound and refuses the next message.
#[actix::test]
async fn a_links_mailbox_holds_its_bound() {
    let (events, incoming) = mpsc::unbounded::<LinkEvent>();
    let (sent_tx, _sent) = mpsc::unbounded();
    let transport = Memory { sent: sent_tx, registered: Rc::default() };
    let pool = TranscoderPool::new(8).start();
    let link = WorkerLink::new("memory".into(), Box::new(transport), pool, None, Links::default()).start_with(incoming);
    // Its messages all act: let it start (its `started` sets the bound) by yielding to it.
    tokio::task::yield_now().await;
    let close = || lp_actors::orchestrator::CloseLink;
    lp_actors::testing::assert_mailbox_bound(&link, lp_actors::orchestrator::worker_link::MAILBOX, close);
    drop(events);
}

#[actix::test]
async fn text_and_unreadable_frames_are_refused() {
    let (pool, links) = setup();
    let mut w = connect(&pool, &links);
    w.events.unbounded_send(LinkEvent::Violation("text frames are not part of the protocol".into())).unwrap();
    w.refused("text frames").await;

    let mut w = connect(&pool, &links);
    w.events.unbounded_send(LinkEvent::Frame(Bytes::from_static(b"\xc1 not msgpack"))).unwrap();
    w.refused("unreadable frame").await;
}

#[actix::test]
async fn a_connection_that_does_not_register_in_time_is_refused() {
    tokio::time::pause();
    let (pool, links) = setup();
    let mut w = connect(&pool, &links);
    let start = Instant::now();
    w.refused("no registration").await;
    assert!(within(start.elapsed(), WORKER_REGISTER_WITHIN), "{:?}", start.elapsed());
}

#[actix::test]
async fn a_job_not_answered_in_time_fails_and_drops_the_link() {
    tokio::time::pause();
    let (pool, links) = setup();
    let mut w = connect(&pool, &links);
    w.registered(1).await;
    let answer = pool.send(Submit(job(3)));
    let (_task_id, _) = w.job().await;
    let sent = Instant::now();
    // The worker stays alive (it answers pings) but never answers the job.
    w.closed(Close::Plain).await;
    assert!(within(sent.elapsed(), WORKER_JOB_TIMEOUT), "dropped for the job, not for silence: {:?}", sent.elapsed());
    let failure = answer.await.unwrap().unwrap_err();
    assert_eq!(failure.code, ErrorCode::TranscoderFailed);
    assert!(failure.message.contains("did not answer"), "{}", failure.message);
    assert_eq!(transcoders(&pool).await, vec![]);
}

#[actix::test]
async fn a_silent_worker_is_dropped() {
    tokio::time::pause();
    let (pool, links) = setup();
    let mut w = connect(&pool, &links);
    w.registered(1).await;
    let registered = Instant::now();
    // Pings go unanswered.
    loop {
        match w.sent.next().await {
            Some(Sent::Ping) => continue,
            Some(Sent::Close(Close::Plain)) => break,
            other => panic!("expected pings, then the close: {other:?}"),
        }
    }
    assert!(registered.elapsed() > WORKER_SILENCE, "{:?}", registered.elapsed());
    assert!(registered.elapsed() <= WORKER_SILENCE + Duration::from_secs(5), "{:?}", registered.elapsed());
    assert_eq!(transcoders(&pool).await, vec![]);
}

#[actix::test]
async fn a_link_dropped_with_a_job_in_flight_has_it_re_queued_on_another_worker() {
    let (pool, links) = setup();
    let mut first = connect(&pool, &links);
    first.registered(1).await;
    let answer = pool.send(Submit(job(5)));
    let (_, seq) = first.job().await;
    assert_eq!(seq, 5);

    let mut second = connect(&pool, &links);
    second.registered(1).await;
    // The first worker's connection ends before it answers.
    first.events.unbounded_send(LinkEvent::Closed).unwrap();
    first.closed(Close::Plain).await;

    let (task_id, seq) = second.job().await;
    assert_eq!(seq, 5, "the same segment, re-queued");
    second.send(&TranscoderMessage::Result { task_id, outcome: WorkOutcome::Transcoded(renditions(5)) });
    assert_eq!(answer.await.unwrap(), Ok(renditions(5)));
    assert_eq!(transcoders(&pool).await.len(), 1);
}

#[actix::test]
async fn the_drain_closes_each_link_once_its_jobs_are_answered() {
    let (pool, links) = setup();
    let mut w = connect(&pool, &links);
    w.registered(1).await;
    let answer = pool.send(Submit(job(9)));
    let (task_id, _) = w.job().await;

    // One poll: no segment is in flight, so the drain asks each link to close, then waits.
    let mut drain = std::pin::pin!(links.drain(std::time::Instant::now() + Duration::from_secs(30)));
    assert!(futures::poll!(drain.as_mut()).is_pending());
    assert!(links.draining());
    // The link waits for its job: the answer still goes through, then it closes.
    w.send(&TranscoderMessage::Result { task_id, outcome: WorkOutcome::Transcoded(renditions(9)) });
    assert_eq!(answer.await.unwrap(), Ok(renditions(9)));
    w.closed(Close::ShuttingDown).await;
    let drained = drain.await;
    assert_eq!((drained.in_flight, drained.links, drained.complete), (0, 1, true));
    assert_eq!(links.open(), 0);
}

// ---------------------------------------------------------------------------------------------
// AI workers
// ---------------------------------------------------------------------------------------------

/// What an AI worker registers: each pipeline's bit, each model with its capacity.
fn ai_capabilities(models: &[(Pipeline, &str, u32)]) -> Capabilities {
    let mut caps = Capabilities::default();
    for (pipeline, model, capacity) in models {
        caps.set(pipeline.capability());
        caps.constraints.entry(pipeline.capability()).or_default().insert(
            model.to_string(),
            lp_wire::ModelConstraint { warm: true, capacity: *capacity, capacity_in_use: 0 },
        );
    }
    caps
}

fn upscale(model: &str) -> AiJob {
    let request = AiRequest::Upscale(UpscaleRequest::new(model, "a cat", b"not really a png".to_vec()));
    AiJob { request: Arc::new(request), deadline: std::time::Instant::now() + Duration::from_secs(600), tokens: None }
}

fn image_answer() -> AiResponse {
    AiResponse::Image(ImageResponse {
        images: vec![Media { url: "data:image/png;base64,AAAA".into(), seed: 1, nsfw: false }],
    })
}

fn setup_ai() -> (Addr<TranscoderPool>, Addr<AiPool>, Links) {
    (TranscoderPool::new(8).start(), AiPool::new(0).start(), Links::default())
}

async fn ai_workers(pool: &Addr<AiPool>) -> Vec<(String, Option<String>, u32)> {
    pool.send(GetWorkers).await.unwrap().into_iter().map(|w| (w.name, w.model, w.capacity)).collect()
}

#[actix::test]
async fn an_ai_worker_registers_once_per_model_and_answers_inference_jobs() {
    let (pool, ai, links) = setup_ai();
    let mut w = connect_with(&pool, Some(&ai), &links);
    w.registered_ai(&[(Pipeline::Upscale, "x2", 2), (Pipeline::Llm, "tiny", 1)]).await;
    assert_eq!(
        ai_workers(&ai).await,
        vec![
            ("remote memory".to_string(), Some("tiny".to_string()), 1),
            ("remote memory".to_string(), Some("x2".to_string()), 2),
        ]
    );
    assert_eq!(transcoders(&pool).await, vec![], "not a transcoder");

    let job = upscale("x2");
    let answer = ai.send(Submit(job.clone()));
    let (task_id, request) = w.ai_job().await;
    assert_eq!(request, *job.request, "the typed request, as submitted");
    w.send(&TranscoderMessage::Result { task_id, outcome: WorkOutcome::Inferred(image_answer()) });
    assert_eq!(answer.await.unwrap(), Ok(image_answer()));

    // A failure comes back as the worker said it; a model it does not serve is not sent to it.
    let answer = ai.send(Submit(upscale("x2")));
    let (task_id, _) = w.ai_job().await;
    let failure = lp_wire::TranscodeFailure { code: ErrorCode::InvalidInput, message: "not an image".into() };
    w.send(&TranscoderMessage::Result { task_id, outcome: WorkOutcome::Error(failure.clone()) });
    assert_eq!(answer.await.unwrap(), Err(failure));
    let refused = ai.send(Submit(upscale("x4"))).await.unwrap().unwrap_err();
    assert_eq!(refused.code, ErrorCode::NoTranscoders, "{refused:?}");

    // Gone: every registration leaves the pool.
    w.events.unbounded_send(LinkEvent::Closed).unwrap();
    w.closed(Close::Plain).await;
    assert_eq!(ai_workers(&ai).await, vec![]);
}

#[actix::test]
async fn partial_frames_reach_the_jobs_tokens_before_the_answer() {
    let (pool, ai, links) = setup_ai();
    let mut w = connect_with(&pool, Some(&ai), &links);
    w.registered_ai(&[(Pipeline::Llm, "tiny", 1)]).await;
    let (job, mut text) = streaming_llm();
    let answer = ai.send(Submit(job));
    let (task_id, request) = w.ai_job().await;
    assert!(matches!(request, AiRequest::Llm(LlmRequest { stream: true, .. })));
    w.send(&TranscoderMessage::Partial { task_id, text: "hel".into() });
    w.send(&TranscoderMessage::Partial { task_id, text: "lo".into() });
    // Text of another task is not this job's.
    w.send(&TranscoderMessage::Partial { task_id: task_id + 1, text: "stray".into() });
    assert_eq!(text.recv().await.as_deref(), Some("hel"));
    assert_eq!(text.recv().await.as_deref(), Some("lo"));
    let whole = AiResponse::Llm(LlmResponse {
        id: "x".into(),
        model: "tiny".into(),
        created: 1,
        usage: LlmTokenUsage { prompt_tokens: 1, completion_tokens: 2, total_tokens: 3 },
        choices: vec![],
    });
    w.send(&TranscoderMessage::Result { task_id, outcome: WorkOutcome::Inferred(whole.clone()) });
    assert_eq!(answer.await.unwrap(), Ok(whole));
}

/// Once nobody listens to a streaming job's text (its client left), the link tells the worker
/// to stop it, once; the job still ends with the worker's `Result`.
#[actix::test]
async fn a_streaming_job_nobody_listens_to_is_cancelled_at_the_worker_once() {
    let (pool, ai, links) = setup_ai();
    let mut w = connect_with(&pool, Some(&ai), &links);
    w.registered_ai(&[(Pipeline::Llm, "tiny", 1)]).await;
    let (job, mut text) = streaming_llm();
    let answer = ai.send(Submit(job));
    let (task_id, _) = w.ai_job().await;
    w.send(&TranscoderMessage::Partial { task_id, text: "hel".into() });
    assert_eq!(text.recv().await.as_deref(), Some("hel"));
    drop(text);
    w.send(&TranscoderMessage::Partial { task_id, text: "lo".into() });
    assert_eq!(w.next().await, Some(Sent::Message(OrchestratorMessage::Cancel { task_id })));
    // More text before the answer asks nothing more: the answer is the next thing sent.
    w.send(&TranscoderMessage::Partial { task_id, text: "!".into() });
    let failure = lp_wire::TranscodeFailure { code: ErrorCode::TranscoderFailed, message: "stopped".into() };
    w.send(&TranscoderMessage::Result { task_id, outcome: WorkOutcome::Error(failure.clone()) });
    assert_eq!(answer.await.unwrap(), Err(failure));
    let (next, _listening) = streaming_llm();
    let _next = ai.send(Submit(next));
    assert!(matches!(w.next().await, Some(Sent::Message(OrchestratorMessage::Job { .. }))), "no second Cancel");
}

/// A streaming llm job for model tiny, and the receiver of its text.
fn streaming_llm() -> (AiJob, tokio::sync::mpsc::UnboundedReceiver<String>) {
    let mut llm = LlmRequest::new(vec![LlmMessage { role: "user".into(), content: "hi".into() }]);
    llm.model = "tiny".into();
    llm.stream = true;
    let (tokens, text) = tokio::sync::mpsc::unbounded_channel();
    let deadline = std::time::Instant::now() + Duration::from_secs(600);
    (AiJob { request: Arc::new(AiRequest::Llm(llm)), deadline, tokens: Some(tokens) }, text)
}

#[actix::test]
async fn an_ai_worker_dropped_mid_job_has_it_re_queued_on_another_worker() {
    let (pool, ai, links) = setup_ai();
    let mut first = connect_with(&pool, Some(&ai), &links);
    first.registered_ai(&[(Pipeline::Upscale, "x2", 1)]).await;
    let job = upscale("x2");
    let answer = ai.send(Submit(job.clone()));
    let (_, request) = first.ai_job().await;
    assert_eq!(request, *job.request);

    let mut second = connect_with(&pool, Some(&ai), &links);
    second.registered_ai(&[(Pipeline::Upscale, "x2", 1)]).await;
    // The first worker's connection ends before it answers (killed mid-job).
    first.events.unbounded_send(LinkEvent::Closed).unwrap();
    first.closed(Close::Plain).await;

    let (task_id, request) = second.ai_job().await;
    assert_eq!(request, *job.request, "the same request, re-queued although the AI pool queues nothing");
    second.send(&TranscoderMessage::Result { task_id, outcome: WorkOutcome::Inferred(image_answer()) });
    assert_eq!(answer.await.unwrap(), Ok(image_answer()));
    assert_eq!(ai_workers(&ai).await.len(), 1);
}

#[actix::test]
async fn a_re_queued_ai_job_no_free_worker_can_take_is_answered_at_once() {
    let (pool, ai, links) = setup_ai();
    let mut first = connect_with(&pool, Some(&ai), &links);
    first.registered_ai(&[(Pipeline::Upscale, "x2", 1)]).await;
    let answer = ai.send(Submit(upscale("x2")));
    first.ai_job().await;
    // The other worker for x2 is busy.
    let mut second = connect_with(&pool, Some(&ai), &links);
    second.registered_ai(&[(Pipeline::Upscale, "x2", 1)]).await;
    let mut busy = std::pin::pin!(ai.send(Submit(upscale("x2"))));
    assert!(futures::poll!(busy.as_mut()).is_pending());
    second.ai_job().await;

    first.events.unbounded_send(LinkEvent::Closed).unwrap();
    let failure = answer.await.unwrap().unwrap_err();
    assert_eq!(failure.code, ErrorCode::OrchestratorBusy, "{failure:?}");
    assert!(futures::poll!(busy.as_mut()).is_pending(), "the other job still runs");
}

#[actix::test]
async fn a_stream_cut_after_some_text_fails_instead_of_starting_again_elsewhere() {
    let (pool, ai, links) = setup_ai();
    let mut first = connect_with(&pool, Some(&ai), &links);
    first.registered_ai(&[(Pipeline::Llm, "tiny", 1)]).await;
    let mut second = connect_with(&pool, Some(&ai), &links);
    second.registered_ai(&[(Pipeline::Llm, "tiny", 1)]).await;
    let (job, mut text) = streaming_llm();
    let answer = ai.send(Submit(job));
    // Whichever worker got it streams some text, then goes away.
    let (worker, other) = tokio::select! {
        got = first.ai_job() => ((first, got.0), second),
        got = second.ai_job() => ((second, got.0), first),
    };
    let (w, task_id) = worker;
    w.send(&TranscoderMessage::Partial { task_id, text: "hel".into() });
    assert_eq!(text.recv().await.as_deref(), Some("hel"));
    w.events.unbounded_send(LinkEvent::Closed).unwrap();
    let failure = answer.await.unwrap().unwrap_err();
    assert_eq!(failure.code, ErrorCode::TranscoderFailed, "{failure:?}");
    assert!(failure.message.contains("streamed"), "{failure:?}");
    drop(other);
}

#[actix::test]
async fn an_orchestrator_without_an_ai_pool_refuses_ai_workers() {
    let (pool, links) = setup();
    let mut w = connect(&pool, &links);
    w.send(&TranscoderMessage::Register {
        secret: SECRET.into(),
        capacity: 1,
        capabilities: ai_capabilities(&[(Pipeline::Upscale, "x2", 1)]),
        sessions: None,
    });
    w.refused("accepts no remote AI workers").await;
    // And a model with zero capacity is refused by one that has it.
    let (pool, ai, links) = setup_ai();
    let mut w = connect_with(&pool, Some(&ai), &links);
    w.send(&TranscoderMessage::Register {
        secret: SECRET.into(),
        capacity: 1,
        capabilities: ai_capabilities(&[(Pipeline::Upscale, "x2", 0)]),
        sessions: None,
    });
    w.refused("zero capacity").await;
}
