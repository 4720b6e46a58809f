//! The chain actors against a real local chain (anvil) with our contracts: the block watcher
//! replays a reorganized range, and the round initializer and reward caller do their jobs.

mod common;

use common::Metrics;

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use alloy::primitives::{Address, B256, U256};
use alloy::providers::Provider;
use alloy::providers::ext::AnvilApi;
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::SolEvent;
use lp_actors::chain::orchestrator_registry::{GetPool, RETRY_AFTER as REGISTRY_RETRY_AFTER};
use lp_actors::chain::reward_caller::{LAST_REWARD_ROUND, RETRY_AFTER, REWARD_CALL_ERRORS};
use lp_actors::chain::round_initializer::{RETRY_AFTER as INIT_RETRY_AFTER, ROUND_INITIALIZE_ERRORS};
use lp_actors::chain::{
    BlockWatcher, ChainEvent, OrchestratorRegistry, PollNow, RewardCaller, RoundChanged, RoundInitializer,
    RoundWatcher, Subscribe, SubscribeRounds,
};
use lp_actors::gateway::SetOrchestrators;
use lp_actors::store::{LastBlock, Orchestrators, Store};
use lp_chain::anvil::{Anvil, AnvilOptions, DEV_KEYS};
use lp_chain::bindings::ServiceRegistry;
use lp_chain::client::{ChainClient, http_provider};
use lp_chain::devnet::{DevnetParams, deploy};
use lp_chain::tx::TxPolicy;
use parking_lot::Mutex;

/// Collects what it is sent, for the test to look at.
#[derive(Default)]
struct Collector {
    chain: Arc<Mutex<Vec<ChainEvent>>>,
    rounds: Arc<Mutex<Vec<RoundChanged>>>,
}

impl Actor for Collector {
    type Context = Context<Self>;
}

impl Handler<ChainEvent> for Collector {
    type Result = ();
    fn handle(&mut self, e: ChainEvent, _: &mut Self::Context) {
        self.chain.lock().push(e);
    }
}

impl Handler<RoundChanged> for Collector {
    type Result = ();
    fn handle(&mut self, e: RoundChanged, _: &mut Self::Context) {
        self.rounds.lock().push(e);
    }
}

/// Answered once everything sent to the collector before it was handled: a watcher publishes a
/// poll's events before it answers the poll, so after `PollNow` and a `Flush` they are all in.
#[derive(Message)]
#[rtype(result = "()")]
struct Flush;

impl Handler<Flush> for Collector {
    type Result = ();
    fn handle(&mut self, _: Flush, _: &mut Self::Context) {}
}

fn lpt(n: u64) -> U256 {
    U256::from(n) * U256::from(10u64).pow(U256::from(18u64))
}

async fn client(url: &str, controller: Address, key: &str) -> ChainClient {
    let signer: PrivateKeySigner = key.parse().unwrap();
    ChainClient::connect(url, controller, Some(signer), TxPolicy::default()).await.unwrap()
}

/// The service URIs in the ServiceURIUpdate logs of `events`, in order.
fn uris(events: &[ChainEvent]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            ChainEvent::Logs(logs) => Some(logs.iter().filter_map(|l| {
                ServiceRegistry::ServiceURIUpdate::decode_log_data(l.data()).ok().map(|d| d.serviceURI)
            })),
            _ => None,
        })
        .flatten()
        .collect()
}

/// anvil with our contracts (rounds of 20 blocks) and dev account 1 as `operator`, holding 1000
/// LPT, its current round initialized; registered as an orchestrator when `register` (active
/// from the next round on).
struct RoundChain {
    anvil: Anvil,
    d: lp_chain::devnet::DevnetDeployment,
    provider: alloy::providers::DynProvider,
    operator: Arc<ChainClient>,
    o: Address,
}

impl RoundChain {
    async fn start(register: bool) -> RoundChain {
        let anvil = Anvil::spawn(AnvilOptions::default()).unwrap();
        let url = anvil.url();
        let params = DevnetParams { round_length: 20, ..Default::default() };
        let o = PrivateKeySigner::from_slice(&alloy::hex::decode(&DEV_KEYS[1][2..]).unwrap()).unwrap().address();
        let d = deploy(&url, DEV_KEYS[0], &params, &[(o, lpt(1000))]).await.unwrap();
        let provider = http_provider(&url).unwrap();
        let operator = Arc::new(client(&url, d.contracts.controller, DEV_KEYS[1]).await);
        if !operator.current_round().await.unwrap().initialized {
            operator.initialize_round().await.unwrap();
        }
        if register {
            operator.register(lpt(500), 100_000, 500_000, "https://127.0.0.1:8935").await.unwrap();
        }
        RoundChain { anvil, d, provider, operator, o }
    }

    /// Mine into the next round; the round as it is then (not yet initialized).
    async fn next_round(&self) -> lp_chain::client::RoundInfo {
        let now = self.operator.current_round().await.unwrap();
        let head = self.operator.block_number().await.unwrap();
        self.provider.anvil_mine(Some(now.start_block + now.length - head), None).await.unwrap();
        self.operator.current_round().await.unwrap()
    }

    /// A client for dev account `i` through `url` (a proxy of this chain).
    async fn client_via(&self, url: &str, i: usize) -> Arc<ChainClient> {
        Arc::new(client(url, self.d.contracts.controller, DEV_KEYS[i]).await)
    }
}

