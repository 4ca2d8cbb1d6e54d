//! The page view's queue on its way out: kept in storage under this page
//! view's keys, sent in batches ([`Delivery`]), let go when an answer
//! proves it stored or refuses it for good, handed to the next page view
//! when this one goes, and taken over from page views that went.

use super::storage::Storage;
use super::{Notices, Tracker};
use crate::config::Consent;
use crate::delivery::{Batch, Delivery, FlushDone, Outcome, Settled};
use crate::error::Error;
use crate::persister::{dead_heartbeats, format_ms, Persister};
use crate::profile::PROFILE_KEY;
use crate::queue::{Queue, STORED_QUEUE_BUDGET, UNREACHABLE_QUEUE_BUDGET};
use crate::store::Store;

mod lazy;

/// Set while the collector's latest answer (heard by any of the site's
/// page views) was a failure, to `since,latest`: the times of the first
/// and the latest failure of the run. Removed by any other answer (the
/// collector is up: even a refusal says beacons reach it). A run a day
/// long shrinks the stored queue (see [`UNREACHABLE_AFTER_MS`]).
pub const FAILING_KEY: &str = "sgm_failing";
/// A run of failed answers this long, none more than this apart, means
/// the collector is unreachable from this browser (an ad blocker, most
/// likely): the stored queue shrinks to
/// [`UNREACHABLE_QUEUE_BUDGET`](crate::queue::UNREACHABLE_QUEUE_BUDGET).
pub const UNREACHABLE_AFTER_MS: f64 = 24.0 * 3600.0 * 1000.0;

/// The queue, its stored form and its delivery.
pub struct Dispatch {
    pub queue: Queue,
    pub persister: Persister,
    pub delivery: Delivery,
    /// When this page view's heartbeat was last written.
    heartbeat: f64,
    /// The page is gone (pagehide): nothing more is sent from here.
    pub released: bool,
}

impl Dispatch {
    pub fn new(tab: &str, delivery: Delivery, now: f64) -> Dispatch {
        Dispatch {
            queue: Queue::default(),
            persister: Persister::new(tab),
            delivery,
            heartbeat: now,
            released: false,
        }
    }

    /// Queues a message (its head and context JSON); beyond `bound`
    /// messages the oldest go, and how many is returned.
    pub fn push(
        &mut self,
        head: String,
        context: &str,
        now: f64,
        bound: usize,
        store: &mut dyn Store,
    ) -> usize {
        let ctx = self.queue.intern(context);
        self.queue.push(head, ctx, now);
        let excess = self.queue.len().saturating_sub(bound);
        if excess == 0 {
            return 0;
        }
        let dropped: Vec<u64> = self
            .queue
            .drop_oldest(excess)
            .iter()
            .map(|e| e.seq)
            .collect();
        self.persister.forget(&dropped, &self.queue, store);
        dropped.len()
    }

    /// Writes the messages queued since the last write; then their heads
    /// leave the queue's tail (see [`Queue::seal`]).
    pub fn save<S: Store>(&mut self, storage: &mut Storage<S>, notices: &mut Notices, now: f64) {
        match self.persister.save_new(&self.queue, &mut storage.store) {
            // Nothing new to write says nothing about the storage.
            Ok(0) => {}
            Ok(_) => notices.maybe(storage.note(Ok(()))),
            Err(reason) => {
                storage.refused_at(now);
                notices.maybe(storage.note(Err(reason)));
            }
        }
        self.queue.seal();
    }

    /// Whether every queued message is in storage.
    pub fn saved(&self) -> bool {
        self.persister.is_clean(&self.queue)
    }

    /// Writes this page view's heartbeat.
    pub fn beat<S: Store>(&mut self, storage: &mut Storage<S>, notices: &mut Notices, now: f64) {
        self.heartbeat = now;
        let key = self.persister.tab_key();
        notices.maybe(storage.write(Consent::Granted, &key, &format_ms(now)));
    }

    /// Refreshes this page view's heartbeat (every 30 s or so). If another
    /// page view adopted this one's queue meanwhile (this tab was frozen),
    /// the adopted events are let go: they are the adopter's to send now.
    pub fn heartbeat<S: Store>(
        &mut self,
        storage: &mut Storage<S>,
        notices: &mut Notices,
        now: f64,
    ) {
        if self.persister.was_adopted(&storage.store, self.heartbeat) {
            let upto = self.persister.disown();
            let gone: Vec<u64> = self
                .queue
                .iter()
                .filter(|e| e.seq < upto)
                .map(|e| e.seq)
                .collect();
            self.delivery.reset_in_flight(&mut self.queue);
            self.queue.remove(&gone);
            notices.debug(|| format!("another tab took over {} queued event(s)", gone.len()));
            let result = self.persister.save_new(&self.queue, &mut storage.store);
            notices.maybe(storage.note(result.map(drop)));
        }
        self.beat(storage, notices, now);
        for key in dead_heartbeats(&storage.store, now) {
            storage.store.remove(&key);
        }
    }

