//! Supervision: every long-lived actor runs under the node's [`Watchdog`], which restarts it in
//! place when a handler (or a future it spawned) panics, counts it, and tells `/healthz` and
//! `/status` the truth.
//!
//! actix alone stops an actor whose handler panics: its mailbox closes, every later `send` gets
//! `MailboxError`, and nothing notices. [`Watchdog::start`] instead runs the actor's context
//! under `catch_unwind`. After a panic:
//!
//! - after a backoff ([`FIRST_BACKOFF`], doubling to [`MAX_BACKOFF`]) the futures the actor had
//!   spawned in its context are dropped (their callers get an error; work that must outlive a
//!   restart, like a transaction being sent, runs outside the context and reports back by
//!   message), its [`Supervised::restarting`] runs so it can repair what the panic may have left
//!   half done, and `started` runs again, on the **same mailbox**: every `Addr` others hold
//!   keeps working, and messages sent meanwhile wait in the mailbox;
//! - `livepeer_actor_restarts_total{actor}` counts it, and the panic is logged at ERROR;
//! - while a [`Policy::Permanent`] actor (one per role: the gateway, the pools, the chain
//!   watchers) waits for its restart, [`Watchdog::health`] names it, so `/healthz` answers 503;
//! - an actor is restarted after at most [`MAX_RESTARTS`] panics within [`RESTART_WINDOW`]; the
//!   next one there fails it for good (`livepeer_actor_failures_total{actor}`): a
//!   [`Policy::Transient`] one (a session, one of many) just ends; a permanent one leaves the
//!   node unable to serve, so it stays named by `/healthz` and [`Watchdog::fatal`] resolves: the
//!   node stops with a non-zero status (like reth's critical tasks), for its process supervisor
//!   to restart it whole.
//!
//! An actor that stops itself (or whose every address is gone) is not restarted; a permanent one
//! is then reported stopped. A part that is not an actor (the store's thread) reports its
//! restarts and its failure itself, through [`Watchdog::watch_thread`].

use std::any::Any;
use std::collections::BTreeMap;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::{Duration, Instant};

use actix::dev::ContextFut;
use actix::prelude::*;
use parking_lot::Mutex;
use serde::Serialize;
use tracing::{error, info, warn};

use crate::metrics;

/// The wait before the first restart; it doubles with each panic in the window.
pub const FIRST_BACKOFF: Duration = Duration::from_millis(250);
/// The longest wait before a restart (the fifth's, with the default first backoff).
pub const MAX_BACKOFF: Duration = Duration::from_secs(4);
/// How many panics within [`RESTART_WINDOW`] an actor survives.
pub const MAX_RESTARTS: usize = 5;
/// The window [`MAX_RESTARTS`] is counted in.
pub const RESTART_WINDOW: Duration = Duration::from_secs(60);

/// What the node loses when an actor fails for good.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Policy {
    /// One per role; the role cannot serve without it.
    Permanent,
    /// One of many (a stream, a gateway session); losing it ends that one only.
    Transient,
}

/// The node's record of its supervised actors. Cloning shares it.
#[derive(Clone, Default)]
pub struct Watchdog(Arc<Shared>);

struct Shared {
    first_backoff: Duration,
    parts: Mutex<BTreeMap<&'static str, Part>>,
    /// The permanent actor that failed for good, once one has.
    fatal: Mutex<Option<String>>,
    fatal_changed: tokio::sync::Notify,
}

#[derive(Debug, Clone, Serialize)]
struct Part {
    policy: Policy,
    /// Actors of this kind now running (or waiting for a restart).
    instances: usize,
    /// Instances waiting for their restart.
    restarting: usize,
    restarts: u64,
    failures: u64,
    last_panic: Option<String>,
    /// Why a permanent actor is down for good.
    down: Option<String>,
}

/// One kind of actor, as `/status` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct PartReport {
    pub actor: &'static str,
    pub policy: Policy,
    pub instances: usize,
    pub restarting: usize,
    pub restarts: u64,
    pub failures: u64,
    pub last_panic: Option<String>,
    pub down: Option<String>,
}

impl Default for Shared {
    fn default() -> Shared {
        Shared {
            first_backoff: FIRST_BACKOFF,
            parts: Mutex::default(),
            fatal: Mutex::default(),
            fatal_changed: tokio::sync::Notify::new(),
        }
    }
}

impl Watchdog {
    pub fn new() -> Watchdog {
        Watchdog::default()
    }

    /// A watchdog whose first restart waits `first` instead of [`FIRST_BACKOFF`].
    pub fn with_first_backoff(first: Duration) -> Watchdog {
        Watchdog(Arc::new(Shared { first_backoff: first, ..Shared::default() }))
    }

