//! [`ChainClient`]: the Livepeer contracts as the operator CLI (`livepeer chain …`) and the
//! node's chain actors use them. Reads are plain `eth_call`s; every write goes through
//! [`TxManager`], so the gas policy, nonce handling, replacement of stuck transactions and revert
//! reasons apply to all of them.
//!
//! Amounts are wei (`U256`). [`parse_amount`] reads one as a person types it (`"1.5"`, `"20
//! gwei"`), strictly (no negative amounts, no fractions of a wei); [`format_amount`] writes one
//! (`"1.5 LPT"`); LPT and ETH both have 18 decimals.

use std::sync::Arc;
use std::time::Duration;

use alloy::primitives::{Address, B256, U256};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::rpc::types::{TransactionReceipt, TransactionRequest};
use alloy::signers::local::PrivateKeySigner;
use serde::Serialize;

use crate::bindings::{BondingManager, LivepeerToken, Minter, RoundsManager, ServiceRegistry, TicketBroker};
use crate::contracts::Contracts;
use crate::error::{ChainError, redact_url};
use crate::tx::{TxManager, TxPolicy};

/// Decimals of LPT and ETH.
pub const DECIMALS: u8 = 18;
/// Upper bound of `rewardCut` and `feeShare` (`MathUtils.PERC_DIVISOR`: 1_000_000 = 100%).
pub const PERC_DIVISOR: u32 = 1_000_000;
/// How long one JSON-RPC request may take (go-livepeer's `ethRPCTimeout`).
pub const RPC_TIMEOUT: Duration = Duration::from_secs(20);
/// `MathUtilsV2.PERC_DIVISOR`, the Minter's precision.
const MINTER_PERC_DIVISOR: u64 = 1_000_000_000;
/// `PreciseMathUtils.PERC_DIVISOR`, the precision of `treasuryRewardCutRate`.
const PRECISE_PERC_DIVISOR: u128 = 1_000_000_000_000_000_000_000_000_000;
/// Guard against a malformed pool list that never ends.
const MAX_POOL_WALK: usize = 10_000;

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
    /// `blockHashForRound(lastInitializedRound)`: what tickets of that round commit to.
    pub block_hash_of_last_initialized: B256,
    /// `BondingManager.getTranscoderPoolSize()`: members of the pool (next round's active set).
    pub pool_size: u64,
}

/// One member of the transcoder pool (next round's active set).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PoolMember {
    /// The transcoder.
    pub address: Address,
    /// Its total stake (`transcoderTotalStake`, LPT wei).
    pub stake: U256,
    /// Its `ServiceRegistry` URI.
    pub service_uri: String,
    /// Whether it is active in the current round (`isActiveTranscoder`).
    pub active: bool,
}

/// One unbonding lock of a delegator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnbondingLock {
    /// The lock id (for `rebond` and `withdraw_stake`).
    pub id: u64,
    /// LPT wei.
    pub amount: U256,
    /// The round from which it can be withdrawn.
    pub withdraw_round: u64,
}

/// The result of [`ChainClient::unbond`].
#[derive(Debug, Clone)]
pub struct Unbonded {
    /// The unbond transaction.
    pub receipt: TransactionReceipt,
    /// The lock it created, read from its `Unbond` event.
    pub lock: Option<UnbondingLock>,
}

