//! Cutting a live H.264/AAC stream (RTMP's packets: AVCC NAL units and raw AAC frames, with
//! millisecond timestamps) into self-contained MPEG-TS segments for the gateway.
//!
//! [`Segmenter`] owns the packets of the segment being built and decides where segments end:
//! at the first video keyframe at or after [`SegmenterSettings::segment_ms`] since the
//! segment's first video frame, or at the first keyframe after the codec configuration changed.
//! It is plain Rust (no FFmpeg), so the caller may run it on its async thread;
//! [`CutSegment::to_mpegts`] is the FFmpeg part (run it on a blocking thread). Each segment is
//! muxed by its own MPEG-TS muxer, so it starts with PAT/PMT, and FFmpeg's automatic bitstream
//! filters turn the AVCC video into Annex B with the SPS/PPS before the first IDR and the AAC
//! into ADTS; timestamps are the source's, so they run on across segments.
//!
//! Durations are exact: a segment lasts from its first video frame's dts to the next segment's
//! (the last one, to its last frame's dts plus one frame interval).
//!
//! Bounds: a segment that grows past [`SegmenterSettings::max_segment_ms`] of media (no
//! keyframe in that long, or audio without video) or [`SegmenterSettings::max_segment_bytes`]
//! is an error; so is that much media before the first keyframe. Packets before the first
//! keyframe (nothing could decode them) are dropped, and so are packets whose dts does not move
//! forward within their track (the muxer would refuse them); a video clock that goes back by
//! more than a second is an error.

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use rsmpeg::avutil::AVRational;
use rsmpeg::ffi;

use crate::error::{SegmenterError, TranscodeError};
use crate::ffi as ff;

/// How far (ms) a video frame's dts may go back and be merely dropped; further back, the
/// stream's clock was reset and its segments could not follow on from each other.
const MAX_STEP_BACK_MS: i64 = 1000;

/// Where segments are cut, and how large one may grow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmenterSettings {
    /// Cut at the first keyframe at least this long (ms) after the segment's start.
    pub segment_ms: u64,
    /// The most media (ms) a segment, or the wait for the first keyframe, may hold.
    pub max_segment_ms: u64,
    /// The most bytes of packets a segment may hold.
    pub max_segment_bytes: u64,
}

/// An AAC stream's configuration (an MPEG-4 AudioSpecificConfig) and what it says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AacConfig {
    pub asc: Bytes,
    pub sample_rate: u32,
    pub channels: u32,
}

impl AacConfig {
    /// Read an AudioSpecificConfig (ISO 14496-3 1.6.2.1): object type, sampling frequency,
    /// channel configuration.
    pub fn parse(asc: Bytes) -> Result<AacConfig, SegmenterError> {
        const RATES: [u32; 13] =
            [96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350];
        let bad = |why: &str| SegmenterError::BadConfig(format!("AAC AudioSpecificConfig: {why}"));
        let mut bits = Bits::new(&asc);
        let mut object_type = bits.read(5).ok_or_else(|| bad("too short"))?;
        if object_type == 31 {
            object_type = 32 + bits.read(6).ok_or_else(|| bad("too short"))?;
        }
        if object_type == 0 {
            return Err(bad("object type 0"));
        }
        let index = bits.read(4).ok_or_else(|| bad("too short"))?;
        let sample_rate = match index {
            15 => bits.read(24).ok_or_else(|| bad("too short"))?,
            i => *RATES.get(i as usize).ok_or_else(|| bad(&format!("sampling frequency index {i}")))?,
        };
        let channels = match bits.read(4).ok_or_else(|| bad("too short"))? {
            0 => 2, // defined in a program config element; stereo is what encoders put there
            7 => 8,
            c @ 1..=6 => c,
            c => return Err(bad(&format!("channel configuration {c}"))),
        };
        if sample_rate == 0 {
            return Err(bad("sampling frequency 0"));
        }
        Ok(AacConfig { asc, sample_rate, channels })
    }
}

struct Bits<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Bits<'a> {
    fn new(data: &'a [u8]) -> Self {
        Bits { data, pos: 0 }
    }

    fn read(&mut self, n: usize) -> Option<u32> {
        let mut v = 0u32;
        for _ in 0..n {
            let byte = *self.data.get(self.pos / 8)?;
            v = (v << 1) | u32::from((byte >> (7 - self.pos % 8)) & 1);
            self.pos += 1;
        }
        Some(v)
    }
}

