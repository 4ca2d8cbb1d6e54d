//! Event storage on ClickHouse, over its HTTP interface: for shops whose
//! events outgrow one PostgreSQL. ClickHouse shards and replicates across
//! machines; the collector only needs its SQL.
//!
//! Events go to a `ReplacingMergeTree` ordered by message id: a message
//! stored twice (a retried batch, two collectors racing) is one row once
//! the parts merge, and every read of it says `FINAL`, so it counts once
//! before that too. There are no transactions to keep rollups in:
//! materialized views aggregate each insert as it lands, into states a
//! duplicate does not change, and the dashboard reads them ([`SCHEMA`]).
//!
//! Only SQL that Debian's ClickHouse 18.16 and current releases both
//! accept: no query parameters (values are quoted here), no JSON
//! functions (segments are stored as an array), joins by `USING`.

use crate::db::{DbError, Defined};
use crate::figures::{Cell, MINUTE};
use crate::ingest::StoredEvent;
use crate::percent_decoded;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use segmint_core::json::{write_number, write_string, Value};
use std::collections::HashSet;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// How long one request to ClickHouse may take before the batch is
/// answered 503 (and retried by the client).
const TIMEOUT: Duration = Duration::from_secs(30);

/// A ClickHouse database, reached at `http://host:port/`.
#[derive(Clone)]
pub struct ClickHouse {
    client: Client<HttpConnector, Full<Bytes>>,
    /// `http://host:port/?database=db`
    endpoint: String,
    /// `http://host:port/` (before the database exists).
    server: String,
    database: String,
    /// User name and password, sent as ClickHouse's own headers.
    credentials: Option<(String, String)>,
    /// The task that stores batches ([`ClickHouse::insert`]); `None` in
    /// that task's own copy.
    writer: Option<mpsc::UnboundedSender<WriteRequest>>,
}

type WriteRequest = (
    Vec<StoredEvent>,
    oneshot::Sender<Result<Vec<bool>, DbError>>,
);

/// Batches stored by one INSERT at most: ClickHouse wants few, large
/// inserts (each makes a part on disk to merge later).
const BATCHES_PER_INSERT: usize = 64;

/// The events table, then the figures' materialized views: ClickHouse
/// aggregates each insert into them as it lands (and `POPULATE` fills a
/// view created over stored events). Their states are idempotent (first
/// and latest times, distinct users, orders by key), so a message stored
/// twice before the parts merge changes no figure; queries finish the
/// aggregation (`-Merge`) and keep the segment ids the rules define.
const SCHEMA: [&str; 5] = [
    "CREATE TABLE IF NOT EXISTS events (
  message_id String,
  received_at Float64,
  timestamp Float64,
  kind String,
  event Nullable(String),
  anonymous_id Nullable(String),
  user_id Nullable(String),
  segments Array(String),
  promo_segment Nullable(String),
  promo_variation Nullable(String),
  order_total Nullable(Float64),
  order_id Nullable(String),
  bot UInt8,
  body String
) ENGINE = ReplacingMergeTree ORDER BY message_id",
    // Per user (bots apart): the segments of their latest event.
    "CREATE MATERIALIZED VIEW IF NOT EXISTS fig_users
  ENGINE = AggregatingMergeTree ORDER BY (bot, user) POPULATE
  AS SELECT ifNull(anonymous_id, ifNull(user_id, '')) AS user, bot,
    argMaxState(segments, timestamp) AS latest
  FROM events WHERE user != '' GROUP BY user, bot",
    // Per minute and segment name: the users seen in it.
    "CREATE MATERIALIZED VIEW IF NOT EXISTS fig_segment_minutes
  ENGINE = AggregatingMergeTree ORDER BY (minute, segment) POPULATE
  AS SELECT toInt64(floor(timestamp / 60000)) AS minute, segment,
    uniqExactState(ifNull(anonymous_id, ifNull(user_id, ''))) AS users
  FROM events ARRAY JOIN segments AS segment
  WHERE bot = 0 AND ifNull(anonymous_id, ifNull(user_id, '')) != ''
  GROUP BY minute, segment",
    // Per segment, variation and user: the first exposure.
    "CREATE MATERIALIZED VIEW IF NOT EXISTS fig_exposures
  ENGINE = AggregatingMergeTree ORDER BY (segment, variation, user) POPULATE
  AS SELECT assumeNotNull(promo_segment) AS segment,
    assumeNotNull(promo_variation) AS variation,
    ifNull(anonymous_id, ifNull(user_id, '')) AS user, minState(timestamp) AS first_at
  FROM events
  WHERE bot = 0 AND user != '' AND isNotNull(promo_segment)
    AND ifNull(promo_variation, '') IN ('personalized', 'holdout')
  GROUP BY segment, variation, user",
    // Per user and order id (the message id without one): the order's
    // time and value, counted once however often it was sent.
    "CREATE MATERIALIZED VIEW IF NOT EXISTS fig_orders
  ENGINE = AggregatingMergeTree ORDER BY (user, order_key) POPULATE
  AS SELECT ifNull(anonymous_id, ifNull(user_id, '')) AS user,
    ifNull(order_id, message_id) AS order_key, minState(timestamp) AS at,
    argMinState(assumeNotNull(order_total), timestamp) AS total
  FROM events WHERE bot = 0 AND user != '' AND isNotNull(order_total)
  GROUP BY user, order_key",
];

