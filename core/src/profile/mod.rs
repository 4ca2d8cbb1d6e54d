//! The local profile: compact per-day aggregates of the user's own events,
//! kept only for what the rules' traits need, and the traits computed from
//! them.
//!
//! Each trait reads one *feature* (an event name and optional property
//! path); traits on the same feature share its day buckets. Every trait
//! also keeps a running total over its window, so recording an event costs
//! the event's own values, not the window's days. When the day changes,
//! windows are rebuilt from the buckets (once a day) and days past the
//! longest window expire.
//!
//! An order counts once: a shopper who reloads the thank-you page (or
//! comes back to it), where the shop calls `orderCompleted()`, sends the
//! same `order_id` again, which must not make a Frequent Buyer of them.

mod stored;

use crate::json::Value;
use crate::message::commerce::ORDER_COMPLETED;
use crate::rules::{Aggregate, Rules, TraitKind};
use crate::time::{day_number, DAY_MS};

/// Storage key of the persisted profile.
pub const PROFILE_KEY: &str = "sgm_profile";
/// Format of the persisted profile; another format is reset, not misread.
pub const PROFILE_FORMAT: u32 = 1;
/// Order ids remembered to count each order once (the latest, within the
/// longest window).
const MAX_ORDERS: usize = 100;
/// The (day, value) pairs a feature keeps counts of, about: each day keeps
/// its first `MAX_COUNTED_VALUES / longest window` values (at least
/// [`MIN_VALUES_PER_DAY`]). A property with many values (product ids,
/// search queries) would otherwise grow the stored profile, and the time
/// every event takes, without bound: a shopper who viewed 220 products
/// and searched 220 times a day had an 800 KB profile after 90 days.
/// Further values of the day count in `values_seen` only: `distinct` is
/// then a lower bound, and `top_value` looks at the values kept
/// (`top_share` is of every value seen).
pub const MAX_COUNTED_VALUES: usize = 2048;
/// See [`MAX_COUNTED_VALUES`].
pub const MIN_VALUES_PER_DAY: usize = 16;
/// How long a page view's record count stays in the profile after its
/// latest record (see [`Profile::stamp`]). Longer than a tab keeps its own
/// records to re-apply (`tracker::UNCONFIRMED_MS`), so a count is never
/// forgotten while the records it vouches for might be needed.
pub const WRITER_MEMORY_MS: f64 = 120_000.0;

/// Aggregates of one day, or of a window of days.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Stats {
    /// Matching events.
    pub events: u32,
    /// Property values seen (scalars, any type).
    pub values_seen: u32,
    /// Numeric property values seen.
    pub n: u32,
    /// Sum of numeric values.
    pub sum: f64,
    /// Smallest numeric value (when `n > 0`).
    pub min: f64,
    /// Largest numeric value (when `n > 0`).
    pub max: f64,
    /// How often each value was seen (only for distinct/top traits).
    pub counts: Vec<(Value, u32)>,
    /// Time and value of the latest value (only for `last` traits).
    pub last: Option<(f64, Value)>,
}

impl Stats {
    fn add_number(&mut self, x: f64) {
        if self.n == 0 {
            self.min = x;
            self.max = x;
        } else {
            self.min = self.min.min(x);
            self.max = self.max.max(x);
        }
        self.n += 1;
        self.sum += x;
    }

    fn add_value(&mut self, v: &Value, count: u32) {
        match self.counts.iter_mut().find(|(k, _)| k == v) {
            Some(slot) => slot.1 += count,
            None => self.counts.push((v.clone(), count)),
        }
    }

    fn set_last(&mut self, at: f64, v: &Value) {
        if self.last.as_ref().is_none_or(|(t, _)| at >= *t) {
            self.last = Some((at, v.clone()));
        }
    }

    /// Folds `other` into this (window totals are sums of days).
    fn merge(&mut self, other: &Stats) {
        self.events += other.events;
        self.values_seen += other.values_seen;
        if other.n > 0 {
            if self.n == 0 {
                self.min = other.min;
                self.max = other.max;
            } else {
                self.min = self.min.min(other.min);
                self.max = self.max.max(other.max);
            }
            self.n += other.n;
            self.sum += other.sum;
        }
        for (v, c) in &other.counts {
            self.add_value(v, *c);
        }
        if let Some((at, v)) = &other.last {
            self.set_last(*at, v);
        }
    }

