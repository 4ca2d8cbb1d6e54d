//! The figures the dashboard draws: events per minute, segment sizes over
//! time, and per segment the conversion and average order value of users
//! shown the personalized banner against the holdout.
//!
//! Read from the figures' tables that ingest keeps ([`crate::figures`]),
//! so every collector process on one database answers the same, and
//! nothing here grows with the events stored.

use crate::figures::{Cell, MINUTE};
use segmint_core::json::{write_number, write_string, Value};
use std::collections::{BTreeMap, HashMap};

/// Conversion of users shown one variation of a segment's banner.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Arm {
    /// Users who saw the variation (`Promotion Viewed`).
    pub exposed: usize,
    /// Of those, users with an `Order Completed` at or after exposure.
    pub converted: usize,
    /// Orders after exposure.
    pub orders: usize,
    /// Their total value.
    pub revenue: f64,
}

impl Arm {
    /// Conversion rate (0 when nobody was exposed).
    pub fn rate(&self) -> f64 {
        if self.exposed == 0 {
            0.0
        } else {
            self.converted as f64 / self.exposed as f64
        }
    }

    /// Average order value (0 without orders).
    pub fn aov(&self) -> f64 {
        if self.orders == 0 {
            0.0
        } else {
            self.revenue / self.orders as f64
        }
    }
}

/// The lift of personalization over the holdout, with a 95% confidence
/// interval (two-proportion test).
#[derive(Clone, Debug, PartialEq)]
pub struct Lift {
    /// Personalized rate minus holdout rate.
    pub difference: f64,
    /// 95% confidence interval of the difference (unpooled).
    pub ci95: (f64, f64),
    /// Two-sided p-value of the pooled z-test.
    pub p_value: f64,
}

/// The two-proportion comparison of `a` (personalized) and `b` (holdout);
/// `None` when either arm is empty.
pub fn lift(a: &Arm, b: &Arm) -> Option<Lift> {
    if a.exposed == 0 || b.exposed == 0 {
        return None;
    }
    let (n1, n2) = (a.exposed as f64, b.exposed as f64);
    let (p1, p2) = (a.rate(), b.rate());
    let difference = p1 - p2;
    let se = (p1 * (1.0 - p1) / n1 + p2 * (1.0 - p2) / n2).sqrt();
    let pooled = (a.converted + b.converted) as f64 / (n1 + n2);
    let se0 = (pooled * (1.0 - pooled) * (1.0 / n1 + 1.0 / n2)).sqrt();
    let p_value = if se0 > 0.0 {
        2.0 * (1.0 - normal_cdf((difference / se0).abs()))
    } else {
        1.0
    };
    Some(Lift {
        difference,
        ci95: (difference - 1.96 * se, difference + 1.96 * se),
        p_value,
    })
}

/// The standard normal distribution function (Abramowitz and Stegun
/// 7.1.26 for erf, accurate to 1.5e-7).
pub fn normal_cdf(x: f64) -> f64 {
    let z = x.abs() / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.327_591_1 * z);
    let poly = t
        * (0.254_829_592
            + t * (-0.284_496_736
                + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    let erf = 1.0 - poly * (-z * z).exp();
    if x >= 0.0 {
        0.5 * (1.0 + erf)
    } else {
        0.5 * (1.0 - erf)
    }
}

/// Everything the dashboard shows, as read from the figures' tables
/// ([`crate::figures`]).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Summary {
    events: u64,
    users: u64,
    bot_events: u64,
    bot_users: u64,
    per_minute: BTreeMap<i64, u64>,
    /// Per segment: users whose latest event puts them in it.
    sizes: HashMap<String, usize>,
    /// Per minute, per segment: the users seen in it.
    sizes_by_minute: BTreeMap<i64, HashMap<String, usize>>,
    /// Per (segment, variation).
    arms: HashMap<(String, String), Arm>,
}

