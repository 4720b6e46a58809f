//! The transcoder role: `OrchestratorLink`, a transcoder process's connection to its
//! orchestrator.
//!
//! It dials `{orchestrator}/transcoder` (WebSocket over TLS for `https://`), registers with the
//! shared secret and its capacity, then runs each `Job` frame on its local workers and answers
//! with a `Result` frame. A lost connection is redialled with exponential backoff (1 s doubling
//! to 30 s), forever, as go-livepeer does; a refusal (wrong secret, zero capacity) ends the role
//! with an error, since retrying cannot fix it.

use std::time::Duration;

use actix::prelude::*;
use anyhow::{Context as _, Result, bail};
use awc::ws;
use futures::{SinkExt, StreamExt};
use lp_actors::orchestrator::{
    RegisterTranscoder, Transcode, TranscodeJob, TranscodeWorker, TranscoderPool, ffmpeg_transcode,
};
use lp_actors::wire::{self, Capabilities, OrchestratorMessage, TranscodeOutcome, TranscoderMessage};
use lp_config::TranscoderConfig;
use lp_pipelines::TranscodeOptions;
use tracing::{info, warn};

use crate::client::http_client;

const MAX_FRAME: usize = 512 * 1024 * 1024;
/// The orchestrator pings every 5 s; this much silence is a dead connection.
const SILENT_AFTER: Duration = Duration::from_secs(20);

/// Why a connection ended.
enum LinkEnd {
    /// Try again later.
    Lost { why: String, was_registered: bool },
    /// The orchestrator refused us; retrying cannot help.
    Refused(String),
}

/// Start local workers and serve the orchestrator until refused.
pub async fn run(cfg: TranscoderConfig, secret: String) -> Result<()> {
    let pool = TranscoderPool::new(cfg.capacity as usize * 4).start();
    let opts = TranscodeOptions { x264_preset: cfg.x264_preset.clone(), ..Default::default() };
    for i in 0..cfg.capacity {
        let worker = TranscodeWorker::new(format!("local-{i}"), ffmpeg_transcode(opts.clone())).start();
        pool.send(RegisterTranscoder { name: format!("local-{i}"), capacity: 1, recipient: worker.recipient() })
            .await?;
    }
    let url = ws_url(&cfg.orchestrator)?;
    let mut backoff = Duration::from_secs(1);
    loop {
        match serve(&url, &secret, cfg.capacity, &pool).await {
            LinkEnd::Refused(reason) => {
                bail!("the orchestrator at {} refused this transcoder: {reason}", cfg.orchestrator)
            }
            LinkEnd::Lost { why, was_registered } => {
                if was_registered {
                    backoff = Duration::from_secs(1);
                }
                warn!(target: "lp::transcoder", orchestrator = %cfg.orchestrator, "connection lost: {why}; retrying in {backoff:?}");
            }
        }
        actix_web::rt::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(30));
    }
}

fn ws_url(orchestrator: &str) -> Result<String> {
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

async fn serve(url: &str, secret: &str, capacity: u32, pool: &Addr<TranscoderPool>) -> LinkEnd {
    let connected = http_client(Duration::from_secs(10)).ws(url).max_frame_size(MAX_FRAME).connect().await;
    let (_, framed) = match connected {
        Ok(c) => c,
        Err(e) => return LinkEnd::Lost { why: format!("cannot connect: {e}"), was_registered: false },
    };
    let (mut sink, mut stream) = framed.split();
    let register =
        TranscoderMessage::Register { secret: secret.to_string(), capacity, capabilities: Capabilities::transcoding() };
    if let Err(e) = sink.send(ws::Message::Binary(wire::encode(&register).into())).await {
        return LinkEnd::Lost { why: format!("cannot register: {e}"), was_registered: false };
    }
    // Answers from concurrent jobs go through one writer.
    let (tx, mut rx) = futures::channel::mpsc::unbounded::<ws::Message>();
    let writer = actix_web::rt::spawn(async move {
        while let Some(msg) = rx.next().await {
            if sink.send(msg).await.is_err() {
                break;
            }
        }
    });
    let mut registered = false;
    let lost = |why: String, registered| LinkEnd::Lost { why, was_registered: registered };
    let end = loop {
        // The orchestrator pings every few seconds: silence means a dead (half-open) connection.
        let frame = match actix_web::rt::time::timeout(SILENT_AFTER, stream.next()).await {
            Err(_) => break lost(format!("nothing heard for {SILENT_AFTER:?}"), registered),
            Ok(None) => break lost("connection closed".into(), registered),
            Ok(Some(Err(e))) => break lost(e.to_string(), registered),
            Ok(Some(Ok(f))) => f,
        };
        let bytes = match frame {
            ws::Frame::Binary(b) => b,
            ws::Frame::Ping(p) => {
                let _ = tx.unbounded_send(ws::Message::Pong(p));
                continue;
            }
            ws::Frame::Close(reason) => break lost(format!("closed by the orchestrator: {reason:?}"), registered),
            _ => continue,
        };
        match wire::decode::<OrchestratorMessage>(&bytes) {
            Ok(OrchestratorMessage::Registered) => {
                registered = true;
                info!(target: "lp::transcoder", url, capacity, "registered with the orchestrator");
            }
            Ok(OrchestratorMessage::Refused { reason }) => break LinkEnd::Refused(reason),
            Ok(OrchestratorMessage::Job { task_id, seq, format, profiles, data }) if registered => {
                let job = TranscodeJob { seq, format, profiles: profiles.into(), data: data.into_vec().into() };
                let pool = pool.clone();
                let tx = tx.clone();
                actix_web::rt::spawn(async move {
                    let outcome = match pool.send(Transcode(job)).await {
                        Ok(Ok(data)) => TranscodeOutcome::Data(data),
                        Ok(Err(f)) => TranscodeOutcome::Error(f),
                        Err(_) => return,
                    };
                    let answer = TranscoderMessage::Result { task_id, outcome };
                    let _ = tx.unbounded_send(ws::Message::Binary(wire::encode(&answer).into()));
                });
            }
            Ok(OrchestratorMessage::Job { .. }) => warn!(target: "lp::transcoder", "job before registration; ignored"),
            Err(e) => warn!(target: "lp::transcoder", "unreadable frame from the orchestrator: {e}"),
        }
    };
    writer.abort();
    end
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
