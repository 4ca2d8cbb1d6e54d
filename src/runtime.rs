//! The running SDK in a page: the core [`Tracker`] plus the browser's
//! timer, the page's lifecycle and the network, which `js/host.js` (a
//! [`PageHost`]) carries out and reports back on.
//!
//! Every entry point goes through [`Runtime::run`]: it borrows the state,
//! lets the tracker work, and collects what must happen next (batches to
//! send, a microtask, a timer, notices for the page) into an [`Outbox`],
//! which is carried out only after the borrow ends. So page code called
//! back from here (an `on("segments")` listener that tracks) never finds
//! the state borrowed.

use crate::browser::{self, CookieJar, JsHost, LocalStore, PageHost};
use js_sys::Function;
use segmint_core::config::{Config, Consent};
use segmint_core::delivery::{Batch, FlushDone, Outcome};
use segmint_core::store::Store;
use segmint_core::tracker::{consent_at_start, Notice, Start, Tracker, SHARED_KEYS};
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

/// sessionStorage key naming this tab's current page view.
const TAB_KEY: &str = "sgm_tab";
/// The consent cookie holds only the choice.
pub const CONSENT_COOKIE: &str = "sgm_consent";
/// localStorage: the endpoint that said it accepts gzip bodies.
const GZIP_KEY: &str = "sgm_gzip";

/// What the [`PageHost`] reports (`js/host.js` has the same numbers).
mod report {
    pub const WAKE: u32 = 0;
    pub const PERSIST: u32 = 1;
    pub const PAGEHIDE: u32 = 2;
    pub const RESTORED: u32 = 3;
    pub const ONLINE: u32 = 4;
    pub const OFFLINE: u32 = 5;
    pub const STORAGE: u32 = 6;
    pub const HIDDEN: u32 = 7;
    pub const BEAT: u32 = 8;
    pub const ANSWERED: u32 = 9;
    pub const RULES: u32 = 10;
    pub const LOCKED: u32 = 11;
}

/// `report(kind, id, status, text, more)`: see `js/host.js`. `Fn`, not
/// `FnMut`: the host may report while a report runs (the queue lock is
/// taken at once where the browser has no Web Locks).
type Report = Closure<dyn Fn(u32, f64, u32, Option<String>, Option<String>)>;

/// The SDK's state in this page.
pub struct State {
    /// The core.
    pub tracker: Tracker<LocalStore>,
    /// The page (for its storage and cookies).
    pub host: PageHost,
    /// Where the anonymous-id cookie goes.
    pub jar: CookieJar,
    /// The page view this tab showed before, until its queue is adopted.
    previous_tab: Option<String>,
    /// When the host's timer is due, if armed.
    timer: Option<f64>,
    microtask_queued: bool,
    /// Batches under way (see `outbox`).
    requests: Vec<u64>,
    /// The `compress` option: gzip once the endpoint says it accepts it.
    compress: bool,
}

/// What to do once the state is no longer borrowed.
#[derive(Default)]
struct Outbox {
    batches: Vec<Batch>,
    /// Requests the core no longer waits for (given up, or forgotten at
    /// page hide or restore): to abort.
    abandoned: Vec<u64>,
    microtask: bool,
    /// `Some(Some(t))`: (re)arm the timer for `t`; `Some(None)`: disarm.
    timer: Option<Option<f64>>,
    notices: Vec<Notice>,
}

/// The running SDK.
pub struct Runtime {
    state: RefCell<State>,
    emit: Function,
    host: PageHost,
    /// What the host reports to; it lives as long as the page.
    report: RefCell<Option<Report>>,
}

fn flush_json(done: &FlushDone) -> String {
    format!("{{\"sent\":{},\"pending\":{}}}", done.sent, done.pending)
}

