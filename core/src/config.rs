//! The options of `load()`, validated: an unknown option or a bad value is
//! an error naming the option.

use crate::error::Error;
use crate::json::Value;
use crate::url::is_http_url;

/// Consent state (see DESIGN "Identity, consent, privacy").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Consent {
    /// Track, store and send (the default).
    Granted,
    /// Nothing written, nothing sent; events wait in memory.
    Pending,
    /// Nothing kept, nothing sent.
    Denied,
}

impl Consent {
    /// Parses `granted`, `pending` or `denied`.
    pub fn parse(text: &str) -> Option<Consent> {
        match text {
            "granted" => Some(Consent::Granted),
            "pending" => Some(Consent::Pending),
            "denied" => Some(Consent::Denied),
            _ => None,
        }
    }

    /// The option's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Consent::Granted => "granted",
            Consent::Pending => "pending",
            Consent::Denied => "denied",
        }
    }
}

/// Validated SDK options with their defaults.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// Collector base URL; batches go to `{endpoint}/v1/batch`.
    pub endpoint: String,
    /// Sent as `writeKey` in every batch.
    pub write_key: Option<String>,
    /// Where the rules document is fetched from.
    pub rules_url: Option<String>,
    /// An inline rules document (the raw JSON value).
    pub rules: Option<Value>,
    /// A cached rules document older than this is revalidated.
    pub rules_ttl_secs: f64,
    /// A batch goes out when this many events are queued. With gzip on,
    /// batches fill to this; uncompressed, `max_bytes` usually stops them
    /// first.
    pub max_events: usize,
    /// A batch never puts more than this many bytes on the wire
    /// (compressed, with gzip on; its JSON then goes up to Segment's
    /// 500 KB).
    pub max_bytes: usize,
    /// A batch goes out this long after the first queued event.
    pub flush_interval_ms: f64,
    /// The queue keeps at most this many events; the oldest are dropped.
    pub max_queue_events: usize,
    /// First retry delay (full jitter).
    pub retry_base_ms: f64,
    /// Longest retry delay.
    pub retry_cap_ms: f64,
    /// Name of the anonymous-id cookie.
    pub cookie_name: String,
    /// Cookie domain; `None` probes for the registrable domain.
    pub cookie_domain: Option<String>,
    /// Cookie lifetime, renewed on each visit.
    pub cookie_max_age_days: f64,
    /// Initial consent.
    pub consent: Consent,
    /// Whether `consent` was given explicitly (it then wins over GPC).
    pub consent_explicit: bool,
    /// Honour `navigator.globalPrivacyControl` (default true).
    pub respect_gpc: bool,
    /// Declarative click capture (`data-segmint-track`).
    pub capture_clicks: bool,
    /// Declarative search capture (`data-segmint-search`).
    pub capture_search: bool,
    /// Log events, batches, retries, rules and segment changes.
    pub debug: bool,
    /// gzip batch bodies (segmint's own encoder) once the endpoint says
    /// it accepts them (`Accept-Encoding: gzip` on an answer).
    pub compress: bool,
    /// A slot without a cached decision stays hidden at most this long.
    pub anti_flicker_timeout_ms: f64,
    /// Keep a slot's banner for the whole page view once shown.
    pub sticky: bool,
    /// A new session starts after this much inactivity.
    pub session_timeout_ms: f64,
    /// URL parameters (lower case) left out of the page's URL, query and
    /// referrer in every event (see [`crate::url::strip_params`]).
    pub strip_url_params: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            endpoint: String::new(),
            write_key: None,
            rules_url: None,
            rules: None,
            rules_ttl_secs: 300.0,
            max_events: 500,
            max_bytes: 60 * 1024,
            flush_interval_ms: 2000.0,
            max_queue_events: 10_000,
            retry_base_ms: 1000.0,
            retry_cap_ms: 300_000.0,
            cookie_name: "sgm_aid".into(),
            cookie_domain: None,
            cookie_max_age_days: 365.0,
            consent: Consent::Granted,
            consent_explicit: false,
            respect_gpc: true,
            capture_clicks: true,
            capture_search: true,
            debug: false,
            compress: true,
            anti_flicker_timeout_ms: 400.0,
            sticky: true,
            session_timeout_ms: 30.0 * 60_000.0,
            strip_url_params: Vec::new(),
        }
    }
}

