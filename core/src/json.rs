//! A small JSON value with a strict parser and a writer.
//!
//! Why not `serde_json`: the same code ships to every shopper's phone as
//! wasm, and a hand-written tree of a few hundred lines costs a fraction of
//! serde's monomorphised code. Objects keep their keys in insertion order,
//! as JavaScript objects do, because GrowthBook conditions compare values by
//! their JSON text.

use std::cell::Cell;
use std::fmt::Write as _;

/// How numbers become text and text becomes numbers. Natively these are
/// Rust's own conversions; the browser build installs JavaScript's
/// (`Number.prototype.toString`, `parseFloat`) with [`set_number_codec`],
/// so the wasm carries no float formatting or parsing code, and numbers
/// print exactly as `JSON.stringify` prints them.
#[derive(Clone, Copy)]
pub struct NumberCodec {
    /// Appends a finite, non-integral number's shortest round-trip text.
    pub format: fn(f64, &mut String),
    /// Reads a JSON number literal (already checked against the grammar).
    pub parse: fn(&str) -> Option<f64>,
}

thread_local! {
    static CODEC: Cell<Option<NumberCodec>> = const { Cell::new(None) };
}

/// Installs the number conversions for this thread.
pub fn set_number_codec(codec: NumberCodec) {
    CODEC.with(|c| c.set(Some(codec)));
}

fn codec() -> Option<NumberCodec> {
    CODEC.with(Cell::get)
}

#[cfg(not(target_arch = "wasm32"))]
fn default_format(n: f64, out: &mut String) {
    let _ = write!(out, "{n}");
}

#[cfg(not(target_arch = "wasm32"))]
fn default_parse(text: &str) -> Option<f64> {
    text.parse().ok()
}

// The wasm build always installs JavaScript's conversions; without them
// it reads and writes integers only (rather than link float code).
#[cfg(target_arch = "wasm32")]
fn default_format(n: f64, out: &mut String) {
    let _ = write!(out, "{}", n as i64);
}

#[cfg(target_arch = "wasm32")]
fn default_parse(text: &str) -> Option<f64> {
    text.parse::<i64>().ok().map(|i| i as f64)
}

/// Parses a JSON number literal: most (prices, counts) exactly here,
/// the rest with the installed codec.
pub fn parse_number(text: &str) -> Option<f64> {
    if let Some(n) = parse_simple(text) {
        return Some(n);
    }
    match codec() {
        Some(c) => (c.parse)(text),
        None => default_parse(text),
    }
}

/// Clinger's fast path: a JSON number literal whose significant digits
/// fit 2^53 and whose decimal exponent is at most 22 either way is one
/// exact integer times or divided by one exact power of ten, so a single
/// IEEE operation rounds it correctly. `None` for anything else.
fn parse_simple(text: &str) -> Option<f64> {
    let (negative, body) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (number, exponent) = match body.find(['e', 'E']) {
        Some(at) => (body.get(..at)?, body.get(at + 1..)?.parse::<i32>().ok()?),
        None => (body, 0),
    };
    let mut mantissa: u64 = 0;
    let mut scale: i32 = exponent;
    let mut after_point = false;
    for b in number.bytes() {
        match b {
            b'.' => after_point = true,
            b'0'..=b'9' => {
                mantissa = mantissa.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
                if after_point {
                    scale = scale.checked_sub(1)?;
                }
            }
            _ => return None,
        }
    }
    if mantissa > 1 << 53 || !(-22..=22).contains(&scale) {
        return None;
    }
    let mut power = 1.0f64;
    for _ in 0..scale.unsigned_abs() {
        power *= 10.0;
    }
    let magnitude = if scale < 0 {
        mantissa as f64 / power
    } else {
        mantissa as f64 * power
    };
    Some(if negative { -magnitude } else { magnitude })
}

/// Objects nest at most this deep: deeper input is an error, not a stack
/// overflow.
pub const MAX_DEPTH: usize = 64;

/// A JSON value. `Object` keeps keys in insertion order without duplicates.
#[derive(Clone, Debug, PartialEq, Default)]
pub enum Value {
    /// `null`
    #[default]
    Null,
    /// `true` or `false`
    Bool(bool),
    /// Every number is an IEEE double, as in JavaScript.
    Number(f64),
    /// A string.
    String(String),
    /// An array.
    Array(Vec<Value>),
    /// An object; key order is insertion order.
    Object(Vec<(String, Value)>),
}

