//! GrowthBook's condition language (MongoDB-style), evaluated over one
//! attribute object, as GrowthBook's SDKs evaluate it (spec 0.12: see the
//! cross-SDK cases in `shared/conformance`).
//!
//! Laid out like GrowthBook's `mongrule.ts`: a dispatcher over the
//! top-level keys, one over operators, and each operator a few lines.
//!
//! Strict typing (spec 0.12): values compare only with values of the same
//! JSON type. `5` never equals `"5"`, `$gt` orders two numbers or two
//! strings (never booleans, never `null`), and version and regex operators
//! take string attributes only. An operator this SDK does not know fails
//! closed, like an unresolvable saved group.
//!
//! Saved groups: a `$savedGroup` reference, `$inGroup` or `$notInGroup`
//! that cannot be resolved (unknown group type, malformed entry, a cycle)
//! *fails closed*: the whole condition is false, even under `$not`, so a
//! group this SDK cannot read never lets everyone through.

use crate::json::Value;
use crate::version::padded_version;
use std::cmp::Ordering;

/// What conditions need from the platform, with JavaScript semantics:
/// regular expressions and case folding. The browser build passes the
/// browser's own `RegExp` and `toLowerCase` (so the wasm carries no regex
/// engine and no Unicode tables); natively [`Native`] uses `regress` and
/// Rust's `to_lowercase`, which agree with JavaScript on the cases.
pub trait Host {
    /// Whether `pattern` (case-insensitive when asked) matches somewhere in
    /// `text`. `None` when the pattern is not a valid regular expression.
    fn regex_test(&self, pattern: &str, case_insensitive: bool, text: &str) -> Option<bool>;
    /// `text.toLowerCase()`
    fn lowercase(&self, text: &str) -> String;
}

/// The native [`Host`]: JavaScript-compatible regular expressions via
/// `regress`, compiled once each.
#[cfg(not(target_arch = "wasm32"))]
#[derive(Default)]
pub struct Native {
    cache: std::cell::RefCell<std::collections::HashMap<(String, bool), Option<regress::Regex>>>,
}

#[cfg(not(target_arch = "wasm32"))]
impl Host for Native {
    fn regex_test(&self, pattern: &str, case_insensitive: bool, text: &str) -> Option<bool> {
        let mut cache = self.cache.borrow_mut();
        let key = (pattern.to_string(), case_insensitive);
        let regex = cache.entry(key).or_insert_with(|| {
            let flags = if case_insensitive { "i" } else { "" };
            regress::Regex::with_flags(pattern, flags).ok()
        });
        regex.as_ref().map(|r| r.find(text).is_some())
    }

    fn lowercase(&self, text: &str) -> String {
        text.to_lowercase()
    }
}

/// The result of evaluating part of a condition: three-valued (Kleene)
/// logic, where `Unknown` stands for what this SDK cannot evaluate (an
/// unknown operator, an unresolvable saved group). `Unknown` survives
/// `$not`; an `$or` with a passing branch still passes and an `$and` with
/// a failing one still fails; an `Unknown` at the top is false.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tri {
    False,
    True,
    Unknown,
}

impl Tri {
    fn of(b: bool) -> Tri {
        if b {
            Tri::True
        } else {
            Tri::False
        }
    }

    fn not(self) -> Tri {
        match self {
            Tri::True => Tri::False,
            Tri::False => Tri::True,
            Tri::Unknown => Tri::Unknown,
        }
    }
}

/// Kleene AND over `items`, stopping at the first `False`.
fn all_of<T>(items: impl IntoIterator<Item = T>, mut f: impl FnMut(T) -> Tri) -> Tri {
    let mut result = Tri::True;
    for item in items {
        match f(item) {
            Tri::False => return Tri::False,
            Tri::Unknown => result = Tri::Unknown,
            Tri::True => {}
        }
    }
    result
}

/// Kleene OR over `items`, stopping at the first `True`.
fn any_of<T>(items: impl IntoIterator<Item = T>, mut f: impl FnMut(T) -> Tri) -> Tri {
    let mut result = Tri::False;
    for item in items {
        match f(item) {
            Tri::True => return Tri::True,
            Tri::Unknown => result = Tri::Unknown,
            Tri::False => {}
        }
    }
    result
}