/// anvil with our contracts (rounds of 50 blocks), dev account 1 to change its service URI,
/// and a node database, for the block watcher's tests.
struct UriChain {
    anvil: Anvil,
    url: String,
    d: lp_chain::devnet::DevnetDeployment,
    provider: alloy::providers::DynProvider,
    operator: ChainClient,
    _tmp: tempfile::TempDir,
    store: Store,
}

impl UriChain {
    async fn start() -> UriChain {
        let anvil = Anvil::spawn(AnvilOptions::default()).unwrap();
        let url = anvil.url();
        let d = deploy(&url, DEV_KEYS[0], &DevnetParams { round_length: 50, ..Default::default() }, &[]).await.unwrap();
        let provider = http_provider(&url).unwrap();
        let operator = client(&url, d.contracts.controller, DEV_KEYS[1]).await;
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open_in(tmp.path()).await.unwrap();
        UriChain { anvil, url, d, provider, operator, _tmp: tmp, store }
    }

    /// A block watcher of ServiceURIUpdate events through `provider`, polling when told.
    fn watcher(&self, provider: alloy::providers::DynProvider) -> Addr<BlockWatcher> {
        let topics = vec![ServiceRegistry::ServiceURIUpdate::SIGNATURE_HASH];
        let registry = vec![self.d.contracts.service_registry];
        BlockWatcher::new(provider, self.store.clone(), registry, topics, Duration::from_secs(3600)).start()
    }
}

#[actix::test]
async fn the_block_watcher_replays_a_reorganized_range() {
    let chain = UriChain::start().await;
    let UriChain { url, d, provider, operator, store, .. } = &chain;
    let watcher = chain.watcher(provider.clone());
    let collector = Collector::default();
    let seen = collector.chain.clone();
    let collector = collector.start();
    watcher.send(Subscribe(collector.clone().recipient())).await.unwrap();
    let start = watcher.send(PollNow).await.unwrap().unwrap();

    let snapshot = provider.anvil_snapshot().await.unwrap();
    operator.set_service_uri("https://replaced.example:8935").await.unwrap();
    provider.anvil_mine(Some(2), None).await.unwrap();
    watcher.send(PollNow).await.unwrap().unwrap();
    collector.send(Flush).await.unwrap();
    assert_eq!(uris(&seen.lock()), ["https://replaced.example:8935"]);

    // Another history from the snapshot on, longer than the one the watcher saw. (A new client:
    // the old one's nonce counter remembers the reverted transaction.)
    assert!(provider.anvil_revert(snapshot).await.unwrap());
    let operator = client(url, d.contracts.controller, DEV_KEYS[1]).await;
    operator.set_service_uri("https://canonical.example:8935").await.unwrap();
    provider.anvil_mine(Some(4), None).await.unwrap();
    let head = watcher.send(PollNow).await.unwrap().unwrap();
    collector.send(Flush).await.unwrap();

    let events = seen.lock().clone();
    let reorg = events.iter().position(|e| matches!(e, ChainEvent::Reorg { .. })).expect("a reorg was published");
    match &events[reorg] {
        ChainEvent::Reorg { common_ancestor, replaced } => {
            assert_eq!(*common_ancestor, start, "the fork point is the block before the replaced ones");
            assert_eq!(*replaced, 3);
        }
        _ => unreachable!(),
    }
    assert_eq!(uris(&events[reorg..]), ["https://canonical.example:8935"], "the replaced range is replayed");
    assert!(matches!(events.last(), Some(ChainEvent::NewHead { number, .. }) if *number == head));
    assert_eq!(store.send(LastBlock).await.unwrap().unwrap().0, head);
    assert_eq!(provider.get_block_number().await.unwrap(), head);

    // The tip replaced by another block at the same height, no block after it: a reorg too,
    // replayed from the block after the common ancestor (whose own event was published before).
    operator.set_service_uri("https://ancestor.example:8935").await.unwrap();
    let snapshot = provider.anvil_snapshot().await.unwrap();
    operator.set_service_uri("https://tip-a.example:8935").await.unwrap();
    let tip = watcher.send(PollNow).await.unwrap().unwrap();
    assert!(provider.anvil_revert(snapshot).await.unwrap());
    let operator = client(url, d.contracts.controller, DEV_KEYS[1]).await;
    operator.set_service_uri("https://tip-b.example:8935").await.unwrap();
    seen.lock().clear();
    assert_eq!(watcher.send(PollNow).await.unwrap().unwrap(), tip);
    collector.send(Flush).await.unwrap();
    let events = seen.lock().clone();
    assert!(
        matches!(events.first(), Some(ChainEvent::Reorg { common_ancestor, replaced: 1 }) if *common_ancestor == tip - 1),
        "{events:?}"
    );
    assert_eq!(uris(&events), ["https://tip-b.example:8935"]);
}