/// Where and why a JSON text failed to parse.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    /// Byte offset of the problem in the input.
    pub offset: usize,
    /// What was wrong, in a few words.
    pub reason: &'static str,
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} at byte {}", self.reason, self.offset)
    }
}

impl Value {
    /// Parses a whole JSON text (surrounding whitespace allowed).
    pub fn parse(text: &str) -> Result<Value, ParseError> {
        Parser::new(text, false).document()
    }

    /// The member `key` of an object, if this is an object that has it.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Object(members) => members.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The member `key` of an object, to change, if this is an object
    /// that has it.
    pub fn get_mut(&mut self, key: &str) -> Option<&mut Value> {
        match self {
            Value::Object(members) => members.iter_mut().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The string inside, if this is a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The number inside, if this is a number.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Number(n) => Some(*n),
            _ => None,
        }
    }

    /// The elements, if this is an array.
    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Value::Array(items) => Some(items),
            _ => None,
        }
    }

    /// The strings of an array (its other elements left out), if this is
    /// an array: a list of ids, such as segments.
    pub fn strings(&self) -> Option<Vec<String>> {
        let items = self.as_array()?;
        Some(
            items
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
        )
    }

    /// The members, if this is an object.
    pub fn as_object(&self) -> Option<&[(String, Value)]> {
        match self {
            Value::Object(members) => Some(members),
            _ => None,
        }
    }

    /// Sets `key` in an object, replacing an existing member in place.
    /// Does nothing on a value that is not an object.
    pub fn insert(&mut self, key: &str, value: Value) {
        if let Value::Object(members) = self {
            match members.iter_mut().find(|(k, _)| k == key) {
                Some(slot) => slot.1 = value,
                None => members.push((key.to_string(), value)),
            }
        }
    }

    /// Removes `key` from an object (nothing otherwise).
    pub fn remove(&mut self, key: &str) {
        if let Value::Object(members) = self {
            members.retain(|(k, _)| k != key);
        }
    }

    /// The JSON text of this value, compact, as `JSON.stringify` writes it.
    pub fn to_json(&self) -> String {
        let mut out = String::new();
        self.write_to(&mut out);
        out
    }

    /// Appends the JSON text of this value to `out`.
    pub fn write_to(&self, out: &mut String) {
        match self {
            Value::Null => out.push_str("null"),
            Value::Bool(true) => out.push_str("true"),
            Value::Bool(false) => out.push_str("false"),
            Value::Number(n) => write_number(out, *n),
            Value::String(s) => write_string(out, s),
            Value::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    item.write_to(out);
                }
                out.push(']');
            }
            Value::Object(members) => {
                out.push('{');
                for (i, (k, v)) in members.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write_string(out, k);
                    out.push(':');
                    v.write_to(out);
                }
                out.push('}');
            }
        }
    }
}

/// Appends `items` as a JSON array of strings.
pub fn write_strings(out: &mut String, items: &[String]) {
    out.push('[');
    for (i, s) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_string(out, s);
    }
    out.push(']');
}

/// Appends `s` as a JSON string literal, escaped as `JSON.stringify` does.
pub fn write_string(out: &mut String, s: &str) {
    out.push('"');
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        let escape = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0..=0x1f => "",
            _ => continue,
        };
        out.push_str(s.get(start..i).unwrap_or_default());
        if escape.is_empty() {
            let _ = write!(out, "\\u{:04x}", b);
        } else {
            out.push_str(escape);
        }
        start = i + 1;
    }
    out.push_str(s.get(start..).unwrap_or_default());
    out.push('"');
}

/// Appends a number as JSON. Non-finite numbers become `null`, as in
/// `JSON.stringify`; integers print without a fraction.
pub fn write_number(out: &mut String, n: f64) {
    if !n.is_finite() {
        out.push_str("null");
    } else if n.fract() == 0.0 && n.abs() < 9.007_199_254_740_992e15 {
        // Integer fast path: counts, timestamps and ids.
        let _ = write!(out, "{}", n as i64);
    } else {
        match codec() {
            Some(c) => (c.format)(n, out),
            None => default_format(n, out),
        }
    }
}

/// Checks that `text` is one JSON value without building it: no
/// allocation, for text that is only passed along (event properties).
pub fn validate(text: &str) -> Result<(), ParseError> {
    Parser::new(text, true).document().map(drop)
}

