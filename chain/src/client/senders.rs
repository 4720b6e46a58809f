//! TicketBroker reads about a ticket sender: its deposit, reserve and unlock, as
//! [`SenderInfo`].

use alloy::primitives::{Address, U256};

use super::{ChainClient, round_u64};
use crate::error::ChainError;
use crate::pm::SenderInfo;

impl ChainClient {
    /// `sender`'s funds as this client's account (the recipient) sees them: `getSenderInfo`,
    /// and `claimedReserve(sender, me)` (zero without an account).
    pub async fn sender_info(&self, sender: Address) -> Result<SenderInfo, ChainError> {
        let tb = self.ticket_broker();
        let info = tb.getSenderInfo(sender).call().await?;
        let claimed_by_me = match self.address() {
            Some(me) => tb.claimedReserve(sender, me).call().await?,
            None => U256::ZERO,
        };
        Ok(SenderInfo {
            deposit: info.sender.deposit,
            withdraw_round: round_u64(info.sender.withdrawRound),
            reserve: info.reserve.fundsRemaining,
            reserve_claimed_in_round: info.reserve.claimedInCurrentRound,
            claimed_by_me,
        })
    }
}
