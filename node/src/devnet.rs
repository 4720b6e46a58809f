//! `livepeer devnet`: a local chain for development. Starts anvil (detached, one block a second),
//! deploys and wires our contracts with short rounds, funds the dev accounts with LPT (they have
//! ETH), puts one dev account in an orchestrator keystore and one in a gateway keystore, and
//! writes config files that point at it. Running it again while that chain is up changes
//! nothing; `--stop` ends it.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use alloy::primitives::{Address, U256};
use alloy::providers::ext::AnvilApi;
use alloy::signers::local::PrivateKeySigner;
use anyhow::{Context as _, Result, bail};
use clap::Args;
use lp_chain::anvil::{Anvil, AnvilOptions, DEV_KEYS};
use lp_chain::client::ChainClient;
use lp_chain::devnet::{DevnetDeployment, DevnetParams};
use lp_chain::tx::TxPolicy;
use serde::{Deserialize, Serialize};

#[derive(Debug, Args)]
pub struct DevnetArgs {
    /// Where the devnet keeps its state, keystores and generated configs.
    #[arg(long, value_name = "DIR", default_value = ".livepeer-devnet")]
    pub dir: PathBuf,
    /// JSON-RPC port of the chain.
    #[arg(long, default_value_t = 8545)]
    pub port: u16,
    /// Blocks per round.
    #[arg(long, default_value_t = 10)]
    pub round_length: u64,
    /// Seconds between blocks; 0 mines a block only for each transaction (rounds then move only
    /// when blocks are mined, e.g. with anvil's `anvil_mine`: scripted runs and tests).
    #[arg(long, default_value_t = 1)]
    pub block_time: u64,
    /// Stop the devnet started from DIR.
    #[arg(long)]
    pub stop: bool,
}

/// What `livepeer devnet` remembers in `<dir>/devnet.json`.
#[derive(Debug, Serialize, Deserialize)]
struct DevnetState {
    rpc_url: String,
    anvil_pid: u32,
    deployment: DevnetDeployment,
}

const LPT_PER_ACCOUNT: u64 = 10_000;
const PASSWORD: &str = "devnet-password";

pub fn main(args: DevnetArgs) -> ExitCode {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a tokio runtime");
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn state_path(dir: &Path) -> PathBuf {
    dir.join("devnet.json")
}

fn read_state(dir: &Path) -> Option<DevnetState> {
    serde_json::from_slice(&fs::read(state_path(dir)).ok()?).ok()
}

async fn run(args: DevnetArgs) -> Result<()> {
    let dir = args.dir.clone();
    if args.stop {
        let Some(state) = read_state(&dir) else { bail!("no devnet state in {}", dir.display()) };
        let _ = std::process::Command::new("kill").arg(state.anvil_pid.to_string()).status();
        fs::remove_file(state_path(&dir))?;
        println!("devnet at {} stopped", state.rpc_url);
        return Ok(());
    }
    if let Some(state) = read_state(&dir)
        && lp_chain::devnet::is_deployed(&state.rpc_url, &state.deployment).await
    {
        println!("devnet already running at {} (controller {})", state.rpc_url, state.deployment.contracts.controller);
        print_configs(&dir);
        return Ok(());
    }
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let dir = fs::canonicalize(&dir)?;
    println!("starting anvil on 127.0.0.1:{} ({})…", args.port, mining(args.block_time));
    // Deploy with a block per transaction, then (unless --block-time 0) mine on a timer so
    // that rounds advance.
    let anvil = Anvil::spawn(AnvilOptions { port: Some(args.port), detached: true, ..Default::default() })?;
    let rpc_url = anvil.url();
    let params = DevnetParams { round_length: args.round_length, ..Default::default() };
    let accounts: Vec<Address> =
        DEV_KEYS.iter().map(|k| k.parse::<PrivateKeySigner>().map(|s| s.address())).collect::<Result<_, _>>()?;
    let lpt = U256::from(LPT_PER_ACCOUNT) * U256::from(10u64).pow(U256::from(18u64));
    let fund: Vec<(Address, U256)> = accounts.iter().map(|a| (*a, lpt)).collect();
    println!("deploying the contracts (rounds of {} blocks)…", args.round_length);
    let deployment = lp_chain::devnet::deploy(&rpc_url, DEV_KEYS[0], &params, &fund).await?;
    // Start the devnet at the beginning of a fresh, initialized round: the most time for the
    // first commands before the round needs initializing again.
    let provider = lp_chain::client::http_provider(&rpc_url)?;
    let deployer: PrivateKeySigner = DEV_KEYS[0].parse()?;
    let client =
        ChainClient::connect(&rpc_url, deployment.contracts.controller, Some(deployer), TxPolicy::default()).await?;
    let round = client.current_round().await?;
    let head = client.block_number().await?;
    let next_round_start = round.start_block + round.length;
    provider.anvil_mine(Some(next_round_start.saturating_sub(head)), None).await.context("mining to the next round")?;
    client.initialize_round().await?;
    if args.block_time > 0 {
        provider.anvil_set_interval_mining(args.block_time).await.context("switching anvil to interval mining")?;
    }
    let anvil_pid = anvil.into_pid();

    let password_file = dir.join("password.txt");
    fs::write(&password_file, PASSWORD)?;
    for (role, key) in [("orchestrator", DEV_KEYS[1]), ("gateway", DEV_KEYS[2])] {
        let keystore = dir.join("keystores").join(role);
        if keystore.exists() {
            fs::remove_dir_all(&keystore)?;
        }
        lp_chain::keystore::import(&keystore, &password_file, key)?;
        let config = format!(
            "# Written by `livepeer devnet`: the {role} on the local chain.\n\
             network = \"devnet\"\n\
             data_dir = {data_dir:?}\n\n\
             [eth]\n\
             url = {rpc_url:?}\n\
             controller = \"{controller}\"\n\
             keystore = {keystore:?}\n\
             password_file = {password:?}\n\
             block_poll_interval_secs = 1\n\
             initialize_round = true\n\
             initialize_round_max_delay_secs = 2\n",
            data_dir = dir.join(format!("data-{role}")).display().to_string(),
            controller = deployment.contracts.controller,
            keystore = keystore.display().to_string(),
            password = password_file.display().to_string(),
        );
        fs::write(dir.join(format!("{role}.toml")), config)?;
    }
    let state = DevnetState { rpc_url: rpc_url.clone(), anvil_pid, deployment };
    fs::write(state_path(&dir), serde_json::to_vec_pretty(&state)?)?;
    println!(
        "devnet up at {rpc_url} (chain id {}), controller {}",
        state.deployment.chain_id, state.deployment.contracts.controller
    );
    println!("dev accounts funded with {LPT_PER_ACCOUNT} LPT each:");
    for (i, a) in accounts.iter().enumerate() {
        println!(
            "  {a}{}",
            match i {
                1 => "  (orchestrator keystore)",
                2 => "  (gateway keystore)",
                _ => "",
            }
        );
    }
    print_configs(&dir);
    Ok(())
}

fn print_configs(dir: &Path) {
    println!("configs: {} and {}", dir.join("orchestrator.toml").display(), dir.join("gateway.toml").display());
    println!("try: livepeer chain -c {} status", dir.join("orchestrator.toml").display());
}

fn mining(block_time: u64) -> String {
    match block_time {
        0 => "a block per transaction".into(),
        secs => format!("a block every {secs} s"),
    }
}
