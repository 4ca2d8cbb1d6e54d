//! The delivery contract checked the way storage systems check theirs:
//! many seeded random schedules of page views, tabs, storage, clock and
//! network faults (see `sim/mod.rs`), one invariant.
//!
//! ```sh
//! cargo test -p segmint-core --test simulation              # 10,000 schedules
//! SEGMINT_SIM_SCHEDULES=100000 cargo test -p segmint-core --release --test simulation
//! SEGMINT_SIM_SEED=1234 cargo test -p segmint-core --test simulation replay -- --nocapture
//! ```
//!
//! A failing schedule prints its seed and the command that replays it
//! with a step-by-step trace.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod sim;

use std::time::Instant;

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

/// Runs `count` schedules from seed `first`, stepping by `stride`.
fn schedules(first: u64, stride: u64, count: u64) -> (u64, u64, u64, u64) {
    let (mut recorded, mut events, mut copies, mut must) = (0, 0, 0, 0);
    let progress = std::env::var_os("SEGMINT_SIM_PROGRESS").is_some();
    let started = Instant::now();
    for i in 0..count {
        let seed = first + i * stride;
        if progress && i > 0 && i % 50_000 == 0 {
            println!(
                "  {i} schedules from seed {first} in {:.0} s",
                started.elapsed().as_secs_f64()
            );
        }
        let (result, _) = sim::run(seed, false);
        match result {
            Ok(r) => {
                recorded += r.recorded;
                events += r.arrived;
                copies += r.copies;
                must += r.must_arrive;
            }
            Err(problem) => panic!(
                "schedule {seed} broke the delivery contract:\n{problem}\n\
                 replay it with its trace:\n  \
                 SEGMINT_SIM_SEED={seed} cargo test -p segmint-core --test simulation replay -- --nocapture"
            ),
        }
    }
    (recorded, events, copies, must)
}

/// The schedules are shared between a few tests so the harness runs them
/// on every core.
fn share(part: u64, parts: u64) {
    let total = env_u64("SEGMINT_SIM_SCHEDULES").unwrap_or(10_000);
    let base = env_u64("SEGMINT_SIM_FIRST_SEED").unwrap_or(0);
    let count = total / parts + u64::from(part < total % parts);
    let started = Instant::now();
    let (recorded, arrived, copies, must) = schedules(base + part, parts, count);
    let secs = started.elapsed().as_secs_f64();
    println!(
        "part {part}: {count} schedules in {secs:.1} s ({:.0}/s); {recorded} events recorded, \
         {must} had to arrive, {arrived} did, as {copies} copies ({:.1} duplicates per 1,000)",
        count as f64 / secs.max(1e-9),
        (copies.saturating_sub(arrived)) as f64 * 1000.0 / arrived.max(1) as f64
    );
}

#[test]
fn schedules_part_0() {
    share(0, 4);
}
#[test]
fn schedules_part_1() {
    share(1, 4);
}
#[test]
fn schedules_part_2() {
    share(2, 4);
}
#[test]
fn schedules_part_3() {
    share(3, 4);
}

/// Replays `SEGMINT_SIM_SEED` with its trace (skipped without it).
#[test]
fn replay() {
    let Some(seed) = env_u64("SEGMINT_SIM_SEED") else {
        return;
    };
    let (result, trace) = sim::run(seed, true);
    println!("{}", trace.unwrap_or_default());
    match result {
        Ok(r) => println!("schedule {seed} holds: {r:?}"),
        Err(problem) => panic!("schedule {seed}:\n{problem}"),
    }
}

/// Runs schedules `SEGMINT_SIM_FROM`.. one by one, printing each (debug).
#[test]
fn scan() {
    let Some(from) = env_u64("SEGMINT_SIM_FROM") else {
        return;
    };
    for seed in from..from + env_u64("SEGMINT_SIM_COUNT").unwrap_or(20) {
        let started = Instant::now();
        let (result, _) = sim::run(seed, false);
        println!(
            "{seed}: {:?} in {:?}",
            result.map(|r| r.steps),
            started.elapsed()
        );
    }
}

