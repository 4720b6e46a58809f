//! The AI API's HTTP side, shared by the gateway and the orchestrator (both serve
//! `POST /<pipeline>` with the same bodies, `docs/reference/ai-gateway.openapi.yaml`): the
//! paths, reading a request within its size limit, and answers ([`lp_actors::ai::AiAnswer`]) as
//! HTTP responses.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use lp_actors::ai::{AiAnswer, AiBody};
use lp_wire::ai::{ApiError, Pipeline};
use lp_wire::limits::{MAX_AI_BODY_BYTES, MAX_PATIENCE};

use crate::http::body::{self, BodyError, Bounds};

/// The paths served: one per pipeline this build runs.
pub fn pipelines() -> impl Iterator<Item = Pipeline> {
    Pipeline::ALL.into_iter().filter(|p| p.served())
}

/// The pipeline of a request's path (`/upscale`).
pub fn pipeline(req: &HttpRequest) -> Option<Pipeline> {
    Pipeline::from_name(req.path().trim_start_matches('/')).filter(|p| p.served())
}

/// The request body, refused past [`MAX_AI_BODY_BYTES`] (413) before more is read, after `idle`
/// without a byte or [`MAX_PATIENCE`] in all (408), or while the node holds as many bodies as it
/// may (503).
pub async fn read_body(mut payload: web::Payload, idle: Duration) -> Result<Bytes, ApiError> {
    let bounds = Bounds { max_bytes: MAX_AI_BODY_BYTES as u64, idle, total: MAX_PATIENCE };
    match body::read(&mut payload, bounds, 0).await {
        Ok(body) => Ok(body.freeze()),
        Err(BodyError::TooLarge { .. }) => {
            Err(ApiError::too_large(format!("the body exceeds {MAX_AI_BODY_BYTES} bytes")))
        }
        Err(e) => Err(ApiError::http(e.status().as_u16(), e.to_string())),
    }
}

/// The request's `Content-Type`, as sent.
pub fn content_type(req: &HttpRequest) -> String {
    req.headers().get(actix_web::http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_string()
}

pub fn respond(answer: AiAnswer) -> HttpResponse {
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut resp = HttpResponse::build(status);
    resp.content_type(answer.content_type);
    match answer.body {
        AiBody::Full(body) => resp.body(body),
        AiBody::Events(mut events) => {
            let events = futures::stream::poll_fn(move |cx| events.poll_recv(cx));
            resp.insert_header(("Cache-Control", "no-cache")).streaming(events.map(Ok::<_, std::convert::Infallible>))
        }
    }
}

pub fn error(e: &ApiError) -> HttpResponse {
    respond(AiAnswer::error(e))
}
