//! The gateway's player and stream list as a viewer sees them: a live stream pushed over HTTP
//! into a `livepeer run` node (gateway and orchestrator in one process) plays in headless
//! Chromium, driven over the DevTools protocol (a WebSocket, awc's client): the video's time
//! advances, the rendition picker lists the source and the profile, a picked rendition plays at
//! its size, a screenshot of the video is not blank, and the page says "ended" once the stream
//! ends. The stream list has the stream (HTML and JSON), marks it ended afterwards, and bad names
//! are 404.

mod common;

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::pin::Pin;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use awc::ws;
use common::*;
use futures::{Sink, SinkExt, Stream, StreamExt};
use serde_json::{Value, json};

#[test]
fn the_stream_list_has_each_stream_live_then_ended_as_html_and_json() {
    let node = Node::start("run", &all_in_one(""));
    let gw = node.gateway();
    let client = http();
    let html = || {
        let resp = client.get(format!("{gw}/")).send().unwrap();
        assert_eq!(resp.status(), 200);
        assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
        resp.text().unwrap()
    };
    let json_lists = || {
        let accept = client.get(format!("{gw}/")).header("Accept", "application/json").send().unwrap();
        let streams = client.get(format!("{gw}/streams")).send().unwrap();
        [accept.json::<Value>().unwrap(), streams.json::<Value>().unwrap()]
    };

    // Nothing pushed yet: the list says so.
    assert!(html().contains("No streams yet"));
    assert_eq!(json_lists(), [json!({ "streams": [] }), json!({ "streams": [] })]);

    // A stream: its row links the player and the master playlist, and it is live.
    for (seq, seg) in make_segments(node.dir.path(), 4, 320, 180).into_iter().enumerate() {
        let (status, _, body) = push(&gw, "list-me", &format!("{seq}.ts"), seg);
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    }
    let page = html();
    assert!(
        page.contains("<tr class=\"live\"><td><a href=\"/player/list-me\">list-me</a></td>")
            && page.contains("<a href=\"/stream/list-me.m3u8\">")
            && page.contains("source 320x180, P144p30fps16x9 256x144"),
        "{page}"
    );
    for listed in json_lists() {
        let s = &listed["streams"][0];
        assert_eq!((&s["id"], &s["live"]), (&json!("list-me"), &json!(true)), "{listed}");
        assert_eq!((&s["player"], &s["playlist"]), (&json!("/player/list-me"), &json!("/stream/list-me.m3u8")));
        let renditions: Vec<(&str, u64, u64)> = s["renditions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| (r["name"].as_str().unwrap(), r["width"].as_u64().unwrap(), r["height"].as_u64().unwrap()))
            .collect();
        assert_eq!(renditions, [("source", 320, 180), ("P144p30fps16x9", 256, 144)], "{listed}");
        assert!(s["renditions"][0]["bandwidth"].as_u64().unwrap() > 0, "{listed}");
    }

    // Ended, it stays listed (hls_retention_secs), marked ended.
    assert_eq!(client.delete(format!("{gw}/live/list-me")).send().unwrap().status(), 200);
    let page = html();
    assert!(page.contains("<tr class=\"ended\"><td><a href=\"/player/list-me\">list-me</a></td>"), "{page}");
    for listed in json_lists() {
        assert_eq!((&listed["streams"][0]["id"], &listed["streams"][0]["live"]), (&json!("list-me"), &json!(false)));
    }
}

#[test]
fn the_player_page_and_hls_js_are_served_and_bad_names_are_404() {
    let node = Node::start("run", &all_in_one(""));
    let gw = node.gateway();
    let client = http();
    let seg = make_segments(node.dir.path(), 2, 320, 180).remove(0);
    assert_eq!(push(&gw, "on-air", "0.ts", seg).0, 200);

    // The page names the stream, says whether it is live, and plays its master playlist; a
    // stream that has not started is waited for.
    for (stream, status) in [("on-air", "live"), ("not-yet", "waiting")] {
        let resp = client.get(format!("{gw}/player/{stream}")).send().unwrap();
        assert_eq!(resp.status(), 200);
        assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
        assert!(resp.headers()["content-security-policy"].to_str().unwrap().contains("default-src 'self'"));
        let page = resp.text().unwrap();
        assert!(page.contains(&format!("<span id=\"stream\">{stream}</span>")), "{page}");
        assert!(page.contains(&format!("class=\"status {status}\">{status}</span>")), "{page}");
        assert!(page.contains(&format!("data-playlist=\"/stream/{stream}.m3u8\"")), "{page}");
        assert!(page.contains("<video id=\"video\" controls muted autoplay playsinline>"), "{page}");
        assert!(!page.contains("http://") && !page.contains("https://"), "loads nothing from elsewhere: {page}");
    }

    // Not stream names: 404.
    for bad in ["bad..name", "bad%3Cscript%3E", "x%22y", &"a".repeat(129), "hls.min.js.map"] {
        let resp = client.get(format!("{gw}/player/{bad}")).send().unwrap();
        assert_eq!(resp.status(), 404, "{bad}");
    }

    // hls.js, the page's script and its style, each with its type and caching.
    for (file, content_type, cache, has) in [
        ("hls.min.js", "text/javascript", "public, max-age=86400", "\"1.6.19\""),
        ("player.js", "text/javascript", "no-cache", "Hls.Events.MANIFEST_PARSED"),
        ("style.css", "text/css", "no-cache", "video {"),
    ] {
        let resp = client.get(format!("{gw}/player/{file}")).send().unwrap();
        assert_eq!(resp.status(), 200, "{file}");
        assert!(resp.headers()["content-type"].to_str().unwrap().starts_with(content_type), "{file}");
        assert_eq!(resp.headers()["cache-control"], cache, "{file}");
        assert!(resp.text().unwrap().contains(has), "{file} has {has}");
    }
}

#[test]
fn a_live_stream_plays_in_headless_chromium_and_so_does_a_picked_rendition() {
    const STREAM: &str = "player-e2e";
    let node = Node::start("run", &all_in_one(""));
    let gw = node.gateway();
    // 40 s of 320x180 H.264 + AAC in 2 s segments.
    let segments = make_segments(node.dir.path(), 40, 320, 180);
    assert_eq!(segments.len(), 20);

    let chromium = Chromium::launch();
    let browser = actix_web::rt::System::new();
    let mut cdp = browser.block_on(async {
        let mut cdp = Cdp::connect(&chromium.ws_url()).await;
        let target = cdp.call("Target.createTarget", json!({ "url": "about:blank" })).await;
        let attached =
            cdp.call("Target.attachToTarget", json!({ "targetId": target["targetId"], "flatten": true })).await;
        cdp.session = attached["sessionId"].as_str().map(String::from);
        cdp.call("Runtime.enable", json!({})).await;
        cdp.call("Log.enable", json!({})).await;
        let mse = cdp.eval("MediaSource.isTypeSupported('video/mp4; codecs=\"avc1.42E01E,mp4a.40.2\"')").await;
        assert_eq!(mse, true, "this Chromium cannot play H.264 + AAC through Media Source Extensions");

        // The player is opened before the stream starts: it waits.
        cdp.call("Page.navigate", json!({ "url": format!("{gw}/player/{STREAM}") })).await;
        let loaded = "document.readyState === 'complete' && !!document.querySelector('video')";
        cdp.wait_for("the player page", loaded, |v| *v == true).await;
        assert_eq!(cdp.eval("document.getElementById('status').textContent").await, "waiting");
        cdp
    });

    // The stream starts, pushed live from another thread; the page starts playing it.
    let stop = Arc::new(AtomicBool::new(false));
    let pusher = push_live(&gw, STREAM, segments, stop.clone());
    browser.block_on(async {
        let start = cdp.wait_for("the video to start", VIEW, |v| num(&v["time"]) > 0.0 && v["paused"] == false).await;
        let played = cdp.plays_2s("the video", &start).await;
        assert_eq!(played["status"], "live", "{played}");

        // The picker: auto, then each level by name and size.
        let options = cdp.eval("Array.from(document.querySelectorAll('#rendition option'), o => o.textContent)").await;
        let options: Vec<&str> = options.as_array().unwrap().iter().map(|o| o.as_str().unwrap()).collect();
        assert_eq!(options[0], "auto", "{options:?}");
        let mut levels = options[1..].to_vec();
        levels.sort();
        assert_eq!(levels, ["P144p30fps16x9 (256x144)", "source (320x180)"], "{options:?}");
        screenshot(&mut cdp, "auto").await;

        // Pick the 144p rendition as a viewer would: the video comes at its size and keeps playing.
        cdp.eval(
            "(() => { const s = document.getElementById('rendition');
               s.value = Array.from(s.options).find(o => o.textContent.startsWith('P144p30fps16x9')).value;
               s.dispatchEvent(new Event('change')); })()",
        )
        .await;
        let switched = cdp
            .wait_for("the 144p rendition", VIEW, |v| {
                v["height"] == 144 && v["paused"] == false && num(&v["frame"]) > 0.0
            })
            .await;
        let played = cdp.plays_2s("the 144p video", &switched).await;
        assert_eq!((&played["width"], &played["height"]), (&json!(256), &json!(144)), "{played}");
        assert_eq!(played["playing"], "playing P144p30fps16x9 (256x144)", "{played}");
        screenshot(&mut cdp, "P144p30fps16x9").await;

        // The stream ends: the page says so.
        stop.store(true, Ordering::SeqCst);
        let pushed = pusher.join().unwrap();
        for (seq, (status, body)) in pushed.iter().enumerate() {
            assert_eq!(*status, 200, "segment {seq}: {body}");
        }
        let deleted = awc::Client::new().delete(format!("{gw}/live/{STREAM}")).send().await.unwrap();
        assert_eq!(deleted.status(), 200);
        cdp.wait_for("the page to say the stream ended", VIEW, |v| v["status"] == "ended").await;
        if !cdp.log.is_empty() {
            eprintln!("player: the page's console:\n  {}", cdp.log.join("\n  "));
        }
    });
}

