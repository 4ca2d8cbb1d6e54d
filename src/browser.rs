//! Browser adapters: `localStorage` as a [`Store`], cookies, the page,
//! randomness, regular expressions, and the few bindings web-sys keeps
//! behind its unstable flag (Web Locks), or that it binds loosely (Blob).
//!
//! Every call that can throw in JavaScript is bound with `catch`, so an
//! exception becomes a value here instead of unwinding through the wasm
//! instance.

use js_sys::{Function, Promise, Reflect};
use segmint_core::condition::Host;
use segmint_core::cookie::{
    find_registrable_domain, read_cookie, set_cookie_string, CookieAttributes,
};
use segmint_core::message::PageInfo;
use segmint_core::store::Store;
use std::cell::RefCell;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{HtmlDocument, Storage, Window};

#[wasm_bindgen]
extern "C" {
    /// `navigator.locks` (Web Locks API).
    pub type LockManager;
    /// `locks.request(name, callback)`: runs `callback` holding the lock.
    #[wasm_bindgen(method, catch)]
    pub fn request(this: &LockManager, name: &str, callback: &Function)
        -> Result<Promise, JsValue>;

    /// `new Blob(parts, options)`.
    #[wasm_bindgen(js_name = Blob)]
    type TextBlob;
    #[wasm_bindgen(constructor, js_class = "Blob", catch)]
    fn new_blob(parts: &js_sys::Array, options: &JsValue) -> Result<TextBlob, JsValue>;

    /// `navigator`, for `sendBeacon` with any body type.
    #[wasm_bindgen(js_name = Navigator)]
    type BeaconNavigator;
    #[wasm_bindgen(method, js_class = "Navigator", js_name = sendBeacon, catch)]
    fn send_beacon(this: &BeaconNavigator, url: &str, data: &JsValue) -> Result<bool, JsValue>;

    /// A promise, for `then(onFulfilled, onRejected)` with plain functions
    /// (js-sys binds it only with typed closures).
    #[wasm_bindgen(js_name = Promise)]
    type Thenable;
    #[wasm_bindgen(method, js_class = "Promise")]
    fn then(this: &Thenable, on_fulfilled: &Function, on_rejected: &Function);

    #[wasm_bindgen(js_name = RegExp, catch)]
    fn new_regexp(pattern: &str, flags: &str) -> Result<js_sys::RegExp, JsValue>;
}

/// Calls `f` once with what `promise` fulfils with, or, if it rejects,
/// with the rejection (never a `Response`). Plain promise callbacks rather
/// than a futures executor: the wasm carries no async runtime.
pub fn on_settled(promise: &Promise, f: impl FnOnce(JsValue) + 'static) {
    // One callback for both outcomes: a promise settles only once.
    let callback = once(f);
    promise
        .unchecked_ref::<Thenable>()
        .then(&callback, &callback);
}

/// `f` as a JavaScript function to be called once.
pub fn once(f: impl FnOnce(JsValue) + 'static) -> Function {
    boxed_once(Box::new(f))
}

/// [`once`]'s body, compiled once for every caller.
fn boxed_once(f: Box<dyn FnOnce(JsValue)>) -> Function {
    Closure::once_into_js(f).unchecked_into()
}

/// The window, if this is a page (not a worker or Node).
pub fn window() -> Option<Window> {
    web_sys::window()
}

/// Milliseconds since the epoch.
pub fn now() -> f64 {
    js_sys::Date::now()
}

/// `n` bytes from `crypto.getRandomValues`, or from `Math.random` where
/// the page has no Web Crypto (the ids stay unique, not unguessable).
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    let filled = window()
        .and_then(|w| w.crypto().ok())
        .is_some_and(|c| c.get_random_values_with_u8_array(&mut bytes).is_ok());
    if !filled {
        for b in &mut bytes {
            *b = (js_sys::Math::random() * 256.0) as u8;
        }
    }
    bytes
}

/// `localStorage` as a [`Store`]. Where the browser refuses storage
/// (disabled, private mode, sandboxed frame) reads find nothing and writes
/// fail, and the tracker keeps events in memory.
pub struct LocalStore {
    storage: Option<Storage>,
}

impl LocalStore {
    /// The page's `localStorage`, if it can be had.
    pub fn open() -> LocalStore {
        LocalStore {
            storage: window().and_then(|w| w.local_storage().ok().flatten()),
        }
    }
}