/// Everything the chain knows about one account: `livepeer chain status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeStatus {
    /// The account.
    pub address: Address,
    /// The chain id of the endpoint.
    pub chain_id: u64,
    /// The latest block number.
    pub block_number: u64,
    /// The round.
    pub round: RoundInfo,
    /// ETH balance (wei).
    pub eth_balance: U256,
    /// LPT balance (wei).
    pub lpt_balance: U256,
    /// LPT the BondingManager may pull from the account (wei).
    pub lpt_allowance: U256,
    /// `delegatorStatus`: "Pending", "Bonded" or "Unbonded".
    pub delegator_status: String,
    /// LPT bonded by the account (wei), before pending rewards.
    pub bonded_amount: U256,
    /// Who the account delegates to (itself when registered).
    pub delegate: Address,
    /// The round the bond takes effect.
    pub start_round: u64,
    /// The last round earnings were claimed.
    pub last_claim_round: u64,
    /// Bonded amount plus unclaimed rewards (`pendingStake`).
    pub pending_stake: U256,
    /// Unclaimed fees (`pendingFees`, ETH wei).
    pub pending_fees: U256,
    /// `isRegisteredTranscoder`.
    pub registered: bool,
    /// `isActiveTranscoder` (this round).
    pub active: bool,
    /// Stake delegated to the account as a transcoder (`transcoderTotalStake`).
    pub total_stake: U256,
    /// Share of rewards the transcoder keeps (1e6 = 100%).
    pub reward_cut: u32,
    /// Share of fees paid to delegators (1e6 = 100%).
    pub fee_share: u32,
    /// The last round the transcoder called reward.
    pub last_reward_round: u64,
    /// The round the transcoder becomes (became) active.
    pub activation_round: u64,
    /// The round the transcoder stops being active.
    pub deactivation_round: u64,
    /// The account's `ServiceRegistry` URI.
    pub service_uri: String,
    /// TicketBroker deposit (ETH wei).
    pub deposit: U256,
    /// TicketBroker reserve remaining (ETH wei).
    pub reserve: U256,
    /// The round deposit and reserve can be withdrawn (0 = no unlock in progress).
    pub withdraw_round: u64,
}

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

    /// The resolved contract addresses.
    pub fn contracts(&self) -> &Contracts {
        &self.inner.contracts
    }

    /// The provider, for reads this client does not wrap.
    pub fn provider(&self) -> &DynProvider {
        &self.inner.provider
    }

    /// The transaction manager, if the client has an account.
    pub fn tx_manager(&self) -> Option<&TxManager> {
        self.inner.tx.as_ref()
    }

    fn tx(&self) -> Result<&TxManager, ChainError> {
        self.inner.tx.as_ref().ok_or(ChainError::NoAccount)
    }

    fn me(&self) -> Result<Address, ChainError> {
        Ok(self.tx()?.address())
    }

    /// Send any transaction from the client's account through its [`TxManager`].
    pub async fn send(&self, tx: TransactionRequest, what: &str) -> Result<TransactionReceipt, ChainError> {
        self.tx()?.send(tx, what).await
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

    // ----- reads -----

    /// The latest block number.
    pub async fn block_number(&self) -> Result<u64, ChainError> {
        Ok(self.inner.provider.get_block_number().await?)
    }

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
        let pool_size = self.bonding_manager().getTranscoderPoolSize().call().await?;
        Ok(RoundInfo {
            round: round_u64(round),
            initialized,
            locked,
            start_block: round_u64(start_block),
            length: round_u64(length),
            last_initialized_round: round_u64(last_initialized),
            block_hash_of_last_initialized,
            pool_size: round_u64(pool_size),
        })
    }

    /// Everything about `addr`: bond, transcoder, ticket-broker and balances.
    pub async fn status(&self, addr: Address) -> Result<NodeStatus, ChainError> {
        let bm = self.bonding_manager();
        let tb = self.ticket_broker();
        let token = self.token();
        let sr = self.service_registry();
        let p = &self.inner.provider;
        let (block_number, round, eth_balance, lpt_balance, lpt_allowance, service_uri) = tokio::try_join!(
            async { p.get_block_number().await.map_err(ChainError::from) },
            self.current_round(),
            async { p.get_balance(addr).await.map_err(ChainError::from) },
            async { token.balanceOf(addr).call().await.map_err(ChainError::from) },
            async {
                token.allowance(addr, self.inner.contracts.bonding_manager).call().await.map_err(ChainError::from)
            },
            async { sr.getServiceURI(addr).call().await.map_err(ChainError::from) },
        )?;
        let (delegator, delegator_status, transcoder, registered, active, total_stake) = tokio::try_join!(
            async { bm.getDelegator(addr).call().await.map_err(ChainError::from) },
            async { bm.delegatorStatus(addr).call().await.map_err(ChainError::from) },
            async { bm.getTranscoder(addr).call().await.map_err(ChainError::from) },
            async { bm.isRegisteredTranscoder(addr).call().await.map_err(ChainError::from) },
            async { bm.isActiveTranscoder(addr).call().await.map_err(ChainError::from) },
            async { bm.transcoderTotalStake(addr).call().await.map_err(ChainError::from) },
        )?;
        let end_round = U256::from(round.round);
        let (pending_stake, pending_fees, sender) = tokio::try_join!(
            async { bm.pendingStake(addr, end_round).call().await.map_err(ChainError::from) },
            async { bm.pendingFees(addr, end_round).call().await.map_err(ChainError::from) },
            async { tb.getSenderInfo(addr).call().await.map_err(ChainError::from) },
        )?;
        Ok(NodeStatus {
            address: addr,
            chain_id: self.inner.chain_id,
            block_number,
            round,
            eth_balance,
            lpt_balance,
            lpt_allowance,
            delegator_status: match delegator_status {
                0 => "Pending".to_string(),
                1 => "Bonded".to_string(),
                2 => "Unbonded".to_string(),
                other => format!("Unknown({other})"),
            },
            bonded_amount: delegator.bondedAmount,
            delegate: delegator.delegateAddress,
            start_round: round_u64(delegator.startRound),
            last_claim_round: round_u64(delegator.lastClaimRound),
            pending_stake,
            pending_fees,
            registered,
            active,
            total_stake,
            reward_cut: transcoder.rewardCut.saturating_to(),
            fee_share: transcoder.feeShare.saturating_to(),
            last_reward_round: round_u64(transcoder.lastRewardRound),
            activation_round: round_u64(transcoder.activationRound),
            deactivation_round: round_u64(transcoder.deactivationRound),
            service_uri,
            deposit: sender.sender.deposit,
            reserve: sender.reserve.fundsRemaining,
            withdraw_round: round_u64(sender.sender.withdrawRound),
        })
    }

    /// The transcoder pool in its on-chain order (descending stake), each with its stake,
    /// service URI and whether it is active this round.
    pub async fn pool(&self) -> Result<Vec<PoolMember>, ChainError> {
        let bm = self.bonding_manager();
        let sr = self.service_registry();
        let mut members = Vec::new();
        for address in self.pool_addresses().await? {
            let (stake, service_uri, active) = tokio::try_join!(
                async { bm.transcoderTotalStake(address).call().await.map_err(ChainError::from) },
                async { sr.getServiceURI(address).call().await.map_err(ChainError::from) },
                async { bm.isActiveTranscoder(address).call().await.map_err(ChainError::from) },
            )?;
            members.push(PoolMember { address, stake, service_uri, active });
        }
        Ok(members)
    }

    /// The pool's addresses: `getFirstTranscoderInPool`, then `getNextTranscoderInPool` until 0.
    async fn pool_addresses(&self) -> Result<Vec<Address>, ChainError> {
        let bm = self.bonding_manager();
        let mut out = Vec::new();
        let mut cur = bm.getFirstTranscoderInPool().call().await?;
        while !cur.is_zero() {
            if out.len() >= MAX_POOL_WALK || out.contains(&cur) {
                return Err(ChainError::Rpc("the transcoder pool list does not terminate".to_string()));
            }
            out.push(cur);
            cur = bm.getNextTranscoderInPool(cur).call().await?;
        }
        Ok(out)
    }

    /// The live unbonding locks of `addr` (withdrawn or rebonded ones are gone).
    pub async fn unbonding_locks(&self, addr: Address) -> Result<Vec<UnbondingLock>, ChainError> {
        let bm = self.bonding_manager();
        let next = round_u64(bm.getDelegator(addr).call().await?.nextUnbondingLockId);
        let mut locks = Vec::new();
        for id in 0..next {
            let lock = bm.getDelegatorUnbondingLock(addr, U256::from(id)).call().await?;
            if !lock.amount.is_zero() {
                locks.push(UnbondingLock { id, amount: lock.amount, withdraw_round: round_u64(lock.withdrawRound) });
            }
        }
        Ok(locks)
    }

    /// The `rewardWithHint` position of `addr` after its reward: the pool as it will be once
    /// `addr`'s stake has grown by this round's reward (go-livepeer's `simulateTranscoderPoolUpdate`).
    /// `(0, 0)` when `addr` is not in the pool.
    pub async fn reward_hints(&self, addr: Address) -> Result<(Address, Address), ChainError> {
        let bm = self.bonding_manager();
        let minter = self.minter();
        let round = self.rounds_manager().currentRound().call().await?;
        let (pool_stake, mintable, total_active, own_stake) = tokio::try_join!(
            async { bm.getTranscoderEarningsPoolForRound(addr, round).call().await.map_err(ChainError::from) },
            async { minter.currentMintableTokens().call().await.map_err(ChainError::from) },
            async { bm.getTotalBonded().call().await.map_err(ChainError::from) },
            async { bm.transcoderTotalStake(addr).call().await.map_err(ChainError::from) },
        )?;
        // A deployment without a treasury cut answers an error here: no cut then.
        let cut_rate = bm.treasuryRewardCutRate().call().await.unwrap_or(U256::ZERO);
        let reward = expected_reward(mintable, pool_stake.totalStake, total_active, cut_rate);
        let new_stake = own_stake.saturating_add(reward);

        let addresses = self.pool_addresses().await?;
        if !addresses.contains(&addr) {
            return Ok((Address::ZERO, Address::ZERO));
        }
        let mut others = Vec::with_capacity(addresses.len());
        for a in addresses.into_iter().filter(|a| *a != addr) {
            others.push((a, bm.transcoderTotalStake(a).call().await?));
        }
        Ok(insert_position(&others, new_stake))
    }

    // ----- writes -----

    /// Bond `amount` LPT wei to `to`, approving the BondingManager first when its allowance is
    /// short.
    pub async fn bond(&self, amount: U256, to: Address) -> Result<TransactionReceipt, ChainError> {
        let me = self.me()?;
        let bm_addr = self.inner.contracts.bonding_manager;
        let token = self.token();
        let allowance = token.allowance(me, bm_addr).call().await?;
        if allowance < amount {
            let balance = token.balanceOf(me).call().await?;
            if balance < amount {
                return Err(ChainError::InvalidInput(format!(
                    "cannot bond {} LPT: the account {me} holds {} LPT",
                    format_units(amount, DECIMALS),
                    format_units(balance, DECIMALS)
                )));
            }
            self.send(token.approve(bm_addr, amount).into_transaction_request(), "LivepeerToken.approve").await?;
        }
        let bm = self.bonding_manager();
        self.send(bm.bond(amount, to).into_transaction_request(), "BondingManager.bond").await
    }

    /// Unbond `amount` LPT wei; the new lock is read from the `Unbond` event.
    pub async fn unbond(&self, amount: U256) -> Result<Unbonded, ChainError> {
        let me = self.me()?;
        let bm = self.bonding_manager();
        let receipt = self.send(bm.unbond(amount).into_transaction_request(), "BondingManager.unbond").await?;
        let lock = receipt
            .inner
            .logs()
            .iter()
            .filter(|l| l.address() == self.inner.contracts.bonding_manager)
            .filter_map(|l| l.log_decode::<BondingManager::Unbond>().ok())
            .map(|l| l.inner.data)
            .find(|e| e.delegator == me)
            .map(|e| UnbondingLock {
                id: round_u64(e.unbondingLockId),
                amount: e.amount,
                withdraw_round: round_u64(e.withdrawRound),
            });
        Ok(Unbonded { receipt, lock })
    }

    /// Rebond the unbonding lock `lock_id` to the current delegate.
    pub async fn rebond(&self, lock_id: u64) -> Result<TransactionReceipt, ChainError> {
        self.me()?;
        let contract = self.bonding_manager();
        let call = contract.rebond(U256::from(lock_id));
        self.send(call.into_transaction_request(), "BondingManager.rebond").await
    }

    /// Withdraw the LPT of the unbonding lock `lock_id` (after its withdraw round).
    pub async fn withdraw_stake(&self, lock_id: u64) -> Result<TransactionReceipt, ChainError> {
        self.me()?;
        let contract = self.bonding_manager();
        let call = contract.withdrawStake(U256::from(lock_id));
        self.send(call.into_transaction_request(), "BondingManager.withdrawStake").await
    }

    /// Register as a transcoder: bond `amount_to_self_bond` to self when it is above 0, then
    /// `transcoder(reward_cut, fee_share)` (1e6 = 100%), then `setServiceURI(service_uri)`.
    /// Returns the receipts in order.
    pub async fn register(
        &self,
        amount_to_self_bond: U256,
        reward_cut: u32,
        fee_share: u32,
        service_uri: &str,
    ) -> Result<Vec<TransactionReceipt>, ChainError> {
        let me = self.me()?;
        if reward_cut > PERC_DIVISOR || fee_share > PERC_DIVISOR {
            return Err(ChainError::InvalidInput(format!(
                "reward cut and fee share are at most {PERC_DIVISOR} (100%); got {reward_cut} and {fee_share}"
            )));
        }
        if service_uri.trim().is_empty() {
            return Err(ChainError::InvalidInput("the service URI is empty".to_string()));
        }
        let mut receipts = Vec::new();
        if !amount_to_self_bond.is_zero() {
            receipts.push(self.bond(amount_to_self_bond, me).await?);
        }
        let contract = self.bonding_manager();
        let call = contract.transcoder(U256::from(reward_cut), U256::from(fee_share));
        receipts.push(self.send(call.into_transaction_request(), "BondingManager.transcoder").await?);
        receipts.push(self.set_service_uri(service_uri).await?);
        Ok(receipts)
    }

    /// Set the account's `ServiceRegistry` URI.
    pub async fn set_service_uri(&self, service_uri: &str) -> Result<TransactionReceipt, ChainError> {
        self.me()?;
        let contract = self.service_registry();
        let call = contract.setServiceURI(service_uri.to_string());
        self.send(call.into_transaction_request(), "ServiceRegistry.setServiceURI").await
    }

    /// Call `rewardWithHint` with the position the account's stake will have after the reward.
    pub async fn reward(&self) -> Result<TransactionReceipt, ChainError> {
        let me = self.me()?;
        let (prev, next) = self.reward_hints(me).await?;
        let contract = self.bonding_manager();
        let call = contract.rewardWithHint(prev, next);
        self.send(call.into_transaction_request(), "BondingManager.rewardWithHint").await
    }

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

    /// Withdraw `amount` wei of earned fees to `recipient`.
    pub async fn withdraw_fees(&self, recipient: Address, amount: U256) -> Result<TransactionReceipt, ChainError> {
        self.me()?;
        let contract = self.bonding_manager();
        let call = contract.withdrawFees(recipient, amount);
        self.send(call.into_transaction_request(), "BondingManager.withdrawFees").await
    }

    /// Initialize the current round.
    pub async fn initialize_round(&self) -> Result<TransactionReceipt, ChainError> {
        self.me()?;
        let contract = self.rounds_manager();
        let call = contract.initializeRound();
        self.send(call.into_transaction_request(), "RoundsManager.initializeRound").await
    }
}

