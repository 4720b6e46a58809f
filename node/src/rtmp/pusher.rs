//! One RTMP stream's segments on their way into [`Ingest`]: muxed to MPEG-TS on a blocking
//! thread, then pushed one at a time, in order, and the stream ended after the last.
//!
//! One at a time because the HLS playlists are append-only: a segment that finished after the
//! next one would be left out of them. The connection never waits for this: it hands segments
//! over through a queue of [`QUEUE`] segments, and a segment that finds the queue full
//! (transcoding has fallen that far behind the publisher) is dropped with a warning.

use std::time::SystemTime;

use lp_pipelines::{CutSegment, InputFormat};
use tokio::sync::mpsc;
use tracing::{info, warn};

use crate::ingest::{Admission, Ingest, NewSegment, SegmentDuration};

/// Segments waiting to be pushed, per stream (8 s of media at the default 2 s segments).
pub const QUEUE: usize = 4;

/// The sending end, held by the connection.
pub struct Pusher {
    tx: mpsc::Sender<CutSegment>,
    stream: String,
}

impl Pusher {
    /// Start pushing the segments of `admission`'s stream; once the connection lets go (see
    /// [`Pusher::finish`]) and every queued segment is pushed, the stream is unpublished.
    pub fn start(ingest: Ingest, admission: Admission) -> Pusher {
        let (tx, rx) = mpsc::channel(QUEUE);
        let stream = admission.id.clone();
        actix_web::rt::spawn(run(ingest, admission, rx));
        Pusher { tx, stream }
    }

    /// Queue a finished segment without waiting.
    pub fn push(&self, segment: CutSegment) {
        let seq = segment.seq;
        if let Err(e) = self.tx.try_send(segment) {
            let why = match e {
                mpsc::error::TrySendError::Full(_) => "transcoding has fallen behind the publisher",
                mpsc::error::TrySendError::Closed(_) => "the stream's pusher stopped",
            };
            warn!(target: "lp::rtmp", stream = %self.stream, seq, queued = QUEUE, why, "segment dropped");
        }
    }

    /// The publisher is gone: queue the last segment (waiting for room if need be); the stream
    /// ends after it.
    pub async fn finish(self, last: Option<CutSegment>) {
        if let Some(segment) = last {
            let seq = segment.seq;
            if self.tx.send(segment).await.is_err() {
                warn!(target: "lp::rtmp", stream = %self.stream, seq, "the stream's pusher stopped; last segment dropped");
            }
        }
    }
}

async fn run(ingest: Ingest, admission: Admission, mut rx: mpsc::Receiver<CutSegment>) {
    let stream = admission.id.clone();
    let mut pushed = 0u64;
    while let Some(segment) = rx.recv().await {
        let (seq, duration_ms, start): (u64, u64, SystemTime) = (segment.seq, segment.duration_ms, segment.start);
        let data = match actix_web::web::block(move || segment.to_mpegts()).await {
            Ok(Ok(data)) => data,
            Ok(Err(e)) => {
                warn!(target: "lp::rtmp", %stream, seq, error = %e, "cannot mux the segment; dropped");
                continue;
            }
            Err(e) => {
                warn!(target: "lp::rtmp", %stream, seq, error = %e, "muxing the segment failed; dropped");
                continue;
            }
        };
        let segment = NewSegment {
            seq: seq as i64,
            format: InputFormat::MpegTs,
            data: data.into(),
            duration: SegmentDuration::Exact(duration_ms),
            start,
        };
        // Ingest logs why a segment failed; the stream goes on with the next one.
        if ingest.segment(&admission, segment).await.is_ok() {
            pushed += 1;
        }
    }
    ingest.unpublish(&admission).await;
    info!(target: "lp::rtmp", %stream, segments = pushed, "stream unpublished");
}
