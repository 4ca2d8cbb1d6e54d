//! Reading a `POST /v1/batch` body: Segment's batch format, checked
//! against its limits, parsed with segmint-core's own JSON so the server
//! reads exactly what the SDK writes.

use flate2::read::GzDecoder;
use segmint_core::json::Value;
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
        return Err(bad(format!(
            "request body is over the 500 KB limit ({} bytes or more)",
            bytes.len()
        )));
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

fn text(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_string)
}

/// Parses a batch body into events to store. `write_key`: when set, the
/// batch's `writeKey` (or the Basic user name) must match it.
pub fn parse_batch(
    body: &str,
    received_at: f64,
    write_key: Option<&str>,
    basic_user: Option<&str>,
) -> Result<Vec<StoredEvent>, Refusal> {
    let doc = Value::parse(body).map_err(|e| bad(format!("malformed JSON: {e}")))?;
    if let Some(expected) = write_key {
        let given = doc.get("writeKey").and_then(Value::as_str).or(basic_user);
        if given != Some(expected) {
            return Err(Refusal {
                status: 401,
                message: "missing or wrong writeKey".into(),
            });
        }
    }
    let batch = doc
        .get("batch")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("expected {\"batch\": [...]}"))?;
    // As Segment does: the device's clock may be off, but the time between
    // recording an event and sending its batch is right on any clock.
    let sent_at = doc
        .get("sentAt")
        .and_then(Value::as_str)
        .and_then(parse_rfc3339);
    let mut events = Vec::with_capacity(batch.len());
    for (i, m) in batch.iter().enumerate() {
        let at = |what: &str| bad(format!("batch[{i}]: {what}"));
        if m.as_object().is_none() {
            return Err(at("expected an object"));
        }
        let body = m.to_json();
        if body.len() > MAX_EVENT_BYTES {
            return Err(at(&format!(
                "{} bytes, over the 32 KB limit per event",
                body.len()
            )));
        }
        let message_id = match m.get("messageId") {
            Some(Value::String(id)) if !id.is_empty() && id.len() <= 200 => id.clone(),
            _ => return Err(at("messageId: expected a non-empty string")),
        };
        let kind = text(m, "type").ok_or_else(|| at("type: expected a string"))?;
        let anonymous_id = text(m, "anonymousId");
        let user_id = text(m, "userId");
        if anonymous_id.is_none() && user_id.is_none() {
            return Err(at("expected an anonymousId or a userId"));
        }
        let event = match kind.as_str() {
            "track" => Some(
                text(m, "event").ok_or_else(|| at("event: a track message needs an event name"))?,
            ),
            _ => text(m, "name"),
        };
        let timestamp = match m.get("timestamp") {
            None | Some(Value::Null) => received_at,
            Some(Value::String(t)) => {
                let device = parse_rfc3339(t)
                    .ok_or_else(|| at("timestamp: expected an RFC 3339 date-time"))?;
                sent_at.map_or(device, |sent| received_at - (sent - device).max(0.0))
            }
            Some(_) => return Err(at("timestamp: expected a string")),
        };
        let segments = m
            .get("context")
            .and_then(|c| c.get("segments"))
            .filter(|s| s.as_array().is_some())
            .map_or_else(|| "[]".to_string(), Value::to_json);
        let props = m.get("properties").cloned().unwrap_or_default();
        let (promo_segment, promo_variation, order_total) = match event.as_deref() {
            Some("Promotion Viewed") => (text(&props, "segment"), text(&props, "variation"), None),
            Some("Order Completed") => (None, None, order_value(&props)),
            _ => (None, None, None),
        };
        events.push(StoredEvent {
            message_id,
            received_at,
            timestamp,
            kind,
            event,
            anonymous_id,
            user_id,
            segments,
            promo_segment,
            promo_variation,
            order_total,
            body,
        });
    }
    Ok(events)
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
        assert_eq!(e.segments, r#"["x"]"#);
        // Received when sent: 1 s after the event, by the device's clock.
        let received = parse_rfc3339("2026-11-23T10:00:01Z").unwrap();
        let e = &parse_batch(&one(""), received, None, None).unwrap()[0];
        assert_eq!(e.timestamp, parse_rfc3339("2026-11-23T10:00:00Z").unwrap());
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
