//! What the ingest probe reads from MPEG-TS packets without FFmpeg's demuxer: the program's
//! streams (PAT and PMT), the timestamps of the video's PES packets, the first video access
//! unit and the first bytes of the audio: PES headers only. FFmpeg's demuxer, which parses
//! every frame, took 4 ms of the probe's 11 ms on a 2-second 1080p segment.
//!
//! It reads what common encoders and muxers write (one PAT, one program, its tables in one
//! packet each; H.264 video) and answers `None` for anything else, which the caller then probes
//! the full way with FFmpeg.

/// A 2-second segment's worth of stream tables and PES headers, read.
#[derive(Debug)]
pub(crate) struct Scan {
    /// The PIDs of the video and of the audio stream read.
    pub video_pid: u16,
    pub audio_pid: Option<u16>,
    /// The presentation timestamps (90 kHz, unwrapped) of the video's PES packets, in order.
    pub video_pts: Vec<i64>,
    /// The video's PES packets, with or without a timestamp.
    pub video_pes: usize,
    /// The payload of the first video PES: an H.264 access unit (Annex B).
    pub first_video: Vec<u8>,
    /// The RFC 6381 codec of the program's audio stream, if it has one (for HLS's `CODECS`).
    pub audio: Option<String>,
    /// What the first ADTS header says, when the audio is AAC in ADTS.
    pub adts: Option<Adts>,
}

/// An ADTS header's stream parameters (ISO 14496-3 1.A.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Adts {
    /// FFmpeg's AAC profile: the MPEG-4 audio object type - 1 (LC = 1).
    pub profile: u8,
    pub sample_rate: u32,
    /// 0: the channels are described in the stream (a program config element), not here.
    pub channels: u32,
}

const PACKET: usize = 188;
/// The video's first access unit is read up to this size (a 4K intra frame fits).
const MAX_ACCESS_UNIT: usize = 8 << 20;

/// Stream types (ISO 13818-1 table 2-34, and ATSC's for AC-3 / E-AC-3).
const H264: u8 = 0x1b;
const MPEG1_AUDIO: u8 = 0x03;
const MPEG2_AUDIO: u8 = 0x04;
const ADTS_AAC: u8 = 0x0f;
const AC3: u8 = 0x81;
const EAC3: u8 = 0x87;
/// Streams that are neither video nor audio (the probe ignores them, as FFmpeg does): ID3
/// metadata in PES, SCTE-35 splice information.
const IGNORED: [u8; 2] = [0x15, 0x86];

/// The audio stream's kind before its first bytes are seen.
#[derive(Clone, Copy)]
enum AudioType {
    Aac,
    Mpeg,
    Ac3,
    Eac3,
}

struct Streams {
    video: u16,
    audio: Option<(u16, AudioType)>,
}