    /// The value of `aggregate` over these stats; `None` when there is
    /// nothing to average, compare or name.
    pub fn value(&self, aggregate: Aggregate, has_property: bool) -> Option<Value> {
        let number = |x: f64| Some(Value::Number(x));
        match aggregate {
            Aggregate::Count if has_property => number(f64::from(self.values_seen)),
            Aggregate::Count => number(f64::from(self.events)),
            Aggregate::Sum => number(self.sum),
            Aggregate::Avg => (self.n > 0).then(|| Value::Number(self.sum / f64::from(self.n))),
            Aggregate::Min => (self.n > 0).then_some(Value::Number(self.min)),
            Aggregate::Max => (self.n > 0).then_some(Value::Number(self.max)),
            Aggregate::Distinct => {
                number(self.counts.iter().filter(|(_, c)| *c > 0).count() as f64)
            }
            Aggregate::TopShare => {
                // Values past MAX_COUNTED_VALUES count in values_seen only.
                let total = self
                    .counts
                    .iter()
                    .map(|(_, c)| c)
                    .sum::<u32>()
                    .max(self.values_seen);
                let top = self.top()?;
                (total > 0).then(|| Value::Number(f64::from(top.1) / f64::from(total)))
            }
            Aggregate::TopValue => self.top().map(|(v, _)| v.clone()),
            Aggregate::Last => self.last.as_ref().map(|(_, v)| v.clone()),
        }
    }

    /// The most frequent value; ties go to the smallest JSON text, so the
    /// answer does not depend on the order values were counted in.
    fn top(&self) -> Option<&(Value, u32)> {
        self.counts.iter().filter(|(_, c)| *c > 0).max_by(|a, b| {
            a.1.cmp(&b.1)
                .then_with(|| b.0.to_json().cmp(&a.0.to_json()))
        })
    }
}

/// What a feature must keep per day, from the traits that read it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Needs {
    numbers: bool,
    counts: bool,
    last: bool,
}

#[derive(Clone, Debug, PartialEq)]
struct Feature {
    event: String,
    property: Option<Vec<String>>,
    needs: Needs,
    /// (day number, stats), oldest first.
    days: Vec<(i64, Stats)>,
}

#[derive(Clone, Debug, PartialEq)]
enum Computed {
    Event {
        feature: usize,
        aggregate: Aggregate,
        window_days: u32,
        /// Running total over the window.
        window: Stats,
    },
    DaysSinceFirstSeen,
    Sessions {
        window_days: Option<u32>,
    },
}

/// The user's profile under a set of rules.
#[derive(Clone, Debug, PartialEq)]
pub struct Profile {
    first_seen_ms: f64,
    last_activity_ms: f64,
    /// Sessions started per day, oldest first.
    sessions: Vec<(i64, u32)>,
    /// Sessions ever (including expired days).
    total_sessions: u32,
    session_timeout_ms: f64,
    features: Vec<Feature>,
    traits: Vec<(String, Computed)>,
    /// The day windows were last built for.
    today: i64,
    longest_window: u32,
    /// `(day, FNV-1a of order_id)` of the orders recorded, oldest first:
    /// a hash keeps the stored profile small (two ids of 100 collide with
    /// a chance of about one in a million).
    orders: Vec<(i64, u32)>,
    /// `(page view id, records, when last)` of the page views that
    /// recorded lately: how a tab tells whether another tab's copy of the
    /// profile holds its own latest events (see [`Profile::stamp`]).
    writers: Vec<(String, u32, f64)>,
}

/// An `Order Completed`'s [`order_id`](crate::message::order_id), hashed.
fn order_key(props: &Value) -> Option<u32> {
    crate::message::order_id(props).map(|id| crate::hash::fnv1a32(&id))
}

/// Scalar values at `path` in `props`, fanning out through arrays
/// (`products.price` gives every product's price).
pub fn values_at<'a>(props: &'a Value, path: &[String], out: &mut Vec<&'a Value>) {
    match props {
        Value::Array(items) => {
            for item in items {
                values_at(item, path, out);
            }
        }
        _ => match path.split_first() {
            None => {
                if !matches!(props, Value::Null | Value::Object(_)) {
                    out.push(props);
                }
            }
            Some((head, rest)) => {
                if let Some(next) = props.get(head) {
                    values_at(next, rest, out);
                }
            }
        },
    }
}

impl Profile {
    /// A new profile: first seen `now`.
    pub fn new(now: f64, session_timeout_ms: f64) -> Profile {
        Profile {
            first_seen_ms: now,
            last_activity_ms: f64::NEG_INFINITY,
            sessions: Vec::new(),
            total_sessions: 0,
            session_timeout_ms,
            features: Vec::new(),
            traits: Vec::new(),
            today: day_number(now),
            longest_window: 1,
            orders: Vec::new(),
            writers: Vec::new(),
        }
    }

