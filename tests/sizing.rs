//! Sizing an orchestrator: `livepeer bench` sweeps live streams through the orchestrator's own
//! transcoder and an FFmpeg CLI and writes its figure to the data directory; `max_sessions =
//! "auto"` takes it, refuses to start without one or on one measured for another config, and
//! adds the remote transcoders as they connect and go (each one's own figure when it reports
//! one, else its capacity).

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::*;
use serde_json::Value;

/// An orchestrator transcoding itself (ultrafast, capacity 1) under `max_sessions = "auto"`.
const AUTO: &str = r#"
[orchestrator]
service_addr = "127.0.0.1:0"
x264_preset = "ultrafast"
max_sessions = "auto"
[admin]
addr = "127.0.0.1:0"
"#;

fn livepeer(args: &[&str], config: &Path) -> Output {
    Command::new(livepeer_bin()).args(args).arg("-c").arg(config).output().expect("run livepeer")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn the_bench_sizes_the_orchestrator_and_auto_takes_its_figure() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = dir.path().join("config.toml");
    std::fs::write(&config, format!("data_dir = {:?}\n{AUTO}", data.display().to_string())).unwrap();

    // No figure yet: the orchestrator does not start, and says what to run.
    let refused = livepeer(&["orchestrator"], &config);
    assert_eq!(refused.status.code(), Some(64), "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains("orchestrator.max_sessions: \"auto\" needs this machine's measured streams")
            && stderr(&refused).contains("run `livepeer bench -c <this config>`"),
        "{}",
        stderr(&refused)
    );

    // The sweep, short: one segment a stream, K up to 2, with Debian's FFmpeg as the baseline.
    let source = dir.path().join("source.ts");
    std::fs::write(&source, lp_testkit::media::segment()).unwrap();
    let source = source.display().to_string();
    let args = ["bench", "--segments", "1", "--max-streams", "2", "--baseline", "ffmpeg", "--source", &source];
    let bench = livepeer(&args, &config);
    let stdout = String::from_utf8_lossy(&bench.stdout);
    assert!(bench.status.success(), "{stdout}\n{}", stderr(&bench));
    assert!(stdout.contains("ours (the orchestrator's transcoder, capacity 1):"), "{stdout}");
    assert!(stdout.contains("ffmpeg version"), "{stdout}");
    assert!(stdout.contains("streams  segments  real-time  duration ratio"), "{stdout}");
    assert!(stderr(&bench).contains("ours (capacity 1): 1 stream of 1 segments"), "progress: {}", stderr(&bench));

    let sizing: Value = serde_json::from_str(&std::fs::read_to_string(data.join("bench.json")).unwrap()).unwrap();
    assert_eq!((sizing["x264_preset"].as_str(), sizing["capacity"].as_u64()), (Some("ultrafast"), Some(1)));
    assert_eq!((sizing["source"]["width"].as_u64(), sizing["source"]["duration_ms"].as_u64()), (Some(320), Some(1000)));
    let ratios = |rows: &Value| -> Vec<f64> {
        let rows = rows.as_array().expect("rows");
        for (k, row) in rows.iter().enumerate() {
            assert_eq!(row["streams"].as_u64(), Some(k as u64 + 1), "K counts up: {rows:?}");
            assert_eq!(row["segments"].as_u64(), Some(k as u64 + 1), "one segment a stream");
        }
        rows.iter().map(|r| r["duration_ratio"].as_f64().unwrap()).collect()
    };
    for (rows, max) in
        [(&sizing["rows"], &sizing["max_streams"]), (&sizing["baseline"]["rows"], &sizing["baseline"]["max_streams"])]
    {
        let ratios = ratios(rows);
        assert!(!ratios.is_empty() && ratios.iter().all(|r| *r > 0.0), "{ratios:?}");
        let within = ratios.iter().take_while(|r| **r <= 0.8).count() as u64;
        assert_eq!(max.as_u64(), Some(within), "the largest K at a ratio of at most 0.8: {ratios:?}");
        // The sweep stops at the first K above 0.8, or at --max-streams.
        assert!(ratios.len() == 2 || ratios.last().is_some_and(|r| *r > 0.8), "{ratios:?}");
    }
    let figure = sizing["max_streams"].as_u64().unwrap();
    assert!(stdout.contains(&format!("max_sessions = \"auto\" takes {figure} from it")), "{stdout}");
    // A sweep that never passed 0.8 says its figure is a floor (320x180 at ultrafast: K = 2 is
    // far within it on any machine that runs the tests).
    let floor = "every K up to --max-streams 2 was within 0.8: this machine carries at least that";
    assert_eq!(stdout.contains(floor), figure == 2, "{stdout}");
    assert_eq!(stdout.contains("this machine does not carry one stream"), figure == 0, "{stdout}");

    // The orchestrator takes the figure, in /status and the gauge. (With a secret_file, so that
    // it starts even if a loaded test machine measured 0 streams.)
    let measured = std::fs::read(data.join("bench.json")).unwrap();
    let secret = write_secret(dir.path(), "secret.txt", "sizing-secret");
    let with_secret =
        AUTO.replace("max_sessions = \"auto\"\n", &format!("max_sessions = \"auto\"\nsecret_file = {secret:?}\n"));
    let node = Node::start_with_data("orchestrator", &with_secret, |d| {
        std::fs::write(d.join("bench.json"), &measured).unwrap()
    });
    let status = &node.status()["orchestrator"]["status"];
    assert_eq!((status["max_sessions"].as_u64(), status["max_sessions_auto"].as_bool()), (Some(figure), Some(true)));
    assert_eq!(metric(&node.metrics(), "livepeer_max_sessions_total"), figure as f64);

    // A figure measured with another preset is not this node's.
    std::fs::write(&config, std::fs::read_to_string(&config).unwrap().replace("ultrafast", "veryfast")).unwrap();
    let stale = livepeer(&["orchestrator"], &config);
    assert_eq!(stale.status.code(), Some(64), "{}", stderr(&stale));
    assert!(
        stderr(&stale).contains("was measured with x264_preset \"ultrafast\", this config has \"veryfast\""),
        "{}",
        stderr(&stale)
    );
    std::fs::write(&config, std::fs::read_to_string(&config).unwrap().replace("veryfast", "ultrafast")).unwrap();

    // Not one stream, and no remote transcoders possible: a node that would refuse every
    // session does not start.
    let mut none = sizing.clone();
    none["max_streams"] = 0.into();
    std::fs::write(data.join("bench.json"), none.to_string()).unwrap();
    let refused = livepeer(&["orchestrator"], &config);
    assert_eq!(refused.status.code(), Some(64), "{}", stderr(&refused));
    assert!(stderr(&refused).contains("carries no stream of its ladder"), "{}", stderr(&refused));

    // A transcoder in the same process would count this machine twice.
    std::fs::write(data.join("bench.json"), &measured).unwrap();
    let orchestrator = std::fs::read_to_string(&config).unwrap().replace("[admin]\naddr = \"127.0.0.1:0\"\n", "");
    let both = format!(
        "{orchestrator}secret_file = {secret:?}\n[transcoder]\norchestrator = \"https://127.0.0.1:1\"\n\
         secret_file = {secret:?}\n[admin]\naddr = \"127.0.0.1:0\"\n"
    );
    std::fs::write(&config, both).unwrap();
    let twice = livepeer(&["run"], &config);
    assert_eq!(twice.status.code(), Some(64), "{}", stderr(&twice));
    assert!(stderr(&twice).contains("would count this machine twice"), "{}", stderr(&twice));
}

