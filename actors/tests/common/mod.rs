//! What the actor test suites share: a real segment made with the ffmpeg CLI, a job for it, the
//! real FFmpeg transcode, and orchestrator settings.

#![allow(dead_code)]

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use bytes::Bytes;
use futures::future::LocalBoxFuture;
use lp_actors::gateway::{InProcess, IncomingSegment, OrchestratorTransport, TransportError};
use lp_actors::orchestrator::{
    LocalWorker, Offer, RegisterWorker, TranscodeFn, TranscodeJob, TranscoderPool, ffmpeg_transcode,
};
use lp_pipelines::{InputFormat, TranscodeOptions};
use lp_wire::{AuthToken, OrchestratorInfo, OrchestratorRequest, Payment, SegData, TranscodeResult};

/// One second of 320x180 30 fps H.264 in MPEG-TS.
pub fn segment() -> Bytes {
    Bytes::from(lp_testkit::media::segment())
}

/// `data` to P144p30fps16x9, due in a minute.
pub fn job(data: Bytes) -> TranscodeJob {
    TranscodeJob {
        seq: 1,
        format: InputFormat::MpegTs,
        profiles: Arc::new(vec![lp_pipelines::preset("P144p30fps16x9").unwrap()]),
        data,
        deadline: std::time::Instant::now() + Duration::from_secs(60),
    }
}

/// The real FFmpeg transcode, fastest preset.
pub fn real() -> TranscodeFn {
    ffmpeg_transcode(TranscodeOptions { x264_preset: "ultrafast".into(), ..Default::default() })
}

/// `data` pushed to the gateway as segment `seq` of a 320x180 stream.
pub fn incoming(seq: i64, data: Bytes) -> IncomingSegment {
    IncomingSegment {
        seq,
        format: InputFormat::MpegTs,
        source_ts: Some(data.clone()),
        data,
        duration_ms: 1000,
        width: 320,
        height: 180,
        start: std::time::SystemTime::now(),
    }
}

// Not every suite uses both.
#[allow(unused_imports)]
pub use lp_actors::testing::{seg_data, stream_settings};

/// Register one worker, "w", running `func` with `capacity` slots, on `pool`.
pub async fn add_worker(pool: &Addr<TranscoderPool>, func: TranscodeFn, capacity: u32) {
    let worker = LocalWorker::new("w", func).start();
    let capabilities = lp_wire::Capabilities::transcoding();
    pool.send(RegisterWorker {
        remote_sessions: None,
        name: "w".into(),
        capacity,
        offer: Offer { capabilities, model: None },
        recipient: worker.recipient(),
    })
    .await
    .unwrap();
}

/// A transcoder pool queueing up to `max_queue` jobs, with one worker running `func`.
pub async fn pool_with(func: TranscodeFn, capacity: u32, max_queue: usize) -> Addr<TranscoderPool> {
    let pool = TranscoderPool::new(max_queue).start();
    add_worker(&pool, func, capacity).await;
    pool
}

/// Wait (up to 6 s) until `done`, naming `what` when it never happens.
pub async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..600 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for {what}");
}

