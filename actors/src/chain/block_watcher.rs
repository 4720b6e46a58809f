//! `BlockWatcher`: follows the chain head and the logs of the events the node needs.
//!
//! - **Owns** the RPC provider it polls, the node database's record of the last block seen and of
//!   recent block headers (kept through the [`Store`]; each range's headers and last block are
//!   one message, so one transaction), and its subscribers.
//! - **Every poll** (`block_poll_interval_secs`): fetch the head; check the first new block's
//!   parent hash against the stored last block; fetch the logs of the watched topics from the
//!   watched contracts for the new range (in chunks of [`MAX_LOG_RANGE`] blocks); publish them,
//!   then the new head with the number contracts see (Arbitrum's `l1BlockNumber`, go-livepeer's
//!   `L1BlockNumber`); store the head and the recent headers.
//! - **Backfill**: on start it continues from the stored last block, so events that happened
//!   while the node was down are published before anything new.
//! - **Replaced chain**: on its first poll, and whenever a stored block is no longer on the
//!   chain, it compares the chain's genesis hash with the one stored in the database (a local
//!   devnet stopped and started again keeps its chain id but not its blocks). Another genesis
//!   means nothing stored belongs to this chain: the database [starts over](StartOver) (last
//!   block, headers, orchestrator cache) and the watcher continues from the current head, as on a
//!   first start, with one WARN line. A database without a stored genesis hash (written before
//!   it was recorded) is taken to follow this chain when its last block, or its oldest stored
//!   header, is on it.
//! - **Reorgs** (go-livepeer dropped this, #2775): when the parent hash does not match, it walks
//!   back through the stored headers to the common ancestor, publishes [`ChainEvent::Reorg`], and
//!   replays the logs of the replaced range from the new canonical chain. A chain that became
//!   shorter than the stored last block is a reorg too: the common ancestor is at most the head.
//! - **Mailbox**: bounded at [`MAILBOX`]; polls never overlap (a poll still running skips the
//!   next tick).
//! - **Errors** are a [`WatchError`]: the RPC endpoint's ([`WatchError::Rpc`],
//!   [`WatchError::MissingBlock`]) told apart from the store's ([`WatchError::Store`]).
//! - **Restart policy**: an error fails only that poll (logged); the next tick retries from the
//!   stored block, so nothing is skipped. Supervised, permanent (see `crate::supervision`):
//!   after a panic it is restarted in place and the next tick polls from the stored block.

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use alloy::eips::BlockNumberOrTag;
use alloy::primitives::{Address, B256};
use alloy::providers::{DynProvider, Provider};
use alloy::rpc::types::{Filter, Log};
use alloy::transports::{RpcError, TransportErrorKind};
use lp_chain::client::{BlockHeader as Header, block_header};
use lp_chain::error::ChainError;
use tracing::{debug, info, warn};

use crate::store::{
    BlockHeader, GenesisHash, LastBlock, OldestBlockHeader, PruneBlockHeaders, RecordProgress, SetGenesisHash,
    StartOver, Store, StoreError,
};

pub const MAILBOX: usize = 64;
/// Most blocks asked for in one `eth_getLogs` (go-livepeer: 1000).
pub const MAX_LOG_RANGE: u64 = 1000;
/// Recent headers kept for reorg detection (deeper reorgs replay this far back).
pub const HEADER_RETENTION: u64 = 128;

/// What the watcher publishes, in chain order.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub enum ChainEvent {
    /// Logs of the watched events in a range of blocks, oldest first.
    Logs(Arc<Vec<Log>>),
    /// The blocks after `common_ancestor` were replaced; their logs are replayed next.
    Reorg { common_ancestor: u64, replaced: u64 },
    /// The chain head after everything before it was published. `l1_number` is the block
    /// number contracts see as `block.number`, which ticket parameters expire by: Arbitrum's
    /// `l1BlockNumber` of the head, and on other chains `number`.
    NewHead { number: u64, hash: B256, l1_number: u64 },
}

/// Add a subscriber.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Subscribe(pub Recipient<ChainEvent>);

