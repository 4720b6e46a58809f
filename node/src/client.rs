//! The gateway's HTTP(S) client to orchestrators: [`OrchestratorTransport`] over awc with
//! MessagePack bodies.
//!
//! - `POST {uri}/getOrchestrator`, body `OrchestratorRequest` → `OrchestratorInfo`.
//! - `POST {transcoder}/segment`, header `Livepeer-Segment: base64(SegData)`, header
//!   `Livepeer-Payment: base64(Payment)`, body = the segment → `TranscodeResult`.
//! - `POST {transcoder}/endSession`, body `EndSession` → nil: the stream ended.
//! - `POST {transcoder}/<pipeline>`, a client's AI request as it came (and, on-chain for a priced
//!   model, header `Livepeer-Payment`) → its answer as it comes (JSON, or `llm`'s server-sent
//!   events streamed through).
//!
//! A refusal (4xx/5xx) carries a MessagePack `TranscodeFailure`.

use std::sync::Arc;
use std::time::Duration;

use actix_web::error::ParseError;
use awc::error::SendRequestError;
use awc::{Client, Connector};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::Bytes;
use futures::StreamExt;
use futures::future::LocalBoxFuture;
use futures::future::ready;
use lp_actors::ai::{AiAnswer, AiBody};
use lp_actors::gateway::{OrchestratorTransport, TransportError};
use lp_wire::ai::Pipeline;
use lp_wire::{
    AuthToken, EndSession, ErrorCode, OrchestratorInfo, OrchestratorRequest, Payment, SegData, TranscodeFailure,
    TranscodeResult,
};

use lp_wire::headers::{MSGPACK, PAYMENT as PAYMENT_HEADER, SEGMENT as SEGMENT_HEADER};
use lp_wire::limits::{INFO_TIMEOUT, MAX_FRAME_BYTES};

use crate::tls;

/// An awc client that accepts orchestrators' self-signed certificates.
pub fn http_client(timeout: Duration) -> Client {
    Client::builder()
        // No cap on connections: each segment in flight holds one for its whole transcode, and
        // the gateway's own bounds (max_streams × segment_queue) limit them.
        .connector(
            Connector::new().rustls_0_23(Arc::new(tls::client_config())).timeout(Duration::from_secs(3)).limit(0),
        )
        .timeout(timeout)
        .finish()
}

/// `e`, from a request to the orchestrator at `base`, in words an operator can act on.
///
/// A plain-HTTP request to an orchestrator that serves HTTPS is answered with a TLS alert, which
/// awc reports as "invalid HTTP version specified"; say what it means instead.
pub fn describe_send_error(base: &str, e: &SendRequestError) -> String {
    match (e, base.strip_prefix("http://")) {
        (SendRequestError::Response(ParseError::Version), Some(rest)) => {
            format!("the orchestrator speaks HTTPS; use https://{rest} ({e})")
        }
        _ => e.to_string(),
    }
}

pub struct HttpTransport {
    client: Client,
}

impl HttpTransport {
    pub fn new() -> Self {
        HttpTransport { client: http_client(INFO_TIMEOUT) }
    }
}

impl Default for HttpTransport {
    fn default() -> Self {
        Self::new()
    }
}

fn endpoint(base: &str, path: &str) -> String {
    format!("{}{path}", base.trim_end_matches('/'))
}

async fn read_answer<T: serde::de::DeserializeOwned>(
    mut resp: awc::ClientResponse<impl futures::Stream<Item = Result<Bytes, awc::error::PayloadError>> + Unpin>,
) -> Result<T, TransportError> {
    let status = resp.status();
    let body = resp
        .body()
        .limit(MAX_FRAME_BYTES)
        .await
        .map_err(|e| TransportError::Unreachable(format!("reading the answer: {e}")))?;
    if status.is_success() {
        return lp_wire::decode(&body).map_err(|e| TransportError::Unreachable(format!("unreadable answer: {e}")));
    }
    let failure = lp_wire::decode::<TranscodeFailure>(&body).unwrap_or_else(|_| TranscodeFailure {
        code: ErrorCode::Transport,
        message: format!("HTTP {status}: {}", String::from_utf8_lossy(&body[..body.len().min(200)])),
    });
    Err(TransportError::Refused(failure))
}

