//! `livepeer chain <command>`: the operator's on-chain actions, through the same client the
//! node's chain actors use. Readable output by default, `--json` for scripts; every error shows
//! the contract's revert reason.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use alloy::primitives::utils::{format_units, parse_units};
use alloy::primitives::{Address, U256};
use anyhow::{Context as _, Result, anyhow, bail};
use clap::{Args, Subcommand};
use lp_chain::client::ChainClient;
use lp_chain::db::Db;
use lp_chain::tx::TxPolicy;
use lp_config::{Config, EthConfig};
use serde_json::{Value, json};

use crate::cli::EX_USAGE;

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

#[derive(Debug, Subcommand)]
pub enum ChainCommand {
    /// Round, stake, whether this account is an active orchestrator, pending fees, deposit and
    /// reserve.
    Status {
        /// Another account to look at.
        #[arg(long)]
        address: Option<Address>,
    },
    /// Bond LPT (AMOUNT in LPT, e.g. 100 or 0.5) to an orchestrator (default: yourself).
    Bond {
        amount: String,
        #[arg(long)]
        to: Option<Address>,
    },
    /// Unbond AMOUNT LPT; it can be withdrawn after the unbonding period.
    Unbond { amount: String },
    /// Rebond an unbonding lock.
    Rebond { lock_id: u64 },
    /// Withdraw the LPT of an unbonding lock whose unbonding period has passed.
    WithdrawStake { lock_id: u64 },
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
        /// LPT to bond to yourself first.
        #[arg(long, default_value = "0")]
        bond: String,
    },
    /// Call reward for the current round (the node does this on its own each round).
    Reward,
    /// Fund the ticket deposit and reserve (in ETH) that pay orchestrators.
    Fund {
        #[arg(long, default_value = "0")]
        deposit: String,
        #[arg(long, default_value = "0")]
        reserve: String,
    },
    /// Start unlocking the deposit and reserve (withdrawable after the unlock period).
    Unlock,
    /// Withdraw the unlocked deposit and reserve.
    Withdraw,
    /// Withdraw earned fees (ETH) to an address (default: yourself).
    WithdrawFees {
        /// Amount in ETH; default: all pending fees.
        #[arg(long)]
        amount: Option<String>,
        #[arg(long)]
        to: Option<Address>,
    },
    /// Initialize the current round if nobody has.
    InitializeRound,
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
            ExitCode::FAILURE
        }
    }
}

/// Connect as the node would: keystore, controller, chain id checked against the database
/// (which is answered too, for the node's chain actors).
pub async fn connect(cfg: &Config, eth: &EthConfig) -> Result<(ChainClient, Db)> {
    let keystore = eth.keystore.clone().unwrap_or_else(|| cfg.data_dir.join("keystore"));
    let account = eth.account.as_deref().map(str::parse::<Address>).transpose().context("eth.account")?;
    let signer = lp_chain::keystore::load_or_create(&keystore, &eth.password_file, account)?;
    let controller = eth.controller.as_deref().map(str::parse::<Address>).transpose().context("eth.controller")?;
    let controller = lp_chain::networks::controller_for(cfg.network.as_str(), controller)?;
    let policy = tx_policy(eth)?;
    let client = ChainClient::connect(&eth.url, controller, Some(signer), policy).await?;
    std::fs::create_dir_all(&cfg.data_dir)?;
    let db = Db::open_in(&cfg.data_dir)?;
    db.check_chain_id(client.chain_id())?;
    Ok((client, db))
}

pub fn tx_policy(eth: &EthConfig) -> Result<TxPolicy> {
    Ok(TxPolicy {
        min_gas_price: eth.min_gas_price.parse().context("eth.min_gas_price")?,
        max_gas_price: eth.max_gas_price.parse().context("eth.max_gas_price")?,
        timeout: Duration::from_secs(eth.tx_timeout_secs),
        max_replacements: eth.max_tx_replacements,
        poll_interval: Duration::from_secs(eth.block_poll_interval_secs),
        ..Default::default()
    })
}

fn units(amount: &str, what: &str) -> Result<U256> {
    let parsed = parse_units(amount.trim(), 18).map_err(|e| anyhow!("{what} {amount:?} is not an amount: {e}"))?;
    Ok(parsed.get_absolute())
}

fn percent(p: f64, what: &str) -> Result<u32> {
    if !(0.0..=100.0).contains(&p) {
        bail!("{what} must be between 0 and 100, found {p}");
    }
    Ok((p * 10_000.0).round() as u32)
}

fn fmt18(v: U256) -> String {
    format_units(v, 18).unwrap_or_else(|_| v.to_string())
}

fn tx(receipt: &alloy::rpc::types::TransactionReceipt) -> Value {
    json!({ "tx": receipt.transaction_hash.to_string(), "block": receipt.block_number, "gas_used": receipt.gas_used })
}