/// `text` as a ClickHouse string literal.
pub fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('\'');
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '\0' => out.push_str("\\0"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// The defined segment ids as an array literal.
fn array_literal(ids: &HashSet<String>) -> String {
    if ids.is_empty() {
        return "emptyArrayString()".into();
    }
    let mut sorted: Vec<&String> = ids.iter().collect();
    sorted.sort();
    let items: Vec<String> = sorted.into_iter().map(|s| quote(s)).collect();
    format!("[{}]", items.join(", "))
}

/// Percent-encodes a query-string value.
fn encode(value: &str) -> String {
    let mut out = String::new();
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl ClickHouse {
    /// Parses `clickhouse://[user[:password]@]host[:port][/database]`
    /// (port 8123, database `default` unless given) and creates the
    /// database and the events table if needed.
    pub async fn open(url: &str) -> Result<ClickHouse, DbError> {
        let rest = url
            .strip_prefix("clickhouse://")
            .ok_or_else(|| format!("not a ClickHouse URL: {url}"))?;
        let (authority, database) = rest.split_once('/').unwrap_or((rest, ""));
        let database = database.split('?').next().unwrap_or("");
        let database = if database.is_empty() {
            "default".to_string()
        } else {
            percent_decoded(database)
        };
        if !database
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            return Err(format!(
                "the ClickHouse database name {database:?} may hold only letters, digits and _"
            ));
        }
        let (credentials, host) = match authority.rsplit_once('@') {
            Some((userinfo, host)) => {
                let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
                (
                    Some((percent_decoded(user), percent_decoded(password))),
                    host,
                )
            }
            None => (None, authority),
        };
        if host.is_empty() {
            return Err(format!("no host in the ClickHouse URL {url}"));
        }
        let host = if host.contains(':') && !host.ends_with(']') {
            host.to_string()
        } else {
            format!("{host}:8123")
        };
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(Duration::from_secs(5)));
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        let server = format!("http://{host}/");
        let ch = ClickHouse {
            client,
            endpoint: format!("{server}?database={}", encode(&database)),
            server,
            database,
            credentials,
            writer: None,
        };
        ch.post(
            &ch.server,
            format!("CREATE DATABASE IF NOT EXISTS {}", ch.database),
        )
        .await
        .map_err(|e| format!("cannot reach ClickHouse at {host}: {e}"))?;
        for statement in SCHEMA {
            ch.execute(statement.to_string())
                .await
                .map_err(|e| format!("cannot create the schema: {e}"))?;
        }
        let (writer, requests) = mpsc::unbounded_channel();
        tokio::spawn(ch.clone().write(requests));
        Ok(ClickHouse {
            writer: Some(writer),
            ..ch
        })
    }

    /// Stores the batches that wait, together: while one INSERT is under
    /// way the next ones queue up and go in the following one.
    async fn write(self, mut requests: mpsc::UnboundedReceiver<WriteRequest>) {
        while let Some(first) = requests.recv().await {
            let mut group = vec![first];
            while group.len() < BATCHES_PER_INSERT {
                match requests.try_recv() {
                    Ok(more) => group.push(more),
                    Err(_) => break,
                }
            }
            let batches: Vec<&[StoredEvent]> = group.iter().map(|(e, _)| e.as_slice()).collect();
            match self.store(&batches).await {
                Ok(all) => {
                    for ((_, reply), flags) in group.into_iter().zip(all) {
                        let _ = reply.send(Ok(flags));
                    }
                }
                Err(e) => {
                    for (_, reply) in group {
                        let _ = reply.send(Err(e.clone()));
                    }
                }
            }
        }
    }

    /// POSTs `body` (a statement, with its data after it) to `url`;
    /// returns the answer's text, or ClickHouse's error.
    async fn post(&self, url: &str, body: String) -> Result<String, DbError> {
        let mut request = hyper::Request::post(url);
        if let Some((user, password)) = &self.credentials {
            request = request
                .header("X-ClickHouse-User", user.as_str())
                .header("X-ClickHouse-Key", password.as_str());
        }
        let request = request
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| e.to_string())?;
        let exchange = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| format!("ClickHouse: {e}"))?;
            let status = response.status();
            let bytes = response
                .into_body()
                .collect()
                .await
                .map_err(|e| format!("ClickHouse: {e}"))?
                .to_bytes();
            let text = String::from_utf8_lossy(&bytes).into_owned();
            if status.is_success() {
                Ok(text)
            } else {
                Err(format!("ClickHouse answered {status}: {}", text.trim()))
            }
        };
        tokio::time::timeout(TIMEOUT, exchange)
            .await
            .map_err(|_| "ClickHouse did not answer in time".to_string())?
    }

    async fn execute(&self, statement: String) -> Result<String, DbError> {
        self.post(&self.endpoint, statement).await
    }

    /// The rows `sql` selects, each value as a [`Cell`] (arrays as their
    /// JSON text, 64-bit integers, which ClickHouse quotes, as numbers).
    pub async fn query(&self, sql: &str) -> Result<Vec<Vec<Cell>>, DbError> {
        let text = self.execute(format!("{sql} FORMAT JSONCompact")).await?;
        let answer =
            Value::parse(&text).map_err(|e| format!("ClickHouse's answer is not JSON: {e}"))?;
        let types: Vec<&str> = answer
            .get("meta")
            .and_then(Value::as_array)
            .unwrap_or(&[])
            .iter()
            .map(|m| m.get("type").and_then(Value::as_str).unwrap_or(""))
            .collect();
        let rows = answer
            .get("data")
            .and_then(Value::as_array)
            .ok_or("ClickHouse's answer has no data")?;
        Ok(rows
            .iter()
            .map(|row| {
                row.as_array()
                    .unwrap_or(&[])
                    .iter()
                    .enumerate()
                    .map(|(i, v)| cell(v, types.get(i).copied().unwrap_or("")))
                    .collect()
            })
            .collect())
    }

    /// Stores the events whose message ids are not stored yet; returns,
    /// per event, whether it was new. Two collectors storing the same
    /// message at once may both write it: the table keeps one, reads of
    /// it say `FINAL`, and the figures' states do not change.
    pub async fn insert(&self, events: Vec<StoredEvent>) -> Result<Vec<bool>, DbError> {
        let Some(writer) = &self.writer else {
            return Err("the ClickHouse writer is not running".into());
        };
        let (reply, answer) = oneshot::channel();
        writer
            .send((events, reply))
            .map_err(|_| "the ClickHouse writer stopped".to_string())?;
        answer
            .await
            .map_err(|_| "the ClickHouse writer stopped".to_string())?
    }

    /// One INSERT of the events of `batches` not stored yet (nor earlier
    /// in the group); the flags of each batch.
    async fn store(&self, batches: &[&[StoredEvent]]) -> Result<Vec<Vec<bool>>, DbError> {
        let ids: HashSet<&str> = batches
            .iter()
            .flat_map(|b| b.iter().map(|e| e.message_id.as_str()))
            .collect();
        let mut known = HashSet::new();
        let list: Vec<String> = ids.iter().map(|id| quote(id)).collect();
        for chunk in list.chunks(10_000) {
            let rows = self
                .query(&format!(
                    "SELECT message_id FROM events WHERE message_id IN ({})",
                    chunk.join(",")
                ))
                .await?;
            for row in rows {
                if let Some(Cell::Text(id)) = row.into_iter().next() {
                    known.insert(id);
                }
            }
        }
        let mut body = String::from("INSERT INTO events FORMAT JSONEachRow\n");
        let mut any = false;
        let mut all = Vec::with_capacity(batches.len());
        for events in batches {
            let mut flags = Vec::with_capacity(events.len());
            for e in events.iter() {
                let new = known.insert(e.message_id.clone());
                flags.push(new);
                if new {
                    write_row(&mut body, e);
                    body.push('\n');
                    any = true;
                }
            }
            all.push(flags);
        }
        if any {
            self.execute(body).await?;
        }
        Ok(all)
    }

    /// The rows of [`crate::figures::SUMMARY_QUERIES`], read from the
    /// figures' views and the events; `since` is the first minute of the
    /// last hour.
    pub async fn summary_rows(
        &self,
        since: i64,
        defined: &Defined,
    ) -> Result<Vec<Vec<Vec<Cell>>>, DbError> {
        let mut out = Vec::with_capacity(7);
        for sql in summary_queries(since, defined) {
            out.push(self.query(&sql).await?);
        }
        Ok(out)
    }

    /// Rows stored, bots' included, for the start-up line: read from the
    /// parts' metadata without `FINAL` (which reads every message id: 1 to
    /// 11 s over 10 M events), so a message two collectors stored at once
    /// counts twice until the parts merge. The dashboard counts with
    /// `FINAL`.
    pub async fn stored(&self) -> Result<u64, DbError> {
        let rows = self.query("SELECT count() FROM events").await?;
        Ok(rows
            .first()
            .and_then(|r| r.first())
            .map_or(0.0, Cell::number) as u64)
    }

    /// The events `sql` selects (the columns of
    /// [`crate::db`]'s event rows, body last), with `$1` standing for
    /// `arg`.
    pub async fn select(&self, sql: &str, arg: &str) -> Result<Vec<StoredEvent>, DbError> {
        let rows = self.query(&sql.replace("$1", &quote(arg))).await?;
        Ok(rows.iter().map(|r| event(r)).collect())
    }
}