impl Store for LocalStore {
    fn get(&self, key: &str) -> Option<String> {
        self.storage.as_ref()?.get_item(key).ok().flatten()
    }

    fn set(&mut self, key: &str, value: &str) -> Result<(), String> {
        let storage = self.storage.as_ref().ok_or("localStorage unavailable")?;
        storage.set_item(key, value).map_err(|e| {
            Reflect::get(&e, &"name".into())
                .ok()
                .and_then(|n| n.as_string())
                .unwrap_or_else(|| "write refused".into())
        })
    }

    fn remove(&mut self, key: &str) {
        if let Some(s) = &self.storage {
            let _ = s.remove_item(key);
        }
    }

    fn keys(&self) -> Vec<String> {
        let Some(s) = &self.storage else {
            return Vec::new();
        };
        let n = s.length().unwrap_or(0);
        (0..n).filter_map(|i| s.key(i).ok().flatten()).collect()
    }
}

/// `sessionStorage` value at `key` (this tab's), and a setter.
pub fn session_get(key: &str) -> Option<String> {
    window()?.session_storage().ok()??.get_item(key).ok()?
}

/// The `localStorage` key whose `storage` events carry a consent choice
/// to this site's other tabs.
pub const CONSENT_SIGNAL_KEY: &str = "sgm_consent";

/// Tells this site's other tabs of a consent choice made in this one: a
/// `storage` event carrying `state`, with nothing left in storage.
pub fn announce_consent(state: &str) {
    if let Some(s) = window().and_then(|w| w.local_storage().ok().flatten()) {
        // Removed first as well: setting the value a key already holds
        // fires no event.
        let _ = s.remove_item(CONSENT_SIGNAL_KEY);
        let _ = s.set_item(CONSENT_SIGNAL_KEY, state);
        let _ = s.remove_item(CONSENT_SIGNAL_KEY);
    }
}

/// Removes `sessionStorage[key]`.
pub fn session_remove(key: &str) {
    if let Some(s) = window().and_then(|w| w.session_storage().ok().flatten()) {
        let _ = s.remove_item(key);
    }
}

/// Writes `sessionStorage[key]`; failures are ignored (it is a hint).
pub fn session_set(key: &str, value: &str) {
    if let Some(s) = window().and_then(|w| w.session_storage().ok().flatten()) {
        let _ = s.set_item(key, value);
    }
}

fn html_document() -> Option<HtmlDocument> {
    window()?.document()?.dyn_into::<HtmlDocument>().ok()
}

/// `document.cookie` (empty where cookies are unavailable).
pub fn cookies() -> String {
    html_document()
        .and_then(|d| d.cookie().ok())
        .unwrap_or_default()
}

fn set_cookie(text: &str) {
    if let Some(d) = html_document() {
        let _ = d.set_cookie(text);
    }
}

/// How the anonymous-id cookie is written.
pub struct CookieJar {
    /// Cookie name.
    pub name: String,
    /// `Domain=`, probed or configured.
    pub domain: Option<String>,
    /// Lifetime in seconds.
    pub max_age_secs: u64,
    /// `Secure` on https pages.
    pub secure: bool,
}

/// localStorage cache of the probed domain: `hostname=domain`.
const DOMAIN_CACHE_KEY: &str = "sgm_domain";

impl CookieJar {
    /// The jar for this page. Without a configured domain, the registrable
    /// domain is probed once (the browser refuses cookies on public
    /// suffixes) and cached, because a cookie write followed by a read is
    /// slow in some browsers.
    pub fn for_page(
        name: &str,
        domain: Option<String>,
        max_age_days: f64,
        store: &mut dyn Store,
        allowed: bool,
    ) -> CookieJar {
        let location = window().map(|w| w.location());
        let host = location
            .as_ref()
            .and_then(|l| l.hostname().ok())
            .unwrap_or_default();
        let secure = location.and_then(|l| l.protocol().ok()).as_deref() == Some("https:");
        let domain = domain.or_else(|| {
            // Known from an earlier visit even without consent, so a
            // visit denied at start can delete the cookie it left.
            let cached = store.get(DOMAIN_CACHE_KEY).and_then(|c| {
                let (h, d) = c.split_once('=')?;
                (h == host).then(|| d.to_string())
            });
            if let Some(d) = cached {
                return (!d.is_empty()).then_some(d);
            }
            if !allowed {
                return None;
            }
            let found = find_registrable_domain(&host, |candidate| {
                let probe = CookieAttributes {
                    domain: Some(candidate),
                    max_age_secs: 10,
                    secure,
                };
                set_cookie(&set_cookie_string("sgm_probe", "1", &probe));
                let ok = read_cookie(&cookies(), "sgm_probe") == Some("1");
                if ok {
                    set_cookie(&set_cookie_string(
                        "sgm_probe",
                        "",
                        &CookieAttributes {
                            max_age_secs: 0,
                            ..probe
                        },
                    ));
                }
                ok
            });
            let _ = store.set(
                DOMAIN_CACHE_KEY,
                &format!("{host}={}", found.as_deref().unwrap_or_default()),
            );
            found
        });
        CookieJar {
            name: name.to_string(),
            domain,
            max_age_secs: (max_age_days * 86_400.0) as u64,
            secure,
        }
    }

