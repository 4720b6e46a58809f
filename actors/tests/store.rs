//! The `Store` over a real SQLite file: answers after the commit, WAL and `synchronous = FULL`,
//! one transaction per message, concurrent senders serialized, a bounded mailbox, a restart in
//! place after a panic; and the guard that catches SQLite on an async thread.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use alloy::primitives::{Address, B256, U256};
use lp_actors::store::{
    BlockHeader, CheckChainId, GenesisHash, LastBlock, MAILBOX, OldestBlockHeader, Orchestrators, PruneBlockHeaders,
    RecordProgress, StartOver, Store, StoreError, StoreMessage, UpsertOrchestrators,
};
use lp_actors::supervision::Watchdog;
use lp_chain::db::{DB_FILE, Db, OrchestratorRow};
use lp_chain::error::ChainError;
use rusqlite::OptionalExtension;

fn h(n: u8) -> B256 {
    B256::repeat_byte(n)
}

/// Read the file from a connection of another thread, outside the store (and outside the
/// async runtime, as the guard wants).
fn read_elsewhere<T: Send + 'static>(path: &Path, f: impl FnOnce(&Db) -> T + Send + 'static) -> T {
    let path = path.to_path_buf();
    std::thread::spawn(move || f(&Db::open(&path).unwrap())).join().unwrap()
}

/// The pragmas of the store's own connection.
struct Pragmas;

impl StoreMessage for Pragmas {
    type Reply = (String, i64, i64);
    fn run(self, db: &Db) -> Result<Self::Reply, StoreError> {
        let c = db.connection();
        Ok((
            c.query_row("PRAGMA journal_mode", [], |r| r.get(0))?,
            c.query_row("PRAGMA synchronous", [], |r| r.get(0))?,
            c.query_row("PRAGMA busy_timeout", [], |r| r.get(0))?,
        ))
    }
}

/// A read-modify-write of a counter in `kv`: loses updates unless messages are serialized.
struct Increment;

impl StoreMessage for Increment {
    type Reply = u64;
    fn run(self, db: &Db) -> Result<u64, StoreError> {
        let n = db.kv_get("counter")?.map_or(0, |v| v.parse::<u64>().unwrap()) + 1;
        db.kv_set("counter", &n.to_string())?;
        Ok(n)
    }
}

/// Writes a value, then panics before the commit.
struct WriteThenPanic;

impl StoreMessage for WriteThenPanic {
    type Reply = ();
    fn run(self, db: &Db) -> Result<(), StoreError> {
        db.kv_set("half-done", "yes")?;
        panic!("injected by the test");
    }
}

/// Holds the store's thread until told to go on.
struct Hold {
    started: mpsc::Sender<()>,
    go: mpsc::Receiver<()>,
}

impl StoreMessage for Hold {
    type Reply = ();
    fn run(self, _: &Db) -> Result<(), StoreError> {
        self.started.send(()).unwrap();
        self.go.recv_timeout(Duration::from_secs(30)).unwrap();
        Ok(())
    }
}

