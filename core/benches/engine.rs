//! Figures for the segment engine (printed, never asserted):
//! the persisted profile of a heavy user (10,000 events over 90 days) and
//! the cost per event of updating traits and evaluating 20 segments over
//! 10 traits, natively.
//!
//!   cargo bench -p segmint-core --bench engine
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use segmint_core::condition::Native;
use segmint_core::id::Rng;
use segmint_core::json::Value;
use segmint_core::message::PageInfo;
use segmint_core::profile::Profile;
use segmint_core::rules::Rules;
use segmint_core::segments::{attributes, evaluate};
use std::time::Instant;

const DAY: f64 = 86_400_000.0;

/// 10 traits, 20 segments: the seed use case and variations on it.
pub const RULES: &str = r#"{"version":"bench","traits":{
  "purchases_30d":{"event":"Order Completed","aggregate":"count","window_days":30},
  "avg_price_30d":{"event":"Order Completed","aggregate":"avg","property":"products.price","window_days":30},
  "spend_90d":{"event":"Order Completed","aggregate":"sum","property":"products.price","window_days":90},
  "max_price_90d":{"event":"Order Completed","aggregate":"max","property":"products.price","window_days":90},
  "min_price_30d":{"event":"Order Completed","aggregate":"min","property":"products.price","window_days":30},
  "categories_90d":{"event":"Order Completed","aggregate":"distinct","property":"products.category","window_days":90},
  "top_category_share":{"event":"Order Completed","aggregate":"top_share","property":"products.category","window_days":90},
  "top_category":{"event":"Order Completed","aggregate":"top_value","property":"products.category","window_days":90},
  "clicks_7d":{"event":"Product Clicked","aggregate":"count","window_days":7},
  "last_search":{"event":"Products Searched","aggregate":"last","property":"query","window_days":30}},
 "segments":[
  {"id":"frequent-buyer","priority":40,"condition":{"purchases_30d":{"$gt":3}},"holdout":0.1},
  {"id":"bargain-hunter","priority":30,"condition":{"avg_price_30d":{"$lt":20}}},
  {"id":"category-enthusiast","priority":20,"condition":{"top_category_share":{"$gt":0.5}}},
  {"id":"big-spender","priority":39,"condition":{"spend_90d":{"$gte":500}}},
  {"id":"luxury","priority":38,"condition":{"max_price_90d":{"$gt":80}}},
  {"id":"explorer","priority":37,"condition":{"categories_90d":{"$gte":5}}},
  {"id":"shoe-lover","priority":36,"condition":{"top_category":"shoes"}},
  {"id":"book-lover","priority":35,"condition":{"top_category":{"$in":["books","comics"]}}},
  {"id":"browser","priority":34,"condition":{"$and":[{"clicks_7d":{"$gt":20}},{"purchases_30d":{"$lt":1}}]}},
  {"id":"searcher","priority":33,"condition":{"last_search":{"$regex":"^red"}}},
  {"id":"penny","priority":32,"condition":{"min_price_30d":{"$lt":5}}},
  {"id":"regular","priority":31,"condition":{"$or":[{"purchases_30d":{"$gte":2}},{"clicks_7d":{"$gte":50}}]}},
  {"id":"lapsed","priority":29,"condition":{"$and":[{"purchases_30d":0},{"spend_90d":{"$gt":0}}]}},
  {"id":"mobile","priority":28,"condition":{"context.device_type":"mobile"}},
  {"id":"campaign","priority":27,"condition":{"context.campaign.source":{"$exists":true}}},
  {"id":"pro","priority":26,"condition":{"plan":"pro"}},
  {"id":"deal-seeker","priority":25,"condition":{"$and":[{"avg_price_30d":{"$lt":30}},{"clicks_7d":{"$gt":5}}]}},
  {"id":"not-new","priority":24,"condition":{"$not":{"purchases_30d":{"$lt":1}}}},
  {"id":"wide-basket","priority":23,"condition":{"categories_90d":{"$gt":2,"$lte":8}}},
  {"id":"steady","priority":22,"condition":{"$nor":[{"purchases_30d":{"$gt":20}},{"clicks_7d":{"$gt":500}}]}}]}"#;

