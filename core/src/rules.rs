//! The rules document: computed traits and segments (DESIGN "Rules
//! document"), parsed with strict validation. A problem is reported with
//! its path, e.g. `segments[2].condition.purchases_30d.$gt: expected a
//! number`, and a bad document is never half-applied.

use crate::error::Error;
use crate::json::Value;

/// Longest trait window, in days.
pub const MAX_WINDOW_DAYS: u32 = 366;

/// How a trait folds the values of its window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Aggregate {
    /// Number of events (or of property values, when a property is given).
    Count,
    /// Sum of numeric values.
    Sum,
    /// Mean of numeric values.
    Avg,
    /// Smallest numeric value.
    Min,
    /// Largest numeric value.
    Max,
    /// Number of distinct values.
    Distinct,
    /// Share (0..1) of the most frequent value among all values.
    TopShare,
    /// The most frequent value.
    TopValue,
    /// The most recent value.
    Last,
}

impl Aggregate {
    fn parse(name: &str) -> Option<Aggregate> {
        Some(match name {
            "count" => Aggregate::Count,
            "sum" => Aggregate::Sum,
            "avg" => Aggregate::Avg,
            "min" => Aggregate::Min,
            "max" => Aggregate::Max,
            "distinct" => Aggregate::Distinct,
            "top_share" => Aggregate::TopShare,
            "top_value" => Aggregate::TopValue,
            "last" => Aggregate::Last,
            _ => return None,
        })
    }

    /// Whether the trait's value is always a number (so conditions on it
    /// must compare with numbers).
    pub fn is_numeric(self) -> bool {
        !matches!(self, Aggregate::TopValue | Aggregate::Last)
    }

    /// Whether it folds numbers (sum, avg, min, max).
    pub fn is_numeric_fold(self) -> bool {
        matches!(
            self,
            Aggregate::Sum | Aggregate::Avg | Aggregate::Min | Aggregate::Max
        )
    }

    /// Whether it counts values (distinct, top_share, top_value).
    pub fn counts_values(self) -> bool {
        matches!(
            self,
            Aggregate::Distinct | Aggregate::TopShare | Aggregate::TopValue
        )
    }
}

/// What a trait computes.
#[derive(Clone, Debug, PartialEq)]
pub enum TraitKind {
    /// An aggregate over the user's own events of one name.
    Event {
        /// The event name, e.g. `Order Completed`.
        event: String,
        /// How values fold.
        aggregate: Aggregate,
        /// Property path, split on `.`; goes through arrays.
        property: Option<Vec<String>>,
        /// Today and the `window_days - 1` days before it (UTC).
        window_days: u32,
    },
    /// Whole days since the profile was created.
    DaysSinceFirstSeen,
    /// Sessions (30 minutes of inactivity end one), in a window or ever.
    Sessions {
        /// Window in days; `None` counts every session.
        window_days: Option<u32>,
    },
}

/// A named computed trait.
#[derive(Clone, Debug, PartialEq)]
pub struct TraitDef {
    /// The attribute name conditions use.
    pub name: String,
    /// How it is computed.
    pub kind: TraitKind,
}

/// A segment.
#[derive(Clone, Debug, PartialEq)]
pub struct SegmentDef {
    /// Stable id, used by templates (`data-segment`) and events.
    pub id: String,
    /// Human name for dashboards.
    pub name: String,
    /// Higher wins when a slot has templates for several segments.
    pub priority: f64,
    /// GrowthBook condition over the user's attributes.
    pub condition: Value,
    /// Share (0..1) of members held out of personalization.
    pub holdout: f64,
}

/// A validated rules document.
#[derive(Clone, Debug, PartialEq)]
pub struct Rules {
    /// The document's version label.
    pub version: String,
    /// Computed traits, in document order.
    pub traits: Vec<TraitDef>,
    /// Segments, highest priority first (document order among equals).
    pub segments: Vec<SegmentDef>,
    /// GrowthBook saved groups for `$inGroup` / `$savedGroup` (or `Null`).
    pub saved_groups: Value,
}

fn err(path: &str, reason: impl Into<String>) -> Error {
    Error::InvalidRules {
        path: path.to_string(),
        reason: reason.into(),
    }
}

