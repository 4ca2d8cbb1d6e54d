//! Browser tests of the wasm bindings (`wasm-pack test --headless --chrome`
//! and `--firefox`): cookie, storage, a batch delivered to a real local
//! endpoint, a refused connection, and garbage through every exported
//! function.
//!
//! The endpoint is the Node receiver (`e2e/receiver.mjs`) that
//! `scripts/test.sh` starts; its URL is fixed at build time through
//! `SEGMINT_TEST_ENDPOINT`.
#![cfg(target_arch = "wasm32")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use segmint::Segmint;
use segmint_core::json::Value;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

const ENDPOINT: &str = match option_env!("SEGMINT_TEST_ENDPOINT") {
    Some(e) => e,
    None => "http://127.0.0.1:8787",
};

fn window() -> web_sys::Window {
    web_sys::window().unwrap()
}

fn document() -> web_sys::HtmlDocument {
    window().document().unwrap().dyn_into().unwrap()
}

fn storage() -> web_sys::Storage {
    window().local_storage().unwrap().unwrap()
}

/// Clears what earlier tests left: storage and segmint's cookies.
fn clean() {
    storage().clear().unwrap();
    for name in ["sgm_aid", "sgm_consent", "custom_aid"] {
        document()
            .set_cookie(&format!("{name}=; Max-Age=0; Path=/"))
            .unwrap();
    }
}

#[wasm_bindgen(module = "/js/host.js")]
extern "C" {
    /// The facade's host: the runtime's timer, the page's lifecycle, the
    /// network.
    #[wasm_bindgen(js_name = Host)]
    #[derive(Clone)]
    type PageHost;
    #[wasm_bindgen(constructor, js_class = "Host")]
    fn new() -> PageHost;
    /// A promise of flush `id`'s outcome (JSON text).
    #[wasm_bindgen(method)]
    fn settled(this: &PageHost, id: u32) -> js_sys::Promise;
}

thread_local! {
    /// The host of the latest instance: its flushes are awaited there.
    static HOST: std::cell::RefCell<Option<PageHost>> = const { std::cell::RefCell::new(None) };
}

/// A new host, kept as the latest instance's (see [`flush`]).
fn host() -> JsValue {
    let host = PageHost::new();
    let value: JsValue = host.clone().into();
    HOST.with(|h| *h.borrow_mut() = Some(host));
    value
}

fn emit_sink() -> js_sys::Function {
    Closure::<dyn FnMut(JsValue, JsValue)>::new(|_: JsValue, _: JsValue| {})
        .into_js_value()
        .unchecked_into()
}

