//! The orchestrator's session cap (`max_sessions`), shared by the [`Orchestrator`] and its
//! transcoder pool: a fixed number, or "auto" (go-livepeer's `-maxSessions auto`): the sessions
//! this machine's own transcoder carries, as `livepeer bench` measured them, plus the sessions
//! of the remote transcoders connected now (each one's own `livepeer bench` figure when it
//! reports one, else its capacity). The pool writes the remote part whenever a worker
//! registers or goes away, and bounds its queue by the cap; the orchestrator reads the sum when
//! a new session asks for a slot. Not an actor: a value both read without a round trip.
//!
//! [`Orchestrator`]: super::Orchestrator

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

#[derive(Debug, Clone)]
pub struct SessionCap {
    /// The fixed cap, or auto's local part.
    local: u32,
    auto: bool,
    /// The sessions of the remote transcoders connected now (auto only counts it).
    remote: Arc<AtomicU32>,
}

impl SessionCap {
    /// At most `n` sessions.
    pub fn fixed(n: u32) -> Self {
        SessionCap { local: n, auto: false, remote: Arc::default() }
    }

    /// `local` sessions on this machine's own transcoder, plus the remote transcoders' sessions.
    pub fn auto(local: u32) -> Self {
        SessionCap { local, auto: true, remote: Arc::default() }
    }

    /// The cap now.
    pub fn get(&self) -> u32 {
        self.parts().0
    }

    /// The cap now and its remote part.
    fn parts(&self) -> (u32, u32) {
        match self.auto {
            true => {
                let remote = self.remote.load(Ordering::Relaxed);
                (self.local.saturating_add(remote), remote)
            }
            false => (self.local, 0),
        }
    }

    pub fn is_auto(&self) -> bool {
        self.auto
    }

    /// The pool's count of its remote workers' sessions.
    pub(crate) fn set_remote(&self, sessions: u32) {
        self.remote.store(sessions, Ordering::Relaxed);
    }

    /// The cap in a message: `10`, or `auto: 3 = 1 local + 2 remote`.
    pub fn describe(&self) -> String {
        match self.parts() {
            (cap, remote) if self.auto => format!("auto: {cap} = {} local + {remote} remote", self.local),
            (cap, _) => cap.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_adds_the_remote_capacity_and_a_fixed_cap_ignores_it() {
        let (fixed, auto) = (SessionCap::fixed(10), SessionCap::auto(1));
        let shared = auto.clone();
        for cap in [&fixed, &shared] {
            cap.set_remote(3);
        }
        assert_eq!((fixed.get(), auto.get()), (10, 4), "a clone shares the remote part");
        assert_eq!(auto.describe(), "auto: 4 = 1 local + 3 remote");
        assert_eq!(fixed.describe(), "10");
        auto.set_remote(0);
        assert_eq!(auto.get(), 1);
        assert_eq!(SessionCap::auto(u32::MAX).get(), u32::MAX, "no overflow");
    }
}