impl Summary {
    /// The figures from the rows of [`crate::figures::SUMMARY_QUERIES`],
    /// in their order.
    pub fn from_rows(results: &[Vec<Vec<Cell>>]) -> Summary {
        let empty = Vec::new();
        let rows = |i: usize| results.get(i).unwrap_or(&empty);
        let first = |i: usize, col: usize| {
            rows(i)
                .first()
                .and_then(|r| r.get(col))
                .map_or(0, |c| c.number() as u64)
        };
        let cell = |row: &[Cell], col: usize| row.get(col).cloned().unwrap_or(Cell::Null);
        let mut s = Summary {
            events: first(0, 0),
            bot_events: first(0, 1),
            users: first(1, 0),
            bot_users: first(2, 0),
            ..Summary::default()
        };
        for row in rows(3) {
            s.per_minute
                .insert(cell(row, 0).number() as i64, cell(row, 1).number() as u64);
        }
        for row in rows(4) {
            let n = cell(row, 1).number() as usize;
            if let Ok(Value::Array(items)) = Value::parse(cell(row, 0).text()) {
                for id in items.iter().filter_map(Value::as_str) {
                    *s.sizes.entry(id.to_string()).or_default() += n;
                }
            }
        }
        for row in rows(5) {
            s.sizes_by_minute
                .entry(cell(row, 0).number() as i64)
                .or_default()
                .insert(
                    cell(row, 1).text().to_string(),
                    cell(row, 2).number() as usize,
                );
        }
        for row in rows(6) {
            s.arms.insert(
                (
                    cell(row, 0).text().to_string(),
                    cell(row, 1).text().to_string(),
                ),
                Arm {
                    exposed: cell(row, 2).number() as usize,
                    converted: cell(row, 3).number() as usize,
                    orders: cell(row, 4).number() as usize,
                    revenue: cell(row, 5).number(),
                },
            );
        }
        s
    }

    /// Stored events counted (bots' included).
    pub fn events(&self) -> u64 {
        self.events + self.bot_events
    }

    /// Users whose latest event puts them in `segment`.
    pub fn size(&self, segment: &str) -> usize {
        self.sizes.get(segment).copied().unwrap_or(0)
    }

    /// Events per minute over the last `minutes` (oldest first).
    pub fn events_per_minute(&self, now: f64, minutes: i64) -> Vec<(i64, u64)> {
        let last = (now / MINUTE).floor() as i64;
        (last - minutes + 1..=last)
            .map(|m| (m, self.per_minute.get(&m).copied().unwrap_or(0)))
            .collect()
    }

    /// Users seen in `segment`, per minute, over the last `minutes`.
    pub fn sizes_over_time(&self, segment: &str, now: f64, minutes: i64) -> Vec<(i64, usize)> {
        let last = (now / MINUTE).floor() as i64;
        (last - minutes + 1..=last)
            .map(|m| {
                (
                    m,
                    self.sizes_by_minute
                        .get(&m)
                        .and_then(|b| b.get(segment))
                        .copied()
                        .unwrap_or(0),
                )
            })
            .collect()
    }

    /// The arm of `segment` shown `variation`.
    pub fn arm(&self, segment: &str, variation: &str) -> Arm {
        self.arms
            .get(&(segment.to_string(), variation.to_string()))
            .cloned()
            .unwrap_or_default()
    }

    /// Segments to report: the rules' (id, name). Names a client made up
    /// are stored with its events but are not figures.
    pub fn segment_ids(&self, named: &[(String, String)]) -> Vec<(String, String)> {
        named.to_vec()
    }

