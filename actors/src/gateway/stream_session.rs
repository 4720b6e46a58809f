//! `StreamSession`: one run of a live stream on the gateway, from its first segment until it ends.
//!
//! - **Owns** everything about the stream: its profiles, its current orchestrator session
//!   (sticky; re-selected when it fails or its auth token nears expiry), the sessions it holds
//!   with each orchestrator it used (one per orchestrator, reused across retries, so failures
//!   never open more sessions than there are orchestrators; each is ended on the orchestrator
//!   when the stream stops, which frees its slot at once), its segments in flight and its
//!   recording. Of the renditions an orchestrator answers with, only those of the stream's
//!   profiles are published (names become URLs and file names).
//! - **Bounds** segments in flight at `segment_queue`; one more is answered `GatewayBusy` at once.
//! - **Retries** a failed segment up to `max_attempts` times, preferring another orchestrator
//!   (the orchestrator's pool in turn picks another transcoder); undecodable input is not
//!   retried, and a segment its transcoders crashed on (`TranscoderCrashed`) is retried only on
//!   another orchestrator.
//! - **Pays** (on-chain) through a [`TicketSender`] per orchestrator session: each attempt
//!   carries the tickets for the segment's estimated fee; terms that need refreshing are asked
//!   for again before the segment is sent, never failing it; a session whose price rose above
//!   twice its first is dropped.
//! - **Ends** after `idle_timeout` without segments, or when told ([`EndStream`]: the publisher
//!   left, `DELETE /live/{stream}`) once its segments in flight are done; its playlists then
//!   end (`#EXT-X-ENDLIST`) and stay readable in the [`HlsRegistry`] for the retention time.
//! - **Writes** its HLS into the gateway's [`HlsRegistry`] (one run of the stream's playlists per
//!   session: a stream that starts again goes on after a discontinuity).
//! - **Mailbox**: bounded at [`MAILBOX`].
//! - **Restart policy**: supervised, transient (see `crate::supervision`): after a panic it is
//!   restarted in place with its orchestrator sessions (its HLS is in the registry); the segments it had in
//!   flight fail (their futures are dropped). One that keeps panicking ends, and the stream's
//!   next segment starts a new session.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use actix::prelude::*;
use bytes::Bytes;
use lp_pipelines::{InputFormat, Profile};
use serde_bytes::ByteBuf;
use tracing::{debug, info, warn};

use super::hls::{HlsRegistry, HlsSegment, SOURCE};
use super::orchestrator_pool::{HasAlternatives, OrchestratorPool, OrchestratorSession, SelectOrchestrator, Suspend};
use super::recorder::{Recorder, Recording};
use super::ticket_sender::{CreatePayment, NewTerms, PayError, SenderSettings, Settle, TicketSender};
use super::transport::{OrchestratorTransport, TransportError};
use crate::metrics;
use crate::supervision::Policy;
use lp_wire::{
    Capabilities, ErrorCode, MAX_PATIENCE, OrchestratorRequest, Payment, SegData, TranscodeFailure, TranscodeOutcome,
    TranscodedSegmentData, segment_timeout,
};

pub(crate) const MAILBOX: usize = 64;
/// Refresh a session whose auth token has less than this left (go-livepeer: the last 10% of 30 min).
const TOKEN_REFRESH_MARGIN: Duration = Duration::from_secs(3 * 60);

/// Stream-level settings from the gateway's config.
#[derive(Debug, Clone)]
pub struct StreamSettings {
    pub max_attempts: u32,
    pub segment_queue: usize,
    pub idle_timeout: Duration,
    pub hls_window: usize,
    /// How long an ended stream's HLS stays readable.
    pub hls_retention: Duration,
    /// Where every segment is also written (`record_dir`), if anywhere.
    pub recorder: Option<Recorder>,
    /// On-chain: how segments are paid for. `None` offchain (no tickets).
    pub payments: Option<SenderSettings>,
}

/// One segment pushed to the gateway.
#[derive(Debug, Clone)]
pub struct IncomingSegment {
    pub seq: i64,
    pub format: InputFormat,
    pub data: Bytes,
    /// The segment as MPEG-TS, for the HLS source rendition (`data` itself when it is TS);
    /// `None` leaves the source out of HLS.
    pub source_ts: Option<Bytes>,
    pub duration_ms: u64,
    /// Source resolution, for the master playlist.
    pub width: u32,
    pub height: u32,
    /// Wall-clock time of the segment's first frame.
    pub start: SystemTime,
}

