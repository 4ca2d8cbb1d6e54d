//! Segment's HTTP Tracking API on the collector: every path its clients
//! post to, the write key where they put it, and one user across SDKs.
//! Run against SQLite and a real PostgreSQL server. (Segment's own
//! clients are tested against it in e2e/segment-clients.test.mjs.)
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::{stored, ClickHouse, Collector, Postgres};
use segmint_core::json::Value;

const KEY: &str = "s3cret";
/// `Authorization: Basic` with KEY as the user name and no password, as
/// Segment's server libraries send it.
const BASIC: (&str, &str) = ("Authorization", "Basic czNjcmV0Og==");

fn now() -> String {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as f64;
    let mut out = String::new();
    segmint_core::time::write_rfc3339(&mut out, ms);
    out
}

fn post_basic(c: &Collector, path: &str, body: &str) -> common::Response {
    c.request(
        "POST",
        path,
        &[("Content-Type", "application/json"), BASIC],
        body.as_bytes(),
    )
}

fn segment_api(database: &str) {
    let rules = concat!(env!("CARGO_MANIFEST_DIR"), "/../rules.json");
    let c = Collector::start(
        database,
        &[
            "--write-key",
            KEY,
            "--rules",
            rules,
            "--allow-origin",
            "http://shop.example",
        ],
    );
    let at = now();

    // One message per path, the type from the path (the long paths need
    // none in the body; the short ones are analytics.js's).
    let one = |id: &str, extra: &str| {
        format!(
            r#"{{"messageId":"{id}","anonymousId":"seg-anon","timestamp":"{at}","sentAt":"{at}"{extra}}}"#
        )
    };
    let singles = [
        (
            "/v1/track",
            one(
                "m-track",
                r#","event":"Product Viewed","properties":{"price":10}"#,
            ),
        ),
        ("/v1/page", one("m-page", r#","name":"Home""#)),
        ("/v1/screen", one("m-screen", r#","name":"Cart""#)),
        (
            "/v1/identify",
            one("m-identify", r#","userId":"u-9","traits":{"plan":"gold"}"#),
        ),
        ("/v1/group", one("m-group", r#","groupId":"g-1""#)),
        (
            "/v1/alias",
            one("m-alias", r#","userId":"u-9","previousId":"seg-anon""#),
        ),
    ];
    for (path, body) in &singles {
        let r = post_basic(&c, path, body);
        assert_eq!(
            (r.status, r.body.as_str()),
            (200, r#"{"success":true}"#),
            "{path}"
        );
    }
    // analytics.js's short paths, the key in the body (its per-event
    // delivery puts it there and in Basic auth both).
    let short = [
        ("/v1/t", r#","type":"track","event":"Product Clicked""#),
        ("/v1/p", r#","type":"page""#),
        ("/v1/s", r#","type":"screen""#),
        ("/v1/i", r#","type":"identify","userId":"u-9""#),
        ("/v1/g", r#","type":"group","groupId":"g-1""#),
        ("/v1/a", r#","type":"alias","userId":"u-9""#),
    ];
    for (path, extra) in short {
        let id = format!("m{}", path.replace('/', "-"));
        let body = one(&id, &format!(r#"{extra},"writeKey":"{KEY}""#));
        let r = c.post(path, &body);
        assert_eq!(r.status, 200, "{path}: {}", r.body);
    }
    assert_eq!(stored(&c), 12.0);

    // Batches: /v1/import as Segment's server libraries post it, /v1/b as
    // analytics.js does (the key in the body and in Basic auth).
    let batch = |prefix: &str| {
        format!(
            r#"{{"batch":[{},{}],"sentAt":"{at}"}}"#,
            one(
                &format!("{prefix}-1"),
                r#","type":"track","event":"Order Completed","userId":"u-9","properties":{"order_id":"o-1","products":[{"price":10}]}"#
            ),
            one(&format!("{prefix}-2"), r#","type":"page""#)
        )
    };
    assert_eq!(post_basic(&c, "/v1/import", &batch("imp")).status, 200);
    let with_key = batch("b").replacen(
        "{\"batch\"",
        &format!("{{\"writeKey\":\"{KEY}\",\"batch\""),
        1,
    );
    assert_eq!(c.post("/v1/b", &with_key).status, 200);
    assert_eq!(stored(&c), 16.0);

    // Idempotent by messageId on every path.
    assert_eq!(post_basic(&c, "/v1/track", &singles[0].1).status, 200);
    assert_eq!(c.post("/v1/b", &with_key).status, 200);
    assert_eq!(stored(&c), 16.0, "a resent message is stored once");

    // The same checks as /v1/batch: the key, the message, JSON errors.
    let r = c.post("/v1/track", &one("m-nokey", r#","event":"E""#));
    assert_eq!(r.status, 401, "{}", r.body);
    assert!(r.body.contains("writeKey"), "{}", r.body);
    let r = post_basic(&c, "/v1/track", r#"{"messageId":"m-x","anonymousId":"a"}"#);
    assert_eq!(r.status, 400);
    assert!(r.body.contains("event name"), "{}", r.body);
    let r = post_basic(&c, "/v1/identify", r#"{"messageId":"m-y"}"#);
    assert_eq!(r.status, 400);
    assert!(r.body.contains("anonymousId or a userId"), "{}", r.body);
    assert_eq!(post_basic(&c, "/v1/page", "[1]").status, 400);
    assert_eq!(post_basic(&c, "/v1/t", "{").status, 400);
    assert_eq!(stored(&c), 16.0);

    // analytics.js's own delivery counters: acknowledged, not stored.
    let metrics =
        r#"{"series":[{"type":"Counter","metric":"analytics_js.invoke","value":1,"tags":{}}]}"#;
    assert_eq!(c.post("/v1/m", metrics).status, 204);
    assert_eq!(stored(&c), 16.0);

    // CORS as on /v1/batch, with the headers analytics.js sends.
    let r = c.request(
        "OPTIONS",
        "/v1/t",
        &[
            ("Origin", "http://shop.example"),
            ("Access-Control-Request-Method", "POST"),
            (
                "Access-Control-Request-Headers",
                "authorization,x-retry-count",
            ),
        ],
        b"",
    );
    assert_eq!(r.status, 204);
    let allowed = r
        .header("Access-Control-Allow-Headers")
        .unwrap_or_default()
        .to_ascii_lowercase();
    assert!(
        allowed.contains("authorization") && allowed.contains("x-retry-count"),
        "{allowed}"
    );

    // One user across SDKs: segmint's visitor (its own anonymous id) is
    // identified as u-9, whom Segment's SDK saw buy for 10 under another
    // anonymous id; the server's evaluation sees that order.
    let segmint_batch = format!(
        r#"{{"batch":[{{"type":"identify","userId":"u-9","messageId":"sgm-1","anonymousId":"sgm-anon","timestamp":"{at}","context":{{"segments":[]}}}}],"sentAt":"{at}","writeKey":"{KEY}"}}"#
    );
    assert_eq!(c.post("/v1/batch", &segmint_batch).status, 200);
    for id in ["sgm-anon", "seg-anon", "u-9"] {
        let r = c.get(&format!("/api/users/{id}/segments"));
        assert_eq!(r.status, 200, "{id}: {}", r.body);
        let v = Value::parse(&r.body).unwrap();
        assert_eq!(
            v.get("events").and_then(Value::as_f64),
            Some(17.0),
            "{id}: {}",
            r.body
        );
        let server = v.get("server").unwrap().to_json();
        assert!(server.contains("bargain-hunter"), "{id}: {server}");
    }
}

#[test]
fn sqlite() {
    let dir = common::temp_dir("segment-api");
    let path = dir.join("events.db");
    segment_api(&format!("sqlite:{}", path.display()));
    // The type the path names is stored; the key is not.
    let conn = rusqlite::Connection::open(&path).unwrap();
    let (kind, body): (String, String) = conn
        .query_row(
            "SELECT kind, body FROM events WHERE message_id = 'm-track'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(kind, "track");
    assert!(body.contains(r#""type":"track""#), "{body}");
    let keyed: String = conn
        .query_row(
            "SELECT body FROM events WHERE message_id = 'm-v1-t'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(!keyed.contains(KEY), "{keyed}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn postgres() {
    let pg = Postgres::start();
    segment_api(&pg.url);
}

#[test]
fn clickhouse() {
    let ch = ClickHouse::start();
    segment_api(&ch.url);
}