/// What the viewer sees: the video's time, the media time of the frame it shows next (`null`
/// when none comes within 0.5 s), its size, frames decoded so far, and the page's status and
/// rendition texts.
const VIEW: &str = "new Promise(done => {
  const v = document.querySelector('video');
  const view = frame => done({ time: v.currentTime, frame, paused: v.paused, width: v.videoWidth,
    height: v.videoHeight, frames: v.getVideoPlaybackQuality().totalVideoFrames,
    status: document.getElementById('status').textContent,
    playing: document.getElementById('playing').textContent });
  const late = setTimeout(() => view(null), 500);
  v.requestVideoFrameCallback((now, m) => { clearTimeout(late); view(m.mediaTime); });
})";

/// A screenshot of the video's box, saved as `<CARGO_TARGET_TMPDIR>/player/<name>.png` (kept after
/// the test), which must show a picture: not one flat colour.
async fn screenshot(cdp: &mut Cdp, name: &str) {
    let rect = cdp
        .eval("(() => { const r = document.querySelector('video').getBoundingClientRect(); return [r.x, r.y, r.width, r.height]; })()")
        .await;
    let r: Vec<f64> = rect.as_array().unwrap().iter().map(num).collect();
    let clip = json!({ "x": r[0], "y": r[1], "width": r[2], "height": r[3], "scale": 1 });
    let png = cdp.call("Page.captureScreenshot", json!({ "format": "png", "clip": clip })).await;
    let png = base64_decode(png["data"].as_str().unwrap());
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("player").join(format!("{name}.png"));
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, &png).unwrap();
    let (w, h, deviation) = luma_deviation(&png);
    eprintln!("player: screenshot {} ({w}x{h}, luma deviation {deviation:.1})", path.display());
    assert!(f64::from(w) >= r[2] - 1.0 && w >= 320, "the screenshot is {w}x{h}, the video box {r:?}");
    assert!(deviation > 20.0, "the video looks blank (luma deviation {deviation:.1}): {}", path.display());
}

