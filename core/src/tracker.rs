//! The SDK's state for one page view: identity, consent, the queue and its
//! delivery, the profile, rules and segments.
//!
//! The browser adapter owns the I/O: it gives the tracker a [`Store`], the
//! time, the page and random seeds, sends the [`Batch`]es that
//! [`Tracker::poll`] hands out and reports their answers with
//! [`Tracker::settle`]. Everything the page should hear about (errors,
//! segment changes, finished flushes, debug lines) collects as
//! [`Notice`]s, drained after each call, so no callback into page code ever
//! runs while the tracker is borrowed.

use std::borrow::Cow;

use crate::condition::Host;
use crate::config::{Config, Consent};
use crate::delivery::{Batch, Delivery, DeliveryConfig, FlushDone, Outcome, Settled};
use crate::error::Error;
use crate::id::{is_uuid, uuid_v4_from_bytes, Rng};
use crate::json::{write_string, Value};
use crate::message::{
    check_event_name, check_object, check_order_completed, check_product_clicked, commerce,
    message_head, parse_object, wire_len, Ids, Kind, PageInfo, MAX_EVENT_BYTES,
};
use crate::profile::{Profile, PROFILE_KEY};
use crate::queue::{
    dead_heartbeats, format_ms, Persister, Queue, QUEUE_PREFIX, STORED_QUEUE_BUDGET, TAB_PREFIX,
    UNREACHABLE_QUEUE_BUDGET,
};
use crate::retry::Backoff;
use crate::rules::Rules;
use crate::segments::{attributes, decide, evaluate, Decision, SegmentChange, Variation};
use crate::store::{MemoryStore, Store};
use crate::url::{join, strip_params};

/// localStorage mirror of the anonymous-id cookie.
pub const AID_KEY: &str = "sgm_aid";
/// The user id after `identify`.
pub const UID_KEY: &str = "sgm_uid";
/// The user's traits from `identify`.
pub const TRAITS_KEY: &str = "sgm_traits";
/// How long a rules request counts as in flight without an answer.
const RULES_IN_FLIGHT_MS: f64 = 60_000.0;

/// The cached rules document with its ETag.
pub const RULES_KEY: &str = "sgm_rules";
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
/// The storage keys whose changes by another tab this tab takes
/// ([`Tracker::storage_changed`]): what the site's tabs share.
pub const SHARED_KEYS: [&str; 5] = [PROFILE_KEY, AID_KEY, UID_KEY, TRAITS_KEY, RULES_KEY];
/// Every key segmint writes starts with this.
pub const KEY_PREFIX: &str = "sgm_";
/// The name `page()` calls have in the profile (traits can count them).
pub const PAGE_EVENT: &str = "Page Viewed";
/// The name `identify()` calls have in the profile.
pub const IDENTIFY_EVENT: &str = "Identify";
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
const PROFILE_REWRITE_WAIT_MS: f64 = 40.0;

/// An event this page view recorded into the profile: what recording it
/// again takes.
struct OwnRecord {
    /// This page view's count of records, this one included.
    n: u32,
    event: String,
    props: Option<Value>,
    at: f64,
}

/// Something the page should hear about.
#[derive(Clone, Debug, PartialEq)]
pub enum Notice {
    /// Through `on("error")`.
    Error(Error),
    /// Through `on("segments")`.
    Segments(SegmentChange),
    /// A `flush()` promise settles.
    Flushed(FlushDone),
    /// A line for the console when debugging.
    Debug(String),
}

/// What the adapter knows when the page view starts.
#[derive(Clone, Debug)]
pub struct Start {
    /// Now (ms since epoch).
    pub now: f64,
    /// 32 bytes from the CSPRNG, for message ids and tab ids.
    pub seed: [u8; 32],
    /// 16 more, for a new anonymous id if one is needed.
    pub fresh_id: [u8; 16],
    /// The anonymous-id cookie's value, if set.
    pub cookie_id: Option<String>,
    /// The consent choice remembered in its cookie, if any.
    pub remembered_consent: Option<Consent>,
    /// `navigator.globalPrivacyControl`
    pub gpc: bool,
    /// The page view this tab showed before (from sessionStorage): gone.
    pub previous_tab: Option<String>,
    /// The page.
    pub page: PageInfo,
    /// `navigator.onLine`
    pub online: bool,
}

/// A rules revalidation to make.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RulesRequest {
    /// Where.
    pub url: String,
    /// For `If-None-Match`.
    pub etag: Option<String>,
}

/// The state of one page view.
pub struct Tracker<S: Store> {
    config: Config,
    store: S,
    /// Stands in for `store` while consent is not granted.
    memory: MemoryStore,
    consent: Consent,
    rng: Rng,
    anonymous_id: String,
    user_id: Option<String>,
    user_traits: Value,
    page: PageInfo,
    /// The attribute object conditions see, kept between events: built
    /// when the page, the user's traits or the rules change (`None` until
    /// then), its computed traits updated in place per event.
    attrs: Option<Value>,
    context_json: String,
    queue: Queue,
    persister: Persister,
    delivery: Delivery,
    heartbeat: f64,
    /// The page is gone (pagehide): nothing more is sent from here.
    released: bool,
    host: Box<dyn Host>,
    rules: Option<Rules>,
    rules_etag: Option<String>,
    rules_fetched: f64,
    /// No rules request before this time: one is in flight, or the last
    /// failed (a broken endpoint is tried once per TTL, not per heartbeat).
    rules_wait_until: f64,
    profile: Profile,
    /// A stored profile waiting for rules to read it with.
    stored_profile: Option<String>,
    profile_dirty: bool,
    /// Events this page view recorded into the profile so far.
    own_records: u32,
    /// The latest of them, kept for [`Tracker::storage_changed`].
    unconfirmed: Vec<OwnRecord>,
    /// When a profile changed only by another tab's copy is written (see
    /// [`PROFILE_REWRITE_WAIT_MS`]); minus infinity: at once.
    profile_write_at: f64,
    early_events: Vec<(String, Option<Value>, f64)>,
    segments: Vec<String>,
    storage_failing: bool,
    /// When a refused write was last retried: a failing storage is tried
    /// again every few seconds, not on every event.
    last_failed_write: f64,
    notices: Vec<Notice>,
}

/// The longest page URL, query or referrer segmint sends, in bytes...
const MAX_URL_BYTES: usize = 2048;
/// ...and page title. A page that keeps its state in a 20 KB query would
/// otherwise pass the 32 KB event limit with every event it records.
const MAX_TITLE_BYTES: usize = 512;

