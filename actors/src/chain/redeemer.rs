//! `Redeemer`: redeems the orchestrator's winning tickets; a winning ticket is never lost.
//!
//! - **Owns** the redemption of the tickets, not the tickets: they live in the node database's
//!   `winning_tickets` table, where the orchestrator queues each one (committed,
//!   [`QueueWinningTicket`](crate::store::QueueWinningTicket)) before it answers the segment
//!   that paid with it. A ticket pending when the process stops is redeemed after it starts
//!   again. The redeemer also owns the face value in flight per sender (a redemption being
//!   sent), which it publishes as [`PendingChanged`] for the sender's max float, and the
//!   listener it tells ([`SetPendingListener`]).
//! - **On each new head** ([`ChainEvent::NewHead`]) it takes up to [`MAX_BATCH`] pending
//!   tickets whose parameters have expired (`params_expiration_block <= head`: `recipientRand` is
//!   revealed only once they are dead; head and backoffs count the blocks contracts see, on
//!   Arbitrum the L1 blocks) and whose next attempt is due, oldest first, and
//!   (go-livepeer's `pm/queue.go` and `sendermonitor.go`, §4.9):
//!   1. fails those whose creation round is too old (`creationRound + ticketValidityPeriod <=
//!      currentRound`), recorded and not retried; waits, attempting nothing, while the current
//!      round is not initialized;
//!   2. estimates each ticket's `redeemWinningTicket` gas, which also finds a ticket the broker
//!      would refuse, with its reason, before anything is sent;
//!   3. requires face value > tx cost and the sender's available funds > tx cost (tx cost = the
//!      TxManager's gas price × the estimate; the available funds less the face value of the
//!      sender's tickets taken before in the same pass);
//!   4. redeems what passed: one `redeemWinningTicket`, or for several one
//!      `batchRedeemWinningTickets` with gas for all of them. The broker silently skips a ticket
//!      that fails inside a batch, so each ticket is looked for in the receipt's
//!      `WinningTicketRedeemed` logs; one missing and not `usedTickets` is redeemed alone, which
//!      gives its revert reason.
//! - **Outcomes** (recorded in the database in one transaction per pass): "ticket is used" →
//!   redeemed (someone redeemed it first; the broker pays the ticket's recipient whoever sends
//!   the transaction); "ticket is expired" or "ticket creationRound does not have a block hash"
//!   → failed, with the reason, never retried. Anything else (a revert for lack of funds, an
//!   unregistered recipient, the RPC endpoint down, a gas price above the maximum, a transaction
//!   not mined in time, a face value below the tx cost) keeps the ticket pending, retried after
//!   1, 2, 4 … up to [`MAX_BACKOFF_BLOCKS`] blocks, until it is redeemed or expires. Never
//!   dropped. Outcomes the store could not record are kept and recorded first by the next pass.
//! - **Gas**: each ticket's estimated redemption gas is published as [`RedeemGas`] (to the
//!   listener of [`SetGasListener`]), so that ticket parameters use what redemption really costs.
//! - **Metrics**: `livepeer_value_redeemed` (gwei, go-livepeer's unit; what the broker
//!   transferred), `livepeer_ticket_redemption_errors{error}`.
//! - **Mailbox**: bounded at [`MAILBOX`]. Passes never overlap: a head that arrives during one
//!   is taken up when it ends (only the newest).
//! - **Restart policy**: an error fails only that ticket's attempt (above). Supervised,
//!   permanent (see `crate::supervision`): a pass runs outside the actor's context and reports
//!   back, so a restart never aborts a redemption being sent (nor sends it twice); after a
//!   restart the head that was waiting, if any, is taken up. The face values in flight survive
//!   (an in-place restart keeps the actor's fields).

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::Arc;

use actix::prelude::*;
use alloy::primitives::{Address, B256, U256};
use lp_chain::client::ChainClient;
use lp_chain::db::{TicketOutcome, WinningTicketRow};
use lp_chain::error::ChainError;
use lp_chain::pm::{SenderInfo, WinningTicket};
use tracing::{debug, info, warn};

