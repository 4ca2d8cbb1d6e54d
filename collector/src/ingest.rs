//! Reading a `POST /v1/batch` body: Segment's batch format, checked
//! against its limits, parsed with segmint-core's own JSON so the server
//! reads exactly what the SDK writes.

use flate2::read::GzDecoder;
use segmint_core::json::Value;
use segmint_core::message::commerce::ORDER_COMPLETED;
use segmint_core::message::{amount, MAX_EVENT_BYTES};
use segmint_core::time::parse_rfc3339;
use std::io::Read;

/// Segment's limit on one request, in bytes (after decompression).
pub const MAX_REQUEST_BYTES: usize = 500 * 1024;

/// One message as stored, with the fields the dashboard and the
/// server-side evaluation read pulled out of its JSON.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredEvent {
    /// `messageId`: the key that makes ingest idempotent.
    pub message_id: String,
    /// When the collector received it (ms).
    pub received_at: f64,
    /// When it happened (ms), on the collector's clock: the message's own
    /// `timestamp` corrected by the batch's `sentAt` (a device whose clock
    /// is off by hours still files its events at the right time), or
    /// `received_at` without one.
    pub timestamp: f64,
    /// `track`, `page`, `identify`, ...
    pub kind: String,
    /// The event name (track) or page name.
    pub event: Option<String>,
    /// `anonymousId`
    pub anonymous_id: Option<String>,
    /// `userId`
    pub user_id: Option<String>,
    /// `context.segments`, as JSON text.
    pub segments: String,
    /// For `Promotion Viewed`: the segment and variation shown.
    pub promo_segment: Option<String>,
    /// For `Promotion Viewed`: `personalized`, `holdout` or `default`.
    pub promo_variation: Option<String>,
    /// For `Order Completed`: the order's value.
    pub order_total: Option<f64>,
    /// For `Order Completed`: its `order_id`, as text. A reloaded
    /// thank-you page sends an order again: the dashboard counts it once.
    pub order_id: Option<String>,
    /// Sent by a crawler or headless browser (its `context.userAgent`, see
    /// [`is_bot`]): stored, but left out of the dashboard's figures.
    pub bot: bool,
    /// The whole message.
    pub body: String,
}

/// Why a request was refused (HTTP status and message).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// 400, 401 ...
    pub status: u16,
    /// What was wrong, naming the problem.
    pub message: String,
}

/// A body over [`MAX_REQUEST_BYTES`], raw or decompressed: 413, which
/// tells a client not to send it again as it is.
pub fn too_large() -> Refusal {
    Refusal {
        status: 413,
        message: format!(
            "request body is over the {} KB limit; send smaller batches",
            MAX_REQUEST_BYTES / 1024
        ),
    }
}

fn bad(message: impl Into<String>) -> Refusal {
    Refusal {
        status: 400,
        message: message.into(),
    }
}

/// The request body, decompressed if it says it is gzip.
pub fn decode_body(raw: &[u8], gzip: bool) -> Result<String, Refusal> {
    let bytes = if gzip {
        let mut out = Vec::new();
        // Read one byte past the limit so a bomb cannot fill memory.
        GzDecoder::new(raw)
            .take(MAX_REQUEST_BYTES as u64 + 1)
            .read_to_end(&mut out)
            .map_err(|e| bad(format!("body is not valid gzip: {e}")))?;
        out
    } else {
        raw.to_vec()
    };
    if bytes.len() > MAX_REQUEST_BYTES {
        return Err(too_large());
    }
    String::from_utf8(bytes).map_err(|_| bad("body is not UTF-8"))
}

/// The value's order value: `total`, else `revenue`, else the sum of its
/// products' price times quantity. Amounts may be numeric strings
/// ("9.99"), as SDKs that do not check them send them.
pub fn order_value(props: &Value) -> Option<f64> {
    let num = |k: &str| props.get(k).and_then(amount);
    num("total").or_else(|| num("revenue")).or_else(|| {
        let products = props.get("products")?.as_array()?;
        let sum: f64 = products
            .iter()
            .filter_map(|p| {
                let price = p.get("price").and_then(amount)?;
                Some(price * p.get("quantity").and_then(amount).unwrap_or(1.0))
            })
            .sum();
        Some(sum)
    })
}

