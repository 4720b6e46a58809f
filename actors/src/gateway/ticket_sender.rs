//! `TicketSender`: the gateway's payments to one orchestrator session.
//!
//! - **Owns** the session's ticket parameters and price (replaced by the fresh terms of every
//!   answer), the next nonce of the current parameters, and the credit the gateway believes it
//!   has with the orchestrator (go-livepeer's `Balance`: tickets sent add their EV, segments done
//!   subtract pixels × price).
//! - **Pays** for a segment ([`CreatePayment`]): go-livepeer's ticket count (enough to bring the
//!   credit to max(fee estimate, EV), `reference/go-livepeer.md` §4.7), after checking the
//!   parameters against the gateway's limits (`max_ticket_ev`, `max_total_ev`,
//!   `deposit_multiplier`) and its own funds. The credit is reserved for the segment in flight
//!   and settled when it is done ([`Settle`]), so concurrent segments never count it twice.
//!   Parameters the gateway sees about to expire, or whose nonces would pass the receiver's cap,
//!   are not used: the answer is [`PayError::Refresh`] and the stream asks the orchestrator for
//!   new terms instead of failing the segment (go-livepeer #1575, #2236). A payment the
//!   orchestrator refuses anyway (its view of the chain ahead of ours) costs that attempt: the
//!   stream starts the session over, with new terms.
//! - **Price**: fixed by the session's first terms; a price that rises above twice that drops
//!   the session ([`PayError::PriceRose`]). A sender for AI requests ([`TicketSender::for_model`])
//!   pays one model's price (its `capabilities_prices` entry) for units of work
//!   ([`PayUnits`]: pixels, tokens), up front.
//! - **Mailbox**: bounded at [`MAILBOX`].
//! - **Restart policy**: supervised, transient (see `crate::supervision`), started by the
//!   stream's session for each orchestrator session it pays: restarted in place with its state.

use std::sync::Arc;

use actix::prelude::*;
use alloy::primitives::U256;
use alloy::signers::local::PrivateKeySigner;
use lp_chain::pm::recipient::MAX_SENDER_NONCES;
use lp_chain::pm::sender::{ParamsRejected, check_params, fee_estimate, sign_tickets, ticket_count};
use lp_chain::pm::{Price, SenderLimits, TicketParams};
use lp_wire::{OrchestratorInfo, Payment, TicketSenderParams};
use serde::Serialize;
use serde_bytes::ByteBuf;
use tracing::debug;

use crate::chain::{GetSender, SenderWatcher};
use crate::payment::{self, params_from_wire, params_to_wire, price_from_wire, price_to_wire};
use crate::supervision::inject_panic;

pub const MAILBOX: usize = 64;

/// How the gateway pays (on-chain).
#[derive(Clone)]
pub struct SenderSettings {
    pub signer: Arc<PrivateKeySigner>,
    pub limits: SenderLimits,
    pub chain: Addr<SenderWatcher>,
    /// Ticket senders run under it.
    pub watchdog: crate::supervision::Watchdog,
    /// What every ticket sender of the gateway sent, together.
    pub sent: Arc<SentTotals>,
}

/// Tickets the gateway sent and their expected value, for `/status`.
#[derive(Debug, Default)]
pub struct SentTotals(parking_lot::Mutex<Sent>);

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Sent {
    pub tickets: u64,
    pub ev_sent: U256,
}

impl SentTotals {
    pub fn get(&self) -> Sent {
        *self.0.lock()
    }

    fn add(&self, tickets: u32, ev: U256) {
        let mut sent = self.0.lock();
        sent.tickets += u64::from(tickets);
        sent.ev_sent += ev * U256::from(tickets);
    }
}

impl std::fmt::Debug for SenderSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SenderSettings")
            .field("address", &self.signer.address())
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

/// Why no payment was made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayError {
    /// Ask the orchestrator for new terms, then pay again.
    #[error("the ticket parameters need refreshing: {0}")]
    Refresh(String),
    #[error("the orchestrator's price rose from {initial} to {now}, more than twice: the session is dropped")]
    PriceRose { initial: Price, now: Price },
    #[error("{0}")]
    Rejected(ParamsRejected),
    #[error("{0}")]
    Unusable(String),
}

impl PayError {
    /// Every [`reason`](Self::reason), declared at zero when the node starts.
    pub const REASONS: [&'static str; 5] = ["Refresh", "PriceRose", "Unfunded", "ParamsRejected", "Unusable"];

    /// The `reason` label of `livepeer_payment_create_errors`.
    fn reason(&self) -> &'static str {
        match self {
            PayError::Refresh(_) => "Refresh",
            PayError::PriceRose { .. } => "PriceRose",
            PayError::Rejected(ParamsRejected::Unfunded(_)) => "Unfunded",
            PayError::Rejected(_) => "ParamsRejected",
            PayError::Unusable(_) => "Unusable",
        }
    }
}

