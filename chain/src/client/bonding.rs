//! BondingManager, except `reward` (in `reward`): bonding, unbonding locks, rebonding and
//! withdrawing stake, registration as a transcoder, withdrawing fees, and the transcoder pool
//! (next round's active set) in its on-chain order.

use alloy::primitives::{Address, U256};
use alloy::rpc::types::TransactionReceipt;
use serde::Serialize;

use super::{ChainClient, round_u64};
use crate::bindings::BondingManager;
use crate::error::ChainError;

/// Upper bound of `rewardCut` and `feeShare` (`MathUtils.PERC_DIVISOR`: 1_000_000 = 100%).
pub const PERC_DIVISOR: u32 = 1_000_000;
/// Guard against a malformed pool list that never ends.
const MAX_POOL_WALK: usize = 10_000;

/// One member of the transcoder pool (next round's active set).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PoolMember {
    /// The transcoder.
    pub address: Address,
    /// Its total stake (`transcoderTotalStake`, LPT wei).
    pub stake: U256,
    /// Its `ServiceRegistry` URI.
    pub service_uri: String,
    /// Whether it is active in the current round (`isActiveTranscoder`).
    pub active: bool,
}

/// One unbonding lock of a delegator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnbondingLock {
    /// The lock id (for `rebond` and `withdraw_stake`).
    pub id: u64,
    /// LPT wei.
    pub amount: U256,
    /// The round from which it can be withdrawn.
    pub withdraw_round: u64,
}

/// The result of [`ChainClient::unbond`].
#[derive(Debug, Clone)]
pub struct Unbonded {
    /// The unbond transaction.
    pub receipt: TransactionReceipt,
    /// The lock it created, read from its `Unbond` event.
    pub lock: Option<UnbondingLock>,
}

impl ChainClient {
    /// The transcoder pool in its on-chain order (descending stake), each with its stake,
    /// service URI and whether it is active this round.
    pub async fn pool(&self) -> Result<Vec<PoolMember>, ChainError> {
        let bm = self.bonding_manager();
        let sr = self.service_registry();
        let mut members = Vec::new();
        for address in self.pool_addresses().await? {
            let (stake, service_uri, active) = tokio::try_join!(
                async { bm.transcoderTotalStake(address).call().await.map_err(ChainError::from) },
                async { sr.getServiceURI(address).call().await.map_err(ChainError::from) },
                async { bm.isActiveTranscoder(address).call().await.map_err(ChainError::from) },
            )?;
            members.push(PoolMember { address, stake, service_uri, active });
        }
        Ok(members)
    }

    /// The pool's addresses: `getFirstTranscoderInPool`, then `getNextTranscoderInPool` until 0.
    pub(super) async fn pool_addresses(&self) -> Result<Vec<Address>, ChainError> {
        let bm = self.bonding_manager();
        let mut out = Vec::new();
        let mut cur = bm.getFirstTranscoderInPool().call().await?;
        while !cur.is_zero() {
            if out.len() >= MAX_POOL_WALK || out.contains(&cur) {
                return Err(ChainError::Rpc("the transcoder pool list does not terminate".to_string()));
            }
            out.push(cur);
            cur = bm.getNextTranscoderInPool(cur).call().await?;
        }
        Ok(out)
    }

    /// The live unbonding locks of `addr` (withdrawn or rebonded ones are gone).
    pub async fn unbonding_locks(&self, addr: Address) -> Result<Vec<UnbondingLock>, ChainError> {
        let bm = self.bonding_manager();
        let next = round_u64(bm.getDelegator(addr).call().await?.nextUnbondingLockId);
        let mut locks = Vec::new();
        for id in 0..next {
            let lock = bm.getDelegatorUnbondingLock(addr, U256::from(id)).call().await?;
            if !lock.amount.is_zero() {
                locks.push(UnbondingLock { id, amount: lock.amount, withdraw_round: round_u64(lock.withdrawRound) });
            }
        }
        Ok(locks)
    }