    fn attributes(&self, max_age_secs: u64) -> CookieAttributes<'_> {
        CookieAttributes {
            domain: self.domain.as_deref(),
            max_age_secs,
            secure: self.secure,
        }
    }

    /// Sets (or renews) cookie `name` for the jar's domain and lifetime.
    pub fn write(&self, name: &str, value: &str) {
        set_cookie(&set_cookie_string(
            name,
            value,
            &self.attributes(self.max_age_secs),
        ));
    }

    /// Deletes cookie `name` (also a host-only one left from before).
    pub fn delete(&self, name: &str) {
        set_cookie(&set_cookie_string(name, "", &self.attributes(0)));
        set_cookie(&set_cookie_string(
            name,
            "",
            &CookieAttributes {
                domain: None,
                max_age_secs: 0,
                secure: self.secure,
            },
        ));
    }
}

/// The page as events describe it.
pub fn page_info() -> PageInfo {
    let Some(w) = window() else {
        return PageInfo::default();
    };
    let loc = w.location();
    let doc = w.document();
    let nav = w.navigator();
    let text = |r: Result<String, JsValue>| r.unwrap_or_default();
    PageInfo {
        url: text(loc.href()),
        path: text(loc.pathname()),
        search: text(loc.search()),
        referrer: doc.as_ref().map(|d| d.referrer()).unwrap_or_default(),
        title: doc.as_ref().map(|d| d.title()).unwrap_or_default(),
        user_agent: text(nav.user_agent()),
        locale: nav.language().unwrap_or_default(),
    }
}

/// `navigator.globalPrivacyControl === true`
pub fn global_privacy_control() -> bool {
    window()
        .and_then(|w| Reflect::get(&w.navigator(), &"globalPrivacyControl".into()).ok())
        .and_then(|v| v.as_bool())
        .unwrap_or(false)
}

/// `navigator.onLine` (true where unknown).
pub fn online() -> bool {
    window().is_none_or(|w| w.navigator().on_line())
}

/// `navigator.locks`, where the browser has Web Locks.
pub fn lock_manager() -> Option<LockManager> {
    let locks = Reflect::get(&window()?.navigator(), &"locks".into()).ok()?;
    (!locks.is_undefined() && !locks.is_null()).then(|| locks.unchecked_into())
}

/// JavaScript's number conversions for the core's JSON (see
/// [`segmint_core::json::NumberCodec`]): exactly what `JSON.stringify`
/// prints, and no float code in the wasm.
pub fn install_number_codec() {
    fn format(n: f64, out: &mut String) {
        match js_sys::Number::from(n).to_string_with_radix(10) {
            Ok(text) => out.push_str(&String::from(text)),
            Err(_) => out.push_str("null"),
        }
    }
    fn parse(text: &str) -> Option<f64> {
        let n = js_sys::Number::parse_float(text);
        (!n.is_nan()).then_some(n)
    }
    segmint_core::json::set_number_codec(segmint_core::json::NumberCodec { format, parse });
}

/// Whether `fetch` honours `keepalive`: where it does, `Request` has the
/// `keepalive` attribute (Firefox from 133; Chrome and Safari long
/// before). Where it does not, the option is silently ignored.
pub fn keepalive_fetch() -> bool {
    Reflect::get(&js_sys::global(), &"Request".into())
        .and_then(|request| Reflect::get(&request, &"prototype".into()))
        .and_then(|prototype| Reflect::has(&prototype, &"keepalive".into()))
        .unwrap_or(false)
}