/// A transcoded segment.
#[derive(Debug, Clone)]
pub struct SegmentDone {
    pub seq: i64,
    pub renditions: Vec<TranscodedSegmentData>,
    /// The orchestrator that transcoded it.
    pub orchestrator: String,
    pub attempts: u32,
    pub latency: Duration,
}

/// Transcode a segment of this stream.
#[derive(Message)]
#[rtype(result = "Result<SegmentDone, TranscodeFailure>")]
pub struct PushSegment(pub IncomingSegment);

/// End the stream once its segments in flight are done.
#[derive(Message)]
#[rtype(result = "()")]
pub struct EndStream {
    /// Why, for the log: `publisher left`, `deleted`.
    pub why: &'static str,
}

/// The stream ended; sent to the gateway.
#[derive(Message)]
#[rtype(result = "()")]
pub struct StreamEnded {
    pub id: String,
    pub addr: Addr<StreamSession>,
}

pub struct StreamSession {
    id: String,
    profiles: Arc<Vec<Profile>>,
    settings: StreamSettings,
    pool: Addr<OrchestratorPool>,
    transport: Rc<dyn OrchestratorTransport>,
    ended: Recipient<StreamEnded>,
    current: CurrentSession,
    in_flight: usize,
    last_activity: Instant,
    hls: HlsRegistry,
    /// This session's run of the stream's HLS.
    run: u64,
    /// Why the stream is ending, once it is told to.
    ending: Option<&'static str>,
    /// This run's recording, with `record_dir`.
    recording: Option<(Recorder, Recording)>,
}

impl StreamSession {
    pub fn new(
        id: String,
        profiles: Arc<Vec<Profile>>,
        settings: StreamSettings,
        pool: Addr<OrchestratorPool>,
        transport: Rc<dyn OrchestratorTransport>,
        ended: Recipient<StreamEnded>,
        hls: HlsRegistry,
    ) -> Self {
        let run = hls.start(&id, settings.hls_window);
        let recording = settings.recorder.as_ref().map(|r| (r.clone(), r.recording(&id)));
        info!(target: "lp::gateway", stream = %id, run, "stream started");
        metrics::stream_created();
        StreamSession {
            id,
            profiles,
            settings,
            pool,
            transport,
            ended,
            current: CurrentSession::default(),
            in_flight: 0,
            last_activity: Instant::now(),
            hls,
            run,
            ending: None,
            recording,
        }
    }
}

impl Actor for StreamSession {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(MAILBOX);
        let tick = (self.settings.idle_timeout / 4).max(Duration::from_millis(50));
        ctx.run_interval(tick, |act, ctx| {
            if act.in_flight == 0 && act.last_activity.elapsed() >= act.settings.idle_timeout {
                act.ending.get_or_insert("idle");
                ctx.stop();
            }
        });
    }

    fn stopped(&mut self, ctx: &mut Self::Context) {
        let why = self.ending.unwrap_or("stopped");
        info!(target: "lp::gateway", stream = %self.id, run = self.run, why, "stream ended");
        self.hls.update(&self.id, |hls| hls.end(self.run));
        if let Some((recorder, recording)) = &self.recording {
            recorder.end(recording);
        }
        metrics::stream_ended();
        for session in self.current.held.borrow_mut().drain().map(|(_, s)| s) {
            end_session(&*self.transport, &self.id, session);
        }
        self.ended.do_send(StreamEnded { id: self.id.clone(), addr: ctx.address() });
    }
}

impl Supervised for StreamSession {
    /// The segments in flight were dropped with the futures that carried them.
    fn restarting(&mut self, _: &mut Self::Context) {
        self.in_flight = 0;
    }
}

impl Handler<PushSegment> for StreamSession {
    type Result = ResponseActFuture<Self, Result<SegmentDone, TranscodeFailure>>;

