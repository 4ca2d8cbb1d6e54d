//! The visitor's profile as the site's open tabs share it in storage:
//! which of this page view's events it holds, when this tab's copy is
//! written back over another's, and the events that wait for the rules.
//!
//! Each tab writes what it last read plus its own events. Tabs that record
//! in the same few milliseconds each write before hearing of the others:
//! the profile notes how many events each page view recorded lately, so a
//! tab that finds its own missing from another's copy records them into it
//! again and writes it back; a tab that hears an older copy than its own
//! keeps its own.

use crate::error::Error;
use crate::id::Rng;
use crate::json::Value;
use crate::profile::Profile;
use crate::rules::Rules;

/// Events kept for the profile while no rules are loaded yet.
const MAX_EARLY_EVENTS: usize = 500;
/// How long a page view records its own events again into another tab's
/// copy of the profile that lacks them (see [`Profile::stamp`]): far
/// longer than the few milliseconds another tab takes to hear of a
/// write. It keeps its latest [`MAX_UNCONFIRMED`] for that.
const UNCONFIRMED_MS: f64 = 30_000.0;
const MAX_UNCONFIRMED: usize = 100;
/// A tab that must write its copy of the profile back over another tab's
/// waits this long, plus up to as much again at random: meanwhile it
/// hears the other tabs' writes of the same moment and folds them in,
/// rather than each write setting off one in every other tab.
const REWRITE_WAIT_MS: f64 = 40.0;

/// An event this page view recorded into the profile: what recording it
/// again takes.
struct OwnRecord {
    /// This page view's count of records, this one included.
    n: u32,
    event: String,
    props: Option<Value>,
    at: f64,
}

/// This tab's copy of the profile and what it owes the other tabs.
pub struct SharedProfile {
    /// The profile under the rules in force.
    pub profile: Profile,
    session_timeout_ms: f64,
    /// A stored profile waiting for rules to read it with.
    pub stored: Option<String>,
    /// This tab's copy has changes storage has not seen.
    pub dirty: bool,
    /// Events this page view recorded into the profile so far.
    own_records: u32,
    /// The latest of them, to record again into another tab's copy.
    unconfirmed: Vec<OwnRecord>,
    /// When a copy changed only by another tab's is written (see
    /// [`REWRITE_WAIT_MS`]); minus infinity: at once.
    write_at: f64,
    /// Events recorded before the rules arrived.
    early: Vec<(String, Option<Value>, f64)>,
}

impl SharedProfile {
    /// An empty profile; `stored` waits for the rules.
    pub fn new(now: f64, session_timeout_ms: f64, stored: Option<String>) -> SharedProfile {
        SharedProfile {
            profile: Profile::new(now, session_timeout_ms),
            session_timeout_ms,
            stored,
            dirty: false,
            own_records: 0,
            unconfirmed: Vec::new(),
            write_at: f64::NEG_INFINITY,
            early: Vec::new(),
        }
    }

    /// Whether recording `event` needs its properties' values: the profile
    /// reads them, or (rules on their way) they wait for the rules.
    pub fn wants_values(&self, rules: Option<&Rules>, rules_coming: bool, event: &str) -> bool {
        match rules {
            None => rules_coming && self.early.len() < MAX_EARLY_EVENTS,
            Some(_) => self.profile.reads(event),
        }
    }

    /// Keeps an event recorded before the rules arrived.
    pub fn keep_early(&mut self, event: &str, props: Option<Value>, at: f64) {
        self.early.push((event.to_string(), props, at));
    }

    /// Forgets the events that waited for the rules.
    pub fn forget_early(&mut self) {
        self.early.clear();
    }

