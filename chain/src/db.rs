//! The node's embedded database, `<data_dir>/lpdb.sqlite3`, with go-livepeer's tables as a guide
//! (`common/db.go`): `kv` (schema version, chain id, genesis block hash, last block),
//! `orchestrators` (the gateway's cache and the orchestrator's own activity) and `blockheaders`.
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

use alloy::primitives::{Address, B256, U256};
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};
use serde::Serialize;

use crate::error::ChainError;

/// The file name under the data directory.
pub const DB_FILE: &str = "lpdb.sqlite3";
/// The schema version this code writes (`kv.dbVersion`).
pub const SCHEMA_VERSION: u32 = 1;
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
        match db.kv_get("dbVersion")? {
            None => db.kv_set("dbVersion", &SCHEMA_VERSION.to_string())?,
            Some(v) => {
                let stored: u32 =
                    v.parse().map_err(|_| ChainError::Db(format!("unreadable schema version {v:?} in table kv")))?;
                if stored > SCHEMA_VERSION {
                    return Err(ChainError::Db(format!(
                        "the database has schema version {stored}, newer than this node's {SCHEMA_VERSION}; \
                         upgrade the node"
                    )));
                }
            }
        }
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
}
