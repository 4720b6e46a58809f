//! The orchestrator's service port: the wire protocol for gateways and the WebSocket for remote
//! transcoders.
//!
//! | route | what |
//! |---|---|
//! | `POST /getOrchestrator` | MessagePack `OrchestratorRequest` → `OrchestratorInfo` (503 + `TranscodeFailure` when capped) |
//! | `POST /segment` | header `Livepeer-Segment: base64(SegData)`, body = segment → `TranscodeResult`; 403 when the token or hash does not check out, 400 when a header or a profile is malformed |
//! | `POST /endSession` | MessagePack `EndSession` → nil: the gateway's stream ended, the session's slot is freed once its segments are done |
//! | `GET /transcoder` | WebSocket for remote transcoders (MessagePack frames, see `lp_wire`); at most 64 KiB may arrive before the `Register` is accepted |

use std::sync::Arc;

use actix::prelude::*;
use actix_web::http::{ConnectionType, StatusCode};
use actix_web::{FromRequest, HttpRequest, HttpResponse, dev, web};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use lp_actors::orchestrator::{
    self, GetOrchestratorInfo, Links, Orchestrator, SubmitSegment, TranscoderPool, WorkerLink,
};
use lp_wire::{EndSession, ErrorCode, OrchestratorRequest, SegData, TranscodeFailure};
use tracing::warn;

use crate::remote_transcoder::{self, Gate, Gated};
use lp_wire::headers::{MSGPACK, SEGMENT as SEGMENT_HEADER};
use lp_wire::limits::{MAX_FRAME_BYTES, MAX_MESSAGE_BYTES, MAX_SEGMENT_BYTES};

#[derive(Clone)]
pub struct OrchestratorState {
    pub orchestrator: Addr<Orchestrator>,
    pub pool: Addr<TranscoderPool>,
    pub secret: Option<Arc<String>>,
    /// The remote worker links and the segments in flight, for shutdown.
    pub links: Links,
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    // Only /segment carries a segment; the other bodies are small messages, read before anyone
    // is authenticated, so they get a small limit.
    let small = || web::PayloadConfig::new(MAX_MESSAGE_BYTES);
    cfg.service(web::resource("/getOrchestrator").app_data(small()).route(web::post().to(get_orchestrator)))
        .service(
            web::resource("/segment")
                .app_data(web::PayloadConfig::new(MAX_SEGMENT_BYTES))
                .route(web::post().to(segment)),
        )
        .service(web::resource("/endSession").app_data(small()).route(web::post().to(end_session)))
        .route("/transcoder", web::get().to(transcoder));
}

fn failure(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> HttpResponse {
    let f = TranscodeFailure { code, message: message.into() };
    HttpResponse::build(status).content_type(MSGPACK).body(lp_wire::encode(&f))
}

fn stopped() -> HttpResponse {
    failure(StatusCode::SERVICE_UNAVAILABLE, ErrorCode::OrchestratorBusy, "orchestrator is shutting down")
}

/// While the orchestrator shuts down, connections close after their answer: a gateway's idle
/// keep-alive connection must not hold up the exit.
fn closing_when_draining(state: &OrchestratorState, mut resp: HttpResponse) -> HttpResponse {
    if state.links.draining() {
        resp.head_mut().set_connection_type(ConnectionType::Close);
    }
    resp
}

async fn get_orchestrator(state: web::Data<OrchestratorState>, body: web::Bytes) -> HttpResponse {
    let resp = get_orchestrator_answer(&state, body).await;
    closing_when_draining(&state, resp)
}

async fn get_orchestrator_answer(state: &OrchestratorState, body: web::Bytes) -> HttpResponse {
    let req: OrchestratorRequest = match lp_wire::decode(&body) {
        Ok(r) => r,
        Err(e) => return failure(StatusCode::BAD_REQUEST, ErrorCode::InvalidInput, e.to_string()),
    };
    match state.orchestrator.send(GetOrchestratorInfo(req)).await {
        Ok(Ok(info)) => HttpResponse::Ok().content_type(MSGPACK).body(lp_wire::encode(&info)),
        Ok(Err(f)) => {
            let status = match f.code {
                ErrorCode::InvalidInput => StatusCode::BAD_REQUEST,
                _ => StatusCode::SERVICE_UNAVAILABLE,
            };
            failure(status, f.code, f.message)
        }
        Err(_) => stopped(),
    }
}

async fn segment(state: web::Data<OrchestratorState>, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let in_flight = state.links.segment_started();
    let resp = segment_answer(&state, &req, body).await;
    drop(in_flight);
    closing_when_draining(&state, resp)
}

async fn segment_answer(state: &OrchestratorState, req: &HttpRequest, body: web::Bytes) -> HttpResponse {
    let seg: SegData = match req
        .headers()
        .get(SEGMENT_HEADER)
        .ok_or_else(|| format!("missing {SEGMENT_HEADER} header"))
        .and_then(|h| B64.decode(h.as_bytes()).map_err(|e| format!("{SEGMENT_HEADER} is not base64: {e}")))
        .and_then(|raw| lp_wire::decode(&raw).map_err(|e| format!("{SEGMENT_HEADER}: {e}")))
    {
        Ok(seg) => seg,
        Err(why) => return failure(StatusCode::BAD_REQUEST, ErrorCode::InvalidInput, why),
    };
    match state.orchestrator.send(SubmitSegment { seg, data: body }).await {
        Ok(Ok(result)) => HttpResponse::Ok().content_type(MSGPACK).body(lp_wire::encode(&result)),
        Ok(Err(rejected)) => {
            warn!(target: "lp::orchestrator", error = %rejected, "segment refused");
            let status = match rejected.0.code {
                ErrorCode::InvalidInput => StatusCode::BAD_REQUEST,
                _ => StatusCode::FORBIDDEN,
            };
            failure(status, rejected.0.code, rejected.0.message)
        }
        Err(_) => stopped(),
    }
}

async fn end_session(state: web::Data<OrchestratorState>, body: web::Bytes) -> HttpResponse {
    let end: EndSession = match lp_wire::decode(&body) {
        Ok(e) => e,
        Err(e) => return failure(StatusCode::BAD_REQUEST, ErrorCode::InvalidInput, e.to_string()),
    };
    match state.orchestrator.send(orchestrator::EndSession(end.auth_token)).await {
        Ok(Ok(())) => HttpResponse::Ok().content_type(MSGPACK).body(lp_wire::encode(&())),
        Ok(Err(rejected)) => failure(StatusCode::FORBIDDEN, rejected.0.code, rejected.0.message),
        Err(_) => stopped(),
    }
}

async fn transcoder(
    state: web::Data<OrchestratorState>,
    req: HttpRequest,
    body: web::Payload,
) -> actix_web::Result<HttpResponse> {
    // Until the transcoder has registered, only a few bytes may come in (see `Gated`).
    let gate = Gate::default();
    let mut gated: dev::Payload = dev::Payload::Stream { payload: Box::pin(Gated::new(body, gate.clone())) };
    let body = web::Payload::from_request(&req, &mut gated).await?;
    let (response, session, stream) = actix_ws::handle(&req, body)?;
    let peer = req.peer_addr().map(|a| a.to_string()).unwrap_or_else(|| "unknown".into());
    let stream =
        stream.max_frame_size(MAX_FRAME_BYTES).aggregate_continuations().max_continuation_size(MAX_FRAME_BYTES);
    let (transport, events) = remote_transcoder::adapt(session, stream, gate);
    let secret = state.secret.clone();
    WorkerLink::new(peer, Box::new(transport), state.pool.clone(), secret, state.links.clone()).start_with(events);
    Ok(response)
}