    /// Notes that page view `tab` has recorded `records` events into this
    /// profile so far, the latest at `now`. The site's tabs share one
    /// stored profile, and two tabs recording within a few milliseconds
    /// each write their own event over the other's copy: the tab that
    /// finds its count missing (or lower) in another tab's copy records
    /// its latest events into that copy again. Counts of page views idle
    /// for [`WRITER_MEMORY_MS`] are forgotten.
    pub fn stamp(&mut self, tab: &str, records: u32, now: f64) {
        let mut found = false;
        self.writers.retain_mut(|(t, n, at)| {
            if t == tab {
                (*n, *at, found) = (records, now, true);
            }
            t == tab || now - *at <= WRITER_MEMORY_MS
        });
        if !found {
            self.writers.push((tab.to_string(), records, now));
        }
    }

    /// Whether this profile holds every recent record `other` holds (by
    /// the page views' counts).
    fn covers(&self, other: &Profile) -> bool {
        other
            .writers
            .iter()
            .all(|(tab, n, _)| self.records_by(tab) >= *n)
    }

    /// Whether this copy is older than `other`: `other` holds every recent
    /// record this one holds, and more. A copy without record counts
    /// (written by a segmint from before them, as in a tab left open over
    /// a deploy, or with no recent records) is never older: it may hold
    /// events no count vouches for.
    pub fn is_older_than(&self, other: &Profile) -> bool {
        !self.writers.is_empty() && other.covers(self) && !self.covers(other)
    }

    /// How many events page view `tab` had recorded into this profile, as
    /// far as it knows (0 if none lately).
    pub fn records_by(&self, tab: &str) -> u32 {
        self.writers
            .iter()
            .find(|(t, _, _)| t == tab)
            .map_or(0, |(_, n, _)| *n)
    }

    /// When the user was first seen (ms).
    pub fn first_seen_ms(&self) -> f64 {
        self.first_seen_ms
    }

    /// Adopts `rules`: features still needed keep their days, others go,
    /// new ones start empty; windows are rebuilt.
    pub fn apply_rules(&mut self, rules: &Rules, now: f64) {
        let mut features: Vec<Feature> = Vec::new();
        let mut traits = Vec::with_capacity(rules.traits.len());
        for t in &rules.traits {
            let computed = match &t.kind {
                TraitKind::Event {
                    event,
                    aggregate,
                    property,
                    window_days,
                } => {
                    let index = match features
                        .iter()
                        .position(|f| f.event == *event && f.property == *property)
                    {
                        Some(i) => i,
                        None => {
                            let old = self
                                .features
                                .iter()
                                .position(|f| f.event == *event && f.property == *property)
                                .map(|i| self.features.swap_remove(i));
                            features.push(old.unwrap_or_else(|| Feature {
                                event: event.clone(),
                                property: property.clone(),
                                needs: Needs::default(),
                                days: Vec::new(),
                            }));
                            features.len() - 1
                        }
                    };
                    if let Some(f) = features.get_mut(index) {
                        f.needs.numbers |= aggregate.is_numeric_fold();
                        f.needs.counts |= aggregate.counts_values();
                        f.needs.last |= *aggregate == Aggregate::Last;
                    }
                    Computed::Event {
                        feature: index,
                        aggregate: *aggregate,
                        window_days: *window_days,
                        window: Stats::default(),
                    }
                }
                TraitKind::DaysSinceFirstSeen => Computed::DaysSinceFirstSeen,
                TraitKind::Sessions { window_days } => Computed::Sessions {
                    window_days: *window_days,
                },
            };
            traits.push((t.name.clone(), computed));
        }
        self.features = features;
        self.traits = traits;
        self.longest_window = rules.longest_window();
        self.today = day_number(now);
        self.expire();
        self.rebuild_windows();
    }

    /// Forgets days past the longest window, and days after tomorrow: a
    /// device clock that ran ahead and was put right left those, and their
    /// events would count again when their date came. (Tomorrow stays: a
    /// clock put back a little across midnight, whose events count a day
    /// late rather than never.)
    fn expire(&mut self) {
        let keep_from = self.today - i64::from(self.longest_window) + 1;
        let kept = |d: &i64| (keep_from..=self.today + 1).contains(d);
        for f in &mut self.features {
            f.days.retain(|(d, _)| kept(d));
        }
        self.sessions.retain(|(d, _)| kept(d));
        self.orders.retain(|(d, _)| kept(d));
    }

    /// Rebuilds every window total from the day buckets.
    fn rebuild_windows(&mut self) {
        let today = self.today;
        for (_, t) in &mut self.traits {
            if let Computed::Event {
                feature,
                window_days,
                window,
                ..
            } = t
            {
                *window = Stats::default();
                let from = today - i64::from(*window_days) + 1;
                if let Some(f) = self.features.get(*feature) {
                    for (_, s) in f.days.iter().filter(|(d, _)| *d >= from && *d <= today) {
                        window.merge(s);
                    }
                }
            }
        }
    }

