//! Transcoding compute for livepeer-rs: FFmpeg (through rsmpeg) turned into plain, synchronous
//! functions. No actors, no HTTP, no async; callers run [`transcode()`] on a blocking thread.
//!
//! * [`profile`]: output profiles ([`Profile`]), go-livepeer's presets ([`preset`]) and its custom
//!   JSON profile format ([`profiles_from_json`]).
//! * [`probe`]: checks that a segment (MPEG-TS or MP4 bytes) is decodable and describes it.
//! * [`transcode()`]: decodes a segment once and encodes every rendition with libx264 into
//!   MPEG-TS, in memory.
//! * [`segmenter`]: cuts a live H.264/AAC stream (RTMP's packets) into MPEG-TS segments.
//! * [`bench`]: livepeer_bench's ladder and the FFmpeg CLI baseline, for the benchmarks.
//!
//! # How a transcode works
//!
//! The calling thread demuxes the input from memory (custom AVIOContext, no temp files) and
//! decodes the video once, with FFmpeg frame threading, or on an NVIDIA GPU's NVDEC
//! ([`VideoDecoder::Nvdec`]; frames are copied back into system memory). An MPEG-TS segment's
//! frame rate, picture size and AAC parameters are read from its packets, so no frame is
//! decoded before the work starts (FFmpeg's stream-info pass decodes one to seven on one thread). Each decoded frame is
//! shared by reference (no pixel copy) through a bounded channel with one worker thread per
//! rendition. A worker converts the frame rate when the profile asks for one that differs from
//! the source (frames are dropped or repeated by timestamp, like FFmpeg's `fps` filter, so the
//! output has duration × fps frames; a timestamp jump is filled with 10 s of repeats at most),
//! scales with swscale to [`Profile::output_size`], encodes with libx264 and muxes MPEG-TS into
//! memory together with a copy of the first audio stream. The deadline is checked before each
//! frame is encoded.
//! Scaling cascades: a rendition is scaled (bicubic) from the next larger rendition at the same
//! frame rate when that one is itself smaller than the source; the others, the largest among
//! them, from the source (bilinear). That is a third of the work of scaling each from the
//! source, and as sharp or sharper (SSIM against the source).
//!
//! Encoder settings follow lpms: `b = minrate = maxrate = bufsize = bitrate` (CBR-like VBV),
//! the preset from [`TranscodeOptions`] (default `veryfast`), no B-frames for Baseline and
//! Constrained High (High profile with `bf=0`), and a fixed GOP when `gop_ms` is set
//! (`keyint = min-keyint`, `scenecut=0`, `forced-idr`). The first frame is always an IDR. The
//! encoder uses the input's time base, so renditions keep the source's timestamps and line up
//! with it for HLS. A rendition at the source frame rate has exactly the source's frame count.
//!
//! Bad input never panics: it is reported as [`TranscodeError::InvalidInput`] (not retryable);
//! anything else is [`TranscodeError::Ffmpeg`] (retryable).
//!
//! # Speed
//!
//! `cargo bench -p lp-pipelines --bench ladder` transcodes a 2 s 1080p30 segment to
//! livepeer_bench's 720p/480p/360p/240p ladder and compares with one FFmpeg CLI process doing
//! the same (`split`, each rung scaled bilinear from the source), Debian's 5.1 and 9.0.2. On the
//! 2-core development VM at veryfast ours took 0.81 to 0.87 of FFmpeg 9.0.2's wall time in two
//! runs (868 ms vs 1068 ms, 911 ms vs 1042 ms): both cores busy (1.90–1.95 vs 1.83–1.86) and
//! less CPU (1.69–1.73 vs 1.93–1.95 s: cascade scaling, no stream-info pass, no process
//! start-up), with every rung's SSIM at or above the CLI's.
//!
//! FFmpeg's own log is routed into `tracing` (target `ffmpeg`; errors and warnings at DEBUG)
//! the first time this crate opens an input, instead of being printed to stderr.

pub mod ai;
pub mod bench;
pub mod error;
mod ffi;
mod fps;
pub mod profile;
pub mod segmenter;
pub mod transcode;
mod ts;

pub use error::{ProfileError, SegmenterError, TranscodeError};
pub use profile::{
    H264Profile, MAX_PROFILES, MAX_TOTAL_AREA, Profile, preset, preset_names, profiles_from_json,
    profiles_from_json_file, profiles_from_names, validate_profiles,
};
pub use segmenter::{AacConfig, CutSegment, Segmenter, SegmenterSettings};
pub use transcode::{
    InputFormat, Rendition, SourceInfo, TranscodeOptions, TranscodeOutput, VideoDecoder, probe, remux_to_mpegts,
    transcode, transcode_until,
};
