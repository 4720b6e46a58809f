//! RTMP ingest on the gateway: `rtmp://HOST:PORT/live/{stream_key}` from OBS or ffmpeg, H.264
//! and AAC, cut into MPEG-TS segments (`lp_pipelines::segmenter`) at the first keyframe after
//! `gateway.segment_secs`, and fed into [`Ingest`] like pushed segments: `publish` admits the
//! stream (the auth webhook, one publisher per stream), each segment is transcoded and served
//! as HLS at `/stream/{stream}.m3u8`, and the publisher leaving ends the stream (ENDLIST).
//!
//! | file | owns |
//! |---|---|
//! | `mod.rs` | the listener and the accept loop; the connection count, bounded by `gateway.max_streams` (one more is closed at once, with a warning) |
//! | [`connection`] | one connection: handshake, chunk stream, commands, FLV → segmenter; its timeouts |
//! | [`flv`] | FLV audio/video tag bodies: H.264 and AAC, other codecs named |
//! | [`amf0`] | the bounds check AMF0 commands pass before they are decoded |
//! | [`pusher`] | a stream's segments into ingest, in order, then the end of the stream |
//!
//! No actors: each connection is a task on the node's actix system, its segments' muxing runs
//! on the blocking pool, and its pusher is a second task.
//!
//! # Why scuffle-rtmp
//!
//! We use scuffle-rtmp 0.2 for the parts of RTMP that are pure protocol (the handshake, simple
//! and digest, the chunk reader and writer, the command and control message codecs) and run
//! the session ourselves. Against rml_rtmp 0.8, its chunk reader holds up to what a hostile
//! publisher does: a message may declare at most 10 MiB and its buffer grows only with the
//! bytes that arrive (rml_rtmp reserves the declared length, up to 16 MiB, on the first chunk,
//! and shares one partial buffer across chunk streams, so interleaved messages underflow a
//! length); it keeps at most 4 partial messages and 100 chunk-stream headers, and chunks of at
//! most 64 KiB. It also shares our `hmac`/`sha2`/`rand` versions and is maintained.
//!
//! Its own `ServerSession` is not used: it cannot refuse a publish with a status (only drop the
//! connection), its timeouts are fixed (2 s, 2.5 s), an EOF in the middle of the handshake makes
//! it read in a loop, an acknowledgement window of 0 divides by zero, and it decodes AMF0
//! commands as they come, where a declared array length is reserved up front (an abort for
//! 2^32 elements). Our session checks the C0 version, bounds every wait, checks commands
//! ([`amf0`]) before decoding them, and catches a panic of the chunk reader's arithmetic on
//! inconsistent headers (debug builds check overflow) as a protocol error.
//!
//! # Bounds
//!
//! | what | bound |
//! |---|---|
//! | connections at once | `gateway.max_streams` (refusals logged once per 10 s, with their count) |
//! | accept → `publish` answered | [`connection::PUBLISH_DEADLINE`] (10 s) |
//! | silence while publishing, or a stalled write | [`connection::IDLE_TIMEOUT`] (10 s) |
//! | a message | 10 MiB declared, 4 partial at once (scuffle-rtmp) |
//! | a chunk | 64 KiB (`SetChunkSize` beyond is a protocol error) |
//! | an AMF0 command | [`connection::MAX_COMMAND_BYTES`] (64 KiB), counts within its bytes, [`amf0::MAX_DEPTH`] deep |
//! | a segment | [`MAX_SEGMENT_SECS`] of media without a keyframe, and `gateway.max_segment_bytes` (at most [`MAX_SEGMENT_BYTES`]) |
//! | segments waiting to be pushed | [`pusher::QUEUE`] per stream; more are dropped |

pub mod amf0;
pub mod connection;
pub mod flv;
pub mod pusher;

use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use actix_web::rt::net::TcpListener;
use lp_pipelines::SegmenterSettings;
use tokio::sync::{Semaphore, watch};
use tracing::{info, warn};

use crate::ingest::Ingest;