const CATEGORIES: [&str; 8] = [
    "shoes",
    "books",
    "electronics",
    "home",
    "toys",
    "comics",
    "garden",
    "music",
];

fn event(rng: &mut Rng) -> (&'static str, Value) {
    let r = rng.next_f64();
    let cat = CATEGORIES[(rng.next_u64() % 8) as usize];
    if r < 0.6 {
        (
            "Product Clicked",
            Value::parse(&format!(
                r#"{{"product_id":"p{}","category":"{cat}","price":{}}}"#,
                rng.next_u64() % 500,
                (rng.next_f64() * 100.0).round()
            ))
            .unwrap(),
        )
    } else if r < 0.8 {
        (
            "Products Searched",
            Value::parse(&format!(r#"{{"query":"red {cat}"}}"#)).unwrap(),
        )
    } else {
        let n = 1 + rng.next_u64() % 3;
        let items: Vec<String> = (0..n)
            .map(|i| {
                let c = CATEGORIES[((rng.next_u64() + i) % 8) as usize];
                format!(
                    r#"{{"product_id":"p{i}","category":"{c}","price":{:.2},"quantity":1}}"#,
                    rng.next_f64() * 90.0 + 2.0
                )
            })
            .collect();
        (
            "Order Completed",
            Value::parse(&format!(
                r#"{{"order_id":"o","products":[{}]}}"#,
                items.join(",")
            ))
            .unwrap(),
        )
    }
}

fn main() {
    let rules = Rules::parse(RULES).unwrap();
    let host = Native::default();
    let start = 1_795_405_732_000.0;
    let mut rng = Rng::from_seed([42; 32]);

    // A heavy user: 10,000 events spread over 90 days.
    let mut profile = Profile::new(start, 1_800_000.0);
    profile.apply_rules(&rules, start);
    let mut now = start;
    for _ in 0..10_000 {
        now += 90.0 * DAY / 10_000.0;
        let (name, props) = event(&mut rng);
        profile.record(name, Some(&props), now);
    }
    let persisted = profile.to_json();
    println!(
        "profile of a heavy user (10,000 events over 90 days, 10 traits): {} bytes persisted",
        persisted.len()
    );

    // Cost per event: update traits incrementally, then evaluate 20
    // segments over the attributes (what the SDK does after each event).
    let page = PageInfo::default();
    let user = Value::parse(r#"{"plan":"pro"}"#).unwrap();
    let events: Vec<(&str, Value)> = (0..10_000).map(|_| event(&mut rng)).collect();
    let mut total_segments = 0;
    let mut best = f64::INFINITY;
    let mut eval_only = f64::INFINITY;
    for _ in 0..5 {
        let t = Instant::now();
        for (i, (name, props)) in events.iter().enumerate() {
            profile.record(name, Some(props), now + i as f64);
            let attrs = attributes(&user, profile.traits(now), &page);
            total_segments += evaluate(&rules, &attrs, &host).len();
        }
        best = best.min(t.elapsed().as_secs_f64() * 1e6 / events.len() as f64);
        let attrs = attributes(&user, profile.traits(now), &page);
        let t = Instant::now();
        for _ in 0..events.len() {
            total_segments += evaluate(&rules, &attrs, &host).len();
        }
        eval_only = eval_only.min(t.elapsed().as_secs_f64() * 1e6 / events.len() as f64);
    }
    println!("per event, natively (best of 5 x 10,000): {best:.2} µs to update 10 traits and evaluate 20 segments; {eval_only:.2} µs to evaluate 20 segments alone ({total_segments} memberships)");
}
