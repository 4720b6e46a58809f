//! The gateway's HTTP surface: push ingest and HLS output, as go-livepeer's media server.
//!
//! | route | what |
//! |---|---|
//! | `PUT`/`POST /live/{stream}/{seq}.ts` (or `.mp4`) | one segment; `Accept: multipart/mixed` → the renditions, else a JSON summary |
//! | `GET /stream/{stream}.m3u8` | master playlist (the source is rendition `source`) |
//! | `GET /stream/{stream}/{rendition}.m3u8` | media playlist, the last `hls_window` segments |
//! | `GET /stream/{stream}/{rendition}/{seq}.ts` | a segment |
//! | `DELETE /live/{stream}` | end the stream: its playlists get `#EXT-X-ENDLIST` |
//! | `GET /`, `/streams`, `/player/{stream}` | the stream list and a player ([`crate::http::player`]) |
//!
//! Ingest errors, each with a one-line reason in the body: 400 malformed request (unknown
//! extension, empty body, bad header, bad name), 403 the auth webhook refused the stream, 409 an
//! RTMP publisher holds it, 413 larger than `max_segment_bytes`, 422 not a decodable segment,
//! 503 no orchestrator could take it (or the stream is busy), 405 wrong method.

use crate::http::ai;
use crate::http::body::{self, BodyError, Bounds};
use crate::ingest::{Ingest, IngestError, MAX_SEGMENT_MS, NewSegment, SegmentDuration};
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use lp_actors::gateway::SegmentDone;
use lp_pipelines::InputFormat;
use lp_wire::ErrorCode;
use serde_json::json;
use std::time::SystemTime;
use tracing::warn;

#[derive(Clone)]
pub struct GatewayState {
    pub ingest: Ingest,
    pub max_segment_bytes: u64,
    /// The longest an upload may go without sending a byte.
    pub body_timeout: std::time::Duration,
}

/// The longest one upload may take in all, however steadily it trickles in.
const MAX_UPLOAD: std::time::Duration = std::time::Duration::from_secs(300);

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/live/{stream}", web::delete().to(delete))
        .service(
            web::resource("/live/{stream}/{file}")
                .route(web::put().to(push))
                .route(web::post().to(push))
                .default_service(web::to(|| async {
                    plain(StatusCode::METHOD_NOT_ALLOWED, "push segments with PUT or POST")
                })),
        )
        .route("/stream/{stream}.m3u8", web::get().to(master))
        .route("/stream/{stream}.m3u8", web::head().to(master))
        .route("/stream/{stream}/{rendition}.m3u8", web::get().to(media))
        .route("/stream/{stream}/{rendition}.m3u8", web::head().to(media))
        .route("/stream/{stream}/{rendition}/{seq}.ts", web::get().to(segment))
        .route("/stream/{stream}/{rendition}/{seq}.ts", web::head().to(segment));
    cfg.configure(crate::http::player::configure);
    for pipeline in ai::pipelines() {
        cfg.route(&format!("/{}", pipeline.name()), web::post().to(infer));
    }
}

/// `POST /<pipeline>`: a client's AI request, run on an orchestrator that offers its model.
async fn infer(state: web::Data<GatewayState>, req: HttpRequest, payload: web::Payload) -> HttpResponse {
    let Some(pipeline) = ai::pipeline(&req) else {
        return ai::error(&lp_wire::ai::ApiError::http(404, "no such pipeline"));
    };
    let body = match ai::read_body(payload, state.body_timeout).await {
        Ok(body) => body,
        Err(e) => return ai::error(&e),
    };
    ai::respond(state.ingest.gateway().infer(pipeline, ai::content_type(&req), body).await)
}

fn plain(status: StatusCode, reason: impl std::fmt::Display) -> HttpResponse {
    HttpResponse::build(status).content_type("text/plain; charset=utf-8").body(format!("{reason}\n"))
}

pub fn valid_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 128 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The sequence number of a segment file name: the whole base name, or its trailing digits
/// (ffmpeg's HLS muxer names segments `index0.ts`, `index1.ts` …).
fn sequence_number(base: &str) -> Option<i64> {
    let digits = base.len() - base.bytes().rev().take_while(|b| b.is_ascii_digit()).count();
    base[digits..].parse().ok().filter(|&seq| seq <= MAX_SEQ)
}

/// The largest sequence number taken: 2-second segments for 70,000 years, and far from where
/// the playlists' arithmetic could overflow.
const MAX_SEQ: i64 = 1 << 40;

