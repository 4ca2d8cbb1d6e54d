//! The rules document's cache and its revalidation: what is stored under
//! [`RULES_KEY`], when a fetch is due (`rulesTtlSeconds`, one request in
//! flight at a time), and what an answer means. Stale-while-revalidate:
//! cached rules are in force at once, and fetched again in the background
//! once older than the TTL.

use crate::error::Error;
use crate::json::{write_string, Value};
use crate::persister::format_ms;
use crate::rules::Rules;

/// The cached rules document with its ETag.
pub const RULES_KEY: &str = "sgm_rules";
/// How long a rules request counts as in flight without an answer.
const IN_FLIGHT_MS: f64 = 60_000.0;

/// A rules revalidation to make.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RulesRequest {
    /// Where.
    pub url: String,
    /// For `If-None-Match`.
    pub etag: Option<String>,
}

/// What an answer to a rules fetch brought.
pub enum Answer {
    /// 304: the cached document stays, fresh for another TTL.
    Unchanged,
    /// A new, valid document (its text is to be cached).
    New(Rules),
    /// Nothing usable; the last good rules stay in force.
    Failed(Error),
}

/// The cache's state in this page view.
#[derive(Clone, Debug)]
pub struct RulesCache {
    /// `rulesUrl`.
    url: Option<String>,
    ttl_ms: f64,
    etag: Option<String>,
    /// When the cached document was fetched (or last confirmed).
    fetched: f64,
    /// No request before this time: one is in flight, or the last failed
    /// (a broken endpoint is tried once per TTL, not per heartbeat).
    wait_until: f64,
}

impl RulesCache {
    /// The cache of the rules at `url`, fresh for `ttl_secs`.
    pub fn new(url: Option<String>, ttl_secs: f64) -> RulesCache {
        RulesCache {
            url,
            ttl_ms: ttl_secs * 1000.0,
            etag: None,
            fetched: f64::NEG_INFINITY,
            wait_until: f64::NEG_INFINITY,
        }
    }

    /// The rules of a cache entry (as stored under [`RULES_KEY`]) if it
    /// is for this page's rules URL; their ETag and fetch time are taken.
    /// `Err`: the entry's document is damaged.
    pub fn read(&mut self, entry: &str) -> Result<Option<Rules>, Error> {
        let Ok(entry) = Value::parse(entry) else {
            return Ok(None);
        };
        if entry.get("url").and_then(Value::as_str) != self.url.as_deref() {
            return Ok(None);
        }
        let Some(text) = entry.get("text").and_then(Value::as_str) else {
            return Ok(None);
        };
        let Ok(rules) = Rules::parse(text) else {
            // Fetched afresh, whatever `note` took.
            self.etag = None;
            self.fetched = f64::NEG_INFINITY;
            return Err(Error::StorageCorrupt {
                what: "rules",
                skipped: 1,
            });
        };
        self.take_times(&entry);
        Ok(Some(rules))
    }

    /// The ETag and fetch time of a cache entry for this page's rules URL,
    /// without reading its document (which waits for the segment engine):
    /// a fresh cached document is not fetched again meanwhile.
    pub fn note(&mut self, entry: &str) {
        if let Ok(entry) = Value::parse(entry) {
            if entry.get("url").and_then(Value::as_str) == self.url.as_deref() {
                self.take_times(&entry);
            }
        }
    }

    fn take_times(&mut self, entry: &Value) {
        self.etag = entry
            .get("etag")
            .and_then(Value::as_str)
            .map(str::to_string);
        self.fetched = entry
            .get("fetched")
            .and_then(Value::as_f64)
            .unwrap_or(f64::NEG_INFINITY);
    }

    /// The fetch to make now, if the cached document is missing or older
    /// than the TTL (`allowed`: consent allows requests). A request
    /// returned counts as in flight until answered (or for a minute), so
    /// none is made twice.
    pub fn request(&mut self, now: f64, allowed: bool) -> Option<RulesRequest> {
        let url = self.url.clone()?;
        if !allowed || now < self.wait_until || now - self.fetched < self.ttl_ms {
            return None;
        }
        self.wait_until = now + IN_FLIGHT_MS;
        Some(RulesRequest {
            url,
            etag: self.etag.clone(),
        })
    }

