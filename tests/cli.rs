//! The command line as operators meet it: config errors, --dump-config, --help. The demo has its
//! own tests (tests/demo.rs).

mod common;

use std::process::Command;

use common::*;

#[test]
fn a_config_with_three_errors_reports_all_three_and_exits_64() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    let data_dir = dir.path().join("never-created");
    std::fs::write(
        &path,
        format!(
            r#"
data_dir = {data_dir:?}
[gateway]
http_addr = "not an address"
max_attempts = "three"
[orchestrator]
service_addr = "127.0.0.1:0"
max_sesions = 4
"#
        ),
    )
    .unwrap();
    let out = Command::new(livepeer_bin()).args(["run", "-c"]).arg(&path).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{stderr}");
    assert!(stderr.contains("3 problems"), "{stderr}");
    for key in ["gateway.http_addr", "gateway.max_attempts", "orchestrator.max_sesions"] {
        assert!(stderr.contains(key), "{key} missing from: {stderr}");
    }
    assert!(!data_dir.exists(), "nothing may start");
}

#[test]
fn amounts_of_wei_are_checked_per_key_and_dumped_in_wei() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("o.toml");
    let data_dir = dir.path().join("never-created");
    // Beyond the wire's int64, and less than a wei: usage errors naming the key, before anything
    // starts.
    std::fs::write(
        &path,
        format!(
            "data_dir = {data_dir:?}\n[orchestrator]\nservice_addr = \"127.0.0.1:0\"\n\
             price_per_unit = \"99999999999999999999\"\nticket_ev = \"0.5 wei\"\n"
        ),
    )
    .unwrap();
    let out = Command::new(livepeer_bin()).args(["orchestrator", "-c"]).arg(&path).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{stderr}");
    assert!(stderr.contains("orchestrator.price_per_unit: 99999999999999999999 wei is too large"), "{stderr}");
    assert!(stderr.contains("int64"), "{stderr}");
    assert!(stderr.contains("orchestrator.ticket_ev: \"0.5 wei\" is not a whole number of wei"), "{stderr}");
    assert!(!data_dir.exists(), "nothing may start");

    // With a unit, an amount is dumped in wei.
    std::fs::write(&path, "[orchestrator]\nprice_per_unit = \"8 gwei\"\n").unwrap();
    let out = Command::new(livepeer_bin()).args(["orchestrator", "--dump-config", "-c"]).arg(&path).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let cfg: toml::Table = toml::from_str(&String::from_utf8_lossy(&out.stdout)).unwrap();
    assert_eq!(cfg["orchestrator"]["price_per_unit"].as_str(), Some("8000000000"));
    assert_eq!(cfg["orchestrator"]["ticket_ev"].as_str(), Some("8000000000"));
}

#[test]
fn missing_files_the_config_points_at_are_usage_errors_too() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.toml");
    std::fs::write(
        &path,
        "[transcoder]\norchestrator = \"https://127.0.0.1:8935\"\nsecret_file = \"/nonexistent/secret\"\n",
    )
    .unwrap();
    let out = Command::new(livepeer_bin()).args(["transcoder", "-c"]).arg(&path).output().unwrap();
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("transcoder.secret_file"));

    let out = Command::new(livepeer_bin()).args(["gateway", "-c"]).arg(&path).output().unwrap();
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("[gateway]: section missing"));
}

