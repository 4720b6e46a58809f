//! ChainClient against our devnet contracts on a real anvil: address resolution, registration
//! and activation, the pool, reward (with hints and its revert reason; hints after missed rounds
//! and after a stake change in the reward's round), unbonding, and the TicketBroker
//! deposit/reserve.

use std::time::Duration;

use alloy::primitives::{Address, U256};
use alloy::providers::DynProvider;
use alloy::providers::ext::AnvilApi;
use alloy::signers::local::PrivateKeySigner;
use lp_chain::anvil::{Anvil, AnvilOptions, DEV_KEYS};
use lp_chain::bindings::{BondingManager, Minter};
use lp_chain::client::{ChainClient, Token, expected_reward, http_provider, parse_amount};
use lp_chain::devnet::{self, DevnetDeployment, DevnetParams};
use lp_chain::error::ChainError;
use lp_chain::tx::TxPolicy;

struct Net {
    anvil: Anvil,
    deployment: DevnetDeployment,
    provider: DynProvider,
}

fn lpt(s: &str) -> U256 {
    parse_amount(s, Token::Lpt).unwrap()
}

fn signer(i: usize) -> PrivateKeySigner {
    DEV_KEYS[i].parse().unwrap()
}

fn policy() -> TxPolicy {
    TxPolicy { receipt_poll_interval: Duration::from_millis(50), ..TxPolicy::default() }
}

/// Rounds long enough that a test's transactions (one block each with automine) fit in one
/// round, outside its locked tail; tests start each phase at a fresh round ([`next_round`]).
fn params() -> DevnetParams {
    DevnetParams { round_length: 50, ..DevnetParams::default() }
}

/// anvil with our contracts; dev accounts 1 and 2 hold 1000 LPT each.
async fn devnet() -> Net {
    devnet_with(&params(), &[1, 2]).await
}

/// anvil with our contracts deployed with `params`; each dev account in `funded` holds 1000 LPT.
async fn devnet_with(params: &DevnetParams, funded: &[usize]) -> Net {
    let anvil = Anvil::spawn(AnvilOptions::default()).expect("anvil");
    let fund: Vec<_> = funded.iter().map(|i| (signer(*i).address(), lpt("1000"))).collect();
    let deployment = devnet::deploy(&anvil.url(), DEV_KEYS[0], params, &fund).await.expect("devnet deploy");
    let provider = http_provider(&anvil.url()).unwrap();
    Net { anvil, deployment, provider }
}

async fn client(net: &Net, i: usize) -> ChainClient {
    ChainClient::connect(&net.anvil.url(), net.deployment.contracts.controller, Some(signer(i)), policy())
        .await
        .unwrap()
}

/// Mine to the next round and initialize it.
async fn next_round(net: &Net, c: &ChainClient) -> u64 {
    let start = c.current_round().await.unwrap();
    loop {
        let now = c.block_number().await.unwrap();
        let end = start.start_block + start.length;
        net.provider.anvil_mine(Some(end.saturating_sub(now).max(1)), None).await.unwrap();
        if c.current_round().await.unwrap().round > start.round {
            break;
        }
    }
    c.initialize_round().await.unwrap();
    let r = c.current_round().await.unwrap();
    assert!(r.initialized);
    r.round
}

fn expect_revert(err: ChainError, reason: &str) {
    match &err {
        ChainError::Reverted { reason: r } => assert_eq!(r, reason),
        other => panic!("expected revert {reason:?}, got {other:?}"),
    }
    assert_eq!(err.to_string(), format!("reverted: {reason}"));
}

