//! BondingManager's `reward`: the call itself (`rewardWithHint`), the pool position hints it
//! carries, and the mint those hints simulate (`Minter.createReward`, less the treasury cut).

use alloy::primitives::{Address, U256};
use alloy::rpc::types::TransactionReceipt;

use super::ChainClient;
use crate::error::ChainError;

/// `MathUtilsV2.PERC_DIVISOR`, the Minter's precision.
const MINTER_PERC_DIVISOR: u64 = 1_000_000_000;
/// `PreciseMathUtils.PERC_DIVISOR`, the precision of `treasuryRewardCutRate`.
const PRECISE_PERC_DIVISOR: u128 = 1_000_000_000_000_000_000_000_000_000;

impl ChainClient {
    /// The `rewardWithHint` position of `addr` after its reward: the pool as it will be once
    /// `addr`'s stake has grown by this round's reward (go-livepeer's `simulateTranscoderPoolUpdate`).
    /// `(0, 0)` when `addr` is not in the pool.
    pub async fn reward_hints(&self, addr: Address) -> Result<(Address, Address), ChainError> {
        let bm = self.bonding_manager();
        let minter = self.minter();
        let round = self.rounds_manager().currentRound().call().await?;
        let (pool_stake, mintable, total_active, own_stake) = tokio::try_join!(
            async { bm.getTranscoderEarningsPoolForRound(addr, round).call().await.map_err(ChainError::from) },
            async { minter.currentMintableTokens().call().await.map_err(ChainError::from) },
            async { bm.getTotalBonded().call().await.map_err(ChainError::from) },
            async { bm.transcoderTotalStake(addr).call().await.map_err(ChainError::from) },
        )?;
        // A deployment without a treasury cut answers an error here: no cut then.
        let cut_rate = bm.treasuryRewardCutRate().call().await.unwrap_or(U256::ZERO);
        let reward = expected_reward(mintable, pool_stake.totalStake, total_active, cut_rate);
        let new_stake = own_stake.saturating_add(reward);

        let addresses = self.pool_addresses().await?;
        if !addresses.contains(&addr) {
            return Ok((Address::ZERO, Address::ZERO));
        }
        let mut others = Vec::with_capacity(addresses.len());
        for a in addresses.into_iter().filter(|a| *a != addr) {
            others.push((a, bm.transcoderTotalStake(a).call().await?));
        }
        Ok(insert_position(&others, new_stake))
    }

    /// Call `rewardWithHint` with the position the account's stake will have after the reward.
    pub async fn reward(&self) -> Result<TransactionReceipt, ChainError> {
        let me = self.me()?;
        let (prev, next) = self.reward_hints(me).await?;
        let contract = self.bonding_manager();
        let call = contract.rewardWithHint(prev, next);
        self.send(call.into_transaction_request(), "BondingManager.rewardWithHint").await
    }
}

/// The stake a transcoder's pool entry gains from `reward()` (what `BondingManager.reward`
/// computes): `Minter.createReward(poolStake, totalActive)` = `mintable · ⌊poolStake·1e9/totalActive⌋
/// / 1e9`, minus the treasury's `mint · cutRate / 1e27`.
pub fn expected_reward(mintable: U256, pool_stake: U256, total_active: U256, treasury_cut_rate: U256) -> U256 {
    if total_active.is_zero() {
        return U256::ZERO;
    }
    let perc = pool_stake.saturating_mul(U256::from(MINTER_PERC_DIVISOR)) / total_active;
    let mint = mintable.saturating_mul(perc) / U256::from(MINTER_PERC_DIVISOR);
    let treasury = mint.saturating_mul(treasury_cut_rate) / U256::from(PRECISE_PERC_DIVISOR);
    mint.saturating_sub(treasury)
}

/// Where an entry with `stake` goes in `pool` (sorted by descending stake, without the entry):
/// `(prev, next)` with `prev.stake >= stake >= next.stake`, zero at the ends.
pub fn insert_position(pool: &[(Address, U256)], stake: U256) -> (Address, Address) {
    let idx = pool.iter().position(|(_, s)| *s < stake).unwrap_or(pool.len());
    let prev = if idx == 0 { Address::ZERO } else { pool[idx - 1].0 };
    let next = pool.get(idx).map_or(Address::ZERO, |(a, _)| *a);
    (prev, next)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions() {
        let a = |b: u8| Address::repeat_byte(b);
        let pool = vec![(a(1), U256::from(100)), (a(2), U256::from(50)), (a(3), U256::from(10))];
        assert_eq!(insert_position(&pool, U256::from(200)), (Address::ZERO, a(1)));
        assert_eq!(insert_position(&pool, U256::from(60)), (a(1), a(2)));
        assert_eq!(insert_position(&pool, U256::from(50)), (a(2), a(3)));
        assert_eq!(insert_position(&pool, U256::from(1)), (a(3), Address::ZERO));
        assert_eq!(insert_position(&[], U256::from(1)), (Address::ZERO, Address::ZERO));
    }

    #[test]
    fn reward_math() {
        let r = expected_reward(U256::from(1_000_000u64), U256::from(1), U256::from(3), U256::ZERO);
        // perc = 333333333; mint = 1e6 * 333333333 / 1e9 = 333333
        assert_eq!(r, U256::from(333_333u64));
        let cut = U256::from(PRECISE_PERC_DIVISOR / 10);
        assert_eq!(expected_reward(U256::from(1000u64), U256::from(1), U256::from(1), cut), U256::from(900u64));
        assert_eq!(expected_reward(U256::from(1000u64), U256::from(1), U256::ZERO, cut), U256::ZERO);
    }
}