/// User-agent fragments of crawlers, link previewers, SEO and uptime
/// tools and headless browsers, lower case. Specific names rather than a
/// bare "bot", which would also catch real phones (Cubot) and in-app
/// browsers; "+http" is how crawlers link their documentation, which no
/// browser's user agent does.
const BOT_AGENTS: &[&str] = &[
    "+http",
    "crawler",
    "spider",
    "googlebot",
    "adsbot-google",
    "mediapartners-google",
    "storebot-google",
    "google-inspectiontool",
    "googleother",
    "bingbot",
    "bingpreview",
    "slurp",
    "duckduckbot",
    "yandexbot",
    "applebot",
    "facebookexternalhit",
    "facebookcatalog",
    "twitterbot",
    "linkedinbot",
    "pinterestbot",
    "slackbot",
    "discordbot",
    "telegrambot",
    "petalbot",
    "ahrefsbot",
    "semrushbot",
    "mj12bot",
    "dotbot",
    "gptbot",
    "chatgpt-user",
    "oai-searchbot",
    "claudebot",
    "perplexitybot",
    "bytespider",
    "amazonbot",
    "ccbot",
    "ia_archiver",
    "screaming frog",
    "lighthouse",
    "gtmetrix",
    "pingdom",
    "uptimerobot",
    "datadogsynthetics",
    "headlesschrome",
    "phantomjs",
    "cypress",
];

/// Whether a user agent is a crawler or a headless browser rather than a
/// shopper: their events would count as new users that never buy.
pub fn is_bot(user_agent: &str) -> bool {
    let ua = user_agent.to_ascii_lowercase();
    BOT_AGENTS.iter().any(|fragment| ua.contains(fragment))
}

/// Whether a message's `context.userAgent` is a bot's (see [`is_bot`]).
pub fn sent_by_bot(message: &Value) -> bool {
    message
        .get("context")
        .and_then(|c| c.get("userAgent"))
        .and_then(Value::as_str)
        .is_some_and(is_bot)
}

/// The `order_id` of an `Order Completed` message, as text, read as the
/// SDK's profile reads it.
pub fn order_id(message: &Value) -> Option<String> {
    if message.get("event").and_then(Value::as_str) != Some(ORDER_COMPLETED) {
        return None;
    }
    segmint_core::message::order_id(message.get("properties")?)
}

fn text(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_string)
}

/// What a request body holds, by the path it was posted to (Segment's
/// HTTP Tracking API).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// `{"batch": [...], "sentAt": .., "writeKey": ..}`: `/v1/batch`,
    /// `/v1/import`, `/v1/b`.
    Batch,
    /// One message whose type the path names (`/v1/track`, `/v1/t`, ...),
    /// which wins over a `type` in the body, as at Segment.
    One(&'static str),
}

/// Parses a batch body into events to store. `write_key`: when set, the
/// batch's `writeKey` (or the Basic user name) must match it.
pub fn parse_batch(
    body: &str,
    received_at: f64,
    write_key: Option<&str>,
    basic_user: Option<&str>,
) -> Result<Vec<StoredEvent>, Refusal> {
    parse_request(body, Shape::Batch, received_at, write_key, basic_user)
}

