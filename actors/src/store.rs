//! `Store`: the node's database, on a thread of its own.
//!
//! - **Owns** the one [`Db`] (the SQLite connection to `<data_dir>/lpdb.sqlite3`) of the node:
//!   the chain tables (last block, block headers, genesis hash, chain id, orchestrator cache),
//!   the orchestrator's winning tickets ([`QueueWinningTicket`], [`DueWinningTickets`],
//!   [`RecordTicketOutcomes`], [`WinningTickets`]) and its ticket secret ([`RecipientSecret`]).
//!   No other actor touches SQLite: they [`send`](Store::send) typed messages ([`StoreMessage`]) and await typed
//!   answers (`Result<_, StoreError>`), from a `ResponseActFuture`/`into_actor` or any future.
//! - **Thread**: one OS thread (`lp-store`), outside every async runtime, so no SQLite call ever
//!   blocks the executor the actors share (`Db` asserts it in debug builds). One thread because
//!   SQLite has one writer. The database runs in WAL mode with `synchronous = FULL` for the whole
//!   database (money will live in it) and a busy timeout ([`lp_chain::db::BUSY_TIMEOUT`]).
//! - **Transactions**: every message is one transaction (`BEGIN IMMEDIATE` … `COMMIT`), and its
//!   answer is sent only after the commit returned: once a caller has `Ok`, the change is on
//!   disk. A message whose operation fails is rolled back whole. Operations an actor does
//!   together are one message (e.g. [`RecordProgress`]: the block headers of a range and the
//!   last block).
//! - **Mailbox**: bounded at [`MAILBOX`] messages, FIFO, served one at a time. A message is
//!   queued when [`Store::send`] is called (not when its future is first polled); a full mailbox
//!   answers [`StoreError::Busy`] at once, a store that is gone [`StoreError::Closed`].
//! - **Restart policy**: the store's state is the database file, so it restarts in place. A
//!   panic in an operation is caught on the store's thread: that message's transaction is rolled
//!   back and its caller gets [`StoreError::Panicked`]; the connection is dropped and the file
//!   opened again before the next message is taken, so nothing queued is lost. If the file cannot
//!   be opened again, the store stops (logged at ERROR) and answers every later message `Closed`.
//!   Watched by the node's watchdog ([`Store::watched_by`]), its restarts are counted, and it
//!   stops, stopping the node, when it cannot reopen the file or panics more than the
//!   watchdog's [`MAX_RESTARTS`](crate::supervision::MAX_RESTARTS) times a minute.
//!   The thread ends when the last [`Store`] handle is dropped, after the messages queued before.
//!
//! Why not an actix `SyncArbiter`: its queue between the arbiter and the threads is unbounded,
//! a panic in a handler kills the thread and then panics the arbiter on the next message (on the
//! async thread), and it needs an actix `System`, which `livepeer chain` does not run.

use std::fmt;
use std::future::Future;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use alloy::primitives::{Address, B256};
use crossbeam_channel::{Receiver, Sender, TrySendError};
use lp_chain::db::{DB_FILE, Db, Dropped, OrchestratorRow, TicketOutcome, TicketStatus, WinningTicketRow};
use lp_chain::error::ChainError;
use lp_chain::pm::WinningTicket;
use parking_lot::Mutex;
use tokio::sync::oneshot;
use tracing::{error, warn};

use crate::supervision::{ThreadPart, Watchdog};

/// Messages the store holds at most, waiting for its thread.
pub const MAILBOX: usize = 256;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// SQLite failed around an operation: beginning or committing its transaction.
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The operation failed in the database layer: a stored value that does not parse, an
    /// argument out of the database's range, a database of another chain, a newer schema…
    #[error(transparent)]
    Db(#[from] ChainError),
    /// The mailbox is full ([`MAILBOX`] messages wait); nothing was queued.
    #[error("the database store is busy ({MAILBOX} operations are waiting); try again")]
    Busy,
    /// The store's thread is gone (it could not reopen the database after a panic).
    #[error("the database store is closed")]
    Closed,
    /// The operation panicked; its transaction was rolled back and the store reopened the
    /// database.
    #[error("a database operation panicked and was rolled back: {0}")]
    Panicked(String),
    /// The store's thread could not be started.
    #[error("cannot start the database store's thread: {0}")]
    Thread(#[source] std::io::Error),
}

impl StoreError {
    /// The database layer's error, when the operation failed there.
    pub fn chain_error(&self) -> Option<&ChainError> {
        match self {
            StoreError::Db(e) => Some(e),
            _ => None,
        }
    }
}

/// An operation of the store: runs on the store's thread, inside the message's transaction.
///
/// Other modules add their own tables' operations by implementing it (with
/// [`Db::connection`] for their SQL).
pub trait StoreMessage: Send + 'static {
    /// What the operation answers once committed.
    type Reply: Send + 'static;

    /// Do the work. An error rolls the whole message back.
    fn run(self, db: &Db) -> Result<Self::Reply, StoreError>;
}