/// Read `data` (whole 188-byte packets). `None`: not something this reader knows (no H.264
/// video, a stream it does not know, more than one program, tables across packets or changing
/// within the segment, a lost sync byte), or no timestamps.
pub(crate) fn scan(data: &[u8]) -> Option<Scan> {
    if data.is_empty() || !data.len().is_multiple_of(PACKET) {
        return None;
    }
    let mut pmt_pid = None;
    let mut pmt_section: Option<&[u8]> = None;
    let mut streams: Option<Streams> = None;
    let mut video_pts: Vec<i64> = Vec::with_capacity(data.len() / PACKET / 8);
    let mut video_pes = 0;
    let mut first_video: Option<Vec<u8>> = None;
    // Whether the first video PES is still being read.
    let mut in_first_video = false;
    let mut audio_head: Option<Vec<u8>> = None;
    for packet in data.chunks_exact(PACKET) {
        if packet[0] != 0x47 {
            return None;
        }
        if packet[1] & 0x80 != 0 {
            // The transport error indicator: this packet is damaged.
            continue;
        }
        let pid = u16::from(packet[1] & 0x1f) << 8 | u16::from(packet[2]);
        let start = packet[1] & 0x40 != 0;
        let Some(payload) = payload(packet) else { continue };
        if pid == 0 {
            if start && pmt_pid.is_none() {
                pmt_pid = Some(pat(payload)?);
            }
            continue;
        }
        if Some(pid) == pmt_pid {
            if start {
                let section = section(payload, 0x02)?;
                match pmt_section {
                    None => {
                        streams = Some(pmt(payload)?);
                        pmt_section = Some(section);
                    }
                    Some(first) if first != section => return None,
                    Some(_) => {}
                }
            }
            continue;
        }
        let Some(s) = &streams else { continue };
        if pid == s.video {
            if start {
                in_first_video = false;
                video_pes += 1;
                let (pts, es) = pes(payload)?;
                if let Some(pts) = pts {
                    video_pts.push(unwrap(pts, video_pts.first().copied()));
                }
                if first_video.is_none() {
                    first_video = Some(es.to_vec());
                    in_first_video = true;
                }
            } else if in_first_video && let Some(au) = first_video.as_mut() {
                if au.len() + payload.len() > MAX_ACCESS_UNIT {
                    return None;
                }
                au.extend_from_slice(payload);
            }
        } else if s.audio.is_some_and(|(a, _)| a == pid) && start && audio_head.is_none() {
            audio_head = Some(pes(payload)?.1.to_vec());
        }
    }
    let streams = streams?;
    let (audio, adts) = match streams.audio {
        None => (None, None),
        Some((_, kind)) => {
            let head = audio_head.as_deref()?;
            (Some(audio_codec(kind, head)?), if matches!(kind, AudioType::Aac) { adts(head) } else { None })
        }
    };
    if video_pts.is_empty() {
        return None;
    }
    Some(Scan {
        video_pid: streams.video,
        audio_pid: streams.audio.map(|(pid, _)| pid),
        video_pts,
        video_pes,
        first_video: first_video?,
        audio,
        adts,
    })
}

/// The payload of a packet, after its adaptation field; `None` when it carries none.
fn payload(packet: &[u8]) -> Option<&[u8]> {
    let control = (packet[3] >> 4) & 3;
    let start = match control {
        1 => 4,
        3 => 5 + usize::from(packet[4]),
        _ => return None,
    };
    packet.get(start..).filter(|p| !p.is_empty())
}

/// A PSI section from the start of a payload (after its pointer field) with `table_id`, up to
/// the end of its section (without the CRC); `None` when it does not fit in this packet.
fn section(payload: &[u8], table_id: u8) -> Option<&[u8]> {
    let pointer = usize::from(*payload.first()?);
    let s = payload.get(1 + pointer..)?;
    if *s.first()? != table_id || s.len() < 3 {
        return None;
    }
    let length = usize::from(s[1] & 0x0f) << 8 | usize::from(s[2]);
    // The section's bytes after its length field, less the 4-byte CRC.
    s.get(3..3 + length.checked_sub(4)?)
}

/// The PAT: the PID of its one program's PMT (`None` for none, or more than one).
fn pat(payload: &[u8]) -> Option<u16> {
    let s = section(payload, 0x00)?;
    // transport_stream_id, version, section numbers; then 4 bytes per program (number 0 is the
    // network information table's).
    let mut pmts = s.get(5..)?.chunks_exact(4).filter_map(|p| {
        let program = u16::from(p[0]) << 8 | u16::from(p[1]);
        (program != 0).then_some(u16::from(p[2] & 0x1f) << 8 | u16::from(p[3]))
    });
    let first = pmts.next()?;
    pmts.next().is_none().then_some(first)
}

/// The PMT: the H.264 video and the first audio stream; `None` on any stream type the probe
/// does not know.
fn pmt(payload: &[u8]) -> Option<Streams> {
    let s = section(payload, 0x02)?;
    // program_number, version, section numbers, PCR PID, then the program's descriptors.
    let info = usize::from(*s.get(7)? & 0x0f) << 8 | usize::from(*s.get(8)?);
    let mut es = s.get(9 + info..)?;
    let (mut video, mut audio) = (None, None);
    while es.len() >= 5 {
        let (kind, pid) = (es[0], u16::from(es[1] & 0x1f) << 8 | u16::from(es[2]));
        let skip = 5 + (usize::from(es[3] & 0x0f) << 8 | usize::from(es[4]));
        let audio_type = match kind {
            H264 if video.is_none() => {
                video = Some(pid);
                None
            }
            ADTS_AAC => Some(AudioType::Aac),
            MPEG1_AUDIO | MPEG2_AUDIO => Some(AudioType::Mpeg),
            AC3 => Some(AudioType::Ac3),
            EAC3 => Some(AudioType::Eac3),
            k if IGNORED.contains(&k) => None,
            _ => return None,
        };
        if audio.is_none() {
            audio = audio_type.map(|t| (pid, t));
        }
        es = es.get(skip..)?;
    }
    Some(Streams { video: video?, audio })
}

