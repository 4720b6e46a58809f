//! `Gateway`: the gateway role's root actor.
//!
//! - **Owns** the map of live [`StreamSession`]s (one per stream id) and the stream cap
//!   (`max_streams`; one more stream is answered `GatewayBusy`).
//! - **Routes** pushed segments to the stream's session, starting a session on a stream's first
//!   segment, and ends streams ([`End`]).
//! - **Sweeps** the [`HlsRegistry`] (read by viewers without this actor): ended streams are
//!   forgotten after `hls_retention`.
//! - **Mailbox**: bounded at [`MAILBOX`].
//! - **Restart policy**: supervised, [`Policy::Permanent`]: restarted in place after a panic
//!   (its stream map survives; the pushes in flight through it fail). Stream sessions run under
//!   the same [`Watchdog`], [`Policy::Transient`].

use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use lp_pipelines::Profile;
use serde::Serialize;

use super::hls::HlsRegistry;
use super::orchestrator_pool::OrchestratorPool;
use super::stream_session::{
    EndStream, IncomingSegment, PushSegment, SegmentDone, StreamEnded, StreamSession, StreamSettings,
};
use super::transport::OrchestratorTransport;
use crate::metrics;
use crate::supervision::{Policy, Watchdog, inject_panic};
use lp_wire::{ErrorCode, TranscodeFailure};

const MAILBOX: usize = 1024;

pub struct Gateway {
    streams: HashMap<String, Addr<StreamSession>>,
    /// Sessions told to end that are finishing their segments in flight.
    ending: HashMap<String, Addr<StreamSession>>,
    profiles: Arc<Vec<Profile>>,
    settings: StreamSettings,
    max_streams: usize,
    pool: Addr<OrchestratorPool>,
    transport: Rc<dyn OrchestratorTransport>,
    watchdog: Watchdog,
    hls: HlsRegistry,
}

impl Gateway {
    pub fn new(
        profiles: Vec<Profile>,
        settings: StreamSettings,
        max_streams: usize,
        pool: Addr<OrchestratorPool>,
        transport: Rc<dyn OrchestratorTransport>,
    ) -> Self {
        Gateway {
            streams: HashMap::new(),
            ending: HashMap::new(),
            profiles: Arc::new(profiles),
            settings,
            max_streams,
            pool,
            transport,
            watchdog: Watchdog::new(),
            hls: HlsRegistry::default(),
        }
    }

    /// Write the streams' HLS into `hls`.
    pub fn hls(mut self, hls: &HlsRegistry) -> Self {
        self.hls = hls.clone();
        self
    }

    /// Supervise the stream sessions under the node's watchdog (by default, one of their own).
    pub fn supervised_by(mut self, watchdog: &Watchdog) -> Self {
        self.watchdog = watchdog.clone();
        self
    }
}

impl Supervised for Gateway {}

inject_panic!(Gateway);

impl Actor for Gateway {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(MAILBOX);
        metrics::declare_retries(self.settings.max_attempts);
        let retention = self.settings.hls_retention;
        ctx.run_interval((retention / 4).clamp(Duration::from_millis(50), Duration::from_secs(10)), move |act, _| {
            let (streams, ending) = (&act.streams, &act.ending);
            let running = |id: &str| [streams, ending].iter().any(|m| m.get(id).is_some_and(|a| a.connected()));
            act.hls.sweep(retention, running);
            act.ending.retain(|_, a| a.connected());
        });
    }
}

/// A segment pushed to `stream`.
#[derive(Message)]
#[rtype(result = "Result<SegmentDone, TranscodeFailure>")]
pub struct Push {
    pub stream: String,
    /// The stream's renditions, if not the gateway's (taken when the push starts the stream).
    pub profiles: Option<Arc<Vec<Profile>>>,
    pub segment: IncomingSegment,
}

/// End `stream` (its publisher left, or `DELETE /live/{stream}`); `false` if it is not live.
#[derive(Message)]
#[rtype(result = "bool")]
pub struct End {
    pub stream: String,
    pub why: &'static str,
}

/// A snapshot for `/status`.
#[derive(Message)]
#[rtype(result = "GatewayStatus")]
pub struct GetGatewayStatus;

#[derive(Debug, Clone, Serialize)]
pub struct GatewayStatus {
    pub streams: Vec<String>,
    pub profiles: Vec<String>,
}

