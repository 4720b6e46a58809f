//! Ingest: what HTTP push and RTMP share once each has its segments. A stream is admitted (the
//! auth webhook, when configured, answered once per run of the stream), each segment is checked
//! (probed, the source remuxed to MPEG-TS for HLS) and pushed into the gateway, and a stream
//! ends when its publisher leaves or is deleted.
//!
//! HTTP push admits a stream on its first segment and keeps the answer while the stream is
//! live; an RTMP publisher is admitted when it asks to publish and holds its stream until it
//! leaves: a second publisher of a live stream, or HTTP segments pushed into it, are refused.

use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use dashmap::DashMap;
use lp_actors::gateway::{GatewayHandle, IncomingSegment, SegmentDone};
use lp_actors::handle::CallError;
use lp_actors::metrics;
use lp_pipelines::{InputFormat, Profile, TranscodeError};
use lp_wire::{ErrorCode, TranscodeFailure};
use tracing::{info, warn};

use crate::webhook::{AuthWebhook, WebhookError};

/// The longest segment, in milliseconds of media, pushed or in a `Content-Duration` header:
/// longer ones are refused (a live pusher's are seconds long).
pub const MAX_SEGMENT_MS: u64 = 300_000;

/// The longest `Content-Duration` believed when the probe cannot tell (no timestamps): longer
/// than any HLS segment a live pusher makes, short enough not to skew the playlist.
const MAX_UNPROBED_DURATION_MS: u64 = 20_000;

/// How a segment's duration is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SegmentDuration {
    /// Cut by our segmenter: exact, in milliseconds.
    Exact(u64),
    /// Pushed: the probe measures it; the pusher's `Content-Duration` (ms), if any, is a hint
    /// used when the probe cannot tell.
    Probed { header_ms: Option<u64> },
}

/// One segment of a stream, as its ingest received it.
#[derive(Debug, Clone)]
pub struct NewSegment {
    /// The segment's number in its stream (the file name's digits, or the segmenter's count).
    pub seq: i64,
    pub format: InputFormat,
    pub data: Bytes,
    pub duration: SegmentDuration,
    /// Wall-clock time of its first frame.
    pub start: SystemTime,
}

/// A stream the gateway admitted.
#[derive(Debug, Clone, PartialEq)]
pub struct Admission {
    /// The stream's id: its HLS is at `/stream/{id}.m3u8` (the webhook's `manifestID`, else
    /// the stream key).
    pub id: String,
    /// The webhook's renditions for this stream; `None`: the gateway's own.
    pub profiles: Option<Arc<Vec<Profile>>>,
}

/// Why ingest refused a stream or a segment.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum IngestError {
    /// The auth webhook refused the stream or could not be asked (HTTP 403).
    #[error("stream refused: {0}")]
    Denied(String),
    /// An RTMP publisher holds the stream (HTTP 409).
    #[error("{0}")]
    Busy(String),
    /// Not a decodable segment (HTTP 422).
    #[error("not a decodable segment: {0}")]
    Invalid(String),
    /// Our side failed (HTTP 500).
    #[error("{0}")]
    Internal(String),
    /// The gateway refused or failed the segment.
    #[error("{}: {}", .0.code.as_str(), .0.message)]
    Failed(TranscodeFailure),
    /// The gateway dropped the segment (restarting or shutting down; HTTP 503).
    #[error("the gateway dropped the segment (restarting or shutting down)")]
    Stopped,
}

#[derive(Clone)]
pub struct Ingest {
    gateway: GatewayHandle,
    webhook: Option<AuthWebhook>,
    /// HTTP push with a webhook: its answer for each stream key, kept while the stream is live.
    admitted: Arc<DashMap<String, Admission>>,
    /// Streams an RTMP publisher holds, by id.
    published: Arc<DashMap<String, ()>>,
}

impl Ingest {
    pub fn new(gateway: GatewayHandle, webhook: Option<AuthWebhook>) -> Self {
        Ingest { gateway, webhook, admitted: Default::default(), published: Default::default() }
    }

    pub fn gateway(&self) -> &GatewayHandle {
        &self.gateway
    }

