//! Browser adapters: `localStorage` as a [`Store`], cookies, the page,
//! randomness, regular expressions, and the [`PageHost`] (`js/host.js`'s `Host`) that
//! does the runtime's timing, listening and networking.
//!
//! Every call that can throw in JavaScript is bound with `catch`, so an
//! exception becomes a value here instead of unwinding through the wasm
//! instance.

use js_sys::Function;
use segmint_core::condition::Host;
use segmint_core::cookie::{
    find_registrable_domain, read_cookie, set_cookie_string, CookieAttributes,
};
use segmint_core::message::PageInfo;
use segmint_core::store::Store;
use std::cell::RefCell;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

#[wasm_bindgen]
extern "C" {
    /// `js/host.js`'s `Host`: the runtime's timer, the page's lifecycle
    /// events and the network (see there). Every method is bound with
    /// `catch`: a host that throws leaves the runtime as it was.
    #[derive(Clone)]
    pub type PageHost;
    /// Starts listening, reporting to `report`; `keys` are the storage
    /// keys whose new values it passes on. Whether `fetch` honours
    /// `keepalive`.
    #[wasm_bindgen(method, catch)]
    pub fn start(this: &PageHost, report: &Function, keys: &str) -> Result<bool, JsValue>;
    /// (Re)arms the timer for `ms` from now; a negative `ms` disarms it.
    #[wasm_bindgen(method, catch)]
    pub fn arm(this: &PageHost, ms: f64) -> Result<(), JsValue>;
    /// Reports `PERSIST` in a microtask.
    #[wasm_bindgen(method, catch)]
    pub fn microtask(this: &PageHost) -> Result<(), JsValue>;
    /// POSTs batch `id`; its answer is reported.
    #[wasm_bindgen(method, catch)]
    pub fn post(
        this: &PageHost,
        id: f64,
        url: &str,
        body: &[u8],
        keepalive: bool,
    ) -> Result<(), JsValue>;
    /// Aborts batch `id`'s request.
    #[wasm_bindgen(method, catch)]
    pub fn abort(this: &PageHost, id: f64) -> Result<(), JsValue>;
    /// `navigator.sendBeacon` for a departing page.
    #[wasm_bindgen(method, catch)]
    pub fn beacon(this: &PageHost, url: &str, body: &[u8]) -> Result<(), JsValue>;
    /// GETs the rules document; its answer is reported.
    #[wasm_bindgen(method, catch)]
    pub fn rules(this: &PageHost, url: &str, etag: Option<&str>) -> Result<(), JsValue>;
    /// Flush `id` has settled: `json` is `{"sent":n,"pending":m}`.
    #[wasm_bindgen(method, catch)]
    pub fn flushed(this: &PageHost, id: u32, json: &str) -> Result<(), JsValue>;
    /// Takes the cross-tab queue lock; reports `LOCKED` holding it.
    #[wasm_bindgen(method, catch)]
    pub fn lock(this: &PageHost) -> Result<(), JsValue>;
    /// What the page is like at start (the `FACT_` bits).
    #[wasm_bindgen(method, catch)]
    fn facts(this: &PageHost) -> Result<u32, JsValue>;
    /// The page's fields, a line each (see [`PageHost::page_info`]).
    #[wasm_bindgen(method, catch)]
    fn page(this: &PageHost) -> Result<String, JsValue>;
    /// `document.cookie`.
    #[wasm_bindgen(method, catch)]
    fn cookie(this: &PageHost) -> Result<String, JsValue>;
    #[wasm_bindgen(method, catch, js_name = setCookie)]
    fn set_cookie(this: &PageHost, text: &str) -> Result<(), JsValue>;
    /// Storage `area` ([`LOCAL`] or [`SESSION`]) at `key`.
    #[wasm_bindgen(method, catch)]
    fn read(this: &PageHost, area: u32, key: &str) -> Result<Option<String>, JsValue>;
    /// Writes `key`: `None`, or the browser's reason for refusing.
    #[wasm_bindgen(method, catch)]
    fn write(this: &PageHost, area: u32, key: &str, value: &str)
        -> Result<Option<String>, JsValue>;
    #[wasm_bindgen(method, catch)]
    fn remove(this: &PageHost, area: u32, key: &str) -> Result<(), JsValue>;
    /// segmint's `localStorage` keys, a line each.
    #[wasm_bindgen(method, catch)]
    fn keys(this: &PageHost) -> Result<String, JsValue>;
    /// Fills `bytes` with random ones.
    #[wasm_bindgen(method, catch)]
    fn random(this: &PageHost, bytes: &mut [u8]) -> Result<(), JsValue>;

    #[wasm_bindgen(js_name = RegExp, catch)]
    fn new_regexp(pattern: &str, flags: &str) -> Result<js_sys::RegExp, JsValue>;
}