/// The stake a transcoder's pool entry gains from `reward()` (what `BondingManager.reward`
/// computes): `Minter.createReward(poolStake, totalActive)` = `mintable · ⌊poolStake·1e9/totalActive⌋
/// / 1e9`, minus the treasury's `mint · cutRate / 1e27`.
pub fn expected_reward(mintable: U256, pool_stake: U256, total_active: U256, treasury_cut_rate: U256) -> U256 {
    if total_active.is_zero() {
        return U256::ZERO;
    }
    let perc = pool_stake.saturating_mul(U256::from(MINTER_PERC_DIVISOR)) / total_active;
    let mint = mintable.saturating_mul(perc) / U256::from(MINTER_PERC_DIVISOR);
    let treasury = mint.saturating_mul(treasury_cut_rate) / U256::from(PRECISE_PERC_DIVISOR);
    mint.saturating_sub(treasury)
}

/// Where an entry with `stake` goes in `pool` (sorted by descending stake, without the entry):
/// `(prev, next)` with `prev.stake >= stake >= next.stake`, zero at the ends.
pub fn insert_position(pool: &[(Address, U256)], stake: U256) -> (Address, Address) {
    let idx = pool.iter().position(|(_, s)| *s < stake).unwrap_or(pool.len());
    let prev = if idx == 0 { Address::ZERO } else { pool[idx - 1].0 };
    let next = pool.get(idx).map_or(Address::ZERO, |(a, _)| *a);
    (prev, next)
}