/// A JSON value of ClickHouse type `kind` as a cell.
fn cell(v: &Value, kind: &str) -> Cell {
    match v {
        Value::Null => Cell::Null,
        Value::Number(n) if kind.contains("Int") => Cell::Int(*n as i64),
        Value::Number(n) => Cell::Real(*n),
        Value::Bool(b) => Cell::Int(i64::from(*b)),
        Value::String(s) if kind.contains("Int") => {
            s.parse().map_or(Cell::Text(s.clone()), Cell::Int)
        }
        Value::String(s) => Cell::Text(s.clone()),
        other => Cell::Text(other.to_json()),
    }
}

/// An event from a row of the event columns and the body.
fn event(row: &[Cell]) -> StoredEvent {
    let text = |i: usize| match row.get(i) {
        Some(Cell::Text(t)) => Some(t.clone()),
        _ => None,
    };
    let number = |i: usize| match row.get(i) {
        Some(c @ (Cell::Int(_) | Cell::Real(_))) => Some(c.number()),
        _ => None,
    };
    StoredEvent {
        message_id: text(0).unwrap_or_default(),
        received_at: number(1).unwrap_or(0.0),
        timestamp: number(2).unwrap_or(0.0),
        kind: text(3).unwrap_or_default(),
        event: text(4),
        anonymous_id: text(5),
        user_id: text(6),
        segments: text(7).unwrap_or_else(|| "[]".into()),
        promo_segment: text(8),
        promo_variation: text(9),
        order_total: number(10),
        order_id: text(11),
        bot: number(12).is_some_and(|b| b != 0.0),
        body: text(13).unwrap_or_default(),
    }
}

