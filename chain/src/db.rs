//! The node's embedded database, `<data_dir>/lpdb.sqlite3`, with go-livepeer's tables as a guide
//! (`common/db.go`): `kv` (schema version, chain id, genesis block hash, last block),
//! `orchestrators` (the gateway's cache and the orchestrator's own activity), `blockheaders`, and
//! (schema version 2) `winning_tickets`, the orchestrator's winning tickets from the moment they
//! are received until they are redeemed or can no longer be (go-livepeer's `ticketQueue`, with
//! each ticket's outcome kept instead of deleted).
//!
//! Schema versions: a database of an older version is migrated when it is opened (every step of
//! [`MIGRATIONS`] above its version, in one transaction); one of a newer version is refused.
//!
//! Every connection [`Db`] opens runs in WAL mode with `synchronous = FULL` (a commit is on disk,
//! WAL included, before it returns: the tables of winning tickets will hold money, so the whole
//! database gets the setting, not only some tables) and a busy timeout of [`BUSY_TIMEOUT`].
//!
//! The chain id tells networks apart; the genesis hash tells apart two chains with the same id (a
//! local devnet stopped and started again): [`Db::start_over`] drops what belonged to the old one.
//!
//! Synchronous, and kept off the async executor: in the node every call goes through the `Store`
//! actor (`lp_actors::store`), which owns the one `Db` on a thread of its own. In debug builds
//! every method asserts that it is not running on a thread of a tokio runtime (an actix actor's
//! thread, an `async fn`, and also tokio's `spawn_blocking` pool, which carries the runtime's
//! context), so a call from the wrong place panics in the tests instead of stalling every actor.
//! Other crates may add their own tables through [`Db::connection`].

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use alloy::primitives::{Address, B256, Bytes, U256};
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};
use serde::Serialize;

use crate::error::ChainError;
use crate::pm::{Ticket, WinningTicket, ticket_hash};

/// The file name under the data directory.
pub const DB_FILE: &str = "lpdb.sqlite3";
/// The schema version this code writes (`kv.dbVersion`).
pub const SCHEMA_VERSION: u32 = 2;
/// How long a statement waits for another connection's lock (another process on the same
/// file, e.g. `livepeer chain` beside a running node) before failing with `SQLITE_BUSY`.
pub const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS kv (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    updatedAt INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS orchestrators (
    ethereumAddr TEXT PRIMARY KEY,
    serviceURI TEXT NOT NULL DEFAULT '',
    activationRound INTEGER NOT NULL DEFAULT 0,
    deactivationRound INTEGER NOT NULL DEFAULT 0,
    stake TEXT NOT NULL DEFAULT '0',
    createdAt INTEGER NOT NULL,
    updatedAt INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS blockheaders (
    number INTEGER NOT NULL,
    parent TEXT NOT NULL,
    hash TEXT PRIMARY KEY
);
CREATE INDEX IF NOT EXISTS idx_blockheaders_number ON blockheaders(number);
";

/// The steps from one schema version to the next: `(version reached, SQL)`, in order. Each
/// step is idempotent (`IF NOT EXISTS`), so a step interrupted before its version was recorded
/// runs again cleanly.
pub const MIGRATIONS: &[(u32, &str)] = &[(2, WINNING_TICKETS)];

/// Version 2: the orchestrator's winning tickets. Amounts (`face_value`, `win_prob`,
/// `sender_nonce`, `recipient_rand`, `paid`) are decimal strings of the exact integers; addresses
/// and hashes `0x`-prefixed lowercase hex; `aux_data` and `sig` the raw bytes.
const WINNING_TICKETS: &str = "
CREATE TABLE IF NOT EXISTS winning_tickets (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    sender TEXT NOT NULL,
    recipient TEXT NOT NULL,
    face_value TEXT NOT NULL,
    win_prob TEXT NOT NULL,
    sender_nonce TEXT NOT NULL,
    recipient_rand_hash TEXT NOT NULL,
    aux_data BLOB NOT NULL,
    sig BLOB NOT NULL,
    recipient_rand TEXT NOT NULL,
    params_expiration_block INTEGER NOT NULL,
    creation_round INTEGER NOT NULL,
    ticket_hash TEXT NOT NULL UNIQUE,
    status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'redeemed', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    next_attempt_block INTEGER NOT NULL DEFAULT 0,
    tx_hash TEXT,
    gas_used INTEGER,
    paid TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS idx_winning_tickets_due
    ON winning_tickets(status, params_expiration_block, next_attempt_block);
";

/// Where a winning ticket stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TicketStatus {
    /// Waiting for its parameters to expire, or for its next attempt.
    Pending,
    /// Redeemed: by our transaction (`tx_hash`), or found used (someone redeemed it first;
    /// the broker pays the ticket's recipient whoever sends the transaction).
    Redeemed,
    /// It can no longer be redeemed (expired, or its creation round has no block hash);
    /// `last_error` says why. Never retried.
    Failed,
}

impl TicketStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TicketStatus::Pending => "pending",
            TicketStatus::Redeemed => "redeemed",
            TicketStatus::Failed => "failed",
        }
    }

    fn parse(s: &str) -> Result<TicketStatus, ChainError> {
        match s {
            "pending" => Ok(TicketStatus::Pending),
            "redeemed" => Ok(TicketStatus::Redeemed),
            "failed" => Ok(TicketStatus::Failed),
            other => Err(ChainError::Db(format!("unknown ticket status {other:?} in winning_tickets"))),
        }
    }
}

