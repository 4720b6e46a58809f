//! The block watcher against a chain that is not the one its database followed: a devnet stopped
//! and started again (same chain id, another genesis) with the same `data_dir`, and a chain that
//! became shorter than the stored last block. Real anvil, our contracts, the SQLite file.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use actix::prelude::*;
use alloy::eips::BlockNumberOrTag;
use alloy::primitives::{Address, B256, U256};
use alloy::providers::ext::AnvilApi;
use alloy::providers::{DynProvider, Provider};
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::SolEvent;
use lp_actors::chain::{BlockWatcher, ChainEvent, PollNow, Subscribe};
use lp_actors::store::{
    GenesisHash, LastBlock, OldestBlockHeader, Orchestrators, Store, StoreError, StoreMessage, UpsertOrchestrators,
};
use lp_chain::anvil::{Anvil, AnvilOptions, DEV_KEYS};
use lp_chain::bindings::ServiceRegistry;
use lp_chain::client::{ChainClient, http_provider};
use lp_chain::db::{Db, OrchestratorRow};
use lp_chain::devnet::{DevnetDeployment, DevnetParams, deploy};
use lp_chain::tx::TxPolicy;
use parking_lot::Mutex;

/// Collects the chain events it is sent.
#[derive(Default)]
struct Collector(Arc<Mutex<Vec<ChainEvent>>>);

impl Actor for Collector {
    type Context = Context<Self>;
}

impl Handler<ChainEvent> for Collector {
    type Result = ();
    fn handle(&mut self, e: ChainEvent, _: &mut Self::Context) {
        self.0.lock().push(e);
    }
}

/// A devnet: anvil with our contracts.
struct Net {
    anvil: Anvil,
    provider: DynProvider,
    deployment: DevnetDeployment,
}

async fn devnet() -> Net {
    let anvil = Anvil::spawn(AnvilOptions::default()).unwrap();
    let deployment =
        deploy(&anvil.url(), DEV_KEYS[0], &DevnetParams { round_length: 50, ..Default::default() }, &[]).await.unwrap();
    let provider = http_provider(&anvil.url()).unwrap();
    Net { anvil, provider, deployment }
}

impl Net {
    /// A store in `dir`, a watcher storing its progress there, and what a subscriber of that
    /// watcher is told.
    async fn watched(&self, dir: &Path) -> (Store, Addr<BlockWatcher>, Arc<Mutex<Vec<ChainEvent>>>) {
        let store = open(dir).await;
        let watcher = self.watcher(store.clone());
        let seen = Arc::new(Mutex::new(Vec::new()));
        watcher.send(Subscribe(Collector(seen.clone()).start().recipient())).await.unwrap();
        (store, watcher, seen)
    }

    /// A watcher of the ServiceRegistry's URI updates, storing its progress through `store`.
    fn watcher(&self, store: Store) -> Addr<BlockWatcher> {
        BlockWatcher::new(
            self.provider.clone(),
            store,
            vec![self.deployment.contracts.service_registry],
            vec![ServiceRegistry::ServiceURIUpdate::SIGNATURE_HASH],
            Duration::from_secs(3600),
        )
        .endpoint(self.anvil.url())
        .start()
    }

    async fn set_service_uri(&self, uri: &str) {
        let signer: PrivateKeySigner = DEV_KEYS[1].parse().unwrap();
        let client = ChainClient::connect(
            &self.anvil.url(),
            self.deployment.contracts.controller,
            Some(signer),
            TxPolicy::default(),
        )
        .await
        .unwrap();
        client.set_service_uri(uri).await.unwrap();
    }

    async fn genesis(&self) -> (B256, u64) {
        let block = self.provider.get_block_by_number(BlockNumberOrTag::Number(0)).await.unwrap().unwrap();
        (block.header.hash, block.header.timestamp)
    }

    async fn hash(&self, number: u64) -> B256 {
        self.provider.get_block_by_number(BlockNumberOrTag::Number(number)).await.unwrap().unwrap().header.hash
    }
}

async fn open(path: &Path) -> Store {
    Store::open_in(path).await.unwrap()
}

/// Forget the recorded genesis hash, as in a database written before it was recorded.
struct ForgetGenesis;

impl StoreMessage for ForgetGenesis {
    type Reply = ();
    fn run(self, db: &Db) -> Result<(), StoreError> {
        db.connection().execute("DELETE FROM kv WHERE key = 'genesisHash'", [])?;
        Ok(())
    }
}

/// The service URIs of the ServiceURIUpdate logs among `events`, in order.
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

