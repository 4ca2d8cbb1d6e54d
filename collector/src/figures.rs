//! The dashboard's figures, kept in the database beside the events.
//!
//! Ingest adds what its newly stored events contribute (a [`Rollup`]) in
//! the same transaction as the events, so the figures are exactly those
//! of the events stored, whichever collector process stored them, and the
//! collector's memory and start time do not depend on history. The
//! dashboard reads them back with a handful of queries over small tables
//! ([`crate::summary::Summary`]).
//!
//! Only segment ids the rules document in force defines are counted:
//! `context.segments` comes from the client, and made-up names are stored
//! with their events but add nothing here.

use crate::ingest::StoredEvent;
use segmint_core::json::Value;
use std::collections::{BTreeMap, BTreeSet, HashSet};

/// A minute, in ms.
pub const MINUTE: f64 = 60_000.0;

/// The figures' tables. The same text creates them in SQLite and in
/// PostgreSQL (SQLite reads `BIGINT` and `DOUBLE PRECISION` as its own
/// integer and real).
pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS fig_minutes (
  minute BIGINT PRIMARY KEY, events BIGINT NOT NULL, bot_events BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS fig_users (
  id TEXT PRIMARY KEY, latest DOUBLE PRECISION NOT NULL, segments TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS fig_bot_users (id TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS fig_segment_minutes (
  minute BIGINT NOT NULL, segment TEXT NOT NULL, user_id TEXT NOT NULL,
  PRIMARY KEY (minute, segment, user_id));
CREATE TABLE IF NOT EXISTS fig_exposures (
  segment TEXT NOT NULL, variation TEXT NOT NULL, user_id TEXT NOT NULL,
  first_at DOUBLE PRECISION NOT NULL, PRIMARY KEY (segment, variation, user_id));
CREATE TABLE IF NOT EXISTS fig_orders (
  user_id TEXT NOT NULL, order_key TEXT NOT NULL, at DOUBLE PRECISION NOT NULL,
  total DOUBLE PRECISION NOT NULL, PRIMARY KEY (user_id, order_key));
CREATE TABLE IF NOT EXISTS fig_state (name TEXT PRIMARY KEY, value TEXT NOT NULL);
";

/// A bound parameter, for either database.
#[derive(Clone, Debug, PartialEq)]
pub enum Param {
    /// An integer.
    Int(i64),
    /// A real number.
    Real(f64),
    /// Text.
    Text(String),
}

/// One statement to run, written with `$1`-style placeholders (SQLite
/// reads them as numbered parameters too).
#[derive(Clone, Debug, PartialEq)]
pub struct Statement {
    /// The SQL.
    pub sql: String,
    /// Its parameters, in placeholder order.
    pub params: Vec<Param>,
}

/// Rows per statement: well under PostgreSQL's 65,535 parameters and
/// SQLite's 32,766.
const ROWS_PER_STATEMENT: usize = 500;

/// `INSERT INTO <head> VALUES (...),(...) <tail>` over `rows`, in as many
/// statements as the parameter limits need.
pub fn insert_rows(head: &str, tail: &str, rows: Vec<Vec<Param>>) -> Vec<Statement> {
    let mut out = Vec::new();
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let mut sql = format!("INSERT INTO {head} VALUES ");
        let mut params = Vec::new();
        for (i, row) in rows.by_ref().take(ROWS_PER_STATEMENT).enumerate() {
            if i > 0 {
                sql.push(',');
            }
            sql.push('(');
            for (j, p) in row.into_iter().enumerate() {
                if j > 0 {
                    sql.push(',');
                }
                params.push(p);
                sql.push_str(&format!("${}", params.len()));
            }
            sql.push(')');
        }
        sql.push(' ');
        sql.push_str(tail);
        out.push(Statement { sql, params });
    }
    out
}

/// What a set of newly stored events adds to the figures. Keys are kept
/// sorted, so concurrent transactions take row locks in one order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Rollup {
    /// Per minute received: (events, bots' events).
    minutes: BTreeMap<i64, (i64, i64)>,
    bot_users: BTreeSet<String>,
    /// Per user: time and defined segments (JSON) of their latest event.
    latest: BTreeMap<String, (f64, String)>,
    /// (minute, segment, user) seen.
    segment_minutes: BTreeSet<(i64, String, String)>,
    /// (segment, variation, user): first exposure.
    exposures: BTreeMap<(String, String, String), f64>,
    /// (user, order id or message id): (time, value).
    orders: BTreeMap<(String, String), (f64, f64)>,
}

/// The variations whose conversion the dashboard compares.
const VARIATIONS: [&str; 2] = ["personalized", "holdout"];

impl Rollup {
    /// The contribution of `events` (each newly stored), counting only
    /// the segment ids in `defined`.
    pub fn of<'a>(
        events: impl IntoIterator<Item = &'a StoredEvent>,
        defined: &HashSet<String>,
    ) -> Rollup {
        let mut r = Rollup::default();
        for e in events {
            let minute = (e.received_at / MINUTE).floor() as i64;
            let counts = r.minutes.entry(minute).or_default();
            let user = e.anonymous_id.as_ref().or(e.user_id.as_ref());
            if e.bot {
                counts.1 += 1;
                if let Some(id) = user {
                    r.bot_users.insert(id.clone());
                }
                continue;
            }
            counts.0 += 1;
            let Some(user) = user else { continue };
            let segments: Vec<String> = match Value::parse(&e.segments) {
                Ok(Value::Array(items)) => items
                    .into_iter()
                    .filter_map(|v| match v {
                        Value::String(s) if defined.contains(&s) => Some(s),
                        _ => None,
                    })
                    .collect(),
                _ => Vec::new(),
            };
            let at = (e.timestamp / MINUTE).floor() as i64;
            for s in &segments {
                r.segment_minutes.insert((at, s.clone(), user.clone()));
            }
            let newer = r.latest.get(user).is_none_or(|(t, _)| e.timestamp >= *t);
            if newer {
                let list = Value::Array(segments.into_iter().map(Value::String).collect());
                r.latest.insert(user.clone(), (e.timestamp, list.to_json()));
            }
            if let (Some(segment), Some(variation)) = (&e.promo_segment, &e.promo_variation) {
                if defined.contains(segment) && VARIATIONS.contains(&variation.as_str()) {
                    let first = r
                        .exposures
                        .entry((segment.clone(), variation.clone(), user.clone()))
                        .or_insert(e.timestamp);
                    *first = first.min(e.timestamp);
                }
            }
            if let Some(total) = e.order_total {
                // An order sent again (a reloaded thank-you page) keeps
                // its id and counts once.
                let key = e.order_id.clone().unwrap_or_else(|| e.message_id.clone());
                r.orders
                    .entry((user.clone(), key))
                    .or_insert((e.timestamp, total));
            }
        }
        r
    }

    /// The statements that add this to the figures' tables.
    pub fn statements(&self) -> Vec<Statement> {
        let mut out = Vec::new();
        out.extend(insert_rows(
            "fig_minutes (minute, events, bot_events)",
            "ON CONFLICT (minute) DO UPDATE SET events = fig_minutes.events + excluded.events, \
             bot_events = fig_minutes.bot_events + excluded.bot_events",
            self.minutes
                .iter()
                .map(|(m, (n, b))| vec![Param::Int(*m), Param::Int(*n), Param::Int(*b)])
                .collect(),
        ));
        out.extend(insert_rows(
            "fig_users (id, latest, segments)",
            "ON CONFLICT (id) DO UPDATE SET latest = excluded.latest, segments = excluded.segments \
             WHERE excluded.latest >= fig_users.latest",
            self.latest
                .iter()
                .map(|(id, (t, s))| {
                    vec![Param::Text(id.clone()), Param::Real(*t), Param::Text(s.clone())]
                })
                .collect(),
        ));
        out.extend(insert_rows(
            "fig_bot_users (id)",
            "ON CONFLICT DO NOTHING",
            self.bot_users
                .iter()
                .map(|id| vec![Param::Text(id.clone())])
                .collect(),
        ));
        out.extend(insert_rows(
            "fig_segment_minutes (minute, segment, user_id)",
            "ON CONFLICT DO NOTHING",
            self.segment_minutes
                .iter()
                .map(|(m, s, u)| {
                    vec![
                        Param::Int(*m),
                        Param::Text(s.clone()),
                        Param::Text(u.clone()),
                    ]
                })
                .collect(),
        ));
        out.extend(insert_rows(
            "fig_exposures (segment, variation, user_id, first_at)",
            "ON CONFLICT (segment, variation, user_id) DO UPDATE SET first_at = excluded.first_at \
             WHERE excluded.first_at < fig_exposures.first_at",
            self.exposures
                .iter()
                .map(|((s, v, u), t)| {
                    vec![
                        Param::Text(s.clone()),
                        Param::Text(v.clone()),
                        Param::Text(u.clone()),
                        Param::Real(*t),
                    ]
                })
                .collect(),
        ));
        out.extend(insert_rows(
            "fig_orders (user_id, order_key, at, total)",
            "ON CONFLICT DO NOTHING",
            self.orders
                .iter()
                .map(|((u, k), (t, v))| {
                    vec![
                        Param::Text(u.clone()),
                        Param::Text(k.clone()),
                        Param::Real(*t),
                        Param::Real(*v),
                    ]
                })
                .collect(),
        ));
        out
    }
}

