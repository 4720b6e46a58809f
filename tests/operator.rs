//! What an operator meets first: a wrong URL scheme, a gateway with nothing to send to, two
//! nodes on one data_dir, logs in a file, a transcoder's health, HEAD requests from players.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// A transcoder's addresses: `Node::start` does not wait for them, since a transcoder need not
/// reach its orchestrator to start.
fn wait_listening(node: &mut Node) {
    let file = node.dir.path().join("data").join("listen.json");
    node.listen = eventually("listen.json", || std::fs::read_to_string(&file).ok()?.parse().ok());
}

fn transcoder(orchestrator: &str, secret_file: &str) -> Node {
    let mut t = Node::start(
        "transcoder",
        &format!(
            "[transcoder]\norchestrator = {orchestrator:?}\nsecret_file = {secret_file:?}\n\
             x264_preset = \"ultrafast\"\n[admin]\naddr = \"127.0.0.1:0\"\n"
        ),
    );
    wait_listening(&mut t);
    t
}

/// A child process killed when dropped, so a failed assertion leaves nothing running.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn healthz(node: &Node) -> (u16, String) {
    let resp = http().get(format!("{}/healthz", node.admin())).send().unwrap();
    (resp.status().as_u16(), resp.text().unwrap())
}

#[test]
fn plain_http_to_a_tls_orchestrator_says_to_use_https() {
    let keys = tempfile::tempdir().unwrap();
    let secret_file = write_secret(keys.path(), "secret", "s3cret");
    let orch = Node::start(
        "orchestrator",
        &format!(
            "[orchestrator]\nservice_addr = \"127.0.0.1:0\"\nsecret_file = {secret_file:?}\n\
             x264_preset = \"ultrafast\"\n[admin]\naddr = \"127.0.0.1:0\"\n"
        ),
    );
    let https = orch.orchestrator_uri();
    let http_uri = https.replace("https://", "http://");
    let hint = format!("the orchestrator speaks HTTPS; use {https}");

    // A gateway: its segment fails, and the log says why in words.
    let gateway = Node::start(
        "gateway",
        &format!(
            "[gateway]\nhttp_addr = \"127.0.0.1:0\"\nrtmp_addr = \"127.0.0.1:0\"\norchestrators = [{http_uri:?}]\n\
             profiles = [\"P144p30fps16x9\"]\n[admin]\naddr = \"127.0.0.1:0\"\n"
        ),
    );
    let segment = make_segments(keys.path(), 2, 320, 180).remove(0);
    let (status, _, body) = push(&gateway.gateway(), "scheme", "0.ts", segment);
    assert_eq!(status, 503, "{}", String::from_utf8_lossy(&body));
    assert!(gateway.log().contains(&hint), "{}", gateway.log());

    // A transcoder: it keeps retrying, saying why, and is not healthy meanwhile.
    let t = transcoder(&http_uri, &secret_file);
    wait_log(&t, &hint);
    let (status, reason) = healthz(&t);
    assert_eq!(status, 503);
    assert!(reason.contains(&hint), "{reason}");
}

#[test]
fn a_gateway_without_orchestrators_warns_at_start() {
    let gateway = Node::start(
        "gateway",
        "[gateway]\nhttp_addr = \"127.0.0.1:0\"\nrtmp_addr = \"127.0.0.1:0\"\n[admin]\naddr = \"127.0.0.1:0\"\n",
    );
    wait_log(&gateway, "the gateway has no orchestrators");
    let line = gateway.log().lines().find(|l| l.contains("the gateway has no orchestrators")).unwrap().to_string();
    assert!(line.contains("WARN"), "{line}");
}

#[test]
fn a_second_node_on_the_same_data_dir_exits_64() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("shared");
    let config = dir.path().join("gateway.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = {:?}\n[gateway]\nhttp_addr = \"127.0.0.1:0\"\nrtmp_addr = \"127.0.0.1:0\"\norchestrators = [\"https://127.0.0.1:1\"]\n\
             [admin]\naddr = \"127.0.0.1:0\"\n",
            data.display().to_string()
        ),
    )
    .unwrap();
    let start = || {
        Killed(
            Command::new(livepeer_bin())
                .args(["gateway", "-c"])
                .arg(&config)
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap(),
        )
    };
    let first = start();
    eventually("the first node listening", || data.join("listen.json").exists().then_some(()));

    let mut second = start();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = second.0.try_wait().unwrap() {
            break status.code();
        }
        if Instant::now() > deadline {
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    if status.is_some() {
        second.0.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    }
    assert_eq!(status, Some(64), "{stderr}");
    assert!(stderr.contains(&data.display().to_string()), "names the data_dir: {stderr}");
    assert!(stderr.contains("another livepeer node"), "{stderr}");
    assert!(stderr.contains(&format!("pid {}", first.0.id())), "{stderr}");

    // The lock dies with its holder, even a killed one (SIGKILL): the LOCK file left behind is
    // no obstacle.
    drop(first);
    std::fs::remove_file(data.join("listen.json")).unwrap();
    let mut again = start();
    eventually("a new node on the freed data_dir", || {
        if let Some(status) = again.0.try_wait().unwrap() {
            let mut err = String::new();
            again.0.stderr.take().unwrap().read_to_string(&mut err).unwrap();
            panic!("exited {status}: {err}");
        }
        data.join("listen.json").exists().then_some(())
    });
}

