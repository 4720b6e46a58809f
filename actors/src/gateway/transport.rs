//! How the gateway reaches orchestrators. The actors only see this trait; the node implements it
//! over HTTP(S) with MessagePack bodies, and keeps the actors free of HTTP; [`InProcess`]
//! implements it without a network.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

use actix::{Addr, MailboxError};
use bytes::Bytes;
use futures::future::LocalBoxFuture;

use crate::ai::{self, AiAnswer};
use crate::orchestrator::{EndSession, GetOrchestratorInfo, Orchestrator, SubmitSegment};
use lp_wire::ai::Pipeline;
use lp_wire::{AuthToken, OrchestratorInfo, OrchestratorRequest, Payment, SegData, TranscodeFailure, TranscodeResult};

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

    /// Send one segment and the payment for it to `transcoder_uri` and wait for its renditions.
    fn submit_segment(
        &self,
        transcoder_uri: &str,
        seg: SegData,
        payment: Payment,
        data: Bytes,
        timeout: Duration,
    ) -> LocalBoxFuture<'static, Result<TranscodeResult, TransportError>>;

    /// Tell `transcoder_uri` that the session of `token` is over (the stream ended).
    fn end_session(
        &self,
        transcoder_uri: &str,
        token: AuthToken,
    ) -> LocalBoxFuture<'static, Result<(), TransportError>>;

    /// Send a client's AI request, as it came (`POST /<pipeline>`, its content type and body),
    /// with the payment for it (on-chain, priced models; empty otherwise) to `transcoder_uri`,
    /// and hand back the answer as it comes, whatever its status.
    fn infer(
        &self,
        transcoder_uri: &str,
        pipeline: Pipeline,
        content_type: &str,
        body: Bytes,
        payment: Payment,
        timeout: Duration,
    ) -> LocalBoxFuture<'static, Result<AiAnswer, TransportError>>;
}

/// The wire protocol without a network: the same messages, handed to orchestrators of this
/// process by URI. What everything above the HTTP surface is tested through (the gateway, the
/// orchestrator and, with payments, the ticket sender and receiver), and the transport of an
/// all-in-one node that needs no loopback HTTP. An orchestrator not (or no longer) listed is
/// unreachable, as one that is down.
#[derive(Clone, Default)]
pub struct InProcess {
    orchestrators: Rc<RefCell<HashMap<String, Addr<Orchestrator>>>>,
}

impl InProcess {
    /// Reach `orchestrator` at `uri` (with or without a trailing `/`).
    pub fn add(&self, uri: &str, orchestrator: Addr<Orchestrator>) {
        self.orchestrators.borrow_mut().insert(uri.trim_end_matches('/').to_string(), orchestrator);
    }

    /// `uri` goes down.
    pub fn remove(&self, uri: &str) {
        self.orchestrators.borrow_mut().remove(uri);
    }

    fn get(&self, uri: &str) -> Result<Addr<Orchestrator>, TransportError> {
        let found = self.orchestrators.borrow().get(uri.trim_end_matches('/')).cloned();
        found.ok_or_else(|| TransportError::Unreachable(format!("{uri} is down")))
    }
}

fn stopped(_: MailboxError) -> TransportError {
    TransportError::Unreachable("the orchestrator stopped before answering".into())
}

impl OrchestratorTransport for InProcess {
    fn get_orchestrator(
        &self,
        uri: &str,
        req: OrchestratorRequest,
    ) -> LocalBoxFuture<'static, Result<OrchestratorInfo, TransportError>> {
        let o = self.get(uri);
        Box::pin(
            async move { o?.send(GetOrchestratorInfo(req)).await.map_err(stopped)?.map_err(TransportError::Refused) },
        )
    }

    fn submit_segment(
        &self,
        uri: &str,
        seg: SegData,
        payment: Payment,
        data: Bytes,
        _: Duration,
    ) -> LocalBoxFuture<'static, Result<TranscodeResult, TransportError>> {
        let o = self.get(uri);
        Box::pin(async move {
            let submit = SubmitSegment { seg, payment, data };
            o?.send(submit).await.map_err(stopped)?.map_err(|r| TransportError::Refused(r.0))
        })
    }

    fn end_session(&self, uri: &str, token: AuthToken) -> LocalBoxFuture<'static, Result<(), TransportError>> {
        let o = self.get(uri);
        Box::pin(
            async move { o?.send(EndSession(token)).await.map_err(stopped)?.map_err(|r| TransportError::Refused(r.0)) },
        )
    }

    fn infer(
        &self,
        uri: &str,
        pipeline: Pipeline,
        content_type: &str,
        body: Bytes,
        payment: Payment,
        _: Duration,
    ) -> LocalBoxFuture<'static, Result<AiAnswer, TransportError>> {
        let o = self.get(uri);
        let content_type = content_type.to_string();
        Box::pin(async move { Ok(ai::serve(o?, pipeline, &content_type, body, payment).await) })
    }
}

