//! What the actor test suites share: a real segment made with the ffmpeg CLI, a job for it, the
//! real FFmpeg transcode, and orchestrator settings.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use bytes::Bytes;
use lp_actors::gateway::{IncomingSegment, StreamSettings};
use lp_actors::orchestrator::{
    LocalWorker, Offer, OrchestratorSettings, RegisterWorker, TranscodeFn, TranscodeJob, TranscoderPool,
    ffmpeg_transcode,
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

/// An orchestrator that says `uri` is where its segments go.
pub fn settings(uri: &str, max_sessions: u32) -> OrchestratorSettings {
    OrchestratorSettings {
        capabilities: lp_wire::Capabilities::transcoding(),
        service_uri: uri.into(),
        max_sessions,
        session_idle_timeout: Duration::from_secs(70),
        price_per_unit: 0,
        pixels_per_unit: 1,
        payments: None,
        capability_prices: Vec::new(),
        auth_token_validity: lp_actors::orchestrator::auth::AUTH_TOKEN_VALIDITY,
    }
}

/// A stream's settings: 3 attempts, 4 segments in flight, offchain.
pub fn stream_settings() -> StreamSettings {
    StreamSettings {
        max_attempts: 3,
        segment_queue: 4,
        idle_timeout: Duration::from_secs(60),
        hls_window: 6,
        hls_retention: Duration::from_secs(600),
        recorder: None,
        payments: None,
    }
}

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
