//! `Orchestrator`: the orchestrator role's root actor.
//!
//! - **Owns** the auth-token secret, the map of live [`AuthSession`]s and the session cap
//!   (`max_sessions`, a [`SessionCap`]: fixed, or "auto", following the remote transcoders
//!   the pool has); hands out [`OrchestratorInfo`], admits segments, and ends a session
//!   when its gateway says the stream is over ([`EndSession`]).
//! - **Checks** before any work: a valid, unexpired auth token, profiles the encoder can take
//!   (every field in range, 1 to 16 of them) and a segment hash (blake3) that matches the bytes. A check that fails is a [`Rejected`] error (HTTP 403 on the wire); work
//!   errors (busy, capped, transcoder failures) travel inside the [`TranscodeResult`].
//! - **Payments** (on-chain): a [`TicketReceiver`] per sender (started on its first request,
//!   under the watchdog, transient) issues the ticket parameters of every `OrchestratorInfo`
//!   (the gateway's signed request names the sender) and checks each segment's payment before
//!   any work; a refused payment is a [`Rejected`] `PaymentRefused` or `InsufficientBalance`
//!   (HTTP 400). A segment done debits its pixels from the session's balance. Offchain (no
//!   payment settings) no ticket is asked for and any payment is ignored.
//! - **AI** ([`SubmitAi`]): a request for a model it does not advertise is refused
//!   `InvalidInput` (HTTP 400); one it does goes to the [`AiPool`], which runs it now or answers
//!   "insufficient capacity". On-chain, a priced model is paid up front: the sender's payment is
//!   checked and credited to its balance for that model ([`ai_session`]), which must cover the
//!   request's units × the model's price (else `InsufficientBalance`), and the cost is debited
//!   once the request is done (go-livepeer's order).
//! - **Mailbox**: bounded at [`MAILBOX`].
//! - **Restart policy**: supervised, permanent (see `crate::supervision`): restarted in place
//!   after a panic, keeping its token key (tokens it issued stay valid) and its sessions, which
//!   run under the same watchdog, transient.

use std::collections::HashMap;

use alloy::primitives::Address;
use lp_chain::pm::Price;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use bytes::Bytes;
use lp_pipelines::Profile;
use serde::Serialize;
use tracing::{debug, info};

use super::auth::AuthTokens;
use super::auth_session::{AuthSession, EndWhenIdle, SessionEnded, SessionSegment};
use super::inference::{AiJob, AiPool};
use super::job::TranscodeJob;
use super::session_cap::SessionCap;
use super::ticket_receiver::{
    Debit, ForgetSession, IssueParams, PaymentRefused, PaymentSettings, ReceivePayment, TicketReceiver,
};
use super::worker_pool::{Submit, TranscoderPool};
use crate::metrics;
use crate::payment::{self, params_to_wire, price_to_wire};
use crate::supervision::{Policy, Watchdog, inject_panic};
use lp_wire::{
    Capabilities, ErrorCode, MAX_PATIENCE, OrchestratorInfo, OrchestratorRequest, Payment, PriceInfo, SegData,
    TranscodeFailure, TranscodeOutcome, TranscodeResult, segment_timeout,
};

const MAILBOX: usize = 1024;
/// Ticket senders (gateway accounts) served at once.
pub const MAX_SENDERS: usize = 1024;
/// go-livepeer's `maxSegmentChannels`: segments one session may have in flight.
pub const SESSION_MAX_IN_FLIGHT: usize = 4;

/// What the orchestrator role needs to know.
#[derive(Debug, Clone)]
pub struct OrchestratorSettings {
    /// The URI gateways send segments to.
    pub service_uri: String,
    /// `max_sessions`, shared with the transcoder pool (see [`SessionCap`]).
    pub max_sessions: SessionCap,
    pub session_idle_timeout: Duration,
    pub price_per_unit: i64,
    pub pixels_per_unit: i64,
    /// What this orchestrator offers gateways ([`Capabilities::transcoding`] for a transcoding
    /// orchestrator).
    pub capabilities: Capabilities,
    /// On-chain: how tickets are issued and checked. `None` offchain.
    pub payments: Option<PaymentSettings>,
    /// Per-capability prices (AI models), advertised as `capabilities_prices`.
    pub capability_prices: Vec<PriceInfo>,
    /// How long an auth token is valid: go-livepeer's 30 minutes
    /// ([`AUTH_TOKEN_VALIDITY`](super::auth::AUTH_TOKEN_VALIDITY));
    /// shorter only in tests, to see tokens expire.
    pub auth_token_validity: Duration,
}

