//! segmint: browser tracking and on-device personalization, compiled to
//! WebAssembly.
//!
//! This crate is the thin wasm-bindgen layer: it adapts the browser
//! (storage, cookies, fetch and beacons, timers, page lifecycle) to
//! [`segmint_core`], where all the logic lives. The idiomatic JavaScript
//! API (`load()`, buffering calls made before the wasm is ready, turning
//! values into JSON, banner slots) is the hand-written facade in `js/`;
//! the methods here take and return JSON text so the glue stays small.
//!
//! No method can panic the instance: errors come back as JSON values
//! (`{"code":..,"message":..}`), never as exceptions thrown through wasm.

mod browser;
mod runtime;

// Talc instead of the default dlmalloc: less code and faster for the many
// small strings the SDK makes. Single-threaded wasm only.
#[cfg(all(target_arch = "wasm32", not(target_feature = "atomics")))]
#[global_allocator]
static ALLOCATOR: talc::wasm::WasmDynamicTalc = talc::wasm::new_wasm_dynamic_allocator();

use runtime::Runtime;
use segmint_core::config::{Config, Consent};
use segmint_core::json::{write_string, write_strings, Value};
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

/// A running segmint instance (one per page).
#[wasm_bindgen]
pub struct Segmint {
    rt: Rc<Runtime>,
    settings: String,
}

/// The result of a call: `None` on success, or the error as JSON.
type CallResult = Option<String>;

