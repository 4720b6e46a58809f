//! What the actor test suites share: a real segment made with the ffmpeg CLI, a job for it, the
//! real FFmpeg transcode, and orchestrator settings.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use bytes::Bytes;
use lp_actors::gateway::IncomingSegment;
use lp_actors::orchestrator::{
    LocalWorker, Offer, RegisterWorker, TranscodeFn, TranscodeJob, TranscoderPool, ffmpeg_transcode,
};
use lp_pipelines::{InputFormat, TranscodeOptions};

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

    /// The value of the unlabelled series `name`, if recorded.
    pub fn value(&self, name: &str) -> Option<f64> {
        let text = self.handle.render();
        text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
    }
}
