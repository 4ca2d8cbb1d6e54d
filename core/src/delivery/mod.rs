//! When batches go out, what they hold, and what answers do to the queue.
//!
//! Sans-IO: [`Delivery::poll`] hands out a [`Batch`] to send,
//! [`Delivery::settle`] takes the answer. One ordinary request is under way
//! at a time; at page hide, more batches carry what fits the browser's
//! 64 KB keepalive budget.
//!
//! Every batch that fits the budget is sent with `keepalive`, so a request
//! under way when the page goes away still completes, and the page-hide
//! beacons need not carry its events again. No answer the page does not
//! hear takes an event out of storage (see `Tracker::release`).

mod batch;

pub use batch::Batch;

use crate::error::Error;
use crate::queue::Queue;
use crate::retry::{classify, retry_after_ms, Backoff, Verdict};

/// The browser's budget for bodies of `keepalive` requests in flight.
pub const KEEPALIVE_BUDGET: usize = 64 * 1024;

/// Segment's limit on a batch request's JSON: with gzip on, batches fill
/// up to it (or to `max_events`), and `max_bytes` caps what goes on the
/// wire.
pub const MAX_BATCH_JSON: usize = 500 * 1024;

/// How a request ended.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// An HTTP answer, with its `Retry-After` header if any.
    Status {
        /// HTTP status.
        status: u16,
        /// `Retry-After` as sent.
        retry_after: Option<String>,
    },
    /// The request failed before an answer (offline, DNS, CORS, abort).
    NetworkError,
    /// The endpoint redirected the request and the answer at the end was
    /// not a success (a 301, 302 or 303 turns the POST into a body-less
    /// GET): the batch never arrived.
    Redirected {
        /// The status at the end of the redirects.
        status: u16,
        /// Where the redirects ended.
        to: String,
    },
}

/// A `flush()` that has finished.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlushDone {
    /// The id `flush` returned.
    pub id: u32,
    /// Events of the flush that were delivered.
    pub sent: usize,
    /// Events of the flush still queued (to be retried).
    pub pending: usize,
}

/// What an answer changed.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Settled {
    /// Events that left the queue (delivered or dropped).
    pub removed: Vec<u64>,
    /// Errors to report.
    pub errors: Vec<Error>,
    /// `flush()` calls that completed.
    pub flushes: Vec<FlushDone>,
    /// Wait before the next try, when the batch will be retried.
    pub retry_in_ms: Option<f64>,
    /// Status of the answer (0: network error), for the debug log.
    pub status: u16,
    /// The collector could not take the batch (a network error, a
    /// redirect, 408, 429 or 5xx): its events stay queued.
    pub failed: bool,
}

/// How long a request may go unanswered before it counts as failed (and
/// is retried with backoff): a collector that accepts the connection and
/// never answers must not hold up delivery, or `flush()`, for the rest of
/// the page view. Long enough for a full batch over a slow mobile link.
pub const REQUEST_TIMEOUT_MS: f64 = 30_000.0;

#[derive(Clone, Debug)]
struct InFlight {
    id: u64,
    /// When it was sent (ms).
    sent_at: f64,
    seqs: Vec<u64>,
    /// Body bytes, counted against the keepalive budget.
    bytes: usize,
    /// Sent with `keepalive`.
    keepalive: bool,
    /// The one-at-a-time request (not a page-hide batch).
    ordinary: bool,
}

impl InFlight {
    /// When it is given up if still unanswered.
    fn deadline(&self) -> f64 {
        self.sent_at + REQUEST_TIMEOUT_MS
    }
}

#[derive(Clone, Debug)]
struct Flush {
    id: u32,
    through: u64,
    sent: usize,
}

/// Delivery state of one page view.
#[derive(Clone, Debug)]
pub struct Delivery {
    url: String,
    write_key: Option<String>,
    backoff: Backoff,
    max_events: usize,
    max_bytes: usize,
    interval_ms: f64,
    in_flight: Vec<InFlight>,
    attempt: u32,
    not_before: f64,
    /// A `Retry-After` set `not_before`; even `flush()` waits for it.
    server_asked_wait: bool,
    /// After a 413: the halves still to send, as inclusive ranges of
    /// sequence numbers, the next one last. A batch never crosses the end
    /// of the range on top.
    split: Vec<(u64, u64)>,
    flushes: Vec<Flush>,
    next_id: u64,
    next_flush: u32,
    online: bool,
    /// The endpoint accepts gzip bodies.
    gzip: bool,
    /// `fetch` keeps `keepalive` requests going after the page is gone
    /// (not in Firefox before 133: there only `sendBeacon` does).
    keepalive_fetch: bool,
    /// An [`Outcome::Redirected`] was reported in this page view.
    redirect_reported: bool,
}