/// Without a local transcoder, "auto" is go-livepeer's: the capacity of the remote transcoders
/// connected now, and no figure is needed. A remote transcoder that `livepeer bench` measured
/// (with its own config, on its machine) counts for its figure instead; one whose figure was
/// measured for another config, for its capacity, and it says why.
#[test]
fn auto_without_a_local_transcoder_follows_the_remote_transcoders() {
    let secrets = tempfile::tempdir().unwrap();
    let secret = write_secret(secrets.path(), "secret.txt", "sizing-secret");
    let orchestrator = Node::start(
        "orchestrator",
        &format!(
            "[orchestrator]\nservice_addr = \"127.0.0.1:0\"\ntranscode = false\nmax_sessions = \"auto\"\n\
             secret_file = {secret:?}\n[admin]\naddr = \"127.0.0.1:0\"\n"
        ),
    );
    let cap = || orchestrator.status()["orchestrator"]["status"]["max_sessions"].as_u64();
    assert_eq!(cap(), Some(0), "no transcoder yet");
    let mut transcoder = Node::start(
        "transcoder",
        &format!(
            "[transcoder]\norchestrator = {:?}\nsecret_file = {secret:?}\ncapacity = 2\nx264_preset = \"ultrafast\"\n\
             [admin]\naddr = \"127.0.0.1:0\"\n",
            orchestrator.orchestrator_uri()
        ),
    );
    eventually("the transcoder's capacity in the cap", || (cap() == Some(2)).then_some(()));
    assert_eq!(metric(&orchestrator.metrics(), "livepeer_max_sessions_total"), 2.0);

    // A second transcoder, capacity 1, measured by the bench run with its own config. Its
    // figure is set to 5 afterwards, so that it cannot be mistaken for a capacity.
    let config = |preset: &str| {
        format!(
            "[transcoder]\norchestrator = {:?}\nsecret_file = {secret:?}\nx264_preset = {preset:?}\n\
             [admin]\naddr = \"127.0.0.1:0\"\n",
            orchestrator.orchestrator_uri()
        )
    };
    let bench_config = secrets.path().join("transcoder.toml");
    std::fs::write(&bench_config, config("ultrafast")).unwrap();
    let (source, out) = (secrets.path().join("source.ts"), secrets.path().join("bench.json"));
    std::fs::write(&source, lp_testkit::media::segment()).unwrap();
    let args = ["bench", "--segments", "1", "--max-streams", "1", "--source", source.to_str().unwrap()];
    let bench =
        Command::new(livepeer_bin()).args(args).arg("--out").arg(&out).arg("-c").arg(&bench_config).output().unwrap();
    assert!(bench.status.success(), "{}", stderr(&bench));
    assert!(String::from_utf8_lossy(&bench.stdout).contains("ours (the transcoder, capacity 1):"));
    let mut sizing: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(
        (sizing["x264_preset"].as_str(), sizing["capacity"].as_u64()),
        (Some("ultrafast"), Some(1)),
        "the transcoder's"
    );
    sizing["max_streams"] = 5.into();
    let mut measured = Node::start_with_data("transcoder", &config("ultrafast"), |d| {
        std::fs::write(d.join("bench.json"), sizing.to_string()).unwrap()
    });
    eventually("its figure in the cap", || (cap() == Some(7)).then_some(()));
    wait_log(&measured, "reporting the live streams `livepeer bench` measured here");
    measured.kill();
    eventually("the cap without it", || (cap() == Some(2)).then_some(()));

    // The same figure with another preset in the transcoder's config: its capacity counts.
    let mut stale = Node::start_with_data("transcoder", &config("veryfast"), |d| {
        std::fs::write(d.join("bench.json"), sizing.to_string()).unwrap()
    });
    eventually("its capacity in the cap", || (cap() == Some(3)).then_some(()));
    wait_log(&stale, "was measured with x264_preset \"ultrafast\", this config has \"veryfast\"");
    stale.kill();

    transcoder.kill();
    eventually("the cap without them", || (cap() == Some(0)).then_some(()));
}
