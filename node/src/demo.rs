//! `livepeer demo`: the main job. A whole local network in one process, a generated
//! 20-second 1280x720 30 fps test stream pushed segment by segment through the gateway's HTTP
//! ingest as an outside client would, the HLS output written under `--out`, and a summary
//! (printed and in `summary.json`).
//!
//! By default the network is on a devnet chain with ticket payments ([`devnet`]): anvil with our
//! contracts, an orchestrator that registers itself, a gateway that funds its deposit and pays
//! with tickets, and the winning tickets redeemed. `--offchain` runs the orchestrator (with a
//! local transcoder), gateway and admin listener of one node, on free loopback ports, with no
//! chain and no payments.

mod ai;
mod devnet;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use clap::Args;
use lp_actors::gateway::hls::{SOURCE, vod_playlist};
use lp_config::{AdminConfig, Config, GatewayConfig, LogConfig, OrchestratorConfig};
use lp_pipelines::InputFormat;
use serde::Serialize;

use crate::node::{self, Roles};
use crate::telemetry;

const STREAM: &str = "demo";

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Where to write the source segments, the HLS output (hls/) and summary.json.
    #[arg(long, value_name = "DIR", default_value = "demo-out")]
    pub out: PathBuf,
    /// Keep the network up afterwards and print its URLs, so you can push your own stream.
    #[arg(long)]
    pub serve: bool,
    /// Seconds of test stream to generate (2-second segments).
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(2..=600))]
    pub seconds: u32,
    /// Renditions to make, as go-livepeer preset names.
    #[arg(long, value_delimiter = ',', default_value = "P720p30fps16x9,P360p30fps16x9,P240p30fps16x9")]
    pub profiles: Vec<String>,
    /// Run without a chain: one node, no ticket payments.
    #[arg(long)]
    pub offchain: bool,
    /// The AI models the orchestrator serves (`make setup` makes them): after the stream, one
    /// upscale and one llm request go through the gateway. Without them, no AI part.
    #[arg(long, value_name = "DIR", default_value = "build/models")]
    pub models: PathBuf,
}

#[derive(Debug, Serialize)]
struct RenditionInfo {
    name: String,
    width: u32,
    height: u32,
}

#[derive(Debug, Serialize)]
struct Summary {
    segments_pushed: usize,
    segments_transcoded: usize,
    renditions: Vec<RenditionInfo>,
    latency_ms_p50: u64,
    latency_ms_p95: u64,
    /// Seconds of video transcoded per second of wall time spent on the pushes (>1: faster than
    /// real time).
    realtime_ratio: f64,
    source_seconds: f64,
    orchestrator: String,
    hls_master: String,
    /// On the devnet: the payments (absent with `--offchain`).
    #[serde(flatten)]
    payments: Option<devnet::Payments>,
    /// The AI requests (absent without the models).
    #[serde(skip_serializing_if = "Option::is_none")]
    ai: Option<ai::AiSummary>,
}

pub fn main(args: DemoArgs) -> ExitCode {
    telemetry::init_logging(&LogConfig { level: "warn".into(), ..Default::default() });
    let run = async move { if args.offchain { run_offchain(args).await } else { devnet::run(args).await } };
    match actix_web::rt::System::new().block_on(run) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.is::<devnet::Interrupted>() => {
            eprintln!("demo stopped: {e}");
            ExitCode::from(130)
        }
        Err(e) => {
            eprintln!("demo failed: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Make the test stream with the ffmpeg CLI: 2-second MPEG-TS segments, H.264 + AAC.
fn generate_stream(dir: &Path, seconds: u32) -> Result<Vec<PathBuf>> {
    fs::create_dir_all(dir)?;
    let status = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y"])
        .args(["-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30"])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
        .args(["-t", &seconds.to_string()])
        .args(["-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-b:v", "3M"])
        .args(["-g", "60", "-keyint_min", "60", "-sc_threshold", "0"])
        .args(["-c:a", "aac", "-b:a", "128k"])
        .args(["-f", "segment", "-segment_time", "2", "-segment_format", "mpegts"])
        .arg(dir.join("%d.ts"))
        .status()
        .context("running ffmpeg (is the ffmpeg CLI installed? `make setup` installs it)")?;
    if !status.success() {
        bail!("ffmpeg could not generate the test stream ({status})");
    }
    let mut segments: Vec<(u32, PathBuf)> = fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let p = e.path();
            let n = p.file_stem()?.to_str()?.parse().ok()?;
            Some((n, p))
        })
        .collect();
    segments.sort();
    Ok(segments.into_iter().map(|(_, p)| p).collect())
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx]
}