    /// Moves the profile to `now`'s day: expires old days and rebuilds the
    /// windows when the day changed. Returns whether it did.
    pub fn roll(&mut self, now: f64) -> bool {
        let day = day_number(now);
        if day == self.today {
            return false;
        }
        self.today = day;
        self.expire();
        self.rebuild_windows();
        true
    }

    /// Records an event (any event: it counts toward sessions). `props` is
    /// parsed only when some trait reads this event. An `Order Completed`
    /// whose `order_id` was recorded before counts only as activity.
    /// Returns whether any trait may have changed.
    pub fn record(&mut self, event: &str, props: Option<&Value>, now: f64) -> bool {
        let mut changed = self.roll(now);
        let day = day_number(now);
        // Times well after `now` come from a clock that ran ahead and was
        // put right (another tab's a few ms later are no such thing): the
        // shopper was first seen now at the latest, and the gap since
        // their last activity is unknown, so this is a new session.
        if self.first_seen_ms - now > self.session_timeout_ms {
            self.first_seen_ms = now;
        }
        if self.last_activity_ms - now > self.session_timeout_ms {
            self.last_activity_ms = f64::NEG_INFINITY;
        }
        if now - self.last_activity_ms > self.session_timeout_ms {
            self.total_sessions += 1;
            bump(&mut self.sessions, day, 1);
            changed |= self
                .traits
                .iter()
                .any(|(_, t)| matches!(t, Computed::Sessions { .. }));
        }
        self.last_activity_ms = self.last_activity_ms.max(now);
        if event == ORDER_COMPLETED {
            if let Some(id) = props.and_then(order_key) {
                if self.orders.iter().any(|(_, seen)| *seen == id) {
                    return changed;
                }
                if self.orders.len() >= MAX_ORDERS {
                    self.orders.remove(0);
                }
                self.orders.push((day, id));
            }
        }
        let null = Value::Null;
        let values_per_day =
            (MAX_COUNTED_VALUES / self.longest_window.max(1) as usize).max(MIN_VALUES_PER_DAY);
        for index in 0..self.features.len() {
            let Some(f) = self.features.get_mut(index) else {
                continue;
            };
            if f.event != event {
                continue;
            }
            let mut add = Stats {
                events: 1,
                ..Stats::default()
            };
            if let Some(path) = &f.property {
                let mut found = Vec::new();
                values_at(props.unwrap_or(&null), path, &mut found);
                for v in found {
                    add.values_seen += 1;
                    if let (true, Value::Number(x)) = (f.needs.numbers, v) {
                        add.add_number(*x);
                    }
                    if f.needs.counts {
                        add.add_value(v, 1);
                    }
                    if f.needs.last {
                        add.set_last(now, v);
                    }
                }
            }
            if !add.counts.is_empty() {
                let today = f
                    .days
                    .iter()
                    .find(|(d, _)| *d == day)
                    .map(|(_, s)| &s.counts);
                let mut room = values_per_day.saturating_sub(today.map_or(0, Vec::len));
                add.counts.retain(|(v, _)| {
                    let known = today.is_some_and(|c| c.iter().any(|(k, _)| k == v));
                    let kept = known || room > 0;
                    if !known && kept {
                        room -= 1;
                    }
                    kept
                });
            }
            match f.days.iter_mut().find(|(d, _)| *d == day) {
                Some((_, s)) => s.merge(&add),
                None => {
                    let at = f.days.partition_point(|(d, _)| *d < day);
                    f.days.insert(at, (day, add.clone()));
                }
            }
            if day < self.today {
                // A clock that went back: rebuild rather than guess.
                self.rebuild_windows();
            } else {
                for (_, t) in &mut self.traits {
                    if let Computed::Event {
                        feature, window, ..
                    } = t
                    {
                        if *feature == index {
                            window.merge(&add);
                        }
                    }
                }
            }
            changed = true;
        }
        changed
    }

    /// Whether any trait reads events named `event` (so its properties
    /// need parsing).
    pub fn reads(&self, event: &str) -> bool {
        self.features.iter().any(|f| f.event == event)
    }

    /// The computed traits at `now`, in rules order; traits without a value
    /// (an average of nothing) are left out.
    pub fn traits(&self, now: f64) -> Vec<(String, Value)> {
        self.trait_values(now)
            .into_iter()
            .filter_map(|(name, value)| Some((name.to_string(), value?)))
            .collect()
    }

