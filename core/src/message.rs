//! Segment-spec messages (`track`, `page`, `identify`) and their context.
//!
//! A message is kept as two JSON fragments: its *head* (everything but the
//! context, without the closing brace) and the context object, shared by
//! every event of a page view with the same segments. On the wire they are
//! joined as `head + ,"context": + context + }`. Keeping the context apart
//! lets the persisted queue store it once per chunk instead of once per
//! event (it is most of an event's bytes).

use crate::error::Error;
use crate::json::{self, write_number, write_string, write_strings, Value};
use crate::time::write_rfc3339;

/// Segment's limit on one event, in bytes.
pub const MAX_EVENT_BYTES: usize = 32 * 1024;

/// The library name and version put in every event's context.
pub const LIBRARY_NAME: &str = "segmint";
/// This crate's version, which is the SDK's version.
pub const LIBRARY_VERSION: &str = env!("CARGO_PKG_VERSION");

/// What the page looks like when an event is recorded.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PageInfo {
    /// `location.href`
    pub url: String,
    /// `location.pathname`
    pub path: String,
    /// `location.search`
    pub search: String,
    /// `document.referrer`
    pub referrer: String,
    /// `document.title`
    pub title: String,
    /// `navigator.userAgent`
    pub user_agent: String,
    /// `navigator.language`
    pub locale: String,
}

/// The longest page URL, query or referrer segmint sends, in bytes...
const MAX_URL_BYTES: usize = 2048;
/// ...and page title. A page that keeps its state in a 20 KB query would
/// otherwise pass the 32 KB event limit with every event it records.
const MAX_TITLE_BYTES: usize = 512;

impl PageInfo {
    /// The page as segmint sends and evaluates it: without the site's
    /// private URL parameters (`names`), and its texts cut to their caps.
    pub fn as_sent(mut self, names: &[String]) -> PageInfo {
        if !names.is_empty() {
            for url in [&mut self.url, &mut self.search, &mut self.referrer] {
                *url = crate::url::strip_params(url, names);
            }
        }
        for (text, cap) in [
            (&mut self.url, MAX_URL_BYTES),
            (&mut self.search, MAX_URL_BYTES),
            (&mut self.referrer, MAX_URL_BYTES),
            (&mut self.title, MAX_TITLE_BYTES),
        ] {
            let mut at = cap.min(text.len());
            while !text.is_char_boundary(at) {
                at -= 1;
            }
            text.truncate(at);
        }
        self
    }

    /// The page's UTM campaign, named as Segment names it.
    pub fn campaign(&self) -> Vec<(String, String)> {
        crate::url::campaign(&self.search)
    }

    /// `mobile`, `tablet` or `desktop`, from the user agent.
    pub fn device_type(&self) -> &'static str {
        device_type(&self.user_agent)
    }

    /// The `page` object of Segment's context (and of page properties).
    pub fn write_page_object(&self, out: &mut String) {
        out.push_str("{\"path\":");
        write_string(out, &self.path);
        out.push_str(",\"referrer\":");
        write_string(out, &self.referrer);
        out.push_str(",\"search\":");
        write_string(out, &self.search);
        out.push_str(",\"title\":");
        write_string(out, &self.title);
        out.push_str(",\"url\":");
        write_string(out, &self.url);
        out.push('}');
    }

    /// The context object for events recorded now, with the user's
    /// current segment ids.
    pub fn context_json(&self, segments: &[String]) -> String {
        let mut out = String::with_capacity(256 + self.user_agent.len() + self.url.len());
        out.push_str("{\"library\":{\"name\":\"");
        out.push_str(LIBRARY_NAME);
        out.push_str("\",\"version\":\"");
        out.push_str(LIBRARY_VERSION);
        out.push_str("\"},\"page\":");
        self.write_page_object(&mut out);
        out.push_str(",\"userAgent\":");
        write_string(&mut out, &self.user_agent);
        out.push_str(",\"locale\":");
        write_string(&mut out, &self.locale);
        out.push_str(",\"campaign\":{");
        for (i, (k, v)) in self.campaign().iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            write_string(&mut out, k);
            out.push(':');
            write_string(&mut out, v);
        }
        out.push_str("},\"segments\":");
        write_strings(&mut out, segments);
        out.push('}');
        out
    }
}