/// Empty `out`'s source and HLS folders of an earlier run; answers the HLS folder.
fn prepare_out(out: &Path) -> Result<PathBuf> {
    let hls_dir = out.join("hls");
    let _ = fs::remove_dir_all(&hls_dir);
    let _ = fs::remove_dir_all(out.join("source"));
    fs::create_dir_all(&hls_dir)?;
    Ok(hls_dir)
}

/// The test stream, announced.
fn make_stream(out: &Path, seconds: u32) -> Result<Vec<PathBuf>> {
    println!("livepeer demo: generating a {seconds}-second 1280x720 30 fps test stream with ffmpeg…");
    generate_stream(&out.join("source"), seconds)
}

/// `--offchain`: one node with every role, no chain.
async fn run_offchain(args: DemoArgs) -> Result<()> {
    let out = args.out.clone();
    let hls_dir = prepare_out(&out)?;
    let segments = make_stream(&out, args.seconds)?;

    let cfg = Config {
        data_dir: out.join(".livepeer"),
        gateway: Some(GatewayConfig {
            http_addr: "127.0.0.1:0".parse()?,
            rtmp_addr: "127.0.0.1:0".parse()?,
            profiles: args.profiles.clone(),
            ..Default::default()
        }),
        orchestrator: Some(with_models(
            OrchestratorConfig { service_addr: "127.0.0.1:0".parse()?, ..Default::default() },
            &args.models,
        )),
        admin: AdminConfig { addr: "127.0.0.1:0".parse()? },
        ..Default::default()
    };
    let roles = Roles::from_config(&cfg);
    let running = node::start(&cfg, roles, prepare(&cfg, roles)?).await?;
    let gateway = format!("http://{}", running.addrs.gateway.context("gateway address")?);
    let orchestrator = running.addrs.orchestrator_uri.clone().unwrap_or_default();
    println!(
        "network up: orchestrator {orchestrator} (local transcoder), gateway {gateway}, admin http://{}",
        running.addrs.admin
    );

    let pushed = push_stream(&gateway, &segments, &hls_dir).await?;
    let mut summary = pushed.summary(segments.len(), orchestrator, None);
    summary.ai = run_ai(&args, &gateway, &segments).await?;
    fs::write(out.join("summary.json"), serde_json::to_vec_pretty(&summary)?)?;
    print_summary(&summary, &out);

    if args.serve {
        print_serve_help(&gateway, running.addrs.rtmp, summary.ai.is_some());
        println!("Metrics: http://{}/metrics   Status: http://{}/status", running.addrs.admin, running.addrs.admin);
        running.wait().await?;
    } else {
        running.stop().await;
    }
    summary.check()
}

/// `o` serving the demo's AI models from `dir`, when they are there.
fn with_models(o: OrchestratorConfig, dir: &Path) -> OrchestratorConfig {
    match ai::models(dir) {
        Some((onnxruntime_path, models)) => OrchestratorConfig { onnxruntime_path, models, ..o },
        None => o,
    }
}

/// The AI part: a frame of the test stream upscaled and one chat, through the gateway; `None`
/// (said once) without the models.
async fn run_ai(args: &DemoArgs, gateway: &str, segments: &[PathBuf]) -> Result<Option<ai::AiSummary>> {
    if ai::models(&args.models).is_none() {
        println!(
            "no AI models in {} (or no ONNX Runtime): skipping the AI requests (`make setup` makes both)",
            args.models.display()
        );
        return Ok(None);
    }
    let dir = args.out.join("ai");
    fs::create_dir_all(&dir)?;
    let frame = dir.join("frame.png");
    let status = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y", "-i"])
        .arg(segments.first().context("no segment")?)
        .args(["-frames:v", "1", "-vf", &format!("scale={}:-2", ai::FRAME_WIDTH)])
        .arg(&frame)
        .status()
        .context("running ffmpeg")?;
    if !status.success() {
        bail!("ffmpeg could not take a frame of the test stream ({status})");
    }
    println!("AI: one upscale and one llm request through the gateway…");
    let summary = ai::run(gateway, &fs::read(&frame)?, &dir.join("upscaled.png")).await.context("the AI requests")?;
    Ok(Some(summary))
}