/// The contracts' two currencies, both with [`DECIMALS`] decimals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Token {
    /// Ether: deposits, reserves, fees.
    Eth,
    /// Livepeer Token: stake.
    Lpt,
}

impl Token {
    /// `"ETH"` or `"LPT"`.
    pub fn symbol(self) -> &'static str {
        match self {
            Token::Eth => "ETH",
            Token::Lpt => "LPT",
        }
    }

    /// The units an amount of this token may be written in, for messages.
    pub fn units(self) -> &'static str {
        match self {
            Token::Eth => "ETH (the default), gwei or wei",
            Token::Lpt => "LPT (the default) or wei",
        }
    }

    /// The decimals of `unit` (`""`: the token itself), if it is one of this token's.
    fn unit_decimals(self, unit: &str) -> Option<u8> {
        let unit = unit.to_ascii_lowercase();
        match (self, unit.as_str()) {
            (_, "") | (Token::Lpt, "lpt") => Some(DECIMALS),
            (_, "wei") => Some(0),
            // alloy's names: eth, ether, gwei, szabo, …; not its numeric form ("9").
            (Token::Eth, u) if u.bytes().all(|b| b.is_ascii_alphabetic()) => {
                u.parse::<alloy::primitives::utils::Unit>().ok().map(|u| u.get())
            }
            _ => None,
        }
    }
}

