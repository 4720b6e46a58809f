//! The transcoder role: local workers and the link to the orchestrator, whose protocol is
//! lp-actors' [`lp_actors::worker::run`]; this file dials it as a WebSocket.
//!
//! It dials `{orchestrator}/transcoder` (WebSocket over TLS for `https://`, accepting the
//! orchestrator's self-signed certificate) and maps awc's frames to [`WorkerFrame`]s. When
//! `livepeer bench` measured this transcoder's config on this machine (`<data_dir>/bench.json`),
//! it registers with that figure, which an orchestrator under `max_sessions = "auto"` counts
//! instead of its capacity.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use awc::error::WsClientError;
use awc::ws;
use futures::{SinkExt, StreamExt, future};
use lp_actors::orchestrator::{SESSION_MAX_IN_FLIGHT, TranscoderPool, add_local_workers};
use lp_actors::supervision::{Policy, Watchdog};
use lp_actors::worker::{Connection, Health, LinkSettings, WorkerFrame};
use lp_config::TranscoderConfig;
use lp_pipelines::{TranscodeOptions, VideoDecoder};
use lp_wire::limits::MAX_FRAME_BYTES;
use tracing::{info, warn};

use crate::bench::{Setup, Sizing};
use crate::client::{describe_send_error, http_client};

/// Start local workers (their pool under `watchdog`) and serve the orchestrator until refused,
/// registering with `sessions` ([`measured_sessions`]).
pub async fn run(
    cfg: TranscoderConfig,
    sessions: Option<u32>,
    secret: String,
    health: Health,
    watchdog: &Watchdog,
) -> Result<()> {
    // The orchestrator sends at most `capacity` jobs at once; the queue only absorbs a burst.
    let pool = TranscoderPool::new(cfg.capacity as usize * SESSION_MAX_IN_FLIGHT);
    let pool = watchdog.start("transcoder_pool", Policy::Permanent, pool);
    let opts = options(&cfg.x264_preset, &cfg.video_decoder).context("transcoder.video_decoder")?;
    add_local_workers(&pool, cfg.capacity, opts).await?;
    let url = ws_url(&cfg.orchestrator)?;
    let base = cfg.orchestrator.trim_end_matches('/').to_string();
    let settings = LinkSettings { orchestrator: cfg.orchestrator.clone(), secret, capacity: cfg.capacity, sessions };
    let refused = lp_actors::worker::run(settings, pool, health, || connect(&base, &url)).await;
    Err(refused.into())
}

/// The figure `livepeer bench` measured in `data_dir` for this transcoder, if there is one for
/// its config. Not when the config has an `[orchestrator]` too (`with_orchestrator`): the bench
/// sizes that one then.
pub fn measured_sessions(data_dir: &Path, cfg: &TranscoderConfig, with_orchestrator: bool) -> Option<u32> {
    if with_orchestrator {
        info!(target: "lp::transcoder", "not reporting a `livepeer bench` figure: this config's bench sizes its [orchestrator]");
        return None;
    }
    match Sizing::measured(data_dir, &Setup::of_transcoder(cfg)) {
        Ok(Some(0)) => {
            warn!(target: "lp::transcoder", "`livepeer bench` found this machine carries no stream of its ladder in real time: an orchestrator under max_sessions = \"auto\" counts it for no session (a faster x264_preset would help)");
            Some(0)
        }
        Ok(Some(sessions)) => {
            info!(target: "lp::transcoder", sessions, "reporting the live streams `livepeer bench` measured here");
            Some(sessions)
        }
        Ok(None) => {
            info!(target: "lp::transcoder", "no `livepeer bench` figure: an orchestrator under max_sessions = \"auto\" counts this transcoder by its capacity");
            None
        }
        Err(e) => {
            warn!(target: "lp::transcoder", "not reporting the `livepeer bench` figure, counted by capacity instead: {e}");
            None
        }
    }
}

/// `video_decoder`'s decoder, with its device (a GPU) opened: a missing one is the error, with
/// the reason (once opened, it is shared by every later transcode).
pub fn decoder(video_decoder: &str) -> Result<VideoDecoder, String> {
    let decoder: VideoDecoder = video_decoder.parse()?;
    decoder.open()?;
    Ok(decoder)
}

/// The local transcoder's settings from the config's keys ([`decoder`]).
pub fn options(x264_preset: &str, video_decoder: &str) -> Result<TranscodeOptions> {
    let decoder = decoder(video_decoder).map_err(anyhow::Error::msg)?;
    if decoder != VideoDecoder::Cpu {
        info!(target: "lp::transcoder", %decoder, "segments are decoded on the GPU");
    }
    Ok(TranscodeOptions { x264_preset: x264_preset.to_string(), decoder, ..Default::default() })
}

pub(crate) fn ws_url(orchestrator: &str) -> Result<String> {
    let base = orchestrator.trim_end_matches('/');
    let url = if let Some(rest) = base.strip_prefix("https://") {
        format!("wss://{rest}/transcoder")
    } else if let Some(rest) = base.strip_prefix("http://") {
        format!("ws://{rest}/transcoder")
    } else {
        bail!("orchestrator URL {orchestrator:?} must start with http:// or https://");
    };
    Ok(url)
}

/// Dial the orchestrator at `base` (for error messages) on `url`.
pub(crate) async fn connect(base: &str, url: &str) -> Result<Connection, String> {
    let connected = http_client(Duration::from_secs(10)).ws(url).max_frame_size(MAX_FRAME_BYTES).connect().await;
    let (_, framed) = connected.map_err(|e| match &e {
        WsClientError::SendRequest(e) => describe_send_error(base, e),
        e => e.to_string(),
    })?;
    let (sink, stream) = framed.split();
    let outgoing = sink.sink_map_err(|e| e.to_string()).with(|frame| {
        future::ready(Ok(match frame {
            WorkerFrame::Message(bytes) => ws::Message::Binary(bytes),
            WorkerFrame::Ping(p) => ws::Message::Ping(p),
            WorkerFrame::Pong(p) => ws::Message::Pong(p),
            WorkerFrame::Close(_) => ws::Message::Close(None),
        }))
    });
    // Text and continuation frames are no part of the protocol (the orchestrator sends neither).
    let incoming = stream.filter_map(|frame| {
        future::ready(match frame {
            Ok(ws::Frame::Binary(bytes)) => Some(Ok(WorkerFrame::Message(bytes))),
            Ok(ws::Frame::Ping(p)) => Some(Ok(WorkerFrame::Ping(p))),
            Ok(ws::Frame::Pong(p)) => Some(Ok(WorkerFrame::Pong(p))),
            Ok(ws::Frame::Close(reason)) => Some(Ok(WorkerFrame::Close(reason.as_ref().map(describe_close)))),
            Ok(ws::Frame::Text(_) | ws::Frame::Continuation(_)) => None,
            Err(e) => Some(Err(e.to_string())),
        })
    });
    Ok(Connection::new(outgoing, incoming))
}

/// A close frame's code and description, as the log says it.
fn describe_close(reason: &ws::CloseReason) -> String {
    match &reason.description {
        Some(d) => format!("{:?}: {d}", reason.code),
        None => format!("{:?}", reason.code),
    }
}

/// Read a shared secret file: its content without surrounding whitespace, not empty.
pub fn read_secret(path: &std::path::Path) -> Result<String> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read secret_file {}", path.display()))?;
    let secret = text.trim().to_string();
    if secret.is_empty() {
        bail!("secret_file {} is empty", path.display());
    }
    Ok(secret)
}