/// The longest a segment may get while waiting for a keyframe (OBS's default keyframe interval,
/// "auto", is 250 frames: 8.3 s at 30 fps).
pub const MAX_SEGMENT_SECS: u64 = 30;
/// The most bytes of one segment (30 s at 16 Mbit/s is 60 MB).
pub const MAX_SEGMENT_BYTES: u64 = 64 << 20;
/// Connections refused for the connection bound are logged at most this often.
const REFUSAL_LOG_EVERY: Duration = Duration::from_secs(10);
/// How long [`RtmpServer::stop`] waits for connections to close.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// What the RTMP server is told by the gateway's config.
#[derive(Debug, Clone)]
pub struct RtmpSettings {
    /// `gateway.segment_secs`.
    pub segment_secs: u64,
    /// `gateway.max_streams`.
    pub max_connections: usize,
    /// `gateway.max_segment_bytes`.
    pub max_segment_bytes: u64,
}

/// What every connection shares.
pub(crate) struct Shared {
    ingest: Ingest,
    segmenter: SegmenterSettings,
    /// The listener's address.
    addr: SocketAddr,
}

/// The running RTMP listener.
pub struct RtmpServer {
    stop: watch::Sender<bool>,
    connections: Arc<Semaphore>,
    max_connections: usize,
}

impl RtmpServer {
    /// Serve `listener` (already bound) on the current actix system.
    pub fn start(
        listener: std::net::TcpListener,
        ingest: Ingest,
        settings: RtmpSettings,
    ) -> std::io::Result<RtmpServer> {
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let listener = TcpListener::from_std(listener)?;
        let shared = Rc::new(Shared {
            ingest,
            segmenter: SegmenterSettings {
                segment_ms: settings.segment_secs * 1000,
                max_segment_ms: MAX_SEGMENT_SECS * 1000,
                max_segment_bytes: settings.max_segment_bytes.min(MAX_SEGMENT_BYTES),
            },
            addr,
        });
        let max_connections = settings.max_connections.max(1);
        let connections = Arc::new(Semaphore::new(max_connections));
        let (stop, stopped) = watch::channel(false);
        actix_web::rt::spawn(accept(listener, shared, connections.clone(), max_connections, stopped));
        Ok(RtmpServer { stop, connections, max_connections })
    }

    /// Stop accepting and close every connection (each stream ends after its segments in
    /// flight); waits up to a few seconds for the connections to be gone.
    pub async fn stop(&self) {
        let _ = self.stop.send(true);
        let all = self.connections.acquire_many(self.max_connections as u32);
        if tokio::time::timeout(STOP_GRACE, all).await.is_err() {
            warn!(target: "lp::rtmp", "RTMP connections still open after {STOP_GRACE:?}");
        }
    }
}

async fn accept(
    listener: TcpListener,
    shared: Rc<Shared>,
    connections: Arc<Semaphore>,
    max: usize,
    mut stopped: watch::Receiver<bool>,
) {
    let (mut last_warned, mut refused) = (None::<std::time::Instant>, 0u64);
    loop {
        let accepted = tokio::select! {
            Ok(_) = stopped.wait_for(|stop| *stop) => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of file descriptors, most likely: let some close.
                warn!(target: "lp::rtmp", error = %e, "cannot accept an RTMP connection");
                actix_web::rt::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = connections.clone().try_acquire_owned() else {
            // One line per REFUSAL_LOG_EVERY however many are refused (a flood would fill the log).
            refused += 1;
            if last_warned.is_none_or(|at| at.elapsed() >= REFUSAL_LOG_EVERY) {
                warn!(target: "lp::rtmp", %peer, max_connections = max, refused, "too many RTMP connections (gateway.max_streams); refused");
                (last_warned, refused) = (Some(std::time::Instant::now()), 0);
            }
            continue;
        };
        let (shared, stopped) = (shared.clone(), stopped.clone());
        actix_web::rt::spawn(async move {
            connection::serve(stream, peer, shared, stopped).await;
            drop(permit);
        });
    }
    info!(target: "lp::rtmp", "RTMP listener stopped");
}