/// `mobile`, `tablet` or `desktop` from a user agent string.
pub fn device_type(user_agent: &str) -> &'static str {
    let ua = user_agent.to_ascii_lowercase();
    let has = |word: &str| contains(&ua, word);
    if has("ipad") || has("tablet") || (has("android") && !has("mobile")) {
        "tablet"
    } else if has("mobi") || has("iphone") || has("android") {
        "mobile"
    } else {
        "desktop"
    }
}

/// Whether `needle` occurs in `haystack`, by bytes. (The standard
/// substring search links a panic path that formats characters, and with
/// it Unicode tables: kilobytes of wasm for a few short searches.)
pub fn contains(haystack: &str, needle: &str) -> bool {
    needle.is_empty()
        || haystack
            .as_bytes()
            .windows(needle.len())
            .any(|w| w == needle.as_bytes())
}

/// Who a message is about.
#[derive(Clone, Copy, Debug)]
pub struct Ids<'a> {
    /// The anonymous id (always present).
    pub anonymous_id: &'a str,
    /// The user id after `identify`.
    pub user_id: Option<&'a str>,
}

/// What kind of message to build. Property and trait texts are JSON
/// objects, already validated.
#[derive(Clone, Copy, Debug)]
pub enum Kind<'a> {
    /// `track(event, properties)`
    Track {
        /// The event name.
        event: &'a str,
        /// JSON object text.
        properties: &'a str,
    },
    /// `page(name, properties)`
    Page {
        /// The page name, if given.
        name: Option<&'a str>,
        /// JSON object text (page url, path, ... merged by the caller).
        properties: &'a str,
    },
    /// `identify(userId, traits)`
    Identify {
        /// JSON object text.
        traits: &'a str,
    },
}

/// Builds a message head (see the module doc): the message without its
/// context and closing brace.
pub fn message_head(kind: Kind<'_>, ids: Ids<'_>, message_id: &str, timestamp_ms: f64) -> String {
    let body_len = match kind {
        Kind::Track { properties, .. } | Kind::Page { properties, .. } => properties.len(),
        Kind::Identify { traits } => traits.len(),
    };
    let mut out = String::with_capacity(body_len + 200);
    match kind {
        Kind::Track { event, properties } => {
            out.push_str("{\"type\":\"track\",\"event\":");
            write_string(&mut out, event);
            out.push_str(",\"properties\":");
            out.push_str(properties);
        }
        Kind::Page { name, properties } => {
            out.push_str("{\"type\":\"page\"");
            if let Some(name) = name {
                out.push_str(",\"name\":");
                write_string(&mut out, name);
            }
            out.push_str(",\"properties\":");
            out.push_str(properties);
        }
        Kind::Identify { traits } => {
            out.push_str("{\"type\":\"identify\",\"traits\":");
            out.push_str(traits);
        }
    }
    out.push_str(",\"messageId\":\"");
    out.push_str(message_id);
    out.push_str("\",\"anonymousId\":");
    write_string(&mut out, ids.anonymous_id);
    if let Some(user_id) = ids.user_id {
        out.push_str(",\"userId\":");
        write_string(&mut out, user_id);
    }
    out.push_str(",\"timestamp\":\"");
    write_rfc3339(&mut out, timestamp_ms);
    out.push('"');
    out
}

/// The `,"context":` joint between a head and its context.
pub const CONTEXT_JOINT: &str = ",\"context\":";

/// Bytes of a whole message made of `head` and `context`.
pub fn wire_len(head: &str, context: &str) -> usize {
    head.len() + CONTEXT_JOINT.len() + context.len() + 1
}