/// The queries [`crate::summary::Summary::from_rows`] reads, in order;
/// `$1` is the first minute of the last hour.
pub const SUMMARY_QUERIES: [&str; 7] = [
    "SELECT CAST(COALESCE(SUM(events), 0) AS BIGINT), CAST(COALESCE(SUM(bot_events), 0) AS BIGINT) FROM fig_minutes",
    "SELECT COUNT(*) FROM fig_users",
    "SELECT COUNT(*) FROM fig_bot_users",
    "SELECT minute, events FROM fig_minutes WHERE minute >= $1",
    "SELECT segments, COUNT(*) FROM fig_users GROUP BY segments",
    "SELECT minute, segment, COUNT(*) FROM fig_segment_minutes WHERE minute >= $1 GROUP BY minute, segment",
    // Per arm: users exposed, of them users with an order at or after
    // their exposure, those orders and their value.
    "SELECT e.segment, e.variation, COUNT(DISTINCT e.user_id), COUNT(DISTINCT o.user_id), \
       COUNT(o.user_id), CAST(COALESCE(SUM(o.total), 0) AS DOUBLE PRECISION) \
     FROM fig_exposures e LEFT JOIN fig_orders o ON o.user_id = e.user_id AND o.at >= e.first_at \
     GROUP BY e.segment, e.variation",
];

