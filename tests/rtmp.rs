//! RTMP ingest end to end: a real `livepeer run` (gateway and orchestrator in one process), the
//! ffmpeg CLI publishing `rtmp://…/live/{key}` as OBS would, and the HLS it turns into read
//! back over HTTP; and hostile or broken publishers on raw loopback sockets, each of which must
//! be closed within a bound, with a line in the node's log, while the gateway goes on serving.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;
use lp_pipelines::InputFormat;

const NODE: &str = r#"
[gateway]
http_addr = "127.0.0.1:0"
rtmp_addr = "127.0.0.1:0"
profiles = ["P144p30fps16x9"]
hls_window = 50
[orchestrator]
service_addr = "127.0.0.1:0"
capacity = 1
x264_preset = "ultrafast"
[admin]
addr = "127.0.0.1:0"
"#;

/// One 30 fps frame, the precision durations are held to.
const FRAME: f64 = 1.0 / 30.0;
const RENDITIONS: [&str; 2] = ["source", "P144p30fps16x9"];

fn start(extra: &str) -> Node {
    Node::start("run", &NODE.replace("[gateway]\n", &format!("[gateway]\n{extra}")))
}

fn rtmp_url(node: &Node, path: &str) -> String {
    format!("rtmp://{}/{path}", node.listen["rtmp"].as_str().expect("rtmp address in listen.json"))
}

/// ffmpeg making test video (320x180 at 30 fps, a keyframe every 2 s, x264 with its B-frames)
/// and a sine tone, `secs` long, in real time when `realtime`, published to `url`; `extra`
/// replaces or adds encoder options.
fn publisher(url: &str, secs: u32, realtime: bool, extra: &[&str]) -> Child {
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-hide_banner", "-loglevel", "error", "-nostdin"]);
    if realtime {
        cmd.arg("-re");
    }
    cmd.args(["-f", "lavfi", "-i", "testsrc2=size=320x180:rate=30", "-f", "lavfi", "-i", "sine=frequency=440"]);
    cmd.args(["-t", &secs.to_string()]);
    cmd.args(["-c:v", "libx264", "-preset", "veryfast", "-g", "60", "-c:a", "aac"]);
    cmd.args(extra).args(["-f", "flv", url]);
    cmd.stdout(Stdio::null()).stderr(Stdio::piped()).spawn().expect("the ffmpeg CLI must be installed")
}

/// Wait for a publisher, at most `secs`.
fn finished(child: Child, secs: u64) -> Output {
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(Duration::from_secs(secs)) {
        Ok(out) => out.expect("ffmpeg ran"),
        Err(_) => {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            panic!("ffmpeg (pid {pid}) still running after {secs} s");
        }
    }
}

fn media_playlist(gw: &str, key: &str, rendition: &str) -> Option<String> {
    let resp = http().get(format!("{gw}/stream/{key}/{rendition}.m3u8")).send().ok()?;
    (resp.status() == 200).then(|| resp.text().ok()).flatten()
}

