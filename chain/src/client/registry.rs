//! ServiceRegistry: the URI an orchestrator is reached at (`setServiceURI`). Reads of it are in
//! the pool (`bonding`) and the status (`status`).

use alloy::rpc::types::TransactionReceipt;

use super::ChainClient;
use crate::error::ChainError;

impl ChainClient {
    /// Set the account's `ServiceRegistry` URI.
    pub async fn set_service_uri(&self, service_uri: &str) -> Result<TransactionReceipt, ChainError> {
        self.me()?;
        let contract = self.service_registry();
        let call = contract.setServiceURI(service_uri.to_string());
        self.send(call.into_transaction_request(), "ServiceRegistry.setServiceURI").await
    }
}
