//! `Gateway`: the gateway role's root actor.
//!
//! - **Owns** the map of live [`StreamSession`]s (one per stream id) and the stream cap
//!   (`max_streams`; one more stream is answered `GatewayBusy`).
//! - **Routes** pushed segments and HLS reads to the stream's session, starting a session on a
//!   stream's first segment.
//! - **Mailbox**: bounded at [`MAILBOX`].
//! - **Restart policy**: supervised, [`Policy::Permanent`]: restarted in place after a panic
//!   (its stream map survives; the pushes in flight through it fail). Stream sessions run under
//!   the same [`Watchdog`], [`Policy::Transient`].

use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

use actix::prelude::*;
use lp_pipelines::Profile;
use serde::Serialize;

use super::orchestrator_pool::OrchestratorPool;
use super::stream_session::{
    GetHls, HlsItem, IncomingSegment, PushSegment, SegmentDone, StreamEnded, StreamSession, StreamSettings,
};
use super::transport::OrchestratorTransport;
use crate::metrics;
use crate::supervision::{Policy, Watchdog, inject_panic};
use lp_wire::{ErrorCode, TranscodeFailure};

const MAILBOX: usize = 1024;

pub struct Gateway {
    streams: HashMap<String, Addr<StreamSession>>,
    profiles: Arc<Vec<Profile>>,
    settings: StreamSettings,
    max_streams: usize,
    pool: Addr<OrchestratorPool>,
    transport: Rc<dyn OrchestratorTransport>,
    watchdog: Watchdog,
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
            profiles: Arc::new(profiles),
            settings,
            max_streams,
            pool,
            transport,
            watchdog: Watchdog::new(),
        }
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
    }
}

/// A segment pushed to `stream`.
#[derive(Message)]
#[rtype(result = "Result<SegmentDone, TranscodeFailure>")]
pub struct Push {
    pub stream: String,
    pub segment: IncomingSegment,
}

/// An HLS read of `stream`.
#[derive(Message)]
#[rtype(result = "Option<HlsItem>")]
pub struct ReadHls {
    pub stream: String,
    pub what: GetHls,
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
    fn session(&mut self, stream: &str, ctx: &mut Context<Self>) -> Result<Addr<StreamSession>, TranscodeFailure> {
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
            self.profiles.clone(),
            self.settings.clone(),
            self.pool.clone(),
            self.transport.clone(),
            ctx.address().recipient(),
        );
        let addr = self.watchdog.start("stream_session", Policy::Transient, session);
        self.streams.insert(stream.to_string(), addr.clone());
        Ok(addr)
    }
}

impl Handler<Push> for Gateway {
    type Result = ResponseActFuture<Self, Result<SegmentDone, TranscodeFailure>>;

    fn handle(&mut self, msg: Push, ctx: &mut Self::Context) -> Self::Result {
        let session = match self.session(&msg.stream, ctx) {
            Ok(s) => s,
            Err(failure) => return Box::pin(fut::ready(Err(failure))),
        };
        let Push { stream, segment } = msg;
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
                false => act.session(&stream, ctx).map(|s| s.send(PushSegment(retry))),
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

impl Handler<ReadHls> for Gateway {
    type Result = ResponseFuture<Option<HlsItem>>;

    fn handle(&mut self, msg: ReadHls, _: &mut Self::Context) -> Self::Result {
        let session = self.streams.get(&msg.stream).cloned();
        Box::pin(async move { session?.send(msg.what).await.ok().flatten() })
    }
}

impl Handler<StreamEnded> for Gateway {
    type Result = ();

    fn handle(&mut self, msg: StreamEnded, _: &mut Self::Context) {
        // Only forget the session that ended, not a newer one under the same id.
        if self.streams.get(&msg.id) == Some(&msg.addr) {
            self.streams.remove(&msg.id);
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
