//! Ladder benchmark: our `transcode` against the FFmpeg CLI — Debian's (5.1, on PATH) and the
//! newest, 9.0.2 from the `imageio-ffmpeg` wheel (`make bench` installs it at
//! `build/ffmpeg9/ffmpeg`) — each decoding a 2-second segment once and encoding
//! livepeer_bench's ladder (720p 3000k / 480p 1600k / 360p 800k / 240p 250k, CBR, 1 s GOP,
//! libx264) in one process (`split`; the CLI scales each rung bilinear from the source, ours the
//! top rung so and each smaller one bicubic from the next larger). Cases: the 1080p30 source with the
//! `veryfast`, `ultrafast` and `medium` presets, and a 720p30 source into the three lower rungs
//! (`veryfast`). Runs are interleaved (ours, 5.1, 9.0.2, ours, …) so machine noise hits all alike.
//!
//! For each case it prints the medians, CPU-seconds per run, cores busy, the ratios of ours to
//! each CLI, and the quality of every rendition of each side against the source (SSIM and PSNR,
//! the source scaled to the rendition's size, timestamps aligned with `setpts=PTS-STARTPTS`) and
//! its size, so that speed is never bought with quality or bits. One JSON line per case
//! (`{"bench":"ladder",…`).
//!
//! Environment: `LADDER_RUNS` (default 7) timed runs of each after one warm-up; `LADDER_CASES`
//! a comma list of `1080p-veryfast,1080p-ultrafast,1080p-medium,720p-veryfast` (default all);
//! `LADDER_INPUT` an MPEG-TS file to use as the 1080p source; `LADDER_FFMPEG9` another path for
//! the newest CLI (a missing one is skipped with a note); `LADDER_DECODER=nvdec` (or `nvdec:N`)
//! decodes on an NVIDIA GPU, ours through NVDEC and the CLIs with `-hwaccel cuda`, the rest on
//! the CPU as before. Asserts that every rendition of ours
//! decodes with the source's 60 frames at its size.
//!
//! Ours runs with the node's allocator, jemalloc, which FFmpeg's and x264's buffers come from
//! too (glibc's malloc handed them fresh pages at every segment: 23 000 page faults a 1080p
//! segment against 7 700).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use lp_pipelines::bench::{self, LIVEPEER_BENCH_LADDER as LADDER, cpu_seconds};
use lp_pipelines::{InputFormat, TranscodeOptions, VideoDecoder, transcode};

#[cfg(all(target_os = "linux", not(target_env = "musl")))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

