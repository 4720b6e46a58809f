//! `GatewayHandle`: the gateway role as the rest of the node sees it (reth's handle pattern):
//! typed async methods over the role's actors, started under the node's watchdog.

use std::rc::Rc;

use actix::prelude::*;
use lp_pipelines::Profile;
use serde::Serialize;

use super::gateway::{End, Gateway, GatewayStatus, GetGatewayStatus, Push};
use super::hls::HlsRegistry;
use super::orchestrator_pool::{InferAi, ListOrchestrators, OrchestratorList, OrchestratorPool};
use super::stream_session::{IncomingSegment, SegmentDone, StreamSettings};
use super::transport::OrchestratorTransport;
use crate::ai::AiAnswer;
use crate::handle::CallError;
use crate::supervision::{Policy, Watchdog};
use lp_wire::ai::{ApiError, Pipeline};

/// What the gateway role is made of.
pub struct GatewayConfig {
    pub profiles: Vec<Profile>,
    pub stream: StreamSettings,
    pub max_streams: usize,
    /// The orchestrators to use until (or unless) discovery replaces the list.
    pub orchestrators: Vec<String>,
    /// `max_price_per_unit` (zero: no cap).
    pub max_price: lp_chain::pm::Price,
    /// Caps on AI prices, per (pipeline, model or `None` for the pipeline's default).
    pub ai_max_prices: AiPriceCaps,
}

/// Caps on AI prices: (pipeline, model or `None` for every other model of the pipeline) → price.
pub type AiPriceCaps = Vec<((Pipeline, Option<String>), lp_chain::pm::Price)>;

#[derive(Clone)]
pub struct GatewayHandle {
    gateway: Addr<Gateway>,
    pool: Addr<OrchestratorPool>,
    sent: Option<std::sync::Arc<super::ticket_sender::SentTotals>>,
    hls: HlsRegistry,
}

/// A snapshot for `/status`.
#[derive(Debug, Clone, Serialize)]
pub struct GatewayReport {
    pub status: GatewayStatus,
    #[serde(flatten)]
    pub orchestrators: OrchestratorList,
    /// On-chain: the tickets sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payments: Option<super::ticket_sender::Sent>,
}

impl GatewayHandle {
    /// Start the role's actors under `watchdog`.
    pub fn start(config: GatewayConfig, transport: Rc<dyn OrchestratorTransport>, watchdog: &Watchdog) -> Self {
        let mut pool = OrchestratorPool::new(config.orchestrators, transport.clone())
            .max_price(config.max_price)
            .ai_max_prices(config.ai_max_prices);
        if let Some(payments) = &config.stream.payments {
            pool = pool.signed_by(&payments.signer).paying_with(payments.clone());
        }
        let pool = watchdog.start("orchestrator_pool", Policy::Permanent, pool);
        let sent = config.stream.payments.as_ref().map(|p| p.sent.clone());
        let hls = HlsRegistry::default();
        let gateway = Gateway::new(config.profiles, config.stream, config.max_streams, pool.clone(), transport)
            .supervised_by(watchdog)
            .hls(&hls);
        let gateway = watchdog.start("gateway", Policy::Permanent, gateway);
        GatewayHandle { gateway, pool, sent, hls }
    }

    /// Transcode one segment of `stream` (starting the stream on its first, with `profiles`,
    /// else the gateway's).
    pub async fn push(
        &self,
        stream: String,
        profiles: Option<std::sync::Arc<Vec<Profile>>>,
        segment: IncomingSegment,
    ) -> Result<SegmentDone, CallError> {
        match self.gateway.send(Push { stream, profiles, segment }).await {
            Ok(answer) => answer.map_err(CallError::Refused),
            Err(_) => Err(CallError::Stopped("gateway")),
        }
    }

    /// End `stream` once its segments in flight are done; `false` when it is not live.
    pub async fn end(&self, stream: String, why: &'static str) -> bool {
        self.gateway.send(End { stream, why }).await.unwrap_or(false)
    }

    /// Every stream's HLS (live, or ended within the retention time), read without a round trip.
    pub fn hls(&self) -> &HlsRegistry {
        &self.hls
    }

    pub async fn report(&self) -> Result<GatewayReport, CallError> {
        let stopped = |_| CallError::Stopped("gateway");
        let status = self.gateway.send(GetGatewayStatus).await.map_err(stopped)?;
        let orchestrators = self.pool.send(ListOrchestrators).await.map_err(stopped)?;
        Ok(GatewayReport { status, orchestrators, payments: self.sent.as_ref().map(|s| s.get()) })
    }

    /// A client's AI request (`POST /<pipeline>`), checked first here (400 / 422 / 413 without
    /// asking any orchestrator), then run on the best orchestrator that offers its model.
    pub async fn infer(&self, pipeline: Pipeline, content_type: String, body: bytes::Bytes) -> AiAnswer {
        let (model_id, units) = match crate::ai::parse_off_thread(pipeline, &content_type, body.clone()).await {
            Ok((request, units)) => (request.model_id().to_string(), units),
            Err(e) => return AiAnswer::error(&e),
        };
        match self.pool.send(InferAi { pipeline, model_id, units, content_type, body }).await {
            Ok(answer) => answer,
            Err(_) => AiAnswer::error(&ApiError::unavailable("the gateway is shutting down")),
        }
    }

    /// The orchestrator pool, for discovery to replace its list.
    pub fn orchestrator_pool(&self) -> &Addr<OrchestratorPool> {
        &self.pool
    }
}
