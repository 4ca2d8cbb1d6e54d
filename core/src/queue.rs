//! The event queue: messages waiting in recording order, each a head
//! (the message without its context) and a shared context, as sent. Each
//! page view also keeps them in storage ([`crate::persister`]).

use crate::message::{wire_len, write_message};
use std::collections::VecDeque;

/// Storage keys of queue chunks start with this.
pub const QUEUE_PREFIX: &str = "sgm_q.";
/// `sgm_tab.<tab>` holds a live page view's heartbeat (ms since epoch).
pub const TAB_PREFIX: &str = "sgm_tab.";
/// A page view whose heartbeat is older than this is presumed gone.
pub const STALE_TAB_MS: f64 = 10.0 * 60_000.0;
/// A chunk holds at most this many events...
pub const CHUNK_MAX_EVENTS: usize = 100;
/// ...and at most about this many bytes of text.
pub const CHUNK_MAX_BYTES: usize = 48 * 1024;
/// The most queue text a page view keeps in storage. Beyond it the oldest
/// chunks leave storage and their events wait in memory only (sent as
/// usual while the page lives): a queue that cannot drain, as when an ad
/// blocker blocks the collector, never takes more than this of the
/// site's own localStorage quota (5 MB in most browsers), where the
/// 10,000 events `maxQueueEvents` allows would take about 3 MB.
pub const STORED_QUEUE_BUDGET: usize = 1024 * 1024;
/// The stored queue's budget while the collector has not answered this
/// browser for a day: most likely an ad blocker stops it here, and every
/// page view would pay to read back a queue that cannot drain. Two
/// chunks: the newest events.
pub const UNREACHABLE_QUEUE_BUDGET: usize = 2 * CHUNK_MAX_BYTES;

/// One queued message.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    /// Position in this page view's queue; increases with every event.
    pub seq: u64,
    /// The message without its context (see [`crate::message`]).
    pub head: String,
    /// Id of its context in the queue's context table.
    pub ctx: u32,
    /// When it was queued (ms), for the flush interval.
    pub queued_at: f64,
    /// Whether a request carrying it is under way.
    pub in_flight: bool,
}

impl Entry {
    /// The message's `messageId`, read from its head rather than kept
    /// twice (a queued event costs wasm memory that is never given back).
    pub fn message_id(&self) -> &str {
        message_id_of(&self.head)
    }
}

/// The `messageId` of a message head: its last `messageId` member, since
/// a property of that name comes before the message's own, and the
/// escaped strings after it cannot hold a bare quote. Empty if none.
pub fn message_id_of(head: &str) -> &str {
    message_id_at(head)
        .and_then(|at| head.get(at + MESSAGE_ID_KEY.len()..))
        .and_then(|rest| rest.split('"').next())
        .unwrap_or("")
}

const MESSAGE_ID_KEY: &str = ",\"messageId\":\"";

/// Where the last `messageId` member of `head` starts.
fn message_id_at(head: &str) -> Option<usize> {
    // A plain scan: `str::rfind` brings a searcher of several KB into
    // the wasm.
    head.as_bytes()
        .windows(MESSAGE_ID_KEY.len())
        .rposition(|w| w == MESSAGE_ID_KEY.as_bytes())
}

