//! Our devnet: the contracts in `chain/contracts` (same functions, events and revert strings as
//! the real Livepeer contracts, so the node talks to them through the real-ABI bindings in
//! [`crate::bindings`]) deployed and wired on a local chain such as [`crate::anvil`].
//!
//! [`deploy`] deploys every contract with one key, registers them with the Controller under the
//! names the real deployment uses (`BondingManager`, `TicketBroker` and `JobsManager`, …; no
//! proxies, so `XTarget` names the same address as `X`), sets the parameters, unpauses the
//! Controller, mints LPT to the accounts to fund and initializes the current round.
//! The deployer keeps LPT's MINTER_ROLE (a faucet for later accounts) and owns the Controller.
//!
//! The bytecode is embedded from `chain/contracts/out/*.json`, which `chain/contracts/build.mjs`
//! writes (a test checks that those artifacts match the sources).

use std::time::Duration;

use alloy::network::{EthereumWallet, TransactionBuilder};
use alloy::primitives::{Address, B256, Bytes, FixedBytes, U256, keccak256};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::rpc::types::{TransactionReceipt, TransactionRequest};
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::{Revert, SolValue};
use alloy::transports::{RpcError, TransportErrorKind};
use serde::{Deserialize, Serialize};

use crate::bindings::{BondingManager, Controller, LivepeerToken, RoundsManager, TicketBroker};
use crate::contracts::{Contracts, contract_id};

/// The log target of the devnet deployer.
const TARGET: &str = "lp::chain::devnet";

/// How long one deployment transaction may take to be mined.
const RECEIPT_TIMEOUT: Duration = Duration::from_secs(120);

/// The Minter's target bonding rate (1e9 units, 50%). With an inflation change of 0 it has no
/// effect: the devnet's inflation stays at [`DevnetParams::inflation`].
const TARGET_BONDING_RATE: u64 = 500_000_000;

/// The compiled contracts (`{ "abi": [...], "bytecode": "0x…" }`), written by `build.mjs`.
mod artifacts {
    pub const CONTROLLER: &str = include_str!("../contracts/out/Controller.json");
    pub const LIVEPEER_TOKEN: &str = include_str!("../contracts/out/LivepeerToken.json");
    pub const MINTER: &str = include_str!("../contracts/out/Minter.json");
    pub const BONDING_MANAGER: &str = include_str!("../contracts/out/BondingManager.json");
    pub const ROUNDS_MANAGER: &str = include_str!("../contracts/out/RoundsManager.json");
    pub const TICKET_BROKER: &str = include_str!("../contracts/out/TicketBroker.json");
    pub const SERVICE_REGISTRY: &str = include_str!("../contracts/out/ServiceRegistry.json");
}

/// The protocol parameters of a devnet. Rounds are short so that a test or a demo sees several.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DevnetParams {
    /// Blocks per round. Default 10.
    pub round_length: u64,
    /// Share of the round, at its end, during which transcoders cannot change their rates
    /// (1e6 = 100%). Default 100000 (10%).
    pub round_lock_amount: u64,
    /// Rounds between `unbond` and `withdrawStake`. Default 2.
    pub unbonding_period: u64,
    /// Rounds between a sender's `unlock` and `withdraw`. Default 2.
    pub unlock_period: u64,
    /// Rounds a ticket stays redeemable after its creation round. Default 2.
    pub ticket_validity_period: u64,
    /// Maximum size of the transcoder pool (the active set). Default 10.
    pub num_active_transcoders: u64,
    /// Share of the LPT supply mintable as rewards each round (1e9 = 100%). Default 1_000_000 (0.1%).
    pub inflation: u64,
}

impl Default for DevnetParams {
    fn default() -> Self {
        DevnetParams {
            round_length: 10,
            round_lock_amount: 100_000,
            unbonding_period: 2,
            unlock_period: 2,
            ticket_validity_period: 2,
            num_active_transcoders: 10,
            inflation: 1_000_000,
        }
    }
}

/// Where a devnet's contracts are. Every address is also resolvable through the Controller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DevnetDeployment {
    #[serde(flatten)]
    pub contracts: Contracts,
    pub chain_id: u64,
}