/// `localStorage`, as the host numbers storage areas.
const LOCAL: u32 = 0;
/// `sessionStorage` (this tab's).
const SESSION: u32 = 1;

/// [`PageHost::facts`]: the browser is online.
const FACT_ONLINE: u32 = 1;
/// Global Privacy Control asks not to be tracked.
const FACT_GPC: u32 = 2;
/// `fetch` honours `keepalive`.
const FACT_KEEPALIVE: u32 = 4;

/// Milliseconds since the epoch.
pub fn now() -> f64 {
    js_sys::Date::now()
}

/// What the page is like at start, from the host.
pub struct Facts {
    /// `navigator.onLine` (true where unknown).
    pub online: bool,
    /// `navigator.globalPrivacyControl === true`.
    pub gpc: bool,
    /// Whether `fetch` honours `keepalive`.
    pub keepalive_fetch: bool,
}

impl PageHost {
    /// What the page is like at start.
    pub fn start_facts(&self) -> Facts {
        let bits = self.facts().unwrap_or(FACT_ONLINE);
        Facts {
            online: bits & FACT_ONLINE != 0,
            gpc: bits & FACT_GPC != 0,
            keepalive_fetch: bits & FACT_KEEPALIVE != 0,
        }
    }

    /// `n` random bytes: from `crypto.getRandomValues`, or from
    /// `Math.random` where the page has no Web Crypto (the ids stay
    /// unique, not unguessable).
    pub fn random_bytes<const N: usize>(&self) -> [u8; N] {
        let mut bytes = [0u8; N];
        let _ = self.random(&mut bytes);
        bytes
    }

    /// `sessionStorage` value at `key` (this tab's).
    pub fn session_get(&self, key: &str) -> Option<String> {
        self.read(SESSION, key).ok().flatten()
    }

    /// Writes `sessionStorage[key]`; failures are ignored (it is a hint).
    pub fn session_set(&self, key: &str, value: &str) {
        let _ = self.write(SESSION, key, value);
    }

    /// Removes `sessionStorage[key]`.
    pub fn session_remove(&self, key: &str) {
        let _ = self.remove(SESSION, key);
    }

    /// `document.cookie` (empty where cookies are unavailable).
    pub fn cookies(&self) -> String {
        self.cookie().unwrap_or_default()
    }

    /// Tells this site's other tabs of a consent choice made in this one:
    /// a `storage` event carrying `state`, with nothing left in storage.
    pub fn announce_consent(&self, state: &str) {
        // Removed first as well: setting the value a key already holds
        // fires no event.
        let _ = self.remove(LOCAL, CONSENT_SIGNAL_KEY);
        let _ = self.write(LOCAL, CONSENT_SIGNAL_KEY, state);
        let _ = self.remove(LOCAL, CONSENT_SIGNAL_KEY);
    }

    /// The page as events describe it, and its hostname and whether it is
    /// served over https (for the cookie).
    pub fn page_info(&self) -> (PageInfo, String, bool) {
        let text = self.page().unwrap_or_default();
        let mut fields = text.split('\n').map(str::to_string);
        let mut next = || fields.next().unwrap_or_default();
        let page = PageInfo {
            url: next(),
            path: next(),
            search: next(),
            referrer: next(),
            title: next(),
            user_agent: next(),
            locale: next(),
        };
        let host = next();
        (page, host, next() == "https:")
    }
}

/// `localStorage` as a [`Store`], through the host. Where the browser
/// refuses storage (disabled, private mode, sandboxed frame) reads find
/// nothing and writes fail, and the tracker keeps events in memory.
pub struct LocalStore {
    host: PageHost,
}

