//! A page view's queue in storage: *chunks* under its own keys
//! (`sgm_q.<tab>.<n>`), written once when their events are new and
//! rewritten only when some of them are delivered, so persisting costs
//! time in proportion to what changed, never to the queue. A page view
//! that ends (or crashes) leaves its chunks, and a heartbeat that stops
//! (`sgm_tab.<tab>`), for the next one to *adopt*.

use crate::queue::{
    is_whole_head, Entry, Queue, CHUNK_MAX_BYTES, CHUNK_MAX_EVENTS, QUEUE_PREFIX, STALE_TAB_MS,
    STORED_QUEUE_BUDGET, TAB_PREFIX,
};
use crate::store::Store;

const CHUNK_MAGIC: &str = "sgm-q1";

/// The text of a chunk holding `entries` (all from `queue`).
pub fn encode_chunk<'a>(queue: &Queue, entries: impl Iterator<Item = &'a Entry>) -> String {
    let mut out = String::from(CHUNK_MAGIC);
    let mut local: Vec<u32> = Vec::new();
    for e in entries {
        let local_id = match local.iter().position(|&c| c == e.ctx) {
            Some(i) => i,
            None => {
                local.push(e.ctx);
                out.push_str("\nc");
                out.push_str(&(local.len() - 1).to_string());
                out.push('\t');
                out.push_str(queue.context(e.ctx));
                local.len() - 1
            }
        };
        out.push_str("\ne");
        out.push_str(&local_id.to_string());
        out.push('\t');
        // Heads are JSON text: a raw newline can never occur in them.
        queue.write_head(&mut out, e);
    }
    out
}

/// A message read back from a chunk.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredMessage {
    /// Its context JSON.
    pub context: String,
    /// Its head.
    pub head: String,
}

/// Reads a chunk back. Damaged lines are skipped and counted: a message
/// is kept only if it is a whole JSON object with a `messageId`, so one bad
/// line can never spoil the batch it would be sent in.
pub fn decode_chunk(text: &str) -> (Vec<StoredMessage>, usize) {
    let mut lines = text.split('\n');
    if lines.next() != Some(CHUNK_MAGIC) {
        return (Vec::new(), 1);
    }
    let mut contexts: Vec<Option<String>> = Vec::new();
    let mut messages = Vec::new();
    let mut skipped = 0;
    for line in lines {
        let parsed = line.get(1..).and_then(|rest| rest.split_once('\t'));
        let (kind, (id, json)) = match (line.as_bytes().first(), parsed) {
            (Some(kind), Some(parts)) => (*kind, parts),
            _ => {
                skipped += 1;
                continue;
            }
        };
        let id: Option<usize> = id.parse().ok();
        match kind {
            b'c' => {
                let ok = json.starts_with('{') && crate::json::validate(json).is_ok();
                if let Some(id) = id.filter(|&i| i < 10_000) {
                    if contexts.len() <= id {
                        contexts.resize(id + 1, None);
                    }
                    if let Some(slot) = contexts.get_mut(id) {
                        *slot = ok.then(|| json.to_string());
                    }
                }
                if !ok || id.is_none() {
                    skipped += 1;
                }
            }
            b'e' => {
                let context = id.and_then(|i| contexts.get(i).cloned().flatten());
                let has_id = is_whole_head(json);
                match (context, has_id) {
                    (Some(context), true) => messages.push(StoredMessage {
                        context,
                        head: json.to_string(),
                    }),
                    _ => skipped += 1,
                }
            }
            _ => skipped += 1,
        }
    }
    (messages, skipped)
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Chunk {
    no: u64,
    /// Lowest and highest sequence number it was written with.
    lo: u64,
    hi: u64,
    /// Length of its text in storage.
    bytes: usize,
}

/// What adopting another page view's queue found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Adopted {
    /// Messages taken over.
    pub messages: usize,
    /// Damaged entries skipped.
    pub skipped: usize,
}

/// Keeps one page view's queue in storage as chunks.
#[derive(Clone, Debug)]
pub struct Persister {
    tab: String,
    chunks: Vec<Chunk>,
    next_chunk: u64,
    /// Messages with a lower sequence number are in storage (or gone).
    persisted_upto: u64,
    /// Bytes of queue text kept in storage at most.
    budget: usize,
    /// Page views whose queues this one took while storage refused to
    /// store them under its own keys: their keys go once it does (see
    /// [`Persister::adopt`]), and they are not taken twice meanwhile.
    adopting: Vec<Adopting>,
}

