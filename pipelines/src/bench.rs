//! What the transcoding benchmarks share (`benches/ladder.rs`, `livepeer bench`): livepeer_bench's
//! ladder, the segment they transcode, and the FFmpeg CLI command that encodes that ladder in one
//! process, the baseline they are measured against.

use std::path::Path;
use std::process::Command;

use crate::{H264Profile, Profile, VideoDecoder};

/// livepeer_bench's `transcodingOptions.json`: (name, width, height, kbps).
pub const LIVEPEER_BENCH_LADDER: [(&str, u32, u32, u32); 4] =
    [("720p", 1280, 720, 3000), ("480p", 854, 480, 1600), ("360p", 640, 360, 800), ("240p", 426, 240, 250)];

/// `rungs` of [`LIVEPEER_BENCH_LADDER`] as profiles: constant bitrate, a 1-second GOP, the
/// source's frame rate, constrained high (lpms's settings for it).
pub fn ladder(rungs: &[(&str, u32, u32, u32)]) -> Vec<Profile> {
    rungs
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
        .collect()
}

/// The `ffmpeg` arguments that make the benchmarks' segment at `out`: `secs` seconds of
/// testsrc2 with temporal noise (so that every frame costs the encoder something) at `w`×`h`,
/// 30 fps, H.264 High at a constant `mbps`, a GOP of 60, AAC 48 kHz stereo, MPEG-TS.
pub fn source_args(out: &Path, (w, h): (u32, u32), mbps: u32, secs: u32) -> Vec<String> {
    let rate = format!("{mbps}M");
    let mut args: Vec<String> =
        ["-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-f", "lavfi", "-i"].map(String::from).into();
    args.push(format!("testsrc2=size={w}x{h}:rate=30"));
    args.extend(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t"].map(String::from));
    args.push(secs.to_string());
    args.extend(
        ["-vf", "noise=alls=12:allf=t+u", "-c:v", "libx264", "-profile:v", "high", "-pix_fmt", "yuv420p"]
            .map(String::from),
    );
    for key in ["-b:v", "-minrate", "-maxrate", "-bufsize"] {
        args.extend([key.to_string(), rate.clone()]);
    }
    args.extend(
        ["-g", "60", "-keyint_min", "60", "-sc_threshold", "0", "-c:a", "aac", "-b:a", "128k"].map(String::from),
    );
    args.extend(["-ac", "2", "-ar", "48000", "-f", "mpegts"].map(String::from));
    args.push(out.to_string_lossy().into_owned());
    args
}

/// One FFmpeg CLI process (`bin`) that decodes `input` once and encodes every profile as our
/// transcode does, but for the scaling: `split` into a bilinear `scale` from the source per
/// rendition (ours cascades, see `transcode::scaled_from`), libx264 at `preset` with the
/// profile's bitrate as `b = minrate = maxrate = bufsize`, its GOP in frames of `fps` (the
/// source's rate), its H.264 profile, the audio copied, each into `out_dir/<name>.ts`. With
/// [`VideoDecoder::Nvdec`] the CLI decodes with `-hwaccel cuda` into system memory, as ours
/// does.
pub fn ffmpeg_ladder_command(
    bin: &Path,
    input: &Path,
    out_dir: &Path,
    profiles: &[Profile],
    preset: &str,
    fps: f64,
    decoder: VideoDecoder,
) -> Command {
    let mut graph = format!("[0:v]split={}", profiles.len());
    for i in 0..profiles.len() {
        graph.push_str(&format!("[s{i}]"));
    }
    for (i, p) in profiles.iter().enumerate() {
        graph.push_str(&format!(";[s{i}]scale={}:{}:flags=bilinear[o{i}]", p.width, p.height));
    }
    let mut cmd = Command::new(bin);
    cmd.args(["-hide_banner", "-loglevel", "error", "-nostdin", "-y"]);
    if let VideoDecoder::Nvdec { gpu } = decoder {
        cmd.args(["-hwaccel", "cuda", "-hwaccel_device", &gpu.to_string()]);
    }
    cmd.arg("-i").arg(input).args(["-filter_complex", &graph]);
    for (i, p) in profiles.iter().enumerate() {
        let b = format!("{}k", p.bitrate / 1000);
        cmd.args(["-map", &format!("[o{i}]"), "-map", "0:a?", "-c:v", "libx264", "-preset", preset]);
        if let Some(profile) = p.profile.x264_profile() {
            cmd.args(["-profile:v", profile]);
        }
        if p.profile.no_b_frames() {
            cmd.args(["-bf", "0"]);
        }
        cmd.args(["-b:v", &b, "-minrate", &b, "-maxrate", &b, "-bufsize", &b]);
        if p.gop_ms > 0 {
            let gop = ((p.gop_ms as f64 * fps / 1000.0).round() as u64).max(1).to_string();
            cmd.args(["-g", &gop, "-keyint_min", &gop, "-sc_threshold", "0"]);
        }
        cmd.args(["-c:a", "copy", "-f", "mpegts"]).arg(out_dir.join(format!("{}.ts", p.name)));
    }
    cmd
}

/// SSIM (All) and PSNR (average, dB) of `rendition` against `source` scaled to its size
/// (bicubic), frame by frame from each one's first timestamp, by the `ffmpeg` CLI on PATH.
pub fn quality(source: &Path, rendition: &Path, (w, h): (u32, u32)) -> (f64, f64) {
    let graph = format!(
        "[0:v]setpts=PTS-STARTPTS,split[d1][d2];[1:v]scale={w}:{h}:flags=bicubic,setpts=PTS-STARTPTS,split[r1][r2];\
         [d1][r1]ssim;[d2][r2]psnr"
    );
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-i"])
        .arg(rendition)
        .arg("-i")
        .arg(source)
        .args(["-lavfi", &graph, "-f", "null", "-"])
        .output()
        .expect("the ffmpeg CLI must be installed");
    let log = String::from_utf8_lossy(&out.stderr);
    let after = |key: &str| -> f64 {
        log.lines()
            .rev()
            .find_map(|l| l.split_once(key).and_then(|(_, v)| v.split_whitespace().next()?.parse().ok()))
            .unwrap_or_else(|| panic!("no {key} in the ffmpeg log: {log}"))
    };
    (after("All:"), after("average:"))
}

/// (own, children) CPU seconds (user + system) of this process so far, from /proc (Linux only;
/// zeros elsewhere). A child's time counts once it has been waited for.
pub fn cpu_seconds() -> (f64, f64) {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return (0.0, 0.0);
    };
    // The fields after the command name in parentheses; utime is the 14th field overall.
    let rest = stat.rsplit_once(')').map_or("", |r| r.1);
    let f: Vec<f64> = rest.split_whitespace().map(|x| x.parse().unwrap_or(0.0)).collect();
    let tick = 100.0; // USER_HZ on Linux
    let g = |i: usize| f.get(i).copied().unwrap_or(0.0) / tick;
    (g(11) + g(12), g(13) + g(14))
}