impl OrchestratorTransport for HttpTransport {
    fn get_orchestrator(
        &self,
        uri: &str,
        req: OrchestratorRequest,
    ) -> LocalBoxFuture<'static, Result<OrchestratorInfo, TransportError>> {
        let request = self.client.post(endpoint(uri, "/getOrchestrator")).content_type(MSGPACK);
        let body = lp_wire::encode(&req);
        let base = uri.trim_end_matches('/').to_string();
        Box::pin(async move {
            let resp = request
                .send_body(body)
                .await
                .map_err(|e| TransportError::Unreachable(describe_send_error(&base, &e)))?;
            read_answer(resp).await
        })
    }

    fn submit_segment(
        &self,
        transcoder_uri: &str,
        seg: SegData,
        payment: Payment,
        data: Bytes,
        timeout: Duration,
    ) -> LocalBoxFuture<'static, Result<TranscodeResult, TransportError>> {
        let request = self
            .client
            .post(endpoint(transcoder_uri, "/segment"))
            .timeout(timeout)
            .insert_header((SEGMENT_HEADER, B64.encode(lp_wire::encode(&seg))))
            .insert_header((PAYMENT_HEADER, B64.encode(lp_wire::encode(&payment))))
            .content_type("video/mp2t");
        let base = transcoder_uri.trim_end_matches('/').to_string();
        Box::pin(async move {
            let resp = request
                .send_body(data)
                .await
                .map_err(|e| TransportError::Unreachable(describe_send_error(&base, &e)))?;
            read_answer(resp).await
        })
    }

    fn end_session(
        &self,
        transcoder_uri: &str,
        token: AuthToken,
    ) -> LocalBoxFuture<'static, Result<(), TransportError>> {
        let request = self.client.post(endpoint(transcoder_uri, "/endSession")).content_type(MSGPACK);
        let body = lp_wire::encode(&EndSession { auth_token: token });
        let base = transcoder_uri.trim_end_matches('/').to_string();
        Box::pin(async move {
            let resp = request
                .send_body(body)
                .await
                .map_err(|e| TransportError::Unreachable(describe_send_error(&base, &e)))?;
            read_answer(resp).await
        })
    }

    fn infer(
        &self,
        transcoder_uri: &str,
        pipeline: Pipeline,
        content_type: &str,
        body: Bytes,
        payment: Payment,
        timeout: Duration,
    ) -> LocalBoxFuture<'static, Result<AiAnswer, TransportError>> {
        let mut request = self
            .client
            .post(endpoint(transcoder_uri, &format!("/{}", pipeline.name())))
            .timeout(timeout)
            .insert_header(("Content-Type", content_type));
        if !payment.sender.is_empty() {
            request = request.insert_header((PAYMENT_HEADER, B64.encode(lp_wire::encode(&payment))));
        }
        let base = transcoder_uri.trim_end_matches('/').to_string();
        Box::pin(async move {
            let mut resp = request
                .send_body(body)
                .await
                .map_err(|e| TransportError::Unreachable(describe_send_error(&base, &e)))?;
            let status = resp.status().as_u16();
            let content_type = resp
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("application/json")
                .to_string();
            let body = match content_type.starts_with("text/event-stream") {
                // Passed on as it arrives; a broken stream just ends.
                true => AiBody::events(resp.take_while(|c| ready(c.is_ok())).filter_map(|c| ready(c.ok()))),
                false => AiBody::Full(
                    resp.body()
                        .limit(MAX_FRAME_BYTES)
                        .await
                        .map_err(|e| TransportError::Unreachable(format!("reading the answer: {e}")))?,
                ),
            };
            Ok(AiAnswer { status, content_type, body })
        })
    }
}
