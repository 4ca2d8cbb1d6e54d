//! The collector's HTTP behaviour, run against SQLite and against a real
//! PostgreSQL server: both must behave the same.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::{batch, stored, ClickHouse, Collector, Postgres};
use flate2::write::GzEncoder;
use segmint_core::json::Value;
use std::io::Write;
use std::time::{Duration, Instant};

fn behaviour(database: &str) {
    let dir = common::temp_dir("rules");
    let rules = common::rules_copy(&dir);
    let seed = std::fs::read_to_string(&rules).unwrap();
    let c = Collector::start(
        database,
        &[
            "--rules",
            rules.to_str().unwrap(),
            "--allow-origin",
            "http://shop.example",
        ],
    );

    // Ingest, idempotent by messageId.
    let r = c.post("/v1/batch", &batch("a", 5, None));
    assert_eq!((r.status, r.body.as_str()), (200, r#"{"success":true}"#));
    assert_eq!(
        r.header("Accept-Encoding"),
        Some("gzip"),
        "advertises gzip bodies"
    );
    assert_eq!(c.post("/v1/batch", &batch("a", 5, None)).status, 200);
    assert_eq!(stored(&c), 5.0, "a resent batch is stored once");

    // Bad input: 400 with a JSON error naming the problem; nothing stored.
    let r = c.post("/v1/batch", "{\"batch\":[");
    assert_eq!(r.status, 400);
    assert!(Value::parse(&r.body)
        .unwrap()
        .get("error")
        .and_then(Value::as_str)
        .unwrap()
        .starts_with("malformed JSON"));
    let big = batch("b", 3, None).replacen(
        r#""properties":{"i":1}"#,
        &format!(r#""properties":{{"pad":"{}"}}"#, "x".repeat(40_000)),
        1,
    );
    let r = c.post("/v1/batch", &big);
    assert_eq!(r.status, 400);
    assert!(
        r.body.contains("batch[1]") && r.body.contains("32 KB"),
        "{}",
        r.body
    );
    let huge = batch("c", 1, None).replace(
        r#""properties":{"i":0}"#,
        &format!(r#""properties":{{"pad":"{}"}}"#, "x".repeat(600_000)),
    );
    let r = c.post("/v1/batch", &huge);
    assert_eq!(r.status, 413, "over 500 KB: {}", r.body);
    assert!(r.body.starts_with("{\"error\":"), "{}", r.body);
    assert_eq!(
        stored(&c),
        5.0,
        "a refused batch stores nothing, not even its good events"
    );

    // gzip, as the SDK sends it once told it may.
    let mut gz = GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(batch("d", 4, None).as_bytes()).unwrap();
    let r = c.request(
        "POST",
        "/v1/batch?compression=gzip",
        &[],
        &gz.finish().unwrap(),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(stored(&c), 9.0);

    // CORS for configured origins only.
    let r = c.request(
        "OPTIONS",
        "/v1/rules",
        &[
            ("Origin", "http://shop.example"),
            ("Access-Control-Request-Headers", "if-none-match"),
        ],
        b"",
    );
    assert_eq!(r.status, 204);
    assert_eq!(
        r.header("Access-Control-Allow-Origin"),
        Some("http://shop.example")
    );
    assert!(r
        .header("Access-Control-Allow-Headers")
        .unwrap()
        .contains("If-None-Match"));
    let r = c.request(
        "POST",
        "/v1/batch",
        &[("Origin", "http://shop.example")],
        batch("e", 1, None).as_bytes(),
    );
    assert_eq!(r.status, 200);
    assert!(r
        .header("Access-Control-Expose-Headers")
        .unwrap()
        .contains("Retry-After"));
    let r = c.request(
        "POST",
        "/v1/batch",
        &[("Origin", "http://evil.example")],
        batch("f", 1, None).as_bytes(),
    );
    assert_eq!(r.status, 403);
    assert_eq!(r.header("Access-Control-Allow-Origin"), None);

    // Rules: ETag, 304, reload on change, a bad file keeps the old rules.
    let r = c.get("/v1/rules");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Cache-Control"), Some("no-cache"));
    let etag = r.header("ETag").unwrap().to_string();
    assert_eq!(
        c.request("GET", "/v1/rules", &[("If-None-Match", &etag)], b"")
            .status,
        304
    );
    std::thread::sleep(Duration::from_millis(1100)); // a new modification time
    std::fs::write(&rules, seed.replace("2026-11-22.1", "2026-11-23.1")).unwrap();
    let start = Instant::now();
    while !c.get("/v1/rules").body.contains("2026-11-23.1") {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "the changed file was not reloaded"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_ne!(c.get("/v1/rules").header("ETag").unwrap(), etag);
    std::thread::sleep(Duration::from_millis(1100));
    std::fs::write(&rules, "{\"version\": \"broken\"").unwrap();
    std::thread::sleep(Duration::from_millis(2500));
    assert!(
        c.get("/v1/rules").body.contains("2026-11-23.1"),
        "a bad file keeps the last good rules"
    );

    // Server-side segments for a stored user.
    let r = c.get("/api/users/user-a/segments");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        Value::parse(&r.body)
            .unwrap()
            .get("events")
            .and_then(Value::as_f64),
        Some(5.0)
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn sqlite() {
    let dir = common::temp_dir("sqlite");
    behaviour(&format!("sqlite:{}", dir.join("events.db").display()));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn postgres() {
    let pg = Postgres::start();
    behaviour(&pg.url);
}

#[test]
fn clickhouse() {
    let ch = ClickHouse::start();
    behaviour(&ch.url);
}

#[test]
fn the_write_key_is_checked_when_configured() {
    let dir = common::temp_dir("wk");
    let c = Collector::start(
        &format!("sqlite:{}", dir.join("e.db").display()),
        &["--write-key", "s3cret"],
    );
    assert_eq!(c.post("/v1/batch", &batch("g", 1, None)).status, 401);
    assert_eq!(
        c.post("/v1/batch", &batch("g", 1, Some("wrong"))).status,
        401
    );
    assert_eq!(
        c.post("/v1/batch", &batch("g", 1, Some("s3cret"))).status,
        200
    );
    // Segment's other way: HTTP Basic with the key as user name.
    let r = c.request(
        "POST",
        "/v1/batch",
        &[("Authorization", "Basic czNjcmV0Og==")],
        batch("h", 1, None).as_bytes(),
    );
    assert_eq!(r.status, 200);
    let _ = std::fs::remove_dir_all(dir);
}

/// The events table as it was before bot detection and order ids, with
/// one headless browser's event and a shopper's, whose one order arrived
/// twice (a reloaded thank-you page).
const OLD_SCHEMA: &str = r#"
CREATE TABLE events (
  seq INTEGER PRIMARY KEY, message_id TEXT NOT NULL UNIQUE, received_at REAL NOT NULL,
  timestamp REAL NOT NULL, kind TEXT NOT NULL, event TEXT, anonymous_id TEXT, user_id TEXT,
  segments TEXT NOT NULL, promo_segment TEXT, promo_variation TEXT, order_total REAL,
  body TEXT NOT NULL);
INSERT INTO events (message_id, received_at, timestamp, kind, event, anonymous_id, user_id,
  segments, promo_segment, promo_variation, order_total, body) VALUES
  ('old-1', 1, 1, 'page', NULL, 'headless', NULL, '[]', NULL, NULL, NULL,
   '{"type":"page","context":{"userAgent":"Mozilla/5.0 HeadlessChrome/120.0.0.0"}}'),
  ('old-2', 2, 2, 'page', NULL, 'shopper', NULL, '[]', NULL, NULL, NULL,
   '{"type":"page","context":{"userAgent":"Mozilla/5.0 Chrome/120.0.0.0"}}'),
  ('old-3', 3, 3, 'track', 'Promotion Viewed', 'shopper', NULL, '["vip"]', 'vip', 'personalized', NULL,
   '{"type":"track","event":"Promotion Viewed","properties":{"segment":"vip","variation":"personalized"}}'),
  ('old-4', 4, 4, 'track', 'Order Completed', 'shopper', NULL, '["vip"]', NULL, NULL, 40,
   '{"type":"track","event":"Order Completed","properties":{"order_id":"o-1","total":40}}'),
  ('old-5', 5, 5, 'track', 'Order Completed', 'shopper', NULL, '["vip"]', NULL, NULL, 40,
   '{"type":"track","event":"Order Completed","properties":{"order_id":"o-1","total":40}}');
"#;

/// A rules document in `dir` with one segment, vip, that every recent
/// visitor is in.
fn vip_rules(dir: &std::path::Path) -> std::path::PathBuf {
    let rules = dir.join("rules.json");
    std::fs::write(
        &rules,
        r#"{"version":"v","traits":{},"segments":[{"id":"vip","name":"VIPs","priority":1,"condition":{"days_since_first_seen":{"$lte":7}}}]}"#,
    )
    .unwrap();
    rules
}

/// `(events, users, bot events, bot users, the vip segment's personalized
/// orders)` of the dashboard's summary.
fn counts(c: &Collector) -> [f64; 5] {
    let v = Value::parse(&c.get("/api/summary").body).unwrap();
    let n = |v: &Value, k: &str| v.get(k).and_then(Value::as_f64).unwrap();
    let bots = v.get("bots").unwrap();
    let vip = v
        .get("segments")
        .and_then(Value::as_array)
        .unwrap()
        .iter()
        .find(|s| s.get("id").and_then(Value::as_str) == Some("vip"))
        .unwrap();
    [
        n(&v, "events"),
        n(&v, "users"),
        n(bots, "events"),
        n(bots, "users"),
        n(vip.get("personalized").unwrap(), "orders"),
    ]
}

/// Bots are stored but left out of the figures, and an order sent twice
/// counts once, also in a database written before either (and after a
/// restart). `seed` stores the rows of [`OLD_SCHEMA`] unless the
/// database already holds them.
fn old_rows_are_classified(database: &str, seed: impl FnOnce(&Collector)) {
    let dir = common::temp_dir("vip-rules");
    let rules = vip_rules(&dir);
    let args = ["--rules", rules.to_str().unwrap()];
    let c = Collector::start(database, &args);
    seed(&c);
    assert_eq!(
        counts(&c),
        [4.0, 1.0, 1.0, 1.0, 1.0],
        "the old rows, classified"
    );
    let headless = batch("crawl", 3, None).replace(
        r#""context":{"segments":["s"]}"#,
        r#""context":{"segments":["s"],"userAgent":"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"}"#,
    );
    assert_eq!(c.post("/v1/batch", &headless).status, 200);
    assert_eq!(c.post("/v1/batch", &batch("person", 2, None)).status, 200);
    assert_eq!(counts(&c), [6.0, 2.0, 4.0, 2.0, 1.0]);
    drop(c);
    let c = Collector::start(database, &args);
    assert_eq!(
        counts(&c),
        [6.0, 2.0, 4.0, 2.0, 1.0],
        "the same after a restart"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn sqlite_from_an_older_collector() {
    let dir = common::temp_dir("bots");
    let path = dir.join("old.db");
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch(OLD_SCHEMA)
        .unwrap();
    old_rows_are_classified(&format!("sqlite:{}", path.display()), |_| ());
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn postgres_from_an_older_collector() {
    let pg = Postgres::start();
    pg.execute(
        &OLD_SCHEMA
            .replace("seq INTEGER PRIMARY KEY", "seq BIGSERIAL PRIMARY KEY")
            .replace("REAL", "DOUBLE PRECISION"),
    );
    old_rows_are_classified(&pg.url, |_| ());
}

#[test]
fn clickhouse_counts_bots_and_repeated_orders() {
    let ch = ClickHouse::start();
    // The rows of OLD_SCHEMA, sent as a batch: ClickHouse's figures are
    // computed from the events, so there is no older layout to read.
    let seed = |c: &Collector| {
        let batch = r#"{"batch":[
          {"type":"page","messageId":"old-1","anonymousId":"headless","context":{"userAgent":"Mozilla/5.0 HeadlessChrome/120.0.0.0"}},
          {"type":"page","messageId":"old-2","anonymousId":"shopper","context":{"userAgent":"Mozilla/5.0 Chrome/120.0.0.0"}},
          {"type":"track","event":"Promotion Viewed","messageId":"old-3","anonymousId":"shopper","timestamp":"2026-11-23T10:00:00.000Z","properties":{"segment":"vip","variation":"personalized"},"context":{"segments":["vip"]}},
          {"type":"track","event":"Order Completed","messageId":"old-4","anonymousId":"shopper","timestamp":"2026-11-23T10:01:00.000Z","properties":{"order_id":"o-1","total":40},"context":{"segments":["vip"]}},
          {"type":"track","event":"Order Completed","messageId":"old-5","anonymousId":"shopper","timestamp":"2026-11-23T10:02:00.000Z","properties":{"order_id":"o-1","total":40},"context":{"segments":["vip"]}}
        ],"sentAt":"2026-11-23T10:03:00.000Z"}"#;
        let r = c.post("/v1/batch", batch);
        assert_eq!(r.status, 200, "{}", r.body);
    };
    old_rows_are_classified(&ch.url, seed);
    assert_eq!(
        ch.query("SELECT count(), uniqExact(message_id) FROM segmint.events FINAL")
            .trim(),
        "10\t10"
    );
    // Two collectors storing one message at the same moment both write it
    // (done here behind the collector's back): the figures do not change.
    ch.query(
        "INSERT INTO segmint.events SELECT * FROM segmint.events \
         WHERE message_id IN ('old-2', 'old-3', 'old-4', 'crawl-0')",
    );
    assert_eq!(
        ch.query("SELECT count() FROM segmint.events").trim(),
        "14",
        "the copies are stored until the parts merge"
    );
    let dir = common::temp_dir("vip-rules-again");
    let rules = vip_rules(&dir);
    let c = Collector::start(&ch.url, &["--rules", rules.to_str().unwrap()]);
    assert_eq!(counts(&c), [6.0, 2.0, 4.0, 2.0, 1.0]);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn the_dashboard_password_guards_the_dashboard_and_not_ingest() {
    let dir = common::temp_dir("dashpw");
    let c = Collector::start(
        &format!("sqlite:{}", dir.join("e.db").display()),
        &["--dashboard-password", "s3cret"],
    );
    assert_eq!(c.post("/v1/batch", &batch("p", 2, None)).status, 200);
    // "admin:s3cret" and "admin:wrong", base64.
    let with = |auth: &str, path: &str| {
        c.request("GET", path, &[("Authorization", auth)], b"")
            .status
    };
    for path in ["/api/summary", "/dashboard", "/dashboard/charts/events.svg"] {
        let r = c.get(path);
        assert_eq!(r.status, 401, "{path}");
        assert!(r.header("WWW-Authenticate").unwrap().starts_with("Basic "));
        assert_eq!(with("Basic YWRtaW46d3Jvbmc=", path), 401, "{path}");
        assert_eq!(with("Basic YWRtaW46czNjcmV0", path), 200, "{path}");
    }
    assert_eq!(c.get("/api/users/user-p/segments").status, 401);
    // What the storefront itself reads stays open.
    assert_eq!(c.get("/api/recent?anonymousId=user-p").status, 200);
    let _ = std::fs::remove_dir_all(dir);
}
