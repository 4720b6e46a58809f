//! The gateway's HTTP surface: push ingest and HLS output, as go-livepeer's media server.
//!
//! | route | what |
//! |---|---|
//! | `PUT`/`POST /live/{stream}/{seq}.ts` (or `.mp4`) | one segment; `Accept: multipart/mixed` → the renditions, else a JSON summary |
//! | `GET /stream/{stream}.m3u8` | master playlist (the source is rendition `source`) |
//! | `GET /stream/{stream}/{rendition}.m3u8` | media playlist, the last `hls_window` segments |
//! | `GET /stream/{stream}/{rendition}/{seq}.ts` | a segment |
//!
//! Ingest errors, each with a one-line reason in the body: 400 malformed request (unknown
//! extension, empty body, bad header, bad name), 413 larger than `max_segment_bytes`, 422 not a
//! decodable segment, 503 no orchestrator could take it (or the stream is busy), 405 wrong method.

use crate::http::ai;
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use futures::StreamExt;
use lp_actors::gateway::{GatewayHandle, GetHls, HlsItem, IncomingSegment, SegmentDone};
use lp_actors::handle::CallError;
use lp_actors::metrics;
use lp_pipelines::{InputFormat, TranscodeError};
use lp_wire::{ErrorCode, TranscodeFailure};
use serde_json::json;
use tracing::{info, warn};

#[derive(Clone)]
pub struct GatewayState {
    pub gateway: GatewayHandle,
    pub max_segment_bytes: u64,
    /// The longest an upload may go without sending a byte.
    pub body_timeout: std::time::Duration,
}

/// The longest `Content-Duration` believed when the probe cannot tell (no timestamps): longer
/// than any HLS segment a live pusher makes, short enough not to skew the playlist.
const MAX_UNPROBED_DURATION_MS: u64 = 20_000;
/// The longest one upload may take in all, however steadily it trickles in.
const MAX_UPLOAD: std::time::Duration = std::time::Duration::from_secs(300);

/// How far a `Content-Duration` header may be from the probed duration before it is ignored.
fn duration_disagrees(header_ms: u64, probed_ms: u64) -> bool {
    header_ms.abs_diff(probed_ms) > (probed_ms / 2).max(500)
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/live/{stream}/{file}").route(web::put().to(push)).route(web::post().to(push)).default_service(
            web::to(|| async { plain(StatusCode::METHOD_NOT_ALLOWED, "push segments with PUT or POST") }),
        ),
    )
    .route("/stream/{stream}.m3u8", web::get().to(master))
    .route("/stream/{stream}.m3u8", web::head().to(master))
    .route("/stream/{stream}/{rendition}.m3u8", web::get().to(media))
    .route("/stream/{stream}/{rendition}.m3u8", web::head().to(media))
    .route("/stream/{stream}/{rendition}/{seq}.ts", web::get().to(segment))
    .route("/stream/{stream}/{rendition}/{seq}.ts", web::head().to(segment));
    for pipeline in ai::pipelines() {
        cfg.route(&format!("/{}", pipeline.name()), web::post().to(infer));
    }
}

/// `POST /<pipeline>`: a client's AI request, run on an orchestrator that offers its model.
async fn infer(state: web::Data<GatewayState>, req: HttpRequest, payload: web::Payload) -> HttpResponse {
    let Some(pipeline) = ai::pipeline(&req) else {
        return ai::error(&lp_wire::ai::ApiError::http(404, "no such pipeline"));
    };
    let body = match ai::read_body(payload).await {
        Ok(body) => body,
        Err(e) => return ai::error(&e),
    };
    ai::respond(state.gateway.infer(pipeline, ai::content_type(&req), body).await)
}

fn plain(status: StatusCode, reason: impl std::fmt::Display) -> HttpResponse {
    HttpResponse::build(status).content_type("text/plain; charset=utf-8").body(format!("{reason}\n"))
}

fn valid_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 128 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The sequence number of a segment file name: the whole base name, or its trailing digits
/// (ffmpeg's HLS muxer names segments `index0.ts`, `index1.ts` …).
fn sequence_number(base: &str) -> Option<i64> {
    let digits = base.len() - base.bytes().rev().take_while(|b| b.is_ascii_digit()).count();
    base[digits..].parse().ok()
}

