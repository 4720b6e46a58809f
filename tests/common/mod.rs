//! Helpers for the end-to-end tests: real `livepeer` processes on loopback ports (port 0, the
//! bound addresses read from `<data_dir>/listen.json`), media made with the ffmpeg CLI, and
//! ffprobe to check what comes back.

#![allow(dead_code)]

use std::io::{BufRead, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use lp_pipelines::Profile;
use lp_wire::{OrchestratorInfo, OrchestratorRequest, SegData};
use serde_bytes::ByteBuf;
use serde_json::Value;

/// The `livepeer` binary: the one cargo built for these tests, or `LP_TEST_BIN` (say, a release
/// build for the memory benchmark).
pub fn livepeer_bin() -> PathBuf {
    std::env::var_os("LP_TEST_BIN").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_livepeer")))
}

/// The directory of the models `make setup` makes (`LP_TEST_MODELS`, set by .cargo/config.toml).
pub fn test_models() -> String {
    std::env::var("LP_TEST_MODELS").expect("LP_TEST_MODELS (.cargo/config.toml)")
}

/// A model of [`test_models`], by its path there.
pub fn model(name: &str) -> String {
    PathBuf::from(test_models()).join(name).display().to_string()
}

/// An orchestrator that transcodes itself (ultrafast), every listener on a free port.
pub const ORCHESTRATOR: &str = r#"
[orchestrator]
service_addr = "127.0.0.1:0"
x264_preset = "ultrafast"
[admin]
addr = "127.0.0.1:0"
"#;

/// A gateway and an orchestrator with a local transcoder in one process (`livepeer run`), all on
/// port 0, rendering P144p30fps16x9 with x264 ultrafast; `extra` goes into `[gateway]`.
pub fn all_in_one(extra: &str) -> String {
    format!(
        "[gateway]\nhttp_addr = \"127.0.0.1:0\"\nrtmp_addr = \"127.0.0.1:0\"\nprofiles = [\"P144p30fps16x9\"]\n{extra}\n\
         [orchestrator]\nservice_addr = \"127.0.0.1:0\"\ncapacity = 2\nx264_preset = \"ultrafast\"\n\
         [admin]\naddr = \"127.0.0.1:0\"\n"
    )
}

/// A running `livepeer` process, killed when dropped.
pub struct Node {
    pub child: Child,
    pub dir: tempfile::TempDir,
    pub listen: Value,
    role: String,
}

impl Node {
    /// Start `livepeer <args…> -c <config>`; `config` is TOML without `data_dir`, which is set to
    /// a fresh temporary directory. Waits until the node has bound its listeners.
    pub fn start(role: &str, config: &str) -> Node {
        Node::start_with_data(role, config, |_| {})
    }

    /// [`Node::start`], `prepare` first given the (created) data directory, for files the node
    /// reads at start.
    pub fn start_with_data(role: &str, config: &str, prepare: impl FnOnce(&Path)) -> Node {
        let dir = tempfile::tempdir().expect("tempdir");
        let text = format!("data_dir = {:?}\n{config}", dir.path().join("data").display().to_string());
        std::fs::write(dir.path().join("config.toml"), text).unwrap();
        std::fs::create_dir_all(dir.path().join("data")).unwrap();
        prepare(&dir.path().join("data"));
        let child = spawn(role, dir.path());
        let mut node = Node { child, dir, listen: Value::Null, role: role.to_string() };
        if role != "transcoder" {
            node.wait_listening();
        }
        node
    }

    /// The node's config file.
    pub fn config(&self) -> PathBuf {
        self.dir.path().join("config.toml")
    }

    /// Start the node again on the same config and data (after [`Node::kill`]); its log goes on.
    pub fn restart(&mut self) {
        self.kill();
        let _ = std::fs::remove_file(self.dir.path().join("data").join("listen.json"));
        self.child = spawn(&self.role, self.dir.path());
        if self.role != "transcoder" {
            self.wait_listening();
        }
    }

    fn wait_listening(&mut self) {
        let file = self.dir.path().join("data").join("listen.json");
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Some(v) = std::fs::read_to_string(&file).ok().and_then(|t| serde_json::from_str(&t).ok()) {
                self.listen = v;
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("livepeer exited early ({status}):\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("livepeer did not start listening:\n{}", self.log());
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("node.log")).unwrap_or_default()
    }

    pub fn gateway(&self) -> String {
        format!("http://{}", self.listen["gateway"].as_str().expect("gateway address"))
    }

    pub fn orchestrator_uri(&self) -> String {
        self.listen["orchestrator_uri"].as_str().expect("orchestrator uri").to_string()
    }

    pub fn admin(&self) -> String {
        format!("http://{}", self.listen["admin"].as_str().expect("admin address"))
    }

    pub fn status(&self) -> Value {
        http().get(format!("{}/status", self.admin())).send().unwrap().json().unwrap()
    }

    pub fn metrics(&self) -> String {
        http().get(format!("{}/metrics", self.admin())).send().unwrap().text().unwrap()
    }

    /// Wait until the orchestrator has `n` transcoders registered.
    pub fn wait_transcoders(&self, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            let count = self.status()["orchestrator"]["transcoders"].as_array().map(|a| a.len()).unwrap_or(0);
            if count == n {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("orchestrator never had {n} transcoders:\n{}", self.log());
    }

    /// SIGKILL, as a crash would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(role: &str, dir: &Path) -> Child {
    let log = std::fs::OpenOptions::new().create(true).append(true).open(dir.join("node.log")).unwrap();
    Command::new(livepeer_bin())
        .args([role, "-c"])
        .arg(dir.join("config.toml"))
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawn livepeer")
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

pub fn http() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(120))
        .danger_accept_invalid_certs(true)
        .build()
        .unwrap()
}

/// A metric's value in Prometheus text (the first sample whose name and labels start with
/// `series`), or 0 when absent.
pub fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| {
            let (name, value) = l.rsplit_once(' ')?;
            (name == series).then(|| value.parse().ok())?
        })
        .unwrap_or(0.0)
}

