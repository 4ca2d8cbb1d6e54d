//! The SDK's state for one page view, and the coordinator of its parts:
//! [`identity`] (ids, traits, consent at start), the page view's queue on
//! its way out ([`dispatch`]), the [`rules_cache`], the profile as the
//! site's tabs share it ([`shared_profile`]) and [`storage`] as consent
//! allows it. A call is routed to the parts it concerns; what must happen
//! next (batches to send, writes, a wake-up time) is read back from them.
//!
//! The browser adapter owns the I/O: it gives the tracker a [`Store`], the
//! time, the page and random seeds, sends the [`Batch`]es that
//! [`Tracker::poll`] hands out and reports their answers with
//! [`Tracker::settle`]. Everything the page should hear about (errors,
//! segment changes, finished flushes, debug lines) collects as
//! [`Notice`]s, drained after each call, so no callback into page code ever
//! runs while the tracker is borrowed.

mod dispatch;
mod identity;
mod lazy;
mod recording;
mod rules_cache;
mod segmenting;
mod shared_profile;
mod storage;

use crate::condition::Host;
use crate::config::{Config, Consent};
use crate::delivery::{Delivery, DeliveryConfig, FlushDone};
use crate::error::Error;
use crate::id::Rng;
use crate::json::Value;
use crate::message::PageInfo;
use crate::profile::PROFILE_KEY;
use crate::queue::{QUEUE_PREFIX, TAB_PREFIX};
use crate::retry::Backoff;
use crate::rules::Rules;
use crate::segments::SegmentChange;
use crate::store::Store;
use crate::url::join;

use dispatch::Dispatch;
pub use dispatch::{FAILING_KEY, UNREACHABLE_AFTER_MS};
pub use identity::{consent_at_start, AID_KEY, TRAITS_KEY, UID_KEY};
use identity::{Heard, Identity};
use rules_cache::RulesCache;
pub use rules_cache::{RulesRequest, RULES_KEY};
use shared_profile::SharedProfile;
use storage::Storage;
pub use storage::KEY_PREFIX;

/// The storage keys whose changes by another tab this tab takes
/// ([`Tracker::storage_changed`]): what the site's tabs share.
pub const SHARED_KEYS: [&str; 5] = [PROFILE_KEY, AID_KEY, UID_KEY, TRAITS_KEY, RULES_KEY];
/// The segments the visitor had when last evaluated (see
/// [`Tracker::engine_arrived`]).
pub const SEGMENTS_KEY: &str = "sgm_segments";
/// The name `page()` calls have in the profile (traits can count them).
pub const PAGE_EVENT: &str = "Page Viewed";
/// The name `identify()` calls have in the profile.
pub const IDENTIFY_EVENT: &str = "Identify";

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

/// Notices collected while the tracker works (debug lines only with the
/// `debug` option).
#[derive(Default)]
pub struct Notices {
    list: Vec<Notice>,
    debug: bool,
}

impl Notices {
    fn push(&mut self, notice: Notice) {
        self.list.push(notice);
    }

    fn error(&mut self, e: Error) {
        self.list.push(Notice::Error(e));
    }

    fn maybe(&mut self, e: Option<Error>) {
        if let Some(e) = e {
            self.error(e);
        }
    }

    fn debug(&mut self, line: impl FnOnce() -> String) {
        if self.debug {
            self.list.push(Notice::Debug(line()));
        }
    }
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
    /// The segment engine's code comes later ([`Tracker::engine_arrived`]):
    /// the web build's second module.
    pub engine_later: bool,
}

/// The state of one page view.
pub struct Tracker<S: Store> {
    config: Config,
    storage: Storage<S>,
    consent: Consent,
    rng: Rng,
    identity: Identity,
    page: PageInfo,
    /// The attribute object conditions see, kept between events: built
    /// when the page, the user's traits or the rules change (`None` until
    /// then), its computed traits updated in place per event.
    attrs: Option<Value>,
    context_json: String,
    dispatch: Dispatch,
    host: Box<dyn Host>,
    rules: Option<Rules>,
    rules_cache: RulesCache,
    profile: SharedProfile,
    segments: Vec<String>,
    notices: Notices,
    /// The later module's code is there: the segment engine's (see
    /// [`lazy`]) and delivery's sending side (see `dispatch::lazy`).
    engine_ready: bool,
    /// A rules answer that came before the engine: (status, ETag, body).
    held_rules_answer: Option<(u16, Option<String>, String)>,
    /// The segments changed since [`SEGMENTS_KEY`] was written.
    segments_unsaved: bool,
    /// The endpoint accepts gzip: batches are compressed once the
    /// engine's module, which has the encoder, is there.
    wants_gzip: bool,
}

