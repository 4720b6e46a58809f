//! Probe and transcode of one in-memory segment.
//!
//! Threading: the calling thread demuxes and decodes the video once (FFmpeg frame threading);
//! every decoded frame is shared (reference-counted, no pixel copy) through a bounded channel
//! with one worker thread per rendition, which converts the frame rate, scales, encodes with
//! libx264 and muxes MPEG-TS into memory. A rendition with a larger one at the same frame rate
//! is fed that one's scaled frames instead of the source's (cascade scaling, see
//! [`scaled_from`]). Audio packets are copied into every rendition.

use std::ffi::{CStr, CString};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::Instant;

use crossbeam_channel::{Receiver, Sender, bounded};
use rsmpeg::avcodec::{AVCodec, AVCodecContext, AVCodecParameters, AVPacket};
use rsmpeg::avformat::AVFormatContextInput;
use rsmpeg::avutil::{AVDictionary, AVFrame, AVRational};
use rsmpeg::error::RsmpegError;
use rsmpeg::ffi;
use rsmpeg::swscale::SwsContext;

use crate::error::TranscodeError;
use crate::ffi as ff;
use crate::fps::{FpsConverter, MAX_FILL_SECS};
use crate::profile::{Profile, validate_profiles};
use crate::ts;

/// Container of an input segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum InputFormat {
    /// MPEG transport stream (`.ts`), what HLS segments are.
    MpegTs,
    /// ISO BMFF / MP4 (`.mp4`).
    Mp4,
}

impl InputFormat {
    /// `"ts"` or `"mp4"` (case-insensitive, leading dot allowed).
    pub fn from_extension(ext: &str) -> Option<InputFormat> {
        let e = ext.trim();
        let e = e.strip_prefix('.').unwrap_or(e);
        if e.eq_ignore_ascii_case("ts") {
            Some(InputFormat::MpegTs)
        } else if e.eq_ignore_ascii_case("mp4") {
            Some(InputFormat::Mp4)
        } else {
            None
        }
    }

    fn demuxer(self) -> &'static CStr {
        match self {
            InputFormat::MpegTs => c"mpegts",
            InputFormat::Mp4 => c"mp4",
        }
    }
}

impl From<lp_wire::Container> for InputFormat {
    fn from(c: lp_wire::Container) -> InputFormat {
        match c {
            lp_wire::Container::MpegTs => InputFormat::MpegTs,
            lp_wire::Container::Mp4 => InputFormat::Mp4,
        }
    }
}

impl From<InputFormat> for lp_wire::Container {
    fn from(f: InputFormat) -> lp_wire::Container {
        match f {
            InputFormat::MpegTs => lp_wire::Container::MpegTs,
            InputFormat::Mp4 => lp_wire::Container::Mp4,
        }
    }
}

/// What a segment holds.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SourceInfo {
    /// Coded width of the video.
    pub width: u32,
    /// Coded height of the video.
    pub height: u32,
    /// Frame rate (average), 0 when unknown.
    pub fps: f64,
    /// Video duration in milliseconds.
    pub duration_ms: u64,
    /// FFmpeg's codec name, e.g. `h264`.
    pub video_codec: String,
    /// Whether the segment has an audio stream.
    pub has_audio: bool,
    /// The RFC 6381 codecs of the video and the audio carried (`avc1.64001f,mp4a.40.2`), for
    /// HLS's `CODECS`; `None` when the video is not H.264 or its SPS was not found. Filled by
    /// [`probe`] (the transcode leaves it out).
    #[serde(default)]
    pub codecs: Option<String>,
}

/// Settings that are not part of a [`Profile`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TranscodeOptions {
    /// libx264 preset (`ultrafast` ... `veryslow`); default `veryfast`.
    pub x264_preset: String,
    /// CPU cores this transcode may use; 0 = all available. Decoder and encoder threads are
    /// derived from it (1 = everything single-threaded per stage).
    pub threads: usize,
    /// Where the source is decoded; default the CPU.
    pub decoder: VideoDecoder,
}

impl Default for TranscodeOptions {
    fn default() -> Self {
        Self { x264_preset: "veryfast".to_string(), threads: 0, decoder: VideoDecoder::Cpu }
    }
}

/// Where a transcode decodes its source. Scaling and encoding (libx264) stay on the CPU either
/// way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum VideoDecoder {
    /// FFmpeg's software decoder, frame-threaded.
    #[default]
    Cpu,
    /// NVDEC on NVIDIA GPU `gpu` (FFmpeg's CUDA hwaccel); each decoded frame is copied into
    /// system memory for the scalers. A stream NVDEC cannot take (4:4:4 or 4:2:2 H.264, for one)
    /// is decoded on the CPU.
    Nvdec { gpu: u32 },
}

impl std::str::FromStr for VideoDecoder {
    type Err = String;

    /// `cpu`, `nvdec` (GPU 0) or `nvdec:N`.
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "cpu" => Ok(VideoDecoder::Cpu),
            "nvdec" => Ok(VideoDecoder::Nvdec { gpu: 0 }),
            _ => s
                .strip_prefix("nvdec:")
                .filter(|n| !n.starts_with('+'))
                .and_then(|n| n.parse().ok())
                .map(|gpu| VideoDecoder::Nvdec { gpu })
                .ok_or_else(|| format!("unknown video decoder {s:?}: expected \"cpu\", \"nvdec\" or \"nvdec:N\"")),
        }
    }
}

impl std::fmt::Display for VideoDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VideoDecoder::Cpu => f.write_str("cpu"),
            VideoDecoder::Nvdec { gpu } => write!(f, "nvdec:{gpu}"),
        }
    }
}

impl VideoDecoder {
    /// Opens the device this decoder needs, once per process (a CUDA context takes a while to
    /// make; every later transcode shares it). A node calls it at start so that a missing GPU or
    /// driver stops the start with the reason instead of failing every segment.
    pub fn open(self) -> Result<(), String> {
        self.device().map(drop)
    }

    fn device(self) -> Result<Option<Arc<ff::CudaDevice>>, String> {
        let VideoDecoder::Nvdec { gpu } = self else {
            return Ok(None);
        };
        let mut devices = DEVICES.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, d)) = devices.iter().find(|(g, _)| *g == gpu) {
            return Ok(Some(d.clone()));
        }
        ff::init_logging();
        let (opened, said) = ff::errors_logged_by(|| ff::CudaDevice::open(gpu));
        let device = opened.map(Arc::new).map_err(|e| {
            let why = if said.is_empty() { ff::err_str(e) } else { said.join("; ") };
            format!(
                "NVDEC: FFmpeg cannot open CUDA device {gpu} ({why}); it needs an NVIDIA GPU with that \
                 index and its driver's libcuda.so.1 and libnvcuvid.so.1"
            )
        })?;
        devices.push((gpu, device.clone()));
        Ok(Some(device))
    }

    /// Lets go of the device after it failed: the next transcode opens it again (or fails to,
    /// saying why).
    fn forget_device(self) {
        if let VideoDecoder::Nvdec { gpu } = self {
            DEVICES.lock().unwrap_or_else(PoisonError::into_inner).retain(|(g, _)| *g != gpu);
        }
    }
}

/// The CUDA devices opened for NVDEC, by GPU index.
static DEVICES: Mutex<Vec<(u32, Arc<ff::CudaDevice>)>> = Mutex::new(Vec::new());

/// One encoded output.
#[derive(Debug, Clone)]
pub struct Rendition {
    /// The profile's name.
    pub name: String,
    /// Output width.
    pub width: u32,
    /// Output height.
    pub height: u32,
    /// Video frames encoded.
    pub frames: u64,
    /// total pixels encoded = width*height*frames
    pub pixels: u64,
    /// MPEG-TS bytes
    pub data: Vec<u8>,
}

/// Result of [`transcode()`].
#[derive(Debug, Clone)]
pub struct TranscodeOutput {
    /// What the input held.
    pub source: SourceInfo,
    /// Video frames decoded from the input.
    pub decoded_frames: u64,
    /// Of those, the frames NVDEC decoded ([`VideoDecoder::Nvdec`]); 0 on the CPU.
    pub gpu_frames: u64,
    /// One per profile, in the order given.
    pub renditions: Vec<Rendition>,
}

/// Demux + decode check without encoding: fails with [`TranscodeError::InvalidInput`] when the
/// bytes are not a decodable segment (garbage, empty, truncated MPEG-TS whose length is not a
/// multiple of 188 or that does not start with the 0x47 sync byte, no video stream, no frame
/// decodes). At most the first video frame is decoded; the rest is demuxed to measure the
/// duration.
///
/// MPEG-TS carries in its packets all the probe needs (the SPS, the audio's headers,
/// timestamps), so [`ts::scan`] reads them first and FFmpeg's H.264 parser reads the size from
/// the first access unit's SPS and slice header, without FFmpeg's demuxer and its stream-info
/// pass, which decodes frames ahead, and without decoding a picture (a 2-second 1080p segment on
/// the development VM, release build, glibc's malloc: 30 ms with that pass, 11 ms without it,
/// 6.5 ms decoding the first picture alone; 0.1 ms this way, where that one decode of a noisy
/// 455 KB IDR took 45 ms). So on this path a first picture whose slices are damaged is left to
/// the transcode, which answers it `InvalidInput`. What the scan cannot tell (a frame rate from
/// a single frame, a codec it does not know, a stream table that comes late, an access unit the
/// parser finds no picture in) is probed the full way, which also words the errors.
pub fn probe(data: &[u8], format: InputFormat) -> Result<SourceInfo, TranscodeError> {
    if format == InputFormat::MpegTs
        && let Some(info) = ts::scan(data).and_then(|scan| probe_scanned(&scan))
    {
        return Ok(info);
    }
    probe_full(data, format)
}

/// A segment [`ts::scan`] read: the size from its first access unit's headers; the frame rate
/// and duration from the timestamps (the most common gap is one frame).
fn probe_scanned(scan: &ts::Scan) -> Option<SourceInfo> {
    let (width, height) = access_unit_size(&scan.first_video)?;
    let frame = frame_ticks(&scan.video_pts)?;
    let duration_ms = ticks_ms(media_ticks(&scan.video_pts, frame, frame, MPEGTS_TB), MPEGTS_TB);
    Some(SourceInfo {
        width,
        height,
        fps: f64::from(MPEGTS_TB.den) / (frame as f64 * f64::from(MPEGTS_TB.num)),
        duration_ms,
        video_codec: ff::codec_name(ffi::AVCodecID_AV_CODEC_ID_H264),
        has_audio: scan.audio.is_some(),
        codecs: avc_from_annex_b(&scan.first_video).map(|v| match &scan.audio {
            Some(a) => format!("{v},{a}"),
            None => v,
        }),
    })
}

/// MPEG-TS timestamps: 90 kHz.
const MPEGTS_TB: AVRational = AVRational { num: 1, den: 90_000 };

