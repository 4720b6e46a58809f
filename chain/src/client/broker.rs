//! TicketBroker: the account's deposit and reserve (fund, unlock, cancel the unlock, withdraw),
//! and the recipient's side of winning tickets: the gas a redemption takes, redeeming one or a batch,
//! which tickets a receipt redeemed, and whether a ticket is used. Tickets themselves are
//! [`crate::pm`]'s.

use alloy::network::TransactionBuilder;
use alloy::primitives::{B256, U256};
use alloy::providers::Provider;
use alloy::rpc::types::{TransactionReceipt, TransactionRequest};
use alloy::sol_types::SolEvent;

use super::ChainClient;
use crate::bindings::TicketBroker;
use crate::error::ChainError;
use crate::pm::{Ticket, WinningTicket, recipient_rand_hash, ticket_hash};

/// A ticket a receipt shows redeemed (`WinningTicketRedeemed`), with what was transferred for
/// it (`WinningTicketTransfer`; none when the sender's funds gave nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Redeemed {
    pub ticket_hash: B256,
    pub paid: U256,
}

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

    /// Whether the ticket with this hash was redeemed already (`usedTickets`).
    pub async fn is_used_ticket(&self, ticket_hash: B256) -> Result<bool, ChainError> {
        Ok(self.ticket_broker().usedTickets(ticket_hash).call().await?)
    }

    /// The gas `redeemWinningTicket(t)` sent from this account would use now (`eth_estimateGas`,
    /// without margin). A ticket the broker would refuse is [`ChainError::Reverted`] with the
    /// broker's reason, and nothing is sent.
    pub async fn estimate_redeem_gas(&self, t: &WinningTicket) -> Result<u64, ChainError> {
        let mut tx = self.redeem_request(t);
        tx.set_from(self.me()?);
        Ok(self.provider().estimate_gas(tx).await?)
    }

    /// Redeem one winning ticket (`redeemWinningTicket`). The gas estimate made before sending
    /// finds a ticket the broker would refuse: [`ChainError::Reverted`] with its reason, and
    /// nothing is sent.
    pub async fn redeem_winning_ticket(&self, t: &WinningTicket) -> Result<TransactionReceipt, ChainError> {
        self.me()?;
        self.send(self.redeem_request(t), "TicketBroker.redeemWinningTicket").await
    }

    /// Redeem several winning tickets in one transaction (`batchRedeemWinningTickets`) with
    /// `gas_limit` gas. The broker skips, silently, every ticket whose redemption fails, so a
    /// mined batch may have redeemed only some: [`ChainClient::redeemed`] says which. The limit
    /// must cover every ticket (the sum of their [`ChainClient::estimate_redeem_gas`], with a
    /// margin): the estimate of the batch itself only covers the outer call, since a ticket that
    /// runs out of gas is skipped rather than failing the transaction.
    pub async fn batch_redeem_winning_tickets(
        &self,
        tickets: &[WinningTicket],
        gas_limit: u64,
    ) -> Result<TransactionReceipt, ChainError> {
        self.me()?;
        let sigs = tickets.iter().map(|t| t.sig.clone()).collect();
        let rands = tickets.iter().map(|t| t.recipient_rand).collect();
        let list = tickets.iter().map(|t| t.ticket.clone()).collect();
        let tx = self.ticket_broker().batchRedeemWinningTickets(list, sigs, rands).into_transaction_request();
        self.send(tx.with_gas_limit(gas_limit), "TicketBroker.batchRedeemWinningTickets").await
    }

    /// The tickets `receipt` redeemed, from its TicketBroker logs, in order.
    pub fn redeemed(&self, receipt: &TransactionReceipt) -> Vec<Redeemed> {
        let broker = self.contracts().ticket_broker;
        let mut out = Vec::new();
        // Each redemption logs its transfer (when it pays anything), then `WinningTicketRedeemed`.
        let mut paid = U256::ZERO;
        for log in receipt.logs().iter().filter(|l| l.address() == broker) {
            if let Ok(transfer) = TicketBroker::WinningTicketTransfer::decode_log(&log.inner) {
                paid = transfer.data.amount;
            } else if let Ok(r) = TicketBroker::WinningTicketRedeemed::decode_log(&log.inner) {
                let r = r.data;
                let ticket = Ticket {
                    recipient: r.recipient,
                    sender: r.sender,
                    faceValue: r.faceValue,
                    winProb: r.winProb,
                    senderNonce: r.senderNonce,
                    recipientRandHash: recipient_rand_hash(r.recipientRand),
                    auxData: r.auxData,
                };
                out.push(Redeemed { ticket_hash: ticket_hash(&ticket), paid: std::mem::take(&mut paid) });
            }
        }
        out
    }

    fn redeem_request(&self, t: &WinningTicket) -> TransactionRequest {
        self.ticket_broker()
            .redeemWinningTicket(t.ticket.clone(), t.sig.clone(), t.recipient_rand)
            .into_transaction_request()
    }
}