/// Issue 27's pages: page A records 30 events and the shopper reloads
/// while their batch is under way; page B records 70, goes offline for
/// 1.5 s, and the shopper leaves the shop as its batch goes; they come
/// back later (page C). `health` answers A's and B's batches; the
/// collector is up for C.
fn moving_between_pages(health: sim::Health) -> sim::Report {
    let mut w = sim::World::scripted(100.0);
    w.health = health;
    let tab = w.open_tab();
    w.record_n(tab, 30, 10.0);
    // The batch goes 2 s after the first event; the reload comes before
    // its answer.
    w.wait(1750.0);
    w.go(tab, true);
    w.record_n(tab, 70, 10.0);
    w.set_online(false);
    w.wait(1500.0);
    w.set_online(true);
    w.wait(50.0);
    w.go(tab, false);
    w.wait(30_000.0);
    w.health = sim::Health::Up;
    w.come_back(tab);
    let r = w
        .finish()
        .unwrap_or_else(|e| panic!("{e}\n{}", w.trace.take().unwrap_or_default()));
    assert_eq!((r.must_arrive, r.arrived), (100, 100), "nothing lost");
    r
}

fn per_thousand(r: &sim::Report) -> u64 {
    (r.copies - r.arrived) * 1000 / r.arrived
}

/// Issue 27's scenario: the collector starts failing (500 with
/// `Retry-After: 1`) while the shopper moves between pages, each page
/// leaving before its batch is answered. Before, all 100 events were
/// lost.
#[test]
fn pages_left_while_their_batch_is_answered_500_lose_nothing() {
    let failing = sim::Health::Failing(sim::Failure::StatusRetryAfter(500, 1));
    let r = moving_between_pages(failing);
    println!(
        "outage scenario: {} events, {} copies stored ({} duplicates per 1,000 events), {} requests",
        r.arrived,
        r.copies,
        per_thousand(&r),
        r.requests
    );
}

/// The same pages with a collector that answers 200 throughout: what the
/// rule costs when the answers that go unheard were successes.
#[test]
fn the_same_pages_with_a_healthy_collector_cost_duplicates_only() {
    let r = moving_between_pages(sim::Health::Up);
    println!(
        "healthy collector, same pages: {} events, {} copies ({} duplicates per 1,000 events)",
        r.arrived,
        r.copies,
        per_thousand(&r)
    );
}

/// An ordinary visit: 20 pages, a page view and a few clicks on each, the
/// shopper moving on after 0.5 to 6.5 s; the collector healthy, 100 ms
/// away. `click`: the shopper leaves by a link, which sends what is
/// queued at once, and the next page replaces this one that many ms
/// later. Returns (events, copies the collector stored).
fn ordinary_visits(click: Option<f64>) -> (u64, u64) {
    let mut total = (0, 0);
    for visit in 0..50u64 {
        let mut w = sim::World::scripted(100.0);
        let tab = w.open_tab();
        for page in 0..20u64 {
            let mix = visit * 31 + page * 7;
            w.record_n(
                tab,
                1 + (mix % 3) as usize,
                500.0 + (mix % 5) as f64 * 1500.0,
            );
            match click {
                Some(ms) => w.click_link(tab, page < 19, ms),
                None => w.go(tab, page < 19),
            }
        }
        w.wait(60_000.0);
        w.come_back(tab);
        let r = w.finish().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.arrived, r.must_arrive);
        total.0 += r.arrived;
        total.1 += r.copies;
    }
    total
}

/// Prints how often the collector sees an event twice in ordinary visits.
#[test]
fn an_ordinary_visit_and_its_duplicates() {
    for (how, click) in [
        ("left without a link", None),
        ("left by links, next page after 150 ms", Some(150.0)),
        ("left by links, next page after 300 ms", Some(300.0)),
    ] {
        let (events, copies) = ordinary_visits(click);
        println!(
            "ordinary visits, {how}: {events} events, {copies} copies ({} duplicates per 1,000 events)",
            (copies - events) * 1000 / events
        );
    }
}
