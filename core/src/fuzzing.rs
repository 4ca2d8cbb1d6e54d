//! Entry points shared by the fuzz targets (`core/fuzz`) and the property
//! tests, so both drive the same code. Each takes arbitrary bytes and must
//! never panic.

use crate::condition::{eval_condition, Host};
use crate::json::Value;
use crate::message::PageInfo;
use crate::profile::Profile;
use crate::rules::Rules;
use crate::segments::{attributes, evaluate};

/// Parses arbitrary bytes as JSON and, if that works, writes and re-reads
/// the value: the round trip must be exact.
pub fn json(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let parsed = Value::parse(text);
    assert_eq!(
        crate::json::validate(text).is_ok(),
        parsed.is_ok(),
        "validate agrees with parse"
    );
    if let Ok(v) = parsed {
        let again = Value::parse(&v.to_json());
        assert_eq!(again.as_ref().ok(), Some(&v), "round trip");
    }
}

/// A [`Host`] without regular expressions (every pattern is invalid),
/// so fuzzing exercises only this crate's code.
struct PlainHost;

impl Host for PlainHost {
    fn regex_test(&self, _: &str, _: bool, _: &str) -> Option<bool> {
        None
    }
    fn lowercase(&self, text: &str) -> String {
        text.to_lowercase()
    }
}

/// Splits the input in two JSON documents: a rules document (or a bare
/// condition) and attributes; validates, evaluates, and feeds the
/// attributes to a profile as event properties.
pub fn rules_and_conditions(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (left, right) = text.split_once('\u{0}').unwrap_or((text, "{}"));
    let attrs = Value::parse(right).unwrap_or_default();
    if let Ok(cond) = Value::parse(left) {
        // Any JSON as a condition, with itself as saved groups.
        let _ = eval_condition(&attrs, &cond, &cond, &PlainHost);
    }
    if let Ok(rules) = Rules::parse(left) {
        let mut profile = Profile::new(0.0, 1_800_000.0);
        profile.apply_rules(&rules, 0.0);
        for (i, t) in rules.traits.iter().enumerate() {
            if let crate::rules::TraitKind::Event { event, .. } = &t.kind {
                profile.record(event, Some(&attrs), i as f64 * 3_600_000.0);
            }
        }
        let a = attributes(&attrs, profile.traits(1e9), &PageInfo::default());
        let _ = evaluate(&rules, &a, &PlainHost);
        let _ = Profile::from_json(&profile.to_json(), &rules, 1e9, 1_800_000.0);
    }
}
