//! [`TxManager`]: how the node sends transactions (go-livepeer's `eth/backend.go`,
//! `transactionmanager.go` and `gaspricemonitor.go`, tightened).
//!
//! - **Gas price**: `eth_gasPrice`, cached for `poll_interval` (go-livepeer's block polling
//!   interval, 5 s), floored at `min_gas_price`. A transaction whose fee cap is above
//!   `max_gas_price` (0 = no maximum) is refused with [`ChainError::GasPriceTooHigh`] before
//!   anything is signed.
//! - **Nonces**: one counter per manager (so per account), initialised from
//!   `eth_getTransactionCount(pending)` and held under a lock while a transaction is signed and
//!   submitted, so concurrent sends never collide. A "nonce too low" answer resyncs it and retries.
//! - **Gas limit**: `eth_estimateGas` plus 20% (or `gas_limit` when set). A revert found by the
//!   estimate is reported with its reason and nothing is sent.
//! - **Waiting**: the receipt is polled until `timeout`; a transaction still not mined is then
//!   replaced (same nonce) with its fees raised by 11%, up to `max_replacements` times, after
//!   which the send fails with [`ChainError::Timeout`]. A replacement that would exceed
//!   `max_gas_price` is not sent. Every hash sent is watched, since an earlier one may still win.
//! - **Reverts**: a receipt with status 0 is [`ChainError::Reverted`] with the reason, found by
//!   replaying the call with `eth_call` at the block it was mined in.
//!
//! Fees are legacy `gasPrice` unless the request already carries EIP-1559 fields, in which case
//! those are kept and both are bumped on replacement.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use alloy::eips::BlockId;
use alloy::eips::eip2718::Encodable2718;
use alloy::network::{EthereumWallet, NetworkTransactionBuilder};
use alloy::primitives::{Address, B256};
use alloy::providers::{DynProvider, Provider};
use alloy::rpc::types::{TransactionReceipt, TransactionRequest};
use alloy::signers::local::PrivateKeySigner;
use alloy::transports::{RpcError, TransportErrorKind};
use tokio::sync::OnceCell;

use crate::error::{ChainError, redact_urls, revert_reason_of};

/// The log target of the chain layer.
const TARGET: &str = "lp::chain";

/// Fee raise of a replacement, in percent (go-livepeer: 11%, above geth's 10% minimum).
pub const REPLACEMENT_BUMP_PERCENT: u128 = 11;

/// How transactions are priced, limited and retried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxPolicy {
    /// Floor of the polled gas price (wei). Default 0.
    pub min_gas_price: u128,
    /// Refuse a transaction whose fee cap is above this (wei); 0 = no maximum. Default 0.
    pub max_gas_price: u128,
    /// How long to wait for a receipt before replacing the transaction. Default 5 min.
    pub timeout: Duration,
    /// How many times a stuck transaction is replaced before giving up. Default 1.
    pub max_replacements: u32,
    /// How long a polled gas price is reused before `eth_gasPrice` is asked again. Default 5 s.
    pub poll_interval: Duration,
    /// How often to ask for a pending transaction's receipt. Default 1 s.
    pub receipt_poll_interval: Duration,
    /// A fixed gas limit for every transaction; 0 = estimate each one. Default 0.
    pub gas_limit: u64,
}

impl Default for TxPolicy {
    fn default() -> Self {
        TxPolicy {
            min_gas_price: 0,
            max_gas_price: 0,
            timeout: Duration::from_secs(300),
            max_replacements: 1,
            poll_interval: Duration::from_secs(5),
            receipt_poll_interval: Duration::from_secs(1),
            gas_limit: 0,
        }
    }
}

/// The fee fields of one transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fees {
    Legacy { gas_price: u128 },
    Eip1559 { max_fee: u128, priority: u128 },
}

impl Fees {
    /// The most the transaction can pay per gas.
    fn cap(self) -> u128 {
        match self {
            Fees::Legacy { gas_price } => gas_price,
            Fees::Eip1559 { max_fee, .. } => max_fee,
        }
    }

    /// The fees of a replacement: every field raised by 11%, rounded up.
    fn bumped(self) -> Fees {
        let bump = |v: u128| v.saturating_add((v.saturating_mul(REPLACEMENT_BUMP_PERCENT)).div_ceil(100).max(1));
        match self {
            Fees::Legacy { gas_price } => Fees::Legacy { gas_price: bump(gas_price) },
            Fees::Eip1559 { max_fee, priority } => Fees::Eip1559 { max_fee: bump(max_fee), priority: bump(priority) },
        }
    }