/// Appends the whole message to `out`.
pub fn write_message(out: &mut String, head: &str, context: &str) {
    out.push_str(head);
    out.push_str(CONTEXT_JOINT);
    out.push_str(context);
    out.push('}');
}

/// Checks that `text` is a JSON object (as `JSON.stringify` of properties
/// or traits gives): anything else is an argument error for `argument`.
pub fn check_object(text: &str, argument: &str) -> Result<(), Error> {
    let bad = |reason: String| Error::InvalidArgument {
        argument: argument.to_string(),
        reason,
    };
    if !text.trim_start().starts_with('{') {
        return Err(bad("expected a plain object".into()));
    }
    json::validate(text).map_err(|e| bad(format!("not valid JSON: {e}")))
}

/// Parses `text` as a JSON object (what [`check_object`] accepts).
pub fn parse_object(text: &str, argument: &str) -> Result<Value, Error> {
    let bad = |reason: String| Error::InvalidArgument {
        argument: argument.to_string(),
        reason,
    };
    if !text.trim_start().starts_with('{') {
        return Err(bad("expected a plain object".into()));
    }
    Value::parse(text).map_err(|e| bad(format!("not valid JSON: {e}")))
}

/// Checks an event name: a non-empty string of at most 200 characters.
pub fn check_event_name(name: &str) -> Result<(), Error> {
    if name.trim().is_empty() || name.chars().count() > 200 {
        return Err(Error::InvalidArgument {
            argument: "track(event)".into(),
            reason: "expected a non-empty event name of at most 200 characters".into(),
        });
    }
    Ok(())
}

/// Segment e-commerce v2 event names.
pub mod commerce {
    /// `productClicked()`
    pub const PRODUCT_CLICKED: &str = "Product Clicked";
    /// `productsSearched()`
    pub const PRODUCTS_SEARCHED: &str = "Products Searched";
    /// `orderCompleted()`
    pub const ORDER_COMPLETED: &str = "Order Completed";
    /// Sent once per slot render.
    pub const PROMOTION_VIEWED: &str = "Promotion Viewed";
    /// Sent on a click inside a rendered slot.
    pub const PROMOTION_CLICKED: &str = "Promotion Clicked";
}

fn missing(event: &'static str, field: impl Into<String>, reason: &'static str) -> Error {
    Error::MissingField {
        event,
        field: field.into(),
        reason,
    }
}

fn is_id(v: Option<&Value>) -> bool {
    match v {
        Some(Value::String(s)) => !s.trim().is_empty(),
        Some(Value::Number(n)) => n.is_finite(),
        _ => false,
    }
}

/// A string that is a plain decimal number ("9.99", "-3", "12.50": what
/// a template that prints a price gives), as that number. Not "1,234.56",
/// "$9.99", "1e3" or "09": those stay errors rather than guesses.
fn decimal_text(text: &str) -> Option<f64> {
    let t = text.trim();
    let unsigned = t.strip_prefix('-').unwrap_or(t);
    let (whole, fraction) = match unsigned.split_once('.') {
        Some((w, f)) => (w, Some(f)),
        None => (unsigned, None),
    };
    let digits = |d: &str| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit());
    let plain =
        digits(whole) && (whole == "0" || !whole.starts_with('0')) && fraction.is_none_or(digits);
    if plain {
        json::parse_number(t)
    } else {
        None
    }
}

/// A commerce amount (price, quantity, total): a number, or a string that
/// is one in plain decimal notation (see `decimal_text`). The collector
/// reads other senders' events with it, as the SDK normalises its own.
pub fn amount(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => Some(*n),
        Value::String(s) => decimal_text(s),
        _ => None,
    }
}

/// An order's `order_id` (in `Order Completed`'s properties) as text:
/// Segment allows a number, and 1002 is the order "1002". The profile
/// counts an order once by it, and so does the collector.
pub fn order_id(properties: &Value) -> Option<String> {
    match properties.get("order_id")? {
        Value::String(id) if !id.is_empty() => Some(id.clone()),
        Value::Number(n) => {
            let mut id = String::new();
            write_number(&mut id, *n);
            Some(id)
        }
        _ => None,
    }
}

