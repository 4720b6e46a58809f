//! A transcode job as the orchestrator's pool hands it to a transcoder, local or remote.

use std::sync::Arc;
use std::time::Instant;

use actix::prelude::*;
use bytes::Bytes;
use lp_pipelines::{H264Profile, InputFormat, Profile, TranscodeError, TranscodeOptions};
use serde_bytes::ByteBuf;

use lp_wire::{Capabilities, ErrorCode, TranscodeData, TranscodeFailure, TranscodedSegmentData};

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

impl TranscodeJob {
    /// Whether nobody waits for this job any more.
    pub fn abandoned(&self) -> bool {
        Instant::now() >= self.deadline
    }

    /// The time left before the deadline.
    pub fn time_left(&self) -> std::time::Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

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

/// Why a transcoder did not produce renditions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobError {
    /// The transcoder tried and failed (bad input, encoder error, crash).
    Failed(TranscodeFailure),
    /// The transcoder went away before answering; the job can go to another one.
    Disconnected,
}

/// Run a job on one transcoder.
#[derive(Message)]
#[rtype(result = "Result<TranscodeData, JobError>")]
pub struct RunJob(pub TranscodeJob);

/// The compute a worker runs; the real one is [`ffmpeg_transcode`]. Tests substitute functions
/// that fail in ways real FFmpeg cannot be made to (a panic).
pub type TranscodeFn = Arc<dyn Fn(&TranscodeJob) -> Result<TranscodeData, TranscodeFailure> + Send + Sync>;

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
