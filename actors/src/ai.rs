//! The AI API as both ends of the gateway ↔ orchestrator link see it, free of HTTP: checking a
//! request, serving one on an orchestrator ([`serve`]), and the answer as it travels back
//! ([`AiAnswer`]: a JSON body, or `llm`'s server-sent events as they are made). lp-node puts
//! these on `POST /<pipeline>`; [`crate::gateway::InProcess`] calls them directly.

use std::sync::Arc;
use std::time::Instant;

use actix::Addr;
use bytes::{Bytes, BytesMut};
use futures::stream::LocalBoxStream;
use futures::{Stream, StreamExt};
use lp_wire::ai::{AiRequest, AiResponse, ApiError, LlmChoice, LlmMessage, LlmResponse, Pipeline, check_image_dims};
use lp_wire::limits::WORKER_JOB_TIMEOUT;
use lp_wire::{ErrorCode, Payment, TranscodeFailure};
use tokio::sync::mpsc;

use crate::orchestrator::{AiJob, Orchestrator, SubmitAi};

/// An answer to an AI request: its status, content type and body. `Send`, so that it can
/// cross from the actors' thread to the HTTP worker that answers the client.
pub struct AiAnswer {
    pub status: u16,
    pub content_type: String,
    pub body: AiBody,
}

pub enum AiBody {
    Full(Bytes),
    /// Server-sent events, as they come; the channel ends with the stream.
    Events(mpsc::Receiver<Bytes>),
}

/// Events in flight between their maker and the client.
const EVENTS_IN_FLIGHT: usize = 64;

impl AiBody {
    /// The events of `stream`, forwarded by a task of this thread until it ends or nobody reads
    /// them any more (then the stream is dropped, and its maker hears of it).
    pub fn events(stream: impl Stream<Item = Bytes> + 'static) -> AiBody {
        let (tx, rx) = mpsc::channel(EVENTS_IN_FLIGHT);
        actix::spawn(async move {
            let mut stream = std::pin::pin!(stream);
            while let Some(event) = stream.next().await {
                if tx.send(event).await.is_err() {
                    break;
                }
            }
        });
        AiBody::Events(rx)
    }
}

impl AiAnswer {
    pub fn json(response: &AiResponse) -> AiAnswer {
        AiAnswer { status: 200, content_type: "application/json".into(), body: AiBody::Full(response.to_json().into()) }
    }

    pub fn error(e: &ApiError) -> AiAnswer {
        AiAnswer { status: e.status, content_type: "application/json".into(), body: AiBody::Full(e.to_json().into()) }
    }
}

/// Parse and check a request: its fields (422 / 400 as the spec says) and, for the image
/// pipelines, that the image's header reads and its size is taken. Answers it with its units
/// (what it is priced on: input pixels, or llm's `max_tokens`).
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

/// [`parse`] on a blocking thread: a body of up to 50 MiB of JSON, or an image's header, is
/// work an HTTP worker must not do (two such requests in flight made the gateway answer its
/// other routes 408).
pub async fn parse_off_thread(
    pipeline: Pipeline,
    content_type: &str,
    body: Bytes,
) -> Result<(AiRequest, u64), ApiError> {
    let content_type = content_type.to_string();
    tokio::task::spawn_blocking(move || parse(pipeline, &content_type, &body))
        .await
        .unwrap_or_else(|e| Err(ApiError::internal(format!("checking the request failed: {e}"))))
}

/// How a failure of the orchestrator's side reads in the API: the client's fault is a 400, a
/// payment it does not take a 402, no room now is go-livepeer's 503 "insufficient capacity"
/// (the gateway tries another orchestrator), no worker for it a 503, anything else a 500.
pub fn failure(f: &TranscodeFailure) -> ApiError {
    match f.code {
        ErrorCode::InvalidInput => ApiError::bad_request(f.message.clone()),
        // The gateway's payment, not the client's request: 402, so that the gateway refreshes
        // its terms and tries another orchestrator instead of passing it on.
        ErrorCode::PaymentRefused | ErrorCode::InsufficientBalance => ApiError::http(402, f.message.clone()),
        ErrorCode::OrchestratorBusy => ApiError::unavailable(format!("insufficient capacity: {}", f.message)),
        ErrorCode::NoTranscoders | ErrorCode::NoOrchestrators => ApiError::unavailable(f.message.clone()),
        _ => ApiError::internal(f.message.clone()),
    }
}