/// The media playlist once it has ended, polled for at most `secs`.
fn ended(node: &Node, key: &str, rendition: &str, secs: u64) -> String {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let playlist = media_playlist(&node.gateway(), key, rendition);
        if let Some(p) = playlist.filter(|p| p.contains("#EXT-X-ENDLIST")) {
            return p;
        }
        assert!(Instant::now() < deadline, "{key}/{rendition} did not end within {secs} s:\n{}", node.log());
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A media playlist's segments: (EXTINF seconds, URI).
fn entries(playlist: &str) -> Vec<(f64, String)> {
    let mut out = Vec::new();
    let mut lines = playlist.lines();
    while let Some(line) = lines.next() {
        if let Some(d) = line.strip_prefix("#EXTINF:") {
            let secs = d.trim_end_matches(',').parse().expect("EXTINF seconds");
            out.push((secs, lines.next().expect("a URI after EXTINF").to_string()));
        }
    }
    out
}

/// Every segment of an ended playlist downloads and decodes, with audio; their total length.
fn check_segments(node: &Node, key: &str, rendition: &str, playlist: &str) -> f64 {
    let segments = entries(playlist);
    assert!(!segments.is_empty(), "{playlist}");
    for (_, uri) in &segments {
        let resp = http().get(format!("{}/stream/{key}/{uri}", node.gateway())).send().unwrap();
        assert_eq!(resp.status(), 200, "{uri}");
        let info =
            lp_pipelines::probe(&resp.bytes().unwrap(), InputFormat::MpegTs).unwrap_or_else(|e| panic!("{uri}: {e}"));
        assert!(info.has_audio, "{rendition} {uri} has audio");
        if rendition != "source" {
            assert_eq!((info.width, info.height), (256, 144), "{uri}");
        }
    }
    segments.iter().map(|(d, _)| d).sum()
}

/// A short publish still makes an ended, decodable stream, and the admin answers: whatever the
/// test did before, the gateway still serves.
fn still_serves(node: &Node, key: &str) {
    let out = finished(publisher(&rtmp_url(node, &format!("live/{key}")), 4, false, &[]), 60);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for r in RENDITIONS {
        let total = check_segments(node, key, r, &ended(node, key, r, 30));
        assert!((total - 4.0).abs() <= FRAME + 1e-9, "{r}: {total} s");
    }
    let health = http().get(format!("{}/healthz", node.admin())).send().unwrap();
    assert_eq!(health.status(), 200);
}

#[test]
fn a_30_second_publish_is_transcoded_whole_and_ends_with_endlist() {
    let node = start("");
    let started = Instant::now();
    let out = finished(publisher(&rtmp_url(&node, "live/e2e"), 30, true, &[]), 90);
    assert!(out.status.success(), "{}\n{}", String::from_utf8_lossy(&out.stderr), node.log());
    assert!(started.elapsed() >= Duration::from_secs(29), "published in real time");
    let master = http().get(format!("{}/stream/e2e.m3u8", node.gateway())).send().unwrap().text().unwrap();
    for r in RENDITIONS {
        assert!(master.contains(&format!("e2e/{r}.m3u8")), "{master}");
        let playlist = ended(&node, "e2e", r, 30);
        // A keyframe every 2 s, cut every 2 s: 15 segments, nothing lost.
        let segments = entries(&playlist);
        assert_eq!(segments.len(), 15, "{r}:\n{playlist}");
        let total = check_segments(&node, "e2e", r, &playlist);
        assert!((total - 30.0).abs() <= FRAME + 1e-9, "{r}: the segments last {total} s, 30 s were published");
        assert!(segments[..14].iter().all(|(d, _)| (d - 2.0).abs() < 1e-9), "{playlist}");
    }
    let log = node.log();
    assert!(log.contains("publishing") && log.contains("publisher left"), "{log}");
}

#[test]
fn a_publisher_killed_mid_stream_ends_its_stream() {
    let node = start("");
    let mut child = publisher(&rtmp_url(&node, "live/killed"), 60, true, &[]);
    std::thread::sleep(Duration::from_secs(6));
    child.kill().unwrap();
    child.wait().unwrap();
    for r in RENDITIONS {
        let playlist = ended(&node, "killed", r, 20);
        let total = check_segments(&node, "killed", r, &playlist);
        assert!((2.0..=7.0).contains(&total), "{r}: {total} s of a publisher killed after 6 s:\n{playlist}");
    }
    // Still readable after the end.
    std::thread::sleep(Duration::from_millis(500));
    assert!(media_playlist(&node.gateway(), "killed", "source").is_some_and(|p| p.contains("#EXT-X-ENDLIST")));
}

#[test]
fn a_second_publisher_of_a_live_key_is_refused_and_the_first_goes_on() {
    let node = start("");
    let url = rtmp_url(&node, "live/dup");
    let first = publisher(&url, 10, true, &[]);
    wait_log(&node, "publishing");
    let second = finished(publisher(&url, 5, true, &[]), 30);
    assert!(!second.status.success(), "the second publisher was let in");
    wait_log(&node, "publish refused");
    // Neither an HTTP push into the published stream nor a DELETE of it is taken: the
    // publisher holds it.
    let seg = make_segments(node.dir.path(), 2, 320, 180).remove(0);
    let (status, _, body) = push(&node.gateway(), "dup", "0.ts", seg);
    assert_eq!(status, 409, "{}", String::from_utf8_lossy(&body));
    let deleted = http().delete(format!("{}/live/dup", node.gateway())).send().unwrap();
    assert_eq!(deleted.status(), 409);
    let out = finished(first, 60);
    assert!(out.status.success(), "the first publisher was cut off: {}", String::from_utf8_lossy(&out.stderr));
    for r in RENDITIONS {
        let total = check_segments(&node, "dup", r, &ended(&node, "dup", r, 30));
        assert!((total - 10.0).abs() <= FRAME + 1e-9, "{r}: {total} s");
    }
    // Once the first has left, the key can be published again: its playlists go on after a
    // discontinuity and end again.
    let out = finished(publisher(&url, 4, false, &[]), 60);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for r in RENDITIONS {
        let playlist = eventually(&format!("the second run of dup/{r} ended"), || {
            media_playlist(&node.gateway(), "dup", r)
                .filter(|p| p.contains("#EXT-X-DISCONTINUITY\n") && p.ends_with("#EXT-X-ENDLIST\n"))
        });
        let total = check_segments(&node, "dup", r, &playlist);
        assert!((total - 14.0).abs() <= 2.0 * FRAME + 1e-9, "{r}: {total} s:\n{playlist}");
    }
}

#[test]
fn the_auth_webhook_renames_a_published_stream_and_refuses_another() {
    let hook = Webhook::start(200, r#"{"manifestID":"cam-1"}"#);
    let node = start(&format!("auth_webhook_url = {:?}\n", hook.url));
    let out = finished(publisher(&rtmp_url(&node, "live/secret-key"), 4, false, &[]), 60);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // Asked with the publish URL; the stream is served under the webhook's manifestID.
    let asked: serde_json::Value = serde_json::from_str(&hook.bodies.lock().unwrap()[0]).unwrap();
    assert_eq!(asked["url"], rtmp_url(&node, "live/secret-key"), "{asked}");
    let total = check_segments(&node, "cam-1", "P144p30fps16x9", &ended(&node, "cam-1", "P144p30fps16x9", 30));
    assert!((total - 4.0).abs() <= FRAME + 1e-9, "{total} s");
    assert!(media_playlist(&node.gateway(), "secret-key", "source").is_none());

    // Refused by the webhook: the publisher is turned away with a log line, nothing is served.
    *hook.answer.lock().unwrap() = (403, "banned".into());
    let out = finished(publisher(&rtmp_url(&node, "live/other"), 4, false, &[]), 30);
    assert!(!out.status.success(), "a refused publisher was let in");
    wait_log(&node, "stream refused");
    assert!(node.log().contains("HTTP 403: banned"), "{}", node.log());
    assert!(media_playlist(&node.gateway(), "other", "source").is_none());
}

#[test]
fn a_publish_into_a_stream_live_over_http_is_refused() {
    let node = start("");
    let seg = make_segments(node.dir.path(), 2, 320, 180).remove(0);
    assert_eq!(push(&node.gateway(), "mix", "0.ts", seg).0, 200);
    let out = finished(publisher(&rtmp_url(&node, "live/mix"), 2, false, &[]), 30);
    assert!(!out.status.success(), "a publisher was mixed into a pushed stream");
    wait_log(&node, "pushed over HTTP");
}

// ---------------------------------------------------------------------------------------------
// Broken and hostile publishers
// ---------------------------------------------------------------------------------------------

fn connect(node: &Node) -> TcpStream {
    let addr = node.listen["rtmp"].as_str().unwrap();
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s
}

/// Reads until the server closes the connection; how long that took. Panics if it is still open
/// after `secs`.
fn closed_within(s: &mut TcpStream, secs: u64) -> Duration {
    let started = Instant::now();
    s.set_read_timeout(Some(Duration::from_secs(secs))).unwrap();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return started.elapsed(),
            Ok(_) if started.elapsed() < Duration::from_secs(secs) => continue,
            Ok(_) => panic!("the server still sends after {secs} s"),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                panic!("the connection is still open after {secs} s")
            }
            Err(_) => return started.elapsed(), // reset
        }
    }
}