/// `video_decoder = "nvdec:N"` opens that GPU at start: where there is none (GPU 63 is on no
/// machine, so this holds with a GPU too), the orchestrator and the transcoder exit 64 with the
/// key and what NVDEC needs, before anything is bound, instead of failing every segment later.
#[test]
fn a_gpu_decoder_without_the_gpu_stops_the_start_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let secret = write_secret(dir.path(), "secret", "s3cret");
    let data_dir = dir.path().join("d");
    let roles = [
        ("orchestrator", "[orchestrator]\nservice_addr = \"127.0.0.1:0\"\nvideo_decoder = \"nvdec:63\"\n"),
        (
            "transcoder",
            &format!(
                "[transcoder]\norchestrator = \"https://127.0.0.1:9\"\nsecret_file = {secret:?}\nvideo_decoder = \"nvdec:63\"\n"
            ),
        ),
    ];
    for (role, section) in roles {
        let path = dir.path().join(format!("{role}.toml"));
        std::fs::write(&path, format!("data_dir = {data_dir:?}\n{section}[admin]\naddr = \"127.0.0.1:0\"\n")).unwrap();
        let out = Command::new(livepeer_bin()).args([role, "-c"]).arg(&path).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(64), "{role}: {stderr}");
        assert!(
            stderr.contains(&format!("{role}.video_decoder"))
                && stderr.contains("cannot open CUDA device 63")
                && stderr.contains("libcuda.so.1"),
            "{role}: {stderr}"
        );
    }
}

#[test]
fn dump_config_prints_defaults_and_environment_overrides() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("g.toml");
    std::fs::write(&path, "[gateway]\n").unwrap();
    let out = Command::new(livepeer_bin())
        .args(["gateway", "--dump-config", "-c"])
        .arg(&path)
        .env("LIVEPEER_GATEWAY__MAX_ATTEMPTS", "5")
        .output()
        .unwrap();
    assert!(out.status.success());
    let cfg: toml::Table = toml::from_str(&String::from_utf8_lossy(&out.stdout)).unwrap();
    assert_eq!(cfg["gateway"]["max_attempts"].as_integer(), Some(5));
    assert_eq!(cfg["gateway"]["http_addr"].as_str(), Some("127.0.0.1:9935"));
    assert_eq!(cfg["network"].as_str(), Some("offchain"));
}

#[test]
fn help_explains_the_roles() {
    let out = Command::new(livepeer_bin()).arg("--help").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("LIVEPEER_<SECTION>__<KEY>") && text.contains("status 64"), "overrides and exit 64:\n{text}");
    // A line for each command, saying what it runs.
    for command in ["gateway", "orchestrator", "transcoder", "ai-worker", "run", "demo", "devnet", "chain"] {
        let line = text.lines().find(|l| l.split_whitespace().next() == Some(command));
        let says = line.and_then(|l| l.trim_start().strip_prefix(command)).map(str::trim).unwrap_or_default();
        assert!(says.len() > 10, "no line for {command} in --help:\n{text}");
    }
}

/// A keystore that the password file does not open is the operator's setup, like a config
/// error: exit 64 with the reason, before any port is bound or the chain is asked anything.
#[test]
fn a_keystore_the_password_does_not_open_exits_64() {
    let dir = tempfile::tempdir().unwrap();
    let password = dir.path().join("password");
    let config = dir.path().join("node.toml");
    std::fs::write(
        &config,
        format!(
            "network = \"custom\"\ndata_dir = {:?}\n[eth]\nurl = \"http://127.0.0.1:1\"\ncontroller = \"0x0000000000000000000000000000000000000001\"\npassword_file = {password:?}\n[orchestrator]\nservice_addr = \"127.0.0.1:0\"\n[admin]\naddr = \"127.0.0.1:0\"\n",
            dir.path().join("data")
        ),
    )
    .unwrap();
    // The first start makes the key with this password (then cannot reach the chain).
    std::fs::write(&password, "the right one").unwrap();
    let first = Command::new(livepeer_bin()).args(["orchestrator", "-c"]).arg(&config).output().unwrap();
    assert_eq!(first.status.code(), Some(1), "{}", String::from_utf8_lossy(&first.stderr));
    std::fs::write(&password, "a wrong one").unwrap();
    let out = Command::new(livepeer_bin()).args(["orchestrator", "-c"]).arg(&config).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{stderr}");
    assert!(stderr.contains("keystore"), "{stderr}");
    assert!(!dir.path().join("data/listen.json").exists(), "nothing was bound");
}
