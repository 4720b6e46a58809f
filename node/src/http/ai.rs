//! The AI API's HTTP side, shared by the gateway and the orchestrator (both serve
//! `POST /<pipeline>` with the same bodies, `docs/reference/ai-gateway.openapi.yaml`): reading a
//! request within its size limit, checking its image, the spec's error bodies, and `llm`'s
//! server-sent events.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use bytes::{Bytes, BytesMut};
use futures::{Stream, StreamExt};
use lp_wire::ai::{AiRequest, AiResponse, ApiError, LlmChoice, LlmMessage, LlmResponse, Pipeline, check_image_dims};
use lp_wire::limits::MAX_AI_BODY_BYTES;
use lp_wire::{ErrorCode, TranscodeFailure};

/// The paths served: one per pipeline this build runs.
pub fn pipelines() -> impl Iterator<Item = Pipeline> {
    Pipeline::ALL.into_iter().filter(|p| p.served())
}

/// The request body, refused past [`MAX_AI_BODY_BYTES`] (413) before more is read.
pub async fn read_body(mut payload: web::Payload) -> Result<Bytes, ApiError> {
    let mut body = BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| ApiError::bad_request(format!("reading the body: {e}")))?;
        if body.len() + chunk.len() > MAX_AI_BODY_BYTES {
            return Err(ApiError::too_large(format!("the body exceeds {MAX_AI_BODY_BYTES} bytes")));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// The header's `Content-Type`, as sent.
pub fn content_type(req: &HttpRequest) -> String {
    req.headers().get(actix_web::http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_string()
}

/// Parse and check a request: its fields (422 / 400 as the spec says) and, for the image
/// pipelines, that the image decodes to a size taken. Answers it with its units (what it is
/// priced on: input pixels, or llm's `max_tokens`).
pub fn parse(pipeline: Pipeline, content_type: &str, body: &[u8]) -> Result<(AiRequest, u64), ApiError> {
    let request = AiRequest::parse(pipeline, content_type, body)?;
    let dims = match request.image() {
        Some(image) => {
            let (w, h) =
                lp_pipelines::ai::image::dimensions(image).map_err(|e| ApiError::bad_request(e.to_string()))?;
            check_image_dims(w, h)?;
            Some((w, h))
        }
        None => None,
    };
    let units = request.units(dims);
    Ok((request, units))
}

/// An error answer in the spec's shape.
pub fn error(e: &ApiError) -> HttpResponse {
    let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    HttpResponse::build(status).content_type("application/json").body(e.to_json())
}

pub fn json(response: &AiResponse) -> HttpResponse {
    HttpResponse::Ok().content_type("application/json").body(response.to_json())
}

/// How a failure of the orchestrator's side reads in the API: the client's fault is a 400, no
/// room now is go-livepeer's 503 "insufficient capacity" (the gateway tries another
/// orchestrator), no worker for it a 503, anything else a 500.
pub fn failure(f: &TranscodeFailure) -> ApiError {
    match f.code {
        ErrorCode::InvalidInput | ErrorCode::PaymentRefused | ErrorCode::InsufficientBalance => {
            ApiError::bad_request(f.message.clone())
        }
        ErrorCode::OrchestratorBusy => ApiError::unavailable(format!("insufficient capacity: {}", f.message)),
        ErrorCode::NoTranscoders | ErrorCode::NoOrchestrators => ApiError::unavailable(f.message.clone()),
        _ => ApiError::internal(f.message.clone()),
    }
}

/// `llm` with `stream: true`: each piece of text as it is made, as a server-sent event
/// `data: {LLMResponse with a delta}`, then one with the finish reason and the usage, then
/// `data: [DONE]` (as the runner and OpenAI-style clients have it). An error after the first
/// byte can only end the stream: it comes as a last event `data: {"detail":{"msg":…}}`.
pub fn sse(
    model: String,
    pieces: impl Stream<Item = String> + 'static,
    done: impl std::future::Future<Output = Result<AiResponse, ApiError>> + 'static,
) -> HttpResponse {
    let id = format!("chatcmpl-{:016x}", rand::random::<u64>());
    let created = now();
    let chunk = {
        let (id, model) = (id.clone(), model.clone());
        move |content: String, finish_reason: Option<String>| {
            let choice = LlmChoice {
                index: 0,
                finish_reason,
                delta: Some(LlmMessage { role: "assistant".into(), content }),
                message: None,
            };
            let response = LlmResponse {
                id: id.clone(),
                model: model.clone(),
                created,
                usage: Default::default(),
                choices: vec![choice],
            };
            event(&serde_json::to_vec(&response).expect("LLM responses serialize"))
        }
    };
    // The answer runs now, beside the stream; the text stream ends when it is done, and what
    // of the text had not been sent by then goes out with the answer.
    let (finished, finished_rx) = futures::channel::oneshot::channel::<()>();
    let answer = actix_web::rt::spawn(async move {
        let answer = done.await;
        let _ = finished.send(());
        answer
    });
    let sent = std::rc::Rc::new(std::cell::RefCell::new(String::new()));
    let text = {
        let (chunk, sent) = (chunk.clone(), sent.clone());
        pieces.take_until(finished_rx).map(move |piece| {
            sent.borrow_mut().push_str(&piece);
            chunk(piece, None)
        })
    };
    let end = futures::stream::once(async move {
        let mut out = BytesMut::new();
        let answer = answer.await.unwrap_or_else(|_| Err(ApiError::internal("the request's task failed")));
        match answer {
            Ok(AiResponse::Llm(mut last)) => {
                let full = last.choices.first().and_then(|c| c.message.as_ref()).map(|m| m.content.clone());
                if let Some(rest) = full.as_deref().and_then(|f| f.strip_prefix(sent.borrow().as_str()))
                    && !rest.is_empty()
                {
                    out.extend_from_slice(&chunk(rest.to_string(), None));
                }
                last.id = id;
                last.created = created;
                for choice in &mut last.choices {
                    choice.delta = Some(LlmMessage { role: "assistant".into(), content: String::new() });
                    choice.message = None;
                }
                out.extend_from_slice(&event(&serde_json::to_vec(&last).expect("LLM responses serialize")));
            }
            Ok(_) => out.extend_from_slice(&event(&ApiError::internal("not an llm answer").to_json())),
            Err(e) => out.extend_from_slice(&event(&e.to_json())),
        }
        out.extend_from_slice(&event(b"[DONE]"));
        out.freeze()
    });
    let body = text.chain(end).map(Ok::<_, std::convert::Infallible>);
    HttpResponse::Ok().content_type("text/event-stream").insert_header(("Cache-Control", "no-cache")).streaming(body)
}

fn event(data: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(data.len() + 8);
    out.extend_from_slice(b"data: ");
    out.extend_from_slice(data);
    out.extend_from_slice(b"\n\n");
    out.freeze()
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}