/// Push `segments` as `{seq}.ts` of `stream` in real time (one 2 s segment every 2 s), as a live
/// source would, until `stop`; joined, each push's status and body. (Faster, the gateway's
/// `#EXT-X-PROGRAM-DATE-TIME`s, which are the pushes' arrival times, fall behind the segments'
/// durations, and hls.js misplaces the fragments of a rendition it switches to.)
fn push_live(
    gw: &str,
    stream: &'static str,
    segments: Vec<Vec<u8>>,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<Vec<(u16, String)>> {
    let gw = gw.to_string();
    std::thread::spawn(move || {
        let start = Instant::now();
        let mut answers = Vec::new();
        for (seq, seg) in segments.into_iter().enumerate() {
            let due = start + Duration::from_secs(2 * seq as u64);
            while Instant::now() < due && !stop.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(50));
            }
            if stop.load(Ordering::SeqCst) {
                break;
            }
            match http().put(format!("{gw}/live/{stream}/{seq}.ts")).body(seg).send() {
                Ok(resp) => answers.push((resp.status().as_u16(), resp.text().unwrap_or_default())),
                Err(e) => {
                    answers.push((0, e.to_string()));
                    break;
                }
            }
        }
        answers
    })
}

fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or(f64::NAN)
}

fn base64_decode(text: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(text).expect("base64 screenshot")
}

