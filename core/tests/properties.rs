//! Property tests: random inputs, stated invariants.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use proptest::prelude::*;
use segmint_core::condition::Native;
use segmint_core::config::Config;
use segmint_core::delivery::Outcome;
use segmint_core::json::Value;
use segmint_core::message::PageInfo;
use segmint_core::profile::Profile;
use segmint_core::rules::Rules;
use segmint_core::store::{MemoryStore, Store};
use segmint_core::tracker::{Start, Tracker};
use segmint_core::{fuzzing, url};
use std::cell::RefCell;
use std::collections::HashSet;
use std::rc::Rc;

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-1e6f64..1e6).prop_map(Value::Number),
        any::<i32>().prop_map(|n| Value::Number(f64::from(n))),
        "[a-z$._ \u{e9}\u{1F600}\"\\\\\n]{0,8}".prop_map(Value::String),
        prop_oneof![
            Just("$gt"),
            Just("$in"),
            Just("$or"),
            Just("$not"),
            Just("$elemMatch"),
            Just("$savedGroup"),
            Just("$regex"),
            Just("$veq")
        ]
        .prop_map(|s| Value::String(s.to_string())),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec(
                (
                    prop_oneof![
                        "[a-z]{1,3}",
                        Just("$gt".to_string()),
                        Just("$or".to_string()),
                        Just("$in".to_string()),
                        Just("$not".to_string()),
                        Just("$elemMatch".to_string()),
                        Just("$savedGroup".to_string()),
                        Just("id".to_string()),
                        Just("type".to_string())
                    ],
                    inner
                ),
                0..5
            )
            .prop_map(|members| {
                let mut obj = Value::Object(Vec::new());
                for (k, v) in members {
                    obj.insert(&k, v);
                }
                obj
            }),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn json_round_trips(v in json_value()) {
        prop_assert_eq!(Value::parse(&v.to_json()).unwrap(), v);
    }

    #[test]
    fn parsers_never_panic_on_arbitrary_text(text in "\\PC{0,64}", bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        fuzzing::json(text.as_bytes());
        fuzzing::json(&bytes);
        fuzzing::rules_and_conditions(text.as_bytes());
        let _ = url::campaign(&text);
        let _ = segmint_core::time::parse_rfc3339(&text);
        let _ = segmint_core::time::parse_http_date(&text);
        let _ = Config::from_json(&text);
    }

    /// A stripped URL keeps no named parameter, stripping again changes
    /// nothing, and a URL without them comes back as written.
    #[test]
    fn stripped_urls_keep_no_named_parameter(
        url in "(https://s\\.example/p)?(\\?([a-zA-Z%0-9]{0,6}(=[a-z@%0-9]{0,4})?&?){0,4})?(#/?([a-z%0-9]{0,6}(=[a-z0-9]{0,3})?[&?]?){0,3})?",
    ) {
        let names = ["email".to_string(), "t".to_string()];
        // The parameter keys of a URL: its query's, and its fragment's
        // where that holds parameters (a bare `#t` is an anchor).
        let keys = |u: &str| {
            let (main, fragment) = u.split_once('#').map_or((u, None), |(m, f)| (m, Some(f)));
            let mut sections: Vec<&str> = main.split_once('?').map(|(_, q)| q).into_iter().collect();
            match fragment.map(|f| f.split_once('?').map_or(f, |(_, q)| q)) {
                Some(f) if f.contains('=') || fragment.is_some_and(|f| f.contains('?')) => sections.push(f),
                _ => {}
            }
            sections
                .into_iter()
                .flat_map(|q| q.split('&'))
                .map(|p| url::form_decode(p.split('=').next().unwrap_or_default()).to_ascii_lowercase())
                .collect::<Vec<_>>()
        };
        let stripped = url::strip_params(&url, &names);
        prop_assert_eq!(url::strip_params(&stripped, &names), stripped.clone());
        for key in keys(&stripped) {
            prop_assert!(!names.contains(&key), "{} kept {} in {}", url, key, stripped);
        }
        if !keys(&url).iter().any(|k| names.contains(k)) {
            prop_assert_eq!(stripped, url);
        }
    }

    #[test]
    fn rules_and_conditions_never_panic_on_arbitrary_json(doc in json_value(), attrs in json_value()) {
        let text = format!("{}\u{0}{}", doc.to_json(), attrs.to_json());
        fuzzing::rules_and_conditions(text.as_bytes());
        let wrapped = format!(r#"{{"version":"p","segments":[{{"id":"s","condition":{}}}]}}{}{}"#, doc.to_json(), '\u{0}', attrs.to_json());
        fuzzing::rules_and_conditions(wrapped.as_bytes());
    }
}