impl State {
    /// Collects what the tracker needs next.
    fn outbox(&mut self, now: f64, pump: bool) -> Outbox {
        let mut out = Outbox::default();
        if pump {
            self.tracker.give_up_overdue(now);
        }
        // Requests the core no longer waits for (given up, or forgotten
        // when the page was hidden or restored): aborted, so none holds a
        // connection to the collector for the rest of the page view.
        let mut i = 0;
        while let Some(id) = self.requests.get(i) {
            if self.tracker.awaits(*id) {
                i += 1;
            } else {
                out.abandoned.push(self.requests.swap_remove(i));
            }
        }
        if pump {
            while let Some(batch) = self.tracker.poll(now) {
                out.batches.push(batch);
            }
        }
        if self.tracker.needs_persist(now) && !self.microtask_queued {
            self.microtask_queued = true;
            out.microtask = true;
        }
        let wake = self.tracker.next_wake();
        if wake != self.timer {
            out.timer = Some(wake);
        }
        out.notices = self.tracker.drain_notices();
        out
    }

    /// Consent changed: the cookies, and this tab's id in sessionStorage,
    /// follow it.
    pub fn apply_consent(&mut self, consent: Consent) {
        match consent {
            Consent::Granted => {
                self.write_cookie();
                self.jar.write(CONSENT_COOKIE, "granted");
                self.host.session_set(TAB_KEY, self.tracker.tab_id());
            }
            Consent::Denied => {
                self.jar.delete(&self.jar.name.clone());
                self.jar.write(CONSENT_COOKIE, "denied");
                self.host.session_remove(TAB_KEY);
            }
            Consent::Pending => self.jar.delete(CONSENT_COOKIE),
        }
    }

    /// (Re)writes the anonymous-id cookie when cookies are allowed,
    /// probing the domain first if it was never probed.
    pub fn write_cookie(&mut self) {
        let Some(id) = self.tracker.cookie_id().map(str::to_string) else {
            return;
        };
        // (A configured domain is never `None`.)
        if self.jar.domain.is_none() {
            self.jar.find_domain(true);
        }
        self.jar.write(&self.jar.name.clone(), &id);
    }
}

impl Runtime {
    /// Starts the SDK in this page: restores identity, writes the cookie,
    /// loads cached rules, adopts queues earlier page views left, and
    /// listens for the page's lifecycle.
    pub fn start(
        mut config: Config,
        emit: Function,
        host: PageHost,
        engine_later: bool,
    ) -> Rc<Runtime> {
        let store = LocalStore::open(&host);
        if store.get("segmint_debug").as_deref() == Some("1") {
            config.debug = true;
        }
        let facts = host.start_facts();
        let (page, hostname, secure) = host.page_info();
        let jar_cookies = host.cookies();
        let remembered = remembered_consent(&jar_cookies);
        let cookie_id = segmint_core::cookie::read_cookie(&jar_cookies, &config.cookie_name)
            .map(str::to_string);
        let previous_tab = host.session_get(TAB_KEY);
        let now = browser::now();
        let gzip =
            config.compress && store.get(GZIP_KEY).as_deref() == Some(config.endpoint.as_str());
        let start = Start {
            now,
            seed: host.random_bytes(),
            fresh_id: host.random_bytes(),
            cookie_id,
            remembered_consent: remembered,
            gpc: facts.gpc,
            previous_tab: previous_tab.clone(),
            page,
            online: facts.online,
            engine_later,
        };
        let compress = config.compress;
        let name = config.cookie_name.clone();
        let consent = consent_at_start(&config, remembered, start.gpc);
        // Before the tracker starts: a denied start deletes what storage
        // holds, the cookie's domain among it.
        let mut jar = CookieJar::new(
            &host,
            &name,
            config.cookie_domain.clone(),
            config.cookie_max_age_days,
            hostname,
            secure,
        );
        if jar.domain.is_none() {
            jar.find_domain(consent == Consent::Granted);
        }
        if consent == Consent::Denied {
            jar.delete(&name);
            host.session_remove(TAB_KEY);
        }
        let mut tracker = Tracker::new(config, store, Box::new(JsHost::default()), start);
        tracker.keep_heads_in(Box::new(browser::JsBlocks::default()));
        tracker.set_gzip(gzip);
        tracker.set_keepalive_fetch(facts.keepalive_fetch);
        if tracker.consent() == Consent::Granted {
            host.session_set(TAB_KEY, tracker.tab_id());
        }
        let rt = Rc::new(Runtime {
            state: RefCell::new(State {
                tracker,
                host: host.clone(),
                jar,
                previous_tab,
                timer: None,
                microtask_queued: false,
                requests: Vec::new(),
                compress,
            }),
            emit,
            host,
            report: RefCell::new(None),
        });
        let weak = Rc::downgrade(&rt);
        let report = Report::new(move |kind, id, status, text, more| {
            if let Some(rt) = weak.upgrade() {
                rt.reported(kind, id, status, text, more);
            }
        });
        // The values of these storage keys cross into the wasm when
        // another tab changes them (see `storage_changed`).
        let mut keys = browser::CONSENT_SIGNAL_KEY.to_string();
        for key in SHARED_KEYS {
            keys.push(' ');
            keys.push_str(key);
        }
        let _ = rt.host.start(report.as_ref().unchecked_ref(), &keys);
        *rt.report.borrow_mut() = Some(report);
        rt.run(true, |s, _| s.write_cookie());
        rt.adopt();
        // The rules at start are the facade's to fetch (rulesRequest): it
        // began the request beside the wasm's, one round trip sooner.
        rt
    }