fn status_of(e: &IngestError) -> StatusCode {
    match e {
        IngestError::Denied(_) => StatusCode::FORBIDDEN,
        IngestError::Busy(_) => StatusCode::CONFLICT,
        IngestError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
        IngestError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        IngestError::Failed(f) if f.code == ErrorCode::InvalidInput => StatusCode::UNPROCESSABLE_ENTITY,
        IngestError::Failed(_) | IngestError::Stopped => StatusCode::SERVICE_UNAVAILABLE,
    }
}

async fn push(state: web::Data<GatewayState>, req: HttpRequest, mut body: web::Payload) -> HttpResponse {
    let stream = req.match_info().get("stream").unwrap_or_default().to_string();
    let file = req.match_info().get("file").unwrap_or_default().to_string();
    if !valid_name(&stream) {
        return plain(StatusCode::BAD_REQUEST, "stream names are 1-128 characters of A-Z a-z 0-9 _ -");
    }
    let Some((base, ext)) = file.rsplit_once('.') else {
        return plain(StatusCode::BAD_REQUEST, format!("{file}: no file extension; push .ts or .mp4 segments"));
    };
    if ext.eq_ignore_ascii_case("m3u8") {
        // ffmpeg's HLS muxer also uploads its playlist; the gateway writes its own.
        return plain(StatusCode::OK, "playlist ignored");
    }
    let Some(format) = InputFormat::from_extension(&ext.to_ascii_lowercase()) else {
        return plain(StatusCode::BAD_REQUEST, format!("unknown extension .{ext}; push .ts or .mp4 segments"));
    };
    let Some(seq) = sequence_number(base) else {
        return plain(
            StatusCode::BAD_REQUEST,
            format!("{file}: no sequence number (0 to {MAX_SEQ}) at the end of the file name"),
        );
    };
    let duration_header = match header_value(&req, lp_wire::headers::CONTENT_DURATION) {
        None => None,
        Some(v) => match v.parse::<u64>() {
            Ok(ms) if ms > 0 && ms <= MAX_SEGMENT_MS => Some(ms),
            _ => {
                return plain(
                    StatusCode::BAD_REQUEST,
                    format!("Content-Duration {v:?} is not milliseconds in 1..={MAX_SEGMENT_MS}"),
                );
            }
        },
    };
    if let Some(v) = header_value(&req, "Content-Resolution") {
        let ok = v.split_once('x').is_some_and(|(w, h)| w.parse::<u32>().is_ok() && h.parse::<u32>().is_ok());
        if !ok {
            return plain(StatusCode::BAD_REQUEST, format!("Content-Resolution {v:?} is not WIDTHxHEIGHT"));
        }
    }

    // The body, bounded by max_segment_bytes (Content-Length may be absent: ffmpeg sends chunks).
    let limit = state.max_segment_bytes;
    let too_large =
        || plain(StatusCode::PAYLOAD_TOO_LARGE, format!("segment is larger than max_segment_bytes ({limit} bytes)"));
    let declared = header_value(&req, "Content-Length").and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit) {
        return too_large();
    }
    // A declared size is believed up to 1 MiB (no doubling copies for typical segments); beyond
    // that the buffer grows as bytes actually arrive, so a client cannot reserve memory by
    // declaring a size it never sends.
    let reserve = declared.unwrap_or(0).min(limit).min(1 << 20) as usize;
    let bounds = Bounds { max_bytes: limit, idle: state.body_timeout, total: MAX_UPLOAD };
    let data = match body::read(&mut body, bounds, reserve).await {
        Ok(data) => data,
        Err(BodyError::TooLarge { .. }) => return too_large(),
        Err(e) => {
            warn!(target: "lp::ingest", %stream, seq, error = %e, "upload refused");
            return plain(e.status(), e.to_string());
        }
    };
    if data.is_empty() {
        return plain(StatusCode::BAD_REQUEST, "empty body: the body must be one segment");
    }
    // go-livepeer's webhook URL: http://{Host}{path}.
    let host = header_value(&req, "Host").unwrap_or_default();
    let url = format!("http://{host}{}", req.uri().path());
    let ingest = &state.ingest;
    let segment = NewSegment {
        seq,
        format,
        data: data.freeze(),
        duration: SegmentDuration::Probed { header_ms: duration_header },
        start: SystemTime::now(),
    };
    let done = match ingest.push(&stream, &url, segment).await {
        Ok(done) => done,
        Err(e) => return plain(status_of(&e), &e),
    };

    let wants_multipart = header_value(&req, "Accept").is_some_and(|a| a.contains("multipart/mixed"));
    if wants_multipart { multipart(&done) } else { HttpResponse::Ok().json(summary(&stream, &done)) }
}

