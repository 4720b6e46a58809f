//! The sender watcher on a real local chain (anvil, our contracts): a sender's funds are read
//! once and kept between the TicketBroker's events, read again on an event naming the sender
//! and at a new round; the max float is the sender's reserve shared by the pool, less the face
//! value in flight; the chain view's block never goes backwards; an orchestrator's activity is
//! read again at each new round. Each message is the one the block watcher, round watcher or
//! redeemer sends.

mod common;

use std::sync::Arc;
use std::time::Instant;

use actix::prelude::*;
use alloy::primitives::{Address, B256, U256};
use alloy::providers::Provider;
use alloy::providers::ext::AnvilApi;
use alloy::signers::local::PrivateKeySigner;
use common::eventually;
use lp_actors::chain::sender_watcher::VIEW_WAIT;
use lp_actors::chain::{
    ChainEvent, ChainView, GetChainView, GetSender, PendingChanged, RedeemGas, RoundChanged, SenderView, SenderWatcher,
    chain_view,
};
use lp_chain::anvil::{Anvil, AnvilOptions, DEV_KEYS};
use lp_chain::client::{ChainClient, RoundInfo, http_provider};
use lp_chain::devnet::{DevnetParams, deploy};
use lp_chain::tx::TxPolicy;

const ETH: u64 = 1_000_000_000_000_000_000;

fn eth(n: u64) -> U256 {
    U256::from(n) * U256::from(ETH)
}

fn key(i: usize) -> PrivateKeySigner {
    DEV_KEYS[i].parse().unwrap()
}

/// Contracts on a fresh anvil, an orchestrator account (dev account 1, with LPT, not registered)
/// and a gateway (dev account 2) with 1 ETH of deposit and 1 ETH of reserve.
struct Chain {
    anvil: Anvil,
    url: String,
    controller: Address,
    orchestrator: Arc<ChainClient>,
    gateway: Arc<ChainClient>,
}

impl Chain {
    async fn start() -> Chain {
        let anvil = Anvil::spawn(AnvilOptions::default()).unwrap();
        let url = anvil.url();
        let params = DevnetParams { round_length: 50, ..Default::default() };
        let d = deploy(&url, DEV_KEYS[0], &params, &[(key(1).address(), eth(1000))]).await.unwrap();
        let controller = d.contracts.controller;
        let orchestrator = Self::client(&url, controller, 1).await;
        if !orchestrator.current_round().await.unwrap().initialized {
            orchestrator.initialize_round().await.unwrap();
        }
        let gateway = Self::client(&url, controller, 2).await;
        gateway.fund(eth(1), eth(1)).await.unwrap();
        Chain { anvil, url, controller, orchestrator, gateway }
    }

    async fn client(url: &str, controller: Address, i: usize) -> Arc<ChainClient> {
        Arc::new(ChainClient::connect(url, controller, Some(key(i)), TxPolicy::default()).await.unwrap())
    }

    /// A watcher and its first chain view, asked for at once: `chain_view` waits for the
    /// watcher's first reads (a node takes requests before they are back).
    async fn watcher(&self, watcher: SenderWatcher) -> (Addr<SenderWatcher>, ChainView) {
        let addr = watcher.start();
        let view = chain_view(&addr).await.expect("the first chain view, waited for");
        (addr, view)
    }

    async fn round(&self) -> RoundInfo {
        self.orchestrator.current_round().await.unwrap()
    }
}

async fn sender(watcher: &Addr<SenderWatcher>, sender: Address) -> SenderView {
    watcher.send(GetSender(sender)).await.unwrap().unwrap()
}

fn head(l1_number: u64) -> ChainEvent {
    ChainEvent::NewHead { number: l1_number, hash: B256::ZERO, l1_number }
}

#[actix::test]
async fn funds_are_kept_between_events_and_read_again_on_an_event_naming_the_sender() {
    let chain = Chain::start().await;
    let (watcher, view) = chain.watcher(SenderWatcher::new(chain.orchestrator.clone())).await;
    let g = key(2).address();
    assert_eq!(sender(&watcher, g).await.info.deposit, eth(1));

    // More deposit, which the watcher hears of only through the broker's event.
    let receipt = chain.gateway.fund(eth(1), U256::ZERO).await.unwrap();
    watcher.send(head(view.block + 1)).await.unwrap();
    assert_eq!(sender(&watcher, g).await.info.deposit, eth(1), "kept across a new head: no read per head");
    let logs = receipt.inner.logs().to_vec();
    assert!(!logs.is_empty(), "fundDeposit logs DepositFunded");
    watcher.send(ChainEvent::Logs(Arc::new(logs))).await.unwrap();
    eventually("the deposit read again after the event", || async {
        (sender(&watcher, g).await.info.deposit == eth(2)).then_some(())
    })
    .await;
}

