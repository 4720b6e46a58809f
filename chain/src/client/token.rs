//! LivepeerToken: the allowance `bond` needs (the BondingManager pulls the LPT with
//! `transferFrom`). Balance and allowance reads for the status are in `status`.

use alloy::primitives::U256;

use super::{ChainClient, Token, format_amount};
use crate::error::ChainError;

impl ChainClient {
    /// Let the BondingManager pull `amount` LPT wei from the account: `approve` it unless the
    /// allowance already covers `amount`. Refused, before anything is sent, when the account
    /// holds less than `amount`.
    pub(super) async fn allow_bonding(&self, amount: U256) -> Result<(), ChainError> {
        let me = self.me()?;
        let bm_addr = self.inner.contracts.bonding_manager;
        let token = self.token();
        if token.allowance(me, bm_addr).call().await? >= amount {
            return Ok(());
        }
        let balance = token.balanceOf(me).call().await?;
        if balance < amount {
            return Err(ChainError::InvalidInput(format!(
                "cannot bond {}: the account {me} holds {}",
                format_amount(amount, Token::Lpt),
                format_amount(balance, Token::Lpt)
            )));
        }
        self.send(token.approve(bm_addr, amount).into_transaction_request(), "LivepeerToken.approve").await?;
        Ok(())
    }
}