/// Parses a request body of `shape` into events to store. `write_key`:
/// when set, the body's `writeKey` or the Basic user name (where Segment's
/// clients put it) must match it.
pub fn parse_request(
    body: &str,
    shape: Shape,
    received_at: f64,
    write_key: Option<&str>,
    basic_user: Option<&str>,
) -> Result<Vec<StoredEvent>, Refusal> {
    let wrong_key = || Refusal {
        status: 401,
        message: "missing or wrong writeKey (in the body, or as the Basic auth user name)".into(),
    };
    // The key is looked for before the body is parsed: a request without
    // it costs a substring search, not a parse.
    if let Some(expected) = write_key {
        let mut literal = String::new();
        segmint_core::json::write_string(&mut literal, expected);
        if basic_user != Some(expected) && !body.contains(&literal) {
            return Err(wrong_key());
        }
    }
    let doc = Value::parse(body).map_err(|e| bad(format!("malformed JSON: {e}")))?;
    if doc.as_object().is_none() {
        return Err(bad("expected a JSON object"));
    }
    if let Some(expected) = write_key {
        let in_body = doc.get("writeKey").and_then(Value::as_str);
        let accepted = [in_body, basic_user]
            .into_iter()
            .flatten()
            .any(|given| given == expected);
        if !accepted {
            return Err(wrong_key());
        }
    }
    // As Segment does: the device's clock may be off, but the time between
    // recording an event and sending its batch is right on any clock.
    let sent_at = |v: &Value| {
        v.get("sentAt")
            .and_then(Value::as_str)
            .and_then(parse_rfc3339)
    };
    match shape {
        Shape::Batch => {
            let batch = doc
                .get("batch")
                .and_then(Value::as_array)
                .ok_or_else(|| bad("expected {\"batch\": [...]}"))?;
            let batch_sent_at = sent_at(&doc);
            batch
                .iter()
                .enumerate()
                .map(|(i, m)| {
                    let sent = sent_at(m).or(batch_sent_at);
                    stored_event(m.clone(), None, sent, received_at)
                        .map_err(|what| bad(format!("batch[{i}]: {what}")))
                })
                .collect()
        }
        Shape::One(kind) => {
            let sent = sent_at(&doc);
            stored_event(doc, Some(kind), sent, received_at)
                .map(|e| vec![e])
                .map_err(bad)
        }
    }
}