/// A sender nobody asked about for the TTL is dropped at the next block, so the next question
/// reads it from the chain again; the gateway's own account stays cached.
#[actix::test]
async fn senders_unasked_for_the_ttl_are_dropped_but_the_gateways_own() {
    let chain = Chain::start().await;
    let g = key(2).address();
    let other = Chain::client(&chain.url, chain.controller, 3).await;
    other.fund(eth(1), eth(1)).await.unwrap();
    let h = key(3).address();
    let ttl = std::time::Duration::from_secs(1);
    let (watcher, view) = chain.watcher(SenderWatcher::new(chain.orchestrator.clone()).own(g).sender_ttl(ttl)).await;
    eventually("the gateway's own funds read", || async {
        (sender(&watcher, g).await.info.deposit == eth(1)).then_some(())
    })
    .await;
    assert_eq!(sender(&watcher, h).await.info.deposit, eth(1));

    // More deposit for both, which the watcher does not hear of (no logs sent).
    chain.gateway.fund(eth(1), U256::ZERO).await.unwrap();
    other.fund(eth(1), U256::ZERO).await.unwrap();
    assert_eq!(sender(&watcher, h).await.info.deposit, eth(1), "cached");
    watcher.send(head(view.block + 1)).await.unwrap();
    assert_eq!(sender(&watcher, h).await.info.deposit, eth(1), "asked within the TTL: kept at a new block");
    let asked = Instant::now();

    while asked.elapsed() <= ttl {
        tokio::time::sleep(ttl / 4).await;
    }
    watcher.send(head(view.block + 2)).await.unwrap();
    assert_eq!(sender(&watcher, h).await.info.deposit, eth(2), "dropped after the TTL, so read again");
    assert_eq!(sender(&watcher, g).await.info.deposit, eth(1), "the gateway's own account is kept");
}

#[actix::test]
async fn a_new_round_reads_every_cached_sender_again() {
    let chain = Chain::start().await;
    let (watcher, _) = chain.watcher(SenderWatcher::new(chain.orchestrator.clone())).await;
    let g = key(2).address();
    assert_eq!(sender(&watcher, g).await.info.reserve, eth(1));
    chain.gateway.fund(U256::ZERO, eth(1)).await.unwrap();
    let round = chain.round().await;
    watcher.send(RoundChanged(RoundInfo { round: round.round + 1, ..round })).await.unwrap();
    eventually("the reserve read again at the new round", || async {
        (sender(&watcher, g).await.info.reserve == eth(2)).then_some(())
    })
    .await;
}

/// go-livepeer's max float (§4.5): the reserve split over the pool's members, and less the face
/// value of this node's redemptions in flight once that is more than a third of the deposit.
#[actix::test]
async fn the_max_float_is_the_reserves_share_of_the_pool_less_the_face_value_in_flight() {
    let chain = Chain::start().await;
    let (watcher, _) = chain.watcher(SenderWatcher::new(chain.orchestrator.clone())).await;
    let g = key(2).address();
    let round = chain.round().await;
    watcher.send(RoundChanged(RoundInfo { pool_size: 1, ..round.clone() })).await.unwrap();
    assert_eq!(sender(&watcher, g).await.max_float, eth(1), "the whole reserve for a pool of one");
    watcher.send(RoundChanged(RoundInfo { pool_size: 4, ..round.clone() })).await.unwrap();
    assert_eq!(sender(&watcher, g).await.max_float, eth(1) / U256::from(4), "a quarter each for four");

    watcher.send(RoundChanged(RoundInfo { pool_size: 1, ..round })).await.unwrap();
    let half = eth(1) / U256::from(2);
    watcher.send(PendingChanged { sender: g, pending: half }).await.unwrap();
    assert_eq!(sender(&watcher, g).await.max_float, half, "less what is being redeemed");
    watcher.send(PendingChanged { sender: g, pending: U256::ZERO }).await.unwrap();
    assert_eq!(sender(&watcher, g).await.max_float, eth(1), "all of it once the redemption is done");
}

