//! The event queue: messages waiting in recording order, each a head
//! (the message without its context) and a shared context, as sent. Each
//! page view also keeps them in storage ([`crate::persister`]).
//!
//! New heads gather in the queue's *tail*; once written to storage (or
//! once the tail holds [`BLOCK_BYTES`]) they move out as one block to a
//! [`HeadBlocks`] store: the queue's own memory by default, the page's
//! JavaScript heap in the browser, which gives the memory back once they
//! are delivered, where the wasm's linear memory would keep the high-water
//! mark of a burst of events for the rest of the page view. A block moves
//! in one call, so a burst of events costs a few crossings, not one each.

use crate::message::{write_message, CONTEXT_JOINT};
use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::VecDeque;

mod entries;
use entries::Entries;

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

/// Where the queue keeps blocks of heads (see the module's docs).
pub trait HeadBlocks {
    /// Keeps `text`, a block of heads; its id.
    fn put(&mut self, text: String) -> u32;
    /// The text of block `id` (empty if none).
    fn get(&self, id: u32) -> Cow<'_, str>;
    /// Forgets block `id`.
    fn remove(&mut self, id: u32);
}

/// Blocks in the queue's own memory.
#[derive(Default)]
pub struct MemoryBlocks {
    slots: Vec<Option<String>>,
    free: Vec<u32>,
}

impl HeadBlocks for MemoryBlocks {
    fn put(&mut self, text: String) -> u32 {
        match self.free.pop() {
            Some(id) => {
                if let Some(slot) = self.slots.get_mut(id as usize) {
                    *slot = Some(text);
                }
                id
            }
            None => {
                self.slots.push(Some(text));
                (self.slots.len() - 1) as u32
            }
        }
    }

    fn get(&self, id: u32) -> Cow<'_, str> {
        Cow::Borrowed(
            self.slots
                .get(id as usize)
                .and_then(Option::as_deref)
                .unwrap_or(""),
        )
    }

    fn remove(&mut self, id: u32) {
        if let Some(slot) = self.slots.get_mut(id as usize) {
            if slot.take().is_some() {
                self.free.push(id);
            }
        }
    }
}

/// The tail moves out as a block once it holds this many bytes.
pub const BLOCK_BYTES: usize = 32 * 1024;
/// The block of a head still in the tail.
const TAIL: u32 = u32::MAX;

/// One queued message.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    /// Position in this page view's queue; increases with every event.
    pub seq: u64,
    /// When it was queued (ms), for the flush interval.
    pub queued_at: f64,
    /// Where its head is: the block ([`TAIL`] while in the tail) and the
    /// bytes within it. The head is the message without its context (see
    /// [`crate::message`]).
    block: u32,
    start: u32,
    /// The head's bytes; the top bit: a request carrying it is under way.
    /// (Packed so an entry takes 32 bytes: 10,000 queued cost 320 KB.)
    len: u32,
    /// Id of its context in the queue's context table.
    pub ctx: u32,
}

const IN_FLIGHT: u32 = 1 << 31;

impl Entry {
    /// Bytes of the message's head.
    pub fn head_len(&self) -> usize {
        (self.len & !IN_FLIGHT) as usize
    }

    /// Whether a request carrying it is under way.
    pub fn in_flight(&self) -> bool {
        self.len & IN_FLIGHT != 0
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
pub struct Queue {
    entries: Entries,
    /// Heads not yet moved out, end to end.
    tail: String,
    blocks: Box<dyn HeadBlocks>,
    /// (block, messages whose head it holds), oldest first.
    live: VecDeque<(u32, u32)>,
    /// The block read last (a block the store copies out is read once
    /// for all its heads in a batch).
    read: RefCell<Option<(u32, String)>>,
    /// Messages whose head is in the tail.
    in_tail: usize,
    /// (id, context): a handful at most, so a list.
    contexts: Vec<(u32, Context)>,
    last_ctx: Option<u32>,
    next_seq: u64,
    next_ctx: u32,
    wire_bytes: usize,
}

impl Default for Queue {
    fn default() -> Queue {
        Queue {
            entries: Entries::default(),
            tail: String::new(),
            blocks: Box::new(MemoryBlocks::default()),
            live: VecDeque::new(),
            read: RefCell::new(None),
            in_tail: 0,
            contexts: Vec::new(),
            last_ctx: None,
            next_seq: 0,
            next_ctx: 0,
            wire_bytes: 0,
        }
    }
}

impl std::fmt::Debug for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue")
            .field("len", &self.entries.len())
            .field("next_seq", &self.next_seq)
            .field("blocks", &self.live.len())
            .finish()
    }
}

impl Queue {
    /// Keeps the blocks of heads in `blocks` from now on (those kept so
    /// far move).
    pub fn keep_heads_in(&mut self, mut blocks: Box<dyn HeadBlocks>) {
        for (id, _) in self.live.iter_mut() {
            let moved = blocks.put(self.blocks.get(*id).into_owned());
            self.blocks.remove(*id);
            for e in self.entries.iter_mut().filter(|e| e.block == *id) {
                e.block = moved;
            }
            *id = moved;
        }
        self.blocks = blocks;
        self.read = RefCell::new(None);
    }

