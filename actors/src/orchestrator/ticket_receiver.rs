//! `TicketReceiver`: one ticket sender (a gateway's account) as this orchestrator sees it.
//!
//! - **Owns** the nonces seen per set of parameters ([`NonceBook`], forgotten once they expire,
//!   so memory is bounded by the parameters alive) and a balance per (sender, session): a
//!   valid ticket credits its expected value, a finished segment debits pixels × the session's
//!   price. The price is fixed at the session's first payment. Balances per session, not per
//!   sender: one stream of a gateway never spends another's credit (go-livepeer #3612, #4077).
//! - **Issues** ticket parameters ([`IssueParams`]): go-livepeer's face value and win
//!   probability from the chain view and the sender's max float (`reference/go-livepeer.md`
//!   §4.4), with a fresh seed; `recipientRand` is derived from the persisted secret.
//! - **Checks** a payment ([`ReceivePayment`]) in go-livepeer's order (§4.6): a sender when
//!   there are tickets; this orchestrator active in the current round; the sender not unlocking; then per ticket recipient, sender,
//!   recipientRand, signature, replay, expiry, each refusal with its own [`PaymentRefused`]
//!   code. The first refused ticket stops the credit of it and of every later one. A winning
//!   ticket is committed to the store **before** the payment is answered, so no segment is
//!   worked for a winner that a crash could lose. A session whose balance is below one ticket's
//!   EV after the payment is refused before any work.
//! - **Mailbox**: bounded at [`MAILBOX`]; a payment is handled whole before the next message
//!   (its nonce checks and credit are atomic).
//! - **Restart policy**: supervised, transient (see `crate::supervision`), started by the
//!   [`Orchestrator`](super::Orchestrator) on a sender's first request: restarted in place with its
//!   nonces and balances. One that keeps panicking ends; the sender's next request starts a new
//!   one (with empty balances: its sessions pay again).

use std::collections::HashMap;
use std::sync::Arc;

use actix::prelude::*;
use alloy::primitives::{Address, B256, U256};
use lp_chain::pm::params::Terms;
use lp_chain::pm::{NonceBook, Price, Recipient, TicketError, TicketParams, WinningTicket};
use lp_wire::Payment;
use serde::Serialize;
use tracing::{debug, info, warn};

use crate::chain::{ChainView, GetSender, SenderWatcher};
use crate::payment::{self, Malformed, params_from_wire, price_from_wire};
use crate::store::{QueueWinningTicket, Store};
use crate::supervision::inject_panic;

const MAILBOX: usize = 256;

/// What every ticket receiver of this orchestrator shares.
#[derive(Clone)]
pub struct PaymentSettings {
    pub recipient: Arc<Recipient>,
    /// The expected value of one ticket (`ticket_ev`).
    pub ev: U256,
    /// `max_face_value`; zero: none.
    pub max_face_value: U256,
    /// Gas one redemption is expected to cost until the redeemer has estimated a real one.
    pub redeem_gas: u64,
    pub store: Store,
    pub chain: Addr<SenderWatcher>,
}

impl std::fmt::Debug for PaymentSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PaymentSettings")
            .field("recipient", &self.recipient.address())
            .field("ev", &self.ev)
            .field("max_face_value", &self.max_face_value)
            .field("redeem_gas", &self.redeem_gas)
            .finish_non_exhaustive()
    }
}

