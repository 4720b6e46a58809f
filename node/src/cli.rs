//! The command line: `livepeer <role> -c FILE`, `livepeer run`, `livepeer demo`.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use lp_config::Config;

use crate::exit::{EX_USAGE, failure_status};
use crate::node::{self, Roles};
use crate::{bench, chain_cli, demo, devnet, telemetry};

/// livepeer-rs: a Livepeer node — gateway, orchestrator, transcoder and AI worker in one binary.
///
/// Each role reads a TOML file (see deploy/ for documented examples). Environment variables
/// override keys: LIVEPEER_<KEY> for top-level keys, LIVEPEER_<SECTION>__<KEY> for a section's
/// keys (e.g. LIVEPEER_GATEWAY__HTTP_ADDR=0.0.0.0:9935). An invalid configuration lists every
/// problem and exits with status 64 before any port is bound.
#[derive(Debug, Parser)]
#[command(name = "livepeer", version, about, long_about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gateway: take live segments over HTTP, have orchestrators transcode them, serve HLS.
    Gateway(RoleArgs),
    /// Run the orchestrator: sell transcoding to gateways, on local or remote transcoders.
    Orchestrator(RoleArgs),
    /// Run a transcoder that connects to an orchestrator and works for it.
    Transcoder(RoleArgs),
    /// Run an AI worker that connects to an orchestrator and runs its AI requests ([ai_worker]).
    ///
    /// It loads ONNX Runtime and its warm models at start (a failure is an error and exit),
    /// then dials the orchestrator's /transcoder WebSocket with the shared secret, registering
    /// each model it serves with its capacity. The orchestrator sends it requests for the
    /// models its [[orchestrator.models]] lists (with or without a local path); a job whose
    /// worker disconnects goes to another worker serving the model. See deploy/ai-worker.toml.
    #[command(name = "ai-worker")]
    AiWorker(RoleArgs),
    /// Run every role that has a section in the config, in one process.
    Run(RoleArgs),
    /// The main job: a whole local network in one process (a devnet chain, an orchestrator that
    /// registers, a gateway that pays it with tickets), a generated 20-second stream pushed
    /// through it, the winning tickets redeemed, HLS written to --out, and a summary.
    /// --offchain: the same without a chain.
    Demo(demo::DemoArgs),
    /// Start a local chain (anvil) with our Livepeer contracts, short rounds and funded dev
    /// accounts, and write configs that use it.
    Devnet(devnet::DevnetArgs),
    /// Size this machine: how many live streams it transcodes in real time, for max_sessions =
    /// "auto".
    ///
    /// As go-livepeer's livepeer_bench does: K = 1, 2, 3 … live streams of a 1080p30 segment
    /// into its 720p/480p/360p/240p ladder through the orchestrator's own transcoder (the
    /// config's x264_preset and capacity), the real-time duration ratio per K, and the largest K
    /// at a ratio of at most 0.8, written to <data_dir>/bench.json. --baseline FFMPEG sweeps an
    /// FFmpeg CLI alongside. Run with a remote transcoder's config on its machine, the figure
    /// is what that transcoder reports to its orchestrator.
    Bench(bench::BenchArgs),
    /// The operator's on-chain actions: status, bond, unbond, rebond, withdraw-stake, register,
    /// reward, fund, unlock, withdraw, withdraw-fees, initialize-round.
    Chain(chain_cli::ChainArgs),
}

#[derive(Debug, Args)]
pub struct RoleArgs {
    /// The TOML config file. Without it, defaults plus LIVEPEER_* environment overrides.
    #[arg(short, long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Print the effective config (file + defaults + environment) as TOML and exit.
    #[arg(long)]
    pub dump_config: bool,
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Gateway(a) => run_role(a, Some("gateway")),
        Command::Orchestrator(a) => run_role(a, Some("orchestrator")),
        Command::Transcoder(a) => run_role(a, Some("transcoder")),
        Command::AiWorker(a) => run_role(a, Some("ai-worker")),
        Command::Run(a) => run_role(a, None),
        Command::Demo(a) => demo::main(a),
        Command::Bench(a) => bench::main(a),
        Command::Devnet(a) => devnet::main(a),
        Command::Chain(a) => chain_cli::main(a),
    }
}

