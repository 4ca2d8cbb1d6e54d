//! Rules in force and segments: the rules at start (cached or inline),
//! their revalidation's answers, and the segments the rules give over the
//! visitor's attributes (computed traits, `identify()` traits, the page).
//! What needs the segment engine's code goes through [`super::lazy`].

use super::{Notice, RulesRequest, Tracker, SEGMENTS_KEY};
use crate::json::{write_strings, Value};
use crate::message::PageInfo;
use crate::segments::{Decision, SegmentChange, Variation};
use crate::store::Store;

impl<S: Store> Tracker<S> {
    pub(super) fn reevaluate(&mut self, now: f64) {
        if self.rules.is_some() {
            self.evaluate_segments(now);
        }
    }

    pub(super) fn set_segments(&mut self, segments: Vec<String>) {
        self.segments = segments;
        self.context_json = self.page.context_json(&self.segments);
        // Written with the queue or the profile, at most once per task (see
        // `persist`): a hint for the next page view, not worth a write of
        // its own.
        self.segments_unsaved = true;
    }

    /// The segments as [`SEGMENTS_KEY`] keeps them, if they changed since
    /// last written.
    pub(super) fn save_segments(&mut self) {
        if !std::mem::take(&mut self.segments_unsaved) {
            return;
        }
        let mut list = String::new();
        write_strings(&mut list, &self.segments);
        self.write(SEGMENTS_KEY, &list);
    }

    /// The segments this visitor had when a page view last evaluated them:
    /// in force until the segment engine arrives and evaluates them anew,
    /// so the events recorded meanwhile carry them.
    pub(super) fn remembered_segments(&mut self) {
        let stored = self.storage.readable(self.consent).get(SEGMENTS_KEY);
        let Some(ids) = stored.and_then(|t| Value::parse(&t).ok()?.strings()) else {
            return;
        };
        if let Some(change) = SegmentChange::between(&self.segments, &ids) {
            self.segments = ids;
            self.context_json = self.page.context_json(&self.segments);
            self.notices.push(Notice::Segments(change));
        }
    }

    /// No segments any more (`reset()`, consent denied): said if there
    /// were some.
    pub(super) fn clear_segments(&mut self) {
        if let Some(change) = SegmentChange::between(&self.segments, &[]) {
            self.notices.push(Notice::Segments(change));
        }
        self.set_segments(Vec::new());
    }

    /// Re-evaluates segments as time passes (a day rolls over, a window
    /// slides) without any event.
    pub fn tick(&mut self, now: f64) {
        if self.rules.is_some() {
            self.profile_roll(now);
        }
    }

    /// The page changed (single-page navigation): new context.
    pub fn set_page(&mut self, page: PageInfo, now: f64) {
        self.page = page.as_sent(&self.config.strip_url_params);
        self.attrs = None;
        self.context_json = self.page.context_json(&self.segments);
        self.reevaluate(now);
    }

    /// The later module's code is there (the web build loads it after
    /// the page starts): the rules at start are put in force, over the
    /// events recorded meanwhile, a rules answer that came first is taken,
    /// and batches may go (the adapter then adopts queues left behind).
    pub fn engine_arrived(&mut self, now: f64) {
        if self.engine_ready {
            return;
        }
        self.engine_ready = true;
        self.load_rules(now);
        if let Some((status, etag, text)) = self.held_rules_answer.take() {
            self.take_rules_answer(status, etag, &text, now);
        }
        let gzip = self.wants_gzip;
        self.set_gzip(gzip);
    }

    /// Whether the segment engine's code is there.
    pub fn engine_ready(&self) -> bool {
        self.engine_ready
    }

    /// The rules fetch to make now, if the cached document is missing or
    /// older than `rulesTtlSeconds`. The adapter asks at start and on
    /// every heartbeat, so a long-lived single-page app revalidates too.
    /// No requests without consent (a pending site fetches them once
    /// granted).
    pub fn rules_request(&mut self, now: f64) -> Option<RulesRequest> {
        let allowed = self.granted();
        self.rules_cache.request(now, allowed)
    }

    /// The answer to a rules fetch: 304 keeps the document, 200 brings a
    /// new one (validated before use), anything else is reported; the
    /// last good rules stay in force on any failure. Before the segment
    /// engine arrives the answer waits for it.
    pub fn rules_fetched(&mut self, status: u16, etag: Option<String>, text: &str, now: f64) {
        if self.engine_ready {
            self.take_rules_answer(status, etag, text, now);
        } else {
            self.held_rules_answer = Some((status, etag, text.to_string()));
        }
    }

    pub(super) fn cache_rules(&mut self, text: &str) {
        if self.granted() {
            let entry = self.rules_cache.entry(text);
            self.write(super::RULES_KEY, &entry);
        }
    }

    /// The version label of the rules in force.
    pub fn rules_version(&self) -> Option<&str> {
        self.rules.as_ref().map(|r| r.version.as_str())
    }

    /// Current segment ids, highest priority first.
    pub fn segments(&self) -> &[String] {
        &self.segments
    }

    /// The user's attributes as conditions see them, without `context`:
    /// traits from `identify` and the computed traits.
    pub fn traits_json(&self, now: f64) -> String {
        if self.rules.is_some() {
            self.all_traits_json(now)
        } else {
            self.identity.user_traits.to_json()
        }
    }

    /// The banner decision for a slot offering templates for `offered`.
    pub fn decide(&self, offered: &[String]) -> Decision {
        match &self.rules {
            Some(rules) => self.decide_under_rules(rules, offered),
            None => Decision {
                segment: None,
                variation: Variation::Default,
            },
        }
    }
}