    /// Runs `f` on the state, then carries out what it left to do.
    /// `pump`: also start any batch that is due. Returns `None` only if
    /// the state was already borrowed (a re-entrant call, which the
    /// outbox design rules out).
    pub fn run<R>(self: &Rc<Self>, pump: bool, f: impl FnOnce(&mut State, f64) -> R) -> Option<R> {
        let now = browser::now();
        let (result, out) = {
            let mut state = self.state.try_borrow_mut().ok()?;
            let result = f(&mut state, now);
            let out = state.outbox(now, pump);
            (result, out)
        };
        self.carry_out(out, now);
        Some(result)
    }

    fn carry_out(self: &Rc<Self>, out: Outbox, now: f64) {
        // Frees the connection and its share of the keepalive budget.
        for id in out.abandoned {
            let _ = self.host.abort(id as f64);
        }
        for batch in out.batches {
            self.send(batch);
        }
        if out.microtask {
            let _ = self.host.microtask();
        }
        if let Some(wake) = out.timer {
            self.arm_timer(wake, now);
        }
        for notice in out.notices {
            let (kind, payload) = match notice {
                Notice::Error(e) => ("error", e.to_json()),
                Notice::Segments(change) => ("segments", change.to_json()),
                Notice::Debug(line) => ("debug", line),
                Notice::Flushed(done) => {
                    let _ = self.host.flushed(done.id, &flush_json(&done));
                    continue;
                }
            };
            let _ = self.emit.call2(
                &JsValue::NULL,
                &JsValue::from_str(kind),
                &JsValue::from_str(&payload),
            );
        }
    }

    /// (Re)arms the host's one timer, or disarms it.
    fn arm_timer(&self, wake: Option<f64>, now: f64) {
        let Ok(mut state) = self.state.try_borrow_mut() else {
            return;
        };
        state.timer = wake;
        let ms = wake.map_or(-1.0, |at| (at - now).clamp(0.0, 2_147_483_647.0));
        let _ = self.host.arm(ms);
    }