    /// Whether other page views left queues behind for this one to adopt.
    pub fn has_orphans(&self, store: &dyn Store, previous_tab: Option<&str>, now: f64) -> bool {
        !self.persister.orphans(store, previous_tab, now).is_empty()
    }

    /// Adopts the queues other page views left behind. Returns how many
    /// events were taken over.
    pub fn adopt_orphans(
        &mut self,
        store: &mut dyn Store,
        notices: &mut Notices,
        previous_tab: Option<&str>,
        now: f64,
    ) -> usize {
        let mut total = 0;
        for tab in self.persister.orphans(store, previous_tab, now) {
            let found = self.persister.adopt(&tab, &mut self.queue, store, now);
            total += found.messages;
            if found.skipped > 0 {
                notices.error(Error::StorageCorrupt {
                    what: "queue",
                    skipped: found.skipped,
                });
            }
        }
        if total > 0 {
            notices.debug(|| format!("recovered {total} event(s) left by an earlier page or tab"));
        }
        total
    }

    /// The batch to send now, if one is due.
    pub fn poll(&mut self, notices: &mut Notices, now: f64) -> Option<Batch> {
        let batch = self.delivery.poll(&mut self.queue, now)?;
        notices.debug(|| match &batch.gzipped {
            Some(z) => format!(
                "batch of {} event(s), {} bytes ({} gzipped)",
                batch.seqs.len(),
                batch.json_len,
                z.len()
            ),
            None => format!(
                "batch of {} event(s), {} bytes",
                batch.seqs.len(),
                batch.json_len
            ),
        });
        Some(batch)
    }

    /// Applies what an answer settled: the collector's health noted (with
    /// consent), what left the queue let go (see [`Tracker::settle`]).
    fn settled<S: Store>(
        &mut self,
        storage: &mut Storage<S>,
        consent: Consent,
        settled: &Settled,
        now: f64,
    ) {
        if consent == Consent::Granted {
            self.note_collector_health(&mut storage.store, settled, now);
        }
        self.remove(storage.writable(consent), &settled.removed);
    }

    /// Keeps [`FAILING_KEY`] current: the latest answer from the
    /// collector, failed or delivered, from whichever page view heard it.
    fn note_collector_health(&mut self, store: &mut dyn Store, settled: &Settled, now: f64) {
        if settled.failed {
            // A failure more than a day after the last one starts a run.
            let since = failure_run(store)
                .filter(|&(_, latest)| now - latest < UNREACHABLE_AFTER_MS)
                .map_or(now, |(since, _)| since);
            let run = format!("{},{}", format_ms(since), format_ms(now));
            // Best effort: where storage refuses it, the stored queue
            // keeps its full budget.
            let _ = store.set(FAILING_KEY, &run);
        } else if store.get(FAILING_KEY).is_some() {
            store.remove(FAILING_KEY);
        }
        self.budget(store);
    }

    /// A small stored queue while the collector is unreachable from this
    /// browser, the full one otherwise.
    pub fn budget(&mut self, store: &dyn Store) {
        let unreachable = failure_run(store)
            .is_some_and(|(since, latest)| latest - since >= UNREACHABLE_AFTER_MS);
        self.persister.set_budget(if unreachable {
            UNREACHABLE_QUEUE_BUDGET
        } else {
            STORED_QUEUE_BUDGET
        });
    }

    /// Lets messages go (delivered, refused for good) from the queue and
    /// storage.
    fn remove(&mut self, store: &mut dyn Store, seqs: &[u64]) {
        if seqs.is_empty() {
            return;
        }
        let mut sorted = seqs.to_vec();
        crate::sort::sort_by_key(&mut sorted, |s| *s);
        self.queue.remove(&sorted);
        self.persister.forget(&sorted, &self.queue, store);
    }

    /// `flush()`: sends everything queued now (see [`Delivery::flush`]).
    pub fn flush(&mut self, can_send: bool) -> Result<u32, FlushDone> {
        self.delivery.flush(&self.queue, can_send && !self.released)
    }