/// A connection that has done the (simple) handshake.
fn handshaken(node: &Node) -> TcpStream {
    let mut s = connect(node);
    let mut c0c1 = vec![3u8];
    c0c1.extend([0u8; 8]);
    c0c1.extend((0..1528).map(|i| (i * 7) as u8));
    s.write_all(&c0c1).unwrap();
    let mut s0s1s2 = vec![0u8; 1 + 2 * 1536];
    s.read_exact(&mut s0s1s2).unwrap();
    assert_eq!(s0s1s2[0], 3);
    s.write_all(&s0s1s2[1..1537]).unwrap();
    s
}

/// One RTMP message as chunks of `chunk_size` (a type 0 header, then type 3 headers).
fn message(csid: u8, type_id: u8, payload: &[u8], chunk_size: usize) -> Vec<u8> {
    let mut out = vec![csid, 0, 0, 0];
    out.extend(&(payload.len() as u32).to_be_bytes()[1..]);
    out.push(type_id);
    out.extend(0u32.to_le_bytes());
    for (i, part) in payload.chunks(chunk_size).enumerate() {
        if i > 0 {
            out.push(0xc0 | csid);
        }
        out.extend(part);
    }
    out
}

fn amf0_string(s: &str) -> Vec<u8> {
    let mut v = vec![0x02];
    v.extend((s.len() as u16).to_be_bytes());
    v.extend(s.as_bytes());
    v
}