#[actix::test]
async fn the_chain_view_takes_the_redeemers_gas_and_its_block_never_goes_backwards() {
    let chain = Chain::start().await;
    let (watcher, view) = chain.watcher(SenderWatcher::new(chain.orchestrator.clone())).await;
    assert_eq!(view.redeem_gas, None, "no estimate before the redeemer's");
    assert!(view.recipient_active, "a gateway's watcher watches no recipient");
    watcher.send(RedeemGas(123_456)).await.unwrap();
    watcher.send(head(view.block + 10)).await.unwrap();
    // A reorg to a shorter chain: parameters already expired must stay expired.
    watcher.send(head(view.block + 5)).await.unwrap();
    let now = watcher.send(GetChainView).await.unwrap().unwrap();
    assert_eq!((now.block, now.redeem_gas), (view.block + 10, Some(123_456)));
}

#[actix::test]
async fn an_orchestrator_is_seen_active_from_the_round_it_joins() {
    let chain = Chain::start().await;
    let o = key(1).address();
    let (watcher, _) = chain.watcher(SenderWatcher::new(chain.orchestrator.clone()).recipient(o)).await;
    assert!(!watcher.send(GetChainView).await.unwrap().unwrap().recipient_active, "not registered");

    chain.orchestrator.register(eth(500), 0, 1_000_000, "https://o.test:8935").await.unwrap();
    let round = chain.round().await;
    let provider = http_provider(&chain.url).unwrap();
    let block = provider.get_block_number().await.unwrap();
    provider.anvil_mine(Some(round.start_block + round.length - block), None).await.unwrap();
    chain.orchestrator.initialize_round().await.unwrap();
    watcher.send(RoundChanged(chain.round().await)).await.unwrap();
    eventually("the orchestrator active in the new round", || async {
        watcher.send(GetChainView).await.unwrap().unwrap().recipient_active.then_some(())
    })
    .await;
}

/// A gateway's own account is read at start; asked before that read is back, the watcher reads
/// it then: it never answers the empty funds it starts from.
#[actix::test]
async fn a_gateways_own_funds_are_never_answered_before_they_are_read() {
    let chain = Chain::start().await;
    let g = key(2).address();
    let watcher = SenderWatcher::new(chain.gateway.clone()).own(g).start();
    assert_eq!(sender(&watcher, g).await.info.deposit, eth(1));
}

/// A read of a sender that fails (the endpoint is down) leaves its cached funds answered, and is
/// made again at a next block once the endpoint is back, with no event naming the sender (blocks
/// keep coming: the read's failure lands some time after the endpoint went down).
#[actix::test]
async fn a_failed_read_answers_the_cache_and_is_made_again_at_the_next_block() {
    let chain = Chain::start().await;
    let proxy = lp_testkit::net::Proxy::start(chain.anvil.port());
    let client = Chain::client(&proxy.url(), chain.controller, 1).await;
    let (watcher, view) = chain.watcher(SenderWatcher::new(client)).await;
    let g = key(2).address();
    assert_eq!(sender(&watcher, g).await.info.deposit, eth(1));

    let receipt = chain.gateway.fund(eth(1), U256::ZERO).await.unwrap();
    proxy.take_down();
    watcher.send(ChainEvent::Logs(Arc::new(receipt.inner.logs().to_vec()))).await.unwrap();
    eventually("the read after the event tried", || async { (proxy.dropped() > 0).then_some(()) }).await;
    assert_eq!(sender(&watcher, g).await.info.deposit, eth(1), "the cached funds, while the endpoint is down");

    proxy.bring_back();
    let mut block = view.block;
    eventually("the failed read made again at the next block", || {
        block += 1;
        let watcher = watcher.clone();
        async move {
            watcher.send(head(block)).await.unwrap();
            (sender(&watcher, g).await.info.deposit == eth(2)).then_some(())
        }
    })
    .await;
}