    /// Takes the answer to a fetch: 304 keeps the document, 2xx brings a
    /// new one (validated before use), anything else is a failure.
    pub fn answered(&mut self, status: u16, etag: Option<String>, text: &str, now: f64) -> Answer {
        // A failure waits a TTL before the next try; success makes the
        // document fresh for a TTL anyway.
        self.wait_until = now + self.ttl_ms;
        match status {
            304 => {
                self.fetched = now;
                Answer::Unchanged
            }
            200..=299 => match Rules::parse(text) {
                Ok(rules) => {
                    self.etag = etag;
                    self.fetched = now;
                    Answer::New(rules)
                }
                Err(e) => Answer::Failed(e),
            },
            0 => Answer::Failed(Error::RulesFetchFailed {
                status: 0,
                reason: "network error".into(),
            }),
            _ => Answer::Failed(Error::RulesFetchFailed {
                status,
                reason: "unexpected status".into(),
            }),
        }
    }

    /// The cache entry to store for document `text`.
    pub fn entry(&self, text: &str) -> String {
        let mut out = String::from("{\"url\":");
        write_string(&mut out, self.url.as_deref().unwrap_or_default());
        if let Some(etag) = &self.etag {
            out.push_str(",\"etag\":");
            write_string(&mut out, etag);
        }
        out.push_str(&format!(
            ",\"fetched\":{},\"text\":",
            format_ms(self.fetched)
        ));
        write_string(&mut out, text);
        out.push('}');
        out
    }

    /// The document text of a stored cache entry.
    pub fn text_of(entry: &str) -> Option<String> {
        let entry = Value::parse(entry).ok()?;
        Some(
            entry
                .get("text")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = r#"{"version":"v1","traits":{},"segments":[]}"#;
    const URL: &str = "https://c.example/v1/rules";

    #[test]
    fn one_request_at_a_time_once_per_ttl_and_only_with_consent() {
        let mut c = RulesCache::new(Some(URL.into()), 60.0);
        assert_eq!(c.request(0.0, false), None, "no consent, no request");
        let r = c.request(0.0, true).unwrap();
        assert_eq!((r.url.as_str(), r.etag), (URL, None));
        assert_eq!(c.request(1000.0, true), None, "in flight");
        assert!(matches!(
            c.answered(200, Some("\"e1\"".into()), DOC, 1000.0),
            Answer::New(_)
        ));
        assert_eq!(c.request(50_000.0, true), None, "fresh");
        let r = c.request(61_001.0, true).unwrap();
        assert_eq!(r.etag.as_deref(), Some("\"e1\""));
        assert!(matches!(
            c.answered(304, None, "", 61_100.0),
            Answer::Unchanged
        ));
        assert!(matches!(
            c.answered(500, None, "", 200_000.0),
            Answer::Failed(_)
        ));
        assert_eq!(
            c.request(200_000.0 + 59_000.0, true),
            None,
            "a failure waits a TTL"
        );
        assert!(matches!(
            c.answered(200, None, "{", 0.0),
            Answer::Failed(Error::InvalidRules { .. })
        ));
    }

    #[test]
    fn an_entry_reads_back_for_its_url_only() {
        let mut c = RulesCache::new(Some(URL.into()), 60.0);
        c.answered(200, Some("\"e1\"".into()), DOC, 1234.0);
        let entry = c.entry(DOC);
        let mut fresh = RulesCache::new(Some(URL.into()), 60.0);
        assert_eq!(fresh.read(&entry).unwrap().unwrap().version, "v1");
        assert_eq!(
            fresh.request(2000.0, true),
            None,
            "its fetch time came along"
        );
        let mut other = RulesCache::new(Some("https://other/rules".into()), 60.0);
        assert!(other.read(&entry).unwrap().is_none());
        let damaged = entry.replace("segments", "segmints");
        assert!(fresh.read(&damaged).is_err());
        assert_eq!(RulesCache::text_of(&entry).as_deref(), Some(DOC));
    }
}
