//! The gateway's pages for people: a player per stream and the list of streams, over the HLS the
//! gateway already serves (`/stream/…`, [`crate::http::gateway`]). Self-contained: the page, its
//! script and style and hls.js are in the binary (`node/assets/`), nothing comes from the
//! internet.
//!
//! | route | what |
//! |---|---|
//! | `GET /` | the stream list (HTML): live streams first, ended ones (kept `hls_retention_secs`) marked ended; with `Accept: application/json`, the JSON of `/streams` |
//! | `GET /streams` | the stream list as JSON: `{"streams": [{id, live, renditions: [{name, width, height, bandwidth}], player, playlist}]}` |
//! | `GET /player/{stream}` | the player page: plays `/stream/{stream}.m3u8`, says live or ended, picks a rendition; a stream not started yet is waited for |
//! | `GET /player/hls.min.js` | hls.js ([`HLS_JS_VERSION`], its light build: no subtitles, alternate audio or DRM) |
//! | `GET /player/player.js`, `/player/style.css` | the pages' script and style |
//!
//! A stream id that is not a stream name (`[A-Za-z0-9_-]{1,128}`) is 404.

use crate::http::gateway::{GatewayState, valid_name};
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use lp_actors::gateway::StreamListing;
use serde::Serialize;
use std::fmt::Write;
use tracing::debug;

/// The vendored hls.js release (`make update-hls-js` fetches it from npm:
/// scripts/update-hls-js.sh, whose pin must agree).
pub const HLS_JS_VERSION: &str = "1.6.19";

/// `node/assets/hls.light.min.js`, Apache-2.0 (`node/assets/hls.js.LICENSE`).
const HLS_JS: &str = include_str!("../../assets/hls.light.min.js");
const PLAYER_HTML: &str = include_str!("../../assets/player.html");
const PLAYER_JS: &str = include_str!("../../assets/player.js");
const STYLE_CSS: &str = include_str!("../../assets/style.css");

/// What the browser may load on these pages: only this gateway's scripts, styles, playlists and
/// segments (and the `blob:` URLs hls.js makes for its media source and worker).
const CSP: &str = "default-src 'self'; media-src 'self' blob:; worker-src 'self' blob:; img-src 'self' data:; \
                   object-src 'none'; base-uri 'none'; frame-ancestors 'self'";

/// The static files under `/player/`: name, content type, caching, body. hls.js changes only
/// with its pin, so it is cached for a day; the page's own script and style (small) are fetched
/// afresh, so they always match the page. None of the names is a valid stream name (they have a
/// dot), so they cannot shadow a stream's player.
const ASSETS: [(&str, &str, &str, &str); 3] = [
    ("hls.min.js", "text/javascript; charset=utf-8", "public, max-age=86400", HLS_JS),
    ("player.js", "text/javascript; charset=utf-8", "no-cache", PLAYER_JS),
    ("style.css", "text/css; charset=utf-8", "no-cache", STYLE_CSS),
];

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(index))
        .route("/streams", web::get().to(streams_json))
        .route("/player/{file}", web::get().to(player));
}

/// `GET /player/{file}`: a static asset, or the player page of stream `file`.
async fn player(state: web::Data<GatewayState>, path: web::Path<String>) -> HttpResponse {
    let file = path.into_inner();
    if let Some((_, content_type, cache, body)) = ASSETS.iter().find(|(name, ..)| *name == file) {
        return HttpResponse::Ok()
            .content_type(*content_type)
            .insert_header((header::CACHE_CONTROL, *cache))
            .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
            .body(*body);
    }
    if !valid_name(&file) {
        return not_found();
    }
    let hls = state.ingest.gateway().hls();
    let status = match (hls.contains(&file), hls.is_live(&file)) {
        (_, true) => "live",
        (true, false) => "ended",
        (false, false) => "waiting",
    };
    debug!(target: "lp::player", stream = %file, status, "player page");
    let stream = html_escape(&file);
    let page = PLAYER_HTML.replace("{{stream}}", &stream).replace("{{status}}", status);
    html(page)
}

/// `GET /`: the stream list, as HTML or (`Accept: application/json`) JSON.
async fn index(state: web::Data<GatewayState>, req: HttpRequest) -> HttpResponse {
    let wants_json = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("application/json"));
    let list = state.ingest.gateway().hls().list();
    let mut resp = if wants_json { json(&list) } else { html(list_page(&list)) };
    resp.headers_mut().insert(header::VARY, header::HeaderValue::from_static("Accept"));
    resp
}

/// `GET /streams`: the stream list as JSON.
async fn streams_json(state: web::Data<GatewayState>) -> HttpResponse {
    json(&state.ingest.gateway().hls().list())
}

