//! The transcoder role: `OrchestratorLink`, a transcoder process's connection to its
//! orchestrator.
//!
//! It dials `{orchestrator}/transcoder` (WebSocket over TLS for `https://`), registers with the
//! shared secret and its capacity, then runs each `Job` frame on its local workers and answers
//! with a `Result` frame. A lost connection is redialled with exponential backoff (1 s doubling
//! to 30 s), forever, as go-livepeer does; a refusal (wrong secret, zero capacity) ends the role
//! with an error, since retrying cannot fix it. [`Health`] tells `/healthz` whether the link is
//! registered, and why not.

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use anyhow::{Context as _, Result, bail};
use awc::error::WsClientError;
use awc::ws;
use futures::{SinkExt, StreamExt};
use lp_actors::orchestrator::{
    RegisterTranscoder, Transcode, TranscodeJob, TranscodeWorker, TranscoderPool, ffmpeg_transcode,
};
use lp_config::TranscoderConfig;
use lp_pipelines::{Profile, TranscodeOptions};
use lp_wire::limits::{MAX_FRAME_BYTES, WORKER_BACKOFF, WORKER_SILENCE};
use lp_wire::{Capabilities, ErrorCode, OrchestratorMessage, TranscodeFailure, TranscoderMessage, Work, WorkOutcome};
use parking_lot::Mutex;
use tracing::{info, warn};

use crate::client::{describe_send_error, http_client};

/// Why a connection ended.
enum LinkEnd {
    /// Try again later.
    Lost { why: String, was_registered: bool },
    /// The orchestrator refused us; retrying cannot help.
    Refused(String),
}

/// Whether this transcoder is registered with its orchestrator: `/healthz` answers 503 with the
/// reason while it is not.
#[derive(Clone)]
pub struct Health(Arc<Mutex<HealthState>>);

struct HealthState {
    orchestrator: String,
    registered: bool,
    why: String,
}

impl Health {
    pub fn new(orchestrator: &str) -> Health {
        Health(Arc::new(Mutex::new(HealthState {
            orchestrator: orchestrator.to_string(),
            registered: false,
            why: "connecting".into(),
        })))
    }

    fn registered(&self) {
        let mut s = self.0.lock();
        s.registered = true;
        s.why.clear();
    }

    fn lost(&self, why: &str) {
        let mut s = self.0.lock();
        s.registered = false;
        s.why = why.to_string();
    }

    /// `Err(reason)` while not registered with the orchestrator.
    pub fn check(&self) -> Result<(), String> {
        let s = self.0.lock();
        if s.registered {
            Ok(())
        } else {
            Err(format!("not registered with the orchestrator at {}: {}", s.orchestrator, s.why))
        }
    }

    /// For `/status`.
    pub fn to_json(&self) -> serde_json::Value {
        let s = self.0.lock();
        serde_json::json!({ "orchestrator": s.orchestrator, "registered": s.registered, "reason": s.why })
    }
}

