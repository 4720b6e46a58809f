//! The `Redeemer` against a real local chain (anvil) with our devnet contracts and a real SQLite
//! store: real winning tickets (the recipient an active transcoder, winProb = 2^256 − 1, signed
//! by a funded sender) are queued, redeemed once their parameters expire, batched, retried
//! through a lack of funds and an RPC endpoint that is down, recorded when someone else redeemed
//! them or they expired, redeemed after a restart and after a panic. Each outcome is also
//! counted: `livepeer_value_redeemed`, `livepeer_ticket_redemption_errors{error}`.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use alloy::primitives::{Address, B256, U256};
use alloy::providers::ext::AnvilApi;
use alloy::providers::{DynProvider, Provider};
use alloy::signers::local::PrivateKeySigner;
use common::Metrics;
use lp_actors::chain::{
    ChainEvent, ChainSettings, GetPending, PendingChanged, RedeemGas, Redeemer, SetGasListener, SetPendingListener,
};
use lp_actors::store::{QueueWinningTicket, Store, WinningTickets};
use lp_actors::supervision::{InjectPanic, Watchdog};
use lp_chain::anvil::{Anvil, AnvilOptions, DEV_KEYS};
use lp_chain::client::{ChainClient, http_provider};
use lp_chain::db::{DB_FILE, TicketStatus, WinningTicketRow};
use lp_chain::devnet::{DevnetParams, deploy};
use lp_chain::pm::{self, Ticket, WinningTicket};
use lp_chain::tx::TxPolicy;
use lp_testkit::net::Proxy;
use parking_lot::Mutex;

const ONE: u128 = 1_000_000_000_000_000_000;
const TIMEOUT: Duration = Duration::from_secs(30);

fn eth_tenths(n: u128) -> U256 {
    U256::from(n * ONE / 10)
}

fn key(i: usize) -> PrivateKeySigner {
    DEV_KEYS[i].parse().unwrap()
}

async fn client(url: &str, controller: Address, i: usize) -> ChainClient {
    ChainClient::connect(url, controller, Some(key(i)), TxPolicy::default()).await.unwrap()
}

/// A devnet (rounds of 50 blocks) where account 1, the orchestrator, is an active transcoder,
/// and account 2 is the sender; the tests start just after a round was initialized.
struct Net {
    anvil: Anvil,
    controller: Address,
    provider: DynProvider,
    o: Arc<ChainClient>,
    s: ChainClient,
}

impl Net {
    async fn start() -> Net {
        let anvil = Anvil::spawn(AnvilOptions::default()).expect("anvil (run `make setup`, or set ANVIL_BIN)");
        let url = anvil.url();
        let o_addr = key(1).address();
        let params = DevnetParams { round_length: 50, ..Default::default() };
        let d = deploy(&url, DEV_KEYS[0], &params, &[(o_addr, U256::from(1000 * ONE))]).await.unwrap();
        let controller = d.contracts.controller;
        let net = Net {
            provider: http_provider(&url).unwrap(),
            o: Arc::new(client(&url, controller, 1).await),
            s: client(&url, controller, 2).await,
            controller,
            anvil,
        };
        net.next_round().await;
        net.o.register(U256::from(500 * ONE), 100_000, 500_000, "https://127.0.0.1:8935").await.unwrap();
        net.next_round().await;
        assert!(net.o.status(o_addr).await.unwrap().active);
        net
    }

    fn o_addr(&self) -> Address {
        self.o.address().unwrap()
    }

    fn s_addr(&self) -> Address {
        self.s.address().unwrap()
    }

    async fn head(&self) -> u64 {
        self.o.block_number().await.unwrap()
    }

    async fn mine(&self, blocks: u64) {
        self.provider.anvil_mine(Some(blocks), None).await.unwrap();
    }

    /// Mine to the next round and initialize it (its first block).
    async fn next_round(&self) {
        let r = self.o.current_round().await.unwrap();
        let head = self.head().await;
        let last = r.start_block + r.length - 1;
        if last > head {
            self.mine(last - head).await;
        }
        self.o.initialize_round().await.unwrap();
    }