impl OrchestratorSettings {
    /// A free, offchain transcoding orchestrator at `service_uri` with go-livepeer's defaults
    /// otherwise (sessions idle out after 70 s, tokens are valid for 30 minutes).
    pub fn offchain(service_uri: impl Into<String>, max_sessions: u32) -> Self {
        OrchestratorSettings {
            service_uri: service_uri.into(),
            max_sessions: SessionCap::fixed(max_sessions),
            session_idle_timeout: Duration::from_secs(70),
            price_per_unit: 0,
            pixels_per_unit: 1,
            capabilities: Capabilities::transcoding(),
            payments: None,
            capability_prices: Vec::new(),
            auth_token_validity: super::auth::AUTH_TOKEN_VALIDITY,
        }
    }

    pub fn price(&self) -> Price {
        Price {
            per_unit: u64::try_from(self.price_per_unit).unwrap_or(0),
            pixels_per_unit: u64::try_from(self.pixels_per_unit).unwrap_or(1).max(1),
        }
    }
}

pub struct Orchestrator {
    settings: OrchestratorSettings,
    tokens: AuthTokens,
    sessions: HashMap<String, Addr<AuthSession>>,
    pool: Addr<TranscoderPool>,
    /// The AI workers, when this orchestrator serves AI models.
    ai: Option<Addr<AiPool>>,
    watchdog: Watchdog,
    receivers: HashMap<Address, Addr<TicketReceiver>>,
    /// The sender paying for each session (on-chain), to forget its balance when it ends.
    payers: HashMap<String, Address>,
}

impl Orchestrator {
    pub fn new(settings: OrchestratorSettings, pool: Addr<TranscoderPool>) -> Self {
        Orchestrator {
            tokens: AuthTokens::with_validity(settings.auth_token_validity),
            settings,
            sessions: HashMap::new(),
            pool,
            ai: None,
            watchdog: Watchdog::new(),
            receivers: HashMap::new(),
            payers: HashMap::new(),
        }
    }

    /// Serve AI requests on `pool`'s workers (the models are those `capabilities` advertises).
    pub fn with_ai(mut self, pool: Addr<AiPool>) -> Self {
        self.ai = Some(pool);
        self
    }

    /// Supervise the sessions under the node's watchdog (by default, one of their own).
    pub fn supervised_by(mut self, watchdog: &Watchdog) -> Self {
        self.watchdog = watchdog.clone();
        self
    }

    fn capped(&self) -> bool {
        self.sessions.len() >= self.settings.max_sessions.get() as usize
    }

    fn capped_failure(&self) -> TranscodeFailure {
        TranscodeFailure {
            code: ErrorCode::OrchestratorCapped,
            message: format!("orchestrator is at its max_sessions ({})", self.settings.max_sessions.describe()),
        }
    }

    fn info(&self, auth_token: Option<lp_wire::AuthToken>) -> OrchestratorInfo {
        OrchestratorInfo {
            transcoder: self.settings.service_uri.clone(),
            price_info: Some(PriceInfo {
                price_per_unit: self.settings.price_per_unit,
                pixels_per_unit: self.settings.pixels_per_unit,
                ..Default::default()
            }),
            capabilities: Some(self.settings.capabilities.clone()),
            auth_token,
            capabilities_prices: self.settings.capability_prices.clone(),
            ..Default::default()
        }
    }

    /// The ticket receiver of `sender`, started on first use; `None` past [`MAX_SENDERS`] (each
    /// costs memory and chain reads, and anyone can make a key).
    fn receiver(&mut self, sender: Address, payments: &PaymentSettings) -> Option<Addr<TicketReceiver>> {
        if let Some(addr) = self.receivers.get(&sender).filter(|a| a.connected()) {
            return Some(addr.clone());
        }
        self.receivers.retain(|_, a| a.connected());
        if self.receivers.len() >= MAX_SENDERS {
            return None;
        }
        let receiver = TicketReceiver::new(sender, payments.clone());
        let addr = self.watchdog.start("ticket_receiver", Policy::Transient, receiver);
        self.receivers.insert(sender, addr.clone());
        Some(addr)
    }

