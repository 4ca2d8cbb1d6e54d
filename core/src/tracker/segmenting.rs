//! Rules in force and segments: the rules at start (cached or inline),
//! their revalidation's answers, and the segments the rules give over the
//! visitor's attributes (computed traits, `identify()` traits, the page).

use super::rules_cache::{Answer, RulesCache};
use super::{Notice, RulesRequest, Tracker, RULES_KEY};
use crate::message::PageInfo;
use crate::rules::Rules;
use crate::segments::{attributes, decide, evaluate, Decision, SegmentChange, Variation};
use crate::store::Store;

impl<S: Store> Tracker<S> {
    pub(super) fn reevaluate(&mut self, now: f64) {
        let Some(rules) = &self.rules else { return };
        let user_traits = &self.identity.user_traits;
        let attrs = self
            .attrs
            .get_or_insert_with(|| attributes(user_traits, Vec::new(), &self.page));
        for (name, value) in self.profile.profile.trait_values(now) {
            // As in `attributes`: computed traits win over the user's, and
            // `context` over both.
            match value {
                _ if name == "context" => {}
                Some(v) => attrs.insert(name, v),
                None => match user_traits.get(name) {
                    Some(u) => attrs.insert(name, u.clone()),
                    None => attrs.remove(name),
                },
            }
        }
        let now_in = evaluate(rules, attrs, self.host.as_ref());
        if let Some(change) = SegmentChange::between(&self.segments, &now_in) {
            self.notices
                .debug(|| format!("segments {}", change.to_json()));
            self.set_segments(now_in);
            self.notices.push(Notice::Segments(change));
        }
    }

    pub(super) fn set_segments(&mut self, segments: Vec<String>) {
        self.segments = segments;
        self.context_json = self.page.context_json(&self.segments);
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
        if self.profile.profile.roll(now) {
            self.profile.dirty = true;
        }
        self.reevaluate(now);
    }

    /// The page changed (single-page navigation): new context.
    pub fn set_page(&mut self, page: PageInfo, now: f64) {
        self.page = page.as_sent(&self.config.strip_url_params);
        self.attrs = None;
        self.context_json = self.page.context_json(&self.segments);
        self.reevaluate(now);
    }

    /// The rules at start: cached ones for this page's `rulesUrl`, else
    /// the inline `rules`.
    pub(super) fn load_rules(&mut self, now: f64) {
        let cached = self.storage.readable(self.consent).get(RULES_KEY);
        if cached.is_some_and(|c| self.use_cached_rules(&c, false, now)) {
            return;
        }
        if let Some(inline) = self.config.rules.clone() {
            match Rules::from_value(&inline) {
                Ok(rules) => self.apply_rules(rules, now),
                Err(e) => self.notices.error(e),
            }
        }
    }

    /// Puts the rules of a cache entry (as stored under [`RULES_KEY`]) in
    /// force if they come from this page's rules URL; with `only_new`,
    /// only if their version differs from the rules in force (the fetch
    /// time and ETag are taken either way). Whether they were put in force.
    pub(super) fn use_cached_rules(&mut self, entry: &str, only_new: bool, now: f64) -> bool {
        match self.rules_cache.read(entry) {
            Ok(Some(rules)) => {
                let same = self
                    .rules
                    .as_ref()
                    .is_some_and(|r| r.version == rules.version);
                if only_new && same {
                    return false;
                }
                self.apply_rules(rules, now);
                true
            }
            Ok(None) => false,
            Err(e) => {
                self.notices.error(e);
                false
            }
        }
    }

    pub(super) fn apply_rules(&mut self, rules: Rules, now: f64) {
        let version = rules.version.clone();
        let tab = self.dispatch.persister.tab();
        let damaged = self.profile.apply_rules(&rules, tab, now).err();
        self.notices.maybe(damaged);
        self.rules = Some(rules);
        self.attrs = None;
        self.notices.debug(|| format!("rules {version} in force"));
        self.reevaluate(now);
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
    /// last good rules stay in force on any failure.
    pub fn rules_fetched(&mut self, status: u16, etag: Option<String>, text: &str, now: f64) {
        match self.rules_cache.answered(status, etag, text, now) {
            Answer::Unchanged => {
                let stored = self.storage.store.get(RULES_KEY);
                if let Some(text) = stored.and_then(|e| RulesCache::text_of(&e)) {
                    self.cache_rules(&text);
                }
                self.notices.debug(|| "rules unchanged (304)".into());
            }
            Answer::New(rules) => {
                self.cache_rules(text);
                self.apply_rules(rules, now);
            }
            Answer::Failed(e) => self.notices.error(e),
        }
    }

    pub(super) fn cache_rules(&mut self, text: &str) {
        if self.granted() {
            let entry = self.rules_cache.entry(text);
            self.write(RULES_KEY, &entry);
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
        let mut all = self.identity.user_traits.clone();
        for (k, v) in self.profile.profile.traits(now) {
            all.insert(&k, v);
        }
        all.to_json()
    }

    /// The banner decision for a slot offering templates for `offered`.
    pub fn decide(&self, offered: &[String]) -> Decision {
        match &self.rules {
            Some(rules) => decide(rules, &self.segments, offered, &self.identity.anonymous_id),
            None => Decision {
                segment: None,
                variation: Variation::Default,
            },
        }
    }
}
