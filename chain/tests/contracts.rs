//! Our devnet contracts (`chain/contracts`) on anvil, driven through the bindings generated from
//! the REAL Livepeer ABIs (`lp_chain::bindings`): the rules, events and revert strings the node
//! relies on (`docs/reference/contracts.md`). Each test starts its own anvil and deployment.

use std::path::{Path, PathBuf};
use std::process::Command;

use alloy::eips::BlockNumberOrTag;
use alloy::network::EthereumWallet;
use alloy::primitives::{Address, B256, Bytes, U256};
use alloy::providers::ext::AnvilApi;
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::rpc::types::TransactionReceipt;
use alloy::signers::SignerSync;
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::{Revert, SolEvent};
use lp_chain::anvil::{Anvil, AnvilOptions, DEV_KEYS};
use lp_chain::bindings::MTicketBrokerCore::Ticket;
use lp_chain::bindings::{
    BondingManager, Controller, LivepeerToken, Minter, RoundsManager, ServiceRegistry, TicketBroker,
};
use lp_chain::devnet::{self, DevnetDeployment, DevnetParams};
use lp_chain::pm;

/// 1 LPT or 1 ETH in wei.
const ONE: u128 = 1_000_000_000_000_000_000;
/// LPT minted to each dev account by the deployment.
const FUNDED_LPT: u128 = 10_000 * ONE;

fn wei(units: u128) -> U256 {
    U256::from(units)
}

/// `n / 10` ETH in wei.
fn tenth_eth(n: u128) -> U256 {
    U256::from(n * ONE / 10)
}

/// Sends a contract call, waits for it and asserts it succeeded; evaluates to the receipt.
macro_rules! send {
    ($call:expr) => {{
        let pending = $call.send().await.unwrap_or_else(|e| panic!("{} failed: {}", stringify!($call), reason(&e)));
        let receipt = pending.get_receipt().await.expect("receipt");
        assert!(receipt.status(), "{} reverted on chain", stringify!($call));
        receipt
    }};
}

/// Calls a view (eth_call at the latest block).
macro_rules! view {
    ($call:expr) => {
        $call.call().await.unwrap_or_else(|e| panic!("{} failed: {}", stringify!($call), reason(&e)))
    };
}

/// Asserts that sending the call reverts with exactly this reason.
macro_rules! assert_revert {
    ($call:expr, $reason:expr) => {{
        match $call.send().await {
            Ok(_) => panic!("{} did not revert (expected {:?})", stringify!($call), $reason),
            Err(e) => assert_eq!(reason(&e), $reason, "{}", stringify!($call)),
        }
    }};
}

/// The revert reason of a failed call, or a description of the failure.
fn reason(err: &alloy::contract::Error) -> String {
    match err.as_decoded_error::<Revert>() {
        Some(revert) => revert.reason,
        None => format!("(no revert reason) {err}"),
    }
}

/// The events of type `E` in a receipt, in order.
fn events<E: SolEvent>(receipt: &TransactionReceipt) -> Vec<E> {
    receipt.logs().iter().filter_map(|log| E::decode_log(&log.inner).ok().map(|l| l.data)).collect()
}

fn signer(i: usize) -> PrivateKeySigner {
    DEV_KEYS[i].parse().expect("dev key")
}

type Bm = BondingManager::BondingManagerInstance<DynProvider>;
type Tb = TicketBroker::TicketBrokerInstance<DynProvider>;
type Rm = RoundsManager::RoundsManagerInstance<DynProvider>;
type Lpt = LivepeerToken::LivepeerTokenInstance<DynProvider>;
type Sr = ServiceRegistry::ServiceRegistryInstance<DynProvider>;
type Mt = Minter::MinterInstance<DynProvider>;

/// One dev account with the contracts bound to a provider that signs with its key.
struct Account {
    addr: Address,
    key: PrivateKeySigner,
    provider: DynProvider,
    bm: Bm,
    tb: Tb,
    rm: Rm,
    lpt: Lpt,
    sr: Sr,
}

/// An anvil with our contracts deployed; dev accounts 0–3 hold [`FUNDED_LPT`] each.
struct Devnet {
    _anvil: Anvil,
    url: String,
    d: DevnetDeployment,
    params: DevnetParams,
}

impl Devnet {
    async fn start(params: DevnetParams) -> Devnet {
        let anvil = Anvil::spawn(AnvilOptions::default()).expect("anvil (run `make setup`)");
        let url = anvil.url();
        let fund: Vec<_> = (0..DEV_KEYS.len()).map(|i| (signer(i).address(), wei(FUNDED_LPT))).collect();
        let d = devnet::deploy(&url, DEV_KEYS[0], &params, &fund).await.expect("deploy");
        Devnet { _anvil: anvil, url, d, params }
    }

    /// Rounds of 50 blocks: room for many transactions in one round; mining past them is instant.
    async fn start_long_rounds() -> Devnet {
        Devnet::start(DevnetParams { round_length: 50, ..DevnetParams::default() }).await
    }

    fn account(&self, i: usize) -> Account {
        let key = signer(i);
        // Nonces are asked of the chain for every transaction: the cached nonce manager would skip
        // one whenever a send fails at the gas estimate (which is how the revert tests fail).
        let provider = ProviderBuilder::new()
            .disable_recommended_fillers()
            .with_gas_estimation()
            .with_simple_nonce_management()
            .fetch_chain_id()
            .wallet(EthereumWallet::from(key.clone()))
            .connect_http(self.url.parse().unwrap())
            .erased();
        Account {
            addr: key.address(),
            key,
            bm: BondingManager::new(self.d.contracts.bonding_manager, provider.clone()),
            tb: TicketBroker::new(self.d.contracts.ticket_broker, provider.clone()),
            rm: RoundsManager::new(self.d.contracts.rounds_manager, provider.clone()),
            lpt: LivepeerToken::new(self.d.contracts.livepeer_token, provider.clone()),
            sr: ServiceRegistry::new(self.d.contracts.service_registry, provider.clone()),
            provider,
        }
    }

    fn minter(&self) -> Mt {
        Minter::new(self.d.contracts.minter, self.account(0).provider)
    }