fn usage_error(problems: &[String]) -> ExitCode {
    eprintln!(
        "error: invalid configuration ({} problem{}):",
        problems.len(),
        if problems.len() == 1 { "" } else { "s" }
    );
    for p in problems {
        eprintln!("  - {p}");
    }
    ExitCode::from(EX_USAGE)
}

fn run_role(args: RoleArgs, role: Option<&str>) -> ExitCode {
    let env = Config::env_overrides();
    let (cfg, errors) = Config::load_all(args.config.as_deref(), &env);
    let mut problems: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
    let Some(cfg) = cfg else { return usage_error(&problems) };
    let all = Roles::from_config(&cfg);
    let roles = match role {
        None => all,
        Some("gateway") => Roles { gateway: true, ..Default::default() },
        Some("orchestrator") => Roles { orchestrator: true, ..Default::default() },
        Some("ai-worker") => Roles { ai_worker: true, ..Default::default() },
        _ => Roles { transcoder: true, ..Default::default() },
    };
    if !problems.is_empty() {
        // Report what the files the config points at (profiles, secrets) get wrong as well.
        problems.extend(node::prepare(&cfg, roles).err().unwrap_or_default().iter().map(ToString::to_string));
        return usage_error(&problems);
    }
    for name in roles.names() {
        if !all.names().contains(&name) {
            let section = name.replace('-', "_");
            problems.push(format!("[{section}]: section missing; `livepeer {name}` needs it (see deploy/{name}.toml)"));
        }
    }
    if roles.names().is_empty() {
        problems.push("no role section ([gateway], [orchestrator], [transcoder] or [ai_worker]) in the config".into());
    }
    if !problems.is_empty() {
        return usage_error(&problems);
    }
    if args.dump_config {
        print!("{}", cfg.to_toml());
        return ExitCode::SUCCESS;
    }
    let prepared = match node::prepare(&cfg, roles) {
        Ok(p) => p,
        Err(problems) => return usage_error(&problems.iter().map(ToString::to_string).collect::<Vec<_>>()),
    };
    // Held until the process exits.
    let _lock = match lock_data_dir(&cfg.data_dir) {
        Ok(lock) => lock,
        Err(why) => {
            eprintln!("error: {why}");
            return ExitCode::from(EX_USAGE);
        }
    };
    telemetry::init_logging(&cfg.log);
    let result = actix_web::rt::System::new().block_on(async move {
        let running = node::start(&cfg, roles, prepared).await?;
        running.wait().await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            failure_status(&e)
        }
    }
}

/// Take `<data_dir>/LOCK` for as long as the returned file is open: two nodes on one data_dir
/// would overwrite each other's database, keys and listen.json. The lock is the operating
/// system's (flock), so a crashed node leaves nothing stale behind; the file holds the pid.
fn lock_data_dir(dir: &Path) -> Result<File, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create data_dir {}: {e}", dir.display()))?;
    let path = dir.join("LOCK");
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            let holder = std::fs::read_to_string(&path).ok().map(|pid| pid.trim().to_string());
            let holder = holder.filter(|pid| !pid.is_empty()).map(|pid| format!(" (pid {pid})")).unwrap_or_default();
            return Err(format!(
                "data_dir {} is in use: another livepeer node{holder} holds {}; give each node its own data_dir",
                dir.display(),
                path.display()
            ));
        }
        Err(TryLockError::Error(e)) => return Err(format!("cannot lock {}: {e}", path.display())),
    }
    let _ = file.set_len(0).and_then(|()| writeln!(file, "{}", std::process::id()));
    Ok(file)
}