/// Limits and destination of a [`Delivery`].
#[derive(Clone, Debug)]
pub struct DeliveryConfig {
    /// `{endpoint}/v1/batch`
    pub url: String,
    /// Put in every batch when set.
    pub write_key: Option<String>,
    /// Retry timing.
    pub backoff: Backoff,
    /// Events per batch.
    pub max_events: usize,
    /// Bytes per batch on the wire (compressed, when it is).
    pub max_bytes: usize,
    /// Wait after the first queued event before sending a partial batch.
    pub interval_ms: f64,
}

impl Delivery {
    /// A delivery with nothing under way.
    pub fn new(config: DeliveryConfig) -> Delivery {
        Delivery {
            url: config.url,
            write_key: config.write_key,
            backoff: config.backoff,
            max_events: config.max_events.max(1),
            max_bytes: config.max_bytes,
            interval_ms: config.interval_ms,
            in_flight: Vec::new(),
            attempt: 0,
            not_before: 0.0,
            server_asked_wait: false,
            split: Vec::new(),
            flushes: Vec::new(),
            next_id: 1,
            next_flush: 1,
            online: true,
            gzip: false,
            keepalive_fetch: true,
            redirect_reported: false,
        }
    }

    /// Whether the browser's `fetch` honours `keepalive`. Without it, no
    /// fetch outlives the page: what one carries when the page goes goes
    /// again in the page-hide beacons.
    pub fn set_keepalive_fetch(&mut self, supported: bool) {
        self.keepalive_fetch = supported;
    }

    /// The endpoint said it accepts gzip bodies (or it is not known to):
    /// batches from now on are compressed.
    pub fn set_gzip(&mut self, gzip: bool) {
        self.gzip = gzip;
    }

    /// Whether batches are compressed.
    pub fn gzip(&self) -> bool {
        self.gzip
    }

    /// The most JSON a batch holds: `max_bytes` of it, or with gzip on
    /// (where `max_bytes` caps the compressed body) Segment's limit.
    fn json_cap(&self) -> usize {
        if self.gzip {
            MAX_BATCH_JSON.max(self.max_bytes)
        } else {
            self.max_bytes
        }
    }

    /// Where batches go.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Whether an ordinary (not page-hide) request is under way.
    pub fn busy(&self) -> bool {
        self.in_flight.iter().any(|f| f.ordinary)
    }

    /// Body bytes of keepalive requests under way.
    fn keepalive_bytes(&self) -> usize {
        self.in_flight
            .iter()
            .filter(|f| f.keepalive)
            .map(|f| f.bytes)
            .sum()
    }

    /// Whether the browser says it is online.
    pub fn online(&self) -> bool {
        self.online
    }

    /// The browser went offline or online. Coming online retries at once.
    pub fn set_online(&mut self, online: bool) {
        self.online = online;
        if online && !self.server_asked_wait {
            self.not_before = 0.0;
        }
    }

    /// Asks for everything queued now to be sent at once. Returns an id
    /// that a [`FlushDone`] will carry, or the result right away when
    /// nothing can be sent now (empty queue, offline).
    pub fn flush(&mut self, queue: &Queue, can_send: bool) -> Result<u32, FlushDone> {
        let id = self.next_flush;
        self.next_flush = self.next_flush.wrapping_add(1);
        let through = queue.next_seq().saturating_sub(1);
        if queue.is_empty() || !can_send || !self.online {
            return Err(FlushDone {
                id,
                sent: 0,
                pending: queue.len(),
            });
        }
        if !self.server_asked_wait {
            self.not_before = 0.0;
        }
        self.flushes.push(Flush {
            id,
            through,
            sent: 0,
        });
        Ok(id)
    }

    fn wants_flush(&self, seq: u64) -> bool {
        self.flushes.iter().any(|f| seq <= f.through)
    }

    /// The end of the range a batch may take events from: after a 413,
    /// the split range on top that still holds queued events (ranges
    /// whose events all left, delivered, refused or taken by another
    /// tab, are done).
    fn through(&self, queue: &Queue) -> u64 {
        self.split
            .iter()
            .rev()
            .find(|&&(lo, hi)| queue.iter_from(lo).next().is_some_and(|e| e.seq <= hi))
            .map_or(u64::MAX, |&(_, hi)| hi)
    }

