//! `OrchestratorPool`: the gateway's known orchestrators and their suspensions.
//!
//! - **Owns** the candidate list (offchain: the configured URIs; on-chain: the active pool,
//!   replaced each round by [`SetOrchestrators`]) and a suspension deadline per
//!   orchestrator that failed.
//! - **Selects** for a stream: the preferred candidates first, then the ones the stream asked to
//!   avoid, then the suspended ones; all of a tier are asked for their terms at once and the
//!   first to accept is taken. Tells a stream whether another unsuspended orchestrator
//!   exists ([`HasAlternatives`]).
//! - **Price cap**: an orchestrator whose price is above the gateway's `max_price_per_unit` is
//!   not used; the gateway says so in its log (once per price) and in `/status`
//!   ([`ListOrchestrators`]).
//! - **On-chain** every request for terms is signed with the gateway's account, so the
//!   orchestrator can issue ticket parameters to it.
//! - **AI requests** ([`InferAi`]): the orchestrators that offer the request's model (their
//!   terms asked for at once and kept for [`AI_INFO_TTL`]) are ranked unsuspended first, then
//!   warm before cold, then by their last latency, then by price; those priced above the cap
//!   for the pipeline or model are left out. The request goes to the first; one answering 503
//!   (insufficient capacity) or failing is followed by the next, up to [`MAX_AI_TRIES`]; one
//!   that fails or cannot be reached is suspended. On-chain, a priced model is paid up front,
//!   with tickets from a [`TicketSender`] per orchestrator and model (started on first use,
//!   under the watchdog), settled with the request's units once it is served. Its 4xx answers (the client's fault) are the
//!   answer. A model no orchestrator offers (each answered) is a 400; no orchestrator that can
//!   take the request: 503 "no orchestrators available".
//! - **Mailbox**: bounded at [`MAILBOX`].
//! - **Restart policy**: supervised, permanent (see `crate::supervision`): restarted in place
//!   after a panic with its list and suspensions; selections in flight run on (they are
//!   futures outside its context).

use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt};
use tracing::{debug, warn};

use super::ticket_sender::{NewTerms, PayUnits, SenderSettings, Settle, TicketSender};
use super::transport::{OrchestratorTransport, TransportError};
use crate::ai::AiAnswer;
use crate::metrics;
use crate::payment::price_from_wire;
use crate::supervision::inject_panic;
use bytes::Bytes;
use lp_chain::pm::Price;
use lp_wire::ai::{ApiError, Pipeline};
use lp_wire::limits::{INFO_TIMEOUT, WORKER_JOB_TIMEOUT};
use lp_wire::{Capabilities, ErrorCode, OrchestratorInfo, OrchestratorRequest, Payment, TranscodeFailure};
use serde::Serialize;
use serde_bytes::ByteBuf;

pub(crate) const MAILBOX: usize = 1024;
/// How long an orchestrator that failed is tried only after every other one.
pub const SUSPENSION: Duration = Duration::from_secs(30);
/// How long an orchestrator's terms are used for AI requests before they are asked again.
pub const AI_INFO_TTL: Duration = Duration::from_secs(30);
/// Orchestrators one AI request is tried on.
pub const MAX_AI_TRIES: usize = 3;

/// An orchestrator that accepted a stream: where to send segments, and the terms.
#[derive(Debug, Clone)]
pub struct OrchestratorSession {
    /// The URI it was discovered at (the pool's key).
    pub uri: String,
    pub info: OrchestratorInfo,
    /// On-chain: who pays for the session's segments (`None` when they are free).
    pub payer: Option<Addr<super::ticket_sender::TicketSender>>,
}

