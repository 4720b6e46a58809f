//! TxManager against a real anvil: receipts, the gas-price cap, replacement of a stuck
//! transaction, nonces under concurrency and after outside sends, revert reasons.

use std::sync::Arc;
use std::time::{Duration, Instant};

use alloy::network::TransactionBuilder;
use alloy::primitives::{Address, Bytes, U256};
use alloy::providers::ext::AnvilApi;
use alloy::providers::{DynProvider, Provider};
use alloy::rpc::types::TransactionRequest;
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::{Revert, SolError};
use lp_chain::anvil::{Anvil, AnvilOptions, DEV_KEYS};
use lp_chain::client::http_provider;
use lp_chain::error::ChainError;
use lp_chain::tx::{TxManager, TxPolicy};

const ETH: u128 = 1_000_000_000_000_000_000;
const REVERT_REASON: &str = "nope: this always reverts";

fn start() -> (Anvil, DynProvider) {
    let anvil = Anvil::spawn(AnvilOptions::default()).expect("anvil");
    let provider = http_provider(&anvil.url()).unwrap();
    (anvil, provider)
}

fn fast_policy() -> TxPolicy {
    TxPolicy { receipt_poll_interval: Duration::from_millis(50), ..TxPolicy::default() }
}

fn signer(i: usize) -> PrivateKeySigner {
    DEV_KEYS[i].parse().unwrap()
}

fn transfer(to: Address, wei: u128) -> TransactionRequest {
    TransactionRequest::default().with_to(to).with_value(U256::from(wei))
}