impl std::fmt::Display for TicketStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One row of `winning_tickets`. Not `Serialize`: it holds the signature and `recipientRand`;
/// what is shown of it is chosen field by field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WinningTicketRow {
    pub id: i64,
    pub sender: Address,
    pub recipient: Address,
    pub face_value: U256,
    pub win_prob: U256,
    pub sender_nonce: U256,
    pub recipient_rand_hash: B256,
    pub aux_data: Bytes,
    pub sig: Bytes,
    pub recipient_rand: U256,
    pub params_expiration_block: u64,
    pub creation_round: u64,
    pub ticket_hash: B256,
    pub status: TicketStatus,
    /// Times the redeemer took it up.
    pub attempts: u32,
    pub last_error: Option<String>,
    /// The first block at which it may be tried again (0: as soon as its parameters expire).
    pub next_attempt_block: u64,
    /// The transaction that redeemed it (of a batch: shared by the batch's tickets).
    pub tx_hash: Option<B256>,
    /// Gas used by that transaction (of a batch: the whole batch's).
    pub gas_used: Option<u64>,
    /// What the broker transferred for it (wei): the face value, or less when the sender's
    /// deposit and this recipient's share of the reserve fell short.
    pub paid: Option<U256>,
    /// Unix seconds.
    pub created_at: i64,
    pub updated_at: i64,
}

impl WinningTicketRow {
    /// The ticket as the broker takes it.
    pub fn ticket(&self) -> WinningTicket {
        WinningTicket {
            ticket: Ticket {
                recipient: self.recipient,
                sender: self.sender,
                faceValue: self.face_value,
                winProb: self.win_prob,
                senderNonce: self.sender_nonce,
                recipientRandHash: self.recipient_rand_hash,
                auxData: self.aux_data.clone(),
            },
            sig: self.sig.clone(),
            recipient_rand: self.recipient_rand,
            params_expiration_block: self.params_expiration_block,
        }
    }
}

/// How one attempt at a ticket ended, as [`Db::record_ticket_outcome`] stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TicketOutcome {
    /// Redeemed by `tx` (`None`: found used, redeemed by someone else's transaction; `note`
    /// says so).
    Redeemed { tx: Option<B256>, gas_used: Option<u64>, paid: Option<U256>, note: Option<String> },
    /// Not redeemable any more, for `reason`.
    Failed { reason: String },
    /// Not redeemed this time, for `error`: stays pending until `next_attempt_block`.
    Retry { error: String, next_attempt_block: u64 },
}

/// One row of the orchestrator cache.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OrchestratorRow {
    /// The orchestrator's account.
    pub address: Address,
    /// Its advertised service URI.
    pub service_uri: String,
    /// The round it becomes active (0 = unknown).
    pub activation_round: u64,
    /// The round it stops being active (0 = unknown).
    pub deactivation_round: u64,
    /// Its total stake (LPT wei).
    pub stake: U256,
}

/// What [`Db::start_over`] dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dropped {
    /// The last block processed on the old chain, if any.
    pub last_block: Option<u64>,
    /// Block headers deleted.
    pub block_headers: usize,
    /// Orchestrators deleted from the cache.
    pub orchestrators: usize,
}

/// The node's database.
#[derive(Debug)]
pub struct Db {
    conn: Connection,
}