pub struct OrchestratorPool {
    uris: Vec<String>,
    suspended: HashMap<String, Instant>,
    transport: Rc<dyn OrchestratorTransport>,
    next: usize,
    /// `max_price_per_unit`; zero: no cap.
    max_price: Price,
    /// Orchestrators last seen priced above the cap, with their price.
    priced_out: HashMap<String, Price>,
    /// The gateway's signed address (on-chain).
    signed: Option<(ByteBuf, ByteBuf)>,
    /// Caps on AI prices: (pipeline, model or `None` for its default) → price.
    ai_max_prices: HashMap<(Pipeline, Option<String>), Price>,
    /// Orchestrators' last terms for AI requests of a capability and model (each model has its
    /// price, and on-chain its ticket parameters), and when they came.
    ai_infos: HashMap<(String, u32, String), (Instant, OrchestratorInfo)>,
    /// How long those terms are used: [`AI_INFO_TTL`]; shorter only in tests.
    ai_info_ttl: Duration,
    /// The last time an AI request took, per orchestrator, pipeline and model.
    ai_latency: HashMap<(String, Pipeline, String), Duration>,
    /// On-chain: how AI requests are paid, and the payer per orchestrator and priced model.
    payments: Option<SenderSettings>,
    ai_payers: HashMap<(String, u32, String), Addr<TicketSender>>,
}

impl OrchestratorPool {
    pub fn new(uris: Vec<String>, transport: Rc<dyn OrchestratorTransport>) -> Self {
        OrchestratorPool {
            uris,
            suspended: HashMap::new(),
            transport,
            next: 0,
            max_price: Price::ZERO,
            priced_out: HashMap::new(),
            signed: None,
            ai_max_prices: HashMap::new(),
            ai_infos: HashMap::new(),
            ai_info_ttl: AI_INFO_TTL,
            ai_latency: HashMap::new(),
            payments: None,
            ai_payers: HashMap::new(),
        }
    }

    /// Pay for priced AI requests with tickets (on-chain).
    pub fn paying_with(mut self, payments: SenderSettings) -> Self {
        self.payments = Some(payments);
        self
    }

    /// Cap AI prices: per (pipeline, model), or per pipeline with model `None`; what has no cap
    /// here has `max_price`'s.
    pub fn ai_max_prices(mut self, caps: impl IntoIterator<Item = ((Pipeline, Option<String>), Price)>) -> Self {
        self.ai_max_prices = caps.into_iter().collect();
        self
    }

    /// The cap on `model` of `pipeline`: its own, else its pipeline's, else `max_price`.
    fn ai_cap(&self, pipeline: Pipeline, model: &str) -> Price {
        let own = self.ai_max_prices.get(&(pipeline, Some(model.to_string())));
        own.or_else(|| self.ai_max_prices.get(&(pipeline, None))).copied().unwrap_or(self.max_price)
    }

    /// Use orchestrators' terms for AI requests this long before asking again (default
    /// [`AI_INFO_TTL`]).
    pub fn ai_info_ttl(mut self, ttl: Duration) -> Self {
        self.ai_info_ttl = ttl;
        self
    }

    /// Use no orchestrator priced above `max_price` (zero: no cap).
    pub fn max_price(mut self, max_price: Price) -> Self {
        self.max_price = max_price;
        self
    }

    /// Sign every request for terms with this account (on-chain).
    pub fn signed_by(mut self, signer: &alloy::signers::local::PrivateKeySigner) -> Self {
        self.signed = Some(crate::payment::sign_request(signer));
        self
    }

    fn is_suspended(&self, uri: &str) -> bool {
        self.suspended.get(uri).is_some_and(|until| *until > Instant::now())
    }

    /// Candidates in tiers to try one after another: the preferred ones, then those the stream
    /// would rather avoid, then the suspended ones. Empty tiers are left out.
    fn candidates(&mut self, avoid: &[String]) -> Vec<Vec<String>> {
        let n = self.uris.len();
        let start = self.next;
        self.next = self.next.wrapping_add(1);
        let mut tiers = vec![Vec::new(), Vec::new(), Vec::new()];
        for i in 0..n {
            let uri = self.uris[(start + i) % n].clone();
            let tier = if self.is_suspended(&uri) { 2 } else { usize::from(avoid.contains(&uri)) };
            tiers[tier].push(uri);
        }
        tiers.retain(|t| !t.is_empty());
        tiers
    }
}

