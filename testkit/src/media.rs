//! Test media made with the `ffmpeg` CLI, and what `ffprobe` sees in the output.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Runs the ffmpeg CLI with `args` (quiet, overwrite) and panics with its stderr on failure.
pub fn ffmpeg(args: &[&str]) {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-y"])
        .args(args)
        .output()
        .expect("the ffmpeg CLI must be installed to run these tests (make test installs it)");
    assert!(out.status.success(), "ffmpeg {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
}

/// One 320x180 video frame with an AAC track too short to carry its parameters, as MPEG-TS in
/// `dir/name`: a segment FFmpeg's decoders once refused.
pub fn one_frame_with_audio(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=320x180:rate=30",
        "-f",
        "lavfi",
        "-i",
        "sine=sample_rate=48000",
        "-frames:v",
        "1",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-c:a",
        "aac",
        "-f",
        "mpegts",
        path.to_str().unwrap(),
    ]);
    path
}

/// `pieces` runs of `frames` frames at 25 fps (320x180, no audio), each `secs_apart` seconds
/// after the last: an MPEG-TS segment whose timestamps jump, as a hostile or broken sender can
/// make one.
pub fn segment_with_jumps(dir: &Path, pieces: u32, frames: u32, secs_apart: u32) -> Vec<u8> {
    let mut data = Vec::new();
    for k in 0..pieces {
        let path = dir.join(format!("piece{k}.ts"));
        let (offset, frames) = ((k * secs_apart).to_string(), frames.to_string());
        ffmpeg(&[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x180:rate=25",
            "-frames:v",
            &frames,
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-bf",
            "0",
            "-output_ts_offset",
            &offset,
            "-f",
            "mpegts",
            path.to_str().unwrap(),
        ]);
        data.extend(std::fs::read(&path).unwrap());
    }
    data
}

/// A `secs`-second test segment of `w`x`h` at `fps` (H.264, GOP = 1 s), with AAC audio when
/// `audio`, written to `dir/name` (the container follows the extension: .ts or .mp4).
pub fn make_segment(dir: &Path, name: &str, w: u32, h: u32, fps: u32, secs: u32, audio: bool) -> PathBuf {
    let path = dir.join(name);
    let src = format!("testsrc2=size={w}x{h}:rate={fps}");
    let t = secs.to_string();
    let g = fps.to_string();
    let mut args: Vec<&str> = vec!["-f", "lavfi", "-i", &src];
    if audio {
        args.extend(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"]);
    }
    args.extend(["-t", &t, "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-g", &g]);
    if audio {
        args.extend(["-c:a", "aac", "-b:a", "64k", "-ac", "2"]);
    }
    let p = path.to_str().unwrap();
    args.push(p);
    ffmpeg(&args);
    path
}

#[derive(Debug, Clone)]
pub struct StreamInfo {
    pub codec_type: String,
    pub codec_name: String,
    pub width: u32,
    pub height: u32,
    pub frames: u64,
    pub profile: String,
    pub has_b_frames: u64,
}

#[derive(Debug, Clone)]
pub struct ProbeInfo {
    pub streams: Vec<StreamInfo>,
    pub start_time: f64,
    pub duration: f64,
}

impl ProbeInfo {
    pub fn video(&self) -> &StreamInfo {
        self.streams.iter().find(|s| s.codec_type == "video").expect("a video stream")
    }
    pub fn has_audio(&self) -> bool {
        self.streams.iter().any(|s| s.codec_type == "audio")
    }
}

fn run_ffprobe(path: &Path, extra: &[&str]) -> serde_json::Value {
    let out = Command::new("ffprobe")
        .args(["-v", "error"])
        .args(extra)
        .args([
            "-count_frames",
            "-show_entries",
            "stream=codec_type,codec_name,width,height,nb_read_frames,profile,has_b_frames:format=start_time,duration",
            "-of",
            "json",
        ])
        .arg(path)
        .output()
        .expect("ffprobe must be installed to run these tests");
    assert!(out.status.success(), "ffprobe {path:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("ffprobe JSON")
}

fn parse(v: &serde_json::Value) -> ProbeInfo {
    let num = |s: &serde_json::Value, k: &str| -> u64 {
        match &s[k] {
            serde_json::Value::Number(n) => n.as_u64().unwrap_or(0),
            serde_json::Value::String(t) => t.parse().unwrap_or(0),
            _ => 0,
        }
    };
    let txt = |s: &serde_json::Value, k: &str| s[k].as_str().unwrap_or("").to_string();
    let streams = v["streams"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|s| StreamInfo {
                    codec_type: txt(s, "codec_type"),
                    codec_name: txt(s, "codec_name"),
                    width: num(s, "width") as u32,
                    height: num(s, "height") as u32,
                    frames: num(s, "nb_read_frames"),
                    profile: txt(s, "profile"),
                    has_b_frames: num(s, "has_b_frames"),
                })
                .collect()
        })
        .unwrap_or_default();
    let f = |k: &str| v["format"][k].as_str().and_then(|t| t.parse().ok()).unwrap_or(f64::NAN);
    ProbeInfo { streams, start_time: f("start_time"), duration: f("duration") }
}

