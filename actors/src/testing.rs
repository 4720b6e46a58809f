//! What the actors' tests share (their own and lp-actors' integration tests); the node uses
//! none of it.

use std::time::Duration;

use actix::dev::ToEnvelope;
use actix::prelude::*;

use crate::gateway::StreamSettings;

/// `addr`'s mailbox takes `bound` messages and refuses the next one. The test runs on the
/// actor's thread and does not yield here, so the actor cannot take any of them out meanwhile;
/// it must have started (its `started` sets the bound).
pub fn assert_mailbox_bound<A, M>(addr: &Addr<A>, bound: usize, msg: impl Fn() -> M)
where
    A: Actor + Handler<M>,
    A::Context: ToEnvelope<A, M>,
    M: Message + Send + 'static,
    M::Result: Send,
{
    assert_ne!(bound, 16, "a bound of 16 is actix's default: a test could not tell it was set");
    for i in 1..=bound {
        assert!(addr.try_send(msg()).is_ok(), "message {i} of a mailbox of {bound} refused");
    }
    assert!(matches!(addr.try_send(msg()), Err(SendError::Full(_))), "a mailbox of {bound} took one more");
}

/// A stream's settings: 3 attempts, 4 segments in flight, offchain.
pub fn stream_settings() -> StreamSettings {
    StreamSettings {
        max_attempts: 3,
        segment_queue: 4,
        idle_timeout: Duration::from_secs(60),
        hls_window: 6,
        hls_retention: Duration::from_secs(600),
        recorder: None,
        payments: None,
    }
}

/// The `SegData` a gateway sends for `data` under `token`: one 144p rendition.
pub fn seg_data(token: Option<lp_wire::AuthToken>, data: &[u8]) -> lp_wire::SegData {
    lp_wire::SegData {
        manifest_id: serde_bytes::ByteBuf::from(b"stream".to_vec()),
        seq: 0,
        hash: serde_bytes::ByteBuf::from(blake3::hash(data).as_bytes().to_vec()),
        sig: serde_bytes::ByteBuf::new(),
        duration: 1000,
        capabilities: None,
        auth_token: token,
        profiles: vec![(&lp_pipelines::preset("P144p30fps16x9").expect("a preset")).into()],
        format: lp_wire::Container::MpegTs,
        segment_parameters: None,
        force_session_reinit: false,
        timeout_ms: 0,
    }
}