impl Actor for OrchestratorPool {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(MAILBOX);
    }
}

impl Supervised for OrchestratorPool {}

inject_panic!(OrchestratorPool);

/// Find an orchestrator that takes a (new) session.
#[derive(Message)]
#[rtype(result = "Result<OrchestratorSession, TranscodeFailure>")]
pub struct SelectOrchestrator {
    /// Orchestrators this stream would rather not use (they just failed it).
    pub avoid: Vec<String>,
    /// Orchestrators this stream already holds a session with: asked with
    /// `ignore_capacity_check`, since taking them again opens no new session.
    pub held: Vec<String>,
}

/// Whether an unsuspended orchestrator other than this one could take a stream's segments (when
/// none can, a slow segment is waited for rather than sent again).
#[derive(Message)]
#[rtype(result = "bool")]
pub struct HasAlternatives(pub String);

impl Handler<HasAlternatives> for OrchestratorPool {
    type Result = bool;

    fn handle(&mut self, HasAlternatives(uri): HasAlternatives, _: &mut Self::Context) -> bool {
        self.uris.iter().any(|u| *u != uri && !self.is_suspended(u))
    }
}

/// An orchestrator failed a segment: try it last for a while.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Suspend(pub String);

/// Replace the candidates (on-chain: the active orchestrators of the current round).
#[derive(Message)]
#[rtype(result = "()")]
pub struct SetOrchestrators(pub Vec<String>);

/// The orchestrators, for `/status`.
#[derive(Message)]
#[rtype(result = "OrchestratorList")]
pub struct ListOrchestrators;

#[derive(Debug, Clone, Serialize)]
pub struct OrchestratorList {
    pub orchestrators: Vec<String>,
    /// Those priced above `max_price_per_unit` when last asked (not used), with their price.
    pub priced_out: Vec<PricedOut>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PricedOut {
    pub uri: String,
    pub price_per_unit: u64,
    pub pixels_per_unit: u64,
}

/// An orchestrator answered with a price above the cap (or, `None`, one within it again).
#[derive(Message)]
#[rtype(result = "()")]
struct PricedAt(String, Option<Price>);

impl Handler<PricedAt> for OrchestratorPool {
    type Result = ();

    fn handle(&mut self, PricedAt(uri, price): PricedAt, _: &mut Self::Context) {
        match price {
            Some(price) => {
                if self.priced_out.insert(uri.clone(), price) != Some(price) {
                    warn!(target: "lp::gateway", orchestrator = %uri, %price, max = %self.max_price, "orchestrator priced above max_price_per_unit: not used");
                }
            }
            None => {
                self.priced_out.remove(&uri);
            }
        }
    }
}

impl Handler<SelectOrchestrator> for OrchestratorPool {
    type Result = ResponseFuture<Result<OrchestratorSession, TranscodeFailure>>;