    /// The JSON of `GET /api/summary`.
    pub fn to_json(
        &self,
        named: &[(String, String)],
        rules_version: Option<&str>,
        now: f64,
    ) -> String {
        let mut out = String::from("{\"events\":");
        write_number(&mut out, self.events as f64);
        out.push_str(",\"users\":");
        write_number(&mut out, self.users as f64);
        out.push_str(",\"bots\":{\"events\":");
        write_number(&mut out, self.bot_events as f64);
        out.push_str(",\"users\":");
        write_number(&mut out, self.bot_users as f64);
        out.push('}');
        out.push_str(",\"rulesVersion\":");
        match rules_version {
            Some(v) => write_string(&mut out, v),
            None => out.push_str("null"),
        }
        out.push_str(",\"eventsPerMinute\":");
        write_pairs(
            &mut out,
            self.events_per_minute(now, 60)
                .into_iter()
                .map(|(m, n)| (m as f64 * MINUTE, n as f64)),
        );
        out.push_str(",\"segments\":[");
        for (i, (id, name)) in self.segment_ids(named).iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str("{\"id\":");
            write_string(&mut out, id);
            out.push_str(",\"name\":");
            write_string(&mut out, name);
            out.push_str(",\"size\":");
            write_number(&mut out, self.size(id) as f64);
            out.push_str(",\"sizes\":");
            write_pairs(
                &mut out,
                self.sizes_over_time(id, now, 60)
                    .into_iter()
                    .map(|(m, n)| (m as f64 * MINUTE, n as f64)),
            );
            let (p, h) = (self.arm(id, "personalized"), self.arm(id, "holdout"));
            for (key, arm) in [("personalized", &p), ("holdout", &h)] {
                out.push_str(&format!(
                    ",\"{key}\":{{\"exposed\":{},\"converted\":{},\"orders\":{},\"rate\":",
                    arm.exposed, arm.converted, arm.orders
                ));
                write_number(&mut out, arm.rate());
                out.push_str(",\"aov\":");
                write_number(&mut out, arm.aov());
                out.push('}');
            }
            out.push_str(",\"lift\":");
            match lift(&p, &h) {
                Some(l) => {
                    out.push_str("{\"difference\":");
                    write_number(&mut out, l.difference);
                    out.push_str(",\"ci95\":[");
                    write_number(&mut out, l.ci95.0);
                    out.push(',');
                    write_number(&mut out, l.ci95.1);
                    out.push_str("],\"pValue\":");
                    write_number(&mut out, l.p_value);
                    out.push('}');
                }
                None => out.push_str("null"),
            }
            out.push('}');
        }
        out.push_str("]}");
        out
    }
}