    async fn current_round(&self) -> u64 {
        view!(self.account(0).rm.currentRound()).to::<u64>()
    }

    async fn block_number(&self) -> u64 {
        self.account(0).provider.get_block_number().await.unwrap()
    }

    async fn mine(&self, blocks: u64) {
        if blocks > 0 {
            self.account(0).provider.anvil_mine(Some(blocks), None).await.unwrap();
        }
    }

    /// Mines up to the next round, initializes it and returns it. The initializing transaction
    /// is the round's first block, so the rest of the round is free for the test.
    async fn next_round(&self) -> u64 {
        let rm = self.account(0).rm;
        let start = view!(rm.currentRoundStartBlock()).to::<u64>();
        let next_start = start + self.params.round_length;
        // Automine: the next transaction goes into block `latest + 1`.
        let latest = self.block_number().await;
        self.mine((next_start - 1).saturating_sub(latest)).await;
        send!(rm.initializeRound());
        let round = self.current_round().await;
        assert!(view!(rm.currentRoundInitialized()));
        round
    }

    /// approve + bond(self) + transcoder(rewardCut 5%, feeShare 30%) + setServiceURI.
    /// Returns the bond's receipt.
    async fn register(&self, who: &Account, stake: U256) -> TransactionReceipt {
        send!(who.lpt.approve(self.d.contracts.bonding_manager, stake));
        let bond = send!(who.bm.bond(stake, who.addr));
        send!(who.bm.transcoder(U256::from(50_000), U256::from(300_000)));
        send!(who.sr.setServiceURI(service_uri(who.addr)));
        bond
    }
}

fn service_uri(addr: Address) -> String {
    format!("https://o-{addr}.devnet:8935")
}

/// `currentMintableTokens · (stake · 1e9 / total) / 1e9`, the Minter's reward formula.
fn expected_reward(mintable: U256, stake: U256, total: U256) -> U256 {
    let perc = U256::from(1_000_000_000u64);
    mintable * (stake * perc / total) / perc
}

// ---------------------------------------------------------------------------------------------
// Build artifacts and ABIs