/// A temporary table lives as long as its connection: whether the store still has the same one.
struct TempTable(&'static str);

impl StoreMessage for TempTable {
    type Reply = bool;
    fn run(self, db: &Db) -> Result<bool, StoreError> {
        let c = db.connection();
        match self.0 {
            "create" => c.execute_batch("CREATE TEMP TABLE marker (x INTEGER)").map(|_| true).map_err(Into::into),
            _ => Ok(c
                .query_row("SELECT name FROM sqlite_temp_master WHERE name = 'marker'", [], |r| r.get::<_, String>(0))
                .optional()?
                .is_some()),
        }
    }
}

async fn open(dir: &Path) -> (Store, PathBuf) {
    let store = Store::open_in(dir).await.unwrap();
    (store, dir.join(DB_FILE))
}

#[actix::test]
async fn an_answer_comes_after_the_commit() {
    let tmp = tempfile::tempdir().unwrap();
    let (store, path) = open(tmp.path()).await;
    assert_eq!(store.path(), path);
    store.send(RecordProgress { headers: vec![(6, h(6), h(5))], last: (7, h(7), h(6)) }).await.unwrap();
    // Another connection, opened after the answer, sees the whole message.
    let (last, six, seven) = read_elsewhere(&path, |db| {
        (db.last_block().unwrap(), db.block_header(6).unwrap(), db.block_header(7).unwrap())
    });
    assert_eq!(last, Some((7, h(7))));
    assert_eq!(six, Some((h(6), h(5))));
    assert_eq!(seven, Some((h(7), h(6))));
    // And so does the store.
    assert_eq!(store.send(LastBlock).await.unwrap(), Some((7, h(7))));
}

#[actix::test]
async fn the_database_runs_in_wal_mode_with_synchronous_full() {
    let tmp = tempfile::tempdir().unwrap();
    let (store, path) = open(tmp.path()).await;
    let (mode, synchronous, busy_timeout) = store.send(Pragmas).await.unwrap();
    assert_eq!(mode, "wal");
    assert_eq!(synchronous, 2, "synchronous = FULL");
    assert_eq!(busy_timeout, lp_chain::db::BUSY_TIMEOUT.as_millis() as i64);
    // WAL is a property of the file: a plain connection sees it too.
    let mode: String =
        rusqlite::Connection::open(&path).unwrap().query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
    assert_eq!(mode, "wal");
}

#[actix::test]
async fn a_read_of_missing_data_is_none() {
    let tmp = tempfile::tempdir().unwrap();
    let (store, _) = open(tmp.path()).await;
    assert_eq!(store.send(LastBlock).await.unwrap(), None);
    assert_eq!(store.send(GenesisHash).await.unwrap(), None);
    assert_eq!(store.send(BlockHeader(5)).await.unwrap(), None);
    assert_eq!(store.send(OldestBlockHeader).await.unwrap(), None);
    assert!(store.send(Orchestrators).await.unwrap().is_empty());
    assert_eq!(store.send(PruneBlockHeaders { below: 10 }).await.unwrap(), 0);
}

#[actix::test]
async fn a_failed_message_is_rolled_back_whole_and_answers_a_typed_error() {
    let tmp = tempfile::tempdir().unwrap();
    let (store, path) = open(tmp.path()).await;
    // The second header is beyond SQLite's integer range: the first is not kept either.
    let err = store
        .send(RecordProgress { headers: vec![(1, h(1), h(0)), (u64::MAX, h(2), h(1))], last: (3, h(3), h(2)) })
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Db(ChainError::InvalidInput(_))), "{err:?}");
    assert_eq!(store.send(BlockHeader(1)).await.unwrap(), None);
    assert_eq!(store.send(LastBlock).await.unwrap(), None);

    // A database of another chain.
    store.send(CheckChainId(42161)).await.unwrap();
    let err = store.send(CheckChainId(31337)).await.unwrap_err();
    assert!(matches!(err.chain_error(), Some(ChainError::ChainIdMismatch { stored: 42161, actual: 31337 })), "{err:?}");

    // An orchestrator the database refuses is answered; the others are stored.
    let row = |byte: u8, round: u64| OrchestratorRow {
        address: Address::repeat_byte(byte),
        service_uri: format!("https://o{byte}.example:8935"),
        activation_round: round,
        deactivation_round: 0,
        stake: U256::from(byte),
    };
    let refused = store.send(UpsertOrchestrators(vec![row(1, 5), row(2, u64::MAX), row(3, 6)])).await.unwrap();
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0].0, Address::repeat_byte(2));
    let stored = store.send(Orchestrators).await.unwrap();
    assert_eq!(stored, vec![row(1, 5), row(3, 6)]);

    // Starting over runs inside the message's transaction.
    store.send(RecordProgress { headers: vec![], last: (9, h(9), h(8)) }).await.unwrap();
    let dropped = store.send(StartOver(h(0xee))).await.unwrap();
    assert_eq!((dropped.last_block, dropped.block_headers, dropped.orchestrators), (Some(9), 1, 2));
    assert_eq!(store.send(GenesisHash).await.unwrap(), Some(h(0xee)));
    drop(store);

    // A database of a newer schema is refused at open.
    read_elsewhere(&path, |db| db.kv_set("dbVersion", "999").unwrap());
    let err = Store::open(&path).await.unwrap_err();
    assert!(matches!(err, StoreError::Db(ChainError::Db(_))) && err.to_string().contains("newer"), "{err}");
}