    /// A winning ticket from the sender to the orchestrator, created in the current round, whose
    /// parameters expire `expires_in` blocks from now.
    async fn ticket(&self, face_value: U256, nonce: u64, expires_in: u64) -> WinningTicket {
        let round = self.o.current_round().await.unwrap();
        let aux = pm::aux_data(round.last_initialized_round, round.block_hash_of_last_initialized);
        self.ticket_with(face_value, nonce, expires_in, aux).await
    }

    async fn ticket_with(
        &self,
        face_value: U256,
        nonce: u64,
        expires_in: u64,
        aux: alloy::primitives::Bytes,
    ) -> WinningTicket {
        let recipient_rand = U256::from(0x5eed_0000u64 + nonce);
        let ticket = Ticket {
            recipient: self.o_addr(),
            sender: self.s_addr(),
            faceValue: face_value,
            winProb: U256::MAX,
            senderNonce: U256::from(nonce),
            recipientRandHash: pm::recipient_rand_hash(recipient_rand),
            auxData: aux,
        };
        let sig = pm::sign(&key(2), pm::ticket_hash(&ticket)).unwrap().to_vec().into();
        WinningTicket { ticket, sig, recipient_rand, params_expiration_block: self.head().await + expires_in }
    }

    async fn fund_sender(&self) {
        self.s.fund(U256::from(ONE), U256::from(ONE)).await.unwrap();
    }

    async fn fees(&self) -> U256 {
        self.o.status(self.o_addr()).await.unwrap().pending_fees
    }

    /// A redeemer for the orchestrator whose transactions follow `policy`, and a ticket of
    /// 0.1 ETH queued for it and due now.
    async fn queued_for(&self, policy: TxPolicy, store: &Store) -> (Addr<Redeemer>, WinningTicket) {
        let client = ChainClient::connect(&self.anvil.url(), self.controller, Some(key(1)), policy).await.unwrap();
        let redeemer = Redeemer::new(Arc::new(client), store.clone()).start();
        let t = self.ticket(eth_tenths(1), 1, 1).await;
        store.send(QueueWinningTicket(t.clone())).await.unwrap();
        self.mine(1).await;
        (redeemer, t)
    }

    /// Tell the redeemer of the chain's head, as the block watcher does.
    async fn tick(&self, redeemer: &Addr<Redeemer>) -> u64 {
        let number = self.head().await;
        redeemer.do_send(ChainEvent::NewHead { number, hash: B256::ZERO, l1_number: number });
        number
    }
}

fn hash(t: &WinningTicket) -> B256 {
    pm::ticket_hash(&t.ticket)
}

async fn rows(store: &Store) -> Vec<WinningTicketRow> {
    store.send(WinningTickets(None)).await.unwrap()
}

async fn row(store: &Store, t: &WinningTicket) -> WinningTicketRow {
    let h = hash(t);
    rows(store).await.into_iter().find(|r| r.ticket_hash == h).expect("the ticket is in the database")
}