use crate::store::{DueWinningTickets, RecordTicketOutcomes, Store};

use super::block_watcher::ChainEvent;

pub const MAILBOX: usize = 64;
/// Most tickets taken up in one pass (so in one batch transaction).
pub const MAX_BATCH: usize = 20;
/// The longest wait, in blocks, before a ticket is tried again.
pub const MAX_BACKOFF_BLOCKS: u64 = 256;
/// Rounds a ticket stays redeemable after its creation round (`ticketValidityPeriod`, go-livepeer's
/// constant).
pub const TICKET_VALIDITY_PERIOD: u64 = 2;
/// Gas limit of a batch: the sum of its tickets' estimates, plus this share of it (percent).
pub const BATCH_GAS_MARGIN_PERCENT: u64 = 25;

/// The face value of `sender`'s tickets in flight (being redeemed) changed to `pending`.
#[derive(Message, Debug, Clone, PartialEq, Eq)]
#[rtype(result = "()")]
pub struct PendingChanged {
    pub sender: Address,
    pub pending: U256,
}

/// Tell this recipient of every [`PendingChanged`] from now on (replacing the one before).
#[derive(Message)]
#[rtype(result = "()")]
pub struct SetPendingListener(pub Recipient<PendingChanged>);

/// What one redemption costs in gas, as the chain estimated it for a ticket due now: ticket
/// parameters take it instead of the network's fixed guess (go-livepeer's 1.2 M on Arbitrum,
/// several times the real cost).
#[derive(Message, Debug, Clone, Copy, PartialEq, Eq)]
#[rtype(result = "()")]
pub struct RedeemGas(pub u64);

/// Tell this recipient of every [`RedeemGas`] from now on.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SetGasListener(pub Recipient<RedeemGas>);

/// The face value of this sender's tickets in flight now.
#[derive(Message)]
#[rtype(result = "U256")]
pub struct GetPending(pub Address);

pub struct Redeemer {
    client: Arc<ChainClient>,
    store: Store,
    listener: Option<Recipient<PendingChanged>>,
    gas_listener: Option<Recipient<RedeemGas>>,
    /// Face value in flight per sender (no entry: zero).
    pending: HashMap<Address, U256>,
    busy: bool,
    /// The newest head not yet taken up.
    wanted: Option<u64>,
    /// Outcomes the store failed to record, recorded first by the next pass.
    unrecorded: Vec<(B256, TicketOutcome)>,
}

impl Redeemer {
    /// A redeemer sending from `client`'s account, over the tickets of `store` (its listeners
    /// are set with [`SetPendingListener`] and [`SetGasListener`]).
    pub fn new(client: Arc<ChainClient>, store: Store) -> Self {
        Redeemer {
            client,
            store,
            listener: None,
            gas_listener: None,
            pending: HashMap::new(),
            busy: false,
            wanted: None,
            unrecorded: Vec::new(),
        }
    }

    fn start_pass(&mut self, ctx: &mut Context<Self>) {
        let Some(head) = self.wanted.take() else { return };
        self.busy = true;
        let work = Work { client: self.client.clone(), store: self.store.clone(), me: ctx.address() };
        let carried = std::mem::take(&mut self.unrecorded);
        let me = ctx.address();
        // Outside the actor's context: a restart must not abort a redemption being sent.
        actix::spawn(async move {
            // A pass that panics must not leave the redeemer busy for good: the tickets stay
            // in the database and the next head takes them up again.
            let pass = std::panic::AssertUnwindSafe(work.pass(head, carried));
            let unrecorded = futures::FutureExt::catch_unwind(pass).await.unwrap_or_else(|panic| {
                let what = crate::supervision::panic_message(panic.as_ref());
                tracing::error!(target: "lp::chain::redeemer", "a redemption pass panicked (tried again at the next block): {what}");
                Vec::new()
            });
            me.do_send(Passed { unrecorded });
        });
    }

