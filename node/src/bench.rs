//! `livepeer bench`: how many live streams this machine transcodes in real time, measured the way
//! go-livepeer's `livepeer_bench` measures it, and the figure `max_sessions = "auto"` takes.
//!
//! For K = 1, 2, 3 … it runs K streams at once, started 300 ms apart, each sending the same
//! segment (by default a generated 2-second 1080p30 one) `--segments` times, one every segment
//! duration (live mode: after a segment is done a stream waits out the rest of its duration),
//! through livepeer_bench's ladder (720p 3000k, 480p 1600k, 360p 800k, 240p 250k). Ours is the
//! orchestrator's own transcoder: its worker pool with the config's `capacity` local workers,
//! `x264_preset` and `video_decoder`, so a segment's time includes any wait for a free worker,
//! as a gateway would see it. Per K it reports livepeer_bench's two figures, the real-time segments (done within
//! their duration) and the real-time duration ratio (Σ transcode time / Σ source duration), with
//! the mean and longest segment and the cores kept busy, and stops at the first K whose ratio is
//! above 0.8, the rule Livepeer's docs give for sizing `-maxSessions`. `--baseline FFMPEG` runs
//! the same sweep through an FFmpeg CLI, interleaved with ours (one process per segment, at most
//! one per stream at a time, decoding once and encoding the whole ladder with `split`).
//!
//! The result goes to `<data_dir>/bench.json` ([`Sizing`]); an orchestrator with
//! `max_sessions = "auto"` and `transcode = true` takes its `max_streams` as its own part, and
//! refuses to start on a result measured with another preset, decoder, capacity or core count
//! ([`Sizing::local_sessions`]; `node::prepare` has the other refusals). A remote transcoder
//! (`livepeer bench -c` its own config, on its machine) reports the figure when it registers,
//! and an orchestrator under "auto" counts that instead of the transcoder's capacity.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use actix::prelude::*;
use anyhow::{Context as _, Result, bail, ensure};
use bytes::Bytes;
use clap::Args;
use lp_actors::orchestrator::{SESSION_MAX_IN_FLIGHT, Submit, TranscodeJob, TranscoderPool, add_local_workers};
use lp_config::{Config, OrchestratorConfig, TranscoderConfig};
use lp_pipelines::bench::{LIVEPEER_BENCH_LADDER, cpu_seconds, ffmpeg_ladder_command, ladder, source_args};
use lp_pipelines::{InputFormat, Profile, SourceInfo, VideoDecoder};
use lp_wire::limits::MAX_MEASURED_SESSIONS;
use serde::{Deserialize, Serialize};

/// Livepeer's sizing rule (its docs for livepeer_bench): the most streams whose real-time
/// duration ratio is at most this.
pub const RATIO_LIMIT: f64 = 0.8;
/// The result's name in the data directory.
pub const SIZING_FILE: &str = "bench.json";
/// livepeer_bench's `-concurrentSessionDelay`.
const STAGGER: Duration = Duration::from_millis(300);
/// Version of the result's layout.
const SIZING_VERSION: u32 = 1;

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// The node's config: the x264_preset, video_decoder and capacity of its [orchestrator], or
    /// of its [transcoder] when it has only that (without either, the defaults), and data_dir,
    /// where the result goes.
    #[arg(short, long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// An MPEG-TS segment to send (every stream sends it over and over). Default: a generated
    /// 2-second 1080p30 segment (6 Mbps, with AAC audio), made with the ffmpeg CLI.
    #[arg(long, value_name = "FILE")]
    pub source: Option<PathBuf>,
    /// Segments each stream sends, per K.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub segments: u32,
    /// The largest K tried.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=MAX_MEASURED_SESSIONS as i64))]
    pub max_streams: u32,
    /// Also sweep this FFmpeg CLI, as the baseline (`make bench-sweep` passes the FFmpeg 9.0.2
    /// that `make bench` installs at build/ffmpeg9/ffmpeg).
    #[arg(long, value_name = "FFMPEG")]
    pub baseline: Option<PathBuf>,
    /// Where to write the result. Default: <data_dir>/bench.json, which max_sessions = "auto"
    /// reads.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