#[test]
fn logs_through_a_pipe_have_no_colour_codes() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("gateway.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = {:?}\n[gateway]\nhttp_addr = \"127.0.0.1:0\"\nrtmp_addr = \"127.0.0.1:0\"\n[admin]\naddr = \"127.0.0.1:0\"\n",
            dir.path().join("data").display().to_string()
        ),
    )
    .unwrap();
    let mut child = Killed(
        Command::new(livepeer_bin())
            .args(["gateway", "-c"])
            .arg(&config)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    // Read up to the admin listener's line (a WARN and several INFO lines come before it).
    let mut seen = Vec::new();
    let mut lines = BufReader::new(child.0.stderr.take().unwrap());
    loop {
        let mut line = Vec::new();
        if lines.read_until(b'\n', &mut line).unwrap() == 0 {
            panic!("the node exited:\n{}", String::from_utf8_lossy(&seen));
        }
        seen.extend_from_slice(&line);
        if String::from_utf8_lossy(&line).contains("admin listening") {
            break;
        }
    }
    drop(child);
    let text = String::from_utf8_lossy(&seen);
    assert!(text.contains("WARN") && text.contains("INFO"), "{text}");
    assert!(!seen.contains(&0x1b), "ANSI escape codes in piped logs:\n{text:?}");
}

#[test]
fn a_transcoder_is_unhealthy_while_not_registered() {
    let keys = tempfile::tempdir().unwrap();
    let secret_file = write_secret(keys.path(), "secret", "s3cret");
    let config = format!(
        "[orchestrator]\nservice_addr = \"127.0.0.1:0\"\ntranscode = false\nsecret_file = {secret_file:?}\n\
         [admin]\naddr = \"127.0.0.1:0\"\n"
    );
    let mut orch = Node::start("orchestrator", &config);
    let t = transcoder(&orch.orchestrator_uri(), &secret_file);
    orch.wait_transcoders(1);
    eventually("healthy once registered", || (healthz(&t) == (200, "ok\n".to_string())).then_some(()));
    assert_eq!(t.status()["transcoder"]["registered"], true);

    // The orchestrator goes away: the transcoder says so, with the reason.
    orch.kill();
    let reason = eventually("unhealthy without its orchestrator", || {
        let (status, reason) = healthz(&t);
        (status == 503).then_some(reason)
    });
    assert!(
        reason.contains(&format!("not registered with the orchestrator at {}", orch.orchestrator_uri())),
        "{reason}"
    );
    assert_eq!(t.status()["transcoder"]["registered"], false);
}

#[test]
fn head_on_hls_answers_like_get_without_a_body() {
    let node = Node::start(
        "run",
        "[gateway]\nhttp_addr = \"127.0.0.1:0\"\nrtmp_addr = \"127.0.0.1:0\"\nprofiles = [\"P144p30fps16x9\"]\n\
         [orchestrator]\nservice_addr = \"127.0.0.1:0\"\nx264_preset = \"ultrafast\"\n[admin]\naddr = \"127.0.0.1:0\"\n",
    );
    let dir = tempfile::tempdir().unwrap();
    let segment = make_segments(dir.path(), 2, 320, 180).remove(0);
    let gw = node.gateway();
    let (status, _, body) = push(&gw, "head", "0.ts", segment);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    for path in ["/stream/head.m3u8", "/stream/head/P144p30fps16x9.m3u8", "/stream/head/source/0.ts"] {
        let get = http().get(format!("{gw}{path}")).send().unwrap();
        assert_eq!(get.status(), 200, "GET {path}");
        let get_type = get.headers()["content-type"].clone();
        let get_len = get.bytes().unwrap().len();
        let head = http().head(format!("{gw}{path}")).send().unwrap();
        assert_eq!(head.status(), 200, "HEAD {path}");
        assert_eq!(head.headers()["content-type"], get_type, "HEAD {path}");
        let length: usize = head.headers()["content-length"].to_str().unwrap().parse().unwrap();
        assert_eq!(length, get_len, "HEAD {path} announces the GET body's length");
        assert!(head.bytes().unwrap().is_empty(), "HEAD {path} has no body");
    }
    // Absent things are still 404.
    assert_eq!(http().head(format!("{gw}/stream/nope.m3u8")).send().unwrap().status(), 404);
}
