//! The dashboard's figures beyond conversion: retention and bounce by
//! segment, the lift's two tests and their minimum sample, charts drawn at
//! the width asked for, and the favicon.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::Collector;
use segmint_core::json::Value;
use std::time::{Duration, Instant};

fn page(id: &str, user: &str, at: &str) -> String {
    format!(
        r#"{{"type":"page","messageId":"{id}","anonymousId":"{user}","timestamp":"{at}","context":{{"segments":["new-user"]}}}}"#
    )
}

fn exposure(id: &str, user: &str, variation: &str) -> String {
    format!(
        r#"{{"type":"track","event":"Promotion Viewed","messageId":"{id}","anonymousId":"{user}","timestamp":"2026-11-20T10:00:00.000Z","properties":{{"segment":"new-user","variation":"{variation}"}},"context":{{"segments":["new-user"]}}}}"#
    )
}

fn segment<'a>(summary: &'a Value, id: &str) -> &'a Value {
    summary
        .get("segments")
        .and_then(Value::as_array)
        .unwrap()
        .iter()
        .find(|s| s.get("id").and_then(Value::as_str) == Some(id))
        .unwrap()
}

#[test]
fn retention_bounce_and_the_lift_as_the_dashboard_shows_them() {
    let dir = common::temp_dir("dashboard");
    let rules = common::rules_copy(&dir);
    let c = Collector::start(
        &format!("sqlite:{}", dir.join("e.db").display()),
        &["--rules", rules.to_str().unwrap(), "--kpi-interval", "1"],
    );
    // a: two pages in one session, then one page two days later (came
    // back; one bounce). b: one page, gone (a bounce).
    let events = [
        page("a1", "a", "2026-11-20T10:00:00.000Z"),
        page("a2", "a", "2026-11-20T10:05:00.000Z"),
        page("a3", "a", "2026-11-22T09:00:00.000Z"),
        page("b1", "b", "2026-11-21T12:00:00.000Z"),
    ];
    let body = format!(
        r#"{{"batch":[{}],"sentAt":"2026-11-22T09:00:01.000Z"}}"#,
        events.join(",")
    );
    assert_eq!(c.post("/v1/batch", &body).status, 200);
    let start = Instant::now();
    let v = loop {
        let v = Value::parse(&c.get("/api/summary").body).unwrap();
        if segment(&v, "new-user").get("retention") != Some(&Value::Null) {
            break v;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no retention computed"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let g = segment(&v, "new-user");
    let n = |k: &str| g.get(k).and_then(Value::as_f64).unwrap();
    assert_eq!(n("retention"), 0.5);
    assert!((n("bounceRate") - 2.0 / 3.0).abs() < 1e-12);
    assert_eq!(
        segment(&v, "frequent-buyer").get("retention"),
        Some(&Value::Null)
    );
    assert_eq!(
        v.get("minExposedPerArm").and_then(Value::as_f64),
        Some(30.0)
    );

    // One held-out user is not enough data; 30 in each arm is.
    let few: Vec<String> = (0..6)
        .map(|i| exposure(&format!("p{i}"), &format!("u{i}"), "personalized"))
        .chain([exposure("h0", "h-user", "holdout")])
        .collect();
    let body = format!(r#"{{"batch":[{}]}}"#, few.join(","));
    assert_eq!(c.post("/v1/batch", &body).status, 200);
    let v = Value::parse(&c.get("/api/summary").body).unwrap();
    assert_eq!(segment(&v, "new-user").get("lift"), Some(&Value::Null));
    let more: Vec<String> = (0..30)
        .flat_map(|i| {
            [
                exposure(&format!("mp{i}"), &format!("mp-{i}"), "personalized"),
                exposure(&format!("mh{i}"), &format!("mh-{i}"), "holdout"),
            ]
        })
        .collect();
    let body = format!(r#"{{"batch":[{}]}}"#, more.join(","));
    assert_eq!(c.post("/v1/batch", &body).status, 200);
    let v = Value::parse(&c.get("/api/summary").body).unwrap();
    let lift = segment(&v, "new-user").get("lift").unwrap();
    for test in ["sequential", "fixedHorizon"] {
        let t = lift.get(test).unwrap();
        assert_eq!(t.get("ci95").and_then(Value::as_array).unwrap().len(), 2);
        assert!(t.get("pValue").and_then(Value::as_f64).is_some(), "{test}");
    }

    // Charts at the width asked for, within bounds.
    for (asked, drawn) in [("390", "390"), ("1280", "1280"), ("20", "280")] {
        let r = c.get(&format!("/dashboard/charts/conversion.svg?w={asked}"));
        assert_eq!(r.status, 200);
        assert!(
            r.body.contains(&format!("width=\"{drawn}\"")),
            "{asked}: {}",
            &r.body[..200]
        );
    }
    let r = c.get("/favicon.ico");
    assert_eq!(
        (r.status, r.header("Content-Type")),
        (200, Some("image/svg+xml"))
    );
    let _ = std::fs::remove_dir_all(dir);
}