/// One K of a sweep.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Row {
    pub streams: u32,
    pub segments: u32,
    /// Segments done within their duration.
    pub realtime_segments: u32,
    /// Σ transcode time / Σ source duration.
    pub duration_ratio: f64,
    pub mean_ms: f64,
    pub max_ms: f64,
    /// CPU time over wall time.
    pub cores_busy: f64,
}

/// A sweep through the FFmpeg CLI.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Baseline {
    pub ffmpeg: String,
    /// The first line of `ffmpeg -version`.
    pub version: String,
    pub max_streams: u32,
    pub rows: Vec<Row>,
}

/// What `livepeer bench` measured (`<data_dir>/bench.json`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Sizing {
    pub version: u32,
    /// The most streams ours carried at a ratio of at most [`RATIO_LIMIT`] (0: not one).
    pub max_streams: u32,
    pub x264_preset: String,
    /// Where segments were decoded (`video_decoder`); results from before this field were
    /// measured on the CPU.
    #[serde(default = "cpu")]
    pub video_decoder: String,
    /// The local workers (`capacity`).
    pub capacity: u32,
    /// The cores this machine has.
    pub cores: u32,
    pub source: SourceInfo,
    pub ladder: Vec<String>,
    pub rows: Vec<Row>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline: Option<Baseline>,
    /// When it was measured, in seconds since 1970.
    pub measured_at: u64,
    pub livepeer: String,
}

fn cpu() -> String {
    "cpu".into()
}

/// The settings of a transcoder that a `livepeer bench` figure holds for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setup {
    pub x264_preset: String,
    /// As [`VideoDecoder`] names it (`"nvdec"` is `"nvdec:0"`).
    pub video_decoder: String,
    pub capacity: u32,
}

impl Setup {
    pub fn of_orchestrator(o: &OrchestratorConfig) -> Setup {
        Setup::new(&o.x264_preset, &o.video_decoder, o.capacity)
    }

    pub fn of_transcoder(t: &TranscoderConfig) -> Setup {
        Setup::new(&t.x264_preset, &t.video_decoder, t.capacity)
    }

    fn new(x264_preset: &str, video_decoder: &str, capacity: u32) -> Setup {
        let video_decoder =
            video_decoder.parse::<VideoDecoder>().map_or_else(|_| video_decoder.to_string(), |d| d.to_string());
        Setup { x264_preset: x264_preset.to_string(), video_decoder, capacity }
    }
}

/// What to run for a figure that is missing or stale.
const RERUN: &str = "run `livepeer bench -c <this config>` on this machine (it writes it)";

impl Sizing {
    /// The sessions `max_sessions = "auto"` gives this orchestrator's own transcoder: the
    /// result in `data_dir` ([`Sizing::measured`]), which it needs.
    pub fn local_sessions(data_dir: &Path, o: &OrchestratorConfig) -> Result<u32, String> {
        let needs = "\"auto\" needs this machine's measured streams";
        match Sizing::measured(data_dir, &Setup::of_orchestrator(o)) {
            Ok(Some(n)) => Ok(n),
            Ok(None) => Err(format!("{needs} in {}: {RERUN}, or set a number", data_dir.join(SIZING_FILE).display())),
            Err(e) => Err(format!("{needs}: {e}, or set a number")),
        }
    }

    /// The streams the result in `data_dir` found this machine carries, when it was measured
    /// with `setup` on this machine's cores; `None` when there is no result, an error saying why
    /// when the result is not for this config and machine.
    pub fn measured(data_dir: &Path, setup: &Setup) -> Result<Option<u32>, String> {
        let path = data_dir.join(SIZING_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        };
        let sizing: Sizing = serde_json::from_str(&text)
            .map_err(|e| format!("{} is not a `livepeer bench` result ({e}): {RERUN}", path.display()))?;
        let mismatch = if sizing.version != SIZING_VERSION {
            Some(format!("layout version {}, this node reads {SIZING_VERSION}", sizing.version))
        } else if sizing.x264_preset != setup.x264_preset {
            Some(format!("x264_preset {:?}, this config has {:?}", sizing.x264_preset, setup.x264_preset))
        } else if sizing.video_decoder != setup.video_decoder {
            Some(format!("video_decoder {:?}, this config has {:?}", sizing.video_decoder, setup.video_decoder))
        } else if sizing.capacity != setup.capacity {
            Some(format!("capacity {}, this config has {}", sizing.capacity, setup.capacity))
        } else if sizing.cores != cores() {
            Some(format!("{} cores, this machine has {}", sizing.cores, cores()))
        } else {
            None
        };
        match mismatch {
            Some(what) => Err(format!("{} was measured with {what}: {RERUN}", path.display())),
            None => Ok(Some(sizing.max_streams)),
        }
    }
}