    fn handle(&mut self, msg: SelectOrchestrator, ctx: &mut Self::Context) -> Self::Result {
        let candidates = self.candidates(&msg.avoid);
        let transport = self.transport.clone();
        let me = ctx.address();
        let (max_price, signed) = (self.max_price, self.signed.clone().unwrap_or_default());
        Box::pin(async move {
            if candidates.is_empty() {
                return Err(TranscodeFailure {
                    code: ErrorCode::NoOrchestrators,
                    message: "no orchestrators are configured".into(),
                });
            }
            let mut reasons = Vec::new();
            // Within a tier every candidate is asked at once and the first to accept wins (the
            // fastest, as go-livepeer prefers), so dead orchestrators cost one timeout, not one each.
            for tier in candidates {
                let mut asked: FuturesUnordered<_> = tier
                    .into_iter()
                    .map(|uri| {
                        let req = OrchestratorRequest {
                            address: signed.0.clone(),
                            sig: signed.1.clone(),
                            capabilities: Some(Capabilities::transcoding()),
                            ignore_capacity_check: msg.held.contains(&uri),
                        };
                        transport.get_orchestrator(&uri, req).map(move |answer| (uri, answer))
                    })
                    .collect();
                while let Some((uri, answer)) = asked.next().await {
                    let price =
                        answer.as_ref().ok().and_then(|i| i.price_info.as_ref()).and_then(|p| price_from_wire(p).ok());
                    if let Some(price) = price {
                        let above = price.above(&max_price);
                        me.do_send(PricedAt(uri.clone(), above.then_some(price)));
                        if above {
                            reasons.push(format!("{uri}: priced at {price}, above max_price_per_unit ({max_price})"));
                            continue;
                        }
                    }
                    match answer {
                        Ok(info) if info.auth_token.is_some() && !info.transcoder.is_empty() => {
                            debug!(target: "lp::gateway", orchestrator = %uri, "orchestrator selected");
                            return Ok(OrchestratorSession { uri, info, payer: None });
                        }
                        Ok(_) => reasons.push(format!("{uri}: incomplete orchestrator info")),
                        Err(TransportError::Refused(f)) => reasons.push(format!("{uri}: {f}")),
                        Err(TransportError::Unreachable(e)) => {
                            // Unreachable orchestrators go last for a while, for every stream.
                            me.do_send(Suspend(uri.clone()));
                            reasons.push(format!("{uri}: {e}"));
                        }
                    }
                }
            }
            warn!(target: "lp::gateway", reasons = %reasons.join("; "), "no orchestrator took the session");
            Err(TranscodeFailure {
                code: ErrorCode::NoOrchestrators,
                message: format!("no orchestrator could take the stream ({})", reasons.join("; ")),
            })
        })
    }
}

/// A client's AI request, as it came, to run on the best orchestrator for its model.
#[derive(Message)]
#[rtype(result = "AiAnswer")]
pub struct InferAi {
    pub pipeline: Pipeline,
    pub model_id: String,
    /// What the request is priced on (input pixels, or llm's `max_tokens`).
    pub units: u64,
    pub content_type: String,
    pub body: Bytes,
}

/// The ticket sender paying `model` of AI capability `cap` on `uri`, on `info`'s terms; `None`
/// offchain or when the model is free.
#[derive(Message)]
#[rtype(result = "Option<Addr<TicketSender>>")]
struct AiPayer {
    uri: String,
    cap: u32,
    model: String,
    info: OrchestratorInfo,
}

/// Forget `uri`'s terms (its ticket parameters need refreshing).
#[derive(Message)]
#[rtype(result = "()")]
struct ForgetAiInfo(String, u32, String);

/// Terms heard for AI requests, to keep for [`AI_INFO_TTL`].
#[derive(Message)]
#[rtype(result = "()")]
struct AiInfos(u32, String, Vec<(String, OrchestratorInfo)>);

/// How long an AI request took on an orchestrator.
#[derive(Message)]
#[rtype(result = "()")]
struct AiLatency(String, Pipeline, String, Duration);

/// An orchestrator an AI request may go to.
struct AiCandidate {
    uri: String,
    info: OrchestratorInfo,
    transcoder: String,
    suspended: bool,
    warm: bool,
    latency: Duration,
    price: Price,
}

impl Handler<InferAi> for OrchestratorPool {
    type Result = ResponseFuture<AiAnswer>;

