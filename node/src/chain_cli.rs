//! `livepeer chain <command>`: the operator's on-chain actions, through the same client the
//! node's chain actors use. Readable output by default, `--json` for scripts; every error shows
//! the contract's revert reason.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use alloy::primitives::{Address, U256};
use anyhow::{Context as _, Result, bail};
use clap::{Args, Subcommand};
use lp_actors::store::{CheckChainId, Store, WinningTickets};
use lp_chain::client::{ChainClient, Token, format_amount};
use lp_chain::db::{DB_FILE, TicketStatus, WinningTicketRow};
use lp_chain::tx::TxPolicy;
use lp_config::{Config, EthConfig};
use serde_json::{Value, json};

use crate::exit::{EX_USAGE, failure_status};

#[derive(Debug, Args)]
pub struct ChainArgs {
    /// The node's TOML config; it needs `network` and an [eth] section (`livepeer devnet` writes
    /// one).
    #[arg(short, long, value_name = "FILE")]
    pub config: PathBuf,
    /// Print the result as JSON.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: ChainCommand,
}

/// Amounts are decimal numbers in whole LPT or ETH (`100`, `0.5`), optionally with a unit after
/// them (`100 LPT`, `20 gwei`, `1000 wei`); negative amounts and fractions of a wei are refused.
#[derive(Debug, Subcommand)]
pub enum ChainCommand {
    /// Round, stake, whether this account is an active orchestrator, pending fees, deposit and
    /// reserve.
    Status {
        /// Another account to look at (default: this node's).
        #[arg(long, value_name = "ADDRESS")]
        address: Option<Address>,
    },
    /// Bond LPT to an orchestrator (default: yourself). An AMOUNT of 0 with --to moves your bonded
    /// stake to that orchestrator.
    Bond {
        /// LPT to bond, e.g. 100 or 0.5 (or with a unit: `100 LPT`, `5 wei`).
        #[arg(value_parser = lpt_amount, allow_negative_numbers = true)]
        amount: U256,
        /// The orchestrator to bond to (default: yourself).
        #[arg(long, value_name = "ADDRESS")]
        to: Option<Address>,
    },
    /// Unbond LPT; it can be withdrawn with withdraw-stake after the unbonding period.
    Unbond {
        /// LPT to unbond, above 0 and at most what is bonded, e.g. 100 or 0.5.
        #[arg(value_parser = lpt_amount, allow_negative_numbers = true)]
        amount: U256,
    },
    /// Rebond an unbonding lock (to the current delegate).
    Rebond {
        /// The id of the unbonding lock, as `unbond` printed it.
        lock_id: u64,
    },
    /// Withdraw the LPT of an unbonding lock whose unbonding period has passed.
    WithdrawStake {
        /// The id of the unbonding lock, as `unbond` printed it.
        lock_id: u64,
    },
    /// Become an orchestrator: bond to yourself (optional), set reward cut and fee share, and
    /// publish the service URI gateways dial.
    Register {
        /// Share of rewards you keep, in percent.
        #[arg(long)]
        reward_cut: f64,
        /// Share of fees paid to your delegators, in percent.
        #[arg(long)]
        fee_share: f64,
        /// The URI gateways send segments to, e.g. https://203.0.113.7:8935.
        #[arg(long)]
        service_uri: String,
        /// LPT to bond to yourself first (0: none).
        #[arg(long, default_value = "0", value_parser = lpt_amount, allow_negative_numbers = true)]
        bond: U256,
    },
    /// Call reward for the current round (the node does this on its own each round).
    Reward,
    /// Fund the ticket deposit and reserve that pay orchestrators (at least one above 0).
    Fund {
        /// ETH to add to the deposit, which pays winning tickets, e.g. 1 or 0.5 (or `500 gwei`).
        #[arg(long, default_value = "0", value_parser = eth_amount, allow_negative_numbers = true)]
        deposit: U256,
        /// ETH to add to the reserve, which pays orchestrators when the deposit runs out.
        #[arg(long, default_value = "0", value_parser = eth_amount, allow_negative_numbers = true)]
        reserve: U256,
    },
    /// Start unlocking the deposit and reserve (withdrawable after the unlock period).
    Unlock,
    /// Withdraw the unlocked deposit and reserve.
    Withdraw,
    /// Withdraw earned fees (ETH) to an address (default: yourself).
    WithdrawFees {
        /// ETH to withdraw, above 0 and at most the pending fees (default: all pending fees).
        #[arg(long, value_parser = eth_amount, allow_negative_numbers = true)]
        amount: Option<U256>,
        /// The address the fees are sent to (default: yourself).
        #[arg(long, value_name = "ADDRESS")]
        to: Option<Address>,
    },
    /// Initialize the current round if nobody has.
    InitializeRound,
    /// The orchestrator's winning tickets in the node's database (pending, redeemed, failed),
    /// newest first; works without the node running and without the RPC endpoint.
    Tickets,
}