impl<S: Store> Tracker<S> {
    /// Starts a page view.
    pub fn new(config: Config, store: S, host: Box<dyn Host>, start: Start) -> Tracker<S> {
        let consent = consent_at_start(&config, start.remembered_consent, start.gpc);
        let mut rng = Rng::from_seed(start.seed);
        let tab = rng.token(8);
        let mut delivery = Delivery::new(DeliveryConfig {
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
        delivery.set_online(start.online);
        let mut storage = Storage::new(store);
        if consent == Consent::Denied {
            // Denied from the start (a remembered choice, Global Privacy
            // Control): nothing an earlier visit stored stays, only the
            // choice (a cookie the adapter keeps), and the id an earlier
            // visit kept is not taken up again.
            storage.wipe();
        }
        let cookie_id = start.cookie_id.filter(|_| consent != Consent::Denied);
        let identity = Identity::restore(cookie_id, storage.readable(consent), start.fresh_id);
        let page = start.page.as_sent(&config.strip_url_params);
        let stored_profile = storage.readable(consent).get(PROFILE_KEY);
        let mut t = Tracker {
            profile: SharedProfile::new(start.now, config.session_timeout_ms, stored_profile),
            rules_cache: RulesCache::new(config.rules_url.clone(), config.rules_ttl_secs),
            notices: Notices {
                list: Vec::new(),
                debug: config.debug,
            },
            config,
            storage,
            consent,
            rng,
            identity,
            attrs: None,
            context_json: page.context_json(&[]),
            page,
            dispatch: Dispatch::new(&tab, delivery, start.now),
            host,
            rules: None,
            segments: Vec::new(),
            engine_ready: !start.engine_later,
            held_rules_answer: None,
            segments_unsaved: false,
            wants_gzip: false,
        };
        if t.granted() {
            if t.storage.store.get(AID_KEY).as_deref() != Some(&t.identity.anonymous_id) {
                let id = t.identity.anonymous_id.clone();
                t.write(AID_KEY, &id);
            }
            t.dispatch.beat(&mut t.storage, &mut t.notices, start.now);
            t.dispatch.budget(&t.storage.store);
        }
        if t.engine_ready {
            t.load_rules(start.now);
        } else if t.rules_coming() {
            if let Some(entry) = t.storage.readable(t.consent).get(RULES_KEY) {
                t.rules_cache.note(&entry);
            }
            t.remembered_segments();
        }
        t
    }

    /// Whether rules will be in force once they are loaded or fetched.
    fn rules_coming(&self) -> bool {
        self.config.rules_url.is_some() || self.config.rules.is_some()
    }

    /// A fresh profile for a new visitor, under the rules in force.
    fn forget_profile(&mut self, now: f64) {
        self.profile.forget(now);
        if self.rules.is_some() {
            self.profile_under_rules(now);
        }
    }

    fn granted(&self) -> bool {
        self.consent == Consent::Granted
    }

    /// Writes `key` where consent allows.
    fn write(&mut self, key: &str, value: &str) {
        let refused = self.storage.write(self.consent, key, value);
        self.notices.maybe(refused);
    }

    // --- identity -------------------------------------------------------

    /// The anonymous id.
    pub fn anonymous_id(&self) -> &str {
        &self.identity.anonymous_id
    }

    /// The user id, after `identify`.
    pub fn user_id(&self) -> Option<&str> {
        self.identity.user_id.as_deref()
    }

    /// The consent in force.
    pub fn consent(&self) -> Consent {
        self.consent
    }

    /// The anonymous id to write to the cookie, when cookies are allowed.
    pub fn cookie_id(&self) -> Option<&str> {
        self.granted()
            .then_some(self.identity.anonymous_id.as_str())
    }

    /// This page view's id, for sessionStorage (see [`Start::previous_tab`]).
    pub fn tab_id(&self) -> &str {
        self.dispatch.persister.tab()
    }

    /// `reset()`: a new anonymous id; user id, traits, profile and segments
    /// forgotten. Events already queued still go out under the old ids.
    pub fn reset(&mut self, fresh_id: [u8; 16], now: f64) {
        self.identity.reset(fresh_id);
        self.attrs = None;
        self.forget_profile(now);
        self.profile.forget_early();
        self.profile.stored = None;
        self.profile.dirty = true;
        if self.granted() {
            let id = self.identity.anonymous_id.clone();
            self.write(AID_KEY, &id);
            self.storage.store.remove(UID_KEY);
            self.storage.store.remove(TRAITS_KEY);
        }
        self.clear_segments();
        self.reevaluate(now);
        self.notices.debug(|| "reset: new anonymous id".into());
    }

    // --- consent --------------------------------------------------------

    /// Changes consent at run time. Granting writes what was held in
    /// memory; denying drops the queue and deletes every stored key.
    pub fn set_consent(&mut self, consent: Consent, now: f64) {
        let before = self.consent;
        self.consent = consent;
        match consent {
            Consent::Granted if before != Consent::Granted => {
                let id = self.identity.anonymous_id.clone();
                self.write(AID_KEY, &id);
                if let Some(uid) = self.identity.user_id.clone() {
                    self.write(UID_KEY, &uid);
                }
                if self
                    .identity
                    .user_traits
                    .as_object()
                    .is_some_and(|t| !t.is_empty())
                {
                    let traits = self.identity.user_traits.to_json();
                    self.write(TRAITS_KEY, &traits);
                }
                self.dispatch
                    .beat(&mut self.storage, &mut self.notices, now);
                self.profile.dirty = true;
                self.persist(now);
            }
            Consent::Denied => {
                let dropped = self.dispatch.clear(self.storage.writable(consent));
                self.storage.wipe();
                self.identity.user_id = None;
                self.identity.user_traits = Value::Object(Vec::new());
                self.attrs = None;
                self.profile.forget(now);
                self.clear_segments();
                self.notices.debug(|| {
                    format!(
                        "consent denied: dropped {dropped} queued event(s), deleted stored data"
                    )
                });
            }
            _ => {}
        }
    }

    /// Another tab of this site changed `key` (one of [`SHARED_KEYS`]) in
    /// storage to `value` (`None`: removed). The visitor's profile, user
    /// id, traits and anonymous id are shared by the site's tabs, as
    /// storage is: this tab takes theirs, so a purchase in one tab counts
    /// for the segments of every tab (and of the next page), rather than
    /// being overwritten by another tab's older copy. Only with consent: a
    /// pending tab takes the identity when granted
    /// ([`follow_consent`](Self::follow_consent)).
    pub fn storage_changed(&mut self, key: &str, value: Option<&str>, now: f64) {
        if !self.granted() {
            return;
        }
        match key {
            PROFILE_KEY => {
                let Some(text) = value else { return };
                if self.rules.is_none() {
                    // Read once rules are in force.
                    self.profile.stored = Some(text.to_string());
                    return;
                }
                if !self.profile_heard(text, now) {
                    return;
                }
            }
            // New rules another tab fetched: in force here too, over the
            // profile as stored (which holds this tab's events as well), so
            // two tabs never keep the profile under different rules.
            RULES_KEY => {
                // (Before the engine arrives: it reads the stored rules.)
                let taken = value.filter(|_| self.engine_ready && !self.profile.dirty);
                if let Some(entry) = taken {
                    self.profile.stored = self.storage.store.get(PROFILE_KEY);
                    self.use_cached_rules(entry, true, now);
                    self.profile.stored = None;
                }
                return;
            }
            _ => match self.identity.heard(key, value) {
                Heard::Nothing => return,
                Heard::Changed => {}
                Heard::WriteBack(traits) => self.write(TRAITS_KEY, &traits),
                Heard::NewVisitor => {
                    // reset() there: the profile goes with the old id, as
                    // in that tab, whose fresh profile follows (and must
                    // not look older than this tab's copy).
                    self.forget_profile(now);
                }
            },
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
            if let Some(held_as) = self.identity.take_stored(&self.storage.store) {
                self.dispatch
                    .queue
                    .rename_anonymous_id(&held_as, &self.identity.anonymous_id);
            }
            self.attrs = None;
        }
        self.set_consent(consent, now);
        self.notices
            .debug(|| format!("consent {} (chosen in another tab)", consent.as_str()));
    }

    /// Takes what the page should hear about.
    pub fn drain_notices(&mut self) -> Vec<Notice> {
        std::mem::take(&mut self.notices.list)
    }

    /// Whether the storage keys of a queue (any page view's) exist: for
    /// tests.
    pub fn stored_queue_keys(&self) -> Vec<String> {
        self.storage
            .store
            .keys()
            .into_iter()
            .filter(|k| k.starts_with(QUEUE_PREFIX) || k.starts_with(TAB_PREFIX))
            .collect()
    }
}