/// Wait (polling, with a deadline) until the events seen satisfy `done`.
async fn wait_for(seen: &Arc<Mutex<Vec<ChainEvent>>>, what: &str, done: impl Fn(&[ChainEvent]) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done(&seen.lock()) {
        assert!(Instant::now() < deadline, "{what}: {:?}", seen.lock());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Follow a first devnet for a while, into a database file, with an orchestrator cached; then
/// stop it. Answers the stored last block. `legacy` removes the recorded genesis hash, as in a
/// database written before it was recorded.
async fn follow_a_first_devnet(dir: &Path, legacy: bool) -> u64 {
    let first = devnet().await;
    // The watcher starts well above the block the second devnet's deployment ends at.
    first.provider.anvil_mine(Some(20), None).await.unwrap();
    let store = open(dir).await;
    let watcher = first.watcher(store.clone());
    watcher.send(PollNow).await.unwrap().unwrap();
    first.provider.anvil_mine(Some(50), None).await.unwrap();
    let last = watcher.send(PollNow).await.unwrap().unwrap();
    let (genesis, started) = first.genesis().await;
    assert_eq!(store.send(LastBlock).await.unwrap().map(|(n, _)| n), Some(last));
    assert_eq!(store.send(GenesisHash).await.unwrap(), Some(genesis), "the genesis hash is recorded");
    let refused = store
        .send(UpsertOrchestrators(vec![OrchestratorRow {
            address: Address::repeat_byte(7),
            service_uri: "https://old-chain.example:8935".into(),
            activation_round: 1,
            deactivation_round: 0,
            stake: U256::from(1),
        }]))
        .await
        .unwrap();
    assert!(refused.is_empty());
    if legacy {
        store.send(ForgetGenesis).await.unwrap();
    }
    // anvil dates its genesis block to the second it starts: the next devnet must start in a
    // later second to have another genesis (as a devnet started again does).
    let deadline = Instant::now() + Duration::from_secs(5);
    while SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() <= started {
        assert!(Instant::now() < deadline, "the clock did not pass {started}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    last
}

/// A second devnet over the same database file: the watcher sees another genesis, starts over
/// from the new head (the old progress, headers and orchestrators are gone) and follows the new
/// chain from there.
async fn a_second_devnet_starts_over(dir: &Path, old_last: u64) {
    let second = devnet().await;
    let head = second.provider.get_block_number().await.unwrap();
    assert!(head + 1 < old_last, "the new chain ({head}) is shorter than the stored one ({old_last})");
    let store = open(dir).await;
    let watcher = second.watcher(store.clone());
    let seen = Arc::new(Mutex::new(Vec::new()));
    watcher.send(Subscribe(Collector(seen.clone()).start().recipient())).await.unwrap();

    let polled = watcher.send(PollNow).await.unwrap().expect("the first poll on the new chain succeeds");
    assert_eq!(polled, head);
    let (genesis, head_hash) = (second.genesis().await.0, second.hash(head).await);
    assert_eq!(store.send(GenesisHash).await.unwrap(), Some(genesis));
    assert_eq!(store.send(LastBlock).await.unwrap(), Some((head, head_hash)));
    assert!(store.send(Orchestrators).await.unwrap().is_empty(), "the old chain's orchestrators are forgotten");
    assert_eq!(
        store.send(OldestBlockHeader).await.unwrap().map(|(n, _, _)| n),
        Some(head),
        "only the new head is stored"
    );
    wait_for(
        &seen,
        "the new head is published",
        |e| matches!(e.last(), Some(ChainEvent::NewHead { number, .. }) if *number == head),
    )
    .await;
    assert!(!seen.lock().iter().any(|e| matches!(e, ChainEvent::Reorg { .. })), "a replaced chain is no reorg");

    // And it follows the new chain.
    second.set_service_uri("https://new-chain.example:8935").await;
    let next = watcher.send(PollNow).await.unwrap().unwrap();
    assert!(next > head);
    wait_for(&seen, "the new chain's event is published", |e| uris(e) == ["https://new-chain.example:8935"]).await;
}

#[actix::test]
async fn a_devnet_started_again_with_the_same_data_dir_starts_over_from_its_head() {
    let tmp = tempfile::tempdir().unwrap();
    let last = follow_a_first_devnet(tmp.path(), false).await;
    a_second_devnet_starts_over(tmp.path(), last).await;
}

#[actix::test]
async fn a_database_without_a_recorded_genesis_starts_over_on_another_chain() {
    let tmp = tempfile::tempdir().unwrap();
    let last = follow_a_first_devnet(tmp.path(), true).await;
    a_second_devnet_starts_over(tmp.path(), last).await;
}

#[actix::test]
async fn a_database_without_a_recorded_genesis_keeps_its_progress_on_the_same_chain() {
    let net = devnet().await;
    let tmp = tempfile::tempdir().unwrap();
    let store = open(tmp.path()).await;
    net.watcher(store.clone()).send(PollNow).await.unwrap().unwrap();
    store.send(ForgetGenesis).await.unwrap();

    // While no watcher runs, below the head (which a watcher starting over begins at).
    net.set_service_uri("https://while-down.example:8935").await;
    net.provider.anvil_mine(Some(3), None).await.unwrap();
    let watcher = net.watcher(store.clone());
    let seen = Arc::new(Mutex::new(Vec::new()));
    watcher.send(Subscribe(Collector(seen.clone()).start().recipient())).await.unwrap();
    watcher.send(PollNow).await.unwrap().unwrap();
    wait_for(&seen, "the backfill", |e| uris(e) == ["https://while-down.example:8935"]).await;
    let genesis = net.genesis().await.0;
    assert_eq!(store.send(GenesisHash).await.unwrap(), Some(genesis), "recorded for the next start");
}

#[actix::test]
async fn a_chain_shorter_than_the_stored_last_block_is_followed_from_its_head() {
    let net = devnet().await;
    let tmp = tempfile::tempdir().unwrap();
    let (store, watcher, seen) = net.watched(tmp.path()).await;

    // The watcher sees blocks from well above the snapshot on, then the chain goes back to the
    // snapshot: its head is below every block the watcher stored.
    let snapshot = net.provider.anvil_snapshot().await.unwrap();
    net.provider.anvil_mine(Some(10), None).await.unwrap();
    watcher.send(PollNow).await.unwrap().unwrap();
    net.provider.anvil_mine(Some(40), None).await.unwrap();
    let last = watcher.send(PollNow).await.unwrap().unwrap();
    assert!(net.provider.anvil_revert(snapshot).await.unwrap());
    let head = net.provider.get_block_number().await.unwrap();
    assert!(head + 10 <= last);

    let polled = watcher.send(PollNow).await.unwrap().expect("the poll after the chain got shorter succeeds");
    assert_eq!(polled, head);
    wait_for(&seen, "the reorg to the head", |e| {
        e.iter().any(|e| matches!(e, ChainEvent::Reorg { common_ancestor, replaced } if *common_ancestor == head && *replaced == last - head))
    })
    .await;
    let head_hash = net.hash(head).await;
    assert_eq!(store.send(LastBlock).await.unwrap(), Some((head, head_hash)));

    net.set_service_uri("https://after-revert.example:8935").await;
    watcher.send(PollNow).await.unwrap().unwrap();
    wait_for(&seen, "the event after the revert", |e| uris(e) == ["https://after-revert.example:8935"]).await;
}

/// An endpoint whose head is a block the watcher stored, below its last one (a node behind the
/// one asked before; here the same anvil gone back to a snapshot): nothing is replayed or
/// forgotten until it catches up, and what it mines then builds from the block they share.
#[actix::test]
async fn an_endpoint_behind_the_last_block_is_waited_for() {
    let net = devnet().await;
    let tmp = tempfile::tempdir().unwrap();
    let (store, watcher, seen) = net.watched(tmp.path()).await;

    let snapshot = net.provider.anvil_snapshot().await.unwrap();
    let shared = watcher.send(PollNow).await.unwrap().unwrap();
    net.provider.anvil_mine(Some(5), None).await.unwrap();
    let last = watcher.send(PollNow).await.unwrap().unwrap();
    let stored = store.send(LastBlock).await.unwrap();
    assert!(net.provider.anvil_revert(snapshot).await.unwrap());
    assert_eq!(net.provider.get_block_number().await.unwrap(), shared);

    assert_eq!(watcher.send(PollNow).await.unwrap().unwrap(), shared);
    assert_eq!(store.send(LastBlock).await.unwrap(), stored, "the last block is kept");

    // It mines past the last block on another history: that one is replayed from the block
    // they share.
    net.set_service_uri("https://caught-up.example:8935").await;
    net.provider.anvil_mine(Some(5), None).await.unwrap();
    watcher.send(PollNow).await.unwrap().unwrap();
    wait_for(&seen, "the replay from the shared block", |e| {
        let reorgs: Vec<&ChainEvent> = e.iter().filter(|e| matches!(e, ChainEvent::Reorg { .. })).collect();
        matches!(reorgs[..], [ChainEvent::Reorg { common_ancestor, replaced }] if *common_ancestor == shared && *replaced == last - shared)
            && uris(e) == ["https://caught-up.example:8935"]
    })
    .await;
}