/// A queue taken over but still in storage under the old page view's keys.
#[derive(Clone, Debug)]
struct Adopting {
    tab: String,
    keys: Vec<String>,
    /// Its messages have lower sequence numbers than this.
    upto: u64,
}

impl Persister {
    /// A persister for page view `tab` (a short random id).
    pub fn new(tab: &str) -> Persister {
        Persister {
            tab: tab.to_string(),
            chunks: Vec::new(),
            next_chunk: 0,
            persisted_upto: 0,
            budget: STORED_QUEUE_BUDGET,
            adopting: Vec::new(),
        }
    }

    /// Sets how many bytes of queue text storage keeps (from the next
    /// write on).
    pub fn set_budget(&mut self, bytes: usize) {
        self.budget = bytes;
    }

    /// How many bytes of queue text storage keeps.
    pub fn budget(&self) -> usize {
        self.budget
    }

    /// This page view's id.
    pub fn tab(&self) -> &str {
        &self.tab
    }

    fn chunk_key(&self, no: u64) -> String {
        format!("{QUEUE_PREFIX}{}.{no}", self.tab)
    }

    /// The heartbeat key of this page view.
    pub fn tab_key(&self) -> String {
        format!("{TAB_PREFIX}{}", self.tab)
    }

    /// Whether every queued message is in storage.
    pub fn is_clean(&self, queue: &Queue) -> bool {
        self.persisted_upto >= queue.next_seq()
    }

    /// Writes the messages queued since the last call as new chunks;
    /// returns how many chunks it wrote. On a refused write the rest stays
    /// unpersisted (in memory) and the browser's reason is returned; the
    /// next call tries again.
    pub fn save_new(&mut self, queue: &Queue, store: &mut dyn Store) -> Result<usize, String> {
        let mut pending: Vec<&Entry> = Vec::new();
        let mut bytes = 0;
        let mut result = Ok(());
        let mut written = 0;
        let entries: Vec<&Entry> = queue.iter_from(self.persisted_upto).collect();
        for (i, e) in entries.iter().enumerate() {
            pending.push(e);
            bytes += e.head_len() + 4;
            let last = i + 1 == entries.len();
            if last || pending.len() >= CHUNK_MAX_EVENTS || bytes >= CHUNK_MAX_BYTES {
                result = self.write_chunk(queue, &pending, store);
                if result.is_err() {
                    break;
                }
                written += 1;
                pending.clear();
                bytes = 0;
            }
        }
        self.trim(store);
        result.map(|()| {
            self.persisted_upto = queue.next_seq();
            // What was taken over is in storage under this page view's
            // keys now: the old ones go.
            for taken in std::mem::take(&mut self.adopting) {
                for key in taken.keys {
                    store.remove(&key);
                }
                store.remove(&format!("{TAB_PREFIX}{}", taken.tab));
            }
            written
        })
    }

    /// Keeps the chunks in storage within the budget
    /// ([`STORED_QUEUE_BUDGET`] unless set): the oldest leave storage
    /// (never the newest chunk). Their events stay queued in memory.
    fn trim(&mut self, store: &mut dyn Store) {
        let mut total: usize = self.chunks.iter().map(|c| c.bytes).sum();
        while total > self.budget && self.chunks.len() > 1 {
            let oldest = self.chunks.remove(0);
            store.remove(&self.chunk_key(oldest.no));
            total -= oldest.bytes;
        }
    }

    fn write_chunk(
        &mut self,
        queue: &Queue,
        entries: &[&Entry],
        store: &mut dyn Store,
    ) -> Result<(), String> {
        let (Some(first), Some(last)) = (entries.first(), entries.last()) else {
            return Ok(());
        };
        let no = self.next_chunk;
        let text = encode_chunk(queue, entries.iter().copied());
        store.set(&self.chunk_key(no), &text)?;
        self.next_chunk += 1;
        self.chunks.push(Chunk {
            no,
            lo: first.seq,
            hi: last.seq,
            bytes: text.len(),
        });
        self.persisted_upto = last.seq + 1;
        Ok(())
    }