/// The orchestrators of this process reached in-process, every other one through `remote`: the
/// gateway of an all-in-one node sends its own orchestrator segments without a loopback
/// HTTP(S) trip (TLS both ways, MessagePack, copies), as the same actors would answer it.
pub struct LocalFirst<T> {
    pub local: InProcess,
    pub remote: T,
}

impl<T: OrchestratorTransport> LocalFirst<T> {
    /// Which of the two reaches `uri`.
    fn route(&self, uri: &str) -> &dyn OrchestratorTransport {
        match self.local.orchestrators.borrow().contains_key(uri.trim_end_matches('/')) {
            true => &self.local,
            false => &self.remote,
        }
    }
}

impl<T: OrchestratorTransport> OrchestratorTransport for LocalFirst<T> {
    fn get_orchestrator(
        &self,
        uri: &str,
        req: OrchestratorRequest,
    ) -> LocalBoxFuture<'static, Result<OrchestratorInfo, TransportError>> {
        self.route(uri).get_orchestrator(uri, req)
    }

    fn submit_segment(
        &self,
        uri: &str,
        seg: SegData,
        payment: Payment,
        data: Bytes,
        timeout: Duration,
    ) -> LocalBoxFuture<'static, Result<TranscodeResult, TransportError>> {
        self.route(uri).submit_segment(uri, seg, payment, data, timeout)
    }

    fn end_session(&self, uri: &str, token: AuthToken) -> LocalBoxFuture<'static, Result<(), TransportError>> {
        self.route(uri).end_session(uri, token)
    }

    fn infer(
        &self,
        uri: &str,
        pipeline: Pipeline,
        content_type: &str,
        body: Bytes,
        payment: Payment,
        timeout: Duration,
    ) -> LocalBoxFuture<'static, Result<AiAnswer, TransportError>> {
        self.route(uri).infer(uri, pipeline, content_type, body, payment, timeout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::orchestrator::{OrchestratorSettings, TranscoderPool};
    use actix::Actor;

    fn orchestrator(service_uri: &str) -> Addr<Orchestrator> {
        Orchestrator::new(OrchestratorSettings::offchain(service_uri, 4), TranscoderPool::new(4).start()).start()
    }

    /// The orchestrator of this process answers itself, even where the remote side would reach
    /// something at the same URI; every other one goes to the remote side.
    #[actix::test]
    async fn the_own_orchestrator_is_reached_in_process_and_others_remotely() {
        let local = InProcess::default();
        local.add("https://own:8935", orchestrator("https://own:8935"));
        let remote = InProcess::default();
        remote.add("https://own:8935", orchestrator("https://impostor:1"));
        remote.add("https://other:8935/", orchestrator("https://other:8935"));
        let both = LocalFirst { local, remote };
        let ask = |uri: &'static str| both.get_orchestrator(uri, OrchestratorRequest::default());
        assert_eq!(ask("https://own:8935").await.unwrap().transcoder, "https://own:8935");
        assert_eq!(ask("https://own:8935/").await.unwrap().transcoder, "https://own:8935", "a trailing / is the same");
        assert_eq!(ask("https://other:8935").await.unwrap().transcoder, "https://other:8935");
        assert!(matches!(ask("https://down:1").await, Err(TransportError::Unreachable(_))));
    }
}
