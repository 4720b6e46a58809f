//! A local chain: anvil (from npm's `@foundry-rs/anvil`, installed by `make setup` under
//! `chain/contracts/node_modules`) as a child process, for `livepeer devnet` and tests.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// anvil's well-known development keys (mnemonic "test test … junk"), funded with 10000 ETH each.
pub const DEV_KEYS: [&str; 4] = [
    "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
    "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
];

/// Errors starting anvil.
#[derive(Debug, thiserror::Error)]
pub enum AnvilError {
    #[error("anvil not found (looked for {0}); run `make setup`, or set ANVIL_BIN")]
    NotFound(String),
    #[error("cannot start anvil: {0}")]
    Spawn(#[from] std::io::Error),
    #[error("anvil did not answer on {0} within 20 s")]
    NoAnswer(String),
    /// Its listening port could not be read from /proc (started on port 0): it is started again
    /// on a port chosen beforehand.
    #[error("the port anvil listens on could not be read from /proc")]
    PortUnknown,
}

/// How to run anvil.
#[derive(Debug, Clone, Default)]
pub struct AnvilOptions {
    /// Port to listen on; a free one when `None`.
    pub port: Option<u16>,
    /// Seconds between blocks; `None` mines a block per transaction (automine).
    pub block_time: Option<u64>,
    /// Chain id (anvil's default is 31337).
    pub chain_id: Option<u64>,
    /// Where anvil keeps its state across restarts (`--state`), if anywhere.
    pub state_file: Option<PathBuf>,
    /// Let anvil outlive this process (`livepeer devnet`); otherwise it ends with this process,
    /// however it ends (see [`Anvil`]).
    pub detached: bool,
}

/// A running anvil, stopped when dropped.
///
/// Unless [`AnvilOptions::detached`], anvil runs under a `sh` that holds the read end of a pipe
/// from this process and stops anvil when the pipe closes: when the handle is dropped, and also
/// when this process dies of a SIGKILL or a crash, which run no destructor (the kernel closes
/// the pipe). Linux's parent-death signal would do the same but needs unsafe code.
pub struct Anvil {
    child: Child,
    port: u16,
    /// The pipe `sh` waits on (`None` when detached).
    tie: Option<std::process::ChildStdin>,
}

/// `sh -c TIED anvil ARGS…`: anvil in the background and a reader of our pipe (saved as fd 3: a
/// background job's stdin is /dev/null) that stops anvil once the pipe closes; `sh` waits for
/// anvil, so it exits when anvil does (a start that fails is seen at once), and then stops the
/// reader, which so never signals a pid that is no longer anvil's.
const TIED: &str = r#"exec 3<&0 0</dev/null
"$0" "$@" & pid=$!
(read -r line <&3; kill "$pid") & reader=$!
wait "$pid"; status=$?
kill "$reader" 2>/dev/null
exit "$status""#;

/// The anvil binary: `$ANVIL_BIN`, else the one `make setup` installs, else `anvil` on PATH.
///
/// npm's `.bin/anvil` is a Node wrapper that starts the native binary as its child; killing the
/// wrapper would leave anvil running, so the native binary of the platform package is used.
pub fn anvil_bin() -> Result<PathBuf, AnvilError> {
    if let Ok(p) = std::env::var("ANVIL_BIN") {
        return Ok(PathBuf::from(p));
    }
    let packages = Path::new(env!("CARGO_MANIFEST_DIR")).join("contracts/node_modules/@foundry-rs");
    let native = std::fs::read_dir(&packages)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("anvil-"))
        .map(|e| e.path().join("bin/anvil"))
        .find(|p| p.exists());
    if let Some(native) = native {
        return Ok(native);
    }
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join("anvil"))
        .find(|p| p.exists());
    on_path.ok_or_else(|| AnvilError::NotFound(packages.join("anvil-<platform>/bin/anvil").display().to_string()))
}