    /// HTTP push: one segment of stream `key` (`url`: the request's). The segment is checked
    /// first, then the stream admitted (the webhook asked on the stream's first segment), then
    /// transcoded. Refused while an RTMP publisher holds the stream.
    pub async fn push(&self, key: &str, url: &str, seg: NewSegment) -> Result<SegmentDone, IngestError> {
        let checked = check(key, seg).await?;
        let admission = self.admit(key, url).await?;
        if self.published.contains_key(&admission.id) {
            return Err(IngestError::Busy(format!("an RTMP publisher is streaming to {}", admission.id)));
        }
        self.transcode(&admission, checked).await
    }

    /// The admission of a pushed stream: the webhook's answer is kept while the stream is live.
    async fn admit(&self, key: &str, url: &str) -> Result<Admission, IngestError> {
        if self.webhook.is_none() {
            return Ok(Admission { id: key.to_string(), profiles: None });
        }
        let hls = self.gateway.hls();
        if let Some(a) = self.admitted.get(key).filter(|a| hls.is_live(&a.id)) {
            return Ok(a.clone());
        }
        let admission = self.authenticate(key, url).await?;
        // Keep the answers of live streams only.
        self.admitted.retain(|_, a| hls.is_live(&a.id));
        self.admitted.insert(key.to_string(), admission.clone());
        Ok(admission)
    }

    /// RTMP: a publisher asks to publish stream `key` from `url`. The webhook is asked every
    /// time (each publish starts a run of the stream); a stream already published, or live
    /// otherwise, is refused.
    pub async fn publish(&self, key: &str, url: &str) -> Result<Admission, IngestError> {
        let admission = self.authenticate(key, url).await?;
        match self.published.entry(admission.id.clone()) {
            dashmap::Entry::Occupied(_) => {
                Err(IngestError::Busy(format!("another publisher is streaming to {}", admission.id)))
            }
            // Pushed over HTTP (or still finishing its last segments): publishing now would
            // mix two sources into one run of the playlists.
            dashmap::Entry::Vacant(_) if self.gateway.hls().is_live(&admission.id) => Err(IngestError::Busy(format!(
                "{} is live (pushed over HTTP, or just ended and finishing)",
                admission.id
            ))),
            dashmap::Entry::Vacant(v) => {
                v.insert(());
                Ok(admission)
            }
        }
    }

    /// RTMP: the publisher of `stream` left; the stream ends once its segments in flight are done.
    pub async fn unpublish(&self, stream: &Admission) {
        self.published.remove(&stream.id);
        self.gateway.end(stream.id.clone(), "publisher left").await;
    }

    /// `DELETE /live/{stream}`: end a pushed stream, by id or by the key it was pushed under;
    /// `Ok(false)` when no such stream is live. A stream an RTMP publisher holds is not ended
    /// this way (its publisher would start it again with its next segment): 409.
    pub async fn end(&self, stream: &str) -> Result<bool, IngestError> {
        let id = self.admitted.get(stream).map(|a| a.id.clone()).unwrap_or_else(|| stream.to_string());
        if self.published.contains_key(&id) {
            return Err(IngestError::Busy(format!(
                "an RTMP publisher is streaming to {id}; disconnect it to end the stream"
            )));
        }
        self.admitted.remove(stream);
        Ok(self.gateway.end(id, "deleted").await)
    }

    async fn authenticate(&self, key: &str, url: &str) -> Result<Admission, IngestError> {
        let Some(webhook) = &self.webhook else {
            return Ok(Admission { id: key.to_string(), profiles: None });
        };
        match webhook.authenticate(url).await {
            Ok(answer) => {
                let id = answer.manifest_id.unwrap_or_else(|| key.to_string());
                info!(target: "lp::ingest", stream = %id, %url, stream_id = answer.stream_id.as_deref().unwrap_or(""), "auth webhook admitted the stream");
                Ok(Admission { id, profiles: answer.profiles.map(Arc::new) })
            }
            Err(e) => {
                warn!(target: "lp::ingest", %url, error = %e, "stream refused");
                Err(IngestError::Denied(match e {
                    WebhookError::Unreachable(_) => format!("the auth webhook could not be asked ({e})"),
                    e => e.to_string(),
                }))
            }
        }
    }

    /// RTMP: one segment of an admitted stream, checked and transcoded.
    pub async fn segment(&self, stream: &Admission, seg: NewSegment) -> Result<SegmentDone, IngestError> {
        let checked = check(&stream.id, seg).await?;
        self.transcode(stream, checked).await
    }