    fn handle(&mut self, PushSegment(seg): PushSegment, _: &mut Self::Context) -> Self::Result {
        self.last_activity = Instant::now();
        // Its number in the stream's playlists (after the last one, when the stream restarted).
        let stored = self.hls.update(&self.id, |hls| hls.arrive(self.run, seg.seq)).flatten().unwrap_or(seg.seq);
        if self.in_flight >= self.settings.segment_queue {
            metrics::segment_failed(ErrorCode::GatewayBusy);
            let failure = TranscodeFailure {
                code: ErrorCode::GatewayBusy,
                message: format!("stream {} already has {} segments in flight", self.id, self.in_flight),
            };
            return Box::pin(async { Err(failure) }.into_actor(self));
        }
        self.in_flight += 1;
        // The renditions whose codecs the master playlist does not have yet: read from this
        // segment, off the actor's thread, and set with it (so no playlist lists it without).
        let mut names: Vec<&str> = self.profiles.iter().map(|p| p.name.as_str()).collect();
        names.push(SOURCE);
        let unknown = self.hls.update(&self.id, |hls| hls.codecs_unknown(&names)).unwrap_or_default();
        let source_ts = seg.source_ts.clone();
        let transcoded = process_segment(
            self.id.clone(),
            seg.clone(),
            self.profiles.clone(),
            self.settings.clone(),
            self.pool.clone(),
            self.transport.clone(),
            self.current.clone(),
        );
        let work = async move {
            let result = transcoded.await;
            let codecs = match &result {
                Ok(done) if !unknown.is_empty() => read_codecs(unknown, source_ts, done).await,
                _ => Vec::new(),
            };
            (result, codecs)
        };
        Box::pin(work.into_actor(self).map(move |(result, codecs), act, ctx| {
            act.in_flight -= 1;
            act.last_activity = Instant::now();
            match &result {
                Ok(done) => {
                    metrics::segment_transcoded(done.latency.as_secs_f64());
                    act.publish(&seg, stored, done, &codecs);
                }
                Err(failure) => metrics::segment_failed(failure.code),
            }
            if act.ending.is_some() && act.in_flight == 0 {
                ctx.stop();
            }
            result
        }))
    }
}

/// The codecs and frame rate of the `names` renditions of a segment (`source`: its source), read
/// with FFmpeg on the blocking pool.
async fn read_codecs(names: Vec<String>, source_ts: Option<Bytes>, done: &SegmentDone) -> Vec<(String, String, f64)> {
    let data: Vec<(String, Bytes)> = names
        .into_iter()
        .filter_map(|name| {
            let ts = match name == SOURCE {
                true => source_ts.clone()?,
                false => Bytes::copy_from_slice(&done.renditions.iter().find(|r| r.name == name)?.data),
            };
            Some((name, ts))
        })
        .collect();
    let read = move || {
        data.into_iter()
            .filter_map(|(name, ts)| {
                let info = lp_pipelines::probe(&ts, InputFormat::MpegTs).ok()?;
                Some((name, info.codecs?, info.fps))
            })
            .collect()
    };
    tokio::task::spawn_blocking(read).await.unwrap_or_default()
}

impl StreamSession {
    /// Put a transcoded segment (and its source) into the stream's HLS as `seq`, with the codecs
    /// read from it (`codecs`: rendition, codecs, frame rate).
    fn publish(&self, seg: &IncomingSegment, seq: i64, done: &SegmentDone, codecs: &[(String, String, f64)]) {
        let source = seg.source_ts.as_ref().map(|ts| (SOURCE, seg.width, seg.height, ts.clone()));
        // Only the renditions asked for, once each, at their profile's size: names and sizes
        // come from the orchestrator, and names become URLs and (recording) file names.
        let mut seen = Vec::new();
        let renditions = done.renditions.iter().filter_map(|r| {
            let p = self.profiles.iter().find(|p| p.name == r.name && !seen.contains(&r.name))?;
            seen.push(r.name.clone());
            Some((p.name.as_str(), p.width, p.height, Bytes::copy_from_slice(&r.data)))
        });
        for (name, width, height, data) in source.into_iter().chain(renditions) {
            let added = HlsSegment { width, height, seq, duration_ms: seg.duration_ms, start: seg.start, data };
            let data = added.data.clone();
            let taken = self.hls.update(&self.id, |hls| {
                let taken = hls.add(self.run, name, added);
                if let Some((_, c, fps)) = codecs.iter().find(|(n, ..)| n == name) {
                    hls.set_codecs(name, c.clone(), *fps);
                }
                taken
            });
            if taken == Some(true)
                && let Some((recorder, recording)) = &self.recording
            {
                recorder.segment(recording, name, width, height, seq, seg.duration_ms, data);
            }
        }
    }
}

impl Handler<EndStream> for StreamSession {
    type Result = ();

    fn handle(&mut self, msg: EndStream, ctx: &mut Self::Context) {
        self.ending = Some(msg.why);
        if self.in_flight == 0 {
            ctx.stop();
        }
    }
}