/// `page` as segmint sends and evaluates it: without the site's private
/// URL parameters, and its texts cut to their caps.
fn page_as_sent(mut page: PageInfo, names: &[String]) -> PageInfo {
    if !names.is_empty() {
        for url in [&mut page.url, &mut page.search, &mut page.referrer] {
            *url = strip_params(url, names);
        }
    }
    for (text, cap) in [
        (&mut page.url, MAX_URL_BYTES),
        (&mut page.search, MAX_URL_BYTES),
        (&mut page.referrer, MAX_URL_BYTES),
        (&mut page.title, MAX_TITLE_BYTES),
    ] {
        let mut at = cap.min(text.len());
        while !text.is_char_boundary(at) {
            at -= 1;
        }
        text.truncate(at);
    }
    page
}

/// A storage that refused a write is retried after this long.
const STORAGE_RETRY_MS: f64 = 5000.0;

/// Stored user traits (`sgm_traits`), if they are a JSON object.
fn traits_object(text: Option<&str>) -> Option<Value> {
    text.and_then(|t| Value::parse(t).ok())
        .filter(|v| v.as_object().is_some())
}

/// The consent a page view starts with: the shopper's remembered choice,
/// else the site's explicit option, else denied under Global Privacy
/// Control (unless `respectGpc` is off), else the site's default.
pub fn consent_at_start(config: &Config, remembered: Option<Consent>, gpc: bool) -> Consent {
    if let Some(choice) = remembered {
        choice
    } else if config.consent_explicit {
        config.consent
    } else if gpc && config.respect_gpc {
        Consent::Denied
    } else {
        config.consent
    }
}

impl<S: Store> Tracker<S> {
    /// Starts a page view.
    pub fn new(config: Config, store: S, host: Box<dyn Host>, start: Start) -> Tracker<S> {
        let consent = consent_at_start(&config, start.remembered_consent, start.gpc);
        let mut rng = Rng::from_seed(start.seed);
        let tab = rng.token(8);
        let delivery = Delivery::new(DeliveryConfig {
            url: join(&config.endpoint, "v1/batch"),
            write_key: config.write_key.clone(),
            backoff: Backoff {
                base_ms: config.retry_base_ms,
                cap_ms: config.retry_cap_ms,
            },
            max_events: config.max_events,
            max_bytes: config.max_bytes,
            interval_ms: config.flush_interval_ms,
        });
        let mut t = Tracker {
            profile: Profile::new(start.now, config.session_timeout_ms),
            config,
            store,
            memory: MemoryStore::default(),
            consent,
            rng,
            anonymous_id: String::new(),
            user_id: None,
            user_traits: Value::Object(Vec::new()),
            attrs: None,
            page: PageInfo::default(),
            context_json: String::new(),
            queue: Queue::default(),
            persister: Persister::new(&tab),
            delivery,
            heartbeat: start.now,
            released: false,
            host,
            rules: None,
            rules_etag: None,
            rules_fetched: f64::NEG_INFINITY,
            rules_wait_until: f64::NEG_INFINITY,
            stored_profile: None,
            profile_dirty: false,
            own_records: 0,
            unconfirmed: Vec::new(),
            profile_write_at: f64::NEG_INFINITY,
            early_events: Vec::new(),
            segments: Vec::new(),
            storage_failing: false,
            last_failed_write: f64::NEG_INFINITY,
            notices: Vec::new(),
        };
        if consent == Consent::Denied {
            // Denied from the start (a remembered choice, Global Privacy
            // Control): nothing an earlier visit stored stays, only the
            // choice (a cookie the adapter keeps).
            t.wipe_storage();
        }
        t.delivery.set_online(start.online);
        t.page = page_as_sent(start.page, &t.config.strip_url_params);
        t.context_json = t.page.context_json(&t.segments);
        // Denied: the id an earlier visit kept is not taken up again.
        let cookie_id = start.cookie_id.filter(|_| consent != Consent::Denied);
        t.restore_identity(cookie_id, start.fresh_id);
        if t.consent == Consent::Granted {
            t.beat(start.now);
            t.budget_stored_queue();
        }
        t.load_rules_and_profile(start.now);
        t
    }

    fn granted(&self) -> bool {
        self.consent == Consent::Granted
    }

    /// The store in force: real storage only with consent.
    fn store_mut(&mut self) -> &mut dyn Store {
        if self.granted() {
            &mut self.store
        } else {
            &mut self.memory
        }
    }

    fn store_ref(&self) -> &dyn Store {
        if self.consent == Consent::Denied {
            &self.memory
        } else {
            // Reading is allowed while pending: nothing is written.
            &self.store
        }
    }

    fn debug(&mut self, line: impl FnOnce() -> String) {
        if self.config.debug {
            self.notices.push(Notice::Debug(line()));
        }
    }

    fn restore_identity(&mut self, cookie: Option<String>, fresh: [u8; 16]) {
        let stored = self.store_ref().get(AID_KEY);
        let id = [cookie, stored.clone()]
            .into_iter()
            .flatten()
            .find(|id| is_uuid(id))
            .unwrap_or_else(|| uuid_v4_from_bytes(fresh));
        self.anonymous_id = id;
        if self.granted() && stored.as_deref() != Some(&self.anonymous_id) {
            let id = self.anonymous_id.clone();
            self.write(AID_KEY, &id);
        }
        self.user_id = self.store_ref().get(UID_KEY).filter(|u| !u.is_empty());
        self.user_traits = traits_object(self.store_ref().get(TRAITS_KEY).as_deref())
            .unwrap_or(Value::Object(Vec::new()));
        self.attrs = None;
    }

    fn write(&mut self, key: &str, value: &str) {
        let result = self.store_mut().set(key, value);
        self.note_storage(result);
    }

    fn note_storage(&mut self, result: Result<(), String>) {
        match result {
            Ok(()) => self.storage_failing = false,
            Err(reason) => {
                if !self.storage_failing {
                    self.notices
                        .push(Notice::Error(Error::StorageUnavailable { reason }));
                }
                self.storage_failing = true;
            }
        }
    }

    // --- identity -------------------------------------------------------

    /// The anonymous id.
    pub fn anonymous_id(&self) -> &str {
        &self.anonymous_id
    }

    /// The user id, after `identify`.
    pub fn user_id(&self) -> Option<&str> {
        self.user_id.as_deref()
    }

    /// The consent in force.
    pub fn consent(&self) -> Consent {
        self.consent
    }