/// Serve a gateway's request on `orchestrator`: check it, take its payment (on-chain, priced
/// models), run it, answer it (`llm` with `stream: true` as events).
pub async fn serve(
    orchestrator: Addr<Orchestrator>,
    pipeline: Pipeline,
    content_type: &str,
    body: Bytes,
    payment: Payment,
) -> AiAnswer {
    let (request, units) = match parse_off_thread(pipeline, content_type, body).await {
        Ok(parsed) => parsed,
        Err(e) => return AiAnswer::error(&e),
    };
    let streaming = matches!(&request, AiRequest::Llm(r) if r.stream);
    let model = request.model_id().to_string();
    let (tokens, pieces) = match streaming {
        true => {
            let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
            (Some(tx), Some(rx))
        }
        false => (None, None),
    };
    let job = AiJob { request: Arc::new(request), deadline: Instant::now() + WORKER_JOB_TIMEOUT, tokens };
    let answer = async move {
        match orchestrator.send(SubmitAi { job, payment, units }).await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(rejected)) => Err(failure(&rejected.0)),
            Err(_) => Err(ApiError::unavailable("the orchestrator is shutting down")),
        }
    };
    let Some(mut rx) = pieces else {
        return match answer.await {
            Ok(response) => AiAnswer::json(&response),
            Err(e) => AiAnswer::error(&e),
        };
    };
    // The status waits for the first piece of text or the answer, whichever comes first: a
    // refusal (busy, unpaid, no such model) keeps its own status instead of becoming a stream
    // that says 200.
    let mut answer = actix::spawn(answer);
    let failed = |_| Err(ApiError::internal("the request's task failed"));
    let (first, finished) = tokio::select! {
        Some(piece) = rx.recv() => (Some(piece), None),
        // The answer, or no text at all (the job was refused and dropped): wait for the answer.
        done = &mut answer => match done.unwrap_or_else(failed) {
            Err(e) => return AiAnswer::error(&e),
            done => (None, Some(done)),
        },
    };
    let rest = futures::stream::poll_fn(move |cx| rx.poll_recv(cx));
    let pieces = futures::stream::iter(first).chain(rest);
    let done = async move {
        match finished {
            Some(done) => done,
            None => answer.await.unwrap_or_else(failed),
        }
    };
    let body = AiBody::events(events(model, pieces, done));
    AiAnswer { status: 200, content_type: "text/event-stream".into(), body }
}

/// `llm` with `stream: true`: each piece of text as it is made, as a server-sent event
/// `data: {LLMResponse with a delta}`, then one with the finish reason and the usage, then
/// `data: [DONE]` (as the runner and OpenAI-style clients have it). An error after the first
/// byte can only end the stream: it comes as a last event `data: {"detail":{"msg":…}}`.
///
/// `done` runs at once, beside the stream; the text stream ends when it is done, and text not
/// sent by then goes out with the answer.
pub fn events(
    model: String,
    pieces: impl Stream<Item = String> + 'static,
    done: impl std::future::Future<Output = Result<AiResponse, ApiError>> + 'static,
) -> LocalBoxStream<'static, Bytes> {
    let id = format!("chatcmpl-{:016x}", rand::random::<u64>());
    let created = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
    let chunk = {
        let (id, model) = (id.clone(), model.clone());
        move |content: String| {
            let choice = LlmChoice { index: 0, finish_reason: None, delta: Some(assistant(content)), message: None };
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
    let (finished, finished_rx) = futures::channel::oneshot::channel::<()>();
    let answer = actix::spawn(async move {
        let answer = done.await;
        let _ = finished.send(());
        answer
    });
    let sent = std::rc::Rc::new(std::cell::RefCell::new(String::new()));
    let text = {
        let (chunk, sent) = (chunk.clone(), sent.clone());
        pieces.take_until(finished_rx).map(move |piece| {
            sent.borrow_mut().push_str(&piece);
            chunk(piece)
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
                    out.extend_from_slice(&chunk(rest.to_string()));
                }
                last.id = id;
                last.created = created;
                for choice in &mut last.choices {
                    choice.delta = Some(assistant(String::new()));
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
    text.chain(end).boxed_local()
}

fn assistant(content: String) -> LlmMessage {
    LlmMessage { role: "assistant".into(), content }
}

fn event(data: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(data.len() + 8);
    out.extend_from_slice(b"data: ");
    out.extend_from_slice(data);
    out.extend_from_slice(b"\n\n");
    out.freeze()
}