/// ffprobe of a file: streams with decoded frame counts, and the container's start/duration.
pub fn ffprobe(path: &Path) -> ProbeInfo {
    parse(&run_ffprobe(path, &[]))
}

/// Like [`ffprobe`] but the frame counts are keyframes only.
pub fn ffprobe_keyframes(path: &Path) -> ProbeInfo {
    parse(&run_ffprobe(path, &["-skip_frame", "nokey"]))
}

/// Writes `data` to `dir/name` and returns the path.
pub fn write(dir: &Path, name: &str, data: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, data).unwrap();
    p
}

/// One second of 320x180 30 fps H.264 in MPEG-TS, as bytes.
pub fn segment() -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::read(make_segment(dir.path(), "s.ts", 320, 180, 30, 1, false)).unwrap()
}

/// `seconds` of 30 fps test video at `w`x`h` with AAC audio, cut into 2-second MPEG-TS segments
/// (a keyframe at each cut), as a live pusher would send them.
pub fn make_segments(dir: &Path, seconds: u32, w: u32, h: u32) -> Vec<Vec<u8>> {
    let out = dir.join(format!("seg_{w}x{h}_{seconds}"));
    std::fs::create_dir_all(&out).unwrap();
    let (src, t, pattern) = (format!("testsrc2=size={w}x{h}:rate=30"), seconds.to_string(), out.join("%03d.ts"));
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        &src,
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=440:sample_rate=48000",
        "-t",
        &t,
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-pix_fmt",
        "yuv420p",
        "-g",
        "60",
        "-keyint_min",
        "60",
        "-sc_threshold",
        "0",
        "-c:a",
        "aac",
        "-f",
        "segment",
        "-segment_time",
        "2",
        "-segment_format",
        "mpegts",
        pattern.to_str().unwrap(),
    ]);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&out).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    files.iter().map(|f| std::fs::read(f).unwrap()).collect()
}

/// [`ffprobe`] of bytes.
pub fn ffprobe_bytes(bytes: &[u8]) -> ProbeInfo {
    let f = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(f.path(), bytes).unwrap();
    ffprobe(f.path())
}

/// The first video frame of `bytes` as ffprobe decodes it: its presentation time (s) and
/// whether it is a keyframe.
pub fn first_video_frame(bytes: &[u8]) -> (f64, bool) {
    let f = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(f.path(), bytes).unwrap();
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-read_intervals", "%+#1", "-show_frames"])
        .args(["-show_entries", "frame=pts_time,key_frame", "-of", "json"])
        .arg(f.path())
        .output()
        .expect("ffprobe must be installed to run these tests");
    assert!(out.status.success(), "ffprobe failed: {}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("ffprobe JSON");
    let frame = &v["frames"][0];
    let pts = frame["pts_time"].as_str().and_then(|t| t.parse().ok()).unwrap_or(f64::NAN);
    (pts, frame["key_frame"].as_i64() == Some(1))
}