/// Why a deployment failed. `step` says which transaction or call.
#[derive(Debug, thiserror::Error)]
pub enum DevnetError {
    #[error("invalid deployer key: {0}")]
    InvalidKey(String),
    #[error("invalid RPC URL {url:?}: {reason}")]
    InvalidUrl { url: String, reason: String },
    #[error("embedded artifact {name} is unusable ({reason}); rebuild with `npm run build --prefix chain/contracts`")]
    Artifact { name: &'static str, reason: String },
    #[error("{step}: the contract reverted: {reason}")]
    Reverted { step: String, reason: String },
    #[error("{step}: transaction {tx} was mined but reverted")]
    FailedOnChain { step: String, tx: B256 },
    #[error("{step}: {source}")]
    Rpc {
        step: String,
        #[source]
        source: RpcError<TransportErrorKind>,
    },
    #[error("{step}: {reason}")]
    Transaction { step: String, reason: String },
}

/// Deploys and wires every contract with `deployer_key` (e.g. anvil's dev key 0,
/// [`crate::anvil::DEV_KEYS`]`[0]`), sets `params`, unpauses the Controller, mints LPT to each
/// `fund` account (amounts in LPT wei) and initializes the current round.
pub async fn deploy(
    rpc_url: &str,
    deployer_key: &str,
    params: &DevnetParams,
    fund: &[(Address, U256)],
) -> Result<DevnetDeployment, DevnetError> {
    let signer: PrivateKeySigner = deployer_key.trim().parse().map_err(|e| DevnetError::InvalidKey(format!("{e}")))?;
    let deployer = signer.address();
    let url =
        rpc_url.parse().map_err(|e| DevnetError::InvalidUrl { url: rpc_url.to_string(), reason: format!("{e}") })?;
    // The nonce is asked of the chain for each transaction, so a failed send never leaves a gap.
    let provider = ProviderBuilder::new()
        .disable_recommended_fillers()
        .with_gas_estimation()
        .with_simple_nonce_management()
        .fetch_chain_id()
        .wallet(EthereumWallet::from(signer))
        .connect_http(url)
        .erased();
    let chain_id = provider.get_chain_id().await.map_err(|source| rpc("eth_chainId", source))?;
    tracing::info!(target: TARGET, rpc_url, %deployer, chain_id, "deploying the devnet contracts");

    let controller = deploy_contract(&provider, "Controller", artifacts::CONTROLLER, Vec::new()).await?;
    let manager_args = controller.abi_encode();
    let livepeer_token = deploy_contract(&provider, "LivepeerToken", artifacts::LIVEPEER_TOKEN, Vec::new()).await?;
    let minter_args =
        (controller, U256::from(params.inflation), U256::ZERO, U256::from(TARGET_BONDING_RATE)).abi_encode_params();
    let minter = deploy_contract(&provider, "Minter", artifacts::MINTER, minter_args).await?;
    let bonding_manager =
        deploy_contract(&provider, "BondingManager", artifacts::BONDING_MANAGER, manager_args.clone()).await?;
    let rounds_manager =
        deploy_contract(&provider, "RoundsManager", artifacts::ROUNDS_MANAGER, manager_args.clone()).await?;
    let ticket_broker =
        deploy_contract(&provider, "TicketBroker", artifacts::TICKET_BROKER, manager_args.clone()).await?;
    let service_registry =
        deploy_contract(&provider, "ServiceRegistry", artifacts::SERVICE_REGISTRY, manager_args).await?;

    // The names the real deployment registers; without proxies a target is its own address.
    let registry = [
        ("LivepeerToken", livepeer_token),
        ("Minter", minter),
        ("BondingManager", bonding_manager),
        ("BondingManagerTarget", bonding_manager),
        ("RoundsManager", rounds_manager),
        ("RoundsManagerTarget", rounds_manager),
        ("TicketBroker", ticket_broker),
        ("TicketBrokerTarget", ticket_broker),
        ("JobsManager", ticket_broker),
        ("ServiceRegistry", service_registry),
        ("ServiceRegistryTarget", service_registry),
    ];
    let ctrl = Controller::new(controller, &provider);
    for (name, address) in registry {
        let call = ctrl.setContractInfo(contract_id(name), address, FixedBytes::ZERO);
        send(&provider, &format!("Controller.setContractInfo({name})"), call.into_transaction_request()).await?;
    }

    // The Minter mints rewards (and could burn slashed stake); the deployer mints the initial supply.
    let token = LivepeerToken::new(livepeer_token, &provider);
    for (role, account, who) in
        [("MINTER_ROLE", minter, "Minter"), ("BURNER_ROLE", minter, "Minter"), ("MINTER_ROLE", deployer, "deployer")]
    {
        let call = token.grantRole(keccak256(role), account);
        send(&provider, &format!("LivepeerToken.grantRole({role}, {who})"), call.into_transaction_request()).await?;
    }

    let rounds = RoundsManager::new(rounds_manager, &provider);
    let bonding = BondingManager::new(bonding_manager, &provider);
    let broker = TicketBroker::new(ticket_broker, &provider);
    let settings: [(&str, TransactionRequest); 6] = [
        (
            "RoundsManager.setRoundLength",
            rounds.setRoundLength(U256::from(params.round_length)).into_transaction_request(),
        ),
        (
            "RoundsManager.setRoundLockAmount",
            rounds.setRoundLockAmount(U256::from(params.round_lock_amount)).into_transaction_request(),
        ),
        (
            "BondingManager.setUnbondingPeriod",
            bonding.setUnbondingPeriod(params.unbonding_period).into_transaction_request(),
        ),
        (
            "BondingManager.setNumActiveTranscoders",
            bonding.setNumActiveTranscoders(U256::from(params.num_active_transcoders)).into_transaction_request(),
        ),
        (
            "TicketBroker.setUnlockPeriod",
            broker.setUnlockPeriod(U256::from(params.unlock_period)).into_transaction_request(),
        ),
        (
            "TicketBroker.setTicketValidityPeriod",
            broker.setTicketValidityPeriod(U256::from(params.ticket_validity_period)).into_transaction_request(),
        ),
    ];
    for (step, tx) in settings {
        send(&provider, step, tx).await?;
    }

    send(&provider, "Controller.unpause", ctrl.unpause().into_transaction_request()).await?;

    for (account, amount) in fund {
        let call = token.mint(*account, *amount);
        send(&provider, &format!("LivepeerToken.mint({account})"), call.into_transaction_request()).await?;
    }

    let initialized = rounds
        .currentRoundInitialized()
        .call()
        .await
        .map_err(|e| contract_error("RoundsManager.currentRoundInitialized", e))?;
    if !initialized {
        send(&provider, "RoundsManager.initializeRound", rounds.initializeRound().into_transaction_request()).await?;
    }

    let deployment = DevnetDeployment {
        contracts: Contracts {
            controller,
            bonding_manager,
            rounds_manager,
            ticket_broker,
            service_registry,
            minter,
            livepeer_token,
        },
        chain_id,
    };
    tracing::info!(target: TARGET, controller = %deployment.contracts.controller, "devnet contracts deployed");
    Ok(deployment)
}

/// Whether `deployment` is still live on the chain at `rpc_url`: the Controller has code and
/// resolves `BondingManager` to the recorded address (a restarted anvil without state has neither).
pub async fn is_deployed(rpc_url: &str, deployment: &DevnetDeployment) -> bool {
    let Ok(url) = rpc_url.parse() else {
        return false;
    };
    let provider = ProviderBuilder::new().connect_http(url);
    match provider.get_chain_id().await {
        Ok(id) if id == deployment.chain_id => {}
        _ => return false,
    }
    match provider.get_code_at(deployment.contracts.controller).await {
        Ok(code) if !code.is_empty() => {}
        _ => return false,
    }
    let controller = Controller::new(deployment.contracts.controller, &provider);
    matches!(
        controller.getContract(contract_id("BondingManager")).call().await,
        Ok(address) if address == deployment.contracts.bonding_manager
    )
}

/// Deploys one artifact with ABI-encoded constructor arguments appended to its bytecode.
async fn deploy_contract(
    provider: &DynProvider,
    name: &'static str,
    artifact: &str,
    constructor_args: Vec<u8>,
) -> Result<Address, DevnetError> {
    let mut code = bytecode(name, artifact)?;
    code.extend_from_slice(&constructor_args);
    let step = format!("deploying {name}");
    let tx = TransactionRequest::default().with_deploy_code(Bytes::from(code));
    let receipt = send(provider, &step, tx).await?;
    let address = receipt
        .contract_address
        .ok_or_else(|| DevnetError::Transaction { step, reason: "the receipt has no contract address".into() })?;
    tracing::debug!(target: TARGET, name, %address, gas = receipt.gas_used, "deployed");
    Ok(address)
}

/// The creation bytecode of an artifact.
fn bytecode(name: &'static str, artifact: &str) -> Result<Vec<u8>, DevnetError> {
    #[derive(Deserialize)]
    struct Artifact {
        bytecode: String,
    }
    let parsed: Artifact =
        serde_json::from_str(artifact).map_err(|e| DevnetError::Artifact { name, reason: e.to_string() })?;
    let code = hex::decode(parsed.bytecode.trim_start_matches("0x"))
        .map_err(|e| DevnetError::Artifact { name, reason: e.to_string() })?;
    if code.is_empty() {
        return Err(DevnetError::Artifact { name, reason: "empty bytecode".into() });
    }
    Ok(code)
}

/// Sends a transaction and waits for its receipt; a revert (found by the gas estimate, or in the
/// receipt) is an error carrying the contract's reason.
async fn send(provider: &DynProvider, step: &str, tx: TransactionRequest) -> Result<TransactionReceipt, DevnetError> {
    let pending = provider.send_transaction(tx).await.map_err(|source| rpc(step, source))?;
    let receipt = pending
        .with_timeout(Some(RECEIPT_TIMEOUT))
        .get_receipt()
        .await
        .map_err(|e| DevnetError::Transaction { step: step.to_string(), reason: e.to_string() })?;
    if !receipt.status() {
        return Err(DevnetError::FailedOnChain { step: step.to_string(), tx: receipt.transaction_hash });
    }
    Ok(receipt)
}

/// An RPC error, as [`DevnetError::Reverted`] when it is a contract revert.
fn rpc(step: &str, source: RpcError<TransportErrorKind>) -> DevnetError {
    match revert_reason(&source) {
        Some(reason) => DevnetError::Reverted { step: step.to_string(), reason },
        None => DevnetError::Rpc { step: step.to_string(), source },
    }
}

fn contract_error(step: &str, err: alloy::contract::Error) -> DevnetError {
    match err {
        alloy::contract::Error::TransportError(source) => rpc(step, source),
        other => DevnetError::Transaction { step: step.to_string(), reason: other.to_string() },
    }
}

/// The reason of a reverted call: the `Error(string)` payload, or a note when there is none.
fn revert_reason(err: &RpcError<TransportErrorKind>) -> Option<String> {
    let payload = err.as_error_resp()?;
    if !payload.message.contains("revert") {
        return None;
    }
    Some(match payload.as_decoded_error::<Revert>() {
        Some(revert) => revert.reason,
        None => match payload.as_revert_data() {
            Some(data) if !data.is_empty() => format!("custom error 0x{}", hex::encode(data)),
            _ => "no reason given".to_string(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn artifacts_have_bytecode() {
        for (name, artifact) in [
            ("Controller", artifacts::CONTROLLER),
            ("LivepeerToken", artifacts::LIVEPEER_TOKEN),
            ("Minter", artifacts::MINTER),
            ("BondingManager", artifacts::BONDING_MANAGER),
            ("RoundsManager", artifacts::ROUNDS_MANAGER),
            ("TicketBroker", artifacts::TICKET_BROKER),
            ("ServiceRegistry", artifacts::SERVICE_REGISTRY),
        ] {
            assert!(bytecode(name, artifact).unwrap().len() > 100, "{name}");
        }
    }

    #[test]
    fn contract_ids_match_the_real_deployment() {
        // Every id the real Controller registers (chain/abi/_index.json, controllerIds).
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/abi/_index.json");
        let index: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let ids = index["controllerIds"].as_object().unwrap();
        assert!(ids.contains_key("BondingManager") && ids.contains_key("JobsManager"));
        for (name, id) in ids {
            assert_eq!(contract_id(name).to_string(), id.as_str().unwrap(), "{name}");
        }
    }

    #[test]
    fn params_default_and_deployment_roundtrip() {
        let p = DevnetParams::default();
        assert_eq!((p.round_length, p.inflation), (10, 1_000_000));
        let d = DevnetDeployment {
            contracts: Contracts {
                controller: Address::repeat_byte(1),
                bonding_manager: Address::repeat_byte(2),
                rounds_manager: Address::repeat_byte(3),
                ticket_broker: Address::repeat_byte(4),
                service_registry: Address::repeat_byte(5),
                minter: Address::repeat_byte(6),
                livepeer_token: Address::repeat_byte(7),
            },
            chain_id: 31337,
        };
        let json = serde_json::to_string(&d).unwrap();
        assert_eq!(serde_json::from_str::<DevnetDeployment>(&json).unwrap(), d);
    }
}
