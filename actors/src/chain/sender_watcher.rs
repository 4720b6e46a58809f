//! `SenderWatcher`: what the chain says about ticket senders, kept current from the block
//! watcher's events instead of polling (go-livepeer's `SenderMonitor`, `reference/go-livepeer.md`
//! §4.5), and the chain view ticket parameters are made from.
//!
//! - **Owns** the last block seen, the last round read, the gas price, and a cache of senders'
//!   funds ([`SenderInfo`]: deposit, reserve, unlock, what this account claimed) with the face
//!   value of this node's redemptions in flight per sender ([`PendingChanged`], from the
//!   redeemer), and the gas a redemption costs as the redeemer last estimated it ([`RedeemGas`]).
//!   A sender is read from the chain on first use; a TicketBroker event naming it (deposit or
//!   reserve funded, reserve claimed, a ticket paid, an unlock, a withdrawal) reads it again; a
//!   new round reads every cached sender again (claims reset per round). Senders not asked about
//!   for [`SENDER_TTL`] are dropped at the next block; the gateway's own account is kept.
//! - **Answers** [`GetSender`] (funds, max float, available funds) and [`GetChainView`] (block,
//!   round, gas price).
//! - **Own account** ([`SenderWatcher::own`], a gateway): its funds are read at start and on each
//!   change, and a gateway that cannot pay says so in its log.
//! - **Recipient** ([`SenderWatcher::recipient`], an orchestrator): whether it is active in the
//!   current round, read at each new round (tickets of an inactive recipient are not taken),
//!   one read at a time; until a read for the current round succeeds, every block tries again.
//! - **Mailbox**: bounded at [`MAILBOX`].
//! - **Restart policy**: a failed read is logged and made again at the next block (the cached
//!   value, if any, is answered meanwhile); so is a failed read of whether the recipient is
//!   active. The block never goes backwards (after a reorg), so parameters once expired stay
//!   so. Supervised, permanent (see
//!   `crate::supervision`): restarted in place with its cache.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use alloy::primitives::{Address, B256, U256};
use lp_chain::client::{ChainClient, RoundInfo};
use lp_chain::error::ChainError;
use lp_chain::pm::SenderInfo;
use lp_chain::pm::sender::check_funds;
use tracing::{info, warn};

use super::block_watcher::ChainEvent;
use super::redeemer::{PendingChanged, RedeemGas};
use super::round_watcher::RoundChanged;
use crate::payment;
use crate::supervision::inject_panic;

pub const MAILBOX: usize = 1024;
/// go-livepeer's `smTTL` is 2 days; an hour keeps the cache (and the `livepeer_max_float`
/// series) to the senders that are paying now.
pub const SENDER_TTL: Duration = Duration::from_secs(3600);

/// The chain as ticket parameters need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainView {
    /// The block number ticket parameters expire by: the one contracts see as `block.number`
    /// (on Arbitrum the L1 block's, as go-livepeer counts them; [`ChainEvent::NewHead`]).
    pub block: u64,
    pub last_initialized_round: u64,
    /// The round new tickets commit to, and its block hash ([`RoundInfo::ticket_round`]).
    pub ticket_round: u64,
    pub round_block_hash: B256,
    pub gas_price: u128,
    /// Whether this orchestrator is active in the current round (true when not watched).
    pub recipient_active: bool,
    /// Gas one redemption costs, as last estimated for a ticket due (`None` before any).
    pub redeem_gas: Option<u64>,
}

/// A sender's funds and what they back for this node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SenderView {
    pub info: SenderInfo,
    /// The largest face value this node can rely on (§4.5).
    pub max_float: U256,
}

/// A sender's funds (read from the chain on first use).
#[derive(Message)]
#[rtype(result = "Result<SenderView, ChainError>")]
pub struct GetSender(pub Address);

/// The chain view; `None` until the first block and round are known.
#[derive(Message)]
#[rtype(result = "Option<ChainView>")]
pub struct GetChainView;

/// How long [`chain_view`] waits for a watcher that has just started.
pub const VIEW_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// `watcher`'s chain view, waiting up to [`VIEW_WAIT`] for a watcher that has just started (a
/// node takes streams before its first chain read is back).
pub async fn chain_view(watcher: &Addr<SenderWatcher>) -> Option<ChainView> {
    let deadline = tokio::time::Instant::now() + VIEW_WAIT;
    loop {
        match watcher.send(GetChainView).await {
            Ok(Some(view)) => return Some(view),
            Ok(None) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            _ => return None,
        }
    }
}

struct Tracked {
    info: SenderInfo,
    used: Instant,
    /// A read failed: the cached funds are answered, and read again at the next block.
    stale: bool,
}

