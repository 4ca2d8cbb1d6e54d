//! A deterministic simulation of one site in one browser: tabs and their
//! page views (each a real [`Tracker`]), a shared localStorage, per-tab
//! sessionStorage, cookies, a device clock, a network and a collector,
//! all driven by one seed.
//!
//! The page views are driven the way `src/runtime.rs` drives the tracker
//! in a browser (each step names what it stands for there): after every
//! call, overdue requests are given up, due batches are sent, storage is
//! written in a microtask, the timer is re-armed and notices are drained.
//! Faults are drawn from the seed: the collector failing in every way it
//! can (5xx, 429, Retry-After, redirects, refusals, 413, no answer),
//! requests and answers lost or late, reloads, navigations, closed and
//! crashed tabs, the back/forward cache, frozen background tabs, offline
//! periods, storage that is full, throws or holds garbage, a clock set
//! back or ahead, consent changes and `reset()`.
//!
//! Then the faults stop, every tab goes away, and one last page view runs
//! until nothing is queued. The invariant ([`World::check`]): every event
//! recorded under granted consent reached the collector, with one
//! messageId, unless its loss is one the contract allows and reports
//! (a refusal for good, a withdrawal of consent, a storage that refused
//! it or was corrupted under it); nothing recorded under pending consent
//! that was never granted, or under denied consent, reached it; stored
//! queues stay within their budgets; nothing panics.

use segmint_core::condition::Native;
use segmint_core::config::{Config, Consent};
use segmint_core::delivery::{Batch, Outcome};
use segmint_core::error::Error;
use segmint_core::message::PageInfo;
use segmint_core::queue::{HeadBlocks, MemoryBlocks, QUEUE_PREFIX, STORED_QUEUE_BUDGET};
use segmint_core::store::Store;
use segmint_core::tracker::{Notice, Start, Tracker, KEY_PREFIX, SHARED_KEYS};
use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt::Write as _;
use std::io::Read as _;
use std::rc::Rc;

/// 2026-11-23, in ms: the simulated device clock starts here.
const T0: f64 = 1_795_405_732_000.0;
const ENDPOINT: &str = "https://collector.example";
/// The heartbeat interval of `src/runtime.rs`.
const HEARTBEAT_MS: f64 = 30_000.0;
/// How long the last page view may take to empty the queue.
const DRAIN_MS: f64 = 3.0 * 3600.0 * 1000.0;
/// The consent cookie's name (`runtime::CONSENT_COOKIE`) is also the key
/// whose storage events carry a choice to other tabs.
const CONSENT_SIGNAL: &str = "sgm_consent";

// --- randomness ----------------------------------------------------------

/// splitmix64: the schedule's only source of randomness.
pub struct SimRng(u64);

impl SimRng {
    pub fn new(seed: u64) -> SimRng {
        SimRng(seed ^ 0x5EED_5EED_0000_0001)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }
    pub fn between(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }
    fn bytes<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        for b in out.iter_mut() {
            *b = self.next_u64() as u8;
        }
        out
    }
}

// --- storage ---------------------------------------------------------------

/// How localStorage behaves.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum StorageHealth {
    Healthy,
    /// Writes beyond this many bytes of keys and values are refused.
    Full(usize),
    /// Every access throws (reads find nothing, writes are refused).
    Throwing,
}

/// The origin's localStorage, shared by its page views.
pub struct Origin {
    map: BTreeMap<String, String>,
    pub health: StorageHealth,
    /// Writes refused so far.
    pub refused: u64,
    /// Storage events to deliver: (writer, key, new value).
    pub changes: Vec<(usize, String, Option<String>)>,
}

impl Origin {
    fn used(&self) -> usize {
        self.map.iter().map(|(k, v)| k.len() + v.len()).sum()
    }
    fn chunks(&self) -> impl Iterator<Item = (&String, &String)> {
        self.map.iter().filter(|(k, _)| k.starts_with(QUEUE_PREFIX))
    }
}

/// One page view's handle on the origin's localStorage.
pub struct TabStore {
    origin: Rc<RefCell<Origin>>,
    pv: usize,
}

impl Store for TabStore {
    fn get(&self, key: &str) -> Option<String> {
        let o = self.origin.borrow();
        if o.health == StorageHealth::Throwing {
            return None;
        }
        o.map.get(key).cloned()
    }
    fn set(&mut self, key: &str, value: &str) -> Result<(), String> {
        let mut o = self.origin.borrow_mut();
        match o.health {
            StorageHealth::Throwing => {
                o.refused += 1;
                return Err("SecurityError".into());
            }
            StorageHealth::Full(quota) => {
                let old = o.map.get(key).map_or(0, |v| key.len() + v.len());
                if o.used() - old + key.len() + value.len() > quota {
                    o.refused += 1;
                    return Err("QuotaExceededError".into());
                }
            }
            StorageHealth::Healthy => {}
        }
        // Setting the value a key holds fires no storage event.
        if o.map.get(key).map(String::as_str) != Some(value) {
            o.map.insert(key.to_string(), value.to_string());
            let pv = self.pv;
            o.changes
                .push((pv, key.to_string(), Some(value.to_string())));
        }
        Ok(())
    }
    fn remove(&mut self, key: &str) {
        let mut o = self.origin.borrow_mut();
        if o.health == StorageHealth::Throwing {
            return;
        }
        if o.map.remove(key).is_some() {
            let pv = self.pv;
            o.changes.push((pv, key.to_string(), None));
        }
    }
    fn keys(&self) -> Vec<String> {
        let o = self.origin.borrow();
        if o.health == StorageHealth::Throwing {
            return Vec::new();
        }
        o.map.keys().cloned().collect()
    }
}

/// A [`HeadBlocks`] store that hands out copies, as the browser's (the
/// page's JavaScript heap) does.
#[derive(Default)]
pub struct CopiedBlocks(MemoryBlocks);

impl HeadBlocks for CopiedBlocks {
    fn put(&mut self, text: String) -> u32 {
        self.0.put(text)
    }
    fn get(&self, id: u32) -> Cow<'_, str> {
        Cow::Owned(self.0.get(id).into_owned())
    }
    fn remove(&mut self, id: u32) {
        self.0.remove(id)
    }
}

// --- the collector and the network ------------------------------------------

/// How the collector answers for now.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Health {
    Up,
    /// Answers every batch with this failure.
    Failing(Failure),
    /// Up or failing, batch by batch.
    Flapping,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Failure {
    Status(u16),
    StatusRetryAfter(u16, u32),
    /// The connection fails (refused, reset, DNS).
    Network,
    /// A 301 to a URL that answers 405 to the GET it becomes.
    Redirect,
    /// Accepts the connection and never answers.
    Silent,
}