/// Sets `init.keepalive` (web-sys has no setter for it yet).
pub fn set_keepalive(init: &web_sys::RequestInit, keepalive: bool) {
    let _ = Reflect::set(init, &"keepalive".into(), &JsValue::from_bool(keepalive));
}

/// Sets `init.headers` to `Content-Type: text/plain;charset=UTF-8`.
pub fn set_text_plain(init: &web_sys::RequestInit) {
    let headers = js_sys::Object::new();
    let _ = Reflect::set(&headers, &"Content-Type".into(), &TEXT_PLAIN.into());
    let _ = Reflect::set(init, &"headers".into(), &headers);
}

const TEXT_PLAIN: &str = "text/plain;charset=UTF-8";

/// `bytes` as a `text/plain;charset=UTF-8` blob, copied out of wasm
/// memory (no UTF-8 to UTF-16 round trip).
pub fn text_blob(bytes: &[u8]) -> Option<JsValue> {
    let options = js_sys::Object::new();
    Reflect::set(&options, &"type".into(), &TEXT_PLAIN.into()).ok()?;
    let parts = js_sys::Array::of1(&js_sys::Uint8Array::from(bytes));
    TextBlob::new_blob(&parts, &options).ok().map(JsValue::from)
}

/// `navigator.sendBeacon(url, body)`: whether the browser took it.
pub fn send_beacon(
    navigator: &web_sys::Navigator,
    url: &str,
    body: &JsValue,
) -> Result<bool, JsValue> {
    navigator
        .unchecked_ref::<BeaconNavigator>()
        .send_beacon(url, body)
}

/// The browser as the conditions' [`Host`]: its own `RegExp` (compiled
/// once per pattern) and `toLowerCase`.
#[derive(Default)]
pub struct JsHost {
    /// (pattern, case-insensitive, compiled or invalid): rules hold few.
    cache: RefCell<Vec<(String, bool, Option<js_sys::RegExp>)>>,
}

impl Host for JsHost {
    fn lowercase(&self, text: &str) -> String {
        String::from(js_sys::JsString::from(text).to_lower_case())
    }

    fn regex_test(&self, pattern: &str, case_insensitive: bool, text: &str) -> Option<bool> {
        let mut cache = self.cache.try_borrow_mut().ok()?;
        let index = match cache
            .iter()
            .position(|(p, i, _)| p == pattern && *i == case_insensitive)
        {
            Some(index) => index,
            None => {
                let compiled = new_regexp(pattern, if case_insensitive { "i" } else { "" }).ok();
                cache.push((pattern.to_string(), case_insensitive, compiled));
                cache.len() - 1
            }
        };
        let regex = cache.get(index).and_then(|(_, _, r)| r.as_ref());
        regex.map(|r| r.test(text))
    }
}

/// Blocks of queued heads in the page's JavaScript heap (see
/// `segmint_core::queue`), which gives their memory back once they are
/// delivered: kept in the wasm's memory, a burst of events would leave its
/// high-water mark there for the rest of the page view (WebAssembly memory
/// never shrinks). A block crosses the boundary in one call.
#[derive(Default)]
pub struct JsBlocks {
    texts: js_sys::Array,
    free: Vec<u32>,
}

impl segmint_core::queue::HeadBlocks for JsBlocks {
    // As bytes: a copy each way, where a JS string costs wasm-bindgen's
    // per-character loop to read back (7 ms of main thread per 1,000
    // events in the benchmark's burst).
    fn put(&mut self, text: String) -> u32 {
        let text: JsValue = js_sys::Uint8Array::from(text.as_bytes()).into();
        match self.free.pop() {
            Some(id) => {
                self.texts.set(id, text);
                id
            }
            None => self.texts.push(&text).saturating_sub(1),
        }
    }

    fn get(&self, id: u32) -> std::borrow::Cow<'_, str> {
        let bytes = self
            .texts
            .get(id)
            .dyn_into::<js_sys::Uint8Array>()
            .map(|b| b.to_vec())
            .unwrap_or_default();
        std::borrow::Cow::Owned(String::from_utf8(bytes).unwrap_or_default())
    }

    fn remove(&mut self, id: u32) {
        self.texts.set(id, JsValue::UNDEFINED);
        self.free.push(id);
    }
}
