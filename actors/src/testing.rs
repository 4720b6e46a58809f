//! What the actors' tests share (their own and lp-actors' integration tests); the node uses
//! none of it.

use actix::dev::ToEnvelope;
use actix::prelude::*;

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