/// Wait (up to 30 s, a chain's pace) until `f` answers `Some`, and answer it.
pub async fn eventually<T, F: std::future::Future<Output = Option<T>>>(what: &str, mut f: impl FnMut() -> F) -> T {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(std::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The metrics this test's thread records (the actors of an `actix::test` run on it).
pub struct Metrics {
    handle: metrics_exporter_prometheus::PrometheusHandle,
    _guard: metrics::LocalRecorderGuard<'static>,
}

impl Metrics {
    pub fn local() -> Metrics {
        let recorder = Box::leak(Box::new(metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder()));
        Metrics { handle: recorder.handle(), _guard: metrics::set_default_local_recorder(recorder) }
    }

    /// The value of the series `name` (with its labels, if it has any: `name{label="v"}`), if
    /// recorded.
    pub fn value(&self, name: &str) -> Option<f64> {
        let text = self.handle.render();
        text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
    }
}

/// The in-process transport, recording the orchestrators asked for their terms, the segments
/// and AI requests sent to each, and the sessions ended; with `forge`, every segment's answer
/// also carries, first, a rendition of that name no one asked for (what a hostile orchestrator
/// could send), whose bytes are the source's.
#[derive(Clone, Default)]
pub struct Loopback {
    pub inner: InProcess,
    /// The orchestrators asked for their terms, in order.
    pub asked: Rc<RefCell<Vec<String>>>,
    pub submitted: Rc<RefCell<Vec<String>>>,
    /// The session id (from its auth token) of each segment submitted, and of each session the
    /// gateway ended.
    pub sessions: Rc<RefCell<Vec<String>>>,
    pub ended: Rc<RefCell<Vec<String>>>,
    /// The transcoder URIs AI requests were sent to, in order.
    pub inferred: Rc<RefCell<Vec<String>>>,
    pub forge: Option<String>,
    /// Every segment's answer names this transcoder in its fresh terms (an orchestrator whose
    /// service URI changed).
    pub moved_to: Option<String>,
    /// How many of the next segments panic when submitted (inside the caller's future).
    pub panics: Rc<std::cell::Cell<u32>>,
    /// How many of the next segments arrive with a byte flipped (as a network that corrupts
    /// them would deliver them): the orchestrator finds their hash wrong.
    pub corrupt: Rc<std::cell::Cell<u32>>,
    /// Orchestrators whose URI starts with this never answer for their terms (a host that
    /// swallows packets).
    pub silent: Option<&'static str>,
}

impl OrchestratorTransport for Loopback {
    fn get_orchestrator(
        &self,
        uri: &str,
        req: OrchestratorRequest,
    ) -> LocalBoxFuture<'static, Result<OrchestratorInfo, TransportError>> {
        if self.silent.is_some_and(|prefix| uri.starts_with(prefix)) {
            return Box::pin(futures::future::pending());
        }
        self.asked.borrow_mut().push(uri.to_string());
        self.inner.get_orchestrator(uri, req)
    }

    fn submit_segment(
        &self,
        uri: &str,
        seg: SegData,
        payment: Payment,
        data: Bytes,
        timeout: Duration,
    ) -> LocalBoxFuture<'static, Result<TranscodeResult, TransportError>> {
        if self.panics.get() > 0 {
            self.panics.set(self.panics.get() - 1);
            panic!("injected panic in the stream session");
        }
        self.submitted.borrow_mut().push(uri.to_string());
        self.sessions.borrow_mut().extend(seg.auth_token.as_ref().map(|t| t.session_id.clone()));
        let source = data.clone();
        let data = match self.corrupt.get() {
            0 => data,
            n => {
                self.corrupt.set(n - 1);
                let mut flipped = data.to_vec();
                flipped[0] ^= 0xff;
                Bytes::from(flipped)
            }
        };
        let answer = self.inner.submit_segment(uri, seg, payment, data, timeout);
        let (forge, moved_to) = (self.forge.clone(), self.moved_to.clone());
        Box::pin(async move {
            let mut result = answer.await?;
            if let (Some(name), lp_wire::TranscodeOutcome::Data(data)) = (forge, &mut result.result) {
                let mut forged = data.segments[0].clone();
                (forged.name, forged.width, forged.height) = (name, u32::MAX, u32::MAX);
                forged.data = serde_bytes::ByteBuf::from(source.to_vec());
                data.segments.insert(0, forged);
            }
            if let (Some(uri), Some(info)) = (moved_to, &mut result.info) {
                info.transcoder = uri;
            }
            Ok(result)
        })
    }

    fn end_session(&self, uri: &str, token: AuthToken) -> LocalBoxFuture<'static, Result<(), TransportError>> {
        self.ended.borrow_mut().push(token.session_id.clone());
        self.inner.end_session(uri, token)
    }

    fn infer(
        &self,
        uri: &str,
        pipeline: lp_wire::ai::Pipeline,
        content_type: &str,
        body: Bytes,
        payment: Payment,
        timeout: Duration,
    ) -> LocalBoxFuture<'static, Result<lp_actors::ai::AiAnswer, TransportError>> {
        self.inferred.borrow_mut().push(uri.to_string());
        self.inner.infer(uri, pipeline, content_type, body, payment, timeout)
    }
}
