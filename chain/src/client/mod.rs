//! [`ChainClient`]: the Livepeer contracts as the operator CLI (`livepeer chain …`) and the
//! node's chain actors use them. Reads are plain `eth_call`s; every write goes through
//! [`TxManager`], so the gas policy, nonce handling, replacement of stuck transactions and revert
//! reasons apply to all of them.
//!
//! This file owns the connection (endpoint, chain id, resolved contracts, the sending account)
//! and the plumbing every contract's methods share: the contract instances, [`ChainClient::send`]
//! and the account check. The methods themselves live with their contract, each in an
//! `impl ChainClient` of its own file:
//!
//! - `bonding`: BondingManager bonding, registration, unbonding, fees and the pool;
//! - `reward`: `rewardWithHint`, its position hints and the mint they simulate (Minter);
//! - `rounds`: RoundsManager's round and `initializeRound`;
//! - `broker`: TicketBroker deposit, reserve, unlock and withdraw; redeeming winning tickets;
//! - `token`: LivepeerToken allowance for bonding;
//! - `registry`: ServiceRegistry's service URI;
//! - `status`: one account across all of them (`livepeer chain status`);
//! - `amounts`: amounts as people type and read them ([`parse_amount`], [`format_amount`]).

use std::sync::Arc;
use std::time::Duration;

use alloy::eips::BlockNumberOrTag;
use alloy::primitives::{Address, B256, U64, U256};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::rpc::types::{TransactionReceipt, TransactionRequest};
use alloy::signers::local::PrivateKeySigner;

use crate::bindings::{BondingManager, LivepeerToken, Minter, RoundsManager, ServiceRegistry, TicketBroker};
use crate::contracts::Contracts;
use crate::error::{ChainError, redact_url};
use crate::tx::{TxManager, TxPolicy};

mod amounts;
mod bonding;
mod broker;
mod registry;
mod reward;
mod rounds;
mod senders;
mod status;
mod token;

pub use amounts::{Token, format_amount, parse_amount};
pub use bonding::{PERC_DIVISOR, PoolMember, Unbonded, UnbondingLock};
pub use broker::Redeemed;
pub use reward::expected_reward;
pub use rounds::RoundInfo;
pub use status::NodeStatus;

/// A block header as the node needs it, read as JSON rather than as alloy's Ethereum block so
/// that Arbitrum's `l1BlockNumber` is kept.
#[derive(Debug, Clone, Copy, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockHeader {
    pub number: U64,
    pub hash: B256,
    pub parent_hash: B256,
    /// Arbitrum's number of the L1 block the block belongs to (absent on other chains).
    pub l1_block_number: Option<U64>,
}

impl BlockHeader {
    /// The block number contracts see as `block.number`: on Arbitrum the L1 block's.
    pub fn l1_number(&self) -> u64 {
        self.l1_block_number.unwrap_or(self.number).to()
    }
}

/// The header of block `at`, or `None` when the chain has no such block.
pub async fn block_header(
    provider: &DynProvider,
    at: BlockNumberOrTag,
) -> Result<Option<BlockHeader>, alloy::transports::RpcError<alloy::transports::TransportErrorKind>> {
    provider.raw_request("eth_getBlockByNumber".into(), (at, false)).await
}

/// How long one JSON-RPC request may take (go-livepeer's `ethRPCTimeout`).
pub const RPC_TIMEOUT: Duration = Duration::from_secs(20);

/// A connection to one Livepeer deployment, with an optional account to send from. Cheap to
/// clone: clones share the connection and the account's nonce counter.
#[derive(Clone)]
pub struct ChainClient {
    inner: Arc<Inner>,
}

struct Inner {
    provider: DynProvider,
    url: String,
    chain_id: u64,
    contracts: Contracts,
    tx: Option<TxManager>,
}

impl std::fmt::Debug for ChainClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChainClient")
            .field("url", &self.inner.url)
            .field("chain_id", &self.inner.chain_id)
            .field("address", &self.address())
            .field("contracts", &self.inner.contracts)
            .finish()
    }
}

/// A provider for `url` (http or https) with a per-request timeout.
pub fn http_provider(url: &str) -> Result<DynProvider, ChainError> {
    let parsed: alloy::transports::http::reqwest::Url =
        url.parse().map_err(|_| ChainError::InvalidInput(format!("eth.url {} is not a valid URL", redact_url(url))))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(ChainError::InvalidInput(format!(
            "eth.url {} must be an http:// or https:// URL",
            redact_url(url)
        )));
    }
    let client = alloy::transports::http::reqwest::Client::builder()
        .timeout(RPC_TIMEOUT)
        .build()
        .map_err(|e| ChainError::Rpc(format!("cannot build the HTTP client: {e}")))?;
    Ok(ProviderBuilder::new().disable_recommended_fillers().connect_reqwest(client, parsed).erased())
}

/// A round number (or lock id) as the contracts return it, as `u64`.
fn round_u64(v: U256) -> u64 {
    v.saturating_to()
}