impl LocalStore {
    /// The page's `localStorage`.
    pub fn open(host: &PageHost) -> LocalStore {
        LocalStore { host: host.clone() }
    }
}

impl Store for LocalStore {
    fn get(&self, key: &str) -> Option<String> {
        self.host.read(LOCAL, key).ok().flatten()
    }

    fn set(&mut self, key: &str, value: &str) -> Result<(), String> {
        match self.host.write(LOCAL, key, value) {
            Ok(None) => Ok(()),
            Ok(Some(reason)) => Err(reason),
            Err(_) => Err("write refused".into()),
        }
    }

    fn remove(&mut self, key: &str) {
        let _ = self.host.remove(LOCAL, key);
    }

    /// segmint's keys (`sgm_`): the only ones the core looks at.
    fn keys(&self) -> Vec<String> {
        let keys = self.host.keys().unwrap_or_default();
        keys.split('\n')
            .filter(|k| !k.is_empty())
            .map(str::to_string)
            .collect()
    }
}

/// The `localStorage` key whose `storage` events carry a consent choice
/// to this site's other tabs.
pub const CONSENT_SIGNAL_KEY: &str = "sgm_consent";

/// How the anonymous-id cookie is written.
pub struct CookieJar {
    host: PageHost,
    /// Cookie name.
    pub name: String,
    /// `Domain=`, probed or configured.
    pub domain: Option<String>,
    /// The page's hostname, where the domain probe starts.
    hostname: String,
    /// Lifetime in seconds.
    pub max_age_secs: u64,
    /// `Secure` on https pages.
    pub secure: bool,
}

/// localStorage cache of the probed domain: `hostname=domain`.
const DOMAIN_CACHE_KEY: &str = "sgm_domain";

impl CookieJar {
    /// The jar for a page on `hostname` (`secure` when served over
    /// https), with the configured domain if there is one.
    pub fn new(
        host: &PageHost,
        name: &str,
        domain: Option<String>,
        max_age_days: f64,
        hostname: String,
        secure: bool,
    ) -> CookieJar {
        CookieJar {
            host: host.clone(),
            name: name.to_string(),
            domain,
            hostname,
            max_age_secs: (max_age_days * 86_400.0) as u64,
            secure,
        }
    }

    /// Without a configured domain: the registrable domain, probed once
    /// (the browser refuses cookies on public suffixes) and cached,
    /// because a cookie write followed by a read is slow in some browsers.
    /// The cache is read even when cookies are not `allowed`, so a visit
    /// denied at start can delete the cookie an earlier one left.
    pub fn find_domain(&mut self, allowed: bool) {
        let host = &self.host;
        let hostname = self.hostname.as_str();
        let mut store = LocalStore::open(host);
        let cached = store.get(DOMAIN_CACHE_KEY);
        if let Some((h, d)) = cached.as_deref().and_then(|c| c.split_once('=')) {
            if h == hostname {
                self.domain = (!d.is_empty()).then(|| d.to_string());
                return;
            }
        }
        if !allowed {
            return;
        }
        let secure = self.secure;
        let found = find_registrable_domain(hostname, |candidate| {
            let probe = CookieAttributes {
                domain: Some(candidate),
                max_age_secs: 10,
                secure,
            };
            let _ = host.set_cookie(&set_cookie_string("sgm_probe", "1", &probe));
            let ok = read_cookie(&host.cookies(), "sgm_probe") == Some("1");
            if ok {
                let _ = host.set_cookie(&set_cookie_string(
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
        let mut cache = String::from(hostname);
        cache.push('=');
        cache.push_str(found.as_deref().unwrap_or_default());
        let _ = store.set(DOMAIN_CACHE_KEY, &cache);
        self.domain = found;
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
        let _ = self.host.set_cookie(&set_cookie_string(
            name,
            value,
            &self.attributes(self.max_age_secs),
        ));
    }

    /// Deletes cookie `name` (also a host-only one left from before).
    pub fn delete(&self, name: &str) {
        let _ = self
            .host
            .set_cookie(&set_cookie_string(name, "", &self.attributes(0)));
        let _ = self.host.set_cookie(&set_cookie_string(
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