#[allow(unused_imports)] // Not every test binary uses every helper.
pub use lp_testkit::media::{ProbeInfo, ffprobe, ffprobe_bytes, make_segments};
#[allow(unused_imports)]
pub use lp_testkit::multipart::multipart_parts;

/// PUT one segment with `Accept: multipart/mixed`; answers (status, content type, body).
pub fn push(gateway: &str, stream: &str, name: &str, body: Vec<u8>) -> (u16, String, Vec<u8>) {
    let resp = http()
        .put(format!("{gateway}/live/{stream}/{name}"))
        .header("Accept", "multipart/mixed")
        .body(body)
        .send()
        .expect("push");
    let status = resp.status().as_u16();
    let ct = resp.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    (status, ct, resp.bytes().unwrap().to_vec())
}

/// Push `segments` of `stream` from another thread, as a live source would; joined, the answers
/// in order.
pub fn push_in_background(
    gateway: &str,
    stream: &'static str,
    segments: Vec<Vec<u8>>,
) -> std::thread::JoinHandle<Vec<(u16, String, Vec<u8>)>> {
    let gateway = gateway.to_string();
    std::thread::spawn(move || {
        segments.into_iter().enumerate().map(|(seq, seg)| push(&gateway, stream, &format!("{seq}.ts"), seg)).collect()
    })
}

