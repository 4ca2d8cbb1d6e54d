//! Errors as values: every failure has a stable `code` that programs can
//! match on and a message that tells a person what to do.

use crate::json::{write_number, write_string};
use std::fmt;

/// Everything that can go wrong in segmint, as reported to the page.
#[derive(Clone, Debug, PartialEq)]
pub enum Error {
    /// An option passed to `load()` is unknown or has a bad value.
    InvalidOption {
        /// The option's name, e.g. `flushIntervalMs` or `cookie.domain`.
        option: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An argument of an API call has the wrong type or shape.
    InvalidArgument {
        /// The call and argument, e.g. `track(event)`.
        argument: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A value JSON cannot carry (function, symbol, BigInt, cycle, NaN,
    /// Infinity) was passed as properties or traits.
    Unserializable {
        /// Where in the value, e.g. `properties.price`.
        path: String,
        /// What was found there.
        reason: String,
    },
    /// One event is over the 32 KB per-event limit.
    EventTooLarge {
        /// The event's size in bytes.
        bytes: usize,
    },
    /// A commerce helper was called without a field its event requires.
    MissingField {
        /// The Segment e-commerce event name.
        event: &'static str,
        /// The field, e.g. `products[1].product_id`.
        field: String,
        /// What is expected of it.
        reason: &'static str,
    },
    /// The queue hit `maxQueueEvents`; the oldest events were dropped.
    QueueOverflow {
        /// How many events were dropped.
        dropped: usize,
    },
    /// The endpoint answered a batch with a status that is not retried
    /// (4xx other than 408, 413, 429): the batch was dropped.
    BatchRejected {
        /// The HTTP status.
        status: u16,
        /// How many events the batch held.
        events: usize,
    },
    /// A single event was answered 413 (too large for the endpoint) and
    /// dropped.
    EventRejected {
        /// The HTTP status (413).
        status: u16,
        /// The message id of the dropped event.
        message_id: String,
    },
    /// Persistent storage refused a write (quota, private mode, disabled):
    /// events are kept in memory only until it works again.
    StorageUnavailable {
        /// The browser's reason.
        reason: String,
    },
    /// Persisted data could not be read back; what could be read was kept.
    StorageCorrupt {
        /// What was damaged: `queue`, `profile`, `rules` ...
        what: &'static str,
        /// How many entries were skipped.
        skipped: usize,
    },
    /// A rules document failed validation.
    InvalidRules {
        /// Path of the problem, e.g. `segments[2].condition.purchases_30d.$gt`.
        path: String,
        /// What was expected there.
        reason: String,
    },
    /// The endpoint redirected a batch, and where the redirects ended did
    /// not take it: the events are kept and retried.
    EndpointRedirected {
        /// The status at the end of the redirects.
        status: u16,
        /// Where the redirects ended.
        to: String,
    },
    /// Fetching the rules document failed; the last good rules stay.
    RulesFetchFailed {
        /// HTTP status, or 0 for a network error.
        status: u16,
        /// What happened.
        reason: String,
    },
}

impl Error {
    /// The stable machine-readable code of this error.
    pub fn code(&self) -> &'static str {
        match self {
            Error::InvalidOption { .. } => "invalid_option",
            Error::InvalidArgument { .. } => "invalid_argument",
            Error::Unserializable { .. } => "unserializable_value",
            Error::EventTooLarge { .. } => "event_too_large",
            Error::MissingField { .. } => "missing_field",
            Error::QueueOverflow { .. } => "queue_overflow",
            Error::BatchRejected { .. } => "batch_rejected",
            Error::EventRejected { .. } => "event_rejected",
            Error::StorageUnavailable { .. } => "storage_unavailable",
            Error::StorageCorrupt { .. } => "storage_corrupt",
            Error::InvalidRules { .. } => "invalid_rules",
            Error::RulesFetchFailed { .. } => "rules_fetch_failed",
            Error::EndpointRedirected { .. } => "endpoint_redirected",
        }
    }

    /// `{"code":..,"message":..}` plus the variant's own fields, for JS.
    pub fn to_json(&self) -> String {
        let mut out = String::from("{\"code\":");
        write_string(&mut out, self.code());
        out.push_str(",\"message\":");
        write_string(&mut out, &self.to_string());
        let mut field = |name: &str, value: FieldValue| {
            out.push(',');
            write_string(&mut out, name);
            out.push(':');
            match value {
                FieldValue::Str(s) => write_string(&mut out, s),
                FieldValue::Num(n) => write_number(&mut out, n),
            }
        };
        match self {
            Error::InvalidOption { option, .. } => field("option", FieldValue::Str(option)),
            Error::InvalidArgument { argument, .. } => field("argument", FieldValue::Str(argument)),
            Error::Unserializable { path, .. } => field("path", FieldValue::Str(path)),
            Error::EventTooLarge { bytes } => field("bytes", FieldValue::Num(*bytes as f64)),
            Error::MissingField { field: name, .. } => field("field", FieldValue::Str(name)),
            Error::QueueOverflow { dropped } => field("dropped", FieldValue::Num(*dropped as f64)),
            Error::BatchRejected { status, events } => {
                field("status", FieldValue::Num(f64::from(*status)));
                field("events", FieldValue::Num(*events as f64));
            }
            Error::EventRejected { status, message_id } => {
                field("status", FieldValue::Num(f64::from(*status)));
                field("messageId", FieldValue::Str(message_id));
            }
            Error::StorageCorrupt { skipped, .. } => {
                field("skipped", FieldValue::Num(*skipped as f64))
            }
            Error::InvalidRules { path, .. } => field("path", FieldValue::Str(path)),
            Error::RulesFetchFailed { status, .. } => {
                field("status", FieldValue::Num(f64::from(*status)))
            }
            Error::EndpointRedirected { status, to } => {
                field("status", FieldValue::Num(f64::from(*status)));
                field("url", FieldValue::Str(to));
            }
            Error::StorageUnavailable { .. } => {}
        }
        out.push('}');
        out
    }
}

enum FieldValue<'a> {
    Str(&'a str),
    Num(f64),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidOption { option, reason } => write!(f, "option `{option}`: {reason}"),
            Error::InvalidArgument { argument, reason } => write!(f, "{argument}: {reason}"),
            Error::Unserializable { path, reason } => write!(
                f,
                "{path}: {reason} cannot be sent as JSON; pass strings, finite numbers, booleans, null, arrays or plain objects"
            ),
            Error::EventTooLarge { bytes } => write!(
                f,
                "event is {bytes} bytes, over the 32 KB limit per event; send fewer or shorter properties"
            ),
            Error::MissingField {
                event,
                field,
                reason,
            } => write!(f, "{event}: `{field}` {reason}"),
            Error::QueueOverflow { dropped } => write!(
                f,
                "the queue is full (maxQueueEvents): dropped the {dropped} oldest event(s)"
            ),
            Error::BatchRejected { status, events } => write!(
                f,
                "the endpoint rejected a batch of {events} event(s) with HTTP {status}; it was dropped, not retried"
            ),
            Error::EventRejected { status, message_id } => write!(
                f,
                "the endpoint rejected event {message_id} alone with HTTP {status}; it was dropped"
            ),
            Error::StorageUnavailable { reason } => write!(
                f,
                "storage refused a write ({reason}); events are kept in memory until it works again"
            ),
            Error::StorageCorrupt { what, skipped } => write!(
                f,
                "stored {what} was damaged: skipped {skipped} unreadable entr{}, kept the rest",
                if *skipped == 1 { "y" } else { "ies" }
            ),
            Error::InvalidRules { path, reason } => {
                if path.is_empty() {
                    write!(f, "rules document: {reason}")
                } else {
                    write!(f, "{path}: {reason}")
                }
            }
            Error::EndpointRedirected { status, to } => write!(
                f,
                "the endpoint redirected a batch to {to}, which answered HTTP {status}: set `endpoint` to where batches go (a redirect may drop the POST's body); the events are kept and retried"
            ),
            Error::RulesFetchFailed { status, reason } => {
                if *status == 0 {
                    write!(f, "could not fetch rules ({reason}); the last good rules stay in force")
                } else {
                    write!(
                        f,
                        "could not fetch rules: HTTP {status} ({reason}); the last good rules stay in force"
                    )
                }
            }
        }
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::Value;

    #[test]
    fn json_form_carries_code_message_and_fields() {
        let e = Error::BatchRejected {
            status: 400,
            events: 3,
        };
        let v = Value::parse(&e.to_json()).unwrap();
        assert_eq!(
            v.get("code").and_then(Value::as_str),
            Some("batch_rejected")
        );
        assert_eq!(v.get("status").and_then(Value::as_f64), Some(400.0));
        assert!(v
            .get("message")
            .and_then(Value::as_str)
            .unwrap()
            .contains("HTTP 400"));
    }

    #[test]
    fn rules_errors_start_with_the_path() {
        let e = Error::InvalidRules {
            path: "segments[2].condition.purchases_30d.$gt".into(),
            reason: "expected a number".into(),
        };
        assert_eq!(
            e.to_string(),
            "segments[2].condition.purchases_30d.$gt: expected a number"
        );
    }
}