    /// Start `act` supervised, as one actor of kind `name`.
    pub fn start<A>(&self, name: &'static str, policy: Policy, act: A) -> Addr<A>
    where
        A: Actor<Context = Context<A>> + Supervised,
    {
        let ctx = Context::new();
        let addr = ctx.address();
        self.0.parts.lock().entry(name).or_insert_with(|| Part::new(policy)).instances += 1;
        metrics::actor_declared(name);
        actix::spawn(Supervisor {
            fut: ctx.into_future(act),
            name,
            policy,
            watchdog: self.clone(),
            panics: Vec::new(),
            backoff: None,
        });
        addr
    }

    /// Watch a part of the node that is not an actor (a thread of its own, like the store's): it
    /// reports its restarts and its failure itself. It is permanent: its failure stops the node.
    pub fn watch_thread(&self, name: &'static str) -> ThreadPart {
        self.0.parts.lock().entry(name).or_insert_with(|| Part::new(Policy::Permanent)).instances += 1;
        metrics::actor_declared(name);
        ThreadPart { watchdog: self.clone(), name, panics: Arc::default() }
    }

    /// `Err(reasons)` while a permanent actor is restarting, stopped or failed; each reason names
    /// the actor.
    pub fn health(&self) -> Result<(), Vec<String>> {
        let parts = self.0.parts.lock();
        let down: Vec<String> = parts
            .iter()
            .filter(|(_, p)| p.policy == Policy::Permanent)
            .filter_map(|(name, p)| {
                if let Some(why) = &p.down {
                    Some(format!("{name}: {why}"))
                } else if p.restarting > 0 {
                    let panic = p.last_panic.as_deref().unwrap_or("a panic");
                    Some(format!("{name}: restarting after a panic ({panic})"))
                } else {
                    None
                }
            })
            .collect();
        if down.is_empty() { Ok(()) } else { Err(down) }
    }

    /// Every kind of actor started so far, with its restart and failure counts.
    pub fn report(&self) -> Vec<PartReport> {
        self.0
            .parts
            .lock()
            .iter()
            .map(|(&actor, p)| PartReport {
                actor,
                policy: p.policy,
                instances: p.instances,
                restarting: p.restarting,
                restarts: p.restarts,
                failures: p.failures,
                last_panic: p.last_panic.clone(),
                down: p.down.clone(),
            })
            .collect()
    }

    /// Resolves, with the reason, once a permanent actor has failed for good.
    pub async fn fatal(&self) -> String {
        loop {
            let changed = self.0.fatal_changed.notified();
            let mut changed = std::pin::pin!(changed);
            changed.as_mut().enable();
            if let Some(why) = self.0.fatal.lock().clone() {
                return why;
            }
            changed.await;
        }
    }

    /// Count a panic of one actor of kind `name`, given when it panicked before: the how-many-th
    /// it is within [`RESTART_WINDOW`] while it may be restarted, or `None` once it has panicked
    /// more than [`MAX_RESTARTS`] times there (it is then failed for good).
    fn count_panic(
        &self,
        name: &'static str,
        policy: Policy,
        panics: &mut Vec<Instant>,
        what: String,
    ) -> Option<usize> {
        let now = Instant::now();
        panics.retain(|t| now.duration_since(*t) < RESTART_WINDOW);
        panics.push(now);
        let n = panics.len();
        self.update(name, |p| p.last_panic = Some(what.clone()));
        if n > MAX_RESTARTS {
            error!(target: "lp::supervision", actor = name, panic = %what, panics = n, window = ?RESTART_WINDOW, "actor keeps panicking; not restarting it");
            self.fail(name, policy, format!("panicked {n} times in {RESTART_WINDOW:?}, last: {what}"));
            return None;
        }
        metrics::actor_restarted(name);
        self.update(name, |p| p.restarts += 1);
        Some(n)
    }

    /// One actor of kind `name` is gone for good: counted, and a permanent one, named by
    /// [`Watchdog::health`], stops the node.
    fn fail(&self, name: &'static str, policy: Policy, why: String) {
        metrics::actor_failed(name);
        let permanent = policy == Policy::Permanent;
        self.update(name, |p| {
            p.failures += 1;
            p.instances -= 1;
            if permanent {
                p.down = Some(why.clone());
            }
        });
        if permanent {
            self.failed_for_good(name, why);
        }
    }

    fn update(&self, name: &'static str, f: impl FnOnce(&mut Part)) {
        if let Some(part) = self.0.parts.lock().get_mut(name) {
            f(part);
        }
    }

    fn failed_for_good(&self, name: &'static str, why: String) {
        *self.0.fatal.lock() = Some(format!("{name}: {why}"));
        self.0.fatal_changed.notify_waiters();
    }
}

/// A watched part that is not an actor ([`Watchdog::watch_thread`]).
#[derive(Clone)]
pub struct ThreadPart {
    watchdog: Watchdog,
    name: &'static str,
    /// When it panicked within the window.
    panics: Arc<Mutex<Vec<Instant>>>,
}

impl ThreadPart {
    /// It panicked and may recover in place: whether it may (`false`, past [`MAX_RESTARTS`]
    /// within [`RESTART_WINDOW`], means it failed for good and the node stops).
    pub fn restarted(&self, panic: String) -> bool {
        self.watchdog.count_panic(self.name, Policy::Permanent, &mut self.panics.lock(), panic).is_some()
    }