/// The stream's orchestrator sessions, shared by its segments in flight. Selection is serialized
/// so that concurrent segments of a new stream open one orchestrator session, not one each.
#[derive(Clone, Default)]
struct CurrentSession {
    /// The session segments go to.
    session: Rc<RefCell<Option<OrchestratorSession>>>,
    /// Every session the stream holds, by orchestrator URI: taken again when selection comes
    /// back to that orchestrator, ended when the stream stops.
    held: Rc<RefCell<HashMap<String, OrchestratorSession>>>,
    selecting: Rc<futures::lock::Mutex<()>>,
}

impl CurrentSession {
    /// The current session if usable, else a newly selected one (keeping the auth token of the
    /// session already held with that orchestrator, if any).
    async fn get(
        &self,
        stream: &str,
        pool: &Addr<OrchestratorPool>,
        transport: &dyn OrchestratorTransport,
        avoid: &[String],
        payments: Option<&SenderSettings>,
    ) -> Result<OrchestratorSession, TranscodeFailure> {
        let _selecting = self.selecting.lock().await;
        let usable = self.session.borrow().clone().filter(token_fresh).filter(|s| !avoid.contains(&s.uri));
        if let Some(s) = usable {
            return Ok(s);
        }
        let held: Vec<String> = self.held.borrow().values().filter(|s| token_fresh(s)).map(|s| s.uri.clone()).collect();
        let mut selected = pool
            .send(SelectOrchestrator { avoid: avoid.to_vec(), held })
            .await
            .unwrap_or_else(|_| Err(stopped("the orchestrator pool stopped")))?;
        let previous = self.held.borrow_mut().remove(&selected.uri);
        match previous {
            Some(old) if token_fresh(&old) => {
                selected.info.auth_token = old.info.auth_token;
                selected.payer = old.payer;
                if let Some(payer) = &selected.payer {
                    payer.do_send(NewTerms(selected.info.clone()));
                }
            }
            // Its token is about to expire: the orchestrator can free that session now.
            Some(old) => end_session(transport, stream, old),
            None => {}
        }
        if selected.payer.is_none()
            && let Some(settings) = payments
            && let Some(sender) = TicketSender::new(settings.clone(), &selected.info)
        {
            selected.payer = Some(settings.watchdog.start("ticket_sender", Policy::Transient, sender));
        }
        self.held.borrow_mut().insert(selected.uri.clone(), selected.clone());
        *self.session.borrow_mut() = Some(selected.clone());
        Ok(selected)
    }

    /// Stop sending to `failed` (it failed), unless another segment already replaced it. The
    /// session stays held, for when the stream comes back to that orchestrator; with `forget`
    /// (its token was refused) it is let go as well. Sessions are told apart by their token, so
    /// a late failure of an old session never drops the new one.
    fn drop_if(&self, failed: &OrchestratorSession, forget: bool) {
        let same = |s: &OrchestratorSession| s.uri == failed.uri && session_id(s) == session_id(failed);
        let mut cur = self.session.borrow_mut();
        if cur.as_ref().is_some_and(same) {
            *cur = None;
        }
        let mut held = self.held.borrow_mut();
        if forget && held.get(&failed.uri).is_some_and(same) {
            held.remove(&failed.uri);
        }
    }

    /// Take fresh terms from an answer; the auth token stays the session's.
    fn refresh(&self, uri: &str, info: lp_wire::OrchestratorInfo) {
        let update = |s: &mut OrchestratorSession| {
            let token = s.info.auth_token.take();
            s.info = info.clone();
            s.info.auth_token = token;
        };
        if let Some(payer) = self.held.borrow().get(uri).and_then(|s| s.payer.clone()) {
            payer.do_send(NewTerms(info.clone()));
        }
        if let Some(cur) = self.session.borrow_mut().as_mut().filter(|c| c.uri == uri) {
            update(cur);
        }
        if let Some(held) = self.held.borrow_mut().get_mut(uri) {
            update(held);
        }
    }
}

/// Ask the orchestrator to free `session` (in the background; it idles out anyway if the
/// request is lost).
fn end_session(transport: &dyn OrchestratorTransport, stream: &str, session: OrchestratorSession) {
    let Some(token) = session.info.auth_token else { return };
    let ending = transport.end_session(&session.info.transcoder, token);
    let (stream, uri) = (stream.to_string(), session.uri);
    actix::spawn(async move {
        if let Err(e) = ending.await {
            debug!(target: "lp::gateway", %stream, orchestrator = %uri, error = %e, "could not end the orchestrator session");
        }
    });
}

fn session_id(session: &OrchestratorSession) -> Option<&str> {
    session.info.auth_token.as_ref().map(|t| t.session_id.as_str())
}