    fn in_flight(&mut self, tickets: &[(Address, U256)], add: bool) {
        let mut changed = Vec::new();
        for (sender, face_value) in tickets {
            let entry = self.pending.entry(*sender).or_default();
            *entry = if add { entry.saturating_add(*face_value) } else { entry.saturating_sub(*face_value) };
            if !changed.contains(sender) {
                changed.push(*sender);
            }
        }
        for sender in changed {
            let pending = self.pending.get(&sender).copied().unwrap_or_default();
            if pending.is_zero() {
                self.pending.remove(&sender);
            }
            if let Some(listener) = &self.listener {
                listener.do_send(PendingChanged { sender, pending });
            }
        }
    }
}

impl Actor for Redeemer {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(MAILBOX);
    }
}

impl Supervised for Redeemer {
    /// A pass in flight runs on and reports back; a head that was waiting is taken up.
    fn restarting(&mut self, ctx: &mut Self::Context) {
        if !self.busy {
            self.start_pass(ctx);
        }
    }
}

crate::supervision::inject_panic!(Redeemer);

impl Handler<ChainEvent> for Redeemer {
    type Result = ();

    fn handle(&mut self, event: ChainEvent, ctx: &mut Self::Context) {
        // Parameters expire by the number contracts see (on Arbitrum the L1 block's).
        if let ChainEvent::NewHead { l1_number, .. } = event {
            self.wanted = Some(self.wanted.map_or(l1_number, |w| w.max(l1_number)));
            if !self.busy {
                self.start_pass(ctx);
            }
        }
    }
}

impl Handler<SetPendingListener> for Redeemer {
    type Result = ();

    fn handle(&mut self, SetPendingListener(listener): SetPendingListener, _: &mut Self::Context) {
        self.listener = Some(listener);
    }
}

impl Handler<SetGasListener> for Redeemer {
    type Result = ();

    fn handle(&mut self, SetGasListener(listener): SetGasListener, _: &mut Self::Context) {
        self.gas_listener = Some(listener);
    }
}

impl Handler<RedeemGas> for Redeemer {
    type Result = ();

    fn handle(&mut self, gas: RedeemGas, _: &mut Self::Context) {
        if let Some(listener) = &self.gas_listener {
            listener.do_send(gas);
        }
    }
}

impl Handler<GetPending> for Redeemer {
    type Result = MessageResult<GetPending>;

    fn handle(&mut self, GetPending(sender): GetPending, _: &mut Self::Context) -> Self::Result {
        MessageResult(self.pending.get(&sender).copied().unwrap_or_default())
    }
}

/// Tickets of these senders went in flight (`add`) or came back.
#[derive(Message)]
#[rtype(result = "()")]
struct InFlight {
    tickets: Vec<(Address, U256)>,
    add: bool,
}

impl Handler<InFlight> for Redeemer {
    type Result = ();

    fn handle(&mut self, InFlight { tickets, add }: InFlight, _: &mut Self::Context) {
        self.in_flight(&tickets, add);
    }
}

/// A pass ended; the outcomes it could not record.
#[derive(Message)]
#[rtype(result = "()")]
struct Passed {
    unrecorded: Vec<(B256, TicketOutcome)>,
}

impl Handler<Passed> for Redeemer {
    type Result = ();

    fn handle(&mut self, Passed { mut unrecorded }: Passed, ctx: &mut Self::Context) {
        self.busy = false;
        self.unrecorded.append(&mut unrecorded);
        self.start_pass(ctx);
    }
}

/// What a pass works with.
struct Work {
    client: Arc<ChainClient>,
    store: Store,
    me: Addr<Redeemer>,
}

/// A ticket that passed the checks, with its estimated gas.
struct Candidate {
    row: WinningTicketRow,
    ticket: WinningTicket,
    gas: u64,
}