fn invalid(option: &str, reason: impl Into<String>) -> Error {
    Error::InvalidOption {
        option: option.to_string(),
        reason: reason.into(),
    }
}

fn number(option: &str, value: &Value, min: f64, max: f64) -> Result<f64, Error> {
    // Numbers go through json::write_number, not `{}`: the wasm build
    // carries no float formatting of its own.
    let bound = |word: &str, limit: f64, n: f64| {
        let mut reason = format!("must be at {word} ");
        crate::json::write_number(&mut reason, limit);
        reason.push_str(", got ");
        crate::json::write_number(&mut reason, n);
        invalid(option, reason)
    };
    match value {
        Value::Number(n) if *n >= min && *n <= max => Ok(*n),
        Value::Number(n) if *n < min => Err(bound("least", min, *n)),
        Value::Number(n) => Err(bound("most", max, *n)),
        _ => Err(invalid(option, "expected a number")),
    }
}

fn integer(option: &str, value: &Value, min: f64, max: f64) -> Result<usize, Error> {
    let n = number(option, value, min, max)?;
    if n.fract() != 0.0 {
        return Err(invalid(option, "expected a whole number"));
    }
    Ok(n as usize)
}

fn boolean(option: &str, value: &Value) -> Result<bool, Error> {
    match value {
        Value::Bool(b) => Ok(*b),
        _ => Err(invalid(option, "expected true or false")),
    }
}

fn string<'a>(option: &str, value: &'a Value) -> Result<&'a str, Error> {
    value
        .as_str()
        .ok_or_else(|| invalid(option, "expected a string"))
}

fn url(option: &str, value: &Value) -> Result<String, Error> {
    let s = string(option, value)?;
    if is_http_url(s) {
        Ok(s.to_string())
    } else {
        Err(invalid(
            option,
            format!("expected an absolute http(s) URL, got \"{s}\""),
        ))
    }
}

fn members<'a>(option: &str, value: &'a Value) -> Result<&'a [(String, Value)], Error> {
    value
        .as_object()
        .ok_or_else(|| invalid(option, "expected an object"))
}

impl Config {
    /// Validates the options object given to `load()`.
    pub fn from_json(text: &str) -> Result<Config, Error> {
        let value = Value::parse(text).map_err(|e| invalid("options", e.to_string()))?;
        Config::from_value(&value)
    }