/// A free loopback port below Linux's ephemeral range (32768+), so that no port-0 listener or
/// outgoing connection of a concurrent process takes it between this check and anvil's bind.
pub fn free_port() -> Result<u16, AnvilError> {
    use rand::Rng;
    for _ in 0..100 {
        let port = rand::rng().random_range(20_000..32_000);
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl Anvil {
    pub fn spawn(opts: AnvilOptions) -> Result<Anvil, AnvilError> {
        // On Linux, anvil binds port 0 and the kernel picks a free port as it binds, so no other
        // process can take it between a check and the bind; the port is then read from /proc.
        let port = match opts.port {
            Some(p) => p,
            None if cfg!(target_os = "linux") => 0,
            None => free_port()?,
        };
        let mut cmd = if opts.detached {
            Command::new(anvil_bin()?)
        } else {
            let mut sh = Command::new("sh");
            sh.arg("-c").arg(TIED).arg(anvil_bin()?);
            sh
        };
        cmd.args(["--host", "127.0.0.1", "--port", &port.to_string(), "--silent"]);
        if let Some(t) = opts.block_time {
            cmd.args(["--block-time", &t.to_string()]);
        }
        if let Some(id) = opts.chain_id {
            cmd.args(["--chain-id", &id.to_string()]);
        }
        if let Some(state) = &opts.state_file {
            cmd.arg("--state").arg(state);
        }
        let stdin = if opts.detached { Stdio::null() } else { Stdio::piped() };
        let mut child = cmd.stdin(stdin).stdout(Stdio::null()).stderr(Stdio::null()).spawn()?;
        let tie = child.stdin.take();
        let mut anvil = Anvil { child, port, tie };
        match anvil.wait_ready() {
            // No /proc to read the port from (a sandbox, another kernel): a port chosen first.
            Err(AnvilError::PortUnknown) => {
                drop(anvil);
                Anvil::spawn(AnvilOptions { port: Some(free_port()?), ..opts })
            }
            ready => ready.map(|()| anvil),
        }
    }

    fn wait_ready(&mut self) -> Result<(), AnvilError> {
        let started = Instant::now();
        let deadline = started + Duration::from_secs(20);
        while Instant::now() < deadline {
            if self.port == 0 {
                self.port = listening_port(self.child.id()).unwrap_or(0);
                if self.port == 0 && started.elapsed() > Duration::from_secs(3) {
                    return Err(AnvilError::PortUnknown);
                }
            }
            if self.port != 0 && std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return Ok(());
            }
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(AnvilError::NoAnswer(self.url()))
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The JSON-RPC URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Leave anvil running after this handle is gone (`livepeer devnet`); anvil's pid. Only a
    /// [`AnvilOptions::detached`] anvil outlives this process.
    pub fn into_pid(self) -> u32 {
        let pid = self.child.id();
        std::mem::forget(self);
        pid
    }
}

/// The port a process or one of its descendants (anvil under `sh`, or behind a wrapper given as
/// `ANVIL_BIN`) listens on over TCP: the socket among their open files that `/proc/net/tcp`
/// lists as listening.
fn listening_port(pid: u32) -> Option<u16> {
    let mut pids = vec![pid.to_string()];
    let mut i = 0;
    while let Some(p) = pids.get(i).cloned() {
        let children = std::fs::read_to_string(format!("/proc/{p}/task/{p}/children")).unwrap_or_default();
        pids.extend(children.split_whitespace().map(String::from));
        i += 1;
    }
    let sockets: Vec<String> = pids
        .iter()
        .flat_map(|p| std::fs::read_dir(format!("/proc/{p}/fd")).into_iter().flatten().flatten())
        .filter_map(|fd| std::fs::read_link(fd.path()).ok())
        .filter_map(|link| Some(link.to_str()?.strip_prefix("socket:[")?.strip_suffix(']')?.to_string()))
        .collect();
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    table.lines().skip(1).find_map(|line| {
        // sl, local address (hex ip:port), remote address, state (0A: listening), ..., inode.
        let fields: Vec<&str> = line.split_whitespace().collect();
        let listening = fields.get(3) == Some(&"0A") && sockets.iter().any(|s| Some(&s.as_str()) == fields.get(9));
        if !listening {
            return None;
        }
        u16::from_str_radix(fields[1].rsplit(':').next()?, 16).ok()
    })
}

impl Drop for Anvil {
    fn drop(&mut self) {
        match self.tie.take() {
            // Closing the pipe stops anvil; `sh` exits once anvil has.
            Some(tie) => drop(tie),
            None => {
                let _ = self.child.kill();
            }
        }
        let _ = self.child.wait();
    }
}