#[derive(Serialize)]
struct Entry<'a> {
    #[serde(flatten)]
    stream: &'a StreamListing,
    /// The player page and the master playlist, paths on this gateway.
    player: String,
    playlist: String,
}

fn json(list: &[StreamListing]) -> HttpResponse {
    let streams: Vec<Entry<'_>> = list
        .iter()
        .map(|s| Entry { stream: s, player: format!("/player/{}", s.id), playlist: format!("/stream/{}.m3u8", s.id) })
        .collect();
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .json(serde_json::json!({ "streams": streams }))
}

/// The stream list page: one row per stream, in [`HlsRegistry::list`]'s order (live first).
///
/// [`HlsRegistry::list`]: lp_actors::gateway::HlsRegistry::list
fn list_page(list: &[StreamListing]) -> String {
    let mut body = String::new();
    if list.is_empty() {
        body.push_str(
            "<p id=\"empty\">No streams yet. Push one over RTMP to <code>rtmp://HOST:1935/live/{stream}</code> \
             or segment by segment with <code>PUT /live/{stream}/{seq}.ts</code>; it shows up here.</p>\n",
        );
    } else {
        body.push_str(
            "<table id=\"streams\">\n<thead><tr><th>stream</th><th>state</th><th>renditions</th><th>playlist</th></tr></thead>\n<tbody>\n",
        );
        for s in list {
            let id = html_escape(&s.id);
            let state = if s.live { "live" } else { "ended" };
            let renditions: Vec<String> =
                s.renditions.iter().map(|r| format!("{} {}x{}", html_escape(&r.name), r.width, r.height)).collect();
            let _ = writeln!(
                body,
                "<tr class=\"{state}\"><td><a href=\"/player/{id}\">{id}</a></td>\
                 <td><span class=\"status {state}\">{state}</span></td><td>{}</td>\
                 <td><a href=\"/stream/{id}.m3u8\">/stream/{id}.m3u8</a></td></tr>",
                renditions.join(", "),
            );
        }
        body.push_str("</tbody>\n</table>\n");
    }
    format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>Streams · livepeer</title>\n<link rel=\"icon\" href=\"data:,\">\n<link rel=\"stylesheet\" href=\"/player/style.css\">\n</head>\n<body>\n\
         <h1>Streams</h1>\n{body}<p class=\"links\">As JSON: <a href=\"/streams\">/streams</a></p>\n</body>\n</html>\n"
    )
}

fn html(page: String) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header((header::CONTENT_SECURITY_POLICY, CSP))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .body(page)
}

fn not_found() -> HttpResponse {
    HttpResponse::build(StatusCode::NOT_FOUND)
        .content_type("text/plain; charset=utf-8")
        .body("no such page: stream names are 1-128 characters of A-Z a-z 0-9 _ -\n")
}

/// Text for HTML element content and quoted attribute values.
fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use lp_actors::gateway::RenditionListing;

    #[test]
    fn the_vendored_hls_js_is_the_pinned_release() {
        assert!(
            HLS_JS.contains(&format!("\"{HLS_JS_VERSION}\"")),
            "node/assets/hls.light.min.js is not {HLS_JS_VERSION}"
        );
        let script = include_str!("../../../scripts/update-hls-js.sh");
        assert!(
            script.contains(&format!("HLS_JS_VERSION:-{HLS_JS_VERSION}}}")),
            "scripts/update-hls-js.sh pins another version"
        );
    }

    #[test]
    fn html_is_escaped() {
        assert_eq!(html_escape(r#"<a href="x">'&'</a>"#), "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
        assert_eq!(html_escape("my-stream_1"), "my-stream_1");
    }

    #[test]
    fn the_list_marks_ended_streams_and_says_when_empty() {
        let stream = |id: &str, live| StreamListing {
            id: id.into(),
            live,
            renditions: vec![RenditionListing { name: "source".into(), width: 320, height: 180, bandwidth: 1 }],
        };
        let page = list_page(&[stream("on", true), stream("off", false)]);
        assert!(page.contains("<tr class=\"live\"><td><a href=\"/player/on\">on</a>"), "{page}");
        assert!(page.contains("<tr class=\"ended\"><td><a href=\"/player/off\">off</a>"), "{page}");
        assert!(page.contains("<a href=\"/stream/off.m3u8\">") && page.contains("source 320x180"), "{page}");
        assert!(list_page(&[]).contains("No streams yet"));
    }

    #[test]
    fn assets_are_not_stream_names() {
        for (name, ..) in ASSETS {
            assert!(!valid_name(name), "{name} would shadow a stream's player");
        }
    }
}
