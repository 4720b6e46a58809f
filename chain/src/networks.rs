//! The networks the node knows by name (go-livepeer's `configOptions` in `starter.go`), and the
//! Controller address each one starts from. Every other contract address is resolved through the
//! Controller ([`crate::contracts::Contracts::resolve`]).

use alloy::primitives::{Address, address};

use crate::error::ChainError;

/// Redemption gas on an L2 (Arbitrum), go-livepeer's `redeemGasL2`.
pub const REDEEM_GAS_L2: u64 = 1_200_000;
/// Redemption gas on L1 and custom networks, go-livepeer's `redeemGasL1`.
pub const REDEEM_GAS_L1: u64 = 350_000;

/// A network known by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    /// The name used in the config (`network = "…"`).
    pub name: &'static str,
    /// The chain id the RPC endpoint must report, when the network fixes one.
    pub chain_id: Option<u64>,
    /// The Controller, when the network has a canonical deployment.
    pub controller: Option<Address>,
    /// Gas a winning-ticket redemption is assumed to cost (for ticket parameters).
    pub redeem_gas: u64,
    /// The default floor of the polled gas price (wei).
    pub min_gas_price: u128,
}

/// Arbitrum One, where the Livepeer protocol lives.
pub const ARBITRUM_ONE_MAINNET: Network = Network {
    name: "arbitrum-one-mainnet",
    chain_id: Some(42161),
    controller: Some(address!("D8E8328501E9645d16Cf49539efC04f734606ee4")),
    redeem_gas: REDEEM_GAS_L2,
    min_gas_price: 0,
};

/// Ethereum mainnet (L1), the protocol's former home.
pub const MAINNET: Network = Network {
    name: "mainnet",
    chain_id: Some(1),
    controller: Some(address!("f96d54e490317c557a967abfa5d6e33006be69b3")),
    redeem_gas: REDEEM_GAS_L1,
    min_gas_price: 1_000_000_000,
};

/// A local development chain with our contracts; the Controller comes from the deployment.
pub const DEVNET: Network =
    Network { name: "devnet", chain_id: None, controller: None, redeem_gas: REDEEM_GAS_L1, min_gas_price: 0 };

/// Any other deployment of the real ABIs; the Controller must be configured.
pub const CUSTOM: Network =
    Network { name: "custom", chain_id: None, controller: None, redeem_gas: REDEEM_GAS_L1, min_gas_price: 0 };

/// Every on-chain network known by name.
pub const NETWORKS: [Network; 4] = [ARBITRUM_ONE_MAINNET, MAINNET, DEVNET, CUSTOM];

/// The network called `name`; `offchain` and anything unknown are errors.
pub fn network(name: &str) -> Result<Network, ChainError> {
    if name == "offchain" {
        return Err(ChainError::InvalidInput("network \"offchain\" has no chain".to_string()));
    }
    NETWORKS.into_iter().find(|n| n.name == name).ok_or_else(|| ChainError::UnknownNetwork(name.to_string()))
}

/// The Controller to use on `network`: the configured one when given (it overrides a known
/// network's default, as `-ethController` does), else the network's canonical Controller.
/// `devnet` and `custom` need an explicit one.
pub fn controller_for(network_name: &str, configured: Option<Address>) -> Result<Address, ChainError> {
    let net = network(network_name)?;
    match (configured, net.controller) {
        (Some(addr), _) if addr.is_zero() => {
            Err(ChainError::InvalidInput("eth.controller is the zero address".to_string()))
        }
        (Some(addr), _) => Ok(addr),
        (None, Some(addr)) => Ok(addr),
        (None, None) => Err(ChainError::InvalidInput(format!(
            "network {network_name:?} has no default Controller; set eth.controller to the Controller's address"
        ))),
    }
}

/// Check that the endpoint's chain id is the one `network_name` requires (if it requires one).
pub fn check_chain_id(network_name: &str, actual: u64) -> Result<(), ChainError> {
    let net = network(network_name)?;
    match net.chain_id {
        Some(expected) if expected != actual => Err(ChainError::InvalidInput(format!(
            "network {network_name:?} is chain id {expected}, but the RPC endpoint reports chain id {actual}"
        ))),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_networks() {
        let arb = controller_for("arbitrum-one-mainnet", None).unwrap();
        assert_eq!(arb, address!("D8E8328501E9645d16Cf49539efC04f734606ee4"));
        assert_eq!(network("arbitrum-one-mainnet").unwrap().chain_id, Some(42161));
        assert_eq!(network("arbitrum-one-mainnet").unwrap().redeem_gas, 1_200_000);
        assert_eq!(controller_for("mainnet", None).unwrap(), address!("f96d54e490317c557a967abfa5d6e33006be69b3"));
        let mine = address!("0000000000000000000000000000000000001234");
        assert_eq!(controller_for("arbitrum-one-mainnet", Some(mine)).unwrap(), mine);
        assert_eq!(controller_for("devnet", Some(mine)).unwrap(), mine);
        assert!(matches!(controller_for("devnet", None), Err(ChainError::InvalidInput(_))));
        assert!(matches!(controller_for("custom", None), Err(ChainError::InvalidInput(_))));
        assert!(matches!(controller_for("custom", Some(Address::ZERO)), Err(ChainError::InvalidInput(_))));
        assert!(matches!(controller_for("rinkeby", None), Err(ChainError::UnknownNetwork(n)) if n == "rinkeby"));
        assert!(matches!(controller_for("offchain", None), Err(ChainError::InvalidInput(_))));
        assert!(check_chain_id("arbitrum-one-mainnet", 42161).is_ok());
        assert!(check_chain_id("arbitrum-one-mainnet", 1).is_err());
        assert!(check_chain_id("devnet", 31337).is_ok());
    }
}
