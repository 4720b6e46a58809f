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
//! - **Checks** a payment ([`ReceivePayment`]) in go-livepeer's order (§4.6): the session's price
//!   is this orchestrator's (fixed at the session's first payment; a payment expecting another
//!   is refused, so a gateway cannot name its own, free, price); this orchestrator active in the
//!   current round; the sender not unlocking; then per ticket recipient, sender, recipientRand,
//!   signature, replay, expiry, each refusal with its own [`PaymentRefused`] code. A refusal of
//!   the parameters (recipient, recipientRand …) refuses every ticket; a ticket's own (its
//!   signature, nonce or expiry) stops the credit of it and of every later one, but the later
//!   ones are still checked, and every winning ticket of the payment is committed to the store
//!   **before** the payment is answered, so no segment is worked for a winner that a crash could
//!   lose. A ticket is credited the expected value of its parameters. A session whose balance
//!   is below one ticket's EV after the payment is refused before any work.
//! - **Restarts**: nonces are kept in memory only, so tickets on parameters an earlier process
//!   issued (still valid on the persisted secret) are credited nothing ([`Epoch`]); their winners
//!   are kept (the store keys winners by hash, so a replayed winner is not stored twice).
//! - **Bounds**: the orchestrator serves at most `MAX_SENDERS` senders.
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
use lp_chain::pm::{NonceBook, Price, Recipient, SenderInfo, TicketError, TicketParams, WinningTicket};
use lp_wire::Payment;
use serde::Serialize;
use tracing::{debug, info, warn};

use crate::chain::{ChainView, GetSender, SenderView, SenderWatcher};
use crate::payment::{self, Malformed, params_from_wire, price_from_wire};
use crate::store::{QueueWinningTicket, Store};
use crate::supervision::inject_panic;

pub const MAILBOX: usize = 256;

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
    /// This process's parameters (the first bytes of their seed).
    pub epoch: Epoch,
}

/// Random per process, the first [`EPOCH_LEN`] bytes of every seed this process issues. Nonces
/// are kept in memory, so tickets on parameters of an earlier process (still valid on the
/// persisted secret) could be replayed after a restart: their winners are kept for redemption,
/// but they are credited nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Epoch([u8; EPOCH_LEN]);

pub const EPOCH_LEN: usize = 16;

impl Epoch {
    pub fn random() -> Epoch {
        Epoch(rand::random())
    }

    /// A fresh seed of this epoch.
    fn seed(&self) -> B256 {
        let mut seed: [u8; 32] = rand::random();
        seed[..EPOCH_LEN].copy_from_slice(&self.0);
        B256::from(seed)
    }

    fn issued(&self, params: &TicketParams) -> bool {
        params.seed[..EPOCH_LEN] == self.0
    }
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
    #[error("the payment has tickets but no expected price")]
    NoPrice,
    #[error("the session's price is {fixed}; the payment expects {expected}")]
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
    #[error(
        "the ticket parameters were issued before this orchestrator restarted: their winners are kept, but they are credited nothing; ask for new terms"
    )]
    IssuedBeforeRestart,
    #[error("the chain view is not known yet (no block or round read)")]
    NoChainView,
    #[error("reading the sender's funds failed: {0}")]
    Chain(String),
    #[error("the winning ticket could not be stored, so the payment is refused: {0}")]
    Store(String),
}

impl PaymentRefused {
    /// Every [`code`](Self::code), declared at zero when the node starts.
    pub const CODES: [&'static str; 18] = [
        "Malformed",
        "NoPrice",
        "PriceChanged",
        "RecipientInactive",
        "SenderUnlocking",
        "WrongRecipient",
        "ZeroSender",
        "InvalidRecipientRand",
        "InvalidSignature",
        "Replayed",
        "TooManyNonces",
        "Expired",
        "InsufficientBalance",
        "InsufficientSenderReserve",
        "IssuedBeforeRestart",
        "NoChainView",
        "Chain",
        "Store",
    ];

