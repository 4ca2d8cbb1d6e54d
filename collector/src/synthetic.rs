//! Synthetic storefront traffic with planted behavioural groups, for
//! testing and benchmarking segment discovery ([`crate::discover`]) and
//! for trying the dashboard without real shoppers.
//!
//! Each user belongs to one of four groups and behaves as it does over
//! the 90 days before `now`: page views, product clicks, searches and
//! orders, as segmint's SDK records them (Segment messages). `noise` is
//! the share of sessions that follow no group's habits at all.

use crate::ingest::{parse_batch, StoredEvent};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use segmint_core::json::Value;

/// The planted groups.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Group {
    /// Buy often, one cheap item at a time.
    FrequentSmallBaskets,
    /// Buy rarely, several expensive items.
    RareBigSpenders,
    /// Browse and buy almost only in one category.
    CategoryLoyalists,
    /// Browse and search a lot, never buy.
    BrowsersWhoNeverBuy,
}

impl Group {
    /// Every group, in a fixed order.
    pub const ALL: [Group; 4] = [
        Group::FrequentSmallBaskets,
        Group::RareBigSpenders,
        Group::CategoryLoyalists,
        Group::BrowsersWhoNeverBuy,
    ];

    /// A short name.
    pub fn name(self) -> &'static str {
        match self {
            Group::FrequentSmallBaskets => "frequent small-basket buyers",
            Group::RareBigSpenders => "rare big spenders",
            Group::CategoryLoyalists => "category loyalists",
            Group::BrowsersWhoNeverBuy => "browsers who never buy",
        }
    }
}

/// What to generate.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Users in all.
    pub users: usize,
    /// Share of each group in [`Group::ALL`] order (normalised).
    pub shares: [f64; 4],
    /// Share of sessions (0..1) drawn from no group's habits.
    pub noise: f64,
    /// Reproducible with the same seed.
    pub seed: u64,
    /// The traffic ends here (ms).
    pub now: f64,
}

const CATEGORIES: [&str; 6] = ["shoes", "bags", "hats", "shirts", "toys", "books"];
const DAY: f64 = 86_400_000.0;

fn category_at(rng: &mut Xoshiro256PlusPlus) -> &'static str {
    CATEGORIES.choose(rng).copied().unwrap_or("shoes")
}

impl Plan {
    /// The group of user `index` (a fixed share of the users each).
    pub fn group_of(&self, index: usize) -> Group {
        let total: f64 = self.shares.iter().sum::<f64>().max(f64::MIN_POSITIVE);
        let position = (index as f64 + 0.5) / self.users.max(1) as f64;
        let mut upto = 0.0;
        for (group, share) in Group::ALL.iter().zip(self.shares) {
            upto += share / total;
            if position < upto {
                return *group;
            }
        }
        Group::BrowsersWhoNeverBuy
    }

    /// The anonymous id of user `index`.
    pub fn user_id(&self, index: usize) -> String {
        format!("synthetic-{}-{index}", self.seed)
    }