impl ChainClient {
    /// Connect to `url`, resolve the contracts from `controller`, and send from `signer` (if
    /// any) under `policy`.
    pub async fn connect(
        url: &str,
        controller: Address,
        signer: Option<PrivateKeySigner>,
        policy: TxPolicy,
    ) -> Result<ChainClient, ChainError> {
        let provider = http_provider(url)?;
        ChainClient::with_provider(provider, redact_url(url), controller, signer, policy).await
    }

    /// Like [`ChainClient::connect`] over an existing provider; `label` names the endpoint in
    /// `Debug` output and must not hold credentials.
    pub async fn with_provider(
        provider: DynProvider,
        label: String,
        controller: Address,
        signer: Option<PrivateKeySigner>,
        policy: TxPolicy,
    ) -> Result<ChainClient, ChainError> {
        let chain_id = provider.get_chain_id().await?;
        let contracts = Contracts::resolve(&provider, controller).await?;
        let tx = signer.map(|s| TxManager::new(provider.clone(), s, policy));
        tracing::info!(
            target: "lp::chain",
            url = %label,
            chain_id,
            controller = %controller,
            account = ?tx.as_ref().map(TxManager::address),
            "Connected to the Livepeer contracts."
        );
        Ok(ChainClient { inner: Arc::new(Inner { provider, url: label, chain_id, contracts, tx }) })
    }

    /// The endpoint's URL with any credentials redacted, for logs.
    pub fn endpoint(&self) -> &str {
        &self.inner.url
    }

    /// The chain id of the endpoint.
    pub fn chain_id(&self) -> u64 {
        self.inner.chain_id
    }

    /// The sending account, if the client has one.
    pub fn address(&self) -> Option<Address> {
        self.inner.tx.as_ref().map(TxManager::address)
    }

    /// The sending account's key (payment tickets are signed with it), if the client has one.
    pub fn signer(&self) -> Option<&PrivateKeySigner> {
        self.inner.tx.as_ref().map(TxManager::signer)
    }

    /// The gas price transactions are priced at (wei): polled, cached for the poll interval,
    /// floored at the policy's minimum. Needs an account (its policy).
    pub async fn gas_price(&self) -> Result<u128, ChainError> {
        self.tx()?.gas_price().await
    }

    /// The resolved contract addresses.
    pub fn contracts(&self) -> &Contracts {
        &self.inner.contracts
    }

    /// The provider, for reads this client does not wrap.
    pub fn provider(&self) -> &DynProvider {
        &self.inner.provider
    }

    /// The latest block number.
    pub async fn block_number(&self) -> Result<u64, ChainError> {
        Ok(self.inner.provider.get_block_number().await?)
    }

    /// The number contracts see as `block.number` at the head: on Arbitrum its L1 block's
    /// (the head's `l1BlockNumber`, by which ticket parameters expire), elsewhere the head's.
    pub async fn l1_block_number(&self) -> Result<u64, ChainError> {
        let head = block_header(&self.inner.provider, BlockNumberOrTag::Latest).await?;
        let head = head.ok_or_else(|| ChainError::Rpc("the endpoint has no latest block".into()))?;
        Ok(head.l1_number())
    }

    /// Send any transaction from the client's account through its [`TxManager`].
    pub async fn send(&self, tx: TransactionRequest, what: &str) -> Result<TransactionReceipt, ChainError> {
        self.tx()?.send(tx, what).await
    }

    fn tx(&self) -> Result<&TxManager, ChainError> {
        self.inner.tx.as_ref().ok_or(ChainError::NoAccount)
    }

    /// The sending account, or [`ChainError::NoAccount`]: every write checks it first.
    fn me(&self) -> Result<Address, ChainError> {
        Ok(self.tx()?.address())
    }

    fn bonding_manager(&self) -> BondingManager::BondingManagerInstance<&DynProvider> {
        BondingManager::new(self.inner.contracts.bonding_manager, &self.inner.provider)
    }

    fn rounds_manager(&self) -> RoundsManager::RoundsManagerInstance<&DynProvider> {
        RoundsManager::new(self.inner.contracts.rounds_manager, &self.inner.provider)
    }

    fn ticket_broker(&self) -> TicketBroker::TicketBrokerInstance<&DynProvider> {
        TicketBroker::new(self.inner.contracts.ticket_broker, &self.inner.provider)
    }

    fn service_registry(&self) -> ServiceRegistry::ServiceRegistryInstance<&DynProvider> {
        ServiceRegistry::new(self.inner.contracts.service_registry, &self.inner.provider)
    }

    fn minter(&self) -> Minter::MinterInstance<&DynProvider> {
        Minter::new(self.inner.contracts.minter, &self.inner.provider)
    }

    fn token(&self) -> LivepeerToken::LivepeerTokenInstance<&DynProvider> {
        LivepeerToken::new(self.inner.contracts.livepeer_token, &self.inner.provider)
    }
}