/// A range longer than `MAX_LOG_RANGE` is asked for in chunks, with nothing lost at the edge;
/// and a poll that fails (the endpoint down) fails alone: the next one publishes what happened
/// meanwhile, from the stored block.
#[actix::test]
async fn long_ranges_are_read_in_chunks_and_a_failed_poll_is_made_good_by_the_next() {
    use lp_actors::chain::block_watcher::MAX_LOG_RANGE;
    let chain = UriChain::start().await;
    let UriChain { provider, operator, .. } = &chain;
    let proxy = lp_testkit::net::Proxy::start(chain.anvil.port());
    let watcher = chain.watcher(http_provider(&proxy.url()).unwrap());
    let collector = Collector::default();
    let seen = collector.chain.clone();
    let collector = collector.start();
    watcher.send(Subscribe(collector.clone().recipient())).await.unwrap();
    let first = watcher.send(PollNow).await.unwrap().unwrap();
    // No new block: nothing to read or publish, and no failure.
    collector.send(Flush).await.unwrap();
    seen.lock().clear();
    assert_eq!(watcher.send(PollNow).await.unwrap().unwrap(), first);
    collector.send(Flush).await.unwrap();
    assert!(seen.lock().is_empty(), "{:?}", seen.lock());

    // The next poll reads from head + 1: the chunk's last block and the next one's first hold
    // an event each (a block per transaction).
    let head = provider.get_block_number().await.unwrap();
    provider.anvil_mine(Some(MAX_LOG_RANGE - 1), None).await.unwrap();
    operator.set_service_uri("https://before-the-edge.example:8935").await.unwrap();
    operator.set_service_uri("https://after-the-edge.example:8935").await.unwrap();
    assert_eq!(provider.get_block_number().await.unwrap(), head + MAX_LOG_RANGE + 1);
    watcher.send(PollNow).await.unwrap().unwrap();
    collector.send(Flush).await.unwrap();
    let events = std::mem::take(&mut *seen.lock());
    let logs: Vec<&ChainEvent> = events.iter().filter(|e| matches!(e, ChainEvent::Logs(_))).collect();
    assert_eq!(logs.len(), 2, "one Logs event per chunk with events");
    assert_eq!(uris(&events), ["https://before-the-edge.example:8935", "https://after-the-edge.example:8935"]);

    proxy.take_down();
    operator.set_service_uri("https://while-unreachable.example:8935").await.unwrap();
    let e = watcher.send(PollNow).await.unwrap().expect_err("the endpoint is down");
    // The log line names the request that failed.
    assert!(e.to_string().starts_with("head: "), "{e}");
    proxy.bring_back();
    let head = watcher.send(PollNow).await.unwrap().expect("the next poll works");
    collector.send(Flush).await.unwrap();
    let events = seen.lock().clone();
    assert_eq!(uris(&events), ["https://while-unreachable.example:8935"]);
    assert_eq!(head, provider.get_block_number().await.unwrap());
}

#[actix::test]
async fn a_restarted_watcher_backfills_what_happened_while_it_was_down() {
    let chain = UriChain::start().await;
    let UriChain { provider, operator, .. } = &chain;
    let new_watcher = || chain.watcher(provider.clone());
    let first = new_watcher();
    first.send(PollNow).await.unwrap().unwrap();
    drop(first);

    // While no watcher runs.
    operator.set_service_uri("https://while-down.example:8935").await.unwrap();
    provider.anvil_mine(Some(3), None).await.unwrap();

    let second = new_watcher();
    let collector = Collector::default();
    let seen = collector.chain.clone();
    let collector = collector.start();
    second.send(Subscribe(collector.clone().recipient())).await.unwrap();
    second.send(PollNow).await.unwrap().unwrap();
    collector.send(Flush).await.unwrap();
    assert_eq!(uris(&seen.lock()), ["https://while-down.example:8935"]);
}

