//! Memory benchmark (ignored by `cargo test`; `make bench-memory` runs it): how much a node holds
//! fresh, per idle stream session, and after its streams have ended.
//!
//! One `livepeer run` process (gateway + orchestrator with a local transcoder) takes
//! `MEMORY_STREAMS` (default 500) one-segment streams, each a 1-s 320x180 segment under its own
//! stream name, transcoded to one small rendition, pushed by `MEMORY_CLIENTS` (default 2) clients
//! at once. The gateway's `stream_idle_timeout_secs` (`MEMORY_IDLE_SECS`, default 60) is longer
//! than the pushing takes and the settling after it, so every stream's session is alive and idle
//! when the benchmark reads VmRSS (bytes per idle session: the growth over the round / streams,
//! compared with `hls_bytes_per_stream`, the segment and rendition each stream's HLS window holds
//! by design); then it waits until every stream has ended (the gateway lists none and the orchestrator has
//! no session), gives the allocator `MEMORY_SETTLE_SECS` (default 15; jemalloc's decay is 10 s)
//! and reads the node's VmRSS from `/proc/<pid>/status` again. With
//! `MEMORY_ROUNDS` > 1 it does it again with new stream names, which tells memory that is kept for
//! reuse (flat across rounds) from a leak (growing). `LP_TEST_BIN` picks the binary (default: the
//! debug build next to the tests), as for every end-to-end test. The results are printed as one JSON line (`memory: {...}`).

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::*;
use serde_json::json;

fn env_or(key: &str, default: u64) -> u64 {
    std::env::var(key).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// A field of `/proc/<pid>/status` in bytes (`VmRSS`, `VmHWM`) or as a count (`Threads`).
fn proc_status(pid: u32, field: &str) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc/<pid>/status");
    let line = text.lines().find(|l| l.starts_with(&format!("{field}:"))).expect("field in /proc status");
    let mut parts = line.split_whitespace().skip(1);
    let n: u64 = parts.next().unwrap().parse().unwrap();
    if parts.next() == Some("kB") { n * 1024 } else { n }
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// (streams the gateway serves, sessions the orchestrator holds).
fn alive(node: &Node) -> (usize, u64) {
    let s = node.status();
    let streams = s["gateway"]["status"]["streams"].as_array().map_or(0, Vec::len);
    let sessions = s["orchestrator"]["status"]["current_sessions"].as_u64().unwrap_or(0);
    (streams, sessions)
}

/// Pushes one segment to each of `names` from `clients` threads; panics on any failure. Adds to
/// `hls_bytes` what each stream's HLS window then holds: the segment and its renditions.
fn push_streams(gw: &str, names: &[String], segment: &[u8], clients: usize, hls_bytes: &AtomicUsize) {
    let next = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..clients {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(name) = names.get(i) else { break };
                    let (status, content_type, body) = push(gw, name, "0.ts", segment.to_vec());
                    assert_eq!(status, 200, "{name}: {}", String::from_utf8_lossy(&body));
                    let renditions: usize =
                        multipart_parts(&content_type, &body).iter().map(|(_, _, data)| data.len()).sum();
                    hls_bytes.fetch_add(segment.len() + renditions, Ordering::Relaxed);
                }
            });
        }
    });
}

#[test]
#[ignore = "benchmark: run with `make bench-memory` (minutes)"]
fn memory_per_stream_session_and_after_streams_end() {
    let streams = env_or("MEMORY_STREAMS", 500) as usize;
    let clients = env_or("MEMORY_CLIENTS", 2) as usize;
    let idle = env_or("MEMORY_IDLE_SECS", 60);
    let rounds = env_or("MEMORY_ROUNDS", 1);
    let settle = env_or("MEMORY_SETTLE_SECS", 15);
    let config = format!(
        r#"
[log]
level = "warn"
[gateway]
http_addr = "127.0.0.1:0"
rtmp_addr = "127.0.0.1:0"
profiles = ["P144p30fps16x9"]
max_streams = {max}
stream_idle_timeout_secs = {idle}
[orchestrator]
service_addr = "127.0.0.1:0"
max_sessions = {max}
session_idle_timeout_secs = {orch_idle}
capacity = 2
x264_preset = "ultrafast"
[admin]
addr = "127.0.0.1:0"
"#,
        max = streams + 10,
        orch_idle = idle + 30,
    );
    let node = Node::start("run", &config);
    let pid = node.child.id();
    let gw = node.gateway();
    let segment = make_segments(node.dir.path(), 1, 320, 180).remove(0);
    // Let the process settle (listeners, first timers) before the baseline.
    std::thread::sleep(Duration::from_secs(2));
    let fresh = proc_status(pid, "VmRSS");
    let fresh_threads = proc_status(pid, "Threads");
    eprintln!("memory: fresh {:.1} MiB, {fresh_threads} threads", mib(fresh));

    let mut results = Vec::new();
    for round in 0..rounds {
        let before = proc_status(pid, "VmRSS");
        let names: Vec<String> = (0..streams).map(|i| format!("mem-r{round}-s{i}")).collect();
        let t = Instant::now();
        let hls_bytes = AtomicUsize::new(0);
        push_streams(&gw, &names, &segment, clients, &hls_bytes);
        let push_secs = t.elapsed().as_secs_f64();
        let peak = proc_status(pid, "VmRSS");
        // Let the allocator hand back what the transcodes used; the sessions stay, idle.
        std::thread::sleep(Duration::from_secs(settle));
        let idle_rss = proc_status(pid, "VmRSS");
        let (alive_streams, alive_sessions) = alive(&node);
        let all_alive = alive_streams == streams;
        eprintln!(
            "memory: round {round}: {streams} streams pushed in {push_secs:.1} s; {:.1} MiB at once, {:.1} MiB {settle} s later with {alive_streams} streams and {alive_sessions} sessions alive",
            mib(peak),
            mib(idle_rss)
        );
        // Wait for every stream and session to end.
        let deadline = Instant::now() + Duration::from_secs(idle * 2 + 120);
        loop {
            let (s, o) = alive(&node);
            if s == 0 && o == 0 {
                break;
            }
            assert!(Instant::now() < deadline, "streams never ended: {s} streams, {o} sessions");
            std::thread::sleep(Duration::from_secs(1));
        }
        std::thread::sleep(Duration::from_secs(settle));
        let after = proc_status(pid, "VmRSS");
        let threads = proc_status(pid, "Threads");
        eprintln!("memory: round {round}: {:.1} MiB after every stream ended, {threads} threads", mib(after));
        results.push(json!({
            "round": round,
            "push_secs": push_secs,
            "rss_before_mib": mib(before),
            "rss_peak_mib": mib(peak),
            "rss_idle_mib": mib(idle_rss),
            "streams_alive_at_peak": alive_streams,
            "sessions_alive_at_peak": alive_sessions,
            "bytes_per_idle_session": if all_alive { (idle_rss.saturating_sub(before) / streams as u64) as i64 } else { -1 },
            "hls_bytes_per_stream": hls_bytes.load(Ordering::Relaxed) / streams,
            "rss_after_mib": mib(after),
            "threads_after": threads,
        }));
    }
    let summary = json!({
        "streams": streams,
        "clients": clients,
        "segment_bytes": segment.len(),
        "rss_fresh_mib": mib(fresh),
        "vm_hwm_mib": mib(proc_status(pid, "VmHWM")),
        "rounds": results,
    });
    println!("memory: {summary}");
}