/// The collector: what it stored, under which ids.
#[derive(Default)]
pub struct Collector {
    /// messageId -> times stored (a 2xx answer to a batch holding it).
    pub stored: HashMap<String, u32>,
    /// Event number -> the messageIds it arrived under.
    pub ids_of: HashMap<u64, BTreeSet<String>>,
    /// Event numbers refused for good (400, or 413 to a batch of one).
    pub refused: HashSet<u64>,
    pub requests: u64,
    /// Event copies stored (first arrivals and duplicates).
    pub copies: u64,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Via {
    /// An ordinary `fetch` (keepalive or not).
    Fetch { keepalive: bool },
    /// `sendBeacon`: nobody hears the answer.
    Beacon,
}

struct Request {
    pv: usize,
    batch: u64,
    via: Via,
    /// (event number, messageId) of the messages in the body.
    messages: Vec<(u64, String)>,
    /// When it reaches the collector; `None`: never.
    arrive_at: Option<f64>,
    arrived: bool,
    /// When the page hears the answer; `None`: never.
    answer_at: Option<f64>,
    outcome: Option<Outcome>,
    /// The page stopped waiting for it (abort, page gone).
    abandoned: bool,
}

// --- page views ------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum PvState {
    Live,
    /// A background tab the browser froze: no timers, no callbacks.
    Frozen,
    /// In the back/forward cache after a page hide.
    Cached,
    Gone,
}

struct PageView {
    tracker: Tracker<TabStore>,
    tab: usize,
    state: PvState,
    /// The adapter's `previous_tab` (until its queue is adopted).
    previous_tab: Option<String>,
    /// The armed timer, in the simulation's (true) time.
    wake_at: Option<f64>,
    heartbeat_at: f64,
    /// When delivery's (and the engine's) module arrives, in true time:
    /// the web build fetches it after the page starts.
    engine_at: Option<f64>,
    /// Storage events that arrived while frozen.
    held: Vec<(String, Option<String>)>,
}

struct Tab {
    /// sessionStorage `sgm_tab`.
    session: Option<String>,
    /// The page view showing, if any.
    showing: Option<usize>,
    /// A page view in the back/forward cache.
    cached: Option<usize>,
    closed: bool,
}

/// One event the shop recorded.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub n: u64,
    pub pv: usize,
    pub consent: Consent,
    /// A pending event whose page view was later granted consent.
    pub granted_later: bool,
    /// Why its loss is allowed, if it is.
    pub excused: Option<&'static str>,
}

/// What a schedule found.
#[derive(Debug, Default)]
pub struct Report {
    /// Events recorded (under any consent).
    pub recorded: u64,
    pub must_arrive: u64,
    pub arrived: u64,
    pub copies: u64,
    pub requests: u64,
    pub steps: u64,
}

/// The whole simulated browser and collector.
pub struct World {
    pub rng: SimRng,
    /// True time (ms).
    pub now: f64,
    /// The device clock's error: trackers see `now + skew`.
    pub skew: f64,
    pub origin: Rc<RefCell<Origin>>,
    aid_cookie: Option<String>,
    consent_cookie: Option<Consent>,
    tabs: Vec<Tab>,
    pvs: Vec<PageView>,
    requests: Vec<Request>,
    pub collector: Collector,
    pub health: Health,
    online: bool,
    /// The fault schedule is over: network and collector are perfect.
    healed: bool,
    pub events: Vec<Recorded>,
    /// Options every page view loads with (JSON members).
    options: String,
    gpc: bool,
    keepalive_fetch: bool,
    /// Chance that a request (or its answer) is lost.
    loss: f64,
    pub trace: Option<String>,
    steps: u64,
    rules_doc: Option<String>,
    next_event: u64,
    /// This schedule makes storage fail (a quarter of them: a failing
    /// storage excuses losses, so the others stay strict).
    storage_faults: bool,
    /// When a step last saw storage refuse a write.
    last_refusal: f64,
    /// A scripted world: requests take this long each way, and nothing
    /// happens that the script does not ask for.
    fixed_latency: Option<f64>,
    /// Page views start without delivery's and the engine's module, which
    /// arrives later (as in the web build), sometimes much later.
    engine_later: bool,
}

fn page(path: &str) -> PageInfo {
    PageInfo {
        url: format!("https://shop.example{path}"),
        path: path.to_string(),
        title: "Shop".into(),
        user_agent: "Mozilla/5.0 (sim)".into(),
        locale: "en-US".into(),
        ..PageInfo::default()
    }
}

/// The body of a batch, as JSON text.
fn body_text(batch: &Batch) -> String {
    match &batch.gzipped {
        Some(z) => {
            let mut text = String::new();
            flate2::read::GzDecoder::new(z.as_slice())
                .read_to_string(&mut text)
                .map(|_| text)
                .unwrap_or_default()
        }
        None => batch.body.clone(),
    }
}

/// (event number, messageId) of every message in a batch.
fn messages_of(batch: &Batch) -> Vec<(u64, String)> {
    scan(&body_text(batch))
}

/// (event number, messageId) of the messages in a batch's body or a
/// stored chunk: each message's properties (or traits) carry `"sim":n`
/// before its `"messageId"`. A plain scan, since parsing every body is
/// most of what the simulator would otherwise spend its time on.
fn scan(text: &str) -> Vec<(u64, String)> {
    const SIM: &str = "\"sim\":";
    const ID: &str = ",\"messageId\":\"";
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find(SIM) {
        rest = &rest[at + SIM.len()..];
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let n = rest[..digits].parse::<u64>();
        let Some(id_at) = rest.find(ID) else { break };
        let id = &rest[id_at + ID.len()..];
        let id = &id[..id.find('"').unwrap_or(0)];
        if let Ok(n) = n {
            out.push((n, id.to_string()));
        }
        rest = &rest[id_at..];
    }
    out
}

/// The event numbers of the messages a stored queue chunk holds.
fn chunk_events(text: &str) -> HashSet<u64> {
    scan(text).into_iter().map(|(n, _)| n).collect()
}

const RULES: &str = r#"{"version":"sim.1","traits":{
 "purchases_30d":{"event":"Order Completed","aggregate":"count","window_days":30},
 "clicks_7d":{"event":"Product Clicked","aggregate":"count","window_days":7},
 "days_since_first_seen":{"builtin":"days_since_first_seen"}},
 "segments":[{"id":"buyer","priority":2,"condition":{"purchases_30d":{"$gt":1}},"holdout":0.1},
  {"id":"browser","priority":1,"condition":{"clicks_7d":{"$gte":3}}}]}"#;