    /// Updates storage after `removed` (sorted sequence numbers) left the
    /// queue: chunks left empty are deleted, others rewritten.
    pub fn forget(&mut self, removed: &[u64], queue: &Queue, store: &mut dyn Store) {
        if removed.is_empty() {
            return;
        }
        let mut kept = Vec::with_capacity(self.chunks.len());
        for chunk in std::mem::take(&mut self.chunks) {
            let start = removed.partition_point(|&s| s < chunk.lo);
            let touched = removed.get(start).is_some_and(|&s| s <= chunk.hi);
            if !touched {
                kept.push(chunk);
                continue;
            }
            let remaining: Vec<&Entry> = queue
                .iter_from(chunk.lo)
                .take_while(|e| e.seq <= chunk.hi)
                .collect();
            let key = self.chunk_key(chunk.no);
            if remaining.is_empty() {
                store.remove(&key);
            } else {
                // A failed rewrite leaves the old chunk: its delivered
                // events may be sent again (the collector ignores known
                // ids), never lost.
                let text = encode_chunk(queue, remaining.into_iter());
                let bytes = if store.set(&key, &text).is_ok() {
                    text.len()
                } else {
                    chunk.bytes
                };
                kept.push(Chunk { bytes, ..chunk });
            }
        }
        self.chunks = kept;
    }

    /// Deletes every chunk of this page view (consent withdrawn).
    pub fn clear(&mut self, queue: &Queue, store: &mut dyn Store) {
        for chunk in std::mem::take(&mut self.chunks) {
            store.remove(&self.chunk_key(chunk.no));
        }
        self.persisted_upto = queue.next_seq();
    }

    /// Whether another page view took this one's queue (its heartbeat key
    /// is gone or names another time). The caller then drops what was
    /// persisted, since it is the adopter's to send now.
    pub fn was_adopted(&self, store: &dyn Store, heartbeat: f64) -> bool {
        !self.chunks.is_empty() && store.get(&self.tab_key()) != Some(format_ms(heartbeat))
    }

    /// Gives up the persisted part of the queue after an adoption.
    /// Returns the bound: messages with a lower sequence number are now
    /// another page view's to send (queues this one was taking over
    /// included: their keys are still there for the adopter).
    pub fn disown(&mut self) -> u64 {
        self.chunks.clear();
        let upto = self
            .adopting
            .drain(..)
            .map(|a| a.upto)
            .fold(self.persisted_upto, u64::max);
        upto
    }

    /// The page views whose queues are orphaned (see [`orphaned_tabs`]),
    /// but for those this one is taking over already.
    pub fn orphans(&self, store: &dyn Store, previous: Option<&str>, now: f64) -> Vec<String> {
        let mut tabs = orphaned_tabs(store, &self.tab, previous, now);
        tabs.retain(|t| !self.adopting.iter().any(|a| a.tab == *t));
        tabs
    }

    /// Highest sequence number in storage, plus one.
    pub fn persisted_upto(&self) -> u64 {
        self.persisted_upto
    }

    /// Takes over the queue page view `from` left in storage: its messages
    /// join this queue (and this page view's chunks), then its keys go.
    pub fn adopt(
        &mut self,
        from: &str,
        queue: &mut Queue,
        store: &mut dyn Store,
        now: f64,
    ) -> Adopted {
        let prefix = format!("{QUEUE_PREFIX}{from}.");
        let mut keys: Vec<(u64, String)> = store
            .keys()
            .into_iter()
            .filter_map(|k| {
                let no = k.strip_prefix(&prefix)?.parse().ok()?;
                Some((no, k))
            })
            .collect();
        crate::sort::sort_by_key(&mut keys, |(no, _)| *no);
        let mut found = Adopted::default();
        for (_, key) in &keys {
            let (messages, skipped) = store.get(key).map_or((Vec::new(), 0), |t| decode_chunk(&t));
            found.skipped += skipped;
            for m in messages {
                let ctx = queue.intern(&m.context);
                queue.push(m.head, ctx, now);
                found.messages += 1;
            }
        }
        // Their keys go only once the messages are safe in ours (now, or
        // at the first write storage takes): a crash in between sends
        // some twice, never loses one.
        self.adopting.push(Adopting {
            tab: from.to_string(),
            keys: keys.into_iter().map(|(_, k)| k).collect(),
            upto: queue.next_seq(),
        });
        let _ = self.save_new(queue, store);
        found
    }
}

/// Page views whose queues are orphaned: they have chunks in storage but
/// no fresh heartbeat, or are `previous` (the page this tab showed before
/// a reload or navigation, certainly gone). Never `me`.
pub fn orphaned_tabs(store: &dyn Store, me: &str, previous: Option<&str>, now: f64) -> Vec<String> {
    let keys = store.keys();
    let mut tabs: Vec<String> = Vec::new();
    for key in &keys {
        if let Some((tab, _)) = key
            .strip_prefix(QUEUE_PREFIX)
            .and_then(|rest| rest.split_once('.'))
        {
            if tab != me && !tabs.iter().any(|t| t == tab) {
                tabs.push(tab.to_string());
            }
        }
    }
    tabs.retain(|t| {
        if Some(t.as_str()) == previous {
            return true;
        }
        heartbeat_stale(store.get(&format!("{TAB_PREFIX}{t}")).as_deref(), now)
    });
    tabs
}