/// Evaluates `condition` against `attributes` with `saved_groups` (an
/// object of group id to group, or `Null`). What cannot be evaluated makes
/// the result false, unless the rest of the condition decides it.
pub fn eval_condition(
    attributes: &Value,
    condition: &Value,
    saved_groups: &Value,
    host: &dyn Host,
) -> bool {
    let ev = Evaluator {
        host,
        groups: saved_groups,
    };
    ev.condition(attributes, condition, &mut Vec::new()) == Tri::True
}

struct Evaluator<'a> {
    host: &'a dyn Host,
    groups: &'a Value,
}

/// Keys that combine conditions: at the top of a condition, never on a
/// value.
fn is_logical(key: &str) -> bool {
    matches!(key, "$or" | "$and" | "$nor" | "$savedGroup")
}

impl Evaluator<'_> {
    /// Every `(key, value)` of `cond` (as JavaScript's `Object.entries`
    /// sees it, so an array's keys are its indexes) must hold.
    fn condition(&self, obj: &Value, cond: &Value, visited: &mut Vec<String>) -> Tri {
        match cond {
            Value::Object(members) => all_of(members, |(key, v)| self.member(obj, key, v, visited)),
            Value::Array(items) => all_of(items.iter().enumerate(), |(i, v)| {
                self.member(obj, &i.to_string(), v, visited)
            }),
            _ => Tri::True,
        }
    }

    fn member(&self, obj: &Value, key: &str, v: &Value, visited: &mut Vec<String>) -> Tri {
        match key {
            "$or" => self.or(obj, v, visited),
            "$nor" => self.or(obj, v, visited).not(),
            "$and" => match v {
                Value::Array(list) => all_of(list, |c| self.condition(obj, c, visited)),
                _ => Tri::True,
            },
            "$not" => self.condition(obj, v, visited).not(),
            "$savedGroup" => self.saved_group(obj, v, visited),
            path => self.value(v, get_path(obj, path), false, visited),
        }
    }

    fn or(&self, obj: &Value, conditions: &Value, visited: &mut Vec<String>) -> Tri {
        match conditions {
            Value::Array(list) if !list.is_empty() => {
                any_of(list, |c| self.condition(obj, c, visited))
            }
            _ => Tri::True,
        }
    }

    /// `{"$savedGroup": {"id": .., "attributeKey"?: ..}}`
    fn saved_group(&self, obj: &Value, reference: &Value, visited: &mut Vec<String>) -> Tri {
        let Some(id) = reference.get("id").and_then(Value::as_str) else {
            return Tri::Unknown;
        };
        let key_override = match reference.get("attributeKey") {
            None => None,
            Some(Value::String(k)) => Some(k.as_str()),
            Some(_) => return Tri::Unknown,
        };
        let Some(entry) = self.groups.get(id) else {
            return Tri::Unknown;
        };
        if visited.iter().any(|v| v == id) {
            return Tri::Unknown;
        }
        match entry.get("type").and_then(Value::as_str) {
            Some("list") => {
                let key =
                    key_override.or_else(|| entry.get("attributeKey").and_then(Value::as_str));
                match (key, entry.get("values").and_then(Value::as_array)) {
                    (Some(key), Some(values)) => Tri::of(is_in(get_path(obj, key), values, None)),
                    _ => Tri::Unknown,
                }
            }
            Some("condition") => match entry.get("condition") {
                Some(condition @ Value::Object(_)) => {
                    visited.push(id.to_string());
                    let result = self.condition(obj, condition, visited);
                    visited.pop();
                    result
                }
                _ => Tri::Unknown,
            },
            _ => Tri::Unknown,
        }
    }

    /// The values of a group for `$inGroup` / `$notInGroup`: an unknown id
    /// is an empty list (as it always was); a legacy bare array or a typed
    /// list gives its values; anything else cannot be used.
    fn group_values(&self, id: &Value) -> Option<&[Value]> {
        let entry = match id {
            Value::String(id) => self.groups.get(id),
            _ => None,
        };
        match entry {
            None => Some(&[]),
            Some(Value::Array(values)) => Some(values),
            Some(e) if e.get("type").and_then(Value::as_str) == Some("list") => {
                e.get("values").and_then(Value::as_array)
            }
            Some(_) => None,
        }
    }

    fn value(
        &self,
        cond: &Value,
        value: Option<&Value>,
        insensitive: bool,
        visited: &mut Vec<String>,
    ) -> Tri {
        let null = Value::Null;
        let v = value.unwrap_or(&null);
        match (cond, v) {
            (Value::String(c), Value::String(s)) if insensitive => {
                Tri::of(self.host.lowercase(s) == self.host.lowercase(c))
            }
            (Value::String(_) | Value::Number(_) | Value::Bool(_) | Value::Null, _) => {
                Tri::of(cond == v)
            }
            (Value::Array(_), _) => Tri::of(json_text(v) == json_text(cond)),
            (Value::Object(members), _) => {
                if !members.iter().all(|(k, _)| k.starts_with('$')) {
                    return Tri::of(json_text(v) == json_text(cond));
                }
                // An operator object; `{}` has no operators and passes.
                all_of(members, |(op, expected)| {
                    self.operator(op, v, expected, visited)
                })
            }
        }
    }

    fn operator(
        &self,
        op: &str,
        actual: &Value,
        expected: &Value,
        visited: &mut Vec<String>,
    ) -> Tri {
        let within = |list: &Value, insensitive: bool| match list {
            Value::Array(e) => is_in(Some(actual), e, insensitive.then_some(self.host)),
            _ => false,
        };
        let version = || version_order(actual, expected);
        let group = |negate: bool| match self.group_values(expected) {
            Some(values) => Tri::of(is_in(Some(actual), values, None) != negate),
            None => Tri::Unknown,
        };
        Tri::of(match op {
            "$veq" => version() == Some(Ordering::Equal),
            "$vne" => version() != Some(Ordering::Equal),
            "$vgt" => version() == Some(Ordering::Greater),
            "$vgte" => matches!(version(), Some(Ordering::Greater | Ordering::Equal)),
            "$vlt" => version() == Some(Ordering::Less),
            "$vlte" => matches!(version(), Some(Ordering::Less | Ordering::Equal)),
            "$eq" => strict_equal(actual, expected),
            "$ne" => !strict_equal(actual, expected),
            "$lt" => compare(actual, expected) == Some(Ordering::Less),
            "$lte" => matches!(
                compare(actual, expected),
                Some(Ordering::Less | Ordering::Equal)
            ),
            "$gt" => compare(actual, expected) == Some(Ordering::Greater),
            "$gte" => matches!(
                compare(actual, expected),
                Some(Ordering::Greater | Ordering::Equal)
            ),
            "$exists" => (*actual != Value::Null) == truthy(expected),
            "$in" => within(expected, false),
            "$ini" => within(expected, true),
            "$nin" => matches!(expected, Value::Array(_)) && !within(expected, false),
            "$nini" => matches!(expected, Value::Array(_)) && !within(expected, true),
            "$inGroup" => return group(false),
            "$notInGroup" => return group(true),
            "$not" => return self.value(expected, Some(actual), false, visited).not(),
            "$size" => match actual {
                Value::Array(items) => {
                    return self.value(
                        expected,
                        Some(&Value::Number(items.len() as f64)),
                        false,
                        visited,
                    )
                }
                _ => false,
            },
            "$elemMatch" => return self.elem_match(actual, expected, visited),
            "$all" => return self.all(actual, expected, false, visited),
            "$alli" => return self.all(actual, expected, true, visited),
            "$regex" | "$regexi" => match (expected, actual) {
                (Value::String(pattern), Value::String(text)) => self
                    .host
                    .regex_test(pattern, op == "$regexi", text)
                    .unwrap_or(false),
                _ => false,
            },
            "$type" => expected.as_str() == Some(type_name(actual)),
            // Known keys in the wrong place never match, as always.
            key if is_logical(key) => false,
            _ => return Tri::Unknown,
        })
    }

    fn elem_match(&self, actual: &Value, expected: &Value, visited: &mut Vec<String>) -> Tri {
        let Value::Array(items) = actual else {
            return Tri::False;
        };
        // Value operators test each element; a condition (field names, or
        // logical keys such as $or and $savedGroup) tests each element's
        // fields.
        let on_values = matches!(expected, Value::Object(m)
            if !m.is_empty() && m.iter().all(|(k, _)| k.starts_with('$') && !is_logical(k)));
        any_of(items.iter().filter(|i| **i != Value::Null), |item| {
            if on_values {
                self.value(expected, Some(item), false, visited)
            } else {
                self.condition(item, expected, visited)
            }
        })
    }

    fn all(
        &self,
        actual: &Value,
        expected: &Value,
        insensitive: bool,
        visited: &mut Vec<String>,
    ) -> Tri {
        let (Value::Array(wanted), Value::Array(have)) = (expected, actual) else {
            return Tri::False;
        };
        all_of(wanted, |w| {
            any_of(have, |h| self.value(w, Some(h), insensitive, visited))
        })
    }
}

