//! FLV tag bodies, as RTMP audio and video messages carry them: H.264 (codec id 7) and AAC
//! (sound format 10) are read; anything else is named, for the refusal.

use bytes::Bytes;

/// What a video message holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Video {
    /// AVCPacketType 0: the AVCDecoderConfigurationRecord.
    AvcConfig(Bytes),
    /// AVCPacketType 1: one frame of AVCC (length-prefixed) NAL units; `cts` is the composition
    /// time offset (pts − dts) in ms.
    AvcFrame { keyframe: bool, cts: i64, data: Bytes },
    /// Nothing to segment: an end of sequence, a video info/command frame, an empty message.
    Ignored,
    /// Not H.264: the codec's name.
    Unsupported(String),
}

/// What an audio message holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Audio {
    /// AACPacketType 0: the AudioSpecificConfig.
    AacConfig(Bytes),
    /// AACPacketType 1: one raw AAC frame.
    AacFrame(Bytes),
    /// An empty message.
    Ignored,
    /// Not AAC: the codec's name.
    Unsupported(String),
}

/// A tag too short for its header, or with a packet type the format does not define.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed FLV {0} tag: {1}")]
pub struct TagError(&'static str, String);

/// Reads a video tag body (FLV spec 10.1, E.4.3.1).
pub fn video(data: &Bytes) -> Result<Video, TagError> {
    let Some(&first) = data.first() else {
        return Ok(Video::Ignored);
    };
    if first & 0x80 != 0 {
        // Enhanced RTMP: a FourCC instead of a codec id (HEVC, AV1, VP9 …).
        return Ok(Video::Unsupported(format!("{} (enhanced RTMP)", fourcc(data))));
    }
    let (frame_type, codec) = (first >> 4, first & 0x0f);
    if frame_type == 5 {
        return Ok(Video::Ignored);
    }
    if codec != 7 {
        return Ok(Video::Unsupported(video_codec_name(codec)));
    }
    if data.len() < 5 {
        return Err(TagError("video", format!("{} bytes, the AVC header needs 5", data.len())));
    }
    // SI24, big-endian.
    let cts = i64::from(i32::from_be_bytes([data[2], data[3], data[4], 0]) >> 8);
    let payload = data.slice(5..);
    match data[1] {
        0 => Ok(Video::AvcConfig(payload)),
        1 if payload.is_empty() => Ok(Video::Ignored),
        1 => Ok(Video::AvcFrame { keyframe: frame_type == 1, cts, data: payload }),
        2 => Ok(Video::Ignored),
        t => Err(TagError("video", format!("AVCPacketType {t}"))),
    }
}

/// Reads an audio tag body (FLV spec E.4.2.1).
pub fn audio(data: &Bytes) -> Result<Audio, TagError> {
    let Some(&first) = data.first() else {
        return Ok(Audio::Ignored);
    };
    let format = first >> 4;
    if format == 9 {
        // Enhanced RTMP: a FourCC follows (Opus, FLAC, AC-3 …).
        return Ok(Audio::Unsupported(format!("{} (enhanced RTMP)", fourcc(data))));
    }
    if format != 10 {
        return Ok(Audio::Unsupported(audio_codec_name(format).to_string()));
    }
    if data.len() < 2 {
        return Err(TagError("audio", "1 byte, the AAC header needs 2".into()));
    }
    let payload = data.slice(2..);
    match data[1] {
        0 => Ok(Audio::AacConfig(payload)),
        1 if payload.is_empty() => Ok(Audio::Ignored),
        1 => Ok(Audio::AacFrame(payload)),
        t => Err(TagError("audio", format!("AACPacketType {t}"))),
    }
}

/// The FourCC of an enhanced RTMP header, printable.
fn fourcc(data: &[u8]) -> String {
    let code = data.get(1..data.len().min(5)).unwrap_or_default();
    if code.len() == 4 && code.iter().all(|b| b.is_ascii_graphic() || *b == b' ') {
        String::from_utf8_lossy(code).trim().to_string()
    } else {
        format!("FourCC {code:02x?}")
    }
}

fn video_codec_name(id: u8) -> String {
    match id {
        2 => "Sorenson H.263".into(),
        3 => "Screen video".into(),
        4 => "On2 VP6".into(),
        5 => "On2 VP6 with alpha".into(),
        6 => "Screen video v2".into(),
        12 => "HEVC (codec id 12)".into(),
        id => format!("codec id {id}"),
    }
}

fn audio_codec_name(format: u8) -> &'static str {
    match format {
        0 => "linear PCM",
        1 => "ADPCM",
        2 => "MP3",
        3 => "linear PCM (little endian)",
        4 => "Nellymoser 16 kHz",
        5 => "Nellymoser 8 kHz",
        6 => "Nellymoser",
        7 => "G.711 A-law",
        8 => "G.711 mu-law",
        11 => "Speex",
        14 => "MP3 8 kHz",
        15 => "device-specific sound",
        _ => "a reserved sound format",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(v: &[u8]) -> Bytes {
        Bytes::copy_from_slice(v)
    }

    #[test]
    fn h264_tags_are_read_with_their_composition_offset() {
        assert_eq!(video(&b(&[0x17, 0, 0, 0, 0, 1, 2])).unwrap(), Video::AvcConfig(b(&[1, 2])));
        assert_eq!(
            video(&b(&[0x17, 1, 0, 0, 0x42, 9])).unwrap(),
            Video::AvcFrame { keyframe: true, cts: 66, data: b(&[9]) }
        );
        // A negative offset (SI24), on an inter frame.
        assert_eq!(
            video(&b(&[0x27, 1, 0xff, 0xff, 0xdf, 9])).unwrap(),
            Video::AvcFrame { keyframe: false, cts: -33, data: b(&[9]) }
        );
        assert_eq!(video(&b(&[0x17, 2, 0, 0, 0])).unwrap(), Video::Ignored);
        assert_eq!(video(&b(&[0x57, 0])).unwrap(), Video::Ignored);
        assert_eq!(video(&b(&[])).unwrap(), Video::Ignored);
        assert!(video(&b(&[0x17, 1, 0])).is_err());
        assert!(video(&b(&[0x17, 7, 0, 0, 0, 1])).is_err());
    }

    #[test]
    fn other_video_codecs_are_named() {
        assert_eq!(video(&b(&[0x12, 0])).unwrap(), Video::Unsupported("Sorenson H.263".into()));
        assert_eq!(video(&b(&[0x1c, 0])).unwrap(), Video::Unsupported("HEVC (codec id 12)".into()));
        assert_eq!(
            video(&b(&[0x90, b'h', b'v', b'c', b'1'])).unwrap(),
            Video::Unsupported("hvc1 (enhanced RTMP)".into())
        );
        assert_eq!(video(&b(&[0x90, 0])).unwrap(), Video::Unsupported("FourCC [00] (enhanced RTMP)".into()));
    }

    #[test]
    fn aac_tags_are_read_and_other_audio_named() {
        assert_eq!(audio(&b(&[0xaf, 0, 0x12, 0x10])).unwrap(), Audio::AacConfig(b(&[0x12, 0x10])));
        assert_eq!(audio(&b(&[0xaf, 1, 5, 6])).unwrap(), Audio::AacFrame(b(&[5, 6])));
        assert_eq!(audio(&b(&[0xaf, 1])).unwrap(), Audio::Ignored);
        assert!(audio(&b(&[0xaf])).is_err());
        assert!(audio(&b(&[0xaf, 2, 0])).is_err());
        assert_eq!(audio(&b(&[0x2f, 0xff])).unwrap(), Audio::Unsupported("MP3".into()));
        assert_eq!(audio(&b(&[0xb6, 0])).unwrap(), Audio::Unsupported("Speex".into()));
        assert_eq!(
            audio(&b(&[0x90, b'O', b'p', b'u', b's'])).unwrap(),
            Audio::Unsupported("Opus (enhanced RTMP)".into())
        );
    }
}