impl Db {
    /// Open (or create) the database at `path`, in WAL mode, with the schema in place. A database
    /// written by a newer schema version is refused rather than misread.
    pub fn open(path: &Path) -> Result<Db, ChainError> {
        assert_not_async();
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .map_err(|e| ChainError::Db(format!("cannot create the directory {}: {e}", parent.display())))?;
        }
        let conn = Connection::open(path)
            .map_err(|e| ChainError::Db(format!("cannot open the database {}: {e}", path.display())))?;
        Db::init(conn)
    }

    /// Open `<data_dir>/lpdb.sqlite3`.
    pub fn open_in(data_dir: &Path) -> Result<Db, ChainError> {
        Db::open(&data_dir.join(DB_FILE))
    }

    /// A private in-memory database (tests, offchain mode).
    pub fn open_in_memory() -> Result<Db, ChainError> {
        assert_not_async();
        Db::init(Connection::open_in_memory()?)
    }

    fn init(conn: Connection) -> Result<Db, ChainError> {
        conn.busy_timeout(BUSY_TIMEOUT)?;
        // `journal_mode` answers with a row, so it is read rather than executed. It is stored in
        // the file; `synchronous` is not, so every connection sets it.
        let _mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
        conn.execute_batch("PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;")?;
        conn.execute_batch(SCHEMA)?;
        let db = Db { conn };
        db.atomically(|| {
            // A new database starts at version 1 (the tables above) and is migrated like an old one.
            let stored = match db.kv_get("dbVersion")? {
                None => 1,
                Some(v) => {
                    v.parse().map_err(|_| ChainError::Db(format!("unreadable schema version {v:?} in table kv")))?
                }
            };
            if stored > SCHEMA_VERSION {
                return Err(ChainError::Db(format!(
                    "the database has schema version {stored}, newer than this node's {SCHEMA_VERSION}; \
                     upgrade the node"
                )));
            }
            for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > stored) {
                db.conn().execute_batch(sql)?;
                tracing::debug!(target: "lp::chain::db", version, "database schema migrated");
            }
            if db.kv_get("dbVersion")?.as_deref() != Some(SCHEMA_VERSION.to_string().as_str()) {
                db.kv_set("dbVersion", &SCHEMA_VERSION.to_string())?;
            }
            Ok(())
        })?;
        Ok(db)
    }

    /// The underlying connection, for tables other crates own.
    pub fn connection(&self) -> &Connection {
        self.conn()
    }

    /// Run `f` as one transaction, begun `IMMEDIATE` (the write lock is taken at once, so a
    /// transaction that reads then writes never fails half-way on another connection's lock):
    /// committed when `f` answers `Ok`, rolled back when it answers an error or panics. Inside
    /// `f`, the methods of this type (including [`Db::start_over`]) join that transaction.
    pub fn transaction<T, E: From<rusqlite::Error>>(&self, f: impl FnOnce(&Db) -> Result<T, E>) -> Result<T, E> {
        let tx = Transaction::new_unchecked(self.conn(), TransactionBehavior::Immediate)?;
        let value = f(self)?;
        tx.commit()?;
        Ok(value)
    }

    /// Run `f` in a transaction of its own, or in the caller's when one is open.
    fn atomically<T>(&self, f: impl FnOnce() -> Result<T, ChainError>) -> Result<T, ChainError> {
        if !self.conn().is_autocommit() {
            return f();
        }
        let tx = self.conn.unchecked_transaction()?;
        let value = f()?;
        tx.commit()?;
        Ok(value)
    }

    /// The connection, off the async executor (see the module's documentation).
    fn conn(&self) -> &Connection {
        assert_not_async();
        &self.conn
    }

    /// The schema version stored in the database.
    pub fn schema_version(&self) -> Result<u32, ChainError> {
        let v = self.kv_get("dbVersion")?.unwrap_or_default();
        v.parse().map_err(|_| ChainError::Db(format!("unreadable schema version {v:?}")))
    }

    /// A value of the `kv` table.
    pub fn kv_get(&self, key: &str) -> Result<Option<String>, ChainError> {
        Ok(self.conn().query_row("SELECT value FROM kv WHERE key = ?1", [key], |r| r.get(0)).optional()?)
    }

    /// Set a value of the `kv` table.
    pub fn kv_set(&self, key: &str, value: &str) -> Result<(), ChainError> {
        self.conn().execute(
            "INSERT INTO kv (key, value, updatedAt) VALUES (?1, ?2, ?3)
             ON CONFLICT(key) DO UPDATE SET value = excluded.value, updatedAt = excluded.updatedAt",
            params![key, value, now()],
        )?;
        Ok(())
    }

    /// The chain id stored at first use, if any.
    pub fn chain_id(&self) -> Result<Option<u64>, ChainError> {
        match self.kv_get("chainID")? {
            None => Ok(None),
            Some(v) => {
                v.parse().map(Some).map_err(|_| ChainError::Db(format!("unreadable chain id {v:?} in table kv")))
            }
        }
    }

    /// Store `actual` as this database's chain id on first use; afterwards, a different chain id
    /// is [`ChainError::ChainIdMismatch`].
    pub fn check_chain_id(&self, actual: u64) -> Result<(), ChainError> {
        match self.chain_id()? {
            None => self.kv_set("chainID", &actual.to_string()),
            Some(stored) if stored == actual => Ok(()),
            Some(stored) => Err(ChainError::ChainIdMismatch { stored, actual }),
        }
    }

    /// The hash of the genesis block of the chain this database follows, once recorded. Databases
    /// written before it was recorded have none until the block watcher records it.
    pub fn genesis_hash(&self) -> Result<Option<B256>, ChainError> {
        let Some(v) = self.kv_get("genesisHash")? else { return Ok(None) };
        v.parse().map(Some).map_err(|_| ChainError::Db(format!("unreadable genesisHash {v:?} in table kv")))
    }

    /// Record the hash of the chain's genesis block.
    pub fn set_genesis_hash(&self, hash: B256) -> Result<(), ChainError> {
        self.kv_set("genesisHash", &hash.to_string())
    }

    /// The chain was replaced by another with the same id (genesis `genesis`): forget the last
    /// block, the block headers and the orchestrator cache, which all belonged to the old one, and
    /// record the new genesis hash, in one transaction. Answers what was dropped.
    pub fn start_over(&self, genesis: B256) -> Result<Dropped, ChainError> {
        self.atomically(|| {
            let conn = self.conn();
            let last_block = self.last_block().ok().flatten().map(|(n, _)| n);
            conn.execute("DELETE FROM kv WHERE key = 'lastBlock'", [])?;
            let block_headers = conn.execute("DELETE FROM blockheaders", [])?;
            let orchestrators = conn.execute("DELETE FROM orchestrators", [])?;
            conn.execute(
                "INSERT INTO kv (key, value, updatedAt) VALUES ('genesisHash', ?1, ?2)
                 ON CONFLICT(key) DO UPDATE SET value = excluded.value, updatedAt = excluded.updatedAt",
                params![genesis.to_string(), now()],
            )?;
            Ok(Dropped { last_block, block_headers, orchestrators })
        })
    }

    /// The last block the node processed.
    pub fn last_block(&self) -> Result<Option<(u64, B256)>, ChainError> {
        let Some(v) = self.kv_get("lastBlock")? else { return Ok(None) };
        let parsed = v.split_once(':').and_then(|(n, h)| Some((n.parse::<u64>().ok()?, h.parse::<B256>().ok()?)));
        parsed.map(Some).ok_or_else(|| ChainError::Db(format!("unreadable lastBlock {v:?} in table kv")))
    }

    /// Record the last block the node processed.
    pub fn set_last_block(&self, number: u64, hash: B256) -> Result<(), ChainError> {
        self.kv_set("lastBlock", &format!("{number}:{hash}"))
    }

    /// Insert or update an orchestrator. As in go-livepeer, a zero activation or deactivation
    /// round and an empty service URI keep the stored value.
    pub fn upsert_orchestrator(&self, row: &OrchestratorRow) -> Result<(), ChainError> {
        let t = now();
        self.conn().execute(
            "INSERT INTO orchestrators
                 (ethereumAddr, serviceURI, activationRound, deactivationRound, stake, createdAt, updatedAt)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)
             ON CONFLICT(ethereumAddr) DO UPDATE SET
                 serviceURI = CASE WHEN excluded.serviceURI = '' THEN serviceURI ELSE excluded.serviceURI END,
                 activationRound = CASE WHEN excluded.activationRound = 0 THEN activationRound
                                        ELSE excluded.activationRound END,
                 deactivationRound = CASE WHEN excluded.deactivationRound = 0 THEN deactivationRound
                                          ELSE excluded.deactivationRound END,
                 stake = excluded.stake,
                 updatedAt = excluded.updatedAt",
            params![
                addr_key(row.address),
                row.service_uri,
                to_i64(row.activation_round)?,
                to_i64(row.deactivation_round)?,
                row.stake.to_string(),
                t
            ],
        )?;
        Ok(())
    }

    /// One orchestrator of the cache.
    pub fn orchestrator(&self, address: Address) -> Result<Option<OrchestratorRow>, ChainError> {
        let row = self
            .conn()
            .query_row(
                "SELECT ethereumAddr, serviceURI, activationRound, deactivationRound, stake
                 FROM orchestrators WHERE ethereumAddr = ?1",
                [addr_key(address)],
                raw_orchestrator,
            )
            .optional()?;
        row.map(parse_orchestrator).transpose()
    }

    /// Every cached orchestrator, by address.
    pub fn orchestrators(&self) -> Result<Vec<OrchestratorRow>, ChainError> {
        let mut stmt = self.conn().prepare(
            "SELECT ethereumAddr, serviceURI, activationRound, deactivationRound, stake
             FROM orchestrators ORDER BY ethereumAddr",
        )?;
        let rows = stmt.query_map([], raw_orchestrator)?.collect::<Result<Vec<_>, _>>()?;
        rows.into_iter().map(parse_orchestrator).collect()
    }

    /// Store a block header (replacing one with the same hash).
    pub fn put_block_header(&self, number: u64, hash: B256, parent: B256) -> Result<(), ChainError> {
        self.conn().execute(
            "INSERT OR REPLACE INTO blockheaders (number, parent, hash) VALUES (?1, ?2, ?3)",
            params![to_i64(number)?, parent.to_string(), hash.to_string()],
        )?;
        Ok(())
    }

    /// The stored header of block `number`: `(hash, parent)`. With several (a reorg seen), the
    /// one stored last.
    pub fn block_header(&self, number: u64) -> Result<Option<(B256, B256)>, ChainError> {
        let row: Option<(String, String)> = self
            .conn()
            .query_row(
                "SELECT hash, parent FROM blockheaders WHERE number = ?1 ORDER BY rowid DESC LIMIT 1",
                [to_i64(number)?],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        row.map(|(h, p)| Ok((parse_b256(&h)?, parse_b256(&p)?))).transpose()
    }

    /// The highest stored block header: `(number, hash, parent)`.
    pub fn latest_block_header(&self) -> Result<Option<(u64, B256, B256)>, ChainError> {
        let row: Option<(i64, String, String)> = self
            .conn()
            .query_row(
                "SELECT number, hash, parent FROM blockheaders ORDER BY number DESC, rowid DESC LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        row.map(|(n, h, p)| Ok((from_i64(n)?, parse_b256(&h)?, parse_b256(&p)?))).transpose()
    }

    /// The lowest stored block header: `(number, hash, parent)`.
    pub fn oldest_block_header(&self) -> Result<Option<(u64, B256, B256)>, ChainError> {
        let row: Option<(i64, String, String)> = self
            .conn()
            .query_row(
                "SELECT number, hash, parent FROM blockheaders ORDER BY number ASC, rowid DESC LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        row.map(|(n, h, p)| Ok((from_i64(n)?, parse_b256(&h)?, parse_b256(&p)?))).transpose()
    }

    /// Delete the headers of blocks below `keep_from`; returns how many were deleted.
    pub fn prune_block_headers(&self, keep_from: u64) -> Result<usize, ChainError> {
        Ok(self.conn().execute("DELETE FROM blockheaders WHERE number < ?1", [to_i64(keep_from)?])?)
    }

    /// Queue a winning ticket, pending. Idempotent: a ticket already there (same ticket hash),
    /// whatever its status, is left as it is. Answers whether it was added.
    pub fn queue_winning_ticket(&self, t: &WinningTicket) -> Result<bool, ChainError> {
        let tk = &t.ticket;
        let now = now();
        let added = self.conn().execute(
            "INSERT INTO winning_tickets
                 (sender, recipient, face_value, win_prob, sender_nonce, recipient_rand_hash, aux_data, sig,
                  recipient_rand, params_expiration_block, creation_round, ticket_hash, status, attempts,
                  next_attempt_block, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, 'pending', 0, 0, ?13, ?13)
             ON CONFLICT(ticket_hash) DO NOTHING",
            params![
                addr_key(tk.sender),
                addr_key(tk.recipient),
                tk.faceValue.to_string(),
                tk.winProb.to_string(),
                tk.senderNonce.to_string(),
                tk.recipientRandHash.to_string(),
                tk.auxData.as_ref(),
                t.sig.as_ref(),
                t.recipient_rand.to_string(),
                to_i64(t.params_expiration_block)?,
                to_i64(t.creation_round())?,
                ticket_hash(tk).to_string(),
                now,
            ],
        )?;
        Ok(added == 1)
    }

    /// At most `limit` pending tickets that may be tried at block `head`: their parameters
    /// expired (`params_expiration_block <= head`) and their next attempt is due; oldest first
    /// (by creation round, then as queued).
    pub fn due_winning_tickets(&self, head: u64, limit: usize) -> Result<Vec<WinningTicketRow>, ChainError> {
        let head = to_i64(head)?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.ticket_rows(
            "WHERE status = 'pending' AND params_expiration_block <= ?1 AND next_attempt_block <= ?1
             ORDER BY creation_round ASC, id ASC LIMIT ?2",
            params![head, limit],
        )
    }

    /// The winning tickets, newest first, of one status or all.
    pub fn winning_tickets(&self, status: Option<TicketStatus>) -> Result<Vec<WinningTicketRow>, ChainError> {
        match status {
            Some(s) => self.ticket_rows("WHERE status = ?1 ORDER BY id DESC", params![s.as_str()]),
            None => self.ticket_rows("ORDER BY id DESC", params![]),
        }
    }

    /// The winning ticket with this hash.
    pub fn winning_ticket(&self, hash: B256) -> Result<Option<WinningTicketRow>, ChainError> {
        Ok(self.ticket_rows("WHERE ticket_hash = ?1", params![hash.to_string()])?.into_iter().next())
    }

    /// Record how an attempt at the ticket `hash` ended (counted in `attempts`). Only a pending
    /// ticket changes: a ticket already redeemed or failed keeps its record. Answers whether it
    /// changed.
    pub fn record_ticket_outcome(&self, hash: B256, outcome: &TicketOutcome) -> Result<bool, ChainError> {
        let (status, error, next, tx, gas, paid) = match outcome {
            TicketOutcome::Redeemed { tx, gas_used, paid, note } => (
                TicketStatus::Redeemed,
                note.clone(),
                None,
                tx.map(|h| h.to_string()),
                gas_used.map(to_i64).transpose()?,
                paid.map(|p| p.to_string()),
            ),
            TicketOutcome::Failed { reason } => (TicketStatus::Failed, Some(reason.clone()), None, None, None, None),
            TicketOutcome::Retry { error, next_attempt_block } => {
                (TicketStatus::Pending, Some(error.clone()), Some(to_i64(*next_attempt_block)?), None, None, None)
            }
        };
        let changed = self.conn().execute(
            "UPDATE winning_tickets SET
                 status = ?2, attempts = attempts + 1, last_error = ?3,
                 next_attempt_block = COALESCE(?4, next_attempt_block),
                 tx_hash = COALESCE(?5, tx_hash), gas_used = COALESCE(?6, gas_used), paid = COALESCE(?7, paid),
                 updated_at = ?8
             WHERE ticket_hash = ?1 AND status = 'pending'",
            params![hash.to_string(), status.as_str(), error, next, tx, gas, paid, now()],
        )?;
        Ok(changed == 1)
    }

    fn ticket_rows(&self, tail: &str, args: impl rusqlite::Params) -> Result<Vec<WinningTicketRow>, ChainError> {
        let sql = format!(
            "SELECT id, sender, recipient, face_value, win_prob, sender_nonce, recipient_rand_hash, aux_data, sig,
                    recipient_rand, params_expiration_block, creation_round, ticket_hash, status, attempts,
                    last_error, next_attempt_block, tx_hash, gas_used, paid, created_at, updated_at
             FROM winning_tickets {tail}"
        );
        let mut stmt = self.conn().prepare(&sql)?;
        let rows = stmt.query_map(args, RawTicket::read)?.collect::<Result<Vec<_>, _>>()?;
        rows.into_iter().map(RawTicket::parse).collect()
    }
}

/// The guard of the module's documentation: panics, in debug builds, on a thread of a tokio
/// runtime.
#[track_caller]
fn assert_not_async() {
    debug_assert!(
        tokio::runtime::Handle::try_current().is_err(),
        "SQLite called on a thread of an async runtime: database work belongs on the Store's thread \
         (lp_actors::store::Store), never on the executor every actor shares"
    );
}

type RawOrchestrator = (String, String, i64, i64, String);

fn raw_orchestrator(r: &rusqlite::Row<'_>) -> rusqlite::Result<RawOrchestrator> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
}

fn parse_orchestrator((addr, uri, act, deact, stake): RawOrchestrator) -> Result<OrchestratorRow, ChainError> {
    Ok(OrchestratorRow {
        address: addr.parse().map_err(|_| ChainError::Db(format!("unreadable address {addr:?} in orchestrators")))?,
        service_uri: uri,
        activation_round: from_i64(act)?,
        deactivation_round: from_i64(deact)?,
        stake: stake.parse().map_err(|_| ChainError::Db(format!("unreadable stake {stake:?} in orchestrators")))?,
    })
}

/// A `winning_tickets` row as SQLite holds it.
struct RawTicket {
    id: i64,
    text: [String; 9],
    aux_data: Vec<u8>,
    sig: Vec<u8>,
    numbers: [i64; 4],
    last_error: Option<String>,
    tx_hash: Option<String>,
    gas_used: Option<i64>,
    paid: Option<String>,
    times: [i64; 2],
}

impl RawTicket {
    fn read(r: &rusqlite::Row<'_>) -> rusqlite::Result<RawTicket> {
        Ok(RawTicket {
            id: r.get(0)?,
            // sender, recipient, face_value, win_prob, sender_nonce, recipient_rand_hash,
            // recipient_rand, ticket_hash, status
            text: [r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?, r.get(9)?, r.get(12)?, r.get(13)?],
            aux_data: r.get(7)?,
            sig: r.get(8)?,
            // params_expiration_block, creation_round, attempts, next_attempt_block
            numbers: [r.get(10)?, r.get(11)?, r.get(14)?, r.get(16)?],
            last_error: r.get(15)?,
            tx_hash: r.get(17)?,
            gas_used: r.get(18)?,
            paid: r.get(19)?,
            times: [r.get(20)?, r.get(21)?],
        })
    }

    fn parse(self) -> Result<WinningTicketRow, ChainError> {
        fn field<T: std::str::FromStr>(name: &str, v: &str) -> Result<T, ChainError> {
            v.parse().map_err(|_| ChainError::Db(format!("unreadable {name} {v:?} in winning_tickets")))
        }
        let [sender, recipient, face_value, win_prob, nonce, rand_hash, rand, hash, status] = &self.text;
        let [expiration, creation_round, attempts, next] = self.numbers;
        Ok(WinningTicketRow {
            id: self.id,
            sender: field("sender", sender)?,
            recipient: field("recipient", recipient)?,
            face_value: field("face_value", face_value)?,
            win_prob: field("win_prob", win_prob)?,
            sender_nonce: field("sender_nonce", nonce)?,
            recipient_rand_hash: field("recipient_rand_hash", rand_hash)?,
            aux_data: self.aux_data.into(),
            sig: self.sig.into(),
            recipient_rand: field("recipient_rand", rand)?,
            params_expiration_block: from_i64(expiration)?,
            creation_round: from_i64(creation_round)?,
            ticket_hash: field("ticket_hash", hash)?,
            status: TicketStatus::parse(status)?,
            attempts: u32::try_from(attempts)
                .map_err(|_| ChainError::Db(format!("attempts {attempts} out of range")))?,
            last_error: self.last_error,
            next_attempt_block: from_i64(next)?,
            tx_hash: self.tx_hash.as_deref().map(|h| field("tx_hash", h)).transpose()?,
            gas_used: self.gas_used.map(from_i64).transpose()?,
            paid: self.paid.as_deref().map(|p| field("paid", p)).transpose()?,
            created_at: self.times[0],
            updated_at: self.times[1],
        })
    }
}

/// Addresses are stored lowercase so lookups do not depend on checksum casing.
fn addr_key(a: Address) -> String {
    format!("{a:#x}")
}

fn parse_b256(s: &str) -> Result<B256, ChainError> {
    s.parse().map_err(|_| ChainError::Db(format!("unreadable hash {s:?} in blockheaders")))
}

fn to_i64(v: u64) -> Result<i64, ChainError> {
    i64::try_from(v).map_err(|_| ChainError::InvalidInput(format!("{v} does not fit the database's integer range")))
}

fn from_i64(v: i64) -> Result<u64, ChainError> {
    u64::try_from(v).map_err(|_| ChainError::Db(format!("negative number {v} in the database")))
}

fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starting_over_drops_the_old_chain_and_records_the_new_genesis() {
        let db = Db::open_in_memory().unwrap();
        let (old, new) = (B256::repeat_byte(1), B256::repeat_byte(2));
        assert_eq!(db.genesis_hash().unwrap(), None);
        db.set_genesis_hash(old).unwrap();
        db.check_chain_id(31337).unwrap();
        for n in 5..=9u64 {
            db.put_block_header(n, B256::with_last_byte(n as u8), B256::with_last_byte(n as u8 - 1)).unwrap();
        }
        assert_eq!(db.oldest_block_header().unwrap().map(|(n, _, _)| n), Some(5));
        db.set_last_block(9, B256::with_last_byte(9)).unwrap();
        let row = OrchestratorRow {
            address: Address::repeat_byte(3),
            service_uri: "https://o.example:8935".into(),
            activation_round: 1,
            deactivation_round: 0,
            stake: U256::from(1),
        };
        db.upsert_orchestrator(&row).unwrap();

        let dropped = db.start_over(new).unwrap();
        assert_eq!(dropped, Dropped { last_block: Some(9), block_headers: 5, orchestrators: 1 });
        assert_eq!(db.genesis_hash().unwrap(), Some(new));
        assert_eq!(db.last_block().unwrap(), None);
        assert_eq!(db.latest_block_header().unwrap(), None);
        assert_eq!(db.oldest_block_header().unwrap(), None);
        assert!(db.orchestrators().unwrap().is_empty());
        // The chain id and the schema version stay.
        assert_eq!(db.chain_id().unwrap(), Some(31337));
        assert_eq!(db.schema_version().unwrap(), SCHEMA_VERSION);
        // A corrupt value is a typed error.
        db.kv_set("genesisHash", "nope").unwrap();
        assert!(matches!(db.genesis_hash(), Err(ChainError::Db(_))));
    }

    fn ticket(nonce: u64, creation_round: u64, expiration: u64) -> WinningTicket {
        WinningTicket {
            ticket: Ticket {
                recipient: Address::repeat_byte(1),
                sender: Address::repeat_byte(2),
                faceValue: U256::from(10u64).pow(U256::from(17u64)),
                winProb: U256::MAX,
                senderNonce: U256::from(nonce),
                recipientRandHash: crate::pm::recipient_rand_hash(U256::from(7)),
                auxData: crate::pm::aux_data(creation_round, B256::repeat_byte(3)),
            },
            sig: Bytes::from(vec![0xab; 65]),
            recipient_rand: U256::from(7),
            params_expiration_block: expiration,
        }
    }

    #[test]
    fn winning_tickets_are_queued_once_taken_when_due_and_keep_their_outcome() {
        let db = Db::open_in_memory().unwrap();
        let (a, b, c) = (ticket(1, 5, 100), ticket(2, 4, 110), ticket(3, 5, 90));
        for t in [&a, &b, &c] {
            assert!(db.queue_winning_ticket(t).unwrap());
        }
        assert!(!db.queue_winning_ticket(&a).unwrap(), "a ticket is queued once");
        assert_eq!(db.winning_tickets(None).unwrap().len(), 3);

        // Due once the parameters expired; oldest creation round first, then as queued.
        let hashes = |rows: Vec<WinningTicketRow>| rows.into_iter().map(|r| r.ticket_hash).collect::<Vec<_>>();
        let (ha, hb, hc) = (ticket_hash(&a.ticket), ticket_hash(&b.ticket), ticket_hash(&c.ticket));
        assert_eq!(hashes(db.due_winning_tickets(89, 10).unwrap()), Vec::<B256>::new());
        assert_eq!(hashes(db.due_winning_tickets(100, 10).unwrap()), vec![ha, hc]);
        assert_eq!(hashes(db.due_winning_tickets(110, 10).unwrap()), vec![hb, ha, hc]);
        assert_eq!(hashes(db.due_winning_tickets(110, 1).unwrap()), vec![hb]);

        // The row gives the ticket back as it was queued.
        let row = db.winning_ticket(ha).unwrap().unwrap();
        assert_eq!((row.status, row.attempts, row.creation_round), (TicketStatus::Pending, 0, 5));
        let back = row.ticket();
        assert_eq!(ticket_hash(&back.ticket), ha);
        assert_eq!(
            (back.sig, back.recipient_rand, back.params_expiration_block),
            (a.sig.clone(), a.recipient_rand, 100)
        );

        // A retry waits for its block; a result is kept and never overwritten.
        let retry = TicketOutcome::Retry { error: "rpc down".into(), next_attempt_block: 120 };
        assert!(db.record_ticket_outcome(ha, &retry).unwrap());
        assert_eq!(hashes(db.due_winning_tickets(119, 10).unwrap()), vec![hb, hc]);
        assert_eq!(hashes(db.due_winning_tickets(120, 10).unwrap()), vec![hb, ha, hc]);
        let tx = B256::repeat_byte(9);
        let done = TicketOutcome::Redeemed {
            tx: Some(tx),
            gas_used: Some(123_456),
            paid: Some(a.ticket.faceValue),
            note: None,
        };
        assert!(db.record_ticket_outcome(ha, &done).unwrap());
        assert!(db.record_ticket_outcome(hc, &TicketOutcome::Failed { reason: "ticket is expired".into() }).unwrap());
        assert!(!db.record_ticket_outcome(ha, &retry).unwrap(), "a redeemed ticket stays redeemed");
        assert!(!db.queue_winning_ticket(&a).unwrap());
        let row = db.winning_ticket(ha).unwrap().unwrap();
        assert_eq!(
            (row.status, row.attempts, row.tx_hash, row.gas_used),
            (TicketStatus::Redeemed, 2, Some(tx), Some(123_456))
        );
        assert_eq!((row.paid, row.last_error), (Some(a.ticket.faceValue), None));
        let row = db.winning_ticket(hc).unwrap().unwrap();
        assert_eq!((row.status, row.last_error.as_deref()), (TicketStatus::Failed, Some("ticket is expired")));
        assert_eq!(hashes(db.due_winning_tickets(1000, 10).unwrap()), vec![hb]);
        assert_eq!(hashes(db.winning_tickets(Some(TicketStatus::Pending)).unwrap()), vec![hb]);
        assert_eq!(db.winning_tickets(Some(TicketStatus::Redeemed)).unwrap().len(), 1);
    }

    #[test]
    fn a_version_1_database_is_migrated_and_keeps_its_data() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join(DB_FILE);
        {
            // What a version 1 node wrote.
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(SCHEMA).unwrap();
            conn.execute(
                "INSERT INTO kv (key, value, updatedAt) VALUES ('dbVersion', '1', 0), ('chainID', '31337', 0)",
                [],
            )
            .unwrap();
        }
        let db = Db::open(&path).unwrap();
        assert_eq!(db.schema_version().unwrap(), SCHEMA_VERSION);
        assert_eq!(db.chain_id().unwrap(), Some(31337));
        assert!(db.queue_winning_ticket(&ticket(1, 1, 1)).unwrap());
        drop(db);
        let db = Db::open(&path).unwrap();
        assert_eq!(db.winning_tickets(None).unwrap().len(), 1);
    }
}