/// Parse an amount as a person types it: a decimal number, optionally followed by a unit
/// (`"1.5"`, `"1.5 ETH"`, `"20gwei"`, `"1000 wei"`; without a unit, whole ETH or LPT). Refused,
/// each with its own reason: an empty string, a negative amount, signs, exponents and separators,
/// an unknown unit, a fraction of a wei (more decimals than the unit has) and more than fits in
/// 256 bits. Zero is accepted; callers refuse it where it makes no sense.
pub fn parse_amount(input: &str, token: Token) -> Result<U256, ChainError> {
    let t = input.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (number, unit) = (&t[..split], t[split..].trim());
    if t.starts_with('-') {
        return Err(ChainError::InvalidInput(format!("{t:?} is negative; an amount is 0 or more")));
    }
    if number.is_empty() {
        return Err(ChainError::InvalidInput(format!(
            "{t:?} is not an amount: write a decimal number such as 1.5, optionally followed by a unit ({})",
            token.units()
        )));
    }
    let decimals = token.unit_decimals(unit).ok_or_else(|| {
        ChainError::InvalidInput(format!(
            "{t:?} is not an amount: {unit:?} is not a unit of {}; use {}",
            token.symbol(),
            token.units()
        ))
    })?;
    parse_units(number, decimals)
}