/// A PNG's size and the standard deviation of its luma (0 for a uniform picture).
fn luma_deviation(png: &[u8]) -> (u32, u32, f64) {
    let img = image::load_from_memory(png).expect("a PNG").to_luma8();
    let n = f64::from(img.width() * img.height());
    let mean = img.pixels().map(|p| f64::from(p.0[0])).sum::<f64>() / n;
    let var = img.pixels().map(|p| (f64::from(p.0[0]) - mean).powi(2)).sum::<f64>() / n;
    (img.width(), img.height(), var.sqrt())
}

/// Headless Chromium in its own process group and profile, killed (the group) when dropped.
struct Chromium {
    child: Child,
    dir: tempfile::TempDir,
}

impl Chromium {
    fn launch() -> Chromium {
        let dir = tempfile::tempdir().unwrap();
        let stderr = std::fs::File::create(dir.path().join("chromium.log")).unwrap();
        let child = Command::new("chromium")
            .args([
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--remote-debugging-port=0",
                "--autoplay-policy=no-user-gesture-required",
                "--window-size=1280,900",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-extensions",
                "--disable-background-networking",
                "--mute-audio",
            ])
            .arg(format!("--user-data-dir={}", dir.path().join("profile").display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start `chromium` ({e}): run `make setup`, which installs Debian's chromium package")
            });
        Chromium { child, dir }
    }