    fn publish(&self) {
        metrics::sessions(self.sessions.len(), self.settings.max_sessions.get());
    }

    /// The price of `model` of AI capability `cap`, if this orchestrator lists one.
    fn model_price(&self, cap: u32, model: &str) -> Option<Price> {
        let listed = self.settings.capability_prices.iter().find(|p| p.capability == cap && p.constraint == model)?;
        payment::price_from_wire(listed).ok()
    }
}

impl Actor for Orchestrator {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(MAILBOX);
        self.publish();
    }
}

impl Supervised for Orchestrator {}

inject_panic!(Orchestrator);

// Messages

/// A gateway asks for terms (go-livepeer `GetOrchestrator`).
#[derive(Message)]
#[rtype(result = "Result<OrchestratorInfo, TranscodeFailure>")]
pub struct GetOrchestratorInfo(pub OrchestratorRequest);

/// A gateway submits a segment.
#[derive(Message)]
#[rtype(result = "Result<TranscodeResult, Rejected>")]
pub struct SubmitSegment {
    pub seg: SegData,
    /// The `Livepeer-Payment` header. Offchain, no payment is asked for and any is accepted;
    /// checking tickets is the ticket receiver's job (payments build on this).
    pub payment: Payment,
    pub data: Bytes,
}

/// A segment refused before any work: the credentials or the hash do not check out.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct Rejected(pub TranscodeFailure);

/// A gateway's AI request (go-livepeer's `POST /<pipeline>` on the orchestrator), with the
/// payment for its `units` (input pixels, or llm's `max_tokens`).
#[derive(Message)]
#[rtype(result = "Result<lp_wire::ai::AiResponse, Rejected>")]
pub struct SubmitAi {
    pub job: AiJob,
    pub payment: Payment,
    pub units: u64,
}

/// The balance AI requests of one sender for one model are paid from (go-livepeer's manifest id
/// `<capability>_<model_id>`).
pub fn ai_session(pipeline: lp_wire::ai::Pipeline, model_id: &str) -> String {
    format!("{}_{model_id}", pipeline.capability())
}

/// The gateway is done with a session (its stream ended): free its slot once its segments in
/// flight are done. Refused like a segment when the token does not check out.
#[derive(Message)]
#[rtype(result = "Result<(), Rejected>")]
pub struct EndSession(pub lp_wire::AuthToken);

/// A snapshot for `/status`.
#[derive(Message)]
#[rtype(result = "OrchestratorStatus")]
pub struct GetOrchestratorStatus;

/// The ticket receivers (one per sender), for `/status`.
#[derive(Message)]
#[rtype(result = "Vec<Addr<TicketReceiver>>")]
pub struct GetReceivers;

impl Handler<GetReceivers> for Orchestrator {
    type Result = MessageResult<GetReceivers>;