/// What a job told the store's thread.
enum Outcome {
    Done,
    Panicked(String),
}

type Job = Box<dyn FnOnce(&Db) -> Outcome + Send>;

/// A handle on the store; cheap to clone, usable from any thread.
#[derive(Clone)]
pub struct Store {
    jobs: Sender<Job>,
    path: Arc<Path>,
    /// Whom the thread tells of its restarts and of its end, once the node set it.
    watched: Arc<Mutex<Option<ThreadPart>>>,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store").field("path", &self.path).field("queued", &self.jobs.len()).finish()
    }
}

impl Store {
    /// Start the store over the database at `path` (created if missing). Answers once the
    /// database is open on the store's thread, or why it could not be.
    pub async fn open(path: impl Into<PathBuf>) -> Result<Store, StoreError> {
        let path: Arc<Path> = Arc::from(path.into());
        let (jobs, queue) = crossbeam_channel::bounded::<Job>(MAILBOX);
        let (opened_tx, opened) = oneshot::channel::<Result<(), StoreError>>();
        let (at, watched) = (path.clone(), Arc::new(Mutex::new(None)));
        let told = watched.clone();
        std::thread::Builder::new()
            .name("lp-store".into())
            .spawn(move || match Db::open(&at) {
                Ok(db) => {
                    if opened_tx.send(Ok(())).is_ok() {
                        serve(&at, db, queue, &told);
                    }
                }
                Err(e) => {
                    let _ = opened_tx.send(Err(e.into()));
                }
            })
            .map_err(StoreError::Thread)?;
        opened.await.map_err(|_| StoreError::Closed)??;
        Ok(Store { jobs, path, watched })
    }

    /// Report to the node's watchdog (as `store`): each restart after a panic is counted, and a
    /// store that cannot reopen its database stops the node, which cannot run without it.
    pub fn watched_by(&self, watchdog: &Watchdog) {
        *self.watched.lock() = Some(watchdog.watch_thread("store"));
    }

    /// Start the store over `<data_dir>/lpdb.sqlite3`.
    pub async fn open_in(data_dir: &Path) -> Result<Store, StoreError> {
        Store::open(data_dir.join(DB_FILE)).await
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Queue `msg` now; the future answers after its transaction committed (or why not).
    pub fn send<M: StoreMessage>(&self, msg: M) -> impl Future<Output = Result<M::Reply, StoreError>> + Send + 'static {
        let (reply_tx, reply) = oneshot::channel();
        let job: Job =
            Box::new(move |db: &Db| match panic::catch_unwind(AssertUnwindSafe(|| db.transaction(|db| msg.run(db)))) {
                Ok(result) => {
                    let _ = reply_tx.send(result);
                    Outcome::Done
                }
                Err(payload) => {
                    let what = crate::supervision::panic_message(payload.as_ref());
                    error!(
                        target: "lp::store",
                        operation = std::any::type_name::<M>(),
                        "a database operation panicked (rolled back; reopening the database): {what}"
                    );
                    let _ = reply_tx.send(Err(StoreError::Panicked(what.clone())));
                    Outcome::Panicked(what)
                }
            });
        let queued = self.jobs.try_send(job).map_err(|e| match e {
            TrySendError::Full(_) => StoreError::Busy,
            TrySendError::Disconnected(_) => StoreError::Closed,
        });
        async move {
            queued?;
            reply.await.map_err(|_| StoreError::Closed)?
        }
    }
}

