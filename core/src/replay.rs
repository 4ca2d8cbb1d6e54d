//! A user's segments recomputed from their stored messages, the way the
//! browser computed them: the collector uses this to check (and to show)
//! that a segment means the same thing on the server as on the device.

use crate::condition::Host;
use crate::json::Value;
use crate::message::PageInfo;
use crate::profile::Profile;
use crate::rules::Rules;
use crate::segments::{attributes, evaluate};
use crate::time::parse_rfc3339;
use crate::tracker::{IDENTIFY_EVENT, PAGE_EVENT};

/// What a replay found.
#[derive(Clone, Debug, PartialEq)]
pub struct Replayed {
    /// Segments after the last message, highest priority first.
    pub segments: Vec<String>,
    /// Traits from `identify` and computed ones, at the last message.
    pub traits: Value,
    /// The segments the last message carried in `context.segments`.
    pub reported: Vec<String>,
}

fn text(v: Option<&Value>) -> String {
    v.and_then(Value::as_str).unwrap_or_default().to_string()
}

/// The page a message was recorded on, from its context.
pub fn page_of(message: &Value) -> PageInfo {
    let ctx = message.get("context");
    let page = ctx.and_then(|c| c.get("page"));
    PageInfo {
        url: text(page.and_then(|p| p.get("url"))),
        path: text(page.and_then(|p| p.get("path"))),
        search: text(page.and_then(|p| p.get("search"))),
        referrer: text(page.and_then(|p| p.get("referrer"))),
        title: text(page.and_then(|p| p.get("title"))),
        user_agent: text(ctx.and_then(|c| c.get("userAgent"))),
        locale: text(ctx.and_then(|c| c.get("locale"))),
    }
}

/// Replays one user's Segment-format messages (in recording order)
/// through a profile under `rules`, as the tracker does, and evaluates
/// the segments at the last one. `None` for no messages.
pub fn replay(
    rules: &Rules,
    messages: &[Value],
    host: &dyn Host,
    session_timeout_ms: f64,
) -> Option<Replayed> {
    let first = messages.first()?;
    let time_of = |m: &Value| {
        m.get("timestamp")
            .and_then(Value::as_str)
            .and_then(parse_rfc3339)
            .unwrap_or(0.0)
    };
    let start = time_of(first);
    let mut profile = Profile::new(start, session_timeout_ms);
    profile.apply_rules(rules, start);
    let mut user_traits = Value::Object(Vec::new());
    let mut now = start;
    for m in messages {
        now = time_of(m);
        let kind = m.get("type").and_then(Value::as_str).unwrap_or_default();
        let (name, props) = match kind {
            "track" => (text(m.get("event")), m.get("properties")),
            "page" => (PAGE_EVENT.to_string(), m.get("properties")),
            "identify" => {
                if let Some(Value::Object(given)) = m.get("traits") {
                    for (k, v) in given {
                        user_traits.insert(k, v.clone());
                    }
                }
                (IDENTIFY_EVENT.to_string(), m.get("traits"))
            }
            _ => continue,
        };
        profile.record(&name, props, now);
    }
    let last = messages.last()?;
    let computed = profile.traits(now);
    let attrs = attributes(&user_traits, computed.clone(), &page_of(last));
    let mut traits = user_traits;
    for (k, v) in computed {
        traits.insert(&k, v);
    }
    let reported = last
        .get("context")
        .and_then(|c| c.get("segments"))
        .and_then(Value::strings)
        .unwrap_or_default();
    Some(Replayed {
        segments: evaluate(rules, &attrs, host),
        traits,
        reported,
    })
}