/// Whether a heartbeat (as stored under [`TAB_PREFIX`]) says its page
/// view is gone: missing, unreadable, or further than [`STALE_TAB_MS`]
/// from now either way. A heartbeat far ahead was written before the
/// device clock was put back: a live page view writes a new one within
/// half a minute, one that is gone never will.
pub fn heartbeat_stale(beat: Option<&str>, now: f64) -> bool {
    match beat.and_then(|v| v.parse::<i64>().ok()) {
        Some(beat) => (now - beat as f64).abs() > STALE_TAB_MS,
        None => true,
    }
}

/// Heartbeats of page views that are gone and left no queue: removed,
/// so a browser whose tabs crash now and then does not gather them.
pub fn dead_heartbeats(store: &dyn Store, now: f64) -> Vec<String> {
    let keys = store.keys();
    keys.iter()
        .filter_map(|k| Some((k, k.strip_prefix(TAB_PREFIX)?)))
        .filter(|(_, tab)| {
            let chunks = format!("{QUEUE_PREFIX}{tab}.");
            !keys.iter().any(|k| k.starts_with(&chunks))
        })
        .filter(|(k, _)| heartbeat_stale(store.get(k).as_deref(), now))
        .map(|(k, _)| k.clone())
        .collect()
}

/// Milliseconds as stored in a heartbeat.
pub fn format_ms(ms: f64) -> String {
    format!("{}", ms.floor() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::message_id_of;
    use crate::store::MemoryStore;

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
    fn chunks_round_trip() {
        let q = queue_with(3);
        let text = encode_chunk(&q, q.iter());
        let (messages, skipped) = decode_chunk(&text);
        assert_eq!(skipped, 0);
        assert_eq!(messages.len(), 3);
        assert_eq!(message_id_of(&messages[2].head), "m2");
        assert_eq!(messages[0].context, "{\"page\":{}}");
    }

    #[test]
    fn damaged_chunks_keep_what_is_readable() {
        let q = queue_with(2);
        let text = encode_chunk(&q, q.iter());
        let damaged = format!("{text}\ne0\t{{\"broken\"\nzzz\ne7\t{}\n", head("m9"));
        let (messages, skipped) = decode_chunk(&damaged);
        assert_eq!(messages.len(), 2);
        assert_eq!(skipped, 4); // broken head, unknown kind, unknown context, empty line
        assert_eq!(decode_chunk("garbage").1, 1);
        assert_eq!(decode_chunk("").0.len(), 0);
    }

    #[test]
    fn saving_writes_only_new_events_in_bounded_chunks() {
        let mut store = MemoryStore::default();
        let mut q = queue_with(250);
        let mut p = Persister::new("t1");
        p.save_new(&q, &mut store).unwrap();
        assert_eq!(store.keys().len(), 3, "100 + 100 + 50");
        let ctx = q.intern("{\"page\":{}}");
        q.push(head("late"), ctx, 0.0);
        p.save_new(&q, &mut store).unwrap();
        assert_eq!(store.keys().len(), 4, "one new chunk for the new event");
        assert!(p.is_clean(&q));
    }

    #[test]
    fn delivered_events_leave_storage() {
        let mut store = MemoryStore::default();
        let mut q = queue_with(150);
        let mut p = Persister::new("t1");
        p.save_new(&q, &mut store).unwrap();
        let first_hundred: Vec<u64> = (0..100).collect();
        q.remove(&first_hundred);
        p.forget(&first_hundred, &q, &mut store);
        assert_eq!(store.keys(), vec!["sgm_q.t1.1"]);
        let some: Vec<u64> = (100..110).collect();
        q.remove(&some);
        p.forget(&some, &q, &mut store);
        let (left, _) = decode_chunk(&store.get("sgm_q.t1.1").unwrap());
        assert_eq!(left.len(), 40);
    }

    #[test]
    fn a_queue_that_cannot_drain_keeps_only_its_newest_megabyte_in_storage() {
        let mut store = MemoryStore::default();
        let mut q = Queue::default();
        let ctx = q.intern("{\"page\":{}}");
        let mut p = Persister::new("t1");
        let pad = "x".repeat(250); // about a typical event's size
        for i in 0..6000 {
            let h = format!("{{\"type\":\"track\",\"event\":\"E\",\"properties\":{{\"p\":\"{pad}\"}},\"messageId\":\"m{i}\"");
            q.push(h, ctx, 0.0);
            if i % 50 == 49 {
                p.save_new(&q, &mut store).unwrap();
            }
        }
        let stored = |store: &MemoryStore| -> usize {
            store
                .keys()
                .iter()
                .map(|k| store.get(k).map_or(0, |v| v.len()))
                .sum()
        };
        let used = stored(&store);
        assert!(
            used <= STORED_QUEUE_BUDGET && used > STORED_QUEUE_BUDGET - CHUNK_MAX_BYTES,
            "{used}"
        );
        assert_eq!(q.len(), 6000, "every event is still queued in memory");
        assert!(p.is_clean(&q));
        // Storage holds the newest events: what a reload would adopt.
        let mut next = Queue::default();
        let found = Persister::new("t2").adopt("t1", &mut next, &mut store, 1.0);
        assert_eq!(found.skipped, 0);
        assert!(
            found.messages > 3000 && found.messages < 6000,
            "{}",
            found.messages
        );
        assert_eq!(next.message_id(next.iter().last().unwrap()), "m5999");
        // Delivering events that left storage touches nothing stored.
        let mut store = MemoryStore::default();
        let mut p = Persister::new("t3");
        p.save_new(&q, &mut store).unwrap();
        let before = store.keys();
        let oldest: Vec<u64> = (0..100).collect();
        q.remove(&oldest);
        p.forget(&oldest, &q, &mut store);
        assert_eq!(store.keys(), before);
    }

    #[test]
    fn a_full_store_keeps_events_in_memory_and_retries() {
        let mut store = MemoryStore::default();
        store.refuse_writes = true;
        let q = queue_with(5);
        let mut p = Persister::new("t1");
        assert!(p.save_new(&q, &mut store).is_err());
        assert!(!p.is_clean(&q));
        store.refuse_writes = false;
        p.save_new(&q, &mut store).unwrap();
        assert!(p.is_clean(&q));
        assert_eq!(store.keys().len(), 1);
    }

    #[test]
    fn adoption_moves_a_queue_between_page_views() {
        let mut store = MemoryStore::default();
        let q1 = queue_with(120);
        let mut p1 = Persister::new("old");
        store.set("sgm_tab.old", "0").unwrap();
        p1.save_new(&q1, &mut store).unwrap();

        let mut q2 = Queue::default();
        let mut p2 = Persister::new("new");
        assert_eq!(
            orphaned_tabs(&store, "new", None, STALE_TAB_MS + 1.0),
            vec!["old"]
        );
        assert!(
            orphaned_tabs(&store, "new", None, 5.0).is_empty(),
            "fresh heartbeat"
        );
        assert_eq!(
            orphaned_tabs(&store, "new", Some("old"), 5.0),
            vec!["old"],
            "the previous page of this tab"
        );
        let found = p2.adopt("old", &mut q2, &mut store, 1.0);
        assert_eq!(
            found,
            Adopted {
                messages: 120,
                skipped: 0
            }
        );
        assert_eq!(q2.len(), 120);
        assert_eq!(q2.message_id(q2.get(119).unwrap()), "m119");
        assert!(store.keys().iter().all(|k| k.starts_with("sgm_q.new.")));
        assert!(orphaned_tabs(&store, "new", None, 1e12).is_empty());
    }

    #[test]
    fn an_adopted_page_view_notices() {
        let mut store = MemoryStore::default();
        let q = queue_with(1);
        let mut p = Persister::new("a");
        store.set("sgm_tab.a", "1000").unwrap();
        p.save_new(&q, &mut store).unwrap();
        assert!(!p.was_adopted(&store, 1000.0));
        store.remove("sgm_tab.a");
        assert!(p.was_adopted(&store, 1000.0));
        assert_eq!(p.disown(), 1);
    }

    #[test]
    fn a_stored_message_needs_a_message_id_of_its_own() {
        assert!(is_whole_head(
            r#"{"type":"track","properties":{"messageId":"p"},"messageId":"m","x":"y""#
        ));
        // Only its properties' member: damaged, skipped.
        assert!(!is_whole_head(
            r#"{"type":"track","properties":{"a":{"b":"}{"},"messageId":"p"}"#
        ));
        assert!(!is_whole_head(r#"["messageId","m""#));
        assert!(!is_whole_head(r#"{"a":"\",\"messageId\":\"m""#));
    }
}