/// Poll now and answer the new head when done (the node's periodic polls do the same on a
/// timer).
#[derive(Message)]
#[rtype(result = "Result<u64, WatchError>")]
pub struct PollNow;

/// The request to the RPC endpoint that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RpcCall {
    /// `eth_blockNumber`.
    Head,
    /// `eth_getBlockByNumber` of this block.
    Block(u64),
    /// `eth_getLogs` of this range (inclusive).
    Logs { from: u64, to: u64 },
}

impl std::fmt::Display for RpcCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RpcCall::Head => write!(f, "head"),
            RpcCall::Block(n) => write!(f, "block {n}"),
            RpcCall::Logs { from, to } => write!(f, "logs {from}..={to}"),
        }
    }
}

/// Why a poll failed. Either way the next poll starts again from the stored last block.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WatchError {
    /// The RPC endpoint failed a request (URLs in the text are redacted).
    #[error("{call}: {error}")]
    Rpc { call: RpcCall, error: ChainError },
    /// The endpoint has no block the watcher needs (a node behind the one asked before, or a
    /// chain that changed during the poll).
    #[error("block {0} is not on the chain")]
    MissingBlock(u64),
    /// The database store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Another poll is running.
    #[error("a poll is already running")]
    AlreadyPolling,
}

impl WatchError {
    fn rpc(call: RpcCall, e: &RpcError<TransportErrorKind>) -> WatchError {
        WatchError::Rpc { call, error: ChainError::from_rpc(e) }
    }
}

pub struct BlockWatcher {
    provider: DynProvider,
    store: Store,
    addresses: Vec<Address>,
    topics: Vec<B256>,
    interval: Duration,
    subscribers: Vec<Recipient<ChainEvent>>,
    polling: bool,
    /// Names the RPC endpoint in logs (no credentials).
    endpoint: Arc<str>,
    /// Whether a poll has checked the chain's genesis against the database.
    genesis_checked: bool,
}

impl BlockWatcher {
    pub fn new(
        provider: DynProvider,
        store: Store,
        addresses: Vec<Address>,
        topics: Vec<B256>,
        interval: Duration,
    ) -> Self {
        BlockWatcher {
            provider,
            store,
            addresses,
            topics,
            interval,
            subscribers: Vec::new(),
            polling: false,
            endpoint: Arc::from("the RPC endpoint"),
            genesis_checked: false,
        }
    }

    /// Name the RPC endpoint in logs (e.g. the redacted `eth.url`); it must not hold credentials.
    pub fn endpoint(mut self, label: impl Into<String>) -> Self {
        self.endpoint = Arc::from(label.into());
        self
    }

    fn publish(subscribers: &[Recipient<ChainEvent>], event: ChainEvent) {
        for s in subscribers {
            s.do_send(event.clone());
        }
    }

    fn poll(&mut self) -> ResponseActFuture<Self, Result<u64, WatchError>> {
        if self.polling {
            return Box::pin(fut::ready(Err(WatchError::AlreadyPolling)));
        }
        self.polling = true;
        let job = poll_once(
            Chain { provider: self.provider.clone(), store: self.store.clone(), endpoint: self.endpoint.clone() },
            self.addresses.clone(),
            self.topics.clone(),
            self.subscribers.clone(),
            !self.genesis_checked,
        );
        Box::pin(job.into_actor(self).map(|result, act, _| {
            act.polling = false;
            match &result {
                Ok(_) => act.genesis_checked = true,
                Err(e) => warn!(target: "lp::chain", "block poll failed (retried next tick): {e}"),
            }
            result
        }))
    }
}

impl Actor for BlockWatcher {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(MAILBOX);
        ctx.run_interval(self.interval, |act, ctx| {
            if !act.polling {
                let poll = act.poll();
                ctx.spawn(poll.map(|_, _, _| ()));
            }
        });
    }
}

impl Supervised for BlockWatcher {
    /// The poll in flight was dropped with its future.
    fn restarting(&mut self, _: &mut Self::Context) {
        self.polling = false;
    }
}

crate::supervision::inject_panic!(BlockWatcher);

impl Handler<Subscribe> for BlockWatcher {
    type Result = ();