fn token_fresh(session: &OrchestratorSession) -> bool {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs() as i64;
    session.info.auth_token.as_ref().is_some_and(|t| t.expiration - now > TOKEN_REFRESH_MARGIN.as_secs() as i64)
}

/// How long one attempt is waited for: go-livepeer's per-segment timeout when another
/// orchestrator could take over, three times that (at most [`MAX_PATIENCE`]) when the stream's
/// orchestrator is the only one, since sending the segment again would only queue a second copy
/// behind the first on the same busy machine. The orchestrator drops the work after it.
fn attempt_timeout(duration_ms: u64, alternatives: bool) -> Duration {
    let timeout = segment_timeout(duration_ms);
    if alternatives { timeout } else { (timeout * 3).min(MAX_PATIENCE) }
}

/// Send a segment to the stream's orchestrator, retrying elsewhere on failure.
async fn process_segment(
    stream: String,
    seg: IncomingSegment,
    profiles: Arc<Vec<Profile>>,
    settings: StreamSettings,
    pool: Addr<OrchestratorPool>,
    transport: Rc<dyn OrchestratorTransport>,
    current: CurrentSession,
) -> Result<SegmentDone, TranscodeFailure> {
    let (max_attempts, payments) = (settings.max_attempts, settings.payments);
    let started = Instant::now();
    let hash = blake3::hash(&seg.data);
    let mut avoid: Vec<String> = Vec::new();
    let mut crashed_on: Vec<String> = Vec::new();
    let mut last_failure = None;
    for attempt in 1..=max_attempts.max(1) {
        if attempt > 1 {
            metrics::transcode_retried(attempt);
        }
        let session = match current.get(&stream, &pool, &*transport, &avoid, payments.as_ref()).await {
            Ok(s) => s,
            Err(failure) => {
                last_failure = Some(failure);
                break;
            }
        };
        if crashed_on.contains(&session.uri) {
            // The poison-job rule: no second try where transcoders already died on it.
            return Err(last_failure.unwrap_or_else(|| stopped("no attempt was made")));
        }
        let alternatives = pool.send(HasAlternatives(session.uri.clone())).await.unwrap_or(false);
        let timeout = attempt_timeout(seg.duration_ms, alternatives);
        let seg_data = SegData {
            manifest_id: ByteBuf::from(stream.as_bytes().to_vec()),
            seq: seg.seq,
            hash: ByteBuf::from(hash.as_bytes().to_vec()),
            sig: ByteBuf::new(),
            duration: seg.duration_ms.min(i32::MAX as u64) as i32,
            capabilities: Some(Capabilities::transcoding()),
            auth_token: session.info.auth_token.clone(),
            profiles: profiles.iter().map(Into::into).collect(),
            format: seg.format.into(),
            segment_parameters: None,
            force_session_reinit: false,
            timeout_ms: timeout.as_millis() as u64,
        };
        let paid = match (&session.payer, &payments) {
            (Some(payer), Some(settings)) => {
                let estimate = CreatePayment { renditions: renditions(&profiles), duration_ms: seg.duration_ms };
                pay(payer, estimate, &session, settings, &*transport, &current).await
            }
            _ => Ok((Payment::default(), 0)),
        };
        let (payment, staged) = match paid {
            Ok(paid) => paid,
            Err(e) => {
                warn!(target: "lp::gateway", stream = %stream, seq = seg.seq, orchestrator = %session.uri, error = %e, "cannot pay the orchestrator");
                // Not this orchestrator session again; a price rise lets it go for good.
                current.drop_if(&session, matches!(e, PayError::PriceRose { .. }));
                avoid.push(session.uri.clone());
                last_failure = Some(TranscodeFailure { code: ErrorCode::PaymentRefused, message: e.to_string() });
                continue;
            }
        };
        let answer =
            transport.submit_segment(&session.info.transcoder, seg_data, payment, seg.data.clone(), timeout).await;
        if let Some(payer) = &session.payer {
            let settle = match &answer {
                Ok(lp_wire::TranscodeResult { result: TranscodeOutcome::Data(data), .. }) => {
                    let pixels = data.segments.iter().map(|s| u64::try_from(s.pixels).unwrap_or(0)).sum();
                    Settle { staged, pixels }
                }
                // Refused (the payment itself, or the segment before its payment was looked
                // at): nothing of it was credited, and the credit this side believed in may not
                // be there either (an orchestrator that no longer knows the session). Start
                // again from none: paying a little more next time, never too little.
                Err(TransportError::Refused(_)) => Settle { staged: 0, pixels: 0 },
                // Paid and credited, but no work done: the credit stays.
                _ => Settle { staged, pixels: 0 },
            };
            payer.do_send(settle);
        }
        let failure = match answer {
            Ok(result) => {
                if let Some(info) = result.info {
                    current.refresh(&session.uri, info);
                }
                match result.result {
                    TranscodeOutcome::Data(data) => {
                        debug!(target: "lp::gateway", stream = %stream, seq = seg.seq, attempt, "segment transcoded");
                        return Ok(SegmentDone {
                            seq: seg.seq,
                            renditions: data.segments,
                            orchestrator: session.uri,
                            attempts: attempt,
                            latency: started.elapsed(),
                        });
                    }
                    TranscodeOutcome::Error(f) => f,
                }
            }
            Err(TransportError::Refused(f)) => f,
            Err(TransportError::Unreachable(e)) => {
                TranscodeFailure { code: ErrorCode::Transport, message: format!("{}: {e}", session.uri) }
            }
        };
        warn!(target: "lp::gateway", stream = %stream, seq = seg.seq, attempt, orchestrator = %session.uri, error = %failure, "segment attempt failed");
        if !failure.code.is_retryable() {
            return Err(failure);
        }
        // Leave this orchestrator session, and forget it when its token itself is refused (the
        // orchestrator restarted); prefer another orchestrator next time.
        // Its payment refused, the session starts over too: new terms, a new balance.
        let forget =
            matches!(failure.code, ErrorCode::AuthFailed | ErrorCode::PaymentRefused | ErrorCode::InsufficientBalance);
        current.drop_if(&session, forget);
        if matches!(failure.code, ErrorCode::Transport | ErrorCode::AuthFailed) {
            pool.do_send(Suspend(session.uri.clone()));
        }
        if failure.code == ErrorCode::TranscoderCrashed {
            crashed_on.push(session.uri.clone());
        }
        avoid.push(session.uri);
        last_failure = Some(failure);
    }
    let last = last_failure.unwrap_or_else(|| stopped("no attempt was made"));
    if last.code == ErrorCode::NoOrchestrators {
        return Err(last);
    }
    Err(TranscodeFailure {
        code: ErrorCode::MaxAttempts,
        message: format!("segment {} failed after {} attempts; last error: {last}", seg.seq, max_attempts),
    })
}

