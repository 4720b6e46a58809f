//! A stream's life on the gateway, seen from outside: its playlists end (`#EXT-X-ENDLIST`) when
//! it is deleted or goes idle and stay readable for `hls_retention_secs`; a restart goes on after
//! a discontinuity, never backwards; `record_dir` keeps a VOD of each run; what HLS players need
//! (CORS, content types, `CODECS`, `PROGRAM-DATE-TIME`); and go-livepeer's auth webhook admitting,
//! refusing and being down, served here by a small HTTP server on loopback.

mod common;

use common::*;

fn get(url: &str) -> (u16, String) {
    let resp = http().get(url).send().unwrap();
    (resp.status().as_u16(), resp.text().unwrap())
}

fn listed(playlist: &str) -> Vec<&str> {
    playlist.lines().filter(|l| l.ends_with(".ts")).collect()
}

#[test]
fn a_deleted_stream_ends_its_playlists_a_restart_goes_on_and_the_hls_expires() {
    let node = Node::start("run", &all_in_one("hls_retention_secs = 5"));
    let gw = node.gateway();
    let segments = make_segments(node.dir.path(), 4, 320, 180);
    for (seq, seg) in segments.iter().enumerate() {
        assert_eq!(push(&gw, "life", &format!("{seq}.ts"), seg.clone()).0, 200);
    }
    let (status, live) = get(&format!("{gw}/stream/life/P144p30fps16x9.m3u8"));
    assert_eq!(status, 200);
    assert!(!live.contains("#EXT-X-ENDLIST"), "{live}");

    let deleted = http().delete(format!("{gw}/live/life")).send().unwrap();
    assert_eq!(deleted.status(), 200);
    let ended = eventually("the playlist ends", || {
        let (_, text) = get(&format!("{gw}/stream/life/P144p30fps16x9.m3u8"));
        text.ends_with("#EXT-X-ENDLIST\n").then_some(text)
    });
    assert_eq!(listed(&ended), ["P144p30fps16x9/0.ts", "P144p30fps16x9/1.ts"]);
    assert!(get(&format!("{gw}/stream/life/source.m3u8")).1.ends_with("#EXT-X-ENDLIST\n"));
    assert_eq!(get(&format!("{gw}/stream/life/P144p30fps16x9/1.ts")).0, 200, "an ended stream's segments stay");
    assert_eq!(http().delete(format!("{gw}/live/life")).send().unwrap().status(), 404, "it is not live any more");

    // The pusher starts again from 0: the playlist goes on after a discontinuity.
    assert_eq!(push(&gw, "life", "0.ts", segments[0].clone()).0, 200);
    let (_, restarted) = get(&format!("{gw}/stream/life/P144p30fps16x9.m3u8"));
    assert_eq!(listed(&restarted), ["P144p30fps16x9/0.ts", "P144p30fps16x9/1.ts", "P144p30fps16x9/2.ts"]);
    assert!(restarted.contains("P144p30fps16x9/1.ts\n#EXT-X-DISCONTINUITY\n"), "{restarted}");
    assert!(!restarted.contains("#EXT-X-ENDLIST"), "{restarted}");
    assert_eq!(
        ffprobe_bytes(&http().get(format!("{gw}/stream/life/P144p30fps16x9/2.ts")).send().unwrap().bytes().unwrap())
            .video()
            .frames,
        60
    );

    // Ended again, the HLS is gone after its retention.
    assert_eq!(http().delete(format!("{gw}/live/life")).send().unwrap().status(), 200);
    eventually("the ended stream's HLS expires", || (get(&format!("{gw}/stream/life.m3u8")).0 == 404).then_some(()));
    assert!(node.log().contains("why=\"deleted\""), "{}", node.log());
}

#[test]
fn an_idle_stream_ends_its_playlists_and_a_recording_is_a_complete_vod() {
    let rec = tempfile::tempdir().unwrap();
    let node = Node::start("run", &all_in_one(&format!("stream_idle_timeout_secs = 1\nrecord_dir = {:?}", rec.path())));
    let gw = node.gateway();
    let segments = make_segments(node.dir.path(), 4, 320, 180);
    for (seq, seg) in segments.iter().enumerate() {
        assert_eq!(push(&gw, "rec", &format!("{seq}.ts"), seg.clone()).0, 200);
    }
    eventually("the idle stream's playlist ends", || {
        get(&format!("{gw}/stream/rec/P144p30fps16x9.m3u8")).1.ends_with("#EXT-X-ENDLIST\n").then_some(())
    });

    let stream_dir = rec.path().join("rec");
    let run = eventually("the recording", || std::fs::read_dir(&stream_dir).ok()?.flatten().next()).path();
    let vod = eventually("the recording ends", || {
        std::fs::read_to_string(run.join("P144p30fps16x9.m3u8")).ok().filter(|t| t.ends_with("#EXT-X-ENDLIST\n"))
    });
    assert!(vod.contains("#EXT-X-PLAYLIST-TYPE:VOD"), "{vod}");
    assert_eq!(listed(&vod), ["P144p30fps16x9/0.ts", "P144p30fps16x9/1.ts"]);
    // The recording plays: ffprobe reads the whole VOD through its master playlist.
    let out = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-count_frames",
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=nb_read_frames,width",
        ])
        .args(["-of", "csv=p=0"])
        .arg(run.join("P144p30fps16x9.m3u8"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.lines().next(), Some("256,120"), "{stdout} {}", String::from_utf8_lossy(&out.stderr));
    let master = std::fs::read_to_string(run.join("index.m3u8")).unwrap();
    assert!(master.find("source.m3u8").unwrap() < master.find("P144p30fps16x9.m3u8").unwrap(), "{master}");
}