    /// Records one of this page view's events (page view `tab`) into the
    /// profile and, if any trait may have changed, notes it so that
    /// another tab's copy lacking it gets it too. Whether any trait may
    /// have changed.
    pub fn record_own(&mut self, tab: &str, event: &str, props: Option<Value>, at: f64) -> bool {
        if !self.profile.record(event, props.as_ref(), at) {
            return false;
        }
        self.own_records += 1;
        self.profile.stamp(tab, self.own_records, at);
        self.dirty = true;
        self.write_at = f64::NEG_INFINITY;
        if self.unconfirmed.len() >= MAX_UNCONFIRMED {
            self.unconfirmed.remove(0);
        }
        self.unconfirmed.push(OwnRecord {
            n: self.own_records,
            event: event.to_string(),
            props,
            at,
        });
        true
    }

    /// Writes this tab's copy over another tab's, after [`REWRITE_WAIT_MS`]
    /// (unless something writes it sooner).
    fn rewrite_soon(&mut self, now: f64, rng: &mut Rng) {
        if !self.dirty {
            self.dirty = true;
            self.write_at = now + REWRITE_WAIT_MS * (1.0 + rng.next_f64());
        }
    }

    /// Records into `p`, another tab's copy of the profile, this page
    /// view's recent events that it lacks: two tabs that record at once
    /// each write their copy over the other's, and each then finds its
    /// own events missing from what the other wrote. Whether any were.
    fn reapply_own(&self, tab: &str, p: &mut Profile, now: f64) -> bool {
        let seen = p.records_by(tab);
        let mut missing = self
            .unconfirmed
            .iter()
            .filter(|r| r.n > seen && now - r.at <= UNCONFIRMED_MS)
            .peekable();
        if missing.peek().is_none() {
            return false;
        }
        for r in missing {
            p.record(&r.event, r.props.as_ref(), r.at);
        }
        p.stamp(tab, self.own_records, now);
        true
    }

    /// Another tab wrote its copy, `text`. Whether this tab took it (its
    /// segments may change).
    pub fn heard(
        &mut self,
        text: &str,
        rules: Option<&Rules>,
        tab: &str,
        now: f64,
        rng: &mut Rng,
    ) -> bool {
        let Some(rules) = rules else {
            self.stored = Some(text.to_string());
            return false;
        };
        // Unwritten changes of this tab's own (storage failing) are not
        // given up for the other tab's copy.
        if self.dirty && self.write_at == f64::NEG_INFINITY {
            return false;
        }
        let Some(mut p) = Profile::from_json(text, rules, now, self.session_timeout_ms) else {
            return false;
        };
        if p.is_older_than(&self.profile) {
            // An older copy, written by a tab that had not yet heard of the
            // latest events: this tab's copy stays, and goes back over it
            // if it lacks this tab's own events. (Each tab restores its
            // own: were every tab to write on hearing an older copy, each
            // write would set off one in every other tab.)
            if p.records_by(tab) < self.own_records {
                self.rewrite_soon(now, rng);
            }
            return false;
        }
        // A newer copy, or one with events this tab's lacks (and maybe the
        // other way round): taken, with this tab's own events it lacks, if
        // any. The other tabs do the same with theirs.
        if self.reapply_own(tab, &mut p, now) {
            self.rewrite_soon(now, rng);
        } else {
            // Nothing of this tab's to write back (any more).
            self.dirty = false;
            self.write_at = f64::NEG_INFINITY;
        }
        self.profile = p;
        true
    }

    /// New rules in force: the stored profile read with them (or this
    /// copy's aggregates kept for them), then the events that waited.
    /// `Err`: the stored profile was damaged (a fresh one is used).
    pub fn apply_rules(&mut self, rules: &Rules, tab: &str, now: f64) -> Result<(), Error> {
        let mut result = Ok(());
        match self.stored.take() {
            Some(text) => match Profile::from_json(&text, rules, now, self.session_timeout_ms) {
                Some(mut p) => {
                    self.reapply_own(tab, &mut p, now);
                    self.profile = p;
                }
                None => {
                    result = Err(Error::StorageCorrupt {
                        what: "profile",
                        skipped: 1,
                    });
                    self.profile.apply_rules(rules, now);
                }
            },
            None => self.profile.apply_rules(rules, now),
        }
        for (event, props, at) in std::mem::take(&mut self.early) {
            self.record_own(tab, &event, props, at);
        }
        self.dirty = true;
        result
    }