    fn handle(&mut self, msg: InferAi, ctx: &mut Self::Context) -> Self::Result {
        let InferAi { pipeline, model_id, units, content_type, body } = msg;
        let cap = pipeline.capability();
        let max_price = self.ai_cap(pipeline, &model_id);
        let now = Instant::now();
        // Terms still fresh, and the orchestrators to ask again.
        let mut known = Vec::new();
        let mut ask = Vec::new();
        for uri in &self.uris {
            match self.ai_infos.get(&(uri.clone(), cap, model_id.clone())) {
                Some((at, info)) if now.duration_since(*at) < self.ai_info_ttl => {
                    known.push((uri.clone(), info.clone()))
                }
                _ => ask.push(uri.clone()),
            }
        }
        let suspended: Vec<String> = self.uris.iter().filter(|u| self.is_suspended(u)).cloned().collect();
        let listed = !self.uris.is_empty();
        let latency = self.ai_latency.clone();
        let transport = self.transport.clone();
        let me = ctx.address();
        let signed = self.signed.clone().unwrap_or_default();
        Box::pin(async move {
            let mut wanted = Capabilities::default();
            wanted.set(lp_wire::capability::AUTH_TOKEN);
            wanted.set(cap);
            // The model named: its price, and ticket parameters at it (on-chain).
            wanted.constraints.entry(cap).or_default().insert(model_id.clone(), Default::default());
            let asked: FuturesUnordered<_> = ask
                .into_iter()
                .map(|uri| {
                    let req = OrchestratorRequest {
                        address: signed.0.clone(),
                        sig: signed.1.clone(),
                        capabilities: Some(wanted.clone()),
                        ignore_capacity_check: true,
                    };
                    transport.get_orchestrator(&uri, req).map(move |answer| (uri, answer))
                })
                .collect();
            let mut reasons = Vec::new();
            let mut heard = Vec::new();
            let mut everyone_answered = true;
            for (uri, answer) in asked.collect::<Vec<_>>().await {
                match answer {
                    Ok(info) => heard.push((uri, info)),
                    Err(TransportError::Unreachable(e)) => {
                        me.do_send(Suspend(uri.clone()));
                        reasons.push(format!("{uri}: {e}"));
                        everyone_answered = false;
                    }
                    Err(TransportError::Refused(f)) => reasons.push(format!("{uri}: {}", f.message)),
                }
            }
            me.do_send(AiInfos(cap, model_id.clone(), heard.clone()));
            let mut offered = false;
            let mut candidates: Vec<AiCandidate> = known
                .into_iter()
                .chain(heard)
                .filter_map(|(uri, info)| {
                    let model = info.capabilities.as_ref()?.model(cap, &model_id)?.clone();
                    offered = true;
                    let listed =
                        info.capabilities_prices.iter().find(|p| p.capability == cap && p.constraint == model_id);
                    // No price listed is free; one that does not read is not used.
                    let price = match listed.map(price_from_wire) {
                        None => Price::ZERO,
                        Some(Ok(price)) => price,
                        Some(Err(e)) => {
                            reasons.push(format!("{uri}: unreadable price ({e})"));
                            return None;
                        }
                    };
                    if price.above(&max_price) {
                        reasons.push(format!("{uri}: priced at {price}, above the cap ({max_price})"));
                        return None;
                    }
                    let latency = latency.get(&(uri.clone(), pipeline, model_id.clone())).copied().unwrap_or_default();
                    let suspended = suspended.contains(&uri);
                    let transcoder = info.transcoder.clone();
                    Some(AiCandidate { transcoder, info, uri, suspended, warm: model.warm, latency, price })
                })
                .collect();
            // Unsuspended, warm, fast, cheap; the price as wei per unit (a float only orders).
            let per_unit = |p: &Price| p.per_unit as f64 / p.pixels_per_unit.max(1) as f64;
            candidates.sort_by(|a, b| {
                (a.suspended, !a.warm, a.latency)
                    .cmp(&(b.suspended, !b.warm, b.latency))
                    .then(per_unit(&a.price).total_cmp(&per_unit(&b.price)))
            });
            // A model nobody offers is not a label (clients name anything).
            let label = if candidates.is_empty() { "unknown".to_string() } else { model_id.clone() };
            for c in candidates.iter().take(MAX_AI_TRIES) {
                // On-chain, a priced model is paid up front.
                let mut payment = Payment::default();
                let mut staged = None;
                let payer = match c.price.is_zero() {
                    true => None,
                    false => {
                        let ask = AiPayer { uri: c.uri.clone(), cap, model: model_id.clone(), info: c.info.clone() };
                        me.send(ask).await.ok().flatten()
                    }
                };
                if let Some(payer) = &payer {
                    match payer.send(PayUnits(units)).await {
                        Ok(Ok((paid, credit))) => {
                            payment = paid;
                            staged = Some(credit);
                        }
                        Ok(Err(e)) => {
                            if matches!(e, super::ticket_sender::PayError::Refresh(_)) {
                                me.do_send(ForgetAiInfo(c.uri.clone(), cap, model_id.clone()));
                            }
                            metrics::ai_request_error(pipeline.name(), &label, "payment");
                            reasons.push(format!("{}: cannot pay: {e}", c.uri));
                            continue;
                        }
                        Err(_) => {
                            reasons.push(format!("{}: its ticket sender stopped", c.uri));
                            continue;
                        }
                    }
                }
                let settle = |served: bool| {
                    if let (Some(payer), Some(staged)) = (&payer, staged) {
                        payer.do_send(Settle { staged, pixels: if served { units } else { 0 } });
                    }
                };
                let started = Instant::now();
                let timeout = WORKER_JOB_TIMEOUT + INFO_TIMEOUT;
                let answer =
                    transport.infer(&c.transcoder, pipeline, &content_type, body.clone(), payment, timeout).await;
                settle(matches!(&answer, Ok(a) if a.status == 200));
                match answer {
                    Ok(answer) if answer.status == 200 => {
                        let took = started.elapsed();
                        me.do_send(AiLatency(c.uri.clone(), pipeline, model_id.clone(), took));
                        metrics::ai_request(pipeline.name(), &label, took.as_secs_f64());
                        return answer;
                    }
                    Ok(answer) if answer.status == 402 => {
                        // Our payment was refused (terms gone stale): new terms next time.
                        me.do_send(ForgetAiInfo(c.uri.clone(), cap, model_id.clone()));
                        metrics::ai_request_error(pipeline.name(), &label, "payment");
                        reasons.push(format!("{}: payment refused", c.uri));
                    }
                    Ok(answer) if answer.status == 503 => {
                        metrics::ai_request_error(pipeline.name(), &label, "insufficient_capacity");
                        reasons.push(format!("{}: insufficient capacity", c.uri));
                    }
                    Ok(answer) if answer.status < 500 => {
                        metrics::ai_request_error(pipeline.name(), &label, "bad_request");
                        return answer;
                    }
                    Ok(answer) => {
                        metrics::ai_request_error(pipeline.name(), &label, "orchestrator_error");
                        me.do_send(Suspend(c.uri.clone()));
                        reasons.push(format!("{}: HTTP {}", c.uri, answer.status));
                    }
                    Err(e) => {
                        metrics::ai_request_error(pipeline.name(), &label, "unreachable");
                        me.do_send(Suspend(c.uri.clone()));
                        reasons.push(format!("{}: {e}", c.uri));
                    }
                }
            }
            if !offered && everyone_answered && listed {
                // Every orchestrator answered and none has the model: the client named one
                // that does not exist here (go-livepeer's runner answers a wrong model 400).
                metrics::ai_request_error(pipeline.name(), &label, "bad_request");
                return AiAnswer::error(&ApiError::bad_request(format!(
                    "model {model_id:?} is not offered for {pipeline} by any orchestrator"
                )));
            }
            if candidates.is_empty() {
                metrics::ai_request_error(pipeline.name(), &label, "no_orchestrator");
                reasons.insert(0, format!("none offers {pipeline} model {model_id:?}"));
            }
            warn!(target: "lp::gateway", %pipeline, model = %model_id, reasons = %reasons.join("; "), "AI request not served");
            AiAnswer::error(&ApiError::unavailable(format!("no orchestrators available ({})", reasons.join("; "))))
        })
    }
}

impl Handler<AiPayer> for OrchestratorPool {
    type Result = Option<Addr<TicketSender>>;