/// The renditions' (width, height, fps) for the fee estimate.
fn renditions(profiles: &[Profile]) -> Vec<(u32, u32, f64)> {
    profiles.iter().map(|p| (p.width, p.height, f64::from(p.fps) / f64::from(p.fps_den.max(1)))).collect()
}

/// Pay for a segment of `session`; terms that need refreshing are asked for once, then paid.
async fn pay(
    payer: &Addr<TicketSender>,
    estimate: CreatePayment,
    session: &OrchestratorSession,
    settings: &SenderSettings,
    transport: &dyn OrchestratorTransport,
    current: &CurrentSession,
) -> Result<(Payment, i128), PayError> {
    let stopped = |_| PayError::Unusable("the ticket sender stopped".into());
    match payer.send(estimate.clone()).await.map_err(stopped)? {
        Err(PayError::Refresh(why)) => {
            debug!(target: "lp::gateway", orchestrator = %session.uri, %why, "refreshing the ticket parameters");
            let (address, sig) = crate::payment::sign_request(&settings.signer);
            let req = OrchestratorRequest {
                address,
                sig,
                capabilities: Some(Capabilities::transcoding()),
                ignore_capacity_check: true,
            };
            let info = transport
                .get_orchestrator(&session.uri, req)
                .await
                .map_err(|e| PayError::Unusable(format!("refreshing the ticket parameters: {e}")))?;
            // The held session's ticket sender takes the new terms with them.
            current.refresh(&session.uri, info);
            payer.send(estimate).await.map_err(stopped)?
        }
        paid => paid,
    }
}

fn stopped(why: &str) -> TranscodeFailure {
    TranscodeFailure { code: ErrorCode::NoOrchestrators, message: why.into() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sole_orchestrator_is_waited_for_longer_than_one_with_alternatives() {
        assert_eq!(attempt_timeout(2_000, true), Duration::from_secs(8));
        assert_eq!(attempt_timeout(2_000, false), Duration::from_secs(24));
        assert_eq!(attempt_timeout(10_000, true), Duration::from_secs(40));
        assert_eq!(attempt_timeout(10_000, false), MAX_PATIENCE);
    }
}