fn start(extra: &str) -> Segmint {
    Segmint::new(
        &format!(r#"{{"endpoint":"{ENDPOINT}","flushIntervalMs":60000{extra}}}"#),
        emit_sink(),
        false,
        host(),
    )
    .unwrap()
}

fn cookie(name: &str) -> Option<String> {
    segmint_core::cookie::read_cookie(&document().cookie().unwrap(), name).map(str::to_string)
}

async fn get_json(path: &str) -> Value {
    let resp: web_sys::Response =
        JsFuture::from(window().fetch_with_str(&format!("{ENDPOINT}{path}")))
            .await
            .unwrap()
            .dyn_into()
            .unwrap();
    let text = JsFuture::from(resp.text().unwrap()).await.unwrap();
    Value::parse(&text.as_string().unwrap()).unwrap()
}

async fn received_ids() -> Vec<String> {
    get_json("/__received")
        .await
        .get("ids")
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

/// Flushes the latest instance `sm`, and waits until it has settled.
async fn flush(sm: &Segmint) -> Value {
    let settled = HOST.with(|h| h.borrow().as_ref().unwrap().settled(sm.flush()));
    Value::parse(&JsFuture::from(settled).await.unwrap().as_string().unwrap()).unwrap()
}

#[wasm_bindgen_test]
fn the_anonymous_id_cookie_is_set_and_mirrored() {
    clean();
    let sm = start("");
    let id = sm.anonymous_id();
    assert!(segmint_core::id::is_uuid(&id), "{id}");
    assert_eq!(cookie("sgm_aid").as_deref(), Some(id.as_str()));
    assert_eq!(
        storage().get_item("sgm_aid").unwrap().as_deref(),
        Some(id.as_str())
    );
}

#[wasm_bindgen_test]
fn cookie_and_storage_restore_each_other() {
    clean();
    let id = start("").anonymous_id();
    // Storage cleared (the user wiped site data but the cookie survived).
    storage().remove_item("sgm_aid").unwrap();
    assert_eq!(start("").anonymous_id(), id);
    assert_eq!(
        storage().get_item("sgm_aid").unwrap().as_deref(),
        Some(id.as_str())
    );
    // Cookie cleared (ITP-style expiry): storage restores it and the
    // cookie is written again.
    document()
        .set_cookie("sgm_aid=; Max-Age=0; Path=/")
        .unwrap();
    assert_eq!(start("").anonymous_id(), id);
    assert_eq!(cookie("sgm_aid").as_deref(), Some(id.as_str()));
}

#[wasm_bindgen_test]
fn a_custom_cookie_name_is_honoured() {
    clean();
    let sm = start(r#","cookie":{"name":"custom_aid","maxAgeDays":30}"#);
    assert_eq!(
        cookie("custom_aid").as_deref(),
        Some(sm.anonymous_id().as_str())
    );
}

#[wasm_bindgen_test]
fn identify_and_reset() {
    clean();
    let sm = start("");
    let first = sm.anonymous_id();
    assert!(sm
        .record(2, Some("u1".into()), r#"{"plan":"pro"}"#)
        .is_none());
    assert_eq!(sm.user_id().as_deref(), Some("u1"));
    assert_eq!(
        Value::parse(&sm.traits())
            .unwrap()
            .get("plan")
            .and_then(Value::as_str),
        Some("pro")
    );
    sm.reset();
    assert_ne!(sm.anonymous_id(), first);
    assert_eq!(sm.user_id(), None);
    assert_eq!(cookie("sgm_aid"), Some(sm.anonymous_id()));
    assert_eq!(sm.traits(), "{}");
}

#[wasm_bindgen_test]
async fn a_batch_reaches_the_local_endpoint() {
    clean();
    let sm = start(r#","writeKey":"wk-test""#);
    assert!(sm
        .record(
            0,
            Some("Product Clicked".into()),
            r#"{"product_id":"p1","price":19.99}"#
        )
        .is_none());
    assert!(sm.record(4, Some("red shoes".into()), "{}").is_none());
    assert!(sm
        .record(5, None, r#"{"order_id":"o1","total":19.99,"products":[{"product_id":"p1","price":19.99,"quantity":1,"category":"shoes"}]}"#)
        .is_none());
    assert!(sm.record(1, Some("Home".into()), "{}").is_none());
    assert_eq!(sm.queued(), 4);
    let result = flush(&sm).await;
    assert_eq!(result.get("sent").and_then(Value::as_f64), Some(4.0));
    assert_eq!(sm.queued(), 0);
    let got = get_json("/__received").await;
    let messages = got.get("messages").unwrap().as_array().unwrap();
    let mine: Vec<&Value> = messages
        .iter()
        .filter(|m| {
            m.get("anonymousId").and_then(Value::as_str) == Some(sm.anonymous_id().as_str())
        })
        .collect();
    let names: Vec<&str> = mine
        .iter()
        .map(|m| {
            m.get("event")
                .or_else(|| m.get("name"))
                .and_then(Value::as_str)
                .unwrap_or("")
        })
        .collect();
    assert_eq!(
        names,
        [
            "Product Clicked",
            "Products Searched",
            "Order Completed",
            "Home"
        ]
    );
    let ctx = mine[0].get("context").unwrap();
    assert_eq!(
        ctx.get("library")
            .unwrap()
            .get("name")
            .and_then(Value::as_str),
        Some("segmint")
    );
    assert!(ctx
        .get("userAgent")
        .and_then(Value::as_str)
        .is_some_and(|ua| !ua.is_empty()));
    assert!(ctx
        .get("page")
        .unwrap()
        .get("url")
        .and_then(Value::as_str)
        .unwrap()
        .starts_with("http"));
    // Nothing queued is left in storage once delivered.
    let keys: Vec<String> = (0..storage().length().unwrap())
        .filter_map(|i| storage().key(i).unwrap())
        .filter(|k| k.starts_with("sgm_q."))
        .collect();
    assert!(keys.is_empty(), "{keys:?}");
}

#[wasm_bindgen_test]
fn the_facade_fetches_the_rules_at_start_and_hands_over_the_answer() {
    clean();
    let sm = Segmint::new(
        r#"{"endpoint":"http://127.0.0.1:9","rulesUrl":"http://127.0.0.1:9/v1/rules","flushIntervalMs":60000}"#,
        emit_sink(),
        false,
        host(),
    )
    .unwrap();
    let wanted = Value::parse(&sm.rules_request().expect("a fetch is due")).unwrap();
    assert_eq!(
        wanted.get("url").and_then(Value::as_str),
        Some("http://127.0.0.1:9/v1/rules")
    );
    assert_eq!(wanted.get("etag"), None, "nothing cached yet");
    assert_eq!(sm.rules_request(), None, "in flight: not asked twice");
    let doc = r#"{"version":"start-1","traits":{},"segments":[{"id":"all","condition":{}}]}"#;
    sm.rules_answer(200, Some("\"e1\"".into()), doc);
    assert_eq!(sm.rules_version().as_deref(), Some("start-1"));
    assert_eq!(sm.segments(), r#"["all"]"#);
    assert!(sm.consent("denied").is_none());
}

#[wasm_bindgen_test]
async fn a_refused_connection_keeps_the_events_for_a_retry() {
    clean();
    // Port 9 is on every browser's blocked-port list: `fetch` rejects at
    // once, as it does when the network is down.
    let sm = Segmint::new(
        r#"{"endpoint":"http://127.0.0.1:9","rulesUrl":"http://127.0.0.1:9/v1/rules","flushIntervalMs":60000}"#,
        emit_sink(),
        false,
        host(),
    )
    .unwrap();
    assert!(sm.record(0, Some("Refused".into()), "{}").is_none());
    let result = flush(&sm).await;
    assert_eq!(result.get("sent").and_then(Value::as_f64), Some(0.0));
    assert_eq!(result.get("pending").and_then(Value::as_f64), Some(1.0));
    assert_eq!(sm.queued(), 1);
    assert_eq!(sm.rules_version(), None);
    // Still working: calls are taken, and denying consent drops the queue
    // (so no later test finds it in storage).
    assert!(sm.record(0, Some("Refused again".into()), "{}").is_none());
    assert_eq!(sm.queued(), 2);
    assert!(sm.consent("denied").is_none());
    assert_eq!(sm.queued(), 0);
}

#[wasm_bindgen_test]
async fn queued_events_are_in_storage_before_delivery() {
    clean();
    let sm = start("");
    sm.record(0, Some("Stored".into()), "{}");
    // The write happens in a microtask after the call: yield once.
    JsFuture::from(js_sys::Promise::resolve(&JsValue::NULL))
        .await
        .unwrap();
    let chunk = (0..storage().length().unwrap())
        .filter_map(|i| storage().key(i).unwrap())
        .find(|k| k.starts_with("sgm_q."))
        .and_then(|k| storage().get_item(&k).unwrap())
        .unwrap();
    assert!(chunk.contains("\"event\":\"Stored\""), "{chunk}");
    flush(&sm).await;
}

#[wasm_bindgen_test]
async fn garbage_through_every_export_leaves_tracking_working() {
    clean();
    for options in [
        "",
        "{",
        "[]",
        "null",
        r#"{"endpoint":"nope"}"#,
        r#"{"endpoint":"http://x","maxEvents":-1}"#,
        "\u{0}\u{ffff}",
    ] {
        let err = Segmint::new(options, emit_sink(), false, host())
            .err()
            .and_then(|e| e.as_string())
            .unwrap();
        let v = Value::parse(&err).unwrap();
        assert_eq!(
            v.get("code").and_then(Value::as_str),
            Some("invalid_option"),
            "{options}: {err}"
        );
    }
    let sm = start("");
    let junk = [
        "",
        "{",
        "}",
        "[1,2",
        "null",
        "\"str\"",
        "{\"a\":NaN}",
        "\u{0}",
        "{\"a\":1}x",
        &"[".repeat(500),
        "💥",
    ];
    for j in junk {
        for kind in 0..7 {
            let _ = sm.record(kind, Some(j.to_string()), j);
            let _ = sm.record(kind, None, j);
        }
        let _ = sm.consent(j);
        let _ = sm.decide(j);
        let _ = sm.in_segment(j);
        let _ = sm.segments();
        let _ = sm.traits();
        let _ = sm.rules_version();
        let _ = sm.rules_request();
        for status in [0, 200, 304, 404, 500] {
            sm.rules_answer(status, Some(j.to_string()), j);
        }
    }
    let huge = format!(r#"{{"x":"{}"}}"#, "y".repeat(40_000));
    let err = Value::parse(&sm.record(0, Some("Big".into()), &huge).unwrap()).unwrap();
    assert_eq!(
        err.get("code").and_then(Value::as_str),
        Some("event_too_large")
    );
    // Still works, and delivers.
    assert!(sm
        .record(0, Some("After Garbage".into()), r#"{"ok":true}"#)
        .is_none());
    let before = sm.queued();
    let result = flush(&sm).await;
    assert_eq!(result.get("pending").and_then(Value::as_f64), Some(0.0));
    assert!(before >= 1);
    let ids = received_ids().await;
    assert!(!ids.is_empty());
}

/// The deepest JSON the parser accepts (64 levels), through options,
/// rules, conditions and events: the wasm stack (set small in
/// .cargo/config.toml to keep memory down) must hold the recursion.
#[wasm_bindgen_test]
fn the_deepest_accepted_nesting_fits_the_stack() {
    clean();
    // A condition of `levels` nested `$and`s (two JSON levels each) around
    // a test that always holds; the deepest that the options still accept.
    let rules = |levels: usize| {
        format!(
            r#","rules":{{"version":"deep","traits":{{"n":{{"event":"E","aggregate":"count","window_days":30}}}},"segments":[{{"id":"deep","priority":1,"condition":{}{{"n":{{"$gte":0}}}}{}}}]}}"#,
            r#"{"$and":["#.repeat(levels),
            "]}".repeat(levels)
        )
    };
    let mut deepest = None;
    for levels in (1..40).rev() {
        let options = format!(
            r#"{{"endpoint":"{ENDPOINT}","flushIntervalMs":60000{}}}"#,
            rules(levels)
        );
        let errors = std::rc::Rc::new(std::cell::Cell::new(0));
        let seen = errors.clone();
        let emit = Closure::<dyn FnMut(JsValue, JsValue)>::new(move |kind: JsValue, _: JsValue| {
            if kind.as_string().as_deref() == Some("error") {
                seen.set(seen.get() + 1);
            }
        })
        .into_js_value()
        .unchecked_into();
        if let Ok(sm) = Segmint::new(&options, emit, false, host()) {
            if errors.get() == 0 {
                deepest = Some((levels, sm));
                break;
            }
        }
    }
    let (levels, sm) = deepest.expect("some nesting is accepted");
    assert!(
        levels >= 28,
        "the limit is near 64 JSON levels, got {levels} $and levels"
    );
    let deep_props = format!("{}1{}", r#"{"a":"#.repeat(60), "}".repeat(60));
    assert!(sm.record(0, Some("E".into()), &deep_props).is_none());
    assert!(sm.record(2, Some("u".into()), &deep_props).is_none());
    assert!(sm.in_segment("deep"), "{}", sm.segments());
    let too_deep = format!("{}1{}", r#"{"a":"#.repeat(70), "}".repeat(70));
    assert!(sm.record(0, Some("E".into()), &too_deep).is_some());
    assert!(sm.record(0, Some("After".into()), "{}").is_none());
}
