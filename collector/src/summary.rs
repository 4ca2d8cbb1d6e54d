//! The figures the dashboard draws: events per minute, segment sizes over
//! time, and per segment the conversion and average order value of users
//! shown the personalized banner against the holdout.
//!
//! Read from the figures' tables that ingest keeps ([`crate::figures`]),
//! so every collector process on one database answers the same, and
//! nothing here grows with the events stored.

use crate::figures::{Cell, MINUTE};
use segmint_core::json::{write_number, write_string, Value};
use statrs::distribution::{ContinuousCDF, Normal};
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

/// Users each arm needs before the dashboard compares them: below it,
/// the normal approximation both tests rest on is poor, and the dashboard
/// says "not enough data".
pub const MIN_EXPOSED_PER_ARM: usize = 30;

/// The mixing prior's standard deviation of the sequential test: tuned
/// for differences in conversion of about 5 percentage points.
pub const SEQUENTIAL_TAU: f64 = 0.05;

/// A 95% interval of the difference and the p-value of "no difference",
/// computed so that they agree: the interval leaves out 0 exactly when
/// p < 0.05.
#[derive(Clone, Debug, PartialEq)]
pub struct Test {
    /// 95% interval of personalized minus holdout.
    pub ci95: (f64, f64),
    /// p-value of no difference.
    pub p_value: f64,
}

/// The lift of personalization over the holdout.
#[derive(Clone, Debug, PartialEq)]
pub struct Lift {
    /// Personalized rate minus holdout rate.
    pub difference: f64,
    /// Always valid, however often the dashboard is looked at: the mixture
    /// sequential probability ratio test (mSPRT, as Optimizely's Stats
    /// Engine and GrowthBook's sequential mode), its confidence sequence
    /// and p-value. This is what the dashboard shows.
    pub sequential: Test,
    /// Valid only if read once, at a sample size fixed in advance: the
    /// two-proportion Wald test and interval (unpooled, so the two agree).
    pub fixed_horizon: Test,
}

/// The comparison of `a` (personalized) and `b` (holdout); `None` while
/// either arm has fewer than [`MIN_EXPOSED_PER_ARM`] users.
pub fn lift(a: &Arm, b: &Arm) -> Option<Lift> {
    if a.exposed < MIN_EXPOSED_PER_ARM || b.exposed < MIN_EXPOSED_PER_ARM {
        return None;
    }
    let (n1, n2) = (a.exposed as f64, b.exposed as f64);
    let (p1, p2) = (a.rate(), b.rate());
    let difference = p1 - p2;
    // The variance of the difference, each rate shrunk by half a user
    // towards 1/2 so that an arm that converted all or none of its users
    // does not claim certainty.
    let shrunk = |arm: &Arm| (arm.converted as f64 + 0.5) / (arm.exposed as f64 + 1.0);
    let (q1, q2) = (shrunk(a), shrunk(b));
    let variance = q1 * (1.0 - q1) / n1 + q2 * (1.0 - q2) / n2;
    Some(Lift {
        difference,
        sequential: msprt(difference, variance, SEQUENTIAL_TAU * SEQUENTIAL_TAU, 0.05),
        fixed_horizon: wald(difference, variance),
    })
}

/// The standard normal distribution (statrs).
fn standard_normal() -> Option<Normal> {
    Normal::new(0.0, 1.0).ok()
}

/// The two-sided Wald test and 95% interval of an estimate with variance
/// `variance`.
pub fn wald(estimate: f64, variance: f64) -> Test {
    let se = variance.sqrt();
    let (z95, p_value) = match standard_normal() {
        Some(n) => (
            n.inverse_cdf(0.975),
            2.0 * (1.0 - n.cdf((estimate / se).abs())),
        ),
        None => (f64::NAN, f64::NAN),
    };
    Test {
        ci95: (estimate - z95 * se, estimate + z95 * se),
        p_value,
    }
}