    fn apply(self, tx: &mut TransactionRequest) {
        match self {
            Fees::Legacy { gas_price } => {
                tx.gas_price = Some(gas_price);
                tx.max_fee_per_gas = None;
                tx.max_priority_fee_per_gas = None;
            }
            Fees::Eip1559 { max_fee, priority } => {
                tx.gas_price = None;
                tx.max_fee_per_gas = Some(max_fee);
                tx.max_priority_fee_per_gas = Some(priority);
            }
        }
    }
}

/// Sends one account's transactions: gas policy, nonces, replacement of stuck transactions and
/// revert reasons. Share it (`Arc`) between the tasks that send from the same account.
pub struct TxManager {
    provider: DynProvider,
    wallet: EthereumWallet,
    /// The account's key, also for signing what is not a transaction (payment tickets).
    signer: PrivateKeySigner,
    address: Address,
    policy: TxPolicy,
    chain_id: OnceCell<u64>,
    /// The next nonce to use; `None` = read it from the node (`pending`) first.
    nonce: tokio::sync::Mutex<Option<u64>>,
    /// The last polled gas price and when it was read.
    gas: Mutex<Option<(u128, Instant)>>,
}

impl std::fmt::Debug for TxManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TxManager")
            .field("address", &self.address)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl TxManager {
    /// A manager for `signer`'s transactions through `provider`.
    pub fn new(provider: DynProvider, signer: PrivateKeySigner, policy: TxPolicy) -> Self {
        let address = signer.address();
        TxManager {
            provider,
            wallet: EthereumWallet::from(signer.clone()),
            signer,
            address,
            policy,
            chain_id: OnceCell::new(),
            nonce: tokio::sync::Mutex::new(None),
            gas: Mutex::new(None),
        }
    }

    /// The sending account.
    pub fn address(&self) -> Address {
        self.address
    }

    /// The account's key.
    pub fn signer(&self) -> &PrivateKeySigner {
        &self.signer
    }

    /// The policy in force.
    pub fn policy(&self) -> &TxPolicy {
        &self.policy
    }

    /// The provider transactions go through.
    pub fn provider(&self) -> &DynProvider {
        &self.provider
    }

    /// The current gas price (wei): `eth_gasPrice`, reused for `poll_interval`, floored at
    /// `min_gas_price`.
    pub async fn gas_price(&self) -> Result<u128, ChainError> {
        let cached = *self.gas.lock().unwrap_or_else(|e| e.into_inner());
        let raw = match cached {
            Some((price, at)) if at.elapsed() < self.policy.poll_interval => price,
            _ => {
                let price = self.provider.get_gas_price().await?;
                *self.gas.lock().unwrap_or_else(|e| e.into_inner()) = Some((price, Instant::now()));
                price
            }
        };
        Ok(raw.max(self.policy.min_gas_price))
    }

    /// Forget the polled gas price so the next send asks the node again.
    pub fn invalidate_gas_price(&self) {
        *self.gas.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    async fn chain_id(&self) -> Result<u64, ChainError> {
        self.chain_id.get_or_try_init(|| async { Ok(self.provider.get_chain_id().await?) }).await.copied()
    }

    /// Sign and send `tx` from this account and wait until it is mined. `what` names the action
    /// in logs and errors (e.g. `"BondingManager.reward"`). The request's `to`, `input` and
    /// `value` are used; `from` and `nonce` are set here; fee fields and `gas` are kept if set.
    pub async fn send(&self, mut tx: TransactionRequest, what: &str) -> Result<TransactionReceipt, ChainError> {
        tx.from = Some(self.address);
        tx.nonce = None;
        tx.chain_id = Some(self.chain_id().await?);

        let fees = match (tx.max_fee_per_gas, tx.gas_price) {
            (Some(max_fee), _) => {
                Fees::Eip1559 { max_fee, priority: tx.max_priority_fee_per_gas.unwrap_or(0).min(max_fee) }
            }
            (None, Some(gas_price)) => Fees::Legacy { gas_price },
            (None, None) => Fees::Legacy { gas_price: self.gas_price().await? },
        };
        self.check_max(fees)?;
        fees.apply(&mut tx);

        if tx.gas.is_none() {
            let limit = if self.policy.gas_limit > 0 {
                self.policy.gas_limit
            } else {
                let estimate = self.provider.estimate_gas(tx.clone()).await.map_err(|e| {
                    let err = ChainError::from_rpc(&e);
                    tracing::warn!(target: TARGET, method = what, error = %err, "Gas estimation failed; transaction not sent.");
                    err
                })?;
                estimate.saturating_add(estimate / 5)
            };
            tx.gas = Some(limit);
        }

        let (nonce, first_hash) = self.submit_new(&mut tx, what).await?;
        self.wait(tx, fees, nonce, first_hash, what).await
    }

    fn check_max(&self, fees: Fees) -> Result<(), ChainError> {
        let max = self.policy.max_gas_price;
        if max > 0 && fees.cap() > max {
            return Err(ChainError::GasPriceTooHigh { price: fees.cap(), max });
        }
        Ok(())
    }

    /// Take a nonce, sign and submit. The nonce lock is held only for this.
    async fn submit_new(&self, tx: &mut TransactionRequest, what: &str) -> Result<(u64, B256), ChainError> {
        let mut next = self.nonce.lock().await;
        let mut resynced = false;
        loop {
            let nonce = match *next {
                Some(n) => n,
                None => self.provider.get_transaction_count(self.address).pending().await?,
            };
            tx.nonce = Some(nonce);
            let (hash, raw) = self.sign(tx.clone()).await?;
            match self.provider.send_raw_transaction(&raw).await {
                Ok(_) => {
                    *next = Some(nonce + 1);
                    tracing::info!(
                        target: TARGET,
                        tx = %hash,
                        method = what,
                        nonce,
                        from = %self.address,
                        gas_limit = tx.gas,
                        gas_price = tx.gas_price.or(tx.max_fee_per_gas),
                        "Transaction sent."
                    );
                    return Ok((nonce, hash));
                }
                Err(e) if is_nonce_too_low(&e) && !resynced => {
                    tracing::warn!(target: TARGET, method = what, nonce, "Nonce too low; resyncing the nonce from the node.");
                    resynced = true;
                    *next = None;
                }
                Err(e) => {
                    // The node refused it, so the nonce may be unused: read it again next time.
                    *next = None;
                    let err = ChainError::from_rpc(&e);
                    tracing::warn!(target: TARGET, method = what, nonce, error = %err, "Transaction refused by the node.");
                    return Err(err);
                }
            }
        }
    }

    async fn sign(&self, tx: TransactionRequest) -> Result<(B256, Vec<u8>), ChainError> {
        let envelope = tx
            .build(&self.wallet)
            .await
            .map_err(|e| ChainError::InvalidInput(format!("cannot build the transaction: {e}")))?;
        Ok((*envelope.tx_hash(), envelope.encoded_2718()))
    }

    /// Wait for a receipt of any of the transactions sent with `nonce`, replacing the latest one
    /// each time `timeout` passes, up to `max_replacements` times.
    async fn wait(
        &self,
        mut tx: TransactionRequest,
        mut fees: Fees,
        nonce: u64,
        first_hash: B256,
        what: &str,
    ) -> Result<TransactionReceipt, ChainError> {
        let mut hashes = vec![first_hash];
        let mut replacements = 0u32;
        let mut deadline = Instant::now() + self.policy.timeout;
        loop {
            for hash in hashes.iter().rev() {
                match self.provider.get_transaction_receipt(*hash).await {
                    Ok(Some(receipt)) => return self.check_receipt(receipt, &tx, what).await,
                    Ok(None) => {}
                    Err(e) => tracing::debug!(
                        target: TARGET,
                        tx = %hash,
                        error = %redact_urls(&e.to_string()),
                        "Receipt poll failed; will retry."
                    ),
                }
            }
            let now = Instant::now();
            if now >= deadline {
                let latest = hashes.last().copied().unwrap_or(first_hash);
                if replacements >= self.policy.max_replacements {
                    return Err(self.timed_out(what, nonce, latest, replacements, None).await);
                }
                let bumped = fees.bumped();
                if let Err(ChainError::GasPriceTooHigh { price, max }) = self.check_max(bumped) {
                    let why = format!("a replacement would pay {price} wei per gas, above the maximum of {max}");
                    return Err(self.timed_out(what, nonce, latest, replacements, Some(why)).await);
                }
                fees = bumped;
                fees.apply(&mut tx);
                let (hash, raw) = self.sign(tx.clone()).await?;
                match self.provider.send_raw_transaction(&raw).await {
                    Ok(_) => {
                        tracing::warn!(
                            target: TARGET,
                            tx = %hash,
                            replaces = %latest,
                            method = what,
                            nonce,
                            gas_price = fees.cap(),
                            "Transaction not mined in time; replaced it with 11% higher fees."
                        );
                        hashes.push(hash);
                    }
                    // An earlier transaction with this nonce was mined meanwhile: its receipt
                    // shows up on the next poll.
                    Err(e) if is_nonce_too_low(&e) || is_already_known(&e) => {}
                    Err(e) => {
                        let err = ChainError::from_rpc(&e);
                        tracing::warn!(target: TARGET, method = what, nonce, error = %err, "Replacement refused by the node.");
                        let why = format!("the replacement was refused: {err}");
                        return Err(self.timed_out(what, nonce, latest, replacements, Some(why)).await);
                    }
                }
                replacements += 1;
                deadline = Instant::now() + self.policy.timeout;
                continue;
            }
            tokio::time::sleep(self.policy.receipt_poll_interval.min(deadline - now)).await;
        }
    }

    async fn timed_out(
        &self,
        what: &str,
        nonce: u64,
        latest: B256,
        replacements: u32,
        why: Option<String>,
    ) -> ChainError {
        // Let the next send read the nonce from the node again: the stuck transaction may be
        // dropped from the pool, which would otherwise leave a gap.
        *self.nonce.lock().await = None;
        let msg = format!(
            "{what}: transaction {latest} (nonce {nonce}) not mined within {:?} after {replacements} replacement(s){}",
            self.policy.timeout,
            why.map(|w| format!("; {w}")).unwrap_or_default()
        );
        tracing::warn!(target: TARGET, method = what, tx = %latest, nonce, "Transaction timed out.");
        ChainError::Timeout(msg)
    }

    /// A mined receipt: success, or the revert with its reason.
    async fn check_receipt(
        &self,
        receipt: TransactionReceipt,
        tx: &TransactionRequest,
        what: &str,
    ) -> Result<TransactionReceipt, ChainError> {
        if receipt.status() {
            tracing::debug!(
                target: TARGET,
                tx = %receipt.transaction_hash,
                method = what,
                block = receipt.block_number,
                gas_used = receipt.gas_used,
                "Transaction mined."
            );
            return Ok(receipt);
        }
        let reason = self.revert_reason(&receipt, tx).await;
        tracing::warn!(
            target: TARGET,
            tx = %receipt.transaction_hash,
            method = what,
            block = receipt.block_number,
            %reason,
            "Transaction reverted."
        );
        Err(ChainError::Reverted { reason })
    }

    /// Why a mined transaction failed: out of gas, or the reason of the call replayed at its block.
    async fn revert_reason(&self, receipt: &TransactionReceipt, tx: &TransactionRequest) -> String {
        let limit = tx.gas.unwrap_or(u64::MAX);
        if receipt.gas_used >= limit {
            return format!("out of gas (used all {limit} gas)");
        }
        let mut call = TransactionRequest::default().from(self.address);
        call.to = tx.to;
        call.input = tx.input.clone();
        call.value = tx.value;
        call.gas = tx.gas;
        let at = receipt.block_number.map(BlockId::number).unwrap_or(BlockId::latest());
        match self.provider.call(call).block(at).await {
            Err(e) => {
                revert_reason_of(&e).unwrap_or_else(|| format!("no reason available: {}", redact_urls(&e.to_string())))
            }
            Ok(_) => "no reason given (the call succeeds when replayed at its block)".to_string(),
        }
    }
}

fn error_message(e: &RpcError<TransportErrorKind>) -> String {
    match e.as_error_resp() {
        Some(payload) => payload.message.to_ascii_lowercase(),
        None => e.to_string().to_ascii_lowercase(),
    }
}

fn is_nonce_too_low(e: &RpcError<TransportErrorKind>) -> bool {
    error_message(e).contains("nonce too low")
}

fn is_already_known(e: &RpcError<TransportErrorKind>) -> bool {
    let m = error_message(e);
    m.contains("already known") || m.contains("already imported") || m.contains("known transaction")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bump_is_at_least_11_percent() {
        for v in [1u128, 7, 100, 1_000_000_007, 2_000_000_000] {
            let Fees::Legacy { gas_price } = (Fees::Legacy { gas_price: v }).bumped() else { unreachable!() };
            assert!(gas_price * 100 >= v * 111, "{v} -> {gas_price}");
            assert!(gas_price > v);
        }
        let b = Fees::Eip1559 { max_fee: 200, priority: 10 }.bumped();
        assert_eq!(b, Fees::Eip1559 { max_fee: 222, priority: 12 });
    }
}
