//! The tracker driven through whole scenarios with a fake store, clock and
//! network: the delivery contract (nothing lost, ids stable across
//! retries, reloads, page hides, crashes and tabs), consent, rules and
//! segments.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use segmint_core::condition::Native;
use segmint_core::config::{Config, Consent};
use segmint_core::delivery::{Batch, FlushDone, Outcome, REQUEST_TIMEOUT_MS};
use segmint_core::json::Value;
use segmint_core::message::PageInfo;
use segmint_core::queue::STALE_TAB_MS;
use segmint_core::store::{MemoryStore, Store};
use segmint_core::tracker::{Notice, Start, Tracker, FAILING_KEY};
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

type Shared = Rc<RefCell<MemoryStore>>;

const T0: f64 = 1_795_405_732_000.0;

fn config(extra: &str) -> Config {
    Config::from_json(&format!(r#"{{"endpoint":"https://c.example"{extra}}}"#)).unwrap()
}

fn start(now: f64, seed: u8, previous: Option<String>) -> Start {
    Start {
        now,
        seed: [seed; 32],
        fresh_id: [seed.wrapping_add(1); 16],
        cookie_id: None,
        remembered_consent: None,
        gpc: false,
        previous_tab: previous,
        page: PageInfo {
            url: "https://shop.example/".into(),
            path: "/".into(),
            ..PageInfo::default()
        },
        online: true,
        engine_later: false,
    }
}

fn tab(
    store: &Shared,
    extra: &str,
    now: f64,
    seed: u8,
    previous: Option<String>,
) -> Tracker<Shared> {
    Tracker::new(
        config(extra),
        store.clone(),
        Box::new(Native::default()),
        start(now, seed, previous),
    )
}

/// The messages of a batch's body.
fn messages(batch: &Batch) -> Vec<Value> {
    let body = Value::parse(&batch.body).unwrap();
    body.get("batch").unwrap().as_array().unwrap().to_vec()
}

/// A receiver that records message ids and answers with a status.
#[derive(Default)]
struct Receiver {
    ids: HashMap<String, usize>,
    requests: usize,
}

impl Receiver {
    fn take(&mut self, batch: &Batch) {
        self.requests += 1;
        for m in messages(batch) {
            *self
                .ids
                .entry(m.get("messageId").unwrap().as_str().unwrap().to_string())
                .or_default() += 1;
        }
    }
    fn duplicates(&self) -> usize {
        self.ids.values().map(|n| n - 1).sum()
    }
}

/// The collector answers batch `id` with `status`.
fn answer(t: &mut Tracker<Shared>, id: u64, status: u16, now: f64) {
    let outcome = Outcome::Status {
        status,
        retry_after: None,
    };
    t.settle(id, outcome, now);
}

/// Sends everything due, answering 200, until nothing is left.
fn drain(t: &mut Tracker<Shared>, rx: &mut Receiver, now: f64) {
    t.flush().ok();
    for _ in 0..10_000 {
        let Some(b) = t.poll(now) else { break };
        rx.take(&b);
        answer(t, b.id, 200, now);
    }
}

fn track_n(t: &mut Tracker<Shared>, n: usize, now: f64) -> Vec<String> {
    for i in 0..n {
        t.track(
            "Product Clicked",
            &format!(r#"{{"product_id":"p{i}","price":{i}}}"#),
            now,
        )
        .unwrap();
    }
    t.persist(now);
    Vec::new()
}

fn queue_keys(store: &Shared) -> Vec<String> {
    store
        .borrow()
        .keys()
        .into_iter()
        .filter(|k| k.starts_with("sgm_q."))
        .collect()
}

#[test]
fn events_are_batched_delivered_and_leave_storage() {
    let store = Shared::default();
    let mut t = tab(&store, "", T0, 1, None);
    track_n(&mut t, 3, T0);
    assert_eq!(
        queue_keys(&store).len(),
        1,
        "one chunk for one task's events"
    );
    assert!(t.poll(T0 + 1999.0).is_none(), "waits for flushIntervalMs");
    let b = t.poll(T0 + 2000.0).unwrap();
    let msgs = messages(&b);
    assert_eq!(msgs.len(), 3);
    assert_eq!(
        msgs[0].get("anonymousId").and_then(Value::as_str),
        Some(t.anonymous_id())
    );
    assert_eq!(
        msgs[0]
            .get("context")
            .unwrap()
            .get("page")
            .unwrap()
            .get("path")
            .and_then(Value::as_str),
        Some("/")
    );
    answer(&mut t, b.id, 200, T0 + 2001.0);
    assert_eq!(t.queued(), 0);
    assert!(queue_keys(&store).is_empty());
}

#[test]
fn a_reload_mid_batch_resends_the_same_ids_from_the_next_page() {
    let store = Shared::default();
    let mut a = tab(&store, "", T0, 1, None);
    track_n(&mut a, 5, T0);
    let in_flight = a.poll(T0 + 5000.0).unwrap(); // never answered: the page reloads
    let mut first = Receiver::default();
    first.take(&in_flight);
    // Reload: same tab (sessionStorage names the previous page), no pagehide.
    let mut b = tab(&store, "", T0 + 6000.0, 2, Some(a.tab_id().to_string()));
    assert!(
        b.has_orphans(Some(a.tab_id()), T0 + 6000.0),
        "the previous page of this tab is gone"
    );
    assert_eq!(b.adopt_orphans(Some(a.tab_id()), T0 + 6000.0), 5);
    let mut rx = Receiver::default();
    drain(&mut b, &mut rx, T0 + 20_000.0);
    assert_eq!(rx.ids.len(), 5);
    assert!(
        first.ids.keys().all(|id| rx.ids.contains_key(id)),
        "same message ids"
    );
    assert!(queue_keys(&store).is_empty());
}

#[test]
fn pagehide_beacons_what_fits_and_keeps_everything_for_the_next_page() {
    let store = Shared::default();
    let mut a = tab(&store, "", T0, 1, None);
    // ~1 KB events: 200 of them cannot fit the 64 KB keepalive budget.
    let pad = "x".repeat(900);
    for i in 0..200 {
        a.track("Big", &format!(r#"{{"i":{i},"pad":"{pad}"}}"#), T0)
            .unwrap();
    }
    let batches = a.pagehide(T0 + 10.0);
    let mut rx = Receiver::default();
    let total: usize = batches.iter().map(|b| b.body.len()).sum();
    assert!(total <= 64 * 1024);
    for b in &batches {
        rx.take(b);
    }
    a.release(T0 + 10.0);
    let beaconed = rx.ids.len();
    assert!(beaconed > 0 && beaconed < 200);
    assert!(
        store
            .borrow()
            .get(&format!("sgm_tab.{}", a.tab_id()))
            .is_none(),
        "released"
    );
    assert!(a.poll(T0 + 1e6).is_none(), "a released page sends nothing");
    // Next page view (navigation in the same tab): nobody heard how the
    // beacons were answered, so it sends everything, under the same ids.
    let mut b = tab(&store, "", T0 + 100.0, 2, Some(a.tab_id().to_string()));
    assert_eq!(b.adopt_orphans(Some(a.tab_id()), T0 + 100.0), 200);
    drain(&mut b, &mut rx, T0 + 10_000.0);
    assert_eq!(rx.ids.len(), 200, "nothing lost");
    assert_eq!(rx.duplicates(), beaconed, "the beacons' events, once more");
}

/// Page hide: the beacons go out and the page view lets go of its queue.
/// `rx` sees what they carry.
fn leave(t: &mut Tracker<Shared>, rx: &mut Receiver, now: f64) {
    for b in t.pagehide(now) {
        rx.take(&b);
    }
    t.release(now);
}

#[test]
fn a_batch_whose_answer_the_page_never_hears_goes_again_from_the_next_page() {
    // The collector starts failing as the shopper moves between pages:
    // each page's request (and beacons) is answered 500 after the page
    // has gone. Before, the page let go of what they carried, and all
    // of it was lost.
    let store = Shared::default();
    let mut a = tab(&store, "", T0, 1, None);
    track_n(&mut a, 30, T0);
    let unheard = a.poll(T0 + 2000.0).unwrap();
    assert!(unheard.keepalive);
    let mut beacons = Receiver::default();
    beacons.take(&unheard);
    leave(&mut a, &mut beacons, T0 + 2100.0);

    let mut b = tab(&store, "", T0 + 2300.0, 2, Some(a.tab_id().to_string()));
    assert_eq!(b.adopt_orphans(Some(a.tab_id()), T0 + 2300.0), 30);
    track_n(&mut b, 70, T0 + 2400.0);
    b.set_online(false);
    b.set_online(true);
    let unheard = b.poll(T0 + 4400.0).unwrap();
    beacons.take(&unheard);
    leave(&mut b, &mut beacons, T0 + 4500.0);

    let mut c = tab(&store, "", T0 + 60_000.0, 3, None);
    assert_eq!(c.adopt_orphans(None, T0 + 60_000.0), 100);
    let mut rx = Receiver::default();
    drain(&mut c, &mut rx, T0 + 60_000.0);
    assert_eq!(rx.ids.len(), 100, "nothing lost");
    assert!(
        beacons.ids.keys().all(|id| rx.ids.contains_key(id)),
        "same message ids, so the collector keeps one copy"
    );
    assert!(queue_keys(&store).is_empty());
}

#[test]
fn any_answer_but_a_failure_ends_the_outage() {
    let store = Shared::default();
    let mut t = tab(&store, "", T0, 1, None);
    track_n(&mut t, 1, T0);
    let mut now = T0 + 2000.0;
    let first = t.poll(now).unwrap();
    t.settle(first.id, Outcome::NetworkError, now);
    assert!(store.borrow().get(FAILING_KEY).is_some());
    let retry = loop {
        now += 1000.0;
        if let Some(b) = t.poll(now) {
            break b;
        }
    };
    // A refusal: the collector is up, and beacons reach it.
    answer(&mut t, retry.id, 400, now);
    assert_eq!(store.borrow().get(FAILING_KEY), None);
}

fn stored_queue_bytes(store: &Shared) -> usize {
    queue_keys(store)
        .iter()
        .map(|k| store.borrow().get(k).map_or(0, |v| v.len()))
        .sum()
}

#[test]
fn a_collector_unreachable_for_a_day_keeps_a_small_stored_queue() {
    // An ad blocker stops the collector in this browser: every page view
    // would read back a 1 MB queue that can never drain. After a day of
    // failed answers only the newest events stay stored.
    const DAY: f64 = 24.0 * 3600.0 * 1000.0;
    let store = Shared::default();
    let pad = "x".repeat(300);
    let fill = |t: &mut Tracker<Shared>, n: usize, at: f64| {
        for i in 0..n {
            t.track("Blocked", &format!(r#"{{"i":{i},"pad":"{pad}"}}"#), at)
                .unwrap();
        }
        t.persist(at);
    };
    let fail_once = |t: &mut Tracker<Shared>, at: f64| {
        t.flush().ok();
        let b = t.poll(at).unwrap();
        t.settle(b.id, Outcome::NetworkError, at);
    };
    let mut a = tab(&store, "", T0, 1, None);
    fill(&mut a, 4000, T0);
    fail_once(&mut a, T0);
    assert!(
        stored_queue_bytes(&store) > 900 * 1024,
        "a fresh outage keeps 1 MB"
    );
    a.release(T0);

    // Browsing on for a day, the collector never answering.
    let mut b = tab(&store, "", T0 + DAY / 2.0, 2, Some(a.tab_id().to_string()));
    b.adopt_orphans(Some(a.tab_id()), T0 + DAY / 2.0);
    fail_once(&mut b, T0 + DAY / 2.0);
    b.release(T0 + DAY / 2.0);
    let later = T0 + DAY + 1000.0;
    let mut c = tab(&store, "", later, 3, Some(b.tab_id().to_string()));
    c.adopt_orphans(Some(b.tab_id()), later);
    fail_once(&mut c, later);
    fill(&mut c, 10, later);
    let kept = stored_queue_bytes(&store);
    assert!(
        kept <= 96 * 1024,
        "{kept} bytes stored after a day unreachable"
    );
    assert!(kept > 0, "the newest events stay stored");
    // The next page view starts with the small budget.
    c.release(later);
    let mut d = tab(&store, "", later + 1.0, 4, Some(c.tab_id().to_string()));
    d.adopt_orphans(Some(c.tab_id()), later + 1.0);
    fill(&mut d, 3000, later + 1.0);
    assert!(stored_queue_bytes(&store) <= 96 * 1024);
    // The collector answers again: the full budget is back.
    let mut rx = Receiver::default();
    drain(&mut d, &mut rx, later + 1000.0);
    assert!(store.borrow().get(FAILING_KEY).is_none());
    fill(&mut d, 4000, later + 2000.0);
    assert!(stored_queue_bytes(&store) > 900 * 1024);
}

#[test]
fn a_crashed_tab_is_adopted_once_its_heartbeat_is_stale() {
    let store = Shared::default();
    let mut a = tab(&store, "", T0, 1, None);
    track_n(&mut a, 3, T0);
    let mut b = tab(&store, "", T0 + 1000.0, 2, None);
    assert_eq!(b.adopt_orphans(None, T0 + 1000.0), 0, "a is alive");
    let later = T0 + STALE_TAB_MS + 2000.0;
    assert_eq!(b.adopt_orphans(None, later), 3);
    // a was only frozen: when it wakes it lets the adopted events go.
    a.heartbeat(later + 1.0);
    assert_eq!(a.queued(), 0);
    let mut rx = Receiver::default();
    drain(&mut a, &mut rx, later + 10_000.0);
    drain(&mut b, &mut rx, later + 10_000.0);
    assert_eq!(rx.ids.len(), 3);
    assert_eq!(rx.duplicates(), 0);
}

#[test]
fn two_tabs_tracking_at_once_send_each_event_once() {
    let store = Shared::default();
    let mut a = tab(&store, "", T0, 1, None);
    let mut b = tab(&store, "", T0, 2, None);
    let mut rx = Receiver::default();
    for round in 0..20 {
        let now = T0 + f64::from(round) * 300.0;
        track_n(&mut a, 7, now);
        track_n(&mut b, 5, now);
        a.heartbeat(now);
        b.heartbeat(now);
        b.adopt_orphans(None, now);
        a.adopt_orphans(None, now);
        for t in [&mut a, &mut b] {
            if let Some(batch) = t.poll(now) {
                rx.take(&batch);
                answer(t, batch.id, 200, now);
            }
        }
    }
    drain(&mut a, &mut rx, T0 + 1e5);
    drain(&mut b, &mut rx, T0 + 1e5);
    assert_eq!(rx.ids.len(), 20 * 12);
    assert_eq!(rx.duplicates(), 0);
    assert!(queue_keys(&store).is_empty());
}

#[test]
fn a_collector_that_never_answers_does_not_hold_up_delivery_or_flush() {
    let store = Shared::default();
    let mut t = tab(&store, "", T0, 1, None);
    track_n(&mut t, 3, T0);
    let Ok(flush) = t.flush() else {
        panic!("a flush is under way")
    };
    let hung = t.poll(T0).unwrap();
    assert!(t.give_up_overdue(T0 + 29_999.0).is_empty());
    assert_eq!(t.next_wake(), Some(T0 + REQUEST_TIMEOUT_MS));
    // No answer in 30 s: given up, and the flush answered with what is left.
    assert_eq!(t.give_up_overdue(T0 + REQUEST_TIMEOUT_MS), vec![hung.id]);
    let flushed: Vec<FlushDone> = t
        .drain_notices()
        .into_iter()
        .filter_map(|n| match n {
            Notice::Flushed(done) => Some(done),
            _ => None,
        })
        .collect();
    assert_eq!(
        flushed,
        [FlushDone {
            id: flush,
            sent: 0,
            pending: 3
        }]
    );
    // The events go again after the backoff, with the same ids.
    let wake = t.next_wake().unwrap();
    let retry = t.poll(wake).unwrap();
    assert_eq!(retry.seqs, hung.seqs);
    let mut rx = Receiver::default();
    rx.take(&retry);
    let ok = |status| Outcome::Status {
        status,
        retry_after: None,
    };
    t.settle(retry.id, ok(200), wake);
    // The hung request's late answer changes nothing.
    t.settle(hung.id, ok(200), wake + 1.0);
    assert_eq!((rx.ids.len(), rx.duplicates()), (3, 0));
    assert_eq!(t.queued(), 0);
}

#[test]
fn server_errors_retry_with_backoff_and_the_same_ids() {
    let store = Shared::default();
    let mut t = tab(
        &store,
        r#","retry":{"baseMs":1000,"capMs":8000}"#,
        T0,
        1,
        None,
    );
    track_n(&mut t, 2, T0);
    let b1 = t.poll(T0 + 2000.0).unwrap();
    answer(&mut t, b1.id, 500, T0 + 2000.0);
    let mut now = T0 + 2000.0;
    let b2 = loop {
        now += 100.0;
        if let Some(b) = t.poll(now) {
            break b;
        }
    };
    assert!(now <= T0 + 3100.0, "first retry within base");
    assert_eq!(
        b1.body
            .replace(&b1.body[b1.body.find("\"sentAt\"").unwrap()..], ""),
        b2.body
            .replace(&b2.body[b2.body.find("\"sentAt\"").unwrap()..], ""),
        "same events, same ids"
    );
    t.settle(
        b2.id,
        Outcome::Status {
            status: 503,
            retry_after: Some("30".into()),
        },
        now,
    );
    assert!(t.poll(now + 29_999.0).is_none(), "Retry-After honoured");
    let b3 = t.poll(now + 30_000.0).unwrap();
    answer(&mut t, b3.id, 400, now + 30_000.0);
    let errors: Vec<_> = t
        .drain_notices()
        .into_iter()
        .filter_map(|n| match n {
            Notice::Error(e) => Some(e.code()),
            _ => None,
        })
        .collect();
    assert_eq!(errors, vec!["batch_rejected"]);
    assert!(queue_keys(&store).is_empty());
}

#[test]
fn offline_holds_everything_until_online() {
    let store = Shared::default();
    let mut t = tab(&store, "", T0, 1, None);
    t.set_online(false);
    track_n(&mut t, 3, T0);
    assert!(t.poll(T0 + 1e6).is_none());
    assert!(
        t.pagehide(T0 + 1e6).is_empty(),
        "nothing handed to a dead network"
    );
    t.set_online(true);
    let mut rx = Receiver::default();
    drain(&mut t, &mut rx, T0 + 1e6);
    assert_eq!(rx.ids.len(), 3);
}

#[test]
fn storage_that_refuses_writes_keeps_events_in_memory() {
    let store = Shared::default();
    store.borrow_mut().refuse_writes = true;
    let mut t = tab(&store, "", T0, 1, None);
    track_n(&mut t, 3, T0);
    let codes: Vec<_> = t
        .drain_notices()
        .into_iter()
        .filter_map(|n| match n {
            Notice::Error(e) => Some(e.code()),
            _ => None,
        })
        .collect();
    assert_eq!(codes, vec!["storage_unavailable"], "reported once");
    assert!(
        !t.needs_persist(T0),
        "a failing storage does not ask to be retried at once"
    );
    let mut rx = Receiver::default();
    drain(&mut t, &mut rx, T0 + 5000.0);
    assert_eq!(rx.ids.len(), 3);
    // Storage works again: the next event after the pause is persisted.
    store.borrow_mut().refuse_writes = false;
    t.track("Later", "{}", T0 + 6000.0).unwrap();
    assert!(t.needs_persist(T0 + 6000.0), "the pause is over: try again");
    t.persist(T0 + 6000.0);
    assert!(
        queue_keys(&store).len() == 1,
        "written once the pause is over"
    );
}

#[test]
fn garbage_in_the_stored_queue_is_skipped_and_reported() {
    let store = Shared::default();
    let mut a = tab(&store, "", T0, 1, None);
    track_n(&mut a, 3, T0);
    a.pagehide(T0);
    a.release(T0);
    let key = queue_keys(&store)[0].clone();
    let text = store.borrow().get(&key).unwrap();
    store
        .borrow_mut()
        .set(&key, &format!("{text}\ne0\t{{not json\n\u{0}\u{1}garbage"))
        .unwrap();
    store
        .borrow_mut()
        .set("sgm_q.zzz.0", "complete nonsense")
        .unwrap();
    let mut b = tab(&store, "", T0 + 1.0, 2, None);
    assert_eq!(b.adopt_orphans(None, T0 + 1.0), 3);
    let skipped: usize = b
        .drain_notices()
        .into_iter()
        .filter_map(|n| match n {
            Notice::Error(segmint_core::Error::StorageCorrupt { skipped, .. }) => Some(skipped),
            _ => None,
        })
        .sum();
    assert_eq!(skipped, 3);
    let mut rx = Receiver::default();
    drain(&mut b, &mut rx, T0 + 5000.0);
    assert_eq!(rx.ids.len(), 3);
    assert!(
        queue_keys(&store).is_empty(),
        "garbage keys are removed too"
    );
}

#[test]
fn pending_consent_writes_and_sends_nothing_until_granted() {
    let store = Shared::default();
    let mut t = tab(&store, r#","consent":"pending""#, T0, 1, None);
    track_n(&mut t, 2, T0);
    assert!(
        store.borrow().keys().is_empty(),
        "no storage writes while pending"
    );
    assert!(t.cookie_id().is_none(), "no cookie while pending");
    assert!(t.poll(T0 + 1e6).is_none());
    t.set_consent(Consent::Granted, T0 + 10.0);
    assert_eq!(t.cookie_id(), Some(t.anonymous_id()));
    assert!(
        !queue_keys(&store).is_empty(),
        "held events are now persisted"
    );
    let mut rx = Receiver::default();
    drain(&mut t, &mut rx, T0 + 1e6);
    assert_eq!(rx.ids.len(), 2);
}

#[test]
fn a_choice_made_in_another_tab_holds_here() {
    let store = Shared::default();
    let mut a = tab(&store, r#","consent":"pending""#, T0, 1, None);
    let mut b = tab(&store, r#","consent":"pending""#, T0, 2, None);
    assert_ne!(
        a.anonymous_id(),
        b.anonymous_id(),
        "each tab's id, unstored"
    );
    a.identify(Some("u1"), r#"{"plan":"pro"}"#, T0).unwrap();
    track_n(&mut b, 3, T0);
    a.set_consent(Consent::Granted, T0 + 1.0);
    b.follow_consent(Consent::Granted, T0 + 2.0);
    assert_eq!(b.consent(), Consent::Granted);
    assert_eq!(b.anonymous_id(), a.anonymous_id(), "one visitor, one id");
    assert_eq!(
        b.user_id(),
        Some("u1"),
        "and the user the other tab identified"
    );
    // The events B held while pending go out under the visitor's id.
    b.flush().ok();
    let batch = b.poll(T0 + 1e6).expect("B's held events");
    let ids: Vec<String> = messages(&batch)
        .iter()
        .map(|m| m.get("anonymousId").unwrap().as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids, vec![a.anonymous_id(); 3]);
    answer(&mut b, batch.id, 200, T0 + 1e6);

    // Withdrawn in A: B drops what it holds and keeps nothing.
    track_n(&mut b, 2, T0 + 3.0);
    a.set_consent(Consent::Denied, T0 + 4.0);
    b.follow_consent(Consent::Denied, T0 + 5.0);
    assert_eq!(b.queued(), 0);
    assert_eq!(b.user_id(), None);
    track_n(&mut b, 2, T0 + 6.0);
    assert_eq!(b.queued(), 0);
    assert!(
        store.borrow().keys().is_empty(),
        "{:?}",
        store.borrow().keys()
    );
}

#[test]
fn denying_drops_the_queue_and_wipes_storage() {
    let store = Shared::default();
    let mut t = tab(
        &store,
        r#","rules":{"version":"1","segments":[]}"#,
        T0,
        1,
        None,
    );
    t.identify(Some("u1"), r#"{"plan":"pro"}"#, T0).unwrap();
    track_n(&mut t, 2, T0);
    store.borrow_mut().set("unrelated", "kept").unwrap();
    t.set_consent(Consent::Denied, T0 + 1.0);
    assert_eq!(store.borrow().keys(), vec!["unrelated"]);
    assert_eq!(t.queued(), 0);
    track_n(&mut t, 2, T0 + 2.0);
    assert_eq!(t.queued(), 0, "nothing kept while denied");
    assert_eq!(store.borrow().keys(), vec!["unrelated"]);
}

#[test]
fn global_privacy_control_denies_unless_the_site_grants() {
    let store = Shared::default();
    let mut s = start(T0, 1, None);
    s.gpc = true;
    let t = Tracker::new(
        config(""),
        store.clone(),
        Box::new(Native::default()),
        s.clone(),
    );
    assert_eq!(t.consent(), Consent::Denied);
    let t = Tracker::new(
        config(r#","consent":"granted""#),
        store.clone(),
        Box::new(Native::default()),
        s.clone(),
    );
    assert_eq!(t.consent(), Consent::Granted);
    let t = Tracker::new(
        config(r#","respectGpc":false"#),
        store.clone(),
        Box::new(Native::default()),
        s.clone(),
    );
    assert_eq!(t.consent(), Consent::Granted);
    s.remembered_consent = Some(Consent::Granted);
    let t = Tracker::new(config(""), store, Box::new(Native::default()), s);
    assert_eq!(t.consent(), Consent::Granted, "a choice the user made wins");
}

#[test]
fn a_visit_denied_from_the_start_leaves_nothing_an_earlier_visit_stored() {
    // An earlier visit, granted: ids, traits (an email), profile, queue.
    let store = Shared::default();
    let mut a = tab(&store, &format!(r#","rules":{RULES}"#), T0, 1, None);
    a.identify(Some("u1"), r#"{"email":"a@example.com"}"#, T0)
        .unwrap();
    track_n(&mut a, 3, T0);
    a.release(T0);
    let old_id = a.anonymous_id().to_string();
    for key in ["sgm_uid", "sgm_traits", "sgm_aid", "sgm_profile"] {
        assert!(store.borrow().get(key).is_some(), "{key} stored");
    }
    assert!(!queue_keys(&store).is_empty());
    // The next visit starts denied: by a remembered choice, or by Global
    // Privacy Control.
    for deny in [
        |s: &mut Start| s.remembered_consent = Some(Consent::Denied),
        |s: &mut Start| s.gpc = true,
    ] {
        let copy = Rc::new(RefCell::new(store.borrow().clone()));
        let mut s = start(T0 + 1000.0, 2, Some(a.tab_id().to_string()));
        s.cookie_id = Some(old_id.clone());
        deny(&mut s);
        let b = Tracker::new(config(""), copy.clone(), Box::new(Native::default()), s);
        assert_eq!(b.consent(), Consent::Denied);
        let left: Vec<String> = copy
            .borrow()
            .keys()
            .into_iter()
            .filter(|k| k.starts_with("sgm_"))
            .collect();
        assert!(left.is_empty(), "left behind: {left:?}");
        assert_ne!(b.anonymous_id(), old_id, "the old id is not taken up");
        assert_eq!(b.cookie_id(), None, "and no cookie is written");
    }
}

#[test]
fn identity_restores_from_cookie_or_storage_and_reset_rotates_it() {
    let store = Shared::default();
    let mut a = tab(&store, "", T0, 1, None);
    let id = a.anonymous_id().to_string();
    assert_eq!(
        store.borrow().get("sgm_aid").as_deref(),
        Some(id.as_str()),
        "mirrored"
    );
    // Cookie lost: storage restores it.
    let b = tab(&store, "", T0, 9, None);
    assert_eq!(b.anonymous_id(), id);
    // Storage lost: the cookie restores it (and storage is rewritten).
    store.borrow_mut().remove("sgm_aid");
    let mut s = start(T0, 3, None);
    s.cookie_id = Some(id.clone());
    let c = Tracker::new(config(""), store.clone(), Box::new(Native::default()), s);
    assert_eq!(c.anonymous_id(), id);
    assert_eq!(store.borrow().get("sgm_aid").as_deref(), Some(id.as_str()));
    // A tampered cookie is ignored.
    let mut s = start(T0, 4, None);
    s.cookie_id = Some("<script>".into());
    assert_eq!(
        Tracker::new(config(""), store.clone(), Box::new(Native::default()), s).anonymous_id(),
        id
    );
    // reset(): new id; queued events keep the old one.
    a.identify(Some("u1"), "{}", T0).unwrap();
    track_n(&mut a, 1, T0);
    a.reset([77; 16], T0 + 1.0);
    assert_ne!(a.anonymous_id(), id);
    assert_eq!(a.user_id(), None);
    track_n(&mut a, 1, T0 + 2.0);
    let b = a.poll(T0 + 5000.0).unwrap();
    let ids: Vec<_> = messages(&b)
        .iter()
        .map(|m| m.get("anonymousId").unwrap().as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids[0], id);
    assert_eq!(ids[2], a.anonymous_id());
}

#[test]
fn overflow_drops_the_oldest_and_reports_how_many() {
    let store = Shared::default();
    let mut t = tab(&store, r#","maxQueueEvents":5"#, T0, 1, None);
    t.set_online(false);
    track_n(&mut t, 8, T0);
    assert_eq!(t.queued(), 5);
    let dropped: usize = t
        .drain_notices()
        .into_iter()
        .filter_map(|n| match n {
            Notice::Error(segmint_core::Error::QueueOverflow { dropped }) => Some(dropped),
            _ => None,
        })
        .sum();
    assert_eq!(dropped, 3);
}

#[test]
fn bad_input_is_an_error_and_loses_nothing_else() {
    let store = Shared::default();
    let mut t = tab(&store, "", T0, 1, None);
    track_n(&mut t, 1, T0);
    let big = format!(r#"{{"x":"{}"}}"#, "y".repeat(40_000));
    assert_eq!(
        t.track("E", &big, T0).unwrap_err().code(),
        "event_too_large"
    );
    assert_eq!(
        t.track("", "{}", T0).unwrap_err().code(),
        "invalid_argument"
    );
    assert_eq!(
        t.track("E", "[1]", T0).unwrap_err().code(),
        "invalid_argument"
    );
    assert_eq!(
        t.track("E", "{\"a\":", T0).unwrap_err().code(),
        "invalid_argument"
    );
    assert_eq!(
        t.order_completed(r#"{"products":[]}"#, T0)
            .unwrap_err()
            .code(),
        "missing_field"
    );
    assert_eq!(
        t.products_searched(" ", "{}", T0).unwrap_err().code(),
        "missing_field"
    );
    track_n(&mut t, 1, T0);
    assert_eq!(t.queued(), 2);
}

const RULES: &str = r#"{"version":"v1","traits":{
  "purchases_30d":{"event":"Order Completed","aggregate":"count","window_days":30},
  "avg_price_30d":{"event":"Order Completed","aggregate":"avg","property":"products.price","window_days":30},
  "top_category_share":{"event":"Order Completed","aggregate":"top_share","property":"products.category","window_days":90},
  "days_since_first_seen":{"builtin":"days_since_first_seen"}},
 "segments":[
  {"id":"frequent-buyer","priority":40,"condition":{"purchases_30d":{"$gt":3}},"holdout":0.1},
  {"id":"bargain-hunter","priority":30,"condition":{"avg_price_30d":{"$lt":20}}},
  {"id":"new-user","priority":10,"condition":{"days_since_first_seen":{"$lte":7}}},
  {"id":"category-enthusiast","priority":20,"condition":{"top_category_share":{"$gt":0.5}}}]}"#;

/// An order with an id of its own (an order counts once).
fn order(price: f64, category: &str) -> String {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let id = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!(
        r#"{{"order_id":"o{id}","products":[{{"product_id":"p","price":{price},"category":"{category}"}}]}}"#
    )
}

fn changes(t: &mut Tracker<Shared>) -> Vec<String> {
    t.drain_notices()
        .into_iter()
        .filter_map(|n| match n {
            Notice::Segments(c) => Some(c.to_json()),
            _ => None,
        })
        .collect()
}

#[test]
fn the_four_seed_segments_follow_behaviour() {
    let store = Shared::default();
    let mut t = tab(&store, &format!(r#","rules":{RULES}"#), T0, 1, None);
    assert_eq!(
        changes(&mut t),
        vec![r#"{"segments":["new-user"],"entered":["new-user"],"exited":[]}"#]
    );
    t.order_completed(&order(50.0, "shoes"), T0).unwrap();
    assert_eq!(
        changes(&mut t),
        vec![
            r#"{"segments":["category-enthusiast","new-user"],"entered":["category-enthusiast"],"exited":[]}"#
        ]
    );
    t.order_completed(&order(5.0, "hats"), T0).unwrap();
    assert_eq!(
        changes(&mut t),
        vec![r#"{"segments":["new-user"],"entered":[],"exited":["category-enthusiast"]}"#],
        "1 of 2 is not most"
    );
    t.order_completed(&order(4.0, "bags"), T0).unwrap();
    assert_eq!(
        changes(&mut t),
        vec![
            r#"{"segments":["bargain-hunter","new-user"],"entered":["bargain-hunter"],"exited":[]}"#
        ],
        "avg 59/3 < 20"
    );
    t.order_completed(&order(5.0, "bags"), T0).unwrap();
    assert_eq!(
        t.segments(),
        ["frequent-buyer", "bargain-hunter", "new-user"],
        "4 purchases > 3"
    );
    // The event that made the change carries the new segments.
    t.flush().ok();
    let b = t.poll(T0).unwrap();
    let last = messages(&b).pop().unwrap();
    assert_eq!(
        last.get("context")
            .unwrap()
            .get("segments")
            .unwrap()
            .to_json(),
        r#"["frequent-buyer","bargain-hunter","new-user"]"#
    );
    // Eight days later no longer new; 31 days later the purchases expired.
    t.tick(T0 + 8.0 * 86_400_000.0);
    assert_eq!(t.segments(), ["frequent-buyer", "bargain-hunter"]);
    t.tick(T0 + 31.0 * 86_400_000.0);
    assert!(t.segments().is_empty());
    // Most purchases in one category: 5 of the 9 in the 90-day window.
    for _ in 0..5 {
        t.order_completed(&order(25.0, "lamps"), T0 + 32.0 * 86_400_000.0)
            .unwrap();
    }
    assert!(
        t.segments().contains(&"category-enthusiast".to_string()),
        "{:?}",
        t.segments()
    );
}

/// A page view whose segment engine comes later (the web build's second
/// module), as `tab` otherwise.
fn tab_engine_later(store: &Shared, extra: &str, now: f64, seed: u8) -> Tracker<Shared> {
    let mut start = start(now, seed, None);
    start.engine_later = true;
    Tracker::new(
        config(extra),
        store.clone(),
        Box::new(Native::default()),
        start,
    )
}

/// The `context.segments` of the messages queued so far, in order.
fn sent_segments(t: &mut Tracker<Shared>, now: f64) -> Vec<String> {
    t.flush().ok();
    let mut out = Vec::new();
    while let Some(b) = t.poll(now) {
        for m in messages(&b) {
            out.push(m.get("context").unwrap().get("segments").unwrap().to_json());
        }
        answer(t, b.id, 200, now);
    }
    out
}

#[test]
fn events_recorded_before_the_engine_arrives_count_once_it_does() {
    let store = Shared::default();
    let mut t = tab_engine_later(&store, &format!(r#","rules":{RULES}"#), T0, 1);
    assert!(!t.engine_ready());
    assert!(t.segments().is_empty() && changes(&mut t).is_empty());
    assert_eq!(t.rules_version(), None, "the rules wait for the engine");
    assert_eq!(t.decide(&["frequent-buyer".into()]).segment, None);
    for price in [5.0, 6.0, 7.0, 8.0] {
        t.order_completed(&order(price, "bags"), T0).unwrap();
    }
    t.tick(T0 + 1.0);
    assert!(t.segments().is_empty());
    assert_eq!(t.traits_json(T0), "{}", "no computed traits yet");
    t.engine_arrived(T0 + 10.0);
    assert_eq!(t.rules_version(), Some("v1"));
    assert_eq!(
        t.segments(),
        [
            "frequent-buyer",
            "bargain-hunter",
            "category-enthusiast",
            "new-user"
        ],
        "the four orders recorded before count"
    );
    assert!(t.traits_json(T0 + 10.0).contains(r#""purchases_30d":4"#));
    assert_eq!(
        changes(&mut t).len(),
        1,
        "one change, once the engine is there"
    );
    t.engine_arrived(T0 + 11.0);
    assert_eq!(t.segments().len(), 4, "arriving twice changes nothing");
}

#[test]
fn before_the_engine_arrives_events_carry_the_segments_the_visitor_had() {
    let store = Shared::default();
    let rules = format!(r#","rules":{RULES}"#);
    // A first page view, engine and all, makes a frequent buyer.
    let mut first = tab(&store, &rules, T0, 1, None);
    for _ in 0..4 {
        first.order_completed(&order(50.0, "bags"), T0).unwrap();
    }
    first.persist(T0);
    assert_eq!(
        first.segments(),
        ["frequent-buyer", "category-enthusiast", "new-user"]
    );
    let mut rx = Receiver::default();
    drain(&mut first, &mut rx, T0);
    first.pagehide(T0);
    // The next page view: its messages carry those segments from the
    // start, and the page hears them at once, as with the engine there.
    let mut next = tab_engine_later(&store, &rules, T0 + 60_000.0, 2);
    assert_eq!(
        changes(&mut next),
        vec![
            r#"{"segments":["frequent-buyer","category-enthusiast","new-user"],"entered":["frequent-buyer","category-enthusiast","new-user"],"exited":[]}"#
        ]
    );
    next.page(None, "{}", T0 + 60_000.0).unwrap();
    next.engine_arrived(T0 + 60_100.0);
    assert_eq!(
        next.segments(),
        ["frequent-buyer", "category-enthusiast", "new-user"]
    );
    assert!(
        changes(&mut next).is_empty(),
        "the engine agrees: no change"
    );
    next.track("Viewed", "{}", T0 + 60_200.0).unwrap();
    assert_eq!(
        sent_segments(&mut next, T0 + 60_200.0),
        vec![r#"["frequent-buyer","category-enthusiast","new-user"]"#; 2]
    );
}

#[test]
fn a_rules_answer_before_the_engine_waits_for_it_and_fresh_cached_rules_are_not_fetched_again() {
    let store = Shared::default();
    let url = r#","rulesUrl":"https://c.example/v1/rules","rulesTtlSeconds":300"#;
    let mut t = tab_engine_later(&store, url, T0, 1);
    let request = t.rules_request(T0).expect("nothing cached: a fetch");
    assert_eq!(request.etag, None);
    t.rules_fetched(200, Some("\"e1\"".into()), RULES, T0 + 100.0);
    assert_eq!(t.rules_version(), None, "held for the engine");
    t.order_completed(&order(10.0, "bags"), T0 + 200.0).unwrap();
    t.engine_arrived(T0 + 300.0);
    assert_eq!(t.rules_version(), Some("v1"));
    assert!(t.traits_json(T0 + 300.0).contains(r#""purchases_30d":1"#));
    t.persist(T0 + 300.0);
    // The next page view, before its engine: the cached document is fresh,
    // so no fetch, and its ETag is known for the one after the TTL.
    let mut next = tab_engine_later(&store, url, T0 + 1_000.0, 2);
    assert_eq!(next.rules_request(T0 + 1_000.0), None);
    let later = next.rules_request(T0 + 400_000.0).expect("stale: a fetch");
    assert_eq!(later.etag.as_deref(), Some("\"e1\""));
}

#[test]
fn before_the_later_module_events_are_stored_not_sent_and_go_once_it_arrives() {
    let store = Shared::default();
    let mut t = tab_engine_later(&store, "", T0, 1);
    t.set_gzip(true);
    track_n(&mut t, 3, T0);
    let flush = t.flush().expect("a flush that waits for the answers");
    assert!(
        t.poll(T0 + 5_000.0).is_none(),
        "no batch without delivery's code"
    );
    assert_eq!(t.next_wake(), None, "and no timer for one");
    assert!(t.hidden(T0 + 5_000.0).is_empty());
    assert!(t.give_up_overdue(T0 + 60_000.0).is_empty());
    assert_eq!(t.queued(), 3);
    t.engine_arrived(T0 + 6_000.0);
    let b = t
        .poll(T0 + 6_000.0)
        .expect("the flush's batch, once it is there");
    assert_eq!(b.seqs.len(), 3);
    assert!(b.gzipped.is_some(), "the encoder came with it");
    answer(&mut t, b.id, 200, T0 + 6_100.0);
    assert_eq!(t.queued(), 0);
    let done = t
        .drain_notices()
        .into_iter()
        .find_map(|n| match n {
            Notice::Flushed(done) => Some(done),
            _ => None,
        })
        .expect("the flush settles");
    assert_eq!((done.id, done.sent, done.pending), (flush, 3, 0));
}

#[test]
fn a_page_gone_before_the_later_module_leaves_its_events_to_the_next_one() {
    let store = Shared::default();
    let mut t = tab_engine_later(&store, "", T0, 1);
    track_n(&mut t, 4, T0);
    assert!(t.pagehide(T0 + 100.0).is_empty(), "nothing to beacon with");
    t.release(T0 + 100.0);
    let previous = t.tab_id().to_string();
    let mut next = tab_engine_later(&store, "", T0 + 1_000.0, 2);
    assert!(
        !next.has_orphans(Some(&previous), T0 + 1_000.0),
        "taken over once the next page view can send them"
    );
    assert_eq!(next.adopt_orphans(Some(&previous), T0 + 1_000.0), 0);
    next.engine_arrived(T0 + 1_500.0);
    assert!(next.has_orphans(Some(&previous), T0 + 1_500.0));
    assert_eq!(next.adopt_orphans(Some(&previous), T0 + 1_500.0), 4);
    let mut rx = Receiver::default();
    drain(&mut next, &mut rx, T0 + 1_500.0);
    assert_eq!((rx.ids.len(), rx.duplicates()), (4, 0));
}

#[test]
fn prices_given_as_text_count_and_are_sent_as_numbers() {
    let store = Shared::default();
    let mut t = tab(&store, &format!(r#","rules":{RULES}"#), T0, 1, None);
    // As a template prints them: every amount a string.
    t.order_completed(
        r#"{"order_id":"o1","total":"10.50","currency":"EUR","products":[{"product_id":"p","price":"5.25","quantity":"2","category":"hats"}]}"#,
        T0,
    )
    .unwrap();
    assert!(t.segments().contains(&"bargain-hunter".to_string()));
    let traits = Value::parse(&t.traits_json(T0)).unwrap();
    assert_eq!(traits.get("avg_price_30d"), Some(&Value::Number(5.25)));
    // "$5" is not a number segmint guesses at: the event is refused.
    let err = t
        .order_completed(
            r#"{"order_id":"o2","products":[{"product_id":"p","price":"$5"}]}"#,
            T0,
        )
        .unwrap_err();
    assert_eq!(err.code(), "missing_field");
    t.flush().ok();
    let b = t.poll(T0).unwrap();
    let orders: Vec<Value> = messages(&b)
        .iter()
        .filter(|m| m.get("event").and_then(Value::as_str) == Some("Order Completed"))
        .map(|m| m.get("properties").unwrap().clone())
        .collect();
    assert_eq!(
        orders.iter().map(Value::to_json).collect::<Vec<_>>(),
        [
            r#"{"order_id":"o1","total":10.5,"currency":"EUR","products":[{"product_id":"p","price":5.25,"quantity":2,"category":"hats"}]}"#
        ]
    );
}

#[test]
fn computed_traits_override_the_users_own_only_while_they_have_a_value() {
    let rules = r#"{"version":"v","traits":{"avg_price_30d":{"event":"Order Completed","aggregate":"avg","property":"products.price","window_days":30}},
      "segments":[{"id":"cheap","condition":{"avg_price_30d":{"$lt":20}}},{"id":"page","condition":{"context.path":"/sale"}}]}"#;
    let store = Shared::default();
    let mut t = tab(&store, &format!(r#","rules":{rules}"#), T0, 1, None);
    assert!(t.segments().is_empty());
    // The user's own trait counts while the profile has no average.
    t.identify(Some("u1"), r#"{"avg_price_30d":10}"#, T0)
        .unwrap();
    assert_eq!(t.segments(), ["cheap"]);
    // A computed value wins.
    t.order_completed(&order(50.0, "shoes"), T0).unwrap();
    assert!(t.segments().is_empty());
    // Once it expires, the user's trait shows again.
    t.tick(T0 + 31.0 * 86_400_000.0);
    assert_eq!(t.segments(), ["cheap"]);
    // A page change reaches the conditions' `context`.
    let sale = PageInfo {
        url: "https://shop.example/sale".into(),
        path: "/sale".into(),
        ..PageInfo::default()
    };
    t.set_page(sale, T0 + 31.0 * 86_400_000.0);
    assert_eq!(t.segments(), ["cheap", "page"]);
}

#[test]
fn rules_load_from_cache_revalidate_and_survive_bad_documents() {
    let store = Shared::default();
    let url = r#","rulesUrl":"https://c.example/v1/rules""#;
    let mut t = tab(&store, url, T0, 1, None);
    let req = t.rules_request(T0).unwrap();
    assert_eq!(
        (req.url.as_str(), req.etag),
        ("https://c.example/v1/rules", None)
    );
    t.rules_fetched(200, Some("\"e1\"".into()), RULES, T0);
    assert_eq!(t.rules_version(), Some("v1"));
    assert!(
        t.rules_request(T0 + 1000.0).is_none(),
        "fresh for rulesTtlSeconds"
    );
    t.rules_fetched(
        200,
        Some("\"e2\"".into()),
        r#"{"version":"v2","segments":[{"id":"x"}]}"#,
        T0 + 1.0,
    );
    let errors: Vec<String> = t
        .drain_notices()
        .into_iter()
        .filter_map(|n| match n {
            Notice::Error(e) => Some(e.to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(errors, vec!["segments[0].condition: required"]);
    assert_eq!(t.rules_version(), Some("v1"), "last good rules stay");
    t.persist(T0 + 1.0);
    // Next page: cached rules at once, revalidation with the ETag after the TTL.
    let mut n = tab(&store, url, T0 + 400_000.0, 2, None);
    assert_eq!(n.rules_version(), Some("v1"));
    assert_eq!(
        n.rules_request(T0 + 400_000.0).unwrap().etag.as_deref(),
        Some("\"e1\"")
    );
    n.rules_fetched(304, None, "", T0 + 400_000.0);
    assert!(n.rules_request(T0 + 400_001.0).is_none());
    n.rules_fetched(0, None, "", T0 + 400_002.0);
    assert_eq!(n.rules_version(), Some("v1"));
}

#[test]
fn rules_are_revalidated_once_per_ttl_while_the_page_lives() {
    let store = Shared::default();
    let url = r#","rulesUrl":"https://c.example/v1/rules","rulesTtlSeconds":300"#;
    let mut t = tab(&store, url, T0, 1, None);
    let ttl = 300_000.0;
    assert!(t.rules_request(T0).is_some());
    // In flight: the heartbeat 30 s later asks for no second request.
    assert!(t.rules_request(T0 + 30_000.0).is_none());
    t.rules_fetched(200, Some("\"e1\"".into()), RULES, T0 + 31_000.0);
    assert!(t.rules_request(T0 + 31_000.0 + ttl - 1.0).is_none());
    // Past the TTL, the same page revalidates with the ETag.
    let later = T0 + 31_000.0 + ttl;
    let req = t.rules_request(later).expect("a revalidation");
    assert_eq!(req.etag.as_deref(), Some("\"e1\""));
    // An unanswered request may be made again after a minute.
    assert!(t.rules_request(later + 59_000.0).is_none());
    assert!(t.rules_request(later + 60_000.0).is_some());
    // A failure waits a TTL, not a heartbeat, before the next try.
    t.rules_fetched(503, None, "", later + 61_000.0);
    assert!(t.rules_request(later + 91_000.0).is_none());
    assert!(t.rules_request(later + 61_000.0 + ttl).is_some());
    assert_eq!(t.rules_version(), Some("v1"));
}

#[test]
fn the_profile_persists_across_page_views() {
    let store = Shared::default();
    let rules = format!(r#","rules":{RULES}"#);
    let mut a = tab(&store, &rules, T0, 1, None);
    for _ in 0..4 {
        a.order_completed(&order(30.0, "shoes"), T0).unwrap();
    }
    a.persist(T0);
    let b = tab(&store, &rules, T0 + 3_600_000.0, 2, None);
    assert!(b.segments().contains(&"frequent-buyer".to_string()));
    let traits = Value::parse(&b.traits_json(T0 + 3_600_000.0)).unwrap();
    assert_eq!(traits.get("purchases_30d"), Some(&Value::Number(4.0)));
    // A damaged profile is reported and replaced.
    store.borrow_mut().set("sgm_profile", "{oops").unwrap();
    let mut c = tab(&store, &rules, T0, 3, None);
    assert!(c
        .drain_notices()
        .iter()
        .any(|n| matches!(n, Notice::Error(e) if e.code() == "storage_corrupt")));
}

#[test]
fn replaying_the_delivered_messages_gives_the_segments_the_tracker_computed() {
    use segmint_core::replay::replay;
    let store = Shared::default();
    let rules_doc = format!(r#","rules":{RULES}"#);
    let mut t = tab(&store, &rules_doc, T0, 1, None);
    let mut rx = Receiver::default();
    let mut delivered = Vec::new();
    let mut now = T0;
    for (i, price) in [50.0, 4.0, 5.0, 5.0, 12.0].iter().enumerate() {
        now += 3_600_000.0 * (i as f64 + 1.0);
        t.page(Some("Shop"), "{}", now).unwrap();
        t.order_completed(
            &order(*price, if i % 2 == 0 { "shoes" } else { "hats" }),
            now,
        )
        .unwrap();
        t.identify(Some("u1"), &format!(r#"{{"visits":{i}}}"#), now)
            .unwrap();
        t.flush().ok();
        while let Some(b) = t.poll(now) {
            rx.take(&b);
            delivered.extend(messages(&b));
            answer(&mut t, b.id, 200, now);
        }
    }
    let rules = segmint_core::rules::Rules::parse(RULES).unwrap();
    let r = replay(&rules, &delivered, &Native::default(), 30.0 * 60_000.0).unwrap();
    assert_eq!(r.segments, t.segments());
    assert_eq!(r.reported, t.segments());
    assert_eq!(r.traits.get("purchases_30d"), Some(&Value::Number(5.0)));
    assert_eq!(r.traits.get("visits"), Some(&Value::Number(4.0)));
}

#[test]
fn tabs_share_the_profile_through_storage_changes() {
    let store = Shared::default();
    let rules = format!(r#","rules":{RULES}"#);
    let mut a = tab(&store, &rules, T0, 1, None);
    let mut b = tab(&store, &rules, T0, 2, None);
    // Each start writes the profile (the adapter persists after every task).
    a.persist(T0);
    b.persist(T0);
    // What the browser tells the other tab after each write.
    let tell = |t: &mut Tracker<Shared>, key: &str| {
        let value = store.borrow().get(key);
        t.storage_changed(key, value.as_deref(), T0);
    };
    for _ in 0..3 {
        a.order_completed(&order(50.0, "shoes"), T0).unwrap();
    }
    a.persist(T0);
    tell(&mut b, "sgm_profile");
    b.order_completed(&order(50.0, "books"), T0).unwrap();
    b.persist(T0);
    assert!(
        b.segments().contains(&"frequent-buyer".to_string()),
        "4 across the tabs"
    );
    tell(&mut a, "sgm_profile");
    assert!(a.segments().contains(&"frequent-buyer".to_string()));
    let next = tab(&store, &rules, T0, 3, None);
    assert!(
        next.traits_json(T0).contains(r#""purchases_30d":4"#),
        "{}",
        next.traits_json(T0)
    );

    // Identity: signed in in A; reset in B.
    a.identify(Some("u1"), r#"{"plan":"pro"}"#, T0).unwrap();
    tell(&mut b, "sgm_uid");
    tell(&mut b, "sgm_traits");
    assert_eq!(b.user_id(), Some("u1"));
    assert!(b.traits_json(T0).contains(r#""plan":"pro""#));
    b.reset([9; 16], T0);
    b.persist(T0);
    for key in ["sgm_aid", "sgm_uid", "sgm_traits", "sgm_profile"] {
        tell(&mut a, key);
    }
    assert_eq!(a.anonymous_id(), b.anonymous_id());
    assert_eq!(a.user_id(), None);
    assert_eq!(a.segments(), ["new-user"]);

    // A tab without consent takes nothing.
    let mut pending = tab(&store, r#","consent":"pending""#, T0, 4, None);
    let own = pending.anonymous_id().to_string();
    tell(&mut pending, "sgm_aid");
    assert_eq!(pending.anonymous_id(), own);
}

/// Records an order in `t` and writes the profile, as one task does;
/// returns what it wrote, which the other tabs hear of only later.
fn buy(store: &Shared, t: &mut Tracker<Shared>, at: f64) -> String {
    t.order_completed(&order(50.0, "shoes"), at).unwrap();
    t.persist(at);
    store.borrow().get("sgm_profile").unwrap()
}

/// `t` hears that another tab wrote the profile `written`; what `t`
/// then writes (its timer fires within 100 ms), if anything.
fn hear(store: &Shared, t: &mut Tracker<Shared>, written: &str, at: f64) -> Option<String> {
    t.storage_changed("sgm_profile", Some(written), at);
    let later = at + 100.0;
    let rewrites = t.needs_persist(later);
    t.persist(later);
    rewrites.then(|| store.borrow().get("sgm_profile").unwrap())
}

/// Three tabs each buy before hearing of the others' purchases. Then, in
/// simulated time, the browser tells every other tab of each write after
/// 1 to 10 ms (in the order written), and each tab writes when its
/// tracker asks to (at once, or at its next wake). `schedule` seeds the
/// delays. How many writes there were.
fn three_tabs_buy_at_once(store: &Shared, tabs: &mut [Tracker<Shared>; 3], schedule: u64) -> usize {
    let mut rng = schedule
        .wrapping_mul(6_364_136_223_846_793_005)
        .wrapping_add(1);
    let mut delay = move || {
        rng = rng
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        1.0 + (rng >> 33) as f64 % 10.0
    };
    // (when, tab, what it hears: None for its own timer)
    let mut pending: Vec<(f64, usize, Option<String>)> = Vec::new();
    let mut last_arrival = [0.0f64; 3];
    let mut writes = 0;
    let mut written = |from: usize, text: String, at: f64, pending: &mut Vec<_>| {
        writes += 1;
        for to in (0..3).filter(|to| *to != from) {
            // Each tab hears the writes in the order they were made.
            let when = (at + delay()).max(last_arrival[to]);
            last_arrival[to] = when;
            pending.push((when, to, Some(text.clone())));
        }
    };
    for (i, t) in tabs.iter_mut().enumerate() {
        let at = T0 + 1.0 + i as f64;
        let text = buy(store, t, at);
        written(i, text, at, &mut pending);
    }
    let mut steps = 0;
    while let Some(next) = (0..pending.len()).min_by(|a, b| pending[*a].0.total_cmp(&pending[*b].0))
    {
        steps += 1;
        assert!(steps < 500, "the tabs keep rewriting");
        let (at, i, heard) = pending.swap_remove(next);
        let t = &mut tabs[i];
        if let Some(text) = heard {
            t.storage_changed("sgm_profile", Some(&text), at);
        }
        if t.needs_persist(at) {
            t.persist(at);
            let text = store.borrow().get("sgm_profile").unwrap();
            written(i, text, at, &mut pending);
        } else if let Some(wake) = t.next_wake().filter(|w| *w < at + 1000.0) {
            if !pending
                .iter()
                .any(|(w, j, h)| *j == i && h.is_none() && *w == wake)
            {
                pending.push((wake.max(at), i, None));
            }
        }
    }
    writes
}

#[test]
fn tabs_recording_at_once_each_keep_their_events_in_the_shared_profile() {
    let rules = format!(r#","rules":{RULES}"#);
    let purchases = |t: &Tracker<Shared>| t.traits_json(T0 + 10.0);
    for schedule in 0..50 {
        let store = Shared::default();
        let mut tabs = [1, 2, 3].map(|seed| tab(&store, &rules, T0, seed, None));
        for t in &mut tabs {
            t.persist(T0);
        }
        // The last write holds C's purchase only. A tab that finds its own
        // purchase missing records it again and writes; a tab that hears
        // an older copy than its own writes its own back.
        let writes = three_tabs_buy_at_once(&store, &mut tabs, schedule);
        assert!(writes > 3, "some tab wrote again");
        for t in tabs
            .iter()
            .chain([&tab(&store, &rules, T0 + 10.0, 4, None)])
        {
            assert!(
                purchases(t).contains(r#""purchases_30d":3"#),
                "schedule {schedule}: {}",
                purchases(t)
            );
        }
    }
    let store = Shared::default();
    let mut tabs = [1, 2, 3].map(|seed| tab(&store, &rules, T0, seed, None));
    three_tabs_buy_at_once(&store, &mut tabs, 7);
    let [mut a, mut b, _] = tabs;
    // A copy older than a tab's own (written before that tab's latest
    // purchase) is written over; a copy that holds it all is taken.
    let old = store.borrow().get("sgm_profile").unwrap();
    let newer = buy(&store, &mut a, T0 + 6.0);
    assert_eq!(hear(&store, &mut a, &old, T0 + 6.5), Some(newer.clone()));
    assert_eq!(hear(&store, &mut b, &newer, T0 + 6.5), None);
    assert!(
        purchases(&b).contains(r#""purchases_30d":4"#),
        "{}",
        purchases(&b)
    );

    // A reset in another tab: the old profile's purchases are not carried
    // into the new identity's.
    let wa = buy(&store, &mut a, T0 + 8.0);
    b.storage_changed("sgm_profile", Some(&wa), T0 + 8.0);
    b.reset([9; 16], T0 + 9.0);
    b.persist(T0 + 9.0);
    for key in ["sgm_aid", "sgm_profile"] {
        let value = store.borrow().get(key);
        a.storage_changed(key, value.as_deref(), T0 + 9.0);
    }
    assert!(!a.needs_persist(T0 + 9.0));
    assert!(
        purchases(&a).contains(r#""purchases_30d":0"#),
        "{}",
        purchases(&a)
    );
}

#[test]
fn a_tab_of_an_older_segmint_still_shares_its_events() {
    // A tab left open over a deploy runs the segmint from before record
    // counts: its copies carry none, and are never taken for older ones.
    let store = Shared::default();
    let rules = format!(r#","rules":{RULES}"#);
    let mut old = tab(&store, &rules, T0, 1, None);
    let mut new = tab(&store, &rules, T0, 2, None);
    buy(&store, &mut new, T0 + 1.0);
    let written = buy(&store, &mut old, T0 + 2.0);
    let at = written.find(",\"writers\":").unwrap();
    let uncounted = format!("{}}}", &written[..at]);
    assert!(
        hear(&store, &mut new, &uncounted, T0 + 3.0).is_some(),
        "its own purchase written back"
    );
    assert!(
        new.traits_json(T0 + 4.0).contains(r#""purchases_30d":2"#),
        "{}",
        new.traits_json(T0 + 4.0)
    );
}

#[test]
fn rules_one_tab_fetched_are_in_force_in_every_tab_over_the_shared_profile() {
    let store = Shared::default();
    let extra = r#","rulesUrl":"https://c.example/v1/rules""#;
    let mut a = tab(&store, extra, T0, 1, None);
    let mut b = tab(&store, extra, T0, 2, None);
    let tell = |t: &mut Tracker<Shared>, key: &str| {
        let value = store.borrow().get(key);
        t.storage_changed(key, value.as_deref(), T0);
    };
    a.rules_fetched(200, Some("\"e1\"".into()), RULES, T0);
    a.persist(T0);
    tell(&mut b, "sgm_rules");
    assert_eq!(b.rules_version(), Some("v1"));
    assert!(
        b.rules_request(T0 + 1000.0).is_none(),
        "fresh: A just fetched them"
    );
    b.persist(T0);
    for _ in 0..2 {
        b.order_completed(&order(50.0, "shoes"), T0).unwrap();
    }
    b.persist(T0);
    tell(&mut a, "sgm_profile");
    // v2: a Frequent Buyer from 2 purchases. A fetches it; B takes it over
    // the stored profile, with B's own purchases in it.
    let v2 = RULES
        .replace(r#""version":"v1""#, r#""version":"v2""#)
        .replace(r#"{"$gt":3}"#, r#"{"$gte":2}"#);
    a.rules_fetched(200, Some("\"e2\"".into()), &v2, T0 + 1.0);
    assert!(a.segments().contains(&"frequent-buyer".to_string()));
    a.persist(T0 + 1.0);
    tell(&mut b, "sgm_rules");
    assert_eq!(b.rules_version(), Some("v2"));
    assert!(b.segments().contains(&"frequent-buyer".to_string()));
    // The same document again (a revalidation) changes nothing.
    let before = b.traits_json(T0 + 2.0);
    a.rules_fetched(304, None, "", T0 + 2.0);
    tell(&mut b, "sgm_rules");
    assert_eq!(b.traits_json(T0 + 2.0), before);
}

#[test]
fn private_url_parameters_never_leave_the_page() {
    let store = Shared::default();
    let mut s = start(T0, 1, None);
    s.page = PageInfo {
        url: "https://shop.example/account?Email=a%40b.c&utm_source=news&ref=x#access_token=s"
            .into(),
        path: "/account".into(),
        search: "?Email=a%40b.c&utm_source=news&ref=x".into(),
        referrer: "https://mail.example/open?token=t&m=1".into(),
        ..PageInfo::default()
    };
    let mut t = Tracker::new(
        config(r#","stripUrlParams":["email","token","access_token"]"#),
        store.clone(),
        Box::new(Native::default()),
        s,
    );
    t.track("Viewed", "{}", T0).unwrap();
    t.page(None, "{}", T0).unwrap();
    // A single-page app's next page.
    t.set_page(
        PageInfo {
            url: "https://shop.example/#/cart?token=u".into(),
            path: "/".into(),
            ..PageInfo::default()
        },
        T0,
    );
    t.track("Cart Viewed", "{}", T0).unwrap();
    t.flush().unwrap();
    let sent = messages(&t.poll(T0).unwrap());
    let page = |m: &Value| m.get("context").unwrap().get("page").unwrap().to_json();
    assert_eq!(
        page(&sent[0]),
        r#"{"path":"/account","referrer":"https://mail.example/open?m=1","search":"?utm_source=news&ref=x","title":"","url":"https://shop.example/account?utm_source=news&ref=x"}"#
    );
    assert_eq!(
        sent[0]
            .get("context")
            .unwrap()
            .get("campaign")
            .unwrap()
            .to_json(),
        r#"{"source":"news"}"#
    );
    let props = sent[1].get("properties").unwrap();
    assert_eq!(
        props.get("url").unwrap().as_str(),
        Some("https://shop.example/account?utm_source=news&ref=x")
    );
    assert_eq!(
        props.get("referrer").unwrap().as_str(),
        Some("https://mail.example/open?m=1")
    );
    assert!(
        page(&sent[2]).contains(r#""url":"https://shop.example/#/cart""#),
        "{}",
        page(&sent[2])
    );
    let all = sent.iter().map(Value::to_json).collect::<String>();
    for private in ["a%40b.c", "token", "Email", "=s\""] {
        assert!(!all.contains(private), "{private} in {all}");
    }
}

#[test]
fn a_page_with_a_huge_url_still_records_its_events() {
    // State kept in the query (a configurator, a filter), 20 KB of it:
    // the page's URL and query alone would pass the 32 KB event limit.
    let store = Shared::default();
    let mut s = start(T0, 1, None);
    let query = format!("?utm_source=news&state={}", "\u{e9}".repeat(10_000));
    s.page = PageInfo {
        url: format!("https://shop.example/configure{query}"),
        path: "/configure".into(),
        search: query.clone(),
        referrer: format!("https://shop.example/{query}"),
        title: "T".repeat(5000),
        ..PageInfo::default()
    };
    let mut t = Tracker::new(config(""), store.clone(), Box::new(Native::default()), s);
    t.track("Viewed", "{}", T0).unwrap();
    t.order_completed(&order(20.0, "shoes"), T0).unwrap();
    t.flush().unwrap();
    let sent = messages(&t.poll(T0).unwrap());
    assert_eq!(sent.len(), 2);
    let page = sent[0].get("context").unwrap().get("page").unwrap();
    let text = |k: &str| page.get(k).unwrap().as_str().unwrap().to_string();
    assert!(text("url").starts_with("https://shop.example/configure?utm_source=news&state=\u{e9}"));
    for (k, cap) in [
        ("url", 2048),
        ("search", 2048),
        ("referrer", 2048),
        ("title", 512),
    ] {
        assert!(
            text(k).len() <= cap && text(k).len() > cap - 4,
            "{k}: {} bytes",
            text(k).len()
        );
    }
    assert_eq!(
        sent[0]
            .get("context")
            .unwrap()
            .get("campaign")
            .unwrap()
            .to_json(),
        r#"{"source":"news"}"#
    );
}

#[test]
fn identify_merges_one_user_s_traits_and_starts_afresh_for_another() {
    let store = Shared::default();
    let mut t = tab(&store, "", T0, 1, None);
    t.identify(
        Some("u1"),
        r#"{"email":"a@shop.example","plan":"free"}"#,
        T0,
    )
    .unwrap();
    t.identify(None, r#"{"plan":"pro"}"#, T0).unwrap();
    t.identify(Some("u1"), r#"{"visits":2}"#, T0).unwrap();
    // A second shopper signs in on the same browser, without reset().
    t.identify(Some("u2"), r#"{"plan":"free"}"#, T0).unwrap();
    t.flush().unwrap();
    let traits: Vec<String> = messages(&t.poll(T0).unwrap())
        .iter()
        .map(|m| m.get("traits").unwrap().to_json())
        .collect();
    assert_eq!(
        traits,
        [
            r#"{"email":"a@shop.example","plan":"free"}"#,
            r#"{"email":"a@shop.example","plan":"pro"}"#,
            r#"{"email":"a@shop.example","plan":"pro","visits":2}"#,
            r#"{"plan":"free"}"#,
        ]
    );
    assert_eq!(
        store.borrow().get("sgm_traits").as_deref(),
        Some(r#"{"plan":"free"}"#)
    );
    // The next page view restores the new user's alone.
    let next = tab(&store, "", T0, 2, None);
    assert_eq!(next.user_id(), Some("u2"));
}

#[test]
fn tabs_identifying_at_once_keep_both_tabs_traits() {
    let store = Shared::default();
    let mut a = tab(&store, "", T0, 1, None);
    let mut b = tab(&store, "", T0, 2, None);
    a.identify(Some("u1"), r#"{"plan":"pro"}"#, T0).unwrap();
    // B identifies before hearing of A's write: its copy lacks A's trait.
    let from_a = store.borrow().get("sgm_traits");
    b.identify(Some("u1"), r#"{"cart":3}"#, T0).unwrap();
    let from_b = store.borrow().get("sgm_traits");
    assert_eq!(from_b.as_deref(), Some(r#"{"cart":3}"#));
    a.storage_changed("sgm_traits", from_b.as_deref(), T0);
    b.storage_changed("sgm_traits", from_a.as_deref(), T0);
    let both = r#""cart":3"#;
    for t in [&a, &b] {
        let traits = t.traits_json(T0);
        assert!(
            traits.contains(both) && traits.contains(r#""plan":"pro""#),
            "{traits}"
        );
    }
    let stored = store.borrow().get("sgm_traits").unwrap();
    assert!(stored.contains(both) && stored.contains("plan"), "{stored}");

    // Another user signs in in B: A takes their traits alone.
    b.identify(Some("u2"), r#"{"email":"b@shop.example"}"#, T0)
        .unwrap();
    for key in ["sgm_uid", "sgm_traits"] {
        let value = store.borrow().get(key);
        a.storage_changed(key, value.as_deref(), T0);
    }
    assert_eq!(a.user_id(), Some("u2"));
    assert!(!a.traits_json(T0).contains("plan"), "{}", a.traits_json(T0));
    assert_eq!(
        store.borrow().get("sgm_traits").as_deref(),
        Some(r#"{"email":"b@shop.example"}"#)
    );
}