fn outcome(r: Option<Result<(), segmint_core::Error>>) -> CallResult {
    match r {
        Some(Ok(())) => None,
        Some(Err(e)) => Some(e.to_json()),
        None => Some(r#"{"code":"busy","message":"segmint is busy; try again"}"#.into()),
    }
}

#[wasm_bindgen]
impl Segmint {
    /// Starts segmint with `options` (JSON text of `load()`'s options).
    /// `emit(type, json)` hears `error`, `segments` and `debug` notices.
    /// `engine_later`: this is the build split in two, and the module
    /// with the segment engine and delivery's sending comes later
    /// (`engineArrived`). `host`: a `Host` of `js/host.js`, which keeps
    /// the timer, hears the page's lifecycle and makes the requests.
    /// Throws (as a JSON string) on invalid options.
    #[wasm_bindgen(constructor)]
    pub fn new(
        options: &str,
        emit: js_sys::Function,
        engine_later: bool,
        host: JsValue,
    ) -> Result<Segmint, JsValue> {
        browser::install_number_codec();
        let config = Config::from_json(options).map_err(|e| JsValue::from_str(&e.to_json()))?;
        let mut settings = format!(
            "{{\"debug\":{},\"sticky\":{},\"captureClicks\":{},\"captureSearch\":{},\"antiFlickerTimeoutMs\":",
            config.debug, config.sticky, config.capture_clicks, config.capture_search
        );
        segmint_core::json::write_number(&mut settings, config.anti_flicker_timeout_ms);
        settings.push('}');
        Ok(Segmint {
            rt: Runtime::start(config, emit, host.unchecked_into(), engine_later),
            settings,
        })
    }

    /// Sends everything queued now. Returns the flush's id: the host's
    /// `settled(id)` resolves to `{"sent":n,"pending":m}` (JSON text) once
    /// every event queued at the call was answered.
    pub fn flush(&self) -> u32 {
        self.rt.flush()
    }

    /// A call that changes state, by `kind`: 0 to 5 record (see
    /// [`Segmint::record`]), 6 `pageChanged`, 7 `reset`, 8
    /// `engineArrived`, 9 `consent(a)`. `None` on success, or the error
    /// as JSON. One export for them all, as for the reads.
    pub fn call(&self, kind: u8, a: Option<String>, b: &str) -> CallResult {
        match kind {
            0..=5 => return self.record(kind, a, b),
            6 => self.page_changed(),
            7 => self.reset(),
            8 => self.engine_arrived(),
            _ => return self.consent(a.as_deref().unwrap_or_default()),
        }
        None
    }

    /// Reads, by `what`: 0 `anonymousId`, 1 `userId`, 2 `consentState`,
    /// 3 `segments` (JSON array), 4 `inSegment(arg)` (`"1"` or nothing), 5
    /// `traits` (JSON object), 6 `decide(arg)`, 7 `rulesVersion`, 8
    /// `rulesRequest`, 9 `settings`, 10 `queued`. One export for them
    /// all: each export costs the wasm and its glue a shim of its own.
    pub fn get(&self, what: u8, arg: Option<String>) -> Option<String> {
        let arg = arg.as_deref().unwrap_or_default();
        match what {
            0 => Some(self.anonymous_id()),
            1 => self.user_id(),
            2 => Some(self.consent_state()),
            3 => Some(self.segments()),
            4 => self.in_segment(arg).then(|| "1".into()),
            5 => Some(self.traits()),
            6 => Some(self.decide(arg)),
            7 => self.rules_version(),
            8 => self.rules_request(),
            9 => Some(self.settings()),
            _ => Some(self.queued().to_string()),
        }
    }
}

/// The calls and reads behind [`Segmint::call`] and [`Segmint::get`], for
/// Rust callers (the browser tests).
impl Segmint {
    /// The answer to the rules fetch `rulesRequest` asked for: its status
    /// (0 for a network error), `ETag` and body. (The facade hands it to
    /// the host, which reports it as any rules answer.)
    pub fn rules_answer(&self, status: u16, etag: Option<String>, text: &str) {
        self.rt.run(true, |s, now| {
            s.tracker.rules_fetched(status, etag, text, now)
        });
    }

    /// A call that records, by `kind`: 0 `track(a, b)`, 1 `page(a, b)`
    /// (reading the page's location and title afresh), 2 `identify(a, b)`,
    /// 3 `productClicked(b)`, 4 `productsSearched(a, b)`, 5
    /// `orderCompleted(b)`; `b` is JSON object text.
    pub fn record(&self, kind: u8, a: Option<String>, b: &str) -> CallResult {
        outcome(self.rt.run(false, |s, now| {
            let t = &mut s.tracker;
            let text = a.as_deref().unwrap_or_default();
            match kind {
                0 => t.track(text, b, now),
                1 => {
                    t.set_page(s.host.page_info().0, now);
                    t.page(a.as_deref(), b, now)
                }
                2 => t.identify(a.as_deref(), b, now),
                3 => t.product_clicked(b, now),
                4 => t.products_searched(text, b, now),
                _ => t.order_completed(b, now),
            }
        }))
    }

    /// The URL changed without a reload (single-page navigation, which the
    /// facade notices before recording): events from now on carry the
    /// page they happen on, and segments see the new `context.page`.
    pub fn page_changed(&self) {
        self.rt.run(false, |s, now| {
            s.tracker.set_page(s.host.page_info().0, now)
        });
    }

    /// `reset()`: a new anonymous id (and cookie); user, traits, profile
    /// and segments forgotten.
    pub fn reset(&self) {
        self.rt.run(false, |s, now| {
            s.tracker.reset(s.host.random_bytes(), now);
            s.write_cookie();
        });
    }

    /// `consent("granted" | "denied" | "pending")`. The choice is
    /// remembered in a cookie holding only the choice.
    pub fn consent(&self, state: &str) -> CallResult {
        let Some(consent) = Consent::parse(state) else {
            return Some(
                segmint_core::Error::InvalidArgument {
                    argument: "consent(state)".into(),
                    reason: "expected \"granted\", \"denied\" or \"pending\"".into(),
                }
                .to_json(),
            );
        };
        self.rt.run(true, |s, now| {
            s.tracker.set_consent(consent, now);
            s.apply_consent(consent);
        });
        self.rt
            .run(false, |s, _| s.host.announce_consent(consent.as_str()));
        self.rt.adopt();
        self.rt.fetch_rules();
        None
    }

    /// The later module is instantiated (its functions are in the table
    /// this module calls them through): the rules at start are put in
    /// force over the events recorded meanwhile, and what waits in storage
    /// is sent, with the queues earlier page views left.
    pub fn engine_arrived(&self) {
        self.rt.run(true, |s, now| s.tracker.engine_arrived(now));
        self.rt.adopt();
        // A damaged cached document is fetched afresh.
        self.rt.fetch_rules();
    }

    /// Resolved options the facade acts on (JSON).
    pub fn settings(&self) -> String {
        self.settings.clone()
    }

    /// The consent in force.
    pub fn consent_state(&self) -> String {
        self.rt
            .run(false, |s, _| s.tracker.consent().as_str().to_string())
            .unwrap_or_default()
    }

    /// The anonymous id.
    pub fn anonymous_id(&self) -> String {
        self.rt
            .run(false, |s, _| s.tracker.anonymous_id().to_string())
            .unwrap_or_default()
    }

    /// The user id, after `identify`.
    pub fn user_id(&self) -> Option<String> {
        self.rt
            .run(false, |s, _| s.tracker.user_id().map(str::to_string))
            .flatten()
    }

    /// Current segment ids, highest priority first (JSON array).
    pub fn segments(&self) -> String {
        self.rt
            .run(false, |s, _| {
                let mut out = String::new();
                write_strings(&mut out, s.tracker.segments());
                out
            })
            .unwrap_or_else(|| "[]".into())
    }

    /// Whether the user is in segment `id`.
    pub fn in_segment(&self, id: &str) -> bool {
        self.rt
            .run(false, |s, _| s.tracker.segments().iter().any(|x| x == id))
            .unwrap_or(false)
    }

    /// The user's traits: from `identify`, and computed (JSON object).
    pub fn traits(&self) -> String {
        self.rt
            .run(false, |s, now| s.tracker.traits_json(now))
            .unwrap_or_else(|| "{}".into())
    }

    /// The banner for a slot with templates for `offered` (JSON array of
    /// segment ids): `{"segment":..,"variation":..,"template":..}`.
    pub fn decide(&self, offered: &str) -> String {
        let ids = Value::parse(offered)
            .ok()
            .and_then(|v| v.strings())
            .unwrap_or_default();
        self.rt
            .run(false, |s, _| s.tracker.decide(&ids).to_json())
            .unwrap_or_else(|| {
                r#"{"segment":null,"variation":"default","template":"default"}"#.into()
            })
    }

    /// The rules fetch due now, as `{"url":..,"etag":..}` (the `etag` only
    /// when one is cached), counted as in flight until its answer (the
    /// host's `rulesAnswered`): the facade makes it at start, with the
    /// request it began beside the wasm's when that one matches. Nothing
    /// when the rules in force are fresh, there is no `rulesUrl`, or
    /// consent allows no request.
    pub fn rules_request(&self) -> Option<String> {
        self.rt
            .run(false, |s, now| {
                let request = s.tracker.rules_request(now)?;
                let mut out = String::from("{\"url\":");
                write_string(&mut out, &request.url);
                if let Some(etag) = &request.etag {
                    out.push_str(",\"etag\":");
                    write_string(&mut out, etag);
                }
                out.push('}');
                Some(out)
            })
            .flatten()
    }

    /// The version of the rules in force, if any.
    pub fn rules_version(&self) -> Option<String> {
        self.rt
            .run(false, |s, _| s.tracker.rules_version().map(str::to_string))
            .flatten()
    }

    /// Events waiting in the queue.
    pub fn queued(&self) -> usize {
        self.rt.run(false, |s, _| s.tracker.queued()).unwrap_or(0)
    }
}