/// Parse a plain decimal amount (`"1.5"`, `".5"`, `"42"`) into its smallest unit with `decimals`
/// decimals, strictly: digits and at most one decimal point, no sign, no more significant decimals
/// than `decimals` (less than the smallest unit is refused, not rounded), no overflow. The
/// arithmetic is alloy's [`parse_units`](alloy::primitives::utils::parse_units).
pub fn parse_units(s: &str, decimals: u8) -> Result<U256, ChainError> {
    let t = s.trim();
    let bad = |why: String| ChainError::InvalidInput(format!("{t:?} is not an amount: {why}"));
    if t.starts_with('-') {
        return Err(ChainError::InvalidInput(format!("{t:?} is negative; an amount is 0 or more")));
    }
    let (int, frac) = t.split_once('.').unwrap_or((t, ""));
    if int.is_empty() && frac.is_empty() {
        return Err(bad("no digits".to_string()));
    }
    if !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
        return Err(bad("use digits and at most one decimal point".to_string()));
    }
    // Zeros past the last decimal change nothing; any other digit there is a fraction of a wei.
    let significant = frac.trim_end_matches('0').len();
    if significant > usize::from(decimals) {
        return Err(ChainError::InvalidInput(if decimals == 0 {
            format!("{t:?} is a fraction of a wei; 1 wei is the smallest amount")
        } else {
            format!(
                "{t:?} has {significant} decimals, more than the {decimals} of its unit: it is not a whole number of \
                 wei (1 wei is the smallest amount)"
            )
        }));
    }
    let too_large = || bad("too large for 256 bits".to_string());
    let parsed = alloy::primitives::utils::parse_units(t, decimals).map_err(|_| too_large())?;
    match parsed {
        alloy::primitives::utils::ParseUnits::U256(v) => Ok(v),
        alloy::primitives::utils::ParseUnits::I256(_) => Err(too_large()),
    }
}