/// Pay for a segment of `duration_ms` into `renditions` (width, height, fps), at the session's
/// price. Answers the payment and the credit staged for it (to [`Settle`] once the segment is
/// done).
#[derive(Message, Clone)]
#[rtype(result = "Result<(Payment, i128), PayError>")]
pub struct CreatePayment {
    pub renditions: Vec<(u32, u32, f64)>,
    pub duration_ms: u64,
}

/// Pay for `units` of AI work at the model's price, up front. Answers as [`CreatePayment`].
#[derive(Message, Clone)]
#[rtype(result = "Result<(Payment, i128), PayError>")]
pub struct PayUnits(pub u64);

/// A segment paid with `staged` credit is done; its renditions have `pixels` to pay for (zero if
/// it failed).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Settle {
    pub staged: i128,
    pub pixels: u64,
}

/// The orchestrator's fresh terms (from an answer or a new `GetOrchestrator`).
#[derive(Message)]
#[rtype(result = "()")]
pub struct NewTerms(pub OrchestratorInfo);

pub struct TicketSender {
    settings: SenderSettings,
    params: Option<TicketParams>,
    /// The AI capability and model whose price is paid, `None` for transcoding's.
    model: Option<(u32, String)>,
    price: Price,
    initial_price: Price,
    /// The last nonce used with `params` (go-livepeer: the first ticket has nonce 1).
    nonce: u32,
    credit: i128,
}

impl TicketSender {
    /// A sender for a session on `info`'s terms; `None` when they ask for no payment.
    pub fn new(settings: SenderSettings, info: &OrchestratorInfo) -> Option<Self> {
        Self::paying(settings, info, None)
    }

    /// A sender for AI requests of `model` of capability `cap` on `info`'s terms, at that
    /// model's price; `None` when it is free.
    pub fn for_model(settings: SenderSettings, info: &OrchestratorInfo, cap: u32, model: &str) -> Option<Self> {
        Self::paying(settings, info, Some((cap, model.to_string())))
    }

    fn paying(settings: SenderSettings, info: &OrchestratorInfo, model: Option<(u32, String)>) -> Option<Self> {
        let price = price_in(info, model.as_ref()).unwrap_or(Price::ZERO);
        let params = info.ticket_params.as_ref().and_then(|p| params_from_wire(p, None).ok())?;
        if price.is_zero() || params.is_free() {
            return None;
        }
        Some(TicketSender { settings, params: Some(params), model, price, initial_price: price, nonce: 0, credit: 0 })
    }

    /// Record what a payment made sent, or why none was made.
    fn count(&self, result: &Result<(Payment, i128), PayError>) {
        match result {
            Ok((p, _)) => {
                if let Some(params) = &self.params {
                    let count = p.ticket_sender_params.len() as u32;
                    payment::tickets_sent(count, params.ev());
                    self.settings.sent.add(count, params.ev());
                }
            }
            Err(e) => payment::payment_create_error(e.reason()),
        }
    }
}

/// The price `info` asks: for transcoding (`model` `None`), or for an AI capability's model.
fn price_in(info: &OrchestratorInfo, model: Option<&(u32, String)>) -> Option<Price> {
    let wire = match model {
        None => info.price_info.as_ref()?,
        Some((cap, id)) => info.capabilities_prices.iter().find(|p| p.capability == *cap && &p.constraint == id)?,
    };
    price_from_wire(wire).ok()
}

impl Actor for TicketSender {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(MAILBOX);
    }
}

impl Supervised for TicketSender {}

inject_panic!(TicketSender);

impl Handler<CreatePayment> for TicketSender {
    type Result = AtomicResponse<Self, Result<(Payment, i128), PayError>>;

    fn handle(&mut self, msg: CreatePayment, _: &mut Self::Context) -> Self::Result {
        self.pay_fee(move |price| fee_estimate(&msg.renditions, msg.duration_ms, price))
    }
}

impl Handler<PayUnits> for TicketSender {
    type Result = AtomicResponse<Self, Result<(Payment, i128), PayError>>;

    fn handle(&mut self, PayUnits(units): PayUnits, _: &mut Self::Context) -> Self::Result {
        self.pay_fee(move |price| price.cost(units))
    }
}