/// `e` as a JSONEachRow line. `segments` becomes an array of the strings
/// in the message's `context.segments`.
fn write_row(out: &mut String, e: &StoredEvent) {
    fn text(out: &mut String, key: &str, value: Option<&str>) {
        out.push_str(key);
        match value {
            Some(v) => write_string(out, v),
            None => out.push_str("null"),
        }
    }
    fn number(out: &mut String, key: &str, value: Option<f64>) {
        out.push_str(key);
        match value {
            Some(v) if v.is_finite() => write_number(out, v),
            _ => out.push_str("null"),
        }
    }
    text(out, "{\"message_id\":", Some(&e.message_id));
    number(out, ",\"received_at\":", Some(e.received_at));
    number(out, ",\"timestamp\":", Some(e.timestamp));
    text(out, ",\"kind\":", Some(&e.kind));
    text(out, ",\"event\":", e.event.as_deref());
    text(out, ",\"anonymous_id\":", e.anonymous_id.as_deref());
    text(out, ",\"user_id\":", e.user_id.as_deref());
    out.push_str(",\"segments\":[");
    if let Ok(Value::Array(items)) = Value::parse(&e.segments) {
        let mut first = true;
        for s in items.iter().filter_map(Value::as_str) {
            if !first {
                out.push(',');
            }
            first = false;
            write_string(out, s);
        }
    }
    out.push(']');
    text(out, ",\"promo_segment\":", e.promo_segment.as_deref());
    text(out, ",\"promo_variation\":", e.promo_variation.as_deref());
    number(out, ",\"order_total\":", e.order_total);
    text(out, ",\"order_id\":", e.order_id.as_deref());
    out.push_str(if e.bot { ",\"bot\":1" } else { ",\"bot\":0" });
    text(out, ",\"body\":", Some(&e.body));
    out.push('}');
}