    /// A fresh profile (the caller applies the rules in force), with none of this page view's events
    /// left to record again (`reset()` here or in another tab).
    pub fn forget(&mut self, now: f64) {
        self.profile = Profile::new(now, self.session_timeout_ms);
        self.unconfirmed.clear();
    }

    /// A new page view id (restored from the back/forward cache): records
    /// are counted per page view.
    pub fn new_page_view(&mut self) {
        self.own_records = 0;
        self.unconfirmed.clear();
    }

    /// Whether this copy is to be written at `now` (`None`: not yet due,
    /// or nothing to write).
    pub fn due(&self, rules_loaded: bool, now: f64) -> bool {
        self.dirty && rules_loaded && now >= self.write_at
    }

    /// When a write waits for other tabs' writes, its time.
    pub fn write_time(&self, rules_loaded: bool) -> Option<f64> {
        (self.dirty && rules_loaded && self.write_at > f64::NEG_INFINITY).then_some(self.write_at)
    }

    /// The copy to write now, if it changed: marked written.
    pub fn take_write(&mut self, rules_loaded: bool) -> Option<String> {
        if !(self.dirty && rules_loaded) {
            return None;
        }
        self.dirty = false;
        self.write_at = f64::NEG_INFINITY;
        Some(self.profile.to_json())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULES: &str = r#"{"version":"v1","traits":{"views":{"event":"View","aggregate":"count","window_days":7}},"segments":[]}"#;
    const T: f64 = 1_795_405_732_000.0;

    fn views(p: &SharedProfile) -> Option<Value> {
        p.profile
            .traits(T)
            .into_iter()
            .find(|(k, _)| k == "views")
            .map(|(_, v)| v)
    }

    #[test]
    fn events_before_the_rules_count_once_they_arrive() {
        let rules = Rules::parse(RULES).unwrap();
        let mut p = SharedProfile::new(T, 1_800_000.0, None);
        assert!(p.wants_values(None, true, "View"));
        assert!(!p.wants_values(None, false, "View"), "no rules coming");
        p.keep_early("View", None, T);
        p.apply_rules(&rules, "tab-a", T).unwrap();
        assert_eq!(views(&p), Some(Value::Number(1.0)));
        assert!(p.take_write(true).is_some() && p.take_write(true).is_none());
    }

    #[test]
    fn another_tab_s_copy_without_this_tab_s_events_gets_them_back() {
        let rules = Rules::parse(RULES).unwrap();
        let mut a = SharedProfile::new(T, 1_800_000.0, None);
        a.apply_rules(&rules, "tab-a", T).unwrap();
        let mut b = SharedProfile::new(T, 1_800_000.0, None);
        b.apply_rules(&rules, "tab-b", T).unwrap();
        // Both record at once, and each writes its copy.
        a.record_own("tab-a", "View", None, T + 1.0);
        b.record_own("tab-b", "View", None, T + 2.0);
        let from_b = b.take_write(true).unwrap();
        a.take_write(true);
        // A hears B's copy, which lacks A's view: taken, A's view recorded
        // into it again, and written back after a short wait.
        let mut rng = Rng::from_seed([3; 32]);
        assert!(a.heard(&from_b, Some(&rules), "tab-a", T + 3.0, &mut rng));
        assert_eq!(views(&a), Some(Value::Number(2.0)));
        let at = a.write_time(true).unwrap();
        assert!((T + 43.0..=T + 83.0).contains(&at), "{at}");
        assert!(!a.due(true, T + 3.0) && a.due(true, at));
        // Without rules yet, a copy waits for them.
        let mut c = SharedProfile::new(T, 1_800_000.0, None);
        assert!(!c.heard(&from_b, None, "tab-c", T, &mut rng));
        assert_eq!(c.stored.as_deref(), Some(from_b.as_str()));
    }
}