/// Bytes drawn from a few short words, so long repeats (matches near and
/// far, runs) are common, as in batch JSON.
fn repetitive_bytes() -> impl Strategy<Value = Vec<u8>> {
    let word = prop::sample::select(vec![
        &b"{\"type\":"[..],
        b"track",
        b"a",
        b"aaaaaaaa",
        b"\x00\xff",
        b"0123456789abcdef",
        b"\"messageId\":\"",
    ]);
    prop::collection::vec((word, 0..40usize), 0..400).prop_map(|parts| {
        let mut out = Vec::new();
        for (w, n) in parts {
            for _ in 0..n % 7 + 1 {
                out.extend_from_slice(w);
            }
            out.push(n as u8);
        }
        out
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    /// Numbers read exactly as a full parser reads them (the fast path
    /// and the fallback agree on where they meet).
    #[test]
    fn numbers_parse_exactly(x in any::<f64>(), digits in 0u64..100_000_000_000_000_000, point in 0usize..20, exp in -30i32..30) {
        if x.is_finite() {
            let text = format!("{x:e}");
            prop_assert_eq!(segmint_core::json::parse_number(&text).map(f64::to_bits), Some(x.to_bits()));
        }
        let mut text = digits.to_string();
        if point < text.len() {
            text.insert(text.len() - point, '.');
        }
        for candidate in [text.clone(), format!("-{text}e{exp}")] {
            let expected: f64 = candidate.parse().unwrap();
            prop_assert_eq!(segmint_core::json::parse_number(&candidate).map(f64::to_bits), Some(expected.to_bits()), "{}", candidate);
        }
    }

    /// What the gzip encoder writes, a real inflater reads back.
    #[test]
    fn gzip_round_trips(random in prop::collection::vec(any::<u8>(), 0..3000), repetitive in repetitive_bytes()) {
        for data in [&random, &repetitive] {
            let z = segmint_core::gzip::gzip(data);
            let mut back = Vec::new();
            std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&z[..]), &mut back).unwrap();
            prop_assert_eq!(&back, data);
        }
    }
}

const PROFILE_RULES: &str = r#"{"version":"p","traits":{
  "c7":{"event":"A","aggregate":"count","window_days":7},
  "c30":{"event":"A","aggregate":"count","property":"items.cat","window_days":30},
  "s7":{"event":"A","aggregate":"sum","property":"items.price","window_days":7},
  "avg30":{"event":"A","aggregate":"avg","property":"items.price","window_days":30},
  "min90":{"event":"A","aggregate":"min","property":"items.price","window_days":90},
  "max3":{"event":"A","aggregate":"max","property":"items.price","window_days":3},
  "d30":{"event":"A","aggregate":"distinct","property":"items.cat","window_days":30},
  "ts":{"event":"A","aggregate":"top_share","property":"items.cat","window_days":14},
  "tv":{"event":"A","aggregate":"top_value","property":"items.cat","window_days":14},
  "last":{"event":"B","aggregate":"last","property":"q","window_days":5},
  "sess":{"builtin":"sessions","window_days":10}},"segments":[]}"#;