type Rung = (&'static str, u32, u32, u32);

fn run(cmd: &mut Command) {
    let out = cmd.output().expect("the ffmpeg CLI must be installed");
    assert!(out.status.success(), "{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr));
}

/// The realistic segment of performance.md B1 (`lp_pipelines::bench::source_args`), 2 s.
fn make_input(dir: &Path, (w, h): (u32, u32), mbps: u32) -> PathBuf {
    let path = dir.join(format!("seg{h}.ts"));
    run(Command::new("ffmpeg").args(bench::source_args(&path, (w, h), mbps, 2)));
    path
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

/// One side of the comparison: its timings, CPU and the renditions of its last run.
struct Side {
    name: String,
    ms: Vec<f64>,
    cpu_s: f64,
    out: PathBuf,
}

impl Side {
    fn new(name: &str, dir: &Path) -> Side {
        let out = dir.join(name.replace([' ', '.'], "_"));
        std::fs::create_dir_all(&out).unwrap();
        Side { name: name.to_string(), ms: Vec::new(), cpu_s: 0.0, out }
    }
}

/// `LADDER_DECODER`, default the CPU.
fn decoder() -> VideoDecoder {
    let decoder = std::env::var("LADDER_DECODER").map_or(VideoDecoder::Cpu, |s| s.parse().expect("LADDER_DECODER"));
    decoder.open().expect("LADDER_DECODER's device");
    decoder
}

fn ffmpeg9() -> Option<PathBuf> {
    let path = std::env::var_os("LADDER_FFMPEG9")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../build/ffmpeg9/ffmpeg"));
    if path.is_file() {
        Some(path)
    } else {
        println!(
            "(no FFmpeg 9 CLI at {}: run `make bench`, which installs it; comparing with Debian's only)",
            path.display()
        );
        None
    }
}

fn run_case(dir: &Path, case: &str, source: &Path, ladder: &[Rung], preset: &str, runs: usize, ffmpeg9: Option<&Path>) {
    let data = std::fs::read(source).unwrap();
    let profiles = bench::ladder(ladder);
    let decoder = decoder();
    let opts = TranscodeOptions { x264_preset: preset.to_string(), decoder, ..TranscodeOptions::default() };
    let case_dir = dir.join(case);
    let mut sides = vec![Side::new("ours", &case_dir), Side::new("ffmpeg 5.1", &case_dir)];
    let mut bins: Vec<Option<PathBuf>> = vec![None, Some(PathBuf::from("ffmpeg"))];
    if let Some(bin) = ffmpeg9 {
        sides.push(Side::new("ffmpeg 9.0.2", &case_dir));
        bins.push(Some(bin.to_path_buf()));
    }
    let once = |side: &mut Side, bin: &Option<PathBuf>, timed: bool| {
        let (own, children) = cpu_seconds();
        let t = Instant::now();
        match bin {
            None => {
                let out = transcode(&data, InputFormat::MpegTs, &profiles, &opts).expect("transcode");
                assert_eq!(out.decoded_frames, 60, "source frames");
                for r in &out.renditions {
                    std::fs::write(side.out.join(format!("{}.ts", r.name)), &r.data).unwrap();
                }
            }
            Some(bin) => {
                run(&mut bench::ffmpeg_ladder_command(bin, source, &side.out, &profiles, preset, 30.0, decoder))
            }
        }
        let ms = t.elapsed().as_secs_f64() * 1000.0;
        let (own2, children2) = cpu_seconds();
        if timed {
            side.ms.push(ms);
            side.cpu_s += (own2 - own) + (children2 - children);
        }
    };
    // Warm-up (page cache, lazy library init), then interleaved timed runs.
    for (side, bin) in sides.iter_mut().zip(&bins) {
        once(side, bin, false);
    }
    for _ in 0..runs {
        for (side, bin) in sides.iter_mut().zip(&bins) {
            once(side, bin, true);
        }
    }

    // A benchmark of a broken transcode is worthless: every rendition must decode whole.
    for &(name, w, h, _) in ladder {
        assert_eq!(frames_of(&sides[0].out.join(format!("{name}.ts"))), (w, h, 60), "rendition {name} of ours");
    }
    let ours_median = stats(&sides[0].ms).median;
    println!(
        "\n{case}: {} -> {} ({preset}, decoded on {decoder}, {runs} runs each)",
        source.file_name().unwrap().to_string_lossy(),
        ladder.iter().map(|r| r.0).collect::<Vec<_>>().join("/")
    );
    let mut json_sides = serde_json::Map::new();
    for side in &sides {
        let st = stats(&side.ms);
        let cpu = side.cpu_s / runs as f64;
        let mut line = format!(
            "  {:<13} median {:>6.0} ms (min {:.0}, max {:.0})  CPU {cpu:.2} s/run, {:.2} cores busy",
            side.name,
            st.median,
            st.min,
            st.max,
            cpu * 1000.0 / st.median
        );
        if side.name != "ours" {
            line.push_str(&format!("  ours/this {:.2}", ours_median / st.median));
        }
        println!("{line}");
        let mut renditions = serde_json::Map::new();
        for &(name, w, h, _) in ladder {
            let path = side.out.join(format!("{name}.ts"));
            let (ssim, psnr) = bench::quality(source, &path, (w, h));
            let bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            println!("      {name:>5}: SSIM {ssim:.5}  PSNR {psnr:.2} dB  {bytes} bytes");
            renditions.insert(name.into(), serde_json::json!({"ssim": ssim, "psnr": psnr, "bytes": bytes}));
        }
        json_sides.insert(
            side.name.clone(),
            serde_json::json!({"median_ms": st.median, "min_ms": st.min, "max_ms": st.max, "all_ms": side.ms,
                "cpu_s": cpu, "ratio_ours": ours_median / st.median, "renditions": renditions}),
        );
    }
    println!(
        "{}",
        serde_json::json!({"bench": "ladder", "case": case, "preset": preset, "decoder": decoder.to_string(),
            "runs": runs, "sides": json_sides})
    );
}

fn main() {
    // `cargo bench` passes `--bench`; a libtest-style filter argument is ignored.
    let runs: usize = std::env::var("LADDER_RUNS").ok().and_then(|v| v.parse().ok()).filter(|&n| n > 0).unwrap_or(7);
    let all = "1080p-veryfast,1080p-ultrafast,1080p-medium,720p-veryfast";
    let cases = std::env::var("LADDER_CASES").unwrap_or_else(|_| all.into());
    let dir = tempfile::tempdir().unwrap();
    let ffmpeg9 = ffmpeg9();
    let source1080 = match std::env::var_os("LADDER_INPUT") {
        Some(p) => PathBuf::from(p),
        None => make_input(dir.path(), (1920, 1080), 6),
    };
    for case in cases.split(',').map(str::trim).filter(|c| !c.is_empty()) {
        let (source, ladder, preset) = match case.split_once('-') {
            Some(("1080p", preset)) => (source1080.clone(), &LADDER[..], preset),
            Some(("720p", preset)) => (make_input(dir.path(), (1280, 720), 3), &LADDER[1..], preset),
            _ => panic!("unknown case {case:?}; expected one of {all}"),
        };
        run_case(dir.path(), case, &source, ladder, preset, runs, ffmpeg9.as_deref());
    }
}
