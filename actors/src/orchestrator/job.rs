//! Jobs as the orchestrator's [`WorkerPool`](super::WorkerPool) hands them to workers, local or
//! remote: the [`Job`] trait every kind of work implements, and the transcode job.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use bytes::Bytes;
use lp_pipelines::{H264Profile, InputFormat, Profile, TranscodeError, TranscodeOptions};
use serde_bytes::ByteBuf;

use lp_wire::{Capabilities, ErrorCode, TranscodeData, TranscodeFailure, TranscodedSegmentData};

/// A kind of work the pool schedules: what a worker must offer to run it, when nobody waits for
/// it any more, and what it answers.
pub trait Job: Clone + Send + Unpin + 'static {
    /// What a worker answers.
    type Output: Send + 'static;
    /// The pool's name for these jobs in metrics and logs (`transcode`, `ai`).
    const KIND: &'static str;
    /// What a worker must offer to run it.
    fn needs(&self) -> Offer;
    /// When the caller stops waiting: a job still queued then is dropped.
    fn deadline(&self) -> Instant;
    /// The job in a log line (`segment 5`, `upscale model x`).
    fn describe(&self) -> String;
    /// Record a job done in `took` (metrics).
    fn done(&self, output: &Self::Output, took: Duration);

    /// Whether nobody waits for this job any more.
    fn abandoned(&self) -> bool {
        Instant::now() >= self.deadline()
    }

    /// The time left before the deadline.
    fn time_left(&self) -> Duration {
        self.deadline().saturating_duration_since(Instant::now())
    }
}

/// What a worker offers, and what a job needs: capability bits and, for AI work, one model. A
/// worker offers a job's needs when it has every bit and, if the job names a model, that model.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Offer {
    pub capabilities: Capabilities,
    pub model: Option<String>,
}

impl Offer {
    pub fn covers(&self, needs: &Offer) -> bool {
        self.capabilities.offers(&needs.capabilities) && (needs.model.is_none() || needs.model == self.model)
    }
}

/// One segment to transcode. Cloning is cheap (the bytes are shared), so a job can be re-queued.
#[derive(Debug, Clone)]
pub struct TranscodeJob {
    pub seq: i64,
    pub format: InputFormat,
    pub profiles: Arc<Vec<Profile>>,
    pub data: Bytes,
    /// When the gateway stops waiting for it: a job still queued then is dropped, and a
    /// transcode still running stops.
    pub deadline: Instant,
}

impl Job for TranscodeJob {
    type Output = TranscodeData;
    const KIND: &'static str = "transcode";

    fn needs(&self) -> Offer {
        Offer { capabilities: self.required(), model: None }
    }

    fn deadline(&self) -> Instant {
        self.deadline
    }

    fn describe(&self) -> String {
        format!("segment {}", self.seq)
    }

    fn done(&self, data: &TranscodeData, took: Duration) {
        let pixels = data.segments.iter().map(|s| s.pixels.max(0) as u64).sum();
        crate::metrics::transcode_time(took.as_secs_f64(), pixels);
    }
}

impl TranscodeJob {
    /// What a transcoder must offer to run this job (go-livepeer's `JobCapabilities`): H.264,
    /// the container, each forced H.264 profile, GOPs and fractional frame rates when asked.
    pub fn required(&self) -> Capabilities {
        use lp_wire::capability as c;
        let mut caps = Capabilities::default();
        caps.set(c::H264);
        caps.set(match self.format {
            InputFormat::MpegTs => c::MPEGTS,
            InputFormat::Mp4 => c::MP4,
        });
        for p in self.profiles.iter() {
            match p.profile {
                H264Profile::EncoderDefault => {}
                H264Profile::Baseline => caps.set(c::PROFILE_H264_BASELINE),
                H264Profile::Main => caps.set(c::PROFILE_H264_MAIN),
                H264Profile::High => caps.set(c::PROFILE_H264_HIGH),
                H264Profile::ConstrainedHigh => caps.set(c::PROFILE_H264_CONSTRAINED_HIGH),
            }
            if p.gop_ms > 0 {
                caps.set(c::GOP);
            }
            if p.fps_den > 1 {
                caps.set(c::FRACTIONAL_FRAMERATES);
            }
        }
        caps
    }
}

/// Why a worker did not produce an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobError {
    /// The worker tried and failed (bad input, encoder error, crash).
    Failed(TranscodeFailure),
    /// The worker went away before answering; the job can go to another one.
    Disconnected,
}

/// Run a job on one worker.
pub struct RunJob<J: Job>(pub J);

impl<J: Job> Message for RunJob<J> {
    type Result = Result<J::Output, JobError>;
}

/// The compute a [`LocalWorker`](super::LocalWorker) runs on its thread.
pub type WorkFn<J> = Arc<dyn Fn(&J) -> Result<<J as Job>::Output, TranscodeFailure> + Send + Sync>;

/// The transcoding compute; the real one is [`ffmpeg_transcode`]. Tests substitute functions
/// that fail in ways real FFmpeg cannot be made to (a panic).
pub type TranscodeFn = WorkFn<TranscodeJob>;

/// The real transcode: FFmpeg through lp-pipelines.
pub fn ffmpeg_transcode(opts: TranscodeOptions) -> TranscodeFn {
    Arc::new(move |job: &TranscodeJob| {
        let out = lp_pipelines::transcode_until(&job.data, job.format, &job.profiles, &opts, Some(job.deadline))
            .map_err(|e| {
                let code = match e {
                    TranscodeError::InvalidInput(_) | TranscodeError::InvalidProfile(_) => ErrorCode::InvalidInput,
                    _ => ErrorCode::TranscoderFailed,
                };
                TranscodeFailure { code, message: e.to_string() }
            })?;
        Ok(TranscodeData {
            segments: out
                .renditions
                .into_iter()
                .map(|r| TranscodedSegmentData {
                    url: String::new(),
                    pixels: r.pixels as i64,
                    data: ByteBuf::from(r.data),
                    name: r.name,
                    width: r.width,
                    height: r.height,
                })
                .collect(),
            sig: ByteBuf::new(),
        })
    })
}