/// Reads until `needle` has come.
fn read_until(s: &mut TcpStream, needle: &[u8]) {
    let mut got: Vec<u8> = Vec::new();
    let mut buf = [0u8; 4096];
    while !got.windows(needle.len()).any(|w: &[u8]| w == needle) {
        let n = s.read(&mut buf).unwrap_or_else(|e| panic!("waiting for {:?}: {e}", String::from_utf8_lossy(needle)));
        assert!(n > 0, "closed while waiting for {:?}", String::from_utf8_lossy(needle));
        got.extend(&buf[..n]);
    }
}

/// A command: its name, transaction id, then `rest` (AMF0 values).
fn command(name: &str, tx: f64, rest: &[u8]) -> Vec<u8> {
    let mut v = amf0_string(name);
    v.push(0x00);
    v.extend(tx.to_be_bytes());
    v.extend(rest);
    message(3, 20, &v, 128)
}

/// `connect` to app `live` (a command object with `app` only).
fn connect_live(s: &mut TcpStream) {
    let mut object = vec![0x03, 0, 3, b'a', b'p', b'p'];
    object.extend(amf0_string("live"));
    object.extend([0, 0, 0x09]);
    s.write_all(&command("connect", 1.0, &object)).unwrap();
    read_until(s, b"NetConnection.Connect.Success");
}

/// A raw client that has published `key` and sends nothing more.
fn published(node: &Node, key: &str) -> TcpStream {
    let mut s = handshaken(node);
    connect_live(&mut s);
    s.write_all(&command("createStream", 2.0, &[0x05])).unwrap();
    read_until(&mut s, b"_result");
    let mut args = vec![0x05];
    args.extend(amf0_string(key));
    args.extend(amf0_string("live"));
    s.write_all(&command("publish", 3.0, &args)).unwrap();
    read_until(&mut s, b"NetStream.Publish.Start");
    s
}