    /// The anonymous id to write to the cookie, when cookies are allowed.
    pub fn cookie_id(&self) -> Option<&str> {
        self.granted().then_some(self.anonymous_id.as_str())
    }

    /// This page view's id, for sessionStorage (see [`Start::previous_tab`]).
    pub fn tab_id(&self) -> &str {
        self.persister.tab()
    }

    // --- recording ------------------------------------------------------

    /// `track(event, properties)`; `properties` is JSON object text.
    pub fn track(&mut self, event: &str, properties: &str, now: f64) -> Result<(), Error> {
        self.track_parsed(event, properties, None, "track(properties)", now)
    }

    /// `track()` with the properties already parsed, when the caller had
    /// to (commerce checks): each text is read once on the hot path,
    /// parsed only where the profile needs its values.
    fn track_parsed(
        &mut self,
        event: &str,
        properties: &str,
        parsed: Option<Value>,
        argument: &str,
        now: f64,
    ) -> Result<(), Error> {
        check_event_name(event)?;
        let parsed = match parsed {
            Some(v) => Some(v),
            None if self.wants_values(event) => Some(parse_object(properties, argument)?),
            None => {
                check_object(properties, argument)?;
                None
            }
        };
        self.record(
            Kind::Track { event, properties },
            event,
            properties,
            parsed,
            now,
        )
    }

    /// A commerce event whose properties `check` validates. Amounts
    /// given as text ("9.99") are sent as the numbers they are, so totals
    /// and averages count them: the check rewrites them, and the
    /// properties then go out as rewritten.
    fn track_checked(
        &mut self,
        event: &str,
        properties: &str,
        argument: &str,
        check: fn(&mut Value) -> Result<bool, Error>,
        now: f64,
    ) -> Result<(), Error> {
        let mut v = parse_object(properties, argument)?;
        let text = if check(&mut v)? {
            Cow::Owned(v.to_json())
        } else {
            Cow::Borrowed(properties)
        };
        self.track_parsed(event, &text, Some(v), argument, now)
    }

    /// `productClicked(properties)`
    pub fn product_clicked(&mut self, properties: &str, now: f64) -> Result<(), Error> {
        self.track_checked(
            commerce::PRODUCT_CLICKED,
            properties,
            "productClicked(properties)",
            check_product_clicked,
            now,
        )
    }

    /// `productsSearched(query, properties)`
    pub fn products_searched(
        &mut self,
        query: &str,
        properties: &str,
        now: f64,
    ) -> Result<(), Error> {
        if query.trim().is_empty() {
            return Err(Error::MissingField {
                event: commerce::PRODUCTS_SEARCHED,
                field: "query".into(),
                reason: "is required (a non-empty string)",
            });
        }
        let argument = "productsSearched(properties)";
        let mut v = parse_object(properties, argument)?;
        v.insert("query", Value::String(query.to_string()));
        let text = v.to_json();
        self.track_parsed(commerce::PRODUCTS_SEARCHED, &text, Some(v), argument, now)
    }

    /// `orderCompleted(order)`
    pub fn order_completed(&mut self, order: &str, now: f64) -> Result<(), Error> {
        self.track_checked(
            commerce::ORDER_COMPLETED,
            order,
            "orderCompleted(order)",
            check_order_completed,
            now,
        )
    }

    /// `page(name, properties)`: the page's url, path, referrer, search
    /// and title join the properties (the caller's win).
    pub fn page(&mut self, name: Option<&str>, properties: &str, now: f64) -> Result<(), Error> {
        check_object(properties, "page(properties)")?;
        let mut props = Value::Object(Vec::new());
        for (k, v) in [
            ("path", &self.page.path),
            ("referrer", &self.page.referrer),
            ("search", &self.page.search),
            ("title", &self.page.title),
            ("url", &self.page.url),
        ] {
            props.insert(k, Value::String(v.clone()));
        }
        if let Ok(Value::Object(given)) = Value::parse(properties) {
            for (k, v) in given {
                props.insert(&k, v);
            }
        }
        let text = props.to_json();
        let name = name.filter(|n| !n.trim().is_empty());
        self.record(
            Kind::Page {
                name,
                properties: &text,
            },
            PAGE_EVENT,
            &text,
            Some(props),
            now,
        )
    }

    /// `identify(userId, traits)`: traits add to those already known.
    pub fn identify(&mut self, user_id: Option<&str>, traits: &str, now: f64) -> Result<(), Error> {
        check_object(traits, "identify(traits)")?;
        if let Some(id) = user_id {
            if id.trim().is_empty() || id.len() > 256 {
                return Err(Error::InvalidArgument {
                    argument: "identify(userId)".into(),
                    reason: "expected a non-empty string of at most 256 characters".into(),
                });
            }
        }
        if self.consent == Consent::Denied {
            return Ok(());
        }
        if let Some(id) = user_id {
            if self.user_id.as_deref().is_some_and(|current| current != id) {
                // Another user signed in without reset() (a shared
                // computer): the traits are the new user's alone, as in
                // Segment's analytics.js, not merged into the last user's
                // (whose email would otherwise go out with theirs).
                self.user_traits = Value::Object(Vec::new());
                self.attrs = None;
            }
            self.user_id = Some(id.to_string());
            self.write(UID_KEY, id);
        }
        if let Ok(Value::Object(given)) = Value::parse(traits) {
            for (k, v) in given {
                self.user_traits.insert(&k, v);
                self.attrs = None;
            }
        }
        let merged = self.user_traits.to_json();
        self.write(TRAITS_KEY, &merged);
        // New traits may change segments: the message carries the result.
        self.reevaluate(now);
        self.record(
            Kind::Identify { traits: &merged },
            IDENTIFY_EVENT,
            &merged,
            None,
            now,
        )
    }

    /// Queues a message. `parsed` is `properties` parsed, when the caller
    /// has it (else it is parsed here if the profile needs it).
    fn record(
        &mut self,
        kind: Kind<'_>,
        event: &str,
        properties: &str,
        parsed: Option<Value>,
        now: f64,
    ) -> Result<(), Error> {
        if self.consent == Consent::Denied {
            self.debug(|| format!("consent denied: dropped {event}"));
            return Ok(());
        }
        let message_id = self.rng.uuid_v4();
        let ids = Ids {
            anonymous_id: &self.anonymous_id,
            user_id: self.user_id.as_deref(),
        };
        let head = message_head(kind, ids, &message_id, now);
        let bytes = wire_len(&head, &self.context_json);
        if bytes > MAX_EVENT_BYTES {
            return Err(Error::EventTooLarge { bytes });
        }
        self.observe(event, properties, parsed, now);
        let ctx = self.queue.intern(&self.context_json);
        self.queue.push(head, ctx, now);
        self.debug(|| format!("event {event} {properties}"));
        let excess = self
            .queue
            .len()
            .saturating_sub(self.config.max_queue_events);
        if excess > 0 {
            let dropped: Vec<u64> = self
                .queue
                .drop_oldest(excess)
                .iter()
                .map(|e| e.seq)
                .collect();
            let store: &mut dyn Store = if self.consent == Consent::Granted {
                &mut self.store
            } else {
                &mut self.memory
            };
            self.persister.forget(&dropped, &self.queue, store);
            self.notices.push(Notice::Error(Error::QueueOverflow {
                dropped: dropped.len(),
            }));
        }
        Ok(())
    }