    /// Batches for a page being hidden or going (`beacon`: `sendBeacon`).
    pub fn unload_batches(&mut self, now: f64, beacon: bool) -> Vec<Batch> {
        self.delivery.unload_batches(&mut self.queue, now, beacon)
    }

    /// Drops the whole queue and its stored form (consent denied); how
    /// many messages were queued.
    pub fn clear(&mut self, store: &mut dyn Store) -> usize {
        let dropped = self.queue.clear().len();
        self.delivery.reset_in_flight(&mut self.queue);
        self.persister.clear(&self.queue, store);
        dropped
    }

    /// The page came back from the back/forward cache after it was
    /// released: a new page view id, an empty queue (what the old one
    /// left is adopted from storage).
    pub fn renew(&mut self, tab: &str, store: &dyn Store) {
        self.delivery.reset_in_flight(&mut self.queue);
        self.queue.clear();
        self.persister = Persister::new(tab);
        self.budget(store);
        self.released = false;
    }
}

/// The run of failed answers in force: (first, latest) failure.
fn failure_run(store: &dyn Store) -> Option<(f64, f64)> {
    let run = store.get(FAILING_KEY)?;
    let (since, latest) = run.split_once(',')?;
    // Whole milliseconds, as written: integer parsing, since a float
    // parser would cost the wasm 14 KB brotli.
    let ms = |v: &str| v.parse::<i64>().ok().map(|n| n as f64);
    Some((ms(since)?, ms(latest)?))
}

/// The tracker's calls about its queue: writing it, sending it, the
/// answers, the page going and coming back, other page views' queues.
impl<S: Store> Tracker<S> {
    /// Keeps the queued messages' heads in `blocks` once written (the
    /// browser keeps them in the page's JavaScript heap: see
    /// [`crate::queue`]).
    pub fn keep_heads_in(&mut self, blocks: Box<dyn crate::queue::HeadBlocks>) {
        self.dispatch.queue.keep_heads_in(blocks);
    }

    /// Writes what changed since the last call: new queue chunks and the
    /// profile. The adapter calls this once per task (a microtask after
    /// the first event), so a burst costs one write, not one per event.
    pub fn persist(&mut self, now: f64) {
        if !self.granted() || self.storage.paused(now) {
            return;
        }
        self.dispatch
            .save(&mut self.storage, &mut self.notices, now);
        self.save_segments();
        if self.rules.is_some() && self.profile.dirty {
            if let Some(text) = self.profile_write() {
                self.write(PROFILE_KEY, &text);
            }
        }
    }

    /// Whether [`persist`](Self::persist) has something to write now. A
    /// failing storage is tried again once its pause is over (by the next
    /// event, timer or page hide).
    pub fn needs_persist(&self, now: f64) -> bool {
        self.granted()
            && !self.storage.paused(now)
            && (!self.dispatch.saved() || self.profile.due(self.rules.is_some(), now))
    }

    /// Refreshes this page view's heartbeat (every 30 s or so). If another
    /// page view adopted this one's queue meanwhile (this tab was frozen),
    /// the adopted events are let go: they are the adopter's to send now.
    /// Until the later module arrives, the heartbeat written at start
    /// stands: a page view that cannot send lets another take its queue.
    pub fn heartbeat(&mut self, now: f64) {
        if self.granted() && !self.dispatch.released && self.engine_ready {
            self.beat_and_check(now);
        }
    }

    /// Whether other page views left queues behind for this one to adopt.
    /// (False until the later module is there: see
    /// [`engine_arrived`](Self::engine_arrived).)
    pub fn has_orphans(&self, previous_tab: Option<&str>, now: f64) -> bool {
        self.granted() && self.engine_ready && self.find_orphans(previous_tab, now)
    }

    /// Adopts the queues other page views left behind (the adapter calls
    /// this under a cross-tab lock where the browser has Web Locks).
    /// Returns how many events were taken over.
    pub fn adopt_orphans(&mut self, previous_tab: Option<&str>, now: f64) -> usize {
        if !self.granted() || self.dispatch.released || !self.engine_ready {
            return 0;
        }
        self.take_orphans(previous_tab, now)
    }

    // --- delivery -------------------------------------------------------

    /// Whether this page view holds its queue and may write it.
    pub(super) fn sending(&self) -> bool {
        self.granted() && !self.dispatch.released
    }