/// Member `field` of `obj` as a number, a numeric string (see
/// [`decimal_text`]) written back as the number it is. Err(()) when the
/// member is there and is neither; Ok(true) when it was rewritten.
fn number_field(obj: &mut Value, field: &str) -> Result<bool, ()> {
    let Some(value) = obj.get_mut(field) else {
        return Ok(false);
    };
    match (amount(value), &value) {
        (Some(_), Value::Number(_)) => Ok(false),
        (Some(n), _) => {
            *value = Value::Number(n);
            Ok(true)
        }
        (None, _) => Err(()),
    }
}

fn optional_number(
    event: &'static str,
    obj: &mut Value,
    field: &str,
    prefix: &str,
) -> Result<bool, Error> {
    number_field(obj, field).map_err(|()| {
        missing(
            event,
            format!("{prefix}{field}"),
            "must be a number (or a string such as \"9.99\")",
        )
    })
}

/// Checks `productClicked` properties: `product_id` is required; `price`
/// must be a number when given (a numeric string becomes that number).
/// Ok(true) when a value was rewritten.
pub fn check_product_clicked(props: &mut Value) -> Result<bool, Error> {
    let event = commerce::PRODUCT_CLICKED;
    if !is_id(props.get("product_id")) {
        return Err(missing(
            event,
            "product_id",
            "is required (a string or number)",
        ));
    }
    optional_number(event, props, "price", "")
}