/// Orders two version strings (or two numbers, written out) as GrowthBook
/// does; anything else is not a version.
fn version_order(a: &Value, b: &Value) -> Option<Ordering> {
    let text = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        _ => None,
    };
    let (x, y) = match (a, b) {
        (Value::Number(_), Value::Number(_)) => (a.to_json(), b.to_json()),
        _ => (text(a)?, text(b)?),
    };
    Some(padded_version(&x).cmp(&padded_version(&y)))
}

/// GrowthBook's `getPath`: the value at a dot-separated path; arrays are
/// indexed by position (and have a `length`). `None` when absent.
pub fn get_path<'a>(obj: &'a Value, path: &str) -> Option<&'a Value> {
    let mut current = obj;
    for part in path.split('.') {
        current = match current {
            Value::Object(_) => current.get(part)?,
            Value::Array(items) => match part.parse::<usize>() {
                // Only canonical indexes: JavaScript has no property "01".
                Ok(i) if i.to_string() == part => items.get(i)?,
                _ => return None,
            },
            _ => return None,
        };
    }
    Some(current)
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Array(_) => "array",
        Value::String(_) => "string",
        Value::Number(_) => "number",
        Value::Bool(_) => "boolean",
        Value::Object(_) => "object",
    }
}

/// `actual` (or any of its elements, if an array) is one of `expected`,
/// compared as JavaScript's `includes` does (objects never equal);
/// `fold` lower-cases strings for the case-insensitive operators.
fn is_in(actual: Option<&Value>, expected: &[Value], fold: Option<&dyn Host>) -> bool {
    let fold = |v: &Value| match (v, fold) {
        (Value::String(s), Some(host)) => Value::String(host.lowercase(s)),
        (other, _) => other.clone(),
    };
    let contains = |a: &Value| {
        let a = fold(a);
        expected.iter().any(|e| strict_equal(&a, &fold(e)))
    };
    match actual {
        Some(Value::Array(items)) => items.iter().any(contains),
        Some(v) => contains(v),
        None => contains(&Value::Null),
    }
}