    /// Whether recording `event` needs its properties' values: the profile
    /// reads them, or they wait for the rules in the early-events buffer.
    fn wants_values(&self, event: &str) -> bool {
        match self.rules {
            // Rules are on their way only with a `rulesUrl`.
            None => self.config.rules_url.is_some() && self.early_events.len() < MAX_EARLY_EVENTS,
            Some(_) => self.profile.reads(event),
        }
    }

    /// Feeds an event to the profile and re-evaluates segments when a
    /// trait may have changed.
    fn observe(&mut self, event: &str, properties: &str, parsed: Option<Value>, now: f64) {
        let parse = || parsed.or_else(|| Value::parse(properties).ok());
        if self.rules.is_none() {
            if self.wants_values(event) {
                self.early_events.push((event.to_string(), parse(), now));
            }
            return;
        }
        let props = if self.profile.reads(event) {
            parse()
        } else {
            None
        };
        if self.record_own(event, props, now) {
            self.reevaluate(now);
        }
    }

    /// Records one of this page view's events into the profile and, if
    /// any trait may have changed, notes it so that another tab's copy
    /// lacking it gets it too. Whether any trait may have changed.
    fn record_own(&mut self, event: &str, props: Option<Value>, at: f64) -> bool {
        if !self.profile.record(event, props.as_ref(), at) {
            return false;
        }
        self.own_records += 1;
        self.profile
            .stamp(self.persister.tab(), self.own_records, at);
        self.profile_dirty = true;
        self.profile_write_at = f64::NEG_INFINITY;
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

    /// Writes this tab's copy of the profile over another tab's, after
    /// [`PROFILE_REWRITE_WAIT_MS`] (unless something writes it sooner).
    fn rewrite_profile_soon(&mut self, now: f64) {
        if !self.profile_dirty {
            self.profile_dirty = true;
            self.profile_write_at = now + PROFILE_REWRITE_WAIT_MS * (1.0 + self.rng.next_f64());
        }
    }

    /// Records into `p`, another tab's copy of the profile, this page
    /// view's recent events that it lacks: two tabs that record at once
    /// each write their copy over the other's, and each then finds its
    /// own events missing from what the other wrote. Whether any were.
    fn reapply_own(&self, p: &mut Profile, now: f64) -> bool {
        let tab = self.persister.tab();
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

    fn reevaluate(&mut self, now: f64) {
        let Some(rules) = &self.rules else { return };
        let attrs = self
            .attrs
            .get_or_insert_with(|| attributes(&self.user_traits, Vec::new(), &self.page));
        for (name, value) in self.profile.trait_values(now) {
            // As in `attributes`: computed traits win over the user's, and
            // `context` over both.
            match value {
                _ if name == "context" => {}
                Some(v) => attrs.insert(name, v),
                None => match self.user_traits.get(name) {
                    Some(u) => attrs.insert(name, u.clone()),
                    None => attrs.remove(name),
                },
            }
        }
        let now_in = evaluate(rules, attrs, self.host.as_ref());
        if let Some(change) = SegmentChange::between(&self.segments, &now_in) {
            self.debug(|| format!("segments {}", change.to_json()));
            self.segments = now_in;
            self.context_json = self.page.context_json(&self.segments);
            self.notices.push(Notice::Segments(change));
        }
    }

    /// Re-evaluates segments as time passes (a day rolls over, a window
    /// slides) without any event.
    pub fn tick(&mut self, now: f64) {
        if self.profile.roll(now) {
            self.profile_dirty = true;
        }
        self.reevaluate(now);
    }

    /// The page changed (single-page navigation): new context.
    pub fn set_page(&mut self, page: PageInfo, now: f64) {
        self.page = page_as_sent(page, &self.config.strip_url_params);
        self.attrs = None;
        self.context_json = self.page.context_json(&self.segments);
        self.reevaluate(now);
    }

    /// A fresh profile under the rules in force, with none of this page
    /// view's events left to record again (reset() here or in another tab).
    fn forget_profile(&mut self, now: f64) {
        self.profile = Profile::new(now, self.config.session_timeout_ms);
        if let Some(rules) = &self.rules {
            self.profile.apply_rules(rules, now);
        }
        self.unconfirmed.clear();
    }

    /// `reset()`: a new anonymous id; user id, traits, profile and segments
    /// forgotten. Events already queued still go out under the old ids.
    pub fn reset(&mut self, fresh_id: [u8; 16], now: f64) {
        self.anonymous_id = uuid_v4_from_bytes(fresh_id);
        self.user_id = None;
        self.user_traits = Value::Object(Vec::new());
        self.attrs = None;
        self.forget_profile(now);
        self.early_events.clear();
        self.stored_profile = None;
        self.profile_dirty = true;
        if self.granted() {
            let id = self.anonymous_id.clone();
            self.write(AID_KEY, &id);
            self.store.remove(UID_KEY);
            self.store.remove(TRAITS_KEY);
        }
        if let Some(change) = SegmentChange::between(&self.segments, &[]) {
            self.notices.push(Notice::Segments(change));
        }
        self.segments.clear();
        self.context_json = self.page.context_json(&self.segments);
        self.reevaluate(now);
        self.debug(|| "reset: new anonymous id".into());
    }

    // --- consent --------------------------------------------------------

    /// Changes consent at run time. Granting writes what was held in
    /// memory; denying drops the queue and deletes every stored key.
    pub fn set_consent(&mut self, consent: Consent, now: f64) {
        let before = self.consent;
        self.consent = consent;
        match consent {
            Consent::Granted if before != Consent::Granted => {
                let id = self.anonymous_id.clone();
                self.write(AID_KEY, &id);
                if let Some(uid) = self.user_id.clone() {
                    self.write(UID_KEY, &uid);
                }
                if self.user_traits.as_object().is_some_and(|t| !t.is_empty()) {
                    let traits = self.user_traits.to_json();
                    self.write(TRAITS_KEY, &traits);
                }
                self.beat(now);
                self.profile_dirty = true;
                self.persist(now);
            }
            Consent::Denied => {
                let dropped = self.queue.clear().len();
                self.delivery.reset_in_flight(&mut self.queue);
                self.persister.clear(&self.queue, &mut self.memory);
                self.wipe_storage();
                self.memory = MemoryStore::default();
                self.user_id = None;
                self.user_traits = Value::Object(Vec::new());
                self.attrs = None;
                self.profile = Profile::new(now, self.config.session_timeout_ms);
                self.unconfirmed.clear();
                if let Some(change) = SegmentChange::between(&self.segments, &[]) {
                    self.notices.push(Notice::Segments(change));
                }
                self.segments.clear();
                self.context_json = self.page.context_json(&self.segments);
                self.debug(|| {
                    format!(
                        "consent denied: dropped {dropped} queued event(s), deleted stored data"
                    )
                });
            }
            _ => {}
        }
    }

    /// Another tab of this site changed `key` (one of [`SHARED_KEYS`]) in
    /// storage to `value`
    /// (`None`: removed). The visitor's profile, user id, traits and
    /// anonymous id are shared by the site's tabs, as storage is: this tab
    /// takes theirs, so a purchase in one tab counts for the segments of
    /// every tab (and of the next page), rather than being overwritten by
    /// another tab's older copy. Each tab writes what it last read plus its
    /// own events. Only with consent: a pending tab takes the identity when
    /// granted ([`follow_consent`](Self::follow_consent)).
    pub fn storage_changed(&mut self, key: &str, value: Option<&str>, now: f64) {
        if !self.granted() {
            return;
        }
        match key {
            PROFILE_KEY => {
                let Some(text) = value else { return };
                let Some(rules) = &self.rules else {
                    self.stored_profile = Some(text.to_string());
                    return;
                };
                // Unwritten changes of this tab's own (storage failing)
                // are not given up for the other tab's copy.
                if self.profile_dirty && self.profile_write_at == f64::NEG_INFINITY {
                    return;
                }
                let Some(mut p) =
                    Profile::from_json(text, rules, now, self.config.session_timeout_ms)
                else {
                    return;
                };
                if p.is_older_than(&self.profile) {
                    // An older copy, written by a tab that had not yet
                    // heard of the latest events: this tab's copy stays,
                    // and goes back over it if it lacks this tab's own
                    // events. (Each tab restores its own: were every tab
                    // to write on hearing an older copy, each write would
                    // set off one in every other tab.)
                    if p.records_by(self.persister.tab()) < self.own_records {
                        self.rewrite_profile_soon(now);
                    }
                    return;
                }
                // A newer copy, or one with events this tab's lacks (and
                // maybe the other way round): taken, with this tab's own
                // events it lacks, if any. The other tabs do the same with
                // theirs.
                if self.reapply_own(&mut p, now) {
                    self.rewrite_profile_soon(now);
                } else {
                    // Nothing of this tab's to write back (any more).
                    self.profile_dirty = false;
                    self.profile_write_at = f64::NEG_INFINITY;
                }
                self.profile = p;
            }
            // New rules another tab fetched: in force here too, over the
            // profile as stored (which holds this tab's events as well), so
            // two tabs never keep the profile under different rules.
            RULES_KEY => {
                if let Some(cache) = value.filter(|_| !self.profile_dirty) {
                    self.stored_profile = self.store.get(PROFILE_KEY);
                    self.use_cached_rules(cache, true, now);
                    self.stored_profile = None;
                }
                return;
            }
            UID_KEY => {
                let user = value.filter(|u| !u.is_empty()).map(str::to_string);
                if self.user_id.is_some() && user != self.user_id {
                    // Another user (or none): the traits were the last
                    // user's, as identify() treats them.
                    self.user_traits = Value::Object(Vec::new());
                }
                self.user_id = user;
            }
            TRAITS_KEY => {
                let mut traits = traits_object(value).unwrap_or(Value::Object(Vec::new()));
                // identify() only adds and changes a user's traits (another
                // user's come after the user id, which clears these): keys
                // the other tab's copy lacks were set here meanwhile, by an
                // identify() of the same few milliseconds. Kept, and
                // written back for the tabs that follow.
                if value.is_some() {
                    let mut lacked = false;
                    for (k, v) in self.user_traits.as_object().into_iter().flatten() {
                        if traits.get(k).is_none() {
                            traits.insert(k, v.clone());
                            lacked = true;
                        }
                    }
                    if lacked {
                        let text = traits.to_json();
                        self.write(TRAITS_KEY, &text);
                    }
                }
                self.user_traits = traits;
            }
            // reset() in another tab (the events queued here keep the old
            // id, as after a reset here).
            AID_KEY => match value.filter(|id| is_uuid(id)) {
                Some(id) if id != self.anonymous_id => {
                    self.anonymous_id = id.to_string();
                    // reset() there: the profile goes with the old id, as
                    // in that tab, whose fresh profile follows (and must
                    // not look older than this tab's copy).
                    self.forget_profile(now);
                }
                _ => return,
            },
            _ => return,
        }
        self.attrs = None;
        self.reevaluate(now);
    }

    /// The shopper chose `consent` in another tab of this site: it holds
    /// here too, as if chosen here. Granting takes the visitor's id, user
    /// id and traits that tab stored, so one visitor keeps one id; the
    /// events held here meanwhile are given it.
    pub fn follow_consent(&mut self, consent: Consent, now: f64) {
        if consent == self.consent {
            return;
        }
        if consent == Consent::Granted {
            if let Some(id) = self
                .store
                .get(AID_KEY)
                .filter(|id| is_uuid(id) && *id != self.anonymous_id)
            {
                self.queue.rename_anonymous_id(&self.anonymous_id, &id);
                self.anonymous_id = id;
            }
            if self.user_id.is_none() {
                self.user_id = self.store.get(UID_KEY).filter(|u| !u.is_empty());
            }
            if self.user_traits.as_object().is_none_or(|t| t.is_empty()) {
                if let Some(traits) = traits_object(self.store.get(TRAITS_KEY).as_deref()) {
                    self.user_traits = traits;
                }
            }
            self.attrs = None;
        }
        self.set_consent(consent, now);
        self.debug(|| format!("consent {} (chosen in another tab)", consent.as_str()));
    }

    /// Deletes every `sgm_*` key of this origin's storage.
    fn wipe_storage(&mut self) {
        for key in self.store.keys() {
            if key.starts_with(KEY_PREFIX) {
                self.store.remove(&key);
            }
        }
    }

    // --- persistence and tabs ---------------------------------------------

    /// Writes what changed since the last call: new queue chunks and the
    /// profile. The adapter calls this once per task (a microtask after
    /// the first event), so a burst costs one write, not one per event.
    pub fn persist(&mut self, now: f64) {
        if !self.granted() || self.storage_paused(now) {
            return;
        }
        match self.persister.save_new(&self.queue, &mut self.store) {
            // Nothing new to write says nothing about the storage.
            Ok(0) => {}
            Ok(_) => self.note_storage(Ok(())),
            Err(reason) => {
                self.last_failed_write = now;
                self.note_storage(Err(reason));
            }
        }
        if self.profile_dirty && self.rules.is_some() {
            self.profile_dirty = false;
            self.profile_write_at = f64::NEG_INFINITY;
            let text = self.profile.to_json();
            self.write(PROFILE_KEY, &text);
        }
    }

    /// Whether [`persist`](Self::persist) has something to write now. A
    /// failing storage is tried again once its pause is over (by the next
    /// event, timer or page hide).
    pub fn needs_persist(&self, now: f64) -> bool {
        self.granted()
            && !self.storage_paused(now)
            && (!self.persister.is_clean(&self.queue)
                || (self.profile_dirty && self.rules.is_some() && now >= self.profile_write_at))
    }

    fn storage_paused(&self, now: f64) -> bool {
        // Not before the failure either: a clock put back would pause
        // storage for as long as it was put back.
        self.storage_failing && (0.0..STORAGE_RETRY_MS).contains(&(now - self.last_failed_write))
    }

    fn beat(&mut self, now: f64) {
        self.heartbeat = now;
        let key = self.persister.tab_key();
        let value = format_ms(now);
        self.write(&key, &value);
    }

    /// Refreshes this page view's heartbeat (every 30 s or so). If another
    /// page view adopted this one's queue meanwhile (this tab was frozen),
    /// the adopted events are let go: they are the adopter's to send now.
    pub fn heartbeat(&mut self, now: f64) {
        if !self.granted() || self.released {
            return;
        }
        if self.persister.was_adopted(&self.store, self.heartbeat) {
            let upto = self.persister.disown();
            let gone: Vec<u64> = self
                .queue
                .iter()
                .filter(|e| e.seq < upto)
                .map(|e| e.seq)
                .collect();
            self.delivery.reset_in_flight(&mut self.queue);
            self.queue.remove(&gone);
            self.debug(|| format!("another tab took over {} queued event(s)", gone.len()));
            let result = self.persister.save_new(&self.queue, &mut self.store);
            self.note_storage(result.map(drop));
        }
        self.beat(now);
        for key in dead_heartbeats(&self.store, now) {
            self.store.remove(&key);
        }
    }

    /// Whether other page views left queues behind for this one to adopt.
    pub fn has_orphans(&self, previous_tab: Option<&str>, now: f64) -> bool {
        self.granted()
            && !self
                .persister
                .orphans(&self.store, previous_tab, now)
                .is_empty()
    }

    /// Adopts the queues other page views left behind (the adapter calls
    /// this under a cross-tab lock where the browser has Web Locks).
    /// Returns how many events were taken over.
    pub fn adopt_orphans(&mut self, previous_tab: Option<&str>, now: f64) -> usize {
        if !self.granted() || self.released {
            return 0;
        }
        let mut total = 0;
        for tab in self.persister.orphans(&self.store, previous_tab, now) {
            let found = self
                .persister
                .adopt(&tab, &mut self.queue, &mut self.store, now);
            total += found.messages;
            if found.skipped > 0 {
                self.notices.push(Notice::Error(Error::StorageCorrupt {
                    what: "queue",
                    skipped: found.skipped,
                }));
            }
        }
        if total > 0 {
            self.debug(|| format!("recovered {total} event(s) left by an earlier page or tab"));
        }
        total
    }

    // --- delivery -------------------------------------------------------

    /// The batch to send now, if one is due.
    pub fn poll(&mut self, now: f64) -> Option<Batch> {
        if !self.granted() || self.released {
            return None;
        }
        let batch = self.delivery.poll(&mut self.queue, now)?;
        self.debug(|| match &batch.gzipped {
            Some(z) => format!(
                "batch of {} event(s), {} bytes ({} gzipped)",
                batch.seqs.len(),
                batch.body.len(),
                z.len()
            ),
            None => format!(
                "batch of {} event(s), {} bytes",
                batch.seqs.len(),
                batch.body.len()
            ),
        });
        Some(batch)
    }

    /// Requests unanswered too long (see
    /// [`REQUEST_TIMEOUT_MS`](crate::delivery::REQUEST_TIMEOUT_MS)) are
    /// settled as network errors, so their events are retried; their ids,
    /// for the caller to abort them. A late answer is then ignored.
    pub fn give_up_overdue(&mut self, now: f64) -> Vec<u64> {
        let overdue = self.delivery.overdue(now);
        for &id in &overdue {
            self.debug(|| {
                format!(
                    "batch unanswered for {} s: given up",
                    (crate::delivery::REQUEST_TIMEOUT_MS / 1000.0) as i64
                )
            });
            self.settle(id, Outcome::NetworkError, now);
        }
        overdue
    }

    /// When to call [`poll`](Self::poll) again, if nothing else happens.
    pub fn next_wake(&self) -> Option<f64> {
        if !self.granted() || self.released {
            return None;
        }
        let wake = self.delivery.next_wake(&self.queue);
        let profile_due = self.profile_dirty && self.rules.is_some();
        let mut write = (profile_due && self.profile_write_at > f64::NEG_INFINITY)
            .then_some(self.profile_write_at);
        if self.storage_failing && (profile_due || !self.persister.is_clean(&self.queue)) {
            // Storage refused a write: the next try, once its pause is
            // over (never sooner, or a timer would fire again and again).
            let retry = self.last_failed_write + STORAGE_RETRY_MS;
            write = Some(write.map_or(retry, |w| w.max(retry)));
        }
        match (wake, write) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Where batches go.
    pub fn batch_url(&self) -> &str {
        self.delivery.url()
    }

    /// Compress batches from now on (the endpoint accepts gzip).
    pub fn set_gzip(&mut self, gzip: bool) {
        self.delivery.set_gzip(gzip);
    }

    /// Whether the browser's `fetch` honours `keepalive` (see
    /// [`Delivery::set_keepalive_fetch`](crate::delivery::Delivery::set_keepalive_fetch)).
    pub fn set_keepalive_fetch(&mut self, supported: bool) {
        self.delivery.set_keepalive_fetch(supported);
    }

    /// Whether batches are compressed.
    pub fn gzip(&self) -> bool {
        self.delivery.gzip()
    }

    /// Whether request `id` is still waited for: false once answered,
    /// given up, or forgotten (the page was hidden while it was under way
    /// without keepalive, or restored from the back/forward cache).
    pub fn awaits(&self, id: u64) -> bool {
        self.delivery.awaits(id)
    }

    /// Applies the answer to batch `id` (nothing for a request given up
    /// or forgotten meanwhile: its events went, or will go, again).
    pub fn settle(&mut self, id: u64, outcome: Outcome, now: f64) {
        if !self.delivery.awaits(id) {
            return;
        }
        let random = self.rng.next_f64();
        let settled = self
            .delivery
            .settle(&mut self.queue, id, outcome, now, random);
        let status = settled.status;
        if let Some(wait) = settled.retry_in_ms {
            self.debug(|| {
                format!(
                    "batch answered {status}: retry in {} ms",
                    wait.round() as i64
                )
            });
        } else {
            self.debug(|| {
                format!(
                    "batch answered {status}: {} event(s) done",
                    settled.removed.len()
                )
            });
        }
        self.note_collector_health(&settled, now);
        self.remove(&settled.removed);
        self.notices
            .extend(settled.errors.into_iter().map(Notice::Error));
        self.notices
            .extend(settled.flushes.into_iter().map(Notice::Flushed));
    }

    /// Keeps [`FAILING_KEY`] current: the latest answer from the
    /// collector, failed or delivered, from whichever page view heard it.
    fn note_collector_health(&mut self, settled: &Settled, now: f64) {
        if self.consent != Consent::Granted {
            return;
        }
        if settled.failed {
            // A failure more than a day after the last one starts a run.
            let since = self
                .failure_run()
                .filter(|&(_, latest)| now - latest < UNREACHABLE_AFTER_MS)
                .map_or(now, |(since, _)| since);
            let run = format!("{},{}", format_ms(since), format_ms(now));
            // Best effort: where storage refuses it, page hides trust
            // their beacons as they did before there was this key.
            let _ = self.store.set(FAILING_KEY, &run);
        } else if self.store.get(FAILING_KEY).is_some() {
            self.store.remove(FAILING_KEY);
        }
        self.budget_stored_queue();
    }

    /// The run of failed answers in force: (first, latest) failure.
    fn failure_run(&self) -> Option<(f64, f64)> {
        let run = self.store_ref().get(FAILING_KEY)?;
        let (since, latest) = run.split_once(',')?;
        // Whole milliseconds, as written: integer parsing, since a float
        // parser would cost the wasm 14 KB brotli.
        let ms = |v: &str| v.parse::<i64>().ok().map(|n| n as f64);
        Some((ms(since)?, ms(latest)?))
    }

    /// A small stored queue while the collector is unreachable from this
    /// browser, the full one otherwise.
    fn budget_stored_queue(&mut self) {
        let unreachable = self
            .failure_run()
            .is_some_and(|(since, latest)| latest - since >= UNREACHABLE_AFTER_MS);
        self.persister.set_budget(if unreachable {
            UNREACHABLE_QUEUE_BUDGET
        } else {
            STORED_QUEUE_BUDGET
        });
    }

    fn remove(&mut self, seqs: &[u64]) {
        if seqs.is_empty() {
            return;
        }
        let mut sorted = seqs.to_vec();
        crate::sort::sort_by_key(&mut sorted, |s| *s);
        self.queue.remove(&sorted);
        let store: &mut dyn Store = if self.consent == Consent::Granted {
            &mut self.store
        } else {
            &mut self.memory
        };
        self.persister.forget(&sorted, &self.queue, store);
    }

    /// `flush()`: sends everything queued now. `Ok(id)`: a
    /// [`Notice::Flushed`] with that id will follow; `Err`: settled now.
    pub fn flush(&mut self) -> Result<u32, FlushDone> {
        let can_send = self.granted() && !self.released;
        self.delivery.flush(&self.queue, can_send)
    }

    /// The browser went online or offline.
    pub fn set_online(&mut self, online: bool) {
        self.delivery.set_online(online);
        self.debug(|| {
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
    fn unload_batches(&mut self, now: f64, beacon: bool) -> Vec<Batch> {
        if !self.granted() || self.released {
            return Vec::new();
        }
        self.persist(now);
        self.delivery.unload_batches(&mut self.queue, now, beacon)
    }

    /// Ends this page view's claim on its queue: everything queued stays
    /// stored for the next page view (or another tab) to adopt and send.
    /// That includes what the page-hide beacons and the keepalive requests
    /// under way carry: nobody hears how they are answered, and an event
    /// leaves storage only on an answer that proves it stored. The next
    /// page view sends them again under the same message ids, and the
    /// collector keeps one copy.
    pub fn release(&mut self, now: f64) {
        if !self.granted() || self.released {
            return;
        }
        // Whatever is queued must be in storage now.
        self.last_failed_write = f64::NEG_INFINITY;
        self.persist(now);
        let key = self.persister.tab_key();
        self.store.remove(&key);
        self.released = true;
        let kept = self.queue.len();
        self.debug(|| format!("page hidden: {kept} event(s) kept for the next page"));
    }

    /// The page came back from the back/forward cache after
    /// [`release`](Self::release): a fresh page view that adopts what the
    /// old one left. Returns the old page view's id (to adopt with).
    pub fn resume(&mut self, now: f64) -> String {
        let old = self.persister.tab().to_string();
        self.delivery.reset_in_flight(&mut self.queue);
        if !self.released {
            // Hidden without consent: nothing went to storage, and what
            // is held in memory (pending consent) stays held here.
            return old;
        }
        let tab = self.rng.token(8);
        self.queue.clear();
        self.persister = Persister::new(&tab);
        self.budget_stored_queue();
        // Records are counted per page view id.
        self.own_records = 0;
        self.unconfirmed.clear();
        self.released = false;
        if self.granted() {
            self.beat(now);
        }
        old
    }

    /// Queued events, for tests and `debug`.
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    // --- rules, profile, segments -----------------------------------------

    fn load_rules_and_profile(&mut self, now: f64) {
        self.stored_profile = self.store_ref().get(PROFILE_KEY);
        let cached = self.store_ref().get(RULES_KEY);
        if cached.is_some_and(|c| self.use_cached_rules(&c, false, now)) {
            return;
        }
        if let Some(inline) = self.config.rules.clone() {
            match Rules::from_value(&inline) {
                Ok(rules) => self.apply_rules(rules, now),
                Err(e) => self.notices.push(Notice::Error(e)),
            }
        }
    }

    /// Puts the rules of `cache` (the cached document, as stored under
    /// [`RULES_KEY`]) in force if they come from this page's rules URL;
    /// with `only_new`, only if their version differs from the rules in
    /// force (the fetch time and ETag are taken either way). Whether they
    /// were put in force.
    fn use_cached_rules(&mut self, cache: &str, only_new: bool, now: f64) -> bool {
        let Ok(cache) = Value::parse(cache) else {
            return false;
        };
        if cache.get("url").and_then(Value::as_str) != self.config.rules_url.as_deref() {
            return false;
        }
        let Some(text) = cache.get("text").and_then(Value::as_str) else {
            return false;
        };
        match Rules::parse(text) {
            Ok(rules) => {
                self.rules_etag = cache
                    .get("etag")
                    .and_then(Value::as_str)
                    .map(str::to_string);
                self.rules_fetched = cache
                    .get("fetched")
                    .and_then(Value::as_f64)
                    .unwrap_or(f64::NEG_INFINITY);
                if only_new
                    && self
                        .rules
                        .as_ref()
                        .is_some_and(|r| r.version == rules.version)
                {
                    return false;
                }
                self.apply_rules(rules, now);
                true
            }
            Err(_) => {
                self.notices.push(Notice::Error(Error::StorageCorrupt {
                    what: "rules",
                    skipped: 1,
                }));
                false
            }
        }
    }

    fn apply_rules(&mut self, rules: Rules, now: f64) {
        let version = rules.version.clone();
        if let Some(text) = self.stored_profile.take() {
            match Profile::from_json(&text, &rules, now, self.config.session_timeout_ms) {
                Some(mut p) => {
                    self.reapply_own(&mut p, now);
                    self.profile = p;
                }
                None => {
                    self.notices.push(Notice::Error(Error::StorageCorrupt {
                        what: "profile",
                        skipped: 1,
                    }));
                    self.profile.apply_rules(&rules, now);
                }
            }
        } else {
            self.profile.apply_rules(&rules, now);
        }
        for (event, props, at) in std::mem::take(&mut self.early_events) {
            self.record_own(&event, props, at);
        }
        self.profile_dirty = true;
        self.rules = Some(rules);
        self.attrs = None;
        self.debug(|| format!("rules {version} in force"));
        self.reevaluate(now);
    }

    /// The rules fetch to make now, if the cached document is missing or
    /// older than `rulesTtlSeconds`. The adapter asks at start and on
    /// every heartbeat, so a long-lived single-page app revalidates too.
    /// A request returned counts as in flight until answered (or for a
    /// minute), so none is made twice.
    pub fn rules_request(&mut self, now: f64) -> Option<RulesRequest> {
        let url = self.config.rules_url.clone()?;
        // No requests without consent (a pending site fetches them once
        // granted).
        if !self.granted() || now < self.rules_wait_until {
            return None;
        }
        let fresh = now - self.rules_fetched < self.config.rules_ttl_secs * 1000.0;
        if fresh {
            return None;
        }
        self.rules_wait_until = now + RULES_IN_FLIGHT_MS;
        Some(RulesRequest {
            url,
            etag: self.rules_etag.clone(),
        })
    }

    /// The answer to a rules fetch: 304 keeps the document, 200 brings a
    /// new one (validated before use), anything else is reported; the
    /// last good rules stay in force on any failure.
    pub fn rules_fetched(&mut self, status: u16, etag: Option<String>, text: &str, now: f64) {
        // A failure below waits a TTL before the next try; success makes
        // the document fresh for a TTL anyway.
        self.rules_wait_until = now + self.config.rules_ttl_secs * 1000.0;
        match status {
            304 => {
                self.rules_fetched = now;
                self.cache_rules(None);
                self.debug(|| "rules unchanged (304)".into());
            }
            200..=299 => match Rules::parse(text) {
                Ok(rules) => {
                    self.rules_etag = etag;
                    self.rules_fetched = now;
                    self.cache_rules(Some(text));
                    self.apply_rules(rules, now);
                }
                Err(e) => self.notices.push(Notice::Error(e)),
            },
            0 => self.notices.push(Notice::Error(Error::RulesFetchFailed {
                status: 0,
                reason: "network error".into(),
            })),
            _ => self.notices.push(Notice::Error(Error::RulesFetchFailed {
                status,
                reason: "unexpected status".into(),
            })),
        }
    }

    fn cache_rules(&mut self, text: Option<&str>) {
        if !self.granted() {
            return;
        }
        let text = match text {
            Some(t) => t.to_string(),
            None => match self
                .store
                .get(RULES_KEY)
                .and_then(|c| Value::parse(&c).ok())
            {
                Some(c) => c
                    .get("text")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                None => return,
            },
        };
        let mut out = String::from("{\"url\":");
        write_string(
            &mut out,
            self.config.rules_url.as_deref().unwrap_or_default(),
        );
        if let Some(etag) = &self.rules_etag {
            out.push_str(",\"etag\":");
            write_string(&mut out, etag);
        }
        out.push_str(&format!(
            ",\"fetched\":{},\"text\":",
            format_ms(self.rules_fetched)
        ));
        write_string(&mut out, &text);
        out.push('}');
        self.write(RULES_KEY, &out);
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
        let mut all = self.user_traits.clone();
        for (k, v) in self.profile.traits(now) {
            all.insert(&k, v);
        }
        all.to_json()
    }

    /// The banner decision for a slot offering templates for `offered`.
    pub fn decide(&self, offered: &[String]) -> Decision {
        match &self.rules {
            Some(rules) => decide(rules, &self.segments, offered, &self.anonymous_id),
            None => Decision {
                segment: None,
                variation: Variation::Default,
            },
        }
    }

    /// Takes what the page should hear about.
    pub fn drain_notices(&mut self) -> Vec<Notice> {
        std::mem::take(&mut self.notices)
    }

    /// Whether the storage keys of a queue (any page view's) exist: for
    /// tests.
    pub fn stored_queue_keys(&self) -> Vec<String> {
        self.store
            .keys()
            .into_iter()
            .filter(|k| k.starts_with(QUEUE_PREFIX) || k.starts_with(TAB_PREFIX))
            .collect()
    }
}