struct Parser<'a> {
    bytes: &'a [u8],
    pos: usize,
    /// Check the grammar only: strings, arrays and objects stay empty.
    discard: bool,
}

impl<'a> Parser<'a> {
    fn new(text: &'a str, discard: bool) -> Self {
        Parser {
            bytes: text.as_bytes(),
            pos: 0,
            discard,
        }
    }

    fn document(&mut self) -> Result<Value, ParseError> {
        self.skip_ws();
        let value = self.value(0)?;
        self.skip_ws();
        if self.pos != self.bytes.len() {
            return Err(self.error("unexpected text after the value"));
        }
        Ok(value)
    }

    fn error(&self, reason: &'static str) -> ParseError {
        ParseError {
            offset: self.pos,
            reason,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.peek() {
            self.pos += 1;
        }
    }

    fn expect_word(&mut self, word: &[u8], value: Value) -> Result<Value, ParseError> {
        if self.bytes.get(self.pos..self.pos + word.len()) == Some(word) {
            self.pos += word.len();
            Ok(value)
        } else {
            Err(self.error("unexpected character"))
        }
    }

    fn value(&mut self, depth: usize) -> Result<Value, ParseError> {
        if depth > MAX_DEPTH {
            return Err(self.error("nested too deeply"));
        }
        match self.peek() {
            None => Err(self.error("unexpected end of input")),
            Some(b'n') => self.expect_word(b"null", Value::Null),
            Some(b't') => self.expect_word(b"true", Value::Bool(true)),
            Some(b'f') => self.expect_word(b"false", Value::Bool(false)),
            Some(b'"') => self.string().map(Value::String),
            Some(b'[') => self.array(depth),
            Some(b'{') => self.object(depth),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(_) => Err(self.error("unexpected character")),
        }
    }

    fn array(&mut self, depth: usize) -> Result<Value, ParseError> {
        self.pos += 1;
        let mut items = Vec::new();
        self.skip_ws();
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(Value::Array(items));
        }
        loop {
            self.skip_ws();
            let item = self.value(depth + 1)?;
            if !self.discard {
                items.push(item);
            }
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    return Ok(Value::Array(items));
                }
                _ => return Err(self.error("expected ',' or ']'")),
            }
        }
    }

    fn object(&mut self, depth: usize) -> Result<Value, ParseError> {
        self.pos += 1;
        let mut members: Vec<(String, Value)> = Vec::new();
        self.skip_ws();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(Value::Object(members));
        }
        loop {
            self.skip_ws();
            if self.peek() != Some(b'"') {
                return Err(self.error("expected a string key"));
            }
            let key = self.string()?;
            self.skip_ws();
            if self.peek() != Some(b':') {
                return Err(self.error("expected ':'"));
            }
            self.pos += 1;
            self.skip_ws();
            let value = self.value(depth + 1)?;
            if !self.discard {
                members.push((key, value));
            }
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(Value::Object(without_repeats(members)));
                }
                _ => return Err(self.error("expected ',' or '}'")),
            }
        }
    }

    fn number(&mut self) -> Result<Value, ParseError> {
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => self.digits(),
            _ => return Err(self.error("invalid number")),
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return Err(self.error("invalid number"));
            }
            self.digits();
        }
        let has_exponent = matches!(self.peek(), Some(b'e' | b'E'));
        if has_exponent {
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return Err(self.error("invalid number"));
            }
            self.digits();
        }
        // Without an exponent, up to 300 digits stay below f64::MAX, so
        // the validator need not convert them.
        if self.discard && !has_exponent && self.pos - start <= 300 {
            return Ok(Value::Null);
        }
        let text = std::str::from_utf8(self.bytes.get(start..self.pos).unwrap_or_default())
            .map_err(|_| self.error("invalid number"))?;
        match parse_number(text) {
            // Out of f64's range is an error (as in serde_json), not the
            // infinity JSON.parse gives: JSON cannot write that back.
            Some(n) if !n.is_finite() => Err(self.error("number out of range")),
            Some(n) if !self.discard => Ok(Value::Number(n)),
            Some(_) => Ok(Value::Null),
            None => Err(self.error("invalid number")),
        }
    }

    fn digits(&mut self) {
        while let Some(b'0'..=b'9') = self.peek() {
            self.pos += 1;
        }
    }

    fn hex4(&mut self) -> Result<u32, ParseError> {
        let mut code = 0u32;
        for _ in 0..4 {
            let digit = match self.peek() {
                Some(b @ b'0'..=b'9') => b - b'0',
                Some(b @ b'a'..=b'f') => b - b'a' + 10,
                Some(b @ b'A'..=b'F') => b - b'A' + 10,
                _ => return Err(self.error("invalid \\u escape")),
            };
            code = code * 16 + u32::from(digit);
            self.pos += 1;
        }
        Ok(code)
    }

    fn string(&mut self) -> Result<String, ParseError> {
        self.pos += 1; // opening quote
        let mut out = String::new();
        loop {
            let run_start = self.pos;
            while let Some(b) = self.peek() {
                if b == b'"' || b == b'\\' || b < 0x20 {
                    break;
                }
                self.pos += 1;
            }
            // The input is a &str and we stopped on ASCII bytes, so the run
            // is valid UTF-8.
            if !self.discard {
                out.push_str(
                    std::str::from_utf8(self.bytes.get(run_start..self.pos).unwrap_or_default())
                        .unwrap_or_default(),
                );
            }
            match self.peek() {
                None => return Err(self.error("unterminated string")),
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.pos += 1;
                    let escaped = self.peek();
                    self.pos += 1;
                    match escaped {
                        Some(b'"') => out.push('"'),
                        Some(b'\\') => out.push('\\'),
                        Some(b'/') => out.push('/'),
                        Some(b'b') => out.push('\u{8}'),
                        Some(b'f') => out.push('\u{c}'),
                        Some(b'n') => out.push('\n'),
                        Some(b'r') => out.push('\r'),
                        Some(b't') => out.push('\t'),
                        Some(b'u') => {
                            let first = self.hex4()?;
                            let code = if (0xD800..0xDC00).contains(&first)
                                && self.bytes.get(self.pos..self.pos + 2) == Some(b"\\u")
                            {
                                let save = self.pos;
                                self.pos += 2;
                                let second = self.hex4()?;
                                if (0xDC00..0xE000).contains(&second) {
                                    0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00)
                                } else {
                                    self.pos = save;
                                    first
                                }
                            } else {
                                first
                            };
                            // A lone surrogate cannot live in a Rust string.
                            out.push(char::from_u32(code).unwrap_or('\u{FFFD}'));
                        }
                        _ => {
                            self.pos -= 1;
                            return Err(self.error("invalid escape"));
                        }
                    }
                }
                Some(_) => return Err(self.error("control character in string")),
            }
        }
    }
}

