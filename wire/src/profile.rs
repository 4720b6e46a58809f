//! The video profile and input container as they travel in `SegData.profiles` (go-livepeer's
//! `fullProfiles`) and in transcode jobs.
//!
//! These are the wire's own types: the compute layer converts them to its profile type and
//! validates them there, so the encoding below changes only when this file does.

use serde::{Deserialize, Serialize};

/// H.264 profile of a rendition.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum H264Profile {
    /// Whatever the encoder picks.
    #[default]
    EncoderDefault,
    Baseline,
    Main,
    High,
    /// High profile without B-frames.
    ConstrainedHigh,
}

/// One requested rendition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VideoProfile {
    /// Rendition name, unique within a request.
    pub name: String,
    /// Bounding box: the output fits inside `width` × `height`, keeping the aspect ratio.
    pub width: u32,
    pub height: u32,
    /// Bits per second.
    pub bitrate: u32,
    /// Output frame rate numerator; 0 keeps the source's.
    pub fps: u32,
    /// Frame rate denominator (1 when unset).
    pub fps_den: u32,
    /// GOP length in milliseconds; 0 is the encoder's default.
    pub gop_ms: u32,
    pub profile: H264Profile,
}

/// Container of a segment body (go-livepeer infers it from the manifest; we say it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Container {
    /// MPEG transport stream (`.ts`).
    MpegTs,
    /// ISO BMFF / MP4 (`.mp4`).
    Mp4,
}
