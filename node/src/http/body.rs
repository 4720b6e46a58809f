//! Reading a request body into memory within bounds: its size, the silence between its bytes,
//! its whole time, and the bytes every body being read holds together in this process.
//!
//! A client that sends a large body and then stalls, or trickles it, would otherwise hold that
//! memory for as long as it likes: twelve ingest uploads of 250 MB, trickling a byte every
//! 15 s, held 3 GB for five minutes. Each body is bounded alone ([`Bounds`]) and all of them
//! together ([`MAX_BUFFERED_BYTES`]): past that, a body is refused (503) until others are done.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::rt::time::{Instant, timeout};
use actix_web::web;
use bytes::BytesMut;
use futures::StreamExt;

/// The most bytes the bodies being read may hold together: far above what the node's own
/// limits let through at once (segments of a few MB, AI bodies up to 50 MiB), far below memory.
pub const MAX_BUFFERED_BYTES: usize = 2 << 30;

/// The bytes held by bodies being read, in the whole process.
static BUFFERED: Budget = Budget::new(MAX_BUFFERED_BYTES);

/// A count of bytes held, up to a limit.
pub struct Budget {
    held: AtomicUsize,
    limit: usize,
}

impl Budget {
    pub const fn new(limit: usize) -> Budget {
        Budget { held: AtomicUsize::new(0), limit }
    }

    /// Take `n` more bytes, if they fit.
    fn take(&self, n: usize) -> bool {
        self.held
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| held.checked_add(n).filter(|&t| t <= self.limit))
            .is_ok()
    }

    fn give_back(&self, n: usize) {
        self.held.fetch_sub(n, Ordering::AcqRel);
    }
}

/// The bytes one body holds of a [`Budget`], given back when it is dropped.
struct Held<'a> {
    budget: &'a Budget,
    bytes: usize,
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.budget.give_back(self.bytes);
    }
}

/// What one body may be.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    /// Its size.
    pub max_bytes: u64,
    /// The longest it may send nothing.
    pub idle: Duration,
    /// The longest it may take in all, however steadily it trickles.
    pub total: Duration,
}

/// Why a body was not read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    #[error("the body is larger than {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("no body bytes for {idle:?} after {received} bytes")]
    Stalled { idle: Duration, received: usize },
    #[error("the body took longer than {total:?}")]
    TooSlow { total: Duration },
    #[error("the node holds as many request bodies as it may ({MAX_BUFFERED_BYTES} bytes); try again shortly")]
    Busy,
    #[error("reading the body: {0}")]
    Read(String),
}

impl BodyError {
    /// The HTTP status it is answered with: 413, 408, 503 or 400.
    pub fn status(&self) -> StatusCode {
        match self {
            BodyError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            BodyError::Stalled { .. } | BodyError::TooSlow { .. } => StatusCode::REQUEST_TIMEOUT,
            BodyError::Busy => StatusCode::SERVICE_UNAVAILABLE,
            BodyError::Read(_) => StatusCode::BAD_REQUEST,
        }
    }
}

/// Read `payload` within `bounds` and the process's budget. `capacity` is reserved up front
/// (a declared length, which the caller caps).
pub async fn read(payload: &mut web::Payload, bounds: Bounds, capacity: usize) -> Result<BytesMut, BodyError> {
    read_within(payload, bounds, capacity, &BUFFERED).await
}

async fn read_within(
    payload: &mut web::Payload,
    bounds: Bounds,
    capacity: usize,
    budget: &Budget,
) -> Result<BytesMut, BodyError> {
    let mut held = Held { budget, bytes: 0 };
    let mut data = BytesMut::new();
    let ends = Instant::now() + bounds.total;
    loop {
        let silence = bounds.idle.min(ends.saturating_duration_since(Instant::now()));
        let chunk = match timeout(silence, payload.next()).await {
            Ok(Some(Ok(chunk))) => chunk,
            Ok(Some(Err(e))) => return Err(BodyError::Read(e.to_string())),
            Ok(None) => return Ok(data),
            Err(_) if Instant::now() >= ends => return Err(BodyError::TooSlow { total: bounds.total }),
            Err(_) => return Err(BodyError::Stalled { idle: bounds.idle, received: data.len() }),
        };
        if (data.len() + chunk.len()) as u64 > bounds.max_bytes {
            return Err(BodyError::TooLarge { limit: bounds.max_bytes });
        }
        if data.is_empty() && capacity > chunk.len() {
            data.reserve(capacity);
        }
        // What the buffer holds, counted as it grows.
        let grow = data.capacity().max(data.len() + chunk.len()).saturating_sub(held.bytes);
        if !budget.take(grow) {
            return Err(BodyError::Busy);
        }
        held.bytes += grow;
        data.extend_from_slice(&chunk);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A budget hands out bytes up to its limit and takes back what is given back; a body's
    /// bytes are given back when it is dropped.
    #[test]
    fn the_budget_refuses_past_its_limit_until_bytes_come_back() {
        let budget = Budget::new(100);
        assert!(budget.take(60));
        assert!(!budget.take(41), "60 + 41 is over 100");
        assert!(budget.take(40));
        assert!(!budget.take(1));
        {
            let _held = Held { budget: &budget, bytes: 60 };
        }
        assert!(budget.take(60), "the 60 came back");
        assert!(!budget.take(usize::MAX), "no overflow");
    }

    async fn payload(body: &'static [u8]) -> web::Payload {
        use actix_web::FromRequest as _;
        let (req, mut payload) = actix_web::test::TestRequest::default().set_payload(body).to_http_parts();
        web::Payload::from_request(&req, &mut payload).await.unwrap()
    }

    /// A body that does not fit what the budget has left is refused, and what it held comes
    /// back; one over its own size is refused too.
    #[actix_web::test]
    async fn a_body_past_the_budget_or_its_size_is_refused() {
        let bounds = Bounds { max_bytes: 1 << 20, idle: Duration::from_secs(5), total: Duration::from_secs(5) };
        let budget = Budget::new(64);
        static BODY: [u8; 100] = [7; 100];
        let body = &BODY;
        let refused = read_within(&mut payload(body).await, bounds, 0, &budget).await;
        assert_eq!(refused, Err(BodyError::Busy));
        assert_eq!(refused.unwrap_err().status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(budget.take(64), "nothing is held after the refusal");
        budget.give_back(64);
        let read = read_within(&mut payload(&body[..40]).await, bounds, 0, &budget).await.unwrap();
        assert_eq!(&read[..], &body[..40]);
        assert!(budget.take(64), "nothing is held once the body is read");
        budget.give_back(64);
        let small = Bounds { max_bytes: 39, ..bounds };
        let refused = read_within(&mut payload(&body[..40]).await, small, 0, &budget).await;
        assert_eq!(refused, Err(BodyError::TooLarge { limit: 39 }));
    }
}