    /// The first event the next ordinary batch would carry.
    fn next_sendable<'q>(&self, queue: &'q Queue) -> Option<&'q crate::queue::Entry> {
        let through = self.through(queue);
        queue
            .iter()
            .find(|e| !e.in_flight())
            .filter(|e| e.seq <= through)
    }

    /// The batch to send now, if one is due. Marks its events in flight.
    pub fn poll(&mut self, queue: &mut Queue, now: f64) -> Option<Batch> {
        if !self.online || self.busy() {
            return None;
        }
        let through = self.through(queue);
        while self.split.last().is_some_and(|&(_, hi)| hi < through) {
            self.split.pop();
        }
        let first = self.next_sendable(queue)?;
        let first_seq = first.seq;
        let flushing = self.wants_flush(first_seq);
        // A flush skips the backoff, but never a server's Retry-After.
        if now < self.not_before && (!flushing || self.server_asked_wait) {
            return None;
        }
        let waiting = queue.iter().filter(|e| !e.in_flight()).count();
        let full = waiting >= self.max_events || queue.wire_bytes() >= self.json_cap();
        let due = flushing || full || now >= first.queued_at + self.interval_ms;
        if !due {
            return None;
        }
        let outlives = self.keepalive_fetch;
        self.build(queue, now, self.max_bytes, true, outlives, through)
    }

    /// Batches for a page that is being hidden or unloaded, sent with
    /// `keepalive` (or, `beacon`, by `sendBeacon`): as many as fit the
    /// 64 KB budget beside the keepalive bodies already under way. A
    /// request under way without keepalive (too big for the budget, or a
    /// browser without it) may be cancelled with the page: its events go
    /// again.
    pub fn unload_batches(&mut self, queue: &mut Queue, now: f64, beacon: bool) -> Vec<Batch> {
        if !self.online {
            return Vec::new();
        }
        let (survive, doomed): (Vec<InFlight>, Vec<InFlight>) = std::mem::take(&mut self.in_flight)
            .into_iter()
            .partition(|f| f.keepalive);
        self.in_flight = survive;
        for f in &doomed {
            queue.set_in_flight(&f.seqs, false);
        }
        let mut used = self.keepalive_bytes();
        let mut batches = Vec::new();
        while used < KEEPALIVE_BUDGET {
            let room = (KEEPALIVE_BUDGET - used).min(self.max_bytes);
            let outlives = beacon || self.keepalive_fetch;
            match self.build(queue, now, room, false, outlives, u64::MAX) {
                Some(b) => {
                    used += Delivery::wire_len(&b);
                    batches.push(b);
                }
                None => break,
            }
        }
        batches
    }

    /// Forgets every request under way (the page was restored from the
    /// back/forward cache, or its queue went to another page view).
    pub fn reset_in_flight(&mut self, queue: &mut Queue) {
        for f in std::mem::take(&mut self.in_flight) {
            queue.set_in_flight(&f.seqs, false);
        }
    }

    /// When [`poll`](Self::poll) may next have a batch, or a request
    /// under way becomes [`overdue`](Self::overdue), if nothing else
    /// happens first.
    pub fn next_wake(&self, queue: &Queue) -> Option<f64> {
        let deadline = self
            .in_flight
            .iter()
            .map(InFlight::deadline)
            .reduce(f64::min);
        let send = if !self.online || self.busy() {
            None
        } else {
            self.next_sendable(queue)
                .map(|first| self.not_before.max(first.queued_at + self.interval_ms))
        };
        match (deadline, send) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Whether request `id` is under way (not answered, given up or
    /// forgotten).
    pub fn awaits(&self, id: u64) -> bool {
        self.in_flight.iter().any(|f| f.id == id)
    }

    /// Requests unanswered for [`REQUEST_TIMEOUT_MS`]: settle each as a
    /// network error (and abort it).
    pub fn overdue(&self, now: f64) -> Vec<u64> {
        self.in_flight
            .iter()
            .filter(|f| now >= f.deadline())
            .map(|f| f.id)
            .collect()
    }

    /// Applies the answer to batch `id`. `random` in `[0, 1)` draws the
    /// jitter.
    pub fn settle(
        &mut self,
        queue: &mut Queue,
        id: u64,
        outcome: Outcome,
        now: f64,
        random: f64,
    ) -> Settled {
        let Some(index) = self.in_flight.iter().position(|f| f.id == id) else {
            return Settled::default();
        };
        let flight = self.in_flight.swap_remove(index);
        let mut settled = Settled::default();
        let (status, retry_after, redirected) = match outcome {
            Outcome::Status {
                status,
                retry_after,
            } => (status, retry_after, false),
            Outcome::NetworkError => (0, None, false),
            Outcome::Redirected { status, to } => {
                // Only the page's configuration can fix it: said once per
                // page view, and the events wait (retried, stored) for a
                // page whose endpoint is right.
                if !self.redirect_reported {
                    self.redirect_reported = true;
                    settled
                        .errors
                        .push(Error::EndpointRedirected { status, to });
                }
                (status, None, true)
            }
        };
        settled.status = status;
        // Events may have left meanwhile (adopted elsewhere, consent).
        let seqs: Vec<u64> = flight
            .seqs
            .into_iter()
            .filter(|&s| queue.get(s).is_some())
            .collect();
        // After a redirect even a refusal is not the endpoint's answer to
        // the batch: it failed, and goes again.
        let verdict = if redirected {
            Verdict::Retry
        } else {
            classify(status)
        };
        match verdict {
            Verdict::Delivered => {
                self.attempt = 0;
                self.server_asked_wait = false;
                if let (Some(&(_, hi)), Some(&last)) = (self.split.last(), seqs.last()) {
                    if last >= hi {
                        self.split.pop();
                    }
                }
                for f in &mut self.flushes {
                    f.sent += seqs.iter().filter(|&&s| s <= f.through).count();
                }
                settled.removed = seqs;
            }
            Verdict::Retry => {
                settled.failed = true;
                queue.set_in_flight(&seqs, false);
                if !flight.ordinary {
                    // A page-hide batch, and the page lived on: its events
                    // go again with the ordinary requests.
                    return settled;
                }
                self.attempt = self.attempt.saturating_add(1);
                let asked = retry_after.as_deref().and_then(|v| retry_after_ms(v, now));
                let wait = asked.unwrap_or_else(|| self.backoff.delay_ms(self.attempt, random));
                self.server_asked_wait = asked.is_some();
                self.not_before = now + wait;
                settled.retry_in_ms = Some(wait);
                // A flush whose events just failed is answered now; the
                // events stay queued and will be retried.
                let first_failed = seqs.iter().copied().min().unwrap_or(u64::MAX);
                let (done, open): (Vec<Flush>, Vec<Flush>) = std::mem::take(&mut self.flushes)
                    .into_iter()
                    .partition(|f| first_failed <= f.through);
                self.flushes = open;
                settled.flushes = done
                    .into_iter()
                    .map(|f| FlushDone {
                        id: f.id,
                        sent: f.sent,
                        pending: queue.iter().filter(|e| e.seq <= f.through).count(),
                    })
                    .collect();
                return settled;
            }
            Verdict::Split => {
                self.narrow_split(&seqs);
                if let ([.., a_last], [b_first, ..]) = seqs.split_at(seqs.len() / 2) {
                    // Send the first half, then the second.
                    queue.set_in_flight(&seqs, false);
                    if let (Some(&first), Some(&last)) = (seqs.first(), seqs.last()) {
                        self.split.push((*b_first, last));
                        self.split.push((first, *a_last));
                    }
                } else {
                    if let Some(e) = seqs.first().and_then(|&s| queue.get(s)) {
                        settled.errors.push(Error::EventRejected {
                            status,
                            message_id: queue.message_id(e),
                        });
                    }
                    settled.removed = seqs;
                }
            }
            Verdict::Reject => {
                settled.errors.push(Error::BatchRejected {
                    status,
                    events: seqs.len(),
                });
                settled.removed = seqs;
            }
        }
        settled.flushes = self.finished_flushes(queue, &settled.removed);
        settled
    }

    /// Takes a batch that was answered 413 out of the split range on top,
    /// which it is a prefix of (or all of).
    fn narrow_split(&mut self, seqs: &[u64]) {
        let Some(&last) = seqs.last() else { return };
        if let Some(top) = self.split.last_mut() {
            if last >= top.1 {
                self.split.pop();
            } else {
                top.0 = last + 1;
            }
        }
    }

    /// Flushes none of whose events are queued any more (`removed` are
    /// about to leave the queue).
    pub fn finished_flushes(&mut self, queue: &Queue, removed: &[u64]) -> Vec<FlushDone> {
        let mut done = Vec::new();
        self.flushes.retain(|f| {
            let pending = queue
                .iter()
                .take_while(|e| e.seq <= f.through)
                .filter(|e| removed.binary_search(&e.seq).is_err())
                .count();
            if pending == 0 {
                done.push(FlushDone {
                    id: f.id,
                    sent: f.sent,
                    pending: 0,
                });
                false
            } else {
                true
            }
        });
        done
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::Value;

    fn config(max_events: usize, max_bytes: usize) -> DeliveryConfig {
        DeliveryConfig {
            url: "http://c/v1/batch".into(),
            write_key: Some("wk".into()),
            backoff: Backoff {
                base_ms: 1000.0,
                cap_ms: 300_000.0,
            },
            max_events,
            max_bytes,
            interval_ms: 2000.0,
        }
    }

    fn push(q: &mut Queue, n: usize, now: f64) {
        let ctx = q.intern("{\"library\":{}}");
        for _ in 0..n {
            let seq = q.next_seq();
            let id = format!("m{seq}");
            q.push(
                format!("{{\"type\":\"track\",\"messageId\":\"{id}\""),
                ctx,
                now,
            );
        }
    }

    fn ok() -> Outcome {
        Outcome::Status {
            status: 200,
            retry_after: None,
        }
    }

    fn status(s: u16) -> Outcome {
        Outcome::Status {
            status: s,
            retry_after: None,
        }
    }

    fn deliver(d: &mut Delivery, q: &mut Queue, b: &Batch, now: f64) -> Settled {
        let s = d.settle(q, b.id, ok(), now, 0.5);
        q.remove(&s.removed);
        s
    }

    #[test]
    fn a_request_never_answered_is_given_up_at_the_timeout_and_retried() {
        let mut d = Delivery::new(config(100, 60_000));
        let mut q = Queue::default();
        push(&mut q, 2, 0.0);
        let b = d.poll(&mut q, 2000.0).unwrap();
        let deadline = 2000.0 + REQUEST_TIMEOUT_MS;
        assert_eq!(d.next_wake(&q), Some(deadline), "woken at the deadline");
        assert!(d.overdue(deadline - 1.0).is_empty());
        assert_eq!(d.overdue(deadline), vec![b.id]);
        let s = d.settle(&mut q, b.id, Outcome::NetworkError, deadline, 0.5);
        let wait = s.retry_in_ms.unwrap();
        assert!(d.overdue(deadline).is_empty());
        // The late answer to the given-up request changes nothing...
        assert_eq!(
            d.settle(&mut q, b.id, ok(), deadline + 100.0, 0.5),
            Settled::default()
        );
        assert_eq!(q.len(), 2);
        // ...and the same events go again after the backoff.
        assert_eq!(d.next_wake(&q), Some(deadline + wait));
        let retry = d.poll(&mut q, deadline + wait).unwrap();
        assert_eq!(retry.seqs, b.seqs);
    }

    #[test]
    fn waits_for_the_interval_then_sends_one_batch() {
        let mut d = Delivery::new(config(100, 60_000));
        let mut q = Queue::default();
        push(&mut q, 3, 0.0);
        assert!(d.poll(&mut q, 1999.0).is_none());
        assert_eq!(d.next_wake(&q), Some(2000.0));
        let b = d.poll(&mut q, 2000.0).unwrap();
        assert_eq!(b.seqs, vec![0, 1, 2]);
        let v = Value::parse(&b.body).unwrap();
        assert_eq!(
            v.get("batch").and_then(Value::as_array).map(<[Value]>::len),
            Some(3)
        );
        assert_eq!(v.get("writeKey").and_then(Value::as_str), Some("wk"));
        assert!(v.get("sentAt").is_some());
        assert!(d.poll(&mut q, 2000.0).is_none(), "one request at a time");
        deliver(&mut d, &mut q, &b, 2001.0);
        assert!(q.is_empty());
    }

    #[test]
    fn a_full_batch_goes_at_once() {
        let mut d = Delivery::new(config(10, 60_000));
        let mut q = Queue::default();
        push(&mut q, 25, 0.0);
        let b = d.poll(&mut q, 0.0).unwrap();
        assert_eq!(b.seqs.len(), 10);
        deliver(&mut d, &mut q, &b, 0.0);
        let b = d.poll(&mut q, 0.0).unwrap();
        assert_eq!(b.seqs.len(), 10);
        deliver(&mut d, &mut q, &b, 0.0);
        assert!(
            d.poll(&mut q, 0.0).is_none(),
            "5 left: wait for the interval"
        );
    }

    fn gunzip(data: &[u8]) -> String {
        let mut out = String::new();
        std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(data), &mut out).unwrap();
        out
    }

    /// Events shaped like real ones: a fresh id and a shared context.
    fn push_real(q: &mut Queue, n: usize, now: f64) {
        let ctx = q.intern("{\"library\":{\"name\":\"segmint\",\"version\":\"0.1.0\"},\"page\":{\"path\":\"/p/1\",\"url\":\"https://shop.example/p/1\"},\"userAgent\":\"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36\",\"locale\":\"en-US\",\"campaign\":{},\"segments\":[]}");
        for _ in 0..n {
            let seq = q.next_seq();
            let id = format!(
                "{:08x}-4b1c-4d2e-8f3a-{:012x}",
                seq * 2_654_435_761 % 0xffff_ffff,
                seq * 40_503 * 7_919
            );
            q.push(
                format!("{{\"type\":\"track\",\"event\":\"Product Clicked\",\"messageId\":\"{id}\",\"properties\":{{\"product_id\":\"p-{seq}\",\"price\":19.99}}"),
                ctx,
                now,
            );
        }
    }

    #[test]
    fn gzip_batches_fill_to_max_events_and_decode_to_the_json() {
        let mut d = Delivery::new(config(100, 60 * 1024));
        d.set_gzip(true);
        let mut q = Queue::default();
        push_real(&mut q, 1000, 0.0);
        let mut batches = 0;
        while let Some(b) = d.poll(&mut q, 0.0) {
            batches += 1;
            // 100 events are ~50 KB of JSON: uncompressed, a 60 KB cap
            // would still hold them, but not the 1,000 the next test sends.
            assert_eq!(b.seqs.len(), 100);
            let z = b.gzipped.as_ref().expect("gzipped");
            let json = gunzip(z);
            assert!(b.body.is_empty(), "the JSON is never held whole");
            assert_eq!(json.len(), b.json_len);
            let v = crate::json::Value::parse(&json).unwrap();
            assert_eq!(v.get("batch").unwrap().as_array().unwrap().len(), 100);
            assert!(z.len() * 8 < json.len(), "{} of {}", z.len(), json.len());
            assert!(b.keepalive, "a small compressed body goes with keepalive");
            deliver(&mut d, &mut q, &b, 0.0);
        }
        assert_eq!(batches, 10);
        assert!(q.is_empty());
    }

    #[test]
    fn gzip_caps_the_wire_bytes_and_lets_the_json_grow() {
        // 1,000 events per batch allowed; the JSON passes 60 KB many times
        // over but compressed it fits.
        let mut d = Delivery::new(config(1000, 60 * 1024));
        d.set_gzip(true);
        let mut q = Queue::default();
        push_real(&mut q, 1000, 0.0);
        let b = d.poll(&mut q, 0.0).unwrap();
        assert_eq!(b.seqs.len(), 1000);
        assert!(b.json_len > 5 * 60 * 1024 && b.json_len <= MAX_BATCH_JSON);
        assert_eq!(gunzip(b.gzipped.as_ref().unwrap()).len(), b.json_len);
        assert!(Delivery::wire_len(&b) <= 60 * 1024);
        deliver(&mut d, &mut q, &b, 0.0);
        // A tight wire cap: the batch shrinks until it fits compressed.
        let mut d = Delivery::new(config(1000, 4 * 1024));
        d.set_gzip(true);
        push_real(&mut q, 1000, 0.0);
        let b = d.poll(&mut q, 0.0).unwrap();
        assert!(
            Delivery::wire_len(&b) <= 4 * 1024,
            "{}",
            Delivery::wire_len(&b)
        );
        assert!(b.seqs.len() > 20 && b.seqs.len() < 1000, "{}", b.seqs.len());
        let json = gunzip(b.gzipped.as_ref().unwrap());
        assert!(crate::json::Value::parse(&json).is_ok());
    }

    #[test]
    fn gzip_page_hide_batches_count_compressed_bytes_against_the_budget() {
        let mut d = Delivery::new(config(100, 60 * 1024));
        d.set_gzip(true);
        let mut q = Queue::default();
        push_real(&mut q, 3000, 0.0);
        let batches = d.unload_batches(&mut q, 0.0, true);
        let wire: usize = batches.iter().map(Delivery::wire_len).sum();
        let events: usize = batches.iter().map(|b| b.seqs.len()).sum();
        assert!(wire <= KEEPALIVE_BUDGET);
        // Uncompressed, 64 KB holds ~130 of these events.
        assert!(events > 2000, "{events} events in {wire} bytes");
        assert!(batches.iter().all(|b| b.keepalive && b.gzipped.is_some()));
    }

    #[test]
    fn batches_respect_max_bytes() {
        let mut d = Delivery::new(config(100, 2048));
        let mut q = Queue::default();
        push(&mut q, 100, 0.0);
        let b = d.poll(&mut q, 0.0).unwrap();
        assert!(b.body.len() <= 2048, "{}", b.body.len());
        assert!(b.seqs.len() > 1 && b.seqs.len() < 100);
    }

    #[test]
    fn server_errors_back_off_and_retry_the_same_events() {
        let mut d = Delivery::new(config(100, 60_000));
        let mut q = Queue::default();
        push(&mut q, 2, 0.0);
        let b = d.poll(&mut q, 5000.0).unwrap();
        let s = d.settle(&mut q, b.id, status(500), 5000.0, 0.5);
        assert_eq!(s.retry_in_ms, Some(500.0));
        assert!(s.removed.is_empty());
        assert!(d.poll(&mut q, 5499.0).is_none());
        let b2 = d.poll(&mut q, 5500.0).unwrap();
        assert_eq!(b2.seqs, b.seqs);
        let s = d.settle(&mut q, b2.id, Outcome::NetworkError, 5500.0, 0.5);
        assert_eq!(s.retry_in_ms, Some(1000.0), "second retry: ceiling doubled");
        d.set_online(true);
        assert!(
            d.poll(&mut q, 5501.0).is_some(),
            "coming online retries at once"
        );
    }

    #[test]
    fn a_redirected_batch_is_kept_retried_and_reported_once() {
        let mut d = Delivery::new(config(100, 60_000));
        let mut q = Queue::default();
        push(&mut q, 2, 0.0);
        let redirected = || Outcome::Redirected {
            status: 405,
            to: "https://www.c.example/v1/batch".into(),
        };
        let b = d.poll(&mut q, 5000.0).unwrap();
        let s = d.settle(&mut q, b.id, redirected(), 5000.0, 0.5);
        assert!(
            s.failed && s.removed.is_empty(),
            "a 405 after a redirect drops nothing"
        );
        assert_eq!((s.retry_in_ms, s.status), (Some(500.0), 405));
        assert_eq!(
            s.errors,
            vec![Error::EndpointRedirected {
                status: 405,
                to: "https://www.c.example/v1/batch".into()
            }]
        );
        let b2 = d.poll(&mut q, 5500.0).unwrap();
        assert_eq!(b2.seqs, b.seqs, "the same events again");
        let s = d.settle(&mut q, b2.id, redirected(), 5500.0, 0.5);
        assert!(s.errors.is_empty(), "said once per page view");
        assert_eq!(q.len(), 2);
    }

    #[test]
    fn retry_after_is_honoured_even_by_flush() {
        let mut d = Delivery::new(config(100, 60_000));
        let mut q = Queue::default();
        push(&mut q, 1, 0.0);
        let b = d.poll(&mut q, 3000.0).unwrap();
        let s = d.settle(
            &mut q,
            b.id,
            Outcome::Status {
                status: 503,
                retry_after: Some("7".into()),
            },
            3000.0,
            0.0,
        );
        assert_eq!(s.retry_in_ms, Some(7000.0));
        assert!(d.flush(&q, true).is_ok());
        assert!(d.poll(&mut q, 9999.0).is_none());
        assert!(d.poll(&mut q, 10_000.0).is_some());
    }

    #[test]
    fn client_errors_drop_the_batch_and_report() {
        let mut d = Delivery::new(config(100, 60_000));
        let mut q = Queue::default();
        push(&mut q, 3, 0.0);
        let b = d.poll(&mut q, 3000.0).unwrap();
        let s = d.settle(&mut q, b.id, status(400), 3000.0, 0.5);
        assert_eq!(s.removed, vec![0, 1, 2]);
        assert_eq!(
            s.errors,
            vec![Error::BatchRejected {
                status: 400,
                events: 3
            }]
        );
    }

    #[test]
    fn payload_too_large_splits_down_to_one_event() {
        let mut d = Delivery::new(config(100, 60_000));
        let mut q = Queue::default();
        push(&mut q, 4, 0.0);
        let b = d.poll(&mut q, 3000.0).unwrap();
        assert_eq!(b.seqs.len(), 4);
        d.settle(&mut q, b.id, status(413), 3000.0, 0.5);
        let b = d.poll(&mut q, 3000.0).unwrap();
        assert_eq!(b.seqs, vec![0, 1], "halved, retried at once");
        d.settle(&mut q, b.id, status(413), 3000.0, 0.5);
        let b = d.poll(&mut q, 3000.0).unwrap();
        assert_eq!(b.seqs, vec![0]);
        let s = d.settle(&mut q, b.id, status(413), 3000.0, 0.5);
        assert_eq!(s.removed, vec![0]);
        assert_eq!(s.errors[0].code(), "event_rejected");
        q.remove(&s.removed);
        let b = d.poll(&mut q, 3000.0).unwrap();
        assert_eq!(b.seqs, vec![1]);
        deliver(&mut d, &mut q, &b, 3000.0);
        push(&mut q, 4, 3000.0);
        let b = d.poll(&mut q, 3000.0).unwrap();
        assert_eq!(
            b.seqs,
            vec![2, 3],
            "the other half goes as a half, not with newer events"
        );
        deliver(&mut d, &mut q, &b, 3000.0);
        let b = d.poll(&mut q, 6000.0).unwrap();
        assert_eq!(b.seqs, vec![4, 5, 6, 7], "whole batches again");
    }

    #[test]
    fn a_half_refused_after_a_413_lets_the_other_half_go() {
        // Before, the split range of a refused half stayed on top: the
        // next batch was due at once yet never made, and the page's timer
        // fired again and again.
        let mut d = Delivery::new(config(100, 60_000));
        let mut q = Queue::default();
        push(&mut q, 4, 0.0);
        let b = d.poll(&mut q, 3000.0).unwrap();
        d.settle(&mut q, b.id, status(413), 3000.0, 0.5);
        let b = d.poll(&mut q, 3000.0).unwrap();
        assert_eq!(b.seqs, vec![0, 1]);
        let s = d.settle(&mut q, b.id, status(400), 3000.0, 0.5);
        q.remove(&s.removed);
        assert_eq!(d.next_wake(&q), Some(2000.0), "the other half is due");
        let b = d.poll(&mut q, 3000.0).unwrap();
        assert_eq!(b.seqs, vec![2, 3]);
        deliver(&mut d, &mut q, &b, 3000.0);
        assert_eq!(d.next_wake(&q), None);
    }

    #[test]
    fn offline_sends_nothing_and_keeps_everything() {
        let mut d = Delivery::new(config(1, 60_000));
        let mut q = Queue::default();
        push(&mut q, 5, 0.0);
        d.set_online(false);
        assert!(d.poll(&mut q, 1e9).is_none());
        assert!(d.unload_batches(&mut q, 1e9, true).is_empty());
        assert_eq!(
            d.flush(&q, true),
            Err(FlushDone {
                id: 1,
                sent: 0,
                pending: 5
            })
        );
        d.set_online(true);
        assert!(d.poll(&mut q, 0.0).is_some());
    }

    #[test]
    fn flush_sends_now_and_reports_when_done() {
        let mut d = Delivery::new(config(2, 60_000));
        let mut q = Queue::default();
        push(&mut q, 3, 0.0);
        let id = d.flush(&q, true).unwrap();
        let b = d.poll(&mut q, 1.0).unwrap();
        assert!(deliver(&mut d, &mut q, &b, 1.0).flushes.is_empty());
        let b = d.poll(&mut q, 1.0).unwrap();
        let s = deliver(&mut d, &mut q, &b, 1.0);
        assert_eq!(
            s.flushes,
            vec![FlushDone {
                id,
                sent: 3,
                pending: 0
            }]
        );
    }

    #[test]
    fn a_failed_flush_settles_with_pending_events() {
        let mut d = Delivery::new(config(100, 60_000));
        let mut q = Queue::default();
        push(&mut q, 3, 0.0);
        let id = d.flush(&q, true).unwrap();
        let b = d.poll(&mut q, 1.0).unwrap();
        let s = d.settle(&mut q, b.id, status(503), 1.0, 0.5);
        assert_eq!(
            s.flushes,
            vec![FlushDone {
                id,
                sent: 0,
                pending: 3
            }]
        );
        assert_eq!(d.flush(&Queue::default(), true).unwrap_err().pending, 0);
    }

    #[test]
    fn unload_uses_the_keepalive_budget_and_trusts_keepalive_requests() {
        let mut d = Delivery::new(config(100, 60 * 1024));
        let mut q = Queue::default();
        let ctx = q.intern("{}");
        for i in 0..200 {
            let pad = "x".repeat(900);
            q.push(
                format!("{{\"messageId\":\"m{i}\",\"p\":\"{pad}\"\"}}"),
                ctx,
                0.0,
            );
        }
        let ordinary = d.poll(&mut q, 0.0).unwrap();
        assert!(!ordinary.keepalive, "a 60 KB batch is over half the budget");
        d.settle(&mut q, ordinary.id, Outcome::NetworkError, 0.0, 0.0);
        let mut d = Delivery::new(config(100, 30 * 1024));
        let ordinary = d.poll(&mut q, 0.0).unwrap();
        assert!(
            ordinary.keepalive,
            "a batch within half the budget outlives the page"
        );
        let batches = d.unload_batches(&mut q, 1.0, true);
        let total: usize =
            ordinary.body.len() + batches.iter().map(|b| b.body.len()).sum::<usize>();
        assert!(total <= KEEPALIVE_BUDGET, "{total}");
        assert!(batches.iter().all(|b| b.keepalive));
        assert!(
            !batches.iter().any(|b| b.seqs.contains(&0)),
            "the keepalive request is not sent twice"
        );
        let carried: usize = batches.iter().map(|b| b.seqs.len()).sum();
        let in_flight = q.iter().filter(|e| e.in_flight()).count();
        assert_eq!(in_flight, carried + ordinary.seqs.len());
        assert!(
            d.unload_batches(&mut q, 2.0, true).is_empty(),
            "budget is spent"
        );
    }

    #[test]
    fn without_keepalive_fetch_the_beacons_carry_every_event() {
        let mut d = Delivery::new(config(100, 30 * 1024));
        d.set_keepalive_fetch(false);
        let mut q = Queue::default();
        push(&mut q, 5, 0.0);
        let ordinary = d.poll(&mut q, 5000.0).unwrap();
        assert!(!ordinary.keepalive, "a fetch that dies with the page");
        // Tab hidden: the batches go by fetch, which may die too.
        push(&mut q, 3, 5000.0);
        let hidden = d.unload_batches(&mut q, 5001.0, false);
        assert!(!hidden.is_empty() && hidden.iter().all(|b| !b.keepalive));
        // Page hide: every event goes again, in beacons.
        let beacons = d.unload_batches(&mut q, 5002.0, true);
        assert!(beacons.iter().all(|b| b.keepalive));
        let carried: Vec<u64> = beacons.iter().flat_map(|b| b.seqs.clone()).collect();
        assert_eq!(carried, (0..8).collect::<Vec<u64>>());
    }

    #[test]
    fn a_request_too_big_for_keepalive_is_resent_at_unload() {
        let mut d = Delivery::new(config(100, 60 * 1024));
        let mut q = Queue::default();
        let ctx = q.intern("{}");
        for i in 0..100 {
            let pad = "x".repeat(900);
            q.push(
                format!("{{\"messageId\":\"m{i}\",\"p\":\"{pad}\"\"}}"),
                ctx,
                0.0,
            );
        }
        let big = d.poll(&mut q, 0.0).unwrap();
        assert!(!big.keepalive && big.body.len() > KEEPALIVE_BUDGET / 2);
        let batches = d.unload_batches(&mut q, 1.0, true);
        assert_eq!(
            batches[0].seqs[0], 0,
            "its events go again within the budget"
        );
        assert!(
            !d.awaits(big.id),
            "forgotten, for the caller to abort, and its answer ignored"
        );
        assert!(batches.iter().all(|b| d.awaits(b.id)));
    }
}