impl TicketSender {
    /// Pay `fee` (of the session's price), after reading the chain head and the gateway's own
    /// funds; the payment is made whole before the next message.
    fn pay_fee(
        &mut self,
        fee: impl FnOnce(Price) -> U256 + 'static,
    ) -> AtomicResponse<Self, Result<(Payment, i128), PayError>> {
        let chain = self.settings.chain.clone();
        let me = self.settings.signer.address();
        let read = async move {
            let view = crate::chain::chain_view(&chain).await;
            let own = chain.send(GetSender(me)).await;
            (view, own)
        };
        AtomicResponse::new(Box::pin(read.into_actor(self).map(move |(view, own), act, _| {
            let result = act.pay(fee(act.price), view.map(|v| v.block), own);
            act.count(&result);
            result
        })))
    }
}

type OwnFunds = Result<Result<crate::chain::SenderView, lp_chain::error::ChainError>, MailboxError>;

impl TicketSender {
    fn pay(&mut self, fee: U256, block: Option<u64>, own: OwnFunds) -> Result<(Payment, i128), PayError> {
        if self.price.more_than_double(&self.initial_price) {
            return Err(PayError::PriceRose { initial: self.initial_price, now: self.price });
        }
        let params = self.params.clone().ok_or_else(|| PayError::Refresh("no ticket parameters".into()))?;
        let block = block.ok_or_else(|| PayError::Unusable("the chain head is not known yet".into()))?;
        let own = match own {
            Ok(Ok(view)) => view.info,
            Ok(Err(e)) => return Err(PayError::Unusable(format!("reading the gateway's funds: {e}"))),
            Err(_) => return Err(PayError::Unusable("the sender watcher stopped".into())),
        };
        let ev = params.ev();
        // Take the whole credit for this segment; what is left comes back with Settle.
        let reserved = std::mem::take(&mut self.credit);
        let count = ticket_count(fee, reserved, ev);
        if self.nonce as usize + count as usize > MAX_SENDER_NONCES {
            self.credit = reserved;
            return Err(PayError::Refresh(format!("{MAX_SENDER_NONCES} tickets were sent on these parameters")));
        }
        match check_params(&params, block, count, &self.settings.limits, &own) {
            Ok(()) => {}
            Err(e @ ParamsRejected::Expired { .. }) => {
                self.credit = reserved;
                return Err(PayError::Refresh(e.to_string()));
            }
            Err(e) => {
                self.credit = reserved;
                return Err(PayError::Rejected(e));
            }
        }
        let signed = sign_tickets(&self.settings.signer, &params, self.nonce + 1, count).map_err(|e| {
            self.credit = reserved;
            PayError::Unusable(e.to_string())
        })?;
        self.nonce += count;
        let sent = i128::try_from(ev.saturating_mul(U256::from(count))).unwrap_or(i128::MAX);
        debug!(target: "lp::payments", tickets = count, ev = %ev, "payment made");
        let wire = params_to_wire(&params);
        let payment = Payment {
            expiration_params: wire.expiration_params.clone(),
            ticket_params: Some(wire),
            sender: ByteBuf::from(self.settings.signer.address().to_vec()),
            ticket_sender_params: signed
                .into_iter()
                .map(|(sender_nonce, sig)| TicketSenderParams { sender_nonce, sig: ByteBuf::from(sig.to_vec()) })
                .collect(),
            expected_price: Some(price_to_wire(self.price)),
        };
        Ok((payment, reserved.saturating_add(sent)))
    }
}

impl Handler<Settle> for TicketSender {
    type Result = ();

    fn handle(&mut self, Settle { staged, pixels }: Settle, _: &mut Self::Context) {
        let cost = i128::try_from(self.price.cost(pixels)).unwrap_or(i128::MAX);
        self.credit = self.credit.saturating_add(staged).saturating_sub(cost);
    }
}

impl Handler<NewTerms> for TicketSender {
    type Result = ();

    fn handle(&mut self, NewTerms(info): NewTerms, _: &mut Self::Context) {
        if let Some(price) = price_in(&info, self.model.as_ref()) {
            self.price = price;
        }
        if let Some(params) = info.ticket_params.as_ref().and_then(|p| params_from_wire(p, None).ok())
            && self.params.as_ref().is_none_or(|old| old.recipient_rand_hash != params.recipient_rand_hash)
        {
            self.params = Some(params);
            self.nonce = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lp_chain::pm::sender::Unfunded;

    /// Each reason no payment was made has its own `reason` label, declared at start.
    #[test]
    fn every_pay_error_has_its_own_declared_label() {
        let errors = [
            PayError::Refresh("expired".into()),
            PayError::PriceRose { initial: Price::ZERO, now: Price::ZERO },
            PayError::Rejected(ParamsRejected::Unfunded(Unfunded::NoDeposit)),
            PayError::Rejected(ParamsRejected::NoExpiration),
            PayError::Unusable("no head".into()),
        ];
        let reasons: Vec<&str> = errors.iter().map(PayError::reason).collect();
        assert_eq!(reasons, PayError::REASONS);
    }
}