/// Format an amount in its smallest unit with `decimals` decimals, without trailing zeros
/// (`1500000000000000000` → `"1.5"`), with alloy's
/// [`format_units`](alloy::primitives::utils::format_units).
pub fn format_units(v: U256, decimals: u8) -> String {
    let full = alloy::primitives::utils::format_units(v, decimals).unwrap_or_else(|_| v.to_string());
    match full.split_once('.') {
        Some((int, frac)) if frac.bytes().all(|b| b == b'0') => int.to_string(),
        Some(_) => full.trim_end_matches('0').to_string(),
        None => full,
    }
}

/// `"1.5 LPT"`: an amount in wei as decimal units of `token`.
pub fn format_amount(v: U256, token: Token) -> String {
    format!("{} {}", format_units(v, DECIMALS), token.symbol())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_round_trip() {
        let e = |s: &str| parse_units(s, 18).unwrap();
        assert_eq!(e("1"), U256::from(10u128.pow(18)));
        assert_eq!(e("1.5"), U256::from(15u128 * 10u128.pow(17)));
        assert_eq!(e(".5"), U256::from(5u128 * 10u128.pow(17)));
        assert_eq!(e("0.000000000000000001"), U256::from(1));
        assert_eq!(e(" 2. "), U256::from(2u128 * 10u128.pow(18)));
        for bad in ["", ".", "-1", "1e18", "1.2.3", "0.0000000000000000001", "abc", "1,5", "+1"] {
            assert!(parse_units(bad, 18).is_err(), "{bad:?}");
        }
        assert!(parse_units(&"9".repeat(80), 18).is_err());
        assert_eq!(format_units(e("1.5"), 18), "1.5");
        assert_eq!(format_units(e("1000"), 18), "1000");
        assert_eq!(format_units(U256::from(1), 18), "0.000000000000000001");
        assert_eq!(format_units(U256::ZERO, 18), "0");
        assert_eq!(parse_units("12.34", 6).unwrap(), U256::from(12_340_000));
        assert_eq!(format_units(U256::from(5), 0), "5");
        assert_eq!(format_units(U256::MAX, 18).len(), 79, "every digit of the largest amount");
    }

    fn err(input: &str, token: Token) -> String {
        match parse_amount(input, token) {
            Err(ChainError::InvalidInput(m)) => m,
            other => panic!("{input:?}: {other:?}"),
        }
    }

    #[test]
    fn amounts_with_units() {
        let wei = |n: u128| U256::from(n);
        let eth = |s: &str| parse_amount(s, Token::Eth).unwrap();
        let lpt = |s: &str| parse_amount(s, Token::Lpt).unwrap();
        assert_eq!(eth("1.5"), wei(15 * 10u128.pow(17)));
        assert_eq!(eth("1.5 ETH"), eth("1.5"));
        assert_eq!(eth(" 1.5eth "), eth("1.5"));
        assert_eq!(eth("2 ether"), eth("2"));
        assert_eq!(eth("20 gwei"), wei(20_000_000_000));
        assert_eq!(eth("0.5gwei"), wei(500_000_000));
        assert_eq!(eth("1000 wei"), wei(1000));
        assert_eq!(eth("0.000000000000000001"), wei(1));
        assert_eq!(eth("1.0000000000000000000"), eth("1"), "zeros past the 18th decimal change nothing");
        assert_eq!(eth("0"), U256::ZERO, "zero is the caller's to refuse");
        assert_eq!(lpt("100 LPT"), lpt("100"));
        assert_eq!(lpt("7 wei"), wei(7));
        // The largest amount there is, and one more.
        assert_eq!(eth(&format!("{} wei", U256::MAX)), U256::MAX);
        assert!(err(&format!("{}0 wei", U256::MAX), Token::Eth).contains("too large"));
        assert!(err(&"9".repeat(78), Token::Eth).contains("too large"));
    }

    #[test]
    fn amounts_refused_with_a_reason() {
        for negative in ["-5", "-0.5", " -1 ETH", "-0"] {
            assert!(err(negative, Token::Eth).contains("negative"), "{negative:?}");
        }
        for sub_wei in ["0.0000000000000000001", "1.0000000000000000001", "0.1 wei", "1.5 wei"] {
            let m = err(sub_wei, Token::Eth);
            assert!(m.contains("wei") && (m.contains("decimals") || m.contains("fraction")), "{sub_wei:?}: {m}");
        }
        assert!(err("0.0000000001 gwei", Token::Eth).contains("10 decimals, more than the 9"));
        for unit in ["1 btc", "1e18", "1 LPT", "5 9"] {
            assert!(err(unit, Token::Eth).contains("is not a unit of ETH"), "{unit:?}");
        }
        assert!(err("1 ETH", Token::Lpt).contains("is not a unit of LPT"));
        assert!(err("1 gwei", Token::Lpt).contains("is not a unit of LPT"));
        for garbage in ["", "  ", ".", "abc", "+1", "1,5", "1_000", "1.2.3", ". ETH"] {
            let m = err(garbage, Token::Lpt);
            assert!(m.contains("is not an amount"), "{garbage:?}: {m}");
        }
    }

    #[test]
    fn positions() {
        let a = |b: u8| Address::repeat_byte(b);
        let pool = vec![(a(1), U256::from(100)), (a(2), U256::from(50)), (a(3), U256::from(10))];
        assert_eq!(insert_position(&pool, U256::from(200)), (Address::ZERO, a(1)));
        assert_eq!(insert_position(&pool, U256::from(60)), (a(1), a(2)));
        assert_eq!(insert_position(&pool, U256::from(50)), (a(2), a(3)));
        assert_eq!(insert_position(&pool, U256::from(1)), (a(3), Address::ZERO));
        assert_eq!(insert_position(&[], U256::from(1)), (Address::ZERO, Address::ZERO));
    }

    #[test]
    fn reward_math() {
        let r = expected_reward(U256::from(1_000_000u64), U256::from(1), U256::from(3), U256::ZERO);
        // perc = 333333333; mint = 1e6 * 333333333 / 1e9 = 333333
        assert_eq!(r, U256::from(333_333u64));
        let cut = U256::from(PRECISE_PERC_DIVISOR / 10);
        assert_eq!(expected_reward(U256::from(1000u64), U256::from(1), U256::from(1), cut), U256::from(900u64));
        assert_eq!(expected_reward(U256::from(1000u64), U256::from(1), U256::ZERO, cut), U256::ZERO);
    }
}
