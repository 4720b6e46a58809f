//! How the gateway reaches orchestrators. The actors only see this trait; the node implements it
//! over HTTP(S) with MessagePack bodies, and keeps the actors free of HTTP.

use std::time::Duration;

use bytes::Bytes;
use futures::future::LocalBoxFuture;

use lp_wire::{AuthToken, OrchestratorInfo, OrchestratorRequest, SegData, TranscodeFailure, TranscodeResult};

/// A failure to get an answer from an orchestrator.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TransportError {
    /// Unreachable, timed out, or the answer was unreadable.
    #[error("{0}")]
    Unreachable(String),
    /// The orchestrator answered with a refusal (capped, auth failure, bad request …).
    #[error("{0}")]
    Refused(TranscodeFailure),
}

/// The gateway's client side of the wire protocol.
pub trait OrchestratorTransport {
    /// Ask `uri` for its terms (go-livepeer `GetOrchestrator`).
    fn get_orchestrator(
        &self,
        uri: &str,
        req: OrchestratorRequest,
    ) -> LocalBoxFuture<'static, Result<OrchestratorInfo, TransportError>>;

    /// Send one segment to `transcoder_uri` and wait for its renditions.
    fn submit_segment(
        &self,
        transcoder_uri: &str,
        seg: SegData,
        data: Bytes,
        timeout: Duration,
    ) -> LocalBoxFuture<'static, Result<TranscodeResult, TransportError>>;

    /// Tell `transcoder_uri` that the session of `token` is over (the stream ended).
    fn end_session(
        &self,
        transcoder_uri: &str,
        token: AuthToken,
    ) -> LocalBoxFuture<'static, Result<(), TransportError>>;
}