    /// The browser's DevTools WebSocket, from `DevToolsActivePort` (port, then path).
    fn ws_url(&self) -> String {
        let file = self.dir.path().join("profile").join("DevToolsActivePort");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some((port, path)) =
                std::fs::read_to_string(&file).ok().as_deref().and_then(|t| t.trim().split_once('\n'))
            {
                return format!("ws://127.0.0.1:{}{}", port.trim(), path.trim());
            }
            let log = || std::fs::read_to_string(self.dir.path().join("chromium.log")).unwrap_or_default();
            assert!(Instant::now() < deadline, "chromium opened no DevTools port in 30 s:\n{}", log());
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Chromium {
    fn drop(&mut self) {
        // The browser and its renderer, GPU and utility processes: the group it leads.
        let _ = Command::new("kill").args(["-KILL", "--", &format!("-{}", self.child.id())]).status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

type Frames = Pin<Box<dyn Stream<Item = Result<ws::Frame, actix_ws::ProtocolError>>>>;
type Messages = Pin<Box<dyn Sink<ws::Message, Error = actix_ws::ProtocolError>>>;

/// A DevTools protocol client over one WebSocket: commands answered by id, on the attached
/// page's session once `session` is set; the page's console and log entries kept in `log`.
struct Cdp {
    out: Messages,
    frames: Frames,
    next_id: u64,
    session: Option<String>,
    log: Vec<String>,
}

impl Cdp {
    async fn connect(url: &str) -> Cdp {
        let (_, conn) = awc::Client::new()
            .ws(url)
            .max_frame_size(64 << 20)
            .connect()
            .await
            .unwrap_or_else(|e| panic!("DevTools WebSocket {url}: {e}"));
        let (out, frames) = conn.split();
        Cdp { out: Box::pin(out), frames: Box::pin(frames), next_id: 0, session: None, log: Vec::new() }
    }

    /// Send `method` and wait (at most 30 s) for its result; a protocol error fails the test.
    async fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut msg = json!({ "id": id, "method": method, "params": params });
        if let Some(session) = &self.session {
            msg["sessionId"] = json!(session);
        }
        self.out.send(ws::Message::Text(msg.to_string().into())).await.expect("DevTools send");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let v = self.receive(deadline, method).await;
            if v["id"] == id {
                assert!(v.get("error").is_none(), "{method}: {}", v["error"]);
                return v["result"].clone();
            }
            self.note_event(&v);
        }
    }

    /// One whole message (continuation frames joined).
    async fn receive(&mut self, deadline: Instant, method: &str) -> Value {
        let mut text = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let frame = actix_web::rt::time::timeout(left, self.frames.next())
                .await
                .unwrap_or_else(|_| panic!("{method}: no answer from Chromium in 30 s"))
                .unwrap_or_else(|| panic!("{method}: Chromium closed the DevTools WebSocket"))
                .expect("DevTools WebSocket");
            match frame {
                ws::Frame::Text(b) => return serde_json::from_slice(&b).expect("DevTools JSON"),
                ws::Frame::Continuation(item) => match item {
                    actix_ws::Item::FirstText(b) | actix_ws::Item::Continue(b) => text.extend_from_slice(&b),
                    actix_ws::Item::Last(b) => {
                        text.extend_from_slice(&b);
                        return serde_json::from_slice(&text).expect("DevTools JSON");
                    }
                    actix_ws::Item::FirstBinary(_) => panic!("{method}: a binary DevTools message"),
                },
                ws::Frame::Ping(p) => self.out.send(ws::Message::Pong(p)).await.expect("pong"),
                ws::Frame::Close(reason) => panic!("{method}: Chromium closed the DevTools WebSocket: {reason:?}"),
                ws::Frame::Pong(_) | ws::Frame::Binary(_) => {}
            }
        }
    }

    fn note_event(&mut self, event: &Value) {
        let p = &event["params"];
        match event["method"].as_str() {
            Some("Runtime.consoleAPICalled") => {
                let args: Vec<String> = p["args"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|a| a["value"].as_str().map(String::from).unwrap_or_else(|| a["description"].to_string()))
                    .collect();
                self.log.push(format!("console.{}: {}", p["type"].as_str().unwrap_or("?"), args.join(" ")));
            }
            Some("Runtime.exceptionThrown") => self.log.push(format!("exception: {}", p["exceptionDetails"])),
            Some("Log.entryAdded") => {
                let e = &p["entry"];
                self.log.push(format!("{}: {} {}", e["level"].as_str().unwrap_or("?"), e["text"], e["url"]))
            }
            _ => {}
        }
    }

    /// The value of `expression` in the page.
    async fn eval(&mut self, expression: &str) -> Value {
        let r = self
            .call("Runtime.evaluate", json!({ "expression": expression, "returnByValue": true, "awaitPromise": true }))
            .await;
        assert!(r.get("exceptionDetails").is_none(), "{expression}: {}", r["exceptionDetails"]);
        r["result"]["value"].clone()
    }

    /// From `from` (a [`VIEW`]), the video plays 2 s: in real time (not a jump), decoding frames,
    /// and the frame it shows is the one of its time. The view then.
    async fn plays_2s(&mut self, what: &str, from: &Value) -> Value {
        let wall = Instant::now();
        let t0 = num(&from["time"]);
        let v = self.wait_for(&format!("{what} to play 2 s"), VIEW, |v| num(&v["time"]) >= t0 + 2.0).await;
        let (secs, frames) = (wall.elapsed().as_secs_f64(), num(&v["frames"]) - num(&from["frames"]));
        eprintln!(
            "player: {what} played {t0:.2} s to {:.2} s in {secs:.2} s, {frames} frames decoded",
            num(&v["time"])
        );
        assert!(secs > 1.5, "{what}: 2 s of video went by in {secs:.2} s: {from} then {v}");
        assert!(frames >= 30.0, "{what}: {frames} frames decoded in 2 s: {from} then {v}");
        assert!((num(&v["frame"]) - num(&v["time"])).abs() < 1.0, "{what}: the frame shown is not the time's: {v}");
        v
    }

    /// Poll `expression` until `ok` (at most 40 s); the last value.
    async fn wait_for(&mut self, what: &str, expression: &str, ok: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(40);
        loop {
            let v = self.eval(expression).await;
            if ok(&v) {
                return v;
            }
            if Instant::now() > deadline {
                self.give_up(what, &v.to_string()).await;
            }
            actix_web::rt::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Fail with the last value, what the page says and the page's console.
    async fn give_up(&mut self, what: &str, last: &str) -> ! {
        let expression = "(() => { const v = document.querySelector('video');
            return JSON.stringify({ text: document.body && document.body.innerText,
              ready: v && v.readyState, error: v && v.error && v.error.message }); })()";
        let page = self.call("Runtime.evaluate", json!({ "expression": expression, "returnByValue": true })).await;
        panic!(
            "waiting for {what}: not within 40 s (last {last}); the page: {}\nits console:\n  {}",
            page["result"]["value"],
            self.log.join("\n  ")
        );
    }
}