/// Checks an `orderCompleted` order: `order_id` and a non-empty
/// `products` array whose items have a `product_id`; `total`, `revenue`,
/// `price` must be numbers and `quantity` a positive whole number when
/// given (numeric strings, as templates print prices, become those
/// numbers); `currency` a three-letter code. Ok(true) when a value was
/// rewritten.
pub fn check_order_completed(order: &mut Value) -> Result<bool, Error> {
    let event = commerce::ORDER_COMPLETED;
    if !is_id(order.get("order_id")) {
        return Err(missing(
            event,
            "order_id",
            "is required (a string or number)",
        ));
    }
    let mut rewritten = false;
    for field in [
        "total", "revenue", "subtotal", "tax", "shipping", "discount",
    ] {
        rewritten |= optional_number(event, order, field, "")?;
    }
    if let Some(currency) = order.get("currency") {
        let ok = currency
            .as_str()
            .is_some_and(|c| c.len() == 3 && c.bytes().all(|b| b.is_ascii_alphabetic()));
        if !ok {
            return Err(missing(
                event,
                "currency",
                "must be a three-letter ISO 4217 code",
            ));
        }
    }
    let products = match order.get_mut("products") {
        Some(Value::Array(items)) if !items.is_empty() => items,
        _ => {
            return Err(missing(
                event,
                "products",
                "is required (a non-empty array)",
            ))
        }
    };
    for (i, product) in products.iter_mut().enumerate() {
        let prefix = format!("products[{i}].");
        if product.as_object().is_none() {
            return Err(missing(
                event,
                format!("products[{i}]"),
                "must be an object",
            ));
        }
        if !is_id(product.get("product_id")) {
            return Err(missing(
                event,
                format!("{prefix}product_id"),
                "is required (a string or number)",
            ));
        }
        rewritten |= optional_number(event, product, "price", &prefix)?;
        let quantity = number_field(product, "quantity");
        let whole = product
            .get("quantity")
            .is_none_or(|q| q.as_f64().is_some_and(|n| n >= 1.0 && n.fract() == 0.0));
        match quantity {
            Ok(changed) if whole => rewritten |= changed,
            _ => {
                return Err(missing(
                    event,
                    format!("{prefix}quantity"),
                    "must be a positive whole number",
                ))
            }
        }
    }
    Ok(rewritten)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page() -> PageInfo {
        PageInfo {
            url: "https://shop.example/p/1?utm_source=news&utm_campaign=bf".into(),
            path: "/p/1".into(),
            search: "?utm_source=news&utm_campaign=bf".into(),
            referrer: "https://search.example/".into(),
            title: "Red \"shoes\"".into(),
            user_agent: "Mozilla/5.0 (X11; Linux x86_64)".into(),
            locale: "en-US".into(),
        }
    }

    #[test]
    fn builds_a_segment_track_message() {
        let ids = Ids {
            anonymous_id: "123e4567-e89b-42d3-a456-426614174000",
            user_id: Some("u1"),
        };
        let head = message_head(
            Kind::Track {
                event: "Product Clicked",
                properties: r#"{"product_id":"p1","price":19.99}"#,
            },
            ids,
            "2b6e1c5e-8d1b-4c3e-9c1a-0e7f2d3b4a5c",
            1_795_405_732_123.0,
        );
        let ctx = page().context_json(&["new-user".to_string()]);
        let mut wire = String::new();
        write_message(&mut wire, &head, &ctx);
        assert_eq!(wire.len(), wire_len(&head, &ctx));
        let v = Value::parse(&wire).unwrap();
        assert_eq!(v.get("type").and_then(Value::as_str), Some("track"));
        assert_eq!(
            v.get("event").and_then(Value::as_str),
            Some("Product Clicked")
        );
        assert_eq!(v.get("userId").and_then(Value::as_str), Some("u1"));
        assert_eq!(
            v.get("timestamp").and_then(Value::as_str),
            Some("2026-11-23T03:48:52.123Z")
        );
        let ctx = v.get("context").unwrap();
        assert_eq!(
            ctx.get("library")
                .and_then(|l| l.get("name"))
                .and_then(Value::as_str),
            Some("segmint")
        );
        assert_eq!(
            ctx.get("campaign")
                .and_then(|c| c.get("source"))
                .and_then(Value::as_str),
            Some("news")
        );
        assert_eq!(
            ctx.get("campaign")
                .and_then(|c| c.get("name"))
                .and_then(Value::as_str),
            Some("bf")
        );
        assert_eq!(
            ctx.get("page")
                .and_then(|p| p.get("title"))
                .and_then(Value::as_str),
            Some("Red \"shoes\"")
        );
        assert_eq!(ctx.get("segments").unwrap().to_json(), r#"["new-user"]"#);
    }

    #[test]
    fn page_and_identify_messages() {
        let ids = Ids {
            anonymous_id: "a",
            user_id: None,
        };
        let head = message_head(
            Kind::Page {
                name: Some("Home"),
                properties: "{}",
            },
            ids,
            "m",
            0.0,
        );
        let v = Value::parse(&(head + "}")).unwrap();
        assert_eq!(v.get("name").and_then(Value::as_str), Some("Home"));
        assert!(v.get("userId").is_none());
        let head = message_head(
            Kind::Identify {
                traits: r#"{"plan":"pro"}"#,
            },
            ids,
            "m",
            0.0,
        );
        let v = Value::parse(&(head + "}")).unwrap();
        assert_eq!(
            v.get("traits")
                .and_then(|t| t.get("plan"))
                .and_then(Value::as_str),
            Some("pro")
        );
    }

    #[test]
    fn checks_objects_and_names() {
        assert!(check_object("{\"a\":1}", "track(properties)").is_ok());
        assert_eq!(
            check_object("[1]", "track(properties)").unwrap_err().code(),
            "invalid_argument"
        );
        assert_eq!(
            check_object("{\"a\":", "x").unwrap_err().code(),
            "invalid_argument"
        );
        assert!(check_event_name("Order Completed").is_ok());
        assert!(check_event_name("  ").is_err());
        assert!(check_event_name(&"x".repeat(201)).is_err());
    }

    #[test]
    fn commerce_helpers_name_the_missing_field() {
        let field = |r: Result<bool, Error>| match r {
            Err(Error::MissingField { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        let p = |t: &str| Value::parse(t).unwrap();
        assert_eq!(
            check_product_clicked(&mut p(r#"{"product_id":"p1","price":3}"#)),
            Ok(false)
        );
        assert_eq!(
            field(check_product_clicked(&mut p(r#"{"price":3}"#))),
            "product_id"
        );
        assert_eq!(
            field(check_product_clicked(&mut p(
                r#"{"product_id":"p","price":"$3"}"#
            ))),
            "price"
        );
        let order = r#"{"order_id":"o1","total":30,"currency":"USD","products":[{"product_id":"p1","price":10,"quantity":3}]}"#;
        assert_eq!(check_order_completed(&mut p(order)), Ok(false));
        for (text, field_name) in [
            (r#"{"products":[{"product_id":1}]}"#, "order_id"),
            (r#"{"order_id":"o","products":[]}"#, "products"),
            (
                r#"{"order_id":"o","products":[{"product_id":1},{"price":2}]}"#,
                "products[1].product_id",
            ),
            (
                r#"{"order_id":"o","products":[{"product_id":1,"quantity":0}]}"#,
                "products[0].quantity",
            ),
            (
                r#"{"order_id":"o","products":[{"product_id":1,"quantity":"1.5"}]}"#,
                "products[0].quantity",
            ),
            (
                r#"{"order_id":"o","products":[{"product_id":1,"quantity":"two"}]}"#,
                "products[0].quantity",
            ),
            (
                r#"{"order_id":"o","products":[{"product_id":1,"price":"1,234.56"}]}"#,
                "products[0].price",
            ),
            (
                r#"{"order_id":"o","total":true,"products":[{"product_id":1}]}"#,
                "total",
            ),
            (
                r#"{"order_id":"o","currency":"dollars","products":[{"product_id":1}]}"#,
                "currency",
            ),
        ] {
            assert_eq!(
                field(check_order_completed(&mut p(text))),
                field_name,
                "{text}"
            );
        }
    }

    #[test]
    fn amounts_given_as_text_become_numbers() {
        let mut order = Value::parse(
            r#"{"order_id":"o","total":" 19.98 ","tax":"0","products":[{"product_id":"p","price":"9.99","quantity":"2"}]}"#,
        )
        .unwrap();
        assert_eq!(check_order_completed(&mut order), Ok(true));
        assert_eq!(
            order.to_json(),
            r#"{"order_id":"o","total":19.98,"tax":0,"products":[{"product_id":"p","price":9.99,"quantity":2}]}"#
        );
        let mut clicked = Value::parse(r#"{"product_id":"p","price":"-0.5"}"#).unwrap();
        assert_eq!(check_product_clicked(&mut clicked), Ok(true));
        assert_eq!(clicked.get("price"), Some(&Value::Number(-0.5)));

        for ok in ["0", "9", "9.99", "-3", "12.50", "0.5", " 7 "] {
            assert!(decimal_text(ok).is_some(), "{ok}");
        }
        for not in [
            "", "-", ".5", "5.", "09", "1e3", "1,234.56", "$9.99", "9.99 EUR", "NaN", "Infinity",
            "0x10", "+1", "1.2.3",
        ] {
            assert_eq!(decimal_text(not), None, "{not}");
        }
    }

    #[test]
    fn device_types() {
        assert_eq!(
            device_type("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Mobile/15E148"),
            "mobile"
        );
        assert_eq!(
            device_type("Mozilla/5.0 (Linux; Android 14; Pixel 8) Mobile Safari/537.36"),
            "mobile"
        );
        assert_eq!(
            device_type("Mozilla/5.0 (Linux; Android 14; SM-X710) Safari/537.36"),
            "tablet"
        );
        assert_eq!(
            device_type("Mozilla/5.0 (iPad; CPU OS 17_0 like Mac OS X)"),
            "tablet"
        );
        assert_eq!(
            device_type("Mozilla/5.0 (X11; Linux x86_64) Chrome/156"),
            "desktop"
        );
    }
}