    fn handle(&mut self, Subscribe(r): Subscribe, _: &mut Self::Context) {
        self.subscribers.push(r);
    }
}

impl Handler<PollNow> for BlockWatcher {
    type Result = ResponseActFuture<Self, Result<u64, WatchError>>;

    fn handle(&mut self, _: PollNow, _: &mut Self::Context) -> Self::Result {
        self.poll()
    }
}

/// The header of block `number`, or `None` when the chain has no such block.
async fn header(provider: &DynProvider, number: u64) -> Result<Option<Header>, WatchError> {
    block_header(provider, BlockNumberOrTag::Number(number))
        .await
        .map_err(|e| WatchError::rpc(RpcCall::Block(number), &e))
}

async fn existing_header(provider: &DynProvider, number: u64) -> Result<Header, WatchError> {
    header(provider, number).await?.ok_or(WatchError::MissingBlock(number))
}

/// What a poll works on: the endpoint and the database.
struct Chain {
    provider: DynProvider,
    store: Store,
    endpoint: Arc<str>,
}

/// One poll: publish what happened since the stored last block. Answers the new head.
///
/// Progress is stored after each published range, so a poll that fails half-way resumes where
/// it stopped instead of publishing the same logs again.
async fn poll_once(
    chain: Chain,
    addresses: Vec<Address>,
    topics: Vec<B256>,
    subscribers: Vec<Recipient<ChainEvent>>,
    check_genesis: bool,
) -> Result<u64, WatchError> {
    if check_genesis {
        start_over_if_replaced(&chain).await?;
    }
    let Chain { provider, store, .. } = &chain;
    let head = provider.get_block_number().await.map_err(|e| WatchError::rpc(RpcCall::Head, &e))?;
    let last = store.send(LastBlock).await?;
    let from = match last {
        // First start: begin at the head; there is nothing older to catch up with.
        None => head,
        Some((number, hash)) if head > number => {
            // The block after the last one seen must build on it.
            if existing_header(provider, number + 1).await?.parent_hash == hash {
                number + 1
            } else {
                reorganized(&chain, &subscribers, number, head).await?
            }
        }
        Some((number, hash)) => {
            // No new block. Either the last one is still there, or a node behind the one we
            // asked before answers (nothing to do until it catches up), or the chain got shorter.
            match header(provider, number).await? {
                Some(h) if h.hash == hash => return Ok(head),
                None if stored_hash(store, head).await? == Some(existing_header(provider, head).await?.hash) => {
                    return Ok(head);
                }
                _ => reorganized(&chain, &subscribers, number, head).await?,
            }
        }
    };
    let mut start = from;
    let mut head_header = None;
    while start <= head {
        let end = (start + MAX_LOG_RANGE - 1).min(head);
        let filter =
            Filter::new().from_block(start).to_block(end).address(addresses.clone()).event_signature(topics.clone());
        let logs = provider
            .get_logs(&filter)
            .await
            .map_err(|e| WatchError::rpc(RpcCall::Logs { from: start, to: end }, &e))?;
        // Remember the recent headers (for the next reorg check) and the progress.
        let keep_from = head.saturating_sub(HEADER_RETENTION);
        let mut headers = Vec::new();
        for n in start.max(keep_from)..end {
            let h = existing_header(provider, n).await?;
            headers.push((n, h.hash, h.parent_hash));
        }
        let end_header = existing_header(provider, end).await?;
        if !logs.is_empty() {
            debug!(target: "lp::chain", from = start, to = end, logs = logs.len(), "chain logs");
            BlockWatcher::publish(&subscribers, ChainEvent::Logs(Arc::new(logs)));
        }
        store.send(RecordProgress { headers, last: (end, end_header.hash, end_header.parent_hash) }).await?;
        head_header = Some(end_header);
        start = end + 1;
    }
    store.send(PruneBlockHeaders { below: head.saturating_sub(HEADER_RETENTION) }).await?;
    let head_header = match head_header {
        Some(h) => h,
        None => existing_header(provider, head).await?,
    };
    let (hash, l1_number) = (head_header.hash, head_header.l1_number());
    BlockWatcher::publish(&subscribers, ChainEvent::NewHead { number: head, hash, l1_number });
    Ok(head)
}