    /// The `error_code` label of `livepeer_payment_recv_errors`.
    pub fn code(&self) -> &'static str {
        match self {
            PaymentRefused::Malformed(_) => "Malformed",
            PaymentRefused::NoPrice => "NoPrice",
            PaymentRefused::PriceChanged { .. } => "PriceChanged",
            PaymentRefused::RecipientInactive => "RecipientInactive",
            PaymentRefused::SenderUnlocking(_) => "SenderUnlocking",
            PaymentRefused::Ticket(e) => e.code(),
            PaymentRefused::InsufficientBalance { .. } => "InsufficientBalance",
            PaymentRefused::Params(_) => "InsufficientSenderReserve",
            PaymentRefused::IssuedBeforeRestart => "IssuedBeforeRestart",
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
    ev_received: U256,
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
            ev_received: U256::ZERO,
            winning: 0,
        }
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

/// The chain view and `sender`'s funds.
async fn chain_and_funds(
    chain: &Addr<SenderWatcher>,
    sender: Address,
) -> Result<(ChainView, SenderView), PaymentRefused> {
    let view = crate::chain::chain_view(chain).await.ok_or(PaymentRefused::NoChainView)?;
    let chain_error = |e: String| PaymentRefused::Chain(e);
    let funds = chain
        .send(GetSender(sender))
        .await
        .map_err(|e| chain_error(e.to_string()))?
        .map_err(|e| chain_error(e.to_string()))?;
    Ok((view, funds))
}

impl Handler<IssueParams> for TicketReceiver {
    type Result = ResponseActFuture<Self, Result<(TicketParams, Price), PaymentRefused>>;