fn window(path: &str, v: Option<&Value>) -> Result<Option<u32>, Error> {
    match v {
        None => Ok(None),
        Some(Value::Number(n))
            if n.fract() == 0.0 && *n >= 1.0 && *n <= f64::from(MAX_WINDOW_DAYS) =>
        {
            Ok(Some(*n as u32))
        }
        Some(_) => Err(err(
            path,
            format!("expected a whole number of days from 1 to {MAX_WINDOW_DAYS}"),
        )),
    }
}

fn check_keys(path: &str, obj: &[(String, Value)], allowed: &[&str]) -> Result<(), Error> {
    match obj.iter().find(|(k, _)| !allowed.contains(&k.as_str())) {
        Some((k, _)) => Err(err(
            &join(path, k),
            format!("unknown field; expected one of: {}", allowed.join(", ")),
        )),
        None => Ok(()),
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn is_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl Rules {
    /// Parses and validates a rules document.
    pub fn parse(text: &str) -> Result<Rules, Error> {
        let doc = Value::parse(text).map_err(|e| err("", format!("not valid JSON: {e}")))?;
        Rules::from_value(&doc)
    }

    /// Validates a parsed rules document.
    pub fn from_value(doc: &Value) -> Result<Rules, Error> {
        let root = doc
            .as_object()
            .ok_or_else(|| err("", "expected a JSON object"))?;
        check_keys("", root, &["version", "traits", "segments", "savedGroups"])?;
        let version = match doc.get("version") {
            Some(Value::String(v)) if !v.is_empty() => v.clone(),
            _ => return Err(err("version", "expected a non-empty string")),
        };
        let traits = match doc.get("traits") {
            None => Vec::new(),
            Some(Value::Object(members)) => members
                .iter()
                .map(|(name, def)| parse_trait(name, def))
                .collect::<Result<_, _>>()?,
            Some(_) => return Err(err("traits", "expected an object of trait definitions")),
        };
        let saved_groups = match doc.get("savedGroups") {
            None => Value::Null,
            Some(v @ Value::Object(_)) => v.clone(),
            Some(_) => return Err(err("savedGroups", "expected an object")),
        };
        let list = doc
            .get("segments")
            .and_then(Value::as_array)
            .ok_or_else(|| err("segments", "expected an array"))?;
        let mut segments: Vec<SegmentDef> = Vec::with_capacity(list.len());
        for (i, s) in list.iter().enumerate() {
            let seg = parse_segment(&format!("segments[{i}]"), s, &traits)?;
            if segments.iter().any(|other| other.id == seg.id) {
                return Err(err(
                    &format!("segments[{i}].id"),
                    format!("duplicate segment id \"{}\"", seg.id),
                ));
            }
            segments.push(seg);
        }
        // Stable: equal priorities keep document order.
        crate::sort::sort_by_key(&mut segments, |s| -s.priority);
        Ok(Rules {
            version,
            traits,
            segments,
            saved_groups,
        })
    }

    /// The longest window any trait uses, in days (at least 1).
    pub fn longest_window(&self) -> u32 {
        self.traits
            .iter()
            .filter_map(|t| match &t.kind {
                TraitKind::Event { window_days, .. } => Some(*window_days),
                TraitKind::Sessions { window_days } => *window_days,
                TraitKind::DaysSinceFirstSeen => None,
            })
            .max()
            .unwrap_or(1)
    }

    /// The segment with this id.
    pub fn segment(&self, id: &str) -> Option<&SegmentDef> {
        self.segments.iter().find(|s| s.id == id)
    }
}

fn parse_trait(name: &str, def: &Value) -> Result<TraitDef, Error> {
    let path = format!("traits.{name}");
    if name.is_empty() || name == "context" || name.contains('.') {
        return Err(err(
            &path,
            "trait names must be non-empty, without '.', and not \"context\"",
        ));
    }
    let obj = def
        .as_object()
        .ok_or_else(|| err(&path, "expected an object"))?;
    if let Some(builtin) = def.get("builtin") {
        check_keys(&path, obj, &["builtin", "window_days"])?;
        let kind = match builtin.as_str() {
            Some("days_since_first_seen") => {
                if def.get("window_days").is_some() {
                    return Err(err(
                        &join(&path, "window_days"),
                        "days_since_first_seen has no window",
                    ));
                }
                TraitKind::DaysSinceFirstSeen
            }
            Some("sessions") => TraitKind::Sessions {
                window_days: window(&join(&path, "window_days"), def.get("window_days"))?,
            },
            _ => {
                return Err(err(
                    &join(&path, "builtin"),
                    "expected \"days_since_first_seen\" or \"sessions\"",
                ))
            }
        };
        return Ok(TraitDef {
            name: name.to_string(),
            kind,
        });
    }
    check_keys(
        &path,
        obj,
        &["event", "aggregate", "property", "window_days"],
    )?;
    let event = match def.get("event") {
        Some(Value::String(e)) if !e.is_empty() => e.clone(),
        _ => {
            return Err(err(
                &join(&path, "event"),
                "expected an event name (or use \"builtin\")",
            ))
        }
    };
    let aggregate = def
        .get("aggregate")
        .and_then(Value::as_str)
        .and_then(Aggregate::parse)
        .ok_or_else(|| {
            err(
                &join(&path, "aggregate"),
                "expected one of count, sum, avg, min, max, distinct, top_share, top_value, last",
            )
        })?;
    let property = match def.get("property") {
        None => None,
        Some(Value::String(p)) if !p.is_empty() && p.split('.').all(|part| !part.is_empty()) => {
            Some(p.split('.').map(str::to_string).collect())
        }
        Some(_) => {
            return Err(err(
                &join(&path, "property"),
                "expected a property path such as \"products.price\"",
            ))
        }
    };
    if property.is_none() && aggregate != Aggregate::Count {
        return Err(err(&join(&path, "property"), "required for this aggregate"));
    }
    let window_days = window(&join(&path, "window_days"), def.get("window_days"))?
        .ok_or_else(|| err(&join(&path, "window_days"), "required: the window in days"))?;
    Ok(TraitDef {
        name: name.to_string(),
        kind: TraitKind::Event {
            event,
            aggregate,
            property,
            window_days,
        },
    })
}

fn parse_segment(path: &str, s: &Value, traits: &[TraitDef]) -> Result<SegmentDef, Error> {
    let obj = s
        .as_object()
        .ok_or_else(|| err(path, "expected an object"))?;
    check_keys(
        path,
        obj,
        &["id", "name", "priority", "condition", "holdout"],
    )?;
    let id = match s.get("id") {
        Some(Value::String(id)) if is_id(id) => id.clone(),
        _ => {
            return Err(err(
                &join(path, "id"),
                "expected an id of letters, digits, '-' or '_' (at most 64)",
            ))
        }
    };
    let name = match s.get("name") {
        None => id.clone(),
        Some(Value::String(n)) => n.clone(),
        Some(_) => return Err(err(&join(path, "name"), "expected a string")),
    };
    let priority = match s.get("priority") {
        None => 0.0,
        Some(Value::Number(p)) => *p,
        Some(_) => return Err(err(&join(path, "priority"), "expected a number")),
    };
    let holdout = match s.get("holdout") {
        None => 0.0,
        Some(Value::Number(h)) if (0.0..=1.0).contains(h) => *h,
        Some(_) => return Err(err(&join(path, "holdout"), "expected a share from 0 to 1")),
    };
    let condition = s
        .get("condition")
        .ok_or_else(|| err(&join(path, "condition"), "required"))?;
    check_condition(&join(path, "condition"), condition, traits)?;
    Ok(SegmentDef {
        id,
        name,
        priority,
        condition: condition.clone(),
        holdout,
    })
}

/// What is known of the attribute a condition value applies to.
#[derive(Clone, Copy, PartialEq)]
enum Expect {
    /// A computed trait that is always a number.
    Number,
    /// Anything (user traits, context, arrays' elements).
    Any,
}

fn attribute_type(path: &str, traits: &[TraitDef]) -> Expect {
    let numeric = traits.iter().any(|t| {
        t.name == path
            && match &t.kind {
                TraitKind::Event { aggregate, .. } => aggregate.is_numeric(),
                TraitKind::DaysSinceFirstSeen | TraitKind::Sessions { .. } => true,
            }
    });
    if numeric {
        Expect::Number
    } else {
        Expect::Any
    }
}

/// Checks a condition (object of paths and logical operators).
fn check_condition(path: &str, cond: &Value, traits: &[TraitDef]) -> Result<(), Error> {
    let members = cond
        .as_object()
        .ok_or_else(|| err(path, "expected a condition object"))?;
    for (key, v) in members {
        let here = join(path, key);
        match key.as_str() {
            "$or" | "$and" | "$nor" => {
                let list = v
                    .as_array()
                    .ok_or_else(|| err(&here, "expected an array of conditions"))?;
                for (i, c) in list.iter().enumerate() {
                    check_condition(&format!("{here}[{i}]"), c, traits)?;
                }
            }
            "$not" => check_condition(&here, v, traits)?,
            "$savedGroup" => {
                if v.get("id").and_then(Value::as_str).is_none() {
                    return Err(err(&here, "expected {\"id\": \"<saved group id>\"}"));
                }
            }
            k if k.starts_with('$') => {
                return Err(err(&here, "unknown operator at condition level"))
            }
            attr => check_value(&here, v, attribute_type(attr, traits))?,
        }
    }
    Ok(())
}

const TYPES: [&str; 7] = [
    "string",
    "number",
    "boolean",
    "array",
    "object",
    "null",
    "undefined",
];

/// Checks the value a path is compared with: a literal or operators.
fn check_value(path: &str, v: &Value, expect: Expect) -> Result<(), Error> {
    let Value::Object(members) = v else {
        if expect == Expect::Number && !matches!(v, Value::Number(_)) {
            return Err(err(path, "expected a number (this trait is numeric)"));
        }
        return Ok(());
    };
    if !members.iter().all(|(k, _)| k.starts_with('$')) {
        return Ok(()); // an object literal compared by value
    }
    for (op, arg) in members {
        let here = join(path, op);
        let number_or_string = || match arg {
            Value::Number(_) => Ok(()),
            Value::String(_) if expect == Expect::Any => Ok(()),
            _ if expect == Expect::Number => Err(err(&here, "expected a number")),
            _ => Err(err(&here, "expected a number or a string")),
        };
        match op.as_str() {
            "$eq" | "$ne" => {
                if expect == Expect::Number && !matches!(arg, Value::Number(_)) {
                    return Err(err(&here, "expected a number"));
                }
            }
            "$gt" | "$gte" | "$lt" | "$lte" => number_or_string()?,
            "$veq" | "$vne" | "$vgt" | "$vgte" | "$vlt" | "$vlte" | "$regex" | "$regexi" => {
                if arg.as_str().is_none() {
                    return Err(err(&here, "expected a string"));
                }
            }
            "$in" | "$nin" | "$ini" | "$nini" | "$all" | "$alli" => {
                if arg.as_array().is_none() {
                    return Err(err(&here, "expected an array"));
                }
            }
            "$exists" => {
                if !matches!(arg, Value::Bool(_)) {
                    return Err(err(&here, "expected true or false"));
                }
            }
            "$type" => {
                if !arg.as_str().is_some_and(|t| TYPES.contains(&t)) {
                    return Err(err(&here, format!("expected one of {}", TYPES.join(", "))));
                }
            }
            "$inGroup" | "$notInGroup" => {
                if arg.as_str().is_none() {
                    return Err(err(&here, "expected a saved group id"));
                }
            }
            "$size" => check_value(&here, arg, Expect::Number)?,
            "$not" => check_value(&here, arg, expect)?,
            "$elemMatch" => {
                if arg.as_object().is_none() {
                    return Err(err(&here, "expected an object"));
                }
                let operators = arg
                    .as_object()
                    .unwrap_or_default()
                    .iter()
                    .all(|(k, _)| k.starts_with('$'))
                    && !arg.as_object().unwrap_or_default().iter().any(|(k, _)| {
                        matches!(k.as_str(), "$or" | "$and" | "$nor" | "$savedGroup")
                    });
                if operators {
                    check_value(&here, arg, Expect::Any)?;
                } else {
                    check_condition(&here, arg, &[])?;
                }
            }
            _ => return Err(err(&here, "unknown operator")),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    pub const SEED: &str = r#"{
      "version": "2026-11-22.1",
      "traits": {
        "purchases_30d":  {"event": "Order Completed", "aggregate": "count", "window_days": 30},
        "avg_price_30d":  {"event": "Order Completed", "aggregate": "avg", "property": "products.price", "window_days": 30},
        "top_category_share": {"event": "Order Completed", "aggregate": "top_share", "property": "products.category", "window_days": 90},
        "days_since_first_seen": {"builtin": "days_since_first_seen"}
      },
      "segments": [
        {"id": "frequent-buyer", "name": "Frequent Buyers", "priority": 40,
         "condition": {"purchases_30d": {"$gt": 3}}, "holdout": 0.1},
        {"id": "bargain-hunter", "name": "Bargain Hunters", "priority": 30,
         "condition": {"avg_price_30d": {"$lt": 20}}},
        {"id": "new-user", "name": "New Users", "priority": 10,
         "condition": {"days_since_first_seen": {"$lte": 7}}},
        {"id": "category-enthusiast", "name": "Category Enthusiasts", "priority": 20,
         "condition": {"top_category_share": {"$gt": 0.5}}}
      ]
    }"#;

    #[test]
    fn parses_the_design_document() {
        let r = Rules::parse(SEED).unwrap();
        assert_eq!(r.version, "2026-11-22.1");
        assert_eq!(r.traits.len(), 4);
        let order: Vec<&str> = r.segments.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(
            order,
            [
                "frequent-buyer",
                "bargain-hunter",
                "category-enthusiast",
                "new-user"
            ]
        );
        assert_eq!(r.segment("frequent-buyer").unwrap().holdout, 0.1);
        assert_eq!(r.longest_window(), 90);
        match &r.traits[1].kind {
            TraitKind::Event {
                property,
                aggregate,
                ..
            } => {
                assert_eq!(
                    property.as_deref(),
                    Some(&["products".to_string(), "price".to_string()][..])
                );
                assert_eq!(*aggregate, Aggregate::Avg);
            }
            other => panic!("{other:?}"),
        }
    }

    fn error_of(doc: &str) -> String {
        Rules::parse(doc).unwrap_err().to_string()
    }

    fn with_segment(condition: &str) -> String {
        SEED.replace(r#"{"purchases_30d": {"$gt": 3}}"#, condition)
    }

    #[test]
    fn errors_name_the_path() {
        let doc = SEED.replace(
            r#""condition": {"days_since_first_seen": {"$lte": 7}}"#,
            r#""condition": {"purchases_30d": {"$gt": "3"}}"#,
        );
        assert_eq!(
            error_of(&doc),
            "segments[2].condition.purchases_30d.$gt: expected a number"
        );
        assert_eq!(
            error_of(&with_segment(r#"{"purchases_30d": {"$gtt": 3}}"#)),
            "segments[0].condition.purchases_30d.$gtt: unknown operator"
        );
        assert_eq!(
            error_of(&with_segment(r#"{"$or": [{"plan": "pro"}, 5]}"#)),
            "segments[0].condition.$or[1]: expected a condition object"
        );
        assert_eq!(
            error_of(&with_segment(r#"{"purchases_30d": "3"}"#)),
            "segments[0].condition.purchases_30d: expected a number (this trait is numeric)"
        );
        assert!(
            error_of(&SEED.replace("\"window_days\": 30}", "\"window_days\": 0}"))
                .starts_with("traits.purchases_30d.window_days:")
        );
        assert!(
            error_of(&SEED.replace("\"aggregate\": \"avg\"", "\"aggregate\": \"mean\""))
                .starts_with("traits.avg_price_30d.aggregate:")
        );
        assert!(
            error_of(&SEED.replace("\"holdout\": 0.1", "\"holdout\": 2"))
                .starts_with("segments[0].holdout:")
        );
        assert!(
            error_of(&SEED.replace("\"bargain-hunter\"", "\"frequent-buyer\""))
                .starts_with("segments[1].id: duplicate")
        );
        assert!(error_of(&SEED.replace("\"version\"", "\"versoin\""))
            .starts_with("versoin: unknown field"));
        assert_eq!(error_of("[]"), "rules document: expected a JSON object");
        assert!(error_of("{").starts_with("rules document: not valid JSON"));
        assert!(error_of(r#"{"version":"1"}"#).starts_with("segments: expected an array"));
    }

    #[test]
    fn user_traits_and_context_accept_any_comparison() {
        let r = Rules::parse(&with_segment(
            r#"{"plan": {"$in": ["pro"]}, "context.path": {"$regex": "^/shoes"}, "age": {"$gt": "30"}, "items": {"$elemMatch": {"$or": [{"a": 1}]}}}"#,
        ));
        assert!(r.is_ok(), "{r:?}");
    }
}
