//! Batches: which queued events go in the next request, as the body
//! Segment's batch API takes (`{"batch":[...],"sentAt":..,"writeKey":..}`),
//! gzipped when the endpoint accepts it, within the event and byte caps.

use super::{Delivery, InFlight, KEEPALIVE_BUDGET};
use crate::gzip::Gzip;
use crate::json::write_string;
use crate::queue::Queue;
use crate::time::write_rfc3339;

/// A request to send.
#[derive(Clone, Debug, PartialEq)]
pub struct Batch {
    /// Identifies the answer in [`Delivery::settle`].
    pub id: u64,
    /// `{"batch":[...],"sentAt":..,"writeKey":..}`; empty when the batch
    /// is gzipped (its JSON is compressed as it is made, never held whole).
    pub body: String,
    /// The body gzip-compressed, when the endpoint accepts gzip: this goes
    /// on the wire then, to the URL with `?compression=gzip`.
    pub gzipped: Option<Vec<u8>>,
    /// Bytes of the body's JSON.
    pub json_len: usize,
    /// Sequence numbers of the events inside.
    pub seqs: Vec<u64>,
    /// Send with `keepalive`: the request outlives the page.
    pub keepalive: bool,
}

/// How much JSON is made before it goes to the encoder.
const PIECE: usize = 16 * 1024;

impl Delivery {
    fn batch_tail(&self, now: f64) -> String {
        let mut tail = String::from("],\"sentAt\":\"");
        write_rfc3339(&mut tail, now);
        tail.push('"');
        if let Some(key) = &self.write_key {
            tail.push_str(",\"writeKey\":");
            write_string(&mut tail, key);
        }
        tail.push('}');
        tail
    }

    /// Fills a batch from the oldest events not in flight, up to sequence
    /// number `through`, at most `max_events` events and `max_bytes` of
    /// body on the wire (one event always goes, whatever its size, so
    /// nothing can stall the queue). A page-hide batch (`!ordinary`) that
    /// cannot fit even one event in `max_bytes` is not made. `outlives`:
    /// the way it is sent can outlive the page (keepalive, a beacon).
    pub(super) fn build(
        &mut self,
        queue: &mut Queue,
        now: f64,
        max_bytes: usize,
        ordinary: bool,
        outlives: bool,
        through: u64,
    ) -> Option<Batch> {
        let tail = self.batch_tail(now);
        let json_cap = if self.gzip {
            self.json_cap()
        } else {
            max_bytes
        };
        let mut max_events = self.max_events;
        const OPEN: &str = "{\"batch\":[";
        let (body, seqs, gzipped, json_len) = loop {
            let sendable = || {
                queue
                    .iter()
                    .filter(|e| !e.in_flight())
                    .take_while(|e| e.seq <= through)
            };
            // Which events go and the body's length first, so the body is
            // allocated once: a body grown by doubling would hold up to
            // three times its size at once, and wasm memory never shrinks.
            let (mut count, mut json_len) = (0, OPEN.len() + tail.len());
            for e in sendable() {
                let len = queue.wire_len(e) + usize::from(count > 0);
                if count > 0 && (count >= max_events || json_len + len > json_cap) {
                    break;
                }
                json_len += len;
                count += 1;
            }
            if count == 0 {
                return None;
            }
            // Gzipped, the JSON goes to the encoder a few KB at a time.
            let mut z = self.gzip.then(|| Gzip::new(json_len));
            let mut body = String::with_capacity(if z.is_some() { PIECE + 1024 } else { json_len });
            body.push_str(OPEN);
            let mut seqs = Vec::with_capacity(count);
            for e in sendable().take(count) {
                if !seqs.is_empty() {
                    body.push(',');
                }
                queue.write_entry(&mut body, e);
                seqs.push(e.seq);
                if let Some(z) = z.as_mut().filter(|_| body.len() >= PIECE) {
                    z.write(body.as_bytes());
                    body.clear();
                }
            }
            body.push_str(&tail);
            let gzipped = z.map(|mut z| {
                z.write(body.as_bytes());
                body = String::new();
                z.finish()
            });
            let wire = gzipped.as_ref().map_or(body.len(), Vec::len);
            if wire <= max_bytes {
                break (body, seqs, gzipped, json_len);
            }
            if seqs.len() == 1 {
                if !ordinary {
                    // Does not fit what is left of the keepalive budget.
                    return None;
                }
                break (body, seqs, gzipped, json_len);
            }
            // Compressed, it is still over the cap: fewer events, in
            // proportion (a tenth to spare).
            let fit = seqs.len() * max_bytes / wire.max(1) * 9 / 10;
            max_events = fit.clamp(1, seqs.len() - 1);
        };
        let bytes = gzipped.as_ref().map_or(body.len(), Vec::len);
        queue.set_in_flight(&seqs, true);
        let id = self.next_id;
        self.next_id += 1;
        // Ordinary batches use keepalive only up to half the budget: the
        // browser releases a finished request's share some time after its
        // answer arrives, and two halves always fit.
        let keepalive = outlives
            && self.keepalive_bytes() + bytes <= KEEPALIVE_BUDGET
            && (!ordinary || bytes <= KEEPALIVE_BUDGET / 2);
        self.in_flight.push(InFlight {
            id,
            sent_at: now,
            seqs: seqs.clone(),
            bytes,
            keepalive,
            ordinary,
        });
        Some(Batch {
            id,
            body,
            gzipped,
            json_len,
            seqs,
            keepalive,
        })
    }

    /// Bytes a batch puts on the wire.
    pub fn wire_len(batch: &Batch) -> usize {
        batch.gzipped.as_ref().map_or(batch.body.len(), Vec::len)
    }
}