pub struct SenderWatcher {
    client: Arc<ChainClient>,
    own: Option<Address>,
    recipient: Option<Address>,
    /// Whether `recipient` is active, and the round that was read for: a value of another round
    /// than `round` (its read at the new round failed, or it is still running) is read again
    /// at the next block.
    active: Option<(bool, Option<u64>)>,
    /// A read of `active` is running (one at a time: blocks come faster than a slow read).
    reading_active: bool,
    block: Option<u64>,
    round: Option<RoundInfo>,
    gas_price: Option<u128>,
    senders: HashMap<Address, Tracked>,
    sender_ttl: Duration,
    pending: HashMap<Address, U256>,
    redeem_gas: Option<u64>,
}

impl SenderWatcher {
    pub fn new(client: Arc<ChainClient>) -> Self {
        SenderWatcher {
            client,
            own: None,
            recipient: None,
            active: None,
            reading_active: false,
            block: None,
            round: None,
            gas_price: None,
            senders: HashMap::new(),
            sender_ttl: SENDER_TTL,
            pending: HashMap::new(),
            redeem_gas: None,
        }
    }

    /// Also watch this node's own account as a sender (a gateway).
    pub fn own(mut self, address: Address) -> Self {
        self.own = Some(address);
        self
    }

    /// How long a sender nobody asks about stays cached (default [`SENDER_TTL`]).
    pub fn sender_ttl(mut self, ttl: Duration) -> Self {
        self.sender_ttl = ttl;
        self
    }

    /// Also watch whether this orchestrator is active (a ticket recipient).
    pub fn recipient(mut self, address: Address) -> Self {
        self.recipient = Some(address);
        self
    }

    fn read_active(&mut self, ctx: &mut Context<Self>) {
        let (client, Some(me)) = (self.client.clone(), self.recipient) else { return };
        if self.reading_active {
            return;
        }
        self.reading_active = true;
        let round = self.round_number();
        let read = async move { client.is_active_transcoder(me).await };
        ctx.spawn(read.into_actor(self).map(move |result, act, _| {
            act.reading_active = false;
            match result {
                Ok(active) => {
                    if act.active.is_none_or(|(was, _)| was != active) && !active {
                        warn!(target: "lp::chain", orchestrator = %me, "not active in the current round: tickets are refused until it is");
                    }
                    act.active = Some((active, round));
                }
                Err(e) => warn!(target: "lp::chain", "reading whether the orchestrator is active failed (read again at the next block): {e}"),
            }
        }));
    }

    fn round_number(&self) -> Option<u64> {
        self.round.as_ref().map(|r| r.round)
    }

    fn pool_size(&self) -> u64 {
        self.round.as_ref().map_or(0, |r| r.pool_size)
    }

    fn view_of(&self, sender: Address, info: SenderInfo) -> SenderView {
        let pending = self.pending.get(&sender).copied().unwrap_or_default();
        let max_float = info.max_float(self.pool_size(), pending);
        payment::max_float(sender, max_float);
        SenderView { max_float, info }
    }

    /// Read `sender` from the chain again and keep it.
    fn refresh(&mut self, sender: Address, ctx: &mut Context<Self>) {
        let client = self.client.clone();
        let read = async move { client.sender_info(sender).await };
        ctx.spawn(read.into_actor(self).map(move |result, act, _| match result {
            Ok(info) => act.store(sender, info),
            Err(e) => {
                warn!(target: "lp::chain", %sender, "reading the sender's funds failed (read again at the next block): {e}");
                if let Some(t) = act.senders.get_mut(&sender) {
                    t.stale = true;
                }
            }
        }));
    }

    fn store(&mut self, sender: Address, info: SenderInfo) {
        if Some(sender) == self.own {
            let changed = self.senders.get(&sender).is_none_or(|t| t.info != info);
            if changed {
                match check_funds(&info) {
                    Ok(()) => {
                        info!(target: "lp::chain", deposit = %info.deposit, reserve = %info.reserve, "the gateway's ticket funds")
                    }
                    Err(why) => warn!(target: "lp::chain", "the gateway cannot pay orchestrators: {why}"),
                }
            }
        }
        let tracked =
            self.senders.entry(sender).or_insert(Tracked { info: info.clone(), used: Instant::now(), stale: false });
        tracked.info = info;
        tracked.stale = false;
    }

    fn read_gas_price(&mut self, ctx: &mut Context<Self>) {
        let client = self.client.clone();
        let read = async move { client.gas_price().await };
        ctx.spawn(read.into_actor(self).map(|result, act, _| match result {
            Ok(price) => {
                act.gas_price = Some(price);
                payment::suggested_gas_price(price);
            }
            Err(e) => warn!(target: "lp::chain", "reading the gas price failed: {e}"),
        }));
    }
}

