//! The running SDK in a page: the core [`Tracker`] plus the browser's
//! timers, listeners and network.
//!
//! Every entry point goes through [`Runtime::run`]: it borrows the state,
//! lets the tracker work, and collects what must happen next (batches to
//! send, a microtask, a timer, notices for the page) into an [`Outbox`],
//! which is carried out only after the borrow ends. So page code called
//! back from here (an `on("segments")` listener that tracks) never finds
//! the state borrowed.

use crate::browser::{self, CookieJar, JsHost, LocalStore};
use js_sys::{Function, Promise};
use segmint_core::config::{Config, Consent};
use segmint_core::delivery::{Batch, FlushDone, Outcome};
use segmint_core::store::Store;
use segmint_core::tracker::{consent_at_start, Notice, Start, Tracker, SHARED_KEYS};
use std::cell::RefCell;
use std::rc::{Rc, Weak};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{RequestInit, Response};

/// sessionStorage key naming this tab's current page view.
const TAB_KEY: &str = "sgm_tab";
/// The consent cookie holds only the choice.
pub const CONSENT_COOKIE: &str = "sgm_consent";
/// localStorage: the endpoint that said it accepts gzip bodies.
const GZIP_KEY: &str = "sgm_gzip";
/// How often a page view refreshes its heartbeat and looks for orphans.
const HEARTBEAT_MS: i32 = 30_000;

/// The SDK's state in this page.
pub struct State {
    /// The core.
    pub tracker: Tracker<LocalStore>,
    /// Where the anonymous-id cookie goes.
    pub jar: CookieJar,
    /// The page view this tab showed before, until its queue is adopted.
    previous_tab: Option<String>,
    /// Pending `setTimeout`: (handle, due time).
    timer: Option<(i32, f64)>,
    microtask_queued: bool,
    flushes: Vec<(u32, Function)>,
    /// Batches under way, with what aborts each (see `outbox`).
    requests: Vec<(u64, web_sys::AbortController)>,
    /// The `compress` option: gzip once the endpoint says it accepts it.
    compress: bool,
    cookie_domain_option: Option<String>,
    cookie_max_age_days: f64,
}

/// What to do once the state is no longer borrowed.
#[derive(Default)]
struct Outbox {
    batches: Vec<Batch>,
    /// Requests the core no longer waits for (given up, or forgotten at
    /// page hide or restore): to abort.
    abandoned: Vec<web_sys::AbortController>,
    microtask: bool,
    /// `Some(Some(t))`: (re)arm the timer for `t`; `Some(None)`: disarm.
    timer: Option<Option<f64>>,
    notices: Vec<Notice>,
    resolved: Vec<(Function, FlushDone)>,
}

/// An event listener the browser holds.
type Listener = Closure<dyn FnMut(web_sys::Event)>;

