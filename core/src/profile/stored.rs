//! The profile's stored form (`sgm_profile`): compact JSON with a format
//! version, read back under the rules in force (days past the longest
//! window, and traits the rules no longer name, are left out).

use super::{Feature, Needs, Profile, Stats, PROFILE_FORMAT};
use crate::json::{write_number, write_string, Value};
use crate::rules::Rules;

impl Profile {
    /// The persisted form: compact JSON with a format version.
    pub fn to_json(&self) -> String {
        let mut out = format!("{{\"v\":{PROFILE_FORMAT},\"first\":");
        write_number(&mut out, self.first_seen_ms);
        out.push_str(",\"active\":");
        write_number(&mut out, self.last_activity_ms);
        out.push_str(",\"sessions\":");
        write_number(&mut out, f64::from(self.total_sessions));
        out.push_str(",\"sessionDays\":");
        write_day_pairs(&mut out, &self.sessions);
        out.push_str(",\"features\":[");
        for (i, f) in self.features.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str("{\"event\":");
            write_string(&mut out, &f.event);
            if let Some(p) = &f.property {
                out.push_str(",\"property\":");
                write_string(&mut out, &p.join("."));
            }
            out.push_str(",\"days\":[");
            for (j, (d, s)) in f.days.iter().enumerate() {
                if j > 0 {
                    out.push(',');
                }
                write_day(&mut out, *d, s);
            }
            out.push_str("]}");
        }
        out.push(']');
        if !self.orders.is_empty() {
            out.push_str(",\"orders\":");
            write_day_pairs(&mut out, &self.orders);
        }
        if !self.writers.is_empty() {
            out.push_str(",\"writers\":[");
            for (i, (tab, n, at)) in self.writers.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push('[');
                write_string(&mut out, tab);
                out.push(',');
                write_number(&mut out, f64::from(*n));
                out.push(',');
                write_number(&mut out, *at);
                out.push(']');
            }
            out.push(']');
        }
        out.push('}');
        out
    }

    /// Reads a persisted profile for `rules`. A damaged or other-format
    /// profile gives `None` (the caller starts afresh and reports it).
    pub fn from_json(
        text: &str,
        rules: &Rules,
        now: f64,
        session_timeout_ms: f64,
    ) -> Option<Profile> {
        let v = Value::parse(text).ok()?;
        if v.get("v")?.as_f64()? != f64::from(PROFILE_FORMAT) {
            return None;
        }
        let mut p = Profile::new(v.get("first")?.as_f64()?, session_timeout_ms);
        p.last_activity_ms = match v.get("active") {
            Some(Value::Number(n)) => *n,
            _ => f64::NEG_INFINITY,
        };
        p.total_sessions = v.get("sessions")?.as_f64()? as u32;
        p.sessions = read_day_pairs(v.get("sessionDays")?)?;
        for f in v.get("features")?.as_array()? {
            let mut days = Vec::new();
            for d in f.get("days")?.as_array()? {
                days.push(read_day(d)?);
            }
            crate::sort::sort_by_key(&mut days, |(d, _)| *d);
            p.features.push(Feature {
                event: f.get("event")?.as_str()?.to_string(),
                property: f
                    .get("property")
                    .and_then(Value::as_str)
                    .map(|s| s.split('.').map(str::to_string).collect()),
                needs: Needs::default(),
                days,
            });
        }
        // Absent from profiles written before orders were remembered.
        if let Some(orders) = v.get("orders").filter(|o| o.as_array().is_some()) {
            p.orders = read_day_pairs(orders)?;
        }
        // Absent from profiles no tab recorded into lately; a damaged
        // entry only costs the re-apply it would have allowed.
        for w in v
            .get("writers")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let w = w.as_array();
            let field = |i: usize| w.and_then(|w| w.get(i));
            if let (Some(tab), Some(n), Some(at)) = (
                field(0).and_then(Value::as_str),
                field(1).and_then(Value::as_f64),
                field(2).and_then(Value::as_f64),
            ) {
                p.writers.push((tab.to_string(), n as u32, at));
            }
        }
        p.apply_rules(rules, now);
        Some(p)
    }
}

/// `[[day, n], ...]`: the persisted form of sessions per day and of the
/// remembered orders.
fn write_day_pairs(out: &mut String, pairs: &[(i64, u32)]) {
    out.push('[');
    for (i, (day, n)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&format!("[{day},{n}]"));
    }
    out.push(']');
}

/// Reads what [`write_day_pairs`] wrote; `None` if damaged.
fn read_day_pairs(v: &Value) -> Option<Vec<(i64, u32)>> {
    let mut pairs = Vec::new();
    for pair in v.as_array()? {
        let pair = pair.as_array()?;
        pairs.push((
            pair.first()?.as_f64()? as i64,
            pair.get(1)?.as_f64()? as u32,
        ));
    }
    Some(pairs)
}

/// `[day, events, values, n, sum, min, max, counts, last]`, trailing
/// unused fields left off.
fn write_day(out: &mut String, day: i64, s: &Stats) {
    out.push('[');
    out.push_str(&day.to_string());
    for x in [
        f64::from(s.events),
        f64::from(s.values_seen),
        f64::from(s.n),
    ] {
        out.push(',');
        write_number(out, x);
    }
    if s.n > 0 || !s.counts.is_empty() || s.last.is_some() {
        for x in [s.sum, s.min, s.max] {
            out.push(',');
            write_number(out, x);
        }
    }
    if !s.counts.is_empty() || s.last.is_some() {
        out.push_str(",[");
        for (i, (v, c)) in s.counts.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push('[');
            v.write_to(out);
            out.push(',');
            out.push_str(&c.to_string());
            out.push(']');
        }
        out.push(']');
    }
    if let Some((at, v)) = &s.last {
        out.push_str(",[");
        write_number(out, *at);
        out.push(',');
        v.write_to(out);
        out.push(']');
    }
    out.push(']');
}

fn read_day(v: &Value) -> Option<(i64, Stats)> {
    let a = v.as_array()?;
    let num = |i: usize| a.get(i).and_then(Value::as_f64);
    let mut s = Stats {
        events: num(1)? as u32,
        values_seen: num(2)? as u32,
        n: num(3)? as u32,
        ..Stats::default()
    };
    if let (Some(sum), Some(min), Some(max)) = (num(4), num(5), num(6)) {
        s.sum = sum;
        s.min = min;
        s.max = max;
    }
    if let Some(counts) = a.get(7).and_then(Value::as_array) {
        for pair in counts {
            let pair = pair.as_array()?;
            s.counts
                .push((pair.first()?.clone(), pair.get(1)?.as_f64()? as u32));
        }
    }
    if let Some(last) = a.get(8).and_then(Value::as_array) {
        s.last = Some((last.first()?.as_f64()?, last.get(1)?.clone()));
    }
    Some((num(0)? as i64, s))
}