/// Check an AVCDecoderConfigurationRecord (ISO 14496-15 5.2.4.1) enough for FFmpeg to use it:
/// version 1, and at least one SPS whose length fits.
fn check_avcc(avcc: &[u8]) -> Result<(), SegmenterError> {
    let bad = |why: &str| SegmenterError::BadConfig(format!("H.264 AVCDecoderConfigurationRecord: {why}"));
    if avcc.len() < 8 {
        return Err(bad("too short"));
    }
    if avcc[0] != 1 {
        return Err(bad(&format!("version {}", avcc[0])));
    }
    if avcc[5] & 0x1f == 0 {
        return Err(bad("no SPS"));
    }
    let sps_len = usize::from(u16::from_be_bytes([avcc[6], avcc[7]]));
    if sps_len == 0 || avcc.len() < 8 + sps_len {
        return Err(bad("truncated SPS"));
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Track {
    Video { keyframe: bool },
    Audio,
}

#[derive(Debug, Clone)]
struct Packet {
    track: Track,
    dts: i64,
    pts: i64,
    data: Bytes,
}

/// A finished segment, not yet muxed.
#[derive(Debug, Clone)]
pub struct CutSegment {
    /// Its number in the stream, from 0.
    pub seq: u64,
    /// Exact duration, in milliseconds.
    pub duration_ms: u64,
    /// Wall-clock time of its first video frame.
    pub start: SystemTime,
    /// dts (ms) of its first video frame.
    pub first_dts: i64,
    video: Bytes,
    audio: Option<AacConfig>,
    packets: Vec<Packet>,
}

impl CutSegment {
    /// Video frames in the segment.
    pub fn video_frames(&self) -> usize {
        self.packets.iter().filter(|p| matches!(p.track, Track::Video { .. })).count()
    }

    /// Bytes of packets in the segment.
    pub fn bytes(&self) -> usize {
        self.packets.iter().map(|p| p.data.len()).sum()
    }

    /// The segment as MPEG-TS (video, and the AAC audio if the stream has it). A packet the
    /// muxer refuses (malformed NAL units) is left out; a segment none of whose video could be
    /// muxed is [`TranscodeError::InvalidInput`].
    pub fn to_mpegts(&self) -> Result<Vec<u8>, TranscodeError> {
        ff::init_logging();
        let ms = AVRational { num: 1, den: 1000 };
        let fail = |what: &str, e: &dyn std::fmt::Display| TranscodeError::Ffmpeg(format!("segmenter: {what}: {e}"));
        let mut out =
            ff::MemoryOutput::mpegts(self.bytes() + self.bytes() / 8 + 4096).map_err(|e| fail("muxer", &e))?;
        let video =
            ff::codec_params(ffi::AVMediaType_AVMEDIA_TYPE_VIDEO, ffi::AVCodecID_AV_CODEC_ID_H264, &self.video, None)
                .map_err(|e| fail("video parameters", &e))?;
        {
            let mut st = out.ctx.new_stream();
            st.set_codecpar(video);
            st.set_time_base(ms);
        }
        if let Some(a) = &self.audio {
            let audio = ff::codec_params(
                ffi::AVMediaType_AVMEDIA_TYPE_AUDIO,
                ffi::AVCodecID_AV_CODEC_ID_AAC,
                &a.asc,
                Some((a.sample_rate, a.channels)),
            )
            .map_err(|e| fail("audio parameters", &e))?;
            let mut st = out.ctx.new_stream();
            st.set_codecpar(audio);
            st.set_time_base(ms);
        }
        out.ctx.write_header(&mut None).map_err(|e| fail("cannot start the MPEG-TS muxer", &e))?;
        let tbs: Vec<AVRational> = out.ctx.streams().into_iter().map(|s| s.time_base).collect();
        let (mut written, mut dropped) = (0usize, 0usize);
        for p in &self.packets {
            let (index, key) = match p.track {
                Track::Video { keyframe } => (0, keyframe),
                Track::Audio if self.audio.is_some() => (1, true),
                Track::Audio => continue,
            };
            let Some(mut pkt) = ff::packet_from(&p.data) else {
                return Err(TranscodeError::Ffmpeg("segmenter: out of memory".into()));
            };
            pkt.set_dts(p.dts);
            pkt.set_pts(p.pts);
            pkt.set_stream_index(index);
            if key {
                pkt.set_flags(ffi::AV_PKT_FLAG_KEY as i32);
            }
            pkt.rescale_ts(ms, tbs[index as usize]);
            match out.ctx.interleaved_write_frame(&mut pkt) {
                Ok(()) => written += usize::from(index == 0),
                Err(e) => {
                    dropped += 1;
                    tracing::debug!(target: "lp::segmenter", seq = self.seq, error = %e, "dropped a packet the muxer refused");
                }
            }
        }
        if written == 0 {
            return Err(TranscodeError::InvalidInput(format!(
                "segment {}: none of its {} video frames could be muxed",
                self.seq,
                self.video_frames()
            )));
        }
        if dropped > 0 {
            tracing::warn!(target: "lp::segmenter", seq = self.seq, dropped, "the MPEG-TS muxer refused some packets");
        }
        out.ctx.write_trailer().map_err(|e| fail("cannot finish the MPEG-TS output", &e))?;
        Ok(out.into_bytes())
    }
}

/// The segment being built.
struct Open {
    seq: u64,
    first_dts: i64,
    start: SystemTime,
    video: Bytes,
    audio: Option<AacConfig>,
    packets: Vec<Packet>,
    bytes: u64,
}

/// Cuts a live stream into segments; see the module docs.
pub struct Segmenter {
    settings: SegmenterSettings,
    video: Option<Bytes>,
    audio: Option<AacConfig>,
    /// The configuration changed since the open segment started: cut at the next keyframe.
    changed: bool,
    open: Option<Open>,
    next_seq: u64,
    /// dts of the first packet seen while no segment is open (waiting for a keyframe).
    waiting_since: Option<i64>,
    /// The stream's first dts and the wall clock then: segment start times follow the media.
    anchor: Option<(i64, SystemTime)>,
    last_video_dts: Option<i64>,
    last_audio_dts: Option<i64>,
    /// The last interval between two video frames (ms): the last segment's last frame lasts it.
    frame_ms: i64,
    /// Packets dropped: before the first keyframe or its track's configuration, or out of order.
    dropped: u64,
}

impl Segmenter {
    pub fn new(settings: SegmenterSettings) -> Segmenter {
        Segmenter {
            settings,
            video: None,
            audio: None,
            changed: false,
            open: None,
            next_seq: 0,
            waiting_since: None,
            anchor: None,
            last_video_dts: None,
            last_audio_dts: None,
            frame_ms: 0,
            dropped: 0,
        }
    }

    /// Packets dropped so far (before the first keyframe or configuration, or out of order).
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// The stream's H.264 configuration (an AVCDecoderConfigurationRecord). A different one
    /// mid-stream takes effect at the next keyframe, which starts a segment.
    pub fn video_config(&mut self, avcc: &[u8]) -> Result<(), SegmenterError> {
        check_avcc(avcc)?;
        if self.video.as_deref() != Some(avcc) {
            self.changed |= self.open.is_some();
            self.video = Some(Bytes::copy_from_slice(avcc));
        }
        Ok(())
    }

    /// The stream's AAC configuration (an AudioSpecificConfig), like [`Segmenter::video_config`].
    pub fn audio_config(&mut self, asc: &[u8]) -> Result<(), SegmenterError> {
        let config = AacConfig::parse(Bytes::copy_from_slice(asc))?;
        if self.audio.as_ref() != Some(&config) {
            self.changed |= self.open.is_some();
            self.audio = Some(config);
        }
        Ok(())
    }

    /// One video frame (AVCC NAL units) with its dts and composition offset (ms). Answers the
    /// segment it finished, if it started one. The bytes are copied: a segment holds exactly
    /// the bytes it counts, not the buffers they were read into.
    pub fn video(
        &mut self,
        dts: i64,
        cts: i64,
        keyframe: bool,
        data: &[u8],
    ) -> Result<Option<CutSegment>, SegmenterError> {
        let Some(config) = self.video.clone() else {
            self.dropped += 1;
            return Ok(None);
        };
        if let Some(last) = self.last_video_dts
            && dts <= last
        {
            if last - dts > MAX_STEP_BACK_MS {
                return Err(SegmenterError::Timestamps { from: last, to: dts });
            }
            self.dropped += 1;
            return Ok(None);
        }
        if let Some(last) = self.last_video_dts {
            self.frame_ms = dts - last;
        }
        self.last_video_dts = Some(dts);
        let packet =
            Packet { track: Track::Video { keyframe }, dts, pts: dts + cts, data: Bytes::copy_from_slice(data) };
        let Some(open) = &self.open else {
            if !keyframe {
                self.wait(dts)?;
                self.dropped += 1;
                return Ok(None);
            }
            self.start_segment(config, packet);
            return Ok(None);
        };
        let elapsed = dts - open.first_dts;
        if keyframe && (elapsed >= self.settings.segment_ms as i64 || self.changed) {
            // A keyframe after a gap in the timestamps longer than any segment may be.
            if elapsed as u64 > self.settings.max_segment_ms {
                return Err(SegmenterError::NoKeyframe { ms: elapsed as u64, limit: self.settings.max_segment_ms });
            }
            let done = self.close(dts);
            self.start_segment(config, packet);
            return Ok(done);
        }
        self.append(packet)?;
        Ok(None)
    }

    /// One raw AAC frame with its dts (ms); copied, as in [`Segmenter::video`].
    pub fn audio(&mut self, dts: i64, data: &[u8]) -> Result<(), SegmenterError> {
        if self.audio.is_none() || self.last_audio_dts.is_some_and(|last| dts <= last) {
            self.dropped += 1;
            return Ok(());
        }
        self.last_audio_dts = Some(dts);
        if self.open.is_none() {
            self.wait(dts)?;
            self.dropped += 1;
            return Ok(());
        }
        self.append(Packet { track: Track::Audio, dts, pts: dts, data: Bytes::copy_from_slice(data) })
    }

    /// The stream ended: the segment being built, if any, lasting to its last video frame
    /// plus one frame interval.
    pub fn finish(mut self) -> Option<CutSegment> {
        let end = self.last_video_dts? + self.frame_ms.max(1);
        self.close(end)
    }

    fn wait(&mut self, dts: i64) -> Result<(), SegmenterError> {
        let since = *self.waiting_since.get_or_insert(dts);
        let waited = dts.saturating_sub(since).max(0) as u64;
        if waited > self.settings.max_segment_ms {
            return Err(SegmenterError::NoKeyframe { ms: waited, limit: self.settings.max_segment_ms });
        }
        Ok(())
    }

    fn start_segment(&mut self, video: Bytes, first: Packet) {
        let (anchor_dts, anchor_time) = *self.anchor.get_or_insert((first.dts, SystemTime::now()));
        let start = anchor_time + Duration::from_millis(first.dts.saturating_sub(anchor_dts).max(0) as u64);
        self.waiting_since = None;
        self.changed = false;
        let seq = self.next_seq;
        self.next_seq += 1;
        self.open = Some(Open {
            seq,
            first_dts: first.dts,
            start,
            video,
            audio: self.audio.clone(),
            bytes: first.data.len() as u64,
            packets: vec![first],
        });
    }

    fn append(&mut self, packet: Packet) -> Result<(), SegmenterError> {
        let Some(open) = &mut self.open else {
            return Ok(());
        };
        let elapsed = packet.dts.saturating_sub(open.first_dts).max(0) as u64;
        if elapsed > self.settings.max_segment_ms {
            return Err(SegmenterError::NoKeyframe { ms: elapsed, limit: self.settings.max_segment_ms });
        }
        open.bytes += packet.data.len() as u64;
        if open.bytes > self.settings.max_segment_bytes {
            return Err(SegmenterError::TooLarge { limit: self.settings.max_segment_bytes });
        }
        open.packets.push(packet);
        Ok(())
    }

    fn close(&mut self, end_dts: i64) -> Option<CutSegment> {
        let open = self.open.take()?;
        Some(CutSegment {
            seq: open.seq,
            duration_ms: end_dts.saturating_sub(open.first_dts).max(1) as u64,
            start: open.start,
            first_dts: open.first_dts,
            video: open.video,
            audio: open.audio,
            packets: open.packets,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::InputFormat;
    use rsmpeg::avformat::AVFormatContextInput;

    const SETTINGS: SegmenterSettings =
        SegmenterSettings { segment_ms: 2000, max_segment_ms: 30_000, max_segment_bytes: 50_000_000 };

    /// What an RTMP publisher sends, demuxed by FFmpeg from an FLV file the ffmpeg CLI made.
    struct Flv {
        avcc: Bytes,
        asc: Option<Bytes>,
        /// (is video, dts, pts, keyframe, data), in file order.
        packets: Vec<(bool, i64, i64, bool, Bytes)>,
        /// How long its video lasts: frames at 30 fps (s).
        duration: f64,
    }

    fn make_flv(dir: &std::path::Path, extra: &[&str]) -> std::path::PathBuf {
        let path = dir.join("in.flv");
        let mut args = vec![
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x180:rate=30",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-g",
            "30",
            "-c:a",
            "aac",
            "-t",
            "7",
        ];
        args.extend_from_slice(extra);
        args.extend(["-f", "flv", path.to_str().unwrap()]);
        lp_testkit::media::ffmpeg(&args);
        path
    }

    fn demux(path: &std::path::Path) -> Flv {
        let c = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
        let mut input = AVFormatContextInput::open(&c, None, &mut None).expect("open the FLV");
        let (mut avcc, mut asc, mut video_index, mut audio_index) = (Bytes::new(), None, usize::MAX, usize::MAX);
        for (i, st) in input.streams().into_iter().enumerate() {
            let par = st.codecpar();
            let extra = Bytes::copy_from_slice(ff::extradata(&par));
            if par.codec_type == ffi::AVMediaType_AVMEDIA_TYPE_VIDEO {
                assert_eq!((st.time_base.num, st.time_base.den), (1, 1000));
                (avcc, video_index) = (extra, i);
            } else if par.codec_type == ffi::AVMediaType_AVMEDIA_TYPE_AUDIO {
                (asc, audio_index) = (Some(extra), i);
            }
        }
        let mut packets = Vec::new();
        while let Ok(Some(pkt)) = input.read_packet() {
            let i = pkt.stream_index as usize;
            let key = pkt.flags & ffi::AV_PKT_FLAG_KEY as i32 != 0;
            let data = Bytes::copy_from_slice(ff::packet_data(&pkt));
            if i == video_index || i == audio_index {
                packets.push((i == video_index, pkt.dts, pkt.pts, key, data));
            }
        }
        let duration = packets.iter().filter(|p| p.0).count() as f64 / 30.0;
        Flv { avcc, asc, packets, duration }
    }

    fn segment(flv: &Flv, settings: SegmenterSettings) -> Result<Vec<CutSegment>, SegmenterError> {
        let mut s = Segmenter::new(settings);
        s.video_config(&flv.avcc)?;
        if let Some(asc) = &flv.asc {
            s.audio_config(asc)?;
        }
        let mut out = Vec::new();
        for (video, dts, pts, key, data) in &flv.packets {
            if *video {
                out.extend(s.video(*dts, pts - dts, *key, data)?);
            } else {
                s.audio(*dts, data)?;
            }
        }
        out.extend(s.finish());
        Ok(out)
    }

    /// Segments `flv`, then checks what a viewer cares about: every segment decodes, starts
    /// with a keyframe, carries audio, lasts what it says, and the timestamps run on.
    fn check(flv: &Flv) -> Vec<u64> {
        let segments = segment(flv, SETTINGS).unwrap();
        let durations: Vec<u64> = segments.iter().map(|s| s.duration_ms).collect();
        let total: u64 = durations.iter().sum();
        assert!((total as f64 / 1000.0 - flv.duration).abs() <= 1.0 / 30.0, "{total} ms vs {} s", flv.duration);
        let mut first_pts = None;
        for (i, seg) in segments.iter().enumerate() {
            assert_eq!(seg.seq, i as u64);
            let ts = seg.to_mpegts().unwrap();
            let info = crate::probe(&ts, InputFormat::MpegTs).unwrap();
            assert_eq!((info.width, info.height), (320, 180), "segment {i}");
            assert!(info.has_audio, "segment {i} has audio");
            assert_eq!(
                lp_testkit::media::ffprobe_bytes(&ts).video().frames as usize,
                seg.video_frames(),
                "segment {i}: every frame decodes"
            );
            let (pts, key) = lp_testkit::media::first_video_frame(&ts);
            assert!(key, "segment {i} starts with a keyframe");
            // The source's timestamps run on across segments (MPEG-TS adds one offset to all).
            let (pts0, src0) = *first_pts.get_or_insert((pts, seg.packets[0].pts));
            let expected = (seg.packets[0].pts - src0) as f64 / 1000.0;
            assert!((pts - pts0 - expected).abs() < 0.002, "segment {i} starts at {pts}, expected {pts0} + {expected}");
        }
        let mut starts = segments.iter().map(|s| s.start);
        let t0 = starts.next().unwrap();
        assert!(starts.all(|t| t > t0), "wall-clock starts follow the media");
        durations
    }

    #[test]
    fn an_flv_stream_becomes_decodable_segments_that_start_with_a_keyframe_and_add_up() {
        let dir = tempfile::tempdir().unwrap();
        let flv = demux(&make_flv(dir.path(), &[]));
        // Keyframes every second, cut at 2 s: 2+2+2+1.
        let durations = check(&flv);
        assert_eq!(durations.len(), 4, "{durations:?}");
        assert_eq!(&durations[..3], &[2000, 2000, 2000]);
    }

    #[test]
    fn b_frames_keep_their_composition_offsets() {
        let dir = tempfile::tempdir().unwrap();
        let flv = demux(&make_flv(dir.path(), &["-bf", "2"]));
        assert!(flv.packets.iter().any(|p| p.0 && p.2 != p.1), "the encoder made B-frames");
        assert_eq!(check(&flv).len(), 4);
    }

    /// A minimal valid avcC (one 4-byte SPS) and AAC-LC 44.1 kHz stereo: enough for the
    /// segmenter, which does not look inside NAL units.
    const AVCC: &[u8] = &[1, 0x64, 0, 0x1f, 0xff, 0xe1, 0, 4, 0x67, 0x64, 0, 0x1f, 1, 0, 0];
    const ASC: &[u8] = &[0x12, 0x10];

    fn configured(settings: SegmenterSettings) -> Segmenter {
        let mut s = Segmenter::new(settings);
        s.video_config(AVCC).unwrap();
        s.audio_config(ASC).unwrap();
        s
    }

    fn frame() -> &'static [u8] {
        &[0, 0, 0, 1, 0x65]
    }

    #[test]
    fn codec_configurations_are_read_and_bad_ones_refused() {
        let aac = AacConfig::parse(Bytes::from_static(ASC)).unwrap();
        assert_eq!((aac.sample_rate, aac.channels), (44100, 2));
        let aac = AacConfig::parse(Bytes::from_static(&[0x11, 0x88])).unwrap();
        assert_eq!((aac.sample_rate, aac.channels), (48000, 1));
        for bad in [&[][..], &[0x12], &[0x17, 0x90], &[0x00, 0x10]] {
            assert!(AacConfig::parse(Bytes::copy_from_slice(bad)).is_err(), "{bad:?}");
        }
        assert!(check_avcc(AVCC).is_ok());
        for bad in [
            &[][..],
            &AVCC[..7],
            &[2, 0x64, 0, 0x1f, 0xff, 0xe1, 0, 4, 0x67],
            &[1, 0x64, 0, 0x1f, 0xff, 0xe1, 0, 9, 0x67],
        ] {
            assert!(check_avcc(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn cuts_fall_on_keyframes_and_durations_are_exact() {
        let mut s = configured(SETTINGS);
        let mut cut = Vec::new();
        // 25 fps (40 ms), a keyframe every 35 frames (1.4 s): cuts at 2.8 s, 5.6 s.
        for i in 0..200i64 {
            let dts = 1000 + i * 40;
            s.audio(dts, frame()).unwrap();
            cut.extend(s.video(dts, 0, i % 35 == 0, frame()).unwrap());
        }
        cut.extend(s.finish());
        let durations: Vec<u64> = cut.iter().map(|c| c.duration_ms).collect();
        assert_eq!(durations, vec![2800, 2800, 2400]);
        assert_eq!(cut.iter().map(|c| c.video_frames()).collect::<Vec<_>>(), vec![70, 70, 60]);
        assert_eq!(cut[1].first_dts, 3800);
    }

    #[test]
    fn what_comes_before_the_first_keyframe_is_dropped() {
        let mut s = configured(SETTINGS);
        s.audio(0, frame()).unwrap();
        assert!(s.video(0, 0, false, frame()).unwrap().is_none());
        assert!(s.video(40, 0, true, frame()).unwrap().is_none());
        s.audio(40, frame()).unwrap();
        let last = s.finish().unwrap();
        assert_eq!((last.first_dts, last.video_frames(), last.packets.len()), (40, 1, 2));
        // No configuration yet: nothing is kept.
        let mut s = Segmenter::new(SETTINGS);
        assert!(s.video(0, 0, true, frame()).unwrap().is_none());
        assert_eq!(s.dropped(), 1);
        assert!(s.finish().is_none());
    }

    #[test]
    fn packets_that_go_back_in_time_are_dropped() {
        let mut s = configured(SETTINGS);
        s.video(100, 0, true, frame()).unwrap();
        s.video(100, 0, false, frame()).unwrap();
        s.video(90, 0, false, frame()).unwrap();
        s.audio(100, frame()).unwrap();
        s.audio(99, frame()).unwrap();
        assert_eq!(s.dropped(), 3);
        assert_eq!(s.finish().unwrap().packets.len(), 2);
    }

    #[test]
    fn a_clock_that_jumps_is_refused() {
        let mut s = configured(SETTINGS);
        s.video(100_000, 0, true, frame()).unwrap();
        // Reset to 0 (more than a second back).
        assert_eq!(s.video(0, 0, false, frame()).unwrap_err(), SegmenterError::Timestamps { from: 100_000, to: 0 });
        // A keyframe after a gap longer than a segment may be.
        let mut s = configured(SETTINGS);
        s.video(0, 0, true, frame()).unwrap();
        assert_eq!(
            s.video(40_000, 0, true, frame()).unwrap_err(),
            SegmenterError::NoKeyframe { ms: 40_000, limit: 30_000 }
        );
    }

    #[test]
    fn a_new_configuration_starts_a_segment_at_the_next_keyframe() {
        let mut s = configured(SETTINGS);
        s.video(0, 0, true, frame()).unwrap();
        s.video(40, 0, false, frame()).unwrap();
        let mut other = AVCC.to_vec();
        other[3] = 0x28;
        s.video_config(&other).unwrap();
        assert!(s.video(80, 0, false, frame()).unwrap().is_none());
        let first = s.video(120, 0, true, frame()).unwrap().expect("cut at the keyframe after the change");
        assert_eq!((first.duration_ms, first.video.as_ref()), (120, AVCC));
        assert_eq!(s.finish().unwrap().video.as_ref(), &other[..]);
        // The same configuration again changes nothing.
        let mut s = configured(SETTINGS);
        s.video(0, 0, true, frame()).unwrap();
        s.video_config(AVCC).unwrap();
        assert!(s.video(40, 0, true, frame()).unwrap().is_none());
    }

    #[test]
    fn a_stream_without_keyframes_crosses_the_limit() {
        let limits = SegmenterSettings { segment_ms: 2000, max_segment_ms: 5000, max_segment_bytes: 1 << 20 };
        // One keyframe, then none.
        let mut s = configured(limits);
        let mut result = Ok(None);
        for i in 0..=200i64 {
            result = s.video(i * 40, 0, i == 0, frame());
            if result.is_err() {
                break;
            }
        }
        assert_eq!(result.unwrap_err(), SegmenterError::NoKeyframe { ms: 5040, limit: 5000 });
        // No keyframe at all.
        let mut s = configured(limits);
        let errors = (0..=200i64).filter_map(|i| s.video(i * 40, 0, false, frame()).err()).next();
        assert_eq!(errors, Some(SegmenterError::NoKeyframe { ms: 5040, limit: 5000 }));
        // Audio and no video: the same.
        let mut s = configured(limits);
        let errors = (0..=300i64).filter_map(|i| s.audio(i * 23, frame()).err()).next();
        assert!(matches!(errors, Some(SegmenterError::NoKeyframe { .. })), "{errors:?}");
    }

    #[test]
    fn a_segment_larger_than_the_limit_is_refused() {
        let limits = SegmenterSettings { segment_ms: 2000, max_segment_ms: 30_000, max_segment_bytes: 10_000 };
        let mut s = configured(limits);
        let big = vec![0u8; 3000];
        s.video(0, 0, true, &big).unwrap();
        s.video(40, 0, false, &big).unwrap();
        s.video(80, 0, false, &big).unwrap();
        assert_eq!(s.video(120, 0, false, &big).unwrap_err(), SegmenterError::TooLarge { limit: 10_000 });
    }
}