#[actix::test]
async fn rounds_get_initialized_and_the_orchestrator_rewarded() {
    let chain = RoundChain::start(true).await;
    let (provider, operator, o, d) = (&chain.provider, chain.operator.clone(), chain.o, &chain.d);
    let stake_before = operator.status(o).await.unwrap().total_stake;

    let metrics = Metrics::local();
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open_in(tmp.path()).await.unwrap();
    let watcher = BlockWatcher::new(
        provider.clone(),
        store,
        vec![d.contracts.rounds_manager],
        vec![],
        Duration::from_millis(200),
    )
    .start();
    let rounds = RoundWatcher::new(operator.clone()).start();
    watcher.send(Subscribe(rounds.clone().recipient())).await.unwrap();
    let initializer = RoundInitializer::new(operator.clone(), Duration::ZERO).start();
    let rewarder = RewardCaller::new(operator.clone()).start();
    let collector = Collector::default();
    let seen = collector.rounds.clone();
    for r in [initializer.recipient(), rewarder.recipient(), collector.start().recipient()] {
        rounds.send(SubscribeRounds(r)).await.unwrap();
    }

    // Move into the next round: the initializer initializes it, then the reward caller (the
    // orchestrator is active from this round on) calls reward once.
    let now = operator.current_round().await.unwrap();
    chain.next_round().await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        let s = operator.status(o).await.unwrap();
        if s.last_reward_round == now.round + 1 || Instant::now() > deadline {
            break s;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(status.round.initialized, "the round initializer initialized round {}", now.round + 1);
    assert_eq!(status.round.round, now.round + 1);
    assert!(status.active);
    assert_eq!(status.last_reward_round, now.round + 1, "the reward caller called reward");
    assert!(status.total_stake > stake_before, "reward raised the stake");
    let observed = seen.lock().iter().any(|RoundChanged(r)| r.round == now.round + 1 && r.initialized);
    assert!(observed, "the round watcher published the initialized round");
    assert_eq!(metrics.value(REWARD_CALL_ERRORS), None, "no reward call failed");
    // New heads within the round change nothing: each state of it is told once.
    provider.anvil_mine(Some(3), None).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let told = seen.lock().iter().filter(|RoundChanged(r)| r.round == now.round + 1 && r.initialized).count();
    assert_eq!(told, 1, "the initialized round told {told} times");

    // A subscriber that comes later is told the current round at once.
    let late = Collector::default();
    let told = late.rounds.clone();
    let late = late.start();
    rounds.send(SubscribeRounds(late.clone().recipient())).await.unwrap();
    late.send(Flush).await.unwrap();
    let told = told.lock().clone();
    assert!(matches!(told.as_slice(), [RoundChanged(r)] if r.round == now.round + 1), "{:?}", told.len());
}

/// A reward call that fails (the RPC endpoint down) is counted in `livepeer_reward_call_errors`
/// and made again after [`RETRY_AFTER`]; once the endpoint is back, the orchestrator is rewarded
/// for the round, and nothing more is counted.
#[actix::test]
async fn a_failed_reward_call_is_counted_and_made_again_until_it_succeeds() {
    let chain = RoundChain::start(true).await;
    let (operator, o) = (&chain.operator, chain.o);
    // Active from the next round, which is initialized and not yet rewarded.
    chain.next_round().await;
    operator.initialize_round().await.unwrap();
    let round = operator.current_round().await.unwrap();

    let proxy = lp_testkit::net::Proxy::start(chain.anvil.port());
    let through_proxy = chain.client_via(&proxy.url(), 1).await;
    let metrics = Metrics::local();
    proxy.take_down();
    let started = Instant::now();
    let rewarder = RewardCaller::new(through_proxy).start();
    rewarder.send(RoundChanged(round.clone())).await.unwrap();
    while metrics.value(REWARD_CALL_ERRORS) != Some(1.0) {
        assert!(started.elapsed() < Duration::from_secs(10), "the failed call was not counted");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    proxy.bring_back();
    let deadline = Instant::now() + RETRY_AFTER + Duration::from_secs(20);
    while operator.status(o).await.unwrap().last_reward_round != round.round {
        assert!(Instant::now() < deadline, "not rewarded after the endpoint came back");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(started.elapsed() >= RETRY_AFTER, "made again after the backoff, not at once");
    assert_eq!(metrics.value(REWARD_CALL_ERRORS), Some(1.0), "one failure, then the call succeeded");
}

/// With `gate` down, `send` a message that makes its actor call the chain; once that call has
/// been cut, bring `gate` back. When the message was sent.
async fn one_failed_try(
    gate: &lp_testkit::net::Proxy,
    send: impl std::future::Future<Output = Result<(), MailboxError>>,
) -> Instant {
    gate.take_down();
    let started = Instant::now();
    send.await.unwrap();
    common::wait_until("a call to the endpoint that is down", || gate.dropped() > 0).await;
    gate.bring_back();
    started
}

/// The round initializer reads the round again before it sends anything: news of a round that
/// someone has initialized since costs no transaction, not even a gas estimate; a round still
/// uninitialized is initialized; a failed attempt (the RPC endpoint down) is made again after
/// [`INIT_RETRY_AFTER`].
#[actix::test]
async fn the_round_initializer_reads_the_round_again_and_retries_a_failed_attempt() {
    let metrics = Metrics::local();
    let chain = RoundChain::start(false).await;
    let recorder = lp_testkit::net::RewritingProxy::start(chain.anvil.port(), |_| {});
    let gate = lp_testkit::net::Proxy::start(recorder.port());
    let initializer = RoundInitializer::new(chain.client_via(&gate.url(), 2).await, Duration::ZERO).start();
    let sent =
        || recorder.methods().iter().filter(|m| *m == "eth_estimateGas" || *m == "eth_sendRawTransaction").count();
    let initialized = || async { chain.operator.current_round().await.unwrap().initialized };

    // Stale news: the operator initialized the round after the news was out.
    let stale = chain.next_round().await;
    assert!(!stale.initialized);
    chain.operator.initialize_round().await.unwrap();
    initializer.send(RoundChanged(stale)).await.unwrap();
    // What a read and an estimate would take on anvil, several times over.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(sent(), 0, "{:?}", recorder.methods());
    // The next round, which nobody initializes but the initializer; told twice (the round
    // watcher tells every subscriber at once), it is initialized once.
    let fresh = chain.next_round().await;
    initializer.send(RoundChanged(fresh.clone())).await.unwrap();
    initializer.send(RoundChanged(fresh)).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !initialized().await {
        assert!(Instant::now() < deadline, "the initializer did not initialize the round");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // One estimate and one transaction, both for the fresh round.
    assert_eq!(sent(), 2, "{:?}", recorder.methods());

    // The endpoint down: the attempt fails, and is made again once it is back.
    let next = chain.next_round().await;
    let started = one_failed_try(&gate, initializer.send(RoundChanged(next))).await;
    let deadline = Instant::now() + INIT_RETRY_AFTER + Duration::from_secs(20);
    while !initialized().await {
        assert!(Instant::now() < deadline, "not initialized after the endpoint came back");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(started.elapsed() >= INIT_RETRY_AFTER, "made again after {INIT_RETRY_AFTER:?}, not at once");
    assert_eq!(metrics.value(ROUND_INITIALIZE_ERRORS), Some(1.0), "the failed attempt was counted");
}

/// A round initializer restarted after a panic while it waits to retry a failed call checks
/// the round again at once, not after [`INIT_RETRY_AFTER`]: the retry's timer went with the
/// actor's context.
#[actix::test]
async fn a_round_initializer_restarted_while_it_waits_to_retry_tries_again_at_once() {
    use lp_actors::supervision::{InjectPanic, Policy, Watchdog};

    let chain = RoundChain::start(false).await;
    let gate = lp_testkit::net::Proxy::start(chain.anvil.port());
    let through_gate = chain.client_via(&gate.url(), 2).await;
    let metrics = Metrics::local();
    let watchdog = Watchdog::new();
    let initializer =
        watchdog.start("round_initializer", Policy::Permanent, RoundInitializer::new(through_gate, Duration::ZERO));
    let next = chain.next_round().await;
    gate.take_down();
    initializer.send(RoundChanged(next)).await.unwrap();
    common::wait_until("the failed call to be counted", || metrics.value(ROUND_INITIALIZE_ERRORS) == Some(1.0)).await;
    let failed = Instant::now();
    gate.bring_back();
    initializer.do_send(InjectPanic);
    while !chain.operator.current_round().await.unwrap().initialized {
        assert!(failed.elapsed() < INIT_RETRY_AFTER, "not initialized before the retry would have come");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(watchdog.report()[0].restarts, 1);
}

/// Collects the lists of orchestrators handed to the gateway.
#[derive(Default)]
struct Lists(Arc<Mutex<Vec<Vec<String>>>>);

impl Actor for Lists {
    type Context = Context<Self>;
}

impl Handler<SetOrchestrators> for Lists {
    type Result = ();
    fn handle(&mut self, SetOrchestrators(uris): SetOrchestrators, _: &mut Self::Context) {
        self.0.lock().push(uris);
    }
}

/// The orchestrator registry hands the gateway the active orchestrators' service URIs on a new
/// round and stores every pool member in the database; it reads the pool again within the round
/// (a changed URI arrives without a new round); a failed read (the RPC endpoint down) keeps the
/// last list and is made again after [`REGISTRY_RETRY_AFTER`].
#[actix::test]
async fn the_orchestrator_registry_lists_stores_refreshes_and_retries() {
    let chain = RoundChain::start(true).await;
    let round = chain.next_round().await;
    chain.operator.initialize_round().await.unwrap();
    let round = lp_chain::client::RoundInfo { initialized: true, ..round };
    let gate = lp_testkit::net::Proxy::start(chain.anvil.port());
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open_in(tmp.path()).await.unwrap();
    let lists = Lists::default();
    let seen = lists.0.clone();
    let registry =
        OrchestratorRegistry::new(chain.client_via(&gate.url(), 2).await, store.clone(), lists.start().recipient());
    let registry = registry.refresh_every(Duration::from_millis(500)).start();

    registry.send(RoundChanged(round.clone())).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while seen.lock().is_empty() {
        assert!(Instant::now() < deadline, "no list");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(seen.lock()[0], ["https://127.0.0.1:8935"]);
    let rows = store.send(Orchestrators).await.unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!((rows[0].address, rows[0].service_uri.as_str()), (chain.o, "https://127.0.0.1:8935"));
    assert_eq!(rows[0].activation_round, round.round);
    assert!(!rows[0].stake.is_zero());

    // Within the round: the new URI is read on the next refresh.
    chain.operator.set_service_uri("https://127.0.0.1:9935").await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while seen.lock().last().unwrap() != &["https://127.0.0.1:9935"] {
        assert!(Instant::now() < deadline, "the new URI never came: {:?}", seen.lock());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // An active orchestrator without a service URI is not listed.
    chain.operator.set_service_uri("").await.unwrap();
    while !seen.lock().last().unwrap().is_empty() {
        assert!(Instant::now() < deadline, "an empty URI was listed: {:?}", seen.lock());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    chain.operator.set_service_uri("https://127.0.0.1:9935").await.unwrap();
    while seen.lock().last().unwrap() != &["https://127.0.0.1:9935"] {
        assert!(Instant::now() < deadline, "the URI never came back: {:?}", seen.lock());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // The endpoint down: the reads fail and the last list stays. A second read is tried only
    // once the first one's failure is handled.
    gate.take_down();
    let handed = seen.lock().len();
    let deadline = Instant::now() + Duration::from_secs(10);
    while gate.dropped() < 2 {
        assert!(Instant::now() < deadline, "the registry did not read again");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(registry.send(GetPool).await.unwrap()[0].service_uri, "https://127.0.0.1:9935", "the last list stays");
    assert_eq!(seen.lock().len(), handed, "a failed read hands the gateway nothing");

    // A failed read is made again (here by a registry that refreshes only every minute).
    let gate = lp_testkit::net::Proxy::start(chain.anvil.port());
    let lists = Lists::default();
    let seen = lists.0.clone();
    let registry = OrchestratorRegistry::new(chain.client_via(&gate.url(), 3).await, store, lists.start().recipient());
    let registry = registry.start();
    let started = one_failed_try(&gate, registry.send(RoundChanged(round))).await;
    let deadline = Instant::now() + REGISTRY_RETRY_AFTER + Duration::from_secs(20);
    while seen.lock().is_empty() {
        assert!(Instant::now() < deadline, "no list after the endpoint came back");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(started.elapsed() >= REGISTRY_RETRY_AFTER, "read again after {REGISTRY_RETRY_AFTER:?}, not at once");
    assert_eq!(seen.lock()[0], ["https://127.0.0.1:9935"]);
}

/// Each chain actor's mailbox takes its bound and refuses the next message (each one a message
/// that changes nothing).
#[actix::test]
async fn the_chain_actors_mailboxes_hold_their_bounds() {
    use lp_actors::chain::{
        GetRound, block_watcher, orchestrator_registry, reward_caller, round_initializer, round_watcher,
    };
    use lp_actors::testing::assert_mailbox_bound;
    let chain = RoundChain::start(false).await;
    let initialized = chain.operator.current_round().await.unwrap();
    let not_initialized = lp_chain::client::RoundInfo { initialized: false, ..initialized.clone() };
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open_in(tmp.path()).await.unwrap();

    let rounds = RoundWatcher::new(chain.operator.clone()).start();
    rounds.send(GetRound).await.unwrap();
    assert_mailbox_bound(&rounds, round_watcher::MAILBOX, || GetRound);
    let initializer = RoundInitializer::new(chain.operator.clone(), Duration::ZERO).start();
    initializer.send(RoundChanged(initialized.clone())).await.unwrap();
    assert_mailbox_bound(&initializer, round_initializer::MAILBOX, || RoundChanged(initialized.clone()));
    let rewarder = RewardCaller::new(chain.operator.clone()).start();
    rewarder.send(RoundChanged(not_initialized.clone())).await.unwrap();
    assert_mailbox_bound(&rewarder, reward_caller::MAILBOX, || RoundChanged(not_initialized.clone()));
    let registry =
        OrchestratorRegistry::new(chain.operator.clone(), store.clone(), Lists::default().start().recipient());
    let registry = registry.start();
    registry.send(GetPool).await.unwrap();
    assert_mailbox_bound(&registry, orchestrator_registry::MAILBOX, || GetPool);
    let senders = lp_actors::chain::SenderWatcher::new(chain.operator.clone()).start();
    senders.send(lp_actors::chain::GetChainView).await.unwrap();
    assert_mailbox_bound(&senders, lp_actors::chain::sender_watcher::MAILBOX, || lp_actors::chain::GetChainView);
    let redeemer = lp_actors::chain::Redeemer::new(chain.operator.clone(), store.clone()).start();
    let pending = || lp_actors::chain::GetPending(Address::ZERO);
    redeemer.send(pending()).await.unwrap();
    assert_mailbox_bound(&redeemer, lp_actors::chain::redeemer::MAILBOX, pending);
    let blocks = BlockWatcher::new(chain.provider.clone(), store, vec![], vec![], Duration::from_secs(3600)).start();
    let collector = Collector::default().start();
    blocks.send(Subscribe(collector.clone().recipient())).await.unwrap();
    assert_mailbox_bound(&blocks, block_watcher::MAILBOX, || Subscribe(collector.clone().recipient()));
}

/// A panic injected into the block watcher (`InjectPanic`: no chain answer can make it panic):
/// the watchdog names it while it waits for its restart, and the restarted watcher, on the same
/// address, keeps its subscribers and goes on from the stored block.
#[actix::test]
async fn a_block_watcher_that_panics_is_restarted_and_keeps_its_subscribers() {
    use lp_actors::supervision::{InjectPanic, Policy, Watchdog};

    let anvil = Anvil::spawn(AnvilOptions::default()).unwrap();
    let provider = http_provider(&anvil.url()).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open_in(tmp.path()).await.unwrap();
    let watchdog = Watchdog::new();
    let watcher = BlockWatcher::new(provider.clone(), store.clone(), vec![], vec![], Duration::from_secs(3600));
    let watcher = watchdog.start("block_watcher", Policy::Permanent, watcher);
    let collector = Collector::default();
    let seen = collector.chain.clone();
    watcher.send(Subscribe(collector.start().recipient())).await.unwrap();
    let before = watcher.send(PollNow).await.unwrap().unwrap();

    watcher.do_send(InjectPanic);
    let started = Instant::now();
    let down = loop {
        if let Err(down) = watchdog.health() {
            break down;
        }
        assert!(started.elapsed() < Duration::from_secs(5), "the panic was never reported");
        tokio::time::sleep(Duration::from_millis(2)).await;
    };
    assert_eq!(down, ["block_watcher: restarting after a panic (injected panic in BlockWatcher)"]);
    while watchdog.health().is_err() {
        assert!(started.elapsed() < Duration::from_secs(5), "never restarted");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }

    provider.anvil_mine(Some(3), None).await.unwrap();
    let head = watcher.send(PollNow).await.expect("the same address, restarted").unwrap();
    assert_eq!(head, before + 3);
    assert_eq!(store.send(LastBlock).await.unwrap().unwrap().0, head);
    // The subscriber from before the panic is still told.
    let told = |e: &ChainEvent| matches!(e, ChainEvent::NewHead { number, .. } if *number == head);
    while !seen.lock().iter().any(told) {
        assert!(started.elapsed() < Duration::from_secs(10), "the subscriber never heard of block {head}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let report = watchdog.report();
    assert_eq!((report[0].actor, report[0].restarts, report[0].failures), ("block_watcher", 1, 0));
}

/// The connections `gate` (hung) holds once a read has asked all it asks: a read may ask
/// several calls at once, each on a connection of its own, so the count is taken once it has
/// stayed the same for 200 ms (ticks and refreshes of the actors here come sooner).
async fn one_hung_read(gate: &lp_testkit::net::Proxy) -> usize {
    common::wait_until("a read to the hung endpoint", || gate.held() > 0).await;
    let mut held = gate.held();
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        match gate.held() {
            now if now == held => return held,
            now => held = now,
        }
    }
}

/// A panic while a poll is in flight (here held by an endpoint that hangs) drops the poll with
/// the actor's futures; the restarted watcher polls again at its next tick. Before, a watcher
/// kept its "polling" mark across the restart would never poll again.
#[actix::test]
async fn a_block_watcher_restarted_in_a_poll_polls_again() {
    use lp_actors::supervision::{InjectPanic, Policy, Watchdog};

    let anvil = Anvil::spawn(AnvilOptions::default()).unwrap();
    let proxy = lp_testkit::net::Proxy::start(anvil.port());
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open_in(tmp.path()).await.unwrap();
    let provider = http_provider(&proxy.url()).unwrap();
    proxy.hang();
    let watcher = BlockWatcher::new(provider, store, vec![], vec![], Duration::from_millis(20));
    let watchdog = Watchdog::new();
    let watcher = watchdog.start("block_watcher", Policy::Permanent, watcher);
    // Ticks while the poll hangs start no other.
    assert_eq!(one_hung_read(&proxy).await, 1);

    watcher.do_send(InjectPanic);
    common::wait_until("the restarted watcher to poll", || proxy.held() > 1).await;
    assert_eq!(watchdog.report()[0].restarts, 1);
}

/// A reward caller restarted after a panic while it waits to retry a failed call (the endpoint
/// was down) tries again at once, not at the next round: the retry's timer went with the
/// actor's context.
#[actix::test]
async fn a_reward_caller_restarted_while_it_waits_to_retry_tries_again_at_once() {
    use lp_actors::supervision::{InjectPanic, Policy, Watchdog};

    let chain = RoundChain::start(true).await;
    let (operator, o) = (&chain.operator, chain.o);
    chain.next_round().await;
    operator.initialize_round().await.unwrap();
    let round = operator.current_round().await.unwrap();
    let proxy = lp_testkit::net::Proxy::start(chain.anvil.port());
    let through_proxy = chain.client_via(&proxy.url(), 1).await;
    let metrics = Metrics::local();
    proxy.take_down();
    let watchdog = Watchdog::new();
    let rewarder = watchdog.start("reward_caller", Policy::Permanent, RewardCaller::new(through_proxy));
    rewarder.send(RoundChanged(round.clone())).await.unwrap();
    common::wait_until("the failed call to be counted", || metrics.value(REWARD_CALL_ERRORS) == Some(1.0)).await;
    let failed = Instant::now();
    proxy.bring_back();
    rewarder.do_send(InjectPanic);
    while operator.status(o).await.unwrap().last_reward_round != round.round {
        assert!(failed.elapsed() < RETRY_AFTER, "not rewarded before the retry would have come");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(watchdog.report()[0].restarts, 1);
}

/// An orchestrator registry restarted after a panic while its read hangs reads again at its
/// next refresh: a registry kept "reading" across the restart would never read again.
#[actix::test]
async fn an_orchestrator_registry_restarted_in_a_read_reads_again() {
    use lp_actors::supervision::{InjectPanic, Policy, Watchdog};

    let chain = RoundChain::start(true).await;
    let round = chain.operator.current_round().await.unwrap();
    let gate = lp_testkit::net::Proxy::start(chain.anvil.port());
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open_in(tmp.path()).await.unwrap();
    let registry =
        OrchestratorRegistry::new(chain.client_via(&gate.url(), 2).await, store, Lists::default().start().recipient())
            .refresh_every(Duration::from_millis(50));
    let watchdog = Watchdog::new();
    let registry = watchdog.start("orchestrator_registry", Policy::Permanent, registry);
    gate.hang();
    registry.send(RoundChanged(round)).await.unwrap();
    // Refreshes while the read hangs start no other.
    assert_eq!(one_hung_read(&gate).await, 1);

    registry.do_send(InjectPanic);
    common::wait_until("the restarted registry to read again", || gate.held() > 1).await;
    assert_eq!(watchdog.report()[0].restarts, 1);
}

/// A round not initialized yet is not rewarded (the call would revert and be counted as an
/// error); the same round once initialized is, once however often it is told, and then the
/// next one; a round rewarded already is not called again.
#[actix::test]
async fn a_round_is_rewarded_once_it_is_initialized() {
    let chain = RoundChain::start(true).await;
    let (operator, o) = (&chain.operator, chain.o);
    let metrics = Metrics::local();
    let round = chain.next_round().await;
    assert!(!round.initialized);
    let rewarder = RewardCaller::new(operator.clone()).start();
    rewarder.send(RoundChanged(round.clone())).await.unwrap();
    // What a call would take on anvil, several times over.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(metrics.value(REWARD_CALL_ERRORS), None, "no call was made");
    assert_eq!(metrics.value(LAST_REWARD_ROUND), None);
    assert_ne!(operator.status(o).await.unwrap().last_reward_round, round.round);

    operator.initialize_round().await.unwrap();
    // Told twice (the round watcher tells every subscriber at once): still one call.
    let initialized = operator.current_round().await.unwrap();
    rewarder.send(RoundChanged(initialized.clone())).await.unwrap();
    rewarder.send(RoundChanged(initialized)).await.unwrap();
    let started = Instant::now();
    while operator.status(o).await.unwrap().last_reward_round != round.round {
        assert!(started.elapsed() < Duration::from_secs(10), "not rewarded once initialized");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // And the next round too, by the same caller.
    let next = chain.next_round().await;
    operator.initialize_round().await.unwrap();
    rewarder.send(RoundChanged(operator.current_round().await.unwrap())).await.unwrap();
    while operator.status(o).await.unwrap().last_reward_round != next.round {
        assert!(started.elapsed() < Duration::from_secs(20), "the next round was not rewarded");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // A caller that starts in a round rewarded already (a restarted node) calls nothing, and
    // says the round is rewarded. (Its own recorder: the first caller's gauge is not its.)
    assert_eq!(metrics.value(REWARD_CALL_ERRORS), None, "no call failed");
    drop(metrics);
    let metrics = Metrics::local();
    let restarted = RewardCaller::new(operator.clone()).start();
    restarted.send(RoundChanged(operator.current_round().await.unwrap())).await.unwrap();
    common::wait_until("the restarted caller's gauge", || metrics.value(LAST_REWARD_ROUND) == Some(next.round as f64))
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(metrics.value(REWARD_CALL_ERRORS), None, "no call made, so none failed");
}

/// Each retry of a failing reward call waits twice as long as the one before.
#[actix::test]
async fn failed_reward_calls_are_retried_further_and_further_apart() {
    let chain = RoundChain::start(true).await;
    chain.next_round().await;
    chain.operator.initialize_round().await.unwrap();
    let round = chain.operator.current_round().await.unwrap();
    let proxy = lp_testkit::net::Proxy::start(chain.anvil.port());
    let through_proxy = chain.client_via(&proxy.url(), 1).await;
    let metrics = Metrics::local();
    proxy.take_down();
    let first = Duration::from_millis(100);
    let rewarder = RewardCaller::new(through_proxy).retry_after(first).start();
    rewarder.send(RoundChanged(round)).await.unwrap();
    let started = Instant::now();
    let mut failed_at = Vec::new();
    while failed_at.len() < 3 {
        let errors = metrics.value(REWARD_CALL_ERRORS).unwrap_or(0.0) as usize;
        if errors > failed_at.len() {
            failed_at.push(Instant::now());
        }
        assert!(started.elapsed() < Duration::from_secs(10), "{} failures", failed_at.len());
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    assert!(failed_at[1] - failed_at[0] >= first, "{:?}", failed_at[1] - failed_at[0]);
    assert!(failed_at[2] - failed_at[1] >= first * 2, "{:?}", failed_at[2] - failed_at[1]);
}

/// A round that comes while the reward caller's attempt for the round before is still running
/// is tried when that attempt ends: after one that found the old round rewarded already (by
/// another caller), and after one that failed, instead of a retry of the old round.
#[actix::test]
async fn a_round_that_comes_during_an_attempt_is_tried_after_it() {
    let chain = RoundChain::start(true).await;
    let (operator, o) = (&chain.operator, chain.o);
    let proxy = lp_testkit::net::Proxy::start(chain.anvil.port());
    let metrics = Metrics::local();
    let rewarder =
        RewardCaller::new(chain.client_via(&proxy.url(), 1).await).retry_after(Duration::from_millis(200)).start();
    let reward_round = || async { operator.status(o).await.unwrap().last_reward_round };
    let next_round = || async {
        chain.next_round().await;
        operator.initialize_round().await.unwrap();
        operator.current_round().await.unwrap()
    };

    for fails in [false, true] {
        let old = next_round().await;
        if !fails {
            // Rewarded already, by this account's other client: the attempt will find nothing
            // to do.
            operator.reward().await.unwrap();
        }
        // The caller's attempt for the old round hangs at its first read...
        let held_before = proxy.held();
        proxy.hang();
        rewarder.send(RoundChanged(old)).await.unwrap();
        common::wait_until("the attempt's read to hang", || proxy.held() > held_before).await;
        // ... while the chain moves on and the caller is told.
        let new = next_round().await;
        rewarder.send(RoundChanged(new.clone())).await.unwrap();
        if fails {
            let errors = || metrics.value(REWARD_CALL_ERRORS).unwrap_or(0.0);
            let errors_before = errors();
            proxy.take_down();
            // (And the new round's first attempt too, if it comes before the endpoint is back.)
            common::wait_until("the attempt to fail", || errors() > errors_before).await;
        }
        proxy.bring_back();
        // Rewarded on chain, and the caller's attempt over (it polls for the receipt after the
        // chain has it: a poll held by the next pass's hang would be that pass's "attempt").
        let started = Instant::now();
        while reward_round().await != new.round || metrics.value(LAST_REWARD_ROUND) != Some(new.round as f64) {
            assert!(started.elapsed() < Duration::from_secs(10), "round {} not rewarded (fails: {fails})", new.round);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// A round watcher restarted after a panic while its read hangs reads again at the next head:
/// a watcher kept "reading" across the restart would never read again.
#[actix::test]
async fn a_round_watcher_restarted_in_a_read_reads_again() {
    use lp_actors::supervision::{InjectPanic, Policy, Watchdog};

    let chain = RoundChain::start(false).await;
    let gate = lp_testkit::net::Proxy::start(chain.anvil.port());
    let watchdog = Watchdog::new();
    let rounds =
        watchdog.start("round_watcher", Policy::Permanent, RoundWatcher::new(chain.client_via(&gate.url(), 2).await));
    let head = ChainEvent::NewHead { number: 1, hash: B256::ZERO, l1_number: 1 };
    gate.hang();
    rounds.send(head.clone()).await.unwrap();
    // Heads while the read hangs start no other.
    let one_read = one_hung_read(&gate).await;
    rounds.send(head.clone()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(gate.held(), one_read);

    rounds.do_send(InjectPanic);
    rounds.send(head).await.expect("the same address, restarted");
    common::wait_until("the restarted watcher to read again", || gate.held() > one_read).await;
    assert_eq!(watchdog.report()[0].restarts, 1);
}