    async fn transcode(&self, stream: &Admission, seg: IncomingSegment) -> Result<SegmentDone, IngestError> {
        let seq = seg.seq;
        match self.gateway.push(stream.id.clone(), stream.profiles.clone(), seg).await {
            Ok(done) => {
                info!(target: "lp::ingest", stream = %stream.id, seq, renditions = done.renditions.len(), latency_ms = done.latency.as_millis() as u64, "segment transcoded");
                Ok(done)
            }
            Err(CallError::Refused(failure)) => {
                // Live pushers (ffmpeg's HLS muxer) ignore the answer: the log is where this shows.
                warn!(target: "lp::ingest", stream = %stream.id, seq, error_code = failure.code.as_str(), error = %failure.message, "segment failed");
                Err(IngestError::Failed(failure))
            }
            Err(CallError::Stopped(_)) => Err(IngestError::Stopped),
        }
    }
}

/// Check a segment before any orchestrator (or the webhook) is asked: probe it (a segment that
/// does not decode is refused), measure it, and remux the source to MPEG-TS for HLS.
async fn check(stream: &str, seg: NewSegment) -> Result<IncomingSegment, IngestError> {
    metrics::segment_appeared();
    let (seq, format) = (seg.seq, seg.format);
    let probe_bytes = seg.data.clone();
    let probed = actix_web::web::block(move || {
        let info = lp_pipelines::probe(&probe_bytes, format)?;
        let source_ts = match format {
            InputFormat::MpegTs => Some(probe_bytes),
            InputFormat::Mp4 => match lp_pipelines::remux_to_mpegts(&probe_bytes, format) {
                Ok(ts) => Some(Bytes::from(ts)),
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
        Ok(Err(TranscodeError::InvalidInput(e))) => return Err(refused(stream, seq, e)),
        Ok(Err(e)) => {
            warn!(target: "lp::ingest", %stream, seq, error = %e, "probing the segment failed");
            return Err(IngestError::Internal(format!("probing the segment: {e}")));
        }
        Err(e) => return Err(IngestError::Internal(format!("probing the segment: {e}"))),
    };
    let duration_ms = match seg.duration {
        SegmentDuration::Exact(ms) => ms,
        SegmentDuration::Probed { header_ms } => probed_duration(stream, seq, source.duration_ms, header_ms),
    };
    if duration_ms > MAX_SEGMENT_MS {
        let secs = duration_ms as f64 / 1000.0;
        return Err(refused(
            stream,
            seq,
            format!("the segment spans {secs:.1} s of media; at most {} s", MAX_SEGMENT_MS / 1000),
        ));
    }
    Ok(IncomingSegment {
        seq,
        format,
        data: seg.data,
        source_ts,
        duration_ms,
        width: source.width,
        height: source.height,
        start: seg.start,
    })
}

/// A segment refused as input (`e` says why): counted and logged, as ffmpeg's HLS muxer
/// ignores the answer.
fn refused(stream: &str, seq: i64, e: String) -> IngestError {
    metrics::segment_failed(ErrorCode::InvalidInput);
    warn!(target: "lp::ingest", %stream, seq, error = %e, "segment refused");
    IngestError::Invalid(e)
}

/// The probed duration wins: a header is a hint, used only when the probe cannot tell, and
/// ignored when it disagrees (a 300 s header on a 2 s segment would skew the playlist).
fn probed_duration(stream: &str, seq: i64, probed: u64, header: Option<u64>) -> u64 {
    match (probed, header) {
        (0, header) => header.unwrap_or(2000).min(MAX_UNPROBED_DURATION_MS),
        (probed, Some(header)) if duration_disagrees(header, probed) => {
            warn!(target: "lp::ingest", %stream, seq, header_ms = header, probed_ms = probed, "Content-Duration disagrees with the segment; using the probed duration");
            probed
        }
        (probed, _) => probed,
    }
}

/// How far a `Content-Duration` header may be from the probed duration before it is ignored.
fn duration_disagrees(header_ms: u64, probed_ms: u64) -> bool {
    header_ms.abs_diff(probed_ms) > (probed_ms / 2).max(500)
}
