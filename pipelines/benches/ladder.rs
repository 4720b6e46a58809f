//! Ladder benchmark: our `transcode` against one FFmpeg CLI process (`split=4`), both decoding a
//! 2-second 1080p30 segment once and encoding livepeer_bench's 720p/480p/360p/240p ladder with
//! libx264 veryfast.
//!
//! Run with `cargo bench -p lp-pipelines --bench ladder`. Environment:
//! * `LADDER_RUNS` (default 7): timed runs of each, after one warm-up, interleaved
//!   (ours, ffmpeg, ours, ffmpeg, ...) so machine noise hits both alike;
//! * `LADDER_PRESET` (default `veryfast`): the x264 preset of both;
//! * `LADDER_INPUT`: use this MPEG-TS file instead of generating the segment.
//!
//! Prints a human line and one JSON line (prefixed `{"bench":"ladder"`), and asserts that every
//! rendition of ours decodes with the source's 60 frames.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use lp_pipelines::{H264Profile, InputFormat, Profile, TranscodeOptions, transcode};

/// (name, width, height, kbps): livepeer_bench's transcodingOptions.json ladder.
const LADDER: [(&str, u32, u32, u32); 4] =
    [("720p", 1280, 720, 3000), ("480p", 854, 480, 1600), ("360p", 640, 360, 800), ("240p", 426, 240, 250)];

fn run(cmd: &mut Command) {
    let out = cmd.output().expect("the ffmpeg CLI must be installed");
    assert!(out.status.success(), "{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr));
}

/// The realistic segment of performance.md B1: testsrc2 + temporal noise, 1080p30, H.264 High
/// 6 Mbps, GOP 60, AAC 48 kHz stereo, MPEG-TS.
fn make_input(dir: &Path) -> PathBuf {
    let path = dir.join("seg1080.ts");
    lp_testkit::media::ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=1920x1080:rate=30",
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=440:sample_rate=48000",
        "-t",
        "2",
        "-vf",
        "noise=alls=12:allf=t+u",
        "-c:v",
        "libx264",
        "-profile:v",
        "high",
        "-pix_fmt",
        "yuv420p",
        "-b:v",
        "6M",
        "-minrate",
        "6M",
        "-maxrate",
        "6M",
        "-bufsize",
        "6M",
        "-g",
        "60",
        "-keyint_min",
        "60",
        "-sc_threshold",
        "0",
        "-c:a",
        "aac",
        "-b:a",
        "128k",
        "-ac",
        "2",
        "-ar",
        "48000",
        "-f",
        "mpegts",
        path.to_str().unwrap(),
    ]);
    path
}

fn ffmpeg_cmd(input: &Path, dir: &Path, preset: &str) -> Command {
    let graph = {
        let mut g = String::from("[0:v]split=4");
        for i in 0..LADDER.len() {
            g.push_str(&format!("[s{i}]"));
        }
        for (i, (_, w, h, _)) in LADDER.iter().enumerate() {
            g.push_str(&format!(";[s{i}]scale={w}:{h}:flags=bilinear[o{i}]"));
        }
        g
    };
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-i"])
        .arg(input)
        .args(["-filter_complex", &graph]);
    for (i, (name, _, _, kbps)) in LADDER.iter().enumerate() {
        let b = format!("{kbps}k");
        cmd.args(["-map", &format!("[o{i}]"), "-map", "0:a?"])
            .args(["-c:v", "libx264", "-preset", preset, "-profile:v", "high", "-bf", "0"])
            .args(["-b:v", &b, "-minrate", &b, "-maxrate", &b, "-bufsize", &b])
            .args(["-g", "30", "-keyint_min", "30", "-sc_threshold", "0"])
            .args(["-c:a", "copy", "-f", "mpegts"])
            .arg(dir.join(format!("ffmpeg_{name}.ts")));
    }
    cmd
}

fn frames_of(path: &Path) -> (u32, u32, u64) {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-count_frames"])
        .args(["-show_entries", "stream=width,height,nb_read_frames", "-of", "json"])
        .arg(path)
        .output()
        .expect("ffprobe must be installed");
    assert!(out.status.success(), "ffprobe {path:?} failed");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let s = &v["streams"][0];
    let n = |k: &str| match &s[k] {
        serde_json::Value::Number(n) => n.as_u64().unwrap_or(0),
        serde_json::Value::String(t) => t.parse().unwrap_or(0),
        _ => 0,
    };
    (n("width") as u32, n("height") as u32, n("nb_read_frames"))
}

/// (own, children) CPU seconds (user + system) of this process so far, from /proc (Linux only;
/// zeros elsewhere).
fn cpu_secs() -> (f64, f64) {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return (0.0, 0.0);
    };
    // Fields after the parenthesised command name; utime is field 14 overall.
    let rest = stat.rsplit_once(')').map_or("", |r| r.1);
    let f: Vec<f64> = rest.split_whitespace().map(|x| x.parse().unwrap_or(0.0)).collect();
    let tick = 100.0; // USER_HZ on Linux
    let g = |i: usize| f.get(i).copied().unwrap_or(0.0) / tick;
    (g(11) + g(12), g(13) + g(14))
}

