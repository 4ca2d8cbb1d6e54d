//! Retention and bounce rate by segment, beside conversion and AOV.
//!
//! Both need each user's sessions in time order, which no per-batch
//! rollup can keep (a session spans batches, and batches arrive out of
//! order after an offline spell). So they are computed from the events,
//! a user at a time ([`crate::db::Db::for_each_user`]), by a
//! background task every few minutes; the dashboard shows the latest
//! result and when it was computed. Nothing holds a lock while it runs.
//!
//! - A session ends after 30 minutes without an event (as the SDK's).
//! - Bounce rate: of the segment's sessions with a page view, the share
//!   with exactly one.
//! - Retention: of the segment's users, the share who came back: a session
//!   that starts within 30 days of the end of an earlier one.
//! - A user's segment is that of their latest event, as for sizes.

use crate::db::{Db, Defined};
use crate::ingest::StoredEvent;
use segmint_core::json::Value;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

const SESSION_GAP: f64 = 30.0 * 60_000.0;
const RETURN_WITHIN: f64 = 30.0 * 86_400_000.0;

/// One segment's counts.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SegmentKpis {
    /// Users whose latest event puts them in the segment.
    pub users: usize,
    /// Of them, users who came back within 30 days of a visit.
    pub retained: usize,
    /// Their sessions with at least one page view.
    pub sessions: usize,
    /// Of those, sessions with exactly one.
    pub bounced: usize,
}

impl SegmentKpis {
    /// Share of users retained (`None` without users).
    pub fn retention(&self) -> Option<f64> {
        (self.users > 0).then(|| self.retained as f64 / self.users as f64)
    }

    /// Share of sessions that bounced (`None` without sessions).
    pub fn bounce_rate(&self) -> Option<f64> {
        (self.sessions > 0).then(|| self.bounced as f64 / self.sessions as f64)
    }
}

/// The figures of every segment, and when they were computed (ms).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Kpis {
    /// When.
    pub at: f64,
    /// Per segment id.
    pub by_segment: HashMap<String, SegmentKpis>,
}

/// What one user's events (in time order) add: (came back, sessions with
/// a page view, of them with one page view).
pub fn of_user(events: &[StoredEvent]) -> (bool, usize, usize) {
    let mut sessions: Vec<(f64, f64, usize)> = Vec::new(); // start, end, pages
    for e in events {
        let page = usize::from(e.kind == "page");
        match sessions.last_mut() {
            Some((_, end, pages)) if e.timestamp - *end <= SESSION_GAP => {
                *end = end.max(e.timestamp);
                *pages += page;
            }
            _ => sessions.push((e.timestamp, e.timestamp, page)),
        }
    }
    let came_back = sessions
        .windows(2)
        .any(|w| matches!(w, [(_, end, _), (start, _, _)] if start - end <= RETURN_WITHIN));
    let viewed = sessions.iter().filter(|(_, _, p)| *p > 0).count();
    let bounced = sessions.iter().filter(|(_, _, p)| *p == 1).count();
    (came_back, viewed, bounced)
}

/// The defined segments of a user's latest event.
fn latest_segments<'a>(events: &[StoredEvent], defined: &'a Defined) -> Vec<&'a String> {
    let Some(last) = events.last() else {
        return Vec::new();
    };
    match Value::parse(&last.segments) {
        Ok(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .filter_map(|s| defined.get(s))
            .collect(),
        _ => Vec::new(),
    }
}

/// Reads every user's events and counts, per defined segment.
pub async fn compute(db: &Db, defined: &Defined, now: f64) -> Result<Kpis, String> {
    let mut kpis = Kpis {
        at: now,
        by_segment: HashMap::new(),
    };
    db.for_each_user(|events| {
        let segments = latest_segments(events, defined);
        if segments.is_empty() {
            return;
        }
        let (came_back, sessions, bounced) = of_user(events);
        for s in segments {
            let k = kpis.by_segment.entry(s.clone()).or_default();
            k.users += 1;
            k.retained += usize::from(came_back);
            k.sessions += sessions;
            k.bounced += bounced;
        }
    })
    .await?;
    Ok(kpis)
}

/// The latest figures, shared with the handlers.
pub type Latest = Arc<RwLock<Option<Arc<Kpis>>>>;

/// Recomputes the figures every `every`, for as long as the process runs.
pub async fn keep_fresh(
    db: Db,
    rules: crate::rules::RulesState,
    latest: Latest,
    every: std::time::Duration,
) {
    loop {
        match compute(&db, &rules.defined(), crate::now_ms()).await {
            Ok(k) => {
                if let Ok(mut slot) = latest.write() {
                    *slot = Some(Arc::new(k));
                }
            }
            Err(e) => eprintln!("segmint-collector: computing retention and bounce failed: {e}"),
        }
        tokio::time::sleep(every).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: &str, minutes: f64) -> StoredEvent {
        StoredEvent {
            message_id: format!("m{minutes}"),
            received_at: 0.0,
            timestamp: minutes * 60_000.0,
            kind: kind.into(),
            event: None,
            anonymous_id: Some("a".into()),
            user_id: None,
            segments: "[]".into(),
            promo_segment: None,
            promo_variation: None,
            order_total: None,
            order_id: None,
            bot: false,
            body: String::new(),
        }
    }

    #[test]
    fn sessions_bounces_and_returns() {
        // One page and leave: a bounce, no return.
        assert_eq!(of_user(&[event("page", 0.0)]), (false, 1, 1));
        // Two pages in a session, then a one-page visit 3 days later.
        let day = 24.0 * 60.0;
        let visits = [
            event("page", 0.0),
            event("track", 5.0),
            event("page", 20.0),
            event("page", 3.0 * day),
        ];
        assert_eq!(of_user(&visits), (true, 2, 1));
        // Back after 40 days is not retention within 30.
        assert_eq!(
            of_user(&[event("page", 0.0), event("page", 40.0 * day)]),
            (false, 2, 2)
        );
        // A session of events without a page view is not counted.
        assert_eq!(of_user(&[event("track", 0.0)]), (false, 0, 0));
    }

    #[test]
    fn shares_say_none_without_users() {
        let k = SegmentKpis::default();
        assert_eq!((k.retention(), k.bounce_rate()), (None, None));
        let k = SegmentKpis {
            users: 4,
            retained: 1,
            sessions: 10,
            bounced: 5,
        };
        assert_eq!((k.retention(), k.bounce_rate()), (Some(0.25), Some(0.5)));
    }
}