    /// Every computed trait at `now`, in rules order, `None` where it has
    /// no value: for updating an attribute object in place.
    pub fn trait_values(&self, now: f64) -> Vec<(&str, Option<Value>)> {
        self.traits
            .iter()
            .map(|(name, t)| {
                let value = match t {
                    Computed::Event {
                        feature,
                        aggregate,
                        window,
                        ..
                    } => {
                        let has_property = self
                            .features
                            .get(*feature)
                            .is_some_and(|f| f.property.is_some());
                        window.value(*aggregate, has_property)
                    }
                    Computed::DaysSinceFirstSeen => Some(Value::Number(
                        ((now - self.first_seen_ms) / DAY_MS).floor().max(0.0),
                    )),
                    Computed::Sessions { window_days } => {
                        let n = match window_days {
                            None => self.total_sessions,
                            Some(w) => {
                                let from = day_number(now) - i64::from(*w) + 1;
                                self.sessions
                                    .iter()
                                    .filter(|(d, _)| *d >= from)
                                    .map(|(_, c)| c)
                                    .sum()
                            }
                        };
                        Some(Value::Number(f64::from(n)))
                    }
                };
                (name.as_str(), value)
            })
            .collect()
    }

    /// The window totals recomputed from scratch, for checking that the
    /// running totals agree (tests, fuzzing).
    pub fn recomputed(&self) -> Profile {
        let mut copy = self.clone();
        copy.rebuild_windows();
        copy
    }
}

