//! The addresses of the Livepeer contracts, all resolved through `Controller.getContract`
//! (`reference/contracts.md` §1): proxies for BondingManager, RoundsManager, TicketBroker and
//! ServiceRegistry, and the Minter and LivepeerToken themselves.

use alloy::primitives::{Address, B256, keccak256};
use alloy::providers::Provider;
use serde::{Deserialize, Serialize};

use crate::bindings::Controller;
use crate::error::ChainError;

/// The Controller id of a contract name: `keccak256(bytes(name))`.
pub fn contract_id(name: &str) -> B256 {
    keccak256(name.as_bytes())
}

/// The Controller names this node resolves, in [`Contracts`] field order after the Controller.
pub const CONTRACT_NAMES: [&str; 6] =
    ["BondingManager", "RoundsManager", "TicketBroker", "ServiceRegistry", "Minter", "LivepeerToken"];

/// The addresses of one Livepeer deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contracts {
    /// The Controller everything was resolved from.
    pub controller: Address,
    /// BondingManager (proxy).
    pub bonding_manager: Address,
    /// RoundsManager (proxy).
    pub rounds_manager: Address,
    /// TicketBroker (proxy; also registered as "JobsManager").
    pub ticket_broker: Address,
    /// ServiceRegistry (proxy).
    pub service_registry: Address,
    /// Minter (holds all ETH and bonded LPT).
    pub minter: Address,
    /// LivepeerToken (ERC-20).
    pub livepeer_token: Address,
}

impl Contracts {
    /// Resolve every address through `Controller.getContract(keccak256(name))`. No code at the
    /// Controller is `NotDeployed("Controller")`; a name registered as the zero address (or
    /// registered to an address without code) is `NotDeployed(name)`.
    pub async fn resolve<P: Provider>(provider: P, controller: Address) -> Result<Contracts, ChainError> {
        let code = provider.get_code_at(controller).await?;
        if code.is_empty() {
            return Err(ChainError::NotDeployed("Controller".to_string()));
        }
        let c = Controller::new(controller, &provider);
        let mut found = [Address::ZERO; CONTRACT_NAMES.len()];
        for (slot, name) in found.iter_mut().zip(CONTRACT_NAMES) {
            let addr = c.getContract(contract_id(name)).call().await?;
            if addr.is_zero() || provider.get_code_at(addr).await?.is_empty() {
                return Err(ChainError::NotDeployed(name.to_string()));
            }
            *slot = addr;
        }
        let [bonding_manager, rounds_manager, ticket_broker, service_registry, minter, livepeer_token] = found;
        Ok(Contracts {
            controller,
            bonding_manager,
            rounds_manager,
            ticket_broker,
            service_registry,
            minter,
            livepeer_token,
        })
    }
}