/// The figures of [`crate::figures::SUMMARY_QUERIES`], in the same order
/// and shape, in ClickHouse SQL over the events (counts of events) and
/// the figures' views (the rest).
fn summary_queries(since: i64, defined: &Defined) -> [String; 7] {
    let ids = array_literal(defined);
    let from = (since as f64) * MINUTE;
    [
        "SELECT countIf(bot = 0), countIf(bot = 1) FROM events FINAL".into(),
        "SELECT uniqExact(user) FROM fig_users WHERE bot = 0".into(),
        "SELECT uniqExact(user) FROM fig_users WHERE bot = 1".into(),
        format!(
            "SELECT toInt64(floor(received_at / {MINUTE})) AS minute, countIf(bot = 0) \
             FROM events FINAL WHERE received_at >= {from} GROUP BY minute"
        ),
        // Each user's latest event's defined segments, and how many users
        // share that list.
        format!(
            "SELECT latest, count() FROM (SELECT user, \
               arrayFilter(s -> has({ids}, s), argMaxMerge(latest)) AS latest \
             FROM fig_users WHERE bot = 0 GROUP BY user) GROUP BY latest"
        ),
        format!(
            "SELECT minute, segment, uniqExactMerge(users) FROM fig_segment_minutes \
             WHERE minute >= {since} AND has({ids}, segment) GROUP BY minute, segment"
        ),
        // Per arm: users exposed, of them users with an order at or after
        // their first exposure, those orders and their value.
        format!(
            "SELECT segment, variation, uniqExact(user), \
               uniqExactIf(user, ordered = 1 AND at >= first_at), \
               countIf(ordered = 1 AND at >= first_at), \
               sumIf(total, ordered = 1 AND at >= first_at) \
             FROM (SELECT segment, variation, user, minMerge(first_at) AS first_at \
               FROM fig_exposures WHERE has({ids}, segment) GROUP BY segment, variation, user) \
             ALL LEFT JOIN (SELECT user, order_key, minMerge(at) AS at, \
                 argMinMerge(total) AS total, toUInt8(1) AS ordered \
               FROM fig_orders GROUP BY user, order_key) USING user \
             GROUP BY segment, variation"
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_cannot_leave_their_quotes() {
        assert_eq!(quote("a'b\\c"), r"'a\'b\\c'");
        assert_eq!(quote("x\0"), r"'x\0'");
        let ids: HashSet<String> = ["b".to_string(), "a'".to_string()].into();
        assert_eq!(array_literal(&ids), r"['a\'', 'b']");
        assert_eq!(array_literal(&HashSet::new()), "emptyArrayString()");
    }

    #[test]
    fn cells_follow_the_declared_types() {
        assert_eq!(cell(&Value::String("12".into()), "UInt64"), Cell::Int(12));
        assert_eq!(cell(&Value::Number(1.5), "Float64"), Cell::Real(1.5));
        assert_eq!(
            cell(
                &Value::Array(vec![Value::String("s".into())]),
                "Array(String)"
            ),
            Cell::Text("[\"s\"]".into())
        );
        assert_eq!(cell(&Value::Null, "Nullable(String)"), Cell::Null);
    }

    #[test]
    fn rows_keep_only_string_segments() {
        let e = StoredEvent {
            message_id: "m".into(),
            received_at: 1.0,
            timestamp: 2.0,
            kind: "track".into(),
            event: Some("E".into()),
            anonymous_id: None,
            user_id: Some("u".into()),
            segments: "[\"a\",1,\"b\"]".into(),
            promo_segment: None,
            promo_variation: None,
            order_total: Some(9.5),
            order_id: None,
            bot: true,
            body: "{\"x\":\"\\\"\"}".into(),
        };
        let mut line = String::new();
        write_row(&mut line, &e);
        let v = Value::parse(&line).unwrap();
        assert_eq!(v.get("segments").unwrap().to_json(), "[\"a\",\"b\"]");
        assert_eq!(v.get("anonymous_id"), Some(&Value::Null));
        assert_eq!(v.get("bot").and_then(Value::as_f64), Some(1.0));
        assert_eq!(v.get("body").and_then(Value::as_str), Some(e.body.as_str()));
    }

    #[test]
    fn credentials_and_database_come_from_the_url() {
        assert_eq!(percent_decoded("p%40ss"), "p@ss");
        assert_eq!(percent_decoded("100%"), "100%");
        assert_eq!(encode("a b/c"), "a%20b%2Fc");
    }
}