/// Init code of a contract whose every call reverts with `Error(REVERT_REASON)`.
fn always_reverts_init_code() -> Vec<u8> {
    let data = Revert::from(REVERT_REASON).abi_encode();
    assert_eq!(data.len(), 100);
    // runtime: CODECOPY(mem 0, code 12, 100); REVERT(0, 100); then the revert data.
    let mut runtime = vec![0x60, 100, 0x60, 12, 0x60, 0, 0x39, 0x60, 100, 0x60, 0, 0xfd];
    runtime.extend_from_slice(&data);
    let len = runtime.len() as u8;
    // init: CODECOPY(mem 0, code 12, len); RETURN(0, len); then the runtime.
    let mut init = vec![0x60, len, 0x60, 12, 0x60, 0, 0x39, 0x60, len, 0x60, 0, 0xf3];
    init.extend_from_slice(&runtime);
    init
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_transfer_gets_a_receipt_and_min_gas_price_applies() {
    let (_anvil, provider) = start();
    let min = 50_000_000_000u128; // 50 gwei, above anvil's price
    let tm = TxManager::new(provider.clone(), signer(0), TxPolicy { min_gas_price: min, ..fast_policy() });
    assert_eq!(tm.address(), signer(0).address());
    assert_eq!(tm.gas_price().await.unwrap(), min);

    let to = Address::repeat_byte(0x42);
    let receipt = tm.send(transfer(to, ETH), "test.transfer").await.unwrap();
    assert!(receipt.status());
    assert_eq!(receipt.from, tm.address());
    assert_eq!(receipt.effective_gas_price, min);
    assert_eq!(provider.get_balance(to).await.unwrap(), U256::from(ETH));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gas_price_above_max_is_refused_and_nothing_is_sent() {
    let (_anvil, provider) = start();
    let me = signer(0).address();
    let price = provider.get_gas_price().await.unwrap();
    let tm = TxManager::new(provider.clone(), signer(0), TxPolicy { max_gas_price: price - 1, ..fast_policy() });
    let nonce_before = provider.get_transaction_count(me).pending().await.unwrap();
    let balance_before = provider.get_balance(me).await.unwrap();

    let err = tm.send(transfer(Address::repeat_byte(1), 1), "test.transfer").await.unwrap_err();
    match err {
        ChainError::GasPriceTooHigh { price: p, max } => {
            assert_eq!(p, price);
            assert_eq!(max, price - 1);
        }
        other => panic!("expected GasPriceTooHigh, got {other:?}"),
    }
    assert_eq!(provider.get_transaction_count(me).pending().await.unwrap(), nonce_before);
    assert_eq!(provider.get_balance(me).await.unwrap(), balance_before);

    // An explicit fee above the cap is refused too.
    let tm = TxManager::new(provider.clone(), signer(0), TxPolicy { max_gas_price: price, ..fast_policy() });
    let err = tm.send(transfer(Address::repeat_byte(1), 1).with_gas_price(price + 1), "test").await.unwrap_err();
    assert!(matches!(err, ChainError::GasPriceTooHigh { .. }), "{err:?}");
    // At the cap it goes through.
    tm.send(transfer(Address::repeat_byte(1), 1), "test.transfer").await.unwrap();
}

/// The pending transactions of `from` in anvil's pool, as (hash, gasPrice).
async fn pooled(provider: &DynProvider, from: Address) -> Vec<(String, u128)> {
    let content: serde_json::Value = provider.raw_request("txpool_content".into(), ()).await.unwrap();
    let mut out = Vec::new();
    for (addr, by_nonce) in content["pending"].as_object().into_iter().flatten() {
        if addr.parse::<Address>().ok() != Some(from) {
            continue;
        }
        for tx in by_nonce.as_object().into_iter().flatten().map(|(_, t)| t) {
            let price = tx["gasPrice"].as_str().and_then(|p| u128::from_str_radix(p.trim_start_matches("0x"), 16).ok());
            out.push((tx["hash"].as_str().unwrap_or_default().to_string(), price.unwrap_or(0)));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_transaction_is_replaced_with_higher_fees() {
    let (_anvil, provider) = start();
    let policy = TxPolicy { timeout: Duration::from_secs(2), max_replacements: 1, ..fast_policy() };
    let tm = Arc::new(TxManager::new(provider.clone(), signer(1), policy));
    let me = tm.address();
    let first_price = tm.gas_price().await.unwrap();
    let nonce = provider.get_transaction_count(me).await.unwrap();

    provider.anvil_set_auto_mine(false).await.unwrap();
    let to = Address::repeat_byte(0x77);
    let sender = {
        let tm = tm.clone();
        tokio::spawn(async move { tm.send(transfer(to, 12345), "test.stuck").await })
    };

    // The first transaction sits in the pool...
    let started = Instant::now();
    let first_hash = loop {
        if let Some((hash, price)) = pooled(&provider, me).await.pop() {
            assert_eq!(price, first_price);
            break hash;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "first transaction never reached the pool");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // ...until the timeout passes and the manager replaces it (same nonce, +11%).
    let replacement_price = loop {
        let pool = pooled(&provider, me).await;
        assert!(pool.len() <= 1, "replacement must reuse the nonce: {pool:?}");
        if let Some((hash, price)) = pool.first()
            && *hash != first_hash
        {
            break *price;
        }
        assert!(started.elapsed() < Duration::from_secs(15), "no replacement after the timeout");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(started.elapsed() >= Duration::from_millis(1900), "replaced before the timeout");
    assert!(replacement_price * 100 >= first_price * 111, "{replacement_price} vs {first_price}");

    provider.anvil_mine(Some(1), None).await.unwrap();
    let receipt = sender.await.unwrap().expect("send after replacement");
    assert!(receipt.status());
    assert_ne!(receipt.transaction_hash.to_string(), first_hash);
    assert!(receipt.effective_gas_price * 100 >= first_price * 111);
    let mined = provider.get_transaction_by_hash(receipt.transaction_hash).await.unwrap().unwrap();
    assert_eq!(alloy::consensus::Transaction::nonce(&mined), nonce);
    assert_eq!(provider.get_transaction_count(me).await.unwrap(), nonce + 1);
    assert_eq!(provider.get_balance(to).await.unwrap(), U256::from(12345));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeout_without_replacements_then_the_nonce_recovers() {
    let (_anvil, provider) = start();
    let policy = TxPolicy { timeout: Duration::from_secs(1), max_replacements: 0, ..fast_policy() };
    let tm = TxManager::new(provider.clone(), signer(2), policy);
    provider.anvil_set_auto_mine(false).await.unwrap();
    let err = tm.send(transfer(Address::repeat_byte(3), 1), "test.stuck").await.unwrap_err();
    assert!(matches!(err, ChainError::Timeout(_)), "{err:?}");
    assert!(err.to_string().contains("test.stuck"), "{err}");

    // The stuck transaction is eventually mined; the next send uses the following nonce.
    provider.anvil_set_auto_mine(true).await.unwrap();
    provider.anvil_mine(Some(1), None).await.unwrap();
    let receipt = tm.send(transfer(Address::repeat_byte(3), 1), "test.after").await.unwrap();
    assert!(receipt.status());
    assert_eq!(provider.get_balance(Address::repeat_byte(3)).await.unwrap(), U256::from(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_sends_get_distinct_nonces() {
    let (_anvil, provider) = start();
    let tm = Arc::new(TxManager::new(provider.clone(), signer(3), fast_policy()));
    let me = tm.address();
    let start_nonce = provider.get_transaction_count(me).await.unwrap();
    let mut set = tokio::task::JoinSet::new();
    const N: u64 = 8;
    for i in 0..N {
        let tm = tm.clone();
        set.spawn(async move { tm.send(transfer(Address::repeat_byte(0x10), 1 + i as u128), "test.concurrent").await });
    }
    let mut nonces = Vec::new();
    while let Some(res) = set.join_next().await {
        let receipt = res.unwrap().expect("every concurrent send mines");
        assert!(receipt.status());
        let tx = provider.get_transaction_by_hash(receipt.transaction_hash).await.unwrap().unwrap();
        nonces.push(alloy::consensus::Transaction::nonce(&tx));
    }
    nonces.sort_unstable();
    assert_eq!(nonces, (start_nonce..start_nonce + N).collect::<Vec<_>>());
    assert_eq!(provider.get_balance(Address::repeat_byte(0x10)).await.unwrap(), U256::from((1..=N).sum::<u64>()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nonce_resyncs_after_a_send_from_elsewhere() {
    let (_anvil, provider) = start();
    let tm = TxManager::new(provider.clone(), signer(0), fast_policy());
    tm.send(transfer(Address::repeat_byte(5), 1), "test.first").await.unwrap();
    // Another process (another manager) uses the next nonce behind our back.
    let other = TxManager::new(provider.clone(), signer(0), fast_policy());
    other.send(transfer(Address::repeat_byte(5), 1), "test.elsewhere").await.unwrap();
    // Our counter is stale: "nonce too low", resync, success.
    let receipt = tm.send(transfer(Address::repeat_byte(5), 1), "test.after").await.unwrap();
    assert!(receipt.status());
    assert_eq!(provider.get_balance(Address::repeat_byte(5)).await.unwrap(), U256::from(3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reverts_carry_the_contract_reason() {
    let (_anvil, provider) = start();
    let tm = TxManager::new(provider.clone(), signer(0), fast_policy());
    let deploy = TransactionRequest::default().with_deploy_code(Bytes::from(always_reverts_init_code()));
    let receipt = tm.send(deploy, "test.deploy").await.unwrap();
    let target = receipt.contract_address.expect("deployed");
    let me = tm.address();

    // Caught by gas estimation: nothing is sent.
    let nonce = provider.get_transaction_count(me).await.unwrap();
    let call = TransactionRequest::default().with_to(target).with_input(Bytes::from_static(b"\x12\x34\x56\x78"));
    let err = tm.send(call.clone(), "Test.fail").await.unwrap_err();
    match &err {
        ChainError::Reverted { reason } => assert_eq!(reason, REVERT_REASON),
        other => panic!("expected Reverted, got {other:?}"),
    }
    assert_eq!(err.to_string(), format!("reverted: {REVERT_REASON}"));
    assert_eq!(provider.get_transaction_count(me).await.unwrap(), nonce);

    // Mined with status 0 (fixed gas, no estimate): the reason comes from replaying the call.
    let err = tm.send(call.with_gas_limit(100_000), "Test.fail").await.unwrap_err();
    match &err {
        ChainError::Reverted { reason } => assert_eq!(reason, REVERT_REASON),
        other => panic!("expected Reverted, got {other:?}"),
    }
    assert_eq!(provider.get_transaction_count(me).await.unwrap(), nonce + 1);

    // Out of gas is named as such.
    let err = tm.send(transfer(target, 0).with_gas_limit(21_010), "Test.oog").await.unwrap_err();
    assert!(err.to_string().contains("out of gas"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_replacement_above_the_max_gas_price() {
    let (_anvil, provider) = start();
    let price = provider.get_gas_price().await.unwrap();
    // The first send is at the cap; its +11% replacement would exceed it.
    let policy =
        TxPolicy { timeout: Duration::from_secs(1), max_replacements: 3, max_gas_price: price, ..fast_policy() };
    let tm = TxManager::new(provider.clone(), signer(2), policy);
    provider.anvil_set_auto_mine(false).await.unwrap();
    let err = tm.send(transfer(Address::repeat_byte(4), 1), "test.capped").await.unwrap_err();
    assert!(matches!(err, ChainError::Timeout(_)), "{err:?}");
    assert!(err.to_string().contains("above the maximum"), "{err}");
    assert_eq!(pooled(&provider, tm.address()).await.len(), 1, "the original stays, no replacement");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eip1559_fees_are_kept() {
    let (_anvil, provider) = start();
    let tm = TxManager::new(provider.clone(), signer(0), fast_policy());
    let max_fee = 3 * provider.get_gas_price().await.unwrap();
    let tx =
        transfer(Address::repeat_byte(6), 1).with_max_fee_per_gas(max_fee).with_max_priority_fee_per_gas(1_000_000);
    let receipt = tm.send(tx, "test.1559").await.unwrap();
    assert!(receipt.status());
    let mined = provider.get_transaction_by_hash(receipt.transaction_hash).await.unwrap().unwrap();
    assert_eq!(alloy::consensus::Typed2718::ty(&mined), 2);
    assert!(receipt.effective_gas_price <= max_fee);
}
