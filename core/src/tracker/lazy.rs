//! The segment engine's entry points: every call from the tracker into
//! the rules, the profile's aggregates, conditions and banner decisions
//! goes through one of these, and only once the engine is there
//! ([`Tracker::engine_arrived`]).
//!
//! The web build ships what only these functions reach as a second wasm
//! module that a page fetches when a slot waits or at idle, with
//! delivery's sending side (see `dispatch/lazy.rs`). scripts/split-wasm.mjs
//! finds them by this module's name, so each stays a function of its own
//! (`#[inline(never)]`). Until it
//! arrives the tracker records as it does before the rules arrive: events
//! wait for the profile, and messages carry the segments the visitor had
//! last.

use super::rules_cache::{Answer, RulesCache};
use super::{Notice, Tracker, RULES_KEY};
use crate::json::Value;
use crate::rules::Rules;
use crate::segments::{attributes, decide, evaluate, Decision, SegmentChange};
use crate::store::Store;

impl<S: Store> Tracker<S> {
    /// The segments the rules give over the visitor's attributes now.
    #[inline(never)]
    pub(super) fn evaluate_segments(&mut self, now: f64) {
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

    /// The rules at start: cached ones for this page's `rulesUrl`, else
    /// the inline `rules`.
    #[inline(never)]
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
    #[inline(never)]
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

    fn apply_rules(&mut self, rules: Rules, now: f64) {
        let version = rules.version.clone();
        let tab = self.dispatch.persister.tab();
        let damaged = self.profile.apply_rules(&rules, tab, now).err();
        self.notices.maybe(damaged);
        self.rules = Some(rules);
        self.attrs = None;
        self.notices.debug(|| format!("rules {version} in force"));
        self.reevaluate(now);
    }

    /// The answer to a rules fetch (see [`Tracker::rules_fetched`]).
    #[inline(never)]
    pub(super) fn take_rules_answer(
        &mut self,
        status: u16,
        etag: Option<String>,
        text: &str,
        now: f64,
    ) {
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

    /// Feeds an event to the profile under the rules in force, and
    /// re-evaluates segments when a trait may have changed.
    #[inline(never)]
    pub(super) fn profile_event(
        &mut self,
        event: &str,
        properties: &str,
        parsed: Option<Value>,
        now: f64,
    ) {
        let props = if self.profile.profile.reads(event) {
            parsed.or_else(|| Value::parse(properties).ok())
        } else {
            None
        };
        let tab = self.dispatch.persister.tab();
        if self.profile.record_own(tab, event, props, now) {
            self.reevaluate(now);
        }
    }

    /// Another tab wrote the profile, `text`: whether this tab took it.
    #[inline(never)]
    pub(super) fn profile_heard(&mut self, text: &str, now: f64) -> bool {
        let tab = self.dispatch.persister.tab();
        let rules = self.rules.as_ref();
        self.profile.heard(text, rules, tab, now, &mut self.rng)
    }

    /// A fresh profile keeps the aggregates the rules in force define.
    #[inline(never)]
    pub(super) fn profile_under_rules(&mut self, now: f64) {
        if let Some(rules) = &self.rules {
            self.profile.profile.apply_rules(rules, now);
        }
    }

    /// Time passes: the profile's days roll and its windows slide.
    #[inline(never)]
    pub(super) fn profile_roll(&mut self, now: f64) {
        if self.profile.profile.roll(now) {
            self.profile.dirty = true;
        }
        self.reevaluate(now);
    }

    /// The profile as stored, if it changed since it was last written.
    #[inline(never)]
    pub(super) fn profile_write(&mut self) -> Option<String> {
        self.profile.take_write(self.rules.is_some())
    }

    /// The visitor's traits: from `identify()`, and computed.
    #[inline(never)]
    pub(super) fn all_traits_json(&self, now: f64) -> String {
        let mut all = self.identity.user_traits.clone();
        for (k, v) in self.profile.profile.traits(now) {
            all.insert(&k, v);
        }
        all.to_json()
    }

    /// The banner decision under the rules in force.
    #[inline(never)]
    pub(super) fn decide_under_rules(&self, rules: &Rules, offered: &[String]) -> Decision {
        decide(rules, &self.segments, offered, &self.identity.anonymous_id)
    }
}