/// Objects up to this many members are first scanned for a repeated key;
/// larger ones, and those with a repeat, are sorted.
const SCANNED_MEMBERS: usize = 16;

#[cfg(test)]
std::thread_local! {
    /// Key comparisons made by [`without_repeats`] on this thread.
    static KEY_COMPARISONS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Sorts `items` by `less`, in place: O(n log n) in the worst case, and a
/// few hundred bytes of wasm where the standard library's sorts cost
/// kilobytes.
fn heap_sort(items: &mut [usize], less: impl Fn(usize, usize) -> bool) {
    let at = |items: &[usize], i: usize| items.get(i).copied().unwrap_or(0);
    let sift_down = |items: &mut [usize], mut root: usize, end: usize| loop {
        let mut child = 2 * root + 1;
        if child >= end {
            break;
        }
        if child + 1 < end && less(at(items, child), at(items, child + 1)) {
            child += 1;
        }
        if !less(at(items, root), at(items, child)) {
            break;
        }
        items.swap(root, child);
        root = child;
    };
    let n = items.len();
    for root in (0..n / 2).rev() {
        sift_down(items, root, n);
    }
    for end in (1..n).rev() {
        items.swap(0, end);
        sift_down(items, 0, end);
    }
}

/// A repeated key keeps its first position and its last value, as
/// JSON.parse does. Small objects are scanned; larger ones are sorted by
/// key (stable, so repeats stay in input order), which keeps a body of
/// many keys at O(n log n) whatever the keys are: a hash table could be
/// fed colliding keys.
fn text(members: &[(String, Value)], i: usize) -> Option<&str> {
    members.get(i).map(|(k, _)| k.as_str())
}

fn without_repeats(mut members: Vec<(String, Value)>) -> Vec<(String, Value)> {
    let n = members.len();
    // The usual object: a few keys, none repeated, nothing to allocate.
    if n <= SCANNED_MEMBERS
        && !(1..n).any(|i| (0..i).any(|j| text(&members, i) == text(&members, j)))
    {
        return members;
    }
    let mut order: Vec<usize> = (0..n).collect();
    // Key, then position: equal keys stay in input order.
    heap_sort(&mut order, |a, b| {
        #[cfg(test)]
        KEY_COMPARISONS.with(|c| c.set(c.get() + 1));
        let (ka, kb) = (text(&members, a), text(&members, b));
        ka < kb || (ka == kb && a < b)
    });
    let mut keep = vec![true; n];
    let mut first = 0;
    for (rank, &i) in order.iter().enumerate() {
        if rank > 0 && text(&members, i) == text(&members, first) {
            // A repeat: the first occurrence takes its value (the keys
            // are equal, so the whole member can be swapped), and its
            // own slot goes.
            members.swap(first, i);
            if let Some(k) = keep.get_mut(i) {
                *k = false;
            }
        } else {
            first = i;
        }
    }
    // Kept members move forward in order; the repeats end up last.
    let mut kept = 0;
    for (i, k) in keep.into_iter().enumerate() {
        if k {
            members.swap(kept, i);
            kept += 1;
        }
    }
    members.truncate(kept);
    members
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_nested_values() {
        let text = r#"{"a":[1,2.5,-3e2,true,false,null],"b":{"c":"d\"e\\f\n\u00e9\ud83d\ude00"}}"#;
        let v = Value::parse(text).unwrap();
        assert_eq!(
            v.to_json(),
            "{\"a\":[1,2.5,-300,true,false,null],\"b\":{\"c\":\"d\\\"e\\\\f\\n\u{e9}\u{1F600}\"}}"
        );
        assert_eq!(Value::parse(&v.to_json()).unwrap(), v);
    }

    #[test]
    fn duplicate_keys_keep_first_position_and_last_value() {
        let v = Value::parse(r#"{"a":1,"b":2,"a":3}"#).unwrap();
        assert_eq!(v.to_json(), r#"{"a":3,"b":2}"#);
        // Past the scanned size, by sorting: the same answer.
        let mut text = String::from("{");
        for i in 0..40 {
            text.push_str(&format!("\"k{}\":{i},", i % 25));
        }
        text.push_str("\"k3\":\"last\"}");
        let v = Value::parse(&text).unwrap();
        let members = v.as_object().unwrap();
        assert_eq!(members.len(), 25);
        let keys: Vec<&str> = members.iter().map(|(k, _)| k.as_str()).collect();
        let expected: Vec<String> = (0..25).map(|i| format!("k{i}")).collect();
        assert_eq!(keys, expected, "first positions");
        assert_eq!(v.get("k3").unwrap().as_str(), Some("last"));
        assert_eq!(v.get("k4").unwrap().as_f64(), Some(29.0), "last values");
        assert_eq!(v.get("k20").unwrap().as_f64(), Some(20.0));
    }

    /// Key comparisons per member stay within a log factor as an object
    /// grows (they grew with the square before: 45,000 keys in a 495 KB
    /// body cost 2.6 s of CPU), whether its keys repeat or not.
    #[test]
    fn repeated_key_checks_grow_as_n_log_n() {
        for repeat in [1, 7] {
            for n in [1_000usize, 10_000, 100_000] {
                let mut text = String::from("{");
                for i in 0..n {
                    text.push_str(&format!("\"key-{}\":1,", i / repeat));
                }
                text.push_str("\"end\":0}");
                KEY_COMPARISONS.with(|c| c.set(0));
                let v = Value::parse(&text).unwrap();
                let comparisons = KEY_COMPARISONS.with(std::cell::Cell::get);
                assert_eq!(v.as_object().unwrap().len(), n.div_ceil(repeat) + 1);
                let bound = 2.0 * n as f64 * (n as f64).log2();
                assert!(
                    (comparisons as f64) < bound,
                    "{n} keys ({repeat} each): {comparisons} comparisons"
                );
            }
        }
    }

    #[test]
    fn rejects_malformed_input_with_an_offset() {
        for bad in [
            "",
            "{",
            "[1,]",
            "{\"a\" 1}",
            "01",
            "1.",
            "-",
            "\"\\x\"",
            "nul",
            "[1] x",
            "\"a\nb\"",
            "{1:2}",
            "1e",
            "\"\\u12\"",
        ] {
            assert!(Value::parse(bad).is_err(), "{bad:?} should fail");
        }
        assert_eq!(Value::parse("[1,]").unwrap_err().offset, 3);
    }

    #[test]
    fn depth_is_bounded() {
        let deep = "[".repeat(MAX_DEPTH + 2) + &"]".repeat(MAX_DEPTH + 2);
        assert_eq!(Value::parse(&deep).unwrap_err().reason, "nested too deeply");
        let ok = "[".repeat(MAX_DEPTH) + &"]".repeat(MAX_DEPTH);
        assert!(Value::parse(&ok).is_ok());
    }

    #[test]
    fn escapes_control_characters_like_json_stringify() {
        let mut out = String::new();
        write_string(&mut out, "a\u{1}b\u{1f}\u{8}\u{c}");
        assert_eq!(out, "\"a\\u0001b\\u001f\\b\\f\"");
    }

    #[test]
    fn the_number_fast_path_rounds_like_a_full_parser() {
        for text in [
            "0",
            "-0",
            "19.99",
            "0.1",
            "0.3",
            "123456789012345",
            "9007199254740992",
            "9007199254740993",
            "1e22",
            "1e23",
            "1.5e-7",
            "-2.5E+3",
            "0.000001",
            "3.14159265358979",
            "12345678901234567890",
            "1e-22",
            "4.35",
            "100.10",
        ] {
            let expected: f64 = text.parse().unwrap();
            let got = parse_number(text).unwrap();
            assert_eq!(got.to_bits(), expected.to_bits(), "{text}");
        }
        assert_eq!(parse_simple("1e23"), None, "outside the fast path");
        assert_eq!(parse_simple("12345678901234567890"), None);
    }

    #[test]
    fn numbers_print_like_javascript_for_common_values() {
        let cases = [
            (1.0, "1"),
            (-0.5, "-0.5"),
            (19.99, "19.99"),
            (1e3, "1000"),
            (f64::NAN, "null"),
        ];
        for (n, want) in cases {
            let mut out = String::new();
            write_number(&mut out, n);
            assert_eq!(out, want);
        }
    }

    #[test]
    fn numbers_beyond_f64_are_errors_not_infinity() {
        for text in ["77e777773", "-1e309", &"9".repeat(400)] {
            let err = Value::parse(text).err().map(|e| e.reason);
            assert_eq!(err, Some("number out of range"), "{text}");
        }
        // Underflow is zero, as in JavaScript.
        assert_eq!(Value::parse("1e-400").ok(), Some(Value::Number(0.0)));
        assert_eq!(Value::parse("1.5e308").ok(), Some(Value::Number(1.5e308)));
    }

    #[test]
    fn string_lists_round_trip() {
        let ids = vec!["new-user".to_string(), "a \"b\"".to_string()];
        let mut out = String::new();
        write_strings(&mut out, &ids);
        assert_eq!(out, r#"["new-user","a \"b\""]"#);
        assert_eq!(Value::parse(&out).unwrap().strings(), Some(ids));
        let mixed = Value::parse(r#"["a",1,null,"b"]"#).unwrap();
        assert_eq!(mixed.strings(), Some(vec!["a".into(), "b".into()]));
        assert_eq!(Value::parse(r#"{"a":1}"#).unwrap().strings(), None);
        let mut empty = String::new();
        write_strings(&mut empty, &[]);
        assert_eq!(empty, "[]");
    }

    #[test]
    fn validate_agrees_with_parse() {
        for text in [
            "{}",
            "[1,{\"a\":\"\\u00e9\"}]",
            "{\"a\":[",
            "\"x",
            "1 2",
            "{\"a\":1,}",
            "-0.5e+3",
            "[]",
            "77e777773",
            "[-1e309]",
            "1e-400",
            "0.1e-2147483648",
            &"9".repeat(301),
            &"9".repeat(400),
        ] {
            assert_eq!(validate(text).is_ok(), Value::parse(text).is_ok(), "{text}");
        }
    }

    #[test]
    fn lone_surrogates_become_replacement_characters() {
        assert_eq!(
            Value::parse(r#""\ud800x""#).unwrap(),
            Value::String("\u{FFFD}x".into())
        );
    }
}