    /// Moves the tail's heads out as one block (the persister calls this
    /// once they are in storage; [`push`](Self::push) once the tail holds
    /// [`BLOCK_BYTES`]).
    pub fn seal(&mut self) {
        if self.tail.is_empty() {
            return;
        }
        let text = std::mem::take(&mut self.tail);
        let id = self.blocks.put(text);
        // The tail's messages are the newest, but for renamed ones.
        let mut held = 0;
        for e in self.entries.iter_mut().rev() {
            if held == self.in_tail {
                break;
            }
            if e.block == TAIL {
                e.block = id;
                held += 1;
            }
        }
        self.in_tail = 0;
        if held > 0 {
            self.live.push_back((id, held as u32));
        } else {
            self.blocks.remove(id);
        }
    }

    /// Runs `f` on the head of `entry`.
    fn with_head<R>(&self, entry: &Entry, f: impl FnOnce(&str) -> R) -> R {
        let range = entry.start as usize..entry.start as usize + entry.head_len();
        if entry.block == TAIL {
            return f(self.tail.get(range).unwrap_or(""));
        }
        // A block copied out is read once for all its heads (a batch reads
        // them in order); a store that lends its text is read as it is.
        if let Ok(read) = self.read.try_borrow() {
            if let Some((_, text)) = read.as_ref().filter(|(id, _)| *id == entry.block) {
                return f(text.get(range).unwrap_or(""));
            }
        }
        let text = self.blocks.get(entry.block);
        match text {
            Cow::Borrowed(text) => f(text.get(range).unwrap_or("")),
            Cow::Owned(text) => {
                let result = f(text.get(range).unwrap_or(""));
                if let Ok(mut read) = self.read.try_borrow_mut() {
                    *read = Some((entry.block, text));
                }
                result
            }
        }
    }