/// Start local workers and serve the orchestrator until refused.
pub async fn run(cfg: TranscoderConfig, secret: String, health: Health) -> Result<()> {
    let pool = TranscoderPool::new(cfg.capacity as usize * 4).start();
    let opts = TranscodeOptions { x264_preset: cfg.x264_preset.clone(), ..Default::default() };
    for i in 0..cfg.capacity {
        let worker = TranscodeWorker::new(format!("local-{i}"), ffmpeg_transcode(opts.clone())).start();
        pool.send(RegisterTranscoder { name: format!("local-{i}"), capacity: 1, recipient: worker.recipient() })
            .await?;
    }
    let url = ws_url(&cfg.orchestrator)?;
    let (first_backoff, max_backoff) = WORKER_BACKOFF;
    let mut backoff = first_backoff;
    loop {
        match serve(&cfg.orchestrator, &url, &secret, cfg.capacity, &pool, &health).await {
            LinkEnd::Refused(reason) => {
                health.lost(&format!("refused: {reason}"));
                bail!("the orchestrator at {} refused this transcoder: {reason}", cfg.orchestrator)
            }
            LinkEnd::Lost { why, was_registered } => {
                if was_registered {
                    backoff = first_backoff;
                }
                health.lost(&why);
                warn!(target: "lp::transcoder", orchestrator = %cfg.orchestrator, "connection lost: {why}; retrying in {backoff:?}");
            }
        }
        actix_web::rt::time::sleep(backoff).await;
        backoff = (backoff * 2).min(max_backoff);
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

async fn serve(
    orchestrator: &str,
    url: &str,
    secret: &str,
    capacity: u32,
    pool: &Addr<TranscoderPool>,
    health: &Health,
) -> LinkEnd {
    let connected = http_client(Duration::from_secs(10)).ws(url).max_frame_size(MAX_FRAME_BYTES).connect().await;
    let (_, framed) = match connected {
        Ok(c) => c,
        Err(e) => {
            let why = match &e {
                WsClientError::SendRequest(e) => describe_send_error(orchestrator.trim_end_matches('/'), e),
                e => e.to_string(),
            };
            return LinkEnd::Lost { why: format!("cannot connect: {why}"), was_registered: false };
        }
    };
    let (mut sink, mut stream) = framed.split();
    let register =
        TranscoderMessage::Register { secret: secret.to_string(), capacity, capabilities: Capabilities::transcoding() };
    if let Err(e) = sink.send(ws::Message::Binary(lp_wire::encode(&register).into())).await {
        return LinkEnd::Lost { why: format!("cannot register: {e}"), was_registered: false };
    }
    // Answers from concurrent jobs go through one writer.
    let (tx, mut rx) = futures::channel::mpsc::unbounded::<ws::Message>();
    let mut writer = actix_web::rt::spawn(async move {
        while let Some(msg) = rx.next().await {
            let close = matches!(msg, ws::Message::Close(_));
            if sink.send(msg).await.is_err() || close {
                break;
            }
        }
    });
    let mut registered = false;
    let mut closing = false;
    let lost = |why: String, registered| LinkEnd::Lost { why, was_registered: registered };
    let end = loop {
        // The orchestrator pings every few seconds: silence means a dead (half-open) connection.
        let frame = match actix_web::rt::time::timeout(WORKER_SILENCE, stream.next()).await {
            Err(_) => break lost(format!("nothing heard for {WORKER_SILENCE:?}"), registered),
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
            ws::Frame::Close(reason) => {
                // Answer the close frame, as RFC 6455 asks, before dropping the connection.
                closing = tx.unbounded_send(ws::Message::Close(None)).is_ok();
                break lost(closed_by_orchestrator(reason.as_ref()), registered);
            }
            _ => continue,
        };
        match lp_wire::decode::<OrchestratorMessage>(&bytes) {
            Ok(OrchestratorMessage::Registered) => {
                registered = true;
                health.registered();
                info!(target: "lp::transcoder", url, capacity, "registered with the orchestrator");
            }
            Ok(OrchestratorMessage::Refused { reason }) => break LinkEnd::Refused(reason),
            Ok(OrchestratorMessage::Job { task_id, work, timeout_ms }) if registered => {
                let patience = match timeout_ms {
                    0 => lp_wire::MAX_PATIENCE,
                    ms => std::time::Duration::from_millis(ms).min(lp_wire::MAX_PATIENCE),
                };
                let deadline = std::time::Instant::now() + patience;
                let pool = pool.clone();
                let tx = tx.clone();
                actix_web::rt::spawn(async move {
                    let outcome = match work {
                        Work::Transcode { seq, format, profiles, data } => {
                            let profiles = profiles.iter().map(Profile::from).collect::<Vec<_>>().into();
                            let job = TranscodeJob {
                                seq,
                                format: format.into(),
                                profiles,
                                data: data.into_vec().into(),
                                deadline,
                            };
                            match pool.send(Transcode(job)).await {
                                Ok(Ok(data)) => WorkOutcome::Transcoded(data),
                                Ok(Err(f)) => WorkOutcome::Error(f),
                                Err(_) => return,
                            }
                        }
                        Work::Infer { pipeline, .. } => WorkOutcome::Error(TranscodeFailure {
                            code: ErrorCode::InvalidInput,
                            message: format!("this worker does not run inference ({pipeline})"),
                        }),
                    };
                    let answer = TranscoderMessage::Result { task_id, outcome };
                    let _ = tx.unbounded_send(ws::Message::Binary(lp_wire::encode(&answer).into()));
                });
            }
            Ok(OrchestratorMessage::Job { .. }) => warn!(target: "lp::transcoder", "job before registration; ignored"),
            Err(e) => warn!(target: "lp::transcoder", "unreadable frame from the orchestrator: {e}"),
        }
    };
    // The writer stops after sending the answer to a close frame; give it a moment, no more.
    if !closing || actix_web::rt::time::timeout(Duration::from_secs(1), &mut writer).await.is_err() {
        writer.abort();
    }
    end
}

/// Why the orchestrator closed the link, from its close frame.
fn closed_by_orchestrator(reason: Option<&ws::CloseReason>) -> String {
    match reason {
        Some(ws::CloseReason { code, description: Some(d) }) => {
            format!("the orchestrator closed the link ({code:?}: {d})")
        }
        Some(ws::CloseReason { code, description: None }) => format!("the orchestrator closed the link ({code:?})"),
        None => "the orchestrator closed the link".into(),
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