/// The store's thread: one message at a time until every handle is gone; after a panic, the
/// database is opened again.
fn serve(path: &Path, mut db: Db, queue: Receiver<Job>, watched: &Mutex<Option<ThreadPart>>) {
    for job in queue.iter() {
        if let Outcome::Panicked(what) = job(&db) {
            drop(db);
            let part = watched.lock().clone();
            if part.as_ref().is_some_and(|p| !p.restarted(what)) {
                error!(target: "lp::store", path = %path.display(), "the database store keeps panicking; it stops");
                return refuse_all(queue);
            }
            db = match Db::open(path) {
                Ok(db) => {
                    warn!(target: "lp::store", path = %path.display(), "database store restarted");
                    db
                }
                Err(e) => {
                    error!(
                        target: "lp::store",
                        path = %path.display(),
                        "cannot reopen the database after a panic; the store stops: {e}"
                    );
                    if let Some(part) = part {
                        part.failed(format!("cannot reopen the database after a panic: {e}"));
                    }
                    return refuse_all(queue);
                }
            };
        }
    }
}

/// A stopped store answers every message `Closed`, until its last handle is gone. (Dropping
/// the queue instead would strand what is already in it: a bounded channel keeps its messages,
/// unanswered, while any sender lives.)
fn refuse_all(queue: Receiver<Job>) {
    // Dropping a job drops its reply, which its caller reads as `Closed`.
    for job in queue.iter() {
        drop(job);
    }
}

/// Store `.0` as the database's chain id on first use; afterwards another id is
/// [`ChainError::ChainIdMismatch`] (as [`StoreError::Db`]).
#[derive(Debug, Clone, Copy)]
pub struct CheckChainId(pub u64);

impl StoreMessage for CheckChainId {
    type Reply = ();
    fn run(self, db: &Db) -> Result<(), StoreError> {
        Ok(db.check_chain_id(self.0)?)
    }
}

/// The recorded hash of the followed chain's genesis block.
#[derive(Debug, Clone, Copy)]
pub struct GenesisHash;

impl StoreMessage for GenesisHash {
    type Reply = Option<B256>;
    fn run(self, db: &Db) -> Result<Option<B256>, StoreError> {
        Ok(db.genesis_hash()?)
    }
}

/// Record the hash of the followed chain's genesis block.
#[derive(Debug, Clone, Copy)]
pub struct SetGenesisHash(pub B256);

impl StoreMessage for SetGenesisHash {
    type Reply = ();
    fn run(self, db: &Db) -> Result<(), StoreError> {
        Ok(db.set_genesis_hash(self.0)?)
    }
}

/// The chain was replaced by the one with genesis `.0`: [`Db::start_over`].
#[derive(Debug, Clone, Copy)]
pub struct StartOver(pub B256);

impl StoreMessage for StartOver {
    type Reply = Dropped;
    fn run(self, db: &Db) -> Result<Dropped, StoreError> {
        Ok(db.start_over(self.0)?)
    }
}

/// The last block processed: `(number, hash)`.
#[derive(Debug, Clone, Copy)]
pub struct LastBlock;

impl StoreMessage for LastBlock {
    type Reply = Option<(u64, B256)>;
    fn run(self, db: &Db) -> Result<Option<(u64, B256)>, StoreError> {
        Ok(db.last_block()?)
    }
}

/// The stored header of block `.0`: `(hash, parent)`.
#[derive(Debug, Clone, Copy)]
pub struct BlockHeader(pub u64);

impl StoreMessage for BlockHeader {
    type Reply = Option<(B256, B256)>;
    fn run(self, db: &Db) -> Result<Option<(B256, B256)>, StoreError> {
        Ok(db.block_header(self.0)?)
    }
}

/// The lowest stored block header: `(number, hash, parent)`.
#[derive(Debug, Clone, Copy)]
pub struct OldestBlockHeader;

impl StoreMessage for OldestBlockHeader {
    type Reply = Option<(u64, B256, B256)>;
    fn run(self, db: &Db) -> Result<Option<(u64, B256, B256)>, StoreError> {
        Ok(db.oldest_block_header()?)
    }
}

/// The block watcher's progress, in one transaction: store `headers` and `last` (each
/// `(number, hash, parent)`), and make `last` the last block processed.
#[derive(Debug, Clone, Default)]
pub struct RecordProgress {
    pub headers: Vec<(u64, B256, B256)>,
    pub last: (u64, B256, B256),
}

impl StoreMessage for RecordProgress {
    type Reply = ();
    fn run(self, db: &Db) -> Result<(), StoreError> {
        for (number, hash, parent) in self.headers {
            db.put_block_header(number, hash, parent)?;
        }
        let (number, hash, parent) = self.last;
        db.put_block_header(number, hash, parent)?;
        Ok(db.set_last_block(number, hash)?)
    }
}

/// Delete the block headers below `below`; answers how many.
#[derive(Debug, Clone, Copy)]
pub struct PruneBlockHeaders {
    pub below: u64,
}