#[test]
fn garbage_stalled_handshakes_and_too_many_connections_are_closed() {
    let node = start("max_streams = 4\n");
    // A stalled handshake: C0 and half of C1, then nothing. Closed at the publish deadline.
    let stalled = std::thread::spawn({
        let mut s = connect(&node);
        move || {
            s.write_all(&[3]).unwrap();
            s.write_all(&[0u8; 700]).unwrap();
            closed_within(&mut s, 15)
        }
    });
    // A publisher that goes silent once publishing: closed after the idle timeout.
    let silent = std::thread::spawn({
        let mut s = published(&node, "silent");
        move || closed_within(&mut s, 15)
    });
    // Not RTMP at all: closed at once.
    let mut s = connect(&node);
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    assert!(closed_within(&mut s, 5) < Duration::from_secs(2));
    wait_log(&node, "not an RTMP client");
    // Four connections are all max_streams allows: a fifth is closed at once.
    let idle: Vec<TcpStream> = (0..2).map(|_| connect(&node)).collect();
    std::thread::sleep(Duration::from_millis(300));
    let mut fourth = connect(&node);
    assert!(closed_within(&mut fourth, 5) < Duration::from_secs(2));
    wait_log(&node, "too many RTMP connections");
    drop(idle);
    let took = stalled.join().unwrap();
    assert!(took >= Duration::from_secs(9), "closed after {took:?}, before the deadline");
    wait_log(&node, "phase=\"handshake\" limit_s=10");
    let took = silent.join().unwrap();
    assert!(took >= Duration::from_secs(9), "closed after {took:?}, before the idle timeout");
    wait_log(&node, "phase=\"publishing\" limit_s=10");
    // A client that closes in the middle of the handshake is gone at once too.
    let mut s = connect(&node);
    s.write_all(&[3; 100]).unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    assert!(closed_within(&mut s, 5) < Duration::from_secs(2));
    still_serves(&node, "after-garbage");
}

#[test]
fn hostile_rtmp_messages_are_refused_without_harm() {
    let node = start("");
    // An AMF0 command declaring 2^32 - 1 elements in a 13-byte message.
    let mut s = handshaken(&node);
    let mut bomb = amf0_string("x");
    bomb.extend([0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0x0a, 0xff, 0xff, 0xff, 0xff]);
    s.write_all(&message(3, 20, &bomb, 128)).unwrap();
    assert!(closed_within(&mut s, 5) < Duration::from_secs(2));
    wait_log(&node, "malformed AMF0 command");
    // A chunk size beyond 64 KiB.
    let mut s = handshaken(&node);
    s.write_all(&message(2, 1, &(1u32 << 20).to_be_bytes(), 128)).unwrap();
    assert!(closed_within(&mut s, 5) < Duration::from_secs(2));
    wait_log(&node, "chunk size 1048576 is outside");
    // A command beyond 64 KiB (sent whole, in 64 KiB chunks).
    let mut s = handshaken(&node);
    s.write_all(&message(2, 1, &65536u32.to_be_bytes(), 128)).unwrap();
    let mut big = amf0_string("connect");
    big.extend(std::iter::repeat_n(0x05, 70_000));
    s.write_all(&message(3, 20, &big, 65536)).unwrap();
    assert!(closed_within(&mut s, 5) < Duration::from_secs(2));
    wait_log(&node, "byte command (at most 65536)");
    // A message declaring 16 MB: refused from its header, before any of it arrives.
    let mut s = handshaken(&node);
    s.write_all(&[3, 0, 0, 0, 0xff, 0xff, 0xff, 9, 1, 0, 0, 0]).unwrap();
    assert!(closed_within(&mut s, 5) < Duration::from_secs(2));
    wait_log(&node, "partial chunk too large");
    // A chunk that continues a chunk stream never started.
    let mut s = handshaken(&node);
    s.write_all(&[0xc5, 1, 2, 3]).unwrap();
    assert!(closed_within(&mut s, 5) < Duration::from_secs(2));
    wait_log(&node, "missing previous chunk header");
    // Chunk headers that contradict each other: a 1000-byte message begun, then continued by a
    // header that says it is 10 bytes long. (The chunk reader's arithmetic overflows on it in
    // debug builds, which is caught; in release builds the message never completes.)
    let mut s = handshaken(&node);
    let mut bytes = vec![3, 0, 0, 0, 0, 0x03, 0xe8, 20, 0, 0, 0, 0];
    bytes.extend([0u8; 128]);
    bytes.extend([0x43, 0, 0, 0, 0, 0, 10, 20]);
    bytes.extend([0u8; 10]);
    s.write_all(&bytes).unwrap();
    closed_within(&mut s, 15);
    eventually("the contradicting chunk headers logged", || {
        let log = node.log();
        (log.contains("inconsistent chunk headers") || log.contains("RTMP connection timed out")).then_some(())
    });
    // An acknowledgement window of 0 (scuffle-rtmp's own session divides by it): the
    // connection goes on and `connect` is answered.
    let mut s = handshaken(&node);
    s.write_all(&message(2, 5, &0u32.to_be_bytes(), 128)).unwrap();
    connect_live(&mut s);
    drop(s);
    // Publishing before connecting.
    let mut s = handshaken(&node);
    let mut publish = amf0_string("publish");
    publish.extend([0x00, 0x40, 0x08, 0, 0, 0, 0, 0, 0, 0x05]);
    publish.extend(amf0_string("sneaky"));
    publish.extend(amf0_string("live"));
    s.write_all(&message(3, 20, &publish, 128)).unwrap();
    assert!(closed_within(&mut s, 5) < Duration::from_secs(2));
    wait_log(&node, "publish before connect");
    still_serves(&node, "after-hostile");
}

