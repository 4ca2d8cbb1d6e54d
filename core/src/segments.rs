//! Which segments a user is in, what changed, and which banner a slot
//! shows (with the holdout).

use crate::condition::{eval_condition, Host};
use crate::hash::in_holdout;
use crate::json::{write_string, write_strings, Value};
use crate::message::PageInfo;
use crate::rules::Rules;

/// The attribute object conditions are evaluated over: the user's traits
/// from `identify`, the computed traits (which win on a name clash) and
/// `context` (page path, url, referrer, UTM campaign, device type, locale).
pub fn attributes(user_traits: &Value, computed: Vec<(String, Value)>, page: &PageInfo) -> Value {
    let mut attrs = match user_traits {
        Value::Object(_) => user_traits.clone(),
        _ => Value::Object(Vec::new()),
    };
    for (name, value) in computed {
        attrs.insert(&name, value);
    }
    let campaign = page
        .campaign()
        .into_iter()
        .map(|(k, v)| (k, Value::String(v)))
        .collect();
    let s = |x: &str| Value::String(x.to_string());
    attrs.insert(
        "context",
        Value::Object(vec![
            ("path".into(), s(&page.path)),
            ("url".into(), s(&page.url)),
            ("referrer".into(), s(&page.referrer)),
            ("search".into(), s(&page.search)),
            ("campaign".into(), Value::Object(campaign)),
            ("device_type".into(), s(page.device_type())),
            ("locale".into(), s(&page.locale)),
        ]),
    );
    attrs
}

/// Ids of the segments whose condition holds, highest priority first.
pub fn evaluate(rules: &Rules, attrs: &Value, host: &dyn Host) -> Vec<String> {
    rules
        .segments
        .iter()
        .filter(|s| eval_condition(attrs, &s.condition, &rules.saved_groups, host))
        .map(|s| s.id.clone())
        .collect()
}

/// A change of segments, as `on("segments")` reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentChange {
    /// All current segments, highest priority first.
    pub segments: Vec<String>,
    /// Segments joined.
    pub entered: Vec<String>,
    /// Segments left.
    pub exited: Vec<String>,
}

impl SegmentChange {
    /// The change from `old` to `new`, if there is one.
    pub fn between(old: &[String], new: &[String]) -> Option<SegmentChange> {
        if old == new {
            return None;
        }
        let entered: Vec<String> = new.iter().filter(|s| !old.contains(s)).cloned().collect();
        let exited: Vec<String> = old.iter().filter(|s| !new.contains(s)).cloned().collect();
        (!entered.is_empty() || !exited.is_empty()).then(|| SegmentChange {
            segments: new.to_vec(),
            entered,
            exited,
        })
    }

    /// `{"segments":[..],"entered":[..],"exited":[..]}`
    pub fn to_json(&self) -> String {
        let mut out = String::from("{\"segments\":");
        write_strings(&mut out, &self.segments);
        out.push_str(",\"entered\":");
        write_strings(&mut out, &self.entered);
        out.push_str(",\"exited\":");
        write_strings(&mut out, &self.exited);
        out.push('}');
        out
    }
}

/// Which variant of a slot a user sees.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Variation {
    /// The segment's banner.
    Personalized,
    /// In the segment but held out: sees `default`, counted for the lift.
    Holdout,
    /// In none of the slot's segments: sees `default`.
    Default,
}

impl Variation {
    /// The name sent in `Promotion Viewed`.
    pub fn as_str(self) -> &'static str {
        match self {
            Variation::Personalized => "personalized",
            Variation::Holdout => "holdout",
            Variation::Default => "default",
        }
    }
}

/// A slot's banner choice.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    /// The segment that decided, if any.
    pub segment: Option<String>,
    /// What is shown.
    pub variation: Variation,
}

impl Decision {
    /// The template to render: the segment's, or `default`.
    pub fn template(&self) -> &str {
        match (&self.segment, self.variation) {
            (Some(s), Variation::Personalized) => s,
            _ => "default",
        }
    }