impl StoreMessage for PruneBlockHeaders {
    type Reply = usize;
    fn run(self, db: &Db) -> Result<usize, StoreError> {
        Ok(db.prune_block_headers(self.below)?)
    }
}

/// Insert or update orchestrators of the cache ([`Db::upsert_orchestrator`]), in one
/// transaction. A row the database refuses (a round beyond its integer range) is skipped and
/// answered with its error; the others are stored.
#[derive(Debug, Clone, Default)]
pub struct UpsertOrchestrators(pub Vec<OrchestratorRow>);

impl StoreMessage for UpsertOrchestrators {
    type Reply = Vec<(Address, ChainError)>;
    fn run(self, db: &Db) -> Result<Vec<(Address, ChainError)>, StoreError> {
        let mut refused = Vec::new();
        for row in &self.0 {
            match db.upsert_orchestrator(row) {
                Ok(()) => {}
                Err(e @ ChainError::InvalidInput(_)) => refused.push((row.address, e)),
                Err(e) => return Err(e.into()),
            }
        }
        Ok(refused)
    }
}

/// Every cached orchestrator, by address.
#[derive(Debug, Clone, Copy)]
pub struct Orchestrators;

impl StoreMessage for Orchestrators {
    type Reply = Vec<OrchestratorRow>;
    fn run(self, db: &Db) -> Result<Vec<OrchestratorRow>, StoreError> {
        Ok(db.orchestrators()?)
    }
}

/// This orchestrator's ticket secret (the HMAC key of `recipientRand`), made on first use and
/// kept in the database, so that ticket parameters issued before a restart stay valid after it.
#[derive(Debug, Clone, Copy)]
pub struct RecipientSecret;

impl StoreMessage for RecipientSecret {
    type Reply = [u8; 32];
    fn run(self, db: &Db) -> Result<[u8; 32], StoreError> {
        const KEY: &str = "recipient_secret";
        let stored = db.kv_get(KEY)?.and_then(|hex| <[u8; 32]>::try_from(hex::decode(hex).ok()?).ok());
        if let Some(secret) = stored {
            return Ok(secret);
        }
        let secret: [u8; 32] = rand::random();
        db.kv_set(KEY, &hex::encode(secret))?;
        Ok(secret)
    }
}

/// Queue a winning ticket for redemption: on disk (committed) when answered `Ok`, so the
/// orchestrator answers the segment that paid with it only after this. Idempotent: a ticket
/// already queued (same ticket hash) is left as it is.
#[derive(Clone)]
pub struct QueueWinningTicket(pub WinningTicket);

impl StoreMessage for QueueWinningTicket {
    type Reply = ();
    fn run(self, db: &Db) -> Result<(), StoreError> {
        db.queue_winning_ticket(&self.0)?;
        Ok(())
    }
}

/// At most `limit` pending winning tickets that may be tried at block `head`
/// ([`Db::due_winning_tickets`]), oldest first.
#[derive(Debug, Clone, Copy)]
pub struct DueWinningTickets {
    pub head: u64,
    pub limit: usize,
}

impl StoreMessage for DueWinningTickets {
    type Reply = Vec<WinningTicketRow>;
    fn run(self, db: &Db) -> Result<Vec<WinningTicketRow>, StoreError> {
        Ok(db.due_winning_tickets(self.head, self.limit)?)
    }
}

/// Record how attempts at winning tickets ended, `(ticket hash, outcome)`, in one transaction
/// ([`Db::record_ticket_outcome`]: only pending tickets change).
#[derive(Debug, Clone, Default)]
pub struct RecordTicketOutcomes(pub Vec<(B256, TicketOutcome)>);

impl StoreMessage for RecordTicketOutcomes {
    type Reply = ();
    fn run(self, db: &Db) -> Result<(), StoreError> {
        for (hash, outcome) in &self.0 {
            db.record_ticket_outcome(*hash, outcome)?;
        }
        Ok(())
    }
}

/// The winning tickets of one status, or all (`None`), newest first: `livepeer chain tickets`.
#[derive(Debug, Clone, Copy, Default)]
pub struct WinningTickets(pub Option<TicketStatus>);

impl StoreMessage for WinningTickets {
    type Reply = Vec<WinningTicketRow>;
    fn run(self, db: &Db) -> Result<Vec<WinningTicketRow>, StoreError> {
        Ok(db.winning_tickets(self.0)?)
    }
}