/// How one ticket's attempt ended, with the error kind for the metrics.
struct Attempt {
    hash: B256,
    outcome: TicketOutcome,
    /// The `error` label of `livepeer_ticket_redemption_errors`; `None`: redeemed by us.
    kind: Option<&'static str>,
}

impl Work {
    /// One pass at `head`; answers the outcomes it could not record.
    async fn pass(&self, head: u64, carried: Vec<(B256, TicketOutcome)>) -> Vec<(B256, TicketOutcome)> {
        if !carried.is_empty()
            && let Err(e) = self.store.send(RecordTicketOutcomes(carried.clone())).await
        {
            warn!(target: "lp::chain::redeemer", "recording ticket outcomes failed (kept, retried next block): {e}");
            return carried;
        }
        let due = match self.store.send(DueWinningTickets { head, limit: MAX_BATCH }).await {
            Ok(due) => due,
            Err(e) => {
                warn!(target: "lp::chain::redeemer", head, "reading the due winning tickets failed (retried next block): {e}");
                return Vec::new();
            }
        };
        if due.is_empty() {
            return Vec::new();
        }
        let attempts = self.attempt(head, due).await;
        for a in &attempts {
            crate::metrics::ticket_redemption(a.kind, &a.outcome);
            log_attempt(a);
        }
        let outcomes: Vec<_> = attempts.into_iter().map(|a| (a.hash, a.outcome)).collect();
        match self.store.send(RecordTicketOutcomes(outcomes.clone())).await {
            Ok(()) => Vec::new(),
            Err(e) => {
                warn!(target: "lp::chain::redeemer", "recording ticket outcomes failed (kept, retried next block): {e}");
                outcomes
            }
        }
    }

    async fn attempt(&self, head: u64, due: Vec<WinningTicketRow>) -> Vec<Attempt> {
        let client = &self.client;
        let mut out = Vec::new();
        let round = match client.current_round().await {
            Ok(r) => r,
            Err(e) => return due.iter().map(|row| retry(row, head, &e)).collect(),
        };
        if !round.initialized {
            debug!(target: "lp::chain::redeemer", round = round.round, "the current round is not initialized; waiting");
            return Vec::new();
        }
        let mut live = Vec::new();
        for row in due {
            if row.creation_round + TICKET_VALIDITY_PERIOD <= round.round {
                let reason = format!(
                    "ticket is expired: created in round {}, redeemable for {TICKET_VALIDITY_PERIOD} rounds, the \
                     current round is {}",
                    row.creation_round, round.round
                );
                out.push(Attempt {
                    hash: row.ticket_hash,
                    outcome: TicketOutcome::Failed { reason },
                    kind: Some("expired"),
                });
            } else {
                live.push(row);
            }
        }
        if live.is_empty() {
            return out;
        }
        let gas_price = match client.gas_price().await {
            Ok(p) => U256::from(p),
            Err(e) => {
                out.extend(live.iter().map(|row| retry(row, head, &e)));
                return out;
            }
        };

        // Every ticket's gas, and the broker's refusals, before anything is sent.
        let mut estimated = Vec::new();
        for row in live {
            let ticket = row.ticket();
            match client.estimate_redeem_gas(&ticket).await {
                Ok(gas) => {
                    self.me.do_send(RedeemGas(gas));
                    estimated.push(Candidate { row, ticket, gas })
                }
                Err(e) => out.push(classify(&row, head, &e)),
            }
        }

        // Worth its cost, and the sender can pay it.
        let mut senders: HashMap<Address, Result<SenderInfo, String>> = HashMap::new();
        let mut taken: HashMap<Address, U256> = HashMap::new();
        let mut chosen = Vec::new();
        for c in estimated {
            let cost = gas_price.saturating_mul(U256::from(c.gas));
            let sender = c.row.sender;
            if c.row.face_value <= cost {
                let why = format!(
                    "face value {} wei is not above the redemption's cost, {cost} wei ({} gas at {gas_price} wei)",
                    c.row.face_value, c.gas
                );
                out.push(retry_for(&c.row, head, why, "unprofitable"));
                continue;
            }
            if let Entry::Vacant(slot) = senders.entry(sender) {
                slot.insert(client.sender_info(sender).await.map_err(|e| e.to_string()));
            }
            let info = match &senders[&sender] {
                Ok(info) => info,
                Err(e) => {
                    out.push(retry_for(&c.row, head, format!("reading the sender's funds: {e}"), "rpc"));
                    continue;
                }
            };
            let before = taken.get(&sender).copied().unwrap_or_default();
            let available = info.available_funds(round.pool_size, before);
            if available <= cost {
                let why = format!(
                    "the sender's available funds, {available} wei, are not above the redemption's cost, {cost} wei"
                );
                out.push(retry_for(&c.row, head, why, "unprofitable"));
                continue;
            }
            taken.insert(sender, before.saturating_add(c.row.face_value));
            chosen.push(c);
        }
        if chosen.is_empty() {
            return out;
        }

        let flight: Vec<(Address, U256)> = chosen.iter().map(|c| (c.row.sender, c.row.face_value)).collect();
        self.me.do_send(InFlight { tickets: flight.clone(), add: true });
        out.extend(self.redeem(head, chosen).await);
        self.me.do_send(InFlight { tickets: flight, add: false });
        out
    }