    fn handle(&mut self, msg: IssueParams, _: &mut Self::Context) -> Self::Result {
        let price = msg.session.as_ref().and_then(|s| self.sessions.get(s)).map_or(msg.price, |s| s.price);
        let (settings, sender) = (self.settings.clone(), self.sender);
        Box::pin(
            async move {
                let (view, funds) = chain_and_funds(&settings.chain, sender).await?;
                if !view.recipient_active && !price.is_zero() {
                    return Err(PaymentRefused::RecipientInactive);
                }
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
                Ok((settings.recipient.issue(sender, &terms, price, settings.epoch.seed())?, price))
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
        let work = async move { chain_and_funds(&settings.chain, sender).await }
            .into_actor(self)
            .then(move |chain, act, _| {
                let checked = chain.and_then(|(view, funds)| act.check(msg, &view, &funds.info));
                let store = act.settings.store.clone();
                async move {
                    let (mut credited, winners, refused) = checked?;
                    // Winners first, committed, whatever else happens to the payment.
                    for winner in winners {
                        store
                            .send(QueueWinningTicket(winner))
                            .await
                            .map_err(|e| PaymentRefused::Store(e.to_string()))?;
                        credited.winning += 1;
                    }
                    Ok::<_, PaymentRefused>((credited, refused))
                }
                .into_actor(act)
            })
            .map(|result, act, _| {
                let result = result
                    .and_then(|(credited, refused): (Checked, Option<PaymentRefused>)| act.credit(credited, refused));
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
    /// The expected value of one ticket on the payment's parameters.
    ev: U256,
}

impl TicketReceiver {
    /// Check every ticket of `msg` (recording nonces); answer what to credit, the winners to
    /// store, and the refusal that stopped the credit, if any.
    #[allow(clippy::type_complexity)]
    fn check(
        &mut self,
        msg: ReceivePayment,
        view: &ChainView,
        funds: &SenderInfo,
    ) -> Result<(Checked, Vec<WinningTicket>, Option<PaymentRefused>), PaymentRefused> {
        let ReceivePayment { session, payment, price } = msg;
        // The session's price is this orchestrator's, fixed at the first payment: never one the
        // gateway names (it could name 0).
        let price = self.sessions.get(&session).map_or(price, |s| s.price);
        let mut checked = Checked { session, price, valid: 0, winning: 0, ev: U256::ZERO };
        let Some(wire_params) = payment.ticket_params.as_ref() else {
            return Ok((checked, Vec::new(), None));
        };
        let sender = payment::address("sender", &payment.sender)?;
        let expected = price_from_wire(payment.expected_price.as_ref().ok_or(PaymentRefused::NoPrice)?)?;
        if expected.reduced() != price.reduced() {
            return Err(PaymentRefused::PriceChanged { fixed: price, expected });
        }
        if !view.recipient_active {
            return Err(PaymentRefused::RecipientInactive);
        }
        let params = params_from_wire(wire_params, payment.expiration_params.as_ref())?;
        if funds.unlocking_by(view.last_initialized_round) {
            return Err(PaymentRefused::SenderUnlocking(funds.withdraw_round));
        }
        checked.ev = params.ev();
        let mut winners = Vec::new();
        let mut stop = (!self.settings.epoch.issued(&params)).then_some(PaymentRefused::IssuedBeforeRestart);
        self.nonces.prune(view.block);
        for t in &payment.ticket_sender_params {
            let ticket = match self.settings.recipient.check(sender, &params, expected, t.sender_nonce, &t.sig) {
                Ok(ticket) => ticket,
                // A bad signature is this ticket's; the others are still looked at (go-livepeer).
                Err(e @ (TicketError::Signature(_) | TicketError::WrongSigner { .. })) => {
                    stop.get_or_insert(e.into());
                    continue;
                }
                // Any other refusal is the parameters', so every ticket's.
                Err(e) => return Err(e.into()),
            };
            let refused =
                self.nonces.record(params.recipient_rand_hash, params.expiration_block, t.sender_nonce).err().or_else(
                    || {
                        (params.expiration_block <= view.block).then_some(TicketError::Expired {
                            expiration_block: params.expiration_block,
                            block: view.block,
                        })
                    },
                );
            if ticket.winning {
                // A winner is redeemable on-chain whatever else is wrong with the payment: kept.
                winners.push(WinningTicket {
                    ticket: ticket.ticket,
                    sig: ticket.sig.into(),
                    recipient_rand: ticket.recipient_rand,
                    params_expiration_block: params.expiration_block,
                });
            }
            // The first refusal stops the credit of this ticket and every later one.
            match refused {
                Some(e) => {
                    stop.get_or_insert(e.into());
                }
                None if stop.is_none() => checked.valid += 1,
                None => {}
            }
        }
        match stop {
            Some(e) if checked.valid == 0 && winners.is_empty() => Err(e),
            stop => Ok((checked, winners, stop)),
        }
    }

    /// Credit what was checked; a refusal that stopped the payment still fails it.
    fn credit(&mut self, checked: Checked, refused: Option<PaymentRefused>) -> Result<Credited, PaymentRefused> {
        let session = self
            .sessions
            .entry(checked.session.clone())
            .or_insert_with(|| Session { balance: 0, price: checked.price });
        let value = checked.ev.saturating_mul(U256::from(checked.valid));
        session.balance = session.balance.saturating_add(i128::try_from(value).unwrap_or(i128::MAX));
        self.tickets += checked.valid as u64;
        self.ev_received = self.ev_received.saturating_add(value);
        self.winning += checked.winning as u64;
        payment::tickets_received(checked.valid, checked.ev, checked.winning);
        if checked.winning > 0 {
            info!(target: "lp::payments", sender = %self.sender, winning = checked.winning, "winning tickets stored");
        }
        if let Some(refused) = refused {
            return Err(refused);
        }
        let (balance, price) = (session.balance, session.price);
        let ev = self.settings.ev;
        if !price.is_zero() && balance < i128::try_from(ev).unwrap_or(i128::MAX) {
            return Err(PaymentRefused::InsufficientBalance { balance, ev });
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
            ev_received: self.ev_received,
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

#[cfg(test)]
mod tests {
    use super::*;
    use lp_chain::pm::params::ParamsError;

    /// Each refusal's `error_code` label is declared at start (`CODES`), in order, and no two
    /// kinds of refusal share one (the labels tell an operator which check failed).
    #[test]
    fn every_refusal_has_its_own_declared_label() {
        let a = Address::ZERO;
        let refusals = [
            PaymentRefused::Malformed(Malformed("sender".into())),
            PaymentRefused::NoPrice,
            PaymentRefused::PriceChanged { fixed: Price::ZERO, expected: Price::ZERO },
            PaymentRefused::RecipientInactive,
            PaymentRefused::SenderUnlocking(3),
            TicketError::WrongRecipient { expected: a, got: a }.into(),
            TicketError::ZeroSender.into(),
            TicketError::InvalidRecipientRand.into(),
            TicketError::WrongSigner { sender: a, signer: a }.into(),
            TicketError::Replayed(1).into(),
            TicketError::TooManyNonces.into(),
            TicketError::Expired { expiration_block: 1, block: 2 }.into(),
            PaymentRefused::InsufficientBalance { balance: 0, ev: U256::from(1) },
            ParamsError::NoRound.into(),
            PaymentRefused::IssuedBeforeRestart,
            PaymentRefused::NoChainView,
            PaymentRefused::Chain("rpc".into()),
            PaymentRefused::Store("disk".into()),
        ];
        let codes: Vec<&str> = refusals.iter().map(PaymentRefused::code).collect();
        assert_eq!(codes, PaymentRefused::CODES);
    }
}