fn header_value<'a>(req: &'a HttpRequest, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok()).map(str::trim)
}

fn summary(stream: &str, done: &SegmentDone) -> serde_json::Value {
    json!({
        "stream": stream,
        "seq": done.seq,
        "orchestrator": done.orchestrator,
        "attempts": done.attempts,
        "latency_ms": done.latency.as_millis() as u64,
        "renditions": done.renditions.iter().map(|r| json!({
            "name": r.name, "width": r.width, "height": r.height, "pixels": r.pixels, "bytes": r.data.len(),
        })).collect::<Vec<_>>(),
    })
}

/// go-livepeer's answer: one `multipart/mixed` part per rendition.
fn multipart(done: &SegmentDone) -> HttpResponse {
    let boundary = format!("livepeer-{:016x}", rand::random::<u64>());
    let mut body = Vec::with_capacity(done.renditions.iter().map(|r| r.data.len() + 256).sum());
    for r in &done.renditions {
        let filename = format!("{}_{}.ts", r.name, done.seq);
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Type: video/mp2t; name=\"{filename}\"\r\nContent-Length: {}\r\n\
                 Content-Disposition: attachment; filename=\"{filename}\"\r\nRendition-Name: {}\r\n\r\n",
                r.data.len(),
                r.name
            )
            .as_bytes(),
        );
        body.extend_from_slice(&r.data);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    HttpResponse::Ok().content_type(format!("multipart/mixed; boundary={boundary}")).body(body)
}

/// An HLS answer: CORS open (players on other origins), playlists never cached, segments
/// (which do not change) for a minute.
fn hls(found: Option<(&'static str, bytes::Bytes)>) -> HttpResponse {
    let cors = (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*");
    match found {
        Some((content_type, body)) => {
            let cache = if content_type == MPEGURL { "no-cache" } else { "max-age=60" };
            HttpResponse::Ok()
                .content_type(content_type)
                .insert_header(cors)
                .insert_header((header::CACHE_CONTROL, cache))
                .body(body)
        }
        None => {
            let mut resp = plain(StatusCode::NOT_FOUND, "no such stream, rendition or segment");
            resp.headers_mut().insert(cors.0, header::HeaderValue::from_static("*"));
            resp
        }
    }
}

const MPEGURL: &str = "application/vnd.apple.mpegurl";

async fn master(state: web::Data<GatewayState>, path: web::Path<String>) -> HttpResponse {
    hls(state.ingest.gateway().hls().master(&path).map(|p| (MPEGURL, p.into())))
}

async fn media(state: web::Data<GatewayState>, path: web::Path<(String, String)>) -> HttpResponse {
    let (stream, rendition) = path.into_inner();
    hls(state.ingest.gateway().hls().media(&stream, &rendition).map(|p| (MPEGURL, p.into())))
}

async fn segment(state: web::Data<GatewayState>, path: web::Path<(String, String, String)>) -> HttpResponse {
    let (stream, rendition, seq) = path.into_inner();
    let found = seq.parse::<i64>().ok().and_then(|seq| state.ingest.gateway().hls().segment(&stream, &rendition, seq));
    hls(found.map(|ts| ("video/mp2t", ts)))
}

/// `DELETE /live/{stream}`: end a pushed stream (its playlists get `#EXT-X-ENDLIST`).
async fn delete(state: web::Data<GatewayState>, path: web::Path<String>) -> HttpResponse {
    match state.ingest.end(&path).await {
        Ok(true) => plain(StatusCode::OK, format!("stream {path} ended")),
        Ok(false) => plain(StatusCode::NOT_FOUND, format!("no live stream {path}")),
        Err(e) => plain(status_of(&e), e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_numbers_come_from_the_file_name() {
        assert_eq!(sequence_number("12"), Some(12));
        assert_eq!(sequence_number("index7"), Some(7));
        assert_eq!(sequence_number("seg_003"), Some(3));
        assert_eq!(sequence_number("abc"), None);
        assert_eq!(sequence_number("1099511627776"), Some(MAX_SEQ));
        assert_eq!(sequence_number("9223372036854775807"), None, "too large for the playlists");
        assert_eq!(sequence_number(""), None);
    }

    #[test]
    fn stream_names_are_restricted() {
        assert!(valid_name("my-stream_1"));
        assert!(!valid_name("../etc"));
        assert!(!valid_name(""));
    }
}