#[test]
fn hls_answers_carry_what_players_need() {
    let node = Node::start("run", &all_in_one(""));
    let gw = node.gateway();
    let segments = make_segments(node.dir.path(), 2, 320, 180);
    assert_eq!(push(&gw, "p", "0.ts", segments[0].clone()).0, 200);

    let master = http().get(format!("{gw}/stream/p.m3u8")).send().unwrap();
    assert_eq!(master.headers()["content-type"], "application/vnd.apple.mpegurl");
    assert_eq!(master.headers()["access-control-allow-origin"], "*");
    let text = master.text().unwrap();
    // The source first, each variant with its codecs (H.264 + AAC, the test media's) and rate.
    let variants: Vec<&str> = text.lines().filter(|l| l.starts_with("#EXT-X-STREAM-INF")).collect();
    assert_eq!(variants.len(), 2, "{text}");
    assert!(variants[0].contains("NAME=\"source\""), "{text}");
    for v in &variants {
        assert!(v.contains("CODECS=\"avc1.") && v.contains(",mp4a.40.2\""), "{v}");
        assert!(v.contains("FRAME-RATE=30.000"), "{v}");
    }
    let media = get(&format!("{gw}/stream/p/P144p30fps16x9.m3u8")).1;
    assert!(media.contains("#EXT-X-PROGRAM-DATE-TIME:20"), "{media}");
    assert!(media.contains("#EXTINF:2.000,"), "{media}");
    let seg = http().get(format!("{gw}/stream/p/P144p30fps16x9/0.ts")).send().unwrap();
    assert_eq!(seg.headers()["content-type"], "video/mp2t");
    assert_eq!(seg.headers()["access-control-allow-origin"], "*");
    let missing = http().get(format!("{gw}/stream/nope.m3u8")).send().unwrap();
    assert_eq!(missing.status(), 404);
    assert_eq!(missing.headers()["access-control-allow-origin"], "*", "a player on another origin sees the 404");
}

#[test]
fn the_auth_webhook_admits_renames_and_refuses_streams_and_a_dead_one_refuses_all() {
    let hook = Webhook::start(
        200,
        r#"{"manifestID":"renamed","streamID":"op-7","profiles":[{"name":"tiny","width":192,"height":108,"bitrate":150000,"fps":30}]}"#,
    );
    let node = Node::start("run", &all_in_one(&format!("auth_webhook_url = {:?}", hook.url)));
    let gw = node.gateway();
    let segments = make_segments(node.dir.path(), 4, 320, 180);

    // Admitted under the webhook's manifestID, with its profiles; asked once for the stream.
    for (seq, seg) in segments.iter().enumerate() {
        let (status, _, body) = push(&gw, "key1", &format!("{seq}.ts"), seg.clone());
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    }
    let bodies = hook.bodies.lock().unwrap().clone();
    assert_eq!(bodies.len(), 1, "{bodies:?}");
    let asked: serde_json::Value = serde_json::from_str(&bodies[0]).unwrap();
    assert!(asked["url"].as_str().unwrap().ends_with("/live/key1/0.ts"), "{asked}");
    let master = get(&format!("{gw}/stream/renamed.m3u8")).1;
    assert!(master.contains("renamed/tiny.m3u8") && master.contains("RESOLUTION=192x108"), "{master}");
    assert_eq!(get(&format!("{gw}/stream/key1.m3u8")).0, 404, "the stream is known by its manifestID");

    // Refused: 403 with the webhook's status, and nothing is made.
    *hook.answer.lock().unwrap() = (401, "no such key".into());
    let (status, _, body) = push(&gw, "key2", "0.ts", segments[0].clone());
    let text = String::from_utf8_lossy(&body);
    assert_eq!(status, 403, "{text}");
    assert!(text.contains("HTTP 401") && text.contains("no such key"), "{text}");
    assert_eq!(get(&format!("{gw}/stream/key2.m3u8")).0, 404);
    // A 200 with an empty body admits the stream as it is.
    *hook.answer.lock().unwrap() = (200, String::new());
    assert_eq!(push(&gw, "plain", "0.ts", segments[0].clone()).0, 200);
    assert!(get(&format!("{gw}/stream/plain.m3u8")).1.contains("plain/P144p30fps16x9.m3u8"));
    // A 200 whose body is not an answer refuses too.
    *hook.answer.lock().unwrap() = (200, r#"{"manifestID":""}"#.into());
    assert_eq!(push(&gw, "key3", "0.ts", segments[0].clone()).0, 403);

    // The webhook down: refused (fail closed) with a log line; the admitted stream goes on.
    drop(hook);
    let dead = Node::start("run", &all_in_one("auth_webhook_url = \"http://127.0.0.1:1/auth\""));
    let (status, _, body) = push(&dead.gateway(), "key4", "0.ts", segments[0].clone());
    assert_eq!(status, 403, "{}", String::from_utf8_lossy(&body));
    assert!(String::from_utf8_lossy(&body).contains("could not be asked"));
    wait_log(&dead, "stream refused");
    assert_eq!(push(&gw, "key1", "2.ts", segments[0].clone()).0, 200, "the cached admission holds");
}