    /// `{"segment":..|null,"variation":..,"template":..}`
    pub fn to_json(&self) -> String {
        let mut out = String::from("{\"segment\":");
        match &self.segment {
            Some(s) => write_string(&mut out, s),
            None => out.push_str("null"),
        }
        out.push_str(",\"variation\":\"");
        out.push_str(self.variation.as_str());
        out.push_str("\",\"template\":");
        write_string(&mut out, self.template());
        out.push('}');
        out
    }
}

/// The banner for a slot that has templates for `offered` segments: the
/// highest-priority segment the user is in that the slot offers, unless
/// the user is held out of it (GrowthBook hash v2 of the anonymous id,
/// seeded with the segment id).
pub fn decide(
    rules: &Rules,
    member_of: &[String],
    offered: &[String],
    anonymous_id: &str,
) -> Decision {
    let chosen = rules
        .segments
        .iter()
        .find(|s| member_of.contains(&s.id) && offered.contains(&s.id));
    match chosen {
        None => Decision {
            segment: None,
            variation: Variation::Default,
        },
        Some(s) => Decision {
            segment: Some(s.id.clone()),
            variation: if in_holdout(&s.id, anonymous_id, s.holdout) {
                Variation::Holdout
            } else {
                Variation::Personalized
            },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::condition::Native;

    fn rules() -> Rules {
        Rules::parse(
            r#"{"version":"1","traits":{"n":{"event":"Order Completed","aggregate":"count","window_days":30}},
            "segments":[
              {"id":"low","priority":1,"condition":{"n":{"$gte":1}}},
              {"id":"high","priority":9,"condition":{"n":{"$gte":3}},"holdout":0.5},
              {"id":"mobile","priority":5,"condition":{"context.device_type":"mobile"}},
              {"id":"pro","condition":{"plan":"pro"}}
            ]}"#,
        )
        .unwrap()
    }

    #[test]
    fn evaluates_traits_user_traits_and_context() {
        let r = rules();
        let page = PageInfo {
            user_agent: "Mozilla/5.0 (iPhone) Mobile".into(),
            ..PageInfo::default()
        };
        let user = Value::parse(r#"{"plan":"pro","n":100}"#).unwrap();
        let attrs = attributes(&user, vec![("n".into(), Value::Number(3.0))], &page);
        assert_eq!(
            evaluate(&r, &attrs, &Native::default()),
            vec!["high", "mobile", "low", "pro"]
        );
        let attrs = attributes(
            &Value::Null,
            vec![("n".into(), Value::Number(1.0))],
            &PageInfo::default(),
        );
        assert_eq!(evaluate(&r, &attrs, &Native::default()), vec!["low"]);
    }

    #[test]
    fn reports_changes() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let c = SegmentChange::between(&s(&["a", "b"]), &s(&["b", "c"])).unwrap();
        assert_eq!(c.entered, s(&["c"]));
        assert_eq!(c.exited, s(&["a"]));
        assert_eq!(
            c.to_json(),
            r#"{"segments":["b","c"],"entered":["c"],"exited":["a"]}"#
        );
        assert!(SegmentChange::between(&s(&["a"]), &s(&["a"])).is_none());
    }

    #[test]
    fn decides_by_priority_with_holdout_and_default() {
        let r = rules();
        let member = vec!["high".to_string(), "low".to_string()];
        let offered = vec!["low".to_string(), "high".to_string()];
        let mut seen = std::collections::HashSet::new();
        for i in 0..200 {
            let d = decide(&r, &member, &offered, &format!("anon-{i}"));
            assert_eq!(d.segment.as_deref(), Some("high"));
            seen.insert(d.variation);
            assert_eq!(
                d,
                decide(&r, &member, &offered, &format!("anon-{i}")),
                "deterministic"
            );
        }
        assert_eq!(seen.len(), 2, "both personalized and holdout occur at 50%");
        let d = decide(&r, &member, &["low".to_string()], "x");
        assert_eq!(
            (d.template(), d.variation),
            ("low", Variation::Personalized)
        );
        let d = decide(&r, &[], &offered, "x");
        assert_eq!(
            d.to_json(),
            r#"{"segment":null,"variation":"default","template":"default"}"#
        );
    }
}