impl World {
    pub fn new(seed: u64, trace: bool) -> World {
        let mut rng = SimRng::new(seed);
        let mut options = String::new();
        // Some schedules compute segments (rules inline or fetched), some
        // gzip, some start with consent pending.
        let rules_doc = match rng.below(3) {
            0 => None,
            1 => {
                options.push_str(&format!(r#","rules":{RULES}"#));
                None
            }
            _ => {
                options.push_str(r#","rulesUrl":"https://collector.example/v1/rules""#);
                Some(RULES.to_string())
            }
        };
        if rng.chance(0.5) {
            let n = 1 + rng.below(20);
            options.push_str(&format!(r#","maxEvents":{n}"#));
        }
        if rng.chance(0.2) {
            options.push_str(r#","consent":"pending""#);
        }
        World {
            now: 0.0,
            skew: 0.0,
            origin: Rc::new(RefCell::new(Origin {
                map: BTreeMap::new(),
                health: StorageHealth::Healthy,
                refused: 0,
                changes: Vec::new(),
            })),
            aid_cookie: None,
            consent_cookie: None,
            tabs: Vec::new(),
            pvs: Vec::new(),
            requests: Vec::new(),
            collector: Collector::default(),
            health: Health::Up,
            online: true,
            healed: false,
            events: Vec::new(),
            options,
            gpc: rng.chance(0.1),
            keepalive_fetch: rng.chance(0.8),
            loss: rng.between(0.0, 0.3),
            trace: trace.then(String::new),
            steps: 0,
            next_event: 0,
            storage_faults: rng.chance(0.25),
            last_refusal: f64::NEG_INFINITY,
            fixed_latency: None,
            engine_later: rng.chance(0.5),
            rules_doc,
            rng,
        }
    }

    fn log(&mut self, line: impl FnOnce() -> String) {
        if let Some(t) = &mut self.trace {
            let _ = writeln!(t, "{:>10.0} ms  {}", self.now, line());
        }
    }

    /// The device clock.
    fn clock(&self) -> f64 {
        T0 + self.now + self.skew
    }

    fn gzip_on(&self) -> bool {
        self.origin
            .borrow()
            .map
            .get("sgm_gzip")
            .is_some_and(|e| e == ENDPOINT)
    }

    // --- page views: start, drive, leave ---------------------------------

    /// Opens a page view in `tab` (`Runtime::start`).
    fn open(&mut self, tab: usize, path: &str) -> usize {
        let id = self.pvs.len();
        let store = TabStore {
            origin: self.origin.clone(),
            pv: id,
        };
        let config = Config::from_json(&format!(r#"{{"endpoint":"{ENDPOINT}"{}}}"#, self.options))
            .expect("the simulation's options are valid");
        let previous_tab = self.tabs.get(tab).and_then(|t| t.session.clone());
        let start = Start {
            now: self.clock(),
            seed: self.rng.bytes(),
            fresh_id: self.rng.bytes(),
            cookie_id: self.aid_cookie.clone(),
            remembered_consent: self.consent_cookie,
            gpc: self.gpc,
            previous_tab: previous_tab.clone(),
            page: page(path),
            online: self.online,
            engine_later: self.engine_later,
        };
        // Most fetches take a moment; a few fail and are fetched again.
        let engine_at = self.engine_later.then(|| {
            self.now
                + if self.rng.chance(0.9) {
                    self.rng.between(20.0, 3_000.0)
                } else {
                    self.rng.between(30_000.0, 120_000.0)
                }
        });
        let mut tracker = Tracker::new(config, store, Box::new(Native::default()), start);
        if id % 2 == 1 {
            // As the browser keeps them: out of the queue's memory, each
            // read a copy.
            tracker.keep_heads_in(Box::new(CopiedBlocks::default()));
        }
        if tracker.consent() == Consent::Denied {
            // Denied at start: what earlier visits stored is deleted.
            self.withdraw();
        }
        tracker.set_gzip(self.gzip_on());
        tracker.set_keepalive_fetch(self.keepalive_fetch);
        let granted = tracker.consent() == Consent::Granted;
        if granted {
            if let Some(t) = self.tabs.get_mut(tab) {
                t.session = Some(tracker.tab_id().to_string());
            }
        } else if tracker.consent() == Consent::Denied {
            // Runtime::start: denied at start keeps no anonymous id.
            self.aid_cookie = None;
        }
        let heartbeat_at = self.now + HEARTBEAT_MS;
        self.pvs.push(PageView {
            tracker,
            tab,
            state: PvState::Live,
            previous_tab,
            wake_at: None,
            heartbeat_at,
            engine_at,
            held: Vec::new(),
        });
        if let Some(t) = self.tabs.get_mut(tab) {
            t.showing = Some(id);
        }
        let consent = self.pvs[id].tracker.consent();
        self.log(|| format!("pv{id} opens in tab{tab} at {path} (consent {consent:?})"));
        self.run(id, true, |_, _| {});
        self.write_cookie(id);
        self.adopt(id);
        self.fetch_rules(id);
        id
    }

    fn write_cookie(&mut self, pv: usize) {
        if let Some(id) = self.pvs[pv].tracker.cookie_id() {
            self.aid_cookie = Some(id.to_string());
        }
    }

    /// `Runtime::run`: calls `f`, then does what the tracker needs next.
    fn run<R>(&mut self, pv: usize, pump: bool, f: impl FnOnce(&mut World, usize) -> R) -> R {
        let result = f(self, pv);
        self.outbox(pv, pump);
        result
    }

    /// `State::outbox` and `Runtime::carry_out`.
    fn outbox(&mut self, pv: usize, pump: bool) {
        if self.pvs[pv].state != PvState::Live {
            return;
        }
        let now = self.clock();
        if pump {
            self.pvs[pv].tracker.give_up_overdue(now);
        }
        // Requests the tracker no longer waits for are aborted.
        for r in self
            .requests
            .iter_mut()
            .filter(|r| r.pv == pv && !r.abandoned)
        {
            if matches!(r.via, Via::Fetch { .. }) && !self.pvs[pv].tracker.awaits(r.batch) {
                r.abandoned = true;
            }
        }
        if pump {
            self.send_due(pv, now);
        }
        // The microtask: a write per task.
        if self.pvs[pv].tracker.needs_persist(now) {
            self.pvs[pv].tracker.persist(now);
            if pump {
                self.send_due(pv, now);
            }
        }
        let wake = self.pvs[pv].tracker.next_wake();
        // setTimeout(at - now): the delay, in true time.
        self.pvs[pv].wake_at = wake.map(|at| self.now + (at - now).max(0.0));
        self.notices(pv);
    }

    /// Sends every batch that is due.
    fn send_due(&mut self, pv: usize, now: f64) {
        while let Some(batch) = self.pvs[pv].tracker.poll(now) {
            let via = Via::Fetch {
                keepalive: batch.keepalive,
            };
            self.send(pv, &batch, via);
        }
    }

    fn notices(&mut self, pv: usize) {
        for notice in self.pvs[pv].tracker.drain_notices() {
            if let Notice::Error(e) = &notice {
                self.log(|| format!("pv{pv} error {}", e.to_json()));
                if let Error::QueueOverflow { .. } = e {
                    panic!("queue overflow: the simulation records too little for that");
                }
            }
        }
    }

    fn send(&mut self, pv: usize, batch: &Batch, via: Via) {
        let messages = messages_of(batch);
        let latency = self.latency();
        let lost = !self.healed && self.rng.chance(self.loss);
        let arrive_at = (!lost).then_some(self.now + latency);
        let count = messages.len();
        self.log(|| {
            format!(
                "pv{pv} sends batch {} ({count} events, {via:?}){}",
                batch.id,
                if lost { ", lost on the way" } else { "" }
            )
        });
        self.requests.push(Request {
            pv,
            batch: batch.id,
            via,
            messages,
            arrive_at,
            arrived: false,
            // A lost request fails at the page after a while (or never).
            answer_at: if lost && self.rng.chance(0.7) {
                Some(self.now + latency)
            } else {
                None
            },
            outcome: lost.then_some(Outcome::NetworkError),
            abandoned: false,
        });
    }

    fn latency(&mut self) -> f64 {
        if let Some(fixed) = self.fixed_latency {
            return fixed;
        }
        if self.rng.chance(0.1) {
            self.rng.between(1000.0, 40_000.0)
        } else {
            self.rng.between(5.0, 400.0)
        }
    }

    /// `Runtime::adopt`.
    fn adopt(&mut self, pv: usize) {
        let now = self.clock();
        let previous = self.pvs[pv].previous_tab.clone();
        if !self.pvs[pv].tracker.has_orphans(previous.as_deref(), now) {
            return;
        }
        self.run(pv, true, |w, pv| {
            let n = w.pvs[pv].tracker.adopt_orphans(previous.as_deref(), now);
            w.pvs[pv].previous_tab = None;
            w.log(|| format!("pv{pv} adopts {n} event(s)"));
        });
    }

    /// `Runtime::fetch_rules`: the collector serves the rules.
    fn fetch_rules(&mut self, pv: usize) {
        let now = self.clock();
        let Some(_) = self.pvs[pv].tracker.rules_request(now) else {
            return;
        };
        let doc = self.rules_doc.clone().unwrap_or_default();
        let ok = self.healed || self.rng.chance(0.7);
        self.run(pv, true, |w, pv| {
            let now = w.clock();
            if ok {
                w.pvs[pv]
                    .tracker
                    .rules_fetched(200, Some("\"e1\"".into()), &doc, now);
            } else {
                w.pvs[pv].tracker.rules_fetched(503, None, "", now);
            }
        });
    }

    /// `Runtime::page_hide`: beacons, then the page view lets go.
    fn page_hide(&mut self, pv: usize, persisted: bool) {
        let now = self.clock();
        let batches = self.pvs[pv].tracker.pagehide(now);
        for b in &batches {
            // The browser may refuse a beacon (over its budget).
            let taken = self.healed || self.rng.chance(0.95);
            if taken {
                self.send(pv, b, Via::Beacon);
            }
        }
        self.pvs[pv].tracker.release(now);
        self.notices(pv);
        self.pvs[pv].state = if persisted {
            PvState::Cached
        } else {
            PvState::Gone
        };
        self.pvs[pv].wake_at = None;
        self.log(|| format!("pv{pv} hidden for good (bfcache: {persisted})"));
        self.page_gone(pv);
    }

    /// What the browser does to a page view's requests when it goes: a
    /// keepalive request or beacon goes on; another may be cancelled
    /// (before or after the collector got it).
    fn page_gone(&mut self, pv: usize) {
        let healed = self.healed;
        for r in self.requests.iter_mut().filter(|r| r.pv == pv) {
            if r.via == (Via::Fetch { keepalive: false }) && !r.arrived && !healed {
                // Cancelled: half of them had reached the server anyway.
                if self.rng.chance(0.5) {
                    r.arrive_at = None;
                }
            }
        }
    }

    /// A tab crashes (or the browser is killed): no page hide at all.
    fn crash(&mut self, tab: usize) {
        if let Some(pv) = self.tabs[tab].showing.take() {
            self.pvs[pv].state = PvState::Gone;
            self.log(|| format!("pv{pv} crashes"));
            self.page_gone(pv);
        }
        if let Some(pv) = self.tabs[tab].cached.take() {
            self.pvs[pv].state = PvState::Gone;
        }
        self.tabs[tab].closed = true;
    }

    /// A navigation in `tab`: the page view showing goes (maybe into the
    /// back/forward cache) and, unless the shopper left the site, the
    /// next one opens.
    fn navigate(&mut self, tab: usize, stay: bool) {
        if let Some(pv) = self.tabs[tab].showing.take() {
            let bfcache = self.fixed_latency.is_none() && self.rng.chance(0.3);
            self.page_hide(pv, bfcache);
            if let Some(old) = self.tabs[tab].cached.take() {
                self.pvs[old].state = PvState::Gone;
            }
            if bfcache {
                self.tabs[tab].cached = Some(pv);
            }
        }
        if stay {
            let path = format!("/p/{}", self.rng.below(50));
            self.open(tab, &path);
        }
    }

    /// Back to a page in the back/forward cache (`pageshow` persisted).
    fn restore(&mut self, tab: usize) {
        let Some(pv) = self.tabs[tab].cached.take() else {
            return;
        };
        if let Some(current) = self.tabs[tab].showing.take() {
            self.page_hide(current, false);
        }
        self.pvs[pv].state = PvState::Live;
        self.tabs[tab].showing = Some(pv);
        self.log(|| format!("pv{pv} restored from the back/forward cache"));
        self.run(pv, true, |w, pv| {
            let now = w.clock();
            let old = w.pvs[pv].tracker.resume(now);
            if w.pvs[pv].tracker.consent() == Consent::Granted {
                w.tabs[tab].session = Some(w.pvs[pv].tracker.tab_id().to_string());
            }
            w.pvs[pv].previous_tab = Some(old);
        });
        self.adopt(pv);
        self.fetch_rules(pv);
        self.pvs[pv].heartbeat_at = self.now + HEARTBEAT_MS;
    }

    fn new_tab(&mut self) -> usize {
        self.tabs.push(Tab {
            session: None,
            showing: None,
            cached: None,
            closed: false,
        });
        let tab = self.tabs.len() - 1;
        self.open(tab, "/");
        tab
    }

    // --- the shop's calls ------------------------------------------------

    fn record(&mut self, pv: usize) {
        let n = self.next_event;
        self.next_event += 1;
        let consent = self.pvs[pv].tracker.consent();
        let kind = self.rng.below(10);
        let result = self.run(pv, true, |w, pv| {
            let now = w.clock();
            let t = &mut w.pvs[pv].tracker;
            match kind {
                0 => t.page(None, &format!(r#"{{"sim":{n}}}"#), now),
                1 => t.identify(Some("u1"), &format!(r#"{{"sim":{n}}}"#), now),
                2 => t.order_completed(
                    &format!(
                        r#"{{"sim":{n},"order_id":"o{n}","total":20,"products":[{{"product_id":"p1","price":20}}]}}"#
                    ),
                    now,
                ),
                3 => t.products_searched("shoes", &format!(r#"{{"sim":{n}}}"#), now),
                _ => t.product_clicked(
                    &format!(r#"{{"sim":{n},"product_id":"p{n}","price":12.5}}"#),
                    now,
                ),
            }
        });
        if let Err(e) = result {
            panic!("recording failed: {}", e.to_json());
        }
        if consent != Consent::Denied {
            self.events.push(Recorded {
                n,
                pv,
                consent,
                granted_later: false,
                excused: None,
            });
        }
        self.log(|| format!("pv{pv} records #{n} ({consent:?})"));
    }

    /// The shopper chooses in `pv`: `SegmintClient.consent()`.
    fn choose_consent(&mut self, pv: usize, consent: Consent) {
        self.log(|| format!("pv{pv} consent({consent:?})"));
        self.consent_changes(pv, consent);
        self.run(pv, true, |w, pv| {
            let now = w.clock();
            w.pvs[pv].tracker.set_consent(consent, now);
        });
        self.apply_consent(pv, consent);
        // browser::announce_consent: a storage event for the other tabs.
        let writer = pv;
        self.origin.borrow_mut().changes.push((
            writer,
            CONSENT_SIGNAL.into(),
            Some(consent.as_str().into()),
        ));
        self.adopt(pv);
        self.fetch_rules(pv);
    }

    /// `State::apply_consent`: cookies and sessionStorage follow.
    fn apply_consent(&mut self, pv: usize, consent: Consent) {
        let tab = self.pvs[pv].tab;
        match consent {
            Consent::Granted => {
                self.write_cookie(pv);
                self.consent_cookie = Some(Consent::Granted);
                self.tabs[tab].session = Some(self.pvs[pv].tracker.tab_id().to_string());
            }
            Consent::Denied => {
                self.aid_cookie = None;
                self.consent_cookie = Some(Consent::Denied);
                self.tabs[tab].session = None;
            }
            Consent::Pending => self.consent_cookie = None,
        }
    }

    /// What a consent change in `pv` means for the events so far.
    fn consent_changes(&mut self, pv: usize, consent: Consent) {
        // Denying deletes what is stored even where denied already (a tab
        // that missed another tab's grant).
        if consent == Consent::Denied {
            self.withdraw();
            return;
        }
        let before = self.pvs[pv].tracker.consent();
        if before == consent {
            return;
        }
        match consent {
            Consent::Granted => {
                for e in self.events.iter_mut().filter(|e| e.pv == pv) {
                    if e.consent == Consent::Pending {
                        e.granted_later = true;
                    }
                }
            }
            Consent::Denied => self.withdraw(),
            Consent::Pending => {}
        }
    }

    /// Consent withdrawn: what has not arrived is dropped, by design.
    fn withdraw(&mut self) {
        let stored = &self.collector.ids_of;
        for e in self.events.iter_mut() {
            if e.excused.is_none() && !stored.contains_key(&e.n) {
                e.excused = Some("consent withdrawn");
            }
        }
    }

    /// `Runtime::follow_consent`: a choice made in another tab.
    fn follow_consent(&mut self, pv: usize, chosen: Consent) {
        if self.pvs[pv].tracker.consent() == chosen {
            return;
        }
        self.consent_changes(pv, chosen);
        self.run(pv, true, |w, pv| {
            let now = w.clock();
            w.pvs[pv].tracker.follow_consent(chosen, now);
        });
        self.apply_consent(pv, chosen);
        self.adopt(pv);
        self.fetch_rules(pv);
    }

    // --- time passing ------------------------------------------------------

    /// Runs everything due until `until` (true time), in time order.
    fn advance(&mut self, until: f64) {
        let mut spins = 0;
        let mut last = self.now;
        loop {
            let next = self.next_due();
            match next {
                Some((at, what)) if at <= until => {
                    self.now = self.now.max(at);
                    if self.now > last {
                        (last, spins) = (self.now, 0);
                    }
                    spins += 1;
                    if spins > 10_000 {
                        panic!(
                            "busy loop: {what:?} fires again and again at {} ms",
                            self.now
                        );
                    }
                    self.fire(what);
                }
                _ => break,
            }
        }
        self.now = self.now.max(until);
    }

    fn next_due(&self) -> Option<(f64, Due)> {
        let mut best: Option<(f64, Due)> = None;
        let mut consider = |at: f64, what: Due| {
            if best.as_ref().is_none_or(|(b, _)| at < *b) {
                best = Some((at, what));
            }
        };
        if !self.origin.borrow().changes.is_empty() {
            consider(self.now, Due::StorageEvents);
        }
        for (i, r) in self.requests.iter().enumerate() {
            if !r.arrived {
                if let Some(at) = r.arrive_at {
                    consider(at, Due::Arrive(i));
                }
            }
            if let Some(at) = r.answer_at {
                if r.arrived || r.arrive_at.is_none() {
                    consider(at, Due::Answer(i));
                }
            }
        }
        for (i, pv) in self.pvs.iter().enumerate() {
            if pv.state == PvState::Live {
                if let Some(at) = pv.wake_at {
                    consider(at, Due::Wake(i));
                }
                consider(pv.heartbeat_at, Due::Heartbeat(i));
                if let Some(at) = pv.engine_at {
                    consider(at, Due::Engine(i));
                }
            }
        }
        best
    }

    fn fire(&mut self, what: Due) {
        match what {
            Due::StorageEvents => self.deliver_storage_events(),
            Due::Arrive(i) => self.arrive(i),
            Due::Answer(i) => self.answer(i),
            Due::Wake(pv) => {
                self.pvs[pv].wake_at = None;
                self.run(pv, true, |w, pv| {
                    let now = w.clock();
                    w.pvs[pv].tracker.tick(now);
                });
            }
            Due::Engine(pv) => {
                // `engineArrived`: then queues left behind are adopted and
                // the rules fetched, as at start.
                self.pvs[pv].engine_at = None;
                self.log(|| format!("pv{pv}: the later module arrives"));
                self.run(pv, true, |w, pv| {
                    let now = w.clock();
                    w.pvs[pv].tracker.engine_arrived(now);
                });
                self.adopt(pv);
                self.fetch_rules(pv);
            }
            Due::Heartbeat(pv) => {
                self.pvs[pv].heartbeat_at = self.now + HEARTBEAT_MS;
                if let Some(chosen) = self.consent_cookie {
                    self.follow_consent(pv, chosen);
                }
                self.run(pv, true, |w, pv| {
                    let now = w.clock();
                    w.pvs[pv].tracker.heartbeat(now);
                    w.pvs[pv].tracker.tick(now);
                });
                self.adopt(pv);
                self.fetch_rules(pv);
            }
        }
    }

    fn deliver_storage_events(&mut self) {
        let changes = std::mem::take(&mut self.origin.borrow_mut().changes);
        for (writer, key, value) in changes {
            for pv in 0..self.pvs.len() {
                if pv == writer {
                    continue;
                }
                match self.pvs[pv].state {
                    PvState::Live => self.storage_event(pv, &key, value.as_deref()),
                    PvState::Frozen => self.pvs[pv].held.push((key.clone(), value.clone())),
                    _ => {}
                }
            }
        }
    }

    /// The `storage` listener of `src/runtime.rs`.
    fn storage_event(&mut self, pv: usize, key: &str, value: Option<&str>) {
        if key == CONSENT_SIGNAL {
            if let Some(chosen) = value.and_then(Consent::parse) {
                self.follow_consent(pv, chosen);
            }
        }
        if SHARED_KEYS.contains(&key) {
            self.run(pv, true, |w, pv| {
                let now = w.clock();
                w.pvs[pv].tracker.storage_changed(key, value, now);
            });
        }
        if key.starts_with(segmint_core::queue::TAB_PREFIX) && value.is_none() {
            self.adopt(pv);
        }
    }

    /// A request reaches the collector, which answers it.
    fn arrive(&mut self, i: usize) {
        let health = if self.healed { Health::Up } else { self.health };
        let up = match health {
            Health::Up => true,
            Health::Failing(_) => false,
            Health::Flapping => self.rng.chance(0.5),
        };
        let failure = match health {
            Health::Failing(f) => f,
            _ => self.draw_failure(),
        };
        let count = self.requests[i].messages.len();
        // Now and then a healthy collector refuses a batch (a bug, a
        // limit): 400 for good, or 413 that splits it.
        let refusal = if up && !self.healed && self.fixed_latency.is_none() && self.rng.chance(0.03)
        {
            Some(if count > 1 && self.rng.chance(0.7) {
                413
            } else {
                400
            })
        } else {
            None
        };
        self.collector.requests += 1;
        let outcome = match (up, refusal) {
            (true, None) => {
                let status = [200, 200, 200, 202, 204][self.rng.below(5) as usize];
                for (n, id) in self.requests[i].messages.clone() {
                    self.collector.copies += 1;
                    *self.collector.stored.entry(id.clone()).or_default() += 1;
                    self.collector.ids_of.entry(n).or_default().insert(id);
                }
                Some(Outcome::Status {
                    status,
                    retry_after: None,
                })
            }
            (true, Some(status)) => {
                if status == 400 || count == 1 {
                    for (n, _) in &self.requests[i].messages {
                        self.collector.refused.insert(*n);
                    }
                }
                Some(Outcome::Status {
                    status,
                    retry_after: None,
                })
            }
            (false, _) => match failure {
                Failure::Status(status) => Some(Outcome::Status {
                    status,
                    retry_after: None,
                }),
                Failure::StatusRetryAfter(status, secs) => Some(Outcome::Status {
                    status,
                    retry_after: Some(secs.to_string()),
                }),
                Failure::Network => Some(Outcome::NetworkError),
                Failure::Redirect => Some(Outcome::Redirected {
                    status: 405,
                    to: "https://collector.example/moved".into(),
                }),
                Failure::Silent => None,
            },
        };
        let r = &mut self.requests[i];
        r.arrived = true;
        let lost_answer = !self.healed && outcome.is_some() && self.rng.chance(self.loss / 2.0);
        let back = self.latency();
        let r = &mut self.requests[i];
        r.outcome = if lost_answer {
            Some(Outcome::NetworkError)
        } else {
            outcome
        };
        r.answer_at = r.outcome.as_ref().map(|_| self.now + back);
        let (pv, batch, via) = (r.pv, r.batch, r.via);
        let outcome = r.outcome.clone();
        self.log(|| format!("collector gets pv{pv}'s batch {batch} ({via:?}): {outcome:?}"));
    }

    fn draw_failure(&mut self) -> Failure {
        match self.rng.below(8) {
            0 => Failure::Status(500),
            1 => Failure::Status(503),
            2 => Failure::StatusRetryAfter(503, 1 + self.rng.below(5) as u32),
            3 => Failure::StatusRetryAfter(429, 1 + self.rng.below(5) as u32),
            4 => Failure::StatusRetryAfter(500, 1),
            5 => Failure::Network,
            6 => Failure::Redirect,
            _ => Failure::Silent,
        }
    }

    /// The page hears the answer to a request, if it still listens.
    fn answer(&mut self, i: usize) {
        let r = &mut self.requests[i];
        r.answer_at = None;
        let (pv, batch, via, abandoned) = (r.pv, r.batch, r.via, r.abandoned);
        let Some(outcome) = r.outcome.clone() else {
            return;
        };
        if via == Via::Beacon || abandoned || self.pvs[pv].state != PvState::Live {
            if self.pvs[pv].state == PvState::Frozen && !abandoned {
                // Heard when the tab thaws.
                self.requests[i].answer_at = Some(f64::INFINITY);
            }
            return;
        }
        self.log(|| format!("pv{pv} hears batch {batch}: {outcome:?}"));
        self.run(pv, true, |w, pv| {
            let now = w.clock();
            w.pvs[pv].tracker.settle(batch, outcome, now);
        });
    }

    // --- the schedule ----------------------------------------------------

    fn live_pvs(&self) -> Vec<usize> {
        self.tabs
            .iter()
            .filter_map(|t| t.showing)
            .filter(|&pv| self.pvs[pv].state == PvState::Live)
            .collect()
    }

    fn open_tabs(&self) -> Vec<usize> {
        (0..self.tabs.len())
            .filter(|&t| !self.tabs[t].closed)
            .collect()
    }

    /// One step of the fault schedule.
    pub fn step(&mut self) {
        self.steps += 1;
        let dt = match self.rng.below(20) {
            0 => self.rng.between(60_000.0, 20.0 * 60_000.0),
            1..=4 => self.rng.between(1000.0, 10_000.0),
            _ => self.rng.between(0.0, 800.0),
        };
        let until = self.now + dt;
        self.advance(until);
        let tabs = self.open_tabs();
        if tabs.is_empty() {
            self.new_tab();
            return;
        }
        let tab = tabs[self.rng.below(tabs.len() as u64) as usize];
        let showing = self.tabs[tab].showing;
        let live = showing.filter(|&pv| self.pvs[pv].state == PvState::Live);
        match self.rng.below(100) {
            0..=44 => match live {
                Some(pv) => self.record(pv),
                None => self.wake_tab(tab),
            },
            45..=49 => {
                if let Some(pv) = live {
                    self.run(pv, true, |w, pv| {
                        let now = w.clock();
                        w.pvs[pv].tracker.persist(now);
                        let _ = w.pvs[pv].tracker.flush();
                    });
                }
            }
            50..=57 => self.navigate(tab, true),
            58..=60 => self.navigate(tab, false),
            61..=62 => self.restore(tab),
            63..=64 => {
                if let Some(pv) = showing {
                    self.page_hide(pv, false);
                }
                self.tabs[tab].showing = None;
                if let Some(pv) = self.tabs[tab].cached.take() {
                    self.pvs[pv].state = PvState::Gone;
                }
                self.tabs[tab].closed = true;
                self.log(|| format!("tab{tab} closed"));
            }
            65 => self.crash(tab),
            66..=68 => {
                if tabs.len() < 4 {
                    self.new_tab();
                }
            }
            69..=71 => {
                // The tab is hidden (visibilitychange), maybe frozen.
                if let Some(pv) = live {
                    let batches = self.run(pv, false, |w, pv| {
                        let now = w.clock();
                        w.pvs[pv].tracker.hidden(now)
                    });
                    for b in &batches {
                        self.send(pv, b, Via::Fetch { keepalive: true });
                    }
                    if self.rng.chance(0.5) {
                        self.pvs[pv].state = PvState::Frozen;
                        self.log(|| format!("pv{pv} frozen"));
                    }
                }
            }
            72..=73 => self.wake_tab(tab),
            74..=76 => {
                self.online = !self.online;
                let online = self.online;
                self.log(|| {
                    format!(
                        "the browser goes {}",
                        if online { "online" } else { "offline" }
                    )
                });
                for pv in self.live_pvs() {
                    self.run(pv, true, |w, pv| w.pvs[pv].tracker.set_online(online));
                }
            }
            77..=82 => {
                self.health = match self.rng.below(4) {
                    0 => Health::Up,
                    1 => Health::Flapping,
                    _ => Health::Failing(self.draw_failure()),
                };
                let h = self.health;
                self.log(|| format!("the collector: {h:?}"));
            }
            83..=84 => {
                if let Some(pv) = live {
                    let consent = [
                        Consent::Granted,
                        Consent::Granted,
                        Consent::Pending,
                        Consent::Denied,
                    ][self.rng.below(4) as usize];
                    self.choose_consent(pv, consent);
                }
            }
            85 => {
                if let Some(pv) = live {
                    self.log(|| format!("pv{pv} reset()"));
                    self.run(pv, false, |w, pv| {
                        let now = w.clock();
                        let fresh = w.rng.bytes();
                        w.pvs[pv].tracker.reset(fresh, now);
                    });
                    self.write_cookie(pv);
                }
            }
            86..=88 if self.storage_faults => self.storage_fault(),
            89..=90 => {
                // The device clock is set back or ahead.
                let jump = match self.rng.below(3) {
                    0 => self.rng.between(-3600e3, 3600e3),
                    1 => self.rng.between(-86_400e3 * 3.0, 86_400e3 * 3.0),
                    _ => self.rng.between(-120e3, 120e3),
                };
                self.skew += jump;
                let skew = self.skew;
                self.log(|| format!("the clock is off by {:.0} s", skew / 1000.0));
            }
            _ => match live {
                Some(pv) => self.record(pv),
                None => self.wake_tab(tab),
            },
        }
    }

    /// A frozen tab thaws: what it missed is delivered, then it runs.
    fn wake_tab(&mut self, tab: usize) {
        let Some(pv) = self.tabs[tab].showing else {
            return;
        };
        if self.pvs[pv].state != PvState::Frozen {
            return;
        }
        self.pvs[pv].state = PvState::Live;
        self.log(|| format!("pv{pv} thaws"));
        for (key, value) in std::mem::take(&mut self.pvs[pv].held) {
            self.storage_event(pv, &key, value.as_deref());
        }
        for i in 0..self.requests.len() {
            if self.requests[i].pv == pv && self.requests[i].answer_at == Some(f64::INFINITY) {
                self.requests[i].answer_at = Some(self.now);
            }
        }
        if self.pvs[pv].heartbeat_at < self.now {
            self.pvs[pv].heartbeat_at = self.now;
        }
    }

    fn storage_fault(&mut self) {
        let kind = self.rng.below(4);
        let mut o = self.origin.borrow_mut();
        match kind {
            0 => o.health = StorageHealth::Healthy,
            1 => {
                let used = o.used();
                o.health = StorageHealth::Full(used + self.rng.below(4000) as usize);
            }
            2 => o.health = StorageHealth::Throwing,
            _ => {
                // Garbage in one of segmint's keys.
                let keys: Vec<String> = o
                    .map
                    .keys()
                    .filter(|k| k.starts_with(KEY_PREFIX))
                    .cloned()
                    .collect();
                if keys.is_empty() {
                    return;
                }
                let key = keys[self.rng.below(keys.len() as u64) as usize].clone();
                let value = o.map.get(&key).cloned().unwrap_or_default();
                if key.starts_with(QUEUE_PREFIX) {
                    // Its events may be lost: that is reported, and allowed.
                    let lost = chunk_events(&value);
                    drop(o);
                    for e in self.events.iter_mut() {
                        if lost.contains(&e.n) && e.excused.is_none() {
                            e.excused = Some("stored chunk corrupted");
                        }
                    }
                    o = self.origin.borrow_mut();
                }
                let cut = value.len() / 2;
                let mut garbage: String = value.chars().take(cut).collect();
                garbage.push_str("\u{1}garbage");
                o.map.insert(key.clone(), garbage);
                drop(o);
                self.log(|| format!("storage: {key} corrupted"));
                return;
            }
        }
        let h = o.health;
        drop(o);
        self.log(|| format!("storage: {h:?}"));
    }

    /// While storage is full or throws, what it cannot take waits in
    /// memory: events that have not arrived may be lost with their page
    /// view, as the contract allows (and `storage_unavailable` says).
    fn excuse_storage_refusals(&mut self, refused_before: u64) {
        let o = self.origin.borrow();
        if o.refused > refused_before {
            self.last_refusal = self.now;
        }
        // After a refusal the tracker leaves storage alone for 5 s.
        let unhealthy =
            o.health != StorageHealth::Healthy || self.now - self.last_refusal <= 5000.0;
        drop(o);
        if unhealthy {
            // What storage holds is safe; what it could not take is not.
            let safe: HashSet<u64> = self
                .origin
                .borrow()
                .chunks()
                .flat_map(|(_, text)| chunk_events(text))
                .collect();
            let stored = &self.collector.ids_of;
            for e in self.events.iter_mut() {
                if e.excused.is_none() && !stored.contains_key(&e.n) && !safe.contains(&e.n) {
                    e.excused = Some("storage refused writes");
                }
            }
        }
    }

    /// The fault schedule: `steps` random steps, then the faults stop,
    /// every tab goes and the last page view sends what is left.
    pub fn run_schedule(&mut self, steps: u64) -> Result<Report, String> {
        self.new_tab();
        for _ in 0..steps {
            let refused = self.origin.borrow().refused;
            self.step();
            self.excuse_storage_refusals(refused);
            self.check_budgets()?;
        }
        self.heal();
        self.check()
    }

    fn heal(&mut self) {
        self.log(|| "--- the faults stop".into());
        self.healed = true;
        self.health = Health::Up;
        self.skew = 0.0;
        self.origin.borrow_mut().health = StorageHealth::Healthy;
        for i in 0..self.requests.len() {
            let r = &mut self.requests[i];
            // What is still on its way arrives soon (or was lost).
            if let Some(at) = r.arrive_at.filter(|_| !r.arrived) {
                r.arrive_at = Some(at.min(self.now + 1000.0));
            }
        }
        if !self.online {
            self.online = true;
            for pv in self.live_pvs() {
                self.run(pv, true, |w, pv| w.pvs[pv].tracker.set_online(true));
            }
        }
        for tab in 0..self.tabs.len() {
            self.wake_tab(tab);
        }
        // Everything keeps running a little, then every tab closes.
        self.advance(self.now + 5000.0);
        for tab in 0..self.tabs.len() {
            if let Some(pv) = self.tabs[tab].showing.take() {
                if self.pvs[pv].state == PvState::Live {
                    self.page_hide(pv, false);
                }
            }
            if let Some(pv) = self.tabs[tab].cached.take() {
                self.pvs[pv].state = PvState::Gone;
            }
            self.tabs[tab].closed = true;
        }
        self.advance(self.now + 2000.0);
        // The shopper comes back, and agrees to tracking.
        let tab = self.new_tab();
        let pv = self.tabs[tab].showing.expect("the new tab shows the shop");
        if self.pvs[pv].tracker.consent() != Consent::Granted {
            self.choose_consent(pv, Consent::Granted);
        }
        let until = self.now + DRAIN_MS;
        while self.now < until {
            let next = self.next_due().map(|(at, _)| at).unwrap_or(until);
            self.advance(next.min(until));
            let stored = self.origin.borrow().chunks().count();
            let waiting = self.pvs[pv].tracker.queued();
            let in_flight = self.requests.iter().any(|r| {
                (!r.arrived && r.arrive_at.is_some()) || r.answer_at.is_some_and(f64::is_finite)
            });
            if stored == 0 && waiting == 0 && !in_flight {
                break;
            }
        }
        self.log(|| "--- drained".into());
    }

    /// Per-step: the stored queue of each page view stays in budget.
    fn check_budgets(&self) -> Result<(), String> {
        let o = self.origin.borrow();
        let mut per_tab: HashMap<&str, usize> = HashMap::new();
        for (k, v) in o.chunks() {
            let tab = k
                .strip_prefix(QUEUE_PREFIX)
                .and_then(|r| r.split('.').next())
                .unwrap_or("");
            *per_tab.entry(tab).or_default() += v.len();
        }
        // A page view's budget, plus the chunk it may have just adopted.
        let limit = STORED_QUEUE_BUDGET + 2 * segmint_core::queue::CHUNK_MAX_BYTES;
        for (tab, bytes) in per_tab {
            if bytes > limit {
                return Err(format!("page view {tab} stores {bytes} bytes of queue"));
            }
        }
        Ok(())
    }

    /// The invariant, once the queue has drained.
    pub fn check(&self) -> Result<Report, String> {
        let mut report = Report {
            recorded: self.events.len() as u64,
            copies: self.collector.copies,
            requests: self.collector.requests,
            steps: self.steps,
            ..Report::default()
        };
        let mut problems = Vec::new();
        for e in &self.events {
            let ids = self.collector.ids_of.get(&e.n);
            if ids.is_some_and(|ids| ids.len() > 1) {
                problems.push(format!("event #{} arrived under several messageIds", e.n));
            }
            let granted = e.consent == Consent::Granted || e.granted_later;
            let arrived = ids.is_some();
            if arrived {
                report.arrived += 1;
            }
            if granted {
                if e.excused.is_some() || self.collector.refused.contains(&e.n) {
                    continue;
                }
                report.must_arrive += 1;
                if !arrived {
                    problems.push(format!(
                        "event #{} (recorded by pv{}) never reached the collector",
                        e.n, e.pv
                    ));
                }
            } else if arrived {
                problems.push(format!(
                    "event #{} recorded under {:?} consent reached the collector",
                    e.n, e.consent
                ));
            }
        }
        let left: Vec<String> = self
            .origin
            .borrow()
            .chunks()
            .map(|(k, _)| k.clone())
            .collect();
        if !left.is_empty() {
            let beats: Vec<String> = self
                .origin
                .borrow()
                .map
                .iter()
                .filter(|(k, _)| k.starts_with(segmint_core::queue::TAB_PREFIX))
                .map(|(k, v)| {
                    format!(
                        "{k}={:.0} s from now",
                        (v.parse::<f64>().unwrap_or(0.0) - self.clock()) / 1000.0
                    )
                })
                .collect();
            problems.push(format!(
                "queue chunks left in storage: {left:?}; heartbeats: {beats:?}"
            ));
        }
        if problems.is_empty() {
            Ok(report)
        } else {
            problems.truncate(10);
            Err(problems.join("\n"))
        }
    }
}

/// A scripted world, for scenarios written out step by step: default
/// options, a network that loses nothing, requests that take
/// `latency_ms` each way, and only the faults the script makes.
impl World {
    pub fn scripted(latency_ms: f64) -> World {
        let mut w = World::new(0, std::env::var_os("SEGMINT_SIM_TRACE").is_some());
        w.options.clear();
        w.rules_doc = None;
        w.gpc = false;
        w.keepalive_fetch = true;
        w.loss = 0.0;
        w.storage_faults = false;
        w.fixed_latency = Some(latency_ms);
        w.engine_later = false;
        w
    }

    /// Opens a tab showing the shop; returns it.
    pub fn open_tab(&mut self) -> usize {
        self.new_tab()
    }

    /// The page view `tab` shows records `n` events, `gap_ms` apart.
    pub fn record_n(&mut self, tab: usize, n: usize, gap_ms: f64) {
        for _ in 0..n {
            let pv = self.tabs[tab].showing.expect("a page is showing");
            self.record(pv);
            self.wait(gap_ms);
        }
    }

    /// Time passes.
    pub fn wait(&mut self, ms: f64) {
        self.advance(self.now + ms);
    }

    /// A click to another page of the shop (`true`), or away from it.
    pub fn go(&mut self, tab: usize, within_shop: bool) {
        self.navigate(tab, within_shop);
    }

    /// A click on a link: what is queued goes at once (`flush()`), and the
    /// next page replaces this one `navigation_ms` later.
    pub fn click_link(&mut self, tab: usize, within_shop: bool, navigation_ms: f64) {
        if let Some(pv) = self.tabs[tab].showing {
            self.run(pv, true, |w, pv| {
                let now = w.clock();
                w.pvs[pv].tracker.persist(now);
                let _ = w.pvs[pv].tracker.flush();
            });
        }
        self.wait(navigation_ms);
        self.navigate(tab, within_shop);
    }

    /// Back to the shop in `tab` after leaving it.
    pub fn come_back(&mut self, tab: usize) {
        self.open(tab, "/");
    }

    pub fn set_online(&mut self, online: bool) {
        self.online = online;
        for pv in self.live_pvs() {
            self.run(pv, true, |w, pv| w.pvs[pv].tracker.set_online(online));
        }
    }

    /// The invariant, after the last page view has run until the queue is
    /// empty (the faults stop first).
    pub fn finish(&mut self) -> Result<Report, String> {
        self.heal();
        self.check()
    }
}

#[derive(Clone, Copy, Debug)]
enum Due {
    StorageEvents,
    Arrive(usize),
    Answer(usize),
    Wake(usize),
    Heartbeat(usize),
    Engine(usize),
}

/// Runs schedule `seed`: `Ok` with its figures, or `Err` with what broke
/// (a panic included) and, when `trace` is set, the step-by-step trace.
pub fn run(seed: u64, trace: bool) -> (Result<Report, String>, Option<String>) {
    let mut world = World::new(seed, trace);
    let steps = 20 + world.rng.below(180);
    let result =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| world.run_schedule(steps)));
    let trace = world.trace.take();
    match result {
        Ok(r) => (r, trace),
        Err(panic) => {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            (Err(format!("panic: {message}")), trace)
        }
    }
}