    /// Whether `addr` is an active transcoder in the current round (`isActiveTranscoder`).
    pub async fn is_active_transcoder(&self, addr: Address) -> Result<bool, ChainError> {
        Ok(self.bonding_manager().isActiveTranscoder(addr).call().await?)
    }

    /// Bond `amount` LPT wei to `to`, approving the BondingManager first when its allowance is
    /// short.
    pub async fn bond(&self, amount: U256, to: Address) -> Result<TransactionReceipt, ChainError> {
        self.allow_bonding(amount).await?;
        let bm = self.bonding_manager();
        self.send(bm.bond(amount, to).into_transaction_request(), "BondingManager.bond").await
    }

    /// Unbond `amount` LPT wei; the new lock is read from the `Unbond` event.
    pub async fn unbond(&self, amount: U256) -> Result<Unbonded, ChainError> {
        let me = self.me()?;
        let bm = self.bonding_manager();
        let receipt = self.send(bm.unbond(amount).into_transaction_request(), "BondingManager.unbond").await?;
        let lock = receipt
            .inner
            .logs()
            .iter()
            .filter(|l| l.address() == self.inner.contracts.bonding_manager)
            .filter_map(|l| l.log_decode::<BondingManager::Unbond>().ok())
            .map(|l| l.inner.data)
            .find(|e| e.delegator == me)
            .map(|e| UnbondingLock {
                id: round_u64(e.unbondingLockId),
                amount: e.amount,
                withdraw_round: round_u64(e.withdrawRound),
            });
        Ok(Unbonded { receipt, lock })
    }

    /// Rebond the unbonding lock `lock_id` to the current delegate.
    pub async fn rebond(&self, lock_id: u64) -> Result<TransactionReceipt, ChainError> {
        self.me()?;
        let contract = self.bonding_manager();
        let call = contract.rebond(U256::from(lock_id));
        self.send(call.into_transaction_request(), "BondingManager.rebond").await
    }

    /// Withdraw the LPT of the unbonding lock `lock_id` (after its withdraw round).
    pub async fn withdraw_stake(&self, lock_id: u64) -> Result<TransactionReceipt, ChainError> {
        self.me()?;
        let contract = self.bonding_manager();
        let call = contract.withdrawStake(U256::from(lock_id));
        self.send(call.into_transaction_request(), "BondingManager.withdrawStake").await
    }

    /// Register as a transcoder: bond `amount_to_self_bond` to self when it is above 0, then
    /// `transcoder(reward_cut, fee_share)` (1e6 = 100%), then `setServiceURI(service_uri)`.
    /// Returns the receipts in order.
    pub async fn register(
        &self,
        amount_to_self_bond: U256,
        reward_cut: u32,
        fee_share: u32,
        service_uri: &str,
    ) -> Result<Vec<TransactionReceipt>, ChainError> {
        let me = self.me()?;
        if reward_cut > PERC_DIVISOR || fee_share > PERC_DIVISOR {
            return Err(ChainError::InvalidInput(format!(
                "reward cut and fee share are at most {PERC_DIVISOR} (100%); got {reward_cut} and {fee_share}"
            )));
        }
        if service_uri.trim().is_empty() {
            return Err(ChainError::InvalidInput("the service URI is empty".to_string()));
        }
        let mut receipts = Vec::new();
        if !amount_to_self_bond.is_zero() {
            receipts.push(self.bond(amount_to_self_bond, me).await?);
        }
        let contract = self.bonding_manager();
        let call = contract.transcoder(U256::from(reward_cut), U256::from(fee_share));
        receipts.push(self.send(call.into_transaction_request(), "BondingManager.transcoder").await?);
        receipts.push(self.set_service_uri(service_uri).await?);
        Ok(receipts)
    }

    /// Withdraw `amount` wei of earned fees to `recipient`.
    pub async fn withdraw_fees(&self, recipient: Address, amount: U256) -> Result<TransactionReceipt, ChainError> {
        self.me()?;
        let contract = self.bonding_manager();
        let call = contract.withdrawFees(recipient, amount);
        self.send(call.into_transaction_request(), "BondingManager.withdrawFees").await
    }
}