/// Why a payment (or a request for parameters) is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PaymentRefused {
    #[error(transparent)]
    Malformed(#[from] Malformed),
    #[error("the payment has tickets but no sender")]
    NoSender,
    #[error("the payment has tickets but no expected price")]
    NoPrice,
    #[error("the session's price is fixed at {fixed}; the payment expects {expected}")]
    PriceChanged { fixed: Price, expected: Price },
    #[error("this orchestrator is not active in the current round: its tickets could not be redeemed")]
    RecipientInactive,
    #[error("the sender's deposit and reserve unlock at round {0}: its tickets would be worthless")]
    SenderUnlocking(u64),
    #[error(transparent)]
    Ticket(#[from] TicketError),
    #[error("insufficient balance: the session has {balance} wei, one ticket is worth {ev} wei")]
    InsufficientBalance { balance: i128, ev: U256 },
    #[error("insufficient sender reserve: {0}")]
    Params(#[from] lp_chain::pm::params::ParamsError),
    #[error("the chain view is not known yet (no block or round read)")]
    NoChainView,
    #[error("reading the sender's funds failed: {0}")]
    Chain(String),
    #[error("the winning ticket could not be stored, so the payment is refused: {0}")]
    Store(String),
}

impl PaymentRefused {
    /// The `error_code` label of `livepeer_payment_recv_errors`.
    pub fn code(&self) -> &'static str {
        match self {
            PaymentRefused::Malformed(_) => "Malformed",
            PaymentRefused::NoSender => "NoSender",
            PaymentRefused::NoPrice => "NoPrice",
            PaymentRefused::PriceChanged { .. } => "PriceChanged",
            PaymentRefused::RecipientInactive => "RecipientInactive",
            PaymentRefused::SenderUnlocking(_) => "SenderUnlocking",
            PaymentRefused::Ticket(e) => e.code(),
            PaymentRefused::InsufficientBalance { .. } => "InsufficientBalance",
            PaymentRefused::Params(_) => "InsufficientSenderReserve",
            PaymentRefused::NoChainView => "NoChainView",
            PaymentRefused::Chain(_) => "Chain",
            PaymentRefused::Store(_) => "Store",
        }
    }
}

/// Parameters for this sender, at the session's fixed price if it has one, else `price`.
#[derive(Message)]
#[rtype(result = "Result<(TicketParams, Price), PaymentRefused>")]
pub struct IssueParams {
    pub session: Option<String>,
    pub price: Price,
}

/// Check and credit a payment for a segment of `session`; answers the session's balance and
/// price. `price` is the orchestrator's price for a session that has none fixed yet.
#[derive(Message)]
#[rtype(result = "Result<Credited, PaymentRefused>")]
pub struct ReceivePayment {
    pub session: String,
    pub payment: Payment,
    pub price: Price,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credited {
    pub tickets: usize,
    pub winning: usize,
    pub balance: i128,
    pub price: Price,
}

/// A segment of `session` was done: debit what its renditions cost.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Debit {
    pub session: String,
    pub pixels: u64,
}

/// The session ended: forget its balance.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ForgetSession(pub String);

/// A snapshot for `/status`.
#[derive(Message)]
#[rtype(result = "ReceiverStatus")]
pub struct GetReceiverStatus;

#[derive(Debug, Clone, Serialize)]
pub struct ReceiverStatus {
    pub sender: Address,
    /// Valid tickets received, and their expected value (wei).
    pub tickets: u64,
    pub ev_received: U256,
    pub winning_tickets: u64,
    pub sessions: Vec<SessionBalance>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SessionBalance {
    pub session: String,
    /// Wei: credited EV less what the session's segments cost.
    pub balance: i128,
    pub price_per_unit: u64,
    pub pixels_per_unit: u64,
}

struct Session {
    balance: i128,
    price: Price,
}

pub struct TicketReceiver {
    sender: Address,
    settings: PaymentSettings,
    nonces: NonceBook,
    sessions: HashMap<String, Session>,
    tickets: u64,
    winning: u64,
}

impl TicketReceiver {
    pub fn new(sender: Address, settings: PaymentSettings) -> Self {
        TicketReceiver {
            sender,
            settings,
            nonces: NonceBook::default(),
            sessions: HashMap::new(),
            tickets: 0,
            winning: 0,
        }
    }

    fn ev_i128(&self) -> i128 {
        i128::try_from(self.settings.ev).unwrap_or(i128::MAX)
    }
}

impl Actor for TicketReceiver {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(MAILBOX);
        debug!(target: "lp::payments", sender = %self.sender, "ticket receiver started");
    }
}

impl Supervised for TicketReceiver {}

inject_panic!(TicketReceiver);

async fn chain_view(chain: &Addr<SenderWatcher>) -> Result<ChainView, PaymentRefused> {
    crate::chain::chain_view(chain).await.ok_or(PaymentRefused::NoChainView)
}

impl Handler<IssueParams> for TicketReceiver {
    type Result = ResponseActFuture<Self, Result<(TicketParams, Price), PaymentRefused>>;

    fn handle(&mut self, msg: IssueParams, _: &mut Self::Context) -> Self::Result {
        let price = msg.session.as_ref().and_then(|s| self.sessions.get(s)).map_or(msg.price, |s| s.price);
        let (settings, sender) = (self.settings.clone(), self.sender);
        Box::pin(
            async move {
                let view = chain_view(&settings.chain).await?;
                if !view.recipient_active && !price.is_zero() {
                    return Err(PaymentRefused::RecipientInactive);
                }
                let funds = settings
                    .chain
                    .send(GetSender(sender))
                    .await
                    .map_err(|e| PaymentRefused::Chain(e.to_string()))?
                    .map_err(|e| PaymentRefused::Chain(e.to_string()))?;
                let terms = Terms {
                    ev: settings.ev,
                    gas_price: U256::from(view.gas_price),
                    redeem_gas: view.redeem_gas.unwrap_or(settings.redeem_gas),
                    max_float: funds.max_float,
                    max_face_value: settings.max_face_value,
                    block: view.block,
                    round: view.ticket_round,
                    round_block_hash: view.round_block_hash,
                };
                let seed = B256::from(rand::random::<[u8; 32]>());
                Ok((settings.recipient.issue(sender, &terms, price, seed)?, price))
            }
            .into_actor(self),
        )
    }
}

impl Handler<ReceivePayment> for TicketReceiver {
    type Result = AtomicResponse<Self, Result<Credited, PaymentRefused>>;

    fn handle(&mut self, msg: ReceivePayment, _: &mut Self::Context) -> Self::Result {
        let settings = self.settings.clone();
        let sender = self.sender;
        let work = async move {
            let view = chain_view(&settings.chain).await?;
            let funds = settings
                .chain
                .send(GetSender(sender))
                .await
                .map_err(|e| PaymentRefused::Chain(e.to_string()))?
                .map_err(|e| PaymentRefused::Chain(e.to_string()))?;
            Ok::<_, PaymentRefused>((view, funds))
        }
        .into_actor(self)
        .then(move |chain, act, _| {
            let checked = chain.and_then(|(view, funds)| act.check(msg, &view, funds.info.withdraw_round));
            let store = act.settings.store.clone();
            async move {
                let (mut credited, winners, refused) = checked?;
                // Winners first, committed, whatever else happens to the payment.
                for winner in winners {
                    store.send(QueueWinningTicket(winner)).await.map_err(|e| PaymentRefused::Store(e.to_string()))?;
                    credited.winning += 1;
                }
                Ok::<_, PaymentRefused>((credited, refused))
            }
            .into_actor(act)
        })
        .map(|result, act, _| {
            let result =
                result.and_then(|(credited, refused): (Checked, Option<PaymentRefused>)| act.credit(credited, refused));
            if let Err(e) = &result {
                payment::payment_recv_error(e.code());
                debug!(target: "lp::payments", sender = %act.sender, error = %e, "payment refused");
            }
            result
        });
        AtomicResponse::new(Box::pin(work))
    }
}

/// The outcome of a payment's checks before the winners are stored.
struct Checked {
    session: String,
    price: Price,
    valid: usize,
    winning: usize,
}

impl TicketReceiver {
    /// Check every ticket of `msg` (recording nonces); answer what to credit, the winners to
    /// store, and the refusal that stopped the credit, if any.
    #[allow(clippy::type_complexity)]
    fn check(
        &mut self,
        msg: ReceivePayment,
        view: &ChainView,
        withdraw_round: u64,
    ) -> Result<(Checked, Vec<WinningTicket>, Option<PaymentRefused>), PaymentRefused> {
        let ReceivePayment { session, payment, price } = msg;
        let fixed = self.sessions.get(&session).map(|s| s.price);
        let Some(wire_params) = payment.ticket_params.as_ref() else {
            // No tickets: a free session (go-livepeer fixes its price at 0).
            let price = fixed.unwrap_or(if price.is_zero() { Price::ZERO } else { price });
            return Ok((Checked { session, price, valid: 0, winning: 0 }, Vec::new(), None));
        };
        if payment.sender.is_empty() {
            return Err(PaymentRefused::NoSender);
        }
        let sender = payment::address("sender", &payment.sender)?;
        let expected = price_from_wire(payment.expected_price.as_ref().ok_or(PaymentRefused::NoPrice)?)?;
        if let Some(fixed) = fixed.filter(|f| *f != expected) {
            return Err(PaymentRefused::PriceChanged { fixed, expected });
        }
        if !view.recipient_active {
            return Err(PaymentRefused::RecipientInactive);
        }
        let params = params_from_wire(wire_params, payment.expiration_params.as_ref())?;
        if withdraw_round != 0 && withdraw_round <= view.last_initialized_round + 1 {
            return Err(PaymentRefused::SenderUnlocking(withdraw_round));
        }
        let mut checked = Checked { session, price: expected, valid: 0, winning: 0 };
        let mut winners = Vec::new();
        self.nonces.prune(view.block);
        for t in &payment.ticket_sender_params {
            let ticket = match self.settings.recipient.check(sender, &params, expected, t.sender_nonce, &t.sig) {
                Ok(ticket) => ticket,
                // Only a bad signature lets the rest of the payment be looked at (go-livepeer);
                // any other refusal is the whole payment's.
                Err(e @ TicketError::Signature(_) | e @ TicketError::WrongSigner { .. }) if checked.valid > 0 => {
                    return Ok((checked, winners, Some(e.into())));
                }
                Err(e) => return Err(e.into()),
            };
            let stop =
                self.nonces.record(params.recipient_rand_hash, params.expiration_block, t.sender_nonce).err().or_else(
                    || {
                        (params.expiration_block <= view.block).then_some(TicketError::Expired {
                            expiration_block: params.expiration_block,
                            block: view.block,
                        })
                    },
                );
            if ticket.winning {
                // Even a ticket refused for its nonce or expiry is redeemable on-chain: keep it.
                winners.push(WinningTicket {
                    ticket: ticket.ticket,
                    sig: ticket.sig.into(),
                    recipient_rand: ticket.recipient_rand,
                    params_expiration_block: params.expiration_block,
                });
            }
            if let Some(e) = stop {
                if checked.valid == 0 && winners.is_empty() {
                    return Err(e.into());
                }
                return Ok((checked, winners, Some(e.into())));
            }
            checked.valid += 1;
        }
        Ok((checked, winners, None))
    }

    /// Credit what was checked; a refusal that stopped the payment still fails it.
    fn credit(&mut self, checked: Checked, refused: Option<PaymentRefused>) -> Result<Credited, PaymentRefused> {
        let ev = self.ev_i128();
        let session = self
            .sessions
            .entry(checked.session.clone())
            .or_insert_with(|| Session { balance: 0, price: checked.price });
        session.balance = session.balance.saturating_add(ev.saturating_mul(checked.valid as i128));
        self.tickets += checked.valid as u64;
        self.winning += checked.winning as u64;
        payment::tickets_received(checked.valid, self.settings.ev, checked.winning);
        if checked.winning > 0 {
            info!(target: "lp::payments", sender = %self.sender, winning = checked.winning, "winning tickets stored");
        }
        if let Some(refused) = refused {
            return Err(refused);
        }
        let (balance, price) = (session.balance, session.price);
        if !price.is_zero() && balance < ev {
            return Err(PaymentRefused::InsufficientBalance { balance, ev: self.settings.ev });
        }
        Ok(Credited { tickets: checked.valid, winning: checked.winning, balance, price })
    }
}

impl Handler<Debit> for TicketReceiver {
    type Result = ();

    fn handle(&mut self, msg: Debit, _: &mut Self::Context) {
        if let Some(session) = self.sessions.get_mut(&msg.session) {
            let cost = i128::try_from(session.price.cost(msg.pixels)).unwrap_or(i128::MAX);
            session.balance = session.balance.saturating_sub(cost);
            if session.balance < 0 {
                warn!(target: "lp::payments", sender = %self.sender, session = %msg.session, balance = session.balance, "session balance is negative");
            }
        }
    }
}

impl Handler<GetReceiverStatus> for TicketReceiver {
    type Result = MessageResult<GetReceiverStatus>;

    fn handle(&mut self, _: GetReceiverStatus, _: &mut Self::Context) -> Self::Result {
        let mut sessions: Vec<SessionBalance> = self
            .sessions
            .iter()
            .map(|(id, s)| SessionBalance {
                session: id.clone(),
                balance: s.balance,
                price_per_unit: s.price.per_unit,
                pixels_per_unit: s.price.pixels_per_unit,
            })
            .collect();
        sessions.sort_by(|a, b| a.session.cmp(&b.session));
        MessageResult(ReceiverStatus {
            sender: self.sender,
            tickets: self.tickets,
            ev_received: self.settings.ev * U256::from(self.tickets),
            winning_tickets: self.winning,
            sessions,
        })
    }
}

impl Handler<ForgetSession> for TicketReceiver {
    type Result = ();

    fn handle(&mut self, ForgetSession(session): ForgetSession, _: &mut Self::Context) {
        self.sessions.remove(&session);
    }
}