fn status_for(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::InvalidInput => StatusCode::UNPROCESSABLE_ENTITY,
        _ => StatusCode::SERVICE_UNAVAILABLE,
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
        return plain(StatusCode::BAD_REQUEST, format!("{file}: no sequence number in the file name"));
    };
    let duration_header = match header_value(&req, lp_wire::headers::CONTENT_DURATION) {
        None => None,
        Some(v) => match v.parse::<u64>() {
            Ok(ms) if ms > 0 && ms <= 300_000 => Some(ms),
            _ => {
                return plain(
                    StatusCode::BAD_REQUEST,
                    format!("Content-Duration {v:?} is not milliseconds in 1..=300000"),
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
    let mut data = web::BytesMut::with_capacity(declared.unwrap_or(0).min(limit).min(1 << 20) as usize);
    let upload_ends = actix_web::rt::time::Instant::now() + MAX_UPLOAD;
    loop {
        let silence =
            state.body_timeout.min(upload_ends.saturating_duration_since(actix_web::rt::time::Instant::now()));
        let chunk = match actix_web::rt::time::timeout(silence, body.next()).await {
            Ok(Some(chunk)) => chunk,
            Ok(None) => break,
            Err(_) => {
                warn!(target: "lp::ingest", %stream, seq, received = data.len(), "upload stalled; refused");
                let why = if actix_web::rt::time::Instant::now() >= upload_ends {
                    format!("the upload took longer than {MAX_UPLOAD:?}")
                } else {
                    format!("no body bytes for {:?} after {} bytes", state.body_timeout, data.len())
                };
                return plain(StatusCode::REQUEST_TIMEOUT, why);
            }
        };
        match chunk {
            Ok(c) => {
                if (data.len() + c.len()) as u64 > limit {
                    return too_large();
                }
                data.extend_from_slice(&c);
            }
            Err(e) => return plain(StatusCode::BAD_REQUEST, format!("reading the body: {e}")),
        }
    }
    if data.is_empty() {
        return plain(StatusCode::BAD_REQUEST, "empty body: the body must be one segment");
    }
    let data = data.freeze();
    metrics::segment_appeared();

    // Classify the input before any orchestrator is asked; HLS serves the source as MPEG-TS.
    let probe_bytes = data.clone();
    let probed = web::block(move || {
        let info = lp_pipelines::probe(&probe_bytes, format)?;
        let source_ts = match format {
            InputFormat::MpegTs => Some(probe_bytes),
            InputFormat::Mp4 => match lp_pipelines::remux_to_mpegts(&probe_bytes, format) {
                Ok(ts) => Some(web::Bytes::from(ts)),
                Err(e @ TranscodeError::InvalidInput(_)) => return Err(e),
                // Our side failed, not the segment: transcode it, without a source rendition.
                Err(e) => {
                    warn!(target: "lp::ingest", error = %e, "cannot remux the source to MPEG-TS; HLS leaves it out");
                    None
                }
            },
        };
        Ok::<_, TranscodeError>((info, source_ts))
    })
    .await;
    let (source, source_ts) = match probed {
        Ok(Ok(probed)) => probed,
        Ok(Err(e @ TranscodeError::InvalidInput(_))) => {
            metrics::segment_failed(ErrorCode::InvalidInput);
            warn!(target: "lp::ingest", %stream, seq, error = %e, "segment refused");
            return plain(StatusCode::UNPROCESSABLE_ENTITY, format!("not a decodable segment: {e}"));
        }
        Ok(Err(e)) => {
            warn!(target: "lp::ingest", %stream, seq, error = %e, "probing the segment failed");
            return plain(StatusCode::INTERNAL_SERVER_ERROR, format!("probing the segment: {e}"));
        }
        Err(e) => return plain(StatusCode::INTERNAL_SERVER_ERROR, format!("probing the segment: {e}")),
    };
    // The probed duration wins: a header is a hint, used only when the probe cannot tell, and
    // ignored when it disagrees (a 300 s header on a 2 s segment would skew the playlist).
    let duration_ms = match (source.duration_ms, duration_header) {
        (0, header) => header.unwrap_or(2000).min(MAX_UNPROBED_DURATION_MS),
        (probed, Some(header)) if duration_disagrees(header, probed) => {
            warn!(target: "lp::ingest", %stream, seq, header_ms = header, probed_ms = probed, "Content-Duration disagrees with the segment; using the probed duration");
            probed
        }
        (probed, _) => probed,
    };
    let segment =
        IncomingSegment { seq, format, data, source_ts, duration_ms, width: source.width, height: source.height };
    let done = match state.gateway.push(stream.clone(), segment).await {
        Ok(done) => done,
        Err(CallError::Refused(TranscodeFailure { code, message })) => {
            // Live pushers (ffmpeg's HLS muxer) ignore the answer: the log is where this shows.
            warn!(target: "lp::ingest", %stream, seq, error_code = code.as_str(), error = %message, "segment failed");
            return plain(status_for(code), format!("{}: {message}", code.as_str()));
        }
        Err(CallError::Stopped(_)) => {
            return plain(
                StatusCode::SERVICE_UNAVAILABLE,
                "the gateway dropped the segment (restarting or shutting down)",
            );
        }
    };
    info!(target: "lp::ingest", %stream, seq, renditions = done.renditions.len(), latency_ms = done.latency.as_millis() as u64, "segment transcoded");

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

async fn read_hls(state: &GatewayState, stream: &str, what: GetHls) -> HttpResponse {
    let item = state.gateway.read_hls(stream.to_string(), what).await;
    let cors = (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*");
    match item {
        Some(HlsItem::Playlist(text)) => HttpResponse::Ok()
            .content_type("application/vnd.apple.mpegurl")
            .insert_header(cors)
            .insert_header((header::CACHE_CONTROL, "no-cache"))
            .body(text),
        Some(HlsItem::Segment(bytes)) => HttpResponse::Ok()
            .content_type("video/mp2t")
            .insert_header(cors)
            .insert_header((header::CACHE_CONTROL, "max-age=60"))
            .body(bytes),
        None => plain(StatusCode::NOT_FOUND, "no such stream, rendition or segment"),
    }
}

async fn master(state: web::Data<GatewayState>, path: web::Path<String>) -> HttpResponse {
    read_hls(&state, &path, GetHls::Master).await
}

async fn media(state: web::Data<GatewayState>, path: web::Path<(String, String)>) -> HttpResponse {
    let (stream, rendition) = path.into_inner();
    read_hls(&state, &stream, GetHls::Media(rendition)).await
}

async fn segment(state: web::Data<GatewayState>, path: web::Path<(String, String, String)>) -> HttpResponse {
    let (stream, rendition, seq) = path.into_inner();
    let Ok(seq) = seq.parse::<i64>() else {
        return plain(StatusCode::NOT_FOUND, "no such segment");
    };
    read_hls(&state, &stream, GetHls::Segment(rendition, seq)).await
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
        assert_eq!(sequence_number(""), None);
    }

    #[test]
    fn stream_names_are_restricted() {
        assert!(valid_name("my-stream_1"));
        assert!(!valid_name("../etc"));
        assert!(!valid_name(""));
    }
}