/// A value read back.
#[derive(Clone, Debug, PartialEq)]
pub enum Cell {
    /// SQL NULL.
    Null,
    /// An integer.
    Int(i64),
    /// A real number.
    Real(f64),
    /// Text.
    Text(String),
}

impl Cell {
    /// As a number (0 for text or NULL).
    pub fn number(&self) -> f64 {
        match self {
            Cell::Int(i) => *i as f64,
            Cell::Real(r) => *r,
            _ => 0.0,
        }
    }

    /// As text ("" for numbers or NULL).
    pub fn text(&self) -> &str {
        match self {
            Cell::Text(t) => t,
            _ => "",
        }
    }
}

/// The SQLite side: applying statements and running queries on a
/// connection.
pub mod sqlite {
    use super::{Cell, Param, Statement};
    use rusqlite::types::{ToSqlOutput, ValueRef};

    impl rusqlite::ToSql for Param {
        fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
            Ok(match self {
                Param::Int(i) => ToSqlOutput::from(*i),
                Param::Real(r) => ToSqlOutput::from(*r),
                Param::Text(t) => ToSqlOutput::from(t.as_str()),
            })
        }
    }

    /// Runs `statements` on `conn` (inside the caller's transaction).
    pub fn apply(conn: &rusqlite::Connection, statements: &[Statement]) -> rusqlite::Result<()> {
        for s in statements {
            let mut stmt = conn.prepare_cached(&s.sql)?;
            stmt.execute(rusqlite::params_from_iter(s.params.iter()))?;
        }
        Ok(())
    }

    /// The rows of `sql` with `params`.
    pub fn query(
        conn: &rusqlite::Connection,
        sql: &str,
        params: &[Param],
    ) -> rusqlite::Result<Vec<Vec<Cell>>> {
        let mut stmt = conn.prepare_cached(sql)?;
        let width = stmt.column_count();
        let mut rows = stmt.query(rusqlite::params_from_iter(params.iter()))?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            let mut cells = Vec::with_capacity(width);
            for i in 0..width {
                cells.push(match row.get_ref(i)? {
                    ValueRef::Null | ValueRef::Blob(_) => Cell::Null,
                    ValueRef::Integer(v) => Cell::Int(v),
                    ValueRef::Real(v) => Cell::Real(v),
                    ValueRef::Text(t) => Cell::Text(String::from_utf8_lossy(t).into_owned()),
                });
            }
            out.push(cells);
        }
        Ok(out)
    }
}

/// The PostgreSQL side.
pub mod postgres {
    use super::{Cell, Param, Statement};
    use deadpool_postgres::GenericClient;
    use tokio_postgres::types::{ToSql, Type};

    fn bind(params: &[Param]) -> Vec<&(dyn ToSql + Sync)> {
        params
            .iter()
            .map(|p| match p {
                Param::Int(i) => i as &(dyn ToSql + Sync),
                Param::Real(r) => r as &(dyn ToSql + Sync),
                Param::Text(t) => t as &(dyn ToSql + Sync),
            })
            .collect()
    }

    /// Runs `statements` on `client` (inside the caller's transaction).
    pub async fn apply(
        client: &impl GenericClient,
        statements: &[Statement],
    ) -> Result<(), tokio_postgres::Error> {
        for s in statements {
            client.execute(s.sql.as_str(), &bind(&s.params)).await?;
        }
        Ok(())
    }

    /// The rows of `sql` with `params`.
    pub async fn query(
        client: &impl GenericClient,
        sql: &str,
        params: &[Param],
    ) -> Result<Vec<Vec<Cell>>, tokio_postgres::Error> {
        let rows = client.query(sql, &bind(params)).await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            let mut cells = Vec::with_capacity(row.len());
            for (i, column) in row.columns().iter().enumerate() {
                let t = column.type_();
                cells.push(if *t == Type::INT8 {
                    row.try_get::<_, Option<i64>>(i)?
                        .map_or(Cell::Null, Cell::Int)
                } else if *t == Type::INT4 {
                    row.try_get::<_, Option<i32>>(i)?
                        .map_or(Cell::Null, |v| Cell::Int(v.into()))
                } else if *t == Type::FLOAT8 {
                    row.try_get::<_, Option<f64>>(i)?
                        .map_or(Cell::Null, Cell::Real)
                } else {
                    row.try_get::<_, Option<String>>(i)?
                        .map_or(Cell::Null, Cell::Text)
                });
            }
            out.push(cells);
        }
        Ok(out)
    }
}