struct Stats {
    median: f64,
    min: f64,
    max: f64,
}

fn stats(v: &[f64]) -> Stats {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    let median = if n % 2 == 1 { s[n / 2] } else { (s[n / 2 - 1] + s[n / 2]) / 2.0 };
    Stats { median, min: s[0], max: s[n - 1] }
}

fn main() {
    // `cargo bench` passes `--bench`; a libtest-style filter argument is ignored.
    let runs: usize = std::env::var("LADDER_RUNS").ok().and_then(|v| v.parse().ok()).filter(|&n| n > 0).unwrap_or(7);
    let preset = std::env::var("LADDER_PRESET").unwrap_or_else(|_| "veryfast".into());
    let dir = tempfile::tempdir().unwrap();
    let input = match std::env::var_os("LADDER_INPUT") {
        Some(p) => PathBuf::from(p),
        None => make_input(dir.path()),
    };
    let data = std::fs::read(&input).unwrap();
    let profiles: Vec<Profile> = LADDER
        .iter()
        .map(|&(name, width, height, kbps)| Profile {
            name: name.to_string(),
            width,
            height,
            bitrate: kbps * 1000,
            fps: 0,
            fps_den: 1,
            gop_ms: 1000,
            profile: H264Profile::ConstrainedHigh,
        })
        .collect();
    let opts = TranscodeOptions { x264_preset: preset.clone(), ..TranscodeOptions::default() };

    let ours_only = std::env::var_os("LADDER_OURS_ONLY").is_some();
    let ours_once = || {
        let c = cpu_secs().0;
        let t = Instant::now();
        let out = transcode(&data, InputFormat::MpegTs, &profiles, &opts).expect("transcode");
        let ms = t.elapsed().as_secs_f64() * 1000.0;
        (ms, cpu_secs().0 - c, out)
    };
    let ffmpeg_once = || {
        if ours_only {
            return (f64::NAN, 0.0);
        }
        let c = cpu_secs().1;
        let t = Instant::now();
        run(&mut ffmpeg_cmd(&input, dir.path(), &preset));
        let ms = t.elapsed().as_secs_f64() * 1000.0;
        (ms, cpu_secs().1 - c)
    };

    // Warm-up (page cache, lazy library init), then interleaved timed runs.
    let (_, _, warm) = ours_once();
    ffmpeg_once();
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    let (mut ours_cpu, mut ffmpeg_cpu) = (0.0, 0.0);
    let mut last = warm;
    for _ in 0..runs {
        let (ms, cpu, out) = ours_once();
        ours.push(ms);
        ours_cpu += cpu;
        last = out;
        let (ms, cpu) = ffmpeg_once();
        theirs.push(ms);
        ffmpeg_cpu += cpu;
    }

    // A benchmark of a broken transcode is worthless: every rendition must decode with 60 frames.
    assert_eq!(last.decoded_frames, 60, "source frames");
    for (r, &(name, w, h, _)) in last.renditions.iter().zip(LADDER.iter()) {
        assert_eq!(r.name, name);
        let path = dir.path().join(format!("ours_{name}.ts"));
        std::fs::write(&path, &r.data).unwrap();
        let got = frames_of(&path);
        assert_eq!(got, (w, h, 60), "rendition {name} of ours");
        assert_eq!(r.frames, 60);
    }

    let (o, f) = (stats(&ours), stats(&theirs));
    let ratio = o.median / f.median;
    let n = runs as f64;
    let (ours_cpu, ffmpeg_cpu) = (ours_cpu / n, ffmpeg_cpu / n);
    println!(
        "ladder 1080p30 2s -> 720p/480p/360p/240p {preset}: ours median {:.0} ms (min {:.0}, max {:.0}), \
         ffmpeg CLI median {:.0} ms (min {:.0}, max {:.0}), ratio {ratio:.2} ({runs} runs each)",
        o.median, o.min, o.max, f.median, f.min, f.max
    );
    println!(
        "  CPU per run: ours {ours_cpu:.2} s ({:.2} cores busy), ffmpeg CLI {ffmpeg_cpu:.2} s ({:.2} cores busy)",
        ours_cpu * 1000.0 / o.median,
        ffmpeg_cpu * 1000.0 / f.median
    );
    let json = serde_json::json!({
        "bench": "ladder",
        "input": "1080p30 2s",
        "preset": preset,
        "runs": runs,
        "ours_ms": {"median": o.median, "min": o.min, "max": o.max, "all": ours},
        "ffmpeg_ms": {"median": f.median, "min": f.min, "max": f.max, "all": theirs},
        "ratio": ratio,
        "ours_cpu_s": ours_cpu,
        "ffmpeg_cpu_s": ffmpeg_cpu,
    });
    println!("{json}");
}