    /// What the host reports: see `js/host.js`.
    fn reported(
        self: &Rc<Self>,
        kind: u32,
        id: f64,
        status: u32,
        text: Option<String>,
        more: Option<String>,
    ) {
        match kind {
            report::WAKE => {
                self.run(true, |s, now| {
                    s.timer = None;
                    s.tracker.tick(now);
                });
            }
            report::PERSIST => {
                // `microtask_queued` stays set during this run, so the
                // microtask can never schedule itself again.
                self.run(true, |s, now| s.tracker.persist(now));
                self.run(false, |s, _| s.microtask_queued = false);
            }
            report::PAGEHIDE => self.page_hide(),
            report::RESTORED => {
                self.run(true, |s, now| {
                    let old = s.tracker.resume(now);
                    if s.tracker.consent() == Consent::Granted {
                        s.host.session_set(TAB_KEY, s.tracker.tab_id());
                    }
                    s.previous_tab = Some(old);
                });
                self.adopt();
                self.fetch_rules();
            }
            report::ONLINE | report::OFFLINE => {
                self.run(true, |s, _| s.tracker.set_online(kind == report::ONLINE));
            }
            report::STORAGE => self.storage_changed(text, status == 1, more),
            report::HIDDEN => self.page_hidden(),
            report::BEAT => self.beat(),
            report::ANSWERED => self.answered(id as u64, status, text, more),
            report::RULES => {
                self.run(true, |s, now| {
                    let body = text.as_deref().unwrap_or_default();
                    s.tracker.rules_fetched(status as u16, more, body, now)
                });
            }
            report::LOCKED => {
                self.run(true, |s, now| {
                    let previous = s.previous_tab.take();
                    s.tracker.adopt_orphans(previous.as_deref(), now);
                });
            }
            _ => {}
        }
    }

    /// Another tab changed `key` (`removed`: took it away); `value` is
    /// its new value for the keys the host was asked to pass on.
    fn storage_changed(self: &Rc<Self>, key: Option<String>, removed: bool, value: Option<String>) {
        let Some(key) = key else { return };
        // A consent choice made in another tab (browser::announce_consent).
        if key == browser::CONSENT_SIGNAL_KEY {
            if let Some(chosen) = value.as_deref().and_then(Consent::parse) {
                self.follow_consent(chosen);
            }
        }
        // The visitor's profile, identity or rules, changed by another tab.
        if SHARED_KEYS.contains(&key.as_str()) {
            self.run(true, |s, now| {
                s.tracker.storage_changed(&key, value.as_deref(), now)
            });
        }
        // Another tab released its queue (its page went away): take it.
        if removed && key.starts_with(segmint_core::queue::TAB_PREFIX) {
            self.adopt();
        }
    }

    /// The heartbeat: tells other tabs this page view is alive, and finds
    /// queues crashed tabs left behind.
    fn beat(self: &Rc<Self>) {
        // A choice another tab made while this one missed its signal
        // (frozen in the background, say) is in the consent cookie.
        if let Some(chosen) = remembered_consent(&self.host.cookies()) {
            self.follow_consent(chosen);
        }
        self.run(true, |s, now| {
            s.tracker.heartbeat(now);
            s.tracker.tick(now);
        });
        self.adopt();
        // Rules past their TTL are revalidated while the page lives.
        self.fetch_rules();
    }

    /// Takes a consent choice made in another tab of this site, when it
    /// differs from this tab's: a shopper who withdraws consent in one tab
    /// is not tracked on in another, and one who grants it is not asked
    /// again.
    fn follow_consent(self: &Rc<Self>, chosen: Consent) {
        let changed = self.run(true, |s, now| {
            if s.tracker.consent() == chosen {
                return false;
            }
            s.tracker.follow_consent(chosen, now);
            s.apply_consent(chosen);
            true
        });
        if changed == Some(true) {
            self.adopt();
            self.fetch_rules();
        }
    }

    /// Adopts queues that earlier page views or closed tabs left, under a
    /// cross-tab lock where the browser has Web Locks (so two tabs never
    /// take the same queue); without it, the heartbeat rules still keep
    /// live tabs' queues safe. The host reports `LOCKED` holding it.
    pub fn adopt(self: &Rc<Self>) {
        let orphans = self.run(false, |s, now| {
            s.tracker.has_orphans(s.previous_tab.as_deref(), now)
        });
        if orphans == Some(true) {
            let _ = self.host.lock();
        }
    }

