//! What to do with an answer to a batch, and how long to wait before the
//! next try.

use crate::time::parse_http_date;

/// The longest `Retry-After` honoured; a bigger value is taken as a day.
pub const MAX_RETRY_AFTER_MS: f64 = 86_400_000.0;

/// What an answer means for the batch it answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// 2xx: the events are stored.
    Delivered,
    /// Network error, 408, 429, 5xx (and the unexpected 1xx/3xx): try
    /// again later with the same message ids.
    Retry,
    /// 413: the batch is too large for the endpoint; send it in halves.
    Split,
    /// Any other 4xx: the endpoint will never take this batch; drop it.
    Reject,
}

/// The verdict for an HTTP status; 0 stands for a network error.
pub fn classify(status: u16) -> Verdict {
    match status {
        200..=299 => Verdict::Delivered,
        413 => Verdict::Split,
        408 | 429 => Verdict::Retry,
        400..=499 => Verdict::Reject,
        _ => Verdict::Retry,
    }
}

/// Exponential backoff with full jitter.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Backoff {
    /// Delay ceiling of the first retry.
    pub base_ms: f64,
    /// Delay ceiling of any retry.
    pub cap_ms: f64,
}

impl Backoff {
    /// The wait before retry number `attempt` (1 for the first retry):
    /// uniform in `[0, min(cap, base * 2^(attempt-1)))`, `random` in
    /// `[0, 1)`. Full jitter spreads a crowd of clients after an outage.
    pub fn delay_ms(&self, attempt: u32, random: f64) -> f64 {
        let exp = attempt.saturating_sub(1).min(52);
        let ceiling = (self.base_ms * (1u64 << exp) as f64).min(self.cap_ms);
        ceiling * random.clamp(0.0, 1.0)
    }
}

/// The wait a `Retry-After` header asks for, from `now_ms`: delta seconds
/// or an HTTP date. `None` when the value is neither.
pub fn retry_after_ms(value: &str, now_ms: f64) -> Option<f64> {
    let value = value.trim();
    let wait = if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        value
            .parse::<u64>()
            .map_or(MAX_RETRY_AFTER_MS, |secs| secs as f64 * 1000.0)
    } else {
        parse_http_date(value)? - now_ms
    };
    Some(wait.clamp(0.0, MAX_RETRY_AFTER_MS))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_the_delivery_contract() {
        assert_eq!(classify(200), Verdict::Delivered);
        assert_eq!(classify(204), Verdict::Delivered);
        for retry in [0, 408, 429, 500, 502, 503, 504, 301, 100] {
            assert_eq!(classify(retry), Verdict::Retry, "{retry}");
        }
        assert_eq!(classify(413), Verdict::Split);
        for reject in [400, 401, 403, 404, 422] {
            assert_eq!(classify(reject), Verdict::Reject, "{reject}");
        }
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_with_full_jitter() {
        let b = Backoff {
            base_ms: 1000.0,
            cap_ms: 300_000.0,
        };
        assert_eq!(b.delay_ms(1, 0.999_999), 999.999);
        assert_eq!(b.delay_ms(2, 0.5), 1000.0);
        assert_eq!(b.delay_ms(4, 0.5), 4000.0);
        assert_eq!(b.delay_ms(20, 0.5), 150_000.0);
        assert_eq!(b.delay_ms(u32::MAX, 1.0), 300_000.0);
        assert_eq!(b.delay_ms(3, 0.0), 0.0);
    }

    #[test]
    fn retry_after_takes_seconds_or_dates() {
        assert_eq!(retry_after_ms("120", 0.0), Some(120_000.0));
        assert_eq!(retry_after_ms(" 0 ", 0.0), Some(0.0));
        let now = crate::time::parse_rfc3339("2026-11-23T10:00:00Z").unwrap();
        assert_eq!(
            retry_after_ms("Mon, 23 Nov 2026 10:00:30 GMT", now),
            Some(30_000.0)
        );
        assert_eq!(
            retry_after_ms("Mon, 23 Nov 2026 09:00:00 GMT", now),
            Some(0.0),
            "past dates mean now"
        );
        assert_eq!(retry_after_ms("soon", now), None);
        assert_eq!(retry_after_ms("-5", now), None);
        assert_eq!(retry_after_ms("999999999", 0.0), Some(MAX_RETRY_AFTER_MS));
    }
}
