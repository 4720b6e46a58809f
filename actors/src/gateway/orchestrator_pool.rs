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

use super::transport::{OrchestratorTransport, TransportError};
use crate::payment::price_from_wire;
use crate::supervision::inject_panic;
use lp_chain::pm::Price;
use lp_wire::{Capabilities, ErrorCode, OrchestratorInfo, OrchestratorRequest, TranscodeFailure};
use serde::Serialize;
use serde_bytes::ByteBuf;

const MAILBOX: usize = 1024;
/// How long an orchestrator that failed is tried only after every other one.
pub const SUSPENSION: Duration = Duration::from_secs(30);

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
        }
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