    fn page_hidden(self: &Rc<Self>) {
        let batches = self
            .run(false, |s, now| s.tracker.hidden(now))
            .unwrap_or_default();
        for batch in batches {
            self.send(batch);
        }
    }

    fn page_hide(self: &Rc<Self>) {
        self.run(false, |s, now| {
            let url = s.tracker.batch_url().to_string();
            // What the beacons carry stays stored all the same: nobody
            // hears their answers (see Tracker::release).
            for batch in s.tracker.pagehide(now) {
                let (target, bytes) = wire(&url, &batch);
                let _ = self.host.beacon(&target, bytes);
            }
            s.tracker.release(now);
        });
    }

    /// Posts a batch; the host reports its answer (`answered`).
    fn send(self: &Rc<Self>, batch: Batch) {
        let Some(url) = self.run(false, |s, _| {
            s.requests.push(batch.id);
            s.tracker.batch_url().to_string()
        }) else {
            return;
        };
        let (target, bytes) = wire(&url, &batch);
        let _ = self
            .host
            .post(batch.id as f64, &target, bytes, batch.keepalive);
    }

    /// Batch `id`'s answer: `status` (0 for a network error) plus 65536
    /// when the collector accepts gzip bodies, where a redirect ended
    /// unless in a success, and `Retry-After`.
    fn answered(
        self: &Rc<Self>,
        id: u64,
        status: u32,
        redirected_to: Option<String>,
        retry_after: Option<String>,
    ) {
        let accepts_gzip = status >> 16 != 0;
        let outcome = match (status as u16, redirected_to) {
            (0, _) => Outcome::NetworkError,
            (status, Some(to)) => Outcome::Redirected { status, to },
            (status, None) => Outcome::Status {
                status,
                retry_after,
            },
        };
        self.run(true, |s, now| {
            s.requests.retain(|r| *r != id);
            if accepts_gzip && s.compress && !s.tracker.gzip() {
                s.tracker.set_gzip(true);
                let url = s.tracker.batch_url();
                let endpoint = url.strip_suffix("/v1/batch").unwrap_or(url).to_string();
                let mut store = LocalStore::open(&s.host);
                if s.tracker.consent() == Consent::Granted {
                    let _ = store.set(GZIP_KEY, &endpoint);
                }
            }
            s.tracker.settle(id, outcome, now);
        });
    }

    /// `flush()`: sends everything queued now. Returns the flush's id;
    /// the host hears when it has settled (`flushed`), at once when
    /// nothing was waiting.
    pub fn flush(self: &Rc<Self>) -> u32 {
        let started = self.run(true, |s, now| {
            s.tracker.persist(now);
            s.tracker.flush()
        });
        let done = match started {
            Some(Ok(id)) => return id,
            Some(Err(done)) => done,
            // Only a call from inside a run finds the state borrowed, and
            // the facade makes none: settled as sending nothing.
            None => FlushDone {
                id: u32::MAX,
                sent: 0,
                pending: 0,
            },
        };
        let _ = self.host.flushed(done.id, &flush_json(&done));
        done.id
    }

    /// Fetches the rules document if the cache is missing or stale; the
    /// host reports the answer (`RULES`).
    pub fn fetch_rules(self: &Rc<Self>) {
        if let Some(Some(request)) = self.run(false, |s, now| s.tracker.rules_request(now)) {
            let _ = self.host.rules(&request.url, request.etag.as_deref());
        }
    }
}

/// The consent choice the consent cookie in `cookies` remembers.
fn remembered_consent(cookies: &str) -> Option<Consent> {
    segmint_core::cookie::read_cookie(cookies, CONSENT_COOKIE).and_then(Consent::parse)
}

/// Where a batch goes and the bytes it sends: gzipped when the batch is
/// (the query says so), else its JSON.
fn wire<'a>(url: &str, batch: &'a Batch) -> (String, &'a [u8]) {
    match &batch.gzipped {
        Some(z) => (format!("{url}?compression=gzip"), z),
        None => (url.to_string(), batch.body.as_bytes()),
    }
}
