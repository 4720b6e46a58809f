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
    /// The reward simulated is the contract's: the mint on the stake in the earnings pool of
    /// [`reward_stake_round`], which after missed rounds is not the current round's.
    /// `(0, 0)` when `addr` is not in the pool.
    pub async fn reward_hints(&self, addr: Address) -> Result<(Address, Address), ChainError> {
        let bm = self.bonding_manager();
        let minter = self.minter();
        let (round, transcoder, mintable, total_active, own_stake) = tokio::try_join!(
            async { self.rounds_manager().currentRound().call().await.map_err(ChainError::from) },
            async { bm.getTranscoder(addr).call().await.map_err(ChainError::from) },
            async { minter.currentMintableTokens().call().await.map_err(ChainError::from) },
            async { bm.getTotalBonded().call().await.map_err(ChainError::from) },
            async { bm.transcoderTotalStake(addr).call().await.map_err(ChainError::from) },
        )?;
        let stake_round = reward_stake_round(transcoder.lastActiveStakeUpdateRound, round);
        let pool_stake = bm.getTranscoderEarningsPoolForRound(addr, stake_round).call().await?.totalStake;
        // A deployment without a treasury cut answers an error here: no cut then.
        let cut_rate = bm.treasuryRewardCutRate().call().await.unwrap_or(U256::ZERO);
        let reward = expected_reward(mintable, pool_stake, total_active, cut_rate);
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

/// The round whose earnings pool holds the stake a transcoder's `reward` mints on in
/// `current_round`, given its `lastActiveStakeUpdateRound`. The BondingManager writes a
/// transcoder's stake into the earnings pool of a round only when the stake changes: the new
/// stake into the next round's pool (which becomes `lastActiveStakeUpdateRound`), and, at the
/// first change in a round, the stake before it into that round's. A round with no change has
/// an empty pool (0 stake) until `reward` copies the pool of `lastActiveStakeUpdateRound` into
/// it. So the stake is that round's pool when the round is not after `current_round` (unchanged
/// since), and the current round's when it is (changed this round: the next round's pool holds
/// the new stake, which this round's reward does not count).
pub fn reward_stake_round(last_active_stake_update_round: U256, current_round: U256) -> U256 {
    last_active_stake_update_round.min(current_round)
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
    fn the_stake_rewarded_is_that_of_the_last_update_up_to_this_round() {
        let r = |last: u64, current: u64| reward_stake_round(U256::from(last), U256::from(current));
        // Unchanged since round 3: rounds 4 and 5 have empty pools, round 3's holds the stake.
        assert_eq!(r(3, 5), U256::from(3));
        assert_eq!(r(5, 5), U256::from(5), "changed last round (or rewarded then)");
        assert_eq!(r(6, 5), U256::from(5), "changed this round: round 6's pool holds the new stake");
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
