//! Error types of the crate.

/// Why a [`probe`](crate::probe) or [`transcode`](crate::transcode()) failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TranscodeError {
    /// The input is not a decodable segment (empty, garbage, truncated, no video stream, no
    /// frame decodes). Retrying elsewhere will not help (HTTP 422).
    #[error("invalid input segment: {0}")]
    InvalidInput(String),
    /// A rendition profile that the encoder cannot take (see
    /// [`validate_profiles`](crate::profile::validate_profiles)). Not retryable.
    #[error("{0}")]
    InvalidProfile(String),
    /// The caller's deadline passed before the transcode was done; it stopped after decoding
    /// `frames` frames. Retryable.
    #[error("gave up after {frames} frames: the deadline passed")]
    DeadlinePassed { frames: u64 },
    /// Anything else: an encoder that fails to open, an internal FFmpeg error, a worker thread
    /// that died. Retryable.
    #[error("transcoding failed: {0}")]
    Ffmpeg(String),
}

impl TranscodeError {
    /// True when the same segment may succeed on another attempt (or another node).
    pub fn is_retryable(&self) -> bool {
        matches!(self, TranscodeError::Ffmpeg(_) | TranscodeError::DeadlinePassed { .. })
    }
}

/// Why a list of profiles could not be resolved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProfileError {
    /// A preset name that is not one of [`preset_names`](crate::preset_names).
    #[error("unknown profile {name:?}: known presets are {known}", name = .0, known = crate::profile::preset_names().join(", "))]
    UnknownPreset(String),
    /// The JSON profile list does not parse.
    #[error("invalid profile JSON: {0}")]
    Json(String),
    /// A profile (or the list) parses but is not usable.
    #[error("invalid profile: {0}")]
    Invalid(String),
    /// The JSON profile file could not be read.
    #[error("cannot read profile file: {0}")]
    Io(String),
}

/// Why the stream cannot be segmented; the stream should be dropped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SegmenterError {
    /// No video keyframe for `ms` of media (keyframes too far apart, or no video at all).
    #[error("no video keyframe in {ms} ms of media (at most {limit} ms; send a keyframe every few seconds)")]
    NoKeyframe { ms: u64, limit: u64 },
    /// The segment holds more than the limit without reaching a keyframe to cut at.
    #[error("a segment grew past {limit} bytes without a keyframe to cut at")]
    TooLarge { limit: u64 },
    /// The video's clock went back by more than a frame's reordering could explain.
    #[error("the video timestamps went back from {from} ms to {to} ms")]
    Timestamps { from: i64, to: i64 },
    /// A codec configuration that cannot be used.
    #[error("{0}")]
    BadConfig(String),
}
