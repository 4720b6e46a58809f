//! The orchestrator's service port: the wire protocol for gateways and the WebSocket for remote
//! transcoders.
//!
//! | route | what |
//! |---|---|
//! | `POST /getOrchestrator` | MessagePack `OrchestratorRequest` → `OrchestratorInfo` (503 + `TranscodeFailure` when capped) |
//! | `POST /segment` | header `Livepeer-Segment: base64(SegData)`, body = segment → `TranscodeResult`; 403 when the token or hash does not check out, 400 when a header or a profile is malformed |
//! | `POST /endSession` | MessagePack `EndSession` → nil: the gateway's stream ended, the session's slot is freed once its segments are done |
//! | `GET /transcoder` | WebSocket for remote workers, transcoders and AI workers (`livepeer ai-worker`, whose `Register` lists its models) (MessagePack frames, see `lp_wire`); at most 64 KiB may arrive before the `Register` is accepted |
//! | `POST /upscale`, `/image-to-image`, `/image-to-text`, `/llm` | the AI API (the gateway forwards its clients' requests as they came; on-chain, a priced model's payment in header `Livepeer-Payment: base64(Payment)`): JSON answers, `llm` with `stream: true` as server-sent events; errors in the spec's shape (400 unknown model, 503 insufficient capacity) |

use std::sync::Arc;

use actix_web::http::{ConnectionType, StatusCode};
use actix_web::{FromRequest, HttpRequest, HttpResponse, dev, web};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use lp_actors::handle::CallError;
use lp_actors::orchestrator::{Links, OrchestratorHandle, WorkerLink};
use lp_wire::{EndSession, ErrorCode, OrchestratorRequest, Payment, SegData, TranscodeFailure};
use tracing::warn;

use crate::http::ai;
use crate::http::body::{self, BodyError, Bounds};
use crate::remote_transcoder::{self, Gate, Gated};
use lp_wire::ai::ApiError;
use lp_wire::headers::{MSGPACK, PAYMENT as PAYMENT_HEADER, SEGMENT as SEGMENT_HEADER};
use lp_wire::limits::{BODY_IDLE, MAX_FRAME_BYTES, MAX_MESSAGE_BYTES, MAX_PATIENCE, MAX_SEGMENT_BYTES};

#[derive(Clone)]
pub struct OrchestratorState {
    pub orchestrator: OrchestratorHandle,
    pub secret: Option<Arc<String>>,
    /// The remote worker links and the segments in flight, for shutdown.
    pub links: Links,
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    // Only /segment carries a segment; the other bodies are small messages, read before anyone
    // is authenticated, so they get a small limit.
    let small = || web::PayloadConfig::new(MAX_MESSAGE_BYTES);
    cfg.service(web::resource("/getOrchestrator").app_data(small()).route(web::post().to(get_orchestrator)))
        .route("/segment", web::post().to(segment))
        .service(web::resource("/endSession").app_data(small()).route(web::post().to(end_session)))
        .route("/transcoder", web::get().to(transcoder));
    for pipeline in ai::pipelines() {
        cfg.route(&format!("/{}", pipeline.name()), web::post().to(infer));
    }
}

/// `POST /<pipeline>`: run an AI request on this orchestrator's workers.
async fn infer(state: web::Data<OrchestratorState>, req: HttpRequest, payload: web::Payload) -> HttpResponse {
    let Some(pipeline) = ai::pipeline(&req) else {
        return ai::error(&ApiError::http(404, "no such pipeline"));
    };
    let body = match ai::read_body(payload, BODY_IDLE).await {
        Ok(body) => body,
        Err(e) => return ai::error(&e),
    };
    let payment = match req.headers().get(PAYMENT_HEADER) {
        None => Payment::default(),
        Some(v) => match v.to_str().ok().and_then(|v| B64.decode(v).ok()).map(|b| lp_wire::decode::<Payment>(&b)) {
            Some(Ok(payment)) => payment,
            _ => return ai::error(&ApiError::bad_request("the Livepeer-Payment header does not decode")),
        },
    };
    let orchestrator = state.orchestrator.orchestrator().clone();
    ai::respond(lp_actors::ai::serve(orchestrator, pipeline, &ai::content_type(&req), body, payment).await)
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
    match state.orchestrator.info(req).await {
        Ok(info) => HttpResponse::Ok().content_type(MSGPACK).body(lp_wire::encode(&info)),
        Err(CallError::Refused(f)) => {
            let status = match f.code {
                ErrorCode::InvalidInput => StatusCode::BAD_REQUEST,
                _ => StatusCode::SERVICE_UNAVAILABLE,
            };
            failure(status, f.code, f.message)
        }
        Err(CallError::Stopped(_)) => stopped(),
    }
}