    /// Redeem the chosen tickets: alone, or in one batch with the skipped ones then alone.
    async fn redeem(&self, head: u64, chosen: Vec<Candidate>) -> Vec<Attempt> {
        if chosen.len() == 1 {
            return vec![self.redeem_one(head, &chosen[0]).await];
        }
        let client = &self.client;
        let tickets: Vec<WinningTicket> = chosen.iter().map(|c| c.ticket.clone()).collect();
        let gas: u64 = chosen.iter().map(|c| c.gas).sum();
        let limit = gas.saturating_add(gas * BATCH_GAS_MARGIN_PERCENT / 100);
        let receipt = match client.batch_redeem_winning_tickets(&tickets, limit).await {
            Ok(receipt) => receipt,
            Err(e) => return chosen.iter().map(|c| retry(&c.row, head, &e)).collect(),
        };
        let redeemed: HashMap<B256, U256> =
            client.redeemed(&receipt).into_iter().map(|r| (r.ticket_hash, r.paid)).collect();
        info!(
            target: "lp::chain::redeemer",
            tx = %receipt.transaction_hash,
            tickets = chosen.len(),
            redeemed = redeemed.len(),
            gas_used = receipt.gas_used,
            "winning tickets redeemed in one batch"
        );
        let mut out = Vec::new();
        for c in &chosen {
            let hash = c.row.ticket_hash;
            if let Some(paid) = redeemed.get(&hash) {
                let outcome = TicketOutcome::Redeemed {
                    tx: Some(receipt.transaction_hash),
                    gas_used: Some(receipt.gas_used),
                    paid: Some(*paid),
                    note: None,
                };
                out.push(Attempt { hash, outcome, kind: None });
                continue;
            }
            // Skipped by the batch: used meanwhile, or it fails, and alone it says why.
            match client.is_used_ticket(hash).await {
                Ok(true) => out.push(used_elsewhere(hash)),
                Ok(false) => out.push(self.redeem_one(head, c).await),
                Err(e) => out.push(retry(&c.row, head, &e)),
            }
        }
        out
    }

    async fn redeem_one(&self, head: u64, c: &Candidate) -> Attempt {
        match self.client.redeem_winning_ticket(&c.ticket).await {
            Ok(receipt) => {
                let paid = self.client.redeemed(&receipt).into_iter().find(|r| r.ticket_hash == c.row.ticket_hash);
                let outcome = TicketOutcome::Redeemed {
                    tx: Some(receipt.transaction_hash),
                    gas_used: Some(receipt.gas_used),
                    paid: paid.map(|r| r.paid),
                    note: None,
                };
                Attempt { hash: c.row.ticket_hash, outcome, kind: None }
            }
            Err(e) => classify(&c.row, head, &e),
        }
    }
}