    /// It cannot go on: the node stops.
    pub fn failed(&self, why: String) {
        self.watchdog.fail(self.name, Policy::Permanent, why);
    }
}

impl Part {
    fn new(policy: Policy) -> Part {
        Part { policy, instances: 0, restarting: 0, restarts: 0, failures: 0, last_panic: None, down: None }
    }
}

/// Runs one actor's context, catching its panics.
struct Supervisor<A: Actor<Context = Context<A>> + Supervised> {
    fut: ContextFut<A, Context<A>>,
    name: &'static str,
    policy: Policy,
    watchdog: Watchdog,
    /// When it panicked within the window.
    panics: Vec<Instant>,
    /// The wait before the next restart, while one is pending.
    backoff: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<A: Actor<Context = Context<A>> + Supervised> Supervisor<A> {
    /// Count a panic; the wait before the restart, or `None` when it has panicked too often.
    fn panicked(&mut self, what: String) -> Option<Duration> {
        let n = self.watchdog.count_panic(self.name, self.policy, &mut self.panics, what.clone())?;
        let wait = self.watchdog.0.first_backoff.saturating_mul(1 << (n - 1).min(16)).min(MAX_BACKOFF);
        error!(target: "lp::supervision", actor = self.name, panic = %what, restart_in = ?wait, "actor panicked; restarting it");
        self.watchdog.update(self.name, |p| p.restarting += 1);
        Some(wait)
    }

    fn stopped(&mut self) {
        let (name, policy) = (self.name, self.policy);
        if policy == Policy::Permanent {
            warn!(target: "lp::supervision", actor = name, "actor stopped");
        }
        self.watchdog.update(name, |p| {
            p.instances -= 1;
            if policy == Policy::Permanent && p.instances == 0 {
                p.down = Some("stopped".into());
            }
        });
    }
}

impl<A: Actor<Context = Context<A>> + Supervised> Future for Supervisor<A> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<()> {
        let this = self.get_mut();
        loop {
            if let Some(backoff) = &mut this.backoff {
                if backoff.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                this.backoff = None;
                this.watchdog.update(this.name, |p| p.restarting -= 1);
                match catch_unwind(AssertUnwindSafe(|| this.fut.restart())) {
                    Ok(true) => info!(target: "lp::supervision", actor = this.name, "actor restarted"),
                    Ok(false) => {
                        // Every address is gone: nobody is left to serve.
                        this.stopped();
                        return Poll::Ready(());
                    }
                    // `Supervised::restarting` panicked: a panic like any other.
                    Err(panic) => match this.panicked(panic_message(panic.as_ref())) {
                        Some(wait) => {
                            this.backoff = Some(Box::pin(tokio::time::sleep(wait)));
                            continue;
                        }
                        None => return Poll::Ready(()),
                    },
                }
            }
            match catch_unwind(AssertUnwindSafe(|| Pin::new(&mut this.fut).poll(cx))) {
                Ok(Poll::Pending) => return Poll::Pending,
                Ok(Poll::Ready(())) => {
                    this.stopped();
                    return Poll::Ready(());
                }
                Err(panic) => match this.panicked(panic_message(panic.as_ref())) {
                    Some(wait) => this.backoff = Some(Box::pin(tokio::time::sleep(wait))),
                    None => return Poll::Ready(()),
                },
            }
        }
    }
}

/// The text of a panic payload.
pub fn panic_message(panic: &(dyn Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".into()
    }
}

/// Fault injection for the supervision tests: the receiving actor panics in its handler. A real
/// panic cannot be caused from outside on purpose (that is what the hardening fixed), so the
/// tests send this instead; nothing in the node sends it.
#[doc(hidden)]
#[derive(Message)]
#[rtype(result = "()")]
pub struct InjectPanic;

/// Implements [`InjectPanic`] for supervised actors.
macro_rules! inject_panic {
    ($($actor:ty),+ $(,)?) => {$(
        impl actix::Handler<$crate::supervision::InjectPanic> for $actor {
            type Result = ();

            fn handle(&mut self, _: $crate::supervision::InjectPanic, _: &mut Self::Context) {
                panic!(concat!("injected panic in ", stringify!($actor)));
            }
        }
    )+};
}
pub(crate) use inject_panic;