    /// One message whose head `block` held is gone.
    fn release(&mut self, block: u32) {
        if block == TAIL {
            self.in_tail = self.in_tail.saturating_sub(1);
            return;
        }
        let Some(at) = self.live.iter().position(|(id, _)| *id == block) else {
            return;
        };
        let gone = self.live.get_mut(at).is_some_and(|(_, n)| {
            *n = n.saturating_sub(1);
            *n == 0
        });
        if gone {
            self.live.remove(at);
            self.blocks.remove(block);
            if let Ok(mut read) = self.read.try_borrow_mut() {
                if read.as_ref().is_some_and(|(id, _)| *id == block) {
                    *read = None;
                }
            }
        }
    }

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
            queued_at: now,
            block: TAIL,
            start: self.tail.len() as u32,
            len: head.len() as u32 & !IN_FLIGHT,
            ctx,
        };
        self.tail.push_str(&head);
        self.in_tail += 1;
        self.wire_bytes += self.wire_len(&entry);
        self.entries.push_back(entry);
        if self.tail.len() >= BLOCK_BYTES {
            self.seal();
        }
        seq
    }

    /// Bytes of `entry` as sent (see [`crate::message::wire_len`]).
    pub fn wire_len(&self, entry: &Entry) -> usize {
        entry.head_len() + CONTEXT_JOINT.len() + self.context(entry.ctx).len() + 1
    }

    /// Appends `entry` as sent to `out`.
    pub fn write_entry(&self, out: &mut String, entry: &Entry) {
        let context = self.context(entry.ctx);
        self.with_head(entry, |head| write_message(out, head, context));
    }

    /// Appends the head of `entry` to `out`.
    pub fn write_head(&self, out: &mut String, entry: &Entry) {
        self.with_head(entry, |head| out.push_str(head));
    }

    /// The `messageId` of `entry`, read from its head rather than kept
    /// twice.
    pub fn message_id(&self, entry: &Entry) -> String {
        self.with_head(entry, |head| message_id_of(head).to_string())
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
        let start = self.entries.search(seq).unwrap_or_else(|i| i);
        self.entries.from(start)
    }

    /// The sequence number the next message will get.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// The message with sequence number `seq`.
    pub fn get(&self, seq: u64) -> Option<&Entry> {
        let i = self.entries.search(seq).ok()?;
        self.entries.get(i)
    }

    /// Marks messages as carried (or no longer carried) by a request.
    pub fn set_in_flight(&mut self, seqs: &[u64], in_flight: bool) {
        for &seq in seqs {
            if let Ok(i) = self.entries.search(seq) {
                if let Some(e) = self.entries.get_mut(i) {
                    if in_flight {
                        e.len |= IN_FLIGHT;
                    } else {
                        e.len &= !IN_FLIGHT;
                    }
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
                _ => self.entries.search(seq).ok(),
            };
            if let Some(entry) = index.and_then(|i| self.entries.remove(i)) {
                self.wire_bytes = self.wire_bytes.saturating_sub(self.wire_len(&entry));
                removed.push(entry);
            }
        }
        for entry in &removed {
            self.release(entry.block);
            if let Some(c) = self.ctx_mut(entry.ctx) {
                c.refs = c.refs.saturating_sub(1);
            }
            self.collect(entry.ctx);
        }
        if self.entries.is_empty() {
            // Nothing refers to the tail any more: its space is reused.
            self.tail.clear();
        }
        removed
    }

    /// Removes up to `n` of the oldest messages that no request carries.
    pub fn drop_oldest(&mut self, n: usize) -> Vec<Entry> {
        let seqs: Vec<u64> = self
            .entries
            .iter()
            .filter(|e| !e.in_flight())
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
        let rename = |head: &str| {
            let start = head
                .as_bytes()
                .windows(KEY.len())
                .rposition(|w| w == KEY)
                .map(|at| at + KEY.len())?;
            let end = start + from.len();
            let (before, after) = (head.get(..start)?, head.get(end..)?);
            (head.get(start..end) == Some(from) && after.starts_with('"'))
                .then(|| [before, to, after].concat())
        };
        // Renamed heads go to the tail (their messages keep their place).
        let mut renamed = Vec::new();
        for i in 0..self.entries.len() {
            let Some(e) = self.entries.get(i).filter(|e| !e.in_flight()) else {
                continue;
            };
            if let Some(head) = self.with_head(e, rename) {
                renamed.push((i, head));
            }
        }
        if renamed.is_empty() {
            return;
        }
        self.seal();
        for (i, head) in renamed {
            let start = self.tail.len() as u32;
            self.tail.push_str(&head);
            let Some(e) = self.entries.get_mut(i) else {
                continue;
            };
            self.in_tail += 1;
            let old = std::mem::replace(&mut e.block, TAIL);
            (e.start, e.len) = (start, head.len() as u32);
            self.wire_bytes = self.wire_bytes.saturating_sub(from.len()) + to.len();
            self.release(old);
        }
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

    /// Blocks handed out as copies, as the browser's store does; counts
    /// the blocks it holds.
    #[derive(Default)]
    struct Copied(MemoryBlocks, std::rc::Rc<std::cell::Cell<usize>>);

    impl HeadBlocks for Copied {
        fn put(&mut self, text: String) -> u32 {
            self.1.set(self.1.get() + 1);
            self.0.put(text)
        }
        fn get(&self, id: u32) -> Cow<'_, str> {
            Cow::Owned(self.0.get(id).into_owned())
        }
        fn remove(&mut self, id: u32) {
            self.1.set(self.1.get() - 1);
            self.0.remove(id)
        }
    }

    #[test]
    fn heads_move_out_in_blocks_and_go_when_their_messages_do() {
        let held = std::rc::Rc::new(std::cell::Cell::new(0));
        let mut q = queue_with(3);
        q.keep_heads_in(Box::new(Copied(MemoryBlocks::default(), held.clone())));
        q.seal();
        assert_eq!(held.get(), 1, "the three heads went out as one block");
        let ctx = q.intern("{\"page\":{}}");
        // A burst: the tail moves out every BLOCK_BYTES.
        let long = format!("{}{}", head("long"), ",\"pad\":\"x\"".repeat(100));
        for _ in 0..(3 * BLOCK_BYTES / long.len()) {
            q.push(long.clone(), ctx, 0.0);
        }
        assert!(held.get() >= 3, "{} blocks", held.get());
        let mut body = String::new();
        for e in q.iter() {
            q.write_entry(&mut body, e);
        }
        assert!(body.starts_with(&head("m0")) && body.contains(&long));
        assert_eq!(q.message_id(q.get(2).unwrap()), "m2");
        let seqs: Vec<u64> = q.iter().map(|e| e.seq).collect();
        q.remove(&seqs);
        assert_eq!(held.get(), 0, "every block let go");
        // A rename takes the head to the tail and lets its block go.
        let mut q = queue_with(1);
        q.keep_heads_in(Box::new(Copied(MemoryBlocks::default(), held.clone())));
        q.seal();
        let renamed = format!(
            "{},\"anonymousId\":\"{}\"",
            head("r"),
            "11111111-1111-4111-8111-111111111111"
        );
        let ctx = q.intern("{}");
        q.push(renamed, ctx, 0.0);
        q.seal();
        q.rename_anonymous_id(
            "11111111-1111-4111-8111-111111111111",
            "22222222-2222-4222-8222-222222222222",
        );
        let mut h = String::new();
        q.write_head(&mut h, q.get(1).unwrap());
        assert!(
            h.ends_with("\"anonymousId\":\"22222222-2222-4222-8222-222222222222\""),
            "{h}"
        );
        q.seal();
        assert_eq!(held.get(), 2, "the renamed head's old block went");
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
        assert_eq!(q.message_id(q.get(seq).unwrap()), "the-id");
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
        let heads: Vec<String> = q
            .iter()
            .map(|e| {
                let mut h = String::new();
                q.write_head(&mut h, e);
                h
            })
            .collect();
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