#[test]
fn committed_artifacts_match_the_sources() {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("contracts/build.mjs");
    let out = Command::new("node")
        .arg(&script)
        .arg("--check")
        .output()
        .expect("node (run `make setup`) to run chain/contracts/build.mjs");
    assert!(
        out.status.success(),
        "chain/contracts/out is stale; run `npm run build --prefix chain/contracts`\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `type name(inputs) mutability -> outputs`, with tuples expanded and view/pure merged.
fn canonical_entries(abi: &serde_json::Value) -> Vec<String> {
    fn ty(p: &serde_json::Value) -> String {
        let t = p["type"].as_str().unwrap();
        let base = match t.strip_prefix("tuple") {
            Some(suffix) => {
                let parts: Vec<_> = p["components"].as_array().unwrap().iter().map(ty).collect();
                format!("({}){suffix}", parts.join(","))
            }
            None => t.to_string(),
        };
        if p["indexed"].as_bool() == Some(true) { format!("{base} indexed") } else { base }
    }
    let list = |v: &serde_json::Value| -> String {
        v.as_array().map(|a| a.iter().map(ty).collect::<Vec<_>>().join(",")).unwrap_or_default()
    };
    let mut entries: Vec<String> = abi
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| matches!(e["type"].as_str(), Some("function" | "event" | "error")))
        .map(|e| {
            let mutability = match e["stateMutability"].as_str() {
                Some("view" | "pure") => "read",
                Some(m) => m,
                None => "",
            };
            format!(
                "{} {}({}) {} -> {}",
                e["type"].as_str().unwrap(),
                e["name"].as_str().unwrap(),
                list(&e["inputs"]),
                mutability,
                list(&e["outputs"])
            )
        })
        .collect();
    entries.sort();
    entries
}

#[test]
fn abis_cover_the_real_contracts() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    // Entries of the real ABIs that our contracts do not have (see chain/contracts/README.md).
    let known_missing = [
        "error InvalidShortString()  -> ",  // OpenZeppelin ShortStrings internals
        "error StringTooLong(string)  -> ", // idem
    ];
    for name in
        ["BondingManager", "Controller", "LivepeerToken", "Minter", "RoundsManager", "ServiceRegistry", "TicketBroker"]
    {
        let read = |p: PathBuf| -> serde_json::Value {
            serde_json::from_str(&std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
                .unwrap()
        };
        let real = canonical_entries(&read(root.join(format!("abi/{name}.json"))));
        let ours = canonical_entries(&read(root.join(format!("contracts/out/{name}.json")))["abi"].clone());
        let missing: Vec<_> =
            real.iter().filter(|e| !ours.contains(e) && !known_missing.contains(&e.as_str())).collect();
        let extra: Vec<_> = ours.iter().filter(|e| !real.contains(e)).collect();
        assert!(missing.is_empty(), "{name}: not implemented: {missing:#?}");
        assert!(extra.is_empty(), "{name}: not in the real ABI: {extra:#?}");
    }
}

// ---------------------------------------------------------------------------------------------
// Deployer

#[tokio::test]
async fn deployment_is_wired_through_the_controller_and_detectable() {
    let net = Devnet::start(DevnetParams::default()).await;
    let a = net.account(0);
    let controller = Controller::new(net.d.contracts.controller, a.provider.clone());
    assert!(!view!(controller.paused()));
    assert_eq!(view!(controller.owner()), a.addr);
    for (name, address) in [
        ("BondingManager", net.d.contracts.bonding_manager),
        ("RoundsManager", net.d.contracts.rounds_manager),
        ("TicketBroker", net.d.contracts.ticket_broker),
        ("JobsManager", net.d.contracts.ticket_broker),
        ("ServiceRegistry", net.d.contracts.service_registry),
        ("Minter", net.d.contracts.minter),
        ("LivepeerToken", net.d.contracts.livepeer_token),
    ] {
        assert_eq!(view!(controller.getContract(lp_chain::contracts::contract_id(name))), address, "{name}");
    }
    assert_eq!(net.d.chain_id, 31337);
    assert_eq!(view!(a.bm.getTranscoderPoolMaxSize()), U256::from(net.params.num_active_transcoders));
    assert_eq!(view!(a.rm.roundLockAmount()), U256::from(net.params.round_lock_amount));
    assert_eq!(view!(a.lpt.balanceOf(net.account(3).addr)), wei(FUNDED_LPT));
    assert_eq!(view!(a.lpt.totalSupply()), wei(FUNDED_LPT * DEV_KEYS.len() as u128));

    assert!(devnet::is_deployed(&net.url, &net.d).await);
    let mut moved = net.d.clone();
    moved.contracts.bonding_manager = Address::repeat_byte(1);
    assert!(!devnet::is_deployed(&net.url, &moved).await);
    let other = Anvil::spawn(AnvilOptions::default()).unwrap();
    assert!(!devnet::is_deployed(&other.url(), &net.d).await);

    // Failures say which step failed, with the contract's revert reason.
    let bad = DevnetParams { num_active_transcoders: 0, ..DevnetParams::default() };
    let err = devnet::deploy(&other.url(), DEV_KEYS[0], &bad, &[]).await.unwrap_err();
    assert!(
        matches!(&err, devnet::DevnetError::Reverted { step, reason }
            if step == "BondingManager.setNumActiveTranscoders"
                && reason == "new max size must be greater than old max size"),
        "{err}"
    );
    let err = devnet::deploy(&other.url(), "0x1234", &DevnetParams::default(), &[]).await.unwrap_err();
    assert!(matches!(err, devnet::DevnetError::InvalidKey(_)), "{err}");
}

// ---------------------------------------------------------------------------------------------
// RoundsManager

#[tokio::test]
async fn rounds_advance_every_round_length_blocks_and_initialize_once() {
    let net = Devnet::start(DevnetParams::default()).await;
    let a = net.account(0);
    let len = net.params.round_length;
    assert_eq!(view!(a.rm.roundLength()), U256::from(len));

    // The deployment initialized the current round.
    let round = net.current_round().await;
    assert_eq!(round, net.block_number().await / len);
    assert!(view!(a.rm.currentRoundInitialized()));
    assert_eq!(view!(a.rm.lastInitializedRound()), U256::from(round));
    assert_ne!(view!(a.rm.blockHashForRound(U256::from(round))), B256::ZERO);
    assert_revert!(a.rm.initializeRound(), "round already initialized");

    // Up to the round's last block: same round, and locked for its last 10%.
    let start = view!(a.rm.currentRoundStartBlock()).to::<u64>();
    assert_eq!(start, round * len);
    net.mine(start + len - 1 - net.block_number().await).await;
    assert_eq!(net.current_round().await, round);
    assert!(view!(a.rm.currentRoundLocked()));

    // One more block: the next round, not initialized yet.
    net.mine(1).await;
    let next = round + 1;
    assert_eq!(net.current_round().await, next);
    assert_eq!(view!(a.rm.currentRoundStartBlock()), U256::from(next * len));
    assert!(!view!(a.rm.currentRoundInitialized()));
    assert!(!view!(a.rm.currentRoundLocked()));
    assert_revert!(a.bm.bond(wei(ONE), a.addr), "current round is not initialized");

    // A paused system refuses, and `initializeRound` checks the pause first.
    let controller = Controller::new(net.d.contracts.controller, a.provider.clone());
    send!(controller.pause());
    assert_revert!(a.rm.initializeRound(), "system is paused");
    send!(a.sr.setServiceURI("https://paused.example".to_string())); // no modifiers
    send!(controller.unpause());

    let receipt = send!(a.rm.initializeRound());
    let new_round = events::<RoundsManager::NewRound>(&receipt);
    assert_eq!(new_round.len(), 1);
    assert_eq!(new_round[0].round, U256::from(next));
    let parent = a
        .provider
        .get_block_by_number(BlockNumberOrTag::Number(receipt.block_number.unwrap() - 1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(new_round[0].blockHash, parent.header.hash);
    assert_eq!(view!(a.rm.blockHashForRound(U256::from(next))), parent.header.hash);
    assert_eq!(view!(a.rm.lastInitializedRound()), U256::from(next));
    assert!(view!(a.rm.currentRoundInitialized()));

    // The Minter set the round's mintable tokens: supply · inflation / 1e9.
    let minted = events::<Minter::SetCurrentRewardTokens>(&receipt);
    let supply = view!(a.lpt.totalSupply());
    let expected = supply * U256::from(net.params.inflation) / U256::from(1_000_000_000u64);
    assert_eq!(minted.len(), 1);
    assert_eq!(minted[0].currentMintableTokens, expected);
    assert_eq!(view!(net.minter().currentMintableTokens()), expected);

    assert_revert!(a.rm.initializeRound(), "round already initialized");
}

// ---------------------------------------------------------------------------------------------
// BondingManager

#[tokio::test]
async fn registration_joins_the_pool_and_activates_next_round() {
    let net = Devnet::start_long_rounds().await;
    let o = net.account(1);
    let stake = wei(1_000 * ONE);
    let round = net.next_round().await;

    assert_revert!(o.bm.bond(stake, o.addr), "ERC20: insufficient allowance");
    assert_revert!(o.bm.transcoder(U256::ZERO, U256::ZERO), "transcoder must be registered");

    send!(o.lpt.approve(net.d.contracts.bonding_manager, stake));
    let bond = send!(o.bm.bond(stake, o.addr));
    let activated = events::<BondingManager::TranscoderActivated>(&bond);
    assert_eq!(activated.len(), 1);
    assert_eq!((activated[0].transcoder, activated[0].activationRound), (o.addr, U256::from(round + 1)));
    let bonded = events::<BondingManager::Bond>(&bond);
    assert_eq!(bonded.len(), 1);
    assert_eq!((bonded[0].newDelegate, bonded[0].delegator, bonded[0].bondedAmount), (o.addr, o.addr, stake));
    assert_eq!(view!(o.lpt.balanceOf(net.d.contracts.minter)), stake);

    assert_revert!(o.bm.transcoder(U256::from(1_000_001), U256::ZERO), "invalid rewardCut percentage");
    assert_revert!(o.bm.transcoder(U256::ZERO, U256::from(1_000_001)), "invalid feeShare percentage");
    let update = send!(o.bm.transcoder(U256::from(50_000), U256::from(300_000)));
    let updated = events::<BondingManager::TranscoderUpdate>(&update);
    assert_eq!(updated.len(), 1);
    assert_eq!((updated[0].rewardCut, updated[0].feeShare), (U256::from(50_000), U256::from(300_000)));
    let uri = service_uri(o.addr);
    let set = send!(o.sr.setServiceURI(uri.clone()));
    assert_eq!(events::<ServiceRegistry::ServiceURIUpdate>(&set)[0].serviceURI, uri);
    assert_eq!(view!(o.sr.getServiceURI(o.addr)), uri);

    // In the pool (next round's set), not active yet.
    assert!(view!(o.bm.isRegisteredTranscoder(o.addr)));
    assert_eq!(view!(o.bm.transcoderStatus(o.addr)), 1);
    assert_eq!(view!(o.bm.delegatorStatus(o.addr)), 0); // Pending
    assert_eq!(view!(o.bm.getTranscoderPoolSize()), U256::from(1));
    assert_eq!(view!(o.bm.getFirstTranscoderInPool()), o.addr);
    assert_eq!(view!(o.bm.getNextTranscoderInPool(o.addr)), Address::ZERO);
    assert_eq!(view!(o.bm.transcoderTotalStake(o.addr)), stake);
    assert_eq!(view!(o.bm.nextRoundTotalActiveStake()), stake);
    assert_eq!(view!(o.bm.getTotalBonded()), U256::ZERO);
    assert!(!view!(o.bm.isActiveTranscoder(o.addr)));

    let next = net.next_round().await;
    assert_eq!(next, round + 1);
    assert!(view!(o.bm.isActiveTranscoder(o.addr)));
    assert_eq!(view!(o.bm.getTotalBonded()), stake);
    assert_eq!(view!(o.bm.delegatorStatus(o.addr)), 1); // Bonded
    let t = view!(o.bm.getTranscoder(o.addr));
    assert_eq!((t.rewardCut, t.feeShare), (U256::from(50_000), U256::from(300_000)));
    assert_eq!((t.activationRound, t.deactivationRound), (U256::from(next), U256::MAX));
    let del = view!(o.bm.getDelegator(o.addr));
    assert_eq!((del.bondedAmount, del.delegateAddress, del.delegatedAmount), (stake, o.addr, stake));
    assert_eq!(del.startRound, U256::from(next));

    // Active: the rates change only after reward() this round.
    assert_revert!(
        o.bm.transcoder(U256::ZERO, U256::ZERO),
        "caller can't be active or must have already called reward for the current round"
    );
}

#[tokio::test]
async fn reward_mints_the_stake_share_once_per_round() {
    let net = Devnet::start_long_rounds().await;
    let (o1, o2, nobody) = (net.account(1), net.account(2), net.account(3));
    net.next_round().await;
    net.register(&o1, wei(1_000 * ONE)).await;
    net.register(&o2, wei(3_000 * ONE)).await;
    let round = net.next_round().await;

    let minter = net.minter();
    let mintable = view!(minter.currentMintableTokens());
    assert_eq!(view!(minter.inflation()), U256::from(net.params.inflation));
    assert_eq!(mintable, view!(o1.lpt.totalSupply()) * U256::from(net.params.inflation) / U256::from(1_000_000_000u64));
    let total = view!(o1.bm.getTotalBonded());
    assert_eq!(total, wei(4_000 * ONE));

    let mut minted = U256::ZERO;
    for o in [&o1, &o2] {
        let stake = view!(o.bm.transcoderTotalStake(o.addr));
        let expected = expected_reward(mintable, stake, total);
        assert!(expected > U256::ZERO);
        let receipt = send!(o.bm.reward());
        let rewards = events::<BondingManager::Reward>(&receipt);
        assert_eq!(rewards.len(), 1);
        assert_eq!((rewards[0].transcoder, rewards[0].amount), (o.addr, expected));
        assert_eq!(view!(o.bm.transcoderTotalStake(o.addr)), stake + expected);
        assert_eq!(view!(o.bm.pendingStake(o.addr, U256::ZERO)), stake + expected);
        let t = view!(o.bm.getTranscoder(o.addr));
        assert_eq!((t.lastRewardRound, t.cumulativeRewards), (U256::from(round), expected));
        minted += expected;

        assert_revert!(o.bm.reward(), "caller has already called reward for the current round");
        // Having called reward, an active transcoder may change its rates.
        send!(o.bm.transcoder(U256::from(100_000), U256::from(500_000)));
    }
    assert_eq!(view!(minter.currentMintedTokens()), minted);
    assert_eq!(view!(o1.lpt.balanceOf(net.d.contracts.minter)), wei(4_000 * ONE) + minted);
    assert_eq!(view!(o1.bm.nextRoundTotalActiveStake()), total + minted);
    assert_revert!(nobody.bm.reward(), "caller must be an active transcoder");

    // Claiming moves the reward into the bonded amount; the next round's snapshot includes it.
    let stake1 = view!(o1.bm.pendingStake(o1.addr, U256::ZERO));
    let claim = send!(o1.bm.claimEarnings(U256::ZERO));
    assert_eq!(events::<BondingManager::EarningsClaimed>(&claim).len(), 1);
    assert_eq!(view!(o1.bm.getDelegator(o1.addr)).bondedAmount, stake1);
    net.next_round().await;
    assert_eq!(view!(o1.bm.getTotalBonded()), total + minted);
}

#[tokio::test]
async fn pool_keeps_the_largest_stakes_up_to_its_size() {
    let net =
        Devnet::start(DevnetParams { round_length: 50, num_active_transcoders: 2, ..DevnetParams::default() }).await;
    let (small, mid, big, tiny) = (net.account(1), net.account(2), net.account(3), net.account(0));
    let round = net.next_round().await;
    net.register(&small, wei(100 * ONE)).await;
    net.register(&mid, wei(200 * ONE)).await;
    assert_eq!(view!(small.bm.getTranscoderPoolMaxSize()), U256::from(2));
    assert_eq!(view!(small.bm.getTranscoderPoolSize()), U256::from(2));
    assert_eq!(view!(small.bm.getFirstTranscoderInPool()), mid.addr);
    assert_eq!(view!(small.bm.getNextTranscoderInPool(mid.addr)), small.addr);

    // A bigger stake evicts the smallest.
    let bond = net.register(&big, wei(300 * ONE)).await;
    let deactivated = events::<BondingManager::TranscoderDeactivated>(&bond);
    assert_eq!(deactivated.len(), 1);
    assert_eq!((deactivated[0].transcoder, deactivated[0].deactivationRound), (small.addr, U256::from(round + 1)));
    assert_eq!(events::<BondingManager::TranscoderActivated>(&bond)[0].transcoder, big.addr);
    let mut pool = Vec::new();
    let mut cursor = view!(small.bm.getFirstTranscoderInPool());
    while cursor != Address::ZERO {
        pool.push(cursor);
        cursor = view!(small.bm.getNextTranscoderInPool(cursor));
    }
    assert_eq!(pool, vec![big.addr, mid.addr]);
    assert_eq!(view!(small.bm.nextRoundTotalActiveStake()), wei(500 * ONE));

    // A smaller stake than the last member does not get in.
    let bond = net.register(&tiny, wei(50 * ONE)).await;
    assert!(events::<BondingManager::TranscoderActivated>(&bond).is_empty());
    assert!(view!(tiny.bm.isRegisteredTranscoder(tiny.addr)));
    assert_eq!(view!(small.bm.getTranscoderPoolSize()), U256::from(2));

    net.next_round().await;
    assert!(view!(big.bm.isActiveTranscoder(big.addr)));
    assert!(view!(big.bm.isActiveTranscoder(mid.addr)));
    assert!(!view!(big.bm.isActiveTranscoder(small.addr)));
    assert!(!view!(big.bm.isActiveTranscoder(tiny.addr)));
    assert_eq!(view!(big.bm.getTotalBonded()), wei(500 * ONE));
}

#[tokio::test]
async fn unbonded_stake_is_withdrawable_after_the_unbonding_period() {
    let net = Devnet::start_long_rounds().await;
    let o = net.account(1);
    let stake = wei(1_000 * ONE);
    net.next_round().await;
    net.register(&o, stake).await;
    assert_revert!(o.bm.unbond(stake), "caller must be bonded"); // Pending until next round
    let round = net.next_round().await;
    assert_eq!(view!(o.lpt.balanceOf(o.addr)), wei(FUNDED_LPT) - stake);

    // Partial unbond, then rebond the lock.
    let receipt = send!(o.bm.unbond(wei(ONE)));
    let unbond = events::<BondingManager::Unbond>(&receipt);
    assert_eq!(unbond[0].unbondingLockId, U256::ZERO);
    assert_eq!(unbond[0].withdrawRound, U256::from(round + net.params.unbonding_period));
    assert_eq!(view!(o.bm.transcoderTotalStake(o.addr)), stake - wei(ONE));
    let receipt = send!(o.bm.rebond(U256::ZERO));
    assert_eq!(events::<BondingManager::Rebond>(&receipt)[0].amount, wei(ONE));
    assert!(!view!(o.bm.isValidUnbondingLock(o.addr, U256::ZERO)));
    assert_eq!(view!(o.bm.transcoderTotalStake(o.addr)), stake);

    // Unbonding everything resigns from the pool (still active until the round ends).
    assert_revert!(o.bm.unbond(stake + U256::from(1)), "amount is greater than bonded amount");
    let receipt = send!(o.bm.unbond(stake));
    let deactivated = events::<BondingManager::TranscoderDeactivated>(&receipt);
    assert_eq!(deactivated[0].deactivationRound, U256::from(round + 1));
    assert_eq!(view!(o.bm.getTranscoderPoolSize()), U256::ZERO);
    assert!(!view!(o.bm.isRegisteredTranscoder(o.addr)));
    let lock = view!(o.bm.getDelegatorUnbondingLock(o.addr, U256::from(1)));
    let withdraw_round = round + net.params.unbonding_period;
    assert_eq!((lock.amount, lock.withdrawRound), (stake, U256::from(withdraw_round)));
    assert_eq!(view!(o.bm.unbondingPeriod()), net.params.unbonding_period);

    let too_early = "withdraw round must be before or equal to the current round";
    assert_revert!(o.bm.withdrawStake(U256::from(1)), too_early);
    net.next_round().await;
    assert!(!view!(o.bm.isActiveTranscoder(o.addr)));
    assert_revert!(o.bm.withdrawStake(U256::from(1)), too_early);
    assert_eq!(net.next_round().await, withdraw_round);

    let receipt = send!(o.bm.withdrawStake(U256::from(1)));
    let withdrawn = events::<BondingManager::WithdrawStake>(&receipt);
    assert_eq!((withdrawn[0].amount, withdrawn[0].withdrawRound), (stake, U256::from(withdraw_round)));
    assert_eq!(view!(o.lpt.balanceOf(o.addr)), wei(FUNDED_LPT));
    assert_revert!(o.bm.withdrawStake(U256::from(1)), "invalid unbonding lock ID");
}

// ---------------------------------------------------------------------------------------------
// TicketBroker

/// EIP-191 personal_sign over the ticket hash, 65 bytes r ‖ s ‖ v (v = 27/28).
fn sign(key: &PrivateKeySigner, t: &Ticket) -> Bytes {
    pm::sign(key, pm::ticket_hash(t)).unwrap().to_vec().into()
}

/// A winning ticket from `sender` to `recipient` created in the current round.
async fn winning_ticket(net: &Devnet, sender: Address, recipient: Address, face_value: U256, nonce: u64) -> Ticket {
    let rm = net.account(0).rm;
    let round = net.current_round().await;
    let hash = view!(rm.blockHashForRound(U256::from(round)));
    Ticket {
        recipient,
        sender,
        faceValue: face_value,
        winProb: U256::MAX,
        senderNonce: U256::from(nonce),
        recipientRandHash: pm::recipient_rand_hash(U256::from(RAND)),
        auxData: pm::aux_data(round, hash),
    }
}

const RAND: u64 = 0x1234_5678_90ab_cdef;

/// A devnet with an active transcoder (account 1, 1000 LPT) and a sender (account 2).
async fn with_active_transcoder() -> (Devnet, Account, Account) {
    let net = Devnet::start_long_rounds().await;
    let (o, s) = (net.account(1), net.account(2));
    net.next_round().await;
    net.register(&o, wei(1_000 * ONE)).await;
    net.next_round().await;
    assert!(view!(o.bm.isActiveTranscoder(o.addr)));
    (net, o, s)
}

#[tokio::test]
async fn funding_requires_msg_value_to_match() {
    let net = Devnet::start_long_rounds().await;
    let s = net.account(2);
    let (deposit, reserve) = (tenth_eth(10), tenth_eth(5));
    assert_revert!(
        s.tb.fundDepositAndReserve(deposit, reserve).value(deposit),
        "msg.value does not equal sum of deposit amount and reserve amount"
    );
    let receipt = send!(s.tb.fundDepositAndReserve(deposit, reserve).value(deposit + reserve));
    let reserve_funded = events::<TicketBroker::ReserveFunded>(&receipt);
    let deposit_funded = events::<TicketBroker::DepositFunded>(&receipt);
    assert_eq!((reserve_funded[0].reserveHolder, reserve_funded[0].amount), (s.addr, reserve));
    assert_eq!((deposit_funded[0].sender, deposit_funded[0].amount), (s.addr, deposit));
    // ReserveFunded, then DepositFunded.
    let topics: Vec<B256> = receipt.logs().iter().map(|l| l.topics()[0]).collect();
    assert_eq!(topics, vec![TicketBroker::ReserveFunded::SIGNATURE_HASH, TicketBroker::DepositFunded::SIGNATURE_HASH]);

    send!(s.tb.fundDeposit().value(tenth_eth(1)));
    send!(s.tb.fundReserve().value(tenth_eth(1)));
    let other = net.account(3);
    send!(other.tb.fundDepositAndReserveFor(s.addr, tenth_eth(1), U256::ZERO).value(tenth_eth(1)));

    let info = view!(s.tb.getSenderInfo(s.addr));
    assert_eq!((info.sender.deposit, info.sender.withdrawRound), (tenth_eth(12), U256::ZERO));
    assert_eq!((info.reserve.fundsRemaining, info.reserve.claimedInCurrentRound), (tenth_eth(6), U256::ZERO));
    // The Minter holds the ETH, as on the real network.
    assert_eq!(s.provider.get_balance(net.d.contracts.minter).await.unwrap(), tenth_eth(18));
    assert_eq!(s.provider.get_balance(net.d.contracts.ticket_broker).await.unwrap(), U256::ZERO);
}

#[tokio::test]
async fn winning_ticket_pays_fees_that_the_transcoder_withdraws() {
    let (net, o, s) = with_active_transcoder().await;
    send!(s.tb.fundDepositAndReserve(wei(ONE), wei(ONE)).value(wei(2 * ONE)));
    let face_value = tenth_eth(1);
    let ticket = winning_ticket(&net, s.addr, o.addr, face_value, 1).await;
    let sig = sign(&s.key, &ticket);
    let hash = view!(o.tb.getTicketHash(ticket.clone()));
    assert_eq!(hash, pm::ticket_hash(&ticket));

    let receipt = send!(o.tb.redeemWinningTicket(ticket.clone(), sig.clone(), U256::from(RAND)));
    let transfer = events::<TicketBroker::WinningTicketTransfer>(&receipt);
    assert_eq!((transfer[0].sender, transfer[0].recipient, transfer[0].amount), (s.addr, o.addr, face_value));
    let redeemed = events::<TicketBroker::WinningTicketRedeemed>(&receipt);
    assert_eq!(redeemed[0].recipientRand, U256::from(RAND));
    assert_eq!(redeemed[0].auxData, ticket.auxData);
    assert!(view!(o.tb.usedTickets(hash)));

    let info = view!(o.tb.getSenderInfo(s.addr));
    assert_eq!(info.sender.deposit, wei(ONE) - face_value);
    assert_eq!(info.reserve.fundsRemaining, wei(ONE));
    assert_eq!(view!(o.bm.pendingFees(o.addr, U256::ZERO)), face_value);
    let t = view!(o.bm.getTranscoder(o.addr));
    assert_eq!((t.cumulativeFees, t.lastFeeRound), (face_value, U256::from(net.current_round().await)));

    assert_revert!(o.tb.redeemWinningTicket(ticket, sig, U256::from(RAND)), "ticket is used");

    // Fees are paid from the Minter's ETH.
    let payee = Address::repeat_byte(0x42);
    assert_revert!(o.bm.withdrawFees(payee, face_value + U256::from(1)), "insufficient fees to withdraw");
    assert_revert!(o.bm.withdrawFees(Address::ZERO, face_value), "invalid recipient");
    let receipt = send!(o.bm.withdrawFees(payee, face_value));
    let withdrawn = events::<BondingManager::WithdrawFees>(&receipt);
    assert_eq!((withdrawn[0].delegator, withdrawn[0].recipient, withdrawn[0].amount), (o.addr, payee, face_value));
    assert_eq!(o.provider.get_balance(payee).await.unwrap(), face_value);
    assert_eq!(view!(o.bm.pendingFees(o.addr, U256::ZERO)), U256::ZERO);
    assert_eq!(o.provider.get_balance(net.d.contracts.minter).await.unwrap(), wei(2 * ONE) - face_value);
}

#[tokio::test]
async fn invalid_tickets_revert_in_the_real_check_order() {
    let (net, o, s) = with_active_transcoder().await;
    send!(s.tb.fundDeposit().value(wei(ONE)));
    let rand = U256::from(RAND);
    let fresh = |nonce| winning_ticket(&net, s.addr, o.addr, tenth_eth(1), nonce);

    let mut t = fresh(1).await;
    t.recipient = Address::ZERO;
    assert_revert!(o.tb.redeemWinningTicket(t.clone(), sign(&s.key, &t), rand), "ticket recipient is null address");
    let mut t = fresh(1).await;
    t.sender = Address::ZERO;
    assert_revert!(o.tb.redeemWinningTicket(t.clone(), sign(&s.key, &t), rand), "ticket sender is null address");

    let mut t = fresh(1).await;
    t.auxData = t.auxData[..63].to_vec().into();
    assert_revert!(
        o.tb.redeemWinningTicket(t.clone(), sign(&s.key, &t), rand),
        "invalid length for ticket auxData: must be 64 bytes"
    );
    let round = net.current_round().await;
    let mut t = fresh(1).await;
    t.auxData = pm::aux_data(round + 1, B256::repeat_byte(1));
    assert_revert!(
        o.tb.redeemWinningTicket(t.clone(), sign(&s.key, &t), rand),
        "ticket creationRound does not have a block hash"
    );
    let mut t = fresh(1).await;
    t.auxData = pm::aux_data(round, B256::repeat_byte(1));
    assert_revert!(
        o.tb.redeemWinningTicket(t.clone(), sign(&s.key, &t), rand),
        "ticket creationRoundBlockHash invalid for creationRound"
    );

    let t = fresh(1).await;
    let sig = sign(&s.key, &t);
    assert_revert!(
        o.tb.redeemWinningTicket(t.clone(), sig.clone(), rand + U256::from(1)),
        "recipientRand does not match recipientRandHash"
    );
    assert_revert!(o.tb.redeemWinningTicket(t.clone(), sig[..64].to_vec().into(), rand), "INVALID_SIGNATURE_LENGTH");
    let other = net.account(3);
    assert_revert!(
        o.tb.redeemWinningTicket(t.clone(), sign(&other.key, &t), rand),
        "invalid signature over ticket hash"
    );
    // Signed over the raw hash instead of the EIP-191 message.
    let raw: Bytes = s.key.sign_hash_sync(&pm::ticket_hash(&t)).unwrap().as_bytes().to_vec().into();
    assert_revert!(o.tb.redeemWinningTicket(t.clone(), raw, rand), "invalid signature over ticket hash");
    // The same signature with s' = n − s (and the other v) is refused.
    let n = U256::from_str_radix("FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141", 16).unwrap();
    let s_value = U256::from_be_slice(&sig[32..64]);
    let mut high_s = sig.to_vec();
    high_s[32..64].copy_from_slice(&(n - s_value).to_be_bytes::<32>());
    high_s[64] = if sig[64] == 27 { 28 } else { 27 };
    assert_revert!(o.tb.redeemWinningTicket(t.clone(), high_s.into(), rand), "ECDSA: invalid signature 's' value");
    let mut bad_v = sig.to_vec();
    bad_v[64] -= 27;
    assert_revert!(o.tb.redeemWinningTicket(t.clone(), bad_v.into(), rand), "ECDSA: invalid signature 'v' value");

    let mut t = fresh(2).await;
    t.winProb = U256::ZERO;
    assert_revert!(o.tb.redeemWinningTicket(t.clone(), sign(&s.key, &t), rand), "ticket did not win");

    // An unfunded sender, and a recipient that is not a registered transcoder.
    let broke = net.account(3);
    let t = winning_ticket(&net, broke.addr, o.addr, tenth_eth(1), 1).await;
    assert_revert!(
        o.tb.redeemWinningTicket(t.clone(), sign(&broke.key, &t), rand),
        "sender deposit and reserve are zero"
    );
    let t = winning_ticket(&net, s.addr, other.addr, tenth_eth(1), 3).await;
    assert_revert!(o.tb.redeemWinningTicket(t.clone(), sign(&s.key, &t), rand), "transcoder must be registered");

    // A batch skips the tickets that fail. Its gas must be set: an estimate is only enough for
    // the outer call, since the inner calls' failures do not revert it (as with the real one).
    let good = fresh(4).await;
    let used = fresh(1).await;
    send!(o.tb.redeemWinningTicket(used.clone(), sign(&s.key, &used), rand));
    send!(
        o.tb.batchRedeemWinningTickets(
            vec![used.clone(), good.clone()],
            vec![sign(&s.key, &used), sign(&s.key, &good)],
            vec![rand, rand]
        )
        .gas(1_000_000)
    );
    assert!(view!(o.tb.usedTickets(pm::ticket_hash(&good))));
    assert_eq!(view!(o.bm.pendingFees(o.addr, U256::ZERO)), tenth_eth(2));

    // Valid for `ticketValidityPeriod` rounds after its creation round.
    let old = fresh(5).await;
    net.next_round().await;
    assert_eq!(view!(o.tb.ticketValidityPeriod()), U256::from(net.params.ticket_validity_period));
    net.next_round().await;
    assert_revert!(o.tb.redeemWinningTicket(old.clone(), sign(&s.key, &old), rand), "ticket is expired");
}

#[tokio::test]
async fn reserve_pays_active_transcoders_their_share_when_the_deposit_is_short() {
    let net = Devnet::start_long_rounds().await;
    let (o1, o2, s) = (net.account(1), net.account(3), net.account(2));
    net.next_round().await;
    net.register(&o1, wei(1_000 * ONE)).await;
    net.register(&o2, wei(1_000 * ONE)).await;
    net.next_round().await;
    send!(s.tb.fundDepositAndReserve(tenth_eth(1), wei(ONE)).value(tenth_eth(11)));

    // The reserve is split over the 2 pool members; non-active addresses get nothing.
    assert_eq!(view!(s.tb.claimableReserve(s.addr, o1.addr)), tenth_eth(5));
    assert_eq!(view!(s.tb.claimableReserve(s.addr, Address::repeat_byte(9))), U256::ZERO);

    // faceValue 0.8: the whole deposit (0.1) plus o1's share of the reserve (0.5).
    let t = winning_ticket(&net, s.addr, o1.addr, tenth_eth(8), 1).await;
    let receipt = send!(o1.tb.redeemWinningTicket(t.clone(), sign(&s.key, &t), U256::from(RAND)));
    let claimed = events::<TicketBroker::ReserveClaimed>(&receipt);
    assert_eq!((claimed[0].reserveHolder, claimed[0].claimant, claimed[0].amount), (s.addr, o1.addr, tenth_eth(5)));
    assert_eq!(events::<TicketBroker::WinningTicketTransfer>(&receipt)[0].amount, tenth_eth(6));
    let info = view!(s.tb.getSenderInfo(s.addr));
    assert_eq!(info.sender.deposit, U256::ZERO);
    assert_eq!((info.reserve.fundsRemaining, info.reserve.claimedInCurrentRound), (tenth_eth(5), tenth_eth(5)));
    assert_eq!(view!(s.tb.claimedReserve(s.addr, o1.addr)), tenth_eth(5));
    assert_eq!(view!(s.tb.claimableReserve(s.addr, o1.addr)), U256::ZERO);
    assert_eq!(view!(o1.bm.pendingFees(o1.addr, U256::ZERO)), tenth_eth(6));

    // o2's share is still computed from the reserve at round start.
    assert_eq!(view!(s.tb.claimableReserve(s.addr, o2.addr)), tenth_eth(5));
    let t = winning_ticket(&net, s.addr, o2.addr, wei(ONE), 2).await;
    let receipt = send!(o2.tb.redeemWinningTicket(t.clone(), sign(&s.key, &t), U256::from(RAND)));
    assert_eq!(events::<TicketBroker::WinningTicketTransfer>(&receipt)[0].amount, tenth_eth(5));
    let t = winning_ticket(&net, s.addr, o2.addr, wei(ONE), 3).await;
    assert_revert!(
        o2.tb.redeemWinningTicket(t.clone(), sign(&s.key, &t), U256::from(RAND)),
        "sender deposit and reserve are zero"
    );
}

#[tokio::test]
async fn unlock_then_withdraw_after_the_unlock_period() {
    let net = Devnet::start_long_rounds().await;
    let s = net.account(2);
    let round = net.next_round().await;
    assert_revert!(s.tb.unlock(), "sender deposit and reserve are zero");
    send!(s.tb.fundDepositAndReserve(wei(ONE), tenth_eth(5)).value(tenth_eth(15)));

    let receipt = send!(s.tb.unlock());
    let unlock = events::<TicketBroker::Unlock>(&receipt);
    let withdraw_round = round + net.params.unlock_period;
    assert_eq!((unlock[0].startRound, unlock[0].endRound), (U256::from(round), U256::from(withdraw_round)));
    assert!(view!(s.tb.isUnlockInProgress(s.addr)));
    assert_revert!(s.tb.unlock(), "unlock already initiated");
    assert_revert!(s.tb.withdraw(), "account is locked");

    // Cancelling, or funding again, ends the unlock.
    assert_eq!(events::<TicketBroker::UnlockCancelled>(&send!(s.tb.cancelUnlock())).len(), 1);
    assert_revert!(s.tb.cancelUnlock(), "no unlock request in progress");
    assert_revert!(s.tb.withdraw(), "no unlock request in progress");
    send!(s.tb.unlock());
    let receipt = send!(s.tb.fundDeposit().value(tenth_eth(1)));
    assert_eq!(events::<TicketBroker::UnlockCancelled>(&receipt).len(), 1);
    assert!(!view!(s.tb.isUnlockInProgress(s.addr)));
    send!(s.tb.unlock());

    net.next_round().await;
    assert_revert!(s.tb.withdraw(), "account is locked");
    assert_eq!(net.next_round().await, withdraw_round);

    // From the withdraw round on, its tickets are no longer redeemable.
    let t = winning_ticket(&net, s.addr, Address::repeat_byte(7), tenth_eth(1), 1).await;
    assert_revert!(s.tb.redeemWinningTicket(t.clone(), sign(&s.key, &t), U256::from(RAND)), "sender is unlocked");

    let before = s.provider.get_balance(s.addr).await.unwrap();
    let receipt = send!(s.tb.withdraw());
    let withdrawal = events::<TicketBroker::Withdrawal>(&receipt);
    assert_eq!((withdrawal[0].deposit, withdrawal[0].reserve), (tenth_eth(11), tenth_eth(5)));
    let gas = U256::from(receipt.gas_used) * U256::from(receipt.effective_gas_price);
    assert_eq!(s.provider.get_balance(s.addr).await.unwrap(), before + tenth_eth(16) - gas);
    let info = view!(s.tb.getSenderInfo(s.addr));
    assert_eq!((info.sender.deposit, info.reserve.fundsRemaining), (U256::ZERO, U256::ZERO));
    assert_eq!(view!(s.tb.unlockPeriod()), U256::from(net.params.unlock_period));
}

/// The broker's own `getTicketHash` agrees with `lp_chain::pm` on every vector (the vectors
/// themselves are checked off-chain in `tests/pm.rs`).
#[tokio::test]
async fn ticket_hashes_match_the_vectors_on_chain() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors");
    let read = |name: &str| -> serde_json::Value {
        let path = dir.join(name);
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        serde_json::from_str(&text).unwrap()
    };
    let str_of = |v: &serde_json::Value, k: &str| v[k].as_str().unwrap_or_else(|| panic!("{k}")).to_string();
    let to_ticket = |v: &serde_json::Value| Ticket {
        recipient: str_of(v, "recipient").parse().unwrap(),
        sender: str_of(v, "sender").parse().unwrap(),
        faceValue: str_of(v, "faceValue").parse().unwrap(),
        winProb: str_of(v, "winProb").parse().unwrap(),
        senderNonce: str_of(v, "senderNonce").parse().unwrap(),
        recipientRandHash: str_of(v, "recipientRandHash").parse().unwrap(),
        auxData: str_of(v, "auxData").parse().unwrap(),
    };

    let net = Devnet::start(DevnetParams::default()).await;
    let tb = net.account(0).tb;
    let pm_vectors = read("pm-vectors.json");
    let mut tickets: Vec<Ticket> = pm_vectors["ticketHash"].as_array().unwrap().iter().map(to_ticket).collect();
    tickets.push(to_ticket(&read("real-contract-ticket.json")["ticket"]));
    for t in tickets {
        assert_eq!(view!(tb.getTicketHash(t.clone())), pm::ticket_hash(&t), "sender nonce {}", t.senderNonce);
    }
}
