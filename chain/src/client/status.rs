//! One account across every contract, [`NodeStatus`] (`livepeer chain status`): balances and
//! allowance (LivepeerToken), bond and transcoder (BondingManager), service URI
//! (ServiceRegistry), deposit and reserve (TicketBroker), and the round.

use alloy::primitives::{Address, U256};
use alloy::providers::Provider;
use serde::Serialize;

use super::{ChainClient, RoundInfo, round_u64};
use crate::error::ChainError;

/// Everything the chain knows about one account: `livepeer chain status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeStatus {
    /// The account.
    pub address: Address,
    /// The chain id of the endpoint.
    pub chain_id: u64,
    /// The latest block number.
    pub block_number: u64,
    /// The round.
    pub round: RoundInfo,
    /// ETH balance (wei).
    pub eth_balance: U256,
    /// LPT balance (wei).
    pub lpt_balance: U256,
    /// LPT the BondingManager may pull from the account (wei).
    pub lpt_allowance: U256,
    /// `delegatorStatus`: "Pending", "Bonded" or "Unbonded".
    pub delegator_status: String,
    /// LPT bonded by the account (wei), before pending rewards.
    pub bonded_amount: U256,
    /// Who the account delegates to (itself when registered).
    pub delegate: Address,
    /// The round the bond takes effect.
    pub start_round: u64,
    /// The last round earnings were claimed.
    pub last_claim_round: u64,
    /// Bonded amount plus unclaimed rewards (`pendingStake`).
    pub pending_stake: U256,
    /// Unclaimed fees (`pendingFees`, ETH wei).
    pub pending_fees: U256,
    /// `isRegisteredTranscoder`.
    pub registered: bool,
    /// `isActiveTranscoder` (this round).
    pub active: bool,
    /// Stake delegated to the account as a transcoder (`transcoderTotalStake`).
    pub total_stake: U256,
    /// Share of rewards the transcoder keeps (1e6 = 100%).
    pub reward_cut: u32,
    /// Share of fees paid to delegators (1e6 = 100%).
    pub fee_share: u32,
    /// The last round the transcoder called reward.
    pub last_reward_round: u64,
    /// The round the transcoder becomes (became) active.
    pub activation_round: u64,
    /// The round the transcoder stops being active.
    pub deactivation_round: u64,
    /// The account's `ServiceRegistry` URI.
    pub service_uri: String,
    /// TicketBroker deposit (ETH wei).
    pub deposit: U256,
    /// TicketBroker reserve remaining (ETH wei).
    pub reserve: U256,
    /// The round deposit and reserve can be withdrawn (0 = no unlock in progress).
    pub withdraw_round: u64,
}

impl ChainClient {
    /// Everything about `addr`: bond, transcoder, ticket-broker and balances.
    pub async fn status(&self, addr: Address) -> Result<NodeStatus, ChainError> {
        let bm = self.bonding_manager();
        let tb = self.ticket_broker();
        let token = self.token();
        let sr = self.service_registry();
        let p = &self.inner.provider;
        let (block_number, round, eth_balance, lpt_balance, lpt_allowance, service_uri) = tokio::try_join!(
            async { p.get_block_number().await.map_err(ChainError::from) },
            self.current_round(),
            async { p.get_balance(addr).await.map_err(ChainError::from) },
            async { token.balanceOf(addr).call().await.map_err(ChainError::from) },
            async {
                token.allowance(addr, self.inner.contracts.bonding_manager).call().await.map_err(ChainError::from)
            },
            async { sr.getServiceURI(addr).call().await.map_err(ChainError::from) },
        )?;
        let (delegator, delegator_status, transcoder, registered, active, total_stake) = tokio::try_join!(
            async { bm.getDelegator(addr).call().await.map_err(ChainError::from) },
            async { bm.delegatorStatus(addr).call().await.map_err(ChainError::from) },
            async { bm.getTranscoder(addr).call().await.map_err(ChainError::from) },
            async { bm.isRegisteredTranscoder(addr).call().await.map_err(ChainError::from) },
            async { bm.isActiveTranscoder(addr).call().await.map_err(ChainError::from) },
            async { bm.transcoderTotalStake(addr).call().await.map_err(ChainError::from) },
        )?;
        let end_round = U256::from(round.round);
        let (pending_stake, pending_fees, sender) = tokio::try_join!(
            async { bm.pendingStake(addr, end_round).call().await.map_err(ChainError::from) },
            async { bm.pendingFees(addr, end_round).call().await.map_err(ChainError::from) },
            async { tb.getSenderInfo(addr).call().await.map_err(ChainError::from) },
        )?;
        Ok(NodeStatus {
            address: addr,
            chain_id: self.inner.chain_id,
            block_number,
            round,
            eth_balance,
            lpt_balance,
            lpt_allowance,
            delegator_status: match delegator_status {
                0 => "Pending".to_string(),
                1 => "Bonded".to_string(),
                2 => "Unbonded".to_string(),
                other => format!("Unknown({other})"),
            },
            bonded_amount: delegator.bondedAmount,
            delegate: delegator.delegateAddress,
            start_round: round_u64(delegator.startRound),
            last_claim_round: round_u64(delegator.lastClaimRound),
            pending_stake,
            pending_fees,
            registered,
            active,
            total_stake,
            reward_cut: transcoder.rewardCut.saturating_to(),
            fee_share: transcoder.feeShare.saturating_to(),
            last_reward_round: round_u64(transcoder.lastRewardRound),
            activation_round: round_u64(transcoder.activationRound),
            deactivation_round: round_u64(transcoder.deactivationRound),
            service_uri,
            deposit: sender.sender.deposit,
            reserve: sender.reserve.fundsRemaining,
            withdraw_round: round_u64(sender.sender.withdrawRound),
        })
    }
}