fn bump(days: &mut Vec<(i64, u32)>, day: i64, by: u32) {
    match days.iter_mut().find(|(d, _)| *d == day) {
        Some((_, c)) => *c += by,
        None => {
            let at = days.partition_point(|(d, _)| *d < day);
            days.insert(at, (day, by));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULES: &str = r#"{"version":"t","traits":{
        "purchases_30d":{"event":"Order Completed","aggregate":"count","window_days":30},
        "avg_price_30d":{"event":"Order Completed","aggregate":"avg","property":"products.price","window_days":30},
        "spent_7d":{"event":"Order Completed","aggregate":"sum","property":"products.price","window_days":7},
        "max_price_90d":{"event":"Order Completed","aggregate":"max","property":"products.price","window_days":90},
        "top_category_share":{"event":"Order Completed","aggregate":"top_share","property":"products.category","window_days":90},
        "top_category":{"event":"Order Completed","aggregate":"top_value","property":"products.category","window_days":90},
        "categories":{"event":"Order Completed","aggregate":"distinct","property":"products.category","window_days":90},
        "last_search":{"event":"Products Searched","aggregate":"last","property":"query","window_days":30},
        "days_since_first_seen":{"builtin":"days_since_first_seen"},
        "sessions_7d":{"builtin":"sessions","window_days":7}
      },"segments":[]}"#;

    /// An order with an id of its own (an order counts once).
    fn order(products: &[(f64, &str)]) -> Value {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let id = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        order_with_id(&format!("o{id}"), products)
    }

    fn order_with_id(id: &str, products: &[(f64, &str)]) -> Value {
        let items: Vec<String> = products
            .iter()
            .map(|(p, c)| format!("{{\"product_id\":\"x\",\"price\":{p},\"category\":\"{c}\"}}"))
            .collect();
        Value::parse(&format!(
            "{{\"order_id\":\"{id}\",\"products\":[{}]}}",
            items.join(",")
        ))
        .unwrap()
    }

    fn trait_of(p: &Profile, name: &str, now: f64) -> Option<Value> {
        p.traits(now)
            .into_iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
    }

    fn profile(now: f64) -> Profile {
        let mut p = Profile::new(now, 30.0 * 60_000.0);
        p.apply_rules(&Rules::parse(RULES).unwrap(), now);
        p
    }

    #[test]
    fn computes_each_aggregate() {
        let t0 = 100.0 * DAY_MS;
        let mut p = profile(t0);
        p.record(
            "Order Completed",
            Some(&order(&[(10.0, "shoes"), (30.0, "hats")])),
            t0,
        );
        p.record(
            "Order Completed",
            Some(&order(&[(5.0, "shoes")])),
            t0 + 1000.0,
        );
        p.record(
            "Products Searched",
            Some(&Value::parse(r#"{"query":"red"}"#).unwrap()),
            t0 + 2000.0,
        );
        p.record(
            "Products Searched",
            Some(&Value::parse(r#"{"query":"blue"}"#).unwrap()),
            t0 + 3000.0,
        );
        let now = t0 + 4000.0;
        assert_eq!(trait_of(&p, "purchases_30d", now), Some(Value::Number(2.0)));
        assert_eq!(
            trait_of(&p, "avg_price_30d", now),
            Some(Value::Number(15.0))
        );
        assert_eq!(trait_of(&p, "spent_7d", now), Some(Value::Number(45.0)));
        assert_eq!(
            trait_of(&p, "max_price_90d", now),
            Some(Value::Number(30.0))
        );
        assert_eq!(
            trait_of(&p, "top_category_share", now),
            Some(Value::Number(2.0 / 3.0))
        );
        assert_eq!(
            trait_of(&p, "top_category", now),
            Some(Value::String("shoes".into()))
        );
        assert_eq!(trait_of(&p, "categories", now), Some(Value::Number(2.0)));
        assert_eq!(
            trait_of(&p, "last_search", now),
            Some(Value::String("blue".into()))
        );
        assert_eq!(
            trait_of(&p, "days_since_first_seen", t0 + 8.5 * DAY_MS),
            Some(Value::Number(8.0))
        );
        assert_eq!(trait_of(&p, "sessions_7d", now), Some(Value::Number(1.0)));
    }

    #[test]
    fn an_order_counts_once_and_the_ids_survive_storage() {
        let t0 = 1000.0 * DAY_MS;
        let mut p = profile(t0);
        let first = order_with_id("o-1001", &[(34.0, "shoes")]);
        assert!(p.record("Order Completed", Some(&first), t0));
        // The thank-you page reloaded: the same order again, and again the
        // next day (a number id is the same order as its text).
        assert!(!p.record("Order Completed", Some(&first), t0 + 1000.0));
        let rules = Rules::parse(RULES).unwrap();
        let mut p = Profile::from_json(&p.to_json(), &rules, t0 + DAY_MS, 30.0 * 60_000.0).unwrap();
        let day = t0 + DAY_MS;
        let purchases = |p: &Profile| trait_of(p, "purchases_30d", day);
        let again = Value::parse(r#"{"order_id":"o-1001","products":[{"price":34}]}"#).unwrap();
        p.record("Order Completed", Some(&again), day);
        assert_eq!(purchases(&p), Some(Value::Number(1.0)));
        let numbered = Value::parse(r#"{"order_id":1002,"products":[{"price":10}]}"#).unwrap();
        assert!(p.record("Order Completed", Some(&numbered), day));
        let as_text = Value::parse(r#"{"order_id":"1002","products":[{"price":10}]}"#).unwrap();
        assert!(!p.record("Order Completed", Some(&as_text), day));
        assert_eq!(purchases(&p), Some(Value::Number(2.0)));
        assert_eq!(
            trait_of(&p, "avg_price_30d", day),
            Some(Value::Number(22.0))
        );
        // Another order, and orders without an id, count as usual.
        assert!(p.record("Order Completed", Some(&order(&[(5.0, "a")])), day));
        let anonymous = Value::parse(r#"{"products":[{"price":1}]}"#).unwrap();
        assert!(p.record("Order Completed", Some(&anonymous), day));
        assert!(p.record("Order Completed", Some(&anonymous), day));
        assert_eq!(purchases(&p), Some(Value::Number(5.0)));
        // The ids expire with the longest window (90 days here), and the
        // latest 100 are kept.
        for i in 0..150 {
            let o = order_with_id(&format!("bulk-{i}"), &[(1.0, "a")]);
            p.record("Order Completed", Some(&o), t0 + 2.0 * DAY_MS);
        }
        assert_eq!(p.orders.len(), MAX_ORDERS);
        p.roll(t0 + 200.0 * DAY_MS);
        assert!(p.orders.is_empty());
    }

    #[test]
    fn a_property_with_many_values_keeps_its_first_counted_values() {
        // A shopper who views 110 products and searches 110 times a day,
        // for 29 days, among 5,000 products and 3,000 queries.
        let rules = Rules::parse(
            r#"{"version":"t","traits":{
              "viewed_30d":{"event":"Product Viewed","aggregate":"distinct","property":"product_id","window_days":30},
              "views_30d":{"event":"Product Viewed","aggregate":"count","property":"product_id","window_days":30},
              "top_query":{"event":"Products Searched","aggregate":"top_value","property":"query","window_days":30},
              "top_query_share":{"event":"Products Searched","aggregate":"top_share","property":"query","window_days":30}},"segments":[]}"#,
        )
        .unwrap();
        let start = 5.0 * DAY_MS;
        let mut p = Profile::new(start, 30.0 * 60_000.0);
        p.apply_rules(&rules, start);
        let mut now = start;
        for i in 0..3_200u64 {
            now += 29.0 * DAY_MS / 3_200.0;
            let id = (i * 2_654_435_761) % 5000;
            let viewed = Value::parse(&format!(r#"{{"product_id":"sku-{id:05}"}}"#)).unwrap();
            p.record("Product Viewed", Some(&viewed), now);
            // Every other search is the same query.
            let query = if i % 2 == 0 {
                "red shoes".to_string()
            } else {
                format!("q{}", id % 3000)
            };
            let searched = Value::parse(&format!(r#"{{"query":"{query}"}}"#)).unwrap();
            p.record("Products Searched", Some(&searched), now);
        }
        // Without the cap: 72 KB, every one of the 3,200 views' values.
        let text = p.to_json();
        assert!(text.len() < 60 * 1024, "{} bytes", text.len());
        // The first 2048 / 30 of each day: a lower bound.
        let distinct = trait_of(&p, "viewed_30d", now)
            .and_then(|v| v.as_f64())
            .unwrap();
        assert!(
            distinct > 1000.0 && distinct <= MAX_COUNTED_VALUES as f64,
            "{distinct}"
        );
        // Every view counts, kept or not; the share is of every search.
        assert_eq!(trait_of(&p, "views_30d", now), Some(Value::Number(3_200.0)));
        assert_eq!(
            trait_of(&p, "top_query", now),
            Some(Value::String("red shoes".into()))
        );
        assert_eq!(
            trait_of(&p, "top_query_share", now),
            Some(Value::Number(0.5))
        );
        // The running totals agree with the days.
        assert_eq!(p.recomputed().traits(now), p.traits(now));
    }

    #[test]
    fn a_clock_that_ran_ahead_leaves_nothing_behind_once_put_right() {
        // A device whose clock was a year ahead for a visit (set by hand,
        // or a dead clock battery), then put right.
        let now = 20_000.0 * DAY_MS;
        let ahead = now + 365.0 * DAY_MS;
        let rules = Rules::parse(RULES).unwrap();
        let mut p = profile(ahead);
        for _ in 0..4 {
            p.record("Order Completed", Some(&order(&[(10.0, "shoes")])), ahead);
        }
        // The profile as stored, read back under the right clock.
        let mut p = Profile::from_json(&p.to_json(), &rules, now, 30.0 * 60_000.0).unwrap();
        p.record("Product Clicked", None, now);
        p.record("Product Clicked", None, now + 2.0 * 3_600_000.0);
        // Two visits now, not one: the last activity a year ahead does not
        // hide the session gap.
        assert_eq!(
            trait_of(&p, "sessions_7d", now + 3.0 * 3_600_000.0),
            Some(Value::Number(2.0))
        );
        // First seen today, not a year from now: no longer new after 8 days.
        assert_eq!(
            trait_of(&p, "days_since_first_seen", now + 8.5 * DAY_MS),
            Some(Value::Number(8.0))
        );
        // The orders dated a year ahead are not counted now, and do not
        // come back when their date comes: one order then counts as one.
        assert_eq!(trait_of(&p, "purchases_30d", now), Some(Value::Number(0.0)));
        p.record("Order Completed", Some(&order(&[(10.0, "hats")])), ahead);
        assert_eq!(
            trait_of(&p, "purchases_30d", ahead),
            Some(Value::Number(1.0))
        );
        // A clock a few seconds behind another tab's changes nothing.
        let mut q = profile(now);
        q.record("Product Clicked", None, now + 5_000.0);
        q.record("Product Clicked", None, now);
        assert_eq!(trait_of(&q, "sessions_7d", now), Some(Value::Number(1.0)));
        assert_eq!(q.first_seen_ms(), now);
        // A clock put back a little across midnight: the order recorded
        // "tomorrow" counts tomorrow.
        let mut r = profile(now);
        r.record(
            "Order Completed",
            Some(&order(&[(10.0, "hats")])),
            now + DAY_MS,
        );
        r.record("Product Clicked", None, now);
        r.roll(now + DAY_MS);
        assert_eq!(
            trait_of(&r, "purchases_30d", now + DAY_MS),
            Some(Value::Number(1.0))
        );
    }

    #[test]
    fn empty_windows_leave_averages_out() {
        let p = profile(0.0);
        assert_eq!(trait_of(&p, "avg_price_30d", 0.0), None);
        assert_eq!(trait_of(&p, "purchases_30d", 0.0), Some(Value::Number(0.0)));
        assert!(!p.reads("Product Clicked"));
        assert!(p.reads("Order Completed"));
    }

    #[test]
    fn windows_slide_and_days_expire() {
        let t0 = 1000.0 * DAY_MS;
        let mut p = profile(t0);
        p.record("Order Completed", Some(&order(&[(10.0, "a")])), t0);
        p.record(
            "Order Completed",
            Some(&order(&[(20.0, "b")])),
            t0 + 10.0 * DAY_MS,
        );
        let at = |d: f64| t0 + d * DAY_MS;
        assert_eq!(
            trait_of(&p, "purchases_30d", at(10.0)),
            Some(Value::Number(2.0))
        );
        p.roll(at(31.0));
        assert_eq!(
            trait_of(&p, "purchases_30d", at(31.0)),
            Some(Value::Number(1.0))
        );
        assert_eq!(trait_of(&p, "spent_7d", at(31.0)), Some(Value::Number(0.0)));
        p.roll(at(95.0));
        assert_eq!(
            trait_of(&p, "max_price_90d", at(95.0)),
            Some(Value::Number(20.0))
        );
        p.roll(at(101.0));
        assert_eq!(
            trait_of(&p, "max_price_90d", at(101.0)),
            None,
            "every day expired"
        );
        assert!(p.features.iter().all(|f| f.days.is_empty()));
    }

    #[test]
    fn sessions_split_on_inactivity() {
        let mut p = profile(0.0);
        for t in [
            0.0,
            60_000.0,
            40.0 * 60_000.0,
            41.0 * 60_000.0,
            200.0 * 60_000.0,
        ] {
            p.record("Page Viewed", None, t);
        }
        assert_eq!(
            trait_of(&p, "sessions_7d", 200.0 * 60_000.0),
            Some(Value::Number(3.0))
        );
    }

    #[test]
    fn persists_and_restores() {
        let rules = Rules::parse(RULES).unwrap();
        let mut p = profile(5.0 * DAY_MS);
        p.record(
            "Order Completed",
            Some(&order(&[(10.0, "a"), (12.5, "b")])),
            5.0 * DAY_MS,
        );
        p.record(
            "Products Searched",
            Some(&Value::parse(r#"{"query":"q"}"#).unwrap()),
            5.0 * DAY_MS + 1.0,
        );
        let text = p.to_json();
        let back = Profile::from_json(&text, &rules, 5.0 * DAY_MS + 2.0, 30.0 * 60_000.0).unwrap();
        assert_eq!(back.traits(6.0 * DAY_MS), p.traits(6.0 * DAY_MS));
        assert!(Profile::from_json("{\"v\":0}", &rules, 0.0, 1.0).is_none());
        assert!(Profile::from_json("garbage", &rules, 0.0, 1.0).is_none());
    }

    #[test]
    fn record_counts_survive_storage_and_idle_page_views_are_forgotten() {
        let rules = Rules::parse(RULES).unwrap();
        let now = 5.0 * DAY_MS;
        let mut p = profile(now);
        p.stamp("tabA", 1, now);
        p.stamp("tabB", 4, now + 10.0);
        p.stamp("tabA", 2, now + 20.0);
        let back = Profile::from_json(&p.to_json(), &rules, now + 30.0, 1.0).unwrap();
        assert_eq!((back.records_by("tabA"), back.records_by("tabB")), (2, 4));
        assert_eq!(back.records_by("tabC"), 0);
        // B stays idle: gone once A records after B's memory ran out.
        let mut later = back.clone();
        later.stamp("tabA", 3, now + 10.0 + WRITER_MEMORY_MS + 1.0);
        assert_eq!((later.records_by("tabA"), later.records_by("tabB")), (3, 0));
        // A damaged entry is skipped; the profile still reads.
        let damaged = p.to_json().replace("[\"tabB\",4,", "[\"tabB\",\"x\",");
        let back = Profile::from_json(&damaged, &rules, now + 30.0, 1.0).unwrap();
        assert_eq!((back.records_by("tabA"), back.records_by("tabB")), (2, 0));
        // Written before record counts existed: none.
        let old = profile(now).to_json();
        assert!(!old.contains("writers"));
        let old = Profile::from_json(&old, &rules, now, 1.0).unwrap();
        assert_eq!(old.records_by("tabA"), 0);

        // Older and newer copies, by the counts.
        let mut a1 = profile(now);
        a1.stamp("tabA", 1, now);
        let mut a2b1 = a1.clone();
        a2b1.stamp("tabA", 2, now);
        a2b1.stamp("tabB", 1, now);
        let mut b2 = profile(now);
        b2.stamp("tabB", 2, now);
        assert!(a1.is_older_than(&a2b1));
        assert!(!a2b1.is_older_than(&a1));
        assert!(!a1.is_older_than(&a1.clone()), "the same");
        assert!(
            !a2b1.is_older_than(&b2) && !b2.is_older_than(&a2b1),
            "each holds what the other lacks"
        );
        // A copy without counts is never older, whatever it holds.
        assert!(!old.is_older_than(&a2b1));
    }

    #[test]
    fn new_rules_keep_shared_features_and_drop_others() {
        let mut p = profile(0.0);
        p.record("Order Completed", Some(&order(&[(10.0, "a")])), 0.0);
        let fewer = Rules::parse(r#"{"version":"2","traits":{"n":{"event":"Order Completed","aggregate":"count","window_days":30}},"segments":[]}"#).unwrap();
        p.apply_rules(&fewer, 1.0);
        assert_eq!(p.traits(1.0), vec![("n".to_string(), Value::Number(1.0))]);
        assert_eq!(p.features.len(), 1);
    }

    #[test]
    fn paths_fan_out_through_arrays() {
        let v = Value::parse(
            r#"{"products":[{"price":1},{"price":2,"x":[{"price":9}]},{"nope":3}],"price":7}"#,
        )
        .unwrap();
        let mut out = Vec::new();
        values_at(&v, &["products".into(), "price".into()], &mut out);
        assert_eq!(out, vec![&Value::Number(1.0), &Value::Number(2.0)]);
    }
}
