//! The orchestrator side of the worker link protocol (`WorkerLink`) over an in-memory
//! transport: registration rules, jobs and their answers, the job timeout, silence, a link
//! dropped with a job in flight, and the shutdown drain. Timeouts run in tokio's paused time.

use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use bytes::Bytes;
use futures::StreamExt;
use futures::channel::mpsc;
use lp_actors::orchestrator::{
    Close, GetWorkers, LinkEvent, LinkTransport, Links, Submit, TranscodeJob, TranscoderPool, WorkerLink,
};
use lp_pipelines::InputFormat;
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
    let (events, incoming) = mpsc::unbounded();
    let (sent_tx, sent) = mpsc::unbounded();
    let registered = Rc::new(Cell::new(false));
    let transport = Memory { sent: sent_tx, registered: registered.clone() };
    WorkerLink::new(
        "memory".into(),
        Box::new(transport),
        pool.clone(),
        Some(Arc::new(SECRET.to_string())),
        links.clone(),
    )
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