impl Actor for SenderWatcher {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(MAILBOX);
        // Until the block and round watchers' first news: the chain's head (the number contracts
        // see, as every later head) and round now, and its gas price.
        let client = self.client.clone();
        let read = async move { tokio::join!(client.l1_block_number(), client.current_round()) };
        ctx.spawn(read.into_actor(self).map(|(head, round), act, ctx| {
            if let (Ok(head), None) = (head, act.block) {
                act.block = Some(head);
            }
            if let (Ok(round), None) = (round, &act.round) {
                act.round = Some(round);
                act.read_active(ctx);
            }
        }));
        self.read_gas_price(ctx);
        if let Some(own) = self.own {
            self.senders.insert(own, Tracked { info: SenderInfo::default(), used: Instant::now(), stale: true });
            self.refresh(own, ctx);
        }
    }
}

impl Supervised for SenderWatcher {
    /// A read that was running is gone with the old context: the next block reads again.
    fn restarting(&mut self, _: &mut Self::Context) {
        self.reading_active = false;
    }
}

inject_panic!(SenderWatcher);

impl Handler<ChainEvent> for SenderWatcher {
    type Result = ();

    fn handle(&mut self, event: ChainEvent, ctx: &mut Self::Context) {
        match event {
            ChainEvent::Logs(logs) => {
                let broker = self.client.contracts().ticket_broker;
                let named: Vec<Address> = logs
                    .iter()
                    .filter(|log| log.address() == broker)
                    .filter_map(|log| log.topics().get(1).map(|t| Address::from_word(*t)))
                    .filter(|sender| self.senders.contains_key(sender))
                    .collect();
                for sender in named {
                    self.refresh(sender, ctx);
                }
            }
            ChainEvent::NewHead { l1_number, .. } => {
                // Never backwards (a reorg): parameters pruned as expired must stay expired.
                self.block = Some(self.block.map_or(l1_number, |b| b.max(l1_number)));
                self.read_gas_price(ctx);
                // (No recipient: `read_active` reads nothing.)
                if self.active.is_none_or(|(_, round)| round != self.round_number()) {
                    self.read_active(ctx);
                }
                let stale: Vec<Address> = self.senders.iter().filter(|(_, t)| t.stale).map(|(s, _)| *s).collect();
                for sender in stale {
                    self.refresh(sender, ctx);
                }
                let (own, ttl) = (self.own, self.sender_ttl);
                self.senders.retain(|s, t| Some(*s) == own || t.used.elapsed() < ttl);
            }
            ChainEvent::Reorg { .. } => {}
        }
    }
}

impl Handler<RoundChanged> for SenderWatcher {
    type Result = ();

    fn handle(&mut self, RoundChanged(round): RoundChanged, ctx: &mut Self::Context) {
        let new_round = self.round.as_ref().is_none_or(|r| r.round != round.round);
        self.round = Some(round);
        if new_round {
            self.read_active(ctx);
            let senders: Vec<Address> = self.senders.keys().copied().collect();
            for sender in senders {
                self.refresh(sender, ctx);
            }
        }
    }
}

impl Handler<RedeemGas> for SenderWatcher {
    type Result = ();

    fn handle(&mut self, RedeemGas(gas): RedeemGas, _: &mut Self::Context) {
        self.redeem_gas = Some(gas);
    }
}

impl Handler<PendingChanged> for SenderWatcher {
    type Result = ();

    fn handle(&mut self, msg: PendingChanged, _: &mut Self::Context) {
        if msg.pending.is_zero() {
            self.pending.remove(&msg.sender);
        } else {
            self.pending.insert(msg.sender, msg.pending);
        }
    }
}

impl Handler<GetChainView> for SenderWatcher {
    type Result = Option<ChainView>;

    fn handle(&mut self, _: GetChainView, _: &mut Self::Context) -> Self::Result {
        let round = self.round.as_ref()?;
        Some(ChainView {
            block: self.block?,
            last_initialized_round: round.last_initialized_round,
            ticket_round: round.ticket_round.0,
            round_block_hash: round.ticket_round.1,
            gas_price: self.gas_price?,
            recipient_active: match self.recipient {
                Some(_) => self.active?.0,
                None => true,
            },
            redeem_gas: self.redeem_gas,
        })
    }
}

impl Handler<GetSender> for SenderWatcher {
    type Result = ResponseActFuture<Self, Result<SenderView, ChainError>>;

    fn handle(&mut self, GetSender(sender): GetSender, _: &mut Self::Context) -> Self::Result {
        if let Some(tracked) = self.senders.get_mut(&sender)
            && (tracked.info != SenderInfo::default() || Some(sender) != self.own)
        {
            tracked.used = Instant::now();
            let info = tracked.info.clone();
            return Box::pin(fut::ready(Ok(self.view_of(sender, info))));
        }
        let client = self.client.clone();
        let read = async move { client.sender_info(sender).await };
        Box::pin(read.into_actor(self).map(move |result, act, _| {
            let info = result?;
            act.store(sender, info.clone());
            Ok(act.view_of(sender, info))
        }))
    }
}