/// `node::prepare`, its problems in one error.
fn prepare(cfg: &Config, roles: Roles) -> Result<node::Prepared> {
    node::prepare(cfg, roles)
        .map_err(|e| anyhow::anyhow!(e.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")))
}

fn print_serve_help(gateway: &str, rtmp: Option<std::net::SocketAddr>, with_ai: bool) {
    println!("\nThe network stays up (Ctrl-C to stop). Push your own stream, e.g. over RTMP:");
    if let Some(rtmp) = rtmp {
        println!("  ffmpeg -re -i input.mp4 -c:v libx264 -g 60 -c:a aac -f flv rtmp://{rtmp}/live/mystream");
        println!("  (OBS: Server rtmp://{rtmp}/live, Stream Key mystream, keyframe interval 2 s)");
    }
    println!("or over HTTP:");
    println!(
        "  ffmpeg -re -i input.mp4 -c:v libx264 -g 60 -c:a aac -f hls -hls_time 2 -method PUT {gateway}/live/mystream/index.m3u8"
    );
    println!("Then watch it at {gateway}/player/mystream (every stream: {gateway}/), or play");
    println!("{gateway}/stream/mystream.m3u8 in any HLS player.");
    if with_ai {
        ai::print_curl(gateway);
    }
}

/// What pushing the stream through the gateway gave.
#[derive(Debug, Default)]
struct Pushed {
    latencies: Vec<u64>,
    media_seconds: f64,
    wall_seconds: f64,
    transcoded: usize,
    renditions: Vec<RenditionInfo>,
    master_path: PathBuf,
}

impl Pushed {
    fn summary(mut self, pushed: usize, orchestrator: String, payments: Option<devnet::Payments>) -> Summary {
        self.latencies.sort_unstable();
        let wall = self.wall_seconds;
        Summary {
            segments_pushed: pushed,
            segments_transcoded: self.transcoded,
            latency_ms_p50: percentile(&self.latencies, 0.5),
            latency_ms_p95: percentile(&self.latencies, 0.95),
            realtime_ratio: if wall > 0.0 { (self.media_seconds / wall * 100.0).round() / 100.0 } else { 0.0 },
            source_seconds: self.media_seconds,
            renditions: self.renditions,
            orchestrator,
            hls_master: self.master_path.display().to_string(),
            payments,
            ai: None,
        }
    }
}

impl Summary {
    /// Every segment transcoded, or how many were not.
    fn check(&self) -> Result<()> {
        if self.segments_transcoded != self.segments_pushed {
            bail!("{} of {} segments failed", self.segments_pushed - self.segments_transcoded, self.segments_pushed);
        }
        Ok(())
    }
}

/// Push `segments` through the gateway's HTTP ingest one after the other, fetch every rendition
/// back from its HLS output as a player would, and write them, with playlists of the whole
/// recording, under `hls_dir`.
async fn push_stream(gateway: &str, segments: &[PathBuf], hls_dir: &Path) -> Result<Pushed> {
    let client = crate::client::http_client(Duration::from_secs(120));
    let mut pushed = Pushed::default();
    let mut listed: Vec<(String, Vec<(i64, u64)>)> = Vec::new();
    for (seq, path) in segments.iter().enumerate() {
        let data = fs::read(path)?;
        let info = lp_pipelines::probe(&data, InputFormat::MpegTs)?;
        let started = Instant::now();
        let mut resp = client
            .put(format!("{gateway}/live/{STREAM}/{seq}.ts"))
            .insert_header(("Accept", "multipart/mixed"))
            .insert_header((lp_wire::headers::CONTENT_DURATION, info.duration_ms.to_string()))
            .send_body(data)
            .await
            .map_err(|e| anyhow::anyhow!("pushing segment {seq}: {e}"))?;
        let status = resp.status();
        let content_type = resp.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        let body = resp.body().limit(512 << 20).await?;
        let elapsed = started.elapsed();
        if !status.is_success() {
            println!(
                "[{:>2}/{}] segment {seq}: HTTP {status}: {}",
                seq + 1,
                segments.len(),
                String::from_utf8_lossy(&body).trim()
            );
            continue;
        }
        let parts = parse_multipart(&content_type, &body)?;
        pushed.transcoded += 1;
        pushed.latencies.push(elapsed.as_millis() as u64);
        pushed.media_seconds += info.duration_ms as f64 / 1000.0;
        pushed.wall_seconds += elapsed.as_secs_f64();
        println!(
            "[{:>2}/{}] segment {seq}: {} renditions in {} ms ({:.2}x real time)",
            seq + 1,
            segments.len(),
            parts.len(),
            elapsed.as_millis(),
            info.duration_ms as f64 / 1000.0 / elapsed.as_secs_f64()
        );
        // Fetch every rendition back from the gateway's HLS output, as a player would.
        let mut names: Vec<String> = vec![SOURCE.to_string()];
        names.extend(parts.iter().map(|(name, _)| name.clone()));
        for name in names {
            let mut resp = client
                .get(format!("{gateway}/stream/{STREAM}/{name}/{seq}.ts"))
                .send()
                .await
                .map_err(|e| anyhow::anyhow!("fetching {name}/{seq}.ts: {e}"))?;
            if !resp.status().is_success() {
                bail!("the gateway did not serve {name}/{seq}.ts: HTTP {}", resp.status());
            }
            let bytes = resp.body().limit(512 << 20).await?;
            let dir = hls_dir.join(STREAM).join(&name);
            fs::create_dir_all(&dir)?;
            fs::write(dir.join(format!("{seq}.ts")), &bytes)?;
            match listed.iter_mut().find(|(n, _)| *n == name) {
                Some((_, segs)) => segs.push((seq as i64, info.duration_ms)),
                None => listed.push((name.clone(), vec![(seq as i64, info.duration_ms)])),
            }
            if name != SOURCE && !pushed.renditions.iter().any(|r| r.name == name) {
                let probed = lp_pipelines::probe(&bytes, InputFormat::MpegTs)?;
                pushed.renditions.push(RenditionInfo {
                    name: name.clone(),
                    width: probed.width,
                    height: probed.height,
                });
            }
        }
    }

    // Playlists of the whole recording: the gateway's master playlist, and a finished media
    // playlist per rendition.
    let mut resp = client
        .get(format!("{gateway}/stream/{STREAM}.m3u8"))
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("fetching the master playlist: {e}"))?;
    let master = resp.body().await?;
    pushed.master_path = hls_dir.join(format!("{STREAM}.m3u8"));
    fs::write(&pushed.master_path, &master)?;
    for (name, segs) in &listed {
        fs::write(hls_dir.join(STREAM).join(format!("{name}.m3u8")), vod_playlist(name, segs, true))?;
    }
    Ok(pushed)
}

fn print_summary(s: &Summary, out: &Path) {
    println!("\nSummary");
    println!("  segments        {} pushed, {} transcoded", s.segments_pushed, s.segments_transcoded);
    let names: Vec<String> = s.renditions.iter().map(|r| format!("{} ({}x{})", r.name, r.width, r.height)).collect();
    println!("  renditions      {}", names.join(", "));
    println!("  latency         p50 {} ms, p95 {} ms per 2 s segment", s.latency_ms_p50, s.latency_ms_p95);
    println!("  real time       {:.2}x ({:.0} s of video)", s.realtime_ratio, s.source_seconds);
    if let Some(p) = &s.payments {
        p.print();
    }
    if let Some(ai) = &s.ai {
        ai.print();
    }
    println!("  HLS             {} (try: ffprobe {})", s.hls_master, s.hls_master);
    println!("  summary         {}", out.join("summary.json").display());
}

/// Split a `multipart/mixed` body into (Rendition-Name, bytes) parts.
pub fn parse_multipart(content_type: &str, body: &[u8]) -> Result<Vec<(String, Vec<u8>)>> {
    let boundary = content_type
        .split(';')
        .find_map(|p| p.trim().strip_prefix("boundary="))
        .context("the answer is not multipart/mixed")?
        .trim_matches('"');
    let delimiter = format!("--{boundary}");
    let mut parts = Vec::new();
    let mut rest = body;
    while let Some(start) = find(rest, delimiter.as_bytes()) {
        rest = &rest[start + delimiter.len()..];
        if rest.starts_with(b"--") {
            break;
        }
        let head_end = find(rest, b"\r\n\r\n").context("multipart part without headers")?;
        let head = String::from_utf8_lossy(&rest[..head_end]).to_string();
        rest = &rest[head_end + 4..];
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("Content-Length:"))
            .context("multipart part without Content-Length")?
            .trim()
            .parse()?;
        let name = head.lines().find_map(|l| l.strip_prefix("Rendition-Name:")).unwrap_or("").trim().to_string();
        if rest.len() < len {
            bail!("multipart part shorter than its Content-Length");
        }
        parts.push((name, rest[..len].to_vec()));
        rest = &rest[len..];
    }
    Ok(parts)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