/// A PES packet's start: its PTS, if any, and the elementary stream's bytes after the header.
fn pes(payload: &[u8]) -> Option<(Option<i64>, &[u8])> {
    if payload.len() < 9 || payload[..3] != [0, 0, 1] {
        return None;
    }
    let header = 9 + usize::from(payload[8]);
    let pts = (payload[7] & 0x80 != 0).then(|| payload.get(9..14)).flatten().map(|p| {
        i64::from(p[0] >> 1 & 0x07) << 30
            | i64::from(p[1]) << 22
            | i64::from(p[2] >> 1) << 15
            | i64::from(p[3]) << 7
            | i64::from(p[4] >> 1)
    });
    Some((pts, payload.get(header..)?))
}

/// A 33-bit timestamp made continuous with the stream's first one across the wrap (every
/// 26.5 hours).
fn unwrap(pts: i64, first: Option<i64>) -> i64 {
    const WRAP: i64 = 1 << 33;
    match first {
        Some(first) if pts < first - WRAP / 2 => pts + WRAP,
        Some(first) if pts > first + WRAP / 2 => pts - WRAP,
        _ => pts,
    }
}

/// The RFC 6381 name of an audio stream from its first bytes; `None` for what HLS names no
/// codec for (MP2) or a header not found.
fn audio_codec(kind: AudioType, head: &[u8]) -> Option<String> {
    match kind {
        AudioType::Aac => adts_object_type(head).map(|t| format!("mp4a.40.{t}")),
        AudioType::Mpeg => (mpeg_audio_layer(head) == Some(3)).then(|| "mp4a.40.34".into()),
        AudioType::Ac3 => Some("ac-3".into()),
        AudioType::Eac3 => Some("ec-3".into()),
    }
}

/// The MPEG-4 audio object type of an ADTS header (its profile + 1).
fn adts_object_type(head: &[u8]) -> Option<u8> {
    adts(head).map(|h| h.profile + 1)
}

/// An ADTS header's profile, sampling frequency and channel configuration.
fn adts(head: &[u8]) -> Option<Adts> {
    const RATES: [u32; 13] = [96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350];
    if head.len() < 7 || head[0] != 0xff || head[1] & 0xf6 != 0xf0 {
        return None;
    }
    let config = u32::from(head[2] & 1) << 2 | u32::from(head[3] >> 6);
    Some(Adts {
        profile: head[2] >> 6,
        sample_rate: *RATES.get(usize::from(head[2] >> 2 & 0x0f))?,
        channels: if config == 7 { 8 } else { config },
    })
}