impl Gateway {
    /// The stream's session, starting one for a new stream (or one that just ended).
    fn session(
        &mut self,
        stream: &str,
        profiles: Option<Arc<Vec<Profile>>>,
        ctx: &mut Context<Self>,
    ) -> Result<Addr<StreamSession>, TranscodeFailure> {
        if let Some(addr) = self.streams.get(stream).filter(|a| a.connected()) {
            return Ok(addr.clone());
        }
        self.streams.remove(stream);
        if self.streams.len() >= self.max_streams {
            metrics::segment_failed(ErrorCode::GatewayBusy);
            return Err(TranscodeFailure {
                code: ErrorCode::GatewayBusy,
                message: format!("the gateway already serves its max_streams ({})", self.max_streams),
            });
        }
        let session = StreamSession::new(
            stream.to_string(),
            profiles.unwrap_or_else(|| self.profiles.clone()),
            self.settings.clone(),
            self.pool.clone(),
            self.transport.clone(),
            ctx.address().recipient(),
            self.hls.clone(),
        );
        let addr = self.watchdog.start("stream_session", Policy::Transient, session);
        self.streams.insert(stream.to_string(), addr.clone());
        Ok(addr)
    }
}

impl Handler<Push> for Gateway {
    type Result = ResponseActFuture<Self, Result<SegmentDone, TranscodeFailure>>;

    fn handle(&mut self, msg: Push, ctx: &mut Self::Context) -> Self::Result {
        let session = match self.session(&msg.stream, msg.profiles.clone(), ctx) {
            Ok(s) => s,
            Err(failure) => return Box::pin(fut::ready(Err(failure))),
        };
        let Push { stream, profiles, segment } = msg;
        let retry = segment.clone();
        let first = session.send(PushSegment(segment));
        Box::pin(first.into_actor(self).then(move |answer, act, ctx| {
            // The session may have stopped (idle) between lookup and delivery: start a new one.
            // One still connected dropped the segment in a restart after a panic: the segment
            // may be what made it panic, so it is not sent to it again.
            let resend = answer.map_err(|_| match session.connected() {
                true => Err(TranscodeFailure {
                    code: ErrorCode::TranscoderFailed,
                    message: "the stream's session failed on this segment and restarted".into(),
                }),
                false => act.session(&stream, profiles, ctx).map(|s| s.send(PushSegment(retry))),
            });
            async move {
                match resend {
                    Ok(result) => result,
                    Err(Ok(send)) => send.await.unwrap_or_else(|_| {
                        Err(TranscodeFailure {
                            code: ErrorCode::GatewayBusy,
                            message: "the stream is ending; push again".into(),
                        })
                    }),
                    Err(Err(failure)) => Err(failure),
                }
            }
            .into_actor(act)
        }))
    }
}

impl Handler<End> for Gateway {
    type Result = bool;

    /// The session finishes its segments in flight; a segment pushed meanwhile starts the
    /// stream's next run in a new session.
    fn handle(&mut self, msg: End, _: &mut Self::Context) -> bool {
        match self.streams.remove(&msg.stream).filter(|a| a.connected()) {
            Some(session) => {
                session.do_send(EndStream { why: msg.why });
                self.ending.insert(msg.stream, session);
                true
            }
            None => false,
        }
    }
}

impl Handler<StreamEnded> for Gateway {
    type Result = ();

    fn handle(&mut self, msg: StreamEnded, _: &mut Self::Context) {
        // Only forget the session that ended, not a newer one under the same id.
        for map in [&mut self.streams, &mut self.ending] {
            if map.get(&msg.id) == Some(&msg.addr) {
                map.remove(&msg.id);
            }
        }
    }
}

impl Handler<GetGatewayStatus> for Gateway {
    type Result = MessageResult<GetGatewayStatus>;

    fn handle(&mut self, _: GetGatewayStatus, _: &mut Self::Context) -> Self::Result {
        let mut streams: Vec<String> = self.streams.keys().cloned().collect();
        streams.sort();
        MessageResult(GatewayStatus { streams, profiles: self.profiles.iter().map(|p| p.name.clone()).collect() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::{InProcess, ListOrchestrators};

    #[actix::test]
    async fn the_mailboxes_of_the_gateway_its_orchestrator_pool_and_a_stream_session_hold_their_bounds() {
        let transport: Rc<dyn OrchestratorTransport> = Rc::new(InProcess::default());
        let pool = OrchestratorPool::new(vec!["o".into()], transport.clone()).start();
        let settings = crate::testing::stream_settings();
        let gateway = Gateway::new(Vec::new(), settings.clone(), 1, pool.clone(), transport.clone()).start();
        gateway.send(GetGatewayStatus).await.unwrap();
        crate::testing::assert_mailbox_bound(&gateway, MAILBOX, || GetGatewayStatus);
        pool.send(ListOrchestrators).await.unwrap();
        crate::testing::assert_mailbox_bound(&pool, crate::gateway::orchestrator_pool::MAILBOX, || ListOrchestrators);

        // A stream session has no message that changes nothing: it is let start (its `started`
        // sets the bound) by yielding to it, and given ends (which wait for its segments).
        let (profiles, ended) = (Arc::new(Vec::new()), gateway.recipient());
        let session =
            StreamSession::new("s".into(), profiles, settings, pool, transport, ended, HlsRegistry::default()).start();
        tokio::task::yield_now().await;
        crate::testing::assert_mailbox_bound(&session, super::super::stream_session::MAILBOX, || EndStream {
            why: "test",
        });
    }
}