#[actix::test]
async fn concurrent_senders_are_serialized_without_losing_writes() {
    let tmp = tempfile::tempdir().unwrap();
    let (store, path) = open(tmp.path()).await;
    const SENDERS: u64 = 8;
    const EACH: u64 = 50;
    // Senders on the actor thread (interleaved tasks) and on threads of their own.
    let tasks = (0..SENDERS / 2).map(|_| {
        let store = store.clone();
        async move {
            for _ in 0..EACH {
                store.send(Increment).await.unwrap();
            }
        }
    });
    let threads: Vec<_> = (0..SENDERS / 2)
        .map(|_| {
            let store = store.clone();
            std::thread::spawn(move || {
                futures::executor::block_on(async {
                    for _ in 0..EACH {
                        store.send(Increment).await.unwrap();
                    }
                })
            })
        })
        .collect();
    futures::future::join_all(tasks).await;
    for t in threads {
        t.join().unwrap();
    }
    let counted = read_elsewhere(&path, |db| db.kv_get("counter").unwrap());
    assert_eq!(counted, Some((SENDERS * EACH).to_string()));
    assert_eq!(store.send(Increment).await.unwrap(), SENDERS * EACH + 1);
}

#[actix::test]
async fn a_full_mailbox_answers_busy_at_once() {
    let tmp = tempfile::tempdir().unwrap();
    let (store, _) = open(tmp.path()).await;
    let (started_tx, started) = mpsc::channel();
    let (go, wait) = mpsc::channel();
    let held = store.send(Hold { started: started_tx, go: wait });
    started.recv_timeout(Duration::from_secs(10)).unwrap();
    // The store's thread is held: sends queue at once (without being polled) until the
    // mailbox is full, then answer Busy at once.
    let queued: Vec<_> = (0..MAILBOX).map(|_| store.send(Increment)).collect();
    let mut refused = Box::pin(store.send(Increment));
    let err = futures::FutureExt::now_or_never(&mut refused).expect("answered at once").unwrap_err();
    assert!(matches!(err, StoreError::Busy), "{err:?}");
    go.send(()).unwrap();
    held.await.unwrap();
    // Everything queued is served, in order; the refused one was not queued.
    let answers: Vec<u64> = futures::future::try_join_all(queued).await.unwrap();
    assert_eq!(answers, (1..=MAILBOX as u64).collect::<Vec<_>>());
    assert_eq!(store.send(Increment).await.unwrap(), MAILBOX as u64 + 1);
}

#[actix::test]
async fn a_panicking_operation_is_rolled_back_and_the_store_restarts_in_place() {
    let tmp = tempfile::tempdir().unwrap();
    let (store, path) = open(tmp.path()).await;
    store.send(RecordProgress { headers: vec![], last: (1, h(1), h(0)) }).await.unwrap();
    assert!(store.send(TempTable("create")).await.unwrap());
    assert!(store.send(TempTable("check")).await.unwrap());

    // Queue the panicking message and one after it, before the first is answered.
    let boom = store.send(WriteThenPanic);
    let after = store.send(LastBlock);
    let err = boom.await.unwrap_err();
    assert!(matches!(&err, StoreError::Panicked(m) if m.contains("injected by the test")), "{err:?}");
    // The message queued behind it is served, by a fresh connection to the same file.
    assert_eq!(after.await.unwrap(), Some((1, h(1))));
    assert!(!store.send(TempTable("check")).await.unwrap(), "the connection was opened again");
    // The panicking message's write was rolled back.
    let half = read_elsewhere(&path, |db| db.kv_get("half-done").unwrap());
    assert_eq!(half, None);
    store.send(RecordProgress { headers: vec![], last: (2, h(2), h(1)) }).await.unwrap();
    assert_eq!(store.send(LastBlock).await.unwrap(), Some((2, h(2))));
}

