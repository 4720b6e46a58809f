//! The node's SQLite database: chain id guard, last block, orchestrator cache, block headers.

use alloy::primitives::{Address, B256, U256};
use lp_chain::db::{DB_FILE, Db, OrchestratorRow, SCHEMA_VERSION};
use lp_chain::error::ChainError;

fn h(n: u8) -> B256 {
    B256::repeat_byte(n)
}

#[test]
fn chain_id_is_stored_then_a_mismatch_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    {
        let db = Db::open_in(tmp.path()).unwrap();
        assert_eq!(db.chain_id().unwrap(), None);
        db.check_chain_id(42161).unwrap();
        db.check_chain_id(42161).unwrap();
        assert_eq!(db.schema_version().unwrap(), SCHEMA_VERSION);
    }
    assert!(tmp.path().join(DB_FILE).exists());
    // Survives reopening; another chain is refused and changes nothing.
    let db = Db::open(&tmp.path().join(DB_FILE)).unwrap();
    let err = db.check_chain_id(31337).unwrap_err();
    assert!(matches!(err, ChainError::ChainIdMismatch { stored: 42161, actual: 31337 }), "{err:?}");
    assert!(err.to_string().contains("42161") && err.to_string().contains("31337"));
    assert_eq!(db.chain_id().unwrap(), Some(42161));
    // WAL mode is on, with synchronous = FULL (2) on every connection.
    let mode: String = db.connection().query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
    assert_eq!(mode, "wal");
    let synchronous: i64 = db.connection().query_row("PRAGMA synchronous", [], |r| r.get(0)).unwrap();
    assert_eq!(synchronous, 2);
}

#[test]
fn a_transaction_commits_on_ok_and_rolls_back_on_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let db = Db::open_in(tmp.path()).unwrap();
    db.transaction(|db| {
        db.put_block_header(1, h(1), h(0))?;
        db.set_last_block(1, h(1))
    })
    .unwrap();
    let err = db
        .transaction(|db| {
            db.set_last_block(2, h(2))?;
            db.put_block_header(u64::MAX, h(2), h(1))
        })
        .unwrap_err();
    assert!(matches!(err, ChainError::InvalidInput(_)), "{err:?}");
    assert_eq!(db.last_block().unwrap(), Some((1, h(1))), "the failed transaction left nothing");
    // Starting over joins the caller's transaction, and is rolled back with it.
    let err = db
        .transaction(|db| {
            db.start_over(h(9))?;
            Err::<(), _>(ChainError::InvalidInput("abandon".into()))
        })
        .unwrap_err();
    assert!(matches!(err, ChainError::InvalidInput(_)));
    assert_eq!(db.last_block().unwrap(), Some((1, h(1))));
    assert_eq!(db.genesis_hash().unwrap(), None);
    // Another connection sees what was committed.
    let other = Db::open_in(tmp.path()).unwrap();
    assert_eq!(other.block_header(1).unwrap(), Some((h(1), h(0))));
}

#[test]
fn last_block_round_trips() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("sub/dir").join(DB_FILE);
    {
        let db = Db::open(&path).unwrap();
        assert_eq!(db.last_block().unwrap(), None);
        db.set_last_block(100, h(1)).unwrap();
        db.set_last_block(101, h(2)).unwrap();
        assert_eq!(db.last_block().unwrap(), Some((101, h(2))));
    }
    let db = Db::open(&path).unwrap();
    assert_eq!(db.last_block().unwrap(), Some((101, h(2))));
    // A corrupt value is a typed error, not a panic.
    db.kv_set("lastBlock", "garbage").unwrap();
    assert!(matches!(db.last_block(), Err(ChainError::Db(_))));
}

#[test]
fn block_headers_store_and_prune() {
    let db = Db::open_in_memory().unwrap();
    for n in 1..=10u8 {
        db.put_block_header(u64::from(n), h(n), h(n - 1)).unwrap();
    }
    assert_eq!(db.block_header(5).unwrap(), Some((h(5), h(4))));
    assert_eq!(db.latest_block_header().unwrap(), Some((10, h(10), h(9))));
    assert_eq!(db.prune_block_headers(8).unwrap(), 7);
    assert_eq!(db.block_header(7).unwrap(), None);
    assert_eq!(db.block_header(8).unwrap(), Some((h(8), h(7))));
    assert_eq!(db.block_header(10).unwrap(), Some((h(10), h(9))));
    // A second header at the same height (reorg): the latest one wins.
    db.put_block_header(10, h(0xaa), h(9)).unwrap();
    assert_eq!(db.block_header(10).unwrap(), Some((h(0xaa), h(9))));
    assert_eq!(db.prune_block_headers(100).unwrap(), 4);
    assert_eq!(db.latest_block_header().unwrap(), None);
    // Numbers beyond SQLite's integer range are refused.
    assert!(matches!(db.put_block_header(u64::MAX, h(1), h(0)), Err(ChainError::InvalidInput(_))));
}

#[test]
fn orchestrators_upsert_keeps_known_values() {
    let db = Db::open_in_memory().unwrap();
    let a = Address::repeat_byte(0xab);
    let b = Address::repeat_byte(0x01);
    db.upsert_orchestrator(&OrchestratorRow {
        address: a,
        service_uri: "https://o.example:8935".to_string(),
        activation_round: 5,
        deactivation_round: 0,
        stake: U256::from(10).pow(U256::from(24)),
    })
    .unwrap();
    db.upsert_orchestrator(&OrchestratorRow {
        address: b,
        service_uri: String::new(),
        activation_round: 1,
        deactivation_round: 0,
        stake: U256::ZERO,
    })
    .unwrap();
    // An update with zero rounds and no URI keeps what is known; the stake is replaced.
    db.upsert_orchestrator(&OrchestratorRow {
        address: a,
        service_uri: String::new(),
        activation_round: 0,
        deactivation_round: 9,
        stake: U256::from(7),
    })
    .unwrap();
    let all = db.orchestrators().unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].address, b);
    let row = db.orchestrator(a).unwrap().unwrap();
    assert_eq!(row.service_uri, "https://o.example:8935");
    assert_eq!(row.activation_round, 5);
    assert_eq!(row.deactivation_round, 9);
    assert_eq!(row.stake, U256::from(7));
    assert_eq!(db.orchestrator(Address::ZERO).unwrap(), None);
}

#[test]
fn a_newer_schema_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    {
        let db = Db::open_in(tmp.path()).unwrap();
        db.kv_set("dbVersion", &(SCHEMA_VERSION + 1).to_string()).unwrap();
    }
    let err = Db::open_in(tmp.path()).unwrap_err();
    assert!(matches!(err, ChainError::Db(_)) && err.to_string().contains("newer"), "{err}");
}