#[test]
fn unsupported_codecs_bad_keys_and_bad_apps_are_refused() {
    let node = start("");
    let cases: [(&str, &[&str], &str); 4] = [
        ("live/sorenson", &["-c:v", "flv"], "video: Sorenson H.263"),
        ("live/mp3", &["-c:a", "libmp3lame"], "audio: MP3"),
        ("live/bad.key", &[], "not a valid stream key"),
        ("other/key", &[], "unknown application"),
    ];
    for (path, extra, logged) in cases {
        // In real time, so that ffmpeg is still sending when the connection is closed.
        let out = finished(publisher(&rtmp_url(&node, path), 60, true, extra), 30);
        assert!(!out.status.success(), "{path}: ffmpeg succeeded");
        wait_log(&node, logged);
    }
    assert!(node.log().contains("unsupported codec"), "{}", node.log());
    still_serves(&node, "after-codecs");
}

#[test]
fn streams_that_cannot_be_segmented_are_closed() {
    // A 2 s segment of the publisher below is a few tens of kB.
    let node = start("max_segment_bytes = 400000\n");
    // Each publisher would send 300 s as fast as ffmpeg encodes: it is cut off long before.
    let cases: [(&str, &[&str], &str); 3] = [
        // One keyframe, then none (at a low bitrate, so that the size limit is not what stops it).
        ("live/nokey", &["-g", "100000", "-b:v", "20k"], "no video keyframe in"),
        // Audio and no video.
        ("live/audio-only", &["-vn"], "no video keyframe in"),
        // A keyframe every 20 s at 1 Mbit/s: 400 kB in less than 4 s.
        ("live/big", &["-g", "600", "-b:v", "1M"], "a segment grew past 400000 bytes"),
    ];
    for (path, extra, logged) in cases {
        let before = node.log().matches(logged).count();
        let out = finished(publisher(&rtmp_url(&node, path), 300, false, extra), 60);
        assert!(!out.status.success(), "{path}: ffmpeg published all of it");
        eventually(&format!("{logged:?} logged for {path}"), || {
            (node.log().matches(logged).count() > before).then_some(())
        });
    }
    still_serves(&node, "after-limits");
}