async fn stored_hash(store: &Store, number: u64) -> Result<Option<B256>, WatchError> {
    Ok(store.send(BlockHeader(number)).await?.map(|(h, _)| h))
}

/// Whether the chain holds block `number` with hash `hash`.
async fn on_chain(provider: &DynProvider, number: u64, hash: B256) -> Result<bool, WatchError> {
    Ok(header(provider, number).await?.is_some_and(|h| h.hash == hash))
}

/// Compare the chain's genesis hash with the database's. Another genesis (a devnet started
/// again: same chain id, other blocks) drops what the database kept of the old chain, so the
/// next poll starts from the current head. Answers whether it did.
async fn start_over_if_replaced(chain: &Chain) -> Result<bool, WatchError> {
    let genesis = existing_header(&chain.provider, 0).await?.hash;
    let stored = chain.store.send(GenesisHash).await?;
    let old = match stored {
        Some(g) if g == genesis => return Ok(false),
        Some(g) => g.to_string(),
        None if follows(chain).await? => {
            chain.store.send(SetGenesisHash(genesis)).await?;
            return Ok(false);
        }
        None => "unrecorded".to_string(),
    };
    let dropped = chain.store.send(StartOver(genesis)).await?;
    let last = dropped.last_block.map_or_else(|| "none".to_string(), |n| n.to_string());
    warn!(
        target: "lp::chain",
        "the chain at {} was replaced (genesis hash {old} → {genesis}); starting over from the current head \
         (dropped the stored progress at block {last}, {} block headers and {} cached orchestrators)",
        chain.endpoint, dropped.block_headers, dropped.orchestrators,
    );
    Ok(true)
}

/// For a database without a recorded genesis hash: whether what it stored is on this chain (its
/// last block, or after a reorg its oldest stored header). Nothing stored follows any chain.
async fn follows(chain: &Chain) -> Result<bool, WatchError> {
    let last = chain.store.send(LastBlock).await?;
    let oldest = chain.store.send(OldestBlockHeader).await?;
    let Some((number, hash)) = last else { return Ok(true) };
    if on_chain(&chain.provider, number, hash).await? {
        return Ok(true);
    }
    match oldest {
        Some((n, h, _)) => on_chain(&chain.provider, n, h).await,
        None => Ok(false),
    }
}

/// The chain no longer holds the stored block `number`: publish the reorg, rewind the stored
/// last block to the common ancestor, and answer the first block to replay. When the chain was
/// replaced rather than reorganized, the database starts over and the head is answered.
async fn reorganized(
    chain: &Chain,
    subscribers: &[Recipient<ChainEvent>],
    number: u64,
    head: u64,
) -> Result<u64, WatchError> {
    if start_over_if_replaced(chain).await? {
        return Ok(head);
    }
    let ancestor = common_ancestor(chain, number, head).await?;
    info!(target: "lp::chain", ancestor, replaced = number - ancestor, "chain reorganized; replaying the replaced blocks");
    BlockWatcher::publish(subscribers, ChainEvent::Reorg { common_ancestor: ancestor, replaced: number - ancestor });
    let h = existing_header(&chain.provider, ancestor).await?;
    chain.store.send(RecordProgress { headers: Vec::new(), last: (ancestor, h.hash, h.parent_hash) }).await?;
    Ok(ancestor + 1)
}

/// The newest stored block still on the chain below `number`, and at most the chain's `head`
/// (a chain shorter than the stored last block has none of the blocks above its head). Without a
/// stored header to compare (deeper than [`HEADER_RETENTION`]), the oldest block checked is
/// taken, so the replay reaches at least that far back.
async fn common_ancestor(chain: &Chain, number: u64, head: u64) -> Result<u64, WatchError> {
    let top = number.saturating_sub(1).min(head);
    let floor = top.saturating_sub(HEADER_RETENTION);
    let mut n = top;
    loop {
        let Some(stored) = stored_hash(&chain.store, n).await? else { return Ok(n) };
        if n == floor || on_chain(&chain.provider, n, stored).await? {
            return Ok(n);
        }
        n -= 1;
    }
}