/// Whether the orchestrator is active is read at each new round; a read that fails there is made
/// again at a next block (else the last round's answer would hold the whole round: an
/// orchestrator that joins would refuse every ticket until the round after), and so is one a
/// restart cut short.
#[actix::test]
async fn a_failed_or_interrupted_read_of_the_orchestrators_activity_is_made_again() {
    use lp_actors::supervision::{InjectPanic, Policy, Watchdog};
    let chain = Chain::start().await;
    let o = key(1).address();
    let proxy = lp_testkit::net::Proxy::start(chain.anvil.port());
    let client = Chain::client(&proxy.url(), chain.controller, 1).await;
    let watchdog = Watchdog::new();
    let watcher = watchdog.start("sender_watcher", Policy::Permanent, SenderWatcher::new(client).recipient(o));
    let view = chain_view(&watcher).await.expect("the first chain view");
    assert!(!view.recipient_active, "not registered");

    // Registered: active from the next round, whose read fails.
    chain.orchestrator.register(eth(500), 0, 1_000_000, "https://o.test:8935").await.unwrap();
    let round = chain.round().await;
    let provider = http_provider(&chain.url).unwrap();
    let block = provider.get_block_number().await.unwrap();
    provider.anvil_mine(Some(round.start_block + round.length - block), None).await.unwrap();
    chain.orchestrator.initialize_round().await.unwrap();
    proxy.take_down();
    watcher.send(RoundChanged(chain.round().await)).await.unwrap();
    eventually("the read at the new round tried", || async { (proxy.dropped() > 0).then_some(()) }).await;
    proxy.bring_back();
    let mut block = view.block;
    eventually("the failed read made again at a next block", || {
        block += 1;
        let watcher = watcher.clone();
        async move {
            watcher.send(head(block)).await.unwrap();
            watcher.send(GetChainView).await.unwrap().unwrap().recipient_active.then_some(())
        }
    })
    .await;

    // It unbonds all its stake: not active from the next round. That round's read hangs, and
    // the watcher restarts meanwhile (the read is gone with the old context): a later block
    // reads again.
    chain.orchestrator.unbond(eth(500)).await.unwrap();
    let round = chain.round().await;
    provider.anvil_mine(Some(round.length), None).await.unwrap();
    chain.orchestrator.initialize_round().await.unwrap();
    let held = proxy.held();
    proxy.hang();
    watcher.send(RoundChanged(chain.round().await)).await.unwrap();
    common::wait_until("the read at the new round to hang", || proxy.held() > held).await;
    watcher.do_send(InjectPanic);
    watcher.send(head(block + 1)).await.expect("the same address, restarted");
    assert_eq!(watchdog.report()[0].restarts, 1);
    proxy.bring_back();
    eventually("the read made again after the restart", || {
        block += 1;
        let watcher = watcher.clone();
        async move {
            watcher.send(head(block)).await.unwrap();
            (!watcher.send(GetChainView).await.unwrap().unwrap().recipient_active).then_some(())
        }
    })
    .await;
}

/// An answer for the current round is not read again at each block: blocks come every quarter
/// second on Arbitrum. (Through a proxy that notes each RPC method; this watcher watches no
/// sender, so its only `eth_call` at a block would be that read.)
#[actix::test]
async fn whether_the_orchestrator_is_active_is_read_once_a_round() {
    let chain = Chain::start().await;
    let proxy = lp_testkit::net::RewritingProxy::start(chain.anvil.port(), |_| {});
    let client = Chain::client(&proxy.url(), chain.controller, 1).await;
    let (watcher, view) = chain.watcher(SenderWatcher::new(client).recipient(key(1).address())).await;
    let calls = || proxy.methods().iter().filter(|m| *m == "eth_call").count();
    let read = calls();
    for block in view.block + 1..view.block + 6 {
        watcher.send(head(block)).await.unwrap();
    }
    assert_eq!(
        watcher.send(GetChainView).await.unwrap().expect("a view").block,
        view.block + 5,
        "the blocks were seen"
    );
    // A read would reach the proxy within milliseconds on loopback; none does in half a second.
    let until = Instant::now() + std::time::Duration::from_millis(500);
    while Instant::now() < until {
        assert_eq!(calls(), read, "no read of the activity again within the round");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// A node whose chain endpoint is down answers "no chain view" after `VIEW_WAIT`: it does not
/// hold a request for ever.
#[actix::test]
async fn the_chain_view_is_waited_for_at_most_view_wait() {
    let chain = Chain::start().await;
    let proxy = lp_testkit::net::Proxy::start(chain.anvil.port());
    let client = Chain::client(&proxy.url(), chain.controller, 1).await;
    proxy.take_down();
    let watcher = SenderWatcher::new(client).start();
    let asked = Instant::now();
    assert_eq!(chain_view(&watcher).await, None);
    let waited = asked.elapsed();
    assert!(waited >= VIEW_WAIT && waited < VIEW_WAIT * 3, "{waited:?}");
}