/// Anvils started at once each get a port of their own (the kernel's pick as anvil binds, read
/// back), and each URL reaches its own anvil: the chain ids differ.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anvils_started_at_once_each_listen_on_their_own_port() {
    use alloy::providers::Provider;
    let spawned: Vec<_> = (0..4u64)
        .map(|i| {
            std::thread::spawn(move || Anvil::spawn(AnvilOptions { chain_id: Some(1000 + i), ..Default::default() }))
        })
        .collect();
    let anvils: Vec<Anvil> = spawned.into_iter().map(|t| t.join().unwrap().expect("anvil")).collect();
    let mut ports: Vec<u16> = anvils.iter().map(|a| a.port()).collect();
    ports.sort();
    ports.dedup();
    assert_eq!(ports.len(), 4, "{ports:?}");
    assert!(ports.iter().all(|p| *p != 0));
    for (i, anvil) in anvils.iter().enumerate() {
        let chain_id = http_provider(&anvil.url()).unwrap().get_chain_id().await.unwrap();
        assert_eq!(chain_id, 1000 + i as u64, "{}", anvil.url());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resolves_every_contract_through_the_controller() {
    let net = devnet().await;
    let c = client(&net, 1).await;
    let d = &net.deployment;
    let k = c.contracts();
    assert_eq!(k.controller, d.contracts.controller);
    assert_eq!(k.bonding_manager, d.contracts.bonding_manager);
    assert_eq!(k.rounds_manager, d.contracts.rounds_manager);
    assert_eq!(k.ticket_broker, d.contracts.ticket_broker);
    assert_eq!(k.service_registry, d.contracts.service_registry);
    assert_eq!(k.minter, d.contracts.minter);
    assert_eq!(k.livepeer_token, d.contracts.livepeer_token);
    assert_eq!(c.chain_id(), 31337);
    assert_eq!(c.address(), Some(signer(1).address()));

    // The deployment starts with its round initialized.
    let round = c.current_round().await.unwrap();
    assert!(round.initialized);
    assert_eq!(round.length, params().round_length);

    // A Controller address without code.
    let err = ChainClient::connect(&net.anvil.url(), Address::repeat_byte(9), None, policy()).await.unwrap_err();
    assert!(matches!(&err, ChainError::NotDeployed(n) if n == "Controller"), "{err:?}");
    // A non-Controller contract: getContract reverts or answers nothing usable.
    assert!(ChainClient::connect(&net.anvil.url(), d.contracts.livepeer_token, None, policy()).await.is_err());

    // Read-only client: reads work, writes say there is no account.
    let ro = ChainClient::connect(&net.anvil.url(), d.contracts.controller, None, policy()).await.unwrap();
    assert_eq!(ro.address(), None);
    let st = ro.status(signer(2).address()).await.unwrap();
    assert_eq!(st.lpt_balance, lpt("1000"));
    assert!(matches!(ro.reward().await, Err(ChainError::NoAccount)));

    // Credentials in the URL never show up in errors or Debug output.
    let err = ChainClient::connect("http://user:hunter2@127.0.0.1:1/v2/APIKEY", d.contracts.controller, None, policy())
        .await
        .unwrap_err();
    let msg = format!("{err} {err:?}");
    assert!(!msg.contains("hunter2") && !msg.contains("APIKEY"), "{msg}");
    assert!(!format!("{c:?}").contains("hunter2"));
    assert!(matches!(
        ChainClient::connect("not a url", d.contracts.controller, None, policy()).await,
        Err(ChainError::InvalidInput(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_activate_pool_and_reward() {
    let net = devnet().await;
    let o1 = client(&net, 1).await;
    let o2 = client(&net, 2).await;
    let (a1, a2) = (signer(1).address(), signer(2).address());

    next_round(&net, &o1).await;
    let before = o1.status(a1).await.unwrap();
    assert!(!before.registered && !before.active);

    let receipts = o1.register(lpt("100"), 100_000, 500_000, "https://127.0.0.1:8935").await.unwrap();
    assert_eq!(receipts.len(), 3, "bond (after its approve), transcoder, setServiceURI");
    o2.register(lpt("150"), 50_000, 250_000, "https://127.0.0.1:9935").await.unwrap();
    // Bad parameters are refused before anything is sent.
    assert!(matches!(o1.register(U256::ZERO, 1_000_001, 0, "x").await, Err(ChainError::InvalidInput(_))));

    // Registered, in the pool, but active only from the next round.
    let round = o1.current_round().await.unwrap().round;
    let st = o1.status(a1).await.unwrap();
    assert!(st.registered && !st.active, "{st:?}");
    assert_eq!(st.activation_round, round + 1);
    assert_eq!((st.reward_cut, st.fee_share), (100_000, 500_000));
    assert_eq!(st.service_uri, "https://127.0.0.1:8935");
    assert_eq!(st.total_stake, lpt("100"));
    assert_eq!(st.bonded_amount, lpt("100"));
    assert_eq!(st.delegate, a1);
    assert_eq!(st.lpt_balance, lpt("900"));
    let pool = o1.pool().await.unwrap();
    assert_eq!(pool.iter().map(|m| m.address).collect::<Vec<_>>(), vec![a2, a1], "descending stake");
    assert!(pool.iter().all(|m| !m.active));
    assert_eq!(pool[1].service_uri, "https://127.0.0.1:8935");
    assert_eq!(pool[1].stake, lpt("100"));

    // Reward is refused while not active.
    expect_revert(o1.reward().await.unwrap_err(), "caller must be an active transcoder");

    next_round(&net, &o1).await;
    let st = o1.status(a1).await.unwrap();
    assert!(st.active, "{st:?}");
    assert!(o1.pool().await.unwrap().iter().all(|m| m.active));

    // Reward: the stake grows by what the Minter and BondingManager views predict.
    let round = o1.current_round().await.unwrap().round;
    let bm = BondingManager::new(net.deployment.contracts.bonding_manager, o1.provider());
    let minter = Minter::new(net.deployment.contracts.minter, o1.provider());
    let mintable = minter.currentMintableTokens().call().await.unwrap();
    let pool_stake = bm.getTranscoderEarningsPoolForRound(a1, U256::from(round)).call().await.unwrap().totalStake;
    let total = bm.getTotalBonded().call().await.unwrap();
    let cut = bm.treasuryRewardCutRate().call().await.unwrap();
    let expected = expected_reward(mintable, pool_stake, total, cut);
    assert!(!expected.is_zero());
    assert_eq!(pool_stake, lpt("100"));
    assert_eq!(total, lpt("250"));
    // o1 stays below o2 after its reward: the hint puts it right after o2.
    assert_eq!(o1.reward_hints(a1).await.unwrap(), (a2, Address::ZERO));
    let stake_before = o1.status(a1).await.unwrap().total_stake;
    o1.reward().await.unwrap();
    let st = o1.status(a1).await.unwrap();
    assert_eq!(st.total_stake - stake_before, expected);
    assert_eq!(st.last_reward_round, round);
    assert!(st.pending_stake > lpt("100"));

    // Twice in a round: the contract's reason.
    expect_revert(o1.reward().await.unwrap_err(), "caller has already called reward for the current round");

    // o2 (first in the pool) rewards too: hints put it at the head.
    assert_eq!(o2.reward_hints(a2).await.unwrap(), (Address::ZERO, a1));
    o2.reward().await.unwrap();
    assert_eq!(o1.pool().await.unwrap().iter().map(|m| m.address).collect::<Vec<_>>(), vec![a2, a1]);

    // No fees earned: withdrawing some is refused with the contract's reason.
    expect_revert(o1.withdraw_fees(a1, U256::from(1)).await.unwrap_err(), "insufficient fees to withdraw");
}

/// `addr`'s neighbours in the pool as it is now: what a correct `rewardWithHint` hint names.
async fn neighbours(c: &ChainClient, addr: Address) -> (Address, Address) {
    let pool: Vec<Address> = c.pool().await.unwrap().into_iter().map(|m| m.address).collect();
    let i = pool.iter().position(|a| *a == addr).expect("in the pool");
    let prev = if i == 0 { Address::ZERO } else { pool[i - 1] };
    (prev, pool.get(i + 1).copied().unwrap_or(Address::ZERO))
}

/// The stake in `addr`'s earnings pool for `round`.
async fn pool_stake(net: &Net, addr: Address, round: u64) -> U256 {
    let bm = BondingManager::new(net.deployment.contracts.bonding_manager, &net.provider);
    bm.getTranscoderEarningsPoolForRound(addr, U256::from(round)).call().await.unwrap().totalStake
}

/// `c` calls reward; the hints it computed beforehand must name its neighbours in the pool after
/// the reward, and its stake must grow by the mint on `pool_stake` (the stake the contract
/// rewards this round). Returns the hints.
async fn reward_checked(net: &Net, c: &ChainClient, pool_stake: U256) -> (Address, Address) {
    let me = c.address().unwrap();
    let bm = BondingManager::new(net.deployment.contracts.bonding_manager, c.provider());
    let minter = Minter::new(net.deployment.contracts.minter, c.provider());
    let mintable = minter.currentMintableTokens().call().await.unwrap();
    let total = bm.getTotalBonded().call().await.unwrap();
    let expected = expected_reward(mintable, pool_stake, total, U256::ZERO);
    let hints = c.reward_hints(me).await.unwrap();
    let before = c.status(me).await.unwrap().total_stake;
    c.reward().await.unwrap();
    assert_eq!(c.status(me).await.unwrap().total_stake - before, expected, "the mint on {pool_stake}");
    assert_eq!(hints, neighbours(c, me).await, "hints of {me} against the pool after its reward");
    hints
}

/// The real BondingManager keeps a transcoder's stake in the earnings pool of the round it last
/// changed (`lastActiveStakeUpdateRound`): after a round without reward (and without any stake
/// change), the current round's pool reads 0 until `reward` copies the old one over, and the
/// mint is on that stake. The hints must simulate that mint, or an orchestrator whose reward
/// moves it past another gets hints naming its old place.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reward_hints_after_missed_rounds_use_the_stake_of_the_last_update() {
    // 10% inflation per round: rewards big enough to reorder the pool.
    let net = devnet_with(&DevnetParams { inflation: 100_000_000, ..params() }, &[1, 2, 3]).await;
    let (o1, o2, o3) = (client(&net, 1).await, client(&net, 2).await, client(&net, 3).await);
    let (a1, a2, a3) = (signer(1).address(), signer(2).address(), signer(3).address());
    let bm = BondingManager::new(net.deployment.contracts.bonding_manager, o1.provider());

    next_round(&net, &o1).await;
    o1.register(lpt("100"), 0, 0, "https://127.0.0.1:8935").await.unwrap();
    o2.register(lpt("110"), 0, 0, "https://127.0.0.1:9935").await.unwrap();
    o3.register(lpt("400"), 0, 0, "https://127.0.0.1:10935").await.unwrap();
    let first = next_round(&net, &o1).await;
    assert_eq!(o1.pool().await.unwrap().iter().map(|m| m.address).collect::<Vec<_>>(), vec![a3, a2, a1]);

    // Only o3 rewards in the first active round; o1 and o2 miss it.
    assert_eq!(reward_checked(&net, &o3, lpt("400")).await, (Address::ZERO, a2));
    let round = next_round(&net, &o1).await;
    assert_eq!(round, first + 1);

    // The devnet keeps the real contract's books: o1's stake was last updated for `first`, and
    // this round's pool is empty until o1 rewards.
    let t1 = bm.getTranscoder(a1).call().await.unwrap();
    assert_eq!(t1.lastActiveStakeUpdateRound, U256::from(first));
    assert_eq!(pool_stake(&net, a1, round).await, U256::ZERO);
    assert_eq!(pool_stake(&net, a2, round).await, U256::ZERO);

    // o1's reward on its 100 LPT takes it past o2 (110): right behind o3.
    assert_eq!(reward_checked(&net, &o1, lpt("100")).await, (a3, a2));
    assert_eq!(pool_stake(&net, a1, round).await, lpt("100"), "reward copied the stake of the last update");
    // o2's reward on its 110 LPT takes it back past o1.
    assert_eq!(reward_checked(&net, &o2, lpt("110")).await, (a3, a1));
    // o3 rewarded last round: this round's pool holds its stake already.
    let o3_stake = pool_stake(&net, a3, round).await;
    assert!(o3_stake > lpt("400"));
    assert_eq!(reward_checked(&net, &o3, o3_stake).await, (Address::ZERO, a2));
    assert_eq!(o1.pool().await.unwrap().iter().map(|m| m.address).collect::<Vec<_>>(), vec![a3, a2, a1]);
}

/// The other side of the same rule: when the stake changed earlier in the reward's round, the
/// contract has already recorded this round's stake (`lastActiveStakeUpdateRound` is the next
/// round, whose pool holds the new stake) and mints on this round's. Hints from the next round's
/// pool would overshoot and put o1 ahead of o2.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reward_hints_after_a_stake_change_this_round_use_this_rounds_stake() {
    let net = devnet_with(&DevnetParams { inflation: 100_000_000, ..params() }, &[1, 2, 3]).await;
    let (o1, o2, delegator) = (client(&net, 1).await, client(&net, 2).await, client(&net, 3).await);
    let (a1, a2) = (signer(1).address(), signer(2).address());
    let bm = BondingManager::new(net.deployment.contracts.bonding_manager, o1.provider());

    next_round(&net, &o1).await;
    o1.register(lpt("100"), 0, 0, "https://127.0.0.1:8935").await.unwrap();
    o2.register(lpt("300"), 0, 0, "https://127.0.0.1:9935").await.unwrap();
    let round = next_round(&net, &o1).await;

    // 100 LPT delegated to o1 before it rewards: 200 LPT from the next round.
    delegator.bond(lpt("100"), a1).await.unwrap();
    let t1 = bm.getTranscoder(a1).call().await.unwrap();
    assert_eq!(t1.lastActiveStakeUpdateRound, U256::from(round + 1));
    assert_eq!(pool_stake(&net, a1, round).await, lpt("100"));
    assert_eq!(pool_stake(&net, a1, round + 1).await, lpt("200"));

    // The mint is on 100 LPT (300 LPT mintable · 100/400 = 75): 275 LPT stays behind o2's 300.
    // On 200 LPT it would be 150, and 350 LPT would lead.
    assert_eq!(reward_checked(&net, &o1, lpt("100")).await, (a2, Address::ZERO));
    assert_eq!(o1.status(a1).await.unwrap().total_stake, lpt("275"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unbond_then_withdraw_stake_after_the_unbonding_period() {
    let net = devnet().await;
    let c = client(&net, 1).await;
    let me = signer(1).address();
    next_round(&net, &c).await;
    c.bond(lpt("100"), me).await.unwrap();
    assert_eq!(c.status(me).await.unwrap().delegator_status, "Pending");
    // Unbonding needs a Bonded (not Pending) delegator.
    expect_revert(c.unbond(lpt("1")).await.unwrap_err(), "caller must be bonded");
    next_round(&net, &c).await;
    assert_eq!(c.status(me).await.unwrap().delegator_status, "Bonded");

    let round = c.current_round().await.unwrap().round;
    let unbonded = c.unbond(lpt("10")).await.unwrap();
    let lock = unbonded.lock.expect("Unbond event");
    assert_eq!(lock.id, 0);
    assert_eq!(lock.amount, lpt("10"));
    assert_eq!(lock.withdraw_round, round + params().unbonding_period);
    assert_eq!(c.unbonding_locks(me).await.unwrap(), vec![lock.clone()]);
    expect_revert(
        c.withdraw_stake(lock.id).await.unwrap_err(),
        "withdraw round must be before or equal to the current round",
    );

    // Rebond a second lock: it disappears and the stake is back.
    let second = c.unbond(lpt("5")).await.unwrap().lock.unwrap();
    assert_eq!(second.id, 1);
    c.rebond(second.id).await.unwrap();
    assert_eq!(c.unbonding_locks(me).await.unwrap(), vec![lock.clone()]);
    assert_eq!(c.status(me).await.unwrap().bonded_amount, lpt("90"));

    for _ in 0..params().unbonding_period {
        next_round(&net, &c).await;
    }
    let balance = c.status(me).await.unwrap().lpt_balance;
    c.withdraw_stake(lock.id).await.unwrap();
    assert_eq!(c.status(me).await.unwrap().lpt_balance - balance, lpt("10"));
    assert!(c.unbonding_locks(me).await.unwrap().is_empty());
    expect_revert(c.withdraw_stake(lock.id).await.unwrap_err(), "invalid unbonding lock ID");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fund_unlock_and_withdraw_deposit_and_reserve() {
    let net = devnet().await;
    let gw = client(&net, 3).await;
    let me = signer(3).address();
    let eth = |s: &str| parse_amount(s, Token::Eth).unwrap();

    next_round(&net, &gw).await;
    gw.fund(eth("1"), eth("2")).await.unwrap();
    let st = gw.status(me).await.unwrap();
    assert_eq!((st.deposit, st.reserve, st.withdraw_round), (eth("1"), eth("2"), 0));

    expect_revert(gw.withdraw().await.unwrap_err(), "no unlock request in progress");
    let round = gw.current_round().await.unwrap().round;
    gw.unlock().await.unwrap();
    let st = gw.status(me).await.unwrap();
    assert_eq!(st.withdraw_round, round + params().unlock_period);
    expect_revert(gw.withdraw().await.unwrap_err(), "account is locked");

    for _ in 0..params().unlock_period {
        next_round(&net, &gw).await;
    }
    let before = gw.status(me).await.unwrap().eth_balance;
    gw.withdraw().await.unwrap();
    let st = gw.status(me).await.unwrap();
    assert_eq!((st.deposit, st.reserve), (U256::ZERO, U256::ZERO));
    // 3 ETH back, less the gas of the withdrawal.
    assert!(st.eth_balance > before + eth("2.99"), "{} -> {}", before, st.eth_balance);
}

/// On Arbitrum a round's block hash can read as zero (go-livepeer's workaround): tickets then
/// commit to the round before it and its hash. The zero is written into the RoundsManager's
/// storage with `anvil_setStorageAt`, since our contracts always record a hash.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_round_whose_block_hash_reads_as_zero_gives_tickets_the_round_before() {
    use alloy::primitives::{B256, keccak256};
    use alloy::providers::Provider;
    let net = devnet_with(&params(), &[]).await;
    let c = client(&net, 0).await;
    let previous = next_round(&net, &c).await;
    let last = next_round(&net, &c).await;
    let before = c.current_round().await.unwrap();
    assert_eq!(before.ticket_round, (last, before.block_hash_of_last_initialized));
    let rounds_manager = net.deployment.contracts.rounds_manager;
    let rm = lp_chain::bindings::RoundsManager::new(rounds_manager, &net.provider);
    let previous_hash = rm.blockHashForRound(U256::from(previous)).call().await.unwrap();
    assert!(!previous_hash.is_zero() && !before.block_hash_of_last_initialized.is_zero());

    // `blockHashForRound` is a mapping from the round: find its slot among the first ones.
    let mut found = None;
    for index in 0u64..64 {
        let key = keccak256([B256::from(U256::from(last)), B256::from(U256::from(index))].concat());
        let value = net.provider.get_storage_at(rounds_manager, key.into()).await.unwrap();
        if B256::from(value) == before.block_hash_of_last_initialized {
            found = Some(key);
            break;
        }
    }
    let slot = found.expect("the slot of blockHashForRound(last)");
    net.provider.anvil_set_storage_at(rounds_manager, slot.into(), B256::ZERO).await.unwrap();

    let after = c.current_round().await.unwrap();
    assert!(after.block_hash_of_last_initialized.is_zero(), "the hash now reads as zero");
    assert_eq!(after.last_initialized_round, last);
    assert_eq!(after.ticket_round, (previous, previous_hash), "tickets commit to the round before");
}