/// JavaScript's `===` on JSON values: arrays and objects are distinct
/// references, so never equal.
fn strict_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Array(_) | Value::Object(_), _) | (_, Value::Array(_) | Value::Object(_)) => false,
        _ => a == b,
    }
}

/// JavaScript truthiness.
fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => *n != 0.0 && !n.is_nan(),
        Value::String(s) => !s.is_empty(),
        Value::Array(_) | Value::Object(_) => true,
    }
}

/// `JSON.stringify` with JavaScript's key order (integer-like keys first,
/// ascending), for comparing arrays and objects by value.
fn json_text(v: &Value) -> String {
    fn normalise(v: &Value) -> Value {
        match v {
            Value::Array(items) => Value::Array(items.iter().map(normalise).collect()),
            Value::Object(members) => {
                let index = |k: &str| -> Option<u32> {
                    (!k.is_empty()
                        && (k == "0" || !k.starts_with('0'))
                        && k.bytes().all(|b| b.is_ascii_digit()))
                    .then(|| k.parse().ok())
                    .flatten()
                };
                let mut ints: Vec<&(String, Value)> =
                    members.iter().filter(|(k, _)| index(k).is_some()).collect();
                crate::sort::sort_by_key(&mut ints, |(k, _)| index(k));
                let rest = members.iter().filter(|(k, _)| index(k).is_none());
                Value::Object(
                    ints.into_iter()
                        .chain(rest)
                        .map(|(k, v)| (k.clone(), normalise(v)))
                        .collect(),
                )
            }
            other => other.clone(),
        }
    }
    normalise(v).to_json()
}

/// Orders two numbers or two strings (strings by UTF-16 code units, as
/// JavaScript does); anything else, NaN included, is unordered.
fn compare(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.partial_cmp(y),
        (Value::String(x), Value::String(y)) => Some(x.encode_utf16().cmp(y.encode_utf16())),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_go_through_objects_and_arrays() {
        let v = Value::parse(r#"{"a":{"b":[10,{"c":1}]}}"#).unwrap();
        assert_eq!(get_path(&v, "a.b.0"), Some(&Value::Number(10.0)));
        assert_eq!(get_path(&v, "a.b.1.c"), Some(&Value::Number(1.0)));
        assert_eq!(get_path(&v, "a.x"), None);
        assert_eq!(get_path(&v, "a.b.01"), None);
    }
}