/// The layer (1 to 3) of an MPEG audio frame header.
fn mpeg_audio_layer(head: &[u8]) -> Option<u8> {
    let bits = (head.get(1)? >> 1) & 3;
    (head.len() >= 4 && head[0] == 0xff && head[1] & 0xe0 == 0xe0 && bits != 0).then_some(4 - bits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_continuous_across_the_33_bit_wrap() {
        let first = (1 << 33) - 90_000;
        assert_eq!(unwrap(first, None), first);
        assert_eq!(unwrap(3000, Some(first)), (1 << 33) + 3000);
        assert_eq!(unwrap(first - 3000, Some(first)), first - 3000);
        assert_eq!(unwrap((1 << 33) - 3000, Some(6000)), -3000);
    }

    #[test]
    fn audio_headers_name_their_codec() {
        assert_eq!(adts_object_type(&[0xff, 0xf1, 0x50, 0x80, 0, 0, 0]), Some(2), "AAC LC");
        assert_eq!(adts_object_type(&[0xff, 0xf1, 0x10, 0x80, 0, 0, 0]), Some(1), "AAC Main");
        assert_eq!(adts_object_type(&[0x00, 0xf1, 0x50, 0x80, 0, 0, 0]), None, "no sync word");
        // LC, 48 kHz (index 3), stereo; HE signalled as LC at half the rate, 5.1; 7.1.
        assert_eq!(
            adts(&[0xff, 0xf1, 0x4c, 0x80, 0, 0, 0]),
            Some(Adts { profile: 1, sample_rate: 48000, channels: 2 })
        );
        assert_eq!(
            adts(&[0xff, 0xf1, 0x58, 0x80, 0, 0, 0]),
            Some(Adts { profile: 1, sample_rate: 24000, channels: 2 })
        );
        assert_eq!(
            adts(&[0xff, 0xf1, 0x51, 0x80, 0, 0, 0]),
            Some(Adts { profile: 1, sample_rate: 44100, channels: 6 })
        );
        assert_eq!(adts(&[0xff, 0xf1, 0x51, 0xc0, 0, 0, 0]).map(|h| h.channels), Some(8));
        assert_eq!(adts(&[0xff, 0xf1, 0x74, 0x80, 0, 0, 0]), None, "reserved sampling frequency index 13");
        assert_eq!(mpeg_audio_layer(&[0xff, 0xfb, 0x90, 0x64]), Some(3), "MP3");
        assert_eq!(mpeg_audio_layer(&[0xff, 0xfd, 0x90, 0x64]), Some(2), "MP2");
        assert_eq!(mpeg_audio_layer(&[0xff, 0xf9, 0x90, 0x64]), None, "reserved layer");
    }

    /// A PAT's payload (pointer field first) listing `programs` as (number, PMT PID).
    fn pat_payload(programs: &[(u16, u16)]) -> Vec<u8> {
        let length = 5 + 4 * programs.len() + 4;
        let mut p = vec![0, 0x00, 0xb0 | (length >> 8) as u8, length as u8, 0, 1, 0xc1, 0, 0];
        for &(number, pid) in programs {
            p.extend([(number >> 8) as u8, number as u8, 0xe0 | (pid >> 8) as u8, pid as u8]);
        }
        p.extend([0; 4]);
        p
    }

    #[test]
    fn one_program_is_read_and_more_are_left_to_ffmpeg() {
        assert_eq!(pat(&pat_payload(&[(1, 0x1000)])), Some(0x1000));
        assert_eq!(pat(&pat_payload(&[(0, 0x10), (1, 0x1000)])), Some(0x1000), "the NIT is no program");
        assert_eq!(pat(&pat_payload(&[(1, 0x1000), (2, 0x1001)])), None);
        assert_eq!(pat(&pat_payload(&[])), None);
    }

    #[test]
    fn what_it_does_not_know_is_left_to_ffmpeg() {
        assert!(scan(&[]).is_none());
        assert!(scan(&[0x47; 100]).is_none(), "not whole packets");
        let mut garbage = vec![0u8; 188 * 4];
        garbage[0] = 0x47;
        assert!(scan(&garbage).is_none(), "garbage");
        let mut segment = lp_testkit::media::segment();
        let scanned = scan(&segment).expect("a segment the ffmpeg CLI made");
        assert_eq!(scanned.video_pts.len(), 30, "one PES per frame");
        assert_eq!(scanned.video_pes, 30);
        // The PMT again later with other contents (a stream added): the tables changed.
        let pmt = segment
            .chunks_exact(188)
            .position(|p| p[1] & 0x40 != 0 && u16::from(p[1] & 0x1f) << 8 | u16::from(p[2]) == 0x1000)
            .expect("FFmpeg's PMT PID");
        let mut changed = segment.clone();
        let at = (segment.len() / 188 - 1) * 188;
        changed[at..at + 188].copy_from_slice(&segment[pmt * 188..pmt * 188 + 188]);
        assert!(scan(&changed).is_some(), "the same PMT again");
        // The version bits of the section (after the header, pointer field, table id, length
        // and program number).
        changed[at + 10] ^= 0x3e;
        assert!(scan(&changed).is_none(), "a PMT of another version");
        let middle = (segment.len() / 188 / 2) * 188;
        segment[middle] = 0;
        assert!(scan(&segment).is_none(), "a lost sync byte");
    }
}