fn lpt_amount(s: &str) -> Result<U256, String> {
    lp_chain::client::parse_amount(s, Token::Lpt).map_err(invalid_input)
}

fn eth_amount(s: &str) -> Result<U256, String> {
    lp_chain::client::parse_amount(s, Token::Eth).map_err(invalid_input)
}

fn invalid_input(e: lp_chain::error::ChainError) -> String {
    match e {
        lp_chain::error::ChainError::InvalidInput(m) => m,
        other => other.to_string(),
    }
}

pub fn main(args: ChainArgs) -> ExitCode {
    let cfg = match Config::load(&args.config, &Config::env_overrides()) {
        Ok(c) => c,
        Err(errors) => {
            eprintln!("error: invalid configuration:\n{errors}");
            return ExitCode::from(EX_USAGE);
        }
    };
    let Some(eth) = cfg.eth.clone() else {
        eprintln!("error: {} has no [eth] section; `livepeer chain` needs an on-chain network", args.config.display());
        return ExitCode::from(EX_USAGE);
    };
    let json_out = args.json;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a tokio runtime");
    match runtime.block_on(run(&cfg, &eth, args.command)) {
        Ok(value) => {
            if json_out {
                println!("{}", serde_json::to_string_pretty(&value).unwrap_or_default());
            } else {
                print_readable(&value, 0);
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            if json_out {
                println!("{}", json!({ "error": format!("{e:#}") }));
            } else {
                eprintln!("error: {e:#}");
            }
            failure_status(&e)
        }
    }
}

/// Connect as the node would: keystore, controller, chain id checked against the database
/// (through its [`Store`], which is answered too, for the node's chain actors).
pub async fn connect(cfg: &Config, eth: &EthConfig) -> Result<(ChainClient, Store)> {
    let keystore = eth.keystore.clone().unwrap_or_else(|| cfg.data_dir.join("keystore"));
    let account = eth.account.as_deref().map(str::parse::<Address>).transpose().context("eth.account")?;
    let signer = lp_chain::keystore::load_or_create(&keystore, &eth.password_file, account)?;
    let controller = eth.controller.as_deref().map(str::parse::<Address>).transpose().context("eth.controller")?;
    let controller = lp_chain::networks::controller_for(cfg.network.as_str(), controller)?;
    let policy = tx_policy(eth)?;
    let client = ChainClient::connect(&eth.url, controller, Some(signer), policy).await?;
    std::fs::create_dir_all(&cfg.data_dir)?;
    let store = Store::open_in(&cfg.data_dir).await?;
    store.send(CheckChainId(client.chain_id())).await?;
    Ok((client, store))
}

pub fn tx_policy(eth: &EthConfig) -> Result<TxPolicy> {
    Ok(TxPolicy {
        // lp-config checks that both fit a u128; a config built in code may not.
        min_gas_price: u128::try_from(eth.min_gas_price.as_u256()).context("eth.min_gas_price")?,
        max_gas_price: u128::try_from(eth.max_gas_price.as_u256()).context("eth.max_gas_price")?,
        timeout: Duration::from_secs(eth.tx_timeout_secs),
        max_replacements: eth.max_tx_replacements,
        poll_interval: Duration::from_secs(eth.block_poll_interval_secs),
        ..Default::default()
    })
}

fn percent(p: f64, what: &str) -> Result<u32> {
    if !(0.0..=100.0).contains(&p) {
        bail!("{what} must be between 0 and 100, found {p}");
    }
    Ok((p * 10_000.0).round() as u32)
}

/// Every amount of the output, the same way: `key` formatted (`"1.5 LPT"`) and `key_wei`, the
/// exact amount in wei as a decimal string. The readable output shows the first only.
fn with_amounts(mut v: Value, fields: &[(&str, U256, Token)]) -> Value {
    if let Value::Object(map) = &mut v {
        for (key, amount, token) in fields {
            map.insert(key.to_string(), Value::String(format_amount(*amount, *token)));
            map.insert(format!("{key}_wei"), Value::String(amount.to_string()));
        }
    }
    v
}

/// A round number; `u64::MAX` (the contracts' "no such round yet") is `"never"`.
fn round_or_never(round: u64) -> Value {
    if round == u64::MAX { json!("never") } else { json!(round) }
}

/// Refuse, before connecting, arguments that can only be a mistake.
fn check_args(command: &ChainCommand) -> Result<()> {
    match command {
        ChainCommand::Bond { amount, to: None } if amount.is_zero() => {
            bail!("AMOUNT must be above 0 (bond 0 with --to moves your bonded stake to another orchestrator)")
        }
        ChainCommand::Unbond { amount } if amount.is_zero() => bail!("AMOUNT must be above 0"),
        ChainCommand::Fund { deposit, reserve } if deposit.is_zero() && reserve.is_zero() => {
            bail!("nothing to fund: give --deposit and/or --reserve above 0 (in ETH)")
        }
        ChainCommand::WithdrawFees { amount: Some(a), .. } if a.is_zero() => {
            bail!("--amount must be above 0 (leave it out to withdraw all pending fees)")
        }
        _ => Ok(()),
    }
}

fn tx(receipt: &alloy::rpc::types::TransactionReceipt) -> Value {
    json!({ "tx": receipt.transaction_hash.to_string(), "block": receipt.block_number, "gas_used": receipt.gas_used })
}

async fn run(cfg: &Config, eth: &EthConfig, command: ChainCommand) -> Result<Value> {
    check_args(&command)?;
    if let ChainCommand::Tickets = command {
        return list_tickets(&cfg.data_dir).await;
    }
    let (client, _) = connect(cfg, eth).await?;
    let me = client.address().context("no account")?;
    let lpt = Token::Lpt;
    let eth = Token::Eth;
    Ok(match command {
        ChainCommand::Status { address } => status_view(&client.status(address.unwrap_or(me)).await?),
        ChainCommand::Bond { amount, to } => {
            let r = client.bond(amount, to.unwrap_or(me)).await?;
            let v = json!({ "to": to.unwrap_or(me).to_string(), "receipt": tx(&r) });
            with_amounts(v, &[("bonded", amount, lpt)])
        }
        ChainCommand::Unbond { amount } => {
            let bonded = client.status(me).await?.pending_stake;
            if bonded.is_zero() {
                bail!("nothing to unbond: {me} has no LPT bonded; nothing was sent");
            }
            if amount > bonded {
                bail!(
                    "cannot unbond {}: {me} has {} bonded; nothing was sent",
                    format_amount(amount, lpt),
                    format_amount(bonded, lpt)
                );
            }
            let u = client.unbond(amount).await?;
            let lock = u.lock.map(|l| {
                with_amounts(json!({ "id": l.id, "withdraw_round": l.withdraw_round }), &[("amount", l.amount, lpt)])
            });
            with_amounts(json!({ "lock": lock, "receipt": tx(&u.receipt) }), &[("unbonded", amount, lpt)])
        }
        ChainCommand::Rebond { lock_id } => {
            json!({ "rebonded_lock": lock_id, "receipt": tx(&client.rebond(lock_id).await?) })
        }
        ChainCommand::WithdrawStake { lock_id } => {
            json!({ "withdrawn_lock": lock_id, "receipt": tx(&client.withdraw_stake(lock_id).await?) })
        }
        ChainCommand::Register { reward_cut, fee_share, service_uri, bond } => {
            let receipts = client
                .register(bond, percent(reward_cut, "reward cut")?, percent(fee_share, "fee share")?, &service_uri)
                .await?;
            let v = json!({
                "registered": me.to_string(), "service_uri": service_uri, "reward_cut_percent": reward_cut,
                "fee_share_percent": fee_share,
                "receipts": receipts.iter().map(tx).collect::<Vec<_>>(),
                "note": "active from the next round",
            });
            with_amounts(v, &[("bonded", bond, lpt)])
        }
        ChainCommand::Reward => json!({ "rewarded": me.to_string(), "receipt": tx(&client.reward().await?) }),
        ChainCommand::Fund { deposit, reserve } => {
            let r = client.fund(deposit, reserve).await?;
            with_amounts(
                json!({ "receipt": tx(&r) }),
                &[("deposit_added", deposit, eth), ("reserve_added", reserve, eth)],
            )
        }
        ChainCommand::Unlock => {
            let s = client.status(me).await?;
            if s.deposit.is_zero() && s.reserve.is_zero() {
                bail!("nothing to unlock: the deposit and reserve of {me} are 0 ETH; nothing was sent");
            }
            json!({ "receipt": tx(&client.unlock().await?) })
        }
        ChainCommand::Withdraw => {
            let s = client.status(me).await?;
            if s.deposit.is_zero() && s.reserve.is_zero() {
                bail!("nothing to withdraw: the deposit and reserve of {me} are 0 ETH; nothing was sent");
            }
            let r = client.withdraw().await?;
            with_amounts(json!({ "receipt": tx(&r) }), &[("deposit", s.deposit, eth), ("reserve", s.reserve, eth)])
        }
        ChainCommand::WithdrawFees { amount, to } => {
            let pending = client.status(me).await?.pending_fees;
            if pending.is_zero() {
                bail!("no fees to withdraw: {me} has 0 ETH of pending fees; nothing was sent");
            }
            let amount = amount.unwrap_or(pending);
            if amount > pending {
                bail!(
                    "--amount {} is more than the {} of pending fees of {me}; nothing was sent",
                    format_amount(amount, eth),
                    format_amount(pending, eth)
                );
            }
            let r = client.withdraw_fees(to.unwrap_or(me), amount).await?;
            with_amounts(
                json!({ "to": to.unwrap_or(me).to_string(), "receipt": tx(&r) }),
                &[("withdrawn", amount, eth)],
            )
        }
        ChainCommand::InitializeRound => json!({ "receipt": tx(&client.initialize_round().await?) }),
        ChainCommand::Tickets => unreachable!("answered before connecting"),
    })
}

/// `livepeer chain tickets`: the winning tickets of the database in `data_dir` (none when it has
/// no database yet), read through a [`Store`] of its own (SQLite in WAL mode: a running node's
/// writes do not block it).
pub async fn list_tickets(data_dir: &std::path::Path) -> Result<Value> {
    let path = data_dir.join(DB_FILE);
    let rows = if path.exists() {
        let store = Store::open(path.clone()).await.with_context(|| format!("opening {}", path.display()))?;
        store.send(WinningTickets(None)).await?
    } else {
        Vec::new()
    };
    Ok(tickets_view(&rows))
}

/// The tickets as `livepeer chain tickets` shows them, with a count per status.
fn tickets_view(rows: &[WinningTicketRow]) -> Value {
    let count = |s: TicketStatus| rows.iter().filter(|r| r.status == s).count();
    let tickets: Vec<Value> = rows
        .iter()
        .map(|r| {
            let v = json!({
                "ticket_hash": r.ticket_hash.to_string(),
                "sender": r.sender.to_string(),
                "sender_nonce": r.sender_nonce.to_string(),
                "creation_round": r.creation_round,
                "params_expiration_block": r.params_expiration_block,
                "status": r.status.as_str(),
                "attempts": r.attempts,
                "next_attempt_block": r.next_attempt_block,
                "last_error": r.last_error,
                "tx_hash": r.tx_hash.map(|h| h.to_string()),
                "gas_used": r.gas_used,
            });
            let mut amounts = vec![("face_value", r.face_value, Token::Eth)];
            amounts.extend(r.paid.map(|p| ("paid", p, Token::Eth)));
            with_amounts(v, &amounts)
        })
        .collect();
    json!({
        "pending": count(TicketStatus::Pending),
        "redeemed": count(TicketStatus::Redeemed),
        "failed": count(TicketStatus::Failed),
        "tickets": tickets,
    })
}

/// The status, every amount as decimal LPT/ETH and as wei (see [`with_amounts`]).
fn status_view(s: &lp_chain::client::NodeStatus) -> Value {
    let (lpt, eth) = (Token::Lpt, Token::Eth);
    json!({
        "address": s.address.to_string(),
        "chain_id": s.chain_id,
        "block": s.block_number,
        "round": {
            "number": s.round.round, "initialized": s.round.initialized, "locked": s.round.locked,
            "start_block": s.round.start_block, "length_blocks": s.round.length, "pool_size": s.round.pool_size,
        },
        "orchestrator": with_amounts(json!({
            "registered": s.registered, "active": s.active, "service_uri": s.service_uri,
            "reward_cut_percent": s.reward_cut as f64 / 10_000.0,
            "fee_share_percent": s.fee_share as f64 / 10_000.0, "last_reward_round": s.last_reward_round,
            "activation_round": s.activation_round, "deactivation_round": round_or_never(s.deactivation_round),
        }), &[("total_stake", s.total_stake, lpt)]),
        "delegator": with_amounts(
            json!({ "status": s.delegator_status, "delegate": s.delegate.to_string() }),
            &[("bonded", s.bonded_amount, lpt), ("pending_stake", s.pending_stake, lpt), ("pending_fees", s.pending_fees, eth)],
        ),
        "balances": with_amounts(json!({}), &[("eth", s.eth_balance, eth), ("lpt", s.lpt_balance, lpt)]),
        "tickets": with_amounts(
            json!({ "withdraw_round": s.withdraw_round }),
            &[("deposit", s.deposit, eth), ("reserve", s.reserve, eth)],
        ),
    })
}

/// Print a JSON value as indented `key: value` lines.
fn print_readable(value: &Value, indent: usize) {
    let pad = "  ".repeat(indent);
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                // `x_wei` repeats `x` exactly, for scripts; people read `x`.
                if k.strip_suffix("_wei").is_some_and(|base| map.contains_key(base)) {
                    continue;
                }
                match v {
                    Value::Object(_) | Value::Array(_) => {
                        println!("{pad}{}:", k.replace('_', " "));
                        print_readable(v, indent + 1);
                    }
                    _ => println!("{pad}{:<24} {}", k.replace('_', " "), scalar(v)),
                }
            }
        }
        Value::Array(items) => {
            for v in items {
                match v {
                    Value::Object(_) | Value::Array(_) => {
                        println!("{pad}-");
                        print_readable(v, indent + 1);
                    }
                    _ => println!("{pad}- {}", scalar(v)),
                }
            }
        }
        other => println!("{pad}{}", scalar(other)),
    }
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        chain: ChainArgs,
    }

    fn parse(args: &[&str]) -> Result<ChainCommand, String> {
        let argv = ["chain", "-c", "node.toml"].into_iter().chain(args.iter().copied());
        Cli::try_parse_from(argv).map(|c| c.chain.command).map_err(|e| e.to_string())
    }

    fn eth(n: u64, decimals: u32) -> U256 {
        U256::from(n) * U256::from(10u64).pow(U256::from(decimals))
    }

    #[test]
    fn the_tx_policy_takes_its_keys_from_the_config() {
        let text = "network = \"devnet\"\n[eth]\nurl = \"http://127.0.0.1:8545\"\npassword_file = \"password\"\n\
                    controller = \"0x0000000000000000000000000000000000000001\"\n\
                    min_gas_price = \"2 gwei\"\nmax_gas_price = \"300 gwei\"\ntx_timeout_secs = 77\n\
                    max_tx_replacements = 5\nblock_poll_interval_secs = 9\n";
        let cfg = lp_config::Config::from_toml_str(text, &[]).unwrap();
        let policy = tx_policy(cfg.eth.as_ref().unwrap()).unwrap();
        assert_eq!((policy.min_gas_price, policy.max_gas_price), (2_000_000_000, 300_000_000_000));
        assert_eq!(policy.timeout, Duration::from_secs(77));
        assert_eq!(policy.max_replacements, 5);
        assert_eq!(policy.poll_interval, Duration::from_secs(9));
    }

    #[test]
    fn amounts_parse_strictly_and_errors_name_the_argument() {
        match parse(&["bond", "1.5", "--to", "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"]).unwrap() {
            ChainCommand::Bond { amount, to: Some(_) } => assert_eq!(amount, eth(15, 17)),
            other => panic!("{other:?}"),
        }
        match parse(&["fund", "--deposit", "20 gwei"]).unwrap() {
            ChainCommand::Fund { deposit, reserve } => assert_eq!((deposit, reserve), (eth(20, 9), U256::ZERO)),
            other => panic!("{other:?}"),
        }
        match parse(&["withdraw-fees"]).unwrap() {
            ChainCommand::WithdrawFees { amount: None, to: None } => {}
            other => panic!("{other:?}"),
        }
        for (args, words) in [
            (&["bond", "-5"][..], &["<AMOUNT>", "negative"][..]),
            (&["unbond", "-0.1"], &["<AMOUNT>", "negative"]),
            (&["fund", "--deposit", "-5"], &["--deposit", "negative"]),
            (&["fund", "--reserve", "0.0000000000000000001"], &["--reserve", "19 decimals", "wei"]),
            (&["withdraw-fees", "--amount", "1 LPT"], &["--amount", "not a unit of ETH"]),
            (&["register", "--reward-cut", "1", "--fee-share", "1", "--service-uri", "u", "--bond", "x"], &["--bond"]),
            (&["bond", &"9".repeat(80)], &["<AMOUNT>", "too large"]),
        ] {
            let e = parse(args).unwrap_err();
            for w in words {
                assert!(e.contains(w), "{args:?}: {w:?} missing from {e}");
            }
        }
    }

    #[test]
    fn zero_is_refused_where_it_means_nothing() {
        let refused = |args: &[&str], what: &str| {
            let e = check_args(&parse(args).unwrap()).unwrap_err().to_string();
            assert!(e.contains(what), "{args:?}: {e}");
        };
        refused(&["bond", "0"], "AMOUNT must be above 0");
        refused(&["unbond", "0.0"], "AMOUNT must be above 0");
        refused(&["fund"], "nothing to fund");
        refused(&["fund", "--deposit", "0", "--reserve", "0 wei"], "nothing to fund");
        refused(&["withdraw-fees", "--amount", "0"], "--amount must be above 0");
        // Zero with a meaning: moving the stake; registering without bonding; one of two.
        for ok in [
            &["bond", "0", "--to", "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"][..],
            &["register", "--reward-cut", "1", "--fee-share", "1", "--service-uri", "u"],
            &["fund", "--reserve", "1"],
            &["withdraw-fees"],
        ] {
            check_args(&parse(ok).unwrap()).unwrap();
        }
    }

    #[test]
    fn every_amount_is_formatted_and_in_wei() {
        let v =
            with_amounts(json!({ "id": 3 }), &[("amount", eth(15, 17), Token::Lpt), ("fee", U256::ZERO, Token::Eth)]);
        assert_eq!(
            v,
            json!({
                "id": 3, "amount": "1.5 LPT", "amount_wei": "1500000000000000000", "fee": "0 ETH", "fee_wei": "0",
            })
        );
        assert_eq!(with_amounts(json!({}), &[("max", U256::MAX, Token::Eth)])["max_wei"], U256::MAX.to_string());
        assert_eq!(round_or_never(u64::MAX), json!("never"));
        assert_eq!(round_or_never(18), json!(18));
    }

    #[test]
    fn tickets_lists_every_status_from_the_database_without_a_node() {
        use alloy::primitives::{B256, Bytes};
        use lp_chain::db::{Db, TicketOutcome};
        use lp_chain::pm::{Ticket, WinningTicket, aux_data, recipient_rand_hash, ticket_hash};

        assert!(matches!(parse(&["tickets"]).unwrap(), ChainCommand::Tickets));
        let tmp = tempfile::tempdir().unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        // No database yet: nothing, and none is created.
        let empty = runtime.block_on(list_tickets(tmp.path())).unwrap();
        assert_eq!(empty, json!({ "pending": 0, "redeemed": 0, "failed": 0, "tickets": [] }));
        assert!(!tmp.path().join(DB_FILE).exists());

        let sender: Address = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC".parse().unwrap();
        let ticket = |nonce: u64| WinningTicket {
            ticket: Ticket {
                recipient: Address::repeat_byte(1),
                sender,
                faceValue: eth(15, 16),
                winProb: U256::MAX,
                senderNonce: U256::from(nonce),
                recipientRandHash: recipient_rand_hash(U256::from(5)),
                auxData: aux_data(7, B256::repeat_byte(2)),
            },
            sig: Bytes::from(vec![1; 65]),
            recipient_rand: U256::from(5),
            params_expiration_block: 100,
        };
        let tx = B256::repeat_byte(0xaa);
        {
            let db = Db::open_in(tmp.path()).unwrap();
            for n in 1..=3 {
                db.queue_winning_ticket(&ticket(n)).unwrap();
            }
            let paid = Some(eth(15, 16));
            let done = TicketOutcome::Redeemed { tx: Some(tx), gas_used: Some(150_000), paid, note: None };
            db.record_ticket_outcome(ticket_hash(&ticket(1).ticket), &done).unwrap();
            let failed = TicketOutcome::Failed { reason: "ticket is expired".into() };
            db.record_ticket_outcome(ticket_hash(&ticket(2).ticket), &failed).unwrap();
        }
        let v = runtime.block_on(list_tickets(tmp.path())).unwrap();
        assert_eq!((&v["pending"], &v["redeemed"], &v["failed"]), (&json!(1), &json!(1), &json!(1)));
        let tickets = v["tickets"].as_array().unwrap();
        // Newest first.
        let nonces: Vec<_> = tickets.iter().map(|t| t["sender_nonce"].as_str().unwrap()).collect();
        assert_eq!(nonces, ["3", "2", "1"]);
        assert_eq!(tickets[0]["status"], "pending");
        assert_eq!(tickets[0]["face_value"], "0.15 ETH");
        assert_eq!(tickets[0]["face_value_wei"], "150000000000000000");
        assert_eq!(tickets[0]["sender"], sender.to_string());
        assert_eq!(tickets[1]["status"], "failed");
        assert_eq!(tickets[1]["last_error"], "ticket is expired");
        assert_eq!(tickets[1]["attempts"], 1);
        assert_eq!(tickets[2]["status"], "redeemed");
        assert_eq!(tickets[2]["tx_hash"], tx.to_string());
        assert_eq!(tickets[2]["gas_used"], 150_000);
        assert_eq!(tickets[2]["paid"], "0.15 ETH");
        // The signature and recipientRand are never shown.
        let text = v.to_string();
        assert!(!text.contains("sig") && !text.contains("recipient_rand"), "{text}");
    }
}