    fn handle(&mut self, msg: AiPayer, _: &mut Self::Context) -> Self::Result {
        let settings = self.payments.clone()?;
        let key = (msg.uri, msg.cap, msg.model);
        if let Some(payer) = self.ai_payers.get(&key).filter(|p| p.connected()) {
            payer.do_send(NewTerms(msg.info));
            return Some(payer.clone());
        }
        let sender = TicketSender::for_model(settings.clone(), &msg.info, key.1, &key.2)?;
        let payer = settings.watchdog.start("ticket_sender", crate::supervision::Policy::Transient, sender);
        // Bounded by the listed orchestrators and the models they offer.
        self.ai_payers.retain(|(uri, _, _), p| p.connected() && self.uris.contains(uri));
        self.ai_payers.insert(key, payer.clone());
        Some(payer)
    }
}

impl Handler<ForgetAiInfo> for OrchestratorPool {
    type Result = ();

    fn handle(&mut self, ForgetAiInfo(uri, cap, model): ForgetAiInfo, _: &mut Self::Context) {
        self.ai_infos.remove(&(uri, cap, model));
    }
}

impl Handler<AiInfos> for OrchestratorPool {
    type Result = ();

    fn handle(&mut self, AiInfos(cap, model, infos): AiInfos, _: &mut Self::Context) {
        let now = Instant::now();
        // Bounded: only listed orchestrators, and only models some of them offers.
        self.ai_infos.retain(|(uri, _, _), _| self.uris.contains(uri));
        for (uri, info) in infos {
            if info.capabilities.as_ref().is_some_and(|c| c.model(cap, &model).is_some()) {
                self.ai_infos.insert((uri, cap, model.clone()), (now, info));
            }
        }
    }
}

impl Handler<AiLatency> for OrchestratorPool {
    type Result = ();

