//! `livepeer demo` as `make demo` runs it: on a devnet by default (anvil, registration, funding,
//! tickets, redemptions; `--serve` stays up and a signal stops it without leaving the chain
//! behind), and `--offchain`.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

/// A `livepeer demo` child with its stdout read line by line (stderr goes to a file).
struct Demo {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
    stderr: std::path::PathBuf,
}

impl Demo {
    fn start(out: &Path, args: &[&str]) -> Demo {
        let stderr = out.with_extension("stderr");
        let mut child = Command::new(livepeer_bin())
            .arg("demo")
            .args(args)
            .arg("--out")
            .arg(out)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Demo { child, lines, seen: Vec::new(), stderr }
    }

    fn output(&self) -> String {
        format!("{}\n--- stderr:\n{}", self.seen.join("\n"), std::fs::read_to_string(&self.stderr).unwrap_or_default())
    }

    /// The first line (from now) that contains `needle`, within `within`.
    fn wait_line(&mut self, needle: &str, within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    panic!("{needle:?} not printed within {within:?}:\n{}", self.output())
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = self.child.wait().unwrap();
                    panic!("the demo ended ({status}) without printing {needle:?}:\n{}", self.output())
                }
            }
        }
    }

    fn signal(&self, signal: &str) {
        let sent = Command::new("kill").args([signal, &self.child.id().to_string()]).status().unwrap();
        assert!(sent.success());
    }

    /// The exit code, within `within`.
    fn exit_code(&mut self, within: Duration) -> Option<i32> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            assert!(Instant::now() < deadline, "the demo did not exit within {within:?}:\n{}", self.output());
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Demo {
    /// SIGTERM first, so that the demo ends as a user would end it.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline && matches!(self.child.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether something listens on the port of `url` (`http://127.0.0.1:PORT`).
fn listening(url: &str) -> bool {
    let addr = url.trim_start_matches("http://").trim_end_matches('/');
    std::net::TcpStream::connect(addr).is_ok()
}

fn wei(v: &Value) -> u128 {
    v.as_str().unwrap_or_else(|| panic!("{v} is not a decimal string")).parse().unwrap()
}

#[test]
fn the_devnet_demo_pays_with_tickets_redeems_the_winners_and_serves_until_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    // 5 segments of about 5 tickets each, one in 5 winning: no winner to redeem in 4 runs of 1000.
    let models = common::test_models();
    let args = ["--serve", "--seconds", "10", "--profiles", "P360p30fps16x9,P144p30fps16x9", "--models", &models];
    let mut demo = Demo::start(&out, &args);
    demo.wait_line("The network stays up", Duration::from_secs(120));
    let metrics_line = demo.wait_line("The gateway: metrics", Duration::from_secs(5));
    let summary: Value = serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    let output = demo.output();
    assert!(output.contains("[ 5/5] segment 4"), "progress lines: {output}");
    assert!(output.contains("anvil_mine"), "the shortcuts are said: {output}");
    assert_eq!(summary["segments_transcoded"], 5, "{summary}");
    assert_eq!(summary["network"], "devnet", "{summary}");
    // The on-chain orchestrator serves the AI models too, priced, and `--serve` says how to ask.
    assert_eq!(summary["ai"]["llm_answer"], "one two three four", "{summary}");
    assert!(output.contains("AI requests (the demo's models"), "{output}");
    // `--serve` says where to publish over RTMP (and that address takes connections) and where
    // to watch.
    let rtmp = output.split_whitespace().find_map(|w| w.strip_prefix("rtmp://")?.strip_suffix("/live/mystream"));
    let rtmp = rtmp.unwrap_or_else(|| panic!("no RTMP URL: {output}"));
    assert!(std::net::TcpStream::connect(rtmp).is_ok(), "{rtmp}");
    assert!(output.contains("/player/mystream"), "{output}");

    // Tickets paid for every segment; every winner was redeemed, for its face value, and the
    // orchestrator's pending fees on the chain grew by exactly that.
    let sent = summary["tickets_sent"].as_u64().unwrap();
    let winning = summary["winning_tickets"].as_u64().unwrap();
    assert!(sent >= 5 && winning <= sent, "{summary}");
    // The AI requests were paid up front, each by its own ticket sender (no credit yet): the
    // upscale's fee just under 2 tickets' EV is 2 tickets, the chat's exactly 1 EV is 1. The
    // orchestrator took them (`tickets_received` below counts them).
    assert_eq!(summary["ai_tickets_sent"].as_u64(), Some(3), "{summary}");
    assert_eq!(summary["tickets_received"].as_u64(), Some(sent), "{summary}");
    assert_eq!(summary["tickets_redeemed"].as_u64(), Some(winning), "{summary}");
    let face = wei(&summary["ticket_face_value_wei"]);
    assert_eq!(wei(&summary["redeemed_wei"]), face * u128::from(winning), "{summary}");
    let fees = wei(&summary["orchestrator_fees_wei_after"]) - wei(&summary["orchestrator_fees_wei_before"]);
    assert_eq!(fees, wei(&summary["redeemed_wei"]), "{summary}");
    let p = summary["ticket_win_probability"].as_f64().unwrap();
    assert!((0.19..0.21).contains(&p), "{summary}");

    // The HLS output plays.
    let p = ffprobe(&out.join("hls/demo/P360p30fps16x9.m3u8"));
    assert_eq!((p.video().width, p.video().height, p.video().frames), (640, 360, 300));

    // It stays up: the chain answers and the gateway's admin listener serves the payments'
    // metrics.
    let rpc = summary["chain_rpc"].as_str().unwrap().to_string();
    assert!(listening(&rpc));
    let metrics_url = metrics_line.split_whitespace().find(|w| w.starts_with("http://")).unwrap();
    let metrics = http().get(metrics_url.trim_end_matches(',')).send().unwrap().text().unwrap();
    assert_eq!(metric(&metrics, "livepeer_tickets_sent") as u64, sent);
    // Every metric the Grafana dashboard in deploy/ charts is one this running node exports
    // (a histogram by its buckets), so no panel of a fresh node says "No data" for a typo.
    let dashboard: Value = serde_json::from_str(include_str!("../deploy/grafana-dashboard.json")).unwrap();
    let panels = dashboard["panels"].as_array().expect("panels");
    let exprs: Vec<&str> =
        panels.iter().flat_map(|p| p["targets"].as_array().unwrap()).map(|t| t["expr"].as_str().unwrap()).collect();
    let charted: std::collections::BTreeSet<String> = exprs
        .iter()
        .flat_map(|e| {
            e.match_indices("livepeer_")
                .map(|(at, _)| e[at..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect())
        })
        .collect();
    assert!(charted.len() >= 20, "{charted:?}");
    let exported =
        |name: &str| metrics.lines().any(|l| l.strip_prefix(name).is_some_and(|rest| rest.starts_with([' ', '{'])));
    let missing: Vec<&String> = charted.iter().filter(|name| !exported(name)).collect();
    assert!(missing.is_empty(), "the dashboard charts {missing:?}, which the node does not export:\n{metrics}");

    // SIGTERM stops it, and anvil with it.
    demo.signal("-TERM");
    assert_eq!(demo.exit_code(Duration::from_secs(30)), Some(0), "{}", demo.output());
    assert!(!listening(&rpc), "anvil outlived the demo");
}

/// A short devnet demo writing under `dir`, once its chain answers, and the chain's RPC URL.
fn demo_with_its_chain_up(dir: &Path) -> (Demo, String) {
    let mut demo = Demo::start(&dir.join("out"), &["--seconds", "2", "--profiles", "P144p30fps16x9"]);
    let line = demo.wait_line("chain up at", Duration::from_secs(60));
    let rpc = line.split_whitespace().find(|w| w.starts_with("http://")).unwrap().trim_end_matches(',').to_string();
    assert!(listening(&rpc), "{line}");
    (demo, rpc)
}

#[test]
fn an_interrupted_devnet_demo_leaves_no_chain_behind() {
    let dir = tempfile::tempdir().unwrap();
    let (mut demo, rpc) = demo_with_its_chain_up(dir.path());
    demo.signal("-INT");
    assert_eq!(demo.exit_code(Duration::from_secs(30)), Some(130), "{}", demo.output());
    assert!(!listening(&rpc), "anvil outlived the demo");
}

/// A SIGKILL runs no cleanup in the demo, and anvil still ends with it.
#[test]
fn a_killed_devnet_demo_leaves_no_chain_behind() {
    let dir = tempfile::tempdir().unwrap();
    let (mut demo, rpc) = demo_with_its_chain_up(dir.path());
    demo.signal("-KILL");
    assert_eq!(demo.exit_code(Duration::from_secs(10)), None, "killed by the signal");
    let deadline = Instant::now() + Duration::from_secs(10);
    while listening(&rpc) {
        assert!(Instant::now() < deadline, "anvil outlived the killed demo");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn the_offchain_demo_writes_playable_hls_and_a_summary() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(livepeer_bin())
        .args(["demo", "--offchain", "--seconds", "6", "--profiles", "P360p30fps16x9,P144p30fps16x9", "--out"])
        .arg(dir.path())
        .arg("--models")
        .arg(common::test_models())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("[ 3/3] segment 2"), "progress lines: {stdout}");
    let summary: Value = serde_json::from_slice(&std::fs::read(dir.path().join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["segments_pushed"], 3);
    assert_eq!(summary["segments_transcoded"], 3);
    assert!(summary.get("tickets_sent").is_none(), "no payments offchain: {summary}");
    let renditions = summary["renditions"].as_array().unwrap();
    assert_eq!(renditions.len(), 2);
    assert!(renditions.iter().any(|r| r["name"] == "P144p30fps16x9" && r["width"] == 256 && r["height"] == 144));
    assert!(summary["latency_ms_p50"].as_u64().unwrap() > 0);
    assert!(summary["latency_ms_p95"].as_u64().unwrap() >= summary["latency_ms_p50"].as_u64().unwrap());
    assert!(summary["realtime_ratio"].as_f64().unwrap() > 0.0);

    // The AI requests: a frame of the stream upscaled ×2 (written out), and the tiny model's
    // greedy answer.
    let ai = &summary["ai"];
    assert_eq!(
        (ai["upscale_input"].as_str(), ai["upscale_output"].as_str()),
        (Some("320x180"), Some("640x360")),
        "{summary}"
    );
    let upscaled = image::open(dir.path().join("ai/upscaled.png")).unwrap();
    assert_eq!((upscaled.width(), upscaled.height()), (640, 360));
    assert_eq!(ai["llm_answer"], "one two three four", "{summary}");
    assert_eq!(ai["llm_completion_tokens"], 5, "{summary}");

    // The HLS output plays: ffprobe reads the master playlist through to the segments.
    let media = dir.path().join("hls/demo/P360p30fps16x9.m3u8");
    let p = ffprobe(&media);
    assert_eq!((p.video().width, p.video().height), (640, 360));
    assert_eq!(p.video().frames, 180);
    let master = Command::new("ffprobe")
        .args(["-v", "error", "-show_entries", "stream=width,height", "-of", "csv=p=0"])
        .arg(dir.path().join("hls/demo.m3u8"))
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&master.stdout);
    assert!(master.status.success() && listing.contains("640,360") && listing.contains("1280,720"), "{listing}");
}