/// Wait until `node`'s metric `name` is at least `value`, for at most 60 s (the caller's
/// assertions say what should have happened).
pub fn wait_metric(node: &Node, name: &str, value: f64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while metric(&node.metrics(), name) < value && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Terms (with an auth token) from an orchestrator, as any client on the network can get them.
pub fn wire_token(uri: &str) -> OrchestratorInfo {
    let body = lp_wire::encode(&OrchestratorRequest::default());
    let resp = http().post(format!("{uri}/getOrchestrator")).body(body).send().unwrap();
    assert_eq!(resp.status(), 200);
    lp_wire::decode(&resp.bytes().unwrap()).unwrap()
}

/// The `SegData` a gateway sends for `data`, with the token of `info`.
pub fn wire_seg(info: &OrchestratorInfo, data: &[u8], profiles: Vec<Profile>) -> SegData {
    SegData {
        manifest_id: ByteBuf::from(b"attack".to_vec()),
        seq: 1,
        hash: ByteBuf::from(blake3::hash(data).as_bytes().to_vec()),
        sig: ByteBuf::new(),
        duration: 1000,
        capabilities: None,
        auth_token: info.auth_token.clone(),
        profiles: profiles.iter().map(Into::into).collect(),
        format: lp_wire::Container::MpegTs,
        segment_parameters: None,
        force_session_reinit: false,
        timeout_ms: 0,
    }
}

/// POST /segment with the given profiles, as a hostile gateway would; the status and the answer.
pub fn wire_submit(info: &OrchestratorInfo, data: &[u8], profiles: Vec<Profile>) -> (u16, Vec<u8>) {
    wire_post(&info.transcoder, &lp_wire::encode(&wire_seg(info, data, profiles)), data)
}

/// POST /segment with `seg` (MessagePack) as the `Livepeer-Segment` header.
pub fn wire_post(transcoder: &str, seg: &[u8], data: &[u8]) -> (u16, Vec<u8>) {
    let header = base64::engine::general_purpose::STANDARD.encode(seg);
    let resp = http()
        .post(format!("{transcoder}/segment"))
        .header("Livepeer-Segment", header)
        .body(data.to_vec())
        .send()
        .unwrap();
    (resp.status().as_u16(), resp.bytes().unwrap().to_vec())
}

/// Poll `what` until it answers `Some`, for at most 30 s.
pub fn eventually<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "{what}: not within 30 s");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Wait (at most 30 s) until `node` has logged `needle`.
pub fn wait_log(node: &Node, needle: &str) {
    eventually(&format!("{needle:?} in the log of {}", node.dir.path().display()), || {
        node.log().contains(needle).then_some(())
    });
}

/// Write a shared-secret file `name` holding `value` under `dir`; its path.
pub fn write_secret(dir: &Path, name: &str, value: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, value).unwrap();
    path.display().to_string()
}

/// Stops a `livepeer devnet` (anvil runs detached) when dropped, pass or fail; drop it before
/// its directory is deleted.
pub struct Devnet(pub PathBuf);

impl Drop for Devnet {
    fn drop(&mut self) {
        let _ = Command::new(livepeer_bin()).args(["devnet", "--stop", "--dir"]).arg(&self.0).output();
    }
}

/// `livepeer chain --json -c <cfg> <args…>`.
pub fn chain(cfg: &Path, args: &[&str]) -> std::process::Output {
    Command::new(livepeer_bin()).args(["chain", "--json", "-c"]).arg(cfg).args(args).output().unwrap()
}

/// [`chain`], which must succeed; its JSON.
pub fn chain_ok(cfg: &Path, args: &[&str]) -> Value {
    let out = chain(cfg, args);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "chain {args:?}: {stdout}{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

/// A devnet config without its `data_dir` line ([`Node::start`] sets one), plus `extra`.
pub fn node_config(devnet_config: &Path, extra: &str) -> String {
    let text = std::fs::read_to_string(devnet_config).unwrap();
    let kept: Vec<&str> = text.lines().filter(|l| !l.starts_with("data_dir")).collect();
    format!("{}\n{extra}", kept.join("\n"))
}

/// An auth webhook on loopback (a plain HTTP/1.1 server on a thread): answers every POST with
/// the current `answer` (status, body) and records the request bodies.
pub struct Webhook {
    pub url: String,
    pub answer: Arc<Mutex<(u16, String)>>,
    pub bodies: Arc<Mutex<Vec<String>>>,
}

impl Webhook {
    pub fn start(status: u16, body: &str) -> Webhook {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/auth", listener.local_addr().unwrap());
        let answer = Arc::new(Mutex::new((status, body.to_string())));
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let (a, b) = (answer.clone(), bodies.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let mut reader = std::io::BufReader::new(conn.try_clone().unwrap());
                let mut length = 0;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap_or(0);
                    }
                }
                let mut body = vec![0; length];
                let _ = reader.read_exact(&mut body);
                b.lock().unwrap().push(String::from_utf8_lossy(&body).into_owned());
                let (status, text) = a.lock().unwrap().clone();
                let mut conn = conn;
                let _ = write!(
                    conn,
                    "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
                    text.len()
                );
            }
        });
        Webhook { url, answer, bodies }
    }
}