/// The outcome of an attempt that failed with `err` (the broker's reasons are in its revert
/// strings, `reference/contracts.md` §4).
fn classify(row: &WinningTicketRow, head: u64, err: &ChainError) -> Attempt {
    if let ChainError::Reverted { reason } = err {
        if reason.contains("ticket is used") {
            return used_elsewhere(row.ticket_hash);
        }
        if reason.contains("ticket is expired") {
            return Attempt {
                hash: row.ticket_hash,
                outcome: TicketOutcome::Failed { reason: reason.clone() },
                kind: Some("expired"),
            };
        }
        if reason.contains("ticket creationRound does not have a block hash") {
            return Attempt {
                hash: row.ticket_hash,
                outcome: TicketOutcome::Failed { reason: reason.clone() },
                kind: Some("no_block_hash"),
            };
        }
    }
    retry(row, head, err)
}

/// The broker found the ticket used: it was redeemed already, and paid its recipient, us.
fn used_elsewhere(hash: B256) -> Attempt {
    let note = "ticket is used: already redeemed by another transaction (the broker paid this recipient)";
    let outcome = TicketOutcome::Redeemed { tx: None, gas_used: None, paid: None, note: Some(note.into()) };
    Attempt { hash, outcome, kind: Some("used") }
}

fn retry(row: &WinningTicketRow, head: u64, err: &ChainError) -> Attempt {
    let kind = match err {
        ChainError::Reverted { .. } => "revert",
        ChainError::Rpc(_) => "rpc",
        ChainError::GasPriceTooHigh { .. } => "gas_price",
        ChainError::Timeout(_) => "timeout",
        _ => "other",
    };
    retry_for(row, head, err.to_string(), kind)
}

fn retry_for(row: &WinningTicketRow, head: u64, error: String, kind: &'static str) -> Attempt {
    let next_attempt_block = head.saturating_add(backoff(row.attempts + 1));
    Attempt { hash: row.ticket_hash, outcome: TicketOutcome::Retry { error, next_attempt_block }, kind: Some(kind) }
}

/// Blocks to wait after the `attempt`-th failed attempt: 1, 2, 4 … up to [`MAX_BACKOFF_BLOCKS`].
pub fn backoff(attempt: u32) -> u64 {
    1u64.checked_shl(attempt.saturating_sub(1)).unwrap_or(u64::MAX).min(MAX_BACKOFF_BLOCKS)
}

fn log_attempt(a: &Attempt) {
    match &a.outcome {
        TicketOutcome::Redeemed { tx: Some(tx), paid, .. } => {
            info!(target: "lp::chain::redeemer", ticket = %a.hash, %tx, paid = ?paid, "winning ticket redeemed")
        }
        TicketOutcome::Redeemed { note, .. } => {
            info!(target: "lp::chain::redeemer", ticket = %a.hash, "winning ticket settled: {}", note.as_deref().unwrap_or(""))
        }
        TicketOutcome::Failed { reason } => {
            warn!(target: "lp::chain::redeemer", ticket = %a.hash, "winning ticket cannot be redeemed (not retried): {reason}")
        }
        TicketOutcome::Retry { error, next_attempt_block } => warn!(
            target: "lp::chain::redeemer",
            ticket = %a.hash,
            next_attempt_block,
            "winning ticket not redeemed (kept, retried later): {error}"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let waits: Vec<u64> = (1..=11).map(backoff).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 64, 128, 256, 256, 256]);
        assert_eq!(backoff(0), 1);
        assert_eq!(backoff(u32::MAX), MAX_BACKOFF_BLOCKS);
    }
}