    /// Validates an options value.
    pub fn from_value(value: &Value) -> Result<Config, Error> {
        let mut c = Config::default();
        let mut endpoint = None;
        for (key, v) in members("options", value)? {
            // `undefined` options arrive as absent; an explicit null means
            // "use the default", as most JS APIs treat it.
            if *v == Value::Null {
                continue;
            }
            match key.as_str() {
                "endpoint" => {
                    let base = url("endpoint", v)?;
                    // `/v1/batch` is appended to it: a query or fragment
                    // would swallow that path.
                    if base.contains(['?', '#']) {
                        return Err(invalid(
                            "endpoint",
                            format!("expected a base URL without ?query or #fragment (batches go to {{endpoint}}/v1/batch), got \"{base}\""),
                        ));
                    }
                    endpoint = Some(base);
                }
                "writeKey" => c.write_key = Some(string("writeKey", v)?.to_string()),
                "rulesUrl" => c.rules_url = Some(url("rulesUrl", v)?),
                "rules" => {
                    members("rules", v)?;
                    c.rules = Some(v.clone());
                }
                "rulesTtlSeconds" => c.rules_ttl_secs = number(key, v, 0.0, 1e9)?,
                "maxEvents" => c.max_events = integer(key, v, 1.0, 10_000.0)?,
                "maxBytes" => c.max_bytes = integer(key, v, 1024.0, 512_000.0)?,
                "flushIntervalMs" => c.flush_interval_ms = number(key, v, 0.0, 86_400_000.0)?,
                "maxQueueEvents" => c.max_queue_events = integer(key, v, 1.0, 1_000_000.0)?,
                "retry" => {
                    for (k, rv) in members("retry", v)? {
                        match k.as_str() {
                            "baseMs" => {
                                c.retry_base_ms = number("retry.baseMs", rv, 0.0, 86_400_000.0)?
                            }
                            "capMs" => {
                                c.retry_cap_ms = number("retry.capMs", rv, 0.0, 86_400_000.0)?
                            }
                            _ => return Err(invalid(&format!("retry.{k}"), "unknown option")),
                        }
                    }
                }
                "cookie" => {
                    for (k, cv) in members("cookie", v)? {
                        match k.as_str() {
                            "name" => {
                                let name = string("cookie.name", cv)?;
                                if name.is_empty()
                                    || !name.bytes().all(|b| {
                                        b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
                                    })
                                {
                                    return Err(invalid(
                                        "cookie.name",
                                        "use letters, digits, '_' or '-'",
                                    ));
                                }
                                c.cookie_name = name.to_string();
                            }
                            "domain" => {
                                let domain = string("cookie.domain", cv)?.trim_start_matches('.');
                                if domain.is_empty()
                                    || !domain.bytes().all(|b| {
                                        b.is_ascii_alphanumeric() || b == b'.' || b == b'-'
                                    })
                                {
                                    return Err(invalid(
                                        "cookie.domain",
                                        "expected a domain name such as example.com",
                                    ));
                                }
                                c.cookie_domain = Some(domain.to_ascii_lowercase());
                            }
                            "maxAgeDays" => {
                                c.cookie_max_age_days =
                                    number("cookie.maxAgeDays", cv, 0.0, 3650.0)?
                            }
                            _ => return Err(invalid(&format!("cookie.{k}"), "unknown option")),
                        }
                    }
                }
                "consent" => {
                    c.consent = Consent::parse(string(key, v)?).ok_or_else(|| {
                        invalid(key, "expected \"granted\", \"pending\" or \"denied\"")
                    })?;
                    c.consent_explicit = true;
                }
                "respectGpc" => c.respect_gpc = boolean(key, v)?,
                "autocapture" => match v {
                    Value::Bool(b) => {
                        c.capture_clicks = *b;
                        c.capture_search = *b;
                    }
                    Value::Object(kinds) => {
                        for (k, kv) in kinds {
                            match k.as_str() {
                                "clicks" => c.capture_clicks = boolean("autocapture.clicks", kv)?,
                                "search" => c.capture_search = boolean("autocapture.search", kv)?,
                                _ => {
                                    return Err(invalid(
                                        &format!("autocapture.{k}"),
                                        "unknown option",
                                    ))
                                }
                            }
                        }
                    }
                    _ => return Err(invalid(key, "expected true, false or {clicks, search}")),
                },
                "debug" => c.debug = boolean(key, v)?,
                "compress" => c.compress = boolean(key, v)?,
                "antiFlickerTimeoutMs" => {
                    c.anti_flicker_timeout_ms = number(key, v, 0.0, 60_000.0)?
                }
                "sticky" => c.sticky = boolean(key, v)?,
                "sessionTimeoutMinutes" => {
                    c.session_timeout_ms = number(key, v, 1.0, 1440.0)? * 60_000.0
                }
                "stripUrlParams" => {
                    let bad = || {
                        invalid(
                            key,
                            "expected an array of parameter names, such as [\"email\", \"token\"]",
                        )
                    };
                    for name in v.as_array().ok_or_else(bad)? {
                        let name = name.as_str().filter(|n| !n.is_empty()).ok_or_else(bad)?;
                        c.strip_url_params.push(name.to_ascii_lowercase());
                    }
                }
                _ => return Err(invalid(key, "unknown option")),
            }
        }
        c.endpoint =
            endpoint.ok_or_else(|| invalid("endpoint", "required: the collector's URL"))?;
        if c.retry_cap_ms < c.retry_base_ms {
            return Err(invalid("retry.capMs", "must not be below retry.baseMs"));
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code_and_option(text: &str) -> (String, String) {
        match Config::from_json(text) {
            Err(Error::InvalidOption { option, .. }) => ("invalid_option".into(), option),
            other => panic!("expected an invalid option, got {other:?}"),
        }
    }

    #[test]
    fn defaults_fill_in() {
        let c = Config::from_json(r#"{"endpoint":"https://c.example"}"#).unwrap();
        assert_eq!(c.max_events, 500);
        assert_eq!(c.max_bytes, 61_440);
        assert_eq!(c.flush_interval_ms, 2000.0);
        assert_eq!(c.cookie_name, "sgm_aid");
        assert_eq!(c.consent, Consent::Granted);
        assert!(!c.consent_explicit);
    }

    #[test]
    fn reads_every_option() {
        let c = Config::from_json(
            r#"{"endpoint":"http://127.0.0.1:9","writeKey":"k","rulesUrl":"http://127.0.0.1:9/v1/rules",
            "rulesTtlSeconds":60,"maxEvents":10,"maxBytes":2048,"flushIntervalMs":0,"maxQueueEvents":5,
            "retry":{"baseMs":10,"capMs":100},"cookie":{"name":"aid","domain":".Example.com","maxAgeDays":30},
            "consent":"pending","respectGpc":false,"autocapture":{"clicks":false},"debug":true,"compress":false,
            "antiFlickerTimeoutMs":100,"sticky":false,"sessionTimeoutMinutes":10,"rules":{"segments":[]},
            "stripUrlParams":["Email","token"]}"#,
        )
        .unwrap();
        assert_eq!(c.cookie_domain.as_deref(), Some("example.com"));
        assert_eq!(c.consent, Consent::Pending);
        assert!(c.consent_explicit && !c.capture_clicks && c.capture_search && c.debug);
        assert_eq!(c.retry_cap_ms, 100.0);
        assert_eq!(c.session_timeout_ms, 600_000.0);
        assert!(c.rules.is_some());
        assert_eq!(c.strip_url_params, ["email", "token"]);
    }

    #[test]
    fn bad_options_name_themselves() {
        assert_eq!(
            code_and_option(r#"{"endpoint":"https://c.example","flushInterval":5}"#).1,
            "flushInterval"
        );
        assert_eq!(code_and_option(r#"{"endpoint":"collector"}"#).1, "endpoint");
        for with_query in ["https://c.example/in?key=1", "https://c.example/#x"] {
            let json = format!(r#"{{"endpoint":"{with_query}"}}"#);
            assert_eq!(code_and_option(&json).1, "endpoint", "{with_query}");
        }
        assert!(Config::from_json(r#"{"endpoint":"https://c.example/collect/"}"#).is_ok());
        assert_eq!(code_and_option(r#"{}"#).1, "endpoint");
        assert_eq!(
            code_and_option(r#"{"endpoint":"https://c.example","flushIntervalMs":-1}"#).1,
            "flushIntervalMs"
        );
        assert_eq!(
            code_and_option(r#"{"endpoint":"https://c.example","maxEvents":1.5}"#).1,
            "maxEvents"
        );
        assert_eq!(
            code_and_option(r#"{"endpoint":"https://c.example","cookie":{"domian":"x"}}"#).1,
            "cookie.domain".replace("domain", "domian")
        );
        assert_eq!(
            code_and_option(r#"{"endpoint":"https://c.example","consent":"yes"}"#).1,
            "consent"
        );
        assert_eq!(
            code_and_option(r#"{"endpoint":"https://c.example","retry":{"baseMs":10,"capMs":1}}"#)
                .1,
            "retry.capMs"
        );
        for bad in [r#""email""#, "[1]", r#"[""]"#, r#"{"email":true}"#] {
            let json = format!(r#"{{"endpoint":"https://c.example","stripUrlParams":{bad}}}"#);
            assert_eq!(code_and_option(&json).1, "stripUrlParams", "{bad}");
        }
        assert_eq!(code_and_option("[]").1, "options");
        assert_eq!(code_and_option("{").1, "options");
    }

    #[test]
    fn null_means_default() {
        let c = Config::from_json(r#"{"endpoint":"https://c.example","writeKey":null}"#).unwrap();
        assert_eq!(c.write_key, None);
    }
}