    fn handle(&mut self, AiLatency(uri, pipeline, model, took): AiLatency, _: &mut Self::Context) {
        // Bounded: kept only for listed orchestrators and models they offered.
        if self.uris.contains(&uri) {
            self.ai_latency.insert((uri, pipeline, model), took);
        }
    }
}

impl Handler<Suspend> for OrchestratorPool {
    type Result = ();

    fn handle(&mut self, Suspend(uri): Suspend, _: &mut Self::Context) {
        debug!(target: "lp::gateway", orchestrator = %uri, "orchestrator suspended");
        self.suspended.insert(uri, Instant::now() + SUSPENSION);
    }
}

impl Handler<SetOrchestrators> for OrchestratorPool {
    type Result = ();

    fn handle(&mut self, SetOrchestrators(uris): SetOrchestrators, _: &mut Self::Context) {
        self.uris = uris;
        self.ai_infos.retain(|(uri, _, _), _| self.uris.contains(uri));
        self.ai_latency.retain(|(uri, _, _), _| self.uris.contains(uri));
    }
}

impl Handler<ListOrchestrators> for OrchestratorPool {
    type Result = MessageResult<ListOrchestrators>;

    fn handle(&mut self, _: ListOrchestrators, _: &mut Self::Context) -> Self::Result {
        let priced_out = self
            .priced_out
            .iter()
            .map(|(uri, p)| PricedOut {
                uri: uri.clone(),
                price_per_unit: p.per_unit,
                pixels_per_unit: p.pixels_per_unit,
            })
            .collect();
        MessageResult(OrchestratorList { orchestrators: self.uris.clone(), priced_out })
    }
}