fn write_pairs(out: &mut String, pairs: impl Iterator<Item = (f64, f64)>) {
    out.push('[');
    for (i, (a, b)) in pairs.enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push('[');
        write_number(out, a);
        out.push(',');
        write_number(out, b);
        out.push(']');
    }
    out.push(']');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::figures::{self, Rollup};
    use crate::ingest::StoredEvent;
    use std::collections::HashSet;

    /// The figures' tables in an in-memory SQLite, fed one event at a
    /// time as ingest feeds them.
    struct Figures(rusqlite::Connection);

    impl Figures {
        fn new() -> Figures {
            let conn = rusqlite::Connection::open_in_memory().unwrap();
            conn.execute_batch(figures::SCHEMA).unwrap();
            Figures(conn)
        }

        fn add(&self, e: &StoredEvent) {
            let defined: HashSet<String> = ["vip", "new-user"].map(String::from).into();
            figures::sqlite::apply(&self.0, &Rollup::of([e], &defined).statements()).unwrap();
        }

        fn summary(&self) -> Summary {
            let first_minute = figures::Param::Int(0);
            let rows: Vec<_> = figures::SUMMARY_QUERIES
                .iter()
                .map(|q| {
                    let params = if q.contains("$1") {
                        vec![first_minute.clone()]
                    } else {
                        vec![]
                    };
                    figures::sqlite::query(&self.0, q, &params).unwrap()
                })
                .collect();
            Summary::from_rows(&rows)
        }
    }

    fn ev(user: &str, t: f64, event: &str, segments: &str) -> StoredEvent {
        StoredEvent {
            message_id: format!("{user}{t}{event}"),
            received_at: t,
            timestamp: t,
            kind: "track".into(),
            event: Some(event.into()),
            anonymous_id: Some(user.into()),
            user_id: None,
            segments: segments.into(),
            promo_segment: None,
            promo_variation: None,
            order_total: None,
            order_id: None,
            bot: false,
            body: String::new(),
        }
    }

    fn exposed(user: &str, t: f64, segment: &str, variation: &str) -> StoredEvent {
        StoredEvent {
            promo_segment: Some(segment.into()),
            promo_variation: Some(variation.into()),
            ..ev(user, t, "Promotion Viewed", &format!(r#"["{segment}"]"#))
        }
    }

    fn order(user: &str, t: f64, total: f64) -> StoredEvent {
        StoredEvent {
            order_total: Some(total),
            ..ev(user, t, "Order Completed", "[]")
        }
    }

    #[test]
    fn conversion_counts_orders_after_exposure() {
        let f = Figures::new();
        f.add(&order("a", 1.0, 99.0)); // before exposure: not attributed
        f.add(&exposed("a", 2.0, "vip", "personalized"));
        f.add(&order("a", 3.0, 30.0));
        f.add(&order("a", 4.0, 10.0));
        f.add(&exposed("b", 2.0, "vip", "personalized"));
        f.add(&exposed("c", 2.0, "vip", "holdout"));
        f.add(&order("c", 5.0, 50.0));
        let s = f.summary();
        let p = s.arm("vip", "personalized");
        assert_eq!((p.exposed, p.converted, p.orders), (2, 1, 2));
        assert_eq!(p.rate(), 0.5);
        assert_eq!(p.aov(), 20.0);
        let h = s.arm("vip", "holdout");
        assert_eq!((h.exposed, h.converted), (1, 1));
        assert_eq!(s.size("vip"), 1, "only c's latest event has vip");
        let v =
            Value::parse(&s.to_json(&[("vip".into(), "VIPs".into())], Some("r1"), 10.0)).unwrap();
        assert_eq!(v.get("events").and_then(Value::as_f64), Some(7.0));
        assert_eq!(v.get("users").and_then(Value::as_f64), Some(3.0));
    }

    #[test]
    fn an_order_sent_again_counts_once() {
        let f = Figures::new();
        f.add(&exposed("a", 1.0, "vip", "personalized"));
        let again = |t: f64, id: &str| StoredEvent {
            order_id: Some(id.into()),
            message_id: format!("m{t}"),
            ..order("a", t, 40.0)
        };
        f.add(&again(2.0, "o-1"));
        f.add(&again(3.0, "o-1")); // the thank-you page reloaded
        f.add(&again(4.0, "o-2"));
        f.add(&order("a", 5.0, 10.0)); // no id: counted
        let s = f.summary();
        let arm = s.arm("vip", "personalized");
        assert_eq!((arm.orders, arm.revenue), (3, 90.0));
        assert_eq!(s.events(), 5, "every event is still counted as received");
    }

    #[test]
    fn bots_are_counted_apart_and_in_no_figure() {
        let f = Figures::new();
        f.add(&exposed("person", 1.0, "vip", "personalized"));
        let bot = |e: StoredEvent| StoredEvent { bot: true, ..e };
        f.add(&bot(exposed("crawler", 1.0, "vip", "personalized")));
        f.add(&bot(ev("crawler", 2.0, "Page Viewed", r#"["new-user"]"#)));
        f.add(&bot(order("crawler", 3.0, 10.0)));
        let s = f.summary();
        assert_eq!(s.arm("vip", "personalized").exposed, 1);
        assert_eq!(s.size("new-user"), 0);
        assert_eq!(s.events(), 4, "stored events, bots' included");
        let v = Value::parse(&s.to_json(&[], None, 10.0)).unwrap();
        let n = |v: &Value, k: &str| v.get(k).and_then(Value::as_f64);
        assert_eq!((n(&v, "events"), n(&v, "users")), (Some(1.0), Some(1.0)));
        let bots = v.get("bots").unwrap();
        assert_eq!(
            (n(bots, "events"), n(bots, "users")),
            (Some(3.0), Some(1.0))
        );
    }

    #[test]
    fn two_proportion_interval_matches_a_known_example() {
        // 200/1000 against 150/1000: difference 0.05, SE 0.01696.
        let a = Arm {
            exposed: 1000,
            converted: 200,
            ..Arm::default()
        };
        let b = Arm {
            exposed: 1000,
            converted: 150,
            ..Arm::default()
        };
        let l = lift(&a, &b).unwrap();
        assert!((l.difference - 0.05).abs() < 1e-12);
        assert!(
            (l.ci95.0 - 0.01676).abs() < 1e-4 && (l.ci95.1 - 0.08324).abs() < 1e-4,
            "{:?}",
            l.ci95
        );
        // Pooled p = 0.175, z = 0.05 / 0.016993 = 2.942: two-sided 0.00326.
        assert!((l.p_value - 0.00326).abs() < 2e-5, "{}", l.p_value);
        assert!(lift(&a, &Arm::default()).is_none());
        assert!((normal_cdf(1.96) - 0.975).abs() < 1e-4);
    }
}