    fn handle(&mut self, _: GetReceivers, _: &mut Self::Context) -> Self::Result {
        MessageResult(self.receivers.values().filter(|a| a.connected()).cloned().collect())
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct OrchestratorStatus {
    pub service_uri: String,
    pub current_sessions: usize,
    /// The cap now (with `auto`, it follows the remote transcoders).
    pub max_sessions: u32,
    pub max_sessions_auto: bool,
}

impl Handler<GetOrchestratorInfo> for Orchestrator {
    /// A future, so that terms can come from another actor (a ticket receiver's parameters).
    type Result = ResponseFuture<Result<OrchestratorInfo, TranscodeFailure>>;

    fn handle(&mut self, GetOrchestratorInfo(req): GetOrchestratorInfo, _: &mut Self::Context) -> Self::Result {
        let answer = if req.capabilities.as_ref().is_some_and(|caps| !caps.compatible_with(&self.settings.capabilities))
        {
            Err(TranscodeFailure {
                code: ErrorCode::InvalidInput,
                message: "the requested capabilities are not offered".into(),
            })
        } else if self.capped() && !req.ignore_capacity_check {
            Err(self.capped_failure())
        } else {
            Ok(self.info(Some(self.tokens.issue())))
        };
        // A gateway asking for an AI model gets that model's price, and parameters for it.
        let model_price = req.capabilities.as_ref().and_then(|c| {
            c.constraints.iter().find_map(|(cap, models)| models.keys().find_map(|m| self.model_price(*cap, m)))
        });
        let price = model_price.unwrap_or_else(|| self.settings.price());
        let receiver = match (&self.settings.payments.clone(), answer.is_ok() && !req.address.is_empty()) {
            (Some(payments), true) if !price.is_zero() => {
                let receiver = payment::verify_request(&req.address, &req.sig)
                    .map_err(|e| e.to_string())
                    .and_then(|sender| self.receiver(sender, payments).ok_or_else(too_many_senders));
                match receiver {
                    Ok(receiver) => Some(receiver),
                    Err(message) => {
                        return Box::pin(
                            async move { Err(TranscodeFailure { code: ErrorCode::InvalidInput, message }) },
                        );
                    }
                }
            }
            _ => None,
        };
        Box::pin(async move {
            let mut info = answer?;
            if model_price.is_some() {
                info.price_info = Some(price_to_wire(price));
            }
            if let Some(receiver) = receiver {
                let (params, price) = issue(&receiver, None, price).await?;
                info.ticket_params = Some(params_to_wire(&params));
                info.price_info = Some(price_to_wire(price));
            }
            Ok(info)
        })
    }
}

impl Handler<SubmitAi> for Orchestrator {
    type Result = ResponseFuture<Result<lp_wire::ai::AiResponse, Rejected>>;

    fn handle(&mut self, msg: SubmitAi, _: &mut Self::Context) -> Self::Result {
        let SubmitAi { job, payment, units } = msg;
        let (pipeline, model) = (job.request.pipeline(), job.request.model_id().to_string());
        let refused = |code, message: String| -> Self::Result {
            Box::pin(async move { Err(Rejected(TranscodeFailure { code, message })) })
        };
        let Some(pool) = self.ai.clone() else {
            return refused(ErrorCode::NoTranscoders, "this orchestrator serves no AI models".into());
        };
        let cap = pipeline.capability();
        if self.settings.capabilities.model(cap, &model).is_none() {
            return refused(ErrorCode::InvalidInput, format!("model {model:?} is not served here for {pipeline}"));
        }
        let price = self.model_price(cap, &model).unwrap_or(Price::ZERO);
        // On-chain, a priced model is paid up front: the payment is checked and credited, the
        // balance must cover the request, and what it cost is debited once it is done.
        let receiver = match (&self.settings.payments, price.is_zero()) {
            (Some(payments), false) => {
                let payments = payments.clone();
                if payment.sender.is_empty() {
                    let message = format!("no payment: {pipeline} model {model:?} costs {price}");
                    return refused(ErrorCode::InsufficientBalance, message);
                }
                let sender = match payment::address("sender", &payment.sender) {
                    Ok(sender) => sender,
                    Err(e) => return refused(ErrorCode::PaymentRefused, e.to_string()),
                };
                match self.receiver(sender, &payments) {
                    Some(r) => Some(r),
                    None => return refused(ErrorCode::PaymentRefused, too_many_senders()),
                }
            }
            _ => None,
        };
        let session = ai_session(pipeline, &model);
        Box::pin(async move {
            if let Some(receiver) = &receiver {
                let credited = receiver
                    .send(ReceivePayment { session: session.clone(), payment, price })
                    .await
                    .map_err(|_| Rejected(stopped_receiver()))?
                    .map_err(|e| refused_payment(&e))?;
                let cost = i128::try_from(price.cost(units)).unwrap_or(i128::MAX);
                if credited.balance < cost {
                    return Err(Rejected(TranscodeFailure {
                        code: ErrorCode::InsufficientBalance,
                        message: format!(
                            "the balance ({} wei) does not cover the request ({cost} wei)",
                            credited.balance
                        ),
                    }));
                }
            }
            let answer = pool
                .send(Submit(job))
                .await
                .map_err(|_| {
                    Rejected(TranscodeFailure {
                        code: ErrorCode::TranscoderFailed,
                        message: "the AI pool stopped".into(),
                    })
                })?
                .map_err(Rejected)?;
            if let Some(receiver) = receiver {
                receiver.do_send(Debit { session, pixels: units });
            }
            Ok(answer)
        })
    }
}

impl Handler<SubmitSegment> for Orchestrator {
    type Result = ResponseFuture<Result<TranscodeResult, Rejected>>;

    fn handle(&mut self, msg: SubmitSegment, ctx: &mut Self::Context) -> Self::Result {
        let seg = msg.seg;
        let reject = |code, message: String| -> Self::Result {
            Box::pin(async move { Err(Rejected(TranscodeFailure { code, message })) })
        };
        let Some(token) = seg.auth_token.clone() else {
            return reject(ErrorCode::AuthFailed, "missing auth token".into());
        };
        if let Err(why) = self.tokens.verify(&token) {
            return reject(ErrorCode::AuthFailed, why.to_string());
        }
        let profiles: Vec<Profile> = seg.profiles.iter().map(Profile::from).collect();
        if let Err(e) = lp_pipelines::validate_profiles(&profiles) {
            return reject(ErrorCode::InvalidInput, e.to_string());
        }
        if blake3::hash(&msg.data).as_bytes().as_slice() != seg.hash.as_slice() {
            return reject(ErrorCode::HashMismatch, "segment bytes do not match the signed hash".into());
        }
        let price = self.settings.price();
        let receiver = match self.settings.payments.clone() {
            Some(payments) if !msg.payment.sender.is_empty() => match payment::address("sender", &msg.payment.sender) {
                Ok(sender) => match self.receiver(sender, &payments) {
                    Some(receiver) => {
                        self.payers.insert(token.session_id.clone(), sender);
                        Some(receiver)
                    }
                    None => return reject(ErrorCode::PaymentRefused, too_many_senders()),
                },
                Err(e) => return reject(ErrorCode::PaymentRefused, e.to_string()),
            },
            Some(_) if !price.is_zero() => {
                return reject(
                    ErrorCode::InsufficientBalance,
                    format!("no payment: this orchestrator charges {price}; the segment names no sender"),
                );
            }
            _ => None,
        };
        let base_info = self.info(Some(token.clone()));
        let seq = seg.seq;

        // A session is a slot under max_sessions: one started by a segment that is not even a
        // segment ends with it, so that garbage with valid tokens cannot hold every slot.
        let mut started = false;
        let session = match self.sessions.get(&token.session_id) {
            Some(addr) if addr.connected() => addr.clone(),
            _ => {
                started = true;
                if self.capped() {
                    let result = TranscodeOutcome::Error(self.capped_failure());
                    return Box::pin(async move { Ok(TranscodeResult { seq, result, info: Some(base_info) }) });
                }
                let session = AuthSession::new(
                    token.session_id.clone(),
                    self.pool.clone(),
                    ctx.address().recipient(),
                    SESSION_MAX_IN_FLIGHT,
                    self.settings.session_idle_timeout,
                );
                let addr = self.watchdog.start("auth_session", Policy::Transient, session);
                info!(target: "lp::orchestrator", session = %token.session_id, "session started");
                self.sessions.insert(token.session_id.clone(), addr.clone());
                self.publish();
                addr
            }
        };
        let patience = match seg.timeout_ms {
            0 => segment_timeout(u64::try_from(seg.duration).unwrap_or(0)),
            ms => Duration::from_millis(ms),
        };
        let job = TranscodeJob {
            seq,
            format: seg.format.into(),
            profiles: Arc::new(profiles),
            data: msg.data,
            deadline: Instant::now() + patience.min(MAX_PATIENCE),
        };
        let (session_id, payment) = (token.session_id.clone(), msg.payment);
        Box::pin(async move {
            if let Some(receiver) = &receiver {
                let paid = receiver.send(ReceivePayment { session: session_id.clone(), payment, price }).await;
                match paid {
                    Ok(Ok(_)) => {}
                    Ok(Err(refused)) => return Err(refused_payment(&refused)),
                    Err(_) => return Err(Rejected(stopped_receiver())),
                }
            }
            let outcome = match session.send(SessionSegment(job)).await {
                Ok(Ok(data)) => TranscodeOutcome::Data(data),
                Ok(Err(failure)) => TranscodeOutcome::Error(failure),
                Err(_) => TranscodeOutcome::Error(TranscodeFailure {
                    code: ErrorCode::OrchestratorBusy,
                    message: "session is shutting down".into(),
                }),
            };
            if started && matches!(&outcome, TranscodeOutcome::Error(f) if f.code == ErrorCode::InvalidInput) {
                session.do_send(EndWhenIdle);
            }
            let mut info = base_info;
            if let Some(receiver) = &receiver {
                if let TranscodeOutcome::Data(data) = &outcome {
                    let pixels = data.segments.iter().map(|s| u64::try_from(s.pixels).unwrap_or(0)).sum();
                    receiver.do_send(Debit { session: session_id.clone(), pixels });
                }
                // Fresh parameters for the next payment; without them the gateway asks again.
                if let Ok((params, price)) = issue(receiver, Some(session_id), price).await {
                    info.ticket_params = Some(params_to_wire(&params));
                    info.price_info = Some(price_to_wire(price));
                }
            }
            Ok(TranscodeResult { seq, result: outcome, info: Some(info) })
        })
    }
}

/// Ticket parameters from `receiver`, or why there are none.
async fn issue(
    receiver: &Addr<TicketReceiver>,
    session: Option<String>,
    price: Price,
) -> Result<(lp_chain::pm::TicketParams, Price), TranscodeFailure> {
    match receiver.send(IssueParams { session, price }).await {
        Ok(Ok(issued)) => Ok(issued),
        Ok(Err(refused)) => Err(refused_payment(&refused).0),
        Err(_) => Err(stopped_receiver()),
    }
}

fn refused_payment(refused: &PaymentRefused) -> Rejected {
    let code = match refused {
        PaymentRefused::InsufficientBalance { .. } => ErrorCode::InsufficientBalance,
        _ => ErrorCode::PaymentRefused,
    };
    Rejected(TranscodeFailure { code, message: refused.to_string() })
}

fn too_many_senders() -> String {
    format!("this orchestrator serves at most {MAX_SENDERS} ticket senders at once")
}

fn stopped_receiver() -> TranscodeFailure {
    TranscodeFailure { code: ErrorCode::PaymentRefused, message: "the ticket receiver stopped".into() }
}

impl Handler<EndSession> for Orchestrator {
    type Result = Result<(), Rejected>;

    fn handle(&mut self, EndSession(token): EndSession, _: &mut Self::Context) -> Self::Result {
        self.tokens
            .verify(&token)
            .map_err(|why| Rejected(TranscodeFailure { code: ErrorCode::AuthFailed, message: why.to_string() }))?;
        if let Some(session) = self.sessions.get(&token.session_id) {
            debug!(target: "lp::orchestrator", session = %token.session_id, "gateway ended the session");
            session.do_send(EndWhenIdle);
        }
        Ok(())
    }
}

impl Handler<SessionEnded> for Orchestrator {
    type Result = ();

    fn handle(&mut self, msg: SessionEnded, _: &mut Self::Context) {
        // Only forget the session that ended, not a newer one under the same id.
        if self.sessions.get(&msg.id) == Some(&msg.addr) {
            self.sessions.remove(&msg.id);
            if let Some(receiver) = self.payers.remove(&msg.id).and_then(|sender| self.receivers.get(&sender)) {
                receiver.do_send(ForgetSession(msg.id.clone()));
            }
        }
        debug!(target: "lp::orchestrator", session = %msg.id, "session ended");
        self.publish();
    }
}

impl Handler<GetOrchestratorStatus> for Orchestrator {
    type Result = MessageResult<GetOrchestratorStatus>;

    fn handle(&mut self, _: GetOrchestratorStatus, _: &mut Self::Context) -> Self::Result {
        MessageResult(OrchestratorStatus {
            service_uri: self.settings.service_uri.clone(),
            current_sessions: self.sessions.len(),
            max_sessions: self.settings.max_sessions.get(),
            max_sessions_auto: self.settings.max_sessions.is_auto(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[actix::test]
    async fn the_mailbox_holds_its_bound() {
        let orch = Orchestrator::new(OrchestratorSettings::offchain("o", 1), TranscoderPool::new(8).start()).start();
        orch.send(GetOrchestratorStatus).await.unwrap();
        crate::testing::assert_mailbox_bound(&orch, MAILBOX, || GetOrchestratorStatus);
    }
}