fn cores() -> u32 {
    thread::available_parallelism().map_or(1, |n| n.get() as u32)
}

pub fn main(args: BenchArgs) -> ExitCode {
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench failed: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// One side of the sweep: transcodes one segment of one stream, blocking, and answers how long
/// it took.
trait Side: Sync {
    fn name(&self) -> String;
    fn transcode(&self, stream: u32, seq: u32) -> Result<Duration>;
}

/// The orchestrator's transcoder pool with its local workers.
struct Ours {
    pool: Addr<TranscoderPool>,
    data: Bytes,
    profiles: Arc<Vec<Profile>>,
    capacity: u32,
}

impl Side for Ours {
    fn name(&self) -> String {
        format!("ours (capacity {})", self.capacity)
    }

    fn transcode(&self, _stream: u32, seq: u32) -> Result<Duration> {
        let job = TranscodeJob {
            seq: seq.into(),
            format: InputFormat::MpegTs,
            profiles: self.profiles.clone(),
            data: self.data.clone(),
            deadline: Instant::now() + Duration::from_secs(600),
        };
        let started = Instant::now();
        let answer = futures::executor::block_on(self.pool.send(Submit(job))).context("the transcoder pool stopped")?;
        let took = started.elapsed();
        let data = answer.map_err(|f| anyhow::anyhow!("transcode failed: {f}"))?;
        ensure!(
            data.segments.len() == self.profiles.len() && data.segments.iter().all(|s| !s.data.is_empty()),
            "the transcode answered {} renditions for {} profiles",
            data.segments.len(),
            self.profiles.len()
        );
        Ok(took)
    }
}

/// An FFmpeg CLI, one process per segment.
struct Cli {
    bin: PathBuf,
    version: String,
    source: PathBuf,
    profiles: Vec<Profile>,
    preset: String,
    fps: f64,
    /// Decodes as ours does (`-hwaccel cuda` for NVDEC).
    decoder: VideoDecoder,
    /// One output directory per stream.
    out: PathBuf,
}

impl Side for Cli {
    fn name(&self) -> String {
        self.version.clone()
    }

    fn transcode(&self, stream: u32, _seq: u32) -> Result<Duration> {
        let dir = self.out.join(stream.to_string());
        std::fs::create_dir_all(&dir)?;
        let mut cmd =
            ffmpeg_ladder_command(&self.bin, &self.source, &dir, &self.profiles, &self.preset, self.fps, self.decoder);
        let started = Instant::now();
        let out = cmd.output().with_context(|| format!("running {}", self.bin.display()))?;
        let took = started.elapsed();
        ensure!(out.status.success(), "{} failed: {}", self.bin.display(), String::from_utf8_lossy(&out.stderr).trim());
        for p in &self.profiles {
            let path = dir.join(format!("{}.ts", p.name));
            ensure!(
                std::fs::metadata(&path).is_ok_and(|m| m.len() > 0),
                "{} wrote no {}",
                self.bin.display(),
                path.display()
            );
        }
        Ok(took)
    }
}

/// K streams of `segments` segments each through `side`, live.
fn sweep_once(side: &dyn Side, streams: u32, segments: u32, duration: Duration) -> Result<Row> {
    let (own, children) = cpu_seconds();
    let started = Instant::now();
    let times: Vec<Duration> = thread::scope(|scope| {
        let mut handles = Vec::new();
        for stream in 0..streams {
            if stream > 0 {
                thread::sleep(STAGGER);
            }
            handles.push(scope.spawn(move || -> Result<Vec<Duration>> {
                let mut took = Vec::new();
                for seq in 0..segments {
                    let begun = Instant::now();
                    took.push(side.transcode(stream, seq)?);
                    thread::sleep(duration.saturating_sub(begun.elapsed()));
                }
                Ok(took)
            }));
        }
        let mut all = Vec::new();
        for handle in handles {
            all.extend(handle.join().map_err(|_| anyhow::anyhow!("a stream's thread panicked"))??);
        }
        Ok::<_, anyhow::Error>(all)
    })?;
    let wall = started.elapsed().as_secs_f64();
    let (own2, children2) = cpu_seconds();
    let total: f64 = times.iter().map(Duration::as_secs_f64).sum();
    let n = times.len() as f64;
    Ok(Row {
        streams,
        segments: times.len() as u32,
        realtime_segments: times.iter().filter(|t| **t <= duration).count() as u32,
        duration_ratio: total / (n * duration.as_secs_f64()),
        mean_ms: total * 1000.0 / n,
        max_ms: times.iter().max().map_or(0.0, |t| t.as_secs_f64() * 1000.0),
        cores_busy: ((own2 - own) + (children2 - children)) / wall,
    })
}

fn print_header(name: &str) {
    println!("{name}:");
    println!("  streams  segments  real-time  duration ratio  mean ms  max ms  cores busy");
}

fn print_row(r: &Row) {
    println!(
        "  {:>7}  {:>8}  {:>9}  {:>14.2}  {:>7.0}  {:>6.0}  {:>10.2}",
        r.streams,
        r.segments,
        format!("{}/{}", r.realtime_segments, r.segments),
        r.duration_ratio,
        r.mean_ms,
        r.max_ms,
        r.cores_busy
    );
}

/// The largest K of `rows` at a ratio of at most [`RATIO_LIMIT`], counting up from 1 (a K after
/// one above the limit does not count).
fn max_streams(rows: &[Row]) -> u32 {
    rows.iter().take_while(|r| r.duration_ratio <= RATIO_LIMIT).last().map_or(0, |r| r.streams)
}

/// Sweep K = 1, 2 … on each side, interleaved (ours at K, the baseline at K, ours at K + 1 …),
/// until a side's ratio passes [`RATIO_LIMIT`] or K passes `max`.
fn sweep(sides: &[&dyn Side], segments: u32, duration: Duration, max: u32) -> Result<Vec<Vec<Row>>> {
    let mut rows: Vec<Vec<Row>> = vec![Vec::new(); sides.len()];
    for streams in 1..=max {
        let mut ran = false;
        for (side, rows) in sides.iter().zip(&mut rows) {
            if rows.last().is_some_and(|r| r.duration_ratio > RATIO_LIMIT) {
                continue;
            }
            eprintln!(
                "  {}: {streams} stream{} of {segments} segments …",
                side.name(),
                if streams == 1 { "" } else { "s" }
            );
            rows.push(sweep_once(*side, streams, segments, duration)?);
            ran = true;
        }
        if !ran {
            break;
        }
    }
    Ok(rows)
}

fn run(args: BenchArgs) -> Result<()> {
    let env = Config::env_overrides();
    let (cfg, errors) = Config::load_all(args.config.as_deref(), &env);
    let Some(cfg) = cfg.filter(|_| errors.is_empty()) else {
        bail!("invalid configuration: {}", errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "));
    };
    // A transcoder's config sizes that transcoder; any other, the orchestrator's own.
    let (setup, whose) = match (&cfg.orchestrator, &cfg.transcoder) {
        (None, Some(t)) => (Setup::of_transcoder(t), "the transcoder"),
        (o, _) => (Setup::of_orchestrator(&o.clone().unwrap_or_default()), "the orchestrator's transcoder"),
    };
    let opts = crate::transcoder::options(&setup.x264_preset, &setup.video_decoder).context("video_decoder")?;
    let (preset, capacity) = (setup.x264_preset.clone(), setup.capacity);
    let dir = tempfile::tempdir().context("making a temporary directory")?;
    let source = match &args.source {
        Some(path) => path.clone(),
        None => {
            let path = dir.path().join("source.ts");
            eprintln!("making a 2-second 1080p30 segment with the ffmpeg CLI …");
            let status = Command::new("ffmpeg")
                .args(source_args(&path, (1920, 1080), 6, 2))
                .status()
                .context("running ffmpeg (is the ffmpeg CLI installed? `make setup` installs it)")?;
            ensure!(status.success(), "ffmpeg could not make the source segment ({status})");
            path
        }
    };
    let data = Bytes::from(std::fs::read(&source).with_context(|| format!("reading {}", source.display()))?);
    let info = lp_pipelines::probe(&data, InputFormat::MpegTs)
        .with_context(|| format!("{} is not an MPEG-TS segment FFmpeg decodes", source.display()))?;
    ensure!(info.duration_ms > 0, "{} has no duration", source.display());
    let duration = Duration::from_millis(info.duration_ms);
    let profiles = ladder(&LIVEPEER_BENCH_LADDER);
    let names: Vec<String> = profiles.iter().map(|p| p.name.clone()).collect();

    let baseline = match &args.baseline {
        Some(bin) => {
            let out = Command::new(bin)
                .arg("-version")
                .output()
                .with_context(|| format!("running {} -version", bin.display()))?;
            ensure!(out.status.success(), "{} -version failed", bin.display());
            let first = String::from_utf8_lossy(&out.stdout).lines().next().unwrap_or("ffmpeg").to_string();
            // `ffmpeg version 9.0.2-static https://… Copyright (c) …`: up to the copyright.
            let version = first.split(" Copyright").next().unwrap_or(&first).trim().to_string();
            Some(Cli {
                bin: bin.clone(),
                version,
                source: source.clone(),
                profiles: profiles.clone(),
                preset: preset.clone(),
                fps: if info.fps > 0.0 { info.fps } else { 30.0 },
                decoder: opts.decoder,
                out: dir.path().join("baseline"),
            })
        }
        None => None,
    };

    let cores = cores();
    println!(
        "livepeer bench: {}x{} {:.0} fps, {:.1} s segment ({}) into {}, x264 {preset}, decoded on {}; {} segments \
         a stream, streams started {} ms apart, each sending one every {:.1} s; {cores} cores",
        info.width,
        info.height,
        info.fps,
        duration.as_secs_f64(),
        args.source.as_ref().map_or("generated".to_string(), |p| p.display().to_string()),
        names.join("/"),
        opts.decoder,
        args.segments,
        STAGGER.as_millis(),
        duration.as_secs_f64(),
    );
    let (rows, baseline) = actix::System::new().block_on(async {
        // The orchestrator's kind of pool, its queue sized for every stream of the sweep.
        let pool = TranscoderPool::new(args.max_streams as usize * SESSION_MAX_IN_FLIGHT).start();
        add_local_workers(&pool, capacity, opts).await.context("starting the local workers")?;
        let ours = Ours { pool, data: data.clone(), profiles: Arc::new(profiles.clone()), capacity };
        let (segments, max) = (args.segments, args.max_streams);
        tokio::task::spawn_blocking(move || {
            let mut sides: Vec<&dyn Side> = vec![&ours];
            sides.extend(baseline.as_ref().map(|b| b as &dyn Side));
            let mut rows = sweep(&sides, segments, duration, max)?.into_iter();
            let ours = rows.next().unwrap_or_default();
            let baseline = baseline.map(|b| {
                let rows = rows.next().unwrap_or_default();
                Baseline {
                    ffmpeg: b.bin.display().to_string(),
                    version: b.version,
                    max_streams: max_streams(&rows),
                    rows,
                }
            });
            Ok::<_, anyhow::Error>((ours, baseline))
        })
        .await
        .context("the sweep's thread panicked")?
    })?;

    let sizing = Sizing {
        version: SIZING_VERSION,
        max_streams: max_streams(&rows),
        x264_preset: preset,
        video_decoder: setup.video_decoder,
        capacity,
        cores,
        source: info,
        ladder: names,
        rows,
        baseline,
        measured_at: SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs()),
        livepeer: env!("CARGO_PKG_VERSION").to_string(),
    };
    println!();
    print_header(&format!("ours ({whose}, capacity {capacity})"));
    sizing.rows.iter().for_each(print_row);
    if let Some(b) = &sizing.baseline {
        print_header(&format!("{} ({}, one process per segment)", b.version, b.ffmpeg));
        b.rows.iter().for_each(print_row);
    }
    let mut summary = format!("streams at a duration ratio of at most {RATIO_LIMIT}: ours {}", sizing.max_streams);
    if let Some(b) = &sizing.baseline {
        summary.push_str(&format!(", the baseline {}", b.max_streams));
        if let (Some(o), Some(f)) = (sizing.rows.first(), b.rows.first()) {
            summary.push_str(&format!(" (at 1 stream, ours/baseline {:.2})", o.duration_ratio / f.duration_ratio));
        }
    }
    println!("{summary}");
    if sizing.rows.last().is_some_and(|r| r.streams == args.max_streams && r.duration_ratio <= RATIO_LIMIT) {
        println!(
            "every K up to --max-streams {} was within {RATIO_LIMIT}: this machine carries at least that",
            args.max_streams
        );
    }
    if sizing.max_streams == 0 {
        println!(
            "this machine does not carry one stream of this ladder at {RATIO_LIMIT}: a faster x264_preset, or remote transcoders"
        );
    }
    let out = args.out.unwrap_or_else(|| cfg.data_dir.join(SIZING_FILE));
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    let json = serde_json::to_string_pretty(&sizing)?;
    std::fs::write(&out, json + "\n").with_context(|| format!("writing {}", out.display()))?;
    println!("wrote {} (max_sessions = \"auto\" takes {} from it)", out.display(), sizing.max_streams);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(streams: u32, duration_ratio: f64) -> Row {
        Row { streams, segments: 1, realtime_segments: 1, duration_ratio, mean_ms: 0.0, max_ms: 0.0, cores_busy: 0.0 }
    }

    fn sizing(x264_preset: &str, capacity: u32, cores: u32) -> Sizing {
        let source = SourceInfo {
            width: 1920,
            height: 1080,
            fps: 30.0,
            duration_ms: 2000,
            video_codec: "h264".into(),
            has_audio: true,
            codecs: None,
        };
        Sizing {
            version: SIZING_VERSION,
            max_streams: 3,
            x264_preset: x264_preset.into(),
            video_decoder: "cpu".into(),
            capacity,
            cores,
            source,
            ladder: vec!["720p".into()],
            rows: vec![row(1, 0.3), row(2, 0.5), row(3, 0.7), row(4, 0.9)],
            baseline: None,
            measured_at: 0,
            livepeer: "0".into(),
        }
    }

    /// `max_sessions = "auto"` takes the figure measured for this config on this machine, and
    /// refuses, saying what to run, a missing, foreign or stale one.
    #[test]
    fn auto_takes_the_figure_measured_for_this_config_and_machine() {
        let dir = tempfile::tempdir().unwrap();
        let o = OrchestratorConfig::default();
        let write =
            |s: &Sizing| std::fs::write(dir.path().join(SIZING_FILE), serde_json::to_string(s).unwrap()).unwrap();
        let refused = |needle: &str| {
            let e = Sizing::local_sessions(dir.path(), &o).expect_err(needle);
            assert!(e.contains(needle) && e.contains("livepeer bench -c"), "{e}");
        };
        refused("bench.json");
        std::fs::write(dir.path().join(SIZING_FILE), "{}").unwrap();
        refused("is not a `livepeer bench` result");
        write(&sizing("veryfast", 1, cores()));
        assert_eq!(Sizing::local_sessions(dir.path(), &o), Ok(3));
        write(&sizing("ultrafast", 1, cores()));
        refused("x264_preset \"ultrafast\", this config has \"veryfast\"");
        write(&Sizing { video_decoder: "nvdec:1".into(), ..sizing("veryfast", 1, cores()) });
        refused("video_decoder \"nvdec:1\", this config has \"cpu\"");
        // "nvdec" is GPU 0.
        write(&Sizing { video_decoder: "nvdec:0".into(), ..sizing("veryfast", 1, cores()) });
        let nvdec = OrchestratorConfig { video_decoder: "nvdec".into(), ..OrchestratorConfig::default() };
        assert_eq!(Sizing::local_sessions(dir.path(), &nvdec), Ok(3));
        write(&sizing("veryfast", 2, cores()));
        refused("capacity 2, this config has 1");
        write(&sizing("veryfast", 1, cores() + 1));
        refused(&format!("{} cores, this machine has {}", cores() + 1, cores()));
        write(&Sizing { version: SIZING_VERSION + 1, ..sizing("veryfast", 1, cores()) });
        refused("layout version");
    }

    #[test]
    fn the_largest_k_counts_up_to_the_first_above_the_limit() {
        assert_eq!(max_streams(&[]), 0);
        assert_eq!(max_streams(&[row(1, 0.81)]), 0);
        assert_eq!(max_streams(&[row(1, 0.5), row(2, 0.8), row(3, 0.95)]), 2, "0.8 itself is in");
        assert_eq!(max_streams(&[row(1, 0.5), row(2, 0.9), row(3, 0.7)]), 1, "a K after one above does not count");
    }
}