/// The picture size an H.264 access unit (Annex B) declares, cropping applied: FFmpeg's H.264
/// parser reads its SPS and first slice header, without decoding the picture (a noisy 1080p IDR
/// of 455 KB took 45 ms to decode). `None` when the parser finds no slice with a valid SPS.
fn access_unit_size(access_unit: &[u8]) -> Option<(u32, u32)> {
    let codec = AVCodec::find_decoder(ffi::AVCodecID_AV_CODEC_ID_H264)?;
    let mut dec = AVCodecContext::new(&codec);
    let mut parser = ff::access_unit_parser(ffi::AVCodecID_AV_CODEC_ID_H264)?;
    let mut pkt = AVPacket::new();
    parser.parse_packet(&mut dec, &mut pkt, access_unit).ok()?;
    (parser.width > 0 && parser.height > 0).then(|| (parser.width as u32, parser.height as u32))
}

/// [`probe`] with FFmpeg's demuxer and its stream-info pass.
fn probe_full(data: &[u8], format: InputFormat) -> Result<SourceInfo, TranscodeError> {
    let mut src = Source::open(data, format, None)?;
    let mut dec = src.open_decoder("1", None)?;
    let mut stats = DecodeStats::default();
    let mut first: Option<(u32, u32)> = None;
    let mut avc = src.avc_from_extradata();
    // (pts, duration) of every video packet with a pts.
    let mut timed: Vec<(i64, i64)> = Vec::new();
    loop {
        let pkt = match src.ictx.read_packet() {
            Ok(Some(p)) => p,
            Ok(None) => break,
            Err(e) => {
                tracing::debug!(error = %e, "probe: demuxing stopped early");
                break;
            }
        };
        if pkt.stream_index as usize != src.video {
            continue;
        }
        if pkt.pts != ffi::AV_NOPTS_VALUE {
            timed.push((pkt.pts, pkt.duration));
        }
        if avc.is_none() && src.codec_name == "h264" {
            avc = avc_from_annex_b(ff::packet_data(&pkt));
        }
        if first.is_none() {
            decode_packet(&mut dec, Some(&pkt), &mut stats, &mut |f| {
                first.get_or_insert((f.width.max(0) as u32, f.height.max(0) as u32));
            });
        }
    }
    if first.is_none() {
        decode_packet(&mut dec, None, &mut stats, &mut |f| {
            first.get_or_insert((f.width.max(0) as u32, f.height.max(0) as u32));
        });
    }
    let Some((width, height)) = first else {
        return Err(src.no_frames_error(&stats));
    };
    let nominal = src.nominal_frame_ticks();
    // MPEG-TS packets often carry no duration: count one nominal frame then.
    let last = timed.iter().max().map_or(0, |&(_, dur)| if dur > 0 { dur } else { nominal });
    let pts: Vec<i64> = timed.iter().map(|&(pts, _)| pts).collect();
    let duration_ticks = media_ticks(&pts, nominal, last, src.video_tb);
    let duration_ms = if duration_ticks > 0 {
        ticks_ms(duration_ticks, src.video_tb)
    } else if src.ictx.duration > 0 {
        (src.ictx.duration / 1000) as u64
    } else {
        0
    };
    Ok(SourceInfo {
        width,
        height,
        fps: src.fps_f64(),
        duration_ms,
        video_codec: src.codec_name.clone(),
        has_audio: src.has_audio,
        codecs: avc.map(|v| match &src.audio_codec {
            Some(a) => format!("{v},{a}"),
            None => v,
        }),
    })
}

/// How much media a segment's video timestamps (`pts`, in `tb`, any order) span: from the first
/// to the last, plus `last`, the last frame's duration. A gap longer than [`MAX_FILL_SECS`]
/// counts as one `frame`: it is a timestamp jump (a pusher's clock reset, or a crafted
/// segment), not media, as the frame-rate conversion treats it. Counted whole, a jump of a day
/// in a 2-second segment made the segment a day long: the gateway paid for a day of pixels and
/// timed its attempts by it, and the playlist's `TARGETDURATION`, which only grows, told
/// players to wait a day between reloads.
fn media_ticks(pts: &[i64], frame: i64, last: i64, tb: AVRational) -> i64 {
    let pts = sorted_distinct(pts);
    let jump = jump_ticks(tb);
    let gaps: i64 = pts.windows(2).map(|w| if w[1] - w[0] > jump { frame } else { w[1] - w[0] }).sum();
    if pts.is_empty() { 0 } else { gaps + last }
}

/// Timestamps in presentation order, each once (frames in decode order have theirs out of
/// order).
fn sorted_distinct(pts: &[i64]) -> Vec<i64> {
    let mut pts = pts.to_vec();
    pts.sort_unstable();
    pts.dedup();
    pts
}

/// The longest gap between two frames that is not a timestamp jump, in ticks of `tb`.
fn jump_ticks(tb: AVRational) -> i64 {
    rescale(i64::from(MAX_FILL_SECS), AVRational { num: 1, den: 1 }, tb)
}

/// Ticks of `tb` in whole milliseconds (0 for a negative count).
fn ticks_ms(ticks: i64, tb: AVRational) -> u64 {
    rescale(ticks, tb, AVRational { num: 1, den: 1000 }).max(0) as u64
}

/// One frame's duration in ticks from the video's MPEG-TS timestamps: the most common gap
/// between consecutive distinct ones (frames in decode order have their pts out of order),
/// timestamp jumps left out.
fn frame_ticks(timestamps: &[i64]) -> Option<i64> {
    let pts = sorted_distinct(timestamps);
    let jump = jump_ticks(MPEGTS_TB);
    let mut gaps: Vec<i64> = pts.windows(2).map(|w| w[1] - w[0]).filter(|gap| *gap <= jump).collect();
    gaps.sort_unstable();
    // The most common gap; ties go to the smaller one.
    let mut best: Option<(usize, i64)> = None;
    for run in gaps.chunk_by(|a, b| a == b) {
        if best.is_none_or(|(n, _)| run.len() > n) {
            best = Some((run.len(), run[0]));
        }
    }
    best.map(|(_, gap)| gap).filter(|gap| *gap > 0)
}

/// `avc1.PPCCLL` from an SPS NAL unit (its header byte first): profile_idc, the constraint
/// flags and level_idc, as RFC 6381 names H.264.
fn avc1(sps: &[u8]) -> Option<String> {
    (sps.len() >= 4 && sps[0] & 0x1f == 7).then(|| format!("avc1.{:02x}{:02x}{:02x}", sps[1], sps[2], sps[3]))
}