    /// User `index`'s messages, oldest first, as one Segment batch body.
    pub fn batch_of(&self, index: usize) -> String {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(
            self.seed ^ (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
        );
        let group = self.group_of(index);
        let user = self.user_id(index);
        let favourite = category_at(&mut rng);
        // Sessions: how many, over how many days before now.
        let (sessions, span_days) = match group {
            Group::FrequentSmallBaskets => (rng.gen_range(8..=14), 28.0),
            Group::RareBigSpenders => (rng.gen_range(2..=4), 85.0),
            Group::CategoryLoyalists => (rng.gen_range(4..=8), 55.0),
            Group::BrowsersWhoNeverBuy => (rng.gen_range(4..=10), 28.0),
        };
        let mut starts: Vec<f64> = (0..sessions)
            .map(|_| self.now - rng.gen_range(0.05..span_days) * DAY)
            .collect();
        starts.sort_by(f64::total_cmp);
        let mut messages = Vec::new();
        let mut order = 0;
        let last = starts.len().saturating_sub(1);
        for (session, start) in starts.into_iter().enumerate() {
            let mut at = start;
            let mut step = |rng: &mut Xoshiro256PlusPlus| {
                at += rng.gen_range(20_000.0..120_000.0);
                at
            };
            let habit = if rng.gen::<f64>() < self.noise {
                *Group::ALL.choose(&mut rng).unwrap_or(&group)
            } else {
                group
            };
            messages.push(message(
                &user,
                None,
                r#"{"path":"/"}"#,
                step(&mut rng),
                messages.len(),
            ));
            let (clicks, searches, buys, items, prices, loyal) = match habit {
                Group::FrequentSmallBaskets => (
                    rng.gen_range(1..=3),
                    0,
                    rng.gen_bool(0.75),
                    1,
                    5.0..20.0,
                    0.0,
                ),
                Group::RareBigSpenders => (
                    rng.gen_range(2..=4),
                    rng.gen_range(0..=1),
                    rng.gen_bool(0.4),
                    rng.gen_range(2..=3),
                    150.0..400.0,
                    0.0,
                ),
                Group::CategoryLoyalists => (
                    rng.gen_range(3..=6),
                    0,
                    rng.gen_bool(0.4),
                    1,
                    30.0..80.0,
                    0.95,
                ),
                Group::BrowsersWhoNeverBuy => (
                    rng.gen_range(4..=10),
                    rng.gen_range(1..=3),
                    false,
                    0,
                    5.0..100.0,
                    0.0,
                ),
            };
            let category = |rng: &mut Xoshiro256PlusPlus| {
                if rng.gen::<f64>() < loyal {
                    favourite
                } else {
                    category_at(rng)
                }
            };
            for _ in 0..searches {
                let query = category_at(&mut rng);
                let props = format!(r#"{{"query":"{query}"}}"#);
                messages.push(message(
                    &user,
                    Some("Products Searched"),
                    &props,
                    step(&mut rng),
                    messages.len(),
                ));
            }
            let mut seen = Vec::new();
            for _ in 0..clicks {
                let c = category(&mut rng);
                let price = rng.gen_range(prices.clone());
                let props = format!(
                    r#"{{"product_id":"p-{c}-{}","category":"{c}","price":{:.2}}}"#,
                    rng.gen_range(0..40),
                    price
                );
                messages.push(message(
                    &user,
                    Some("Product Clicked"),
                    &props,
                    step(&mut rng),
                    messages.len(),
                ));
                seen.push((c, price));
            }
            // Big spenders and loyalists buy at least once.
            let must_buy = session == last
                && order == 0
                && habit == group
                && matches!(group, Group::RareBigSpenders | Group::CategoryLoyalists);
            if buys || must_buy {
                order += 1;
                // What was clicked this session, then more of the same kind.
                let items: Vec<(&str, f64)> = (0..items)
                    .map(|i| match seen.get(i) {
                        Some(item) => *item,
                        None => (category(&mut rng), rng.gen_range(prices.clone())),
                    })
                    .collect();
                let products: Vec<String> = items
                    .iter()
                    .enumerate()
                    .map(|(i, (c, price))| {
                        format!(r#"{{"product_id":"p-{c}-{i}","category":"{c}","price":{price:.2},"quantity":1}}"#)
                    })
                    .collect();
                let total: f64 = items.iter().map(|(_, p)| (p * 100.0).round() / 100.0).sum();
                let props = format!(
                    r#"{{"order_id":"{user}-o{order}","total":{total:.2},"currency":"USD","products":[{}]}}"#,
                    products.join(",")
                );
                messages.push(message(
                    &user,
                    Some("Order Completed"),
                    &props,
                    step(&mut rng),
                    messages.len(),
                ));
            }
        }
        format!(r#"{{"batch":[{}]}}"#, messages.join(","))
    }

    /// User `index`'s events as the collector stores them.
    pub fn events_of(&self, index: usize) -> Vec<StoredEvent> {
        // The batch is the generator's own, well formed: a refusal would
        // be a bug here, and yields no events.
        parse_batch(&self.batch_of(index), self.now, None, None).unwrap_or_default()
    }
}

/// Stores the plan's users in `db`, `chunk` users per insert, printing
/// progress every tenth of the way when `progress` is set.
pub async fn store(db: &crate::db::Db, plan: &Plan, progress: bool) -> Result<usize, String> {
    let chunk = 200;
    let mut stored = 0;
    let mut next_report = plan.users / 10;
    let mut start = 0;
    while start < plan.users {
        let end = (start + chunk).min(plan.users);
        let events: Vec<StoredEvent> = (start..end).flat_map(|i| plan.events_of(i)).collect();
        stored += events.len();
        db.insert(events, Default::default()).await?;
        start = end;
        if progress && start >= next_report {
            eprintln!("  {start} of {} users, {stored} events", plan.users);
            next_report += (plan.users / 10).max(1);
        }
    }
    Ok(stored)
}

/// User `user`'s `n`th message, at `at`: a page view (`event` `None`) or
/// a track of `event`, as segmint's SDK records them.
fn message(user: &str, event: Option<&str>, props: &str, at: f64, n: usize) -> String {
    let kind = match event {
        Some(name) => format!(r#""type":"track","event":"{name}""#),
        None => r#""type":"page""#.to_string(),
    };
    format!(
        r#"{{{kind},"messageId":"{user}-m{n}","anonymousId":"{user}","timestamp":{},"properties":{props},"context":{{"userAgent":"Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0.0.0"}}}}"#,
        Value::String(segmint_core::time::rfc3339(at)).to_json()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(users: usize) -> Plan {
        Plan {
            users,
            shares: [0.25, 0.25, 0.25, 0.25],
            noise: 0.0,
            seed: 7,
            now: 1_800_000_000_000.0,
        }
    }

    #[test]
    fn groups_take_their_shares_and_batches_parse() {
        let p = plan(100);
        for g in Group::ALL {
            assert_eq!((0..100).filter(|i| p.group_of(*i) == g).count(), 25);
        }
        for i in 0..100 {
            let events = p.events_of(i);
            assert!(!events.is_empty(), "user {i}");
            assert!(events.iter().all(|e| e.timestamp <= p.now + 1.0));
        }
        assert_eq!(p.batch_of(3), p.batch_of(3), "reproducible");
    }

    #[test]
    fn browsers_never_buy_and_frequent_buyers_do() {
        let p = plan(8);
        let orders = |i: usize| {
            p.events_of(i)
                .iter()
                .filter(|e| e.event.as_deref() == Some("Order Completed"))
                .count()
        };
        assert!(orders(0) >= 3, "{}", orders(0));
        assert_eq!(orders(7), 0);
    }
}
