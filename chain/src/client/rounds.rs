//! RoundsManager: the current round as [`RoundInfo`] ([`ChainClient::current_round`]) and
//! `initializeRound`.

use alloy::primitives::{B256, U256};
use alloy::rpc::types::TransactionReceipt;
use serde::Serialize;

use super::{ChainClient, round_u64};
use crate::error::ChainError;

/// The round as the RoundsManager reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RoundInfo {
    /// `currentRound()`.
    pub round: u64,
    /// `currentRoundInitialized()`.
    pub initialized: bool,
    /// `currentRoundLocked()`: the last `roundLockAmount` of the round, when transcoders cannot
    /// change their parameters.
    pub locked: bool,
    /// `currentRoundStartBlock()`.
    pub start_block: u64,
    /// `roundLength()` in blocks.
    pub length: u64,
    /// `lastInitializedRound()`.
    pub last_initialized_round: u64,
    /// `blockHashForRound(lastInitializedRound)`.
    pub block_hash_of_last_initialized: B256,
    /// The round new tickets commit to, and its block hash: the last initialized round, or the
    /// one before it when the last one's hash reads as zero (go-livepeer's Arbitrum workaround);
    /// a zero hash when neither has one.
    pub ticket_round: (u64, B256),
    /// `BondingManager.getTranscoderPoolSize()`: members of the pool (next round's active set).
    pub pool_size: u64,
}

impl ChainClient {
    /// The current round.
    pub async fn current_round(&self) -> Result<RoundInfo, ChainError> {
        let rm = self.rounds_manager();
        let (round, initialized, locked, start_block, length, last_initialized) = tokio::try_join!(
            async { rm.currentRound().call().await.map_err(ChainError::from) },
            async { rm.currentRoundInitialized().call().await.map_err(ChainError::from) },
            async { rm.currentRoundLocked().call().await.map_err(ChainError::from) },
            async { rm.currentRoundStartBlock().call().await.map_err(ChainError::from) },
            async { rm.roundLength().call().await.map_err(ChainError::from) },
            async { rm.lastInitializedRound().call().await.map_err(ChainError::from) },
        )?;
        let block_hash_of_last_initialized = rm.blockHashForRound(last_initialized).call().await?;
        let ticket_round = match (block_hash_of_last_initialized.is_zero(), round_u64(last_initialized)) {
            (true, round @ 1..) => (round - 1, rm.blockHashForRound(U256::from(round - 1)).call().await?),
            (_, round) => (round, block_hash_of_last_initialized),
        };
        let pool_size = self.bonding_manager().getTranscoderPoolSize().call().await?;
        Ok(RoundInfo {
            round: round_u64(round),
            initialized,
            locked,
            start_block: round_u64(start_block),
            length: round_u64(length),
            last_initialized_round: round_u64(last_initialized),
            block_hash_of_last_initialized,
            ticket_round,
            pool_size: round_u64(pool_size),
        })
    }

    /// Initialize the current round.
    pub async fn initialize_round(&self) -> Result<TransactionReceipt, ChainError> {
        self.me()?;
        let contract = self.rounds_manager();
        let call = contract.initializeRound();
        self.send(call.into_transaction_request(), "RoundsManager.initializeRound").await
    }
}