/// One message as stored, or what is wrong with it. `kind`: the type the
/// path names.
fn stored_event(
    mut m: Value,
    kind: Option<&str>,
    sent_at: Option<f64>,
    received_at: f64,
) -> Result<StoredEvent, String> {
    if m.as_object().is_none() {
        return Err("expected an object".into());
    }
    // The key is the sender's, not the event's: not stored with it.
    m.remove("writeKey");
    if let Some(kind) = kind {
        m.insert("type", Value::String(kind.into()));
    }
    let body = m.to_json();
    if body.len() > MAX_EVENT_BYTES {
        return Err(format!(
            "{} bytes, over the 32 KB limit per event",
            body.len()
        ));
    }
    let message_id = match m.get("messageId") {
        Some(Value::String(id)) if !id.is_empty() && id.len() <= 200 => id.clone(),
        _ => return Err("messageId: expected a non-empty string".into()),
    };
    let kind = text(&m, "type").ok_or("type: expected a string")?;
    let anonymous_id = text(&m, "anonymousId");
    let user_id = text(&m, "userId");
    if anonymous_id.is_none() && user_id.is_none() {
        return Err("expected an anonymousId or a userId".into());
    }
    let event = match kind.as_str() {
        "track" => Some(text(&m, "event").ok_or("event: a track message needs an event name")?),
        _ => text(&m, "name"),
    };
    let timestamp = match m.get("timestamp") {
        None | Some(Value::Null) => received_at,
        Some(Value::String(t)) => {
            let device = parse_rfc3339(t).ok_or("timestamp: expected an RFC 3339 date-time")?;
            sent_at.map_or(device, |sent| received_at - (sent - device).max(0.0))
        }
        Some(_) => return Err("timestamp: expected a string".into()),
    };
    let segments = m
        .get("context")
        .and_then(|c| c.get("segments"))
        .filter(|s| s.as_array().is_some())
        .map_or_else(|| "[]".to_string(), Value::to_json);
    let bot = sent_by_bot(&m);
    // Only track messages carry the dashboard's events: a page or screen
    // named "Order Completed" is not an order.
    let props = m.get("properties").cloned().unwrap_or_default();
    let tracked = if kind == "track" {
        event.as_deref()
    } else {
        None
    };
    let (promo_segment, promo_variation, order_total) = match tracked {
        Some("Promotion Viewed") => (text(&props, "segment"), text(&props, "variation"), None),
        Some("Order Completed") => (None, None, order_value(&props)),
        _ => (None, None, None),
    };
    let stored = StoredEvent {
        message_id,
        received_at,
        timestamp,
        order_id: if kind == "track" { order_id(&m) } else { None },
        kind,
        event,
        anonymous_id,
        user_id,
        segments,
        promo_segment,
        promo_variation,
        order_total,
        bot,
        body,
    };
    // PostgreSQL's text cannot hold U+0000: such a message could never be
    // stored there, so it is refused now (a 503 would be retried forever).
    let columns = [
        Some(&stored.message_id),
        Some(&stored.kind),
        stored.event.as_ref(),
        stored.anonymous_id.as_ref(),
        stored.user_id.as_ref(),
        stored.promo_segment.as_ref(),
        stored.promo_variation.as_ref(),
        stored.order_id.as_ref(),
    ];
    if columns.into_iter().flatten().any(|t| t.contains('\0')) {
        return Err(
            "an id, event name, promotion or order id holds U+0000, which cannot be stored".into(),
        );
    }
    Ok(stored)
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::write::GzEncoder;
    use std::io::Write;

    fn one(extra: &str) -> String {
        format!(
            r#"{{"batch":[{{"type":"track","event":"Order Completed","messageId":"m1","anonymousId":"a","timestamp":"2026-11-23T10:00:00.000Z","properties":{{"order_id":"o","products":[{{"product_id":"p","price":10,"quantity":2}}]}},"context":{{"segments":["x"]}}{extra}}}],"sentAt":"2026-11-23T10:00:01.000Z","writeKey":"wk"}}"#
        )
    }

    #[test]
    fn reads_a_segment_batch() {
        let events = parse_batch(&one(""), 5.0, Some("wk"), None).unwrap();
        let e = &events[0];
        assert_eq!(e.message_id, "m1");
        assert_eq!(e.event.as_deref(), Some("Order Completed"));
        assert_eq!(e.order_total, Some(20.0));
        assert_eq!(e.order_id.as_deref(), Some("o"));
        assert_eq!(e.segments, r#"["x"]"#);
        // Received when sent: 1 s after the event, by the device's clock.
        let received = parse_rfc3339("2026-11-23T10:00:01Z").unwrap();
        let e = &parse_batch(&one(""), received, None, None).unwrap()[0];
        assert_eq!(e.timestamp, parse_rfc3339("2026-11-23T10:00:00Z").unwrap());
    }

    #[test]
    fn crawlers_and_headless_browsers_are_bots_and_shoppers_are_not() {
        for bot in [
            "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.6778.139 Mobile Safari/537.36 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
            "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm) Chrome/116.0.1938.76 Safari/537.36",
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/13.1.1 Safari/605.1.15 (Applebot/0.1)",
            "Mozilla/5.0 (compatible; AhrefsBot/7.0)",
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/156.0.0.0 Safari/537.36",
            "Mozilla/5.0 (Linux; Android 11; moto g power (2022)) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/119.0.0.0 Mobile Safari/537.36 Chrome-Lighthouse",
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 DatadogSynthetics",
            "Screaming Frog SEO Spider/20.0",
        ] {
            assert!(is_bot(bot), "{bot}");
        }
        for shopper in [
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36",
            "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
            "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
            // In-app browsers and a phone whose name ends in "bot".
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 [FBAN/FBIOS;FBAV/470.0.0.32.109;FBBV/601234567]",
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 Pinterest for iOS/12.20",
            "Mozilla/5.0 (Linux; Android 10; KINGKONG 7 Build/QP1A.190711.020; Cubot) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/119.0.6045.163 Mobile Safari/537.36",
            "",
        ] {
            assert!(!is_bot(shopper), "{shopper}");
        }
        let with_agent = |ua: &str| {
            one("").replace(
                r#""context":{"segments":["x"]}"#,
                &format!(r#""context":{{"segments":["x"],"userAgent":"{ua}"}}"#),
            )
        };
        let parsed = |body: &str| parse_batch(body, 0.0, None, None).unwrap()[0].bot;
        assert!(parsed(&with_agent("Mozilla/5.0 HeadlessChrome/156.0.0.0")));
        assert!(!parsed(&with_agent("Mozilla/5.0 Chrome/156.0.0.0")));
        assert!(!parsed(&one("")), "no user agent (a server-side source)");
    }

    #[test]
    fn order_value_reads_amounts_given_as_text() {
        let v = |t: &str| order_value(&Value::parse(t).unwrap());
        assert_eq!(v(r#"{"total":"19.90"}"#), Some(19.9));
        assert_eq!(v(r#"{"total":"$19.90","revenue":12}"#), Some(12.0));
        assert_eq!(
            v(r#"{"products":[{"price":"2.5","quantity":"4"},{"price":1},{"price":"n/a"}]}"#),
            Some(11.0)
        );
    }

    #[test]
    fn a_device_clock_that_is_off_is_corrected_by_sent_at() {
        // The device runs an hour fast: the collector receives the batch at
        // 09:00:01 its time, and files the event 1 s before that.
        let received = parse_rfc3339("2026-11-23T09:00:01Z").unwrap();
        let e = &parse_batch(&one(""), received, None, None).unwrap()[0];
        assert_eq!(e.timestamp, parse_rfc3339("2026-11-23T09:00:00Z").unwrap());
        // An event queued offline for a day keeps its day.
        let late = parse_rfc3339("2026-11-24T10:00:01Z").unwrap();
        let body = one("").replace("2026-11-23T10:00:01.000Z", "2026-11-24T10:00:01.000Z");
        let e = &parse_batch(&body, late, None, None).unwrap()[0];
        assert_eq!(e.timestamp, parse_rfc3339("2026-11-23T10:00:00Z").unwrap());
        // Without sentAt, the device's time as it is.
        let bare = one("").replace(r#","sentAt":"2026-11-23T10:00:01.000Z""#, "");
        let e = &parse_batch(&bare, received, None, None).unwrap()[0];
        assert_eq!(e.timestamp, parse_rfc3339("2026-11-23T10:00:00Z").unwrap());
    }

    #[test]
    fn refuses_bad_input_naming_the_problem() {
        assert_eq!(parse_batch("{", 0.0, None, None).unwrap_err().status, 400);
        assert!(parse_batch(r#"{"batch":{}}"#, 0.0, None, None)
            .unwrap_err()
            .message
            .contains("batch"));
        assert!(parse_batch(
            r#"{"batch":[{"type":"track","anonymousId":"a"}]}"#,
            0.0,
            None,
            None
        )
        .unwrap_err()
        .message
        .starts_with("batch[0]: messageId"));
        assert!(parse_batch(
            r#"{"batch":[{"type":"track","messageId":"m","anonymousId":"a"}]}"#,
            0.0,
            None,
            None
        )
        .unwrap_err()
        .message
        .contains("event name"));
        let big = one(&format!(r#","pad":"{}""#, "x".repeat(40_000)));
        assert!(parse_batch(&big, 0.0, None, None)
            .unwrap_err()
            .message
            .contains("32 KB"));
        assert_eq!(
            parse_batch(&one(""), 0.0, Some("other"), None)
                .unwrap_err()
                .status,
            401
        );
        assert!(parse_batch(
            &one("").replace(r#","writeKey":"wk""#, ""),
            0.0,
            Some("wk"),
            Some("wk")
        )
        .is_ok());
    }

    #[test]
    fn decodes_gzip_within_the_limit() {
        let mut gz = GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(one("").as_bytes()).unwrap();
        let raw = gz.finish().unwrap();
        assert_eq!(decode_body(&raw, true).unwrap(), one(""));
        assert!(decode_body(b"not gzip", true).is_err());
        let mut bomb = GzEncoder::new(Vec::new(), flate2::Compression::best());
        bomb.write_all(&vec![b'a'; 2 * MAX_REQUEST_BYTES]).unwrap();
        assert!(decode_body(&bomb.finish().unwrap(), true)
            .unwrap_err()
            .message
            .contains("500 KB"));
        assert!(decode_body(&vec![b' '; MAX_REQUEST_BYTES + 1], false).is_err());
    }
}