/// The mixture sequential probability ratio test of "no difference" for a
/// normally distributed estimate with variance `variance`, mixing over
/// true differences drawn from N(0, `tau2`), at level `alpha`: the
/// likelihood ratio Λ = √(V/(V+τ²)) · exp(θ̂²τ² / (2V(V+τ²))), the
/// p-value min(1, 1/Λ), and the confidence sequence θ̂ ± √(V(V+τ²)/τ² ·
/// (2 ln(1/α) + ln((V+τ²)/V))). Both stay valid when looked at after every
/// event (Johari, Pekelis and Walsh, "Always valid inference", 2017).
pub fn msprt(estimate: f64, variance: f64, tau2: f64, alpha: f64) -> Test {
    let (v, t) = (variance, tau2);
    let log_ratio = 0.5 * (v / (v + t)).ln() + estimate * estimate * t / (2.0 * v * (v + t));
    let p_value = (-log_ratio).exp().min(1.0);
    let half = (v * (v + t) / t * (2.0 * (1.0 / alpha).ln() + ((v + t) / v).ln())).sqrt();
    Test {
        ci95: (estimate - half, estimate + half),
        p_value,
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
        kpis: Option<&crate::kpis::Kpis>,
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
        out.push_str(&format!(
            ",\"minExposedPerArm\":{MIN_EXPOSED_PER_ARM},\"kpisAt\":"
        ));
        match kpis {
            Some(k) => write_number(&mut out, k.at),
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
            let k = kpis.and_then(|k| k.by_segment.get(id));
            for (key, share) in [
                ("retention", k.and_then(|k| k.retention())),
                ("bounceRate", k.and_then(|k| k.bounce_rate())),
            ] {
                out.push_str(&format!(",\"{key}\":"));
                match share {
                    Some(x) => write_number(&mut out, x),
                    None => out.push_str("null"),
                }
            }
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
                    for (key, test) in [
                        ("sequential", &l.sequential),
                        ("fixedHorizon", &l.fixed_horizon),
                    ] {
                        out.push_str(&format!(",\"{key}\":{{\"ci95\":["));
                        write_number(&mut out, test.ci95.0);
                        out.push(',');
                        write_number(&mut out, test.ci95.1);
                        out.push_str("],\"pValue\":");
                        write_number(&mut out, test.p_value);
                        out.push('}');
                    }
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
        let v = Value::parse(&s.to_json(&[("vip".into(), "VIPs".into())], Some("r1"), 10.0, None))
            .unwrap();
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
        let v = Value::parse(&s.to_json(&[], None, 10.0, None)).unwrap();
        let n = |v: &Value, k: &str| v.get(k).and_then(Value::as_f64);
        assert_eq!((n(&v, "events"), n(&v, "users")), (Some(1.0), Some(1.0)));
        let bots = v.get("bots").unwrap();
        assert_eq!(
            (n(bots, "events"), n(bots, "users")),
            (Some(3.0), Some(1.0))
        );
    }

    #[test]
    fn the_fixed_horizon_interval_matches_a_known_example_and_its_test() {
        // 200/1000 against 150/1000: difference 0.05; SE 0.016969 from
        // the rates shrunk by half a user (200.5/1001, 150.5/1001).
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
        let f = &l.fixed_horizon;
        assert!(
            (f.ci95.0 - 0.01676).abs() < 1e-4 && (f.ci95.1 - 0.08324).abs() < 1e-4,
            "{:?}",
            f.ci95
        );
        // z = 0.05 / 0.016969 = 2.9466: two-sided 0.00321.
        assert!((f.p_value - 0.00321).abs() < 2e-5, "{}", f.p_value);
        // The sequential interval is wider (it pays for being looked at
        // often): at 1,000 users per arm it still holds 0 ...
        let s = &l.sequential;
        assert!(s.ci95.0 < f.ci95.0 && s.ci95.1 > f.ci95.1, "{s:?}");
        assert!(s.ci95.0 < 0.0 && s.p_value > 0.05, "{s:?}");
        // ... and with four times the users, the same rates are a lift.
        let four = |arm: &Arm| Arm {
            exposed: arm.exposed * 4,
            converted: arm.converted * 4,
            ..Arm::default()
        };
        let s = lift(&four(&a), &four(&b)).unwrap().sequential;
        assert!(s.ci95.0 > 0.0 && s.p_value < 0.05, "{s:?}");
    }

    #[test]
    fn too_few_users_is_not_enough_data() {
        let arm = |exposed, converted| Arm {
            exposed,
            converted,
            ..Arm::default()
        };
        // The review's case: one held-out user.
        assert!(lift(&arm(6, 1), &arm(1, 1)).is_none());
        assert!(lift(&arm(29, 3), &arm(200, 20)).is_none());
        assert!(lift(&arm(30, 3), &arm(30, 1)).is_some());
    }

    #[test]
    fn each_interval_agrees_with_its_test() {
        // Over many outcomes: 0 is outside the 95% interval exactly when
        // p < 0.05, for both tests.
        for n in [30usize, 100, 1000, 20_000] {
            for k1 in (0..=n).step_by((n / 17).max(1)) {
                for k2 in (0..=n).step_by((n / 13).max(1)) {
                    let arm = |converted| Arm {
                        exposed: n,
                        converted,
                        ..Arm::default()
                    };
                    let l = lift(&arm(k1), &arm(k2)).unwrap();
                    for t in [&l.sequential, &l.fixed_horizon] {
                        let excludes = t.ci95.0 > 0.0 || t.ci95.1 < 0.0;
                        let borderline = (t.p_value - 0.05).abs() < 1e-9;
                        assert!(
                            borderline || excludes == (t.p_value < 0.05),
                            "{n} {k1} {k2}: {t:?}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn the_sequential_test_keeps_its_level_when_watched() {
        // No true difference, 300 simulated experiments of 2,000 users per
        // arm, looked at after every 50 users: the share ever declared
        // significant stays under 5% (a fixed-horizon test watched this
        // way errs far more often).
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut uniform = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        let (mut sequential, mut fixed) = (0, 0);
        for _ in 0..300 {
            let (mut a, mut b) = (Arm::default(), Arm::default());
            let (mut seq_hit, mut fixed_hit) = (false, false);
            for i in 1..=2000 {
                a.exposed += 1;
                b.exposed += 1;
                a.converted += usize::from(uniform() < 0.1);
                b.converted += usize::from(uniform() < 0.1);
                if i % 50 == 0 {
                    if let Some(l) = lift(&a, &b) {
                        seq_hit |= l.sequential.p_value < 0.05;
                        fixed_hit |= l.fixed_horizon.p_value < 0.05;
                    }
                }
            }
            sequential += usize::from(seq_hit);
            fixed += usize::from(fixed_hit);
        }
        assert!(
            sequential * 20 < 300,
            "sequential false positives: {sequential} of 300"
        );
        assert!(
            fixed > sequential,
            "fixed horizon {fixed}, sequential {sequential}"
        );
    }
}