async fn run(cfg: &Config, eth: &EthConfig, command: ChainCommand) -> Result<Value> {
    let (client, _) = connect(cfg, eth).await?;
    let me = client.address().context("no account")?;
    Ok(match command {
        ChainCommand::Status { address } => status_view(&client.status(address.unwrap_or(me)).await?),
        ChainCommand::Bond { amount, to } => {
            let r = client.bond(units(&amount, "amount")?, to.unwrap_or(me)).await?;
            json!({ "bonded": amount, "to": to.unwrap_or(me).to_string(), "receipt": tx(&r) })
        }
        ChainCommand::Unbond { amount } => {
            let u = client.unbond(units(&amount, "amount")?).await?;
            let lock = u.lock.map(|l| json!({ "id": l.id, "amount": format!("{} LPT", fmt18(l.amount)), "withdraw_round": l.withdraw_round }));
            json!({ "unbonded": amount, "lock": lock, "receipt": tx(&u.receipt) })
        }
        ChainCommand::Rebond { lock_id } => {
            json!({ "rebonded_lock": lock_id, "receipt": tx(&client.rebond(lock_id).await?) })
        }
        ChainCommand::WithdrawStake { lock_id } => {
            json!({ "withdrawn_lock": lock_id, "receipt": tx(&client.withdraw_stake(lock_id).await?) })
        }
        ChainCommand::Register { reward_cut, fee_share, service_uri, bond } => {
            let receipts = client
                .register(
                    units(&bond, "bond")?,
                    percent(reward_cut, "reward cut")?,
                    percent(fee_share, "fee share")?,
                    &service_uri,
                )
                .await?;
            json!({
                "registered": me.to_string(), "service_uri": service_uri, "reward_cut_percent": reward_cut,
                "fee_share_percent": fee_share, "bonded": bond,
                "receipts": receipts.iter().map(tx).collect::<Vec<_>>(),
                "note": "active from the next round",
            })
        }
        ChainCommand::Reward => json!({ "rewarded": me.to_string(), "receipt": tx(&client.reward().await?) }),
        ChainCommand::Fund { deposit, reserve } => {
            let r = client.fund(units(&deposit, "deposit")?, units(&reserve, "reserve")?).await?;
            json!({ "deposit_added_eth": deposit, "reserve_added_eth": reserve, "receipt": tx(&r) })
        }
        ChainCommand::Unlock => json!({ "receipt": tx(&client.unlock().await?) }),
        ChainCommand::Withdraw => json!({ "receipt": tx(&client.withdraw().await?) }),
        ChainCommand::WithdrawFees { amount, to } => {
            let amount = match amount {
                Some(a) => units(&a, "amount")?,
                None => client.status(me).await?.pending_fees,
            };
            let r = client.withdraw_fees(to.unwrap_or(me), amount).await?;
            json!({ "withdrawn_eth": fmt18(amount), "to": to.unwrap_or(me).to_string(), "receipt": tx(&r) })
        }
        ChainCommand::InitializeRound => json!({ "receipt": tx(&client.initialize_round().await?) }),
    })
}

/// The status with amounts as decimal LPT/ETH (18 decimals), not raw wei.
fn status_view(s: &lp_chain::client::NodeStatus) -> Value {
    let lpt = |v: U256| format!("{} LPT", fmt18(v));
    let eth = |v: U256| format!("{} ETH", fmt18(v));
    json!({
        "address": s.address.to_string(),
        "chain_id": s.chain_id,
        "block": s.block_number,
        "round": {
            "number": s.round.round, "initialized": s.round.initialized, "locked": s.round.locked,
            "start_block": s.round.start_block, "length_blocks": s.round.length, "pool_size": s.round.pool_size,
        },
        "orchestrator": {
            "registered": s.registered, "active": s.active, "service_uri": s.service_uri,
            "total_stake": lpt(s.total_stake), "reward_cut_percent": s.reward_cut as f64 / 10_000.0,
            "fee_share_percent": s.fee_share as f64 / 10_000.0, "last_reward_round": s.last_reward_round,
            "activation_round": s.activation_round, "deactivation_round": s.deactivation_round,
        },
        "delegator": {
            "status": s.delegator_status, "bonded": lpt(s.bonded_amount), "delegate": s.delegate.to_string(),
            "pending_stake": lpt(s.pending_stake), "pending_fees": eth(s.pending_fees),
        },
        "balances": { "eth": eth(s.eth_balance), "lpt": lpt(s.lpt_balance) },
        "tickets": { "deposit": eth(s.deposit), "reserve": eth(s.reserve), "withdraw_round": s.withdraw_round },
    })
}

/// Print a JSON value as indented `key: value` lines.
fn print_readable(value: &Value, indent: usize) {
    let pad = "  ".repeat(indent);
    match value {
        Value::Object(map) => {
            for (k, v) in map {
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
