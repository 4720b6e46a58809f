//! TicketBroker: the account's deposit and reserve (fund, unlock, cancel the unlock, withdraw).
//! Tickets themselves are [`crate::pm`]'s.

use alloy::primitives::U256;
use alloy::rpc::types::TransactionReceipt;

use super::ChainClient;
use crate::error::ChainError;

impl ChainClient {
    /// Fund the account's TicketBroker deposit and reserve (ETH wei).
    pub async fn fund(&self, deposit: U256, reserve: U256) -> Result<TransactionReceipt, ChainError> {
        self.me()?;
        let value = deposit
            .checked_add(reserve)
            .ok_or_else(|| ChainError::InvalidInput("deposit + reserve overflows".to_string()))?;
        let contract = self.ticket_broker();
        let call = contract.fundDepositAndReserve(deposit, reserve).value(value);
        self.send(call.into_transaction_request(), "TicketBroker.fundDepositAndReserve").await
    }

    /// Start the unlock of the account's deposit and reserve.
    pub async fn unlock(&self) -> Result<TransactionReceipt, ChainError> {
        self.me()?;
        let tb = self.ticket_broker();
        self.send(tb.unlock().into_transaction_request(), "TicketBroker.unlock").await
    }

    /// Cancel an unlock in progress.
    pub async fn cancel_unlock(&self) -> Result<TransactionReceipt, ChainError> {
        self.me()?;
        let tb = self.ticket_broker();
        self.send(tb.cancelUnlock().into_transaction_request(), "TicketBroker.cancelUnlock").await
    }

    /// Withdraw the account's deposit and reserve (after the unlock period).
    pub async fn withdraw(&self) -> Result<TransactionReceipt, ChainError> {
        self.me()?;
        let tb = self.ticket_broker();
        self.send(tb.withdraw().into_transaction_request(), "TicketBroker.withdraw").await
    }
}
