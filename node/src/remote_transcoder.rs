//! The WebSocket adapter of a remote worker's link, on the orchestrator side: the protocol is
//! lp-actors' [`WorkerLink`](lp_actors::orchestrator::WorkerLink); this file carries it over
//! `actix_ws` ([`adapt`]).
//!
//! - What the link sends goes through one writer task per connection, in order ([`WsTransport`]);
//!   a close is the last thing it writes ("going away" when the orchestrator shuts down).
//! - What arrives becomes [`LinkEvent`]s: a binary message is a frame, a ping (answered here) or
//!   a pong is a sign of life, a text message a protocol violation.
//! - **Before registering** a connection may send at most [`WORKER_UNREGISTERED_BYTES`] (a `Register`
//!   frame is a few hundred bytes): the WebSocket codec buffers a whole frame before it checks
//!   the frame's size, so without this budget anyone could make the orchestrator buffer a
//!   512 MiB frame. The budget is counted on the bytes read from the socket ([`Gated`]), and
//!   lifted once the link says the worker registered ([`LinkTransport::registered`]).

use std::cell::Cell;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context as TaskContext, Poll};

use actix_web::error::PayloadError;
use actix_web::web::Bytes;
use actix_ws::{AggregatedMessage, AggregatedMessageStream, CloseCode, CloseReason};
use futures::channel::mpsc;
use futures::{Stream, StreamExt};
use lp_actors::orchestrator::{Close, LinkEvent, LinkTransport};
use lp_wire::limits::WORKER_UNREGISTERED_BYTES;

/// A worker's WebSocket as a `WorkerLink` reads and writes it: the transport for what goes
/// out over `session`, and the events of what comes in on `stream` (read through the [`Gated`]
/// bytes of `gate`).
pub fn adapt(
    session: actix_ws::Session,
    stream: AggregatedMessageStream,
    gate: Gate,
) -> (WsTransport, impl Stream<Item = LinkEvent> + 'static) {
    let (out, queued) = mpsc::unbounded();
    actix_web::rt::spawn(write(session, queued));
    let pongs = out.clone();
    let overflowed = gate.clone();
    let events = stream.map(move |item| match item {
        Ok(AggregatedMessage::Binary(bytes)) => LinkEvent::Frame(bytes),
        Ok(AggregatedMessage::Ping(p)) => {
            let _ = pongs.unbounded_send(Out::Pong(p));
            LinkEvent::Heard
        }
        Ok(AggregatedMessage::Pong(_)) => LinkEvent::Heard,
        Ok(AggregatedMessage::Text(_)) => LinkEvent::Violation("text frames are not part of the protocol".into()),
        Ok(AggregatedMessage::Close(_)) => LinkEvent::Closed,
        Err(_) if overflowed.overflowed() => LinkEvent::Overflowed,
        Err(e) => LinkEvent::Failed(format!("websocket error: {e}")),
    });
    (WsTransport { out, gate }, events)
}

/// What the writer task writes.
enum Out {
    Binary(Vec<u8>),
    Ping,
    Pong(Bytes),
    Close(Option<CloseReason>),
}

/// A link's way out: queued for the connection's writer task.
pub struct WsTransport {
    out: mpsc::UnboundedSender<Out>,
    gate: Gate,
}

impl LinkTransport for WsTransport {
    fn send(&self, frame: Vec<u8>) {
        let _ = self.out.unbounded_send(Out::Binary(frame));
    }

    fn ping(&self) {
        let _ = self.out.unbounded_send(Out::Ping);
    }

    fn close(&self, why: Close) {
        let reason = match why {
            Close::Plain => None,
            Close::ShuttingDown => {
                Some(CloseReason { code: CloseCode::Away, description: Some("orchestrator shutting down".into()) })
            }
        };
        let _ = self.out.unbounded_send(Out::Close(reason));
    }

    fn registered(&self) {
        self.gate.open();
    }
}

/// Write what the link queues until it closes the connection (or the connection is gone).
async fn write(mut session: actix_ws::Session, mut queued: mpsc::UnboundedReceiver<Out>) {
    while let Some(out) = queued.next().await {
        let written = match out {
            Out::Binary(frame) => session.binary(frame).await,
            Out::Ping => session.ping(b"").await,
            Out::Pong(p) => session.pong(&p).await,
            Out::Close(reason) => {
                let _ = session.close(reason).await;
                return;
            }
        };
        if written.is_err() {
            return;
        }
    }
}

/// Whether a connection has registered, shared by its transport and the [`Gated`] bytes it reads.
#[derive(Clone, Default)]
pub struct Gate(Rc<GateState>);

#[derive(Default)]
struct GateState {
    open: Cell<bool>,
    overflowed: Cell<bool>,
}

impl Gate {
    /// Lift the budget: the connection has registered.
    fn open(&self) {
        self.0.open.set(true);
    }

    /// Whether the connection was cut for sending too much before registering.
    fn overflowed(&self) -> bool {
        self.0.overflowed.get()
    }
}

/// The bytes of a WebSocket connection, of which at most [`WORKER_UNREGISTERED_BYTES`] pass before its
/// [`Gate`] opens; then an error, and nothing more.
pub struct Gated<S> {
    inner: S,
    gate: Gate,
    left: usize,
}

impl<S> Gated<S> {
    pub fn new(inner: S, gate: Gate) -> Self {
        Gated { inner, gate, left: WORKER_UNREGISTERED_BYTES }
    }
}

impl<S: Stream<Item = Result<Bytes, PayloadError>> + Unpin> Stream for Gated<S> {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        if self.gate.overflowed() {
            return Poll::Ready(None);
        }
        let item = Pin::new(&mut self.inner).poll_next(cx);
        if let Poll::Ready(Some(Ok(bytes))) = &item
            && !self.gate.0.open.get()
        {
            match self.left.checked_sub(bytes.len()) {
                Some(left) => self.left = left,
                None => {
                    self.gate.0.overflowed.set(true);
                    return Poll::Ready(Some(Err(PayloadError::Overflow)));
                }
            }
        }
        item
    }
}