/// The running SDK.
pub struct Runtime {
    state: RefCell<State>,
    emit: Function,
    /// Callbacks the browser holds; they live as long as the page.
    wake: RefCell<Option<Closure<dyn FnMut()>>>,
    microtask: RefCell<Option<Closure<dyn FnMut()>>>,
    listeners: RefCell<Vec<Listener>>,
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
        while let Some((id, _)) = self.requests.get(i) {
            if self.tracker.awaits(*id) {
                i += 1;
            } else {
                out.abandoned.push(self.requests.swap_remove(i).1);
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
        if wake != self.timer.map(|(_, at)| at) {
            out.timer = Some(wake);
        }
        for notice in self.tracker.drain_notices() {
            match notice {
                Notice::Flushed(done) => {
                    if let Some(i) = self.flushes.iter().position(|(id, _)| *id == done.id) {
                        let (_, resolve) = self.flushes.swap_remove(i);
                        out.resolved.push((resolve, done));
                    }
                }
                other => out.notices.push(other),
            }
        }
        out
    }

    /// Consent changed: the cookies, and this tab's id in sessionStorage,
    /// follow it.
    pub fn apply_consent(&mut self, consent: Consent) {
        match consent {
            Consent::Granted => {
                self.write_cookie();
                self.jar.write(CONSENT_COOKIE, "granted");
                browser::session_set(TAB_KEY, self.tracker.tab_id());
            }
            Consent::Denied => {
                self.jar.delete(&self.jar.name.clone());
                self.jar.write(CONSENT_COOKIE, "denied");
                browser::session_remove(TAB_KEY);
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
        if self.jar.domain.is_none() && self.cookie_domain_option.is_none() {
            let mut store = LocalStore::open();
            self.jar = CookieJar::for_page(
                &self.jar.name,
                None,
                self.cookie_max_age_days,
                &mut store,
                true,
            );
        }
        self.jar.write(&self.jar.name.clone(), &id);
    }
}

impl Runtime {
    /// Starts the SDK in this page: restores identity, writes the cookie,
    /// loads cached rules, adopts queues earlier page views left, and
    /// listens for the page's lifecycle.
    pub fn start(mut config: Config, emit: Function, engine_later: bool) -> Rc<Runtime> {
        let mut store = LocalStore::open();
        if store.get("segmint_debug").as_deref() == Some("1") {
            config.debug = true;
        }
        let jar_cookies = browser::cookies();
        let remembered = remembered_consent(&jar_cookies);
        let cookie_id = segmint_core::cookie::read_cookie(&jar_cookies, &config.cookie_name)
            .map(str::to_string);
        let previous_tab = browser::session_get(TAB_KEY);
        let now = browser::now();
        let gzip =
            config.compress && store.get(GZIP_KEY).as_deref() == Some(config.endpoint.as_str());
        let start = Start {
            now,
            seed: browser::random_bytes(),
            fresh_id: browser::random_bytes(),
            cookie_id,
            remembered_consent: remembered,
            gpc: browser::global_privacy_control(),
            previous_tab: previous_tab.clone(),
            page: browser::page_info(),
            online: browser::online(),
            engine_later,
        };
        let cookie_domain_option = config.cookie_domain.clone();
        let cookie_max_age_days = config.cookie_max_age_days;
        let compress = config.compress;
        let name = config.cookie_name.clone();
        let consent = consent_at_start(&config, remembered, start.gpc);
        // Before the tracker starts: a denied start deletes what storage
        // holds, the cookie's domain among it.
        let jar = CookieJar::for_page(
            &name,
            cookie_domain_option.clone(),
            cookie_max_age_days,
            &mut store,
            consent == Consent::Granted,
        );
        if consent == Consent::Denied {
            jar.delete(&name);
            browser::session_remove(TAB_KEY);
        }
        let mut tracker = Tracker::new(
            config,
            LocalStore::open(),
            Box::new(JsHost::default()),
            start,
        );
        tracker.keep_heads_in(Box::new(browser::JsBlocks::default()));
        tracker.set_gzip(gzip);
        tracker.set_keepalive_fetch(browser::keepalive_fetch());
        if tracker.consent() == Consent::Granted {
            browser::session_set(TAB_KEY, tracker.tab_id());
        }
        let rt = Rc::new(Runtime {
            state: RefCell::new(State {
                tracker,
                jar,
                previous_tab,
                timer: None,
                microtask_queued: false,
                flushes: Vec::new(),
                requests: Vec::new(),
                compress,
                cookie_domain_option,
                cookie_max_age_days,
            }),
            emit,
            wake: RefCell::new(None),
            microtask: RefCell::new(None),
            listeners: RefCell::new(Vec::new()),
        });
        rt.install_callbacks();
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
        for request in out.abandoned {
            request.abort();
        }
        for batch in out.batches {
            self.send(batch);
        }
        if out.microtask {
            if let (Some(w), Some(cb)) = (browser::window(), self.microtask.borrow().as_ref()) {
                w.queue_microtask(cb.as_ref().unchecked_ref());
            }
        }
        if let Some(wake) = out.timer {
            self.arm_timer(wake, now);
        }
        for (resolve, done) in out.resolved {
            let _ = resolve.call1(&JsValue::NULL, &JsValue::from_str(&flush_json(&done)));
        }
        for notice in out.notices {
            let (kind, payload) = match notice {
                Notice::Error(e) => ("error", e.to_json()),
                Notice::Segments(change) => ("segments", change.to_json()),
                Notice::Debug(line) => ("debug", line),
                Notice::Flushed(done) => ("flush", flush_json(&done)),
            };
            let _ = self.emit.call2(
                &JsValue::NULL,
                &JsValue::from_str(kind),
                &JsValue::from_str(&payload),
            );
        }
    }

    /// (Re)arms the one timer, reusing one callback: through
    /// `gloo-timers` (a closure per timer) the wasm was larger, by 484
    /// bytes raw (0.2 KB brotli) for the heartbeat's interval alone
    /// (measured 2026-12-04).
    fn arm_timer(self: &Rc<Self>, wake: Option<f64>, now: f64) {
        let Some(w) = browser::window() else { return };
        let Ok(mut state) = self.state.try_borrow_mut() else {
            return;
        };
        if let Some((handle, _)) = state.timer.take() {
            w.clear_timeout_with_handle(handle);
        }
        let (Some(at), Some(cb)) = (
            wake,
            self.wake.borrow().as_ref().map(|c| c.as_ref().clone()),
        ) else {
            return;
        };
        let delay = (at - now).clamp(0.0, 2_147_483_647.0) as i32;
        if let Ok(handle) =
            w.set_timeout_with_callback_and_timeout_and_arguments_0(cb.unchecked_ref(), delay)
        {
            state.timer = Some((handle, at));
        }
    }

    fn listen(
        self: &Rc<Self>,
        target: &web_sys::EventTarget,
        event: &str,
        // A function pointer, not a generic: one listener closure in the wasm.
        f: fn(&Rc<Runtime>, web_sys::Event),
    ) {
        let weak: Weak<Runtime> = Rc::downgrade(self);
        let cb = Closure::<dyn FnMut(web_sys::Event)>::new(move |e: web_sys::Event| {
            if let Some(rt) = weak.upgrade() {
                f(&rt, e);
            }
        });
        let _ = target.add_event_listener_with_callback(event, cb.as_ref().unchecked_ref());
        if let Ok(mut l) = self.listeners.try_borrow_mut() {
            l.push(cb);
        }
    }

    /// A callback for the browser to hold: runs `f` while the runtime
    /// lives. (A function pointer, not a generic: one closure in the wasm.)
    fn callback(self: &Rc<Self>, f: fn(&Rc<Runtime>)) -> Closure<dyn FnMut()> {
        let weak = Rc::downgrade(self);
        Closure::new(move || {
            if let Some(rt) = weak.upgrade() {
                f(&rt);
            }
        })
    }

    fn install_callbacks(self: &Rc<Self>) {
        *self.wake.borrow_mut() = Some(self.callback(|rt| {
            rt.run(true, |s, now| {
                s.timer = None;
                s.tracker.tick(now);
            });
        }));
        *self.microtask.borrow_mut() = Some(self.callback(|rt| {
            // `microtask_queued` stays set during this run, so the
            // microtask can never schedule itself again.
            rt.run(true, |s, now| s.tracker.persist(now));
            rt.run(false, |s, _| s.microtask_queued = false);
        }));
        let Some(w) = browser::window() else { return };
        let win: &web_sys::EventTarget = w.as_ref();
        self.listen(win, "pagehide", |rt, _| rt.page_hide());
        self.listen(win, "pageshow", |rt, e| {
            let restored = e
                .dyn_ref::<web_sys::PageTransitionEvent>()
                .is_some_and(|p| p.persisted());
            if restored {
                rt.run(true, |s, now| {
                    let old = s.tracker.resume(now);
                    if s.tracker.consent() == Consent::Granted {
                        browser::session_set(TAB_KEY, s.tracker.tab_id());
                    }
                    s.previous_tab = Some(old);
                });
                rt.adopt();
                rt.fetch_rules();
            }
        });
        self.listen(win, "online", |rt, _| {
            rt.run(true, |s, _| s.tracker.set_online(true));
        });
        self.listen(win, "offline", |rt, _| {
            rt.run(true, |s, _| s.tracker.set_online(false));
        });
        self.listen(win, "storage", |rt, e| {
            let Some(change) = e.dyn_ref::<web_sys::StorageEvent>() else {
                return;
            };
            let key = change.key();
            // A consent choice made in another tab (browser::announce_consent).
            if key.as_deref() == Some(browser::CONSENT_SIGNAL_KEY) {
                if let Some(chosen) = change.new_value().as_deref().and_then(Consent::parse) {
                    rt.follow_consent(chosen);
                }
            }
            // The visitor's profile, identity or rules, changed by another
            // tab. (Only those keys' values are read: queue chunks are
            // large and none of this tab's business.)
            if let Some(k) = key.as_deref().filter(|k| SHARED_KEYS.contains(k)) {
                let value = change.new_value();
                rt.run(true, |s, now| {
                    s.tracker.storage_changed(k, value.as_deref(), now)
                });
            }
            // Another tab released its queue (its page went away): take it.
            if key
                .as_deref()
                .is_some_and(|k| k.starts_with(segmint_core::queue::TAB_PREFIX))
                && change.new_value().is_none()
            {
                rt.adopt();
            }
        });
        if let Some(doc) = w.document() {
            let target: &web_sys::EventTarget = doc.as_ref();
            self.listen(target, "visibilitychange", |rt, _| {
                let hidden = browser::window()
                    .and_then(|w| w.document())
                    .is_some_and(|d| d.visibility_state() == web_sys::VisibilityState::Hidden);
                if hidden {
                    rt.page_hidden();
                }
            });
        }
        // Heartbeat: tells other tabs this page view is alive, and finds
        // queues crashed tabs left behind.
        let beat = self.callback(|rt| {
            // A choice another tab made while this one missed its signal
            // (frozen in the background, say) is in the consent cookie.
            if let Some(chosen) = remembered_consent(&browser::cookies()) {
                rt.follow_consent(chosen);
            }
            rt.run(true, |s, now| {
                s.tracker.heartbeat(now);
                s.tracker.tick(now);
            });
            rt.adopt();
            // Rules past their TTL are revalidated while the page lives.
            rt.fetch_rules();
        });
        let _ = w.set_interval_with_callback_and_timeout_and_arguments_0(
            beat.as_ref().unchecked_ref(),
            HEARTBEAT_MS,
        );
        beat.forget();
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
    /// live tabs' queues safe.
    pub fn adopt(self: &Rc<Self>) {
        let Some(pending) = self.run(false, |s, now| {
            let previous = s.previous_tab.clone();
            s.tracker
                .has_orphans(previous.as_deref(), now)
                .then_some(previous)
        }) else {
            return;
        };
        let Some(previous) = pending else { return };
        let weak = Rc::downgrade(self);
        let take = browser::once(move |_| {
            if let Some(rt) = weak.upgrade() {
                rt.run(true, |s, now| {
                    s.tracker.adopt_orphans(previous.as_deref(), now);
                    s.previous_tab = None;
                });
            }
        });
        match browser::lock_manager() {
            Some(locks) if locks.request("segmint-queue", &take).is_ok() => {}
            // No Web Locks, or they refused (a sandboxed frame): adopt
            // without the lock.
            _ => {
                let _ = take.call0(&JsValue::NULL);
            }
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
                beacon(&url, &batch);
            }
            s.tracker.release(now);
        });
    }

    /// Posts a batch; the answer goes back to the tracker.
    fn send(self: &Rc<Self>, batch: Batch) {
        let weak = Rc::downgrade(self);
        let Some(url) = self.run(false, |s, _| s.tracker.batch_url().to_string()) else {
            return;
        };
        let (id, keepalive) = (batch.id, batch.keepalive);
        let (target, bytes) = wire(&url, &batch);
        let abort = web_sys::AbortController::new().ok();
        let request = post(&target, bytes, keepalive, abort.as_ref());
        drop(batch);
        if let (Some(abort), Ok(mut state)) = (abort, self.state.try_borrow_mut()) {
            state.requests.push((id, abort));
        }
        browser::on_settled(&request, move |answered| {
            let (outcome, accepts_gzip) = answer(answered);
            if let Some(rt) = weak.upgrade() {
                rt.run(true, |s, now| {
                    s.requests.retain(|(r, _)| *r != id);
                    if accepts_gzip && s.compress && !s.tracker.gzip() {
                        s.tracker.set_gzip(true);
                        let endpoint = url.strip_suffix("/v1/batch").unwrap_or(&url).to_string();
                        let mut store = LocalStore::open();
                        if s.tracker.consent() == Consent::Granted {
                            let _ = store.set(GZIP_KEY, &endpoint);
                        }
                    }
                    s.tracker.settle(id, outcome, now);
                });
            }
        });
    }

    /// `flush()`: a promise of `{"sent":n,"pending":m}` (JSON text).
    pub fn flush(self: &Rc<Self>) -> Promise {
        let rt = self.clone();
        Promise::new(&mut move |resolve: Function, _reject: Function| {
            rt.run(true, |s, now| {
                s.tracker.persist(now);
                match s.tracker.flush() {
                    Ok(id) => s.flushes.push((id, resolve.clone())),
                    Err(done) => {
                        let _ =
                            resolve.call1(&JsValue::NULL, &JsValue::from_str(&flush_json(&done)));
                    }
                }
            });
        })
    }

    /// Fetches the rules document if the cache is missing or stale.
    pub fn fetch_rules(self: &Rc<Self>) {
        let Some(Some(request)) = self.run(false, |s, now| s.tracker.rules_request(now)) else {
            return;
        };
        let weak = Rc::downgrade(self);
        get_rules(
            &request.url,
            request.etag.as_deref(),
            move |status, etag, text| {
                if let Some(rt) = weak.upgrade() {
                    rt.run(true, |s, now| {
                        s.tracker.rules_fetched(status, etag, &text, now)
                    });
                }
            },
        );
    }
}

/// The consent choice the consent cookie in `cookies` remembers.
fn remembered_consent(cookies: &str) -> Option<Consent> {
    segmint_core::cookie::read_cookie(cookies, CONSENT_COOKIE).and_then(Consent::parse)
}

/// Hands a body to `navigator.sendBeacon` (falling back to a keepalive
/// fetch). The browser may refuse it (over its budget): its events are
/// stored either way.
fn beacon(url: &str, batch: &Batch) {
    let Some(w) = browser::window() else {
        return;
    };
    let (target, bytes) = wire(url, batch);
    // sendBeacon takes its content type from a blob.
    let body = browser::text_blob(bytes).unwrap_or_else(|| js_sys::Uint8Array::from(bytes).into());
    if browser::send_beacon(&w.navigator(), &target, &body).is_err() {
        // The page is going: nobody is left to hear the answer.
        browser::on_settled(&post(&target, bytes, true, None), |_| {});
    }
}

/// Where a batch goes and the bytes it sends: gzipped when the batch is
/// (the query says so), else its JSON.
fn wire<'a>(url: &str, batch: &'a Batch) -> (String, &'a [u8]) {
    match &batch.gzipped {
        Some(z) => (format!("{url}?compression=gzip"), z),
        None => (url.to_string(), batch.body.as_bytes()),
    }
}

/// Starts a POST of `bytes` as DESIGN's wire format has it: `text/plain`
/// (a CORS-simple request, no preflight an unloading page could lose),
/// copied out of wasm memory as they are (no UTF-16 round trip, and no
/// Blob, which costs the page an IPC round of its own). The promise of its
/// `Response`; `abort` can cancel it.
fn post(
    target: &str,
    bytes: &[u8],
    keepalive: bool,
    abort: Option<&web_sys::AbortController>,
) -> Promise {
    let Some(w) = browser::window() else {
        return Promise::reject(&JsValue::UNDEFINED);
    };
    let init = RequestInit::new();
    init.set_method("POST");
    init.set_body(&js_sys::Uint8Array::from(bytes));
    browser::set_text_plain(&init);
    browser::set_keepalive(&init, keepalive);
    if let Some(abort) = abort {
        init.set_signal(Some(&abort.signal()));
    }
    w.fetch_with_str_and_init(target, &init)
}

/// The outcome of a POST from what its `fetch` settled with, and whether
/// the endpoint says it accepts gzip bodies (`Accept-Encoding: gzip` on
/// the answer).
fn answer(answered: JsValue) -> (Outcome, bool) {
    let Ok(response) = answered.dyn_into::<Response>() else {
        return (Outcome::NetworkError, false);
    };
    // Read the (small) body: a keepalive request keeps its share of the
    // browser's 64 KB budget until its body is consumed.
    let _ = response.text();
    let headers = response.headers();
    let header = |name: &str| headers.get(name).ok().flatten();
    let accepts_gzip =
        header("Accept-Encoding").is_some_and(|v| segmint_core::message::contains(&v, "gzip"));
    let status = response.status();
    // A 307 or 308 keeps the POST and its body, and a success at the end
    // of it is one; anything else after a redirect never got the events.
    if response.redirected() && !(200..300).contains(&status) {
        let to = response.url();
        return (Outcome::Redirected { status, to }, accepts_gzip);
    }
    (
        Outcome::Status {
            status,
            retry_after: header("Retry-After"),
        },
        accepts_gzip,
    )
}

/// GETs the rules document with `If-None-Match`, then calls `done` with
/// the status (0 for a network error), the `ETag` and the body.
fn get_rules(
    url: &str,
    etag: Option<&str>,
    done: impl FnOnce(u16, Option<String>, String) + 'static,
) {
    let Some(w) = browser::window() else {
        return done(0, None, String::new());
    };
    let init = RequestInit::new();
    if let Some(etag) = etag {
        if let Ok(headers) = web_sys::Headers::new() {
            let _ = headers.set("If-None-Match", etag);
            init.set_headers(&headers);
        }
    }
    browser::on_settled(&w.fetch_with_str_and_init(url, &init), move |answered| {
        let Ok(response) = answered.dyn_into::<Response>() else {
            return done(0, None, String::new());
        };
        let etag = response.headers().get("ETag").ok().flatten();
        let status = response.status();
        match response.text() {
            Ok(text) => browser::on_settled(&text, move |text| {
                done(status, etag, text.as_string().unwrap_or_default())
            }),
            Err(_) => done(status, etag, String::new()),
        }
    });
}