/// Watched by the node's watchdog, the store's restart is counted, and a store that cannot open
/// its database again stops the node (it cannot run without it). The file is made unopenable
/// (a directory where it was) while the store's connection still holds it.
#[actix::test]
async fn the_watchdog_counts_a_store_restart_and_stops_the_node_when_it_cannot_reopen() {
    let tmp = tempfile::tempdir().unwrap();
    let (store, path) = open(tmp.path()).await;
    let watchdog = Watchdog::new();
    store.send(RecordProgress { headers: vec![], last: (1, h(1), h(0)) }).await.unwrap();
    store.watched_by(&watchdog);

    store.send(WriteThenPanic).await.unwrap_err();
    assert_eq!(store.send(LastBlock).await.unwrap(), Some((1, h(1))), "restarted in place");
    let report = watchdog.report();
    assert_eq!((report[0].actor, report[0].restarts, report[0].failures), ("store", 1, 0), "{report:?}");
    assert_eq!(watchdog.health(), Ok(()));

    // Only the main file goes: the open connection keeps its WAL and shared memory, so the
    // rollback of the next (panicking) message completes.
    std::fs::remove_file(&path).unwrap();
    std::fs::create_dir(&path).unwrap();
    store.send(WriteThenPanic).await.unwrap_err();
    let why = tokio::time::timeout(Duration::from_secs(10), watchdog.fatal()).await.expect("the node is told to stop");
    assert!(why.starts_with("store: cannot reopen the database after a panic"), "{why}");
    assert!(watchdog.health().unwrap_err()[0].starts_with("store: cannot reopen"));
    assert!(matches!(store.send(LastBlock).await, Err(StoreError::Closed)));
}

/// The guard: a `Db` method called on the async thread every actor shares panics (debug
/// builds). The `Db` is opened on a thread of its own, so the panic comes from the method.
#[cfg(debug_assertions)]
#[actix::test]
#[should_panic(expected = "SQLite called on a thread of an async runtime")]
async fn sqlite_on_an_async_thread_is_caught() {
    let db = std::thread::spawn(|| Db::open_in_memory().unwrap()).join().unwrap();
    let _ = db.last_block();
}

/// Opening one there is caught too.
#[cfg(debug_assertions)]
#[actix::test]
#[should_panic(expected = "SQLite called on a thread of an async runtime")]
async fn opening_a_db_on_an_async_thread_is_caught() {
    let tmp = tempfile::tempdir().unwrap();
    let _ = Db::open_in(tmp.path());
}

/// A store that keeps panicking is stopped like any supervised actor: past the watchdog's
/// restart cap it answers `Closed` and the node is told to stop.
#[actix::test]
async fn a_store_that_keeps_panicking_stops_the_node() {
    use lp_actors::supervision::MAX_RESTARTS;

    let tmp = tempfile::tempdir().unwrap();
    let (store, _) = open(tmp.path()).await;
    let watchdog = Watchdog::new();
    store.watched_by(&watchdog);
    for _ in 0..MAX_RESTARTS {
        store.send(WriteThenPanic).await.unwrap_err();
        assert!(store.send(LastBlock).await.is_ok(), "restarted in place");
    }
    store.send(WriteThenPanic).await.unwrap_err();
    let why = tokio::time::timeout(Duration::from_secs(10), watchdog.fatal()).await.expect("the node is told to stop");
    assert!(why.starts_with(&format!("store: panicked {} times in", MAX_RESTARTS + 1)), "{why}");
    assert!(matches!(store.send(LastBlock).await, Err(StoreError::Closed)));
    assert_eq!((watchdog.report()[0].restarts, watchdog.report()[0].failures), (MAX_RESTARTS as u64, 1));
}