async fn segment(state: web::Data<OrchestratorState>, req: HttpRequest, body: web::Payload) -> HttpResponse {
    let in_flight = state.links.segment_started();
    let resp = segment_answer(&state, &req, body).await;
    drop(in_flight);
    closing_when_draining(&state, resp)
}

/// A base64 MessagePack header: `None` when absent, an error naming it when malformed.
fn wire_header<T: serde::de::DeserializeOwned>(req: &HttpRequest, name: &str) -> Result<Option<T>, String> {
    let Some(value) = req.headers().get(name) else { return Ok(None) };
    let raw = B64.decode(value.as_bytes()).map_err(|e| format!("{name} is not base64: {e}"))?;
    lp_wire::decode(&raw).map(Some).map_err(|e| format!("{name}: {e}"))
}

/// The segment's headers are read before its body, and a request without them is answered
/// without reading it; the body is read within [`MAX_SEGMENT_BYTES`], [`BODY_IDLE`] of silence
/// and [`MAX_PATIENCE`] in all.
async fn segment_answer(state: &OrchestratorState, req: &HttpRequest, mut body: web::Payload) -> HttpResponse {
    let headers = wire_header::<SegData>(req, SEGMENT_HEADER)
        .and_then(|seg| seg.ok_or_else(|| format!("missing {SEGMENT_HEADER} header")))
        // go-livepeer's gateways send no payment offchain: an absent header is an empty payment.
        .and_then(|seg| Ok((seg, wire_header::<Payment>(req, PAYMENT_HEADER)?.unwrap_or_default())));
    let (seg, payment) = match headers {
        Ok(both) => both,
        Err(why) => return failure(StatusCode::BAD_REQUEST, ErrorCode::InvalidInput, why),
    };
    let bounds = Bounds { max_bytes: MAX_SEGMENT_BYTES as u64, idle: BODY_IDLE, total: MAX_PATIENCE };
    let body = match body::read(&mut body, bounds, 0).await {
        Ok(body) => body.freeze(),
        Err(e) => {
            let code = if e == BodyError::Busy { ErrorCode::OrchestratorBusy } else { ErrorCode::InvalidInput };
            return failure(e.status(), code, e.to_string());
        }
    };
    match state.orchestrator.submit(seg, payment, body).await {
        Ok(result) => HttpResponse::Ok().content_type(MSGPACK).body(lp_wire::encode(&result)),
        Err(CallError::Refused(refusal)) => {
            warn!(target: "lp::orchestrator", error = %refusal, "segment refused");
            // go-livepeer answers a payment it refuses with 400.
            let status = match refusal.code {
                ErrorCode::InvalidInput | ErrorCode::PaymentRefused | ErrorCode::InsufficientBalance => {
                    StatusCode::BAD_REQUEST
                }
                _ => StatusCode::FORBIDDEN,
            };
            failure(status, refusal.code, refusal.message)
        }
        Err(CallError::Stopped(_)) => stopped(),
    }
}

async fn end_session(state: web::Data<OrchestratorState>, body: web::Bytes) -> HttpResponse {
    let end: EndSession = match lp_wire::decode(&body) {
        Ok(e) => e,
        Err(e) => return failure(StatusCode::BAD_REQUEST, ErrorCode::InvalidInput, e.to_string()),
    };
    match state.orchestrator.end_session(end.auth_token).await {
        Ok(()) => HttpResponse::Ok().content_type(MSGPACK).body(lp_wire::encode(&())),
        Err(CallError::Refused(refusal)) => failure(StatusCode::FORBIDDEN, refusal.code, refusal.message),
        Err(CallError::Stopped(_)) => stopped(),
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
    WorkerLink::new(
        peer,
        Box::new(transport),
        state.orchestrator.transcoder_pool().clone(),
        secret,
        state.links.clone(),
    )
    .with_ai(state.orchestrator.ai_pool().clone())
    .start_with(events);
    Ok(response)
}