/// The `avc1` codec of the first SPS in an Annex B access unit.
fn avc_from_annex_b(data: &[u8]) -> Option<String> {
    let mut i = 0;
    while i + 3 < data.len() {
        if data[i] == 0 && data[i + 1] == 0 && data[i + 2] == 1 {
            if let Some(codec) = avc1(&data[i + 3..]) {
                return Some(codec);
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    None
}

/// The RFC 6381 name of an audio track MPEG-TS carries, where HLS players know one.
fn audio_codec(par: &ffi::AVCodecParameters) -> Option<String> {
    match par.codec_id {
        // The MPEG-4 audio object type is FFmpeg's AAC profile + 1 (LC 1 → 2, HE 4 → 5).
        ffi::AVCodecID_AV_CODEC_ID_AAC => {
            Some(format!("mp4a.40.{}", if par.profile >= 0 { par.profile + 1 } else { 2 }))
        }
        ffi::AVCodecID_AV_CODEC_ID_MP3 => Some("mp4a.40.34".into()),
        ffi::AVCodecID_AV_CODEC_ID_AC3 => Some("ac-3".into()),
        ffi::AVCodecID_AV_CODEC_ID_EAC3 => Some("ec-3".into()),
        _ => None,
    }
}

/// Decodes `data` once and encodes one H.264/MPEG-TS rendition per profile (in parallel), copying
/// the first audio stream into each. See the crate documentation for the exact encoder settings.
pub fn transcode(
    data: &[u8],
    format: InputFormat,
    profiles: &[Profile],
    opts: &TranscodeOptions,
) -> Result<TranscodeOutput, TranscodeError> {
    transcode_until(data, format, profiles, opts, None)
}

/// As [`transcode()`], but gives up with [`TranscodeError::DeadlinePassed`] once `deadline` has
/// passed (checked before each demuxed packet): work nobody waits for any more stops using the
/// CPU. The encoders are dropped without being flushed.
///
/// With [`VideoDecoder::Nvdec`], a frame that cannot be copied out of the GPU fails the
/// transcode as retryable ([`TranscodeError::Ffmpeg`]) and the device is opened again for the
/// next one; a decode that reported errors, or decoded nothing, is done again on the CPU, whose
/// answer says whether the input or the GPU was at fault.
pub fn transcode_until(
    data: &[u8],
    format: InputFormat,
    profiles: &[Profile],
    opts: &TranscodeOptions,
    deadline: Option<Instant>,
) -> Result<TranscodeOutput, TranscodeError> {
    let device = opts.decoder.device().map_err(TranscodeError::Ffmpeg)?;
    let mut stats = DecodeStats::default();
    let result = run(data, format, profiles, opts, deadline, device.as_deref(), &mut stats);
    if device.is_none() {
        return result;
    }
    if stats.device.is_some() {
        opts.decoder.forget_device();
        return result;
    }
    match result {
        Ok(out) if stats.errors == 0 => {
            if out.gpu_frames == 0 {
                tracing::debug!(decoder = %opts.decoder, "NVDEC did not take this stream: it was decoded on the CPU");
            }
            Ok(out)
        }
        Err(e) if stats.errors == 0 && !matches!(e, TranscodeError::InvalidInput(_)) => Err(e),
        _ => {
            tracing::debug!(
                decoder = %opts.decoder,
                errors = stats.errors,
                last = stats.last.as_deref().unwrap_or(""),
                "NVDEC reported errors: decoding on the CPU instead"
            );
            run(data, format, profiles, opts, deadline, None, &mut DecodeStats::default())
        }
    }
}

/// [`transcode_until`] with the video decoded on `device` (NVDEC) when given; what the decoder
/// reported goes to `stats`.
fn run(
    data: &[u8],
    format: InputFormat,
    profiles: &[Profile],
    opts: &TranscodeOptions,
    deadline: Option<Instant>,
    device: Option<&ff::CudaDevice>,
    stats: &mut DecodeStats,
) -> Result<TranscodeOutput, TranscodeError> {
    let preset = CString::new(opts.x264_preset.trim())
        .ok()
        .filter(|p| !p.is_empty())
        .ok_or_else(|| TranscodeError::Ffmpeg(format!("bad x264 preset {:?}", opts.x264_preset)))?;
    validate_profiles(profiles).map_err(|e| TranscodeError::InvalidProfile(e.to_string()))?;
    let mut src = Source::open_for_transcode(data, format)?;
    let plan = ThreadPlan::new(opts.threads, profiles, src.fps, src.size);
    let mut dec = src.open_decoder(plan.decoder, device)?;
    let audio = src.audio_copy.as_ref().map(|a| (a.index, a.time_base));

    thread::scope(|scope| {
        // One channel per rendition. The decoder feeds the renditions scaled from the source;
        // every other one is fed by the rendition it is scaled from (`ThreadPlan::scaled_from`).
        let (txs, rxs): (Vec<_>, Vec<_>) = profiles.iter().map(|_| bounded(plan.queue)).unzip();
        let mut senders: Vec<Option<Sender<Msg>>> = Vec::with_capacity(profiles.len());
        let mut feeds = vec![Vec::new(); profiles.len()];
        for (tx, from) in txs.into_iter().zip(&plan.scaled_from) {
            match from {
                Some(j) => feeds[*j].push(tx),
                None => senders.push(Some(tx)),
            }
        }
        let mut handles = Vec::with_capacity(profiles.len());
        let mut spawn_error = None;
        for (i, ((p, rx), feeds)) in profiles.iter().zip(rxs).zip(feeds).enumerate() {
            let from_rendition = plan.scaled_from[i].is_some();
            let job = Job {
                profile: p.clone(),
                preset: preset.clone(),
                x264_threads: plan.encoders[i],
                tb: src.video_tb,
                // A rendition fed by another gets its frames at that one's (equal) rate.
                src_fps: if from_rendition { profile_rate(p).or(src.fps) } else { src.fps },
                from_rendition,
                feeds,
                deadline,
                audio: src.audio_copy.as_ref().map(|a| (a.params.clone(), a.time_base)),
            };
            match thread::Builder::new().name(format!("lp-enc-{i}")).spawn_scoped(scope, move || run_rendition(job, rx))
            {
                Ok(h) => handles.push(h),
                Err(e) => {
                    spawn_error = Some(TranscodeError::Ffmpeg(format!("cannot start an encoder thread: {e}")));
                    break;
                }
            }
        }

        let mut track = FrameTrack::new(src.nominal_frame_ticks());
        let mut late = false;
        if spawn_error.is_none() {
            loop {
                if past(deadline) {
                    late = true;
                    for tx in senders.iter().flatten() {
                        let _ = tx.send(Msg::Abort);
                    }
                    break;
                }
                let pkt = match src.ictx.read_packet() {
                    Ok(Some(p)) => p,
                    Ok(None) => break,
                    Err(e) => {
                        tracing::debug!(error = %e, "demuxing stopped early");
                        break;
                    }
                };
                let idx = pkt.stream_index as usize;
                if idx == src.video {
                    decode_packet(&mut dec, Some(&pkt), stats, &mut |f| track.dispatch(f, &mut senders));
                } else if audio.is_some_and(|(a, _)| a == idx) {
                    dispatch_audio(&pkt, &mut senders);
                }
                if stats.device.is_some() {
                    // The GPU failed: every later frame would fail the same way.
                    break;
                }
                if senders.iter().any(Option::is_none) {
                    // A rendition failed, so the transcode fails: stop decoding for the others.
                    // The error comes out of join().
                    break;
                }
            }
            if !late {
                decode_packet(&mut dec, None, stats, &mut |f| track.dispatch(f, &mut senders));
                let end_pts = track.end_pts();
                for tx in senders.iter().flatten() {
                    let _ = tx.send(Msg::End { end_pts });
                }
            }
        }
        drop(senders);

        let mut renditions = Vec::with_capacity(handles.len());
        let mut first_error = spawn_error;
        for (h, p) in handles.into_iter().zip(profiles) {
            match h.join() {
                Ok(Ok(r)) => renditions.push(r),
                Ok(Err(Stop::Failed(e))) => {
                    first_error.get_or_insert(e);
                }
                Ok(Err(Stop::FeedClosed)) => {}
                Err(_) => {
                    first_error
                        .get_or_insert(TranscodeError::Ffmpeg(format!("the encoder thread of {:?} panicked", p.name)));
                }
            }
        }
        if late {
            return Err(TranscodeError::DeadlinePassed { frames: track.count });
        }
        if let Some(e) = &stats.device {
            return Err(TranscodeError::Ffmpeg(e.clone()));
        }
        if track.count == 0 {
            return Err(src.no_frames_error(stats));
        }
        if let Some(e) = first_error {
            return Err(e);
        }
        let (width, height) = track.size;
        let source = SourceInfo {
            width,
            height,
            fps: src.fps_f64(),
            duration_ms: track.duration_ms(src.video_tb),
            video_codec: src.codec_name.clone(),
            has_audio: src.has_audio,
            codecs: None,
        };
        if stats.errors > 0 {
            tracing::debug!(
                errors = stats.errors,
                last = stats.last.as_deref().unwrap_or(""),
                "decoder reported errors"
            );
        }
        Ok(TranscodeOutput { source, decoded_frames: track.count, gpu_frames: stats.gpu_frames, renditions })
    })
}

/// The segment as MPEG-TS without re-encoding (what HLS serves as the source rendition): an
/// MPEG-TS input comes back as it is; MP4 is remuxed (its H.264 turned into Annex B by the
/// muxer's automatic bitstream filter), keeping the video and the first audio track MPEG-TS
/// can carry.
pub fn remux_to_mpegts(data: &[u8], format: InputFormat) -> Result<Vec<u8>, TranscodeError> {
    if format == InputFormat::MpegTs {
        check_bytes(data, format)?;
        return Ok(data.to_vec());
    }
    let mut src = Source::open(data, format, None)?;
    let mut out = ff::MemoryOutput::mpegts(data.len() + data.len() / 8)
        .map_err(|m| TranscodeError::Ffmpeg(format!("source remux: {m}")))?;
    let video_par = {
        let streams = src.ictx.streams();
        let st = streams.get(src.video).ok_or_else(|| TranscodeError::Ffmpeg("video stream vanished".into()))?;
        ff::params_for_copy(&st.codecpar())
    };
    {
        let mut st = out.ctx.new_stream();
        st.set_codecpar(video_par);
        st.set_time_base(src.video_tb);
    }
    if let Some(a) = &src.audio_copy {
        let mut st = out.ctx.new_stream();
        st.set_codecpar(a.params.clone());
        st.set_time_base(a.time_base);
    }
    out.ctx.write_header(&mut None).map_err(|e| ffmpeg_err("cannot start the MPEG-TS muxer", "source", &e))?;
    let out_tbs: Vec<AVRational> = out.ctx.streams().into_iter().map(|s| s.time_base).collect();
    let audio = src.audio_copy.as_ref().map(|a| (a.index, a.time_base));
    let mut written = 0usize;
    while let Ok(Some(mut pkt)) = src.ictx.read_packet() {
        let idx = pkt.stream_index as usize;
        let (out_index, in_tb) = if idx == src.video {
            (0, src.video_tb)
        } else if let Some((_, tb)) = audio.filter(|(a, _)| *a == idx) {
            (1, tb)
        } else {
            continue;
        };
        pkt.rescale_ts(in_tb, out_tbs[out_index]);
        pkt.set_stream_index(out_index as i32);
        pkt.set_pos(-1);
        match out.ctx.interleaved_write_frame(&mut pkt) {
            Ok(()) => written += usize::from(out_index == 0),
            Err(e) => tracing::debug!(error = %rsmpeg_err(&e), "source remux: dropped a packet"),
        }
    }
    if written == 0 {
        return Err(invalid("no video packet could be remuxed"));
    }
    out.ctx.write_trailer().map_err(|e| ffmpeg_err("cannot finish the MPEG-TS output", "source", &e))?;
    Ok(out.into_bytes())
}

// ---------------------------------------------------------------------------------------------
// Input side
// ---------------------------------------------------------------------------------------------

struct AudioCopy {
    index: usize,
    params: AVCodecParameters,
    time_base: AVRational,
}

struct Source {
    ictx: AVFormatContextInput,
    video: usize,
    video_tb: AVRational,
    fps: Option<AVRational>,
    /// Frame size from the stream parameters ((0, 0) when unknown); the decoded frames rule.
    size: (u32, u32),
    codec_name: String,
    has_audio: bool,
    audio_copy: Option<AudioCopy>,
    /// The RFC 6381 name of the audio copied, if players know one.
    audio_codec: Option<String>,
}

fn invalid(msg: impl Into<String>) -> TranscodeError {
    TranscodeError::InvalidInput(msg.into())
}

fn check_bytes(data: &[u8], format: InputFormat) -> Result<(), TranscodeError> {
    if data.is_empty() {
        return Err(invalid("the input is empty"));
    }
    match format {
        InputFormat::MpegTs => {
            if data[0] != 0x47 {
                return Err(invalid(format!(
                    "not an MPEG-TS segment: the first byte is 0x{:02x}, not the 0x47 sync byte",
                    data[0]
                )));
            }
            if !data.len().is_multiple_of(188) {
                return Err(invalid(format!(
                    "truncated MPEG-TS: {} bytes is not a whole number of 188-byte packets",
                    data.len()
                )));
            }
        }
        InputFormat::Mp4 => {
            if data.len() < 16 {
                return Err(invalid(format!("not an MP4 file: only {} bytes", data.len())));
            }
        }
    }
    Ok(())
}

/// Audio codecs that MPEG-TS carries.
fn ts_audio_ok(id: ffi::AVCodecID) -> bool {
    matches!(
        id,
        ffi::AVCodecID_AV_CODEC_ID_AAC
            | ffi::AVCodecID_AV_CODEC_ID_AAC_LATM
            | ffi::AVCodecID_AV_CODEC_ID_MP2
            | ffi::AVCodecID_AV_CODEC_ID_MP3
            | ffi::AVCodecID_AV_CODEC_ID_AC3
            | ffi::AVCodecID_AV_CODEC_ID_EAC3
            | ffi::AVCodecID_AV_CODEC_ID_OPUS
    )
}

fn valid_q(q: AVRational) -> bool {
    q.num > 0 && q.den > 0
}

fn rescale(v: i64, from: AVRational, to: AVRational) -> i64 {
    if !valid_q(from) || !valid_q(to) {
        return v;
    }
    // v * from / to, rounded to nearest, in 128 bits (no overflow for any i64 input we see).
    let n = i128::from(v) * i128::from(from.num) * i128::from(to.den);
    let d = i128::from(from.den) * i128::from(to.num);
    let r = if n >= 0 { (2 * n + d) / (2 * d) } else { -((-2 * n + d) / (2 * d)) };
    r.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

/// What a transcode needs of a segment that FFmpeg's stream-info pass would otherwise find, as
/// [`ts::scan`] read it from the packets. The audio is as its ADTS header states it: for HE-AAC
/// that is the AAC-LC core at half the rate, where the pass reports HE at the full rate. The
/// audio is copied frame by frame with its headers, so the renditions are the same either way.
struct Scanned {
    video_pid: u16,
    audio_pid: Option<u16>,
    fps: AVRational,
    size: (u32, u32),
    /// Frames the decoder holds back to reorder them (what B-frames need).
    reorder: i32,
    adts: Option<ts::Adts>,
}

impl Scanned {
    /// `None` where the packets do not tell it all: a frame rate from one frame (or above the
    /// 1000 fps the stream-info path takes), video PES packets without a timestamp or with
    /// more than one picture (the gaps would not be frames), a size the parser cannot read,
    /// audio other than AAC in ADTS, or channels the stream describes.
    fn of(scan: &ts::Scan) -> Option<Scanned> {
        let adts = match (&scan.audio, scan.adts) {
            (None, _) => None,
            (Some(_), Some(a)) if a.channels > 0 => Some(a),
            _ => return None,
        };
        if scan.video_pes != scan.video_pts.len() || pictures_in(&scan.first_video) != 1 {
            return None;
        }
        let fps = rate_of_gap(frame_ticks(&scan.video_pts)?);
        if f64::from(fps.num) > 1000.0 * f64::from(fps.den) {
            return None;
        }
        Some(Scanned {
            video_pid: scan.video_pid,
            audio_pid: scan.audio_pid,
            fps,
            size: access_unit_size(&scan.first_video)?,
            reorder: reorder_depth(&scan.video_pts),
            adts,
        })
    }
}

/// The pictures an H.264 access unit (Annex B) starts: its slices whose `first_mb_in_slice` is 0
/// (coded as a single 1 bit, the top bit of the byte after the NAL header).
fn pictures_in(access_unit: &[u8]) -> usize {
    access_unit.windows(5).filter(|w| w[..3] == [0, 0, 1] && matches!(w[3] & 0x1f, 1 | 5) && w[4] & 0x80 != 0).count()
}

/// How many frames a decoder must hold back to show them in order, from their timestamps in
/// decode order: the most frames decoded before one and shown after it (H.264 allows 16).
fn reorder_depth(pts_in_decode_order: &[i64]) -> i32 {
    let pts = pts_in_decode_order;
    let depth = (0..pts.len()).map(|i| pts[i.saturating_sub(16)..i].iter().filter(|&&p| p > pts[i]).count());
    depth.max().unwrap_or(0) as i32
}

/// The frame rate of one frame's gap in 90 kHz ticks, as FFmpeg's stream-info pass states a
/// constant rate: the nearest of n/1 and n·1000/1001 when within 0.2 % (59.94 fps alternates
/// gaps of 1501 and 1502 ticks), else 90000/gap.
fn rate_of_gap(ticks: i64) -> AVRational {
    let fps = f64::from(MPEGTS_TB.den) / ticks as f64;
    let whole = AVRational { num: fps.round().max(1.0) as i32, den: 1 };
    let ntsc = AVRational { num: (fps * 1.001).round().max(1.0) as i32 * 1000, den: 1001 };
    let error = |q: AVRational| (f64::from(q.num) / f64::from(q.den) / fps - 1.0).abs();
    let best = if error(ntsc) < error(whole) { ntsc } else { whole };
    if error(best) < 0.002 {
        return best;
    }
    let (num, den) = (i64::from(MPEGTS_TB.den), ticks.clamp(1, i64::from(i32::MAX)));
    let (mut a, mut b) = (num, den);
    while b != 0 {
        (a, b) = (b, a % b);
    }
    AVRational { num: (num / a) as i32, den: (den / a) as i32 }
}

impl Source {
    /// Open `data` for a transcode: an MPEG-TS segment [`Scanned`] knows is opened without
    /// FFmpeg's stream-info pass, which decodes frames on one thread before any other work can
    /// start (on the development VM, a 2-second 1080p segment: 12 ms with B-frames, 40-60 ms
    /// without, where it decodes seven). Anything else, or a scan the demuxer disagrees with,
    /// is opened the full way.
    fn open_for_transcode(data: &[u8], format: InputFormat) -> Result<Source, TranscodeError> {
        if format == InputFormat::MpegTs
            && let Some(known) = ts::scan(data).as_ref().and_then(Scanned::of)
        {
            match Source::open(data, format, Some(&known)) {
                Ok(src) if src.agrees_with(&known) => return Ok(src),
                _ => tracing::debug!("the demuxer disagrees with the scan; reading the stream info"),
            }
        }
        Source::open(data, format, None)
    }

    /// Whether the demuxer chose the streams the scan read (by PID), H.264, and the audio
    /// copied exactly when the scan read its parameters.
    fn agrees_with(&self, known: &Scanned) -> bool {
        let pid = |i: usize| self.ictx.streams().get(i).map(|st| st.id as u16);
        self.codec_name == "h264"
            && pid(self.video) == Some(known.video_pid)
            && self.audio_copy.as_ref().map(|a| pid(a.index)) == known.adts.map(|_| known.audio_pid)
    }

    /// Open `data`: after FFmpeg's stream-info pass (which decodes frames ahead to fill in every
    /// stream's parameters), or with what the packets told (`known`) instead.
    fn open(data: &[u8], format: InputFormat, known: Option<&Scanned>) -> Result<Source, TranscodeError> {
        ff::init_logging();
        check_bytes(data, format)?;
        let mut ictx = ff::open_input(data, format.demuxer(), known.is_none()).map_err(|e| match e {
            ff::OpenError::Input(m) => invalid(m),
            ff::OpenError::Internal(m) => TranscodeError::Ffmpeg(m),
        })?;
        if ictx.nb_streams == 0 {
            // (Also guards rsmpeg's streams(), which unwraps FFmpeg's NULL stream array.)
            return Err(invalid("no streams found"));
        }
        if let Some(a) = known.and_then(|k| k.adts) {
            let first_audio = ictx
                .streams()
                .into_iter()
                .find(|st| st.codecpar().codec_type == ffi::AVMediaType_AVMEDIA_TYPE_AUDIO)
                .filter(|st| st.codecpar().codec_id == ffi::AVCodecID_AV_CODEC_ID_AAC)
                .map(|st| st.index as usize);
            if let Some(i) = first_audio {
                ff::set_aac_params(&mut ictx, i, a.sample_rate as i32, a.channels as i32, i32::from(a.profile));
            }
        }
        if let Some(k) = known {
            let first_video = ictx
                .streams()
                .into_iter()
                .find(|st| st.codecpar().codec_type == ffi::AVMediaType_AVMEDIA_TYPE_VIDEO)
                .map(|st| st.index as usize);
            if let Some(i) = first_video {
                ff::set_video_delay(&mut ictx, i, k.reorder);
            }
        }
        let mut video = None;
        let mut audio = None;
        let mut has_audio = false;
        for (i, st) in ictx.streams().into_iter().enumerate() {
            let par = st.codecpar();
            if par.codec_type == ffi::AVMediaType_AVMEDIA_TYPE_VIDEO
                && st.disposition & ffi::AV_DISPOSITION_ATTACHED_PIC as i32 == 0
                && video.is_none()
            {
                video = Some(i);
            } else if par.codec_type == ffi::AVMediaType_AVMEDIA_TYPE_AUDIO {
                has_audio = true;
                if audio.is_none() {
                    audio = Some(i);
                }
            }
        }
        let Some(video) = video else {
            return Err(invalid(if has_audio { "no video stream (audio-only segment)" } else { "no video stream" }));
        };
        let (video_tb, fps, size, codec_name, audio_copy) = {
            let streams = ictx.streams();
            let vst = streams.get(video).ok_or_else(|| TranscodeError::Ffmpeg("video stream vanished".into()))?;
            let video_tb = vst.time_base;
            let size =
                known.map_or((vst.codecpar().width.max(0) as u32, vst.codecpar().height.max(0) as u32), |k| k.size);
            if !valid_q(video_tb) {
                return Err(invalid("the video stream has no time base"));
            }
            let fps = match known {
                Some(k) => Some(k.fps),
                None => [vst.avg_frame_rate, vst.r_frame_rate]
                    .into_iter()
                    .find(|q| valid_q(*q) && f64::from(q.num) / f64::from(q.den) <= 1000.0),
            };
            let codec_name = ff::codec_name(vst.codecpar().codec_id);
            let audio_copy = audio.and_then(|i| {
                let st = streams.get(i)?;
                let par = st.codecpar();
                if !ts_audio_ok(par.codec_id) || !valid_q(st.time_base) {
                    tracing::debug!(
                        codec = ff::codec_name(par.codec_id),
                        "audio codec cannot be carried in MPEG-TS; renditions will have no audio"
                    );
                    return None;
                }
                if par.sample_rate <= 0 || par.ch_layout.nb_channels <= 0 {
                    // Too little of the track to read its parameters (a segment cut after one
                    // frame): the MPEG-TS muxer refuses such a stream, so leave it out rather
                    // than fail the video.
                    tracing::debug!(
                        codec = ff::codec_name(par.codec_id),
                        "audio track without sample rate or channels; renditions will have no audio"
                    );
                    return None;
                }
                Some(AudioCopy { index: i, params: ff::params_for_copy(&par), time_base: st.time_base })
            });
            (video_tb, fps, size, codec_name, audio_copy)
        };
        let audio_codec = audio_copy.as_ref().and_then(|a| audio_codec(&a.params));
        Ok(Source { ictx, video, video_tb, fps, size, codec_name, has_audio, audio_copy, audio_codec })
    }

    /// The `avc1` codec from an MP4's `avcC` extradata (version 1, then profile, constraints
    /// and level); MPEG-TS carries its SPS in the packets instead.
    fn avc_from_extradata(&self) -> Option<String> {
        let st = self.ictx.streams().get(self.video)?;
        let par = st.codecpar();
        let extra = ff::extradata(&par);
        if par.codec_id != ffi::AVCodecID_AV_CODEC_ID_H264 || extra.len() < 4 {
            return None;
        }
        match extra[0] {
            1 => Some(format!("avc1.{:02x}{:02x}{:02x}", extra[1], extra[2], extra[3])),
            _ => avc_from_annex_b(extra),
        }
    }

    fn fps_f64(&self) -> f64 {
        self.fps.map(|q| f64::from(q.num) / f64::from(q.den)).unwrap_or(0.0)
    }

    /// One frame's duration in the video time base, from the stream frame rate (0 if unknown).
    fn nominal_frame_ticks(&self) -> i64 {
        self.fps.map(|q| rescale(1, AVRational { num: q.den, den: q.num }, self.video_tb)).unwrap_or(0)
    }

    /// The video decoder, with `threads` (FFmpeg's option), on `device` when given (NVDEC).
    fn open_decoder(&self, threads: &str, device: Option<&ff::CudaDevice>) -> Result<AVCodecContext, TranscodeError> {
        let streams = self.ictx.streams();
        let st = streams.get(self.video).ok_or_else(|| TranscodeError::Ffmpeg("video stream vanished".into()))?;
        let par = st.codecpar();
        let codec = AVCodec::find_decoder(par.codec_id)
            .ok_or_else(|| invalid(format!("no decoder for the video codec {:?}", self.codec_name)))?;
        let mut dec = AVCodecContext::new(&codec);
        dec.apply_codecpar(&par).map_err(|e| TranscodeError::Ffmpeg(format!("decoder parameters: {e}")))?;
        if let Some(device) = device {
            ff::decode_on(&mut dec, device)
                .map_err(|e| TranscodeError::Ffmpeg(format!("NVDEC decoder: {}", ff::err_str(e))))?;
        }
        let tb = CString::new(format!("{}/{}", st.time_base.num, st.time_base.den))
            .map_err(|e| TranscodeError::Ffmpeg(e.to_string()))?;
        let threads = CString::new(threads).map_err(|e| TranscodeError::Ffmpeg(e.to_string()))?;
        let opts = AVDictionary::new(c"threads", &threads, 0).set(c"pkt_timebase", &tb, 0);
        ff::open_codec(&mut dec, opts)
            .map_err(|e| invalid(format!("cannot open the {} decoder: {}", self.codec_name, ff::err_str(e))))?;
        Ok(dec)
    }

    fn no_frames_error(&self, stats: &DecodeStats) -> TranscodeError {
        match &stats.last {
            Some(e) => invalid(format!(
                "no {} video frame could be decoded ({} decoder errors, last: {e})",
                self.codec_name, stats.errors
            )),
            None => invalid(format!("no {} video frame could be decoded", self.codec_name)),
        }
    }
}

fn rsmpeg_err(e: &RsmpegError) -> String {
    use RsmpegError as E;
    match e {
        E::AVError(c)
        | E::OpenInputError(c)
        | E::OpenOutputError(c)
        | E::FindStreamInfoError(c)
        | E::WriteHeaderError(c)
        | E::WriteTrailerError(c)
        | E::CodecOpenError(c)
        | E::CodecSetParameterError(c)
        | E::SendPacketError(c)
        | E::ReceiveFrameError(c)
        | E::SendFrameError(c)
        | E::ReceivePacketError(c)
        | E::ReadFrameError(c)
        | E::WriteFrameError(c)
        | E::InterleavedWriteFrameError(c) => ff::err_str(*c),
        other => other.to_string(),
    }
}

#[derive(Default)]
struct DecodeStats {
    errors: u64,
    last: Option<String>,
    /// A decoded frame that could not be copied out of GPU memory: the device's failure, not the
    /// input's.
    device: Option<String>,
    /// Frames decoded into GPU memory.
    gpu_frames: u64,
}

impl DecodeStats {
    fn error(&mut self, e: &RsmpegError) {
        self.errors += 1;
        self.last = Some(rsmpeg_err(e));
    }
}

/// Feeds one packet (`None` = flush) to the decoder and hands every frame that comes out to
/// `sink`. Decoding errors are counted, not fatal: a damaged packet loses its frames only.
fn decode_packet(
    dec: &mut AVCodecContext,
    pkt: Option<&AVPacket>,
    stats: &mut DecodeStats,
    sink: &mut dyn FnMut(AVFrame),
) {
    for _ in 0..64 {
        match dec.send_packet(pkt) {
            Ok(()) => break,
            Err(RsmpegError::DecoderFullError) => {
                if drain_frames(dec, stats, sink) == 0 {
                    break;
                }
            }
            Err(RsmpegError::DecoderFlushedError) => break,
            Err(e) => {
                stats.error(&e);
                break;
            }
        }
    }
    drain_frames(dec, stats, sink);
}

fn drain_frames(dec: &mut AVCodecContext, stats: &mut DecodeStats, sink: &mut dyn FnMut(AVFrame)) -> usize {
    let mut n = 0;
    let mut errors = 0;
    loop {
        match dec.receive_frame() {
            Ok(f) => {
                n += 1;
                if f.format == ffi::AVPixelFormat_AV_PIX_FMT_CUDA {
                    stats.gpu_frames += 1;
                }
                match ff::to_system_memory(f) {
                    Ok(f) => sink(f),
                    Err(code) => {
                        let e = format!("NVDEC: cannot copy a frame out of the GPU: {}", ff::err_str(code));
                        stats.device.get_or_insert(e);
                    }
                }
            }
            Err(RsmpegError::DecoderDrainError | RsmpegError::DecoderFlushedError) => break,
            Err(e) => {
                stats.error(&e);
                errors += 1;
                if errors >= 16 {
                    break;
                }
            }
        }
    }
    n
}

/// Timestamps of the decoded frames, and the fan-out to the renditions.
struct FrameTrack {
    nominal: i64,
    count: u64,
    first_pts: i64,
    last_pts: i64,
    last_dur: i64,
    size: (u32, u32),
}

impl FrameTrack {
    fn new(nominal: i64) -> Self {
        Self { nominal, count: 0, first_pts: 0, last_pts: 0, last_dur: 0, size: (0, 0) }
    }

    fn dispatch(&mut self, mut frame: AVFrame, senders: &mut [Option<Sender<Msg>>]) {
        let mut pts = frame.best_effort_timestamp;
        if pts == ffi::AV_NOPTS_VALUE {
            pts = frame.pts;
        }
        if pts == ffi::AV_NOPTS_VALUE {
            pts = if self.count == 0 { 0 } else { self.last_pts + self.step() };
        }
        frame.set_pts(pts);
        if self.count == 0 {
            self.first_pts = pts;
            self.size = (frame.width.max(0) as u32, frame.height.max(0) as u32);
        } else if pts > self.last_pts {
            self.last_dur = pts - self.last_pts;
        }
        if self.count == 0 || pts > self.last_pts {
            self.last_pts = pts;
        }
        self.count += 1;

        let alive: Vec<usize> = (0..senders.len()).filter(|&i| senders[i].is_some()).collect();
        let Some((&last, rest)) = alive.split_last() else {
            return;
        };
        let source = (frame.width.max(0) as u32, frame.height.max(0) as u32);
        for &i in rest {
            send_or_drop(&mut senders[i], Msg::Video { frame: frame.clone(), source });
        }
        send_or_drop(&mut senders[last], Msg::Video { frame, source });
    }

    fn step(&self) -> i64 {
        if self.nominal > 0 { self.nominal } else { self.last_dur.max(1) }
    }

    /// End of the last frame.
    fn end_pts(&self) -> i64 {
        self.last_pts + if self.count > 0 { self.step() } else { 0 }
    }

    fn duration_ms(&self, tb: AVRational) -> u64 {
        if self.count == 0 {
            return 0;
        }
        rescale(self.end_pts() - self.first_pts, tb, AVRational { num: 1, den: 1000 }).max(0) as u64
    }
}

fn send_or_drop(slot: &mut Option<Sender<Msg>>, msg: Msg) {
    if let Some(tx) = slot
        && tx.send(msg).is_err()
    {
        // The rendition's worker has stopped (it failed); its error comes out of join().
        *slot = None;
    }
}

fn dispatch_audio(pkt: &AVPacket, senders: &mut [Option<Sender<Msg>>]) {
    for slot in senders.iter_mut() {
        if slot.is_some()
            && let Some(p) = ff::packet_ref(pkt)
        {
            send_or_drop(slot, Msg::Audio(p));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Threads
// ---------------------------------------------------------------------------------------------

/// Frames queued per rendition. The decoder may run this far ahead of the slowest encoder it
/// feeds, and a rendition this far ahead of one it feeds (frames are shared, so this bounds
/// memory to roughly this many source frames, and as many scaled ones per rendition feeding
/// another).
/// Measured on 2 cores: 4 starves the small renditions, 16..32 are equal.
const QUEUE_FRAMES: usize = 16;

/// Upper bound of libx264 threads for one rendition (frame threading stops paying off).
const MAX_X264_THREADS: usize = 16;

/// How many threads each stage gets, and where each rendition's frames come from.
struct ThreadPlan {
    /// Decoder `threads` option.
    decoder: &'static str,
    /// libx264 `threads` per rendition.
    encoders: Vec<usize>,
    /// Frames queued per rendition.
    queue: usize,
    /// Per rendition, the rendition it is scaled from (`None`: from the source). See
    /// [`scaled_from`].
    scaled_from: Vec<Option<usize>>,
}

impl ThreadPlan {
    fn new(threads: usize, profiles: &[Profile], src_fps: Option<AVRational>, src_size: (u32, u32)) -> Self {
        let cores = if threads == 0 { thread::available_parallelism().map_or(1, |n| n.get()) } else { threads };
        let decoder = if cores <= 1 { "1" } else { "auto" };
        // Share the cores among the renditions by pixel rate. Each rendition already has its own
        // thread, so x264's frame threading only pays for a rendition whose share of the work is
        // above one core: it then gets ceil(share) threads, so that at the end of the segment,
        // when the small renditions are done, the big one's tail still uses every core. (On 2
        // cores with the 720p/480p/360p/240p ladder: 720p gets 2, the rest 1; measured ~8 %
        // faster than 1 thread each and than x264's auto threads.)
        let rate = |p: &Profile| -> f64 {
            let (w, h) = (f64::from(p.width), f64::from(p.height));
            let fps = p
                .fps_rational()
                .map(|(n, d)| f64::from(n) / f64::from(d))
                .or(src_fps.map(|q| f64::from(q.num) / f64::from(q.den.max(1))))
                .unwrap_or(30.0);
            w * h * fps
        };
        let total: f64 = profiles.iter().map(rate).sum::<f64>().max(1.0);
        let encoders = profiles
            .iter()
            .map(|p| {
                let share = rate(p) / total * cores as f64;
                ((share - 0.05).ceil().max(1.0) as usize).min(MAX_X264_THREADS)
            })
            .collect::<Vec<_>>();
        let scaled_from = scaled_from(profiles, src_size, src_fps);
        Self { decoder, encoders, queue: QUEUE_FRAMES, scaled_from }
    }
}

/// The profile's own frame rate, `None` for passthrough.
fn profile_rate(p: &Profile) -> Option<AVRational> {
    p.fps_rational().map(|(n, d)| AVRational { num: n as i32, den: d as i32 })
}

/// Cascade scaling: each rendition is scaled from the smallest other rendition that is at least
/// as large in both dimensions, is itself smaller than the source, and has the same frame rate;
/// a rendition with no such one is scaled from the source. Equal sizes go to the earlier
/// profile, so the relation has no cycles.
///
/// Horizontal scaling reads every line of its input, so scaling 480p, 360p and 240p each from a
/// 1080p frame costs more than the 720p rendition itself; from the next larger rendition it is
/// a third of that. Those steps use bicubic rather than bilinear: chained bilinear steps blur
/// (240p lost 0.008 SSIM against the source), bicubic ones keep every rung at or above the
/// quality of a bilinear scale from the source (measured with the ladder bench).
fn scaled_from(profiles: &[Profile], (sw, sh): (u32, u32), src_fps: Option<AVRational>) -> Vec<Option<usize>> {
    let n = profiles.len();
    if sw == 0 || sh == 0 {
        return vec![None; n];
    }
    let sizes: Vec<(u32, u32)> = profiles.iter().map(|p| p.output_size(sw, sh)).collect();
    let area = |(w, h): (u32, u32)| u64::from(w) * u64::from(h);
    let rate = |p: &Profile| profile_rate(p).or(src_fps).map(|q| f64::from(q.num) / f64::from(q.den.max(1)));
    let same_rate = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) => ((a - b) / b).abs() < 1e-4,
        (a, b) => a.is_none() && b.is_none(),
    };
    (0..n)
        .map(|i| {
            let target = sizes[i];
            (0..n)
                .filter(|&j| {
                    let from = sizes[j];
                    j != i
                        && from.0 >= target.0
                        && from.1 >= target.1
                        && (from != target || j < i)
                        && area(from) < area((sw, sh))
                        && same_rate(rate(&profiles[j]), rate(&profiles[i]))
                })
                .min_by_key(|&j| (area(sizes[j]), j))
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Rendition worker
// ---------------------------------------------------------------------------------------------

enum Msg {
    /// A frame to encode, and the size of the decoded frame it comes from (the rendition's
    /// size is computed from that one, whichever frame it is scaled from).
    Video {
        frame: AVFrame,
        source: (u32, u32),
    },
    Audio(AVPacket),
    End {
        end_pts: i64,
    },
    /// The deadline passed: stop at once, output nothing.
    Abort,
}

struct Job {
    profile: Profile,
    preset: CString,
    x264_threads: usize,
    /// Time base of the input video (and of the encoder).
    tb: AVRational,
    src_fps: Option<AVRational>,
    /// Fed by another rendition (scaled bicubic) rather than by the decoder (bilinear).
    from_rendition: bool,
    /// The renditions scaled from this one's frames: they get every message, in order.
    feeds: Vec<Sender<Msg>>,
    /// Checked before each frame is encoded, so a frame that has to be repeated many times
    /// or a long queue stops there too.
    deadline: Option<Instant>,
    audio: Option<(AVCodecParameters, AVRational)>,
}

/// Why a rendition's worker stopped without its rendition.
enum Stop {
    Failed(TranscodeError),
    /// A rendition fed from this one stopped; its own error is the one reported.
    FeedClosed,
}

impl From<TranscodeError> for Stop {
    fn from(e: TranscodeError) -> Self {
        Stop::Failed(e)
    }
}

fn past(deadline: Option<Instant>) -> bool {
    deadline.is_some_and(|d| Instant::now() >= d)
}

/// A rendition that stopped at the deadline after encoding `frames`.
fn late(frames: u64) -> Stop {
    Stop::Failed(TranscodeError::DeadlinePassed { frames })
}

fn run_rendition(job: Job, rx: Receiver<Msg>) -> Result<Rendition, Stop> {
    let mut w = Worker::new(job);
    let mut ended = false;
    for msg in rx.iter() {
        match msg {
            Msg::Video { frame, source } => w.video(frame, source)?,
            Msg::Audio(p) => w.audio(p)?,
            Msg::End { end_pts } => {
                ended = true;
                w.end(end_pts)?;
                // Let the fed renditions flush now, alongside this one's flush.
                for tx in std::mem::take(&mut w.job.feeds) {
                    let _ = tx.send(Msg::End { end_pts });
                }
            }
            Msg::Abort => {
                for tx in &w.job.feeds {
                    let _ = tx.send(Msg::Abort);
                }
                return Err(late(w.frames));
            }
        }
    }
    if past(w.job.deadline) {
        return Err(late(w.frames));
    }
    if w.job.from_rendition && !ended {
        // The rendition feeding this one failed: its error is the one reported.
        return Err(Stop::FeedClosed);
    }
    w.finish()
}

struct Encoder {
    enc: AVCodecContext,
    out: ff::MemoryOutput,
    width: u32,
    height: u32,
    video_out_tb: AVRational,
    audio_out_tb: Option<AVRational>,
    sws: Option<(SwsContext, (i32, i32, i32))>,
    /// Scaled frames for reuse: one is free again once the encoder and the fed renditions have
    /// let go of it.
    scaled: Vec<AVFrame>,
}

struct Worker {
    job: Job,
    /// Frame-rate conversion, `None` for passthrough.
    conv: Option<FpsConverter>,
    held: Option<(AVFrame, (u32, u32))>,
    enc: Option<Encoder>,
    pending_audio: Vec<AVPacket>,
    frames: u64,
    packets: u64,
    last_pts: Option<i64>,
    slots: Vec<i64>,
}

fn ffmpeg_err(what: &str, name: &str, e: &RsmpegError) -> TranscodeError {
    TranscodeError::Ffmpeg(format!("{name}: {what}: {}", rsmpeg_err(e)))
}

impl Worker {
    fn new(job: Job) -> Self {
        let conv = job.profile.fps_rational().and_then(|(n, d)| {
            let same = job.src_fps.is_some_and(|q| {
                let src = f64::from(q.num) / f64::from(q.den);
                let dst = f64::from(n) / f64::from(d);
                ((src - dst) / dst).abs() < 1e-4
            });
            if same { None } else { FpsConverter::new((job.tb.num, job.tb.den), (n, d)) }
        });
        Self {
            job,
            conv,
            held: None,
            enc: None,
            pending_audio: Vec::new(),
            frames: 0,
            packets: 0,
            last_pts: None,
            slots: Vec::new(),
        }
    }

    fn video(&mut self, frame: AVFrame, source: (u32, u32)) -> Result<(), Stop> {
        let Some(conv) = self.conv.as_mut() else {
            let mut pts = frame.pts;
            if let Some(last) = self.last_pts
                && pts <= last
            {
                pts = last + 1;
            }
            return self.emit(&frame, source, &[pts]);
        };
        let mut slots = std::mem::take(&mut self.slots);
        slots.clear();
        conv.push(frame.pts, &mut slots);
        let prev = self.held.replace((frame, source));
        let r = match prev {
            Some((prev, source)) if !slots.is_empty() => self.emit(&prev, source, &slots),
            _ => Ok(()),
        };
        self.slots = slots;
        r
    }

    fn end(&mut self, end_pts: i64) -> Result<(), Stop> {
        let (Some(conv), Some((held, source))) = (self.conv.as_mut(), self.held.take()) else {
            return Ok(());
        };
        let mut slots = Vec::new();
        conv.finish(end_pts, &mut slots);
        self.emit(&held, source, &slots)
    }

    fn audio(&mut self, pkt: AVPacket) -> Result<(), Stop> {
        feed(&self.job.feeds, || ff::packet_ref(&pkt).map(Msg::Audio))?;
        match self.enc.as_mut() {
            Some(enc) => write_audio(enc, pkt, self.job.audio.as_ref().map(|a| a.1)),
            None => self.pending_audio.push(pkt),
        }
        Ok(())
    }

    /// Encodes `frame` once per timestamp in `pts` (and hands it, scaled, to the renditions fed
    /// from this one before encoding it, so that they work meanwhile).
    fn emit(&mut self, frame: &AVFrame, source: (u32, u32), pts: &[i64]) -> Result<(), Stop> {
        if pts.is_empty() {
            return Ok(());
        }
        if self.enc.is_none() {
            let enc = self.open_encoder(frame, source)?;
            self.enc = Some(enc);
            let pending = std::mem::take(&mut self.pending_audio);
            let audio_tb = self.job.audio.as_ref().map(|a| a.1);
            if let Some(enc) = self.enc.as_mut() {
                for p in pending {
                    write_audio(enc, p, audio_tb);
                }
            }
        }
        let name = self.job.profile.name.as_str();
        let Some(enc) = self.enc.as_mut() else {
            return Ok(());
        };
        let needs_scale = frame.width != enc.width as i32
            || frame.height != enc.height as i32
            || frame.format != ffi::AVPixelFormat_AV_PIX_FMT_YUV420P;
        let flags = if self.job.from_rendition { ffi::SWS_BICUBIC } else { ffi::SWS_BILINEAR };
        let mut pic = if needs_scale {
            scale(enc, frame, flags).map_err(|m| TranscodeError::Ffmpeg(format!("{name}: {m}")))?
        } else {
            frame.clone()
        };
        for &p in pts {
            if past(self.job.deadline) {
                return Err(late(self.frames));
            }
            pic.set_pts(p);
            feed(&self.job.feeds, || Some(Msg::Video { frame: pic.clone(), source }))?;
            pic.set_pict_type(if self.frames == 0 {
                ffi::AVPictureType_AV_PICTURE_TYPE_I
            } else {
                ffi::AVPictureType_AV_PICTURE_TYPE_NONE
            });
            self.last_pts = Some(p);
            send_frame(enc, Some(&pic), name, &mut self.packets)?;
            self.frames += 1;
        }
        if needs_scale {
            // Keep the buffer for a later frame (the encoder has taken its own copy).
            enc.scaled.push(pic);
        }
        Ok(())
    }

    fn open_encoder(&self, frame: &AVFrame, (src_w, src_h): (u32, u32)) -> Result<Encoder, TranscodeError> {
        let p = &self.job.profile;
        let name = p.name.as_str();
        let (width, height) = p.output_size(src_w, src_h);
        let codec = AVCodec::find_encoder_by_name(c"libx264")
            .ok_or_else(|| TranscodeError::Ffmpeg("libx264 is not available".into()))?;
        let mut enc = AVCodecContext::new(&codec);
        enc.set_width(width as i32);
        enc.set_height(height as i32);
        enc.set_pix_fmt(ffi::AVPixelFormat_AV_PIX_FMT_YUV420P);
        enc.set_time_base(self.job.tb);
        let rate = profile_rate(p).or(self.job.src_fps);
        if let Some(r) = rate {
            enc.set_framerate(r);
        }
        if valid_q(frame.sample_aspect_ratio) {
            enc.set_sample_aspect_ratio(frame.sample_aspect_ratio);
        }
        enc.set_bit_rate(i64::from(p.bitrate));

        let num = |v: i64| CString::new(v.to_string()).unwrap_or_default();
        let br = num(i64::from(p.bitrate));
        let mut opts = AVDictionary::new(c"preset", &self.job.preset, 0)
            .set(c"threads", &num(self.job.x264_threads as i64), 0)
            .set(c"minrate", &br, 0)
            .set(c"maxrate", &br, 0)
            .set(c"bufsize", &br, 0);
        if let Some(profile) = p.profile.x264_profile() {
            let profile = CString::new(profile).unwrap_or_default();
            opts = opts.set(c"profile", &profile, 0);
        }
        if p.profile.no_b_frames() {
            opts = opts.set(c"bf", c"0", 0);
        }
        if p.gop_ms > 0 {
            let fps = rate.filter(|r| valid_q(*r)).map(|r| f64::from(r.num) / f64::from(r.den)).unwrap_or(30.0);
            let gop = ((f64::from(p.gop_ms) / 1000.0 * fps).round() as i64).max(1);
            opts = opts.set(c"g", &num(gop), 0).set(c"keyint_min", &num(gop), 0).set(c"sc_threshold", c"0", 0).set(
                c"forced-idr",
                c"1",
                0,
            );
        }
        // Carry the source's colour description (scaling does not change it).
        for (key, v, unspecified) in [
            (c"color_primaries", frame.color_primaries as i64, 2),
            (c"color_trc", frame.color_trc as i64, 2),
            (c"colorspace", frame.colorspace as i64, 2),
        ] {
            if v != unspecified && v > 0 {
                opts = opts.set(key, &num(v), 0);
            }
        }
        ff::open_codec(&mut enc, opts)
            .map_err(|e| TranscodeError::Ffmpeg(format!("{name}: cannot open libx264: {}", ff::err_str(e))))?;

        let mut out =
            ff::MemoryOutput::mpegts((u64::from(p.bitrate) / 8 * 3).clamp(64 * 1024, 64 * 1024 * 1024) as usize)
                .map_err(|m| TranscodeError::Ffmpeg(format!("{name}: {m}")))?;
        {
            let mut st = out.ctx.new_stream();
            st.set_codecpar(enc.extract_codecpar());
            st.set_time_base(self.job.tb);
        }
        if let Some((params, tb)) = &self.job.audio {
            let mut st = out.ctx.new_stream();
            st.set_codecpar(params.clone());
            st.set_time_base(*tb);
        }
        out.ctx.write_header(&mut None).map_err(|e| ffmpeg_err("cannot start the MPEG-TS muxer", name, &e))?;
        let streams = out.ctx.streams();
        let video_out_tb = streams.get(0).map(|s| s.time_base).unwrap_or(AVRational { num: 1, den: 90000 });
        let audio_out_tb = if self.job.audio.is_some() { streams.get(1).map(|s| s.time_base) } else { None };
        tracing::debug!(rendition = name, width, height, threads = self.job.x264_threads, "encoder opened");
        Ok(Encoder { enc, out, width, height, video_out_tb, audio_out_tb, sws: None, scaled: Vec::new() })
    }

    fn finish(mut self) -> Result<Rendition, Stop> {
        // Input ended without an End message (the transcode failed elsewhere): show what is held.
        if let (Some((held, source)), Some(conv)) = (self.held.take(), self.conv.as_mut()) {
            let mut slots = Vec::new();
            conv.finish(i64::MIN / 4, &mut slots);
            self.emit(&held, source, &slots)?;
        }
        let name = self.job.profile.name.clone();
        let Some(mut enc) = self.enc.take() else {
            return Err(TranscodeError::InvalidInput("no video frame could be decoded".into()).into());
        };
        send_frame(&mut enc, None, &name, &mut self.packets)?;
        enc.out.ctx.write_trailer().map_err(|e| ffmpeg_err("cannot finish the MPEG-TS output", &name, &e))?;
        if self.packets != self.frames {
            tracing::warn!(
                rendition = name.as_str(),
                frames = self.frames,
                packets = self.packets,
                "encoder returned a different number of packets than frames"
            );
        }
        let (width, height) = (enc.width, enc.height);
        let data = enc.out.into_bytes();
        Ok(Rendition {
            name,
            width,
            height,
            frames: self.frames,
            pixels: u64::from(width) * u64::from(height) * self.frames,
            data,
        })
    }
}

/// Hands a message to every rendition fed from `feeds`.
fn feed(feeds: &[Sender<Msg>], msg: impl Fn() -> Option<Msg>) -> Result<(), Stop> {
    for tx in feeds {
        if let Some(m) = msg()
            && tx.send(m).is_err()
        {
            return Err(Stop::FeedClosed);
        }
    }
    Ok(())
}

/// Scales `frame` into the encoder's size as YUV 4:2:0 with `flags` (`SWS_BILINEAR`, ...),
/// into a frame of `enc.scaled` that nothing references any more, else a new one.
fn scale(enc: &mut Encoder, frame: &AVFrame, flags: u32) -> Result<AVFrame, String> {
    let key = (frame.width, frame.height, frame.format);
    if enc.sws.as_ref().is_none_or(|(_, k)| *k != key) {
        let ctx = SwsContext::get_context(
            frame.width,
            frame.height,
            frame.format,
            enc.width as i32,
            enc.height as i32,
            ffi::AVPixelFormat_AV_PIX_FMT_YUV420P,
            flags,
        )
        .ok_or_else(|| {
            format!(
                "cannot scale {}x{} (pixel format {}) to {}x{}",
                frame.width, frame.height, frame.format, enc.width, enc.height
            )
        })?;
        enc.sws = Some((ctx, key));
    }
    let mut dst = match enc.scaled.iter().position(|f| f.is_writable() == Ok(true)) {
        Some(i) => enc.scaled.swap_remove(i),
        None => {
            let mut f = AVFrame::new();
            f.set_width(enc.width as i32);
            f.set_height(enc.height as i32);
            f.set_format(ffi::AVPixelFormat_AV_PIX_FMT_YUV420P);
            f.alloc_buffer().map_err(|e| format!("cannot allocate a frame: {e}"))?;
            f
        }
    };
    let Some((sws, _)) = enc.sws.as_mut() else {
        return Err("no scaler".into());
    };
    sws.scale_frame(frame, 0, frame.height, &mut dst).map_err(|e| format!("scaling failed: {}", rsmpeg_err(&e)))?;
    // What the encoder of a rendition fed from this one reads from its first frame.
    ff::copy_picture_props(&mut dst, frame);
    Ok(dst)
}

/// Sends a frame (`None` = flush) to the encoder and muxes every packet that comes out.
fn send_frame(enc: &mut Encoder, frame: Option<&AVFrame>, name: &str, packets: &mut u64) -> Result<(), TranscodeError> {
    match enc.enc.send_frame(frame) {
        Ok(()) | Err(RsmpegError::EncoderFlushedError) => {}
        Err(e) => return Err(ffmpeg_err("encoding failed", name, &e)),
    }
    loop {
        match enc.enc.receive_packet() {
            Ok(mut pkt) => {
                pkt.rescale_ts(enc.enc.time_base, enc.video_out_tb);
                pkt.set_stream_index(0);
                enc.out.ctx.interleaved_write_frame(&mut pkt).map_err(|e| match e {
                    // The interleaving queue also holds the audio copied from the input: bad
                    // data there is the segment's fault, and no other attempt can fix it.
                    RsmpegError::InterleavedWriteFrameError(ffi::AVERROR_INVALIDDATA) => {
                        invalid(format!("{name}: the segment cannot be muxed: {}", rsmpeg_err(&e)))
                    }
                    e => ffmpeg_err("muxing video failed", name, &e),
                })?;
                *packets += 1;
            }
            Err(RsmpegError::EncoderDrainError | RsmpegError::EncoderFlushedError) => break,
            Err(e) => return Err(ffmpeg_err("encoding failed", name, &e)),
        }
    }
    Ok(())
}

fn write_audio(enc: &mut Encoder, mut pkt: AVPacket, in_tb: Option<AVRational>) {
    let (Some(in_tb), Some(out_tb)) = (in_tb, enc.audio_out_tb) else {
        return;
    };
    if pkt.pts == ffi::AV_NOPTS_VALUE && pkt.dts == ffi::AV_NOPTS_VALUE {
        return;
    }
    pkt.rescale_ts(in_tb, out_tb);
    pkt.set_stream_index(1);
    pkt.set_pos(-1);
    if let Err(e) = enc.out.ctx.interleaved_write_frame(&mut pkt) {
        tracing::debug!(error = %rsmpeg_err(&e), "dropped an audio packet");
    }
}

#[cfg(test)]
mod plan_tests {
    use super::*;
    use crate::bench::{LIVEPEER_BENCH_LADDER, ladder};

    const FPS30: Option<AVRational> = Some(AVRational { num: 30, den: 1 });

    /// livepeer_bench's ladder from 1080p: each rung from the next larger one, in any order.
    #[test]
    fn each_rendition_is_scaled_from_the_next_larger_one() {
        let profiles = ladder(&LIVEPEER_BENCH_LADDER);
        assert_eq!(scaled_from(&profiles, (1920, 1080), FPS30), [None, Some(0), Some(1), Some(2)]);
        let reversed: Vec<Profile> = profiles.iter().rev().cloned().collect();
        assert_eq!(scaled_from(&reversed, (1920, 1080), FPS30), [Some(1), Some(2), Some(3), None]);
        // A portrait source: the boxes still nest.
        assert_eq!(scaled_from(&profiles, (1080, 1920), FPS30), [None, Some(0), Some(1), Some(2)]);
    }

    /// A rendition as large as the source is the source's frame, not a smaller copy of it: the
    /// next one down is scaled from the source itself.
    #[test]
    fn a_rendition_the_size_of_the_source_feeds_nothing() {
        let profiles = ladder(&LIVEPEER_BENCH_LADDER);
        assert_eq!(scaled_from(&profiles, (1280, 720), FPS30), [None, None, Some(1), Some(2)]);
        // Smaller than every rung: every rendition is an upscale of the source.
        assert_eq!(scaled_from(&profiles, (320, 180), FPS30), [None; 4]);
        // No size known before decoding: all from the source.
        assert_eq!(scaled_from(&profiles, (0, 0), FPS30), [None; 4]);
    }

    /// Frames are handed on after the frame-rate conversion, so only renditions at the same
    /// rate chain; an equal size is handed on unscaled to the later profile.
    #[test]
    fn only_renditions_at_the_same_rate_chain() {
        let mut profiles = ladder(&LIVEPEER_BENCH_LADDER[..3]);
        profiles[1].fps = 15;
        assert_eq!(scaled_from(&profiles, (1920, 1080), FPS30), [None, None, Some(0)]);
        profiles[0].fps = 15;
        assert_eq!(scaled_from(&profiles, (1920, 1080), FPS30), [None, Some(0), None]);
        // Passthrough and the source's own rate written out are the same rate.
        profiles[2].fps = 30;
        profiles[0].fps = 0;
        profiles[1].fps = 0;
        assert_eq!(scaled_from(&profiles, (1920, 1080), FPS30), [None, Some(0), Some(1)]);

        let mut twins = ladder(&[("a", 854, 480, 1600), ("b", 854, 480, 800), ("c", 1280, 720, 3000)]);
        assert_eq!(scaled_from(&twins, (1920, 1080), FPS30), [Some(2), Some(0), None]);
        twins[2].fps = 60;
        assert_eq!(scaled_from(&twins, (1920, 1080), FPS30), [None, Some(0), None]);
    }
}

#[cfg(test)]
mod probe_tests {
    use super::*;

    /// Encode `video` (lavfi source options) for 2 s with the ffmpeg CLI, with `extra` output
    /// options, into MPEG-TS.
    fn segment(dir: &std::path::Path, name: &str, video: &str, extra: &[&str]) -> Vec<u8> {
        let path = dir.join(name);
        let mut args = vec!["-f", "lavfi", "-i", video, "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100"];
        args.extend(["-t", "2", "-c:v", "libx264", "-pix_fmt", "yuv420p"]);
        args.extend(extra);
        args.push(path.to_str().unwrap());
        lp_testkit::media::ffmpeg(&args);
        std::fs::read(path).unwrap()
    }

    /// Read from the packets alone, a segment gives what FFmpeg's stream-info pass gives: with
    /// B-frames (pts out of decode order), at 29.97 fps, with AAC, AC-3 or MP3 audio, or none,
    /// and a size that is not a whole number of macroblocks (the SPS's cropping, in 4:2:0 and in
    /// 4:4:4, whose crop units differ).
    #[test]
    fn the_packets_alone_give_what_the_stream_info_pass_gives() {
        let dir = tempfile::tempdir().unwrap();
        let cases: [(&str, &str, &[&str]); 7] = [
            ("cropped.ts", "testsrc2=size=318x178:rate=30", &["-an"]),
            ("yuv444.ts", "testsrc2=size=317x177:rate=30", &["-an", "-pix_fmt", "yuv444p", "-profile:v", "high444"]),
            ("aac.ts", "testsrc2=size=640x360:rate=30", &["-c:a", "aac", "-g", "30"]),
            ("bframes.ts", "testsrc2=size=640x360:rate=30000/1001", &["-profile:v", "main", "-bf", "3", "-c:a", "aac"]),
            ("ac3.ts", "testsrc2=size=320x180:rate=25", &["-c:a", "ac3"]),
            ("mp3.ts", "testsrc2=size=320x180:rate=24", &["-c:a", "libmp3lame"]),
            ("video.ts", "testsrc2=size=320x180:rate=60", &["-an"]),
        ];
        for (name, video, extra) in cases {
            let data = segment(dir.path(), name, video, extra);
            let scan = ts::scan(&data).unwrap_or_else(|| panic!("{name}: not scanned"));
            let lean = probe_scanned(&scan).unwrap_or_else(|| panic!("{name}: not probed from the scan"));
            let full = probe_full(&data, InputFormat::MpegTs).unwrap();
            assert_eq!(format!("{lean:?}"), format!("{full:?}"), "{name}");
            assert!(lean.fps > 20.0 && lean.duration_ms >= 1900, "{name}: {lean:?}");
        }
    }

    /// A gap longer than `MAX_FILL_SECS` counts as one frame; one of exactly that long is
    /// media (a slide shown for 10 s); the order of the timestamps does not matter.
    #[test]
    fn a_segments_media_leaves_out_its_timestamp_jumps() {
        let s = 90_000;
        assert_eq!(media_ticks(&[], 3000, 3000, MPEGTS_TB), 0);
        assert_eq!(media_ticks(&[7], 3000, 3000, MPEGTS_TB), 3000);
        assert_eq!(media_ticks(&[6000, 0, 3000], 3000, 1000, MPEGTS_TB), 7000);
        assert_eq!(media_ticks(&[0, 3000, 3000 + 10 * s], 3000, 3000, MPEGTS_TB), 6000 + 10 * s);
        assert_eq!(media_ticks(&[0, 3000, 3001 + 10 * s, 6001 + 10 * s], 3000, 3000, MPEGTS_TB), 4 * 3000);
        // A frame rate is never a jump: the most common gap at most 10 s long.
        assert_eq!(frame_ticks(&[0, 100 * s, 200 * s, 200 * s + 3000]), Some(3000));
        assert_eq!(frame_ticks(&[0, 100 * s, 200 * s]), None);
    }

    /// Everything a transcode reads of its source, opened from the scan or with the
    /// stream-info pass: the streams, their parameters and every packet the demuxer hands out;
    /// and the timestamps of the frames its decoder gives.
    fn read_source(data: &[u8], known: Option<&Scanned>) -> (String, Vec<String>, Vec<i64>) {
        let mut src = Source::open(data, InputFormat::MpegTs, known).unwrap();
        let video_delay = src.ictx.streams().get(src.video).unwrap().codecpar().video_delay;
        let q = |r: AVRational| (r.num, r.den);
        let audio = src.audio_copy.as_ref().map(|a| {
            let p = &a.params;
            (a.index, q(a.time_base), p.codec_id, p.sample_rate, p.ch_layout.nb_channels, p.profile, p.frame_size)
        });
        let params = format!(
            "video {} {:?} delay {video_delay} fps {:?} size {:?} {} audio {} {:?} {:?}",
            src.video,
            q(src.video_tb),
            src.fps.map(q),
            src.size,
            src.codec_name,
            src.has_audio,
            audio,
            src.audio_codec
        );
        let mut dec = src.open_decoder("auto", None).unwrap();
        let (mut packets, mut frames, mut stats) = (Vec::new(), Vec::new(), DecodeStats::default());
        while let Ok(Some(p)) = src.ictx.read_packet() {
            let mut bytes = std::hash::DefaultHasher::new();
            std::hash::Hash::hash(ff::packet_data(&p), &mut bytes);
            let bytes = std::hash::Hasher::finish(&bytes);
            packets.push(format!("{} {} {} {} {} {bytes}", p.stream_index, p.pts, p.dts, p.duration, p.flags));
            if p.stream_index as usize == src.video {
                decode_packet(&mut dec, Some(&p), &mut stats, &mut |f| frames.push(f.best_effort_timestamp));
            }
        }
        decode_packet(&mut dec, None, &mut stats, &mut |f| frames.push(f.best_effort_timestamp));
        (params, packets, frames)
    }

    /// A transcode opens an MPEG-TS segment from the scan, without FFmpeg's stream-info pass,
    /// and finds what that pass finds: frame rates NTSC's and others, B-frames or none, AAC at
    /// several rates and channel counts, or no audio; the demuxer then hands out the same
    /// packets. AC-3 and MP3, whose parameters the scan does not read, take the full way.
    #[test]
    fn a_transcode_opens_from_the_scan_what_the_stream_info_pass_finds() {
        let dir = tempfile::tempdir().unwrap();
        let cases: [(&str, &str, &[&str], bool); 8] = [
            ("bframes.ts", "testsrc2=size=640x360:rate=30000/1001", &["-bf", "3", "-c:a", "aac"], true),
            ("no-bframes.ts", "testsrc2=size=640x360:rate=30", &["-bf", "0", "-c:a", "aac", "-ac", "1"], true),
            ("ntsc60.ts", "testsrc2=size=320x180:rate=60000/1001", &["-c:a", "aac", "-ar", "48000"], true),
            ("film.ts", "testsrc2=size=318x178:rate=24000/1001", &["-c:a", "aac", "-ac", "6"], true),
            ("pal.ts", "testsrc2=size=320x180:rate=25", &["-an"], true),
            ("slow.ts", "testsrc2=size=320x180:rate=12.5", &["-an", "-g", "25"], true),
            ("ac3.ts", "testsrc2=size=320x180:rate=25", &["-c:a", "ac3"], false),
            ("mp3.ts", "testsrc2=size=320x180:rate=24", &["-c:a", "libmp3lame"], false),
        ];
        for (name, video, extra, scanned) in cases {
            let data = segment(dir.path(), name, video, extra);
            let known = ts::scan(&data).as_ref().and_then(Scanned::of);
            assert_eq!(known.is_some(), scanned, "{name}: opened from the scan");
            let Some(known) = known else { continue };
            let (lean, lean_packets, lean_frames) = read_source(&data, Some(&known));
            let (full, full_packets, full_frames) = read_source(&data, None);
            assert_eq!(lean, full, "{name}");
            assert_eq!(lean_frames, full_frames, "{name}: the decoded frames");
            assert!(lean_frames.len() >= 24, "{name}: {} frames", lean_frames.len());
            assert_eq!(lean_packets.len(), full_packets.len(), "{name}");
            for (i, (a, b)) in lean_packets.iter().zip(&full_packets).enumerate() {
                assert_eq!(a, b, "{name}: packet {i}");
            }
        }
    }

    #[test]
    fn reorder_depth_and_pictures_come_from_the_packets() {
        assert_eq!(reorder_depth(&[0, 3000, 6000, 9000]), 0, "no B-frames");
        assert_eq!(reorder_depth(&[0, 9000, 3000, 6000]), 1, "I P B B");
        assert_eq!(reorder_depth(&[0, 12000, 6000, 3000, 9000]), 2, "a B-pyramid");
        assert_eq!(reorder_depth(&[]), 0);
        let aud = [0, 0, 0, 1, 0x09, 0xf0];
        let idr = [0, 0, 1, 0x65, 0x88, 0x84];
        let second_slice = [0, 0, 1, 0x65, 0x40, 0x21];
        let p = [0, 0, 1, 0x41, 0x9a, 0x02];
        assert_eq!(pictures_in(&[&aud[..], &idr, &second_slice].concat()), 1);
        assert_eq!(pictures_in(&[&aud[..], &idr, &aud, &p].concat()), 2, "two access units in one PES");
        assert_eq!(pictures_in(&aud), 0);
    }

    /// A segment whose video PES packets each carry two frames (one in two PES without a
    /// timestamp, as a muxer may write them) is left to the stream-info pass.
    #[test]
    fn video_pes_packets_without_a_timestamp_are_left_to_the_stream_info_pass() {
        let mut scan = ts::scan(&lp_testkit::media::segment()).unwrap();
        assert!(Scanned::of(&scan).is_some());
        scan.video_pes += 1;
        assert!(Scanned::of(&scan).is_none());
    }

    /// A rate the stream-info path would refuse (above 1000 fps) is left to that path.
    #[test]
    fn a_frame_rate_above_1000_is_left_to_the_stream_info_pass() {
        let mut scan = ts::scan(&lp_testkit::media::segment()).unwrap();
        assert!(Scanned::of(&scan).is_some());
        scan.video_pts = (0..30).collect();
        assert!(Scanned::of(&scan).is_none(), "90 000 fps");
    }

    #[test]
    fn frame_rates_are_named_as_the_stream_info_pass_names_them() {
        let q = |r: AVRational| (r.num, r.den);
        assert_eq!(q(rate_of_gap(3003)), (30000, 1001));
        assert_eq!(q(rate_of_gap(1501)), (60000, 1001));
        assert_eq!(q(rate_of_gap(1502)), (60000, 1001));
        assert_eq!(q(rate_of_gap(3754)), (24000, 1001));
        assert_eq!(q(rate_of_gap(3000)), (30, 1));
        assert_eq!(q(rate_of_gap(1500)), (60, 1));
        assert_eq!(q(rate_of_gap(7200)), (25, 2));
        assert_eq!(q(rate_of_gap(90_000 * 3)), (1, 3));
    }

    /// What the packets cannot tell (a frame rate from one frame) is probed the full way.
    #[test]
    fn a_single_frame_is_probed_the_full_way() {
        let dir = tempfile::tempdir().unwrap();
        let path = lp_testkit::media::one_frame_with_audio(dir.path(), "one.ts");
        let data = std::fs::read(path).unwrap();
        assert!(ts::scan(&data).and_then(|s| probe_scanned(&s)).is_none(), "no frame rate in one frame");
        let info = probe(&data, InputFormat::MpegTs).unwrap();
        assert_eq!(format!("{info:?}"), format!("{:?}", probe_full(&data, InputFormat::MpegTs).unwrap()));
    }
}