/// Wait until the ticket's row satisfies `f`.
async fn wait_row(
    store: &Store,
    t: &WinningTicket,
    what: &str,
    f: impl Fn(&WinningTicketRow) -> bool,
) -> WinningTicketRow {
    let started = Instant::now();
    loop {
        let r = row(store, t).await;
        if f(&r) {
            return r;
        }
        assert!(started.elapsed() < TIMEOUT, "never {what}: {r:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn redeemed(store: &Store, t: &WinningTicket) -> WinningTicketRow {
    wait_row(store, t, "redeemed", |r| r.status == TicketStatus::Redeemed).await
}

/// Give a pass that should change nothing the time to run (a negative check).
async fn settle() {
    tokio::time::sleep(Duration::from_millis(500)).await;
}

async fn open_store(dir: &Path) -> Store {
    Store::open_in(dir).await.unwrap()
}

/// Collects the redeemer's [`PendingChanged`].
#[derive(Default)]
struct Listener(Arc<Mutex<Vec<PendingChanged>>>);

impl Actor for Listener {
    type Context = Context<Self>;
}

impl Handler<PendingChanged> for Listener {
    type Result = ();
    fn handle(&mut self, m: PendingChanged, _: &mut Self::Context) {
        self.0.lock().push(m);
    }
}

/// Collects the redeemer's [`RedeemGas`] estimates (what the sender watcher is told).
#[derive(Default)]
struct GasListener(Arc<Mutex<Vec<u64>>>);

impl Actor for GasListener {
    type Context = Context<Self>;
}

impl Handler<RedeemGas> for GasListener {
    type Result = ();
    fn handle(&mut self, RedeemGas(gas): RedeemGas, _: &mut Self::Context) {
        self.0.lock().push(gas);
    }
}

#[actix::test]
async fn a_queued_ticket_is_redeemed_once_its_parameters_expire() {
    let metrics = Metrics::local();
    let net = Net::start().await;
    net.fund_sender().await;
    let tmp = tempfile::tempdir().unwrap();
    let store = open_store(tmp.path()).await;
    let face_value = eth_tenths(1);
    let t = net.ticket(face_value, 1, 3).await;
    store.send(QueueWinningTicket(t.clone())).await.unwrap();
    store.send(QueueWinningTicket(t.clone())).await.unwrap();
    assert_eq!(rows(&store).await.len(), 1, "queued once");
    let fees_before = net.fees().await;

    let listener = Listener::default();
    let seen = listener.0.clone();
    let redeemer = Redeemer::new(net.o.clone(), store.clone()).start();
    redeemer.send(SetPendingListener(listener.start().recipient())).await.unwrap();
    let gas_listener = GasListener::default();
    let estimates = gas_listener.0.clone();
    redeemer.send(SetGasListener(gas_listener.start().recipient())).await.unwrap();

    // Not before its parameters expire: recipientRand stays secret until then.
    net.tick(&redeemer).await;
    settle().await;
    let r = row(&store, &t).await;
    assert_eq!((r.status, r.attempts), (TicketStatus::Pending, 0));

    net.mine(3).await;
    let head = net.tick(&redeemer).await;
    assert!(head >= t.params_expiration_block);
    let r = redeemed(&store, &t).await;
    assert_eq!(r.attempts, 1);
    assert_eq!(r.paid, Some(face_value));
    assert_eq!(r.last_error, None);
    let tx = r.tx_hash.expect("the redeeming transaction");
    let gas = r.gas_used.expect("its gas");
    assert!(gas > 21_000, "{gas}");
    eprintln!("gas of one ticket redeemed alone (redeemWinningTicket): {gas}, tx {tx}");
    assert!(net.o.is_used_ticket(hash(&t)).await.unwrap());
    assert_eq!(net.fees().await, fees_before + face_value, "the orchestrator's fees rose by the face value");
    assert_eq!(metrics.value("livepeer_value_redeemed"), Some(1e8), "0.1 ETH, in gwei");

    // The face value was in flight while the redemption was sent, and is no more.
    let s = net.s_addr();
    assert_eq!(
        *seen.lock(),
        [PendingChanged { sender: s, pending: face_value }, PendingChanged { sender: s, pending: U256::ZERO }]
    );
    assert_eq!(redeemer.send(GetPending(s)).await.unwrap(), U256::ZERO);
    // Its gas was estimated before it was sent, and the estimate published.
    let estimates = estimates.lock().clone();
    assert_eq!(estimates.len(), 1, "{estimates:?}");
    assert!(estimates[0] >= gas && estimates[0] < gas * 2, "estimated {estimates:?}, used {gas}");

    // Redeemed stays redeemed: no second attempt.
    net.mine(1).await;
    net.tick(&redeemer).await;
    settle().await;
    assert_eq!(row(&store, &t).await.attempts, 1);
}

#[actix::test]
async fn tickets_due_in_the_same_block_are_redeemed_in_one_batch() {
    let net = Net::start().await;
    net.fund_sender().await;
    let tmp = tempfile::tempdir().unwrap();
    let store = open_store(tmp.path()).await;
    let redeemer = Redeemer::new(net.o.clone(), store.clone()).start();
    let gas_listener = GasListener::default();
    let estimates = gas_listener.0.clone();
    redeemer.send(SetGasListener(gas_listener.start().recipient())).await.unwrap();
    let face_value = eth_tenths(1);

    // Two alone, for their gas: the first fees of a round cost more (storage written from zero).
    let mut single_gas = Vec::new();
    for nonce in [1, 2] {
        let alone = net.ticket(face_value, nonce, 1).await;
        store.send(QueueWinningTicket(alone.clone())).await.unwrap();
        net.mine(1).await;
        net.tick(&redeemer).await;
        single_gas.push(redeemed(&store, &alone).await.gas_used.unwrap());
    }
    let alone_tx = rows(&store).await.iter().filter_map(|r| r.tx_hash).collect::<Vec<_>>();

    // Four due at the same block.
    const N: u64 = 4;
    let fees_before = net.fees().await;
    let mut batch = Vec::new();
    for nonce in 3..3 + N {
        let t = net.ticket(face_value, nonce, 2).await;
        store.send(QueueWinningTicket(t.clone())).await.unwrap();
        batch.push(t);
    }
    net.mine(2).await;
    net.tick(&redeemer).await;
    let mut txs = Vec::new();
    let mut gas = Vec::new();
    for t in &batch {
        let r = redeemed(&store, t).await;
        assert_eq!((r.attempts, r.paid), (1, Some(face_value)));
        txs.push(r.tx_hash.unwrap());
        gas.push(r.gas_used.unwrap());
    }
    txs.dedup();
    gas.dedup();
    assert_eq!(txs.len(), 1, "one transaction for all: {txs:?}");
    assert!(!alone_tx.contains(&txs[0]));
    assert_eq!(net.fees().await, fees_before + face_value * U256::from(N), "fees rose by the sum");
    let per_ticket = gas[0] / N;
    eprintln!(
        "gas per ticket: {} alone as the round's first, {} alone after it (redeemWinningTicket); {per_ticket} each \
         in a batch of {N} (batchRedeemWinningTickets used {} in all, tx {})",
        single_gas[0], single_gas[1], gas[0], txs[0]
    );
    assert!(per_ticket < single_gas[1], "batching saves gas: {per_ticket} vs {}", single_gas[1]);

    // The batch is sent with gas for all its tickets: their estimates, and the margin.
    let estimates = estimates.lock().clone();
    assert_eq!(estimates.len(), 2 + N as usize, "{estimates:?}");
    let estimated: u64 = estimates[2..].iter().sum();
    let sent = net.provider.get_transaction_by_hash(txs[0]).await.unwrap().expect("the batch's transaction");
    assert_eq!(
        alloy::consensus::Transaction::gas_limit(&sent),
        estimated + estimated * lp_actors::chain::redeemer::BATCH_GAS_MARGIN_PERCENT / 100
    );
}

#[actix::test]
async fn a_ticket_whose_sender_cannot_pay_yet_is_retried_until_it_is_funded() {
    let metrics = Metrics::local();
    let net = Net::start().await;
    let tmp = tempfile::tempdir().unwrap();
    let store = open_store(tmp.path()).await;
    let redeemer = Redeemer::new(net.o.clone(), store.clone()).start();
    let face_value = eth_tenths(1);
    let t = net.ticket(face_value, 1, 1).await;
    store.send(QueueWinningTicket(t.clone())).await.unwrap();
    net.mine(1).await;

    // The broker refuses it: kept, with the reason, and tried again after 1, then 2 blocks.
    let head = net.tick(&redeemer).await;
    let r = wait_row(&store, &t, "attempted", |r| r.attempts == 1).await;
    assert_eq!(r.status, TicketStatus::Pending);
    assert!(r.last_error.as_deref().unwrap().contains("sender deposit and reserve are zero"), "{r:?}");
    assert_eq!(r.next_attempt_block, head + 1);
    net.mine(1).await;
    let head = net.tick(&redeemer).await;
    let r = wait_row(&store, &t, "attempted twice", |r| r.attempts == 2).await;
    assert_eq!((r.status, r.next_attempt_block), (TicketStatus::Pending, head + 2));
    // Not before its next attempt is due.
    net.mine(1).await;
    net.tick(&redeemer).await;
    settle().await;
    assert_eq!(row(&store, &t).await.attempts, 2);

    let fees_before = net.fees().await;
    net.fund_sender().await;
    net.mine(1).await;
    net.tick(&redeemer).await;
    let r = redeemed(&store, &t).await;
    assert_eq!((r.attempts, r.paid), (3, Some(face_value)));
    assert!(r.tx_hash.is_some());
    assert_eq!(net.fees().await, fees_before + face_value);
    assert_eq!(metrics.value(r#"livepeer_ticket_redemption_errors{error="revert"}"#), Some(2.0));
}

/// A gas price above the redeemer's `max_gas_price` sends nothing: the ticket is kept for the
/// next block, and the error counted as `gas_price`.
#[actix::test]
async fn a_gas_price_above_the_maximum_keeps_the_ticket_for_a_later_block() {
    let metrics = Metrics::local();
    let net = Net::start().await;
    net.fund_sender().await;
    let tmp = tempfile::tempdir().unwrap();
    let store = open_store(tmp.path()).await;
    let (redeemer, t) = net.queued_for(TxPolicy { max_gas_price: 1, ..TxPolicy::default() }, &store).await;

    let head = net.tick(&redeemer).await;
    let r = wait_row(&store, &t, "attempted", |r| r.attempts == 1).await;
    assert_eq!((r.status, r.next_attempt_block), (TicketStatus::Pending, head + 1));
    assert!(r.last_error.as_deref().unwrap().contains("above the configured maximum of 1 wei"), "{r:?}");
    assert_eq!(metrics.value(r#"livepeer_ticket_redemption_errors{error="gas_price"}"#), Some(1.0));
    assert!(!net.o.is_used_ticket(hash(&t)).await.unwrap());
}

/// A redemption that is not mined within the policy's timeout (automine off, no replacement
/// allowed) keeps the ticket for a later block, and the error is counted as `timeout`.
#[actix::test]
async fn a_redemption_not_mined_in_time_keeps_the_ticket_for_a_later_block() {
    let metrics = Metrics::local();
    let net = Net::start().await;
    net.fund_sender().await;
    let tmp = tempfile::tempdir().unwrap();
    let store = open_store(tmp.path()).await;
    let policy = TxPolicy {
        timeout: Duration::from_millis(300),
        max_replacements: 0,
        receipt_poll_interval: Duration::from_millis(50),
        ..TxPolicy::default()
    };
    let (redeemer, t) = net.queued_for(policy, &store).await;

    net.provider.anvil_set_auto_mine(false).await.unwrap();
    let head = net.tick(&redeemer).await;
    let r = wait_row(&store, &t, "attempted", |r| r.attempts == 1).await;
    assert_eq!((r.status, r.next_attempt_block, r.tx_hash), (TicketStatus::Pending, head + 1, None));
    assert_eq!(metrics.value(r#"livepeer_ticket_redemption_errors{error="timeout"}"#), Some(1.0), "{r:?}");
    net.provider.anvil_set_auto_mine(true).await.unwrap();
}

/// The broker skips, silently, a ticket that fails inside a batch. Here the sender drains its
/// deposit with another ticket mined just before the batch (automine off, the rival paying a
/// higher gas price): both tickets of the batch are skipped, so each is tried alone, which gives
/// the broker's reason, and kept; once the sender funds again they are redeemed.
#[actix::test]
async fn tickets_a_batch_skipped_are_tried_alone_for_their_reason_and_kept() {
    let net = Net::start().await;
    net.s.fund(eth_tenths(2), U256::ZERO).await.unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let store = open_store(tmp.path()).await;
    let redeemer = Redeemer::new(net.o.clone(), store.clone()).start();
    let (a, b) = (net.ticket(eth_tenths(1), 1, 1).await, net.ticket(eth_tenths(1), 2, 1).await);
    let rival = net.ticket(eth_tenths(2), 3, 0).await;
    for t in [&a, &b] {
        store.send(QueueWinningTicket(t.clone())).await.unwrap();
    }
    net.mine(1).await;

    net.provider.anvil_set_auto_mine(false).await.unwrap();
    let pending_tx = |who: Address| {
        let provider = net.provider.clone();
        async move {
            let started = Instant::now();
            loop {
                let pending = provider.get_transaction_count(who).pending().await.unwrap();
                if pending > provider.get_transaction_count(who).latest().await.unwrap() {
                    return;
                }
                assert!(started.elapsed() < TIMEOUT, "{who} never sent its transaction");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    net.tick(&redeemer).await;
    pending_tx(net.o_addr()).await;
    // The rival transaction, at 100 gwei, is ordered first in the block. (Its gas is fixed:
    // anvil estimates on the pending block, where the batch already took the deposit.)
    let policy = TxPolicy { min_gas_price: 100_000_000_000, gas_limit: 500_000, ..TxPolicy::default() };
    let sender = ChainClient::connect(&net.anvil.url(), net.controller, Some(key(2)), policy).await.unwrap();
    let rival_sent = actix::spawn(async move { sender.redeem_winning_ticket(&rival).await });
    pending_tx(net.s_addr()).await;
    net.mine(1).await;
    net.provider.anvil_set_auto_mine(true).await.unwrap();
    rival_sent.await.unwrap().expect("the rival redemption");

    for t in [&a, &b] {
        let r = wait_row(&store, t, "attempted", |r| r.attempts == 1).await;
        assert_eq!((r.status, r.tx_hash), (TicketStatus::Pending, None));
        assert!(r.last_error.as_deref().unwrap().contains("sender deposit and reserve are zero"), "{r:?}");
        assert!(!net.o.is_used_ticket(hash(t)).await.unwrap());
    }

    let fees_before = net.fees().await;
    net.fund_sender().await;
    net.mine(1).await;
    net.tick(&redeemer).await;
    let (ra, rb) = (redeemed(&store, &a).await, redeemed(&store, &b).await);
    assert_eq!((ra.attempts, rb.attempts), (2, 2));
    assert_eq!(ra.tx_hash, rb.tx_hash);
    assert_eq!(net.fees().await, fees_before + eth_tenths(2));
}

#[actix::test]
async fn tickets_wait_while_the_rpc_endpoint_is_down_and_are_redeemed_when_it_returns() {
    let metrics = Metrics::local();
    let net = Net::start().await;
    net.fund_sender().await;
    let proxy = Proxy::start(net.anvil.port());
    // The orchestrator's redeemer reaches the chain through the proxy only.
    let through_proxy = Arc::new(client(&proxy.url(), net.controller, 1).await);
    let tmp = tempfile::tempdir().unwrap();
    let store = open_store(tmp.path()).await;
    let redeemer = Redeemer::new(through_proxy, store.clone()).start();
    let (a, b) = (net.ticket(eth_tenths(1), 1, 1).await, net.ticket(eth_tenths(2), 2, 1).await);
    for t in [&a, &b] {
        store.send(QueueWinningTicket(t.clone())).await.unwrap();
    }
    net.mine(1).await;

    proxy.take_down();
    let head = net.tick(&redeemer).await;
    for t in [&a, &b] {
        let r = wait_row(&store, t, "attempted", |r| r.attempts == 1).await;
        assert_eq!((r.status, r.next_attempt_block), (TicketStatus::Pending, head + 1));
        assert!(r.last_error.as_deref().unwrap().contains("RPC error"), "{r:?}");
    }
    net.mine(1).await;
    net.tick(&redeemer).await;
    wait_row(&store, &b, "attempted twice", |r| r.attempts == 2).await;
    assert_eq!(row(&store, &a).await.status, TicketStatus::Pending, "kept while the endpoint is down");

    let fees_before = net.fees().await;
    proxy.bring_back();
    net.mine(2).await;
    net.tick(&redeemer).await;
    let (ra, rb) = (redeemed(&store, &a).await, redeemed(&store, &b).await);
    assert_eq!((ra.attempts, rb.attempts), (3, 3));
    assert_eq!(ra.tx_hash, rb.tx_hash, "redeemed together, in one batch");
    assert_eq!(net.fees().await, fees_before + eth_tenths(3));
    let rpc_errors = metrics.value(r#"livepeer_ticket_redemption_errors{error="rpc"}"#);
    assert_eq!(rpc_errors, Some(4.0), "two failed attempts of each ticket");
    assert_eq!(metrics.value("livepeer_value_redeemed"), Some(3e8));
}

#[actix::test]
async fn a_ticket_someone_else_redeemed_first_is_recorded_and_not_retried() {
    let metrics = Metrics::local();
    let net = Net::start().await;
    net.fund_sender().await;
    let tmp = tempfile::tempdir().unwrap();
    let store = open_store(tmp.path()).await;
    let redeemer = Redeemer::new(net.o.clone(), store.clone()).start();
    let t = net.ticket(eth_tenths(1), 1, 1).await;
    store.send(QueueWinningTicket(t.clone())).await.unwrap();
    // Anyone may send a ticket's redemption (it pays the recipient): here the sender does.
    let fees_before = net.fees().await;
    net.s.redeem_winning_ticket(&t).await.unwrap();
    net.mine(1).await;

    net.tick(&redeemer).await;
    let r = redeemed(&store, &t).await;
    assert_eq!((r.attempts, r.tx_hash, r.gas_used), (1, None, None));
    assert!(r.last_error.as_deref().unwrap().contains("ticket is used"), "{r:?}");
    assert_eq!(net.fees().await, fees_before + eth_tenths(1), "paid once");
    net.mine(1).await;
    net.tick(&redeemer).await;
    settle().await;
    assert_eq!(row(&store, &t).await.attempts, 1, "not retried");
    assert_eq!(metrics.value(r#"livepeer_ticket_redemption_errors{error="used"}"#), Some(1.0));
    assert_eq!(metrics.value("livepeer_value_redeemed"), None, "not by us: nothing counted");
}

#[actix::test]
async fn an_expired_ticket_and_one_without_a_block_hash_are_failed_and_not_retried() {
    let metrics = Metrics::local();
    let net = Net::start().await;
    net.fund_sender().await;
    let tmp = tempfile::tempdir().unwrap();
    let store = open_store(tmp.path()).await;
    let redeemer = Redeemer::new(net.o.clone(), store.clone()).start();
    // Past round 2, where "created + 2 rounds" and "created × 2" part.
    for _ in 0..3 {
        net.next_round().await;
    }
    let round = net.o.current_round().await.unwrap().round;
    assert!(round > 2, "round {round}");
    let old = net.ticket(eth_tenths(1), 1, 1).await;
    // A creation round that has no block hash (a ticket the receiver should never have taken).
    let future = net.ticket_with(eth_tenths(1), 2, 1, pm::aux_data(round + 5, B256::repeat_byte(7))).await;
    for t in [&old, &future] {
        store.send(QueueWinningTicket(t.clone())).await.unwrap();
    }
    // Two rounds later the first is expired.
    net.next_round().await;
    net.next_round().await;
    net.tick(&redeemer).await;
    let r = wait_row(&store, &old, "failed", |r| r.status == TicketStatus::Failed).await;
    // Failed by the redeemer's own check of the broker's rule, before any estimate is asked.
    let expected = format!("created in round {round}, redeemable for 2 rounds, the current round is {}", round + 2);
    assert!(r.last_error.as_deref().unwrap().contains(&expected), "{r:?}");
    let r = wait_row(&store, &future, "failed", |r| r.status == TicketStatus::Failed).await;
    assert!(r.last_error.as_deref().unwrap().contains("ticket creationRound does not have a block hash"), "{r:?}");
    net.mine(1).await;
    net.tick(&redeemer).await;
    settle().await;
    for t in [&old, &future] {
        let r = row(&store, t).await;
        assert_eq!((r.status, r.attempts, r.tx_hash), (TicketStatus::Failed, 1, None), "not retried");
    }
    for error in ["expired", "no_block_hash"] {
        let series = format!(r#"livepeer_ticket_redemption_errors{{error="{error}"}}"#);
        assert_eq!(metrics.value(&series), Some(1.0), "{error}");
    }
}

#[actix::test]
async fn a_ticket_pending_when_the_process_stopped_is_redeemed_after_the_restart() {
    let net = Net::start().await;
    net.fund_sender().await;
    let tmp = tempfile::tempdir().unwrap();
    let t = net.ticket(eth_tenths(1), 1, 3).await;
    let head = net.head().await;

    // The first "process": its own actix system, thread, store and client; it queues the
    // ticket, sees a head at which it is not due yet, and goes away whole.
    let (dir, url, controller, queued) = (tmp.path().to_path_buf(), net.anvil.url(), net.controller, t.clone());
    std::thread::spawn(move || {
        actix::System::new().block_on(async move {
            let store = open_store(&dir).await;
            store.send(QueueWinningTicket(queued)).await.unwrap();
            let o = Arc::new(client(&url, controller, 1).await);
            let redeemer = Redeemer::new(o, store.clone()).start();
            redeemer.do_send(ChainEvent::NewHead { number: head, hash: B256::ZERO, l1_number: head });
            settle().await;
        });
    })
    .join()
    .unwrap();
    assert!(tmp.path().join(DB_FILE).exists());

    // The second starts from the same database file.
    let store = open_store(tmp.path()).await;
    let r = row(&store, &t).await;
    assert_eq!((r.status, r.attempts), (TicketStatus::Pending, 0));
    let fees_before = net.fees().await;
    let redeemer = Redeemer::new(net.o.clone(), store.clone()).start();
    net.mine(3).await;
    net.tick(&redeemer).await;
    let r = redeemed(&store, &t).await;
    assert_eq!(r.attempts, 1);
    assert_eq!(net.fees().await, fees_before + eth_tenths(1));
}

/// Wired by `chain::start` (the block watcher's heads drive it) and supervised: a panic
/// injected into it (`InjectPanic`: nothing the chain answers can make it panic) restarts it in
/// place, and the ticket queued after is still redeemed.
#[actix::test]
async fn the_redeemer_started_with_the_chain_actors_is_restarted_after_a_panic() {
    let net = Net::start().await;
    net.fund_sender().await;
    let tmp = tempfile::tempdir().unwrap();
    let store = open_store(tmp.path()).await;
    let watchdog = Watchdog::with_first_backoff(Duration::from_millis(50));
    let settings = ChainSettings {
        poll_interval: Duration::from_millis(100),
        initialize_round: None,
        reward: false,
        redeem: true,
    };
    let actors = lp_actors::chain::start(net.o.clone(), store.clone(), settings, None, &watchdog);
    let redeemer = actors.redeemer.expect("asked for");
    let listener = Listener::default();
    let seen = listener.0.clone();
    redeemer.send(SetPendingListener(listener.start().recipient())).await.unwrap();

    redeemer.do_send(InjectPanic);
    let started = Instant::now();
    loop {
        let report = watchdog.report();
        if report.iter().any(|p| p.actor == "redeemer" && p.restarts == 1 && p.restarting == 0) {
            break;
        }
        assert!(started.elapsed() < TIMEOUT, "never restarted: {report:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(watchdog.health(), Ok(()));

    let t = net.ticket(eth_tenths(1), 1, 2).await;
    store.send(QueueWinningTicket(t.clone())).await.unwrap();
    net.mine(2).await;
    let r = redeemed(&store, &t).await;
    assert!(r.tx_hash.is_some());
    assert_eq!(seen.lock().len(), 2, "the listener set after the panic was told: {:?}", seen.lock());
}