    /// Whether batches may go now: delivery's code is there too (the web
    /// build loads it later; until then events wait in storage).
    fn delivering(&self) -> bool {
        self.sending() && self.engine_ready
    }

    /// The batch to send now, if one is due.
    pub fn poll(&mut self, now: f64) -> Option<Batch> {
        if !self.delivering() {
            return None;
        }
        self.poll_batch(now)
    }

    /// Requests unanswered too long (see
    /// [`REQUEST_TIMEOUT_MS`](crate::delivery::REQUEST_TIMEOUT_MS)) are
    /// settled as network errors, so their events are retried; their ids,
    /// for the caller to abort them. A late answer is then ignored.
    pub fn give_up_overdue(&mut self, now: f64) -> Vec<u64> {
        if !self.engine_ready {
            // Nothing was sent: no request can be overdue.
            return Vec::new();
        }
        self.give_up_requests(now)
    }

    /// When to call [`poll`](Self::poll) again, if nothing else happens.
    pub fn next_wake(&self) -> Option<f64> {
        if !self.sending() {
            return None;
        }
        let wake = if self.engine_ready {
            self.dispatch.delivery.next_wake(&self.dispatch.queue)
        } else {
            None
        };
        let rules_loaded = self.rules.is_some();
        let mut write = self.profile.write_time(rules_loaded);
        let unwritten = (self.profile.dirty && rules_loaded) || !self.dispatch.saved();
        if self.storage.failing() && unwritten {
            // Storage refused a write: the next try, once its pause is
            // over (never sooner, or a timer would fire again and again).
            let retry = self.storage.retry_at();
            write = Some(write.map_or(retry, |w| w.max(retry)));
        }
        match (wake, write) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Where batches go.
    pub fn batch_url(&self) -> &str {
        self.dispatch.delivery.url()
    }

    /// Compress batches from now on (the endpoint accepts gzip).
    pub fn set_gzip(&mut self, gzip: bool) {
        self.wants_gzip = gzip;
        self.dispatch.delivery.set_gzip(gzip && self.engine_ready);
    }

    /// Whether the browser's `fetch` honours `keepalive` (see
    /// [`Delivery::set_keepalive_fetch`](crate::delivery::Delivery::set_keepalive_fetch)).
    pub fn set_keepalive_fetch(&mut self, supported: bool) {
        self.dispatch.delivery.set_keepalive_fetch(supported);
    }

    /// Whether batches are compressed.
    pub fn gzip(&self) -> bool {
        self.dispatch.delivery.gzip()
    }

    /// Whether request `id` is still waited for: false once answered,
    /// given up, or forgotten (the page was hidden while it was under way
    /// without keepalive, or restored from the back/forward cache).
    pub fn awaits(&self, id: u64) -> bool {
        self.dispatch.delivery.awaits(id)
    }

    /// Applies the answer to batch `id` (nothing for a request given up
    /// or forgotten meanwhile: its events went, or will go, again).
    pub fn settle(&mut self, id: u64, outcome: Outcome, now: f64) {
        // Before the later module nothing is sent, so nothing is answered.
        if self.engine_ready {
            self.settle_answer(id, outcome, now);
        }
    }

    /// `flush()`: sends everything queued now. `Ok(id)`: a
    /// [`Notice::Flushed`] with that id will follow; `Err`: settled now.
    pub fn flush(&mut self) -> Result<u32, FlushDone> {
        self.dispatch.flush(self.granted())
    }

    /// The browser went online or offline.
    pub fn set_online(&mut self, online: bool) {
        self.dispatch.delivery.set_online(online);
        self.notices.debug(|| {
            if online {
                "online: sending resumes"
            } else {
                "offline: holding events"
            }
            .to_string()
        });
    }

    /// The page was hidden (tab switch, app switch; also the first step
    /// of closing on mobile): keepalive batches for what is queued. The
    /// events stay queued until answered.
    pub fn hidden(&mut self, now: f64) -> Vec<Batch> {
        self.unload_batches(now, false)
    }

    /// The page is going away (`pagehide`): keepalive batches (beacons)
    /// for what fits the budget. Send them, then call
    /// [`release`](Self::release).
    pub fn pagehide(&mut self, now: f64) -> Vec<Batch> {
        self.unload_batches(now, true)
    }

    /// What [`hidden`](Self::hidden) and [`pagehide`](Self::pagehide)
    /// send: everything stored first, then batches within the keepalive
    /// budget (`beacon`: sent with `sendBeacon`).
    pub(super) fn unload_batches(&mut self, now: f64, beacon: bool) -> Vec<Batch> {
        if !self.sending() {
            return Vec::new();
        }
        self.persist(now);
        if !self.engine_ready {
            // Stored: the next page view (or this one, once delivery's
            // code is there) sends them.
            return Vec::new();
        }
        self.batches_to_unload(now, beacon)
    }

    /// Ends this page view's claim on its queue: everything queued stays
    /// stored for the next page view (or another tab) to adopt and send.
    /// That includes what the page-hide beacons and the keepalive requests
    /// under way carry: nobody hears how they are answered, and an event
    /// leaves storage only on an answer that proves it stored. The next
    /// page view sends them again under the same message ids, and the
    /// collector keeps one copy.
    pub fn release(&mut self, now: f64) {
        if !self.sending() {
            return;
        }
        // Whatever is queued must be in storage now.
        self.storage.unpause();
        self.persist(now);
        let key = self.dispatch.persister.tab_key();
        self.storage.store.remove(&key);
        self.dispatch.released = true;
        let kept = self.dispatch.queue.len();
        self.notices
            .debug(|| format!("page hidden: {kept} event(s) kept for the next page"));
    }

    /// The page came back from the back/forward cache after
    /// [`release`](Self::release): a fresh page view that adopts what the
    /// old one left. Returns the old page view's id (to adopt with).
    pub fn resume(&mut self, now: f64) -> String {
        let old = self.dispatch.persister.tab().to_string();
        self.dispatch
            .delivery
            .reset_in_flight(&mut self.dispatch.queue);
        if !self.dispatch.released {
            // Hidden without consent: nothing went to storage, and what
            // is held in memory (pending consent) stays held here.
            return old;
        }
        let tab = self.rng.token(8);
        self.dispatch
            .renew(&tab, self.storage.readable(self.consent));
        self.profile.new_page_view();
        if self.granted() {
            self.dispatch
                .beat(&mut self.storage, &mut self.notices, now);
        }
        old
    }

    /// Queued events, for tests and `debug`.
    pub fn queued(&self) -> usize {
        self.dispatch.queue.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::DeliveryConfig;
    use crate::retry::Backoff;
    use crate::store::MemoryStore;

    const DAY: f64 = UNREACHABLE_AFTER_MS;

    fn dispatch() -> Dispatch {
        let delivery = Delivery::new(DeliveryConfig {
            url: "https://c.example/v1/batch".into(),
            write_key: None,
            backoff: Backoff {
                base_ms: 1000.0,
                cap_ms: 60_000.0,
            },
            max_events: 100,
            max_bytes: 60_000,
            interval_ms: 2000.0,
        });
        Dispatch::new("tab", delivery, 0.0)
    }

    fn head(n: usize) -> String {
        format!(r#"{{"type":"track","event":"E","properties":{{}},"messageId":"m{n}""#)
    }

    #[test]
    fn past_its_bound_the_queue_drops_its_oldest() {
        let mut d = dispatch();
        let mut store = MemoryStore::default();
        let dropped: usize = (0..5)
            .map(|n| d.push(head(n), "{}", 0.0, 3, &mut store))
            .sum();
        assert_eq!((dropped, d.queue.len()), (2, 3));
        assert_eq!(d.queue.message_id(d.queue.iter().next().unwrap()), "m2");
    }

    #[test]
    fn a_day_of_failed_answers_shrinks_the_stored_queue_until_one_succeeds() {
        let mut d = dispatch();
        let mut store = MemoryStore::default();
        let failed = Settled {
            failed: true,
            ..Settled::default()
        };
        d.note_collector_health(&mut store, &failed, 0.0);
        d.note_collector_health(&mut store, &failed, DAY / 2.0);
        assert_eq!(failure_run(&store), Some((0.0, DAY / 2.0)));
        d.note_collector_health(&mut store, &failed, DAY);
        assert_eq!(d.persister.budget(), UNREACHABLE_QUEUE_BUDGET);
        // A failure more than a day after the last starts a new run.
        d.note_collector_health(&mut store, &failed, 2.5 * DAY);
        assert_eq!(failure_run(&store), Some((2.5 * DAY, 2.5 * DAY)));
        assert_eq!(d.persister.budget(), STORED_QUEUE_BUDGET);
        d.note_collector_health(&mut store, &Settled::default(), 2.6 * DAY);
        assert_eq!(
            store.get(FAILING_KEY),
            None,
            "any other answer ends the run"
        );
    }
}