/// Whether `head` (a message without its closing brace) is a whole JSON
/// object with a `messageId` member of its own (not only one inside its
/// properties): checked without building it, as a page that adopts a
/// large stored queue checks every message.
pub(crate) fn is_whole_head(head: &str) -> bool {
    if !head.starts_with('{') || crate::json::validate(&format!("{head}}}")).is_err() {
        return false;
    }
    let Some(at) = message_id_at(head) else {
        return false;
    };
    // Its own member is its last one, at the top level.
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &b in head.as_bytes().iter().take(at) {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
        } else {
            match b {
                b'"' => in_string = true,
                b'{' | b'[' => depth += 1,
                b'}' | b']' => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
    }
    depth == 1
}

#[derive(Clone, Debug)]
struct Context {
    json: String,
    refs: usize,
}

/// Queued messages in order, with their shared contexts.
#[derive(Clone, Debug, Default)]
pub struct Queue {
    entries: VecDeque<Entry>,
    /// (id, context): a handful at most, so a list.
    contexts: Vec<(u32, Context)>,
    last_ctx: Option<u32>,
    next_seq: u64,
    next_ctx: u32,
    wire_bytes: usize,
}

impl Queue {
    // Ids are handed out in ascending order and contexts are only appended
    // or removed, so the list stays sorted by id.
    fn ctx(&self, id: u32) -> Option<&Context> {
        let at = self.contexts.binary_search_by_key(&id, |(i, _)| *i).ok()?;
        self.contexts.get(at).map(|(_, c)| c)
    }

    fn ctx_mut(&mut self, id: u32) -> Option<&mut Context> {
        let at = self.contexts.binary_search_by_key(&id, |(i, _)| *i).ok()?;
        self.contexts.get_mut(at).map(|(_, c)| c)
    }

    /// The id of context `json`, reusing the latest one when equal.
    pub fn intern(&mut self, json: &str) -> u32 {
        if let Some(id) = self.last_ctx {
            if self.ctx(id).is_some_and(|c| c.json == json) {
                return id;
            }
        }
        let id = self.next_ctx;
        self.next_ctx += 1;
        self.contexts.push((
            id,
            Context {
                json: json.to_string(),
                refs: 0,
            },
        ));
        let previous = self.last_ctx.replace(id);
        if let Some(prev) = previous {
            self.collect(prev);
        }
        id
    }

    fn collect(&mut self, id: u32) {
        if Some(id) == self.last_ctx {
            return;
        }
        if let Ok(at) = self.contexts.binary_search_by_key(&id, |(i, _)| *i) {
            if self.contexts.get(at).is_some_and(|(_, c)| c.refs == 0) {
                self.contexts.remove(at);
            }
        }
    }

    /// The JSON of context `id` (empty object if unknown).
    pub fn context(&self, id: u32) -> &str {
        self.ctx(id).map_or("{}", |c| c.json.as_str())
    }

    /// Appends a message; returns its sequence number.
    pub fn push(&mut self, head: String, ctx: u32, now: f64) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        if let Some(c) = self.ctx_mut(ctx) {
            c.refs += 1;
        }
        let entry = Entry {
            seq,
            head,
            ctx,
            queued_at: now,
            in_flight: false,
        };
        self.wire_bytes += self.wire_len(&entry);
        self.entries.push_back(entry);
        seq
    }

    /// Bytes of `entry` as sent.
    pub fn wire_len(&self, entry: &Entry) -> usize {
        wire_len(&entry.head, self.context(entry.ctx))
    }

    /// Appends `entry` as sent to `out`.
    pub fn write_entry(&self, out: &mut String, entry: &Entry) {
        write_message(out, &entry.head, self.context(entry.ctx));
    }

    /// Number of queued messages.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Total bytes of the queued messages as sent.
    pub fn wire_bytes(&self) -> usize {
        self.wire_bytes
    }

    /// The queued messages, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter()
    }

    /// The queued messages from sequence number `seq` on.
    pub fn iter_from(&self, seq: u64) -> impl Iterator<Item = &Entry> {
        let start = self.entries.partition_point(|e| e.seq < seq);
        self.entries.range(start..)
    }

    /// The sequence number the next message will get.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// The message with sequence number `seq`.
    pub fn get(&self, seq: u64) -> Option<&Entry> {
        let i = self.entries.binary_search_by_key(&seq, |e| e.seq).ok()?;
        self.entries.get(i)
    }

    /// Marks messages as carried (or no longer carried) by a request.
    pub fn set_in_flight(&mut self, seqs: &[u64], in_flight: bool) {
        for &seq in seqs {
            if let Ok(i) = self.entries.binary_search_by_key(&seq, |e| e.seq) {
                if let Some(e) = self.entries.get_mut(i) {
                    e.in_flight = in_flight;
                }
            }
        }
    }

    /// Removes the messages with these sequence numbers; returns them.
    pub fn remove(&mut self, seqs: &[u64]) -> Vec<Entry> {
        let mut removed = Vec::with_capacity(seqs.len());
        // Delivered batches are almost always at the front.
        for &seq in seqs {
            let index = match self.entries.front() {
                Some(front) if front.seq == seq => Some(0),
                _ => self.entries.binary_search_by_key(&seq, |e| e.seq).ok(),
            };
            if let Some(entry) = index.and_then(|i| self.entries.remove(i)) {
                self.wire_bytes = self.wire_bytes.saturating_sub(self.wire_len(&entry));
                removed.push(entry);
            }
        }
        for entry in &removed {
            if let Some(c) = self.ctx_mut(entry.ctx) {
                c.refs = c.refs.saturating_sub(1);
            }
            self.collect(entry.ctx);
        }
        removed
    }

    /// Removes up to `n` of the oldest messages that no request carries.
    pub fn drop_oldest(&mut self, n: usize) -> Vec<Entry> {
        let seqs: Vec<u64> = self
            .entries
            .iter()
            .filter(|e| !e.in_flight)
            .take(n)
            .map(|e| e.seq)
            .collect();
        self.remove(&seqs)
    }

    /// Gives the messages of anonymous id `from` that no request carries
    /// the id `to` (both UUIDs, as the tracker makes them): events held
    /// before consent in one tab join the visitor's id another tab stored.
    pub fn rename_anonymous_id(&mut self, from: &str, to: &str) {
        // The head's own member is its last (see `message_id_of`).
        const KEY: &[u8] = b",\"anonymousId\":\"";
        let mut wire_bytes = self.wire_bytes;
        for e in self.entries.iter_mut().filter(|e| !e.in_flight) {
            let Some(start) = e
                .head
                .as_bytes()
                .windows(KEY.len())
                .rposition(|w| w == KEY)
                .map(|at| at + KEY.len())
            else {
                continue;
            };
            let end = start + from.len();
            if let (Some(before), Some(after)) = (e.head.get(..start), e.head.get(end..)) {
                if e.head.get(start..end) == Some(from) && after.starts_with('"') {
                    e.head = [before, to, after].concat();
                    wire_bytes = wire_bytes.saturating_sub(from.len()) + to.len();
                }
            }
        }
        self.wire_bytes = wire_bytes;
    }

    /// Removes everything.
    pub fn clear(&mut self) -> Vec<Entry> {
        let seqs: Vec<u64> = self.entries.iter().map(|e| e.seq).collect();
        self.remove(&seqs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(id: &str) -> String {
        format!("{{\"type\":\"track\",\"event\":\"E\",\"properties\":{{}},\"messageId\":\"{id}\"")
    }

    fn queue_with(n: usize) -> Queue {
        let mut q = Queue::default();
        let ctx = q.intern("{\"page\":{}}");
        for i in 0..n {
            q.push(head(&format!("m{i}")), ctx, 0.0);
        }
        q
    }

    #[test]
    fn the_message_id_is_read_from_the_head() {
        use crate::message::{message_head, Ids, Kind};
        let head = message_head(
            Kind::Track {
                event: "E",
                properties: r#"{"a":1,"messageId":"not-this","x":",\"messageId\":\"nor-this"}"#,
            },
            Ids {
                anonymous_id: "a\",\"messageId\":\"b",
                user_id: Some("u"),
            },
            "the-id",
            0.0,
        );
        let mut q = Queue::default();
        let ctx = q.intern("{}");
        let seq = q.push(head, ctx, 0.0);
        assert_eq!(q.get(seq).unwrap().message_id(), "the-id");
    }

    #[test]
    fn contexts_are_shared_and_collected() {
        let mut q = Queue::default();
        let a = q.intern("{\"a\":1}");
        assert_eq!(q.intern("{\"a\":1}"), a);
        q.push(head("m0"), a, 0.0);
        let b = q.intern("{\"b\":1}");
        assert_ne!(a, b);
        assert_eq!(q.context(a), "{\"a\":1}");
        q.remove(&[0]);
        assert_eq!(q.context(a), "{}", "unreferenced old context is dropped");
        assert_eq!(q.context(b), "{\"b\":1}", "the current context stays");
    }

    #[test]
    fn wire_bytes_track_pushes_and_removals() {
        let mut q = queue_with(3);
        let one = q.wire_len(q.get(0).unwrap());
        assert_eq!(q.wire_bytes(), 3 * one);
        q.remove(&[1]);
        assert_eq!(q.wire_bytes(), 2 * one);
        let mut out = String::new();
        q.write_entry(&mut out, q.get(0).unwrap());
        assert_eq!(out.len(), one);
        assert!(crate::json::Value::parse(&out).is_ok());
    }

    #[test]
    fn renaming_the_anonymous_id_reaches_every_waiting_head_and_keeps_the_byte_count() {
        let mut q = Queue::default();
        let ctx = q.intern("{}");
        let old = "11111111-1111-4111-8111-111111111111";
        let new = "22222222-2222-4222-8222-222222222222";
        // A property of the same name comes first and is left alone.
        let head = |n: u32| {
            format!(
                "{{\"type\":\"track\",\"event\":\"e{n}\",\"properties\":{{\"anonymousId\":\"{old}\"}},\"messageId\":\"m{n}\",\"anonymousId\":\"{old}\",\"timestamp\":\"t\""
            )
        };
        for n in 0..3 {
            q.push(head(n), ctx, 0.0);
        }
        q.push(
            head(3).replace(old, "33333333-3333-4333-8333-333333333333"),
            ctx,
            0.0,
        );
        q.set_in_flight(&[0], true);
        q.rename_anonymous_id(old, new);
        let heads: Vec<&str> = q.iter().map(|e| e.head.as_str()).collect();
        assert!(
            heads[0].ends_with(&format!("\"anonymousId\":\"{old}\",\"timestamp\":\"t\"")),
            "in flight: as sent"
        );
        for h in &heads[1..3] {
            assert!(h.contains(&format!("\"properties\":{{\"anonymousId\":\"{old}\"}}")));
            assert!(h.ends_with(&format!("\"anonymousId\":\"{new}\",\"timestamp\":\"t\"")));
        }
        assert!(!heads[3].contains(new), "another id is not this one");
        let total: usize = q.iter().map(|e| q.wire_len(e)).sum();
        assert_eq!(q.wire_bytes(), total);
    }

    #[test]
    fn drop_oldest_skips_in_flight_events() {
        let mut q = queue_with(5);
        q.set_in_flight(&[0, 1], true);
        let dropped = q.drop_oldest(2);
        assert_eq!(
            dropped.iter().map(|e| e.seq).collect::<Vec<_>>(),
            vec![2, 3]
        );
    }
}