fn close(a: &[(String, Value)], b: &[(String, Value)]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|((ka, va), (kb, vb))| {
            ka == kb
                && match (va, vb) {
                    (Value::Number(x), Value::Number(y)) => {
                        (x - y).abs() <= 1e-9 * x.abs().max(1.0)
                    }
                    _ => va == vb,
                }
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// Running window totals equal totals recomputed from the day buckets,
    /// whatever the stream (gaps, bursts, day changes, a clock going back),
    /// and survive a save and reload.
    #[test]
    fn incremental_traits_equal_recomputed_traits(
        events in prop::collection::vec((0u8..3, 0.0f64..(40.0 * 86_400_000.0), prop::collection::vec((0u8..4, 0.0f64..100.0), 0..4), "[a-c]{0,2}"), 1..60)
    ) {
        let rules = Rules::parse(PROFILE_RULES).unwrap();
        let mut p = Profile::new(0.0, 1_800_000.0);
        p.apply_rules(&rules, 0.0);
        let mut now = 0.0;
        for (kind, dt, items, q) in events {
            // Mostly forward in time, sometimes a little back.
            now = if kind == 2 { (now - dt / 100.0).max(0.0) } else { now + dt / 10.0 };
            let items: Vec<String> = items.iter().map(|(c, price)| format!(r#"{{"cat":"c{c}","price":{price}}}"#)).collect();
            let props = Value::parse(&format!(r#"{{"items":[{}],"q":"{q}"}}"#, items.join(","))).unwrap();
            let name = if kind == 1 { "B" } else { "A" };
            p.record(name, Some(&props), now);
            let incremental = p.traits(now);
            let recomputed = p.recomputed().traits(now);
            prop_assert!(close(&incremental, &recomputed), "{incremental:?}\n{recomputed:?}");
        }
        let back = Profile::from_json(&p.to_json(), &rules, now, 1_800_000.0).unwrap();
        prop_assert!(close(&back.traits(now), &p.traits(now)));
    }
}

#[derive(Clone, Debug)]
enum Step {
    Track(u8),
    Send {
        status: u16,
        retry_after: bool,
    },
    /// Send a batch and leave its answer for later.
    SendLater,
    /// Answer the request left under way.
    Answer(u16),
    Wait(f64),
    Offline(bool),
    Reload,
    PageHide {
        taken: bool,
    },
    Flush,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (1u8..20).prop_map(Step::Track),
        4 => (prop_oneof![Just(200u16), Just(500), Just(503), Just(429), Just(408), Just(0), Just(413), Just(502)], any::<bool>())
            .prop_map(|(status, retry_after)| Step::Send { status, retry_after }),
        2 => (0.0f64..120_000.0).prop_map(Step::Wait),
        2 => Just(Step::SendLater),
        2 => prop_oneof![Just(200u16), Just(500), Just(0)].prop_map(Step::Answer),
        1 => any::<bool>().prop_map(Step::Offline),
        1 => Just(Step::Reload),
        1 => any::<bool>().prop_map(|taken| Step::PageHide { taken }),
        1 => Just(Step::Flush),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 150, ..ProptestConfig::default() })]

    /// At-least-once: whatever the network does, whatever reloads and page
    /// hides happen, every tracked message id reaches the endpoint (413s
    /// only on batches; a single event's 413 is the one sanctioned drop,
    /// never generated here).
    #[test]
    fn delivery_loses_nothing(steps in prop::collection::vec(step(), 1..80)) {
        let store: Rc<RefCell<MemoryStore>> = Rc::default();
        let config = Config::from_json(r#"{"endpoint":"https://c.example","maxEvents":7,"retry":{"baseMs":100,"capMs":5000}}"#).unwrap();
        let page = PageInfo::default();
        let mut now = 1_000_000.0;
        let mut seed = 1u8;
        let new_tab = |seed: u8, now: f64, previous: Option<String>, store: &Rc<RefCell<MemoryStore>>| {
            Tracker::new(config.clone(), store.clone(), Box::new(Native::default()), Start {
                now, seed: [seed; 32], fresh_id: [seed; 16], cookie_id: None, remembered_consent: None,
                gpc: false, previous_tab: previous, page: page.clone(), online: true, engine_later: false,
            })
        };
        let mut t = new_tab(seed, now, None, &store);
        let mut tracked = 0usize;
        let mut received: HashSet<String> = HashSet::new();
        let mut online = true;
        // A request under way: (batch id, ids, sent with keepalive).
        let mut pending: Option<(u64, Vec<String>, bool)> = None;
        let ids_of = |body: &str| -> Vec<String> {
            Value::parse(body).unwrap().get("batch").unwrap().as_array().unwrap().iter()
                .map(|m| m.get("messageId").unwrap().as_str().unwrap().to_string()).collect()
        };
        for s in steps {
            match s {
                Step::Track(n) => {
                    for _ in 0..n {
                        t.track("E", "{}", now).unwrap();
                        tracked += 1;
                    }
                    t.persist(now);
                }
                Step::Send { status, retry_after } => {
                    if let Some(b) = t.poll(now) {
                        let ids = ids_of(&b.body);
                        // A 413 on a single event would be a sanctioned drop: answer 200.
                        let status = if status == 413 && ids.len() == 1 { 200 } else { status };
                        if (200..300).contains(&status) {
                            received.extend(ids);
                        }
                        let outcome = if status == 0 { Outcome::NetworkError } else {
                            Outcome::Status { status, retry_after: retry_after.then(|| "1".to_string()) }
                        };
                        t.settle(b.id, outcome, now);
                    }
                }
                Step::SendLater => {
                    if pending.is_none() {
                        if let Some(b) = t.poll(now) {
                            pending = Some((b.id, ids_of(&b.body), b.keepalive));
                        }
                    }
                }
                Step::Answer(status) => {
                    if let Some((id, ids, _)) = pending.take() {
                        if status == 200 {
                            received.extend(ids);
                        }
                        let outcome = if status == 0 { Outcome::NetworkError } else { Outcome::Status { status, retry_after: None } };
                        t.settle(id, outcome, now);
                    }
                }
                Step::Wait(ms) => { now += ms; t.heartbeat(now); }
                Step::Offline(off) => { online = !off; t.set_online(online); }
                Step::Reload => {
                    // No pagehide (a crash): a request under way is lost with the page.
                    pending = None;
                    let previous = t.tab_id().to_string();
                    seed = seed.wrapping_add(1);
                    t = new_tab(seed, now, Some(previous.clone()), &store);
                    t.set_online(online);
                    t.adopt_orphans(Some(&previous), now);
                }
                Step::PageHide { taken } => {
                    // A keepalive request under way completes after the
                    // page is gone (the server answers 200); one without
                    // keepalive is cancelled with the page.
                    if let Some((_, ids, keepalive)) = pending.take() {
                        if keepalive {
                            received.extend(ids);
                        }
                    }
                    for b in t.pagehide(now) {
                        if taken {
                            received.extend(ids_of(&b.body));
                        }
                    }
                    t.release(now);
                    let previous = t.tab_id().to_string();
                    seed = seed.wrapping_add(1);
                    t = new_tab(seed, now, Some(previous.clone()), &store);
                    t.set_online(online);
                    t.adopt_orphans(Some(&previous), now);
                }
                Step::Flush => { let _ = t.flush(); }
            }
        }
        // The network heals; everything left must arrive.
        if let Some((id, ids, _)) = pending.take() {
            received.extend(ids);
            t.settle(id, Outcome::Status { status: 200, retry_after: None }, now);
        }
        t.set_online(true);
        for _ in 0..10_000 {
            now += 10_000.0;
            let _ = t.flush();
            match t.poll(now) {
                Some(b) => {
                    received.extend(ids_of(&b.body));
                    t.settle(b.id, Outcome::Status { status: 200, retry_after: None }, now);
                }
                None if t.queued() == 0 => break,
                None => {}
            }
        }
        prop_assert_eq!(t.queued(), 0);
        prop_assert_eq!(received.len(), tracked, "every tracked event arrived");
        prop_assert!(store.borrow().keys().iter().all(|k| !k.starts_with("sgm_q.")), "storage is clean");
    }
}

proptest! {
    /// Objects with repeated keys, small (scanned) and large (sorted),
    /// parse as JSON.parse does: each key at its first position with its
    /// last value.
    #[test]
    fn repeated_keys_keep_first_position_and_last_value(
        keys in proptest::collection::vec(0u8..40, 0..120),
    ) {
        let text = format!(
            "{{{}}}",
            keys.iter()
                .enumerate()
                .map(|(i, k)| format!("\"k{k}\":{i}"))
                .collect::<Vec<_>>()
                .join(",")
        );
        let mut expected: Vec<(String, f64)> = Vec::new();
        for (i, k) in keys.iter().enumerate() {
            let key = format!("k{k}");
            match expected.iter_mut().find(|(e, _)| *e == key) {
                Some(slot) => slot.1 = i as f64,
                None => expected.push((key, i as f64)),
            }
        }
        let v = Value::parse(&text).unwrap();
        let got: Vec<(String, f64)> = v
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_f64().unwrap()))
            .collect();
        prop_assert_eq!(got, expected);
    }
}
